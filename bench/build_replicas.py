"""A big dirty set for clean's scale run: N copies of an image folder (same class folders, files
prefixed cNN_), every image of every copy passed through one
random training-style transform (flip, 1-8% crop a side, 70-95% rescale, JPEG re-encode q50-90, brightness
0.85-1.2), so each file is a new near-duplicate, not a byte copy.

usage: python bench/build_replicas.py SRC OUT [--copies 12] [--seed 0] [--workers 2]
e.g.   python bench/build_replicas.py /work/imgdata/out/openclipart_dirty /work/imgdata/x100k_tf --copies 12
       (7,975 originals + 12 x 7,975 transformed = 103,675 images)
"""
from __future__ import annotations

import argparse
import os
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps


def transform(job: tuple[str, str, int]) -> None:
    src, dst, seed = job
    rng = random.Random(seed)
    im = Image.open(src).convert("RGB")
    kind = rng.choice(["flip", "crop", "resize", "jpeg", "bright"])
    w, h = im.size
    if kind == "flip":
        im = ImageOps.mirror(im)
    elif kind == "crop":
        f = rng.uniform(0.01, 0.08)
        im = im.crop((int(w * f), int(h * f), max(int(w * f) + 1, w - int(w * f)), max(int(h * f) + 1, h - int(h * f))))
    elif kind == "resize":
        s = rng.uniform(0.7, 0.95)
        im = im.resize((max(8, int(w * s)), max(8, int(h * s))))
    elif kind == "bright":
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.85, 1.2))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if kind == "jpeg":
        im.save(os.path.splitext(dst)[0] + ".jpg", quality=rng.randint(50, 90))
    else:
        im.save(dst)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--copies", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    files = sorted(p for p in a.src.rglob("*") if p.is_file())
    jobs = []
    for p in files:                                    # the originals, as hard links (or copies)
        d = a.out / p.relative_to(a.src)
        d.parent.mkdir(parents=True, exist_ok=True)
        if not d.exists():
            try:
                os.link(p, d)
            except OSError:
                d.write_bytes(p.read_bytes())
    for c in range(a.copies):
        for k, p in enumerate(files):
            rel = p.relative_to(a.src)
            jobs.append((str(p), str(a.out / rel.parent / f"c{c:02d}_{rel.name}"), a.seed * 10**7 + c * 10**6 + k))
    with ProcessPoolExecutor(a.workers) as ex:
        list(ex.map(transform, jobs, chunksize=256))
    print(f"{len(files)} originals + {len(jobs)} transformed images under {a.out}")


if __name__ == "__main__":
    main()
