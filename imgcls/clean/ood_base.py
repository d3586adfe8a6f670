"""What every out-of-domain detector shares (the shape of cleanlab Datalab's issue managers): the inputs it may use,
the interface it implements and the density rule that picks the out-of-domain side. The detectors (imgcls.clean.ood)
import this module; the registry (imgcls.clean.registry) imports the detectors; nothing imports back up."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np


@dataclass
class OODInputs:
    """What a detector may use; computed lazily and shared (embeddings come from the cache)."""
    features: Callable[[], np.ndarray]     # hand-made photo-vs-drawing features (n, k)
    embeddings: Callable[[], np.ndarray]   # L2-normalised backbone embeddings (n, d)
    pixels: Callable[[], np.ndarray]       # raw RGB pixels of 32x32 thumbnails, flattened (n, 3072)
    seed: int = 0
    style: Callable[[], np.ndarray] | None = None  # backbone texture statistics (n, 2c), see imgcls.embed


class OODDetector(Protocol):
    name: str
    description: str

    def score(self, inputs: OODInputs) -> np.ndarray:
        """Higher = more out of domain, one value per row (NaN for rows it cannot score)."""


def minority_side(scores_by_cluster: dict[int, float]) -> int:
    """The cluster that is 'out of domain': the one with the lower density (higher mean neighbour distance)."""
    return max(scores_by_cluster, key=scores_by_cluster.get)
