"""Face boxes from deepface's detectors (`extract_faces`), measured on the ORIGINAL image; the crop is ours.

deepface's `extract_faces` returns aligned float crops; only its `facial_area` box is used, and the original
pixels are cut (plus a margin). With `enforce_detection=False` deepface returns one whole-image "face" of
confidence 0 when it finds none, so a face counts only when its confidence is > 0. `deepface.modules.detection`
(what `DeepFace.extract_faces` calls) is imported: OpenCV + numpy, no TensorFlow, no network. The
backend name is passed through, so every deepface detector is selectable once its files are present
(imgcls.weights.check_deepface_detector checks them first: deepface would otherwise try to download them; the
detector is built once per process, load_deepface_detector).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from imgcls.preprocess.config import MIN_DETECT_SIDE


@dataclass
class Face:
    x: int
    y: int
    w: int
    h: int
    confidence: float
    n_faces: int = 1


class FaceDetector:
    """One per worker: checks the backend's files and builds its model once (weights.load_deepface_detector: a
    damaged file is one line here, not a failure per image), then detects on RGB PIL images. `detect_size`: images
    with a longer side above it are detected on a downscaled copy, images with one below MIN_DETECT_SIDE (or
    `detect_size`, if smaller) on an upscaled copy (boxes are scaled back to the original)."""

    def __init__(self, backend: str = "opencv", detect_size: int | None = 640):
        from imgcls.weights import load_deepface_detector
        load_deepface_detector(backend)
        from deepface.modules import detection  # light: OpenCV + numpy, no TensorFlow
        self._detection = detection
        self.backend = backend
        self.detect_size = detect_size

    def detect(self, im: Image.Image) -> Face | None:
        """The most confident face (n_faces = how many were found), or None."""
        im = im.convert("RGB")
        size = im.size
        scale = 1.0
        side = max(im.size)
        target = min(side, self.detect_size) if self.detect_size else side
        target = max(target, min(MIN_DETECT_SIDE, self.detect_size or MIN_DETECT_SIDE))
        if target != side:
            scale = side / target
            im = im.resize((max(1, round(im.width / scale)), max(1, round(im.height / scale))),
                           Image.Resampling.BILINEAR if scale > 1 else Image.Resampling.BICUBIC)
        bgr = np.ascontiguousarray(np.asarray(im)[:, :, ::-1])
        found = self._detection.extract_faces(bgr, detector_backend=self.backend, enforce_detection=False,
                                              align=False)
        faces = []
        for f in found:
            conf = float(f.get("confidence") or 0.0)
            a = f["facial_area"]
            if conf <= 0 or a["w"] <= 0 or a["h"] <= 0:
                continue
            faces.append(Face(*box_in_original(a, scale, size), conf))
        if not faces:
            return None
        best = max(faces, key=lambda f: (f.confidence, f.w * f.h))
        best.n_faces = len(faces)
        return best


def box_in_original(area: dict, scale: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box (x, y, w, h) found on a copy of the image resized by 1 / `scale`, in the original of `size` (width,
    height): rounded, at least 1 px a side and starting inside the image. A box on the upscaled copy of an image of a
    few px rounded to w or h 0, or to x = its width: an empty crop."""
    width, height = size
    x = min(int(round(area["x"] * scale)), width - 1)
    y = min(int(round(area["y"] * scale)), height - 1)
    return x, y, max(1, int(round(area["w"] * scale))), max(1, int(round(area["h"] * scale)))


def crop_box(face: Face, size: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """The face box grown by `margin` x its size on every side, clipped to the image (width, height):
    (left, top, right, bottom)."""
    width, height = size
    mx, my = face.w * margin, face.h * margin
    left = max(0, int(round(face.x - mx)))
    top = max(0, int(round(face.y - my)))
    right = min(width, int(round(face.x + face.w + mx)))
    bottom = min(height, int(round(face.y + face.h + my)))
    return left, top, right, bottom
