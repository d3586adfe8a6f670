"""The dataset manifest: one table schema shared by every step.

A manifest is a CSV with one row per image. Core columns (see README "The manifest"):

    path     POSIX path of the image, relative to `root`
    root     the dataset root; in the file it is relative to the manifest's own folder (so a tree can move),
             in memory it is absolute
    label    class name ('' for unlabeled data)
    group    what must never be split apart (e.g. the person of a profile dataset); '' when none
    width, height, mode, format, bytes, mtime, sha256   filled by the scan (size after EXIF rotation; mtime: the
             file's st_mtime_ns when it was hashed)
    error    '' when the image is readable, else why it is not

Layouts read into it (auto-detected here, read by imgcls.layouts): an existing manifest, ImageFolder, a competition
CSV, the mask competition's profile folders, an unlabeled folder. Each later step appends its own columns and never renames one; every column
any step writes is declared in `COLUMNS` (its type, the step that adds it) and coerced to that type when a manifest
is read, so every step sees the same values (`kept` is the one reading of clean's `keep`).
"""
from __future__ import annotations

import os
import re
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from imgcls import io as imgio
from imgcls.console import info, plural, sh, warn
from imgcls.errors import UserError
from imgcls.fsutil import write_table
from imgcls.options import FALSE_WORDS, TRUE_WORDS, check, shown, truth
from imgcls.outputs import MANIFEST_NAME  # noqa: F401  (the file's name, beside the other outputs')
from imgcls.layouts import (COMMON_EXTENSIONS, CSV_GROUPS_GUESSED, CSV_IMAGE_FOLDERS, CSV_LABELS_GUESSED, NO_GROUPS,
                            SPLIT_FOLDERS, FolderView, LayoutOptions, LoneFolder, csv_route, most_of, nfc,
                            read_competition_csv, read_csv, read_folder, read_profiles, read_unlabeled, row_at)
from imgcls.profiles import DEFAULT_AGE_BANDS

# how a guessed `group` column is changed: another column, or none (a super-class's column is not the groups)
GROUPS_FIX = f"--group-col COL reads another column, --group-col {NO_GROUPS} reads no groups"
CSV_READ = "imgcls_csv_read"       # DataFrame.attrs key: the competition CSV a manifest was read from
LAYOUT_READ = "imgcls_layout_read"  # DataFrame.attrs key: the layout `load` read the source as (layout_read)
MANIFEST_READ = "imgcls_manifest_read"  # DataFrame.attrs key: the manifest file a manifest layout was read from
FOLDER_READ = "imgcls_folder_read"  # DataFrame.attrs key: the folder given whose CSV / profiles sit below it (input_folders)
READ_LINE = "imgcls_read_line"    # DataFrame.attrs key: load's line saying what it read (announce_read)
SCAN_COLUMNS = ["width", "height", "mode", "format", "bytes", "mtime", "sha256", "error"]
# the `error` of a row preprocess --no-face drop leaves out (readable, but no face found)
NO_FACE_DROPPED = "no face found (--no-face drop)"
CORE_COLUMNS = ["path", "label", "group"] + SCAN_COLUMNS


# ---------------------------------------------------------------------------------------------------------------
# The columns: who adds each one, and its type
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """A manifest column. `kind`: str | int | float | bool. `blank`: the value of an empty cell (bool columns;
    None = unknown). `strict`: a cell that does not parse as `kind` is an error naming the file, row and column;
    not strict (attributes a competition CSV may also carry as text): the column is then left as text."""
    name: str
    kind: str
    step: str
    blank: object = None
    strict: bool = True


COLUMNS: dict[str, Column] = {c.name: c for c in (
    Column("path", "str", "manifest"), Column("label", "str", "manifest"), Column("group", "str", "manifest"),
    Column("root", "str", "manifest"),
    Column("width", "int", "manifest"), Column("height", "int", "manifest"), Column("mode", "str", "manifest"),
    Column("format", "str", "manifest"), Column("bytes", "int", "manifest"), Column("mtime", "int", "manifest"),
    Column("sha256", "str", "manifest"),
    Column("error", "str", "manifest"), Column("source_id", "str", "manifest"),
    # the profiles layout (mask competition)
    Column("profile", "str", "manifest"), Column("race", "str", "manifest"),
    Column("mask", "int", "manifest", strict=False), Column("gender", "int", "manifest", strict=False),
    Column("age", "int", "manifest", strict=False), Column("age_band", "int", "manifest", strict=False),
    # clean
    Column("keep", "bool", "clean", blank=True), Column("reason", "str", "clean"),
    Column("dup_group", "str", "clean"), Column("duplicate_of", "str", "clean"),
    Column("ood_score", "float", "clean"), Column("label_conflict", "bool", "clean", blank=False),
    # preprocess
    Column("source_path", "str", "preprocess"), Column("face_found", "bool", "preprocess", blank=None),
    Column("face_x", "int", "preprocess"), Column("face_y", "int", "preprocess"),
    Column("face_w", "int", "preprocess"), Column("face_h", "int", "preprocess"),
    Column("face_confidence", "float", "preprocess"), Column("faces", "int", "preprocess"),
    # --remove-bg with a face found: the share of the face rembg's matte kept (its mean alpha over the central 80%
    # of the face box); below preprocess's FACE_LOST the matte took the face for background
    Column("face_kept", "float", "preprocess"),
    # --remove-bg: the share of the written image rembg's matte kept (its mean alpha, padding aside); below
    # preprocess's BLANK_MATTE the image is blank, or nearly (the background colour), face or not
    Column("matte_kept", "float", "preprocess"),
    Column("bg_removed", "bool", "preprocess", blank=False),
    # an oversampled copy (preprocess --oversample): the `path` of the row(s) it was made from, '|'-separated (two
    # for a mixup copy); '' for an original. split keeps a copy on its sources' side, train never validates on one
    Column("augmented_from", "str", "preprocess"),
    # split
    Column("split", "str", "split"), Column("fold", "int", "split"), Column("drop_reason", "str", "split"),
)}
# the scan's whole-number columns (width, height, bytes, mtime): nullable integers (Int64) wherever a scan fills them
INT_SCAN_COLUMNS = tuple(c for c in SCAN_COLUMNS if COLUMNS[c].kind == "int")


def columns_of(step: str) -> list[str]:
    """The columns `step` (manifest, clean, preprocess, split) adds, in their written order."""
    return [c.name for c in COLUMNS.values() if c.step == step]


def _blank(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def text_values(values) -> pd.Series:
    """Each value as text, '' where missing: the one reading of a text column (label, error, root, ...) whatever
    dtype a CSV gave it (str, object, all-empty float64, Int64). A value reads as astype(str) gives it (a float
    column's 1.0 as '1.0'); fillna('') first, as before, warned on a float64 column (pandas 3: Pandas4Warning, an
    error in pandas 4) and raised on Int64."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    return s.astype(str).where(s.notna().to_numpy(), "")


def parse_bool(v, blank=None):
    """A bool cell: True / False from a bool, 0 / 1 or one of the truth table's words (options.truth: TRUE_WORDS /
    FALSE_WORDS, case and surrounding spaces ignored); `blank` for an empty cell (`keep`: kept - no decision to drop
    it, as for a manifest without the column); raises ValueError for anything else."""
    if _blank(v):
        return blank
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)) and v in (0, 1):
        return bool(v)
    read = truth(v)
    if read is None:
        raise ValueError(v)
    return read


def _bad_cell(col: Column, df: pd.DataFrame, ok: np.ndarray, where: str) -> UserError:
    """The line for df's first cell of `col` not `ok`: its row named by the file's line where df was read from one
    (row_at)."""
    pos = int(np.flatnonzero(~ok)[0])
    words = ", ".join(f"{t}/{f}" for t, f in zip(TRUE_WORDS, FALSE_WORDS))      # options' truth table, paired
    accepted = (words + (" or empty (= kept)" if col.name == "keep" else "")
                if col.kind == "bool" else f"a number ({col.kind})")
    origin = "the manifest's reader" if col.step == "manifest" else f"imgcls {col.step}"
    return UserError(f"{row_at(df, pos, where)} has '{df[col.name].iloc[pos]}' in its column '{col.name}' (accepted: "
                     f"{accepted}); fix the cell or rebuild the file with {origin}")


def coerce(df: pd.DataFrame, where: str = "the manifest") -> pd.DataFrame:
    """Every declared column present in df converted to its declared type (in place; returns df): str -> text with
    '' for empty, int -> Int64, float -> float64, bool -> bool (BooleanDtype where empty means unknown)."""
    for name in [c for c in df.columns if c in COLUMNS]:
        col, s = COLUMNS[name], df[name]
        if col.kind == "str":
            df[name] = s.map(lambda v: "" if _blank(v) else str(v)).astype(object)
        elif col.kind == "bool":
            if s.dtype == bool:
                continue
            parsed, ok = [], np.ones(len(s), bool)
            for k, v in enumerate(s.tolist()):
                try:
                    parsed.append(parse_bool(v, col.blank))
                except ValueError:
                    parsed.append(None)
                    ok[k] = False
            if not ok.all():
                raise _bad_cell(col, df, ok, where)
            df[name] = pd.array(parsed, dtype="boolean" if col.blank is None else bool)
        else:
            blank = s.map(_blank).to_numpy(bool)
            # the filled cells parsed apart from the blanks: whole numbers stay int64, exact (with a blank's NaN among
            # them they were parsed as float64, which rounds a 19-digit mtime in ns to its 53 bits)
            filled = pd.to_numeric(s[~blank], errors="coerce")
            ok = blank.copy()
            ok[~blank] = filled.notna().to_numpy()
            if col.kind == "int":
                ok[~blank] &= (filled.fillna(0) == filled.fillna(0).round()).to_numpy()
            if not ok.all():
                if col.strict:
                    raise _bad_cell(col, df, ok, where)
                continue
            if col.kind == "int":
                cells = np.full(len(s), None, object)
                cells[~blank] = filled.astype("Int64").to_numpy(object)
                df[name] = pd.array(cells, dtype="Int64")
            else:
                df[name] = filled.reindex(s.index).astype("float64")
    return df


UNREADABLE = "unreadable"        # clean's `reason` of a row it left out for its scan's `error` (judge_readable)


def judge_readable(df: pd.DataFrame, rows: Iterable[int] | None = None) -> None:
    """clean's `keep` and `reason` by the scan's `error`, in place. `rows` None (clean's own scan): every row, one
    readable kept (reason ''), one unreadable not (reason UNREADABLE). `rows` (the positions a later step scanned
    again, scan_images: a raised --max-pixels, a file restored): those clean left out as UNREADABLE that read now
    are kept (reason ''), as clean kept every readable image; clean's other verdicts stand, and a row unreadable now
    is left out by its `error`. Nothing for a table without clean's columns."""
    readable = error_texts(df).to_numpy() == ""
    if rows is None:
        df["keep"] = readable
        df["reason"] = np.where(readable, "", UNREADABLE)
        return
    if not {"keep", "reason"} <= set(df.columns):
        return
    reasons = text_values(df["reason"]).to_numpy()
    back = [i for i in rows if readable[i] and reasons[i] == UNREADABLE]
    if back:
        keep = kept(df).copy()
        keep[back] = True
        df["keep"] = keep
        df["reason"] = df["reason"].astype(object)
        df.iloc[back, df.columns.get_loc("reason")] = ""


def kept(df: pd.DataFrame) -> np.ndarray:
    """Rows clean kept: the `keep` column read with the one truth table (no column: every row)."""
    if "keep" not in df.columns:
        return np.ones(len(df), bool)
    return coerce(df[["keep"]].copy())["keep"].to_numpy(bool)


COPY_SEP = "|"   # between the sources of a mixup copy in `augmented_from`


def augmented(df: pd.DataFrame) -> np.ndarray:
    """Rows that are oversampled copies (a non-empty `augmented_from`; no column: none)."""
    if "augmented_from" not in df.columns:
        return np.zeros(len(df), bool)
    return (text_values(df["augmented_from"]).str.strip() != "").to_numpy()


def copy_sources(value) -> list[str]:
    """The `path`s an `augmented_from` cell names (empty for an original)."""
    return [] if _blank(value) else [p for p in str(value).split(COPY_SEP) if p]


def copy_source_rows(df: pd.DataFrame) -> list[list[int]]:
    """Per row, the positions of the rows its `augmented_from` names (copy_sources; a name no row has left out):
    [] for an original."""
    if "augmented_from" not in df.columns:
        return [[] for _ in range(len(df))]
    where: dict[str, int] = {}
    for k, p in enumerate(df["path"].astype(str)):
        where.setdefault(p, k)
    return [[where[s] for s in copy_sources(a) if s in where] for a in df["augmented_from"]]


# ---------------------------------------------------------------------------------------------------------------
# Reading sources
# ---------------------------------------------------------------------------------------------------------------

def detect_layout(src: Path, opts: LayoutOptions) -> str:
    return detect_source(src, opts)[0]


def detect_source(src: Path, opts: LayoutOptions, view: FolderView | None = None
                  ) -> tuple[str, LoneFolder | None, FolderView]:
    """detect_layout's answer, with the image folder a folder holds alone where that decided it (the view's
    lone_folder: the classes' root, or the unlabeled images, walked once: load reads them from it) and the look at
    the folder (given, or the CSV's) that decided it (FolderView: its listing, CSVs and findings, which load reads
    instead of looking again). `view`: that look where the caller made it already (source_view)."""
    is_file = src.is_file()
    view = view if view is not None else source_view(src, opts)
    if opts.layout != "auto":
        return opts.layout, None, view
    if is_file:
        if src.suffix.lower() != ".csv":
            raise UserError(f"{src} is neither a folder nor a CSV file; give a dataset folder or a manifest.csv")
        cols = read_csv(src, nrows=0, text=view.text(src)).columns     # its text read once: load reads it
        if "path" in cols and ("root" in cols or "sha256" in cols):
            return "manifest", None, view
        return ("profiles" if view.profiles_table_root(src) is not None else "csv"), None, view
    if opts.csv:
        return "csv", None, view
    if (src / MANIFEST_NAME).is_file():
        return "manifest", None, view
    if view.profiles_root is not None:
        return "profiles", None, view
    subdirs = view.subfolders
    # a CSV listing the images (eval/info.csv beside images/) gives the ids and order, unless class folders hold them
    # several listing CSVs matter only beside an image folder (images/, test/, ...): no other CSV is read for them
    named = any(d.name.lower() in CSV_IMAGE_FOLDERS for d in subdirs)
    listing = view.listing_csvs if named else [c for c in [view.folder_csv] if c is not None]

    def holds(d: Path) -> bool:     # each subfolder asked once: the checks below share its view's answer
        return view.sub(d).holds_image
    if listing and not any(holds(d) for d in subdirs if d.name.lower() not in CSV_IMAGE_FOLDERS):
        if view.folder_csv is not None:
            return "csv", None, view
        held = [d for d in subdirs if holds(d)]
        if len(listing) > 1 and held:       # read as folders, images/ would be one class named 'images'
            names = [p.name for p in listing]
            raise UserError(f"{src} holds {', '.join(names[:-1])} and {names[-1]}, each listing the images in "
                            f"{held[0]}: which one is the data is unsaid; give that one in place of {src} "
                            f"(e.g. {listing[0]})")
    lone = view.lone_folder
    if lone is not None:        # images/ is no class: the classes' root, or (eval/ without its info.csv) unlabeled
        return ("folder" if lone.images is None else "unlabeled"), lone, view
    refuse_competition_root(src, view)
    return ("folder" if any(holds(d) for d in subdirs) else "unlabeled"), None, view


def refuse_competition_root(src: Path, view: FolderView) -> None:
    """One line where the folder about to be read as class folders holds the mask competition's folders (train/:
    profile folders, read as layout 'profiles'; beside it eval/: a CSV listing its images): its profiles would be
    one class named 'train' and the test images another named 'eval'. Only the subfolders of the split folders'
    names and `eval` are looked into (a class folder is not listed for it: the detection stops at the first image)."""
    names = {*SPLIT_FOLDERS, "eval"}
    looked = [d for d in view.subfolders if d.name.lower() in names]

    def profiles(d: Path) -> Path | None:
        try:
            return view.sub(d).profiles_root
        except OSError:
            return None
    found = {d: profiles(d) for d in looked}
    if not any(found.values()):
        return
    held = [d for d in looked if found[d] or view.sub(d).holds_image]
    parts = [f"{d} (its profiles, {found[d]})" if found[d] else
             f"{d} (the images {view.sub(d).folder_csv} lists)" if view.sub(d).folder_csv else str(d)
             for d in sorted(held, key=lambda d: found[d] is None)]       # the profiles first: the training data
    first = next(d for d in held if found[d])
    listed = next((d for d in held if not found[d] and view.sub(d).folder_csv), None)
    which = f"{first} to train, {listed} to predict" if listed else f"e.g. {first}"     # predict reads the eval one
    raise UserError(f"{src} holds the mask competition's folders, not classes: {' and '.join(parts)}; give the one "
                    f"to read in place of {src} ({which}), or --layout folder to read its folders as classes")


def labels_from(df: pd.DataFrame, col: str, src) -> pd.DataFrame:
    """A manifest's labels taken from the column --label-col names (a competition CSV read earlier without them:
    DACON's `artist`), as a CSV's would be."""
    if col not in df.columns:
        have = class_columns(df)
        raise UserError(f"column '{col}' is not in {src}" + (f" (columns with classes: {', '.join(have)})"
                                                              if have else "") + "; check --label-col")
    return df.assign(label=df[col].astype(str))     # read with keep_default_na=False: a blank is "", never NaN


def read_manifest_file(path: Path, view: FolderView | None = None) -> pd.DataFrame:
    """A manifest file's rows, its roots absolute. `view`: load's look at the source, whose text of the file is read
    (FolderView.text: a manifest given as a file, whose header detected it, is not read from disk again)."""
    # every cell read as text, then the declared columns typed (coerce): a column of the data's own (DACON's
    # `artist`, read later with --label-col) keeps '001', '1' and '1.5' as written, never 1.0 / 1.0 / 1.5
    df = read_csv(path, "manifest", dtype=str, keep_default_na=False,
                  text=view.text(path, "manifest") if view is not None else None)
    if "path" not in df.columns:
        raise UserError(f"{path} has no 'path' column; it is not an imgcls manifest (read a competition CSV "
                        f"with --layout csv --path-col NAME)")
    base = path.parent
    roots = df["root"] if "root" in df.columns else pd.Series([""] * len(df))
    # each root resolved once (a manifest's rows share a few roots: resolved per row, 30k realpaths per read)
    real = {r: str((base / r).resolve()) if r not in ("", ".") else str(base.resolve()) for r in set(roots)}
    df["root"] = [real[r] for r in roots]
    for c in ("label", "group", "error"):
        if c not in df.columns:
            df[c] = ""
    return coerce(df, str(path))


def source_view(src: Path, opts: LayoutOptions) -> FolderView:
    """The look at the folder a source is read from (the folder given, or the CSV's own), made once for the checks
    and the detection that read it."""
    return FolderView(src.parent if src.is_file() else src, opts.ext)


def check_source_exists(src: str | os.PathLike) -> Path:
    """`src` as a Path; one line when there is nothing there (load's first check, also said before a step imports
    torch)."""
    src = Path(src)
    if not src.exists():
        raise UserError(f"{src} does not exist; give a dataset folder or a manifest.csv")
    return src


def load(src: str | os.PathLike, opts: LayoutOptions | None = None, scan: bool = True, workers: int = 1,
         max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS, announce: bool = True, require_found: bool = True,
         loose_images: str = "warn", unread_images: str = "warn", view: FolderView | None = None,
         groups_matter: bool = True) -> pd.DataFrame:
    """Read any supported source into a manifest DataFrame (absolute `root`), scanning images not yet scanned.
    `loose_images`: what a folder detected as class folders (not one given as --layout folder) does with images
    outside them: "warn" (left out) or "refuse" (layouts.read_folder). `unread_images`: what a folder read does
    with image files its walk cannot read (layouts.LeftOut: names not UTF-8, or without an image extension):
    "warn" (left out) or "refuse" (predict: a submission must have a row for every test image). `view`: the look
    at the source's folder (source_view) where the caller made it, to ask it after the read what the read saw
    (predict: the CSVs beside the test images, submission.template_beside), not looking again. `require_found`:
    a table none of whose files are there is refused (require_any_found) before its read is said, so the refusal is
    the only line (False: eda, whose report lists the files; predict, whose own check says its --data).
    `groups_matter`: the line says a CSV's `group` column read as the groups unasked (they are kept on one side of a
    split: split, train, and the steps whose table they go on to); False where nothing is split (eda, predict)."""
    opts = opts or LayoutOptions()
    check(opts)     # the flags' check, for a Python caller's LayoutOptions too: the command line's line, before a scan
    src = check_source_exists(src)
    from imgcls.outputs import refuse_output_as_data
    # one look at the folder: the check below and the detection list it once
    view = view if view is not None else source_view(src, opts)
    refuse_output_as_data(src, view)    # a run folder read as images: its plots the images, its folds the classes
    if opts.csv and src.is_file() and Path(opts.csv).resolve() != src.resolve():
        raise UserError(f"--csv {opts.csv} goes with a dataset folder; {src} is itself the table read (give one "
                        f"of them)")
    layout, lone, view = detect_source(src, opts, view)  # once: callers ask layout_read(df), not detect_layout again
    given = [f for f, v in (("--image-dir", opts.image_dir), ("--ext", opts.ext), ("--path-col", opts.path_col)) if v]
    if given and layout != "csv":       # the flags given (predict has no --image-dir: not named to its users)
        raise UserError(f"{' / '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to a competition CSV "
                        f"(--csv FILE); {src} is read as layout '{layout}'")
    # no column to name (profiles have id, profile); --group-col none names none
    if opts.group_col and opts.group_col != NO_GROUPS and layout in ("folder", "unlabeled"):
        raise UserError(f"--group-col '{opts.group_col}' names a column of a competition CSV or a manifest; {src} is "
                        f"read as layout '{layout}', which has no such column")
    if opts.group_col == NO_GROUPS and layout == "profiles":     # read_profiles takes no group column: unsaid
        raise UserError(f"--group-col {NO_GROUPS} leaves a CSV's or a manifest's `group` column unread; {src} is read "
                        f"as layout 'profiles', whose groups are its people (each profile folder's id), never split "
                        f"apart; drop --group-col")
    if opts.label_col and layout not in ("csv", "manifest"):
        raise UserError(f"--label-col names a column of a competition CSV or a manifest; {src} is read as layout "
                        f"'{layout}', whose {'folders give' if layout != 'unlabeled' else 'images have no'} labels")
    if layout != "profiles" and tuple(int(e) for e in opts.age_bands) != tuple(DEFAULT_AGE_BANDS):
        from imgcls.options import join, python_too
        bands = [int(e) for e in opts.age_bands]
        relabel = python_too(f"imgcls split {sh(src)} --age-bands {join(bands)}",
                             f"run_split({str(src)!r}, cfg=SplitConfig(age_bands={bands}))")
        raise UserError(f"--age-bands makes the age bands as profile folders are read; {src} is read as layout "
                        f"'{layout}'" + (f", whose labels are already made: {relabel} relabels a manifest"
                                         if layout == "manifest" else "")
                        + "; drop --age-bands or give the profile folders")
    table = None        # the CSV the rows come from, named when it has none
    folder_read = None  # the folder given, when the images lie below it (input_folders)
    classes_in = None   # the image folder of class folders a folder holds alone (detection's LoneFolder): the root
    if layout == "manifest":
        mpath = table = src if src.is_file() else src / MANIFEST_NAME
        if not mpath.is_file():
            raise UserError(f"no {MANIFEST_NAME} in {src}; give the manifest file or another --layout")
        df = read_manifest_file(mpath, view)
        from imgcls.outputs import refuse_unfinished_preprocess
        for root in sorted(set(df["root"]) - {str(mpath.parent.resolve())}):   # its own folder: checked above
            # a table of another folder's images (split's data/splits.csv of data/processed) read while a
            # preprocess run there is stopped half way: its rows would train on images half rewritten
            refuse_unfinished_preprocess(Path(root), rows_of=mpath)
        df.attrs[MANIFEST_READ] = str(mpath)     # its label record lies beside it (label_record)
        if opts.label_col and opts.label_col != "label":
            df = labels_from(df, opts.label_col, mpath)
        ungrouped = opts.group_col == NO_GROUPS and "group" in df.columns
        if ungrouped:       # its `group` of another meaning (a super-class): read as no groups, the file unchanged
            df["group"] = ""
        said = (f"using manifest {mpath} ({len(df)} rows"
                + (f"; labels from its column '{opts.label_col}'" if opts.label_col else "")
                + (f"; its group column left unread (--group-col {NO_GROUPS})" if ungrouped else "") + ")")
    else:
        notes = []
        if src.is_file():
            csv_path, root = src, src.parent
            table_root = view.profiles_table_root(src) if layout == "profiles" else None
            if table_root is not None:
                root = table_root       # the competition's train.csv: its profile folders
            elif layout != "csv":
                raise UserError(f"--layout {layout} needs a folder, not the file {src}")
        else:
            root = src
            csv_path = Path(opts.csv) if opts.csv else None
            if csv_path is not None and csv_path.is_dir():
                raise UserError(f"--csv {csv_path} is a folder, not a CSV file; give the competition's CSV file "
                                f"(train.csv, test.csv, ...) with --csv")
            if csv_path is not None and not csv_path.is_file():
                raise UserError(f"CSV file {csv_path} does not exist; check --csv")
        if layout == "csv":
            if csv_path is None:
                csv_path = view.folder_csv     # the folder's own CSV (eval/info.csv): auto-detected
                if csv_path is None:
                    raise UserError("--layout csv needs --csv FILE (the competition's train.csv)")
                notes.append(f"the rows of {csv_path}, in its order; --layout folder reads the image files")
            if opts.image_dir:
                root = Path(opts.image_dir)
                if not root.is_dir():
                    raise UserError(f"--image-dir {root} is not a folder; give the folder holding the CSV's images")
            df, root = read_competition_csv(csv_path, root, opts, view)
            guessed = df.attrs.get(CSV_GROUPS_GUESSED)
            # said: a `group` column of another meaning (a super-class) keeps whole classes on one side of a split
            n = text_values(df["group"]).str.strip().replace("", np.nan).nunique() \
                if guessed and groups_matter else 0
            if n:
                notes.append(f"groups from its column '{guessed}': {plural(n, 'group')}, each kept on one side of "
                             f"a split or fold ({GROUPS_FIX})")
            table = csv_path
            df.attrs[CSV_READ] = str(csv_path)     # the user's own table: no output may replace it (read_table)
        elif layout == "folder":
            classes_in = lone.folder if lone else None
            root = classes_in or root
            df = read_folder(root, loose_images if opts.layout == "auto" else "warn", unread_images,
                             view.sub(root))
        elif layout == "profiles":
            root = view.profiles_root or root
            df = read_profiles(root, opts.age_bands, unread_images, view.sub(root))
            if src.is_file():       # the competition's train.csv given itself: no output may replace it either
                df.attrs[CSV_READ] = str(src)
                folder_read = str(src.parent.resolve())     # nor be written beside it, in its train/
        else:
            # the image folder src holds alone (detection's LoneFolder, walked there), read as the root
            root = lone.folder if lone else root
            df = read_unlabeled(root, *(lone.images, lone.left_out) if lone else (None, None), unread_images,
                                view.sub(root))
        df["root"] = str(root.resolve())
        moved = root.resolve() != (src.parent if src.is_file() else src).resolve()
        if moved and root.is_dir():     # a CSV's folder that is not there (none of its files is) is not named
            notes.append(f"images in {root}" + (
                f": {src} holds that folder alone, so the folders in it are the classes (--layout folder reads "
                f"'{root.name}' as one class)" if classes_in else
                f": {src} holds that folder alone and no CSV listing its images (the mask competition's info.csv), "
                f"so the ids are their names there, in name order" if lone else ""))
        if moved:
            if not src.is_file():       # the competition's train/ or eval/ given whole: its CSV and images are input
                folder_read = str(src.resolve())
        said = f"read {src} as layout '{layout}' ({plural(len(df), 'image')}{''.join('; ' + n for n in notes)})"
    if df.empty and table is not None:
        raise UserError(f"{table} has no rows (only its header); give a CSV that lists the images")
    if df.empty:
        raise UserError(f"no images found in {src}; check the folder (or --layout)")
    df = ensure_columns(df)
    df["label"] = nfc_classes(df["label"])
    df.attrs[LAYOUT_READ] = layout
    df.attrs[READ_LINE] = said
    if folder_read is not None:
        df.attrs[FOLDER_READ] = folder_read
    if require_found:       # said once the files are known to be there: none there is the refusal alone
        require_any_found(df)
    if announce:
        info(said)
    if scan:
        df = scan_images(df, workers=workers, max_pixels=max_pixels)
    return df


def nfc_classes(values: pd.Series) -> pd.Series:
    """A column of classes (the label, or the attribute train --target trains on) in Unicode's composed form, whatever
    gave it (a class folder unpacked from a macOS zip, a CSV cell or a manifest column spelled NFD): one class per
    name that looks the same, spelled as competitions spell it. Values that are not text are kept."""
    return values.map(lambda v: nfc(v) if isinstance(v, str) else v)


def announce_read(df: pd.DataFrame) -> None:
    """Says load's line of what it read (`read test.csv as layout 'csv' (2 images; images in test)`), for a caller
    that loaded with announce=False to say it once the rows are known to be there (predict: a CSV none of whose
    files exist is its refusal alone, not a read of images in a folder that does not exist before it)."""
    if df.attrs.get(READ_LINE):
        info(df.attrs[READ_LINE])


def layout_read(df: pd.DataFrame) -> str:
    """The layout `load` read `df`'s source as (detect_layout's answer, or the --layout given): asked of the table
    read, so a step does not detect it again (a second read of a CSV's header, a second walk of a folder)."""
    return df.attrs[LAYOUT_READ]


def recorded_age_bands(table: str | os.PathLike) -> dict:
    """The age band record beside a manifest-shaped table (a file, or a folder holding manifest.csv): the
    `age_bands` / `relabel_age` edges of split's summary for a split's table, else those clean_summary.json or
    preprocess.json recorded beside a manifest.csv; {} where none is recorded. Only lists of ages are taken; whether
    they fit the rows is the reader's check (train's ModelMeta.age_bands)."""
    split, steps = _records_beside(table)
    conf = split.get("config")
    if not isinstance(conf, dict) or not conf:
        conf = next((d for d in steps if d.get("age_bands") is not None), {})
    return age_band_fields(conf)


def recorded_label_col(table: str | os.PathLike) -> str:
    """The column --label-col read the labels of a manifest-shaped table from (a file, or a folder holding
    manifest.csv), as the step that wrote it recorded (label_col_record): split's summary for a split's table, else
    clean_summary.json or preprocess.json beside a manifest.csv; '' where none is (the labels are the data's own):
    DACON's `split train.csv --label-col artist` wrote splits.csv with a label column and no artist."""
    split, steps = _records_beside(table)
    found = [d.get("label_col") for d in ([split] if split.get("config") else steps)]
    return next((c for c in found if isinstance(c, str) and c), "")


def _records_beside(table: str | os.PathLike) -> tuple[dict, list[dict]]:
    """What the steps recorded beside a manifest-shaped table (a file, or a folder holding manifest.csv): split's
    summary for a split's table ({} for none), and clean_summary.json and preprocess.json beside a manifest.csv
    (those there); ({}, []) where the table is not there."""
    from imgcls.outputs import CLEAN_SUMMARY, PREPROCESS_SETTINGS, read_yaml, split_outputs   # JSON is YAML
    table = Path(table)
    table = table if table.is_file() else table / MANIFEST_NAME
    if not table.is_file():
        return {}, []
    steps = [d for d in (read_yaml(table.parent / f) for f in (CLEAN_SUMMARY, PREPROCESS_SETTINGS)) if d] \
        if table.name == MANIFEST_NAME else []
    return read_yaml(split_outputs(table)["summary"]), steps


def age_band_fields(conf: dict) -> dict:
    """The `age_bands` / `relabel_age` edges of a recorded config (a summary's), each only a list of ages."""
    return {k: [int(e) for e in conf[k]] for k in ("age_bands", "relabel_age") if isinstance(conf.get(k), list)
            and all(isinstance(e, int) and not isinstance(e, bool) for e in conf[k])}


def label_record(df: pd.DataFrame, opts: LayoutOptions | None) -> dict:
    """How df's labels were made, as clean and preprocess record it beside their manifest for the steps after them
    (train reads it): the age band edges of its age_band labels ({"age_bands": [...]}, with split's "relabel_age"
    where it moved rows): the LayoutOptions.age_bands `load` read profile folders with, or the record beside the
    manifest read (recorded_age_bands), carried on; and the column --label-col read them from (label_col_record).
    {} for a layout or a manifest with neither."""
    bands = {}
    if layout_read(df) == "profiles":
        bands = {"age_bands": [int(e) for e in (opts or LayoutOptions()).age_bands]}
    elif df.attrs.get(MANIFEST_READ):
        bands = recorded_age_bands(df.attrs[MANIFEST_READ])
    return {**bands, **label_col_record(df, opts)}


def label_col_record(df: pd.DataFrame, opts: LayoutOptions | None) -> dict:
    """The column df's labels were read from, as clean, preprocess and split record it beside their table
    ({"label_col": "artist"}), so `train --target artist` on it is the label task (holds_labels): the --label-col
    `load` read them with (DACON's train.csv), or the CSV's column it read them from unasked (`class`, `target`),
    else the record beside the manifest read (recorded_label_col), carried on; {} where the labels are the data's
    own column."""
    col = opts.label_col if opts is not None and opts.label_col and opts.label_col != "label" else ""
    col = col or df.attrs.get(CSV_LABELS_GUESSED, "")
    if not col and df.attrs.get(MANIFEST_READ):
        col = recorded_label_col(df.attrs[MANIFEST_READ])
    return {"label_col": col} if col else {}


def manifest_read(df: pd.DataFrame) -> Path | None:
    """The manifest file `load` read `df` from (a manifest.csv, a splits.csv; None for other layouts): a step given
    that table again asks df rather than reading it twice (predict --data on a run's own training table)."""
    return Path(df.attrs[MANIFEST_READ]) if df.attrs.get(MANIFEST_READ) else None


def read_table(df: pd.DataFrame) -> list[str]:
    """The competition CSV `load` read `df` from ([] for other layouts): a file an output must never replace
    (fsutil.check_not_replacing)."""
    return [df.attrs[CSV_READ]] if df.attrs.get(CSV_READ) else []


def ensure_columns(df: pd.DataFrame) -> pd.DataFrame:
    for c in CORE_COLUMNS:
        if c not in df.columns:
            df[c] = pd.NA if c in INT_SCAN_COLUMNS else ("" if c in ("label", "group", "error") else None)
    return df


# ---------------------------------------------------------------------------------------------------------------
# Scanning images
# ---------------------------------------------------------------------------------------------------------------

def image_paths(df: pd.DataFrame) -> list[Path]:
    """Absolute paths of the manifest's images (root / path)."""
    return [Path(r, p) for r, p in zip(df["root"], df["path"])]


def content_hashes(df: pd.DataFrame) -> np.ndarray:
    """Each row's sha256 as a str array; "" where a row has none (not scanned, or the table has no such column):
    the key of everything cached by content (embeddings, photo features, verified pairs)."""
    if "sha256" not in df.columns:
        return np.full(len(df), "", object)
    return text_values(df["sha256"]).to_numpy()


def scan_images(df: pd.DataFrame, workers: int = 1, max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS,
                chunk: int = 64, require: bool = True, decoded: dict[int, str] | None = None) -> pd.DataFrame:
    """Fill the scan columns for rows that have no sha256 yet, or whose file changed since (streaming, over
    `workers` processes). `require`: a table none of whose images can be read is a UserError. `max_pixels` bounds the
    rows scanned now and those an earlier scan read: a row recorded readable with more pixels (a step run with a
    higher --max-pixels) is recorded and reported as too many pixels, as a scan now would, and a row an earlier scan
    left out as too many pixels that this bound admits (a higher one, 0: none) is scanned again
    (under_limit_rows); one of these, or any scanned again, that clean left out as unreadable is kept where it
    reads now (judge_readable). `decoded`: row position
    -> the sha256 of bytes an earlier scan proved whole (io.probe's `decoded`: a row still of those bytes is hashed,
    not decoded again)."""
    df = df.copy()
    todo = unscanned_rows(df)
    stale = stale_rows(df, skip=set(todo))
    if stale:
        warn(f"{len(stale)} row(s) of the manifest no longer match their file (missing, restored, replaced, "
             f"rewritten or resized on disk, e.g. {image_paths(df.iloc[stale[:1]])[0]}): scanned again, not trusted")
        todo = sorted(set(todo) | set(stale))
    todo = sorted(set(todo) | set(under_limit_rows(df, max_pixels)))
    over = over_limit_rows(df, max_pixels, skip=set(todo))
    if over:
        w, h = (pd.to_numeric(df[c].iloc[over]).astype(int).to_numpy() for c in ("width", "height"))
        df["error"] = df["error"].astype(object)
        df.iloc[over, df.columns.get_loc("error")] = [imgio.too_many_pixels(a, b, max_pixels) for a, b in zip(w, h)]
    if todo:
        _fill_scan(df, todo, workers, max_pixels, chunk, decoded or {})
        judge_readable(df, todo)        # one clean left out as unreadable that reads now is kept
    # the rows this call judged (scanned now, or found over the pixel bound): their unreadable files and the classes
    # they leave with no readable image are said once, here; none readable where that is refused: the refusal alone
    # (not first a warning that they are left out and listed in a manifest's error column no step writes then)
    looked = df.index[todo].union(df.index[over])
    if require:
        require_readable(df)
    if len(looked):
        say_unreadable(df.loc[looked])
        say_lost_classes(df, looked)
    return df


SCAN_VERSION_KEY = "scan_version"


def scan_record() -> dict:
    """What a step that reuses its earlier scan (reuse_scan) records in the summary it writes beside its manifest:
    the scan's version (io.SCAN_VERSION)."""
    return {SCAN_VERSION_KEY: imgio.SCAN_VERSION}


def _recorded_scan_version(summary: Path) -> int:
    """The io.SCAN_VERSION a step's summary records (scan_record); 1 where it records none (written before it), 0
    where it cannot be read."""
    import json
    try:
        got = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return 0
    version = got.get(SCAN_VERSION_KEY, 1) if isinstance(got, dict) else 0
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def reuse_scan(df: pd.DataFrame, earlier: str | os.PathLike, summary: str | os.PathLike) -> pd.DataFrame:
    """df with the scan columns that `earlier` (a step's own manifest.csv from its last run into the same --out,
    which this run replaces) recorded for the same image files, on rows not scanned yet: a rerun of eda or clean
    read every image again (a minute at 30k images). Only rows recorded readable, with their size and mtime, are
    taken, and only from a scan of this imgcls's io.SCAN_VERSION, which `summary` (the JSON the step wrote beside
    it, scan_record) records: a scan before a fix that reads some file's size otherwise is done again (said in one
    line). scan_images then checks them against the disk as any manifest's (stale_rows: another size or mtime is
    scanned again) and against this run's --max-pixels (over_limit_rows), and scans the rest. Said in one line."""
    earlier = Path(earlier)
    todo = unscanned_rows(df)
    if not todo or not earlier.is_file():
        return df
    version = _recorded_scan_version(Path(summary))
    if version != imgio.SCAN_VERSION:
        info(f"the earlier {earlier} was scanned by " + (f"an imgcls of another scan version ({version}, now "
             f"{imgio.SCAN_VERSION})" if version else f"a run whose {Path(summary).name} cannot be read")
             + ": every image is scanned again")
        return df
    try:
        old = read_manifest_file(earlier)
    except (UserError, OSError):        # not readable as a manifest: the scan reads every image, as before
        return df
    if not set(SCAN_COLUMNS) <= set(old.columns):
        return df
    old = old[(error_texts(old) == "") & (text_values(old["sha256"]) != "")
              & old["bytes"].notna() & old["mtime"].notna()]
    keys = _resolved_paths(old)
    if not keys.is_unique:
        old, keys = old[~keys.duplicated()], keys[~keys.duplicated()]
    where = keys.get_indexer(_resolved_paths(df.iloc[todo]))
    hit = where >= 0
    if not hit.any():
        return df
    df = df.copy()
    rows, src = df.index[np.asarray(todo)[hit]], old.iloc[where[hit]]
    for c in SCAN_COLUMNS:
        if c in INT_SCAN_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64") if c in df.columns else pd.NA
            df[c] = df[c].astype("Int64")
            df.loc[rows, c] = pd.array(src[c].to_numpy(), dtype="Int64")
        else:
            df[c] = df[c].astype(object) if c in df.columns else None
            df.loc[rows, c] = text_values(src[c]).to_numpy()
    info(f"reused the scan of {plural(int(hit.sum()), 'image')} from the earlier {earlier} (each checked against its "
         f"file: any image changed since is scanned again)")
    return df


def _resolved_paths(df: pd.DataFrame) -> pd.Index:
    """Each row's image path under its root with the symlinks resolved (each root once): the same file whether
    a manifest's root was written through a link or not."""
    real = {r: os.path.realpath(r) for r in set(df["root"])}
    return pd.Index([os.path.join(real[r], p) for r, p in zip(df["root"], df["path"])])


def _probe_known(item: tuple[str, str | None], max_pixels: int | None) -> dict:
    """io.probe of (path, the sha256 of bytes already proved whole there, or None): _fill_scan's, pickled to its
    workers."""
    return imgio.probe(item[0], max_pixels=max_pixels, decoded=item[1])


def _fill_scan(df: pd.DataFrame, todo: list[int], workers: int, max_pixels: int | None, chunk: int,
               decoded: dict[int, str]) -> None:
    """Probe the images of the rows at positions `todo` (`decoded`: scan_images's) and write their scan columns
    into `df`."""
    from functools import partial

    from imgcls.parallel import chunked_map
    items = [(str(p), decoded.get(i)) for i, p in zip(todo, image_paths(df.iloc[todo]))]
    results = list(chunked_map(partial(_probe_known, max_pixels=max_pixels), items, workers, "scanning images",
                               chunk))
    # object cells: a record without a number (None: a FIFO's mtime) would make the column float64, which rounds a
    # 19-digit st_mtime_ns to its 53 bits (every row then stale to the next scan)
    scanned = pd.DataFrame(results, index=df.index[todo], dtype=object)
    for c in SCAN_COLUMNS:
        if c not in df.columns:         # a table from before the column (mtime), given by a Python caller
            df[c] = pd.NA
        if c in INT_SCAN_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
            df.loc[scanned.index, c] = pd.array(scanned[c], dtype="Int64")
        else:
            df[c] = df[c].astype(object)
            df.loc[scanned.index, c] = text_values(scanned[c]).values


def over_limit_rows(df: pd.DataFrame, max_pixels: int | None, skip: set[int] = frozenset()) -> list[int]:
    """Positions of rows recorded readable (no error, a width and height) with more than `max_pixels` pixels, but
    those in `skip` (scanned now, with the bound); none without a bound."""
    if not max_pixels or not {"width", "height"} <= set(df.columns):
        return []
    errors = error_texts(df).to_numpy()
    w = pd.to_numeric(df["width"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    h = pd.to_numeric(df["height"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    big = (errors == "") & np.isfinite(w) & np.isfinite(h) & (w * h > max_pixels)
    return [int(i) for i in np.flatnonzero(big) if int(i) not in skip]


def under_limit_rows(df: pd.DataFrame, max_pixels: int | None) -> list[int]:
    """Positions of rows an earlier scan left out as too many pixels (io.too_many_pixels' error: a step run with a
    lower --max-pixels, eda's or clean's default before `split --max-pixels 0`) that `max_pixels` admits (None, 0:
    no bound): they stayed unreadable, said as over a bound the step did not have."""
    errors = error_texts(df).to_numpy()
    counts = {int(i): imgio.pixels_over_bound(errors[i]) for i in np.flatnonzero(errors != "")}
    return [i for i, n in counts.items() if n is not None and (not max_pixels or n <= max_pixels)]


def say_lost_classes(df: pd.DataFrame, scanned: pd.Index, why: str = "unreadable") -> None:
    """One warning naming the labels none of whose images can be read, when this scan found (some of) them
    unreadable: the data has no such class any more (as for a class folder holding no images), which the list of
    unreadable files alone does not say. Nothing when every image is unreadable (require_readable says that).
    `why`: what made the rows of `scanned` unusable, when a step other than the scan set their `error` (preprocess:
    'left out by preprocess' for a --no-face drop or a failed image)."""
    if "label" not in df.columns:
        return
    labels = text_values(df["label"])
    ok = error_texts(df) == ""
    if not ok.any():
        return
    have = set(labels[ok])
    lost = sorted(set(labels[labels.index.isin(scanned) & ~ok]) - have - {""})
    if lost:
        counts = labels[~ok].value_counts()
        if why == "unreadable":
            named = shown([f"{c} ({plural(int(counts[c]), 'unreadable image')})" for c in lost], 5)
            lead = "with no readable image"
        else:
            counts = labels[labels.index.isin(scanned) & ~ok].value_counts()   # the scan named its unreadable
            named = shown([f"{c} ({plural(int(counts[c]), 'image')} {why})" for c in lost], 5)
            lead = "with no image left"
        warn(f"{plural(len(lost), 'class', 'classes')} {lead}, so the data has no such class: {named}")


def say_unreadable(df: pd.DataFrame, show: int = 5, fate: str = "left out",
                   listed_in: str = "the manifest's error column") -> None:
    """One warning naming the unreadable images among df's rows by path and reason (the first `show`; `listed_in`
    lists every one): each step leaves them out and goes on (`fate`: what happens to them instead)."""
    errors = error_texts(df)
    bad = df[errors != ""]
    if bad.empty:
        return
    listed = shown([f"{p} ({e})" for p, e in zip(image_paths(bad), bad["error"])], show,
                   sep="; ", listed_in=listed_in)      # '; ' between them: a reason holds commas
    warn(f"{plural(len(bad), 'unreadable image')}, {fate}: {listed}")


def error_texts(df: pd.DataFrame) -> pd.Series:
    """Each row's `error` as text, '' for a readable image or a table without the column (no scan yet)."""
    return text_values(df["error"]) if "error" in df.columns else pd.Series("", index=df.index)


def unscanned_rows(df: pd.DataFrame) -> list[int]:
    """Positions of rows no scan has looked at: no sha256 and no error (a row the scan found unreadable has its
    error and, for a missing or non-regular file, no sha256: stale_rows decides whether to look again)."""
    errors = error_texts(df)
    return [i for i, (h, e) in enumerate(zip(df["sha256"], errors)) if (not isinstance(h, str) or not h) and not e]


def stale_rows(df: pd.DataFrame, skip: set[int] = frozenset()) -> list[int]:
    """Positions of scanned rows whose record no longer matches the disk, so their scan columns are not trusted:
    a file recorded with its `bytes` that is gone, is no longer a regular file, has another size or another
    `mtime` (st_mtime_ns: a manifest whose root moved or whose images changed, a same-size file copied over one);
    and a file recorded as unreadable without a size (missing, or not a regular file, when scanned) that is now a
    regular file (restored). A file still as its row records it (missing and recorded so) is not stale: each step
    after the one that found it does not scan or report it again. A row without an mtime (a manifest written before
    the column) is judged by its size alone, as then: a same-size change to it goes unseen until it is scanned again.
    A copied tree (cp -r: new mtimes) is scanned again in full: slower, never wrong."""
    out = []
    blank = pd.Series([pd.NA] * len(df), index=df.index)
    sizes = df["bytes"] if "bytes" in df.columns else blank
    mtimes = df["mtime"] if "mtime" in df.columns else blank
    errors = error_texts(df)
    for i, (p, b, m, e) in enumerate(zip(image_paths(df), sizes, mtimes, errors)):
        if i in skip:
            continue
        try:
            st = os.stat(p)
        except OSError:
            if not (pd.isna(b) and e):          # recorded with a size (or as readable), now gone
                out.append(i)
            continue
        regular = stat.S_ISREG(st.st_mode)
        if pd.isna(b):
            if e and regular:                   # recorded missing / not a regular file: there again
                out.append(i)
        elif not regular or int(b) != st.st_size or (not _blank(m) and int(m) != st.st_mtime_ns):
            out.append(i)
    return out


def require_readable(df: pd.DataFrame, note: str = "", of: str = "", data_flag: str = "") -> None:
    """A dataset none of whose images can be read is a mistake (wrong root, ids without extension), not a result.
    `of`: where the images come from, named in the message (' of data/test'); `data_flag`: how the step is given
    its data, in the route the message names (predict's '--data'; '' where the step is not known: csv_route)."""
    if len(df) == 0:
        return
    err = error_texts(df)
    if (err != "").all():
        first = image_paths(df.iloc[:1])[0]
        fate = "is left" if (err == NO_FACE_DROPPED).all() else "can be read"    # readable, left out by preprocess
        raise UserError(f"none of the {len(df)} image(s){of} {fate} (e.g. {first}: {err.iloc[0]}){note}; "
                        f"{_unreadable_hint(df, err, data_flag)}")


def require_any_found(df: pd.DataFrame) -> None:
    """Rows read from a table (a competition CSV, a manifest) none of whose files are there (a wrong folder, a
    table moved without its images) are refused in require_readable's line, before the step says what it read or
    scans them (a warning listing every file, then the refusal). Looked at file by file until one is found: a table
    that is fine costs one stat. Rows a folder walk listed are there: not looked at."""
    if df.attrs.get(LAYOUT_READ) not in ("csv", "manifest") or not len(df):
        return
    if any(os.path.lexists(p) for p in image_paths(df)):     # a broken symlink is there: the scan names it
        return
    require_readable(df.assign(error=imgio.FILE_NOT_FOUND))


def require_most_found(df: pd.DataFrame, note: str = "", of: str = "", data_flag: str = "") -> None:
    """Rows read from a table (a competition CSV, a manifest) more than half of whose files are not there
    (layouts.most_of) are read from the wrong folder, not test data with a few files missing: a CSV's image folder is
    judged by its first 20 names (csv_image_root), and a folder holding those but few others was taken; predicting
    them would fill most of a submission with one class. Refused in one line naming the count, the folder looked
    in, an example and the route to the right folder (or the CSV's path column); every file missing is
    require_readable's line. Looked at file by file until half are found (then at most half can be missing): test
    data that is fine costs half of its rows' stats. Rows a folder walk listed are there: not looked at. `note`,
    `of`, `data_flag`: require_readable's."""
    n = len(df)
    if df.attrs.get(LAYOUT_READ) not in ("csv", "manifest") or not n:
        return
    found, missing = 0, []
    for i, path in enumerate(image_paths(df)):
        if os.path.lexists(path):       # a broken symlink is there (the folder is right): the scan names it
            found += 1
            if not most_of(n - found, n):       # the rows not yet found: the most that can be missing
                return
        else:
            missing.append(i)
    err = pd.Series("", index=df.index, dtype=object)
    err.iloc[missing] = imgio.FILE_NOT_FOUND
    if len(missing) == n:
        require_readable(df.assign(error=err), note=note, of=of, data_flag=data_flag)
    first = df.iloc[missing[0]]
    example = Path(first["root"], first["path"])
    table = df.attrs.get(CSV_READ)
    column = f"; or, where another column of {table} holds the image names, --path-col COL" if table else ""
    raise UserError(f"{len(missing)} of the {n} image files{of} are not there (e.g. {example}: "
                    f"{imgio.FILE_NOT_FOUND}), looked for in {first['root']}: with most of them missing, that is not "
                    f"the folder of its images{note}; {_unreadable_hint(df, err, data_flag)}{column}")


def _unreadable_hint(df: pd.DataFrame, err: pd.Series, data_flag: str) -> str:
    """What require_readable says to check, fitting the case: files that are all there (none an image this reads)
    are no matter of paths; a competition CSV's files not found are a matter of the folder its names are looked for
    in (layouts.csv_route, a route the step has). An id without an extension is already looked for as it is
    (images saved without an extension) and with COMMON_EXTENSIONS added, so no extension is offered, except to say
    that an --ext given was the only one looked for, and, for predict (`data_flag`), that --ext adds another."""
    dropped = (err == NO_FACE_DROPPED).to_numpy()     # readable images preprocess left out (the row's `error`)
    if dropped.any():      # no matter of paths or of what the files are
        fix = ("imgcls preprocess --no-face drop left them out (its detector found no face in any): preprocess "
               "again with --no-face keep or center-crop, or another --detector, and see the no-face images in its "
               "report.html")
        if dropped.all():
            return fix
        rest = df[~dropped]
        return (f"{int(dropped.sum())} of them {fix.replace('left them out', 'left out', 1)}; the other "
                f"{len(rest)} (e.g. {image_paths(rest.iloc[:1])[0]}: {err[~dropped].iloc[0]}): "
                + _unreadable_hint(rest, err[~dropped], data_flag))
    missing = err.map(imgio.is_missing).to_numpy(dtype=bool)
    if not missing.any():
        return "every file is there, so the paths are right: check that the files are images"
    if err[missing].str.startswith(imgio.BROKEN_SYMLINK).all():     # the paths are right, the links' targets gone
        return "the symlinks point at files that are gone (moved or deleted): link them again, or copy the images in"
    gone = image_paths(df[missing].iloc[:1])[0]
    other = _same_stem_image(gone)
    if other is not None and df.attrs.get(LAYOUT_READ) == "manifest":
        # a manifest / split table written before a step wrote its images again in another format (preprocess
        # --format jpg deleted the .png files it lists): the table is stale, the files are right
        return (f"{gone.parent} holds {other}, not {gone.name}: the table is older than its images (written again "
                f"since, e.g. by preprocess --format); rerun the steps after the one that rewrote them (e.g. imgcls "
                f"split), or list the files as they are")
    if other is not None:       # the folder is right, the extension is not: no route would find it
        return (f"{gone.parent} holds {other}, not {gone.name}: the names listed and the files differ in their "
                f"extension; rename the files as listed")
    replaced = _replaced_by_preprocess(df[missing])
    if replaced:
        return replaced
    if not df.attrs.get(CSV_READ):
        return "check the dataset root / paths"
    paths = df["path"].astype(str)[missing]
    ids = df["source_id"].astype(str)[missing] if "source_id" in df.columns else paths
    route = (f"pass {csv_route('DIR', data_flag)}, DIR the folder holding the CSV's images (its names are relative "
             f"to it")
    bare = ~ids.map(imgio.is_image_name)
    given = sorted({Path(p).suffix for p in paths[bare] if imgio.is_image_name(p)})
    if given:       # --ext given: the ids were looked for with it only
        return (f"{route}; its ids without an extension were looked for with --ext {given[0]} added only, without "
                f"--ext as they are and with {', '.join(COMMON_EXTENSIONS[:3])}, ... added)")
    if bare.any():      # predict (data_flag) has --ext for images of another extension (.jpg_large)
        return (f"{route}; an id without an extension is looked for as it is and with "
                f"{', '.join(COMMON_EXTENSIONS[:3])}, ... added" + ("; --ext EXT adds another" if data_flag else "")
                + ")")
    return route + ")"


def _replaced_by_preprocess(df: pd.DataFrame) -> str:
    """What require_readable says where the images not found (`df`, a table's rows) were written by a preprocess
    run into a folder a later preprocess of other images has since replaced (the test set preprocessed into the
    default data/processed, which data/splits.csv lists the training images in): that folder's records (its
    preprocess.json's source, its manifest listing none of these rows' originals) name what replaced it, and the fix
    is preprocessing again into it what the first run read. No command is printed: that run's input (a folder, clean's
    output, a competition CSV) and options are no longer recorded (its preprocess.json was overwritten), and the
    originals' folder is not it (preprocessing that folder loses clean's columns and labels, brings removed images
    back). '' where that is not the case (no record, an original still listed)."""
    from imgcls.outputs import PREPROCESS_SETTINGS, preprocess_source
    if "source_path" not in df.columns:
        return ""
    root = str(df["root"].iloc[0])
    source = preprocess_source(root)
    mine = set(text_values(df.loc[df["root"].astype(str) == root, "source_path"])) - {""}
    if source is None or not mine:
        return ""
    try:
        listed = read_csv(Path(root) / MANIFEST_NAME, "manifest", usecols=["source_path"], dtype=str,
                          keep_default_na=False)["source_path"]
        origin = os.path.commonpath(sorted(mine))
    except (UserError, ValueError, KeyError):
        return ""
    if mine & set(listed):
        return ""
    if len(mine) == 1:      # one original: the folder it was read from
        origin = str(Path(origin).parent)
    return (f"{root} now holds a later preprocess output of {source} (its {PREPROCESS_SETTINGS}), which replaced "
            f"these images made from originals under {origin}: preprocess the data these rows were made from (what "
            f"the first imgcls preprocess read, e.g. clean's output or the CSV, with its options) again into it "
            f"(--out {sh(root)}), as the first time, and preprocess {sh(source)} with --out elsewhere")


def _same_stem_image(path: Path) -> str | None:
    """The name of an image file beside the missing `path` with its stem and another extension (a CSV listing
    a.jpg for the a.png there), None when there is none."""
    if not imgio.is_image_name(path):       # an id without an extension: every extension was already tried
        return None
    exts = sorted(imgio.IMAGE_EXTENSIONS)
    return next((n for n in (path.stem + e for e in exts + [e.upper() for e in exts])
                 if n != path.name and (path.parent / n).is_file()), None)


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose image could be read."""
    return df[text_values(df["error"]) == ""]


def class_columns(df: pd.DataFrame) -> list[str]:
    """The data's columns that could hold classes, named where the labels are missing: an attribute (a profile's
    mask / gender / age_band, a competition CSV's own columns such as artist) with 2 or more values, and not one
    per row (an id); never the manifest's own bookkeeping."""
    out = []
    for c in df.columns:
        if c in COLUMNS and (COLUMNS[c].strict or c == "label"):
            continue
        n = df[c].astype(str).str.strip().replace("", pd.NA).nunique()
        if 2 <= n < len(df):
            out.append(c)
    return out


@contextmanager
def guessed_groups_named(df: pd.DataFrame, fix: str = GROUPS_FIX):
    """A refusal of too few units (split's, train's 'no validation images') raised inside, with where the groups
    came from where a competition CSV's column named `group` was read as them unasked (CSV_GROUPS_GUESSED): one of
    another meaning (a super-class) holds whole classes together, and --group-col none (`fix`) is the way out."""
    try:
        yield
    except UserError as e:
        guessed = df.attrs.get(CSV_GROUPS_GUESSED)
        if not guessed:
            raise
        raise UserError(f"{e}; the groups are the CSV's column '{guessed}', read without --group-col "
                        f"({fix})") from None


def is_group_column(df: pd.DataFrame, col: str) -> bool:
    """Whether `col`'s values name the rows' groups one to one (the `group` column itself, a profile dataset's
    `profile`): classes that split never puts on both sides, so validation holds none that training saw. Told from
    4 groups up: an attribute of 2 or 3 values (gender, mask, age_band) can match 2 or 3 people one to one by chance
    in a tiny set."""
    groups = df["group"].astype(str).str.strip() if "group" in df.columns else pd.Series("", index=df.index)
    values = df[col].astype(str).str.strip()
    named = (groups != "") & (values != "")
    if groups[named].nunique() < 4:
        return False
    pairs = pd.DataFrame({"g": groups[named], "v": values[named]}).drop_duplicates()
    return not pairs["g"].duplicated().any() and not pairs["v"].duplicated().any()


def label_column_hint(df: pd.DataFrame, flag: str = "--label-col", verb: str = "reads") -> str:
    """For data read without labels whose table has columns with classes (DACON's train.csv: `artist`), the words
    naming them and `flag`, which reads (train: trains on) one; "" when the data has labels or no such column."""
    cols = [] if class_names(df["label"]) else class_columns(df)
    return f"{flag} COLUMN {verb} one of its columns with classes: {', '.join(cols)}" if cols else ""


def holds_labels(df: pd.DataFrame, col: str) -> str:
    """How the column `col` holds df's labels, so a model of its values (train --target col) predicts the label
    task, the one of the runs trained on the labels: 'read unlabeled' where df has no labels and `col` is its only
    column with classes (DACON's train.csv: `artist`, which --label-col artist reads as the labels), 'its labels'
    where `col`'s values are the labels on every row (a manifest read with --label-col col keeps both), 'recorded'
    where df has no such column and its labels were read from one of that name, as recorded beside the table read
    (recorded_label_col: `split train.csv --label-col artist`'s splits.csv) or by `load` itself (a CSV's `class`
    column read as them unasked); '' for any other column, for `label` itself, and for the profile attributes
    (mask, gender, age_band, age: the heads `ensemble --combine profile` reads a model's target as, and predict
    evaluates against their column), even a table's only one."""
    from imgcls.profile_names import PROFILE_HEADS
    if col == "label" or "label" not in df.columns or col in (*PROFILE_HEADS, "age"):
        return ""
    labels = text_values(df["label"])
    if col not in df.columns:       # the column `load` read them from, or the record beside the table says
        return "recorded" if (labels != "").any() and label_col_record(df, None).get("label_col") == col else ""
    if (labels == "").all():
        return "read unlabeled" if class_columns(df) == [col] else ""
    same = text_values(nfc_classes(df[col])).to_numpy() == text_values(nfc_classes(labels)).to_numpy()
    return "its labels" if same.all() else ""


def warn_unlabeled(df: pd.DataFrame, src) -> None:
    """Say, for a step that runs without labels too (eda, clean), that `src` was read unlabeled although a column
    holds classes: its class counts, grids and label checks would otherwise be silently missing."""
    hint = label_column_hint(df)
    if hint:
        warn(f"{src} has no labels (no column label, class or target), so it is read unlabeled; {hint}")


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
    """The column order of a written manifest: path, label, group, the step's columns, the scan columns, root."""
    first = [c for c in ("path", "label", "group") if c in df.columns]
    scan = [c for c in SCAN_COLUMNS if c in df.columns]
    rest = [c for c in df.columns if c not in first and c not in scan and c != "root"]
    return first + rest + scan + ["root"]


def as_written(df: pd.DataFrame) -> pd.DataFrame:
    """df with its columns in the order write gives its file (ordered_columns): what a step that writes a manifest
    returns, the table written (README, From Python), not its working frame's order."""
    return df[ordered_columns(df)]


def write(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a manifest atomically; `root` is stored relative to the manifest's folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = df.copy()
    base = path.parent.resolve()
    out["root"] = [Path(os.path.relpath(r, base)).as_posix() for r in out["root"]]
    write_table(out[ordered_columns(out)], path)
    return path


def roots(df: pd.DataFrame) -> list[str]:
    return sorted(set(df["root"]))


def input_folders(df: pd.DataFrame) -> list[str]:
    """The folders no output may be written under (fsutil.check_output_location): the image roots, and the folder
    given when its images sit below it (the competition's train/ of train.csv and images/<profile>/, eval/ of
    info.csv and images/): an --out there put a step's files beside train.csv, and the folder then read as class
    folders of those files."""
    return roots(df) + ([df.attrs[FOLDER_READ]] if df.attrs.get(FOLDER_READ) else [])
