"""Training data: the manifest -> train/val rows, a decoded-image cache, augment presets, samplers.

The decoded-image cache is what makes an epoch cheap on a CPU: every image is decoded (imgcls.io.load_rgb) and
resized to the input size ONCE, kept as uint8 HxWx3 in one numpy array (RAM, or a memmap file with --cache disk),
and augmentations (torchvision transforms v2) run on small uint8 tensors instead of re-decoding JPEG/PNG files
every epoch. The cached image is exactly what `eval_transform` produces before normalisation, so validation on the
cache and `imgcls predict` on files see the same pixels; with train --crop-from F it is cached at F x the input size
(cached_size) and every sample is an input-size crop of it (SquareCrop: random to train, the centre to validate).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from imgcls import io as imgio
from imgcls import manifest as mf
from imgcls.errors import UserError
from imgcls.io import INTERPOLATIONS, RESIZE_MODES
from imgcls.split.config import (fold_ids, fold_numbers,  # noqa: F401  (the split table's reading: train.run's too)
                                 split_rows, split_values)
from imgcls.train.config import AUG_PRESETS, FILL_NAMES


def _interp(name: str):
    from torchvision.transforms import InterpolationMode
    if name not in INTERPOLATIONS:
        raise UserError(f"unknown --interpolation '{name}'; use one of: {', '.join(INTERPOLATIONS)}")
    return {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
            "nearest": InterpolationMode.NEAREST}[name]


WHITE = FILL_NAMES["white"]          # train --fill's default


# a default input size this many times the images' median side is said (28 px Fashion-MNIST at 224: 8x)
UPSAMPLE_SAY = 4


def upsampling_note(df: pd.DataFrame, img_size: int, model: str) -> str | None:
    """The line train says when the model's default --img-size is UPSAMPLE_SAY or more times the images' median
    longer side (the manifest's width / height): each image is upsampled, and every step costs as at img_size."""
    if not {"width", "height"} <= set(df.columns):
        return None
    side = np.maximum(pd.to_numeric(df["width"], errors="coerce"), pd.to_numeric(df["height"], errors="coerce"))
    med = float(np.nanmedian(side)) if side.notna().any() else float("nan")
    if not np.isfinite(med) or med <= 0 or img_size < UPSAMPLE_SAY * med:
        return None
    small = int(2 ** np.ceil(np.log2(2 * med)))
    return (f"--img-size {img_size} ({model}'s default) is {img_size / med:.0f}x the images' median side "
            f"({med:.0f} px): each image is upsampled and every step works on {img_size} x {img_size} pixels "
            f"(--img-size {small}: {(img_size / small) ** 2:.0f}x fewer)")


def resize_transform(img_size: int, resize_mode: str = "squash", interpolation: str = "bilinear",
                     fill: Sequence[int] = WHITE):
    """PIL/uint8 image -> img_size x img_size: squash (ignore aspect), crop (short side + centre crop),
    pad (long side + centred padding with `fill`, train --fill: white by default)."""
    from torchvision.transforms import v2
    it = _interp(interpolation)
    if resize_mode == "crop":
        return v2.Compose([v2.Resize(img_size, interpolation=it, antialias=True), v2.CenterCrop(img_size)])
    if resize_mode == "pad":
        return v2.Compose([_PadToSquare(fill), v2.Resize((img_size, img_size), interpolation=it, antialias=True)])
    if resize_mode != "squash":
        raise UserError(f"unknown --resize-mode '{resize_mode}'; use one of: {', '.join(RESIZE_MODES)}")
    return v2.Resize((img_size, img_size), interpolation=it, antialias=True)


class _PadToSquare(torch.nn.Module):
    def __init__(self, fill: Sequence[int] = WHITE):
        super().__init__()
        self.fill = [int(v) for v in fill]

    def forward(self, img):
        from torchvision.transforms import v2
        from torchvision.transforms.v2 import functional as F
        h, w = F.get_size(img)
        s = max(h, w)
        left, top = (s - w) // 2, (s - h) // 2
        return v2.functional.pad(img, [left, top, s - w - left, s - h - top], fill=self.fill)


def normalize_transform(mean: Sequence[float], std: Sequence[float]):
    from torchvision.transforms import v2
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


def eval_transform(meta):
    """PIL RGB image -> normalised float tensor [3, S, S], exactly as validation sees it (what predict uses); a run
    trained with --crop-from F (meta.crop_from) validated on the centre S x S crop of the image resized to F x S
    instead, while predict still feeds this (the test images are the crops). `meta`: a ModelMeta (or a
    checkpoint's meta dict)."""
    from torchvision.transforms import v2

    from imgcls.model_meta import ModelMeta
    meta = ModelMeta.coerce(meta)
    return v2.Compose([v2.ToImage(), resize_transform(meta.img_size, meta.resize_mode, meta.interpolation, meta.fill),
                       normalize_transform(meta.mean, meta.std)])


def input_recipe(meta) -> dict:
    """What `imgcls predict` (--tta none) feeds a checkpoint, step by step in words and values, for a deployment that
    must reproduce it without imgcls (export.json): load_input_image's decode, the letterbox predict pads a test image
    with first (tta.ViewMaker, meta.letterbox), then eval_transform's resize, scaling and normalisation."""
    from imgcls.model_meta import ModelMeta
    meta = ModelMeta.coerce(meta)
    s = meta.img_size
    resize = {
        "squash": "resize to size x size, the aspect ratio ignored",
        "crop": "resize so the shorter side is size and the longer int(size * longer / shorter) (truncated), then "
                "cut size x size at left round((width - size) / 2), top round((height - size) / 2) (Python's "
                "round: halves to even)",
        "pad": "pad to a square of side max(width, height) with fill, the image at left (side - width) // 2, top "
               "(side - height) // 2, then resize to size x size",
    }[meta.resize_mode]
    filters = {
        "bilinear": "antialiased bilinear (torchvision Resize(antialias=True) on uint8): PIL "
                    "Image.resize(..., Image.BILINEAR) gives the same pixels within 1 of 255",
        "bicubic": "antialiased bicubic (torchvision Resize(antialias=True) on uint8): PIL "
                   "Image.resize(..., Image.BICUBIC) gives the same pixels within 1 of 255",
        "nearest": "PyTorch's nearest: output pixel i takes source pixel floor(i * in / out) along each axis (PIL's "
                   "NEAREST takes floor((i + 0.5) * in / out), other pixels)",
    }[meta.interpolation]
    return {
        "decode": imgio.decode_recipe(s),      # load_input_image: drafted to the input size
        "letterbox": None if meta.letterbox is None else {
            "fill": list(meta.letterbox),
            "how": "first, pad to a square of side max(width, height) with fill, the image at left "
                   "(side - width) // 2, top (side - height) // 2 (the training images were letterboxed so)"},
        "resize": {"mode": meta.resize_mode, "size": s, "interpolation": meta.interpolation,
                   "fill": list(meta.fill), "how": resize, "filter": filters},
        "scale": {"divide_by": 255, "how": "uint8 0..255 -> float32 0..1"},
        "normalize": {"mean": list(meta.mean), "std": list(meta.std), "how": "(x - mean) / std per RGB channel"},
        "layout": f"float32 [batch, 3, {s}, {s}], channels R, G, B",
    }


def augment_transform(preset: str, img_size: int, fill: Sequence[int] = WHITE, hflip: bool = True):
    """Train-time augmentation on a cached uint8 tensor [3, S, S] (output uint8, same size); `fill`: the RGB of the
    pixels rotation and perspective bring in from outside the image (train --fill); `hflip` False: no preset
    flips (train --no-hflip).

    Seed 000 measured single transforms on the mask data: horizontal flip, small rotation, perspective and
    colour jitter helped; vertical flip and aggressive cropping hurt. So: light = hflip; medium = hflip + small
    rotation + colour jitter + mild scale crop; heavy = medium + perspective + stronger jitter + random erasing.
    No preset uses a vertical flip."""
    from torchvision.transforms import v2
    if preset not in AUG_PRESETS:
        raise UserError(f"unknown --aug '{preset}'; use one of: {', '.join(AUG_PRESETS)}")
    if preset == "none":
        return None
    ops = [v2.RandomHorizontalFlip()] if hflip else []
    if preset in ("medium", "heavy"):
        ops += [v2.RandomResizedCrop(img_size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),
                v2.RandomRotation(10 if preset == "medium" else 15, fill=list(fill)),
                v2.ColorJitter(0.2, 0.2, 0.2) if preset == "medium" else v2.ColorJitter(0.3, 0.3, 0.3, 0.05)]
    if preset == "heavy":
        ops += [v2.RandomPerspective(0.2, p=0.5, fill=list(fill))]
    return v2.Compose(ops) if ops else None            # light without flips: nothing to do


def cached_size(img_size: int, crop_from: float = 1.0) -> int:
    """The side train decodes and caches its images at: img_size, or with train --crop-from F round(F x img_size),
    of which every training sample is an img_size crop (SquareCrop, batch_aug.random_crops)."""
    return max(int(img_size), int(round(float(crop_from) * img_size)))


class SquareCrop:
    """train --crop-from: a size x size crop of a uint8 [3, H, W] image (H, W >= size): `random` at a uniform
    position drawn from torch's default generator (augment_normalize seeds it per sample: resume-exact, any number
    of workers), else the centre one (torchvision's center_crop: validation's deterministic stand-in for a test
    crop at that pixel density)."""

    def __init__(self, size: int, random: bool):
        self.size, self.random = int(size), bool(random)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        s = self.size
        h, w = x.shape[-2:]
        if not self.random:
            from torchvision.transforms.v2 import functional as F
            return F.center_crop(x, [s, s])
        top = int(torch.randint(0, h - s + 1, ()))
        left = int(torch.randint(0, w - s + 1, ()))
        return x[..., top:top + s, left:left + s]


def random_erasing(preset: str):
    from torchvision.transforms import v2
    return v2.RandomErasing(p=0.25, value=0) if preset == "heavy" else None


# ---------------------------------------------------------------------------------------------------------------
# Decoded-image cache
# ---------------------------------------------------------------------------------------------------------------

def load_input_image(path, img_size: int, max_pixels: int | None):
    """The RGB image a model input of `img_size` is made from: a JPEG decoded at the reduced DCT scale that still
    covers the input size (draft). The decoded-image cache, --cache none and predict --tta none read it alike, so
    validation and predict see the same pixels."""
    return imgio.load_rgb(path, max_pixels=max_pixels, draft=(img_size, img_size))


def _decode_one(args) -> tuple[np.ndarray | None, str]:
    path, img_size, resize_mode, interpolation, fill, max_pixels = args
    try:
        im = load_input_image(path, img_size, max_pixels)
    except imgio.ImageReadError as e:
        return None, e.reason
    from torchvision.transforms import v2
    t = v2.Compose([v2.ToImage(), resize_transform(img_size, resize_mode, interpolation, fill)])
    return t(im).permute(1, 2, 0).contiguous().numpy(), ""


# the most of the memory available (--cache ram) or of the free disk where the memmap goes (--cache disk) that the
# decoded-image cache may take: the rest is for the model, its batches, the loader and the other processes
CACHE_SHARE = 0.6


def cache_room(folder: Path) -> tuple[int | None, int | None]:
    """(memory available: /proc/meminfo MemAvailable, free disk at `folder` or the nearest folder above it that
    exists) in bytes; None for what cannot be read here (no /proc/meminfo: not Linux), which is then not checked."""
    import shutil
    mem = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            mem = next((int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")), None)
    except (OSError, ValueError, IndexError):
        mem = None
    probe = Path(folder)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        disk = shutil.disk_usage(probe).free
    except OSError:
        disk = None
    return mem, disk


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def plan_cache(cache: str | None, n: int, img_size: int, folder: Path, shared: bool = False,
               crop_from: float = 1.0) -> str:
    """The decoded-image cache a run builds (ram | disk | none), checked before any image is decoded: its n x S x S x
    3 bytes against CACHE_SHARE of the memory available (ram) and of the free disk at `folder`, where the memmap goes
    (disk; the run folder, or with `shared`, under torchrun, the temp folder whose one memmap every process of the
    machine maps: counted once, and written there for ram too). `cache` None (not given): ram, or disk where ram
    would not fit, said in one warning; a given ram that would not fit, or a memmap without room, is refused in
    one line naming the bytes and the fixes. `crop_from` (train --crop-from): the images are cached at
    cached_size(img_size, crop_from), crop_from² x the bytes."""
    if cache == "none":
        return cache
    side = cached_size(img_size, crop_from)
    need = n * side * side * 3
    mem, disk = cache_room(folder)
    what = (f"the decoded-image cache of {n:,} images at {side}px"
            + (f" (--crop-from {crop_from:g} x --img-size {img_size})" if side > img_size else "")
            + f" needs {_gib(need)}")
    none = "--cache none (images decoded every epoch)"
    over_mem = cache in (None, "ram") and mem is not None and need > CACHE_SHARE * mem
    if over_mem and cache == "ram":
        raise UserError(f"--cache ram: {what}, over {CACHE_SHARE:.0%} of the {_gib(mem)} of memory available; use "
                        f"--cache disk (a memmap in {folder}), {none} or a smaller --img-size"
                        + (" or --crop-from" if side > img_size else ""))
    mode = "disk" if over_mem or cache == "disk" else "ram"
    if (mode == "disk" or shared) and disk is not None and need > CACHE_SHARE * disk:
        why = f"over {CACHE_SHARE:.0%} of the {_gib(mem)} of memory available and " if over_mem else ""
        raise UserError(f"{f'--cache {cache}: ' if cache else ''}{what}, {why}over {CACHE_SHARE:.0%} of the "
                        f"{_gib(disk)} free on the disk of {folder}, where its memmap goes; use {none}, a smaller "
                        f"--img-size{' or --crop-from' if side > img_size else ''}, or free disk space")
    if over_mem:
        from imgcls.console import warn
        # keyed without the memory available, which moves between tune's trials: the same data, said once
        warn(f"{what}, over {CACHE_SHARE:.0%} of the {_gib(mem)} of memory available: caching on disk instead "
             f"(--cache disk: a memmap in {folder}, removed at the end)", key=f"cache on disk: {what} in {folder}")
    return mode


def decode_cache(paths: Sequence[Path], img_size: int, resize_mode: str = "squash", interpolation: str = "bilinear",
                 workers: int = 1, memmap: Path | None = None, what: str = "decoding images",
                 fill: Sequence[int] = WHITE, meanwhile=None, max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS
                 ) -> tuple[np.ndarray, list[str]]:
    """Decode + resize every image once -> uint8 array [N, S, S, 3] and per-image error ('' = ok; an image with
    more than `max_pixels` pixels, train --max-pixels, is one).

    JPEG is decoded at a reduced scale >= the input size (draft mode), so big photos cost little. `meanwhile`:
    chunked_map's (run in this process while worker processes decode)."""
    n = len(paths)
    shape = (n, img_size, img_size, 3)
    arr = (np.lib.format.open_memmap(memmap, mode="w+", dtype=np.uint8, shape=shape) if memmap is not None
           else np.empty(shape, np.uint8))
    errors = [""] * n
    jobs = [(str(p), img_size, resize_mode, interpolation, tuple(fill), max_pixels) for p in paths]
    from imgcls.parallel import chunked_map
    for i, (a, err) in enumerate(chunked_map(_decode_one, jobs, workers, what, chunk=32, meanwhile=meanwhile)):
        if a is None:
            arr[i], errors[i] = 255, err
        else:
            arr[i] = a
    return arr, errors


def border_colour(images: np.ndarray, most: int = 1024, rows: np.ndarray | None = None) -> tuple[int, int, int]:
    """The median RGB of the one-pixel frames of uint8 images [N, S, S, 3] (at most `most` of them, evenly
    spaced; `rows`: of those rows only): the background a set's images share at their edges (white for clip art,
    black for digits)."""
    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    if not len(rows):
        return WHITE
    take = images[rows[np.linspace(0, len(rows) - 1, min(len(rows), most)).astype(int)]]
    frame = np.concatenate([take[:, 0], take[:, -1], take[:, 1:-1, 0], take[:, 1:-1, -1]], axis=1)   # [n, 4S-4, 3]
    return tuple(int(v) for v in np.median(frame.reshape(-1, 3), axis=0).round())


def resolve_fill(fill: str, paths: Sequence[Path], img_size: int, interpolation: str, images: np.ndarray | None = None,
                 workers: int = 1, max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS, rows: np.ndarray | None = None
                 ) -> tuple[tuple[int, int, int], str]:
    """(RGB, how it was chosen) of train --fill: the colour given, or for auto the border colour of `images` (the
    decoded cache; `rows`: its rows of readable images, None for all) or, without them, of up to 256 of `paths`
    decoded squashed at the input size."""
    from imgcls.train.config import parse_fill
    rgb = parse_fill(fill)
    if rgb is not None:
        return rgb, f"--fill {fill}"
    if images is None:
        idx = np.linspace(0, len(paths) - 1, min(len(paths), 256)).astype(int) if len(paths) else []
        images, errors = decode_cache([paths[i] for i in idx], img_size, "squash", interpolation, workers=workers,
                                      what="sampling the fill colour", max_pixels=max_pixels)
        images, rows = images[np.array([not e for e in errors], bool)], None
    return border_colour(images, rows=rows), "--fill auto: the median colour of the training images' borders"


class CachedImages(Dataset):
    """(image uint8->normalised float [3,S,S], targets [n_heads] long) from the decoded-image cache. `rows`: which
    cache rows this dataset sees (item k = images[rows[k]]), so train and validation index one shared cache (a RAM
    array or a memmap shared by DDP processes) instead of copying their part of it."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, mean, std, augment=None, erasing=None,
                 rows: np.ndarray | None = None, raw: bool = False, crop: SquareCrop | None = None):
        self.images, self.targets = images, torch.as_tensor(targets, dtype=torch.long)
        self.rows = np.arange(len(images)) if rows is None else np.asarray(rows)
        self.augment, self.erasing, self.crop = augment, erasing, crop
        self.norm = None if raw else normalize_transform(mean, std)   # raw: uint8 out (--gpu-aug normalises)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item):
        i, aug_seed = item if isinstance(item, tuple) else (item, None)
        x = torch.from_numpy(np.array(self.images[self.rows[i]])).permute(2, 0, 1)
        return augment_normalize(self, x, aug_seed), self.targets[i]


def augment_normalize(ds, x, aug_seed):
    """The per-item tail shared by both datasets: seeded augmentation (resume-exact) after the --crop-from crop (its
    position drawn first from the same seed), normalisation, erasing."""
    if aug_seed is not None:
        torch.default_generator.manual_seed(aug_seed)   # the CPU generator the transforms draw from (1 us, not 66)
    if ds.crop is not None:
        x = ds.crop(x)
    if ds.augment is not None:
        x = ds.augment(x)
    if ds.norm is None:
        return x
    x = ds.norm(x)
    if ds.erasing is not None:
        x = ds.erasing(x)
    return x


class FileImages(Dataset):
    """Images decoded from files every time (--cache none): for data that does not fit in RAM. Item i -> (image,
    targets, None); an image that can no longer be read (broken or deleted since the scan) -> (None, targets,
    (i, why)): collate_readable leaves it out of its batch and names it, so the run goes on as the decoded-image
    cache's does (the trainer reports it once, warn_unreadable). `img_size`: the side images are resized to (train's
    cached_size); `crop`: SquareCrop's input-size crop of it (--crop-from)."""

    def __init__(self, paths: Sequence[Path], targets: np.ndarray, img_size: int, resize_mode: str,
                 interpolation: str, mean, std, augment=None, erasing=None, raw: bool = False,
                 fill: Sequence[int] = WHITE, max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS,
                 crop: SquareCrop | None = None):
        from torchvision.transforms import v2
        self.paths, self.targets = list(paths), torch.as_tensor(targets, dtype=torch.long)
        self.max_pixels = max_pixels             # train --max-pixels, as the scan and the cache bound it
        self.img_size = img_size
        self.load = v2.Compose([v2.ToImage(), resize_transform(img_size, resize_mode, interpolation, fill)])
        self.augment, self.erasing, self.crop = augment, erasing, crop
        self.norm = None if raw else normalize_transform(mean, std)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item):
        i, aug_seed = item if isinstance(item, tuple) else (item, None)
        try:
            img = load_input_image(self.paths[i], self.img_size, self.max_pixels)
        except imgio.ImageReadError as e:
            return None, self.targets[i], (i, e.reason)
        return augment_normalize(self, self.load(img), aug_seed), self.targets[i], None


def collate_readable(items) -> tuple:
    """DataLoader collate of FileImages items -> (x, y, skipped): the readable items collated as usual (x and y None
    when none of them could be read; the batch is smaller by the others) and [(item, why)] of the others."""
    from torch.utils.data import default_collate
    ok = [it[:2] for it in items if it[2] is None]
    skipped = [it[2] for it in items if it[2] is not None]
    x, y = default_collate(ok) if ok else (None, None)
    return x, y, skipped


def warn_unreadable(path, why: str) -> None:
    """The one line for an image training skips because it cannot be read: at the decoded-image cache's pass, or
    with --cache none when its file broke or went after the scan."""
    from imgcls.console import warn
    warn(f"skipped unreadable image {path}: {why}")


# ---------------------------------------------------------------------------------------------------------------
# Which rows train, which validate
# ---------------------------------------------------------------------------------------------------------------

def usable_rows(df: pd.DataFrame, target: str = "label", readable: bool = True
                ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Readable rows that clean kept, that have a `target` value (the label, or train --target's attribute) and
    that split did not leave out (its drop_reason: --drop-ages, no value of a stratify column); with how many rows
    each rule left out, in that order ({'no label': n, 'unreadable': n, 'dropped by clean': n, 'left out by
    split': n}, zeros omitted). `readable` False: unreadable rows kept (their `error` as recorded)."""
    rules = [(f"no {target}" if target != "label" else "unlabeled", mf.text_values(df[target]) != ""),
             ("unreadable", mf.text_values(df["error"]).eq("") | (not readable)),
             ("dropped by clean", pd.Series(mf.kept(df), index=df.index))]
    if "drop_reason" in df.columns:     # a split table's rows split left out (clean's and unreadable ones above)
        rules.append(("left out by split (drop_reason)", mf.text_values(df["drop_reason"]) == ""))
    ok, counts = pd.Series(True, index=df.index), {}
    for name, rule in rules:
        counts[name] = int((ok & ~rule).sum())
        ok &= rule
    return df[ok].reset_index(drop=True), {k: v for k, v in counts.items() if v}


def single_image_classes(df: pd.DataFrame, by: str, folds: bool) -> dict[str, str]:
    """The classes of `by` with one original image (oversampled copies not counted) among train's usable rows, each
    with the side its image is on as train reads the table: 'train' (a random --val-split draw keeps it there,
    _assign_split), 'val', or with `folds` (--folds) split.leaks.sides' 'fold k' / 'train (every fold)'. One image
    cannot both train and validate: the class scores F1 0 in the validation macro-F1 (of the fold that holds it)."""
    from imgcls.split.leaks import sides
    orig = df[~mf.augmented(df)]
    y = orig[by].astype(str)
    counts = y.value_counts()
    one = y[y.map(counts) == 1]
    if one.empty:
        return {}
    if folds:
        side = sides(orig)
    elif has_val_split(orig):
        side = split_values(orig)
    else:       # _assign_split's draw keeps them in train, but for a set of single images, drawn as it is
        side = pd.Series("train" if (y.map(counts) > 1).sum() > 1 else "train or val, drawn", index=orig.index)
    return {c: str(side[i]) for i, c in sorted(one.items(), key=lambda kv: kv[1])}


def single_image_sides(sides) -> str:
    """Why a class of one image scores F1 0, for each side single_image_classes names (each said once, in the order
    met): 'in train: never validated; in val: never trained on'."""
    distinct = list(dict.fromkeys(sides))
    folds = [s for s in distinct if s.startswith("fold ")]
    why = {"train": "in train: never validated", "train (every fold)": "in train (every fold): never validated",
           "val": "in val: never trained on", "test": "in test: neither trained on nor validated (train uses no test "
           "row)", "train or val, drawn": "drawn into train or val: never validated, or never trained on"}
    said = []
    for side in distinct:
        if side in folds:
            if side == folds[0]:
                said.append(f"in {side if len(folds) == 1 else 'a fold'}: validated only by that fold's model, which "
                            f"never trained on it")
        else:
            said.append(why.get(side, f"in {side or 'no side'}: never both trained on and validated"))
    return "; ".join(said)


def has_val_split(df: pd.DataFrame) -> bool:
    """Whether a `split` column names validation rows (else assign_split draws a random --val-split)."""
    val = split_rows(df, "val")
    return val is not None and bool(val.any())


def assign_split(df: pd.DataFrame, fold: int | None, val_split: float, seed: int, by: str = "label",
                 drawn: tuple[np.ndarray, np.ndarray] | None = None,
                 say: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, val). With a `fold` column and `fold`: that fold validates, the others train (rows
    of `split` == test are never used). With a `split` column: train / val. Else a --val-split stratified by the
    column `by` (the model's classes).

    Oversampled copies (preprocess --oversample, manifest.augmented) are never validated on: the random split draws
    from the originals and a copy trains only when its sources do; a split that put a copy in val (a hand-made
    one: `imgcls split` keeps copies with their sources, so a validation image's copies are in val too, which is
    said as an info line) has it dropped from val, and a copy training while a source validates is dropped from
    training too (it would leak its source's pixels), as is a copy of a test image; a hand-made split's are
    warnings. `imgcls split --folds` keeps a mixup copy of images of two folds in the fold of one source, so it
    trains in the folds where none of its sources validates and is dropped from the others' training: said as an
    info line. `drawn`: _assign_split's masks of these arguments, made already (a resume checks its draw first).
    `say` False: the same masks without those lines (train's check of the sides before the long work, whose folds
    then say them)."""
    train, val = drawn if drawn is not None else _assign_split(df, fold, val_split, seed, by)
    copy = mf.augmented(df)
    if say and fold is None and not has_val_split(df):      # the draw's share of the originals: copies never validate
        _say_drawn_share(train & ~copy, val & ~copy, val_split)
    if not copy.any():
        return train, val
    from imgcls.console import info as said, warn as warned

    def info(msg: str) -> None:
        if say:
            said(msg)

    def warn(msg: str) -> None:
        if say:
            warned(msg)
    sources = mf.copy_source_rows(df)
    src_val = np.array([c and any(val[s] for s in srcs) for c, srcs in zip(copy, sources)], bool)
    in_val = val & copy
    leak = train & src_val
    of_fold = f" of fold {fold}" if fold is not None else ""
    # where `imgcls split` puts them (with their sources, so expected), and the copies of the images a random
    # --val-split draw validates, which it leaves in neither train nor val (unsaid, they were missing from the counts)
    drawn_out = copy & ~train & ~val & (fold is None and not has_val_split(df))
    with_sources = src_val & (in_val | drawn_out)
    if with_sources.any():
        n = int(with_sources.sum())
        info(f"{n} oversampled cop{'y' if n == 1 else 'ies'} (augmented_from) of validation images{of_fold}: "
             f"neither validated on (validation scores originals only) nor trained on (a copy shows its source)")
    hand_made = in_val & ~src_val           # in val while their sources train: not imgcls split's placement
    if hand_made.any():
        n = int(hand_made.sum())
        warn(f"{n} oversampled cop{'y' if n == 1 else 'ies'} (augmented_from) in the validation rows{of_fold} "
             f"whose sources train: dropped from validation (validation scores originals only; `imgcls split` "
             f"keeps copies with their sources)")
    # imgcls split's k-fold placement: in the fold of one source, while another source validates here
    folds = fold_numbers(df)
    placed = leak & np.array([folds is not None and any(folds[s] == folds[k] for s in srcs)
                              for k, srcs in enumerate(sources)], bool)
    if placed.any():
        n = int(placed.sum())
        info(f"{n} oversampled cop{'y' if n == 1 else 'ies'} (augmented_from) of a validation image{of_fold} and "
             f"an image of another fold (`imgcls split` keeps each in its other source's fold): not trained on here "
             f"(a copy shows its source), trained on in the folds where none of its sources validates")
    if (leak & ~placed).any():
        n = int((leak & ~placed).sum())
        warn(f"{n} oversampled cop{'y' if n == 1 else 'ies'} whose source validates: "
             f"dropped from training (they would show the model its validation images)")
    # a hand-made split's copy of a test image (`imgcls split` leaves such a copy out, or with its source in test)
    test = split_rows(df, "test")
    test = np.zeros(len(df), bool) if test is None else test
    of_test = train & ~leak & np.array([c and any(test[s] for s in srcs) for c, srcs in zip(copy, sources)], bool)
    if of_test.any():
        n = int(of_test.sum())
        warn(f"{n} oversampled cop{'y' if n == 1 else 'ies'} whose source is a test image: dropped from training "
             f"(they would show the model its test images)")
    return train & ~leak & ~of_test, val & ~copy


def _say_drawn_share(train: np.ndarray, val: np.ndarray, val_split: float) -> None:
    """The --val-split draw moves whole linked units (a person's images, a duplicate family): on a small set the
    share it validates on can be far from the one asked (one person of 7 images per class where 3 were wanted); said
    when it is more than 5 points off, so train's 'validating on a random stratified 0.2' line is not the last word."""
    n = int(train.sum() + val.sum())
    if n and abs(val.sum() / n - val_split) > 0.05:
        from imgcls.console import warn
        warn(f"the --val-split {val_split:g} draw validates on {int(val.sum())} of {n} images "
             f"({val.sum() / n:.2f}): linked images (a group, copies, a duplicate family) go to one side whole, "
             f"at least one unit per class")


def fold_training_rows(df: pd.DataFrame, fold: int) -> np.ndarray:
    """The rows fold `fold` of a k-fold table trains on, by assign_split's rule (every non-test row with a fold but
    the fold's own), before its oversampled-copy handling: what may have trained (predict's leak check)."""
    return _assign_split(df, fold, 0.0, 0)[0]


def fold_validation_rows(df: pd.DataFrame, fold: int) -> np.ndarray:
    """The rows fold `fold` of a k-fold table validates on, by assign_split's rule (the fold's own non-test rows, its
    oversampled copies never), without its lines."""
    return _assign_split(df, fold, 0.0, 0)[1] & ~mf.augmented(df)


def _assign_split(df: pd.DataFrame, fold: int | None, val_split: float, seed: int, by: str = "label"
                  ) -> tuple[np.ndarray, np.ndarray]:
    split = split_values(df)
    pool = np.ones(len(df), bool) if split is None else (split != "test").to_numpy()
    if fold is not None:
        f = fold_numbers(df)
        val = pool & (f == fold)
        train = pool & ~val & ~np.isnan(f)
        return train, val
    if has_val_split(df):
        return (split == "train").to_numpy(), (split == "val").to_numpy()
    if not 0 < val_split < 1:
        from imgcls.split.config import SPLIT_FIRST
        raise UserError(f"the data has no `split` column and --val-split is 0; pass --val-split 0.2, or split the "
                        f"data first: {SPLIT_FIRST}")
    from imgcls.console import loading
    with loading("sklearn"):        # seconds, where decoding was too short to import it meanwhile
        from sklearn.model_selection import train_test_split

    from imgcls.split.units import linked_units
    copy = mf.augmented(df)
    idx = np.flatnonzero(pool & ~copy)          # copies follow their sources (assign_split)
    # whole units (split's: rows sharing a group, sha256, source_path or clean's dup_group) go to one side, each
    # counted in its first row's class: with links, unlinked images validate first (_val_units_singles_first);
    # without links this is the plain stratified row split
    rows = df.iloc[idx].drop(columns=["augmented_from"], errors="ignore")
    units = linked_units(rows if "root" in rows.columns else rows.assign(root=""))
    _, first, unit_of, size = np.unique(units, return_index=True, return_inverse=True, return_counts=True)
    if (size > 1).any():
        val_units = _val_units_singles_first(df[by].astype(str).to_numpy()[idx[first]], size, val_split, seed)
    else:
        reps, rep_units = idx[np.sort(first)], unit_of[np.sort(first)]
        labels = df[by].astype(str).to_numpy()[reps]
        # a class of one image trains (never validated: said by single_image_classes' warning), as split keeps a
        # single-group class in train; drawn, it went to val unlearned, and its one member turned the
        # stratification off for every class
        counts = pd.Series(labels).value_counts()
        drawn = pd.Series(labels).map(counts).to_numpy() > 1
        if drawn.sum() > 1:         # (a set of single images, 3 classes of one each, is drawn as it is)
            reps, rep_units, labels, counts = reps[drawn], rep_units[drawn], labels[drawn], counts[counts > 1]
        strat = labels if counts.min() >= 2 and len(reps) * val_split >= len(counts) else None
        tr, va = train_test_split(reps, test_size=val_split, random_state=seed, stratify=strat)
        rep_unit = dict(zip(reps, rep_units))
        val_units = np.zeros(len(first), bool)
        val_units[[rep_unit[r] for r in va]] = True
    train, val = np.zeros(len(df), bool), np.zeros(len(df), bool)
    val[idx] = val_units[unit_of]
    train[idx] = ~val_units[unit_of]
    if copy.any():
        sources = mf.copy_source_rows(df)
        for k in np.flatnonzero(pool & copy):
            train[k] = bool(sources[k]) and all(train[s] for s in sources[k])
    return train, val


def _val_units_singles_first(unit_label: np.ndarray, size: np.ndarray, val_split: float, seed: int) -> np.ndarray:
    """Validation units for a --val-split of data with linked units (duplicate groups, exact copies, a person's
    images): per class, round(val_split x its images) validation images, drawn from its unlinked images first
    (seeded), then from whole linked units, at least one unit left to train. Linked groups (a drawing and its
    variants) so train unless a class has too few unlinked images: every family is learned from, and validation
    still never shows a picture that trains (bench/e2e_vs_timm.py: drawing whole families into validation cost test
    macro-F1). Hand-written: sklearn's group splitters draw groups without regard to their size."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(size), bool)
    for c in np.unique(unit_label):
        members = np.flatnonzero(unit_label == c)
        if len(members) < 2:
            continue
        want = int(round(val_split * size[members].sum()))
        singles = rng.permutation(members[size[members] == 1])
        linked = rng.permutation(members[size[members] > 1])
        got = 0
        for u in np.concatenate([singles, linked])[:len(members) - 1]:
            if got >= want:
                break
            if got + size[u] > want and got > 0:
                continue
            val[u] = True
            got += size[u]
    return val


# ---------------------------------------------------------------------------------------------------------------
# Epoch order: deterministic per (seed, epoch), sharded for DDP, optionally class-balanced
# ---------------------------------------------------------------------------------------------------------------

def oversample_goals(labels: np.ndarray, target, max_factor: float) -> np.ndarray:
    """Samples per class index in an oversampled epoch: imgcls.oversample's formula min(TARGET, n x max_factor)
    (never below n) over the training labels; 0 for a class absent from them."""
    from imgcls.oversample import class_targets
    counts = np.bincount(labels)
    goal = class_targets({str(c): int(n) for c, n in enumerate(counts) if n}, target, max_factor)
    return np.array([goal.get(str(c), 0) for c in range(len(counts))], dtype=np.int64)


def oversampled_pool(labels: np.ndarray, goals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Repeat-factor sampling: class c's n images each appear goals[c] // n times, and goals[c] % n of them (drawn
    without replacement) once more, so the class has exactly goals[c] samples in the epoch."""
    parts = []
    for c in np.flatnonzero(goals):
        members = np.flatnonzero(labels == c)
        q, r = divmod(int(goals[c]), len(members))
        parts.append(np.repeat(members, q))
        if r:
            parts.append(np.sort(rng.choice(members, size=r, replace=False)))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def duplicate_units(frame: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    """train --dup-weight group: a unit code (0..U-1) per row; rows linked by clean's dup_group or a shared sha256
    AND of the same class (`labels`) share one (a picture kept under two labels counts once for each)."""
    from imgcls import links
    n = len(frame)
    ii, jj = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for col in ("sha256", "dup_group"):
        if col in frame.columns:
            i, j = links.exact_pairs(mf.text_values(frame[col]).to_numpy())
            ii.append(i)
            jj.append(j)
    comp = links.components(n, np.concatenate(ii), np.concatenate(jj))
    return pd.factorize(pd.Series(comp).astype(str) + "|" + pd.Series(np.asarray(labels)).astype(str))[0]


def unit_labels(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The class of each unit (duplicate_units: one class per unit), in unit-code order."""
    out = np.zeros(int(units.max()) + 1 if len(units) else 0, np.int64)
    out[units] = labels
    return out


def epoch_indices(n: int, labels: np.ndarray | None, seed: int, epoch: int, weighted: bool,
                  rank: int = 0, world: int = 1, goals: np.ndarray | None = None,
                  units: np.ndarray | None = None) -> list[int]:
    """The indices one process visits in `epoch`. `weighted`: draw n samples with replacement, each with
    probability 1 / count(its class), so every class is equally likely in a batch (balanced batches). `goals`
    (--oversample, oversample_goals): each class repeated to goals[class] samples (oversampled_pool), shuffled.
    `units` (--dup-weight group, duplicate_units): the epoch is built over units as if each were one image (goals
    count units), then each visit of a unit becomes one of its members drawn at random, so a unit of k rows gives
    each member 1/k of a sample per epoch on average. Depends only on (seed, epoch): resuming at an epoch boundary
    replays the same order; DDP shards it by rank."""
    g = np.random.default_rng([seed, epoch, 7919])
    if units is not None:
        order = np.asarray(epoch_indices(int(units.max()) + 1, unit_labels(units, labels), seed, epoch, weighted,
                                         goals=goals), np.int64)
        by_unit = np.argsort(units, kind="stable")
        start = np.searchsorted(units[by_unit], np.arange(int(units.max()) + 1))
        size = np.bincount(units)
        member = np.random.default_rng([seed, epoch, 7919, 1]).random(len(order))
        pick = by_unit[start[order] + (member * size[order]).astype(np.int64)]
        return _shard(pick, rank, world)
    if goals is not None and weighted:
        raise UserError("--oversample and --sampler weighted both rebalance the classes; use one of them")
    if goals is not None and np.array_equal(goals, np.bincount(labels, minlength=len(goals))):
        goals = None    # no class grows: the plain epoch, so --oversample changes nothing it does not need to
    if goals is not None:
        pool = oversampled_pool(labels, goals, g)
        order = pool[g.permutation(len(pool))]
        n = len(order)
    elif weighted:
        counts = np.bincount(labels)
        w = 1.0 / counts[labels]
        order = g.choice(n, size=n, replace=True, p=w / w.sum())
    else:
        order = g.permutation(n)
    return _shard(order, rank, world)


def _shard(order: np.ndarray, rank: int, world: int) -> list[int]:
    """This process's part of the epoch order (padded by its start so every process gets the same count)."""
    n = len(order)
    per = math.ceil(n / world)
    order = np.concatenate([order, order[: per * world - n]]) if per * world > n else order
    return order[rank::world].tolist()


class ListSampler(torch.utils.data.Sampler):
    """Yields (index, augmentation seed): each sample's random augmentation is seeded from (seed, epoch, position),
    so results do not depend on the number of workers or on persistent workers, and a resumed run replays them."""

    def __init__(self, indices: list[int], seed: int = 0, epoch: int = 0):
        self.indices = indices
        self.base = (int(seed) * 1_000_003 + int(epoch) * 7_919) % (2 ** 31)

    def __iter__(self):
        return iter((i, (self.base + k * 2_654_435) % (2 ** 63)) for k, i in enumerate(self.indices))

    def __len__(self):
        return len(self.indices)
