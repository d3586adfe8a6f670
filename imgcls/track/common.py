"""Shared by the trackers: metric names and params from a run's rows and config; the record of the tracker run a run
folder logs to (<tracker>_run.json), which --resume goes on in."""
from __future__ import annotations

import json
from pathlib import Path

from imgcls.options import join, option_text


def metric_name(key: str) -> str:
    """A metrics.csv column as a tracker's metric name: train_loss -> train/loss, val_macro_f1 -> val/macro_f1."""
    for prefix in ("train_", "val_"):
        if key.startswith(prefix):
            return prefix[:-1] + "/" + key[len(prefix):]
    return key


def epoch_scalars(logs: dict) -> dict[str, float]:
    """The numbers of an on_epoch_end row as {metric name: value} (per-class F1 as val_f1_per_class/<class>)."""
    out = {}
    for k, v in logs.items():
        if k in ("epoch", "improved", "per_class_f1"):
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[metric_name(k)] = float(v)
    for c, f in (logs.get("per_class_f1") or {}).items():
        out[f"val_f1_per_class/{c}"] = float(f)
    return out


OOF_METRICS = {"oof/val_macro_f1": "macro_f1", "oof/val_acc": "accuracy"}   # metric name: its oof_score.json key


def oof_scalars(summary: dict) -> dict[str, float]:
    """A k-fold set's out-of-fold score from an on_train_end summary (its oof_score.json) as {metric name: value};
    {} for a single run."""
    oof = summary.get("oof")
    if not oof:
        return {}
    return {name: float(oof[key]) for name, key in OOF_METRICS.items()}


def flat_params(config: dict) -> dict[str, str | int | float | bool]:
    """config.yaml as flat scalar params (lists joined with commas, None as '')."""
    out = {}
    for k, v in config.items():
        if isinstance(v, (list, tuple)):
            v = join(map(option_text, v))
        out[k] = "" if v is None else v
    return out


def text_params(config: dict) -> dict[str, str | int | float]:
    """flat_params with bools as true / false (option_text): what MLflow's params and TensorBoard's hparams show."""
    return {k: option_text(v) for k, v in flat_params(config).items()}


def run_record(folder, tracker: str) -> Path:
    """The file in a run (or k-fold set) folder that names the tracker's run it logs to: <tracker>_run.json
    (mlflow_run.json, wandb_run.json)."""
    return Path(folder) / f"{tracker}_run.json"


# the trackers whose run a run folder records (record_tracker_run), by their record's name (mlflow_tracker's and
# wandb_tracker's TRACKER, read from here: they import this module), in words: a run whose folder is removed leaves
# theirs naming it
MLFLOW, WANDB = "mlflow", "wandb"
RECORDED = {MLFLOW: "MLflow", WANDB: "W&B"}


def recorded_trackers(folder) -> list[str]:
    """The trackers (RECORDED's words) whose run `folder` records (its <tracker>_run.json)."""
    return [words for tracker, words in RECORDED.items() if run_record(folder, tracker).is_file()]


def record_tracker_run(folder, tracker: str, store: str, run_id: str) -> None:
    """Record that `folder` logs to the tracker's run `run_id` in `store` (MLflow: the tracking URI; W&B: the
    project), with the folder's resolved path, so a copy of the folder is not taken for it (recorded_tracker_run)."""
    from imgcls.fsutil import write_json
    write_json(run_record(folder, tracker), {"store": store, "run_id": run_id, "run_dir": str(Path(folder).resolve())})


def recorded_tracker_run(folder, tracker: str, store: str) -> str | None:
    """The run id an earlier session of this run folder logged to in `store` (record_tracker_run), which --resume
    goes on logging to; None without a record, for another store, or in a copy of the folder (cp -r a b: b's epochs
    are not a's run)."""
    try:
        rec = json.loads(run_record(folder, tracker).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or not rec.get("run_id") or rec.get("run_dir") != str(Path(folder).resolve()):
        return None
    # "tracking_uri": the store's key in the mlflow_run.json of a run trained before W&B runs were recorded too
    return str(rec["run_id"]) if rec.get("store", rec.get("tracking_uri")) == store else None
