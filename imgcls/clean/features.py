"""Hand-made features that tell photographs from drawings (computed on a small thumbnail).

Drawings (clip art, illustrations) have large perfectly flat regions, few distinct colours and hard edges;
photographs have sensor noise and texture everywhere, many colours and smooth gradients.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from imgcls import manifest as mf
from imgcls.console import progress_bar
from imgcls.io import ImageReadError, thumbnail

FEATURE_NAMES = ["flat_fraction", "unique_colours", "colour_entropy", "mean_gradient", "laplacian_energy",
                 "saturation_std", "near_white_fraction", "edge_density"]
THUMB = 128


def photo_features(im) -> np.ndarray:
    rgb = np.asarray(im, np.float32)
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    gx = np.abs(np.diff(grey, axis=1))[:-1, :]
    gy = np.abs(np.diff(grey, axis=0))[:, :-1]
    grad = gx + gy
    flat = float((grad < 1.0).mean())
    q = (rgb.astype(np.uint8) >> 3).astype(np.int32)
    codes = (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]
    uniq = len(np.unique(codes)) / codes.size
    h = np.bincount(((rgb.astype(np.uint8) >> 6).astype(np.int32) @ np.array([16, 4, 1])).ravel(), minlength=64)
    p = h[h > 0] / h.sum()
    entropy = float(-(p * np.log2(p)).sum())
    lap = grey[1:-1, 1:-1] * 4 - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    mx, mn = rgb.max(axis=2), rgb.min(axis=2)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0)
    white = float((mn >= 245).mean())
    edges = float((grad > 40).mean())
    return np.array([flat, uniq, entropy, float(grad.mean()), float(np.log1p(np.abs(lap).mean())),
                     float(sat.std()), white, edges], np.float32)


def feature_matrix(df: pd.DataFrame) -> np.ndarray:
    """(n, len(FEATURE_NAMES)); unreadable rows are NaN."""
    out = np.full((len(df), len(FEATURE_NAMES)), np.nan, np.float32)
    with progress_bar("photo features", len(df)) as advance:
        for i, (p, err) in enumerate(zip(mf.image_paths(df), df["error"].fillna(""))):
            if not err:
                try:
                    out[i] = photo_features(thumbnail(p, THUMB))
                except ImageReadError:
                    pass
            advance()
    return out
