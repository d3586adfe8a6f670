"""What a study leaves behind: trials.csv, best_config.yaml, report.html (Optuna's matplotlib plots embedded),
the printed top-5 table, and the bounded disk use of --keep best-K."""
from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from imgcls.figure_files import not_drawn
from imgcls.options import shown
from imgcls.outputs import BEST_CONFIG, REPORT_HTML, TRIALS_CSV, trial_dir
from imgcls.train.config import TrainConfig
from imgcls.tune.space import trial_options

TOP = 5
NO_PLOTS = not_drawn(f"Optuna's plots neither; {TRIALS_CSV} holds their numbers")


def _state(t) -> str:
    return t.state.name.lower()


# the message of a trial whose process died as it ran (kill -9, the OOM killer, a lost machine): failed by the next
# tune process on its machine (imgcls.tune._fail_killed_trials), or by Optuna's heartbeat check (tune's storage beats
# every 60 s), which leaves no message: tune records one for every other way a trial fails
KILLED = "killed: its process ended while the trial ran (seconds not known)"


def killed(t) -> bool:
    from optuna.trial import TrialState
    return t.state == TrialState.FAIL and t.user_attrs.get("message", KILLED) == KILLED


def _seconds(t) -> float | None:
    if t.datetime_start is None or t.datetime_complete is None or killed(t):
        return None     # a killed trial's end is when it was found dead, not when it stopped
    return round((t.datetime_complete - t.datetime_start).total_seconds(), 1)


def trials_frame(study, keep: int | None = None) -> pd.DataFrame:
    """One row per trial: number, state, value, seconds, epochs run (epochs_run: the trial's, over all its folds;
    with folds, folds: the folds it was set to train, and epochs_by_fold: 'fold_0=3 fold_1=1'), each parameter,
    run folder, checkpoints ('removed (--keep best-K)' for a trial whose checkpoints --keep deletes, one that ran an
    epoch), process,
    message."""
    names = []
    for t in study.trials:
        names += [n for n in t.params if n not in names]
    removed = outside_best(study, keep)
    rows = []
    for t in study.trials:
        row = {"trial": t.number, "state": _state(t), "value": t.value, "seconds": _seconds(t),
               "epochs_run": t.user_attrs.get("epochs_run", len(t.intermediate_values)),
               "folds": t.user_attrs.get("folds"),
               "epochs_by_fold": " ".join(f"fold_{k}={n}" for k, n in (t.user_attrs.get("fold_epochs") or {}).items())}
        row.update({n: t.params.get(n) for n in names})
        row.update(run_dir=t.user_attrs.get("run_dir", ""),
                   # a trial stopped before its first epoch never had a checkpoint to remove
                   checkpoints=f"removed (--keep best-{keep})" if t.number in removed and row["epochs_run"] else "",
                   process=t.user_attrs.get("process", ""),
                   message=KILLED if killed(t) else t.user_attrs.get("message", ""))
        rows.append(row)
    return pd.DataFrame(rows, columns=trial_columns(names))


SEARCH_USED = "sampler_pruner"      # a trial's user attr: the '--sampler / --pruner' that drew and watched it


def search_used(study, cfg) -> str:
    """The report's sampler / pruner: this command's, and, where the study's trials ran with others (an earlier
    command's, another process's) or a trial records none (an imgcls before the record), how many trials each
    drew and watched, as recorded: the trials count is the whole study's, not only this command's."""
    from collections import Counter
    now = f"{cfg.sampler} / {cfg.pruner}"
    used = Counter(t.user_attrs.get(SEARCH_USED) or "not recorded" for t in study.trials)
    if not used or set(used) == {now}:
        return now + (" (every trial)" if used else "")
    return (f"{now} (this command); by trial: "
            + ", ".join(f"{k} {n}" for k, n in sorted(used.items(), key=lambda kv: -kv[1])))


def trial_columns(names=()) -> list[str]:
    """trials.csv's columns, around the drawn parameters' `names` (none: the table of a study with no trial yet)."""
    return ["trial", "state", "value", "seconds", "epochs_run", "folds", "epochs_by_fold", *names, "run_dir",
            "checkpoints", "process", "message"]


def completed(study) -> list:
    """Finished trials, best first."""
    from optuna.study import StudyDirection
    from optuna.trial import TrialState
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    return sorted(done, key=lambda t: t.value, reverse=study.direction == StudyDirection.MAXIMIZE)


def best_config(study, cfg) -> TrainConfig | None:
    """The best trial's options as a config `imgcls train --config` starts from (written to the default run folder,
    not into the study)."""
    done = completed(study)
    if not done:
        return None
    d = dict(done[0].user_attrs.get("config") or trial_options(cfg.train, done[0].params))
    # not the records of the run tune's --config came from (another machine's amp_used / workers_used): the trial's
    # own are in its config.yaml
    d.update(out=TrainConfig.out, name=None, **{k: None for k in TrainConfig.RECORDS})
    return TrainConfig.from_dict(d)


def write_tables(study, cfg, study_dir: Path) -> None:
    """trials.csv and best_config.yaml (cheap: after every trial, so a killed process leaves them current)."""
    from imgcls.fsutil import write_table
    write_table(trials_frame(study, cfg.keep_k()), study_dir / TRIALS_CSV)
    best = best_config(study, cfg)
    if best is not None:
        best.save(study_dir / BEST_CONFIG)


def format_params(params: dict) -> str:
    """'lr=0.000312, optimizer=adamw' for a trial's drawn values."""
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def terminal_label(label: str, folds: bool) -> str:
    """The trial value's name in the terminal's lines: with folds it is not the trial's out-of-fold score (which
    its train prints just before) but the mean of its folds' best epochs."""
    return f"{label}, mean over folds' best epochs" if folds else label


def announce(t, label: str) -> None:
    from imgcls.console import info, warn
    params = format_params(t.params)
    secs = _seconds(t)
    took = f" in {secs:.0f}s" if secs is not None else ""
    if t.state.name == "COMPLETE":
        info(f"trial {t.number}: {label} {t.value:.4f}{took} ({params})")
    elif t.state.name == "PRUNED":
        info(f"trial {t.number}: {t.user_attrs.get('message', 'pruned')}{took} ({params})")
    else:
        warn(f"trial {t.number} failed{took} ({params}): {t.user_attrs.get('message', 'no message')}")


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def outside_best(study, keep: int | None) -> set[int]:
    """The trials whose checkpoints --keep best-K deletes: the finished ones outside the `keep` best (pruned and
    failed ones included; running trials of any process are left alone); none with --keep all (None)."""
    from optuna.trial import TrialState
    if keep is None:
        return set()
    best = {t.number for t in completed(study)[:keep]}
    return {t.number for t in study.get_trials(deepcopy=False)
            if t.state not in (TrialState.RUNNING, TrialState.WAITING) and t.number not in best}


def cleanup_checkpoints(study, study_dir: Path, keep: int | None) -> list[Path]:
    """Delete the *.pt of the trials outside_best(study, keep): each trial's own and its planned folds'
    (rundir.set_fold_dirs: a fold_2 copied into a 2-fold trial by hand is no checkpoint tune wrote). Returns the
    deleted files."""
    from imgcls.train.rundir import set_fold_dirs
    deleted = []
    for number in sorted(outside_best(study, keep)):
        run_dir = trial_dir(study_dir, number)
        for pt in [p for d in (run_dir, *set_fold_dirs(run_dir)[0]) for p in d.glob("*.pt")]:
            pt.unlink(missing_ok=True)
            deleted.append(pt)
    return deleted


def _figure_png(ax_or_axes, names: dict[str, str] | None = None) -> str:
    """What Optuna's matplotlib plots return (an Axes or an array of them) as an embedded PNG, its generic texts
    renamed (`names`, _relabel) and its ticks made readable (_readable_ticks)."""
    import numpy as np

    from imgcls.report import figure_data_uri
    ax = ax_or_axes.flat[0] if isinstance(ax_or_axes, np.ndarray) else ax_or_axes
    _relabel(ax.figure, names or {})
    return figure_data_uri(ax.figure)


def _relabel(fig, names: dict[str, str]) -> None:
    """Optuna's generic texts in a figure replaced by what they are here (names: "Objective Value" -> "val macro-F1
    (best epoch)", "Step" -> "epoch", ...): axis and colour-bar labels, legend entries and named ticks (the parallel
    coordinate plot's first axis). An axis of trials or epochs gets integer ticks (not 0.5, 1.5); a log axis
    readable ticks (_readable_ticks)."""
    from matplotlib.ticker import MaxNLocator
    for ax in fig.axes:
        for axis, get, set_ in ((ax.xaxis, ax.get_xlabel, ax.set_xlabel), (ax.yaxis, ax.get_ylabel, ax.set_ylabel)):
            text = get()
            if text in ("Trial", "Step"):                          # whole numbers: trial numbers, epochs
                axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            if text in names:
                set_(names[text])
            ticks = [t.get_text() for t in axis.get_ticklabels()]      # named ticks: set by the plot, not drawn
            if any(t in names for t in ticks):
                axis.set_ticks(axis.get_ticklocs(), [names.get(t, t) for t in ticks])
            if axis.get_scale() == "log":
                _readable_ticks(axis)
        legend = ax.get_legend()
        for t in legend.get_texts() if legend is not None else []:
            if t.get_text() in names:
                t.set_text(names[t.get_text()])


def _readable_ticks(axis) -> None:
    """A log axis's tick labels without overlap in a narrow panel (the slice plot's lr read '2x10^-4 3x10^-4
    4x10^-4 ...' on top of each other, matplotlib labelling minor ticks on an axis under a decade): under about a
    decade, majors at 1, 2 and 5 of each decade; over one, at most 4 decades labelled; minor ticks unlabelled."""
    import math

    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter
    lo, hi = sorted(v for v in axis.get_view_interval())
    if lo <= 0:
        return
    decades = math.log10(hi / lo)
    subs = (1.0, 2.0, 5.0) if decades < 1.5 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=4 if decades >= 1.5 else 12))
    axis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(math.inf, math.inf)))
    axis.set_minor_formatter(NullFormatter())


PARALLEL_AXIS_INCHES = 1.0   # between the parallel-coordinate plot's axes: a 12-character tick label at 8 pt
PARALLEL_LABEL_CHARS = 12    # a category's tick label longer than this is shortened in the middle (short_labels)
PARALLEL_MAX_CATEGORIES = 8  # an axis with more categories labels every k-th


def short_labels(labels: list[str], width: int = PARALLEL_LABEL_CHARS) -> list[str]:
    """Labels over `width` characters shortened in the middle, their start and end kept (tf_efficientnet_lite0 ->
    'tf_eff…lite0': the end tells lite0 from lite1, in22k from in1k), longer where `width` would make two alike."""
    def cut(text: str, n: int) -> str:
        if len(text) <= n:
            return text
        head = n // 2
        return text[:head] + "…" + text[len(text) - (n - 1 - head):]
    for n in range(width, max(map(len, labels), default=0) + 1):
        out = [cut(t, n) for t in labels]
        if len(set(out)) == len(set(labels)):
            return out
    return list(labels)


def _readable_parallel(ax) -> None:
    """Optuna's parallel-coordinate plot (one vertical axis per option, in a figure of the default width whatever
    their number) with its tick labels apart: the figure widened to PARALLEL_AXIS_INCHES between axes, tick labels at
    8 pt, a category's label shortened in the middle (short_labels), at most PARALLEL_MAX_CATEGORIES of an axis's
    categories labelled, a number axis at most 5 ticks (a log axis: _readable_ticks, by _relabel)."""
    from matplotlib.ticker import FixedLocator, MaxNLocator
    fig = ax.figure
    twins = [a for a in ax.get_shared_x_axes().get_siblings(ax) if a is not ax]
    width, height = fig.get_size_inches()
    share = ax.get_position().width          # of the figure's width: the colour bar and margins take the rest
    fig.set_size_inches(max(width, PARALLEL_AXIS_INCHES * len(twins) / share), height)
    for a in [ax, *twins]:
        a.tick_params(axis="both", labelsize=8)
    for a in twins:
        if isinstance(a.yaxis.get_major_locator(), FixedLocator):      # a category axis: its ticks are named
            texts = [t.get_text() for t in a.get_yticklabels()]
            step = -(-len(texts) // PARALLEL_MAX_CATEGORIES)
            shown = short_labels(texts)
            a.set_yticks(a.get_yticks(), [t if i % step == 0 else "" for i, t in enumerate(shown)])
            for t in a.get_yticklabels():        # legible over the trials' lines
                t.set_bbox({"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1})
        elif a.get_yscale() != "log":
            a.yaxis.set_major_locator(MaxNLocator(5))


def plot_names(label: str, folds: bool = False) -> dict[str, str]:
    """What Optuna's generic plot texts are in a study of `label` (the metric's name for people): the objective is
    the best epoch's value (with folds, the mean over folds); steps are epochs (with folds, counted over the trial's
    folds)."""
    objective = f"{label} ({'mean over folds' if folds else 'best epoch'})"
    return {"Objective Value": objective, "Intermediate Value": f"{label} at the epoch",
            "Step": "epoch, over the trial's folds" if folds else "epoch", "Best Value": "best so far"}


def plots(study, label: str = "objective", folds: bool = False) -> list[tuple[str, str | None, str]]:
    """(title, PNG data URI or None, note) for Optuna's matplotlib visualisations of the study; `label` names the
    objective on their axes (plot_names)."""
    from optuna.visualization import matplotlib as vm

    from imgcls.report import pyplot
    pyplot()   # the headless backend
    names = plot_names(label, folds)
    n_done = len(completed(study))
    wanted = [("optimization history", vm.plot_optimization_history, 1),
              ("learning curves (intermediate values; pruned trials stop early)", vm.plot_intermediate_values, 1),
              ("parameter importances (fANOVA)", vm.plot_param_importances, 2),
              ("parallel coordinates", vm.plot_parallel_coordinate, 1),
              ("slice plots", vm.plot_slice, 1)]
    out = []
    for title, fn, need in wanted:
        if n_done < need:
            out.append((title, None, f"needs at least {need} completed trial(s); the study has {n_done}"))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                note = (f"fANOVA fitted on the {n_done} completed trials: with few trials the bars are mostly "
                        f"noise" if fn is vm.plot_param_importances else "")
                drawn = fn(study)
                if fn is vm.plot_parallel_coordinate:
                    _readable_parallel(drawn)
                out.append((title, _figure_png(drawn, names), note))
        except Exception as e:   # e.g. importances of a parameter with one value: say why, draw the rest
            out.append((title, None, f"not drawn: {str(e).splitlines()[0] if str(e) else type(e).__name__}"))
    return out


def retrain_best(best: Path) -> str:
    """How to train the best trial's options (best_config.yaml) as a run, for both callers: the closing line's
    pointer and trial_figures' 'the best trial's'."""
    from imgcls.console import sh
    from imgcls.options import python_too
    return python_too(f"imgcls train --config {sh(best)}", f"run_train(TrainConfig.resolve(config={str(best)!r}))")


def trial_figures(cfg, study_dir: Path, retrain_said: bool = False) -> str | None:
    """Where the trials drew no figures (no --trial-plots), what the report and the closing line say: how to have
    them, and the best trial's (best_config.yaml re-trained: a normal run draws them); None where they drew them.
    `retrain_said`: the line names retrain_best already (the closing line, beside best_config.yaml): the best
    trial's are pointed at it, not given the command again."""
    if cfg.trial_plots:
        return None
    from imgcls.options import python_too
    how = (python_too("--trial-plots", "trial_plots=True") + " draws them" if cfg.train.plots
           else "--no-plots")
    best = study_dir / BEST_CONFIG
    again = ("" if not (best.exists() and cfg.train.plots) else
             f"; {BEST_CONFIG}'s run draws the best trial's" if retrain_said else
             f"; the best trial's: {retrain_best(best)}")
    return f"the trials drew no figures ({how}){again}"


def write_report(study, cfg, study_dir: Path, url: str, frame: pd.DataFrame, seconds: float, label: str) -> Path:
    from imgcls import report as rp
    where = "mean over the folds of each fold's best epoch" if cfg.train.folds else "the best epoch"
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    done = completed(study)
    summary = [("study", cfg.study), ("storage", url), ("objective", f"{label} of {where}, on each trial's "
                                                                     f"validation rows ({study.direction.name.lower()})"),
               ("sampler / pruner", search_used(study, cfg)),
               ("trials", ", ".join(f"{n} {s}" for s, n in counts.items())),
               ("this command's wall time", f"{seconds:.0f}s")]
    if done:
        summary += [("best trial", f"trial {done[0].number}: {label} {done[0].value:.4f} "
                                   f"({done[0].user_attrs.get('run_dir', '')})"),
                    ("best parameters", ", ".join(f"{k}={_fmt(v)}" for k, v in done[0].params.items()))]
    figures = trial_figures(cfg, study_dir)
    if figures:
        summary.append(("trial figures", figures))
    pruned = frame[frame["state"] == "pruned"] if len(frame) else frame
    if len(pruned):
        summary.append(("pruning", pruning_line(pruned, cfg)))
    shown = rounded(frame)
    sections = [("Summary", rp.key_values(summary)),
                (f"Top {TOP}", rp.table(shown[shown["state"] == "complete"].sort_values(
                    "value", ascending=study.direction.name == "MINIMIZE").head(TOP)))]
    if not cfg.train.plots:             # --no-plots: no figure at all, Optuna's neither (said, as train's report)
        sections.append(("Plots", rp.note(NO_PLOTS)))
    else:
        for title, uri, note in plots(study, label, bool(cfg.train.folds)):
            muted = rp.note(note) if note else ""
            sections.append((title, rp.img(uri, title) + muted if uri else muted))
    sections.append(("All trials", rp.table(shown, max_rows=1000)))
    return rp.write_page(study_dir / REPORT_HTML, f"imgcls tune: {cfg.study}", sections)


def rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """trials_frame's rows as the report shows them (trials.csv keeps every digit): `value` to 4 decimals, as the
    summary and the terminal print it, a drawn float to 3 significant digits (lr 0.000647, not
    0.0006466422717414558), as the terminal's trial lines; still numbers, right-aligned."""
    fixed = {"trial", "state", "value", "seconds", "epochs_run", "folds", "epochs_by_fold", "run_dir", "checkpoints",
             "process", "message"}
    out = frame.copy()
    out["value"] = pd.to_numeric(out["value"], errors="coerce").round(4)
    for c in out.columns:
        if c not in fixed and pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].map(lambda v: v if pd.isna(v) else float(f"{v:.3g}"))
    return out


PRUNED_LISTED = 10


def pruning_line(pruned: pd.DataFrame, cfg) -> str:
    """How far each pruned trial (trials_frame rows) got, per trial and, with folds, per fold: '2 trial(s) pruned,
    each set to run 3 epochs: trial 1 after 1, trial 3 after 2' or '... 3 epochs in each of 5 folds (15 in all):
    trial 1 in fold_1 after 1 of its 3 (4 of 15 in all)'."""
    epochs = cfg.train.epochs
    if not cfg.train.folds:
        each = [f"trial {r.trial} after {_count(r.epochs_run)}" for r in pruned.itertuples()]
        head = f"{len(pruned)} trial(s) pruned, each set to run {epochs} epochs: "
    else:
        from imgcls.train.config import parse_folds
        typed = parse_folds(cfg.train.folds)          # all: the data's count, as each trial recorded it
        known = {int(n) for n in pd.to_numeric(pruned["folds"], errors="coerce").dropna()}
        n_folds = len(typed) if typed else (known.pop() if len(known) == 1 else None)
        total = f" ({epochs * n_folds} in all)" if n_folds else ""
        head = (f"{len(pruned)} trial(s) pruned, each set to run {epochs} epochs in each of "
                f"{n_folds if n_folds else 'its'} folds{total}: ")
        each = []
        for r in pruned.itertuples():
            by_fold = str(r.epochs_by_fold or "").split()
            over = f"{_count(r.epochs_run)}" + (f" of {epochs * n_folds}" if n_folds else "") + " in all"
            if by_fold:                               # the fold it was pruned in: the last it started
                fold, _, n = by_fold[-1].partition("=")
                each.append(f"trial {r.trial} in {fold} after {n} of its {epochs} ({over})")
            else:                                     # a study from before epochs_by_fold
                each.append(f"trial {r.trial} after {over} over its folds")
    return head + shown(each, PRUNED_LISTED, listed_in=TRIALS_CSV)


def _count(v) -> str:
    n = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0]
    return "?" if pd.isna(n) else str(int(n))


def print_top(study, label: str, study_dir: Path) -> None:
    from rich.table import Table

    from imgcls.console import info, is_quiet, print_table
    if is_quiet():
        return
    done = completed(study)[:TOP]
    if not done:
        info(f"no completed trial yet; {TRIALS_CSV} in {study_dir}")
        return
    names = list(dict.fromkeys(n for t in done for n in t.params))
    table = Table(title=f"top {len(done)} of {len(study.trials)} trials ({label})")
    for col in ("trial", "value", "seconds"):     # never cut; long parameter values wrap instead
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    for col in names:
        table.add_column(col, overflow="fold")
    for t in done:
        secs = _seconds(t)
        table.add_row(str(t.number), f"{t.value:.4f}", "" if secs is None else f"{secs:.0f}",
                      *[_fmt(t.params.get(n, "")) for n in names])
    print_table(table)


def write_all(study, cfg, study_dir: Path, url: str, seconds: float, label: str) -> None:
    """Everything at the end of the command (and on Ctrl-C). `label`: the metric's name for people."""
    from imgcls.console import info
    write_tables(study, cfg, study_dir)
    frame = trials_frame(study, cfg.keep_k())
    from imgcls.console import status
    with status("writing the study's report"):      # its plots: seconds to a minute, before the table
        write_report(study, cfg, study_dir, url, frame, seconds, label)
    print_top(study, terminal_label(label, bool(cfg.train.folds)), study_dir)
    best_config = study_dir / BEST_CONFIG
    best = f" {BEST_CONFIG} ({retrain_best(best_config)})," if best_config.exists() else ""
    figures = trial_figures(cfg, study_dir, retrain_said=bool(best))
    info(f"study outputs in {study_dir}/:{best} {TRIALS_CSV}, {REPORT_HTML}, trial_NNNN/ run folders"
         + (f"; {figures}" if figures else ""))
