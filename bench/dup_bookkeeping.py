"""Scale of the bookkeeping around linked images, after the search: clean's grouping of the copies, --conflicts
(majority-knn's tie votes included), the label-conflict table and report.html; split's leakage check, its --fix and
make_split (no near-duplicate search), on N synthetic rows (a fifth of them byte copies of another row,
one copy in five filed under another of 17 labels: tests/synthetic.py) with L2-normalised embeddings of --dim. No images, no search:
what `imgcls clean` and `imgcls split` spend besides reading images. One line of seconds per stage.

usage: python bench/dup_bookkeeping.py [N] [--dim 1280] [--conflicts majority-knn]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))      # the suite's synthetic manifests
from synthetic import copy_groups_frame  # noqa: E402

from imgcls import split as sp
from imgcls.clean import CONFLICT_POLICIES, CleanConfig, conflict_table, mark_duplicates
from imgcls.clean.duplicates import families
from imgcls.clean.report import write_clean_report
from imgcls.console import set_quiet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--conflicts", default="majority-knn", choices=CONFLICT_POLICIES)
    a = ap.parse_args()
    set_quiet(True)
    n = a.n
    df = copy_groups_frame(n)
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((n, a.dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    timed = {}

    def clock(name, fn):
        t = time.perf_counter()
        res = fn()
        timed[name] = time.perf_counter() - t
        return res

    res = clock("mark_duplicates", lambda: mark_duplicates(df, emb, CleanConfig(near_dup=False, conflicts=a.conflicts)))
    # a checkout before mark_duplicates returned its tie votes (this bench also measures older code) had them in attrs
    out, votes = (res, res.attrs["tie_votes"]) if isinstance(res, pd.DataFrame) else res
    rows = clock("conflict_table", lambda: conflict_table(out, votes))
    print(f"n={n} dim={a.dim} conflicts={a.conflicts}: {(out['dup_group'] != '').sum()} rows in "
          f"{out.loc[out['dup_group'] != '', 'dup_group'].nunique()} groups, {len(rows)} spanning labels, "
          f"{len(votes)} tie votes")
    summary = {"config": asdict(CleanConfig()), "n_images": n, "kept": int(out["keep"].sum()), "removed": {},
               "label_conflict_groups": len(rows), "label_conflicts": rows, "families": families(out),
               "threshold_sweep": []}
    with tempfile.TemporaryDirectory() as tmp:   # the frame as mark_duplicates returned it (older code: attrs on)
        clock("clean_report", lambda: write_clean_report(Path(tmp) / "report.html", out.assign(ood_score=np.nan),
                                                         summary))
    split = np.where(np.random.default_rng(1).random(n) < 0.8, "train", "val")
    sided = df.drop(columns=["dup_group", "duplicate_of", "label_conflict"]).assign(group="", split=split)
    leaks = clock("check_leaks", lambda: sp.check_leaks(sided))
    _, moved = clock("fix_leaks", lambda: sp.fix_leaks(sided))
    clock("make_split", lambda: sp.make_split(sided.drop(columns="split"), sp.SplitConfig(near_dup=False)))
    print(f"split: {len(leaks)} leaking pairs, {moved} rows moved by --fix")
    print(" ".join(f"{k}_seconds={v:.1f}" for k, v in timed.items()))

if __name__ == "__main__":
    main()
