"""clean's embedding pass (imgcls.embed.embed_manifest: tf_efficientnet_lite0, 160 px, batch 64) over an image folder,
once per --workers value, each with an empty cache (after one warm-up call): images per second, model build
included.

usage: python bench/embed_pass.py DIR [--workers 1,2] [--limit N]
e.g.   python bench/embed_pass.py /work/imgdata/out/openclipart_l1 --limit 2000
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--limit", type=int, default=0, help="the first N images (sorted by path; 0: all)")
    a = ap.parse_args()
    import torch

    from imgcls import manifest as mf
    from imgcls.embed import embed_manifest
    df = mf.load(a.data, scan=False, announce=False)
    df = mf.scan_images(df.sort_values("path").head(a.limit or len(df)).reset_index(drop=True), workers=2)
    n = int((df["error"] == "").sum())
    with tempfile.TemporaryDirectory() as cache:          # warm-up: imports, the model's first build
        embed_manifest(df.head(2), device="cpu", cache_dir=cache)
    for w in (int(x) for x in a.workers.split(",")):
        with tempfile.TemporaryDirectory() as cache:
            t = time.perf_counter()
            embed_manifest(df, device="cpu", cache_dir=cache, workers=w)
            s = time.perf_counter() - t
        print(f"workers={w} images={n} unique={df.loc[df['error'] == '', 'sha256'].nunique()} seconds={s:.1f} "
              f"images_per_s={n / s:.1f} torch_threads={torch.get_num_threads()} load={os.getloadavg()[0]:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
