"""--tracker mlflow: --tracking-uri, else MLFLOW_TRACKING_URI (MLflow's own variable), else a local store
(sqlite:///<--out>/mlflow.db, artifacts in <--out>/mlartifacts): store_uri.

A tracking server that does not answer: MLflow retries each call with a growing wait (MLFLOW_HTTP_REQUEST_MAX_RETRIES,
MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: about 4 minutes a call by default), so train and tune ask the server once, with
no retry, before any data is read (check_server: one line, exit 2), and the tracker's own calls retry once, at once,
with a shorter timeout (FAST_FAIL, where the user did not set those variables: _store_call; an artifact upload, a
--track-checkpoint of hundreds of MB among them, keeps MLflow's own timeout). A store failing later (a
server gone mid-run) stops no training: the tracker says so once, with the runs it leaves RUNNING there, and logs
nothing more to it (the run folder holds everything)."""
from __future__ import annotations

import functools
import logging
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

from imgcls.figure_files import RUN_FIGURES, confusion_png_names
from imgcls.options import option_text
from imgcls.outputs import REPORT_HTML
from imgcls.run_names import BEST_PT, METRICS_CSV, OOF_SCORE, PER_CLASS_CSV, RUN_CONFIG, TRAIN_LOG, VAL_PREDICTIONS
from imgcls.track.common import (MLFLOW, epoch_scalars, oof_scalars, record_tracker_run, recorded_tracker_run,
                                 text_params)
from imgcls.train.callbacks import Callback, is_deliberate_stop

EXPERIMENT = "imgcls"
STOPPED_TAG = "imgcls.stopped"   # on a run an exception stopped: the exception
BEST_TAG = "best."               # on a group's run (tune's study): the best trial's drawn values, best.<option>
TRACKER = MLFLOW                 # a run (or k-fold set) folder's mlflow_run.json (record_tracker_run): its run
ARTIFACTS = (RUN_CONFIG, METRICS_CSV, PER_CLASS_CSV, VAL_PREDICTIONS, *RUN_FIGURES, REPORT_HTML, TRAIN_LOG)


# MLflow's HTTP settings (read at each request) for the tracker's own calls: a server gone mid-run costs one retry at
# once (urllib3 waits before the second retry only) and at most twice the timeout (a server that accepts and hangs),
# not MLflow's 7 retries with growing waits (about 4 minutes; 16 against a hung server). One a user set is theirs.
FAST_FAIL = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
             "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
# not for an artifact upload (_store_call(upload=True)): a request's timeout bounds each wait on the socket, and a
# checkpoint of hundreds of MB sent to a remote server over a slow link (or stored on by it) waits longer than a
# metric's call: MLflow's own default timeout (120 s in MLflow 3) is kept there
UPLOAD_TIMEOUT = "MLFLOW_HTTP_REQUEST_TIMEOUT"


@contextmanager
def _store_call(upload: bool = False):
    """Around the tracker's MLflow calls: quick to fail against a server gone (FAST_FAIL, where the environment does
    not set them; restored after, so nothing else in the process is changed), and quiet: MLflow / alembic INFO lines
    ('Creating initial MLflow database tables...') are not for imgcls users. `upload`: around log_artifact, whose
    request keeps MLflow's own timeout (UPLOAD_TIMEOUT), its retries still FAST_FAIL's."""
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    ours = [k for k in FAST_FAIL if k not in os.environ and not (upload and k == UPLOAD_TIMEOUT)]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    os.environ.update({k: FAST_FAIL[k] for k in ours})
    try:
        yield
    finally:
        for k in ours:
            os.environ.pop(k, None)
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def default_uri(out: str | Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'mlflow.db'}"


ENV_URI = "MLFLOW_TRACKING_URI"     # MLflow's own variable for the store: honoured where --tracking-uri is not given


def asked_uri(uri: str | None) -> tuple[str | None, str]:
    """(the store asked for, how: '--tracking-uri' or 'MLFLOW_TRACKING_URI'): the flag wins over the variable;
    (None, '') where neither names one (the local store, default_uri)."""
    if uri:
        return uri, "--tracking-uri"
    env = os.environ.get(ENV_URI, "").strip()
    return (env, ENV_URI) if env else (None, "")


def store_uri(uri: str | None, out: str | Path) -> str:
    """The store a run logs to: --tracking-uri, else MLFLOW_TRACKING_URI, else sqlite:///<out>/mlflow.db."""
    return asked_uri(uri)[0] or default_uri(out)


_IN_WORDS = {"<=": "le", ">=": "ge", "<": "lt", ">": "gt", "=": "eq"}


def metric_key(name: str) -> str:
    """A metric name as MLflow takes one (alphanumerics, _ - . : / and spaces: a name with another character is
    refused, and the whole batch with it): brackets and commas dropped, comparisons in words, any other character
    '_' ('val_f1_per_class/0 (wear, male, <30)' -> 'val_f1_per_class/0 wear male lt30')."""
    name = re.sub(r"[()\[\]{},]", " ", name)
    name = re.sub(r"<=|>=|<|>|=", lambda m: _IN_WORDS[m.group()], name)
    name = re.sub(r"[^/\w.\- :]", "_", name)
    return re.sub(r" {2,}", " ", name).strip()


def metric_keys(names) -> dict[str, str]:
    """{name: its MLflow metric name} for the names logged together (a run's metrics and its classes' F1): metric_key,
    unique within them. Names that metric_key makes one ('a+' and 'a_': 'val_f1_per_class/a_') would be logged as
    one metric; the one already spelled so (else the first in sorted order) keeps it, the others get '_2', '_3', ...
    in sorted order (a suffix no other name's key takes): the same names get the same keys every epoch, whatever
    their order."""
    names = list(dict.fromkeys(names))
    base = {n: metric_key(n) for n in names}
    taken = set(base.values())
    out = {}
    for key in dict.fromkeys(base.values()):
        group = sorted((n for n in names if base[n] == key), key=lambda n: (n != key, n))
        out[group[0]] = key
        k = 2
        for n in group[1:]:
            while f"{key}_{k}" in taken:
                k += 1
            out[n] = f"{key}_{k}"
            taken.add(out[n])
    return {n: out[n] for n in names}


PROBE_SECONDS = 5      # check_server's one request: a server that answers does so well within it


class _StoreGone(RuntimeError):
    """_connect: the tracking server does not answer (unreachable)."""


def _reason(e: BaseException) -> str:
    """A store error in a few words: the socket's ('Connection refused', 'Name or service not known') where MLflow
    wraps one in its 'API request ... Max retries exceeded ...' text, else the message's first line."""
    text = str(e)
    if isinstance(e, _StoreGone):
        return text
    found = re.search(r"\[Errno -?\d+\] ([^\"')]+)", text)
    if found:
        return found.group(1).strip()
    if "timed out" in text.lower():
        return "no answer in time"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(e).__name__}: {first[:200]}" if first else type(e).__name__


def unreachable(uri: str) -> str | None:
    """Why the tracking server at `uri` does not answer one request within PROBE_SECONDS, no retries ('Connection
    refused'); None when it answers (whatever the status: an answer is a server) or `uri` is no http(s) server."""
    if not str(uri).lower().startswith(("http://", "https://")):
        return None
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request
    try:
        with _store_call():
            http_request(get_default_host_creds(uri), "/health", "GET", max_retries=0, backoff_factor=0,
                         timeout=PROBE_SECONDS, raise_on_status=False)
    except Exception as e:     # noqa: BLE001 - MlflowException wrapping requests' errors, or requests' own
        return _reason(e)
    return None


def refused_folder_store(uri: str) -> bool:
    """Whether `uri` is a folder store (file:///path/mlruns, or a bare path, as MLflow reads one) that the installed
    MLflow refuses to open: MLflow 3's file store is in maintenance mode and raises unless MLFLOW_ALLOW_FILE_STORE is
    true (an MLflow without that variable opens it)."""
    from urllib.parse import urlparse
    scheme = urlparse(str(uri)).scheme.lower()
    if scheme not in ("", "file") and not re.fullmatch(r"[a-z]", scheme):     # 'c' of a Windows path C:\...
        return False
    try:
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    except ImportError:
        return False
    return not MLFLOW_ALLOW_FILE_STORE.get()


def check_server(uri: str | None, out: str | Path | None = None) -> None:
    """--tracking-uri (or, without it, MLFLOW_TRACKING_URI: asked_uri) naming a server that does not answer
    (unreachable), or a folder store the installed MLflow refuses (refused_folder_store): one line before any
    training, where MLflow's retries would wait minutes on the first call, or its refusal would come at the first
    run's start, after the data was read, and the run train without MLflow. `out`: the folder whose mlflow.db the
    runs would log to without it (train's --out, tune's study folder OUT/STUDY), named as the local store to fall
    back on (default_uri); without it, sqlite:///<--out>/mlflow.db."""
    uri, source = asked_uri(uri)
    if not uri:
        return
    from imgcls.errors import UserError
    where = f"--tracking-uri {uri}" if source != ENV_URI else f"{ENV_URI}={uri}"
    local = ("leave --tracking-uri out" if source != ENV_URI else f"unset {ENV_URI}")
    store = default_uri(out) if out is not None else "sqlite:///<--out>/mlflow.db"
    if refused_folder_store(uri):
        from urllib.parse import urlparse
        import mlflow
        folder = Path(urlparse(uri).path if uri.lower().startswith("file:") else uri).expanduser().resolve()
        raise UserError(f"{where}: this MLflow ({mlflow.__version__}) refuses a folder (file) store; give a database "
                        f"store, --tracking-uri sqlite:///{folder / 'mlflow.db'} (mlflow migrate-filestore moves an "
                        f"existing folder's runs there), or {local} to log to the local store "
                        f"{store}, or set MLFLOW_ALLOW_FILE_STORE=true to use the folder")
    why = unreachable(uri)
    if why is not None:
        raise UserError(f"{where}: no MLflow server answers there ({why}); start it (mlflow server "
                        f"--host HOST --port PORT) or give its right address, or {local} to log to "
                        f"the local store {store}")


def _guarded(hook):
    """A tracker hook whose store failing stops no training: the first failure is said once (MLflowTracker.failed),
    with the runs it leaves RUNNING in the store, and the tracker logs nothing more, so a server gone mid-run costs
    one quick failure (FAST_FAIL), not one on every call."""
    @functools.wraps(hook)
    def call(self, *args):
        if self.failed is not None:
            return None
        try:
            return hook(self, *args)
        except Exception as e:     # noqa: BLE001 - the store's errors: MlflowException, sqlalchemy's, OSError, ...
            self.failed = _reason(e)
            from imgcls.console import warn
            warn(f"mlflow: {self.uri} failed ({self.failed}); the run goes on without MLflow, logging nothing more "
                 f"to it ({METRICS_CSV} and the run folder hold everything)" + self._left_running())
            return None
    return call


class MLflowTracker(Callback):
    def __init__(self, uri: str | None = None, out: str | Path = "outputs/runs", log_checkpoint: bool = False,
                 group: str | None = None):
        self.out = Path(out)
        self.uri = store_uri(uri, self.out)
        self.from_env = asked_uri(uri)[1] == ENV_URI      # said where the runs went: the variable chose the store
        self.log_checkpoint, self.group = log_checkpoint, group
        self.client = self.exp_id = self.run_id = None
        self.parent_id = None          # the k-fold set's (or group's) run, created with the first fold
        self.parent_dir = None
        self.group_id = None           # the group's run (tune's study): parent of each run, or of each k-fold set
        self.steps: list = []
        self.failed: str | None = None     # the store's first failure (_guarded): nothing more is logged
        self.open: dict[str, None] = {}    # the MLflow runs this tracker set RUNNING and has not ended, in order

    def _opened(self, run_id: str) -> str:
        self.open[run_id] = None
        return run_id

    def _end(self, run_id: str, status: str | None = None) -> None:
        """End an MLflow run (FINISHED, or `status`)."""
        if status is None:
            self.client.set_terminated(run_id)
        else:
            self.client.set_terminated(run_id, status=status)
        self.open.pop(run_id, None)

    def _left_running(self) -> str:
        """The failure warning's end: the runs the store keeps RUNNING, which only a call to it can end (no `mlflow
        runs` command sets a run's status), and how to end them once it answers again, each with the status this
        tracker would have given it: a group's run (tune's study) FINISHED, as on_run_end / on_run_abort end it (its
        trials ran their course), the run or k-fold set the failure left unfinished FAILED."""
        if not self.open:
            return ""
        ids, one = list(self.open), len(self.open) == 1
        ends = [f"set_terminated('{i}', '{'FINISHED' if i == self.group_id else 'FAILED'}')" for i in ids]
        end = (f"MlflowClient('{self.uri}').{ends[0]}" if one else
               f"c = MlflowClient('{self.uri}'); " + "; ".join(f"c.{e}" for e in ends))
        return (f"; its MLflow run{'' if one else 's'} {', '.join(ids)} stay{'s' if one else ''} RUNNING there, as "
                f"the store cannot be told: once it answers again, end {'it' if one else 'them'} with python -c "
                f"\"from mlflow import MlflowClient; {end}\"")

    def _local(self) -> bool:
        """A store on this machine (a file or SQLite database), not a tracking server."""
        return "://" not in self.uri or self.uri.startswith(("sqlite:", "file:"))

    def _connect(self):
        if self.client is not None:
            return
        from mlflow.tracking import MlflowClient
        why = unreachable(self.uri)     # a server gone: one quick request, not MLflow's minutes of retries
        if why is not None:
            raise _StoreGone(f"no MLflow server answers ({why})")
        from contextlib import nullcontext
        turn = nullcontext()
        if self.uri.startswith("sqlite:///") and self.uri != "sqlite:///:memory:":
            from imgcls.fsutil import create_sqlite_file, lock_beside
            # two tune processes of one study (trains of one --out) create the store's tables in turn
            turn = lock_beside(create_sqlite_file(self.uri[len("sqlite:///"):]))
        with turn, _store_call():
            self.client = MlflowClient(tracking_uri=self.uri)
            exp = self.client.get_experiment_by_name(EXPERIMENT)
            if exp is not None:
                self.exp_id = exp.experiment_id
            else:
                loc = (self.out.resolve() / "mlartifacts").as_uri() if self._local() else None
                self.exp_id = self.client.create_experiment(EXPERIMENT, artifact_location=loc)

    @_guarded
    def on_run_start(self, info):
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
        self._connect()
        def where(folder) -> str:      # resolved: the tag finds the folder from any working folder
            return str(Path(folder).resolve())
        tags = {"imgcls.run_dir": where(info["run_dir"]), "imgcls.model": info["model"]}
        if self.group is not None and self.group_id is None:      # tune: one parent per study
            self.group_id = self._find_group(self.group)
            if self.group_id is None:
                with _store_call():
                    self.group_id = self._opened(self.client.create_run(self.exp_id, run_name=self.group,
                                                                        tags={"imgcls.kind": "group"}).info.run_id)
        parent_name = info["parent_dir"].name if info["parent_dir"] is not None else self.group
        if info["parent_dir"] is None:
            self.parent_id, self.parent_dir = self.group_id, self.group
        elif self.parent_id is None or self.parent_id == self.group_id or self.parent_dir != parent_name:
            ktags = {"imgcls.kind": "k-fold"}
            if self.group_id is not None:            # a tune trial with folds: study -> trial -> folds
                ktags[MLFLOW_PARENT_RUN_ID] = self.group_id
            self.parent_id = self._earlier(info["parent_dir"])      # --resume of a k-fold set: the set's run
            if self.parent_id is None:
                with _store_call():
                    self.parent_id = self._opened(self.client.create_run(
                        self.exp_id, run_name=parent_name,
                        tags={**ktags, "imgcls.run_dir": where(info["parent_dir"])}).info.run_id)
                record_tracker_run(info["parent_dir"], TRACKER, self.uri, self.parent_id)
            self._params(self.parent_id, info["config"])
            self.parent_dir = parent_name
        if self.parent_id is not None:
            tags[MLFLOW_PARENT_RUN_ID] = self.parent_id
        if info["fold"] is not None:
            tags["imgcls.fold"] = str(info["fold"])
        name = Path(info["run_dir"]).name if info["fold"] is None else f"{parent_name}/fold_{info['fold']}"
        self.run_id = self._earlier(info["run_dir"])     # --resume: one MLflow run, its metrics going on
        if self.run_id is None:
            with _store_call():
                self.run_id = self._opened(self.client.create_run(self.exp_id, run_name=name, tags=tags).info.run_id)
            record_tracker_run(info["run_dir"], TRACKER, self.uri, self.run_id)
        self._params(self.run_id, info["config"])

    def _earlier(self, folder) -> str | None:
        """The MLflow run an earlier session of this run folder logged to (recorded_tracker_run), when this store
        still has it: reopened (status RUNNING), so a resumed run's epochs go on in the same run instead of a second
        run of the same name holding only the epochs after the stop."""
        from mlflow.entities import RunStatus
        from mlflow.exceptions import MlflowException
        run_id = recorded_tracker_run(folder, TRACKER, self.uri)
        if run_id is None:
            return None
        try:
            with _store_call():
                run = self.client.get_run(run_id)
                if run.info.lifecycle_stage != "active" or run.info.experiment_id != self.exp_id:
                    return None
                self.client.update_run(run.info.run_id, status=RunStatus.to_string(RunStatus.RUNNING))
                self._opened(run.info.run_id)
                if STOPPED_TAG in run.data.tags:        # the stop it records is over: the run goes on
                    self.client.delete_tag(run.info.run_id, STOPPED_TAG)
        except MlflowException:
            return None
        return run.info.run_id

    def _find_group(self, name: str) -> str | None:
        """The run id of an existing group parent run called `name` (an earlier tune trial made it)."""
        with _store_call():
            found = self.client.search_runs([self.exp_id], filter_string=f"tags.`imgcls.kind` = 'group' and "
                                                                         f"attributes.run_name = '{name}'",
                                            max_results=1)
        return found[0].info.run_id if found else None

    def log_group_best(self, metric: str, value: float, step: int, trial: int, run_dir, params: dict) -> bool:
        """On the group's run (tune's study), the best trial so far: `metric` = its value at `step` (a metric keeps
        each step's value, where a param could not change), tags imgcls.best_trial / imgcls.best_run_dir (its number
        and resolved folder) and best.<option> for each value drawn for it (bools as true / false); a best.* tag of
        an earlier best that this one lacks is deleted. False (nothing logged) when the store has no such run."""
        self._connect()
        group_id = self._find_group(self.group)
        if group_id is None:
            return False
        tags = {"imgcls.best_trial": str(trial), "imgcls.best_run_dir": str(Path(run_dir).resolve()),
                **{BEST_TAG + k: str(option_text(v))[:5000] for k, v in params.items()}}
        with _store_call():
            self.client.log_metric(group_id, metric, float(value), step=int(step))
            for k in self.client.get_run(group_id).data.tags:
                if k.startswith(BEST_TAG) and k not in tags:
                    self.client.delete_tag(group_id, k)
            for k, v in tags.items():
                self.client.set_tag(group_id, k, v)
        return True

    def _params(self, run_id, config):
        """The run's options (bools as true / false, as config.yaml writes them); a reopened run keeps those it has
        (MLflow refuses a changed value: --resume may change only the data path, --workers, --device, --cache)."""
        from mlflow.entities import Param
        with _store_call():
            have = self.client.get_run(run_id).data.params
            params = [Param(k, str(v)[:6000]) for k, v in text_params(config).items() if k not in have]
            if params:
                self.client.log_batch(run_id, params=params)

    @_guarded
    def on_step_end(self, step, logs):
        # buffered: one write per epoch (a database round trip per update would slow short steps)
        from mlflow.entities import Metric
        ts = int(time.time() * 1000)
        self.steps += [Metric("step/loss", float(logs["loss"]), ts, step), Metric("step/lr", float(logs["lr"]), ts, step)]

    @_guarded
    def on_epoch_end(self, epoch, logs):
        from mlflow.entities import Metric
        ts = int(time.time() * 1000)
        scalars = epoch_scalars(logs)
        keys = metric_keys(scalars)
        batch = self.steps + [Metric(keys[k], v, ts, epoch) for k, v in scalars.items()]
        self.steps = []
        with _store_call():
            for i in range(0, len(batch), 1000):         # MLflow's log_batch limit
                self.client.log_batch(self.run_id, metrics=batch[i:i + 1000])

    @_guarded
    def on_run_end(self, summary):
        run_dir = Path(summary["run_dir"])
        with _store_call():
            self.client.log_metric(self.run_id, "best/val_macro_f1", float(summary["best_macro_f1"]))
            self.client.log_metric(self.run_id, "best/epoch", float(summary["best_epoch"]))
        with _store_call(upload=True):
            for f in ARTIFACTS:
                if (run_dir / f).is_file():
                    self.client.log_artifact(self.run_id, str(run_dir / f))
            if self.log_checkpoint and (run_dir / BEST_PT).is_file():
                self.client.log_artifact(self.run_id, str(run_dir / BEST_PT))
        with _store_call():
            self._end(self.run_id)
            if self.group_id is not None:
                self._end(self.group_id)    # a group's parent: finished with each of its runs
        self.run_id = None

    @_guarded
    def on_train_end(self, summary):
        from imgcls.console import info, sh
        info(f"mlflow: runs in {self.uri}" + (f" ({ENV_URI})" if self.from_env else "")
             + (f"; to browse them: mlflow ui --backend-store-uri {sh(self.uri)}"
                                              if self._local() else ""))
        run_dir = Path(summary["run_dir"])
        if self.parent_id is None and self.group is None and oof_scalars(summary):
            # a resumed k-fold set whose folds were all done (stopped before its out-of-fold score): no fold
            # reopened its run this session, the set's record names it
            self._connect()
            self.parent_id = self._earlier(run_dir)
        if self.parent_id is None or self.parent_id == self.group_id:
            return                       # a group's parent (tune's study) stays open for the next run_train
        with _store_call():
            for k, v in oof_scalars(summary).items():
                self.client.log_metric(self.parent_id, k, v)
        with _store_call(upload=True):
            for f in (RUN_CONFIG, OOF_SCORE, VAL_PREDICTIONS, PER_CLASS_CSV, *confusion_png_names(),
                      REPORT_HTML):     # val_predictions: the OOF rows
                if (run_dir / f).is_file():
                    self.client.log_artifact(self.parent_id, str(run_dir / f))
        with _store_call():
            self._end(self.parent_id)
        self.parent_id = None

    @_guarded
    def on_run_abort(self, error):
        from mlflow.entities import RunStatus
        # Ctrl-C or a callback's stop by design (a pruned tune trial, tune's --timeout) is killed; anything else failed
        killed = isinstance(error, KeyboardInterrupt) or is_deliberate_stop(error)
        status = RunStatus.to_string(RunStatus.KILLED if killed else RunStatus.FAILED)
        with _store_call():
            if self.run_id is not None:
                self.client.set_tag(self.run_id, STOPPED_TAG, f"{type(error).__name__}: {error}"[:500])
                self._end(self.run_id, status)
                self.run_id = None
            if self.parent_id is not None and self.parent_id != self.group_id:   # a k-fold set stops with its fold
                self._end(self.parent_id, status)
                self.parent_id = None
            if self.group_id is not None:
                self._end(self.group_id)    # a group's parent: finished with each of its runs
