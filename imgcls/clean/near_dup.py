"""Near-duplicate search. Blockwise cosine on L2-normalised vectors (never an n x n matrix in memory), then
verification of the candidate pairs on RGB thumbnails.

Why two stages: backbone embeddings find copies whatever a training transform did (crop, rescale, re-encode), but
on clip art they also call many *different* drawings of one style similar (same white background, same palette).
A copy, unlike a look-alike, still matches pixel for pixel once aligned: `verify_pairs` scores each candidate pair by
the best normalised cross-correlation over centred crops (0-7.5% a side), horizontal flip and a brightness gain with
clipping (x1.0-1.3 either way), which a brightened, cropped, flipped or re-encoded copy passes and a recoloured or
redrawn variant does not.

A global correlation cannot see a difference confined to one small region (a keycap "8" vs "3", one emblem on a
flag): such pairs score 0.98+. So the alignment found above is then replayed at LOCAL px (the crop resampled to
LOCAL, the mirror), and the two images are compared window by window: the residual of each pixel beyond what its
neighbours within SHIFT px explain (resampling, sub-pixel misalignment, JPEG ringing), averaged over WINDOW x WINDOW
windows, and the worst window counts. Two tone models are held, and the worse of the two counts: (1) a monotone tone
curve per channel (histogram matching: gain, clipping, gamma), the residual averaged over the channels, tolerance
LOCAL_TOL; (2) one gain / offset shared by the three channels, clipped (a brightness change moves R, G and B alike),
the residual of the worst channel, tolerance COLOUR_TOL. (2) is what tells a drawing from its re-tinted twin (the
same playing card on a white and on a cream gradient background: per-channel curves absorb the tint, a brightness
change cannot make it). The pair's score is min(global correlation, local agreement) with local agreement =
1 - 0.02 * max(worst window (1) / LOCAL_TOL, worst window (2) / COLOUR_TOL), so a worst window at its tolerance sits
exactly at the default threshold 0.98 and `--dup-threshold` keeps its meaning: a score at or above which two images
are near duplicates, now held by every part of the image.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import pandas as pd

from imgcls.io import DEFAULT_MAX_PIXELS

MAX_BLOCK_ELEMENTS = 25_000_000  # one similarity block holds at most this many floats (100 MB), whatever n is
THUMB = 96                        # thumbnails kept for verification (uint8, 27.6 kB per image)
VERIFY = 24                       # side of the aligned crops compared globally
LOCAL = 96                        # side at which the aligned pair is compared window by window
WINDOW = 12                       # local window (px at LOCAL)
SHIFT = 1                         # a pixel may match any neighbour within this many px (at LOCAL)
LOCAL_TOL = 16.0                  # worst-window residual (grey levels, per-channel tone curves) that scores 0.98
COLOUR_TOL = 27.0                 # the same with one gain / offset for all channels, worst channel (tinted twins)
TINY = 16                         # side of the tiny-thumbnail candidate descriptor
CANDIDATES_PER_IMAGE = 30       # each image's most similar partners verified, at most, per candidate descriptor
GLOBAL_CHUNK = 256                # pairs scored together by the global stage (fmnist_lt: 0.74x the time of 1,024)
LOCAL_CHUNK = 8                   # pairs compared together by the local stage: its (m, 3, 96, 96) float arrays stay
                                  # in a core's cache (about half the time of 256 on fmnist_lt and the e2e pool)
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

def thumbnail_array(im, size: int = THUMB) -> np.ndarray:
    """A decoded RGB image as a verification thumbnail: squashed to size x size, box-filtered, uint8."""
    from PIL import Image
    return np.asarray(im.resize((size, size), Image.Resampling.BOX))


def _thumbnail_of(args) -> np.ndarray | None:
    """(path, size, max_pixels) -> the verification thumbnail, or None when the file does not decode within
    max_pixels (--max-pixels)."""
    from imgcls.io import ImageReadError, load_rgb
    path, size, max_pixels = args
    try:
        return thumbnail_array(load_rgb(path, max_pixels=max_pixels, draft=(size, size)), size)
    except ImageReadError:
        return None


def thumbnails(df: pd.DataFrame, size: int = THUMB, only: np.ndarray | None = None,
               workers: int = 1, out: tuple[np.ndarray, np.ndarray] | None = None,
               max_pixels: int | None = DEFAULT_MAX_PIXELS, what: str = "thumbnails") -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size, 3) uint8 thumbnails (aspect squashed, box-filtered) and a validity mask; one pass over the
    rows (those where `only` is true), over `workers` processes; `out`: the two arrays to fill (else new zeros);
    `what`: the progress bar's label (console.pass_label: what its count counts);
    `max_pixels`: the decoding bound (--max-pixels)."""
    from imgcls import manifest as mf
    from imgcls.parallel import chunked_map
    out, ok = out if out is not None else (np.zeros((len(df), size, size, 3), np.uint8), np.zeros(len(df), bool))
    errors = mf.error_texts(df).to_numpy()
    wanted = np.ones(len(df), bool) if only is None else np.asarray(only, bool)
    wanted_rows = np.flatnonzero(wanted & (errors == ""))
    paths = mf.image_paths(df)
    from imgcls.train.dist import current
    d = current()                      # under torchrun each rank reads its share; rank 0 gets them all
    rows = d.mine(wanted_rows)
    jobs = [(str(paths[i]), size, max_pixels) for i in rows]
    for i, t in zip(rows, chunked_map(_thumbnail_of, jobs, workers, what), strict=True):
        if t is not None:
            out[i], ok[i] = t, True
    d.gather_rows(out, wanted_rows, done=ok)
    return out, ok


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(-1, keepdims=True, dtype=np.float32)
    x /= np.maximum(np.sqrt(np.einsum("...d,...d->...", x, x))[..., None], 1e-6)
    return x


def block_sums(thumbs: np.ndarray, size: int = TINY) -> np.ndarray:
    """(n, size, size, 3) integer sums of each thumbnail's f x f blocks (f = side // size): the tiny descriptor's
    input, exact, and small enough to keep per image (pair_cache.SummaryCache)."""
    n, f = len(thumbs), thumbs.shape[1] // size
    acc = np.uint16 if f * f * 255 < 1 << 16 else np.uint32
    out = np.empty((n, size, size, 3), acc)
    for s in range(0, n, 4096):   # in chunks: bounded temporaries whatever n is
        t = thumbs[s:s + 4096, :size * f, :size * f]
        out[s:s + 4096] = t.reshape(len(t), size, f, size, f, 3).sum((2, 4), dtype=acc)
    return out


def tiny_descriptors(thumbs: np.ndarray, ok: np.ndarray | None = None, size: int = TINY,
                     sums: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Zero-mean, L2-normalised RGB size x size thumbnails and their mirror images: cosine = Pearson correlation, so
    brightness and contrast changes cancel (rows not ok are zero, so they pair with nothing). `sums`: the
    thumbnails' block_sums when known (then `thumbs` gives only the side): the same floats."""
    f = thumbs.shape[1] // size
    sums = block_sums(thumbs, size) if sums is None else sums
    n = len(sums)
    d, dflip = np.empty((n, size * size * 3), np.float32), np.empty((n, size * size * 3), np.float32)
    for s in range(0, n, 4096):
        # the block sums in integers (exact), then divided as np.mean divides its float32 sums: the same floats as
        # .astype(np.float32).mean((2, 4)), in 0.4x the time (no float copy of the thumbnails)
        t = sums[s:s + 4096].astype(np.float32)
        np.true_divide(t, np.intp(f * f), out=t, casting="unsafe")
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


_SHARED: dict = {}      # verify_pairs' arrays for its worker processes: inherited by fork, never pickled
LOCAL_BATCH = 1024      # pairs taken at a time, in descending global score, for the local stage (smaller:
                        # fewer checks of pairs a batch-mate joins, more rounds; 100k replicas: 103k checks at
                        # 1,024, 162k at 8,192)


def _global_part(bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """_verify_chunk of the pairs order[bounds[0]:bounds[1]] (run in this process or a forked worker)."""
    thumbs, i, j, order = _SHARED["global"]
    sel = order[bounds[0]:bounds[1]]
    return _verify_chunk(thumbs, i[sel], j[sel])


def _local_part(sel: np.ndarray) -> np.ndarray:
    """local_agreement of the pairs `sel` under their global alignment (this process or a forked worker)."""
    thumbs, i, j, how, floor = _SHARED["local"]
    return local_agreement(thumbs, i[sel], j[sel], how[sel], floor=floor)


def grey_rows(thumbs: np.ndarray, rows: int = 4096) -> np.ndarray:
    """Per thumbnail: R = G = B everywhere (what is_greyscale asks of all of them), in blocks of `rows`."""
    out = np.zeros(len(thumbs), bool)
    if thumbs.ndim != 4 or thumbs.shape[-1] != 3:
        return out
    for s in range(0, len(thumbs), rows):
        t = thumbs[s:s + rows]
        out[s:s + rows] = ((t[..., 0] == t[..., 1]) & (t[..., 1] == t[..., 2])).reshape(len(t), -1).all(1)
    return out


def is_greyscale(thumbs: np.ndarray, rows: int = 4096) -> bool:
    """Whether every (n, h, w, 3) thumbnail has R = G = B (a greyscale set stored as RGB, e.g. Fashion-MNIST or
    X-rays): grey_rows block by block, stopping at the first block that is not (no copy of the whole array)."""
    if thumbs.ndim != 4 or thumbs.shape[-1] != 3:
        return False
    return all(grey_rows(thumbs[s:s + rows]).all() for s in range(0, len(thumbs), rows))


@dataclass
class PairRecord:
    """What verify_pairs computed for each of its pairs, to replay instead of recomputing (imgcls.clean.pair_cache
    keeps it by content hash): the global score and its alignment (`how`, rows of _verify_chunk), the local
    agreement and the floor it was computed at (local_agreement: below that floor it may be the upper bound of the
    per-channel curves alone). NaN: not known. `fresh`: the pairs the last verify_pairs call computed a part of."""
    glob: np.ndarray
    how: np.ndarray
    local: np.ndarray
    local_floor: np.ndarray
    fresh: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "PairRecord":
        nan = np.full(n, np.nan, np.float32)
        return cls(nan, np.zeros((n, 3), np.int64), nan.copy(), nan.copy(), np.zeros(n, bool))

    def take(self, k: np.ndarray) -> "PairRecord":
        """The record of the pairs k (a mask or positions)."""
        return PairRecord(self.glob[k], self.how[k], self.local[k], self.local_floor[k], self.fresh[k])

    def replayable_local(self, floor: float) -> np.ndarray:
        """Pairs whose recorded local agreement is the one local_agreement would return at `floor`, or both lie
        below it (all a caller compares at `floor` or above sees): computed in full (at or above its floor, or the
        curves part was not cut short), or at a floor no higher than this one (every pair cut short then is cut
        short now, and a pair computed in full then scores the same or is cut short below `floor` now)."""
        known = ~np.isnan(self.local)
        return known & ((self.local >= self.local_floor) | (np.float32(floor) >= self.local_floor))


def verify_pairs(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = GLOBAL_CHUNK,
                 what: str | None = None, floor: float = 0.0, workers: int = 1,
                 levels: list[float] | None = None, joined: np.ndarray | None = None,
                 record: PairRecord | None = None, greyscale: bool | None = None) -> np.ndarray:
    """Score of each pair: min(best global correlation over crops, mirror and brightness gain, local agreement of
    that alignment) (see module doc). The local comparison runs on the pairs whose global score >= floor (the others
    keep their global score, already below the floor). Pairs are taken in chunks; each image's variants are computed
    once per chunk; with workers > 1 the chunks are spread over that many forked processes (same scores).

    `levels`: when only the connected components of the pairs scoring >= each level matter (clean's groups at the
    cut and at each threshold of its sweep), the local stage runs in batches in descending global score and skips a
    pair whose two images are already joined at the highest level its global score reaches (then at every level
    below too): that pair keeps its global score, an upper bound of its own, and the components at every level are
    those of the full verification (the score can only fall below the global one, and a joined pair joins nothing).
    A group of k copies needs ~k - 1 local checks instead of k(k - 1) / 2. A level is compared as the callers
    compare (`score >= level`). `joined` (with `levels`): the groups the caller already has by other links (e.g.
    split's units by group and content), each image labelled by its group's first image (the partition _join works
    on); the components start from them. `what`: a progress-bar label (pairs done).

    `record` (a PairRecord of these pairs): what is known in it is replayed, not computed (the same scores: each
    pair's numbers depend on its two thumbnails alone, not on the chunk it is computed in), and what is computed is
    written into it. `greyscale`: is_greyscale(thumbs) when the caller already knows it (the one-channel path's
    scores differ from the three-channel path's in the last digits, so a record is only replayed on the path that
    wrote it). Its two stages, global_scores and local_scores, are called apart by a caller that decodes the
    thumbnails in between, only those of the pairs local_checks says the second may check."""
    rec = record if record is not None else PairRecord.empty(len(i))
    rec.fresh[:] = False
    grey = is_greyscale(thumbs) if greyscale is None else greyscale
    global_scores(thumbs, i, j, rec, chunk=chunk, what=what, workers=workers, greyscale=grey)
    return local_scores(thumbs, i, j, rec, what=what, floor=floor, workers=workers, levels=levels, joined=joined,
                        greyscale=grey)


def _channels(thumbs: np.ndarray, greyscale: bool) -> np.ndarray:
    """The thumbnails a stage scores: one channel when every thumbnail is R = G = B (the same scores, to 3e-6 on
    fmnist_lt, in 0.4x the time)."""
    return np.ascontiguousarray(thumbs[..., :1]) if greyscale else thumbs


def global_scores(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray, rec: PairRecord, chunk: int = GLOBAL_CHUNK,
                  what: str | None = None, workers: int = 1, greyscale: bool = False,
                  save: Callable[[], object] | None = None) -> None:
    """verify_pairs' global stage: the global score and alignment of the record's pairs that have none, written
    into it (and marked fresh) as each chunk is scored; reads the thumbnails of those pairs only. `save`: called
    after each chunk is written (the pair cache keeps what is verified so far: PairCache.keeper)."""
    import multiprocessing

    from imgcls.console import progress_bar
    from imgcls.parallel import chunked_map
    todo = np.flatnonzero(np.isnan(rec.glob))
    if not len(todo):
        return
    order = todo[np.lexsort((j[todo], i[todo]))]
    thumbs = _channels(thumbs, greyscale)
    if multiprocessing.get_start_method() != "fork":
        workers = 1                                    # the workers read _SHARED, which only fork hands them
    if workers > 1:                                    # at least 4 chunks per worker, so a small set spreads too
        chunk = min(chunk, max(64, -(-len(order) // (4 * workers))))
    bounds = [(s, min(s + chunk, len(order))) for s in range(0, len(order), chunk)]
    _SHARED["global"] = (thumbs, i, j, order)
    try:
        with progress_bar(what, len(order)) as advance:          # pairs done, not chunks
            for (s, e), part in zip(bounds, chunked_map(_global_part, bounds, workers, chunk=1), strict=True):
                done = order[s:e]
                rec.glob[done], rec.how[done], rec.fresh[done] = part[0], part[1], True
                advance(len(done))
                if save is not None:
                    save()
    finally:
        _SHARED.pop("global", None)


def _local_candidates(rec: PairRecord, floor: float) -> np.ndarray:
    """The pairs the local stage takes (global score >= floor), in descending global score."""
    cand = np.flatnonzero(rec.glob >= floor)
    return cand[np.argsort(-rec.glob[cand], kind="stable")]


def _local_rounds(rec: PairRecord, i: np.ndarray, j: np.ndarray, n: int, floor: float, levels: list[float] | None,
                  joined: np.ndarray | None, out: np.ndarray, skipped: np.ndarray | None = None):
    """The local stage's rounds (see verify_pairs): yields each round's pairs and those of them to check (neither
    joined already nor replayable; the replayed ones are written into `out` here); the caller writes the checked
    ones' scores into `out` before asking for the next round, whose skips follow from the joins `out` makes.
    `skipped` (a mask over the pairs): set where a pair is skipped as joined already."""
    cand = _local_candidates(rec, floor)
    replay = rec.replayable_local(floor)
    start = np.arange(n) if joined is None else np.asarray(joined)
    comp = None if levels is None else np.tile(start, (len(levels), 1))
    batch = max(1, len(cand) if levels is None else LOCAL_BATCH)   # not by workers: the same skips, the same scores
    for s in range(0, len(cand), batch):
        idx = cand[s:s + batch]
        apart = np.ones(len(idx), bool) if comp is None else _not_joined(comp, levels, rec.glob[idx], i[idx], j[idx])
        need = idx[apart]
        if skipped is not None:
            skipped[idx[~apart]] = True
        known, need = need[replay[need]], need[~replay[need]]
        out[known] = np.minimum(rec.glob[known], rec.local[known])
        yield idx, need
        if comp is not None:
            for li, t in enumerate(levels):
                e = idx[out[idx] >= t]
                if len(e):
                    comp[li] = _join(comp[li], i[e], j[e])


def local_checks(rec: PairRecord, i: np.ndarray, j: np.ndarray, n: int, floor: float = 0.0,
                 levels: list[float] | None = None, joined: np.ndarray | None = None) -> np.ndarray:
    """The pairs local_scores may check (and so read the thumbnails of), from a record whose global scores are all
    known: its rounds run with every check's outcome taken as joining nothing. The joins then are a part of the
    real run's, so every pair it checks is among these; a rerun whose checks all replay finds none."""
    out, checks = rec.glob.copy(), np.zeros(len(i), bool)
    for _, need in _local_rounds(rec, i, j, n, floor, levels, joined, out):
        checks[need], out[need] = True, -np.inf
    return checks


def local_scores(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray, rec: PairRecord, what: str | None = None,
                 floor: float = 0.0, workers: int = 1, levels: list[float] | None = None,
                 joined: np.ndarray | None = None, greyscale: bool = False,
                 save: Callable[[], object] | None = None, skipped: np.ndarray | None = None) -> np.ndarray:
    """verify_pairs' local stage, once the record holds every pair's global score: the pairs' scores; what it
    checks is written into the record (and marked fresh) as each part is checked, then `save` is called (as
    global_scores'). Reads the thumbnails of local_checks' pairs only. `skipped` (a bool mask over the pairs, with
    `levels`): set where a pair was skipped as joined already, its score its global one, an upper bound."""
    from imgcls.console import progress_bar
    from imgcls.parallel import chunked_map, worker_pool
    out = rec.glob.copy()
    cand = _local_candidates(rec, floor)
    unknown = int((~rec.replayable_local(floor)[cand]).sum())       # at most these are checked
    try:
        with worker_pool(workers if unknown > 64 else 1) as pool, \
                progress_bar(f"local check of {len(cand)} pairs" if what and len(cand) else None, len(cand)) as advance:
            for idx, need in _local_rounds(rec, i, j, len(thumbs), floor, levels, joined, out, skipped):
                if len(need):
                    if "local" not in _SHARED:     # at the first check (none: no copy), before the pool forks
                        _SHARED["local"] = (_channels(thumbs, greyscale), i, j, rec.how, floor)
                    step = max(64, -(-len(need) // (4 * max(1, workers))))
                    parts = [need[k:k + step] for k in range(0, len(need), step)]
                    # the bar moves as each part is checked: a round of LOCAL_BATCH pairs took 4-8 s on 2 cores
                    # (3,803 clip-art images), the bar standing at 0 and then jumping by the round
                    for part, local in zip(parts, chunked_map(_local_part, parts, workers, chunk=1, pool=pool),
                                           strict=True):
                        out[part] = np.minimum(rec.glob[part], local)
                        rec.local[part], rec.local_floor[part], rec.fresh[part] = local, floor, True
                        advance(len(part))
                        if save is not None:
                            save()
                advance(len(idx) - len(need))            # the round's pairs skipped (joined) or replayed
    finally:
        _SHARED.pop("local", None)
    return out


def _not_joined(comp: np.ndarray, levels: list[float], g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each pair: could it join two components at some level (its images apart at the highest level its
    global score g reaches; a pair below every level joins nothing)."""
    reach, best = np.full(len(g), -1), np.full(len(g), -np.inf)
    for li, t in enumerate(levels):
        hit = (g >= t) & (t > best)
        reach[hit], best[hit] = li, t
    ok = reach >= 0
    r = np.maximum(reach, 0)
    return ok & (comp[r, a] != comp[r, b])


def _join(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Component labels after adding edges (a, b) to a partition given as one label per node (a component's label
    is its smallest member's; only the components the edges touch are relabelled)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    touched, inv = np.unique(np.r_[labels[a], labels[b]], return_inverse=True)
    graph = coo_matrix((np.ones(len(a)), (inv[:len(a)], inv[len(a):])), shape=(len(touched),) * 2)
    n_cc, cc = connected_components(graph, directed=False)
    rep = np.full(n_cc, len(labels), labels.dtype)
    np.minimum.at(rep, cc, touched)
    lut = np.arange(len(labels), dtype=labels.dtype)
    lut[touched] = rep[cc]
    return lut[labels]


def _verify_chunk(thumbs: np.ndarray, a_idx: np.ndarray, b_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """verify_pairs' global score for one chunk of pairs (a_idx[k], b_idx[k]), and the alignment that gave it as
    rows (swapped, gain index, variant index): swapped = the gain acted on b and the variant is a's."""
    uniq, inv = np.unique(np.r_[a_idx, b_idx], return_inverse=True)
    var = _variants(thumbs[uniq])
    raw = var[:, 0].copy()                              # unnormalised: the gain acts on pixel values
    var = _normalise(var)
    ia, ib = inv[:len(a_idx)], inv[len(a_idx):]
    best = np.full(len(a_idx), -1.0, np.float32)
    how = np.zeros((len(a_idx), 3), np.int64)
    for swapped, (x_idx, y_idx) in enumerate(((ia, ib), (ib, ia))):
        base = raw[x_idx]
        targets = var[y_idx]
        for gi, g in enumerate(GAINS):
            x = _normalise(np.minimum(base * g, 255.0))
            sims = np.matmul(targets, x[:, :, None])[..., 0]
            arg = sims.argmax(1)
            val = sims[np.arange(len(arg)), arg]
            better = val > best
            best[better] = val[better]
            how[better] = np.c_[np.full(better.sum(), swapped), np.full(better.sum(), gi), arg[better]]
    return best, how


def _tone_map(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p's pixels through the monotone tone curve that gives them q's histogram (histogram matching, per image and
    channel). Any gain, offset, gamma or clipping is such a curve; a small region that changed moves the histograms
    by its few pixels only, so it stays unexplained (a red emblem turned blue would need R to fall where every other
    colour rises)."""
    m, c = p.shape[:2]
    rows = (np.arange(m * c, dtype=np.int32) * 256).reshape(m, c, 1, 1)
    ip = np.rint(p).clip(0, 255).astype(np.int32)
    ip += rows                                         # each row's levels in its own 256 bins
    iq = np.rint(q).clip(0, 255).astype(np.int32)
    iq += rows
    hp = np.bincount(ip.ravel(), minlength=m * c * 256).reshape(m * c, 256)
    hq = np.bincount(iq.ravel(), minlength=m * c * 256).reshape(m * c, 256)
    n = hp.sum(1, keepdims=True)
    cp = (np.cumsum(hp, 1) - hp / 2) / n               # each of p's levels' mid-rank, as a share
    cq = np.cumsum(hq, 1) / n                          # q's levels' upper ranks: the level at a rank is a step
    # one searchsorted for every row: row r's ranks (0-1) offset by 2r keep the rows apart and in order
    off = 2.0 * np.arange(m * c)[:, None]
    curve = np.searchsorted((cq + off).ravel(), (cp + off).ravel()) - np.arange(m * c).repeat(256) * 256
    return np.minimum(curve, 255).astype(np.float32).take(ip)


@lru_cache(maxsize=64)
def _local_matrix(c: float, src: int) -> np.ndarray:
    return _crop_matrix(c, src, LOCAL)


def _resampled(t: np.ndarray, c: float) -> np.ndarray:
    """(m, ch, LOCAL, LOCAL): the centred crop dropping `c` of each side of (m, ch, T, T) thumbnails, resampled to
    LOCAL px. The uncropped one at T = LOCAL is the identity matrix twice (exact: each pixel times 1.0 plus zeros),
    so it is the thumbnail itself, without the two matrix products."""
    if c == 0.0 and t.shape[-1] == LOCAL:
        return np.ascontiguousarray(t)
    m = _local_matrix(c, t.shape[-1])
    return np.matmul(np.matmul(m, t), m.T)


def _shared_gain(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p through the least-squares gain / offset (one for all three channels, per image) that brings it nearest q,
    clipped to 0-255: a brightness change, not a recolouring."""
    m = len(p)
    pf, qf = p.reshape(m, -1), q.reshape(m, -1)
    pm, qm = pf.mean(1, keepdims=True), qf.mean(1, keepdims=True)
    dp = pf - pm
    gain = (dp * (qf - qm)).sum(1, keepdims=True) / np.maximum((dp * dp).sum(1, keepdims=True), 1e-3)
    return np.clip(gain * dp + qm, 0.0, 255.0).reshape(p.shape).astype(np.float32)


def _envelope(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max, min) of each pixel's neighbours within SHIFT px (a square, the image's own pixels only at its border),
    per image and channel of (m, c, L, L): OpenCV's dilate / erode, whose border leaves outside pixels out (0.4x
    the time of numpy's shifted slices, the same values)."""
    import cv2
    kernel = np.ones((2 * SHIFT + 1, 2 * SHIFT + 1), np.uint8)
    x = np.ascontiguousarray(x, np.float32)
    hi, lo = np.empty_like(x), np.empty_like(x)
    planes, his, los = (a.reshape(-1, *x.shape[-2:]) for a in (x, hi, lo))
    for k in range(len(planes)):
        cv2.dilate(planes[k], kernel, dst=his[k])
        cv2.erode(planes[k], kernel, dst=los[k])
    return hi, lo


def _residual(p: np.ndarray, q: np.ndarray, q_envelope: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(m, 3, L, L): each pixel's residual beyond the range of the other image's pixels within SHIFT px, both ways
    (a stroke only one image has counts whichever side has it). `q_envelope`: _envelope(q), when already known."""
    p_hi, p_lo = _envelope(p)
    q_hi, q_lo = _envelope(q) if q_envelope is None else q_envelope
    return np.maximum(np.maximum(q - p_hi, p_lo - q), np.maximum(p - q_hi, q_lo - p))


def _worst_window(resid: np.ndarray) -> np.ndarray:
    """(m,) the largest WINDOW x WINDOW mean of an (m, L, L) residual map (windows inside the image)."""
    from scipy.ndimage import uniform_filter
    border = WINDOW // 2
    win = uniform_filter(resid, size=(1, WINDOW, WINDOW), mode="constant")
    return win[:, border:LOCAL - border + 1, border:LOCAL - border + 1].max((1, 2))


def _curves_score(curves: np.ndarray) -> np.ndarray:
    """The local score with the per-channel curves' part alone: an upper bound of local_agreement's."""
    return (1.0 - 0.02 * (curves / LOCAL_TOL)).astype(np.float32)


def local_agreement(thumbs: np.ndarray, a_idx: np.ndarray, b_idx: np.ndarray, how: np.ndarray,
                    chunk: int = LOCAL_CHUNK, floor: float | None = None) -> np.ndarray:
    """1 - 0.02 * max(worst window / LOCAL_TOL under per-channel tone curves, worst window / COLOUR_TOL under one
    shared gain) of each pair under its alignment `how` (rows of _verify_chunk); the two worst windows are
    local_residuals'. With `floor`, a pair whose curves part alone scores below it skips the shared-gain model and
    scores that part: an upper bound, still below the floor (every score at or above it is the full one)."""
    curves, shared = local_residuals(thumbs, a_idx, b_idx, how, chunk, floor=floor)
    shared_part = np.where(np.isinf(shared), 0.0, shared / COLOUR_TOL)     # a skipped pair: the curves part alone
    return (1.0 - 0.02 * np.maximum(curves / LOCAL_TOL, shared_part)).astype(np.float32)


def local_residuals(thumbs: np.ndarray, a_idx: np.ndarray, b_idx: np.ndarray, how: np.ndarray,
                    chunk: int = LOCAL_CHUNK, floor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's worst-window residual (grey levels) under its alignment `how` (rows of _verify_chunk), for the
    two tone models: the target's crop / mirror variant at LOCAL px against the base image, one of them through the
    model that brings it nearest the other (either way, the better counts, since clipping loses levels one way
    only): _tone_map (histogram matching per channel: gain, clipping, gamma; residual averaged over channels) and
    _shared_gain (one gain / offset for R, G and B; residual of the worst channel), each pixel's residual beyond the
    range of the other image's pixels within SHIFT px (_residual). Returns (curves, shared), each (n,). With
    `floor`, the shared-gain model is left out (shared stays inf) for a pair whose curves part alone
    (_curves_score) scores below the floor: a third of fmnist_lt's checks at 0.90, a quarter of each one's time."""
    curves = np.full(len(a_idx), np.inf, np.float32)
    shared = np.full(len(a_idx), np.inf, np.float32)
    for s in range(0, len(a_idx), chunk):
        a, b, h = a_idx[s:s + chunk], b_idx[s:s + chunk], how[s:s + chunk]
        swapped = h[:, 0].astype(bool)
        base_idx, target_idx = np.where(swapped, b, a), np.where(swapped, a, b)
        base = thumbs[base_idx].astype(np.float32).transpose(0, 3, 1, 2)          # (m, 3, T, T)
        x = _resampled(base, 0.0)
        target = thumbs[target_idx].astype(np.float32).transpose(0, 3, 1, 2)
        crop, mirror = h[:, 2] % len(CROPS), h[:, 2] >= len(CROPS)
        y = np.empty_like(x)
        for c in np.unique(crop):
            k = crop == c
            y[k] = _resampled(target[k], CROPS[c])
        y[mirror] = y[mirror][..., ::-1]
        envs = []
        for p, q in ((x, y), (y, x)):
            envs.append(_envelope(q))               # the same target for both tone models
            np.minimum(curves[s:s + chunk], _worst_window(_residual(_tone_map(p, q), q, envs[-1]).mean(1)),
                       out=curves[s:s + chunk])
        go = slice(None)
        if floor is not None:
            go = _curves_score(curves[s:s + chunk]) >= floor
            if not go.any():
                continue
            if go.all():
                go = slice(None)                    # no copies when every pair goes on
        part = shared[s:s + chunk]                  # a view: written through
        for (p, q), (hi, lo) in zip(((x, y), (y, x)), envs):
            part[go] = np.minimum(part[go], _worst_window(_residual(_shared_gain(p[go], q[go]), q[go],
                                                                    (hi[go], lo[go])).max(1)))
    return curves, shared


def top_pairs(emb: np.ndarray, threshold: float, flipped: np.ndarray | None = None, valid: np.ndarray | None = None,
              ann: str = "auto", what: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's CANDIDATES_PER_IMAGE most similar partners with cosine >= threshold, as (i, j, sim): the exact
    blockwise search, or the FAISS index (imgcls.clean.ann) when `ann` (auto | on | off) chooses it for this n."""
    from imgcls.clean.ann import ann_pairs, faiss_available, use_ann
    if use_ann(ann, len(emb)) and (ann == "on" or faiss_available()):
        return ann_pairs(emb, threshold, flipped=flipped, k=CANDIDATES_PER_IMAGE, valid=valid, what=what)
    return pair_arrays(emb, threshold, flipped=flipped, max_per_row=CANDIDATES_PER_IMAGE, valid=valid, what=what)


def candidate_pairs(emb: np.ndarray | None, thumbs: np.ndarray, ok: np.ndarray, candidate_threshold: float,
                    tiny_threshold: float = 0.90, ann: str = "auto", sums: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Union of the embedding and tiny-thumbnail candidate pairs (i < j), deduplicated (`ann`: see top_pairs;
    `sums`: the thumbnails' block_sums, when known; then only the side of `thumbs` is read)."""
    d, dflip = tiny_descriptors(thumbs, ok, sums=sums)
    n = len(d)
    ti, tj, ts = top_pairs(d, tiny_threshold, flipped=dflip, ann=ann,
                           what="candidates (thumbnails)" if len(d) > 5000 else None)
    if emb is not None:
        ei, ej, es = top_pairs(emb, candidate_threshold, valid=ok, ann=ann,
                               what="candidates (embeddings)" if len(emb) > 5000 else None)
        ti, tj, ts = np.r_[ti, ei], np.r_[tj, ej], np.r_[ts, es]
    key = np.unique(ti.astype(np.int64) * n + tj)
    return key // n, key % n
