"""A training run's report.html: summary, curves, per-class table, confusion matrices (raw and row-normalised) and
the worst-predicted validation images with their top-3 probabilities. Written by `imgcls train` after each run (and
for a k-fold set after its folds, from the out-of-fold predictions); `write_run_report(RUN)` rewrites it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from imgcls.figure_files import RUN_FIGURES, not_drawn
from imgcls.options import python_too
from imgcls.outputs import REPORT_HTML
from imgcls.profiles import class_titles
from imgcls.run_names import BEST_BY, METRICS_CSV, PER_CLASS_CSV, VAL_PREDICTIONS, fold_set, run_metric
from imgcls.train.rundir import PER_CLASS, read_run_csv, read_validation, set_fold_dirs

N_WORST = 24
NAN_PROBS = "none: its probabilities are NaN (the loss diverged)"
NO_PLOTS = not_drawn(f"{METRICS_CSV} and {PER_CLASS_CSV} hold their numbers")
# a tune trial's (and its folds'): tune turns the trials' figures off itself, whether or not --no-plots was typed
TRIAL_NO_PLOTS = (f"figures not drawn: tune's trials draw none unless {python_too('--trial-plots', 'trial_plots=True')}"
                  f" (none at all with --no-plots): {METRICS_CSV} and {PER_CLASS_CSV} hold their numbers")


def figure_names() -> tuple[str, ...]:
    """The figures train draws into a run folder (and a k-fold set's, from its out-of-fold predictions):
    figure_files.RUN_FIGURES, which rundir.RUN_FILES lists too."""
    return RUN_FIGURES


def drop_figures(run_dir: Path) -> None:
    """A --no-plots run's folder holds no figure: those an earlier session of the run drew (resumed with --no-plots)
    would show fewer epochs than it trained."""
    for name in figure_names():
        (Path(run_dir) / name).unlink(missing_ok=True)


def no_plots_note(run_dir: Path) -> str:
    """Why a run folder holds no figures, in report.html: a tune trial's (its folder in a study's, or a fold of one:
    outputs.output_kind) were turned off by tune, not by a --no-plots the user typed."""
    from imgcls.outputs import output_kind
    run_dir = Path(run_dir)
    trial = fold_set(run_dir) or run_dir      # a run named fold_0 in a trial's folder is no fold of the trial
    trial = trial.parent
    return TRIAL_NO_PLOTS if output_kind(trial) == "tune study" else NO_PLOTS


def worst_predictions(preds: pd.DataFrame, n: int = N_WORST) -> pd.DataFrame:
    """The `n` rows whose true class got the lowest probability: path, root, label, pred, p_true, top3 ("cls p").
    A row with no probabilities (a diverged run's NaN, written as empty cells) comes first, its top3 saying so."""
    classes = [c[2:] for c in preds.columns if c.startswith("p_")]
    ok = preds["label"].astype(str).isin(classes)
    df = preds[ok].reset_index(drop=True)
    if df.empty:
        return df.assign(p_true=[], top3=[])
    P = df[[f"p_{c}" for c in classes]].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    idx = {c: i for i, c in enumerate(classes)}
    p_true = P[np.arange(len(df)), df["label"].astype(str).map(idx).to_numpy()]
    from imgcls.train.rundir import nan_probability_mask
    nan = nan_probability_mask(df[[f"p_{c}" for c in classes]])
    order = np.argsort(np.where(nan, -1.0, p_true), kind="stable")[:n]
    top = np.argsort(-P, axis=1)[:, :3]
    out = df.iloc[order][[c for c in ("path", "root", "label", "pred", "fold") if c in df.columns]].copy()
    out["p_true"] = np.where(nan, np.nan, p_true)[order]
    out["top3"] = [NAN_PROBS if nan[i] else "  ".join(f"{classes[j]} {P[i, j]:.2f}" for j in top[i]) for i in order]
    return out.reset_index(drop=True)


def _p_text(p: float) -> str:
    """A worst prediction's probability of its true class as the report shows it: 'NaN' for a diverged run's row."""
    return "NaN" if np.isnan(p) else f"{p:.2f}"


def recorded_meanings(run_dir: Path) -> dict[str, str]:
    """What the run's classes mean, as its per_class.csv recorded them (its meaning column, from the checkpoint's
    metadata: ModelMeta.class_meanings); {} where it has none (no such file yet). A malformed file is
    rundir.read_run_csv's one line."""
    pc = Path(run_dir) / PER_CLASS_CSV
    if not pc.is_file():
        return {}
    t = read_run_csv(pc, PER_CLASS, dtype=str)
    return dict(zip(t["class"], t["meaning"])) if {"class", "meaning"} <= set(t.columns) else {}


def kfold_set(run) -> bool:
    """Whether a read run (runs.read_run) is a k-fold set, scored on its out-of-fold rows: a tune trial's set too,
    whose kind reads 'trial'."""
    from imgcls.runs import OOF
    return run.scored_on == OOF


def rows_scored(run) -> str:
    """Which rows the per-class table is over and how many, as predict's report says it: '37 val rows, best epoch
    3'; a k-fold set's '417 out-of-fold rows, each fold's best epoch'. '' before any validation predictions."""
    if run.per_class is None:
        return ""
    from imgcls.metrics import missing_rows_note
    pc = run.per_class
    # a class with no scored row is in the table as support 0, F1 0 and counted in the macro-F1: said by name
    missing = pc.loc[pc["support"] == 0, "class"].astype(str).tolist() if "support" in pc else []
    if kfold_set(run):
        said = f"{run.n_val} out-of-fold rows, each fold's best epoch"
    else:
        said = f"{run.n_val} val rows" + (f", best epoch {run.best_epoch}" if run.best_epoch else "")
    note = missing_rows_note(missing, len(pc), "out-of-fold" if kfold_set(run) else "val")
    return said + (f"; {note}" if note else "")


def write_run_report(run_dir: str | os.PathLike) -> Path:
    from imgcls import report
    from imgcls.metrics import NOT_SCORED, per_class_shown
    from imgcls.runs import duration, read_run
    run_dir = Path(run_dir)
    preds_path = run_dir / VAL_PREDICTIONS
    # none before the first validation: the report says so; a malformed one is one line (read before read_run, whose
    # warning of it would come first)
    preds = read_validation(preds_path, dtype={"label": str, "pred": str}) if preds_path.is_file() else None
    meanings = recorded_meanings(run_dir)       # its per_class.csv: read_run reads it too (the recorded scores)
    run = read_run(run_dir)
    cfg = run.config
    summary = [("run", str(run_dir)), ("model", run.model), ("input size", run.img_size),
               ("classes", len(run.classes)), ("epochs done", f"{run.epochs or 0} of {cfg.get('epochs', '?')}"
                                                             + (" per fold" if kfold_set(run) else "")),
               ("training time", duration(run.seconds))]
    folds_html = ""
    if kfold_set(run):
        summary.append(("out-of-fold val macro-F1", f"{run.val_macro_f1:.4f} on {run.n_val} images (every fold's "
                                                    "best epoch, each on its own validation rows)"))
        summary.append(("out-of-fold accuracy", f"{run.val_acc:.4f}"))
        rows = []
        for d in set_fold_dirs(run_dir)[0]:     # the set's folds: a fold_2 copied in is no row of its table
            fr = read_run(d)
            if fr is not None:
                rows.append({"fold": d.name.split("_", 1)[1], "best epoch": fr.best_epoch, "epochs": fr.epochs,
                             "val macro-F1": fr.val_macro_f1, "val acc": fr.val_acc, "val images": fr.n_val,
                             "time": duration(fr.seconds), "report": f"{d.name}/{REPORT_HTML}"})
        folds_html = report.table(rows, digits=4)
    else:
        metric = run_metric(run.config.get("metric"))
        by = f" (by {BEST_BY[metric].label}, the run's --metric)" if metric != "macro_f1" else ""
        summary += [("best epoch", f"{run.best_epoch}{by}" if run.best_epoch and by else run.best_epoch),
                    ("val macro-F1 at the best epoch", f"{run.val_macro_f1:.4f} on {run.n_val} validation images"
                     if run.n_val else "-"),
                    ("val accuracy at the best epoch", f"{run.val_acc:.4f}" if run.n_val else "-")]
    if run.changed:
        summary.append(("options changed from the defaults", run.changed))
    if run.per_class is not None and meanings and "meaning" not in run.per_class:
        run.per_class.insert(1, "meaning", [meanings.get(c, "") for c in run.per_class["class"]])
    # a class with no val row: '–' for what it has no score of (rows_scored's note says how the macro-F1 counts it)
    per_class = report.table(per_class_shown(run.per_class), digits=4, max_rows=1000, blank=NOT_SCORED) \
        if run.per_class is not None else report.note("no validation predictions yet")
    curves_png, *confusion_pngs = figure_names()
    plots = cfg.get("plots", True) is not False
    confusion = "".join(report.img(run_dir / f, f) for f in confusion_pngs) if plots else ""
    worst_html, n_worst = report.note("none"), 0
    if preds is not None:
        worst = worst_predictions(preds)
        n_worst = len(worst)
        figs = []
        for r in worst.itertuples(index=False):
            src = Path(r.root, r.path) if getattr(r, "root", "") else Path(r.path)
            figs.append(report.figure([(report.thumb_data_uri(src, 128, cfg.get("max_pixels")), str(r.path))],
                                      [str(r.path), f"true {class_titles([r.label], meanings)[0]} "
                                                    f"(p {_p_text(r.p_true)})", f"top-3: {r.top3}"]))
        worst_html = "".join(figs) or worst_html
    curves = run_dir / curves_png
    S = report.safe
    return report.write_report(
        run_dir / REPORT_HTML, "train_run.html", title=f"imgcls train: {run_dir.name}",
        subtitle=f"{run.kind}, {run.model}; scores are macro-F1 over every class of the task",
        summary=S(report.key_values(summary)), folds=S(folds_html),
        curves=S(report.img(curves, "training curves")) if plots and curves.is_file() else "",
        no_plots="" if plots else no_plots_note(run_dir),
        per_class=S(per_class), per_class_note=rows_scored(run),
        confusion=S(confusion), worst=S(worst_html), n_worst=n_worst,
        worst_note="out-of-fold" if kfold_set(run) else (f"best epoch {run.best_epoch}" if run.best_epoch
                                                                else ""))
