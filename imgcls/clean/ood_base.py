"""What every out-of-domain detector shares (the shape of cleanlab Datalab's issue managers): the inputs it may use,
the base class it derives from (a name, a description, its own flagging threshold, `score` and `flag`) and the
density rule that picks the out-of-domain side. The detectors (imgcls.clean.ood) import this module; the registry
(imgcls.clean.registry) imports the detectors; nothing imports back up."""
from __future__ import annotations

from dataclasses import dataclass
from abc import ABC, abstractmethod
from typing import Callable

import numpy as np


@dataclass
class OODInputs:
    """What a detector may use; computed lazily and shared (embeddings come from the cache)."""
    features: Callable[[], np.ndarray]     # hand-made photo-vs-drawing features (n, k)
    embeddings: Callable[[], np.ndarray]   # L2-normalised backbone embeddings (n, d)
    pixels: Callable[[], np.ndarray]       # raw RGB pixels of 32x32 thumbnails, flattened (n, 3072)
    seed: int = 0
    style: Callable[[], np.ndarray] | None = None  # backbone texture statistics (n, 2c), see imgcls.embed


class OODDetector(ABC):
    """One out-of-domain detector. It owns its threshold: the score at or above which a row is out of domain
    (--ood-threshold overrides it; --ood-contamination flags a share of the rows instead)."""
    name: str
    description: str
    threshold: float
    uses_features: bool = False      # calls inputs.features(): clean then measures them in its thumbnail pass
    uses_backbone: bool = False      # calls inputs.embeddings() or inputs.style(): --embedder must load

    @abstractmethod
    def score(self, inputs: OODInputs) -> np.ndarray:
        """Higher = more out of domain, one value per row (NaN for rows it cannot score)."""

    def flag(self, scores: np.ndarray, threshold: float | None = None,
             contamination: float | None = None) -> np.ndarray:
        """Rows out of domain: score >= threshold (default this detector's), or with `contamination` the highest
        scoring share of the rows (never the lowest score, so a constant score flags nothing)."""
        valid = ~np.isnan(scores)
        if contamination and valid.any():       # (numpy warns on the quantile of no score)
            cut = np.nanquantile(scores, 1 - contamination)
            return valid & (scores >= cut) & (scores > np.nanmin(scores))
        return valid & (scores >= (self.threshold if threshold is None else threshold))


def minority_side(scores_by_cluster: dict[int, float]) -> int:
    """The cluster that is 'out of domain': the one with the lower density (higher mean neighbour distance)."""
    return max(scores_by_cluster, key=scores_by_cluster.get)
