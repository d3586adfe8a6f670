"""Placing units into train / val / test or folds with scikit-learn's StratifiedGroupKFold: the fraction plan, rare
classes kept in train, a unit holding most of its class kept in train, every class given a training unit, and the
check that every part asked for holds rows."""
from __future__ import annotations

import functools
import itertools
import math
import warnings
from fractions import Fraction

import numpy as np
import pandas as pd

from imgcls import links
from imgcls.errors import UserError
from imgcls.options import python_too, shown
from imgcls.split.config import MAX_DENOMINATOR, SplitConfig


# what a unit is, and the way to fewer links: said by both refusals of a split that cannot place its units
UNITS_COUNTED = ("rows joined by the group column, byte copies or near-duplicate links; units kept whole in train "
                 "not counted")
LINKS_FIX = "check --group-col and the near-duplicate definition: " + python_too(
    "--dup-method, --dup-threshold, or --no-near-dup", "dup_method, dup_threshold, or near_dup=False")


def fraction_plan(test: float, val: float) -> tuple[int, int, int]:
    """(n_splits, test folds, val folds) of one StratifiedGroupKFold giving the requested fractions (to 1/20); the
    fractions checked by SplitConfig.validate (each in [0, 1), their sum below 1: a Python caller's too)."""
    SplitConfig(val=val, test=test).validate()
    ft, fv = Fraction(test).limit_denominator(MAX_DENOMINATOR), Fraction(val).limit_denominator(MAX_DENOMINATOR)
    n = math.lcm(ft.denominator, fv.denominator)
    if n > MAX_DENOMINATOR:
        n = MAX_DENOMINATOR
    a, b = round(test * n), round(val * n)
    if (test > 0 and a == 0) or (val > 0 and b == 0):
        raise UserError(f"--val / --test below 1/{MAX_DENOMINATOR} are not supported (got {val} / {test})")
    return n, a, b


# from this many units a draw shows a bar (progress_bar with no count: its elapsed time): StratifiedGroupKFold's
# per-unit fold search took ~20 s at 30k rows with nothing on screen between `using manifest` and the tables
SGKF_BAR_UNITS = 5000


def _sgkf(units: np.ndarray, strata: np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    """Fold index (0..n_splits-1) per row from scikit-learn's StratifiedGroupKFold."""
    from sklearn.model_selection import StratifiedGroupKFold

    from imgcls.console import plural, progress_bar
    n_units = len(np.unique(units))
    _check_units(n_units, n_splits)
    _check_largest_class(strata, n_splits)
    fold = np.full(len(units), -1)
    what = (f"drawing {n_splits} parts of {plural(n_units, 'unit')} (StratifiedGroupKFold)"
            if n_units >= SGKF_BAR_UNITS else None)
    # no count: the splitter places every unit before it yields its first part
    with warnings.catch_warnings(), progress_bar(what, None):
        warnings.simplefilter("ignore", UserWarning)   # its class-count warning: we report per class ourselves
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for k, (_, te) in enumerate(splitter.split(np.zeros(len(units)), strata, units)):
            fold[te] = k
    return fold


# more choices of the holdout's folds than this: the n_splits rotations of the drawn order are weighed instead
# (--val 0.15 --test 0.15: 20 folds, 775,200 choices of 3 + 3)
HOLDOUT_CHOICES = 5000


def _holdout_folds(fold: np.ndarray, strata: np.ndarray, units: np.ndarray, n: int, a: int, b: int) -> np.ndarray:
    """`fold` renumbered so that test's folds (0..a-1) and val's (a..a+b-1) are those of the draw whose strata come
    closest to the targets: the smallest largest gap among the strata with at least two units per part (those
    the balance weighs), then the smallest sum of squared gaps over all strata, then the drawn order (fold 0 first),
    so the same seed gives the same split. StratifiedGroupKFold balances its folds as a whole, but a unit larger
    than a class's fold share makes its fold heavy in that class: taken as val by position, a 474-image Open Clip
    Art subset put 45 of `shapes`' 98 images in val (46% against 20%). With --folds K (a = 0, b = 1) only the
    numbering changes: fold 0, the `split` column's val, is the fold closest to the targets, and every fold still
    validates once."""
    t = pd.DataFrame({"s": strata, "f": fold, "u": units})
    counts = t.groupby(["s", "f"]).size().unstack(fill_value=0).reindex(columns=range(n), fill_value=0)
    n_units = t.groupby("s")["u"].nunique().loc[counts.index].to_numpy()
    counts = counts.to_numpy(float)
    total = counts.sum(axis=1)
    parts = [v for v in (a, b, n - a - b) if v > 0]
    weighed = n_units >= 2 * len(parts)
    folds = list(range(n))
    if math.comb(n, a) * math.comb(n - a, b) <= HOLDOUT_CHOICES:     # itertools' order: the drawn one first
        choices = [(te, va) for te in itertools.combinations(folds, a)
                   for va in itertools.combinations([k for k in folds if k not in te], b)]
    else:
        choices = [(folds[r:] + folds[:r])[:a + b] for r in range(n)]
        choices = [(c[:a], c[a:]) for c in choices]
    worst, squares = [], []
    for te, va in choices:
        share_te, share_va = (counts[:, list(k)].sum(axis=1) / total for k in (te, va))
        gaps = np.abs(np.stack([share_te - a / n, share_va - b / n, share_te + share_va - (a + b) / n]))
        worst.append(round(float(gaps[:, weighed].max()) if weighed.any() else 0.0, 9))
        squares.append(round(float((gaps ** 2).sum()), 9))
    te, va = choices[int(np.lexsort((np.arange(len(choices)), squares, worst))[0])]
    order = [*te, *va, *(k for k in folds if k not in te and k not in va)]
    return np.argsort(order)[fold]


def _check_largest_class(strata: np.ndarray, n_splits: int) -> None:
    """scikit-learn's ValueError of a draw whose every stratum has fewer rows than its parts, said in our words."""
    counts = pd.Series(strata).value_counts()
    if len(counts) and (counts < n_splits).all():
        raise UserError(f"the split needs {n_splits} parts per class (1/{n_splits} resolution of --val / --test, "
                        f"or --folds {n_splits}) but the largest class has {int(counts.max())} image(s); use a "
                        f"coarser fraction (e.g. --val 0.5) or fewer folds, or add images")


def strata_of(df: pd.DataFrame, cfg: SplitConfig) -> np.ndarray:
    """The stratum of each row: its --stratify columns' values joined ('a|b|...'), '' for all without."""
    from imgcls.manifest import text_values
    if not cfg.stratify:
        return np.zeros(len(df), dtype=object).astype(str)
    # joined by column (a row-wise join took 5.6 s at 100,000 rows)
    return functools.reduce(lambda a, b: a + "|" + b, [text_values(df[c]) for c in cfg.stratify]).to_numpy()


def _check_units(n_units: int, n_splits: int) -> None:
    if n_units < n_splits:
        # with one unit no fraction or fold count splits it: only fewer links can (LINKS_FIX), not the fractions
        raise UserError(f"only {n_units} independent unit(s) of linked rows to split ({UNITS_COUNTED}), fewer than "
                        f"the {n_splits} parts needed; "
                        + ("use fewer --folds or larger --val / --test fractions, or " if n_units >= 2 else "")
                        + LINKS_FIX)


def drawn_rows(df: pd.DataFrame, units: np.ndarray) -> np.ndarray:
    """The rows the draw and the balance weigh: the originals. preprocess --oversample's copies (augmented_from)
    follow their sources (follow_sources) and train never validates on one (a copy of a val image is neither
    validated nor trained on), so weighing them would stratify, and measure the shares of, rows that never count: a
    class of 4 images and 5 copies drew an image with 2 copies into val and was said to miss its 20% by 13.3%. A
    copy whose unit holds no original (its source left out) counts as one."""
    from imgcls.manifest import augmented
    copy = augmented(df)
    units = np.asarray(units)
    # pandas' hashed isin: np.isin compares object arrays (the units' names) one value of the second at a time,
    # n x n (6.5 s a call at 30k rows, six calls a split)
    return ~copy | ~pd.Series(units).isin(units[~copy]).to_numpy()


# the drop_reason of a copy follow_sources leaves out
COPY_ACROSS = "oversampled copy (augmented_from) of images on two sides"


def follow_sources(drawn: np.ndarray, side: np.ndarray, apart: np.ndarray, i: np.ndarray, j: np.ndarray,
                   kind: np.ndarray | None = None, in_folds: np.ndarray | None = None) -> np.ndarray:
    """The row whose place each row takes (positions): a drawn row (an original) its own; a copy, an original its
    cluster (units_apart's label among the copies) reaches through the links (i, j), when all those it reaches share
    one `side` (any value naming the drawn rows' place: split and fold), as train's --val-split places a copy (it
    trains only when its sources do); -1 where they are on two sides: a mixup copy of a train and a val image would
    show the one to the other, so it is left out (COPY_ACROSS).

    With folds (`in_folds`: per row, the drawn rows in a fold or in train in every fold, not test), a cluster whose
    originals are all such rows but on two sides (a mixup copy of images of folds 1 and 3) is kept: a row has one
    fold, but train trains on a copy in each fold where none of its sources validates (train.data.assign_split), so
    it leaks in none. Its copies joined only by a near-duplicate pair of two copies (`kind` per link, units'
    NEAR_LINK: mixups of A and B and of B and A; neither copy ever validates, so leaks.check_leaks reads no leak in
    it) are placed apart, each part on the side of the originals its links other than augmented_from reach (a copy's
    source_path, group, ... are its first source's: the leak check reads them), or of the first original it reaches
    where it has none; -1 where those reach two sides (the leak check would list it). A source in test leaves it
    out as before: a copy that trains would show a test image."""
    from imgcls.split.units import COPY_LINK, NEAR_LINK
    followed = np.where(drawn, np.arange(len(drawn)), -1)
    cross = drawn[i] != drawn[j]
    orig, copy = np.where(drawn[i], i, j)[cross], np.where(drawn[i], j, i)[cross]
    kind = np.full(len(i), -1) if kind is None else np.asarray(kind)

    def reached(cluster: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"cluster": cluster[copy], "side": side[orig], "orig": orig,
                             "firm": kind[cross] != COPY_LINK})

    reach = reached(apart).groupby("cluster")
    n_sides = reach["side"].nunique()
    place = reach["orig"].min()[n_sides == 1]
    cluster = apart
    if in_folds is not None:
        by = reached(apart).assign(fold=np.asarray(in_folds, bool)[orig]).groupby("cluster")["fold"].all()
        spread = ~drawn & np.isin(apart, by.index[by & (n_sides > 1)])
        within = ~cross & ~((kind == NEAR_LINK) & ~drawn[i] & ~drawn[j])     # cut: a near pair of two copies
        part = links.components(len(drawn), i[within], j[within])
        cluster = np.where(spread, np.char.add("\0part ", part.astype(str)).astype(object), apart)
        t = reached(cluster)[spread[copy]]
        firm = t[t["firm"]].groupby("cluster")
        firm_sides = firm["side"].nunique().reindex(t["cluster"].unique(), fill_value=0)
        first = t.groupby("cluster")["orig"].min()[firm_sides.index[firm_sides == 0]]
        place = pd.concat([place, first, firm["orig"].min()[firm_sides.index[firm_sides == 1]]])
    copies = np.flatnonzero(~drawn)
    followed[copies] = pd.Series(cluster[copies]).map(place).fillna(-1).to_numpy(int)
    return followed


def check_enough_units(units: np.ndarray, labels: np.ndarray, strata: np.ndarray, cfg: SplitConfig) -> None:
    """_sgkf's refusals of too few units and of a largest class (stratum) smaller than the parts, before the
    near-duplicate search (an embedding pass) rather than after it (36 images, --folds 50), and by run_split before
    the image scan too (on the group column's units): links only join units, joined units are more often kept in
    train, and the units kept in train only leave the draw, so too few free units or rows here are too few after
    the scan and the search. A draw with no free unit is check_placed's."""
    holdout_val = 0.0 if cfg.folds else cfg.val
    n_splits = max(fraction_plan(cfg.test, holdout_val)[0] if cfg.test > 0 or holdout_val > 0 else 0, cfg.folds or 0)
    pinned, _, _ = kept_in_train(units, labels)
    n_free = len(set(units) - pinned)
    if n_free:
        _check_units(n_free, n_splits)
        _check_largest_class(strata[~pd.Series(units).isin(pinned).to_numpy()], n_splits)


def _rare_units(units: np.ndarray, labels: np.ndarray, min_units: int) -> tuple[set, dict]:
    """Units holding a class that has fewer than `min_units` units; {class: n_units} for those classes."""
    per_class = pd.DataFrame({"u": units, "y": labels}).groupby("y")["u"].nunique()
    rare = {str(k): int(v) for k, v in per_class.items() if v < min_units}
    pinned = set(units[np.isin(labels, list(rare))]) if rare else set()
    return pinned, rare


# a unit holding more than this share of its class's rows stays in train (in every fold): in val, or in one fold, it
# would leave that class's training side with less than half of its images (openclipart_dirty: 1,359 of `shapes`'
# 1,668 drawings are one near-duplicate chain, a generated family of star polygons; docs/BENCHMARKS.md)
DOMINANT_SHARE = 0.5


def _dominant_units(units: np.ndarray, labels: np.ndarray) -> tuple[set, dict]:
    """Units holding more than DOMINANT_SHARE of a labelled class that has other units too; {class: (rows of the
    class in the unit, rows of the class)}."""
    t = pd.DataFrame({"u": units, "y": labels})
    t = t[t["y"] != ""]
    if t.empty:
        return set(), {}
    per = t.groupby(["y", "u"]).size()
    ys = per.index.get_level_values(0)
    total = t.groupby("y").size()
    n_units = per.groupby(level=0).size()
    big = per[(per.to_numpy() > DOMINANT_SHARE * total.loc[ys].to_numpy()) & (n_units.loc[ys].to_numpy() >= 2)]
    return (set(big.index.get_level_values(1)),
            {str(y): (int(n), int(total.loc[y])) for (y, _), n in big.items()})


def kept_in_train(units: np.ndarray, labels: np.ndarray) -> tuple[set, dict, dict]:
    """The units placed in train before any draw (every fold's train with folds): those of a class with a single unit
    and those holding most of their class (_dominant_units). (units, {class: n_units} of the single-unit classes,
    {class: (rows in the unit, rows)} of the dominated ones); the split's balance leaves them out of the shares."""
    pinned, rare = _rare_units(units, labels, 2)
    dominant_units, dominant = _dominant_units(units, labels)     # (a rare class has one unit: never here)
    return pinned | dominant_units, rare, dominant


def _class_rank(names) -> dict[str, int]:
    """Each class's place in the class order (manifest.class_names: numeric labels as numbers, the profile ids
    '2' < '10'), for the warnings' class lists: string order listed 0, 10, 12, 3 and cut '... and 2 more' there."""
    from imgcls.manifest import class_names
    return {c: i for i, c in enumerate(class_names(names))}


def _fmt_dominant(d: dict, limit: int = 10) -> str:
    rank = _class_rank(d)
    items = sorted(d.items(), key=lambda kv: (-kv[1][0], rank.get(kv[0], -1), kv[0]))
    return shown([f"{k} ({n} of {t} images)" for k, (n, t) in items], limit)


DOMINANT_NOTE = ("class(es) are mostly one linked unit (more than half of the class's images joined by a group, "
                 "byte copies or near-duplicate links), kept whole in train")


def assign(df: pd.DataFrame, units: np.ndarray, cfg: SplitConfig) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """(split, fold or None, warnings) for the rows drawn (the included originals of df, in canonical order; the
    copies follow them: follow_sources)."""
    cfg.validate()      # a Python caller's config as make_split's (--val -0.2 held out nothing, 1.5 an IndexError)
    n = len(df)
    strata = strata_of(df, cfg)
    labels = df["label"].astype(str).to_numpy() if "label" in df.columns else np.full(n, "")
    notes: list[str] = []
    split = np.full(n, "train", dtype=object)
    fold = np.full(n, -1) if cfg.folds else None

    holdout_val = 0.0 if cfg.folds else cfg.val
    reported: set[str] = set()
    if cfg.test > 0 or holdout_val > 0:
        n_splits, a, b = fraction_plan(cfg.test, holdout_val)
        pinned, rare, dominant = kept_in_train(units, labels)
        free = ~np.isin(units, list(pinned))
        if dominant:
            notes.append(f"{len(dominant)} {DOMINANT_NOTE} "
                         + ("in every fold (fold -1: never validated or tested)" if cfg.folds else
                            "so that training keeps it") + ": " + _fmt_dominant(dominant))
            reported.update(dominant)
        if rare:
            held = "/".join(p for p, v in (("val", holdout_val), ("test", cfg.test)) if v > 0)
            notes.append(f"{len(rare)} class(es) with a single group kept whole in train "
                         + ("in every fold (fold -1: never validated or tested)" if cfg.folds else
                            f"(no {held} examples)") + ": " + _fmt_classes(rare))
            reported.update(rare)
        f = np.full(n, -1)
        if free.any():
            f[free] = _holdout_folds(_sgkf(units[free], strata[free], n_splits, cfg.seed), strata[free],
                                     units[free], n_splits, a, b)
        split[(f >= 0) & (f < a)] = "test"
        split[(f >= a) & (f < a + b)] = "val"
        before = split.copy()
        split = _apply_train_moves(units, labels, split)
        from imgcls.manifest import class_names
        moved = class_names(set(labels) - set(labels[before == "train"]))      # in class order
        if moved:
            notes.append(f"{len(moved)} class(es) had every group in val/test; one group each moved to train: "
                         + shown(moved, 10))
        # a class with fewer groups than the draw's parts can land none in val or test (4 groups, --val 0.2: 5
        # parts): said by name, as the single-group classes are, not only as a stratification gap
        per_class = pd.DataFrame({"u": units, "y": labels}).groupby("y")["u"].nunique()
        for part, frac in (("val", holdout_val), ("test", cfg.test)):
            absent = {str(y): int(per_class[y]) for y in sorted(set(labels) - {""} - set(rare))
                      if frac > 0 and not (split[labels == y] == part).any()}
            if absent:
                notes.append(f"{len(absent)} class(es) drew no {part} rows (the 1/{n_splits} draw placed every group "
                             f"of theirs elsewhere; a {part} macro-F1 counts each with F1 0): " + _fmt_classes(absent))
    if cfg.folds:
        if cfg.folds < 2:
            raise UserError(f"--folds needs at least 2 folds, got {cfg.folds}")
        pool = split != "test"
        pinned, rare, dominant = kept_in_train(units[pool], labels[pool])
        dominant_new = {k: v for k, v in dominant.items() if k not in reported}
        if dominant_new:
            notes.append(f"{len(dominant_new)} {DOMINANT_NOTE} in every fold (fold -1, never validated) so that "
                         f"every fold trains on it: " + _fmt_dominant(dominant_new))
        rare_new = {k: v for k, v in rare.items() if k not in reported}
        if rare_new:
            notes.append(f"{len(rare_new)} class(es) with a single group are train in every fold (fold -1, never "
                         f"validated): " + _fmt_classes(rare_new))
        _, few = _rare_units(units[pool], labels[pool], cfg.folds)
        few = {k: v for k, v in few.items() if k not in rare}
        if few:
            notes.append(f"{len(few)} class(es) have fewer groups than --folds {cfg.folds} and are validated in only "
                         f"that many folds: " + _fmt_classes(few))
        free = pool & ~np.isin(units, list(pinned))
        if free.any():      # fold 0 is `split`'s val (train without --folds validates on it): the closest fold
            fold[free] = _holdout_folds(_sgkf(units[free], strata[free], cfg.folds, cfg.seed), strata[free],
                                        units[free], cfg.folds, 0, 1)
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
                         f"fold: " + shown(lonely, 10))
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
                        f"rows are all in one unit stays in train); nothing written. {LINKS_FIX[0].upper()}"
                        f"{LINKS_FIX[1:]}")


def _apply_train_moves(units: np.ndarray, labels: np.ndarray, split: np.ndarray) -> np.ndarray:
    """Give every class at least one training unit: the smallest of its val/test units moves to train. A unit can
    hold several classes (a person of a profile dataset: mask 0, 1, 2), so an earlier move may already have given
    a class its training rows."""
    split = split.copy()
    for y in sorted(set(labels) - set(labels[split == "train"])):
        if (split[labels == y] == "train").any():
            continue
        sel = (labels == y) & (split != "train")
        cand = pd.Series(1, index=units[sel]).groupby(level=0).sum()
        unit = sorted(cand.items(), key=lambda kv: (kv[1], kv[0]))[0][0]
        split[units == unit] = "train"
    return split


def _fmt_classes(d: dict, limit: int = 10) -> str:
    rank = _class_rank(d)
    items = sorted(d.items(), key=lambda kv: (kv[1], rank.get(kv[0], -1), kv[0]))
    return shown([f"{k} ({v} group{'s' if v != 1 else ''})" for k, v in items], limit)
