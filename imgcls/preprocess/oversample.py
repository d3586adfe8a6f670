"""Offline minority oversampling (`preprocess --oversample TARGET --oversample-aug light|medium|heavy|mixup`).

After the originals are written, each labelled class below its target (imgcls.oversample.class_targets: min(TARGET,
count x --oversample-max-factor)) gets that many augmented copies of its written images, drawn in a seeded order
so every image is used once before any is used twice. A copy is made from the ORIGINAL's output (it has the same
crop, size and background as its source) by train's augmentation preset (imgcls.train.data.augment_transform;
`light`: the mirror, then small affine moves, light_copy), or, with `mixup`, as a pixel blend of two images of the
class (the mask write-up's 60+ group; a class of one image gets `light` copies: there is no second image to blend).
A copy's pixels differ from its source's and from the source's other copies (make_copy draws again).

A copy is written beside its source as `<stem>__os<k><ext>` (k = the k-th copy of that source) and is one more
manifest row: the source's columns, its own `path` and scan columns, `source_path` = the source's input image and
`augmented_from` = the source row's `path` (two paths joined by '|' for mixup). `split` keeps a copy on its sources'
side (imgcls.links.reference_pairs; a mixup copy of images on two sides is left out, of two folds kept in one
source's: split.assign.follow_sources),
`train` never validates on one. Each copy's randomness is seeded by (--seed,
its name): a re-run with the same settings writes the same pixels, and a resumed run keeps copies already written
(newer than their source, same oversampling settings: the last manifest, or the journal of an interrupted run).
A copy of a grey source (written 'L', io.load_rgb_or_grey) is grey too (make_copy).
"""
from __future__ import annotations

import json
import math
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from imgcls import io as imgio
from imgcls import manifest as mf
from imgcls.console import info, plural, progress_bar, warn
from imgcls.fsutil import under
from imgcls.outputs import OVERSAMPLE_JOURNAL
from imgcls.oversample import class_targets, parse_target
from imgcls.preprocess.config import PreprocessConfig
from imgcls.preprocess.image import save_image
from imgcls.preprocess.outputs import SETTINGS_FILE, journal_paths, journal_records, open_journal, up_to_date

COPY_JOURNAL = OVERSAMPLE_JOURNAL    # its presence tells the data readers the run did not finish
COPY_TAG = "__os"
MIXUP_RANGE = (0.3, 0.7)   # the first image's share of a mixup blend, drawn uniformly
# a light copy after the first: torchvision's RandomAffine of a few degrees / percent, so each copy differs
LIGHT_AFFINE = {"degrees": 5, "translate": (0.04, 0.04), "scale": (0.95, 1.05)}
MAX_DRAWS = 20             # draws of a copy before one equal to its source is kept (no op changes a flat image)


def copy_name(source_path: str, k: int) -> str:
    p = PurePosixPath(source_path)
    return p.with_name(f"{p.stem}{COPY_TAG}{k}{p.suffix}").as_posix()


def possible_copy_names(df: pd.DataFrame, names: list[str], cfg: PreprocessConfig) -> list[str]:
    """Every name an oversampled copy may take in this run (`names`: the rows' output paths, output_names), known
    before any image is written, for the refusal of a user's own files of those names that comes before the work:
    copy_name(k) of each kept, labelled row that is not a copy already, for every k up to the most copies of one
    image --oversample-max-factor allows (class_targets brings a class of n images to at most n x the factor:
    k <= ceil(factor) - 1). Which of them are made waits for the written images (plan_copies on add_copies's rows:
    an image that fails changes its class's draw)."""
    if cfg.oversample_settings() is None:
        return []
    k_max = math.ceil(cfg.oversample_max_factor) - 1
    labelled = (mf.text_values(df["label"]) != "").to_numpy() if "label" in df.columns else \
        np.zeros(len(df), bool)
    sources = mf.kept(df) & labelled & ~mf.augmented(df)
    return [copy_name(n, k) for n, s in zip(names, sources) if s for k in range(1, k_max + 1)]


def refuse_taken_copy_names(df: pd.DataFrame, names: list[str], cfg: PreprocessConfig) -> list[str]:
    """possible_copy_names, refused before any work where an input image already has one of them (b/000__os1.png
    beside b/000.png; a passed-through copy of an earlier run, its source copied again): its path or its output name
    (`names`), compared case-insensitively. The refusal came only after every image was processed (add_copies's
    plan, which waits for the written images; its names are among these). Returns them (refuse_users_files's
    check of a user's own files under --out)."""
    possible = possible_copy_names(df, names, cfg)
    if not possible:
        return possible
    given = [str(p) for p in df["path"]]
    taken = {**{p.casefold(): p for p in given}, **{n.casefold(): p for n, p in zip(names, given)}}
    clash = next((n for n in possible if n.casefold() in taken), None)
    if clash is not None:
        from imgcls.errors import UserError
        raise UserError(f"--oversample {cfg.oversample}: an oversampled copy may be named {clash}, which the input "
                        f"image {taken[clash.casefold()]} already is (names ending in {COPY_TAG}<k> are preprocess's "
                        f"copies); rename that image, or drop --oversample")
    return possible

def _seed(seed: int, name: str) -> list[int]:
    return [int(seed), zlib.crc32(name.encode("utf-8", "surrogateescape"))]


def plan_copies(df: pd.DataFrame, eligible: np.ndarray, cfg: PreprocessConfig) -> list[tuple[str, list[int]]]:
    """(copy name, [source position(s)]) for every copy, in a stable order: per class (sorted), a seeded
    permutation of the class's eligible rows repeated until the class reaches its target."""
    labels = df["label"].astype(str).to_numpy()
    idx = np.flatnonzero(eligible)
    counts = pd.Series(labels[idx]).value_counts().to_dict()
    goal = class_targets(counts, cfg.oversample, cfg.oversample_max_factor)
    plan: list[tuple[str, list[int]]] = []
    for lab in sorted(goal):
        members = idx[labels[idx] == lab]
        extra = goal[lab] - len(members)
        if extra <= 0:
            continue
        rng = np.random.default_rng(_seed(cfg.seed, "class:" + lab))
        order = members[rng.permutation(len(members))]
        for j in range(extra):
            src = int(order[j % len(order)])
            k = j // len(order) + 1
            sources = [src]
            if cfg.oversample_aug == "mixup" and len(members) > 1:
                partner = int(order[(j % len(order) + 1 + rng.integers(len(order) - 1)) % len(order)])
                sources.append(partner)
            plan.append((copy_name(str(df.at[src, "path"]), k), sources))
    return plan


def copy_index(name: str) -> tuple[str, int]:
    """(source name, k) of copy_name's `<stem>__os<k><ext>`; (name, 0) for a name that is not a copy's."""
    p = PurePosixPath(name)
    stem, tag, k = p.stem.rpartition(COPY_TAG)
    if not tag or not k.isdigit():
        return name, 0
    return p.with_name(stem + p.suffix).as_posix(), int(k)


def light_copy(x, k: int, first_draw: bool, fill):
    """The k-th light copy of a uint8 [3, H, W] image: copy 1 is its mirror; a later copy (or copy 1 drawn again,
    its source's mirror being the source) is mirrored when k is odd and moved by a small affine (LIGHT_AFFINE)
    drawn from torch's generator. Train's light preset (a random flip) alone makes copies repeat their image."""
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F
    if k % 2:
        x = F.horizontal_flip(x)
    if k == 1 and first_draw:
        return x
    # a shift of a pixel at least (torchvision rounds it to whole pixels: 4% of a 6 px image is none); nearest, as
    # train's rotation: torchvision's bilinear blends the fill in with weights already applied, a grey line along
    # the moved edge of a white drawing (copies only)
    h, w = x.shape[-2:]
    shift = tuple(max(t, 1 / n) for t, n in zip(LIGHT_AFFINE["translate"], (w, h)))
    return v2.RandomAffine(**{**LIGHT_AFFINE, "translate": shift}, fill=list(fill))(x)


def _digest(x) -> bytes:
    """A copy's pixels as a short key (make_copy's comparison of a draw with the source's earlier copies)."""
    import hashlib
    return hashlib.blake2b(str(tuple(x.shape)).encode() + x.numpy().tobytes(), digest_size=16).digest()


def make_copy(images: list, cfg: PreprocessConfig, name: str, drawn: dict[str, bytes] | None = None):
    """(the copy's pixels, whether they are new) from its source image(s) (PIL 'L' or RGB, as io.load_rgb_or_grey
    reads them), seeded by (--seed, name); 'L' when every source is. The augmentation runs on the RGB train reads
    (io.load_rgb: the grey level in R, G and B), and on such an image every preset keeps the channels equal (flip,
    crop, rotation, affine and perspective filled with the border's own grey, erasing with 0, brightness / contrast /
    saturation blends towards one grey value per pixel, a hue shift of a colourless pixel; test_oversample checks
    each preset), so the grey copy is its R channel: the pixels train reads back from it are the augmented RGB.

    A copy differs from its source: a draw with the source's pixels is drawn again (train's presets can skip every
    op on a small image), up to MAX_DRAWS times. The k-th copy of a preset also differs from copies 1..k-1 of its
    source, which are drawn again here where `drawn` lacks them (each seeded by its own name): the copies of one
    source are made alike in any order and on a resumed run. Mixup blends a partner the plan drew, so only the
    source is compared there. `drawn`: copy name -> _digest of the copies drawn so far in this run (add_copies'),
    read and filled here: copy k draws only itself where copies 1..k-1 were drawn before it (not k(k+1)/2 draws).
    `new` is False where no draw differed (an image of one colour, a tiny one with many copies: add_copies says)."""
    import torch
    from PIL import Image
    from torchvision.transforms import v2

    from imgcls.train.data import augment_transform, border_colour, random_erasing
    grey = all(im.mode == "L" for im in images)
    images = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
    base = images[0]
    x0 = v2.ToImage()(base)
    if cfg.oversample_aug == "mixup" and len(images) > 1:
        rng = np.random.default_rng(_seed(cfg.seed, name))
        other = images[1].resize(base.size, Image.BILINEAR) if images[1].size != base.size else images[1]
        for _ in range(MAX_DRAWS):
            lam = float(rng.uniform(*MIXUP_RANGE))
            out = Image.blend(other, base, lam)   # lam of `base`, 1 - lam of the partner
            if not torch.equal(v2.ToImage()(out), x0):
                return (out.getchannel("R") if grey else out), True
        # a partner with the source's pixels (a duplicate in the class): no blend differs, light copies do
    preset = "light" if cfg.oversample_aug == "mixup" else cfg.oversample_aug
    w, h = base.size
    # rotation brings in the source's own border colour: white (train's --fill default) put bright corners on the
    # copies of a black-background set, the minority classes' copies only, a cue that names the class
    fill = border_colour(np.asarray(base)[None])
    aug = augment_transform(preset, (h, w), fill=fill)
    erase = random_erasing(preset)
    source, k = copy_index(name)
    names = [copy_name(source, j) for j in range(1, k)] + [name]
    drawn = {} if drawn is None else drawn
    seen = {_digest(x0)}
    with torch.random.fork_rng(devices=[]):
        for j, copy in enumerate(names, 1 if k else 0):
            if copy != name and copy in drawn:
                seen.add(drawn[copy])
                continue
            torch.manual_seed(int(np.random.default_rng(_seed(cfg.seed, copy)).integers(2 ** 62)))
            for draw in range(MAX_DRAWS):
                if preset == "light":
                    x = light_copy(x0, j, draw == 0, fill)
                else:
                    x = aug(x0)
                    if erase is not None:
                        x = erase(x)
                key = _digest(x)
                new = key not in seen
                if new:
                    break
            seen.add(key)
            drawn[copy] = key
    out = v2.ToPILImage()(x).convert("RGB")
    return (out.getchannel("R") if grey else out), new


def _previous_copies(out: Path, settings: dict) -> dict[str, dict]:
    """name -> copy record of the last finished run (its manifest) or of an interrupted one (the journal), when
    their oversampling settings are these."""
    prev: dict[str, dict] = {}
    sfile, mfile = out / SETTINGS_FILE, out / mf.MANIFEST_NAME
    try:
        same = json.loads(sfile.read_text()).get("oversample_settings") == settings if sfile.is_file() else False
    except (ValueError, OSError):
        same = False
    if same and mfile.is_file():
        try:
            old = mf.read_manifest_file(mfile)
        except Exception:   # a damaged manifest: nothing to keep
            old = None
        if old is not None:
            for r in old[mf.augmented(old)].to_dict("records"):
                prev[r["path"]] = r
    for r in journal_records(out / COPY_JOURNAL, settings):
        prev[r["path"]] = r
    return prev


def stale_copies(out: Path) -> list[str]:
    """Paths of the copies an earlier run wrote in `out` (to remove those a new run no longer writes): those the last
    manifest lists and those an interrupted run's journal records, under any settings, with the copies of the
    interrupted runs of other settings its header carries over (journal_paths)."""
    names = journal_paths(out / COPY_JOURNAL)
    mfile = out / mf.MANIFEST_NAME
    if not mfile.is_file():
        return names
    try:
        old = mf.read_manifest_file(mfile)
    except Exception:
        return names
    return old.loc[mf.augmented(old), "path"].astype(str).tolist() + names


def add_copies(res: pd.DataFrame, out: Path, cfg: PreprocessConfig) -> tuple[pd.DataFrame, dict]:
    """`res` (preprocess's output rows) plus a row per oversampled copy, written under `out`; returns (rows,
    summary). Sources: labelled rows written to `out` that are not copies themselves."""
    settings = cfg.oversample_settings()
    out_root = str(out.resolve())
    # an earlier run's copies this run does not make go, but never an image this run wrote itself: an input image
    # named like a copy (b/000__os1.png), written where the earlier run's copy of that name was
    old_copies = set(stale_copies(out)) - {str(p) for p, r in zip(res["path"], res["root"]) if str(r) == out_root}
    jpath = out / COPY_JOURNAL
    if settings is None:
        _remove(out, old_copies)    # an interrupted run's journal goes with the manifest (run.py): nothing to resume
        return res, {}
    parse_target(cfg.oversample)
    res = res.reset_index(drop=True)
    if "augmented_from" not in res.columns:
        res["augmented_from"] = ""
    copies_in = mf.augmented(res)
    if copies_in.any():
        warn(f"{int(copies_in.sum())} input row(s) are already oversampled copies (augmented_from): passed through, "
             f"not counted and not copied again")
    eligible = ((res["root"].astype(str) == out_root) & (mf.error_texts(res) == "")
                & (mf.text_values(res["label"]) != "")).to_numpy() & mf.kept(res) & ~copies_in
    plan = plan_copies(res, eligible, cfg)     # no name an input image has: refuse_taken_copy_names, before the work
    prev = _previous_copies(out, settings)
    paths = list(res["path"].astype(str))
    rows, kept_n, written, repeats = [], 0, 0, []
    drawn: dict[str, bytes] = {}    # make_copy's digests of the copies drawn: copy k draws only itself
    with open_journal(jpath, settings) as journal, progress_bar("writing oversampled copies", len(plan)) as advance:
        for name, sources in plan:
            src_rows = [res.iloc[s] for s in sources]
            dst = under(out, name)
            origin = mf.COPY_SEP.join(paths[s] for s in sources)
            r = prev.get(name)
            scan = None
            if r is not None and str(r.get("augmented_from", "")) == origin and dst.is_file() \
                    and all(up_to_date(out / paths[s], dst) for s in sources):
                scan = {c: r.get(c) for c in mf.SCAN_COLUMNS}
                kept_n += 1
            else:
                try:
                    ims = [imgio.load_rgb_or_grey(out / paths[s], max_pixels=None) for s in sources]
                except imgio.ImageReadError as e:
                    warn(f"{out / paths[sources[0]]}: {e.reason}; no copy {name}")
                    advance()
                    continue
                copy, new = make_copy(ims, cfg, name, drawn)
                if not new:
                    repeats.append(name)
                save_image(copy, dst, cfg.quality)
                scan = {k: v for k, v in imgio.probe(dst, max_pixels=None).items()}
                written += 1
                journal.write(json.dumps({"path": name, "augmented_from": origin, **scan}, default=str) + "\n")
                journal.flush()
            row = src_rows[0].to_dict()
            row.update(scan)
            row.update(path=name, root=out_root, augmented_from=origin, error="")
            rows.append(row)
            advance()
    if repeats:
        from imgcls.options import shown
        one = len(repeats) == 1
        warn(f"{plural(len(repeats), 'oversampled copy', 'oversampled copies')} ({shown(repeats)}) "
             f"equal{'s its' if one else ' their'} source or an earlier copy of it: no draw of --oversample-aug "
             f"{cfg.oversample_aug} changed it (an image of one colour, or too small for that many copies?)")
    _remove(out, old_copies - {r["path"] for r in rows})
    # the journal stays until run.py has written manifest.csv and preprocess.json: a kill before them leaves the
    # earlier manifest over these copies, refused as unfinished while the journal is there
    result = pd.concat([res, pd.DataFrame(rows, columns=res.columns)], ignore_index=True) if rows else res
    per_class = pd.Series([str(r["label"]) for r in rows]).value_counts().sort_index().to_dict() if rows else {}
    summary = {"settings": settings, "copies": len(rows), "written": written, "up_to_date": kept_n,
               "per_class": {str(k): int(v) for k, v in per_class.items()}}
    info(f"oversampling ({cfg.oversample}, x{cfg.oversample_max_factor:g} at most, {cfg.oversample_aug}): "
         f"{len(rows)} cop{'y' if len(rows) == 1 else 'ies'} of {len(per_class)} class(es) "
         f"({written} written, {kept_n} up to date)")
    return mf.coerce(result), summary


def _remove(out: Path, names) -> None:
    """Delete copies an earlier run wrote that this run does not list (only files named as copies, under out)."""
    gone = 0
    for n in sorted(names):
        if COPY_TAG not in PurePosixPath(n).stem:
            continue
        try:
            p = under(out, n)
        except Exception:
            continue
        if p.is_file():
            p.unlink()
            gone += 1
    if gone:
        info(f"removed {plural(gone, 'oversampled copy', 'oversampled copies')} of an earlier run that this run does "
             f"not make")
