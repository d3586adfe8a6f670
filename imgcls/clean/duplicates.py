"""The duplicate stage: exact (sha256) and near copies (imgcls.links' definition) grouped and linked (--duplicates
link: every member kept, the group named) or reduced to one member (drop), label conflicts resolved (--conflicts),
the label-conflict table, and the threshold sweep of seed 000."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from imgcls import links
from imgcls.clean.config import CleanConfig
from imgcls.options import check

SWEEP = (0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 1.00)
SWEEP_TOL = 1e-6     # a sweep row at t counts scores >= t - SWEEP_TOL (float32 scores of identical images: 1 - 6e-8)
# --conflicts majority-knn: the images nearest a tied group that vote on its labels (bench/e2e_vs_timm.py's pool: a
# label stays in 68 of 76 ties; data/sample's planted wrong-class copy has neither label among its 10)
TIE_NEIGHBOURS = 10


def group_levels(cut: float) -> list[float]:
    """The thresholds at which clean groups scored pairs: the cut (mark_duplicates) and each sweep row
    (threshold_sweep), compared as they compare them (links.NearDuplicates.scored_pairs' `levels`)."""
    return [cut] + [t - SWEEP_TOL for t in SWEEP]


def exact_pairs(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(first row, later row) for every readable row whose content hash an earlier readable row has."""
    return links.exact_pairs(df["sha256"], valid=(df["error"] == "").to_numpy())


class Marked(NamedTuple):
    """mark_duplicates' result: the frame, marked, and the votes of --conflicts majority-knn's ties ({dup_group:
    {tied label: neighbours carrying it}}; empty under other policies or without ties). Returned beside the frame,
    not in its `attrs`: pandas deep-copies `attrs` into every frame derived from it (once per group in a report)."""
    frame: pd.DataFrame
    tie_votes: dict[str, dict[str, int]]


def mark_duplicates(df: pd.DataFrame, emb: np.ndarray | None, cfg: CleanConfig,
                    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                    embeddings: Callable[[], np.ndarray] | None = None) -> Marked:
    """Group exact (sha256) and near (score >= threshold) copies and name each group in `dup_group`. --duplicates
    link: every member of a label that stays is kept (`duplicate_of` names its label's first member); drop: that
    first member alone. Members of a label --conflicts decides against are removed (reason label_conflict). `pairs`
    are precomputed scored pairs (links.NearDuplicates.scored_pairs), e.g. to try several thresholds. Returns the
    frame and the votes of --conflicts majority-knn's ties (Marked); their embeddings are `emb`, else `embeddings()`
    (e.g. run_clean's cache), else the definition's, computed only when a group ties. Array work throughout (no
    per-group frame access): 100,000 images in 20,000 groups take seconds."""
    check(cfg, ["dup_method", "duplicates", "conflicts"])
    definition = cfg.near_duplicates()
    n = len(df)
    ok = (df["error"] == "").to_numpy()
    sha = df["sha256"].to_numpy()
    ei, ej = exact_pairs(df)
    if cfg.near_dup and (emb is not None or pairs is not None):
        pi, pj, ps = pairs if pairs is not None else definition.scored_pairs(df, emb)
        keep = (ps >= definition.cut) & ok[pi] & ok[pj]
        ei, ej = np.r_[ei, pi[keep]], np.r_[ej, pj[keep]]
    gid = links.components(n, ei, ej)
    labels = df["label"].astype(str).to_numpy()
    paths = df["path"].astype(str).to_numpy()
    votes: dict[str, dict[str, int]] = {}
    rows, gi = _groups_in_keep_order(df, gid, ok)        # members of groups of >= 2 readable images
    if not len(rows):
        return Marked(df, votes)
    bounds = links.run_bounds(gi)
    firsts = bounds[:-1]
    names = np.array([f"d{r:06d}" for r in rows[firsts]], dtype=object)
    lab_code = pd.factorize(labels)[0]
    twin = pd.Series(rows).groupby([gi, lab_code[rows]], sort=False).transform("first").to_numpy()
    multi = pd.Series(lab_code[rows]).groupby(gi).transform("nunique").to_numpy() > 1
    loser_ref = np.full(len(rows), -2, np.int64)          # -2: not a loser; -1: a loser of a group keeping none
    multi_groups = np.flatnonzero(multi[firsts])
    orders = {g: rows[bounds[g]:bounds[g + 1]].tolist() for g in multi_groups}
    asked: list[int] = []        # the groups whose labels tie under majority-knn: their votes are computed together

    def ask(tied: list[str], g: int) -> dict[str, int]:
        asked.append(g)
        return dict.fromkeys(tied, 1)

    for g in multi_groups:
        conflict_keepers(orders[g], labels, cfg.conflicts, lambda tied, g=g: ask(tied, g))
    near = {}
    if asked:
        vectors = emb if emb is not None else embeddings() if embeddings is not None else definition.embeddings(df)
        near = dict(zip(asked, neighbour_votes(vectors, [orders[g] for g in asked], labels, ok)))
    for g in multi_groups:
        def neighbours(tied: list[str], g=g) -> dict[str, int]:
            votes[names[g]] = {lab: near[g].get(lab, 0) for lab in sorted(tied)}
            return votes[names[g]]

        keepers, _ = conflict_keepers(orders[g], labels, cfg.conflicts, neighbours)
        kept = set(keepers.values())
        ref = next((r for r in orders[g] if r in kept), -1)
        for k in range(bounds[g], bounds[g + 1]):
            if keepers.get(labels[rows[k]]) is None:      # its label lost the group (minority or tie)
                loser_ref[k] = ref
    loser = loser_ref > -2
    dup = ~loser & (twin != rows)
    col = {c: df.columns.get_loc(c) for c in ("keep", "reason", "duplicate_of", "dup_group", "label_conflict")}
    df.iloc[rows, col["dup_group"]] = names[gi]
    df.iloc[rows, col["label_conflict"]] = multi
    df.iloc[rows[loser], col["keep"]] = False
    df.iloc[rows[loser], col["reason"]] = "label_conflict"
    refs = loser_ref[loser]
    df.iloc[rows[loser], col["duplicate_of"]] = np.where(refs >= 0, paths[np.maximum(refs, 0)], "").astype(object)
    df.iloc[rows[dup], col["duplicate_of"]] = paths[twin[dup]].astype(object)
    if cfg.duplicates != "link":
        df.iloc[rows[dup], col["keep"]] = False
        df.iloc[rows[dup], col["reason"]] = np.where(sha[rows[dup]] == sha[twin[dup]], "exact_duplicate",
                                                     "near_duplicate").astype(object)
    return Marked(df, votes)


def _groups_in_keep_order(df: pd.DataFrame, gid: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The readable rows of components with >= 2 readable rows, sorted by component and within it in keep order
    (largest resolution, then path order), and each row's component ordinal (0, 1, ... in that order)."""
    okidx = np.flatnonzero(ok)
    _, inv, cnt = np.unique(gid[okidx], return_inverse=True, return_counts=True)
    member = okidx[cnt[inv] >= 2]
    if not len(member):
        return member, member
    area = (pd.to_numeric(df["width"], errors="coerce").fillna(0) * pd.to_numeric(df["height"], errors="coerce")
            .fillna(0)).to_numpy()
    path_rank = np.empty(len(df), np.int64)
    path_rank[np.argsort(df["path"].astype(str).to_numpy().astype(str), kind="stable")] = np.arange(len(df))
    rows = member[np.lexsort((path_rank[member], -area[member], gid[member]))]
    b = links.run_bounds(gid[rows])
    return rows, np.repeat(np.arange(len(b) - 1), np.diff(b))


def asks_for_embeddings(df: pd.DataFrame, cfg: CleanConfig) -> bool:
    """Whether mark_duplicates, given no near-duplicate pairs (--exact-only), computes embeddings: a group whose
    labels tie under --conflicts majority-knn. A dry run on a copy that stops at the first tie (e.g. so that
    torchrun's ranks, which cannot see rank 0's groups, skip the embedding pass when no group ties)."""
    class Asked(Exception):
        pass

    def ask() -> np.ndarray:
        raise Asked

    try:
        mark_duplicates(df.copy(), None, replace(cfg, near_dup=False), embeddings=ask)
    except Asked:
        return True
    return False


def neighbour_labels(emb: np.ndarray, idx: list[int], labels: np.ndarray, ok: np.ndarray,
                     k: int = TIE_NEIGHBOURS) -> dict[str, int]:
    """{label: how many of the k readable images nearest the group carry it} for one duplicate group: nearest by
    cosine to its members' mean embedding (L2-normalised rows), its own members left out."""
    return neighbour_votes(emb, [idx], labels, ok, k)[0]


NEIGHBOUR_BLOCK = 1 << 25     # similarities held at once by neighbour_votes (floats: 128 MiB)


def neighbour_votes(emb: np.ndarray, groups: list[list[int]], labels: np.ndarray, ok: np.ndarray,
                    k: int = TIE_NEIGHBOURS) -> list[dict[str, int]]:
    """neighbour_labels for many groups at once: one matrix product per block of groups instead of a pass over every
    embedding per group (3,700 ties among 100,000 images: seconds, not minutes)."""
    emb = np.asarray(emb, np.float32)
    centres = np.stack([emb[idx].mean(axis=0) for idx in groups]) if groups else np.zeros((0, emb.shape[1]))
    centres = (centres / np.where((nrm := np.linalg.norm(centres, axis=1, keepdims=True)) > 0, nrm, 1.0))
    centres = centres.astype(np.float32)
    bad = ~np.asarray(ok, bool)
    out: list[dict[str, int]] = []
    step = max(1, NEIGHBOUR_BLOCK // max(len(emb), 1))
    for b in range(0, len(groups), step):
        sim = emb @ centres[b:b + step].T
        sim[bad] = -np.inf
        for c, idx in enumerate(groups[b:b + step]):
            col = sim[:, c]
            col[idx] = -np.inf
            kk = min(k, int(np.isfinite(col).sum()))
            near = np.argpartition(-col, kk - 1)[:kk] if kk else np.array([], int)
            out.append(dict(Counter(labels[near].tolist())))
    return out


def conflict_keepers(order: list[int], labels: np.ndarray, policy: str,
                     neighbours: Callable[[list[str]], dict[str, int]] | None = None) -> tuple[dict[str, int], bool]:
    """{label that stays: its first row} for one duplicate group (rows in keep order), and whether the group spans
    labels. One label: it stays. Across labels, `majority`: the label most members carry, none on a tie (one
    image per label says nothing about which is right); `majority-knn`: the same, but a tie keeps each tied label
    that `neighbours(tied labels)` ({label: how many of the group's nearest other images carry it}) counts, none
    when it counts none (a picture filed under two fitting classes keeps both, a copy planted in an unrelated class
    neither); `majority-ties`: every label tied for most; `all`: every label (a picture that belongs to several
    categories); `drop`: none. Never decided by path order."""
    counts = Counter(labels[i] for i in order)
    first: dict[str, int] = {}
    for i in order:
        first.setdefault(labels[i], i)
    if len(counts) == 1:
        return first, False
    if policy == "drop":
        return {}, True
    if policy == "all":
        return first, True
    top = max(counts.values())
    winners = [lab for lab, c in counts.items() if c == top]
    if policy == "majority" and len(winners) > 1:
        return {}, True
    if policy == "majority-knn" and len(winners) > 1:
        near = neighbours(winners)
        winners = [lab for lab in winners if near[lab] > 0]
    return {lab: first[lab] for lab in winners}, True


def conflict_table(df: pd.DataFrame, votes: dict[str, dict[str, int]] | None = None) -> list[dict]:
    """One row per duplicate group spanning labels: its labels with their counts, what was kept, and for a tie that
    --conflicts majority-knn decided, how many of the group's nearest images carry each tied label (the report).
    Arrays cut per group (thousands of conflict groups: a frame lookup each took minutes)."""
    votes = votes or {}
    sub = (df["label_conflict"].astype(bool) & (df["dup_group"] != "")).to_numpy()
    group = df["dup_group"].to_numpy()[sub].astype(str)
    order = np.argsort(group, kind="stable")           # by group name, each group's rows in frame order
    group = group[order]
    label = df["label"].astype(str).to_numpy()[sub][order]
    path = df["path"].astype(str).to_numpy()[sub][order]
    keep = df["keep"].astype(bool).to_numpy()[sub][order]
    reason = df["reason"].astype(str).to_numpy()[sub][order]
    bounds = links.run_bounds(group)
    rows = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        g = group[a]
        counts = Counter(label[a:b].tolist()).most_common()
        later = [f"{p} ({lab}) as {r}" for p, lab, k, r in zip(path[a:b], label[a:b], keep[a:b], reason[a:b])
                 if not k and r != "label_conflict"]     # of a label that stayed, removed by a later stage
        row = {"dup_group": g, "labels": ", ".join(f"{k} x{v}" for k, v in counts),
               "kept": ", ".join(f"{p} ({lab})" for p, lab, k in zip(path[a:b], label[a:b], keep[a:b]) if k)
               or (f"none: --conflicts kept a label, its images then removed: {', '.join(later)}" if later
                   else "none (tie or --conflicts drop)"),
               "removed": ", ".join(path[a:b][~keep[a:b]])}
        if votes:
            row["tie vote"] = ", ".join(f"{lab} {n}" for lab, n in votes[g].items()) if g in votes else ""
        rows.append(row)
    return rows


def tie_losses(df: pd.DataFrame, groups: list[str] | None = None) -> list[tuple[str, int, int]]:
    """(label, images removed, the label's readable images) per label that lost images to label-conflict groups
    whose labels tie: `groups` (e.g. the ties majority-knn voted on), else the groups with every member removed as
    label_conflict (what --conflicts majority does to a tie); the largest share first."""
    sub = df[df["label_conflict"].astype(bool) & (df["dup_group"] != "")]
    if sub.empty:
        return []
    if groups is None:
        tied = sub["reason"].eq("label_conflict").groupby(sub["dup_group"]).transform("all").astype(bool)
    else:
        tied = sub["dup_group"].isin(groups) & sub["reason"].eq("label_conflict")
    lost = sub.loc[tied, "label"].astype(str).value_counts()
    total = df.loc[df["error"] == "", "label"].astype(str).value_counts()
    rows = [(lab, int(n), int(total.get(lab, n))) for lab, n in lost.items()]
    return sorted(rows, key=lambda r: (-r[1] / r[2], r[0]))


def linked_members(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(rows, firsts): the positions of the kept images that link duplicates: every kept member of a duplicate group
    of which two or more images stay, whatever their labels, but the group's first kept member (keep order: largest
    resolution, then path), and per row the position of that first member. The one owner of "linked duplicates":
    linked_kept counts them, clean's report lists them (a tie kept per label has one first member per label in
    `duplicate_of`; counting those instead left each further label's first image out of the report)."""
    kept = (df["keep"].astype(bool) & (df["dup_group"].astype(str) != "")).to_numpy()
    rows, gi = _groups_in_keep_order(df, pd.factorize(df["dup_group"].astype(str))[0], kept)
    if not len(rows):
        return rows, rows
    first = rows[links.run_bounds(gi)[:-1]][gi]
    later = rows != first
    return rows[later], first[later]


def linked_counts(rows: np.ndarray, firsts: np.ndarray) -> tuple[int, int]:
    """(copies kept, groups linking them) of linked_members' (rows, firsts): the images kept beyond one per group,
    and the groups, one per first member. What linked_kept says, and the report, which lists the rows, counts."""
    return len(rows), len(np.unique(firsts))


def linked_kept(df: pd.DataFrame) -> tuple[int, int]:
    """(copies kept, groups linking them): the duplicate groups of which two or more images stay, whatever their
    labels (a copy under another class that --conflicts keeps links as a same-label one: split and train keep each
    dup_group on one side), and the images they keep beyond one per group (linked_members, counted by
    linked_counts). clean's summary line, clean_summary.json's linked_kept / linked_groups and report.html's linked
    duplicates."""
    return linked_counts(*linked_members(df))


def group_outcomes(df: pd.DataFrame, policy: str, votes: dict[str, dict[str, int]]) -> str:
    """What clean did with each duplicate group, said once (clean's screen; the one owner of its wording): the groups
    of one label, those spanning labels with a majority label and those whose labels tie (--conflicts `policy`;
    `votes`: majority-knn's tie votes), each kind with the labels it kept, the images it kept and removed and why
    (the removed ones' reasons), what a tie's removals cost each label, and how many groups keep two or more
    images, linked (linked_kept). The summary line said "removed 3 label_conflict; 3 duplicates kept, linked in 3
    groups" beside "2 duplicate groups' labels tie", which read as if the ties had removed them. '' without groups."""
    from imgcls.console import plural
    sub = df.loc[df["dup_group"].astype(str) != "", ["dup_group", "label", "keep", "reason"]].astype(
        {"dup_group": str, "label": str, "keep": bool, "reason": str})
    if sub.empty:
        return ""
    # a label --conflicts kept: one of its members is not a label_conflict loser (one a later stage removed, out of
    # domain or undersampled, is said among the images removed: it read "no label kept ... (--conflicts all)")
    sub["stays"] = sub["reason"] != "label_conflict"
    per_label = sub.groupby(["dup_group", "label"]).agg(n=("keep", "size"), kept=("stays", "any"))
    top = per_label["n"].groupby(level=0).transform("max")
    at_top = per_label["n"] == top
    groups = pd.DataFrame({"labels": per_label["n"].groupby(level=0).size(),
                           "tied": at_top.groupby(level=0).sum(),
                           "kept_labels": per_label["kept"].groupby(level=0).sum(),
                           "kept_top": (per_label["kept"] & at_top).groupby(level=0).sum()})
    kind = np.where(groups["labels"] == 1, "one", np.where(groups["tied"] > 1, "tie", "majority"))
    kind_of = pd.Series(kind, index=groups.index)
    row_kind = sub["dup_group"].map(kind_of).to_numpy()

    def images(k: str) -> str:
        rows = sub[row_kind == k]
        reasons = rows.loc[~rows["keep"], "reason"].value_counts()
        if not len(reasons):
            return f"all {len(rows)} images kept"
        why = ", ".join(f"{n} {r}" for r, n in reasons.items()) if len(reasons) > 1 else reasons.index[0]
        return f"{int(rows['keep'].sum())} of their {len(rows)} images kept, {int(reasons.sum())} removed ({why})"

    def kept(g: pd.DataFrame, whole: pd.Series, every: str, alone: pd.Series | None = None) -> str:
        """'every tied label kept in 2, none in 1'; the one outcome alone without a count."""
        one = alone if alone is not None else pd.Series(False, index=g.index)
        all_ = (g["kept_labels"] >= whole) & ~one          # >=: --conflicts all keeps the labels beside a tie too
        none = g["kept_labels"] == 0
        said = [(what, int(n)) for what, n in ((every, all_.sum()), ("the majority label alone kept", one.sum()),
                                               ("some labels kept", (~all_ & ~none & ~one).sum()),
                                               ("no label kept", none.sum()))
                if n]
        if len(said) == 1:
            return said[0][0]
        return ", ".join(f"{what} in {n}" for what, n in said)

    parts = []
    one, major, tie = (groups[kind == k] for k in ("one", "majority", "tie"))
    if len(one):
        parts.append(f"{plural(len(one), 'group')} of one label: {images('one')}")
    if len(major):
        alone = (major["kept_labels"] == 1) & (major["kept_top"] == 1)
        parts.append(f"{plural(len(major), 'group')} spanning labels with a majority label: "
                     f"{kept(major, major['labels'], 'every label kept', alone)}, {images('majority')}")
    if len(tie):
        voted = f": by which labels their {TIE_NEIGHBOURS} nearest other images carry" if votes else ""
        lost = tie_losses(df, list(votes) if policy == "majority-knn" else list(tie.index))
        worst = ", ".join(f"'{lab}' {n} of {total} ({n / total:.0%})" for lab, n, total in lost[:3])
        shares = f", the largest shares from {worst}" if lost else ""
        advice = ("; where one picture is rightly filed under several classes, --conflicts majority-knn or "
                  "majority-ties keeps them (README: what each policy measured)") if policy == "majority" and lost \
            else ""
        parts.append(f"{plural(len(tie), 'group')} whose labels tie: {kept(tie, tie['tied'], 'every tied label kept')}"
                     f" (--conflicts {policy}{voted}), {images('tie')}{shares}{advice}")
    _, n_groups = linked_kept(df)
    if n_groups:
        parts.append(f"{plural(n_groups, 'group')} {'keeps' if n_groups == 1 else 'keep'} two or more images, linked "
                     f"by dup_group (split and train keep each group on one side)")
    return f"{plural(len(groups), 'duplicate group')}: " + "; ".join(parts)


def families(df: pd.DataFrame) -> dict:
    """Duplicate groups of 3 or more images (e.g. near-identical generated drawings), counted apart from pairs."""
    sizes = df.loc[df["dup_group"] != "", "dup_group"].value_counts()
    fam = sizes[sizes >= 3]
    return {"groups_of_3_or_more": int(len(fam)), "images_in_them": int(fam.sum()),
            "pair_groups": int((sizes == 2).sum())}


def threshold_sweep(df: pd.DataFrame, pairs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[dict]:
    """Images that duplicate removal (exact copies, and near copies at each threshold) would drop, as in seed 000's
    table; `pairs` are the scored pairs (links.NearDuplicates.scored_pairs) down to the lowest threshold swept. At
    the run's threshold `remaining` is what deduplication keeps (one image per group; before out-of-domain and
    undersampling)."""
    ok = (df["error"] == "").to_numpy()
    pi, pj, ps = pairs
    ei, ej = exact_pairs(df)
    rows = []
    for t in SWEEP:
        keep = (ps >= t - SWEEP_TOL) & ok[pi] & ok[pj]
        g = links.components(len(df), np.r_[ei, pi[keep]], np.r_[ej, pj[keep]])
        n_groups_members = pd.Series(g[ok]).value_counts()
        rows.append({"threshold": t, "removed": int((n_groups_members - 1).sum()),
                     "remaining": int(ok.sum() - (n_groups_members - 1).sum())})
    return rows
