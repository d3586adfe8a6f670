"""Shared test fixtures: small generated datasets and a byte-level snapshot of input trees."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # under `pytest -n N` (pytest-xdist, if installed): one torch / BLAS thread per test process, not N x cores
    # (set before numpy and torch load)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
from PIL import Image

# MLflow's store variable (train --tracker mlflow honours it without --tracking-uri): each test's store is its own,
# not one the user's shell names, nor one an earlier test's mlflow.set_tracking_uri left (it sets the variable too)
os.environ.pop("MLFLOW_TRACKING_URI", None)


def _click_command_built_once_per_app() -> None:
    """typer's CliRunner.invoke(app, ...) built the click command tree of the app at every call (each command's
    signature and options read again: ~50 ms, ~1 in 8 of the CLI tests' time); the tree is the same each time (the
    commands are registered when imgcls.cli is imported), so the tests' runner builds it once per app and command
    count. Test-only: `imgcls` builds it once per process anyway."""
    import typer.testing
    build = typer.testing._get_command
    built: dict[int, tuple] = {}

    def get_command(app):
        key = (len(app.registered_commands), len(app.registered_groups))
        held = built.get(id(app))
        if held is None or held[0] is not app or held[1] != key:
            held = built[id(app)] = (app, key, build(app))
        return held[2]
    typer.testing._get_command = get_command


_click_command_built_once_per_app()


@pytest.fixture(autouse=True)
def _no_mlflow_store_variable_after_a_test():
    yield
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def pytest_configure(config):
    """Each test process its own embedding cache, never the user's: two test runs (or pytest-xdist's processes) never
    share one pass's shards, and a test never reuses what another run left. Made here, not at import: a spawned
    worker (tune's parallel trials) imports this module to unpickle its task and exits without running atexit, so
    a folder made at import was left behind by each one; the workers inherit this process's folder instead."""
    cache = tempfile.mkdtemp(prefix="imgcls-test-cache-")
    os.environ["IMGCLS_CACHE"] = cache
    config.add_cleanup(lambda: shutil.rmtree(cache, True))
    _sqlite_commits_not_synced_to_disk()


def _sqlite_commits_not_synced_to_disk() -> None:
    """Every SQLite database the tests' processes open through SQLAlchemy (tune's Optuna study.db, MLflow's
    mlflow.db) commits without waiting for the disk (PRAGMA synchronous=OFF): SQLite's default syncs each commit
    (8-20 ms on the shared test machine's disk; an Optuna trial makes dozens): four test_tune tests spent a fifth
    to a third of their time waiting on the disk. What a test can see is the same: the data reaches the OS at each
    commit as before (a process killed mid-write loses nothing), the locks and journal are SQLite's as in use; only
    a power cut could lose a commit. Subprocesses (the CLI's, torchrun's) commit as in use."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def unsynced(dbapi_connection, connection_record):
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute("PRAGMA synchronous=OFF")


def _shares_a_fixture(item) -> bool:
    """Whether the test uses a fixture of ours built once for several tests (module or session scope: a torchrun
    launch, a trained run, an MLflow store), not pytest's own (tmp_path_factory is session-scoped too)."""
    info = getattr(item, "_fixtureinfo", None)
    return info is not None and any(d.scope != "function" and d.baseid
                                    for defs in info.name2fixturedefs.values() for d in defs)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test`: --dist worksteal), the tests that share a module- or session-scoped fixture
    run first, in their files' order. worksteal hands each process a run of the collection and later moves the tail
    of a busy one's queue to an idle one, so tests of one shared fixture split between processes built it in each
    (test_train_ddp's torchrun launch, ~33 s under load, twice in one run). At the head of the first process's queue
    they stay together: steals take tails. The order in every worker is the same (xdist requires it); without
    xdist, files run in order as before."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items[:] = [i for i in items if _shares_a_fixture(i)] + [i for i in items if not _shares_a_fixture(i)]


@pytest.fixture(autouse=True)
def unrendered_figures(request):
    """matplotlib's rasterizing of the PNGs the steps write (curves, confusion matrices, eda's plots, tune's
    Optuna plots) was ~40% of the suite's time on a 2-core machine (a tiny run_train: ~1.3 of ~3 s), and it is
    matplotlib's work, not ours. In-process, a test's figures are built as in use (every artist, label and title:
    the code that makes them runs) and saved as a blank PNG of the figure's size, not rasterized (Figure.savefig).
    A test whose point is the rendering itself (missing-glyph warnings, fonts, the pixels of a grid) is marked
    rendered_figures; subprocesses (CLI start-up, torchrun) render as in use. Its own MonkeyPatch, not the
    monkeypatch fixture: an autouse fixture's monkeypatch would be undone after tmp_path's removal, which then ran
    under a test's own patches (os.scandir counted by path)."""
    if request.node.get_closest_marker("rendered_figures"):
        yield
        return
    from matplotlib.figure import Figure

    def savefig(fig, fname, *args, dpi=None, format=None, **kwargs):
        import matplotlib
        d = dpi if isinstance(dpi, (int, float)) else matplotlib.rcParams["savefig.dpi"]
        d = fig.dpi if d == "figure" else d
        w, h = (max(1, int(round(v * d))) for v in fig.get_size_inches())
        # zlib level 1: a blank PNG of the same size in ~half the time of the default level 6 (~47 -> 21 ms at
        # 1500 x 1200)
        Image.new("RGB", (w, h), "white").save(fname, format="PNG", compress_level=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", savefig)
        yield


def torchrun(procs: int, tmp: Path, **env: str) -> tuple[list[str], dict[str, str]]:
    """The command prefix that starts `procs` CPU processes under torchrun (standalone; append `-m imgcls ...` or a
    script) and its environment: one BLAS thread each, offline, `env` added, and TMPDIR a folder under `tmp` (a
    test's tmp_path, removed when the test passes): torchrun writes a torchelastic_* log folder into the temp
    directory at every launch and leaves it there. PYTHONPATH leads with this checkout, so the processes import the
    imgcls under test, not the one the virtualenv's editable install names (another work tree's)."""
    tmpdir = Path(tmp) / "tmpdir"
    tmpdir.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(p for p in (str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")) if p)
    return ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)],
            {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmpdir), "PYTHONPATH": path,
             **env})


def _descendants(pid: int) -> list[int]:
    """Every process under `pid` (children's children too), read from /proc."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue                    # ended meanwhile
            children.setdefault(ppid, []).append(int(d))
    found, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found


def run_launch(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    """subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw) for a launch that starts processes
    of its own (torchrun's ranks): in a session of its own, and at the timeout (or a Ctrl-C of the tests) the whole
    session is killed. subprocess.run kills the launcher alone: a rank that hung (waiting on a collective) outlived
    the test, idle, for good (one found 90 minutes after its test)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except BaseException as e:
        # torchrun starts each rank in a session of its own (its subprocess handler), out of the launch's: they are
        # found as its descendants (before the launcher dies and they are handed to init) and killed one by one;
        # left, they outlived the test and held its output pipes open, so communicate() waited for them
        for pid in [*_descendants(p.pid), p.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        if isinstance(e, subprocess.TimeoutExpired):
            raise subprocess.TimeoutExpired(cmd, timeout, out, err) from None
        raise
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def assert_said_once_per_machine(monkeypatch, calls, per_rank=None) -> None:
    """Each CLI call (a refusal every torchrun process hits alike) run as LOCAL_RANK 0 and 1 of a two-process job:
    rank 0 says it in one line at once (exit 2); rank 1 waits (time.sleep, raising as torchrun's SIGTERM would)
    at least 5 s and says nothing. per_rank(monkeypatch, rank): more set-up for each process (c69f6cf)."""
    import time

    from typer.testing import CliRunner

    from imgcls.cli import app
    waits = []

    def stopped_by_torchrun(seconds):
        waits.append(seconds)
        raise SystemExit(143)

    monkeypatch.setattr(time, "sleep", stopped_by_torchrun)
    for call in calls:
        said = {}
        for rank in (0, 1):
            for k, v in {"WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank)}.items():
                monkeypatch.setenv(k, v)
            if per_rank is not None:
                per_rank(monkeypatch, rank)
            waits.clear()
            r = CliRunner().invoke(app, call)
            said[rank] = (r.exit_code, r.output, list(waits))
        assert said[0][0] == 2 and said[0][1].count("error:") == 1 and said[0][2] == [], (call, said)
        assert said[1][0] == 143 and said[1][1] == "" and said[1][2] and said[1][2][0] >= 5, (call, said)


def stop_after_first_rename(monkeypatch, renames: int = 1, error: BaseException | None = None) -> list[str]:
    """outputs.output_set's renames into place stopped (Ctrl-C, kill) after the first (the first `renames`): the
    next raises KeyboardInterrupt (`error`: that, an OSError of the disk). Returns the names placed, as the test
    goes on (monkeypatch.undo() ends the stop)."""
    import types

    import imgcls.outputs as outputs
    placed: list[str] = []

    def replace(src, dst):
        if len(placed) >= renames:
            raise error or KeyboardInterrupt
        placed.append(os.path.basename(dst))
        os.replace(src, dst)
    monkeypatch.setattr(outputs, "os", types.SimpleNamespace(**{**vars(os), "replace": replace}))
    return placed


def count_folder_listings(monkeypatch, walks: bool = False) -> list[Path]:
    """The folders a dataset's read lists to look at them (a layouts.FolderView's listing; os.listdir, Path.iterdir),
    one entry per listing, as the test goes on; the image walks (os.scandir) are counted with `walks` only (every
    os.scandir then, a FolderView's listing among them: a folder the walk lists again beside its view's listing is
    counted twice)."""
    from functools import cached_property

    from imgcls.layouts import FolderView
    listed: list[Path] = []
    if walks:
        scandir = os.scandir

        def counted_scandir(path="."):
            if not isinstance(path, int):   # an open folder's descriptor: shutil.rmtree's walk of a staging folder
                listed.append(Path(path))
            return scandir(path)
        monkeypatch.setattr(os, "scandir", counted_scandir)
    else:
        listing = FolderView.__dict__["_listing"].func
        counted = cached_property(lambda self: listed.append(self.root) or listing(self))
        counted.__set_name__(FolderView, "_listing")
        monkeypatch.setattr(FolderView, "_listing", counted)
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": listed.append(Path(path)) or listdir(path))
    return listed


def lock_folder(monkeypatch, folder: Path) -> None:
    """os.scandir of `folder` raises PermissionError, as a folder without read permission does for a user who is not
    root (the suite runs as root, which may list any folder)."""
    scandir = os.scandir

    def locked(path="."):
        if os.fspath(path) == os.fspath(folder):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)
    monkeypatch.setattr(os, "scandir", locked)


def assert_cuda_refused_before_read(monkeypatch, args: list, out: Path) -> None:
    """The command `args` with --device cuda on a machine without CUDA: one line, exit 2, before the data is read
    (manifest.load), `out` not written."""
    import torch
    from typer.testing import CliRunner
    from imgcls import manifest as mf
    from imgcls.cli import app
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("the data was read before the device check"))
    r = CliRunner().invoke(app, [str(a) for a in args] + ["--out", str(out), "--device", "cuda"])
    assert r.exit_code == 2 and r.output.strip().splitlines() == [
        "error: --device cuda asked for CUDA but no CUDA device is visible; use --device cpu or auto"], r.output
    assert not out.exists()


def make_dacon_csv(folder: Path, n: int = 16) -> Path:
    """DACON's painting competition in small: `folder`/train.csv (id, img_path, artist: two artists in turn) over
    `n` images in `folder`/train/."""
    import pandas as pd
    rows = []
    for i in range(n):
        make_image(folder / "train" / f"TRAIN_{i:05d}.png", seed=i)
        rows.append({"id": f"TRAIN_{i:05d}", "img_path": f"./train/TRAIN_{i:05d}.png", "artist": "ab"[i % 2]})
    pd.DataFrame(rows).to_csv(folder / "train.csv", index=False)
    return folder / "train.csv"


def tree_snapshot(root: str | os.PathLike) -> dict[str, str]:
    """{relative path: sha256} of every file under root (to assert an input tree is byte-identical)."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def make_image(path: Path, size=(48, 40), seed: int = 0, kind: str = "blocks") -> Path:
    """A small RGB image; different seeds give visually different images."""
    rng = np.random.default_rng(seed)
    w, h = size
    if kind == "noise":
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:  # flat-colour blocks: illustration-like
        arr = np.full((h, w, 3), 255, np.uint8)
        for _ in range(4):
            x0, y0 = rng.integers(0, w // 2), rng.integers(0, h // 2)
            arr[y0:y0 + rng.integers(4, h // 2), x0:x0 + rng.integers(4, w // 2)] = rng.integers(0, 256, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def make_image_folder(root: Path, counts: dict[str, int], size=(48, 40), seed: int = 0, ext: str = ".png") -> Path:
    """ImageFolder root/<class>/<i>.png with `counts` images per class."""
    k = seed * 100_000
    for cls, n in counts.items():
        for i in range(n):
            make_image(root / cls / f"{i:03d}{ext}", size=size, seed=k)
            k += 1
    return root


def make_profiles(root: Path, n_profiles: int = 12, size=(32, 40), seed: int = 0) -> Path:
    """Mask-competition layout: <id>_<gender>_<race>_<age>/<mask1..5|incorrect_mask|normal>.jpg."""
    rng = np.random.default_rng(seed)
    stems = [f"mask{i}" for i in range(1, 6)] + ["incorrect_mask", "normal"]
    for p in range(n_profiles):
        gender = ("male", "female")[p % 2]
        age = int(rng.choice([20, 25, 35, 45, 58, 60, 65]))
        d = root / f"{p:06d}_{gender}_Asian_{age}"
        for j, stem in enumerate(stems):
            make_image(d / f"{stem}.jpg", size=size, seed=seed * 10_000 + p * 10 + j)
    return root


def assert_self_contained(html_path: str | os.PathLike, min_images: int = 1) -> str:
    """An imgcls HTML report shows every image wherever it is moved: each <img src> is a data: URI (imgcls.report
    embeds them), and there are at least `min_images`. Returns the page."""
    import re
    html = Path(html_path).read_text(encoding="utf-8")
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert len(srcs) >= min_images, (html_path, len(srcs))
    bad = [s[:60] for s in srcs if not s.startswith("data:image/")]
    assert not bad, (html_path, bad)
    assert "<link" not in html and "<script src" not in html      # no stylesheet or script fetched from elsewhere
    return html


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """3 classes (6/4/2 images), 48x40 PNGs."""
    return make_image_folder(tmp_path / "raw", {"a": 6, "b": 4, "c": 2})


@pytest.fixture
def profile_folder(tmp_path) -> Path:
    return make_profiles(tmp_path / "profiles")


# --- scale tests: work, not wall seconds ----------------------------------------------------------------------

@pytest.fixture
def work(monkeypatch):
    """work(fn, runs=2) -> (pandas operations, CPU seconds, fn's result): how a scale test measures a call, to compare
    it with the same call on a smaller input in the same test (a wall-clock bound fails on a loaded, shared 2-core
    machine). Pandas operations are NDFrame.__finalize__ calls (one per frame or series made), counted over the last
    run: a pandas call per group makes them grow with the groups. CPU seconds are this process's (other processes'
    load left out; time.process_time), the least of `runs` runs, each after a garbage collection and with the
    collector off, as timeit does: a full collection walks every object of the process (torch's, the earlier
    tests'), so it lands in one run and not the other and grew a linear call's 5x rows to 12x CPU.
    work.pair(small, large, runs=3) -> (small's, large's): the two calls measured in turn, run after run, so that a
    load that comes or goes mid-test slows both (measured one after the other, a quiet small run against a loaded
    large one read ~1.4x more growth)."""
    import gc
    import time

    import pandas.core.generic as pdg
    made = [0]
    finalize = pdg.NDFrame.__finalize__

    def counted(self, *a, **k):
        made[0] += 1
        return finalize(self, *a, **k)
    monkeypatch.setattr(pdg.NDFrame, "__finalize__", counted)

    def once(fn):
        gc.collect()
        made[0] = 0
        gc.disable()
        try:
            t = time.process_time()
            result = fn()
            return made[0], time.process_time() - t, result
        finally:
            gc.enable()

    def least(a, b):
        return b if a is None else (b[0], min(a[1], b[1]), b[2])

    def measure(fn, runs: int = 2):
        best = None
        for _ in range(runs):
            best = least(best, once(fn))
        return best

    def pair(small, large, runs: int = 3):
        a = b = None
        for _ in range(runs):
            a, b = least(a, once(small)), least(b, once(large))
        return a, b
    measure.pair = pair
    return measure


@pytest.fixture
def connections(monkeypatch) -> list:
    """The network this process tries from now on: each name lookup as ((host, port), None) and each TCP connection
    as (address, timeout), refused at once as on a machine without network (a numeric address needs no lookup). A
    test asserts what was tried (nothing: no network attempt, hence no hang) instead of bounding wall seconds, which
    a loaded machine or a first import of torch / timm stretches."""
    import errno
    import socket
    tried = []
    getaddrinfo, connect, connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex

    def lookup(host, port, family=0, type=0, proto=0, flags=0):
        try:
            return getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            tried.append(((host, port), None))
            raise socket.gaierror(socket.EAI_NONAME, f"no network in this test ({host})") from None

    def refuse(self, address):
        if self.family not in (socket.AF_INET, socket.AF_INET6):      # a local socket (e.g. multiprocessing's)
            return connect(self, address)
        tried.append((address, self.gettimeout()))
        raise ConnectionRefusedError(errno.ECONNREFUSED, f"no network in this test ({address})")

    def refuse_ex(self, address):
        if self.family not in (socket.AF_INET, socket.AF_INET6):
            return connect_ex(self, address)
        tried.append((address, self.gettimeout()))
        return errno.ECONNREFUSED
    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_ex)
    return tried


# --- predict / ensemble / export: tiny runs in the train step's checkpoint format ------------------------------

def make_tiny_run(run_dir: Path, classes=("a", "b", "c"), model: str = "test_efficientnet", img_size: int = 32,
                  multi: bool = False, seed: int = 0, folds: int = 0, val_rows: list | None = None,
                  val_quality: float = 0.0, target: str = "label", age_bands: list | None = None,
                  decode_version: int | None = -1, product: dict | None = None) -> Path:
    """A run folder as `imgcls train` writes it (best.pt with state_dict + meta, config.yaml, val_predictions.csv),
    with an untrained tiny timm network (seeded). `multi`: mask/gender/age_band heads decoded to 18 classes.
    `val_rows`: [(root, path, label)] for val_predictions.csv; `val_quality` in [0, 1] mixes the one-hot truth into
    random probabilities (1.0 = always right), so weight fitting has a better and a worse member. `target`: the
    column a single-head run predicts (`train --target`, ModelMeta.target). `age_bands`: the edges train recorded
    (ModelMeta.age_bands; None: an older checkpoint's missing record). `decode_version`: the decoding its images had
    (ModelMeta.decode_version; -1: this imgcls's, as train records it; None: an older checkpoint without it).
    `product`: {head column: classes}, heads decoded to the product of their classes ('1_0'), as train --heads multi
    --head-columns other than mask,gender,age_band."""
    import torch
    import yaml
    from imgcls.train.checkpoint import save_checkpoint
    from imgcls.train.heads import build_model
    if multi:
        heads = [{"name": "mask", "classes": ["0", "1", "2"]}, {"name": "gender", "classes": ["0", "1"]},
                 {"name": "age_band", "classes": ["0", "1", "2"]}]
        classes, decode = [str(i) for i in range(18)], "profile18"
    elif product:
        import itertools
        heads = [{"name": c, "classes": [str(i) for i in range(k)]} for c, k in product.items()]
        classes = ["_".join(map(str, t)) for t in itertools.product(*(range(k) for k in product.values()))]
        decode = "product"
    else:
        classes = list(classes)
        heads, decode = [{"name": "label", "classes": classes}], "single"
    meta = {"model": model, "classes": classes, "heads": heads, "decode": decode, "branch": "shallow",
            "img_size": img_size, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear",
            "resize_mode": "squash", "drop_rate": 0.0, "target": target}
    if age_bands is not None:
        meta["age_bands"] = list(age_bands)
    if decode_version is not None:
        from imgcls.io import DECODE_VERSION
        meta["decode_version"] = DECODE_VERSION if decode_version == -1 else decode_version
    dirs = [run_dir / f"fold_{k}" for k in range(folds)] if folds else [run_dir]
    rng = np.random.default_rng(seed)
    for k, d in enumerate(dirs):
        torch.manual_seed(seed * 100 + k)
        net = build_model(meta)
        with torch.no_grad():   # untrained heads give near-uniform outputs: make them input-dependent
            for p in net.parameters():
                if p.dim() > 1:
                    p.mul_(3.0)
        d.mkdir(parents=True, exist_ok=True)
        save_checkpoint(d / "best.pt", net.state_dict(), meta, epoch=1)
        (d / "config.yaml").write_text(yaml.safe_dump({"model": model, "img_size": img_size,
                                                       **({"folds": "all"} if folds else {})}))
    if folds:       # the set's config.yaml records --folds (run_names.fold_set); what train writes after its folds
        # with its --lr, as train records every option (a diverged fold's fix names it: rundir.diverged_set_fix)
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": model, "img_size": img_size, "folds": "all",
                                                             "lr": 0.001}))
        (run_dir / "oof_score.json").write_text(json.dumps({"folds": list(range(folds)), "n_images": 0}))
    if val_rows:
        p = rng.dirichlet(np.ones(len(classes)), size=len(val_rows))
        truth = np.eye(len(classes))[[classes.index(r[2]) for r in val_rows]]
        p = (1 - val_quality) * p + val_quality * truth
        import pandas as pd
        df = pd.DataFrame({"path": [r[1] for r in val_rows], "root": [r[0] for r in val_rows],
                           "label": [r[2] for r in val_rows], "fold": "",
                           "pred": [classes[i] for i in p.argmax(1)]})
        df = pd.concat([df, pd.DataFrame(p, columns=[f"p_{c}" for c in classes])], axis=1)
        df.to_csv(run_dir / "val_predictions.csv", index=False)
    return run_dir


def mark_training(run, done: int, epochs: int, best: int, finished: bool = False):
    """What imgcls train has written of `run` (a run or one fold) after `done` of `epochs` epochs: its config.yaml,
    last.pt's LAST_STATE record and best.pt as saved at epoch `best`."""
    import torch
    import yaml
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump(dict(cfg, epochs=epochs)))
    obj = torch.load(run / "best.pt", weights_only=True)
    torch.save(dict(obj, epoch=best), run / "best.pt")
    (run / "last.pt").write_bytes(b"")
    (run / "last_state.json").write_text(json.dumps({"epoch": done, "finished": finished}))
    return run


@pytest.fixture
def tiny_run():
    return make_tiny_run


# --- foundation: odd and broken image files, generated (one per kind the scan must survive) -------------------

# kind -> (file name, substring of the manifest `error`, or None when the file is readable)
ODD_FILES = {
    "truncated_jpeg": ("truncated.jpg", "truncated"),
    "truncated_png": ("truncated.png", "truncated"),
    "zero_bytes": ("empty.jpg", "empty file (0 bytes)"),
    "text_as_jpg": ("notes.jpg", "not an image"),
    "cmyk_jpeg": ("cmyk.jpg", None),
    "png_16bit": ("depth16.png", None),
    "palette_alpha_png": ("palette_alpha.png", None),
    "exif_rotated_jpeg": ("rotated.jpg", None),
    "over_max_pixels": ("huge.png", "too many pixels"),
    "unicode_name": ("고양이_été.png", None),
}


def make_odd_file(kind: str, folder: Path) -> Path:
    """Write one file of `kind` (see ODD_FILES) into `folder`; returns its path.
    cmyk_jpeg is pure red, png_16bit is 16-bit grey 32896 (= 128 in 8 bits), palette_alpha_png has a transparent
    left half and a blue right half, exif_rotated_jpeg is stored 60x30 with a red left third and orientation 6
    (shown 30x60, red on top), over_max_pixels is 200x200 (= 40,000 pixels)."""
    import io as _io
    name, _ = ODD_FILES[kind]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if kind in ("truncated_jpeg", "truncated_png"):
        buf = _io.BytesIO()
        arr = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(arr).save(buf, "JPEG" if kind == "truncated_jpeg" else "PNG")
        data = buf.getvalue()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "text_as_jpg":
        path.write_text("this is a text file, not a JPEG\n")
    elif kind == "cmyk_jpeg":
        Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(path, "JPEG", quality=95)
    elif kind == "png_16bit":
        Image.fromarray(np.full((30, 40), 32896, np.uint16)).save(path)
    elif kind == "palette_alpha_png":
        im = Image.new("P", (40, 30), 0)
        im.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
        im.paste(1, (20, 0, 40, 30))
        im.save(path, transparency=0)
    elif kind == "exif_rotated_jpeg":
        arr = np.full((30, 60, 3), 255, np.uint8)
        arr[:, :20] = (255, 0, 0)
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(arr).save(path, "JPEG", quality=95, exif=exif.tobytes())
    elif kind == "over_max_pixels":
        make_image(path, size=(200, 200), seed=7)
    elif kind == "unicode_name":
        make_image(path, size=(48, 40), seed=8)
    else:
        raise KeyError(kind)
    return path


@pytest.fixture
def odd_file():
    return make_odd_file


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory):
    """place(folder): folder/mlflow.db (a run's local MLflow store under --out, tune's in its study folder) as a copy
    of an empty store made once per session. A new store runs MLflow's schema migrations (2-3 CPU s, 15-30 s of
    wall time on the loaded 2-core test machine): a test whose point is not the store's creation starts from the
    copy, which holds only MLflow's Default experiment, as a store made by the run would before imgcls's first call
    (imgcls still creates its own experiment and runs there). test_tune's umask test keeps making a new one."""
    template = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    from mlflow.tracking import MlflowClient
    MlflowClient(tracking_uri=f"sqlite:///{template}").search_experiments()    # creates the schema

    def place(folder: str | os.PathLike) -> Path:
        db = Path(folder) / "mlflow.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, db)
        return db
    return place


def second_command_while_writing(path: Path, args: list[str]) -> tuple[subprocess.Popen, list[str]]:
    """While `path` is being written (its atomic_path temporary file there, as a step writing its set has it),
    start `python -m imgcls ARGS` in another process and return once it says it waits for the folder (or has
    ended): the process and the lines it said so far (more are added as it goes on)."""
    from imgcls.fsutil import atomic_path
    with atomic_path(path) as tmp:
        tmp.write_text("<html>")
        # before the lock: it swept this file and ended; now it waits for this run's set
        return second_command_waiting(args)


def second_command_waiting(args: list[str]) -> tuple[subprocess.Popen, list[str]]:
    """Start `python -m imgcls ARGS` (this checkout's) in another process and return once it says it waits for a
    folder another run holds (or has ended): the process and the lines it said so far (more are added as it goes)."""
    import threading
    said, turn = [], threading.Event()
    second = subprocess.Popen([sys.executable, "-m", "imgcls", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200",
                                   "PYTHONPATH": str(Path(__file__).parents[1])})

    def read():
        for line in second.stdout:
            said.append(line)
            if "waiting for it to finish" in line:
                turn.set()
        turn.set()
    threading.Thread(target=read, daemon=True).start()
    turn.wait(120)
    return second, said


def restored_class_manifest(tmp_path) -> Path:
    """A manifest scanned while class b's images were away (each row recorded 'file not found'), the images back
    since: the scan finds them again (manifest.stale_rows)."""
    from imgcls import manifest as mf
    raw = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32))
    mf.write(mf.load(raw, announce=False), tmp_path / "m" / "manifest.csv")
    shutil.move(raw / "b", tmp_path / "b_away")
    mf.write(mf.load(tmp_path / "m" / "manifest.csv", announce=False), tmp_path / "m" / "manifest.csv")
    shutil.move(tmp_path / "b_away", raw / "b")
    return tmp_path / "m" / "manifest.csv"

