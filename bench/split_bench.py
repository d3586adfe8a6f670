"""Benchmark `imgcls split`: time and stratification of the split itself (no near-duplicate search), and how often a
plain row-level random split puts one person on both sides.

    .venv/bin/python bench/split_bench.py [--data /work/imgdata/out]

1. A mask-competition-sized profile manifest (2,700 people x 7 images = 18,900 rows; ages / genders drawn like the
   competition's skew), held in memory: no image is read, this times the splitter.
2. fmnist_lt (an ImageFolder, 16,800 long-tailed images, no groups): the whole `run_split` path from a scanned
   manifest, singletons as groups.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from imgcls import manifest as mf  # noqa: E402
from imgcls import profiles as pl  # noqa: E402
from imgcls import split as sp  # noqa: E402
from imgcls.console import set_quiet  # noqa: E402

STEMS = [f"mask{i}" for i in range(1, 6)] + ["incorrect_mask", "normal"]


def profiles(n: int = 2700, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # the competition's skew: many under 30, fewer 30-59, few 60+; ~60 % female
    ages = np.concatenate([rng.integers(18, 30, int(n * .47)), rng.integers(30, 60, int(n * .45)),
                           rng.integers(60, 61, n)])[:n]
    rng.shuffle(ages)
    rows = []
    for p in range(n):
        g = int(rng.random() < 0.6)
        prof = f"{p:06d}_{('male', 'female')[g]}_Asian_{ages[p]}"
        for s in STEMS:
            rows.append({"path": f"{prof}/{s}.jpg", "group": f"{p:06d}", "mask": pl.mask_from_stem(s), "gender": g,
                         "age": int(ages[p]), "sha256": prof + s, "error": "", "root": "/data/raw"})
    df = pd.DataFrame(rows)
    df.insert(1, "label", "")
    return pl.apply_profile_labels(df)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/imgdata/out")
    args = ap.parse_args()
    set_quiet(True)
    print("| data | settings | rows | time (s) | max class-share gap | people on both sides |")
    print("| --- | --- | --- | --- | --- | --- |")
    prof = profiles()
    for name, cfg in [("--val 0.2", sp.SplitConfig(val=0.2, near_dup=False)),
                      ("--val 0.2 --test 0.2 (6:2:2)", sp.SplitConfig(val=0.2, test=0.2, near_dup=False)),
                      ("--folds 5", sp.SplitConfig(folds=5, near_dup=False)),
                      ("--folds 5 --stratify mask,gender,age_band",
                       sp.SplitConfig(folds=5, stratify=("mask", "gender", "age_band"), near_dup=False))]:
        (df, summary, leaks, _), t = timed(lambda: sp.make_split(prof, cfg))
        cross = int((df.groupby("group")["split" if not cfg.folds else "fold"].nunique() > 1).sum())
        print(f"| profiles 2,700 x 7 | {name} | {len(df)} | {t:.2f} | "
              f"{summary['balance']['max_deviation']:.1%} | {cross} |")
    # the seed-003 mistake: a random row-level split
    rng = np.random.default_rng(0)
    val = rng.random(len(prof)) < 0.2
    cross = int((pd.Series(val).groupby(prof["group"].to_numpy()).nunique() > 1).sum())
    print(f"| profiles 2,700 x 7 | random row split 80/20 (not imgcls) | {len(prof)} | - | - | "
          f"{cross} of 2700 ({cross / 2700:.0%}) |")
    src = Path(args.data) / "fmnist_lt"
    if src.is_dir():
        (df0, t_scan) = timed(lambda: mf.load(src, workers=2, announce=False))
        for name, cfg in [("--val 0.2", sp.SplitConfig(val=0.2, near_dup=False)),
                          ("--folds 5", sp.SplitConfig(folds=5, near_dup=False))]:
            (df, summary, leaks, _), t = timed(lambda: sp.make_split(df0, cfg))
            print(f"| fmnist_lt (ImageFolder) | {name} | {len(df)} | {t:.2f} | "
                  f"{summary['balance']['max_deviation']:.1%} | - |")
        print(f"\n(fmnist_lt scan before the split: {t_scan:.1f} s, 2 workers)")


if __name__ == "__main__":
    main()
