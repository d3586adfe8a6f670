"""`imgcls split`: group-aware stratified train/val/test splits and k-fold, profile labels, and a leakage check.
This package's face; its modules say what they do: config, labels, units, assign, leaks, report, run.

What the output (`splits.csv`) says, row by row (see README "imgcls split"):

    split        'train' | 'val' | 'test' for rows a model may use; '' for rows left out (`drop_reason` says why)
    fold         only with --folds K: 0..K-1 = the fold in which the row is validation; -1 = never validation
                 (test rows, and the groups of a class too rare to validate); empty for left-out rows; `split` is then
                 'val' for fold 0 and 'train' for the other non-test rows, so `split` alone is fold 0's holdout
    drop_reason  '' for rows in a split, else why the row is left out (clean's keep=false, unreadable, no label,
                 --drop-ages)

Rows are never split apart when they are linked: the same `group` (person), the same file content (sha256), the same
`source_path`, an oversampled copy and the rows its `augmented_from` names (preprocess --oversample), the same
`dup_group` (clean's duplicate groups) or, with the
near-duplicate search on, near duplicates by clean's definition (imgcls.links: verified by default). Linked rows form
one unit for scikit-learn's StratifiedGroupKFold, so these leaks cannot happen; `check_leaks` verifies it (and checks
any split file given). A split that cannot place its units (no validation rows, a fold with no rows) is an error,
never a written file.
"""
from __future__ import annotations

from imgcls.split.assign import assign, check_placed, fraction_plan
from imgcls.split.config import LINK_COLUMNS, SPLITS, LeakageError, SplitConfig, parse_ages
from imgcls.split.labels import derive_profile_labels, exclusion_reasons, is_profile_table
from imgcls.split.leaks import check_leaks, fix_leaks, sides
from imgcls.split.report import balance, distribution, summarize, write_reports
from imgcls.split.run import make_split, run_check, run_split
from imgcls.split.units import linked_units, near_duplicate_pairs_for

__all__ = ["SplitConfig", "SPLITS", "LINK_COLUMNS", "LeakageError", "parse_ages", "make_split", "run_split",
           "run_check", "check_leaks", "fix_leaks", "sides", "linked_units", "near_duplicate_pairs_for",
           "derive_profile_labels", "exclusion_reasons", "is_profile_table", "assign", "check_placed", "fraction_plan",
           "balance", "distribution", "summarize", "write_reports"]
