"""Where each output goes (names mirrored under --out, never outside it) and what a resumed run may keep (the last
manifest with the same settings, the journal of an interrupted run, each written image's input stamp)."""
from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

import pandas as pd

from imgcls import manifest as mf
from imgcls.console import info
from imgcls.errors import UserError
from imgcls.fsutil import file_stamp, remove_earlier, safe_relative, write_text
from imgcls.outputs import PREPROCESS_JOURNAL, PREPROCESS_SETTINGS, REPORT_HTML, preprocess_source, replacing_line
from imgcls.preprocess.config import PreprocessConfig, applied_text, letterbox_fill

JOURNAL = PREPROCESS_JOURNAL      # its presence tells the data readers the run did not finish
SETTINGS_FILE = PREPROCESS_SETTINGS
INPUTS_FILE = ".preprocess_inputs.json"   # source_path -> the input's stamp when its output was made (input_stamp)
_KEPT_EXT = (".jpg", ".jpeg", ".png", ".webp")


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
    are absolute or leave their root), its extension changed where --format / --keep-alpha asks (to the format's
    lower-case one, whatever the input's case; --format auto keeps the input's as written). A name that
    another row already has (or would have unchanged) gets the old extension in its stem, then _2, _3, ..."""
    roots = mf.roots(df)
    prefix = {r: (f"{k}_{_safe_component(Path(r).name, 'root')}/" if len(roots) > 1 else "")
              for k, r in enumerate(roots)}
    natural = []
    for root, path in zip(df["root"], df["path"]):
        p = PurePosixPath(prefix[root] + _relative_output(str(root), str(path)).as_posix())
        if cfg.keep_alpha:
            target = ".webp" if cfg.image_format == "webp" else ".png"
        elif cfg.image_format == "auto":        # the input's own extension, as it is written (Y.WebP stays so)
            target = p.suffix if p.suffix.lower() in _KEPT_EXT else ".png"
        else:                                   # the format's own, lower-case: Y.WebP, X.JPG too
            target = "." + cfg.image_format
        natural.append((p, p.with_suffix(target) if target != p.suffix else p))
    key = lambda q: q.as_posix().casefold()   # noqa: E731 - one name on a case-insensitive file system
    reserved = {key(new) for _, new in natural}
    taken: set[str] = set()
    out: list[str | None] = [None] * len(natural)
    # rows whose name is unchanged (or changed in case alone: X.JPG as X.jpg is that input's own name) claim it
    # first, then renamed rows in row order
    kept = [key(o) == key(n) for o, n in natural]
    order = [i for i, k in enumerate(kept) if k] + [i for i, k in enumerate(kept) if not k]
    claims = pd.Series([key(n) for _, n in natural]).value_counts()
    for i in order:
        orig, new = natural[i]
        cand = new
        if key(cand) in taken or (not kept[i] and claims[key(new)] > 1):
            stem = orig.stem if kept[i] else f"{orig.stem}_{orig.suffix.lstrip('.').lower()}"
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


def applied(df: pd.DataFrame) -> str | None:
    """What preprocess did to a manifest's images, as typed (config.applied_text of the preprocess.json in the
    folder they were read from): '' for images no preprocess wrote, None when the rows come from folders that
    differ (or a settings file cannot be read)."""
    return _one_per_root(df, applied_text, "")


def letterboxed(df: pd.DataFrame) -> tuple[int, int, int] | None:
    """The colour preprocess letterboxed a manifest's images with (config.letterbox_fill: `--size N` padded to a
    square), None where it did not, or not all of them with one colour, or a settings file cannot be read."""
    return _one_per_root(df, letterbox_fill, None)


def made_square(df: pd.DataFrame) -> bool:
    """Whether preprocess resized every image of a manifest to a square (`--size N`, any --resize-mode), by the
    preprocess.json of each folder they were read from."""
    return bool(_one_per_root(df, lambda settings: bool(settings.get("size")), False))


def _one_per_root(df: pd.DataFrame, of_settings, unwritten):
    """`of_settings` of the preprocess.json `settings` of every folder a manifest's images were read from
    (`unwritten` for a folder no preprocess wrote) when they all agree, else None (also when a file cannot be
    read)."""
    found = set()
    for root in mf.roots(df):
        f = Path(root) / SETTINGS_FILE
        if not f.is_file():
            found.add(unwritten)
            continue
        try:
            found.add(of_settings(json.loads(f.read_text(encoding="utf-8")).get("settings") or {}))
        except (OSError, ValueError, TypeError, AttributeError, UserError):
            return None
    return found.pop() if len(found) == 1 else None


def made_from(df: pd.DataFrame) -> str | None:
    """The SRC a preprocess run read to write a manifest's images (its preprocess.json's `source`, absolute): the
    originals to preprocess again under other options. None when the rows were not all written by one such run."""
    sources = {preprocess_source(root) for root in mf.roots(df)}
    return sources.pop() if len(sources) == 1 else None


def earlier_manifest(out: Path) -> pd.DataFrame | None:
    """The manifest an earlier run wrote in `out` (None: none, or one that cannot be read): read once, for what it
    may keep (previous_records) and what it wrote (earlier_outputs)."""
    mfile = out / mf.MANIFEST_NAME
    if not mfile.is_file():
        return None
    try:
        return mf.read_manifest_file(mfile)
    except UserError:
        return None


def previous_records(out: Path, settings: dict, old: pd.DataFrame | None = None) -> dict[str, dict]:
    """source_path -> record from the last run with the same settings (its manifest `old`, earlier_manifest, then
    the journal); each with `source_stamp`, the input's input_stamp() when its output was made (None where no run
    recorded one: redone)."""
    prev: dict[str, dict] = {}
    sfile = out / SETTINGS_FILE
    same = False
    if sfile.is_file():
        try:
            same = json.loads(sfile.read_text()).get("settings") == settings
        except (ValueError, OSError):
            same = False
        if not same:
            info(f"settings differ from the last run in {out}: every image is processed again")
    if same:
        if old is not None and "source_path" in old.columns:
            stamps = _read_stamps(out / INPUTS_FILE)
            for r in old[~mf.augmented(old)].to_dict("records"):   # oversampled copies: preprocess.oversample
                if r.get("error", "") == "" and str(Path(r["root"]).resolve()) == str(out.resolve()):
                    prev[r["source_path"]] = {**r, "source_stamp": stamps.get(r["source_path"])}
    for r in journal_records(out / JOURNAL, settings):
        if r.get("error", "") == "":
            prev[r["source_path"]] = r
    return prev


def earlier_outputs(out: Path, old: pd.DataFrame | None) -> set[str]:
    """The images an earlier run wrote under `out`, as paths relative to it: the rows of its manifest `old`
    (earlier_manifest) whose root is `out` (originals and oversampled copies) and the records of an interrupted
    run's journal (any settings). Read before this run writes anything (a journal of other settings is started
    anew)."""
    names: set[str] = set()
    out_r = str(out.resolve())
    if old is not None:
        names.update(str(p) for p, r in zip(old["path"], old["root"]) if str(r) == out_r)
    names.update(journal_paths(out / JOURNAL))
    return names


def other_inputs_line(out: Path, old: pd.DataFrame | None, sources: list[str]) -> str:
    """The warning, before the work, for a run into an --out whose earlier output (its manifest `old`,
    earlier_manifest) was made from none of this run's inputs (`sources`, real paths): that run's images are
    removed once this one's are written (remove_outputs), e.g. the test set preprocessed into the default
    data/processed, where the training set's images, which data/splits.csv lists, were deleted without a word
    before. '' where there is no such output, or the two runs share an input (a rerun)."""
    if old is None or "source_path" not in old.columns:
        return ""
    out_r = str(out.resolve())
    mine = [str(s) for s, r in zip(old["source_path"], old["root"]) if str(r) == out_r and str(s)]
    if not mine or set(mine) & set(sources):
        return ""
    try:
        where = f" (from {os.path.commonpath(mine)})"
    except ValueError:      # paths on two drives (Windows)
        where = ""
    return replacing_line(out, f"an earlier preprocess output of {len(mine)} other images{where}")


def journal_paths(jfile: Path) -> list[str]:
    """Every image a resume journal records as written, under any settings: its records' and those its header
    carries over from the journals of other settings it replaced (open_journal), sorted."""
    names = {str(r["path"]) for r in journal_records(jfile) if isinstance(r, dict) and r.get("path")}
    try:
        with open(jfile, encoding="utf-8") as fh:
            header = json.loads(fh.readline() or "{}")
    except (ValueError, OSError, UnicodeDecodeError):
        header = {}
    earlier = header.get("earlier") if isinstance(header, dict) else None
    names.update(str(p) for p in (earlier if isinstance(earlier, list) else []) if p)
    return sorted(names)


def remove_outputs(out: Path, earlier, written) -> int:
    """Delete the images an earlier run wrote under `out` (`earlier`: relative paths) that this run does not
    (`written`), e.g. under another extension after --format changed, a row clean no longer keeps, an input that is
    gone, a face --no-face drop now leaves out: fsutil.remove_earlier, never the step's own manifest, settings or
    report. An earlier name that differs from one written only in case (Y.WebP, now Y.webp) is removed unless it is
    that very file (a case-insensitive file system: removing it would delete this run's output). Returns how many
    files were removed."""
    written = set(written)
    twins = {n.casefold(): n for n in written}
    gone = []
    for n in set(earlier) - written:
        if n in (mf.MANIFEST_NAME, SETTINGS_FILE, REPORT_HTML):
            continue
        twin = twins.get(n.casefold())
        if twin is not None and _same_file(out / n, out / twin):
            continue
        gone.append(n)
    return remove_earlier(out, gone)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def journal_records(jfile: Path, settings: dict | None = None) -> list[dict]:
    """The records of a resume journal written by `open_journal` under the same `settings` (None: under any) ([]
    when it is missing or cannot be read, or was written under other settings); a line cut by a crash is
    skipped."""
    if not jfile.is_file():
        return []
    try:
        lines = jfile.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        header = {}
    if settings is not None and (not isinstance(header, dict) or header.get("settings") != settings):
        return []
    records = []
    for line in lines[1:]:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def open_journal(jpath: Path, settings: dict):
    """The resume journal, opened for appending: records of an earlier interrupted run with the same settings are
    kept (a second interruption loses nothing the first finished); a journal of other settings is started anew,
    its images carried over in the new header's "earlier" (journal_paths): written under other settings, they are
    no output of this run, and the run that finishes removes them (earlier_outputs) even after more interruptions."""
    same = False
    if jpath.is_file():
        try:
            with open(jpath, encoding="utf-8") as fh:
                same = json.loads(fh.readline() or "{}").get("settings") == settings
        except (ValueError, OSError, UnicodeDecodeError):
            same = False
    if not same:
        earlier = journal_paths(jpath) if jpath.is_file() else []
        fh = open(jpath, "w", encoding="utf-8")
        fh.write(json.dumps({"settings": settings, **({"earlier": earlier} if earlier else {})}) + "\n")
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


def input_stamp(path: str | os.PathLike, sha256: str = "") -> list | None:
    """What an input was when its output was made: [size, mtime in ns, sha256 of this run's scan ('' when none)].
    An input replaced by another file (`cp -p`, an archive unpacked again: an older mtime than the output's) or
    edited has another stamp, whatever the timestamps say. None when it cannot be read (never matches)."""
    try:
        size, mtime = file_stamp(path)
    except OSError:
        return None
    return [size, mtime, sha256 if isinstance(sha256, str) else ""]


def kept_outputs(records: list[dict | None], names: list[str], stamps: list[list | None],
                 dsts: list[Path]) -> list[bool]:
    """Whether each earlier run's output of an input can be kept: written under the same name from an input whose
    stamp (input_stamp) is this one exactly, and still on disk at the size it recorded. The recorded sizes (a
    manifest's text or a journal's numbers) are read in one pass, not one pd.to_numeric per row."""
    sizes = pd.to_numeric(pd.Series([r.get("bytes") if isinstance(r, dict) else None for r in records],
                                    dtype=object), errors="coerce")
    return [_kept(record, name, stamp, dst, size)
            for record, name, stamp, dst, size in zip(records, names, stamps, dsts, sizes)]


def _kept(record: dict | None, name: str, stamp: list | None, dst: Path, size) -> bool:
    if record is None or record.get("path") != name or stamp is None or record.get("source_stamp") != stamp:
        return False
    if pd.isna(size):
        return False
    try:
        st = dst.stat()
    except OSError:
        return False
    return not dst.is_symlink() and int(size) == st.st_size


def _read_stamps(path: Path) -> dict[str, list]:
    try:
        stamps = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def write_stamps(out: Path, stamps: dict[str, list]) -> None:
    """The input stamp of every image this run's manifest says was written (kept or made), for the next run."""
    write_text(out / INPUTS_FILE, json.dumps(stamps, ensure_ascii=False) + "\n")


def up_to_date(src: Path, dst: Path) -> bool:
    """An output newer than another output it was made from (an oversampled copy and its source's output, both
    written by preprocess)."""
    try:
        return dst.stat().st_mtime_ns >= src.stat().st_mtime_ns
    except OSError:
        return False
