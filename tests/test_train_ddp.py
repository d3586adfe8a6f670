"""DDP on CPU: torchrun, gloo backend, 2 processes (a slower test, ~30 s)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import make_image_folder, torchrun


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    src = make_image_folder(tmp_path / "raw", {"a": 12, "b": 12}, size=(40, 40))
    launch, env = torchrun(2, tmp_path)
    tmp = Path(env["TMPDIR"])
    cmd = launch + ["-m", "imgcls", "train", str(src), "--model", "test_resnet", "--no-pretrained", "--img-size", "32",
                    "--epochs", "2", "--batch-size", "4", "--workers", "0", "--device", "cpu", "--val-split", "0.25",
                    "--out", str(tmp_path / "runs"), "--name", "ddp", "--aug", "none", "--tracker", "tensorboard"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    said = r.stdout + r.stderr
    assert said.count(f"read {src} as layout") == 1 and said.count("training test_resnet") == 1, said[-3000:]
    run = tmp_path / "runs" / "ddp"
    log = (run / "train.log").read_text()
    assert "x2 processes (DDP)" in log
    assert "one memmap shared by the 2 processes" in log       # one decoded-image cache per machine
    assert list(tmp.glob("imgcls-cache-*")) == []              # and it is removed at the end
    m = pd.read_csv(run / "metrics.csv")
    assert list(m["epoch"]) == [1, 2]
    assert len(list(run.glob("events.out.tfevents.*"))) == 1     # trackers (callbacks) run on rank 0 only
    # each process takes half of the 18 training images per epoch (9; the lone 9th is dropped, a batch of one
    # breaks BatchNorm): 2 updates of batch 4 per epoch, not the 5 a single process would make
    st = torch.load(run / "last.pt", weights_only=True)["train_state"]["optimizer"]["state"]
    assert int(next(iter(st.values()))["step"]) == 2 * 2


@pytest.mark.slow
def test_torchrun_two_processes_sam_with_grad_accum(tmp_path):
    """SAM under DDP: the first pass runs without all-reduce on each process, the second is synced; a hang or a
    rank mismatch would fail or time out here."""
    src = make_image_folder(tmp_path / "raw", {"a": 12, "b": 12}, size=(40, 40))
    launch, env = torchrun(2, tmp_path)
    cmd = launch + ["-m", "imgcls", "train", str(src), "--model", "test_resnet", "--no-pretrained", "--img-size", "32",
                    "--epochs", "1", "--batch-size", "2", "--grad-accum", "2", "--optimizer", "sam", "--workers", "0",
                    "--device", "cpu", "--val-split", "0.25", "--out", str(tmp_path / "runs"), "--name", "ddp_sam",
                    "--aug", "none", "--quiet"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run = tmp_path / "runs" / "ddp_sam"
    assert "SAM (rho 0.05) over adamw" in (run / "train.log").read_text()
    ck = torch.load(run / "last.pt", weights_only=True)
    # 9 images per process, batch 2 -> 4 batches (the lone 9th dropped), 2 per update -> 2 updates; BatchNorm saw
    # each batch once
    assert int(next(iter(ck["train_state"]["optimizer"]["state"].values()))["step"]) == 2
    assert int(ck["raw_state_dict"]["bn1.num_batches_tracked"]) == 4


@pytest.mark.slow
def test_torchrun_shared_cache_removed_when_the_run_fails(tmp_path):
    """The decoded-image memmap every process maps ($TMPDIR/imgcls-cache-*.npy and its .errors.json) goes however
    the run ends, not only on success: here every fold lacks training images (one line, exit 2) after the cache
    is built."""
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(40, 40))
    rows = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.png"))
    (src / "folds.csv").write_text("path,label,fold\n" + "".join(f"{p},{p.split('/')[0]},0\n" for p in rows))
    launch, env = torchrun(2, tmp_path)
    tmp = Path(env["TMPDIR"])
    cmd = launch + ["-m", "imgcls", "train", str(src / "folds.csv"), "--model", "test_resnet", "--no-pretrained",
                    "--img-size", "32", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--device", "cpu",
                    "--folds", "all", "--cache", "disk", "--out", str(tmp_path / "runs"), "--quiet"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode != 0 and "no training images in fold 0" in r.stdout + r.stderr, r.stderr[-3000:]
    assert list(tmp.glob("imgcls-cache-*")) == []
