"""DDP on CPU: torchrun, gloo backend, 2 processes (slower tests: each launch starts 3 Pythons that import torch)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import make_image_folder, run_launch, torchrun


CLI_SCRIPT = """
import gc, json, os, sys, time
import torch.distributed as dist
from typer.testing import CliRunner
import imgcls.cli.common
from imgcls.cli import app


class StoppedByTorchrun(float):      # the said-elsewhere wait of a call torchrun would stop (its SIGTERM): exit 143
    pass


waits, sleep = [], time.sleep
def wait(seconds):
    if not isinstance(seconds, StoppedByTorchrun):       # any other sleep sleeps
        return sleep(seconds)
    waits.append(float(seconds))
    raise SystemExit(143)


time.sleep = wait
STOPPED = StoppedByTorchrun(imgcls.cli.common.SAID_ELSEWHERE_WAIT_S)
calls, stopped, late = json.loads(sys.argv[2]), set(json.loads(sys.argv[3])), json.loads(sys.argv[4])
said, groups, asked = [], [], []
for i, call in enumerate(calls):     # the CLI, called in turn in this torchrun process
    # a call in `stopped`: the process that waits for another to say the error is stopped as torchrun stops it; the
    # others: each rank says what it ended with (torchrun stops none here)
    imgcls.cli.common.SAID_ELSEWHERE_WAIT_S = STOPPED if i in stopped else 0
    waits.clear()
    sleep(late.get(f"{os.environ['RANK']}:{i}", 0))     # a process that starts this call late
    r = CliRunner().invoke(app, call)
    said.append([r.exit_code, r.output])
    asked.append(list(waits))
    groups.append(dist.group.WORLD if dist.is_initialized() else None)
with open(sys.argv[1] + os.environ["RANK"], "w") as f:     # each call's group: the first call's index with it
    json.dump({"said": said, "waits": asked,
               "group": [None if g is None else next(i for i, h in enumerate(groups) if h is g) for g in groups]}, f)
gc.freeze()      # as imgcls's own entry point (imgcls.cli.main): no exit-time collection of torch's objects
"""


@pytest.fixture(scope="module")
def one_launch(tmp_path_factory):
    """One torchrun launch (2 processes, gloo) that calls the CLI in turn in each process (a launch is most of the
    time: each process imports torch and timm): two `train` runs (DDP with tensorboard; SAM with grad-accum), then
    `train NEW --resume DONE`, a finished run whose data moved and that another train holds, in the same processes
    (as tune's trials run), rank 1 starting the SAM run 5 s after rank 0 (rank 0 claims its folder first); then two
    runs that fail on every process, rank 1 stopped in its said-elsewhere wait as
    torchrun stops it (CLI_SCRIPT's `stopped`): a fold whose validation images all broke after their scan (refused
    after the shared cache is built), and rank 0's refusal of a --cache ram over the memory available (left out
    where /proc/meminfo is missing).
    Returns its folder, each rank's record of its calls, the finished run, its config.yaml before the launch, and
    the two runs' data."""
    import shutil

    from imgcls.train import TrainConfig, run_train
    from imgcls.train.data import CACHE_SHARE, cache_room
    from imgcls.train.rundir import RunLock
    tmp_path = tmp_path_factory.mktemp("ddp")
    old = make_image_folder(tmp_path / "disk1" / "data", {"a": 4, "b": 4}, size=(16, 16))
    done = run_train(TrainConfig(src=str(old), model="test_resnet", pretrained=False, img_size=16, batch_size=4,
                                 epochs=1, workers=0, device="cpu", aug="none", out=str(tmp_path / "runs"),
                                 name="done"))
    new = tmp_path / "disk2" / "data"
    shutil.move(old, new)
    src = make_image_folder(tmp_path / "raw", {"a": 12, "b": 12}, size=(40, 40))
    launch, env = torchrun(2, tmp_path)
    common = [str(src), "--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--workers", "0",
              "--device", "cpu", "--val-split", "0.25", "--out", str(tmp_path / "runs"), "--aug", "none", "--no-plots"]
    calls = [["train", *common, "--epochs", "2", "--batch-size", "4", "--name", "ddp", "--tracker", "tensorboard"],
             ["train", *common, "--epochs", "1", "--batch-size", "2", "--grad-accum", "2", "--optimizer", "sam",
              "--name", "ddp_sam", "--quiet"],
             ["train", str(new), "--resume", str(done), "--device", "cpu"]]
    # a failure only the decoding can find, after the shared cache is built: a manifest whose scan recorded every
    # image readable, then fold 0's images (its validation side) broke in place at their size and mtime (a disk's
    # bit rot): the scan trusts a row its file still matches (manifest.stale_rows), the decoding drops them and the
    # fold has no validation image left (train.run.check_sides; the data's checks refuse an empty fold before the
    # cache is planned, and every other option's refusal comes before it too)
    import os

    from imgcls import manifest as mf
    rot = make_image_folder(tmp_path / "rot", {"a": 3, "b": 3}, size=(16, 16))
    table = mf.load(rot, scan=True)
    table["fold"] = [0 if p.endswith("000.png") else 1 for p in table["path"]]
    mf.write(table, tmp_path / "rot.csv")
    for p in rot.glob("*/000.png"):
        st = p.stat()
        p.write_bytes(b"\0" * st.st_size)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    calls.append(["train", str(tmp_path / "rot.csv"), "--model", "test_resnet", "--no-pretrained", "--img-size", "32",
                  "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "runs"), "--aug", "none", "--no-plots",
                  "--epochs", "1", "--batch-size", "4", "--folds", "0", "--cache", "disk", "--name", "lost_val",
                  "--quiet"])
    rows = sorted(p.relative_to(tmp_path).as_posix() for p in src.rglob("*.png"))
    mem = cache_room(tmp_path)[0]
    if mem is not None:
        # a --cache ram over the memory available: the same small image in as many rows as it takes at 4096 px, of
        # the total memory (rank 0 measures what is available after the runs before it, when others may have freed
        # some: a cache that fits is decoded, GiBs)
        total = next(int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal:"))
        n = int(CACHE_SHARE * max(mem, total) / (4096 * 4096 * 3)) + 20
        # every image of `src` in turn: its copies go to one side whole, and the --val-split draw has both sides
        # (train refuses a draw with no validation image before it plans the cache)
        cycled = (rows[k % len(rows)] for k in range(n))
        (tmp_path / "big.csv").write_text("path,label\n" + "".join(f"{p},{p.split('/')[1]}\n" for p in cycled))
        calls.append(["train", str(tmp_path / "big.csv"), "--model", "test_resnet", "--no-pretrained", "--img-size",
                      "4096", "--cache", "ram", "--device", "cpu", "--out", str(tmp_path / "refused"), "--quiet"])
    script = tmp_path / "cli.py"
    script.write_text(CLI_SCRIPT)
    before = (done / "config.yaml").read_text()
    with RunLock(done):              # another train holds the finished run's folder
        r = run_launch(launch + [str(script), str(tmp_path / "rank"), json.dumps(calls), json.dumps([3, 4]),
                         json.dumps({"1:1": 5})],
                       env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}").read_text()) for rank in (0, 1)]
    return tmp_path, ranks, done, before, src


@pytest.mark.slow
def test_torchrun_two_processes_gloo_then_sam_in_the_same_processes(one_launch):
    """Two `train` runs in one torchrun launch (2 processes, gloo; one_launch's): a launch is most of the time (each
    process imports torch and timm), so the runs share one. The first trains as DDP; the second, SAM with
    grad-accum, runs its first pass without all-reduce on each process and syncs the second (a hang or a rank
    mismatch would fail or time out here). tune's trials under torchrun are runs in the same processes: each run
    left the process group (destroy_process_group) and the next made it again, which can hang (two runs in one
    torchrun process hung once in three tries; pytorch issues 74666, 55967): the group now stays for the next run
    and is left at exit."""
    tmp_path, ranks, _, _, src = one_launch
    tmp = tmp_path / "tmpdir"        # torchrun's TMPDIR
    for rank in ranks:
        assert [code for code, _ in rank["said"][:2]] == [0, 0], rank["said"]
        assert rank["group"][:2] == [0, 0], rank          # one process group for both runs
    said = [" ".join(rank["said"][0][1].split()) for rank in ranks]        # the first run's, per rank
    assert said[0].count(f"read {src} as layout") == 1 and said[0].count("training test_resnet") == 1, said[0]
    assert "as layout" not in said[1] and "training" not in said[1], said[1]      # rank 0 alone prints
    assert list(tmp.glob("imgcls-cache-*")) == []              # each run's image cache is removed at its end

    run = tmp_path / "runs" / "ddp"
    log = (run / "train.log").read_text()
    assert "x2 processes (DDP)" in log
    assert "one memmap shared by the 2 processes" in log       # one decoded-image cache per machine
    m = pd.read_csv(run / "metrics.csv")
    assert list(m["epoch"]) == [1, 2]
    assert len(list(run.glob("events.out.tfevents.*"))) == 1     # trackers (callbacks) run on rank 0 only
    # each process takes half of the 18 training images per epoch (9; the lone 9th is dropped, a batch of one
    # breaks BatchNorm): 2 updates of batch 4 per epoch, not the 5 a single process would make
    st = torch.load(run / "last.pt", weights_only=True)["train_state"]["optimizer"]["state"]
    assert int(next(iter(st.values()))["step"]) == 2 * 2

    run = tmp_path / "runs" / "ddp_sam"
    assert "SAM (rho 0.05) over adamw" in (run / "train.log").read_text()
    assert list(pd.read_csv(run / "metrics.csv")["epoch"]) == [1]
    ck = torch.load(run / "last.pt", weights_only=True)
    # 9 images per process, batch 2 -> 4 batches (the lone 9th dropped), 2 per update -> 2 updates; BatchNorm saw
    # each batch once
    assert int(next(iter(ck["train_state"]["optimizer"]["state"].values()))["step"]) == 2
    assert int(ck["raw_state_dict"]["bn1.num_batches_tracked"]) == 4


def test_an_up_front_refusal_is_said_by_one_process_of_a_machine(tmp_path, monkeypatch):
    """Under torchrun every process runs train's up-front checks (a missing data path, --name of a taken folder, a
    --resume folder that is no run) before the process group exists: each printed the same error line, so the user
    read it once per process (or once or twice, as torchrun's SIGTERM to the others raced their print). The first
    process of a machine (LOCAL_RANK 0) says it at once; the others wait for it to end (torchrun then stops them:
    here the wait raises as that SIGTERM would) and say nothing. torchrun's environment is set for one process at a
    time: no process group is needed this early."""
    from typer.testing import CliRunner

    from conftest import assert_said_once_per_machine
    from imgcls.cli import app
    data = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(16, 16))
    out = tmp_path / "runs"
    (out / "taken").mkdir(parents=True)
    calls = [["train", str(tmp_path / "missing.csv"), "--out", str(out)],
             ["train", str(data), "--out", str(out), "--name", "taken"],
             ["train", "--resume", str(tmp_path / "no_run")]]
    assert_said_once_per_machine(monkeypatch, calls)
    monkeypatch.setenv("LOCAL_RANK", "0")        # the first process of another machine says it too
    r = CliRunner().invoke(app, calls[0])
    assert r.exit_code == 2 and r.output.count("error:") == 1


@pytest.mark.slow
def test_torchrun_a_taken_name_is_one_line_and_every_process_ends(tmp_path):
    src = make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(16, 16))
    (tmp_path / "runs" / "taken").mkdir(parents=True)
    launch, env = torchrun(2, tmp_path)
    r = run_launch(launch + ["-m", "imgcls", "train", str(src), "--model", "test_resnet", "--no-pretrained",
                             "--device", "cpu", "--out", str(tmp_path / "runs"), "--name", "taken"],
                   env=env, timeout=120)
    said = r.stdout + r.stderr
    assert r.returncode != 0 and said.count("error:") == 1 and "run folder" in said, said[-3000:]


def _stopped_by_torchrun(ranks, call: int) -> str:
    """A call every process fails alike (one_launch's `stopped`): rank 0 says one error line, exit 2, without
    waiting; rank 1 waits (>= 5 s asked) for rank 0 to end, is stopped there as torchrun stops it (exit 143) and says
    nothing: one error line across the machine. Returns rank 0's output, on one line."""
    said = [[*ranks[rank]["said"][call], ranks[rank]["waits"][call]] for rank in (0, 1)]
    assert said[0][0] == 2 and said[0][1].count("error:") == 1 and said[0][2] == [], said
    assert said[1][0] == 143 and said[1][1] == "" and said[1][2] and said[1][2][0] >= 5, said
    return " ".join(said[0][1].split())


@pytest.mark.slow
def test_torchrun_shared_cache_removed_when_the_run_fails(one_launch):
    """The decoded-image memmap every process maps ($TMPDIR/imgcls-cache-*.npy and its .errors.json) goes however
    the run ends, not only on success (it was removed at the run's successful end): here fold 0 has no validation
    image left once its images, broken after the manifest's scan, fail to decode (one line, exit 2; one_launch's
    fourth call, in the processes of the runs before it), after the cache was built and mapped (the images found
    unreadable as they decoded into it, said: a refusal that moved before the cache would test nothing here, as the
    --head-weights count mismatch this test used did once it was refused up front). The run folder the refusal
    came after goes with it (its train.log held the cache's line)."""
    tmp_path, ranks, _, _, _ = one_launch
    said = _stopped_by_torchrun(ranks, 3)
    assert "no validation images in fold 0" in said and said.count("skipped unreadable image") == 2, said
    assert "are all unreadable now (read at the scan, broken or deleted since)" in said, said
    assert not (tmp_path / "runs" / "lost_val").exists()       # refused before any epoch: rundir.unclaim_run_dir
    assert list((tmp_path / "tmpdir").glob("imgcls-cache-*")) == []      # torchrun's TMPDIR


@pytest.mark.slow
def test_torchrun_a_refusal_of_rank_0_is_one_line(one_launch):
    """What rank 0 alone checks once the process group is up (the run folder it claims, the decoded-image cache
    against memory: tdata.plan_cache) reaches the other processes as the one error they all stop with: each printed
    it. Rank 0 says it; here a --cache ram over the memory available (one_launch's last call: the same small image
    in as many rows as it takes at 4096 px)."""
    tmp_path, ranks, _, _, _ = one_launch
    if len(ranks[0]["said"]) < 5:
        pytest.skip("no /proc/meminfo: the cache is not checked against memory here")
    assert "--cache ram: the decoded-image cache" in _stopped_by_torchrun(ranks, 4)
    assert list((tmp_path / "refused").glob("*")) == []       # refused before the run folder is made


@pytest.mark.slow
def test_torchrun_a_finished_run_in_use_refuses_its_moved_data_on_every_process(one_launch):
    """`torchrun ... train NEW --resume RUN` on a finished run whose data moved records the new path on rank 0, under
    the run's lock: another train holding the run folder was a refusal of rank 0 alone, while the other processes
    returned as if the path were recorded. Every process now ends with the same one line, exit 2 (each rank's
    outcome is read from its own record: the CLI called in each torchrun process, one_launch's last call)."""
    _, ranks, run, before, _ = one_launch
    said = {rank: [str(ranks[rank]["said"][2][0]), " ".join(ranks[rank]["said"][2][1].split())] for rank in (0, 1)}
    code, line = said[0][0], said[0][1][said[0][1].index("error:"):]     # rank 0's info lines before it
    assert code == "2" and line.count("error:") == 1 and "in use by another imgcls train" in line, said
    assert "`imgcls runs` (Python: imgcls.runs.run_runs()) shows it running" in line and "--name" not in line, said      # the run asked for
    assert said[1] == [code, line], said
    assert (run / "config.yaml").read_text() == before


@pytest.mark.timeout(60)        # a process left alive holds the pipes: run_launch then waits for its 120 s
def test_a_launch_past_its_timeout_is_killed_with_every_process_it_started():
    """The torchrun tests ran their launch with subprocess.run(timeout=...), which kills the launcher alone: a rank
    that hung on a collective outlived its test, idle (one was found 90 minutes later). run_launch kills the
    launch's whole session, and the processes it started in sessions of their own (torchrun's ranks: killpg did not
    reach them, and the test waited on the pipes they held)."""
    import subprocess
    import sys
    child = "import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; " \
            "time.sleep(120)'], start_new_session=True); print(p.pid, flush=True); time.sleep(120)"
    with pytest.raises(subprocess.TimeoutExpired) as e:
        run_launch([sys.executable, "-c", child], timeout=3)
    pid = int(e.value.stdout.split()[0])

    def state() -> str:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return "gone"
    import time
    until = time.monotonic() + 10          # SIGKILL sent: the kernel takes a moment to end it
    while state() not in ("gone", "Z", "X") and time.monotonic() < until:
        time.sleep(0.1)
    assert state() in ("gone", "Z", "X"), state()     # ended (a zombie where nothing reaps it), not sleeping
