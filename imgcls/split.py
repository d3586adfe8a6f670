"""`imgcls split`: group-aware stratified train/val/test splits and k-fold, profile labels, and a leakage check.

What the output (`splits.csv`) says, row by row (see README "imgcls split"):

    split        'train' | 'val' | 'test' for rows a model may use; '' for rows left out (`drop_reason` says why)
    fold         only with --folds K: 0..K-1 = the fold in which the row is validation; -1 = never validation
                 (test rows, and the groups of a class too rare to validate); empty for left-out rows; `split` is then
                 'val' for fold 0 and 'train' for the other non-test rows, so `split` alone is fold 0's holdout
    drop_reason  '' for rows in a split, else why the row is left out (clean's keep=false, unreadable, no label,
                 --drop-ages)

Rows are never split apart when they are linked: the same `group` (person), the same file content (sha256), the same
`source_path` (augmented copies written by preprocess), the same `dup_group` (clean's duplicate groups) or, with the
near-duplicate search on, near duplicates by clean's definition (imgcls.links: verified by default). Linked rows form
one unit for scikit-learn's StratifiedGroupKFold, so these leaks cannot happen; `check_leaks` verifies it (and checks
any split file given). A split that cannot place its units (no validation rows, a fold with no rows) is an error,
never a written file.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from imgcls import links
from imgcls import manifest as mf
from imgcls import profiles
from imgcls import report
from imgcls.console import console, info, is_quiet, warn
from imgcls.errors import UserError
from imgcls.fsutil import check_output_location, check_writable, remove_stale_temps, write_json, write_table
from imgcls.options import check, int_list, join, option, seed_option
from imgcls.parallel import check_workers

SPLITS = ("train", "val", "test")
MAX_DENOMINATOR = 20                  # --val / --test resolution: 1/20 = 5 %
LINK_COLUMNS = ("sha256", "source_path", "dup_group")   # besides the group column
PROFILE_ATTRIBUTES = ("mask", "gender", "age_band")


class LeakageError(UserError):
    """A split whose train side shares a group / an image with its val or test side."""
    exit_code = 1


def _stratify_cli(text: str) -> tuple[str, ...]:
    return () if text.strip().lower() == "none" else tuple(c.strip() for c in text.split(",") if c.strip())


def _ages_cli(ages) -> str | None:
    return ",".join(map(str, ages)) or None


PARTS, LABELS, LINKS, RUNTIME = "Parts", "Labels", "Linked images", "Runtime"


@dataclass
class SplitConfig:
    """Every option of `imgcls split` but the paths (imgcls.options: default, choices, range, help, panel)."""
    val: float = option(0.2, panel=PARTS, lo=0, hi=1, hi_open=True,
                        help="Validation fraction (with --folds K each fold validates 1/K instead).")
    test: float = option(0.0, panel=PARTS, lo=0, hi=1, hi_open=True, help="Test fraction held out before val / folds.")
    folds: int | None = option(None, panel=PARTS, lo=2,
                               help="K-fold: adds `fold` (0..K-1, the fold where the row is validation).")
    group_col: str = option("group", panel=PARTS, help="Column whose rows never cross splits or folds (e.g. the "
                                                        "person).")
    stratify: Sequence[str] = option(("label",), panel=PARTS, cli_type=str, to_cli=lambda v: ",".join(v) or "none",
                                     from_cli=_stratify_cli,
                                     help="Column(s) to stratify on, comma-separated (e.g. mask,gender,age_band), or "
                                          "'none'.")
    seed: int = seed_option(RUNTIME)
    age_bands: Sequence[int] = option(profiles.DEFAULT_AGE_BANDS, panel=LABELS, cli_type=str, to_cli=join,
                                      from_cli=int_list("--age-bands"), help="Age band edges for profile datasets.")
    drop_ages: Sequence[int] = option((), panel=LABELS, cli_type=Optional[str], to_cli=_ages_cli,
                                      from_cli=lambda t: parse_ages(t),
                                      help="Leave out profiles of these ages, e.g. 57-59 (rows stay, split='' with a "
                                           "reason).")
    relabel_age: Sequence[int] | None = option(None, panel=LABELS, cli_type=Optional[str], to_cli=join,
                                               from_cli=int_list("--relabel-age"),
                                               help="Edges used to put ages into the --age-bands classes, e.g. 29,59.")
    near_dup: bool = option(True, panel=LINKS, flags=("--near-dup/--no-near-dup",),
                            help="Keep near duplicates (clean's definition) on one side, and check.")
    dup_method: str = links.dup_method_option(LINKS)
    dup_threshold: float | None = links.dup_threshold_option(LINKS)
    dup_candidates: float = links.dup_candidates_option(LINKS)
    model: str = option(links.DEFAULT_EMBEDDER, panel=LINKS, help="Embedding model of the near-duplicate search.")
    device: str = option("auto", panel=RUNTIME, help="auto | cpu | cuda | cuda:N.")
    cache_dir: str | None = option(None, panel=LINKS, cli_type=Optional[Path], from_cli=str,
                                   help="Embedding cache folder (shared with clean).")
    tolerance: float = option(0.05, panel=PARTS, lo=0, hi=1,
                              help="Warn when a class's share of a part is further than this from its target.")
    allow_leaks: bool = option(False, panel=PARTS, help="Write / accept a contaminated split (exit 0).")
    extra: dict = option(factory=dict, cli=False, help="Free-form settings recorded with the split (Python use).")

    def validate(self) -> None:
        """Choices and ranges (imgcls.options.check) and the fractions together; before anything is read."""
        check(self)
        if self.val + self.test >= 1 and not self.folds:
            raise UserError(f"--val {self.val} + --test {self.test} leave nothing to train on; keep their sum below 1")

    def near_duplicates(self) -> links.NearDuplicates:
        """The near-duplicate definition these options choose (clean's, with the same embedding cache)."""
        return links.NearDuplicates(self.dup_method, self.dup_threshold, self.dup_candidates, self.model,
                                    device=self.device, cache_dir=self.cache_dir)


# ---------------------------------------------------------------------------------------------------------------
# Options parsing helpers (shared by the CLI and Python users)
# ---------------------------------------------------------------------------------------------------------------

def parse_ages(text: str | None) -> list[int]:
    """'57-59' -> [57, 58, 59]; '57-59,80' -> [57, 58, 59, 80]."""
    if not text:
        return []
    ages: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                ages.update(range(lo, hi + 1))
            else:
                ages.add(int(part))
    except ValueError:
        raise UserError(f"--drop-ages takes ages and ranges like 57-59 or 57-59,80 (got '{text}')") from None
    return sorted(ages)


# ---------------------------------------------------------------------------------------------------------------
# Labels and exclusions
# ---------------------------------------------------------------------------------------------------------------

def is_profile_table(df: pd.DataFrame) -> bool:
    return all(c in df.columns for c in ("mask", "gender", "age"))


def derive_profile_labels(df: pd.DataFrame, age_bands: Sequence[int] = profiles.DEFAULT_AGE_BANDS,
                          relabel_age: Sequence[int] | None = None) -> tuple[pd.DataFrame, int]:
    """(Re)derive `age_band` and the 18-class `label` of a profile dataset; returns (df, rows moved by relabel).

    `age_bands` are the band edges (they fix the number of classes); `relabel_age` moves the edges used to put a row
    into a band (seed 004: 29,59 puts 29-year-olds in the 30-59 band and 59-year-olds in the >=60 band)."""
    try:
        for c in ("age", "mask", "gender"):
            pd.to_numeric(df[c]).astype(int)
    except (ValueError, TypeError):
        raise UserError("the mask / gender / age columns must be integers (as the profiles layout writes them); "
                        "rebuild the manifest with `--layout profiles`") from None
    out = profiles.apply_profile_labels(df, age_bands, relabel_age)
    if relabel_age is None:
        return out, 0
    plain = profiles.apply_profile_labels(df, age_bands)
    return out, int((out["age_band"].to_numpy() != plain["age_band"].to_numpy()).sum())


def exclusion_reasons(df: pd.DataFrame, cfg: SplitConfig) -> pd.Series:
    """Why each row is left out of every split ('' = kept): clean's keep=false, unreadable, no label, dropped age."""
    reasons = pd.Series([""] * len(df), index=df.index, dtype=object)

    def mark(mask, text):
        mask = pd.Series(mask, index=df.index) & (reasons == "")
        reasons[mask] = text if isinstance(text, str) else text[mask]

    if "keep" in df.columns:
        why = df["reason"].astype(str).replace("nan", "") if "reason" in df.columns else pd.Series("", index=df.index)
        mark(~mf.kept(df), ("clean: " + why.where(why != "", "keep=false")))
    mark(df["error"].fillna("").astype(str) != "", "unreadable: " + df["error"].fillna("").astype(str))
    if cfg.drop_ages:
        if "age" not in df.columns:
            raise UserError("--drop-ages needs an `age` column (a profile dataset); this source has none")
        lo, hi = min(cfg.drop_ages), max(cfg.drop_ages)
        ages = pd.to_numeric(df["age"], errors="coerce")
        mark(ages.isin(list(cfg.drop_ages)), "age " + ages.astype("Int64").astype(str) + " in --drop-ages "
             + (f"{lo}-{hi}" if len(cfg.drop_ages) == hi - lo + 1 else ",".join(map(str, cfg.drop_ages))))
    for col in cfg.stratify:
        mark(df[col].fillna("").astype(str) == "", f"no {col}")
    return reasons


# ---------------------------------------------------------------------------------------------------------------
# Linking rows that must stay together
# ---------------------------------------------------------------------------------------------------------------

def linked_units(df: pd.DataFrame, group_col: str = "group",
                 near_pairs: Sequence[tuple[int, int, float]] = ()) -> np.ndarray:
    """A unit label per row: rows linked by group / sha256 / source_path / dup_group / near-duplicate pairs share
    it. The label is the smallest `root/path` of the unit, so it does not depend on the row order."""
    n = len(df)
    if n == 0:
        return np.array([], dtype=object)
    ii, jj = [np.array([p[0] for p in near_pairs], np.int64)], [np.array([p[1] for p in near_pairs], np.int64)]
    for col in (group_col,) + LINK_COLUMNS:
        if col in df.columns:
            i, j = links.exact_pairs(df[col].to_numpy())
            ii.append(i)
            jj.append(j)
    comp = links.components(n, np.concatenate(ii), np.concatenate(jj))
    ident = (df["root"].astype(str) + "/" + df["path"].astype(str)).to_numpy()
    first = pd.Series(ident).groupby(comp).min()
    return first.loc[comp].to_numpy()


def near_duplicate_pairs_for(df: pd.DataFrame, cfg: SplitConfig, workers: int = 1) -> list[tuple[int, int, float]]:
    """Near-duplicate pairs (positional indices into df) by the definition cfg chooses (imgcls.links)."""
    if len(df) < 2:
        return []
    i, j, s = cfg.near_duplicates().scored_pairs(df.reset_index(drop=True), workers=workers)
    return [(int(a), int(b), float(c)) for a, b, c in zip(i, j, s)]


# ---------------------------------------------------------------------------------------------------------------
# Assigning splits
# ---------------------------------------------------------------------------------------------------------------

def fraction_plan(test: float, val: float) -> tuple[int, int, int]:
    """(n_splits, test folds, val folds) of one StratifiedGroupKFold giving the requested fractions (to 1/20)."""
    for name, v in (("--test", test), ("--val", val)):
        if not 0 <= v < 1:
            raise UserError(f"{name} is a fraction in [0, 1), got {v}")
    if test + val >= 1:
        raise UserError(f"--val {val} + --test {test} leave nothing to train on; keep their sum below 1")
    ft, fv = Fraction(test).limit_denominator(MAX_DENOMINATOR), Fraction(val).limit_denominator(MAX_DENOMINATOR)
    n = math.lcm(ft.denominator, fv.denominator)
    if n > MAX_DENOMINATOR:
        n = MAX_DENOMINATOR
    a, b = round(test * n), round(val * n)
    if (test > 0 and a == 0) or (val > 0 and b == 0):
        raise UserError(f"--val / --test below 1/{MAX_DENOMINATOR} are not supported (got {val} / {test})")
    return n, a, b


def _sgkf(units: np.ndarray, strata: np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    """Fold index (0..n_splits-1) per row from scikit-learn's StratifiedGroupKFold."""
    from sklearn.model_selection import StratifiedGroupKFold
    n_units = len(np.unique(units))
    if n_units < n_splits:
        raise UserError(f"only {n_units} independent group(s) to split, fewer than the {n_splits} parts needed; "
                        f"use fewer --folds or larger --val / --test fractions")
    counts = pd.Series(strata).value_counts()
    if len(counts) and (counts < n_splits).all():   # scikit-learn's ValueError, said in our words
        raise UserError(f"the split needs {n_splits} parts per class (1/{n_splits} resolution of --val / --test, "
                        f"or --folds {n_splits}) but the largest class has {int(counts.max())} image(s); use a "
                        f"coarser fraction (e.g. --val 0.5) or fewer folds, or add images")
    fold = np.full(len(units), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # its class-count warning: we report per class ourselves
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for k, (_, te) in enumerate(splitter.split(np.zeros(len(units)), strata, units)):
            fold[te] = k
    return fold


def _rare_units(units: np.ndarray, labels: np.ndarray, min_units: int) -> tuple[set, dict]:
    """Units holding a class that has fewer than `min_units` units; {class: n_units} for those classes."""
    per_class = pd.DataFrame({"u": units, "y": labels}).groupby("y")["u"].nunique()
    rare = {str(k): int(v) for k, v in per_class.items() if v < min_units}
    pinned = set(units[np.isin(labels, list(rare))]) if rare else set()
    return pinned, rare


def assign(df: pd.DataFrame, units: np.ndarray, cfg: SplitConfig) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """(split, fold or None, warnings) for the included rows of df (already in canonical order)."""
    n = len(df)
    strata = (df[list(cfg.stratify)].astype(str).agg("|".join, axis=1).to_numpy() if cfg.stratify
              else np.zeros(n, dtype=object).astype(str))
    labels = df["label"].astype(str).to_numpy() if "label" in df.columns else np.full(n, "")
    notes: list[str] = []
    split = np.full(n, "train", dtype=object)
    fold = np.full(n, -1) if cfg.folds else None

    holdout_val = 0.0 if cfg.folds else cfg.val
    reported: set[str] = set()
    if cfg.test > 0 or holdout_val > 0:
        n_splits, a, b = fraction_plan(cfg.test, holdout_val)
        pinned, rare = _rare_units(units, labels, 2)
        free = ~np.isin(units, list(pinned))
        if rare:
            held = "/".join(p for p, v in (("val", holdout_val), ("test", cfg.test)) if v > 0)
            notes.append(f"{len(rare)} class(es) with a single group kept whole in train "
                         + ("in every fold (fold -1: never validated or tested)" if cfg.folds else
                            f"(no {held} examples)") + ": " + _fmt_classes(rare))
            reported.update(rare)
        f = np.full(n, -1)
        if free.any():
            f[free] = _sgkf(units[free], strata[free], n_splits, cfg.seed)
        split[(f >= 0) & (f < a)] = "test"
        split[(f >= a) & (f < a + b)] = "val"
        before = split.copy()
        split = _apply_train_moves(units, labels, split)
        moved = sorted(set(labels) - set(labels[before == "train"]))
        if moved:
            notes.append(f"{len(moved)} class(es) had every group in val/test; one group each moved to train: "
                         + ", ".join(moved[:10]) + (" ..." if len(moved) > 10 else ""))
    if cfg.folds:
        if cfg.folds < 2:
            raise UserError(f"--folds needs at least 2 folds, got {cfg.folds}")
        pool = split != "test"
        pinned, rare = _rare_units(units[pool], labels[pool], 2)
        rare_new = {k: v for k, v in rare.items() if k not in reported}
        if rare_new:
            notes.append(f"{len(rare)} class(es) with a single group are train in every fold (fold -1, never "
                         f"validated): " + _fmt_classes(rare_new))
        _, few = _rare_units(units[pool], labels[pool], cfg.folds)
        few = {k: v for k, v in few.items() if k not in rare}
        if few:
            notes.append(f"{len(few)} class(es) have fewer groups than --folds {cfg.folds} and are validated in only "
                         f"that many folds: " + _fmt_classes(few))
        free = pool & ~np.isin(units, list(pinned))
        if free.any():
            fold[free] = _sgkf(units[free], strata[free], cfg.folds, cfg.seed)
        # a class whose non-pinned groups all landed in one fold would have no training rows in that fold
        lonely = []
        for y in sorted(set(labels[pool])):
            sel = pool & (labels == y)
            folds_y = set(fold[sel])
            if -1 not in folds_y and len(folds_y) == 1:
                cand = pd.Series(1, index=units[sel]).groupby(level=0).sum()
                unit = sorted(cand.items(), key=lambda kv: (kv[1], kv[0]))[0][0]
                fold[units == unit] = -1
                lonely.append(y)
        if lonely:
            notes.append(f"{len(lonely)} class(es) had all groups in one fold; one group each made train in every "
                         f"fold: " + ", ".join(lonely[:10]))
        split[pool] = np.where(fold[pool] == 0, "val", "train")
    return split, fold, notes


def check_placed(split: np.ndarray, fold: np.ndarray | None, units: np.ndarray, cfg: SplitConfig) -> None:
    """Every part asked for holds rows: a split that cannot place its units (e.g. one unit holding every row, or one
    group per class) is an error, never a file whose rows all train (no val, fold -1 everywhere)."""
    parts = [("test", split == "test")] if cfg.test > 0 else []
    if cfg.folds:
        parts += [(f"fold {k}", fold == k) for k in range(cfg.folds)]
    elif cfg.val > 0:
        parts.append(("val", split == "val"))
    empty = [name for name, rows in parts if not rows.any()]
    if empty:
        sizes = pd.Series(units).value_counts()
        raise UserError(f"the split cannot place its units: no rows in {', '.join(empty)} ({len(sizes)} unit(s) of "
                        f"linked rows, the largest {int(sizes.iloc[0])} of {len(units)} rows, and a class whose "
                        f"rows are all in one unit stays in train); nothing written. Check --group-col and the "
                        f"near-duplicate definition (--dup-method, --dup-threshold, or --no-near-dup)")


def _apply_train_moves(units: np.ndarray, labels: np.ndarray, split: np.ndarray) -> np.ndarray:
    """Give every class at least one training unit: the smallest of its val/test units moves to train."""
    split = split.copy()
    for y in sorted(set(labels) - set(labels[split == "train"])):
        sel = (labels == y) & (split != "train")
        cand = pd.Series(1, index=units[sel]).groupby(level=0).sum()
        unit = sorted(cand.items(), key=lambda kv: (kv[1], kv[0]))[0][0]
        split[units == unit] = "train"
    return split


def _fmt_classes(d: dict, limit: int = 10) -> str:
    items = sorted(d.items(), key=lambda kv: (kv[1], kv[0]))
    text = ", ".join(f"{k} ({v} group{'s' if v != 1 else ''})" for k, v in items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


# ---------------------------------------------------------------------------------------------------------------
# Leakage check
# ---------------------------------------------------------------------------------------------------------------

def sides(df: pd.DataFrame) -> pd.Series:
    """Which side of the split each row is on: 'train' / 'val' / 'test', or with folds 'test' / 'fold k' /
    'train (every fold)'; '' for rows left out. Rows on different sides must share nothing."""
    split = df["split"].fillna("").astype(str)
    if "fold" in df.columns:
        fold = pd.to_numeric(df["fold"], errors="coerce").fillna(-1).astype(int)
        side = np.where(fold >= 0, "fold " + fold.astype(str), "train (every fold)")
        side = np.where(split == "test", "test", side)
        side = np.where(split.isin(SPLITS), side, "")
        return pd.Series(side, index=df.index)
    return split.where(split.isin(SPLITS), "")


def check_leaks(df: pd.DataFrame, group_col: str = "group",
                near_pairs: Sequence[tuple[int, int, float]] = ()) -> pd.DataFrame:
    """Pairs of rows on different sides that share a group, content (sha256), source image, clean duplicate group
    or are near-duplicates. `near_pairs` index positions of df. One row per (kind, key, side pair)."""
    side = sides(df).to_numpy()
    paths = df["path"].astype(str).to_numpy()
    used = side != ""
    out = []
    for col in (group_col,) + LINK_COLUMNS:
        if col not in df.columns:
            continue
        vals = df[col].fillna("").astype(str).to_numpy()
        sel = used & (vals != "")
        sub = pd.DataFrame({"key": vals[sel], "side": side[sel], "path": paths[sel]})
        n_sides = sub.groupby("key")["side"].nunique()
        for key in sorted(n_sides[n_sides > 1].index):
            g = sub[sub["key"] == key].sort_values(["side", "path"])
            first = g.groupby("side")["path"].first()
            ss = list(first.index)
            for i in range(len(ss)):
                for j in range(i + 1, len(ss)):
                    out.append({"kind": "group" if col == group_col else col, "key": key, "side_a": ss[i],
                                "path_a": first[ss[i]], "side_b": ss[j], "path_b": first[ss[j]], "cos": np.nan})
    for i, j, c in near_pairs:
        if used[i] and used[j] and side[i] != side[j]:
            (a, b) = (i, j) if (side[i], paths[i]) <= (side[j], paths[j]) else (j, i)
            out.append({"kind": "near_duplicate", "key": "", "side_a": side[a], "path_a": paths[a],
                        "side_b": side[b], "path_b": paths[b], "cos": round(float(c), 4)})
    cols = ["kind", "key", "side_a", "path_a", "side_b", "path_b", "cos"]
    return pd.DataFrame(out, columns=cols)


def _side_rank(side: str) -> tuple:
    if side.startswith("train"):
        return (0, side)
    if side == "val":
        return (1, side)
    if side.startswith("fold "):
        return (2, int(side.split()[1]))
    return (3, side)


def fix_leaks(df: pd.DataFrame, group_col: str = "group",
              near_pairs: Sequence[tuple[int, int, float]] = ()) -> tuple[pd.DataFrame, int]:
    """Move every linked unit that spans sides wholly to the side holding most of its rows (ties: train, then val,
    then the lowest fold, then test). Returns (df, rows moved)."""
    df = df.copy()
    side = sides(df)
    used = (side != "").to_numpy()
    sub = df[used]
    pos = {p: k for k, p in enumerate(np.flatnonzero(used))}
    pairs = [(pos[i], pos[j], c) for i, j, c in near_pairs if used[i] and used[j]]
    units = linked_units(sub, group_col, pairs)
    s = side[used].to_numpy()
    moved = 0
    has_fold = "fold" in df.columns
    tab = pd.DataFrame({"u": units, "s": s})
    for u, g in tab.groupby("u"):
        if g["s"].nunique() < 2:
            continue
        counts = g["s"].value_counts()
        target = sorted(counts.index, key=lambda x: (-counts[x], _side_rank(x)))[0]
        idx = sub.index[(units == u) & (s != target)]
        moved += len(idx)
        if target == "test":
            df.loc[idx, "split"] = "test"
            if has_fold:
                df.loc[idx, "fold"] = -1
        elif has_fold:
            k = int(target.split()[1]) if target.startswith("fold ") else -1
            df.loc[idx, "fold"] = k
            df.loc[idx, "split"] = "val" if k == 0 else "train"
        else:
            df.loc[idx, "split"] = target
    return df, moved


def part_fractions(df: pd.DataFrame) -> dict[str, float]:
    """Share of the used rows on each side (train / val / test, or test / fold k / train (every fold))."""
    side = sides(df)
    side = side[side != ""]
    return {k: float(v) for k, v in side.value_counts(normalize=True).items()} if len(side) else {}


def check_fix_fractions(before: pd.DataFrame, after: pd.DataFrame, tolerance: float) -> None:
    """A --fix that empties a side or moves a side's share of the rows by more than `tolerance` is refused (one
    line, nothing written): moving every leaking group to train can leave val empty."""
    a, b = part_fractions(before), part_fractions(after)
    worst = max(a, key=lambda k: abs(b.get(k, 0.0) - a[k]), default=None)
    if worst is None:
        return
    emptied = [k for k in a if b.get(k, 0.0) == 0.0]
    if emptied or abs(b.get(worst, 0.0) - a[worst]) > tolerance:
        k = emptied[0] if emptied else worst
        raise UserError(f"--fix would change the share of '{k}' from {a[k]:.1%} to {b.get(k, 0.0):.1%} of the rows "
                        f"(--tolerance {tolerance:.0%}); nothing written. Make a new leak-free split instead: "
                        f"imgcls split SRC (linked images are kept together)")


# ---------------------------------------------------------------------------------------------------------------
# Statistics and report
# ---------------------------------------------------------------------------------------------------------------

def parts_of(df: pd.DataFrame) -> pd.Series:
    """The part each used row is counted in for the distribution tables: train / val / test, or fold k."""
    return sides(df)


def distribution(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Long table: column, value, part, n, share (of the value's rows in this part)."""
    part = parts_of(df)
    used = df[part != ""]
    rows = []
    for col in columns:
        if col not in used.columns:
            continue
        vals = used[col].astype(str)
        ct = pd.crosstab(vals, part[part != ""])
        for value in mf.class_names(ct.index) or list(ct.index):
            total = int(ct.loc[value].sum())
            for p in ct.columns:
                n = int(ct.loc[value, p])
                rows.append({"column": col, "value": value, "part": p, "n": n,
                             "share": round(n / total, 4) if total else 0.0})
    return pd.DataFrame(rows, columns=["column", "value", "part", "n", "share"])


def balance(df: pd.DataFrame, cfg: SplitConfig, units: pd.Series | None = None) -> dict:
    """Per-class share of each part versus its target; classes with fewer groups than parts are listed apart."""
    part = parts_of(df)
    used = df[part != ""]
    part = part[part != ""]
    if used.empty or "label" not in used.columns:
        return {"max_deviation": None, "worst": [], "targets": {}}
    if cfg.folds:
        targets = {"test": cfg.test} if cfg.test else {}
        targets.update({f"fold {k}": (1 - cfg.test) / cfg.folds for k in range(cfg.folds)})
    else:
        targets = {"train": 1 - cfg.val - cfg.test, "val": cfg.val}
        if cfg.test:
            targets["test"] = cfg.test
    ct = pd.crosstab(used["label"].astype(str), part)
    share = ct.div(ct.sum(axis=1), axis=0)
    n_parts = len(targets)
    unit_col = units if units is not None else used.get("group", pd.Series("", index=used.index))
    n_units = pd.DataFrame({"y": used["label"].astype(str), "u": unit_col.loc[used.index]}).groupby("y")["u"].nunique()
    balanceable = [y for y in share.index if n_units.get(y, 0) >= n_parts * 2]
    worst = []
    for y in share.index:
        for p, t in targets.items():
            s = float(share.loc[y, p]) if p in share.columns else 0.0
            worst.append({"class": y, "part": p, "share": round(s, 4), "target": round(t, 4),
                          "deviation": round(abs(s - t), 4), "groups": int(n_units.get(y, 0)),
                          "balanceable": y in balanceable})
    worst.sort(key=lambda r: (-r["deviation"], r["class"], r["part"]))
    bal = [r for r in worst if r["balanceable"]]
    return {"max_deviation": bal[0]["deviation"] if bal else None, "worst": worst[:20],
            "targets": {k: round(v, 4) for k, v in targets.items()},
            "within_tolerance": bool(not bal or bal[0]["deviation"] <= cfg.tolerance),
            "n_balanceable_classes": len(balanceable), "n_classes": int(len(share.index))}


def plot_distribution(dist: pd.DataFrame, path: Path) -> Path | None:
    sub = dist[dist["column"] == "label"]
    if sub.empty:
        return None
    plt = report.pyplot()
    values = list(dict.fromkeys(sub["value"]))
    parts = sorted(set(sub["part"]), key=_side_rank)
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(values) + 2), 4.2))
    bottom = np.zeros(len(values))
    for p in parts:
        s = sub[sub["part"] == p].set_index("value")["share"].reindex(values).fillna(0).to_numpy()
        ax.bar(range(len(values)), s, bottom=bottom, label=p)
        bottom += s
    ax.set_xticks(range(len(values)), values, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("share of the class's images")
    ax.set_title("where each class's images went")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return report.save_figure(fig, path)


def _pivot(dist: pd.DataFrame, col: str) -> pd.DataFrame:
    sub = dist[dist["column"] == col]
    if sub.empty:
        return sub
    parts = sorted(set(sub["part"]), key=_side_rank)
    pv = sub.pivot_table(index="value", columns="part", values="n", aggfunc="sum", fill_value=0)
    pv = pv.reindex(index=list(dict.fromkeys(sub["value"])), columns=parts).fillna(0).astype(int)
    pv["total"] = pv.sum(axis=1)
    return pv.reset_index().rename(columns={"value": col})


def print_tables(dist: pd.DataFrame, columns: Sequence[str], max_rows: int = 30) -> None:
    if is_quiet():
        return
    from rich.table import Table
    for col in columns:
        pv = _pivot(dist, col)
        if pv.empty:
            continue
        t = Table(title=f"{col} per part", show_lines=False)
        for c in pv.columns:
            t.add_column(str(c), justify="left" if c == col else "right")
        for row in pv.head(max_rows).itertuples(index=False):
            t.add_row(*[str(v) for v in row])
        if len(pv) > max_rows:
            t.caption = f"{len(pv) - max_rows} more rows in the report"
        console.print(t)


def print_leaks(leaks: pd.DataFrame, limit: int = 20) -> None:
    if leaks.empty:
        return
    from rich.table import Table
    t = Table(title=f"leaks between sides ({len(leaks)})")
    for c in ("kind", "side_a", "path_a", "side_b", "path_b", "cos"):
        t.add_column(c, overflow="fold")
    for r in leaks.head(limit).itertuples(index=False):
        t.add_row(r.kind, r.side_a, r.path_a, r.side_b, r.path_b, "" if pd.isna(r.cos) else f"{r.cos:.3f}")
    if len(leaks) > limit:
        t.caption = f"{len(leaks) - limit} more"
    console.print(t)


def report_paths(out: Path) -> dict[str, Path]:
    stem, parent = out.stem, out.parent
    return {"report": parent / f"{stem}_report.html", "counts": parent / f"{stem}_counts.csv",
            "summary": parent / f"{stem}_summary.json", "plot": parent / f"{stem}_distribution.png",
            "leaks": parent / f"{stem}_leaks.csv"}


def write_reports(df: pd.DataFrame, out: Path, cfg: SplitConfig, summary: dict, leaks: pd.DataFrame,
                  columns: Sequence[str]) -> dict[str, Path]:
    paths = report_paths(out)
    dist = distribution(df, columns)
    write_table(dist, paths["counts"])
    plot = plot_distribution(dist, paths["plot"])
    write_json(paths["summary"], summary)
    if not leaks.empty:
        write_table(leaks, paths["leaks"])
    elif paths["leaks"].exists():
        paths["leaks"].unlink()
    sections = [("Settings", report.key_values(sorted((k, v) for k, v in summary["config"].items()))),
                ("Sizes", report.table(pd.DataFrame([{"part": k, "rows": v} for k, v in summary["parts"].items()])))]
    if summary["notes"]:
        sections.append(("Warnings", "<ul>" + "".join(f"<li>{report.esc(n)}</li>" for n in summary["notes"])
                         + "</ul>"))
    bal = summary["balance"]
    sections.append(("Stratification", report.key_values([
        ("max deviation of a class's share from its target (classes with >= 2 groups per part)",
         bal.get("max_deviation")), ("tolerance", cfg.tolerance),
        ("within tolerance", bal.get("within_tolerance"))]) + report.table(pd.DataFrame(bal.get("worst", [])))))
    if plot is not None:
        sections.append(("Class shares", report.img(plot, "class shares per part")))
    for col in columns:
        pv = _pivot(dist, col)
        if not pv.empty:
            sections.append((f"{col} per part", report.table(pv, max_rows=500)))
    sections.append(("Excluded rows", report.table(pd.DataFrame(
        [{"reason": k, "rows": v} for k, v in summary["excluded"].items()]))))
    sections.append(("Leakage check", report.key_values(sorted(summary["leaks"].items()))
                     + report.table(leaks, max_rows=200)))
    report.write_page(paths["report"], f"imgcls split: {out.name}", sections)
    return paths


def report_columns(df: pd.DataFrame, cfg: SplitConfig) -> list[str]:
    cols = ["label"] + [c for c in cfg.stratify if c != "label"]
    cols += [c for c in PROFILE_ATTRIBUTES if c in df.columns and c not in cols]
    return [c for c in cols if c in df.columns]


# ---------------------------------------------------------------------------------------------------------------
# The step
# ---------------------------------------------------------------------------------------------------------------

def _resolve_group_col(df: pd.DataFrame, cfg: SplitConfig, layout: str) -> str:
    if cfg.group_col in df.columns:
        return cfg.group_col
    if layout == "csv":       # the CSV reader already put --group-col into `group`
        return "group"
    raise UserError(f"--group-col '{cfg.group_col}' is not a column of the source (columns: "
                    f"{', '.join(map(str, df.columns))}); pass an existing column, e.g. --group-col group")


def make_split(df: pd.DataFrame, cfg: SplitConfig, group_col: str = "group", workers: int = 1,
               ) -> tuple[pd.DataFrame, dict, pd.DataFrame, list[tuple[int, int, float]]]:
    """The split as a library call: returns (df with split / fold / drop_reason, summary, leaks, near pairs).

    df must be a loaded manifest (absolute roots, scanned). Row order of the result = canonical order
    (root, path), so the output does not depend on the input's row order."""
    for col in cfg.stratify:
        if col not in df.columns:
            raise UserError(f"--stratify column '{col}' is not in the source (columns: "
                            f"{', '.join(map(str, df.columns))})")
    notes: list[str] = []
    if "split" in df.columns and (df["split"].fillna("").astype(str) != "").any():
        info("the source already has a `split` column (e.g. train/ val/ test/ folders): this split replaces it; "
             "train on the source itself to keep the folders' split")
    df = df.drop(columns=[c for c in mf.columns_of("split") if c in df.columns])
    if is_profile_table(df):
        df, moved = derive_profile_labels(df, cfg.age_bands, cfg.relabel_age)
        if cfg.relabel_age is not None:
            info(f"--relabel-age {','.join(map(str, cfg.relabel_age))}: {moved} image(s) moved to another age band")
            notes.append(f"--relabel-age moved {moved} image(s) to another age band")
    elif cfg.relabel_age is not None:
        raise UserError("--relabel-age needs a profile dataset (mask / gender / age columns); this source has none")
    if "label" in cfg.stratify and (df["label"].astype(str) == "").all():
        raise UserError("the source has no labels to stratify on; give a labelled dataset or --stratify none")
    df = df.assign(_ident=df["root"].astype(str) + "/" + df["path"].astype(str))
    df = df.sort_values("_ident", kind="stable").drop(columns="_ident").reset_index(drop=True)
    reasons = exclusion_reasons(df, cfg)
    inc = df[reasons == ""].reset_index(drop=True)
    if inc.empty:
        raise UserError("every row is excluded (see drop_reason: clean's keep=false, unreadable, no label, "
                        "--drop-ages); nothing to split")
    near: list[tuple[int, int, float]] = []
    if cfg.near_dup:
        near = near_duplicate_pairs_for(inc, cfg, workers)
        info(f"near-duplicate search ({cfg.near_duplicates().describe()}): {len(near)} pair(s) kept together")
    units = linked_units(inc, group_col, near)
    sizes = pd.Series(units).value_counts()
    if len(sizes) and sizes.iloc[0] > max(50, 0.1 * len(inc)):
        notes.append(f"{int(sizes.iloc[0])} rows are linked into one unit (groups/duplicates); the split cannot "
                     f"balance it - check --dup-method / --dup-threshold or the group column")
    split, fold, more = assign(inc, units, cfg)
    check_placed(split, fold, units, cfg)
    notes += more
    df["split"] = ""
    df.loc[reasons == "", "split"] = split
    if fold is not None:
        df["fold"] = pd.array([pd.NA] * len(df), dtype="Int64")     # empty for rows left out of every split
        df.loc[reasons == "", "fold"] = fold
    df["drop_reason"] = reasons.to_numpy()
    # the automatic leakage check (positions of `near` index the included rows)
    pos = np.flatnonzero((reasons == "").to_numpy())
    near_full = [(int(pos[i]), int(pos[j]), c) for i, j, c in near]
    leaks = check_leaks(df, group_col, near_full)
    summary = summarize(df, cfg, notes, leaks, units_series(df, reasons, units))
    return df, summary, leaks, near_full


def units_series(df: pd.DataFrame, reasons: pd.Series, units: np.ndarray) -> pd.Series:
    s = pd.Series("", index=df.index, dtype=object)
    s[(reasons == "").to_numpy()] = units
    return s


def summarize(df: pd.DataFrame, cfg: SplitConfig, notes: list[str], leaks: pd.DataFrame,
              units: pd.Series | None = None) -> dict:
    part = parts_of(df)
    excluded = df.loc[df["split"].astype(str) == "", "drop_reason"].astype(str)
    excluded = excluded.str.replace(r"^(unreadable|clean): .*$", r"\1", regex=True)
    conf = {k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in asdict(cfg).items() if k != "extra"}
    return {
        "n_rows": int(len(df)), "n_used": int((part != "").sum()),
        "parts": {p: int(n) for p, n in sorted(part[part != ""].value_counts().items(), key=lambda kv:
                                                 _side_rank(kv[0]))},
        "splits": {s: int((df["split"] == s).sum()) for s in SPLITS},
        "excluded": {k: int(v) for k, v in excluded.value_counts().items()},
        "balance": balance(df, cfg, units),
        "leaks": {"total": int(len(leaks)), **{k: int(v) for k, v in leaks["kind"].value_counts().items()}},
        "near_duplicate_search": bool(cfg.near_dup),
        "notes": notes, "config": conf,
    }


def _load(src, opts: mf.LayoutOptions, workers: int, max_pixels: int | None) -> tuple[pd.DataFrame, str]:
    layout = mf.detect_layout(Path(src), opts) if Path(src).exists() else opts.layout
    df = mf.load(src, opts, scan=True, workers=workers, max_pixels=max_pixels)
    return df, layout


def _check_embedder(cfg: SplitConfig) -> None:
    """The near-duplicate definition (its method) and its model's weights, checked before the scan rather than
    after it."""
    definition = cfg.near_duplicates()
    if cfg.near_dup:
        definition.check_weights()


def run_split(src, out, opts: mf.LayoutOptions, cfg: SplitConfig, workers: int = 1,
              max_pixels: int | None = mf.imgio.DEFAULT_MAX_PIXELS) -> pd.DataFrame:
    """`imgcls split SRC`: load, derive labels, split, check, write the table and its reports."""
    cfg.validate()
    check_workers(workers)
    if max_pixels is not None:
        check(mf.imgio.ImageLimits(max_pixels))
    out = Path(out)
    check_writable(out, "file")
    _check_embedder(cfg)
    df, layout = _load(src, opts, workers, max_pixels)
    check_output_location(out, *mf.roots(df))
    group_col = _resolve_group_col(df, cfg, layout)
    df, summary, leaks, _ = make_split(df, cfg, group_col, workers)
    for n in summary["notes"]:
        warn(n)
    _finish(df, out, cfg, summary, leaks)
    return df


def _finish(df: pd.DataFrame, out: Path, cfg: SplitConfig, summary: dict, leaks: pd.DataFrame) -> None:
    columns = report_columns(df, cfg)
    print_tables(distribution(df, columns), columns[:1] + [c for c in columns[1:] if c in PROFILE_ATTRIBUTES])
    bal = summary["balance"]
    if bal.get("max_deviation") is not None:
        msg = (f"stratification: largest gap between a class's share and its target is "
               f"{bal['max_deviation']:.1%} (tolerance {cfg.tolerance:.0%})")
        (info if bal["within_tolerance"] else warn)(msg + ("" if bal["within_tolerance"] else
                                                           "; see the report's Stratification table"))
    if leaks.empty:
        info("leakage check: no group, exact duplicate, source image"
             + (" or near-duplicate" if cfg.near_dup else "") + " shared between sides"
             + ("" if cfg.near_dup else " (near-duplicate search off)"))
    else:
        print_leaks(leaks)
        if not cfg.allow_leaks:
            raise LeakageError(f"the split is contaminated: {len(leaks)} leak(s) between sides (listed above); "
                               f"nothing written. Rerun with --fix, or pass --allow-leaks to write it anyway")
        warn(f"{len(leaks)} leak(s) between sides written anyway (--allow-leaks)")
    # a kill -9 of an earlier run left temporary files of these names (only ours: --out's folder is the user's)
    remove_stale_temps(out.parent, [out.name] + [p.name for p in report_paths(out).values()])
    mf.write(df, out)
    paths = write_reports(df, out, cfg, summary, leaks, columns)
    info(f"wrote {out} ({summary['n_used']} rows in splits, {summary['n_rows'] - summary['n_used']} left out) "
         f"and {paths['report']}")


def run_check(file, out=None, cfg: SplitConfig | None = None, fix: bool = False, workers: int = 1) -> pd.DataFrame:
    """`imgcls split --check FILE [--fix]`: find leaks in an existing split; with fix, move and write to out."""
    cfg = cfg or SplitConfig()
    cfg.validate()
    check_workers(workers)
    file = Path(file)
    if fix:
        check_writable(Path(out) if out is not None else file, "file")
    _check_embedder(cfg)
    df = mf.load(file, mf.LayoutOptions(layout="manifest"), scan=False)
    if "split" not in df.columns:
        raise UserError(f"{file} has no `split` column; make one with `imgcls split SRC`")
    values = df["split"].fillna("").astype(str)
    bad = ~values.isin(SPLITS + ("",))
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"{file}: column 'split' has '{values.iloc[pos]}' in row {pos + 1} ({int(bad.sum())} row(s) "
                        f"like it; accepted: train, val, test, or empty for a row left out); fix the file or make "
                        f"a new split with `imgcls split SRC`")
    df = mf.scan_images(df, workers=workers)
    group_col = cfg.group_col if cfg.group_col in df.columns else "group"
    df = df.assign(split=df["split"].fillna("").astype(str))
    if "fold" in df.columns:
        df["fold"] = pd.to_numeric(df["fold"], errors="coerce").astype("Int64")
    if "drop_reason" not in df.columns:
        df["drop_reason"] = np.where(df["split"].isin(SPLITS), "", "not in a split")
    used_pos = np.flatnonzero(sides(df).to_numpy() != "")
    near: list[tuple[int, int, float]] = []
    if cfg.near_dup:
        keep_pos = used_pos[(df.iloc[used_pos]["error"].fillna("") == "").to_numpy()]
        pairs = near_duplicate_pairs_for(df.iloc[keep_pos], cfg, workers)
        near = [(int(keep_pos[i]), int(keep_pos[j]), c) for i, j, c in pairs]
    leaks = check_leaks(df, group_col, near)
    if leaks.empty:
        info(f"leakage check of {file}: clean (no group, exact duplicate, source image"
             + (" or near-duplicate" if cfg.near_dup else "") + " shared between sides)")
        if not fix:
            return df
    print_leaks(leaks)
    if not fix:
        if cfg.allow_leaks:
            warn(f"{len(leaks)} leak(s) in {file} (--allow-leaks)")
            return df
        raise LeakageError(f"{file} is contaminated: {len(leaks)} leak(s) between sides (listed above); "
                           f"rerun with --fix --out FILE to repair it, or pass --allow-leaks")
    fixed, moved = fix_leaks(df, group_col, near)
    check_fix_fractions(df, fixed, cfg.tolerance)
    remaining = check_leaks(fixed, group_col, near)
    info(f"--fix: moved {moved} row(s) so that each linked group sits on one side; {len(remaining)} leak(s) left")
    out = Path(out) if out is not None else file
    check_output_location(out, *mf.roots(fixed))
    notes = [f"--check {file} --fix moved {moved} row(s); {len(leaks)} leak(s) before, {len(remaining)} after"]
    # the targets of the balance table: the file's own overall fractions (its settings are not recorded in it)
    used = sides(fixed) != ""
    cfg.test = float((fixed.loc[used, "split"] == "test").mean())
    if "fold" in fixed.columns:
        cfg.folds = max(2, int(pd.to_numeric(fixed["fold"], errors="coerce").max()) + 1)
    else:
        cfg.folds = None
        cfg.val = float((fixed.loc[used, "split"] == "val").mean())
    summary = summarize(fixed, cfg, notes, remaining)
    _finish(fixed, out, cfg, summary, remaining)
    return fixed
