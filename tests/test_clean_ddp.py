"""clean under torchrun (gloo on CPU, 2 processes): the embedding / thumbnail / feature passes split by rank give the
manifest one process gives."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import run_launch, torchrun


LAUNCH_SCRIPT = """
import gc, json, os, sys, time
import numpy as np
from typer.testing import CliRunner
from imgcls.cli import app
from imgcls.train.dist import init_distributed
d = init_distributed("cpu")
# gather_rows: one launch, each piece size in turn on fresh arrays (test_gather_rows_fills_rank_zero_in_pieces)
rows = np.arange(1, 23, 2)                       # the rows to fill, the same on every rank; each fills its share
orig = d.gather
for chunk_bytes in json.loads(sys.argv[2]):
    out, done = np.zeros((23, 4, 3), np.uint8), np.zeros(23, bool)
    for i in d.mine(rows):
        if i % 5:                                # every fifth row unreadable: not done, not sent
            out[i], done[i] = i, True
    sent = []
    d.gather = lambda obj: sent.append(obj) or orig(obj)
    d.gather_rows(out, rows, done=done, chunk_bytes=chunk_bytes)
    if d.main:
        np.savez(f"{sys.argv[1]}_{chunk_bytes}.npz", out=out, done=done, calls=len(sent),
                 own=sum(s is not None for s in sent))
d.gather = orig
# then `clean` calls in the same processes, the CLI called in turn in each (the process group stays for them): what
# each rank said in each
said, late = [], json.loads(sys.argv[4])
for i, call in enumerate(json.loads(sys.argv[3])):
    time.sleep(late.get(f"{os.environ['RANK']}:{i}", 0))        # a process that starts this call late
    r = CliRunner().invoke(app, call)
    said.append([r.exit_code, r.output])
with open(f"{sys.argv[1]}_clean{os.environ['RANK']}.json", "w") as f:
    json.dump(said, f)
gc.freeze()      # as imgcls's own entry point (imgcls.cli.main): no exit-time collection of torch's objects
"""
CHUNKS = {24: 3, 1 << 27: 1}        # gather_rows' piece size: gather calls (6 rows a rank at most, 2 a piece)


def clean_args(src, out) -> list[str]:
    return ["clean", str(src), "--out", str(out), "--device", "cpu", "--embed-size", "64", "--duplicates", "drop",
            "--embed-precision", "fp32"]


@pytest.fixture(scope="module")
def one_launch(tmp_path_factory):
    """One torchrun launch (2 processes, gloo; a launch is most of the time: each process imports torch and timm):
    gather_rows at each of CHUNKS' piece sizes, then in the same processes `clean` of test_clean's dirty set, and
    two --exact-only cleans with no embedding pass (no collective): the first into three/ with rank 0 starting 5 s
    late, the second of three/'s manifest into four/. Returns its folder (r_<chunk>.npz: rank 0's gathered rows;
    r_clean<rank>.json: each rank's exit code and output in each call; two/: the first clean's output; cache2/: its
    IMGCLS_CACHE) and the data."""
    from test_clean import make_dirty
    tmp_path = tmp_path_factory.mktemp("clean_ddp")
    dirty = make_dirty(tmp_path / "raw")
    script = tmp_path / "launch.py"
    script.write_text(LAUNCH_SCRIPT)
    path = os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    launch, env = torchrun(2, tmp_path, IMGCLS_CACHE=str(tmp_path / "cache2"), PYTHONPATH=path)
    exact = ["--device", "cpu", "--exact-only", "--no-ood", "--conflicts", "majority"]
    calls = [clean_args(dirty, tmp_path / "two"),
             ["clean", str(dirty), "--out", str(tmp_path / "three"), *exact],
             ["clean", str(tmp_path / "three" / "manifest.csv"), "--out", str(tmp_path / "four"), *exact]]
    r = run_launch(launch + [str(script), str(tmp_path / "r"), json.dumps(list(CHUNKS)), json.dumps(calls),
                             json.dumps({"0:1": 5})], env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return tmp_path, dirty


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_torchrun_two_processes_give_the_one_process_manifest(one_launch, tmp_path, monkeypatch):
    launched, dirty = one_launch

    def clean(out, procs):
        if procs == 1:
            # the one-process manifest made in this process, on one thread as each torchrun process: a third start
            # of Python, torch and timm was a third of the test's time
            import torch
            from typer.testing import CliRunner

            from imgcls.cli import app
            monkeypatch.setenv("IMGCLS_CACHE", str(tmp_path / "cache1"))
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                r = CliRunner().invoke(app, clean_args(dirty, out))
            finally:
                torch.set_num_threads(threads)
            assert r.exit_code == 0, r.output[-3000:]
            said = " ".join(r.output.split())
        else:       # one_launch's, each rank's output in turn
            ranks = [json.loads((launched / f"r_clean{rank}.json").read_text())[0] for rank in (0, 1)]
            assert [code for code, _ in ranks] == [0, 0], [output[-3000:] for _, output in ranks]
            said = " ".join(" ".join(output for _, output in ranks).split())
        assert ("2 processes (torchrun)" in said) == (procs == 2), said[-2000:]
        assert said.count(" as layout ") == 1, said[-2000:]      # rank 0 alone prints (imgcls.console.main_process)
        return pd.read_csv(out / "manifest.csv", keep_default_na=False)
    one = clean(tmp_path / "one", 1)
    two = clean(launched / "two", 2)
    # scores within atol (the ranks' batches differ in size, and a kernel may add in another order: last-bit
    # differences), read as numbers: the blank score of an unreadable row makes the column text, compared exactly
    for m in (one, two):
        m["ood_score"] = pd.to_numeric(m["ood_score"].replace("", float("nan")))
    pd.testing.assert_frame_equal(one.drop(columns="root"), two.drop(columns="root"), atol=1e-5)
    assert (one["reason"] == "near_duplicate").any()
    # each rank embedded its share into shards, rank 0 merged them into the cache and removed them
    cache = launched / "cache2" / "embeddings"
    assert (cache / "tf_efficientnet_lite0_64.npz").exists() and not list(cache.glob("*.parts"))


@pytest.mark.slow
@pytest.mark.timeout(400)         # one_launch's clean too, where this test alone runs
def test_a_rank_leaves_clean_once_rank_0_has_written_its_output(one_launch):
    # with no embedding pass no collective holds a rank other than 0 until rank 0 has searched and written: it left
    # first, and its next call in these processes (a clean or a train of that manifest) read the output before it
    # was there, refused alone ('three/manifest.csv does not exist') and left the ranks' calls out of step
    launched, _ = one_launch
    ranks = [json.loads((launched / f"r_clean{rank}.json").read_text())[1:] for rank in (0, 1)]
    for calls in ranks:
        assert [code for code, _ in calls] == [0, 0], [output[-2000:] for _, output in calls]
    assert (launched / "four" / "manifest.csv").is_file()


@pytest.mark.parametrize("tie", [False, True])
def test_exact_only_ranks_embed_only_when_a_group_ties(tmp_path, monkeypatch, tie):
    # a rank other than 0 cannot see rank 0's groups: with --exact-only it embeds (its share, for majority-knn's tie
    # vote) only when it can foresee a tie itself, and returns before searching and writing
    from imgcls import links
    from imgcls.clean import CleanConfig, run_clean
    from imgcls.train import dist
    rng = np.random.default_rng(0)
    for label in "ab":
        (tmp_path / "data" / label).mkdir(parents=True)
    pic = Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
    pic.save(tmp_path / "data" / "a" / "x.png")
    pic.save(tmp_path / "data" / ("b" if tie else "a") / "copy.png")      # a byte copy: across labels, or within
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(tmp_path / "data" / "b" / "y.png")
    calls = []
    monkeypatch.setattr(dist, "init_distributed", lambda device: dist.Dist(rank=1, world=2))
    monkeypatch.setattr(links.NearDuplicates, "embeddings",
                        lambda self, df, workers=1: calls.append(len(df)) or np.zeros((len(df), 4), np.float32))
    run_clean(tmp_path / "data", tmp_path / "out", CleanConfig(near_dup=False, ood=False, device="cpu"))
    assert calls == ([3] if tie else []) and not (tmp_path / "out").exists()


@pytest.mark.timeout(400)         # one_launch's clean too, where this test alone runs
def test_gather_rows_fills_rank_zero_in_pieces(one_launch):
    # two rows a piece (several calls), or one piece: both in one torchrun launch (a launch is most of the time;
    # one_launch's, before its clean)
    tmp_path, _ = one_launch
    rows = np.arange(1, 23, 2)
    want_done = np.isin(np.arange(23), rows) & (np.arange(23) % 5 != 0)
    for chunk_bytes, calls in CHUNKS.items():
        got = np.load(tmp_path / f"r_{chunk_bytes}.npz")
        assert (got["done"] == want_done).all(), chunk_bytes
        assert (got["out"][:, 0, 0] == np.where(want_done, np.arange(23), 0)).all(), chunk_bytes
        assert int(got["calls"]) == calls, chunk_bytes
        assert int(got["own"]) == 0, chunk_bytes                     # rank 0 never sends its own share


def test_a_refusal_every_process_hits_is_said_by_one_process_of_a_machine(tmp_path, monkeypatch):
    """Under torchrun every clean process runs the same checks on the same options and files (a missing data path,
    --out inside the data, a missing --embedder-weights) and each printed the same error line, as train's did before
    c69f6cf. The first process of a machine (LOCAL_RANK 0) says it at once; the others wait for it to end (torchrun
    then stops them: here the wait raises as that SIGTERM would) and say nothing. The process group is left out
    (init_distributed gives the rank the environment names)."""
    from conftest import assert_said_once_per_machine, make_image_folder
    from imgcls.train import dist
    data = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(16, 16))
    calls = [["clean", str(tmp_path / "missing"), "--out", str(tmp_path / "out")],
             ["clean", str(data), "--out", str(data / "a" / "out"), "--exact-only", "--no-ood"],
             ["clean", str(data), "--out", str(tmp_path / "out"), "--embedder-weights", str(tmp_path / "no.pth")]]

    def rank_of(mp, rank):
        mp.setattr(dist, "init_distributed", lambda device, r=rank: dist.Dist(rank=r, world=2, local_rank=r))

    assert_said_once_per_machine(monkeypatch, calls, rank_of)
    assert not (tmp_path / "out").exists() and not (data / "a" / "out").exists()


def test_main_finishes_lets_the_others_go_once_rank_0_left_whichever_way(monkeypatch):
    # the store rank 0 speaks through, as a dict: rank 0 sets its key whichever way it leaves (a refusal after the
    # passes: the others, returned, would wait for good); a rank other than 0 waits for it only when it returns
    # (raising, it leaves at once: rank 0 may wait for it in a collective)
    from imgcls.errors import UserError
    from imgcls.train import dist

    class Store(dict):
        def set(self, key, value):
            self[key] = value

        def check(self, keys):
            asked.append(keys)
            return all(k in self for k in keys)

    store, asked, slept = Store(), [], []
    monkeypatch.setattr(dist, "_store", lambda: store)

    def rank_0_leaves(seconds):         # while rank 1 waits
        slept.append(seconds)
        store.set(asked[-1][0], "1")

    monkeypatch.setattr(dist.time, "sleep", rank_0_leaves)
    monkeypatch.setitem(dist._GROUP, "steps", 0)
    rank0, rank1 = dist.Dist(rank=0, world=2), dist.Dist(rank=1, world=2)
    with pytest.raises(UserError):
        with rank0.main_finishes():
            raise UserError("refused after the passes")
    with rank1.main_finishes():          # step 2: rank 0 has not left it yet
        pass
    assert list(store) == ["imgcls/main-left/1", "imgcls/main-left/2"] and slept == [dist.MAIN_POLL_S]
    asked.clear()
    with pytest.raises(UserError):
        with rank1.main_finishes():
            raise UserError("refused on this rank")
    assert asked == [] and dist._GROUP["steps"] == 3
