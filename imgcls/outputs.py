"""What each step's output folder is, by the files it writes: a train run (config.yaml with metrics.csv, train.log or
a checkpoint), a k-fold set (the same in fold_*/), an ensemble (spec.yaml), a tune study (trials.csv, study.db), a
prediction (predict.json), clean's, preprocess's, eda's and export's output (their summary files). A leaf module (the standard
library and yaml at import; the folders below a folder are listed through imgcls.layouts' FolderView, the owner of
which names a layout reads, imported where asked): the data readers ask it whether an argument is one of these
folders given where a dataset was meant, the model loaders where a run was meant, every writing step whether its
--out holds another step's output. It also writes a step's files as one set (output_set: with imgcls.fsutil's
atomic writes)."""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from imgcls.errors import UserError
from imgcls.options import choose_another, python_too, shown
from imgcls.run_names import BEST_BY, BEST_PT, LAST_PT, METRICS_CSV, RUN_CONFIG, TRAIN_LOG, fold_dirs, run_metric

MANIFEST_NAME = "manifest.csv"  # the table eda, clean and preprocess write (imgcls.manifest reads it)
SPEC_NAME = "spec.yaml"         # an ensemble's file (imgcls ensemble writes it, predict reads it)
# beside it: its members' and its own validation scores, and its out-of-fold predictions (what --weights auto was
# fitted on: predict --eval refuses those rows; imgcls runs scores the ensemble from them)
ENSEMBLE_SCORES_CSV = "scores.csv"
ENSEMBLE_OOF_CSV = "oof_predictions.csv"
SUBMISSION_CSV = "submission.csv"   # predict's competition file in its --out
# a tune study's files in its folder OUT/STUDY: its table of trials (imgcls.tune.report writes it after every trial;
# runs and train read a trial's row) and its default Optuna storage (SQLite)
TRIALS_CSV = "trials.csv"
# the message of a trial Ctrl-C stopped (trials.csv; imgcls runs lists it stopped, tune runs its values again)
INTERRUPTED = "interrupted (Ctrl-C)"
# the message of a trial SIGTERM stopped (`timeout 2h imgcls tune`, a batch job's time limit: every command takes it as
# Ctrl-C, cli.common.sigterm_interrupts): interrupted as well, its values run again when the study resumes
INTERRUPTED_BY_SIGTERM = "interrupted (SIGTERM)"
STUDY_DB = "study.db"
BEST_CONFIG = "best_config.yaml"    # the best trial's options as a train --config (imgcls.tune.report writes it)
# every step's HTML report in its output folder: a run's, a study's, eda's, clean's, preprocess's, a prediction's and
# an ensemble's (split's and `runs report`'s are named after their --out)
REPORT_HTML = "report.html"
RUNS_DIR = "outputs/runs"       # where imgcls train writes its runs by default (TrainConfig.out)
# preprocess's resume journal in its --out: there from its first image until its manifest and preprocess.json are
# written, so a folder holding it is a run that was interrupted (or is still running)
PREPROCESS_JOURNAL = ".preprocess_journal.jsonl"
# its --oversample journal: there from the first copy until manifest.csv and preprocess.json are written; where the
# originals were up to date (a rerun that changes only the oversampling options) the one mark of an unfinished run
OVERSAMPLE_JOURNAL = ".oversample_journal.jsonl"
# the file each step writes into its --out folder that tells its output apart (output_step)
EDA_SUMMARY = "summary.json"
CLEAN_SUMMARY = "clean_summary.json"
PREPROCESS_SETTINGS = "preprocess.json"
PREDICT_SUMMARY = "predict.json"
EXPORT_SUMMARY = "export.json"


def predict_fix(source: str | os.PathLike | None, fmt: str | None = None,
                data: str | os.PathLike | None = None) -> str:
    """The command that predicts with a run or an ensemble folder (None: the latest run, none named), and its Python
    call, for both callers. `fmt`: the --format it needs (a profile ensemble's 'mask'), its fmt= there; `data`: the
    test data it reads (--data, data=)."""
    from imgcls.console import sh
    cli = [f" {sh(source)}"] if source is not None else []
    args = [repr(str(source))] if source is not None else []
    for flag, value in (("data", data), ("format", fmt)):
        if value:
            cli.append(f" --{flag} {sh(value)}")
            args.append(f"{'fmt' if flag == 'format' else flag}={str(value)!r}")
    return python_too(f"imgcls predict{''.join(cli)}", f"run_predict({', '.join(args)})")


def split_outputs(out: Path) -> dict[str, Path]:
    """The files `imgcls split --out DIR/NAME.csv` writes beside its table: report, counts, summary (its settings:
    what the age band record of a split's table is read from), plot and leaks."""
    stem, parent = out.stem, out.parent
    return {"report": parent / f"{stem}_report.html", "counts": parent / f"{stem}_counts.csv",
            "summary": parent / f"{stem}_summary.json", "plot": parent / f"{stem}_distribution.png",
            "leaks": parent / f"{stem}_leaks.csv"}


def placing_journal(out: Path) -> Path:
    """The record a step that renames a set of files into place beside `out` (split's table and its reports) keeps
    while it renames them: written before the first rename, removed after the last (placing_record). A run stopped
    among the renames leaves it beside the files it placed (interrupted_leftovers)."""
    return out.parent / f".{out.name}.placing.json"


def placing_record(moves: dict[Path, Path], earlier: Iterable[Path] = ()) -> dict[str, list[list[int]]]:
    """The journal's content for renames {staged file: its place} that replace the files there and remove the
    step's earlier files `earlier`: each name with the versions of it a stop among them may leave there (file_stamp:
    size and modification time, which a rename keeps): the staged file's, and the earlier file's where there is
    one. A set whose record goes first (output_set's `record`) leaves no file telling its earlier output there: the
    rerun knows the earlier files from this."""
    from imgcls.fsutil import file_stamp
    record: dict[str, list[list[int]]] = {}
    for p in (*moves.values(), *earlier):
        if p.is_file() and not p.is_symlink():
            record.setdefault(p.name, []).append(list(file_stamp(p)))
    for src, dst in moves.items():
        record.setdefault(dst.name, []).append(list(file_stamp(src)))
    return record


def interrupted_leftovers(out: Path) -> list[Path]:
    """The files beside `out` that a run stopped among its renames placed or left there: those its placing_journal
    names and that still have a size and modification time it recorded (the placed file's or the earlier one's).
    They are the step's own output, not another step's or the user's, so its rerun replaces them."""
    import json
    from imgcls.fsutil import file_stamp
    journal = placing_journal(out)
    try:
        record = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = []
    for name, stamps in (record.items() if isinstance(record, dict) else ()):
        p = out.parent / str(name)
        if isinstance(stamps, list) and stamps and not isinstance(stamps[0], list):
            stamps = [stamps]   # an older imgcls's journal: the placed file's stamp alone, not a list of them
        try:
            if Path(name).name == name and p.is_file() and not p.is_symlink() and isinstance(stamps, list) \
                    and list(file_stamp(p)) in stamps:
                found.append(p)
        except OSError:
            continue
    return found


class OutputSet:
    """The files of one run of a step, written apart from the earlier run's until all are written (output_set):
    `stage`, a hidden folder in the output folder, takes the files under their own names; `beside(name)` gives a
    temporary path in the output folder itself for a file that must be written where it will lie (a manifest: its
    image roots are stored relative to its folder); `then(action)`, work done after the set is placed, still in the
    run's turn at the folder."""

    def __init__(self, folder: Path, stage: Path):
        self.folder, self.stage, self._beside, self._then = folder, stage, {}, []

    def beside(self, name: str) -> Path:
        """A temporary name in the output folder for the file `name` (atomic_path's kind: a kill -9 leaves one the
        stale-temp sweep removes), renamed onto it after the staged files."""
        import tempfile
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp" + Path(name).suffix, dir=self.folder)
        os.close(fd)
        self._beside[name] = Path(tmp)
        return Path(tmp)

    def then(self, action: Callable[[], object], undone: str = "") -> None:
        """Call `action` once the set is placed, while this run still holds the folder: work in the folder that
        follows the new set and that a second run into it must not interleave with (clean --materialize filling
        images/ by the new manifest). `undone`: what is not done until it runs ('images/ is not filled yet'), said
        by a stop among the renames (partly_placed)."""
        self._then.append((action, undone))

    def _commit(self, name: str, earlier: Iterable[str] | Callable[[], Iterable[str]],
                record: str | None = None) -> None:
        """Rename the set into place, journaled (placing_journal(folder / name), removed after the last rename): a
        run stopped among the renames leaves the files it placed, and the earlier ones still there, named there
        (interrupted_leftovers). `record`: output_set's."""
        from imgcls.console import interruption_leaves, partly_placed
        from imgcls.fsutil import file_mode, remove_earlier, write_json
        earlier = earlier() if callable(earlier) else earlier
        written = sorted(p for p in self.stage.iterdir() if p.is_file())
        for tmp in self._beside.values():
            os.chmod(tmp, file_mode())
        moves = {**{p: self.folder / p.name for p in written}, **{t: self.folder / n for n, t in self._beside.items()}}
        gone = set(earlier) - {p.name for p in written} - set(self._beside)
        last = {src: dst for src, dst in moves.items() if dst.name == record}
        journal = placing_journal(self.folder / name)
        write_json(journal, placing_record(moves, [self.folder / n for n in gone if Path(n).name == n]))
        undone = ", and ".join(u for _, u in self._then if u)
        placed, current = 0, None
        with interruption_leaves(partly_placed(self.folder, undone)):     # said by the CLI's `interrupted:` line
            try:
                if last:        # the earlier record first: none lies beside files of another set
                    remove_earlier(self.folder, [record])
                for src, dst in moves.items():
                    if src not in last:
                        current = dst
                        os.replace(src, dst)
                        placed += 1
                current = None
                remove_earlier(self.folder, gone)
                for src, dst in last.items():
                    current = dst
                    os.replace(src, dst)
                    placed += 1
            except OSError as e:
                # an I/O error (EIO, EACCES) among the renames: one line saying what is left, as a stop there says
                # it (the journal makes the same command again replace what was placed), not a traceback
                what = f"put {current.name} into place in" if current else "remove an earlier file of"
                left = partly_placed(self.folder, undone) if placed else \
                    f"none of its files were renamed into {self.folder}; the same command again writes them"
                raise UserError(f"cannot {what} {self.folder} ({e.strerror or e}; {placed} of its {len(moves)} files "
                                f"placed): {left}") from None
        journal.unlink(missing_ok=True)


@contextmanager
def folder_turn(folder: Path, made: list | None = None) -> Iterator[None]:
    """An exclusive lock on `folder` (fsutil.exclusive_lock) while one output_set sweeps, writes and places its
    files there (preprocess: its whole run, from reading what an earlier run left): a second run of a step into the
    same folder (two predicts with one default --out) waits its turn, saying so and naming the process it waits
    for, instead of sweeping the first one's staging folder and temporary files as a killed run's (the first then
    failed with FileNotFoundError). The kernel drops the lock when the process ends, kill -9
    included; a file system without flock writes unlocked, as before. A folder the run it waited for removed (a run
    stopped before it wrote anything removes the --out it made) is made again and locked anew, its folders added to
    `made` (folders_to_make's list, for the caller's remove_made): the lock of a removed folder locks nothing, and
    the waiting run failed writing into it."""
    from contextlib import ExitStack

    from imgcls.fsutil import exclusive_lock, folders_to_make

    def waiting(holder: int | None) -> None:
        from imgcls.console import info
        info(f"{folder}: another imgcls command is writing its files there; waiting for it to finish"
             + (f" (process {holder})" if holder else ""))

    def same(st: os.stat_result) -> bool:
        try:
            now = os.stat(folder)
        except FileNotFoundError:
            return False
        return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)
    while True:
        with ExitStack() as turn:
            try:
                locked = os.stat(folder)
                turn.enter_context(exclusive_lock(folder, waiting=waiting))
                taken = True
            except FileNotFoundError:
                taken = False
            except (ImportError, OSError):      # no fcntl; ENOLCK, EOPNOTSUPP: no locks on this file system
                taken = None
            if taken is not None and not (taken and same(locked)):
                again = folders_to_make(folder)
                folder.mkdir(parents=True, exist_ok=True)
                if made is not None:
                    made.extend(d for d in again if d not in made)
                continue
            yield
            return


@contextmanager
def output_set(folder: str | os.PathLike, name: str, earlier: Iterable[str] | Callable[[], Iterable[str]] = (),
               temps: Iterable[str] | bool = (), record: str | None = None) -> Iterator[OutputSet]:
    """A step's files written as one set into `folder` (split's table and reports, eda's plots, summary and
    report): yields an OutputSet to write them into; as the block ends they are renamed into place (the staged
    files, then the `beside` ones), and the `earlier` names (the files an earlier run of the step may have left
    in `folder`) this set does not hold are removed. `earlier` a callable: asked for them then, while this run
    holds the folder (which of them are the step's own, own_earlier_files, is decided after a run that wrote there
    meanwhile placed its set: predict's probabilities in the other --probs-format). A run stopped while writing
    (Ctrl-C, an error) leaves the earlier set whole, never its summary beside new plots; only a stop during the
    renames themselves can mix them. `record`: the set's file that readers take the whole set by (ensemble's
    spec.yaml, which predict reads with the scored rows beside it): the earlier one is removed before the first
    rename and this set's placed after the last (and after the earlier files go), so a stop among them leaves no
    record beside another set's files; the placing journal tells the rerun what is there.
    `name`: the staging folder's (`.NAME.XXXXXXXX.tmp` in `folder`); the ones a kill -9 left are removed here, and
    so are the temporary files of the file names `temps` (what `beside` and atomic writes leave: fsutil's
    remove_stale_temps; True: every one under `folder`, a step owning all of it: eda), both while this run holds
    the folder (folder_turn: a concurrent run's are not a killed run's). `folder` is made here where it is not
    there; a run stopped before it placed a file removes it (and the folders above it it made) again, so a stopped
    first run leaves no empty --out (a folder that was there stays)."""
    import shutil
    import tempfile
    from imgcls.fsutil import folders_to_make, is_temp_name, remove_made, remove_stale_temps
    folder = Path(folder)
    made = folders_to_make(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with folder_turn(folder, made):
        if temps is True:
            remove_stale_temps(folder)
        elif temps:
            remove_stale_temps(folder, list(temps))
        for d in folder.glob(f".{name}.*.tmp"):
            if is_temp_name(d.name) and d.is_dir() and not d.is_symlink():
                shutil.rmtree(d, ignore_errors=True)
        written = OutputSet(folder, Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=folder)))
        done = False
        try:
            yield written
            written._commit(name, earlier, record)
            done = True
            from imgcls.console import all_placed, set_placed
            # a stop from here on (the work that follows, this folder's clean-up, the instant before the step's own
            # all_placed block) says the files are in place
            set_placed(all_placed(folder, ", and ".join(u for _, u in written._then if u)))
            for action, _ in written._then:
                action()
            set_placed(all_placed(folder))
        finally:
            shutil.rmtree(written.stage, ignore_errors=True)
            for tmp in written._beside.values():
                tmp.unlink(missing_ok=True)
            if not done:            # only those still empty: what a stop among the renames placed stays
                remove_made(made)


# YAML 1.2's floats that PyYAML's YAML 1.1 resolver reads as strings: an exponent without a dot (`1e-4`) or
# without a sign (`1.0e4`, `.5e3`), as people (and the README's space example) write learning rates
_EXPONENT_FLOAT = r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"
_YAML: dict = {}


def _yaml_classes():
    """The safe Loader and Dumper (libyaml's C ones where PyYAML has them) with _EXPONENT_FLOAT as a float: a
    `1e-4` reads as the number it spells, and a string spelled so (a class named `1e5`) is written quoted, so it
    reads back as that string."""
    if not _YAML:
        import yaml

        class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            pass

        class Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
            pass
        for cls in (Loader, Dumper):
            cls.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(_EXPONENT_FLOAT), list("-+.0123456789"))
        _YAML.update(loader=Loader, dumper=Dumper)
    return _YAML["loader"], _YAML["dumper"]


def yaml_load(text: str):
    """yaml.safe_load of `text` by libyaml's C parser where PyYAML was built with it (its wheels are): ~8x faster than
    the pure-Python one (~8 ms a train config.yaml, read a few times by each predict, runs listing and resume); the
    same documents, the same errors (yaml.YAMLError, a !!python tag refused), but for a number written with an
    exponent and no dot (`lr: 1e-4`), a float here as in YAML 1.2, not the string YAML 1.1 makes of it."""
    import yaml
    return yaml.load(text, Loader=_yaml_classes()[0])


def yaml_dump(data, **kwargs) -> str:
    """yaml.safe_dump(data, **kwargs) by libyaml's C emitter where PyYAML has it (the same text, ~4x faster; a string
    yaml_load would read as a number, `1e5`, quoted)."""
    import yaml
    return yaml.dump(data, Dumper=_yaml_classes()[1], **kwargs)


def read_yaml(path: Path) -> dict:
    """A YAML mapping, {} when the file is missing, unreadable or not a mapping."""
    import yaml
    try:
        d = yaml_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):      # a file in another encoding is unreadable too
        return {}
    return d if isinstance(d, dict) else {}


def preprocess_source(folder: str | os.PathLike) -> str | None:
    """The SRC the preprocess run that wrote `folder` read (its preprocess.json's `source`), None where no such
    record is there or it cannot be read: what made a preprocess output (the originals to preprocess again)."""
    src = read_yaml(Path(folder) / PREPROCESS_SETTINGS).get("source")
    return src if isinstance(src, str) and src else None


def output_kind(folder: str | os.PathLike) -> str | None:
    """What imgcls output a folder is, by the files each step writes: 'train run' (config.yaml with metrics.csv,
    train.log or a checkpoint, its own or its folds'), 'ensemble' (spec.yaml), 'tune study' (trials.csv or
    study.db), 'predictions' (predict.json); None for anything else (a dataset, clean's or preprocess's output, a
    folder that cannot be read)."""
    folder = Path(folder)
    try:
        if (folder / SPEC_NAME).is_file() and read_yaml(folder / SPEC_NAME).get("kind") == "imgcls-ensemble":
            return "ensemble"
        if (folder / RUN_CONFIG).is_file() and any(
                (d / f).is_file() for d in (folder, *fold_dirs(folder))
                for f in (METRICS_CSV, TRAIN_LOG, LAST_PT, BEST_PT)):
            return "train run"
        if (folder / TRIALS_CSV).is_file() or (folder / STUDY_DB).is_file():
            return "tune study"
        if (folder / PREDICT_SUMMARY).is_file():
            return "predictions"
    except OSError:         # a link loop, a folder it may not list
        pass
    return None


def not_a_run(folder: str | os.PathLike, kind: str, give: str) -> str:
    """The line of a step that takes a run given another step's output `folder` (output_kind's `kind`: a tune
    study, predict's output): what the folder is and `give`, what the step takes; of a tune study, its trial
    folders too (each a run folder: predict's, ensemble's, `runs diff`'s)."""
    line = f"{folder} is an imgcls {kind} folder, not a run; give {give}"
    if kind != "tune study":
        return line
    trials = sorted(str(d) for d in Path(folder).glob("trial_*") if (d / RUN_CONFIG).is_file())
    best = best_trial(folder)
    if best is not None:
        others = [t for t in trials if t != str(best)]
        return line + (f", or the study's best trial, {best} (by its {TRIALS_CSV})"
                       + (f", or another of its trial folders ({shown(others)})" if others else ""))
    return line + (f", or one of the study's trial folders ({shown(trials)})" if trials else
                   ", or a trial_NNNN of the study once it trained one")


def best_trial(study_dir: str | os.PathLike) -> Path | None:
    """The run folder of a tune study's best trial, by the study's own record of its trials: its trials.csv's
    complete trials' values, the best by the study's --metric (its best_config.yaml's, which tune writes from that
    trial, else a complete trial's config.yaml's; BEST_BY's direction), the first of equal ones; None where the
    table lists no complete trial with a value, or that trial's folder holds no run (its config.yaml)."""
    import math
    study_dir = Path(study_dir)
    scored = []
    for r in _trial_rows(study_dir):
        try:
            number, value = int((r.get("trial") or "").strip()), float((r.get("value") or "").strip())
        except ValueError:
            continue
        if (r.get("state") or "").strip().lower() == "complete" and math.isfinite(value):
            scored.append((number, value))
    if not scored:
        return None
    recorded = read_yaml(study_dir / BEST_CONFIG).get("metric")
    if recorded is None:
        recorded = next((m for n, _ in scored if (m := read_yaml(trial_dir(study_dir, n) / RUN_CONFIG).get("metric"))
                         is not None), None)
    sign = -1 if BEST_BY[run_metric(recorded)].direction == "maximize" else 1
    number = min(scored, key=lambda nv: sign * nv[1])[0]
    best = trial_dir(study_dir, number)
    return best if (best / RUN_CONFIG).is_file() else None


_KIND_STEP = {"train run": ("train", "an imgcls train run"), "ensemble": ("ensemble", "an imgcls ensemble"),
              "tune study": ("tune", "an imgcls tune study"),
              "predictions": ("predict", f"the output of imgcls predict ({PREDICT_SUMMARY})")}


def output_step(folder: str | os.PathLike) -> tuple[str, str] | None:
    """Which imgcls step's output a folder holds, by the files each writes there: (step, what it is in words), e.g.
    ('clean', 'the output of imgcls clean (clean_summary.json)'); None for none (an empty or a user's folder, a
    folder of runs)."""
    folder = Path(folder)
    kind = output_kind(folder)
    if kind is not None:
        return _KIND_STEP[kind]
    # one of a step's files tells it, or all of them where one alone has a common name (eda's summary.json: with its
    # report.html, not a user's own summary.json)
    for step, files, every in (("clean", (CLEAN_SUMMARY,), False),
                               ("preprocess", (PREPROCESS_SETTINGS, PREPROCESS_JOURNAL), False),
                               ("eda", (EDA_SUMMARY, REPORT_HTML), True), ("export", (EXPORT_SUMMARY,), False)):
        try:
            there = [f for f in files if (folder / f).is_file()]
        except OSError:
            continue
        if there and (not every or len(there) == len(files)):
            return step, f"the output of imgcls {step} ({' and '.join(there)})"
    return None


# the record each step writes into its output folder, by which output_step tells it (tune's study: its table and
# storage, not its best_config.yaml, a train config): a file given where another step's file goes is named as that
# step's record (step_record)
_RECORDS = {"predict": (PREDICT_SUMMARY,), "ensemble": (SPEC_NAME,), "tune": (TRIALS_CSV, STUDY_DB),
            "clean": (CLEAN_SUMMARY,), "preprocess": (PREPROCESS_SETTINGS,), "eda": (EDA_SUMMARY,),
            "export": (EXPORT_SUMMARY,)}


def step_record(file: str | os.PathLike) -> str | None:
    """Which imgcls step's record the file `file` is, by its name and what its folder holds (output_step): 'predict'
    for pr1/predict.json beside its prediction; 'split' for a split table's summary beside it (data/splits_summary.json
    beside data/splits.csv: split_table_of); None for any other file (a config.yaml, a user's own summary.json in a
    folder of no step's output)."""
    file = Path(file)
    if not file.is_file():
        return None
    if split_table_of(file) is not None:
        return "split"
    found = output_step(file.parent)
    return found[0] if found is not None and file.name in _RECORDS.get(found[0], ()) else None


def split_table_of(summary: str | os.PathLike) -> Path | None:
    """The table whose summary the file `summary` is (split_outputs: NAME_summary.json beside NAME.csv, or
    NAME.parquet), where that table is there with split's columns; None otherwise (a user's own results_summary.json
    beside their results.csv)."""
    summary = Path(summary)
    stem = summary.name.removesuffix("_summary.json")
    if stem in ("", summary.name):
        return None
    for table in (summary.with_name(stem + ext) for ext in (".csv", ".parquet")):
        if split_outputs(table)["summary"] == summary and table.is_file() and _has_split_columns(table):
            return table
    return None


def earlier_output(out: str | os.PathLike, step: str) -> bool:
    """Whether the folder `out` holds `step`'s own earlier output (output_step), which a run of it replaces."""
    found = output_step(out) if Path(out).is_dir() else None
    return found is not None and found[0] == step


def is_split_table(table: str | os.PathLike) -> bool:
    """Whether the file `table` is an earlier split's table: its summary beside it (split_outputs), or split's own
    columns, split and drop_reason (a split table moved or copied without its reports). A table that cannot be read
    is not."""
    table = Path(table)
    return split_outputs(table)["summary"].is_file() or _has_split_columns(table)


def _has_split_columns(table: Path) -> bool:
    """Whether the table file `table` has split's own columns, split and drop_reason; False where it cannot be
    read."""
    try:
        if table.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq
            columns = pq.read_schema(table).names
        else:
            import pandas as pd
            columns = pd.read_csv(table, nrows=0).columns
    except (OSError, ValueError, ImportError):
        return False
    return {"split", "drop_reason"} <= set(map(str, columns))


# what tells a step's earlier output, named when a file of its is refused (refuse_users_files)
_OWN_MARK = {"eda": EDA_SUMMARY, "clean": CLEAN_SUMMARY, "preprocess": PREPROCESS_SETTINGS,
             "predict": PREDICT_SUMMARY, "export": EXPORT_SUMMARY, "ensemble": SPEC_NAME,
             "train": f"{RUN_CONFIG} with {METRICS_CSV}, {TRAIN_LOG} or a checkpoint",
             "tune": f"Optuna {STUDY_DB} or {TRIALS_CSV} of tune's"}


def not_own_output(step: str) -> str:
    """Why a file or folder found where `step` writes is not its earlier output, as a refusal says it: 'no
    config.yaml with metrics.csv, train.log or a checkpoint there' (refuse_users_files; tune's trial folders)."""
    return f"no {_OWN_MARK[step]} there"


def own_earlier_files(out: str | os.PathLike, step: str, files: Iterable[str | os.PathLike],
                      placing: str | os.PathLike | None = None) -> list[Path]:
    """Of `files`, the paths a run of `step` writes (or removes as an earlier run's) for its --out `out`, those there
    that are the step's own earlier output, which a run of it replaces (saying so: replacing_line); one there that is
    not is the user's own (refuse_users_files) or, in a folder of another step's output, that step's
    (refuse_other_output's `mine`). The one rule for all three: every one of them when `out` holds the step's
    earlier output (_holds_own_output), else those a run of the step stopped among the renames of its set placed
    (interrupted_leftovers of `placing`: the path the set's placing_journal is named by, split's table or OUT/eda).
    Either is read once for all the files."""
    there = [Path(f) for f in files if os.path.lexists(f)]
    if not there or _holds_own_output(out, step):
        return there
    mine = set(interrupted_leftovers(Path(placing))) if placing is not None else set()
    return [f for f in there if f in mine]


def _holds_own_output(out: str | os.PathLike, step: str) -> bool:
    """Whether --out `out` holds `step`'s earlier output, all of whose files are the step's: a folder, by its files
    (earlier_output); for split, whose --out is its table, a split table (is_split_table), its reports beside it
    the step's too; among another step's files (split --out data/clean/splits.csv), only a table with its summary
    beside it: clean's manifest.csv of a split table has split's columns too."""
    if step == "tune":
        return earlier_output(out, step) and _tune_study(Path(out))
    if step != "split":
        return earlier_output(out, step)
    out = Path(out)
    if output_step(out.parent) is None:
        return is_split_table(out)
    return out.is_file() and split_outputs(out)["summary"].is_file()


def _tune_study(folder: Path) -> bool:
    """Whether the study.db and trials.csv in `folder` (those there) are tune's by what they hold, not by their
    names alone: a user's own study.db, opened as the study's storage, had Optuna's tables written into it. study.db:
    an Optuna SQLite database (its studies table, the first Optuna makes), read only; one with no table yet (an
    empty file: a tune process is opening it, or was killed opening it) too. trials.csv: tune's columns (trial,
    state, value)."""
    import csv
    import sqlite3
    db, table = folder / STUDY_DB, folder / TRIALS_CSV
    try:
        if db.is_file() and db.stat().st_size:
            con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
            try:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                con.close()
            if tables and "studies" not in tables:
                return False
        if table.is_file():
            with open(table, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), [])
            if not {"trial", "state", "value"} <= set(header):
                return False
    except (OSError, sqlite3.Error, UnicodeDecodeError, csv.Error):
        return False
    return True


def refuse_users_files(out: str | os.PathLike, step: str, files: Iterable[str | os.PathLike], flag: str = "--out",
                       placing: str | os.PathLike | None = None) -> list[Path]:
    """Refuse, before the work, to replace (or remove as an earlier run's) a file of the user's: `files` are the
    paths a run of `step` would write (or remove) for its --out `out`; one that is there and is not the step's own
    earlier output (own_earlier_files) stops the run in one line naming it and the fix. `eda --out myfolder` replaced
    the user's report.html and manifest.csv, `predict --out comp` their submission.csv, without a word. Returns the
    step's own earlier files there, which the run replaces: where there are any, the step says so (replacing_line),
    what a run stopped among its renames placed too."""
    out = Path(out)
    files = [Path(f) for f in files]
    mine = own_earlier_files(out, step, files, placing)
    own = set(mine)         # made once: made per file, preprocess's rerun hashed n x n paths (56M at 7.5k images)
    theirs = sorted(f for f in files if f not in own and os.path.lexists(f))
    if not theirs:
        return mine
    if step == "split":         # its table and the reports beside it
        names = [f.name for f in theirs]
        why = f"no {split_outputs(out)['summary'].name} beside it, no split / drop_reason columns"
    else:
        names = [f.relative_to(out).as_posix() if f.is_relative_to(out) else str(f) for f in theirs]
        why = not_own_output(step)
    one = len(names) == 1
    raise UserError(f"{flag} {out}: {shown(names)} {'is' if one else 'are'} not from an earlier imgcls {step} run "
                    f"({why}); imgcls {step} would replace {'it' if one else 'them'}: {choose_another(flag)}, or move "
                    f"{'it' if one else 'them'} away first")


def replacing_line(out: str | os.PathLike, what: str, keep: str = "--out FOLDER") -> str:
    """The line a step says as it replaces its own earlier output (`what`: 'an earlier prediction', 'an earlier eda
    output'): a step's default --out is the same every run (predict's is named by the run alone), so a rerun
    replaces the last one's files without the user naming them. Said before the work (predict: before the model
    runs), it says when: a run failing or stopped before its set is placed (output_set) leaves the earlier one whole;
    'it is replaced' had been said by then."""
    return f"{out} holds {what}; this run replaces it once its files are all written ({keep} keeps both)"


def refuse_other_output(out: str | os.PathLike, step: str, flag: str = "--out", own: tuple[str, ...] = (),
                        writes=None, instead: str | None = None, whole: bool = False, among: bool = False,
                        mine=()) -> None:
    """Refuse an --out folder that holds another step's output (output_step), before the work: `step` writing its
    report.html, manifest.csv, ... there would replace that step's files or mix its own among them (eda --out
    data/clean). The step's own earlier output (and `own`'s: train's runs in a tune study) passes, to be replaced as
    ever. `writes`: the files a step that writes only its own files into a folder would write there (split's
    table, the --out given, first, then its reports): refused only when one of them is already there, unless it is
    among `mine` (what a run of the step stopped while renaming them placed: interrupted_leftovers). `instead`:
    what the fix suggests (default: an empty folder or an earlier output of this step). `whole`: a step that owns
    its whole --out (eda, clean, preprocess: its files anywhere under it, its stale-temp sweep walking all of it)
    also refuses a folder of outputs (outputs/runs, outputs: a run, ensemble, study or prediction up to two
    folders down). `among`: a step whose files in a folder make it read as that step's output (predict's
    predict.json, ensemble's spec.yaml, export's export.json) refuses a folder of outputs too: outputs/runs would
    read as its output, and train's default --out there would be refused."""
    out = Path(out)
    instead = instead or f"an empty folder, or an earlier imgcls {step} output"
    if (whole or among) and out.is_dir() and output_kind(out) is None:
        below = _output_below(out)
        if below is not None:
            why = ("and sweep its temporary files under all of them" if whole else
                   "and the folder would read as its output, not theirs")
            raise UserError(f"{flag} {out} is a folder of imgcls outputs ({below[0].relative_to(out).as_posix()}: "
                            f"{below[1]}); imgcls {step} would write its own files among them {why}: "
                            f"{choose_another(flag)}: {instead}")
    found = output_step(out)
    if found is None or found[0] == step or found[0] in own:
        return
    if writes is not None:
        mine = {Path(m) for m in mine}
        clash = [Path(w).name for w in writes if Path(w).is_file() and Path(w) not in mine]
        if not clash:
            return
        raise UserError(f"{flag} {writes[0]}: {out} holds {found[1]}, whose {', '.join(clash)} imgcls {step} "
                        f"would write over; {choose_another(flag)}")
    raise UserError(f"{flag} {out} holds {found[1]}; imgcls {step} would write its own files over or among its "
                    f"files: {choose_another(flag)}: {instead}")


def _output_below(folder: Path, view=None) -> tuple[Path, str] | None:
    """The first imgcls output (output_kind) one or two folders below `folder` (outputs/runs/RUN, outputs/RUN),
    as (its folder, its kind); None when there is none. The folders looked into are those a layout reads
    (layouts.FolderView: hidden ones by hidden_name's rule left out), listed through `view`, the look at `folder`
    a dataset's read makes (manifest.load), so each folder is listed once for both; a folder it cannot list, a
    symlink loop or a dangling link is none (the scan that follows reports such entries by path)."""
    from imgcls.layouts import FolderView      # pandas: asked where a folder is looked into, not at import
    view = view if view is not None else FolderView(folder)
    level = [view]
    for _ in range(2):
        found = []
        for v in level:
            try:
                found += v.subfolders
            except OSError:
                continue
        level = [view.sub(d) for d in sorted(found)]
        hit = next(((v.root, k) for v in level if (k := output_kind(v.root))), None)
        if hit is not None:
            return hit
    return None


def refuse_unfinished_preprocess(folder: Path, rows_of: Path | None = None) -> None:
    """`folder` (the data given, or with `rows_of`, the root of that table's rows: data/splits.csv's data/processed)
    holding a preprocess run that has not finished is refused in one line: its images (or oversampled copies) half
    rewritten, the earlier run's manifest.csv no longer describes them, and without one the folder read as images
    holds what the run finished (a class or two of the data)."""
    journal = next((j for j in (PREPROCESS_JOURNAL, OVERSAMPLE_JOURNAL) if (folder / j).is_file()), None)
    if journal is not None:
        raise UserError((f"{rows_of}'s images lie in {folder}, which" if rows_of is not None else f"{folder}")
                        + f" holds an imgcls preprocess run that did not finish (interrupted, or still running: "
                          f"{journal}); "
                        + python_too("run the same imgcls preprocess command again", "the same run_preprocess call")
                        + " to finish it (the images it finished are kept)")


def refuse_output_as_data(src: str | os.PathLike, view=None) -> None:
    """A dataset argument that is an imgcls output folder, or a folder of them (outputs/runs), is refused in one
    line naming what it is and, for a train run, the data it was trained on: read as a folder layout, its plots
    would be the images and its fold_* / trial_* folders the classes. So is a folder (or a table in it) where a
    preprocess run has not finished. `view`: the read's look at the folder `src` (layouts.FolderView), whose
    listings the search below it shares."""
    src = Path(src)
    refuse_unfinished_preprocess(src if src.is_dir() else src.parent)
    if not src.is_dir():
        return
    kind = output_kind(src)
    where, kind = (src, kind) if kind is not None else (_output_below(src, view) or (src, None))
    if kind is None:
        return
    what = (f"an imgcls {kind} folder" if where == src else
            f"a folder of imgcls outputs ({where.relative_to(src).as_posix()}: {kind})")
    data = read_yaml(where / RUN_CONFIG).get("src") if kind == "train run" else None
    raise UserError(f"{src} is {what}, not a dataset; give a dataset folder or manifest.csv"
                    + (f" (this run trained on {data})" if data and where == src else ""))


# a tune trial's run folder in its study folder, OUT/STUDY/trial_NNNN (tune names it, runs and train read it back):
# the name of trial `number`, and the pattern tune takes for one of its trials' folders (four digits or more)
TRIAL_DIR = re.compile(r"trial_\d{4,}")


def trial_dir(study_dir: str | os.PathLike, number: int) -> Path:
    """Trial `number`'s run folder in the study folder `study_dir` (trial_0003)."""
    return Path(study_dir) / f"trial_{number:04d}"


def trial_record(run_dir: str | os.PathLike) -> dict | None:
    """For a tune trial's folder OUT/STUDY/trial_NNNN: its row of the study's trials.csv (column -> text); None when
    the folder is not a trial's or the study's table does not list it."""
    import re
    m = re.fullmatch(r"trial_(\d+)", Path(run_dir).name)
    if not m:
        return None
    rows = [r for r in _trial_rows(Path(run_dir).parent) if (r.get("trial") or "").strip() == str(int(m.group(1)))]
    return {k: (v if v is not None else "") for k, v in rows[0].items()} if rows else None


def _trial_rows(study_dir: Path) -> list[dict]:
    """The rows of a study's trials.csv (column -> text, as csv reads them); [] where it is missing or unreadable
    (its readers, trial_record and best_trial, then know nothing of the trials)."""
    import csv
    try:
        with open(study_dir / TRIALS_CSV, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def removed_by_keep(run_dir: str | os.PathLike) -> str | None:
    """For a trial folder whose study's trials.csv records that tune --keep deleted its checkpoints: that record
    ('removed (--keep best-3)'); else None."""
    return (trial_record(run_dir) or {}).get("checkpoints") or None
