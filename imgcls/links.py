"""Linked images, one owner for eda, clean and split: which images are copies of each other, and which rows form one
unit that a split must keep on one side.

- `NearDuplicates`: the one near-duplicate definition, its method a parameter. `verified` (default): candidate pairs
  (embedding cosine >= `candidates`, or tiny-thumbnail correlation) verified pixel by pixel on aligned thumbnails
  (crops, mirror, brightness gain; then window by window at 96 px; see imgcls.clean.near_dup), a pair when that
  score >= `threshold` (0.98).
  `embedding`: the embedding cosine alone >= `threshold` (0.90). clean flags with it, split links and checks with
  it; both share the embedding cache (imgcls.embed). Embedding cosine alone can call many small, distinct photos of
  one kind the same picture (issue 16: a mask-competition-shaped set of 240 people x 7 faces joined into one unit at
  cosine 0.95), so it is the default of neither step.
- `exact_pairs`: rows sharing a non-empty value (a content hash, a group, a source image) linked to the first of them.
- `reference_pairs`: rows that name other rows (an oversampled copy's `augmented_from` names its sources' paths).
- `components`: connected components of any such pairs (a unit / duplicate-group id per row).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from imgcls.errors import UserError
from imgcls.image_options import DEFAULT_MAX_PIXELS
from imgcls.link_options import (DEFAULT_DUP_CANDIDATES, DEFAULT_DUP_THRESHOLDS, DEFAULT_EMBED_SIZE,  # noqa: F401
                                 DEFAULT_EMBEDDER, DUP_METHODS, dup_candidates_option, dup_method_option,
                                 dup_threshold_option, embed_precision_option)  # declared there (light)


@dataclass
class NearDuplicates:
    """The near-duplicate definition (see the module doc) and where its embeddings come from."""
    method: str = "verified"
    threshold: float | None = None          # None: DEFAULT_DUP_THRESHOLDS[method]
    candidates: float = DEFAULT_DUP_CANDIDATES
    model: str = DEFAULT_EMBEDDER
    weights: str | None = None
    weights_flag: str | None = None         # the option that names `weights` in an error message
    embed_size: int = DEFAULT_EMBED_SIZE
    device: str = "auto"
    cache_dir: str | None = None
    ann: str = "auto"                       # candidate search: FAISS index (on), exact (off), by n (auto)
    precision: str = "auto"                 # the embedding pass's arithmetic (device.inference_precision)
    model_flag: str = "--model"             # the option that names `model` in an error message
    max_pixels: int | None = DEFAULT_MAX_PIXELS   # the decoding bound of its embeddings and thumbnails (--max-pixels)

    def __post_init__(self) -> None:
        if self.method not in DUP_METHODS:
            raise UserError(f"unknown --dup-method '{self.method}'; use one of: {', '.join(DUP_METHODS)}")

    @property
    def cut(self) -> float:
        """The score at or above which two images are near duplicates."""
        return self.threshold if self.threshold is not None else DEFAULT_DUP_THRESHOLDS[self.method]

    def describe(self) -> str:
        return (f"verified correlation >= {self.cut}" if self.method == "verified"
                else f"embedding cosine >= {self.cut}")

    def check_weights(self) -> None:
        """The embedding model's weights are here (before a long scan, not after it)."""
        from imgcls.weights import check_weights_available
        check_weights_available(self.model, self.weights, self.weights_flag, self.model_flag)

    def embeddings(self, df: pd.DataFrame, workers: int = 1) -> np.ndarray:
        """L2-normalised embeddings of df's rows (cached by content hash; unreadable rows are zero); `workers`:
        decoding processes beside the model (see embed_manifest)."""
        from imgcls.embed import embed_manifest
        return embed_manifest(df, model=self.model, weights=self.weights, weights_flag=self.weights_flag,
                              model_flag=self.model_flag,
                              img_size=self.embed_size, device=self.device, cache_dir=self.cache_dir,
                              precision=self.precision,
                              workers=workers, max_pixels=self.max_pixels)

    def scored_pairs(self, df: pd.DataFrame, emb: np.ndarray | None = None, floor: float | None = None,
                     thumbs: "Thumbnails | None" = None, workers: int = 1,
                     levels: list[float] | None = None, joined: np.ndarray | None = None,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs (i, j, score) of df's positions, i < j, with score >= floor (default: the definition's cut; a
        lower floor lets a caller sweep thresholds from one search). Byte-identical copies are exact_pairs' job:
        the verified search looks at one row per content hash. `levels`: when the caller only needs the groups
        (connected components) at these thresholds, verification skips the pairs that cannot change them
        (near_dup.verify_pairs) and leaves them out (their scores would be unchecked upper bounds): every pair
        returned is verified. `joined` (with `levels`): a label per row (any non-empty values) of the groups the
        caller already has by other links; pairs inside one are not verified (nor returned), and the groups are
        those of both together. `thumbs`: a pair_cache.Thumbnails of one row
        per content hash that a pass already filled (else one is made: thumbnails are decoded only where no earlier
        run kept their numbers, or where a pair is verified rather than replayed)."""
        from imgcls.clean.pair_cache import CandidateCache, PairCache, Thumbnails, content_keys
        from imgcls.manifest import text_values
        floor = self.cut if floor is None else floor
        if levels:                     # every pair a level counts must come back
            floor = min(floor, *levels)
        ok = (text_values(df["error"]) == "").to_numpy()
        if emb is None:
            emb = self.embeddings(df, workers)
        keys = content_keys(df)
        if self.method == "embedding":
            # the readable rows in their content keys' order, kept by the input's digest (pair_cache.CandidateCache)
            # as the verified search below: split on clean's output that searches the very rows clean searched
            # takes clean's pairs and cosines (clean searched down to its lowest sweep row, split at the cut)
            searched = np.flatnonzero(ok)
            searched = searched[np.argsort(keys[searched], kind="stable")]
            i, j, s = CandidateCache(self.cache_dir).scored(
                emb[searched], floor, self.ann, what="near duplicates (embeddings)" if len(df) > 5000 else None)
            i, j = searched[i], searched[j]
            i, j = np.minimum(i, j), np.maximum(i, j)
            order = np.lexsort((j, i))                 # in row order, as a search in the rows' order returns them
            return i[order], j[order], s[order]
        rep = np.zeros(len(df), bool)
        rep[content_representatives(df)[0]] = True
        ts = thumbs if thumbs is not None else Thumbnails(df, np.flatnonzero(rep), workers, self.cache_dir,
                                                                 max_pixels=self.max_pixels)
        th_ok = ts.summarise() & rep
        # the search over the searched rows alone (their positions then), kept by its input's digest: split on
        # clean's output that searches the very rows clean searched takes clean's candidates (pair_cache). The rows
        # are searched in their content keys' order and each pair is verified from its smaller key to its larger,
        # so the search's digest and the pairs kept do not depend on the row order (split sorts by path, clean
        # keeps its input's order: in row order about half the pairs were the other way round, verified again)
        searched = np.flatnonzero(th_ok)
        searched = searched[np.argsort(keys[searched], kind="stable")]
        i, j = CandidateCache(self.cache_dir).pairs(emb[searched], ts.sums[searched], self.candidates, self.ann)
        i, j = searched[i], searched[j]
        swap = keys[i] > keys[j]
        i, j = np.where(swap, j, i), np.where(swap, i, j)
        keep = th_ok[i] & th_ok[j]
        if joined is not None and levels:              # each row labelled by its group's first row
            first, later = exact_pairs(joined)
            joined = np.arange(len(df))
            joined[later] = first
            keep &= joined[i] != joined[j]
        i, j = i[keep], j[keep]
        if not len(i):                 # nothing to verify: the pair cache is not read
            return np.minimum(i, j), np.maximum(i, j), np.zeros(0, np.float32)
        # pairs verified before (this clean's last run, or clean before split) are replayed from the cache
        from imgcls.clean.near_dup import global_scores, local_checks, local_scores
        grey = bool(ts.grey[th_ok].all())      # every thumbnail R = G = B (near_dup.is_greyscale of them all)
        cache = PairCache(self.cache_dir, grey)
        record = cache.lookup(keys[i], keys[j])
        i, j, record = _decoded(ts, i, j, record, np.isnan(record.glob))      # the global stage's pairs
        replayed = int((~np.isnan(record.glob)).sum())
        if 0 < replayed < len(i):          # a partial hit is worth a line; a full one is named by the step's
            from imgcls.console import info     # one line of what its caches served (console.cache_reuse)
            info(f"near-duplicate verification: {replayed} of {len(i)} candidate pairs replayed from the cache, "
                 f"{len(i) - replayed} to verify")
        elif replayed:
            from imgcls.console import reused
            reused(f"the verification of {replayed} candidate pairs")
        what = "verifying candidate pairs" if len(i) - replayed > 20_000 else None
        # what is verified is kept as it goes (every SAVE_SECONDS), not only at the end: a Ctrl-C during a long
        # verification kept none of it, and the rerun verified every pair again; the pairs of the moment are read
        # at each call (the loop below leaves out the pairs of unreadable images)
        save = cache.keeper(lambda: (keys[i], keys[j], record))
        global_scores(ts.thumbs, i, j, record, what=what, workers=workers, greyscale=grey, save=save)
        # the local stage's: decided before it decodes (a pair skipped as joined in the last run is skipped again)
        while True:
            n = len(i)
            i, j, record = _decoded(ts, i, j, record, local_checks(record, i, j, len(df), floor, levels,
                                                                  joined if levels else None))
            if len(i) == n:            # no pair left out as unreadable: the same checks
                break
        skipped = np.zeros(len(i), bool)
        s = local_scores(ts.thumbs, i, j, record, what=what, floor=floor, workers=workers, levels=levels,
                         joined=joined if levels else None, greyscale=grey, save=save, skipped=skipped)
        cache.store(keys[i], keys[j], record)
        # a pair skipped as joined already (levels) is left out: it joins nothing, and its score, the global one, is
        # an upper bound that verification was never asked to confirm (a "3" beside an "8" joined by the 8's copy
        # and a group came back as a near-duplicate pair: split linked it and named it as a conflict's example)
        keep = (s >= floor) & ~skipped
        return np.minimum(i, j)[keep], np.maximum(i, j)[keep], s[keep]


def _decoded(ts: "Thumbnails", i: np.ndarray, j: np.ndarray, record: "PairRecord", pairs: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, "PairRecord"]:
    """Decode the images of the `pairs` (a mask) that no pass decoded yet; the pairs of an image with kept numbers
    that no longer decodes are left out (as unreadable): (i, j, record) of the others."""
    ts.need(np.unique(np.r_[i[pairs], j[pairs]]), "thumbnails of the candidate pairs' images")
    failed = ts.tried & ~ts.ok
    keep = ~(failed[i] | failed[j])
    return (i, j, record) if keep.all() else (i[keep], j[keep], record.take(keep))


def exact_pairs(values: Sequence | pd.Series, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(first row, later row) position pairs: every row whose non-empty value an earlier row (among `valid` rows)
    has, linked to the first of them."""
    from imgcls.manifest import text_values
    vals = text_values(values).to_numpy()
    use = vals != ""
    if valid is not None:
        use &= np.asarray(valid, bool)
    idx = np.flatnonzero(use)
    if len(idx) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first = pd.Series(idx).groupby(vals[idx], sort=False).transform("min").to_numpy()
    later = first != idx
    return first[later].astype(np.int64), idx[later].astype(np.int64)


def content_representatives(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, first, later): the readable rows a per-image pass decodes, one per content hash (each sha256's first
    readable row, and every readable row without one), and the byte-identical copies left out (`later`), each
    with the row it copies (`first`): what the pass computes for `first` holds for `later`."""
    from imgcls.manifest import error_texts
    ok = (error_texts(df) == "").to_numpy()
    first, later = (exact_pairs(df["sha256"], valid=ok) if "sha256" in df.columns
                    else (np.zeros(0, np.int64),) * 2)
    return np.setdiff1d(np.flatnonzero(ok), later), first, later


def reference_pairs(keys: Sequence | pd.Series, refs: Sequence | pd.Series, sep: str = "|"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(named row, naming row) position pairs: row j whose `refs` cell names (sep-separated) the `keys` value of row
    i. A name no row has links nothing."""
    from imgcls.manifest import text_values
    where: dict[str, int] = {}
    for k, v in enumerate(text_values(keys)):
        where.setdefault(v, k)
    ii, jj = [], []
    for j, cell in enumerate(text_values(refs)):
        for name in cell.split(sep) if cell else ():
            i = where.get(name)
            if i is not None and i != j:
                ii.append(i)
                jj.append(j)
    return np.asarray(ii, np.int64), np.asarray(jj, np.int64)


def run_bounds(keys: Sequence | np.ndarray) -> np.ndarray:
    """Where each run of equal values starts in `keys` (laid out by group, e.g. sorted), then len(keys): run r is
    keys[b[r]:b[r + 1]] (how the duplicate stage and the leakage check cut rows per group)."""
    keys = np.asarray(keys)
    if not len(keys):
        return np.zeros(1, np.int64)
    return np.r_[np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]), len(keys)]


def components(n: int, i: Sequence[int] | np.ndarray = (), j: Sequence[int] | np.ndarray = ()) -> np.ndarray:
    """Connected components of the pairs (i[k], j[k]) over n rows: a component id per row (a row without a pair is
    its own component)."""
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    if n == 0:
        return np.zeros(0, np.int64)
    if not len(i):
        return np.arange(n)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]
