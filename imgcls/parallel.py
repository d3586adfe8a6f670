"""One way to run a per-image function over many images: in chunks, over worker processes, with a progress bar."""
from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, TypeVar

from imgcls.console import plural, progress_bar
from imgcls.options import check, option, python_too

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Worker processes of the image scans / preprocessing when --workers is not given: min(4, cores)."""
    return max(1, min(4, os.cpu_count() or 1))


def workers_option():
    """The --workers declaration of every command that scans or processes images (train has its own: DataLoader)."""
    return option(default_workers(), panel="Runtime", lo=1, help="Worker processes (image scanning / processing).")


@dataclass
class ParallelOptions:
    """--workers of a command whose config has no such field."""
    workers: int = workers_option()

    def validate(self) -> None:
        check(self)


def check_workers(workers: int) -> None:
    """A library caller's `workers` checked like the flag (one line naming --workers and its range)."""
    ParallelOptions(workers).validate()


def refuse_while_a_worker_imports_main() -> None:
    """A step called while a spawned worker process (preprocess's) imports the caller's script: a script that calls
    the steps at its top level, not under `if __name__ == "__main__":`, ran its earlier steps (eda, clean, ...)
    again in every worker, minutes writing over the parent's finished outputs at once, before the worker died at
    the pool it could not start. The step stops there at once (as multiprocessing does for a process started
    then); the parent names the fix (preprocess.run's dead-worker line). Every writing step calls it through
    fsutil.check_writable."""
    import multiprocessing
    if getattr(multiprocessing.current_process(), "_inheriting", False):    # set by spawn while it imports __main__
        from imgcls.errors import UserError
        raise UserError("an imgcls step was called while a worker process imported the calling script: call the "
                        "steps under `if __name__ == \"__main__\":`")


def _apply_chunk(args):
    fn, items = args
    return [fn(x) for x in items]


_LIMITS: list = []


def _one_thread() -> None:
    """A pool worker's start: one BLAS / OpenMP thread, since the workers are the parallelism (N workers each
    running numpy's default threads oversubscribe the cores); Ctrl-C ignored (ignore_sigint)."""
    ignore_sigint()
    from threadpoolctl import threadpool_limits
    _LIMITS.append(threadpool_limits(1))      # kept: the limit holds for the worker's life


def ignore_sigint() -> None:
    """In a worker process, as it starts (a pool's initializer): Ctrl-C is the main process's to handle. The
    terminal sends SIGINT to the whole process group: each worker it reached printed a KeyboardInterrupt traceback
    (or took it as one item's result and went on). A worker started with SIGINT blocked (sigint_held) drops what is
    pending and ignores it from here on."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextmanager
def sigint_held():
    """SIGINT held back in this thread while a pool starts its workers (forked at its first task, spawned as
    tasks are submitted): a Ctrl-C between a worker's start and its ignore_sigint() (the seconds a spawned worker
    takes to import) printed a KeyboardInterrupt traceback from that worker. The workers inherit the block (across
    a spawn's exec too) and drop what is pending once they ignore it; this process gets it on leaving. The block
    is this thread's: a Ctrl-C the kernel hands to another thread (rich's bar refresh) still ran Python's handler
    in the middle of a submit (a worker started but not yet the pool's, left to race the exit); in the main thread
    Python's handler is held back too and called on leaving."""
    import signal
    import threading
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler, held = None, []
    if threading.current_thread() is threading.main_thread() and callable(signal.getsignal(signal.SIGINT)):
        handler = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)     # a pending Ctrl-C comes now: to `held` or `handler`
        if handler is not None:
            signal.signal(signal.SIGINT, handler)
    if held:
        handler(signal.SIGINT, None)


@contextmanager
def worker_pool(workers: int):
    """One pool of `workers` processes for several chunked_map calls in a row (one start, not one per call); None
    when workers <= 1. The processes fork at the pool's first task: module state set before that is theirs."""
    if not workers or workers <= 1:
        yield None
        return
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread) as ex:
        try:
            yield ex
        except BaseException:       # Ctrl-C, an error: the chunks not started are dropped, not worked through
            ex.shutdown(wait=True, cancel_futures=True)
            raise


def worker_died(e: BaseException, who: str = "a worker process", advice: str | None = None, kept: str = ""):
    """The one line for a worker process that died (the kernel's out-of-memory killer, a crash in a native
    library): concurrent.futures' BrokenProcessPool was a traceback. Every step's pool says it in these words:
    `who` names the worker, `advice` replaces the default fix (fewer workers), `kept` says what finished work the
    step keeps."""
    from imgcls.errors import UserError
    advice = advice or f"run again with fewer workers: {python_too('--workers N', 'workers=N')}; 1 runs in this " \
                       f"process and shows why"
    return UserError(f"{who} died ({' '.join(str(e).split())}): out of memory or a crash in it; {advice}"
                     + (f" ({kept})" if kept else ""))


class _Meanwhile:
    """chunked_map's `meanwhile`, run in a daemon thread (a Ctrl-C while it runs stops the step at once; the thread
    ends with the process); join() waits for it and raises what it raised."""

    def __init__(self, fn: Callable[[], object]):
        import threading
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), name="imgcls-meanwhile", daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except BaseException as e:      # noqa: BLE001 - raised in the caller's thread by join()
            self.error = e

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def chunked_map(fn: Callable[[T], R], items: Sequence[T], workers: int = 1, what: str | None = None,
                chunk: int = 64, pool=None, meanwhile: Callable[[], object] | None = None) -> Iterator[R]:
    """Yield fn(item) for every item, in order. `fn` must be a module-level function (it is pickled) when
    workers > 1; chunks of `chunk` items go to `workers` processes, results stream back as chunks finish.
    `what`: progress-bar label (silenced by --quiet). `pool`: a worker_pool to use instead of starting one.
    `meanwhile`: called once in this process while worker processes work on the chunks (only when they do; they
    have forked by then), e.g. importing what the next stage needs instead of waiting idle: in a thread of its own,
    so the bar counts the chunks as they come back meanwhile (run before reading them, it held the bar at 0 for the
    seconds torch and timm took to import, then jumped to the end); an error in it is raised once the chunks are
    read. The generator returns (or, closed early, lets its caller go on) only once `meanwhile` is done: read it
    to the end (`zip(..., strict=True)`) for its error to reach you. Until the first chunk comes back, the bar says
    the worker processes it started are starting."""
    chunks = [(fn, items[i:i + chunk]) for i in range(0, len(items), chunk)]
    with progress_bar(what, len(items)) as advance:
        if len(chunks) > 1 and (pool is not None or (workers and workers > 1)):
            from concurrent.futures.process import BrokenProcessPool
            with nullcontext(pool) if pool is not None else worker_pool(min(workers, len(chunks))) as ex:
                try:
                    if pool is None:        # a pool of the caller's may have started before
                        n = min(workers, len(chunks))
                        advance(0, status=f"starting {plural(n, 'worker process', 'worker processes')}")
                    with sigint_held():
                        results = ex.map(_apply_chunk, chunks)  # every chunk submitted: the workers are running
                    side = _Meanwhile(meanwhile) if meanwhile is not None else None
                    first = pool is None
                    try:
                        for res in results:
                            advance(len(res), status="" if first else None)
                            first = False
                            yield from res
                    except GeneratorExit:
                        # the caller stopped reading (a zip over the rows stops at the last item without asking
                        # for more): it goes on only once `meanwhile` is done. It went on with the imports still
                        # running in the thread: clean's embedding pass imported torch in this thread while the
                        # thread imported it too, and torch's import aborted the process (std::terminate on a
                        # python_error) once in a demo
                        if side is not None:
                            side.thread.join()
                        raise
                    if side is not None:
                        side.join()
                except BrokenProcessPool as e:
                    raise worker_died(e) from None
        else:
            for c in chunks:
                res = _apply_chunk(c)
                advance(len(res))
                yield from res
