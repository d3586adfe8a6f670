"""Scale of clean's duplicate-stage bookkeeping after the search: grouping the copies, --conflicts (majority-knn's
tie votes included) and the label-conflict table, on N synthetic rows (a fifth of them byte copies of another row,
one copy in five filed under another of 17 labels: tests/synthetic.py) with L2-normalised embeddings of --dim. No images, no search:
what `imgcls clean` spends between the candidate pairs and writing the manifest. One line per stage.

usage: python bench/dup_bookkeeping.py [N] [--dim 1280] [--conflicts majority-knn]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))      # the suite's synthetic manifests
from synthetic import copy_groups_frame  # noqa: E402

from imgcls.clean import CONFLICT_POLICIES, CleanConfig, conflict_table, mark_duplicates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--conflicts", default="majority-knn", choices=CONFLICT_POLICIES)
    a = ap.parse_args()
    n = a.n
    df = copy_groups_frame(n)
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((n, a.dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    t = time.perf_counter()
    out = mark_duplicates(df, emb, CleanConfig(near_dup=False, conflicts=a.conflicts))
    t_mark = time.perf_counter() - t
    t = time.perf_counter()
    rows = conflict_table(out, out.attrs["tie_votes"])
    t_table = time.perf_counter() - t
    print(f"n={n} dim={a.dim} conflicts={a.conflicts}: {(out['dup_group'] != '').sum()} rows in "
          f"{out.loc[out['dup_group'] != '', 'dup_group'].nunique()} groups, {len(rows)} spanning labels, "
          f"{len(out.attrs['tie_votes'])} tie votes")
    print(f"mark_duplicates_seconds={t_mark:.1f} conflict_table_seconds={t_table:.1f}")


if __name__ == "__main__":
    main()
