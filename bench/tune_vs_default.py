"""Quality: `imgcls tune` (a small pruned budget) vs `imgcls train` defaults given the same wall time.

1. `imgcls split` the data into train / val / a hidden test part (or take a given splits.csv);
2. `imgcls tune` on train / val: --trials N of --epochs E at --img-size S, median pruning; its wall time is W;
3. `imgcls train` with the defaults (no space values) for as many epochs as fit in W (the tune trials' mean epoch
   time; at least E), the same model / size / batch;
4. `imgcls predict --eval --eval-split test` of the best trial and of the default run: the hidden test rows only.

Prints (and writes to WORK/tune_vs_default.json) the val and test macro-F1 of both, the trials pruned, and the time
pruning saved (epochs the pruned trials did not run x the trials' mean epoch seconds). Every step is the CLI, as a
user runs it:

    python bench/tune_vs_default.py /tmp/ana/ocl_clean/images --work /tmp/tune_bench --trials 12 --epochs 3 \
        --img-size 96 --model tf_efficientnet_lite0 --pretrained --device cpu
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def imgcls(*args: str) -> float:
    """Run `python -m imgcls ARGS` (fails loudly); returns its wall time."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "imgcls", *map(str, args)]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def best_val(run: Path) -> float:
    import pandas as pd
    return float(pd.read_csv(run / "metrics.csv")["val_macro_f1"].max())


def test_f1(run: Path, splits: Path, out: Path, device: str) -> float:
    imgcls("predict", run, "--data", splits, "--eval", "--eval-split", "test", "--device", device, "--out", out,
           "--quiet")
    ev = json.loads((out / "predict.json").read_text())["eval"]
    assert ev["rows"] == "test"
    return float(ev["plain"]["macro_f1"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="dataset folder or manifest (e.g. the cleaned Open Clip Art set)")
    ap.add_argument("--work", type=Path, required=True, help="folder for the split, study, runs and predictions")
    ap.add_argument("--splits", type=Path, help="an existing splits.csv with train / val / test rows (default: "
                                                "imgcls split --val 0.2 --test 0.2 --seed 0)")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--img-size", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--model", default="tf_efficientnet_lite0")
    ap.add_argument("--pretrained", action="store_true")
    ap.add_argument("--space", type=Path, help="search space (default: imgcls's default space)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    import pandas as pd

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    splits = args.splits or work / "splits.csv"
    if args.splits is None:
        imgcls("split", args.data, "--out", splits, "--val", "0.2", "--test", "0.2", "--seed", "0",
               "--device", args.device, "--quiet")
    n_test = int((pd.read_csv(splits, keep_default_na=False)["split"] == "test").sum())

    common = ["--model", args.model, "--img-size", args.img_size, "--batch-size", args.batch_size,
              "--device", args.device] + (["--pretrained"] if args.pretrained else [])
    space = ["--space", args.space] if args.space else []
    tune_s = imgcls("tune", splits, "--study", "bench", "--trials", args.trials, "--epochs", args.epochs,
                    "--pruner", "median", "--out", work / "tune", *space, *common, "--quiet")
    trials = pd.read_csv(work / "tune" / "bench" / "trials.csv")
    done = trials[trials["state"] == "complete"].sort_values("value", ascending=False)
    best_run = Path(done["run_dir"].iloc[0])
    epoch_s = []
    for run in trials["run_dir"].dropna():
        m = Path(run) / "metrics.csv"
        if m.is_file():
            epoch_s += list(pd.read_csv(m)["epoch_seconds"])
    mean_epoch = sum(epoch_s) / len(epoch_s)
    pruned = trials[trials["state"] == "pruned"]
    saved_epochs = int((args.epochs - pruned["epochs_run"]).sum())

    default_epochs = max(args.epochs, int(tune_s // mean_epoch))
    default_s = imgcls("train", splits, *common, "--epochs", default_epochs, "--out", work / "runs",
                       "--name", "defaults", "--quiet")
    default_run = work / "runs" / "defaults"

    res = {"data": str(args.data), "splits": str(splits), "test_images": n_test, "model": args.model,
           "img_size": args.img_size, "trials": len(trials), "trial_epochs": args.epochs,
           "tune_seconds": round(tune_s, 1), "pruned": len(pruned), "failed": int((trials["state"] == "fail").sum()),
           "pruning_saved_epochs": saved_epochs, "pruning_saved_seconds": round(saved_epochs * mean_epoch, 1),
           "mean_epoch_seconds": round(mean_epoch, 2),
           "best_trial": {"run": str(best_run), "val_macro_f1": best_val(best_run),
                          "test_macro_f1": test_f1(best_run, splits, work / "pred_tuned", args.device),
                          "params": {k: done.iloc[0][k] for k in trials.columns
                                     if k not in ("trial", "state", "value", "seconds", "epochs_run", "folds",
                                                  "epochs_by_fold", "run_dir", "checkpoints", "process",
                                                  "message")}},
           "defaults": {"run": str(default_run), "epochs": default_epochs, "seconds": round(default_s, 1),
                        "val_macro_f1": best_val(default_run),
                        "test_macro_f1": test_f1(default_run, splits, work / "pred_defaults", args.device)}}
    (work / "tune_vs_default.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    b, d = res["best_trial"], res["defaults"]
    print(f"\n| run | val macro-F1 | test macro-F1 ({n_test} images) | wall seconds |\n| --- | --- | --- | --- |")
    print(f"| tune: best of {len(trials)} trials x {args.epochs} epochs ({len(pruned)} pruned) | "
          f"{b['val_macro_f1']:.4f} | {b['test_macro_f1']:.4f} | {res['tune_seconds']:.0f} (whole study) |")
    print(f"| defaults, {default_epochs} epochs | {d['val_macro_f1']:.4f} | {d['test_macro_f1']:.4f} | "
          f"{d['seconds']:.0f} |")
    print(f"\npruning stopped {len(pruned)} trials {saved_epochs} epochs early: ~{res['pruning_saved_seconds']:.0f} s "
          f"saved at {mean_epoch:.1f} s per epoch; best parameters {b['params']}")


if __name__ == "__main__":
    main()
