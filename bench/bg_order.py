"""Where preprocess --face-crop --remove-bg runs rembg: on the face crop, or on the whole photo and then cut with the
crop (the mask write-up's order, seed 003: rembg, then deepface's crop). No ground-truth matte exists for these
photos, so the figure is how much of the face itself the matte keeps: rembg's mean alpha inside the detected face
box (its central 80% on each side), per image and in all; a face is foreground, so a low value is a face lost to
the background (a washed-out crop). Also the seconds of each way.

usage: python bench/bg_order.py IMAGE_OR_FOLDER [...] [--margin 0.2] [--detector opencv]
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from imgcls import io as imgio  # noqa: E402
from imgcls.preprocess.background import BackgroundRemover  # noqa: E402
from imgcls.preprocess.faces import FaceDetector, crop_box  # noqa: E402
from imgcls.preprocess.image import face_kept  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--detector", default="opencv")
    a = ap.parse_args()
    files = sorted(f for p in a.paths for f in ([p] if p.is_file() else p.iterdir())
                   if f.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".bmp"))
    detector, remover = FaceDetector(a.detector), BackgroundRemover("u2netp", threads=1)
    rows, secs = [], {"crop": 0.0, "whole": 0.0}
    for f in files:
        im = imgio.load_rgb(f)
        face = detector.detect(im)
        if face is None:
            continue
        box = crop_box(face, im.size, a.margin)
        t = time.perf_counter()
        on_crop = remover.mask(im.crop(box))
        secs["crop"] += time.perf_counter() - t
        t = time.perf_counter()
        on_whole = remover.mask(im)
        secs["whole"] += time.perf_counter() - t
        in_crop = replace(face, x=face.x - box[0], y=face.y - box[1])     # the face box in the crop's pixels
        kept = [face_kept(on_crop, in_crop), face_kept(on_whole, face)]
        rows.append((f.name, im.size, *kept))
        print(f"{f.name[:40]:40s} {im.size[0]:5d}x{im.size[1]:<5d} face kept: on the crop {kept[0]:.3f}  "
              f"whole photo {kept[1]:.3f}")
    if not rows:
        print("no face found")
        return
    c = np.array([r[2] for r in rows])
    w = np.array([r[3] for r in rows])
    print(f"\n{len(rows)} photos with a face (of {len(files)}): mean face alpha kept, matte on the crop {c.mean():.3f} "
          f"(below 0.5: {(c < 0.5).sum()}), on the whole photo {w.mean():.3f} (below 0.5: {(w < 0.5).sum()}); "
          f"higher on the whole photo in {(w > c + 0.005).sum()}, lower in {(w < c - 0.005).sum()}; "
          f"seconds {secs['crop']:.2f} / {secs['whole']:.2f}")


if __name__ == "__main__":
    main()
