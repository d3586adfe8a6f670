"""Scale of clean's duplicate search: candidate search (clean's top-30 partners per image: the FAISS index or the exact
blockwise search, --ann auto|on|off as `imgcls clean --ann`) + grouping on N synthetic L2-normalised embeddings
(lite0's dimension, 1280) with 2% planted near-duplicates; prints time, peak RSS and the candidates' recall of the
planted copies that the exact search finds (those with cosine >= threshold: the exact search keeps every such pair,
each being its image's most similar partner), ending with one line
`n=N seconds=S peak_rss_gib=G candidate_recall=R`.

usage: python bench/clean_scale.py [N] [--dim 1280] [--threshold 0.95] [--ann auto]
Embedding throughput (the other cost of a run) is measured by bench/clean_quality.py on real images.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from imgcls.clean.near_dup import top_pairs
from imgcls.links import components


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--threshold", type=float, default=0.95)
    ap.add_argument("--ann", default="auto", choices=("auto", "on", "off"))
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((a.n, a.dim), dtype=np.float32)
    n_dup = a.n // 50                                  # 2% planted copies: the source plus small noise
    src = rng.choice(a.n - n_dup, n_dup, replace=False)
    emb[a.n - n_dup:] = emb[src] + 0.15 * rng.standard_normal((n_dup, a.dim), dtype=np.float32)
    for s in range(0, a.n, 65_536):                   # in chunks: a full-size temporary would double the peak RSS
        emb[s:s + 65_536] /= np.linalg.norm(emb[s:s + 65_536], axis=1, keepdims=True)
    dup = np.arange(a.n - n_dup, a.n)
    exact_finds = np.einsum("kd,kd->k", emb[src], emb[dup]) >= a.threshold
    t = time.time()
    pi, pj, _ = top_pairs(emb, a.threshold, ann=a.ann, what="candidates")
    groups = components(a.n, pi, pj)
    dt = time.time() - t
    found = groups[dup] == groups[src]
    recall = float(found[exact_finds].mean()) if exact_finds.any() else float("nan")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"n={a.n} dim={a.dim} --ann {a.ann}: {len(pi)} pairs, planted found {int(found.sum())}/{n_dup} "
          f"({int(exact_finds.sum())} with cosine >= {a.threshold}), search {dt:.1f} s ({a.n / dt:.0f} images/s), "
          f"embeddings {emb.nbytes / 2**30:.2f} GiB")
    print(f"n={a.n} seconds={dt:.1f} peak_rss_gib={rss:.2f} candidate_recall={recall:.4f}")


if __name__ == "__main__":
    main()
