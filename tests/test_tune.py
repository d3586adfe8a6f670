"""imgcls tune: Optuna search over train options (tiny space, tiny images, 1-2 epoch trials)."""
from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import make_image_folder, tree_snapshot
from imgcls.cli import app
from imgcls.errors import UserError
from imgcls.train import TrainConfig
from imgcls.train.callbacks import Callback
from imgcls.tune import TuneConfig, parse_duration, run_tune
from imgcls.tune.space import default_space_text, load_space, parse_space

# plots=False: the study's report draws none of Optuna's five plots (~1 CPU s a run_tune; the trials draw no figure
# without --trial-plots anyway); the tests of the report's figures or of what a plotting study says set plots=True
TINY = dict(model="test_resnet", img_size=32, batch_size=8, workers=0, device="cpu", aug="none", val_split=0.3,
            pretrained=False, plots=False)
SPACE = "lr: {log_uniform: [1.0e-3, 1.0e-2]}\nweight_decay: {choice: [0.0, 0.05]}\n"


@pytest.fixture
def data(tmp_path):
    return make_image_folder(tmp_path / "raw", {"a": 10, "b": 10}, size=(40, 40))


@pytest.fixture
def space(tmp_path):
    p = tmp_path / "space.yaml"
    p.write_text(SPACE)
    return p


def tune_cfg(data, tmp_path, space, **kw):
    train = dict(TINY, src=str(data), epochs=1)
    train.update(kw.pop("train", {}))
    d = dict(study="s", space=str(space), out=str(tmp_path / "tune"), pruner="none", trials=2)
    d.update(kw)
    return TuneConfig(train=TrainConfig(**train), **d)


def trials_csv(study_dir):
    t = pd.read_csv(study_dir / "trials.csv", dtype={"message": str})
    t["message"] = t["message"].fillna("")
    return t


# --- the space: every mistake is one line naming the key, before any work ---------------------------------------

@pytest.mark.parametrize("spec, words", [
    ({"lrr": {"log_uniform": [1e-4, 1e-2]}}, ["'lrr'", "not an imgcls train option", "did you mean lr"]),
    # a TrainConfig field that is no option (read_from's record of its --config file)
    ({"_config": {"choice": ["a.yaml", "b.yaml"]}}, ["'_config'", "not an imgcls train option"]),
    ({"lr": {"log_uniform": [1e-2, 1e-4]}}, ["'lr'", "low must be below high"]),
    ({"lr": {"log_uniform": [0, 1e-2]}}, ["'lr'", "low > 0"]),
    ({"lr": {"gauss": [0, 1]}}, ["'lr'", "unknown kind 'gauss'"]),
    ({"lr": [1e-3, 1e-2]}, ["'lr'", "give one of"]),
    ({"optimizer": {"choice": ["adamw", "radamm"]}},
     ["'optimizer'", "unknown --optimizer 'radamm' (did you mean radam"]),
    ({"epochs": {"uniform": [1, 3]}}, ["'epochs'", "integer option"]),
    ({"epochs": {"int": [0, 3]}}, ["'epochs'", ">= 1"]),
    ({"optimizer": {"choice": ["sgd"]}, "momentum": {"uniform": [0.5, 1.0]}}, ["'momentum'", "[0, 1)"]),
    ({"optimizer": {"choice": ["adamw", "lamb"]}, "momentum": {"uniform": [0.5, 0.9]}},
     ["space key 'momentum' acts only with --optimizer that has a momentum", "space key 'optimizer' never takes",
      "add a value that has a momentum"]),
    ({"aug": {"choice": [1, 2]}}, ["'aug'", "str values"]),
    ({"device": {"choice": ["cpu", "cuda"]}}, ["'device'", "cannot be searched"]),
    ({"val_split": {"uniform": [0.1, 0.3]}}, ["'val_split'", "cannot be searched"]),
    ({"plots": {"choice": [True, False]}}, ["'plots'", "cannot be searched", "figures only"]),
    # what train records of how a run ran (set by every run anew): a drawn value did nothing, each trial alike
    *(({k: {"choice": v}}, [f"'{k}'", "cannot be searched", "train records it"])
      for k, v in (("amp_used", [True, False]), ("workers_used", [0, 2]), ("cache_used", ["ram", "none"]),
                   ("weights_source", ["a", "b"]))),
])
def test_space_errors_name_the_key(spec, words):
    with pytest.raises(UserError) as e:
        parse_space(spec)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_space_takes_what_an_option_validator_takes():
    """A choice value's type is options' scalar rule, which leaves an option with a validator to it: --oversample
    takes a number of images per class as well as a word (TrainConfig(oversample=200) is accepted), and the space
    refused `oversample: {choice: [median, 200]}` as 'takes str values'. A value the validator refuses is refused
    in its words, naming the key."""
    assert TrainConfig(oversample=200).oversample_target() == 200
    space = parse_space({"oversample": {"choice": ["median", 200]}})
    assert space.as_dict() == {"oversample": {"choice": ["median", 200]}}
    with pytest.raises(UserError, match=r"^space key 'oversample': --oversample takes median, max, off or a "
                                        r"positive number .*\(got '1.5'\)$"):
        parse_space({"oversample": {"choice": ["median", 1.5]}})
    with pytest.raises(UserError, match=r"^space key 'fill': --fill 3: use auto"):
        parse_space({"fill": {"choice": ["auto", 3]}})


def test_default_space_is_valid_and_printed():
    space = load_space(None)
    assert {"lr", "optimizer", "aug"} <= set(space.names())
    r = CliRunner().invoke(app, ["tune", "--show-space"])
    assert r.exit_code == 0 and r.output == default_space_text()
    assert yaml.safe_load(r.output) == space.as_dict()   # what it prints is what it searches


def test_space_kinds_suggest_what_they_say():
    space = parse_space({"lr": {"log_uniform": [1e-4, 1e-2]}, "epochs": {"int": [2, 6, 2]},
                         "aug": {"choice": ["light", "heavy"]}, "drop_rate": {"uniform": [0.0, 0.5]}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        p = space.suggest(study.ask())
        assert 1e-4 <= p["lr"] <= 1e-2 and p["epochs"] in (2, 4, 6) and p["aug"] in ("light", "heavy")
        assert 0 <= p["drop_rate"] <= 0.5
    assert parse_space({"epochs": {"int": [2, 6, 2]}, "aug": {"choice": ["light", "heavy"]}}).grid() == \
        {"epochs": [2, 4, 6], "aug": ["light", "heavy"]}
    with pytest.raises(UserError, match="'lr' is log_uniform"):
        space.grid()


def test_a_notebooks_numpy_numbers_in_a_space_are_the_plain_values_they_are():
    """A space built in a notebook (np.arange's np.int64, np.bool_) was refused ("choice values must be plain
    values (got np.int64(2))", "int takes [low, high] ... integers"), an np.float64 kept as numpy; each is now the
    plain value it is. A whole float is still no int."""
    import numpy as np
    space = parse_space({"epochs": {"choice": list(np.arange(2, 4))}, "img_size": {"int": [np.int64(32), np.int64(64),
                                                                                          np.int64(16)]},
                         "lr": {"log_uniform": [np.float64(1e-4), np.float32(1e-2)]},
                         "hflip": {"choice": [np.bool_(True), np.bool_(False)]}})
    d = space.as_dict()
    assert d == {"epochs": {"choice": [2, 3]}, "img_size": {"int": [32, 64, 16]},
                 "lr": {"log_uniform": [1e-4, pytest.approx(1e-2)]}, "hflip": {"choice": [True, False]}}
    assert [type(v) for p in d.values() for v in next(iter(p.values()))] == [int] * 5 + [float] * 2 + [bool] * 2
    assert yaml.safe_load(yaml.safe_dump(d)) == d
    with pytest.raises(UserError, match="'epochs': int takes"):
        parse_space({"epochs": {"int": [np.float64(2.0), 4]}})


def test_durations_and_options():
    assert parse_duration("2h") == 7200 and parse_duration("1h30m") == 5400 and parse_duration("90") == 90
    assert parse_duration("1.5m") == 90
    for bad in ("soon", "2x", "-5", "0"):
        with pytest.raises(UserError, match="--timeout"):
            parse_duration(bad)
    assert TuneConfig(study="s", keep="best-2").keep_k() == 2 and TuneConfig(study="s", keep="all").keep_k() is None
    for kw, flag in [({"keep": "best"}, "--keep"), ({"sampler": "bayes"}, "--sampler"), ({"pruner": "x"}, "--pruner"),
                     ({"metric": "f1"}, "--metric"), ({"study": "a/b"}, "--study"), ({"trials": 0}, "--trials")]:
        with pytest.raises(UserError, match=flag):
            TuneConfig(**{"study": "s", **kw}).validate()
    # the train's own name / out would be replaced by every trial's OUT/STUDY/trial_NNNN: refused, naming tune's out
    # an exist_ok would do nothing: every trial trains into a new folder (tune's command has no --exist-ok)
    for kw, named in [({"name": "x"}, "name='x'"), ({"out": "elsewhere"}, "out='elsewhere'"),
                      ({"exist_ok": True}, "exist_ok=True")]:
        with pytest.raises(UserError, match=rf"TrainConfig\({named}\).*tune's own out= \(--out, now outputs/tune\)"):
            TuneConfig(study="s", train=TrainConfig(**kw)).validate()
    TuneConfig(study="s", train=TrainConfig(out=TrainConfig.out)).validate()     # the default, as the CLI passes it


def test_cli_bad_space_key_exits_2_with_one_line_before_any_work(data, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: {log_uniform: [1.0e-4, 1.0e-2]}\nwieght_decay: {uniform: [0, 0.1]}\n")
    out = tmp_path / "tune"
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(bad), "--out", str(out)])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "'wieght_decay'" in lines[0] and "did you mean weight_decay" in lines[0]
    assert not out.exists()
    r = CliRunner().invoke(app, ["tune", str(data), "--space", str(bad)])
    assert r.exit_code == 2 and "--study" in r.output


def test_fixed_option_error_stops_the_study_at_its_first_trial(data, tmp_path, space):
    # a --crop-from that crops nothing at --img-size 32 (train's check once timm gave the size; the data table's
    # faults are refused before the study opens): every trial would fail the same way, so the study stops with
    # train's line (--sampler is tune's Optuna sampler here, not train's shuffle | weighted)
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(space), "--model", "test_resnet",
                                 "--no-pretrained", "--img-size", "32", "--crop-from", "1.01", "--out",
                                 str(tmp_path / "tune"), "--trials", "3", "--sampler", "random", "--quiet"])
    assert r.exit_code == 2 and "--crop-from 1.01 at --img-size 32 resizes the images to 32 px: no crop" in r.output
    # the study it created is removed again (no trials.csv pointing at a trial folder never made, no study.db
    # holding the mistake): the same command without --crop-from starts the study afresh
    assert not (tmp_path / "tune").exists()


# --- studies on generated images ----------------------------------------------------------------------------------

class FailTrial(Callback):
    """A train callback that makes one trial raise (as an out-of-memory error would)."""

    def __init__(self, name):
        self.name = name

    def on_run_start(self, info):
        if Path(info["run_dir"]).name == self.name:
            raise RuntimeError("CUDA out of memory (simulated)")


@pytest.mark.timeout(120)
def test_trials_run_fail_resume_keep_best_and_best_config_trains(data, tmp_path, space, capsys, monkeypatch):
    cfg = tune_cfg(data, tmp_path, space, trials=3, keep="best-1", train={"plots": True})
    import itertools
    import types

    import imgcls.train.run
    clock = (k * k for k in itertools.count())   # each trial's decoded-image cache takes another time
    monkeypatch.setattr(imgcls.train.run, "time", types.SimpleNamespace(perf_counter=lambda: float(next(clock))))
    capsys.readouterr()
    study_dir = run_tune(cfg, callbacks=[FailTrial("trial_0001")])
    err = capsys.readouterr().err
    # train's set-up lines are said once for the study, not once per trial; each trial's own lines stay
    assert err.count("as layout 'folder'") == 1 and err.count("no split column with val rows") == 1, err
    assert err.count("decoded-image cache:") == 1, err     # its time changes, the line says the same thing
    assert err.count("; outputs in") == 2 and "trial 1 failed" in err, err
    for k in range(3):      # each trial starts with its number of the study's count and its drawn values
        assert re.search(rf"^trial {k} \({k + 1} of 3\): lr=[0-9.e-]+, weight_decay=", err, re.M), err
    t = trials_csv(study_dir)
    assert list(t["trial"]) == [0, 1, 2] and list(t["state"]) == ["complete", "fail", "complete"]
    assert "RuntimeError: CUDA out of memory (simulated)" in t.loc[1, "message"]
    for i in (0, 2):   # every trial is a normal run folder; its value is its best epoch's val macro-F1
        run = study_dir / f"trial_{i:04d}"
        m = pd.read_csv(run / "metrics.csv")
        assert t.loc[i, "value"] == pytest.approx(m["val_macro_f1"].max())
        got = yaml.safe_load((run / "config.yaml").read_text())
        assert got["lr"] == pytest.approx(t.loc[i, "lr"]) and got["weight_decay"] == t.loc[i, "weight_decay"]
        assert (run / "val_predictions.csv").is_file()
    # --keep best-1: only the best completed trial keeps its checkpoints
    best = int(t[t["state"] == "complete"].sort_values("value", ascending=False, kind="stable")["trial"].iloc[0])
    with_pt = sorted(p.parent.name for p in study_dir.glob("trial_*/*.pt"))
    assert with_pt == [f"trial_{best:04d}"] * 2      # best.pt and last.pt
    # trials.csv records it, and an ensemble of a trial --keep cleared says so (not "is training finished?")
    other = 2 if best == 0 else 0
    t = trials_csv(study_dir)
    # (trial 1 failed before its first epoch: it never had a checkpoint to remove)
    assert list(t["checkpoints"].fillna("")) == ["" if i in (best, 1) else "removed (--keep best-1)" for i in range(3)]
    r = CliRunner().invoke(app, ["ensemble", str(study_dir / f"trial_{best:04d}"),
                                 str(study_dir / f"trial_{other:04d}"), "--out", str(tmp_path / "ens")])
    assert r.exit_code == 2 and "imgcls tune deleted this trial's checkpoints" in r.output, r.output
    assert "trials.csv: removed (--keep best-1)" in r.output and "is training finished" not in r.output
    # an ensemble built before --keep cleared its member (the study resumed and found better trials) says so too
    from imgcls.ensemble import load_spec
    spec = tmp_path / "old_ens" / "spec.yaml"
    spec.parent.mkdir()
    gone = study_dir / f"trial_{other:04d}"
    spec.write_text(yaml.safe_dump({"kind": "imgcls-ensemble", "method": "soft", "classes": ["a", "b"], "members": [
        {"name": gone.name, "run": str(gone), "checkpoints": [str(gone / "best.pt")]}]}))
    with pytest.raises(UserError, match=r"does not exist: imgcls tune deleted this trial's checkpoints"):
        load_spec(spec)
    from conftest import assert_self_contained
    html = assert_self_contained(study_dir / "report.html", 4)
    assert html.count("data:image/png;base64,") >= 4

    # resume: the same study continues its trial count
    run_tune(tune_cfg(data, tmp_path, space, trials=4, keep="best-1", train={"plots": True}))
    t = trials_csv(study_dir)
    assert list(t["trial"]) == [0, 1, 2, 3] and (study_dir / "trial_0003" / "metrics.csv").is_file()
    assert len(list(study_dir.glob("trial_*/best.pt"))) == 1

    # best_config.yaml is the best trial's options and `imgcls train --config` accepts it
    best = t[t["state"] == "complete"].sort_values("value", ascending=False, kind="stable").iloc[0]
    bc = yaml.safe_load((study_dir / "best_config.yaml").read_text())
    assert bc["lr"] == pytest.approx(best["lr"]) and bc["name"] is None and bc["out"] == TrainConfig.out
    r = CliRunner().invoke(app, ["train", "--config", str(study_dir / "best_config.yaml"), "--out",
                                 str(tmp_path / "runs"), "--name", "best", "--quiet"])
    assert r.exit_code == 0, r.output
    ran = yaml.safe_load((tmp_path / "runs" / "best" / "config.yaml").read_text())
    assert ran["lr"] == pytest.approx(best["lr"]) and ran["model"] == "test_resnet"


def test_best_config_names_the_data_from_any_working_folder_and_holds_no_record_of_its_run(data, tmp_path, space,
                                                                                           monkeypatch):
    """best_config.yaml recorded the data as typed (`src: raw`): `imgcls train --config outputs/tune/S/
    best_config.yaml` from another folder read that folder's raw/, or none. Recorded absolute, as a run's.
    And tune --config RUN/config.yaml took the run's records of how it ran (amp_used / workers_used / cache_used /
    weights_source: another machine's) into every trial's options, and best_config.yaml kept them: it read as if
    the best trial had run in mixed precision with 8 workers, where its own config.yaml says no AMP, 0 workers.
    best_config.yaml, a config a run starts from, now holds none; the trial's config.yaml records its own.
    One one-trial study checks both."""
    monkeypatch.chdir(tmp_path)
    recorded = {"amp_used": True, "workers_used": 8, "cache_used": "disk", "weights_source": "hub timm/x"}
    study_dir = run_tune(tune_cfg("raw", tmp_path, space, trials=1, train={"workers": None, **recorded}))
    best = yaml.safe_load((study_dir / "best_config.yaml").read_text())
    trial = yaml.safe_load((study_dir / "trial_0000" / "config.yaml").read_text())
    assert best["src"] == str(data) and trial["src"] == str(data)
    assert {k: best[k] for k in TrainConfig.RECORDS} == dict.fromkeys(TrainConfig.RECORDS)
    assert (trial["amp_used"], trial["workers_used"], trial["cache_used"]) == (False, 0, "ram")


@pytest.mark.timeout(120)
def _force_low_metric_in_trial_1(monkeypatch) -> Callback:
    """Trial 1's every validation scores 0 (a callback turns it on at that trial's start)."""
    from imgcls.train import loop
    forced = {"on": False}

    class Force(Callback):
        def on_run_start(self, info):
            forced["on"] = Path(info["run_dir"]).name == "trial_0001"

    real = loop.evaluate

    def evaluate(*a, **kw):
        ev = real(*a, **kw)
        if forced["on"]:
            ev["final"] = {k: 0.0 for k in ev["final"]}
        return ev

    monkeypatch.setattr(loop, "evaluate", evaluate)
    return Force()


def test_pruning_stops_a_trial_whose_metric_is_forced_low(data, tmp_path, space, monkeypatch):
    force = _force_low_metric_in_trial_1(monkeypatch)
    journal = tmp_path / "journal.log"     # and the journal-file storage
    cfg = tune_cfg(data, tmp_path, space, trials=2, pruner="median", prune_startup=1, prune_warmup=0,
                   storage=str(journal), train={"epochs": 3})
    study_dir = run_tune(cfg, callbacks=[force])
    t = trials_csv(study_dir)
    assert list(t["state"]) == ["complete", "pruned"] and journal.is_file()
    assert "pruned after epoch 1" in t.loc[1, "message"] and t.loc[1, "epochs_run"] == 1
    assert len(pd.read_csv(study_dir / "trial_0001" / "metrics.csv")) == 1     # stopped at once
    assert len(pd.read_csv(study_dir / "trial_0000" / "metrics.csv")) == 3
    assert not list((study_dir / "trial_0001").glob("*.pt"))                  # pruned: checkpoints deleted
    study = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))
    assert study.trials[1].state == optuna.trial.TrialState.PRUNED


def test_a_trial_is_never_pruned_after_its_last_epoch(data, tmp_path, space, monkeypatch):
    """Pruning after the final epoch saves nothing: the low trial completes and its value counts."""
    force = _force_low_metric_in_trial_1(monkeypatch)
    cfg = tune_cfg(data, tmp_path, space, trials=2, pruner="median", prune_startup=1, prune_warmup=0,
                   train={"epochs": 1})
    t = trials_csv(run_tune(cfg, callbacks=[force]))
    assert list(t["state"]) == ["complete", "complete"] and t.loc[1, "value"] == 0.0


def test_each_trial_that_stops_early_says_so(data, tmp_path, space, monkeypatch, capsys):
    """train's `early stop: ... did not improve` line is the trial's own course, not a set-up line: said once for
    the study (console.said_once) it was left out of every later trial that stopped alike, so trial 1 ran 2 of its 3
    epochs without a word. Each trial says it; the data's lines are still said once."""
    from imgcls.train import loop
    real = loop.evaluate

    def evaluate(*a, **kw):         # every epoch of every trial scores the same: each stops after its second
        ev = real(*a, **kw)
        ev["final"] = {k: 0.5 for k in ev["final"]}
        return ev
    monkeypatch.setattr(loop, "evaluate", evaluate)
    capsys.readouterr()
    run_tune(tune_cfg(data, tmp_path, space, trials=2, train={"epochs": 3, "early_stop": 1}))
    err = capsys.readouterr().err
    assert err.count("early stop: val macro-F1 did not improve for 1 epochs (best 0.5000 at epoch 1)") == 2, err
    assert err.count("no split column with val rows") == 1, err


def test_a_cache_over_the_memory_is_said_once_though_the_memory_available_moves(data, tmp_path, space, monkeypatch,
                                                                                capsys):
    """train's warning that the decoded-image cache would take over half the memory available (so it goes to disk)
    names the memory available, which moves between trials (other programs, the page cache): each trial said it
    again with its own number. The data and --img-size are the study's: said once."""
    from imgcls.train import data as tdata
    room = iter([(100_000, 10**12), (40_000, 10**12)])      # 0.1 MiB, then 0.0 MiB; the 20 images need 61,440 bytes
    monkeypatch.setattr(tdata, "cache_room", lambda folder: next(room))
    capsys.readouterr()
    run_tune(tune_cfg(data, tmp_path, space, trials=2))
    err = capsys.readouterr().err
    assert err.count("caching on disk instead") == 1 and "0.1 MiB of memory available" in err, err
    assert err.count("; outputs in") == 2, err


def test_each_k_fold_trial_says_its_out_of_fold_score(tmp_path, space, monkeypatch, capsys):
    """--folds all: each trial's `out-of-fold macro-F1 over 2 folds: X` is its own result, but said once for the
    study (console.said_once) it was left out of a later trial that scored the same (two trials that collapsed to one
    class: the same macro-F1, accuracy and images), so the second trial ended without it. Each trial says it."""
    from imgcls import manifest as mf
    from imgcls import metrics
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 8}, size=(40, 40))
    df = mf.load(src)
    df["fold"] = [i % 2 for i in range(len(df))]
    mf.write(df, tmp_path / "data" / "splits.csv")
    real = metrics.scores

    def scores(*a, **kw):           # every trial scores the same
        return {**real(*a, **kw), "macro_f1": 0.5, "accuracy": 0.5}
    monkeypatch.setattr(metrics, "scores", scores)
    capsys.readouterr()
    run_tune(tune_cfg(tmp_path / "data" / "splits.csv", tmp_path, space, trials=2, train={"folds": "all"}))
    err = capsys.readouterr().err
    assert err.count("out-of-fold macro-F1 over 2 folds: 0.5000 (accuracy 0.5000, 16 images)") == 2, err


def test_the_data_s_leak_and_one_image_class_warnings_are_said_once_for_the_study(tmp_path, space, capsys):
    """A hand-edited split table with a group on both sides and a class of one image: train warns of both (test_train:
    ..._a_person_on_both_sides_is_warned, ..._one_image_class_...); tune, whose trials each run train on the same
    table, says each once for the study, not once per trial; before the study's line (tune checks the data before its
    study opens), not under `trial 0 (1 of 3)`."""
    from imgcls import manifest as mf
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 8, "c": 1}, size=(40, 40))
    df = mf.load(src)
    df["split"] = ["val" if i % 4 == 0 else "train" for i in range(len(df))]
    df["group"] = [f"g{i}" for i in range(len(df))]
    df.loc[df.index[:2], "group"] = "g0"            # rows 0 (val) and 1 (train): one person on both sides
    df.loc[df["label"] == "c", "split"] = "train"
    mf.write(df, tmp_path / "data" / "leaky.csv")
    capsys.readouterr()
    run_tune(tune_cfg(tmp_path / "data" / "leaky.csv", tmp_path, space, trials=3))
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("1 leak(s) between the split's sides (group g0:") == 1, err
    assert err.count("1 class(es) with a single image (c, in train)") == 1, err
    assert err.count("; outputs in") == 3, err
    study = err.index("study 's' (new)")
    assert err.index("1 leak(s) between") < study and err.index("1 class(es) with a single image") < study, err



def test_the_set_up_bars_are_left_once_for_the_study_each_epoch_s_bar_every_trial(data, tmp_path, space, capsys):
    """Each trial scans and decodes the images again (no cache between trials); piped, each finished bar is a line,
    so `imgcls tune ... | cat` printed a `scanning images` and a `decoding images` line per trial, though their set-up
    lines are said once (console.said_once). A set-up bar already shown in the study is transient (erased on a
    terminal, not printed piped); an epoch's bar is the trial's own course: each trial's is left."""
    capsys.readouterr()
    run_tune(tune_cfg(data, tmp_path, space, trials=3))
    err = capsys.readouterr().err
    assert err.count("scanning images") == 1 and err.count("decoding images") == 1, err
    assert err.count("epoch 1/1 ") == 3, err

class Slow(Callback):
    def on_run_start(self, info):
        import time
        time.sleep(0.3)


@pytest.mark.timeout(60)
def test_timeout_stops_the_running_trial_and_the_study(data, tmp_path, space, capsys):
    # the first trial outlives the 0.2 s budget (its start alone sleeps 0.3 s): stopped at its first epoch's end,
    # recorded as failed, no more trials
    study_dir = run_tune(tune_cfg(data, tmp_path, space, trials=5, timeout="0.2s", train={"epochs": 2}),
                         callbacks=[Slow()])
    t = trials_csv(study_dir)
    assert list(t["state"]) == ["fail"] and "--timeout" in t.loc[0, "message"] and t.loc[0, "epochs_run"] == 1
    # the study's own stop, said as such: not as a crash named by tune's internal exception class
    # ("_TimeUp: stopped after epoch 1: ..." in trials.csv, report.html and the trial's warning line)
    assert t.loc[0, "message"] == "stopped after epoch 1: the study's --timeout was reached", t.loc[0, "message"]
    said = capsys.readouterr()
    assert "_TimeUp" not in said.err + said.out
    assert "_TimeUp" not in (study_dir / "report.html").read_text()
    # nor is its run a crash: its train.log named the exception ("stopped by an exception, _TimeUp: ..."), so the
    # trial's folder without its study's trials.csv read crashed in imgcls runs; it reads stopped
    trial = Path(t.loc[0, "run_dir"])
    assert "stopped by an exception" not in (trial / "train.log").read_text()
    shutil.copytree(trial, tmp_path / "alone" / trial.name)
    r = CliRunner().invoke(app, ["runs", str(tmp_path / "alone")], env={"COLUMNS": "300"})
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "stopped 1/2" in text and "crashed 1/2" not in text, r.output


def _tune_in_this_process(args, said):
    """A forked process's `imgcls tune` (the CLI's own code, called as the test's process has it loaded: a fresh
    start of Python, torch, timm and optuna was most of the test's time), on one thread as a torchrun process."""
    import torch
    torch.set_num_threads(1)
    r = CliRunner().invoke(app, args)
    Path(said).write_text(r.output)
    sys.exit(r.exit_code)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_processes_share_one_sqlite_study(data, tmp_path, space):
    import multiprocessing as mp
    db = tmp_path / "shared.db"
    args = ["tune", str(data), "--study", "shared", "--space", str(space), "--storage", f"sqlite:///{db}",
            "--out", str(tmp_path / "tune"), "--trials", "3", "--pruner", "none", "--model", "test_resnet",
            "--no-pretrained", "--img-size", "32", "--epochs", "1", "--batch-size", "8", "--workers", "0",
            "--device", "cpu", "--quiet"]
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_tune_in_this_process, args=(args, tmp_path / f"said{i}")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(170)
        if p.is_alive():               # hung: ended here, the test fails on its exit code
            p.kill()
            p.join()
    outs = [(tmp_path / f"said{i}").read_text() if (tmp_path / f"said{i}").exists() else "" for i in range(2)]
    assert [p.exitcode for p in procs] == [0, 0], outs
    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{db}")
    numbers = [t.number for t in study.trials]
    assert len(numbers) >= 3 and len(set(numbers)) == len(numbers)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert {t.user_attrs["process"] for t in study.trials} == {f"{os.uname().nodename}:{p.pid}" for p in procs}
    folders = sorted(p.name for p in (tmp_path / "tune" / "shared").glob("trial_*"))
    assert folders == [f"trial_{n:04d}" for n in sorted(numbers)]


def _open_shared_study(db, space, barrier):
    from imgcls.tune import open_study
    barrier.wait()                      # every process opens the fresh database at the same moment
    study, _ = open_study(TuneConfig(study="race"), space, f"sqlite:///{db}")
    return study.study_name


@pytest.mark.timeout(120)
@pytest.mark.parametrize("store", ["tune", "mlflow"])
def test_a_new_sqlite_store_takes_the_umask_mode(tmp_path, store):
    """SQLite creates its database file 0644 whatever the umask: under umask 002 a tune study (or train's MLflow
    store) in a folder the group shares was read-only to the rest of the group, unlike every other file imgcls
    writes. Now the file is created with the umask's mode (0664 here)."""
    db = tmp_path / "s" / "store.db"
    old = os.umask(0o002)
    try:
        if store == "tune":
            from imgcls.tune import open_storage
            open_storage(f"sqlite:///{db}")
        else:
            from imgcls.track.mlflow_tracker import MLflowTracker
            MLflowTracker(uri=f"sqlite:///{db}", out=tmp_path)._connect()
    finally:
        os.umask(old)
    assert db.stat().st_size > 0 and oct(db.stat().st_mode & 0o777) == oct(0o664)


def test_processes_opening_a_new_sqlite_study_at_once_all_join_it(tmp_path):
    """Concurrent creation of one local SQLite study (the tables and the study row) never fails a process. Two
    processes make the race (without the opening lock one fails: "table studies already exists"); each more one was
    a start of Python, optuna, sqlalchemy and alembic (~20 s on a loaded 2-core machine). Forked, not spawned: the
    race is two processes opening one new database at once, not their start (a spawned Python loading torch, timm
    and optuna anew, with the Manager's, was most of the test's time)."""
    import multiprocessing as mp

    from imgcls.tune import open_storage
    db = tmp_path / "race.db"
    space = parse_space({"lr": {"log_uniform": [1e-4, 1e-2]}})      # its option checks load timm and torch
    # the storage's modules (sqlalchemy, alembic: seconds to load) loaded before the fork, on a database of the
    # test's own: loaded by open_study, under its opening lock, they set the processes seconds apart at the race
    open_storage(f"sqlite:///{tmp_path / 'warm.db'}")
    ctx = mp.get_context("fork")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            names = pool.starmap(_open_shared_study, [(db, space, barrier)] * 2)
    assert names == ["race"] * 2
    assert [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{db}")] == ["race"]


@pytest.mark.parametrize("pruner, extra", [("hyperband", ["--prune-startup", "2"]),
                                            ("none", ["--prune-startup", "3", "--prune-warmup", "0"])])
def test_median_pruner_options_with_another_pruner_are_refused(data, tmp_path, space, pruner, extra):
    """--prune-startup / --prune-warmup act only with --pruner median (their --help says so), but with hyperband or
    none they were taken silently and did nothing. One line naming them, before the study opens."""
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(space), "--model", "test_resnet",
                                 "--no-pretrained", "--out", str(tmp_path / "tune"), "--pruner", pruner, *extra])
    flags = [f for f in extra if f.startswith("--")]
    verb = "acts" if len(flags) == 1 else "act"        # "--prune-startup acts", "--prune-startup and ... act"
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert f"{' and '.join(flags)} {verb} only with --pruner median, not {pruner}" in r.output, r.output
    assert not (tmp_path / "tune").exists()


@pytest.mark.parametrize("given", [{"prune_startup": 5}, {"prune_warmup": 0, "prune_startup": 1}])
def test_median_pruner_options_from_python_with_another_pruner_are_refused(data, tmp_path, space, given):
    """The same refusal from Python: run_tune(TuneConfig(pruner='hyperband', prune_startup=5)) ran the study with
    the value doing nothing, as the check read only the flags typed on the command line."""
    said = "--prune-startup acts" if len(given) == 1 else "--prune-startup and --prune-warmup act"
    with pytest.raises(UserError, match=re.escape(said) + r" only with --pruner median, not hyperband.*\(Python: "
                                        r"prune_startup="):
        run_tune(tune_cfg(data, tmp_path, space, pruner="hyperband", **given))
    assert not (tmp_path / "tune").exists()


def test_sampler_and_pruner_options_pick_optuna_s_classes(tmp_path):
    from imgcls.tune import make_pruner, make_sampler
    space = parse_space({"epochs": {"int": [1, 2]}, "aug": {"choice": ["light", "heavy"]}})
    want = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
            "cmaes": optuna.samplers.CmaEsSampler, "grid": optuna.samplers.GridSampler}
    for name, cls in want.items():
        assert type(make_sampler(TuneConfig(study="s", sampler=name), space, seed=0)) is cls
    want = {"median": optuna.pruners.MedianPruner, "hyperband": optuna.pruners.HyperbandPruner,
            "none": optuna.pruners.NopPruner}
    for name, cls in want.items():
        assert type(make_pruner(TuneConfig(study="s", pruner=name))) is cls
    # seeded: the same seed draws the same parameters
    draws = []
    for _ in range(2):
        study = optuna.create_study(sampler=make_sampler(TuneConfig(study="s", sampler="random"), space, seed=3))
        draws.append([space.suggest(study.ask()) for _ in range(4)])
    assert draws[0] == draws[1]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_mlflow_study_run_holds_the_best_trial_so_far(data, tmp_path, space, mlflow_store):
    """tune --tracker mlflow: the study's parent run had no params or metrics, its best trial and value only on the
    child runs. After each completed trial it now has best_trial/val_macro_f1 (the best so far, at the trial's number
    as step) and tags naming the best trial: imgcls.best_trial, imgcls.best_run_dir, best.<drawn option>."""
    from mlflow.tracking import MlflowClient

    from imgcls.track.mlflow_tracker import MLflowTracker
    mlflow_store(tmp_path / "tune" / "s")        # the study's store: tune --tracker mlflow's local one
    study_dir = run_tune(tune_cfg(data, tmp_path, space, train={"tracker": ["mlflow"]}))
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{study_dir / 'study.db'}")
    uri = f"sqlite:///{study_dir.resolve() / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("imgcls")
    group = client.search_runs([exp.experiment_id], filter_string="tags.`imgcls.kind` = 'group'")
    assert len(group) == 1 and group[0].info.run_name == "s"
    g = group[0]
    hist = sorted(client.get_metric_history(g.info.run_id, "best_trial/val_macro_f1"), key=lambda m: m.step)
    values = [t.value for t in study.trials]
    assert [m.step for m in hist] == [0, 1]
    assert [m.value for m in hist] == pytest.approx([values[0], max(values)])
    best = study.best_trial
    assert g.data.tags["imgcls.best_trial"] == str(best.number)
    assert g.data.tags["imgcls.best_run_dir"] == str((study_dir / f"trial_{best.number:04d}").resolve())
    assert g.data.tags["best.lr"] == str(best.params["lr"])
    assert g.data.tags["best.weight_decay"] == str(best.params["weight_decay"])
    assert not g.data.params            # a param could not change value: the best so far is tags and a metric
    # a later best without a key the earlier one had (a conditional option): the earlier's tag goes
    tracker = MLflowTracker(uri=uri, out=study_dir, group="s")
    assert tracker.log_group_best("best_trial/val_macro_f1", 1.0, 2, 5, study_dir / "trial_0005", {"ema": True})
    tags = client.get_run(g.info.run_id).data.tags
    assert tags["best.ema"] == "true" and "best.lr" not in tags and "best.weight_decay" not in tags
    assert tags["imgcls.best_trial"] == "5"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_mlflow_store_failing_on_the_best_so_far_is_one_warning_and_the_study_goes_on(data, tmp_path, space,
                                                                                        capsys, monkeypatch,
                                                                                        mlflow_store):
    """tune --tracker mlflow: the store going away as tune logged the best trial so far on the study's run
    (log_group_best, after a trial completed) stopped the whole study with MLflow's traceback, where a trial's own
    logging failing fails that trial and the study goes on. Now it is one warning, said once, and every trial runs."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient
    log_metric = MlflowClient.log_metric

    def gone(self, run_id, key, *a, **kw):
        if key.startswith("best_trial/"):          # the store is away only when the study's best is written
            raise MlflowException("API request to http://mlflow:5000 failed: Connection refused")
        return log_metric(self, run_id, key, *a, **kw)
    monkeypatch.setattr(MlflowClient, "log_metric", gone)
    mlflow_store(tmp_path / "tune" / "s")
    capsys.readouterr()
    study_dir = run_tune(tune_cfg(data, tmp_path, space, train={"tracker": ["mlflow"]}))
    err = " ".join(capsys.readouterr().err.split())
    assert list(trials_csv(study_dir)["state"]) == ["complete", "complete"], err
    said = "warning: mlflow: the study's run 's' could not take the best trial so far (MlflowException: API request"
    assert err.count(said) == 1 and "Traceback" not in err, err
    assert (study_dir / "best_config.yaml").is_file()


def test_a_study_resumed_after_ctrl_c_reruns_the_interrupted_trial_and_loses_none(data, tmp_path, space, capsys):
    """`--trials 3`, Ctrl-C in trial 1, then the same command ('run the same command to resume'): the interrupted
    trial counted as one of the 3, so the study ended with 2 results and trial 1's drawn values never scored. Now
    an interrupted trial does not count, and the resumed study runs its values first (a new trial), then the rest."""
    class CtrlCInSecondTrial(Callback):
        runs = 0

        def on_run_start(self, info):
            CtrlCInSecondTrial.runs += 1

        def on_epoch_end(self, epoch, logs):
            if CtrlCInSecondTrial.runs == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tune(tune_cfg(data, tmp_path, space, trials=3), callbacks=[CtrlCInSecondTrial()])
    study_dir = tmp_path / "tune" / "s"
    assert list(trials_csv(study_dir)["state"]) == ["complete", "fail"]
    capsys.readouterr()
    run_tune(tune_cfg(data, tmp_path, space, trials=3))
    said = capsys.readouterr().err
    t = trials_csv(study_dir)
    assert list(t["state"]) == ["complete", "fail", "complete", "complete"], t
    assert t.loc[1, "message"] == "interrupted (Ctrl-C)"
    assert (t.loc[2, "lr"], t.loc[2, "weight_decay"]) == (t.loc[1, "lr"], t.loc[1, "weight_decay"])
    assert "trial 2 (2 of 3; trial 1's values again, Ctrl-C stopped it)" in said, said
    assert "trial 3 (3 of 3)" in said, said
    run_tune(tune_cfg(data, tmp_path, space, trials=3))       # done: no trial runs again, trial 1 is not re-run twice
    assert len(trials_csv(study_dir)) == 4


@pytest.fixture
def first_trial_stopped_early(monkeypatch):
    """Ctrl-C in the first trial after train wrote config.yaml and plan.json, before the image cache and train.log."""
    import imgcls.train.run
    real = imgcls.train.run._train_folds
    calls = []

    def stopped_first(*a, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(*a, **kw)
    monkeypatch.setattr(imgcls.train.run, "_train_folds", stopped_first)


def test_a_study_stopped_before_its_trials_first_log_line_resumes(data, tmp_path, space, first_trial_stopped_early):
    """Ctrl-C (or SIGTERM) while a trial decoded its images left trial_0000 with train's config.yaml and plan.json
    alone (no train.log yet): the same command then refused the study, 'trial_0000 is not a trial's run folder',
    so the study could not be resumed at all. That folder is the stopped trial's: the study resumes."""
    with pytest.raises(KeyboardInterrupt):
        run_tune(tune_cfg(data, tmp_path, space, trials=2))
    study_dir = tmp_path / "tune" / "s"
    assert sorted(p.name for p in (study_dir / "trial_0000").iterdir()) == ["config.yaml", "plan.json"]
    run_tune(tune_cfg(data, tmp_path, space, trials=2))
    assert list(trials_csv(study_dir)["state"]) == ["fail", "complete", "complete"]


def test_a_trial_stopped_before_its_first_epoch_is_not_said_to_have_lost_checkpoints(data, tmp_path, space,
                                                                                     first_trial_stopped_early):
    """trials.csv said `removed (--keep best-3)` of a trial stopped before its first epoch, and `predict` of it then
    said 'imgcls tune deleted this trial's checkpoints': it never had any, so nothing was removed."""
    with pytest.raises(KeyboardInterrupt):
        run_tune(tune_cfg(data, tmp_path, space, trials=2))
    t = trials_csv(tmp_path / "tune" / "s")
    assert list(t["epochs_run"]) == [0] and t["checkpoints"].isna().all(), t


def test_ctrl_c_marks_the_trial_writes_the_files_and_tells_a_python_caller_how_to_resume(data, tmp_path, space,
                                                                                          capsys):
    """Ctrl-C in a trial: trials.csv marks it (interrupted) and report.html is still written. And run_tune from
    Python on Ctrl-C said nothing (the `interrupted:` line was the CLI's, while run_train says its own): the study's
    line is run_tune's, as the run's is run_train's. One interrupted study checks both."""
    class CtrlC(Callback):
        def on_epoch_end(self, epoch, logs):
            raise KeyboardInterrupt

    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt):
        run_tune(tune_cfg(data, tmp_path, space, trials=3), callbacks=[CtrlC()])
    said = capsys.readouterr()
    lines = [ln for ln in (said.out + said.err).splitlines() if ln.startswith("interrupted")]
    assert len(lines) == 1 and "run the same command to resume" in lines[0] and "--resume" not in lines[0], lines
    study_dir = tmp_path / "tune" / "s"
    t = trials_csv(study_dir)
    assert list(t["state"]) == ["fail"] and t.loc[0, "message"] == "interrupted (Ctrl-C)"
    assert (study_dir / "report.html").is_file()


def test_ctrl_c_in_a_trial_says_only_tunes_line(data, tmp_path, space, monkeypatch):
    """Ctrl-C during a trial printed the trial's own line (`imgcls train --resume .../trial_0000 continues it`,
    which resumes the trial outside its study) before tune's: only tune's line, naming how to resume the study."""
    from imgcls import tune

    def ctrl_c(self, epoch, logs):
        raise KeyboardInterrupt
    monkeypatch.setattr(tune.TrialReporter, "on_epoch_end", ctrl_c)
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(space), "--model", "test_resnet",
                                 "--no-pretrained", "--img-size", "32", "--epochs", "2", "--batch-size", "8",
                                 "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "tune"),
                                 "--trials", "2", "--pruner", "none", "--quiet"])
    assert r.exit_code == 130
    said = [line for line in r.output.splitlines() if line.startswith("interrupted:")]
    assert len(said) == 1 and "run the same command to resume" in said[0] and "--resume" not in r.output, r.output



@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("to", ["process", "group"])
def test_sigterm_records_the_trial_interrupted_says_the_study_s_line_and_still_ends_by_sigterm(data, tmp_path, space,
                                                                                              capsys, to):
    """`timeout --preserve-status 2h imgcls tune ...` (a batch job's time limit), `kill PID`: SIGTERM ended tune at
    once and silently, its running trial left 'running' in the study until the next tune failed it as killed (and
    counted it). Now SIGTERM is taken as Ctrl-C: the trial is recorded interrupted (SIGTERM) and its values run again
    when the study resumes, tune says its `interrupted:` line, and the process still ends by SIGTERM (exit 143).
    `group`: SIGTERM to the process group, as `timeout` sends it, with DataLoader workers: they die of it too, and
    torch's SIGCHLD handler raised 'DataLoader worker (pid N) is killed by signal: Terminated' over the Terminated,
    so the trial failed with that error and the study went on to its next trial (exit 0)."""
    import signal
    import subprocess
    import time

    import imgcls
    study_dir = tmp_path / "tune" / "s"
    env = {**os.environ, "PYTHONPATH": str(Path(imgcls.__file__).parents[1]), "COLUMNS": "300"}
    proc = subprocess.Popen([sys.executable, "-m", "imgcls", "tune", str(data), "--study", "s", "--space", str(space),
                             "--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--batch-size", "8",
                             "--workers", "2" if to == "group" else "0", "--device", "cpu", "--aug", "none",
                             "--val-split", "0.3", "--epochs", "500", "--out", str(tmp_path / "tune"), "--trials", "2",
                             "--pruner", "none"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        last = study_dir / "trial_0000" / "last.pt"
        while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None and last.is_file(), proc.communicate(timeout=60)
        if to == "group":
            os.killpg(proc.pid, signal.SIGTERM)     # as `timeout` sends it: the loader's workers get it too
        else:
            proc.send_signal(signal.SIGTERM)        # the process only, as `kill PID` sends it
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    said = " ".join((out + err).split())
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, out, err)
    assert f"interrupted: trials.csv / report.html written for the trials so far in {study_dir}; run the same " \
           "command to resume" in said, said
    assert "Traceback" not in err and "--resume" not in said, err
    t = trials_csv(study_dir)
    assert list(t["state"]) == ["fail"] and t.loc[0, "message"] == "interrupted (SIGTERM)", t

    class Stop(Callback):           # the resumed study's first trial is enough: it says whose values it runs
        def on_epoch_end(self, epoch, logs):
            raise KeyboardInterrupt
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt):
        run_tune(tune_cfg(data, tmp_path, space, train={"epochs": 500}), callbacks=[Stop()])
    assert "trial 1 (1 of 2; trial 0's values again, SIGTERM stopped it)" in capsys.readouterr().err
    t = trials_csv(study_dir)
    assert (t.loc[1, "lr"], t.loc[1, "weight_decay"]) == (t.loc[0, "lr"], t.loc[0, "weight_decay"])


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigterm_inside_a_storage_call_waits_for_it_and_records_the_trial_interrupted(data, tmp_path, space):
    """SIGTERM (taken as Ctrl-C: cli.common.sigterm_interrupts) that came while an Optuna storage call ran a
    statement on study.db: the Terminated raised inside SQLAlchemy left that statement's cursor (held by the
    exception's frames) holding the database's lock, and recording the trial interrupted waited for it (SQLite's
    60 s busy timeout a write), then failed with a storage error over the Terminated: `timeout 2h imgcls tune` ran on
    minutes past its SIGTERM and ended with a traceback. Now a storage call holds the signal back until it ends."""
    import signal

    import sqlalchemy

    from imgcls.cli.common import sigterm_interrupts
    from imgcls.process import Terminated
    armed, sent = [], []

    def sigterm_in_the_call(conn, cursor, statement, *args):    # the statement's cursor is open here
        if armed and not sent:
            sent.append(statement)
            os.kill(os.getpid(), signal.SIGTERM)

    class Arm(Callback):        # runs before TrialReporter's on_epoch_end: its trial.report is the storage call
        def on_epoch_end(self, epoch, logs):
            armed.append(True)

    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)      # as in a shell's `imgcls tune ...`
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "after_cursor_execute", sigterm_in_the_call)
    try:
        with pytest.raises(Terminated), sigterm_interrupts():
            run_tune(tune_cfg(data, tmp_path, space, train={"epochs": 50}), callbacks=[Arm()])
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "after_cursor_execute", sigterm_in_the_call)
        signal.signal(signal.SIGTERM, before)
    assert len(sent) == 1, sent        # the signal came inside a storage call
    t = trials_csv(tmp_path / "tune" / "s")
    assert list(t["state"]) == ["fail"] and t.loc[0, "message"] == "interrupted (SIGTERM)", t


@pytest.fixture(scope="module")
def folds_study(tmp_path_factory):
    """One study of a data set with 2 folds (--folds all, 1 trial), read by the tests below: its folder and what the
    command said (stderr, stdout; the top table is on stdout)."""
    import contextlib
    import io

    from imgcls import manifest as mf
    tmp = tmp_path_factory.mktemp("folds")
    src = make_image_folder(tmp / "raw", {"a": 8, "b": 8}, size=(40, 40))
    df = mf.load(src)
    df["fold"] = [i % 2 for i in range(len(df))]
    mf.write(df, tmp / "data" / "splits.csv")
    space = tmp / "space.yaml"
    space.write_text(SPACE)
    cfg = tune_cfg(tmp / "data" / "splits.csv", tmp, space, trials=1, train={"folds": "all"})
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        study_dir = run_tune(cfg)
    return study_dir, err.getvalue(), out.getvalue()


def test_folds_all_objective_is_the_mean_over_folds(folds_study):
    study_dir = folds_study[0]
    t = trials_csv(study_dir)
    best = [pd.read_csv(study_dir / "trial_0000" / f"fold_{k}" / "metrics.csv")["val_macro_f1"].max() for k in (0, 1)]
    assert t.loc[0, "state"] == "complete" and t.loc[0, "value"] == pytest.approx(sum(best) / 2)
    assert t.loc[0, "epochs_run"] == 2          # each fold's epoch is a step of the trial's learning curve
    assert t.loc[0, "folds"] == 2 and t.loc[0, "epochs_by_fold"] == "fold_0=1 fold_1=1"     # all: the data's 2
    assert "mean over the folds" in (study_dir / "report.html").read_text()


def test_with_folds_the_terminal_says_the_trial_value_is_the_mean_over_folds(folds_study):
    """With --folds, each trial's train printed its 'out-of-fold macro-F1 over 2 folds: X', then tune's
    'trial 0: val macro-F1 Y' and the top table '(val macro-F1)' showed another number (the mean of the folds' best
    epochs) as if it were the validation score: only report.html said which it was."""
    _, err, out = folds_study
    err, out = " ".join(err.split()), " ".join(out.split())
    assert re.search(r"trial 0: val macro-F1, mean over folds' best epochs [01]\.\d{4}", err), err
    assert "top 1 of 1 trials (val macro-F1, mean over folds' best epochs)" in out, out


def test_reopening_a_study_checks_its_space_and_metric(tmp_path):
    from imgcls.tune import open_study
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    a = parse_space({"lr": {"log_uniform": [1e-4, 1e-2]}, "aug": {"choice": ["light", "heavy"]}})
    study, created = open_study(TuneConfig(study="s"), a, url)
    assert created and study.user_attrs["space"] == a.as_dict()
    again, created = open_study(TuneConfig(study="s"), a, url)           # resume / a second process
    assert not created and again._study_id == study._study_id
    b = parse_space({"lr": {"log_uniform": [1e-4, 1e-1]}, "aug": {"choice": ["light", "heavy"]}})
    with pytest.raises(UserError, match=r"another search space \(differs in: lr\)"):
        open_study(TuneConfig(study="s"), b, url)
    with pytest.raises(UserError, match="optimises --metric macro_f1, not loss"):
        open_study(TuneConfig(study="s", metric="loss"), a, url)
    with pytest.raises(UserError, match="--storage nosuch://x: cannot open it"):
        open_study(TuneConfig(study="s"), a, "nosuch://x")
    # the fixed train options too: a trial of a lite0 / 48 px / 2-epoch study is never trained as another model
    with pytest.raises(UserError) as e:
        open_study(TuneConfig(study="s", train=TrainConfig(model="tf_efficientnet_lite1", img_size=64, epochs=1)),
                   a, url)
    assert ("--model tf_efficientnet_lite0 -> tf_efficientnet_lite1, --img-size None -> 64, --epochs 10 -> 1"
            in str(e.value)) and "or another --study (Python: study=) for these" in str(e.value) \
        and "\n" not in str(e.value)
    # what the space searches (lr) and how the data is read (workers, device) may differ
    again, created = open_study(TuneConfig(study="s", train=TrainConfig(lr=0.5, workers=3, device="cpu")), a, url)
    assert not created


def test_a_command_whose_every_trial_failed_exits_non_zero(data, tmp_path, space, monkeypatch):
    """Every trial raising is not a finished study: one line naming the first failure, exit 1 (2 for a user
    error), after trials.csv is written."""
    import imgcls.train

    def boom(cfg, **kw):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(imgcls.train, "run_train", boom)
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(space), "--model", "test_resnet",
                                 "--no-pretrained", "--out", str(tmp_path / "tune"), "--trials", "2", "--quiet"])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    last = r.output.strip().splitlines()[-1]
    assert "every trial (2) of this command failed; the first, trial 0: RuntimeError: CUDA out of memory" in last
    t = trials_csv(tmp_path / "tune" / "s")
    assert list(t["state"]) == ["fail", "fail"] and t["run_dir"].isna().all()      # no folder was made


def test_a_kfold_trial_s_value_is_of_its_planned_folds_not_a_fold_folder_copied_in(tmp_path):
    """trial_value (and diverged) read every fold_<k> folder with a metrics.csv: a fold_2 copied into a finished
    2-fold trial, no fold of it (rundir.set_fold_dirs: runs, predict, ensemble leave it out), moved the trial's value
    (the mean over its folds), and a diverged copy made the trial diverged. Only the planned folds are read."""
    import json

    from imgcls.tune import diverged, trial_value
    run = tmp_path / "trial_0000"
    for d, best in ((run, None), (run / "fold_0", 0.4), (run / "fold_1", 0.6), (run / "fold_2", 1.0)):
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.yaml").write_text("model: test_resnet\nfolds: all\n")
        if best is not None:
            (d / "metrics.csv").write_text(f"epoch,val_macro_f1,val_loss\n1,0.1,1.0\n2,{best},0.9\n")
    (run / "oof_score.json").write_text(json.dumps({"folds": [0, 1]}))      # train's record: it trained folds 0, 1
    (run / "fold_2" / "val_predictions.csv").write_text("path,root,label,pred,p_a,p_b\n1.png,r,a,a,nan,nan\n")
    assert trial_value(run, "macro_f1") == pytest.approx(0.5)
    assert not diverged(run)


def test_keep_removes_no_checkpoint_of_a_fold_folder_copied_into_a_trial(tmp_path):
    """tune --keep best-K deleted the *.pt of every fold_<k> folder of a trial outside the K best: a fold_2 copied
    into a 2-fold trial by hand, no fold of it (rundir.set_fold_dirs: runs, predict, ensemble leave it out), lost its
    checkpoint though tune never wrote it. The trial's own checkpoints and its planned folds' are deleted."""
    import json

    from imgcls.tune.report import cleanup_checkpoints
    study = optuna.create_study(direction="maximize")
    for value in (0.9, 0.1):
        study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={}))
    run = tmp_path / "s" / "trial_0001"                                      # the worse: outside --keep best-1
    for d in (run, run / "fold_0", run / "fold_1", run / "fold_2"):
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.yaml").write_text("model: test_resnet\nfolds: all\n")
        if d != run:
            (d / "best.pt").write_bytes(b"")
    (run / "oof_score.json").write_text(json.dumps({"folds": [0, 1]}))      # train's record: it trained folds 0, 1
    assert cleanup_checkpoints(study, tmp_path / "s", 1) == [run / "fold_0" / "best.pt", run / "fold_1" / "best.pt"]
    assert (run / "fold_2" / "best.pt").is_file() and not (run / "fold_0" / "best.pt").exists()


def test_a_trials_malformed_metrics_csv_fails_the_trial_with_one_line(data, tmp_path, space, monkeypatch):
    """trial_value read a trial's metrics.csv with plain pandas: a malformed file (a row with more fields than the
    header) was pandas' ParserError, a trial failing as a bug does (its message 'ParserError: Error tokenizing
    data...', every trial so: exit 1). It is read by rundir.read_run_csv: the trial fails with its one line naming
    the file and the fix, as a trial's other user errors do: the study goes on, the line the trial's message in
    trials.csv. As a new study's first trial it stopped the study (exit 2), the first-trial rule taking the fixed
    options for at fault, and its fix said "train the run again": it is the trial's own output, so that trial
    fails and the next runs, and the fix says what became of the trial."""
    import imgcls.train
    fix = "imgcls train wrote it as the trial ran: the trial counts as failed"

    def trained(bad):
        def run_train(cfg, **kw):
            run = Path(cfg.out) / cfg.name
            run.mkdir(parents=True)
            (run / "config.yaml").write_text("model: test_resnet\n")     # a run's folder, for the study's resume
            extra = ",extra" if cfg.name in bad else ""
            (run / "metrics.csv").write_text(f"epoch,val_macro_f1,val_loss\n1,0.4,1.0\n2,0.5,0.9{extra}\n")
        return run_train

    def tune(bad, study, trials=2):
        monkeypatch.setattr(imgcls.train, "run_train", trained(bad))
        return CliRunner().invoke(app, ["tune", str(data), "--study", study, "--space", str(space), "--model",
                                        "test_resnet", "--no-pretrained", "--out", str(tmp_path / "tune"),
                                        "--trials", str(trials), "--pruner", "none", "--quiet", "--no-plots"])
    r = tune({"trial_0001"}, "s")
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    t = trials_csv(tmp_path / "tune" / "s")
    bad = tmp_path / "tune" / "s" / "trial_0001" / "metrics.csv"
    assert list(t["state"]) == ["complete", "fail"], t
    assert (f"UserError: the run's per-epoch metrics {bad}: line 3 has 4 field(s), the header has 3; {fix}"
            == t["message"][1]), t["message"][1]
    r = tune({"trial_0000"}, "first")                            # a new study's first trial
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    t = trials_csv(tmp_path / "tune" / "first")
    bad = tmp_path / "tune" / "first" / "trial_0000" / "metrics.csv"
    assert list(t["state"]) == ["fail", "complete"], t
    assert (f"UserError: the run's per-epoch metrics {bad}: line 3 has 4 field(s), the header has 3; {fix}"
            == t["message"][0]), t["message"][0]
    r = tune({"trial_0002", "trial_0003"}, "first", 4)         # every trial of a command so: exit 2, the first's
    assert r.exit_code == 2 and "Traceback" not in r.output and r.output.count("error:") == 1, r.output
    bad = tmp_path / "tune" / "first" / "trial_0002" / "metrics.csv"
    assert (f"every trial (2) of this command failed; the first, trial 2: UserError: the run's per-epoch metrics "
            f"{bad}: line 3 has 4 field(s), the header has 3; {fix}" in " ".join(r.output.split())), r.output


def test_a_trial_whose_loss_diverged_fails_and_says_so(data, tmp_path, space, monkeypatch):
    """A trial whose loss went NaN (too high an lr) saved NaN probabilities; its val macro-F1, argmax's first class
    for every image, was its objective value (0.5 of 2 classes), ranked among real trials. It now fails, its
    message saying the loss diverged, and the other trial is complete."""
    import imgcls.train

    def run_train(cfg, **kw):
        run = Path(cfg.out) / cfg.name
        run.mkdir(parents=True)
        (run / "config.yaml").write_text("model: test_resnet\n")
        (run / "metrics.csv").write_text("epoch,val_macro_f1,val_loss\n1,0.5,nan\n")
        p = "," if cfg.name == "trial_0000" else "0.9,0.1"
        (run / "val_predictions.csv").write_text(f"path,root,label,fold,pred,p_a,p_b\nx.png,,a,,a,{p}\n")
    monkeypatch.setattr(imgcls.train, "run_train", run_train)
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(space), "--model", "test_resnet",
                                 "--no-pretrained", "--out", str(tmp_path / "tune"), "--trials", "2", "--pruner",
                                 "none", "--quiet", "--no-plots"])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    t = trials_csv(tmp_path / "tune" / "s")
    assert list(t["state"]) == ["fail", "complete"], t
    assert t["message"][0] == "its loss diverged (NaN): no objective value; lower the --space's lr", t["message"][0]


def test_run_tune_leaves_the_callers_configs_as_given(tmp_path, space, monkeypatch):
    """run_tune wrote into the caller's TuneConfig and the TrainConfig in it: the default input found (or, for a
    resumed study, the data the study was started with) and every path made absolute. A notebook that tuned with
    its `base = TrainConfig(...)` and then called run_train(base) trained on that data, not the working folder's
    default input it asked for, and a second study from the same TuneConfig took the first one's options. Both are
    left as given."""
    import copy

    import imgcls.train

    def trial(cfg, **kw):           # a trial's run folder, as run_train writes it (config.yaml, metrics.csv)
        run = Path(cfg.out) / cfg.name
        run.mkdir(parents=True)
        (run / "config.yaml").write_text("model: test_resnet\n")
        (run / "metrics.csv").write_text("epoch,val_macro_f1,val_loss\n1,0.4,1.0\n")
    monkeypatch.setattr(imgcls.train, "run_train", trial)
    monkeypatch.chdir(tmp_path)
    make_image_folder(tmp_path / "data" / "raw", {"a": 10, "b": 10}, size=(40, 40))     # the default input
    base = TrainConfig(**TINY, epochs=1)
    cfg = TuneConfig(train=base, study="s", space=str(space), out="tune", pruner="none", trials=1)
    given = copy.deepcopy(cfg)
    run_tune(cfg)
    assert cfg == given and cfg.train is base and base.src is None
    assert (tmp_path / "tune" / "s" / "trial_0000").is_dir()


def test_bad_folds_are_refused_before_the_study_opens(data, tmp_path, space):
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(space), "--folds", "x",
                                 "--out", str(tmp_path / "tune"), "--trials", "2"])
    assert r.exit_code == 2 and "--folds 'x': use all" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "tune").exists()


def test_device_cuda_without_one_is_refused_before_the_study_opens(data, tmp_path, space, monkeypatch):
    """`tune --device cuda` on a machine without CUDA was refused only once trial 0 had started (its data read, its
    model built: ~17 s), where clean/split/predict/train refuse it first. Now one line, exit 2, nothing made."""
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(space), "--device", "cuda",
                                 "--out", str(tmp_path / "tune"), "--trials", "1", "--model", "test_resnet",
                                 "--no-pretrained", "--epochs", "1"])
    assert r.exit_code == 2 and r.output.strip().splitlines() == [
        "error: --device cuda asked for CUDA but no CUDA device is visible; use --device cpu or auto"], r.output
    assert not (tmp_path / "tune").exists()


def test_a_bare_tune_in_a_dacon_folder_names_a_tune_command_that_reads_its_train_csv(tmp_path, monkeypatch):
    """`imgcls tune --study s` in DACON's folder (train.csv: id,img_path,artist; no data/...) said 'no input given to
    train ...: imgcls train train.csv': another command, whose class column was not read either. It names the tune
    command that works as typed: `imgcls tune train.csv --target artist --study s`; nothing is made."""
    from conftest import make_image
    ids = [f"TRAIN_{i}" for i in range(4)]
    for i, n in enumerate(ids):
        make_image(tmp_path / "train" / f"{n}.jpg", size=(16, 16), seed=i)
    pd.DataFrame({"id": ids, "img_path": [f"./train/{n}.jpg" for n in ids], "artist": ["Monet", "Monet", "Degas",
                                                                                    "Degas"]}
                 ).to_csv(tmp_path / "train.csv", index=False)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["tune", "--study", "s", "--trials", "1"])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and said.startswith("error: no input given to tune and none of"), r.output
    assert said.endswith("this folder holds train.csv: imgcls tune train.csv --target artist --study s"), r.output
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("case", ["no label column", "no such --target", "every file missing",
                                  "--folds without a fold column", "fold not in the data", "one class",
                                  "a --target the space draws"])
def test_a_data_table_train_refuses_is_one_line_before_the_study_opens(data, tmp_path, case):
    """tune on a table train refuses (no label column, a --target that is no column, no file there, --folds it
    cannot take, one class) opened the study, printed "study 's' (new) ..." and trial 0's lines, then failed in
    the trial; a resumed study's trial failed and the next ran on. train's own data checks (train.run.check_data)
    run once before the study opens, for each --target the space can draw: one line, exit 2, nothing made."""
    rows = pd.DataFrame({"path": [str(p) for p in sorted(data.rglob("*.png"))]})
    rows["label"] = [Path(p).parent.name for p in rows["path"]]
    table, extra, words, space = tmp_path / "t.csv", [], "", SPACE
    if case == "no label column":
        rows = rows.rename(columns={"label": "painter"})
        words = "has no labels (no column label, class or target); --target COLUMN trains on one of its columns"
    elif case == "no such --target":
        extra, words = ["--target", "artist"], "--target artist: the data has no such column"
    elif case == "every file missing":
        rows["path"] = [str(tmp_path / "gone" / Path(p).name) for p in rows["path"]]
        words = "none of the"
    elif case == "--folds without a fold column":
        # its fix is tune's (a new study: s, resumed on the split's rows, would be refused), not `imgcls train`
        extra, words = ["--folds", "all"], "--folds needs a `fold` column" + \
            f", which {table} lacks: run imgcls split {table} --folds 5 (Python: run_split('{table}', " \
            "cfg=SplitConfig(folds=5))) first and tune on its table: imgcls tune data/splits.csv --model test_resnet " \
            "--no-pretrained --img-size 32 --epochs 1 --workers 0 --folds all --study s-split --space " \
            f"{tmp_path / 'space.yaml'} --trials 1 --out {tmp_path / 'tune'} (Python: run_tune(TuneConfig(" \
            f"study='s-split', space='{tmp_path / 'space.yaml'}', trials=1, out='{tmp_path / 'tune'}', " \
            "train=TrainConfig(src='data/splits.csv', model='test_resnet', pretrained=False, img_size=32, epochs=1, " \
            "workers=0, folds='all'))))"
    elif case == "fold not in the data":
        rows["fold"] = [i % 2 for i in range(len(rows))]
        extra, words = ["--folds", "2"], "fold(s) 2 not in the data (folds present: 0, 1)"
    elif case == "one class":
        rows["label"] = "a"
        words = "training needs at least 2 classes, column 'label' has 1"
    else:
        space += "target: {choice: [label, artist]}\n"
        words = "space key 'target' (artist): --target artist: the data has no such column"
    rows.to_csv(table, index=False)
    out = tmp_path / "tune"
    (tmp_path / "space.yaml").write_text(space)
    r = CliRunner().invoke(app, ["tune", str(table), "--study", "s", "--space", str(tmp_path / "space.yaml"),
                                 "--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--epochs", "1",
                                 "--out", str(out), "--trials", "1", "--workers", "0", *extra])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and words in said, r.output
    assert len(r.output.strip().splitlines()) == 1 and "trial 0" not in said and "study 's'" not in said, r.output
    assert not out.exists()


def test_a_split_fix_names_the_tune_command_with_its_own_options(data, tmp_path, space, monkeypatch):
    """tune's fix that splits the data first (here --folds all on a folder with no fold column) named `imgcls tune
    data/splits.csv ... --study s-split` with the train options only: pasted, it tuned the default space on the
    default metric into outputs/tune for 20 trials. Its command and its Python call, read back, are the study's own
    options (--space, --metric, --out, --trials, --timeout, --sampler) but its name and the data."""
    import shlex

    from imgcls.options import cli_fields
    monkeypatch.chdir(tmp_path)
    args = ["tune", "raw", "--study", "s", "--space", str(space), "--metric", "accuracy", "--out", "o ut",
            "--trials", "3", "--timeout", "1h", "--sampler", "random", "--model", "test_resnet", "--no-pretrained",
            "--img-size", "32", "--epochs", "1", "--workers", "0", "--folds", "all"]
    r = CliRunner().invoke(app, args)
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and "--folds needs a `fold` column" in said, r.output
    typed, python = said.split("tune on its table: ")[1].split(" (Python: ")
    got = []
    monkeypatch.setattr("imgcls.tune.run_tune", lambda c: got.append(c))
    for cmd in (args, shlex.split(typed)[1:]):
        r = CliRunner().invoke(app, cmd)
        assert r.exit_code == 0, r.output
    eval(python[:-1], {"run_tune": lambda c: got.append(c), "TuneConfig": TuneConfig, "TrainConfig": TrainConfig})
    asked, *fixes = got
    assert asked.trials == 3 and asked.out == "o ut", asked
    for fix in fixes:
        assert fix.study == "s-split" and fix.train.src == "data/splits.csv", typed
        assert {n: getattr(fix, n) for n in cli_fields(TuneConfig) if n != "study"} == \
            {n: getattr(asked, n) for n in cli_fields(TuneConfig) if n != "study"}, typed
        assert {n: getattr(fix.train, n) for n in cli_fields(TrainConfig) if n != "src"} == \
            {n: getattr(asked.train, n) for n in cli_fields(TrainConfig) if n != "src"}, typed
    assert fixes[0].typed == asked.typed and fixes[0].search_typed == asked.search_typed, typed


def test_an_out_inside_the_data_folder_is_one_line_before_the_study_opens(data, tmp_path, space):
    """`tune DATA --out DATA/tune` made the study (its study.db) in the data folder, printed its "study 's' (new)" and
    "trial 0" lines, and trial 0's train refused the data ('a folder of imgcls outputs ..., not a dataset'). The
    study folder is checked against the data's folders with the table (fsutil.check_output_location, train's
    check): one line, exit 2, the data folder as it was."""
    before = tree_snapshot(data)
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(space), "--model", "test_resnet",
                                 "--no-pretrained", "--img-size", "32", "--epochs", "1", "--out", str(data / "tune"),
                                 "--trials", "1", "--workers", "0"])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and said.startswith(f"error: output {data / 'tune' / 's'} is inside the input folder"), \
        r.output
    assert len(r.output.strip().splitlines()) == 1 and tree_snapshot(data) == before, r.output


def test_a_model_the_search_can_pick_without_weights_here_is_refused_before_the_study_opens(data, tmp_path,
                                                                                           monkeypatch):
    """`tune --model resnet10t` (no offline weights) opened the study, printed "study 's' (new) ..." and a trial 0
    line, then failed with the weights error. The starting weights of every model the search can pick (the fixed
    --model, each value of a `model` space key, with each `pretrained` value) are resolved up front: one line, exit
    2, nothing made."""
    import imgcls.weights as w
    monkeypatch.setattr(w, "hub_cached_file", lambda name: None)       # no weights of the test models here
    out = tmp_path / "tune"
    spaces = {"lr": "lr: {log_uniform: [1.0e-3, 1.0e-2]}\n",
              "model": "model: {choice: [test_efficientnet, test_resnet]}\n",
              "pretrained": "pretrained: {choice: [false, true]}\n"}
    for key, text in spaces.items():
        (tmp_path / f"{key}.yaml").write_text(text)
        fixed = ["--model", "test_resnet"] if key != "model" else []     # a typed --model the space varies: refused
        r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(tmp_path / f"{key}.yaml"),
                                     *fixed, "--img-size", "32", "--epochs", "1",
                                     "--out", str(out), "--trials", "1", "--workers", "0"])
        said = " ".join(r.output.split())
        assert r.exit_code == 2 and "no pretrained weights for 'test_" in said, (key, r.output)
        assert len(r.output.strip().splitlines()) == 1 and "trial 0" not in said and "study 's'" not in said, r.output
        assert (f"space key '{key}' (" in said) == (key != "lr"), said            # which value of the space
        if key == "pretrained":         # a bool value as the space file writes it (option_text), not True
            assert "space key 'pretrained' (true): no pretrained weights" in said, said
        assert not out.exists()
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(tmp_path / "lr.yaml"),
                                 "--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--epochs", "1",
                                 "--out", str(out), "--trials", "1", "--workers", "0", "--quiet"])
    assert r.exit_code == 0, r.output                  # --no-pretrained: random init, as train


# --- a conditional space: an option that acts only with another's value (Spec.needs) -----------------------------

def test_a_key_is_drawn_only_in_the_trials_that_meet_its_needs():
    """smoothing acts only with loss label-smoothing, focal_gamma only with loss focal: a trial with loss ce drew
    them anyway (and, since train refuses them there, would fail); now they are drawn only where they act, loss
    first whatever the file's order."""
    from imgcls.tune.space import trial_options
    space = parse_space({"smoothing": {"uniform": [0.0, 0.3]}, "focal_gamma": {"choice": [1.0, 3.0]},
                         "loss": {"choice": ["ce", "label-smoothing", "focal"]}, "lr": {"log_uniform": [1e-4, 1e-2]}})
    assert [p.name for p in space.ordered()] == ["loss", "smoothing", "focal_gamma", "lr"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    losses = set()
    for _ in range(30):
        p = space.suggest(study.ask())
        losses.add(p["loss"])
        assert ("smoothing" in p) == (p["loss"] == "label-smoothing") and ("focal_gamma" in p) == (p["loss"] == "focal")
        assert "lr" in p
        TrainConfig.from_dict(trial_options(TrainConfig(), p)).validate()      # train takes every trial's options
    assert losses == {"ce", "label-smoothing", "focal"}
    # a fixed loss decides it for every trial
    fixed = parse_space({"smoothing": {"uniform": [0.0, 0.3]}}, TrainConfig(loss="label-smoothing"))
    assert "smoothing" in fixed.suggest(study.ask(), TrainConfig(loss="label-smoothing"))
    # --sampler grid: Optuna's grid is every combination; those of an undrawn key repeat a run, and tune says so
    grid = parse_space({"loss": {"choice": ["ce", "label-smoothing"]}, "smoothing": {"choice": [0.05, 0.2]}})
    assert math.prod(len(v) for v in grid.grid().values()) == 4 and grid.grid_runs() == 3
    assert grid.conditional() == ["smoothing"]


def test_momentum_is_drawn_only_with_an_optimizer_that_has_one():
    """A need that is a test, not a list of values (options.When): momentum acts with the optimizers timm's registry
    gives a momentum (sgd, rmsprop, ...), sam by its base; a trial with adamw drew it and ran without it."""
    from imgcls.tune.space import trial_options
    space = parse_space({"momentum": {"uniform": [0.8, 0.95]}, "optimizer": {"choice": ["adamw", "sgd", "rmsprop"]}})
    assert [p.name for p in space.ordered()] == ["optimizer", "momentum"] and space.conditional() == ["momentum"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(20):
        p = space.suggest(study.ask())
        seen.add(p["optimizer"])
        assert ("momentum" in p) == (p["optimizer"] != "adamw"), p
        TrainConfig.from_dict(trial_options(TrainConfig(), p)).validate()
    assert seen == {"adamw", "sgd", "rmsprop"}
    # a fixed --momentum acts in the sgd trials only: the adamw ones run at the default, as if never typed
    fixed = parse_space({"optimizer": {"choice": ["adamw", "sgd"]}}, TrainConfig(momentum=0.5))
    assert fixed.names() == ["optimizer"]
    assert trial_options(TrainConfig(momentum=0.5), {"optimizer": "adamw"})["momentum"] == 0.9
    assert trial_options(TrainConfig(momentum=0.5), {"optimizer": "sgd"})["momentum"] == 0.5


def test_tune_passes_no_plots_to_its_trials():
    """train --no-plots is one of tune's fixed train options: every trial is drawn with it; a study resumed with
    another value goes on (figures are no option of what a trial learns)."""
    from imgcls.cli.tune import TRIAL_FLAGS
    from imgcls.train.rundir import option_changes
    from imgcls.tune.space import trial_options
    assert "plots" in TRIAL_FLAGS
    assert trial_options(TrainConfig(plots=False), {"lr": 0.01})["plots"] is False
    assert option_changes(TrainConfig().to_dict(), TrainConfig(plots=False).to_dict()) == []


@pytest.mark.timeout(120)
def test_run_tune_returns_its_study_folder_absolute(data, tmp_path, space, monkeypatch):
    """run_tune with a relative out returned the study folder relative to the working folder (run_predict's paths
    are absolute): a notebook that changed folder lost it. It is absolute."""
    monkeypatch.chdir(tmp_path)
    study_dir = run_tune(tune_cfg(data, tmp_path, space, trials=1, out="tune"))
    assert study_dir == tmp_path / "tune" / "s" and study_dir.is_absolute(), study_dir
    monkeypatch.chdir(data)
    assert (study_dir / "trials.csv").is_file()


@pytest.mark.timeout(120)
def test_trials_draw_figures_only_with_trial_plots(data, tmp_path, space, capsys):
    """Every trial drew curves.png and the confusion PNGs unless --no-plots: about a second a trial on figures
    nobody looks at (Ultralytics' tuner trains its trials with plots=False). TuneConfig.trial_plots (--trial-plots)
    is off by default: the trials draw none, the closing line and report.html say how to have them (the best
    trial's: best_config.yaml re-trained, which keeps plots on); --trial-plots draws them; with --no-plots it is
    refused as contradictory."""
    assert TuneConfig().trial_plots is False
    r = CliRunner().invoke(app, ["tune", "--help"], terminal_width=200)
    assert "--trial-plots" in r.output, r.output
    figures = ("curves.png", "confusion_matrix.png", "confusion_matrix_normalized.png")
    capsys.readouterr()
    study_dir = run_tune(tune_cfg(data, tmp_path, space, trials=1, train={"plots": True}))
    err = " ".join(capsys.readouterr().err.split())
    trial = study_dir / "trial_0000"
    assert (trial / "metrics.csv").is_file() and not any((trial / f).exists() for f in figures)
    assert yaml.safe_load((study_dir / "best_config.yaml").read_text())["plots"] is True
    best = study_dir / "best_config.yaml"
    said = (f"best_config.yaml (imgcls train --config {best} (Python: run_train(TrainConfig.resolve(config='{best}'"
            f")))), trials.csv, report.html, trial_NNNN/ run folders; the trials drew no figures (--trial-plots "
            f"(Python: trial_plots=True) draws them); best_config.yaml's run draws the best trial's")
    assert said in err, err
    assert "the trials drew no figures" in (study_dir / "report.html").read_text()
    # the trial's own report says why in tune's words: the user typed no --no-plots (its folds' reports too); the
    # same run folder outside a study is a --no-plots run's
    import html
    import shutil

    from imgcls.train.report import NO_PLOTS, TRIAL_NO_PLOTS, write_run_report

    def note(run_dir):
        page = html.unescape(write_run_report(run_dir).read_text())
        return [n for n in (TRIAL_NO_PLOTS, NO_PLOTS) if n in page]
    assert note(trial) == [TRIAL_NO_PLOTS]
    assert "--trial-plots (Python: trial_plots=True)" in TRIAL_NO_PLOTS
    shutil.copytree(trial, tmp_path / "runs" / "r", ignore=shutil.ignore_patterns("*.pt"))
    assert note(tmp_path / "runs" / "r") == [NO_PLOTS]
    shutil.copytree(trial, trial / "fold_0", ignore=shutil.ignore_patterns("*.pt", "report.html"))
    # a run the user trained into the trial's folder (--name fold_0) is no fold of it: its --no-plots is the user's
    assert note(trial / "fold_0") == [NO_PLOTS]
    config = trial / "config.yaml"      # the trial a k-fold set: fold_0 is its fold, drawn none by tune
    config.write_text(config.read_text().replace("\nfolds: null\n", "\nfolds: all\n"))
    assert note(trial / "fold_0") == [TRIAL_NO_PLOTS]
    study_dir = run_tune(tune_cfg(data, tmp_path, space, study="drawn", trials=1, trial_plots=True,
                                  train={"plots": True}))
    assert all((study_dir / "trial_0000" / f).is_file() for f in figures)
    assert "the trials drew no figures" not in " ".join(capsys.readouterr().err.split())
    with pytest.raises(UserError, match=r"--trial-plots .* with --no-plots .*: --no-plots draws no figure at all"):
        run_tune(tune_cfg(data, tmp_path, space, study="x", trial_plots=True, train={"plots": False}))
    assert not (tmp_path / "tune" / "x").exists()


def closing_line(monkeypatch, study_dir, cfg):
    """(what run_tune's closing lines say, the best_config.yaml they point at) for `cfg`: report.write_all over a
    study folder holding only best_config.yaml, its tables, report and top-5 table not written."""
    from imgcls import console
    from imgcls.tune import report
    for name in ("write_tables", "write_report", "print_top"):
        monkeypatch.setattr(report, name, lambda *a, **k: None)
    monkeypatch.setattr(report, "trials_frame", lambda *a, **k: None)
    said = []
    monkeypatch.setattr(console, "info", said.append)
    best = study_dir / "best_config.yaml"
    best.write_text("{}")
    report.write_all(None, cfg, study_dir, "", 1.0, "macro-F1")
    return said, best


def test_the_closing_line_gives_the_retrain_of_best_config_once(tmp_path, monkeypatch):
    """Where the trials drew no figures, run_tune's closing line gave `imgcls train --config best_config.yaml` (and
    its run_train call) twice: beside best_config.yaml and again for the best trial's figures. Once now: the
    figures' part points at best_config.yaml's run; report.html, which names no command beside it, keeps it."""
    from imgcls.tune import report
    said, best = closing_line(monkeypatch, tmp_path, TuneConfig())
    retrain = f"imgcls train --config {best} (Python: run_train(TrainConfig.resolve(config='{best}')))"
    assert said == [f"study outputs in {tmp_path}/: best_config.yaml ({retrain}), trials.csv, report.html, "
                    f"trial_NNNN/ run folders; the trials drew no figures (--trial-plots (Python: trial_plots=True) "
                    f"draws them); best_config.yaml's run draws the best trial's"], said
    assert report.trial_figures(TuneConfig(), tmp_path).endswith(f"; the best trial's: {retrain}")



def test_a_python_caller_of_run_tune_reads_the_closing_line_s_best_config_pointer_as_a_run_train_call(tmp_path,
                                                                                                      monkeypatch):
    """run_tune's closing line pointed at "best_config.yaml (imgcls train --config)", a flag only, where its
    figures' line (trial_figures) already gave the run_train call: it names the same command and call."""
    said, best = closing_line(monkeypatch, tmp_path, TuneConfig(trial_plots=True))
    assert said == [f"study outputs in {tmp_path}/: best_config.yaml (imgcls train --config {best} (Python: "
                    f"run_train(TrainConfig.resolve(config='{best}')))), trials.csv, report.html, trial_NNNN/ run "
                    f"folders"]


@pytest.mark.timeout(120)
def test_trial_0_is_a_trial_from_its_start_with_the_storage_elsewhere(data, tmp_path, space):
    """A trial knows it is one by its folder's parent being a tune study (outputs.output_kind: trials.csv or
    study.db). With --storage elsewhere (a journal file, an RDB URL) the study folder held neither until trial 0
    ended: trial 0's report.html gave the plain --no-plots wording and `imgcls runs` listed it as a run while it
    trained. tune marks its folder a study (trials.csv's header) before the first trial."""
    import html

    from imgcls.outputs import output_kind
    from imgcls.runs import find_runs
    from imgcls.train.report import NO_PLOTS, TRIAL_NO_PLOTS
    seen = {}

    class Look(Callback):
        def on_epoch_end(self, epoch, logs):
            study_dir = tmp_path / "tune" / "s"
            seen["study"] = output_kind(study_dir)
            seen["kinds"] = {r.name: r.kind for r in find_runs(study_dir)}
            r = CliRunner().invoke(app, ["runs", str(study_dir), "--json", "-", "--filter", "kind=trial"])
            seen["cli"] = (r.exit_code, r.output)

    study_dir = run_tune(tune_cfg(data, tmp_path, space, trials=1, storage=str(tmp_path / "journal.log")),
                         callbacks=[Look()])
    assert not (study_dir / "study.db").exists()
    assert seen["study"] == "tune study" and seen["kinds"] == {"trial_0000": "trial"}, seen
    assert seen["cli"][0] == 0 and "trial_0000" in seen["cli"][1], seen["cli"]
    page = html.unescape((study_dir / "trial_0000" / "report.html").read_text())
    assert TRIAL_NO_PLOTS in page and NO_PLOTS not in page


@pytest.mark.parametrize("storage", ["default", "journal"])
def test_a_new_study_folder_is_a_study_from_the_moment_it_appears(data, tmp_path, space, monkeypatch, storage):
    """run_tune made the study folder empty and wrote its trials.csv once the study had opened (study.db, with the
    default storage, as it opened): until then the folder was no step's output, and `imgcls train --out OUT --name
    STUDY --exist-ok` trained into it. The folder appears holding trials.csv (filled as a hidden folder, renamed
    into place): train refuses it from then on, and nothing else is left in OUT."""
    import imgcls.tune
    from imgcls.fsutil import process_umask
    from imgcls.train.run import _check_up_front
    out = tmp_path / "tune"
    seen = []
    real = imgcls.tune.open_study

    def open_study(*a, **k):
        train = TrainConfig(**dict(TINY, src=str(data), out=str(out), name="s", exist_ok=True))
        with pytest.raises(UserError) as e:          # the checks `imgcls train` makes before it trains
            _check_up_front(train, None, [])
        seen.append(str(e.value))
        return real(*a, **k)
    monkeypatch.setattr(imgcls.tune, "open_study", open_study)
    # the first trial fails on a fixed option (a --crop-from that crops nothing at --img-size 32: train's check once
    # timm gave the size; a table's own faults are refused before the study opens): the study is removed again, the
    # folder with it
    kw = {} if storage == "default" else {"storage": str(tmp_path / "journal.log")}
    with pytest.raises(UserError, match="--crop-from 1.01 at --img-size 32 resizes the images to 32 px: no crop"):
        run_tune(tune_cfg(data, tmp_path, space, trials=1, train={"crop_from": 1.01}, **kw))
    assert seen == [f"run folder {out / 's'} holds an imgcls tune study; a run is trained into a folder of its own: "
                    f"choose another --name (Python: name=)"], seen
    assert not out.exists()
    run_tune(tune_cfg(data, tmp_path, space, trials=1, train={"plots": False}, **kw))
    assert len(seen) == 2 and sorted(p.name for p in out.iterdir()) == ["s"]
    assert (out / "s").stat().st_mode & 0o777 == 0o777 & ~process_umask()


def test_a_study_folder_left_by_a_killed_tune_is_removed_by_a_later_one(tmp_path):
    """A tune killed (kill -9) between making the hidden folder it fills (.STUDY.XXXXXXXX.tmp) and renaming it into
    place left it in OUT for ever. A later tune of the study removes those untouched for fsutil.STALE_TEMP_SECONDS
    that hold only what it writes there (trials.csv's header, the temporary file of that write), whether it makes
    the study folder or finds it; never a live process's younger one, one holding anything else, nor another
    study's."""
    import time

    import imgcls.tune
    from imgcls import fsutil
    from imgcls.tune.report import trial_columns
    out = tmp_path / "tune"
    old = time.time() - fsutil.STALE_TEMP_SECONDS - 60
    header = ",".join(trial_columns()) + "\n"

    def temp(name, files=None, age=old):
        d = out / name
        d.mkdir(parents=True)
        for f, text in (files or {}).items():
            (d / f).write_text(text)
        os.utime(d, (age, age))
        return d
    stale = [temp(".s.abcd1234.tmp", {"trials.csv": header}), temp(".s.a_c91234.tmp"),
             temp(".s.zzzz1234.tmp", {".trials.csv.q1w2e3r4.tmp.csv": ""})]
    kept = [temp(".s.live1234.tmp", {"trials.csv": header}, age=time.time()),
            temp(".s.mine1234.tmp", {"trials.csv": header, "notes.txt": "mine"}),
            temp(".s.rows1234.tmp", {"trials.csv": header + "0,complete\n"}),
            temp(".s.x.abcd1234.tmp", {"trials.csv": header}), temp(".s2.abcd1234.tmp")]
    assert imgcls.tune._new_study_folder(out / "s")
    assert all(not d.exists() for d in stale) and all(d.is_dir() for d in kept)
    assert sorted(p.name for p in out.iterdir()) == sorted(["s", *(d.name for d in kept)])
    again = temp(".s.abcd1234.tmp", {"trials.csv": header})
    assert not imgcls.tune._new_study_folder(out / "s") and not again.exists()     # the folder there: swept too


def test_a_study_refused_at_opening_leaves_no_folder(data, tmp_path, space):
    """tune --storage DB with another --metric than DB's study has was refused as the study opened, after the study
    folder was made holding trials.csv's header: the refused command left OUT/STUDY behind, a folder a rerun and
    `imgcls train --name STUDY` took for a tune study of no trials. It is removed again with the folders it made."""
    from imgcls.tune import open_study
    journal = str(tmp_path / "journal.log")
    first = tune_cfg(data, tmp_path, space, storage=journal, out=str(tmp_path / "first"))
    open_study(first, load_space(first.space, first.train), journal)
    out = tmp_path / "second" / "deep"
    with pytest.raises(UserError, match="study 's' optimises --metric macro_f1, not loss"):
        run_tune(tune_cfg(data, tmp_path, space, storage=journal, out=str(out), metric="loss"))
    assert not (tmp_path / "second").exists()
    (out / "s").mkdir(parents=True)         # a folder that was there is left as it was
    with pytest.raises(UserError, match="optimises --metric macro_f1, not loss"):
        run_tune(tune_cfg(data, tmp_path, space, storage=journal, out=str(out), metric="loss"))
    assert (out / "s").is_dir() and not any((out / "s").iterdir())


def test_a_key_or_fixed_option_no_trial_lets_act_is_refused():
    with pytest.raises(UserError, match="space key 'smoothing': --smoothing acts only with --loss label-smoothing, "
                                        "and this run has --loss ce"):
        parse_space({"smoothing": {"uniform": [0.0, 0.3]}})
    with pytest.raises(UserError, match="space key 'smoothing' acts only with --loss label-smoothing, which space key "
                                        "'loss' never takes; add label-smoothing to 'loss'"):
        parse_space({"smoothing": {"uniform": [0.0, 0.3]}, "loss": {"choice": ["ce", "focal"]}})
    with pytest.raises(UserError, match="--sam-rho acts only with --optimizer sam, which space key 'optimizer' never "
                                        "takes"):
        load_space(None, TrainConfig(sam_rho=0.1))          # the default space's optimizers: adamw, sgd


def test_a_fixed_option_acts_in_the_trials_whose_space_value_it_needs(data, tmp_path):
    """tune --smoothing 0.2 with a space over loss: refused before (train refuses --smoothing with --loss ce), or,
    before train refused it, silently ignored in the ce trials; now it acts in the label-smoothing trials and keeps
    its default in the others. With a space that does not vary loss it is refused before any trial."""
    spaced = tmp_path / "loss.yaml"
    spaced.write_text("loss: {choice: [ce, label-smoothing]}\n")
    args = ["tune", str(data), "--study", "s", "--model", "test_resnet", "--no-pretrained", "--img-size", "32",
            "--batch-size", "8", "--workers", "0", "--device", "cpu", "--aug", "none", "--val-split", "0.3",
            "--epochs", "1", "--pruner", "none", "--smoothing", "0.2", "--out", str(tmp_path / "tune")]
    r = CliRunner().invoke(app, [*args, "--space", str(spaced), "--sampler", "grid", "--quiet"])
    assert r.exit_code == 0, r.output
    t = trials_csv(tmp_path / "tune" / "s")
    assert sorted(t["loss"]) == ["ce", "label-smoothing"] and list(t["state"]) == ["complete"] * 2
    for _, row in t.iterrows():
        got = yaml.safe_load((Path(row["run_dir"]) / "config.yaml").read_text())
        assert (got["loss"], got["smoothing"]) == (row["loss"], 0.2 if row["loss"] == "label-smoothing" else 0.1)
    other = tmp_path / "lr.yaml"
    other.write_text("lr: {log_uniform: [1.0e-3, 1.0e-2]}\n")
    out = tmp_path / "tune2"
    r = CliRunner().invoke(app, [*args[:-1], str(out), "--loss", "ce", "--space", str(other)])
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert "--smoothing acts only with --loss label-smoothing, and this run has --loss ce" in lines[0]
    assert not out.exists()


def test_a_fixed_flag_typed_at_its_default_that_acts_in_no_trial_is_refused(data, tmp_path):
    """tune --momentum 0.9 (its default) with a space whose optimizers have no momentum: refused before any trial,
    as imgcls train refuses it; a space that draws sgd makes it act in those trials, and the typed value passes."""
    from imgcls.tune.space import parse_space
    adam_only = {"optimizer": {"choice": ["adamw", "adam"]}}
    with pytest.raises(UserError, match="--momentum acts only with --optimizer that has a momentum"):
        parse_space({"lr": {"log_uniform": [1e-4, 1e-2]}}, TrainConfig(), typed={"momentum"})
    with pytest.raises(UserError, match="--momentum acts only"):
        parse_space(adam_only, TrainConfig(), typed={"momentum"})
    parse_space({"optimizer": {"choice": ["adamw", "sgd"]}}, TrainConfig(), typed={"momentum"})
    # a typed value the space varies would be replaced by every trial's draw: it acts nowhere, refused
    with pytest.raises(UserError, match=r"--lr typed, but the space varies it: each trial draws its own value; drop "
                                        r"the flag, or give a --space without lr to fix it"):
        parse_space({"lr": {"log_uniform": [1e-4, 1e-2]}}, TrainConfig(), typed={"lr"})
    parse_space(adam_only, TrainConfig())           # not typed: its default passes
    space, out = tmp_path / "lr.yaml", tmp_path / "tune"
    space.write_text("lr: {log_uniform: [1.0e-3, 1.0e-2]}\n")
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--model", "test_resnet", "--momentum", "0.9",
                                 "--space", str(space), "--out", str(out)])
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "--momentum acts only" in lines[0], r.output
    assert not out.exists()


def test_config_values_the_space_varies_are_named_as_replaced(data, tmp_path, space, monkeypatch):
    """tune --config best_config.yaml replaced the config's lr / weight_decay by each trial's draw in silence (by
    design: the space's values replace the fixed ones); now one line names them and their config values. A typed
    flag's value is not the config's; without --config nothing is said. (The search itself is not run.)"""
    import imgcls.tune as tune_mod
    monkeypatch.setattr(tune_mod, "_search", lambda *a, **k: tmp_path / "tune" / "s")
    conf = tmp_path / "best_config.yaml"
    TrainConfig(**{**TINY, "lr": 0.003, "weight_decay": 0.05}, src=str(data), epochs=1).save(conf)
    runs = {}
    for name, extra in (("config", ["--config", conf]), ("typed", ["--config", conf, "--lr", "0.005"]),
                        ("none", ["--model", "test_resnet", "--no-pretrained"])):
        r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(space), "--out",
                                     str(tmp_path / "tune"), *map(str, extra)])
        assert r.exit_code == (2 if name == "typed" else 0), r.output
        runs[name] = " ".join(r.output.split())
    assert ("the space varies lr, weight_decay: best_config.yaml's lr 0.003, weight_decay 0.05 are replaced by each "
            "trial's draw; a --space without them keeps the config's") in runs["config"], runs["config"]
    # a typed --lr the space varies acts in no trial: refused in one line, as other typed flags that would not act
    assert "--lr typed, but" in runs["typed"] and "varies it" in runs["typed"], runs["typed"]
    assert "the space varies" not in runs["none"], runs["none"]


def test_run_tune_from_a_runs_config_yaml_starts_as_imgcls_tune_config_does(data, tmp_path, space, monkeypatch):
    """`imgcls tune --config RUN/config.yaml` searched from the run's options, while its Python form,
    run_tune(TuneConfig(config=FILE, train=TrainConfig.resolve({}, config=FILE))), was refused: the file's own
    name / out (a run's config.yaml records them) read as the caller's, "leave the train's name / out unset",
    which the caller never set (the command reset them itself). run_tune sets them aside on its copy, as the
    command did; a name the caller gives over the file's is still refused. (The search itself is not run.)"""
    import imgcls.tune as tune_mod
    seen = []
    monkeypatch.setattr(tune_mod, "_search", lambda cfg, *a, **k: seen.append(cfg) or tmp_path / "tune" / "s")
    conf = tmp_path / "r1" / "config.yaml"
    conf.parent.mkdir()
    TrainConfig(**TINY, src=str(data), epochs=1, name="r1", out=str(tmp_path / "runs"), exist_ok=True).save(conf)
    base = TrainConfig.resolve({}, config=conf)
    assert base.name == "r1" and base.exist_ok
    tc = TuneConfig(study="s", space=str(space), out=str(tmp_path / "tune"), config=str(conf), train=base)
    tune_mod.run_tune(tc)
    r = CliRunner().invoke(app, ["tune", "--study", "s", "--space", str(space), "--out", str(tmp_path / "tune"),
                                 "--config", str(conf)])
    assert r.exit_code == 0, r.output
    assert len(seen) == 2 and seen[0].train == seen[1].train, (seen[0].train, seen[1].train)
    assert seen[0].train.name is None and seen[0].train.out == TrainConfig.out and seen[0].train.lr == base.lr
    assert seen[0].train.exist_ok is False      # the run's --exist-ok set aside too: each trial's folder is new
    assert tc.train.name == "r1"        # the caller's config as given
    with pytest.raises(UserError, match=r"TrainConfig\(name='mine'\)"):
        tune_mod.run_tune(TuneConfig(study="s", space=str(space), out=str(tmp_path / "tune"), config=str(conf),
                                     train=TrainConfig.resolve({"name": "mine"}, config=conf)))
    # the file read without config= (the run's name then reads as the caller's): the line says how to give it
    with pytest.raises(UserError, match=r"TrainConfig\(name='r1', out=.*; a config.yaml read by "
                                        r"TrainConfig.resolve\(config=FILE\) gives its run's: pass "
                                        r"TuneConfig\(config=FILE\) too"):
        tune_mod.run_tune(TuneConfig(study="s", space=str(space), out=str(tmp_path / "tune"), train=base))


def test_the_config_file_is_read_once_and_a_python_caller_s_options_are_laid_over_it(data, tmp_path, space,
                                                                                     monkeypatch):
    """`imgcls tune --config FILE` read FILE in the command (TrainConfig.resolve) and again in run_tune (its values,
    for the options the space replaces), and run_tune(TuneConfig(config=FILE, train=TrainConfig(batch_size=4)))
    trained with none of FILE's options while naming them as replaced. run_tune reads it, once, for both: the
    caller's options (the flags typed) laid over its values, as `--config FILE --batch-size 4`. (The search itself
    is not run.)"""
    import imgcls.tune as tune_mod
    seen = []
    monkeypatch.setattr(tune_mod, "_search", lambda cfg, *a, **k: seen.append(cfg) or tmp_path / "tune" / "s")
    conf = tmp_path / "best_config.yaml"
    TrainConfig(**{**TINY, "lr": 0.003}, src=str(data), epochs=1).save(conf)
    reads = []
    read_text = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (reads.append(self) if self == conf else None)
                        or read_text(self, *a, **k))
    r = CliRunner().invoke(app, ["tune", "--study", "s", "--space", str(space), "--out", str(tmp_path / "tune"),
                                 "--config", str(conf), "--batch-size", "4"])
    assert r.exit_code == 0 and len(reads) == 1, (reads, r.output)
    run_tune(TuneConfig(study="s", space=str(space), out=str(tmp_path / "tune"), config=str(conf),
                        train=TrainConfig(batch_size=4)))
    run_tune(TuneConfig(study="s", space=str(space), out=str(tmp_path / "tune"), config=str(conf),
                        train=TrainConfig.resolve({"batch_size": 4}, config=conf)))    # the file read by the caller
    assert len(seen) == 3 and seen[0].train == seen[1].train == seen[2].train, [c.train for c in seen]
    assert seen[1].train.model == "test_resnet" and seen[1].train.batch_size == 4 and seen[1].typed == {"batch_size"}
    with pytest.raises(UserError, match=r"config file .*missing.yaml does not exist"):    # not read as no options
        run_tune(TuneConfig(study="s", space=str(space), out=str(tmp_path / "tune"), config=str(tmp_path /
                                                                                            "missing.yaml")))

def test_a_train_read_from_the_config_file_keeps_an_option_it_set_to_the_default(data, tmp_path, space,
                                                                                 monkeypatch):
    """run_tune laid a train read from the --config file (TrainConfig.resolve({...}, config=FILE), the form the
    README gave) over the file again, as it lays a bare TrainConfig's options: an option it set back to its default
    (batch_size=32 over the file's 8) was not 'set', so each trial trained with the file's 8, while `--config FILE
    --batch-size 32` trains with 32. Such a train is taken as it is. (The search itself is not run.)"""
    import imgcls.tune as tune_mod
    seen = []
    monkeypatch.setattr(tune_mod, "_search", lambda cfg, *a, **k: seen.append(cfg) or tmp_path / "tune" / "s")
    conf = tmp_path / "best_config.yaml"
    TrainConfig(**{**TINY, "batch_size": 8}, src=str(data), epochs=1).save(conf)
    r = CliRunner().invoke(app, ["tune", "--study", "s", "--space", str(space), "--out", str(tmp_path / "tune"),
                                 "--config", str(conf), "--batch-size", str(TrainConfig.batch_size)])
    assert r.exit_code == 0, r.output
    run_tune(TuneConfig(study="s", space=str(space), out=str(tmp_path / "tune"), config=str(conf),
                        train=TrainConfig.resolve({"batch_size": TrainConfig.batch_size}, config=conf)))
    # so is a copy of one with other options (dataclasses.replace kept the fields, not read_from's file: the copy's
    # batch_size=32 was laid under the file's 8 again)
    read = TrainConfig.resolve({}, config=conf)
    run_tune(TuneConfig(study="s", space=str(space), out=str(tmp_path / "tune"), config=str(conf),
                        train=dataclasses.replace(read, batch_size=TrainConfig.batch_size)))
    assert [c.train.batch_size for c in seen] == [TrainConfig.batch_size] * 3, [c.train for c in seen]
    assert seen[0].train == seen[1].train == seen[2].train, [c.train for c in seen]
    assert dataclasses.replace(read).read_from(conf) and not TrainConfig().read_from(conf)
    # what it was read from is no option: not written to config.yaml, nor shown
    assert "_config" not in read.to_dict() and "_config" not in repr(read)


def test_a_python_callers_fixed_option_the_space_varies_is_refused_as_the_typed_flag_is(data, tmp_path, space,
                                                                                         monkeypatch):
    """`imgcls tune --lr 0.005` with a space over lr is refused (each trial's draw replaces it: it acts nowhere),
    while run_tune(TuneConfig(train=TrainConfig(lr=0.005))) searched with the caller's lr silently replaced: the
    typed options were the CLI's alone. TuneConfig.typed left unset (None) is now the train options set to other
    than their defaults, less those its config file gives (a --config value is no flag: named as replaced), as
    run_train(resume=) and run_runs take a Python caller's. (The search itself is not run.)"""
    import imgcls.tune as tune_mod
    seen = []
    monkeypatch.setattr(tune_mod, "_search", lambda cfg, *a, **k: seen.append(cfg) or tmp_path / "tune" / "s")
    with pytest.raises(UserError, match=r"--lr typed, but .* varies it: each trial draws its own value"):
        tune_mod.run_tune(tune_cfg(data, tmp_path, space, train={"lr": 0.005}))
    assert not (tmp_path / "tune").exists()
    tune_mod.run_tune(tune_cfg(data, tmp_path, space, train={"lr": 0.005}, typed=frozenset()))    # the CLI's: none
    conf = tmp_path / "best_config.yaml"
    TrainConfig(**{**TINY, "lr": 0.003}, src=str(data), epochs=1).save(conf)
    tune_mod.run_tune(TuneConfig(study="s", space=str(space), out=str(tmp_path / "tune"), config=str(conf),
                                 train=TrainConfig.resolve({}, config=conf)))
    assert len(seen) == 2 and seen[0].typed == frozenset() and "lr" not in seen[1].typed, [c.typed for c in seen]



def test_a_python_callers_train_sampler_the_space_varies_is_refused_as_trains(data, tmp_path, monkeypatch):
    """run_tune(TuneConfig(train=TrainConfig(sampler="weighted"))) under a space over sampler searched with the
    caller's sampler silently replaced by every draw: train's sampler (no tune flag: tune's --sampler is Optuna's)
    was left out of a Python caller's typed options. Now it is refused as the others are, named as train's, not as
    tune's --sampler; at its default, or given by the config file, it is not. (The search itself is not run.)"""
    import imgcls.tune as tune_mod
    seen = []
    monkeypatch.setattr(tune_mod, "_search", lambda cfg, *a, **k: seen.append(cfg) or tmp_path / "tune" / "s")
    space = tmp_path / "sampler.yaml"
    space.write_text("sampler: {choice: [shuffle, weighted]}\nlr: {log_uniform: [1.0e-3, 1.0e-2]}\n")
    with pytest.raises(UserError, match=r"^train's sampler \(TrainConfig\(sampler=\); tune's --sampler is Optuna's\) "
                                        r"set, but .* varies it: each trial draws its own value; leave it at its "
                                        r"default, or give a --space without sampler to fix it$"):
        tune_mod.run_tune(tune_cfg(data, tmp_path, space, train={"sampler": "weighted"}))
    assert not (tmp_path / "tune").exists()
    tune_mod.run_tune(tune_cfg(data, tmp_path, space))                          # at its default: nothing set
    conf = tmp_path / "best_config.yaml"
    TrainConfig(**TINY, sampler="weighted", src=str(data), epochs=1).save(conf)
    tune_mod.run_tune(TuneConfig(study="s", space=str(space), out=str(tmp_path / "tune"), config=str(conf),
                                 train=TrainConfig.resolve({}, config=conf)))   # the config's: named as replaced
    assert len(seen) == 2 and "sampler" not in seen[1].typed, [c.typed for c in seen]
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(space), "--out",
                                 str(tmp_path / "tune"), "--sampler", "random", "--config", str(conf)])
    assert r.exit_code == 0 and "best_config.yaml's sampler weighted, lr" in " ".join(r.output.split()), \
        r.output     # the command line's --sampler is Optuna's: no typed train option

class _FakeTrial:                              # what TrialReporter uses of an Optuna trial, pruned at `prune_at`
    def __init__(self, prune_at):
        self.user_attrs, self.prune_at, self.n = {}, prune_at, 0

    def report(self, value, step):
        self.n = step

    def set_user_attr(self, k, v):
        self.user_attrs[k] = v

    def should_prune(self):
        return self.n == self.prune_at


def test_pruned_trials_say_how_far_each_got_per_trial_and_per_fold(tmp_path, space):
    """With --folds all the report's 'N trial(s) stopped after X epochs of the Y' summed over folds and trials (and
    counted a fold's epochs as the trial's: all's folds were not known), which read as one trial's count. Now each
    pruned trial is named with the fold it was pruned in; trials.csv keeps epochs_run (the trial's, over its folds)
    and adds folds / epochs_by_fold."""
    from optuna.trial import TrialState, create_trial

    from imgcls.tune import TrialReporter
    from imgcls.tune.report import pruning_line, trials_frame

    rep = TrialReporter(_FakeTrial(prune_at=4), "macro_f1")
    for fold, folds_after in ((0, 2), (1, 1)):
        rep.on_run_start({"fold": fold, "total_epochs": 3, "folds_after": folds_after})
        for e in range(1, 4):
            try:
                rep.on_epoch_end(e, {"val_macro_f1": 0.5})
            except optuna.TrialPruned:
                break
    attrs = rep.trial.user_attrs
    assert attrs["epochs_run"] == 4 and attrs["folds"] == 3 and attrs["fold_epochs"] == {"0": 3, "1": 1}

    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.5, user_attrs={
        "epochs_run": 9, "folds": 3, "fold_epochs": {"0": 3, "1": 3, "2": 3}}))
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs=attrs))
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={"epochs_run": 2, "folds": 3,
                                                                      "fold_epochs": {"0": 2}}))
    frame = trials_frame(study)
    assert list(frame["epochs_run"]) == [9, 4, 2]                      # its meaning kept: over the trial's folds
    assert list(frame["epochs_by_fold"]) == ["fold_0=3 fold_1=3 fold_2=3", "fold_0=3 fold_1=1", "fold_0=2"]
    cfg = tune_cfg(tmp_path, tmp_path, space, train={"folds": "all", "epochs": 3})
    line = pruning_line(frame[frame["state"] == "pruned"], cfg)
    assert line == ("2 trial(s) pruned, each set to run 3 epochs in each of 3 folds (9 in all): trial 1 in fold_1 "
                    "after 1 of its 3 (4 of 9 in all), trial 2 in fold_0 after 2 of its 3 (2 of 9 in all)")
    cfg = tune_cfg(tmp_path, tmp_path, space, train={"epochs": 3})
    one = pd.DataFrame({"trial": [1, 4], "epochs_run": [2, 1], "folds": None, "epochs_by_fold": ""})
    assert pruning_line(one, cfg) == "2 trial(s) pruned, each set to run 3 epochs: trial 1 after 2, trial 4 after 1"
    many = pd.DataFrame({"trial": range(1, 13), "epochs_run": 1, "folds": None, "epochs_by_fold": ""})
    assert pruning_line(many, cfg).endswith(", trial 10 after 1 and 2 more (all in trials.csv)")   # the first 10


def test_report_rounds_its_tables_and_names_the_plots_axes(tmp_path, space, monkeypatch):
    """The report printed 0.4222222222222222 and lr 0.0006466422717414558; Optuna's plots said "Objective Value",
    "Intermediate Value" and "Step" (ticks 1.2, 1.4 for epochs), and the slice plot's lr tick labels ran into one
    another. The tables are rounded as the terminal prints them (trials.csv keeps every digit), the axes name the
    objective and the epoch, epochs and trials tick as whole numbers, and no two tick labels of an axis overlap."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial
    from matplotlib.text import Text

    import imgcls.report as rp
    from imgcls.tune.report import trials_frame, write_report
    cats = {"aug": ["medium"], "loss": ["label-smoothing"], "mix": ["none", "cutmix"], "optimizer": ["adamw", "sgd"],
            "sampler": ["shuffle", "weighted"]}
    dists = {**{k: CategoricalDistribution(v) for k, v in cats.items()},
             "lr": FloatDistribution(1e-4, 1e-3, log=True), "weight_decay": FloatDistribution(1e-4, 0.05, log=True)}
    study = optuna.create_study(direction="maximize")
    for k, (lr, wd, value) in enumerate([(0.0006466422717414558, 0.013981961408994055, 0.4222222222222222),
                                         (0.00013449326615130812, 0.00011498870747119459, 0.18761904761904763),
                                         (0.0002459125638339736, 0.02102330874348013, 0.22725274725274724)]):
        params = {**{c: v[k % len(v)] for c, v in cats.items()}, "lr": lr, "weight_decay": wd}
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=value, params=params, distributions=dists,
                                     intermediate_values={1: value / 2, 2: value}))
    figures, save = [], rp.figure_data_uri

    def spy(fig, dpi=100):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        texts = [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
        axes = []
        for ax in fig.axes:
            for axis, view in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
                lo, hi = sorted(view)
                labels = [t for t, v in zip(axis.get_majorticklabels(), axis.get_majorticklocs())
                          if t.get_text() and lo <= v <= hi]
                minor = [t for t, v in zip(axis.get_minorticklabels(), axis.get_minorticklocs())
                         if t.get_text() and lo <= v <= hi]
                axes.append((axis.get_label_text(), [t.get_text() for t in labels + minor],
                             [t.get_window_extent(renderer) for t in labels + minor]))
        figures.append((texts, axes))
        return save(fig, dpi)
    monkeypatch.setattr(rp, "figure_data_uri", spy)
    cfg = tune_cfg(tmp_path, tmp_path, space, train={"epochs": 2, "plots": True})
    page = write_report(study, cfg, tmp_path, "sqlite://", trials_frame(study), 3.0, "val macro-F1").read_text()
    assert "0.4222222222222222" not in page and "0.0006466422717414558" not in page
    assert '<td class="num">0.4222</td>' in page and '<td class="num">0.000647</td>' in page
    assert '<td class="num">0.014</td>' in page
    assert len(figures) == 5
    every = [t for texts, _ in figures for t in texts]
    assert not {"Objective Value", "Intermediate Value", "Step", "Best Value"} & set(every), set(every)
    assert every.count("val macro-F1 (best epoch)") >= 4         # history, importances, parallel, slice
    axes = {label: (ticks, boxes) for _, fig_axes in figures for label, ticks, boxes in fig_axes if label}
    assert axes["epoch"][0] == ["1", "2"] and axes["Trial"][0] == ["0", "1", "2"]
    assert "val macro-F1 at the epoch" in axes
    for label, (ticks, boxes) in axes.items():                   # lr, weight_decay, ...: readable ticks
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), (label, ticks)
    assert len(axes["lr"][0]) >= 2, axes["lr"]


def test_a_no_plots_study_s_report_draws_no_figure_and_says_so(tmp_path, space, monkeypatch):
    """report.html drew Optuna's five plots at every run_tune, --no-plots or not: a --no-plots tune drew figures
    after all. --no-plots now governs them too: none drawn, one line in their place, as train's report says it;
    without it the five are drawn as before."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    import imgcls.report as rp
    from imgcls.tune.report import NO_PLOTS, trials_frame, write_report
    study = optuna.create_study(direction="maximize")
    for k, value in enumerate((0.4, 0.6)):
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=value, params={"lr": 1e-3 * (k + 1)},
                                     distributions={"lr": FloatDistribution(1e-4, 1e-2, log=True)},
                                     intermediate_values={1: value}))
    drawn, save = [], rp.figure_data_uri
    monkeypatch.setattr(rp, "figure_data_uri", lambda fig, dpi=100: drawn.append(fig) or save(fig, dpi))
    cfg = tune_cfg(tmp_path, tmp_path, space, train={"plots": False})
    page = write_report(study, cfg, tmp_path, "sqlite://", trials_frame(study), 1.0, "val macro-F1").read_text()
    assert drawn == [] and "data:image/png" not in page
    assert page.count(NO_PLOTS.replace("'", "&#39;")) == 1 and "figures not drawn (--no-plots)" in page
    assert "the trials drew no figures (--no-plots)" in page
    page = write_report(study, tune_cfg(tmp_path, tmp_path, space, train={"plots": True}), tmp_path, "sqlite://",
                        trials_frame(study), 1.0, "val macro-F1").read_text()
    assert len(drawn) == 5 and "figures not drawn" not in page


def _one_trial_on_other_data(tmp_path, space, monkeypatch, *more_fixed):
    """Study 's' of one trial started on `other/` (fixed options typed), with a working folder whose default input
    (data/raw) is other images: (the study's data folder, the options a resume repeats)."""
    monkeypatch.chdir(tmp_path)
    studied = make_image_folder(tmp_path / "other", {"a": 10, "b": 10}, size=(40, 40))
    make_image_folder(tmp_path / "data" / "raw", {"x": 6, "y": 6}, size=(40, 40))
    common = ["--study", "s", "--space", str(space), "--out", "tune", "--pruner", "none", "--workers", "0",
              "--device", "cpu"]
    fixed = ["--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--epochs", "1", "--batch-size", "8",
             "--aug", "none", *more_fixed]
    r = CliRunner().invoke(app, ["tune", str(studied), *common, *fixed, "--quiet", "--trials", "1"])
    assert r.exit_code == 0, r.output
    return studied, common


def test_the_study_name_alone_resumes_a_study_on_its_own_data_with_its_fixed_options(tmp_path, space, monkeypatch):
    """The README's `imgcls tune --study lite0 --trials 30` ('the same study again: resumes it') after a study
    started with --model / --epochs / --img-size ... was refused: the options it left out were taken as train's
    defaults, 'other fixed train options'. Options left unset are the study's own, as train --resume takes its
    config.yaml's; a typed one that differs, even at train's default, is still refused.
    And with no SRC, the resumed study (started on `other/`) took the working folder's default input (data/raw
    here): its new trials trained and were scored on other images than the study's first, in one study, with only
    the default input's 'using data/raw' line. The data left unset is the study's own, as every other fixed option
    (and train --resume's config.yaml src). One study (one trial, then one resumed) checks both."""
    studied, common = _one_trial_on_other_data(tmp_path, space, monkeypatch, "--val-split", "0.3")
    r = CliRunner().invoke(app, ["tune", *common, "--trials", "2"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert ("study 's' resumes with the fixed train options it was started with: --model test_resnet "
            "--no-pretrained --img-size 32 --aug none --val-split 0.3 --epochs 1 --batch-size 8") in said, said
    assert (f"resumes on the data it was started with: {studied.resolve()} (to train on another copy of that data, "
            f"give its folder as SRC)") in said, said
    t = trials_csv(tmp_path / "tune" / "s")
    assert list(t["state"]) == ["complete", "complete"]
    ran = yaml.safe_load((tmp_path / "tune" / "s" / "trial_0001" / "config.yaml").read_text())
    assert (ran["model"], ran["pretrained"], ran["img_size"], ran["epochs"], ran["aug"]) == \
        ("test_resnet", False, 32, 1, "none")
    srcs = [yaml.safe_load((tmp_path / "tune" / "s" / f"trial_000{i}" / "config.yaml").read_text())["src"]
            for i in (0, 1)]
    assert srcs == [str(studied.resolve())] * 2, srcs
    # typed, at train's default: compared with the study's value, and refused
    r = CliRunner().invoke(app, ["tune", str(studied), "--study", "s", "--space", str(space), "--out", "tune",
                                 "--trials", "3", "--epochs", "10"])
    assert r.exit_code == 2 and "other fixed train options (--epochs 1 -> 10)" in " ".join(r.output.split()), \
        r.output


def test_a_tracker_not_installed_is_one_line_before_the_study_opens(data, tmp_path, space, monkeypatch):
    """`imgcls tune --study s --trials 8 --tracker wandb` without wandb, on a study that already had a completed
    trial, ran every remaining trial to the same error (each recorded as failed, using up --trials), as the
    stop-at-the-first-trial rule holds only for a study without a success. Now refused before the study opens."""
    import importlib.util
    run_tune(tune_cfg(data, tmp_path, space, trials=1))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "mlflow" else real(n, *a))
    with pytest.raises(UserError, match=r"--tracker mlflow needs the mlflow package"):
        run_tune(tune_cfg(data, tmp_path, space, trials=3, train={"tracker": ["mlflow"]}))
    assert list(trials_csv(tmp_path / "tune" / "s")["state"]) == ["complete"]


def test_an_mlflow_server_that_does_not_answer_is_one_line_before_the_study_opens(data, tmp_path, space):
    """`imgcls tune --tracker mlflow --tracking-uri http://host:port` with no server there: each trial waited
    MLflow's retries (about 4 minutes) in its first tracker call and failed, the study using up --trials on them.
    Now one quick request before the study opens: one line naming the address, and the local store to log to
    without it: the study folder's (it named train's sqlite:///<--out>/mlflow.db, tune's --out the folder of
    studies)."""
    with pytest.raises(UserError, match=r"--tracking-uri http://127.0.0.1:9: no MLflow server answers there "
                                        r"\(Connection refused\)") as e:
        run_tune(tune_cfg(data, tmp_path, space, trials=2,
                          train={"tracker": ["mlflow"], "tracking_uri": "http://127.0.0.1:9"}))
    store = f"sqlite:///{(tmp_path / 'tune' / 's').resolve() / 'mlflow.db'}"
    assert str(e.value).endswith(f"or leave --tracking-uri out to log to the local store {store}"), str(e.value)
    assert not (tmp_path / "tune" / "s" / "trials.csv").exists()


def test_the_mlflow_server_is_checked_once_at_the_tracking_uri_given(data, tmp_path, space, monkeypatch):
    """tune --tracker mlflow --tracking-uri URI: the server was checked before the study opened at URI, then again as
    the study opened, with no URI: at $MLFLOW_TRACKING_URI (a server that does not answer there stopped a study whose
    --tracking-uri works), or the local store. Checked once, at the URI given."""
    import imgcls.tune as tune_mod
    from imgcls.track import mlflow_tracker

    class Opened(Exception):
        pass

    calls = []
    monkeypatch.setattr(mlflow_tracker, "check_server", lambda uri, store_in=None: calls.append(uri))
    monkeypatch.setattr(tune_mod, "_Objective", lambda *a, **k: (_ for _ in ()).throw(Opened()))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    uri = f"sqlite:///{tmp_path / 'given.db'}"
    with pytest.raises(Opened):
        run_tune(tune_cfg(data, tmp_path, space, train={"tracker": ["mlflow"], "tracking_uri": uri}))
    assert calls == [uri], calls


def test_a_study_folder_that_holds_a_run_is_refused_before_anything_is_written(data, tmp_path, space):
    """`imgcls tune --study kf1 --out outputs/runs` (the k-fold run's name as the study's) put study.db, trials.csv,
    best_config.yaml and trial_0000/ into the run's folder, beside its checkpoints and OOF files, as every other
    step's --out refuses another step's output. Now one line, nothing written."""
    run = tmp_path / "runs" / "kf1"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("model: test_resnet\n")
    (run / "metrics.csv").write_text("epoch,val_macro_f1\n1,0.5\n")
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(UserError, match=r"runs/kf1 holds an imgcls train run.*another --study"):
        run_tune(tune_cfg(data, tmp_path, space, study="kf1", out=str(tmp_path / "runs"), trials=1))
    assert sorted(p.name for p in run.iterdir()) == before


def test_a_users_own_study_db_or_tables_in_the_study_folder_are_refused_not_written_into(data, tmp_path, space):
    """`imgcls tune --study s` with OUT/s holding the user's own SQLite study.db wrote Optuna's tables into it, and
    their trials.csv / report.html (a trials.csv made the folder read as a study) were replaced, exit 0, without a
    word. A study.db that is not an Optuna database, a trials.csv without tune's columns, a report.html in a
    folder holding no study are now refused in one line before the storage is opened, nothing touched (the
    study's own files are still resumed and replaced: test_the_study_name_alone_resumes_a_study_with_its_fixed_options
    and the other resume tests)."""
    import sqlite3
    study = tmp_path / "tune" / "s"
    study.mkdir(parents=True)
    con = sqlite3.connect(study / "study.db")
    con.execute("CREATE TABLE notes (x)")
    con.commit()
    con.close()
    args = ["tune", str(data), "--study", "s", "--space", str(space), "--out", str(tmp_path / "tune"), "--trials",
            "1", "--pruner", "none", "--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--epochs", "1",
            "--workers", "0", "--device", "cpu"]

    def refused(said):
        before = tree_snapshot(tmp_path)
        r = CliRunner().invoke(app, args)
        line = " ".join(r.output.split())
        assert r.exit_code == 2 and "Traceback" not in r.output and r.output.count("error:") == 1, r.output
        assert f"--study {study}: {said} not from an earlier imgcls tune run" in line, line
        assert "choose another --study (Python: study=), or move" in line, line
        assert tree_snapshot(tmp_path) == before
    refused("study.db is")
    (study / "study.db").unlink()
    (study / "trials.csv").write_text("name,score\nmine,1\n")
    (study / "report.html").write_text("the user's own")
    refused("report.html, trials.csv are")


def test_a_users_own_trial_folder_in_the_study_folder_is_refused_not_trained_into(data, tmp_path, space,
                                                                                  monkeypatch):
    """A folder trial_NNNN of the user's in the study folder (their notes, their weights): the trial of that number
    failed on it after the study opened, advising train's --name / --exist-ok, and --keep would delete its *.pt.
    Now one line before the study is opened, nothing trained or written, in a new study's folder and in a study's
    own; the study's own trial folders (a run's, one --keep stripped of its checkpoints) and an empty one pass the
    check. Nothing here trains: the study's folder is made by hand (tune's trials.csv, trial folders holding
    train's config.yaml and metrics.csv), and opening the study stops the command where the trials would start;
    real trial folders passing it are the resume tests' (test_the_study_name_alone_resumes_...)."""
    import imgcls.train
    import imgcls.tune

    class Opened(Exception):
        """The study was opened: every check before it passed."""

    def opened(*a, **k):
        raise Opened

    def trained(*a, **k):
        raise AssertionError("a trial trained")
    monkeypatch.setattr(imgcls.tune, "open_study", opened)
    monkeypatch.setattr(imgcls.train, "run_train", trained)
    study = tmp_path / "tune" / "s"
    mine = study / "trial_0000"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    (mine / "best.pt").write_text("my weights")
    args = ["tune", str(data), "--study", "s", "--space", str(space), "--out", str(tmp_path / "tune"), "--trials",
            "2", "--pruner", "none", "--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--epochs", "1",
            "--workers", "0", "--device", "cpu", "--val-split", "0.3", "--batch-size", "8", "--aug", "none", "--no-plots"]

    def refused(name):
        before = tree_snapshot(tmp_path)
        r = CliRunner().invoke(app, args)
        line = " ".join(r.output.split())
        assert r.exit_code == 2 and "Traceback" not in r.output and r.output.count("error:") == 1, r.output
        assert (f"--study {study}: {name} is not a trial's run folder (no config.yaml with metrics.csv, train.log or "
                f"a checkpoint there)") in line, line
        assert "choose another --study (Python: study=), or move it away first" in line, line
        assert "--exist-ok" not in line, line
        assert tree_snapshot(tmp_path) == before
    refused("trial_0000")                                        # a new study's folder
    assert sorted(p.name for p in study.iterdir()) == ["trial_0000"]
    mine.rename(tmp_path / "aside")
    (study / "trials.csv").write_text("trial,state,value\n0,complete,0.5\n2,complete,0.4\n")
    for n in ("trial_0000", "trial_0002"):                       # the study's: a run's, one --keep stripped
        (study / n).mkdir()
        (study / n / "config.yaml").write_text("model: test_resnet\n")
        (study / n / "metrics.csv").write_text("epoch,val_macro_f1\n1,0.5\n")
    (study / "trial_0000" / "best.pt").write_text("the trial's weights")
    (tmp_path / "aside").rename(study / "trial_0001")
    refused("trial_0001")                                        # in the study's own folder too
    (study / "trial_0001").rename(tmp_path / "aside")
    (study / "trial_0001").mkdir()                               # an empty one holds nothing of anyone's
    optuna.create_study(study_name="s", storage=f"sqlite:///{study / 'study.db'}")     # the trials' study
    (study / "study.db.lock").touch()                            # as tune's opening of it leaves it
    before = tree_snapshot(tmp_path)
    with pytest.raises(Opened):                                  # the checks pass: the study would be opened
        run_tune(tune_cfg(data, tmp_path, space, train={"plots": False}))
    assert tree_snapshot(tmp_path) == before


def test_a_study_folder_of_trials_whose_study_is_not_in_the_storage_is_refused_before_it_is_written(
        data, tmp_path, space, monkeypatch):
    """`imgcls tune --study s2 --storage sqlite:///OUT/s1/study.db ...` (a second study in one storage), then the
    same command without --storage: the default storage (OUT/s2/study.db) has no study s2, so a new one was
    created there, its trials.csv written over the first study's record, and its trial 0 failed on trial_0000 (a
    finished run is never trained over) with train's advice to choose another --name, which tune has not. Now one
    line before anything is written, naming the storage it looked in and the way to resume (the --storage the
    study was started with); given that storage, the checks pass. A study.db removed is the same case. Nothing
    trains: the trials' run folders are made by hand, and opening the study stops the command."""
    import imgcls.tune

    class Opened(Exception):
        """The study was opened: every check before it passed."""

    def opened(*a, **k):
        raise Opened
    monkeypatch.setattr(imgcls.tune, "open_study", opened)
    other = tmp_path / "tune" / "s1" / "study.db"
    other.parent.mkdir(parents=True)
    optuna.create_study(study_name="s", storage=f"sqlite:///{other}")
    study = tmp_path / "tune" / "s"
    for n in ("trial_0000", "trial_0001"):
        (study / n).mkdir(parents=True)
        (study / n / "config.yaml").write_text("model: test_resnet\n")
        (study / n / "metrics.csv").write_text("epoch,val_macro_f1\n1,0.5\n")
    (study / "trials.csv").write_text("trial,state,value\n0,complete,0.5\n1,complete,0.4\n")
    before = tree_snapshot(tmp_path)
    with pytest.raises(UserError) as e:
        run_tune(tune_cfg(data, tmp_path, space))
    said = " ".join(str(e.value).split())
    assert (f"--study {study} holds the trials' run folders of a study 's' (trial_0000, trial_0001) that "
            f"sqlite:///{(study / 'study.db').resolve()} (its default storage) does not hold") in said, said
    assert "give that --storage to resume it" in said and "choose another --study" in said, said
    assert tree_snapshot(tmp_path) == before                     # no study.db made, trials.csv as it was
    with pytest.raises(Opened):                                  # its own storage: the checks pass
        run_tune(tune_cfg(data, tmp_path, space, storage=f"sqlite:///{other}"))


def test_a_renamed_study_folder_is_refused_naming_the_study_its_study_db_holds(data, tmp_path, space):
    """`mv outputs/tune/s1 outputs/tune/s1b`, then `imgcls tune --study s1b`: its study.db holds the study 's1'
    (a study keeps the name it was started with), not 's1b'. The refusal of a study folder whose trials' study is
    not in the storage said it was started with another --storage or its study.db was removed, neither of which
    is so: it names the study the folder's study.db holds and the way to resume it, the folder renamed back."""
    study = tmp_path / "tune" / "s"
    study.mkdir(parents=True)
    optuna.create_study(study_name="first", storage=f"sqlite:///{study / 'study.db'}")
    (study / "trial_0000").mkdir()
    (study / "trial_0000" / "config.yaml").write_text("model: test_resnet\n")
    (study / "trial_0000" / "metrics.csv").write_text("epoch,val_macro_f1\n1,0.5\n")
    with pytest.raises(UserError) as e:
        run_tune(tune_cfg(data, tmp_path, space))
    said = " ".join(str(e.value).split())
    assert ("(its default storage) does not hold: it holds 'first': a study keeps the name it was started with, so a "
            "study folder renamed is resumed under its first name (rename the folder back)") in said, said
    assert "another --storage" not in said, said
    assert optuna.get_all_study_names(f"sqlite:///{study / 'study.db'}") == ["first"]


def test_the_storage_of_a_renamed_study_folder_given_under_the_study_s_name_is_refused(data, tmp_path, space):
    """`mv OUT/s OUT/s_b; imgcls tune --study s --storage sqlite:///OUT/s_b/study.db` resumed the study (its storage
    holds 's') and trained its next trial into a new OUT/s, the study split across two folders. Refused in one line
    before anything is written, naming the folder that holds the storage and its trials; a storage in a folder of
    other trials (another study's, trained into that folder) is used as ever."""
    moved = tmp_path / "tune" / "s_b"
    moved.mkdir(parents=True)
    url = f"sqlite:///{moved / 'study.db'}"
    optuna.create_study(study_name="s", storage=url)
    (moved / "trial_0000").mkdir()
    (moved / "trial_0000" / "config.yaml").write_text(f"model: test_resnet\nname: trial_0000\n"
                                                      f"out: {tmp_path / 'tune' / 's'}\n")
    (moved / "trial_0000" / "metrics.csv").write_text("epoch,val_macro_f1\n1,0.5\n")
    with pytest.raises(UserError) as e:
        run_tune(tune_cfg(data, tmp_path, space, storage=url))
    said = " ".join(str(e.value).split())
    assert f"--storage {url} is in the study folder {moved}, which holds the trials trial_0000 of --study s" in said
    assert f"rename {moved} back to {tmp_path / 'tune' / 's'}" in said, said
    assert not (tmp_path / "tune" / "s").exists()
    from imgcls.tune import _refuse_storage_of_a_moved_study
    (moved / "trial_0000" / "config.yaml").write_text(f"model: test_resnet\nout: {moved}\n")
    _refuse_storage_of_a_moved_study(tune_cfg(data, tmp_path, space, storage=url))     # s_b's own trials


def test_a_renamed_study_folder_s_storage_is_refused_from_another_working_folder(data, tmp_path, space,
                                                                                  monkeypatch):
    """A trial records --out as typed (relative: from the folder tune ran in); the renamed study's storage was
    refused only from that folder: `cd elsewhere; tune --out /proj/tune --study s --storage .../s_b/study.db`
    resumed the study into a new /proj/tune/s, split across two folders. A relative out the study folder's path ends
    with is that folder, as train's resume judges its run's (run_names.names_folder)."""
    from imgcls.tune import _refuse_storage_of_a_moved_study
    moved = tmp_path / "proj" / "tune" / "s_b"
    (moved / "trial_0000").mkdir(parents=True)
    url = f"sqlite:///{moved / 'study.db'}"
    optuna.create_study(study_name="s", storage=url)
    (moved / "trial_0000" / "config.yaml").write_text("model: test_resnet\nname: trial_0000\nout: tune/s\n")
    (moved / "trial_0000" / "metrics.csv").write_text("epoch,val_macro_f1\n1,0.5\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = tune_cfg(data, tmp_path, space, storage=url, out=str(tmp_path / "proj" / "tune"))
    with pytest.raises(UserError, match="which holds the trials trial_0000 of --study s"):
        _refuse_storage_of_a_moved_study(cfg)


def test_a_study_folder_not_in_the_storage_given_says_what_the_storage_and_its_own_study_db_hold(data, tmp_path,
                                                                                                   space):
    """With --storage, a study folder whose trials' study the storage does not hold was always 'started with
    another --storage': wrong for a default-storage study resumed with a --storage (its own study.db holds it: drop
    --storage), for one renamed since (its study.db holds its first name), and for a folder renamed under the
    --storage given (the storage holds its first name). Each says what was found there."""
    study = tmp_path / "tune" / "s"
    (study / "trial_0000").mkdir(parents=True)
    (study / "trial_0000" / "config.yaml").write_text("model: test_resnet\n")
    (study / "trial_0000" / "metrics.csv").write_text("epoch,val_macro_f1\n1,0.5\n")
    shared = tmp_path / "shared.db"
    optuna.create_study(study_name="other", storage=f"sqlite:///{shared}")
    optuna.create_study(study_name="s", storage=f"sqlite:///{study / 'study.db'}")     # its default storage's

    def said(**kw):
        with pytest.raises(UserError) as e:
            run_tune(tune_cfg(data, tmp_path, space, **kw))
        return " ".join(str(e.value).split())
    line = said(storage=f"sqlite:///{shared}")
    assert (f"that sqlite:///{shared} (--storage) does not hold: the folder's own study.db (the default storage) "
            f"holds 's': the study was started without --storage; drop --storage to resume it") in line, line
    assert "another --storage" not in line, line
    (study / "study.db").unlink()
    optuna.create_study(study_name="first", storage=f"sqlite:///{study / 'study.db'}")    # a renamed study folder
    line = said(storage=f"sqlite:///{shared}")
    assert ("the folder's own study.db (the default storage) holds 'first': a study keeps the name it was started "
            "with, so a study folder renamed is resumed under its first name (rename the folder back, without "
            "--storage)") in line, line
    assert "another --storage" not in line, line
    (study / "study.db").unlink()                     # renamed under the --storage given: it holds the first name
    line = said(storage=f"sqlite:///{shared}")
    assert ("does not hold: it holds 'other': if the folder is one of these renamed, a study keeps the name it was "
            "started with, so a study folder renamed is resumed under its first name (rename the folder back, with "
            "this --storage); else the study was started with another --storage") in line, line
    assert optuna.get_all_study_names(f"sqlite:///{shared}") == ["other"]


@pytest.mark.timeout(180)
def test_an_empty_trial_folder_is_taken_by_its_trial_and_a_killed_trial_s_empty_folder_resumes(data, tmp_path,
                                                                                              space):
    """An empty trial_NNNN in the study folder passes the check of the user's trial folders (it holds nothing of
    anyone's), but the trial of that number then failed on train's 'run folder ... already exists; choose another
    --name, or pass --exist-ok', in a new study its first trial: the study stopped on it. The trial takes the empty
    folder over (removed, then made by train's exclusive mkdir). A trial killed as its train made its folder leaves
    an empty one whose number the storage never draws again: the study resumes past it, the folder left alone."""
    study = tmp_path / "tune" / "s"
    (study / "trial_0000").mkdir(parents=True)                  # the user's empty folder in a new study's
    cfg = tune_cfg(data, tmp_path, space, trials=1, train={"plots": False})
    run_tune(cfg)
    assert list(trials_csv(study)["state"]) == ["complete"]
    assert (study / "trial_0000" / "metrics.csv").is_file() and (study / "trial_0000" / "config.yaml").is_file()
    # trial 1 killed as its train made trial_0001 (its process's heartbeat gone: the storage records it failed)
    s = optuna.load_study(study_name="s", storage=f"sqlite:///{study / 'study.db'}")
    s.tell(s.ask(), state=optuna.trial.TrialState.FAIL)
    (study / "trial_0001").mkdir()
    run_tune(tune_cfg(data, tmp_path, space, trials=3, train={"plots": False}))
    assert list(trials_csv(study)["state"]) == ["complete", "fail", "complete"]
    assert not any((study / "trial_0001").iterdir()) and (study / "trial_0002" / "metrics.csv").is_file()


def test_a_tracker_that_does_not_import_is_one_line_before_a_new_study_opens(data, tmp_path, space, monkeypatch):
    """The tracker check asked only whether the package is installed (importlib.util.find_spec): a wandb that is
    installed but fails to import (a broken dependency, here a package on sys.path whose import raises) passed it,
    and a new study ran every trial to the same ImportError in the tracker, each recorded failed. Now the package
    is imported by the check, before the study opens: one line naming it and the fix."""
    import sys
    site = tmp_path / "site"
    (site / "wandb").mkdir(parents=True)
    (site / "wandb" / "__init__.py").write_text("raise ImportError(\"cannot import name 'Message' from "
                                                "'google.protobuf'\")\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "wandb", raising=False)
    with pytest.raises(UserError, match=r"--tracker wandb: the wandb package does not import \(ImportError: cannot "
                                        r"import name 'Message'.*pip install"):
        run_tune(tune_cfg(data, tmp_path, space, trials=2, train={"tracker": ["wandb"]}))
    assert not (tmp_path / "tune" / "s" / "trials.csv").exists()
    assert not list((tmp_path / "tune").glob("s/trial_*"))


def test_a_missing_storage_driver_is_named(monkeypatch):
    """`imgcls tune --study big --storage postgresql://user@db/optuna` without the driver said 'its database driver
    is not installed (None)': Optuna wraps sqlalchemy's ModuleNotFoundError in an ImportError that has no name. The
    module it could not import is named."""
    from imgcls.tune import open_storage

    def no_driver(*a, **k):
        try:
            raise ModuleNotFoundError("No module named 'psycopg'", name="psycopg")
        except ModuleNotFoundError as e:
            raise ImportError("Failed to import DB access module for the specified storage URL.") from e

    monkeypatch.setattr(optuna.storages, "RDBStorage", no_driver)
    with pytest.raises(UserError) as e:
        open_storage("postgresql://user@db/optuna")
    assert "its database driver is not installed (no module psycopg); pip install it" in str(e.value), str(e.value)
    assert "None" not in str(e.value)


def test_tune_without_study_says_none_was_given(data, tmp_path):
    """`imgcls tune DATA --out X` without --study said "--study '': give a name of letters, digits...", as if an
    empty name had been typed. It says no --study was given and how to give one (exit 2, one line, nothing written)."""
    out = tmp_path / "tune"
    r = CliRunner().invoke(app, ["tune", str(data), "--out", str(out)])
    line = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "no --study given: name the study, e.g. --study lite0" in line and "--study ''" not in line, line
    assert not out.exists()
    with pytest.raises(UserError, match=r"--study '': give a name"):      # typed empty: the name check's line
        TuneConfig(study="").validate()


def test_a_runs_record_is_no_fixed_option_of_a_study(tmp_path, capsys):
    """A study's fixed options held the records of the run its --config came from (TrainConfig.RECORDS:
    weights_source, ...): resumed without --config, the study took the run's weights_source as a fixed option
    ('resumes with the fixed train options ...'); resumed with another run's config.yaml (or started without and
    resumed with one), it refused a weights_source no trial ever used. A config a run starts from holds no record,
    and a study that already recorded one neither takes it nor compares it."""
    from imgcls.tune import _study_options, open_study
    recorded = {"weights_source": "hub timm/x", "amp_used": True, "workers_used": 8, "cache_used": "disk"}
    TrainConfig(model="test_resnet", **recorded).save(tmp_path / "config.yaml")
    base = TrainConfig.resolve(config=tmp_path / "config.yaml", validate=False)      # train / tune --config RUN
    assert base.model == "test_resnet" and all(getattr(base, k) is None for k in TrainConfig.RECORDS)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    a = parse_space({"lr": {"log_uniform": [1e-4, 1e-2]}})
    open_study(TuneConfig(study="s", train=TrainConfig(**recorded)), a, url)     # a study that holds a record
    cfg = TuneConfig(study="s", out=str(tmp_path / "tune"))
    capsys.readouterr()
    _study_options(cfg, url)                      # resumed without --config
    assert cfg.train.weights_source is None and "weights_source" not in capsys.readouterr().err
    _, created = open_study(cfg, a, url)          # its record differs from none: not refused
    assert not created
    _, created = open_study(TuneConfig(study="s", train=TrainConfig(weights_source="cache /y")), a, url)
    assert not created


def test_parallel_coordinate_plot_labels_do_not_overlap(monkeypatch):
    """The report's parallel-coordinate plot drew one axis per option in a figure of Optuna's default width, so
    the category labels of neighbouring axes ran into one another (tf_efficientnet_lite0 over sgd over weighted).
    The figure now widens with the options, long category names are shortened in the middle (still told apart), an
    axis of many categories labels every k-th, and no two tick labels of the figure overlap."""
    from matplotlib.text import Text
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    import imgcls.report as rp
    from imgcls.tune.report import plots
    cats = {"aug": ["light", "medium", "heavy"], "loss": ["ce", "label-smoothing", "focal"],
            "mix": ["none", "cutmix", "mixup"],
            "model": ["tf_efficientnet_lite0", "resnet10t", "convnext_tiny.fb_in22k", "convnext_tiny.fb_in1k"],
            "optimizer": ["adamw", "sgd"], "sampler": ["shuffle", "weighted"],
            "img_size": [str(s) for s in range(64, 400, 16)]}         # 21 categories
    dists = {**{k: CategoricalDistribution(v) for k, v in cats.items()},
             "lr": FloatDistribution(1e-4, 3e-3, log=True), "weight_decay": FloatDistribution(1e-4, 0.1, log=True)}
    study = optuna.create_study(direction="maximize")
    for k in range(24):
        params = {**{c: v[(5 * k + i) % len(v)] for i, (c, v) in enumerate(cats.items())},
                  "lr": 1e-4 * 1.15 ** k, "weight_decay": 1e-4 * 1.3 ** k}
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.1 + 0.01 * k, params=params,
                                     distributions=dists))
    drawn, save = {}, rp.figure_data_uri

    def spy(fig, dpi=100):
        if any(t.get_text() == "Parallel Coordinate Plot" for t in fig.findobj(Text)):
            fig.canvas.draw()
            renderer = fig.canvas.get_renderer()
            drawn["labels"] = [(t.get_text(), t.get_window_extent(renderer)) for ax in fig.axes
                               for axis in (ax.xaxis, ax.yaxis) if axis.get_visible()      # the twins hide their x
                               for t, v in zip(axis.get_majorticklabels(), axis.get_majorticklocs())
                               if t.get_text() and min(axis.get_view_interval()) <= v <= max(axis.get_view_interval())]
        return save(fig, dpi)
    monkeypatch.setattr(rp, "figure_data_uri", spy)
    from optuna.visualization import matplotlib as vm

    def no_fanova(study):          # seconds of fANOVA fitting, not this test's plot
        raise RuntimeError("skipped")
    monkeypatch.setattr(vm, "plot_param_importances", no_fanova)
    assert dict((t, uri is not None) for t, uri, _ in plots(study, "val macro-F1"))["parallel coordinates"]
    labels = drawn["labels"]
    overlapping = [(a, b) for i, (a, box) in enumerate(labels) for b, other in labels[i + 1:] if box.overlaps(other)]
    assert not overlapping, overlapping
    texts = {t for t, _ in labels}
    assert {"tf_eff…lite0", "resnet10t", "convne…in22k", "convne…_in1k", "sgd", "weighted"} <= texts, texts
    assert 3 <= len(texts & set(cats["img_size"])) <= 8                  # 21 sizes: every 3rd labelled
    from imgcls.tune.report import short_labels
    assert short_labels(["convnext_tiny.fb_in22k", "convnext_tiny.fb_in1k"], 8) == ["conv…22k", "conv…n1k"]


def test_a_space_file_error_names_the_python_call_that_shows_the_default_space(data, tmp_path):
    """A missing or broken --space said 'see imgcls tune --show-space', a flag a Python caller of run_tune cannot
    pass (it is no TuneConfig field); the line names the call that gives the same text, and that call works."""
    from imgcls.tune.space import DEFAULT_SPACE
    show = "imgcls tune --show-space (Python: print(imgcls.tune.space.default_space_text()))"
    with pytest.raises(UserError, match=re.escape(f"does not exist; write a YAML space: {show} prints the default")):
        run_tune(tune_cfg(data, tmp_path, tmp_path / "nope.yaml"))
    with pytest.raises(UserError, match=re.escape(f"--space {tmp_path} is a folder, not a YAML file; give the space "
                                                  f"file ({show} prints the default one to start from)")):
        run_tune(tune_cfg(data, tmp_path, tmp_path))     # it exists: not 'does not exist'
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [1e-4\n")
    with pytest.raises(UserError, match=re.escape(f"is not valid YAML at line 2; {show} prints a valid one")):
        run_tune(tune_cfg(data, tmp_path, bad))
    import imgcls.tune.space
    assert imgcls.tune.space.default_space_text() == DEFAULT_SPACE.read_text()
    assert not (tmp_path / "tune").exists()


def test_the_study_options_check_waits_for_a_process_creating_the_database(tmp_path, monkeypatch):
    """Two `imgcls tune --storage sqlite:///new.db` started at once: the second found the database file the first
    had just made and opened its storage outside the opening lock (to read a stored study's options), creating the
    tables the first was creating: "UNIQUE constraint failed: alembic_version.version_num", exit 2. It now opens it
    under the lock, so it waits for a process creating the database: here the database file exists, empty, as that
    process leaves it, and the storage is opened only while the opening lock is held (tried without waiting from
    another open file, as another process would: refused)."""
    import fcntl

    import imgcls.tune
    from imgcls.tune import _study_options
    db = tmp_path / "new.db"
    db.touch()
    real, held = imgcls.tune.open_storage, []

    def open_storage(url):
        with open(db.with_name("new.db.lock"), "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held.append(True)
            else:
                fcntl.flock(fh, fcntl.LOCK_UN)
                held.append(False)
        return real(url)
    monkeypatch.setattr(imgcls.tune, "open_storage", open_storage)
    assert _study_options(TuneConfig(study="s", train=TrainConfig(**TINY)), f"sqlite:///{db}") is None
    assert held == [True]


def test_numbers_written_without_a_dot_read_as_numbers_in_a_space_and_a_config(tmp_path):
    """PyYAML reads YAML 1.1, where `1e-4` (no dot) or `1.0e4` (no exponent sign) is a string: the README's own
    space example, `lr: {log_uniform: [1e-4, 3e-3]}`, was refused ('log_uniform takes [low, high] numbers'), and a
    config.yaml's `lr: 1e-3` was '--lr must be a number'. imgcls.outputs.yaml_load reads them as YAML 1.2 does."""
    from imgcls.outputs import yaml_dump, yaml_load
    (tmp_path / "space.yaml").write_text("lr: {log_uniform: [1e-4, 3e-3]}\nweight_decay: {uniform: [1.0e-4, 1E+0]}\n")
    space = load_space(tmp_path / "space.yaml")
    assert space.as_dict() == {"lr": {"log_uniform": [1e-4, 3e-3]}, "weight_decay": {"uniform": [1e-4, 1.0]}}
    (tmp_path / "config.yaml").write_text("lr: 1e-3\nweight_decay: 5e-2\nepochs: 1\n")
    cfg = TrainConfig.load(tmp_path / "config.yaml")
    assert (cfg.lr, cfg.weight_decay, cfg.epochs) == (1e-3, 5e-2, 1)
    # a string spelled so (a class name) is written quoted, so it reads back as the string it was
    doc = {"classes": ["1e5", "2E-3", ".5e3", "cat"], "weights": [0.5, 1e-07]}
    assert yaml_load(yaml_dump(doc)) == doc
    # no digit before the dot (YAML 1.2's `.5e3`) too
    assert yaml_load("a: .5e3\nb: -.5E+3\nc: ..5e3\n") == {"a": 500.0, "b": -500.0, "c": "..5e3"}


def test_the_study_name_alone_resumes_a_study_started_with_its_own_space(tmp_path, space, monkeypatch):
    """The README: running the same command again resumes a study, 'and so does its --study alone'. A study started
    with `--space space.yaml` was refused when resumed so ('started with another search space (differs in: aug,
    loss, lr, mix, ...); give the same --space'): the space left out was taken as the shipped one. A space left
    out is the study's own, said in one line, as its fixed options and data are; a typed --space that differs is
    still refused."""
    monkeypatch.chdir(tmp_path)
    studied = make_image_folder(tmp_path / "other", {"a": 10, "b": 10}, size=(40, 40))
    common = ["--study", "s", "--out", "tune", "--pruner", "none", "--workers", "0", "--device", "cpu"]
    fixed = ["--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--epochs", "1", "--batch-size", "8",
             "--aug", "none"]
    r = CliRunner().invoke(app, ["tune", str(studied), *common, "--space", str(space), *fixed, "--quiet",
                                 "--trials", "1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["tune", *common, "--trials", "2"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "study 's' resumes with the search space it was started with: lr, weight_decay" in said, said
    t = trials_csv(tmp_path / "tune" / "s")
    assert list(t["state"]) == ["complete", "complete"]
    assert {"lr", "weight_decay"} <= set(t.columns) and "optimizer" not in t.columns
    other = tmp_path / "other.yaml"
    other.write_text("lr: {log_uniform: [1.0e-4, 1.0e-2]}\n")
    r = CliRunner().invoke(app, ["tune", *common, "--space", str(other), "--trials", "3"])
    assert r.exit_code == 2 and "was started with another search space" in " ".join(r.output.split()), r.output


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")     # the test asks trials outside optimize
def test_a_trial_whose_process_was_killed_is_failed_as_killed_without_made_up_seconds(tmp_path):
    """`kill -9` of a tune (the OOM killer, a lost kernel) mid-trial, then the same command again: the dead trial
    stayed 'running' in trials.csv and report.html after the resumed command had ended, nothing running it; once
    Optuna's heartbeat check failed it (180 s later) it read 'fail' with no message and 793.7 seconds, the time until
    that check, not the trial's. A running trial of this machine whose process is gone is failed by the next
    process at once, and a trial failed without tune's message (Optuna's heartbeat check: its process stopped) says
    it was killed, its seconds blank (not known)."""
    import socket
    import subprocess
    from imgcls.tune import _fail_killed_trials, open_storage
    from imgcls.tune.report import KILLED, trials_frame
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'study.db'}"), study_name="s")
    dead, alive, beat = study.ask(), study.ask(), study.ask()
    dead.set_user_attr("process", f"{host}:{gone.pid}")
    alive.set_user_attr("process", f"{host}:{os.getpid()}")      # this process: running, left alone
    beat.set_user_attr("process", f"elsewhere:{gone.pid}")       # another machine's: its heartbeat decides
    study.tell(beat, state=optuna.trial.TrialState.FAIL)         # as Optuna's heartbeat check fails it
    _fail_killed_trials(study)
    t = trials_frame(study).set_index("trial")
    assert list(t["state"]) == ["fail", "running", "fail"], t
    assert t.loc[0, "message"] == KILLED and t.loc[2, "message"] == KILLED
    assert pd.isna(t.loc[0, "seconds"]) and pd.isna(t.loc[2, "seconds"])
    assert t.loc[1, "message"] == ""


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")     # the test asks trials outside optimize
def test_two_processes_failing_the_same_killed_trial_do_not_crash(tmp_path):
    """Two `imgcls tune --study s` started together after a `kill -9` (a script starting its workers at once) both
    find the dead trial running; the one that fails it second found it already failed by the other and crashed with
    Optuna's UpdateFinishedTrialError (a traceback, its trials never run). The one failed first is left as it is."""
    import socket
    import subprocess
    from imgcls.tune import _fail_killed_trials, open_storage
    from imgcls.tune.report import KILLED, trials_frame
    gone = subprocess.Popen(["true"])
    gone.wait()
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'study.db'}"), study_name="s")
    dead = study.ask()
    dead.set_user_attr("process", f"{socket.gethostname()}:{gone.pid}")
    seen = study.get_trials(deepcopy=True)      # what the second process read: running

    class Late:     # the second process: its read of the running trials came before the first one failed it
        _storage = study._storage

        @staticmethod
        def get_trials(deepcopy=False, states=None):
            return [t for t in seen if states is None or t.state in states]

    _fail_killed_trials(study)
    _fail_killed_trials(Late())
    t = trials_frame(study).set_index("trial")
    assert list(t["state"]) == ["fail"] and t.loc[0, "message"] == KILLED, t


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")     # the test asks trials outside optimize
def test_a_running_trial_of_another_container_with_this_host_name_is_not_failed(tmp_path):
    """Two containers of one machine (docker --network host: the host's name, each its own process ids) run a study
    on a shared volume: a tune opening the study in one looked for the other's trial process among its own pids,
    did not find it, and failed a trial still training (trials.csv 'killed', then Optuna's errors when the living
    process reported its next epoch). A trial records its process's pid namespace; one of another namespace is left
    to Optuna's heartbeat check, as another machine's is."""
    import socket
    import subprocess
    from imgcls.tune import PID_NAMESPACE, _fail_killed_trials, open_storage
    from imgcls.tune.report import trials_frame
    gone = subprocess.Popen(["true"])
    gone.wait()
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'study.db'}"), study_name="s")
    other = study.ask()
    other.set_user_attr("process", f"{socket.gethostname()}:{gone.pid}")     # not a pid of this namespace
    other.set_user_attr(PID_NAMESPACE, "pid:[1]")
    _fail_killed_trials(study)
    assert list(trials_frame(study)["state"]) == ["running"]


def test_the_study_name_alone_refuses_when_the_study_s_data_is_gone(tmp_path, space, monkeypatch):
    """`imgcls tune --study s --trials 2` where the data the study was started on is no longer there (moved,
    deleted): the resumed study took the working folder's default input (data/raw here) with only its 'using ...'
    line, and its new trials were trained and scored on other images than the study's first, in one study, the mix
    _study_options exists to prevent. It is one line naming the study's data and the fix (give it, or a copy of it,
    as SRC), exit 2, before any trial."""
    studied, common = _one_trial_on_other_data(tmp_path, space, monkeypatch)
    shutil.rmtree(studied)
    r = CliRunner().invoke(app, ["tune", *common, "--trials", "2"])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and said.count("error:") == 1, r.output
    assert (f"error: study 's' was started on the data {studied.resolve()}, which is not there: give that data (or "
            f"a copy of it) as SRC") in said, said
    assert list(trials_csv(tmp_path / "tune" / "s")["state"]) == ["complete"]


def test_the_study_name_alone_resumes_with_the_sampler_and_pruner_the_study_was_started_with(data, tmp_path, space,
                                                                                             monkeypatch):
    """`imgcls tune SRC --study r --sampler random --pruner none ...` then `imgcls tune --study r --trials 2`: the
    resumed trial was drawn by TPE and watched by the median pruner (train's defaults, as the sampler and pruner
    were not recorded), with only the header line saying so. They are the study's own when not typed, said in one
    line; one typed that differs is this command's, said so."""
    import imgcls.tune as tune
    used = []
    real = tune.make_sampler

    def make_sampler(cfg, space_, seed):
        used.append((cfg.sampler, cfg.pruner, cfg.prune_startup))
        return real(cfg, space_, seed)
    monkeypatch.setattr(tune, "make_sampler", make_sampler)
    where = ["--out", str(tmp_path / "tune"), "--workers", "0", "--device", "cpu"]
    fixed = ["--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--epochs", "1", "--batch-size", "8",
             "--aug", "none", "--val-split", "0.3", "--space", str(space)]
    # (no --prune-startup: it acts only with --pruner median, refused with none)
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "r", "--sampler", "random", "--pruner", "none",
                                 *where, *fixed, "--quiet", "--trials", "1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["tune", "--study", "r", *where, "--trials", "2"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "study 'r' resumes with the search options it was started with: --sampler random --pruner none" in said
    assert "random sampler, none pruner" in said and used[-1] == ("random", "none", 3), (said, used)
    assert list(trials_csv(tmp_path / "tune" / "r")["state"]) == ["complete", "complete"]
    # typed at its default, another than the study's: this command's, said so
    r = CliRunner().invoke(app, ["tune", "--study", "r", *where, "--trials", "2", "--sampler", "tpe"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert ("study 'r' was started with other search options (--sampler random -> tpe): this command's trials are "
            "drawn and pruned with the ones given") in said, said
    assert "--pruner none" in said and used[-1] == ("tpe", "none", 3), (said, used)


def test_the_study_name_alone_resumes_to_the_trials_the_study_was_started_with(data, tmp_path, space, capsys):
    """`imgcls tune SRC --study s --trials 2` stopped in its second trial, then `imgcls tune --study s`: the resume
    ran to --trials' default 20, not the study's 2. Not given, the study's recorded total is taken, said in one
    line; a --trials given is this command's, and the study's total for later resumes."""
    class StopPastTwoTrials(Callback):
        runs = 0

        def on_run_start(self, info):
            StopPastTwoTrials.runs += 1
            if StopPastTwoTrials.runs == 4:        # runs 1, 2: the first command's; 3: the resume's rerun of trial 1
                pytest.fail("the resume went past the study's 2 trials")

        def on_epoch_end(self, epoch, logs):
            if StopPastTwoTrials.runs == 2 and not hasattr(self, "resumed"):
                raise KeyboardInterrupt         # Ctrl-C in the first command's second trial

    with pytest.raises(KeyboardInterrupt):
        run_tune(tune_cfg(data, tmp_path, space, trials=2), callbacks=[StopPastTwoTrials()])
    study_dir = tmp_path / "tune" / "s"
    capsys.readouterr()
    resumed = StopPastTwoTrials()
    resumed.resumed = True
    run_tune(TuneConfig(study="s", out=str(tmp_path / "tune"), train=TrainConfig(workers=0, device="cpu")),
             callbacks=[resumed])
    said = " ".join(capsys.readouterr().err.split())
    assert ("study 's' resumes up to the 2 trials it was started with (--trials N (Python: trials=N) sets another "
            "total)") in said and "up to 2 trials" in said, said
    assert list(trials_csv(study_dir)["state"]) == ["complete", "fail", "complete"]
    run_tune(TuneConfig(study="s", out=str(tmp_path / "tune"), trials=3, train=TrainConfig(workers=0, device="cpu")))
    assert len(trials_csv(study_dir)) == 4
    r = CliRunner().invoke(app, ["tune", "--study", "s", "--out", str(tmp_path / "tune"), "--workers", "0",
                                 "--device", "cpu"])
    said = " ".join(r.output.split())
    assert r.exit_code == 0 and "already has 3 trials (--trials 3)" in said, said


def test_a_pruned_trial_s_message_names_its_best_epoch_beside_optuna_s_last_epoch_value():
    """A pruned trial has two values: trials.csv / report.html give Optuna's (its last epoch's), `imgcls runs` its
    run's best epoch's, with nothing saying why they differ. trials.csv's value stays Optuna's; the trial's message
    (trials.csv, report.html, the terminal) names the best epoch's where it differs, lower being better for loss."""
    from imgcls.tune import TrialReporter

    def pruned(column, values, fold=None):
        from imgcls.run_names import BEST_BY
        metric = next(k for k, (c, *_) in BEST_BY.items() if c == column)
        rep = TrialReporter(_FakeTrial(prune_at=len(values)), metric)
        rep.on_run_start({"fold": fold, "total_epochs": 5, "folds_after": 0})
        with pytest.raises(optuna.TrialPruned) as e:
            for epoch, v in enumerate(values, 1):
                rep.on_epoch_end(epoch, {column: v})
        return str(e.value)

    assert pruned("val_macro_f1", [0.6, 0.4]) == (
        "pruned after epoch 2: val_macro_f1 0.4000 (Optuna's value of a pruned trial is its last epoch's; its run's "
        "best epoch, imgcls runs': val_macro_f1 0.6000)")
    # imgcls runs shows no val loss: the message names the epoch it lists, not a loss of its
    assert pruned("val_loss", [0.9, 0.7, 0.8]).endswith(
        "its run's best epoch, imgcls runs' best_epoch (which lists no val loss): val_loss 0.7000)")
    assert pruned("val_loss", [0.9, float("nan")]).endswith("val_loss 0.9000)")        # a NaN is never the best
    assert pruned("val_macro_f1", [0.3, 0.5]) == "pruned after epoch 2: val_macro_f1 0.5000"     # the same: no note
    assert pruned("val_acc", [0.6, 0.4], fold=1).endswith("; fold_1's best epoch so far: val_acc 0.6000)")


def test_a_study_resumed_on_data_with_other_rows_is_refused_before_any_trial_and_a_copy_is_taken(data, tmp_path,
                                                                                                space):
    """`imgcls tune data/kfold.csv --study s1 --trials 13` on a study started on splits.csv added trials scored on
    other validation rows than its earlier ones, in one study (the README lets SRC differ for another copy of the
    data, but nothing checked that it was one). The study records a digest of its rows (paths within their root,
    classes, split / fold); SRC with other rows is one line before any trial; a copy elsewhere resumes."""
    from imgcls import manifest as mf
    study_dir = run_tune(tune_cfg(data, tmp_path, space, trials=1))
    copy = shutil.copytree(data, tmp_path / "elsewhere" / "raw")
    run_tune(tune_cfg(copy, tmp_path, space, trials=1))            # the same rows: resumes (nothing left to run)
    other = shutil.copytree(data, tmp_path / "other" / "raw")
    moved = sorted((other / "a").iterdir())[0]
    moved.rename(other / "b" / f"x{moved.name}")                   # one image in another class
    with pytest.raises(UserError) as e:
        run_tune(tune_cfg(other, tmp_path, space, trials=3))
    msg = str(e.value)
    assert (f"study 's': the data {other} holds other rows than {data.resolve()}, the data it was started on "
            f"(paths, classes or split / fold columns differ)") in msg and "give that data (or a copy of it) as SRC" \
        in msg and "\n" not in msg, msg
    assert len(trials_csv(study_dir)) == 1 and not (study_dir / "trial_0001").exists()
    # a split table: the split column picks the validation rows (their order does not); a fold column acts with --folds
    from imgcls.tune import rows_digest
    df = mf.load(data)
    df["split"] = ["val" if i % 3 == 0 else "train" for i in range(len(df))]
    df["fold"] = [i % 2 for i in range(len(df))]
    mf.write(df, tmp_path / "t" / "splits.csv")
    mf.write(df.iloc[::-1], tmp_path / "t" / "reordered.csv")
    mf.write(df.assign(split=["val" if i % 3 == 1 else "train" for i in range(len(df))]), tmp_path / "t" / "kfold.csv")
    mf.write(df.assign(fold=[i % 3 for i in range(len(df))]), tmp_path / "t" / "refold.csv")
    digest = {n: rows_digest(TrainConfig(src=str(tmp_path / "t" / f"{n}.csv")))["digest"]
              for n in ("splits", "reordered", "kfold", "refold")}
    assert digest["splits"] == digest["reordered"] == digest["refold"] != digest["kfold"], digest
    assert rows_digest(TrainConfig(src=str(tmp_path / "t" / "splits.csv"), folds="all")) != \
        rows_digest(TrainConfig(src=str(tmp_path / "t" / "refold.csv"), folds="all"))


def test_the_other_rows_refusal_names_the_data_as_typed(data, tmp_path, space, monkeypatch):
    """The refusal of a study resumed on data with other rows named SRC by its absolute path (the anchored option),
    while every other line of tune names the data as the user typed it. It names it as typed too."""
    monkeypatch.chdir(tmp_path)
    run_tune(tune_cfg(Path("raw"), tmp_path, space, trials=1))
    other = shutil.copytree(data, tmp_path / "other")
    sorted((other / "a").iterdir())[0].unlink()                      # one row fewer
    with pytest.raises(UserError, match=r"^study 's': the data other holds other rows than .*/raw, the data it "
                                        r"was started on \(19 rows here, 20 then; "):
        run_tune(tune_cfg(Path("other"), tmp_path, space, trials=2))


@pytest.mark.timeout(120)
def test_tune_s_data_check_does_not_count_rows_recorded_unreadable_whose_files_are_back(tmp_path):
    """tune's check of the table before its study opens (its images not scanned) counted the rows the manifest
    recorded as unreadable: a class whose images are back since was refused as 'at least 2 classes', though each
    trial's scan finds them. The recorded scan is left to the trials' scan."""
    from conftest import restored_class_manifest
    from imgcls.tune import _check_data
    m = restored_class_manifest(tmp_path)
    base = TrainConfig(src=str(m), model="test_resnet", pretrained=False, epochs=1, img_size=16, device="cpu")
    _check_data(base, parse_space({"lr": {"log_uniform": [1e-4, 1e-2]}}), tmp_path / "study")


def test_a_study_says_on_a_terminal_that_it_writes_its_report(data, tmp_path, space, monkeypatch):
    """After its last trial tune printed nothing for ~13 s (under load) before its table: the report's plots. A
    spinner says so on a terminal (piped, the output is unchanged: the other tests)."""
    import io
    from rich.console import Console
    from imgcls import console
    buf = io.StringIO()
    monkeypatch.setattr(console, "console", Console(file=buf, force_terminal=True, width=200, markup=False))
    run_tune(tune_cfg(data, tmp_path, space, trials=1))
    assert "writing the study's report" in buf.getvalue()
    assert "spinner" not in console._state


def test_a_study_on_a_file_system_without_flock_says_so_once_not_once_per_trial(data, tmp_path, space, monkeypatch,
                                                                                  capsys):
    """Every trial's run folder is in the study's folder, on one file system: train's warning that it takes no lock
    (RunLock), which names the run folder, was said again by each trial (a 30-trial study, 30 copies between the
    trial lines). It is said once for the study; a plain train still says it (test_promises_model)."""
    import errno
    import fcntl

    def flock(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
    monkeypatch.setattr(fcntl, "flock", flock)
    capsys.readouterr()
    run_tune(tune_cfg(data, tmp_path, space, trials=3))
    err = capsys.readouterr().err
    assert err.count("takes no lock") == 1 and "trial_0000: its file system takes no lock" in err, err
    assert err.count("; outputs in") == 3, err


def test_a_new_sqlite_study_on_a_file_system_without_flock_opens_unlocked(tmp_path, monkeypatch):
    """The lock file that makes two processes creating one SQLite study take turns raised flock's ENOLCK / EBADF
    (a file system without flock) as a traceback before the study opened; it opens unlocked there, as the shared
    caches write (fsutil.exclusive_lock's `unlocked`). Other errors still raise."""
    import errno
    import fcntl

    from imgcls.tune import _opening_lock
    raised = {"errno": errno.ENOLCK}

    def flock(fd, op):
        raise OSError(raised["errno"], os.strerror(raised["errno"]))
    monkeypatch.setattr(fcntl, "flock", flock)
    with _opening_lock(f"sqlite:///{tmp_path / 'study.db'}"):
        pass
    raised["errno"] = errno.EIO
    with pytest.raises(OSError):
        with _opening_lock(f"sqlite:///{tmp_path / 'study.db'}"):
            pass


def test_metric_loss_trials_keep_the_checkpoint_of_their_objective_s_epoch(data, tmp_path, space, monkeypatch):
    """tune --metric loss scored each trial by its lowest-val-loss epoch, while the trial's run saved best.pt (what
    an ensemble of trials and predict use), its val_predictions.csv and `imgcls runs`' best epoch at its best
    macro-F1 epoch: the study's value was of a model it did not keep. Each trial now trains with train's --metric
    set to the study's. Every validation is scripted: epoch 2 has the lowest loss, epoch 3 the best macro-F1."""
    from imgcls.runs import read_run
    from imgcls.train import loop
    from imgcls.train.checkpoint import read_checkpoint
    real, calls = loop.evaluate, []

    def evaluate(*a, **kw):
        ev, k = real(*a, **kw), len(calls) % 3
        calls.append(k)
        ev["loss"], ev["final"] = [0.9, 0.3, 0.6][k], dict(ev["final"], macro_f1=[0.2, 0.4, 0.8][k])
        return ev

    monkeypatch.setattr(loop, "evaluate", evaluate)
    study_dir = run_tune(tune_cfg(data, tmp_path, space, trials=1, metric="loss", keep="all", train={"epochs": 3}))
    trial = study_dir / "trial_0000"
    assert trials_csv(study_dir).loc[0, "value"] == pytest.approx(0.3)
    assert yaml.safe_load((trial / "config.yaml").read_text())["metric"] == "loss"
    assert yaml.safe_load((study_dir / "best_config.yaml").read_text())["metric"] == "loss"
    assert read_checkpoint(trial / "best.pt")["epoch"] == 2 and read_run(trial).best_epoch == 2


def test_a_fixed_train_metric_other_than_the_study_s_is_refused_and_no_space_varies_it(data, tmp_path, space):
    """A --config (or TrainConfig) whose metric is not tune's --metric would keep each trial's best.pt at another
    epoch than its value's: one line naming the fix. A space key metric would do the same: refused as fixed."""
    with pytest.raises(UserError, match=r"picks? each trial's best epoch by metric loss.*--metric macro_f1.*"
                                        r"give --metric loss"):
        run_tune(tune_cfg(data, tmp_path, space, train={"metric": "loss"}))
    assert not (tmp_path / "tune").exists()
    with pytest.raises(UserError, match="space key 'metric' cannot be searched"):
        parse_space({"metric": {"choice": ["loss", "macro_f1"]}})


def test_the_report_says_which_sampler_and_pruner_each_trial_ran_with(data, tmp_path, space):
    """report.html's summary put the last command's sampler / pruner beside the counts of every trial of the study:
    a study of one random-sampled trial resumed with --sampler tpe read 'tpe / none' over 2 trials. Each trial
    records its own; the summary counts them where they differ."""
    run_tune(tune_cfg(data, tmp_path, space, trials=1, sampler="random"))
    study_dir = run_tune(tune_cfg(data, tmp_path, space, trials=2, sampler="tpe", search_typed=frozenset({"sampler"})))
    html = " ".join((study_dir / "report.html").read_text().split())
    assert "tpe / none (this command); by trial: random / none 1, tpe / none 1" in html


def test_a_storage_path_that_is_no_journal_file_is_one_line_before_any_work(data, tmp_path, space):
    """--storage given a folder, a path under a file, a SQLite study.db without sqlite:/// or a text file ended in
    an IsADirectoryError / FileExistsError / UnicodeDecodeError / JSONDecodeError traceback (exit 1), the SQLite file
    first written into by Optuna's journal. Each is one line naming --storage and the fix, exit 2, the file as it
    was, no study folder."""
    import sqlite3
    db = tmp_path / "study.db"
    with sqlite3.connect(db) as con:
        con.execute("create table t (x)")
    before = db.read_bytes()
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    out = tmp_path / "tune"
    for storage, said in ((folder, f"--storage {folder} is an existing folder; give a file path such as "
                                   f"{folder / 'study.journal'}"),
                          (text / "j.log", f"--storage {text / 'j.log'} lies under {text}, which is a file"),
                          (f"sqlite:///{folder}", f"--storage {folder} is an existing folder"),
                          (db, f"--storage {db} is not an Optuna journal file but a SQLite database: give it as "
                               f"--storage sqlite:///{db}"),
                          (text, f"--storage {text} is not an Optuna journal file; give a journal file written by "
                                 f"imgcls tune")):
        r = CliRunner().invoke(app, ["tune", str(data), "--study", "s", "--space", str(space), "--out", str(out),
                                     "--storage", str(storage)])
        assert r.exit_code == 2 and "Traceback" not in r.output, (storage, r.output)
        assert r.output.strip().splitlines()[-1].startswith("error: " + said), (storage, r.output)
        assert not out.exists()
    assert db.read_bytes() == before


def test_the_data_s_warnings_name_it_as_typed_as_train_s_do_once_for_the_study(data, tmp_path, space, capsys,
                                                                                 monkeypatch):
    """`imgcls train raw` says its data as typed ('for a leak-free split: imgcls split raw'); `imgcls tune raw`
    said it by its absolute path (the study's anchored record), before the study and in its trials alike. It now
    names it as typed too, and the trials' same lines are not said again."""
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    run_tune(tune_cfg(Path("raw"), tmp_path, space, study="s1", trials=1))
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("no split column with val rows") == 1, err
    assert "for a leak-free split: imgcls split raw --val 0.3 (Python: run_split('raw', cfg=SplitConfig(val=0.3)))" \
        in err, err
    assert str(tmp_path / "raw") not in err.split("trial 0")[0], err


def test_a_fix_of_a_study_whose_space_draws_target_types_no_target(data, tmp_path):
    """A space drawing `target` (artist or label) on a table with no fold column, tuned --folds all: the refusal's
    fix named `imgcls tune data/splits.csv --target artist --folds all --study s-split`, which tune refuses (a typed
    --target the space varies). The fix leaves the searched option to the space: no --target, nor target=."""
    rows = pd.DataFrame({"path": [str(p) for p in sorted(data.rglob("*.png"))]})
    rows["label"] = [Path(p).parent.name for p in rows["path"]]
    rows["artist"] = [f"x{i % 2}" for i in range(len(rows))]
    rows.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "space.yaml").write_text(SPACE + "target: {choice: [artist, label]}\n")
    r = CliRunner().invoke(app, ["tune", str(tmp_path / "t.csv"), "--study", "s",
                                 "--space", str(tmp_path / "space.yaml"), "--model", "test_resnet", "--no-pretrained",
                                 "--img-size", "32", "--epochs", "1",
                                 "--out", str(tmp_path / "tune"), "--trials", "1", "--workers", "0", "--folds", "all"])
    said = " ".join(r.output.split())
    # every target the space draws lacks the fold column alike: said as train says it, not as the space key's
    assert r.exit_code == 2 and said.startswith("error: --folds needs a `fold` column"), r.output
    assert "imgcls tune data/splits.csv --model test_resnet --no-pretrained --img-size 32 --epochs 1 --workers 0 " \
           "--folds all --study s-split --space " in said, r.output
    assert "--target" not in said.split("first and tune on its table")[1] and "target=" not in said, r.output
    # its split stratifies on every target the space draws (the trials train on either), not on artist alone
    assert (f"run imgcls split {tmp_path / 't.csv'} --folds 5 --stratify artist,label (Python: run_split("
            f"'{tmp_path / 't.csv'}', cfg=SplitConfig(folds=5, stratify=['artist', 'label']))) first") in said, said


@pytest.mark.parametrize("split, extra, words", [
    ("val", [], "no training images; check the split"),
    (None, ["--folds", "0"], "no training images in fold 0; check the split"),
    ("artist", [], "space key 'target' (artist): no training images: the split column's 10 train rows are all left "
                   "out (10 no artist; e.g. ")])
def test_a_side_every_searched_target_lacks_is_not_blamed_on_the_space_key(data, tmp_path, split, extra, words):
    """A table whose rows are all validation rows (or all of fold 0) has no training image whatever target a trial
    draws, yet tune's check before the study named `space key 'target' (artist)` as the cause. The refusal every
    target the space draws has alike is train's line; one a single target has (artist's training rows unlabelled)
    still names the space key, and why that side is empty."""
    rows = pd.DataFrame({"path": [str(p) for p in sorted(data.rglob("*.png"))]})
    rows["label"] = [Path(p).parent.name for p in rows["path"]]
    rows["artist"] = [f"x{i % 2}" for i in range(len(rows))]
    rows["split"] = "val" if split == "val" else ["val" if i % 2 else "train" for i in range(len(rows))]
    if split is None:
        rows["fold"] = 0
    elif split == "artist":         # artists only on the validation rows (two of them)
        rows["artist"] = [f"x{i // 2 % 2}" if i % 2 else "" for i in range(len(rows))]
    rows.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "space.yaml").write_text(SPACE + "target: {choice: [artist, label]}\n")
    r = CliRunner().invoke(app, ["tune", str(tmp_path / "t.csv"), "--study", "s",
                                 "--space", str(tmp_path / "space.yaml"), "--model", "test_resnet", "--no-pretrained",
                                 "--img-size", "32", "--epochs", "1", "--out", str(tmp_path / "tune"), "--trials", "1",
                                 "--workers", "0", *extra])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and (said.startswith(f"error: {words}") if split == "artist" else
                                 said == f"error: {words}"), r.output
    assert not (tmp_path / "tune").exists()


def test_a_refusal_of_a_space_of_one_target_names_the_space_key(data, tmp_path):
    """A space whose target is a choice of one column (artist, empty on every row) was refused as train refuses a
    typed --target ("check the --target column", no space key named): "alike for every target" held for the one
    target checked. The space's key and value are named, as before every target was checked."""
    rows = pd.DataFrame({"path": [str(p) for p in sorted(data.rglob("*.png"))]})
    rows["label"] = [Path(p).parent.name for p in rows["path"]]
    rows["artist"] = ""
    rows.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "space.yaml").write_text(SPACE + "target: {choice: [artist]}\n")
    r = CliRunner().invoke(app, ["tune", str(tmp_path / "t.csv"), "--study", "s",
                                 "--space", str(tmp_path / "space.yaml"), "--model", "test_resnet", "--no-pretrained",
                                 "--img-size", "32", "--epochs", "1", "--out", str(tmp_path / "tune"), "--trials", "1",
                                 "--workers", "0"])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and said.startswith("error: space key 'target' (artist): "), r.output


def test_a_study_whose_space_draws_target_names_one_split_in_every_trial(data, tmp_path, capsys):
    """Each trial of a space drawing `target` (artist or label) on a table with no split column warned with a split
    stratified on its own draw: `--stratify artist` in one trial, none in the next, two fixes for one study. Every
    trial names the split stratified on every target the space draws."""
    rows = pd.DataFrame({"path": [str(p) for p in sorted(data.rglob("*.png"))]})
    rows["label"] = [Path(p).parent.name for p in rows["path"]]
    rows["artist"] = [f"x{i % 2}" for i in range(len(rows))]
    rows.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "space.yaml").write_text("target: {choice: [artist, label]}\n")
    capsys.readouterr()
    run_tune(tune_cfg(tmp_path / "t.csv", tmp_path, tmp_path / "space.yaml", sampler="grid"))
    err = " ".join(capsys.readouterr().err.split())
    fixes = re.findall(r"for a leak-free split: (imgcls split \S+(?: --val \S+)?( --stratify \S+)?) \(Python", err)
    assert len(fixes) == 1 and fixes[0][1] == " --stratify artist,label", (fixes, err)


def test_no_split_column_warning_is_said_once_though_a_trial_s_fix_carries_other_options(data, tmp_path, capsys):
    """The warning's fix carries the options that act: a fixed --smoothing acts only in the trials whose loss is
    label-smoothing, so such a trial's text differed from the one said before the study, and it was said again
    (console.said_once counts the same text). It is said once for the study."""
    (tmp_path / "space.yaml").write_text("loss: {choice: [ce, label-smoothing]}\n")
    capsys.readouterr()
    run_tune(tune_cfg(data, tmp_path, tmp_path / "space.yaml", sampler="grid", train={"smoothing": 0.05}))
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("no split column with val rows") == 1, err


def test_no_split_column_warning_before_the_study_types_no_searched_option(data, tmp_path, space, capsys):
    """The warning said before the study opens named the fixed options without the space's (train's run passes its
    `searched`; tune's check did not): a --config file's lr, which the space varies, was typed in its
    `imgcls tune ... --lr 0.005` fix, a command tune refuses (a typed option its space varies). Those are left to
    the space, as in the trials' lines; the fixed ones are named."""
    conf = tmp_path / "best_config.yaml"
    TrainConfig(**TINY, src=str(data), epochs=1, lr=0.005).save(conf)
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as m:
        import imgcls.tune as tune_mod
        m.setattr(tune_mod, "_search", lambda cfg, *a, **k: tmp_path / "tune" / "s")    # no trial: the line before
        run_tune(TuneConfig(study="s", space=str(space), out=str(tmp_path / "tune"), config=str(conf)))
    err = " ".join(capsys.readouterr().err.split())
    fix = err.split("for a leak-free split: ")[1]
    assert "then imgcls tune data/splits.csv --model test_resnet " in fix, err
    assert "--lr" not in fix and "lr=" not in fix, fix


def test_no_split_column_warning_names_tune_with_the_study(data, tmp_path, space, capsys):
    """tune says the data's 'no split column with val rows' warning before its study: its fix named `imgcls train
    data/splits.csv`, a command that trains one run, not the study the user asked for. It names tune's, with the
    user's --study. Not that study itself: resumed on the split's table, whose rows differ, it is refused
    (_check_rows): a new study, s1-split."""
    capsys.readouterr()
    run_tune(tune_cfg(data, tmp_path, space, study="s1", trials=1))
    err = " ".join(capsys.readouterr().err.split())
    assert "no split column with val rows" in err, err
    assert "imgcls tune data/splits.csv --model test_resnet --no-pretrained --img-size 32 --aug none --epochs 1 " \
           f"--batch-size 8 --workers 0 --device cpu --study s1-split --space {space} --pruner none --trials 1 " \
           f"--out {tmp_path / 'tune'} (Python" in err, err
    assert f"run_tune(TuneConfig(study='s1-split', space='{space}', pruner='none', trials=1, " \
           f"out='{tmp_path / 'tune'}', train=TrainConfig(src='data/splits.csv', model='test_resnet', " \
           "pretrained=False, img_size=32, aug='none', epochs=1, batch_size=8, workers=0, device='cpu')))" in err, err
    assert "imgcls train data/splits.csv" not in err, err


def test_metric_loss_over_a_space_that_varies_the_loss_function_is_refused(data, tmp_path):
    """Each trial's val_loss is computed with its own training loss: a focal loss read 1.29 where cross-entropy read
    1.82 on the same data (macro-F1 0.35 / 0.36), so `tune --metric loss` over the default space (loss: ce,
    label-smoothing, focal) ranked the trials by which loss function reads lowest, not by the model. Refused in one
    line before the study opens; a space that leaves the loss function alone still runs with --metric loss."""
    varied = tmp_path / "varied.yaml"
    varied.write_text(SPACE + "loss: {choice: [ce, focal]}\n")
    with pytest.raises(UserError, match=r"--metric loss .* the space varies loss.*--metric macro_f1"):
        run_tune(tune_cfg(data, tmp_path, varied, metric="loss"))
    assert not (tmp_path / "tune").exists()
    weighted = tmp_path / "weighted.yaml"
    weighted.write_text(SPACE + "class_weights: {choice: [none, auto]}\n")
    with pytest.raises(UserError, match=r"the space varies class_weights"):
        run_tune(tune_cfg(data, tmp_path, weighted, metric="loss"))
    with pytest.raises(UserError, match=r"the space varies loss"):      # the default space
        run_tune(dataclasses.replace(tune_cfg(data, tmp_path, varied, metric="loss", train={"aug": TrainConfig.aug}),
                                     space=None))


def test_the_study_name_alone_resumes_with_the_metric_the_study_was_started_with(data, tmp_path, space):
    """`imgcls tune SRC --study m --metric accuracy ...` then `imgcls tune --study m --trials 2`: refused, 'study
    'm' optimises --metric accuracy, not macro_f1', where the README says the study name alone resumes a study (its
    fixed options, space, sampler and pruner are the study's when not typed). Its --metric is too, said in one
    line; another one typed is still refused."""
    where = ["--out", str(tmp_path / "tune"), "--workers", "0", "--device", "cpu"]
    fixed = ["--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--epochs", "1", "--batch-size", "8",
             "--aug", "none", "--val-split", "0.3", "--space", str(space), "--pruner", "none"]
    r = CliRunner().invoke(app, ["tune", str(data), "--study", "m", "--metric", "accuracy", *where, *fixed,
                                 "--quiet", "--trials", "1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["tune", "--study", "m", *where, "--trials", "2"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "study 'm' resumes with the --metric it was started with: accuracy" in said, said
    assert list(trials_csv(tmp_path / "tune" / "m")["state"]) == ["complete", "complete"]
    assert yaml.safe_load((tmp_path / "tune" / "m" / "trial_0001" / "config.yaml").read_text())["metric"] == \
        "accuracy"
    r = CliRunner().invoke(app, ["tune", "--study", "m", *where, "--trials", "3", "--metric", "macro_f1"])
    assert r.exit_code == 2 and "optimises --metric accuracy, not macro_f1" in " ".join(r.output.split()), r.output
