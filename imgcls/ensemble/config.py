"""`imgcls ensemble`'s options (EnsembleConfig) and the voting methods, weight metrics and combinations they
choose from: only the standard library and imgcls.options, so `imgcls ensemble --help` imports no numpy / pandas."""
from __future__ import annotations

from dataclasses import dataclass

from imgcls.options import When, option, python_too

# the fix of a missing or damaged ensemble spec: the ensemble built (again), both callers
BUILD_ENSEMBLE = python_too("`imgcls ensemble RUN RUN ...`", "build_ensemble([RUN, RUN, ...])")

METHODS = ("soft", "hard", "weighted")          # imgcls.ensemble.voting.vote
WEIGHT_METRICS = ("logloss", "f1")             # imgcls.ensemble.voting.fit_weights
COMBINES = ("vote", "profile")                 # imgcls.ensemble.spec.EnsembleSpec.combine


def _weighs(method: str, cfg) -> bool:
    """--weight-metric's first need: weights, i.e. --method weighted or hard, or soft with --weights (weights make
    soft weighted); that they are fitted rather than typed is the second (FITTED)."""
    return method in ("weighted", "hard") or (method == "soft" and cfg is not None and bool(cfg.weights))


# what --weight-metric acts through: weights fitted on the validation predictions of members that share classes
FITTED = (("combine", "vote"),
          ("method", When(_weighs, "weighted or hard (soft with --weights is weighted)")),
          ("weights", When(lambda weights, _cfg: weights in (None, "", "auto"), "auto or not given: weights fitted, "
                                                                              "not typed")))


@dataclass
class EnsembleConfig:
    """The options of `imgcls ensemble` besides the runs and the output; the field names are build_ensemble's
    keywords (imgcls.options: default, choices, help, panel)."""
    method: str = option("soft", panel="Voting", choices=METHODS,
                         help="soft: mean probability; hard: majority vote; weighted: weighted mean probability "
                              "(--weights given with soft means weighted).")
    weights: str | None = option(None, panel="Voting",
                                 help="auto (fit on validation predictions) or w1,w2,... (weighted / hard).")
    metric: str | None = option(None, panel="Voting", choices=WEIGHT_METRICS, flags=("--weight-metric",), needs=FITTED,
                                none="logloss for soft / weighted, f1 for hard", help="What auto weights optimise.")
    combine: str = option("vote", panel="Voting", choices=COMBINES,
                          help="vote: members share classes; profile: per-attribute runs (train --target mask / "
                               "gender / age_band) and profile runs -> the 18 profile classes by the product of "
                               "the attributes' probabilities.")
