"""`imgcls tune`: hyper-parameter search over `imgcls train` options with Optuna.

Python use:  from imgcls.tune import TuneConfig, run_tune
             from imgcls.train import TrainConfig
             study_dir = run_tune(TuneConfig(study="lite0", trials=12, train=TrainConfig(src="data/splits.csv",
                                                                                         epochs=3, img_size=96)))

The study lives in a real Optuna storage (default: SQLite at <out>/<study>/study.db; any RDB URL, or a journal
file): running the same command again resumes it, and several processes given the same storage work on one study.
Every trial is a normal run folder <out>/<study>/trial_NNNN/ written by run_train; each epoch's validation metric
is reported to the trial, so the pruner can stop it (optuna.TrialPruned raised from a train callback).
"""
from __future__ import annotations

import math
import os
import re
import socket
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from imgcls.errors import UserError
from imgcls.figure_files import CURVES_PNG
from imgcls.options import (PATH, SRC_PATH, check, check_arguments, choose_another, option, option_text, python_too,
                            recorded_nulls, set_options, shown)
from imgcls.outputs import (BEST_CONFIG, INTERRUPTED, INTERRUPTED_BY_SIGTERM, REPORT_HTML, STUDY_DB, TRIAL_DIR,
                            TRIALS_CSV, trial_dir)
from imgcls.run_names import BEST_BY, METRICS_CSV, PER_CLASS_CSV, RUN_CONFIG
from imgcls.train.callbacks import Callback, DeliberateStop, check_callbacks, is_pruning
from imgcls.train.config import RUN_FOLDER_OPTIONS, TrainConfig

if TYPE_CHECKING:
    import pandas as pd      # annotations only: `imgcls tune --help` does not import pandas

SAMPLERS = ("tpe", "random", "cmaes", "grid")
ANOTHER_STUDY = python_too("another --study", "study=")      # a study that cannot be resumed so: its fix
PRUNERS = ("median", "hyperband", "none")
# --metric: run_names.BEST_BY's (train's --metric, which each trial runs with, so its best.pt is of the epoch its
# objective value is): the metrics.csv column of each epoch, the study's direction, its name for people

__all__ = ["TuneConfig", "run_tune", "SAMPLERS", "PRUNERS"]

# the search options a study records (user attr "search") and resumes with where a command leaves them unset; another
# one typed is this command's (a sampler or pruner changes how trials are drawn or stopped, not what they score)
RESUMED_SEARCH = ("sampler", "pruner", "prune_startup", "prune_warmup")
TRIALS_RECORD = "trials"        # the study's user attribute: its --trials, the total a resume runs to


SEARCH, STUDY = "Search", "Study and budget"


def _timeout_value(value) -> None:
    """--timeout's check: what parse_duration takes (2h, 45m, a number of seconds: a Python caller's 3600 too)."""
    parse_duration(value)


@dataclass
class TuneConfig:
    """Every option of a search, each declared once (imgcls.options: default, choices, range, help, --help panel;
    `imgcls tune`'s flags are built from them). `train` holds the fixed options every trial starts from (the space's
    values replace them); its seed also seeds the sampler."""
    study: str | None = option(None, panel=STUDY, none="required",
                               help="Study name: its folder is OUT/STUDY; the same name resumes the study.")
    train: TrainConfig = option(factory=TrainConfig, cli=False,
                                help="The fixed train options of every trial (imgcls train's flags / --config).")
    space: str | None = option(None, panel=SEARCH, cli_type=Optional[Path], from_cli=str,
                               none="the shipped space (--show-space)",
                               help="YAML search space over imgcls train options.")
    sampler: str = option("tpe", panel=SEARCH, choices=SAMPLERS, help="Optuna sampler (seeded with --seed).")
    pruner: str = option("median", panel=SEARCH, choices=PRUNERS,
                         help="Stop trials whose per-epoch metric lags the completed trials'.")
    prune_startup: int = option(3, panel=SEARCH, lo=0,
                                help="--pruner median: completed trials before any trial is pruned.")
    prune_warmup: int = option(1, panel=SEARCH, lo=0,
                               help="--pruner median: epochs every trial runs before it can be pruned.")
    metric: str = option("macro_f1", panel=SEARCH, choices=tuple(BEST_BY),
                         help="Objective: the best epoch's validation value (mean over folds with --folds); each "
                              "trial trains with it as imgcls train's --metric, so its best.pt is of that epoch.")
    trials: int | None = option(20, panel=STUDY, lo=1,
                                help="Trials in the study at most (every process and every re-run counted); a resume "
                                     "without it runs up to the study's own.")
    timeout: str | None = option(None, panel=STUDY, none="none", validator=_timeout_value,
                                 help="Wall-clock budget of this command (2h, 45m, 90s, 1h30m): no trial starts "
                                      "after it, a trial running then stops and is recorded as failed.")
    storage: str | None = option(None, panel=STUDY, none=f"sqlite:///OUT/STUDY/{STUDY_DB}",
                                 help="Optuna RDB URL (postgresql://, mysql://, sqlite:///) or a journal file; "
                                      "processes given the same storage share the study.")
    out: str = option("outputs/tune", panel=STUDY, cli_type=Path, from_cli=str, help="Folder of studies.")
    trial_plots: bool = option(False, panel=STUDY,
                               help=f"Each trial draws train's figures ({CURVES_PNG}, the confusion PNGs: about a "
                                    f"second a trial); without it trials draw none, their numbers in {METRICS_CSV} and "
                                    f"{PER_CLASS_CSV}, and the best trial's are drawn by re-training {BEST_CONFIG}. "
                                    f"--no-plots: tune draws no figure at all, {REPORT_HTML}'s plots neither.")
    keep: str = option("best-3", panel=STUDY,
                       help="best-K: only the K best trials keep their checkpoints; all: every trial keeps them.")
    config: str | None = option(None, cli=False,
                                help="A train config file (--config: a run's config.yaml, a study's "
                                     "best_config.yaml), read once by run_tune: `train`'s own options are laid "
                                     "over its values as train's flags are (_lay_over_the_config); the options of "
                                     "it the space varies are named, as each trial's draw replaces their values.")
    typed: frozenset | None = option(None, cli=False,
                                     help="The fixed train options typed on the command line: one that would act in "
                                          "no trial is refused even at its default value, as imgcls train refuses "
                                          "it. None (a Python caller's): those of `train` set to other than their "
                                          "defaults, less the config file's values.")
    search_typed: frozenset = option(factory=frozenset, cli=False,
                                     help="The search options (RESUMED_SEARCH: --sampler, --pruner, --prune-startup, "
                                          "--prune-warmup) typed on the command line: a resumed study takes its "
                                          "recorded value of each other one left at its default.")

    def validate(self) -> None:
        """Every option, before the study is opened: one line naming the option."""
        check(self)
        if self.study is None:       # typed empty, it is the name check's
            example = python_too("--study lite0", "study='lite0'")
            raise UserError(f"no --study given: name the study, e.g. {example} (its folder is {self.out}/NAME; the "
                            f"same name resumes the study)")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.study):
            raise UserError(f"--study '{self.study}': give a name of letters, digits, '.', '_' or '-' "
                            f"(it names the folder {self.out}/STUDY; the same name resumes the study)")
        self.keep_k()
        self.timeout_seconds()
        if self.train.metric != TrainConfig.metric and self.train.metric != self.metric:
            raise UserError(f"the fixed train options pick each trial's best epoch by metric {self.train.metric}, "
                            f"the study optimises --metric {self.metric}: a trial's value would not be its best.pt's "
                            f"epoch; give " + python_too(f"--metric {self.train.metric}",
                                                         f"metric={self.train.metric!r}")
                            + " (tune's --metric is every trial's)")
        if self.trial_plots and not self.train.plots:
            raise UserError(f"{python_too('--trial-plots', 'trial_plots=True')} with "
                            f"{python_too('--no-plots', 'TrainConfig(plots=False)')}: --no-plots draws no figure at "
                            f"all; give one of them")
        # each trial's run folder is OUT/STUDY/trial_NNNN, a new one: a train name / out would be silently
        # replaced, an exist_ok would do nothing (tune's command has no --exist-ok)
        given = [f"{k}={getattr(self.train, k)!r}" for k in set_options(self.train, RUN_FOLDER_OPTIONS)]
        if given:
            raise UserError(f"TuneConfig(train=TrainConfig({', '.join(given)})): each trial's run folder is "
                            f"OUT/STUDY/trial_NNNN, a new one; leave the train's name / out / exist_ok unset and give "
                            f"tune's own out= (--out, now {self.out}) for where the trials go"
                            + ("" if self.config else "; a config.yaml read by TrainConfig.resolve(config=FILE) "
                               "gives its run's: pass TuneConfig(config=FILE) too, and they are set aside"))

    def keep_k(self) -> int | None:
        """--keep best-K -> K; all -> None."""
        if self.keep == "all":
            return None
        m = re.fullmatch(r"best-(\d+)", self.keep)
        if not m or int(m.group(1)) < 1:
            raise UserError(f"--keep '{self.keep}': use best-K (e.g. best-3: the K best trials keep their "
                            f"checkpoints) or all")
        return int(m.group(1))

    def timeout_seconds(self) -> float | None:
        return None if self.timeout is None else parse_duration(self.timeout)

    def study_dir(self) -> Path:
        return Path(self.out) / str(self.study)


def parse_duration(text: str) -> float:
    """'2h', '45m', '90s', '1h30m', '1.5h' or plain seconds -> seconds."""
    s = str(text).strip().lower()
    try:
        seconds = float(s)
    except ValueError:
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", s)
        if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([hms])", "", s).strip():
            raise UserError(f"--timeout '{text}': give a duration such as 2h, 45m, 90s, 1h30m or seconds") from None
        seconds = sum(float(v) * {"h": 3600, "m": 60, "s": 1}[u] for v, u in parts)
    if not seconds > 0:
        raise UserError(f"--timeout must be > 0 (got '{text}')")
    return seconds


# ---------------------------------------------------------------------------------------------------------------
# Storage and study
# ---------------------------------------------------------------------------------------------------------------

def storage_url(cfg: TuneConfig) -> str:
    if cfg.storage:
        return cfg.storage
    return "sqlite:///" + str((cfg.study_dir() / STUDY_DB).resolve())


def sqlite_file(url: str) -> Path | None:
    """The database file of a `sqlite:///PATH` URL (None for other URLs and in-memory databases)."""
    db = url.split(":///", 1)[-1] if url.startswith("sqlite:") else ""
    return Path(db) if db and db != ":memory:" else None


def open_storage(url: str):
    """An Optuna storage: an RDB URL (sqlite:///, postgresql://, mysql://...) or a journal file path."""
    import optuna
    if "://" not in url:
        from optuna.storages.journal import JournalFileBackend, JournalStorage
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return _signals_held_in_calls(JournalStorage(JournalFileBackend(str(path))))
    kw = {}
    if url.startswith("sqlite:"):
        db = sqlite_file(url)
        if db is not None:
            from imgcls.fsutil import create_sqlite_file
            create_sqlite_file(db)
        kw["engine_kwargs"] = {"connect_args": {"timeout": 60}}   # several processes: wait for the write lock
    try:
        # heartbeats: a trial whose process was killed is marked failed by the next process instead of running forever
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=180, **kw)
    except ImportError as e:
        # Optuna re-raises sqlalchemy's ModuleNotFoundError as a bare ImportError (no name): the module is its cause's
        name = e.name or getattr(e.__cause__, "name", None)
        raise UserError(f"--storage {url}: its database driver is not installed"
                        + (f" (no module {name})" if name else "") + "; pip install it") from None
    except Exception as e:    # sqlalchemy: a malformed URL, a server that does not answer, ...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"--storage {url}: cannot open it ({msg}); give an Optuna RDB URL or a journal file path") \
            from None
    return _signals_held_in_calls(storage)


def _signals_held_in_calls(storage):
    """The storage, each of its methods (its private ones too: Optuna's cache of an RDB storage calls those) run
    with Ctrl-C and SIGTERM held back (parallel.signals_held) and raised as the call returns. Raised inside a call
    (SIGTERM is taken as Ctrl-C: cli.common.sigterm_interrupts), the KeyboardInterrupt left SQLAlchemy's cursor of
    the statement running then open, held by the exception's frames while tune recorded the trial interrupted: its
    lock on a SQLite study.db made every write of that record wait out the busy timeout and fail, and `timeout 2h
    imgcls tune` ran on minutes past its SIGTERM, ending with a storage traceback. The lock files of a journal
    storage are taken and released in its calls alike."""
    import functools
    import inspect

    from imgcls.parallel import signals_held

    def held(method):
        @functools.wraps(method)
        def call(*args, **kwargs):
            with signals_held():
                return method(*args, **kwargs)
        return call
    for name in dir(type(storage)):
        if not name.startswith("__") and inspect.isfunction(getattr(type(storage), name)):
            setattr(storage, name, held(getattr(storage, name)))
    return storage


def make_sampler(cfg: TuneConfig, space, seed: int):
    import optuna
    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if cfg.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.GridSampler(space.grid(), seed=seed)


def make_pruner(cfg: TuneConfig):
    import optuna
    if cfg.pruner == "median":
        # steps are 1-based epochs; Optuna never prunes a step below n_warmup_steps
        return optuna.pruners.MedianPruner(n_startup_trials=cfg.prune_startup, n_warmup_steps=cfg.prune_warmup + 1)
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto", reduction_factor=3)
    return optuna.pruners.NopPruner()


@contextmanager
def _opening_lock(url: str):
    """A local SQLite study opened by processes that take turns (fsutil.lock_beside; servers and journal
    files handle concurrent creation themselves)."""
    db = sqlite_file(url)
    if db is None:
        yield
        return
    from imgcls.fsutil import lock_beside
    with lock_beside(db):
        yield


def open_study(cfg: TuneConfig, space, url: str, rows: dict | None = None, named: str | None = None):
    """Create the study, or load it (resume / another process). The first process draws from --seed; a process
    that joins or resumes a study draws from its own stream, so parallel processes do not repeat each other.
    `rows`: rows_digest of the data the trials train and score on, recorded by a new study and compared with the
    study's record by one that exists. `named`: the data as the user named it, which a refusal says (cfg.train.src,
    anchored, when not known)."""
    with _opening_lock(url):
        return _open_study(cfg, space, url, rows, named)


def _open_study(cfg: TuneConfig, space, url: str, rows: dict | None = None, named: str | None = None):
    from imgcls.console import loading
    with loading("optuna"):        # seconds of import before the study's first line
        import optuna
    storage = open_storage(url)
    direction = BEST_BY[cfg.metric].direction
    seed = cfg.train.seed
    try:
        study = optuna.create_study(storage=storage, study_name=cfg.study, direction=direction,
                                    sampler=make_sampler(cfg, space, seed), pruner=make_pruner(cfg))
        study.set_user_attr("metric", cfg.metric)
        study.set_user_attr("space", space.as_dict())
        study.set_user_attr("base_config", cfg.train.to_dict())
        study.set_user_attr("search", {k: getattr(cfg, k) for k in RESUMED_SEARCH})
        study.set_user_attr(TRIALS_RECORD, cfg.trials)
        if rows is not None:
            study.set_user_attr("rows", rows)
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        pass
    old = optuna.load_study(study_name=cfg.study, storage=storage)
    attrs = old.user_attrs
    if attrs.get("metric", cfg.metric) != cfg.metric:
        raise UserError(f"study '{cfg.study}' optimises --metric {attrs['metric']}, not {cfg.metric}; use that "
                        f"metric or {ANOTHER_STUDY}")
    if attrs.get("space") is not None and attrs["space"] != space.as_dict():
        diff = sorted(set(attrs["space"]) ^ set(space.as_dict()) |
                      {k for k in attrs["space"] if attrs["space"][k] != space.as_dict().get(k, attrs["space"][k])})
        raise UserError(f"study '{cfg.study}' was started with another search space (differs in: "
                        f"{', '.join(diff)}); give the same --space to resume it, or {ANOTHER_STUDY}")
    _check_rows(cfg, attrs, rows, named)
    base = _base_config(attrs)
    if base is not None:      # the fixed options every trial starts from (the space's values replace theirs)
        from imgcls.options import describe_changes
        from imgcls.train.rundir import option_changes
        # an option the study's record predates (max_pixels) was at its default then; a path it recorded as typed
        # (before TrainConfig.anchor_paths) is taken from this working folder
        base = TrainConfig.anchored({**TrainConfig().to_dict(), **base})
        # a run's records (TrainConfig.RECORDS) a study started before --config dropped them holds are no options
        # its --metric, every trial's too, is compared above (a study started before train had one: its metric)
        changed = [c for c in option_changes(base, cfg.train.to_dict()) if c[0] not in space.names()
                   and c[0] not in TrainConfig.RECORDS and c[0] != "metric"]
        if changed:
            raise UserError(f"study '{cfg.study}' was started with other fixed train options ("
                            f"{describe_changes(type(cfg.train), changed)}): its trials would not be comparable; give the same "
                            f"options to resume it, or {ANOTHER_STUDY} for these")
    if _trials_given(cfg) and attrs.get(TRIALS_RECORD, cfg.trials) != cfg.trials:
        old.set_user_attr(TRIALS_RECORD, cfg.trials)        # the study's total for the next resume
    joined_seed = (seed * 1_000_003 + len(old.trials) * 7_919 + os.getpid()) % (2 ** 31)
    study = optuna.load_study(study_name=cfg.study, storage=storage, sampler=make_sampler(cfg, space, joined_seed),
                              pruner=make_pruner(cfg))
    return study, False


ROW_COLUMNS = ("path", "split", "fold", "keep", "augmented_from")    # with the target: what picks and labels the rows


def rows_digest(train: TrainConfig, df: pd.DataFrame | None = None) -> dict | None:
    """What a study's trials train and score on, as a digest to record with the study and compare when it is
    resumed or joined: sha256 over the data table's rows as train reads them (manifest.load, not scanned: no image
    is read), each row's path within its root (a copy of the data elsewhere has the same), its --target class and
    the columns that pick the training and validation rows (split; fold with --folds; clean's keep, oversampling's
    augmented_from), in path order where a split / fold column fixes the validation rows, else in the order read
    (the drawn validation split follows it). {"digest", "rows"}; None where the data cannot be read. `df`: the
    table as read so (tune's _check_data has read it), else it is read here."""
    import hashlib

    from imgcls import manifest as mf
    from imgcls.console import quiet_for
    if df is None:
        try:
            with quiet_for(True):
                df = mf.load(train.src, mf.LayoutOptions(), scan=False, announce=False, max_pixels=train.max_pixels)
        except UserError:
            return None
    cols = [c for c in ROW_COLUMNS if c in df.columns and (c != "fold" or train.folds)]
    if train.target in df.columns and train.target not in cols:
        cols.insert(1, train.target)
    table = df[cols].astype(str)
    if "split" in cols or "fold" in cols:
        table = table.sort_values(list(dict.fromkeys(["path", *cols])), kind="stable")
    text = table.to_csv(index=False, lineterminator="\n")
    return {"digest": hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest(), "rows": len(table)}


def _check_rows(cfg: TuneConfig, attrs: dict, rows: dict | None, named: str | None = None) -> None:
    """A study resumed or joined trains and scores its new trials on the rows its earlier ones had (their values
    are compared with each other): a SRC whose rows (rows_digest: paths, classes, split / fold) differ from the
    study's record is refused in one line, before any trial; a copy of the data elsewhere has the same rows. A study
    started before the record (none) is not checked. `named`: SRC as the user named it, which the line says."""
    recorded = attrs.get("rows")
    if not isinstance(recorded, dict) or rows is None or recorded.get("digest") == rows["digest"]:
        return
    started = (attrs.get("base_config") or {}).get("src")
    counts = f"{rows['rows']} rows here, {recorded.get('rows')} then; " if recorded.get("rows") != rows["rows"] else ""
    raise UserError(f"study '{cfg.study}': the data {named or cfg.train.src} holds other rows than "
                    + (f"{started}, the data it was started on" if started and started != cfg.train.src else
                       "the data it was started on")
                    + f" ({counts}paths, classes or split / fold columns differ): its new trials would be scored "
                      f"on other validation rows than its earlier ones; give that data (or a copy of it) as SRC, or "
                      f"{ANOTHER_STUDY} for this data")


# ---------------------------------------------------------------------------------------------------------------
# One trial
# ---------------------------------------------------------------------------------------------------------------

class _TimeUp(DeliberateStop):
    """The study's --timeout passed during a trial (the trial is recorded as failed with this message; its run is
    no crash: train.log names no exception)."""


class TrialReporter(Callback):
    """Reports each epoch's metric to the Optuna trial and stops the run when the pruner says so (TrialPruned) or
    when the study's wall-clock budget is spent. Steps are epochs counted over the whole trial (every fold): the
    trial's user attr epochs_run; with folds, fold_epochs ({fold: epochs run in it}) and folds (the folds it was
    set to train) say them per fold."""

    def __init__(self, trial, metric: str, deadline: float | None = None):
        """`metric`: the study's --metric (a BEST_BY key), whose metrics.csv column each epoch reports."""
        self.trial, self.metric, self.column, self.deadline = trial, metric, BEST_BY[metric].column, deadline
        self.step = 0
        self.best = None            # the best epoch's value so far of the run (the fold) training now
        self.final_epoch = None     # the epoch after which a single (not k-fold) run ends
        self.fold = None
        self.fold_epochs: dict[str, int] = {}

    def on_run_start(self, info: dict) -> None:
        self.final_epoch = info["total_epochs"] if info.get("fold") is None else None
        self.fold = info.get("fold")
        self.best = None
        if self.fold is not None:
            self.fold_epochs.setdefault(str(self.fold), 0)
            self.trial.set_user_attr("folds", len(self.fold_epochs) + int(info.get("folds_after") or 0))

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        import optuna

        from imgcls.metrics import better
        self.step += 1
        value = float(logs[self.column])
        self.trial.report(value, self.step)
        if better(value, self.best, self.metric):     # train's own rule for its best epoch
            self.best = value
        self.trial.set_user_attr("epochs_run", self.step)
        if self.fold is not None:
            self.fold_epochs[str(self.fold)] = self.fold_epochs.get(str(self.fold), 0) + 1
            self.trial.set_user_attr("fold_epochs", dict(self.fold_epochs))
        # after a run's last epoch pruning saves nothing: the trial completes and its value counts in the study
        if epoch != self.final_epoch and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {self.step}: {self.column} {value:.4f}"
                                     + self._best_apart(value))
        if self.deadline is not None and time.time() > self.deadline:
            raise _TimeUp(f"stopped after epoch {self.step}: the study's --timeout was reached")


    def _best_apart(self, value: float) -> str:
        """A pruned trial's value is Optuna's, its last reported epoch's (trials.csv's value, report.html's), while
        its run folder's best epoch (what `imgcls runs` and the trial's report show) may be another: named in its
        message where it differs, so the two numbers are not read as a contradiction."""
        if self.best is None or self.best == value:
            return ""
        from imgcls.runs_config import COLUMNS
        # imgcls runs lists the best epoch and its val macro-F1 / accuracy, but no val loss
        where = (f"fold_{self.fold}'s best epoch so far" if self.fold is not None else
                 "its run's best epoch, imgcls runs'" if self.column in COLUMNS else
                 f"its run's best epoch, imgcls runs' best_epoch (which lists no {BEST_BY[self.metric].label})")
        return f" (Optuna's value of a pruned trial is its last epoch's; {where}: {self.column} {self.best:.4f})"


def _run_folders(run_dir: Path) -> list[Path]:
    """The folders with a metrics.csv: the run, or its folds (its planned ones, rundir.set_fold_dirs: a fold_2
    copied into a 2-fold trial is none of them)."""
    from imgcls.train.rundir import set_fold_dirs
    folds = [p for p in set_fold_dirs(run_dir)[0] if (p / METRICS_CSV).is_file()]
    return folds or [run_dir]


# the fix a malformed metrics.csv of a trial names (not a run's "train the run again": tune trains no trial again)
TRIAL_FILE_FIX = "imgcls train wrote it as the trial ran: the trial counts as failed"


def diverged(run_dir: Path) -> bool:
    """Whether a trial's (or a fold's) saved validation predictions hold NaN probabilities: its loss diverged, and
    its macro-F1 / accuracy are of argmax's first class, no objective (`imgcls runs` lists it as diverged)."""
    from imgcls.run_names import VAL_PREDICTIONS
    from imgcls.train.rundir import nan_probability_rows, read_validation
    return any((d / VAL_PREDICTIONS).is_file() and nan_probability_rows(read_validation(d / VAL_PREDICTIONS))
               for d in _run_folders(run_dir))


def trial_value(run_dir: Path, metric: str) -> float:
    """The objective of a finished run whose loss did not diverge (the caller asks `diverged` first: a diverged
    run's objective is NaN): the best epoch's metric (mean over the folds of a k-fold run). Each metrics.csv is read
    by rundir.read_run_csv: a malformed one is its one line (a UserError), which fails the trial (the trial's own
    output: never the first-trial stop of _Objective, the study goes on)."""
    from imgcls.train.rundir import EPOCH_METRICS, read_run_csv
    column, direction = BEST_BY[metric].column, BEST_BY[metric].direction
    values = []
    for d in _run_folders(run_dir):
        # empty cells NaN, as pandas reads them (a column an epoch has no value in: compile_seconds), not ''
        m = read_run_csv(d / METRICS_CSV, EPOCH_METRICS, fix=TRIAL_FILE_FIX, keep_default_na=True)
        values.append(float(m[column].max() if direction == "maximize" else m[column].min()))
    return float(sum(values) / len(values))


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


RERUN_OF = "rerun_of"       # user attr of a trial that runs the values of an interrupted trial again: its number
# user attr: the pid namespace of a trial's process (_pid_namespace), beside its "host:pid": containers of one machine
# may share its host name (docker --network host), not its process ids
PID_NAMESPACE = "pid_namespace"


def _pid_namespace() -> str:
    """This process's pid namespace ('pid:[4026531836]'; '' where /proc does not say)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _interrupted(t) -> bool:
    """A trial Ctrl-C (or SIGTERM) stopped: failed, through no fault of its values. It does not count among --trials,
    and the study, resumed, runs its values again (_requeue_interrupted): resuming neither loses nor repeats a trial."""
    from optuna.trial import TrialState
    return t.state == TrialState.FAIL and t.user_attrs.get("message") in (INTERRUPTED, INTERRUPTED_BY_SIGTERM)


def _fail_killed_trials(study) -> None:
    """A running trial of this machine whose process is gone (kill -9, the OOM killer) is failed now, with
    report.KILLED as its message, not left 'running' in trials.csv until Optuna's heartbeat check fails it minutes
    later. A trial of another machine, or of another pid namespace (a container sharing this host name), is left to
    that check: its process cannot be looked at from here. One failed since it was read (two tunes of this machine
    opening the study at once) is left as the other failed it."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    from imgcls.tune.report import KILLED
    host, namespace = socket.gethostname(), _pid_namespace()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        where, _, pid = str(t.user_attrs.get("process", "")).rpartition(":")
        if where != host or not pid.isdigit() or int(pid) == os.getpid() or \
                t.user_attrs.get(PID_NAMESPACE, namespace) != namespace:     # none: a trial of an earlier imgcls
            continue
        try:
            os.kill(int(pid), 0)
            continue                    # alive (another tune of this machine)
        except PermissionError:
            continue                    # alive, another user's
        except ProcessLookupError:
            pass
        try:
            study._storage.set_trial_user_attr(t._trial_id, "message", KILLED)
            study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            pass                        # failed since it was read: by another tune opening the study at once


def _requeue_interrupted(study) -> None:
    """The values of every interrupted trial that no trial runs again yet (none, waiting or run, has its number as
    RERUN_OF) are queued (Optuna's enqueue_trial), so the resumed study's next trials score them first."""
    trials = study.get_trials(deepcopy=False)
    taken = {t.user_attrs.get(RERUN_OF) for t in trials}
    for t in trials:
        if _interrupted(t) and t.number not in taken:
            study.enqueue_trial(t.params, user_attrs={RERUN_OF: t.number})


class _Objective:
    def __init__(self, cfg: TuneConfig, space, deadline: float | None, callbacks: list, cap: int | None = None,
                 named: str | None = None):
        self.cfg, self.space, self.deadline, self.callbacks, self.cap = cfg, space, deadline, callbacks, cap
        self.named = named          # the data as the user named it (_check_up_front): the trials' lines say it so
        self.process = f"{socket.gethostname()}:{os.getpid()}"
        self.started = 0
        self.ran = 0                # trials of this process that completed or were pruned
        self.failures: list[tuple[int, Exception]] = []     # trials of this process that raised (not --timeout)
        self.fatal: UserError | None = None

    def __call__(self, trial) -> float:
        from imgcls.train import run_train
        from imgcls.tune.space import trial_options
        params = self.space.suggest(trial, self.cfg.train)
        d = trial_options(self.cfg.train, params)
        run_dir = trial_dir(self.cfg.study_dir(), trial.number)
        d.update(out=str(self.cfg.study_dir()), name=run_dir.name)
        trial.set_user_attr("config", d)           # best_config.yaml is the best trial's, whichever process ran it
        trial.set_user_attr("run_dir", str(run_dir))
        # where its pid means this process: set first, so no tune reads the pid without it (_fail_killed_trials)
        trial.set_user_attr(PID_NAMESPACE, _pid_namespace())
        trial.set_user_attr("process", self.process)
        from imgcls.tune.report import SEARCH_USED
        trial.set_user_attr(SEARCH_USED, f"{self.cfg.sampler} / {self.cfg.pruner}")     # the report's counts
        self.started += 1
        from imgcls.console import info
        from imgcls.tune.report import format_params
        rerun = trial.user_attrs.get(RERUN_OF)
        notes = []
        trials = trial.study.get_trials(deepcopy=False) if self.cap or rerun is not None else []
        if self.cap:                # its place among the trials --trials counts (not the interrupted ones)
            place = sum(1 for t in trials if t.number < trial.number and not _interrupted(t)) + 1
            notes.append(f"{place} of {self.cap}")
        if rerun is not None:
            by = "SIGTERM" if any(t.number == rerun and t.user_attrs.get("message") == INTERRUPTED_BY_SIGTERM
                                  for t in trials) else "Ctrl-C"
            notes.append(f"trial {rerun}'s values again, {by} stopped it")
        info(f"trial {trial.number}" + (f" ({'; '.join(notes)})" if notes else "")
             + (f": {format_params(params)}" if params else ""))
        column = BEST_BY[self.cfg.metric].column
        from imgcls.console import interrupt_said_outside
        _take_empty_folder(run_dir)
        trained = False
        try:
            with interrupt_said_outside():     # Ctrl-C: tune's line names how to resume the study, not the trial
                # figures only with --trial-plots (Ultralytics' tuner trains its trials with plots=False too); the
                # trial's "config" (best_config.yaml) keeps the fixed --plots, for the run re-trained from it
                # the data as named, which run_train's lines say as train's (its config.yaml records it anchored)
                run_train(TrainConfig.from_dict({**d, "src": self.named or d["src"],
                                                 "plots": d["plots"] and self.cfg.trial_plots}),
                          track_group=self.cfg.study, searched=self.space.drawn(), study=self.cfg,
                          callbacks=[*self.callbacks, TrialReporter(trial, self.cfg.metric, self.deadline)])
            trained = True
            nan_loss = diverged(run_dir)    # its metrics are argmax's first class: no objective
            value = float("nan") if nan_loss else trial_value(run_dir, self.cfg.metric)
            if not math.isfinite(value):    # Optuna fails the trial: said so, not read as killed (report.killed)
                trial.set_user_attr("message", "its loss diverged (NaN): no objective value; lower the --space's "
                                    "lr" if nan_loss else f"its {column} is {value}: no objective value")
            self.ran += 1
            return value
        except KeyboardInterrupt as e:
            from imgcls.process import Terminated
            trial.set_user_attr("message", INTERRUPTED_BY_SIGTERM if isinstance(e, Terminated) else INTERRUPTED)
            raise
        except Exception as e:
            if is_pruning(e):
                trial.set_user_attr("message", str(e))
                self.ran += 1
                raise
            # the study's own stop says what it is; an error is named by its type
            trial.set_user_attr("message", str(e) if isinstance(e, _TimeUp) else _one_line(e))
            if not run_dir.exists():            # failed before train made it: trials.csv points at no folder
                trial.set_user_attr("run_dir", "")
            if not isinstance(e, _TimeUp):
                self.failures.append((trial.number, e))
            if isinstance(e, UserError) and not trained and self.started == 1 and not _n_complete(trial.study):
                # the first trial of this process, in a study with no success yet: the fixed options are at fault
                # (data, model, folds), so every trial would fail the same way; the study stops with this error.
                # Not a trial whose train ran and whose own output is at fault (a malformed metrics.csv): that
                # trial failed, as a trial does, and the study goes on
                self.fatal = e
            raise


def _take_empty_folder(run_dir: Path) -> None:
    """An empty folder of a trial's name (made by the user, or left by a study whose record was lost: the storage
    never gives a trial the number of one it knows) holds nothing of anyone's: it is removed, so the trial's train
    makes its run folder afresh (its exclusive mkdir) instead of failing on 'already exists'. rmdir removes only an
    empty folder, at once: one holding anything by then, a file or a link is left to train's refusal."""
    try:
        run_dir.rmdir()
    except OSError:         # none there (the usual case), or not an empty folder
        pass


def _n_complete(study) -> int:
    from optuna.trial import TrialState
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


# ---------------------------------------------------------------------------------------------------------------
# The search
# ---------------------------------------------------------------------------------------------------------------

def _check_up_front(cfg: TuneConfig, recorded: dict):
    """Everything a user can get wrong, before the first trial: returns (space, storage URL, rows_digest, the data as
    the user named it: the lines on it say it so, as train's do, each trial's too). `recorded`: cfg.config's values
    (run_tune's one read of it)."""
    from imgcls.console import sh
    from imgcls.fsutil import check_writable
    from imgcls.pipeline import default_input
    from imgcls.tune.space import load_space
    cfg.validate()
    from imgcls.device import check_device_present
    check_device_present(cfg.train.device)     # --device cuda without one: refused before the study, not in trial 0
    cfg.train.metric = cfg.metric       # each trial's best epoch (best.pt, its run's score) is the objective's
    from imgcls.outputs import refuse_other_output, refuse_users_files
    study_dir = cfg.study_dir()
    refuse_other_output(study_dir, "tune", flag="--study",     # a run's folder named as the study's
                        instead="its folder is OUT/STUDY; or another --out")
    # its files over a user's own of those names in a folder no tune wrote (before the storage is opened: Optuna
    # writes its tables into a study.db there)
    files = (TRIALS_CSV, BEST_CONFIG, REPORT_HTML) + (() if cfg.storage else (STUDY_DB,))
    refuse_users_files(study_dir, "tune", [study_dir / n for n in files], flag="--study")
    _refuse_users_trial_folders(study_dir)
    _check_storage_file(cfg.storage)
    _refuse_storage_of_a_moved_study(cfg)
    prune_given = _prune_options_given(cfg)      # before a resumed study's record fills in those left unset
    # first: a resumed study's data, left unset, is the study's own (so is its search space, returned)
    recorded_space = _study_options(cfg, storage_url(cfg))
    _refuse_idle_prune_options(cfg, prune_given)     # after the resumed study's pruner is taken
    if cfg.train.src is None:
        # train's input: the furthest pipeline stage, announced
        cfg.train.src = str(default_input("train", command="tune", also=f"--study {sh(cfg.study)}"))
    elif not Path(cfg.train.src).exists():
        raise UserError(f"data {cfg.train.src} does not exist; pass a dataset folder or manifest.csv")
    from imgcls.track import check_trackers, installed_trackers
    installed_trackers(cfg.train.tracker)    # a package not installed, before load_space's timm import
    named = cfg.train.src       # as typed (the default input, a resumed study's record): what the data's lines say
    cfg.train.anchor_paths()    # each trial's config.yaml and best_config.yaml name the data from any folder
    if recorded_space is not None:
        from imgcls.tune.space import parse_space
        space = parse_space(recorded_space, cfg.train, typed=cfg.typed or (),
                            source=f"the search space study '{cfg.study}' was started with")
    else:
        space = load_space(cfg.space, cfg.train, cfg.typed or ())    # checks the fixed train options too, with its keys
    _say_config_replaced(cfg, space, recorded)
    _refuse_loss_of_other_losses(cfg, space)
    check_writable(cfg.study_dir())
    _check_weights(cfg.train, space)
    table, usable = _check_data(cfg.train, space, cfg.study_dir(), cfg, named)
    # not each trial's error: a resumed study would record every one failed; the local store named in the study
    check_trackers(cfg.train.tracker, cfg.train.tracking_uri, store_in=cfg.study_dir())
    if cfg.sampler == "grid":
        space.grid()
    if usable is not None:
        # the data's warnings (a leak between the split's sides, a class of one image, ...) said once every refusal
        # is past, before the study's line, not under trial 0's; the trials, in run_tune's said_once, do not say
        # them again (a trial whose scan left other rows says its own). A searched --target's: in its trials
        from imgcls.train.run import say_data_notes
        say_data_notes(cfg.train, usable, named, study=cfg, searched=space.drawn())
    return space, storage_url(cfg), rows_digest(cfg.train, table), named


def _check_storage_file(storage: str | None) -> None:
    """A --storage that is a file here (a journal file, a sqlite:/// database) where a folder is, or under a file, or
    in a folder that cannot be written: one line before the data is checked and Optuna opens it (an
    IsADirectoryError / FileExistsError traceback, or sqlite's 'unable to open database file')."""
    if not storage:
        return
    path = Path(storage.removeprefix("journal:")) if "://" not in storage else sqlite_file(storage)
    if path is None:
        return
    from imgcls.fsutil import check_writable
    check_writable(path, "file", flag="--storage", example="study.db" if "://" in storage else "study.journal")
    if "://" not in storage and path.is_file():
        _check_journal(path, storage)


def _refuse_storage_of_a_moved_study(cfg: TuneConfig) -> None:
    """A --storage file in another study folder whose trials were trained into this --study's folder: the study's
    folder renamed (`mv OUT/s1 OUT/s1b; tune --study s1 --storage sqlite:///OUT/s1b/study.db`), which resumed the
    study with its next trials in a new OUT/s1, the study split across two folders. One line before anything is
    written, naming the folder that holds the storage and its trials, and the fix (a study keeps its first name)."""
    if not cfg.storage:
        return
    path = Path(cfg.storage.removeprefix("journal:")) if "://" not in cfg.storage else sqlite_file(cfg.storage)
    if path is None or not path.is_file():
        return
    held_in, study_dir = path.resolve().parent, cfg.study_dir().resolve()
    if held_in == study_dir:
        return
    try:
        trials = sorted(p for p in held_in.iterdir() if TRIAL_DIR.fullmatch(p.name) and p.is_dir() and _trial_run(p))
    except OSError:
        return
    from imgcls.outputs import read_yaml
    from imgcls.run_names import names_folder
    ours = [p.name for p in trials if names_folder((read_yaml(p / RUN_CONFIG) or {}).get("out"), study_dir)]
    if ours:
        raise UserError(f"--storage {cfg.storage} is in the study folder {held_in}, which holds the trials "
                        f"{shown(ours)} of --study {cfg.study}, trained into {cfg.study_dir()} (the folder renamed "
                        f"since): its next trials would go into {cfg.study_dir()}, the study split across two "
                        f"folders; rename {held_in} back to {cfg.study_dir()} and resume it there (a study keeps "
                        f"the name it was started with)")


def _check_journal(path: Path, storage: str) -> None:
    """An existing file given as a journal --storage must be one: Optuna appends its JSON lines to any file (a
    SQLite study.db given without sqlite:///, whose last line has no newline, was written into, then failed to
    read with a UnicodeDecodeError traceback). Its first line is read: one JSON object, or the file is refused."""
    import json
    with open(path, "rb") as fh:
        first = fh.readline(1 << 20)
    if not first.strip():
        return
    try:
        ok = isinstance(json.loads(first), dict)
    except ValueError:      # not JSON, or not UTF-8
        ok = False
    if not ok:
        raise UserError(f"--storage {storage} is not an Optuna journal file" + (
            f" but a SQLite database: give it as --storage sqlite:///{path}" if first.startswith(b"SQLite format 3\x00")
            else "; give a journal file written by imgcls tune, a new file path, or an RDB URL (sqlite:///FILE, "
                 "postgresql://...)"))


MEDIAN_PRUNER_OPTIONS = ("prune_startup", "prune_warmup")


def _prune_options_given(cfg: TuneConfig) -> list[str]:
    """The median pruner's options this command gives: typed on the command line (even at their defaults), or a
    Python caller's away from their defaults (as _trials_given reads --trials), read before a resumed study's record
    sets those left unset."""
    from imgcls.options import set_options
    away = set_options(cfg, MEDIAN_PRUNER_OPTIONS)
    return [k for k in MEDIAN_PRUNER_OPTIONS if k in cfg.search_typed or k in away]


def _refuse_idle_prune_options(cfg: TuneConfig, given: list[str]) -> None:
    """--prune-startup / --prune-warmup are the median pruner's: `given` (_prune_options_given: typed, or a Python
    caller's prune_startup= / prune_warmup=) with another pruner (this command's, or the resumed study's) they would
    do nothing, refused in one line as any option that would. A resumed study's recorded values are not given:
    never refused, so every recorded study still resumes."""
    if cfg.pruner == "median":
        return
    idle = [k for k in MEDIAN_PRUNER_OPTIONS if k in given]
    if idle:
        names = " and ".join("--" + k.replace("_", "-") for k in idle)
        one = len(idle) == 1
        raise UserError(f"{names} {'acts' if one else 'act'} only with --pruner median, not {cfg.pruner}: drop "
                        f"{'it' if one else 'them'}, or use --pruner median (Python: "
                        f"{', '.join(f'{k}=' for k in idle)}, pruner=)")


def _trial_run(p: Path) -> bool:
    """A trial_NNNN folder a trial's train made: a run's folder (earlier_output: train's own files, a trial --keep
    stripped included), or a trial stopped (Ctrl-C, SIGTERM) while its images decoded: train's config.yaml and
    plan.json, no train.log yet, nothing there but train's own files."""
    from imgcls.outputs import earlier_output
    from imgcls.train.rundir import run_files
    if earlier_output(p, "train"):
        return True
    own = set(run_files(p))
    return (p / RUN_CONFIG).is_file() and all(f in own for f in p.iterdir())


def _refuse_orphan_trials(cfg: TuneConfig, url: str, held: tuple[str, ...] = ()) -> None:
    """A new study (none of its name in the storage) in a study folder that holds trials' run folders: they are
    another study's of that name, one started with another --storage (its trials.csv, rewritten by this study,
    would lose their record) or whose study.db was removed. Its trial 0 would fail on trial_0000 (a finished run
    is never trained over), with train's advice about --name, which tune has not: refused in one line before
    anything is written, naming the way to resume it (the storage it was started with) and to start afresh.
    `held`: the studies the storage holds; the study folder's own study.db holding another's is a study folder
    renamed (a study keeps its name: it resumes under its first one). With --storage, what was found is said: the
    folder's own study.db (_own_study_names) holding this study (started without --storage) or another (renamed),
    else the studies the --storage holds (the folder renamed under it, or started with another --storage)."""
    study_dir = cfg.study_dir()
    try:
        found = sorted(p.name for p in study_dir.iterdir()
                       if TRIAL_DIR.fullmatch(p.name) and not p.is_symlink() and p.is_dir() and _trial_run(p))
    except OSError:       # no study folder yet (or one check_writable names)
        return
    if not found:
        return
    where = "--storage" if cfg.storage else "its default storage"
    renamed = ("a study keeps the name it was started with, so a study folder renamed is resumed under its first "
               "name (rename the folder back")
    own = _own_study_names(cfg, url)
    if own and cfg.study in own:
        why = (f"the folder's own {STUDY_DB} (the default storage) holds '{cfg.study}': the study was started "
               f"without --storage; drop --storage to resume it")
    elif own:
        why = (f"the folder's own {STUDY_DB} (the default storage) holds {shown([repr(n) for n in own])}: "
               f"{renamed}, without --storage)")
    elif held and not cfg.storage:
        why = f"it holds {shown([repr(n) for n in held])}: {renamed})"
    elif held:
        why = (f"it holds {shown([repr(n) for n in held])}: if the folder is one of these renamed, {renamed}, "
               f"with this --storage); else the study was started with another --storage (its report.html's "
               f"summary names it; give that --storage to resume it)")
    else:
        why = ("it was started with another --storage (its report.html's summary names it; give that --storage to "
               "resume it)" + ("" if cfg.storage else " or its study.db was removed"))
    raise UserError(f"--study {study_dir} holds the trials' run folders of a study '{cfg.study}' ({shown(found)}) "
                    f"that {url} ({where}) does not hold: {why}; for a new study {choose_another('--study')} or "
                    f"--out")


def _own_study_names(cfg: TuneConfig, url: str) -> tuple[str, ...] | None:
    """The studies the study folder's own study.db (the default storage) holds, where a --storage other than it is
    given: a study started without --storage and resumed with one. None: no --storage, no such file, the --storage
    itself, or a file that is no study database (read as before: started with another --storage)."""
    db = cfg.study_dir() / STUDY_DB
    given = sqlite_file(url)
    if not cfg.storage or not db.is_file() or (given is not None and given.resolve() == db.resolve()):
        return None
    import optuna
    try:
        return tuple(optuna.get_all_study_names(f"sqlite:///{db.resolve()}"))
    except Exception:       # not a database Optuna reads (sqlalchemy's errors): nothing found there
        return None


def _refuse_users_trial_folders(study_dir: Path) -> None:
    """A trial_NNNN in the study folder that is not a run's folder (earlier_output: train's own files, a trial
    --keep stripped included) nor empty is the user's: the trial of that number would fail on it after the study
    opened (train's advice, --name / --exist-ok, no fix here), --keep would delete its *.pt, and a study given
    --exist-ok would train into it. Refused in one line before the study is opened, as refuse_users_files refuses
    the study's own files; a run folder there is the study's (or train refuses it, naming it, as ever), and so is one
    holding train's own files alone (a trial stopped before its train.log began). An empty one
    passes: a trial killed as its train made the folder leaves one (its number is never drawn again), and the trial
    of a number still to come takes one over (_take_empty_folder)."""
    from imgcls.outputs import not_own_output
    try:
        found = sorted(p for p in study_dir.iterdir() if TRIAL_DIR.fullmatch(p.name))
    except OSError:       # no study folder yet (or one check_writable names)
        return

    def users(p: Path) -> bool:
        if p.is_symlink() or not p.is_dir():
            return True
        try:
            return not _trial_run(p) and any(p.iterdir())
        except OSError:       # a folder it may not list: not one tune made
            return True
    theirs = [p.name for p in found if users(p)]
    if not theirs:
        return
    one = len(theirs) == 1
    raise UserError(f"--study {study_dir}: {shown(theirs)} {'is' if one else 'are'} not a trial's run folder ("
                    f"{not_own_output('train')}); imgcls tune would train the trial of that number into "
                    f"{'it' if one else 'them'}: {choose_another('--study')}, or move {'it' if one else 'them'} away "
                    f"first")


def _say_config_replaced(cfg: TuneConfig, space, recorded: dict) -> None:
    """--config's values of the options the space varies are replaced by each trial's draw (by design): one line
    naming them and their values, so `tune --config best_config.yaml` does not look like it starts from them.
    `recorded`: cfg.config's values, {} without one (read by TrainConfig.load too: a typed flag the space varies is
    refused)."""
    if not cfg.config:
        return
    from imgcls.console import info
    names = [n for n in space.names() if n in recorded]
    if names:
        values = ", ".join(f"{n} {recorded[n]}" for n in names)
        info(f"the space varies {', '.join(names)}: {Path(cfg.config).name}'s {values} "
             f"{'is' if len(names) == 1 else 'are'} replaced by each trial's draw; a --space without "
             f"{'it' if len(names) == 1 else 'them'} keeps the config's")


# the train options that change what a validation loss measures (the criterion, its class weights, the heads' weights
# in its sum): trials drawing other values of them report val losses of other functions
LOSS_FUNCTION = ("loss", "smoothing", "focal_gamma", "class_weights", "head_weights")


def _refuse_loss_of_other_losses(cfg: TuneConfig, space) -> None:
    """--metric loss over a space that varies the loss function: each trial's val_loss is its own training loss's
    (a focal loss reads lower than cross-entropy for the same predictions), so the study would rank the trials by
    which function reads lowest, its pruner compare them alike. One line, before the study opens."""
    varied = [k for k in space.names() if k in LOSS_FUNCTION]
    if cfg.metric != "loss" or not varied:
        return
    raise UserError(f"--metric loss ranks the trials by their validation loss, which each computes with its own "
                    f"training loss, and the space varies {', '.join(varied)}: a focal or class-weighted loss "
                    f"reads lower than cross-entropy for the same predictions, so the best trial would be the one "
                    f"of the lowest-reading loss, not the best model; use "
                    + python_too("--metric macro_f1", "metric='macro_f1'") + " or accuracy (for a study started "
                    f"with --metric loss: under {ANOTHER_STUDY}), or a --space without {', '.join(varied)}")


def _check_weights(base: TrainConfig, space) -> None:
    """The starting weights of every model the search can pick (the fixed --model, or each of a `model` space key,
    with each `pretrained` value the space gives), resolved as each trial's train would (--init-from RUN: its
    checkpoint of that model; else file > package > cache > hub): a model without weights here is one line before
    the study is opened, not the first trial's error. Nothing is loaded or downloaded."""
    from imgcls.weights import resolve_weights
    keys = {p.name: p for p in space.params}
    models = list(keys["model"].values) if "model" in keys else [base.model]
    pretrained = list(keys["pretrained"].values) if "pretrained" in keys else [base.pretrained]
    for m in models:
        for pre in pretrained:
            try:
                if base.init_from:
                    from imgcls.train.rundir import init_checkpoint
                    init_checkpoint(base.init_from, m)
                else:
                    resolve_weights(m, pre, base.weights)
            except UserError as e:
                which = [f"space key '{k}' ({option_text(v)})"
                         for k, v in (("model", m), ("pretrained", pre)) if k in keys]
                if not which:
                    raise
                raise type(e)(f"{' with '.join(which)}: {e}") from None


def _check_data(base: TrainConfig, space, study_dir: Path, study=None,
                src: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """train's refusals of the data table (train.run.check_data: no labels, a --target that is no column, every
    file missing, --folds it cannot take, ...) with the fixed options, for each --target the space can draw, and of
    an output folder under the data's folders (the study's), made once before the study opens: one line, not the
    first trial's error (in a resumed study each trial failed on it and the next ran). Returns the table as read
    (no image scanned; check_data's checks leave it as it is), which rows_digest digests, and its usable rows (None
    where the space draws --target: each target's rows are its own), whose warnings _check_up_front says. A
    refusal of one target the space draws names that space key; one every target has alike is said as train's.
    `study`: the TuneConfig, whose options a fix's command names (`imgcls tune SPLITS --study S-split --space ...`;
    None: train's).
    `src`: the data as the user named it, which the lines say (base.src, anchored, when not known)."""
    import dataclasses

    from imgcls import manifest as mf
    from imgcls.console import quiet_for
    from imgcls.fsutil import check_output_location
    from imgcls.train.run import check_data
    keys = {p.name: p for p in space.params}
    with quiet_for(True):
        df = mf.load(base.src, mf.LayoutOptions(), scan=False, announce=False, max_pixels=base.max_pixels)
    check_output_location(study_dir, *mf.input_folders(df))
    targets = keys["target"].candidates() if "target" in keys else [base.target]
    refused = {}
    for target in targets:
        try:
            usable = check_data(dataclasses.replace(base, target=target), df, scanned=False, src=src,
                                study=study, searched=space.drawn())[0]
        except UserError as e:
            if "target" not in keys:
                raise
            refused[target] = e
    if refused:
        target, e = next(iter(refused.items()))
        # every target the space draws refused alike (a side with no image, no fold column): the data's or the
        # fixed options' fault, said as train says it, not the space key's; a space of one target is its cause
        if len(refused) == len(set(targets)) > 1 and len({str(x) for x in refused.values()}) == 1:
            raise e
        raise type(e)(f"space key 'target' ({option_text(target)}): {e}") from None
    return df, (usable if "target" not in keys else None)


def _base_config(attrs: dict) -> dict | None:
    """A study's recorded fixed train options (its "base_config"; None where it has none), a null a Python caller's
    None left there read as what it meant (options.recorded_nulls: max_pixels=None, no limit)."""
    base = attrs.get("base_config")
    return recorded_nulls(TrainConfig, base) if isinstance(base, dict) else None


def _study_options(cfg: TuneConfig, url: str) -> dict | None:
    """A study that exists resumes with the fixed train options it was started with: each one this command leaves
    unset (not typed, at TrainConfig's default) takes the study's recorded value, as `train --resume` takes its
    config.yaml's, so `imgcls tune --study NAME --trials 30` resumes NAME; a typed (or --config) value is compared
    with the study's by open_study, and refused when it differs. What may differ between processes (data path,
    workers, device, cache, trackers) is this command's; no SRC given, the study's data where it is here (not the
    working folder's default input, whose rows would score the new trials on other images). No --space given, the
    study's recorded search space is returned (said in one line where it is not the shipped one), which this
    command searches; else None (a --space typed is compared with the study's by open_study)."""
    from imgcls.options import as_typed
    from imgcls.outputs import yaml_load
    from imgcls.train.rundir import RESUME_MAY_CHANGE
    from imgcls.tune.space import default_space_text
    if "://" in url:
        db = sqlite_file(url)
        if url.startswith("sqlite:") and (db is None or not db.is_file()):
            return _refuse_orphan_trials(cfg, url)          # no database yet (or in memory): a new study
    elif not Path(url.removeprefix("journal:")).is_file():
        return _refuse_orphan_trials(cfg, url)
    from imgcls.console import loading
    with loading("optuna"):     # only for a study that may exist: a new one's data and options are checked without it
        import optuna
    try:
        # under the opening lock: the database may be one another process is creating now (open_study), whose
        # tables this one's storage would create at the same time (a UNIQUE constraint failed)
        with _opening_lock(url):
            storage = open_storage(url)
            attrs = optuna.load_study(study_name=cfg.study, storage=storage).user_attrs
    except KeyError:                    # no study of that name in the storage
        return _refuse_orphan_trials(cfg, url, tuple(optuna.get_all_study_names(storage)))
    from imgcls.console import info
    space = attrs.get("space") if cfg.space is None else None
    if not isinstance(space, dict) or not space:
        space = None
    elif space != yaml_load(default_space_text()):
        info(f"study '{cfg.study}' resumes with the search space it was started with: {', '.join(space)}")
    _resume_search_options(cfg, attrs.get("search"))
    _resume_metric(cfg, attrs.get("metric"))
    _resume_trials(cfg, attrs)
    base = _base_config(attrs)
    if base is None:
        return space
    if cfg.train.src is None and base.get("src"):
        # not the working folder's default input: the study's trials are scored on the study's rows
        if not Path(base["src"]).exists():      # moved or deleted: the default input would be other images
            raise UserError(f"study '{cfg.study}' was started on the data {base['src']}, which is not there: give "
                            f"that data (or a copy of it) as SRC; the working folder's default input would train and "
                            f"score its new trials on other images than its earlier ones")
        cfg.train.src = str(base["src"])
        info(f"study '{cfg.study}' resumes on the data it was started with: {cfg.train.src} (to train "
             f"on another copy of that data, give its folder as SRC)")
    now, default = cfg.train.to_dict(), TrainConfig().to_dict()
    typed = cfg.typed or ()
    taken = {k: base[k] for k, v in now.items() if k in base and k not in RESUME_MAY_CHANGE and k not in typed
             and k not in TrainConfig.RECORDS and k != "metric" and v == default.get(k) and base[k] != v}
    if taken:
        cfg.train = TrainConfig.from_dict({**now, **taken})
        info(f"study '{cfg.study}' resumes with the fixed train options it was started with: "
             f"{as_typed(cfg.train, taken)}")
    return space


def _resume_search_options(cfg: TuneConfig, recorded) -> None:
    """A resumed study's sampler and pruner (RESUMED_SEARCH) are the ones it was started with (its "search" record)
    where this command leaves them unset (not typed, at their default), said in one line, as its fixed train options
    are: `--study NAME` alone resumes a `--sampler random --pruner none` study with those, not TPE and the median
    pruner. One typed that differs from the record is this command's (Optuna draws and prunes each process's trials
    with its own), said in one line. A study started before the record (none) keeps this command's."""
    if not isinstance(recorded, dict):
        return
    from imgcls.console import info
    from imgcls.options import as_typed, describe_changes
    default = TuneConfig()
    valid = {"sampler": SAMPLERS, "pruner": PRUNERS}
    taken, other = [], []
    for k in RESUMED_SEARCH:
        if k not in recorded or recorded[k] == getattr(cfg, k) or recorded[k] not in valid.get(k, (recorded[k],)):
            continue
        if k not in cfg.search_typed and getattr(cfg, k) == getattr(default, k):
            setattr(cfg, k, recorded[k])
            taken.append(k)
        else:
            other.append((k, recorded[k], getattr(cfg, k)))
    if taken:
        info(f"study '{cfg.study}' resumes with the search options it was started with: {as_typed(cfg, taken)}")
    if other:
        info(f"study '{cfg.study}' was started with other search options ({describe_changes(TuneConfig, other)}): "
             f"this command's trials are drawn and pruned with the ones given")


def _resume_metric(cfg: TuneConfig, recorded) -> None:
    """A resumed study's --metric is the one it was started with where this command leaves it unset (not typed, at
    its default), said in one line, as its sampler and pruner are: `--study NAME` alone resumes a `--metric accuracy`
    study, which open_study refused as another metric. One typed that differs is refused there."""
    if recorded not in BEST_BY or recorded == cfg.metric or "metric" in cfg.search_typed \
            or cfg.metric != TuneConfig.metric:
        return
    cfg.metric = cfg.train.metric = recorded      # every trial's best epoch is the objective's (_check_up_front)
    from imgcls.console import info
    info(f"study '{cfg.study}' resumes with the --metric it was started with: {recorded}")


def _trials_given(cfg: TuneConfig) -> bool:
    """--trials typed, or (a Python caller's) away from its default: this command's total, not the study's."""
    return "trials" in cfg.search_typed or cfg.trials != TuneConfig().trials


def _resume_trials(cfg: TuneConfig, attrs: dict) -> None:
    """A resumed study runs up to the trials it was started with (its TRIALS_RECORD, the last --trials given),
    said in one line, where this command gives none: `--study NAME` alone, on a `--trials 50` study, stopped at
    --trials' default 20. A study started before the record keeps this command's."""
    if TRIALS_RECORD not in attrs or _trials_given(cfg) or attrs[TRIALS_RECORD] == cfg.trials:
        return
    total = attrs[TRIALS_RECORD]
    if total is not None and (not isinstance(total, int) or total < 1):
        return
    from imgcls.console import info
    cfg.trials = total
    info(f"study '{cfg.study}' resumes " + (f"up to the {total} trials it was started with" if total else
                                             "with no trial limit, as it was started")
         + f" ({python_too('--trials N', 'trials=N')} sets another total)")


def run_tune(cfg: TuneConfig, callbacks: list | None = None) -> Path:
    """Run (or resume, or join) the study; returns its folder <out>/<study>/, absolute (as run_train's run folder),
    holding trial_NNNN/ run folders, best_config.yaml, trials.csv and report.html. `callbacks`: train callbacks
    given to every trial's run_train (e.g. a tracker). Ctrl-C: the files are written for the trials so far, the
    `interrupted:` line says how to resume the study, then KeyboardInterrupt propagates. The caller's `cfg` (and its
    `train`) is left as given: the data and options the study resolves (the default input, a resumed study's own)
    go into a copy."""
    from imgcls.fsutil import check_file_name_encoding
    check_file_name_encoding()     # as every command: a non-ASCII name misread or left out
    import copy
    check_arguments("run_tune", required=("cfg",), cfg=(cfg, TuneConfig))
    check_arguments("TuneConfig", required=("train",), train=(cfg.train, TrainConfig))
    check_arguments("TrainConfig", src=(cfg.train.src, PATH, SRC_PATH))     # as run_train's: the trials' data
    check_callbacks("run_tune", callbacks)
    from imgcls.console import refuse_torchrun
    refuse_torchrun("imgcls tune")     # its why and fix (the command line refuses it too: cli.common.command)
    cfg = copy.deepcopy(cfg)
    # the --config file's values, read once here (the command line passes its path, as a Python caller does)
    recorded = TrainConfig.read_config(cfg.config) if cfg.config else {}
    if cfg.typed is None:
        cfg.typed = _set_by_the_caller(cfg, recorded)
    if cfg.config and not cfg.train.read_from(cfg.config):      # a train read from it: its options laid already
        _lay_over_the_config(cfg, recorded)
    _set_aside_the_configs_run_folder(cfg, recorded)
    from imgcls.console import said_once
    # train's lines said once for the study: the data's warnings, said by _check_data before the study opens, and
    # each trial's set-up lines (_search)
    with said_once():
        space, url, rows, named = _check_up_front(cfg, recorded)     # a user's error is said before optuna is imported
        import optuna
        study_dir = cfg.study_dir()
        from imgcls.fsutil import folders_to_make
        made = folders_to_make(study_dir)
        fresh = _new_study_folder(study_dir)
        study_dir.mkdir(parents=True, exist_ok=True)        # one that was there
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)   # tune prints its own line per trial
        try:
            return Path(os.path.abspath(_search(cfg, space, url, study_dir, callbacks, made, fresh, rows, named)))
        except KeyboardInterrupt:
            from imgcls.console import interrupted     # the study's line, as run_train says the run's
            interrupted(f"interrupted: {TRIALS_CSV} / {REPORT_HTML} written for the trials so far in {study_dir}; "
                        f"run the same command to resume")
            raise
        finally:
            optuna.logging.set_verbosity(verbosity)


def _lay_over_the_config(cfg: TuneConfig, recorded: dict) -> None:
    """cfg.train's own options laid over cfg.config's values (`recorded`: its mapping, run_tune's one read of it),
    as imgcls train lays its flags over its --config (TrainConfig.resolve): those typed (cfg.typed, even at their
    defaults) and every one set to other than its default (the data, a Python caller's; a train read from the file
    itself, TrainConfig.resolve(config=FILE), is not laid again: TrainConfig.read_from). The command line and a Python
    caller alike: TuneConfig(config=FILE, train=TrainConfig(lr=0.005)) is `imgcls tune --config FILE --lr 0.005`."""
    from imgcls.options import set_options
    given = dict.fromkeys([*cfg.typed, *set_options(cfg.train)])
    cfg.train = TrainConfig.resolve({n: getattr(cfg.train, n) for n in given}, config=cfg.config, written=recorded,
                                    validate=False)


def _set_aside_the_configs_run_folder(cfg: TuneConfig, recorded: dict) -> None:
    """The train's name / out / exist_ok that are cfg.config's own (a run's config.yaml records its folder, and
    _lay_over_the_config, or a caller's TrainConfig.resolve(config=FILE), takes them) go back to their defaults: each
    trial's folder is a new
    OUT/STUDY/trial_NNNN, and they are no caller's choice to refuse (TuneConfig.validate refuses one given).
    `imgcls tune --config RUN/config.yaml` and its Python form alike; run_tune's copy only. `recorded`:
    cfg.config's values, {} without one."""
    for name in RUN_FOLDER_OPTIONS:
        value = getattr(cfg.train, name)
        if value is not None and name in recorded and str(value) == str(recorded[name]):
            setattr(cfg.train, name, getattr(TrainConfig, name))


def _set_by_the_caller(cfg: TuneConfig, recorded: dict) -> frozenset:
    """A Python caller's typed train options (TuneConfig.typed None): those of cfg.train set to other than their
    defaults, as `imgcls tune`'s typed flags are (so train=TrainConfig(lr=0.005) under a space over lr is refused as
    --lr 0.005 is, not replaced by every draw), less the values cfg.config gives (a --config value is no flag: named
    as replaced) and the options tune sets itself (the data, train's name / out / exist_ok). Train's sampler, which
    no tune flag sets (tune's --sampler is Optuna's), is among them: set and varied by the space, it is refused as
    train's.
    `recorded`: cfg.config's values, {} without one."""
    from imgcls.options import cli_fields, set_options
    names = [n for n in cli_fields(TrainConfig) if n not in RUN_FOLDER_OPTIONS]
    return frozenset(n for n in set_options(cfg.train, names)
                     if not (n in recorded and getattr(cfg.train, n) == recorded[n]))


def _new_study_folder(study_dir: Path) -> bool:
    """Make the study folder where there is none, holding trials.csv (its header) from its first moment: made empty
    and the table written when the study had opened, it was a folder of no step's output until then, which
    `imgcls train --out OUT --name STUDY --exist-ok` took to train into (train's check_run_dir_free reads a tune
    study by its trials.csv or study.db: outputs.output_kind). The folder is filled as a hidden one beside it, then
    renamed into place (fsutil.rename_new: never over a folder made there meanwhile). True when this command made
    it; False where a folder was there, or one appeared meanwhile (another tune process's: it joins the study).
    The hidden folders of this study a killed tune left are removed first (_remove_stale_study_temps)."""
    _remove_stale_study_temps(study_dir)
    if os.path.lexists(study_dir):
        return False
    import shutil
    import tempfile

    import pandas as pd

    from imgcls.fsutil import process_umask, rename_new, write_table
    from imgcls.tune.report import trial_columns
    study_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{study_dir.name}.", suffix=".tmp", dir=study_dir.parent))
    try:
        write_table(pd.DataFrame(columns=trial_columns()), tmp / TRIALS_CSV)
        os.chmod(tmp, 0o777 & ~process_umask())       # mkdtemp makes it 0700: the mode mkdir gives
        rename_new(tmp, study_dir)
        return True
    except FileExistsError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)      # there unless renamed


def _remove_stale_study_temps(study_dir: Path) -> list[Path]:
    """Remove the hidden folders (.STUDY.XXXXXXXX.tmp beside the study folder) that a tune killed between making one
    and renaming it into place left in OUT: only this study's, untouched for fsutil.STALE_TEMP_SECONDS (another
    process's live one is younger), holding nothing but what _new_study_folder writes (trials.csv's header, or
    the temporary file of its write). Returns the folders removed."""
    import shutil

    from imgcls.fsutil import STALE_TEMP_SECONDS, is_temp_name
    pattern = re.compile(rf"\.{re.escape(study_dir.name)}\.[A-Za-z0-9_]{{8}}\.tmp")
    before = time.time() - STALE_TEMP_SECONDS
    removed = []
    try:
        candidates = [d for d in study_dir.parent.iterdir() if pattern.fullmatch(d.name)]
    except OSError:                 # no OUT yet, or one it may not list
        return removed
    for d in candidates:
        try:
            if d.is_symlink() or not d.is_dir() or d.stat().st_mtime >= before:
                continue
            names = os.listdir(d)
            if any(n != TRIALS_CSV and not (is_temp_name(n) and n.startswith(f".{TRIALS_CSV}.")) for n in names):
                continue
            if TRIALS_CSV in names and len((d / TRIALS_CSV).read_text(encoding="utf-8").strip().splitlines()) > 1:
                continue            # a table with rows: no folder _new_study_folder fills
        except (OSError, UnicodeDecodeError):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def _search(cfg: TuneConfig, space, url: str, study_dir: Path, callbacks: list | None,
            made: list[Path], fresh: bool, rows: dict | None = None, named: str | None = None) -> Path:
    from optuna.trial import TrialState

    from imgcls.console import info, said_once
    from imgcls.tune import report

    try:
        study, created = open_study(cfg, space, url, rows, named)
    except Exception:
        # refused (another --metric, --space or fixed options than the study in --storage has) or not opened: a
        # folder this command made, holding only its trials.csv header, is removed again, as _discard_new_study
        # removes it (left, it read as a study of no trials); one holding more (study.db) is a study's, and stays
        try:
            alone = fresh and os.listdir(study_dir) == [TRIALS_CSV]
        except OSError:
            alone = False
        if alone:
            _remove_made(study_dir, made, marked=True)
        raise
    _fail_killed_trials(study)      # not left "running" in trials.csv while nothing runs it
    # the folder is a tune study (outputs.output_kind: its trials.csv) before its first trial ends: with --storage
    # elsewhere it held neither trials.csv nor study.db until then, and trial 0 took itself for a plain run (its
    # report.html's --no-plots wording; `imgcls runs` listed it as a run). A folder this command made holds the
    # table's header from its start (_new_study_folder): written again, with the study's trials where it has any
    marked = fresh or not (study_dir / TRIALS_CSV).exists()
    if marked:
        report.write_tables(study, cfg, study_dir)
    t0 = time.time()
    timeout = cfg.timeout_seconds()
    deadline = t0 + timeout if timeout is not None else None
    cap = cfg.trials
    if cap is None and cfg.sampler == "grid":
        cap = math.prod(len(v) for v in space.grid().values())
    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)

    def n_counted() -> int:         # a trial Ctrl-C stopped is not counted: its values run again (_requeue_interrupted)
        return sum(1 for t in study.get_trials(deepcopy=False, states=counted) if not _interrupted(t))

    done_before = n_counted()
    info(f"study '{cfg.study}' ({'new' if created else f'{done_before} trials so far'}) in {url}; "
         f"{BEST_BY[cfg.metric].label}, {cfg.sampler} sampler, {cfg.pruner} pruner"
         + (f", up to {cap} trials" if cap else "") + (f", {cfg.timeout} budget" if cfg.timeout else ""))
    if cfg.sampler == "grid":
        combos, runs = math.prod(len(v) for v in space.grid().values()), space.grid_runs(cfg.train)
        if runs < combos:
            keys = space.conditional()
            what = (f"{keys[0]} is drawn only in the trials that choose what it needs" if len(keys) == 1 else
                    f"{', '.join(keys)} are drawn only in the trials that choose what they need")
            info(f"--sampler grid: the space's {combos} combinations make {runs} different runs ({what}; Optuna's "
                 f"grid runs every combination, so {combos - runs} repeat a run)")

    def after_trial(study_, frozen) -> None:
        if objective.fatal is not None:
            study_.stop()
            return
        report.announce(frozen, report.terminal_label(BEST_BY[cfg.metric].label, bool(cfg.train.folds)))
        if "mlflow" in trackers and frozen.state == TrialState.COMPLETE:
            _mlflow_best(cfg, study_, frozen.number, best_failed)
        report.cleanup_checkpoints(study_, study_dir, cfg.keep_k())
        report.write_tables(study_, cfg, study_dir)
        if cap is not None and n_counted() >= cap:
            study_.stop()

    from imgcls.track import installed_trackers
    trackers = installed_trackers(cfg.train.tracker)     # which ones: _check_up_front checked them and the server
    best_failed: list[str] = []         # _mlflow_best's failures: the first is said
    objective = _Objective(cfg, space, deadline, list(callbacks or []), cap, named)
    remaining = None if cap is None else cap - done_before
    if "wandb" in trackers:         # the offline runs' folders, said in one line for the study at its end
        from imgcls.track import wandb_tracker
        wandb_before = wandb_tracker.offline_runs(study_dir)
    try:
        if remaining is None or remaining > 0:
            _requeue_interrupted(study)
            with said_once():          # each trial's train set-up lines (manifest, weights, ...) once, not per trial
                study.optimize(objective, n_trials=remaining, timeout=timeout, catch=(Exception,),
                               callbacks=[after_trial])
        else:
            info(f"study '{cfg.study}' already has {done_before} trials (--trials {cap}); writing its report")
    finally:
        if objective.fatal is not None:
            if not (created and _discard_new_study(cfg, url, study, made, marked)):
                report.write_tables(study, cfg, study_dir)
        elif study.trials:
            report.cleanup_checkpoints(study, study_dir, cfg.keep_k())
            report.write_all(study, cfg, study_dir, url, time.time() - t0, BEST_BY[cfg.metric].label)
        if "wandb" in trackers:
            wandb_tracker.say_study_offline(study_dir, wandb_before)
    if objective.fatal is not None:
        raise objective.fatal
    if objective.failures and not objective.ran:
        raise _all_failed(objective.failures, study_dir)
    return study_dir


def _mlflow_best(cfg: TuneConfig, study, step: int, failed: list[str]) -> None:
    """--tracker mlflow: the study's parent run (its trials' group) gets the best trial so far, after each completed
    trial (step: its number): the value, named for the rows it is computed on as the trials' best/<column> is
    (best_trial/val_macro_f1; with --folds the mean of the folds' best epochs: best_trial/folds_mean_val_macro_f1),
    and the trial's number, folder and drawn values as tags (imgcls.best_trial, best.lr, ...). A store that fails
    (a server or database gone away) stops no study, as a trial's own logging failing does not: the first failure of
    this command is one warning (appended to `failed`), and each later trial tries again (a server gone: one quick
    request, MLflowTracker._connect, not MLflow's minutes of retries)."""
    from imgcls.track.mlflow_tracker import MLflowTracker
    best = study.best_trial
    column = BEST_BY[cfg.metric].column
    name = f"best_trial/{'folds_mean_' if cfg.train.folds else ''}{column}"
    run_dir = best.user_attrs.get("run_dir") or trial_dir(cfg.study_dir(), best.number)
    try:
        MLflowTracker(uri=cfg.train.tracking_uri, out=cfg.study_dir(), group=cfg.study).log_group_best(
            name, best.value, step, best.number, run_dir, best.params)
    except Exception as e:      # noqa: BLE001 - the store's errors: MlflowException, sqlalchemy's, OSError, ...
        if not failed:
            from imgcls.console import warn
            warn(f"mlflow: the study's run '{cfg.study}' could not take the best trial so far ({_one_line(e)}); the "
                 f"study goes on, its {TRIALS_CSV} and {BEST_CONFIG} name the best trial")
        failed.append(_one_line(e))


def _discard_new_study(cfg: TuneConfig, url: str, study, made: list[Path], marked: bool) -> bool:
    """A study this command created whose one trial failed on a user error before train made its run folder (the
    fixed options are at fault) is removed again, with the database file, the trials.csv it wrote at the start
    (`marked`) and folders the command made: nothing is left, and the same command with the option fixed starts the
    study afresh (trial 0, the new options) instead of resuming one whose record holds the mistake. False (nothing
    removed) when the study holds more by now."""
    import optuna
    with _opening_lock(url):
        trials = study.get_trials(deepcopy=False)
        if len(trials) != 1 or trial_dir(cfg.study_dir(), trials[0].number).exists():
            return False
        storage = open_storage(url)
        optuna.delete_study(study_name=cfg.study, storage=storage)
        others = storage.get_all_studies()
    db = sqlite_file(url) if cfg.storage is None else None      # the default storage: study.db in the study folder
    if db is not None and not others:
        from imgcls.fsutil import lock_file
        for f in (db, lock_file(db)):
            f.unlink(missing_ok=True)
    _remove_made(cfg.study_dir(), made, marked)
    return True


def _remove_made(study_dir: Path, made: list[Path], marked: bool) -> None:
    """Remove what this command made for a study it leaves nothing of: the trials.csv it wrote at the start
    (`marked`) and the folders it made (`made`, deepest first), each only while empty."""
    from imgcls.fsutil import remove_made
    if marked:
        (study_dir / TRIALS_CSV).unlink(missing_ok=True)
    remove_made(made)                       # only while empty: the command made them and wrote nothing else there


class TrialsFailed(UserError):
    """Every trial this command ran raised (out of memory, a bug, ...): the study has nothing new to show."""
    exit_code = 1


def _all_failed(failures: list[tuple[int, Exception]], study_dir: Path) -> UserError:
    """The error of a command none of whose trials succeeded: a user error (exit 2) when the first failure was one,
    else exit 1; the first failure's message, and where every trial's is."""
    number, first = failures[0]
    n = len(failures)
    which = (f"every trial ({n}) of this command failed; the first," if n > 1 else
             "the one trial of this command failed,")
    msg = f"{which} trial {number}: {_one_line(first)} (every trial's message: {study_dir / TRIALS_CSV})"
    return UserError(msg) if isinstance(first, UserError) else TrialsFailed(msg)
