"""Near-duplicate search. Blockwise cosine on L2-normalised vectors (never an n x n matrix in memory), then
verification of the candidate pairs on small RGB thumbnails.

Why two stages: backbone embeddings find copies whatever a training transform did (crop, rescale, re-encode), but
on clip art they also call many *different* drawings of one style similar (same white background, same palette).
A copy, unlike a look-alike, still matches pixel for pixel once aligned: `verify_pairs` scores each candidate pair by
the best normalised cross-correlation over centred crops (0-7.5% a side), horizontal flip and a brightness gain with
clipping (x1.0-1.3 either way), which a brightened, cropped, flipped or re-encoded copy passes and a recoloured or
redrawn variant does not.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MAX_BLOCK_ELEMENTS = 25_000_000  # one similarity block holds at most this many floats (100 MB), whatever n is
THUMB = 48                        # thumbnails kept for verification (uint8, 6.9 kB per image)
VERIFY = 24                       # side of the aligned crops compared
TINY = 16                         # side of the tiny-thumbnail candidate descriptor
CANDIDATES_PER_IMAGE = 30       # each image's most similar partners verified, at most, per candidate descriptor
CROPS = (0.0, 0.025, 0.05, 0.075)
GAINS = (1.0, 1.1, 1.2, 1.3)


def _rows_per_block(n: int, block_size: int) -> int:
    return max(1, min(block_size, MAX_BLOCK_ELEMENTS // max(n, 1)))


def pair_arrays(emb: np.ndarray, threshold: float, flipped: np.ndarray | None = None,
                block_size: int = 2048, max_per_row: int | None = None,
                valid: np.ndarray | None = None, what: str | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (i < j) with cosine >= threshold as arrays (i, j, sim). With `flipped` (descriptors of the mirrored
    images) the similarity is max(cos(a, b), cos(a, flip(b))). `max_per_row` keeps only each row's most similar
    partners among later rows (bounds the pair count on big sets of look-alikes). `valid`: rows that may pair
    (default: non-zero rows). `what`: a progress-bar label (rows done). Memory: block_size x n floats."""
    from imgcls.console import progress_bar
    emb = np.asarray(emb, np.float32)
    n = len(emb)
    nonzero = np.linalg.norm(emb, axis=1) > 0 if n else np.zeros(0, bool)
    valid = nonzero if valid is None else (np.asarray(valid, bool) & nonzero)
    out_i, out_j, out_s = [], [], []
    block_size = _rows_per_block(n, block_size)
    with progress_bar(what, n) as advance:
        for start in range(0, n, block_size):
            _pair_block(emb, flipped, valid, start, block_size, threshold, max_per_row, out_i, out_j, out_s)
            advance(min(block_size, n - start))
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_s).astype(np.float32)


def _pair_block(emb, flipped, valid, start, block_size, threshold, max_per_row, out_i, out_j, out_s):
    """One block of rows [start, start + block_size) against every later row; appends (i, j, sim) to the lists."""
    block = emb[start:start + block_size]
    sims = block @ emb[start:].T           # only j >= i: upper triangle, blockwise
    if flipped is not None:
        np.maximum(sims, block @ np.asarray(flipped[start:], np.float32).T, out=sims)
    for r in range(len(block)):
        sims[r, :r + 1] = -2.0                      # j > i only
    sims[:, ~valid[start:]] = -2.0                  # rows that may not pair take no partner's place
    if max_per_row is not None and sims.shape[1] > max_per_row:
        k = sims.shape[1] - max_per_row
        kth = np.partition(sims, k, axis=1)[:, k:k + 1]            # each row's max_per_row-th largest
        sims[sims < kth] = -2.0
    rows, cols = np.nonzero(sims >= threshold)
    i, j = rows + start, cols + start
    keep = (j > i) & valid[i] & valid[j]
    out_i.append(i[keep])
    out_j.append(j[keep])
    out_s.append(sims[rows[keep], cols[keep]])


def max_similarity(emb: np.ndarray, block_size: int = 2048) -> np.ndarray:
    """Each row's highest cosine to any other row (for threshold sweeps)."""
    emb = np.asarray(emb, np.float32)
    best = np.full(len(emb), -1.0, np.float32)
    block_size = _rows_per_block(len(emb), block_size)
    for start in range(0, len(emb), block_size):
        sims = emb[start:start + block_size] @ emb.T
        for r in range(len(sims)):
            sims[r, start + r] = -1.0
        best[start:start + block_size] = sims.max(axis=1)
    return best


# --- verification on thumbnails ----------------------------------------------------------------------------------

def _thumbnail_of(args) -> np.ndarray | None:
    from PIL import Image

    from imgcls.io import ImageReadError, load_rgb
    path, size = args
    try:
        return np.asarray(load_rgb(path, draft=(size, size)).resize((size, size), Image.Resampling.BOX))
    except ImageReadError:
        return None


def thumbnails(df: pd.DataFrame, size: int = THUMB, only: np.ndarray | None = None,
               workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size, 3) uint8 thumbnails (aspect squashed, box-filtered) and a validity mask; one pass over the
    rows (those where `only` is true), over `workers` processes."""
    from imgcls import manifest as mf
    from imgcls.parallel import chunked_map
    out = np.zeros((len(df), size, size, 3), np.uint8)
    ok = np.zeros(len(df), bool)
    errors = df["error"].fillna("").astype(str).to_numpy() if "error" in df.columns else np.array([""] * len(df))
    wanted = np.ones(len(df), bool) if only is None else np.asarray(only, bool)
    rows = np.flatnonzero(wanted & (errors == ""))
    paths = mf.image_paths(df)
    jobs = [(str(paths[i]), size) for i in rows]
    for i, t in zip(rows, chunked_map(_thumbnail_of, jobs, workers, "thumbnails")):
        if t is not None:
            out[i], ok[i] = t, True
    return out, ok


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(-1, keepdims=True, dtype=np.float32)
    x /= np.maximum(np.sqrt(np.einsum("...d,...d->...", x, x))[..., None], 1e-6)
    return x


def tiny_descriptors(thumbs: np.ndarray, ok: np.ndarray | None = None, size: int = TINY) -> tuple[np.ndarray, np.ndarray]:
    """Zero-mean, L2-normalised RGB size x size thumbnails and their mirror images: cosine = Pearson correlation, so
    brightness and contrast changes cancel (rows not ok are zero, so they pair with nothing)."""
    n, f = len(thumbs), thumbs.shape[1] // size
    d, dflip = np.empty((n, size * size * 3), np.float32), np.empty((n, size * size * 3), np.float32)
    for s in range(0, n, 4096):   # in chunks: a float copy of 100k thumbnails would take 2.9 GB
        t = thumbs[s:s + 4096, :size * f, :size * f].astype(np.float32)
        t = t.reshape(len(t), size, f, size, f, 3).mean((2, 4))
        d[s:s + 4096] = _normalise(t.reshape(len(t), -1))
        dflip[s:s + 4096] = _normalise(t[:, :, ::-1].reshape(len(t), -1))
    if ok is not None:
        d[~ok] = 0
        dflip[~ok] = 0
    return d, dflip


def _crop_matrix(c: float, src: int = THUMB, dst: int = VERIFY) -> np.ndarray:
    """(dst, src) linear resampling of the centred crop that drops `c` of each side (triangle filter, antialiased)."""
    lo, width = c * src, src * (1 - 2 * c)
    scale = width / dst
    support = max(1.0, scale)
    centres = lo + (np.arange(dst) + 0.5) * scale - 0.5
    w = np.maximum(0.0, 1 - np.abs(np.arange(src)[None, :] - centres[:, None]) / support)
    return (w / w.sum(1, keepdims=True)).astype(np.float32)


_MATS = None


def _variants(t: np.ndarray) -> np.ndarray:
    """(b, 8, VERIFY*VERIFY*3), normalised: the 4 centred crops of each thumbnail, then the same of its mirror."""
    global _MATS
    if _MATS is None:
        _MATS = [_crop_matrix(c) for c in CROPS]
    t = np.ascontiguousarray(t.astype(np.float32).transpose(0, 3, 1, 2))      # (b, 3, THUMB, THUMB)
    crops = [np.matmul(np.matmul(m, t), m.T) for m in _MATS]                  # (b, 3, VERIFY, VERIFY) each
    v = np.stack(crops + [c[..., ::-1] for c in crops], 1)
    return v.reshape(len(t), len(crops) * 2, -1)


def verify_pairs(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 1024,
                 what: str | None = None) -> np.ndarray:
    """Best normalised cross-correlation of each pair over crops, mirror and brightness gain (see module doc).
    Pairs are taken in chunks; each image's variants are computed once per chunk. `what`: a progress-bar label."""
    from imgcls.console import progress_bar
    out = np.zeros(len(i), np.float32)
    order = np.lexsort((j, i))
    with progress_bar(what, len(order)) as advance:
        for s in range(0, len(order), chunk):
            sel = order[s:s + chunk]
            out[sel] = _verify_chunk(thumbs, i[sel], j[sel])
            advance(len(sel))
    return out


def _verify_chunk(thumbs: np.ndarray, a_idx: np.ndarray, b_idx: np.ndarray) -> np.ndarray:
    """verify_pairs' score for one chunk of pairs (a_idx[k], b_idx[k])."""
    uniq, inv = np.unique(np.r_[a_idx, b_idx], return_inverse=True)
    var = _variants(thumbs[uniq])
    raw = var[:, 0].copy()                              # unnormalised: the gain acts on pixel values
    var = _normalise(var)
    ia, ib = inv[:len(a_idx)], inv[len(a_idx):]
    best = np.full(len(a_idx), -1.0, np.float32)
    for x_idx, y_idx in ((ia, ib), (ib, ia)):
        base = raw[x_idx]
        targets = var[y_idx]
        for g in GAINS:
            x = _normalise(np.minimum(base * g, 255.0))
            np.maximum(best, np.matmul(targets, x[:, :, None])[..., 0].max(1), out=best)
    return best


def verified_pairs(emb: np.ndarray | None, thumbs: np.ndarray, ok: np.ndarray, threshold: float,
                   candidate_threshold: float, tiny_threshold: float = 0.90) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates (embedding cosine >= candidate_threshold, or tiny-thumbnail correlation >= tiny_threshold),
    verified on thumbnails; returns the pairs whose verified score >= threshold as arrays (i, j, score)."""
    i, j = candidate_pairs(emb, thumbs, ok, candidate_threshold, tiny_threshold)
    score = verify_pairs(thumbs, i, j)
    keep = score >= threshold
    return i[keep], j[keep], score[keep]


def candidate_pairs(emb: np.ndarray | None, thumbs: np.ndarray, ok: np.ndarray, candidate_threshold: float,
                    tiny_threshold: float = 0.90) -> tuple[np.ndarray, np.ndarray]:
    """Union of the embedding and tiny-thumbnail candidate pairs (i < j), deduplicated."""
    d, dflip = tiny_descriptors(thumbs, ok)
    ti, tj, ts = pair_arrays(d, tiny_threshold, flipped=dflip, max_per_row=CANDIDATES_PER_IMAGE,
                             what="candidates (thumbnails)" if len(d) > 5000 else None)
    if emb is not None:
        ei, ej, es = pair_arrays(emb, candidate_threshold, max_per_row=CANDIDATES_PER_IMAGE, valid=ok,
                                 what="candidates (embeddings)" if len(emb) > 5000 else None)
        ti, tj, ts = np.r_[ti, ei], np.r_[tj, ej], np.r_[ts, es]
    key = np.unique(ti.astype(np.int64) * len(thumbs) + tj)
    return key // len(thumbs), key % len(thumbs)
