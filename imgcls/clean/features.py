"""Hand-made features that tell photographs from drawings (computed on a small thumbnail).

Drawings (clip art, illustrations) have large perfectly flat regions, few distinct colours and hard edges;
photographs have sensor noise and texture everywhere, many colours and smooth gradients.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from imgcls import manifest as mf
from imgcls.io import DEFAULT_MAX_PIXELS, ImageReadError, shrink, thumbnail

FEATURE_NAMES = ["flat_fraction", "unique_colours", "colour_entropy", "mean_gradient", "laplacian_energy",
                 "saturation_std", "near_white_fraction", "edge_density",
                 "texture_fraction", "smooth_fraction", "unique_colours_native"]
THUMB = 128
NATIVE = 256      # the texture cues are measured at (up to) this size: resampling further would smooth them away
CACHE_VERSION = 1  # of the FeatureCache file (its name also carries a digest of this module)
# Immerkaer's noise operator [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] = the outer product of this with itself
_NOISE_1D = np.array([1, -2, 1], np.float64)
_GREY = np.array([0.299, 0.587, 0.114], np.float32)
MIN_SIDE = 3      # the neighbour cues (gradients, Laplacian, noise operator) need 3 pixels a side


def _edge_padded(a: np.ndarray) -> np.ndarray:
    """`a` (H x W [x C]) with its last row / column repeated up to MIN_SIDE a side: a 1 x 1 image, or a 4000 x 20
    strip that a thumbnail makes 256 x 1, then has neighbour cues (a repeated edge adds no gradient: they are those
    of the pixels it has) where the cues of an empty neighbourhood were NaN and numpy warned. Larger images are
    returned as they are."""
    short = [(0, max(0, MIN_SIDE - n)) for n in a.shape[:2]]
    return np.pad(a, short + [(0, 0)] * (a.ndim - 2), mode="edge") if any(p for _, p in short) else a


def texture_features(im) -> np.ndarray:
    """Cues measured near native resolution: the share of pixels with any fine texture (|noise operator| > 1, as in
    Immerkaer's noise estimate: photographs have it almost everywhere, rendered drawings only on edges), the share of
    pixels equal to their neighbours (sum of RGB differences <= 3: flat fills and smooth gradients), and the share
    of distinct 24-bit colours. An image under MIN_SIDE a side is edge-padded for the first two (_edge_padded)."""
    import cv2
    u8 = np.asarray(im, np.uint8)
    q = u8.astype(np.int32)
    codes = (q[..., 0] << 16) | (q[..., 1] << 8) | q[..., 2]
    unique = len(pd.unique(codes.ravel())) / codes.size
    u8 = _edge_padded(u8)
    grey = u8.astype(np.float32) @ _GREY
    # the operator in float64, separably: float32 grey levels times these integer weights sum exactly in a double,
    # in any order, so the float32 result is the one scipy.ndimage.convolve gave (it accumulates in double)
    noise = cv2.sepFilter2D(grey.astype(np.float64), cv2.CV_64F, _NOISE_1D, _NOISE_1D,
                            borderType=cv2.BORDER_REPLICATE)[1:-1, 1:-1].astype(np.float32)
    # neighbour differences in int16: exact, as the float32 sums of these integers were; channel sums written out
    # (numpy's sum over a 3-long last axis took 2x the time)
    s = u8.astype(np.int16)
    dx, dy = np.abs(np.diff(s, axis=1)), np.abs(np.diff(s, axis=0))
    diff = (dx[..., 0] + dx[..., 1] + dx[..., 2])[:-1, :] + (dy[..., 0] + dy[..., 1] + dy[..., 2])[:, :-1]
    return np.array([(np.abs(noise) > 1).mean(), (diff <= 3).mean(), unique], np.float32)


def photo_features(im) -> np.ndarray:
    """The colour cues of the pixels; the neighbour cues (gradient, Laplacian) of the image edge-padded to MIN_SIDE
    a side (_edge_padded), so that every image has all of them."""
    rgb = np.asarray(im, np.float32)
    grey = _edge_padded(rgb @ _GREY)
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


def image_features(im) -> np.ndarray:
    """The features of an RGB image at most NATIVE a side (io.thumbnail(path, NATIVE) or io.shrink(im, NATIVE))."""
    return np.r_[photo_features(shrink(im, THUMB)), texture_features(im)]


def _features_of(path: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray | None:
    try:
        return image_features(thumbnail(path, NATIVE, max_pixels=max_pixels))
    except ImageReadError:
        return None


class FeatureCache:
    """Each image's features kept by its sha256 beside the embedding cache (`cache_dir`, default that folder), in a
    file whose name carries a digest of this module, imgcls.io and the libraries (pair_cache.numbers_digest): a
    later clean of the same images (another threshold, --conflicts, --ood-threshold) measures only new ones."""

    def __init__(self, cache_dir: str | None = None):
        from pathlib import Path

        from imgcls.clean.pair_cache import numbers_digest
        from imgcls.embed import VectorCache, open_cache_folder
        folder = open_cache_folder(cache_dir)
        self.file = VectorCache(folder / f"photo_features_{numbers_digest(FeatureCache, CACHE_VERSION)}.npz",
                                "photo-features", NATIVE, "features", "photo-feature cache",
                                replaces="photo_features_*.npz")

    def fill(self, shas: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Copy the kept features of `rows` (positions into shas / out) into out; returns the rows still to measure."""
        found, vecs, todo = self.file.lookup(shas, rows, out.shape[1])
        out[found] = vecs
        if len(found) and not len(todo):
            from imgcls.console import plural, reused
            reused(f"photo features of {plural(len(found), 'image')}")
        return todo

    def store(self, shas: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
        """Keep the measured (finite) features of `rows` and write the file when any are new."""
        self.file.add({shas[i]: out[i].copy() for i in rows if shas[i] and np.isfinite(out[i]).all()},
                      "measures these images again")


def feature_matrix(df: pd.DataFrame, workers: int = 1, cache_dir: str | None = None,
                   max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(n, len(FEATURE_NAMES)); unreadable rows are NaN. `workers` processes. Byte-identical files (one sha256) are
    measured once, and images measured by an earlier run are taken from the FeatureCache in `cache_dir`.
    `max_pixels`: the decoding bound (--max-pixels)."""
    from functools import partial
    from imgcls.links import content_representatives
    from imgcls.parallel import chunked_map
    from imgcls.train.dist import current
    d = current()                      # under torchrun each rank measures its share; rank 0 gets them all
    out = np.full((len(df), len(FEATURE_NAMES)), np.nan, np.float32)
    paths = mf.image_paths(df)
    measured, first, later = content_representatives(df)
    cache, shas = FeatureCache(cache_dir), mf.content_hashes(df)
    todo = cache.fill(shas, measured, out)
    rows = d.mine(todo)
    jobs = [str(paths[i]) for i in rows]
    measured = chunked_map(partial(_features_of, max_pixels=max_pixels), jobs, workers, "photo features")
    for i, f in zip(rows, measured, strict=True):
        if f is not None:
            out[i] = f
    d.gather_rows(out, todo)
    if d.main:
        cache.store(shas, todo, out)
    out[later] = out[first]
    return out
