"""Resizing for the cache: fit (pad: longer side = N; crop: shorter side = N then centre crop; squash: N x N),
pad_to (letterbox borders in the background colour), center_square (the no-face centre crop)."""
from __future__ import annotations

from PIL import Image, ImageOps

from imgcls.io import RESIZE_MODES

_RESAMPLE = Image.Resampling.BICUBIC


def center_square(im: Image.Image) -> Image.Image:
    """The largest centred square."""
    w, h = im.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return im.crop((left, top, left + s, top + s))


def fit(im: Image.Image, size: int, mode: str = "pad") -> Image.Image:
    """pad: scale so the longer side is `size` (pad_to adds the borders later); crop: cover size x size and cut
    the centre; squash: size x size ignoring the aspect ratio (imgcls.image_options.RESIZE_MODES)."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode {mode!r}; use one of {RESIZE_MODES}")
    if mode == "squash":
        return im.resize((size, size), _RESAMPLE)
    if mode == "crop":
        return ImageOps.fit(im, (size, size), _RESAMPLE)
    w, h = im.size
    scale = size / max(w, h)
    return im.resize((max(1, round(w * scale)), max(1, round(h * scale))), _RESAMPLE)


def pad_to(im: Image.Image, size: int, color) -> Image.Image:
    """Centre `im` (at most size x size) on a size x size canvas of `color` (RGBA colour for RGBA images). A grey
    ('L') image stays grey on a grey colour; a colour that is not grey makes it RGB."""
    if im.size == (size, size):
        return im
    if im.mode == "L" and len(set(color[:3])) > 1:
        im = im.convert("RGB")
    canvas = Image.new(im.mode, (size, size), color[0] if im.mode == "L" else tuple(color))
    canvas.paste(im, ((size - im.width) // 2, (size - im.height) // 2))
    return canvas


def resize(im: Image.Image, size: int, mode: str = "pad", fill=(255, 255, 255)) -> Image.Image:
    """fit + pad_to in one call (what `--size N --resize-mode MODE` does when no background removal runs between)."""
    out = fit(im, size, mode)
    return pad_to(out, size, fill) if mode == "pad" else out
