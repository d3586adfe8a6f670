"""The one owner of classification scores: macro-F1 over ALL classes of the task, accuracy, per-class precision /
recall / F1 / support and the confusion matrix (raw and row-normalised), on sklearn. Used by train (metrics.csv, the
out-of-fold score, per_class.csv), ensemble and predict, so one set of predictions gets one number everywhere.

Why "all classes of the task": a class that never occurs in a fold's validation rows (and is never predicted there)
still counts, with F1 0. Averaging only over the classes present scores the same predictions higher
(0.6667 instead of 0.4444 in tests/test_metrics.py) and made an ensemble member's "val macro-F1" disagree with its
own run.

y_true / y_pred are either class indices (0..k-1 into `classes`) or class names; both arrays the same kind.

    from imgcls.metrics import scores, per_class
    scores([0, 1, 1], [0, 1, 0], ["cat", "dog", "fox"])   # {'accuracy': ..., 'macro_f1': ..., 'n': 3, ...}
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from imgcls.figure_files import CONFUSION_STEM, confusion_png_names
from imgcls.options import shown
from imgcls.run_names import BEST_BY


def better(value: float, best: float | None, metric: str) -> bool:
    """Whether an epoch's `value` of --metric `metric` beats the best so far (None: no epoch yet, so it does). A value
    that is not finite (a diverged run's NaN loss) never does, and any finite value beats a non-finite best."""
    if best is None:
        return True
    if not np.isfinite(value):
        return False
    if not np.isfinite(best):
        return True
    return value < best if BEST_BY[metric].direction == "minimize" else value > best


def best_epoch_of(curve: pd.Series, metric: str) -> int | None:
    """The epoch (the index of `curve`: one value of --metric `metric` per epoch) train picked as best (`better`):
    the first of the best finite values; where none is finite (a diverged run's NaN loss every epoch), the first
    epoch, which no later one beat. None for an empty curve."""
    curve = pd.to_numeric(curve, errors="coerce")
    if not len(curve):
        return None
    finite = curve[np.isfinite(curve.to_numpy(dtype=float))]
    if finite.empty:
        return int(curve.index[0])
    return int(finite.idxmin() if BEST_BY[metric].direction == "minimize" else finite.idxmax())


def stale_epochs(curve, metric: str) -> int:
    """The epochs since the last of `curve` (one value of --metric `metric` per epoch, in order) that beat the best
    before it (`better`; 0 where the last one did): train's early-stop count (its train state's bad_epochs)."""
    best, stale = None, 0
    for value in pd.to_numeric(pd.Series(list(curve), dtype=object), errors="coerce").to_numpy(dtype=float):
        if better(value, best, metric):
            best, stale = value, 0
        else:
            stale += 1
    return stale


def early_stopped(curve, metric: str, patience: int) -> bool:
    """Whether train's `--early-stop patience` (0: off) stops a run after the last epoch of `curve` (stale_epochs'):
    `patience` epochs in a row, none better than the best before them. The one rule: train stops by it, and a run
    whose last.pt is gone is read by it as early-stopped or not (rundir.fold_state)."""
    return bool(patience) and stale_epochs(curve, metric) >= patience


def import_libraries() -> None:
    """Import scikit-learn's metrics (~1 s on a 2-core machine, most of it scikit-learn itself) now, e.g. while
    worker processes decode images; the functions below import them when first called."""
    import sklearn.metrics  # noqa: F401


def _labels(y_true, classes: Sequence) -> list:
    """sklearn's `labels=`: indices when the arrays hold indices, else the class names."""
    y = np.asarray(y_true)
    if y.dtype.kind in "iub":
        return list(range(len(classes)))
    return [str(c) for c in classes]


def _arrays(y_true, y_pred):
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    if yt.dtype.kind not in "iub" or yp.dtype.kind not in "iub":
        yt, yp = yt.astype(str), yp.astype(str)
    return yt, yp


def macro_f1(y_true, y_pred, classes: Sequence | int) -> float:
    """Macro-F1 over every class of the task (`classes`: the class list, or their count for index arrays).
    Index arrays are counted here (numpy), sklearn's f1_score's own formula 2 TP / (true + predicted), 0 where a
    class has neither, and mean: the same number, without its ~5 ms a call of checks (ensemble's weight search
    scores hundreds of candidate weights a fit, its cross-fitted score fits again per fold)."""
    classes = range(classes) if isinstance(classes, int) else classes
    yt, yp = _arrays(y_true, y_pred)
    if len(yt) == 0:
        return float("nan")
    if yt.dtype.kind in "iub" and yt.ndim == yp.ndim == 1 and len(yt) == len(yp) and len(classes):
        return _index_macro_f1(yt.astype(np.int64), yp.astype(np.int64), len(classes))
    from sklearn.metrics import f1_score
    return float(f1_score(yt, yp, labels=_labels(yt, classes), average="macro", zero_division=0))


def _index_macro_f1(yt: np.ndarray, yp: np.ndarray, n: int) -> float:
    """macro_f1 of class indices 0..n-1 (a value outside counts for no class, as sklearn's labels= leaves it)."""
    def per_class(v):
        return np.bincount(v[(v >= 0) & (v < n)], minlength=n).astype(np.float64)
    tp, true, pred = per_class(yt[yt == yp]), per_class(yt), per_class(yp)
    denom = true + pred
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(n), where=denom > 0)
    return float(np.mean(f1))


def classes_without_rows(y_true, classes: Sequence) -> list:
    """The classes of the task no row of `y_true` has (indices or names, as `_labels`): each counts in macro_f1
    with F1 0."""
    labels = _labels(y_true, classes)
    yt, _ = _arrays(y_true, y_true)
    have = set(yt.tolist())
    return [c for c, lab in zip(classes, labels) if lab not in have]


def without_rows_note(y_true, classes: Sequence, rows: str = "validation") -> str:
    """One line naming the classes with no row in `y_true` (the first 12) and how macro_f1 counts them; '' when
    every class has rows."""
    return missing_rows_note(classes_without_rows(y_true, classes), len(classes), rows)


def missing_rows_note(missing: Sequence, n_classes: int, rows: str = "validation", every_fold: bool = False,
                      of_folds: Sequence[int] = ()) -> str:
    """without_rows_note's line from the classes without rows already found (predict.json's record of --eval).
    `every_fold`: a k-fold set's classes no fold validates (split's fold -1), said once for the set rather than in
    each fold's line; `of_folds`: the folds of the set where it trains some of the table's (--folds 0,2), named
    instead of 'any fold' (another fold may validate the class)."""
    if not missing:
        return ""
    where = f" in folds {', '.join(map(str, of_folds))}" if of_folds else " in any fold"
    where, which = (where, "every fold's") if every_fold else ("", "the")
    return (f"{len(missing)} of {n_classes} classes have no {rows} rows{where} ({shown(list(missing), 12)}): each "
            f"counts in {which} macro-F1 with F1 0 (the mean is over every class of the task)")


def scores(y_true, y_pred, classes: Sequence | int) -> dict:
    """{'n', 'accuracy', 'macro_precision', 'macro_recall', 'macro_f1'} over every class of the task."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support
    classes = range(classes) if isinstance(classes, int) else classes
    yt, yp = _arrays(y_true, y_pred)
    if len(yt) == 0:
        nan = float("nan")
        return {"n": 0, "accuracy": nan, "macro_precision": nan, "macro_recall": nan, "macro_f1": nan}
    p, r, f, _ = precision_recall_fscore_support(yt, yp, labels=_labels(yt, classes), average="macro",
                                                 zero_division=0)
    return {"n": int(len(yt)), "accuracy": float(accuracy_score(yt, yp)), "macro_precision": float(p),
            "macro_recall": float(r), "macro_f1": float(f)}


# per_class's columns, in order (a run's per_class.csv holds them among train's own: imgcls runs reads them back)
PER_CLASS_COLUMNS = ("class", "precision", "recall", "f1", "support", "predicted")


def per_class(y_true, y_pred, classes: Sequence, meanings: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per class of the task: class, precision, recall, f1, support (true rows), predicted (rows predicted
    as it); with `meanings` (imgcls.profiles.model_class_meanings: a profile class id -> 'wear, female, 30-59') a
    meaning column after the class."""
    from sklearn.metrics import precision_recall_fscore_support
    yt, yp = _arrays(y_true, y_pred)
    labels = _labels(yt, classes)
    p, r, f, s = precision_recall_fscore_support(yt, yp, labels=labels, average=None, zero_division=0)
    predicted = [int((yp == lab).sum()) for lab in labels]
    out = pd.DataFrame(dict(zip(PER_CLASS_COLUMNS, ([str(c) for c in classes], p, r, f, s.astype(int), predicted))))
    if meanings:
        out.insert(1, "meaning", [meanings.get(str(c), "") for c in classes])
    return out


NOT_SCORED = "–"     # a report's cell for a score a class has none of (per_class_shown)


def per_class_shown(pc: pd.DataFrame) -> pd.DataFrame:
    """per_class's table as a report shows it (report.table(..., blank=NOT_SCORED)): a class with no rows (support
    0) has no recall or F1 (sklearn's 0, which the macro-F1 counts: missing_rows_note says so beside the table),
    nor a precision where nothing was predicted as it either; those cells are NaN, not a 0.0000 that reads like a
    score. A copy; the table of a file (per_class.csv) keeps its numbers."""
    pc = pc.copy()
    if "support" in pc:
        none = pc["support"] == 0
        pc.loc[none, ["recall", "f1"]] = np.nan
        pc.loc[none & (pc["predicted"] == 0 if "predicted" in pc else none), "precision"] = np.nan
    return pc


def confusion(y_true, y_pred, classes: Sequence, normalize: bool = False) -> np.ndarray:
    """[k, k] confusion matrix, rows = true class, columns = predicted. normalize: each row divided by its class's
    support (recall on the diagonal; a class without rows gives a row of zeros)."""
    from sklearn.metrics import confusion_matrix
    yt, yp = _arrays(y_true, y_pred)
    cm = confusion_matrix(yt, yp, labels=_labels(yt, classes))
    return row_normalized(cm) if normalize else cm


def row_normalized(cm: np.ndarray) -> np.ndarray:
    """A confusion matrix's rows divided by their sums (a row of zeros stays zeros)."""
    rows = cm.sum(1, keepdims=True)
    return np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)


def confusion_pngs(y_true, y_pred, classes: Sequence, out_dir: str | os.PathLike, title: str = "",
                   stem: str = CONFUSION_STEM, meanings: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """<stem>.png (counts) and <stem>_normalized.png (rows sum to 1) with sklearn's ConfusionMatrixDisplay; each
    class named with its meaning where `meanings` has one (profiles.class_titles), each row's total on the right."""
    from sklearn.metrics import ConfusionMatrixDisplay
    from imgcls.profiles import class_titles
    from imgcls.report import pyplot, save_figure, tick_labels
    plt = pyplot()
    out_dir = Path(out_dir)
    k = len(classes)
    size = min(16, 3.5 + 0.45 * k)
    paths = []
    counts = confusion(y_true, y_pred, classes)
    for norm, name in zip((False, True), confusion_png_names(stem)):
        cm = row_normalized(counts) if norm else counts
        fig, ax = plt.subplots(figsize=(size, size))
        # the tick labels' size: matplotlib's default (10), 6 over 25 classes (below)
        disp = ConfusionMatrixDisplay(cm, display_labels=tick_labels(class_titles(classes, meanings),
                                                                     10 if k <= 25 else 6))
        # over 25 classes the cells hold no numbers: a colour bar is then the only way to read them
        disp.plot(ax=ax, cmap="Blues", colorbar=False, xticks_rotation="vertical", include_values=k <= 25,
                  values_format=".2f" if norm else "d")
        # each row's total beside it: a row-normalised 1.00 of one image reads as one of hundreds, and a class
        # without rows is a blank row, unless its total is there
        totals = ax.secondary_yaxis("right")
        totals.set_yticks(range(k), [str(n) for n in counts.sum(1)])
        totals.set_ylabel("row total (images)")
        if k > 25:
            ax.tick_params(labelsize=6)
            totals.tick_params(labelsize=6)
            fig.colorbar(disp.im_, ax=ax, fraction=0.04, pad=0.08,
                         label="share of the true class's rows" if norm else "images")
        if disp.text_ is not None:    # an empty cell stays blank (as Ultralytics' matrix): fewer texts to read and draw
            for t, n in zip(disp.text_.ravel(), counts.ravel()):
                t.set_visible(bool(n))
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title((title + "\n" if title else "") + ("row-normalised (recall on the diagonal)" if norm
                                                         else "counts"))
        paths.append(save_figure(fig, out_dir / name))
    return paths[0], paths[1]
