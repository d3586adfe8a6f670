"""run_train: the data, heads and folds of a run, then the training loop (imgcls.train.loop) for each fold."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from imgcls.run_names import (CRASH_LINE, IMAGE_CACHE, LAST_PT, OOF_SCORE, PER_CLASS_CSV, REFUSED_LINE,
                              RESUME_REFUSED, RUN_CONFIG, RUN_PLAN, TRAIN_LOG, VAL_PREDICTIONS)
from imgcls.train.config import TrainConfig


def _heads_meta(df: pd.DataFrame, cfg: TrainConfig) -> tuple[list[dict], str, list[str], np.ndarray, np.ndarray]:
    """(heads, decode, final classes, targets [N, H], final index [N]). Profile heads (mask, gender, age_band in
    that order) decode with the one profile formula (imgcls.profiles.ProfileScheme) for any number of age bands;
    other multi heads decode to the product of their classes."""
    from imgcls import manifest as mf
    from imgcls.errors import UserError
    from imgcls.options import join
    from imgcls.profiles import ProfileScheme, bands_of_labels
    if cfg.heads == "single":
        col = cfg.target
        classes = mf.class_names(df[col])
        if len(classes) < 2:
            raise UserError(f"training needs at least 2 classes, column '{col}' has {len(classes)}; check the "
                            f"{'labels' if col == 'label' else '--target column'}")
        if col == "label" and set(ProfileScheme.HEADS) <= set(df.columns):
            # the profile formula's labels: every class of the competition's task, seen in this data or not, as a
            # multi-head run has (a single-head run on a set without old women was 'label (15)' beside the
            # multi-head 'label (18)': macro-F1s over other class sets, other tasks for `imgcls runs`)
            bands = bands_of_labels(df["mask"], df["gender"], df["age_band"], df[col])
            if bands:
                classes = [str(i) for i in range(ProfileScheme(bands).n_classes)]
        index = {c: i for i, c in enumerate(classes)}
        y = df[col].astype(str).map(index).to_numpy()
        return [{"name": col, "classes": classes}], "single", classes, y[:, None], y
    if cfg.target != "label":
        raise UserError(f"--target {cfg.target} trains one single-head model on that column; drop --heads multi "
                        f"(or --target to train the heads {join(cfg.head_columns)})")
    cols = list(cfg.head_columns)     # heads == "multi" (TrainConfig.validate checked the choice)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise UserError(f"--heads multi needs the label columns {', '.join(missing)} in the manifest "
                        f"(profile datasets have mask, gender, age_band); set --head-columns")
    ys = []
    for c in cols:
        v = pd.to_numeric(df[c], errors="coerce")
        if v.isna().any() or (v < 0).any() or (v != v.round()).any():
            raise UserError(f"column '{c}' has empty, negative or non-integer values; --heads multi needs class "
                            f"indices 0, 1, ...")
        ys.append(v.astype(int).to_numpy())
    y = np.stack(ys, 1)
    sizes = [int(v.max()) + 1 for v in ys]
    if tuple(cols) == ProfileScheme.HEADS and sizes[0] <= ProfileScheme().sizes[0] \
            and sizes[1] <= ProfileScheme().sizes[1]:
        # as many age bands as the labels were made with (split --age-bands 40: two), else every band of the
        # competition's three, seen in this data or not
        bands = bands_of_labels(y[:, 0], y[:, 1], y[:, 2], df["label"]) if "label" in df.columns else None
        scheme = ProfileScheme(bands or max(ProfileScheme().n_bands, sizes[-1]))
        sizes = list(scheme.sizes)    # every class of the scheme, seen in this data or not
        heads = [{"name": c, "classes": [str(i) for i in range(k)]} for c, k in zip(cols, sizes)]
        classes = [str(i) for i in range(scheme.n_classes)]
        return heads, "profile", classes, y, scheme.label(y[:, 0], y[:, 1], y[:, 2]).astype(int)
    import itertools
    heads = [{"name": c, "classes": [str(i) for i in range(k)]} for c, k in zip(cols, sizes)]
    table = list(itertools.product(*(range(k) for k in sizes)))
    from imgcls.model_meta import product_class
    classes = [product_class(t) for t in table]
    lookup = {t: i for i, t in enumerate(table)}
    return heads, "product", classes, y, np.array([lookup[tuple(r)] for r in y])


def check_data(cfg: TrainConfig, df: pd.DataFrame, say_target: bool = False, say_skipped: bool = False,
               src: str | None = None, scanned: bool = True, study=None,
               searched: dict | None = None) -> tuple[pd.DataFrame, tuple, list[int | None], list[tuple]]:
    """train's refusals of the data table `df` (manifest.load's, of cfg.src) with these options, before any image is
    decoded: its split / fold values, the --target column, its labels (none, a competition CSV's classes in a
    column of another name, fewer than 2 classes, every row unreadable), --heads multi's columns, --folds. Run by
    each run on the table as read (before its images are scanned) and on the scanned rows, and once by tune before
    its study opens (one line, not its first trial's error). `say_target`: the line on --target age of profile
    data (said with the table as read); `say_skipped`: the rows left out and why (of the scanned rows). Returns the
    usable rows, _heads_meta's (heads, decode, classes, targets, final) of them, the folds to train ([None]: one
    run without folds) and each fold's draw of the usable rows (train.data._assign_split's masks, which
    assign_split takes as `drawn`: the run trains with them, not a draw made again). `src`: the data as the user
    named it, which the lines say (cfg.src when not known). `scanned` False: the table as read, whose recorded scan
    (a row's error) the scan may undo (manifest.stale_rows: a file away when it was scanned, back since) and is not
    read: a class of such rows was 'at least 2 classes' before the scan could find them. `study`: tune's config,
    whose `imgcls tune` command the --folds fix names instead of `imgcls train` (as say_data_notes'); `searched`:
    the options its space draws, which it types not (_split_first)."""
    from imgcls import manifest as mf
    from imgcls.console import info, plural
    from imgcls.errors import UserError
    from imgcls.split.config import check_split_values
    from imgcls.train import data as tdata
    from imgcls.train.config import parse_folds
    src = cfg.src if src is None else src
    check_split_values(df, src)         # 'valid' is not read as a table without validation rows
    if not scanned:
        df = df.assign(error="")
    n_all = len(df)
    if cfg.heads == "single" and cfg.target not in df.columns and mf.holds_labels(df, cfg.target) == "recorded":
        # its labels were read from that column (split --label-col artist's table): the label task, as resolve_target
        # has it, the caller's table unchanged
        df = df.assign(**{cfg.target: df["label"]})
    if cfg.target not in df.columns:
        attrs = mf.class_columns(df) if cfg.target != "label" else []
        raise UserError(f"--target {cfg.target}: the data has no such column"
                        + (f" (columns with classes: {', '.join(attrs)})" if attrs else "")
                        + "; give a label or attribute column of the manifest")
    df[cfg.target] = mf.nfc_classes(df[cfg.target])     # NFD values (a macOS zip's) are their NFC class, as labels
    if cfg.heads == "single" and mf.holds_labels(df, cfg.target) == "read unlabeled":
        # the labels --label-col would read: the label task (TrainConfig.resolve_target), the caller's table unchanged
        df = df.assign(label=df[cfg.target])
    # the person (profile, group) as the class; an attribute (age: one per person in a set of few people) is not
    if cfg.target != "label" and mf.is_group_column(df, cfg.target) and \
            cfg.target not in (attrs := mf.class_columns(df)):
        raise UserError(f"--target {cfg.target}: each of its values is one group (the person split keeps on one "
                        f"side), so no validation row has a class training saw; train on a label or attribute column"
                        + (f" (columns with classes: {', '.join(attrs)})" if attrs else ""))
    if say_target and cfg.target == "age" and "age_band" in df.columns:     # a profile dataset's raw ages
        from imgcls.console import warn
        warn(f"--target age trains one class per age ({df['age'].nunique()} ages in {src}), which ensemble "
             f"--combine profile and predict --format mask cannot use (they take the age band): for the "
             f"competition's classes train --target age_band (the bands of split --age-bands)")
    single = cfg.heads == "single" and cfg.target == "label"
    hint = mf.label_column_hint(df, "--target", "trains on") if single else ""
    if hint:                            # a competition CSV whose classes are in a column of another name (artist)
        raise UserError(f"{src} has no labels (no column label, class or target); {hint}")
    labelled_kept = df[(mf.text_values(df[cfg.target]) != "").to_numpy() & mf.kept(df)]
    table, (df, left_out) = df, tdata.usable_rows(df, cfg.target)
    if not len(df) and left_out.get("unreadable"):
        # every row to train on unreadable (a split table older than a preprocess rerun: its files gone) is that
        # line, not 'needs at least 2 classes ... check the labels'
        mf.require_readable(labelled_kept, of=" to train on")
    if left_out.get("unreadable"):      # a side of the table's split all unreadable: that line, not a random draw
        pool = tdata.usable_rows(table, cfg.target, readable=False)[0]
        check_unreadable_sides(cfg, pool, mf.text_values(pool["error"]).to_numpy(), src=src, study=study,
                               searched=searched)
    if say_skipped and left_out:
        info(f"{plural(n_all - len(df), 'row')} skipped: " + ", ".join(f"{n} {why}" for why, n in left_out.items()))
    meta = _heads_meta(df, cfg)
    # a side of the table's split all left out (unlabeled, clean's keep=false): that line, not a random draw said as
    # 'no split column with val rows' nor 'check the split'; after _heads_meta's, whose 'at least 2 classes' its fix
    # (split again) would meet next
    check_left_out_sides(cfg, table, src=src, study=study, searched=searched)
    folds: list[int | None] = [None]
    if cfg.folds:
        have = tdata.fold_ids(df)
        if not have:
            split, train = _split_first(cfg, df, folds=True, src=src, study=study, searched=searched)
            raise UserError(f"--folds needs a `fold` column, which {src} lacks: run {split} first and "
                            f"{'train' if study is None else 'tune'} on its table: {train}")
        folds = parse_folds(cfg.folds) or have
        bad = [f for f in folds if f not in have]
        if bad:
            # `--folds 5` typed as timm / Kaggle scripts mean it (five folds) names fold 5 here
            count = bad == [len(have)] and len(folds) == 1
            raise UserError(f"fold(s) {', '.join(map(str, bad))} not in the data (folds present: "
                            f"{', '.join(map(str, have))})" + (f"; --folds names fold indices: --folds all trains "
                                                               f"all {len(have)} folds" if count else ""))
    # what each fold trains and validates on, as it will draw them (its lines are said then): a side with no image
    # is refused here, before the weights are loaded and the images decoded, not as the first fold starts
    by = cfg.class_column
    draws = [tdata._assign_split(df, fold, cfg.val_split, cfg.seed, by) for fold in folds]
    for fold, drawn in zip(folds, draws):
        train, val = tdata.assign_split(df, fold, cfg.val_split, cfg.seed, by=by, drawn=drawn, say=False)
        lost = ""
        # the draw of the table as read had both sides (its check before the scan): where the draw of the rows
        # with their unreadable images has them too, those images emptied the side, not the split
        if not (train.any() and val.any()) and left_out.get("unreadable") and _drawn_both_sides(cfg, df, fold, pool):
            gone = pool[mf.text_values(pool["error"]) != ""]
            lost = _lost_images(len(gone), mf.image_paths(gone.iloc[:1])[0], gone["error"].iloc[0])
        check_sides(cfg, df, fold, train, val, study=study, lost=lost, src=src, searched=searched)
    return df, meta, folds, draws


def check_unreadable_sides(cfg: TrainConfig, df: pd.DataFrame, errors: np.ndarray, src: str | None = None,
                           study=None, searched: dict | None = None, since_scan: bool = False) -> None:
    """The refusal of a side the table itself names (its split column's train or val rows, a fold of --folds)
    whose every image is unreadable: left out, a split column without val rows was a random --val-split draw made
    unasked, a fold without them 'check the split'. `df`: the rows to train on but for their images; `errors`: each
    one's reason, '' where it can be read; `since_scan`: found as the images were decoded (read at the scan).
    `src`, `study`, `searched`: _split_first's."""
    from imgcls import manifest as mf
    from imgcls.errors import UserError
    from imgcls.train import data as tdata
    folds = _table_sides(cfg, df)
    if folds is None:
        return          # a random --val-split draw is made of the readable rows
    bad = errors != ""
    for fold in folds:
        train, val = tdata._assign_split(df, fold, cfg.val_split, cfg.seed)
        for side, rows in (("training", train), ("validation", val)):
            if not rows.any() or not bad[rows].all():
                continue
            first = int(np.flatnonzero(rows)[0])
            n = int(rows.sum())
            named = _side_named(side, fold, n, "images")
            split, again = _split_first(cfg, df, folds=bool(cfg.folds), src=src, study=study, searched=searched)
            raise UserError(f"no {side} images{' in fold ' + str(fold) if fold is not None else ''}: {named} are "
                            f"all unreadable{' now (read at the scan, broken or deleted since)' if since_scan else ''}"
                            f" (e.g. {mf.image_paths(df.iloc[[first]])[0]}: {errors[first]}); replace those files, "
                            f"or split the readable images again: {split}, then {again}")


def _table_sides(cfg: TrainConfig, table: pd.DataFrame) -> list[int | None] | None:
    """The sides a table names itself, for check_unreadable_sides / check_left_out_sides: the folds of --folds it has
    (one not there: check_data's line), [None] for its split column's train / val rows; None where a random
    --val-split draw is made."""
    from imgcls.split.config import parse_folds
    from imgcls.train import data as tdata
    if cfg.folds:
        have = tdata.fold_ids(table)
        return [f for f in parse_folds(cfg.folds) or have if f in have]
    return [None] if tdata.has_val_split(table) else None


def _side_named(side: str, fold: int | None, n: int, what: str) -> str:
    """How a side's refusal names its `n` rows or images (`what`): the split column's train / val ones, a fold's (the
    validation side), the other folds' (its training side)."""
    if fold is None:
        return f"the split column's {n} {'val' if side == 'validation' else 'train'} {what}"
    return f"fold {fold}'s {n} {what}" if side == "validation" else f"the other folds' {n} {what}"


def check_left_out_sides(cfg: TrainConfig, table: pd.DataFrame, src: str | None = None, study=None,
                         searched: dict | None = None) -> None:
    """The refusal of a side the table itself names (its split column's train or val rows, a fold of --folds or
    the other folds) where train.data.usable_rows leaves out every row (unlabeled, dropped by clean: keep=false,
    left out by split), as check_unreadable_sides' of a side all unreadable: left out, the split column without val
    rows was a random --val-split draw made unasked, without train rows 'check the split', a fold 'not in the data'
    (--folds all: not trained, unsaid). `table`: the rows as read; `src`, `study`, `searched`: _split_first's."""
    from imgcls import manifest as mf
    from imgcls.errors import UserError
    from imgcls.train import data as tdata
    folds = _table_sides(cfg, table)
    if folds is None:
        return
    for fold in folds:
        for side, mask in zip(("training", "validation"), tdata._assign_split(table, fold, cfg.val_split, cfg.seed)):
            rows = table[mask]
            usable, why = tdata.usable_rows(rows, cfg.target)
            if not len(rows) or len(usable):
                continue
            named = _side_named(side, fold, len(rows), "rows")
            label = set(why) == {"unlabeled" if cfg.target == "label" else f"no {cfg.target}"}
            split, again = _split_first(cfg, table, folds=fold is not None, src=src, study=study, searched=searched)
            raise UserError(f"no {side} images{' in fold ' + str(fold) if fold is not None else ''}: {named} are all "
                            f"left out (" + ", ".join(f"{n} {k}" for k, n in why.items())
                            + f"; e.g. {mf.image_paths(rows.iloc[:1])[0]}); {'label them, or ' if label else ''}split "
                            f"the usable images again: {split}, then {again}")


def _lost_images(n: int, path: str, error: str, since_scan: bool = False) -> str:
    """check_sides' `lost`: the `n` images left out as unreadable, one of them (`path`) with its `error`;
    `since_scan`: found as the images were decoded (read at the scan), else by the scan."""
    return (f"the {n} {'image(s) unreadable since the scan' if since_scan else 'unreadable image(s)'} ("
            f"{'broken or deleted; ' if since_scan else ''}e.g. {path}: {error})")


def check_sides(cfg: TrainConfig, df: pd.DataFrame, fold: int | None, train: np.ndarray, val: np.ndarray,
                study=None, lost: str = "", src: str | None = None,
                searched: dict | None = None) -> None:
    """The refusal of a fold (None: the run) that trains or validates on no image (train.data.assign_split's
    masks `train`, `val` of `df`); `lost`: the images left out of `df` as they were decoded, which the line then
    names as the cause. `src`, `study`, `searched`: _split_first's, for the fix _no_groups_split names."""
    from imgcls import manifest as mf
    from imgcls.errors import UserError
    if train.any() and val.any():
        return
    if lost:
        raise UserError(f"no {'training' if not train.any() else 'validation'} images"
                        f"{' in fold ' + str(fold) if fold is not None else ''} once {lost} are left out; replace "
                        f"those files")
    refusal = UserError(f"no {'training' if not train.any() else 'validation'} images"
                        f"{' in fold ' + str(fold) if fold is not None else ''}; check the split")
    # a CSV's `group` column of another meaning (a super-class), read as the groups unasked, kept a --val-split draw
    # on one side (split --group-col none reads no groups): said where the same draw without them has both sides,
    # not of a fold or split column's empty side, which groups have no part in
    if "group" in df.columns and _drawn_both_sides(cfg, df, fold, df.assign(group="")):
        with mf.guessed_groups_named(df, _no_groups_split(cfg, df, src, study, searched)):
            raise refusal
    # exact copies (the scan's sha256) go to one side whole, at least one unit of each class to train: a class all
    # copies of one picture never validates; said where the same draw without those links has both sides
    hashes = mf.content_hashes(df)
    if pd.Series(hashes[hashes != ""]).duplicated().any() and _drawn_both_sides(cfg, df, fold, df.assign(sha256="")):
        from imgcls.console import plural
        distinct = len(set(hashes[hashes != ""])) + int((hashes == "").sum())
        raise UserError(f"no {'training' if not train.any() else 'validation'} images: the {len(df)} images are "
                        f"{plural(distinct, 'distinct picture')} (exact copies: the same sha256), and a "
                        f"--val-split draw keeps copies on one side whole and at least one unit of each class in "
                        f"train; add distinct images of each class (a copy of a training image validates nothing)")
    raise refusal


def _drawn_both_sides(cfg: TrainConfig, df: pd.DataFrame, fold: int | None, rows: pd.DataFrame) -> bool:
    """Whether the run's random --val-split draw of `df` (no `fold`, no split column's val rows), one side of which
    came out empty, has both sides when made of `rows` instead: `df` without what linked its images (a `group`
    column's, exact copies' sha256) or with the images left out as unreadable. check_data's and check_sides' test
    before they name that as the cause; False for a fold or a split column, whose sides no draw decides."""
    from imgcls.train import data as tdata
    if fold is not None or tdata.has_val_split(df):
        return False
    return all(side.any() for side in tdata._assign_split(rows, None, cfg.val_split, cfg.seed, cfg.class_column))


def say_data_notes(cfg: TrainConfig, df: pd.DataFrame, src: str, study=None,
                   searched: dict | None = None) -> None:
    """The lines on what validates and the data's warnings (no split column, a leak between the split's sides, a
    class of one image, an unused --val-split) of the usable rows `df` (check_data's) with these options; `src`:
    the data as the user named it. Said by each run as its images are scanned, and by tune before its study opens,
    on the table as read (tune._check_data): inside its console.said_once a trial then says none of those again.
    `study`: tune's config, whose `imgcls tune` command the fixes name instead of `imgcls train`; `searched`: the
    options its space draws, which that command types not (_split_first)."""
    from imgcls.console import info, warn
    from imgcls.options import shown
    from imgcls.train import data as tdata
    # without --folds (check_data checked those), what validates
    if not cfg.folds and len(have := tdata.fold_ids(df)) > 1 and tdata.has_val_split(df):
        info(f"the data has {len(have)} folds (fold column): this trains one model, validated on the split "
             f"column's val rows (split --folds: fold 0); --folds all trains one per fold (out-of-fold predictions "
             f"for ensemble)")
    elif not cfg.folds and not tdata.has_val_split(df):
        split, train = _split_first(cfg, df, src=src, study=study, searched=searched)
        drawn = (f"no split column with val rows: validating on a random stratified {cfg.val_split:g} of the images, "
                 f"rows sharing a group, content hash, source_path or clean's dup_group kept on one side, but near "
                 f"copies clean did not link can sit on both")
        # the same warning in each tune trial (said once): its command carries the options that act in that trial
        warn(f"{drawn}; for a leak-free split: {split}, then {train}", key=drawn)
    if (cfg.folds or tdata.has_val_split(df)) and (note := _leak_note(df, src)):
        warn(note)
    by = cfg.target
    if cfg.heads == "multi":    # the class train scores: a product decode's heads joined ('1_0'), not the label
        _, _, classes, _, final = _heads_meta(df, cfg)
        df, by = df.assign(_scored_class=[classes[i] for i in final]), "_scored_class"
    if single := tdata.single_image_classes(df, by, bool(cfg.folds)):
        where = shown([f"{c}, in {s}" for c, s in single.items()], 8, sep="; ")
        warn(f"{len(single)} class(es) with a single image ({where}): "
             f"one image cannot both train and validate, so the class scores F1 0 in the validation macro-F1 "
             f"({tdata.single_image_sides(single.values())}); add images of it, or leave it out (its folder, or "
             f"keep=false on its manifest row)")
    if cfg.val_split != TrainConfig.val_split and (cfg.folds or tdata.has_val_split(df)):
        warn(f"--val-split {cfg.val_split:g} is not used: the data's "
             + ("fold column" if cfg.folds else "split column's val rows") + " decide what validates")


def _split_first(cfg: TrainConfig, df, folds: bool = False, src: str | None = None,
                 study=None, searched: dict | None = None,
                 no_groups: bool = False) -> tuple[str, str]:
    """The `imgcls split` command that splits this run's data, and the `imgcls train` one that trains on its
    table, as typed, each with its Python call (options.python_too): a bare `imgcls split` reads only the
    pipeline's default input (not a train.csv given here), and a --target column (DACON's artist) is what split
    stratifies on and the table keeps for train. The split draws --val-split's share to validate (without
    `folds`) with --seed; the train command carries the run's other options set that act (--model, --heads,
    --head-weights, --epochs, ...: options.typed_text's spelling), so it trains what this run would, but its
    --name / --exist-ok (this run's folder). `folds`: a 5-fold split, all of whose folds train. `src`: the data
    as the user named it (cfg.src, made absolute for config.yaml, when not known). `study`: tune's TuneConfig, the
    second command then `imgcls tune` on the split's table of a new study, STUDY-split (STUDY itself resumed on other
    rows than its trials scored on is refused, tune._check_rows), with the tune command's own options set that act
    (--space, --metric, --out, --trials, ...: the study's, tuned again as asked) and no option no tune flag sets
    (train.config.NOT_TRIAL_FLAGS) nor --plots (each trial's is --trial-plots'). `searched`: the options the study's
    space draws, each with its values (tune.space.Space.drawn): those are not typed in that command (tune refuses a
    typed option its space varies), and the split stratifies on every target the space draws, not on the one this
    trial (or tune's check before its study) drew: one split, the same fix in every trial.
    `no_groups`: the split reads no groups (--group-col none: a CSV's `group` of another meaning, _no_groups_split)."""
    from imgcls.console import sh
    from imgcls.options import acts, cli_fields, python_too, set_options, specs, typed_text
    from imgcls.pipeline import PIPELINE, has_default_input
    from imgcls.split.config import SplitConfig
    src = cfg.src if src is None else src
    splits = dict(PIPELINE)["splits"]
    # a split's table (a CSV with a split column) is split again from the default input, never from itself; where
    # there is none (DACON's train.csv split with no data/ stages), the table is split into a file beside it, as
    # split writes over no file it reads
    again = Path(src).is_file() and "split" in df.columns
    out = None
    if again and not has_default_input("split"):
        again = False
        src = Path(src)
        splits = out = str(src.with_name(f"{src.stem}_{'folds' if folds else 'val'}{src.suffix}"))
    searched = searched or {}
    strata = [str(t) for t in searched.get("target", [cfg.target])]
    by_label = strata == ["label"]      # split's default
    # the draw as this run asked it: its --val-split (split's --val) and --seed
    val = not folds and cfg.val_split != SplitConfig.val
    seed = cfg.seed != SplitConfig.seed
    split = " ".join(x for x in ("imgcls split", "" if again else sh(src), "--folds 5" if folds else "",
                                 f"--val {cfg.val_split:g}" if val else "", f"--seed {cfg.seed}" if seed else "",
                                 f"--out {sh(out)}" if out else "") if x) \
        + ("" if by_label else f" --stratify {sh(','.join(strata))}") + (" --group-col none" if no_groups else "")
    split_cfg = ", ".join(x for x in ("folds=5" if folds else "", f"val={cfg.val_split!r}" if val else "",
                                      f"seed={cfg.seed!r}" if seed else "",
                                      "" if by_label else f"stratify={strata!r}",
                                      "group_col='none'" if no_groups else "") if x)
    split_args = ", ".join(x for x in ("" if again else repr(str(src)), repr(out) if out else "",
                                       f"cfg=SplitConfig({split_cfg})" if split_cfg else "") if x)
    step = "train" if study is None else "tune"
    skip = {"folds", "val_split", "name", "exist_ok", *searched}    # the table's draw, this run's folder
    own = []        # the tune command's own options set (--space, --metric, --out, --trials, ...), as they act
    if study is not None:
        from imgcls.train.config import NOT_TRIAL_FLAGS
        skip.update(NOT_TRIAL_FLAGS, ["plots"])
        own = [n for n in set_options(study, cli_fields(type(study)))
               if n != "study" and acts(study, n) and getattr(study, n) is not None]
    # another study: `--study STUDY` on the split's table is refused, its rows not the ones STUDY's trials scored on
    name = None if study is None else f"{study.study}-split"
    # a None is typed where it means the option's off value (oversample=None: --oversample off, not left out to
    # train with auto's median); no other option set to None is (options.cli_words)
    table = specs(TrainConfig)
    carried = [n for n in set_options(cfg, cli_fields(TrainConfig))
               if n not in skip and acts(cfg, n) and (getattr(cfg, n) is not None or table[n][1].off)]
    train = " ".join(x for x in (f"imgcls {step} {sh(splits)}", typed_text(cfg, carried, quote=sh),
                                 "--folds all" if folds else "", "" if study is None else f"--study {sh(name)}",
                                 typed_text(study, own, quote=sh) if own else "")
                     if x)
    train_args = ", ".join([f"src={splits!r}", *(f"{n}={getattr(cfg, n)!r}" for n in carried),
                            *(["folds='all'"] if folds else [])])
    tune_args = "".join(f"{n}={getattr(study, n)!r}, " for n in own)
    call = f"run_train(TrainConfig({train_args}))" if study is None else \
        f"run_tune(TuneConfig(study={name!r}, {tune_args}train=TrainConfig({train_args})))"
    return (python_too(split, f"run_split({split_args})"), python_too(train, call))


def _no_groups_split(cfg: TrainConfig, df, src: str | None = None, study=None,
                     searched: dict | None = None) -> str:
    """The way out of a competition CSV's `group` column read as the groups (train reads it as given): split it with
    --group-col none and train on that table (_split_first's commands, of these arguments)."""
    split, train = _split_first(cfg, df, src=src, study=study, searched=searched, no_groups=True)
    return f"split without them: {split}, then {train}"


def _age_bands(df: pd.DataFrame, src, heads: list[dict], decode: str) -> list[int] | None:
    """The age band edges of a profile table's `age_band` values (ModelMeta.age_bands; None: no age / age_band
    columns, or bands not made by edges). A table is read with the edges recorded beside it
    (manifest.recorded_age_bands: split's summary, --age-bands, where rows put in by --relabel-age are of those bands
    too; clean_summary.json / preprocess.json, the bands their profile folders were read with or their input's
    record), else the default bands where they fit every row."""
    from imgcls.profiles import bands_of_labels, edges_of_rows
    if not {"age", "age_band"} <= set(df.columns):
        return None
    band = pd.to_numeric(df["age_band"], errors="coerce")
    if band.isna().any():           # an emptied or hand-written band: not made by edges
        return None
    if decode == "profile":
        n = len(heads[2]["classes"])
    else:
        n = (bands_of_labels(df["mask"], df["gender"], band, df["label"])
             if {"mask", "gender", "label"} <= set(df.columns) else None) or int(band.max()) + 1
    from imgcls.manifest import recorded_age_bands
    conf = recorded_age_bands(src) if src is not None else {}
    bands, relabel = conf.get("age_bands"), conf.get("relabel_age")
    told = [e for e in (relabel, bands) if isinstance(e, list) and all(isinstance(x, int) for x in e)]
    edges = edges_of_rows(df["age"], band, n, told)
    if edges is not None and relabel and bands and list(edges) == relabel and len(bands) == len(relabel):
        edges = tuple(bands)        # the classes are split's --age-bands; --relabel-age only moved rows into them
    return None if edges is None else list(edges)


def _leak_note(df: pd.DataFrame, src) -> str:
    """A split table's sides (split / fold columns, or a fold column alone) sharing a group (of the column its split
    kept together: split.leaks.kept_group_col), content hash, source image or clean's dup_group, as `split --check`
    finds them (a hand-edited table: imgcls split writes none): validation would score people or images the model
    trains on. One warning naming the first and the repair; '' for none. Oversampled copies are assign_split's to
    say."""
    from imgcls.console import sh
    from imgcls.options import python_too
    from imgcls.split.leaks import check_leaks, kept_group_col, nfc_keys, said_kind
    col = kept_group_col(src, df)       # the column its split kept together, its keys NFC, as split --check reads them
    leaks = check_leaks(nfc_keys(df, (col,)), col)
    leaks = leaks[leaks["kind"] != "augmented_from"]
    if leaks.empty:
        return ""
    n, w = len(leaks.drop_duplicates(["kind", "key"])), leaks.iloc[0]
    return (f"{n} leak(s) between the split's sides ({said_kind(w['kind'], col)} {w['key']}: {w['path_a']} in "
            f"{w['side_a']}, {w['path_b']} in {w['side_b']}): validation scores images linked to ones the model "
            f"trains on; repair the table with "
            + python_too(f"imgcls split --check {sh(src)} --fix --out FIXED.csv",
                         f"imgcls.split.run_check({str(src)!r}, 'FIXED.csv', fix=True)")
            + ", and train on FIXED.csv")


def decode_processes() -> int:
    """Processes that decode image files (the cache build, or DataLoader workers reading files): min(8, cores)."""
    import os
    return min(8, os.cpu_count() or 1)


def default_workers(device_type: str, cache: str) -> int:
    """DataLoader workers when --workers is not given. Training on the CPU from the decoded-image cache: 0 (the
    augmentation of a cached uint8 image costs < 1 ms and the model already uses every core, so worker processes only
    compete with it: 1.09x vs 0.95x of the timm loop per epoch measured with 0 vs 2 workers on 2 cores). Else
    min(8, cores): file decoding, or a GPU waiting for CPU-side batches."""
    if device_type == "cpu" and cache in ("ram", "disk"):
        return 0
    return decode_processes()


def _check_up_front(cfg: TrainConfig, resume, typed, record: TrainConfig | None = None) -> tuple | None:
    """What a user can get wrong that no torch / timm import is needed to see, said first: the options but those
    of timm's optimizer registry, the run name, the data path (none given: the pipeline's default input), a --name
    folder that is taken, an --out that cannot be written or holds another step's output, and a --weights file or
    --init-from run that is not there (or a k-fold set), a --tracker whose package is not installed, a resume's
    option that cannot change; then those options and --model (timm), all before init_distributed starts torchrun's
    process group. `typed`: the flags given (check_typed), where known; `record`: a resume's config.yaml, read by
    _given_over_record. Returns, for a resume, (the run folder, its record, the config it continues with:
    resume_config's, the folder as typed: absolute, its symlinks kept), which _run_train goes on with; else None."""
    from imgcls import manifest as mf
    from imgcls.fsutil import check_writable
    from imgcls.options import check_typed
    from imgcls.outputs import refuse_other_output
    from imgcls.train.rundir import check_run_dir_free, check_run_name
    typed = list(typed or ())
    later = TrainConfig.REGISTRY_CHECKED
    cfg.validate(registry=False)
    check_typed(cfg, [n for n in typed if n not in later])
    if cfg.src is None:          # a resumed run's record names its data
        from imgcls.pipeline import default_input
        cfg.src = str(default_input("train"))
    if resume is None:
        check_run_name(cfg.name)
        mf.check_source_exists(TrainConfig.anchored({"src": cfg.src})["src"])   # named as anchor_paths will
        if cfg.name is not None:
            check_run_dir_free(Path(cfg.out), cfg.name, cfg.exist_ok)
        check_writable(cfg.out)
        refuse_other_output(cfg.out, "train", own=("tune",),     # a folder of runs: a tune study is one too
                            instead=f"a folder of runs, e.g. {TrainConfig.out}")
        if cfg.weights is not None:
            from imgcls.weights import weight_file
            weight_file(cfg.weights)     # the file resolve_weights takes: found before timm's import and the data
        if cfg.init_from:
            from imgcls.train.rundir import init_path
            init_path(cfg.init_from)     # the run init_checkpoint reads (torch) once timm knows the model
    if cfg.tracker:
        from imgcls.track import installed_trackers
        installed_trackers(cfg.tracker)      # a package not installed; one that does not import: make_trackers
    resumed = None
    if resume is not None:       # an option the resume changes (another --model, even one timm does not know) is
        from imgcls.train.config import resume_config, resume_folder, resume_record     # refused 'cannot change'
        import os
        typed_at = Path(os.path.abspath(resume))    # its symlinks kept: a relative out recorded through one
        resume = resume_folder(resume)       # `--resume .` from inside the run: named by its folder, not ''
        if record is None:      # read once: resolve, resume_config, check_resume_src, _data
            record = TrainConfig.load(resume_record(resume))
        resumed = (resume, record, resume_config(cfg, resume, record), typed_at)   # before timm's name checks
    cfg.validate_registry()
    check_typed(cfg, [n for n in typed if n in later])
    from imgcls.weights import check_model_name
    check_model_name(cfg.model)      # timm, imported by the registry's check: before torchrun's process group
    return resumed


def _given_over_record(cfg: TrainConfig, resume, typed) -> tuple[TrainConfig, TrainConfig]:
    """The config a resume continues with, as `imgcls train --resume RUN` builds it (TrainConfig.resolve: the
    record, the flags given laid over it): here the options `cfg` sets to other than their defaults, and `typed`.
    A Python caller's fresh TrainConfig() took its defaults as given: the record's plots=False became plots=True,
    its workers, device and trackers the defaults', and any other recorded option it left at its default was
    refused as changed. A config TrainConfig.resolve(resume=RUN) gave comes out the same. Returns it and the run's
    record (its config.yaml, read once: _check_up_front compares with it)."""
    from imgcls.options import set_options
    from imgcls.train.config import resume_folder, resume_record
    record = TrainConfig.load(resume_record(resume_folder(resume)))
    names = dict.fromkeys([*set_options(cfg), *(n for n in (typed or ()) if hasattr(cfg, n))])
    return TrainConfig.resolve({n: getattr(cfg, n) for n in names}, resume=resume, validate=False,
                               record=record), record


def run_train(cfg: TrainConfig, resume: str | Path | None = None, stop_after: int | None = None,
              callbacks=None, track_group: str | None = None, typed=None, searched: dict | None = None,
              study=None) -> Path:
    """Train (every fold with folds='all'); returns the run folder, absolute (os.path.abspath: a notebook that
    changes folder keeps it, as run_predict's summary names its files). `resume`: a run folder to continue, as
    `imgcls train --resume RUN` does: the options of `cfg` set to other than their defaults (and those `typed`) are
    laid over the run's config.yaml, as that command's flags are; the rest are the recorded ones
    (run_train(TrainConfig(), resume=RUN) continues the run as it was recorded).
    `stop_after`: stop after that many epochs in total (as if interrupted; `resume` continues).
    `callbacks`: imgcls.train.callbacks.Callback objects, called on rank 0 only; an exception one raises propagates
    out of run_train after the finished epochs' last.pt / metrics.csv are written. `track_group`: a name several
    run_train calls share for cfg.tracker (tune's study: MLflow nests them under one parent run, W&B groups them).
    `study`: imgcls.tune's TuneConfig whose trial this is, as run_tune passes it (not a study's name: that is
    TuneConfig(study=...)'s; None for a run of its own): the data's warnings then name `imgcls tune` with its
    options and a new --study as their fix, not `imgcls train`; `searched`: the options its space draws, each with
    its values, which that fix does not type.
    --deterministic switches torch's deterministic algorithms on for the run only (restored afterwards).
    `typed`: the options the user gave (TrainConfig.resolve's overrides; the CLI's flags): one given at its default
    where it would not act is refused too (imgcls.options.check_typed).
    The caller's `cfg` is left as given (a notebook trains it again after `cfg.seed = 1`): what the run resolves
    (its name, the data's path, img_size, device_used, ...) goes into a copy, recorded in the run's config.yaml."""
    from imgcls.fsutil import check_file_name_encoding
    check_file_name_encoding()     # as every command: a non-ASCII name misread or left out
    import copy

    from imgcls.console import same_on_every_process
    from imgcls.options import PATH, SRC_PATH, check_arguments, whole_argument
    from imgcls.train.callbacks import check_callbacks
    check_arguments("run_train", required=("cfg",), cfg=(cfg, TrainConfig))
    check_arguments("TrainConfig", src=(cfg.src, PATH, SRC_PATH))
    check_callbacks("run_train", callbacks)
    _check_study(study)
    # stop_after=0 or -1 trained an epoch, 1.5 two, '1' was a TypeError once the run folder was made
    stop_after = whole_argument("run_train", "stop_after", stop_after, lo=1, or_none=True)
    cfg = copy.deepcopy(cfg)
    # under torchrun every process checks the same options and files (and gets rank 0's refusal of the run folder or
    # cache): a refusal is said once
    with same_on_every_process():
        record = None
        if resume is not None:
            cfg, record = _given_over_record(cfg, resume, typed)
        resumed = _check_up_front(cfg, resume, typed, record)
        import torch
        state = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                 torch.backends.cudnn.benchmark)
        try:
            return Path(os.path.abspath(_run_train(cfg, resumed, stop_after, callbacks, track_group, searched,
                                                       study)))
        finally:
            torch.use_deterministic_algorithms(state[0], warn_only=state[1])
            torch.backends.cudnn.benchmark = state[2]


def _check_study(study) -> None:
    """run_train's `study`, before any work: None or imgcls.tune's TuneConfig, whose options its fix lines type
    (_split_first). A study's name (a str) or a dict passed on, unsaid, to fail inside a data warning's fix line
    ("fields() must be called with a dataclass type or instance"), the run folder made. TuneConfig is read from
    sys.modules, not imported (imgcls.tune imports train): a TuneConfig exists only once imgcls.tune is imported.
    A TypeError naming what to pass, as check_arguments' of `cfg`."""
    import sys
    if study is None or isinstance(study, getattr(sys.modules.get("imgcls.tune"), "TuneConfig", ())):
        return
    from imgcls.options import a_type
    fix = ("pass TuneConfig(**d)" if isinstance(study, dict) else
           "leave it out (a study's name is TuneConfig(study=...)'s, run by imgcls.tune.run_tune)")
    raise TypeError(f"run_train's study must be imgcls.tune's TuneConfig, as run_tune passes it, or None (got "
                    f"{a_type(study)}); {fix}")


def _run_train(cfg: TrainConfig, resumed: tuple | None, stop_after: int | None, callbacks=None,
               track_group: str | None = None, searched: dict | None = None, study=None) -> Path:
    """run_train's work once _check_up_front passed; `resumed`: what it returned for a resume (the run folder, its
    record, the config it continues with and the folder as --resume named it), None for a new run."""
    import torch
    from imgcls import manifest as mf
    from imgcls.console import info
    from imgcls.device import resolve_device
    from imgcls.errors import UserError
    from imgcls.fsutil import check_output_location, check_writable
    from imgcls.io import DECODE_VERSION
    from imgcls.model_meta import ModelMeta
    from imgcls.preprocess.outputs import applied as preprocess_applied, letterboxed
    from imgcls.train import data as tdata
    from imgcls.train.dist import init_distributed
    from imgcls.train.rundir import (RunLock, check_run_name, claim_run_dir, finished, finished_said,
                                     planned_folds, record_plan, set_fold_dirs, unclaim_run_dir, warn_stray_folds)
    from imgcls.weights import data_config

    dist = init_distributed(cfg.device)
    # every process has passed _check_up_front before rank 0 makes what those checks read (the run folder it claims):
    # a process still checking found the folder taken, refused alone and left the others' collectives out of step (a
    # hang). init_process_group is no such meeting for a process group kept from an earlier run in these processes
    # (tune's trials), nor for NCCL, which connects lazily
    dist.barrier()
    resume = None
    if resumed is not None:
        resume, record, cfg, typed_at = resumed
        stray = set_fold_dirs(resume)[1]
        if stray and dist.main:     # a fold_2 copied into a 2-fold set: the resume trains none, as predict takes none
            warn_stray_folds(resume, stray, trained=finished(resume))
        if finished(resume):                 # said before the data is read and decoded (minutes on a large set)
            _record_finished(cfg, resume, record, dist, typed_at)     # but data given at another path, or the folder it
                                                            # was renamed or moved to, is recorded first
            if dist.main:
                info(f"{resume.name}: already finished, nothing to resume ({finished_said(resume)})")
            dist.end()
            return resume
    src_named = cfg.src          # as recorded (or given again) before anchor_paths: what a refusal names
    if resume is not None:       # a first-epoch run's relative src read elsewhere: refused before the data is read
        from imgcls.train.rundir import check_resume_src
        check_resume_src(resume, src_named, record)
        check_run_name(cfg.name)     # the resumed folder's name (a new run's --name: _check_up_front)
    cfg.anchor_paths()       # config.yaml names the data and starting weights from any working folder
    cfg.validate()
    if dist.main and cfg.tracker:
        from imgcls.track import make_trackers     # one that does not import fails here, before any data is read
        callbacks = make_trackers(cfg.tracker, cfg, group=track_group) + list(callbacks or [])
    if resume is not None:       # a new run's --out: _check_up_front
        check_writable(resume)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    device = resolve_device(cfg.device)
    if dist.on and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    # workers and mixed precision resolved for this machine: config.yaml records what ran (workers_used, amp_used)
    # apart from what was asked (workers, amp; None: not given), which a reused record (--config, --resume, tune)
    # resolves again on its machine; a given --workers also bounds the decoding processes
    io_workers = decode_processes() if cfg.workers is None else max(1, cfg.workers)
    # a cache not given is ram or disk (tdata.plan_cache): cached alike
    cfg.workers_used = default_workers(device.type, cfg.cache or "ram") if cfg.workers is None else cfg.workers
    cfg.amp_used = device.type == "cuda" if cfg.amp is None else cfg.amp
    cfg.device_used = f"cuda:{torch.cuda.current_device()}" if device.type == "cuda" and device.index is None \
        else str(device)       # what ran (cpu, cuda:0), not what was asked (--device auto)
    if device.type == "cuda" and not cfg.deterministic:
        # cuDNN autotuning, as timm's train.py; training shapes are static then (the Trainer drops the partial
        # last batch), so each convolution is tuned once (run_train restores the flag afterwards)
        torch.backends.cudnn.benchmark = True
    from imgcls.train.optim import check_optimizer_device
    check_optimizer_device(cfg, device)

    # the starting weights' source (--init-from RUN, else file > package > cache > hub): none reachable is one line
    # before the data is read
    from imgcls.weights import WeightSource, resolve_weights
    if resume is not None and (resume / LAST_PT).is_file():
        # every weight is in last.pt: the starting weights (a --weights file moved since, a hub source now
        # offline, an --init-from run deleted) are not needed again; a k-fold run's next fold still starts from them
        source = None
    elif cfg.init_from:
        from imgcls.train.rundir import init_checkpoint
        source = WeightSource("run", str(init_checkpoint(cfg.init_from, cfg.model)))
    else:
        source = resolve_weights(cfg.model, cfg.pretrained, cfg.weights)
    # read as named, the same files from this working folder: its line says the data as typed (`read raw as
    # layout 'folder'`), not as config.yaml records it
    df = mf.load(src_named, mf.LayoutOptions(), scan=False, announce=dist.main)
    out = Path(cfg.out)
    # an --out under the data's folders (the real folder of a symlinked one too: the run folder's mkdir would write
    # there) and the table's faults (no labels, --target, --folds, ...): refused before every image is scanned
    # (minutes on a large set); checked again below on the rows that can be read
    check_output_location(out, *mf.input_folders(df), images=mf.image_paths(df), owns=False)
    set_folds = check_data(cfg, df, say_target=dist.main, src=src_named, scanned=False, study=study,
                           searched=searched)[2]
    set_folds = [f for f in set_folds if f is not None] or None
    if resume is not None and set_folds and planned_folds(resume) is None:
        # an older k-fold set (no plan, --folds all): its folds are those its data holds, a fold_2 copied in none
        from imgcls.run_names import fold_dir
        stray = set_fold_dirs(resume, folds=set_folds)[1]
        if stray and dist.main:     # as a set with a plan says it (above): the resume trains none
            warn_stray_folds(resume, stray, [fold_dir(resume, k) for k in set_folds], trained=False)
    df = mf.scan_images(df, workers=io_workers, max_pixels=cfg.max_pixels)
    if resume is not None:       # the data the run trained on, not another folder's of the same relative name
        from imgcls.train.rundir import check_resume_data
        check_resume_data(resume, df, src_named, record, set_folds)
    if resume is None:
        how = cfg.resolve_target(df)    # of the rows as read: check_data's rows take the labels from the column
    else:       # the column its earlier epochs predicted (a run from before target_used was recorded: its --target)
        how, cfg.target_used = "", cfg.class_column
    df, (heads, decode, classes, targets, final), folds, draws = check_data(
        cfg, df, say_skipped=dist.main, src=src_named, study=study, searched=searched)
    if how and dist.main:               # said once: one task with the label runs, not 'artist'
        held = (f"the classes of {src_named}, read unlabeled (--label-col {cfg.target} reads them as its labels)"
                if how == "read unlabeled" else f"the labels of {src_named}"
                + (f" (read from that column{', as recorded beside it' if mf.manifest_read(df) else ''})"
                   if how == "recorded" else ""))
        info(f"--target {cfg.target}: the column holds {held}, so the run predicts the label task: imgcls runs "
             f"ranks it and ensemble combines it with runs trained on those labels")

    dc = data_config(cfg.model)
    img_size = int(cfg.img_size or dc["input_size"][-1])
    if dist.main and not cfg.img_size and (note := tdata.upsampling_note(df, img_size, cfg.model)):
        from imgcls.console import warn
        warn(note)
    cfg.img_size = img_size
    if cfg.crop_from > 1 and tdata.cached_size(img_size, cfg.crop_from) == img_size:   # before any image is decoded
        import math
        raise UserError(f"--crop-from {cfg.crop_from:g} at --img-size {img_size} resizes the images to "
                        f"{img_size} px: no crop; use --crop-from {math.ceil((img_size + 0.5) / img_size * 1000) / 1000:g} or "
                        f"more (e.g. 2, the painter write-up's), or 1")
    meta = ModelMeta.from_dict(
        {"model": cfg.model, "classes": classes, "heads": heads, "decode": decode, "branch": cfg.branch,
         "img_size": img_size, "mean": [float(m) for m in dc["mean"]], "std": [float(s) for s in dc["std"]],
         "interpolation": cfg.interpolation, "resize_mode": cfg.resize_mode, "drop_rate": float(cfg.drop_rate),
         "target": cfg.class_column,
         "preprocess": preprocess_applied(df),       # predict compares its test images' with it
         "letterbox": letterboxed(df),               # predict pads its test images to squares so too
         "age_bands": _age_bands(df, cfg.src, heads, decode),   # ensemble --combine profile compares them
         "crop_from": float(cfg.crop_from),         # trained on crops; predict resizes test images whole
         "decode_version": DECODE_VERSION},         # predict / export compare the loaders' decoding with it
        source=f"--model {cfg.model}")

    # the starting weights, loaded once now: an unfit file fails before the run folder is made and the image cache
    # is decoded (minutes on a large set), not when the first fold starts
    if source is not None and source.kind != "none":
        from contextlib import nullcontext
        from imgcls.console import status
        from imgcls.train.heads import build_model
        # a download from the hub shows its own bar (huggingface_hub's tqdm), which a spinner would take stderr from
        with (nullcontext() if source.kind == "hub" else
              status(f"building {cfg.model} and loading its starting weights")):
            if source.kind == "run":
                from imgcls.train.checkpoint import load_init
                load_init(build_model(meta), meta, source.where)
            else:
                build_model(meta, pretrained=cfg.pretrained, weights=cfg.weights)
    if resume is None:
        cfg.weights_source = source.describe()
    if dist.main and source is not None:
        if source.kind == "none":
            info(f"random init: {cfg.model} starts from random weights (--no-pretrained); pretrained weights usually "
                 f"score far higher on small sets")
        else:
            info(f"weights: {source.describe()}")

    if dist.main:
        say_data_notes(cfg, df, src_named, study=study, searched=searched)    # a trial's fix: tune's
    # each fold's draw of the scanned rows, check_data's: made once, a resumed run's random --val-split draw (no split
    # table) checked against its earlier epochs', trained on
    if resume is not None and not cfg.folds and not tdata.has_val_split(df):
        from imgcls.train.rundir import check_resumed_draw
        check_resumed_draw(resume, df, draws[0][1], src_named, record)

    # rank 0 claims the run folder (an atomic mkdir, then an exclusive lock held until the run ends); the other
    # processes learn its name, or the one-line error that stops them all
    lock, err, name, cache = None, None, None, cfg.cache
    made: list = []         # the folders claim_run_dir made, which a refusal before the first epoch removes
    if dist.main:
        try:
            # the decoded-image cache checked against memory and disk before the run folder is made: the one memmap
            # torchrun's processes of a machine share goes to the temp folder, --cache disk's to the run folder
            import tempfile
            cache = tdata.plan_cache(cfg.cache, len(df), img_size, Path(tempfile.gettempdir()) if dist.on else
                                     resume if resume is not None else out, shared=dist.on,
                                     crop_from=cfg.crop_from)
            run_dir, made = (resume, []) if resume is not None else \
                claim_run_dir(out, cfg.name, cfg.model, cfg.exist_ok)
            check_output_location(run_dir, *mf.input_folders(df), images=mf.image_paths(df))
            lock = RunLock(run_dir, resuming=resume is not None).__enter__()
            name = run_dir.name
        except UserError as e:
            err = str(e)
    err, name, cache = dist.broadcast((err, name, cache))
    if err:
        raise UserError(err)
    # config.yaml records the cache that ran apart from the one asked for (None: not given), which a reused record
    # (--config, --resume) plans again as the original run did
    cfg.cache_used = cache
    cfg.gpu_aug_used = _gpu_aug_used(cfg, device.type, record if resume is not None else None)
    run_dir = resume if resume is not None else out / name
    # --name given (cfg.name is set below) without --exist-ok, which trains into the folder again
    named = resume is None and cfg.name is not None and not cfg.exist_ok
    # a resume's: train.log's line of how the run last ended without training on (a crash, a refusal), read before
    # this session writes its own, and the epochs done then (_epochs_trained)
    ended, trained = None, None
    try:
        if resume is None:
            cfg.name = name
            if dist.main:
                cfg.save(run_dir / RUN_CONFIG)
        elif dist.main:                      # temp files of a killed run go; the record is kept as it was
            from imgcls.fsutil import remove_stale_temps
            from imgcls.train.rundir import ended_by_exception, ended_line
            ended, trained = ended_line(run_dir), _epochs_trained(run_dir, folds)
            remove_stale_temps(run_dir)
        # a resumed older run too, before its records are rewritten (_record_session: the set's folds', which
        # set_fold_dirs reads from the plan; a fold_2 copied into an older set keeps its own record)
        if dist.main and not (run_dir / RUN_PLAN).is_file():
            record_plan(run_dir, [f for f in folds if f is not None], classes)
        if resume is not None and dist.main:
            _record_session(cfg, run_dir, record, typed_at)      # but for how this session ran
            if ended is not None:   # imgcls runs reads the crash (the refusal) as over: a k-fold set's folds log in
                from imgcls.train.progress import RunLog
                RunLog(run_dir / TRAIN_LOG)(f"resumed: this session trains it on after the "
                                            f"{'exception' if ended_by_exception(ended) else 'refusal'} above",
                                            terminal=False)
        dist.barrier()
        return _train_folds(cfg, df, run_dir, dist, device, io_workers, meta, classes, targets, final, folds,
                            resume, stop_after, callbacks, study=study, draws=draws, src=src_named,
                            searched=searched)
    except UserError as e:
        # a refusal before the first epoch trained (a side broken since the scan): no folder left, or one a tracker's
        # run names, whose train.log says what stopped it (imgcls runs: refused)
        if dist.main and unclaim_run_dir(made, taken=run_dir if resume is None else None):
            _log_end(run_dir, f"{REFUSED_LINE}: {_first_line(e)}")
        elif dist.main and ended is not None and _epochs_trained(run_dir, folds) == trained:
            # a resume refused before it trained (its set-up's lines, its `resumed:` one, written): the crash
            # (refusal) it found is restated as the last line, with this refusal, so the run reads as it did
            _log_end(run_dir, f"{ended.split(RESUME_REFUSED)[0]}{RESUME_REFUSED}: {_first_line(e)}")
        raise
    except KeyboardInterrupt:
        # said here, not in the fold loop: a Ctrl-C while the decoded-image cache is built (before any fold starts)
        # leaves the claimed folder too, which the same command again refuses where --name named it
        if dist.main:
            from imgcls.console import interrupted
            from imgcls.train.rundir import resume_fix, set_fold_dirs
            # a set's planned folds: a fold_2 copied in is none of the epochs its resume goes on from
            kept = (run_dir / LAST_PT).is_file() or any((d / LAST_PT).is_file() for d in set_fold_dirs(run_dir)[0])
            # named by its start time, the same command starts another run; with --exist-ok it trains into the
            # folder again; a resume's is the way on it names
            taken = " (the same command again is refused: the folder exists)" if named else ""
            interrupted(f"interrupted: {run_dir} keeps the epochs finished so far ({LAST_PT}); {resume_fix(run_dir)} "
                        f"continues it" if kept else
                        f"interrupted before the first epoch finished: {run_dir} holds no finished epoch; "
                        f"{resume_fix(run_dir)} trains it from the start{taken}")
        raise
    except Exception as e:
        # a crash (or a callback's own exception): the folder stays, its options and set-up lines there to find the
        # fault by, and its train.log says what stopped it (imgcls runs: crashed); a callback's stop by design (a
        # pruned tune trial, tune's --timeout) is no crash
        from imgcls.train.callbacks import is_deliberate_stop
        if dist.main and not is_deliberate_stop(e):
            _log_crash(run_dir, e)
        raise
    finally:
        if dist.main and cfg.cache_used == "disk":
            # the decoded-image memmap goes with the run however it ends (an error, Ctrl-C, a pruned tune trial):
            # as large as the images decoded, and --resume decodes it anew
            (run_dir / IMAGE_CACHE).unlink(missing_ok=True)
        if lock is not None:
            lock.__exit__(None, None, None)


def _log_crash(run_dir: Path, e: Exception) -> None:
    """train.log's last line for an exception that stopped the run (CRASH_LINE, the exception's type and first
    line)."""
    _log_end(run_dir, f"{CRASH_LINE}, {type(e).__name__}: {_first_line(e)}")


def _epochs_trained(run_dir: Path, folds: list[int | None]) -> dict:
    """The epochs done (rundir.epochs_done) of the run, or of each fold of a k-fold set this session trains
    (`folds`, check_data's), by folder name, where any: what a session that trained an epoch changes. Its folds, not
    the set's fold folders as read: an older set without a plan counted a stray fold_2 until the session recorded
    one (record_plan), and the two counts around it differed though nothing trained."""
    from imgcls import run_names
    from imgcls.train.rundir import epochs_done
    dirs = [run_names.fold_dir(run_dir, f) for f in folds if f is not None]
    return {d.name: n for d in (run_dir, *dirs) if (n := epochs_done(d))}


def _first_line(e: Exception) -> str:
    """An exception's message as train.log's line of the run's end names it: its first line, 500 characters."""
    text = str(e).strip()
    return text.splitlines()[0][:500] if text else "no message"


def _log_end(run_dir: Path, line: str) -> None:
    """train.log's last line for how a session ended without training on (rundir.ended_line reads it: a crash, a
    refusal); a log that cannot be written (a full disk, the crash's cause) is left as it is."""
    from imgcls.train.progress import RunLog
    try:
        RunLog(run_dir / TRAIN_LOG)(line, terminal=False)
    except OSError:
        pass


def _gpu_aug_used(cfg: TrainConfig, device_type: str, record: TrainConfig | None) -> bool:
    """--gpu-aug resolved (batch_aug.use_batch_aug). A resumed run's auto is what its earlier session resolved
    (recorded, or for a record older than gpu_aug_used, from its cache_used / device_used): a resume with another
    --cache (allowed) would else switch between batched and per-image augmentation, whose random draws differ, and
    the resumed run would not equal the uninterrupted one."""
    from imgcls.train.batch_aug import use_batch_aug
    if record is not None and cfg.gpu_aug == "auto":
        if record.gpu_aug_used is not None:
            return bool(record.gpu_aug_used)
        if record.cache_used:
            return use_batch_aug("auto", str(record.device_used or "cpu").split(":")[0], record.cache_used)
    return use_batch_aug(cfg.gpu_aug, device_type, cfg.cache_used)


def _record_session(cfg: TrainConfig, run_dir: Path, record: TrainConfig, typed_at: Path | None = None) -> None:
    """A resumed run's config.yaml records how this session ran (TrainConfig.record_session: another machine's
    workers, AMP or cache) and, with its folds', the data it reads (TrainConfig.record_data: the data moved and
    given again) and the folder it is in (TrainConfig.record_folder: renamed or moved); what the earlier session had
    is said and kept in train.log."""
    from imgcls.train.progress import RunLog
    log = RunLog(run_dir / TRAIN_LOG)
    _record_data(cfg, run_dir, log)
    _record_folder(cfg, run_dir, log, typed_at=typed_at)
    changed = cfg.record_session(run_dir / RUN_CONFIG, record)
    if changed:
        log(
            "resumed with " + ", ".join(f"{k} {now}" for k, (_, now) in changed.items()) + " (the earlier session: "
            + ", ".join(f"{k} {'not recorded' if was is None else was}" for k, (was, _) in changed.items())
            + f"); {RUN_CONFIG} records this session's")


def _record_data(cfg: TrainConfig, run_dir: Path, log, how: str = "resumed on") -> None:
    """The data a resumed run reads (cfg.src, anchored) recorded in its config.yaml and its folds'
    (TrainConfig.record_data), said in one line by `log` (a RunLog of the run's train.log) where a record changed;
    `how` the line's first words (a finished run is given the data, not resumed on it)."""
    earlier = cfg.record_data(run_dir)
    if earlier:
        from imgcls.train.rundir import set_fold_dirs
        folds = any((d / RUN_CONFIG).is_file() for d in set_fold_dirs(run_dir)[0])     # the records rewritten
        log(f"{how} the data {cfg.src} (recorded: {', '.join(map(str, earlier))}); {RUN_CONFIG} records the new "
            f"path" + (", the set's and each fold's" if folds else ""))


def _record_folder(cfg: TrainConfig, run_dir: Path, log, how: str = "resumed in", typed_at: Path | None = None) -> None:
    """The folder a resumed run is in now (cfg.name, cfg.out) recorded in its config.yaml and its folds'
    (TrainConfig.record_folder), said in one line by `log` (a RunLog of the run's train.log) where a record named
    another (the run renamed or moved); `how` the line's first words (a finished run is not resumed)."""
    moved = cfg.record_folder(run_dir, typed_at=typed_at)
    if moved:
        log(f"{how} {run_dir} (recorded: {', '.join(moved)}, renamed or moved since); {RUN_CONFIG} records "
            f"its folder now")


def _record_finished(cfg: TrainConfig, run_dir: Path, record: TrainConfig, dist, typed_at: Path | None = None) -> None:
    """A finished run given its data again at another path (the data moved: `train NEW --resume RUN`) records the
    new path as a run that goes on does (_record_data), so what reads its record later (predict's leak check,
    ensemble, train_longer's command) finds the data where it is now: once check_resume_data found the run's
    validation images there (the data listed, no image scanned or decoded). One renamed or moved since (`mv runs/D
    runs/D2; train --resume runs/D2`) records the folder it is in now (_record_folder), as a resumed run does: its
    config.yaml's `name: D` else trained a new runs/D. Both under the run's lock; no data given, or the recorded
    path, in the recorded folder reads and writes nothing. `cfg`: resume_config's (its src anchored here). Under
    torchrun rank 0 writes the record, and its refusal (the folder read-only, or in use by another train) is every
    process's one error, as run_train's claim of the run folder: raised on rank 0 alone, the others went on."""
    named = cfg.src             # as given: what a refusal names
    data_moved = named != record.src and cfg.anchor_paths().src != record.src
    if not data_moved and not cfg.record_folder(run_dir, write=False, typed_at=typed_at):
        return
    from imgcls import manifest as mf
    from imgcls.errors import UserError
    from imgcls.fsutil import check_writable
    from imgcls.train.progress import RunLog
    from imgcls.train.rundir import RunLock, check_resume_data
    if data_moved:
        df = mf.load(cfg.src, mf.LayoutOptions(), scan=False, announce=dist.main, max_pixels=cfg.max_pixels)
        check_resume_data(run_dir, df, named, record)
    err = None
    if dist.main:
        try:
            check_writable(run_dir)
            with RunLock(run_dir, resuming=True):      # the run asked for: another --name is no fix
                log = RunLog(run_dir / TRAIN_LOG)
                if data_moved:
                    _record_data(cfg, run_dir, log, how="finished run given")
                _record_folder(cfg, run_dir, log, how="finished run given in", typed_at=typed_at)
        except UserError as e:
            err = str(e)
    err = dist.broadcast(err)
    if err:
        raise UserError(err)


def _train_folds(cfg, df, run_dir, dist, device, io_workers, meta, classes, targets, final, folds, resume,
                 stop_after, callbacks=None, study=None, *, draws: list, src: str | None = None,
                 searched: dict | None = None) -> Path:
    """Every fold of the run (one run without folds): the shared decoded-image cache, train_run per fold, the
    out-of-fold score. `study`: tune's config, which a fix's command names (_no_groups_split). `draws`: each
    fold's draw of `df` made already (check_data's; a resume's random --val-split draw checked by
    check_resumed_draw), used unless the decoding left rows out (then drawn again on the rows kept and checked).
    `src`, `searched`: check_data's, which a side broken since the scan names as its refusal does."""
    from dataclasses import replace

    from imgcls import manifest as mf
    from imgcls import run_names
    from imgcls.fsutil import write_json, write_table
    from imgcls.train import data as tdata
    from imgcls.train.config import parse_fill
    from imgcls.train.loop import FoldData, train_run
    from imgcls.train.progress import RunLog
    from imgcls.train.rundir import progress_settings, read_back, train_finished
    settings = progress_settings(cfg)       # what a fold read back is read against
    img_size = cfg.img_size
    size = tdata.cached_size(img_size, cfg.crop_from)       # what is decoded and cached: > img_size with --crop-from

    # decoded-image cache, shared by every fold ------------------------------------------------------------------
    paths = mf.image_paths(df)
    images = None
    keep = None         # FoldData.image_rows: set where unreadable images keep their rows in the cache
    shared = None
    # --fill: given, or measured before decoding where pad resizing uses it (or nothing is cached to measure)
    fill = (tdata.resolve_fill(cfg.fill, paths, img_size, cfg.interpolation, workers=io_workers,
                               max_pixels=cfg.max_pixels)
            if cfg.resize_mode == "pad" or cfg.cache_used not in ("ram", "disk") else None)
    pad_fill = fill[0] if fill else tdata.WHITE      # only pad resizing draws it into the cache
    if cfg.cache_used in ("ram", "disk"):
        t0 = time.perf_counter()
        memmap = run_dir / IMAGE_CACHE if cfg.cache_used == "disk" else None
        if dist.on:
            # one cache per machine: local rank 0 decodes into a memmap, the other processes map the same file
            # (the page cache holds it once), instead of every process decoding and holding its own copy
            import hashlib
            import tempfile
            key = hashlib.sha256(f"{run_dir.resolve()}|{size}|{cfg.resize_mode}|{cfg.interpolation}|{fill}"
                                 .encode()).hexdigest()[:16]
            shared = Path(tempfile.gettempdir()) / f"imgcls-cache-{key}.npy"
            try:
                if dist.local_rank == 0:
                    images, errors = tdata.decode_cache(paths, size, cfg.resize_mode, cfg.interpolation,
                                                        workers=io_workers, memmap=shared, fill=pad_fill,
                                                        max_pixels=cfg.max_pixels)
                    images.flush()
                    write_json(shared.with_suffix(".errors.json"), errors)
                dist.barrier()
                images = np.load(shared, mmap_mode="r")
                errors = json.loads(shared.with_suffix(".errors.json").read_text())
                dist.barrier()                  # every process of this machine has mapped the file
            finally:
                if dist.local_rank == 0:
                    # the names go as soon as every process holds its mapping (the pages stay until the last one
                    # unmaps them), so an error, Ctrl-C or a kill later in the run leaves nothing in the temp folder
                    shared.unlink(missing_ok=True)
                    shared.with_suffix(".errors.json").unlink(missing_ok=True)
        else:
            # scikit-learn (the fallback split's draw, every epoch's scores) loads while the workers decode
            from imgcls.metrics import import_libraries
            images, errors = tdata.decode_cache(paths, size, cfg.resize_mode, cfg.interpolation,
                                                workers=io_workers, memmap=memmap, fill=pad_fill,
                                                meanwhile=import_libraries, max_pixels=cfg.max_pixels)
        bad = [i for i, e in enumerate(errors) if e]
        for i in bad:
            tdata.warn_unreadable(paths[i], errors[i])
        if dist.main:   # before a refusal of what decoding lost: the run's log says the cache was made
            what = (f"decoded-image cache: {len(paths) - len(bad)} images at {size}px "
                    f"({images.nbytes / 2**20:.0f} MiB)")
            how = (f"({io_workers} decoding process{'es' if io_workers > 1 else ''}, before the first step)"
                   + (f", one memmap shared by the {dist.world} processes" if shared is not None else ""))
            # keyed without its time: tune's trials decode the same images, said once (console.said_once)
            RunLog(run_dir / TRAIN_LOG, echo=not False)(f"{what} in {time.perf_counter() - t0:.1f}s {how}",
                                                          key=f"{what} {how}")
        if bad:
            # a side of the table's split whose images all broke since the scan: that line, not a random draw
            check_unreadable_sides(cfg, df, np.array(errors), src=src, study=study, searched=searched,
                                   since_scan=True)
            lost = _lost_images(len(bad), paths[bad[0]], errors[bad[0]], since_scan=True)
            # the cache stays as decoded (images[ok] was a second copy of it in RAM, of a memmap too): the usable
            # rows read theirs through `keep`
            ok = np.array([not e for e in errors])
            keep = np.flatnonzero(ok)
            df, targets, final = df[ok].reset_index(drop=True), targets[ok], final[ok]
            paths = [p for p, o in zip(paths, ok) if o]
            # each fold drawn again on the rows kept, every side checked before the first fold trains
            draws = [tdata._assign_split(df, fold, cfg.val_split, cfg.seed, meta.target) for fold in folds]
            for fold, drawn in zip(folds, draws):
                check_sides(cfg, df, fold, *tdata.assign_split(df, fold, cfg.val_split, cfg.seed, by=meta.target,
                                                               drawn=drawn, say=False), study, lost=lost,
                            src=src, searched=searched)
    if fill is None:            # squash / crop from the cache: measured on the decoded images themselves
        fill = tdata.resolve_fill(cfg.fill, paths, img_size, cfg.interpolation, images=images, rows=keep)
    meta = replace(meta, fill=fill[0])
    if dist.main and parse_fill(cfg.fill) is None:          # auto: say what it measured (train.log under --quiet too)
        RunLog(run_dir / TRAIN_LOG)(f"fill colour RGB {','.join(map(str, fill[0]))} ({fill[1]}): the pixels rotation"
             + (", pad resizing" if cfg.resize_mode == "pad" else "") + " and TTA's smaller scales add")

    if dist.main and size > img_size:        # once a run (each fold's own train.log has its announce line)
        f = f"{cfg.crop_from:g}"
        RunLog(run_dir / TRAIN_LOG)(
            f"--crop-from {f}: training on random {img_size} x {img_size} crops of the images resized to {size} x "
            f"{size}; validation: centre crops of {f}x images, as the test's crops (predict resizes each test image "
            f"whole to {img_size}: the test images are the crops)", key=f"crop-from {f} {img_size}")

    results, oof = [], []
    never: tuple = ()
    if len(folds) > 1:      # a class no fold validates (split's fold -1): said once here, not in each fold's line
        from imgcls import metrics
        seen = np.zeros(len(df), bool)
        for fold in folds:
            seen |= tdata.fold_validation_rows(df, fold)
        never = tuple(metrics.classes_without_rows(final[seen], list(classes)))
        some = folds if sorted(folds) != tdata.fold_ids(df) else ()     # --folds 0,2: another fold may validate it
        if dist.main and never:
            RunLog(run_dir / TRAIN_LOG)(metrics.missing_rows_note(never, len(classes), every_fold=True,
                                                                  of_folds=some))
    for k, fold in enumerate(folds):
        train_mask, val_mask = tdata.assign_split(df, fold, cfg.val_split, cfg.seed, by=meta.target,
                                                  drawn=draws[k])
        fd = FoldData(np.flatnonzero(train_mask), np.flatnonzero(val_mask), targets, final, df, images, paths,
                      image_rows=keep, never_validated=never)
        fold_dir = run_dir if fold is None else run_names.fold_dir(run_dir, fold)
        if dist.main:
            fold_dir.mkdir(parents=True, exist_ok=True)
            if fold is not None and not (fold_dir / RUN_CONFIG).exists():
                cfg.save(fold_dir / RUN_CONFIG)
            elif fold is not None and resume is not None and not train_finished(fold_dir / LAST_PT) \
                    and not read_back(fold_dir, settings):
                cfg.record_session(fold_dir / RUN_CONFIG)       # the fold goes on in this session (one read back
                # whole, its last.pt gone, did not: its record stays how it ran)
        dist.barrier()
        try:
            res = train_run(cfg, meta, fd, fold_dir, device, dist, fold=fold,
                            resume=resume is not None, stop_after=stop_after, callbacks=callbacks,
                            parent_dir=run_dir if fold is not None else None,
                            folds_after=len(folds) - 1 - folds.index(fold))
        except BaseException as e:
            if dist.main and callbacks:
                from imgcls.train.callbacks import CallbackList
                CallbackList(callbacks).on_run_abort(e)     # trackers close their run as failed / killed
            raise
        results.append(res)
        if res["val_predictions"] is not None:
            oof.append(res["val_predictions"])
        if stop_after is not None and not (fold_dir / LAST_PT).is_file():
            break
    score = None
    if dist.main and folds != [None] and len(oof) == len(folds):
        from imgcls import metrics
        comb = pd.concat(oof, ignore_index=True)
        write_table(comb, run_dir / VAL_PREDICTIONS)
        y, p = comb["label"].astype(str).to_numpy(), comb["pred"].astype(str).to_numpy()
        m = metrics.scores(y, p, classes)
        score = {"folds": folds, "n_images": m["n"], "macro_f1": m["macro_f1"], "accuracy": m["accuracy"],
                 "macro_precision": m["macro_precision"], "macro_recall": m["macro_recall"],
                 "fold_best_f1": {str(f): r["best_f1"] for f, r in zip(folds, results)}}
        write_json(run_dir / OOF_SCORE, score)
        pc = metrics.per_class(y, p, classes, meta.class_meanings())
        write_table(pc, run_dir / PER_CLASS_CSV)
        if cfg.plots:
            from imgcls.console import status
            with status("drawing the out-of-fold confusion matrices"):        # seconds after the last fold
                metrics.confusion_pngs(y, p, classes, run_dir, title=f"out-of-fold, {len(folds)} folds, {m['n']} "
                                                                     f"images, macro-F1 {m['macro_f1']:.4f}",
                                       meanings=meta.class_meanings())
        else:
            from imgcls.train.report import drop_figures
            drop_figures(run_dir)
        # a class no fold validates (split's fold -1: train in every fold) counts with F1 0 in the mean: said here
        # too, not only in each fold's line about its own val
        missing = metrics.without_rows_note(y, classes, "out-of-fold")
        RunLog(run_dir / TRAIN_LOG)(f"out-of-fold macro-F1 over {len(folds)} folds: {m['macro_f1']:.4f} "
                                      f"(accuracy {m['accuracy']:.4f}, {m['n']} images)"
                                      + (f"; {missing}" if missing else ""), every=True)   # this run's result
    if dist.main and folds != [None]:
        from imgcls.console import status
        from imgcls.train.report import write_run_report
        with status("writing the k-fold run's report"):
            write_run_report(run_dir)
    dist.end()
    if dist.main and callbacks:
        from imgcls.train.callbacks import CallbackList
        # config: the set's own record, not a fold's on_run_start (a resumed set whose folds were all done has none)
        CallbackList(callbacks).on_train_end({"run_dir": run_dir, "folds": folds if folds != [None] else [],
                                              "oof": score, "runs": [r.get("summary") for r in results],
                                              "config": TrainConfig.load(run_dir / RUN_CONFIG).to_dict()})
    return run_dir
