"""Rank 0's peak RSS when clean's thumbnails are gathered under torchrun: the whole share in one gather_object (the
way before Dist.gather_rows) against gather_rows' pieces. N rows of 96 x 96 x 3 uint8 (clean's thumbnails), each rank
filling its share; prints rank 0's peak RSS before and after the gather, and the seconds.

    torchrun --standalone --nproc_per_node 2 bench/gather_rss.py 40000 --mode pieces    # or --mode whole
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=40_000)
    ap.add_argument("--mode", choices=("whole", "pieces"), default="pieces")
    a = ap.parse_args()
    import torch.distributed as dist

    from imgcls.train.dist import init_distributed
    d = init_distributed("cpu")
    out = np.zeros((a.n, 96, 96, 3), np.uint8)
    ok = np.zeros(a.n, bool)
    rows = d.mine(np.arange(a.n))
    out[rows] = 7
    ok[rows] = True
    d.barrier()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t = time.perf_counter()
    if a.mode == "whole":
        for part in d.gather((rows[ok[rows]], out[rows[ok[rows]]])) or []:
            out[part[0]], ok[part[0]] = part[1], True
    else:
        d.gather_rows(out, np.arange(a.n), done=ok)
    seconds = time.perf_counter() - t
    if d.main:
        assert ok.all() and (out[:, 0, 0, 0] == 7).all()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"mode={a.mode} n={a.n} array_gib={out.nbytes / 2**30:.2f} rank0_peak_rss_gib before={before:.2f} "
              f"after={peak:.2f} seconds={seconds:.1f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
