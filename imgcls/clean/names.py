"""The names clean's options choose among, and the detectors' default thresholds: a leaf module (nothing but
literals), so CleanConfig (imgcls.clean.config) declares --ood-method, --ood-threshold, --ann and --undersample
without importing the modules that compute them, and those modules take their names from here: the detectors
(imgcls.clean.ood; imgcls.clean.registry holds one per name, tests/test_clean.py checks), the candidate search
(imgcls.clean.ann), the undersamplers (imgcls.clean.sampling)."""
from __future__ import annotations

# the out-of-domain detectors in --help order, each with its default --ood-threshold
OOD_THRESHOLDS = {"photo-style": 0.5,               # a probability
                  "photo-embedding": 0.9,           # a probability
                  "photo-features": 30.0,
                  "embedding-knn": 1.05,
                  "combined": 0.99,
                  "pixels-agglomerative": 0.5,      # 0 / 1: the sparser cluster
                  "pca-dbscan": 0.5}                # 0 / 1: DBSCAN's noise points
OOD_METHODS = tuple(OOD_THRESHOLDS)
ANN_MODES = ("auto", "on", "off")
ANN_AUTO_MIN = 50_000      # --ann auto: the index above this many images, the exact search below
UNDERSAMPLE_METHODS = ("random", "cluster-centroids", "nearmiss")
