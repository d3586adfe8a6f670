"""`imgcls ensemble`'s options (EnsembleConfig) and the voting methods, weight metrics and combinations they
choose from: only the standard library and imgcls.options, so `imgcls ensemble --help` imports no numpy / pandas."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imgcls.errors import UserError
from imgcls.options import When, join, option, python_too, weights_fault
from imgcls.outputs import ENSEMBLE_OOF_CSV, REPORT_HTML, yaml_load
from imgcls.run_names import PER_CLASS_CSV

# the fix of a missing or damaged ensemble spec: the ensemble built (again), both callers
BUILD_ENSEMBLE = python_too("`imgcls ensemble RUN RUN ...`", "build_ensemble([RUN, RUN, ...])")

METHODS = ("soft", "hard", "weighted")          # imgcls.ensemble.voting.vote
WEIGHT_METRICS = ("logloss", "f1")             # imgcls.ensemble.voting.fit_weights
COMBINES = ("vote", "profile")                 # imgcls.ensemble.spec.EnsembleSpec.combine


def weight_metric(method: str, metric: str | None = None) -> str:
    """What fitted weights optimise: --weight-metric where given, else the method's default (f1 for hard, logloss
    for soft / weighted, as it has been since weights were fitted: a spec.yaml without weight_metric reads as it)."""
    return metric or ("f1" if method == "hard" else "logloss")


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
    weights: str | None = option(None, panel="Voting", none="equal for soft, auto for weighted / hard",
                                 help="auto (fit on validation predictions) or w1,w2,... (weighted / hard).")
    metric: str | None = option(None, panel="Voting", choices=WEIGHT_METRICS, flags=("--weight-metric",), needs=FITTED,
                                none="logloss for soft / weighted, f1 for hard", help="What auto weights optimise.")
    combine: str = option("vote", panel="Voting", choices=COMBINES,
                          help="vote: members share classes; profile: per-attribute runs (train --target mask / "
                               "gender / age_band) and profile runs -> the 18 profile classes by the product of "
                               "the attributes' probabilities.")
    plots: bool = option(True, panel="Output",
                         help=f"Draw the confusion-matrix PNGs (shown in {REPORT_HTML}); --no-plots: no figures "
                              f"(matplotlib's seconds per build saved, e.g. a script's loop of ensembles), the "
                              f"numbers stay in {REPORT_HTML}'s per-class table, {ENSEMBLE_OOF_CSV} and "
                              f"{PER_CLASS_CSV}. Does not change the weights or the scores.")


def weights_text(weights):
    """build_ensemble's `weights` as --weights spells it: a Python caller's list, tuple or array of numbers
    ([0.3, 0.7], as TrainConfig.head_weights takes its weights; fit_weights' array) is '0.3,0.7', the same weights;
    anything else as given."""
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
        return weights
    import numbers
    values = list(weights)
    if not all(isinstance(w, numbers.Real) and not isinstance(w, bool) for w in values):
        raise UserError(python_too("--weights takes auto or comma-separated numbers, e.g. 0.6,0.4",
                                   "weights=[0.6, 0.4]") + f" (got {weights!r})")
    return join(values)


ENSEMBLES_DIR = Path("outputs/ensembles")


def read_spec_doc(p: Path):
    """The YAML document of the spec file `p` as written (check_spec checks its fields); one that is no readable
    YAML (not UTF-8, broken, a !!python tag) is a UserError naming it. load_spec's, and `imgcls runs`'."""
    import yaml
    try:
        return yaml_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        # safe_load refuses !!python tags (a ConstructorError): they would build objects, i.e. run code
        raise UserError(f"{p} is not a readable YAML ensemble spec ({type(e).__name__}"
                        f"{', a !!python tag is refused' if 'python' in str(e) else ''}); "
                        f"rebuild it with {BUILD_ENSEMBLE}") from None


def missing_members(doc: dict, base: Path) -> list[str]:
    """The names of an ensemble's members (its spec.yaml's fields `doc`, checked; `base` the spec's folder) a
    checkpoint of which is gone (its run renamed, moved or deleted), which spec.load_spec refuses: `imgcls runs` marks
    the ensemble, predict's newest-run choice passes it by."""
    return [str(d.get("name")) for d in doc.get("members") or [] if isinstance(d, dict)
            and any(not (base / str(c)).is_file() for c in d.get("checkpoints") or [])]


def check_spec(doc, p: Path) -> None:
    """The checks of a spec file's fields (`doc`: its YAML, read from `p`): a UserError names the file and the
    first field that is wrong (a hand-edited `members: 3`, `classes: 5`, a weight that is no number). load_spec's,
    and `imgcls runs`' (which reads a spec without loading its members' checkpoints)."""
    if not isinstance(doc, dict) or doc.get("kind") != "imgcls-ensemble" or not doc.get("members"):
        raise UserError(f"{p} is not an imgcls ensemble spec (no kind: imgcls-ensemble / members)")
    bad = lambda what: UserError(f"ensemble spec {p}: {what}; rebuild it with {BUILD_ENSEMBLE}")
    if not isinstance(doc["members"], list):
        raise bad("members is not a list")
    if doc.get("method", "soft") not in METHODS:
        raise bad(f"method {doc.get('method')!r} is not one of {', '.join(METHODS)}")
    if not isinstance(doc.get("classes", []), list):
        raise bad("classes is not a list")
    if doc.get("combine", "vote") not in COMBINES:
        raise bad(f"combine {doc.get('combine')!r} is not one of {', '.join(COMBINES)}")
    if doc.get("weight_metric", "logloss") not in WEIGHT_METRICS:
        raise bad(f"weight_metric {doc.get('weight_metric')!r} is not one of {', '.join(WEIGHT_METRICS)}")
    for i, d in enumerate(doc["members"]):
        if not isinstance(d, dict) or not all(k in d for k in ("name", "run", "checkpoints")):
            raise bad(f"member {i + 1} lacks name / run / checkpoints")
        if not isinstance(d["checkpoints"], list) or not d["checkpoints"] \
                or not all(isinstance(c, str) for c in d["checkpoints"]) or not isinstance(d["run"], str):
            raise bad(f"member {d['name']}: run / checkpoints are not paths")
        try:
            weight = float(d.get("weight", 1.0))
        except (TypeError, ValueError):
            raise bad(f"member {d['name']}: weight {d.get('weight')!r} is not a number") from None
        if weights_fault([weight], one_positive=False):
            raise bad(f"member {d['name']}: weight {weight} is not a non-negative number")
