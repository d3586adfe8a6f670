"""What a split reports: class shares per part against their targets, the summary, the printed tables and the
HTML report, counts CSV and plot beside the output."""
from __future__ import annotations

from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from imgcls import manifest as mf
from imgcls import report
from imgcls.console import is_quiet, print_table
from imgcls.fsutil import write_json, write_table
from imgcls.outputs import split_outputs
from imgcls.split.assign import drawn_rows, kept_in_train
from imgcls.split.config import PROFILE_ATTRIBUTES, SPLITS, SplitConfig, fold_ids
from imgcls.split.leaks import said_kind, side_rank, sides


def parts_of(df: pd.DataFrame) -> pd.Series:
    """The part each used row is counted in for the distribution tables: train / val / test, or fold k."""
    return sides(df)


def value_meanings(df: pd.DataFrame, cfg: SplitConfig) -> dict[str, dict[str, str]]:
    """{column: {value: meaning}} of a profile table's report columns, as eda's report names them
    (eda.profile_meanings under the split's --age-bands): label '4' -> 'wear, female, 30-59', mask '0' -> 'wear',
    age_band '0' -> '<30'; {} for other data (its values are their own names)."""
    from imgcls.split.labels import is_profile_table
    if not is_profile_table(df) or "label" not in df.columns:
        return {}
    from imgcls.eda import profile_meanings
    classes = [str(c) for c in df["label"].dropna().astype(str).unique() if str(c)]
    found = profile_meanings(df, cfg.age_bands, classes)
    return {**found.get("attribute_values", {}), "label": found.get("class_meanings", {})}


# the row of the per-part tables that says preprocess --oversample's copies, which the value rows do not count
COPIES_ROW = "oversampled copies (augmented_from)"


def distribution(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Long table: column, value, part, n (its original images: preprocess --oversample's copies are not images of
    the class, as eda and train count them; they follow their sources and are never validated), share (of the
    value's images in this part), copies (its oversampled copies there)."""
    part = parts_of(df)
    used = (part != "").to_numpy()
    copy = mf.augmented(df)[used]
    part = part[used]
    rows = []
    for col in columns:
        if col not in df.columns:
            continue
        vals = df.loc[used, col].astype(str)
        ct = pd.crosstab(vals, part)
        orig = pd.crosstab(vals[~copy], part[~copy]).reindex(index=ct.index, columns=ct.columns, fill_value=0)
        copies = ct - orig
        for value in mf.class_names(ct.index) or list(ct.index):
            total = int(orig.loc[value].sum())
            for p in ct.columns:
                n = int(orig.loc[value, p])
                rows.append({"column": col, "value": value, "part": p, "n": n,
                             "share": round(n / total, 4) if total else 0.0, "copies": int(copies.loc[value, p])})
    return pd.DataFrame(rows, columns=["column", "value", "part", "n", "share", "copies"])


# balance()'s `worst` rows are per class and part; these of their values are the class's (summary.json keeps the keys)
CLASS_WIDE_COLUMNS = {"least_possible": "class's least possible largest gap", "rows": "class rows",
                      "groups": "class groups"}


def least_gap(n: int, targets: Sequence[float]) -> float:
    """The smallest largest gap between a class's shares and the parts' targets that whole rows allow: n rows
    placed by largest remainder (each part floor or ceil of its target's rows, the ceils to the largest remainders,
    which no placement beats). 10 rows over 3 folds: 4/3/3, a gap of 6.7% no split avoids."""
    if n <= 0:
        return 0.0
    want = np.asarray(targets, dtype=float) * n
    k = np.floor(want)
    extra = int(round(n - k.sum()))
    if extra > 0:
        k[np.argsort(-(want - k), kind="stable")[:extra]] += 1
    return float(np.abs(k - want).max() / n)


def balance(df: pd.DataFrame, cfg: SplitConfig, units: pd.Series | None = None, col: str = "label") -> dict:
    """Per-class share of each part versus its target; classes with fewer groups than parts are listed apart. The
    classes are `col`'s values (label, or split.labels.class_column's where no row has one), which it records
    (class_column)."""
    part = parts_of(df)
    # rows kept in train before the draw (a class's single group, a unit holding most of a class: each said in a
    # warning) were placed on purpose: the shares are those of the rows the split was drawn from. With folds they
    # are the parts' "train (every fold)"; without, the units assign's rule (kept_in_train) keeps
    keep = (part != "") & (part != "train (every fold)")
    # preprocess --oversample's copies follow their source and are never validated: the shares are of the originals
    keep &= drawn_rows(df, units.to_numpy() if units is not None else np.zeros(len(df), object))
    if not cfg.folds and units is not None and col in df.columns and keep.any():
        pinned, _, _ = kept_in_train(units[keep].to_numpy(), df.loc[keep, col].astype(str).to_numpy())
        keep &= ~units.isin(pinned)
    used = df[keep]
    part = part[keep]
    if used.empty or col not in used.columns:
        return {"max_deviation": None, "worst": [], "targets": {}, "class_column": col}
    if cfg.folds:
        targets = {"test": cfg.test} if cfg.test else {}
        # the folds the table has (a checked table's may be numbered with a gap, 0, 2, 3), else 0..K-1
        ids = fold_ids(df) or list(range(cfg.folds))
        targets.update({f"fold {k}": (1 - cfg.test) / len(ids) for k in ids})
    else:
        targets = {"train": 1 - cfg.val - cfg.test, "val": cfg.val}
        if cfg.test:
            targets["test"] = cfg.test
    ct = pd.crosstab(used[col].astype(str), part)
    share = ct.div(ct.sum(axis=1), axis=0)
    n_parts = len(targets)
    unit_col = units if units is not None else used.get("group", pd.Series("", index=used.index))
    n_units = pd.DataFrame({"y": used[col].astype(str), "u": unit_col.loc[used.index]}).groupby("y")["u"].nunique()
    balanceable = [y for y in share.index if n_units.get(y, 0) >= n_parts * 2]
    rows = ct.sum(axis=1)
    worst = []
    for y in share.index:
        least = round(least_gap(int(rows[y]), list(targets.values())), 4)
        for p, t in targets.items():
            s = float(share.loc[y, p]) if p in share.columns else 0.0
            worst.append({"class": y, "part": p, "share": round(s, 4), "target": round(t, 4),
                          "deviation": round(abs(s - t), 4), "least_possible": least, "rows": int(rows[y]),
                          "groups": int(n_units.get(y, 0)), "balanceable": y in balanceable})
    worst.sort(key=lambda r: (-r["deviation"], r["class"], r["part"]))
    bal = [r for r in worst if r["balanceable"]]
    # a gap no placement of the class's whole rows avoids (a small class) is not the split's fault
    over = [r for r in bal if r["deviation"] > cfg.tolerance and r["deviation"] > r["least_possible"] + 1e-4]
    return {"max_deviation": bal[0]["deviation"] if bal else None, "worst": worst[:20], "class_column": col,
            # the row the warning names: of the counted classes' rows over the tolerance by more than their whole
            # rows force (`over`, not only those among `worst`'s 20 rows; a small class at its least possible gap is
            # no miss of the draw's), the part drawn rather than train's remainder where both are as far off
            "furthest": min(over, key=lambda r: (-r["deviation"], r["part"] == "train")) if over else None,
            "targets": {k: round(v, 4) for k, v in targets.items()},
            "within_tolerance": not over,
            "least_possible": bal[0]["least_possible"] if bal else None,
            "least_possible_class": f"{bal[0]['class']} ({bal[0]['rows']} rows)" if bal else None,
            # the largest gap of every class, those with too few groups to balance too (a class of 2 people with
            # no val row is 20% off): the line that says the largest gap never claims less than the table has
            "max_deviation_all": worst[0]["deviation"] if worst else None,
            "furthest_all": {k: worst[0][k] for k in ("class", "part", "deviation", "groups", "balanceable")}
            if worst else None, "balanceable_groups": n_parts * 2,
            "n_balanceable_classes": len(balanceable), "n_classes": int(len(share.index))}


def plot_distribution(dist: pd.DataFrame, path: Path, meanings: dict[str, str] | None = None) -> Path | None:
    """Each class's shares per part, stacked, its images (originals) over its bar; a class named with its meaning
    where `meanings` (value_meanings' label) has one ('4 (wear, female, 30-59)')."""
    from imgcls.profiles import class_titles
    sub = dist[dist["column"] == "label"]
    if sub.empty:
        return None
    plt = report.pyplot()
    values = list(dict.fromkeys(sub["value"]))
    parts = sorted(set(sub["part"]), key=side_rank)
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(values) + 2), 4.2))
    bottom = np.zeros(len(values))
    for p in parts:
        s = sub[sub["part"] == p].set_index("value")["share"].reindex(values).fillna(0).to_numpy()
        bars = ax.bar(range(len(values)), s, bottom=bottom, label=p)
        bottom += s
    # each class's images over its bar: shares alone draw a class of 2 images all in train like one of 2,000 with a
    # gap of 0.1%, and hide the imbalance the shares come from
    totals = sub.groupby("value", sort=False)["n"].sum().reindex(values).fillna(0).astype(int)
    ax.bar_label(bars, labels=[str(n) for n in totals], fontsize=7, padding=2)
    ax.set_ylim(0, 1.1)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xticks(range(len(values)), report.tick_labels(class_titles(values, meanings), 7), rotation=60, ha="right",
                  fontsize=7)
    ax.set_ylabel("share of the class's images")
    ax.set_title("where each class's images went (its images over each bar)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return report.save_figure(fig, path)


def _pivot(dist: pd.DataFrame, col: str, meanings: dict[str, str] | None = None) -> pd.DataFrame:
    """`col`'s rows per part (and total); a meaning column after it where `meanings` names its values."""
    sub = dist[dist["column"] == col]
    if sub.empty:
        return sub
    parts = sorted(set(sub["part"]), key=side_rank)
    pv = sub.pivot_table(index="value", columns="part", values="n", aggfunc="sum", fill_value=0)
    pv = pv.reindex(index=list(dict.fromkeys(sub["value"])), columns=parts).fillna(0).astype(int)
    copies = sub.groupby("part")["copies"].sum().reindex(parts).fillna(0).astype(int)
    if copies.any():            # the images are the originals; the copies said in a row of their own, last
        pv.loc[COPIES_ROW] = copies
    pv["total"] = pv.sum(axis=1)
    return _with_meaning(pv.reset_index().rename(columns={"index": col, "value": col}), col, meanings)


def print_tables(dist: pd.DataFrame, columns: Sequence[str], max_rows: int = 30,
                 meanings: dict[str, dict[str, str]] | None = None) -> None:
    """`columns`' rows per part; `meanings`: value_meanings."""
    if is_quiet():
        return
    from rich.table import Table
    for col in columns:
        pv = _pivot(dist, col, (meanings or {}).get(col))
        if pv.empty:
            continue
        t = Table(title=f"{col} per part", show_lines=False)
        for c in pv.columns:
            t.add_column(str(c), justify="left" if c in (col, "meaning") else "right")
        said = pv[pv[col] == COPIES_ROW]
        values = pv[pv[col] != COPIES_ROW]
        for row in values.head(max_rows).itertuples(index=False):
            t.add_row(*[str(v) for v in row])
        if len(values) > max_rows:
            t.caption = f"{len(values) - max_rows} more rows in the report"
        for row in said.itertuples(index=False):
            t.add_section()
            t.add_row(*[str(v) for v in row])
        print_table(t)


def print_leaks(leaks: pd.DataFrame, group_col: str = "group", limit: int = 20) -> None:
    """The leaks table on screen, a shared group's kind named by the column read (`group_col`: said_kind)."""
    if leaks.empty:
        return
    from rich.table import Table
    t = Table(title=f"leaks between sides ({len(leaks)})")
    for c in ("kind", "side_a", "path_a", "side_b", "path_b", "cos"):
        t.add_column(c, overflow="fold")
    for r in leaks.head(limit).itertuples(index=False):
        t.add_row(said_kind(r.kind, group_col), r.side_a, r.path_a, r.side_b, r.path_b,
                  "" if pd.isna(r.cos) else f"{r.cos:.3f}")
    if len(leaks) > limit:
        t.caption = f"{len(leaks) - limit} more"
    print_table(t)


def write_reports(df: pd.DataFrame, out: Path, cfg: SplitConfig, summary: dict, leaks: pd.DataFrame,
                  columns: Sequence[str]) -> dict[str, Path]:
    paths = split_outputs(out)
    dist = distribution(df, columns)
    write_table(dist, paths["counts"])
    meanings = value_meanings(df, cfg)
    plot = plot_distribution(dist, paths["plot"], meanings.get("label"))
    write_json(paths["summary"], summary)
    if not leaks.empty:
        write_table(leaks, paths["leaks"])
    elif paths["leaks"].exists():
        paths["leaks"].unlink()
    from imgcls.options import acts, setting_text
    from imgcls.split.config import PROFILE_OPTIONS
    from imgcls.split.labels import is_profile_table
    profile = is_profile_table(df)       # the settings that acted: no age options for a folder, no --no-near-dup's
    # as recorded (a --fix records the checked split's --near-dup, not its own run's)
    names = {f.name for f in fields(cfg)}
    made = replace(cfg, **{k: v for k, v in summary["config"].items() if k in names})
    settings = sorted((k, setting_text(SplitConfig, k, v)) for k, v in summary["config"].items()
                      if acts(made, k) and (profile or k not in PROFILE_OPTIONS))
    sections = [("Settings", report.key_values(settings)),
                ("Sizes", report.table(pd.DataFrame([{"part": k, "rows": v} for k, v in summary["parts"].items()])))]
    if summary["notes"]:
        sections.append(("Warnings", report.bullets(summary["notes"])))
    bal = summary["balance"]
    sections.append(("Stratification", report.key_values([
        ("max deviation of a class's share from its target (classes with >= 2 groups per part; over the rows the "
         "split was drawn from: units kept in train before the draw, each named in Warnings, and preprocess "
         "--oversample's copies, which follow their source and are never validated, left out)",
         bal.get("max_deviation")),
        ("max deviation over every class (those with too few groups to balance too)", bal.get("max_deviation_all")),
        ("tolerance", cfg.tolerance),
        ("within tolerance (or at the least gap a class's whole rows allow)", bal.get("within_tolerance"))])
        + report.note(f"the {len(bal.get('worst', []))} class / part rows furthest from their target share, largest "
                      f"deviation first; the least possible largest gap (what the class's whole rows allow), rows and "
                      f"groups are the class's own, over all its parts")
        + report.table(_with_meaning(pd.DataFrame(bal.get("worst", [])), "class", meanings.get("label"))
                       .rename(columns=CLASS_WIDE_COLUMNS))))
    if plot is not None:
        sections.append(("Class shares", report.img(plot, "class shares per part")))
    for col in columns:
        pv = _pivot(dist, col, meanings.get(col))
        if not pv.empty:
            sections.append((f"{col} per part", report.table(pv, max_rows=500)))
    sections.append(("Excluded rows", report.table(pd.DataFrame(
        [{"reason": k, "rows": v} for k, v in summary["excluded"].items()]))))
    sections.append(("Leakage check", report.key_values(sorted(summary["leaks"].items()))
                     + report.table(leaks, max_rows=200)))
    report.write_page(paths["report"], f"imgcls split: {out.name}", sections)
    return paths


def _with_meaning(table: pd.DataFrame, col: str, meanings: dict[str, str] | None) -> pd.DataFrame:
    """`table` with a meaning column after `col` where `meanings` names its values."""
    if meanings and col in table.columns:
        table = table.copy()
        table.insert(table.columns.get_loc(col) + 1, "meaning", [meanings.get(str(v), "") for v in table[col]])
    return table


def report_columns(df: pd.DataFrame, cfg: SplitConfig) -> list[str]:
    from imgcls.split.labels import class_column
    first = class_column(df, cfg.stratify)
    cols = [first] + [c for c in ("label", *cfg.stratify) if c != first]
    cols += [c for c in PROFILE_ATTRIBUTES if c in df.columns and c not in cols]
    return [c for c in cols if c in df.columns]


def summarize(df: pd.DataFrame, cfg: SplitConfig, notes: list[str], leaks: pd.DataFrame,
              units: pd.Series | None = None, class_col: str = "label") -> dict:
    part = parts_of(df)
    excluded = df.loc[df["split"].astype(str) == "", "drop_reason"].astype(str)
    excluded = excluded.str.replace(r"^(unreadable|clean): .*$", r"\1", regex=True)
    conf = {k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in asdict(cfg).items() if k != "extra"}
    if cfg.folds:               # --val does not apply to a k-fold split (fold 0 is its validation part)
        conf.pop("val", None)
    if cfg.near_dup:            # the threshold used, not None for "the method's default"
        conf["dup_threshold"] = cfg.near_duplicates().cut
    return {
        "n_rows": int(len(df)), "n_used": int((part != "").sum()),
        "parts": {p: int(n) for p, n in sorted(part[part != ""].value_counts().items(), key=lambda kv:
                                                 side_rank(kv[0]))},
        "splits": {s: int((df["split"] == s).sum()) for s in SPLITS},
        "excluded": {k: int(v) for k, v in excluded.value_counts().items()},
        "balance": balance(df, cfg, units, class_col),
        "leaks": {"total": int(len(leaks)), **{k: int(v) for k, v in leaks["kind"].value_counts().items()}},
        "near_duplicate_search": bool(cfg.near_dup),
        "notes": notes, "config": conf,
    }
