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
validation scores), `scores.csv` (per member and ensemble) and `oof_predictions.csv`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from imgcls.console import console, info, warn
from imgcls.errors import UserError
from imgcls.fsutil import check_writable
from imgcls.metrics import macro_f1
from imgcls.options import check, option

METHODS = ("soft", "hard", "weighted")
COMBINES = ("vote", "profile")
PROFILE_ATTRS = ("mask", "gender", "age_band")      # imgcls.profiles.ProfileScheme.HEADS
WEIGHT_METRICS = ("logloss", "f1")
SPEC_NAME = "spec.yaml"


@dataclass
class EnsembleConfig:
    """The options of `imgcls ensemble` besides the runs and the output; the field names are build_ensemble's
    keywords (imgcls.options: default, choices, help, panel)."""
    method: str = option("soft", panel="Voting", choices=METHODS,
                         help="soft: mean probability; hard: majority vote; weighted: weighted mean probability "
                              "(--weights given with soft means weighted).")
    weights: str | None = option(None, panel="Voting",
                                 help="auto (fit on validation predictions) or w1,w2,... (weighted / hard).")
    metric: str | None = option(None, panel="Voting", choices=WEIGHT_METRICS, flags=("--weight-metric",),
                                none="logloss for soft / weighted, f1 for hard", help="What auto weights optimise.")
    combine: str = option("vote", panel="Voting", choices=COMBINES,
                          help="vote: members share classes; profile: per-attribute runs (train --target mask / "
                               "gender / age_band) and profile runs -> the 18 profile classes by the product of "
                               "the attributes' probabilities.")


# ---------------------------------------------------------------------------------------------------------------
# Voting
# ---------------------------------------------------------------------------------------------------------------

def normalise_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64)
    if len(w) != n:
        raise UserError(f"--weights has {len(w)} value(s) for {n} member(s); give one weight per member")
    if (w < 0).any() or w.sum() <= 0:
        raise UserError("--weights must be non-negative with a positive sum")
    return w / w.sum()


def vote(probs: Sequence[np.ndarray], method: str = "soft", weights: Sequence[float] | None = None) -> np.ndarray:
    """Combine members' probabilities [N, C] each -> [N, C]."""
    if method not in METHODS:
        raise UserError(f"unknown --method '{method}'; use one of: {', '.join(METHODS)}")
    if not probs:
        raise UserError("an ensemble needs at least one member")
    shapes = {p.shape for p in probs}
    if len(shapes) != 1:
        raise UserError(f"members' predictions have different shapes "
                        f"({', '.join('x'.join(map(str, sh)) for sh in sorted(shapes))}); are the classes the same?")
    w = normalise_weights(None if method == "soft" else weights, len(probs))
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in probs])           # [M, N, C]
    soft = np.tensordot(w, stack, axes=1)                                        # [N, C]
    if method != "hard":
        return soft
    n_cls = stack.shape[2]
    votes = np.tensordot(w, np.eye(n_cls)[stack.argmax(2)], axes=1)              # [N, C] weighted vote share
    # ties: the class with the higher mean probability wins (added below the smallest possible vote step)
    tie_break = soft * 1e-9
    return votes + tie_break


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))


def fit_weights(probs: Sequence[np.ndarray], y: np.ndarray, method: str = "weighted",
                metric: str | None = None, steps: int = 11, rounds: int = 3) -> np.ndarray:
    """Weights (summing to 1) for `vote(probs, method, weights)` fitted on labelled predictions.

    metric 'logloss' (default for soft/weighted): SLSQP on the simplex; 'f1' (default for hard): coordinate search
    over a grid of `steps` values per weight, `rounds` passes."""
    m = len(probs)
    if m == 1:
        return np.ones(1)
    metric = metric or ("f1" if method == "hard" else "logloss")
    n_cls = probs[0].shape[1]
    if metric == "logloss":
        if method == "hard":
            raise UserError("hard voting has no probabilities to fit by log-loss; use --weight-metric f1")
        from scipy.optimize import minimize
        stack = np.stack(probs)
        res = minimize(lambda w: log_loss(y, np.tensordot(w, stack, axes=1) / max(w.sum(), 1e-12)),
                       np.full(m, 1.0 / m), method="SLSQP", bounds=[(0.0, 1.0)] * m,
                       constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}])
        w = np.clip(res.x, 0, None)
        return w / w.sum()
    if metric != "f1":
        raise UserError(f"unknown --weight-metric '{metric}'; use logloss or f1")
    w = np.full(m, 1.0 / m)
    score = lambda ww: macro_f1(y, vote(probs, "hard" if method == "hard" else "weighted", ww).argmax(1), n_cls)
    best = score(w)
    grid = np.linspace(0, 1, steps)
    for _ in range(rounds):
        improved = False
        for i in range(m):
            for g in grid:
                cand = w.copy()
                cand[i] = g
                if cand.sum() <= 0:
                    continue
                s = score(cand / cand.sum())
                if s > best + 1e-12:
                    best, w, improved = s, cand / cand.sum(), True
        if not improved:
            break
    return w


def crossfit_macro_f1(probs: Sequence[np.ndarray], y: np.ndarray, method: str, metric: str | None = None,
                      folds: int = 5, seed: int = 0) -> tuple[float, int] | None:
    """Macro-F1 of the ensemble with weights fitted out of fold: the rows split in `folds` (stratified when every
    class has enough rows), each fold predicted with weights fitted on the others. None with too few rows."""
    from sklearn.model_selection import KFold, StratifiedKFold
    k = min(folds, len(y) // 2)
    if k < 2:
        return None
    counts = np.bincount(y)
    splitter = (StratifiedKFold(k, shuffle=True, random_state=seed) if counts[counts > 0].min() >= k
                else KFold(k, shuffle=True, random_state=seed))
    pred = np.zeros(len(y), dtype=int)
    for fit_idx, held in splitter.split(np.zeros(len(y)), y):
        w = fit_weights([p[fit_idx] for p in probs], y[fit_idx], method, metric)
        pred[held] = vote([p[held] for p in probs], method, w).argmax(1)
    return macro_f1(y, pred, probs[0].shape[1]), k


# ---------------------------------------------------------------------------------------------------------------
# Members and the spec
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Member:
    name: str
    run: Path                      # the run folder (or a checkpoint file)
    checkpoints: list[Path]
    weight: float = 1.0


@dataclass
class EnsembleSpec:
    name: str
    method: str
    members: list[Member]
    classes: list[str]
    path: Path | None = None       # the spec file
    scores: dict = field(default_factory=dict)
    combine: str = "vote"          # vote | profile (see the module doc)

    @property
    def weights(self) -> list[float]:
        return [m.weight for m in self.members]


def member_from_run(run: str | os.PathLike, which: str = "best") -> Member:
    from imgcls.train.checkpoint import find_checkpoints
    run = Path(run)
    ckpts = find_checkpoints(run, which)
    name = run.stem if run.is_file() else run.name
    return Member(name=name, run=run, checkpoints=ckpts)


def checkpoint_classes(path: Path) -> list[str]:
    from imgcls.train.checkpoint import read_meta
    return list(read_meta(path).classes)


def check_same_classes(members: Sequence[Member]) -> list[str]:
    """The members' common class list; a UserError names the first member whose classes differ."""
    ref, ref_name = None, None
    for m in members:
        for ck in m.checkpoints:
            cls = checkpoint_classes(ck)
            if ref is None:
                ref, ref_name = cls, f"{m.name} ({ck.name})"
            elif cls != ref:
                diff = sorted(set(cls) ^ set(ref))
                what = f"classes differ: {', '.join(diff[:5])}" if diff else "the same classes in another order"
                raise UserError(f"members do not share classes: {m.name} ({ck.parent.name}/{ck.name}) has "
                                f"{len(cls)} classes vs {len(ref)} in {ref_name} ({what}); ensemble runs trained "
                                f"on the same labels")
    return ref or []


def write_spec(spec: EnsembleSpec, folder: str | os.PathLike) -> Path:
    import yaml
    from imgcls.fsutil import write_text
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = folder.resolve()
    rel = lambda p: Path(os.path.relpath(Path(p).resolve(), base)).as_posix()
    doc = {"kind": "imgcls-ensemble", "name": spec.name, "method": spec.method, "combine": spec.combine,
           "classes": list(spec.classes),
           "members": [{"name": m.name, "run": rel(m.run), "weight": float(m.weight),
                        "checkpoints": [rel(c) for c in m.checkpoints]} for m in spec.members],
           "scores": spec.scores}
    path = folder / SPEC_NAME
    write_text(path, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


def is_spec(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p.is_dir() and (p / SPEC_NAME).is_file()) or (p.is_file() and p.suffix in (".yaml", ".yml"))


def load_spec(path: str | os.PathLike) -> EnsembleSpec:
    import yaml
    p = Path(path)
    if p.is_dir():
        p = p / SPEC_NAME
    if not p.is_file():
        raise UserError(f"no ensemble spec at {p}; build one with `imgcls ensemble RUN RUN ...`")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        # safe_load refuses !!python tags (a ConstructorError): they would build objects, i.e. run code
        raise UserError(f"{p} is not a readable YAML ensemble spec ({type(e).__name__}"
                        f"{', a !!python tag is refused' if 'python' in str(e) else ''}); "
                        f"rebuild it with `imgcls ensemble RUN RUN ...`") from None
    if not isinstance(doc, dict) or doc.get("kind") != "imgcls-ensemble" or not doc.get("members"):
        raise UserError(f"{p} is not an imgcls ensemble spec (no kind: imgcls-ensemble / members)")
    bad = lambda what: UserError(f"ensemble spec {p}: {what}; rebuild it with `imgcls ensemble RUN RUN ...`")
    if not isinstance(doc["members"], list):
        raise bad("members is not a list")
    if doc.get("method", "soft") not in METHODS:
        raise bad(f"method {doc.get('method')!r} is not one of {', '.join(METHODS)}")
    if not isinstance(doc.get("classes", []), list):
        raise bad("classes is not a list")
    if doc.get("combine", "vote") not in COMBINES:
        raise bad(f"combine {doc.get('combine')!r} is not one of {', '.join(COMBINES)}")
    base = p.parent
    members = []
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
        if not (math.isfinite(weight) and weight >= 0):
            raise bad(f"member {d['name']}: weight {weight} is not a non-negative number")
        ckpts = [(base / c).resolve() for c in d["checkpoints"]]
        missing = [c for c in ckpts if not c.is_file()]
        if missing:
            raise UserError(f"ensemble {p}: member {d['name']} checkpoint {missing[0]} does not exist; "
                            f"rebuild the ensemble or restore the run")
        members.append(Member(str(d["name"]), (base / d["run"]).resolve(), ckpts, weight))
    return EnsembleSpec(doc.get("name", p.parent.name), doc.get("method", "soft"), members,
                        [str(c) for c in doc.get("classes", [])], p, doc.get("scores", {}),
                        doc.get("combine", "vote"))


# ---------------------------------------------------------------------------------------------------------------
# Out-of-fold predictions
# ---------------------------------------------------------------------------------------------------------------

def read_oof(run: Path, classes: Sequence[str]) -> pd.DataFrame:
    """A run's validation / out-of-fold predictions, indexed by image key (root/path), columns p_<class> + label."""
    f = run / "val_predictions.csv" if run.is_dir() else run.parent / "val_predictions.csv"
    if not f.is_file():
        raise UserError(f"{f} does not exist: the run has no validation predictions to score or fit weights on; "
                        f"train with a validation split (or pass explicit --weights)")
    df = pd.read_csv(f, dtype={"path": str, "root": str, "label": str}, keep_default_na=False)
    cols = [f"p_{c}" for c in classes]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise UserError(f"{f} lacks {missing[0]} (classes differ from the checkpoint's); re-run training")
    root = df["root"] if "root" in df.columns else ""
    df["key"] = [f"{r}/{p}" if r else p for r, p in zip(root, df["path"])] if "root" in df.columns else df["path"]
    df = df.drop_duplicates("key").set_index("key")
    return df[["label"] + cols]


def build_ensemble(runs: Sequence[str | os.PathLike], method: str = EnsembleConfig.method,
                   weights: str | None = EnsembleConfig.weights, out: str | os.PathLike | None = None,
                   name: str | None = None, metric: str | None = EnsembleConfig.metric,
                   which: str = "best", combine: str = EnsembleConfig.combine) -> EnsembleSpec:
    """Score members on their validation predictions, fit or take weights, write the ensemble folder. Weights
    given with method soft make it weighted. `combine="profile"`: see the module doc."""
    check(EnsembleConfig(method=method, weights=weights, metric=metric, combine=combine))
    if weights and method == "soft":
        method = "weighted"
    if not runs:
        raise UserError("give at least one run: imgcls ensemble outputs/runs/A outputs/runs/B")
    if combine == "profile" and (method == "hard" or weights == "auto"):
        raise UserError("--combine profile multiplies the attributes' probabilities: use --method soft (equal "
                        "weights) or explicit --weights w1,w2,... (a member's weight within its attribute)")
    check_writable(Path(out) if out else Path("outputs/ensembles") / (name or "ensemble"))
    members = [member_from_run(r, which) for r in runs]
    names = [m.name for m in members]
    for i, m in enumerate(members):      # unique names (two runs called the same in different folders)
        if names.count(m.name) > 1:
            m.name = f"{m.name}_{i}"
    if combine == "profile":
        return _build_profile(members, method, weights, out, name)
    classes = check_same_classes(members)
    n_cls = len(classes)
    cidx = {c: i for i, c in enumerate(classes)}

    oofs = [read_oof(m.run, classes) for m in members]
    common = oofs[0].index
    for o in oofs[1:]:
        common = common.intersection(o.index)
    rows = []
    for m, o in zip(members, oofs):
        lab = o["label"].map(cidx)
        ok = lab.notna()
        f1 = macro_f1(lab[ok].astype(int).to_numpy(), o.loc[ok, [f"p_{c}" for c in classes]].to_numpy().argmax(1),
                      n_cls)
        rows.append({"member": m.name, "checkpoints": len(m.checkpoints), "val_images": int(ok.sum()),
                     "val_macro_f1": f1})
    if len(common) == 0 and len(members) > 1:
        warn("the members' validation predictions share no image; the ensemble cannot be scored on them "
             "(train the runs on the same split to compare)")

    y_all = oofs[0].loc[common, "label"].map(cidx)
    ok = y_all.notna().to_numpy()
    y = y_all[ok].astype(int).to_numpy()
    P = [o.loc[common, [f"p_{c}" for c in classes]].to_numpy(np.float64)[ok] for o in oofs]

    fitted = False
    if method == "soft":
        w = np.full(len(members), 1.0 / len(members))
        if weights not in (None, ""):
            warn("--weights is ignored with --method soft (equal weights); use --method weighted")
    elif weights in (None, "", "auto"):
        if len(y) == 0:
            raise UserError("--weights auto needs validation predictions on the same images for every member; "
                            "pass explicit --weights w1,w2,...")
        w = fit_weights(P, y, method, metric)
        fitted = len(members) > 1
        info(f"fitted weights on {len(y)} common validation images ({metric or ('f1' if method == 'hard' else 'logloss')}): "
             + ", ".join(f"{m.name}={x:.3f}" for m, x in zip(members, w)))
    else:
        try:
            w = normalise_weights([float(x) for x in str(weights).split(",")], len(members))
        except ValueError:
            raise UserError(f"--weights takes auto or comma-separated numbers, e.g. 0.6,0.4 (got '{weights}')") from None
    for m, x in zip(members, w):
        m.weight = float(x)

    scores: dict = {"members": {}, "common_val_images": int(len(y))}
    for r, p in zip(rows, P):
        r["weight"] = float(next(m.weight for m in members if m.name == r["member"]))
        r["common_macro_f1"] = macro_f1(y, p.argmax(1), n_cls) if len(y) else float("nan")
        scores["members"][r["member"]] = {"val_macro_f1": r["val_macro_f1"], "common_macro_f1": r["common_macro_f1"]}
    # auto weights are fitted on the very rows the ensemble is scored on: that score is optimistic and says so;
    # the cross-fitted score (weights fitted on the other folds of the rows, scored on the held-out fold) is not
    label = f"ensemble ({method})" + (", weights fitted on these rows" if fitted else "")
    ens_row = {"member": label, "checkpoints": sum(len(m.checkpoints) for m in members),
               "val_images": int(len(y)), "val_macro_f1": float("nan"), "weight": 1.0}
    extra_rows = []
    if len(y):
        ens = vote(P, method, w)
        ens_row["common_macro_f1"] = macro_f1(y, ens.argmax(1), n_cls)
        ens_row["val_macro_f1"] = ens_row["common_macro_f1"]
        scores["ensemble_macro_f1"] = ens_row["common_macro_f1"]
        scores["weights_fitted_on_scored_rows"] = fitted
        if method != "hard":
            scores["ensemble_logloss"] = log_loss(y, ens)
        if fitted:
            cross = crossfit_macro_f1(P, y, method, metric)
            if cross is not None:
                f1, k = cross
                scores["ensemble_macro_f1_crossfit"] = f1
                scores["crossfit_folds"] = k
                extra_rows.append({"member": f"ensemble ({method}), weights cross-fitted ({k} folds)",
                                   "checkpoints": ens_row["checkpoints"], "val_images": int(len(y)),
                                   "val_macro_f1": f1, "weight": 1.0, "common_macro_f1": f1})
    rows.append(ens_row)
    rows.extend(extra_rows)

    name = name or (Path(out).name if out else "ensemble")
    out = Path(out) if out else Path("outputs/ensembles") / name
    spec = EnsembleSpec(name, method, members, classes, scores=scores)
    spec.path = write_spec(spec, out)
    from imgcls.fsutil import write_table
    table = pd.DataFrame(rows, columns=["member", "checkpoints", "weight", "val_images", "val_macro_f1",
                                        "common_macro_f1"])
    write_table(table, out / "scores.csv")
    if len(y):
        oof = pd.DataFrame(ens, columns=[f"p_{c}" for c in classes])
        oof.insert(0, "key", np.asarray(common)[ok])
        oof.insert(1, "label", [classes[i] for i in y])
        oof.insert(2, "pred", [classes[i] for i in ens.argmax(1)])
        write_table(oof, out / "oof_predictions.csv")
    from imgcls.inference_report import write_ensemble_report
    write_ensemble_report(out, spec, table, oof if len(y) else None, P)
    print_scores(table)
    info(f"wrote {spec.path} and {out / 'report.html'} (use: imgcls predict {out})")
    return spec


def print_scores(table: pd.DataFrame) -> None:
    from rich.table import Table
    t = Table(title="validation macro-F1")
    if table["member"].str.contains("weights fitted on these rows").any():
        t.caption = ("weights fitted on these rows: optimistic (the same rows chose the weights); "
                     "the cross-fitted row scores each row with weights fitted without it")
    t.add_column("member")
    t.add_column("ckpts", justify="right")
    t.add_column("weight", justify="right")
    t.add_column("own val (n)", justify="right")
    t.add_column("common val", justify="right")
    for _, r in table.iterrows():
        own = "" if pd.isna(r["val_macro_f1"]) else f"{r['val_macro_f1']:.4f}"
        common = "" if pd.isna(r["common_macro_f1"]) else f"{r['common_macro_f1']:.4f}"
        t.add_row(str(r["member"]), str(r["checkpoints"]), f"{r['weight']:.3f}", f"{own} ({r['val_images']})", common)
    console.print(t)


# ---------------------------------------------------------------------------------------------------------------
# --combine profile: per-attribute members -> the profile classes
# ---------------------------------------------------------------------------------------------------------------

def member_meta(m: Member):
    """The member's model metadata (its checkpoints, e.g. folds, must agree on target and classes)."""
    from imgcls.train.checkpoint import read_meta
    metas = [read_meta(c) for c in m.checkpoints]
    for c, meta in zip(m.checkpoints[1:], metas[1:]):
        if (meta.target, meta.classes) != (metas[0].target, metas[0].classes):
            raise UserError(f"{m.name}: checkpoint {c} predicts another target or classes than {m.checkpoints[0]}")
    return metas[0]


def _int_classes(classes: Sequence[str]) -> list[int] | None:
    try:
        out = [int(c) for c in classes]
    except ValueError:
        return None
    return out if all(str(v) == str(c).strip() for v, c in zip(out, classes)) else None


def profile_scheme(metas: Sequence, names: Sequence[str]):
    """The ProfileScheme the members imply (the age bands of a profile run, else three), after checking that every
    member predicts an attribute of it or its classes, and that each attribute has a member."""
    from imgcls.profiles import ProfileScheme
    bands = {m.head_sizes[2] for m in metas if m.decode == "profile"}
    if len(bands) > 1:
        raise UserError(f"the profile members have different numbers of age bands ({sorted(bands)}); combine runs "
                        f"trained with the same --age-bands")
    scheme = ProfileScheme(bands.pop()) if bands else ProfileScheme()
    covered: set[str] = set()
    for meta, name in zip(metas, names):
        covered |= set(member_attributes(meta, scheme, name))
    missing = [a for a in PROFILE_ATTRS if a not in covered]
    if missing:
        raise UserError(f"--combine profile: no member predicts {', '.join(missing)}; add a run trained with "
                        f"`imgcls train --target {missing[0]}` (or a profile run: --heads multi)")
    return scheme


def member_attributes(meta, scheme, name: str = "member") -> tuple[str, ...]:
    """The profile attributes a member's probabilities give: one for a `train --target mask|gender|age_band` run,
    all three for a run whose classes are profile class ids (multi-branch heads, or one head on the profile label)."""
    values = _int_classes(meta.classes)
    sizes = dict(zip(PROFILE_ATTRS, scheme.sizes))
    if meta.decode == "profile" or (meta.target == "label" and meta.decode == "single" and values is not None
                                    and all(0 <= v < scheme.n_classes for v in values)):
        return PROFILE_ATTRS
    if meta.target in sizes and values is not None and all(0 <= v < sizes[meta.target] for v in values):
        return (meta.target,)
    raise UserError(f"{name}: --combine profile takes runs of the attributes {', '.join(PROFILE_ATTRS)} (train "
                    f"--target COLUMN) or of the {scheme.n_classes} profile classes; this run predicts "
                    f"'{meta.target}' with classes {', '.join(list(meta.classes)[:6])}")


def attribute_probs(meta, probs: np.ndarray, scheme, name: str = "member") -> dict[str, np.ndarray]:
    """{attribute: [N, its classes]} from a member's final-class probabilities [N, C]: a single-attribute member's
    classes are that attribute's values; a profile member's are summed into each attribute (its marginals)."""
    probs = np.asarray(probs, np.float64)
    attrs = member_attributes(meta, scheme, name)
    values = np.array(_int_classes(meta.classes))
    sizes = dict(zip(PROFILE_ATTRS, scheme.sizes))
    idx = [values] if len(attrs) == 1 else [np.asarray(x) for x in scheme.parts(values)]
    out = {}
    for a, ix in zip(attrs, idx):
        p = np.zeros((len(probs), sizes[a]))
        for k, v in enumerate(ix):
            p[:, v] += probs[:, k]
        out[a] = p
    return out


def combine_profile(member_probs: Sequence[np.ndarray], metas: Sequence, weights: Sequence[float] | None = None,
                    scheme=None, names: Sequence[str] | None = None) -> np.ndarray:
    """[N, scheme.n_classes]: per attribute the weighted mean of the members' distributions for it, then each
    class's probability = the product of its mask, gender and age band probabilities (ProfileScheme's order)."""
    names = list(names or [f"member {k + 1}" for k in range(len(metas))])
    scheme = scheme or profile_scheme(metas, names)
    w = normalise_weights(weights, len(member_probs))
    acc: dict = dict.fromkeys(PROFILE_ATTRS)
    tot = dict.fromkeys(PROFILE_ATTRS, 0.0)
    for p, meta, wk, nm in zip(member_probs, metas, w, names):
        for a, q in attribute_probs(meta, p, scheme, nm).items():
            acc[a] = wk * q if acc[a] is None else acc[a] + wk * q
            tot[a] += wk
    missing = [a for a in PROFILE_ATTRS if acc[a] is None or tot[a] <= 0]
    if missing:
        raise UserError(f"--combine profile: no member with a positive weight predicts {', '.join(missing)}")
    pm, pg, pb = (acc[a] / tot[a] for a in PROFILE_ATTRS)
    m, g, b = (np.asarray(x) for x in scheme.parts(np.arange(scheme.n_classes)))
    return pm[:, m] * pg[:, g] * pb[:, b]


def _true_attributes(meta, labels: pd.Series, scheme) -> dict[str, np.ndarray]:
    """{attribute: true value per row (-1 unknown)} from a member's validation labels."""
    vals = pd.to_numeric(labels, errors="coerce").to_numpy(np.float64)
    ok = ~np.isnan(vals)
    v = np.where(ok, vals, 0).astype(int)
    attrs = member_attributes(meta, scheme)
    if len(attrs) == 1:
        return {attrs[0]: np.where(ok, v, -1)}
    return {a: np.where(ok, np.asarray(x), -1) for a, x in zip(PROFILE_ATTRS, scheme.parts(v))}


def _build_profile(members: list[Member], method: str, weights: str | None, out, name) -> EnsembleSpec:
    from imgcls.fsutil import write_table
    metas = [member_meta(m) for m in members]
    names = [m.name for m in members]
    scheme = profile_scheme(metas, names)
    classes = [str(i) for i in range(scheme.n_classes)]
    if weights in (None, ""):
        w = np.full(len(members), 1.0 / len(members))
    else:
        try:
            w = normalise_weights([float(x) for x in str(weights).split(",")], len(members))
        except ValueError:
            raise UserError(f"--weights takes comma-separated numbers, e.g. 0.6,0.4 (got '{weights}')") from None
    for m, x in zip(members, w):
        m.weight = float(x)
    oofs = [read_oof(m.run, list(meta.classes)) for m, meta in zip(members, metas)]
    common = oofs[0].index
    for o in oofs[1:]:
        common = common.intersection(o.index)
    rows = []
    truth = {a: np.full(len(common), -1) for a in PROFILE_ATTRS}
    for m, meta, o in zip(members, metas, oofs):
        cls = list(meta.classes)
        lab = o["label"].map({c: i for i, c in enumerate(cls)})
        ok = lab.notna()
        f1 = macro_f1(lab[ok].astype(int).to_numpy(), o.loc[ok, [f"p_{c}" for c in cls]].to_numpy().argmax(1),
                      len(cls))
        attrs = member_attributes(meta, scheme, m.name)
        rows.append({"member": f"{m.name} ({attrs[0] if len(attrs) == 1 else 'profile'})",
                     "checkpoints": len(m.checkpoints), "weight": m.weight, "val_images": int(ok.sum()),
                     "val_macro_f1": f1, "common_macro_f1": float("nan")})
        for a, v in _true_attributes(meta, o.loc[common, "label"], scheme).items():
            truth[a] = np.where(truth[a] < 0, v, truth[a])
    known = (np.all([truth[a] >= 0 for a in PROFILE_ATTRS], axis=0) if len(common) else np.zeros(0, bool))
    y = np.asarray(scheme.label(truth["mask"], truth["gender"], truth["age_band"]))[known].astype(int)
    P = [o.loc[common, [f"p_{c}" for c in meta.classes]].to_numpy(np.float64)[known] for o, meta in zip(oofs, metas)]
    scores: dict = {"members": {r["member"]: {"val_macro_f1": r["val_macro_f1"]} for r in rows},
                    "common_val_images": int(len(y))}
    ens_row = {"member": f"ensemble (profile: product of the attributes' probabilities, {method})",
               "checkpoints": sum(len(m.checkpoints) for m in members), "weight": 1.0, "val_images": int(len(y)),
               "val_macro_f1": float("nan"), "common_macro_f1": float("nan")}
    oof = None
    if len(y):
        ens = combine_profile(P, metas, w, scheme, names)
        f1 = macro_f1(y, ens.argmax(1), len(classes))
        ens_row["val_macro_f1"] = ens_row["common_macro_f1"] = f1
        scores["ensemble_macro_f1"] = f1
        scores["ensemble_logloss"] = log_loss(y, ens)
        oof = pd.DataFrame(ens, columns=[f"p_{c}" for c in classes])
        oof.insert(0, "key", np.asarray(common)[known])
        oof.insert(1, "label", [classes[i] for i in y])
        oof.insert(2, "pred", [classes[i] for i in ens.argmax(1)])
    else:
        warn("--combine profile: no validation image has every attribute's label among the members' validation "
             "predictions (train the runs on the same split); the ensemble is not scored")
    rows.append(ens_row)
    name = name or (Path(out).name if out else "ensemble")
    out = Path(out) if out else Path("outputs/ensembles") / name
    spec = EnsembleSpec(name, method, members, classes, scores=scores, combine="profile")
    spec.path = write_spec(spec, out)
    table = pd.DataFrame(rows, columns=["member", "checkpoints", "weight", "val_images", "val_macro_f1",
                                        "common_macro_f1"])
    write_table(table, out / "scores.csv")
    if oof is not None:
        write_table(oof, out / "oof_predictions.csv")
    from imgcls.inference_report import write_ensemble_report
    write_ensemble_report(out, spec, table, oof)
    print_scores(table)
    info(f"wrote {spec.path} and {out / 'report.html'} (use: imgcls predict {out} --format mask)")
    return spec
