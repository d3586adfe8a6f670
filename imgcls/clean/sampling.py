"""Undersampling with imbalanced-learn: which rows to keep so that no class exceeds --max-per-class."""
from __future__ import annotations

import numpy as np
import pandas as pd

from imgcls.clean.names import UNDERSAMPLE_METHODS as METHODS  # declared there (--undersample's)
from imgcls.errors import UserError



def select(x: np.ndarray | None, y: np.ndarray, method: str, max_per_class: int, seed: int = 0) -> np.ndarray:
    """Indices (into y) of the rows kept."""
    if method not in METHODS:
        raise UserError(f"unknown --undersample '{method}'; use one of: {', '.join(METHODS)}")
    y = np.asarray(y).astype(str)
    labels, counts = np.unique(y, return_counts=True)
    # the classes over the cap alone: one within it is left whole (cluster-centroids fitted k-means to it too, and a
    # class of byte copies printed scikit-learn's "ConvergenceWarning: Number of distinct clusters ...")
    strategy = {lab: max_per_class for lab, c in zip(labels, counts) if c > max_per_class}
    if not strategy:
        return np.arange(len(y))
    feats = x if x is not None else np.arange(len(y), dtype=float).reshape(-1, 1)
    if method == "random":
        from imblearn.under_sampling import RandomUnderSampler
        # every class given, those within the cap at their count: the sampler draws for each class in label order,
        # so leaving one out would shift the draws of the classes after it (another sample for the same --seed)
        every = {lab: int(min(c, max_per_class)) for lab, c in zip(labels, counts)}
        s = RandomUnderSampler(sampling_strategy=every, random_state=seed)
        s.fit_resample(feats, y)
        return np.sort(s.sample_indices_)
    if method == "nearmiss":
        from imblearn.under_sampling import NearMiss
        s = NearMiss(sampling_strategy=strategy, version=1)
        s.fit_resample(feats, y)
        return np.sort(s.sample_indices_)
    # cluster-centroids with hard voting returns real samples (the nearest to each centroid); map them back
    from imblearn.under_sampling import ClusterCentroids
    from sklearn.cluster import KMeans
    s = ClusterCentroids(sampling_strategy=strategy, voting="hard", random_state=seed,
                         estimator=KMeans(n_init=1, random_state=seed))
    xr, yr = s.fit_resample(feats, y)
    keep = []
    for lab in labels:
        idx = np.flatnonzero(y == lab)
        if lab not in strategy:
            keep.extend(idx)
            continue
        sub = feats[idx]
        for v in xr[yr == lab]:
            keep.append(idx[int(np.argmin(((sub - v) ** 2).sum(axis=1)))])
    return np.unique(np.array(keep))


def undersample(df: pd.DataFrame, emb: np.ndarray | None, method: str, max_per_class: int, seed: int) -> pd.DataFrame:
    """Mark rows beyond --max-per-class per label as `undersampled` (imbalanced-learn on the embeddings)."""
    from imgcls.clean.sampling import select
    live = np.flatnonzero(df["keep"].to_numpy() & (df["label"] != "").to_numpy())
    chosen = select(emb[live] if emb is not None else None, df["label"].to_numpy()[live], method, max_per_class, seed)
    drop = np.setdiff1d(live, live[chosen])
    df.loc[df.index[drop], "keep"] = False
    df.loc[df.index[drop], "reason"] = "undersampled"
    return df
