"""The names in a train run's folder: a k-fold set's fold_<k> folders. Only the standard library, so
imgcls.outputs (which tells a run folder by them, and which imgcls.train.rundir imports) and rundir (the run folder's
owner) read one spelling, as does every reader of a run (runs, predict, export, ensemble, tune)."""
from __future__ import annotations

import os
import re
from pathlib import Path

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


def fold_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """The fold folders of the k-fold set in `run_dir` (folders named fold_<k>), by fold number: fold_10 after
    fold_9, not after fold_1 as their names sort. [] for a single run."""
    return sorted((p for p in Path(run_dir).glob("fold_*") if is_fold_dir(p) and p.is_dir()), key=fold_number)
