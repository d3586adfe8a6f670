"""`imgcls clean`: exact and near duplicates, out-of-domain images, undersampling. Nothing is deleted: the manifest
gets `keep`, `reason`, `dup_group`, `duplicate_of`, `ood_score`, `label_conflict`.

This package's face; its modules say what they do: config (CleanConfig), duplicates (the duplicate stage), ood_base /
ood / registry (out-of-domain detectors), features (hand-made photo-vs-drawing features), sampling (undersampling),
near_dup (the blockwise search and thumbnail verification behind imgcls.links), materialize (--materialize),
report (report.html), run (run_clean).
"""
from __future__ import annotations

from imgcls.clean.config import (CONFLICT_POLICIES, DEFAULT_OOD_MAX_SHARE, DEFAULT_OOD_METHOD, DEFAULT_OUT, MATERIALIZE,
                                 OOD_METHODS, CleanConfig)
from imgcls.clean.duplicates import SWEEP, conflict_table, exact_pairs, mark_duplicates, threshold_sweep
from imgcls.clean.materialize import materialize_kept
from imgcls.clean.run import pixel_matrix, run_clean
from imgcls.clean.sampling import undersample

__all__ = ["CleanConfig", "run_clean", "mark_duplicates", "exact_pairs", "threshold_sweep", "conflict_table", "SWEEP",
           "pixel_matrix", "undersample", "materialize_kept", "CONFLICT_POLICIES", "DEFAULT_OOD_MAX_SHARE",
           "DEFAULT_OOD_METHOD", "DEFAULT_OUT", "MATERIALIZE", "OOD_METHODS"]
