"""The leakage check and its repair: the side of each row, what two sides share (group, content, source image,
clean's duplicate group, near-duplicate pair), and moving each linked unit wholly to one side."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from imgcls import links
from imgcls.errors import UserError
from imgcls.layout_options import NO_GROUPS
from imgcls.split.config import (LINK_COLUMNS, NEW_SPLIT, SPLITS, fold_numbers, has_folds, recorded_config,
                                 split_values)
from imgcls.split.units import COPY_LINK, NEAR_LINK, joined_units, linked_units, typed_link_pairs


def sides(df: pd.DataFrame) -> pd.Series:
    """Which side of the split each row is on: 'train' / 'val' / 'test', or with folds (has_folds) 'test' /
    'fold k' / 'train (every fold)'; '' for rows left out. Rows on different sides must share nothing. A table with
    a `fold` column and no `split` (a hand-made k-fold table) is all training data, as train reads it
    (train.data.assign_split): each row with a fold is on that fold's side, a row without one on none. The split
    column as train reads it (split_values: a hand-made 'VAL' row is val)."""
    if "split" in df.columns:
        split = split_values(df)
    else:
        f = fold_numbers(df)
        split = pd.Series(np.where(np.isnan(f), "", "train") if f is not None else "", index=df.index, dtype=object)
    if has_folds(df):
        fold = pd.Series(np.nan_to_num(fold_numbers(df), nan=-1).astype(int), index=df.index)
        side = np.where(fold >= 0, "fold " + fold.astype(str), "train (every fold)")
        side = np.where(split == "test", "test", side)
        side = np.where(split.isin(SPLITS), side, "")
        return pd.Series(side, index=df.index)
    return split.where(split.isin(SPLITS), "")


def nfc_keys(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """df with its key columns among `cols` (the group column a split keeps together, split's --stratify columns) in
    Unicode's composed form (manifest.nfc_classes, as manifest.load spells the label): a person or stratum spelled
    NFD in some rows (a macOS zip's) is the NFC one it looks like, not a second unit that may land on the other side
    unseen by the leak check, nor a second stratum. The one reading of the keys: split, split --check and train's
    leak warning."""
    from imgcls.manifest import nfc_classes
    cols = [c for c in dict.fromkeys(cols) if c in df.columns]
    return df.assign(**{c: nfc_classes(df[c]) for c in cols})


def kept_group_col(file, table: pd.DataFrame, recorded: dict | None = None) -> str:
    """The column whose values the split of `file` (a split table, read as `table`) kept on one side ('': none), as
    `split --check FILE` and train's leak warning read it: the one recorded in the summary beside it (`recorded`:
    split.config.recorded_config(file), read here where not given), else `group`. `group` was read whatever the split
    kept together: a person of a `split m.csv --group-col person` table on two sides passed as clean, and a
    super-class in its `group` was a leak. A recorded column the table lacks is in its `group`, where the reader of a
    competition CSV put it (a split's --group-col none left that empty). A recorded none (a --fix given --group-col
    none) is none."""
    if recorded is None:
        recorded = recorded_config(file) if Path(file).is_file() else {}
    made = recorded.get("group_col")
    if made == NO_GROUPS:
        return ""
    return made if isinstance(made, str) and made in table.columns else "group"


def said_kind(kind: str, group_col: str) -> str:
    """A leak's kind (check_leaks') as the screen says it: a shared group by the column read (`group_col`: `person`
    for a split kept together by --group-col person), the others as named (sha256, source_path, dup_group,
    near_duplicate, augmented_from). The kind check_leaks returns stays `group`, as splits_leaks.csv and the
    summary's leak counts record it, whatever the column."""
    return group_col if kind == "group" and group_col else kind


def in_folds(side: np.ndarray, folds: bool) -> np.ndarray:
    """The rows on a k-fold's training sides (`side`: sides(df), or the split column split assigns, '' for a row
    left out; a fold, or train in every fold; not test), none without folds (`folds`: the split has them). An
    oversampled copy never validates and trains in each fold where none of its sources validates
    (train.data.assign_split), so among these rows it may sit apart from a source it names only by augmented_from
    and from another copy it is a near duplicate of (split's placement, assign.follow_sources): no leak."""
    return np.full(len(side), folds) & (side != "") & (side != "test")


def check_leaks(df: pd.DataFrame, group_col: str = "group",
                near_pairs: Sequence[tuple[int, int, float]] = ()) -> pd.DataFrame:
    """Pairs of rows on different sides that share a group, content (sha256), source image, clean duplicate group,
    are near-duplicates (but for two oversampled copies in two folds: in_folds) or are an oversampled copy and a
    source its augmented_from names (_copy_leaks). `near_pairs` index positions of df. One row per (kind, key, side
    pair)."""
    from imgcls.manifest import augmented, text_values
    side = sides(df).to_numpy()
    copy_in_folds = augmented(df) & in_folds(side, has_folds(df))
    paths = df["path"].astype(str).to_numpy()
    used = side != ""
    out = []
    for col in (group_col,) + LINK_COLUMNS:
        if col not in df.columns:
            continue
        vals = text_values(df[col]).to_numpy()
        sel = used & (vals != "")
        sub = pd.DataFrame({"key": vals[sel], "side": side[sel], "path": paths[sel]})
        n_sides = sub.groupby("key")["side"].nunique()
        leaking = sub[sub["key"].isin(n_sides.index[n_sides > 1])]
        # each leaking key's first path per side, keys and sides in sorted order (arrays, not a frame per key)
        first = leaking.sort_values(["key", "side", "path"]).drop_duplicates(["key", "side"])
        keys, ss, ps = (first[c].to_numpy() for c in ("key", "side", "path"))
        bounds = links.run_bounds(keys)
        for a, b in zip(bounds[:-1], bounds[1:]):
            for i in range(a, b):
                for j in range(i + 1, b):
                    out.append({"kind": "group" if col == group_col else col, "key": keys[a], "side_a": ss[i],
                                "path_a": ps[i], "side_b": ss[j], "path_b": ps[j], "cos": np.nan})
    for i, j, c in near_pairs:
        if used[i] and used[j] and side[i] != side[j] and not (copy_in_folds[i] and copy_in_folds[j]):
            (a, b) = (i, j) if (side[i], paths[i]) <= (side[j], paths[j]) else (j, i)
            out.append({"kind": "near_duplicate", "key": "", "side_a": side[a], "path_a": paths[a],
                        "side_b": side[b], "path_b": paths[b], "cos": round(float(c), 4)})
    out += _copy_leaks(df, side)
    cols = ["kind", "key", "side_a", "path_a", "side_b", "path_b", "cos"]
    return pd.DataFrame(out, columns=cols)


def _copy_leaks(df: pd.DataFrame, side: np.ndarray) -> list[dict]:
    """check_leaks' rows of an oversampled copy and a source its augmented_from names on two sides (a mixup's
    second source, which source_path does not name, or any source where the table has no source_path), but for two
    folds (in_folds: a copy never validates and trains only where none of its sources validates). One row per
    (source, side pair), its first copy by path."""
    if "augmented_from" not in df.columns:
        return []
    from imgcls.manifest import COPY_SEP
    paths = df["path"].astype(str).to_numpy()
    src, cop = links.reference_pairs(paths, df["augmented_from"].to_numpy(), COPY_SEP)
    folds = in_folds(side, has_folds(df))
    keep = (side[src] != "") & (side[cop] != "") & (side[src] != side[cop]) & ~(folds[src] & folds[cop])
    out, seen = [], set()
    for s, c in sorted(zip(src[keep], cop[keep]), key=lambda p: (paths[p[0]], paths[p[1]])):
        if (s, side[c]) in seen:
            continue
        seen.add((s, side[c]))
        a, b = (s, c) if (side[s], paths[s]) <= (side[c], paths[c]) else (c, s)
        out.append({"kind": "augmented_from", "key": paths[s], "side_a": side[a], "path_a": paths[a],
                    "side_b": side[b], "path_b": paths[b], "cos": np.nan})
    return out


def side_rank(side: str) -> tuple:
    if side.startswith("train"):
        return (0, side)
    if side == "val":
        return (1, side)
    if side.startswith("fold "):
        return (2, int(side.split()[1]))
    return (3, side)


def _placed(df: pd.DataFrame, near_pairs: Sequence[tuple[int, int, float]]
            ) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """(the rows with a side, `near_pairs` (positions into df) as positions among them)."""
    used = (sides(df) != "").to_numpy()
    pos = {p: k for k, p in enumerate(np.flatnonzero(used))}
    return used, [(pos[i], pos[j], c) for i, j, c in near_pairs if used[i] and used[j]]


def side_units(df: pd.DataFrame, group_col: str = "group",
               near_pairs: Sequence[tuple[int, int, float]] = ()) -> pd.Series:
    """The unit of each row an existing split places (linked_units over the rows with a side; `near_pairs` index
    df), '' for the rows in no split: what fix_leaks moves whole. Rows in two folds are not joined by an oversampled
    copy's augmented_from, nor by a near-duplicate pair of two copies (in_folds: split's placement of a mixup copy of
    images of two folds, no leak to repair)."""
    from imgcls.manifest import augmented
    used, pairs = _placed(df, near_pairs)
    placed = df[used]
    i, j, kind = typed_link_pairs(placed, group_col, pairs)
    side = sides(placed).to_numpy()
    folds, copy = in_folds(side, has_folds(placed)), augmented(placed)
    apart = folds[i] & folds[j] & (side[i] != side[j]) & (
        (kind == COPY_LINK) | ((kind == NEAR_LINK) & copy[i] & copy[j]))
    out = pd.Series("", index=df.index, dtype=object)
    out[used] = joined_units(placed, i[~apart], j[~apart])
    return out


def balance_units(df: pd.DataFrame, group_col: str = "group",
                  near_pairs: Sequence[tuple[int, int, float]] = ()) -> pd.Series:
    """The unit of each row an existing split places as a new split's balance weighs it (make_split): the
    originals' units drawn apart from preprocess --oversample's copies (units_apart: a mixup copy names two images,
    and through the copies a class's images became one unit, kept in train and out of the shares), a copy in the
    unit of an original it is linked to (follow_sources, on any side: the balance weighs no copy); '' for the rows
    in no split."""
    from imgcls.split.assign import drawn_rows, follow_sources
    from imgcls.split.units import link_pairs, units_apart
    used, pairs = _placed(df, near_pairs)
    placed = df[used]
    drawn = drawn_rows(placed, linked_units(placed, group_col, pairs))
    i, j = link_pairs(placed, group_col, pairs)
    apart = units_apart(placed, drawn, i, j)
    followed = follow_sources(drawn, np.zeros(len(placed), dtype=object), apart, i, j)
    out = pd.Series("", index=df.index, dtype=object)
    out[used] = apart[followed]
    return out


def fix_leaks(df: pd.DataFrame, group_col: str = "group",
              near_pairs: Sequence[tuple[int, int, float]] = ()) -> tuple[pd.DataFrame, int]:
    """Move every linked unit that spans sides wholly to the side holding most of its rows (ties: train, then val,
    then the lowest fold, then test). Returns (df, rows moved)."""
    df = df.copy()
    side = sides(df)
    used = (side != "").to_numpy()
    units = side_units(df, group_col, near_pairs)[used].to_numpy()
    s = side[used].to_numpy()
    tab = pd.DataFrame({"u": units, "s": s})
    counts = tab.groupby(["u", "s"]).size().rename("n").reset_index()
    counts = counts[counts.groupby("u")["s"].transform("size") > 1]       # the units that span sides
    order = {x: r for r, x in enumerate(sorted(counts["s"].unique(), key=side_rank))}
    counts = counts.assign(r=counts["s"].map(order), neg=-counts["n"]).sort_values(["u", "neg", "r"])
    target = counts.drop_duplicates("u").set_index("u")["s"]     # most rows, ties by side_rank
    row_target = pd.Series(units).map(target).to_numpy()
    move = pd.notna(row_target) & (row_target != s)
    moved = int(move.sum())
    pos = np.flatnonzero(used)[move]
    col = {c: df.columns.get_loc(c) for c in ("split", "fold") if c in df.columns}
    has_fold = has_folds(df)
    for t in np.unique(row_target[move].astype(str)):
        idx = pos[row_target[move] == t]
        if t == "test":
            df.iloc[idx, col["split"]] = "test"
            if has_fold:
                df.iloc[idx, col["fold"]] = -1
        elif has_fold:
            k = int(t.split()[1]) if t.startswith("fold ") else -1
            df.iloc[idx, col["fold"]] = k
            df.iloc[idx, col["split"]] = "val" if k == 0 else "train"
        else:
            df.iloc[idx, col["split"]] = t
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
                        f"{NEW_SPLIT} (linked images are kept together)")
