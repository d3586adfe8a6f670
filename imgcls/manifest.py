"""The dataset manifest: one table schema shared by every step.

A manifest is a CSV with one row per image. Core columns (see README "The manifest"):

    path     POSIX path of the image, relative to `root`
    root     the dataset root; in the file it is relative to the manifest's own folder (so a tree can move),
             in memory it is absolute
    label    class name ('' for unlabeled data)
    group    what must never be split apart (e.g. the person of a profile dataset); '' when none
    width, height, mode, format, bytes, sha256   filled by the scan (size after EXIF rotation)
    error    '' when the image is readable, else why it is not

Layouts read into it (auto-detected): an existing manifest, ImageFolder, a competition CSV, the mask competition's
profile folders, an unlabeled folder. Each later step appends its own columns and never renames one.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from imgcls import io as imgio
from imgcls.console import info, warn
from imgcls.errors import UserError
from imgcls.fsutil import atomic_path

MANIFEST_NAME = "manifest.csv"
SCAN_COLUMNS = ["width", "height", "mode", "format", "bytes", "sha256", "error"]
CORE_COLUMNS = ["path", "label", "group"] + SCAN_COLUMNS
STRING_COLUMNS = ["path", "root", "label", "group", "mode", "format", "sha256", "error"]
LAYOUTS = ("auto", "manifest", "folder", "csv", "profiles", "unlabeled")

# Mask competition: root/<id>_<gender>_<race>_<age>/<mask1..5|incorrect_mask|normal>.<ext>
PROFILE_DIR = re.compile(r"^(?P<id>[^_]+)_(?P<gender>male|female)_(?P<race>[^_]+)_(?P<age>\d+)$", re.IGNORECASE)
MASK_CLASSES = ("wear", "incorrect", "not_wear")      # mask column values 0, 1, 2
GENDER_CLASSES = ("male", "female")                     # gender column values 0, 1
DEFAULT_AGE_BANDS = (30, 60)                            # edges: <30, 30-59, >=60
PATH_COLUMN_GUESSES = ("path", "image", "image_path", "img_path", "filepath", "file_path", "file", "filename",
                       "ImageID", "image_id", "id")


@dataclass
class LayoutOptions:
    """How to read a source that is not already a manifest."""
    layout: str = "auto"
    csv: str | None = None            # competition CSV (with --layout csv or auto)
    path_col: str | None = None
    label_col: str | None = None
    group_col: str | None = None
    age_bands: Sequence[int] = field(default_factory=lambda: DEFAULT_AGE_BANDS)


# ---------------------------------------------------------------------------------------------------------------
# Profile (mask competition) labels
# ---------------------------------------------------------------------------------------------------------------

def mask_from_stem(stem: str) -> int | None:
    s = stem.lower()
    if s.startswith("mask"):
        return 0
    if s.startswith("incorrect"):
        return 1
    if s.startswith("normal"):
        return 2
    return None


def age_band(age: int | float, edges: Sequence[int] = DEFAULT_AGE_BANDS) -> int:
    """Index of the band: edges (30, 60) -> 0 for <30, 1 for 30..59, 2 for >=60."""
    return int(sum(age >= e for e in edges))


def profile_label(mask: int, gender: int, band: int, n_bands: int = 3) -> int:
    """The mask competition's class id: mask*6 + gender*3 + age_band for three bands."""
    return int(mask) * 2 * n_bands + int(gender) * n_bands + int(band)


def apply_profile_labels(df: pd.DataFrame, edges: Sequence[int] = DEFAULT_AGE_BANDS) -> pd.DataFrame:
    """(Re)derive age_band and label from the mask / gender / age columns."""
    df = df.copy()
    edges = tuple(int(e) for e in edges)
    df["age_band"] = [age_band(a, edges) for a in df["age"].astype(int)]
    df["label"] = [str(profile_label(m, g, b, len(edges) + 1))
                   for m, g, b in zip(df["mask"].astype(int), df["gender"].astype(int), df["age_band"])]
    return df


# ---------------------------------------------------------------------------------------------------------------
# Reading sources
# ---------------------------------------------------------------------------------------------------------------

def _visible(p: Path) -> bool:
    return not any(part.startswith(".") for part in p.parts)


def _images_under(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith(".") and imgio.is_image_name(f):
                out.append(Path(dirpath, f))
    return out


def _rel(p: Path, root: Path) -> str:
    return p.relative_to(root).as_posix()


def detect_layout(src: Path, opts: LayoutOptions) -> str:
    if opts.layout != "auto":
        return opts.layout
    if src.is_file():
        if src.suffix.lower() != ".csv":
            raise UserError(f"{src} is neither a folder nor a CSV file; give a dataset folder or a manifest.csv")
        cols = pd.read_csv(src, nrows=0).columns
        return "manifest" if "path" in cols and ("root" in cols or "sha256" in cols) else "csv"
    if opts.csv:
        return "csv"
    if (src / MANIFEST_NAME).is_file():
        return "manifest"
    subdirs = [d for d in sorted(src.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    if subdirs and sum(bool(PROFILE_DIR.match(d.name)) for d in subdirs) >= max(1, len(subdirs) // 2 + 1):
        return "profiles"
    if any(_images_under(d)[:1] for d in subdirs):
        return "folder"
    return "unlabeled"


def read_folder(root: Path) -> pd.DataFrame:
    rows = []
    loose = 0
    for p in _images_under(root):
        rel = p.relative_to(root)
        if len(rel.parts) < 2:
            loose += 1
            continue
        rows.append({"path": rel.as_posix(), "label": rel.parts[0], "group": ""})
    if loose:
        warn(f"{loose} image(s) directly under {root} have no class folder and were left out "
             f"(use --layout unlabeled to read them)")
    return pd.DataFrame(rows, columns=["path", "label", "group"])


def read_unlabeled(root: Path) -> pd.DataFrame:
    rows = [{"path": _rel(p, root), "label": "", "group": ""} for p in _images_under(root)]
    return pd.DataFrame(rows, columns=["path", "label", "group"])


def read_profiles(root: Path, age_bands: Sequence[int] = DEFAULT_AGE_BANDS) -> pd.DataFrame:
    rows = []
    skipped = []
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        m = PROFILE_DIR.match(d.name)
        if not m:
            skipped.append(d.name)
            continue
        for p in _images_under(d):
            mask = mask_from_stem(p.stem)
            if mask is None:
                skipped.append(_rel(p, root))
                continue
            rows.append({"path": _rel(p, root), "group": m["id"], "profile": d.name, "mask": mask,
                         "gender": GENDER_CLASSES.index(m["gender"].lower()), "race": m["race"],
                         "age": int(m["age"])})
    if skipped:
        warn(f"{len(skipped)} folder(s)/file(s) under {root} do not follow <id>_<gender>_<race>_<age>/"
             f"<mask1-5|incorrect_mask|normal> and were left out, e.g. {skipped[0]}")
    df = pd.DataFrame(rows, columns=["path", "group", "profile", "mask", "gender", "race", "age"])
    df.insert(1, "label", "")
    return apply_profile_labels(df, age_bands) if len(df) else df


def read_competition_csv(csv_path: Path, root: Path, opts: LayoutOptions) -> pd.DataFrame:
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    cols = list(table.columns)

    def need(col: str | None, flag: str, guesses: Iterable[str] = ()) -> str | None:
        if col is not None:
            if col not in cols:
                raise UserError(f"column '{col}' is not in {csv_path} (columns: {', '.join(cols)}); "
                                f"pass the right name with {flag}")
            return col
        for g in guesses:
            if g in cols:
                return g
        return None

    path_col = need(opts.path_col, "--path-col", PATH_COLUMN_GUESSES)
    if path_col is None:
        raise UserError(f"cannot tell which column of {csv_path} holds image paths (columns: {', '.join(cols)}); "
                        f"pass --path-col NAME")
    label_col = need(opts.label_col, "--label-col", ("label", "class", "target"))
    group_col = need(opts.group_col, "--group-col")
    paths = [p[2:] if p.startswith("./") else p for p in table[path_col].astype(str)]
    df = pd.DataFrame({"path": [Path(p).as_posix() for p in paths],
                       "label": table[label_col] if label_col else "",
                       "group": table[group_col] if group_col else ""})
    for c in cols:
        if c not in (path_col, label_col, group_col) and c not in df.columns:
            df[c] = table[c]
    if path_col not in df.columns and path_col != "path":
        df["source_id"] = table[path_col]   # e.g. ImageID / id, needed again for submissions
    return df


def read_manifest_file(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={c: str for c in STRING_COLUMNS}, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"{path} is empty; rebuild it with the step that wrote it") from None
    if "path" not in df.columns:
        raise UserError(f"{path} has no 'path' column; it is not an imgcls manifest (read a competition CSV "
                        f"with --layout csv --path-col NAME)")
    base = path.parent
    roots = df["root"] if "root" in df.columns else pd.Series([""] * len(df))
    df["root"] = [str((base / r).resolve()) if r not in ("", ".") else str(base.resolve()) for r in roots]
    for c in ("label", "group", "error"):
        if c not in df.columns:
            df[c] = ""
    for c in ("width", "height", "bytes"):
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    return df


def load(src: str | os.PathLike, opts: LayoutOptions | None = None, scan: bool = True, workers: int = 1,
         max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS, announce: bool = True) -> pd.DataFrame:
    """Read any supported source into a manifest DataFrame (absolute `root`), scanning images not yet scanned."""
    opts = opts or LayoutOptions()
    if opts.layout not in LAYOUTS:
        raise UserError(f"unknown layout '{opts.layout}'; use one of: {', '.join(LAYOUTS)}")
    src = Path(src)
    if not src.exists():
        raise UserError(f"{src} does not exist; give a dataset folder or a manifest.csv")
    layout = detect_layout(src, opts)
    if layout == "manifest":
        mpath = src if src.is_file() else src / MANIFEST_NAME
        if not mpath.is_file():
            raise UserError(f"no {MANIFEST_NAME} in {src}; give the manifest file or another --layout")
        df = read_manifest_file(mpath)
        if announce:
            info(f"using manifest {mpath} ({len(df)} rows)")
    else:
        if src.is_file():
            csv_path, root = src, src.parent
            if layout != "csv":
                raise UserError(f"--layout {layout} needs a folder, not the file {src}")
        else:
            root = src
            csv_path = Path(opts.csv) if opts.csv else None
            if csv_path is not None and not csv_path.is_file():
                raise UserError(f"CSV file {csv_path} does not exist; check --csv")
        if layout == "csv":
            if csv_path is None:
                raise UserError("--layout csv needs --csv FILE (the competition's train.csv)")
            df = read_competition_csv(csv_path, root, opts)
        elif layout == "folder":
            df = read_folder(root)
        elif layout == "profiles":
            df = read_profiles(root, opts.age_bands)
        else:
            df = read_unlabeled(root)
        df["root"] = str(root.resolve())
        if announce:
            info(f"read {src} as layout '{layout}' ({len(df)} images)")
    if df.empty:
        raise UserError(f"no images found in {src}; check the folder (or --layout)")
    df = ensure_columns(df)
    if scan:
        df = scan_images(df, workers=workers, max_pixels=max_pixels)
    return df


def ensure_columns(df: pd.DataFrame) -> pd.DataFrame:
    for c in CORE_COLUMNS:
        if c not in df.columns:
            df[c] = pd.NA if c in ("width", "height", "bytes") else ("" if c in ("label", "group", "error") else None)
    return df


# ---------------------------------------------------------------------------------------------------------------
# Scanning images
# ---------------------------------------------------------------------------------------------------------------

def image_paths(df: pd.DataFrame) -> list[Path]:
    """Absolute paths of the manifest's images (root / path)."""
    return [Path(r, p) for r, p in zip(df["root"], df["path"])]


def scan_images(df: pd.DataFrame, workers: int = 1, max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS,
                chunk: int = 64) -> pd.DataFrame:
    """Fill the scan columns for rows that have no sha256 yet (streaming, over `workers` processes)."""
    df = df.copy()
    todo = [i for i, h in enumerate(df["sha256"]) if not isinstance(h, str) or not h]
    if not todo:
        return df
    from functools import partial

    from imgcls.parallel import chunked_map
    paths = [str(p) for p in image_paths(df.iloc[todo])]
    results = list(chunked_map(partial(imgio.probe, max_pixels=max_pixels), paths, workers, "scanning images", chunk))
    scanned = pd.DataFrame(results, index=df.index[todo])
    for c in SCAN_COLUMNS:
        if c in ("width", "height", "bytes"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
            df.loc[scanned.index, c] = pd.array(scanned[c], dtype="Int64")
        else:
            df[c] = df[c].astype(object)
            df.loc[scanned.index, c] = scanned[c].fillna("").astype(str).values
    return df


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose image could be read."""
    return df[df["error"].fillna("") == ""]


def class_names(labels: Iterable) -> list[str]:
    """Sorted distinct non-empty labels; numeric labels sort as numbers ('2' < '10')."""
    names = sorted({str(x) for x in labels if str(x) != "" and not pd.isna(x)})
    if names and all(re.fullmatch(r"-?\d+", n) for n in names):
        return sorted(names, key=int)
    return names


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------

def ordered_columns(df: pd.DataFrame) -> list[str]:
    first = [c for c in ("path", "label", "group") if c in df.columns]
    scan = [c for c in SCAN_COLUMNS if c in df.columns]
    rest = [c for c in df.columns if c not in first and c not in scan and c != "root"]
    return first + rest + scan + ["root"]


def write(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a manifest atomically; `root` is stored relative to the manifest's folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = df.copy()
    base = path.parent.resolve()
    out["root"] = [Path(os.path.relpath(r, base)).as_posix() for r in out["root"]]
    with atomic_path(path) as tmp:
        out[ordered_columns(out)].to_csv(tmp, index=False)
    return path


def roots(df: pd.DataFrame) -> list[str]:
    return sorted(set(df["root"]))


def default_source(candidates: Sequence[str | os.PathLike], what: str) -> Path:
    """The newest existing candidate (e.g. data/splits.csv, data/processed, data/clean, data/raw), announced."""
    found = [Path(c) for c in candidates if Path(c).exists()]
    if not found:
        raise UserError(f"no {what} given and none of {', '.join(map(str, candidates))} exists; "
                        f"pass the data folder or manifest")
    newest = max(found, key=lambda p: (p / MANIFEST_NAME).stat().st_mtime if (p / MANIFEST_NAME).exists()
                 else p.stat().st_mtime)
    info(f"using {newest} (newest of {', '.join(map(str, candidates))})")
    return newest
