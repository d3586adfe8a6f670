"""Hand-made features that tell photographs from drawings (computed on a small thumbnail).

Drawings (clip art, illustrations) have large perfectly flat regions, few distinct colours and hard edges;
photographs have sensor noise and texture everywhere, many colours and smooth gradients.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from imgcls import manifest as mf
from imgcls.io import ImageReadError, thumbnail

FEATURE_NAMES = ["flat_fraction", "unique_colours", "colour_entropy", "mean_gradient", "laplacian_energy",
                 "saturation_std", "near_white_fraction", "edge_density",
                 "texture_fraction", "smooth_fraction", "unique_colours_native"]
THUMB = 128
NATIVE = 256      # the texture cues are measured at (up to) this size: resampling further would smooth them away
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)  # Immerkaer's noise operator


def texture_features(im) -> np.ndarray:
    """Cues measured near native resolution: the share of pixels with any fine texture (|noise operator| > 1, as in
    Immerkaer's noise estimate: photographs have it almost everywhere, rendered drawings only on edges), the share of
    pixels equal to their neighbours (sum of RGB differences <= 3: flat fills and smooth gradients), and the share
    of distinct 24-bit colours."""
    from scipy.ndimage import convolve
    rgb = np.asarray(im, np.float32)
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    if min(grey.shape) < 3:
        return np.array([0.0, 1.0, 0.0], np.float32)
    noise = np.abs(convolve(grey, _NOISE_KERNEL, mode="nearest"))[1:-1, 1:-1]
    # channel sums and counts written out: numpy's sum over a 3-long last axis and np.unique's sort took 2x the time
    dx, dy = np.abs(np.diff(rgb, axis=1)), np.abs(np.diff(rgb, axis=0))
    diff = (dx[..., 0] + dx[..., 1] + dx[..., 2])[:-1, :] + (dy[..., 0] + dy[..., 1] + dy[..., 2])[:, :-1]
    q = np.asarray(im, np.uint8).astype(np.int32)
    codes = (q[..., 0] << 16) | (q[..., 1] << 8) | q[..., 2]
    return np.array([(noise > 1).mean(), (diff <= 3).mean(), len(pd.unique(codes.ravel())) / codes.size], np.float32)


def photo_features(im) -> np.ndarray:
    rgb = np.asarray(im, np.float32)
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    gx = np.abs(np.diff(grey, axis=1))[:-1, :]
    gy = np.abs(np.diff(grey, axis=0))[:, :-1]
    grad = gx + gy
    flat = float((grad < 1.0).mean())
    u8 = np.asarray(im, np.uint8)
    q = (u8 >> 3).astype(np.int32)
    codes = (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]
    uniq = np.count_nonzero(np.bincount(codes.ravel(), minlength=1 << 15)) / codes.size
    q6 = (u8 >> 6).astype(np.int32)
    h = np.bincount((q6[..., 0] * 16 + q6[..., 1] * 4 + q6[..., 2]).ravel(), minlength=64)
    p = h[h > 0] / h.sum()
    entropy = float(-(p * np.log2(p)).sum())
    lap = grey[1:-1, 1:-1] * 4 - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0)
    white = float((mn >= 245).mean())
    edges = float((grad > 40).mean())
    return np.array([flat, uniq, entropy, float(grad.mean()), float(np.log1p(np.abs(lap).mean())),
                     float(sat.std()), white, edges], np.float32)


def _features_of(args) -> np.ndarray | None:
    path, err = args
    if err:
        return None
    try:
        im = thumbnail(path, NATIVE)
    except ImageReadError:
        return None
    small = im.copy()
    small.thumbnail((THUMB, THUMB), Image.Resampling.BILINEAR)
    return np.r_[photo_features(small), texture_features(im)]


def feature_matrix(df: pd.DataFrame, workers: int = 1) -> np.ndarray:
    """(n, len(FEATURE_NAMES)); unreadable rows are NaN. `workers` processes."""
    from imgcls.parallel import chunked_map
    from imgcls.train.dist import current
    d = current()                      # under torchrun each rank measures its share; rank 0 gets them all
    out = np.full((len(df), len(FEATURE_NAMES)), np.nan, np.float32)
    rows = d.mine(np.arange(len(df)))
    paths, errors = mf.image_paths(df), df["error"].fillna("").astype(str).to_numpy()
    jobs = [(str(paths[i]), errors[i]) for i in rows]
    for i, f in zip(rows, chunked_map(_features_of, jobs, workers, "photo features")):
        if f is not None:
            out[i] = f
    d.gather_rows(out, np.arange(len(df)))
    return out
