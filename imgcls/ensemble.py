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
    doc = {"kind": "imgcls-ensemble", "name": spec.name, "method": spec.method, "classes": list(spec.classes),
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
                        [str(c) for c in doc.get("classes", [])], p, doc.get("scores", {}))


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
                   which: str = "best") -> EnsembleSpec:
    """Score members on their validation predictions, fit or take weights, write the ensemble folder. Weights
    given with method soft make it weighted."""
    check(EnsembleConfig(method=method, weights=weights, metric=metric))
    if weights and method == "soft":
        method = "weighted"
    if not runs:
        raise UserError("give at least one run: imgcls ensemble outputs/runs/A outputs/runs/B")
    check_writable(Path(out) if out else Path("outputs/ensembles") / (name or "ensemble"))
    members = [member_from_run(r, which) for r in runs]
    names = [m.name for m in members]
    for i, m in enumerate(members):      # unique names (two runs called the same in different folders)
        if names.count(m.name) > 1:
            m.name = f"{m.name}_{i}"
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
