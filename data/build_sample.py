"""Rebuild the embedded sample data (data/sample, data/sample_test) deterministically.

usage: python data/build_sample.py OPENCLIPART_L1 [--seed 0] [--out data]

OPENCLIPART_L1 is the ImageFolder that ../shared/data's recipe builds from Debian's openclipart-png
(`get_data.sh WORKDIR` -> WORKDIR/out/openclipart_l1; public domain illustrations). This script picks 9 of its
classes with unequal counts, shrinks every image to <= 128 px (PNG), mixes in a few real photos bundled with
scikit-image (public domain / CC0, no download) under anonymous names in random classes, and plants exact and
near duplicates (some in a wrong class), the way ../shared/data/mix_noise.py builds openclipart_dirty. It writes

  OUT/sample/<class>/<image>.png       the labelled training set (ImageFolder)
  OUT/sample_truth.csv                 kind,class,file,source for every file of OUT/sample
                                       (kind: clipart | photo | dup_exact | dup_resize | dup_jpeg | dup_bright | dup_crop)
  OUT/sample_test/<id>.png             held-out clipart of the same classes (anonymous names, unlabeled folder;
                                       no file is a byte copy of a training image or of another test image)
  OUT/sample_test_labels.csv           id,label for OUT/sample_test (for `imgcls predict --eval`)

Same input + same seed -> byte-identical files.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

MAX_SIDE = 128
# class -> images in data/sample (20..120, unequal: a 6:1 imbalance)
CLASS_COUNTS = {"animals": 120, "food": 95, "tools": 75, "geography": 60, "office": 50, "buildings": 40,
                "plants": 32, "electronics": 26, "education": 20}
TEST_PER_CLASS = {"animals": 6, "food": 6, "tools": 5, "geography": 5, "office": 4, "buildings": 4, "plants": 4,
                  "electronics": 3, "education": 3}   # 40 held-out images
# scikit-image's bundled sample photos (public domain / CC0; shipped in the package, nothing is downloaded)
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "camera")
# planted duplicates: (kind, lands in another class?)
DUPLICATES = (("exact", False), ("exact", False), ("resize", False), ("jpeg", False), ("bright", False),
              ("crop", False), ("exact", True), ("bright", True))


def anon(key: str) -> str:
    return "img_" + hashlib.md5(key.encode()).hexdigest()[:12] + ".png"


def shrink(im: Image.Image) -> Image.Image:
    im = im.convert("RGB")
    im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return im


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_png(im: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(im))


def skimage_photo(name: str) -> Image.Image:
    import skimage.data
    arr = getattr(skimage.data, name)()
    if isinstance(arr, tuple):      # stereo_motorcycle -> (left, right, disparity)
        arr = arr[0]
    return Image.fromarray(np.asarray(arr, dtype=np.uint8))


def near_copy(im: Image.Image, kind: str) -> Image.Image:
    if kind == "resize":
        return im.resize((max(8, int(im.width * 0.8)), max(8, int(im.height * 0.8))), Image.Resampling.BILINEAR)
    if kind == "jpeg":
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=60)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if kind == "bright":
        return ImageEnhance.Brightness(im).enhance(1.15)
    if kind == "crop":
        w, h = im.size
        return im.crop((w // 20, h // 20, w - w // 20, h - h // 20))
    raise ValueError(kind)


def build(src: Path, out: Path, seed: int = 0) -> dict:
    rng = random.Random(seed)
    sample, test = out / "sample", out / "sample_test"
    for d in (sample, test):
        if d.exists():
            shutil.rmtree(d)
    truth: list[tuple[str, str, str, str]] = []
    test_rows: list[tuple[str, str, bytes]] = []     # (file, class, its shrunk PNG: hashed, then written)
    classes = sorted(CLASS_COUNTS)
    rest: dict[str, list[str]] = {}
    for cls in classes:
        files = sorted(p.name for p in (src / cls).iterdir() if p.suffix.lower() == ".png")
        need = CLASS_COUNTS[cls] + TEST_PER_CLASS[cls]
        if len(files) < need:
            raise SystemExit(f"{src / cls} has {len(files)} images, {need} needed")
        rng.shuffle(files)
        for f in sorted(files[:CLASS_COUNTS[cls]]):
            save_png(shrink(Image.open(src / cls / f)), sample / cls / f)
            truth.append(("clipart", cls, f, f"openclipart_l1/{cls}/{f}"))
        rest[cls] = files[CLASS_COUNTS[cls]:]
    # held out by content: Open Clip Art files one drawing under several names and classes, so the next files of a
    # class can be byte copies of training images (7 of the 40 were); a test image's bytes are no training image's
    # and no other test image's (`imgcls eda data/sample --test data/sample_test` finds none)
    taken = {hashlib.sha256((sample / c / f).read_bytes()).hexdigest() for _, c, f, _ in truth}
    for cls in classes:
        picked = 0
        for f in rest[cls]:
            if picked == TEST_PER_CLASS[cls]:
                break
            png = png_bytes(shrink(Image.open(src / cls / f)))
            digest = hashlib.sha256(png).hexdigest()
            if digest not in taken:
                taken.add(digest)
                test_rows.append((f, cls, png))
                picked += 1
        if picked < TEST_PER_CLASS[cls]:
            raise SystemExit(f"{src / cls} has {picked} images for the test set that are no training image's copy, "
                             f"{TEST_PER_CLASS[cls]} needed")
    # held-out test set: anonymous, shuffled ids so neither name nor order gives the class away
    rng.shuffle(test_rows)
    labels = []
    test.mkdir(parents=True, exist_ok=True)
    for i, (_, cls, png) in enumerate(test_rows):
        tid = f"test_{i:03d}.png"
        (test / tid).write_bytes(png)
        labels.append((tid, cls))
    for name in PHOTOS:
        cls = rng.choice(classes)
        fname = anon(f"photo/{name}/{seed}")
        save_png(shrink(skimage_photo(name)), sample / cls / fname)
        truth.append(("photo", cls, fname, f"skimage.data.{name}"))
    originals = [(c, f) for k, c, f, _ in truth if k == "clipart"]
    for i, ((kind, wrong), (cls, f)) in enumerate(zip(DUPLICATES, rng.sample(originals, len(DUPLICATES)))):
        dest = rng.choice([c for c in classes if c != cls]) if wrong else cls
        fname = anon(f"dup/{cls}/{f}/{i}/{seed}")
        if kind == "exact":
            (sample / dest).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sample / cls / f, sample / dest / fname)
        else:
            save_png(near_copy(Image.open(sample / cls / f).convert("RGB"), kind), sample / dest / fname)
        truth.append((f"dup_{kind}", dest, fname, f"{cls}/{f}"))
    with open(out / "sample_truth.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["kind", "class", "file", "source"])
        w.writerows(sorted(truth, key=lambda r: (r[1], r[2])))
    with open(out / "sample_test_labels.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["id", "label"])
        w.writerows(sorted(labels))
    counts = {c: sum(1 for r in truth if r[1] == c) for c in classes}
    return {"classes": counts, "images": len(truth), "test": len(labels)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("openclipart_l1", type=Path, help="ImageFolder built by ../shared/data (out/openclipart_l1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                    help="where sample/, sample_test/ and the CSVs go (default: this script's folder)")
    a = ap.parse_args()
    res = build(a.openclipart_l1, a.out, a.seed)
    size = sum(p.stat().st_size for d in ("sample", "sample_test") for p in (a.out / d).rglob("*") if p.is_file())
    print(f"{res['images']} images in {a.out / 'sample'} ({len(res['classes'])} classes: "
          + ", ".join(f"{c} {n}" for c, n in sorted(res["classes"].items(), key=lambda kv: -kv[1]))
          + f"), {res['test']} in {a.out / 'sample_test'}; {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
