"""The submission file: `--format id,label | mask (ImageID,ans with class ids) | dacon (id,artist with names) |
ID_COL,LABEL_COL`, or the competition's sample submission filled in its own row order (`match_template`, before
any prediction: an id missing from the predictions or a prediction without a template row is an error naming both
counts and an example; `check_template_fits` against the run's classes; `Template.fill` once predicted), written
in its own format (`Template.style`: its separator, line ending and quoting).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from imgcls.console import sh
from imgcls.errors import UserError
from imgcls.layouts import (FolderView, csv_row_lines, csv_style, csv_text, named_columns, nfc, read_csv,
                            refuse_empty_cells)
from imgcls.options import shown
from imgcls.outputs import MANIFEST_NAME
from imgcls.predict_config import (DEFAULT_FORMAT, FORMATS, format_key, keyword_of,  # noqa: F401  (--format's)
                                   resolve_format)


def label_values(pred: np.ndarray, classes: Sequence[str], kind: str) -> list:
    """The submission's label of each prediction (an index into `classes`): the class name, or for an 'index'
    format the class id the name is (the profile label '17'), never the position in the run's class list (a class
    clean removed shifts every later position)."""
    if kind == "index":
        return [int(classes[i]) for i in pred]
    return [classes[i] for i in pred]


def check_class_ids(fmt: str, kind: str, classes: Sequence[str], targets: Sequence[tuple[str, str]] = ()) -> None:
    """A submission of class ids (`kind` 'index': --format mask, ImageID,ans, or such a template; `fmt` how the
    user named it): the run must predict the competition's label (not one attribute of it: `targets`, (member,
    target) pairs) and its classes must be ids ('0'..'17'), not names. One line before the model runs."""
    if kind != "index":
        return
    for member, target in targets:
        if target != "label":
            raise UserError(f"{fmt} writes the class id of the competition's label, and {member} predicts "
                            f"'{target}' alone (train --target {target}); combine per-attribute runs with imgcls "
                            f"ensemble RUN_mask RUN_gender RUN_age_band --combine profile and predict that ensemble"
                            + (keyword_of("fmt") if fmt.startswith("--format") else ""))
    names = [c for c in classes if not str(c).strip().isdigit()]
    if names:
        raise UserError(f"{fmt} writes class ids, and this run's classes are names ({shown(names)}); use --format "
                        f"id,label or ID_COL,LABEL_COL" + keyword_of("fmt"))


def age_bands_note(fmt: str, bands: Sequence[tuple[str, Sequence[int] | None]]) -> str:
    """A submission of the mask competition's class ids (--format mask, ImageID,ans) from a run whose age bands are
    not the competition's (split --age-bands 25,50): its ids' age part means other ages. `bands`: (member, its
    checkpoint's age_bands) of the members that predict the age band; None (not known, or no profile) is silent.
    One warning line, '' for none."""
    from imgcls.profiles import DEFAULT_AGE_BANDS, band_names
    other = [(m, list(b)) for m, b in bands if b is not None and tuple(b) != tuple(DEFAULT_AGE_BANDS)]
    if not other:
        return ""
    m, b = other[0]
    return (f"{fmt} writes the competition's class ids, whose age bands are {', '.join(band_names())}; {m} was "
            f"trained on the bands of edges {', '.join(map(str, b))} ({', '.join(band_names(b))}), so its ids' age "
            f"part means other ages: train on labels of split --age-bands "
            f"{','.join(map(str, DEFAULT_AGE_BANDS))} for this submission")


def _key_candidates(df: pd.DataFrame, id_col: str) -> list[tuple[str, list[str]]]:
    """The test rows' possible ids, each list in NFC (a template id and a file name compare as text, not bytes)."""
    cands = []
    if id_col in df.columns:
        cands.append((id_col, df[id_col].astype(str).tolist()))
    cands.append(("id", df["id"].astype(str).tolist()))
    cands.append(("path", df["path"].astype(str).tolist()))
    cands.append(("file name", [Path(p).name for p in df["path"]]))
    cands.append(("file stem", [Path(p).stem for p in df["path"]]))
    return [(what, [nfc(k) for k in keys]) for what, keys in cands]


@dataclass
class Template:
    """A sample submission matched to the test rows: `order[i]` is the test row of template row i."""
    frame: pd.DataFrame
    label_col: str
    kind: str
    order: np.ndarray
    id_col: str | None = None       # the column of its ids (None: the first)
    label_named: bool = True        # its label column named (--format, a FORMATS preset) or the only other one
    # how its file is written (layouts.csv_style: to_csv's sep, lineterminator, quoting), the submission's too
    style: dict = field(default_factory=dict)

    def row_ids(self) -> list[str]:
        """The id the filled template writes for each test row (the template's spelling: 'a' for a.png matched by
        its stem), in the test rows' order: the `id` of predict's probabilities, so they join the submission."""
        ids = [""] * len(self.order)
        for tid, row in zip(self.frame[self.id_col or self.frame.columns[0]].astype(str), self.order):
            ids[row] = tid
        return ids

    def fill(self, pred: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
        """The template with its label column filled, in the template's row order."""
        out = self.frame.copy()
        out[self.label_col] = label_values(pred[self.order], classes, self.kind)
        return out


def is_template_name(csv: str | os.PathLike) -> bool:
    """Whether a CSV's name is a competition's sample submission's (sample*submission*.csv)."""
    name = Path(csv).name.lower()
    return name.startswith("sample") and "submission" in name


def is_template_data(data: str | os.PathLike) -> bool:
    """Whether predict's --data is a competition's sample submission (a file is_template_name: Kaggle's
    sample_submission.csv listing test_images/, no test.csv): its rows are the test images, in the submission's
    order, and its label column is the submission's to fill (placeholders, no labels)."""
    return is_template_name(data) and Path(data).is_file()


def template_beside(data: str | os.PathLike, view: FolderView | None = None) -> Path | None:
    """A competition's sample submission (is_template_name) in the test data's folder or the one above it
    (Kaggle's and DACON's archives put it beside test/ and test.csv), else None. `view`: the read's look at the test
    data's folder (manifest.source_view: predict's, which manifest.load read), whose CSVs are read, not listed
    again."""
    folder = Path(data).parent if Path(data).is_file() else Path(data)
    for base in (view if view is not None else FolderView(folder), FolderView(folder.parent)):
        hits = [p for p in base.csvs if is_template_name(p)]
        if hits:
            return hits[0]
    return None


def folder_template(data: str | os.PathLike, view: FolderView | None, read_as_csv: bool,
                    fmt: str | None) -> Path | None:
    """The CSV the test data's folder carries listing its images (FolderView.folder_csv: the mask competition's
    eval/info.csv of ImageID,ans) where the folder was read otherwise (`read_as_csv` False: --layout unlabeled, its
    image files, whose ids are their paths there, images/<hash>.jpg in name order) and --format writes that CSV's
    two first columns: it is the submission's template, filled in its ids and order (the competition's), as the
    auto layout's read of its rows writes them. None otherwise (the hint names it: listing_csv), the default's
    columns (id,label) given as --format too: as without one, every image by its path (the way out predict names
    where the CSV does not list every image)."""
    csv = listing_csv(data, view, read_as_csv)
    if csv is None or not fmt:
        return None
    wanted = [c.lower() for c in resolve_format(fmt)[:2]]
    if wanted == [c.lower() for c in resolve_format(DEFAULT_FORMAT)[:2]]:
        return None
    cols = [str(c).lower() for c in view.head(csv).columns[:2]]
    return csv if cols == wanted else None


def listing_csv(data: str | os.PathLike, view: FolderView | None, read_as_csv: bool) -> Path | None:
    """The CSV listing the images of the test data's folder (FolderView.folder_csv) where the folder was not read
    as that CSV's rows (`read_as_csv` False), else None. A folder's manifest.csv (preprocess's test images: the
    manifest layout's, read as the data) is imgcls's table of them, never the competition's."""
    if read_as_csv or view is None or not Path(data).is_dir():
        return None
    csv = view.folder_csv
    return None if csv is None or csv.name == MANIFEST_NAME else csv


def check_template_exists(template: str | os.PathLike, data: str | os.PathLike | None = None,
                          view: FolderView | None = None) -> Path:
    """The sample submission file given, which must be there: predict asks before it reads the test data (its
    images scanned), match_template again. `data` / `view`: as match_template's, to name one lying beside the data."""
    template = Path(template)
    if template.is_dir():
        csvs = sorted(template.glob("*.csv"))
        raise UserError(f"sample submission {template} is a folder, not a CSV file; pass the file with "
                        f"--sample-submission" + (f", e.g. --sample-submission {sh(csvs[0])}" if csvs else ""))
    if not template.is_file():
        beside = template_beside(data, view) if data is not None else None
        raise UserError(f"sample submission {template} does not exist; " + (
            f"{beside} is there: pass --sample-submission {sh(beside)}" if beside is not None
            else "check --sample-submission"))
    return template


def match_template(template: str | os.PathLike, df: pd.DataFrame, fmt: str | None = None,
                   data: str | os.PathLike | None = None, view: FolderView | None = None) -> Template:
    """Read the competition's sample submission and match its ids to the test rows: before any prediction, so a
    missing file or mismatched ids fail before the model runs. `data`: the test data given, whose sample submission
    lying beside it (template_beside, through `view`, the read's look at its folder) a missing `template` names."""
    template = check_template_exists(template, data, view)
    # the one CSV reader: an empty file, text that is not UTF-8 or a ragged row is one line naming the file and row
    text = csv_text(template, "sample submission")
    tpl = read_csv(template, "sample submission", text=text, dtype=str, keep_default_na=False)
    cols = list(tpl.columns)
    preset = next((v for v in FORMATS.values() if [v[0], v[1]] == cols[:2]), None)
    f_id, f_label, kind = resolve_format(fmt) if fmt else (preset or (cols[0], cols[-1], "name"))
    if preset and not fmt:
        f_id, f_label, kind = preset
    if fmt:     # a --format naming other columns than the template's: which one wins would be unsaid
        spelled = {str(c).lower(): c for c in cols}
        if f_id.lower() not in spelled or f_label.lower() not in spelled:
            raise UserError(f"--format {fmt} writes the columns {f_id},{f_label} and --sample-submission {template} "
                            f"has the columns {shown(cols, 4, sep=',')}; drop one of the two (--sample-submission "
                            f"alone writes the template's columns)" + keyword_of("fmt"))
        f_id, f_label = spelled[f_id.lower()], spelled[f_label.lower()]     # the template's spelling
    id_col = f_id if f_id in cols else cols[0]
    # a text file, a list of ids (`id,` with a spreadsheet's trailing comma too): not a template, not a mismatch of
    # ids; an unnamed column would be the label column, written into the submission's header as pandas' 'Unnamed: 1'
    if len(named := named_columns(tpl)) < 2 or not len(tpl):
        has = f"one column ({named[0] if named else cols[0]})" if len(named) < 2 else \
            f"a header ({shown(cols, 4, sep=',')})"
        raise UserError(f"sample submission {template} has {has}{'' if len(tpl) else ' and no rows'}; it is not a "
                        f"submission CSV: pass the competition's sample submission (a header such as id,label, one "
                        f"row per test image)")
    label_col = f_label if f_label in cols else cols[1]
    tids = tpl[id_col].astype(str)
    # a spreadsheet's ',,' rows: the id an error would give as its example is nothing
    refuse_empty_cells(f"sample submission {template}", text, np.flatnonzero(tids.str.strip() == ""), id_col, "id",
                       "every row names a test image: fill the id in or drop the row")
    every = _key_candidates(df, id_col)
    candidates = [(what, keys) for what, keys in every if len(set(keys)) == len(keys)]
    if not candidates:      # every way to match names two test rows alike: the first such id, with its images
        ids = every[0][1]
        first = next(k for k in ids if ids.count(k) > 1)
        paths = [p for k, p in zip(ids, df["path"].astype(str)) if k == first]
        raise UserError(f"{data or 'the test data'}: id {first} is given to two or more test rows "
                        f"({shown(paths, sep='; ')}), and no path, file name or stem tells them apart either: a "
                        f"submission's ids must be unique; give each test image its own id"
                        + (f" in {data}" if data else ""))
    want = {nfc(t) for t in tids}
    hit, what, keys = max(((len(want & set(keys)), what, keys) for what, keys in candidates), key=lambda c: c[0])
    _refuse_shared_keys(template, id_col, df, every, want, hit)
    if hit == 0 and len(tpl):
        # not this test data's template at all (another competition's, or columns in another order): naming counts
        # of missing ids and 'predict on the full test folder' would send the user looking in the wrong place
        other = next((c for c in cols if c != id_col and any(
            len({nfc(v) for v in tpl[c].astype(str)} & set(k)) for _, k in candidates)), None)
        raise UserError(f"{template}: none of its ids (column {id_col}, e.g. {tids.iloc[0]}) is a test image's id, "
                        f"path, file name or stem (e.g. {keys[0]})"
                        + (f"; its column {other} holds test ids: the id column must come first" if other else
                           "; give the sample submission of these test images"))
    if tids.duplicated().any():     # named by the file's lines of its rows, as the CSV reader names a row
        first = tids[tids.duplicated()].iloc[0]
        lines = csv_row_lines(text)
        on = [lines[i] for i in np.flatnonzero((tids == first).to_numpy())]
        raise UserError(f"{template}: id {first} appears {'twice' if len(on) == 2 else f'{len(on)} times'} in "
                        f"column {id_col} (lines {shown(on, 5)}); a submission has one row per test image: drop "
                        f"the others")
    missing = [t for t in tids if nfc(t) not in set(keys)]
    extra = [k for k in keys if k not in want]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} template id(s) have no test image (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} test image(s) are not in the template (e.g. {extra[0]})")
        raise UserError(f"{template} does not match the test data ({'; '.join(parts)}; ids matched by {what}); "
                        f"predict on the competition's full test folder / CSV")
    pos = {k: i for i, k in enumerate(keys)}
    # ID,target,Usage without a --format: its label is any of the columns after the id (check_template_fits)
    named = bool(fmt) or preset is not None or len(cols) <= 2
    return Template(tpl, label_col, kind, np.array([pos[nfc(t)] for t in tids], dtype=int), id_col, named,
                    csv_style(text))


def _refuse_shared_keys(template, id_col: str, df: pd.DataFrame, every: list[tuple[str, list[str]]], want: set,
                        hit: int) -> None:
    """The template's ids are spelled as a way to match that two test rows share a key of (a.jpg and a.png: the
    stem a), so that way was dropped: where it matches more of them than the ways kept (`hit`), that is the reason,
    named with the key and its files, not 'none of its ids is a test image's stem'."""
    shared = [(len(want & set(keys)), what, keys) for what, keys in every if len(set(keys)) < len(keys)]
    n, what, keys = max(shared, key=lambda c: c[0], default=(0, "", []))
    if n <= hit:
        return
    from collections import Counter
    twice = [k for k, c in Counter(keys).items() if c > 1]
    key = next((k for k in twice if k in want), twice[0])
    paths = [p for k, p in zip(keys, df["path"].astype(str)) if k == key]
    raise UserError(f"{template}: its ids (column {id_col}, e.g. {key}) are the test images' {what}s, and "
                    f"{len(paths)} test images share the {what} {key} ({shown(paths, sep='; ')}): it cannot tell them "
                    f"apart; give each test image its own {what}"
                    + (", or a sample submission of their file names" if what == "file stem" else ""))


def check_template_fits(template: Template, classes: Sequence[str], name: str) -> None:
    """A matched template whose columns or labels do not fit the run, named before the model runs (`name`: how the
    user gave it): one column per class of the run (a submission of probabilities: fill writes one label column,
    the last, and left the others as they were), or a label column holding two or more values none of which is one
    of the run's classes as this submission writes them (names, or class ids): the competition spells its labels
    otherwise and every filled row would be wrong. A template of one placeholder value (all 0, all one class, '?')
    or of empty labels says nothing and is filled. A template of more columns than an id and a label whose label
    column no --format named: which one to fill is unsaid (the last one was: ID,target,Usage had Usage filled)."""
    frame = template.frame
    index = template.kind == "index" and all(str(c).strip().isdigit() for c in classes)
    spelled = [str(int(c)) if index else str(c) for c in classes]
    per_class = [c for c in frame.columns if str(c) in set(map(str, classes))]
    if len(per_class) >= 2:
        raise UserError(f"{name} has a column per class ({shown(per_class, 4)}): it wants a probability per class, "
                        f"and imgcls fills one label column; give a template of an id and a label column (each "
                        f"class's probability is in probs.csv / probs.parquet)")
    if not template.label_named:    # the last one was taken: Usage filled, target left at its placeholders
        cols = [str(c) for c in frame.columns]
        id_col = template.id_col or cols[0]
        raise UserError(f"{name} has {len(cols)} columns ({shown(cols, 4)}): which one the submission fills is "
                        f"unsaid; --format {id_col},LABEL_COL names it (e.g. --format {id_col},"
                        f"{next(c for c in cols if c != id_col)}), the others are kept as they are" + keyword_of("fmt"))
    values = {v.strip() for v in frame[template.label_col].astype(str)} - {""}
    if index:
        values = {str(int(v)) if v.isdigit() else v for v in values}
    if len(values) >= 2 and not values & set(spelled):
        raise UserError(f"{name}: its column {template.label_col} holds {len(values)} labels "
                        f"({shown(sorted(values))}), none of them one of this run's classes ({shown(spelled)}): "
                        f"the competition spells its classes otherwise; give the sample submission of these "
                        f"classes, or train on labels spelled as the competition's")


def fill_template(template: str | os.PathLike, df: pd.DataFrame, pred: np.ndarray, classes: Sequence[str],
                  fmt: str | None = None) -> pd.DataFrame:
    """The competition's sample submission with its label column filled, in the template's row order."""
    return match_template(template, df, fmt).fill(pred, classes)


# formats whose ids are file names without their extension (DACON's test.csv: id TEST_00000 for test/TEST_00000.jpg):
# the ids a folder of test images gives (its paths) are spelled so; ids a CSV gives are kept as written
STEM_IDS = frozenset({"dacon", "id,artist"})


def submission_ids(df: pd.DataFrame, fmt: str = DEFAULT_FORMAT) -> tuple[pd.Series, bool]:
    """(the id build_submission writes for each test row, whether they are a folder's file names): the CSV's ids as
    written, else the file paths (without their extension for STEM_IDS formats), in NFC."""
    id_col = resolve_format(fmt)[0]
    ids = df[id_col].astype(str) if id_col in df.columns and id_col != "id" else df["id"].astype(str)
    from_files = bool((ids == df["path"].astype(str)).all())     # ids a folder's file names gave, not a CSV's
    if format_key(fmt) in STEM_IDS and from_files:
        ids = pd.Series([Path(p).stem for p in ids], index=ids.index)
    if from_files:              # spelled as the competition's CSVs are, whatever the unzip tool made of the names
        ids = ids.map(nfc)
    return ids, from_files


def check_unique_ids(df: pd.DataFrame, fmt: str = DEFAULT_FORMAT, data: str | os.PathLike = "the test data") -> None:
    """A submission whose id is written on two rows is refused by the grader, or scores one of them: test rows
    given the same id (a CSV listing an id twice; --format dacon's ids of a.jpg and a.png, or of a.png and
    sub/a.png, both 'a') are one line before the model runs, naming the id, its images and the fix."""
    ids, from_files = submission_ids(df, fmt)
    dup = ids.duplicated(keep=False)
    if not dup.any():
        return
    first = ids[dup].iloc[0]
    paths = df["path"].astype(str)[(ids == first).to_numpy()].tolist()
    n = ids[dup].nunique()
    many = f"{n} ids are" if n > 1 else "one id is"
    if from_files and format_key(fmt) in STEM_IDS:
        raise UserError(f"--format {fmt} writes each test file's name without its extension as its id, and {many} "
                        f"the name of two or more test images ({first}: {shown(paths, sep='; ')}): a submission's "
                        f"ids must be unique; rename the files, or use --format id,label (ids with their extension "
                        f"and folder)" + keyword_of("fmt"))
    if from_files:          # one path under two roots (a merged manifest), or one name in two Unicode forms
        raise UserError(f"{data}: {many} the path of two or more test images ({first}), as the submission writes "
                        f"it (in NFC, under each image's root): a submission's ids must be unique; give each test "
                        f"image its own name, or a table with an id column")
    raise UserError(f"{data}: {many} given to two or more test rows (id {first}: {shown(paths, sep='; ')}): a "
                    f"submission's ids must be unique; give each test image its own id in {data}")


def build_submission(df: pd.DataFrame, pred: np.ndarray, classes: Sequence[str],
                     fmt: str = DEFAULT_FORMAT) -> pd.DataFrame:
    id_col, label_col, kind = resolve_format(fmt)
    ids = submission_ids(df, fmt)[0]
    return pd.DataFrame({id_col: ids.to_numpy(), label_col: label_values(pred, classes, kind)})
