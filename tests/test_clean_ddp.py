"""clean under torchrun (gloo on CPU, 2 processes): the embedding / thumbnail / feature passes split by rank give the
manifest one process gives."""
from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from test_clean import dirty  # noqa: F401  (fixture)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_torchrun_two_processes_give_the_one_process_manifest(dirty, tmp_path):  # noqa: F811
    def clean(out, procs):
        env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", IMGCLS_CACHE=str(tmp_path / f"cache{procs}"),
                   PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH", "")])))
        launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)]
                  if procs > 1 else [sys.executable])
        cmd = launch + ["-m", "imgcls", "clean", str(dirty), "--out", str(out), "--device", "cpu", "--embed-size",
                        "64", "--duplicates", "drop"]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        said = " ".join((r.stdout + r.stderr).split())
        assert ("2 processes (torchrun)" in said) == (procs == 2), said[-2000:]
        return pd.read_csv(out / "manifest.csv", keep_default_na=False)
    one = clean(tmp_path / "one", 1)
    two = clean(tmp_path / "two", 2)
    # scores within atol (the ranks' batches differ in size, and a kernel may add in another order: last-bit
    # differences), read as numbers: the blank score of an unreadable row makes the column text, compared exactly
    for m in (one, two):
        m["ood_score"] = pd.to_numeric(m["ood_score"].replace("", float("nan")))
    pd.testing.assert_frame_equal(one.drop(columns="root"), two.drop(columns="root"), atol=1e-5)
    assert (one["reason"] == "near_duplicate").any()
    # each rank embedded its share into shards, rank 0 merged them into the cache and removed them
    cache = tmp_path / "cache2" / "embeddings"
    assert (cache / "tf_efficientnet_lite0_64.npz").exists() and not list(cache.glob("*.parts"))
