"""Voting over members' probabilities (soft, weighted, hard) and fitting the weights on labelled predictions:
log-loss by SLSQP on the simplex, macro-F1 by coordinate search; `crossfit_macro_f1` scores fitted weights on rows
they were not fitted on."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from imgcls.ensemble.config import METHODS, EnsembleConfig, weight_metric
from imgcls.errors import UserError
from imgcls.metrics import macro_f1
from imgcls.options import NO_WEIGHT, keyword_note, specs, weights_fault

WEIGHT_FLOOR = 1e-6      # a fitted weight below this share of the largest is 0: it moves no probability visibly


def _metric_keyword() -> str:
    """' (Python: metric=)': what a line naming --weight-metric ends with (options.keyword_note)."""
    return keyword_note(("metric", specs(EnsembleConfig)["metric"][1]))


def normalise_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    """Members' weights summing to 1 (equal where None). Weights whose sum is past a float's range (1e308,1e308) are
    first divided by the largest: their sum was inf, which weighed every member 0."""
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64)
    if len(w) != n:
        raise UserError(f"--weights has {len(w)} value(s) for {n} member(s); give one weight per member")
    if not len(w) or weights_fault(w):       # options' weights rule; nan or inf weighed every member nan
        raise UserError("--weights must be finite, non-negative with a positive sum")
    if w.max() > np.finfo(np.float64).max / len(w):     # a sum that may overflow; smaller weights keep their bits
        w = w / w.max()
    return w / w.sum()


def parse_weights(text: str, n: int, example: str = "comma-separated numbers, e.g. 0.6,0.4") -> np.ndarray:
    """`--weights w1,w2,...` typed by a user -> normalised weights for `n` members (one line when it does not parse,
    or breaks options' weights rule, weights_fault: nan and inf parse as floats, yet weighed every member nan)."""
    try:
        values = [float(x) for x in str(text).split(",")]
    except ValueError:
        raise UserError(f"--weights takes {example} (got '{text}')") from None
    wrong = weights_fault(values)
    if wrong == NO_WEIGHT:
        raise UserError(f"--weights '{text}' weighs every member 0; give one weight > 0 at least, e.g. 0.6,0.4")
    if wrong:
        raise UserError(f"--weights '{text}' holds {wrong}: each weight must be a finite number >= 0; "
                        f"it takes {example}")
    return normalise_weights(values, n)


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


def deciding_member(weights: Sequence[float]) -> int | None:
    """Under a hard vote, the member whose weight is more than the others' together: its argmax wins every image's
    vote whatever the others say, so the ensemble predicts as it alone (two members of unequal weights always have
    one). None where no member outweighs the rest, or where the rest weigh 0 (a member of weight 0 is not run at all:
    EnsembleSpec.running)."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) < 2:
        return None
    i = int(w.argmax())
    rest = float(w.sum() - w[i])
    # by more than vote()'s tie-break (1e-9 of a mean probability): a closer margin still lets a tie's rule decide
    return i if rest > 0 and w[i] - rest > 1e-9 else None


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
    metric = weight_metric(method, metric)
    n_cls = probs[0].shape[1]
    if metric == "logloss":
        if method == "hard":
            raise UserError("hard voting has no probabilities to fit by log-loss; use --weight-metric f1"
                            + _metric_keyword())
        from scipy.optimize import minimize
        stack = np.stack(probs)
        res = minimize(lambda w: log_loss(y, np.tensordot(w, stack, axes=1) / max(w.sum(), 1e-12)),
                       np.full(m, 1.0 / m), method="SLSQP", bounds=[(0.0, 1.0)] * m,
                       constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}])
        w = np.clip(res.x, 0, None)
        w[w < WEIGHT_FLOOR * w.max()] = 0.0     # SLSQP's residue on the simplex's edge (5.6e-17): a member it dropped
        return w / w.sum()
    if metric != "f1":
        raise UserError(f"unknown --weight-metric '{metric}'; use logloss or f1" + _metric_keyword())
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
