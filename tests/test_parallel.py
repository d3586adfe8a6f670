"""imgcls.parallel.chunked_map: order, worker processes, and the steps that use it give the same result with workers."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from conftest import make_image_folder, make_odd_file
from imgcls import manifest as mf
from imgcls.parallel import chunked_map


def _square(x: int) -> int:
    return x * x


def test_chunked_map_keeps_order_over_processes():
    items = list(range(203))
    assert list(chunked_map(_square, items, workers=2, chunk=8)) == [x * x for x in items]
    assert list(chunked_map(_square, items, workers=1, what="squares", chunk=8)) == [x * x for x in items]
    assert list(chunked_map(_square, [], workers=2)) == []


def test_meanwhile_runs_once_in_this_process_while_the_workers_work_and_only_then():
    import multiprocessing
    import os
    seen = []

    def meanwhile():
        seen.append((os.getpid(), len(multiprocessing.active_children())))
    items = list(range(50))
    assert list(chunked_map(_square, items, workers=2, chunk=8, meanwhile=meanwhile)) == [x * x for x in items]
    assert seen == [(os.getpid(), 2)]               # the two workers had started
    for workers, its in ((1, items), (2, items[:8]), (2, [])):      # no worker processes: nothing to overlap
        assert list(chunked_map(_square, its, workers=workers, chunk=8, meanwhile=meanwhile)) == [x * x for x in its]
    assert len(seen) == 1


def _blas_threads(_) -> int:
    from threadpoolctl import threadpool_info
    return max((p["num_threads"] for p in threadpool_info()), default=1)


def test_pool_workers_and_a_shared_pool_run_one_blas_thread_each():
    from threadpoolctl import threadpool_limits

    from imgcls.parallel import worker_pool
    with threadpool_limits(2):                      # what forked workers would inherit without their own limit
        assert _blas_threads(0) == 2
        assert set(chunked_map(_blas_threads, range(8), workers=2, chunk=2)) == {1}
        with worker_pool(2) as pool:
            assert set(chunked_map(_blas_threads, range(8), chunk=2, pool=pool)) == {1}
            assert list(chunked_map(_square, range(9), chunk=2, pool=pool)) == [x * x for x in range(9)]
    with worker_pool(1) as pool:
        assert pool is None


def test_features_and_thumbnails_same_with_workers(tmp_path):
    from imgcls.clean.features import feature_matrix
    from imgcls.clean.near_dup import thumbnails
    root = make_image_folder(tmp_path / "raw", {"a": 40, "b": 40})
    make_odd_file("zero_bytes", root / "a")
    df = mf.load(root, scan=True, workers=2, announce=False)
    assert (df["error"] != "").sum() == 1
    f1 = feature_matrix(df, workers=1, cache_dir=str(tmp_path / "c1"))     # each measures (no cache shared)
    f2 = feature_matrix(df, workers=2, cache_dir=str(tmp_path / "c2"))
    np.testing.assert_array_equal(f1, f2)
    assert np.isnan(f1[(df["error"] != "").to_numpy()]).all() and not np.isnan(f1[(df["error"] == "").to_numpy()]).any()
    (t1, ok1), (t2, ok2) = thumbnails(df, workers=1), thumbnails(df, workers=2)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(ok1, ok2)
    assert ok1.sum() == len(df) - 1



_CTRL_C = """
import os, signal, sys, time
from imgcls.parallel import chunked_map

def ctrl_c():
    os.killpg(0, signal.SIGINT)         # Ctrl-C: the terminal signals the whole process group, workers included
    time.sleep(1)

def work(x):
    if x == 0 and sys.argv[1] == "worker":
        ctrl_c()
    time.sleep(0.1)
    with open(sys.argv[2], "a") as f:      # the chunks worked through
        print(x, file=f)
    return x

if sys.argv[1] == "starting":           # the Ctrl-C lands while the workers start, before they ignore it
    import imgcls.parallel as P
    _start = P._one_thread

    def _slow_start():
        time.sleep(0.5)
        _start()
    P._one_thread = _slow_start

try:
    list(chunked_map(work, list(range(100)), workers=2, chunk=1,
                     meanwhile=ctrl_c if sys.argv[1] in ("meanwhile", "starting") else None))
except KeyboardInterrupt:
    print("interrupted")
    sys.exit(130)
"""


@pytest.mark.parametrize("where", ["worker", "meanwhile", "starting"])
def test_ctrl_c_stops_the_workers_quietly_and_drops_the_chunks_not_started(where, tmp_path):
    """Ctrl-C reaches every process of the group: the workers leave it to the main process (each printed a
    KeyboardInterrupt traceback), which stops without working through the ~5 s of chunks still queued, also when
    it came while this process did something else (clean imports torch while the workers decode), or while the
    workers started, before they ignore it (a worker forked but not yet initialised printed the traceback). The
    chunks worked through are counted (3 of 100 here), not the seconds: a 4 s bound on the whole subprocess, the
    interpreter's start included, is what a loaded machine stretches."""
    import os
    import subprocess
    import sys
    done = tmp_path / "done.txt"
    r = subprocess.run([sys.executable, "-c", _CTRL_C, where, str(done)], capture_output=True, text=True, timeout=60,
                       start_new_session=True, env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])))
    assert r.returncode == 130 and r.stdout.strip() == "interrupted", (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "KeyboardInterrupt" not in r.stderr, r.stderr
    n_done = len(done.read_text().split()) if done.exists() else 0
    assert n_done < 50, f"{n_done} of the 100 chunks worked through after Ctrl-C"


_SIGTERM = """
import os, sys, time
from imgcls.parallel import chunked_map

def work(x):
    with open(sys.argv[1], "a") as f:      # the workers' pids
        print(os.getpid(), file=f)
    time.sleep(60)
    return x

list(chunked_map(work, list(range(4)), workers=2, chunk=1))
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigterm_to_the_main_process_stops_its_workers_too(tmp_path):
    """`timeout 1h imgcls clean ...`, `kill PID`, a container's stop: SIGTERM to the main process alone. It died at
    once (exit 143), and its pool's forked workers, blocked on the task pipe the sibling worker still held open,
    were left as orphans for ever (two `imgcls clean` processes per stopped run, found by ps hours later). The
    workers are terminated with it; the process still ends by SIGTERM."""
    import os
    import signal
    import subprocess
    import sys
    import time
    pids_file = tmp_path / "pids.txt"
    proc = subprocess.Popen([sys.executable, "-c", _SIGTERM, str(pids_file)], start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])),
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "err.txt").open("w"))
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            pids = [int(x) for x in pids_file.read_text().split()] if pids_file.exists() else []
        assert len(pids) == 2, "the workers did not start"
        proc.send_signal(signal.SIGTERM)            # the main process only, not its group
        proc.wait(timeout=30)       # not communicate(): orphaned workers would hold its pipes open
        err = (tmp_path / "err.txt").read_text()
        assert proc.returncode == -signal.SIGTERM, (proc.returncode, err)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in pids if _alive(p)], "workers left running after SIGTERM"
        assert "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


_SIGTERM_SPAWN = """
import multiprocessing, os, time
from concurrent.futures import ProcessPoolExecutor
from imgcls.parallel import closed_pool

with closed_pool(ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))) as ex:   # preprocess's
    ex.submit(os.getpid).result()
    futures = [ex.submit(time.sleep, 60) for _ in range(2)]
    print("ready", flush=True)
    for f in futures:
        f.result()
"""


@pytest.mark.timeout(120)
def test_sigterm_to_a_spawned_pool_s_process_leaves_no_semaphore_for_the_tracker_to_warn_of(tmp_path):
    """`kill -TERM PID` of `imgcls preprocess ... --workers 2` (a spawned pool): the process ended by SIGTERM, and
    multiprocessing's resource tracker, which outlives it, wrote `UserWarning: resource_tracker: There appear to be 5
    leaked semaphore objects to clean up at shutdown` under the step's last line. The pool's queues' semaphores are
    released before the process ends: nothing is left for it to warn of, and the process still ends by SIGTERM."""
    import os
    import signal
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-c", _SIGTERM_SPAWN], start_new_session=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.communicate(timeout=30)
        proc.send_signal(signal.SIGTERM)            # the main process only, as `kill PID` sends it
        out, err = proc.communicate(timeout=60)     # to the end of its stderr: the tracker's too
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, err)
    assert "leaked" not in err and "Traceback" not in err, err

def _killed_at_7(x: int) -> int:
    if x == 7:
        import os
        import signal
        os.kill(os.getpid(), signal.SIGKILL)     # what the kernel's out-of-memory killer does to a worker
    return x


_CTRL_C_IN_A_HOLD = """
import os, signal, threading, time
from imgcls.parallel import signals_held

threading.Thread(target=time.sleep, args=(5,), daemon=True).start()    # as rich's bar refresh: SIGINT not blocked
try:
    with signals_held():
        os.kill(os.getpid(), signal.SIGINT)
        t = time.monotonic()
        while time.monotonic() - t < 0.5:      # a submit's work
            pass
        print("held")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_a_ctrl_c_in_signals_held_waits_for_its_end_with_another_thread_running():
    """signals_held blocked SIGINT in this thread alone: with another thread running (the progress bar's refresh),
    the kernel handed it that thread, and Python's handler still raised KeyboardInterrupt in the main thread in
    the middle of the held submit (a worker started but not yet in the pool's table, left to race the exit). It
    is raised as the hold ends."""
    import os
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", _CTRL_C_IN_A_HOLD], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])))
    assert r.stdout.split() == ["held", "interrupted"], (r.stdout, r.stderr)


# a process whose SIGTERM raises Terminated, as cli.common.sigterm_interrupts makes it, then the script's body
_SIGTERM_RAISES = """
import os, signal, time
from imgcls.parallel import signals_held

class Terminated(Exception):
    pass

def handler(signum, frame):
    raise Terminated

signal.signal(signal.SIGTERM, handler)
"""

_SIGTERM_IN_A_HOLD = _SIGTERM_RAISES + """
try:
    with signals_held():
        os.kill(os.getpid(), signal.SIGTERM)
        t = time.monotonic()
        while time.monotonic() - t < 0.5:      # a submit's work: a worker being spawned
            pass
        print("held")
except Terminated:
    print("interrupted")
"""


def test_a_sigterm_while_the_workers_are_started_waits_for_the_hold_to_end():
    """A SIGTERM (`timeout`, `kill`) in the middle of a spawn: the step's handler (cli.common.sigterm_interrupts,
    through closed_pool's) raised there, and this process ended before it wrote the new worker its start: the
    worker's 'EOFError: Ran out of input' traceback under the interrupted line (test_cli's preprocess SIGTERM case
    failed so about one run in four under load). The hold keeps SIGTERM back like Ctrl-C: raised as it ends."""
    import os
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", _SIGTERM_IN_A_HOLD], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])))
    assert r.stdout.split() == ["held", "interrupted"], (r.stdout, r.stderr)


_SIGTERM_IN_A_HOLD_THAT_RAISES = _SIGTERM_RAISES + """
try:
    with signals_held():
        os.kill(os.getpid(), signal.SIGTERM)
        raise LookupError("the held call's own error")
except Terminated as e:
    print("interrupted", type(e.__context__).__name__)
except LookupError:
    print("lost")
"""


def test_a_signal_held_is_still_handed_over_when_the_held_code_raises():
    """A signal held while the held code raised was dropped: the handlers were put back, but the held signals were
    handed to them only after a hold that ended normally. A tune storage call that raises in its normal course
    (optuna.create_study's DuplicatedStudyError, each time a study is resumed) lost the SIGTERM of `timeout 2h imgcls
    tune` that came during it, and the study ran on. The handler is called as the hold ends either way: its
    interruption is raised over the error, as it would have been raised in the middle of that code."""
    import os
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", _SIGTERM_IN_A_HOLD_THAT_RAISES], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])))
    assert r.stdout.split() == ["interrupted", "LookupError"], (r.stdout, r.stderr)


def test_a_worker_killed_is_one_line_naming_workers_not_a_traceback():
    """A worker process killed (out of memory) or crashed while eda / clean / split / train's decoding ran their
    images through chunked_map raised concurrent.futures' BrokenProcessPool: a traceback, exit 1. It is a UserError
    (the CLI's one line, exit 2) saying what happened and naming --workers."""
    from imgcls.errors import UserError
    # the fix fits the command line and a Python caller (workers=): '--workers 1' alone was a flag a notebook
    # cannot pass
    with pytest.raises(UserError, match=re.escape("run again with fewer workers: --workers N (Python: workers=N); 1 "
                                                  "runs in this process and shows why")):
        list(chunked_map(_killed_at_7, list(range(40)), workers=2, chunk=4))


def test_the_bar_says_the_workers_start_then_counts_chunks_while_meanwhile_runs(monkeypatch):
    """train's 'decoding images' and clean's thumbnail bars stood at 0 while this process ran `meanwhile` (torch and
    timm imports, seconds) and then jumped to the end: the chunks were read only after it. The bar now says the
    worker processes are starting until the first chunk is back, and counts the chunks as they come while
    `meanwhile` still runs (here: it waits until the bar has counted every item)."""
    import threading
    from contextlib import contextmanager

    import imgcls.parallel as P
    calls, counted = [], threading.Event()

    @contextmanager
    def bar(what, total):
        def advance(n=1, status=None):
            calls.append((n, status))
            if sum(c[0] for c in calls) == total:
                counted.set()
        yield advance
    monkeypatch.setattr(P, "progress_bar", bar)
    waited = []
    items = list(range(40))
    out = list(chunked_map(_square, items, workers=2, chunk=8, what="squares",
                           meanwhile=lambda: waited.append(counted.wait(10))))
    assert out == [x * x for x in items]
    assert calls[0] == (0, "starting 2 worker processes") and calls[1][1] == "", calls
    assert waited == [True]         # every chunk counted while meanwhile ran

    def fails():
        raise RuntimeError("import failed")
    with pytest.raises(RuntimeError, match="import failed"):       # meanwhile's error is the caller's
        list(chunked_map(_square, items, workers=2, chunk=8, meanwhile=fails))


def test_a_caller_that_stops_reading_at_the_last_item_goes_on_only_once_meanwhile_is_done():
    """clean read its pass's results through zip(rows, chunked_map(...)): zip stops at the last row without asking
    the generator for more, so the generator never reached meanwhile's join, and clean's next stage imported torch
    in the main thread while `meanwhile` still imported it in its thread (a `make demo` aborted in torch's import:
    'terminate called after throwing an instance of python_error'). Closed early, the generator lets its caller go
    on only once `meanwhile` is done; clean's passes read it to the end, so meanwhile's error is theirs."""
    import time
    done = []

    def slow_imports():
        time.sleep(1.0)
        done.append(True)
    items = list(range(40))
    for i, y in zip(items, chunked_map(_square, items, workers=2, chunk=8, meanwhile=slow_imports)):
        assert y == i * i
    assert done == [True]


def test_clean_s_first_pass_raises_meanwhile_s_error(tmp_path):
    """The thumbnails and photo-features pass reads its chunks to the end (zip strict): an error of the imports
    run meanwhile is raised there, not left in the thread."""
    from imgcls.clean.run import thumbnails_and_features
    make_image_folder(tmp_path / "set", {"a": 70}, size=(24, 20))
    df = mf.load(tmp_path / "set", announce=False).reset_index(drop=True)

    def fails():
        raise RuntimeError("import failed")
    with pytest.raises(RuntimeError, match="import failed"):
        thumbnails_and_features(df, workers=2, cache_dir=str(tmp_path / "cache"), meanwhile=fails)
