"""Shared by the trackers: metric names and params from a run's rows and config."""
from __future__ import annotations

from imgcls.options import option_text


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


def oof_scalars(summary: dict) -> dict[str, float]:
    """A k-fold set's out-of-fold score from an on_train_end summary (its oof_score.json) as {metric name: value};
    {} for a single run."""
    oof = summary.get("oof")
    if not oof:
        return {}
    return {"oof/val_macro_f1": float(oof["macro_f1"]), "oof/val_acc": float(oof["accuracy"])}


def flat_params(config: dict) -> dict[str, str | int | float | bool]:
    """config.yaml as flat scalar params (lists joined with commas, None as '')."""
    out = {}
    for k, v in config.items():
        if isinstance(v, (list, tuple)):
            v = ",".join(str(option_text(x)) for x in v)
        out[k] = "" if v is None else v
    return out


def text_params(config: dict) -> dict[str, str | int | float]:
    """flat_params with bools as true / false (option_text): what MLflow's params and TensorBoard's hparams show."""
    return {k: option_text(v) for k, v in flat_params(config).items()}
