"""`imgcls preprocess`: face crop (deepface), background removal (rembg) and a resized image cache, offline.

Per image, in this order (see README "imgcls preprocess" for why):
  1. decode once through imgcls.io (EXIF orientation applied, any mode -> RGB);
  2. `--face-crop`: detect on the ORIGINAL image (the detector sees the real photo: a background already painted
     white, or hair cut away by the matting model, only removes context the detector uses), take the largest face's
     box, grow it by `--face-margin` and cut it from the original pixels; no face -> `--no-face keep|center-crop|drop`;
  3. `--size`: scale (pad: longer side = N; crop: shorter side = N + centre crop; stretch: N x N);
  4. `--remove-bg`: rembg on what is left (u2netp sees the image at 320 x 320, so running it on the crop spends its
     resolution on the subject; on the already scaled image its mask has the output's resolution);
  5. `--resize-mode pad`: borders in the background colour (after the matting, which never sees padding).

Outputs mirror the input's relative paths under OUT, plus `manifest.csv` (the input manifest with `source_path`,
`face_found`, `face_x`, `face_y`, `face_w`, `face_h`, `face_confidence`, `faces`, `bg_removed`; `path`/`root` and
the scan columns describe the written image), `preprocess.json` (settings, counts, timings) and `report.html`.
Resumable: an output newer than its input, written with the same settings, is kept (records come from the last
manifest or, after an interruption, from OUT/.preprocess_journal.jsonl).
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from imgcls import io as imgio
from imgcls import manifest as mf
from imgcls.console import info, progress_bar, warn
from imgcls.errors import UserError
from imgcls.fsutil import (atomic_path, check_output_location, check_writable, is_within, remove_stale_temps,
                           safe_relative, under, write_json)
from imgcls.options import check, option
from imgcls.parallel import check_workers
from imgcls.preprocess.resize import RESIZE_MODES

NO_FACE_POLICIES = ("keep", "center-crop", "drop")
FORMATS = ("auto", "png", "jpg", "webp")
FACE_COLUMNS = [c for c in mf.columns_of("preprocess") if c.startswith("face")]   # declared in imgcls.manifest
JOURNAL = ".preprocess_journal.jsonl"
SETTINGS_FILE = "preprocess.json"
_KEPT_EXT = (".jpg", ".jpeg", ".png", ".webp")
MIN_PER_WORKER = 16


FACES, BACKGROUND, OUTPUT = "Faces", "Background", "Output images"


@dataclass
class PreprocessConfig:
    """Every option of `imgcls preprocess` but the paths (imgcls.options: default, choices, range, help, panel)."""
    remove_bg: bool = option(False, panel=BACKGROUND, flags=("--remove-bg",),
                             help="Remove the background with rembg (model file needed: imgcls models list).")
    rembg_model: str = option("u2netp", panel=BACKGROUND, help="rembg model (u2netp is fetchable offline).")
    bg_color: str = option("white", panel=BACKGROUND, help="Colour behind the cut-out and the padding: name or "
                                                            "#rrggbb.")
    keep_alpha: bool = option(False, panel=BACKGROUND, flags=("--keep-alpha",),
                              help="Keep rembg's mask as alpha (PNG output) instead of filling.")
    face_crop: bool = option(False, panel=FACES, flags=("--face-crop",),
                             help="Crop to the most confident face (deepface extract_faces, box on the original "
                                  "image).")
    detector: str = option("opencv", panel=FACES,
                           help="deepface detector backend: opencv (ships with OpenCV) or any other whose weights are "
                                "in $DEEPFACE_HOME/.deepface/weights.")
    face_margin: float = option(0.2, panel=FACES, lo=0,
                                help="Margin around the face box, a fraction of its size per side.")
    no_face: str = option("keep", panel=FACES, choices=NO_FACE_POLICIES, help="When no face is found.")
    detect_size: int = option(640, panel=FACES, lo=1,
                              help="Detect faces on a copy whose longer side is at most this (boxes mapped back).")
    size: int | None = option(None, panel=OUTPUT, lo=8, none="keep the size",
                              help="Square output side in pixels.")
    resize_mode: str = option("pad", panel=OUTPUT, choices=RESIZE_MODES,
                              help="pad (letterbox) | crop (centre) | stretch.")
    image_format: str = option("auto", panel=OUTPUT, choices=FORMATS, flags=("--format",),
                               help="auto keeps jpg / png / webp, writes png otherwise.")
    quality: int = option(95, panel=OUTPUT, lo=1, hi=100, help="JPEG / WebP quality.")
    max_pixels: int = imgio.max_pixels_option()

    def validate(self) -> None:
        """Choices and ranges (imgcls.options.check) and the options that need each other; before any work."""
        check(self)
        if self.keep_alpha and not self.remove_bg:
            raise UserError("--keep-alpha keeps the mask of --remove-bg as transparency; add --remove-bg")
        if self.keep_alpha and self.image_format == "jpg":
            raise UserError("--keep-alpha needs a format with transparency: --format png or webp")
        self.bg_rgb()

    def bg_rgb(self) -> tuple[int, int, int]:
        from PIL import ImageColor
        try:
            return ImageColor.getrgb(self.bg_color)[:3]
        except ValueError:
            raise UserError(f"--bg-color '{self.bg_color}' is not a colour; use a name (white, black) or "
                            f"#rrggbb") from None

    def settings(self) -> dict:
        """What the written pixels depend on (a change re-processes everything)."""
        d = asdict(self)
        d.pop("max_pixels")
        if not self.remove_bg:
            for k in ("rembg_model", "keep_alpha"):
                d.pop(k)
        if not self.face_crop:
            for k in ("detector", "face_margin", "no_face", "detect_size"):
                d.pop(k)
        return d


# ---------------------------------------------------------------------------------------------------------------
# One image
# ---------------------------------------------------------------------------------------------------------------

class Models:
    """The models one process needs, built once (a rembg session / a deepface detector per worker)."""

    def __init__(self, cfg: PreprocessConfig, threads: int = 0):
        self.faces = self.bg = None
        if cfg.face_crop:
            from imgcls.preprocess.faces import FaceDetector
            self.faces = FaceDetector(cfg.detector, cfg.detect_size)
        if cfg.remove_bg:
            from imgcls.preprocess.background import BackgroundRemover
            self.bg = BackgroundRemover(cfg.rembg_model, threads=threads)


def _empty_record() -> dict:
    rec = {c: None for c in FACE_COLUMNS}
    rec.update(bg_removed=False, error="", written=False)
    return rec


def process_image(src: str | os.PathLike, dst: str | os.PathLike | None, cfg: PreprocessConfig,
                  models: Models) -> tuple[dict, object]:
    """Process one file; returns (record, PIL image or None). Writes `dst` atomically when given.
    Never raises for a bad image: the record's `error` says what went wrong."""
    from imgcls.preprocess.faces import crop_box
    from imgcls.preprocess.resize import center_square, fit, pad_to
    rec = _empty_record()
    try:
        # without a face crop the output needs no more than --size pixels: JPEGs decode at a reduced DCT scale
        draft = (cfg.size, cfg.size) if cfg.size and not cfg.face_crop else None
        im = imgio.load_rgb(src, max_pixels=cfg.max_pixels, draft=draft)
    except imgio.ImageReadError as e:
        rec["error"] = e.reason
        return rec, None
    try:
        bg = cfg.bg_rgb()
        if models.faces is not None:
            face = models.faces.detect(im)
            rec["face_found"] = face is not None
            rec["faces"] = face.n_faces if face else 0
            if face is not None:
                rec.update(face_x=face.x, face_y=face.y, face_w=face.w, face_h=face.h,
                           face_confidence=round(face.confidence, 4))
                im = im.crop(crop_box(face, im.size, cfg.face_margin))
            elif cfg.no_face == "drop":
                rec["error"] = "no face found (--no-face drop)"
                return rec, None
            elif cfg.no_face == "center-crop":
                im = center_square(im)
        if cfg.size:
            im = fit(im, cfg.size, cfg.resize_mode)
        if models.bg is not None:
            im = models.bg.cutout(im, None if cfg.keep_alpha else bg)
            rec["bg_removed"] = True
        if cfg.size and cfg.resize_mode == "pad":
            im = pad_to(im, cfg.size, (*bg, 0) if im.mode == "RGBA" else bg)
    except Exception as e:   # a model failing on one odd image: report it, go on
        rec["error"] = f"processing failed: {type(e).__name__}: {e}"
        return rec, None
    if dst is not None:
        save_image(im, dst, cfg.quality)
        rec.update({k: v for k, v in imgio.probe(dst, max_pixels=None).items() if k != "error"})
        rec["written"] = True
    return rec, im


def save_image(im, dst: str | os.PathLike, quality: int = 95) -> None:
    dst = Path(dst)
    ext = dst.suffix.lower()
    with atomic_path(dst) as tmp:
        if ext in (".jpg", ".jpeg"):
            im.convert("RGB").save(tmp, "JPEG", quality=quality)
        elif ext == ".webp":
            im.save(tmp, "WEBP", quality=quality)
        else:
            im.save(tmp, "PNG", compress_level=3)


# ---------------------------------------------------------------------------------------------------------------
# Worker processes
# ---------------------------------------------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(cfg: PreprocessConfig, threads: int) -> None:
    import cv2
    cv2.setNumThreads(1)
    _WORKER["cfg"] = cfg
    _WORKER["models"] = Models(cfg, threads=threads)


def _run_chunk(tasks: list[tuple[int, str, str]]) -> list[tuple[int, dict]]:
    cfg, models = _WORKER["cfg"], _WORKER["models"]
    return [(i, process_image(src, dst, cfg, models)[0]) for i, src, dst in tasks]


# ---------------------------------------------------------------------------------------------------------------
# The whole dataset
# ---------------------------------------------------------------------------------------------------------------

OUTSIDE_ROOT = "_outside_root"


def _safe_component(name: str, fallback: str = "image") -> str:
    """One path component from untrusted text: no separators, not '.' / '..', not hidden, not empty."""
    name = name.replace("/", "_").replace("\\", "_").strip()
    name = name.lstrip(".")
    return name or fallback


def _relative_output(root: str, path: str) -> PurePosixPath:
    """Where a row's output goes under OUT (before the extension change): its path below its root when that path
    stays below the root; a row whose path is absolute or climbs out of its root (`../`) goes to
    `_outside_root/<hash of its absolute path>_<file name>` (the input is read there, never written)."""
    rel = safe_relative(path)
    if rel is not None:   # a hidden name would pass for our own temporary / journal files: '_' in front
        return PurePosixPath(*[("_" + part) if part.startswith(".") else part for part in rel.parts])
    import hashlib
    src = os.path.normpath(os.path.join(root, path))
    tag = hashlib.sha1(src.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return PurePosixPath(OUTSIDE_ROOT, f"{tag}_{_safe_component(PurePosixPath(path.replace(chr(92), '/')).name)}")


def output_names(df: pd.DataFrame, cfg: PreprocessConfig) -> list[str]:
    """Relative output path per row, unique by construction (also when compared case-insensitively): the input's
    path below its root (with a root prefix when rows come from several roots; `_outside_root/...` for paths that
    are absolute or leave their root), its extension changed where --format / --keep-alpha asks. A name that
    another row already has (or would have unchanged) gets the old extension in its stem, then _2, _3, ..."""
    roots = mf.roots(df)
    prefix = {r: (f"{k}_{_safe_component(Path(r).name, 'root')}/" if len(roots) > 1 else "")
              for k, r in enumerate(roots)}
    natural = []
    for root, path in zip(df["root"], df["path"]):
        p = PurePosixPath(prefix[root] + _relative_output(str(root), str(path)).as_posix())
        ext = p.suffix.lower()
        if cfg.keep_alpha:
            target = ".webp" if cfg.image_format == "webp" else ".png"
        elif cfg.image_format == "auto":
            target = ext if ext in _KEPT_EXT else ".png"
        else:
            target = "." + cfg.image_format
        natural.append((p, p.with_suffix(target) if target != ext else p))
    key = lambda q: q.as_posix().casefold()   # noqa: E731 - one name on a case-insensitive file system
    reserved = {key(new) for _, new in natural}
    taken: set[str] = set()
    out: list[str | None] = [None] * len(natural)
    # rows whose name is unchanged claim it first, then renamed rows in row order
    order = [i for i, (o, n) in enumerate(natural) if o == n] + [i for i, (o, n) in enumerate(natural) if o != n]
    claims = pd.Series([key(n) for _, n in natural]).value_counts()
    for i in order:
        orig, new = natural[i]
        cand = new
        if key(cand) in taken or (orig != new and claims[key(new)] > 1):
            stem = f"{orig.stem}_{orig.suffix.lstrip('.').lower()}" if orig != new else orig.stem
            cand, k = new.with_name(f"{stem}{new.suffix}"), 1
            while key(cand) in taken or (key(cand) in reserved and cand != new):
                k += 1
                cand = new.with_name(f"{stem}_{k}{new.suffix}")
        taken.add(key(cand))
        out[i] = cand.as_posix()
    names = [str(n) for n in out]
    if len({n.casefold() for n in names}) != len(names):   # the construction above guarantees it; proven here
        raise RuntimeError("preprocess: output names are not unique")
    return names


def _previous_records(out: Path, settings: dict) -> dict[str, dict]:
    """source_path -> record from the last run with the same settings (manifest, then the journal)."""
    prev: dict[str, dict] = {}
    sfile, mfile = out / SETTINGS_FILE, out / mf.MANIFEST_NAME
    same = False
    if sfile.is_file():
        try:
            same = json.loads(sfile.read_text()).get("settings") == settings
        except (ValueError, OSError):
            same = False
        if not same:
            info(f"settings differ from the last run in {out}: every image is processed again")
    if same and mfile.is_file():
        try:
            old = mf.read_manifest_file(mfile)
        except UserError:
            old = None
        if old is not None and "source_path" in old.columns:
            for r in old.to_dict("records"):
                if r.get("error", "") == "" and str(Path(r["root"]).resolve()) == str(out.resolve()):
                    prev[r["source_path"]] = r
    jfile = out / JOURNAL
    if jfile.is_file():
        with open(jfile, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except ValueError:
            header = {}
        if header.get("settings") == settings:
            for line in lines[1:]:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue   # a line cut by a crash
                if r.get("error", "") == "":
                    prev[r["source_path"]] = r
    return prev


def _open_journal(jpath: Path, settings: dict):
    """The resume journal, opened for appending: records of an earlier interrupted run with the same settings are
    kept (a second interruption loses nothing the first finished); a journal of other settings is started anew."""
    same = False
    if jpath.is_file():
        try:
            with open(jpath, encoding="utf-8") as fh:
                same = json.loads(fh.readline() or "{}").get("settings") == settings
        except (ValueError, OSError, UnicodeDecodeError):
            same = False
    if not same:
        fh = open(jpath, "w", encoding="utf-8")
        fh.write(json.dumps({"settings": settings}) + "\n")
        fh.flush()
        return fh
    with open(jpath, "rb") as fh:
        cut = False
        if fh.seek(0, os.SEEK_END) > 0:
            fh.seek(-1, os.SEEK_END)
            cut = fh.read(1) != b"\n"
    fh = open(jpath, "a", encoding="utf-8")
    if cut:          # the last line was cut by a kill: end it so the next record is a line of its own
        fh.write("\n")
        fh.flush()
    return fh


def _up_to_date(src: Path, dst: Path) -> bool:
    try:
        return dst.stat().st_mtime_ns >= src.stat().st_mtime_ns
    except OSError:
        return False


def run_preprocess(src, out, cfg: PreprocessConfig | None = None, opts: mf.LayoutOptions | None = None,
                   workers: int = 1, report: bool = True) -> pd.DataFrame:
    """Process every readable image of `src` into `out`; returns the output manifest (also written)."""
    cfg = cfg or PreprocessConfig()
    cfg.validate()
    check_workers(workers)
    out = Path(out)
    src_path = Path(src)
    check_writable(out)
    check_output_location(out, src_path if src_path.is_dir() else None)
    # Model files first: a missing one stops the run before any work, the scan included (one line, not one per
    # worker); the models themselves are built only when there is something to process
    if cfg.face_crop:
        from imgcls.weights import check_deepface_detector
        check_deepface_detector(cfg.detector)
    if cfg.remove_bg:
        from imgcls.weights import rembg_model_file
        rembg_model_file(cfg.rembg_model)
    df = mf.load(src, opts, scan=True, workers=workers, max_pixels=cfg.max_pixels)
    check_output_location(out, *mf.roots(df))
    settings = cfg.settings()

    df = df.reset_index(drop=True)
    sources = [str(p.resolve()) for p in mf.image_paths(df)]
    inside = [s for s in sources if is_within(s, out)]
    if inside:
        raise UserError(f"{len(inside)} input image(s) lie inside --out {out}, e.g. {inside[0]}; choose an --out "
                        f"that holds none of the inputs (imgcls never writes over its input)")
    names = output_names(df, cfg)
    # every output proven to lie under OUT (symlinks resolved), whatever the manifest's paths say
    dsts = [under(out, n) for n in names]
    keep = pd.Series(mf.kept(df), index=df.index)
    readable = df["error"].fillna("") == ""
    prev = _previous_records(out, settings)

    records: dict[int, dict] = {}
    todo: list[tuple[int, str, str]] = []
    for i in range(len(df)):
        if not readable[i] or not keep[i]:
            continue
        dst = dsts[i]
        r = prev.get(sources[i])
        if r is not None and r.get("path") == names[i] and _up_to_date(Path(sources[i]), dst):
            records[i] = {**_empty_record(), **{k: r.get(k) for k in FACE_COLUMNS + ["bg_removed"]
                                                + mf.SCAN_COLUMNS}, "written": True, "error": ""}
        else:
            todo.append((i, sources[i], str(dst)))
    skipped = len(records)
    n_unreadable = int((~readable).sum())
    n_not_kept = int((readable & ~keep).sum())
    if skipped:
        info(f"{skipped} image(s) already up to date in {out} (same settings, output newer than input): kept")
    if n_not_kept:
        info(f"{n_not_kept} row(s) marked keep = false by clean: not processed, left pointing at their input")

    # a spawned worker costs seconds to start (imports, model sessions): below MIN_PER_WORKER images each, one
    # process is faster (bench/preprocess_speed.py)
    parallel = workers > 1 and len(todo) >= MIN_PER_WORKER * workers
    t0, c0 = time.perf_counter(), time.process_time()
    out.mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temps(out)
    if stale:
        info(f"removed {len(stale)} temporary file(s) an interrupted run left in {out}")
    jpath = out / JOURNAL
    if todo:
        with _open_journal(jpath, settings) as journal:

            def log(i: int, rec: dict) -> None:
                records[i] = rec
                if rec["written"]:
                    journal.write(json.dumps({"source_path": sources[i], "path": names[i], **rec},
                                             default=_json_default) + "\n")
                    journal.flush()

            with progress_bar("preprocessing", len(todo)) as advance:
                if not parallel:
                    models = Models(cfg)
                    for i, s, d in todo:
                        log(i, process_image(s, d, cfg, models)[0])
                        advance()
                else:
                    _run_parallel(todo, cfg, workers, log, advance)
    elapsed = time.perf_counter() - t0
    cpu = None if parallel else time.process_time() - c0   # this process only

    result = _assemble(df, out, names, sources, records)
    mf.write(result, out / mf.MANIFEST_NAME)
    failed = sorted([(sources[i], r["error"]) for i, r in records.items() if r["error"]]
                    + [(sources[i], f"unreadable input: {df.at[i, 'error']}") for i in range(len(df))
                       if not readable[i]])
    no_face = [sources[i] for i, r in sorted(records.items()) if r.get("face_found") is False]
    summary = {
        "settings": settings, "images": int(len(df)), "processed": len(todo), "up_to_date": skipped,
        "written": sum(1 for r in records.values() if r["written"]), "failed": len(failed) - n_unreadable,
        "unreadable_input": n_unreadable, "not_kept": n_not_kept, "no_face": len(no_face),
        "seconds": round(elapsed, 2), "images_per_second": round(len(todo) / elapsed, 2) if todo and elapsed else None,
        "cpu_seconds_per_image": round(cpu / len(todo), 3) if cpu is not None and todo else None,
        "workers": workers if parallel else 1,
    }
    write_json(out / SETTINGS_FILE, summary)
    if jpath.exists():
        jpath.unlink()
    if report:
        _write_report(out, summary, result, failed, no_face, cfg)
    for s, err in failed[:10]:
        warn(f"{s}: {err}")
    if len(failed) > 10:
        warn(f"... and {len(failed) - 10} more failed image(s): see {out / 'report.html'}")
    if no_face and cfg.no_face != "drop":
        warn(f"no face found in {len(no_face)} image(s) (--no-face {cfg.no_face}); listed in {out / 'report.html'}")
    info(f"preprocess: {summary['written']} image(s) in {out} ({len(todo)} processed"
         + (f", {summary['images_per_second']} images/s" if summary["images_per_second"] else "")
         + f", {skipped} up to date, {len(failed)} failed or unreadable); manifest {out / mf.MANIFEST_NAME}")
    return result


def _json_default(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def _run_parallel(todo, cfg: PreprocessConfig, workers: int, log, advance) -> None:
    import multiprocessing
    threads = max(1, (os.cpu_count() or 1) // workers)
    chunk = max(1, min(16, len(todo) // (workers * 4)))
    chunks = [todo[k:k + chunk] for k in range(0, len(todo), chunk)]
    # spawn, not fork: a parent that already ran the models (or imported torch) holds ONNX Runtime / OpenCV /
    # OpenMP thread pools whose locks a forked child inherits (a bench that forked workers after an in-process run
    # in the same process did not finish in 10 minutes)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(cfg, threads)) as ex:
        pending = {ex.submit(_run_chunk, c) for c in chunks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    results = fut.result()
                except UserError:
                    for p in pending:
                        p.cancel()
                    raise
                except BrokenProcessPool as e:
                    raise UserError(f"a preprocess worker died ({e}); run again with --workers 1 to see why "
                                    f"(finished images are kept and skipped next time)") from None
                for i, rec in results:
                    log(i, rec)
                advance(len(results))


def _assemble(df: pd.DataFrame, out: Path, names: list[str], sources: list[str],
              records: dict[int, dict]) -> pd.DataFrame:
    res = df.copy()
    res["source_path"] = sources
    for c in FACE_COLUMNS:
        res[c] = pd.Series([None] * len(res), dtype=object)
    res["bg_removed"] = False
    for c in mf.SCAN_COLUMNS:
        res[c] = res[c].astype(object)
    out_root = str(out.resolve())
    roots, paths = list(res["root"]), list(res["path"])
    for i, r in records.items():
        for c in FACE_COLUMNS + ["bg_removed"]:
            res.at[i, c] = r.get(c)
        if r["written"]:
            roots[i], paths[i] = out_root, names[i]
            for c in mf.SCAN_COLUMNS:
                res.at[i, c] = r.get(c) if c != "error" else ""
        else:
            res.at[i, "error"] = r["error"]
    res["root"], res["path"] = roots, paths
    return mf.coerce(res)


def _write_report(out: Path, summary: dict, res: pd.DataFrame, failed, no_face, cfg: PreprocessConfig) -> None:
    from imgcls import report as rp
    sections = [("Settings", rp.key_values(summary["settings"].items())),
                ("Counts", rp.key_values((k, v) for k, v in summary.items() if k != "settings"))]
    done = res[(res["error"] == "") & (res["root"] == str(out.resolve()))]
    pairs = []
    for _, r in done.head(12).iterrows():
        before = rp.thumb_data_uri(r["source_path"], 128)
        after = rp.thumb_data_uri(Path(r["root"], r["path"]), 128)
        pairs.append(f'<div class="pair">{rp.img(before, "input", "")}{rp.img(after, "output", "")}'
                     f'<br>{rp.esc(r["path"])}</div>')
    sections.append(("Before / after (first 12)", "".join(pairs) or '<p class="muted">none</p>'))
    if cfg.face_crop:
        items = [f'<div class="pair">{rp.img(rp.thumb_data_uri(p, 96), "no face", "")}<br>{rp.esc(p)}</div>'
                 for p in no_face[:200]]
        more = f'<p class="muted">{len(no_face) - 200} more</p>' if len(no_face) > 200 else ""
        sections.append((f"No face found ({len(no_face)}; --no-face {cfg.no_face})",
                         rp.table(pd.DataFrame({"source_path": no_face}), max_rows=100000)
                         + "".join(items) + more))
    sections.append((f"Failed or unreadable, skipped ({len(failed)})", rp.table(pd.DataFrame(failed, columns=["source_path", "error"]),
                                                         max_rows=100000)))
    rp.write_page(out / "report.html", "imgcls preprocess", sections)
