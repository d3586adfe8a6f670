"""Shared test fixtures: small generated datasets and a byte-level snapshot of input trees."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def tree_snapshot(root: str | os.PathLike) -> dict[str, str]:
    """{relative path: sha256} of every file under root (to assert an input tree is byte-identical)."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def make_image(path: Path, size=(48, 40), seed: int = 0, kind: str = "blocks") -> Path:
    """A small RGB image; different seeds give visually different images."""
    rng = np.random.default_rng(seed)
    w, h = size
    if kind == "noise":
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:  # flat-colour blocks: illustration-like
        arr = np.full((h, w, 3), 255, np.uint8)
        for _ in range(4):
            x0, y0 = rng.integers(0, w // 2), rng.integers(0, h // 2)
            arr[y0:y0 + rng.integers(4, h // 2), x0:x0 + rng.integers(4, w // 2)] = rng.integers(0, 256, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def make_image_folder(root: Path, counts: dict[str, int], size=(48, 40), seed: int = 0, ext: str = ".png") -> Path:
    """ImageFolder root/<class>/<i>.png with `counts` images per class."""
    k = seed * 100_000
    for cls, n in counts.items():
        for i in range(n):
            make_image(root / cls / f"{i:03d}{ext}", size=size, seed=k)
            k += 1
    return root


def make_profiles(root: Path, n_profiles: int = 12, size=(32, 40), seed: int = 0) -> Path:
    """Mask-competition layout: <id>_<gender>_<race>_<age>/<mask1..5|incorrect_mask|normal>.jpg."""
    rng = np.random.default_rng(seed)
    stems = [f"mask{i}" for i in range(1, 6)] + ["incorrect_mask", "normal"]
    for p in range(n_profiles):
        gender = ("male", "female")[p % 2]
        age = int(rng.choice([20, 25, 35, 45, 58, 60, 65]))
        d = root / f"{p:06d}_{gender}_Asian_{age}"
        for j, stem in enumerate(stems):
            make_image(d / f"{stem}.jpg", size=size, seed=seed * 10_000 + p * 10 + j)
    return root


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """3 classes (6/4/2 images), 48x40 PNGs."""
    return make_image_folder(tmp_path / "raw", {"a": 6, "b": 4, "c": 2})


@pytest.fixture
def profile_folder(tmp_path) -> Path:
    return make_profiles(tmp_path / "profiles")
