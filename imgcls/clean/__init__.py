"""`imgcls clean`: exact and near duplicates, out-of-domain images, undersampling. Nothing is deleted: the manifest
gets `keep`, `reason`, `dup_group`, `duplicate_of`, `ood_score`, `label_conflict`.

This package's face; its modules say what they do: config (CleanConfig), duplicates (the duplicate stage), ood_base /
ood / registry (out-of-domain detectors), features (hand-made photo-vs-drawing features), sampling (undersampling),
near_dup (the blockwise search and thumbnail verification behind imgcls.links), materialize (--materialize),
report (report.html), run (run_clean).
"""
from __future__ import annotations

from imgcls.lazy import lazy_exports

# imported when first used (imgcls.lazy): `imgcls clean --help` reads imgcls.clean.config alone
__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "config": ("CleanConfig", "CONFLICT_POLICIES", "DEFAULT_OOD_MAX_SHARE", "DEFAULT_OOD_METHOD", "DEFAULT_OUT",
               "MATERIALIZE", "OOD_METHODS"),
    "duplicates": ("SWEEP", "conflict_table", "exact_pairs", "mark_duplicates", "threshold_sweep"),
    "materialize": ("materialize_kept",),
    "run": ("pixel_matrix", "run_clean"),
    "sampling": ("undersample",)})
