"""`run_clean`: checks before the scan, then the duplicate, out-of-domain and undersampling stages over one lazy
cache of embeddings / features / pixels, and the outputs (manifest, clean_summary.json, report.html)."""
from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from imgcls import manifest as mf
from imgcls.clean.config import CleanConfig, DEFAULT_OUT, OOD_MAX_CLASS_SHARE
from imgcls.clean.duplicates import (asks_for_embeddings, conflict_table, families, group_levels, group_outcomes,
                                     linked_kept, mark_duplicates, threshold_sweep)
from imgcls.clean.materialize import (WRITTEN_AS, earlier_materialized, kept_files, materialize_kept,
                                     materialized_names, name_stale, possible_targets, remove_stale)
from imgcls.clean.sampling import undersample
from imgcls.console import all_placed, info, interruption_leaves, pass_label, plural
from imgcls.errors import MissingWeightsError, UserError
from imgcls.fsutil import check_file_name_encoding, check_output_location, check_writable, write_json
from imgcls.io import DEFAULT_MAX_PIXELS
from imgcls.links import content_representatives
from imgcls.options import PATH, SRC_PATH, check_arguments, python_too
from imgcls.outputs import (CLEAN_SUMMARY, REPORT_HTML, output_set, refuse_other_output, refuse_users_files,
                            replacing_line)
from imgcls.parallel import ParallelOptions, check_workers
from imgcls.pipeline import given_input

CLEAN_FILES = (mf.MANIFEST_NAME, CLEAN_SUMMARY, REPORT_HTML)    # clean's set in its --out, written as one
# what a clean stopped while it updates images/ (--materialize) leaves: its rerun finishes it
RERUN_COMPLETES_IT = "the same command again completes it"


def pixel_matrix(df: pd.DataFrame, size: int = 32, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(n, size * size * 3) pixels in [0, 1], NaN where unreadable; `max_pixels`: the decoding bound (--max-pixels)."""
    from imgcls.console import progress_bar
    from imgcls.io import ImageReadError, load_rgb
    out = np.full((len(df), size * size * 3), np.nan, np.float32)
    with progress_bar("pixels", len(df)) as advance:
        for i, (p, err) in enumerate(zip(mf.image_paths(df), df["error"])):
            if not err:
                try:
                    im = load_rgb(p, max_pixels=max_pixels, draft=(size, size)).resize((size, size))
                    out[i] = np.asarray(im, np.float32).ravel() / 255
                except ImageReadError:
                    pass
            advance()
    return out


def _thumbnail_and_features(args) -> tuple[np.ndarray | None, np.ndarray | None]:
    """One row's verification thumbnail and photo features (unless `measure` is false: the thumbnail alone) from one
    decode per DCT scale (io.load_rgb_drafts): a JPEG at the draft scales of near_dup.THUMB and features.NATIVE, once
    where both land on the same scale (a side under 192 px, or both at 1/8), other formats once; the arrays are those
    each pass gets decoding alone."""
    from imgcls.clean.features import NATIVE, image_features
    from imgcls.clean.near_dup import THUMB, _thumbnail_of, thumbnail_array
    from imgcls.io import ImageReadError, load_rgb_drafts, shrink
    path, measure, max_pixels = args
    if not measure:
        return _thumbnail_of((path, THUMB, max_pixels)), None
    try:
        small, native = load_rgb_drafts(path, (THUMB, NATIVE), max_pixels=max_pixels)
    except ImageReadError:
        return None, None
    thumb = thumbnail_array(small, THUMB)           # before shrink, which resizes `native` (maybe `small`) in place
    return thumb, image_features(shrink(native, NATIVE, copy=False))


def thumbnails_and_features(df: pd.DataFrame, workers: int = 1, cache_dir: str | None = None, meanwhile=None,
                            max_pixels: int | None = DEFAULT_MAX_PIXELS):
    """(pair_cache.Thumbnails of one row per content hash, features.feature_matrix(df, cache_dir=...)) from one pass
    that decodes each image at most once per JPEG draft scale (PNG and the like: ~20% of two passes' time): the
    images whose photo features or thumbnail numbers no earlier run kept (FeatureCache, pair_cache.SummaryCache).
    Under torchrun each rank takes its share; rank 0 gets them all. `meanwhile`: chunked_map's (run while worker
    processes decode); `max_pixels`: the decoding bound (--max-pixels)."""
    from imgcls.clean.features import FEATURE_NAMES, FeatureCache
    from imgcls.clean.pair_cache import Thumbnails
    from imgcls.parallel import chunked_map
    from imgcls.train.dist import current
    d = current()
    n = len(df)
    feats = np.full((n, len(FEATURE_NAMES)), np.nan, np.float32)
    measured, first, later = content_representatives(df)
    ts = Thumbnails(df, measured, workers, cache_dir, max_pixels=max_pixels)
    thumbs, ok = ts.thumbs, ts.ok                  # decoded in place
    cache, shas = FeatureCache(cache_dir), mf.content_hashes(df)
    todo = cache.fill(shas, measured, feats)
    measure = np.zeros(n, bool)
    measure[todo] = True
    decode = np.union1d(todo, ts.missing).astype(np.int64)
    rows = d.mine(decode)
    paths = mf.image_paths(df)
    jobs = [(str(paths[i]), bool(measure[i]), max_pixels) for i in rows]
    what = pass_label("thumbnails and photo features" if len(todo) else "thumbnails", ts.readable, ts.distinct,
                      len(decode))
    decoded = chunked_map(_thumbnail_and_features, jobs, workers, what, meanwhile=meanwhile)
    for i, (t, f) in zip(rows, decoded, strict=True):     # to the end: meanwhile's imports are done
        if t is not None:
            thumbs[i], ok[i] = t, True
        if f is not None:
            feats[i] = f
    d.gather_rows(thumbs, decode, done=ok)
    d.gather_rows(feats, decode)
    ts.decoded(decode)
    if d.main:
        cache.store(shas, todo, feats)
        # the thumbnails' numbers are kept now, as the features are, not after the embedding pass that follows (its
        # longest stage): a Ctrl-C there left the features cached and these not, and the rerun decoded every
        # image again (1.5 of 12 minutes on 7,703 clip-art images)
        ts.summarise()
    feats[later] = feats[first]
    return ts, feats


def _imports_ahead() -> None:
    """The libraries the stages after the thumbnail pass import: torch, timm (the embedding pass) and the
    scikit-learn modules the OOD detectors fit with."""
    from imgcls.clean.ood import import_libraries as detector_libraries
    from imgcls.embed import import_libraries as embedding_libraries
    detector_libraries()
    embedding_libraries()


def check_ood_share(flagged: np.ndarray, readable: np.ndarray, cfg: CleanConfig,
                    df: pd.DataFrame | None = None) -> None:
    """A detector that flags more than --ood-max-share of the readable images is more likely wrong than the data:
    stop (nothing written) unless the share was asked for (--ood-contamination) or accepted (--force). Where it
    also flags more than half of a class (`df`'s labels), the line names those classes and their fixes
    (check_ood_classes'), not --ood-contamination, which would drop real images of such a class."""
    n = int(readable.sum())
    share = float(flagged.sum()) / n if n else 0.0
    if share > cfg.ood_max_share and not cfg.ood_contamination and not cfg.force:
        said = (f"--ood-method {cfg.ood_method} flags {int(flagged.sum())} of {n} images ({share:.0%}, more "
                f"than --ood-max-share {cfg.ood_max_share:.0%})")
        hit = _classes_flagged(flagged, df) if df is not None else []
        if hit:
            raise UserError(f"{said}, {', '.join(hit)} among them (more than {OOD_MAX_CLASS_SHARE:.0%} of the "
                            f"class): more likely a look the detector does not know than polluted data; nothing "
                            f"written. " + _CLASS_FIXES)
        threshold = cfg.ood_threshold is not None
        raise UserError(f"{said}; nothing written. Flag a share with "
                        + python_too(
                            # the two are alternatives: added beside a typed threshold it is refused
                            "--ood-contamination 0.05" + (" in place of --ood-threshold" if threshold else "")
                            + ", raise --ood-threshold, or pass --force to accept it",
                            "ood_contamination=0.05" + (" in place of ood_threshold" if threshold else "")
                            + ", a higher ood_threshold, or force=True"))


_CLASS_FIXES = python_too("Pass --no-ood, raise --ood-threshold, or --force to accept it",
                          "ood=False, a higher ood_threshold, or force=True")


def _classes_flagged(flagged: np.ndarray, df: pd.DataFrame) -> list[str]:
    """'k of n 'c'' for each class of which more than OOD_MAX_CLASS_SHARE of the remaining images are flagged."""
    if "label" not in df.columns:
        return []
    labels = mf.text_values(df["label"]).to_numpy()
    eligible = df["keep"].to_numpy() & (labels != "")
    hit = []
    for c in sorted(set(labels[eligible])):
        n = int((eligible & (labels == c)).sum())
        k = int((flagged & eligible & (labels == c)).sum())
        if k > OOD_MAX_CLASS_SHARE * n:
            hit.append(f"{k} of {n} {c!r}")
    return hit


def check_ood_classes(flagged: np.ndarray, df: pd.DataFrame, cfg: CleanConfig) -> None:
    """A detector that flags more than OOD_MAX_CLASS_SHARE of a class's remaining images would empty (or nearly)
    a class of the task: stop (nothing written) unless accepted (--force) or a share was asked for."""
    if cfg.force or cfg.ood_contamination:
        return
    hit = _classes_flagged(flagged, df)
    if hit:
        raise UserError(f"--ood-method {cfg.ood_method} flags {', '.join(hit)} images (more than "
                        f"{OOD_MAX_CLASS_SHARE:.0%} of the class): more likely a look the detector does not know than "
                        f"polluted data; nothing written. " + _CLASS_FIXES)


def run_clean(src: str | os.PathLike | None = None, out: str | os.PathLike = DEFAULT_OUT,
              cfg: CleanConfig | None = None,
              opts: mf.LayoutOptions | None = None, workers: int = ParallelOptions.workers,
              materialize: str | None = None) -> pd.DataFrame:
    """`imgcls clean SRC`: mark duplicates, out-of-domain and undersampled rows; returns the manifest written to
    `out`/manifest.csv (clean's columns: keep, reason, dup_group, duplicate_of, label_conflict, ood_score).
    `materialize` (link | copy), when given, replaces cfg.materialize. `src` None: refused as a bare `imgcls clean`
    is, naming what to give (pipeline.given_input)."""
    check_file_name_encoding()     # as every command: a non-ASCII name misread or left out
    check_arguments("run_clean", cfg=(cfg, CleanConfig), opts=(opts, mf.LayoutOptions), src=(src, PATH, SRC_PATH),
                    out=(out, PATH, "a path to a folder"))
    cfg = cfg or CleanConfig()
    if materialize is not None:
        cfg = replace(cfg, materialize=materialize)
    materialize = cfg.materialize
    cfg.validate()
    check_workers(workers)
    src = given_input("clean", src)
    definition = cfg.near_duplicates()
    det = None
    if cfg.ood:
        from imgcls.clean.registry import get_detector
        det = get_detector(cfg.ood_method)
    if cfg.needs_embeddings or (det is not None and det.uses_backbone):
        # the near-duplicate search, a tie's vote or the OOD detector runs --embedder: it and its weights must be
        # here before the scan
        try:
            definition.check_weights()
        except MissingWeightsError as e:
            if cfg.near_dup or cfg.embedder_weights or not cfg.needs_embeddings:
                raise
            raise MissingWeightsError(f"{e}; with --exact-only only --conflicts majority-knn's tie vote embeds, so "
                                      f"--conflicts majority needs no weights") from None
        from imgcls.device import check_device_present
        check_device_present(cfg.device)     # --device cuda without one: refused before the scan, not after it
    from imgcls.train.dist import init_distributed
    dist = init_distributed(cfg.device)         # one process unless torchrun started several (gloo on CPU)
    # under torchrun rank 0 searches and writes alone after the passes: the others return once it has (a clean or
    # train after this one in these processes reads its manifest)
    with dist.main_finishes():
        return _run_clean(dist, src, Path(out), cfg, opts, workers, materialize, definition, det)


def _run_clean(dist, src, out: Path, cfg: CleanConfig, opts, workers: int, materialize: str | None, definition,
               det) -> pd.DataFrame:
    """run_clean's work once its options are checked and the process group is up: the checks of --out and the
    data, the passes (split by rank under torchrun, where the others return after them) and rank 0's outputs.
    `definition`: cfg's near-duplicate definition; `det`: the OOD detector, None without --ood."""
    check_writable(out)
    refuse_other_output(out, "clean", whole=True)
    if cfg.needs_embeddings or cfg.ood:
        from imgcls.embed import check_cache_folder
        check_cache_folder(cfg.cache_dir)        # embeddings and photo features are cached by content there
    df = mf.load(src, opts, scan=False)
    labels_made = mf.label_record(df, opts)   # recorded in the summary: train reads it beside the manifest
    mf.warn_unlabeled(df, src)
    check_output_location(out, *mf.input_folders(df), images=mf.image_paths(df))
    # then (an input inside --out said first) its files over a user's own of those names in a folder no clean
    # wrote: their manifest.csv, report.html, and with --materialize an image of theirs in images/ where a kept
    # image of that name would be written
    replaced = refuse_users_files(out, "clean", [*(out / n for n in CLEAN_FILES),
                                                 *(possible_targets(df, out / "images") if materialize else [])],
                                  placing=out / "clean")
    if out / mf.MANIFEST_NAME in replaced:      # a rerun: the images unchanged since are not read again
        df = mf.reuse_scan(df, out / mf.MANIFEST_NAME, out / CLEAN_SUMMARY)
    df = mf.scan_images(df, workers=workers, max_pixels=cfg.max_pixels).reset_index(drop=True)
    mf.judge_readable(df)
    df["dup_group"] = ""
    df["duplicate_of"] = ""
    df["label_conflict"] = False
    df["ood_score"] = np.nan

    cache: dict[str, np.ndarray] = {}

    def embeddings() -> np.ndarray:
        if "emb" not in cache:
            cache["emb"] = definition.embeddings(df, workers)
        return cache["emb"]

    def style() -> np.ndarray:
        if "style" not in cache:
            from imgcls.embed import style_manifest
            cache["style"] = style_manifest(df, model=cfg.embedder, weights=cfg.embedder_weights,
                                            weights_flag="--embedder-weights", model_flag="--embedder",
                                            img_size=cfg.embed_size, precision=cfg.embed_precision,
                                            device=cfg.device, cache_dir=cfg.cache_dir, workers=workers,
                                            max_pixels=cfg.max_pixels)
        return cache["style"]

    def features() -> np.ndarray:
        if "feat" not in cache:
            from imgcls.clean.features import feature_matrix
            cache["feat"] = feature_matrix(df, workers=workers, cache_dir=cfg.cache_dir, max_pixels=cfg.max_pixels)
        return cache["feat"]

    from imgcls.console import cache_reuse
    from imgcls.embed import cache_folder
    # the passes: what an earlier run's caches served whole is named in one line as they end (a warm run's seconds)
    with cache_reuse("clean", cache_folder(cfg.cache_dir)):
        verified = cfg.dedup and cfg.near_dup and definition.method == "verified"
        thumbs = None
        if verified and det is not None and det.uses_features:      # both passes want every image: one decode
            # images to decode mean a first run: the embedding pass will build its model too, so its imports (and
            # the OOD detectors' scikit-learn) load while the worker processes decode (-1.7 s of a 21 s first clean
            # on 2 cores)
            thumbs, cache["feat"] = thumbnails_and_features(df, workers, cfg.cache_dir, meanwhile=_imports_ahead,
                                                            max_pixels=cfg.max_pixels)
        if dist.on:
            # torchrun: every rank takes its share of the embedding / thumbnail / feature passes (imgcls.embed,
            # thumbnails_and_features above, or near_dup.thumbnails / features.feature_matrix when one is wanted alone;
            # split by rank, gathered on rank 0), then rank 0 alone searches and writes; the others return here
            from imgcls.clean.near_dup import thumbnails
            from imgcls.clean.pair_cache import Thumbnails
            if dist.main:
                info(f"clean: {dist.world} processes (torchrun): the embedding / thumbnail / feature passes split by "
                     f"rank, rank 0 searches and writes")
            # with --exact-only the duplicate stage embeds only for a tie's vote, which every rank can foresee
            if (cfg.dedup and (cfg.near_dup or asks_for_embeddings(df, cfg))) or cfg.ood or cfg.undersample:
                embeddings()
                if cfg.ood:
                    style()
            if verified and thumbs is None:         # the rows whose numbers no run kept, split by rank
                thumbs = Thumbnails(df, content_representatives(df)[0], workers, cfg.cache_dir,
                                    max_pixels=cfg.max_pixels)
                missing = np.zeros(len(df), bool)
                missing[thumbs.missing] = True
                thumbnails(df, only=missing, workers=workers, out=(thumbs.thumbs, thumbs.ok), max_pixels=cfg.max_pixels,
                           what=pass_label("thumbnails", thumbs.readable, thumbs.distinct, len(thumbs.missing)))
                thumbs.decoded(thumbs.missing)
            if det is not None and det.uses_features:
                features()
            if not dist.main:
                return df
        scored = None
        if cfg.dedup and cfg.near_dup:
            levels = group_levels(definition.cut)
            scored = definition.scored_pairs(df, embeddings(), min(levels), thumbs=thumbs, workers=workers,
                                             levels=levels)
        tie_votes: dict[str, dict[str, int]] = {}
        if cfg.dedup:
            df, tie_votes = mark_duplicates(df, None, cfg, pairs=scored, embeddings=embeddings)
        if det is not None:
            from imgcls.clean.registry import OODInputs
            scores = det.score(OODInputs(features=features, embeddings=embeddings,
                                         pixels=lambda: pixel_matrix(df, max_pixels=cfg.max_pixels), seed=cfg.seed,
                                         style=style))
            df["ood_score"] = scores
            flagged = det.flag(scores, cfg.ood_threshold, cfg.ood_contamination) & df["keep"].to_numpy()
            check_ood_share(flagged, (df["error"] == "").to_numpy(), cfg, df)
            check_ood_classes(flagged, df, cfg)
            df.loc[flagged, "keep"] = False
            df.loc[flagged, "reason"] = "out_of_domain"
        if cfg.undersample:
            df = undersample(df, embeddings() if cfg.undersample != "random" else None, cfg.undersample,
                             cfg.max_per_class, cfg.seed)

    if replaced:    # data/clean every run: say what goes (its own earlier files, as refuse_users_files told them)
        info(replacing_line(out, "an earlier clean output"))
    df = mf.as_written(df)          # what is returned is the table written, in its column order
    sweep = threshold_sweep(df, scored) if scored is not None else []
    from imgcls.device import inference_precision
    config = {**asdict(cfg), "dup_threshold": definition.cut,      # the threshold used, not None for "default"
              "embed_precision": inference_precision(cfg.embed_precision, cfg.device)}   # and the precision
    summary = {"config": config, "source": str(src), "n_images": len(df), "kept": int(df["keep"].sum()),
               "removed": {r: int(n) for r, n in df.loc[~df["keep"], "reason"].value_counts().items()},
               "duplicates": cfg.duplicates,
               "duplicate_groups": int(df.loc[df["dup_group"] != "", "dup_group"].nunique()),
               **dict(zip(("linked_kept", "linked_groups"), linked_kept(df))),
               "label_conflict_groups": int(df.loc[df["label_conflict"].astype(bool), "dup_group"].nunique()),
               "label_conflicts": conflict_table(df, tie_votes),
               "families": families(df),
               "threshold_sweep": sweep,
               # readable images the detector gave no score (too few for it, or none it could measure): kept unchecked
               "ood_unscored": int((df["ood_score"].isna() & (df["error"] == "")).sum()) if det is not None else 0,
               **labels_made, **mf.scan_record()}
    from imgcls.clean.report import write_clean_report
    # written as one set, renamed into place at its end (outputs.output_set): a run stopped while writing them left
    # a new manifest beside the earlier run's summary and report, or on a first run a manifest alone, which its rerun
    # refused as not clean's. temps: what a kill -9 of an earlier run left under --out (materialized copies
    # included), swept while this run holds the folder: a second clean into it swept this one's staging folder
    # images/ (--materialize) follows the manifest, in this run's turn at --out (a second clean there waits): the
    # earlier --materialize's images this run does not keep are named (STALE_IMAGES) before the set is placed and
    # removed after, so a failure placing it leaves the earlier output whole; the kept ones are written after the
    # new manifest, which names them, is placed. A stop in either leaves what the same command again completes
    with output_set(out, "clean", earlier=CLEAN_FILES, temps=True) as files:
        write_json(files.stage / CLEAN_SUMMARY, summary)
        write_clean_report(files.stage / REPORT_HTML, df, summary)
        mf.write(df, files.beside(mf.MANIFEST_NAME))       # its image roots relative to where it will lie
        kept = materialized_names(out, kept_files(df, out / "images")) if materialize else set()
        stale = earlier_materialized(out) - kept
        name_stale(out, stale)      # for a rerun, before the set that no longer names them is placed
        gone = []
        files.then(lambda: gone.append(remove_stale(out, stale)),
                   "images/ still holds earlier --materialize images this run does not keep" if stale else "")
        if materialize:
            files.then(lambda: _fill_images(df, out, materialize), "images/ does not hold all the kept images yet")
    gone = gone[0]
    with interruption_leaves(all_placed(out)):      # the set is in place: a stop from here on leaves it whole
        if gone:
            info(f"removed {plural(gone, 'image')} an earlier --materialize wrote in {out / 'images'} "
                 + ("that this run does not keep" if materialize else "(this run has no --materialize)"))
        removed = ", ".join(f"{n} {reason}" for reason, n in summary["removed"].items()) or "none"
        unscored = (f"; {summary['ood_unscored']} of {int((df['error'] == '').sum())} readable images not scored by "
                    f"--ood-method {cfg.ood_method} (too few for it, or not measurable), kept unchecked"
                    if summary["ood_unscored"] else "")
        info(f"clean: kept {summary['kept']} of {len(df)}; removed {removed}{unscored}; outputs: "
             f"{out}/{mf.MANIFEST_NAME}, {REPORT_HTML}"
             + (f", images/ ({WRITTEN_AS[materialize]} of the kept images)" if materialize else ""))
        if cfg.dedup and summary["duplicate_groups"]:     # what became of each group: kept which, removed which, why
            info(f"clean: {group_outcomes(df, cfg.conflicts, tie_votes)}; each group in {REPORT_HTML}")
    return df


def _fill_images(df: pd.DataFrame, out: Path, how: str) -> None:
    """--materialize's kept images written into out/images (materialize_kept), once the manifest naming them is
    placed (output_set's `then`: --out still held)."""
    with interruption_leaves(f"its manifest, summary and report were written to {out}; images/ was being filled "
                             f"with the kept images and is not complete: {RERUN_COMPLETES_IT}"):
        materialize_kept(df, out / "images", how)
