"""report.html of `imgcls predict` and `imgcls ensemble`: what predicted, with which weights and TTA views, the eval
scores with and without TTA (labelled data), per-class tables, and the submission's class distribution against
the training distribution (a sanity check before submitting). Rendered by imgcls.report (templates predict.html,
ensemble.html)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from imgcls import metrics, report
from imgcls.console import plural, warn
from imgcls.errors import UserError
from imgcls.figure_files import not_drawn
from imgcls.outputs import ENSEMBLE_OOF_CSV, REPORT_HTML
from imgcls.profiles import class_titles
from imgcls.run_names import PER_CLASS_CSV, VAL_PREDICTIONS
from imgcls.train.rundir import PER_CLASS, VALIDATION, read_run_csv, set_fold_dirs

NO_PLOTS = not_drawn("the tables hold their numbers")      # where predict --no-plots leaves out its figures
# where ensemble --no-plots leaves out its confusion matrices
ENSEMBLE_NO_PLOTS = not_drawn(f"{ENSEMBLE_OOF_CSV} holds their rows (label, pred), {PER_CLASS_CSV} and the table above "
                              f"their per-class scores")


def training_distribution(run: str | os.PathLike, classes: Sequence[str] | None = None
                          ) -> tuple[pd.Series | None, str]:
    """(class counts, where they come from) of a member run: per_class.csv's train_support (the rows it trained
    on; a k-fold run's fold_0 trained on all but its validation rows, so with those, support, every labelled row of
    the set), else the labels of its saved validation predictions. `classes`: the prediction's classes; counts over
    other classes (a per-attribute member of a --combine profile ensemble: mask values, not the 18 profile classes)
    are not this prediction's training distribution, and None is returned. The files are read by rundir.read_run_csv;
    a malformed one is left out as a missing one is, said in one warning (its line): the report is written after
    the prediction, which it does not fail."""
    run = Path(run)
    run = run.parent if run.is_file() else run
    found: tuple[pd.Series | None, str] = (None, "")
    for d in [run, *set_fold_dirs(run)[0]]:        # a set's planned folds: a fold_0 copied in is another set's
        pc = d / PER_CLASS_CSV
        t = _run_file(pc, PER_CLASS, dtype={"class": str}) if pc.is_file() else None
        if t is not None:
            t = t.set_index("class")
            if "train_support" in t.columns:
                # preprocess --oversample's copies (train_copies) are no images of the data: left out, said
                copies = pd.to_numeric(t["train_copies"]).astype(int) if "train_copies" in t.columns else 0
                n_copies = int(copies.sum()) if "train_copies" in t.columns else 0
                left = f" (its {n_copies} oversampled copies left out)" if n_copies else ""
                if d == run:
                    found = (t["train_support"].astype(int) - copies, f"training images of {d}{left}" if n_copies
                             else f"training rows of {d}")
                else:        # a fold trains on the others' rows: with its own validation rows, the whole set
                    found = (t["train_support"].astype(int) - copies + t.get("support", 0)).astype(int), \
                        f"labelled rows of the k-fold run {run} (fold {d.name[5:]}'s training + validation rows){left}"
                break
    if found[0] is None:
        vp = run / VAL_PREDICTIONS
        v = _run_file(vp, VALIDATION, dtype={"label": str}) if vp.is_file() else None
        if v is not None:
            labels = v["label"]
            found = labels.value_counts(), f"validation labels of {run} (no {PER_CLASS_CSV} with training counts)"
    if found[0] is not None and classes is not None and not set(map(str, classes)) <= set(found[0].index.astype(str)):
        return None, ""
    return found


def _run_file(f: Path, role: str, **kwargs) -> pd.DataFrame | None:
    """A member run's CSV file `f` for training_distribution (rundir.read_run_csv's); None, said in one warning,
    where it is malformed."""
    try:
        return read_run_csv(f, role, **kwargs)
    except UserError as e:
        warn(f"{e}; the report's class distribution is drawn without it")
        return None


def _distribution(pred: Sequence[str], classes: Sequence[str], train: pd.Series | None, source: str,
                  meanings: Mapping[str, str] | None = None, plots: bool = True):
    sub = pd.Series(list(pred)).value_counts().reindex(classes, fill_value=0)
    df = pd.DataFrame({"class": classes, "submission": sub.to_numpy(),
                       "submission share": sub.to_numpy() / max(1, sub.sum())})
    if meanings:             # a profile class id says nothing by itself
        df.insert(1, "meaning", [meanings.get(str(c), "") for c in classes])
    if train is not None:
        tr = train.reindex(classes, fill_value=0)
        df["training"] = tr.to_numpy()
        df["training share"] = tr.to_numpy() / max(1, tr.sum())
        df["share ratio"] = df["submission share"] / df["training share"].replace(0, np.nan)
    table = report.table(df, digits=3, max_rows=1000)
    if not plots:
        return table, _note(train, source) + "; " + NO_PLOTS
    return report.img(report.figure_data_uri(_shares_figure(df, classes, meanings)), "class distribution") + table, \
        _note(train, source)


# a class whose submission share is this many times its training share, or as many times less, has its ratio over
# its bars (the note's "far more or less frequent ... worth a look")
SHARE_RATIO_MARKED = 2.0


def _shares_figure(df: pd.DataFrame, classes: Sequence[str], meanings: Mapping[str, str] | None = None):
    """_distribution's table as bars: the submission's and training's share of each class on a log axis (on a
    linear one a rare class predicted 0 times against 9 in training drew two bars of nothing), a bar of 0 as "0"
    at the axis' foot, and the share ratio over the classes SHARE_RATIO_MARKED or more off."""
    from matplotlib.ticker import FuncFormatter
    plt = report.pyplot()
    fig, ax = plt.subplots(figsize=(min(16, 3 + 0.5 * len(classes)), 3.8))
    x = np.arange(len(classes))
    train = "training share" in df.columns
    w = 0.4 if train else 0.8
    series = [(x - (w / 2 if train else 0), df["submission share"].to_numpy(),
               f"submission ({plural(int(df['submission'].sum()), 'image')})")]
    if train:
        series.append((x + w / 2, df["training share"].to_numpy(),
                       f"training ({plural(int(df['training'].sum()), 'image')})"))
    shares = np.concatenate([s for _, s, _ in series])
    floor = shares[shares > 0].min(initial=1.0) / 3        # the axis' foot, below the smallest share drawn
    top = max(shares.max(initial=0), floor) * 4             # room for the ratios over the bars
    for xs, s, label in series:
        color = ax.bar(xs, s, w, label=label)[0].get_facecolor()
        for xi in xs[s == 0]:           # a bar of nothing on a log axis: said where it would stand
            ax.annotate("0", (xi, floor), xytext=(0, 1), textcoords="offset points", ha="center", va="bottom",
                        fontsize=8, fontweight="bold", color=color)
    marked = False
    if train:
        for xi, r, s in zip(x, df["share ratio"], df[["submission share", "training share"]].max(axis=1)):
            if pd.notna(r) and (r <= 1 / SHARE_RATIO_MARKED or r >= SHARE_RATIO_MARKED):
                ax.annotate(f"{r:.2g}\u00d7", (xi, max(s, floor)), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", fontsize=8, color="#c0392b")
                marked = True
    ax.set_yscale("log")
    ax.set_ylim(floor, top)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))      # 0.01, not 10^-2
    ax.set_xticks(x, report.tick_labels(class_titles(classes, meanings), 7), rotation=90, fontsize=7)
    ax.set_title("class shares: submission (predicted)" + (" vs training (labels)" if train else ""), fontsize=10)
    ax.set_xlabel("class" + (f" (red: submission share / training share, where {SHARE_RATIO_MARKED:g}\u00d7 or more "
                             f"off)" if marked else ""))
    ax.set_ylabel("share of images (log scale)")
    ax.legend(fontsize=8)
    return fig


def _note(train: pd.Series | None, source: str) -> str:
    return (f"training: {source}" if train is not None else
            "no member run holds training counts over these classes (per-attribute members count their attribute's "
            "values)") + \
        "; a class far more or less frequent in the submission than in training is worth a look before submitting"


def fitted_note(scores: dict) -> str:
    """What --eval says when it scored rows the ensemble's weights were fitted on ('' when none)."""
    n = scores.get("n_weights_fitted") or 0
    if not n:
        return ""
    which = "all" if n == scores["n_images"] else f"{n} of the {scores['n_images']}"
    return (f"{which} of these rows are the ones the ensemble's --weights auto was fitted on: optimistic (the same "
            f"rows chose the weights)")


def _confusion_html(y, p, classes, out: Path, title: str, meanings: Mapping[str, str] | None = None) -> str:
    raw, norm = metrics.confusion_pngs(y, p, classes, out, title=title, meanings=meanings)
    return report.img(raw, "confusion matrix") + report.img(norm, "confusion matrix, row-normalised")


def write_predict_report(out: str | os.PathLike, summary: dict, table: pd.DataFrame, classes: Sequence[str],
                         members_runs: Sequence[str | os.PathLike], eval_rows: np.ndarray | None = None,
                         shares: Sequence[str] | None = None, meanings: Mapping[str, str] | None = None,
                         plots: bool = True) -> Path:
    """out/report.html of a prediction. table: the probs table (label?, pred, error); eval_rows: the rows --eval
    scored (None without --eval); shares: a --combine profile ensemble's member weights as shares within their
    attributes, as predict prints them (ensemble.profile.share_text); meanings: what each class means
    (profiles.prediction_meanings), named beside it in the tables and figures; plots False (--no-plots): the tables
    alone, said where the figures go."""
    out = Path(out)
    S = report.safe
    ev = summary.get("eval")
    kv = [("model / ensemble", f"{summary['name']} ({summary['source']})"), ("method", summary["method"]),
          ("data", (summary.get("data") or "default") + (f" (its {summary['data_rows']} rows only)"
                                                              if summary.get("data_rows", "all") != "all" else "")), ("images", summary["n_images"]),
          ("unreadable", f"{summary['n_unreadable']} (each given the most frequent prediction, "
                         f"{summary['unreadable']['pred']}, in the submission; listed below)"
           if summary["n_unreadable"] else 0),
          ("TTA", f"{summary['tta']}: {summary['tta_views']} view(s), merged by {summary['tta_merge']}"),
          ("device", summary["device"] + (f" (--device {summary['device_option']})"      # cpu (--device auto)
                                          if summary.get("device_option", summary["device"]) != summary["device"]
                                          else "")),
          ("time", f"{summary['seconds']:.1f} s ({summary['images_per_s']} images/s)"),
          ("submission", summary["submission"]), ("probabilities", summary["probs"])]
    # a --combine profile member's weight: its share within the attribute(s) it predicts (predict.json's share)
    members = pd.DataFrame([{"member": m["name"], **({"weight (share within its attribute)": shares[k]}
                                                     if shares else {"weight": m["weight"]}),
                             "checkpoints": len(m["checkpoints"]),
                             "files": " ".join(Path(c).as_posix() for c in m["checkpoints"])
                             if m.get("run", True) else "not run: its weight 0 adds nothing to the vote"}
                            for k, m in enumerate(summary["members"])])
    ctx = {"eval": "", "eval_note": "", "per_class": "", "per_class_note": "", "confusion": "", "unreadable": ""}
    if ev:
        with_tta = summary["tta_views"] > 1       # one view: a TTA column would repeat the plain one (as printed)
        rows = pd.DataFrame([{"metric": k, "no TTA": ev["plain"][k],
                              **({f"TTA {summary['tta']}": ev["tta"][k]} if with_tta else {})}
                             for k in ("macro_f1", "accuracy")])
        ctx["eval"] = S(report.table(rows, digits=4))
        part = ev.get("rows", "all")
        left = [f"{ev[k]} {what} left out" for k, what in
                (("n_unknown_class", "labelled image(s) of a class the model does not know"),
                 ("n_unreadable", "unreadable labelled image(s)")) if ev.get(k)]
        ctx["eval_note"] = "; ".join([f"{ev['n_images']} labelled {'images' if part == 'all' else part + ' rows'}",
                                      *left, *([fitted_note(ev)] if ev.get("n_weights_fitted") else []),
                                      "macro-F1 over every class of the task"])
        ok = np.asarray(eval_rows if eval_rows is not None else np.ones(len(table), bool), bool)
        ok &= table["label"].astype(str).isin(classes).to_numpy() & (table["error"].astype(str) == "").to_numpy()
        y, p = table.loc[ok, "label"].astype(str), table.loc[ok, "pred"].astype(str)
        how = f"with TTA {summary['tta']}" if with_tta else "no TTA"
        # a class with no labelled row: '–' for what it has no score of, the note beside the table (just under the
        # evaluation's) saying how the macro-F1 counts it, as train's run report says it
        missing = metrics.missing_rows_note(ev.get("classes_without_rows") or [], ev.get("n_classes", len(classes)),
                                            "labelled")
        ctx["per_class_note"] = f"{ok.sum()} labelled {'images' if part == 'all' else part + ' rows'}, {how}" \
                                + (f"; {missing}" if missing else "")
        ctx["per_class"] = S(report.table(metrics.per_class_shown(metrics.per_class(y, p, classes, meanings)),
                                          digits=4, max_rows=1000, blank=metrics.NOT_SCORED))
        ctx["confusion"] = S(_confusion_html(y, p, classes, out, f"--eval, {ok.sum()} rows, {how}", meanings)
                             if plots else report.note(NO_PLOTS))
    train, source = None, ""
    for run in members_runs:          # the first member trained on these classes
        train, source = training_distribution(run, classes)
        if train is not None:
            break
    ok = (table["error"].astype(str) == "").to_numpy()
    # the submission as written: an unreadable image's row holds the class it was given (its count said beside)
    dist, note = _distribution(table["pred"].astype(str), classes, train, source, meanings, plots)
    if not ok.all():
        note = (f"submission: all {len(table)} rows, {plural(int((~ok).sum()), 'unreadable image')} given "
                f"{summary['unreadable']['pred']} included; {note}")
    bad = table.loc[~ok, ["path", "error"]]
    if len(bad):
        ctx["unreadable"] = S(report.table(bad, max_rows=500))
    return report.write_report(out / REPORT_HTML, "predict.html", title=f"imgcls predict: {summary['name']}",
                               subtitle=f"{summary['n_images']} images", summary=S(report.key_values(kv)),
                               members=S(report.table(members, digits=3)), distribution=S(dist),
                               distribution_note=note, **ctx)


def write_ensemble_report(out: str | os.PathLike, spec, table: pd.DataFrame, oof: pd.DataFrame | None,
                          member_probs: Sequence[np.ndarray] = (), member_metas: Sequence = (),
                          plots: bool = True) -> Path:
    """out/report.html of an ensemble: members (weights, own and common val macro-F1), per-class F1 of every member
    (member_probs: each member's probabilities on the oof rows, in order) and of the ensemble on the common
    validation rows, the ensemble's confusion matrices. A --combine profile table's `shares` column (each member's
    shares within its attributes, ensemble.profile.share_text: per attribute where they differ, which the numeric
    weight cannot say) is shown in the weight column, as the terminal's table shows it. member_metas: the members'
    model metadata (ensemble.profile.member_meta), which name a profile ensemble's classes (their age bands); plots
    False (--no-plots): no confusion PNGs, a line where they go."""
    from imgcls.ensemble.table import NOT_RUN_NOTE
    from imgcls.runs import COMMON_OOF, common_rows, cross_fitted
    out = Path(out)
    S = report.safe
    classes = list(spec.classes)
    sc = spec.scores or {}
    rows = common_rows([len(m.checkpoints) for m in spec.members])     # as the terminal's table names them
    kv = [("method", spec.method), ("members", len(spec.members)), ("classes", len(classes)),
          (f"{rows} rows", sc.get("common_val_images", 0))]
    fitted = bool(sc.get("weights_fitted_on_scored_rows"))
    if "ensemble_macro_f1" in sc:       # weights fitted on these very rows: optimistic, said beside the number
        kv.append(("ensemble macro-F1 on them" + (" (weights fitted on these rows: optimistic)" if fitted else ""),
                   f"{sc['ensemble_macro_f1']:.4f}"))
    if "ensemble_macro_f1_crossfit" in sc:
        kv.append((f"ensemble macro-F1, {cross_fitted(sc.get('crossfit_folds', '?'), why=True)}",
                   f"{sc['ensemble_macro_f1_crossfit']:.4f}"))
    optimistic = " (weights fitted on these rows: optimistic)" if fitted else ""
    if "ensemble_logloss" in sc:      # what auto weights minimise on these rows: the most optimistic number
        kv.append(("ensemble log-loss on them" + optimistic, f"{sc['ensemble_logloss']:.4f}"))
    ctx = {"per_class": "", "per_class_note": "", "confusion": ""}
    if oof is not None and len(oof):
        from imgcls.profiles import prediction_meanings
        meanings = prediction_meanings(classes, list(member_metas))
        y = oof["label"].astype(str)
        cols = {"class": classes, **({"meaning": [meanings.get(c, "") for c in classes]} if meanings else {})}
        # a class with no row here: '–', not an F1 0 that reads like a score (metrics.per_class_shown)
        for m, P in zip(spec.members, member_probs):
            mp = np.asarray(classes)[np.asarray(P).argmax(1)]
            cols[m.name] = metrics.per_class_shown(metrics.per_class(y, mp, classes))["f1"].to_numpy()
        ens = metrics.per_class(y, oof["pred"].astype(str), classes)
        cols["ensemble"] = metrics.per_class_shown(ens)["f1"].to_numpy()
        cols["support"] = ens["support"].to_numpy()
        ctx["per_class"] = S(report.table(pd.DataFrame(cols), digits=4, max_rows=1000, blank=metrics.NOT_SCORED))
        notes = [metrics.without_rows_note(y, classes, rows),
                 "ensemble column: weights fitted on these rows, optimistic" if fitted else ""]
        ctx["per_class_note"] = "; ".join(n for n in notes if n)
        ctx["confusion"] = S(_confusion_html(y, oof["pred"].astype(str), classes, out,
                                             f"ensemble ({spec.method}) on {len(oof)} {rows} rows"
                                             + ("\nweights fitted on these rows: optimistic" if fitted else ""),
                                             meanings) if plots else report.note(ENSEMBLE_NO_PLOTS))
    # the columns as the note above the table and the terminal's table name them (scores.csv keeps its own names)
    shown = table.rename(columns={"val_images": "own val images", "val_macro_f1": "own val macro-F1",
                                  "common_macro_f1": f"{rows} macro-F1"})
    if "shares" in shown:
        shown["weight"] = shown.pop("shares")       # the ensemble's row has none ("")
    kfold = [m.name for m in spec.members if len(m.checkpoints) > 1]
    members_note = ("own val: each member's macro-F1 on its own validation rows"
                    + (f" (out-of-fold for the k-fold member(s) {', '.join(kfold)}: each row scored by the fold that "
                       f"did not train on it)" if kfold else "")
                    + f"; {rows}: on the rows every member predicted (the ensemble is scored there"
                    + (", out-of-fold: every member is a k-fold set)" if rows == COMMON_OOF else ")")
                    + ("; weight: a member's share within the attribute(s) it predicts (the profile multiplies the "
                       "attributes' probabilities)" if spec.combine == "profile" else "")
                    + (f"; {NOT_RUN_NOTE}" if len(spec.running().members) < len(spec.members) else ""))
    return report.write_report(out / REPORT_HTML, "ensemble.html", title=f"imgcls ensemble: {spec.name}",
                               summary=S(report.key_values(kv)), members=S(report.table(shown, digits=4)),
                               members_note=members_note, rows=rows, **ctx)
