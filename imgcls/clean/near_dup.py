"""Near-duplicate search on L2-normalised embeddings: blockwise cosine, never an n x n matrix in memory."""
from __future__ import annotations

import numpy as np

MAX_BLOCK_ELEMENTS = 50_000_000  # one similarity block holds at most this many floats (200 MB), whatever n is


def _rows_per_block(n: int, block_size: int) -> int:
    return max(1, min(block_size, MAX_BLOCK_ELEMENTS // max(n, 1)))


def near_duplicate_pairs(emb: np.ndarray, threshold: float, block_size: int = 2048) -> list[tuple[int, int, float]]:
    """All pairs (i < j) with cosine >= threshold. Memory: block_size x n floats at a time."""
    emb = np.asarray(emb, np.float32)
    n = len(emb)
    valid = np.linalg.norm(emb, axis=1) > 0 if n else np.zeros(0, bool)
    pairs: list[tuple[int, int, float]] = []
    block_size = _rows_per_block(n, block_size)
    for start in range(0, n, block_size):
        block = emb[start:start + block_size]
        sims = block @ emb[start:].T           # only j >= i: upper triangle, blockwise
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i, j = start + r, start + c
            if j > i and valid[i] and valid[j]:
                pairs.append((i, j, float(sims[r, c])))
    return pairs


def groups_from_pairs(n: int, pairs) -> np.ndarray:
    """Connected components: a group id per row (rows without a pair get their own id)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    if not pairs:
        return np.arange(n)
    i = np.array([p[0] for p in pairs])
    j = np.array([p[1] for p in pairs])
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


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
