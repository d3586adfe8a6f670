"""Out-of-domain detectors behind one interface (the shape of cleanlab Datalab's issue managers): one module each,
registered by name, chosen with --ood-method."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from imgcls.errors import UserError


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


OOD_DETECTORS: dict[str, Callable[[], OODDetector]] = {}


def register(cls):
    OOD_DETECTORS[cls.name] = cls
    return cls


def get_detector(name: str) -> OODDetector:
    from imgcls.clean import ood  # noqa: F401  (registers the detectors)
    if name not in OOD_DETECTORS:
        raise UserError(f"unknown --ood-method '{name}'; use one of: {', '.join(sorted(OOD_DETECTORS))}")
    return OOD_DETECTORS[name]()


def minority_side(scores_by_cluster: dict[int, float]) -> int:
    """The cluster that is 'out of domain': the one with the lower density (higher mean neighbour distance)."""
    return max(scores_by_cluster, key=scores_by_cluster.get)
