"""The names in a train run's folder: its files and a k-fold set's fold_<k> folders. Only the standard library, so
imgcls.outputs (which tells a run folder by them, and which imgcls.train.rundir imports) and rundir (the run folder's
owner) read one spelling, as does every reader of a run (runs, predict, export, ensemble, tune)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

# the files a run writes into its folder (a k-fold set's folds each into their own fold_<k>), the names every reader
# reads them by; the list of them all that a run would write over (RUN_FILES, with the figures) is
# imgcls.train.rundir's, and its report.html is every step's report: imgcls.outputs.REPORT_HTML
RUN_CONFIG = "config.yaml"              # the run's options (TrainConfig.save): a k-fold set's, and each fold's
METRICS_CSV = "metrics.csv"             # its per-epoch metrics
TRAIN_LOG = "train.log"
BEST_PT = "best.pt"                     # its checkpoints: the best epoch's, the last one's
LAST_PT = "last.pt"
PER_CLASS_CSV = "per_class.csv"         # the best epoch's per-class scores
VAL_PREDICTIONS = "val_predictions.csv"     # the validation predictions (a k-fold set's: out-of-fold)
IMAGE_CACHE = "cache.npy"               # the decoded images (--cache disk)
# train's own records beside them, read by imgcls.train.rundir
LAST_STATE = "last_state.json"  # beside each last.pt: its epoch and finished flag, readable without torch
RUN_PLAN = "plan.json"          # every run's classes (and a k-fold set's fold numbers): train writes it as it starts
FOLDS_PLANNED = "folds.json"    # what a k-fold set trained before RUN_PLAN wrote instead (its folds and classes): read
OOF_SCORE = "oof_score.json"    # a k-fold set's out-of-fold score: train writes it after the set's last fold
# the start of train.log's last line (after its time) where an exception stopped the run: a crash, not a refusal nor
# Ctrl-C; the folder stays, and `imgcls runs` lists the run as crashed (imgcls.runs.run_state)
CRASH_LINE = "stopped by an exception"
# the start of that line where a refusal (a UserError) stopped a new run before its first epoch trained and its folder
# stayed (its MLflow or W&B run names it, or --exist-ok gave it: rundir.unclaim_run_dir); `imgcls runs` lists the
# run as refused
REFUSED_LINE = "refused before its first epoch trained"
# what a resume refused before it trained adds to the line of either kind it found last, restated as train.log's last
# line again: the run reads as it did before that resume (crashed, refused: imgcls.train.run._run_train)
RESUME_REFUSED = "; resumed since, refused before it trained"

class Metric(NamedTuple):
    """One --metric: what reads it, names it and compares by it."""
    column: str         # its metrics.csv column (metric_column: the column of a given table)
    direction: str      # "maximize" / "minimize": imgcls.metrics.better compares by it
    label: str          # its name for people: 'val loss'
    title: str          # under the epoch table's 6-wide `best` title (train.progress.EpochTable); '': the default
                        # metric, named no more there than in train's lines


# train's and tune's --metric: the validation value of each epoch (a metrics.csv column) that picks a run's best epoch
# (best.pt, val_predictions.csv, per_class.csv, early stop, --scheduler plateau) and is tune's objective, the better
# direction, and its names for people. {name: Metric}
BEST_BY = {"macro_f1": Metric("val_macro_f1", "maximize", "val macro-F1", ""),
           "accuracy": Metric("val_acc", "maximize", "val accuracy", "acc"),
           "loss": Metric("val_loss", "minimize", "val loss", "loss")}


def run_metric(recorded) -> str:
    """The --metric that picked a run's best epoch, from its config.yaml's `metric`: macro_f1 (train's default)
    where a run of an older imgcls records none, or a value that is no BEST_BY key."""
    return recorded if recorded in BEST_BY else "macro_f1"


def metric_column(metric: str, columns) -> str:
    """--metric's column in a metrics.csv table of these `columns` (BEST_BY's): macro_f1's is val_f1 in one that an
    older imgcls wrote, which has no val_macro_f1."""
    if metric == "macro_f1" and "val_macro_f1" not in columns:
        return "val_f1"
    return BEST_BY[metric].column


# a k-fold set's fold folder in its run folder, RUN/fold_<k> (train names it, every reader of a set reads it back)
FOLD_DIR = re.compile(r"fold_(\d+)")


def fold_dir(run_dir: str | os.PathLike, k: int) -> Path:
    """Fold `k`'s folder in the k-fold set's folder `run_dir` (fold_3)."""
    return Path(run_dir) / f"fold_{k}"


def is_fold_dir(path: str | os.PathLike) -> bool:
    """Whether `path` is named as a k-fold set's fold folder (fold_<k>: fold_x, fold_1_old are not); by its name
    alone, nothing is read."""
    return FOLD_DIR.fullmatch(Path(path).name) is not None


def fold_number(path: str | os.PathLike) -> int | None:
    """k of a fold folder fold_<k>; None for any other name."""
    m = FOLD_DIR.fullmatch(Path(path).name)
    return int(m.group(1)) if m else None


def fold_set(path: str | os.PathLike) -> Path | None:
    """The k-fold set folder a fold folder belongs to (its parent, whose RUN_CONFIG records --folds), None for any
    other folder (a run named fold_1 in a folder of runs has no config.yaml above it; one trained into a plain run's
    folder has one recording no --folds). `path` as given: `.` from inside a fold is resolved by the caller."""
    path = Path(path)
    return path.parent if is_fold_dir(path) and records_folds(path.parent / RUN_CONFIG) else None


# a config.yaml's --folds line as train writes it (`folds: all`, `folds: 0,2`), not `folds: null`
_FOLDS_LINE = re.compile(r"^folds:[ \t]*(?!null[ \t]*$|~[ \t]*$|[ \t]*$)\S", re.MULTILINE)


def records_folds(config: Path) -> bool:
    """Whether a run's config.yaml records --folds (the run is a k-fold set): read as text, this module taking only
    the standard library; False where it is missing or unreadable."""
    try:
        return _FOLDS_LINE.search(config.read_text(encoding="utf-8", errors="replace")) is not None
    except OSError:
        return False


def fold_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """The fold folders of the k-fold set in `run_dir` (folders named fold_<k>), by fold number: fold_10 after
    fold_9, not after fold_1 as their names sort. [] for a single run, and for any folder whose RUN_CONFIG records
    no --folds (fold_set's rule): a run named fold_0 trained into a plain run's folder is no fold of it."""
    if not records_folds(Path(run_dir) / RUN_CONFIG):
        return []
    return sorted((p for p in Path(run_dir).glob("fold_*") if is_fold_dir(p) and p.is_dir()), key=fold_number)


def names_folder(recorded, folder: Path, *reached: Path) -> bool:
    """Whether an `out` a run recorded names `folder` (resolved): train records --out as typed, a relative one
    (its default, outputs/runs) from the working folder it ran in, so from elsewhere it names the folder whose path
    ends with it (`cd elsewhere; train --resume /proj/outputs/runs/D` moved nothing), or `reached` (the folder as
    the user reached it: a symlink to a larger disk is no move); `.` records no folder, so nothing contradicts."""
    if recorded is None:
        return False
    rel = Path(os.path.normpath(str(recorded))).parts
    if Path(str(recorded)).resolve() == folder:
        return True
    return not Path(str(recorded)).is_absolute() and ".." not in rel and (
        not rel or any(p.parts[-len(rel):] == rel for p in (folder, *reached)))
