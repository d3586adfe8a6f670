"""The train callback interface, the metric shared by train / ensemble / runs, run reports and trackers: one tiny
run (and one tiny k-fold set) per module, reused by every test."""
from __future__ import annotations

import re
from pathlib import Path


import numpy as np
import pandas as pd
import pytest

from conftest import make_image_folder
from imgcls.train import TrainConfig, run_train
from imgcls.train.callbacks import Callback

# plots=False: no curves or confusion figures (matplotlib), which the trackers log as images; the module's two
# shared runs (single, kfold), whose logged figures and artifacts the tests read, set plots=True
TINY = dict(model="test_resnet", img_size=32, batch_size=8, workers=0, device="cpu", aug="none", pretrained=False,
            plots=False)


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_run_start(self, info):
        self.events.append(("start", info))

    def on_step_end(self, step, logs):
        self.events.append(("step", step, logs))

    def on_epoch_end(self, epoch, logs):
        self.events.append(("epoch", epoch, logs))

    def on_run_end(self, summary):
        self.events.append(("end", summary))

    def on_train_end(self, summary):
        self.events.append(("train_end", summary))

    def kinds(self):
        return [e[0] for e in self.events]


class FakeWandbRun:
    """What the W&B tracker uses of a wandb run, for the tests that run without wandb (the fake_wandb fixture):
    the init arguments, the summary, what was logged, an id (the one asked for, as wandb.init(id=...) does), the
    offline folder, which a finished run no longer tells."""

    def __init__(self, number: int, **kw):
        self.kw, self.summary, self.logged, self.finished, self.exit_code = kw, {}, [], False, None
        self.id = kw.get("id") or f"id{number}"
        self.dir = Path(kw["dir"]) / "wandb" / f"offline-run-20260101_{number:06d}-{self.id}" / "files"
        self.dir.mkdir(parents=True)
        self.dir = str(self.dir)

    def define_metric(self, *a, **k):
        pass

    def log(self, data, *a, **k):
        self.logged.append(data)

    def finish(self, exit_code=None, quiet=None):
        self.finished, self.dir, self.exit_code = True, None, exit_code


@pytest.fixture
def fake_wandb(monkeypatch):
    """wandb faked (offline): the list of the runs wandb.init made, in order."""
    import sys
    import types
    runs = []

    def init(**kw):
        runs.append(FakeWandbRun(len(runs), **kw))
        return runs[-1]

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init, Settings=lambda **k: None,
                                                                    Image=lambda *a, **k: None,
                                                                    Table=lambda *a, **k: None))
    monkeypatch.setenv("WANDB_MODE", "offline")
    return runs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """3 classes; class c only in train (the validation rows lack it: the two macro-F1s disagreed there)."""
    from imgcls import manifest as mf
    tmp = tmp_path_factory.mktemp("data")
    src = make_image_folder(tmp / "raw", {"a": 8, "b": 8, "c": 4}, size=(40, 40))
    df = mf.load(src)
    val = (df["label"] != "c") & (df.groupby("label").cumcount() < 3)
    df["split"] = np.where(val, "val", "train")
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp / "splits.csv")
    return tmp / "splits.csv"


@pytest.fixture(scope="module")
def out(tmp_path_factory, mlflow_store):
    runs = tmp_path_factory.mktemp("runs")        # one folder: one MLflow store (creating it costs seconds)
    mlflow_store(runs)
    return runs


@pytest.fixture(scope="module")
def single(data, out):
    rec = Recorder()
    run = run_train(TrainConfig(src=str(data), out=str(out), name="single", epochs=2, tracker=["tensorboard", "mlflow"],
                                **{**TINY, "plots": True}), callbacks=[rec])
    return run, rec


@pytest.fixture(scope="module")
def kfold(data, out):
    rec = Recorder()
    run = run_train(TrainConfig(src=str(data), out=str(out), name="kf", epochs=1, folds="all",
                                tracker=["tensorboard", "mlflow"], **{**TINY, "plots": True}), callbacks=[rec])
    return run, rec


def test_callbacks_are_called_in_order_with_the_run_state(single):
    run, rec = single
    kinds = rec.kinds()
    assert kinds[0] == "start" and kinds[-2:] == ["end", "train_end"]
    info = rec.events[0][1]
    assert info["run_dir"] == run and info["fold"] is None and info["total_epochs"] == 2
    assert info["classes"] == ["a", "b", "c"] and info["config"]["model"] == "test_resnet"
    assert info["train_images"] == 14 and info["val_images"] == 6 and info["start_epoch"] == 0
    m = pd.read_csv(run / "metrics.csv")
    epochs = [e for e in rec.events if e[0] == "epoch"]
    assert [e[1] for e in epochs] == [1, 2]
    for (_, _, logs), (_, row) in zip(epochs, m.iterrows()):
        assert logs["val_macro_f1"] == pytest.approx(row["val_macro_f1"]) and "improved" in logs
        assert logs["lr"] == pytest.approx(row["lr"]) and logs["train_loss"] == pytest.approx(row["train_loss"])
    steps = [e for e in rec.events if e[0] == "step"]
    assert [s[1] for s in steps] == list(range(1, len(steps) + 1)) and len(steps) == 2 * 2   # 14 images, batch 8
    assert all(np.isfinite(s[2]["loss"]) and s[2]["lr"] > 0 for s in steps)
    # steps come between the epoch ends they belong to
    assert kinds.index("epoch") == 1 + 2
    end = rec.events[-2][1]
    assert end["best_epoch"] == int(m.loc[m["val_macro_f1"].idxmax(), "epoch"])
    assert end["best_macro_f1"] == pytest.approx(m["val_macro_f1"].max())
    assert end["best_pt"].is_file() and end["metrics_csv"] == run / "metrics.csv"
    assert list(end["per_class"]["class"]) == ["a", "b", "c"]


def test_a_callback_exception_propagates_after_the_epoch_is_saved(data, tmp_path):
    class Prune(Callback):
        def on_epoch_end(self, epoch, logs):
            raise KeyError(f"pruned at {epoch}")

    with pytest.raises(KeyError, match="pruned at 1"):
        run_train(TrainConfig(src=str(data), out=str(tmp_path), name="p", epochs=3, **TINY), callbacks=[Prune()])
    from imgcls.train.checkpoint import read_checkpoint
    assert read_checkpoint(tmp_path / "p" / "last.pt")["train_state"]["epoch"] == 0      # epoch 1 saved
    assert len(pd.read_csv(tmp_path / "p" / "metrics.csv")) == 1


def test_wandb_logs_the_confusion_pngs_under_their_names_without_png(tmp_path, fake_wandb):
    """The W&B tracker logs the run's confusion PNGs (figure_files.confusion_png_names, the one spelling of their
    names) keyed by the file's name without .png, the keys users' dashboards know; a run without them logs none."""
    from imgcls.figure_files import confusion_png_names
    from imgcls.track.wandb_tracker import WandbTracker
    for drawn in (True, False):
        run_dir = tmp_path / f"r{drawn}"
        run_dir.mkdir()
        for png in confusion_png_names() if drawn else ():
            (run_dir / png).write_bytes(b"")
        tracker = WandbTracker()
        tracker.on_run_start({"run_dir": run_dir, "parent_dir": None, "fold": None, "config": {"epochs": 1}})
        tracker.on_run_end({"run_dir": run_dir, "best_macro_f1": 0.5, "best_epoch": 1, "per_class": None})
        keys = [set(d) for d in fake_wandb[-1].logged if "confusion_matrix" in d]
        assert keys == ([{"confusion_matrix", "confusion_matrix_normalized"}] if drawn else []), keys


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_resumed_run_goes_on_with_the_update_steps(data, tmp_path):
    """train --resume started on_step_end's step at 1 again: TensorBoard's / MLflow's step/loss and step/lr went back
    over the first session's steps (two values per step). Now the steps go on from the updates already done."""
    first, again = Recorder(), Recorder()
    cfg = TrainConfig(src=str(data), out=str(tmp_path), name="r", epochs=2, **TINY)
    run = run_train(cfg, stop_after=1, callbacks=[first])
    run_train(TrainConfig.load(run / "config.yaml"), resume=run, callbacks=[again])
    before = [e[1] for e in first.events if e[0] == "step"]
    after = [e[1] for e in again.events if e[0] == "step"]
    assert before == list(range(1, len(before) + 1)) and len(after) == len(before)
    assert after == list(range(len(before) + 1, 2 * len(before) + 1))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tensorboard_drops_the_steps_of_a_stopped_epoch_when_the_run_is_resumed(data, tmp_path):
    """A run stopped inside an epoch (Ctrl-C, a crash) had logged that epoch's first updates; --resume trains the
    epoch again from last.pt, and TensorBoard drew those steps twice. The resumed session's events now purge what the
    stopped one wrote past last.pt: one value per step, the epoch scalars of the finished epoch kept."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    class Stop(Callback):
        def on_step_end(self, step, logs):
            if logs["epoch"] == 2:
                raise KeyboardInterrupt

    cfg = TrainConfig(src=str(data), out=str(tmp_path), name="tb", epochs=2, tracker=["tensorboard"], **TINY)
    with pytest.raises(KeyboardInterrupt):
        run_train(cfg, callbacks=[Stop()])
    run = tmp_path / "tb"
    run_train(TrainConfig.load(run / "config.yaml"), resume=run)
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    steps = [e.step for e in acc.Scalars("step/loss")]
    assert steps == sorted(set(steps)) and steps == list(range(1, len(steps) + 1)), steps
    assert [e.step for e in acc.Scalars("val/macro_f1")] == [1, 2]
    m = pd.read_csv(run / "metrics.csv")
    assert np.allclose([e.value for e in acc.Scalars("val/macro_f1")], m["val_macro_f1"], atol=1e-6)


class StopInEpoch(Callback):
    """Ctrl-C at the first update of epoch `epoch` (of fold `fold` with --folds)."""

    def __init__(self, epoch: int, fold=None):
        self.epoch, self.fold, self.current = epoch, fold, None

    def on_run_start(self, info):
        self.current = info["fold"]

    def on_step_end(self, step, logs):
        if logs["epoch"] == self.epoch and self.current == self.fold:
            raise KeyboardInterrupt


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mlflow_goes_on_in_the_same_run_when_a_run_or_k_fold_set_is_resumed(data, tmp_path, mlflow_store):
    """train --resume --tracker mlflow opened a second MLflow run of the same name holding only the epochs after the
    stop, beside the first one (KILLED, the earlier epochs); a resumed k-fold set got a second parent, its folds
    split between the two. Now the run folder records its MLflow run and a resumed run goes on in it."""
    import json

    from mlflow.tracking import MlflowClient

    from imgcls.track.mlflow_tracker import MLflowTracker
    uri = f"sqlite:///{mlflow_store(tmp_path).resolve()}"
    one = TrainConfig(src=str(data), out=str(tmp_path), name="m", epochs=2, tracker=["mlflow"], **TINY)
    sets = TrainConfig(src=str(data), out=str(tmp_path), name="k", epochs=1, folds="all", tracker=["mlflow"], **TINY)
    for cfg, stop in ((one, StopInEpoch(2)), (sets, StopInEpoch(1, fold=1))):
        with pytest.raises(KeyboardInterrupt):
            run_train(cfg, callbacks=[stop])
        run = tmp_path / cfg.name
        run_train(TrainConfig.load(run / "config.yaml"), resume=run)
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("imgcls").experiment_id])
    by_name = {}
    for r in runs:
        by_name.setdefault(r.info.run_name, []).append(r)
    assert sorted(by_name) == ["k", "k/fold_0", "k/fold_1", "m"] and all(len(v) == 1 for v in by_name.values())
    assert {r.info.status for r in runs} == {"FINISHED"}
    m = by_name["m"][0]
    assert "imgcls.stopped" not in m.data.tags          # the Ctrl-C it had recorded is over
    assert [h.step for h in client.get_metric_history(m.info.run_id, "val/macro_f1")] == [1, 2]
    steps = [h.step for h in client.get_metric_history(m.info.run_id, "step/loss")]
    assert steps == sorted(set(steps))
    parent = by_name["k"][0].info.run_id
    assert {by_name[f][0].data.tags["mlflow.parentRunId"] for f in ("k/fold_0", "k/fold_1")} == {parent}
    assert "oof/val_macro_f1" in by_name["k"][0].data.metrics
    # a copy of a run folder, resumed, is a run of its own: the original's MLflow run is left as it was
    import shutil
    shutil.copytree(tmp_path / "m", tmp_path / "m2")
    rec = json.loads((tmp_path / "m2" / "mlflow_run.json").read_text())
    tracker = MLflowTracker(out=tmp_path)
    tracker._connect()
    assert rec["run_id"] == m.info.run_id and tracker._earlier(tmp_path / "m2") is None
    assert tracker._earlier(tmp_path / "m") == m.info.run_id


class RefuseInFirstEpoch(Callback):
    """A refusal (UserError) at the first update, after the trackers started their runs: as images broken since
    the scan, found as they decode, stop a run in its first epoch."""

    def on_step_end(self, step, logs):
        from imgcls.errors import UserError
        raise UserError("the images broke since the scan")


@pytest.mark.timeout(300)
def test_a_refusal_in_the_first_epoch_keeps_the_folder_its_mlflow_run_names(data, tmp_path, mlflow_store, capsys):
    """A run refused in its first epoch removed its run folder (rundir.unclaim_run_dir) after MLflow's run had
    started: the store kept a FAILED run whose imgcls.run_dir and mlflow_run.json were gone, and the same command
    then made a second MLflow run for the same folder. The folder stays, saying so, its record naming that MLflow
    run (--resume goes on in it)."""
    from mlflow.tracking import MlflowClient

    from imgcls.errors import UserError
    uri = f"sqlite:///{mlflow_store(tmp_path).resolve()}"
    cfg = TrainConfig(src=str(data), out=str(tmp_path), name="r", epochs=1, tracker=["mlflow"], **TINY)
    with pytest.raises(UserError, match="broke since the scan"):
        run_train(cfg, callbacks=[RefuseInFirstEpoch()])
    run = tmp_path / "r"
    said = " ".join(capsys.readouterr().err.split())
    assert (run / "mlflow_run.json").is_file() and (run / "config.yaml").is_file(), said
    assert f"{run} stays, though no epoch finished: its MLflow run names it; imgcls train --resume {run} " \
           f"(Python: run_train(TrainConfig(), resume='{run}')) trains it from the start in that run" in said, said
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("imgcls").experiment_id
    [failed] = client.search_runs([experiment])
    assert failed.info.status == "FAILED" and "broke since the scan" in failed.data.tags["imgcls.stopped"]
    # the run --resume goes on in (test_mlflow_goes_on_in_the_same_run_when_a_run_or_k_fold_set_is_resumed)
    from imgcls.track.common import recorded_tracker_run
    assert recorded_tracker_run(run, "mlflow", uri) == failed.info.run_id


def test_wandb_goes_on_in_the_same_run_when_a_run_or_k_fold_set_is_resumed(tmp_path, fake_wandb, capsys):
    """train --resume --tracker wandb started a second W&B run of the same name holding only the epochs after the
    stop (MLflow went on in its run). The run folder (each fold's, the k-fold set's) now records its W&B run in
    wandb_run.json, as mlflow_run.json, and a resumed session goes on in it: wandb.init(id=..., resume="allow"), the
    stop it recorded cleared. A copy of the folder starts a run of its own. (wandb itself is faked; the hooks are
    called as run_train calls them when a run, or the second fold of a set, is stopped by Ctrl-C and resumed.)"""
    import json
    import shutil

    from imgcls.track.wandb_tracker import WandbTracker

    def start(tracker, run_dir, fold=None):
        tracker.on_run_start({"run_dir": run_dir, "parent_dir": None if fold is None else run_dir.parent,
                              "fold": fold, "config": {"epochs": 2}})

    def end(tracker, run_dir):
        tracker.on_run_end({"run_dir": run_dir, "best_macro_f1": 0.5, "best_epoch": 1, "per_class": None})

    w, k = tmp_path / "w", tmp_path / "k"
    tracker = WandbTracker()                                    # the first session: stopped in epoch 2
    start(tracker, w)
    tracker.on_epoch_end(1, {"val_macro_f1": 0.5})
    tracker.on_run_abort(KeyboardInterrupt())
    tracker = WandbTracker()                                    # train --resume w
    start(tracker, w)
    tracker.on_epoch_end(2, {"val_macro_f1": 0.6})
    end(tracker, w)
    capsys.readouterr()
    tracker.on_train_end({"run_dir": w, "folds": [], "oof": None, "runs": []})
    said = " ".join(capsys.readouterr().err.split())      # the sync line names both sessions' offline folders
    assert sorted(p.name for p in (w / "wandb").iterdir()) == [f"offline-run-20260101_00000{n}-{fake_wandb[0].id}"
                                                               for n in (0, 1)]
    assert f"wandb (offline): 2 folder(s) in {w}; upload them with: wandb sync " in said
    assert all(str(d) in said for d in (w / "wandb").iterdir()), said
    tracker = WandbTracker()                                    # a k-fold set stopped in its second fold
    start(tracker, k / "fold_0", 0)
    end(tracker, k / "fold_0")
    start(tracker, k / "fold_1", 1)
    tracker.on_run_abort(KeyboardInterrupt())
    tracker = WandbTracker()                                    # train --resume k: fold 0 is done
    start(tracker, k / "fold_1", 1)
    end(tracker, k / "fold_1")
    tracker.on_train_end({"run_dir": k, "folds": [0, 1], "oof": {"macro_f1": 0.5, "accuracy": 0.6}, "runs": [],
                          "config": {"folds": "all"}})
    first, again, fold0, fold1, fold1_again, kset = fake_wandb
    assert [r.kw["name"] for r in fake_wandb] == ["w", "w", "k/fold_0", "k/fold_1", "k/fold_1", "k"]
    assert "id" not in first.kw and again.kw["id"] == first.id and again.kw["resume"] == "allow"
    assert first.summary["imgcls/stopped"].startswith("KeyboardInterrupt") and "imgcls/stopped" not in again.summary
    assert fold1_again.kw["id"] == fold1.id and "id" not in fold0.kw and "id" not in kset.kw
    assert len({first.id, fold0.id, fold1.id, kset.id}) == 4 and all(r.finished for r in fake_wandb)
    for folder, r in ((tmp_path / "w", first), (tmp_path / "k" / "fold_1", fold1), (tmp_path / "k", kset)):
        rec = json.loads((folder / "wandb_run.json").read_text())
        assert rec == {"store": "imgcls", "run_id": r.id, "run_dir": str(folder.resolve())}
    # a copy of a run folder, or another project, is not the run the record names
    from imgcls.track.common import recorded_tracker_run
    shutil.copytree(tmp_path / "w", tmp_path / "w2")
    assert recorded_tracker_run(tmp_path / "w2", "wandb", "imgcls") is None
    assert recorded_tracker_run(tmp_path / "w", "wandb", "other") is None
    assert recorded_tracker_run(tmp_path / "w", "wandb", "imgcls") == first.id
    # an mlflow_run.json written before the record was shared named its store "tracking_uri"
    old = {"tracking_uri": "sqlite:///x.db", "run_id": "r1", "run_dir": str(tmp_path.resolve())}
    (tmp_path / "mlflow_run.json").write_text(json.dumps(old))
    assert recorded_tracker_run(tmp_path, "mlflow", "sqlite:///x.db") == "r1"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_wandb_offline_resume_goes_on_in_the_run_s_id(data, tmp_path, monkeypatch):
    """The same with wandb itself, offline: the resumed session's files (a second offline-run-* folder) carry the
    first session's run id."""
    pytest.importorskip("wandb")
    import json
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = TrainConfig(src=str(data), out=str(tmp_path), name="w", epochs=2, tracker=["wandb"], **TINY)
    with pytest.raises(KeyboardInterrupt):
        run_train(cfg, callbacks=[StopInEpoch(2)])
    run = tmp_path / "w"
    rec = json.loads((run / "wandb_run.json").read_text())
    run_train(TrainConfig.load(run / "config.yaml"), resume=run)
    dirs = sorted((run / "wandb").glob("offline-run-*"))
    assert len(dirs) == 2 and {d.name.rsplit("-", 1)[1] for d in dirs} == {rec["run_id"]}
    assert json.loads((run / "wandb_run.json").read_text()) == rec


def test_kfold_callbacks_name_the_fold_and_its_parent(kfold):
    run, rec = kfold
    starts = [e[1] for e in rec.events if e[0] == "start"]
    assert [s["fold"] for s in starts] == [0, 1] and all(s["parent_dir"] == run for s in starts)
    assert [s["run_dir"].name for s in starts] == ["fold_0", "fold_1"]
    end = rec.events[-1][1]
    assert rec.events[-1][0] == "train_end" and end["folds"] == [0, 1] and end["oof"]["n_images"] == 20


def test_one_macro_f1_for_train_oof_ensemble_and_runs(single, kfold, tmp_path):
    """The same predictions give the same number in metrics.csv, the OOF score, ensemble and `imgcls runs` (the
    validation rows lack class c: train used to average over the classes present)."""
    from imgcls import metrics
    from imgcls.ensemble import build_ensemble
    from imgcls.runs import read_run
    run, _ = single
    m = pd.read_csv(run / "metrics.csv")
    vp = pd.read_csv(run / "val_predictions.csv", keep_default_na=False)
    assert "c" not in set(vp["label"])
    f1 = metrics.macro_f1(vp["label"], vp["pred"], ["a", "b", "c"])
    assert m["val_macro_f1"].max() == pytest.approx(f1, abs=1e-6)
    spec = build_ensemble([run, kfold[0]], out=tmp_path / "ens")     # an ensemble of one is refused
    assert spec.scores["members"]["single"]["val_macro_f1"] == pytest.approx(f1, abs=1e-6)
    assert read_run(run).val_macro_f1 == pytest.approx(f1, abs=1e-6)
    kf, _ = kfold
    import json
    oof = json.loads((kf / "oof_score.json").read_text())
    vp = pd.read_csv(kf / "val_predictions.csv", keep_default_na=False)
    assert oof["macro_f1"] == pytest.approx(metrics.macro_f1(vp["label"], vp["pred"], ["a", "b", "c"]), abs=1e-6)
    assert read_run(kf).val_macro_f1 == pytest.approx(oof["macro_f1"], abs=1e-6)


def test_run_outputs_and_self_contained_report(single, kfold):
    for run in (single[0], kfold[0]):
        for f in ("per_class.csv", "confusion_matrix.png", "confusion_matrix_normalized.png", "report.html"):
            assert (run / f).is_file(), (run, f)
        pc = pd.read_csv(run / "per_class.csv", keep_default_na=False)
        assert list(pc["class"]) == ["a", "b", "c"]
        assert {"precision", "recall", "f1", "support"} <= set(pc.columns)
        from conftest import assert_self_contained
        html = assert_self_contained(run / "report.html", 3)
        assert "Worst-predicted validation images" in html and "top-3" in html
    pc = pd.read_csv(single[0] / "per_class.csv", keep_default_na=False)
    assert list(pc["train_support"]) == [5, 5, 4] and list(pc["support"]) == [3, 3, 0]   # c only trains
    assert (single[0] / "curves.png").is_file() and "Training curves" in (single[0] / "report.html").read_text()
    assert (kfold[0] / "fold_0" / "report.html").is_file() and "fold_0/report.html" in \
        (kfold[0] / "report.html").read_text()


def test_tensorboard_events_hold_the_scalars_images_and_hparams(single):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run, _ = single
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    for t in ("train/loss", "val/loss", "train/acc", "val/acc", "val/macro_f1", "lr", "step/loss", "step/lr",
              "val_f1_per_class/a", "val_f1_per_class/c", "hparam/best_val_macro_f1"):
        assert t in tags["scalars"], t
    assert {"confusion_matrix", "confusion_matrix_normalized", "val/worst_predictions"} <= set(tags["images"])
    m = pd.read_csv(run / "metrics.csv")
    f1 = acc.Scalars("val/macro_f1")
    assert [e.step for e in f1] == [1, 2] and np.allclose([e.value for e in f1], m["val_macro_f1"], atol=1e-6)
    assert len(acc.Scalars("step/loss")) == 4
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(acc.PluginTagToContent("hparams"))


def test_a_malformed_val_predictions_csv_leaves_tensorboards_worst_predictions_image_out_in_one_warning(tmp_path,
                                                                                                     capsys):
    """The tensorboard tracker's worst-predictions image (track.images.worst_predictions_figure) read the run's
    val_predictions.csv with plain pandas: a malformed file (a row with more fields than the header) was pandas'
    ParserError traceback out of on_run_end, killing a finished run's tracking. It is read by rundir.read_validation
    and, as a missing one, left out: one warning naming the file and the fix, as the trackers' other failures are,
    and the tracker goes on (its hparams written, its writer closed)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from imgcls.track.tb_tracker import TensorBoardTracker
    run = tmp_path / "run"
    run.mkdir()
    bad = run / "val_predictions.csv"
    bad.write_text("path,root,label,pred,p_true,top3\na/0.png,,a,a,0.9,a\nb/0.png,,b,a,0.2,a,extra\n")
    tb = TensorBoardTracker()
    tb.on_run_start({"run_dir": run, "config": {"model": "test_resnet"}})
    tb.on_run_end({"run_dir": run, "best_epoch": 1, "best_macro_f1": 0.5})
    said = " ".join(capsys.readouterr().err.split())
    fix = "imgcls train wrote it: restore it from a backup, or train the run again"
    assert (f"warning: the run's validation predictions {bad}: line 3 has 7 field(s), the header has 6; {fix}; the "
            f"trackers log no worst-predictions image") in said, said
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    assert "hparam/best_val_macro_f1" in acc.Tags()["scalars"] and "val/worst_predictions" not in acc.Tags()["images"]


@pytest.mark.rendered_figures
def test_tensorboards_worst_predictions_image_is_drawn_with_the_figures_font_fallback(tmp_path, monkeypatch, capsys):
    """TensorBoard drew the worst-predictions figure itself (add_figure), its missing-glyph warnings held back: class
    names in no font of the figure's family list were boxes, with no fallback font and no word. It is drawn as the
    run's PNGs are (imgcls.report's figure_png, logged with add_image): Korean names with the bundled font draw with
    no warning; where the family list has no font with them (koreanize-matplotlib missing), an installed one that
    has them is the fallback; where none has them, the one line says they are boxes."""
    import warnings

    import matplotlib
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from imgcls import report
    from imgcls.track import images
    from imgcls.track.tb_tracker import TensorBoardTracker
    names = ["고양이", "강아지"]
    data = make_image_folder(tmp_path / "raw", {n: 1 for n in names}, size=(24, 24))
    figs, drawn = [], images.worst_predictions_figure
    monkeypatch.setattr(images, "worst_predictions_figure", lambda *a, **kw: figs.append(drawn(*a, **kw)) or figs[-1])
    monkeypatch.setitem(report._glyphs, "said", set())

    def tracked(name):
        run = tmp_path / name
        run.mkdir()
        pd.DataFrame([{"path": f"{c}/000.png", "root": str(data), "label": c, "pred": names[1 - i],
                       f"p_{c}": 0.3, f"p_{names[1 - i]}": 0.7} for i, c in enumerate(names)]
                     ).to_csv(run / "val_predictions.csv", index=False)
        tb = TensorBoardTracker()
        tb.on_run_start({"run_dir": run, "config": {"model": "test_resnet"}})
        with warnings.catch_warnings(record=True) as caught, matplotlib.rc_context({"font.family": ["sans-serif"]}):
            warnings.simplefilter("always")
            tb.on_run_end({"run_dir": run, "best_epoch": 1, "best_macro_f1": 0.5})
        acc = EventAccumulator(str(run), size_guidance={"images": 0})
        acc.Reload()
        assert "val/worst_predictions" in acc.Tags()["images"]
        glyphs = [str(w.message) for w in caught if "Glyph" in str(w.message)]
        return glyphs, [ln for ln in capsys.readouterr().err.splitlines() if "drawn as boxes" in ln], figs[-1]

    assert report.korean_font() == "NanumGothic"        # the bundled font, registered with matplotlib
    glyphs, said, _ = tracked("bundled")
    assert not glyphs and not said, (glyphs, said)
    monkeypatch.setattr(report, "korean_font", lambda: None)       # not in the family list: an installed font
    hangul = {ord(ch) for n in names for ch in n}
    glyphs, said, fig = tracked("fallback")
    assert not glyphs and not said, (glyphs, said)
    assert fig.axes[0].title.get_fontfamily()[-1] == report.font_with(hangul) is not None, \
        fig.axes[0].title.get_fontfamily()
    monkeypatch.setattr(report, "font_with", lambda codepoints, exclude=(): None)     # no font has them
    glyphs, said, _ = tracked("boxes")
    assert not glyphs and len(said) == 1 and "고" in said[0], (glyphs, said)


def test_tensorboard_has_the_kfold_sets_out_of_fold_score(kfold, single, out):
    """train --folds all --tracker tensorboard wrote only each fold's events (MLflow logs oof/val_macro_f1 on the
    set's run); the set's own log dir now holds its OOF score, the number of oof_score.json. The HParams tab had no
    row for the set (only its folds'): the set's row has its options and OOF score, beside its folds' and a single
    run's best_val_macro_f1 (read with TensorBoard's own HParams backend, as the tab does)."""
    import json

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run, _ = kfold
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    oof = json.loads((run / "oof_score.json").read_text())
    assert oof["n_images"] == 20
    for tag, key in (("oof/val_macro_f1", "macro_f1"), ("oof/val_acc", "accuracy")):
        assert tag in acc.Tags()["scalars"], acc.Tags()
        assert [e.value for e in acc.Scalars(tag)] == [pytest.approx(oof[key], abs=1e-6)]
    rows = hparams_rows(out)
    assert rows["kf"][0] == {"oof/val_macro_f1": pytest.approx(oof["macro_f1"], abs=1e-6),
                             "oof/val_acc": pytest.approx(oof["accuracy"], abs=1e-6)}
    assert rows["kf"][1]["folds"] == "all" and rows["kf"][1]["model"] == TINY["model"]
    for name in ("kf/fold_0", "kf/fold_1", "single"):
        assert set(rows[name][0]) == {"hparam/best_val_macro_f1"}, rows[name]


def hparams_rows(logdir) -> dict:
    """What TensorBoard's HParams tab lists for `logdir`: {session (run folder): (metrics, options)}."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    tb = base_plugin.TBContext(logdir=str(logdir), multiplexer=mux,
                               data_provider=data_provider.MultiplexerDataProvider(mux, str(logdir)))
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=1000, allowed_statuses=[
        api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE, api_pb2.STATUS_RUNNING])
    groups = list_session_groups.Handler(context.RequestContext(), backend_context.Context(tb), "", request).run()
    return {g.name: ({m.name.tag: m.value for m in g.metric_values},
                     {k: v.string_value or v.number_value for k, v in g.hparams.items()})
            for g in groups.session_groups}


def test_mlflow_store_has_the_runs_and_the_folds_nested(single, kfold, out):
    import mlflow
    from mlflow.tracking import MlflowClient
    uri = f"sqlite:///{out.resolve() / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["imgcls"])
    by_name = {r["tags.mlflow.runName"]: r for _, r in runs.iterrows()}
    assert {"single", "kf", "kf/fold_0", "kf/fold_1"} <= set(by_name)
    s = by_name["single"]
    assert s["params.model"] == "test_resnet" and s["params.epochs"] == "2" and s["status"] == "FINISHED"
    assert s["params.pretrained"] == "false"          # as config.yaml writes it (was str(False): 'False')
    m = pd.read_csv(single[0] / "metrics.csv")
    assert s["metrics.best/val_macro_f1"] == pytest.approx(m["val_macro_f1"].max(), abs=1e-6)
    client = MlflowClient(uri)
    hist = client.get_metric_history(s["run_id"], "val/macro_f1")
    assert sorted(h.step for h in hist) == [1, 2]
    assert {"config.yaml", "metrics.csv", "report.html", "confusion_matrix_normalized.png"} <= \
        {a.path for a in client.list_artifacts(s["run_id"])}
    parent = by_name["kf"]["run_id"]
    for f in ("kf/fold_0", "kf/fold_1"):
        assert by_name[f]["tags.mlflow.parentRunId"] == parent
    assert by_name["kf"]["metrics.oof/val_macro_f1"] == pytest.approx(kfold[1].events[-1][1]["oof"]["macro_f1"])
    # the parent's OOF files: the score and the out-of-fold predictions it was computed from
    assert {"oof_score.json", "val_predictions.csv", "per_class.csv"} <= {a.path for a in client.list_artifacts(parent)}
    assert (out / "mlartifacts").is_dir()                 # artifacts beside the store, not in the working folder


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_wandb_offline_files(data, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = run_train(TrainConfig(src=str(data), out=str(tmp_path), name="wb", epochs=1, tracker=["wandb"], **TINY))
    files = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1 and files[0].stat().st_size > 0


def test_tracker_errors_are_one_line_before_any_data_is_read(tmp_path, monkeypatch):
    import importlib.util
    import sys
    from imgcls.errors import UserError
    with pytest.raises(UserError, match="unknown --tracker 'neptune'"):
        run_train(TrainConfig(src=str(tmp_path / "nothing"), tracker=["neptune"], **TINY))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "mlflow" else real(n, *a))
    (tmp_path / "data").mkdir()         # there (a missing path is said first, before any import), but never read
    with pytest.raises(UserError, match=r"--tracker mlflow needs the mlflow package: pip install 'imgcls\[mlflow\]'"):
        run_train(TrainConfig(src=str(tmp_path / "data"), out=str(tmp_path / "runs"), tracker=["mlflow"], **TINY))
    # installed but not importable (a broken dependency): found by find_spec, refused by the import, not mid-run
    (tmp_path / "site" / "tensorboard").mkdir(parents=True)
    (tmp_path / "site" / "tensorboard" / "__init__.py").write_text("raise ImportError('a broken dependency')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "tensorboard", raising=False)
    with pytest.raises(UserError, match=r"--tracker tensorboard: the tensorboard package does not import "
                                        r"\(ImportError: a broken dependency\)"):
        run_train(TrainConfig(src=str(tmp_path / "data"), out=str(tmp_path / "runs"), tracker=["tensorboard"],
                              **TINY))
    # protobuf's mismatch (the commit's own example) raises TypeError, not ImportError: refused alike
    (tmp_path / "site" / "tensorboard" / "__init__.py").write_text(
        "raise TypeError('Descriptors cannot be created directly.')\n")
    monkeypatch.delitem(sys.modules, "tensorboard", raising=False)
    with pytest.raises(UserError, match=r"--tracker tensorboard: the tensorboard package does not import "
                                        r"\(TypeError: Descriptors cannot be created directly.\)"):
        run_train(TrainConfig(src=str(tmp_path / "data"), out=str(tmp_path / "runs"), tracker=["tensorboard"],
                              **TINY))
    assert not (tmp_path / "runs").exists()


def test_runs_of_a_group_share_one_mlflow_parent_and_an_aborted_run_is_closed(data, out, single):
    """tune passes its study as track_group: every trial is a child of one parent run; a pruned trial is KILLED, and
    so is one tune's --timeout stopped (a DeliberateStop: it was FAILED, as a crash)."""
    import mlflow

    from imgcls.tune import _TimeUp

    class Pruned(Exception):
        pass

    Pruned.__name__ = "TrialPruned"

    class Prune(Callback):
        def on_epoch_end(self, epoch, logs):
            raise Pruned("pruned at epoch 1")

    class TimeUp(Callback):
        def on_epoch_end(self, epoch, logs):
            raise _TimeUp("stopped after epoch 1: the study's --timeout was reached")

    cfg = dict(src=str(data), out=str(out), epochs=1, tracker=["mlflow"], **TINY)
    run_train(TrainConfig(name="t0", **cfg), track_group="study1")
    with pytest.raises(Pruned):
        run_train(TrainConfig(name="t1", **cfg), track_group="study1", callbacks=[Prune()])
    with pytest.raises(_TimeUp):
        run_train(TrainConfig(name="t2", **cfg), track_group="study1", callbacks=[TimeUp()])
    mlflow.set_tracking_uri(f"sqlite:///{out.resolve() / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["imgcls"])
    by_name = {r["tags.mlflow.runName"]: r for _, r in runs.iterrows()}
    parents = runs[runs["tags.mlflow.runName"] == "study1"]
    assert len(parents) == 1 and parents.iloc[0]["tags.imgcls.kind"] == "group"
    for t in ("t0", "t1"):
        assert by_name[t]["tags.mlflow.parentRunId"] == parents.iloc[0]["run_id"]
    assert by_name["t0"]["status"] == "FINISHED" and by_name["t1"]["status"] == "KILLED"
    assert by_name["t2"]["status"] == "KILLED" and "--timeout" in by_name["t2"]["tags.imgcls.stopped"]
    assert "pruned at epoch 1" in by_name["t1"]["tags.imgcls.stopped"]


def test_a_k_fold_run_of_a_group_is_nested_under_it_and_gets_its_oof_score(data, out, single):
    """tune --folds all --tracker mlflow: each trial's k-fold parent run was made at the top level (no study
    parent at all), and its out-of-fold score and files were never logged (on_train_end skipped any run of a
    group), so the store had the folds' numbers but not the one the study and `imgcls runs` rank on. Now: study ->
    trial (k-fold, its OOF score and files) -> folds."""
    import mlflow
    from mlflow.tracking import MlflowClient
    cfg = dict(src=str(data), out=str(out), epochs=1, tracker=["mlflow"], folds="all", **TINY)
    rec = Recorder()
    run_train(TrainConfig(name="kt0", **cfg), track_group="study_kf", callbacks=[rec])
    uri = f"sqlite:///{out.resolve() / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["imgcls"])
    by_name = {r["tags.mlflow.runName"]: r for _, r in runs.iterrows()}
    assert "study_kf" in by_name and by_name["study_kf"]["tags.imgcls.kind"] == "group"
    trial = by_name["kt0"]
    assert trial["tags.mlflow.parentRunId"] == by_name["study_kf"]["run_id"]
    for f in ("kt0/fold_0", "kt0/fold_1"):
        assert by_name[f]["tags.mlflow.parentRunId"] == trial["run_id"]
    assert trial["metrics.oof/val_macro_f1"] == pytest.approx(rec.events[-1][1]["oof"]["macro_f1"])
    assert "oof_score.json" in {a.path for a in MlflowClient(uri).list_artifacts(trial["run_id"])}
    assert {by_name[n]["status"] for n in ("study_kf", "kt0", "kt0/fold_0", "kt0/fold_1")} == {"FINISHED"}


def test_wandb_folds_of_a_group_s_run_share_the_group(tmp_path, fake_wandb):
    """tune --folds --tracker wandb: each trial's folds were grouped by the trial's folder name alone, so no trial
    was in the study's group and every study's trial_0000 folds shared one W&B group. The study stays the group;
    the folds are named after their trial. (wandb itself is faked: only the init arguments are checked.)"""
    from imgcls.track.wandb_tracker import WandbTracker
    trial = tmp_path / "s1" / "trial_0000"
    for fold in (0, 1):
        WandbTracker(group="s1").on_run_start({"run_dir": trial / f"fold_{fold}", "parent_dir": trial,
                                                "fold": fold, "config": {}})
    WandbTracker().on_run_start({"run_dir": tmp_path / "kf" / "fold_0", "parent_dir": tmp_path / "kf", "fold": 0,
                                 "config": {}})
    assert [(r.kw["group"], r.kw["name"]) for r in fake_wandb] == [("s1", "trial_0000/fold_0"),
                                                                   ("s1", "trial_0000/fold_1"), ("kf", "kf/fold_0")]


def test_wandb_finishes_a_run_stopped_by_design_and_fails_a_crashed_one(tmp_path, fake_wandb):
    """A pruned tune trial (optuna.TrialPruned) ended its W&B run with exit_code=1, failed as a crash is, while
    MLflow marks it KILLED. W&B has no killed state a run can give itself (finish(): exit code 0 finished, any other
    failed): a stop by design, a pruning or tune's --timeout, finishes its run (exit_code=0), its summary's
    imgcls/stopped naming the stop; a crash still fails it. (wandb itself is faked, offline.)"""
    import optuna

    from imgcls.track.wandb_tracker import STOPPED, WandbTracker
    from imgcls.tune import _TimeUp
    stops = [optuna.TrialPruned("pruned after epoch 1"), _TimeUp("stopped after epoch 1: the study's --timeout was "
                                                                  "reached"), RuntimeError("a bug")]
    for n, error in enumerate(stops):
        tracker = WandbTracker(group="s1", say_sync=False)
        tracker.on_run_start({"run_dir": tmp_path / f"trial_{n:04d}", "parent_dir": None, "fold": None, "config": {}})
        tracker.on_run_abort(error)
    assert [(r.finished, r.exit_code) for r in fake_wandb] == [(True, 0), (True, 0), (True, 1)]
    assert [r.summary[STOPPED] for r in fake_wandb] == [
        "TrialPruned: pruned after epoch 1", "_TimeUp: stopped after epoch 1: the study's --timeout was reached",
        "RuntimeError: a bug"]


def test_wandb_has_the_kfold_sets_out_of_fold_score(kfold, fake_wandb):
    """train --folds all --tracker wandb logged each fold's run but no out-of-fold score (MLflow logs
    oof/val_macro_f1 on the set's run, TensorBoard in the set's log dir); now a run named after the set, in the
    folds' group, holds the numbers of oof_score.json. (wandb itself is faked.)"""
    import json

    from imgcls.track.wandb_tracker import WandbTracker
    runs = fake_wandb
    run, rec = kfold
    tracker = WandbTracker()
    for kind, *args in rec.events:
        if kind in ("start", "end", "train_end"):
            getattr(tracker, {"start": "on_run_start", "end": "on_run_end", "train_end": "on_train_end"}[kind])(*args)
    oof = json.loads((run / "oof_score.json").read_text())
    assert [(r.kw["name"], r.kw["group"], r.kw["job_type"]) for r in runs] == [
        ("kf/fold_0", "kf", "fold"), ("kf/fold_1", "kf", "fold"), ("kf", "kf", "k-fold")]
    assert runs[-1].summary == {"oof/val_macro_f1": pytest.approx(oof["macro_f1"], abs=1e-6),
                                "oof/val_acc": pytest.approx(oof["accuracy"], abs=1e-6)}
    assert all(r.finished for r in runs)
    WandbTracker().on_train_end({**rec.events[-1][1], "oof": None})     # a single run: no set, no extra run
    assert len(runs) == 3


def test_each_tracker_says_where_its_files_are_and_how_to_open_them(tmp_path, fake_wandb, capsys):
    """train --tracker wandb (offline) printed nothing about its files (wandb's own hint is silenced), nor did
    tensorboard / mlflow say how to look at what they wrote. Each now says it in one line after the run: the
    `tensorboard --logdir`, the `mlflow ui` store, the `wandb sync` folders. (wandb itself is faked.)"""
    from imgcls.console import set_quiet
    from imgcls.track.mlflow_tracker import MLflowTracker
    from imgcls.track.tb_tracker import TensorBoardTracker
    from imgcls.track.wandb_tracker import WandbTracker

    set_quiet(False)
    out = tmp_path / "my runs"
    run = out / "r1"
    wb = WandbTracker()
    wb.on_run_start({"run_dir": run, "parent_dir": None, "fold": None, "config": {}})
    wb.on_run_end({"run_dir": run, "best_macro_f1": 0.5, "best_epoch": 1, "per_class": None})
    end = {"run_dir": run, "folds": [], "oof": None, "runs": []}
    capsys.readouterr()
    for tracker in (TensorBoardTracker(), MLflowTracker(out=out), wb):
        tracker.on_train_end(end)
    said = " ".join(capsys.readouterr().err.split())
    assert f"tensorboard --logdir '{out}'" in said
    uri = f"sqlite:///{out.resolve() / 'mlflow.db'}"
    assert f"mlflow ui --backend-store-uri '{uri}'" in said
    assert f"wandb sync '{run / 'wandb' / 'offline-run-20260101_000000-id0'}'" in said
    set_quiet(True)
    wb.on_run_start({"run_dir": run, "parent_dir": None, "fold": None, "config": {}})
    wb.on_run_end({"run_dir": run, "best_macro_f1": 0.5, "best_epoch": 1, "per_class": None})
    for tracker in (TensorBoardTracker(), MLflowTracker(out=out), wb):
        tracker.on_train_end(end)
    set_quiet(False)
    assert capsys.readouterr().err == ""                  # --quiet: not a word


def test_terminal_view_bar_status_table_eta_and_unwrapped_paths(data, tmp_path, capsys):
    deep = tmp_path / ("a_rather_long_folder_name_" * 3) / "runs"        # the log line's path is > 80 columns
    run = run_train(TrainConfig(src=str(data), out=str(deep), name="view", epochs=2, **TINY))
    err = capsys.readouterr().err
    assert re.search(r"epoch 2/2 .*loss \d\.\d{4}\s+lr \d\.\d\de-\d\d\s+run ETA \d+:\d\d", err)
    assert re.search(r"epoch\s+trn loss\s+trn acc\s+val loss\s+val acc\s+macro-F1\s+lr\s+sec\s+best", err)
    assert f"outputs in {run}" in err                                   # one line: not cut at 80 columns
    assert "[" not in err.split("training test_resnet")[1].split("\n")[0]   # no list repr in the start line


def test_run_eta_counts_this_fold_and_the_later_ones(monkeypatch):
    from imgcls.train import loop
    now = [100.0]
    monkeypatch.setattr(loop.time, "monotonic", lambda: now[0])
    eta = loop.RunEta(2, later_epochs=4)         # 2 epochs left in this fold, 2 more folds of 2 epochs
    eta.start_epoch(10)
    for _ in range(5):
        now[0] += 1.0
        eta.step()
    assert eta.seconds() == pytest.approx(55.0) and eta.text() == "0:55"    # 1 s a step, 55 steps to go
    eta.start_epoch(10)
    assert eta.seconds() == pytest.approx(50.0)                             # 5 epochs x 10 steps left


def test_tensorboard_hparams_show_boolean_options_as_true_false(tmp_path):
    """TensorBoard's HParams tab showed --pretrained / --ema / --amp as 1 / 0: torch's hparams() tests for a number
    before a bool. They are now the strings true / false there; numbers stay numbers."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from torch.utils.tensorboard import SummaryWriter

    from imgcls.track.tb_tracker import write_hparams
    with SummaryWriter(log_dir=str(tmp_path)) as w:
        write_hparams(w, {"pretrained": True, "ema": False, "epochs": 3, "lr": 0.01, "model": "m", "amp": None},
                      {"hparam/best_val_macro_f1": 0.5}, 1)
    acc = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hp = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hp["pretrained"].string_value == "true" and hp["ema"].string_value == "false"
    assert not hp["pretrained"].HasField("number_value")
    assert hp["epochs"].number_value == 3 and hp["lr"].number_value == 0.01 and hp["model"].string_value == "m"


def test_tracker_params_show_boolean_options_as_config_yaml_does():
    """MLflow logged a boolean option as str(v), 'True' / 'False', while config.yaml says true / false (and
    TensorBoard's hparams true / false). text_params, which both use, gives bools as true / false (in lists too);
    numbers stay numbers, None is ''."""
    from imgcls.track.common import flat_params, text_params
    cfg = {"pretrained": True, "ema": False, "epochs": 3, "lr": 0.01, "model": "m", "amp": None,
           "tracker": ["mlflow", "tensorboard"], "flags": [True, False]}
    assert text_params(cfg) == {"pretrained": "true", "ema": "false", "epochs": 3, "lr": 0.01, "model": "m",
                                "amp": "", "tracker": "mlflow,tensorboard", "flags": "true,false"}
    assert flat_params(cfg)["pretrained"] is True       # W&B's config keeps real bools


def test_mlflow_run_dir_tag_is_the_resolved_folder(out, single, monkeypatch):
    """The MLflow tag imgcls.run_dir held the run (and k-fold set) folder as typed (outputs/runs/x), which names
    nothing from another working folder; it is now the resolved path. (The module's store, by a relative --out.)"""
    from mlflow.tracking import MlflowClient

    from imgcls.track.mlflow_tracker import MLflowTracker
    monkeypatch.chdir(out.parent)
    ml = MLflowTracker(out=out.name)
    kf = Path(out.name) / "reltag"
    ml.on_run_start({"run_dir": kf / "fold_0", "parent_dir": kf, "fold": 0, "config": {}, "model": "m"})
    client = MlflowClient(ml.uri)
    run_tag = client.get_run(ml.run_id).data.tags["imgcls.run_dir"]
    set_tag = client.get_run(ml.parent_id).data.tags["imgcls.run_dir"]
    ml.on_run_abort(KeyboardInterrupt())
    assert run_tag == str(out.resolve() / "reltag" / "fold_0") and set_tag == str(out.resolve() / "reltag")


def test_trackers_log_the_device_the_run_trained_on(single, out):
    """MLflow and TensorBoard logged only --device as typed (auto); the config they log now holds device_used, the
    device the run trained on (here cpu)."""
    import mlflow
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2
    run, _ = single
    mlflow.set_tracking_uri(f"sqlite:///{out.resolve() / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["imgcls"])
    assert runs[runs["tags.mlflow.runName"] == "single"].iloc[0]["params.device_used"] == "cpu"
    acc = EventAccumulator(str(run), size_guidance={"tensors": 0})
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hp = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hp["device_used"].string_value == "cpu"


DEAD_SERVER = "http://127.0.0.1:9"      # the discard port: nothing listens, the connection is refused at once


def dead_server_tries(monkeypatch) -> list:
    """The connections this process tries to DEAD_SERVER from now on, refused by the system as before: a test
    counts MLflow's retries (each after a growing wait: about 4 minutes in all) instead of bounding wall seconds,
    which a loaded machine stretches."""
    import socket
    tried, connect = [], socket.socket.connect

    def counted(self, address):
        if address[:2] == ("127.0.0.1", 9):
            tried.append(address)
        return connect(self, address)
    monkeypatch.setattr(socket.socket, "connect", counted)
    return tried


def test_an_mlflow_server_that_does_not_answer_is_one_line_before_any_data_is_read(tmp_path, monkeypatch):
    """--tracking-uri naming a server that is not there: MLflow retried its first call for about 4 minutes
    (MLFLOW_HTTP_REQUEST_MAX_RETRIES with backoff) after the data was read and the model built, then train failed
    with its traceback. Now one quick request before anything is read: one line naming the address and the fix."""
    from imgcls.errors import UserError
    (tmp_path / "data").mkdir()          # there, but never read
    tried = dead_server_tries(monkeypatch)
    with pytest.raises(UserError, match=r"--tracking-uri http://127.0.0.1:9: no MLflow server answers there "
                                        r"\(Connection refused\); start it .*leave --tracking-uri out") as e:
        run_train(TrainConfig(src=str(tmp_path / "data"), out=str(tmp_path / "runs"), tracker=["mlflow"],
                              tracking_uri=DEAD_SERVER, **TINY))
    # the local store this run's --out holds, not a placeholder (tune's is its study folder's: tests/test_tune.py)
    assert str(e.value).endswith(f"the local store sqlite:///{(tmp_path / 'runs').resolve() / 'mlflow.db'}"), e.value
    assert len(tried) == 1 and not (tmp_path / "runs").exists()     # MLflow alone: 8 tries, over ~4 min


@pytest.mark.parametrize("how", ["flag", "folder", "env"])
def test_an_mlflow_folder_store_mlflow_refuses_is_one_line_before_any_data_is_read(tmp_path, monkeypatch, how):
    """--tracking-uri file:///.../mlruns (or a bare folder, or MLFLOW_TRACKING_URI naming one): MLflow 3.x refuses
    its file store unless MLFLOW_ALLOW_FILE_STORE=true, and train found out only at the first fold's start, after
    the data was read: a warning cut mid-sentence, before MLflow's own fix, and the whole k-fold set trained with
    nothing logged. Now one line naming the store and the fixes, before anything is read."""
    from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    from imgcls.errors import UserError
    monkeypatch.delenv(MLFLOW_ALLOW_FILE_STORE.name, raising=False)
    (tmp_path / "data").mkdir()          # there, but never read
    store = tmp_path / "mlruns"
    uri = {"flag": store.as_uri(), "folder": str(store), "env": store.as_uri()}[how]
    if how == "env":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    where = f"MLFLOW_TRACKING_URI={uri}" if how == "env" else f"--tracking-uri {uri}"
    cfg = TrainConfig(src=str(tmp_path / "data"), out=str(tmp_path / "runs"), tracker=["mlflow"],
                      tracking_uri=None if how == "env" else uri, **TINY)
    with pytest.raises(UserError, match=re.escape(where) + r": this MLflow .* refuses a folder \(file\) store.*"
                                        r"sqlite:///.*mlflow\.db.*MLFLOW_ALLOW_FILE_STORE=true"):
        run_train(cfg)
    assert not (tmp_path / "runs").exists() and not store.exists()
    monkeypatch.setenv(MLFLOW_ALLOW_FILE_STORE.name, "true")        # MLflow's own opt-out: the store is taken
    from imgcls.track import check_trackers
    assert check_trackers(["mlflow"], None if how == "env" else uri) == ["mlflow"]


def test_an_mlflow_store_failing_mid_run_is_said_once_and_the_run_goes_on(data, tmp_path, capsys, monkeypatch,
                                                                          mlflow_store):
    """The store failing after the run started (a server gone mid-run) stopped the training with MLflow's traceback,
    and each call had waited minutes of retries first. Now the first failure is one warning and the tracker logs
    nothing more: the run finishes, the store asked once. A run of a group (tune's trial) whose server is gone
    before it starts is not refused: its tracker asks once, quickly, and the trial trains without it."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient
    calls = []

    def gone(self, *a, **kw):
        calls.append(a)
        raise MlflowException("API request to http://mlflow:5000/api/2.0/mlflow/runs/log-batch failed with exception "
                              "HTTPConnectionPool: Max retries exceeded (NewConnectionError: [Errno 111] Connection "
                              "refused)")
    monkeypatch.setattr(MlflowClient, "log_batch", gone)
    mlflow_store(tmp_path)
    capsys.readouterr()
    run = run_train(TrainConfig(src=str(data), out=str(tmp_path), name="r", epochs=2, tracker=["mlflow"], **TINY))
    err = " ".join(capsys.readouterr().err.split())
    assert (run / "best.pt").is_file() and len(pd.read_csv(run / "metrics.csv")) == 2
    assert len(calls) == 1, calls            # the params' batch at the start; no epoch's batch after it
    said = "warning: mlflow: sqlite:///"
    assert err.count(said) == 1 and "failed (Connection refused); the run goes on without MLflow" in err, err
    assert "mlflow: runs in" not in err      # no closing line pointing at a store that missed the run

    monkeypatch.undo()
    tried = dead_server_tries(monkeypatch)
    run = run_train(TrainConfig(src=str(data), out=str(tmp_path), name="t0", epochs=1, tracker=["mlflow"],
                                tracking_uri=DEAD_SERVER, **TINY), track_group="study")
    err = " ".join(capsys.readouterr().err.split())
    assert (run / "best.pt").is_file() and len(tried) == 1, tried        # asked once (MLflow alone: 8 tries)
    assert err.count(f"warning: mlflow: {DEAD_SERVER} failed (no MLflow server answers (Connection refused))") == 1


def test_mlflow_tracking_uri_in_the_environment_is_the_store_without_the_flag(data, tmp_path, capsys, monkeypatch,
                                                                             mlflow_store):
    """MLFLOW_TRACKING_URI alone was ignored: without --tracking-uri every run went to sqlite:///<--out>/mlflow.db
    without a word. The variable is now the store where the flag is not given (the flag wins), checked as the flag
    is (a server that does not answer: one line naming the variable), and the closing line names it."""
    from mlflow.tracking import MlflowClient

    from imgcls.errors import UserError
    env_uri = f"sqlite:///{mlflow_store(tmp_path / 'env').resolve()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_uri)
    capsys.readouterr()
    run_train(TrainConfig(src=str(data), out=str(tmp_path / "runs"), name="e", epochs=1, tracker=["mlflow"], **TINY))
    err = " ".join(capsys.readouterr().err.split())
    client = MlflowClient(env_uri)
    found = client.search_runs([client.get_experiment_by_name("imgcls").experiment_id], "attributes.run_name = 'e'")
    assert len(found) == 1 and found[0].info.status == "FINISHED"
    assert not (tmp_path / "runs" / "mlflow.db").exists()
    assert f"mlflow: runs in {env_uri} (MLFLOW_TRACKING_URI)" in err, err

    flag_uri = f"sqlite:///{(tmp_path / 'flag.db').resolve()}"     # the flag wins over the variable
    from imgcls.track import make_trackers
    (ml,) = make_trackers(["mlflow"], TrainConfig(out=str(tmp_path / "runs"), tracker=["mlflow"],
                                                  tracking_uri=flag_uri))
    assert ml.uri == flag_uri and not ml.from_env

    monkeypatch.setenv("MLFLOW_TRACKING_URI", DEAD_SERVER)
    (tmp_path / "nothing").mkdir()         # there, but never read
    with pytest.raises(UserError, match=r"MLFLOW_TRACKING_URI=http://127.0.0.1:9: no MLflow server answers there "
                                        r"\(Connection refused\); .*unset MLFLOW_TRACKING_URI"):
        run_train(TrainConfig(src=str(tmp_path / "nothing"), out=str(tmp_path / "runs2"), tracker=["mlflow"], **TINY))
    assert not (tmp_path / "runs2").exists()


@pytest.mark.timeout(400)
def test_an_mlflow_server_gone_mid_run_fails_fast_and_names_the_run_it_leaves_running(tmp_path, capsys, monkeypatch):
    """A server that answered when the run started and is gone since: the first failing call waited MLflow's own
    retries (7, with growing waits: about 4 minutes) before its one warning, and the MLflow run stayed RUNNING
    without a word. The tracker's calls now retry once at once (FAST_FAIL, set for its calls only and restored; a
    value the user set is theirs), and the warning names the run left RUNNING and how to end it. The connections
    tried are counted, not the seconds (dead_server_tries)."""
    import os

    from mlflow.tracking import MlflowClient

    from imgcls.track import mlflow_tracker as mt
    tried = dead_server_tries(monkeypatch)
    ml = mt.MLflowTracker(uri=DEAD_SERVER, out=tmp_path)
    # as on_run_start left it while the server answered
    ml.client, ml.exp_id, ml.run_id = MlflowClient(DEAD_SERVER), "1", ml._opened("0123abcd")
    capsys.readouterr()
    ml.on_epoch_end(1, {"val_macro_f1": 0.5, "per_class_f1": {"a": 0.5}})
    ml.on_epoch_end(2, {"val_macro_f1": 0.5})                    # nothing more is tried
    err = " ".join(capsys.readouterr().err.split())
    assert len(tried) == 2, tried                                # the call and its one retry
    assert err.count("warning: mlflow:") == 1, err
    assert (f"warning: mlflow: {DEAD_SERVER} failed (Connection refused); the run goes on without MLflow" in err
            and "its MLflow run 0123abcd stays RUNNING there" in err
            and f"MlflowClient('{DEAD_SERVER}').set_terminated('0123abcd', 'FAILED')" in err), err
    assert not any(k in os.environ for k in mt.FAST_FAIL)        # set for the tracker's calls only
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    with mt._store_call():
        assert (os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"], os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"]) == ("3", "30")
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3" and "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ



def test_an_artifact_upload_keeps_mlflow_s_own_timeout_and_the_tracker_s_other_calls_fail_fast(tmp_path, monkeypatch):
    """FAST_FAIL's 30 s request timeout, set for the tracker's calls, applied to its artifact uploads too: a
    --track-checkpoint of hundreds of MB sent over a slow link to a remote server failed at 30 s. The uploads
    (log_artifact) now see MLflow's own timeout (the variable unset, or the user's value), their retries still
    FAST_FAIL's; the metric and end-of-run calls keep the 30 s."""
    import os

    from imgcls.track import mlflow_tracker as mt
    seen = []

    class Client:
        def __getattr__(self, name):
            return lambda *a, **k: seen.append((name, os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT"),
                                                os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for f in ("config.yaml", "best.pt"):
        (run_dir / f).write_text("x")
    summary = {"run_dir": str(run_dir), "best_macro_f1": 0.5, "best_epoch": 1}
    for user in (None, "600"):
        if user:
            monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", user)
        seen.clear()
        ml = mt.MLflowTracker(uri="http://127.0.0.1:9", out=tmp_path, log_checkpoint=True)
        ml.client, ml.exp_id, ml.run_id = Client(), "1", ml._opened("0123abcd")
        ml.on_run_end(summary)
        assert ml.failed is None
        assert [c[0] for c in seen] == ["log_metric", "log_metric", "log_artifact", "log_artifact", "set_terminated"]
        assert seen[2:4] == [("log_artifact", user, "1")] * 2, seen             # config.yaml, best.pt
        assert {c[1] for c in seen if c[0] != "log_artifact"} == {user or "30"}, seen
        assert os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") == user             # restored


def test_the_runs_left_running_are_advised_the_status_the_tracker_would_give_them(tmp_path):
    """The store failing during a tune trial leaves the study's run (the group) and the trial's run RUNNING; the
    warning advised ending every one FAILED, where the tracker ends a study's run FINISHED (with each of its trials,
    on_run_end / on_run_abort) and only the unfinished trial FAILED. Each is now advised its own status."""
    from imgcls.track import mlflow_tracker as mt
    ml = mt.MLflowTracker(uri=DEAD_SERVER, out=tmp_path, group="s")
    ml.group_id, ml.run_id = ml._opened("study1"), ml._opened("trial1")
    said = ml._left_running()
    assert "its MLflow runs study1, trial1 stay RUNNING there" in said, said
    assert (f"c = MlflowClient('{DEAD_SERVER}'); c.set_terminated('study1', 'FINISHED'); "
            f"c.set_terminated('trial1', 'FAILED')") in said, said
    lone = mt.MLflowTracker(uri=DEAD_SERVER, out=tmp_path)       # a train run alone: FAILED, as before
    lone.run_id = lone._opened("run1")
    assert f"MlflowClient('{DEAD_SERVER}').set_terminated('run1', 'FAILED')" in lone._left_running()


def test_trackers_name_a_profile_run_s_classes_by_what_they_are(tmp_path, mlflow_store):
    """The per-class F1 the trackers log named a profile run's classes 0..17 only, where its report says
    '4 (wear, female, 30-59)': the callbacks' per_class_f1 now names them as the report does (profiles.class_titles),
    TensorBoard logs that name and MLflow the nearest name it takes (metric_key: brackets, commas and '<' are
    refused, and the whole batch with them)."""
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from conftest import make_profiles
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    mlflow_store(tmp_path / "runs")
    rec = Recorder()
    run = run_train(TrainConfig(src=str(src), out=str(tmp_path / "runs"), name="p", epochs=1, val_split=0.3,
                                tracker=["tensorboard", "mlflow"], **TINY), callbacks=[rec])
    (logs,) = [e[2] for e in rec.events if e[0] == "epoch"]
    assert "4 (wear, female, 30-59)" in logs["per_class_f1"] and len(logs["per_class_f1"]) == 18
    acc = EventAccumulator(str(run))
    acc.Reload()
    assert "val_f1_per_class/0 (wear, male, <30)" in acc.Tags()["scalars"]
    client = MlflowClient(f"sqlite:///{(tmp_path / 'runs').resolve() / 'mlflow.db'}")
    got = client.search_runs([client.get_experiment_by_name("imgcls").experiment_id])[0].data.metrics
    assert {"val_f1_per_class/4 wear female 30-59", "val_f1_per_class/0 wear male lt30",
            "val_f1_per_class/17 not_wear female ge60", "val/macro_f1"} <= set(got), sorted(got)


def test_mlflow_metric_names_of_two_classes_stay_two(tmp_path):
    """metric_key made classes 'a+' and 'a_' one MLflow metric, 'val_f1_per_class/a_' (each epoch logged two values
    under it, and two classes' F1 read as one curve): the keys of the names logged together are unique now, the
    same every epoch whatever the names' order."""
    from imgcls.track import mlflow_tracker as mt

    class Client:
        def __init__(self):
            self.epochs = []

        def log_batch(self, run_id, metrics=()):
            self.epochs.append({m.key: m.value for m in metrics})

    tracker = mt.MLflowTracker(out=tmp_path)
    tracker.client, tracker.run_id = Client(), "r"
    f1 = {"a+": 0.1, "a_": 0.9, "a_2": 0.5, "b (wear, <30)": 0.7}
    tracker.on_epoch_end(1, {"val_macro_f1": 0.55, "per_class_f1": f1})
    tracker.on_epoch_end(2, {"val_macro_f1": 0.55, "per_class_f1": dict(reversed(f1.items()))})
    assert tracker.failed is None
    first, second = tracker.client.epochs
    assert first == second and len(first) == 5, first           # every class its own metric, the same each epoch
    assert first["val_f1_per_class/a_"] == 0.9 and first["val_f1_per_class/a_2"] == 0.5     # spelled so: kept
    assert first["val_f1_per_class/a__2"] == 0.1 and first["val_f1_per_class/b wear lt30"] == 0.7
    assert mt.metric_keys(["x+", "x_", "x__2", "x-"]) == {"x+": "x__3", "x_": "x_", "x__2": "x__2", "x-": "x-"}
    assert mt.metric_keys(["y*", "y+"]) == {"y*": "y_", "y+": "y__2"}      # none spelled so: sorted, the first keeps


class StopAfterFold(Callback):
    """Ctrl-C as fold `fold` ends (its last.pt finished): the set stops before its out-of-fold score."""

    def __init__(self, fold: int):
        self.fold = fold

    def on_run_end(self, summary):
        if summary["fold"] == self.fold:
            raise KeyboardInterrupt


@pytest.mark.timeout(300)
def test_a_resumed_k_fold_set_that_trains_no_fold_gets_its_options_and_score(data, tmp_path, fake_wandb,
                                                                               mlflow_store):
    """A k-fold set stopped after its last fold, before its out-of-fold score: its resumed session trains no fold,
    so the trackers, which took the set's options from a fold's on_run_start, gave its TensorBoard HParams row and
    its W&B run no options, and MLflow, whose set run only a fold reopened, logged no score on it (left KILLED). Now
    the set's options come from its config.yaml (on_train_end's config) and MLflow reopens the set's recorded run."""
    from mlflow.tracking import MlflowClient

    from imgcls.track.wandb_tracker import WandbTracker
    mlflow_store(tmp_path)
    cfg = TrainConfig(src=str(data), out=str(tmp_path), name="k", epochs=1, folds="all",
                      tracker=["tensorboard", "mlflow"], **TINY)
    with pytest.raises(KeyboardInterrupt):
        run_train(cfg, callbacks=[StopAfterFold(1)])
    run = tmp_path / "k"
    assert not (run / "oof_score.json").exists()
    rec = Recorder()
    run_train(TrainConfig.load(run / "config.yaml"), resume=run, callbacks=[rec])
    assert rec.kinds() == ["train_end"]                     # no fold trained in this session
    rows = hparams_rows(tmp_path)
    assert "oof/val_macro_f1" in rows["k"][0]
    assert rows["k"][1]["folds"] == "all" and rows["k"][1]["model"] == TINY["model"], rows["k"]
    client = MlflowClient(f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}")
    sets = client.search_runs([client.get_experiment_by_name("imgcls").experiment_id], "attributes.run_name = 'k'")
    assert len(sets) == 1 and sets[0].info.status == "FINISHED" and "oof/val_macro_f1" in sets[0].data.metrics
    WandbTracker().on_train_end(rec.events[-1][1])          # the resumed session's hooks, wandb faked
    assert fake_wandb[-1].kw["job_type"] == "k-fold" and fake_wandb[-1].kw["config"]["folds"] == "all"


def _connect_at_once(out, barrier, said):
    """A forked process of the test below: its tracker connects when every process is ready; `said` gets the
    experiment id, or the error it failed with. Failing, it breaks the barrier first, so that the others, waiting
    there, fail at once instead of waiting forever."""
    import traceback

    from imgcls.track.mlflow_tracker import MLflowTracker
    try:
        t = MLflowTracker(out=out)
        barrier.wait(timeout=60)
        t._connect()
        Path(said).write_text(f"experiment {t.exp_id}")
    except BaseException:
        barrier.abort()
        Path(said).write_text(traceback.format_exc())
        raise


@pytest.mark.timeout(240)
def test_processes_opening_a_new_mlflow_store_at_once_all_connect(tmp_path, mlflow_store):
    """Two `imgcls tune` processes on one study (or two trains with one --out) and --tracker mlflow opened the new
    sqlite:///OUT/mlflow.db at the same moment: each ran MLflow's table migrations, and they failed on each other
    ('table _alembic_tmp_experiments already exists'), the trial going on without MLflow. A lock beside the
    database makes them take turns, as a tune study's own SQLite file does. Forked, not spawned: the race is three
    processes opening one new store at once, not their start (a spawned Python importing MLflow anew, ~3.5 CPU s
    each, was most of the test's time); mlflow_store's template (a store of its own) loaded MLflow, SQLAlchemy and
    alembic here before the fork."""
    import multiprocessing as mp
    import time
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(3)
    said = [tmp_path / f"said{i}" for i in range(3)]
    # daemons: should the test fail before joining them, multiprocessing's exit does not wait for them (a worker
    # of xdist hung at its exit, and the suite with it)
    procs = [ctx.Process(target=_connect_at_once, args=(tmp_path / "out", barrier, s), daemon=True) for s in said]
    for p in procs:
        p.start()
    deadline = time.monotonic() + 200              # for all three together
    for p in procs:
        p.join(max(0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():               # hung: ended here, the test fails on its exit code
            p.kill()
            p.join()
    said = [s.read_text() if s.exists() else "" for s in said]
    assert all(p.exitcode == 0 for p in procs), said
    assert len(set(said)) == 1 and said[0].startswith("experiment "), said      # one experiment, shared


def test_tune_says_its_trials_wandb_offline_folders_in_one_line(data, tmp_path, fake_wandb, capsys):
    """tune --tracker wandb, offline: each trial's train said `wandb (offline): 1 folder(s) in STUDY/trial_NNNN;
    upload them with: wandb sync ...` (30 trials, 30 lines). The study says one line at its end, whose `wandb sync`
    names every trial's folders; a plain train still says its own (test_wandb_goes_on_in_the_same_run_...).
    (wandb itself is faked.)"""
    import glob
    import importlib.machinery
    import sys

    from imgcls.console import sh
    from imgcls.tune import TuneConfig, run_tune
    sys.modules["wandb"].__spec__ = importlib.machinery.ModuleSpec("wandb", None)    # installed, for --tracker
    space = tmp_path / "space.yaml"
    space.write_text("lr: {log_uniform: [1.0e-3, 1.0e-2]}\n")
    capsys.readouterr()
    study = run_tune(TuneConfig(train=TrainConfig(src=str(data), epochs=1, tracker=["wandb"], **TINY),
                                study="s", space=str(space), out=str(tmp_path / "tune"), pruner="none", trials=3))
    err = capsys.readouterr().err
    assert err.count("wandb (offline):") == 1, err
    line = next(x for x in err.splitlines() if x.startswith("wandb (offline):"))
    assert line == f"wandb (offline): 3 folders in {study}'s trials; upload them with: wandb sync " \
                   f"{sh(study)}/trial_*/wandb/offline-run-*", err
    assert len(glob.glob(f"{study}/trial_*/wandb/offline-run-*")) == 3 == len(fake_wandb)


def test_a_tune_study_s_wandb_sync_leaves_out_a_stray_fold_folder(tmp_path, capsys):
    """tune --tracker wandb, offline, with --folds: the study's folders to sync were globbed as
    trial_*/fold_*/wandb/offline-run-*, so a fold_2 copied into a trial's 2-fold set (another set's: no fold of it,
    rundir.set_fold_dirs) had its offline run counted and uploaded by the `wandb sync` said. Only the set's folds'
    runs are listed, and the sync names those folders where the pattern would take the stray one too."""
    import json
    import shutil

    from imgcls.console import sh
    from imgcls.track.wandb_tracker import offline_runs, say_study_offline
    study = tmp_path / "tune" / "s"
    trial = study / "trial_0000"
    runs = {}
    for d in ("", "fold_0", "fold_1", "fold_2"):
        (trial / d).mkdir(parents=True, exist_ok=True)
        TrainConfig(name="trial_0000", folds="all").save(trial / d / "config.yaml")
        runs[d] = trial / d / "wandb" / f"offline-run-20260101_000000-{d or 'set'}"
        runs[d].mkdir(parents=True)
    (trial / "oof_score.json").write_text(json.dumps({"folds": [0, 1]}))       # the set trained fold_0, fold_1
    assert offline_runs(study) == sorted(runs[d] for d in ("", "fold_0", "fold_1"))
    capsys.readouterr()
    say_study_offline(study, [])
    line = " ".join(capsys.readouterr().err.split())
    assert "wandb (offline): 3 folders in " in line and "fold_2" not in line, line
    assert line.endswith("wandb sync " + " ".join(sh(runs[d]) for d in ("fold_0", "fold_1", ""))), line
    shutil.rmtree(trial / "fold_2")         # no stray folder: the patterns, as before
    say_study_offline(study, [runs[""]])
    line = " ".join(capsys.readouterr().err.split())
    assert line.endswith(f"wandb sync {sh(study)}/trial_*/fold_*/wandb/offline-run-*"), line


def test_a_tune_study_s_wandb_sync_leaves_out_a_copied_trial_folder(tmp_path, capsys):
    """A folder the trial_* glob matches that tune does not name (trial_backup, a user's copy of a trial) held no
    run of the study, yet its offline run was counted and uploaded by the `wandb sync` said: only tune's trial
    folders (outputs.TRIAL_DIR) are read, and the sync names the folders where the pattern would take the copy."""
    from imgcls.console import sh
    from imgcls.track.wandb_tracker import offline_runs, say_study_offline
    study = tmp_path / "tune" / "s"
    runs = {}
    for d in ("trial_0000", "trial_backup"):
        (study / d).mkdir(parents=True)
        TrainConfig(name=d).save(study / d / "config.yaml")
        runs[d] = study / d / "wandb" / "offline-run-20260101_000000-x"
        runs[d].mkdir(parents=True)
    assert offline_runs(study) == [runs["trial_0000"]]
    capsys.readouterr()
    say_study_offline(study, [])
    line = " ".join(capsys.readouterr().err.split())
    assert "wandb (offline): 1 folder in " in line and "trial_backup" not in line, line
    assert line.endswith("wandb sync " + sh(runs["trial_0000"])), line
