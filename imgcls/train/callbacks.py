"""The train callback interface: how trackers, `imgcls tune` and a Python user watch (or stop) a training run.

    from imgcls.train import run_train, TrainConfig
    from imgcls.train.callbacks import Callback

    class Print(Callback):
        def on_epoch_end(self, epoch, logs):
            print(epoch, logs["val_macro_f1"])

    run_train(TrainConfig(src="data/splits.csv", epochs=3), callbacks=[Print()])

Every method is optional (the base class does nothing). Callbacks run on rank 0 only (under DDP the other processes
never call them). An exception raised by a callback (e.g. `optuna.TrialPruned`) propagates out of `run_train` after
`last.pt` and `metrics.csv` of the finished epochs are written, so the run can be resumed or inspected.

- `on_run_start(info)`: once per run (per fold with --folds). info: run_dir (Path), config (dict, as in config.yaml),
  classes (list), fold (int or None), total_epochs (int), start_epoch (0, or the epochs already done on --resume),
  start_step (0, or the optimiser updates of those epochs: the first on_step_end of this session is start_step + 1),
  parent_dir (the k-fold run folder for a fold, else None), folds_after (the folds this run trains after this
  one), model (the timm name), train_images, val_images.
- `on_step_end(step, logs)`: after every optimiser update. step: updates since the run's first epoch (1-based; on
  --resume it goes on from the updates of the epochs already done); logs: loss (the update's last batch), lr, epoch.
- `on_epoch_end(epoch, logs)`: after each epoch's validation and checkpoint. epoch: 1-based; logs: the metrics.csv
  row (epoch, train_loss, train_acc, val_loss, val_acc, val_macro_precision, val_macro_recall, val_macro_f1, lr,
  epoch_seconds, ...) plus `improved` (bool: this epoch is the new best by the run's --metric) and `per_class_f1`
  ({class: F1}; a class named with its meaning where the run knows one, as the run's report does: '4 (wear,
  female, 30-59)', profiles.class_titles).
- `on_run_end(summary)`: once per run (per fold) when it ends normally (not after an exception). summary: run_dir,
  fold, best_epoch (the one the run's --metric picked), best_macro_f1 (that epoch's), metric (the run's --metric),
  best_value (that epoch's value of it), epochs_done, best_pt, last_pt, metrics_csv (Paths), per_class (DataFrame
  of the best epoch, see imgcls.metrics), stopped_early (bool).
- `on_train_end(summary)`: once per `run_train` after every fold. summary: run_dir, folds (list), oof (dict of
  oof_score.json for k-fold, else None), runs (list of each fold's on_run_end summary: those this session trained),
  config (the run's or k-fold set's config.yaml, as a dict).
- `on_run_abort(error)`: when a run (or fold) stops by an exception, a callback's (e.g. a pruned tune trial) or
  not, or Ctrl-C: trackers close their run as failed / killed. Then the exception propagates.

A callback that stops a run by design raises a `DeliberateStop` (tune's --timeout does; a pruned trial's
`optuna.TrialPruned` counts as one too): its train.log names no exception and `imgcls runs` reads it stopped, not
crashed; trackers close its run as killed (W&B, which has no killed state a run can give itself: finished). A
callback's `imgcls.errors.UserError` is a refusal, as train's own are: no crash line in train.log (`imgcls runs`:
stopped), and a run folder this call made that holds no epoch's weights yet is removed (rundir.unclaim_run_dir), or,
kept for its MLflow / W&B run or given by --exist-ok, has train.log name the refusal (`imgcls runs`: refused).
Any other exception from a callback is a crash.
"""
from __future__ import annotations

from typing import Iterable, Sequence


class Callback:
    """Base class: override the hooks you need."""

    def on_run_start(self, info: dict) -> None:
        pass

    def on_step_end(self, step: int, logs: dict) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        pass

    def on_run_end(self, summary: dict) -> None:
        pass

    def on_train_end(self, summary: dict) -> None:
        pass

    def on_run_abort(self, error: BaseException) -> None:
        pass


def check_callbacks(step: str, callbacks) -> None:
    """A step's `callbacks` argument (run_train's, run_tune's) before any work: a list (or another iterable) of
    callback objects, or None. One callback given bare was "'Stop' object is not iterable" once the run folder was
    made and the images decoded; a class in the list failed at its first hook. A TypeError naming what to pass."""
    import collections.abc

    from imgcls.options import a_name, a_type, whose
    if callbacks is None:
        return
    if isinstance(callbacks, type):     # the class given for an object (it read 'pass callbacks=[type(...)]')
        raise TypeError(f"{whose(step)} callbacks must be a list of Callback objects (got the class "
                        f"{callbacks.__name__}); pass callbacks=[{callbacks.__name__}()]")
    if not isinstance(callbacks, collections.abc.Iterable) or isinstance(callbacks, (str, bytes)):
        hooks = [h for h in vars(Callback) if h.startswith("on_")]
        bare = isinstance(callbacks, Callback) or any(hasattr(callbacks, h) for h in hooks)    # one callback
        fix = (f"callbacks=[{type(callbacks).__name__}(...)]" if bare else
               f"callbacks=[MyCallback()], MyCallback a subclass of {__name__}.Callback defining the hooks it "
               f"needs ({', '.join(hooks)})")
        raise TypeError(f"{whose(step)} callbacks must be a list of Callback objects (got {a_type(callbacks)}); pass "
                        + fix)
    for c in callbacks if isinstance(callbacks, (list, tuple)) else ():     # an iterator is left unread
        if isinstance(c, type):
            raise TypeError(f"{whose(step)} callbacks hold the class {c.__name__}, not {a_name(c.__name__)} object; "
                            f"pass {c.__name__}() in the list")


class CallbackList:
    """Calls each hook on every callback in order. Also knows whether any callback wants per-step calls, so the
    loop can skip building step logs (a `.item()` device sync) when none does."""

    def __init__(self, callbacks: Iterable[Callback] | None = None):
        self.callbacks: Sequence[Callback] = list(callbacks or [])
        self.wants_steps = any(type(c).on_step_end is not Callback.on_step_end for c in self.callbacks
                               if isinstance(c, Callback)) or any(
            not isinstance(c, Callback) and hasattr(c, "on_step_end") for c in self.callbacks)

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def _call(self, hook: str, *args) -> None:
        for c in self.callbacks:
            fn = getattr(c, hook, None)
            if fn is not None:
                fn(*args)

    def on_run_start(self, info: dict) -> None:
        self._call("on_run_start", info)

    def on_step_end(self, step: int, logs: dict) -> None:
        self._call("on_step_end", step, logs)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self._call("on_epoch_end", epoch, logs)

    def on_run_end(self, summary: dict) -> None:
        self._call("on_run_end", summary)

    def on_train_end(self, summary: dict) -> None:
        self._call("on_train_end", summary)

    def on_run_abort(self, error: BaseException) -> None:
        """Every callback hears of it, even if one of them fails here (the original error is what propagates)."""
        for c in self.callbacks:
            fn = getattr(c, "on_run_abort", None)
            if fn is not None:
                try:
                    fn(error)
                except Exception:   # noqa: BLE001 - a tracker failing to close must not mask the run's error
                    pass


class DeliberateStop(Exception):
    """Raise it (or a subclass) from a hook to stop a run by design, as tune's --timeout does: no crash (see
    is_deliberate_stop). A UserError from a callback is a refusal (no crash line; a folder without weights yet is
    removed: the module doc); any other exception stops the run as a crash."""


def is_pruning(error: BaseException) -> bool:
    """Whether `error` is a tune trial's pruning (optuna.TrialPruned, raised by tune's TrialReporter from
    on_epoch_end; a subclass too). By its type's name: optuna is not imported for it."""
    return any(c.__name__ == "TrialPruned" for c in type(error).__mro__)


def is_deliberate_stop(error: BaseException) -> bool:
    """Whether `error` is a callback's stop by design, no crash nor failure: a tune trial's pruning (is_pruning) or
    a DeliberateStop (tune's --timeout). train.log names no exception (imgcls runs: stopped, not crashed), and a
    tracker ends its run as killed (MLflow's KILLED; W&B, which has no such state a run can give itself, finished)."""
    return isinstance(error, DeliberateStop) or is_pruning(error)


class CallbackStopped(RuntimeError):
    """Raised on the other DDP processes when a callback on rank 0 raised (rank 0 re-raises the original)."""


class Hooks:
    """What the train loop holds: the callbacks on rank 0 (none elsewhere), and where a callback's exception goes.

    In one process an exception propagates at once (the finished epochs' last.pt / metrics.csv are already on disk).
    Under DDP it is kept until `check()`, which every process calls at the end of an epoch after the checkpoint:
    rank 0 re-raises it and the others raise CallbackStopped, so no process waits forever in a collective."""

    def __init__(self, callbacks: Iterable[Callback] | None, main: bool = True, distributed: bool = False,
                 broadcast=None):
        self.cbs = CallbackList(callbacks if main else None)
        self.main, self.distributed, self.broadcast = main, distributed, broadcast
        self.error: BaseException | None = None

    @property
    def wants_steps(self) -> bool:
        return self.cbs.wants_steps and self.error is None

    def __call__(self, hook: str, *args) -> None:
        if not self.cbs or self.error is not None:
            return
        try:
            getattr(self.cbs, hook)(*args)
        except BaseException as e:
            if not self.distributed:
                raise
            self.error = e

    def check(self) -> None:
        failed = self.error is not None
        if self.distributed:
            failed = bool(self.broadcast(failed))
        if failed:
            if self.error is not None:
                raise self.error
            raise CallbackStopped("a training callback on rank 0 raised; this process stops with it")
