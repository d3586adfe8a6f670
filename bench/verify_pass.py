"""clean's verification stage alone (imgcls.clean.near_dup.verify_pairs: global score, then the local stage on the
pairs >= the threshold sweep's floor 0.90) over the candidate pairs of an image folder, once per --workers value
(alternated as given): seconds and pairs per second. Embeddings come from (and go to) the usual cache.

usage: python bench/verify_pass.py DIR [--workers 1,2,1,2]
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
    a = ap.parse_args()
    from imgcls import manifest as mf
    from imgcls.clean.config import CleanConfig
    from imgcls.clean.near_dup import candidate_pairs, thumbnails, verify_pairs
    df = mf.load(a.data, announce=False).reset_index(drop=True)
    definition = CleanConfig(device="cpu").near_duplicates()
    emb = definition.embeddings(df, workers=2)
    ok = (df["error"] == "").to_numpy() & ~df["sha256"].duplicated().to_numpy()
    th, th_ok = thumbnails(df, only=ok, workers=2)
    th_ok &= ok
    i, j = candidate_pairs(emb, th, th_ok, definition.candidates)
    keep = th_ok[i] & th_ok[j]
    i, j = i[keep], j[keep]
    ref = None
    for w in (int(x) for x in a.workers.split(",")):
        t = time.perf_counter()
        s = verify_pairs(th, i, j, floor=0.90, workers=w)
        sec = time.perf_counter() - t
        ref = s if ref is None else ref
        print(f"workers={w} pairs={len(i)} at_or_above_0.90={int((s >= 0.90).sum())} seconds={sec:.1f} pairs_per_s={len(i) / sec:.0f} "
              f"same_scores={bool(np.array_equal(s, ref))} load={os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
