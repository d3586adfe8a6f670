"""The step: `make_split` (the split as a library call), `run_split` (load, split, check, write) and `run_check`
(check / fix an existing split file)."""
from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd

from imgcls import manifest as mf
from imgcls import profiles
from imgcls.console import all_placed, cache_reuse, info, interruption_leaves, warn
from imgcls.errors import UserError
from imgcls.fsutil import check_file_name_encoding, check_not_replacing, check_output_location, check_writable
from imgcls.options import PATH, SRC_PATH, check_arguments, join, python_too, set_options
from imgcls.outputs import (output_set, own_earlier_files, placing_journal, refuse_other_output,
                            refuse_users_files, replacing_line, split_outputs)
from imgcls.parallel import ParallelOptions, check_workers
from imgcls.pipeline import PIPELINE, default_input
from imgcls.split.assign import (COPY_ACROSS, assign, check_enough_units, check_placed, drawn_rows,
                                 follow_sources, strata_of)
from imgcls.split.config import (CHECK_FIX_RECORDS, NEW_SPLIT, LeakageError, PROFILE_ATTRIBUTES, SPLITS,
                                 SplitConfig, check_read_by_check, check_split_values, fold_ids, has_folds,
                                 recorded_config, split_values)
from imgcls.split.labels import (class_column, derive_profile_labels, drop_ages_text, dropped_by_age,
                                 exclusion_reasons, is_profile_table)
from imgcls.split.leaks import (balance_units, check_fix_fractions, check_leaks, fix_leaks, in_folds, kept_group_col,
                               nfc_keys, sides)
from imgcls.split.report import (distribution, print_leaks, print_tables, report_columns, summarize,
                                 value_meanings, write_reports)
from imgcls.split.units import (NEAR_LINK, content_label_conflicts, linked_units, near_duplicate_pairs_for,
                                typed_link_pairs, units_apart)

NO_STRATIFY = python_too("--stratify none", "stratify=()")
CLEAN_CONFLICTS = python_too("`imgcls clean` resolves label conflicts (--conflicts)",
                             "run_clean with CleanConfig(conflicts=...)")


def _resolve_group_col(df: pd.DataFrame, cfg: SplitConfig, layout: str, where: str = "the source") -> str:
    """The column whose rows never cross sides; one a table lacks is refused naming `where` (the file --check reads)."""
    if cfg.group_col in (None, mf.NO_GROUPS):   # `group` (NO_GROUPS: the reader left it empty, a manifest's too)
        return "group"
    if cfg.group_col in df.columns:
        return cfg.group_col
    if layout == "csv":       # the CSV reader already put --group-col into `group`
        return "group"
    raise UserError(f"--group-col '{cfg.group_col}' is not a column of {where} (columns: "
                    f"{', '.join(map(str, df.columns))}); pass an existing column, e.g. --group-col group")


def _check_stratify(df: pd.DataFrame, cfg: SplitConfig, where: str = "the source") -> None:
    """Each --stratify column is one of df's; else one line naming `where` (the file --check reads)."""
    for col in cfg.stratify:
        if col not in df.columns:
            raise UserError(f"--stratify column '{col}' is not in {where} (columns: "
                            f"{', '.join(map(str, df.columns))}); name columns it has")


def _classes_to_split(df: pd.DataFrame, cfg: SplitConfig, group_col: str
                      ) -> tuple[pd.DataFrame, pd.Series, int | None]:
    """The table with the classes split draws, for make_split and the check before the scan
    (_check_parts_before_scan): its group and --stratify keys NFC (nfc_keys), a profile table's labels of its
    --age-bands (derive_profile_labels), and the class column's values in `label`: a CSV read without --label-col
    (DACON's `artist`, split with --stratify artist) is split per artist. Returns it, the `label` the table written
    keeps (a profile table's derived; an artist CSV's empty one) and how many images --relabel-age moved (None: not
    given). --relabel-age / --age-bands on other data and a --stratify label with no label are refused in one line
    (before the scan: the table as read has them)."""
    df = nfc_keys(df, (group_col, *cfg.stratify))
    moved = None
    if is_profile_table(df):
        df, n = derive_profile_labels(df, cfg.age_bands, cfg.relabel_age)
        moved = None if cfg.relabel_age is None else int(n)
    elif cfg.relabel_age is not None:
        raise UserError("--relabel-age needs a profile dataset (mask / gender / age columns); this source has none")
    elif tuple(cfg.age_bands) != tuple(profiles.DEFAULT_AGE_BANDS):
        raise UserError("--age-bands needs a profile dataset (mask / gender / age columns); this source has none")
    if "label" in cfg.stratify and (df["label"].astype(str) == "").all():
        hint = mf.label_column_hint(df)
        raise UserError("the source has no labels to stratify on; "
                        + (f"{hint}, or {NO_STRATIFY}" if hint else f"give a labelled dataset or {NO_STRATIFY}"))
    label = df["label"].copy()
    cls = class_column(df, cfg.stratify)
    if cls != "label":
        df["label"] = mf.text_values(df[cls])
    return df, label, moved


def make_split(df: pd.DataFrame, cfg: SplitConfig, group_col: str = "group", workers: int = 1,
               ) -> tuple[pd.DataFrame, dict, pd.DataFrame, list[tuple[int, int, float]]]:
    """The split as a library call: returns (df with split / fold / drop_reason, summary, leaks, near pairs: those
    that join units the other links leave apart, near_duplicate_pairs_for's `units_of`).

    df must be a loaded manifest (absolute roots, scanned). Row order of the result = canonical order
    (root, path), so the output does not depend on the input's row order."""
    cfg.validate()      # a Python caller's config as the command line's (its fractions: assign.fraction_plan's)
    _check_stratify(df, cfg)
    notes: list[str] = []
    if "split" in df.columns and (mf.text_values(df["split"]) != "").any():
        if "drop_reason" in df.columns:     # an earlier imgcls split's table (split check / fix's, the leak
            info("the source is a split table (an earlier imgcls split): this split replaces its `split` / `fold` "
                 "columns; train on the source itself to keep its split")     # check's held-out commands)
        else:
            info("the source already has a `split` column (e.g. train/ val/ test/ folders): this split replaces "
                 "it; train on the source itself to keep the folders' split")
    df = df.drop(columns=[c for c in mf.columns_of("split") if c in df.columns])
    df = df.assign(_ident=df["root"].astype(str) + "/" + df["path"].astype(str))
    df = df.sort_values("_ident", kind="stable").drop(columns="_ident").reset_index(drop=True)
    df, label, moved = _classes_to_split(df, cfg, group_col)
    relabelled = None
    if moved is not None:
        relabelled = moved
        edges = join(cfg.relabel_age)
        if moved:       # what the option is for: said, not a warning
            info(f"--relabel-age {edges}: {moved} image(s) moved to another age band")
        else:           # no one at those ages: the option did nothing
            notes.append(f"--relabel-age {edges} moved no image to another age band (no one at the ages its "
                         f"edges move)")
    reasons = exclusion_reasons(df, cfg)
    if cfg.drop_ages and not dropped_by_age(df, cfg):      # no one at those ages: the option did nothing
        notes.append(f"--drop-ages {drop_ages_text(cfg.drop_ages)} left out no image (no one at those ages)")
    inc = df[reasons == ""].reset_index(drop=True)
    if inc.empty:
        raise UserError("every row is excluded (see drop_reason: clean's keep=false, unreadable, no label, "
                        "--drop-ages); nothing to split")
    near: list[tuple[int, int, float]] = []
    linked = linked_units(inc, group_col)
    # the originals are drawn; preprocess --oversample's copies follow them (assign.follow_sources)
    drawn = drawn_rows(inc, linked)
    li, lj, kind = typed_link_pairs(inc, group_col)
    apart = units_apart(inc, drawn, li, lj)
    # before the near-duplicate search's embedding pass (label: the class column's, set above)
    check_enough_units(apart[drawn], inc["label"].astype(str).to_numpy()[drawn], strata_of(inc[drawn], cfg), cfg)
    if cfg.near_dup:
        from imgcls.embed import cache_folder
        with cache_reuse("split", cache_folder(cfg.cache_dir)):     # a warm run: one line of what the caches served
            near = near_duplicate_pairs_for(inc, cfg, workers, units_of=apart)
    n_conflicts, what, example = content_label_conflicts(inc, near)
    if n_conflicts:         # one unit, placed whole, but two labels for one picture (clean did not settle them)
        a, la, b, lb, how = example
        notes.append(f"{n_conflicts} group(s) of {what} images carry different labels (e.g. {a} '{la}' and {b} "
                     f"'{lb}', {how}): each stays on one side, but training sees the same picture under two labels; "
                     f"{CLEAN_CONFLICTS}, or fix the labels")
    i, j = (np.r_[ends, np.array([p[k] for p in near], np.int64)] for k, ends in ((0, li), (1, lj)))
    kind = np.r_[kind, np.full(len(near), NEAR_LINK)]
    units = units_apart(inc, drawn, i, j) if near else apart     # no near pair: the links are those above
    if cfg.near_dup:
        before, after = (pd.Series(u).map(pd.Series(u).value_counts()) for u in (apart[drawn], units[drawn]))
        info(f"near-duplicate search ({cfg.near_duplicates().describe()}): {int((after > before).sum())} row(s) "
             f"joined to other units by near-duplicate links; {pd.Series(units[drawn]).nunique()} units in all")
    sizes = pd.Series(units[drawn]).value_counts()
    if len(sizes) and sizes.iloc[0] > max(50, 0.1 * drawn.sum()):
        notes.append(f"{int(sizes.iloc[0])} rows are linked into one unit (groups/duplicates), placed whole; if "
                     f"they are not one family, check --dup-method / --dup-threshold or the group column")
    split, fold, more = assign(inc[drawn].reset_index(drop=True), units[drawn], cfg)
    check_placed(split, fold, units[drawn], cfg)
    notes += more
    # each copy takes the place of an original it is linked to, or is left out where they are on two sides (with
    # folds, two folds keep it: train trains on it only in the folds where none of its sources validates)
    side = np.full(len(inc), "", dtype=object)
    side[drawn] = split if fold is None else split + " " + fold.astype(str)
    assigned = np.full(len(inc), "", dtype=object)
    assigned[drawn] = split
    followed = follow_sources(drawn, side, units, i, j, kind, in_folds(assigned, True) if fold is not None else None)
    left = followed < 0
    if left.any():
        notes.append(f"{int(left.sum())} oversampled cop{'y' if left.sum() == 1 else 'ies'} (augmented_from) "
                     f"of images on two sides left out (drop_reason): each would show one side's image to the other")
    if fold is not None:
        placed = np.where(left, "", side[np.maximum(followed, 0)])
        apart_n = sum(any(placed[s] != placed[k] for s in srcs)
                      for k, srcs in enumerate(mf.copy_source_rows(inc)) if srcs and not left[k])
        if apart_n:
            info(f"{apart_n} oversampled cop{'y' if apart_n == 1 else 'ies'} (augmented_from) of images in two folds "
                 f"kept in the fold of one source: train trains on each only in the folds where none of its sources "
                 f"validates")
    at = np.cumsum(drawn) - 1           # a drawn row's position among the drawn rows
    taken = at[followed[~left]]
    # positions of `near` index the included rows (those before the copies left out)
    pos = np.flatnonzero((reasons == "").to_numpy())
    reasons.iloc[pos[left]] = COPY_ACROSS
    df["split"] = ""
    df.loc[reasons == "", "split"] = split[taken]
    if fold is not None:
        df["fold"] = pd.array([pd.NA] * len(df), dtype="Int64")     # empty for rows left out of every split
        df.loc[reasons == "", "fold"] = fold[taken]
    df["drop_reason"] = reasons.to_numpy()
    # the automatic leakage check
    near_full = [(int(pos[i]), int(pos[j]), c) for i, j, c in near]
    leaks = check_leaks(df, group_col, near_full)
    # a copy in its original's unit: the balance weighs the originals (drawn_rows)
    summary = summarize(df, cfg, notes, leaks, units_series(df, reasons, units[followed[~left]]))
    df["label"] = label
    if relabelled is not None:
        summary["relabel_age_moved"] = relabelled       # splits_summary.json keeps the count the screen said
    return df, summary, leaks, near_full


def units_series(df: pd.DataFrame, reasons: pd.Series, units: np.ndarray) -> pd.Series:
    s = pd.Series("", index=df.index, dtype=object)
    s[(reasons == "").to_numpy()] = units
    return s


def _load(src, out: Path, opts: mf.LayoutOptions, cfg: SplitConfig, workers: int) -> tuple[pd.DataFrame, str]:
    """The table to split and its group column, scanned once `out` is known to lie outside its images' folders and
    --group-col / --stratify name columns it has (the table's columns are the scanned table's: mf.ensure_columns
    adds the scan's empty), all before the long work."""
    df = mf.load(src, opts, scan=False)
    layout = mf.layout_read(df)
    check_not_replacing([out, *split_outputs(out).values()], mf.read_table(df))    # --out train.csv of train.csv
    _check_not_users_file(out)
    check_output_location(out, *mf.input_folders(df), images=mf.image_paths(df), owns=False)
    group_col = _resolve_group_col(df, cfg, layout)
    _check_stratify(df, cfg)
    with mf.guessed_groups_named(df):
        _check_parts_before_scan(df, cfg, group_col)
    return mf.scan_images(df, workers=workers, max_pixels=cfg.max_pixels), group_col


def _check_parts_before_scan(df: pd.DataFrame, cfg: SplitConfig, group_col: str) -> None:
    """make_split's check_enough_units (too few units for the parts, a largest class smaller than them) on the table
    as read, before the image scan (minutes on a large set) rather than after it: the rows the split keeps, the
    unreadable ones (the scan's to find) and oversampled copies counted, each group one unit and each other row its
    own (the scan's content links only join them), so too few here are too few after the scan. The classes are
    make_split's (_classes_to_split, whose refusals are said here, before the scan)."""
    df, _, _ = _classes_to_split(df, cfg, group_col)
    df = df.assign(error="")
    inc = df[(exclusion_reasons(df, cfg) == "").to_numpy()]
    if inc.empty:           # make_split's line
        return
    group = mf.text_values(inc[group_col]).to_numpy() if group_col in inc.columns else np.full(len(inc), "")
    units = np.where(group != "", "group " + group, "row " + np.arange(len(inc)).astype(str))
    check_enough_units(units, inc["label"].to_numpy(), strata_of(inc, cfg), cfg)


def _check_other_output(out: Path) -> None:
    """split writes its table and reports into a folder it does not own: over a file of another step's output there
    (--out data/clean/manifest.csv) is refused; a table of its own beside that step's files, an earlier split's
    table (beside its _summary.json) replaced, or what a split stopped while renaming its set into place left
    there, is not (outputs.own_earlier_files)."""
    writes = [out, *split_outputs(out).values()]
    refuse_other_output(out.parent, "split", writes=writes, mine=own_earlier_files(out, "split", writes, placing=out))


def _check_not_users_file(out: Path) -> None:
    """The table at --out and its reports beside it that are not an earlier split's (outputs.own_earlier_files: the
    user's own train.csv or train_report.html) are refused, not replaced."""
    refuse_users_files(out, "split", [out, *split_outputs(out).values()], placing=out)


def _check_embedder(cfg: SplitConfig) -> None:
    """The near-duplicate definition (its method), its model's weights and the --device it runs on, checked before
    the scan rather than after it."""
    definition = cfg.near_duplicates()
    if cfg.near_dup:
        definition.check_weights()
        from imgcls.device import check_device_present
        check_device_present(cfg.device)     # --device cuda without one: refused before the scan, not after it
        from imgcls.embed import check_cache_folder
        check_cache_folder(cfg.cache_dir)


def reader_options(opts: mf.LayoutOptions | None, cfg: SplitConfig) -> mf.LayoutOptions:
    """The input layout as split reads it: --group-col is SplitConfig's option, and the reader's too (a competition
    CSV's group column goes into `group`). --age-bands is split's own: run_split relabels profile rows from their
    ages whatever the layout, so the reader keeps its default bands (load refuses other bands on a manifest), also
    where the reader's were given equal to SplitConfig's."""
    opts = opts or mf.LayoutOptions()
    if tuple(int(e) for e in opts.age_bands) not in {tuple(profiles.DEFAULT_AGE_BANDS), tuple(cfg.age_bands)}:
        raise UserError(f"split's age bands are SplitConfig(age_bands=...) (--age-bands), not the reader's "
                        f"LayoutOptions(age_bands={list(opts.age_bands)}): split relabels profile rows from their ages "
                        f"with {list(cfg.age_bands)}; give the bands to SplitConfig")
    # typed (SplitConfig's, not None: `group` too), the reader reads that column and says no guess of it
    group_col = cfg.group_col if cfg.group_col is not None else opts.group_col
    return dataclasses.replace(opts, group_col=group_col, age_bands=list(profiles.DEFAULT_AGE_BANDS))


def run_split(src=None, out=dict(PIPELINE)["splits"], opts: mf.LayoutOptions | None = None,
              cfg: SplitConfig | None = None, workers: int = ParallelOptions.workers) -> pd.DataFrame:
    """`imgcls split SRC`: load, derive labels, split, check, write the table and its reports. `src` None: the
    furthest pipeline stage up to data/processed (imgcls.pipeline.default_input), announced."""
    check_file_name_encoding()     # as every command: a non-ASCII name misread or left out
    check_arguments("run_split", opts=(opts, mf.LayoutOptions), cfg=(cfg, SplitConfig), src=(src, PATH, SRC_PATH),
                    out=(out, PATH, "a path to a CSV"))
    cfg = cfg or SplitConfig()
    cfg.validate()
    opts = reader_options(opts, cfg)
    check_workers(workers)
    if src is None:
        src = default_input("split")
    out = check_writable(out, "file")       # given as typed: a trailing slash (a folder) is refused
    _check_other_output(out)
    _check_embedder(cfg)
    df, group_col = _load(src, out, opts, cfg, workers)
    labels_from = mf.label_col_record(df, opts)     # the summary records it: train --target artist reads it
    with mf.guessed_groups_named(df):
        df, summary, leaks, _ = make_split(df, cfg, group_col, workers)
    summary.update(labels_from)
    for n in summary["notes"]:
        warn(n)
    df = mf.as_written(df)          # what is returned is the table written, in its column order
    _finish(df, out, cfg, summary, leaks, grouped=cfg.group_col != mf.NO_GROUPS, group_col=group_col)
    return df


def _leak_kinds(grouped: bool, near_dup: bool) -> str:
    """What the leakage check found no side sharing, as its clean lines say it: groups only where they were read
    (`grouped`; --group-col none: not), near-duplicates only where they were searched."""
    return ("group, " if grouped else "") + "exact duplicate, source image" + (" or near-duplicate" if near_dup else "")


def _finish(df: pd.DataFrame, out: Path, cfg: SplitConfig, summary: dict, leaks: pd.DataFrame,
            grouped: bool, group_col: str = "group") -> None:
    """Print the split's tables, balance and leakage lines, and write the table and its reports. `grouped`: whether
    a group column was read (the leakage line names groups only then); `group_col`: the column read, which the leaks
    table names a shared group's kind by."""
    columns = report_columns(df, cfg)
    print_tables(distribution(df, columns), columns[:1] + [c for c in columns[1:] if c in PROFILE_ATTRIBUTES],
                 meanings=value_meanings(df, cfg))
    bal = summary["balance"]
    far = bal.get("furthest_all")
    # the largest gap may be a class with too few groups to balance (each said by name above, e.g. no val rows):
    # said as the largest, the counted classes' own beside it, never a smaller gap than the table has
    beyond = far is not None and not far["balanceable"] and far["deviation"] > (bal["max_deviation"] or 0)
    if bal.get("max_deviation") is not None or beyond:
        msg = "stratification: largest gap between a class's share and its target is "
        if beyond:
            msg += (f"{far['deviation']:.1%}, class {far['class']} in {far['part']} ({far['groups']} group(s), fewer "
                    f"than the {bal['balanceable_groups']} a class needs to be balanced); "
                    + (f"{bal['max_deviation']:.1%} among the {bal['n_balanceable_classes']} class(es) with enough "
                       f"groups" if bal["max_deviation"] is not None else "no class has enough groups to balance")
                    + f" (tolerance {cfg.tolerance:.0%})")
        else:
            msg += f"{bal['max_deviation']:.1%} (tolerance {cfg.tolerance:.0%})"
        if bal["within_tolerance"] and (bal["max_deviation"] or 0) > cfg.tolerance:
            msg += f", the least that whole rows of {bal['least_possible_class']} allow"
        if not bal["within_tolerance"]:     # which class, and where its rows went (a part drawn before train)
            w = bal["furthest"]
            msg += (f": {w['class']}, {w['share']:.0%} of its rows in {w['part']} against {w['target']:.0%}; see "
                    f"the report's Stratification table")
        (info if bal["within_tolerance"] else warn)(msg)
    if leaks.empty:
        info(f"leakage check: no {_leak_kinds(grouped, cfg.near_dup)} shared between sides"
             + ("" if cfg.near_dup else " (near-duplicate search off)"))
    else:
        print_leaks(leaks, group_col)
        if not cfg.allow_leaks:
            raise LeakageError(f"the split is contaminated: {len(leaks)} leak(s) between sides (listed above); "
                               f"nothing written. Rerun with --fix, or pass --allow-leaks to write it anyway")
        warn(f"{len(leaks)} leak(s) between sides written anyway (--allow-leaks)")
    if out.is_file() and own_earlier_files(out, "split", [out], placing=out):    # data/splits.csv every run: say so
        info(replacing_line(out, "an earlier split (its reports beside it too)", keep="--out FILE"))
    _write_set(df, out, cfg, summary, leaks, columns)
    with interruption_leaves(all_placed(f"{out} and its reports")):     # the set is in place: a stop leaves it whole
        info(f"wrote {out} ({summary['n_used']} rows in splits, {summary['n_rows'] - summary['n_used']} left out) "
             f"and {split_outputs(out)['report']}")


def _write_set(df: pd.DataFrame, out: Path, cfg: SplitConfig, summary: dict, leaks: pd.DataFrame,
               columns: list[str]) -> None:
    """The table and its reports, written as one set (outputs.output_set): the reports in a hidden folder beside
    `out`, the table under a temporary name there, then all renamed into place, the table last, and the earlier
    run's reports this run does not write removed. A run stopped while writing (Ctrl-C) leaves the earlier set
    whole, never a table beside another run's summary (its age bands, what later steps read) and report. The renames
    are journaled (outputs.placing_journal, removed after the last): a run stopped among them leaves the files it
    placed named there, which its rerun recognises as split's own (_check_other_output), not another step's in that
    folder."""
    final = split_outputs(out)
    # a kill -9 of an earlier run left temporary files of these names (only ours: --out's folder is the user's);
    # the table's temporary file holds one of its own while it is written (`.` + its name); output_set sweeps them
    # while this run holds the folder
    temps = [out.name, f".{out.name}", placing_journal(out).name] + [p.name for p in final.values()]
    with output_set(out.parent, out.name, earlier=[p.name for p in final.values()], temps=temps) as written:
        write_reports(df, written.stage / out.name, cfg, summary, leaks, columns)
        mf.write(df, written.beside(out.name))


def run_check(file, out=None, cfg: SplitConfig | None = None, fix: bool = False,
              workers: int = ParallelOptions.workers, given: set[str] | None = None) -> pd.DataFrame:
    """`imgcls split --check FILE [--fix]`: find leaks in an existing split; with fix, move and write to out. The
    fixed table's balance is reported against the shares its split asked for (_requested_shares): `given` names
    the cfg fields typed (the CLI's --val / --test; None: those not at their default), else the split's recorded
    ones, else the file's own. The caller's `cfg` is left as given (the targets are set on a copy)."""
    check_file_name_encoding()     # as every command: a non-ASCII name misread or left out
    check_arguments("run_check", required=("file",), cfg=(cfg, SplitConfig),
                    file=(file, PATH, "a path to a splits CSV"), out=(out, PATH, "a path to a CSV"))
    cfg = copy.deepcopy(cfg) if cfg is not None else SplitConfig()
    cfg.validate()
    check_workers(workers)
    file = Path(file)
    if out is not None and not fix:         # only --fix writes: the check alone wrote nothing there, unsaid
        raise UserError(f"--out {out} acts only with --check FILE --fix (where the repaired table goes); add --fix "
                        f"or drop --out")
    typed = set(set_options(cfg) if given is None else given)
    check_read_by_check(cfg, typed, file, fix)      # --seed, --folds; --val, --tolerance without --fix: unread
    shares = [k for k in ("val", "test") if k in typed]
    if fix:
        check_writable(out if out is not None else file, "file")
        if out is not None:
            _check_other_output(Path(out))
            if os.path.realpath(out) != os.path.realpath(file):     # --out FILE itself: the file checked, fixed
                _check_not_users_file(Path(out))
    _check_embedder(cfg)
    df = mf.load(file, mf.LayoutOptions(layout="manifest"), scan=False)
    labels_from = mf.label_col_record(df, None)     # its split's record, which the fixed table's summary keeps
    if fix:         # where the repaired table goes, before the scan and the near-duplicate pass
        check_output_location(Path(out) if out is not None else file, *mf.roots(df), images=mf.image_paths(df),
                              owns=False)
    if "split" not in df.columns:
        if not has_folds(df):
            raise UserError(f"{file} has no `split` column; make one with {NEW_SPLIT}")
        # a hand-made k-fold table (a fold column alone): its rows with a fold train, as train reads it (sides)
        df = df.assign(split=np.where(sides(df) != "", "train", ""))
    check_split_values(df, file)
    if "age_bands" in typed and not is_profile_table(df):      # --fix names a profile table's classes by them only
        raise UserError(f"--age-bands needs a profile table (mask / gender / age columns); {file} has none: drop "
                        f"--age-bands")
    if fix and "val" in typed and has_folds(df):
        # before the scan and the near-duplicate pass: the balance targets (_requested_shares) have no val to set
        raise UserError(f"--val {cfg.val}: {file} is a k-fold table (each fold validates in turn), so --fix measures "
                        f"its balance over its folds; drop --val")
    recorded = recorded_config(file)     # what its split recorded, read once: its group column, the --fix's targets
    if fix and shares and not has_folds(df):
        _check_typed_shares(cfg, file, typed, recorded)      # before the scan: a typed --val with the recorded --test
    if fix:     # the columns and age bands its balance and report read (its summary records the bands)
        cfg.stratify = _stratify_of(cfg, df, file, typed, recorded)
        _take_recorded_bands(cfg, typed, recorded)
        _check_bands_fit(cfg, df, file, typed, recorded)
    group_col = _group_col_of(cfg, df, file, typed, recorded)
    df = nfc_keys(df, (group_col, *cfg.stratify))
    df = mf.scan_images(df, workers=workers, max_pixels=cfg.max_pixels)
    df = df.assign(split=split_values(df))     # 'Train' is train, as train reads it
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
        # --group-col none: the groups were not read, so not said unshared
        info(f"leakage check of {file}: clean (no {_leak_kinds(bool(group_col), cfg.near_dup)} shared between sides"
             + ("" if group_col else f"; groups not read (--group-col {mf.NO_GROUPS})") + ")")
        if not fix:
            return df
    print_leaks(leaks, group_col)
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
    notes = [f"--check {file} --fix moved {moved} row(s); {len(leaks)} leak(s) before, {len(remaining)} after"]
    # the targets of the balance table: the shares the split asked for (_requested_shares); the folds the table has
    if has_folds(fixed):
        cfg.folds = max(2, len(fold_ids(fixed)))       # the folds it has: a gap (0, 2, 3) is no empty fold
    else:
        cfg.folds = None
    inferred = _requested_shares(cfg, file, fixed, typed, recorded)
    # units kept in train before a draw (kept_in_train) leave the shares, as for a new split (its units too)
    class_col = class_column(fixed, cfg.stratify)
    summary = summarize(fixed, cfg, notes, remaining, balance_units(fixed, group_col, near), class_col=class_col)
    summary["config"] = _split_settings(summary["config"], recorded, class_col, typed)
    if inferred:        # its config's val / test are these observed shares, which a later --check does not take
        summary["balance_targets_inferred"] = inferred
    summary.update(labels_from)
    fixed = mf.as_written(fixed)    # what is returned is the table written, in its column order
    _finish(fixed, out, cfg, summary, remaining, grouped=bool(group_col), group_col=group_col)
    return fixed


def _requested_shares(cfg: SplitConfig, file: Path, table: pd.DataFrame, given, recorded: dict) -> list[str]:
    """Set `cfg`'s val / test (the balance table's targets) to the shares the checked table's split asked for: each
    typed (`given`: --val / --test), else recorded by split in the summary beside `file` (`recorded`:
    recorded_config), else the table's own share of the rows it splits, said in one line: a split's own table measured
    against its observed 0.79 / 0.21 read a 1.7% gap as 0.7%. Returns the names set to the table's own shares: a --fix
    records them (balance_targets_inferred) beside its config's val / test, which are those shares, not any asked
    for."""
    used = sides(table) != ""
    names = ("test",) if cfg.folds else ("val", "test")     # a k-fold table's val is its fold 0
    asked = _recorded_shares(recorded, [k for k in names if k not in given])
    inferred, own = [], []
    for k in names:
        if k in given:
            continue
        if k in asked:
            setattr(cfg, k, asked[k])
        else:
            setattr(cfg, k, float((table.loc[used, "split"] == k).mean()))
            own.append(k)
            if getattr(cfg, k):     # a table with no test rows asked for none: nothing to say of it
                inferred.append(k)
    cfg.validate()      # a typed --val with a recorded --test: their sum below 1 still
    if inferred:
        info(f"--check: the balance targets for {' and '.join(inferred)} are {file}'s own shares ("
             + ", ".join(f"{k} {getattr(cfg, k):.3g}" for k in inferred) + f"): no split summary beside it records "
             f"the shares asked for; give {' '.join(f'--{k} F' for k in inferred)} to measure against them")
    return own


def _split_settings(conf: dict, recorded: dict, class_col: str, typed=()) -> dict:
    """The settings the summary of `--check FILE --fix` records: those of its own run (`conf`: summarize's) that the
    fix sets (CHECK_FIX_RECORDS, and a --group-col typed (in `typed`): the column the fix kept on one side, which a
    later --check of the fixed table reads, not the split's), and every other as the checked split recorded it
    (`recorded`: recorded_config), where it did: an in-place --fix recorded the check's default --seed and no
    --drop-ages, so predict's command to make the split again dropped the split's own. Its stratify is the columns the
    split drew its rows by, where recorded, else the one whose classes the fix's balance measured (`class_col`, which
    the balance records): a typed --stratify gender of a labelled table was recorded as drawn by gender, though its
    balance measured the labels."""
    own = {**conf, "stratify": [class_col]}
    fixed = set(CHECK_FIX_RECORDS) | ({"group_col"} & set(typed))
    return {k: v if k in fixed or k not in recorded else recorded[k] for k, v in own.items()}


def _recorded_shares(recorded: dict, names) -> dict[str, float]:
    """The shares among `names` (val, test) that a split asked for, as `recorded` (recorded_config: test always, val
    for a holdout)."""
    shares = {}
    for k in names:
        value = recorded.get(k)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1:
            shares[k] = float(value)
    return shares


def _check_typed_shares(cfg: SplitConfig, file: Path, typed, recorded: dict) -> None:
    """A typed --val (--test) of `--check FILE --fix` of a holdout table, with the --test (--val) its split recorded
    (_requested_shares' targets): their sum below 1, said before the scan and the near-duplicate pass."""
    asked = _recorded_shares(recorded, [k for k in ("val", "test") if k not in typed])
    if not asked:
        return
    total = sum(asked.values()) + sum(getattr(cfg, k) for k in ("val", "test") if k in typed)
    if total >= 1:
        raise UserError(" + ".join(f"--{k} {getattr(cfg, k)}" for k in ("val", "test") if k in typed)
                        + " + the " + " + ".join(f"--{k} {v:g}" for k, v in asked.items())
                        + f" that {file}'s split recorded leave nothing to train on; keep their sum below 1 "
                          f"(or type {' '.join(f'--{k} F' for k in asked)} too)")


def _take_recorded_bands(cfg: SplitConfig, typed, recorded: dict) -> None:
    """Without --age-bands typed, the age band edges (and --relabel-age's) its split recorded (`recorded`:
    recorded_config), set on `cfg`: --fix names a profile table's classes by them and records them, which train reads
    (manifest.recorded_age_bands); the default bands named a `--age-bands 30,50` split's classes and replaced its
    record, unsaid. --age-bands typed as recorded keeps the recorded --relabel-age (which put its rows in them)."""
    found = mf.age_band_fields(recorded)
    if "age_bands" in typed and found.get("age_bands") != [int(e) for e in cfg.age_bands]:
        return
    for k, edges in found.items():
        setattr(cfg, k, edges)


def _check_bands_fit(cfg: SplitConfig, table: pd.DataFrame, file: Path, typed, recorded: dict) -> None:
    """One line where the age band edges `--check FILE --fix` names a profile table's classes by and records (typed,
    else recorded, else the default: _take_recorded_bands) do not put its rows in the age_band they have: a table
    with no split summary beside it (or bands typed other than its split's) was named and recorded by bands its
    classes were not made with, unsaid. --relabel-age's edges where recorded (they put the rows in bands)."""
    if not is_profile_table(table) or "age_band" not in table.columns:     # --age-bands refused on other tables
        return
    age, band = (pd.to_numeric(table[c], errors="coerce") for c in ("age", "age_band"))
    rows = age.notna() & band.notna()
    edges = [int(e) for e in (cfg.relabel_age or cfg.age_bands)]
    age, band = age[rows].to_numpy(), band[rows].to_numpy()
    off = np.flatnonzero((age[:, None] >= np.array(edges)).sum(axis=1) != band)     # profiles.age_band, per row
    if not len(off):
        return
    a, b = age[off[0]], band[off[0]]
    why = "typed" if "age_bands" in typed else "its split recorded" if mf.age_band_fields(recorded) else \
        "the default: no split summary beside it records its split's"
    warn(f"--check: {len(off)} row(s) of {file} are not in the age_band the bands {','.join(map(str, edges))} "
         f"({why}) give them (e.g. age {a:g} in band {b:g}, not {profiles.age_band(a, edges)}), and the fixed "
         f"table's report and summary (which train reads) name its classes by those bands; give --age-bands with "
         f"the edges it was split by")


def _group_col_of(cfg: SplitConfig, table: pd.DataFrame, file: Path, typed, recorded: dict) -> str:
    """The column whose values --check keeps on one side ('': none): --group-col typed (a column `table` lacks is
    refused, not replaced; none: the file's `group` left as written), else the one the checked table's split kept
    together (split.leaks.kept_group_col)."""
    if cfg.group_col == mf.NO_GROUPS:
        return ""
    if "group_col" not in typed:
        return kept_group_col(file, table, recorded)
    return _resolve_group_col(table, cfg, "manifest", str(file))


def _stratify_of(cfg: SplitConfig, table: pd.DataFrame, file: Path, typed, recorded: dict) -> tuple[str, ...]:
    """The stratify columns whose classes `--check FILE --fix` balances (split.labels.class_column) and reports (its
    summary records the split's: _split_settings): those typed (--stratify label typed took the recorded artist; a
    column `table` lacks was dropped unsaid: each refused in one line), else those the checked table's split recorded
    (`recorded`: recorded_config), so `--check` of a table split by --stratify artist balances artists without
    --stratify typed again, and so does a --check of its fixed table."""
    if "stratify" not in typed:
        made = recorded.get("stratify")
        return tuple(c for c in made if isinstance(c, str)) if isinstance(made, list) else tuple(cfg.stratify)
    _check_stratify(table, cfg, str(file))
    if "label" in cfg.stratify and (mf.text_values(table["label"]) == "").all():
        raise UserError(f"--stratify label: {file} has no labels to balance; give the column its classes are in "
                        f"(e.g. --stratify artist), or drop --stratify to take the columns its split recorded")
    return tuple(cfg.stratify)
