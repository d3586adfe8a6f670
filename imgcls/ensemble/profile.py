"""`--combine profile`: single-attribute runs (train --target mask|gender|age_band) and profile runs combined into
the mask competition's classes by the one formula (imgcls.profiles.ProfileScheme): per attribute the weighted mean of
the members' distributions, each class the product of its attributes' probabilities."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from imgcls.console import all_placed, info, interruption_leaves, warn
from imgcls.ensemble.spec import EnsembleSpec, Member, read_oof, scored_rows
from imgcls.ensemble.files import write_ensemble_files
from imgcls.ensemble.table import print_scores
from imgcls.ensemble.voting import log_loss, normalise_weights, parse_weights
from imgcls.errors import UserError
from imgcls.metrics import macro_f1
from imgcls.outputs import REPORT_HTML, predict_fix
from imgcls.options import python_too, shown
from imgcls.profiles import ProfileScheme

PROFILE_ATTRS = ProfileScheme.HEADS        # the attribute models --combine profile multiplies, in the formula's order


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


def member_age_bands(meta) -> tuple[int, ...] | None:
    """The age band edges a member's age_band values mean, as train recorded them (ModelMeta.age_bands); None: not
    known (a checkpoint older than the record, or labels whose edges train could not tell)."""
    return None if meta.age_bands is None else tuple(meta.age_bands)


def profile_scheme(metas: Sequence, names: Sequence[str]):
    """The ProfileScheme the members imply (the age bands of the members that predict the age band, recorded by
    train; else three), after checking that those members' bands agree, that every member predicts an attribute of
    it or its classes, and that each attribute has a member."""
    bands = {m.head_sizes[2] for m in metas if m.decode == "profile"}
    if len(bands) > 1:
        raise UserError(f"the profile members have different numbers of age bands ({sorted(bands)}); combine runs "
                        f"trained with the same --age-bands")
    scheme = ProfileScheme(bands.pop()) if bands else ProfileScheme()
    edges = {}      # member name -> its age band edges, of the members that give the age band
    for meta, name in zip(metas, names):
        if "age_band" in _attributes_of(meta, scheme):
            edges[name] = member_age_bands(meta)
    told = {e for e in edges.values() if e is not None}
    if len(told) > 1:
        raise UserError("--combine profile: the members that predict the age band were trained with different age "
                        "bands (" + "; ".join(f"{n}: {'not recorded' if e is None else ','.join(map(str, e))}"
                                              for n, e in edges.items()) + "); combine runs trained on labels of the "
                        "same split --age-bands")
    unknown = [n for n, e in edges.items() if e is None]
    if unknown and len(edges) > 1:      # checked where recorded; an unrecorded member cannot be, which is said
        from imgcls.console import warn
        known = "; ".join(f"{n}: {','.join(map(str, e))}" for n, e in edges.items() if e is not None)
        warn(f"--combine profile: the age band edges of {', '.join(unknown)} are not recorded (a checkpoint from "
             f"before train recorded them, or labels whose edges train could not tell), so "
             f"{'they are' if len(unknown) > 1 else 'it is'} not checked against the other members' "
             f"({known or 'none recorded'}): combine runs trained on labels of the same split --age-bands")
    if told:
        scheme = ProfileScheme.from_edges(told.pop())
    covered: set[str] = set()
    for meta, name in zip(metas, names):
        covered |= set(member_attributes(meta, scheme, name))
    missing = [a for a in PROFILE_ATTRS if a not in covered]
    if missing:
        raise UserError(f"--combine profile: no member predicts {', '.join(missing)}; add a run trained with "
                        + python_too(f"`imgcls train --target {missing[0]}`",
                                     f"run_train(TrainConfig(target={missing[0]!r}))")
                        + ", or a profile run (--heads multi)")
    return scheme


def _attributes_of(meta, scheme) -> tuple[str, ...]:
    """member_attributes, () where the member gives none (refused there)."""
    try:
        return member_attributes(meta, scheme)
    except UserError:
        return ()


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
    # a run of the raw age (years) has the attribute's column of another name: the fix is the band's
    fix = ("; for the age band, a run of " + python_too("`imgcls train --target age_band`",
                                                        "run_train(TrainConfig(target='age_band'))")
           if meta.target == "age" else "")
    raise UserError(f"{name}: --combine profile takes runs of the attributes {', '.join(PROFILE_ATTRS)} (train "
                    f"--target COLUMN) or of the {scheme.n_classes} profile classes; this run predicts "
                    f"'{meta.target}' with classes {shown(meta.classes, 6)}{fix}")


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


def member_shares(metas: Sequence, weights: Sequence[float], scheme) -> list[dict[str, float]]:
    """Each member's share within each attribute it predicts, {attribute: share}: its weight over the summed weights
    of the members that predict that attribute (combine_profile's weighted mean per attribute). The product of the
    attributes gives no member an overall weight: a member that alone predicts its attribute has all of it (1.0).
    What the ensemble's table and predict show as a member's weight."""
    attrs = [member_attributes(meta, scheme) for meta in metas]
    tot = {a: sum(float(w) for w, at in zip(weights, attrs) if a in at) for a in PROFILE_ATTRS}
    return [{a: float(w) / tot[a] if tot[a] > 0 else 0.0 for a in at} for w, at in zip(weights, attrs)]


def share_value(share: dict[str, float]) -> float:
    """A member's one share (member_shares), NaN where it differs by attribute (a profile run beside others)."""
    vals = {round(v, 9) for v in share.values()}
    return vals.pop() if len(vals) == 1 else float("nan")


def share_text(share: dict[str, float]) -> str:
    """A member's share said in a line or a table cell: '0.75', or per attribute where they differ."""
    v = share_value(share)
    return f"{v:.2f}" if v == v else ", ".join(f"{a} {x:.2f}" for a, x in share.items())


def _true_attributes(meta, labels: pd.Series, scheme) -> dict[str, np.ndarray]:
    """{attribute: true value per row (-1 unknown)} from a member's validation labels."""
    vals = pd.to_numeric(labels, errors="coerce").to_numpy(np.float64)
    ok = ~np.isnan(vals)
    v = np.where(ok, vals, 0).astype(int)
    attrs = member_attributes(meta, scheme)
    if len(attrs) == 1:
        return {attrs[0]: np.where(ok, v, -1)}
    return {a: np.where(ok, np.asarray(x), -1) for a, x in zip(PROFILE_ATTRS, scheme.parts(v))}


def build_profile(members: list[Member], method: str, weights: str | None, out, name,
                  out_typed: bool = False, plots: bool = True) -> EnsembleSpec:
    metas = [member_meta(m) for m in members]
    names = [m.name for m in members]
    scheme = profile_scheme(metas, names)
    classes = [str(i) for i in range(scheme.n_classes)]
    # the members that give each attribute: weights act between those of one attribute only (combine_profile)
    givers = {a: [i for i, (m, meta) in enumerate(zip(members, metas)) if a in member_attributes(meta, scheme, m.name)]
              for a in PROFILE_ATTRS}
    if weights in (None, ""):
        w = np.full(len(members), 1.0 / len(members))
    else:
        if all(len(g) <= 1 for g in givers.values()):
            raise UserError("--weights weight the members that give one attribute against each other, and here each "
                            "attribute comes from one member, so they would change nothing; drop --weights")
        w = parse_weights(weights, len(members))
    for m, x in zip(members, w):
        m.weight = float(x)
    shares = member_shares(metas, w, scheme)
    shared = {a: g for a, g in givers.items() if len(g) > 1}
    if shared:      # the weight each member has within an attribute, which the spec's overall weight is not
        info("weights within each attribute: " + "; ".join(
            f"{a}: " + ", ".join(f"{members[i].name} {shares[i][a]:.2f}" for i in g) for a, g in shared.items()))
    oofs = [read_oof(m.run, list(meta.classes)) for m, meta in zip(members, metas)]
    common = oofs[0].index
    for o in oofs[1:]:
        common = common.intersection(o.index)
    rows = []
    truth = {a: np.full(len(common), -1) for a in PROFILE_ATTRS}
    for i, (m, meta, o) in enumerate(zip(members, metas, oofs)):
        cls = list(meta.classes)
        lab = o["label"].map({c: i for i, c in enumerate(cls)})
        ok = lab.notna()
        f1 = macro_f1(lab[ok].astype(int).to_numpy(), o.loc[ok, [f"p_{c}" for c in cls]].to_numpy().argmax(1),
                      len(cls))
        attrs = member_attributes(meta, scheme, m.name)
        rows.append({"member": f"{m.name} ({attrs[0] if len(attrs) == 1 else 'profile'})",
                     "checkpoints": len(m.checkpoints), "weight": share_value(shares[i]),
                     "shares": share_text(shares[i]),
                     "val_images": int(ok.sum()),
                     "val_macro_f1": f1, "common_macro_f1": float("nan")})
        for a, v in _true_attributes(meta, o.loc[common, "label"], scheme).items():
            truth[a] = np.where(truth[a] < 0, v, truth[a])
    known = (np.all([truth[a] >= 0 for a in PROFILE_ATTRS], axis=0) if len(common) else np.zeros(0, bool))
    y = np.asarray(scheme.label(truth["mask"], truth["gender"], truth["age_band"]))[known].astype(int)
    for r, meta, o in zip(rows, metas, oofs):      # each member on the rows the ensemble is scored on, its own target
        cls = list(meta.classes)
        sub = o.loc[common[known]]
        lab = sub["label"].map({c: i for i, c in enumerate(cls)})
        ok = lab.notna().to_numpy()
        if ok.any():
            r["common_macro_f1"] = macro_f1(lab[ok].astype(int).to_numpy(),
                                            sub.loc[ok, [f"p_{c}" for c in cls]].to_numpy().argmax(1), len(cls))
    P = [o.loc[common, [f"p_{c}" for c in meta.classes]].to_numpy(np.float64)[known] for o, meta in zip(oofs, metas)]
    scores: dict = {"members": {r["member"]: {"val_macro_f1": r["val_macro_f1"], "common_macro_f1": r["common_macro_f1"]}
                                for r in rows},
                    "common_val_images": int(len(y))}
    ens_row = {"member": f"ensemble (profile: product of the attributes' probabilities, {method})",
               "checkpoints": sum(len(m.checkpoints) for m in members), "weight": float("nan"), "shares": "",
               "val_images": int(len(y)),
               "val_macro_f1": float("nan"), "common_macro_f1": float("nan")}
    oof = None
    if len(y):
        ens = combine_profile(P, metas, w, scheme, names)
        f1 = macro_f1(y, ens.argmax(1), len(classes))
        ens_row["val_macro_f1"] = ens_row["common_macro_f1"] = f1
        scores["ensemble_macro_f1"] = f1
        scores["ensemble_logloss"] = log_loss(y, ens)
        oof = scored_rows(np.asarray(common)[known], y, ens, classes, scores)
    else:
        warn("--combine profile: no validation image has every attribute's label among the members' validation "
             "predictions (train the runs on the same split); the ensemble is not scored")
    rows.append(ens_row)
    spec = EnsembleSpec(name, method, members, classes, scores=scores, combine="profile")
    # weight stays numeric (NaN where a member's shares differ by attribute); shares says them in words, per
    # attribute there: what the terminal's and report.html's weight cells show
    table = pd.DataFrame(rows, columns=["member", "checkpoints", "weight", "shares", "val_images", "val_macro_f1",
                                        "common_macro_f1"])
    spec.path = write_ensemble_files(spec, out, out_typed, table, oof,
                                     member_metas=[member_meta(m) for m in spec.members], plots=plots)
    with interruption_leaves(all_placed(out)):      # the set is in place: a stop from here on leaves it whole
        print_scores(table, int(len(y)))
        info(f"wrote {spec.path} and {out / REPORT_HTML} (use: {predict_fix(out, 'mask')})")
    return spec
