"""The validation score table `imgcls ensemble` prints (members and the ensemble, own and common rows)."""
from __future__ import annotations

import pandas as pd

from imgcls.console import print_table


# said under the table (screen and report.html) where a member has weight 0 under a weighted or hard vote
NOT_RUN_NOTE = "a member of weight 0 is not run (predict leaves it out; the ensemble's ckpts count what it runs)"


def print_scores(table: pd.DataFrame, common_rows: int) -> None:
    """`common_rows`: how many validation rows every member predicted (the common column's scores are over them,
    named as `imgcls runs` names them: common OOF where every member is a k-fold set; own val names each member's
    own count per row). A --combine profile table's `shares` column (each member's shares within its attributes,
    ensemble.profile.share_text) is what its weight cells show: per attribute where a member's shares differ, which
    the numeric weight (NaN there) cannot say."""
    from rich.table import Table
    from imgcls.runs import common_rows as rows_shared
    t = Table(title="validation macro-F1", title_justify="left", caption_justify="left")    # as imgcls runs' tables
    notes = []
    members = table[~table["member"].str.startswith("ensemble (")]
    if (members["checkpoints"] > 1).any():
        notes.append("a k-fold member's rows (ckpts > 1) are out-of-fold: each scored by the fold that did not "
                     "train on it")
    if table["member"].str.contains("weights fitted on these rows").any():
        notes.append("weights fitted on these rows: optimistic (the same rows chose the weights); "
                     "the cross-fitted row scores each row with weights fitted without it")
    profile = table["member"].str.startswith("ensemble (profile").any()
    if (members["weight"] == 0).any() and not profile:       # EnsembleSpec.running leaves such a member out
        notes.append(NOT_RUN_NOTE)
    if profile:
        notes.append("weight: a member's share within the attribute(s) it predicts (the profile multiplies the "
                     "attributes' probabilities)")
    t.caption = "; ".join(notes) or None
    t.add_column("member")
    t.add_column("ckpts", justify="right")
    t.add_column("weight", justify="right")
    t.add_column("own val (n)", justify="right")
    t.add_column(f"{rows_shared(members['checkpoints'].tolist())} ({common_rows})", justify="right")
    shares = table["shares"] if "shares" in table else pd.Series("", index=table.index)
    for (_, r), share in zip(table.iterrows(), shares):
        weight = share if isinstance(share, str) and share else "" if pd.isna(r["weight"]) else f"{r['weight']:.3f}"
        own = "" if pd.isna(r["val_macro_f1"]) else f"{r['val_macro_f1']:.4f}"
        common = "" if pd.isna(r["common_macro_f1"]) else f"{r['common_macro_f1']:.4f}"
        t.add_row(str(r["member"]), str(r["checkpoints"]), weight,
                  f"{own} ({r['val_images']})", common)
    print_table(t)
