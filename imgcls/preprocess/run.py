"""`run_preprocess`: the whole dataset - checks before any work, resume, one process or a pool of workers, the
output manifest, preprocess.json and the report."""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pandas as pd

from imgcls import manifest as mf
from imgcls.console import info, plural, progress_bar, warn
from imgcls.errors import UserError
from imgcls.manifest import NO_FACE_DROPPED
from imgcls.fsutil import (atomic_path, check_file_name_encoding, check_output_location, check_writable,
                           folders_to_make, remove_made, remove_stale_temps, under_all, write_json)
from imgcls.options import PATH, SRC_PATH, check_arguments
from imgcls.outputs import OVERSAMPLE_JOURNAL, REPORT_HTML, folder_turn, refuse_other_output, refuse_users_files
from imgcls.parallel import ParallelOptions, check_workers, closed_pool, signals_held
from imgcls.pipeline import PIPELINE, default_input
from imgcls.preprocess.config import BLANK_MATTE, FACE_LOST, PreprocessConfig
from imgcls.preprocess.image import (FACE_COLUMNS, RECORD_COLUMNS, Models, empty_record, init_worker, process_image,
                                     run_chunk)
from imgcls.preprocess.outputs import (JOURNAL, SETTINGS_FILE, earlier_manifest, earlier_outputs, input_stamp,
                                      kept_outputs, open_journal, other_inputs_line, output_names, previous_records,
                                      remove_outputs, write_stamps)

MIN_PER_WORKER = 16


def run_preprocess(src=None, out=dict(PIPELINE)["processed"], cfg: PreprocessConfig | None = None,
                   opts: mf.LayoutOptions | None = None, workers: int = ParallelOptions.workers,
                   report: bool = True) -> pd.DataFrame:
    """Process every readable image of `src` into `out`; returns the output manifest (also written). `src` None:
    the furthest pipeline stage up to data/clean (imgcls.pipeline.default_input), announced."""
    check_file_name_encoding()     # as every command: a non-ASCII name misread or left out
    check_arguments("run_preprocess", cfg=(cfg, PreprocessConfig), opts=(opts, mf.LayoutOptions),
                    src=(src, PATH, SRC_PATH), out=(out, PATH, "a path to a folder"))
    cfg = cfg or PreprocessConfig()
    cfg.validate()
    check_workers(workers)
    if src is None:
        src = default_input("preprocess")
    out = Path(out)
    src_path = Path(src)
    check_writable(out)
    refuse_other_output(out, "preprocess", whole=True)
    check_output_location(out, src_path if src_path.is_dir() else None)
    # Model files first: a missing one stops the run before any work, the scan included (one line, not one per
    # worker). The models are built where they run, once there is something to process (Models: in this process
    # once it holds --out and knows what is to do, before the first image, or in each worker as it starts): a
    # damaged file is one line there, not a failure per image (a --out this run made is removed again); an
    # up-to-date rerun, or a run whose workers build their own, builds none here (retinaface / mtcnn load TensorFlow)
    if cfg.face_crop:
        from imgcls.weights import check_deepface_detector
        check_deepface_detector(cfg.detector)
    bg, rembg_file = None, None
    if cfg.remove_bg:
        from imgcls.weights import REMBG_MD5, rembg_model_file
        rembg_file = rembg_model_file(cfg.rembg_model)      # checked once: the workers are given the verdict
        if cfg.rembg_model not in REMBG_MD5:
            # no md5 to check its file by (u2net, isnet-general-use, ...): a damaged one is found by loading it, here,
            # once, not in every worker after the scan; a run in this process keeps the session
            from imgcls.preprocess.background import BackgroundRemover
            bg = BackgroundRemover(cfg.rembg_model, path=rembg_file)
    df = mf.load(src, opts, scan=False).reset_index(drop=True)
    if cfg.oversample_settings() is not None and not mf.class_names(df["label"]):
        # copies are made per labelled class: without labels --oversample would write none, said after the work
        hint = mf.label_column_hint(df)
        raise UserError(f"--oversample {cfg.oversample} copies the images of each labelled class, and {src} has no "
                        f"labels (no column label, class or target); "
                        + (f"{hint}, or drop --oversample" if hint else
                           "give a labelled dataset (a folder per class, or a CSV with a label column), or drop "
                           "--oversample"))
    from imgcls.preprocess.oversample import refuse_taken_copy_names
    labels_made = mf.label_record(df, opts)   # recorded in preprocess.json: train reads it beside the manifest
    paths = mf.image_paths(df)
    check_output_location(out, *mf.input_folders(df), images=paths)       # before the scan: a refusal comes first
    # its files over a user's own of those names in a folder no preprocess wrote (their manifest.csv, whose rows
    # under --out it would also remove as an earlier run's images, report.html, an image of an output's name or of
    # an oversampled copy's)
    names = output_names(df, cfg)      # by root and path alone: the scan below adds its columns, no rows
    copy_names = refuse_taken_copy_names(df, names, cfg)
    refuse_users_files(out, "preprocess", [out / mf.MANIFEST_NAME, out / SETTINGS_FILE,
                                           *([out / REPORT_HTML] if report else []),
                                           *(out / n for n, k in zip(names, mf.kept(df)) if k),
                                           *(out / n for n in copy_names)])
    # OUT is this run's from reading what an earlier run left there to its report (outputs.folder_turn): a second
    # preprocess into it waits, where it swept the first one's images being written as a killed run's temporary
    # files (the first failed with a FileNotFoundError traceback) and read its unfinished journal as its own
    made = folders_to_make(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder_turn(out, made):
        try:
            held, bg = [bg], None       # _preprocess_into frees it before its workers start: no name here keeps it
            return _preprocess_into(out, src, df, cfg, workers, report, held, rembg_file, paths, names, labels_made,
                                    made)
        except BaseException:
            # a run stopped before it wrote anything leaves no empty --out (only empty folders go); while it holds
            # OUT: a run waiting for it makes it again (folder_turn), and a stop while waiting removes no folder the
            # run it waits for writes into
            remove_made(made)
            raise


def _preprocess_into(out: Path, src, df: pd.DataFrame, cfg: PreprocessConfig, workers: int, report: bool,
                     held: list, rembg_file: Path | None, paths, names, labels_made: dict,
                     made: list[Path]) -> pd.DataFrame:
    """run_preprocess's work once the run holds OUT: the scan, what is up to date, the processing, the manifest,
    preprocess.json and the report. `held`: [the rembg session run_preprocess made when it load-checked the model,
    or None], emptied here (a parallel run frees it before its workers load their own); `rembg_file`: the model
    file it checked; `made`: the folders run_preprocess made for OUT."""
    settings = cfg.settings()
    sources = [os.path.realpath(p) for p in paths]     # realpath: a symlink loop is not a RuntimeError
    old = earlier_manifest(out)
    prev = previous_records(out, settings, old)
    earlier = earlier_outputs(out, old)     # what an earlier run wrote here: what this one does not write goes
    other = other_inputs_line(out, old, sources)
    if other:
        warn(other)
    # an input an earlier run wrote an output of, still of the bytes (sha256) its stamp records, decoded whole then:
    # hashed again, not decoded (two thirds of an up-to-date rerun's scan)
    recorded = [(prev.get(s) or {}).get("source_stamp") for s in sources]
    decoded = {i: st[2] for i, st in enumerate(recorded) if isinstance(st, list) and len(st) == 3 and st[2]}
    df = mf.scan_images(df, workers=workers, max_pixels=cfg.max_pixels, decoded=decoded)
    # every output proven to lie under OUT (symlinks resolved), whatever the manifest's paths say
    dsts = under_all(out, names)
    keep = pd.Series(mf.kept(df), index=df.index)
    readable = df["error"].fillna("") == ""

    records: dict[int, dict] = {}
    stamps: dict[int, list | None] = {}    # each input as it is now (size, mtime, the scan's sha256), before any work
    todo: list[tuple[int, str, str]] = []
    rows = [i for i, (ok, k) in enumerate(zip(readable, keep)) if ok and k]
    for i, sha in zip(rows, df["sha256"].to_numpy()[rows]):
        stamps[i] = input_stamp(sources[i], sha)
    kept = kept_outputs([prev.get(sources[i]) for i in rows], [names[i] for i in rows], [stamps[i] for i in rows],
                        [dsts[i] for i in rows])
    for i, current in zip(rows, kept):
        if current:
            r = prev[sources[i]]
            records[i] = {**empty_record(), **{k: r.get(k) for k in RECORD_COLUMNS
                                                + mf.SCAN_COLUMNS}, "written": True, "error": ""}
        else:
            todo.append((i, sources[i], str(dsts[i])))
    skipped = len(records)
    n_unreadable = int((~readable).sum())
    n_not_kept = int((readable & ~keep).sum())      # readable rows clean did not keep (the summary's not_kept)
    n_marked = int((~keep).sum())                   # every row marked keep = false, the unreadable ones included
    if skipped:
        info(f"{skipped} image(s) already up to date in {out} (same settings, input unchanged): kept")
    if n_marked:
        also = (f" ({n_marked - n_not_kept} of them unreadable, counted again with the unreadable inputs)"
                if n_marked > n_not_kept else "")
        info(f"{n_marked} row(s) marked keep = false by clean{also}: not processed, left pointing at their input")

    # a spawned worker costs seconds to start (imports, model sessions): below MIN_PER_WORKER images each, one
    # process is faster (bench/preprocess_speed.py)
    parallel = workers > 1 and len(todo) >= MIN_PER_WORKER * workers
    bg = held.pop()     # with workers, each loads its own: this process's session freed before they start
    models = Models(cfg, rembg_file=rembg_file, bg=bg) if todo and not parallel else None
    del bg
    t0, c0 = time.perf_counter(), _cpu_seconds()
    stale = remove_stale_temps(out)
    if stale:
        info(f"removed {len(stale)} temporary file(s) an interrupted run left in {out}")
    jpath = out / JOURNAL
    before = _state_before(out, jpath, todo, made)
    try:
        _process(todo, records, jpath, settings, sources, names, stamps, cfg, workers, parallel, models, rembg_file)
    except Exception:
        # an error before the first image (the models failing to load in the workers, every worker dying): the
        # journal it started would leave OUT refused as unfinished by every later step, with nothing to finish
        if not any(records[i]["written"] for i, _, _ in todo if i in records):
            _leave_as_it_was(before)
        raise
    except KeyboardInterrupt:
        if jpath.is_file():         # Ctrl-C, SIGTERM: what the journal keeps and what the rerun does with it
            from imgcls.console import interrupted
            from imgcls.options import python_too
            kept = sum(1 for r in records.values() if r["written"])
            rerun = python_too("the same imgcls preprocess command again", "the same run_preprocess call")
            left = skipped + len(todo) - kept
            if not left:        # stopped after the last image was written: only what the run writes after it
                files = ((["the oversampled copies"] if cfg.oversample_settings() is not None else [])
                         + [mf.MANIFEST_NAME, SETTINGS_FILE] + ([REPORT_HTML] if report else []))
                interrupted(f"interrupted after the last image: every image is finished ({plural(kept, 'image')} in "
                            f"{out}, its resume journal {JOURNAL}); {rerun} processes none again, it only writes "
                            f"{', '.join(files[:-1])} and {files[-1]}")
            else:
                rest = plural(left, 'image')
                interrupted(f"interrupted: {out} keeps the {plural(kept, 'image')} finished so far (its resume "
                            f"journal {JOURNAL}); {rerun} skips them and processes the other {rest}" if kept else
                            f"interrupted: {out} holds no finished image yet; {rerun} processes the {rest}")
        raise
    dropped = [i for i, r in sorted(records.items()) if r["error"] == NO_FACE_DROPPED]
    wrote = any(r["written"] for r in records.values())
    if not wrote:
        _refuse_all_failed(out, before, paths, records, df, readable, keep, dropped)
    if dropped and not wrote:
        # no image at all: nothing to train on (split and train refuse it) and nothing to predict on (predict would
        # take every test image uncropped, as it came); a run that yields nothing does not replace an earlier output
        _leave_as_it_was(before)
        raise UserError(f"--no-face drop left out every image: the {cfg.detector} detector found no face in any of "
                        f"the {plural(len(dropped), 'image')} (e.g. {paths[dropped[0]]}); nothing was written to {out} "
                        f"(an earlier output there is left as it was): preprocess again with --no-face keep or "
                        f"center-crop, or another --detector")
    elapsed = time.perf_counter() - t0
    cpu = _cpu_seconds() - c0      # the workers' too: their pool is shut down (waited for) by now

    result = _assemble(df, out, names, sources, records)
    # a class whose every image this run left out (--no-face drop, a failed image) is gone from the data: said once
    mf.say_lost_classes(result, pd.Index([i for i, r in records.items() if r["error"]]), why="left out by preprocess")
    from imgcls.preprocess.oversample import add_copies
    result, oversampled = add_copies(result, out, cfg)
    # in the manifest's order, not the order the workers finished in: the same run writes the same bytes
    write_stamps(out, {sources[i]: stamps[i] for i in sorted(records) if records[i]["written"]})
    result = mf.as_written(result)  # what is returned is the table written, in its column order
    mf.write(result, out / mf.MANIFEST_NAME)
    out_root = str(out.resolve())
    gone = remove_outputs(out, earlier, {str(p) for p, r in zip(result["path"], result["root"]) if str(r) == out_root})
    if gone:
        info(f"removed {plural(gone, 'image')} an earlier run wrote in {out} that this run does not write")
    given = [str(p) for p in paths]        # reported by the dataset's path, not a link's target
    # images that failed to process, warned of one by one below; unreadable inputs were named when found (the
    # scan's warning, or the step that wrote the manifest, e.g. clean): in the report and counted, not warned again
    # (a face --no-face drop left out is no failure: counted, warned of and listed as a no-face image)
    process_failed = sorted((given[i], r["error"]) for i, r in records.items()
                            if r["error"] and r["error"] != NO_FACE_DROPPED)
    failed = sorted(process_failed + [(given[i], f"unreadable input: {df.at[i, 'error']}") for i in range(len(df))
                                      if not readable[i]])
    no_face = [given[i] for i, r in sorted(records.items()) if r.get("face_found") is False]
    # faces the background removal took for background: their crops are washed out
    face_lost = [(i, given[i], float(r["face_kept"])) for i, r in sorted(records.items())
                 if r.get("face_kept") is not None and float(r["face_kept"]) < FACE_LOST]
    # images the background removal left blank (or nearly), face or no face
    blank = [(i, given[i], float(r["matte_kept"])) for i, r in sorted(records.items())
             if r["written"] and r.get("matte_kept") is not None and float(r["matte_kept"]) < BLANK_MATTE]
    summary = {
        "settings": settings, "source": os.path.abspath(src), "images": int(len(df)), "processed": len(todo),
        "up_to_date": skipped,
        # the originals in --out, processed now or up to date ("written" is only what this run wrote: oversampled's)
        "in_output": sum(1 for r in records.values() if r["written"]), "failed": len(process_failed),
        "unreadable_input": n_unreadable, "not_kept": n_not_kept, "no_face": len(no_face),
        "face_lost_to_matte": len(face_lost), "blank_after_matte": len(blank),
        "seconds": round(elapsed, 2), "images_per_second": round(len(todo) / elapsed, 2) if todo and elapsed else None,
        "cpu_seconds_per_image": round(cpu / len(todo), 3) if todo else None,
        "workers": workers if parallel else 1,
        "oversample_settings": cfg.oversample_settings(), "oversampled": oversampled or None,
        **labels_made,
    }
    write_json(out / SETTINGS_FILE, summary)
    if jpath.exists():
        jpath.unlink()
    (out / OVERSAMPLE_JOURNAL).unlink(missing_ok=True)   # add_copies' journal: kept until the manifest is written
    if report:
        _write_report(out, summary, result, failed, no_face, cfg, face_lost, blank,
                      shown={g: str(p) for g, p in zip(given, df["path"])})
    for s, err in process_failed[:10]:
        warn(f"{s}: {err}")
    if len(process_failed) > 10:
        warn(f"... and {len(process_failed) - 10} more failed image(s): see {out / REPORT_HTML}")
    if n_unreadable:
        info(f"{plural(n_unreadable, 'unreadable input image')} left out (listed in {out / REPORT_HTML})")
    if no_face:
        dropped = ": not written, later steps leave them out" if cfg.no_face == "drop" else ""
        warn(f"no face found in {len(no_face)} image(s) (--no-face {cfg.no_face}{dropped}); listed in "
             f"{out / REPORT_HTML}")
    if face_lost:
        warn(f"the background removal kept less than {FACE_LOST:.0%} of the face in {len(face_lost)} image(s) "
             f"(e.g. {face_lost[0][1]}: {face_lost[0][2]:.0%}): rembg took the face for background and the crop is "
             f"washed out; look at them in {out / REPORT_HTML} ({mf.MANIFEST_NAME}: face_kept), or preprocess without "
             f"--remove-bg")
    if blank:
        warn(f"the background removal kept less than {BLANK_MATTE:.0%} of the image in {plural(len(blank), 'image')} "
             f"(e.g. {blank[0][1]}: {blank[0][2]:.1%}): rembg took it for background and it is blank, or nearly; look "
             f"at them in {out / REPORT_HTML} ({mf.MANIFEST_NAME}: matte_kept), or preprocess without --remove-bg")
    info(f"preprocess: {summary['in_output']} image(s) in {out} ({len(todo)} processed"
         + (f", {summary['images_per_second']} images/s" if summary["images_per_second"] else "")
         + f", {skipped} up to date, {len(failed)} failed or unreadable"
         + (f", {len(no_face)} without a face dropped" if cfg.no_face == "drop" and no_face else "")
         + f"); manifest {out / mf.MANIFEST_NAME}")
    return result


def _refuse_all_failed(out: Path, before: dict, paths, records: dict, df: pd.DataFrame, readable, keep,
                       dropped) -> None:
    """A run that wrote no image because every image failed (to process, or unreadable; not --no-face drop alone,
    said by its own error) is an error, exit 2: nothing to train or predict on, said as the most common reason and
    an image of it, not a run that exits 0 with "0 image(s)". OUT is left as it was (_leave_as_it_was). An
    unreadable row clean did not keep (keep = false) is not processed, so is no failure of this run: counted, it
    could be the most common reason and hide why the kept images failed."""
    from collections import Counter
    why = [(i, r["error"]) for i, r in sorted(records.items()) if r["error"] and r["error"] != NO_FACE_DROPPED]
    why += [(i, f"unreadable input: {df.at[i, 'error']}") for i in range(len(df)) if not readable[i] and keep[i]]
    if not why:
        return
    reason, n = Counter(e for _, e in why).most_common(1)[0]
    example = paths[next(i for i, e in why if e == reason)]
    _leave_as_it_was(before)
    also = f", {plural(len(dropped), 'image')} without a face dropped" if dropped else ""
    raise UserError(f"every image failed ({plural(len(why), 'image')}{also}), nothing was written to {out} (an "
                    f"earlier output there is left as it was); most often ({n} of them): {reason} (e.g. {example}): "
                    f"fix that and preprocess again")


def _process(todo, records: dict, jpath: Path, settings: dict, sources, names, stamps, cfg: PreprocessConfig,
             workers: int, parallel: bool, models: Models | None = None, rembg_file: Path | None = None) -> None:
    """Process the images `todo` into `records`, each written one added to the resume journal `jpath` as it is
    finished (a Ctrl-C keeps them: the rerun skips them). `models`: those already loaded, for a run in this
    process (built when there is something to process: not with `parallel`); `rembg_file`: the rembg model file
    checked before the scan, for the workers (Models)."""
    if not todo:
        return
    with open_journal(jpath, settings) as journal:

        def log(i: int, rec: dict) -> None:
            records[i] = rec
            if rec["written"]:
                journal.write(json.dumps({"source_path": sources[i], "path": names[i], **rec,
                                          "source_stamp": stamps[i]},
                                         default=_json_default) + "\n")
                journal.flush()

        with progress_bar("preprocessing", len(todo)) as advance:
            if not parallel:
                for i, s, d in todo:
                    log(i, process_image(s, d, cfg, models)[0])
                    advance()
            else:
                _run_parallel(todo, cfg, workers, log, advance, rembg_file)


def _state_before(out: Path, jpath: Path, todo, made: list[Path]) -> dict:
    """What _leave_as_it_was needs to put OUT back: the journal's bytes (None: there was none; an interrupted run's of
    other settings is started anew by open_journal), the folders this run makes (the mirrored folders of the images
    to do, then OUT and those above it), deepest first, and each image to do as it is (an earlier run's output)."""
    try:
        journal = jpath.read_bytes() if jpath.is_file() else None
    except OSError:
        journal = None
    out_r = out.resolve()      # the images to do are resolved paths (fsutil.under_all)
    parents = {Path(d).parent for _, _, d in todo}
    inner = {q for p in parents for q in (p, *p.parents) if out_r in q.parents and not os.path.lexists(q)}
    return {"out": out, "journal": journal, "jpath": jpath, "made": made,
            "inner": sorted(inner, key=lambda q: len(q.parts), reverse=True),
            "outputs": {d: _file_version(d) for _, _, d in todo}}


def _file_version(path) -> tuple | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _leave_as_it_was(before: dict) -> None:
    """OUT put back as it was before a run that failed without finishing an image: its resume journal removed (or the
    earlier one written back) and the folders it made removed where empty. An image a worker wrote whose record
    never came back (its pool broke meanwhile) is a change: then the journal stays and OUT reads as unfinished."""
    if any(_file_version(d) != v for d, v in before["outputs"].items()):
        return
    jpath = before["jpath"]
    try:
        if before["journal"] is None:
            jpath.unlink(missing_ok=True)
        else:
            with atomic_path(jpath) as tmp:
                tmp.write_bytes(before["journal"])
        remove_stale_temps(before["out"])      # a killed worker's half-written image
    except OSError:
        return
    for d in before["inner"]:
        try:
            d.rmdir()          # only an empty folder
        except OSError:
            pass
    remove_made(before["made"])


def _cpu_seconds() -> float:
    """CPU seconds of this process and of the worker processes it has waited for (a pool's, once shut down:
    getrusage counts a child as it is reaped), so preprocess.json's cpu_seconds_per_image is the work over every
    process (with workers it was null: this process's time alone said nothing)."""
    import resource
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def _json_default(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def _run_parallel(todo, cfg: PreprocessConfig, workers: int, log, advance, rembg_file: Path | None = None) -> None:
    import multiprocessing
    threads = max(1, (os.cpu_count() or 1) // workers)
    # with a model per image (a face detection, a matte: 0.1 to several seconds each) an image is a task: the bar
    # and the resume journal move per image, a Ctrl-C loses only the images in the workers, and no worker idles
    # while another ends a long chunk; a plain resize (milliseconds) goes in chunks, cheaper to hand out
    chunk = 1 if cfg.face_crop or cfg.remove_bg else max(1, min(16, len(todo) // (workers * 4)))
    chunks = [todo[k:k + chunk] for k in range(0, len(todo), chunk)]
    # spawn, not fork: a parent that already ran the models (or imported torch) holds ONNX Runtime / OpenCV /
    # OpenMP thread pools whose locks a forked child inherits (a bench that forked workers after an in-process run
    # in the same process did not finish in 10 minutes)
    ctx = multiprocessing.get_context("spawn")
    # closed_pool: the images not started are dropped on Ctrl-C (leaving the pool waited for them all), a Ctrl-C
    # during its shut-down stops the workers
    with closed_pool(ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_worker,
                                         initargs=(cfg, threads, rembg_file))) as ex:
        try:
            # submit too: a worker that died while the chunks were still being handed out broke the pool there.
            # The workers are spawned as the chunks are submitted: they start with Ctrl-C and SIGTERM held
            # (signals_held): a Ctrl-C reached them in their seconds of imports, before init_worker ignores it, as a
            # traceback; a SIGTERM in the middle of a spawn left the new worker without its start (EOFError)
            with signals_held():
                pending = {ex.submit(run_chunk, c) for c in chunks}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        results = fut.result()
                    except UserError:
                        for p in pending:
                            p.cancel()
                        raise
                    for i, rec in results:
                        log(i, rec)
                    advance(len(results))
        except BrokenProcessPool as e:
            from imgcls.parallel import worker_died
            raise worker_died(e, "a preprocess worker", _why_workers_die(),
                              "finished images are kept and skipped next time") from None


def _why_workers_die() -> str | None:
    """What to do about a dead worker. The workers are spawned: each imports the caller's __main__ module, so a
    Python script that calls run_preprocess at its top level, not under `if __name__ == "__main__":`, runs again
    in every worker until its first step refuses there (parallel.refuse_while_a_worker_imports_main) and the
    worker dies; workers=1 would hide that instead of naming it. A notebook or `imgcls preprocess` has no such
    script: None (the fix parallel.worker_died names for every step's pool)."""
    import sys
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if script and str(script).endswith(".py") and getattr(main, "__spec__", None) is None:    # `python x.py`
        return (f"a script that calls run_preprocess ({script}) must call it under `if __name__ == \"__main__\":` "
                f"(the workers are spawned processes that import the script); else run again with workers=1 to see "
                f"why")
    return None


def _assemble(df: pd.DataFrame, out: Path, names: list[str], sources: list[str],
              records: dict[int, dict]) -> pd.DataFrame:
    res = df.copy()
    res["source_path"] = sources
    for c in FACE_COLUMNS + ["matte_kept"]:
        res[c] = pd.Series([None] * len(res), dtype=object)
    res["bg_removed"] = False
    for c in mf.SCAN_COLUMNS:
        res[c] = res[c].astype(object)
    out_root = str(out.resolve())
    roots, paths = list(res["root"]), list(res["path"])
    # each column set whole from a list (a pandas cell write per image and column: 135k at 7.5k images, the most of
    # a rerun that processes nothing)
    at = dict(zip(records, res.index.get_indexer(list(records))))
    cells = {c: res[c].tolist() for c in RECORD_COLUMNS + mf.SCAN_COLUMNS}
    for i, r in records.items():
        p = at[i]
        for c in RECORD_COLUMNS:
            cells[c][p] = r.get(c)
        if r["written"]:
            roots[p], paths[p] = out_root, names[p]
            for c in mf.SCAN_COLUMNS:
                cells[c][p] = r.get(c) if c != "error" else ""
        else:
            cells["error"][p] = r["error"]
    for c, values in cells.items():
        res[c] = pd.Series(values, index=res.index, dtype=object if res[c].dtype == object else None)
    res["root"], res["path"] = roots, paths
    return mf.coerce(res)


# report.html's Counts: images only (the run's settings and times apart)
REPORT_COUNTS = ("images", "processed", "up_to_date", "in_output", "failed", "unreadable_input", "not_kept",
                 "no_face", "face_lost_to_matte", "blank_after_matte")
REPORT_RUN = ("source", "workers", "seconds", "images_per_second", "cpu_seconds_per_image")


def _write_report(out: Path, summary: dict, res: pd.DataFrame, failed, no_face, cfg: PreprocessConfig,
                  face_lost=(), blank=(), shown: dict[str, str] | None = None) -> None:
    """report.html: settings (with the label record's, manifest.label_record: age bands, --label-col; and the
    oversampling ones), the run (source, workers, times), the image counts, before / after pairs and the lists.
    `shown`: each source path as the lists name it, its path under its dataset's root as before / after names it
    (the absolute paths: preprocess.json, the terminal)."""
    from imgcls import report as rp
    shown = shown or {}
    settings = dict(summary["settings"])
    settings.update((k, summary[k]) for k in ("age_bands", "relabel_age", "label_col")
                    if summary.get(k) is not None)
    settings.update((k if k.startswith("oversample") else f"oversample_{k}", v)
                    for k, v in (summary.get("oversample_settings") or {}).items())
    counts = [(k, summary[k]) for k in REPORT_COUNTS]
    copies = summary.get("oversampled") or {}
    counts += [(f"oversampled copies{'' if k == 'copies' else ' ' + k.replace('_', ' ')}", copies[k])
               for k in ("copies", "written", "up_to_date") if k in copies]
    from imgcls.options import setting_text       # an unset --size: "keep the size", not an empty cell
    sections = [("Settings", rp.key_values((k, setting_text(PreprocessConfig, k, v)) for k, v in settings.items())),
                ("Run", rp.key_values((k, summary[k]) for k in REPORT_RUN if summary.get(k) is not None)),
                ("Counts", rp.key_values(counts))]
    done = res[(res["error"] == "") & (res["root"] == str(out.resolve()))]
    pairs = []
    bound = cfg.max_pixels      # --max-pixels, as the images were decoded by the step (a large scan it processed)
    for _, r in done.head(12).iterrows():
        before = rp.thumb_data_uri(r["source_path"], 128, bound)
        after = rp.thumb_data_uri(Path(r["root"], r["path"]), 128, bound)
        pairs.append(rp.figure([(before, "input"), (after, "output")], [r["path"]]))
    sections.append(("Before / after (first 12)", "".join(pairs) or rp.note("none")))
    if cfg.face_crop:
        items = [rp.figure([(rp.thumb_data_uri(p, 96, bound), "no face")], [shown.get(p, p)]) for p in no_face[:200]]
        more = rp.note(f"{len(no_face) - 200} more") if len(no_face) > 200 else ""
        sections.append((f"No face found ({len(no_face)}; --no-face {cfg.no_face})",
                         rp.table(pd.DataFrame({"path": [shown.get(p, p) for p in no_face]}), max_rows=100000)
                         + "".join(items) + more))
    if cfg.face_crop and cfg.remove_bg:
        items = [rp.figure([(rp.thumb_data_uri(Path(res.at[i, "root"], res.at[i, "path"]), 96, bound),
                             f"face kept {kept:.0%}")], [shown.get(given, given)])
                 for i, given, kept in face_lost[:200]]
        table = pd.DataFrame([(shown.get(g, g), k) for _, g, k in face_lost], columns=["path", "face_kept"])
        sections.append((f"Faces the background removal took for background ({len(face_lost)}; face_kept below "
                         f"{FACE_LOST:.0%})", rp.table(table, max_rows=100000) + "".join(items)))
    if cfg.remove_bg:
        items = [rp.figure([(rp.thumb_data_uri(Path(res.at[i, "root"], res.at[i, "path"]), 96, bound),
                             f"image kept {kept:.1%}")], [shown.get(given, given)]) for i, given, kept in blank[:200]]
        table = pd.DataFrame([(shown.get(g, g), k) for _, g, k in blank], columns=["path", "matte_kept"])
        sections.append((f"Images the background removal left blank ({len(blank)}; matte_kept below "
                         f"{BLANK_MATTE:.0%})", rp.table(table, max_rows=100000) + "".join(items)))
    sections.append((f"Failed or unreadable, skipped ({len(failed)})",
                     rp.table(pd.DataFrame([(shown.get(g, g), e) for g, e in failed], columns=["path", "error"]),
                              max_rows=100000)))
    rp.write_page(out / REPORT_HTML, "imgcls preprocess", sections)
