"""Ensembles: voting over models and folds, weights fitted on out-of-fold predictions, the spec predict reads.

A member is one training run (`outputs/runs/<RUN>`); a k-fold run's folds are one member whose prediction is the
mean of its folds' probabilities (that is what its out-of-fold predictions measure). Voting over members:

    soft      mean of the members' probabilities
    weighted  weighted mean of probabilities (`--weights w1,w2,...` or `auto`)
    hard      each member votes for its argmax class (votes weighted); ties go to the higher mean probability;
              the "probability" written is the vote share

`--weights auto` fits the weights on the members' validation / out-of-fold predictions (`val_predictions.csv`,
rows matched by image): minimising log-loss of the weighted mean (scipy SLSQP on the simplex) for soft/weighted,
a coordinate search on macro-F1 for hard voting (votes have no gradient).

`--combine profile` (the mask blog's "one model per attribute") instead combines single-attribute runs
(`train --target mask|gender|age_band`, ModelMeta.target) and runs that predict the profile classes (multi-branch
heads, or one head on the profile label) into the mask competition's classes: per attribute, the weighted mean of
the members' distributions for it (a profile run contributes its marginals), then every class's probability is the
product of its attributes' (imgcls.profiles.ProfileScheme, the one formula). Scored on the common validation rows
whose true class the members' labels give.

The ensemble folder holds `spec.yaml` (members as paths relative to it, checkpoints, weights, method, classes,
validation scores: the ensemble's macro-F1, accuracy and row count), `scores.csv` (per member and ensemble),
`oof_predictions.csv` (the ensemble's scored rows) and `per_class.csv` (their per-class scores, as train's).
"""
from __future__ import annotations

from imgcls.lazy import lazy_exports

# imported when first used (imgcls.lazy): `imgcls ensemble --help` reads imgcls.ensemble.config alone
__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "config": ("EnsembleConfig", "COMBINES", "METHODS", "WEIGHT_METRICS"),
    "build": ("build_ensemble",),
    "profile": ("PROFILE_ATTRS", "attribute_probs", "combine_profile", "member_attributes", "member_meta",
                "profile_scheme"),
    "spec": ("SPEC_NAME", "EnsembleSpec", "Member", "check_same_classes", "checkpoint_classes", "is_spec",
             "load_spec", "member_from_run", "read_oof", "write_spec"),
    "table": ("print_scores",),
    "voting": ("crossfit_macro_f1", "fit_weights", "log_loss", "normalise_weights", "vote"),
    "imgcls.metrics": ("macro_f1",)})
