"""Which rows a split uses and with which label: profile labels (re)derived with --age-bands / --relabel-age, and
why a row is left out (clean's keep = false, unreadable, no label, --drop-ages)."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from imgcls import manifest as mf
from imgcls import profiles
from imgcls.errors import UserError
from imgcls.split.config import SplitConfig


def is_profile_table(df: pd.DataFrame) -> bool:
    return all(c in df.columns for c in ("mask", "gender", "age"))


def class_column(df: pd.DataFrame, stratify: Sequence[str]) -> str:
    """The column whose values are the classes the split keeps whole per class (a class's single group in train,
    every class in train) and reports shares of: `label`, or where no row has one, the one column of `stratify`
    (--stratify, or what a checked table's split recorded) that has values (DACON's `artist`, which
    `train --target artist` trains on); `label` where none or several have."""
    def filled(c: str) -> bool:
        return c in df.columns and bool((mf.text_values(df[c]) != "").any())
    if filled("label"):
        return "label"
    other = list(dict.fromkeys(c for c in stratify if c != "label" and filled(c)))
    return other[0] if len(other) == 1 else "label"


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


def drop_ages_text(ages: Sequence[int]) -> str:
    """--drop-ages as the user wrote it: a run of ages as `57-59`, others listed (`20,57`)."""
    lo, hi = min(ages), max(ages)
    return f"{lo}-{hi}" if len(ages) == hi - lo + 1 else ",".join(map(str, ages))


def dropped_by_age(df: pd.DataFrame, cfg: SplitConfig) -> int:
    """How many rows are of an age --drop-ages names (0 without --drop-ages)."""
    if not cfg.drop_ages or "age" not in df.columns:
        return 0
    return int(pd.to_numeric(df["age"], errors="coerce").isin(list(cfg.drop_ages)).sum())


def exclusion_reasons(df: pd.DataFrame, cfg: SplitConfig) -> pd.Series:
    """Why each row is left out of every split ('' = kept): clean's keep=false, unreadable, no label, dropped age."""
    reasons = pd.Series([""] * len(df), index=df.index, dtype=object)

    def mark(mask, text):
        mask = pd.Series(mask, index=df.index) & (reasons == "")
        reasons[mask] = text if isinstance(text, str) else text[mask]

    if "keep" in df.columns:
        why = df["reason"].astype(str).replace("nan", "") if "reason" in df.columns else pd.Series("", index=df.index)
        mark(~mf.kept(df), ("clean: " + why.where(why != "", "keep=false")))
    err = mf.error_texts(df)
    mark(err != "", "unreadable: " + err)
    if cfg.drop_ages:
        if "age" not in df.columns:
            raise UserError("--drop-ages needs an `age` column (a profile dataset); this source has none")
        ages = pd.to_numeric(df["age"], errors="coerce")
        mark(ages.isin(list(cfg.drop_ages)), "age " + ages.astype("Int64").astype(str) + " in --drop-ages "
             + drop_ages_text(cfg.drop_ages))
    for col in cfg.stratify:
        mark(mf.text_values(df[col]) == "", f"no {col}")
    return reasons
