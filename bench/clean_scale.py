"""Scale of clean's duplicate search: blockwise cosine search + grouping on N synthetic L2-normalised embeddings
(lite0's dimension, 1280) with planted near-duplicates; prints time and peak RSS.

usage: python bench/clean_scale.py [N] [--dim 1280] [--threshold 0.95]
Embedding throughput (the other cost of a run) is measured by bench/clean_quality.py on real images.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from imgcls.clean.near_dup import pair_arrays
from imgcls.links import components


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--threshold", type=float, default=0.95)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((a.n, a.dim), dtype=np.float32)
    n_dup = a.n // 50                                  # 2% planted copies: the source plus small noise
    src = rng.choice(a.n - n_dup, n_dup, replace=False)
    emb[a.n - n_dup:] = emb[src] + 0.15 * rng.standard_normal((n_dup, a.dim), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    t = time.time()
    pi, pj, _ = pair_arrays(emb, a.threshold)
    groups = components(a.n, pi, pj)
    dt = time.time() - t
    found = int(np.sum(groups[a.n - n_dup:] == groups[src]))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"n={a.n} dim={a.dim}: {len(pi)} pairs, planted found {found}/{n_dup}, search {dt:.1f} s "
          f"({a.n / dt:.0f} images/s), embeddings {emb.nbytes / 2**20:.0f} MiB, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
