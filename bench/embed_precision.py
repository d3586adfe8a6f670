"""clean's embedding pass in float32 vs bfloat16 (--embed-precision): `imgcls clean` on one data set with an empty
embedding cache (IMGCLS_CACHE, a user's first run), the two precisions alternated in one session, and how the two
runs' manifests differ (rows whose keep / reason differ, duplicate-group count).

usage: python bench/embed_precision.py DATA --work DIR [--reps 2]
       (docs/BENCHMARKS.md: the e2e pool of bench/e2e_vs_timm.py, 1,830 images; openclipart_l1, 7,703 images)
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for rep in range(a.reps):
        for p in times:
            cache, out = a.work / f"cache_{p}", a.work / f"clean_{p}"
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
            env = {**os.environ, "IMGCLS_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "imgcls", "clean", str(a.data), "--out", str(out),
                            "--embed-precision", p, "-q"], env=env, check=True)
            times[p].append(time.perf_counter() - t)
            print(f"rep {rep} {p}: {times[p][-1]:.1f} s (load {os.getloadavg()[0]:.2f})", flush=True)
    m = {p: pd.read_csv(a.work / f"clean_{p}" / "manifest.csv", keep_default_na=False) for p in times}
    j = m["fp32"].merge(m["bf16"], on="path", suffixes=("_32", "_16"))
    differ = j[(j["keep_32"] != j["keep_16"]) | (j["reason_32"] != j["reason_16"])]
    mean = {p: sum(v) / len(v) for p, v in times.items()}
    print(f"clean, cold cache, {len(j)} images: fp32 {mean['fp32']:.1f} s, bf16 {mean['bf16']:.1f} s "
          f"({mean['bf16'] / mean['fp32']:.2f}x); rows whose keep / reason differ: {len(differ)} "
          f"({', '.join(sorted(differ['reason_32'] + '->' + differ['reason_16']))}); rows in duplicate groups "
          f"{(j['dup_group_32'] != '').sum()} / {(j['dup_group_16'] != '').sum()}")


if __name__ == "__main__":
    main()
