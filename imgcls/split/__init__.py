"""`imgcls split`: group-aware stratified train/val/test splits and k-fold, profile labels, and a leakage check.
This package's face; its modules say what they do: config, labels, units, assign, leaks, report, run.

What the output (`splits.csv`) says, row by row (see README "imgcls split"):

    split        'train' | 'val' | 'test' for rows a model may use; '' for rows left out (`drop_reason` says why)
    fold         only with --folds K: 0..K-1 = the fold in which the row is validation; -1 = never validation
                 (test rows, and the groups of a class too rare to validate); empty for left-out rows; `split` is then
                 'val' for fold 0 and 'train' for the other non-test rows, so `split` alone is fold 0's holdout
                 (fold 0: the fold whose classes come closest to their targets, assign._holdout_folds)
    drop_reason  '' for rows in a split, else why the row is left out (clean's keep=false, unreadable, no label,
                 --drop-ages, an oversampled copy of images on two sides)

Rows are never split apart when they are linked: the same `group` (person), the same file content (sha256), the same
`source_path`, an oversampled copy and the rows its `augmented_from` names (preprocess --oversample: the
originals are drawn, a copy follows its sources' side, or is left out where a mixup's two sources landed on two;
two folds keep it in the fold of one),
the same `dup_group` (clean's duplicate groups) or, with the
near-duplicate search on, near duplicates by clean's definition (imgcls.links: verified by default). Linked rows form
one unit for scikit-learn's StratifiedGroupKFold, so these leaks cannot happen; `check_leaks` verifies it (and checks
any split file given). A split that cannot place its units (no validation rows, a fold with no rows) is an error,
never a written file.
"""
from __future__ import annotations

from imgcls.lazy import lazy_exports

# imported when first used (imgcls.lazy): `imgcls split --help` reads imgcls.split.config alone
__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "config": ("SplitConfig", "SPLITS", "LINK_COLUMNS", "LeakageError", "parse_ages"),
    "assign": ("assign", "check_placed", "fraction_plan", "COPY_ACROSS"),
    "labels": ("derive_profile_labels", "exclusion_reasons", "is_profile_table"),
    "leaks": ("check_leaks", "fix_leaks", "sides"),
    "report": ("balance", "distribution", "summarize", "write_reports"),
    "run": ("make_split", "run_check", "run_split"),
    "units": ("linked_units", "near_duplicate_pairs_for")})
