"""clean's report.html: removed and linked duplicates beside their twin, out-of-domain ranking, per-class counts,
threshold sweep."""
from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from imgcls import manifest as mf, report
from imgcls.clean.duplicates import linked_counts, linked_members
from imgcls.console import plural

MAX_SHOWN = 150


def _pair(row, kept_row, verb: str = "removed", first: str = "kept", max_pixels: int | None = None) -> str:
    """`row` (removed, or linked) beside the member it is a duplicate of (`kept_row`, None when unknown);
    `max_pixels`: clean's --max-pixels (None: the default). A label-conflict loser of a group none of whose
    labels stays has no such member: said so (it read "kept - ()")."""
    a = report.thumb_data_uri(Path(row["root"], row["path"]), 96, max_pixels)
    b = (report.thumb_data_uri(Path(kept_row["root"], kept_row["path"]), 96, max_pixels) if kept_row is not None
         else "")
    def named(r) -> str:        # an unlabeled image's path alone (it read "x.png ()")
        return f"{r['path']} ({r['label']})" if str(r["label"] or "") else str(r["path"])
    twin = named(kept_row) if kept_row is not None else "none: no label of its group stays"
    if kept_row is not None and not bool(kept_row.get("keep", True)):
        # the twin a later stage removed (out of domain, undersampled): it read "kept" beside an image not kept
        twin += f", itself removed: {str(kept_row['reason'] or '').replace('_', ' ')}"
    # the reason in words on its own line (the manifest's code, glued to the kept twin, read as the twin's reason)
    reason = str(row["reason"] or "").replace("_", " ")
    lines = [f"{verb} {named(row)}", f"{first} {twin}"] + ([f"reason: {reason}"] if reason else [])
    if bool(row["label_conflict"]) and reason != "label conflict":
        # the flag is its group's: a pair of one label beside a bare 'label conflict' read as conflicting itself
        lines.append("its duplicate group spans labels (label_conflict)")
    return report.figure([(a, verb), (b, first)], lines)


def _pairs(df: pd.DataFrame, rows: pd.DataFrame, verb: str, first: str, max_pixels: int | None = None,
           twin_of: pd.Series | None = None) -> str:
    """Up to MAX_SHOWN of `rows`, each beside its twin (the path `twin_of` gives per row, else its duplicate_of),
    and how many more manifest.csv has."""
    shown = rows.head(MAX_SHOWN)
    twin_paths = (twin_of if twin_of is not None else rows["duplicate_of"]).head(MAX_SHOWN).tolist()
    twins = df[df["path"].isin(twin_paths)]
    by_path = {p: r for p, r in zip(twins["path"], twins.to_dict("records"))}
    html = "".join(_pair(r, by_path.get(t), verb, first, max_pixels)
                   for r, t in zip(shown.to_dict("records"), twin_paths))
    return html + (report.note(f"{len(rows) - MAX_SHOWN} more in manifest.csv") if len(rows) > MAX_SHOWN else "")


def _ood_section(df: pd.DataFrame, summary: dict, max_pixels: int | None = None) -> str:
    """The 60 highest out-of-domain scores, or why there is no ranking (stage off; no image scored above 0, as
    photo-style gives when it finds no out-of-domain population: a list of 0.000 scores said nothing)."""
    scored = df[df["ood_score"].notna()]
    if not summary["config"].get("ood", True):
        return report.note("out-of-domain stage off")
    method = summary["config"].get("ood_method", "")
    unscored = summary.get("ood_unscored", 0)
    if scored.empty:
        return report.note(f"{method}: no image scored ({unscored} readable: too few for it, or not measurable): "
                           f"nothing flagged, every image kept unchecked")
    flagged = int((df["reason"] == "out_of_domain").sum())
    if unscored:
        method += f" ({unscored} readable images not scored, kept unchecked)"
    if not (scored["ood_score"] > 0).any():
        return report.note(f"{method}: no image scored above 0 (no out-of-domain population found): nothing flagged, "
                           f"nothing to rank")
    ood = scored.sort_values("ood_score", ascending=False, kind="stable").head(60)
    return report.note(f"{method}: {flagged} of {len(scored)} scored images flagged out_of_domain") + "".join(
        report.figure([(report.thumb_data_uri(Path(r["root"], r["path"]), 96, max_pixels), r["path"])],
                      [r["path"], f"score {r['ood_score']:.3f} "
                                  f"{'removed' if r['reason'] == 'out_of_domain' else 'kept'}"])
        for r in ood.to_dict("records"))


def _sweep_section(summary: dict) -> tuple[str, str]:
    """The threshold sweep in the words of the --duplicates mode used. Each row counts, at that threshold, the
    images beyond the first of each duplicate group (exact copies + near copies): under `drop` those deduplication
    removes, under `link` (the default, which removes no duplicate) those it links to their group's first member,
    with those --conflicts removes from a group spanning labels (majority-knn, the default: its minority labels)."""
    mode = summary["config"].get("duplicates", "link")
    if mode == "drop":
        head = ("Threshold sweep (--duplicates drop): the images deduplication would remove at each threshold "
                "(exact copies + near copies; one image of each group kept)")
        names = {"removed": "removed", "remaining": "remaining"}
    else:       # link removes no duplicate, but --conflicts (majority-knn by default) a group's other labels
        conflicts = summary["config"].get("conflicts", "all")
        kept = ("every image kept" if conflicts == "all" else
                f"every image kept but those --conflicts {conflicts} removes from a group spanning labels, counted "
                f"here too")
        head = ("Threshold sweep (--duplicates link): the images that would be linked to their duplicate group's "
                f"first member at each threshold (exact copies + near copies; {kept})")
        names = {"removed": "linked", "remaining": "distinct images (one per group)"}
    if not summary["config"].get("near_dup", True):
        # --exact-only scores no pair: the table's "none" read as no duplicate at any threshold
        return head, report.note("--exact-only: near duplicates not searched, no threshold to sweep (byte copies "
                                 "only, grouped by sha256)")
    return head, report.table(pd.DataFrame(summary["threshold_sweep"]).rename(columns=names))


def _counts_figure(counts: pd.DataFrame) -> str:
    """The per-class counts table as a figure (eda's before / after class counts), embedded; '' for unlabeled
    images (no class to draw)."""
    if counts.empty:
        return ""
    from imgcls.eda import plot_counts_before_after
    kept, before = int(counts["after"].sum()), int(counts["before"].sum())
    fig = plot_counts_before_after(counts, f"labelled images per class before / after clean ({kept} of {before} "
                                           f"kept, {plural(len(counts), 'class', 'classes')})")
    return report.img(report.figure_data_uri(fig), "class counts before / after")


def write_clean_report(path: Path, df: pd.DataFrame, summary: dict) -> Path:
    # the report reads no attrs, and pandas deep-copies a frame's attrs into every frame or series an operation makes
    # (a 3,000-entry dict: 2 s of CPU over the ~200 operations here): dropped once, from a shallow copy
    df = df.copy(deep=False)
    df.attrs = {}
    max_pixels = summary.get("config", {}).get("max_pixels")      # the thumbnails decode within clean's bound
    dups = df[df["reason"].isin(["exact_duplicate", "near_duplicate", "label_conflict"])]
    # --duplicates link (default) keeps a group's later members: those clean's screen and summary count (linked_kept)
    rows, firsts = linked_members(df)
    linked, linked_to = df.iloc[rows], df["path"].iloc[firsts]
    n_linked, linked_groups = linked_counts(rows, firsts)       # as clean's screen and summary count them
    labelled = df[df["label"] != ""]
    counts = pd.DataFrame({"before": labelled.groupby("label").size(),
                           "after": labelled[labelled["keep"]].groupby("label").size()}).fillna(0).astype(int)
    counts = counts.sort_values("before", ascending=False).reset_index().rename(columns={"index": "label"})
    grouped = df[df["dup_group"] != ""]
    families = grouped.groupby("dup_group").agg(n=("path", "size"), example=("path", "first")).query("n >= 3")
    members = grouped.loc[grouped["dup_group"].isin(families.index), ["dup_group", "label"]].drop_duplicates()
    members = members.sort_values(["dup_group", "label"])   # labels joined without a pandas call per group
    joined = {g: ", ".join(lab for _, lab in rows)
              for g, rows in itertools.groupby(zip(members["dup_group"], members["label"]), key=lambda t: t[0])}
    families["labels"] = families.index.map(joined)
    families = families.sort_values("n", ascending=False).reset_index()
    conflicts = summary.get("label_conflicts", [])
    # --no-dedup looked for no duplicate: its sections said "0" and "none", read as a set without duplicates
    searched = summary["config"].get("dedup", True)
    dup_counts = [("duplicate groups spanning labels", summary["label_conflict_groups"]),
                  ("families (duplicate groups of 3+): groups / images",
                   f'{summary["families"]["groups_of_3_or_more"]} / {summary["families"]["images_in_them"]}'),
                  ("duplicate groups of 2 images (kept or removed)", summary["families"]["pair_groups"]),
                  ("duplicates kept, linked to a kept image of their group / groups", f"{n_linked} / {linked_groups}")]
    sections = [
        ("Summary", report.key_values([("images", summary["n_images"]), ("kept", summary["kept"])]
                                      + [(f"removed: {k}", v) for k, v in summary["removed"].items()]
                                      + (dup_counts if searched else [("duplicates", "not searched (--no-dedup)")]))),
        ("Per-class counts before / after", _counts_figure(counts) + report.table(counts)),
    ]
    dup_sections = [
        (f"Label conflicts: duplicate groups spanning labels ({len(conflicts)}; "
         f"--conflicts {summary['config'].get('conflicts', '')})",
         report.table(conflicts, ["dup_group", "labels", "tie vote", "kept", "removed"])),   # tie vote: majority-knn
        _sweep_section(summary),
        (f"Removed duplicates beside their kept twin ({len(dups)})",
         _pairs(df, dups, "removed", "kept", max_pixels) or report.note("none")),
        (f"Linked duplicates: kept, each beside its group's first kept member, one split unit "
         f"({plural(n_linked, 'image')} beyond one per group, in {plural(linked_groups, 'group')}; labels may "
         f"differ where --conflicts keeps several)",
         _pairs(df, linked, "linked", "first", max_pixels, linked_to) or report.note("none")),
        (f"Families of near-identical images (groups of 3 or more: {len(families)})",
         report.table(families, ["dup_group", "n", "labels", "example"])),
    ]
    sections += dup_sections if searched else [("Duplicates", report.note("duplicate stage off (--no-dedup)"))]
    sections += [
        ("Most out-of-domain images (ranked by score)", _ood_section(df, summary, max_pixels)),
        ("Unreadable", report.table(df[df["reason"] == mf.UNREADABLE], ["path", "error"])),
    ]
    return report.write_page(path, "imgcls clean report", sections)
