"""Compare experiments: what every run folder under outputs/ holds, in one table (`imgcls runs`), two runs side by
side (`imgcls runs diff A B`) and one HTML page (`imgcls runs report`).

A run is any folder with a `config.yaml` written by `imgcls train` (a single run, a k-fold set with fold_*/ folders,
a tune trial) or a `spec.yaml` written by `imgcls ensemble`. Its score is that of its saved validation predictions
by imgcls.metrics (macro-F1 over every class of the task), so every row is the same metric: the best epoch's
val_predictions.csv of a run, the out-of-fold predictions of a k-fold set, the common validation images of an
ensemble (with weights fitted on those very rows, the cross-fitted score `imgcls ensemble` recorded). Train records
a run's (metrics.csv, per_class.csv; a k-fold set's oof_score.json): those numbers are shown where they are of the
saved predictions, and so are an ensemble's (spec.yaml's scores, per_class.csv); one that records none (of an
older imgcls) is scored here (sklearn). `scored_on` and `n_val` say which rows and how many each score came from:
val, OOF or common val scores are over different images.

    from imgcls.runs import RunsConfig, find_runs, leaderboard, run_runs
    table = leaderboard(find_runs("outputs"), sort="val_macro_f1", filters=["model=resnet10t"])
    table = run_runs("table", ["outputs"], RunsConfig(filter=["model=resnet10t"]))     # as `imgcls runs`, printed
"""
from __future__ import annotations

import json
import os
import posixpath
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from imgcls.errors import UserError
from imgcls.options import join, python_too, truth
from imgcls.outputs import (ENSEMBLE_OOF_CSV, ENSEMBLE_SCORES_CSV, SPEC_NAME, TRIALS_CSV, output_kind, read_yaml,
                            trial_record)
from imgcls.run_names import (BEST_BY, BEST_PT, LAST_PT, LAST_STATE, METRICS_CSV, PER_CLASS_CSV, RUN_CONFIG, TRAIN_LOG,
                              VAL_PREDICTIONS, fold_dirs, fold_set, is_fold_dir, records_folds, metric_column,
                              run_metric)
from imgcls.runs_config import (COLUMNS, DEFAULT_ROOT, RUNS_TABLE, RunsConfig,  # noqa: F401  (declared there: light)
                                parse_filter)
from imgcls.train.rundir import (ENSEMBLE_FILE_FIX, ENSEMBLE_OOF, ENSEMBLE_SCORES, PER_CLASS,
                                 RESUME_MAY_CHANGE, RUN_FILE_FIX, UNKNOWN, VALIDATION, OofRecord, RunLock,
                                 ended_by_exception, ended_line, epochs_done, fold_state, planned_classes,
                                 nan_probability_rows, progress_settings, read_metrics, read_oof_score, read_run_file,
                                 read_without, SetFolds, set_fold_dirs, set_folds, set_progress)

# scored_on: the rows of a run's score (an ensemble's ends with OPTIMISTIC when its weights were fitted on them)
OPTIMISTIC = "weights fitted on these rows (optimistic)"
CROSS_FITTED = "weights cross-fitted"   # an ensemble's score over the rows its weights were fitted on, cross-fitted


def cross_fitted(parts, why: bool = False) -> str:
    """'weights cross-fitted (5 parts of these rows)': CROSS_FITTED with the count of parts the weight cross-fit
    split the scored rows in (ensemble.voting.crossfit_macro_f1's k; spec.yaml's crossfit_folds), said as parts of
    these rows, never 'folds', which beside a k-fold member reads as the data's folds. `why`: what it means added
    ('...: each row scored with weights fitted without it')."""
    return f"{CROSS_FITTED} ({parts} parts of these rows" + (
        ": each row scored with weights fitted without it)" if why else ")")
VAL, OOF, COMMON, COMMON_OOF = "val", "OOF", "common val", "common OOF"
SKIP_DIRS = ("mlartifacts", "mlruns", "wandb", "__pycache__")
# where / how a run ran, not what it learned: what a resume may change but the data it reads, mixed precision, and
# where --pretrained found its file (weights_source, a path)
HOW_IT_RAN = tuple(k for k in RESUME_MAY_CHANGE if k != "src") + ("amp", "weights_source")
# the changed column leaves out the model and the input size (columns of their own) and the data folder (a path),
# and --gpu-aug as its machine resolved it (gpu_aug_used: the typed --gpu-aug is there where it is not auto), and the
# column --target resolved to (target_used: the task column says it)
IGNORED_IN_CHANGED = ("model", "img_size", "src", "gpu_aug_used", "target_used") + HOW_IT_RAN


# a row that is not a finished run: a train process holds its folder's lock now (RunLock.held); Optuna pruned the
# tune trial, or it failed (its study's trials.csv); it ended before its epochs, or a k-fold set before its last fold
# (Ctrl-C, a kill) and nothing holds it, or an exception stopped it (a crash: its train.log's last line names it), or
# a refusal stopped it before its first epoch trained and its folder stayed (its tracker's run names it; train.log's
# last line names the refusal);
# its loss diverged (NaN): its saved probabilities are NaN, it has no score;
# a finished k-fold set a fold's checkpoint (or folder) was removed from since: predict and ensemble refuse it; an
# ensemble a member's checkpoint of which is gone (its run renamed, moved, deleted): predict refuses it
RUNNING, STOPPED, CRASHED, REFUSED = "running", "stopped", "crashed", "refused"
PRUNED, FAILED, DIVERGED = "pruned", "failed", "diverged"
FOLD_MISSING, MEMBER_MISSING = "fold missing", "member missing"
STATES = (RUNNING, STOPPED, CRASHED, REFUSED, PRUNED, FAILED, DIVERGED, FOLD_MISSING, MEMBER_MISSING)
TRIAL_STATES = {"pruned": PRUNED, "fail": FAILED}       # trials.csv's state (imgcls/tune/report.py) -> ours


@dataclass
class Run:
    path: Path
    name: str = ""
    kind: str = "run"                    # run | k-fold | trial (a tune study's) | ensemble
    task: str = ""                       # what it predicts: the column and its class count, "label (17)", "mask (3)"
    state: str = ""                      # blank: finished, not known (run_state), or an ensemble whose members
                                         # are there; else one of STATES
    progress: str = ""                   # how far it got: epochs done / set ("2/6"; "4/10, early stop"), a k-fold
                                         # set's folds too ("folds done 1/5, fold_1 2/6")
    model: str = ""
    img_size: int | None = None
    epochs: int | None = None            # epochs done (a k-fold set: the most any fold did)
    best_epoch: int | None = None      # a k-fold set: of the folds' mean validation macro-F1
    val_macro_f1: float = float("nan")
    val_acc: float = float("nan")
    n_val: int = 0
    scored_on: str = ""                  # VAL | OOF | COMMON | COMMON_OOF (+ how an ensemble's weights were fitted)
    row_keys: frozenset | None = None    # the scored images (root/path), to tell whether two scores share them
    row_paths: frozenset | None = None   # the same, each within its root: a copy of the data elsewhere has the same
    seconds: float | None = None         # training time: the sum of metrics.csv's epoch_seconds
    config: dict = field(default_factory=dict)
    changed: str = ""                    # options that differ from TrainConfig's defaults, "k=v k=v"
    classes: list = field(default_factory=list)
    checkpoints: list = field(default_factory=list)    # its models' files, which tell what its classes mean
    meanings: dict | None = None       # what its classes mean (class_meanings), read when asked (meanings_of)
    history: pd.DataFrame | None = None  # metrics.csv (a k-fold set: its folds' rows, with a fold column)
    per_class: pd.DataFrame | None = None

    def row(self) -> dict:
        """Its leaderboard row (COLUMNS; --csv / --json write it): a run with no scored row yet (stopped in its
        first epoch, n_val 0) claims no rows a score came from, scored_on blank as the table's cell (rows_label)."""
        d = asdict(self)
        if not rows_label(self.scored_on, self.n_val):
            d["scored_on"] = ""
        return {c: d[c] for c in COLUMNS}


def meanings_of(run: Run) -> dict[str, str]:
    """What the run's classes mean (class_meanings of its checkpoints), read once, when a diff or the report names
    its classes: the leaderboard reads no checkpoint for it."""
    if run.meanings is None:
        run.meanings = class_meanings(run.classes, run.checkpoints)
    return run.meanings


def class_meanings(classes: Sequence[str], checkpoints: Sequence[Path]) -> dict[str, str]:
    """What a run's (or ensemble's) classes mean where its models' metadata tells, as train's, predict's and
    ensemble's reports name them (profiles.prediction_meanings: a profile run's '4' -> 'wear, female, 30-59'); {}
    where none tells. Only class ids that are numbers can mean more than they say: no checkpoint is read for
    others."""
    if not classes or not all(str(c).isdigit() for c in classes):
        return {}
    from imgcls.profiles import prediction_meanings
    from imgcls.train.checkpoint import read_meta
    metas = []
    for c in checkpoints:
        try:
            metas.append(read_meta(c))
        except (UserError, OSError):       # gone, being replaced, not a checkpoint: it tells nothing
            continue
    return prediction_meanings([str(c) for c in classes], metas) if metas else {}


def agreed_meanings(runs: Sequence[Run]) -> dict[str, str]:
    """{class: meaning} of the classes shown together for `runs` (their per-class scores): a class is named by what
    it is where every run that scores it says the same (a mask run's '0' is not a profile run's, nor a profile
    run's '0' under --age-bands 25 one's under 30,60); one whose models tell nothing leaves it bare."""
    said = [{str(c): meanings_of(r).get(str(c), "") for c in r.per_class["class"]} for r in runs
            if r.per_class is not None]
    out = {}
    for c in dict.fromkeys(c for s in said for c in s):
        told = {s[c] for s in said if c in s}
        if len(told) == 1 and "" not in told:
            out[c] = told.pop()
    return out


def _score(preds: pd.DataFrame | None, run: Run, record: tuple[dict, pd.DataFrame] | None = None) -> None:
    """Fill val_macro_f1 / val_acc / n_val / per_class from a predictions table (label, pred, p_<class>...): the
    scores train recorded of it (`record`, _recorded_scores') where they are of these very predictions
    (_record_fits), else scored here with imgcls.metrics (sklearn: a run or an ensemble of an older imgcls,
    which records none)."""
    from imgcls.manifest import text_values
    if preds is None or "label" not in preds.columns or "pred" not in preds.columns:
        return
    classes = prob_classes(preds.columns) or run.classes
    run.classes = list(classes)
    ok = preds["label"].notna() & (preds["label"].astype(str) != "")
    y, p = preds.loc[ok, "label"].astype(str).to_numpy(), preds.loc[ok, "pred"].astype(str).to_numpy()
    if not len(y):
        return
    if record is not None and _record_fits(record, y, p, classes):
        s, run.per_class = record
    else:
        from imgcls import metrics
        s, run.per_class = metrics.scores(y, p, classes), metrics.per_class(y, p, classes)
    run.val_macro_f1, run.val_acc, run.n_val = s["macro_f1"], s["accuracy"], s["n"]
    rows = preds.loc[ok]
    paths = None
    if "key" in rows.columns:                            # an ensemble's oof_predictions.csv (read_oof's keys)
        keys = list(rows["key"].astype(str))
        # root/path with the roots joined in: each within the folder all of them lie under
        top = posixpath.commonpath([posixpath.dirname(k) for k in keys]) if len({k[:1] == "/" for k in keys}) == 1 \
            else ""
        paths = [posixpath.relpath(k, top) if top else k for k in keys]
    elif "path" in rows.columns:
        root = text_values(rows["root"]) if "root" in rows.columns else pd.Series("", index=rows.index)
        keys = [f"{r}/{q}" if r else str(q) for r, q in zip(root, rows["path"])]
        paths = [str(q) for q in rows["path"]]
    else:
        keys = None
    run.row_keys = frozenset(keys) if keys is not None else None
    run.row_paths = frozenset(paths) if paths is not None else None


def _recorded_scores(folder: Path, history: pd.DataFrame | None, kfold: OofRecord | None,
                     ensemble: dict | None = None) -> tuple[dict, pd.DataFrame] | None:
    """The scores train recorded of `folder`'s val_predictions.csv, as _score fills them: ({'macro_f1', 'accuracy',
    'n'}, metrics.per_class's table). A run's (a trial's): its `history` (metrics.csv) row of the best epoch its
    per_class.csv names, and that per_class.csv; a k-fold set's (`kfold`: its oof_score.json as read_oof_score read it,
    else None): that record and its per_class.csv (train writes them over the out-of-fold predictions); an
    ensemble's (`ensemble`: its spec.yaml's scores), of its oof_predictions.csv: those scores' ensemble_macro_f1,
    ensemble_accuracy and common_val_images, and its
    per_class.csv (imgcls ensemble writes them). None where one is missing or lacks a number (a run or an ensemble
    of an older imgcls, a k-fold set before its last fold)."""
    from imgcls.metrics import PER_CLASS_COLUMNS
    pc = read_run_file(folder / PER_CLASS_CSV, PER_CLASS, RUN_FILE_FIX if ensemble is None else ENSEMBLE_FILE_FIX)
    if pc is None or not set(PER_CLASS_COLUMNS) <= set(pc.columns):
        return None
    if ensemble is not None:
        s = {k: ensemble.get(r) for k, r in (("macro_f1", "ensemble_macro_f1"), ("accuracy", "ensemble_accuracy"),
                                             ("n", "common_val_images"))}
    elif kfold is not None:
        oof = kfold.doc
        if oof is None:     # not there, or no JSON
            return None
        s = {k: oof.get(r) for k, r in (("macro_f1", "macro_f1"), ("accuracy", "accuracy"), ("n", "n_images"))} \
            if isinstance(oof, dict) else {}
    else:
        if history is None or "best_epoch" not in pc.columns or not {"val_macro_f1", "val_acc"} <= set(history):
            return None
        best = history[history["epoch"] == pc["best_epoch"].iloc[0]] if pc["best_epoch"].nunique() == 1 else []
        if len(best) != 1:      # its metrics.csv not yet written for that epoch (train writes it last)
            return None
        s = {"macro_f1": best["val_macro_f1"].iloc[0], "accuracy": best["val_acc"].iloc[0],
             "n": pc["support"].sum()}
    try:
        s = {"macro_f1": float(s["macro_f1"]), "accuracy": float(s["accuracy"]), "n": int(s["n"])}
        pc = pc[list(PER_CLASS_COLUMNS)].astype({"class": str, "support": int, "predicted": int})
        pc = pc.astype({c: float for c in ("precision", "recall", "f1")})
    except (KeyError, TypeError, ValueError):
        return None
    return (s, pc) if np.isfinite([s["macro_f1"], s["accuracy"]]).all() else None


def _record_fits(record: tuple[dict, pd.DataFrame], y: np.ndarray, p: np.ndarray, classes: Sequence[str]) -> bool:
    """Whether train's `record` of the scores (_recorded_scores') is of the predictions (labels `y`, predictions
    `p`) being read: the task's classes, and each one's rows (support) and rows predicted as it, the same. Else
    (a file copied from another run, a run read between train's writes of its best epoch) they are re-scored."""
    s, pc = record
    if s["n"] != len(y) or list(pc["class"]) != [str(c) for c in classes]:
        return False
    count = [pd.Series(v).value_counts().reindex(pc["class"], fill_value=0).tolist() for v in (y, p)]
    return count == [pc["support"].tolist(), pc["predicted"].tolist()]


def changed_options(config: dict) -> dict:
    """{option: value} of a config.yaml that differ from TrainConfig's defaults (where it ran, the model and the
    input size left out: the last two have columns of their own)."""
    from imgcls.train.config import TrainConfig
    defaults = TrainConfig().to_dict()
    return {k: v for k, v in config.items() if k in defaults and k not in IGNORED_IN_CHANGED and v != defaults[k]}


def _fmt_value(v, short: bool = True) -> str:
    """An option's value as the table shows it; `short`: a float to 4 significant digits (a tune trial's
    lr=0.00013449326615130812 -> 0.0001345), not where two values are compared (runs diff). An unset option and a
    yes / no one as config.yaml writes them (null, true / false), what --filter matches, not Python's None / False."""
    if v is None or isinstance(v, bool):
        return "null" if v is None else str(v).lower()
    if isinstance(v, (list, tuple)):
        return join(v)
    if isinstance(v, dict):                  # an ensemble's members and their weights
        return " ".join(f"{k}={_fmt_value(x, short)}" for k, x in v.items())
    if isinstance(v, float) and short:
        return f"{v:.4g}"
    return str(v)


def read_run(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Run | None:
    """The Run a folder holds, or None if it holds none. A malformed file of it is said once (read_run_file's warning),
    though its metrics.csv is read for the history and again for the state."""
    from imgcls.console import said_once
    with said_once():
        return _read_run(Path(path), root)


def _read_run(path: Path, root: str | os.PathLike | None) -> Run | None:
    name = Path(os.path.relpath(path, root)).as_posix() if root is not None else path.name
    if name == ".":
        name = path.resolve().name
    if (path / SPEC_NAME).is_file():
        try:        # a hand-edited spec (members: 3, not YAML) is load_spec's line, said as a malformed file is
            doc = _ensemble_doc(path / SPEC_NAME)
        except UserError as e:
            from imgcls.console import warn
            warn(f"{e}; the ensemble is not listed")
            return None
        if doc is not None:
            return _read_ensemble(path, name, doc)
    if not (path / RUN_CONFIG).is_file():
        return None
    cfg = _read_config(path)
    run = Run(path=path, name=name, model=str(cfg.get("model", "")), img_size=cfg.get("img_size"), config=cfg)
    run.changed = " ".join(f"{k}={_fmt_value(v)}" for k, v in changed_options(cfg).items())
    # a set's folds (run_names.fold_dirs): a run named fold_0 trained into a plain run's folder is no fold of it,
    # nor a fold folder the set's plan does not name (set_fold_dirs: copied in by hand)
    oof = read_oof_score(path)      # a set's oof_score.json, read once for its folds, its scores and its state
    one_fold = fold_set(path) is not None
    dirs = fold_dirs(path)
    # a set's folds resolved once, for its row and its state (run_state); a run's are none (its plan not read)
    set_dirs = set_folds(path, oof, dirs) if dirs or (cfg.get("folds") and not one_fold) else None
    folds = [d for d in set_dirs.ours if (d / METRICS_CSV).is_file()] if set_dirs is not None else []
    if output_kind(path.parent) == "tune study":
        run.kind = "trial"
    # a k-fold set before its first fold has validated (no fold_*/metrics.csv yet) is one too, by its config.yaml's
    # --folds (which each fold_<k>/config.yaml repeats: a fold read alone is a run)
    if folds or (cfg.get("folds") and not one_fold):
        run.kind = "k-fold" if run.kind == "run" else run.kind
        hist = []
        for d in folds:
            h = read_metrics(d)
            if h is not None:
                h.insert(0, "fold", d.name.split("_", 1)[1])
                hist.append(h)
        run.history = pd.concat(hist, ignore_index=True) if hist else None
        scored = read_run_file(path / VAL_PREDICTIONS, VALIDATION)
        _score(scored, run, _recorded_scores(path, None, kfold=oof) if scored is not None else None)
        run.checkpoints = [d / BEST_PT for d in folds]
        run.scored_on = OOF
        if not run.classes:         # no out-of-fold predictions before the last fold: the task's classes all the same
            run.classes = planned_classes(path) or _fold_classes(folds)
        if run.history is not None and len(run.history):
            run.epochs = int(run.history.groupby("fold")["epoch"].max().max())
            run.best_epoch = _best_epoch(run.history, cfg.get("metric"))
    else:
        run.history = read_metrics(path)
        preds = scored = read_run_file(path / VAL_PREDICTIONS, VALIDATION)
        _score(preds, run, _recorded_scores(path, run.history, kfold=None) if preds is not None else None)
        run.checkpoints = [path / BEST_PT]
        run.scored_on = VAL
        if not run.classes:         # before its first validation: the classes train recorded as it started
            run.classes = planned_classes(path) or (planned_classes(path.parent) if one_fold else None) or []
        if run.history is not None and len(run.history):
            run.epochs = int(run.history["epoch"].max())
            run.best_epoch = _best_epoch(run.history, cfg.get("metric"))
    if run.history is not None and "epoch_seconds" in run.history.columns:
        run.seconds = float(run.history["epoch_seconds"].sum())
    run.state, run.progress = run_state(path, cfg, folds, oof, set_dirs)
    if run.state == FOLD_MISSING:       # its out-of-fold score is over rows of a fold it no longer has
        run.val_macro_f1, run.val_acc, run.per_class, run.best_epoch, run.n_val = (float("nan"), float("nan"), None,
                                                                                   None, 0)
        run.row_keys = run.row_paths = None
    if scored is not None and nan_probability_rows(scored) and run.state != RUNNING:
        # its loss diverged: argmax of NaN predicted the first class everywhere, a score of nothing (not ranked),
        # nor a best epoch (NaN chose it) nor rows it was scored on
        run.state, run.val_macro_f1, run.val_acc, run.per_class = DIVERGED, float("nan"), float("nan"), None
        run.best_epoch, run.n_val = None, 0
    run.task = task_of(run_target(cfg), run.classes)
    return run


def _read_config(path: Path) -> dict:
    """A run's config.yaml (TrainConfig.read_mapping's reading), as this train reads it (TrainConfig.as_today: an
    option added after the run ran at its default); an unreadable one (not YAML, not a mapping) is said in one
    warning naming it, as the run's other malformed files (read_without), and the run is read without it."""
    from imgcls.train.config import TrainConfig
    try:
        return TrainConfig.as_today(TrainConfig.read_mapping(path / RUN_CONFIG, RUN_FILE_FIX))
    except UserError as e:
        read_without(str(e))
        return {}


def _ensemble_doc(spec: Path) -> dict | None:
    """The fields of an ensemble's spec.yaml `spec`, read and checked as load_spec reads them (read_spec_doc,
    check_spec: a UserError names the file and what is wrong), without loading its members; None where it is no
    ensemble's (another kind)."""
    from imgcls.ensemble.config import check_spec, read_spec_doc
    doc = read_spec_doc(spec)
    if not isinstance(doc, dict) or doc.get("kind") != "imgcls-ensemble":
        return None
    check_spec(doc, spec)
    return doc


def _fold_classes(folds: Sequence[Path]) -> list:
    """The classes a fold's validation predictions name (their p_<class> columns): a k-fold set's classes where
    train recorded none as it started (a set started before its plan named them)."""
    for d in folds:
        head = read_run_file(d / VAL_PREDICTIONS, VALIDATION, nrows=0)
        found = prob_classes(head.columns) if head is not None else []
        if found:
            return found
    return []


def prob_classes(columns) -> list[str]:
    """The classes a predictions table's p_<class> columns name, in their order (_score, _fold_classes)."""
    return [c[2:] for c in columns if c.startswith("p_")]


def run_target(cfg: dict) -> str:
    """The column a run's classes are values of, as its config.yaml records it: target_used (TrainConfig.class_column
    as train resolved it on the data: label for a --target naming the column that holds the labels, DACON's
    artist), else (a run from before it was recorded) --target; label where neither is."""
    return str(cfg.get("target_used") or cfg.get("target") or "label")


def task_of(target: str, classes) -> str:
    """'label (17)', 'mask (3)': a score compares with another only within one task (train --target's column and
    its class count: a 3-class mask run's macro-F1 is not an 18-class run's)."""
    return f"{target} ({len(classes)})" if classes else str(target)


_TASK = re.compile(r"^(.*?)(?: \((\d+)\))?$")


def same_task(a: str, b: str) -> bool:
    """Whether the scores of two tasks (task_of's) compare: the same column and, where both name one, the same class
    count. A run whose classes nothing records names its column alone (one an imgcls before plan.json started and
    that stopped before its first validation: no val_predictions.csv, and so no scores): its count is not known,
    which is no other task."""
    (col_a, n_a), (col_b, n_b) = _TASK.match(str(a)).groups(), _TASK.match(str(b)).groups()
    return col_a == col_b and (n_a is None or n_b is None or n_a == n_b)


def task_groups(tasks: Sequence[str]) -> dict[str, str]:
    """Each of `tasks` mapped to the task it is ranked with (a leaderboard's section, a report's charts): itself, or
    for a task whose class count nothing records ('label'), the one task of its column that names a count (
    'label (3)'), which same_task calls the same. Beside several ('label (18)' and 'label (3)', apart) it is the
    same as each and ranked with neither: its own."""
    tasks = list(dict.fromkeys(tasks))
    counted = [t for t in tasks if _TASK.match(str(t)).group(2) is not None]
    out = {}
    for t in tasks:
        alike = [c for c in counted if c != t and same_task(t, c)]
        out[t] = alike[0] if _TASK.match(str(t)).group(2) is None and len(alike) == 1 else t
    return out


def run_state(path: Path, cfg: dict, folds: Sequence[Path] = (), oof: OofRecord | None = None,
              set_dirs: SetFolds | None = None) -> tuple[str, str]:
    """(state, progress) of a run folder (see STATES; state blank: finished, or not known). Evidence, in order: the
    folder's lock (running), its tune study's trials.csv (pruned, failed, complete; failed by Ctrl-C / SIGTERM, its
    message says: stopped; any of them finished where `train --resume` trained it to its end since:
    _trained_to_end_since), then a k-fold set's progress (rundir.set_progress) or a run's last.pt / metrics.csv
    (rundir.fold_state). A fold read alone (run_names.fold_set) is a run: its config.yaml repeats the set's --folds,
    which would read it as a set; stopped, it crashed (was refused) where its set's train.log says so (train logs
    that line there, not in the fold's: rundir.ended_line). `oof`: a set's oof_score.json as read_oof_score read
    it, `set_dirs`: its folds as set_folds resolved them, where the caller has them."""
    kset = fold_set(path)
    if kset is not None:
        cfg = {k: v for k, v in cfg.items() if k != "folds"}
    settings = progress_settings(cfg)
    kfold = bool(cfg.get("folds") or folds)
    if kfold:
        sp = set_progress(path, settings, oof, set_dirs)    # train.rundir's, predict's refusal's too
        finished, progress, gone = sp.finished, sp.text, sp.gone
    else:
        (finished, progress), gone = fold_state(path, settings), []
    if RunLock.held(path):
        return RUNNING, progress
    if gone:        # a finished k-fold set's fold folder or checkpoint removed since
        return FOLD_MISSING, progress
    record = trial_record(path) or {}
    # a trial Optuna recorded as still running: by its folder (its process is gone: no lock)
    recorded = record.get("state", "")
    if recorded in TRIAL_STATES and _trained_to_end_since(path, record, finished, kfold, oof, set_dirs):
        return "", progress
    if recorded == "fail" and _stopped_trial(record):      # Optuna fails a trial Ctrl-C
        return STOPPED, progress            # stopped: no fault of its values (tune runs them again on resume)
    if recorded in TRIAL_STATES:
        return TRIAL_STATES[recorded], progress
    if recorded == "complete":
        return "", progress
    if finished is False:
        ended = ended_line(path) or (ended_line(kset) if kset is not None else None)
        return (STOPPED if ended is None else CRASHED if ended_by_exception(ended) else REFUSED), progress
    return "", progress


def _stopped_trial(record: dict) -> bool:
    """Whether a tune trial's trials.csv row (state fail) is one Ctrl-C / SIGTERM stopped, as its message says."""
    from imgcls.outputs import INTERRUPTED, INTERRUPTED_BY_SIGTERM
    return record.get("message") in (INTERRUPTED, INTERRUPTED_BY_SIGTERM)


def _trained_to_end_since(path: Path, record: dict, finished: bool | None, kfold: bool,
                          oof: OofRecord | None = None, set_dirs: SetFolds | None = None) -> bool:
    """Whether `imgcls train --resume` trained a tune trial's folder on to its end after trials.csv's `record` ended
    the trial before it (pruned, failed, stopped): a finished run then, not the trial's state. Its folder finished
    (`finished`: run_state's reading, a k-fold set's own where `kfold`) and, but for a stopped trial (no verdict on
    it), with epochs beyond the trial's epochs_run (over every fold of a set): a trial pruned or failed after its
    last epoch has that epoch done too, and so stays pruned / failed, as does one whose table has no epochs_run.
    `oof`, `set_dirs`: run_state's."""
    if finished is not True:
        return False
    if record.get("state") == "fail" and _stopped_trial(record):
        return True
    try:
        ran = int(float(record.get("epochs_run") or ""))
    except ValueError:
        return False
    ours = (set_dirs.ours if set_dirs is not None else set_fold_dirs(path, oof)[0]) if kfold else [path]
    done = [epochs_done(d) for d in ours]
    return None not in done and sum(done) > ran


def _state_of(folder: Path, folds: Sequence[Path] = ()) -> tuple[str, str] | None:
    """run_state of a folder read on its own (its config.yaml's lines said once); None where it has none (no run)."""
    if not (folder / RUN_CONFIG).is_file():
        return None
    from imgcls.console import said_once
    with said_once():
        cfg = _read_config(folder)
    return run_state(folder, cfg, folds)


def stopped_state(folder: Path) -> tuple[str, str] | None:
    """(state, progress) of a run, or one fold read alone, whose training stopped before its epochs (no train holds
    it: run_state): STOPPED (Ctrl-C, a kill) or CRASHED, and how far it got, '2/6', as the leaderboard's epochs cell
    reads them ('crashed 2/6', epochs_label); None where it finished, is not known to have stopped, or is no run.
    For the lines that say a model is a partial run's (an ensemble's member, a run predict's newest choice passes
    by)."""
    state = _state_of(folder)
    return (state[0], str(state[1])) if state and state[0] in (STOPPED, CRASHED) else None


def set_state(folder: Path) -> tuple[str, str] | None:
    """run_state's (state, progress) of a k-fold set: ('stopped', 'folds done 1/2, fold_1 3/10'), ('fold missing',
    'folds done 1/2, fold_1 gone'); None where it has no config.yaml. For predict's newest-run choice, which passes
    by a set it refuses (train.rundir.check_kfold_finished) and says so."""
    return _state_of(folder, fold_dirs(folder))


def _best_epoch(history: pd.DataFrame, metric: str | None = None) -> int | None:
    """The epoch the run's --metric (its config.yaml's `metric`; macro_f1 where a run of an older imgcls records
    none) picked: its best validation value, as train chose best.pt by it; for a k-fold set (a fold column), the
    best mean over the folds that reached it: the epoch count to retrain on all the data with."""
    from imgcls.metrics import best_epoch_of
    metric = run_metric(metric)
    column = metric_column(metric, history.columns)
    if column not in history.columns or not len(history):
        return None
    curve = history.assign(_v=pd.to_numeric(history[column], errors="coerce")).groupby("epoch")["_v"].mean()
    return best_epoch_of(curve, metric)


def _profile_shares(path: Path, members: list) -> dict[str, str]:
    """{member: its share within the attribute(s) it gives} of an `ensemble --combine profile`, as the ensemble's
    table, report.html and predict show it (scores.csv's `shares`, ensemble.profile.share_text: '1.00', or per
    attribute where they differ): spec.yaml's weight is over every member, which the product of the attributes
    never uses (one run per attribute has 1.00 each, not 0.333). {} where scores.csv does not record them."""
    from imgcls.manifest import text_values
    t = read_run_file(path / ENSEMBLE_SCORES_CSV, ENSEMBLE_SCORES, ENSEMBLE_FILE_FIX)
    if t is None or "shares" not in t.columns or len(t) < len(members):
        return {}
    return {str(m.get("name")): (v if "," not in v else f"({v})")
            for m, v in zip(members, text_values(t["shares"]))}


def _ensemble_target(path: Path, doc: dict) -> str:
    """The column an ensemble predicts: label for `--combine profile` (the profile ids), else its members' `train
    --target` (one for all: ensemble refuses members of other columns), as the first member run folder whose
    config.yaml is there records it; label where none does."""
    if doc.get("combine") != "profile":
        for m in doc.get("members") or []:
            if isinstance(m, dict) and m.get("run"):
                cfg = read_yaml(path / str(m["run"]) / RUN_CONFIG)
                if cfg:
                    return run_target(cfg)
    return "label"


def _read_ensemble(path: Path, name: str, doc: dict) -> Run:
    members = doc.get("members") or []
    how = "profile" if doc.get("combine") == "profile" else doc.get("method", "")   # ensemble --combine profile
    run = Run(path=path, name=name, kind="ensemble", classes=list(doc.get("classes") or []),
              task=task_of(_ensemble_target(path, doc), doc.get("classes") or []),
              model=f"{how}: " + " + ".join(str(m.get("name", "")) for m in members))
    run.config = {"method": doc.get("method"), "combine": doc.get("combine", "vote"),
                  # the weights as the leaderboard prints them (weights 2,1 are recorded as 0.6666666666666666)
                  "members": {str(m.get("name")): round(float(m.get("weight", 0)), 3) for m in members}}
    run.changed = "weights " + " ".join(f"{m.get('name')}={float(m.get('weight', 0)):.3f}" for m in members)
    if how == "profile":
        shares = _profile_shares(path, members)
        run.config["members"] = shares
        run.changed = ("shares within each attribute " + " ".join(f"{k}={v}" for k, v in shares.items())
                       if shares else "")
    scores = doc.get("scores") if isinstance(doc.get("scores"), dict) else {}
    oof = read_run_file(path / ENSEMBLE_OOF_CSV, ENSEMBLE_OOF, ENSEMBLE_FILE_FIX)
    _score(oof, run, _recorded_scores(path, None, None, ensemble=scores) if oof is not None else None)
    run.checkpoints = [path / str(c) for m in members if isinstance(m, dict) for c in (m.get("checkpoints") or [])[:1]]
    from imgcls.ensemble.config import missing_members
    gone = missing_members(doc, path)
    if gone:        # predict refuses it (load_spec); its score stands as what it was, the state says it is no model
        run.state, run.progress = MEMBER_MISSING, ", ".join(gone)
    rows = common_rows([len(m.get("checkpoints") or []) if isinstance(m, dict) else 0 for m in members])
    run.scored_on = rows
    if scores.get("weights_fitted_on_scored_rows"):
        # the weights were fitted on the rows scored: that score is optimistic; rank on the cross-fitted one (each
        # row scored with weights fitted without it) where imgcls ensemble recorded it
        cross = pd.to_numeric(pd.Series([scores.get("ensemble_macro_f1_crossfit")]), errors="coerce").iloc[0]
        if pd.notna(cross):
            run.val_macro_f1, run.val_acc = float(cross), float("nan")     # no cross-fitted accuracy is recorded
            run.scored_on = f"{rows}, {CROSS_FITTED}"
        else:
            run.scored_on = f"{rows}, {OPTIMISTIC}"
    return run


def common_rows(checkpoints: Sequence[int]) -> str:
    """What the rows an ensemble's members share are, by each member's checkpoint count: COMMON_OOF where every
    member is a k-fold set (several checkpoints: its rows are out-of-fold, each scored by the fold that did not train
    on it), else COMMON. The one rule for `imgcls runs`' scored_on and `imgcls ensemble`'s table and report."""
    return COMMON_OOF if len(checkpoints) and all(n > 1 for n in checkpoints) else COMMON


def find_runs(root: str | os.PathLike = DEFAULT_ROOT) -> list[Run]:
    """Every run, k-fold set and ensemble under `root` (a k-fold set's fold_* folders belong to it)."""
    root = Path(root)
    if not root.is_dir():
        from imgcls.fsutil import did_you_mean
        raise UserError(f"{root} is not a folder{did_you_mean(root)}; give the folder your runs are under "
                        f"(default: outputs)")
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        d = Path(dirpath)
        run = read_run(d, root.parent if d == root else root)
        if run is not None:
            found.append(run)
            sets = records_folds(d / RUN_CONFIG)        # its fold_<k> folders are its folds (run_names.fold_set)
            dirnames[:] = [n for n in dirnames if not (sets and is_fold_dir(n))]     # a run named fold_0 is listed
        # trackers' stores copy a run's files (mlartifacts/) or keep their own (wandb/, mlruns/): not runs
        dirnames[:] = sorted(n for n in dirnames if n not in SKIP_DIRS and not n.startswith("."))
    return found


# --------------------------------------------------------------------------------------------------------------
# The leaderboard
# --------------------------------------------------------------------------------------------------------------

RANKED = ("val_macro_f1", "val_acc")     # --sort by a score ranks the runs: within each task only (task_rank)


def task_rank(task: str) -> tuple[int, str]:
    """Where a task's runs come in a ranking (RANKED): the task of the most classes first ('label (18)' before
    'mask (3)' before 'gender (2)'), then by name; a score is ranked only among its task's (a 2-class gender run's
    macro-F1 is not an 18-class run's)."""
    found = re.search(r"\((\d+)\)$", str(task))
    return -(int(found.group(1)) if found else 0), str(task)


def leaderboard(runs: Sequence[Run], sort: str = RunsConfig.sort, filters: Sequence[str] = (),
                ascending: bool | None = None) -> pd.DataFrame:
    """One row per run (COLUMNS), filtered (`model=resnet10t`, `val_macro_f1>0.5`, `name~fold`; a config option
    also works, e.g. `loss=focal`) and sorted (best score first by default). Sorted by a score (RANKED), the runs
    of each task are ranked apart, the tasks one after another (task_rank): scores of other tasks do not compare."""
    df = pd.DataFrame([r.row() for r in runs], columns=COLUMNS)
    for c in ("img_size", "epochs", "best_epoch", "n_val"):      # whole numbers, blank for an ensemble (not 32.0)
        df[c] = pd.to_numeric(df[c], errors="coerce").round().astype("Int64")
    for expr in filters:
        key, op, value = parse_filter(expr)
        if key in df.columns:
            col = df[key]
            has = col.notna()
        else:
            known = any(key in r.config for r in runs)
            if not known:
                raise UserError(f"--filter '{expr}': no column or option '{key}'; columns: {', '.join(COLUMNS)}")
            col = pd.Series([r.config.get(key) for r in runs], index=df.index)
            has = pd.Series([key in r.config for r in runs], index=df.index)   # a recorded null is its value
        num = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        colnum = pd.to_numeric(col, errors="coerce")
        said = truth(value) if op in ("=", "!=") and len(col[has]) and \
            all(isinstance(v, (bool, np.bool_)) for v in col[has]) else None
        if said is not None:    # a yes / no option: config.yaml's `false`, Python's False, 0, no (the one truth table)
            mask = col.map(lambda v: isinstance(v, (bool, np.bool_)) and bool(v) == said)
            mask = ~mask if op == "!=" else mask
        elif op == "~":
            mask = col.astype(str).str.contains(value, regex=False)
        elif op in ("=", "!=") and (pd.isna(num) or colnum.isna().all()):
            mask = col.astype(str) == value
            mask = ~mask if op == "!=" else mask
        else:
            if pd.isna(num):
                raise UserError(f"--filter '{expr}': {op} needs a number")
            mask = {"=": colnum == num, "!=": colnum != num, ">": colnum > num, "<": colnum < num,
                    ">=": colnum >= num, "<=": colnum <= num}[op]
        # a row without the value (an ensemble has no lr, nor an img_size) matches none, != included: 'lr!=0.001'
        # lists the runs of another lr (MLflow's search and SQL's NULL alike)
        keep = (mask.fillna(False) & has).to_numpy(dtype=bool)
        df = df[keep]
        runs = [r for r, m in zip(runs, keep) if m]
    if sort not in COLUMNS:
        raise UserError(f"--sort '{sort}': use one of {', '.join(COLUMNS)}")
    if ascending is None:
        ascending = sort in ("name", "kind", "task", "state", "progress", "model", "scored_on", "changed", "seconds")
    df = df.sort_values(sort, ascending=ascending, na_position="last", kind="stable")
    groups = task_groups(df["task"])
    if sort in RANKED and len(set(groups.values())) > 1:
        order = sorted(set(groups.values()), key=task_rank)
        df = df.sort_values("task", key=lambda t: t.map(groups).map(order.index), kind="stable")
    return df.reset_index(drop=True)


def listed(kinds: Sequence[str]) -> str:
    """How many of what a leaderboard lists, by their Run.kind: '3 runs' (single runs, k-fold sets, tune trials),
    '1 ensemble', '3 runs and ensembles'; what its title, the report's and their lines count."""
    kinds = list(kinds)
    n_ens = sum(k == "ensemble" for k in kinds)
    if 0 < n_ens < len(kinds):
        return f"{len(kinds)} runs and ensembles"
    from imgcls.console import plural
    return plural(len(kinds), "ensemble" if n_ens else "run")


def print_leaderboard(df: pd.DataFrame, root: str | os.PathLike, of: Sequence[str] = (),
                      filters: Sequence[str] = (), sort: str = RunsConfig.sort) -> None:
    """The leaderboard table, its title counting what it lists (listed); `of`: the kinds of every run there was
    before `filters` kept the rows of `df` (the title says how many matched, never '0 runs under outputs' for runs
    that exist and did not match). `sort`: the column
    `df` is sorted by; a score (RANKED) ranks each task's runs apart (leaderboard): the title says so, and a line
    parts the tasks."""
    from imgcls.console import print_heading, print_table, sh
    what = f"{listed(df['kind'])} under {root}"
    if filters:
        said = " ".join(f"--filter {sh(f)}" for f in filters)
        if len(df) == 0:        # the line alone: no header of no rows, nor the legend of its columns
            print_heading(f"none of the {listed(of)} under {root} matches {said}")
            return
        what = f"{listed(df['kind'])} of the {listed(of)} under {root} match{'es' if len(df) == 1 else ''} {said}"
    group = df["task"].map(task_groups(df["task"])).tolist()       # the tasks ranked apart (same_task's)
    ranked = sort in RANKED and len(set(group)) > 1
    apart = "; each task's runs ranked apart (other tasks' scores do not compare)" if ranked else ""
    title = f"{what}: val macro-F1 over every class, of the saved validation predictions{apart}"
    cells = [{"name": r.name, "kind": r.kind, "task": r.task, "model": r.model, "img": _int(r.img_size),
              "epochs": epochs_label(r.state, r.progress, r.epochs), "best ep": _int(r.best_epoch),
              "val macro-F1": _f4(r.val_macro_f1), "val acc": _f4(r.val_acc),
              "scored on": rows_label(r.scored_on, r.n_val), "time": duration(r.seconds),
              "options changed": r.changed} for r in df.itertuples(index=False)]
    caption = f"{STATE_NOTE}; {ROWS_NOTE}; {TIME_NOTE}"
    shown = [c for c, _ in BOARD_COLUMNS]
    from imgcls.console import results
    widths = _fit_widths(cells, shown, results.width) if results.is_terminal else None
    if results.is_terminal and widths is None:
        # a narrow terminal: columns left out until the others fit, no word of a cell folded (rich folds them as
        # it must where none do)
        for c in NARROW_LEFT_OUT:
            shown.remove(c)
            widths = _fit_widths(cells, shown, results.width)
            if widths is not None:
                break
        if widths is None:      # under about 52 columns: the names fold (a path at any character), no score does
            widths = _fit_widths(cells, shown, results.width, squeeze="name")
        left = [c for c, _ in BOARD_COLUMNS if c not in shown]
        caption = (f"left out to fit the terminal's {results.width} columns: {', '.join(left)} (a wider terminal or "
                   f"--csv - shows them); {caption}")
    t = _board_table(title, caption, cells, group if ranked else None, shown, widths)
    print_table(t, always=True)


BOARD_COLUMNS = (("name", "left"), ("kind", "left"), ("task", "left"), ("model", "left"), ("img", "right"),
                 ("epochs", "right"), ("best ep", "right"), ("val macro-F1", "right"), ("val acc", "right"),
                 ("scored on", "left"), ("time", "right"), ("options changed", "left"))
# the leaderboard's columns a terminal too narrow for them all leaves out, in this order, until the rest fit without
# folding a number or a word (80 columns: name, model, epochs, val macro-F1, scored on; under about 65 the model
# goes too, the run's name naming it: kept, it folded every column); --csv has every column
NARROW_LEFT_OUT = ("best ep", "time", "img", "kind", "val acc", "options changed", "task", "model")
# a column of long words a narrow terminal's table folds at this many characters rather than leave another out
NARROW_WIDTH = {"name": 20, "model": 17, "task": 12, "scored on": 14, "options changed": 24}
# where a column's words may fold in a terminal too narrow for the fewest columns whole (_fit_widths' squeeze: the
# names); narrower still (under about 44 columns), rich folds them all
SQUEEZED_WIDTH = 8


def _fit_widths(cells: list[dict], shown: Sequence[str], width: int, squeeze: str | None = None
                ) -> dict[str, int] | None:
    """{column: width} of the leaderboard's columns `shown` in a terminal `width` wide, each at least its longest
    word (a number whole; a longer word than NARROW_WIDTH folded there) and the room left shared out, the columns
    that need the least more to be unfolded first; None where even so they do not fit. The widths are set on the
    table: rich's own shrinking of a table too wide folds a score, a header or a short word as soon as a long
    cell. `squeeze`: a column whose words may fold down to SQUEEZED_WIDTH (the names, where even the fewest columns
    do not fit with them whole), given the room left first."""
    from rich.cells import cell_len         # a Korean character takes two columns
    room = width - (3 * len(shown) + 1)               # borders and a space either side of each cell
    least, most = {}, {}
    for c in shown:
        texts = [c] + [r[c] for r in cells]
        most[c] = max(cell_len(x) for x in texts)
        least[c] = min(NARROW_WIDTH.get(c, most[c]), max(cell_len(w) for x in texts for w in (x.split() or [""])))
    if squeeze is not None:
        least[squeeze] = min(least[squeeze], SQUEEZED_WIDTH)
    if sum(least.values()) > room:
        return None
    if sum(most.values()) <= room:
        return most
    widths, spare = dict(least), room - sum(least.values())
    # the squeezed column first (its words fold only where it must), then the least needy: as many whole as can be
    for c in sorted(shown, key=lambda c: (c != squeeze, most[c] - least[c])):
        give = min(most[c] - least[c], spare)
        widths[c] += give
        spare -= give
    return widths


def _board_table(title: str, caption: str, cells: list[dict], group: list | None, shown: Sequence[str],
                 widths: dict[str, int] | None = None):
    """The leaderboard's rich Table of the columns `shown` (print_leaderboard's cells); `group`: each row's task
    where the tasks are ranked apart (a line between them); `widths`: each column's, where a narrow terminal sets
    them (_fit_widths)."""
    from rich.table import Table
    t = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for c, just in BOARD_COLUMNS:
        if c in shown:
            t.add_column(c, justify=just, overflow="fold", width=(widths or {}).get(c))
    for i, row in enumerate(cells):
        t.add_row(*(row[c] for c in shown),
                  end_section=group is not None and i + 1 < len(group) and group[i + 1] != group[i])
    return t


STATE_NOTE = (f"epochs: done, of a finished run ('4/10, early stop': train's early stop ended it); '4/10' alone: "
              f"not known whether it finished (an early stop) or stopped (its last.pt gone, and its {METRICS_CSV} "
              f"without the values of its --metric); "
              f"'{STOPPED} 2/6': not finished, 2 of its 6 epochs done, and "
              f"nothing trains it ('{CRASHED} 2/6': an exception stopped it (a crash, not Ctrl-C nor a refusal), after "
              f"2 of its 6 epochs: its {TRAIN_LOG}'s last line names it; '{REFUSED} 0/6': a refusal stopped it "
              f"before its first epoch, its folder kept for its MLflow / W&B run or given by --exist-ok: its "
              f"{TRAIN_LOG}'s last line names it; "
              f"{RUNNING}: a train holds it now; {PRUNED} / {FAILED}: a tune trial Optuna pruned / "
              f"that failed; {DIVERGED}: its loss went NaN, no score; {FOLD_MISSING}: a finished k-fold set a fold was "
              f"removed from, no score, predict refuses it; {MEMBER_MISSING} a: an ensemble whose member a's "
              f"checkpoint is gone, predict refuses it); '{UNKNOWN}/6': its epochs done not known "
              f"(its {METRICS_CSV} malformed or gone, and "
              f"no {LAST_STATE} beside its {LAST_PT}); a k-fold set: its folds done and where the next one got")


def epochs_label(state, progress, epochs) -> str:
    """The table's epochs cell: epochs done of a finished run ('6', '4/10, early stop'), else the state and how
    far it got ('stopped 2/6', 'pruned folds done 1/3, fold_1 1/3'), or that nothing tells whether it finished
    ('4/10': an early stop could have ended it, its last.pt gone and its metrics.csv without the values of its
    --metric) or how far it got ('?/6'): never a bare count that reads as finished."""
    if state:
        return f"{state} {progress}".strip()
    done = re.fullmatch(rf"(\d+|{re.escape(UNKNOWN)})/(\d+)", str(progress))     # a run's 'done/set' alone
    if str(progress).endswith("early stop") or (done and (done[1] == UNKNOWN or int(done[1]) < int(done[2]))):
        return str(progress)
    return _int(epochs)


TIME_NOTE = (f"time: the epochs' training and validation passes ({METRICS_CSV}'s epoch_seconds summed; a k-fold set: "
             "every fold's), not the set-up, the weights or the image cache: a trial's wall time in tune's "
             f"{TRIALS_CSV} is longer")


ROWS_NOTE = (f"scored on: {VAL} = a run's validation rows, {OOF} = a k-fold set's out-of-fold rows (every fold's "
             f"validation), {COMMON} = the validation rows an ensemble's members share ({COMMON_OOF}: its members "
             f"are k-fold sets); '{CROSS_FITTED}': an ensemble whose weights were fitted on the rows it is scored "
             f"on, each row scored with weights fitted without it (its macro-F1; no accuracy is recorded so: val acc "
             f"blank); '{OPTIMISTIC}': no cross-fitted score recorded; scores over other rows compare only loosely, "
             f"and scores of another task (the column predicted and its class count: mask (3), label (18)) not at "
             f"all")


def rows_label(scored_on, n) -> str:
    """'val (84)', 'OOF (417)', 'common val (84), weights cross-fitted': which rows a score came from, how many."""
    if not scored_on or not n or (isinstance(n, float) and np.isnan(n)):     # nothing scored yet (a run in
        return ""                                                             # its first epoch): no rows
    rows, _, how = str(scored_on).partition(", ")
    return f"{rows} ({_int(n)})" + (f", {how}" if how else "")


def _int(v) -> str:
    return "" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(int(v))


def _f4(v) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"


def shown_score(v) -> float:
    """The score a score cell (_f4) stands for: `v` to 4 decimals, as the cell writes it (NaN, None: NaN)."""
    return float(_f4(v) or "nan")


def shown_change(a, b) -> float:
    """B - A of two scores as their cells show them (shown_score): what score_change writes, as a number."""
    return shown_score(b) - shown_score(a)


def score_change(a, b) -> str:
    """B - A of two scores as their cells show them (_f4): the difference of the shown values, so the three cells
    agree (0.12344 and 0.12356 are 0.1234 and 0.1236: +0.0002, where their own difference, 0.00012, was +0.0001),
    as duration_change's of two times."""
    return f"{shown_change(a, b):+.4f}"


def shown_seconds(s) -> int:
    """The seconds a time cell (duration) stands for: `s` rounded (half up) to the whole second, and an hour or more,
    which it shows as hours and minutes, to the whole minute (3,659 s is 1h01m, as 59.6 s is 1m00s; the seconds
    were cut there: 1h00m)."""
    s = float(s)
    whole = int(np.floor(s + 0.5))
    return int(np.floor(s / 60 + 0.5)) * 60 if whole >= 3600 else whole


def duration(s) -> str:
    """A time cell: 2m05s, or 1h02m from an hour on, each rounded (shown_seconds); '' for none."""
    if s is None or (isinstance(s, float) and np.isnan(s)):
        return ""
    s = shown_seconds(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def duration_change(a, b) -> str:
    """B - A of two times as their cells show them (duration): the difference of the shown values, so the three
    cells agree (1.84 s and 0.40 s are 0m02s and 0m00s: -0m02s, where their own difference, -1.44 s, was -0m01s)."""
    d = shown_seconds(b) - shown_seconds(a)
    return ("-" if d < 0 else "+") + duration(abs(d))


def write_table(df: pd.DataFrame, path: str | os.PathLike | None, fmt: str) -> str | None:
    """--csv / --json: to `path` (atomic) or, with path '-', returned for stdout."""
    text = df.to_csv(index=False) if fmt == "csv" else json.dumps(
        json.loads(df.to_json(orient="records")), indent=2) + "\n"
    if path is None or str(path) == "-":
        return text
    from imgcls.fsutil import write_text
    write_text(path, text)
    return None


# --------------------------------------------------------------------------------------------------------------
# diff
# --------------------------------------------------------------------------------------------------------------

def diff_runs(a: str | os.PathLike, b: str | os.PathLike) -> dict:
    """{'config': [(option, value in A, value in B)] of the options that differ in what the runs learned, 'ran': the
    names of those that differ only in where / how they ran (HOW_IT_RAN: --out, --name, --workers, ...),
    'metrics': [(metric, A, B, B - A)], 'per_class': DataFrame (class, f1_a, support_a, f1_b, support_b, delta_f1;
    an F1 NaN where that run has no validation row of the class, or lacks the class)}."""
    ra, rb = _must_read(a), _must_read(b)
    keys = list(dict.fromkeys([*ra.config, *rb.config]))
    if (ra.kind == "ensemble") != (rb.kind == "ensemble"):     # a run's options and an ensemble's have no key in common
        keys = [k for k in keys if k in ra.config and k in rb.config]
    differ = [(k, _fmt_value(ra.config.get(k, ""), False), _fmt_value(rb.config.get(k, ""), False)) for k in keys
              if ra.config.get(k) != rb.config.get(k)]
    cfg = [d for d in differ if d[0] not in HOW_IT_RAN]
    ran = [d[0] for d in differ if d[0] in HOW_IT_RAN]
    # the scores are over the same images when both runs scored the same rows, whatever each calls them (an
    # ensemble's common OOF rows are its k-fold members' OOF rows; a single run's val rows those of a one-fold set)
    # (a run rebuilt on a copy of the data elsewhere, its rows under another root, too: the same paths within it)
    same_rows = ra.row_keys is not None and (ra.row_keys == rb.row_keys or ra.row_paths == rb.row_paths)
    # an ensemble scored on the rows its weights were fitted on is optimistic there: not like-for-like with a score
    # that is not, over the same images or not
    optimistic = [r.name for r in (ra, rb) if r.scored_on.endswith(OPTIMISTIC)]
    mets = []
    for k in ("val_macro_f1", "val_acc", "n_val", "epochs", "best_epoch", "seconds"):
        va, vb = getattr(ra, k), getattr(rb, k)
        fa = float(va) if va is not None else float("nan")
        fb = float(vb) if vb is not None else float("nan")
        mets.append((k, fa, fb, fb - fa))
    pc = None
    if ra.per_class is not None and rb.per_class is not None:
        # the task's class order (A's classes, then any of B's alone): an outer merge sorts them as text (0, 1, 10,
        # 11, 2, ...), the order the printed table keeps among classes of the same change
        # a class with no validation row in a run has no F1 there (NaN: per_class_shown), nor a change
        from imgcls.metrics import per_class_shown
        order = pd.DataFrame({"class": list(dict.fromkeys([*ra.per_class["class"], *rb.per_class["class"]]))})
        pc = order.merge(per_class_shown(ra.per_class)[["class", "f1", "support"]], on="class", how="left").merge(
            per_class_shown(rb.per_class)[["class", "f1", "support"]], on="class", how="left", suffixes=("_a", "_b"))
        pc["delta_f1"] = pc["f1_b"] - pc["f1_a"]
        meanings = agreed_meanings([ra, rb])
        if meanings_of(ra) or meanings_of(rb):      # as per_class.csv: a meaning column, blank where the runs disagree
            pc.insert(1, "meaning", [meanings.get(str(c), "") for c in pc["class"]])
    # each run's best epoch (best.pt, its scores) was picked by its --metric (an ensemble picks none)
    picked = [run_metric(r.config.get("metric")) for r in (ra, rb) if r.kind != "ensemble"]
    # a run not scored (no saved validation predictions: stopped in its first epoch) has no rows to be other rows
    unscored = [ab for ab, r in (("A", ra), ("B", rb)) if not rows_label(r.scored_on or "val", r.n_val)]
    return {"a": ra, "b": rb, "config": cfg, "ran": ran, "metrics": mets, "per_class": pc, "same_rows": same_rows,
            "unscored": unscored, "picked_by": picked if len(set(picked)) == 2 else [],
            "same_task": same_task(ra.task, rb.task),    # a mask run's macro-F1 and a gender run's do not compare
            "optimistic": optimistic if len(optimistic) == 1 else [], "per_class_fitted": per_class_fitted((ra, rb))}


def per_class_fitted(runs: Sequence[Run]) -> list[str]:
    """The names of `runs` ranked on a cross-fitted macro-F1 (an ensemble whose weights were fitted on the rows it is
    scored on): only that score was cross-fitted; their per-class F1 (from their saved predictions) is of the
    weights fitted on those very rows (optimistic). runs diff and the runs report say so (per_class_fitted_note)."""
    return [r.name for r in runs if r.scored_on.endswith(CROSS_FITTED)]


def per_class_fitted_note(name: str, where: str) -> str:
    """What a per-class F1 table / heat map says of a run per_class_fitted names; `where`: where its cross-fitted
    val_macro_f1 is shown ('above', 'in the leaderboard')."""
    return (f"{name}'s per-class F1 is of its ensemble weights fitted on these rows (optimistic): its val_macro_f1 "
            f"{where} is the cross-fitted one")


def _must_read(path) -> Run:
    path = Path(path)
    if not path.exists() and not path.is_absolute() and (Path(DEFAULT_ROOT) / path).exists():
        path = Path(DEFAULT_ROOT) / path      # a name as the leaderboard lists it (runs/a, ensembles/e1: under outputs)
    if not path.exists():
        from imgcls.ensemble.config import ENSEMBLES_DIR
        from imgcls.fsutil import did_you_mean
        from imgcls.train.config import TrainConfig
        hint = did_you_mean(path, (TrainConfig.out, ENSEMBLES_DIR)) or \
            ("" if path.is_absolute() else did_you_mean(Path(DEFAULT_ROOT) / path))    # a leaderboard name mistyped
        raise UserError(f"{path} does not exist{hint}; give a "
                        f"folder under outputs/runs or outputs/ensembles; {RUNS_TABLE} lists them")
    if (path / SPEC_NAME).is_file():
        _ensemble_doc(path / SPEC_NAME)         # a malformed one: its one line, not the listing's warning
    run = read_run(path)
    kind = output_kind(path) if run is None else None
    if kind in ("tune study", "predictions"):
        from imgcls.outputs import not_a_run
        raise UserError(not_a_run(path, kind, "a folder under outputs/runs or outputs/ensembles"))
    if run is None:
        raise UserError(f"{path} is not a run folder (no {RUN_CONFIG} or ensemble {SPEC_NAME}); give a folder under "
                        f"outputs/runs or outputs/ensembles")
    return run


def print_diff(d: dict) -> None:
    from imgcls.console import print_heading, print_table
    print_heading(f"A: {d['a'].path}\nB: {d['b'].path}")      # on stdout, before its tables
    ran = d.get("ran", [])
    t = _diff_table("options that differ",
                    f"also differ in where / how they ran, not in what they learned: {', '.join(ran)}" if ran else None)
    for c in ("option", "A", "B"):
        t.add_column(c, overflow="fold")
    for k, va, vb in d["config"]:
        t.add_row(k, va, vb)
    if (d["a"].kind == "ensemble") != (d["b"].kind == "ensemble"):
        t.add_row("(a run and an ensemble: their options are not compared; the metrics are)", "", "")
    elif not d["config"]:
        t.add_row("(none differ in what they learned)" if ran else "(none differ)", "", "")
    print_table(t, always=True)
    same, optimistic = d.get("same_rows", True), d.get("optimistic", [])
    same_task, unscored = d.get("same_task", True), d.get("unscored", [])
    caption = (f"A predicts {d['a'].task}, B {d['b'].task}: scores of other tasks do not compare" if not same_task
               else f"{' and '.join(unscored)} {'has' if len(unscored) == 1 else 'have'} no saved validation "
               f"predictions: no scores to compare" if unscored
               else "A and B are scored on different images: their val_macro_f1 / val_acc difference is not a "
               "like-for-like comparison" if not same else
               f"{optimistic[0]}'s ensemble weights were fitted on the rows it is scored on (optimistic): the "
               f"val_macro_f1 / val_acc difference is not a like-for-like comparison" if optimistic else None)
    picked = d.get("picked_by", [])
    if picked:      # one line, whatever else the caption says
        by = f"A's by {BEST_BY[picked[0]].label}, B's by {BEST_BY[picked[1]].label}"
        caption = "; ".join(c for c in (caption, f"best_epoch and the scores at it were picked by other --metric: {by}")
                            if c)
    m = _diff_table("metrics (val macro-F1 over every class, from the saved validation predictions)", caption)
    for c in ("metric", "A", "B", "B - A"):
        m.add_column(c, justify="right" if c != "metric" else "left")
    if not same_task:
        m.add_row("task", d["a"].task, d["b"].task, "other task")
    m.add_row("scored on", rows_label(d["a"].scored_on, d["a"].n_val), rows_label(d["b"].scored_on, d["b"].n_val),
              "" if not same_task or unscored else "same rows" if same else "other rows")
    for k, va, vb, dv in d["metrics"]:
        fmt = duration if k == "seconds" else (_f4 if k in ("val_macro_f1", "val_acc") else _int)
        if np.isnan(dv):
            delta = ""
        elif k == "seconds":
            delta = duration_change(va, vb)
        else:
            delta = score_change(va, vb) if k in ("val_macro_f1", "val_acc") else f"{dv:+.0f}"
            if k in ("val_macro_f1", "val_acc") and (not same_task or not same or optimistic):
                delta += " (other task)" if not same_task else " (other rows)" if not same else " (optimistic)"
        if k == "epochs":       # a run not finished says so, as the leaderboard's cell ('stopped 2/6', 'running 3/6')
            va, vb = (epochs_label(r.state, r.progress, v) for r, v in ((d["a"], va), (d["b"], vb)))
            fmt = str
        m.add_row("time (epochs)" if k == "seconds" else k, fmt(va), fmt(vb), delta)
    print_table(m, always=True)
    if same_task:        # another task's class '0' is another class: no per-class comparison
        caveats = [] if unscored else [c for c in (
            "A and B are scored on different images: not a like-for-like comparison" if not same else
            f"{optimistic[0]}'s ensemble weights were fitted on the rows it is scored on (optimistic): not a "
            f"like-for-like comparison" if optimistic else None,
            *(per_class_fitted_note(n, "above") for n in d.get("per_class_fitted", []))) if c]
        _print_per_class(d["per_class"], "; ".join(caveats) or None)


def _diff_table(title: str, caption: str | None):
    """A table of runs diff, its title and caption left-aligned and as wide as they are where the terminal has
    room: a narrow table (one option differing) folded them into a column of its width."""
    from rich.table import Table
    return Table(title=title, title_justify="left", caption=caption, caption_justify="left",
                 min_width=max(len(title), len(caption or "")))


DIFF_CLASSES = 10       # runs diff prints the classes of the largest F1 change, this many (diff_runs returns all)


def _print_per_class(pc: pd.DataFrame | None, caveat: str | None = None, top: int = DIFF_CLASSES) -> None:
    """diff_runs' per-class table: each class's F1 in A and B and B - A, the largest change first (a class scored
    by one run alone last), `top` of them and a line saying how many more changed less; a class whose change rounds
    to zero at the table's 4 decimals is not listed but counted unchanged in that line (every class unchanged: the
    line alone); classes named with what they mean where both runs agree (profiles.class_titles, as the runs
    report's heat map names them)."""
    from imgcls.console import print_heading, print_table
    from imgcls.metrics import NOT_SCORED
    from imgcls.profiles import class_titles
    if pc is None or not len(pc):
        return
    # each change as its cells show it (shown_change: the difference of the shown F1s, not of the exact ones)
    change = [abs(shown_change(a, b)) for a, b in zip(pc["f1_a"], pc["f1_b"])]
    pc = pc.assign(_change=change).sort_values("_change", ascending=False, na_position="last", kind="stable")
    meanings = dict(zip(pc["class"].astype(str), pc["meaning"])) if "meaning" in pc.columns else {}
    # a class of no change as printed (+0.0000) is said in the line under the table, with those past the top
    still = pc["_change"].round(4) == 0
    listed_, unchanged = pc[~still], int(still.sum())
    shown, rest = listed_.head(top), listed_.iloc[top:]
    title = "per-class F1 (saved validation predictions)"
    if not len(shown):
        print_heading(f"{title}: every class unchanged ({unchanged} classes)"
                      + (f"; {caveat}" if caveat else ""))
        return
    # a class with no validation row in one run has no change to state: counted apart, not said unchanged
    compared, alone = int(rest["_change"].notna().sum()), int(rest["_change"].isna().sum())
    parts = [f"{n} {what}" for n, what in (
        (compared, f"changed by at most {rest['_change'].max():.4f}"), (unchanged, "unchanged"),
        (alone, "not compared (no validation rows of the class in one run)")) if n]
    more = len(rest) + unchanged
    notes = [f"{more} more class(es) {parts[0].split(' ', 1)[1]}" if len(parts) == 1 else
             f"{more} more class(es): {', '.join(parts)}"] if more else []
    def cell(f1, support) -> str:      # a class of the run with no validation row: not scored; one it lacks: blank
        return NOT_SCORED if support == 0 else _f4(f1)
    unscored = any((shown[f"support_{ab}"] == 0).any() for ab in "ab" if f"support_{ab}" in shown)
    notes += [f"{NOT_SCORED}: no validation rows of the class in that run (its F1 0 counts in the macro-F1)"] \
        if unscored else []
    caption = "; ".join(notes + ([caveat] if caveat else []))
    t = _diff_table(f"{title}, the largest change first", caption or None)
    for c in ("class", "A", "B", "B - A"):
        t.add_column(c, justify="left" if c == "class" else "right", overflow="fold")
    for name, r in zip(class_titles(shown["class"].astype(str).tolist(), meanings), shown.itertuples(index=False)):
        t.add_row(name, cell(r.f1_a, r.support_a), cell(r.f1_b, r.support_b),
                  "" if np.isnan(r.delta_f1) else score_change(r.f1_a, r.f1_b))
    print_table(t, always=True)


# --------------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------------

def write_runs_report(runs: Sequence[Run], out: str | os.PathLike, root: str | os.PathLike, max_runs: int = 20) -> Path:
    """One self-contained page comparing runs: the leaderboard (each task's runs ranked apart), and for each task
    its runs' val macro-F1 curves overlaid and a per-class F1 heat map across them (the `max_runs` best of each)."""
    from imgcls import report
    board = leaderboard(runs)
    by_path = {r.name: r for r in runs}
    groups = task_groups(board["task"])     # a run recording no class count with the one task of its column
    top = [by_path[n] for n in board.groupby(board["task"].map(groups), sort=False).head(max_runs)["name"]]
    # one chart of curves and one heat map per task: another task's macro-F1 does not compare (a 2-class gender
    # run's beside 18-class runs'), and its class '0' is another class (a mask run's is not a gender run's)
    tasks = sorted(dict.fromkeys(groups[r.task] for r in top), key=task_rank)
    of_task = {t: [r for r in top if groups[r.task] == t] for t in tasks}
    named = {t: t if len(tasks) > 1 else "" for t in tasks}       # the chart's title names its task among several
    curves = "".join((report.img(uri, f"val macro-F1 by epoch: {t}") if uri else "")
                     + (report.note(_no_curve_note(bare)) if bare else "")
                     for t in tasks for uri, bare in [(_curves_uri(of_task[t], named[t]), _no_f1_curve(of_task[t]))])
    heat = "".join(report.img(uri, f"per-class F1 across runs: {t}")
                   + "".join(report.note(per_class_fitted_note(n, "in the leaderboard"))
                             for n in per_class_fitted([r for r in of_task[t] if r.per_class is not None]))
                   for t in tasks for uri in [_heat_uri(of_task[t], named[t])] if uri)
    shown = board.assign(time=[duration(s) for s in board["seconds"]]).drop(columns=["seconds"])
    return report.write_report(out, "runs.html", title=f"imgcls runs: {root}",
                               subtitle=f"{listed(board['kind'])}; val macro-F1 over every class of the task, "
                                        f"of each run's saved validation predictions; {ROWS_NOTE} "
                                        f"(scored_on, n_val); state: blank for a finished run, an ensemble, or a "
                                        f"run not known to have finished or stopped (progress 4/10 alone: an early "
                                        f"stop could have ended it, its last.pt gone and its {METRICS_CSV} without "
                                        f"the values of its --metric; or {UNKNOWN}/6), else {STOPPED} "
                                        f"(ended before its epochs or last fold), {CRASHED} (an exception stopped "
                                        f"it: its {TRAIN_LOG}'s last line names it), {REFUSED} (a refusal stopped "
                                        f"it before its first epoch, its folder kept for its tracker's run or "
                                        f"given by --exist-ok: its {TRAIN_LOG}'s last line names it), "
                                        f"{RUNNING}, {PRUNED} or {FAILED} (a tune trial); progress: epochs done / "
                                        f"set ({UNKNOWN} where its {METRICS_CSV} is malformed or gone and no "
                                        f"{LAST_STATE} beside its {LAST_PT} tells them; a k-fold set: folds done, "
                                        f"and where the next fold got); {TIME_NOTE}",
                               leaderboard=report.safe(report.table(shown, digits=4)),
                               curves=report.safe(curves) if curves else "",
                               heat=report.safe(heat) if heat else "")


def _f1_curve_column(history: pd.DataFrame | None) -> str | None:
    """The val macro-F1 column of a run's metrics.csv table (val_f1 in one an older imgcls wrote); None where it
    has neither (written by hand, cut down) or the run has no metrics.csv rows."""
    if history is None or not len(history):
        return None
    column = metric_column("macro_f1", history.columns)
    return column if column in history.columns else None


def _no_f1_curve(runs: Sequence[Run]) -> list[str]:
    """The names of `runs` whose metrics.csv has rows but no val macro-F1 column: the report draws no curve of
    theirs and says so."""
    return [r.name for r in runs if r.history is not None and len(r.history) and _f1_curve_column(r.history) is None]


def _no_curve_note(names: Sequence[str]) -> str:
    """The report's line under the curves for runs it drew none of (_no_f1_curve)."""
    return (f"no val macro-F1 curve of {', '.join(names)}: {'its' if len(names) == 1 else 'their'} {METRICS_CSV} "
            f"has no val_macro_f1 (or val_f1) column")


def _curves_uri(runs: Sequence[Run], task: str = "") -> str:
    """The val macro-F1 curves of `runs` (of one task: their scores compare) overlaid; `task` named in its title
    where the report has several. A run whose metrics.csv has no such column has no curve (_no_f1_curve)."""
    from matplotlib.ticker import MaxNLocator
    from imgcls.report import figure_data_uri, pyplot
    plotted = [(r, r.history) for r in runs if _f1_curve_column(r.history)]
    if not plotted:
        return ""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for r, h in plotted:
        f1 = _f1_curve_column(h)
        curve = h.assign(_f1=pd.to_numeric(h[f1], errors="coerce")).groupby("epoch")["_f1"].mean()
        label = f"{r.name} (mean of {h['fold'].nunique()} folds)" if "fold" in h.columns else r.name
        ax.plot(curve.index, curve.to_numpy(), "o--" if "fold" in h.columns else "o-", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"val macro-F1 ({METRICS_CSV}; a k-fold set: its folds' mean)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if task:
        ax.set_title(f"val macro-F1 by epoch: {task}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return figure_data_uri(fig)


def _heat_uri(runs: Sequence[Run], task: str = "") -> str:
    """The per-class F1 of `runs` (of one task: their classes are one set) as a heat map; `task` named in its
    title where the report has several."""
    from imgcls.report import figure_data_uri, pyplot, tick_labels
    have = [r for r in runs if r.per_class is not None]
    if not have:
        return ""
    classes = list(dict.fromkeys(c for r in have for c in r.per_class["class"]))
    meanings = agreed_meanings(have)
    from imgcls.metrics import NOT_SCORED, per_class_shown
    mat = np.full((len(have), len(classes)), np.nan)
    unscored = np.zeros(mat.shape, bool)      # a class of the run with no validation row: '–', not an F1 0
    for i, r in enumerate(have):
        f = dict(zip(r.per_class["class"], per_class_shown(r.per_class)["f1"]))
        mat[i] = [f.get(c, np.nan) for c in classes]
        none = set(r.per_class.loc[r.per_class["support"] == 0, "class"]) if "support" in r.per_class else set()
        unscored[i] = [c in none for c in classes]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(min(18, 3 + 0.5 * len(classes)), min(14, 1.5 + 0.4 * len(have))))
    im = ax.imshow(mat, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    from imgcls.profiles import class_titles
    ax.set_xticks(range(len(classes)), tick_labels(class_titles(classes, meanings), 7), rotation=90, fontsize=7)
    ax.set_yticks(range(len(have)), [r.name for r in have], fontsize=7)
    if mat.size <= 400:
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                if not np.isnan(mat[i, j]) or unscored[i, j]:
                    ax.text(j, i, NOT_SCORED if unscored[i, j] else f"{mat[i, j]:.2f}", ha="center", va="center",
                            fontsize=6, color="black" if unscored[i, j] or mat[i, j] >= 0.5 else "white")
    ax.set_xlabel("class")
    ax.set_title("per-class F1 (saved validation predictions)" + (f": {task}" if task else ""))
    fig.colorbar(im, ax=ax, fraction=0.03)
    return figure_data_uri(fig)


# --------------------------------------------------------------------------------------------------------------
# The step: `imgcls runs [DIR]`, `imgcls runs report [DIR]`, `imgcls runs diff A B`
# --------------------------------------------------------------------------------------------------------------

ACTIONS = {"table": "imgcls runs [DIR] (the leaderboard)", "report": "imgcls runs report", "diff": "imgcls runs diff"}
# the actions each option acts in (an option not listed acts in every one)
OPTION_ACTIONS = {"sort": ("table", "report"), "filter": ("table", "report"), "csv": ("table",), "json": ("table",),
                  "out": ("report",)}


def run_runs(action: str = "table", paths: Sequence[str | os.PathLike] = (), cfg: RunsConfig | None = None,
             typed: Sequence[str] | None = None):
    """What `imgcls runs` does. action "table": the leaderboard of every run under paths[0] (default outputs),
    printed, or written to cfg.csv / cfg.json ('-': to stdout instead); returns it. "report": one HTML page
    comparing those runs (cfg.out, default DIR/runs_report.html); returns its path, absolute. "diff": paths = two runs,
    printed; returns diff_runs' dict. A Python caller's console.set_quiet(True) prints neither table nor diff (they
    are returned); the command's --quiet prints them, its output. `typed`: the options given (default: those not at their default); one that
    does nothing in this action is refused in one line, as is a path that cannot be written, before any run is
    read."""
    from imgcls.fsutil import check_file_name_encoding
    check_file_name_encoding()     # as every command: a non-ASCII name misread or left out
    import sys
    from imgcls.console import info
    from imgcls.fsutil import check_writable
    from imgcls.options import check, check_arguments, path_list, set_options
    check_arguments("run_runs", cfg=(cfg, RunsConfig))
    more = ", 'OTHER_RUN'" if action == "diff" else ""
    paths = path_list("run_runs", "paths", paths, f"run_runs({action!r}, [{{p}}{more}])")
    cfg = cfg or RunsConfig()
    check(cfg)
    if action not in ACTIONS:
        raise UserError(f"unknown runs action '{action}'; use one of: {', '.join(ACTIONS)}")
    if typed is None:
        typed = set_options(cfg)
    for name in sorted(typed):
        if action not in OPTION_ACTIONS.get(name, (action,)):
            acting = OPTION_ACTIONS[name]
            raise UserError(python_too(
                f"--{name} acts only with {' or '.join(ACTIONS[a] for a in acting)}, not with {ACTIONS[action]}; "
                f"drop --{name}",
                f"{name}= acts only with {' or '.join(f'run_runs({a!r})' for a in acting)}, not with "
                f"run_runs({action!r}); drop {name}="))
    for flag, dest, example in (("--csv", cfg.csv, "runs.csv"), ("--json", cfg.json, "runs.json"),
                                ("--out", cfg.out, "runs_report.html")):
        if dest is not None and str(dest) != "-":
            check_writable(dest, "file", flag, example=example)
    paths = [Path(p) for p in paths]
    if action == "diff":
        if len(paths) != 2:
            raise UserError("runs diff takes two run folders: " + python_too(
                "imgcls runs diff outputs/runs/A outputs/runs/B",
                "run_runs('diff', ['outputs/runs/A', 'outputs/runs/B'])"))
        d = diff_runs(*paths)
        print_diff(d)
        return d
    if len(paths) > 1:
        raise UserError(f"runs takes one folder (got {len(paths)}: {' '.join(map(str, paths))}); e.g. "
                        + python_too(f"imgcls runs {DEFAULT_ROOT}", f"run_runs('table', [{DEFAULT_ROOT!r}])"))
    root = paths[0] if paths else Path(DEFAULT_ROOT)
    found = find_runs(root)
    if not found:
        raise UserError(f"no run under {root} (a folder with {RUN_CONFIG} from imgcls train, or an ensemble's "
                        f"{SPEC_NAME}); give the folder your runs are under")
    board = leaderboard(found, cfg.sort, cfg.filter)
    if action == "report":
        keep = set(board["name"])
        path = write_runs_report([r for r in found if r.name in keep], Path(cfg.out or root / "runs_report.html"),
                                 root)
        info(f"wrote {path} ({listed(board['kind'])})" if not cfg.filter else
             f"wrote {path} ({listed(board['kind'])} of the {listed([r.kind for r in found])} under {root}, those "
             f"--filter kept)")
        return Path(os.path.abspath(path))      # as run_train's and build_ensemble's: a notebook may change folder
    to_stdout = False
    for fmt, dest in (("csv", cfg.csv), ("json", cfg.json)):
        if dest is not None:
            text = write_table(board, dest, fmt)
            if text is not None:
                sys.stdout.write(text)
                to_stdout = True
            else:
                from imgcls.console import plural
                info(f"wrote {dest} ({plural(len(board), 'row')})")
    if not to_stdout:
        print_leaderboard(board, root, of=[r.kind for r in found], filters=cfg.filter, sort=cfg.sort)
    return board
