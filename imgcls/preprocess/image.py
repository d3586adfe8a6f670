"""One image through preprocess's steps (decode, face crop, resize, background removal, padding, save), and the
worker processes that run them with their models built once."""
from __future__ import annotations

import os
from pathlib import Path

from imgcls import io as imgio
from imgcls import manifest as mf
from imgcls.errors import UserError
from imgcls.fsutil import atomic_path
from imgcls.manifest import NO_FACE_DROPPED
from imgcls.preprocess.config import MAX_SIDE as FORMAT_MAX_SIDE, PreprocessConfig

FACE_COLUMNS = [c for c in mf.columns_of("preprocess") if c.startswith("face")]   # declared in imgcls.manifest
RECORD_COLUMNS = FACE_COLUMNS + ["matte_kept", "bg_removed"]      # an image's record's manifest columns


class Models:
    """The models one process needs, built once (a rembg session / a deepface detector per worker). `rembg_file`:
    the rembg model file the parent process found and checked (weights.rembg_model_file), not checked again; `bg`:
    a rembg session already made for it (the parent's load check of a model with no known md5), used as it is."""

    def __init__(self, cfg: PreprocessConfig, threads: int = 0, rembg_file: Path | None = None, bg=None):
        self.faces = self.bg = None
        if cfg.face_crop:
            from imgcls.preprocess.faces import FaceDetector
            self.faces = FaceDetector(cfg.detector, cfg.detect_size)
        if cfg.remove_bg:
            from imgcls.preprocess.background import BackgroundRemover
            self.bg = bg or BackgroundRemover(cfg.rembg_model, threads=threads, path=rembg_file)


def empty_record() -> dict:
    rec = {c: None for c in RECORD_COLUMNS}
    rec.update(bg_removed=False, error="", written=False)
    return rec


@imgio.own_pixel_bound()     # its crops of the full-size decode are bounded by --max-pixels, not PIL's limit
def process_image(src: str | os.PathLike, dst: str | os.PathLike | None, cfg: PreprocessConfig,
                  models: Models) -> tuple[dict, object]:
    """Process one file; returns (record, PIL image or None). Writes `dst` atomically when given.
    Never raises for a bad image: the record's `error` says what went wrong."""
    from imgcls.preprocess.faces import crop_box
    from imgcls.preprocess.resize import center_square, fit, pad_to
    rec = empty_record()
    try:
        # without a face crop the output needs no more than --size pixels: JPEGs decode at a reduced DCT scale
        draft = (cfg.size, cfg.size) if cfg.size and not cfg.face_crop else None
        im = imgio.load_rgb_or_grey(src, max_pixels=cfg.max_pixels, draft=draft)   # a grey source stays 'L'
    except imgio.ImageReadError as e:
        rec["error"] = e.reason
        return rec, None
    try:
        bg = cfg.bg_rgb()
        mask = None     # rembg's foreground mask, cut and scaled with the image
        if models.faces is not None:
            face = models.faces.detect(im)
            rec["face_found"] = face is not None
            rec["faces"] = face.n_faces if face else 0
            if face is not None:
                rec.update(face_x=face.x, face_y=face.y, face_w=face.w, face_h=face.h,
                           face_confidence=round(face.confidence, 4))
                box = crop_box(face, im.size, cfg.face_margin)
                cut = lambda x: x.crop(box)    # noqa: E731
            elif cfg.no_face == "drop":
                rec["error"] = NO_FACE_DROPPED
                return rec, None
            elif cfg.no_face == "center-crop":
                cut = center_square
            else:
                cut = None
            if cut is not None:
                if models.bg is not None:   # matting sees the whole person: on a face crop alone it can lose the face
                    whole = models.bg.mask(im)
                    if face is not None:
                        rec["face_kept"] = face_kept(whole, face)
                    mask = cut(whole)
                im = cut(im)
        if cfg.size:
            im = fit(im, cfg.size, cfg.resize_mode)
            mask = None if mask is None else fit(mask, cfg.size, cfg.resize_mode)
        if models.bg is not None:
            if mask is None:
                mask = models.bg.mask(im)
            rec["matte_kept"] = matte_kept(mask)
            im = models.bg.cutout(im, None if cfg.keep_alpha else bg, mask=mask)
            rec["bg_removed"] = True
        if cfg.size and cfg.resize_mode == "pad":
            im = pad_to(im, cfg.size, (*bg, 0) if im.mode == "RGBA" else bg)
    except Exception as e:   # a model failing on one odd image: report it, go on
        rec["error"] = f"processing failed: {type(e).__name__}: {e}"
        return rec, None
    if dst is not None:
        unwritable = unwritable_reason(im, dst)
        if unwritable is None:
            try:
                save_image(im, dst, cfg.quality)
            except (ValueError, OSError) as e:
                if isinstance(e, OSError) and e.errno is not None:    # the disk's (full, read-only): the run's error
                    raise
                unwritable = f"{type(e).__name__}: {e}"             # the encoder's, for this image
        if unwritable is not None:
            rec["error"] = f"processing failed: {unwritable}"
            return rec, None
        rec.update({k: v for k, v in imgio.probe(dst, max_pixels=None).items() if k != "error"})
        rec["written"] = True
    return rec, im


def face_kept(mask, face) -> float:
    """The share of a face rembg's matte keeps: the mask's mean over the central 80% of the face box (a face is
    foreground; a low share is a face taken for background, a washed-out crop: bench/bg_order.py)."""
    import numpy as np
    box = (int(face.x + 0.1 * face.w), int(face.y + 0.1 * face.h),
           max(int(face.x + 0.9 * face.w), int(face.x + 0.1 * face.w) + 1),
           max(int(face.y + 0.9 * face.h), int(face.y + 0.1 * face.h) + 1))
    return round(float(np.asarray(mask.crop(box), np.float32).mean() / 255.0), 4)


def matte_kept(mask) -> float:
    """The share of the image rembg's matte keeps (its mean alpha): near 0 the image is blank after the background
    removal, a face found or not (face_kept judges the face alone)."""
    import numpy as np
    return round(float(np.asarray(mask, np.float32).mean() / 255.0), 4)


# the longest side each written format holds, by extension (config.MAX_SIDE): a larger image, a panorama under
# --format webp or a 70000 px PNG named .jpg, is reported as that image's failure, not raised from the encoder, ending
# the run (a --size over it is refused before the scan: PreprocessConfig.validate)
MAX_SIDE = {".webp": FORMAT_MAX_SIDE["webp"], ".jpg": FORMAT_MAX_SIDE["jpg"], ".jpeg": FORMAT_MAX_SIDE["jpg"]}


def unwritable_reason(im, dst: str | os.PathLike) -> str | None:
    """Why `im` cannot be saved as `dst`'s format (its side over MAX_SIDE), with the fix; None when it can."""
    fmt, side = MAX_SIDE.get(Path(dst).suffix.lower(), (None, None))
    if side is None or max(im.size) <= side:
        return None
    return (f"{im.width}x{im.height} is larger than {fmt} holds ({side} px a side): --size N makes it smaller, "
            f"--format png writes any size")


def save_image(im, dst: str | os.PathLike, quality: int = 95) -> None:
    dst = Path(dst)
    ext = dst.suffix.lower()
    with atomic_path(dst) as tmp:
        if ext in (".jpg", ".jpeg"):    # a grey image is a one-channel JPEG
            (im if im.mode in ("RGB", "L") else im.convert("RGB")).save(tmp, "JPEG", quality=quality)
        elif ext == ".webp":
            im.save(tmp, "WEBP", quality=quality)
        else:
            im.save(tmp, "PNG", compress_level=3)


_WORKER: dict = {}


def init_worker(cfg: PreprocessConfig, threads: int, rembg_file: Path | None = None) -> None:
    import cv2

    from imgcls.parallel import ignore_sigint
    ignore_sigint()       # a worker took a KeyboardInterrupt in an image as that image's result and went on
    cv2.setNumThreads(1)
    _WORKER["cfg"] = cfg
    try:
        _WORKER["models"] = Models(cfg, threads=threads, rembg_file=rembg_file)
    except UserError as e:     # raised by the first task, as one line: an initializer's error broke the pool
        _WORKER["error"] = e


def run_chunk(tasks: list[tuple[int, str, str]]) -> list[tuple[int, dict]]:
    if "error" in _WORKER:
        raise _WORKER["error"]
    cfg, models = _WORKER["cfg"], _WORKER["models"]
    return [(i, process_image(src, dst, cfg, models)[0]) for i, src, dst in tasks]
