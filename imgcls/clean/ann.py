"""Approximate nearest-neighbour candidates (FAISS) for the near-duplicate search on large sets.

The exact search (imgcls.clean.near_dup.pair_arrays) is blockwise: bounded memory, but time grows with n^2. Above
ANN_AUTO_MIN images (`--ann auto`, or always with `--ann on`) each image's top-k partners come from a FAISS
inverted-file index instead: the L2-normalised vectors, projected on their PCA_DIM principal axes when longer,
stored as 8-bit scalar codes (a quarter of float32) in IVF_PER_SQRT_N * sqrt(n) k-means cells (trained on a sample
of TRAIN_PER_CELL vectors per cell; a smaller set, `--ann on` under about 9,200 images, has one cell per
TRAIN_PER_CELL of its vectors, and one too small for two cells an exact flat index), NPROBE cells searched per
query. A query costs cells + NPROBE * n / cells distance computations, least near sqrt(NPROBE * n) cells, so the
search grows as n^1.5 (not n^2): the coarse
assignment runs as one matrix product, the scan over cheap codes. The index only proposes partners; each
proposed pair's similarity is then the exact cosine of the full vectors, so a pair's score never depends on the
index. With mirrored descriptors (`flipped`) the mirrored images query the same index. faiss-gpu is used when it
is installed and sees a GPU. FAISS is the `ann` extra (pip install imgcls[ann], faiss-cpu).
"""
from __future__ import annotations

import numpy as np

from imgcls.clean.names import ANN_AUTO_MIN, ANN_MODES  # noqa: F401  (declared there: --ann's)
from imgcls.errors import UserError

PCA_DIM = 256              # vectors longer than this are PCA-reduced for the index (scores use the full vectors)
IVF_PER_SQRT_N = 3         # k-means cells: 3 sqrt(n) (at least 1), about sqrt(NPROBE * n)
NPROBE = 10                # cells searched per query
PCA_SAMPLE = 8_192        # vectors the projection is fitted on
TRAIN_PER_CELL = 32        # k-means training sample: 32 vectors per cell at least (fewer cells where fewer)
KMEANS_ITER = 10
QUERY_BLOCK = 65_536       # queries per search call (bounds the result arrays)


def use_ann(mode: str, n: int) -> bool:
    """Whether `--ann mode` searches n images with the index."""
    if mode not in ANN_MODES:
        raise UserError(f"unknown --ann '{mode}'; use one of: {', '.join(ANN_MODES)}")
    return mode == "on" or (mode == "auto" and n >= ANN_AUTO_MIN)


def check_faiss(mode: str) -> None:
    """`--ann on` needs faiss (before any scan); `auto` falls back to the exact search without it."""
    if mode == "on" and not faiss_available():
        raise UserError("--ann on needs FAISS: pip install 'imgcls[ann]' (faiss-cpu), or use --ann off")


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _gpu(index):
    import faiss
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    return index


def ann_pairs(emb: np.ndarray, threshold: float, flipped: np.ndarray | None = None, k: int = 30,
              valid: np.ndarray | None = None, seed: int = 0, what: str | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j, exact cosine >= threshold) among each valid row's k approximate nearest neighbours (with
    `flipped`: also the neighbours of its mirror image, scored max(cos(a, b), cos(a, flip(b)))), as arrays (i, j, sim),
    each pair once. Same contract as pair_arrays(..., max_per_row=k), k counted over all rows, not only later ones."""
    import faiss

    from imgcls.console import progress_bar
    emb = np.ascontiguousarray(emb, np.float32)
    n, d = emb.shape
    nonzero = _row_norms(emb) > 0
    valid = nonzero if valid is None else (np.asarray(valid, bool) & nonzero)
    rows = np.flatnonzero(valid)
    if len(rows) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    rng = np.random.default_rng(seed)
    train = emb[rng.choice(rows, min(len(rows), TRAIN_PER_CELL * _cells(len(rows))), replace=False)]
    proj = _pca(train[:PCA_SAMPLE], PCA_DIM) if d > PCA_DIM else None

    def reduce(x):
        return np.ascontiguousarray(x @ proj if proj is not None else x, np.float32)
    train = reduce(train)
    dim = train.shape[1]
    # TRAIN_PER_CELL sampled vectors per cell at least: fewer, and FAISS's k-means printed its own "WARNING
    # clustering 300 points to 51 centroids: please provide at least 1632 training points" (any set under ~9,200
    # images, --ann on); a set too small for two cells is searched exactly (a flat index: no cells to train)
    cells = min(_cells(len(rows)), len(train) // TRAIN_PER_CELL)
    if cells < 2:
        index = faiss.IndexFlatL2(dim)
    else:
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatL2(dim), dim, cells, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_L2)
        index.cp.seed = seed
        index.cp.niter = KMEANS_ITER
        index.cp.min_points_per_centroid = min(TRAIN_PER_CELL, index.cp.min_points_per_centroid)  # enough
        index.nprobe = min(NPROBE, cells)
        index.train(train)
    index = _gpu(index)
    for s in range(0, len(rows), QUERY_BLOCK):
        index.add(reduce(emb[rows[s:s + QUERY_BLOCK]]))
    kk = min(k + 1, len(rows))
    keys = []                      # each block's pairs as unique keys i * n + j (i < j): 8 bytes a pair
    queries = [emb] + ([np.ascontiguousarray(flipped, np.float32)] if flipped is not None else [])
    with progress_bar(what, len(rows) * len(queries)) as advance:
        for q in queries:
            for s in range(0, len(rows), QUERY_BLOCK):
                block = rows[s:s + QUERY_BLOCK]
                _, nn = index.search(reduce(q[block]), kk)
                ok = nn >= 0
                bi, bj = np.repeat(block, kk)[ok.ravel()].astype(np.int64), rows[nn[ok]].astype(np.int64)
                bi, bj = np.minimum(bi, bj), np.maximum(bi, bj)
                keep = bi < bj
                keys.append(np.unique(bi[keep] * n + bj[keep]))
                advance(len(block))
    key = np.unique(np.concatenate(keys))
    del keys
    i, j = key // n, key % n
    sim = _exact_cosine(emb, i, j)
    if flipped is not None:
        fl = np.asarray(flipped, np.float32)
        np.maximum(sim, _exact_cosine(emb, i, j, fl), out=sim)
    keep = sim >= threshold
    return i[keep], j[keep], sim[keep]


def _row_norms(x: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """Each row's L2 norm, in chunks (np.linalg.norm(x, axis=1) would square a full copy: 4.8 GB at 1M x 1280)."""
    out = np.empty(len(x), np.float32)
    for s in range(0, len(x), chunk):
        b = x[s:s + chunk]
        out[s:s + chunk] = np.sqrt(np.einsum("kd,kd->k", b, b))
    return out


def _pca(x: np.ndarray, dim: int) -> np.ndarray:
    """(d, dim) projection on the sample's top principal axes (not centred: cosine geometry is about the origin)."""
    x = np.asarray(x, np.float32)
    _, vecs = np.linalg.eigh((x.T @ x).astype(np.float64) / len(x))
    return np.ascontiguousarray(vecs[:, ::-1][:, :dim], np.float32)


def _cells(n: int) -> int:
    return max(1, int(IVF_PER_SQRT_N * np.sqrt(n)))


def _exact_cosine(emb: np.ndarray, i: np.ndarray, j: np.ndarray, other: np.ndarray | None = None,
                  chunk: int = 16_384) -> np.ndarray:
    """emb[i] . other[j] (other defaults to emb) for each pair, in chunks."""
    other = emb if other is None else other
    out = np.empty(len(i), np.float32)
    for s in range(0, len(i), chunk):
        out[s:s + chunk] = np.einsum("kd,kd->k", emb[i[s:s + chunk]], other[j[s:s + chunk]])
    return out
