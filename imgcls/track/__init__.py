"""Experiment trackers, as train callbacks (imgcls.train.callbacks): `imgcls train --tracker tensorboard|mlflow|
wandb|none` (repeatable). All work offline; metrics.csv and the run folder's files are written whatever is chosen.

- tensorboard: event files in the run folder (each fold's own folder): scalars per epoch (losses, accuracy, val
  macro-F1 / precision / recall, lr, per-class F1) and per optimiser update (loss, lr), the confusion matrices and the
  worst-predicted validation images as images, the options as hparams; a k-fold set's out-of-fold score
  (oof/val_macro_f1, oof/val_acc) in the set's own folder, with its options (the set's row in the HParams tab). `tensorboard --logdir outputs/runs`.
- mlflow: a local store, `sqlite:///<--out>/mlflow.db` with artifacts in `<--out>/mlartifacts` (or --tracking-uri,
  e.g. a server; without the flag, MLFLOW_TRACKING_URI where it is set): params, metrics, artifacts (config.yaml,
  metrics.csv, per_class.csv, plots, report.html; best.pt with --track-checkpoint). k-fold: one parent run with the
  folds nested under it. The run folder's mlflow_run.json names its MLflow run: --resume goes on logging to it. A
  --tracking-uri (or MLFLOW_TRACKING_URI) server that does not answer, or a folder store MLflow refuses (MLflow 3's
  file store, without MLFLOW_ALLOW_FILE_STORE=true), is refused before any data is read; a store
  failing mid-run is one warning (naming the runs it leaves RUNNING there), and the run goes on without it.
  `mlflow ui --backend-store-uri sqlite:///outputs/runs/mlflow.db`.
- wandb: offline unless you are logged in (WANDB_API_KEY or `wandb login`); WANDB_MODE is respected. Files under
  the run folder's wandb/; `wandb sync` uploads them later. k-fold: the folds share a group (the run's name),
  with a run named after the set holding its out-of-fold score (oof/val_macro_f1, oof/val_acc). The run folder's
  wandb_run.json names its W&B run: --resume goes on in it (wandb.init(id=..., resume="allow")).

Each package is an optional extra (`pip install 'imgcls[tensorboard]'`); asking for one that is not installed, or that
fails to import (a broken dependency), is a one-line error naming the extra, before any data is read. Trackers run on rank 0 only (callbacks do).

Python:  run_train(cfg, callbacks=make_trackers(["tensorboard"], cfg))   (run_train does this for cfg.tracker)
`group`: a name several run_train calls share (tune's study): MLflow nests them under one parent run with that
name, W&B puts them in that group.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Sequence

from imgcls.errors import UserError

from imgcls.train.config import TRACKERS    # noqa: E402 - the option's choices are declared with the option
PACKAGE = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def installed_trackers(names: Sequence[str]) -> list[str]:
    """The trackers asked for (without 'none', deduplicated); one line for an unknown name or a package that is not
    installed. Nothing is imported (importlib.util.find_spec): train and tune say it before torch's and timm's
    import (seconds; under torchrun per process)."""
    out = []
    for n in names:
        n = str(n).strip().lower()
        if n not in TRACKERS:
            raise UserError(f"unknown --tracker '{n}'; use one of: {', '.join(TRACKERS)} (repeat the flag for more)")
        if n == "none" or n in out:
            continue
        if importlib.util.find_spec(PACKAGE[n]) is None:
            raise UserError(f"--tracker {n} needs the {PACKAGE[n]} package: pip install 'imgcls[{n}]'")
        out.append(n)
    return out


def check_trackers(names: Sequence[str], tracking_uri: str | None = None, check_store: bool = True,
                   store_in: str | os.PathLike | None = None) -> list[str]:
    """The trackers asked for (installed_trackers: one line for an unknown name or a missing package); one line for
    a package that does not import, or (`check_store`) for --tracker mlflow with a server that does not answer:
    `tracking_uri`, else MLFLOW_TRACKING_URI (mlflow_tracker.check_server, whose line names the local store in
    `store_in`, the folder the MLflow tracker would log to without them)."""
    out = installed_trackers(names)
    for n in out:
        try:        # installed is not enough: a broken dependency fails its import, else mid-run (every tune trial)
            __import__(PACKAGE[n])
        except Exception as e:      # noqa: BLE001 - not only ImportError: protobuf's mismatch is a TypeError
            raise UserError(f"--tracker {n}: the {PACKAGE[n]} package does not import ({type(e).__name__}: "
                            f"{str(e).strip().splitlines()[0] if str(e).strip() else 'no message'}); reinstall it "
                            f"with its dependencies (pip install --force-reinstall 'imgcls[{n}]') or drop the "
                            f"flag") from None
    if "mlflow" in out and check_store:
        from imgcls.track.mlflow_tracker import check_server
        check_server(tracking_uri, store_in)
    return out


def make_trackers(names: Sequence[str], cfg=None, group: str | None = None) -> list:
    """Tracker callbacks for `names` (see check_trackers). cfg: the TrainConfig (tracking_uri, out,
    track_checkpoint). A run of a `group` (tune's trials) does not check the tracking server: the command did before
    its first trial, and one gone since stops no trial (the tracker says so and logs nothing more); its W&B offline
    folders are said by the study, in one line at its end (wandb_tracker.say_study_offline), not by each trial."""
    from imgcls.outputs import RUNS_DIR
    made, out = [], getattr(cfg, "out", RUNS_DIR)
    for n in check_trackers(names, getattr(cfg, "tracking_uri", None), check_store=group is None, store_in=out):
        if n == "tensorboard":
            from imgcls.track.tb_tracker import TensorBoardTracker
            made.append(TensorBoardTracker())
        elif n == "mlflow":
            from imgcls.track.mlflow_tracker import MLflowTracker
            made.append(MLflowTracker(uri=getattr(cfg, "tracking_uri", None), out=out,
                                      log_checkpoint=bool(getattr(cfg, "track_checkpoint", False)), group=group))
        elif n == "wandb":
            from imgcls.track.wandb_tracker import WandbTracker
            made.append(WandbTracker(group=group, log_checkpoint=bool(getattr(cfg, "track_checkpoint", False)),
                                     say_sync=group is None))
    return made
