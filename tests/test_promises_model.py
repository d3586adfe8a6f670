"""Issue 15, model side: runs are never lost or shared, metadata and YAML read from files are checked, a user's
mistake with a run, a checkpoint or a spec is one line with exit 2 (train / predict / ensemble / export)."""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from conftest import make_image, make_image_folder, make_tiny_run, tree_snapshot
from imgcls.cli import app
from imgcls.errors import UserError

runner = CliRunner()
TINY = ["--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--batch-size", "8", "--workers", "0", "--device", "cpu",
        "--aug", "none", "--val-split", "0.3", "--no-plots"]


def one_error_line(r) -> str:
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert len(errors) == 1, r.output
    assert r.output.rstrip().endswith(errors[0])
    return errors[0]


class _Marker:
    """Pickled into hostile files: unpickling it (anything but weights_only loading) would create the marker."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.fixture
def data(tmp_path):
    return make_image_folder(tmp_path / "raw", {"a": 10, "b": 10}, size=(40, 40))


def train(data, out, *args):
    return runner.invoke(app, ["train", str(data), *TINY, "--out", str(out), *map(str, args)])


# --- run names and run folders (items 2, 3) --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../..", "..", ".", "a/b", "../escape", "/abs", ""])
def test_run_name_is_one_path_component(data, tmp_path, name):
    before = tree_snapshot(tmp_path)
    line = one_error_line(train(data, tmp_path / "runs", "--name", name, "--epochs", "1"))
    assert "--name" in line and "plain folder name" in line
    assert tree_snapshot(tmp_path) == before                 # nothing written anywhere, the data untouched


def test_existing_run_name_is_an_error_unless_exist_ok(data, tmp_path, monkeypatch):
    from imgcls.train import loop
    runs = tmp_path / "runs"
    (runs / "taken").mkdir(parents=True)
    (runs / "taken" / "notes.txt").write_text("mine")
    line = one_error_line(train(data, runs, "--name", "taken", "--epochs", "1"))
    assert "already exists" in line and "--exist-ok" in line
    # a folder holding a run is never trained over, --exist-ok or not
    (runs / "done").mkdir()
    (runs / "done" / "last.pt").write_bytes(b"a run")
    line = one_error_line(train(data, runs, "--name", "done", "--epochs", "1", "--exist-ok"))
    assert "already holds a run" in line and "--resume" in line
    assert (runs / "done" / "last.pt").read_bytes() == b"a run"
    # --exist-ok trains into the existing folder that holds no run (the training itself stubbed: fast)
    seen = []
    monkeypatch.setattr(loop, "train_run", lambda cfg, meta, fd, d, *a, **k: (seen.append(d), {
        "best_f1": 0.0, "best_epoch": 1, "val_predictions": None, "history": []})[1])
    r = train(data, runs, "--name", "taken", "--epochs", "1", "--exist-ok")
    assert r.exit_code == 0, r.output
    assert seen == [runs / "taken"] and (runs / "taken" / "notes.txt").read_text() == "mine"
    assert yaml.safe_load((runs / "taken" / "config.yaml").read_text())["name"] == "taken"


def test_exist_ok_refuses_the_users_own_files_of_a_runs_names(data, tmp_path):
    """train --name mine --exist-ok (a folder holding no run, the user's own) wrote its report.html, config.yaml
    and the rest over the user's files of those names, exit 0, without a word; every other step refuses its --out's
    files that are not its own. A file (or fold_N folder) of a run's name there is now refused in one line before
    the work, nothing touched; every file a run writes is among those names. A run's own record whose checkpoints
    tune --keep removed is refused too (rundir.earlier_run_record: never trained over)."""
    from imgcls.train.rundir import RUN_FILES, check_run_dir_free
    runs = tmp_path / "runs"
    mine = runs / "mine"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    for theirs in ("report.html", "fold_0/x.txt"):
        (mine / theirs).parent.mkdir(exist_ok=True)
        (mine / theirs).write_text("the user's own")
    before = tree_snapshot(tmp_path)
    line = one_error_line(train(data, runs, "--name", "mine", "--epochs", "1", "--exist-ok"))
    assert f"--name {mine}: fold_0, report.html are not from an earlier imgcls train run" in line, line
    assert "choose another --name (Python: name=), or move them away first" in line, line
    assert tree_snapshot(tmp_path) == before
    (mine / "report.html").unlink()
    (mine / "fold_0" / "x.txt").unlink()
    (mine / "fold_0").rmdir()
    r = train(data, runs, "--name", "mine", "--epochs", "1", "--exist-ok")
    assert r.exit_code == 0, r.output
    assert (mine / "notes.txt").read_text() == "mine"
    assert {p.name for p in mine.iterdir()} - {"notes.txt"} <= set(RUN_FILES)     # what it wrote: a run's names
    for ck in ("best.pt", "last.pt", "last_state.json"):       # as tune --keep leaves a trial it did not keep
        (mine / ck).unlink()
    with pytest.raises(UserError, match="holds an earlier run's record"):     # its record: never trained over
        check_run_dir_free(runs, "mine", exist_ok=True)


def test_a_tune_study_folder_is_no_run_folder_exist_ok_or_not(data, tmp_path):
    """train --out outputs/tune --name STUDY said 'already exists; ... or pass --exist-ok to train into it', and with
    --exist-ok trained into a study whose first trial was still running (trials.csv and study.db there, no
    report.html yet: none of a run's names): its config.yaml and metrics.csv beside trials.csv made
    outputs.output_kind call the study a train run (that kind is looked at first, rightly: tune never writes
    config.yaml or metrics.csv at a study's top). A folder holding another step's output is now refused, --exist-ok
    or not, one line before the work, nothing touched."""
    from imgcls.outputs import STUDY_DB, TRIALS_CSV, output_kind
    study = tmp_path / "tune" / "s"
    (study / "trial_0000").mkdir(parents=True)
    (study / TRIALS_CSV).write_text("trial,state,value\n0,running,\n")
    (study / STUDY_DB).write_bytes(b"")
    before = tree_snapshot(tmp_path)
    for exist_ok in ((), ("--exist-ok",)):
        line = one_error_line(train(data, study.parent, "--name", "s", "--epochs", "1", *exist_ok))
        assert f"run folder {study} holds an imgcls tune study; a run is trained into a folder of its own: " \
               "choose another --name (Python: name=)" in line, line
        assert tree_snapshot(tmp_path) == before
    assert output_kind(study) == "tune study"


def test_a_run_folder_with_a_trials_csv_of_the_users_is_a_train_run(tmp_path):
    """outputs.output_kind looks for a train run before a tune study: tune never writes config.yaml + metrics.csv at a
    study's top (and train refuses a study folder as its --name), so a folder holding both is a run with a user's
    own trials.csv."""
    from imgcls.outputs import TRIALS_CSV, output_kind
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: resnet10t\n")
    (run / "metrics.csv").write_text("epoch,val_macro_f1\n1,0.5\n")
    (run / TRIALS_CSV).write_text("my own notes\n")
    assert output_kind(run) == "train run"


def _claim(args):
    out, name, barrier = args
    from imgcls.train.rundir import claim_run_dir
    barrier.wait()
    try:
        return str(claim_run_dir(Path(out), name, "test_resnet")[0])
    except UserError as e:
        return f"error: {e}"


def test_concurrent_claims_never_share_a_run_folder(tmp_path):
    """Four processes claim at the same instant: default names are all distinct; one given name goes to one."""
    ctx = mp.get_context("fork")
    for name in (None, "same"):
        barrier = ctx.Manager().Barrier(4)
        with ctx.Pool(4) as pool:
            got = pool.map(_claim, [(tmp_path / str(name), name, barrier)] * 4)
        dirs = [g for g in got if not g.startswith("error:")]
        if name is None:
            assert len(set(dirs)) == 4, got
        else:
            assert dirs == [str(tmp_path / "same" / "same")], got
            assert sum("already exists" in g for g in got) == 3


def test_run_lock_is_exclusive_and_released(tmp_path):
    from imgcls.train.rundir import RunLock
    d = tmp_path / "run"
    d.mkdir()
    with RunLock(d):          # the holder named, as output_set's waiting line names it: a user can find it
        with pytest.raises(UserError, match=rf"in use by another imgcls train \(process {os.getpid()}\); wait"):
            RunLock(d).__enter__()
    with RunLock(d):                                          # released at exit
        pass
    assert sorted(os.listdir(d)) == []                        # no lock file left to clean


def test_a_run_folder_on_a_file_system_without_locks_trains_unlocked_saying_so(tmp_path, monkeypatch, capsys):
    """flock of a folder on NFS raises EBADF (the client emulates it with a POSIX lock, which needs a descriptor open
    for writing), on some file systems ENOLCK: RunLock raised it as a traceback, so train did not start there. It
    trains unlocked, saying once that a second train into the folder would not be stopped; other errors still raise."""
    import errno
    import fcntl

    from imgcls.train.rundir import RunLock
    d = tmp_path / "run"
    d.mkdir()
    raised = {"errno": errno.EBADF}

    def flock(fd, op):
        raise OSError(raised["errno"], os.strerror(raised["errno"]))
    monkeypatch.setattr(fcntl, "flock", flock)
    with RunLock(d):
        pass
    err = capsys.readouterr().err
    assert err.count("takes no lock") == 1 and "would not be stopped" in err, err
    raised["errno"] = errno.EIO
    with pytest.raises(OSError):
        RunLock(d).__enter__()


def test_default_run_names_are_unique(tmp_path):
    from imgcls.train.rundir import claim_run_dir
    dirs = {claim_run_dir(tmp_path, None, "test_resnet")[0] for _ in range(3)}
    assert len(dirs) == 3 and all(d.is_dir() and d.parent == tmp_path for d in dirs)


# --- resume keeps the record (item 5) ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(240)
def test_resume_refusals_keep_the_record_and_temp_files_are_cleaned(data, tmp_path, monkeypatch):
    from imgcls.train import TrainConfig, run_train
    from imgcls.train.checkpoint import read_checkpoint
    runs = tmp_path / "runs"
    cfg = TrainConfig(src=str(data), model="test_resnet", pretrained=False, img_size=32, batch_size=8, workers=0,
                      device="cpu", plots=False,
                      aug="none", val_split=0.3, epochs=2, out=str(runs), name="part")
    run = run_train(cfg, stop_after=1)
    record = (run / "config.yaml").read_bytes()
    # an unfinished run: another schedule (--epochs, --lr) would not be the recorded run
    for flags in (["--epochs", "5"], ["--lr", "0.1"]):
        line = one_error_line(runner.invoke(app, ["train", "--resume", str(run), *flags]))
        assert "cannot change" in line and flags[0] in line
        assert (run / "config.yaml").read_bytes() == record
    # a kill -9 during an atomic write leaves a temp file: the resume removes it
    stale = run / ".last.pt.k2x9q0ab.tmp.pt"
    stale.write_bytes(b"half")
    r = runner.invoke(app, ["train", "--resume", str(run), "--workers", "0"])   # how data is read may change
    assert r.exit_code == 0, r.output
    assert not stale.exists() and not list(run.glob(".*.tmp*"))
    assert read_checkpoint(run / "last.pt")["train_state"]["finished"]
    assert (run / "config.yaml").read_bytes() == record
    metrics = (run / "metrics.csv").read_bytes()
    # a finished run is not extended by --epochs, and nothing of it is rewritten
    line = one_error_line(runner.invoke(app, ["train", "--resume", str(run), "--epochs", "4"]))
    assert "finished its 2 epochs" in line and "imgcls train " in line and " --init-from " in line
    assert (run / "config.yaml").read_bytes() == record and (run / "metrics.csv").read_bytes() == metrics
    # the command it suggests, typed as printed (N: 1 epoch), trains a new run from the run's weights on its data, its
    # model and input size taken from it (the default model would not fit those weights)
    import shlex
    # the command, up to a Python caller's form of it
    suggested = shlex.split(line.split("imgcls ", 1)[1].split(" (Python: ")[0].replace(" N", " 1"))
    assert suggested[:2] == ["train", str(data)]           # the run's data, not the default input
    r = runner.invoke(app, [*suggested, "--val-split", "0.3", "--workers", "0", "--out", str(runs),
                            "--name", "longer"])
    assert r.exit_code == 0, r.output
    longer = yaml.safe_load((runs / "longer" / "config.yaml").read_text())
    assert longer["model"] == "test_resnet" and longer["img_size"] == 32 and longer["init_from"] == str(run)
    # a new run given the finished run's name is refused with the same way on, not --resume (which would only say
    # "already finished, nothing to resume")
    line = one_error_line(train(data, runs, "--name", "part", "--epochs", "1"))
    assert "already holds a finished run" in line and "--resume" not in line
    assert shlex.split(line.split("imgcls ", 1)[1].split(" (Python: ")[0]) == suggested[:-1] + ["N"]
    # its Python form too: TrainConfig.resolve takes the run's model and input size, as the command line does
    # (TrainConfig(init_from=...) kept the default model, refused with the run's weights)
    python = f"TrainConfig.resolve({{'src': {str(data)!r}, 'init_from': {str(run)!r}, 'epochs': N}})"
    assert f"(Python: run_train({python}))" in line, line
    resolved = eval(python, {"TrainConfig": TrainConfig, "N": 1})
    assert (resolved.model, resolved.img_size, resolved.init_from) == ("test_resnet", 32, str(run))
    # resuming it as recorded says it is finished and changes nothing, before the data is read (and decoded)
    monkeypatch.setattr("imgcls.manifest.load", lambda *a, **k: pytest.fail("data read to resume a finished run"))
    r = runner.invoke(app, ["train", "--resume", str(run)])
    assert r.exit_code == 0 and "part: already finished, nothing to resume (its last.pt says so)" in r.output, \
        r.output
    assert (run / "config.yaml").read_bytes() == record and (run / "metrics.csv").read_bytes() == metrics


def test_resume_of_a_run_in_use_is_refused(tmp_path):
    from imgcls.train.rundir import RunLock
    run = tmp_path / "runs" / "busy"
    data = make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(36, 36))
    run.mkdir(parents=True)
    from imgcls.train import TrainConfig
    TrainConfig(src=str(data), model="test_resnet", pretrained=False, img_size=32, workers=0, device="cpu",
                out=str(run.parent),
                name="busy").save(run / "config.yaml")
    record = (run / "config.yaml").read_bytes()
    with RunLock(run):
        line = one_error_line(runner.invoke(app, ["train", "--resume", str(run)]))
    assert "in use" in line and (run / "config.yaml").read_bytes() == record
    assert "wait for it to finish" in line and "--name" not in line, line     # the run asked for: no other name


# --- checkpoint metadata and hostile files (item 8, weights_only) ----------------------------------------------

def _rewrite_meta(ckpt: Path, **changes):
    obj = torch.load(ckpt, weights_only=True)
    obj["meta"].update(changes)
    torch.save(obj, ckpt)


@pytest.mark.parametrize("change, words", [
    ({"img_size": 30000}, "img_size 30000"),
    ({"img_size": "224"}, "img_size"),
    ({"mean": [0.5, 0.5]}, "mean"),
    ({"std": [0.0, 0.2, 0.2]}, "std"),
    ({"classes": ["a", "b"]}, "classes"),
    ({"decode": "exec"}, "decode"),
    ({"resize_mode": "zoom"}, "resize_mode"),
    ({"decode": "product", "heads": [{"name": f"h{i}", "classes": ["0", "1"]} for i in range(40)]}, "heads"),
    ({"decode": "product", "heads": [{"name": "x", "classes": ["0", "1", "2"]},
                                     {"name": "y", "classes": ["0"]}], "classes": ["0", "1"]}, "product"),
])
def test_checkpoint_metadata_is_range_checked_when_read(tmp_path, change, words):
    run = make_tiny_run(tmp_path / "runs" / "r")
    _rewrite_meta(run / "best.pt", **change)
    test = tmp_path / "test"
    make_image(test / "t.png")
    line = one_error_line(runner.invoke(app, ["predict", str(run), "--data", str(test), "--out",
                                              str(tmp_path / "p"), "--workers", "0"]))
    assert str(run / "best.pt") in line and words in line
    assert not (tmp_path / "p").exists()
    for argv in (["export", str(run), "--onnx"], ["ensemble", str(run), "--out", str(tmp_path / "e")]):
        one_error_line(runner.invoke(app, argv))


def test_hostile_checkpoints_and_weights_are_one_line_and_never_run(tmp_path):
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "meta": _Marker(marker)}, evil)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"state_dict": _Marker(marker)}))
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    data = make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(36, 36))
    test = tmp_path / "test"
    make_image(test / "t.png")
    for f in (evil, plain, text, empty):
        for argv in (["train", str(data), *[a for a in TINY if a != "--no-pretrained"], "--weights", str(f), "--out",
                      str(tmp_path / "runs")],
                     ["predict", str(f), "--data", str(test), "--out", str(tmp_path / "p")]):
            line = one_error_line(runner.invoke(app, argv))
            assert str(f) in line and "weights_only" not in line and "weights_only" not in line.lower()
    assert not marker.exists()
    assert not (tmp_path / "runs").exists() and not (tmp_path / "p").exists()


def test_a_truncated_checkpoint_is_named_truncated_with_the_fix(tmp_path):
    """A best.pt cut short (a copy or download that stopped) said 'not a file written by torch.save (OSError)': the
    user looked for the wrong file. A torch.save zip whose end is missing is named truncated or damaged, with the
    fix: copy it again or train again (--resume); a weight file's: copy or download it again. One line, exit 2."""
    from imgcls.weights import torch_load_safely
    run = make_tiny_run(tmp_path / "runs" / "r1", classes=("a", "b"))
    best = run / "best.pt"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    for i in range(2):
        make_image(tmp_path / "test" / f"{i}.png", seed=i)
    r = runner.invoke(app, ["predict", str(run), "--data", str(tmp_path / "test"), "--out", str(tmp_path / "p"),
                            "--workers", "0", "-q"])
    said = " ".join(one_error_line(r).split())
    assert said == (f"error: {best} is truncated or damaged (the end of its torch.save archive is missing); copy it "
                    f"again from where it was written, or train the run again (an unfinished run: imgcls train "
                    f"--resume RUN)"), r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "p").exists()
    with pytest.raises(UserError) as e:
        torch_load_safely(best)
    assert str(e.value) == (f"{best} is truncated or damaged (the end of its torch.save archive is missing); copy or "
                            f"download it again")


def test_a_file_torch_did_not_write_is_not_called_one_holding_code(tmp_path):
    """A text or HTML file saved as .pt (a 404 page a download left) was reported as "it holds Python objects other
    than tensors, refused because loading them could run code", as if it were a checkpoint with pickled classes."""
    from imgcls.weights import torch_load_safely
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "meta": _Marker(marker)}, evil)
    files = {"html.pt": b"<html><body>404 Not Found</body></html>\n", "notes.pt": b"not a checkpoint\n"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UserError) as e:
            torch_load_safely(tmp_path / name)
        assert "not a file written by torch.save" in str(e.value) and "could run code" not in str(e.value)
    with pytest.raises(UserError) as e:
        torch_load_safely(evil)
    assert "holds Python objects other than tensors" in str(e.value)
    assert not marker.exists()


# --- YAML read from files (config.yaml, spec.yaml) ---------------------------------------------------------------

def _python_tag(marker: Path) -> str:
    return f"!!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n"


def test_bad_config_yaml_is_one_line(tmp_path):
    marker = tmp_path / "MARKER"
    data = make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(36, 36))
    cases = {"tag.yaml": "model: " + _python_tag(marker), "broken.yaml": "model: [test_resnet\nepochs: 2\n",
             "type.yaml": "epochs: ten\n", "flag.yaml": "ema: maybe\n", "cols.yaml": "head_columns: 3\n",
             "list.yaml": "- epochs\n- 2\n", "latin1.yaml": None}
    for name, text in cases.items():
        f = tmp_path / name
        f.write_bytes("model: r\xe9snet\n".encode("latin-1") if text is None else text.encode())
        line = one_error_line(runner.invoke(app, ["train", str(data), "--config", str(f)]))
        assert str(f) in line or (name == "type.yaml" and "--epochs" in line)   # numbers: checked with ranges
        # the same file as a run's record: --resume refuses it, and leaves it as it was
        run = tmp_path / "runs" / name.split(".")[0]
        run.mkdir(parents=True)
        (run / "config.yaml").write_bytes(f.read_bytes())
        one_error_line(runner.invoke(app, ["train", "--resume", str(run)]))
        assert (run / "config.yaml").read_bytes() == f.read_bytes()
    assert not marker.exists()


def test_bad_ensemble_spec_is_one_line(tmp_path):
    marker = tmp_path / "MARKER"
    run = make_tiny_run(tmp_path / "runs" / "r")
    good = {"kind": "imgcls-ensemble", "name": "e", "method": "soft", "classes": ["a", "b", "c"],
            "members": [{"name": "r", "run": "../runs/r", "weight": 1.0, "checkpoints": ["../runs/r/best.pt"]}]}
    test = tmp_path / "test"
    make_image(test / "t.png")
    specs = {"tag": "kind: imgcls-ensemble\nmembers: " + _python_tag(marker),
             "broken": "kind: imgcls-ensemble\nmembers: [\n",
             "no_checkpoints": yaml.safe_dump({**good, "members": [{"name": "r", "run": "../runs/r"}]}),
             "member_not_mapping": yaml.safe_dump({**good, "members": ["r"]}),
             "bad_weight": yaml.safe_dump({**good, "members": [{**good["members"][0], "weight": "heavy"}]}),
             "bad_method": yaml.safe_dump({**good, "method": "median"})}
    for name, text in specs.items():
        d = tmp_path / "ens" / name
        d.mkdir(parents=True)
        (d / "spec.yaml").write_text(text)
        line = one_error_line(runner.invoke(app, ["predict", str(d), "--data", str(test), "--out",
                                                  str(tmp_path / "p" / name), "--workers", "0"]))
        assert "spec" in line, line
    assert not marker.exists()
    assert run.is_dir()


# --- predict --tta bare (item 14) ---------------------------------------------------------------------------------

def test_bare_tta_means_flip(tmp_path):
    import json
    run = make_tiny_run(tmp_path / "runs" / "r")
    test = tmp_path / "test"
    make_image(test / "t.png")
    for argv, views in ((["--tta"], ("flip", 2)), (["--tta", "flip+crops"], ("flip+crops", 12)),
                        ([], ("none", 1))):
        out = tmp_path / "p" / str(len(argv))
        r = runner.invoke(app, ["predict", str(run), "--data", str(test), "--out", str(out), "--workers", "0",
                                *argv])
        assert r.exit_code == 0, r.output
        summary = json.loads((out / "predict.json").read_text())
        assert (summary["tta"], summary["tta_views"]) == views
    # bare --tta before the positional run folder: the run is not taken as TTA views
    out = tmp_path / "p" / "before"
    r = runner.invoke(app, ["predict", "--tta", str(run), "--data", str(test), "--out", str(out), "--workers", "0"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "predict.json").read_text())["tta"] == "flip"
    # a run trained with --no-hflip: mirrored views are said to be unseen (and not said for its plain views)
    import yaml
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "test_resnet", "img_size": 32, "hflip": False}))
    for argv, said in ((["--tta", "flip"], True), (["--tta", "crops"], False)):
        r = runner.invoke(app, ["predict", str(run), "--data", str(test), "--out", str(tmp_path / "p" / "nf"),
                                "--workers", "0", *argv])
        assert r.exit_code == 0 and ("trained with --no-hflip" in " ".join(r.output.split())) == said, r.output
    # a mistyped value after a space is --tta's own one-line error, not click's "unexpected extra argument"
    for typo in ("flp", "scales=0.9,abc"):
        r = runner.invoke(app, ["predict", str(run), "--data", str(test), "--out", str(tmp_path / "p" / "x"),
                                "--tta", typo])
        assert r.exit_code == 2 and "--tta" in r.output and "extra argument" not in r.output, r.output


# --- ensembles: fitted weights are labelled, and cross-fitted (item 13) ----------------------------------------

def test_crossfit_never_scores_a_row_with_weights_fitted_on_it(monkeypatch):
    import numpy as np
    from imgcls.ensemble import voting as ens    # crossfit_macro_f1 calls this module's fit_weights
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    probs = [rng.dirichlet([1, 1], 40) for _ in range(2)]
    fitted_on = []
    real = ens.fit_weights
    monkeypatch.setattr(ens, "fit_weights", lambda p, yy, *a, **k: (fitted_on.append(len(yy)), real(p, yy, *a, **k))[1])
    f1, k = ens.crossfit_macro_f1(probs, y, "weighted")
    assert k == 5 and fitted_on == [32] * 5 and 0 <= f1 <= 1


def test_explicit_weights_are_not_labelled_fitted(tmp_path):
    rows = [(str(tmp_path / "d"), f"{c}/{i}.png", c) for i, c in enumerate("abc" * 8)]
    r1 = make_tiny_run(tmp_path / "runs" / "one", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "two", seed=2, val_rows=rows, val_quality=0.2)
    r = runner.invoke(app, ["ensemble", str(r1), str(r2), "--method", "weighted", "--weights", "0.7,0.3",
                            "--out", str(tmp_path / "e")])
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())
    assert "fitted on these rows" not in flat and "cross-fitted" not in flat
    spec = yaml.safe_load((tmp_path / "e" / "spec.yaml").read_text())
    assert spec["scores"]["weights_fitted_on_scored_rows"] is False
    r = runner.invoke(app, ["ensemble", str(r1), str(r2), "--method", "hard", "--out", str(tmp_path / "h")])
    assert r.exit_code == 0, r.output
    spec = yaml.safe_load((tmp_path / "h" / "spec.yaml").read_text())
    assert spec["scores"]["weights_fitted_on_scored_rows"] is True and "ensemble_macro_f1_crossfit" in spec["scores"]
    assert "fitted on these rows" in " ".join(r.output.split())


@pytest.mark.slow
def test_folds_without_a_fold_column_suggests_commands_that_work_as_typed(data, tmp_path, monkeypatch):
    # the line names a split of the data typed (`imgcls split --folds K` once: K no number, and a retyped `train
    # DATA --folds all` read the same fold-less DATA again), then the table to train on
    import re
    import shlex
    monkeypatch.chdir(tmp_path)
    line = one_error_line(train(data, "runs", "--folds", "all", "--epochs", "1"))
    split_cmd, train_cmd = re.search(r"run imgcls (split .*?) \(Python: .*\) first and train on its table: "
                                     r"imgcls (train .*?) \(Python: ", line).groups()
    assert str(data) in split_cmd
    r = runner.invoke(app, [*shlex.split(split_cmd), "--quiet"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*shlex.split(train_cmd), *TINY, "--out", "runs", "--name", "k", "--epochs", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "runs" / "k").glob("fold_*")) == [f"fold_{i}" for i in range(5)]
