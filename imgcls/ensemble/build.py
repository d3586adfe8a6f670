"""`build_ensemble`: score the members on their validation predictions, fit or take the weights, write the ensemble
folder (spec.yaml, scores.csv, oof_predictions.csv, report.html)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from imgcls.console import all_placed, info, interruption_leaves, loading, status, warn
from imgcls.ensemble.config import EnsembleConfig, weight_metric, weights_text
from imgcls.ensemble.spec import (SCORED_ROWS_FILES, EnsembleSpec, check_same_classes, ensemble_folder,
                                  member_folders, member_from_run, read_oof, scored_rows,
                                  unique_member_names, with_absolute_paths)
from imgcls.ensemble.files import write_ensemble_files
from imgcls.ensemble.table import print_scores
from imgcls.ensemble.profile import build_profile, member_meta
from imgcls.ensemble.voting import (crossfit_macro_f1, deciding_member, fit_weights, log_loss,
                                    parse_weights, vote)
from imgcls.errors import UserError
from imgcls.fsutil import check_file_name_encoding, check_output_not_source, check_writable
from imgcls.outputs import (ENSEMBLE_SCORES_CSV, REPORT_HTML, SPEC_NAME, predict_fix, refuse_other_output,
                            refuse_users_files)
from imgcls.metrics import macro_f1, without_rows_note
from imgcls.options import PATH, check, path_list, python_too


def competition_format(metas: Sequence) -> str | None:
    """The --format the predict line names for an ensemble of these members (ModelMeta): 'mask' where every one
    predicts the mask competition's 18 profile classes of its age bands (--heads multi, or one head on the profile
    label), whose submission is ImageID,ans of class ids, as a --combine profile ensemble's line says; the default
    id,label wrote the competition's eval/ as id,label. None for other models."""
    from imgcls.profiles import DEFAULT_AGE_BANDS
    profile = all(m.target == "label" and m.age_bands is not None and tuple(m.age_bands) == tuple(DEFAULT_AGE_BANDS)
                  and m.class_meanings() for m in metas)
    return "mask" if metas and profile else None


def _warn_one_run(spec: EnsembleSpec, runs: Sequence[str | os.PathLike]) -> None:
    """One warning where the weights (typed, or fitted) leave one member to run: a member of weight 0 under a
    weighted or hard vote is not run (EnsembleSpec.running), so the ensemble predicts as that run alone, what
    `imgcls ensemble RUN` refuses as an ensemble of one. Names the weight-0 members and the run that is left."""
    kept = spec.running().members
    if len(kept) != 1 or len(spec.members) < 2:
        return
    zero = [m.name for m in spec.members if m is not kept[0]]
    run = runs[spec.members.index(kept[0])]
    warn(f"{', '.join(zero)} {'has' if len(zero) == 1 else 'have'} weight 0, which is not run: the ensemble is "
         f"{kept[0].name} alone, an ensemble of one; give {'it' if len(zero) == 1 else 'them'} a weight above 0, or "
         f"predict with that run itself: {predict_fix(run)}")


def build_ensemble(runs: Sequence[str | os.PathLike], method: str = EnsembleConfig.method,
                   weights: str | Sequence[float] | None = EnsembleConfig.weights,
                   out: str | os.PathLike | None = None, name: str | None = None,
                   metric: str | None = EnsembleConfig.metric,
                   which: str = "best", combine: str = EnsembleConfig.combine,
                   plots: bool = EnsembleConfig.plots) -> EnsembleSpec:
    """Score members on their validation predictions, fit or take weights, write the ensemble folder; returns the
    EnsembleSpec written (spec.path: its spec.yaml, what run_predict takes; members with their weights; scores;
    its paths absolute, as run_train's run folder).
    `weights`: 'auto', 'w1,w2,...' or a list of numbers; given with method soft they make it weighted.
    `combine="profile"`: see the module doc. `plots` False (--no-plots): no confusion-matrix PNGs, report.html
    says so where they go."""
    check_file_name_encoding()     # as every command: a non-ASCII name misread or left out
    runs = path_list("build_ensemble", "runs", runs, "build_ensemble([{p}, 'outputs/runs/B'])", "run folders",
                     "a path to a run folder or a checkpoint", out=(out, PATH, "a path to a folder"))
    weights = weights_text(weights)      # a list of numbers: its --weights text
    check(EnsembleConfig(method=method, weights=weights, metric=metric, combine=combine, plots=plots))
    from imgcls.train.rundir import check_which
    check_which("build_ensemble", which)
    soft_weighted = bool(weights) and method == "soft"     # said in one line once the weights are taken
    if soft_weighted:
        method = "weighted"
    if not runs:
        raise UserError("give two or more runs: " + python_too("imgcls ensemble outputs/runs/A outputs/runs/B",
                                                              "build_ensemble(['outputs/runs/A', 'outputs/runs/B'])"))
    # --method weighted without --weights means fitted (auto) weights, as it does for --combine vote
    if combine == "profile" and (method == "hard" or weights == "auto" or (method == "weighted" and not weights)):
        raise UserError("--combine profile multiplies the attributes' probabilities: use --method soft (equal "
                        "weights) or explicit --weights w1,w2,... (a member's weight within its attribute)")
    members = [member_from_run(r, which, runs) for r in runs]
    seen: dict[tuple, str] = {}
    owner: dict[str, str] = {}          # checkpoint -> the member given with it
    for r, m in zip(runs, members):     # the same checkpoints twice would double their weight, unsaid
        key = tuple(sorted(str(c.resolve()) for c in m.checkpoints))
        if key in seen:
            raise UserError(f"{r} is given twice (as {seen[key]} and {r}); give each run once and weight it with "
                            f"--weights w1,w2,...")
        # a fold given beside its k-fold set (RUN and RUN/fold_0) counts that fold twice, as unsaid
        shared = next(((c, owner[k]) for c, k in zip(m.checkpoints, key) if k in owner), None)
        if shared is not None:
            raise UserError(f"{r} and {shared[1]} share the checkpoint {shared[0]}: it would count twice; give a "
                            f"k-fold set or its folds, not both (weight a member with --weights w1,w2,...)")
        seen[key] = str(r)
        owner.update(dict.fromkeys(key, str(r)))
    if len(members) == 1:       # an ensemble of one predicts as its run does: a folder that adds nothing
        raise UserError(f"an ensemble needs two or more runs (got one: {runs[0]}); give the others, or predict with "
                        f"that run itself (a k-fold set there averages its folds): {predict_fix(runs[0])}")
    typed = weights if weights not in (None, "", "auto") else None
    given_w = None                      # a typo or a count that does not match is named before anything is read
    if typed and combine != "profile":
        given_w = parse_weights(typed, len(members), "auto or comma-separated numbers, e.g. 0.6,0.4")
    unique_member_names(members)       # two runs called the same in different folders
    out_typed = out is not None
    name, out = ensemble_folder(out, name, members, method, combine, typed)
    check_output_not_source(out, member_folders(members))
    check_writable(out)
    refuse_other_output(out, "ensemble", among=True)
    # its files over a user's own of those names in a folder no ensemble wrote (their report.html, scores.csv)
    from imgcls.figure_files import confusion_png_names
    refuse_users_files(out, "ensemble", [out / n for n in (SPEC_NAME, ENSEMBLE_SCORES_CSV, *SCORED_ROWS_FILES,
                                                           REPORT_HTML, *confusion_png_names())],
                       placing=out / "ensemble")
    if combine == "profile":
        return with_absolute_paths(build_profile(members, method, weights, out, name, out_typed, plots))
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
        from imgcls.console import sh
        from imgcls.run_names import fold_set
        folders = [m.run if m.run.is_dir() else m.run.parent for m in members]
        sets = {f.parent for f in folders}
        # folds of one k-fold set, each validated on its own fold: no split trains them onto shared rows; the set is
        # their ensemble (predict averages its folds), scored on its out-of-fold rows
        kf = next(iter(sets))
        why = (f"the members are folds of the k-fold run {kf}, each validated on its own fold: that run, the ensemble "
               f"of its folds, is scored on its out-of-fold rows (imgcls predict {sh(kf)} averages its folds; "
               f"imgcls ensemble takes it as one member)"
               if len(sets) == 1 and all(fold_set(f) is not None for f in folders) else
               "train the runs on the same split to compare")
        warn(f"the members' validation predictions share no image; the ensemble cannot be scored on them ({why})")

    y_all = oofs[0].loc[common, "label"].map(cidx)
    ok = y_all.notna().to_numpy()
    y = y_all[ok].astype(int).to_numpy()
    P = [o.loc[common, [f"p_{c}" for c in classes]].to_numpy(np.float64)[ok] for o in oofs]

    fitted, fitted_by = False, None
    if method == "soft":                  # no --weights (given ones made it weighted above)
        w = np.full(len(members), 1.0 / len(members))
    elif weights in (None, "", "auto"):
        if len(y) == 0:
            raise UserError("--weights auto needs validation predictions on the same images for every member; "
                            "pass explicit --weights w1,w2,...")
        w = fit_weights(P, y, method, metric)
        fitted, fitted_by = len(members) > 1, weight_metric(method, metric)
        from imgcls.runs import common_rows     # named as the table's column over these rows names them
        rows_said = common_rows([len(m.checkpoints) for m in members])
        info(f"fitted weights on {len(y)} {rows_said} images ({fitted_by}): "
             + ", ".join(f"{m.name}={x:.3f}" for m, x in zip(members, w)))
    else:
        w = given_w
    if soft_weighted:       # the table, spec.yaml and the default folder say weighted: why, where soft was asked
        info(f"--weights {weights} with --method soft: a weighted soft vote (each member's probabilities averaged "
             f"with its weight), built as --method weighted")
    lead = deciding_member(w) if method == "hard" else None
    if lead is not None:        # the others' votes never change an image's class: an ensemble of one, in effect
        warn(f"under --method hard, {members[lead].name}'s weight {w[lead]:.3f} is more than the other members' "
             f"together ({w.sum() - w[lead]:.3f}): its vote decides every image, so the ensemble predicts as "
             f"{members[lead].name} alone; use --method weighted (weights on probabilities), or weights where no "
             f"member outweighs the rest")
    for m, x in zip(members, w):
        m.weight = float(x)
    scores: dict = {"members": {}, "common_val_images": int(len(y))}       # filled below: the spec holds this dict
    spec = EnsembleSpec(name, method, members, classes, scores=scores, weight_metric=fitted_by)
    _warn_one_run(spec, runs)

    for r, p in zip(rows, P):
        r["weight"] = float(next(m.weight for m in members if m.name == r["member"]))
        r["common_macro_f1"] = macro_f1(y, p.argmax(1), n_cls) if len(y) else float("nan")
        scores["members"][r["member"]] = {"val_macro_f1": r["val_macro_f1"], "common_macro_f1": r["common_macro_f1"]}
    # auto weights are fitted on the very rows the ensemble is scored on: that score is optimistic and says so;
    # the cross-fitted score (weights fitted on the other folds of the rows, scored on the held-out fold) is not
    label = f"ensemble ({method})" + (", weights fitted on these rows" if fitted else "")
    # the checkpoints predict runs: a member of weight 0 under a weighted or hard vote is left out (spec.running)
    ens_row = {"member": label, "checkpoints": sum(len(m.checkpoints) for m in spec.running().members),
               "val_images": int(len(y)), "val_macro_f1": float("nan"), "weight": 1.0}
    extra_rows = []
    if len(y):
        ens = vote(P, method, w)
        ens_row["common_macro_f1"] = macro_f1(y, ens.argmax(1), n_cls)
        ens_row["val_macro_f1"] = ens_row["common_macro_f1"]
        scores["ensemble_macro_f1"] = ens_row["common_macro_f1"]
        with loading("sklearn"):        # its scores' import: seconds before the table, nothing on screen
            oof = scored_rows(np.asarray(common)[ok], y, ens, classes, scores)
        scores["weights_fitted_on_scored_rows"] = fitted
        if method != "hard":
            scores["ensemble_logloss"] = log_loss(y, ens)
        if fitted:
            from imgcls.runs import cross_fitted
            cross = crossfit_macro_f1(P, y, method, metric)
            if cross is not None:
                f1, k = cross
                scores["ensemble_macro_f1_crossfit"] = f1
                scores["crossfit_folds"] = k
                extra_rows.append({"member": f"ensemble ({method}), {cross_fitted(k)}",
                                   "checkpoints": ens_row["checkpoints"], "val_images": int(len(y)),
                                   "val_macro_f1": f1, "weight": 1.0, "common_macro_f1": f1})
    rows.append(ens_row)
    rows.extend(extra_rows)

    table = pd.DataFrame(rows, columns=["member", "checkpoints", "weight", "val_images", "val_macro_f1",
                                        "common_macro_f1"])
    with status("writing the ensemble's files and report"):     # its confusion matrices: seconds
        metas = [member_meta(m) for m in spec.members]
        spec.path = write_ensemble_files(spec, out, out_typed, table, oof if len(y) else None, P, metas, plots)
    with interruption_leaves(all_placed(out)):      # the set is in place: a stop from here on leaves it whole
        print_scores(table, int(len(y)))
        # the common column (and the ensemble's score) is a mean over every class: one no common row has counts as 0
        missing = without_rows_note(y, list(classes), "common validation") if len(y) else ""
        if missing:
            info(missing)
        info(f"wrote {spec.path} and {out / REPORT_HTML} (use: {predict_fix(out, competition_format(metas))})")
    return with_absolute_paths(spec)
