"""clean's approximate nearest-neighbour candidates (imgcls.clean.ann) against the exact blockwise search."""
from __future__ import annotations

import numpy as np
import pytest

from imgcls.clean.near_dup import CANDIDATES_PER_IMAGE, pair_arrays, top_pairs
from imgcls.errors import UserError

faiss = pytest.importorskip("faiss")


def _planted(n=3000, dim=300, n_dup=100, seed=0):
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    src = rng.choice(n - n_dup, n_dup, replace=False)
    emb[n - n_dup:] = emb[src] + 0.2 * rng.standard_normal((n_dup, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb, src, np.arange(n - n_dup, n)


def test_ann_and_exact_search_agree_on_a_seeded_set():
    from imgcls.clean.ann import ann_pairs
    emb, src, dup = _planted()
    ei, ej, es = pair_arrays(emb, 0.9, max_per_row=CANDIDATES_PER_IMAGE)
    ai, aj, as_ = ann_pairs(emb, 0.9, k=CANDIDATES_PER_IMAGE)
    exact = set(zip(ei.tolist(), ej.tolist()))
    approx = set(zip(ai.tolist(), aj.tolist()))
    assert len(exact) >= len(dup) and approx == exact
    planted = {(min(a, b), max(a, b)) for a, b in zip(src.tolist(), dup.tolist())}
    assert planted <= approx
    # the ANN's similarities are the exact cosines of the full vectors
    sims = dict(zip(zip(ei.tolist(), ej.tolist()), es.tolist()))
    assert max(abs(sims[p] - s) for p, s in zip(zip(ai.tolist(), aj.tolist()), as_.tolist())) < 1e-5
    # mirrored descriptors query the same index: a pair found only through the flip is found by both
    flipped = np.roll(emb, 1, axis=1)
    flipped[dup[:20]] = emb[src[:20]]          # dup's mirror image is its source
    fe = set(zip(*[a.tolist() for a in pair_arrays(emb, 0.95, flipped=flipped, max_per_row=CANDIDATES_PER_IMAGE)[:2]]))
    fa = set(zip(*[a.tolist() for a in ann_pairs(emb, 0.95, flipped=flipped, k=CANDIDATES_PER_IMAGE)[:2]]))
    assert fe == fa and len(fe) >= 20


def test_ann_mode_chooses_by_n_and_names_a_bad_mode():
    from imgcls.clean import ann
    assert not ann.use_ann("auto", 1000) and ann.use_ann("auto", ann.ANN_AUTO_MIN) and ann.use_ann("on", 10)
    assert not ann.use_ann("off", 10 ** 7)
    with pytest.raises(UserError, match="--ann"):
        ann.use_ann("hnsw", 10)
    emb, _, _ = _planted(2000, 64, 50)
    on = top_pairs(emb, 0.9, ann="on")
    off = top_pairs(emb, 0.9, ann="off")
    assert set(zip(on[0].tolist(), on[1].tolist())) == set(zip(off[0].tolist(), off[1].tolist()))


@pytest.mark.parametrize("n", [300, 40, 3])
def test_ann_on_a_small_set_prints_no_faiss_warning_and_agrees_with_the_exact_search(n, capfd):
    """`imgcls clean --ann on` on a few hundred images printed FAISS's own "WARNING clustering 300 points to 51
    centroids: please provide at least 1632 training points" (its k-means, from C++): the index has at most one
    cell per TRAIN_PER_CELL sampled vectors, and a set too small for two cells is searched exactly. The pairs are
    the exact search's."""
    from imgcls.clean.ann import ann_pairs
    emb, _, _ = _planted(n, 64, max(1, n // 10))
    capfd.readouterr()
    ai, aj, _ = ann_pairs(emb, 0.9, k=CANDIDATES_PER_IMAGE)
    err = capfd.readouterr().err
    assert "WARNING" not in err and "clustering" not in err, err
    ei, ej, _ = pair_arrays(emb, 0.9, max_per_row=CANDIDATES_PER_IMAGE)
    assert set(zip(ai.tolist(), aj.tolist())) == set(zip(ei.tolist(), ej.tolist())) and len(ei) >= 1
