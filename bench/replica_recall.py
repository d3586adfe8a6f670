"""Replica recall of a `clean` run on a set built by bench/build_replicas.py: the share of the transformed copies
(cNN_<name>) that clean put in the same duplicate group as their original, per transform kind (re-derived from the
same seeds as build_replicas), and how many originals survived deduplication.

usage: python bench/replica_recall.py CLEAN_OUT/manifest.csv [--seed 0]
"""
from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    m = pd.read_csv(a.manifest, keep_default_na=False)
    m["stem"] = m["path"].str.replace(r"\.(png|jpg)$", "", regex=True)
    rep = m["path"].str.contains(r"(?:^|/)c\d\d_")
    orig = m[~rep].set_index("stem")
    index = {s: k for k, s in enumerate(orig.sort_values("path").index)}   # build_replicas' order: sorted paths
    rows = []
    for path, stem, group in zip(m.loc[rep, "path"], m.loc[rep, "stem"], m.loc[rep, "dup_group"]):
        c, base = re.search(r"c(\d\d)_([^/]+)$", stem).groups()
        o = stem.replace(f"c{c}_{base}", base)
        k = index[o]
        kind = random.Random(a.seed * 10**7 + int(c) * 10**6 + k).choice(["flip", "crop", "resize", "jpeg", "bright"])
        og = orig.loc[o, "dup_group"]
        rows.append({"kind": kind, "caught": group != "" and group == og})
    r = pd.DataFrame(rows)
    print(f"{len(r)} replicas of {len(orig)} originals: recall {r['caught'].mean():.4f}")
    print(r.groupby("kind")["caught"].agg(["mean", "size"]).round(4).to_string())


if __name__ == "__main__":
    main()
