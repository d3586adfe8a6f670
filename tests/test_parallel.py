"""imgcls.parallel.chunked_map: order, worker processes, and the steps that use it give the same result with workers."""
from __future__ import annotations

import numpy as np

from conftest import make_image_folder, make_odd_file
from imgcls import manifest as mf
from imgcls.parallel import chunked_map


def _square(x: int) -> int:
    return x * x


def test_chunked_map_keeps_order_over_processes():
    items = list(range(203))
    assert list(chunked_map(_square, items, workers=2, chunk=8)) == [x * x for x in items]
    assert list(chunked_map(_square, items, workers=1, what="squares", chunk=8)) == [x * x for x in items]
    assert list(chunked_map(_square, [], workers=2)) == []


def test_features_and_thumbnails_same_with_workers(tmp_path):
    from imgcls.clean.features import feature_matrix
    from imgcls.clean.near_dup import thumbnails
    root = make_image_folder(tmp_path / "raw", {"a": 40, "b": 40})
    make_odd_file("zero_bytes", root / "a")
    df = mf.load(root, scan=True, workers=2, announce=False)
    assert (df["error"] != "").sum() == 1
    f1, f2 = feature_matrix(df, workers=1), feature_matrix(df, workers=2)
    np.testing.assert_array_equal(f1, f2)
    assert np.isnan(f1[(df["error"] != "").to_numpy()]).all() and not np.isnan(f1[(df["error"] == "").to_numpy()]).any()
    (t1, ok1), (t2, ok2) = thumbnails(df, workers=1), thumbnails(df, workers=2)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(ok1, ok2)
    assert ok1.sum() == len(df) - 1
