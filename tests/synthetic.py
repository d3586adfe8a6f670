"""Synthetic manifests for scale tests and bench/dup_bookkeeping.py: rows, byte copies and labels, no image files."""
from __future__ import annotations

import numpy as np
import pandas as pd


def copy_groups_frame(n: int, seed: int = 0, n_labels: int = 17, same_label: float = 0.8) -> pd.DataFrame:
    """n scanned, readable manifest rows: a fifth of them byte copies (sha256) of another row (n / 5 pairs), a copy
    filed under its source's label with probability `same_label` (else a random one of `n_labels`); clean's
    columns blank, as before its duplicate stage."""
    rng = np.random.default_rng(seed)
    sha = np.array([f"h{i}" for i in range(n)], dtype=object)
    src = rng.choice(n, n // 5, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(n), src), n // 5, replace=False)
    sha[dst] = sha[src]
    labels = rng.integers(0, n_labels, n).astype(str)
    same = rng.random(n // 5) < same_label
    labels[dst[same]] = labels[src[same]]
    return pd.DataFrame({"root": "r", "path": [f"{lab}/{i}.png" for i, lab in enumerate(labels)], "label": labels,
                         "sha256": sha, "error": "", "width": 64, "height": 64, "keep": True, "reason": "",
                         "dup_group": "", "duplicate_of": "", "label_conflict": False})
