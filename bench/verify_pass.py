"""clean's verification stage alone (imgcls.clean.near_dup.verify_pairs: global score, then the local stage) over
the candidate pairs of an image folder, once per --workers value (alternated as given): seconds and pairs per
second. --mode full: the local stage on every pair >= the threshold sweep's floor 0.90 (every score exact); groups:
as clean runs it, only where a pair can change a group at the cut 0.98 or a sweep row (levels); both: each --workers
value once per mode, alternated. Embeddings come from (and go to) the usual cache.

usage: python bench/verify_pass.py DIR [--workers 1,2,1,2] [--mode full|groups|both]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--workers", default="1,2,1,2")
    ap.add_argument("--mode", default="full", choices=("full", "groups", "both"))
    a = ap.parse_args()
    from imgcls import manifest as mf
    from imgcls.clean.config import CleanConfig
    from imgcls.clean.duplicates import group_levels
    from imgcls.clean.near_dup import candidate_pairs, thumbnails, verify_pairs
    from imgcls.links import components
    df = mf.load(a.data, announce=False).reset_index(drop=True)
    definition = CleanConfig(device="cpu").near_duplicates()
    emb = definition.embeddings(df, workers=2)
    ok = (df["error"] == "").to_numpy() & ~df["sha256"].duplicated().to_numpy()
    th, th_ok = thumbnails(df, only=ok, workers=2)
    th_ok &= ok
    i, j = candidate_pairs(emb, th, th_ok, definition.candidates)
    keep = th_ok[i] & th_ok[j]
    i, j = i[keep], j[keep]
    levels = group_levels(0.98)
    modes = ["full", "groups"] if a.mode == "both" else [a.mode]
    ref, first_groups = {}, None
    for w in (int(x) for x in a.workers.split(",")):
        for mode in modes:
            kw = {"floor": min(levels), "levels": levels} if mode == "groups" else {"floor": 0.90}
            t = time.perf_counter()
            s = verify_pairs(th, i, j, workers=w, **kw)
            sec = time.perf_counter() - t
            groups = np.stack([components(len(th), i[s >= v], j[s >= v]) for v in levels])   # same node order
            ref.setdefault(mode, s)
            first_groups = groups if first_groups is None else first_groups
            same = bool(np.array_equal(s, ref[mode]))
            print(f"mode={mode} workers={w} pairs={len(i)} at_or_above_0.98={int((s >= 0.98).sum())} "
                  f"seconds={sec:.1f} pairs_per_s={len(i) / sec:.0f} same_scores_as_first_{mode}={same} "
                  f"same_groups_at_every_level={bool(np.array_equal(groups, first_groups))} "
                  f"load={os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
