"""One way to run a per-image function over many images: in chunks, over worker processes, with a progress bar."""
from __future__ import annotations

import os
import signal
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, TypeVar

from imgcls.console import plural, progress_bar
from imgcls.options import check, option, python_too
from imgcls.process import end_by_sigterm

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Worker processes of the image scans / preprocessing when --workers is not given: min(4, cores)."""
    return max(1, min(4, os.cpu_count() or 1))


def workers_option():
    """The --workers declaration of every command that scans or processes images (train has its own: DataLoader)."""
    return option(default_workers(), panel="Runtime", lo=1, off=(1, "no worker processes"),
                  help="Worker processes (image scanning / processing).")


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
    (or took it as one item's result and went on). A worker started with SIGINT blocked (signals_held) drops what
    is pending and ignores it from here on. SIGTERM (stop_workers' terminate) ends it by the default, not by a
    handler a forked worker inherited."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextmanager
def signals_held():
    """Ctrl-C and SIGTERM held back in this thread while a pool starts its workers (forked at its first task,
    spawned as tasks are submitted), or while a call of tune's study storage runs (tune._signals_held_in_calls), and
    handed to their handlers on leaving, in the order they came, whether the held code returned or raised.
    - SIGINT is blocked: a Ctrl-C between a worker's start and its ignore_sigint() (the seconds a spawned worker
      takes to import) printed a KeyboardInterrupt traceback from that worker. The workers inherit the block (across
      a spawn's exec too) and drop what is pending once they ignore it. The block is this thread's: a Ctrl-C the
      kernel hands to another thread (rich's bar refresh) still ran Python's handler in the middle of a submit (a
      worker started but not yet the pool's, left to race the exit), so the handler is held back too.
    - SIGTERM (`timeout`, `kill`): its handler alone is held back. Raised in the middle of a spawn, the step's
      handler (cli.common.sigterm_interrupts, through closed_pool's) ended this process before it wrote the new
      worker its start (the worker's 'EOFError: Ran out of input' traceback under the interrupted line). Not
      blocked: a worker still importing that inherited the block would outlive closed_pool's terminate and find
      its semaphores unlinked (a FileNotFoundError traceback). A forked worker, which inherits the held handler,
      ends by SIGTERM's default (_HeldSigterm, then ignore_sigint)."""
    import threading
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if hasattr(signal, "pthread_sigmask") else None
    handlers, held = {}, []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            if callable(signal.getsignal(sig)):
                handlers[sig] = signal.signal(sig, _Held(held))
    try:
        yield
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)     # a pending Ctrl-C comes now: to `held` or its handler
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for sig in held:        # where the held code raised too: the interruption over its error, not lost
            handlers[sig](sig, None)


class _Held:
    """signals_held's handler: the signal kept for later in this process; a forked worker (another pid) ends by
    SIGTERM's default at once."""

    def __init__(self, held: list):
        self.held, self.pid = held, os.getpid()

    def __call__(self, signum, frame):
        if os.getpid() == self.pid:
            self.held.append(signum)
        elif signum == signal.SIGTERM:
            end_by_sigterm()


class _PoolSigint:
    """closed_pool's SIGINT handler: the first Ctrl-C is Python's KeyboardInterrupt; one during the pool's shut-down
    (or on the way to it) does not interrupt it (it is raised after) and stops the workers at once (stop_workers).
    Once the pool is shut down it hands every Ctrl-C to the handler it replaced (where it could not be put back:
    a generator's pool closed by the garbage collector in another thread)."""

    def __init__(self, ex, old):
        self.ex, self.old = ex, old
        self.interrupted = False    # the KeyboardInterrupt raised: on its way to the shut-down
        self.closing = False
        self.done = False
        self.pending = False        # a Ctrl-C while closing without one: raised once the pool is shut down

    def __call__(self, signum, frame):
        if self.done:
            return self.old(signum, frame)
        if self.interrupted or self.closing:
            self.pending = True
            stop_workers(self.ex)
            return
        self.interrupted = True
        raise KeyboardInterrupt


def stop_workers(ex) -> None:
    """A Ctrl-C during a pool's shut-down, which waits for the chunks the workers hold (seconds, with a model per
    image; a spawned worker still importing): the workers are terminated (SIGTERM: they ignore SIGINT); their
    chunks are lost as the interrupted step's are (an image a preprocess worker was writing is a temporary file
    its next run removes; chunked_map's workers write nothing).
    The executor sees them dead and ends (its BrokenProcessPool goes to futures nobody reads). This process's
    copy of the result pipe's writing end is closed: a worker killed halfway through sending a result left the
    executor's thread waiting for the rest forever (it reads the end of the pipe instead), only while that thread
    runs: after it the shut-down closes the pipe itself, and this handler may have stopped it halfway. (The
    executor's attributes are CPython's private ones (read on 3.11); an executor without them is left to end
    as it does.)"""
    for p in list((getattr(ex, "_processes", None) or {}).values()):
        p.terminate()
    results = getattr(ex, "_result_queue", None)
    if results is not None and getattr(ex, "_executor_manager_thread", None) is not None:
        results._writer.close()     # only workers write there


def release_semaphores(ex) -> None:
    """The named semaphores of a pool's queues (the task queue's three, the result queue's two: CPython's private
    attributes, read on 3.11; none where an executor has other ones) unlinked now, each as its own finalizer
    unlinks it when the queue is collected, and so unregistered from multiprocessing's resource tracker. For a
    process about to end by SIGTERM's default (_PoolSigterm), where no finalizer runs: the tracker, which outlives it,
    unlinked them itself and wrote 'UserWarning: resource_tracker: There appear to be 5 leaked semaphore objects to
    clean up at shutdown' under the step's last line. This process's handles stay valid (sem_unlink removes the
    name), and a finalizer runs once: the queues, collected later, do not unlink them again."""
    from multiprocessing import util
    from multiprocessing.synchronize import SemLock
    sems = [getattr(q, name, None) for q in (getattr(ex, "_call_queue", None), getattr(ex, "_result_queue", None))
            for name in ("_rlock", "_wlock", "_sem")]
    ids = {id(s) for s in sems if isinstance(s, SemLock)}
    for f in list(getattr(util, "_finalizer_registry", {}).values()):
        ref = getattr(f, "_weakref", None)
        if ref is not None and id(ref()) in ids:
            try:
                f()
            except Exception:       # noqa: BLE001 - the tracker re-entered (a signal inside its own call): left to it
                pass


class _PoolSigterm:
    """closed_pool's SIGTERM handler (`timeout`, `kill PID`, a container's stop: the main process alone): Python's
    default ended the process at once and left its forked workers blocked for ever on the task pipe a sibling still
    held open (orphans). Here the workers are terminated first, then the process ends by SIGTERM as before (the
    handler it replaced: the default, or an enclosing pool's; a handler that asks for it, `after_pool`, is called
    instead: every command's, cli.common.sigterm_interrupts, which ends the step as Ctrl-C does). A forked worker, which
    inherits this handler before its initializer runs, just ends by it."""

    def __init__(self, ex, old):
        import os
        self.ex, self.old, self.pid = ex, old, os.getpid()

    def __call__(self, signum, frame):
        import os
        if os.getpid() == self.pid:
            for p in list((getattr(self.ex, "_processes", None) or {}).values()):
                p.terminate()
            release_semaphores(self.ex)
            if isinstance(self.old, _PoolSigterm) or getattr(self.old, "after_pool", False):
                return self.old(signum, frame)
        end_by_sigterm()


@contextmanager
def closed_pool(ex):
    """A ProcessPoolExecutor's life (every pool of the steps': worker_pool's, preprocess's), shut down on leaving:
    waiting for the workers, the chunks not started dropped on an error or Ctrl-C. A second Ctrl-C (the terminal's
    SIGINT again, a user's repeated one) interrupted that wait, and Python 3.11's Thread.join, interrupted, marks
    the executor's still-running thread as ended (threading._wait_for_tstate_lock's bpo-45274 branch): the
    shut-down went on as if it had, closing the result pipe under that thread, and nothing waited for the workers
    any more. What was left raced the interpreter's exit, tracebacks over the interrupted line: the thread's
    OSError 'handle is closed' (or the exit's wakeup of it, EBADF), and a spawned worker still starting got a
    FileNotFoundError opening its semaphore, which the exit had unlinked. Here (in the main thread, where Python
    runs signal handlers) a Ctrl-C after the first, or during the shut-down, does not interrupt it: it stops the
    workers (stop_workers), so the shut-down ends soon and whole, and is raised after it. A caller's own SIGINT
    handler (not Python's default) is left alone."""
    import threading
    on_sigint = on_sigterm = None
    if threading.current_thread() is threading.main_thread():
        old = signal.getsignal(signal.SIGINT)
        if old is signal.default_int_handler or isinstance(old, _PoolSigint):     # a pool in a pool's life too
            on_sigint = _PoolSigint(ex, old)
            signal.signal(signal.SIGINT, on_sigint)
        old_term = signal.getsignal(signal.SIGTERM)
        if old_term is signal.SIG_DFL or isinstance(old_term, _PoolSigterm) or getattr(old_term, "after_pool", False):
            # a caller's own is left alone
            on_sigterm = _PoolSigterm(ex, old_term)
            signal.signal(signal.SIGTERM, on_sigterm)
    state = on_sigint if on_sigint is not None else _PoolSigint(ex, None)     # not installed: flags only
    try:
        with ex:                        # leaving: ex.shutdown(wait=True)
            try:
                yield ex
            except BaseException:       # Ctrl-C, an error: the chunks not started are dropped, not worked through
                state.closing = True
                ex.shutdown(wait=True, cancel_futures=True)
                raise
            state.closing = True
    finally:
        state.done = True
        if on_sigint is not None and threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is on_sigint:
            signal.signal(signal.SIGINT, on_sigint.old)
        if on_sigterm is not None and threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, on_sigterm.old)
    if state.pending:
        raise KeyboardInterrupt


@contextmanager
def worker_pool(workers: int):
    """One pool of `workers` processes for several chunked_map calls in a row (one start, not one per call); None
    when workers <= 1. The processes fork at the pool's first task: module state set before that is theirs."""
    if not workers or workers <= 1:
        yield None
        return
    from concurrent.futures import ProcessPoolExecutor
    with closed_pool(ProcessPoolExecutor(max_workers=workers, initializer=_one_thread)) as ex:
        yield ex


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
                    with signals_held():
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
