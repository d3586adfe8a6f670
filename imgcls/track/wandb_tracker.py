"""--tracker wandb: offline unless logged in (WANDB_MODE respected); files in the run folder's wandb/."""
from __future__ import annotations

import netrc
import os
from pathlib import Path

from imgcls.figure_files import confusion_png_names
from imgcls.outputs import TRIAL_DIR
from imgcls.run_names import BEST_PT
from imgcls.track.common import (WANDB, epoch_scalars, flat_params, oof_scalars, record_tracker_run,
                                 recorded_tracker_run)
from imgcls.train.callbacks import Callback, is_deliberate_stop
from imgcls.train.rundir import set_fold_dirs

TRACKER = WANDB                    # a run (or k-fold set) folder's wandb_run.json (record_tracker_run): its run
STOPPED = "imgcls/stopped"         # in the summary of a run an exception stopped: the exception


def logged_in() -> bool:
    """An API key in WANDB_API_KEY or ~/.netrc (what `wandb login` writes); no network call."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        host = (os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").split("://")[-1].split("/")[0]
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def mode() -> str:
    return os.environ.get("WANDB_MODE") or ("online" if logged_in() else "offline")


def offline_runs(study_dir: str | os.PathLike) -> list[Path]:
    """The offline W&B runs' folders in a tune study's trials: trial_NNNN/wandb/offline-run-*, with --folds also
    trial_NNNN/fold_K/wandb/offline-run-* of the folds the trial's set names (rundir.set_fold_dirs: a stray fold_K
    folder, another set's, holds no run of the study); a trial folder is one tune names (outputs.TRIAL_DIR: a copied
    trial_backup is not)."""
    runs = []
    for trial in Path(study_dir).glob(STUDY_TRIALS):
        if trial.is_dir() and TRIAL_DIR.fullmatch(trial.name):
            for run in [trial, *set_fold_dirs(trial)[0]]:
                runs += [d for d in (run / "wandb").glob(OFFLINE_RUNS) if d.is_dir()]
    return sorted(runs)


STUDY_TRIALS, OFFLINE_RUNS = "trial_*", "offline-run-*"
STUDY_RUNS = (f"{STUDY_TRIALS}/wandb/{OFFLINE_RUNS}", f"{STUDY_TRIALS}/fold_*/wandb/{OFFLINE_RUNS}")


def say_study_offline(study_dir: str | os.PathLike, before: list[Path]) -> None:
    """tune --tracker wandb, offline: one line for the study (its trials' runs say none, say_sync=False) naming the
    folders its trials wrote in this command (those not in `before`) and the `wandb sync` of the study's trials
    (offline_runs), which skips runs synced already: by the patterns STUDY_RUNS where they match those runs alone,
    else by the folders themselves (the fold pattern would upload a stray fold folder's runs too)."""
    seen = set(before)
    study = offline_runs(study_dir)
    made = [d for d in study if d not in seen]
    if not made:
        return
    from imgcls.console import info, plural, sh
    patterns = [p for p in STUDY_RUNS if any(d.match(p) for d in made)]
    named = [d for d in study if any(d.match(p) for p in patterns)]       # what the sync is to upload
    globbed = sorted(d for p in patterns for d in Path(study_dir).glob(p) if d.is_dir())
    sync = [f"{sh(study_dir)}/{p}" for p in patterns] if globbed == named else [sh(d) for d in named]
    info(f"wandb (offline): {plural(len(made), 'folder')} in {study_dir}'s trials; upload them with: wandb sync "
         + " ".join(sync))


class WandbTracker(Callback):
    def __init__(self, group: str | None = None, project: str | None = None, log_checkpoint: bool = False,
                 say_sync: bool = True):
        """`say_sync`: the run's offline folders and their `wandb sync` said as run_train ends; False in a tune
        trial, whose study says one line for all (say_study_offline)."""
        self.group, self.project, self.log_checkpoint = group, project, log_checkpoint
        self.say_sync = say_sync
        self.run = None
        self.offline_dirs: list[Path] = []     # this run_train's offline runs' folders, for the `wandb sync` line

    def _remember(self, run) -> None:
        """An offline run's folder (wandb/offline-run-<time>-<id>: run.dir is its files/ folder), read before
        run.finish(), with those of the earlier sessions of a resumed run (the same id): `wandb sync` needs them all."""
        if mode() == "offline" and getattr(run, "dir", None):
            here = Path(run.dir).parent
            for d in [*sorted(here.parent.glob(f"offline-run-*-{run.id}")), here]:
                if d not in self.offline_dirs:
                    self.offline_dirs.append(d)

    def _project(self) -> str:
        return self.project or os.environ.get("WANDB_PROJECT") or "imgcls"

    def _init(self, folder, **kw):
        """The W&B run of a run (or k-fold set) folder: the run an earlier session of the folder logged to
        (--resume: wandb.init(id=..., resume="allow"), its history going on, the stop it recorded cleared), else a
        new one, recorded in the folder's wandb_run.json."""
        import wandb
        earlier = recorded_tracker_run(folder, TRACKER, self._project())
        run = wandb.init(project=self._project(), mode=mode(), reinit="create_new",
                         settings=wandb.Settings(silent=True, console="off"), dir=str(folder),
                         **({"id": earlier, "resume": "allow"} if earlier else {}), **kw)
        if earlier is None or run.id != earlier:
            record_tracker_run(folder, TRACKER, self._project(), run.id)
        elif run.summary.get(STOPPED) is not None:
            del run.summary[STOPPED]
        return run

    def on_run_start(self, info):
        run_dir = Path(info["run_dir"])
        parent = info["parent_dir"].name if info["parent_dir"] is not None else None
        # tune's study is the group of every trial's runs, folds included (a trial's folds are named after it)
        group = self.group if self.group is not None else parent
        name = run_dir.name if info["fold"] is None else f"{parent}/fold_{info['fold']}"
        self.run = self._init(run_dir, name=name, group=group, job_type="fold" if info["fold"] is not None else "train",
                              config=flat_params(info["config"]))
        self.run.define_metric("epoch")
        for prefix in ("train/*", "val/*", "lr", "epoch_seconds", "val_f1_per_class/*"):
            self.run.define_metric(prefix, step_metric="epoch")
        self.run.define_metric("step/*", step_metric="update")

    def on_step_end(self, step, logs):
        self.run.log({"step/loss": logs["loss"], "step/lr": logs["lr"], "update": step})

    def on_epoch_end(self, epoch, logs):
        self.run.log({**epoch_scalars(logs), "epoch": epoch})

    def on_run_end(self, summary):
        import wandb
        run_dir = Path(summary["run_dir"])
        self.run.summary["best/val_macro_f1"] = float(summary["best_macro_f1"])
        self.run.summary["best/epoch"] = int(summary["best_epoch"])
        # keyed by the file's name without .png, as ever (users' dashboards)
        images = {Path(png).stem: wandb.Image(str(run_dir / png)) for png in confusion_png_names()
                  if (run_dir / png).is_file()}
        if images:
            self.run.log(images)
        if summary.get("per_class") is not None:
            self.run.log({"per_class": wandb.Table(dataframe=summary["per_class"])})
        if self.log_checkpoint and (run_dir / BEST_PT).is_file():
            art = wandb.Artifact(f"{run_dir.name}-best".replace("/", "-"), type="model")
            art.add_file(str(run_dir / BEST_PT))
            self.run.log_artifact(art)
        self._remember(self.run)
        self.run.finish()
        self.run = None

    def on_train_end(self, summary):
        # a k-fold set's out-of-fold score, as MLflow logs it on the set's parent run: a run of its own named after
        # the set, in the folds' group
        scalars = oof_scalars(summary)
        if scalars:
            run_dir = Path(summary["run_dir"])
            run = self._init(run_dir, name=run_dir.name, group=self.group if self.group is not None else run_dir.name,
                             job_type="k-fold", config=flat_params(summary["config"]))
            for k, v in scalars.items():
                run.summary[k] = v
            self._remember(run)
            run.finish()
        # wandb's own hint is silenced (Settings(silent=True)): say where the files are
        if self.offline_dirs and self.say_sync:
            from imgcls.console import info, sh
            info(f"wandb (offline): {len(self.offline_dirs)} folder(s) in {summary['run_dir']}; upload them with: "
                 f"wandb sync {' '.join(sh(d) for d in self.offline_dirs)}")
        self.offline_dirs = []

    def on_run_abort(self, error):
        if self.run is not None:
            self.run.summary[STOPPED] = f"{type(error).__name__}: {error}"[:500]
            # a stop by design (a pruned tune trial, tune's --timeout) is no failure: W&B has no killed state a run
            # can give itself (finish: exit code 0 finished, any other failed), so it finishes, its summary naming
            # the stop; anything else (Ctrl-C too) failed
            self.run.finish(exit_code=0 if is_deliberate_stop(error) else 1)
            self.run = None
