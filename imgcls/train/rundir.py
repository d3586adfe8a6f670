"""The run folder: named by one path component, created exclusively, held by one process at a time.

- `check_run_name`: a run name is a single path component (`--name ../..` would write the run anywhere).
- `claim_run_dir`: `out/name` made with an atomic mkdir, so two `imgcls train` started at once can never share a
  folder: the default name (time-model) takes the next free `-2`, `-3`... suffix; a given `--name` that exists is an
  error unless `--exist-ok` (and even then a folder holding a run's checkpoints is never trained over: `--resume` it;
  nor one holding an earlier run's record whose last.pt is gone: earlier_run_record).
- `unclaim_run_dir`: a run refused before its first epoch trained removes the folder claim_run_dir made for it.
- `RunLock`: an exclusive `flock` on the run folder itself for the run's duration (a resume of a run that is still
  training fails in one line). The kernel drops the lock when the process ends, `kill -9` included: no lock file
  is left behind to clean.
- `find_checkpoints`: the best.pt / last.pt files of a run folder (or of each fold of a k-fold set), found by their
  paths alone: ensemble, predict and export refuse a wrong run in one line before they import torch to read one;
  `init_checkpoint`: the one `--init-from RUN` starts from. What a checkpoint file holds is imgcls.train.checkpoint's
  to read (it does not import this module).
- `set_progress`: how far a k-fold set got ('folds done 1/2, fold_1 3/10'), the one reading of it, for `imgcls runs`
  (runs.run_state) and for predict's, ensemble's and export's refusal of a set not finished (check_kfold_finished):
  each fold's last.pt, or its metrics.csv (read_metrics) where last.pt is gone.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Sequence

from imgcls.console import plural, sh
from imgcls.errors import UserError
from imgcls.figure_files import RUN_FIGURES
from imgcls.fsutil import check_folder_name, did_you_mean
from imgcls.options import choose_another, python_too, whose
from imgcls.outputs import MANIFEST_NAME, REPORT_HTML
from imgcls.run_names import (BEST_BY, BEST_PT, CRASH_LINE, FOLDS_PLANNED, IMAGE_CACHE, LAST_PT, LAST_STATE,
                              METRICS_CSV, OOF_SCORE, PER_CLASS_CSV, REFUSED_LINE, RUN_CONFIG, RUN_PLAN, TRAIN_LOG,
                              VAL_PREDICTIONS,
                              fold_dir, fold_dirs, fold_number, fold_set, is_fold_dir, records_folds)
from imgcls.runs_config import RUNS_TABLE

if TYPE_CHECKING:
    import pandas as pd

ANOTHER_NAME = choose_another("--name")     # a taken run folder's fix, for both callers


def resume_fix(run_dir: str | os.PathLike, data: str | os.PathLike | None = None) -> str:
    """The command that continues a run, and its Python call (run_train continues the run with the config it
    records, the options a fresh TrainConfig() leaves at their defaults read from it); `data`: on that data, given
    again (its src)."""
    if data is None:
        return python_too(f"imgcls train --resume {sh(run_dir)}", f"run_train(TrainConfig(), resume={str(run_dir)!r})")
    return python_too(f"imgcls train {sh(data)} --resume {sh(run_dir)}",
                      f"run_train(TrainConfig(src={str(data)!r}), resume={str(run_dir)!r})")


def train_again(run_dir: str | os.PathLike, name: str, src: str | os.PathLike | None = None, **typed) -> str:
    """The command, and its Python call, that trains a new run `name` with the options `run_dir`'s config.yaml
    records: on `src` where given (its data, typed again), and the options of `typed` ({option: what to type, a
    placeholder such as N}) typed over them. A k-fold set's one way to train again (no fold is trained alone)."""
    config = Path(run_dir) / RUN_CONFIG
    given = {**({"src": str(src)} if src is not None else {}), "name": name}
    py = ", ".join([*(f"{k!r}: {v!r}" for k, v in given.items()), *(f"{k!r}: {v}" for k, v in typed.items())])
    data = f"{sh(src)} " if src is not None else ""
    return python_too(f"imgcls train {data}--config {sh(config)} --name {sh(name)}"
                      + "".join(f" --{k.replace('_', '-')} {v}" for k, v in typed.items()),
                      f"run_train(TrainConfig.resolve({{{py}}}, config={str(config)!r}))")


def diverged_set_fix(set_dir: Path, name: str | None = None) -> str:
    """The fix of a k-fold set a fold of which diverged (its weights NaN, or overflowing to NaN probabilities): no
    fold is trained alone, so the set again whole as a new one (train_again) with a lower --lr than it recorded.
    `name`: how the line names the set (an ensemble's member name); its folder's name by default."""
    from imgcls.outputs import read_yaml
    recorded = read_yaml(Path(set_dir) / RUN_CONFIG).get("lr")     # {} where unreadable: no train.config import
    lr = f" (its {recorded:g})" if isinstance(recorded, (int, float)) and not isinstance(recorded, bool) else ""
    return (f"train {name or Path(set_dir).name} again as a new k-fold set (no fold is trained alone) with a lower "
            f"--lr{lr}: {train_again(set_dir, Path(set_dir).name + '-2', lr='LR')}")


def diverged_fix(ckpt_path: str | os.PathLike) -> str:
    """checkpoint.load_model's fix for a checkpoint whose weights are NaN: its run trained again with a lower --lr; a
    k-fold set's fold's, the set again whole (diverged_set_fix: no fold is trained alone)."""
    folds = fold_set(Path(ckpt_path).parent)
    return "train it again with a lower --lr" if folds is None else diverged_set_fix(folds)


def check_run_name(name: str | None) -> None:
    if name is not None:
        check_folder_name(name, "--out", "exp1")


def new_run_name(model: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{model.replace('/', '_')}"


def holds_run(folder: Path) -> bool:
    return (folder / LAST_PT).exists() or any((d / LAST_PT).exists() for d in fold_dirs(folder))


def earlier_run_record(folder: Path) -> str | None:
    """What in `folder` (or a fold_N folder of it) tells of an earlier run that trained epochs there, its last.pt
    gone (holds_run: with it, a run to --resume), in a few words ('metrics.csv records 2 epochs', 'fold_0/best.pt
    is there'): its metrics.csv's epochs, its best.pt, its LAST_STATE. None where nothing does: an empty folder, the
    user's own, or one a refusal or a crash left before its first epoch finished."""
    for d in (folder, *fold_dirs(folder)):
        at = "" if d == folder else f"{d.name}/"
        done = epochs_done(d)
        if done:
            return f"{at}{METRICS_CSV} records {plural(done, 'epoch')}"
        for f in (BEST_PT, LAST_STATE):
            if (d / f).is_file():
                return f"{at}{f} is there"
    return None


def _fold_files(run_dir: Path, name: str) -> list[Path]:
    """The file `name` of each fold of the k-fold set in `run_dir` that holds one, by fold number: its planned folds
    (set_fold_dirs: a fold folder its plan does not name is no fold of it)."""
    return [d / name for d in set_fold_dirs(run_dir)[0] if (d / name).is_file()]


def claim_run_dir(out: Path, name: str | None, model: str, exist_ok: bool = False) -> tuple[Path, list[Path]]:
    """Create the run folder exclusively (see the module doc); returns it and the folders this call made, for
    unclaim_run_dir (fsutil.folders_to_make's list, deepest first: the run folder, then `out` and those above it
    that were not there; [] where --exist-ok took a folder that was). A given `name` was checked by check_run_name
    (run_train does it first, before torch is imported)."""
    from imgcls.fsutil import folders_to_make
    made = folders_to_make(out)
    out.mkdir(parents=True, exist_ok=True)
    if name is None:
        base = new_run_name(model)
        for k in range(1, 10_000):
            run_dir = out / (base if k == 1 else f"{base}-{k}")
            try:
                run_dir.mkdir()
                return run_dir, [run_dir, *made]
            except FileExistsError:
                continue
        raise UserError(f"no free run name {base}-N under {out}; pass --name")
    run_dir = out / name
    try:
        run_dir.mkdir()
        return run_dir, [run_dir, *made]
    except FileExistsError:
        pass
    check_run_dir_free(out, name, exist_ok)
    return run_dir, []


def unclaim_run_dir(made: list[Path], taken: Path | None = None) -> bool:
    """A run refused before its first epoch trained (images broken since the scan, found as they decode): the run
    folder claim_run_dir made (`made`, its list) goes with the files the run wrote there, and the folders above it
    it made where left empty, so the same command is not refused on 'already exists' once the fault is fixed. One
    holding an epoch's weights (best.pt or last.pt: a k-fold set's trained fold), or one it did not make ([]:
    --exist-ok, --resume), stays; so does one whose MLflow or W&B run has started (its record there: the tracker
    ended it as failed, and --resume goes on in it), saying so: True then (train.log records the refusal), else
    False. `taken`: the folder --exist-ok took (`made` []: it was there, holding no run's last.pt), which the run's
    config.yaml and set-up lines now fill: True too where no epoch of this run trained (still no last.pt), so
    `imgcls runs` reads the refusal, not the folder's earlier state (crashed, a Ctrl-C's stopped) as this run's."""
    import shutil

    from imgcls.fsutil import remove_made
    if not made and taken is not None:
        return not holds_run(taken)
    if not made or any((d / f).exists() for d in (made[0], *fold_dirs(made[0])) for f in (BEST_PT, LAST_PT)):
        return False
    from imgcls.track.common import recorded_trackers
    tracked = list(dict.fromkeys(t for d in (made[0], *fold_dirs(made[0])) for t in recorded_trackers(d)))
    if tracked:
        from imgcls.console import info
        info(f"{made[0]} stays, though no epoch finished: its {' and '.join(tracked)} run names it; "
             f"{resume_fix(made[0])} trains it from the start in that run")
        return True
    shutil.rmtree(made[0], ignore_errors=True)
    remove_made(made[1:])
    return False


def check_run_dir_free(out: Path, name: str, exist_ok: bool = False) -> None:
    """claim_run_dir's refusals of a given --name whose folder exists, without making anything (train says them
    before it imports torch)."""
    run_dir = Path(out) / name
    if not os.path.lexists(run_dir):
        return
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} exists and is not a folder; {ANOTHER_NAME}")
    if holds_run(run_dir):
        if _said_finished(run_dir):     # --resume would say "already finished, nothing to resume"
            raise UserError(f"run folder {run_dir} already holds a finished run (a run is never trained over); "
                            f"{ANOTHER_NAME}, or to train it longer {train_longer(run_dir)}")
        raise UserError(f"run folder {run_dir} already holds a run (a run is never trained over); continue it with "
                        f"{resume_fix(run_dir)}, or {ANOTHER_NAME}")
    # another step's output (a tune study: its trials.csv and study.db, none a run's name that --exist-ok refuses
    # below) is no folder to train into: the run's files would mix with its own, and the folder read as a train run
    from imgcls.outputs import output_step
    other = output_step(run_dir)
    if other is not None and other[0] != "train":
        raise UserError(f"run folder {run_dir} holds {other[1]}; a run is trained into a folder of its own: "
                        f"{ANOTHER_NAME}")
    # an earlier run's record, its last.pt gone (deleted by hand, or tune --keep): trained into, a Ctrl-C before the
    # first epoch left it reading as that run (its metrics.csv's `stopped 2/3`), its plan.json kept
    record = earlier_run_record(run_dir)
    if record is not None:
        raise UserError(f"run folder {run_dir} holds an earlier run's record, its {LAST_PT} gone ({record}); a run is "
                        f"never trained over, --exist-ok or not: {ANOTHER_NAME}, or remove the folder first")
    if not exist_ok:
        raise UserError(f"run folder {run_dir} already exists; {ANOTHER_NAME}, or pass "
                        f"{python_too('--exist-ok', 'exist_ok=True')} to train into it")
    # --exist-ok: a folder holding no run, the user's own (notes, their report.html): a file of a run's name there
    # would be replaced; a run's own files there (one a refusal or a crash left before its first epoch) are replaced
    from imgcls.outputs import refuse_users_files
    refuse_users_files(run_dir, "train", run_files(run_dir), flag="--name")


def _said_finished(run_dir: Path) -> bool:
    """finished() from the LAST_STATE records alone (no torch: check_run_dir_free runs before train imports it); a
    run without them counts as unfinished, whose --resume says what it is."""
    return finished(run_dir, lambda p: (state := _last_state(p)) is not None and state["finished"])


def train_longer(run_dir: Path, **typed) -> str:
    """The command that trains a finished run further, for the lines that say it cannot be extended: a new run from
    its weights on its data (--init-from takes its model and input size), or for a k-fold set (one fold's weights would leak
    into the others) or a run whose weights are gone a new one with its recorded options, `typed` ({option:
    placeholder}) typed over them too."""
    if records_folds(run_dir / RUN_CONFIG):
        return "start a new k-fold set with its options: " + train_again(run_dir, run_dir.name + "-long", epochs="N",
                                                                         **typed)
    if (run_dir / BEST_PT).is_file():       # a new run of the defaults on its data: its own --early-stop not carried
        return "start a new run from its weights: " + init_from_fix(run_dir, epochs="N")
    # its weights gone (its *.pt deleted: by hand, tune --keep): trained again, longer, with its options (--config)
    return "train it again under another name: " + train_again(run_dir, run_dir.name + "-long", epochs="N", **typed)


def init_from_fix(run_dir: Path, **typed) -> str:
    """The command, and its Python call, that starts a new run from a run's best.pt on its data (recorded absolute,
    else the default; --init-from takes its model and input size), with the options of `typed` ({option: what to
    type, a placeholder such as N})."""
    from imgcls.outputs import read_yaml
    src = read_yaml(run_dir / RUN_CONFIG).get("src")
    data = f"{sh(src)} " if isinstance(src, str) and src else ""
    given = f"'src': {src!r}, " if isinstance(src, str) and src else ""
    # resolve, as the command line: it takes the run's model and input size (TrainConfig(init_from=...) keeps the
    # default model, which is refused with another model's weights)
    return python_too(f"imgcls train {data}--init-from {sh(run_dir)}"
                      + "".join(f" --{k.replace('_', '-')} {v}" for k, v in typed.items()),
                      f"run_train(TrainConfig.resolve({{{given}'init_from': {str(run_dir)!r}"
                      + "".join(f", {k!r}: {v}" for k, v in typed.items()) + "}))")


def last_pt_gone(folder: Path) -> str | None:
    """What shows that the run (or k-fold fold) in `folder` wrote a last.pt that is gone since (deleted by hand,
    or by tune --keep with the trial's other checkpoints): its metrics.csv records a second epoch (the first's
    last.pt was written before it), or LAST_STATE, written after last.pt only, is there ('metrics.csv records 3
    epochs'). None where last.pt is there, or where the folder tells of none written: stopped in its first epoch,
    or as its last.pt was being written (metrics.csv's first row then, nothing else): nothing to continue, and
    --resume trains it from the start."""
    if (folder / LAST_PT).is_file():
        return None
    done = epochs_done(folder)      # last.pt gone: metrics.csv's epochs, None where it is malformed or gone
    if done and (done > 1 or (folder / LAST_STATE).is_file()):
        return f"{METRICS_CSV} records {plural(done, 'epoch')}"
    if (folder / LAST_STATE).is_file():
        return f"{LAST_STATE}, written after each {LAST_PT}, is there"
    return None


def _train_again_fix(run_dir: Path, kfold: bool) -> str:
    """The way to train a run or k-fold set again as a new one (train_again, named NAME-2), where --resume cannot
    continue it."""
    if kfold:
        return ("train the set again as a new k-fold set (no fold is trained alone): "
                + train_again(run_dir, run_dir.name + "-2"))
    return f"train it again under another name: {train_again(run_dir, run_dir.name + '-2')}"


def _trained_folders(run_dir: Path, kfold: bool) -> list[Path]:
    """The folders a run trains in: its own, or a k-fold set's (`kfold`) planned fold folders (set_fold_dirs)."""
    return set_fold_dirs(run_dir)[0] if kfold else [run_dir]


def _gone_way_on(run_dir: Path) -> tuple[str, bool, str, bool] | None:
    """(what is gone, whether tune --keep deleted it, the way on, whether it is a k-fold set) of a run or k-fold set
    whose last.pt is gone after it trained (last_pt_gone; a k-fold set: any of its folds'): a new run from its
    best.pt, or trained again under another name; a tune trial's retrain (deleted_by_tune). None where its last.pt
    is kept, or none was written."""
    kfold = records_folds(run_dir / RUN_CONFIG)
    gone = [(d, why) for d in _trained_folders(run_dir, kfold) if (why := last_pt_gone(d))]
    if not gone or finished(run_dir):   # a finished run or set (finished: its LAST_STATE, metrics.csv, its other
        return None                     # folds' last.pt say so): run_train says 'already finished, nothing to resume'
    if kfold:       # a fold finished (fold_state, as `imgcls runs` reads it) has nothing to continue: the resume
        settings = progress_settings(run_dir)      # reads its result back (its oof_score.json written from it)
        gone = [(d, why) for d, why in gone if not read_back(d, settings)]
        if not gone:
            return None
        one = len(gone) == 1
        what = (f"the {LAST_PT} of {', '.join(d.name for d, _ in gone)} {'is' if one else 'are'} gone, though "
                f"{gone[0][0].name}/{gone[0][1]}")
        again = _train_again_fix(run_dir, kfold)
    else:
        what = f"its {LAST_PT} is gone, though its {gone[0][1]}"
        again = _train_again_fix(run_dir, kfold)
        if (run_dir / BEST_PT).is_file():
            again = f"start a new run from its {BEST_PT}: {init_from_fix(run_dir)}, or {again}"
    by_tune = deleted_by_tune(run_dir)
    return what, by_tune is not None, by_tune or again, kfold


def check_last_pt_kept(run_dir: Path) -> None:
    """--resume of a run whose last.pt is gone (last_pt_gone; a k-fold set: any of its folds'): there is nothing to
    continue from, and the resume trained it from epoch 1 again silently, over the metrics.csv, best.pt and
    predictions of the epochs it had (a tune trial's record of them too). One line naming what is gone and the way
    on (_gone_way_on), before anything is read or written."""
    gone = _gone_way_on(run_dir)
    if gone is None:
        return
    what, by_tune, way_on, kfold = gone
    fix = way_on if by_tune else (f"deleted since? There is nothing to continue, and a resume does not train the "
                                  f"{'set' if kfold else 'run'} over from epoch 1; {way_on}")
    raise UserError(f"--resume {run_dir}: {what}: {fix}")


def finish_fix(run_dir: Path) -> str:
    """The way to finish a stopped run or k-fold set, for the lines that name one (predict's newest choice passing
    it by, an ensemble's member): 'finish it with' its --resume (resume_fix) where its last.pt is kept; where it is
    gone (--resume refuses it: check_last_pt_kept) what is gone and the way on that refusal names."""
    gone = _gone_way_on(Path(run_dir))
    if gone is None:
        return f"finish it with {resume_fix(run_dir)}"
    what, _, way_on, _ = gone
    return f"{what}, so it cannot be finished (train --resume refuses it): {way_on}"


def validation_lost(run_dir: Path) -> str | None:
    """What says the val_predictions.csv of a run (a k-fold set: of any of its folds) is gone after it validated an
    epoch (its best.pt, or its metrics.csv's epochs: train writes the file with best.pt at each better epoch), which
    train --resume does not write again: an epoch trained on only rewrites it where it is better, a finished fold
    is read as it is (a set's out-of-fold predictions were then never written, silently). None where none is."""
    kfold = records_folds(run_dir / RUN_CONFIG)
    lost = [d for d in _trained_folders(run_dir, kfold) if not (d / VAL_PREDICTIONS).is_file()
            and ((d / BEST_PT).is_file() or (epochs_done(d) or 0) >= 1)]
    if not lost:
        return None
    which = f"the {VAL_PREDICTIONS} of {', '.join(d.name for d in lost)}" if kfold else f"its {VAL_PREDICTIONS}"
    return (f"{which} {'is' if len(lost) == 1 else 'are'} gone after {'they' if len(lost) > 1 else 'it'} validated "
            f"(deleted since?), and train --resume does not write {'them' if len(lost) > 1 else 'it'} again")


def check_validation_kept(run_dir: Path) -> None:
    """--resume of a k-fold set a fold of which lost its val_predictions.csv (validation_lost): the resume trained
    the other folds on and never wrote the set's out-of-fold predictions nor its oof_score.json, saying nothing (the
    set read stopped, 'oof_score.json missing', after it). One line, before anything is read or written. A single
    run's resume goes on (its further epochs train on; written_file_fix does not promise the file from it). An older
    set (no plan.json, --folds all) is left to its resume: which of its fold folders are its own is known only once
    its data is read (a stray fold_2 of another set's holds no val_predictions.csv of this one's)."""
    if not records_folds(run_dir / RUN_CONFIG) or finished(run_dir) or planned_folds(run_dir) is None:
        return
    lost = validation_lost(run_dir)
    if lost is not None:
        raise UserError(f"--resume {run_dir}: {lost}, so the set's out-of-fold predictions cannot be written: "
                        f"restore what is gone from a backup, or {_train_again_fix(run_dir, True)}")


def written_file_fix(run_dir: Path) -> str:
    """The way on for a file a run or k-fold set writes as it trains (its val_predictions.csv) that is not there:
    being trained now (its lock held), to wait for it; where it finished, train --resume writes nothing again (it
    says 'already finished, nothing to resume'), and where one was written and is gone since (validation_lost),
    nor does a resume: restore the file, or train it again (_train_again_fix); else finish_fix (its --resume, or
    where its last.pt is gone, the way on that refusal names)."""
    if RunLock.held(run_dir):
        return "imgcls train is training it now: wait for it to finish (it writes the file as it validates)"
    kfold = records_folds(run_dir / RUN_CONFIG)
    if finished(run_dir):
        return (f"it finished, so train --resume writes nothing again: restore the file from a backup, or "
                f"{_train_again_fix(run_dir, kfold)}")
    lost = validation_lost(run_dir)
    if lost is not None:
        return f"{lost}: restore the file from a backup, or {_train_again_fix(run_dir, kfold)}"
    return finish_fix(run_dir)


class RunLock:
    """Exclusive, non-blocking flock on a run folder (fsutil.exclusive_lock); a second holder gets a UserError
    naming the folder."""

    def __init__(self, run_dir: Path, resuming: bool = False):
        self.run_dir = Path(run_dir)
        self.resuming = resuming        # train --resume RUN: another --name is no fix (the run is the one asked for)
        self._lock = None

    def __enter__(self) -> "RunLock":
        from imgcls.fsutil import LockBusy, exclusive_lock

        def unlocked(e: OSError) -> None:       # a traceback before: train on an NFS home folder (EBADF) did not start
            from imgcls.console import warn
            # keyed by the folder holding it: tune's trials, each a run folder of the study's, say it once
            warn(f"run folder {self.run_dir}: its file system takes no lock ({os.strerror(e.errno)}), so a second "
                 f"imgcls train into this folder at the same time would not be stopped",
                 key=f"no lock: {self.run_dir.parent} {e.errno}")
        lock = exclusive_lock(self.run_dir, wait=False, unlocked=unlocked)
        try:
            lock.__enter__()
        except LockBusy as busy:
            fix = f"; {RUNS_TABLE} shows it running" if self.resuming else f" or {ANOTHER_NAME}"
            who = f" (process {busy.holder})" if busy.holder else ""
            raise UserError(f"run folder {self.run_dir} is in use by another imgcls train{who}; wait for it to "
                            f"finish{fix}") from None
        self._lock = lock
        return self

    def __exit__(self, *exc) -> bool:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.__exit__(None, None, None)
        return False

    @staticmethod
    def held(run_dir: str | os.PathLike) -> bool | None:
        """Whether a train process holds the run folder's lock now (it is training), read from /proc/locks rather
        than by taking the lock, which could make a train starting at that instant fail; None where the kernel
        does not list its locks there (not Linux)."""
        from imgcls.fsutil import lock_holders
        holders = lock_holders(run_dir)
        return None if holders is None else bool(holders)


# options that say where a run reads its data and records itself, not what it learns: they may differ when a run is
# resumed, and `imgcls runs` keeps them out of what two runs changed
RESUME_MAY_CHANGE = ("src", "workers", "workers_used", "device", "device_used", "cache", "cache_used", "amp_used",
                     "out", "name", "exist_ok", "plots", "tracker", "tracking_uri", "track_checkpoint")


def option_changes(recorded: dict, now: dict, may_change=RESUME_MAY_CHANGE) -> list[tuple[str, object, object]]:
    """(option, recorded value, value now) for each option of `now` that differs from `recorded`, but those in
    `may_change` (how the data is read, where the outputs go)."""
    return [(k, recorded.get(k), v) for k, v in now.items() if k not in may_change and v != recorded.get(k)]


def record_plan(run_dir: str | os.PathLike, folds: list[int], classes: list[str]) -> Path:
    """Write RUN_PLAN in `run_dir`: the folds a k-fold set trains ([] for a single run) and the run's classes, known
    when it starts (config.yaml records --folds as typed, `all`, which needs the data's fold column to count, and
    no classes; the validation predictions name them after the first epoch, a k-fold set's out-of-fold ones after
    its last fold), so an unfinished set's progress reads done/planned and any run's task its class count."""
    from imgcls.fsutil import write_json
    return write_json(Path(run_dir) / RUN_PLAN, {"folds": [int(f) for f in folds],
                                                 "classes": [str(c) for c in classes]})


def _plan(run_dir: str | os.PathLike) -> dict:
    """The run's RUN_PLAN, else a k-fold set's older FOLDS_PLANNED; {} where neither is readable."""
    import json
    for name in (RUN_PLAN, FOLDS_PLANNED):
        try:
            plan = json.loads((Path(run_dir) / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(plan, dict):
            return plan
    return {}


def planned_classes(run_dir: str | os.PathLike) -> list | None:
    """The classes a run trains, as train recorded them as it started (_plan); None where nothing records them (a
    run started before RUN_PLAN, a k-fold set before FOLDS_PLANNED named them) or the record is unreadable."""
    classes = _plan(run_dir).get("classes")
    return [str(c) for c in classes] if isinstance(classes, list) and classes else None


def planned_folds(run_dir: str | os.PathLike, oof: OofRecord | None = None) -> list | None:
    """The folds a k-fold set trains, as train recorded them: its OOF_SCORE (written after the last fold), else its
    plan (written as it starts, _plan), else its config.yaml's --folds as typed (0,2; `all` names none, the data's
    fold column counts them); None where none names them (a single run, a set trained before FOLDS_PLANNED with
    --folds all). The one record of which fold folders are the set's (set_fold_dirs). `oof`: its OOF_SCORE as
    read_oof_score read it already (read here where None)."""
    folds = _oof(run_dir, oof).folds
    if not folds:
        folds = _plan(run_dir).get("folds")
    if not (isinstance(folds, list) and folds):
        from imgcls.outputs import read_yaml
        from imgcls.split.config import parse_folds
        typed = read_yaml(Path(run_dir) / RUN_CONFIG).get("folds")
        try:
            folds = parse_folds(typed) if typed not in (None, "") else None
        except UserError:
            folds = None
    return folds if isinstance(folds, list) and folds else None


def set_fold_dirs(run_dir: str | os.PathLike, oof: OofRecord | None = None,
                  folds: Sequence[int] | None = None) -> tuple[list[Path], list[Path]]:
    """(the fold folders of the k-fold set in `run_dir` that its plan names, those it does not): a fold_2 copied
    into a 2-fold set, left by another set of its name, is no fold of it; every reader of the set leaves it out
    (runs counts none, predict / ensemble / export average none: find_checkpoints). Where nothing records the plan
    (planned_folds: None) the set's folds are `folds` where given (a resume of an older set, --folds all: the folds
    its data holds, train's check_data's), else every fold folder is the set's (run_names.fold_dirs). `oof`:
    planned_folds'."""
    dirs = fold_dirs(run_dir)
    return _split_fold_dirs(run_dir, dirs, (planned_folds(run_dir, oof) or folds or None) if dirs else None)


def _split_fold_dirs(run_dir, dirs: list[Path], planned: Sequence[int] | None) -> tuple[list[Path], list[Path]]:
    """set_fold_dirs' split of the fold folders `dirs` by the folds `planned` (None: every one is the set's)."""
    if planned is None:
        return dirs, []
    named = {fold_dir(run_dir, k).name for k in planned}
    return [d for d in dirs if d.name in named], [d for d in dirs if d.name not in named]


class SetFolds(NamedTuple):
    """A k-fold set's planned folds (planned_folds) and its fold folders split by them (set_fold_dirs), read once
    for a caller that asks several things of them (a set's row in `imgcls runs`: its folds, its progress, a tune
    trial's epochs: they were resolved 3 times per row)."""
    planned: list | None        # planned_folds'
    ours: list[Path]            # set_fold_dirs' (the fold folders its plan names, those it does not)
    stray: list[Path]


def set_folds(run_dir: str | os.PathLike, oof: OofRecord | None = None, dirs: list[Path] | None = None) -> SetFolds:
    """SetFolds of the k-fold set in `run_dir` (`dirs`: its fold_dirs where the caller listed them already)."""
    dirs = fold_dirs(run_dir) if dirs is None else dirs
    planned = planned_folds(run_dir, oof)
    return SetFolds(planned, *_split_fold_dirs(run_dir, dirs, planned))


class OofRecord(NamedTuple):
    """A k-fold set's OOF_SCORE as read_oof_score read it: the one reading that a call asking several things of it (a
    set's row in `imgcls runs`, find_checkpoints' check of a set) passes along (`oof=`), rather than reading the
    file again for each (it was read up to 6 times per set)."""
    doc: object                 # the parsed JSON (its scores: runs' recorded ones); None where not there or not JSON
    folds: list[int] | None     # the folds it names; None where it names none (or is not there, or not JSON)
    why: str                    # what is wrong with it (not JSON, names no folds); '' where it is fine or not there


def read_oof_score(run_dir: str | os.PathLike) -> OofRecord:
    """A k-fold set's OOF_SCORE (OofRecord), the one reader of the file: (its JSON, the folds it names, '') where it
    names them; else the folds None and why not: '' where it is not there, else what is wrong with it (not JSON,
    names no folds)."""
    import json
    path = Path(run_dir) / OOF_SCORE
    if not path.is_file():
        return OofRecord(None, None, "")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return OofRecord(None, None, "not JSON" if isinstance(e, ValueError) else (e.strerror or str(e)))
    folds = doc.get("folds") if isinstance(doc, dict) else None
    if not (isinstance(folds, list) and folds and all(isinstance(k, int) and not isinstance(k, bool) for k in folds)):
        return OofRecord(doc, None, "names no folds")
    return OofRecord(doc, folds, "")


def _oof(run_dir: str | os.PathLike, oof: OofRecord | None) -> OofRecord:
    """`oof` where a caller read it already, else read_oof_score's reading."""
    return read_oof_score(run_dir) if oof is None else oof


def oof_unreadable(run_dir: str | os.PathLike, oof: OofRecord | None = None) -> str | None:
    """'oof_score.json unreadable (not JSON)' where a k-fold set's OOF_SCORE is there but names no folds it
    trained, which reads as a set not finished (kfold_finished): `train --resume` writes it again from its finished
    folds; None where it is not there or readable. `oof`: read_oof_score's reading, where a caller has it."""
    why = _oof(run_dir, oof).why
    return f"{OOF_SCORE} unreadable ({why})" if why else None


def kfold_finished(run_dir: Path, oof: OofRecord | None = None) -> bool:
    """Whether a k-fold set trained its last fold: its OOF_SCORE, written then, names the folds it trained (a fold
    that never started has no last.pt to ask); an unreadable one (oof_unreadable) is no such record. `oof`:
    read_oof_score's reading, where a caller has it."""
    return _oof(run_dir, oof).folds is not None


def folds_gone(run_dir: Path, name: str = BEST_PT,
               oof: OofRecord | None = None) -> tuple[list[str], list[str]] | None:
    """(the fold folders a finished k-fold set's OOF_SCORE names: train writes it after the last fold, with the
    folds it trained; those of them whose `name` checkpoint is gone since: the file or the fold's folder removed);
    None where OOF_SCORE is not there or names no folds (kfold_finished: the set did not finish). `oof`:
    read_oof_score's reading, where a caller has it."""
    run_dir = Path(run_dir)
    folds = _oof(run_dir, oof).folds
    if folds is None:
        return None
    planned = [fold_dir(run_dir, k).name for k in folds]
    return planned, [f for f in planned if not (run_dir / f / name).is_file()]


def check_kfold_finished(run_dir: Path, checkpoints: list[Path], name: str, oof: OofRecord | None = None) -> None:
    """A k-fold set is used whole only once train has finished every fold: it writes OOF_SCORE (with the
    folds it trained) after the last one. An interrupted set (some folds missing or part-trained) would predict
    with fewer folds than it names, silently; one line names what is there and the fixes: `train --resume` for an
    unfinished set, and for a finished one whose fold's checkpoint was removed since (it has nothing to resume)
    the fold restored or the set trained again. `checkpoints`: its planned folds' `name` files (set_fold_dirs:
    none where only a fold folder its plan does not name holds one). `oof`: read_oof_score's reading, where a caller
    has it (read here once where None)."""
    oof = _oof(run_dir, oof)
    have = [p.parent.name for p in checkpoints]
    listed = ", ".join(have) or "none"
    one_fold = f", or give one fold's folder ({checkpoints[0].parent})" if checkpoints else ""
    record = run_dir / OOF_SCORE
    trained = folds_gone(run_dir, name, oof)
    if trained is not None and not trained[1]:
        return
    if RunLock.held(run_dir):
        # `train --resume` is refused on a run in use (`imgcls ensemble A B` while B trains): the fix is to wait.
        # Folds train in order, so every fold with a checkpoint but the last has finished
        done = checkpoints[:-1]
        fold = f", or give one finished fold's folder ({done[0].parent})" if done else ""
        raise UserError(f"{run_dir} is a k-fold run that imgcls train is training now ({len(have)} fold(s) with a "
                        f"checkpoint so far: {listed}); wait for it to finish{fold}; {RUNS_TABLE} shows "
                        f"its progress")
    if trained is not None:
        # the set finished (its OOF_SCORE names its folds) and a fold's checkpoint went afterwards (its folder or
        # file deleted): `train --resume` says it has nothing to resume, so that is no fix
        planned, gone = trained[0], sorted(trained[1])
        one = len(gone) == 1
        raise UserError(f"{run_dir} is a finished k-fold run whose {', '.join(gone)} {'has' if one else 'have'} no "
                        f"{name} (removed after it trained: its {OOF_SCORE} names {', '.join(planned)}; imgcls train "
                        f"--resume has nothing to resume); restore {'it' if one else 'them'}, train the set again "
                        f"with its options ({train_again(run_dir, run_dir.name + '-2')}){one_fold}")
    # stopped before its end: the plan train wrote as the set started names what is missing
    planned = [fold_dir(run_dir, k).name for k in planned_folds(run_dir, oof) or []] or None
    gone = sorted(set(planned or ()) - set(have))
    unreadable = oof_unreadable(run_dir, oof)
    # how far it got, as `imgcls runs` says it: last.pt, or where that is gone its metrics.csv
    progress = set_progress(run_dir, progress_settings(run_dir), oof=oof)
    if planned and not gone and not unreadable and all(progress.folds.get(f) for f in planned):
        # every fold finished, the record of the set written after the last one is not there (the run killed as it
        # was written, the file deleted): resume trains nothing and writes it from the folds' predictions
        raise UserError(f"{run_dir} is a k-fold run whose folds all finished ({', '.join(planned)}) but whose "
                        f"{record.name}, the out-of-fold score train writes after the last fold, is missing: write it "
                        f"with {resume_fix(run_dir)}{one_fold}")
    if gone:
        missing = f"{', '.join(gone)} missing"
    elif unreadable:
        missing = f"{unreadable}, which imgcls train --resume writes again"
    else:
        missing = f"{record.name} missing: training stopped before its last fold ({progress.text})"
    raise UserError(f"{run_dir} is an unfinished k-fold run ({len(have)} fold(s) with a checkpoint: {listed}; "
                    f"{missing}); {finish_fix(run_dir)}{one_fold}")


def read_metrics(folder: Path) -> pd.DataFrame | None:
    """A run's (or one fold's) metrics.csv, the one reader of the epochs it records (the history, the epochs done):
    its epoch column whole numbers, its epoch_seconds numbers (empty: NaN). None where it is missing, and where it
    is malformed, one that pandas cannot parse or one without those numbers, said in read_run_file's one warning."""
    import numpy as np
    import pandas as pd
    f = folder / METRICS_CSV
    h = read_run_file(f, EPOCH_METRICS)
    if h is None:
        return None
    if "epoch" not in h.columns:
        read_without(f"{EPOCH_METRICS} {f} has no 'epoch' column; {RUN_FILE_FIX}")
        return None
    for col in ("epoch", "epoch_seconds"):
        if col not in h.columns:
            continue
        v = pd.to_numeric(h[col], errors="coerce")
        bad = (v.isna() & h[col].notna()) if col == "epoch_seconds" else ~(np.isfinite(v) & (v == v.round()))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            read_without(f"{EPOCH_METRICS} {f}: line {i + 2}: {col} '{h[col].iloc[i]}' is not a "
                         f"{'whole number' if col == 'epoch' else 'number'}; {RUN_FILE_FIX}")
            return None
        h[col] = v.astype(int) if col == "epoch" else v
    return h


# what train writes into a run's (or a fold's) folder once it has validated an epoch, beside metrics.csv (loop.py's
# evaluate_epoch and checkpoint): a folder with none of them and no metrics.csv stopped in its first epoch
EPOCH_FILES = (BEST_PT, VAL_PREDICTIONS, PER_CLASS_CSV, LAST_PT)
UNKNOWN = "?"       # progress's epochs done where nothing tells them ('?/6')


def epochs_done(folder: Path) -> int | None:
    """The last epoch a run's (or one fold's) metrics.csv records (read_metrics); where it is malformed or gone,
    the epoch last.pt's LAST_STATE records (recorded_epochs, no torch); 0 where it stopped in its first epoch (no
    metrics.csv, nor any other of EPOCH_FILES); None (not known) where neither tells it: metrics.csv malformed, or
    missing beside files of a validated epoch (deleted, not copied), and no LAST_STATE to trust."""
    h = read_metrics(folder)
    if h is not None:
        return int(h["epoch"].max()) if len(h) else 0
    recorded = recorded_epochs(folder / LAST_PT)
    if recorded is not None:
        return recorded
    if (folder / METRICS_CSV).is_file() or any((folder / f).is_file() for f in EPOCH_FILES):
        return None
    return 0


def read_back(folder: Path, settings: ProgressSettings) -> bool:
    """Whether a k-fold fold whose last.pt is gone can be read back by a resume, not trained (Trainer's
    restore, the one rule check_last_pt_kept shares): it finished (fold_state, by the run's `settings`) and its
    metrics.csv's epochs and val_predictions.csv are there. A fold without them is refused, never trained over from
    epoch 1."""
    h = read_metrics(folder)
    return (h is not None and len(h) > 0 and (folder / VAL_PREDICTIONS).is_file()
            and fold_state(folder, settings)[0] is True)


def early_stopped(folder: Path, settings: ProgressSettings) -> bool | None:
    """Whether train's early stop (metrics.early_stopped, the one rule) ended the run (or fold) in `folder` after the
    last epoch its metrics.csv records, by the values of the run's --metric it records there (`settings`'); None
    where the file, or its --metric column, is not there."""
    from imgcls.metrics import early_stopped as stopped_by_rule
    from imgcls.run_names import metric_column
    h = read_metrics(folder)
    if h is None or not len(h):
        return None
    column = metric_column(settings.metric, h.columns)
    return stopped_by_rule(h[column], settings.metric, settings.early_stop) if column in h.columns else None


def fold_state(folder: Path, settings: ProgressSettings) -> tuple[bool | None, str]:
    """(finished, 'done/set' epochs) of a run or one fold, by the run's `settings` (progress_settings): last.pt's
    train_state flag where it is there, else metrics.csv's last epoch against the epochs set: all done is finished;
    fewer is stopped, but with --early-stop set, finished where train's early stop ended it (early_stopped: its
    metrics.csv's --metric values meet the rule at its last epoch), or not known (None) where that file does not
    tell; not known too where nothing tells the epochs done (epochs_done: UNKNOWN, '?/6')."""
    epochs = settings.epochs
    done = epochs_done(folder)
    finished = train_finished(folder / LAST_PT)
    if finished is None and epochs is not None and done is not None:   # last.pt deleted (by hand, tune --keep)
        finished = (True if done >= epochs else                                         # or unreadable
                    early_stopped(folder, settings) if settings.early_stop else False)
    shown = UNKNOWN if done is None else done
    progress = f"{shown}/{epochs}" if epochs is not None else str(shown)
    if finished and epochs is not None and done is not None and done < epochs:
        progress += ", early stop"
    return finished, progress


def set_folds_gone(path: Path, oof: OofRecord | None = None) -> list[str]:
    """The folds a finished k-fold set's OOF_SCORE names that are gone since: the fold's folder, or its best.pt
    beside another fold's, as predict and ensemble refuse the set (folds_gone); a set none of whose
    folds has a best.pt (tune --keep removed them, deleted_by_tune) is said by them apart. `oof`: read_oof_score's
    reading, where a caller has it."""
    planned, gone = folds_gone(path, oof=oof) or ([], [])
    return gone if len(gone) < len(planned) else [f for f in gone if not (path / f).is_dir()]


class ProgressSettings(NamedTuple):
    """What a run's progress is read against (fold_state): the options of its config.yaml (progress_settings), or
    of the TrainConfig it runs with."""
    epochs: int | None          # --epochs; None where it records none, or no number
    early_stop: int             # --early-stop's patience; 0: off (or none recorded)
    metric: str                 # --metric: what the early stop watches (run_names.run_metric)


def progress_settings(cfg) -> ProgressSettings:
    """The ProgressSettings of a run's config.yaml `cfg` (a dict; a run folder: its config.yaml read), or of a
    TrainConfig."""
    import pandas as pd

    from imgcls.run_names import run_metric
    if isinstance(cfg, (str, os.PathLike)):
        from imgcls.outputs import read_yaml
        cfg = read_yaml(Path(cfg) / RUN_CONFIG)
    if not isinstance(cfg, dict):
        cfg = {k: getattr(cfg, k, None) for k in ProgressSettings._fields}
    epochs = pd.to_numeric(pd.Series([cfg.get("epochs")]), errors="coerce").iloc[0]
    early_stop = pd.to_numeric(pd.Series([cfg.get("early_stop")]), errors="coerce").iloc[0]
    patience = int(early_stop) if pd.notna(early_stop) and 0 < early_stop < float("inf") else 0
    return ProgressSettings(int(epochs) if pd.notna(epochs) else None, patience, run_metric(cfg.get("metric")))


class SetProgress(NamedTuple):
    """How far a k-fold set got, the one reading of it (`imgcls runs`' state and epochs cell, and predict's,
    ensemble's, export's refusal of a set not finished: check_kfold_finished)."""
    finished: bool              # OOF_SCORE names its folds (kfold_finished): train wrote it after the last fold
    folds: dict[str, bool | None]   # each planned fold folder's finished (fold_state: None, not known)
    gone: list[str]             # a finished set's folds removed since (set_folds_gone)
    text: str                   # 'folds done 1/2, fold_1 3/10'


def set_progress(run_dir: Path, settings: ProgressSettings, oof: OofRecord | None = None,
                 folds: SetFolds | None = None) -> SetProgress:
    """A k-fold set's progress (SetProgress), from its folds' last.pt and, where that is gone (deleted by hand,
    tune --keep), their metrics.csv against the run's `settings` (fold_state): 'folds done 1/2, fold_1 3/10'
    (the folds of its plan: a fold folder it does not name is said as 'fold_2 not planned', and counted in none).
    Its OOF_SCORE is read once (`oof`: where a caller read it already), its folds resolved once (`folds`:
    set_folds', where a caller has them)."""
    run_dir = Path(run_dir)
    oof = _oof(run_dir, oof)
    finished = kfold_finished(run_dir, oof)
    # oof_score.json, plan.json, config.yaml's --folds (not `all`)
    planned, ours, stray = folds if folds is not None else set_folds(run_dir, oof)
    states = [(d.name, *fold_state(d, settings)) for d in ours]
    if finished:    # OOF_SCORE is written after the last fold: one not known to have finished (an --early-stop
        states = [(name, True if f is None else f, p) for name, f, p in states]    # fold's last.pt gone) did
    n_done = sum(1 for _, f, _ in states if f)
    text = f"folds done {n_done}/{len(planned)}" if planned else f"folds done {n_done}"
    part = next((f"{name} {p}" for name, f, p in states if not f), "")     # stopped, or not known to have
    # finished: its epochs as a single run's cell reads them ('4/10', '?/6')
    gone = set_folds_gone(run_dir, oof) if finished else []
    # its folds done, no record it finished (unreadable, or not there): train --resume writes it
    oof_said = None if finished else oof_unreadable(run_dir, oof) or (f"{OOF_SCORE} missing" if planned and
                                                                 n_done == len(planned) else None)
    text += f", {part}" if part else (f", {', '.join(gone)} gone" if gone else f", {oof_said}" if oof_said else "")
    text += f", {', '.join(d.name for d in stray)} not planned" if stray else ""
    return SetProgress(finished, {name: f for name, f, _ in states}, gone, text)


CHECKPOINTS = {"best": BEST_PT, "last": LAST_PT}    # find_checkpoints' `which`: the checkpoint file each names


def check_which(step: str, which) -> None:
    """A Python caller's `which` (export_onnx, build_ensemble: a keyword no flag sets), one line before any work:
    which='latest' was find_checkpoints' ValueError, naming that function, once the runs were read."""
    if not isinstance(which, str) or which not in CHECKPOINTS:
        raise UserError(f"{whose(step)} which must be one of: {', '.join(CHECKPOINTS)} (got {which!r})")


def warn_stray_folds(run_dir: Path, stray: Sequence[Path], folds: Sequence[Path] | None = None,
                     beside: Sequence[str | os.PathLike] = (), trained: bool = True) -> None:
    """The one warning of fold folders in the k-fold set `run_dir` that its plan does not name (`stray`,
    set_fold_dirs' second list: a fold_2 copied into a 2-fold set), which no reader of the set takes: 'fold_2 in RUN
    left out: not one of the set's folds (it trained fold_0, fold_1)', with the way to predict with one that holds a
    best.pt too (an ensemble of the set and it) where it is not among `beside` (the runs given with this one: an
    ensemble's members). `folds`: the set's fold folders (None: those its plan names, planned_folds); `trained`:
    False where the set is still training them (a resume of an unfinished set: 'it trains'). find_checkpoints'
    (predict, ensemble, export) and train --resume's."""
    from imgcls.console import warn
    if folds is None:
        folds = [fold_dir(run_dir, k) for k in planned_folds(run_dir) or []]
    given = {p.resolve() if p.is_dir() else p.resolve().parent for p in map(Path, beside)}
    # a member already, or no best.pt to predict with: no advice to give it
    advised = [d for d in stray if d.resolve() not in given and (d / BEST_PT).is_file()]
    both = python_too(f"imgcls ensemble {sh(run_dir)} {sh(advised[0])}",
                      f"build_ensemble([{str(run_dir)!r}, {str(advised[0])!r}])") if advised else ""
    warn(f"{', '.join(d.name for d in stray)} in {run_dir} left out: not one of the set's folds (it "
         f"{'trained' if trained else 'trains'} {', '.join(f.name for f in folds)})"
         + (f"; to predict with it too, give it as an ensemble member: {both}" if both else ""))


def find_checkpoints(run_dir: str | os.PathLike, which: str = "best",
                     beside: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """`<run>/<which>.pt` for a plain run; `<run>/fold_<k>/<which>.pt` for each fold of a k-fold run that its plan
    names (set_fold_dirs: another fold folder there is left out, said in a warning, with the ensemble that predicts
    with it too where it is not among `beside`, the runs given with this one: an ensemble's). A checkpoint file
    given directly is returned as is."""
    if which not in CHECKPOINTS:
        raise ValueError(f"find_checkpoints' which must be one of: {', '.join(CHECKPOINTS)} (got {which!r})")
    run_dir = Path(run_dir)
    if run_dir.is_file():
        if run_dir.suffix.lower() == ".onnx":
            raise UserError(f"{run_dir} is an ONNX export (imgcls export), which imgcls does not predict with; give "
                            f"the run folder it was exported from, or run the file with onnxruntime")
        if run_dir.suffix.lower() not in (".pt", ".pth"):
            raise UserError(f"{run_dir} is not a checkpoint; give a run folder (outputs/runs/NAME) or its {BEST_PT}")
        return [run_dir]
    if not run_dir.is_dir():
        from imgcls.outputs import RUNS_DIR
        raise UserError(f"run folder {run_dir} does not exist{did_you_mean(run_dir, (RUNS_DIR,))}; give a "
                        f"folder under outputs/runs; {RUNS_TABLE} lists them")
    name = CHECKPOINTS[which]
    direct = run_dir / name
    if direct.is_file():
        return [direct]
    oof = read_oof_score(run_dir)      # read once for the set's folds and its check
    planned, stray = set_fold_dirs(run_dir, oof)
    folds = [d / name for d in planned if (d / name).is_file()]
    stray = [d for d in stray if (d / name).is_file()]
    if folds or stray:
        check_kfold_finished(run_dir, folds, name, oof)
        if stray:       # the set as train trained it: its out-of-fold score, its runs row are of its planned folds
            warn_stray_folds(run_dir, stray, [f.parent for f in folds], beside)
        return folds
    why = deleted_by_tune(run_dir)
    if why:
        raise UserError(f"no {name} in {run_dir}: {why}")
    from imgcls.outputs import not_a_run, output_kind, predict_fix
    kind = output_kind(run_dir)
    if kind == "ensemble":
        raise UserError(f"{run_dir} is an ensemble, not a run: {predict_fix(run_dir)} predicts with it, and an "
                        f"ensemble's members are runs (give them)")
    if kind in ("tune study", "predictions"):
        raise UserError(not_a_run(run_dir, kind, "a run folder (outputs/runs/NAME)"))
    if any(run_dir.glob("*.onnx")):
        raise UserError(f"{run_dir} holds ONNX exports (imgcls export), which imgcls does not predict with; give the "
                        f"run folder they were exported from")
    inside = [] if (run_dir / RUN_CONFIG).is_file() else _runs_inside(run_dir)
    if inside:
        # `imgcls predict outputs/ensembles` (the folder of ensembles, its report PNGs one folder down) was called
        # a dataset folder
        from imgcls.options import shown
        raise UserError(f"{run_dir} is a folder of runs or ensembles, not one; give one of them "
                        f"({shown(sorted(map(str, inside)))}); {RUNS_TABLE} lists them")
    if not (run_dir / RUN_CONFIG).is_file() and _holds_images(run_dir):
        # `imgcls predict data/test` (the images typed where the run goes) asked whether training had finished
        raise UserError(f"{run_dir} is a dataset folder (it holds images), not a run; give a run folder "
                        f"(outputs/runs/NAME) - predict takes the images with --data {run_dir}; {RUNS_TABLE} lists "
                        f"the runs")
    raise UserError(f"no {name} in {run_dir} (nor in {run_dir}/fold_*/); is training finished?")


def init_meta(run: str | os.PathLike):
    """The ModelMeta of the one checkpoint `train --init-from RUN` would start from (None: RUN holds several folds,
    or none; init_checkpoint names what is wrong), for a command line that did not type --model / --img-size."""
    try:
        paths = find_checkpoints(run, "best")
    except UserError:
        return None
    if len(paths) != 1:
        return None
    from imgcls.train.checkpoint import read_meta      # torch: only once there is one checkpoint to read
    return read_meta(paths[0])


def init_path(run: str | os.PathLike) -> Path:
    """The one best.pt `train --init-from RUN` names (RUN: a run folder or a checkpoint file), found from the
    folder's files (no torch); one line otherwise: RUN is not there, or holds several folds."""
    paths = find_checkpoints(run, "best")
    if len(paths) > 1:
        raise UserError(f"--init-from {run} holds {len(paths)} folds; give one of them, e.g. --init-from "
                        f"{paths[0].parent}")
    return paths[0]


def init_checkpoint(run: str | os.PathLike, model_name: str) -> Path:
    """The best.pt `train --init-from RUN` starts from (init_path), checked to be one checkpoint of --model
    `model_name`; one line otherwise."""
    from imgcls.train.checkpoint import read_meta
    path = init_path(run)
    meta = read_meta(path)
    if meta.model != model_name:
        # a Python TrainConfig's default model cannot be told from a chosen one: its line names resolve(), which
        # takes the run's model as imgcls train does
        raise UserError(f"--init-from {path} is a {meta.model} checkpoint, the run trains {model_name}; pass "
                        f"--model {meta.model} (Python: model='{meta.model}', or TrainConfig.resolve({{'init_from': "
                        f"...}}), which takes the run's model and input size as imgcls train does)")
    return path


def _runs_inside(folder: Path, limit: int = 200) -> list[Path]:
    """The runs and ensembles (outputs.output_kind) in `folder`, one or two folders down (outputs/runs/NAME from
    outputs); at most `limit` entries of each folder are looked at."""
    from itertools import islice

    from imgcls.outputs import output_kind

    def folders(d: Path) -> list[Path]:
        return list(islice((p for p in d.iterdir() if p.is_dir()), limit))

    def runs(ds: list[Path]) -> list[Path]:
        return [d for d in ds if output_kind(d) in ("train run", "ensemble")]
    try:
        subs = folders(folder)
        return runs(subs) or runs([d for sub in subs for d in folders(sub)])
    except OSError:
        return []


def _holds_images(folder: Path, limit: int = 200) -> bool:
    """Whether `folder` holds an image file or a manifest, itself or one folder down (an unlabeled test folder, an
    ImageFolder, clean's output); at most `limit` entries of each folder are looked at."""
    from itertools import islice

    from imgcls.io import is_image_name
    try:
        if (folder / MANIFEST_NAME).is_file():
            return True
        for sub in (folder, *islice((p for p in folder.iterdir() if p.is_dir()), limit)):
            if any(is_image_name(p.name) for p in islice(sub.iterdir(), limit)):
                return True
    except OSError:
        pass
    return False


def deleted_by_tune(run_dir: str | os.PathLike) -> str | None:
    """Why a tune trial's folder holds no checkpoint, when its study's trials.csv records that `tune --keep`
    deleted them (with the fix); else None."""
    from imgcls.outputs import TRIALS_CSV, removed_by_keep
    run_dir = Path(run_dir)
    removed = removed_by_keep(run_dir)
    if not removed:
        return None
    config = run_dir / RUN_CONFIG
    return (f"imgcls tune deleted this trial's checkpoints, it was not among the study's best "
            f"({run_dir.parent / TRIALS_CSV}: {removed}); take a trial that kept them, or retrain it: " + python_too(
                f"imgcls train --config {sh(config)} --out outputs/runs --name {sh(run_dir.name)}",
                f"run_train(TrainConfig.resolve({{'out': 'outputs/runs', 'name': {run_dir.name!r}}}, "
                f"config={str(config)!r}))"))


# the files a run writes into its folder (a k-fold set's folds each into their fold_N folder) under names of their
# own (the trackers' records aside: run_files); a tensorboard event file's name is new every session
RUN_FILES = (RUN_CONFIG, METRICS_CSV, TRAIN_LOG, BEST_PT, LAST_PT, LAST_STATE, RUN_PLAN, OOF_SCORE, PER_CLASS_CSV,
             VAL_PREDICTIONS, *RUN_FIGURES, REPORT_HTML, IMAGE_CACHE)


def run_files(run_dir: Path) -> list[Path]:
    """What a run would write over in `run_dir` (check_run_dir_free's --exist-ok folder): RUN_FILES, each
    tracker's record of its run (track.common.run_record), and the fold_N folders there (a k-fold set's folds
    write the same files into them)."""
    from imgcls.track.common import run_record
    return ([run_dir / n for n in RUN_FILES] + [run_record(run_dir, t) for t in ("mlflow", "wandb")]
            + sorted(p for p in run_dir.glob("fold_*") if is_fold_dir(p)))


def record_last_state(last_pt: str | os.PathLike, epoch: int, finished: bool) -> Path:
    """Write LAST_STATE beside `last_pt` (its `epoch` and train_state's `finished`), atomically; train calls it
    after last.pt is written, so a crash between the two leaves a record older than last.pt (train_finished then
    reads last.pt), never one that claims more than it."""
    from imgcls.fsutil import write_json
    return write_json(Path(last_pt).with_name(LAST_STATE), {"epoch": int(epoch), "finished": bool(finished)})


def _last_state(last_pt: Path) -> dict | None:
    """LAST_STATE beside `last_pt` where it was written after it (not older: a crash between the two writes, or a
    run recorded before the file existed, has none to trust), else None."""
    record = last_pt.with_name(LAST_STATE)
    try:
        if record.stat().st_mtime_ns < last_pt.stat().st_mtime_ns:
            return None
    except OSError:
        return None
    return _read_state(record)


def _read_state(record: Path) -> dict | None:
    """A LAST_STATE file's record (a dict with a bool `finished`), None where it is missing or not one."""
    import json
    try:
        state = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("finished"), bool) else None


def _gone_finished(last_pt: Path) -> bool | None:
    """True where `last_pt` is gone (deleted by hand, tune --keep) and the LAST_STATE beside it says its run
    finished: written after last.pt only, it never claims more than last.pt did; else None (not known: a record
    saying unfinished may be one older than the last last.pt)."""
    state = _read_state(last_pt.with_name(LAST_STATE))
    return True if state is not None and state["finished"] else None


def recorded_epochs(last_pt: str | os.PathLike) -> int | None:
    """The epochs done that LAST_STATE beside `last_pt` records (the epoch last.pt was written after), where it is
    there and trusted (_last_state) and that epoch a whole number; else None. No torch: for what a run's metrics.csv
    no longer tells (malformed or gone)."""
    state = _last_state(Path(last_pt)) if Path(last_pt).is_file() else None
    epoch = state.get("epoch") if state is not None else None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0 else None


def train_finished(path: str | os.PathLike) -> bool | None:
    """Whether the run a last.pt belongs to had finished (its train_state's `finished`: the last epoch, or the early
    stop); None where it is not readable as a checkpoint, and where it is absent, but for True where the LAST_STATE
    left beside it says so (_gone_finished: its last.pt deleted since). Cheap: read from LAST_STATE beside it
    (no torch); a run without one (recorded before it, or killed between the two writes) has its last.pt read,
    the tensors mapped, not read."""
    path = Path(path)
    if not path.is_file():
        return _gone_finished(path)
    state = _last_state(path)
    if state is not None:
        return state["finished"]
    from imgcls.train.checkpoint import saved_finished      # torch: only for a last.pt without its record
    return saved_finished(path)


def ended_line(folder: str | os.PathLike) -> str | None:
    """The last line of the folder's train.log, after its time, where it is train's for a session that ended there
    without training on: an exception stopped it (CRASH_LINE: `imgcls runs` lists the run as crashed), or a refusal
    stopped a new run before its first epoch trained and the folder stayed (REFUSED_LINE: refused); else None. A
    session after it (--resume) writes lines of its own, and run_train one there where nothing else would (a k-fold
    set's folds log in their own train.log); a resume refused before it trained restates it (RESUME_REFUSED)."""
    import re
    try:
        with open(Path(folder) / TRAIN_LOG, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            lines = fh.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return None
    ended = re.match(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d "
                     rf"((?:{re.escape(CRASH_LINE)}|{re.escape(REFUSED_LINE)})\b.*)", lines[-1]) if lines else None
    return ended.group(1) if ended else None


def ended_by_exception(ended: str) -> bool:
    """Whether an ended_line names an exception (CRASH_LINE: `imgcls runs` lists the run as crashed), not a refusal
    (REFUSED_LINE: refused)."""
    return ended.startswith(CRASH_LINE)


def training_now(checkpoint: str | os.PathLike) -> str | None:
    """How far imgcls train has come with the run (or k-fold fold) of `checkpoint` when it is training it now: its
    folder's RunLock, or its k-fold set's, is held and its LAST_STATE does not say it finished (a set's earlier folds
    did). 'epoch E, epochs done D/N': the checkpoint's own epoch (checkpoint.saved_epoch) and the run's progress
    (the files beside it), each where known ('' where nothing says more); None where no train holds it or it has
    finished (then no checkpoint is read). For the line that says a run named on purpose is used half trained (its
    best.pt is rewritten as it improves: ensemble.spec.warn_training_now)."""
    checkpoint = Path(checkpoint)
    folder = checkpoint.parent
    if not (RunLock.held(folder) or (fold_set(folder) is not None and RunLock.held(folder.parent))):
        return None
    state = _last_state(folder / LAST_PT)
    if state is not None and state["finished"]:
        return None
    from imgcls.train.checkpoint import saved_epoch     # torch, for a run in training only
    epoch = saved_epoch(checkpoint)
    said = [f"epoch {epoch}"] if epoch is not None else []
    if state is not None:
        from imgcls.outputs import read_yaml
        epochs = (read_yaml(folder / RUN_CONFIG) or read_yaml(folder.parent / RUN_CONFIG)).get("epochs")
        said.append(f"epochs done {state['epoch']}" + (f"/{epochs}" if isinstance(epochs, int) else ""))
    return ", ".join(said)


def finished(run_dir: Path, said=train_finished) -> bool:
    """Whether a run folder's training is over: its last.pt says so; a k-fold set's last fold ran (kfold_finished)
    and each fold's last.pt that is there says so (none there: tune --keep deleted them). A single run whose
    last.pt is gone since (deleted by hand, tune --keep) is read as `imgcls runs` reads it (fold_state): its
    LAST_STATE says it finished, or its metrics.csv records every epoch set, or train's early stop ended it there.
    `said`: what a last.pt says (train_finished; _said_finished's, its LAST_STATE alone)."""
    if (run_dir / LAST_PT).is_file():
        return bool(said(run_dir / LAST_PT))
    if not records_folds(run_dir / RUN_CONFIG):
        return fold_state(run_dir, progress_settings(run_dir))[0] is True
    lasts = _fold_files(run_dir, LAST_PT)
    return kfold_finished(run_dir) and all(said(p) for p in lasts)


def not_extended(run_dir: Path, epochs: int | None) -> str:
    """Why a finished run (finished()) of `epochs` set is not trained further by --resume with more --epochs, and
    the way to train longer (train_longer), for that refusal: it ran every epoch (its schedule fitted to them), or
    train's early stop ended it, or some of a k-fold set's folds, before (epochs_done: the epochs its metrics.csv,
    else its LAST_STATE, records), which more --epochs would not undo."""
    kfold = records_folds(run_dir / RUN_CONFIG)
    done = {d.name: epochs_done(d) for d in _trained_folders(run_dir, kfold)}
    early = {f: n for f, n in done.items() if epochs is not None and n is not None and n < epochs}
    if not early:
        return (f"the run finished its {epochs} epochs and is not extended (its schedule was fitted to {epochs}); "
                f"to train longer {train_longer(run_dir)}")
    settings = progress_settings(run_dir)
    what = BEST_BY[settings.metric].label
    ended = (f"the run at epoch {early[run_dir.name]} of {epochs}" if not kfold else
             ", ".join(f"{f} at epoch {n}" for f, n in early.items()) + f" of {epochs}")
    patience = settings.early_stop
    why = f" ({what} did not improve for {plural(patience, 'epoch')}, its --early-stop)" if patience else ""
    # a new set or run with its options (--config) early-stops alike: a longer patience typed over its own
    way = train_longer(run_dir, **({"early_stop": "P"} if patience else {}))
    return (f"train's early stop ended {ended}{why}, so more --epochs would not train it further and the "
            f"{'set' if kfold else 'run'} is not extended; to train longer {way}")


def finished_said(run_dir: Path) -> str:
    """What says a finished run (finished()) is over, for the resume's 'already finished' line: its last.pt, a
    k-fold set's OOF_SCORE and those of its folds' last.pt that are there (the others named gone), or where a run's
    last.pt is gone the record that tells it."""
    if (run_dir / LAST_PT).is_file():
        return f"its {LAST_PT} says so"
    if records_folds(run_dir / RUN_CONFIG):
        planned, gone = folds_gone(run_dir, LAST_PT) or ([], [])
        kept = [f for f in planned if f not in gone]
        if not gone:
            return f"its folds' {LAST_PT} files and its {OOF_SCORE} say so"
        if not kept:
            return f"its folds' {LAST_PT} files are gone, its {OOF_SCORE} says so"
        one = len(gone) == 1
        return (f"its {OOF_SCORE} and the {LAST_PT} of {', '.join(kept)} say so, {'that' if one else 'those'} of "
                f"{', '.join(gone)} {'is' if one else 'are'} gone")
    by = LAST_STATE if train_finished(run_dir / LAST_PT) else METRICS_CSV
    return f"its {LAST_PT} is gone, its {by} says so"


def validation_files(run_dir: Path, folds: Sequence[int] | None = None) -> list[Path]:
    """The val_predictions.csv files a run folder holds: a single run's, or a k-fold set's out-of-fold one and each
    fold_<g>/ one (the images each validated on) of its planned folds (set_fold_dirs: a fold_2 copied into a 2-fold
    set is left out; `folds`: its)."""
    ours = set_fold_dirs(run_dir, folds=folds)[0]
    return [f for f in [run_dir / VAL_PREDICTIONS, *(d / VAL_PREDICTIONS for d in ours)] if f.is_file()]


# the fix a malformed CSV file of a run names: imgcls wrote it, so no row of it is the user's to mend by hand
RUN_FILE_FIX = "imgcls train wrote it: restore it from a backup, or train the run again"
# an ensemble folder's (oof_predictions.csv, scores.csv): imgcls ensemble wrote them
ENSEMBLE_FILE_FIX = "imgcls ensemble wrote it: restore it from a backup, or build the ensemble again"
ENSEMBLE_OOF = "the ensemble's out-of-fold predictions"    # oof_predictions.csv's role
ENSEMBLE_SCORES = "the ensemble's scores"                  # scores.csv's
PER_CLASS = "the run's per-class scores"          # per_class.csv's role, as read_run_csv names it
VALIDATION = "the run's validation predictions"   # val_predictions.csv's (read_validation's)
EPOCH_METRICS = "the run's per-epoch metrics"     # metrics.csv's (tune's trial value)


def read_run_file(path: Path, role: str, fix: str = RUN_FILE_FIX, **kwargs) -> pd.DataFrame | None:
    """A run's (or an ensemble's) CSV file `path`, named by its `role`, read by read_run_csv; None where it
    is missing, and where it is malformed, said in one warning (read_run_csv's line, read_without): the run is
    read without it, as without a missing one (`imgcls runs` lists, diffs and reports it so), and the other runs go
    on."""
    if not path.is_file():
        return None
    try:
        return read_run_csv(path, role, fix, dtype={"label": str, "pred": str, "class": str, "shares": str},
                            na_values=[""], **kwargs)
    except UserError as e:
        read_without(str(e), fix)
        return None


def read_without(problem: str, fix: str = RUN_FILE_FIX) -> None:
    """The one warning of a malformed file `imgcls runs` reads: its line (`problem`: the file, what is wrong and
    the fix, read_run_csv's) and that the run, or the ensemble (a file `imgcls ensemble` wrote: ENSEMBLE_FILE_FIX),
    is read without it."""
    from imgcls.console import warn
    warn(f"{problem}; {'the ensemble' if fix == ENSEMBLE_FILE_FIX else 'the run'} is read without it")


def read_run_csv(f: Path, role: str, fix: str = RUN_FILE_FIX, **kwargs):
    """A CSV file imgcls wrote (a run's val_predictions.csv, per_class.csv; an ensemble's oof_predictions.csv, whose
    `fix` names its own maker) as a DataFrame, for every reader of one: read by layouts.read_csv, so a malformed
    file is one line naming its `role`, the file and the fix, never pandas' traceback. Empty values stay ''
    (keep_default_na=False). Whether a missing file is tolerated is the caller's. `kwargs`: pandas.read_csv's
    (dtype, usecols...)."""
    from imgcls.layouts import read_csv
    kwargs.setdefault("keep_default_na", False)
    return read_csv(f, role, fix=fix, **kwargs)


def read_validation(f: Path, **kwargs):
    """A run's val_predictions.csv `f` (one of validation_files) as a DataFrame, for every reader of it (predict's
    leak check, ensemble's scores and weights, a resumed run's best epoch, the run's report): read_run_csv's."""
    return read_run_csv(f, VALIDATION, **kwargs)


def nan_probability_mask(preds):
    """Which rows of a val_predictions.csv table (p_<class> columns; read_validation's, '' or NaN where empty) hold
    no probabilities: a diverged run's (its loss went NaN, train warns to lower --lr), whose predicted class is
    argmax's pick of NaN, the first class, and whose scores mean nothing. Unreadable images have no row."""
    import numpy as np
    import pandas as pd
    cols = [c for c in preds.columns if str(c).startswith("p_")]
    if not cols:
        return np.zeros(len(preds), dtype=bool)
    return nan_rows(preds[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float))


def nan_rows(probs):
    """Which rows of probabilities [N, C] hold none (NaN, or infinite): nan_probability_mask's test, of an array
    (predict's of each batch and member)."""
    import numpy as np
    return (~np.isfinite(np.asarray(probs, dtype=float))).any(axis=1)


def nan_probability_rows(preds) -> int:
    """How many rows of a val_predictions.csv table hold no probabilities (nan_probability_mask)."""
    return int(nan_probability_mask(preds).sum())


def trained_from_here(run_dir: Path, record) -> bool:
    """Whether the working folder is the one the run was trained from: its recorded `out` (a relative path, kept as
    given) and name lead from here to `run_dir`, so a relative path of its record means here what it meant then."""
    out = record.out
    return bool(out) and not os.path.isabs(out) and os.path.realpath(Path(out) / (record.name or "")) == \
        os.path.realpath(run_dir)


def trained_from(run_dir: Path, record) -> Path | None:
    """The folder the run was trained from, where its record tells (a relative recorded `out` and name that lead
    from that folder to `run_dir`); else None."""
    out = record.out
    tail = Path(out or "") / (record.name or "")
    if not out or os.path.isabs(out) or ".." in tail.parts:
        return None
    real = Path(os.path.realpath(run_dir))
    if len(tail.parts) >= len(real.parts):
        return None
    base = real.parents[len(tail.parts) - 1]
    return base if os.path.realpath(base / tail) == str(real) else None


def _relative_src_fix(run_dir: Path, src: str, record) -> str:
    """The fix a refusal of the relative `src` its record holds names, true whether the user typed that path again
    or not: the folder it was trained from, or the data's absolute path."""
    home = trained_from(run_dir, record)
    absolute = home / src if home else f"/path/to/{src}"
    return (f"a relative path is read from the working folder: cd to the folder the run was trained from"
            f"{f' ({sh(home)})' if home else ''}, or give its data's absolute path: {resume_fix(run_dir, absolute)}")


def check_resume_src(run_dir: Path, src: str, record) -> None:
    """A resumed run with no val_predictions.csv yet (stopped in its first epoch: its folder holds config.yaml and
    train.log alone) has nothing check_resume_data could compare its data with; it is checked by where it was
    trained from, from its record alone, before its data is read and scanned: a relative recorded `src` is read
    only from that folder (trained_from_here), elsewhere nothing tells which data it was, and it is refused with the
    fix (cd there, or the data's absolute path: the same relative path typed again is read here too). Data given
    again (`src` is not `record.src`, the recorded TrainConfig) is the user's own choice."""
    if validation_files(run_dir) or src != record.src or os.path.isabs(str(src)) or trained_from_here(run_dir, record):
        return
    raise UserError(f"--resume {run_dir}: its data {src} (recorded in its {RUN_CONFIG}) is a relative path, read "
                    f"here as {os.path.abspath(str(src))}, and the run stopped before its first validation: "
                    f"nothing in its folder tells whether that is the data it was trained on; "
                    f"{_relative_src_fix(run_dir, src, record)}")


def _check_same_folds(run_dir: Path, df, src: str, validated: dict, key) -> None:
    """A k-fold set resumes on the folds it started with: an image one of its folds validated on (fold_<k>/
    val_predictions.csv) that the table now puts in another fold (split run again with another --seed or options
    between the stop and the resume) is refused. Resumed on it, the later folds trained on images a finished fold
    validated, and the out-of-fold file held some images twice and others never. `validated`: each fold folder's
    rows (path, root); `key`: check_resume_data's (root, path) key. An image the table no longer holds, or holds
    without a fold (a row clean or split now leaves out), moves into no other fold: not refused."""
    from imgcls.split.config import fold_numbers
    folds = fold_numbers(df)
    if folds is None:            # a table without folds: check_data's line (--folds needs a k-fold table)
        return
    now = {key(r, p): f for r, p, f in zip(df["root"], df["path"], folds) if f == f}
    for fold_dir_, v in validated.items():
        k = fold_number(fold_dir_)
        moved = [(p, now[key(r, p)]) for r, p in zip(v["root"], v["path"]) if now.get(key(r, p), k) != k]
        if moved:
            p, f = moved[0]
            new_set = train_again(run_dir, run_dir.name + "-2", src)
            raise UserError(
                f"--resume {run_dir}: its data {src} puts {len(moved)} of the {len(v)} images {fold_dir_.name} "
                f"validated on in another fold (e.g. {p}: fold {int(f)}): the table's folds changed since the set "
                f"started (split again?); resumed on it, the later folds would train on images a finished fold "
                f"validated and the out-of-fold score would count some images twice and others never; restore the "
                f"table the set started with, or train a new k-fold set on this one: {new_set}")


def _image_key(recorded: bool):
    """How a resumed run's data and its validation files name one image (check_resume_data, check_resumed_draw):
    by its root (real path) and path; data given again (not `recorded`) by its path within its root, so a data set
    moved elsewhere resumes."""
    real: dict[str, str] = {}

    def key(root, path) -> tuple[str, str]:
        if not recorded:
            return "", str(path)
        if root not in real:
            real[root] = os.path.realpath(root)
        return real[root], str(path)
    return key


def check_resume_data(run_dir: Path, df, src: str, record, folds: Sequence[int] | None = None) -> None:
    """A resumed run must read the data it was trained on: the data `df` (read from `src`, the data config.yaml
    recorded or one given again) holds at least one of the run's validation images (its val_predictions.csv, a
    k-fold set's fold_*/val_predictions.csv: one file that does is enough), compared by root and path, not by
    reading images. A relative `src` (recorded before paths were anchored, or in a hand-written --config) is read
    from the working folder: resumed from another folder that has its own data/splits.csv it would train on that
    data silently. A run with no val_predictions.csv yet is check_resume_src's, before the data is read. Data given
    again (not recorded: `src` is not `record.src`, the recorded TrainConfig) is the user's own choice: it is
    compared by path within its root, so a data set moved elsewhere and named there resumes. The recorded relative
    path typed again counts as recorded: its refusal names cd or the data's absolute path, not giving it again. A
    malformed file the resume reads back (a single run's, every fold's: Trainer.restore; its val_predictions.csv,
    the per_class.csv of one that goes on) is read_run_csv's one line, said here before the images are decoded:
    every such file is read (small CSVs), a later fold's too where an earlier one matches the data. `folds`: the
    folds a k-fold set that records no plan trains (set_fold_dirs': a fold_2 copied in is not read)."""
    recorded = src == record.src
    # the per-class scores a run that goes on reads back (Trainer.restore: a single run's, an unfinished fold's; its
    # report reads them again): a malformed file is read_run_csv's one line, said here before the images are decoded;
    # a set's planned folds (set_fold_dirs: a fold_2 copied in is no fold the resume trains)
    for d in [run_dir, *set_fold_dirs(run_dir, folds=folds)[0]]:
        if (d / PER_CLASS_CSV).is_file() and train_finished(d / LAST_PT) is False:
            read_run_csv(d / PER_CLASS_CSV, PER_CLASS, dtype=str)
    files = validation_files(run_dir, folds)
    if not files:
        return
    key = _image_key(recorded)
    have = {key(r, p) for r, p in zip(df["root"], df["path"])}
    # a k-fold set's out-of-fold file: made again from its folds' as the set ends, the resume does not read it
    set_oof = run_dir / VAL_PREDICTIONS if any(f.parent != run_dir for f in files) else None
    matched = False
    validated: dict[Path, object] = {}      # each fold's validation rows, for _check_same_folds
    for f in files:
        try:
            # the files the resume reads back (Trainer.restore: every fold's, a later fold's too): each is read, not
            # only those up to the first that matches, so a malformed one is its one line, said before the images
            # are decoded
            v = read_validation(f, usecols=["path", "root"], dtype=str)
        except UserError:
            if f == set_oof:
                continue
            raise
        except ValueError:        # no root / path columns: an unreadable record is not evidence of other data
            matched = True
            continue
        matched = matched or any(key(r, p) in have for r, p in zip(v["root"], v["path"]))
        if f.parent != run_dir:
            validated[f.parent] = v
    if matched:
        _check_same_folds(run_dir, df, src, validated, key)
        return
    where = f"recorded in its {RUN_CONFIG}" if recorded else "given"
    relative_elsewhere = recorded and not os.path.isabs(str(src)) and not trained_from_here(run_dir, record)
    fix = (_relative_src_fix(run_dir, src, record) if relative_elsewhere else
           f"run from the folder it was trained from, or pass the data it was trained on again: "
           f"{resume_fix(run_dir, 'DATA')}")
    raise UserError(f"--resume {run_dir}: its data {src} ({where}) resolves to {os.path.abspath(src)}, which holds "
                    f"none of the run's validation images ({files[0].relative_to(run_dir)}); {fix}")


def check_resumed_draw(run_dir: Path, df, val, src: str, record) -> None:
    """A resumed run's random --val-split draw (no split table; `val`: the draw's validation mask of `df`, the one the
    run trains with) gives the rows its earlier session validated on (its val_predictions.csv): a run started by an
    imgcls whose draw differed (before it kept a class of one image in training), or on data that changed since,
    would else train its later epochs on images its earlier ones were scored on, and score them on other rows,
    without a word. Refused in one line before the images are decoded. Images are named as check_resume_data names
    them (_image_key: root and path), so two roots' images of one relative path are two images. `src`, `record`:
    check_resume_data's."""
    f = run_dir / VAL_PREDICTIONS
    if not f.is_file():
        return
    v = read_validation(f, usecols=lambda c: c in ("path", "root"), dtype=str)
    if "path" not in v.columns:      # no images named: check_resume_data's unreadable record, not evidence
        return
    key = _image_key(src == record.src)
    if "root" not in v.columns:      # a file without roots: its paths alone
        v["root"], key = "", (lambda root, path: ("", str(path)))
    validated = {key(r, p) for r, p in zip(v["root"], v["path"])}
    now_train = sorted(p for r, p, t in zip(df["root"], df["path"], ~val) if t and key(r, p) in validated)
    if now_train:
        raise UserError(f"--resume {run_dir}: {len(now_train)} of the images its earlier epochs validated on "
                        f"({now_train[0]}) would now train: the random --val-split draw gives other rows than when "
                        f"the run started (the data changed, or the run was started by an imgcls that drew "
                        f"otherwise: before a class of one image was kept in training), so its epochs would not be "
                        f"scored on the same rows; train it as a new run (drop --resume), or split the data "
                        f"(imgcls split) for rows that stay put")
