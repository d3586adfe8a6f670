"""`imgcls predict`: a run or an ensemble + test images -> per-image probabilities and a submission file.

- Source: a run folder (all its folds, soft-averaged), a checkpoint file, or an ensemble folder / spec.yaml; with
  none given the newest under outputs/runs and outputs/ensembles is used (and named).
- Test data: a folder (unlabeled, or ImageFolder when labelled), a manifest, or a competition CSV such as the mask
  competition's `info.csv` (`ImageID` column; images beside it or in `images/`).
- Streaming: a DataLoader over paths decodes, resizes and builds the TTA views per image in `--workers` processes;
  only a batch of images is in memory at a time, and only the [N, C] probabilities grow with the test set.
  Each item carries its row index, and results are written to that index: row order never depends on the loader.
- Submission: `--format id,label | mask (ImageID,ans with class ids) | dacon (id,artist with names)`, or
  `--sample-submission FILE`: the competition's template filled in its own row order; an id missing from our
  predictions or a prediction without a template row is an error naming both counts and an example, before the
  model runs. A sample submission given as --data (is_template_data) is that template, and has no labels.
- --eval: never on rows a member trained on (check_eval_not_leaked), nor on rows with no label the model knows
  (check_eval_scorable), both refused before the model runs; unreadable test images are named, and
  test data none of whose images can be read is an error (nothing written). `--eval-split val|test` typed: the
  model runs on that split's scored rows only, and the submission / probabilities hold them (said on screen);
  with --sample-submission on every row, which the template needs.
"""
from __future__ import annotations

import functools
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from imgcls import io as imgio
from imgcls import manifest as mf
from imgcls.console import (all_placed, info, interruption_leaves, plural, print_table, progress_bar, sh,
                            status, warn)
from imgcls.ensemble import EnsembleSpec, Member, is_spec, load_spec, member_from_run, vote
from imgcls.ensemble.spec import BUILD_ENSEMBLE, ENSEMBLES_DIR
from imgcls.errors import UserError
from imgcls.fsutil import (check_file_name_encoding, check_not_replacing, check_output_location,
                           check_output_not_source, check_writable, did_you_mean, write_json, write_table)
from imgcls.layouts import FolderView, csv_read_style, row_at
from imgcls.options import PATH, check_arguments, python_too, shown
from imgcls.outputs import (ENSEMBLE_OOF_CSV, ENSEMBLE_SCORES_CSV, PREDICT_SUMMARY, REPORT_HTML, SPEC_NAME,
                            SUBMISSION_CSV, output_set, own_earlier_files, placing_journal, refuse_other_output,
                            refuse_users_files, replacing_line)
from imgcls.predict_config import (EVAL_SPLITS, PROBS_FORMATS, PredictConfig,  # noqa: F401  (imgcls.predict's own)
                                   keyword_of)
from imgcls.run_names import (BEST_PT, OOF_SCORE, RUN_CONFIG, VAL_PREDICTIONS, fold_dir, fold_number,
                              fold_set)
from imgcls.runs_config import RUNS_TABLE
from imgcls.split.config import split_rows, split_values
from imgcls.submission import (DEFAULT_FORMAT, age_bands_note, build_submission, check_class_ids,
                               check_template_fits, check_template_exists, check_unique_ids, is_template_data,
                               match_template, folder_template, listing_csv, resolve_format, submission_ids,
                               template_beside)
from imgcls.train.config import TrainConfig
from imgcls.train.rundir import (ENSEMBLE_FILE_FIX, ENSEMBLE_OOF, read_run_csv, read_validation, set_fold_dirs,
                                 validation_files)
from imgcls.tta import TTASpec, parse_tta

RUNS_DIR = Path(TrainConfig.out)        # where imgcls train writes by default



# ---------------------------------------------------------------------------------------------------------------
# What predicts: run, checkpoint or ensemble
# ---------------------------------------------------------------------------------------------------------------

def _members_gone(spec: Path) -> list[str]:
    """The members of the ensemble of `spec` (its spec.yaml) whose checkpoints are gone (missing_members); [] where
    its spec is malformed: load_spec says that when it is the one chosen."""
    from imgcls.ensemble.config import check_spec, missing_members, read_spec_doc
    try:
        doc = read_spec_doc(spec)
        check_spec(doc, spec)
    except UserError:
        return []
    return missing_members(doc, spec.parent)


def _refused_set(folder: Path) -> str | None:
    """Why a k-fold set is no model to predict with (find_checkpoints refuses it: a fold's checkpoint removed since
    it finished, or stopped before its last fold), in a few words with the fix, as `imgcls runs` reads its state;
    None where it is one."""
    from imgcls.train.rundir import find_checkpoints, finish_fix, kfold_finished
    try:
        find_checkpoints(folder)
        return None
    except UserError:
        pass
    from imgcls.runs import FOLD_MISSING, set_state
    finished = kfold_finished(folder)       # check_kfold_finished's: nothing to resume, or folds to train
    # state blank where run_state names none (every fold the set's record names lost its best.pt, the folders kept,
    # while another fold has one): said from `finished`, as check_kfold_finished refused it
    state, progress = set_state(folder) or ("", "")
    what = (state or (FOLD_MISSING if finished else "unfinished")) + (f" ({progress})" if progress else "")
    return f"{folder}, {what}: " + ("restore the fold or train the set again" if finished else finish_fix(folder))


def _passed_by(folder: Path, mark: Path) -> str | None:
    """Why predict's newest choice passes by `folder`, a run, k-fold set or ensemble (`mark`: its best.pt, a fold's
    best.pt, or its spec.yaml), in a few words with the fix, as `imgcls runs` reads its state; None where it is a
    model to predict with. Passed by: an ensemble a member's checkpoint of which is gone (its run renamed, moved,
    deleted: member missing), a k-fold set find_checkpoints refuses (_refused_set: fold missing, stopped), and a run
    whose training stopped before its epochs (stopped: its best.pt is a partial run's model; named, it is used with
    ensemble.spec.warn_unfinished's warning)."""
    if mark.name == SPEC_NAME:
        gone = _members_gone(mark)
        return (f"{folder}, whose member{'s' if len(gone) > 1 else ''} {', '.join(gone)} "
                f"{'is' if len(gone) == 1 else 'are'} gone: rebuild it with {BUILD_ENSEMBLE}") if gone else None
    if folder != mark.parent:
        return _refused_set(folder)
    from imgcls.runs import stopped_state
    from imgcls.train.rundir import finish_fix
    stopped = stopped_state(folder)
    return f"{folder}, {stopped[0]} ({stopped[1]} epochs): {finish_fix(folder)}" if stopped else None


def resolve_source(src: str | os.PathLike | None, runs_dir: Path = RUNS_DIR,
                   ensembles_dir: Path = ENSEMBLES_DIR) -> EnsembleSpec:
    """The members that predict, as an EnsembleSpec (a run is a one-member soft ensemble)."""
    return with_classes(locate_source(src, runs_dir, ensembles_dir))


def locate_source(src: str | os.PathLike | None, runs_dir: Path = RUNS_DIR,
                  ensembles_dir: Path = ENSEMBLES_DIR) -> EnsembleSpec:
    """resolve_source from the folders' files alone (a wrong run is one line without torch): a run's classes, read
    from its checkpoints (torch), are left None for with_classes. Its lines said once: the newest choice reads a
    set's checkpoints (find_checkpoints: a fold folder it leaves out) before the set is read as the one used."""
    from imgcls.console import said_once
    with said_once():
        return _locate_source(src, runs_dir, ensembles_dir)


def _locate_source(src: str | os.PathLike | None, runs_dir: Path, ensembles_dir: Path) -> EnsembleSpec:
    if src is None:
        from imgcls.train.rundir import RunLock

        def folder(mark: Path) -> Path:         # a run's, a k-fold set's (fold_<k>/best.pt) or an ensemble's
            return fold_set(mark.parent) or mark.parent

        def planned_folds_marks() -> list[Path]:
            # each set's folds (run_names.fold_set: not a plain run named fold_0 in another run's folder) of its
            # plan: not a fold_2 copied in (set_fold_dirs), which predict averages none of, to date the set by; the
            # set's records read once, not once per fold
            by_set: dict[Path, list[Path]] = {}
            for m in Path(runs_dir).glob(f"*/fold_*/{BEST_PT}"):
                by_set.setdefault(m.parent.parent, []).append(m)
            kept = []
            for kset, ms in by_set.items():
                named = {d.name for d in set_fold_dirs(kset)[0]}        # none where kset is no set (fold_dirs: [])
                kept += [m for m in ms if m.parent.name in named]
            return kept
        marks = [*Path(runs_dir).glob(f"*/{BEST_PT}"), *planned_folds_marks(),
                 *Path(ensembles_dir).glob(f"*/{SPEC_NAME}")]
        newest = {}         # each folder's newest mark: a set's is its newest fold's best.pt
        for m in marks:
            newest[folder(m)] = max(newest.get(folder(m), (0.0, m)), (m.stat().st_mtime, m), key=lambda t: t[0])
        # a run imgcls train is training now (another terminal) has the newest best.pt after each epoch: it is no
        # model to submit from (half trained, or a k-fold set without its last folds), so the newest other one
        busy = sorted(f for f in newest if RunLock.held(f))
        picked, passed = None, []       # newest first: each one newer than the one used that is passed by is named
        for f in sorted(set(newest) - set(busy), key=lambda f: (newest[f][0], str(f)), reverse=True):
            said = _passed_by(f, newest[f][1])
            if said is None:
                picked = f
                break
            passed.append(said)
        if picked is None:
            training = f" ({', '.join(map(str, busy))} being trained now: wait for it to finish)" if busy else ""
            usable = " usable" if busy or passed else ""      # some are there: each passed by is named
            raise UserError(f"no run given and none{usable} under {runs_dir} or {ensembles_dir}{training}"
                            + "".join(f" (not {g})" for g in passed) + ("; or train another" if usable else
                                                                          "; train first")
                            + f" with {python_too('imgcls train', 'run_train(TrainConfig())')}, or pass a run folder")
        src = picked
        newer = [str(b) for b in busy if newest[b][0] > newest[picked][0]]
        info(f"using {src} (the newest run or ensemble"
             + (f"; not {', '.join(newer)}, which imgcls train is training now" if newer else "")
             + "".join(f"; not {g}" for g in passed) + ")")
    src = Path(src)
    if not src.exists():
        raise UserError(f"{src} does not exist{did_you_mean(src, (runs_dir, ensembles_dir))}; give a run folder "
                        f"(outputs/runs/NAME), a checkpoint, or an ensemble folder (outputs/ensembles/NAME)")
    if is_spec(src):
        return load_spec(src)
    m = member_from_run(src)
    return EnsembleSpec(m.name, "soft", [m], None)


def with_classes(spec: EnsembleSpec) -> EnsembleSpec:
    """A spec from locate_source with its classes: a run's from its checkpoints (its folds must share them)."""
    if spec.classes is not None:
        return spec
    from dataclasses import replace

    from imgcls.ensemble import check_same_classes
    return replace(spec, classes=check_same_classes(spec.members))


def warn_preprocess_differs(spec: EnsembleSpec, df: pd.DataFrame, data) -> None:
    """A member trained on images `imgcls preprocess` changed (a face crop, the background removed: its
    checkpoint's meta.preprocess) predicts badly on test images that did not go through the same: said once per
    difference, with the command that prepares them (a `--resize-mode crop`'s centre squares too). Nothing is said
    where either side is not known, nor where the options differ in no pixel of an image both write
    (preprocess.config.same_view: `--no-face drop` against keep, a crop of test images that are squares)."""
    from imgcls.preprocess.config import applied_config, same_view
    from imgcls.preprocess.outputs import applied, made_from
    from imgcls.train.checkpoint import read_meta
    rows = mf.readable(df)
    test = applied(rows)
    if test is None:
        return
    # test images a preprocess run wrote are prepared again from the originals it read, never processed twice (a
    # face crop of a face crop, a face looked for in a --size cache)
    origin = made_from(rows)
    squares = None
    said = set()
    for m in spec.running().members:
        want = read_meta(m.checkpoints[0]).preprocess
        if want is None or want in said or same_view(want, test):
            continue
        if same_view(want, test, squares=True):     # a centre crop alone differs: not for squares as they came
            squares = _squares_as_they_came(rows) if squares is None else squares
            if squares:
                continue
        said.add(want)
        trained = f"images imgcls preprocess changed ({want})" if want else "images no imgcls preprocess changed"
        got = f"went through other options ({test})" if test and want else \
            f"went through imgcls preprocess ({test})" if test else "did not go through it"
        if want:
            fix = python_too(f"imgcls preprocess {sh(origin or data)} --out DIR {want}, then predict --data DIR"
                             + (f" ({origin}: the images {data} was made from)" if origin else ""),
                             f"run_preprocess({str(origin or data)!r}, out=DIR, cfg={applied_config(want)}), then "
                             f"the same run_predict call with data=DIR")
        else:
            fix = python_too(f"predict --data {sh(origin)} (the images {data} was made from)",
                             f"the same run_predict call with data={origin!r}") if origin else \
                "predict on the test images as they came"
        warn(f"{m.name} trained on {trained}; the test images of {data} {got}, so what it sees differs: {fix}")


def _squares_as_they_came(rows: pd.DataFrame) -> bool:
    """Whether every image of `rows` is a square of its own: a `preprocess --resize-mode crop` of it is the image
    itself. Not squares a preprocess --size made (the padding of a non-square image is no centre crop of it). Sizes
    are the manifest's width / height where it has them (a scanned table); else (a folder given to predict is not
    scanned) read from the files' headers, up to the first that is no square: seconds over a test set of 10,000
    images, under a bar."""
    from imgcls.preprocess.outputs import made_square
    if made_square(rows):
        return False
    if {"width", "height"} <= set(rows.columns):
        w, h = (pd.to_numeric(rows[c], errors="coerce") for c in ("width", "height"))
        known = (w.notna() & h.notna()).to_numpy(dtype=bool)
        if (w[known] != h[known]).any():
            return False
        rows = rows[~known]
    paths = mf.image_paths(rows)
    if not paths:
        return True
    with progress_bar("reading test image sizes", len(paths), transient=True) as advance:
        for path in paths:
            try:
                w, h = imgio.header_size(path, None)
            except imgio.ImageReadError:      # unreadable: predict says so, not this
                w = h = 0
            if w != h:
                return False
            advance()
    return True


def warn_decode_differs(spec: EnsembleSpec) -> None:
    """Members whose checkpoints record another decoding of their training images than this imgcls's loaders
    (ModelMeta.decode_version, model_meta.decode_differs): said in one line, a warning (their predictions are still
    the model's, on pixels that may differ for some files)."""
    from imgcls.model_meta import decode_differs
    from imgcls.train.checkpoint import read_meta
    line = decode_differs({m.name if len(m.checkpoints) == 1 else f"{m.name}/{ck.parent.name}": read_meta(ck)
                           for m in spec.running().members for ck in m.checkpoints})
    if line:
        warn(line)


def say_letterbox(spec: EnsembleSpec, df: pd.DataFrame) -> None:
    """Members trained on images `imgcls preprocess --size N` letterboxed (padded to squares, meta.letterbox) see
    each test image padded so before their own resize (imgcls.tta.ViewMaker): said in one line, unless the test
    images were letterboxed with the same colour by preprocess too, or made square by another preprocess --size, or
    are squares (then the padding changes nothing)."""
    from imgcls.preprocess.outputs import letterboxed, made_square
    from imgcls.train.checkpoint import read_meta
    rows = mf.readable(df)
    if {"width", "height"} <= set(rows.columns):
        # the squares among them are padded by nothing: a preprocessed folder's rows clean dropped still point at
        # their originals (another root, no preprocess.json), which alone made the run's own images look unpadded
        w, h = (pd.to_numeric(rows[c], errors="coerce") for c in ("width", "height"))
        rows = rows[~(w == h)]
        if rows.empty:
            return
    test = letterboxed(rows)
    fills = {m.name: fill for m in spec.running().members
             if (fill := read_meta(m.checkpoints[0]).letterbox) is not None and tuple(fill) != test}
    if not fills or made_square(rows):         # squares (another preprocess --size): padding changes nothing
        return
    colours = sorted({"#%02x%02x%02x" % tuple(f) for f in fills.values()})
    info(f"test images letterboxed as preprocess did for the training images of {', '.join(fills)}: the non-square "
         f"padded to squares with {' / '.join(colours)} before the model's resize")


def say_crop_from(spec: EnsembleSpec) -> None:
    """Members trained with `train --crop-from F` (meta.crop_from > 1) learnt from S x S crops of images resized to
    F x S; predict does not crop: it resizes each test image whole to S, as for any run (the test images are meant
    to be the crops, at the density the training crops had). Said in one line for them all; nothing for the others."""
    from imgcls.train.checkpoint import read_meta
    from imgcls.train.data import cached_size
    crops = [f"{m.name} on {meta.img_size} x {meta.img_size} crops of images resized to "
             f"{(big := cached_size(meta.img_size, meta.crop_from))} x {big} (--crop-from {meta.crop_from:g})"
             for m in spec.running().members if (meta := read_meta(m.checkpoints[0])).crop_from > 1]
    if crops:
        info(f"trained on crops: {'; '.join(crops)}; each test image is resized whole to the model's input size, "
             f"not cropped (the test images are meant to be the crops)")


def predict_dropped_faces(df: pd.DataFrame) -> pd.DataFrame:
    """Test rows `preprocess --no-face drop` left out (no face found; the row still points at its readable input
    image) are predicted from that input, as it came: a submission needs a prediction for every test image, and
    the most frequent class given to an unreadable one is no prediction. Said in one warning."""
    from imgcls.manifest import NO_FACE_DROPPED
    if "error" not in df.columns:
        return df
    dropped = (mf.text_values(df["error"]) == NO_FACE_DROPPED).to_numpy()
    if not dropped.any():
        return df
    first = mf.image_paths(df[dropped].head(1))[0]
    warn(f"{plural(int(dropped.sum()), 'test image')} preprocess --no-face drop left out (no face found, e.g. "
         f"{first}) predicted as they came, uncropped: a submission needs every test image (preprocess test images "
         f"with --no-face keep or center-crop)")
    df = df.copy()
    df.loc[dropped, "error"] = ""
    return df


def warn_mirrors_unseen(spec: EnsembleSpec, tta_spec: TTASpec) -> None:
    """A member trained with --no-hflip never saw a mirrored image (a digit's mirror is no digit): TTA's flipped
    views average in what it cannot read, so that is said."""
    if not (tta_spec.flip or tta_spec.crops == 10):
        return
    for m in spec.members:
        cfg = m.recorded_config
        if cfg is not None and not cfg.hflip:
            warn(f"--tta {tta_spec.text} mirrors the images, but {m.name} was trained with --no-hflip (it never saw "
                 f"a mirrored image); --tta crops or scales=... keep the orientation")


def recorded_max_pixels(spec: EnsembleSpec) -> int:
    """predict's --max-pixels when not given: the highest train --max-pixels its running members recorded in their
    config.yaml (the test images are of the kind they trained on: a run trained on 120-megapixel scans would
    otherwise find every test image too big; 0, no limit, is the highest); io's default for a run without one (a
    bare checkpoint, an older run). A limit other than the default is said in one line."""
    found = {m.name: cfg.max_pixels or 0 for m in spec.running().members if (cfg := m.recorded_config) is not None}
    limit = max(found.values(), default=imgio.DEFAULT_MAX_PIXELS, key=lambda v: v or math.inf)     # 0: no limit
    if limit != imgio.DEFAULT_MAX_PIXELS:
        who = ", ".join(n for n, v in found.items() if v == limit)
        info(f"--max-pixels {limit}{'' if limit else ' (no limit)'}: the limit {who} trained with ({RUN_CONFIG}); "
             f"--max-pixels N sets another")
    return limit


# ---------------------------------------------------------------------------------------------------------------
# Test data
# ---------------------------------------------------------------------------------------------------------------

def read_test_data(data: str | os.PathLike, opts: mf.LayoutOptions | None = None,
                   view: FolderView | None = None, announce: bool = True) -> pd.DataFrame:
    """A manifest of the test images (not scanned: unreadable files are found while predicting) with an `id`.
    A folder detected as class folders that also holds images outside them is refused (one line, before the model
    runs): a submission without those images would be wrong, and which images are the test set is the user's call
    (--layout unlabeled: every image; --layout folder: the class folders' only). So is a folder holding image files
    its walk cannot read (names not UTF-8, or without an image extension: layouts.LeftOut), whatever the layout.
    `view`: the look at the test data's folder (manifest.source_view) the read makes, where the caller asks it
    afterwards (run_predict: the sample submission beside the images, template_beside). `announce`: mf.load's
    line of what was read, said now (False: the caller's to say, mf.announce_read)."""
    data = Path(data)
    opts = opts or mf.LayoutOptions()
    if not data.exists():
        raise UserError(f"test data {data} does not exist; pass --data FOLDER, a manifest or the competition CSV")
    view = view if view is not None else mf.source_view(data, opts)     # its text of the table read, asked again
    df = mf.load(data, opts, scan=False, loose_images="refuse", unread_images="refuse", view=view,
                 announce=announce, require_found=False,    # files not there: require_most_found's line, of --data
                 groups_matter=False)       # a test CSV's `group` column: nothing is split
    # the submission id: a CSV's own `id` column (spelled in any case: DACON's `ID`), else the CSV's image column
    # (e.g. ImageID), else the path
    own = [c for c in df.columns if str(c).strip().lower() == "id" and (df[c].astype(str) != "").any()]
    check_one_id_column(df, own)
    if "id" not in df.columns or (df["id"].astype(str) == "").all():
        df["id"] = df[own[0]] if own else df["source_id"] if "source_id" in df.columns else df["path"]
    df["id"] = df["id"].astype(str)
    return df.reset_index(drop=True)


def check_one_id_column(df: pd.DataFrame, own: Sequence[str]) -> None:
    """A table with two id columns (`own`: those spelled id in any case, `Id` and `ID`) holding other ids: which
    one the competition grades is unsaid, and the first one taken silently may make every id of the submission
    wrong. One line naming the file's line of the first row where they differ (layouts.row_at: mf.load keeps the
    rows of a competition CSV or a manifest, the only tables whose columns are spelled so, as read) and both
    columns, before the model runs; columns holding the same ids are one id."""
    for other in own[1:]:
        differ = (df[own[0]].astype(str) != df[other].astype(str)).to_numpy()
        if differ.any():
            i = int(np.flatnonzero(differ)[0])
            table = mf.manifest_read(df) or Path(mf.read_table(df)[0])
            raise UserError(f"{row_at(df, i, str(table))} has other ids in its two id columns, {own[0]} and {other} "
                            f"({df[own[0]].iloc[i]}, {df[other].iloc[i]}): which one is the submission's id is "
                            f"unsaid; give a copy of {table} keeping the competition's id column only")


def say_unlisted_images(df: pd.DataFrame) -> None:
    """A competition CSV's image folder holding images the CSV does not list (an extra file copied into test/, a
    test.csv of another release, or a folder shared with the training images): predict follows the CSV, so they
    get no row, said in one line naming their count, an example and how to predict every image there. Only the
    folders that hold listed images are looked at (their files, hidden names passed over: layouts.hidden_name), not
    the folders below them."""
    from imgcls.layouts import hidden_name
    if mf.layout_read(df) != "csv" or not mf.read_table(df):
        return
    listed = {os.path.normcase(os.path.abspath(p)) for p in mf.image_paths(df)}
    unlisted: dict[str, list[str]] = {}
    for folder in sorted({os.path.dirname(p) for p in listed}):
        try:
            with os.scandir(folder) as it:
                names = sorted(e.name for e in it if not hidden_name(e.name) and imgio.is_image_name(e.name)
                               and e.is_file() and os.path.normcase(e.path) not in listed)
        except OSError:
            continue
        if names:
            unlisted[folder] = names
    if not unlisted:
        return
    n = sum(map(len, unlisted.values()))
    folder, names = next(iter(unlisted.items()))
    table = mf.read_table(df)[0]
    where = folder if len(unlisted) == 1 else f"{folder} and {plural(len(unlisted) - 1, 'other folder')}"
    info(f"{plural(n, 'image')} in {where} {'is' if n == 1 else 'are'} not listed in {table} (e.g. {names[0]}): "
         f"not predicted, the submission holds the {len(df)} rows of {table} (if they are test images too: --data "
         f"{sh(folder)} --layout unlabeled predicts every image there)")


def _refuse_nan_probabilities(paths: Sequence[str], probs: np.ndarray, errors: Sequence[str], spec: EnsembleSpec,
                              members: Sequence[int], rows: np.ndarray | None = None,
                              folds: dict[int, set[int]] | None = None) -> None:
    """A model whose probabilities are NaN for read images (finite weights that overflow, as a diverged run's; NaN
    weights are refused as it loads) would fill the submission with argmax's pick of NaN, the first class, at exit
    0: refused in one line before anything is written, naming the run, or the ensemble's `members` (indices into
    spec.members) that gave them, and of a k-fold set the folds (`folds`: {member: indices into its checkpoints}).
    Rows counted as rundir counts a diverged run's. `rows`: the indices of the rows `probs` holds (predict_members'
    first batch of a model: it stops there, not after every image), None for all of them."""
    from imgcls.train.rundir import nan_rows
    rows = np.arange(len(paths)) if rows is None else np.asarray(rows)
    read = np.array([not errors[i] for i in rows], dtype=bool)
    nan = nan_rows(probs) & read
    if nan.any():
        left = len(paths) - (int(rows.max()) + 1)     # the images after this batch: its model ran none of them
        first = paths[int(rows[np.flatnonzero(nan)[0]])]
        # the k-fold set each member's folds belong to (run_names.fold_set: a --folds 0 set, a fold given alone are
        # a set's too, a run named fold_0 in a plain run's folder is none); a set's folds by their folders (fold_1
        # (runs/kf/fold_1) of kf), a fold given alone and a run by the member's name
        sets = {i: fold_set(spec.members[i].checkpoints[0].parent) for i in members}
        alone = {i: spec.members[i].run in (spec.members[i].checkpoints[0], spec.members[i].checkpoints[0].parent)
                 for i in members}
        cks = {i: [spec.members[i].checkpoints[c].parent for c in sorted((folds or {}).get(i, ()))]
               if sets[i] is not None and not alone[i] else [] for i in members}
        names = [", ".join(f"{d.name} ({d})" for d in cks[i]) + f" of {spec.members[i].name}" if cks[i] else
                 spec.members[i].name for i in members]
        one = sum(len(c) or 1 for c in cks.values()) == 1
        name = ", ".join(names) if spec.path is None else \
            f"{', '.join(names)} ({'a member' if len(members) == 1 else 'members'} of {spec.name})"
        where = f" in {'its' if one else 'their'} first batch (e.g. {first}; stopped there, before the other " \
                f"{plural(left, 'image')})" if left else f" (e.g. {first})"
        what = ("fold" if all(cks[i] or alone[i] and sets[i] for i in members) else "run") + ("" if one else "s")
        fix = _diverged_fix([(spec.members[i], sets[i], alone[i]) for i in members], one)
        raise UserError(f"the probabilities of {name} are NaN for {int(nan.sum())} of the {int(read.sum())} images "
                        f"read{where}: {'its' if one else 'their'} weights overflow (the {what} diverged); nothing "
                        f"written; {fix}")


def _diverged_fix(diverged: Sequence[tuple[Member, Path | None, bool]], one: bool) -> str:
    """The fix of _refuse_nan_probabilities' diverged members (each with the k-fold set its checkpoints are folds of,
    None for a run, and whether it is a fold given alone; `one`: a single run or fold): a run trained again with a
    lower --lr; a k-fold set, no fold of which is trained alone, trained again whole as a new set with a lower --lr
    (rundir.diverged_set_fix), named as the member where the member is the set, by its folder where a fold."""
    from imgcls.train.rundir import diverged_set_fix
    runs = [m.name for m, kset, _ in diverged if kset is None]
    fixes = [f"train {'it' if one else 'them'} again with a lower --lr" if len(runs) == len(diverged) else
             f"train {', '.join(runs)} again with a lower --lr"] if runs else []
    sets = {kset: None if alone else m.name for m, kset, alone in diverged if kset is not None}
    return "; ".join(fixes + [diverged_set_fix(kset, name) for kset, name in sets.items()])


def require_one_readable(df: pd.DataFrame, errors: Sequence[str] | None, max_pixels: int | None, **say) -> None:
    """Test data none of whose images can be read (a wrong root, ids without their extension, files that are no
    images) is refused before the model is loaded, not after a pass over every image: the images are decoded in
    order until one reads, so test data that is fine costs one image (the manifest's `error`, when it has one, is
    taken as it is). `say`: mf.require_readable's wording."""
    errors = list(errors) if errors is not None else [""] * len(df)
    for i, path in enumerate(mf.image_paths(df)):
        if errors[i]:
            continue
        try:
            imgio.load_rgb(path, max_pixels=max_pixels, draft=(1, 1))
            return
        except imgio.ImageReadError as e:
            errors[i] = e.reason
    mf.require_readable(df.assign(error=errors), **say)


# ---------------------------------------------------------------------------------------------------------------
# The streaming forward pass
# ---------------------------------------------------------------------------------------------------------------

class _ViewDataset:
    """Item i -> (i, uint8 views [V,3,S,S], error). A bad image gives zeros and ok=False (reported, never a crash);
    so does one with more than `max_pixels` pixels (predict --max-pixels)."""

    def __init__(self, paths: Sequence[str], maker, errors: Sequence[str] | None = None,
                 max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS):
        self.paths, self.maker, self.max_pixels = list(paths), maker, max_pixels
        self.errors = list(errors) if errors is not None else [""] * len(self.paths)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import torch
        if not self.errors[i]:
            try:
                # the plain view from the decode validation saw, the larger views from one of their own
                imgs = imgio.load_rgb_drafts(self.paths[i], self.maker.draft_sides(), max_pixels=self.max_pixels)
                return i, self.maker.views_uint8(*imgs), ""
            except imgio.ImageReadError as e:
                err = e.reason
        else:
            err = self.errors[i]
        s = self.maker.size
        return i, torch.zeros(self.maker.spec.n_views, 3, s, s, dtype=torch.uint8), err


def _collate(batch):
    import torch
    idx = torch.tensor([b[0] for b in batch])
    return idx, torch.stack([b[1] for b in batch]), [b[2] for b in batch]


@dataclass
class Probabilities:
    tta: np.ndarray           # [N, C] ensemble probabilities with TTA
    plain: np.ndarray         # [N, C] ensemble probabilities from the plain view only
    errors: list[str]         # '' or why the image could not be read
    seconds: float
    n_views: int
    device: str = ""          # the device the members ran on: 'cpu', 'cuda:0' (device_name)


def predict_members(paths: Sequence[str | os.PathLike], spec: EnsembleSpec, tta: TTASpec, merge: str = "mean",
                    device: str = "auto", batch_size: int = 32, workers: int = 2, amp: bool | None = None,
                    errors: Sequence[str] | None = None, max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS,
                    scheme=None) -> Probabilities:
    """Probabilities of every member (each checkpoint of each member, with TTA) combined by the spec's method;
    an image with more than `max_pixels` pixels is reported as unreadable. Probabilities NaN for a read image are
    refused (_refuse_nan_probabilities): at each model's first batch holding a read image, naming its member, so
    a diverged model stops there rather than after every image. `amp`: float16 autocast on CUDA (None:
    on there); asked for (True) on another device, where it does nothing, said in one line. `scheme`: a --combine
    profile spec's ProfileScheme where the caller made it already (profile_scheme, which may warn), else made here."""
    import torch
    from imgcls.device import device_name, resolve_device
    from imgcls.train.checkpoint import load_model
    from imgcls.train.rundir import diverged_fix, nan_rows
    from imgcls.tta import ViewMaker, merge_views

    dev = resolve_device(device)
    use_amp = amp is not False and dev.type == "cuda"
    if amp and dev.type != "cuda":      # the device is known only now: a line, not a refusal
        info(f"--amp does nothing on {device_name(dev)}: predict's mixed precision is float16 on CUDA; the model "
             f"runs in float32 here")
    spec = spec.running()                  # members of weight 0 are not run
    n, n_cls = len(paths), len(spec.classes)
    paths = [str(p) for p in paths]
    # checkpoints grouped by preprocessing: one decode pass serves all folds of a run (and same-input models)
    loaded = [[load_model(c, dev, functools.partial(diverged_fix, c)) for c in m.checkpoints]
              for m in spec.members]
    for m, lms in zip(spec.members, loaded):
        for ck, lm in zip(m.checkpoints, lms):
            # --combine profile: a member's classes are its own (an attribute's values); they combine at the end
            want = list(spec.classes) if spec.combine != "profile" else list(lms[0].classes)
            if [str(c) for c in lm.classes] != want:
                raise UserError(f"{m.name}: the classes of {ck} differ from the ensemble's; rebuild the ensemble")
    if spec.combine == "profile":
        from imgcls.ensemble import profile_scheme
        metas = [lms[0].meta for lms in loaded]
        scheme = scheme or profile_scheme(metas, [m.name for m in spec.members])
        if scheme.n_classes != n_cls:
            raise UserError(f"{spec.path}: {n_cls} classes, its members make {scheme.n_classes}; rebuild the "
                            f"ensemble")
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for mi, lms in enumerate(loaded):
        for ci, lm in enumerate(lms):
            groups.setdefault(lm.meta.prep_key, []).append((mi, ci))
    # per member: sum over its checkpoints of TTA-merged and plain probabilities
    sums_tta = [np.zeros((n, len(lms[0].classes)), np.float64) for lms in loaded]
    sums_plain = [np.zeros_like(a) for a in sums_tta]
    errs = [""] * n
    weights = spec.weights

    def combined(member_probs):
        if spec.combine == "profile":
            from imgcls.ensemble import combine_profile
            return combine_profile(member_probs, metas, weights, scheme, [m.name for m in spec.members])
        return vote(member_probs, spec.method, weights)

    overflowed: dict[int, set[int]] = {}    # {member: its checkpoints} whose probabilities went NaN for a read image
    t0 = time.perf_counter()
    for key, pairs in groups.items():
        checked = False    # the group's first batch holding a read image: a model's NaN probabilities refused there
        maker = ViewMaker(loaded[pairs[0][0]][pairs[0][1]].meta, tta)
        ds = _ViewDataset(paths, maker, errors, max_pixels)
        dl = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers,
                                         collate_fn=_collate, pin_memory=dev.type == "cuda",
                                         persistent_workers=False,
                                         prefetch_factor=2 if workers > 0 else None)
        what = f"predicting {plural(n, 'image')} x {tta.n_views} view(s) x {len(pairs)} model(s)"
        with progress_bar(what, n) as advance:
            for idx, x, bad in dl:
                b, v = x.shape[:2]
                # uint8 travels to the device; normalisation happens there (as timm's CUDA prefetcher does)
                x = maker.normalize(x.view(b * v, *x.shape[2:]).to(dev, non_blocking=True))
                ii = idx.numpy()
                for k, e in zip(ii, bad):
                    if e:
                        errs[k] = e
                first = not checked and not all(bad)
                checked = checked or first
                read = ~np.array([bool(e) for e in bad])
                for mi, ci in pairs:
                    lm = loaded[mi][ci]
                    with torch.autocast(dev.type, dtype=torch.float16, enabled=use_amp):
                        p = lm.predict_proba(x).float().view(b, v, -1)
                    merged = merge_views(p, merge).cpu().numpy()
                    if first:   # the model's first batch: one that overflows stops here (a group before ran all)
                        _refuse_nan_probabilities(paths, merged, errs, spec, [mi], ii, {mi: {ci}})
                    elif nan_rows(merged[read]).any():      # a later batch's: refused after the last
                        overflowed.setdefault(mi, set()).add(ci)
                    sums_tta[mi][ii] += merged
                    sums_plain[mi][ii] += p[:, 0].cpu().numpy()
                advance(b)
    seconds = time.perf_counter() - t0
    member_tta = [a / len(lms) for a, lms in zip(sums_tta, loaded)]
    member_plain = [a / len(lms) for a, lms in zip(sums_plain, loaded)]
    tta_p, plain_p = combined(member_tta), combined(member_plain)
    # the members a later batch found NaN for (each batch's check above: their sums hold those NaN), else every one
    _refuse_nan_probabilities(paths, tta_p, errs, spec, sorted(overflowed) or range(len(spec.members)),
                              folds=overflowed)
    bad = np.array([bool(e) for e in errs])
    tta_p[bad] = np.nan
    plain_p[bad] = np.nan
    return Probabilities(tta_p, plain_p, errs, seconds, tta.n_views, device_name(dev))


# ---------------------------------------------------------------------------------------------------------------
# The step
# ---------------------------------------------------------------------------------------------------------------

def eval_rows(df: pd.DataFrame, eval_split: str | None) -> tuple[str, np.ndarray]:
    """(part, mask) of the rows --eval scores. Default: the `val` rows when the data has a split column naming
    some (a splits.csv holds training rows too: scoring them would not be a validation score), else every row.
    Rows clean dropped (keep = false) and preprocess --oversample's copies (augmented_from; split keeps a copy on
    its source's side) are never scored, as train never validates on them: on a run's own splits.csv the scored val
    rows are the ones it validated on."""
    val = split_rows(df, "val")
    if eval_split is None:
        eval_split = "val" if val is not None and val.any() else "all"
    if eval_split not in EVAL_SPLITS:
        raise UserError(f"unknown --eval-split '{eval_split}'; use one of: {', '.join(EVAL_SPLITS)}")
    rows = mf.kept(df).copy()
    if eval_split != "all":
        part = split_rows(df, eval_split)
        if part is None:
            from imgcls.split.config import SPLIT_FIRST
            raise UserError(f"--eval-split {eval_split}: the data has no split column; pass a splits.csv written by "
                            f"{SPLIT_FIRST}, or --eval-split all")
        if not part.any():
            # a splits.csv made without --test (or --val): "pass a splits.csv written by imgcls split" named the
            # very file given. --eval-split all is refused in turn where a member trained on the rows, with the
            # commands to a held-out score
            hold_out = python_too(f"`imgcls split --{eval_split} 0.2`", f"run_split(cfg=SplitConfig({eval_split}=0.2))")
            raise UserError(f"--eval-split {eval_split}: the data's split column has no {eval_split} rows (it was "
                            f"split without --{eval_split}); a score on held-out rows needs them held out before "
                            f"training: {hold_out}, then train on that table; or --eval-split all scores every row")
        rows &= part
    copies = rows & mf.augmented(df)
    if copies.any():
        n = int(copies.sum())
        info(f"{n} oversampled cop{'y' if n == 1 else 'ies'} (augmented_from) left out of --eval (validation scores "
             f"originals only, as train's)")
        rows &= ~copies
    return eval_split, rows


def member_run(member: Member) -> tuple[Path, set[int]]:
    """(the run folder a member's checkpoints are of, its folds): a k-fold set's folder and fold numbers
    (run_names.fold_set: a plain run named fold_0 in another run's folder is a single run, folds empty)."""
    folds = {fold_number(Path(c).parent) for c in member.checkpoints if fold_set(Path(c).parent)}
    first = Path(member.checkpoints[0]).parent
    return (first.parent if folds else first), folds


def trained_rows(member: Member, df: pd.DataFrame, view: FolderView | None = None, tables: dict | None = None
                 ) -> tuple[np.ndarray, Path | None, list[int]]:
    """(rows of df that `member` trained on, its run folder, its folds: [] for a single run; an all-False mask and
    None when df holds none of the rows its records name, so nothing is known about it).
    From the run's own records: each val_predictions.csv (a single run's, or each fold_<g>/ one of a k-fold run)
    lists the images that run or fold validated on. A k-fold run: every other fold trained on fold g's images, and
    the split table it trained on (config.yaml's src; where that is not readable, df's fold column when df is that
    split: each fold's validation images in that fold, never another split of the same images) gives every row,
    by train's rule (train.data.fold_training_rows). A single run whose validation images are rows of df: df is its
    training data, and every other kept row but the split's test rows trained (train's rule for a split table and
    for a --val-split alike). `view`: the read's look at df's folder (predict's), whose split folders are read where the
    member trained on that folder (_trained_in_folder), not listed again. `tables`: the training tables read so far
    by the caller's check (_training_table), each read once for every member."""
    trained = np.zeros(len(df), bool)
    where = {str(p): i for i, p in enumerate(mf.image_paths(df))}
    run, folds = member_run(member)
    src = getattr(member.recorded_config, "src", None)      # its training table, read once per member
    # each val_predictions.csv read once: the run's, and each fold's
    named = {f: _named_rows(f, where) for f in validation_files(run)}
    if not any(named.values()):
        took = _trained_by_table(run, df, where, folds, src, view, tables)
        return (took, run, sorted(folds)) if took is not None and took.any() else (trained, None, [])
    if not folds:
        hit = named.get(run / VAL_PREDICTIONS)
        trained = _trained_by_table(run, df, where, folds, src, view, tables)
        if trained is None:         # its training table is not readable here: df taken as it (train's rule)
            split = split_values(df)
            trained = np.array(mf.kept(df), bool)
            if split is not None:
                test = (split == "test").to_numpy()
                if n := int((trained & test).sum()):     # df's split trusted as the run's: said, not silent
                    table = (f"{src}: an image folder its validation images are not in"
                             if src and Path(src).is_dir() else src or f"{RUN_CONFIG} names none")
                    warn(f"--eval: the training table of {run} cannot be read here ({table}), so the leak check "
                         f"takes the scored data's split column as the run's: its {n} test rows count as never "
                         f"trained on; if the run trained on another split of these images, their score is a "
                         f"leaked one")
                trained &= ~test
        trained[hit] = False
        return trained, run, []
    hits = {}
    for d in set_fold_dirs(run)[0]:       # the set's planned folds (validation_files reads no other)
        g = fold_number(d)
        hit = named.get(d / VAL_PREDICTIONS)
        if not hit:
            continue
        hits[g] = hit
        if folds - {g}:
            trained[hit] = True
    if not hits:
        return trained, run, sorted(folds)
    took = _trained_by_table(run, df, where, folds, src, view, tables)  # the run's own split table: its folds, not df's
    if took is not None:
        trained |= took
    elif "fold" in df.columns:
        # its table unreadable here: df's fold column is train's only where it is the run's split (each fold's
        # validation images in that fold of df), not another split of the same images
        from imgcls.split.config import fold_numbers
        from imgcls.train.data import fold_training_rows
        fold = fold_numbers(df)
        if all((fold[hit] == g).all() for g, hit in hits.items()):
            for k in folds:
                trained |= fold_training_rows(df, k)
    return trained, run, sorted(folds)


def _validated_paths(f: Path) -> list[str] | None:
    """The image paths a run's val_predictions.csv `f` names (the images it validated on); None without such a file
    or without root / path columns. Read by rundir.read_validation: a malformed file is one line naming it and the
    fix."""
    if not f.is_file():
        return None
    vp = read_validation(f, dtype=str)
    if not {"root", "path"} <= set(vp.columns):
        return None
    return list(map(str, mf.image_paths(vp)))


def _named_rows(f: Path, where: dict[str, int]) -> list[int] | None:
    """The rows (`where`: image path -> row) a run's val_predictions.csv names; None without such a file."""
    paths = _validated_paths(f)
    return None if paths is None else [where[k] for k in paths if k in where]


def _table_file(src: str | None) -> Path | None:
    """The table a run's training data `src` (config.yaml's) names: the file itself, or the manifest.csv of the
    folder given; None for an image folder (only a table carries source_path, fold and split columns)."""
    if not src:
        return None
    path = Path(src) if Path(src).is_file() else Path(src) / mf.MANIFEST_NAME
    return path if path.is_file() else None


def _training_table(src: str | None, df: pd.DataFrame | None = None, tables: dict | None = None
                    ) -> pd.DataFrame | None:
    """The run's training table `src` (_table_file) as read: df itself where predict read df from that very file
    (predict --data on the run's own splits.csv: a large table is not read twice, nor its warnings said twice),
    else read here, once per check where the caller keeps `tables` (the tables read so far, by file: an ensemble's
    members trained on one splits.csv). None for an image folder, or a table that cannot be read here."""
    path = _table_file(src)
    if path is None:
        return None
    path = path.resolve()
    if df is not None and (read := mf.manifest_read(df)) is not None and read.resolve() == path:
        return df
    if tables is not None and path in tables:
        return tables[path]
    try:
        table = mf.load(src, scan=False, announce=False, require_found=False)
    except (UserError, OSError):
        table = None
    if tables is not None:
        tables[path] = table
    return table


def _trained_by_table(run: Path, df: pd.DataFrame, where: dict[str, int], folds: set[int],
                      src: str | None, view: FolderView | None = None, tables: dict | None = None
                      ) -> np.ndarray | None:
    """Rows of df that are images `run` trained on, or their originals, by the training table its config.yaml
    names (`src`, the member's Member.recorded_config: read once): the table's training rows themselves (df another
    split of the same images: its test rows are not the run's), and the originals preprocess's copies were made
    from (their `source_path`: --eval on data/raw after preprocess -> split -> train). The training table's rows are
    told apart by train's rules: a single run trained on every kept row but its validation and test rows; a fold on
    the table's other folds (train.data.fold_training_rows); a single run's image folder by the paths under it
    (_trained_in_folder, through `view`, the read's look at df's folder). The table is df itself where predict read
    that file, else read once per check (_training_table, `tables`). None when that table cannot be read here or
    names none of the run's validation images."""
    trained = np.zeros(len(df), bool)
    if _table_file(src) is None:    # only a table can carry source_path: an image folder is not read again
        return (_trained_in_folder(run, src, where, len(df), view) if src and Path(src).is_dir() and not folds
                else None)
    table = _training_table(src, df, tables)
    if table is None:
        return None
    paths = [str(p) for p in mf.image_paths(table)]
    at = {p: i for i, p in enumerate(paths)}
    validated = np.zeros(len(table), bool)
    for f in validation_files(run):
        validated[_named_rows(f, at) or []] = True
    if not validated.any():
        return None
    if folds and "fold" in table.columns:         # train's own rule for the folds of a split table
        from imgcls.train.data import fold_training_rows
        took = np.zeros(len(table), bool)
        for k in folds:
            took |= fold_training_rows(table, k)
    elif folds:
        took = validated if len(folds) > 1 else np.zeros(len(table), bool)
    else:
        split = split_values(table)
        took = mf.kept(table) & ~validated & ((split != "test").to_numpy() if split is not None else True)
    sources = (mf.text_values(table["source_path"]).to_numpy() if "source_path" in table.columns
               else np.full(len(table), "", object))
    for i in np.flatnonzero(took):
        for key in (paths[i], sources[i]):
            if key in where:
                trained[where[key]] = True
    return trained


def _trained_in_folder(run: Path, folder: str, where: dict[str, int], n: int,
                       view: FolderView | None = None) -> np.ndarray | None:
    """A single run trained on an image folder trained on every image under it but those its val_predictions.csv
    names and, in the split-folder layout, those under its test folder (root/test/...: train reads the `split`
    column from the folders and never trains on test rows): the rows of df (`where`: image path -> row) that are
    such images. Told by the paths alone: the folder is not read again (its warnings would repeat). None when the
    run's validation images do not lie under the folder (its records are not of it). `view`: the read's look at
    df's folder (predict's): where that is the folder (predict on the run's own training folder), its split folders
    are the read's, the folder not listed again."""
    from imgcls.layouts import split_folders
    same = view is not None and view.root.resolve() == Path(folder).resolve()
    splits = view.splits if same else split_folders(Path(folder))
    base = os.path.join(os.path.abspath(folder), "")
    never = tuple(os.path.join(base, d, "") for d, part in splits.items() if part == "test")
    validated = set()
    for f in validation_files(run):
        validated |= {os.path.abspath(p) for p in _validated_paths(f) or []}
    if not any(v.startswith(base) for v in validated):
        return None
    trained = np.zeros(n, bool)
    for p, i in where.items():
        a = os.path.abspath(p)
        trained[i] = a.startswith(base) and a not in validated and not (never and a.startswith(never))
    return trained


def _honest_score(run: Path, kfold: bool) -> str:
    """The run's own honest score, for check_eval_not_leaked's line: a k-fold run's out-of-fold macro-F1
    (oof_score.json), a single run's validation macro-F1 (of its val_predictions.csv, as `imgcls runs` shows it)."""
    if kfold:
        oof = run / OOF_SCORE
        try:
            sc = json.loads(oof.read_text())
            return f"its out-of-fold macro-F1, {sc['macro_f1']:.4f} over {sc['n_images']} images ({oof})"
        except (OSError, ValueError, KeyError, TypeError):
            return f"its out-of-fold score ({run}/{VAL_PREDICTIONS} once every fold is trained)"
    from imgcls.runs import read_run
    rec = read_run(run)
    if rec is None or pd.isna(rec.val_macro_f1) or not rec.n_val:
        return f"its validation score ({run}/{VAL_PREDICTIONS})"
    return (f"its validation macro-F1, {rec.val_macro_f1:.4f} over {rec.n_val} images ({run}/{VAL_PREDICTIONS}; "
            f"{RUNS_TABLE} shows it)")


def _member_honest_score(run: Path, folds: list[int]) -> str:
    """_honest_score of what a member predicts with: one fold of a k-fold set (predict RUN/fold_1) has its own
    validation score, not the set's out-of-fold one (the set's planned folds: a fold_1 copied into a one-fold set
    makes it no other)."""
    one_fold = len(folds) == 1 and sum((d / VAL_PREDICTIONS).is_file() for d in set_fold_dirs(run)[0]) > 1
    return _honest_score(fold_dir(run, folds[0]), False) if one_fold else _honest_score(run, bool(folds))


def _ensemble_honest_score(spec: EnsembleSpec) -> str | None:
    """A saved ensemble's own honest score, for the leak lines: its macro-F1 on the rows every member held out
    (spec.yaml's scores, written by `imgcls ensemble`; the cross-fitted one where its weights were fitted on those
    rows). None for one member, or an ensemble with no score recorded (then each member's own score is named)."""
    sc = spec.scores or {}
    key = "ensemble_macro_f1_crossfit" if "ensemble_macro_f1_crossfit" in sc else "ensemble_macro_f1"
    if len(spec.members) < 2 or not isinstance(sc.get(key), (int, float)):
        return None
    from imgcls.runs import common_rows
    rows = common_rows([len(m.checkpoints) for m in spec.members])
    how = ", weights cross-fitted" if key.endswith("crossfit") else ""
    where = f" ({spec.path.parent / ENSEMBLE_SCORES_CSV})" if spec.path is not None else ""
    return (f"the ensemble's macro-F1 on its members' {rows} rows{how}, {sc[key]:.4f} over "
            f"{sc.get('common_val_images', '?')} images{where}")


def model_target(spec: EnsembleSpec) -> str:
    """The column the models' classes are values of (train --target's column, ModelMeta.target): --eval's truth.
    'label' for an ensemble --combine profile (its classes are the profile label), for members of different
    targets, and for every model trained on the label."""
    if spec.combine == "profile":
        return "label"
    from imgcls.train.checkpoint import read_meta
    targets = {read_meta(m.checkpoints[0]).target for m in spec.members}
    return targets.pop() if len(targets) == 1 else "label"


def recorded_truth_column(spec: EnsembleSpec, df: pd.DataFrame) -> str:
    """--eval's truth for label models on a table read unlabeled (no --label-col): the column the members' labels
    were read from where their runs record one (TrainConfig.labels_read_from: `train train.csv --target artist`,
    the label task) and df has it with values; '' where df has labels, no such column, or the members record
    none or different ones."""
    if spec.combine == "profile" or (mf.text_values(df["label"]) != "").any():
        return ""
    cols = {c for m in spec.members if (cfg := m.recorded_config) is not None and (c := cfg.labels_read_from)}
    col = cols.pop() if len(cols) == 1 else ""
    return col if col in df.columns and (mf.text_values(df[col]) != "").any() else ""


def product_truth(spec: EnsembleSpec, df: pd.DataFrame) -> pd.Series | None:
    """--eval's truth for models of a product decode (train --heads multi --head-columns other than the profile's
    mask,gender,age_band: classes '1_0'), which no column holds: the rows' head columns joined
    (ModelMeta.product_truth); None for every other model (model_target's column is the truth)."""
    if spec.combine == "profile":
        return None
    from imgcls.train.checkpoint import read_meta
    return read_meta(spec.members[0].checkpoints[0]).product_truth(df)


def check_eval_scorable(spec: EnsembleSpec, df: pd.DataFrame, rows: np.ndarray, part: str, target: str,
                        data) -> None:
    """--eval on rows none of which has a label the model knows (an unlabeled folder, DACON's test.csv, a CSV whose
    classes are in a column not read as the label, class folders named otherwise than its classes) has nothing to
    score: refused before the model runs, saying why (the column the model predicts, the columns with classes
    --label-col reads, the labels read against the model's classes) and what predict reads labels from (class
    folders named as its classes, or a CSV with path,label columns; a CSV or manifest with its --target column),
    rather than predicting everything and then saying so."""
    labels = mf.text_values(df["label"])
    if (rows & labels.isin(spec.classes).to_numpy()).any():
        return
    if target != "label":
        from imgcls.profile_names import PROFILE_HEADS
        predicts = (f" (it predicts the column '{target}', train --target {target}"
                    + ("" if target in df.columns else f", which {data} does not have") + ")")
        works = (f"data whose '{target}' column holds its classes (a CSV or a manifest"
                 + (", or the mask competition's profile folders" if target in PROFILE_HEADS else "") + ")")
    else:
        read = sorted(set(labels[rows & (labels != "").to_numpy()]))    # the scored rows' labels, none the model's
        hint = mf.label_column_hint(df)                                 # DACON's artist, read unlabeled
        kind = "class folders" if mf.layout_read(df) == "folder" else "labels"
        predicts = (f" (its {kind} {shown(read, 5)} are none of the model's classes)" if read
                    else f" ({data} was read unlabeled; {hint})" if hint else "")
        works = (f"class folders named as its classes ({shown(spec.classes, 5)}), or a CSV with path,label columns "
                 f"(--label-col names another label column)")
    raise UserError(f"--eval: the {'' if part == 'all' else part + ' '}rows of {data} have no labels the model "
                    f"knows{predicts}; nothing to score: predict without --eval, or give labelled data: {works}"
                    + keyword_of("evaluate"))


def check_template_not_labels(data, evaluate: bool, label_col: str | None) -> None:
    """A sample submission given as --data (submission.is_template_data) holds the placeholders of the column the
    submission fills (every row 'x' or '0'), not labels: --eval would score them (a made-up number), --label-col
    would name labels it has not (and act nowhere). Each refused before the test data is read, naming labelled
    data as the fix."""
    if not is_template_data(data) or not (evaluate or label_col):
        return
    labelled = "a CSV with path,label columns, or class folders named as the model's classes"
    if evaluate:
        raise UserError(f"--eval: {data} is a sample submission: its label column holds the placeholders the "
                        f"submission fills, not labels; nothing to score: predict without --eval (the submission in "
                        f"its ids and order), or give --eval labelled data: {labelled}" + keyword_of("evaluate"))
    raise UserError(f"--label-col {label_col}: {data} is a sample submission: its columns hold the placeholders the "
                    f"submission fills, not labels; drop --label-col, or give labelled data: {labelled}")


def check_eval_not_leaked(spec: EnsembleSpec, df: pd.DataFrame, rows: np.ndarray, part: str, data,
                          view: FolderView | None = None) -> None:
    """--eval on rows a member trained on would print a training score as if it were a validation one: the rows
    of its training folder, or of its splits.csv but the val / test ones (--eval-split all); for a k-fold member
    also the val rows of its own splits.csv (folds 1..K-1 trained on fold 0's). Refused before the model runs,
    pointing to the honest scores (the run's validation or out-of-fold score; rows it never trained on, such as
    the split's test rows). `view`: the read's look at the data's folder (trained_rows')."""
    labelled = mf.text_values(df["label"]).isin(spec.classes).to_numpy()
    scored = rows & labelled
    split = split_values(df)
    ensemble = _ensemble_honest_score(spec)
    tables = {}         # the members' training tables, each read once (df itself where it is one)
    for m in spec.running().members:
        trained, run, folds = trained_rows(m, df, view, tables)
        n = int((trained & scored).sum())
        if not n:
            continue
        honest = ensemble or _member_honest_score(run, folds)
        n_test = int((mf.kept(df) & labelled & (split == "test").to_numpy()).sum()) if split is not None else 0
        never = "no fold trained on" if folds else "it never trained on"
        own = None if n_test and part != "test" else _own_test_rows(spec, df, tables)
        alt = (f"--eval-split test scores the {n_test} test rows {never}" if n_test and part != "test"
               else f"the {own[1]} test rows of the table it trained on, which {never}, score: imgcls predict "
                    f"{sh(spec.path.parent if spec.path is not None else run)} --data {sh(own[0])} --eval "
                    f"--eval-split test" if own is not None
               else f"--eval on a labelled test set "
                    f"{'no member trained on' if _ensemble_folder(spec) is not None else never}"
               + _held_out_commands(run, folds, getattr(m.recorded_config, "src", None), df, tables, spec,
                                    getattr(m.recorded_config, "labels_read_from", "")))
        what = f"{n} of the {int(scored.sum())} labelled {'rows' if part == 'all' else part + ' rows'} of {data}"
        # its keyword beside the flag: the line ends with commands to type, which a note after them would join
        flag = "--eval" + keyword_of("evaluate")
        if not folds:
            raise UserError(f"{flag} would score {what} outside the validation and test rows of the run {run}: "
                            f"the data it trained on, a leaked score; the honest one is {honest}, or {alt}")
        who = f"fold {folds[0]} of" if len(folds) == 1 else "the folds of"
        raise UserError(f"{flag} would score {what} that {who} the k-fold run {run} trained on (each fold trains on "
                        f"the other folds' rows): a leaked score; the honest one is {honest}, or {alt}")


def say_trained_on(spec: EnsembleSpec, df: pd.DataFrame, data, view: FolderView | None = None) -> int:
    """predict without --eval on labelled data holding images a member trained on (its own training folder or
    table given as --data by mistake, DACON's train/ for test/): one warning before the model runs, naming the run
    and its honest score; the submission is made as asked. Such rows got the hint that --eval scores them, which
    check_eval_not_leaked then refused. Returns how many rows a member trained on (0: the hint stands). `view`: the
    read's look at the data's folder (trained_rows'). Unlabelled data is looked at too (DACON's flat train/ or its
    train.csv read without --label-col, given for test/ / test.csv): a submission of training images, said; a run
    whose records are not readable here is passed over there (a test set's prediction does not need them)."""
    labelled = mf.text_values(df["label"]).isin(spec.classes).to_numpy()
    rows = labelled if labelled.any() else np.asarray(mf.kept(df), bool)
    seen = np.zeros(len(df), bool)
    runs = []
    tables = {}         # the members' training tables, each read once (df itself where it is one)
    for m in spec.running().members:
        try:
            trained, run, folds = trained_rows(m, df, view, tables)
        except UserError:
            if labelled.any():
                raise
            continue
        if run is not None and (trained & rows).any():
            seen |= trained & rows
            runs.append((run, folds))
    if not runs:
        return 0
    n = int(seen.sum())
    who = " and ".join(str(r) for r, _ in runs)
    honest = (_ensemble_honest_score(spec) or
              (_member_honest_score(*runs[0]) if len(runs) == 1 else f"in {RUNS_TABLE}"))
    their = "its" if len(runs) == 1 else "their"
    what, refused = (("labelled images", ", and --eval refuses them") if labelled.any() else
                     ("images", " and no submission (--data names the test images)"))
    warn(f"{n} of the {int(rows.sum())} {what} of {data} are images {who} trained on ({their} "
         f"training data, not a test set): their predictions are no test score{refused}; the honest "
         f"score is {honest}")
    return n


def _own_test_rows(spec: EnsembleSpec, df: pd.DataFrame, tables: dict | None = None) -> tuple[str, int] | None:
    """(the table, its test rows): where every member trained on one table (config.yaml's data: a splits.csv)
    with labelled test rows, and --data is not that table, those rows are an honest score no member trained on
    (train never uses a split's test rows, nor does a fold), one predict command away: check_eval_not_leaked names
    it rather than a new split and training. None otherwise."""
    srcs = {getattr(m.recorded_config, "src", None) for m in spec.running().members}
    src = srcs.pop() if len(srcs) == 1 else None
    path = _table_file(src) if src else None
    if path is None or ((read := mf.manifest_read(df)) is not None and read.resolve() == path.resolve()):
        return None
    table = _training_table(src, df, tables)
    if table is None or "split" not in table.columns:
        return None
    target = model_target(spec)
    labels = mf.text_values(table[target if target in table.columns else "label"])
    n = int((mf.kept(table) & split_rows(table, "test") & labels.isin(spec.classes).to_numpy()).sum())
    return (src, n) if n else None


def _held_out_commands(run: Path, folds: list[int], src: str | None, df: pd.DataFrame | None = None,
                       tables: dict | None = None, spec: EnsembleSpec | None = None, label_col: str = "") -> str:
    """check_eval_not_leaked's way to a test score of the run's kind, as commands that work typed: a split of its
    training data with test rows made BEFORE training (a split made after it has test rows the run trained on), the
    run's options trained again on it (--config), and --eval on its test rows. A k-fold run's split has as many
    folds as it trained (_fold_count); where k-fold members trained different counts, the most, said. `src`: its
    training data (config.yaml's, the member's recorded_config), whose table is df where predict read that one, or
    the one the leak check read (`tables`): not read again (_training_table). `spec`: the ensemble predicted with;
    a saved one of several members has every member trained again on that split and the ensemble built again of
    them (_rebuild_flags), then --eval on it: a score of the ensemble, not of the one member. `label_col`: the
    column the run's labels were read from (TrainConfig.labels_read_from: train train.csv --target artist), which
    the split reads them from with --label-col where its table records none read (a raw CSV: its split refused
    'no labels to stratify on'). '' where the run's config.yaml or data is not known here."""
    from imgcls.console import sh
    if not src or not Path(src).exists():
        return ""
    ens = _ensemble_folder(spec) if spec is not None else None
    # each run's folds (its members') and training data
    kinds = {run: (set(folds), src)}
    if ens is not None:
        kinds = {}
        for m in spec.members:
            r, f = member_run(m)
            kinds.setdefault(r, (set(), getattr(m.recorded_config, "src", None)))[0].update(f)
    runs = list(kinds)         # each distinct run once: the folds of one set are one run

    def named(n: int) -> tuple[Path, list[Path], Path | None]:
        """The n-th set of names: heldout.csv, RUN_heldout for each run (and ENSEMBLE_heldout), then ...2."""
        tail = "" if n == 1 else str(n)
        return (Path(src).parent / f"heldout{tail}.csv", [r.parent / f"{r.name}_heldout{tail}" for r in runs],
                ens.parent / f"{ens.name}_heldout{tail}" if ens is not None else None)

    def score(held: Path) -> str:
        return f"imgcls predict {sh(held)} --data {sh(table)} --eval --eval-split test"
    # the first free set: a run is never trained over, an ensemble never built over, nor a table split over
    # (another run's training table); a set these commands made (runs trained on the table, the ensemble built of
    # them) is named with the steps left
    n = 1
    while True:
        table, agains, ens_again = named(n)
        made = [a for a in agains if a.exists()]
        built = ens_again is not None and ens_again.exists()
        if table.is_file() and made and all(_trained_on(a, table) for a in made) \
                and (not built or _built_of(ens_again, agains)):
            break                       # these commands were followed already, all or in part
        if not (table.exists() or made or built):
            break
        n += 1
    steps = [f"imgcls train {sh(table)} --config {sh(r / RUN_CONFIG)} --out {sh(r.parent)} --name {a.name}"
             for r, a in zip(runs, agains) if not a.exists()]
    if ens_again is not None and not built:
        steps.append(f"imgcls ensemble {' '.join(sh(a) for a in agains)} {_rebuild_flags(spec)}--out {sh(ens_again)}")
    last = ens_again or agains[0]
    if made:
        done = (f"{last} was trained on {table}" if ens_again is None else
                f"{last} was built of runs trained on {table}" if built else
                f"{shown(made)} {'was' if len(made) == 1 else 'were'} trained on {table}")
        return f": {done}, a split made first: {''.join(c + ', ' for c in steps)}{'then ' if steps else ''}" \
               f"{score(last)}"
    # the fold count of the split: its k-fold members' (read only here: the steps left above need none)
    counts = {r: _fold_count(r, f, s, df, tables) for r, (f, s) in kinds.items() if f}
    k = f"--folds {max(counts.values())} " if counts else ""
    # the split the run trained on, made again as it was (its summary's settings: --no-near-dup, --seed, ...)
    from imgcls.options import recorded_flags
    from imgcls.outputs import read_yaml, split_outputs
    from imgcls.split.config import SPLIT_DEFINITION, SplitConfig
    made_as = read_yaml(split_outputs(Path(src))["summary"]).get("config")
    again_as = "".join(f"{sh(w)} " for w in recorded_flags(SplitConfig, made_as if isinstance(made_as, dict) else {},
                                                             SPLIT_DEFINITION))
    how = ("it trained on, so split first and train again" if ens_again is None else
           "its members trained on, so split first, train every member again on it and build the ensemble again "
           "of them")
    if len(set(counts.values())) > 1:
        had = ", ".join(f"{r.name} {n}" for r, n in counts.items())
        how += (f" (its k-fold members had different fold counts, {had}: a split has one, so each trains again "
                f"with {max(counts.values())} folds)")
    if label_col and not mf.recorded_label_col(src):     # a table whose labels were read from it records it
        again_as = f"--label-col {sh(label_col)} {again_as}"
    return (f": a split made after training has test rows {how}: imgcls split {sh(src)} {k}{again_as}--test 0.2 "
            f"--out {sh(table)}, {', '.join(steps)}, then {score(last)}")


def _ensemble_folder(spec: EnsembleSpec) -> Path | None:
    """The folder of a saved ensemble of several runs (member_run: the folds of one k-fold set are one), whose leak
    refusal trains them all again and builds it again (_held_out_commands); None for a run, or an ensemble of one
    run's folds (that set trained again is the ensemble of its folds)."""
    several = len({member_run(m)[0] for m in spec.members}) > 1
    return spec.path.parent if spec.path is not None and several else None


def _fold_count(run: Path, folds: set[int], src: str | None, df: pd.DataFrame | None = None,
                tables: dict | None = None) -> int:
    """How many folds the k-fold set `run` trained (a split made for it again has as many): the folds of its
    training table (config.yaml's src, _training_table), else the set's planned folds (rundir.planned_folds: its
    oof_score.json / plan.json / typed --folds), else those of its `folds` seen (its members')."""
    from imgcls.split.config import fold_ids
    from imgcls.train.rundir import planned_folds
    read = _training_table(src, df, tables) if src else None
    have = fold_ids(read) if read is not None else []
    if len(have) > 1:
        return len(have)
    planned = planned_folds(run) or sorted(folds)
    return max(planned) + 1


def _rebuild_flags(spec: EnsembleSpec) -> str:
    """The `imgcls ensemble` options that build `spec` again of other runs, each followed by a space: its --combine
    and --method, and its weights where they were typed (relative, 1,1,3,1); fitted ones are fitted again on the new
    runs' validation rows (--method weighted / hard's auto) by the metric they were fitted by (--weight-metric where
    not the method's default), equal ones are --method soft's. Members that are folds of one k-fold set are one run
    built again (member_run): their weights summed (a soft vote's too, typed then: the set of 2 folds beside run A
    weighs 2,1, not the equal 1,1)."""
    from imgcls.console import sh
    from imgcls.ensemble.config import EnsembleConfig, weight_metric
    from imgcls.options import recorded_flags
    values = {"combine": spec.combine, "method": spec.method}
    summed = {}
    for m, x in zip(spec.members, spec.weights):
        run = member_run(m)[0]
        summed[run] = summed.get(run, 0) + x
    w = list(summed.values())
    unequal = spec.method != "soft" or len(set(w)) > 1
    if unequal and not (spec.scores or {}).get("weights_fitted_on_scored_rows") and max(w) > 0:
        low = min(x for x in w if x > 0)
        values["weights"] = ",".join(f"{x / low:.6g}" for x in w)
        # a soft vote's unequal sums are typed weights; a hard vote's folds merged into their set (one member now,
        # its probabilities averaged) would outvote the rest with their summed votes: weighted, the set's share kept
        merged = len(summed) < len(spec.members)
        values["method"] = "weighted" if spec.method == "soft" or (merged and spec.method == "hard") else spec.method
    elif spec.weight_metric is not None and spec.weight_metric != weight_metric(spec.method):
        values["metric"] = spec.weight_metric
    return "".join(f"{sh(x)} " for x in recorded_flags(EnsembleConfig, values,
                                                       ("combine", "method", "weights", "metric")))


def _built_of(folder: Path, runs: list[Path]) -> bool:
    """Whether the ensemble folder's spec.yaml is one of exactly `runs`."""
    from imgcls.ensemble.config import read_spec_doc
    try:
        doc = read_spec_doc(folder / SPEC_NAME) if (folder / SPEC_NAME).is_file() else {}
    except UserError:
        return False
    members = doc.get("members") if isinstance(doc, dict) else None
    if not isinstance(members, list) or not all(isinstance(d, dict) and isinstance(d.get("run"), str)
                                                for d in members):
        return False
    return sorted((folder / d["run"]).resolve() for d in members) == sorted(r.resolve() for r in runs)


def _trained_on(run: Path, table: Path) -> bool:
    """Whether the run folder's config.yaml trained on table."""
    try:
        src = TrainConfig.load(run / RUN_CONFIG).src if (run / RUN_CONFIG).is_file() else None
    except UserError:
        return False
    return bool(src) and Path(src).resolve() == table.resolve()


def weights_fitted_keys(spec: EnsembleSpec) -> set[str]:
    """The images the ensemble's --weights auto was fitted on (the keys of its oof_predictions.csv, the members'
    common validation rows): a score over them is optimistic, as the ensemble's own fitted one. Empty for a run, an
    ensemble whose weights were not fitted, or one whose file is gone or has no key column (nothing tells them: a
    score is not refused for it). Read before the model runs: a malformed file is rundir.read_run_csv's one line
    (a score it would leave unlabelled is no plain evaluation)."""
    oof = Path(spec.path).parent / ENSEMBLE_OOF_CSV if spec.path else None
    if oof is None or not (spec.scores or {}).get("weights_fitted_on_scored_rows") or not oof.is_file():
        return set()
    try:
        keys = read_run_csv(oof, ENSEMBLE_OOF, ENSEMBLE_FILE_FIX, usecols=["key"], dtype=str)["key"]
    except ValueError:          # no key column
        return set()
    return {str(Path(k)) for k in keys}


def weights_fitted_rows(keys: set[str], df: pd.DataFrame) -> np.ndarray:
    """The rows of df that are images the ensemble's weights were fitted on (`keys`: weights_fitted_keys')."""
    return np.array([str(p) in keys for p in mf.image_paths(df)], bool)


def _eval_scores(df: pd.DataFrame, probs: Probabilities, classes: Sequence[str], part: str = "all",
                 rows: np.ndarray | None = None, fitted: np.ndarray | None = None) -> dict | None:
    labels = mf.text_values(df["label"])
    cidx = {c: i for i, c in enumerate(classes)}
    known = labels.map(cidx)
    readable = np.array([not e for e in probs.errors])
    rows = np.ones(len(df), bool) if rows is None else rows
    ok = known.notna().to_numpy() & readable & rows
    if not ok.any():
        return None
    unknown = int(((labels != "") & known.isna() & rows).sum())
    if unknown:
        warn(f"{unknown} labelled image(s) have a class the model does not know; left out of --eval")
    from imgcls import metrics
    y = known[ok].astype(int).to_numpy()
    # what --eval left out is recorded with the score (the report says it beside the numbers)
    res = {"rows": part, "n_images": int(ok.sum()), "n_unknown_class": unknown,
           "n_unreadable": int((known.notna().to_numpy() & ~readable & rows).sum()),
           "n_weights_fitted": int((ok & fitted).sum()) if fitted is not None else 0,
           # the classes of the model no scored row has: each counts with F1 0 in the macro-F1 (said by _print_eval)
           "n_classes": len(classes),
           "classes_without_rows": [str(c) for c in metrics.classes_without_rows(y, classes)]}
    # one view (no --tta): no `tta` scores, which would be the plain ones again under a TTA score's name
    for name, p in {"plain": probs.plain, **({"tta": probs.tta} if probs.n_views > 1 else {})}.items():
        m = metrics.scores(y, p[ok].argmax(1), classes)
        res[name] = {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"]}
    return res


def run_predict(source: str | os.PathLike | EnsembleSpec | None = None, data: str | os.PathLike | None = None,
                out: str | os.PathLike | None = None, tta: str = PredictConfig.tta,
                tta_merge: str = PredictConfig.tta_merge, fmt: str | None = PredictConfig.fmt,
                sample_submission: str | os.PathLike | None = None, probs_format: str = PredictConfig.probs_format,
                evaluate: bool = PredictConfig.evaluate, device: str = PredictConfig.device,
                batch_size: int = PredictConfig.batch_size, workers: int = PredictConfig.workers,
                amp: bool | None = PredictConfig.amp, opts: mf.LayoutOptions | None = None,
                eval_split: str | None = PredictConfig.eval_split,
                max_pixels: int | None = PredictConfig.max_pixels, plots: bool = PredictConfig.plots) -> dict:
    """Predict and write `probs.parquet|csv`, `submission.csv`, `predict.json` under `out`; returns the summary.
    `evaluate`: score the labelled rows of `eval_split` (see eval_rows: the val rows of a splits.csv by default).
    `max_pixels` None: the members' recorded train --max-pixels (recorded_max_pixels). `source`: a run or ensemble
    folder, a checkpoint, a spec.yaml, or the EnsembleSpec build_ensemble returned (its spec.yaml)."""
    check_file_name_encoding()     # as every command: a non-ASCII name misread or left out
    check_arguments("run_predict", opts=(opts, mf.LayoutOptions),
                    source=(source, (*PATH, EnsembleSpec), "a path to a run or ensemble folder, a checkpoint or a "
                                                           "spec.yaml, or an EnsembleSpec"),
                    data=(data, PATH, "a path to the test data: a folder of images, a CSV or a manifest"),
                    sample_submission=(sample_submission, PATH, "a path to a CSV"),
                    out=(out, PATH, "a path to a folder"))
    if isinstance(source, EnsembleSpec):
        if source.path is None:
            raise TypeError("run_predict's source is an EnsembleSpec with no spec.yaml; pass the one build_ensemble "
                            "returns (or its spec.path)")
        source = source.path
    checked = PredictConfig(tta=tta, tta_merge=tta_merge, fmt=fmt, sample_submission=sample_submission,
                            probs_format=probs_format, evaluate=evaluate, eval_split=eval_split, batch_size=batch_size,
                            amp=amp, device=device, workers=workers, max_pixels=max_pixels, plots=plots)
    checked.validate()
    # the checked values: check stores a notebook's np.int64 / np.bool_ as the plain number or bool it is (torch's
    # DataLoader refuses an np.int64 batch_size)
    batch_size, workers, max_pixels = checked.batch_size, checked.workers, checked.max_pixels
    evaluate, amp, plots = checked.evaluate, checked.amp, checked.plots
    spec = locate_source(source)     # its classes (torch) once the test data is found
    if max_pixels is None:
        max_pixels = recorded_max_pixels(spec)
    tta_spec = parse_tta(tta)
    out = Path(out) if out else Path("outputs/predictions") / spec.name
    check_output_not_source(out, spec.folders())
    check_writable(out)
    refuse_other_output(out, "predict", among=True)
    from imgcls.device import check_device_present
    check_device_present(device)        # --device cuda without one: refused before the test data is read
    if data is None:
        from imgcls.pipeline import default_test_data
        data = default_test_data(source=source)
    # a sample submission as --data: the test images in its ids and order, its labels the placeholders it fills
    as_template = is_template_data(data)
    check_template_not_labels(data, evaluate, opts.label_col if opts else None)
    # the read's look at the test data's folder: asked again after it (the sample submission beside the images, the
    # split folders of a folder the run trained on), not listed again
    view = mf.source_view(Path(data), opts or mf.LayoutOptions())
    if sample_submission and Path(data).exists():   # a missing file said before the test images are scanned
        check_template_exists(sample_submission, data, view)
    # what was read is said once its files are known to be there: a CSV none of whose files exist is its refusal
    # alone, not first a read of "images in tst", a folder that does not exist
    df = read_test_data(data, opts, view, announce=False)
    if evaluate:    # its split column picks the scored rows: 'valid' is not read as a table without val rows
        from imgcls.split.config import check_split_values
        check_split_values(df, data)
    # test data none of whose images can be read is a mistake (wrong root, ids without extension): one line and
    # nothing written, never a submission of made-up labels; so is a table most of whose files are not there (a
    # wrong folder): said before the model is loaded
    unreadable = {"of": f" of --data {data}", "note": "; nothing written", "data_flag": "--data"}
    # --eval-split val|test asked for: the model runs on the rows it scores only (a split table's training rows are
    # most of it), and the submission and probabilities hold those rows; a --sample-submission needs every row
    only = evaluate and eval_split in ("val", "test") and not sample_submission
    part_rows = split_rows(df, eval_split) if only else None
    # the rows predicted: a splits.csv whose training images are gone and whose val rows are there is test data
    mf.require_most_found(df if part_rows is None else df[part_rows], **unreadable)
    mf.announce_read(df)
    say_unlisted_images(df)
    spec = with_classes(spec)
    target = model_target(spec)
    # the truth --eval scores is the column the model predicts, as train validated it; --label-col names it instead
    if target != "label" and not (opts and opts.label_col):
        df = df.assign(label=(mf.nfc_classes(df[target].astype("string").fillna("").astype(object))
                              if target in df.columns else ""))
    elif not (opts and opts.label_col) and (truth := product_truth(spec, df)) is not None:
        df = df.assign(label=truth)     # a product decode's classes ('1_0'): its heads' columns, as train scored
    elif not (opts and opts.label_col) and not as_template and (col := recorded_truth_column(spec, df)):
        info(f"{data} was read unlabeled: its column '{col}' is read as the labels, the column {spec.name} "
             f"trained on (train --target {col}); --label-col COLUMN reads another")
        df = df.assign(label=mf.nfc_classes(df[col].astype("string").fillna("").astype(object)))
    if as_template:     # no truth: no --eval hint, no label column in the probabilities
        df = df.assign(label="")
    # the template read and matched to the test rows now: a missing file or other ids fail before the model runs
    # a --format given (typed, or named by a Python caller; id,label too) must name the template's columns
    # a sample submission as --data (no --format) is the template: its columns, ids and order
    # the CSV listing the images of a folder read as its image files (--layout unlabeled on eval/ with info.csv), of
    # the --format's columns: its ids and order are the competition's (folder_template)
    read_as_csv = mf.layout_read(df) == "csv"
    listing = None if sample_submission or as_template else folder_template(data, view, read_as_csv, fmt)
    template_file = sample_submission or (data if as_template and not fmt else None) or listing
    tpl_flag = (f"--sample-submission {sample_submission or listing}" if sample_submission or listing
                else f"--data {data}")
    try:
        template = match_template(template_file, df, fmt, data=data, view=view) if template_file else None
    except UserError as e:      # images the folder's CSV does not list: that CSV's rows, or another --format
        if listing is None:
            raise
        raise UserError(f"{e} (--format {fmt} fills {listing}, which lists the images of {data}: without --layout "
                        f"its rows are read; --format id,label writes every image by its path)") from None
    fmt = fmt or DEFAULT_FORMAT
    kind = template.kind if template is not None else resolve_format(fmt)[2]
    if kind == "index":         # class ids: from the competition's label, never one attribute or class names
        from imgcls.train.checkpoint import read_meta
        metas = [(m.name, read_meta(m.checkpoints[0])) for m in spec.members]
        targets = [] if spec.combine == "profile" else [(n, meta.target) for n, meta in metas]
        said = tpl_flag if template is not None else f"--format {fmt}"
        check_class_ids(said, kind, spec.classes, targets)
        # the members whose age bands the ids' age part comes from (a --combine profile mask member's are not)
        if note := age_bands_note(said, [(n, meta.age_bands) for n, meta in metas
                                         if meta.target in ("label", "age_band")]):
            warn(note)
    if template is not None:        # a per-class template, or labels spelled unlike the run's classes
        check_template_fits(template, spec.classes, tpl_flag)
    else:                           # an id on two rows of the submission: refused by the grader
        check_unique_ids(df, fmt, data)
    if listing is not None:
        info(f"{listing} lists the images of {data}: the submission fills it (its {template.id_col}s and "
             f"order, the competition's), as --sample-submission {listing} does")
    # a competition's test data has no labels: --eval scores labelled rows, not a submission's
    if (template is None and fmt == DEFAULT_FORMAT and not evaluate and not as_template
            and (beside := template_beside(data, view) or listing_csv(data, view, read_as_csv)) is not None):
        info(f"{beside} lies beside the test data: --sample-submission {beside} writes the submission with its "
             f"ids, columns and order (not used unless given; without it ids are the test rows' ids as read)")
    part, rows = eval_rows(df, eval_split) if evaluate else ("all", None)
    if evaluate:
        check_eval_scorable(spec, df, rows, part, target, data)
        check_eval_not_leaked(spec, df, rows, part, data, view)
        fitted_keys = weights_fitted_keys(spec)     # read before the model runs: a malformed file is one line
    seen = 0 if evaluate else say_trained_on(spec, df, data, view)
    check_output_location(out, *mf.roots(df), *([data] if data and Path(data).is_dir() else []),
                          images=mf.image_paths(df), owns=False)
    # an earlier prediction here: its files are replaced, its probabilities in the other --probs-format too (its
    # own earlier files, outputs' one rule); without one, a probs.csv beside is a file of the user's, never touched
    # (what a run stopped among the renames of its set placed is its own too: `placing`)
    placing = out / "predict"
    other = own_earlier_files(out, "predict", [out / f"probs.{f}" for f in PROBS_FORMATS if f != probs_format],
                              placing)
    probs_files = [f"probs.{probs_format}", *(f.name for f in other)]
    from imgcls.figure_files import confusion_png_names
    check_not_replacing([out / n for n in (SUBMISSION_CSV, *probs_files, PREDICT_SUMMARY, REPORT_HTML)],
                        [*mf.read_table(df), sample_submission])
    # its files over a user's own of those names in a folder no predict wrote (their submission.csv, report.html)
    replaced = refuse_users_files(out, "predict", [out / n for n in (SUBMISSION_CSV, *probs_files, PREDICT_SUMMARY,
                                                                     REPORT_HTML,
                                                                     *(confusion_png_names() if evaluate and plots
                                                                       else ()))], placing=placing)
    if only:
        df = df[rows].reset_index(drop=True)
        rows = np.ones(len(df), bool)
    given = df          # as read: what warn_preprocess_differs compares with the members' preprocessing
    df = predict_dropped_faces(df)
    pre_err = mf.text_values(df["error"]).tolist() if "error" in df.columns else None
    # none of the images readable (a manifest that says so, files that are no images) fails before the model runs
    # (and before predict says what it predicts with)
    require_one_readable(df, pre_err, max_pixels, **unreadable)
    if replaced:    # the default folder is named by the run alone: say what goes (its own earlier files), up front
        info(replacing_line(out, "an earlier prediction"))
    classes = list(spec.classes)
    running = spec.running().members
    scheme, shares = None, None
    if spec.combine == "profile":       # a member's weight is its share within its attribute(s), as ensemble shows
        from imgcls.ensemble.profile import member_meta, member_shares, profile_scheme, share_text
        metas = [member_meta(m) for m in spec.members]
        scheme = profile_scheme(metas, [m.name for m in spec.members])
        shares = member_shares(metas, spec.weights, scheme)
    weights = [share_text(x) for x in shares] if shares else [f"{m.weight:.2f}" for m in spec.members]
    members = ", ".join(f"{m.name} x{len(m.checkpoints)}" + (f" (w={w})" if spec.method != "soft" else "")
                        + ("" if any(m is r for r in running) else ": not run, it adds nothing")
                        for m, w in zip(spec.members, weights))
    # how members combine, said only where there are several: a run (its folds are averaged) has no vote
    how = (f"the product of the attributes' probabilities ({spec.method} within each); " if spec.combine == "profile"
           else f"method {spec.method}; " if len(spec.members) > 1 else "")
    info(f"predicting with {spec.name}: {members}; {how}TTA {tta_spec.text} "
         f"({tta_spec.n_views} view(s), merge {tta_merge})")
    warn_mirrors_unseen(spec, tta_spec)
    warn_preprocess_differs(spec, given, data)
    warn_decode_differs(spec)
    say_letterbox(spec, given)
    say_crop_from(spec)
    probs = predict_members(mf.image_paths(df), spec, tta_spec, tta_merge, device, batch_size, workers, amp,
                            errors=pre_err, max_pixels=max_pixels, scheme=scheme)
    mf.require_readable(df.assign(error=probs.errors), **unreadable)
    bad = [i for i, e in enumerate(probs.errors) if e]
    pred = np.nan_to_num(probs.tta, nan=-1.0).argmax(1)
    probs_path = out / f"probs.{probs_format}"
    fallback = None
    if bad:
        good = np.setdiff1d(np.arange(len(df)), bad)
        fallback = classes[int(np.bincount(pred[good], minlength=len(classes)).argmax())]
        pred[bad] = classes.index(fallback)
        mf.say_unreadable(df.assign(error=probs.errors),
                          fate=f"given the most frequent prediction ({fallback}) in the submission so it stays "
                               f"complete, with empty probabilities",
                          listed_in=f"predict.json and the error column of {probs_path}")

    # each row's id as the submission writes it (a template's spelling, --format dacon's name without extension), so
    # the probabilities join the submission on it
    ids = template.row_ids() if template is not None else submission_ids(df, fmt)[0].tolist()
    table = pd.DataFrame({"id": ids, "path": df["path"].astype(str)})
    if (mf.text_values(df["label"]) != "").any():
        table["label"] = df["label"].astype(str)
    table["pred"] = [classes[i] for i in pred]
    table["error"] = probs.errors
    table = pd.concat([table, pd.DataFrame(probs.tta.astype(np.float32), columns=[f"p_{c}" for c in classes])],
                      axis=1)
    sub = template.fill(pred, classes) if template is not None else build_submission(df, pred, classes, fmt)
    sub_path = out / SUBMISSION_CSV

    n = len(df)
    k = len(spec.members[0].checkpoints)
    method = spec.method if spec.path else ("one run" + (f": the mean of its {k} folds' probabilities" if k > 1
                                                         else ""))      # a run, not an ensemble's vote
    # paths absolute (os.path.abspath: symlinks kept as named), as train's config.yaml records them: a relative one
    # meant the folder predict ran from, nothing to a reader of OUT/predict.json elsewhere
    summary = {"source": os.path.abspath(spec.path or spec.members[0].run), "name": spec.name, "method": method,
               "combine": spec.combine,
               "members": [{"name": m.name, "weight": m.weight,
                            **({"share": {a: round(v, 6) for a, v in shares[k].items()}} if shares else {}),
                            "checkpoints": [os.path.abspath(c) for c in m.checkpoints],
                            "run": any(m is r for r in running)}        # weight 0 under a vote: not run
                           for k, m in enumerate(spec.members)],
               "data": os.path.abspath(data), "data_rows": part if only else "all", "n_images": n,
               "n_unreadable": len(bad),
               "unreadable": {"pred": fallback, "paths": [str(p) for p in mf.image_paths(df.iloc[bad])]},
               "tta": tta_spec.text, "tta_views": tta_spec.n_views, "tta_merge": tta_merge,
               "device": probs.device, "device_option": device, "seconds": round(probs.seconds, 3),
               "images_per_s": round(n / probs.seconds, 2) if probs.seconds > 0 else None,
               "probs": os.path.abspath(probs_path), "submission": os.path.abspath(sub_path)}
    if evaluate:
        scores = _eval_scores(df, probs, classes, part, rows, weights_fitted_rows(fitted_keys, df))
        if scores is None:      # labelled rows there are (check_eval_scorable), but none of them could be read
            warn(f"--eval: none of the labelled {'' if part == 'all' else part + ' '}rows could be read; nothing to "
                 f"score")
        else:
            summary["eval"] = scores
            _print_eval(scores, tta_spec)
    from imgcls.inference_report import write_predict_report
    from imgcls.ensemble.profile import member_meta
    from imgcls.profiles import prediction_meanings
    # the files are written as one set (outputs.output_set), then renamed into place; predict.json is its record:
    # the earlier one goes before the first rename and the new one comes after the last, after the earlier
    # prediction's probabilities in the other format and confusion PNGs went, so a predict.json never lies beside
    # another prediction's files. A stop while writing (Ctrl-C, an error) left new probabilities beside the earlier
    # submission; now the earlier set stays whole
    # a kill -9 of an earlier run left temporary files of these names (only ours: --out may be the user's folder),
    # swept by output_set while this run holds the folder (a predict writing there at once is not a killed one)
    temps = [SUBMISSION_CSV, *(f"probs.{f}" for f in PROBS_FORMATS), PREDICT_SUMMARY, REPORT_HTML,
             placing_journal(placing).name]
    def earlier() -> list[str]:
        """The earlier prediction's probabilities in the other formats and its --eval's confusion PNGs (this run's
        report draws its own, or none), its own only: looked for while this run holds --out (output_set), after a
        predict that wrote there meanwhile placed its set (looked for before, its probs.csv was not there yet)."""
        return [f.name for f in own_earlier_files(out, "predict", [
            *(out / f"probs.{f}" for f in PROBS_FORMATS if f != probs_format),
            *(out / n for n in confusion_png_names())], placing)]
    with output_set(out, "predict", earlier=earlier, temps=temps, record=PREDICT_SUMMARY) as written:
        write_table(table, written.stage / probs_path.name)
        # a template's format (layouts.csv_style: separator, line ending, quoting, BOM), else the test CSV's (a test.csv
        # of id;label, a sample submission as --data under --format): a checker may read the given file's format alone
        write_table(sub, written.stage / SUBMISSION_CSV,
                    **(template.style if template is not None else csv_read_style(df)))
        with status("writing the report"):        # its plots: matplotlib's import and drawing, seconds
            write_predict_report(written.stage, summary, table, classes, [m.run for m in spec.members],
                                 rows if summary.get("eval") else None, shares=weights if shares else None,
                                 meanings=prediction_meanings(classes, [member_meta(m) for m in spec.members]),
                                 plots=plots)
        write_json(written.beside(PREDICT_SUMMARY), summary)
    with interruption_leaves(all_placed(out)):      # the set is in place: a stop from here on leaves it whole
        # --eval on a split table scores one part of it; what the submission and probabilities hold is said
        held = (f": only the {part} rows of {data}, the ones --eval scored (without --eval-split every row is "
                f"predicted)" if only else
                f": every row of {data}, not only the {part} rows --eval scored" if evaluate and part != "all" else "")
        info(f"wrote {sub_path} ({plural(len(sub), 'row')}{held}), {probs_path} and {out / REPORT_HTML} in "
             f"{probs.seconds:.1f} s ({summary['images_per_s']} images/s)")
        if not evaluate:
            known = int((mf.text_values(df["label"]).isin(classes).to_numpy()
                         & np.array([not e for e in probs.errors], bool)).sum())     # readable, as --eval counts
            if known and not seen:  # a labelled hold-out predicted without its score: say how to get it
                info(f"the data has {known} image(s) labelled with the model's classes: "
                     f"--eval{keyword_of('evaluate')} scores them (macro-F1 / accuracy with and without TTA)")
    return summary


def _print_eval(scores: dict, tta: TTASpec) -> None:
    from rich.table import Table
    part = scores.get("rows", "all")
    what = "labelled images" if part == "all" else f"labelled {part} rows"
    if part != "all":     # said on its own line: a table's title wraps at the table's (narrow) width
        # (not advertising --eval-split all: on a run's own split it scores the rows the run trained on)
        info(f"--eval scores the {part} rows of the split column")
    title = f"--eval on {scores['n_images']} {what}"
    t = Table(title=title, min_width=len(title))      # the title on one line over a narrow table
    t.add_column("")
    t.add_column("no TTA", justify="right")
    with_tta = tta.n_views > 1                # one view: the TTA column would repeat the plain one
    if with_tta:
        t.add_column(f"TTA {tta.text} ({tta.n_views} views)", justify="right")
    for k in ("macro_f1", "accuracy"):
        t.add_row(k, f"{scores['plain'][k]:.4f}", *([f"{scores['tta'][k]:.4f}"] if with_tta else []))
    print_table(t)
    from imgcls import metrics
    missing = metrics.missing_rows_note(scores.get("classes_without_rows") or [], scores.get("n_classes", 0),
                                        "labelled")
    if missing:
        info(f"--eval: {missing}")
    if scores.get("n_weights_fitted"):      # the score's label, on its own line: a caption wraps narrow
        from imgcls.inference_report import fitted_note
        info(f"--eval: {fitted_note(scores)}")
