"""What a study leaves behind: trials.csv, best_config.yaml, report.html (Optuna's matplotlib plots embedded),
the printed top-5 table, and the bounded disk use of --keep best-K."""
from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from imgcls.train.config import TrainConfig
from imgcls.tune.space import trial_options

TOP = 5


def _state(t) -> str:
    return t.state.name.lower()


def _seconds(t) -> float | None:
    if t.datetime_start is None or t.datetime_complete is None:
        return None
    return round((t.datetime_complete - t.datetime_start).total_seconds(), 1)


def trials_frame(study, keep: int | None = None) -> pd.DataFrame:
    """One row per trial: number, state, value, seconds, epochs run (epochs_run: the trial's, over all its folds;
    with folds, folds: the folds it was set to train, and epochs_by_fold: 'fold_0=3 fold_1=1'), each parameter,
    run folder, checkpoints ('removed (--keep best-K)' for a trial whose checkpoints --keep deletes), process,
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
                   checkpoints=f"removed (--keep best-{keep})" if t.number in removed else "",
                   process=t.user_attrs.get("process", ""), message=t.user_attrs.get("message", ""))
        rows.append(row)
    return pd.DataFrame(rows, columns=["trial", "state", "value", "seconds", "epochs_run", "folds", "epochs_by_fold",
                                       *names, "run_dir",
                                       "checkpoints", "process", "message"])


def trial_record(run_dir: Path) -> dict | None:
    """For a trial folder OUT/STUDY/trial_NNNN: its row of the study's trials.csv (column -> text); None when the
    folder is not a trial's or the study's table does not list it."""
    import re
    m = re.fullmatch(r"trial_(\d+)", Path(run_dir).name)
    table = Path(run_dir).parent / "trials.csv"
    if not m or not table.is_file():
        return None
    try:
        t = pd.read_csv(table, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    if "trial" not in t.columns:
        return None
    rows = t[t["trial"] == str(int(m.group(1)))]
    return rows.iloc[0].to_dict() if len(rows) else None


def removed_by_keep(run_dir: Path) -> str | None:
    """For a trial folder OUT/STUDY/trial_NNNN whose study's trials.csv records that --keep deleted its checkpoints:
    that record ('removed (--keep best-3)'); else None."""
    return (trial_record(run_dir) or {}).get("checkpoints") or None


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
    d.update(out=TrainConfig.out, name=None)
    return TrainConfig.from_dict(d)


def write_tables(study, cfg, study_dir: Path) -> None:
    """trials.csv and best_config.yaml (cheap: after every trial, so a killed process leaves them current)."""
    from imgcls.fsutil import write_table
    write_table(trials_frame(study, cfg.keep_k()), study_dir / "trials.csv")
    best = best_config(study, cfg)
    if best is not None:
        best.save(study_dir / "best_config.yaml")


def format_params(params: dict) -> str:
    """'lr=0.000312, optimizer=adamw' for a trial's drawn values."""
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


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
    """Delete the *.pt of the trials outside_best(study, keep). Returns the deleted files."""
    deleted = []
    for number in sorted(outside_best(study, keep)):
        run_dir = study_dir / f"trial_{number:04d}"
        for pt in list(run_dir.glob("*.pt")) + list(run_dir.glob("fold_*/*.pt")):
            pt.unlink(missing_ok=True)
            deleted.append(pt)
    return deleted


def _figure_png(ax_or_axes) -> str:
    """What Optuna's matplotlib plots return (an Axes or an array of them) as an embedded PNG."""
    import numpy as np

    from imgcls.report import figure_data_uri
    ax = ax_or_axes.flat[0] if isinstance(ax_or_axes, np.ndarray) else ax_or_axes
    return figure_data_uri(ax.figure)


def plots(study) -> list[tuple[str, str | None, str]]:
    """(title, PNG data URI or None, note) for Optuna's matplotlib visualisations of the study."""
    from optuna.visualization import matplotlib as vm

    from imgcls.report import pyplot
    pyplot()   # the headless backend
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
                out.append((title, _figure_png(fn(study)), note))
        except Exception as e:   # e.g. importances of a parameter with one value: say why, draw the rest
            out.append((title, None, f"not drawn: {str(e).splitlines()[0] if str(e) else type(e).__name__}"))
    return out


def write_report(study, cfg, study_dir: Path, url: str, frame: pd.DataFrame, seconds: float, label: str) -> Path:
    from imgcls import report as rp
    where = "mean over the folds of each fold's best epoch" if cfg.train.folds else "the best epoch"
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    done = completed(study)
    summary = [("study", cfg.study), ("storage", url), ("objective", f"{label} of {where}, on each trial's "
                                                                     f"validation rows ({study.direction.name.lower()})"),
               ("sampler / pruner", f"{cfg.sampler} / {cfg.pruner}"),
               ("trials", ", ".join(f"{n} {s}" for s, n in counts.items())),
               ("this command's wall time", f"{seconds:.0f}s")]
    if done:
        summary += [("best trial", f"trial {done[0].number}: {label} {done[0].value:.4f} "
                                   f"({done[0].user_attrs.get('run_dir', '')})"),
                    ("best parameters", ", ".join(f"{k}={_fmt(v)}" for k, v in done[0].params.items()))]
    pruned = frame[frame["state"] == "pruned"] if len(frame) else frame
    if len(pruned):
        summary.append(("pruning", pruning_line(pruned, cfg)))
    sections = [("Summary", rp.key_values(summary)),
                (f"Top {TOP}", rp.table(frame[frame["state"] == "complete"].sort_values(
                    "value", ascending=study.direction.name == "MINIMIZE").head(TOP)))]
    for title, uri, note in plots(study):
        muted = rp.note(note) if note else ""
        sections.append((title, rp.img(uri, title) + muted if uri else muted))
    sections.append(("All trials", rp.table(frame, max_rows=1000)))
    return rp.write_page(study_dir / "report.html", f"imgcls tune: {cfg.study}", sections)


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
    more = len(each) - PRUNED_LISTED
    return head + ", ".join(each[:PRUNED_LISTED]) + (f", {more} more (trials.csv)" if more > 0 else "")


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
        info(f"no completed trial yet; trials.csv in {study_dir}")
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
    write_report(study, cfg, study_dir, url, frame, seconds, label)
    print_top(study, label, study_dir)
    best = " best_config.yaml (imgcls train --config)," if (study_dir / "best_config.yaml").exists() else ""
    info(f"study outputs in {study_dir}/:{best} trials.csv, report.html, trial_NNNN/ run folders")
