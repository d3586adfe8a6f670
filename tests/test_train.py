"""imgcls train: tiny timm models on generated images (fast)."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from conftest import make_image_folder, make_profiles
from imgcls.cli import app
from imgcls.errors import UserError
from imgcls.train import TrainConfig, run_train
from imgcls.train.callbacks import Callback
from imgcls.train.checkpoint import load_model, read_checkpoint
from imgcls.train.rundir import find_checkpoints, finished

# plots=False: no matplotlib figures (~1.3 s a run); the tests of a figure or a report's images set plots=True
TINY = dict(model="test_resnet", img_size=32, batch_size=8, workers=0, device="cpu", pretrained=False, plots=False)


@pytest.fixture
def two_class(tmp_path):
    return make_image_folder(tmp_path / "raw", {"a": 10, "b": 10}, size=(40, 40))


def cfg_for(src, tmp_path, **kw):
    d = dict(TINY, src=str(src), out=str(tmp_path / "runs"), name="run", epochs=2, aug="none", val_split=0.3)
    d.update(kw)
    return TrainConfig(**d)


@pytest.fixture(scope="module")
def adamw_run(tmp_path_factory):
    """(data, run): two_class's images and one finished run on them (adamw, 1 epoch, --val-split 0.2: 16 training
    images, 2 updates), trained once for the tests that only read it and compare their own runs on that data with
    it. A test that writes into the run copies it first."""
    tmp = tmp_path_factory.mktemp("adamw_run")
    src = make_image_folder(tmp / "raw", {"a": 10, "b": 10}, size=(40, 40))
    return src, run_train(cfg_for(src, tmp, name="adamw", epochs=1, val_split=0.2))


def metrics(run):
    return pd.read_csv(run / "metrics.csv")


def test_a_table_whose_kept_images_are_all_gone_says_so_not_check_the_labels(tmp_path):
    """A split table older than a preprocess rerun (--format jpg: the .png files it lists deleted) left train with
    no usable row: the rows clean dropped still read (they point at their input), the kept ones were all 'file not
    found', and train said 'training needs at least 2 classes, column 'label' has 0; check the labels' - labels that
    were fine. The line says that none of the images to train on can be read, and why, exit 2."""
    from imgcls import manifest as mf
    root = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(24, 24))
    df = mf.load(root, scan=True)
    df["keep"] = [False] + [True] * (len(df) - 1)
    table = mf.write(df, tmp_path / "table" / "manifest.csv")
    for p in mf.image_paths(df)[1:]:
        p.unlink()
    r = CliRunner().invoke(app, ["train", str(table), "--model", "resnet18", "--no-pretrained", "--epochs", "1",
                                 "--out", str(tmp_path / "runs"), "-q"])
    text = " ".join(r.output.split())
    assert r.exit_code == 2, r.output
    assert "none of the 5 image(s) to train on can be read" in text and "file not found" in text
    assert "check the labels" not in text and "Traceback" not in text


def test_callbacks_not_given_as_a_list_are_refused_before_the_run_folder_is_made(two_class, tmp_path):
    """run_train(cfg, callbacks=Stop()) (one callback, not a list) made the run folder, decoded every image and
    then failed with "'Stop' object is not iterable", leaving a run `imgcls runs` lists as stopped 0/N under the
    name given; run_tune failed so at its first trial, the study opened. callbacks=[Stop] (the class) failed at the
    first hook. Each is a TypeError naming the list to pass, before any folder is made."""
    from imgcls.train.callbacks import Callback
    from imgcls.tune import TuneConfig, run_tune

    class Stop(Callback):
        pass

    for given, said in ((Stop(), "run_train's callbacks must be a list of Callback objects (got a Stop); pass "
                                 "callbacks=[Stop(...)]"),
                        ([Stop], "run_train's callbacks hold the class Stop, not a Stop object; pass Stop() in "
                                 "the list")):
        with pytest.raises(TypeError, match=re.escape(said)):
            run_train(cfg_for(two_class, tmp_path), callbacks=given)
        tune = TuneConfig(study="s", out=str(tmp_path / "tune"), trials=1,
                          train=TrainConfig(**{**TINY, "src": str(two_class), "epochs": 1}))
        with pytest.raises(TypeError, match=re.escape(said.replace("run_train", "run_tune"))):
            run_tune(tune, callbacks=given)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "tune").exists()
    from imgcls.train.callbacks import check_callbacks
    for fine in (None, [], (Stop(),), (c for c in [Stop()])):     # an iterator too, left unread
        check_callbacks("run_train", fine)
    # the article of the class named ("got a int", "not a EarlyStop object" once)
    class EarlyStop(Callback):
        pass

    # no callback at all: a Callback subclass to write, not "callbacks=[int(...)]"
    with pytest.raises(TypeError, match=re.escape(
            "run_train's callbacks must be a list of Callback objects (got an int); pass callbacks=[MyCallback()], "
            "MyCallback a subclass of imgcls.train.callbacks.Callback defining the hooks it needs (on_run_start, "
            "on_step_end, on_epoch_end, on_run_end, on_train_end, on_run_abort)") + "$"):
        check_callbacks("run_train", 5)
    # the class given bare for an object: 'pass callbacks=[type(...)]' before (reviewer)
    with pytest.raises(TypeError, match=re.escape("run_train's callbacks must be a list of Callback objects (got the "
                                                  "class Stop); pass callbacks=[Stop()]") + "$"):
        check_callbacks("run_train", Stop)

    class Duck:         # a callback not derived from Callback (CallbackList calls its hooks): given bare
        def on_epoch_end(self, epoch, logs):
            pass

    with pytest.raises(TypeError, match=re.escape("(got a Duck); pass callbacks=[Duck(...)]") + "$"):
        check_callbacks("run_train", Duck())
    with pytest.raises(TypeError, match=re.escape("hold the class EarlyStop, not an EarlyStop object; pass")):
        check_callbacks("run_train", [EarlyStop])


def test_a_study_other_than_tunes_config_is_refused_before_the_run_folder_is_made(two_class, tmp_path):
    """run_train(cfg, study="s") (a study's name) or study={...} trained on, and where a data warning named its fix
    failed there, the run folder made and the images read ("fields() must be called with a dataclass type or
    instance"). A TypeError naming what study= takes, before any folder is made; tune's TuneConfig passes."""
    for given, fix in (("s", "leave it out (a study's name is TuneConfig(study=...)'s, run by imgcls.tune.run_tune)"),
                       ({"study": "s"}, "pass TuneConfig(**d)")):
        with pytest.raises(TypeError) as e:
            run_train(cfg_for(two_class, tmp_path, epochs=1), study=given)
        assert str(e.value) == (f"run_train's study must be imgcls.tune's TuneConfig, as run_tune passes it, or None "
                                f"(got a {type(given).__name__}); {fix}")
    assert not (tmp_path / "runs").exists()
    from imgcls.train.run import _check_study
    from imgcls.tune import TuneConfig
    for fine in (None, TuneConfig(study="s")):
        _check_study(fine)


def test_a_stop_after_of_no_whole_number_of_epochs_is_refused_before_the_run_folder_is_made(two_class, tmp_path):
    """run_train(cfg, stop_after=0) (or -1) trained an epoch and 1.5 two, unsaid; '1' was a TypeError once the run
    folder was made and the images decoded. Each is one line naming the keyword, before any folder is made."""
    from imgcls.errors import UserError
    for given in (0, -1, 1.5, "1", True):
        with pytest.raises(UserError) as e:
            run_train(cfg_for(two_class, tmp_path), stop_after=given)
        assert str(e.value) == f"run_train's stop_after must be a whole number >= 1 (got {given!r}), or None"
    assert not (tmp_path / "runs").exists()


def test_a_notebooks_numpy_numbers_train_and_are_recorded_plain(two_class, tmp_path):
    """`for e in np.arange(1, 4): run_train(TrainConfig(..., epochs=e))` and stop_after=np.int64(1) were refused as
    no whole number; lr=np.float64 passed and config.yaml could not be written. Each is the number it is, and the
    caller's cfg is left as given; stop_after=1.0 is still no whole number."""
    cfg = cfg_for(two_class, tmp_path, epochs=np.arange(2, 3)[0], lr=np.float64(0.01), seed=np.int32(3))
    run = run_train(cfg, stop_after=np.int64(1))
    assert len(metrics(run)) == 1 and type(cfg.epochs) is np.int64
    text = (run / "config.yaml").read_text()
    assert "!!" not in text
    rec = TrainConfig.load(run / "config.yaml")
    assert (rec.epochs, rec.lr, rec.seed) == (2, 0.01, 3) and type(rec.epochs) is int and type(rec.lr) is float
    from imgcls.errors import UserError
    for given in (1.0, np.float64(1.0)):
        with pytest.raises(UserError, match=re.escape(f"stop_after must be a whole number >= 1 (got {given!r})")):
            run_train(cfg_for(two_class, tmp_path, name="other"), stop_after=given)


def test_run_dir_contract_and_weights_only(two_class, tmp_path):
    run = run_train(cfg_for(two_class, tmp_path, plots=True))
    for f in ("config.yaml", "metrics.csv", "best.pt", "last.pt", "val_predictions.csv", "confusion_matrix.png",
              "curves.png", "train.log"):
        assert (run / f).is_file(), f
    for f in ("best.pt", "last.pt"):
        obj = torch.load(run / f, map_location="cpu", weights_only=True)
        meta = obj["meta"]
        assert meta["model"] == "test_resnet" and meta["classes"] == ["a", "b"] and meta["decode"] == "single"
        assert meta["heads"] == [{"name": "label", "classes": ["a", "b"]}] and meta["img_size"] == 32
        for k in ("branch", "mean", "std", "interpolation", "resize_mode", "drop_rate"):
            assert k in meta
        from imgcls.io import DECODE_VERSION
        assert meta["decode_version"] == DECODE_VERSION       # the loaders' decoding its images had
    m = metrics(run)
    assert list(m["epoch"]) == [1, 2]
    for c in ("train_loss", "val_loss", "val_acc", "val_macro_precision", "val_macro_recall", "val_macro_f1", "lr", "epoch_seconds"):
        assert c in m.columns
    vp = pd.read_csv(run / "val_predictions.csv", keep_default_na=False)
    assert list(vp.columns[:5]) == ["path", "root", "label", "fold", "pred"]
    assert list(vp.columns[5:]) == ["p_a", "p_b"] and len(vp) == 6
    assert np.allclose(vp[["p_a", "p_b"]].sum(axis=1), 1, atol=1e-5)
    # predict's contract: eval_transform + load_model reproduce the validation probabilities from the files
    from imgcls import io as imgio
    from imgcls.train.data import eval_transform
    lm = load_model(find_checkpoints(run)[0])
    assert lm.classes == ["a", "b"] and not lm.model.training
    x = torch.stack([eval_transform(lm.meta)(imgio.load_rgb(f"{r}/{p}")) for r, p in zip(vp["root"], vp["path"])])
    assert np.allclose(lm.predict_proba(x).numpy(), vp[["p_a", "p_b"]].to_numpy(), atol=1e-4)
    assert torch.allclose(lm.logits(x).softmax(1), lm.predict_proba(x), atol=1e-6)
    # ... from a model in the channels_last inference layout, as the default layout would
    convs = [p for p in lm.model.parameters() if p.dim() == 4 and p.shape[2] * p.shape[3] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in convs)
    plain = copy.deepcopy(lm.model).to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        assert torch.allclose(plain(x).softmax(1), lm.predict_proba(x), atol=1e-5)


def test_amp_on_the_cpu_validates_as_predict_runs(two_class, tmp_path):
    """train --amp on the CPU validated under bf16 autocast while predict runs the model in float32 there (its --amp
    is CUDA's float16): val_predictions.csv, the scores that pick best.pt and ensemble's weights were of other
    numbers than predict gives the same images (lite0, 48 px: 7.1e-2 apart). Validation now runs as predict does."""
    from imgcls import io as imgio
    from imgcls.train.data import eval_transform
    run = run_train(cfg_for(two_class, tmp_path, epochs=1, amp=True))
    vp = pd.read_csv(run / "val_predictions.csv", keep_default_na=False)
    lm = load_model(find_checkpoints(run)[0])
    x = torch.stack([eval_transform(lm.meta)(imgio.load_rgb(f"{r}/{p}")) for r, p in zip(vp["root"], vp["path"])])
    proba = lm.predict_proba(x).numpy()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = lm.predict_proba(x).float().numpy()
    assert np.abs(bf16 - proba).max() > 1e-4       # bf16 gives other numbers here (2e-4): not vacuous
    assert np.allclose(proba, vp[["p_a", "p_b"]].to_numpy(), atol=2e-5)


def test_overfits_twenty_images(two_class, tmp_path):
    run = run_train(cfg_for(two_class, tmp_path, epochs=12, lr=3e-3, val_split=0.2, scheduler="none",
                            weight_decay=0.0))
    m = metrics(run)
    assert m["train_loss"].iloc[-1] < 0.25 * m["train_loss"].iloc[0]
    assert m["train_acc"].iloc[-3:].max() == 1.0


@pytest.mark.parametrize("gpu_aug", ["off", "on"])
def test_resume_equals_uninterrupted(two_class, tmp_path, gpu_aug):
    # --gpu-aug on: batched augmentation on CPU tensors, seeded by (seed, epoch, step): resume replays it too
    kw = dict(epochs=3, aug="medium", mix="cutmix", mix_prob=1.0, ema=True, ema_decay=0.9, drop_rate=0.2,
              scheduler="cosine", warmup_epochs=1, gpu_aug=gpu_aug)
    full = run_train(cfg_for(two_class, tmp_path, name="full", **kw))
    log = (full / "train.log").read_text()
    assert ("--aug medium batched on cpu" in log) == (gpu_aug == "on")
    assert ("--aug medium per image" in log) == (gpu_aug == "off")
    part = run_train(cfg_for(two_class, tmp_path, name="part", plots=True, **kw), stop_after=1)
    assert len(metrics(part)) == 1
    assert (part / "curves.png").is_file() and (part / "confusion_matrix.png").is_file()   # drawn when interrupted
    assert not read_checkpoint(part / "last.pt")["train_state"]["finished"]
    run_train(TrainConfig.load(part / "config.yaml"), resume=part)
    a, b = read_checkpoint(full / "last.pt"), read_checkpoint(part / "last.pt")
    for k in a["raw_state_dict"]:
        assert torch.equal(a["raw_state_dict"][k], b["raw_state_dict"][k]), k
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    cols = [c for c in metrics(full).columns if c != "epoch_seconds"]
    pd.testing.assert_frame_equal(metrics(full)[cols], metrics(part)[cols])


def test_resume_with_another_cache_keeps_the_augmentation_of_the_uninterrupted_run(two_class, tmp_path):
    """--cache may change on --resume (how the data is read), but --gpu-aug auto resolved from it: a run started
    from the cache (batched augmentation on the CPU) and resumed with --cache none augmented its later epochs image
    by image, other random draws, so the resumed run's weights and metrics differed from the uninterrupted run's
    while train.log said only `resumed with cache_used none`. The resolved choice is recorded (gpu_aug_used) and
    kept by a resume."""
    kw = dict(epochs=2, aug="medium", workers=0)
    full = run_train(cfg_for(two_class, tmp_path, name="full", **kw))
    assert TrainConfig.load(full / "config.yaml").gpu_aug_used is True
    part = run_train(cfg_for(two_class, tmp_path, name="part", **kw), stop_after=1)
    run_train(TrainConfig.resolve({"cache": "none"}, config=str(part / "config.yaml")), resume=part)
    assert "--aug medium batched on cpu" in (part / "train.log").read_text().split("resumed")[-1]
    a, b = read_checkpoint(full / "last.pt"), read_checkpoint(part / "last.pt")
    for k in a["raw_state_dict"]:
        assert torch.equal(a["raw_state_dict"][k], b["raw_state_dict"][k]), k
    cols = [c for c in metrics(full).columns if c != "epoch_seconds"]
    pd.testing.assert_frame_equal(metrics(full)[cols], metrics(part)[cols])
    assert TrainConfig.load(part / "config.yaml").gpu_aug_used is True


def test_no_plots_draws_no_figure_the_report_says_so_and_readers_need_none(two_class, tmp_path):
    """train --no-plots (tune's trials, a k-fold set nobody looks at figure by figure): no curves.png, no confusion
    matrices, report.html still written with one line saying figures were not drawn; a resume may turn them off
    (not an option of what the run learns), and the earlier session's figures go; predict and `imgcls runs` /
    `runs report` read the run without them (ensemble and export read no figure: only its checkpoints, config.yaml
    and val_predictions.csv)."""
    import html

    from imgcls.train.report import NO_PLOTS, figure_names
    part = run_train(cfg_for(two_class, tmp_path, name="part", epochs=2, plots=True), stop_after=1)
    assert all((part / f).is_file() for f in figure_names())        # the default draws them
    r = _reuse(part, "--resume", "--no-plots")
    assert r.exit_code == 0, r.output
    assert len(metrics(part)) == 2 and not [f for f in figure_names() if (part / f).exists()]
    assert TrainConfig.load(part / "config.yaml").plots is False     # config.yaml records this session's
    assert "plots False (the earlier session: plots True)" in (part / "train.log").read_text()
    page = html.unescape((part / "report.html").read_text())
    assert NO_PLOTS in page and "training curves" not in page and "confusion_matrix" not in page
    assert "Confusion matrices" not in page and "Worst-predicted validation images" in page
    for args in (["runs", str(tmp_path / "runs")], ["runs", "report", str(tmp_path / "runs")],
                 ["predict", str(part), "--data", str(two_class), "--out", str(tmp_path / "pred"), "--workers", "0"]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, (args, r.output)


def test_plots_are_drawn_after_the_last_epoch_and_at_most_once_a_minute(two_class, tmp_path, monkeypatch):
    from imgcls.train import loop
    calls = []
    real = loop.curves_png
    monkeypatch.setattr(loop, "curves_png", lambda h, p, *a: (calls.append(len(h)), real(h, p, *a)))
    run_train(cfg_for(two_class, tmp_path, name="quick", epochs=3, plots=True))
    assert calls == [3]                               # short epochs: one drawing, with every epoch in it
    monkeypatch.setattr(loop, "PLOT_EVERY_S", 0.0)
    calls.clear()
    run_train(cfg_for(two_class, tmp_path, name="slow", epochs=3, plots=True))
    assert calls == [1, 2, 3]
    from imgcls import metrics as mx
    confusions = []
    monkeypatch.setattr(mx, "confusion_pngs", lambda *a, **k: confusions.append(a))
    calls.clear()
    run_train(cfg_for(two_class, tmp_path, name="none", epochs=2))      # --no-plots: nothing drawn, every epoch
    assert calls == [] and confusions == []


def test_multi_branch_decode(tmp_path):
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    for branch in ("shallow", "deep"):
        run = run_train(cfg_for(src, tmp_path, name=branch, heads="multi", branch=branch, epochs=1,
                                head_weights=[1.0, 2.0, 1.0]))
        lm = load_model(find_checkpoints(run)[0])
        assert lm.meta.decode == "profile" and lm.classes == [str(i) for i in range(18)]
        assert lm.meta.head_names == ["mask", "gender", "age_band"]
        x = torch.randn(4, 3, 32, 32)
        p = lm.predict_proba(x)
        assert p.shape == (4, 18) and torch.allclose(p.sum(1), torch.ones(4), atol=1e-5)
        pm, pg, pa = [o.softmax(1) for o in lm.model(x)]
        for m_ in range(3):
            for g in range(2):
                for a in range(3):
                    assert torch.allclose(p[:, m_ * 6 + g * 3 + a], pm[:, m_] * pg[:, g] * pa[:, a], atol=1e-6)
        assert torch.allclose(lm.logits(x).exp(), p, atol=1e-5)
        m = metrics(run)
        for h in ("mask", "gender", "age_band"):
            assert f"val_{h}_macro_f1" in m.columns and f"val_{h}_acc" in m.columns
        vp = pd.read_csv(run / "val_predictions.csv")
        assert [c for c in vp.columns if c.startswith("p_")] == [f"p_{i}" for i in range(18)]
    deep = read_checkpoint(tmp_path / "runs" / "deep" / "best.pt")["state_dict"]
    shallow = read_checkpoint(tmp_path / "runs" / "shallow" / "best.pt")["state_dict"]
    assert len([k for k in deep if k.startswith("heads.")]) > len([k for k in shallow if k.startswith("heads.")])


def test_resume_needs_no_starting_weights_once_last_pt_holds_them(two_class, tmp_path):
    """--resume of a run started from --weights FILE (or the hub, or --init-from RUN) whose source is gone since (the
    file moved, offline now): last.pt holds every weight, so the run goes on instead of refusing with `weight file
    ... does not exist; check --weights`, an option --resume does not let one change."""
    from imgcls.weights import create_model
    start = tmp_path / "start" / "w.pth"
    start.parent.mkdir()
    torch.save(create_model("test_resnet", num_classes=2).state_dict(), start)
    part = run_train(cfg_for(two_class, tmp_path, weights=str(start), pretrained=True), stop_after=1)
    start.unlink()
    run_train(TrainConfig.load(part / "config.yaml"), resume=part)
    assert list(metrics(part)["epoch"]) == [1, 2] and read_checkpoint(part / "last.pt")["train_state"]["finished"]
    assert TrainConfig.load(part / "config.yaml").weights_source == f"file {start}"     # the record is kept


class _RefuseAtStart(Callback):
    """A callback whose refusal stops a run before its first epoch trains (images broken since the scan)."""

    def on_run_start(self, info):
        raise UserError("the images broke since the scan")


def _listed(root, *keys):
    """`imgcls runs ROOT --json -`'s rows: each row's value of the one key, or a tuple of the keys' values."""
    rows = json.loads(CliRunner().invoke(app, ["runs", str(root), "--json", "-"]).stdout)
    return [x[keys[0]] if len(keys) == 1 else tuple(x[k] for k in keys) for x in rows]


def test_a_resume_of_a_run_whose_last_pt_is_gone_is_refused_not_trained_over_from_epoch_1(tmp_path, monkeypatch):
    """`train --resume` of a run whose last.pt was deleted (by hand, or tune --keep with a trial's checkpoints) but
    whose metrics.csv records its epochs trained it from epoch 1 again, over its metrics.csv and best.pt, without a
    word. One line, exit 2, nothing read or written, naming what is gone and the way on: a new run from its best.pt
    or again under another name; a tune trial's retrain; a k-fold set per fold, trained again as a new set. A run
    whose only epoch's last.pt was never written (stopped as it was written: no last_state.json) trains from the
    start, as one stopped before it."""
    import imgcls.train.data as tdata
    from conftest import tree_snapshot
    from imgcls import manifest as mf
    from imgcls.errors import UserError
    from test_cli import one_error_line
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32))
    run = run_train(cfg_for(src, tmp_path, epochs=3), stop_after=2)
    # stopped: a finished trial's resume says 'already finished' (test_a_resume_of_a_finished_run_whose_last_pt_...)
    trial = run_train(cfg_for(src, tmp_path, epochs=2, out=str(tmp_path / "tune" / "P"), name="trial_0002"),
                      stop_after=1)
    (trial.parent / "trials.csv").write_text("trial,checkpoints\n2,removed (--keep best-1)\n")
    one = run_train(cfg_for(src, tmp_path, name="one", epochs=2), stop_after=1)
    df = mf.load(src)
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    # its folds stopped at 1/2 (a finished fold's resume reads it back: test_a_resume_of_a_k_fold_set_whose_...)
    kf = run_train(TrainConfig(**{**TINY, "src": str(tmp_path / "splits.csv"), "out": str(tmp_path / "kfruns"),
                                  "name": "kf", "epochs": 2, "folds": "all", "aug": "none"}), stop_after=1)
    for r in (run, trial, one, kf / "fold_0"):
        (r / "last.pt").unlink()
    (trial / "best.pt").unlink()
    before = tree_snapshot(tmp_path)
    monkeypatch.setattr(tdata, "plan_cache", lambda *a, **k: pytest.fail("the images were decoded before the check"))
    line = one_error_line(CliRunner().invoke(app, ["train", "--resume", str(run)]))
    assert line.startswith(f"error: --resume {run}: its last.pt is gone, though its metrics.csv records 2 epochs: "
                           f"deleted since? "), line
    assert f"start a new run from its best.pt: imgcls train {src} --init-from {run} (Python: " in line, line
    assert f"or train it again under another name: imgcls train --config {run / 'config.yaml'} --name run-2" in line
    with pytest.raises(UserError, match=re.escape(f"--resume {run}: its last.pt is gone")):
        run_train(TrainConfig(), resume=run)
    (run / "last_state.json").unlink()                  # deleted with last.pt: its metrics.csv's 2 epochs tell
    assert "its last.pt is gone, though its metrics.csv records 2 epochs" in one_error_line(
        CliRunner().invoke(app, ["train", "--resume", str(run)]))
    line = one_error_line(CliRunner().invoke(app, ["train", "--resume", str(trial)]))
    assert line.startswith(f"error: --resume {trial}: its last.pt is gone, though its metrics.csv records 1 epoch: "
                           f"imgcls tune deleted this trial's checkpoints"), line
    assert "--init-from" not in line                    # no best.pt to start from
    line = one_error_line(CliRunner().invoke(app, ["train", "--resume", str(one)]))
    assert "its last.pt is gone, though its metrics.csv records 1 epoch" in line, line
    line = one_error_line(CliRunner().invoke(app, ["train", "--resume", str(kf)]))
    assert line.startswith(f"error: --resume {kf}: the last.pt of fold_0 is gone, though fold_0/metrics.csv records "
                           f"1 epoch: deleted since? "), line
    assert f"train the set again as a new k-fold set (no fold is trained alone): imgcls train --config " \
           f"{kf / 'config.yaml'} --name kf-2" in line, line
    assert tree_snapshot(tmp_path) == {k: v for k, v in before.items() if k != "runs/run/last_state.json"}
    monkeypatch.undo()
    (one / "last_state.json").unlink()                  # its only epoch's last.pt never written: nothing to go on from
    run_train(TrainConfig(), resume=one)
    assert list(metrics(one)["epoch"]) == [1, 2] and finished(one)


def _two_fold_set(tmp_path: Path, epochs: int) -> Path:
    """A finished tiny 2-fold set, runs/kf, of 12 images (splits.csv's folds 0 / 1 in turn)."""
    from imgcls import manifest as mf
    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    return run_train(TrainConfig(**{**TINY, "src": str(tmp_path / "splits.csv"), "out": str(tmp_path / "runs"),
                                    "name": "kf", "epochs": epochs, "folds": "all", "aug": "none"}))


def test_a_resume_of_a_finished_k_fold_set_with_a_fold_s_last_pt_gone_says_already_finished(tmp_path):
    """check_last_pt_kept (a resume of a run whose last.pt is gone is refused) came before run_train's own 'already
    finished' answer, so a finished k-fold set one of whose folds' last.pt was deleted, which a resume had answered
    'already finished, nothing to resume' (exit 0), was refused (exit 2: 'train the set again as a new k-fold
    set'). A finished set is answered as before, nothing written, the line naming what tells it: the files there
    (it named every fold's last.pt, the gone ones too)."""
    from conftest import tree_snapshot
    kf = _two_fold_set(tmp_path, epochs=1)
    (kf / "fold_0" / "last.pt").unlink()
    before = tree_snapshot(tmp_path)
    r = CliRunner().invoke(app, ["train", "--resume", str(kf)])
    assert r.exit_code == 0, r.output
    # what tells it: the files there (it said "its folds' last.pt files and its oof_score.json", those gone too)
    assert ("kf: already finished, nothing to resume (its oof_score.json and the last.pt of fold_1 say so, that of "
            "fold_0 is gone)") in " ".join(r.output.split()), r.output
    assert tree_snapshot(tmp_path) == before
    (kf / "fold_1" / "last.pt").unlink()        # every fold's (tune --keep): its oof_score.json says it finished
    before = tree_snapshot(tmp_path)
    r = CliRunner().invoke(app, ["train", "--resume", str(kf)])
    assert r.exit_code == 0 and ("kf: already finished, nothing to resume (its folds' last.pt files are gone, its "
                                 "oof_score.json says so)") in " ".join(r.output.split()), r.output
    assert tree_snapshot(tmp_path) == before


def test_a_resume_of_a_set_whose_fold_lost_its_val_predictions_is_refused(tmp_path):
    """A k-fold set with oof_score.json and a finished fold's val_predictions.csv deleted: ensemble named its
    --resume, which read both folds 'already finished' and wrote no out-of-fold predictions nor oof_score.json,
    silently (exit 0; the set still read stopped). One line naming the file and the way on, nothing written."""
    from conftest import tree_snapshot
    kf = _two_fold_set(tmp_path, epochs=1)
    (kf / "oof_score.json").unlink()
    (kf / "fold_0" / "val_predictions.csv").unlink()
    before = tree_snapshot(tmp_path)
    r = CliRunner().invoke(app, ["train", "--resume", str(kf)])
    line = " ".join(r.output.split())
    assert r.exit_code == 2 and line.startswith(
        f"error: --resume {kf}: the val_predictions.csv of fold_0 is gone after it validated (deleted since?), and "
        f"train --resume does not write it again, so the set's out-of-fold predictions cannot be written: restore "
        f"what is gone from a backup, or train the set again as a new k-fold set"), r.output
    assert tree_snapshot(tmp_path) == before


def test_a_stop_before_the_run_folder_is_made_says_nothing_was_written(tmp_path, monkeypatch):
    """train stopped before its run folder was made (its checks, the data's scan) said the general 'run the same
    command again to complete it', though the rerun starts a new run; a resume stopped before it began, likewise."""
    from imgcls.train import run as train_run

    def stop(*a, **k):
        raise KeyboardInterrupt

    src = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(32, 32))
    run = run_train(TrainConfig(**{**TINY, "src": str(src), "out": str(tmp_path / "runs"), "name": "r", "epochs": 1,
                                   "val_split": 0.5}), stop_after=1)
    monkeypatch.setattr(train_run, "_check_up_front", stop)
    r = CliRunner().invoke(app, ["train", str(src), "--out", str(tmp_path / "new"), "--no-pretrained"])
    said = " ".join(r.output.split())
    assert r.exit_code == 130 and ("(Ctrl-C); nothing was written (it stopped before its run folder was made); the "
                                   "same command again starts the run") in said, r.output
    assert not (tmp_path / "new").exists()
    r = CliRunner().invoke(app, ["train", "--resume", str(run)])
    said = " ".join(r.output.split())
    assert r.exit_code == 130 and ("nothing of the run was changed (it stopped before the resume began); the same "
                                   "command again resumes it") in said, r.output


def test_finished_said_of_a_set_with_two_folds_last_pt_gone_says_those(tmp_path, monkeypatch):
    """Two or more folds' last.pt gone read 'that of fold_0, fold_2 are gone'."""
    from imgcls.train import rundir
    monkeypatch.setattr(rundir, "records_folds", lambda path: True)
    monkeypatch.setattr(rundir, "folds_gone", lambda run_dir, name: (["fold_0", "fold_1", "fold_2"],
                                                                     ["fold_0", "fold_2"]))
    assert rundir.finished_said(tmp_path) == ("its oof_score.json and the last.pt of fold_1 say so, those of fold_0, "
                                              "fold_2 are gone")


def test_a_resume_of_a_finished_run_whose_last_pt_is_gone_says_already_finished(tmp_path):
    """A finished run whose last.pt was deleted (by hand, tune --keep: its last_state.json kept) was refused by
    `train --resume` (exit 2, 'its last.pt is gone ... nothing to continue'), while with last.pt it is answered
    'already finished, nothing to resume' (exit 0) and `imgcls runs` reads it finished. It is answered so, nothing
    written: by its last_state.json, else its metrics.csv holding every epoch; --epochs more names the way to train
    it longer (its best.pt, else the run again). A stopped one stays refused."""
    from conftest import tree_snapshot
    from imgcls.runs import run_state
    from imgcls.outputs import read_yaml
    from test_cli import one_error_line
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32))
    run = run_train(cfg_for(src, tmp_path, epochs=2))
    (run / "last.pt").unlink()
    assert finished(run) and run_state(run, read_yaml(run / "config.yaml")) == ("", "2/2")
    before = tree_snapshot(tmp_path)
    for said in ("last_state.json", "metrics.csv"):
        r = CliRunner().invoke(app, ["train", "--resume", str(run)])
        assert r.exit_code == 0, r.output
        assert (f"run: already finished, nothing to resume (its last.pt is gone, its {said} says so)"
                in " ".join(r.output.split())), r.output
        assert tree_snapshot(tmp_path) == before
        line = one_error_line(CliRunner().invoke(app, ["train", "--resume", str(run), "--epochs", "4"]))
        assert "the run finished its 2 epochs and is not extended" in line, line
        assert f"start a new run from its weights: imgcls train {src} --init-from {run} --epochs N" in line, line
        (run / "last_state.json").unlink(missing_ok=True)     # deleted too: its metrics.csv's 2/2 epochs tell
        before = tree_snapshot(tmp_path)
    (run / "best.pt").unlink()
    line = one_error_line(CliRunner().invoke(app, ["train", "--resume", str(run), "--epochs", "4"]))
    assert (f"train it again under another name: imgcls train --config {run / 'config.yaml'} --name run-long "
            f"--epochs N") in line, line
    part = run_train(cfg_for(src, tmp_path, name="part", epochs=3), stop_after=2)
    (part / "last.pt").unlink()
    assert not finished(part)
    assert "its last.pt is gone, though its metrics.csv records 2 epochs" in one_error_line(
        CliRunner().invoke(app, ["train", "--resume", str(part)]))


def test_a_run_early_stopped_whose_last_pt_is_gone_reads_finished_by_train_s_rule(two_class, tmp_path):
    """A run that --early-stop ended (fewer epochs in metrics.csv than --epochs), its last.pt and last_state.json
    gone since (deleted by hand, tune --keep), read 'not known' in `imgcls runs` (state blank, '2/4'), and its
    `train --resume` was refused as stopped ('its last.pt is gone ... deleted since?'). Train's own early-stop rule
    (metrics.early_stopped) over its metrics.csv's --metric values tells: it finished ('2/4, early stop'), and the
    resume says 'already finished', nothing written. One cut short before the rule was met stays stopped."""
    from conftest import tree_snapshot
    from test_cli import one_error_line
    # lr 0: no epoch beats the first, --early-stop 1 ends it after epoch 2
    stop = run_train(cfg_for(two_class, tmp_path, name="stop", epochs=4, lr=0.0, scheduler="none", early_stop=1))
    part = run_train(cfg_for(two_class, tmp_path, name="part", epochs=4, lr=0.0, scheduler="none", early_stop=3),
                     stop_after=2)
    assert list(metrics(stop)["epoch"]) == list(metrics(part)["epoch"]) == [1, 2]
    for r in (stop, part):
        (r / "last.pt").unlink()
        (r / "last_state.json").unlink()
    assert sorted(_listed(tmp_path / "runs", "name", "state", "progress")) == [
        ("part", "stopped", "2/4"), ("stop", "", "2/4, early stop")]
    assert finished(stop) and not finished(part)
    before = tree_snapshot(tmp_path)
    r = CliRunner().invoke(app, ["train", "--resume", str(stop)])
    assert r.exit_code == 0, r.output
    assert ("stop: already finished, nothing to resume (its last.pt is gone, its metrics.csv says so)"
            in " ".join(r.output.split())), r.output
    assert tree_snapshot(tmp_path) == before
    line = one_error_line(CliRunner().invoke(app, ["train", "--resume", str(part)]))
    assert f"--resume {part}: its last.pt is gone, though its metrics.csv records 2 epochs" in line, line
    assert tree_snapshot(tmp_path) == before


def test_more_epochs_for_an_early_stopped_run_say_its_early_stop_ended_it(two_class, tmp_path):
    """`train --resume RUN --epochs N` of a run that --early-stop ended at epoch 2 of 4 said 'the run finished its 4
    epochs and is not extended': it says the early stop ended it at epoch 2 of 4 (its --metric not improving for its
    patience), so more --epochs would not train it further, and the way to train longer; its last.pt kept or gone
    (its metrics.csv then tells)."""
    from conftest import tree_snapshot
    from test_cli import one_error_line
    # lr 0: no epoch beats the first, --early-stop 1 ends it after epoch 2
    run = run_train(cfg_for(two_class, tmp_path, epochs=4, lr=0.0, scheduler="none", early_stop=1))
    before = tree_snapshot(tmp_path)
    for _ in range(2):
        line = one_error_line(CliRunner().invoke(app, ["train", "--resume", str(run), "--epochs", "8"]))
        assert (f"--resume {run}: train's early stop ended the run at epoch 2 of 4 (val macro-F1 did not improve "
                f"for 1 epoch, its --early-stop), so more --epochs would not train it further and the run is not "
                f"extended; to train longer start a new run from its weights: imgcls train {two_class} --init-from "
                f"{run} --epochs N") in line, line
        assert "finished its 4 epochs" not in line
        assert tree_snapshot(tmp_path) == before
        (run / "last.pt").unlink(missing_ok=True)
        (run / "last_state.json").unlink(missing_ok=True)
        before = tree_snapshot(tmp_path)
    # a k-fold set: the folds the early stop ended, and a new set with its options typed a longer patience
    from imgcls.train.rundir import not_extended
    kf = tmp_path / "kf"
    for k, n in ((0, 2), (1, 4)):
        (kf / f"fold_{k}").mkdir(parents=True)
        pd.DataFrame({"epoch": range(1, n + 1), "val_macro_f1": 0.5}).to_csv(kf / f"fold_{k}" / "metrics.csv",
                                                                                   index=False)
    (kf / "config.yaml").write_text("epochs: 4\nearly_stop: 1\nfolds: all\n")     # as train writes it
    (kf / "oof_score.json").write_text(json.dumps({"folds": [0, 1]}))
    said = not_extended(kf, 4)
    assert said.startswith("train's early stop ended fold_0 at epoch 2 of 4 (val macro-F1 did not improve for 1 "
                           "epoch, its --early-stop), so more --epochs would not train it further and the set is not "
                           "extended; to train longer start a new k-fold set with its options: "), said
    assert "--name kf-long --epochs N --early-stop P" in said, said
    # a single run whose weights are gone (tune --keep): trained again with its options, its patience typed over
    (kf / "config.yaml").write_text("epochs: 4\nearly_stop: 1\n")
    for k in (0, 1):
        (kf / f"fold_{k}" / "metrics.csv").rename(kf / f"m{k}.csv")
    (kf / "m0.csv").rename(kf / "metrics.csv")
    said = not_extended(kf, 4)
    assert "to train longer train it again under another name: " in said and \
        "--name kf-long --epochs N --early-stop P" in said, said


def test_a_resume_of_a_k_fold_set_whose_oof_score_and_a_fold_s_last_pt_are_gone_writes_the_oof_score(tmp_path):
    """A k-fold set whose folds all finished, its oof_score.json missing and a fold's last.pt deleted: predict said
    'write it with imgcls train --resume KF', which refused it (exit 2, 'the last.pt of fold_0 is gone'). The
    finished fold has nothing to continue: the resume reads its result back (its metrics.csv, val_predictions.csv)
    and writes oof_score.json as before, fold_0 not trained again; the set is then used whole."""
    from imgcls.errors import UserError
    from imgcls.train.rundir import check_kfold_finished
    kf = _two_fold_set(tmp_path, epochs=2)
    score = json.loads((kf / "oof_score.json").read_text())
    (kf / "oof_score.json").unlink()
    (kf / "fold_0" / "last.pt").unlink()
    kept = {f: (kf / "fold_0" / f).read_bytes() for f in ("best.pt", "metrics.csv", "val_predictions.csv")}
    with pytest.raises(UserError, match=re.escape(f"write it with imgcls train --resume {kf}")):
        find_checkpoints(kf)
    r = CliRunner().invoke(app, ["train", "--resume", str(kf)])
    assert r.exit_code == 0, r.output
    assert json.loads((kf / "oof_score.json").read_text()) == score
    assert {f: (kf / "fold_0" / f).read_bytes() for f in kept} == kept        # read back, not trained again
    assert [p.parent.name for p in find_checkpoints(kf)] == ["fold_0", "fold_1"] and finished(kf)
    check_kfold_finished(kf, find_checkpoints(kf), "best.pt")
    # stopped between its folds, the finished fold_0's last.pt gone: read back, fold_1 trained, the set finished
    part = _kfold_set_stopped_after_fold_0(tmp_path / "splits.csv", tmp_path / "part", epochs=2)
    (part / "fold_0" / "last.pt").unlink()
    kept = (part / "fold_0" / "best.pt").read_bytes()
    r = CliRunner().invoke(app, ["train", "--resume", str(part)])
    assert r.exit_code == 0, r.output
    assert (part / "fold_0" / "best.pt").read_bytes() == kept and list(metrics(part / "fold_1")["epoch"]) == [1, 2]
    assert json.loads((part / "oof_score.json").read_text())["folds"] == [0, 1] and finished(part)


def test_a_fold_read_back_builds_no_model(tmp_path, monkeypatch):
    """A resume reads a finished fold whose last.pt is gone back (its metrics.csv, val_predictions.csv), not
    trained; its Trainer still built its starting weights first (the model, a pretrained download or load, its
    optimiser), unused: seconds wasted per fold. A fold read back builds none."""
    import imgcls.train.loop as loop
    kf = _two_fold_set(tmp_path, epochs=1)
    score = json.loads((kf / "oof_score.json").read_text())
    (kf / "oof_score.json").unlink()
    for fold in ("fold_0", "fold_1"):
        (kf / fold / "last.pt").unlink()
    monkeypatch.setattr(loop, "build_model", lambda *a, **k: pytest.fail("a fold read back built a model"))
    r = CliRunner().invoke(app, ["train", "--resume", str(kf)])
    assert r.exit_code == 0 and r.exception is None, r.output
    assert json.loads((kf / "oof_score.json").read_text()) == score


def test_a_finished_fold_whose_last_pt_is_gone_is_read_back_only_whole_and_by_train_s_best_epoch(tmp_path):
    """A resume reads a finished fold whose last.pt is gone back, not trained (its metrics.csv and
    val_predictions.csv). The refusal's filter asked only that it finished, the read-back that its files be there
    too: with its val_predictions.csv gone the fold was trained over from epoch 1 (its best.pt rewritten, exit 0).
    It is refused (rundir.read_back, one rule). And the read-back picked the best epoch by idxmin, a traceback
    (all NA) for a --metric loss fold whose val_loss is NaN every epoch; it picks as train does (best_epoch_of). A
    fold read back keeps its config.yaml (the resume recorded this session's workers in it, as if it trained)."""
    from conftest import tree_snapshot
    from imgcls import manifest as mf
    from test_cli import one_error_line
    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    sets = {}
    for name, metric in (("kf", "macro_f1"), ("kl", "loss")):
        sets[name] = run_train(TrainConfig(**{**TINY, "src": str(tmp_path / "splits.csv"), "epochs": 2,
                                              "out": str(tmp_path / "runs"), "name": name, "folds": "all",
                                              "aug": "none", "metric": metric}))
        (sets[name] / "oof_score.json").unlink()
        (sets[name] / "fold_0" / "last.pt").unlink()
    kf, kl = sets["kf"], sets["kl"]
    (kf / "fold_0" / "val_predictions.csv").unlink()
    before = tree_snapshot(kf)
    line = one_error_line(CliRunner().invoke(app, ["train", "--resume", str(kf)]))
    assert line.startswith(f"error: --resume {kf}: the last.pt of fold_0 is gone"), line
    assert tree_snapshot(kf) == before
    m = pd.read_csv(kl / "fold_0" / "metrics.csv")
    m["val_loss"] = np.nan
    m.to_csv(kl / "fold_0" / "metrics.csv", index=False)
    (kl / "fold_0" / "last_state.json").unlink()        # finished by metrics.csv's every epoch alone
    record = (kl / "fold_0" / "config.yaml").read_text()
    r = CliRunner().invoke(app, ["train", "--resume", str(kl), "--workers", "1"])
    assert r.exit_code == 0 and r.exception is None, r.output
    assert "fold_0: already finished (2 epochs; its last.pt is gone" in " ".join(r.output.split()), r.output
    assert (kl / "oof_score.json").is_file()
    # the fold read back did not train in this session: its config.yaml keeps how it ran (workers_used: 0)
    assert (kl / "fold_0" / "config.yaml").read_text() == record


@pytest.mark.parametrize("name,role", [("val_predictions.csv", "the run's validation predictions"),
                                       ("per_class.csv", "the run's per-class scores")])
def test_a_resume_of_a_run_whose_run_csv_is_malformed_is_one_line(two_class, tmp_path, monkeypatch, name, role):
    """The resumed run reads its val_predictions.csv back (its best epoch's predictions: a k-fold set's out-of-fold
    rows are made of them; train cannot rebuild them without evaluating best.pt again) and its per_class.csv (the
    best epoch's per-class scores, in its summary) with plain pandas: a malformed file (a row with more fields than
    the header) was pandas' ParserError traceback, after the images were decoded (check_resume_data took a malformed
    val_predictions.csv for `unreadable` and left the data unchecked). check_resume_data and Trainer.restore read
    them by rundir.read_run_csv: one line naming the file and the fix (imgcls wrote it: no row of it is the user's
    to mend, "fix that row" was a user's CSV's fix), exit 2, before the images are decoded."""
    import imgcls.train.data as tdata
    import imgcls.train.rundir as rundir
    from imgcls.errors import UserError
    from test_cli import one_error_line
    part = run_train(cfg_for(two_class, tmp_path), stop_after=1)
    bad = part / name
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join([*lines[:2], lines[2] + ",extra", *lines[3:]]) + "\n")
    with monkeypatch.context() as m:
        m.setattr(tdata, "plan_cache", lambda *a, **k: pytest.fail("the images were decoded before the check"))
        r = CliRunner().invoke(app, ["train", "--resume", str(part)])
    line = one_error_line(r)
    fix = "imgcls train wrote it: restore it from a backup, or train the run again"
    assert f"{role} {bad}: line 3 has" in line and line.endswith(f"; {fix}"), line
    assert list(metrics(part)["epoch"]) == [1]
    # the resumed run's own read of it (Trainer.restore), past the check: the same line
    monkeypatch.setattr(rundir, "check_resume_data", lambda *a: None)
    with pytest.raises(UserError, match=re.escape(f"{bad}: line 3 has")):
        run_train(TrainConfig.load(part / "config.yaml"), resume=part)


def test_a_resume_reads_back_no_per_class_csv_of_a_fold_folder_outside_the_set_s_plan(tmp_path):
    """check_resume_data reads the per_class.csv of every fold the resume goes on (Trainer.restore reads it back), a
    malformed one its one line before the images are decoded. It read every fold_<k> folder's: a stopped fold_2
    copied into a 2-fold set (no fold of it: rundir.set_fold_dirs, which the resume never trains) refused the
    resume for its malformed per_class.csv. Only the set's planned folds are read."""
    from imgcls.train.rundir import check_resume_data, record_plan
    kf = tmp_path / "runs" / "kf"
    record = TrainConfig(src=str(tmp_path / "splits.csv"), name="kf", out=str(kf.parent), folds="all")
    for d in (kf, kf / "fold_0", kf / "fold_2"):
        d.mkdir(parents=True, exist_ok=True)
        record.save(d / "config.yaml")
    record_plan(kf, [0, 1], ["a", "b"])
    rows = pd.DataFrame({"path": ["a/1.png", "b/1.png"], "root": str(tmp_path / "data")})
    rows.assign(label=["a", "b"], pred=["a", "a"], p_a=0.6, p_b=0.4).to_csv(kf / "fold_0" / "val_predictions.csv",
                                                                            index=False)
    (kf / "fold_2" / "last.pt").write_bytes(b"")                     # stopped (its LAST_STATE written after it)
    (kf / "fold_2" / "last_state.json").write_text(json.dumps({"epoch": 1, "finished": False}))
    (kf / "fold_2" / "per_class.csv").write_text("class,f1\na,0.5\nb,0.5,extra\n")
    check_resume_data(kf, rows, record.src, record)


class _StopAfterFold0(Exception):
    pass


def _kfold_set_stopped_after_fold_0(splits, out, **kw):
    """A k-fold set whose fold 0 finished and whose fold 1 never started (stopped between the two folds)."""
    from imgcls.train.callbacks import Callback

    class Stop(Callback):
        def on_run_end(self, summary):
            raise _StopAfterFold0

    with pytest.raises(_StopAfterFold0):
        run_train(TrainConfig(**{**TINY, "src": str(splits), "out": str(out), "name": "kf", "epochs": 1,
                                 "folds": "all", "aug": "none", **kw}), callbacks=[Stop()])
    run = out / "kf"
    assert (run / "fold_0" / "last.pt").is_file() and not (run / "fold_1").exists()
    return run


def test_a_resume_of_a_k_fold_set_whose_later_folds_val_predictions_csv_is_malformed_is_one_line_first(
        tmp_path, monkeypatch):
    """check_resume_data stopped reading the validation files at the first that holds the data's images: in a k-fold
    set whose fold_0 files are fine, a later fold's malformed val_predictions.csv (which Trainer.restore reads back
    too) was found only by the restore, after the images were decoded. Every file the resume reads back is read by
    the check (small CSVs): the later fold's is the one line, exit 2, before the images are decoded."""
    import imgcls.train.data as tdata
    from imgcls import manifest as mf
    from test_cli import one_error_line
    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    run = _kfold_set_stopped_after_fold_0(tmp_path / "splits.csv", tmp_path / "runs", epochs=2)
    run_train(TrainConfig(), resume=run, stop_after=1)                 # fold 1 stopped after its first epoch
    assert list(metrics(run / "fold_1")["epoch"]) == [1] and list(metrics(run / "fold_0")["epoch"]) == [1, 2]
    bad = run / "fold_1" / "val_predictions.csv"
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join([*lines[:2], lines[2] + ",extra", *lines[3:]]) + "\n")
    monkeypatch.setattr(tdata, "plan_cache", lambda *a, **k: pytest.fail("the images were decoded before the check"))
    r = CliRunner().invoke(app, ["train", "--resume", str(run)])
    line = one_error_line(r)
    fix = "imgcls train wrote it: restore it from a backup, or train the run again"
    assert f"the run's validation predictions {bad}: line 3 has" in line and line.endswith(f"; {fix}"), line
    assert list(metrics(run / "fold_1")["epoch"]) == [1]


def test_a_resume_of_one_fold_of_a_k_fold_set_is_refused_naming_the_set(tmp_path, monkeypatch):
    """`imgcls train --resume KF/fold_1` (fold_1 stopped at epoch 1 of 2) read the fold's config.yaml, which records
    --folds all, trained a new k-fold set inside the fold (KF/fold_1/fold_0, fold_1, oof_score.json) and exited 0,
    the fold left stopped. A fold folder (`.` from inside it too) is one line, exit 2, nothing written, naming the
    set's resume; run_train is refused the same."""
    import imgcls.train.data as tdata
    from conftest import tree_snapshot
    from imgcls import manifest as mf
    from imgcls.errors import UserError
    from test_cli import one_error_line
    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    run = _kfold_set_stopped_after_fold_0(tmp_path / "splits.csv", tmp_path / "runs", epochs=2)
    run_train(TrainConfig(), resume=run, stop_after=1)                 # fold 1 stopped after its first epoch
    before = tree_snapshot(tmp_path / "runs")
    monkeypatch.setattr(tdata, "plan_cache", lambda *a, **k: pytest.fail("the images were decoded before the check"))
    for fold in ("fold_1", "fold_0"):                                  # stopped, finished
        line = one_error_line(CliRunner().invoke(app, ["train", "--resume", str(run / fold)]))
        assert line == (f"error: --resume {run / fold} is one fold of the k-fold set {run}, which is resumed whole "
                        f"(it trains the folds not finished); resume the set: imgcls train --resume {run} "
                        f"(Python: run_train(TrainConfig(), resume='{run}'))"), line
    with pytest.raises(UserError, match=re.escape(f"one fold of the k-fold set {run},")):
        run_train(TrainConfig(), resume=run / "fold_1")
    monkeypatch.chdir(run / "fold_1")
    assert f"one fold of the k-fold set {run}," in one_error_line(CliRunner().invoke(app, ["train", "--resume", "."]))
    assert tree_snapshot(tmp_path / "runs") == before and not (run / "fold_1" / "fold_0").exists()


def test_a_run_named_fold_0_inside_a_plain_run_s_folder_is_no_fold_of_a_set(tmp_path):
    """fold_set took any fold_<k> folder whose parent holds a config.yaml for a fold of a k-fold set: a run named
    fold_0 trained into a plain run's folder (`--out runs/A --name fold_0`) was refused its --resume as 'one fold of
    the k-fold set runs/A', whose resume never trains it. A fold's parent is a set only where its config.yaml
    records --folds."""
    from imgcls.run_names import fold_set
    from imgcls.train.config import resume_record
    plain, kf = tmp_path / "runs" / "A", tmp_path / "runs" / "KF"
    for parent, folds in ((plain, None), (kf, "all")):
        TrainConfig(name=parent.name, folds=folds).save((parent / "fold_0").mkdir(parents=True) or
                                                        parent / "config.yaml")
        TrainConfig(name="fold_0", folds=folds).save(parent / "fold_0" / "config.yaml")
    assert fold_set(plain / "fold_0") is None and fold_set(kf / "fold_0") == kf
    assert resume_record(plain / "fold_0") == plain / "fold_0" / "config.yaml"


def test_a_resume_of_a_k_fold_set_on_a_table_whose_folds_changed_is_one_line(tmp_path, monkeypatch):
    """`imgcls split --folds 5` run again (another --seed) between a k-fold set's stop and its --resume: the resume
    trained the later folds on the new folds, so the out-of-fold file held some images twice and others never
    (300 rows, 231 images, on fmnist_lt) and those folds trained on images fold 0 had validated. The folds a set
    validated on are its own: another fold for any of them is one line, exit 2, before the images are decoded."""
    import imgcls.train.data as tdata
    from imgcls import manifest as mf
    from test_cli import one_error_line
    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    run = _kfold_set_stopped_after_fold_0(tmp_path / "splits.csv", tmp_path / "runs")
    df["fold"] = (np.arange(len(df)) // 2) % 2               # split again: half of fold 0's images now in fold 1
    mf.write(df, tmp_path / "splits.csv")
    monkeypatch.setattr(tdata, "plan_cache", lambda *a, **k: pytest.fail("the images were decoded before the check"))
    line = one_error_line(CliRunner().invoke(app, ["train", "--resume", str(run)]))
    assert "puts 3 of the 6 images fold_0 validated on in another fold" in line, line
    assert not (run / "fold_1").exists()


def test_a_python_resume_with_a_fresh_config_continues_the_run_as_the_cli_does(tmp_path):
    """run_train(cfg, resume=RUN) needed cfg = TrainConfig.resolve(resume=RUN) first: a fresh TrainConfig()'s defaults
    were taken as given, so a run of another model was refused as changed, and where not the set went on (its next
    fold's config.yaml recording it) with plots=True, the default workers and device over the recorded plots=False,
    workers 0, device cpu. Its options at their defaults are now the recorded ones, as `imgcls train --resume RUN`
    leaves what is not typed: both record the same configs."""
    import shutil
    import yaml
    from imgcls import manifest as mf
    from imgcls.errors import UserError
    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    run = _kfold_set_stopped_after_fold_0(tmp_path / "splits.csv", tmp_path / "runs", lr=3e-3)
    cli = shutil.copytree(run, tmp_path / "runs" / "cli")
    r = CliRunner().invoke(app, ["train", "--resume", str(cli), "-q"])
    assert r.exit_code == 0, r.output
    with pytest.raises(UserError, match=r"--lr 0.003 -> 0.01 cannot change"):     # a set field is given, as a flag
        run_train(TrainConfig(lr=0.01), resume=run)
    assert run_train(TrainConfig(), resume=run) == run
    for record in ("config.yaml", "fold_1/config.yaml"):
        py, typed = (yaml.safe_load((d / record).read_text()) for d in (run, cli))
        assert {**py, "name": None} == {**typed, "name": None}, record
        assert (py["model"], py["plots"], py["workers"], py["device"], py["lr"]) == ("test_resnet", False, 0, "cpu",
                                                                                   3e-3), py
    assert (run / "oof_score.json").is_file() and (cli / "oof_score.json").is_file()


def test_a_resume_reads_the_run_s_config_yaml_once(tmp_path, monkeypatch):
    """`imgcls train --resume RUN` read RUN/config.yaml three times (the CLI's TrainConfig.resolve, run_train's own
    resolve of the options given over it, then the record resume_config compares them with); run_train(cfg,
    resume=RUN) twice. Each reads it once: the CLI leaves the resolve to run_train, which reads the record once."""
    import yaml
    from conftest import make_tiny_run
    from imgcls.errors import UserError
    run = make_tiny_run(tmp_path / "runs" / "r")
    raw = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(32, 32))
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "test_efficientnet", "img_size": 32, "src": str(raw)}))
    reads = []
    real = TrainConfig.read_mapping
    monkeypatch.setattr(TrainConfig, "read_mapping", staticmethod(lambda path: reads.append(path) or real(path)))
    r = CliRunner().invoke(app, ["train", "--resume", str(run), "--lr", "0.5", "--workers", "0"])
    assert r.exit_code == 2 and "--lr 0.001 -> 0.5 cannot change" in " ".join(r.output.split()), r.output
    assert reads == [run / "config.yaml"], reads
    reads.clear()
    with pytest.raises(UserError, match="cannot change"):
        run_train(TrainConfig(lr=0.5, workers=0), resume=run)
    assert reads == [run / "config.yaml"], reads


def test_run_train_leaves_the_callers_config_as_given_so_it_trains_again(tmp_path, monkeypatch):
    """A notebook's `cfg = TrainConfig(...); run_train(cfg); cfg.seed = 1; run_train(cfg)` failed on its second call:
    run_train wrote what it resolved into the caller's object (the run's generated name, the default input's path
    made absolute, img_size, device_used, weights_source, ...), so the second run was refused as `run folder
    outputs/runs/<first run> already holds a finished run; choose another --name`. The caller's config is left as
    given; the resolved one is the run's config.yaml."""
    monkeypatch.chdir(tmp_path)
    make_image_folder(tmp_path / "data" / "raw", {"a": 6, "b": 6}, size=(32, 32))     # the default input
    cfg = TrainConfig(**TINY, epochs=1, aug="none", val_split=0.3)
    given = copy.deepcopy(cfg)
    first = run_train(cfg)
    assert cfg == given
    cfg.seed = 1
    second = run_train(cfg)
    assert second != first and (first / "best.pt").is_file() and (second / "best.pt").is_file()
    assert TrainConfig.load(second / "config.yaml").seed == 1 and TrainConfig.load(first / "config.yaml").seed == 0


def test_a_run_reads_what_it_recorded_from_any_working_folder(tmp_path, monkeypatch):
    """config.yaml recorded the data, --weights and --init-from as typed (`src: data/splits.csv`): `train --resume
    proj/outputs/runs/RUN` from another folder failed with `data/splits.csv does not exist`, or, where that folder
    had its own data/splits.csv, trained on that one silently; a k-fold set's next fold looked for its --weights
    file there too. They are recorded absolute: the resume reads the run's own data and weights."""
    from imgcls import manifest as mf
    from imgcls.weights import create_model
    proj, other = tmp_path / "proj", tmp_path / "other"
    for folder, seed in ((proj, 0), (other, 1)):
        df = mf.load(make_image_folder(folder / "data" / "raw", {"a": 6, "b": 6}, size=(32, 32), seed=seed))
        df["fold"] = np.arange(len(df)) % 2
        mf.write(df, folder / "data" / "splits.csv")       # other/data/splits.csv: another project's data
    (proj / "w").mkdir()
    torch.save(create_model("test_resnet", num_classes=2).state_dict(), proj / "w" / "start.pth")
    monkeypatch.chdir(proj)
    # pretrained: at its default, which --weights replaces
    run = _kfold_set_stopped_after_fold_0("data/splits.csv", Path("outputs/runs"), weights="w/start.pth",
                                          pretrained=True)       # fold 0 trained, fold 1 not started
    rec = TrainConfig.load(run / "config.yaml")
    assert (rec.src, rec.weights) == (str(proj / "data" / "splits.csv"), str(proj / "w" / "start.pth"))
    monkeypatch.chdir(other)
    run = proj / "outputs" / "runs" / "kf"
    run_train(TrainConfig.resolve(resume=run), resume=run)
    assert (run / "oof_score.json").is_file() and len(pd.read_csv(run / "val_predictions.csv")) == 12
    assert set(pd.read_csv(run / "val_predictions.csv")["root"]) == {str(proj / "data" / "raw")}


def test_resume_refuses_other_data_under_a_relative_recorded_src(tmp_path, monkeypatch):
    """A config.yaml written before paths were anchored (or a hand-written --config) holds a relative src, read from
    the working folder: `train --resume RUN` from another folder with its own data/splits.csv trained on that data,
    exit 0. The data must hold the run's validation images: refused in one line (exit 2) naming the recorded src,
    what it resolved to and the fix; from the run's own folder, or with its data given again, it resumes."""
    import yaml
    from imgcls import manifest as mf
    proj, other = tmp_path / "proj", tmp_path / "other"
    for folder, seed in ((proj, 0), (other, 1)):      # the same relative image names in both
        mf.write(mf.load(make_image_folder(folder / "data" / "raw", {"a": 6, "b": 6}, size=(32, 32), seed=seed)),
                 folder / "data" / "splits.csv")
    monkeypatch.chdir(proj)
    run = proj / run_train(TrainConfig(**TINY, src="data/splits.csv", out="outputs/runs", name="r", epochs=2,
                                       aug="none"), stop_after=1)
    rec = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**rec, "src": "data/splits.csv"}))     # an older record
    monkeypatch.chdir(other)
    r = CliRunner().invoke(app, ["train", "--resume", str(run)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    line = " ".join(r.output.split())
    assert "data/splits.csv (recorded in its config.yaml)" in line and str(other / "data" / "splits.csv") in line
    # its fix said "pass the data it was trained on again", and the same relative path typed again from there is
    # refused alike: the fix is cd there or the data's absolute path, true either way
    assert "cd to the folder the run was trained from" in line and "give its data's absolute path" in line, line
    assert "again" not in line, line
    r = CliRunner().invoke(app, ["train", "data/splits.csv", "--resume", str(run)])
    assert r.exit_code == 2 and "give its data's absolute path" in " ".join(r.output.split()), r.output
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1]          # nothing trained on the other data
    # its data moved elsewhere and given again there (the user's own choice): compared by path, it resumes
    import shutil
    moved = tmp_path / "moved"
    shutil.copytree(proj / "data", moved / "data")
    mf.write(mf.load(moved / "data" / "raw"), moved / "data" / "splits.csv")
    run_train(TrainConfig.resolve({"src": str(moved / "data" / "splits.csv")}, resume=run), resume=run)
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1, 2]


def test_resume_of_a_run_stopped_in_its_first_epoch_refuses_other_data_under_a_relative_src(tmp_path, monkeypatch):
    """A run stopped in its first epoch has no val_predictions.csv to compare the data with: `train --resume RUN`
    from another folder with its own data/splits.csv trained on that data, exit 0. A relative recorded src is now
    read only from the folder the run was trained from (its relative recorded out and name lead to it); from
    elsewhere one line (exit 2) with the fix."""
    from imgcls import manifest as mf
    proj, other = tmp_path / "proj", tmp_path / "other"
    for folder, seed in ((proj, 0), (other, 1)):      # the same relative image names in both
        mf.write(mf.load(make_image_folder(folder / "data" / "raw", {"a": 6, "b": 6}, size=(32, 32), seed=seed)),
                 folder / "data" / "splits.csv")
    run = proj / "outputs" / "runs" / "r"
    run.mkdir(parents=True)         # what a run stopped in its first epoch holds: its config.yaml (an older record)
    TrainConfig(**TINY, src="data/splits.csv", out="outputs/runs", name="r", epochs=1, aug="none").save(
        run / "config.yaml")
    monkeypatch.chdir(other)
    r = CliRunner().invoke(app, ["train", "--resume", str(run)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    line = " ".join(r.output.split())
    assert "data/splits.csv (recorded in its config.yaml) is a relative path" in line, line
    # its fix said "pass its data again", no fix where the user had typed that same relative path again (refused
    # alike): cd to the folder it was trained from, named, or the data's absolute path
    assert str(other / "data" / "splits.csv") in line and "again" not in line, line
    assert f"cd to the folder the run was trained from ({proj})" in line, line
    assert f"imgcls train {proj / 'data' / 'splits.csv'} --resume" in line, line
    r = CliRunner().invoke(app, ["train", "data/splits.csv", "--resume", str(run)])
    assert r.exit_code == 2 and f"trained from ({proj})" in " ".join(r.output.split()), r.output
    assert not (run / "last.pt").exists()                       # nothing trained on the other data
    from imgcls.errors import UserError
    from imgcls.train.rundir import check_resume_src
    monkeypatch.chdir(proj)                 # from the folder it was trained from (or the data given again): it resumes
    record = TrainConfig.load(run / "config.yaml")
    check_resume_src(run, "data/splits.csv", record)
    monkeypatch.chdir(other)
    check_resume_src(run, str(proj / "data" / "splits.csv"), record)
    with pytest.raises(UserError, match="is a relative path"):
        check_resume_src(run, "data/splits.csv", record)


def test_resume_of_a_first_epoch_run_from_another_folder_is_refused_before_its_data_is_scanned(tmp_path,
                                                                                                monkeypatch):
    """The refusal of a relative recorded src read from another folder (a run stopped in its first epoch) needs
    only the run's record, yet came after the other folder's data was loaded and every image scanned (minutes on a
    large set): one line before the long work, as every user error."""
    from imgcls import manifest as mf
    other = tmp_path / "other"
    mf.write(mf.load(make_image_folder(other / "data" / "raw", {"a": 6, "b": 6}, size=(32, 32))),
             other / "data" / "splits.csv")
    run = tmp_path / "proj" / "outputs" / "runs" / "r"
    run.mkdir(parents=True)
    TrainConfig(**TINY, src="data/splits.csv", out="outputs/runs", name="r", epochs=1, aug="none").save(
        run / "config.yaml")
    scanned = []
    monkeypatch.setattr(mf, "scan_images", lambda df, *a, **k: scanned.append(len(df)) or df)
    monkeypatch.chdir(other)
    r = CliRunner().invoke(app, ["train", "--resume", str(run)])
    assert r.exit_code == 2 and "is a relative path" in " ".join(r.output.split()), r.output
    assert scanned == []


def test_ema_warms_up_by_update_count_and_resumes(two_class, tmp_path, monkeypatch):
    from timm.utils import ModelEmaV3
    steps = []
    real = ModelEmaV3.update
    monkeypatch.setattr(ModelEmaV3, "update", lambda self, model, step=None: (steps.append((step, self.get_decay(step))),
                                                                              real(self, model, step))[1])
    kw = dict(epochs=2, ema=True, val_split=0.2)        # 16 train images, batch 8: 2 updates an epoch
    full = run_train(cfg_for(two_class, tmp_path, name="full", **kw))
    assert [s for s, _ in steps] == [1, 2, 3, 4]
    assert steps[0][1] == 0.0 and 0 < steps[1][1] < steps[3][1] < 0.998   # timm's warmup, below --ema-decay
    # the first update copies the model: after one epoch the EMA is not the initial weights
    steps.clear()
    part = run_train(cfg_for(two_class, tmp_path, name="part", **kw), stop_after=1)
    run_train(TrainConfig.load(part / "config.yaml"), resume=part)
    assert [s for s, _ in steps] == [1, 2, 3, 4]                        # the count goes on after a resume
    a, b = read_checkpoint(full / "last.pt"), read_checkpoint(part / "last.pt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["train_state"]["ema_updates"] == 4
    # --ema-decay caps the warmup (one epoch: the second update's warmup decay, 0.37, is over the cap already)
    steps.clear()
    run_train(cfg_for(two_class, tmp_path, name="low", ema_decay=0.1, **dict(kw, epochs=1)))
    assert max(d for _, d in steps) == pytest.approx(0.1)


def test_focal_loss_equals_formula():
    from imgcls.train.losses import focal_loss
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g)
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    t = torch.nn.functional.one_hot(y, 4).float()
    w = torch.tensor([1.0, 2.0, 0.5, 1.5])
    p = logits.softmax(1).numpy()
    pt = p[np.arange(6), y.numpy()]
    for gamma in (0.0, 2.0):
        expect = np.mean(-w.numpy()[y.numpy()] * (1 - pt) ** gamma * np.log(pt))
        assert focal_loss(logits, t, gamma, w).item() == pytest.approx(expect, rel=1e-5)
    assert focal_loss(logits, t, 0.0).item() == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(),
                                                             rel=1e-5)


def test_head_weights_act(tmp_path):
    from imgcls.errors import UserError
    from imgcls.train.heads import build_model
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    # weight 0 on gender and age_band: their heads get no gradient (AdamW, no weight decay) and stay at init
    run = run_train(cfg_for(src, tmp_path, name="w100", heads="multi", epochs=1, weight_decay=0.0,
                            head_weights=[1.0, 0.0, 0.0]))
    ck = read_checkpoint(run / "last.pt")
    torch.manual_seed(0)
    init = build_model(ck["meta"]).state_dict()
    sd = ck["raw_state_dict"]
    moved = {h: any(not torch.equal(sd[k], init[k]) for k in sd if k.startswith(f"heads.{h}."))
             for h in ("mask", "gender", "age_band")}
    assert moved == {"mask": True, "gender": False, "age_band": False}
    # the weights scale the loss the run reports
    both = run_train(cfg_for(src, tmp_path, name="w111", heads="multi", epochs=1, weight_decay=0.0))
    assert metrics(run)["train_loss"][0] < metrics(both)["train_loss"][0]
    # one weight per --head-columns column: refused before the data is read, no run folder left behind
    with pytest.raises(UserError, match="--head-weights has 2 values for 3 heads"):
        TrainConfig(heads="multi", head_weights=[1.0, 2.0]).validate(registry=False)
    with pytest.raises(UserError, match="--head-weights has 2 values for 3 heads"):
        run_train(cfg_for(src, tmp_path, name="w2", heads="multi", epochs=1, head_weights=[1.0, 2.0]))
    assert not (tmp_path / "runs" / "w2").exists()


def test_head_columns_choose_the_heads(tmp_path):
    from imgcls.errors import UserError
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    run = run_train(cfg_for(src, tmp_path, name="mg", heads="multi", head_columns=["mask", "gender"], epochs=1))
    meta = read_checkpoint(run / "best.pt")["meta"]
    assert [h["name"] for h in meta["heads"]] == ["mask", "gender"] and meta["decode"] == "product"
    assert meta["classes"] == [f"{m}_{g}" for m in range(3) for g in range(2)]
    vp = pd.read_csv(run / "val_predictions.csv", dtype={"label": str, "pred": str})
    assert [c for c in vp.columns if c.startswith("p_")] == [f"p_{m}_{g}" for m in range(3) for g in range(2)]
    # the true class is spelled as the model's classes (mask_gender), not the rows' 18-class profile id: the
    # file's own macro-F1 is the run's (imgcls runs and ensemble score from it)
    from imgcls.metrics import macro_f1
    from imgcls.profiles import mask_from_stem
    expect = [f"{mask_from_stem(Path(p).stem)}_{int(Path(p).parent.name.split('_')[1] == 'female')}"
              for p in vp["path"]]
    assert vp["label"].tolist() == expect
    assert macro_f1(vp["label"], vp["pred"], meta["classes"]) == pytest.approx(metrics(run)["val_macro_f1"].max())
    # the profile heads in another order decoded to names ('1_0_2'), no competition ids: refused up front
    with pytest.raises(UserError, match="in the order mask,gender,age_band; give --head-columns mask,gender,age_band"):
        TrainConfig(heads="multi", head_columns=["gender", "mask", "age_band"]).validate(registry=False)
    with pytest.raises(UserError, match="needs the label columns colour"):
        run_train(cfg_for(src, tmp_path, name="bad", heads="multi", head_columns=["mask", "colour"], epochs=1))


def test_head_columns_that_name_no_column_are_refused_from_python_as_on_the_command_line(two_class, tmp_path):
    """TrainConfig(heads="multi", head_columns=[]) passed validate, where the command line's --head-columns '' is
    refused (options.list_items): the config's own validation refuses it in that line's words, before a run folder
    is made. head_weights=[] is their default (every head weighs 1) and passes."""
    from imgcls.errors import UserError
    said = ("--head-columns [] names no column: it takes label columns, comma-separated, e.g. mask,gender,age_band; "
            "drop --head-columns for mask,gender,age_band")
    with pytest.raises(UserError) as e:
        TrainConfig(heads="multi", head_columns=[]).validate(registry=False)
    assert str(e.value) == said
    with pytest.raises(UserError, match=re.escape(said)):
        run_train(cfg_for(two_class, tmp_path, heads="multi", head_columns=[]))
    assert not (tmp_path / "runs").exists()
    with pytest.raises(UserError, match=re.escape("--head-columns ('', ' ') holds a blank item")):
        TrainConfig(heads="multi", head_columns=("", " ")).validate(registry=False)
    TrainConfig(heads="multi", head_weights=[]).validate(registry=False)


def test_other_losses_and_class_weights():
    from imgcls.train.losses import Criterion, class_weights_auto, soft_f1_loss
    w = class_weights_auto(np.array([0] * 90 + [1] * 10), 2)
    assert w[1] / w[0] == pytest.approx(9.0) and w.mean().item() == pytest.approx(1.0)
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.5]])
    t = torch.nn.functional.one_hot(torch.tensor([0, 1, 1]), 2).float()
    ce, ls = Criterion("ce")(logits, t), Criterion("label-smoothing", smoothing=0.2)(logits, t)
    assert ls.item() != pytest.approx(ce.item())
    assert Criterion("ce", weight=w)(logits, t).item() != pytest.approx(ce.item())
    assert soft_f1_loss(torch.tensor([[20.0, 0.0], [0.0, 20.0]]), torch.eye(2)).item() < 1e-6
    assert soft_f1_loss(torch.tensor([[0.0, 20.0], [20.0, 0.0]]), torch.eye(2)).item() > 0.99


def test_class_weights_auto_acts_in_a_run(tmp_path, monkeypatch):

    import imgcls.train.loop as loop
    src = make_image_folder(tmp_path / "raw", {"a": 16, "b": 4}, size=(40, 40))
    seen = []

    class Spy(loop.Criterion):
        def __init__(self, kind, weight=None, *a, **kw):
            seen.append(None if weight is None else torch.as_tensor(weight).tolist())
            super().__init__(kind, weight, *a, **kw)

    monkeypatch.setattr(loop, "Criterion", Spy)
    kw = dict(epochs=1, lr=0.0, scheduler="none", val_split=0.25)
    plain = run_train(cfg_for(src, tmp_path, name="plain", **kw))
    auto = run_train(cfg_for(src, tmp_path, name="auto", class_weights="auto", **kw))
    assert seen[0] is None
    w = seen[1]
    assert len(w) == 2 and w[1] / w[0] == pytest.approx(12 / 3)   # 12 / 3 training images of a / b
    # lr 0: the same weights see the same images, so only the class weights move the losses
    assert metrics(auto)["train_loss"][0] != pytest.approx(metrics(plain)["train_loss"][0])
    assert metrics(auto)["val_loss"][0] != pytest.approx(metrics(plain)["val_loss"][0])


def _imbalanced(tmp_path):
    return make_image_folder(tmp_path / "raw", {"a": 32, "b": 8}, size=(40, 40))


def test_loss_aug_and_mix_act_in_a_run(tmp_path):
    """The components have their own tests above; this and the next two prove the run wires each option to them."""
    # ten runs, each on 12 images (9 train, 10 samples an epoch with --oversample's default: a full batch and a
    # partial one): a run's image work kept small
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 4}, size=(40, 40))
    lr0 = dict(epochs=1, lr=0.0, scheduler="none", val_split=0.25)   # lr 0: every run sees the same weights
    names = iter(range(100))
    ran = {}                                    # options -> loss: an option set compared twice is trained once

    def loss(**kw):
        key = tuple(sorted(kw.items()))
        if key not in ran:
            run = run_train(cfg_for(src, tmp_path, name=f"r{next(names)}", **dict(lr0, **kw)))
            ran[key] = metrics(run)["train_loss"][0]
        return ran[key]

    base = loss()
    assert loss(loss="focal") < base                       # focal down-weights the easy part of the same batches
    assert loss(loss="label-smoothing") != pytest.approx(base)
    assert loss(aug="light") != pytest.approx(base)        # other pixels (flips), other loss
    assert loss(aug="heavy") != pytest.approx(base)
    assert loss(mix="mixup", mix_prob=1.0) != pytest.approx(base)
    assert loss(mix="cutmix", mix_prob=0.0) == pytest.approx(base)
    # the numbers that shape them
    assert loss(loss="label-smoothing", smoothing=0.4) != pytest.approx(loss(loss="label-smoothing"))
    assert loss(loss="focal", focal_gamma=0.5) != pytest.approx(loss(loss="focal"))
    assert loss(mix="mixup", mix_prob=1.0, mix_alpha=0.2) != pytest.approx(loss(mix="mixup", mix_prob=1.0))


def test_weighted_sampler_acts_in_a_run(tmp_path, monkeypatch):
    """--sampler weighted: the images actually fetched for training are class-balanced."""
    src = _imbalanced(tmp_path)
    fetched = []
    from imgcls.train import loop
    orig = loop.Trainer._batches

    def spy(self, idx, epoch):          # every training batch, from the loader or cut from the cache (--gpu-aug)
        for x, t in orig(self, idx, epoch):
            fetched.extend(int(v) for v in t[:, 0])
            yield x, t

    monkeypatch.setattr(loop.Trainer, "_batches", spy)
    for sampler, gpu_aug in (("shuffle", "off"), ("weighted", "off"), ("shuffle", "on"), ("weighted", "on")):
        fetched.clear()
        # shuffle: each image once an epoch, 6 of 30 minority (one epoch shows it); weighted: 3 epochs of draws
        run_train(cfg_for(src, tmp_path, name=sampler + gpu_aug, sampler=sampler, aug="light",
                          epochs=1 if sampler == "shuffle" else 3, oversample="off", val_split=0.25, gpu_aug=gpu_aug))
        minority = np.mean(np.array(fetched) == 1)
        assert minority == pytest.approx(0.2, abs=0.02) if sampler == "shuffle" else 0.35 < minority < 0.65


def test_a_class_with_no_validation_rows_is_named_with_how_it_counts(tmp_path, capsys):
    """A long-tail set whose rarest class had no validation row scored it F1 0 in the val macro-F1 without a word
    (README: every class of the task counts). train.log and the terminal name the class and how it counts; the
    score itself is unchanged."""
    from imgcls import metrics as mx
    run = _trained_on_a_hand_made_split(tmp_path, {"a": 8, "b": 8, "rare": 2}, "lt",
                                        lambda df: (df["label"] != "rare") & (np.arange(len(df)) % 4 == 0))
    _said_and_logged(capsys, run, "1 of 3 classes have no validation rows (rare): each counts in the macro-F1 with "
                                  "F1 0 (the mean is over every class of the task)")
    vp = pd.read_csv(run / "val_predictions.csv", dtype={"label": str, "pred": str})
    score = mx.macro_f1(vp["label"], vp["pred"], ["a", "b", "rare"])      # over all 3 classes, rare's F1 0
    assert metrics(run)["val_macro_f1"].iloc[-1] == pytest.approx(score)
    assert mx.without_rows_note(np.array([0, 1, 2]), ["a", "b", "rare"]) == ""      # every class validates: silent


def test_a_class_with_validation_rows_and_no_training_rows_is_named(tmp_path, capsys):
    """A hand-made split (or --target age, whose values follow the people split keeps apart) put every image of a
    class in val: the model never learnt it and its validation images were always wrong, without a word."""
    run = _trained_on_a_hand_made_split(tmp_path, {"a": 8, "b": 8, "new": 3}, "nt",
                                        lambda df: (df["label"] == "new") | (np.arange(len(df)) % 4 == 0))
    _said_and_logged(capsys, run, "1 of 3 classes have validation rows but no training rows (new): the model never "
                                  "learns them, so their 3 validation images are always predicted wrong")


def _trained_on_a_hand_made_split(tmp_path, counts: dict, name: str, in_val):
    """A 1-epoch run on a folder of `counts` images per class whose split column puts in val the rows `in_val(df)`
    marks (a split made by hand): its run folder."""
    from imgcls import manifest as mf
    df = mf.load(make_image_folder(tmp_path / "raw", counts, size=(40, 40)))
    df["split"] = np.where(in_val(df), "val", "train")
    mf.write(df, tmp_path / "splits.csv")
    return run_train(cfg_for(tmp_path / "splits.csv", tmp_path, name=name, epochs=1))


def _said_and_logged(capsys, run, want: str) -> None:
    """`want` said on the terminal and kept in the run's train.log."""
    assert want in " ".join(capsys.readouterr().err.split())
    assert want in " ".join((run / "train.log").read_text().split())


def test_a_multi_head_run_names_a_head_class_never_trained_not_an_unseen_combination(tmp_path, capsys):
    """--heads multi decodes each head: profile class 4 (mask 0, gender 1, age_band 1) that no training image holds
    is still predicted when each head learnt its part, so train said it was 'always predicted wrong'; a head's
    class no training image holds (age_band 2) is what the model never learns."""
    from imgcls import manifest as mf
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    df = mf.load(src)
    for name, val, want in (("combo", "000001", None), ("band", "000000", "age_band 2")):
        df["split"] = np.where(df["group"].astype(str) == val, "val", "train")
        mf.write(df, tmp_path / f"{name}.csv")
        capsys.readouterr()
        run_train(cfg_for(tmp_path / f"{name}.csv", tmp_path, name=name, heads="multi", epochs=1))
        said = " ".join(capsys.readouterr().err.split())
        if want is None:        # every head class of its validation rows trained: nothing to say
            assert "no training rows" not in said, said
        else:
            assert (f"1 of 8 head classes have validation rows but no training rows ({want}): the model never "
                    f"learns them, so their 7 validation images are always predicted wrong") in said, said


def test_a_product_decode_run_warns_of_single_image_classes_of_its_own_classes(tmp_path, capsys):
    """A --head-columns mask,gender run scores the classes '0_0' .. '2_1' (each of 3 or more images here), yet train
    warned '4 class(es) with a single image (10, in train; 14, ...)', the 18-class profile ids of the label column,
    none of its classes. The warning now counts the classes the run scores."""
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    run_train(cfg_for(src, tmp_path, name="mg", heads="multi", head_columns=["mask", "gender"], epochs=1))
    said = " ".join(capsys.readouterr().err.split())
    assert "training" in said and "with a single image" not in said, said
    run_train(cfg_for(src, tmp_path, name="p18", heads="multi", epochs=1))      # the profile decode: its 18 ids
    said = " ".join(capsys.readouterr().err.split())
    assert "4 class(es) with a single image (10, in " in said, said


def test_oversample_auto_says_why_it_is_off(two_class, tmp_path, capsys):
    """--oversample auto (the default) yields to another rebalancing option: train.log and the terminal say which."""
    for name, kw, why in (("w", {"sampler": "weighted"}, "--sampler weighted rebalances the classes"),
                          ("cw", {"class_weights": "auto"}, "--class-weights auto rebalances the loss")):
        run = run_train(cfg_for(two_class, tmp_path, name=name, epochs=1, **kw))
        assert f"--oversample auto: off, {why}" in (run / "train.log").read_text()
        assert f"--oversample auto: off, {why}" in " ".join(capsys.readouterr().err.split())


def test_scheduler_acts_in_a_run(tmp_path):
    """--scheduler: the lr the run records per epoch."""
    # 12 images (9 train, 10 samples an epoch: two steps): the recorded lr does not depend on the data
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 4}, size=(40, 40))
    lrs = {s: metrics(run_train(cfg_for(src, tmp_path, name=f"s_{s}", scheduler=s, epochs=3, lr=0.01)))["lr"]
           for s in ("none", "cosine")}
    assert lrs["none"].tolist() == pytest.approx([0.01] * 3)
    assert lrs["cosine"][0] == pytest.approx(0.01) and lrs["cosine"].is_monotonic_decreasing
    assert lrs["cosine"].iloc[-1] < 0.01
    floor = metrics(run_train(cfg_for(src, tmp_path, name="s_floor", scheduler="cosine", epochs=3, lr=0.01,
                                      min_lr=0.008)))["lr"]
    assert floor.iloc[-1] != pytest.approx(lrs["cosine"].iloc[-1]) and (floor >= 0.008 - 1e-12).all()


def test_weighted_sampler_balances_classes():
    from imgcls.train.data import epoch_indices
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    idx = epoch_indices(len(labels), labels, seed=0, epoch=0, weighted=True)
    frac = np.bincount(labels[idx], minlength=3) / len(idx)
    assert np.allclose(frac, 1 / 3, atol=0.05)
    plain = epoch_indices(len(labels), labels, seed=0, epoch=0, weighted=False)
    assert sorted(plain) == list(range(1000))
    assert epoch_indices(1000, labels, 0, 1, False) != plain   # a new order each epoch
    assert epoch_indices(1000, labels, 0, 1, False) == epoch_indices(1000, labels, 0, 1, False)
    # DDP shards: disjoint, covering, same length
    r0, r1 = (epoch_indices(1000, labels, 0, 0, False, rank=r, world=2) for r in (0, 1))
    assert len(r0) == len(r1) == 500 and sorted(r0 + r1) == list(range(1000))


def test_mix_modes():
    from imgcls.train.mix import mix_batch
    rng = np.random.default_rng(0)
    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 8, 8).clone()
    y = torch.tensor([[0], [0], [1], [1]])
    xm, soft = mix_batch(x, y, [2], "cutmix", 1.0, 1.0, rng)
    frac_own = (xm == x).float().mean((1, 2, 3))
    assert torch.allclose(soft[0].sum(1), torch.ones(4))
    xv, softv = mix_batch(x, y, [2], "cutmix-vertical", 1.0, 1.0, rng)
    assert torch.equal(softv[0], torch.nn.functional.one_hot(y[:, 0], 2).float())  # labels preserved
    assert torch.equal(xv[..., :4], x[..., :4])
    assert torch.equal(xv[0, ..., 4:], x[1, ..., 4:]) and torch.equal(xv[2, ..., 4:], x[3, ..., 4:])
    xu, softu = mix_batch(x, y, [2], "mixup", 1.0, 1.0, rng)
    assert not torch.equal(xu, x) and ((softu[0] > 0) & (softu[0] < 1)).any()
    xn, _ = mix_batch(x, y, [2], "cutmix", 0.0, 1.0, rng)
    assert torch.equal(xn, x) and frac_own.min() < 1


def test_aug_presets():
    from torchvision.transforms import v2
    from imgcls.train.data import augment_transform
    assert augment_transform("none", 32) is None
    for p in ("light", "medium", "heavy"):
        t = augment_transform(p, 32)
        assert not any(isinstance(o, v2.RandomVerticalFlip) for o in t.transforms)
        out = t(torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8))
        assert out.shape == (3, 32, 32) and out.dtype == torch.uint8
    kinds = [{type(o) for o in augment_transform(p, 32).transforms} for p in ("light", "medium", "heavy")]
    assert kinds[0] < kinds[1] < kinds[2] and v2.RandomPerspective in kinds[2]


def test_schedulers_shape_the_lr(caplog):
    from imgcls.train.optim import make_scheduler
    def lrs(name, epochs=6, warm=0):
        floor = {} if name in ("none", "onecycle") else {"min_lr": 0.0}   # no floor there (--min-lr refused)
        cfg = TrainConfig(scheduler=name, epochs=epochs, warmup_epochs=warm, lr=0.1, **floor)
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        s, per_step = make_scheduler(opt, cfg, steps_per_epoch=2)
        out = []
        for e in range(epochs):
            out.append(opt.param_groups[0]["lr"])
            for _ in range(2):
                opt.step()
                if per_step:
                    s.step()
            if s is not None and not per_step:
                s.step(e + 1, 0.5)
        return out
    assert lrs("none") == [0.1] * 6
    cos = lrs("cosine")
    assert cos[0] == pytest.approx(0.1) and all(a > b for a, b in zip(cos, cos[1:]))
    assert lrs("cosine", warm=2)[0] < 0.01
    rs = lrs("cosine-restarts")
    assert any(b > a for a, b in zip(rs, rs[1:]))      # goes back up
    # three cycles counted in updates, also in a short run (per epoch, 3 epochs would be a constant lr)
    rs3 = lrs("cosine-restarts", epochs=3)
    assert rs3[0] == pytest.approx(0.1) and rs3[1] == pytest.approx(0.1) and rs3[2] == pytest.approx(0.1)
    cfg = TrainConfig(scheduler="cosine-restarts", epochs=3, lr=0.1, min_lr=0.0)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    s, per_step = make_scheduler(opt, cfg, steps_per_epoch=4)
    seen = []
    for _ in range(12):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    assert per_step and seen[0] == pytest.approx(0.1) and seen[2] < 0.06 and seen[4] == pytest.approx(0.1)
    # its update count is state: a scheduler loaded from it continues the schedule
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    s2, _ = make_scheduler(opt2, cfg, steps_per_epoch=4)
    s2.load_state_dict(s.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    # a one-epoch cosine is constant: timm's warning about that is not shown to users
    import logging
    with caplog.at_level(logging.WARNING):
        make_scheduler(opt, TrainConfig(scheduler="cosine", epochs=1), steps_per_epoch=4)
        make_scheduler(opt, TrainConfig(scheduler="cosine-restarts", epochs=1), steps_per_epoch=2)
    assert not [r for r in caplog.records if "no effect" in r.getMessage()]
    assert logging.getLogger("timm.scheduler.cosine_lr").level == logging.NOTSET      # restored
    oc = lrs("onecycle")
    assert oc[0] < max(oc) and oc[-1] < max(oc)
    pl = lrs("plateau")                                 # constant metric -> lr halves
    assert pl[-1] < pl[0]


def test_options_act(two_class, tmp_path, adamw_run):
    from imgcls.train.heads import build_model
    # --freeze-backbone: only the classifier moves (in the raw weights; --ema is this run's too, checked below)
    run = run_train(cfg_for(two_class, tmp_path, name="frozen", freeze_backbone=True, epochs=1, ema=True,
                            ema_decay=0.5))
    sd = read_checkpoint(run / "last.pt")["raw_state_dict"]
    meta = read_checkpoint(run / "last.pt")["meta"]
    torch.manual_seed(0)
    init = build_model(meta).state_dict()
    params = dict(build_model(meta).named_parameters())
    assert all(torch.equal(sd[k], init[k]) for k in params if not k.startswith("fc."))
    assert not torch.equal(sd["fc.weight"], init["fc.weight"])
    # --grad-accum: half the optimiser updates
    src, a = adamw_run
    b = run_train(cfg_for(src, tmp_path, name="acc2", epochs=1, val_split=0.2, grad_accum=2))
    step = lambda r: int(next(iter(read_checkpoint(r / "last.pt")["train_state"]["optimizer"]["state"].values()))["step"])
    assert step(a) == 2 and step(b) == 1
    # --ema: best.pt holds the averaged weights, not the raw ones (the classifier's, which trains when frozen)
    ck = read_checkpoint(run / "last.pt")
    assert not torch.equal(ck["state_dict"]["fc.weight"], ck["raw_state_dict"]["fc.weight"])
    # --sgd momentum: the same first step, other steps after it (one epoch: 16 training images, batch 8, 2 updates)
    mom = {m: read_checkpoint(run_train(cfg_for(two_class, tmp_path, name=f"sgd{m}", optimizer="sgd", lr=0.05,
                                                momentum=m, epochs=1, val_split=0.2)) / "last.pt")
           for m in (0.0, 0.9)}
    assert not torch.equal(mom[0.0]["raw_state_dict"]["fc.weight"], mom[0.9]["raw_state_dict"]["fc.weight"])
    assert "momentum_buffer" in next(iter(mom[0.9]["train_state"]["optimizer"]["state"].values()))
    # --early-stop: lr 0 never improves -> stops after 1 + N epochs
    s = run_train(cfg_for(two_class, tmp_path, name="stop", epochs=6, lr=0.0, scheduler="none", early_stop=1))
    assert len(metrics(s)) == 2


def test_weights_file_and_pretrained_lite0_offline(two_class, tmp_path):
    from imgcls.weights import create_model
    # --weights PATH: the backbone starts from the file
    src_model = create_model("test_resnet", num_classes=5)
    torch.save(src_model.state_dict(), tmp_path / "w.pt")
    run = run_train(cfg_for(two_class, tmp_path, name="w", weights=str(tmp_path / "w.pt"), pretrained=True, freeze_backbone=True,
                            epochs=1))
    sd = read_checkpoint(run / "last.pt")["raw_state_dict"]
    assert torch.equal(sd["conv1.0.weight"], src_model.state_dict()["conv1.0.weight"])
    # --pretrained with the package-shipped EfficientNet-Lite0 weights (no network)
    run = run_train(cfg_for(two_class, tmp_path, name="lite0", model="tf_efficientnet_lite0", pretrained=True,
                            freeze_backbone=True, epochs=1))
    ref = create_model("tf_efficientnet_lite0", num_classes=2, pretrained=True).state_dict()
    sd = read_checkpoint(run / "last.pt")["raw_state_dict"]
    assert torch.equal(sd["conv_stem.weight"], ref["conv_stem.weight"])
    assert read_checkpoint(run / "best.pt")["meta"]["mean"] == [0.5, 0.5, 0.5]


def test_kfold_set_being_trained_names_the_wait_not_resume(tmp_path):
    """`imgcls ensemble A B` while B's folds train: the unfinished-set line said `imgcls train --resume B`, which a
    run in use refuses; it names the wait, and only a fold that has finished."""
    from imgcls.errors import UserError
    from imgcls.train.rundir import RunLock, record_plan
    run = tmp_path / "runs" / "kf"
    for k in (0, 1):
        (run / f"fold_{k}").mkdir(parents=True)
        (run / f"fold_{k}" / "best.pt").write_bytes(b"")
    (run / "config.yaml").write_text("folds: all\n")        # a k-fold set's (run_names.fold_dirs)
    record_plan(run, [0, 1, 2], ["a", "b"])
    with RunLock(run):
        with pytest.raises(UserError) as e:
            find_checkpoints(run)
    line = str(e.value)
    assert line == (f"{run} is a k-fold run that imgcls train is training now (2 fold(s) with a checkpoint so far: "
                    f"fold_0, fold_1); wait for it to finish, or give one finished fold's folder ({run / 'fold_0'}); "
                    f"`imgcls runs` (Python: imgcls.runs.run_runs()) shows its progress"), line
    (run / "fold_1" / "best.pt").unlink()           # the first fold still training: no fold to offer
    with RunLock(run):
        with pytest.raises(UserError, match=r"wait for it to finish; .* shows its progress$"):
            find_checkpoints(run)
    with pytest.raises(UserError, match=r"unfinished k-fold run .*finish it with imgcls train --resume"):
        find_checkpoints(run)                       # nothing trains it now: resume is the fix


def test_splits_and_folds(tmp_path, capsys):
    from imgcls import manifest as mf
    src = make_image_folder(tmp_path / "raw", {"a": 9, "b": 9, "c": 6}, size=(40, 40))
    df = mf.load(src)
    df["fold"] = np.arange(len(df)) % 3
    df["split"] = np.where(np.arange(len(df)) % 6 == 5, "val", "train")
    df["keep"] = [i != 0 for i in range(len(df))]
    mf.write(df, tmp_path / "data" / "splits.csv")
    run = run_train(cfg_for(tmp_path / "data" / "splits.csv", tmp_path, name="split", epochs=1))
    vp = pd.read_csv(run / "val_predictions.csv")
    assert len(vp) == 4                               # rows with split == val
    said = " ".join(capsys.readouterr().err.split())  # a k-fold table trained as one holdout says so
    assert "the data has 3 folds (fold column): this trains one model" in said and "--folds all" in said
    assert "--val-split 0.3 is not used: the data's split column's val rows decide what validates" in said
    run = run_train(cfg_for(tmp_path / "data" / "splits.csv", tmp_path, name="kf", epochs=1, folds="all"))
    ck = find_checkpoints(run)
    assert [p.parent.name for p in ck] == ["fold_0", "fold_1", "fold_2"]
    oof = pd.read_csv(run / "val_predictions.csv", keep_default_na=False)
    assert len(oof) == len(df) - 1 and sorted(oof["fold"].astype(int).unique()) == [0, 1, 2]  # keep=False dropped
    assert not oof["path"].duplicated().any()
    score = json.loads((run / "oof_score.json").read_text())
    assert score["n_images"] == len(oof) and 0 <= score["macro_f1"] <= 1
    for k in range(3):
        assert (run / f"fold_{k}" / "metrics.csv").is_file()
    assert (run / "config.yaml").is_file()
    from imgcls.train.report import NO_PLOTS        # TINY's --no-plots: no fold's figures, nor the set's OOF ones
    assert not list(run.rglob("*.png")) and NO_PLOTS in (run / "report.html").read_text()
    # an interrupted set (fold 2 never started, so no oof_score.json) predicted with 2 of its folds, silently
    import shutil

    from imgcls.errors import UserError
    part = shutil.copytree(run, tmp_path / "runs" / "kf_part")
    shutil.rmtree(part / "fold_2")
    (part / "oof_score.json").unlink()
    # the plan train wrote as the set started (plan.json) names the fold that is missing
    with pytest.raises(UserError, match=rf"^{part} is an unfinished k-fold run \(2 fold\(s\) with a checkpoint: "
                                        rf"fold_0, fold_1; fold_2 missing\); finish it with imgcls train --resume "
                                        rf"{part} \(Python: run_train\(TrainConfig\(\), resume='{part}'\)\), "
                                        rf"or give one fold's folder \({part / 'fold_0'}\)$"):
        find_checkpoints(part)
    plan = (part / "plan.json").read_text()
    (part / "plan.json").unlink()
    (part / "folds.json").write_text(plan)      # a set trained before plan.json: its folds.json names them too
    with pytest.raises(UserError, match="fold_2 missing"):
        find_checkpoints(part)
    (part / "folds.json").unlink()      # a set trained before folds.json: how far it got, as `imgcls runs` reads it
    with pytest.raises(UserError, match=rf"^{part} is an unfinished k-fold run \(2 fold\(s\) with a checkpoint: "
                                        rf"fold_0, fold_1; oof_score.json missing: training stopped before its last "
                                        rf"fold \(folds done 2\)\); finish it with imgcls train --resume {part} "
                                        rf"\(Python: run_train\(TrainConfig\(\), resume='{part}'\)\), "
                                        rf"or give one fold's folder \({part / 'fold_0'}\)$"):
        find_checkpoints(part)
    assert find_checkpoints(part / "fold_1") == [part / "fold_1" / "best.pt"]       # one fold, as asked
    lost = shutil.copytree(run, tmp_path / "runs" / "kf_lost")          # a fold's checkpoint deleted afterwards
    (lost / "fold_1" / "best.pt").unlink()
    # the set finished: `train --resume` says there is nothing to resume, so that fix went round in a circle
    assert finished(lost)
    with pytest.raises(UserError) as e:
        find_checkpoints(lost)
    line = str(e.value)
    assert line.startswith(f"{lost} is a finished k-fold run whose fold_1 has no best.pt (removed after it trained: "
                           f"its oof_score.json names fold_0, fold_1, fold_2; imgcls train --resume has nothing to "
                           f"resume); restore it, train the set again with its options (imgcls train --config "
                           f"{lost / 'config.yaml'} --name kf_lost-2 (Python: "), line
    assert line.endswith(f"or give one fold's folder ({lost / 'fold_0'})") and "finish it" not in line, line
    shutil.rmtree(lost / "fold_2")                                      # a fold's folder deleted: the same
    with pytest.raises(UserError, match=r"whose fold_1, fold_2 have no best.pt \(removed after it trained"):
        find_checkpoints(lost)
    # `--folds 3` typed as a count (timm / Kaggle scripts' meaning): refused, naming what it means here
    from imgcls.errors import UserError
    with pytest.raises(UserError, match=r"fold\(s\) 3 not in the data \(folds present: 0, 1, 2\); --folds names "
                                        r"fold indices: --folds all trains all 3 folds$"):
        run_train(cfg_for(tmp_path / "data" / "splits.csv", tmp_path, name="k3", epochs=1, folds="3"))
    with pytest.raises(UserError, match=r"fold\(s\) 7 not in the data \(folds present: 0, 1, 2\)$"):
        run_train(cfg_for(tmp_path / "data" / "splits.csv", tmp_path, name="k7", epochs=1, folds="7"))


def test_train_prints_its_run_folder_on_stdout_for_a_script_quiet_or_not(two_class, tmp_path):
    """A script chaining the steps (RUN=$(imgcls train -q ...); imgcls predict "$RUN") could not find the run: its
    folder, named by the time it started, was said only in an info line on stderr, which --quiet silences. It is
    the command's output: one line on stdout, --quiet or not (lines, warnings and bars stay on stderr)."""
    argv = ["train", str(two_class), "--model", "test_resnet", "--img-size", "32", "--epochs", "1", "--workers", "0",
            "--val-split", "0.3", "--out", str(tmp_path / "runs 런"), "--no-pretrained", "--batch-size", "8",
            "--no-plots", "--device", "cpu"]
    for quiet in (["--quiet"], []):
        before = set((tmp_path / "runs 런").glob("*"))
        r = CliRunner().invoke(app, argv + quiet)
        assert r.exit_code == 0, r.output
        run, = set((tmp_path / "runs 런").glob("*")) - before
        assert r.stdout == f"{run}\n", (r.stdout, r.stderr)


def test_run_train_returns_its_run_folder_absolute_and_the_cli_prints_it_as_named(two_class, tmp_path,
                                                                                     monkeypatch):
    """run_train with a relative out returned the run folder relative to the working folder (run_predict's paths are
    absolute): a notebook that changed folder lost it. It is absolute; the command line still prints it as --out /
    --resume named it."""
    monkeypatch.chdir(tmp_path)
    run = run_train(cfg_for(two_class, tmp_path, out="runs", epochs=1))
    assert run == tmp_path / "runs" / "run" and run.is_absolute(), run
    monkeypatch.chdir(two_class)
    assert (run / "config.yaml").is_file()
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["train", "--resume", "runs/run", "-q"])
    assert r.exit_code == 0 and r.stdout == "runs/run\n", (r.stdout, r.stderr)
    # a new run's folder too, as its relative --out named it (a script's RUN=$(imgcls train -q ...))
    r = CliRunner().invoke(app, ["train", str(two_class), "--model", "test_resnet", "--img-size", "32", "--epochs", "1",
                                 "--workers", "0", "--val-split", "0.3", "--out", "./runs2/", "--name", "n",
                                 "--no-pretrained", "--batch-size", "8", "--no-plots", "--device", "cpu", "-q"])
    assert r.exit_code == 0 and r.stdout == "runs2/n\n", (r.stdout, r.stderr)


def test_cli_config_override_and_errors(two_class, tmp_path, monkeypatch):
    r = CliRunner().invoke(app, ["train", str(two_class), "--model", "test_resnet", "--img-size", "32", "--epochs", "1",
                                 "--workers", "0", "--val-split", "0.3", "--out", str(tmp_path / "runs"),
                                 "--no-pretrained", "--name", "cli", "--batch-size", "8", "--no-plots", "--quiet"])
    assert r.exit_code == 0, r.output
    cfg = TrainConfig.load(tmp_path / "runs" / "cli" / "config.yaml")
    assert cfg.model == "test_resnet" and cfg.epochs == 1 and cfg.img_size == 32
    r = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "runs" / "cli" / "config.yaml"),
                                 "--epochs", "2", "--name", "again", "--quiet"])
    assert r.exit_code == 0, r.output
    again = TrainConfig.load(tmp_path / "runs" / "again" / "config.yaml")
    assert again.epochs == 2 and again.img_size == 32 and again.batch_size == 8
    r = CliRunner().invoke(app, ["train", str(two_class), "--model", "resnet_nope", "--out", str(tmp_path / "r2")])
    assert r.exit_code == 2 and "unknown model" in r.output
    r = CliRunner().invoke(app, ["train", str(two_class), "--model", "test_resnet", "--no-pretrained", "--out",
                                 str(two_class / "runs")])
    assert r.exit_code == 2 and "inside the input" in r.output
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["train", "--model", "test_resnet"])
    assert r.exit_code == 2 and "data/splits.csv" in r.output


@pytest.mark.parametrize("step", ["predict", "ensemble", "tune", "eda"])
def test_another_steps_record_as_config_is_named_as_such(tmp_path, step):
    """`imgcls train data --config pr1/predict.json` (a prediction's record where train's config.yaml goes) listed
    its 17 keys as "unknown option(s) in config". One line now says whose record it is (outputs.step_record) and
    what --config takes; tune's --config the same. A study's best_config.yaml, and a user's own config named
    summary.json in a folder of no step's output, are still read as train options."""
    import yaml
    folder = tmp_path / step
    folder.mkdir()
    record, body = {"predict": ("predict.json", {"source": "run1", "method": "one run", "n_images": 12, "tta": "none"}),
                    "ensemble": ("spec.yaml", {"kind": "imgcls-ensemble", "members": [], "method": "mean"}),
                    "tune": ("trials.csv", None), "eda": ("summary.json", {"n_images": 9, "classes": {"a": 9}})}[step]
    if step == "tune":
        (folder / record).write_text("trial,state,value\n0,COMPLETE,0.5\n")
        (folder / "best_config.yaml").write_text(yaml.safe_dump({"epochs": 3, "lr": 0.01}))
    else:
        (folder / record).write_text(json.dumps(body))
    if step == "eda":
        (folder / "report.html").write_text("<html></html>")
    for command in ("train", "tune"):
        r = CliRunner().invoke(app, [command, str(tmp_path), "--out", str(tmp_path / "out"), "--config",
                                     str(folder / record)])
        assert r.exit_code == 2, r.output
        line = " ".join(r.output.split())
        assert f"is imgcls {step}'s record of its output, not train options; give a config.yaml written by imgcls " \
               "train (or imgcls tune's best_config.yaml)" in line, line
        assert "unknown option" not in line and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()
    if step == "tune":
        assert TrainConfig.resolve(config=folder / "best_config.yaml", validate=False).epochs == 3
    if step == "eda":       # without eda's report beside it, a summary.json is the user's file: read as options
        (folder / "report.html").unlink()
        (folder / "summary.json").write_text(yaml.safe_dump({"epochs": 4}))
        assert TrainConfig.resolve(config=folder / "summary.json", validate=False).epochs == 4


def test_a_split_summary_as_config_is_named_as_split_s_record(tmp_path):
    """`imgcls train data --config data/splits_summary.json` (split's record beside its table, whose folder tells no
    step's output) was read as train options, its keys called unknown; it is named as split's record, in the one
    line another step's record gets (outputs.step_record, by split_outputs' names); a parquet table's too. A user's
    own results_summary.json beside a results.csv without split's columns is still read as train options."""
    import yaml
    from imgcls.outputs import step_record
    data = tmp_path / "data"
    data.mkdir()
    columns = {"path": ["a.png"], "label": ["a"], "split": ["train"], "drop_reason": [""]}
    pd.DataFrame(columns).to_csv(data / "splits.csv", index=False)
    (data / "splits_summary.json").write_text(json.dumps({"n_rows": 1, "config": {"val": 0.2, "seed": 0}}))
    for command in ("train", "tune"):
        r = CliRunner().invoke(app, [command, str(data / "splits.csv"), "--out", str(tmp_path / "out"), "--config",
                                     str(data / "splits_summary.json")])
        line = " ".join(r.output.split())
        assert r.exit_code == 2 and "is imgcls split's record of its output, not train options; give a config.yaml " \
                                    "written by imgcls train" in line, line
        assert "Traceback" not in r.output
    assert not (tmp_path / "out").exists()
    pd.DataFrame(columns).to_parquet(data / "held.parquet", index=False)
    (data / "held_summary.json").write_text("{}")
    assert step_record(data / "held_summary.json") == "split"
    pd.DataFrame({"model": ["x"], "f1": [0.5]}).to_csv(data / "results.csv", index=False)
    (data / "results_summary.json").write_text(yaml.safe_dump({"epochs": 4}))
    assert step_record(data / "results_summary.json") is None
    assert TrainConfig.resolve(config=data / "results_summary.json", validate=False).epochs == 4


def test_an_out_inside_the_data_folder_is_refused_before_the_images_are_scanned(two_class):
    """`train DATA --out DATA/runs` was refused only after every image of DATA was scanned (its header read: minutes
    on a large set) and the starting weights were loaded. The --out is checked against the data's folders as soon
    as the table is read: its read line, then the refusal."""
    r = CliRunner().invoke(app, ["train", str(two_class), "--model", "test_resnet", "--no-pretrained", "--out",
                                 str(two_class / "runs")])
    assert r.exit_code == 2 and r.output.rstrip().splitlines()[-1].startswith(
        f"error: output {two_class / 'runs'} is inside the input folder"), r.output
    assert "scanning images" not in r.output and "random init" not in r.output, r.output
    assert len(r.output.strip().splitlines()) == 2 and not (two_class / "runs").exists(), r.output


def test_an_out_in_the_real_folder_of_a_symlinked_class_folder_makes_nothing_there(tmp_path):
    """sym/cat -> raw/cat, `train sym --out raw/cat --name X`: refused (the run folder inside an input image's real
    folder) only after the run folder was made, so an empty raw/cat/X was left in the user's images (and the same
    command said 'already exists'). Refused before the images are scanned, nothing made."""
    raw = make_image_folder(tmp_path / "raw", {"cat": 5, "dog": 5}, size=(32, 32))
    sym = tmp_path / "sym"
    sym.mkdir()
    for c in ("cat", "dog"):
        (sym / c).symlink_to(raw / c, target_is_directory=True)
    before = sorted(p.relative_to(raw) for p in raw.rglob("*"))
    for out in (raw / "cat", raw / "dog" / "runs"):
        r = CliRunner().invoke(app, ["train", str(sym), "--model", "test_resnet", "--no-pretrained", "--out", str(out),
                                     "--name", "X", "--device", "cpu", "--workers", "0"])
        assert r.exit_code == 2 and r.output.rstrip().splitlines()[-1].startswith(
            f"error: output {out} is inside the input folder {raw / out.relative_to(raw).parts[0]} (the real folder "
            f"of {sym / out.relative_to(raw).parts[0]}); choose --out outside it"), r.output
        assert "scanning images" not in r.output, r.output
    assert sorted(p.relative_to(raw) for p in raw.rglob("*")) == before


@pytest.mark.parametrize("case", ["no label column", "no such --target", "--folds without a fold column"])
def test_a_data_table_train_refuses_is_refused_before_the_images_are_scanned(two_class, tmp_path, case):
    """A table train refuses (no label column, a --target that is no column, --folds without a fold column) was
    refused only after every image it lists was scanned (minutes on a large set) and, for --folds, the starting
    weights were loaded. train.run.check_data runs on the table as read, before the scan (and again on the scanned
    rows, whose unreadable ones are left out)."""
    rows = pd.DataFrame({"path": [str(p) for p in sorted(two_class.rglob("*.png"))]})
    rows["label"] = [Path(p).parent.name for p in rows["path"]]
    extra, words = [], ""
    if case == "no label column":
        rows = rows.rename(columns={"label": "painter"})
        words = "has no labels (no column label, class or target)"
    elif case == "no such --target":
        extra, words = ["--target", "artist"], "--target artist: the data has no such column"
    else:
        extra, words = ["--folds", "all"], "--folds needs a `fold` column"
    rows.to_csv(tmp_path / "t.csv", index=False)
    r = CliRunner().invoke(app, ["train", str(tmp_path / "t.csv"), "--model", "test_resnet", "--no-pretrained",
                                 "--out", str(tmp_path / "runs"), *extra])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and words in said, r.output
    assert "scanning images" not in r.output and "random init" not in r.output, r.output
    assert not (tmp_path / "runs").exists()


def test_a_folder_as_config_is_named_as_a_folder(tmp_path):
    """`imgcls train data --config outputs/runs/RUN` (the run folder where its config.yaml goes) said "config file
    outputs/runs/RUN does not exist": it does, as a folder. One line now says it is a folder and names the
    config.yaml (a study's best_config.yaml) in it; tune's --config the same."""
    import yaml
    run, study, other = tmp_path / "runs" / "r1", tmp_path / "tune" / "s1", tmp_path / "notes"
    for d in (run, study, other):
        d.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"epochs": 3}))
    (study / "best_config.yaml").write_text(yaml.safe_dump({"epochs": 3}))
    for folder, fix in ((run, f"give the config.yaml in it: {run / 'config.yaml'}"),
                        (study, f"give the best_config.yaml in it: {study / 'best_config.yaml'}"),
                        (other, "give a config.yaml written by imgcls train (or imgcls tune's best_config.yaml)")):
        for command in ("train", "tune"):
            r = CliRunner().invoke(app, [command, str(tmp_path), "--out", str(tmp_path / "out"), "--config",
                                         str(folder)])
            line = " ".join(r.output.split())
            assert r.exit_code == 2 and f"config file {folder} is a folder; {fix}" in line, line
            assert "does not exist" not in line and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_default_source_is_used(tmp_path, monkeypatch):
    make_image_folder(tmp_path / "data" / "raw", {"a": 6, "b": 6}, size=(40, 40))
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["train", "--model", "test_resnet", "--img-size", "32", "--epochs", "1", "--workers",
                                 "0", "--val-split", "0.3", "--name", "d", "--no-pretrained", "--no-plots"])
    assert r.exit_code == 0, r.output
    assert "using data/raw" in r.output and (tmp_path / "outputs" / "runs" / "d" / "best.pt").is_file()


@pytest.mark.parametrize("gpu_aug", ["off", "on"])
def test_cache_modes_give_the_same_run(two_class, tmp_path, monkeypatch, gpu_aug):
    # either augmentation path gives the same run from a RAM cache, a disk memmap or the files (--gpu-aug on with
    # --cache none: uint8 batches from the file loader, augmented batched like batches cut from the cache)
    from imgcls.train import data as tdata
    memmaps, file_reads = [], []
    real_decode, real_get = tdata.decode_cache, tdata.FileImages.__getitem__
    monkeypatch.setattr(tdata, "decode_cache", lambda *a, **kw: (      # (not --fill auto's sample of a few images)
        kw.get("what") == "sampling the fill colour" or memmaps.append(kw.get("memmap")), real_decode(*a, **kw))[1])
    monkeypatch.setattr(tdata.FileImages, "__getitem__", lambda self, i: (file_reads.append(i), real_get(self, i))[1])
    runs = {c: run_train(cfg_for(two_class, tmp_path, name=c, cache=c, epochs=1, aug="medium", gpu_aug=gpu_aug))
            for c in ("ram", "disk", "none")}
    # ram: one in-memory decode; disk: one decode into <run>/cache.npy; none: no cache, files read per item
    assert memmaps[0] is None and memmaps[1] == runs["disk"] / "cache.npy" and len(memmaps) == 2
    assert len(file_reads) == 20                                # 1 epoch: every train + val image once
    assert not (runs["disk"] / "cache.npy").exists()          # the memmap is removed at the end
    ref = read_checkpoint(runs["ram"] / "last.pt")["state_dict"]
    for c in ("disk", "none"):
        sd = read_checkpoint(runs[c] / "last.pt")["state_dict"]
        assert all(torch.allclose(sd[k].float(), ref[k].float(), atol=1e-5) for k in ref), c


@pytest.mark.parametrize("stop", [KeyboardInterrupt, KeyError])
def test_disk_cache_is_removed_when_the_run_stops_early(two_class, tmp_path, stop):
    """--cache disk's <run>/cache.npy (as large as the decoded images) was removed only by a run that finished: Ctrl-C,
    an error or a tune trial pruned by its callback left it in the run folder. Now it goes however the run ends."""
    from imgcls.train.callbacks import Callback

    class Stop(Callback):
        def on_epoch_end(self, epoch, logs):
            raise stop("stop")

    with pytest.raises(stop):
        run_train(cfg_for(two_class, tmp_path, name="s", cache="disk", epochs=3), callbacks=[Stop()])
    run = tmp_path / "runs" / "s"
    assert (run / "last.pt").is_file() and not (run / "cache.npy").exists()


@pytest.mark.parametrize("workers", [0, 1])
def test_cache_none_skips_an_image_that_breaks_after_the_run_starts(two_class, tmp_path, monkeypatch, capsys,
                                                                    workers):
    # --cache none reads the files every epoch: one that breaks or goes after the scan is skipped as the decoded-image
    # cache skips it (named once, the run goes on), not a traceback (with --workers, torch's re-raised RuntimeError)
    from pathlib import Path
    from imgcls.train.loop import Trainer
    broken = {}
    real_setup = Trainer.setup

    def setup_then_break(self):
        real_setup(self)
        d = self.data
        broken["train"], broken["val"] = Path(d.paths[d.train_idx[0]]), Path(d.paths[d.val_idx[0]])
        broken["train"].write_bytes(b"\0" * broken["train"].stat().st_size)      # same size: no rescan sees it
        broken["val"].unlink()
        broken["n_val"] = len(d.val_idx)

    monkeypatch.setattr(Trainer, "setup", setup_then_break)
    run = run_train(cfg_for(two_class, tmp_path, cache="none", workers=workers, batch_size=4))
    said = " ".join(capsys.readouterr().err.split())
    assert said.count(f"skipped unreadable image {broken['train']}: not an image") == 1     # once over 2 epochs
    assert said.count(f"skipped unreadable image {broken['val']}: file not found") == 1
    assert list(metrics(run)["epoch"]) == [1, 2]
    vp = pd.read_csv(run / "val_predictions.csv", keep_default_na=False)
    assert len(vp) == broken["n_val"] - 1
    assert broken["val"].resolve() not in {(Path(r) / p).resolve() for r, p in zip(vp["root"], vp["path"])}


def test_cache_none_reads_a_big_jpeg_as_the_cache_and_predict_do(tmp_path):
    """--cache none decoded a JPEG at full size while the decoded-image cache and predict decode it at a reduced DCT
    scale (draft): a --cache none run's validation scores and val_predictions.csv were of other pixels than predict
    --tta none gives the same image (lite0, 48 px, a 300x220 JPEG: probabilities 1.3e-2 apart)."""
    from PIL import Image

    from imgcls import io as imgio
    from imgcls.train import data as tdata
    rng = np.random.default_rng(0)
    path = tmp_path / "big.jpg"
    Image.fromarray(rng.integers(0, 256, (192, 256, 3), dtype=np.uint8)).save(path, quality=90)
    mean = std = (0.5, 0.5, 0.5)
    images, errors = tdata.decode_cache([path], 32)
    assert errors == [""]
    cached = tdata.CachedImages(images, np.zeros((1, 1)), mean, std)[0][0]
    from_file = tdata.FileImages([path], np.zeros((1, 1)), 32, "squash", "bilinear", mean, std)[0][0]
    meta = {"model": "m", "classes": ["a"], "heads": [{"name": "label", "classes": ["a"]}], "decode": "single",
            "img_size": 32, "mean": list(mean), "std": list(std)}
    predicted = tdata.eval_transform(meta)(imgio.load_rgb(path, draft=(32, 32)))     # predict --tta none's input
    full = tdata.eval_transform(meta)(imgio.load_rgb(path))
    assert not torch.allclose(full, predicted, atol=1e-3)      # the draft decode is other pixels: not vacuous
    assert torch.allclose(cached, predicted, atol=1e-6)
    assert torch.allclose(from_file, predicted, atol=1e-6)


def test_resize_modes_and_eval_transform():
    from PIL import Image
    from imgcls.train.data import eval_transform
    im = Image.new("RGB", (60, 30), (0, 0, 0))
    meta = {"model": "test_resnet", "classes": ["a", "b"], "heads": [{"name": "label", "classes": ["a", "b"]}],
            "decode": "single", "img_size": 24, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear"}
    outs = {m: eval_transform(dict(meta, resize_mode=m))(im) for m in ("squash", "crop", "pad")}
    for x in outs.values():
        assert x.shape == (3, 24, 24) and x.dtype == torch.float32
    assert outs["squash"].max() == -1 and outs["crop"].max() == -1   # black everywhere
    assert outs["pad"][:, 0, :].min() == 1 and outs["pad"][:, 12, :].max() == -1   # white bands above / below


def test_resize_mode_and_interpolation_act_in_a_run(tmp_path):
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 8}, size=(64, 24))     # wide: squash != crop != pad
    kw = dict(epochs=1, lr=0.0, scheduler="none")
    runs = {(m, i): run_train(cfg_for(src, tmp_path, name=f"{m}_{i}", resize_mode=m, interpolation=i, **kw))
            for m, i in (("squash", "bilinear"), ("crop", "bilinear"), ("pad", "bilinear"), ("squash", "nearest"))}
    losses = {k: metrics(r)["val_loss"][0] for k, r in runs.items()}
    assert len({round(v, 6) for v in losses.values()}) == 4      # each one feeds the model other pixels
    for (m, i), r in runs.items():
        meta = read_checkpoint(r / "best.pt")["meta"]
        assert (meta["resize_mode"], meta["interpolation"]) == (m, i)   # what predict will resize with


def test_multi_heads_with_vertical_cutmix_and_focal(tmp_path):
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    run = run_train(cfg_for(src, tmp_path, name="mv", heads="multi", mix="cutmix-vertical", mix_prob=1.0,
                            loss="focal", class_weights="auto", sampler="weighted", epochs=1))
    m = metrics(run)
    assert np.isfinite(m["train_loss"]).all() and len(m) == 1
    assert read_checkpoint(run / "best.pt")["meta"]["decode"] == "profile"


def test_pretrained_offline_without_weights_is_one_clear_line(two_class, tmp_path):
    r = CliRunner().invoke(app, ["train", str(two_class), "--model", "test_resnet", "--pretrained", "--img-size", "32",
                                 "--epochs", "1", "--workers", "0", "--out", str(tmp_path / "runs")])
    assert r.exit_code == 2 and "--weights" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "runs").exists()          # failed before the run folder and the image cache
    r = CliRunner().invoke(app, ["train", str(two_class), "--model", "test_resnet", "--weights", str(tmp_path / "no.pt"),
                                 "--epochs", "1", "--workers", "0", "--out", str(tmp_path / "runs")])
    assert r.exit_code == 2 and "no.pt does not exist" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "runs").exists()


def test_channels_last_deterministic_and_compile_act(two_class, tmp_path, monkeypatch):

    import imgcls.train.loop as loop
    seen = {}
    real_build = loop.build_model

    def spying_build(*a, **k):
        m = real_build(*a, **k)

        def hook(mod, args):
            if mod.training:
                x = args[0]
                seen.setdefault("input_channels_last", x.is_contiguous(memory_format=torch.channels_last))
                seen.setdefault("weight_channels_last",
                                mod.conv1[0].weight.is_contiguous(memory_format=torch.channels_last))
                seen.setdefault("deterministic", torch.are_deterministic_algorithms_enabled())
        m.register_forward_pre_hook(hook)
        return m
    monkeypatch.setattr(loop, "build_model", spying_build)
    steps = []
    real_update = loop.Trainer._update
    monkeypatch.setattr(loop.Trainer, "_update", lambda self, *a: (steps.append(1), real_update(self, *a)))
    # four runs check the four options (a run is most of the time): --deterministic, --no-channels-last, --compile
    # and the plain run
    # --deterministic: deterministic algorithms while training (restored afterwards), and two runs agree bit for bit;
    # --no-channels-last: neither the model nor the batches are channels_last
    # (one epoch: 14 training images, batch 8 -> two updates, the second from weights the first moved)
    runs = [run_train(cfg_for(two_class, tmp_path, name=f"det{i}", epochs=1, deterministic=True, aug="medium",
                              channels_last=False)) for i in range(2)]
    assert seen["deterministic"] and not torch.are_deterministic_algorithms_enabled()
    assert not seen["input_channels_last"] and not seen["weight_channels_last"]
    a, b = (read_checkpoint(r / "last.pt")["raw_state_dict"] for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # --compile: training goes through torch.compile's wrapper (eager backend here: inductor's C++ build takes
    # ~100 s on this CPU; measured in docs/BENCHMARKS.md), checkpoints keep the plain parameter names
    real_compile = torch.compile
    calls = []

    def eager_compile(model, **kw):
        calls.append(model)
        return real_compile(model, backend="eager")
    monkeypatch.setattr(torch, "compile", eager_compile)
    seen.clear()
    steps.clear()
    run = run_train(cfg_for(two_class, tmp_path, name="compiled", epochs=2, compile=True, val_split=0.25))
    assert len(calls) == 1 and "input_channels_last" in seen
    assert not any(k.startswith("_orig_mod") for k in read_checkpoint(run / "last.pt")["raw_state_dict"])
    # static shapes: 15 train images, batch 8 -> one full batch an epoch (the partial 7 dropped, as timm does);
    # the compile time is reported apart: in train.log and metrics.csv (the first epoch of the process)
    assert len(steps) == 2
    m = metrics(run)
    assert m["compile_seconds"].iloc[0] >= 0 and m["compile_seconds"].iloc[1] == 0
    assert "torch.compile: " in (run / "train.log").read_text() and "partial last batch dropped" in \
        (run / "train.log").read_text()
    # --channels-last: the model and every batch are in channels_last memory format; without --compile the partial
    # batch trains
    seen.clear()
    steps.clear()
    run_train(cfg_for(two_class, tmp_path, name="plain", epochs=1, val_split=0.25, channels_last=True))
    assert seen == {"input_channels_last": True, "weight_channels_last": True, "deterministic": False}
    assert len(steps) == 2


def test_optimizers_use_fused_kernels_and_fall_back(monkeypatch):
    import timm
    import timm.optim
    from imgcls.train.optim import make_optimizer
    model = timm.create_model("test_resnet", num_classes=2)
    for name in ("adamw", "adam", "sgd"):
        assert make_optimizer(model, TrainConfig(optimizer=name)).defaults["fused"] is True, name
    real = timm.optim.create_optimizer_v2

    def no_fused(*a, **kw):
        if kw.get("fused"):
            raise RuntimeError("fused kernels are not supported on this device")
        return real(*a, **kw)
    monkeypatch.setattr(timm.optim, "create_optimizer_v2", no_fused)
    opt = make_optimizer(model, TrainConfig(optimizer="adamw", lr=0.01))
    assert not opt.defaults["fused"] and opt.defaults["lr"] == 0.01


def test_scikit_learn_loads_while_the_cache_decodes_in_worker_processes(tmp_path, monkeypatch):
    """With decoding processes, train imports scikit-learn (its fallback split, every epoch's scores) while they
    decode the image cache instead of after; the run is the same as without them."""
    import imgcls.metrics
    calls = []
    real = imgcls.metrics.import_libraries
    monkeypatch.setattr(imgcls.metrics, "import_libraries", lambda: calls.append(1) or real())
    src = make_image_folder(tmp_path / "raw", {"a": 20, "b": 20}, size=(40, 40))     # two chunks of 32
    two = run_train(cfg_for(src, tmp_path, name="two", epochs=1, workers=2))
    assert calls == [1]
    one = run_train(cfg_for(src, tmp_path, name="one", epochs=1, workers=0))
    assert calls == [1]
    cols = ["val_loss", "val_macro_f1"]
    pd.testing.assert_frame_equal(metrics(two)[cols], metrics(one)[cols])


def test_auto_workers_amp_and_device_are_resolved_into_the_config(two_class, tmp_path):
    """config.yaml recorded --device as typed (auto), not the device the run trained on; device_used records it
    (cpu, cuda:0), as workers_used / amp_used record theirs, and a resumed session records its own."""
    import os

    import yaml
    from imgcls.train import default_workers
    run = run_train(cfg_for(two_class, tmp_path, name="auto", epochs=1, workers=None, amp=None, device="auto"))
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["workers"] is None and saved["amp"] is None       # not given: resolved again where reused
    assert saved["workers_used"] == 0 and saved["amp_used"] is False        # CPU + decoded-image cache
    assert saved["device"] == "auto" and saved["device_used"] == "cpu"
    TrainConfig(device_used="cuda:0").save(tmp_path / "gpu.yaml")          # resumed on another machine
    assert TrainConfig(device_used="cpu").record_session(tmp_path / "gpu.yaml") == {"device_used": ("cuda:0", "cpu")}
    assert TrainConfig.load(tmp_path / "gpu.yaml").device_used == "cpu"
    assert default_workers("cpu", "none") == default_workers("cuda", "ram") == min(8, os.cpu_count())


def test_sam_step_equals_its_formula():
    from imgcls.train.sam import SAM
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)
    w0 = torch.randn(3, 5, generator=g)
    loss_at = lambda w: torch.nn.functional.cross_entropy(x @ w.T, y)
    for adaptive in (False, True):
        w = torch.nn.Parameter(w0.clone())
        opt = SAM(torch.optim.SGD([w], lr=0.1), rho=0.05, adaptive=adaptive)
        loss_at(w).backward()
        g1 = w.grad.clone()
        assert opt.perturb() and w.grad is None
        e = 0.05 * (w0 ** 2 * g1 / (w0.abs() * g1).norm() if adaptive else g1 / g1.norm())
        assert torch.allclose(w.detach(), w0 + e, atol=1e-6)
        loss_at(w).backward()
        opt.unperturb()
        assert torch.allclose(w.detach(), w0, atol=1e-6)
        wa = (w0 + e).requires_grad_()
        loss_at(wa).backward()
        opt.step()
        assert torch.allclose(w.detach(), w0 - 0.1 * wa.grad, atol=1e-6), adaptive   # gradient at w + e, from w
        assert opt.state_dict()["param_groups"][0]["lr"] == 0.1
    opt.perturb()
    with pytest.raises(RuntimeError, match="unperturb"):
        opt.step()


def test_frozen_bn_stats_keeps_running_statistics():
    from imgcls.train.sam import frozen_bn_stats
    bn = torch.nn.BatchNorm1d(4).train()
    bn(torch.randn(8, 4))
    mean, var, n = bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked)
    with frozen_bn_stats(bn):
        out = bn(torch.randn(8, 4) * 3 + 1)
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    assert int(bn.num_batches_tracked) == n and bn.momentum == 0.1
    assert out.mean(0).abs().max() < 1e-5                      # still normalised with the batch's statistics
    bn(torch.randn(8, 4))
    assert not torch.equal(bn.running_mean, mean)


def test_optimizer_sam_trains_with_two_passes_per_update(adamw_run, tmp_path, monkeypatch):
    import yaml
    from imgcls.train import sam as sam_mod
    perturbs = []
    real = sam_mod.SAM.perturb
    monkeypatch.setattr(sam_mod.SAM, "perturb",
                        lambda self: (perturbs.append((self.rho, self.adaptive)), real(self))[1])
    two_class, a = adamw_run                                    # the same data, adamw alone
    s = run_train(cfg_for(two_class, tmp_path, name="sam", epochs=1, val_split=0.2, optimizer="sam"))
    assert perturbs == [(0.05, False)] * 2                      # 16 train images, batch 8: 2 updates
    ck = read_checkpoint(s / "last.pt")
    assert int(next(iter(ck["train_state"]["optimizer"]["state"].values()))["step"]) == 2
    # BatchNorm counted each batch once, not once per pass
    assert int(ck["raw_state_dict"]["bn1.num_batches_tracked"]) == 2
    assert not torch.equal(ck["raw_state_dict"]["fc.weight"],
                           read_checkpoint(a / "last.pt")["raw_state_dict"]["fc.weight"])
    saved = yaml.safe_load((s / "config.yaml").read_text())
    assert (saved["optimizer"], saved["sam_base"], saved["sam_rho"]) == ("sam", "adamw", 0.05)
    assert "SAM (rho 0.05) over adamw" in (s / "train.log").read_text()
    # with --grad-accum 2 one perturbation from the accumulated gradient, then both batches again
    perturbs.clear()
    g = run_train(cfg_for(two_class, tmp_path, name="sam_acc", epochs=1, val_split=0.2, optimizer="sam",
                          sam_base="sgd", sam_adaptive=True, sam_rho=0.5, grad_accum=2))
    ck = read_checkpoint(g / "last.pt")
    assert perturbs == [(0.5, True)] and int(ck["raw_state_dict"]["bn1.num_batches_tracked"]) == 2
    assert "momentum_buffer" in next(iter(ck["train_state"]["optimizer"]["state"].values()))
    # resume equals uninterrupted under SAM too
    kw = dict(epochs=2, optimizer="sam", val_split=0.2)
    full = run_train(cfg_for(two_class, tmp_path, name="sam_full", **kw))
    part = run_train(cfg_for(two_class, tmp_path, name="sam_part", **kw), stop_after=1)
    run_train(TrainConfig.load(part / "config.yaml"), resume=part)
    fa, fb = read_checkpoint(full / "last.pt")["raw_state_dict"], read_checkpoint(part / "last.pt")["raw_state_dict"]
    assert all(torch.equal(fa[k], fb[k]) for k in fa)


def test_bad_choices_are_one_line_before_any_data_is_read(two_class, tmp_path, monkeypatch):
    import imgcls.manifest as mf
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    for flags, msg in ((["--optimizer", "sam", "--sam-base", "lionn"], "--sam-base 'lionn' (did you mean lion"),
                       (["--optimizer", "sam", "--sam-rho", "0"], "--sam-rho must be > 0"),
                       (["--sampler", "balanced"], "--sampler 'balanced'"),
                       (["--branch", "wide"], "--branch 'wide'"),
                       (["--scheduler", "step"], "--scheduler 'step'"),
                       (["--loss", "dice"], "--loss 'dice'"),
                       (["--mix-prob", "1.5"], "--mix-prob must be between 0 and 1"),
                       (["--mix-alpha", "0"], "--mix-alpha must be > 0"),
                       (["--interpolation", "lanczos"], "--interpolation 'lanczos'"),
                       (["--momentum", "1.2"], "--momentum must be in [0, 1)"),
                       (["--ema", "--ema-decay", "1"], "--ema-decay must be in [0, 1)"),
                       (["--folds", "x"], "--folds 'x': use all, a fold number K or a list K,L"),
                       (["--folds", "0,-1"], "--folds '0,-1': use all")):
        r = CliRunner().invoke(app, ["train", str(two_class), "--model", "test_resnet", "--out", str(tmp_path / "runs"),
                                     "--device", "cpu", *flags])
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output, (flags, r.output)
        assert len(r.output.strip().splitlines()) == 1, r.output


def test_a_bad_folds_value_names_split_s_python_call_to_a_python_caller(two_class, tmp_path):
    """run_train(TrainConfig(folds='x')) was told where fold numbers come from as a command only ("imgcls split
    --folds"): its run_split call follows it, for both callers."""
    from imgcls.errors import UserError
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(two_class), out=str(tmp_path / "runs"), folds="x"))
    assert str(e.value) == ("--folds 'x': use all, a fold number K or a list K,L (e.g. --folds all, --folds 0, "
                            "--folds 0,2): the fold column's numbers from imgcls split --folds N "
                            "(Python: run_split(cfg=SplitConfig(folds=N)))")


def test_a_fold_named_twice_in_folds_is_one_line_before_any_data_is_read(two_class, tmp_path, monkeypatch):
    """`train --folds 0,0` trained fold 0 twice into one fold_0 folder and wrote an "out-of-fold macro-F1 over 2
    folds" of 120 rows that were 60 images, each counted twice. A fold named twice is refused, as a bad value."""
    import imgcls.manifest as mf
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    r = CliRunner().invoke(app, ["train", str(two_class), "--model", "test_resnet", "--out", str(tmp_path / "runs"),
                                 "--no-pretrained", "--folds", "0,2,0"])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert r.output.strip() == "error: --folds '0,2,0' names fold 0 twice: name each fold once (e.g. --folds 0,2)"
    assert not (tmp_path / "runs").exists()


def test_folds_without_a_fold_column_gives_a_split_command_that_works_as_typed(tmp_path, monkeypatch):
    """DACON's way: `split train.csv` (no data/raw, data/clean, data/processed in the working folder), then
    `train data/splits.csv --folds all`. The refusal told to run a bare `imgcls split --folds 5`, which reads only
    those default inputs: typed, it failed (no input given to split). The table is split into a file beside it and
    train is told to train on that file; both lines run as typed."""
    import shlex
    import re
    from imgcls import manifest as mf
    df = mf.load(make_image_folder(tmp_path / "imgs", {"a": 6, "b": 6}, size=(32, 32)))
    df["split"] = np.where(np.arange(len(df)) % 4 == 0, "val", "train")
    df["drop_reason"] = ""
    mf.write(df, tmp_path / "data" / "splits.csv")          # split's table, its source not a pipeline stage
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["train", "data/splits.csv", "--folds", "all", "--model", "test_resnet",
                                 "--no-pretrained", "--device", "cpu"])
    assert r.exit_code == 2 and "--folds needs a `fold` column" in r.output, r.output
    said = " ".join(r.output.split())
    split_cmd = re.search(r"run (imgcls split .+?) \(Python", said).group(1)
    train_cmd = re.search(r"train on its table: (imgcls train .+?) \(Python", said).group(1)
    r = CliRunner().invoke(app, shlex.split(split_cmd)[1:] + ["--no-near-dup", "--quiet"])
    assert r.exit_code == 0, (split_cmd, r.output)
    table = shlex.split(train_cmd)[2]
    assert table != "data/splits.csv" and "fold" in pd.read_csv(table).columns, (split_cmd, train_cmd)


def test_sam_under_a_grad_scaler_takes_the_same_step():
    """The loop's AMP order (scaled backward, perturb, scaled backward, unperturb, scaler.step): the loss scale
    does not change SAM's perturbation and the scaler unscales before the base step."""
    from imgcls.train.sam import SAM
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)
    w0 = torch.randn(3, 5, generator=g)
    out = []
    for scale in (None, 2.0 ** 12):
        w = torch.nn.Parameter(w0.clone())
        opt = SAM(torch.optim.SGD([w], lr=0.1), rho=0.05)
        scaler = torch.amp.GradScaler("cpu", init_scale=scale or 1.0, enabled=scale is not None)
        for _ in range(2):
            scaler.scale(torch.nn.functional.cross_entropy(x @ w.T, y)).backward()
            opt.perturb()
            scaler.scale(torch.nn.functional.cross_entropy(x @ w.T, y)).backward()
            opt.unperturb()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad()
        out.append(w.detach().clone())
    assert torch.allclose(out[0], out[1], atol=1e-6) and not torch.equal(out[0], w0)


def test_drop_rate_amp_seed_lr_and_weight_decay_act(two_class, tmp_path, monkeypatch):

    import imgcls.train.loop as loop
    seen = []
    real_build = loop.build_model

    def spying_build(*a, **k):
        m = real_build(*a, **k)
        m.register_forward_pre_hook(lambda mod, args: seen.append(
            (mod.training, torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))) if mod.training else None)
        return m
    monkeypatch.setattr(loop, "build_model", spying_build)
    # --amp on the CPU: training forwards run under bf16 autocast; --no-amp: none (one run checks --amp and
    # --drop-rate: neither touches what the other's check reads)
    run = run_train(cfg_for(two_class, tmp_path, name="amp_drop", epochs=1, amp=True, drop_rate=0.5))
    assert seen and all(s[1] and s[2] == torch.bfloat16 for s in seen)
    seen.clear()
    base = run_train(cfg_for(two_class, tmp_path, name="base", epochs=1, amp=False))
    assert seen and not any(s[1] for s in seen)
    # --drop-rate: recorded and active in training mode (two forwards of one input differ), off in eval
    lm = load_model(find_checkpoints(run)[0])
    assert lm.meta.drop_rate == 0.5
    x = torch.randn(4, 3, 32, 32)
    lm.model.train()
    assert not torch.equal(lm.model(x), lm.model(x))
    lm.model.eval()
    assert torch.equal(lm.model(x), lm.model(x))
    # --seed changes the run; --lr 0 moves no weight; --weight-decay changes the result
    sd = lambda r: read_checkpoint(r / "last.pt")["raw_state_dict"]
    ref = sd(base)
    other = sd(run_train(cfg_for(two_class, tmp_path, name="seed1", epochs=1, seed=1)))
    assert not torch.equal(other["fc.weight"], ref["fc.weight"])
    frozen = sd(run_train(cfg_for(two_class, tmp_path, name="lr0", epochs=1, lr=0.0, scheduler="none")))
    torch.manual_seed(0)
    init = loop.build_model(read_checkpoint(base / "last.pt")["meta"]).state_dict()
    assert all(torch.equal(frozen[k], init[k]) for k in ("fc.weight", "conv1.0.weight"))
    wd = sd(run_train(cfg_for(two_class, tmp_path, name="wd", epochs=1, weight_decay=0.5)))
    assert not torch.equal(wd["conv1.0.weight"], ref["conv1.0.weight"])


def test_every_config_field_is_a_cli_option(two_class, tmp_path):
    """config.yaml holds every TrainConfig field; each is also a flag of `imgcls train` (src is the argument), and a
    flag's value reaches config.yaml."""
    import dataclasses
    import typer.main
    import yaml
    cmd = typer.main.get_command(app).commands["train"]
    params = {p.name for p in cmd.params}
    from imgcls.options import specs
    records = {n for n, (_, spec) in specs(TrainConfig).items() if not spec.cli}   # what train records, not options
    assert records == {"src", *TrainConfig.RECORDS}
    # _config: read_from's, no option
    assert {f.name for f in dataclasses.fields(TrainConfig)} - records - {"src", "_config"} <= params
    r = CliRunner().invoke(app, ["train", str(two_class), "--model", "test_resnet", "--no-pretrained", "--img-size", "32",
                                 "--epochs", "1",
                                 "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "runs"), "--name", "x",
                                 "--val-split", "0.3", "--interpolation", "nearest", "--mix", "mixup",
                                 "--mix-alpha", "0.4",
                                 "--optimizer", "sgd", "--momentum", "0.5", "--min-lr", "1e-4", "--ema", "--ema-decay",
                                 "0.9", "--no-plots", "--quiet"])
    assert r.exit_code == 0, r.output
    saved = yaml.safe_load((tmp_path / "runs" / "x" / "config.yaml").read_text())
    assert (saved["interpolation"], saved["mix_alpha"], saved["momentum"], saved["min_lr"], saved["ema_decay"]) == \
        ("nearest", 0.4, 0.5, 1e-4, 0.9)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_compile_with_inductor_trains_on_the_cpu(two_class, tmp_path):
    # the real torch.compile (inductor, C++ kernels built on this CPU: ~45-55 s under load), not the eager backend
    run = run_train(cfg_for(two_class, tmp_path, name="inductor", epochs=2, compile=True, aug="medium",
                            val_split=0.25))
    m = metrics(run)
    assert m["compile_seconds"].iloc[0] > 1.0 and m["compile_seconds"].iloc[1] == 0
    assert m["epoch_seconds"].iloc[1] < m["compile_seconds"].iloc[0]      # compiled once, not per epoch
    assert np.isfinite(m["train_loss"]).all()
    lm = load_model(find_checkpoints(run)[0])                             # plain names, loads without compile
    assert lm.predict_proba(torch.rand(2, 3, 32, 32)).shape == (2, 2)


def test_ctrl_c_says_what_the_run_keeps_and_how_to_resume(two_class, tmp_path, capsys):
    """Ctrl-C during train exited 130 with nothing said; now one line: what the run folder keeps and the resume
    command (or that nothing is there yet)."""
    from imgcls.train.callbacks import Callback

    class CtrlC(Callback):
        def __init__(self, at):
            self.at = at

        def on_epoch_end(self, epoch, logs):
            if epoch == self.at:
                raise KeyboardInterrupt

        def on_step_end(self, step, logs):
            if self.at == 0:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_train(cfg_for(two_class, tmp_path, name="cut"), callbacks=[CtrlC(1)])
    run = tmp_path / "runs" / "cut"
    said = " ".join(capsys.readouterr().err.split())
    # the fix for both callers: the command, and a Python caller's run_train (--resume is no keyword of it)
    assert f"interrupted: {run} keeps the epochs finished so far (last.pt); imgcls train --resume {run} " \
           f"(Python: run_train(TrainConfig(), resume='{run}')) continues it" in said, said
    with pytest.raises(KeyboardInterrupt):
        run_train(cfg_for(two_class, tmp_path, name="early"), callbacks=[CtrlC(0)])
    said = " ".join(capsys.readouterr().err.split())
    early = tmp_path / "runs" / "early"
    # it said 'holds nothing to resume', and the same command again is refused (the folder exists): the way on is
    # --resume, which trains it from the start
    assert f"interrupted before the first epoch finished: {early} holds no finished epoch; imgcls train --resume " \
           f"{early} (Python: run_train(TrainConfig(), resume='{early}')) trains it from " \
           f"the start" in said, said
    run_train(TrainConfig.resolve(resume=early), resume=early)
    assert metrics(early)["epoch"].tolist() == [1, 2]


def test_a_crash_before_the_first_epoch_keeps_its_folder_and_runs_lists_it_as_crashed(two_class, tmp_path):
    """A crash (an exception, not a refusal) before the first epoch left config.yaml, plan.json and train.log, as it
    should (the options and the set-up's lines help find the fault; --resume trains it from the start), but
    `imgcls runs` listed it 'stopped 0/2' as it lists a Ctrl-C, and nothing in the folder said what stopped it.
    train.log's last line names the exception, and runs lists the run 'crashed 0/2', its legend pointing there."""
    from imgcls.train.callbacks import Callback

    class Crash(Callback):
        def on_run_start(self, info):
            raise RuntimeError("a bug in a callback\nits second line")

    with pytest.raises(RuntimeError, match="a bug"):
        run_train(cfg_for(two_class, tmp_path, name="crash"), callbacks=[Crash()])
    run = tmp_path / "runs" / "crash"
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "plan.json", "train.log"]
    last = (run / "train.log").read_text().splitlines()[-1]
    assert re.fullmatch(r"\S+ \S+ stopped by an exception, RuntimeError: a bug in a callback", last), last
    r = CliRunner().invoke(app, ["runs", str(tmp_path / "runs")], env={"COLUMNS": "300"})
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "crashed 0/2" in text and "stopped 0/2" not in text, r.output
    assert "'crashed 2/6': an exception stopped it (a crash, not Ctrl-C nor a refusal), after 2 of its 6 epochs: " \
           "its train.log's last line names it" in text, r.output


def test_a_k_fold_set_resumed_after_a_crash_and_stopped_again_reads_stopped_not_crashed(tmp_path):
    """A crash in fold_1 writes its line in the set's train.log, where `imgcls runs` reads it: crashed. Its folds log
    in their own train.log, so a resume that then stopped by Ctrl-C left the set's log ending on the old crash line
    (nothing else is logged there without a cache or an auto --fill), and runs still read crashed. The resume says
    in the set's log that a session goes on after it."""
    from imgcls import manifest as mf
    from imgcls.train.callbacks import Callback

    class Crash(Callback):
        def on_run_start(self, info):
            if info["fold"] == 1:
                raise RuntimeError("a bug in fold 1")

    class Stop(Callback):
        def on_epoch_end(self, epoch, logs):
            raise KeyboardInterrupt

    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "data" / "splits.csv")
    cfg = cfg_for(tmp_path / "data" / "splits.csv", tmp_path, name="kf", folds="all", cache="none",
                  fill="255,255,255")

    def state():
        r = CliRunner().invoke(app, ["runs", str(tmp_path / "runs")], env={"COLUMNS": "300"})
        return " ".join(r.output.split())

    with pytest.raises(RuntimeError, match="a bug in fold 1"):
        run_train(cfg, callbacks=[Crash()])
    assert "crashed folds done 1/2, fold_1 0/2" in state()
    with pytest.raises(KeyboardInterrupt):
        run_train(cfg, resume=str(tmp_path / "runs" / "kf"), callbacks=[Stop()])
    said = state()
    assert "stopped folds done 1/2, fold_1 1/2" in said and "crashed folds" not in said, said


def test_a_pruned_tune_trial_is_no_crash_in_its_train_log_nor_in_runs(two_class, tmp_path):
    """A tune trial Optuna pruned (optuna.TrialPruned, raised from tune's train callback) got train.log's crash line,
    'stopped by an exception, TrialPruned: ...', and `imgcls runs` read its folder (without its study's trials.csv)
    as crashed, though a pruning is a stop by design. It writes no crash line: the run reads stopped."""
    import optuna

    from imgcls.train.callbacks import Callback

    class Prune(Callback):
        def on_epoch_end(self, epoch, logs):
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")

    with pytest.raises(optuna.TrialPruned):
        run_train(cfg_for(two_class, tmp_path, name="pruned"), callbacks=[Prune()])
    log = (tmp_path / "runs" / "pruned" / "train.log").read_text()
    assert "stopped by an exception" not in log, log
    r = CliRunner().invoke(app, ["runs", str(tmp_path / "runs")], env={"COLUMNS": "300"})
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "stopped 1/2" in text and "crashed 1/2" not in text, r.output


def test_a_resume_refused_before_it_trained_leaves_a_crashed_run_crashed(two_class, tmp_path):
    """`train --resume` of a crashed run wrote its lines (its set-up's, `resumed: ... after the exception above`)
    before its first epoch; refused there (a UserError), it left the run reading 'stopped 1/2' in `imgcls runs`,
    though nothing trained. The crash line is restated last, naming the refusal: the run reads 'crashed 1/2' still,
    and again after a second refusal; a resume that trains it finishes it."""
    from imgcls.errors import UserError
    from imgcls.train.callbacks import Callback

    class Crash(Callback):
        def on_epoch_end(self, epoch, logs):
            raise RuntimeError("a bug after the first epoch")

    def state():
        return _listed(tmp_path / "runs", "state", "progress")

    with pytest.raises(RuntimeError, match="a bug"):
        run_train(cfg_for(two_class, tmp_path, name="crash"), callbacks=[Crash()])
    run = tmp_path / "runs" / "crash"
    assert state() == [("crashed", "1/2")]
    for _ in range(2):
        with pytest.raises(UserError, match="broke since the scan"):
            run_train(TrainConfig(), resume=run, callbacks=[_RefuseAtStart()])
        assert state() == [("crashed", "1/2")]
        last = (run / "train.log").read_text().splitlines()[-1]
        assert re.fullmatch(r"\S+ \S+ stopped by an exception, RuntimeError: a bug after the first epoch; resumed "
                            r"since, refused before it trained: the images broke since the scan", last), last
    run_train(TrainConfig(), resume=run)
    assert state() == [("", "2/2")]


def test_an_older_k_fold_set_s_refused_resume_reads_crashed_its_stray_fold_counting_in_neither_count(tmp_path):
    """An older k-fold set (no plan.json, --folds all) holding a stray fold_2 with an epoch, resumed after a crash
    and refused before it trained, read 'stopped': the epochs done were counted before the resume recorded the
    set's plan (fold_2 counted) and after it (fold_2 not), the counts differed, and the crash line was not restated.
    Only the folds the session trains count: the set reads crashed, its last line naming the refusal."""
    import shutil

    from imgcls import manifest as mf
    from imgcls.errors import UserError
    from imgcls.train.callbacks import Callback

    class Crash(Callback):
        def on_epoch_end(self, epoch, logs):
            raise RuntimeError("a bug after the first epoch")

    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    cfg = TrainConfig(**{**TINY, "src": str(tmp_path / "splits.csv"), "out": str(tmp_path / "runs"), "name": "kf",
                         "epochs": 2, "folds": "all", "aug": "none"})
    run = tmp_path / "runs" / "kf"
    with pytest.raises(RuntimeError, match="a bug"):
        run_train(cfg, callbacks=[Crash()])
    (run / "plan.json").unlink()            # a set trained before plan.json (and folds.json)
    (run / "fold_2").mkdir()                # another set's fold left in it: an epoch, no images of this set's
    shutil.copy(run / "fold_0" / "metrics.csv", run / "fold_2")
    shutil.copy(run / "fold_0" / "config.yaml", run / "fold_2")

    def state():
        return _listed(tmp_path / "runs", "state")
    assert state() == ["crashed"]
    with pytest.raises(UserError, match="broke since the scan"):
        run_train(TrainConfig(), resume=run, callbacks=[_RefuseAtStart()])
    assert (run / "plan.json").is_file() and state() == ["crashed"]
    last = (run / "train.log").read_text().splitlines()[-1]
    assert last.endswith("stopped by an exception, RuntimeError: a bug after the first epoch; resumed since, refused "
                         "before it trained: the images broke since the scan"), last


def test_a_refused_run_whose_tracker_run_keeps_its_folder_is_listed_refused_and_its_log_says_why(two_class,
                                                                                                   tmp_path):
    """A run refused in its first epoch whose MLflow / W&B run had started keeps its folder (the tracker's run names
    it: rundir.unclaim_run_dir), but nothing in it said why: `imgcls runs` listed it 'stopped 0/2', as a Ctrl-C.
    train.log's last line names the refusal, and runs lists it 'refused 0/2' (table, legend, --json); a resume that
    trains it reads finished."""
    from imgcls.errors import UserError
    from imgcls.track.common import record_tracker_run
    from imgcls.train.callbacks import Callback

    class TrackedThenRefused(Callback):     # as a tracker records its run at the start, then images broke
        def on_run_start(self, info):
            record_tracker_run(info["run_dir"], "mlflow", "file:store", "id0")

        def on_step_end(self, step, logs):
            raise UserError("the images broke since the scan\nits second line")

    with pytest.raises(UserError, match="broke since the scan"):
        run_train(cfg_for(two_class, tmp_path, name="refused"), callbacks=[TrackedThenRefused()])
    run = tmp_path / "runs" / "refused"
    last = (run / "train.log").read_text().splitlines()[-1]
    assert re.fullmatch(r"\S+ \S+ refused before its first epoch trained: the images broke since the scan", last), last
    r = CliRunner().invoke(app, ["runs", str(tmp_path / "runs")], env={"COLUMNS": "300"})
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "refused 0/2" in text and "stopped 0/2" not in text, r.output
    assert "'refused 0/6': a refusal stopped it before its first epoch, its folder kept for its MLflow / W&B run or " \
           "given by --exist-ok: its train.log's last line names it" in text, r.output
    r = CliRunner().invoke(app, ["runs", str(tmp_path / "runs"), "--json", "-"])
    assert [(x["name"], x["state"], x["progress"]) for x in json.loads(r.stdout)] == [("refused", "refused", "0/2")]
    with pytest.raises(UserError, match="broke since the scan"):       # a resume refused before it trained
        run_train(TrainConfig(), resume=run, callbacks=[TrackedThenRefused()])
    r = CliRunner().invoke(app, ["runs", str(tmp_path / "runs"), "--json", "-"])
    assert [(x["state"], x["progress"]) for x in json.loads(r.stdout)] == [("refused", "0/2")]
    run_train(TrainConfig(), resume=run)
    assert "resumed: this session trains it on after the refusal above" in (run / "train.log").read_text()
    r = CliRunner().invoke(app, ["runs", str(tmp_path / "runs"), "--json", "-"])
    assert [(x["name"], x["state"]) for x in json.loads(r.stdout)] == [("refused", "")]


def test_exist_ok_into_an_earlier_run_s_record_whose_checkpoints_are_gone_is_refused(two_class, tmp_path,
                                                                                     monkeypatch):
    """`train --name run --exist-ok` into a folder holding an earlier run's record whose *.pt were deleted (by hand,
    tune --keep: metrics.csv, last_state.json, plan.json... stay) trained in among those files: a Ctrl-C before its
    first epoch left the folder reading `stopped 2/3` (the old metrics.csv), its plan.json kept, and said `--resume
    trains it from the start`, which the resume refuses. Now refused in one line, --exist-ok or not, before anything
    is read or written, naming what tells of that run and the fix; a k-fold set's fold's record so too. A folder a
    crash left before its first epoch is still trained into with --exist-ok."""
    import imgcls.train.data as tdata
    from conftest import tree_snapshot
    from imgcls.errors import UserError
    from test_cli import one_error_line
    run = run_train(cfg_for(two_class, tmp_path, epochs=3), stop_after=2)
    for p in run.glob("*.pt"):
        p.unlink()
    kf = tmp_path / "runs" / "kf"
    (kf / "fold_0").mkdir(parents=True)
    (kf / "fold_0" / "metrics.csv").write_text("epoch,val_macro_f1\n1,0.5\n")
    (kf / "config.yaml").write_text("model: test_resnet\nfolds: all\nepochs: 2\n")     # a k-fold set's record
    before = tree_snapshot(tmp_path)
    monkeypatch.setattr(tdata, "plan_cache", lambda *a, **k: pytest.fail("the images were decoded before the check"))
    for name, record in (("run", "metrics.csv records 2 epochs"), ("kf", "fold_0/metrics.csv records 1 epoch")):
        for exist_ok in (["--exist-ok"], []):
            line = one_error_line(CliRunner().invoke(app, ["train", str(two_class), "--out", str(tmp_path / "runs"),
                                                           "--name", name, *exist_ok]))
            assert line == (f"error: run folder {tmp_path / 'runs' / name} holds an earlier run's record, its last.pt "
                            f"gone ({record}); a run is never trained over, --exist-ok or not: choose another --name "
                            f"(Python: name=), or remove the folder first"), line
    with pytest.raises(UserError, match="holds an earlier run's record"):
        run_train(cfg_for(two_class, tmp_path, epochs=3, exist_ok=True))
    assert tree_snapshot(tmp_path) == before
    monkeypatch.undo()
    from imgcls.train.callbacks import Callback

    class Crash(Callback):
        def on_step_end(self, step, logs):
            raise RuntimeError("a bug in the first epoch")

    with pytest.raises(RuntimeError, match="a bug"):
        run_train(cfg_for(two_class, tmp_path, name="x"), callbacks=[Crash()])
    assert run_train(cfg_for(two_class, tmp_path, name="x", exist_ok=True, epochs=1)).name == "x"


def test_an_exist_ok_run_refused_in_a_kept_folder_reads_refused_not_its_earlier_state(two_class, tmp_path):
    """`--name X --exist-ok` into a folder a run crashed in before its first epoch, refused once it had written its
    config.yaml and set-up lines there (a refusal after the claim), wrote no refusal line: `imgcls runs` read the
    folder 'stopped 0/3', the earlier crash gone and the refusal unsaid. train.log's last line names the refusal
    and the run reads 'refused 0/3'. A refusal before the folder is touched changes nothing: it reads as before."""
    from conftest import tree_snapshot
    from imgcls.errors import UserError
    from imgcls.train.callbacks import Callback

    class Crash(Callback):
        def on_step_end(self, step, logs):
            raise RuntimeError("a bug in the first epoch")

    def state():
        return _listed(tmp_path / "runs", "state", "progress")

    with pytest.raises(RuntimeError, match="a bug"):
        run_train(cfg_for(two_class, tmp_path, name="x"), callbacks=[Crash()])
    run = tmp_path / "runs" / "x"
    assert state() == [("crashed", "0/2")]
    before = tree_snapshot(run)
    with pytest.raises(UserError, match="fold"):        # refused before the folder is touched: read as before
        run_train(cfg_for(two_class, tmp_path, name="x", exist_ok=True, epochs=3, folds="all"))
    assert tree_snapshot(run) == before and state() == [("crashed", "0/2")]
    with pytest.raises(UserError, match="broke since the scan"):
        run_train(cfg_for(two_class, tmp_path, name="x", exist_ok=True, epochs=3), callbacks=[_RefuseAtStart()])
    assert state() == [("refused", "0/3")]
    last = (run / "train.log").read_text().splitlines()[-1]
    assert re.fullmatch(r"\S+ \S+ refused before its first epoch trained: the images broke since the scan", last), last


def test_ctrl_c_before_the_first_epoch_says_the_same_command_is_refused_only_where_it_is(two_class, tmp_path,
                                                                                          capsys):
    """Stopped before its first epoch, a run said `the same command again is refused: the folder exists` of every
    run: one named by its start time (no --name) is not refused, the same command starts another run, and a resume's
    same command (--resume RUN) is the way on it named. It is said of a run given --name alone."""
    from imgcls.train.callbacks import Callback

    class CtrlC(Callback):
        def on_step_end(self, step, logs):
            raise KeyboardInterrupt

    refused = "(the same command again is refused: the folder exists)"
    for name in ("named", None):
        with pytest.raises(KeyboardInterrupt):
            run_train(cfg_for(two_class, tmp_path, name=name), callbacks=[CtrlC()])
        said = " ".join(capsys.readouterr().err.split())
        assert "interrupted before the first epoch finished" in said and (refused in said) == (name is not None), said
    run = tmp_path / "runs" / "named"
    with pytest.raises(KeyboardInterrupt):
        run_train(TrainConfig.resolve(resume=run), resume=run, callbacks=[CtrlC()])
    said = " ".join(capsys.readouterr().err.split())
    assert "interrupted before the first epoch finished" in said and refused not in said, said


def test_ctrl_c_before_the_first_epoch_of_an_exist_ok_run_does_not_say_the_same_command_is_refused(two_class,
                                                                                                   tmp_path, capsys):
    """`--name X --exist-ok` stopped before its first epoch said `the same command again is refused: the folder
    exists`, yet the same command trains into the folder again (it holds no finished epoch): not said of it."""
    from imgcls.train.callbacks import Callback

    class CtrlC(Callback):
        def on_step_end(self, step, logs):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_train(cfg_for(two_class, tmp_path, name="named", exist_ok=True), callbacks=[CtrlC()])
    said = " ".join(capsys.readouterr().err.split())
    assert "interrupted before the first epoch finished" in said and "is refused" not in said, said
    assert run_train(cfg_for(two_class, tmp_path, name="named", exist_ok=True, epochs=1)).name == "named"


def test_ctrl_c_before_a_k_fold_set_s_first_epoch_counts_no_fold_folder_outside_its_plan(tmp_path, capsys):
    """Ctrl-C said a k-fold set `keeps the epochs finished so far` where any fold_<k> folder held a last.pt: a fold_2
    copied into a 2-fold set that had trained no epoch, no fold of it (rundir.set_fold_dirs: its resume trains
    none of it), made a set interrupted before its first epoch read as one with epochs kept. Only its planned
    folds' last.pt count."""
    import shutil

    from imgcls import manifest as mf
    from imgcls.train.callbacks import Callback

    class CtrlC(Callback):
        def on_step_end(self, step, logs):
            raise KeyboardInterrupt

    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    cfg = TrainConfig(**{**TINY, "src": str(tmp_path / "splits.csv"), "out": str(tmp_path / "runs"), "name": "kf",
                         "epochs": 1, "folds": "all", "aug": "none"})
    run_train(cfg, stop_after=1)                                    # another set's finished fold, to copy in
    shutil.copytree(tmp_path / "runs" / "kf" / "fold_0", tmp_path / "fold_2")
    shutil.rmtree(tmp_path / "runs" / "kf")
    with pytest.raises(KeyboardInterrupt):
        run_train(cfg, callbacks=[CtrlC()])
    run = tmp_path / "runs" / "kf"
    shutil.copytree(tmp_path / "fold_2", run / "fold_2")
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt):
        run_train(TrainConfig.resolve(resume=run), resume=run, callbacks=[CtrlC()])
    said = " ".join(capsys.readouterr().err.split())
    assert f"interrupted before the first epoch finished: {run} holds no finished epoch" in said, said


def test_ctrl_c_while_decoding_says_resume_not_the_same_command(two_class, tmp_path, capsys, monkeypatch):
    """Ctrl-C while the decoded-image cache was built (before the first fold started) left the run folder with its
    config.yaml and said the CLI's general `run the same command again`, which `--name` then refused (the folder
    exists). The line names the folder and --resume, which trains it from the start."""
    from imgcls.train import data as tdata
    decode = tdata.decode_cache

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(tdata, "decode_cache", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run_train(cfg_for(two_class, tmp_path, name="decoding", cache="ram"))
    run = tmp_path / "runs" / "decoding"
    said = " ".join(capsys.readouterr().err.split())
    assert f"interrupted before the first epoch finished: {run} holds no finished epoch; imgcls train --resume " \
           f"{run} (Python: run_train(TrainConfig(), resume='{run}')) trains it from the " \
           f"start" in said, said
    monkeypatch.setattr(tdata, "decode_cache", decode)
    run_train(TrainConfig.resolve(resume=run), resume=run)
    assert metrics(run)["epoch"].tolist() == [1, 2]


def test_rows_left_out_are_counted_by_why(tmp_path, capsys):
    """A split table with `split --drop-ages` rows: train said "12 rows skipped (unlabeled, unreadable or dropped by
    clean)" and did not count the 26 split had left out. Each rule's rows are counted."""
    from imgcls import manifest as mf
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 8}, size=(36, 36))
    df = mf.load(src)
    df["split"] = np.where(np.arange(len(df)) % 4 == 0, "val", "train")
    df["drop_reason"] = ""
    df["keep"] = True
    df.loc[1, "keep"] = False
    df.loc[2, "label"] = ""
    df.loc[[3, 5], "drop_reason"] = "age 58 in --drop-ages 57-59"
    df.loc[[3, 5], "split"] = ""
    mf.write(df, tmp_path / "data" / "splits.csv")
    run = run_train(cfg_for(tmp_path / "data" / "splits.csv", tmp_path, name="left", epochs=1))
    said = " ".join(capsys.readouterr().err.split())
    assert "4 rows skipped: 1 unlabeled, 1 dropped by clean, 2 left out by split (drop_reason)" in said, said
    trained = pd.read_csv(run / "val_predictions.csv")
    assert not set(trained["path"]) & set(df.loc[[1, 2, 3, 5], "path"])
    # one row skipped is '1 row' ("1 rows skipped: 1 dropped by clean" before)
    one = df.drop(index=[2, 3, 5])
    mf.write(one, tmp_path / "data" / "one.csv")
    run_train(cfg_for(tmp_path / "data" / "one.csv", tmp_path, name="one", epochs=1))
    said = " ".join(capsys.readouterr().err.split())
    assert "1 row skipped: 1 dropped by clean" in said and "rows skipped" not in said, said


def test_run_report_per_class_heading_names_the_rows(tmp_path, tiny_run):
    """The per-class heading of a single run said "(best epoch 1)" alone: not that the table is over the
    validation rows, nor how many (predict's report names its rows). It now says '5 val rows, best epoch 2'."""
    import html

    from imgcls.train.report import write_run_report
    rows = [(str(tmp_path), f"{c}/{i}.png", c) for i, c in enumerate("aabbc")]
    run = tiny_run(tmp_path / "run", val_rows=rows)
    pd.DataFrame({"epoch": [1, 2], "train_loss": [1.2, 1.1], "train_acc": [0.3, 0.4], "val_loss": [1.3, 1.2],
                  "val_acc": [0.2, 0.4], "val_macro_f1": [0.2, 0.3], "lr": [1e-3, 1e-3]}).to_csv(
        run / "metrics.csv", index=False)
    page = " ".join(html.unescape(write_run_report(run).read_text()).split())
    assert 'Per-class precision / recall / F1 <span class="muted">(5 val rows, best epoch 2)</span>' in page, page


def test_run_report_worst_predictions_keep_a_class_name_holding_nan(tmp_path, tiny_run):
    """The worst predictions' caption wrote a diverged row's probability 'NaN' by replacing 'nan' in the whole caption,
    class title included: a class 'banana' read 'baNaNa'. Only the probability is written NaN."""
    import html

    from imgcls.train.report import write_run_report
    rows = [(str(tmp_path), f"{c}/{i}.png", c) for i, c in enumerate(["banana", "banana", "b"])]
    run = tiny_run(tmp_path / "run", classes=("banana", "b"), val_rows=rows)
    page = " ".join(html.unescape(write_run_report(run).read_text()).split())
    assert "true banana (p " in page and "baNaNa" not in page, page


@pytest.mark.parametrize("name, role", [("val_predictions.csv", "the run's validation predictions"),
                                        ("per_class.csv", "the run's per-class scores")])
def test_a_run_report_over_a_malformed_run_file_is_one_line(tmp_path, tiny_run, name, role, capsys):
    """write_run_report (a run's report.html, rewritten as the run ends, or from Python) read the run's
    val_predictions.csv (its worst predictions) and per_class.csv (the classes' meanings) with plain pandas: a
    malformed file (a row with more fields than the header) was pandas' ParserError traceback. Both are read by
    rundir.read_run_csv: one line naming the file, its role and the fix (imgcls wrote it), no report written, and
    no warning of the same file before it (runs.read_run's, which reads the run without a malformed file)."""
    from imgcls.errors import UserError
    from imgcls.train.report import write_run_report
    rows = [(str(tmp_path), f"{c}/{i}.png", c) for i, c in enumerate("aabbc")]
    run = tiny_run(tmp_path / "run", val_rows=rows)
    (run / "per_class.csv").write_text("class,meaning,f1\na,,0.5\nb,,0.5\nc,,0.5\n")
    bad = run / name
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join([*lines[:2], lines[2] + ",extra", *lines[3:]]) + "\n")
    with pytest.raises(UserError) as e:
        write_run_report(run)
    fix = "imgcls train wrote it: restore it from a backup, or train the run again"
    assert str(e.value).startswith(f"{role} {bad}: line 3 has") and str(e.value).endswith(f"; {fix}"), e.value
    assert "\n" not in str(e.value) and not (run / "report.html").exists()
    assert "warning" not in capsys.readouterr().err


def test_a_run_named_fold_0_inside_a_plain_run_s_folder_is_none_of_its_folds_to_any_reader(tmp_path):
    """run_names.fold_dirs listed every fold_<k> folder: a run named fold_0 trained into a plain run's folder was
    read as its fold by the readers that ask fold_dirs (a resume given the moved data rewrote that other run's
    config.yaml too, tune --keep removed its checkpoints, predict and the reports read its files as the run's).
    fold_dirs now lists a folder's folds only where its config.yaml records --folds, as fold_set does."""
    from imgcls.run_names import fold_dirs
    plain, kf = tmp_path / "runs" / "A", tmp_path / "runs" / "KF"
    for parent, folds in ((plain, None), (kf, "all")):
        TrainConfig(name=parent.name, folds=folds, src="/old/data").save((parent / "fold_0").mkdir(parents=True) or
                                                                         parent / "config.yaml")
        TrainConfig(name="fold_0", folds=folds, src="/other/data").save(parent / "fold_0" / "config.yaml")
    assert fold_dirs(plain) == [] and fold_dirs(kf) == [kf / "fold_0"]
    assert TrainConfig(src="/new/data").record_data(plain) == ["/old/data"]
    assert TrainConfig.load(plain / "fold_0" / "config.yaml").src == "/other/data"      # the other run's own record
    assert TrainConfig(src="/new/data").record_data(kf) == ["/old/data", "/other/data"]
    assert TrainConfig.load(kf / "fold_0" / "config.yaml").src == "/new/data"


def test_a_resume_given_moved_data_rewrites_no_record_of_a_fold_folder_outside_the_set_s_plan(tmp_path):
    """A fold_2 copied into a finished 2-fold set (another set's fold) is no fold of it (rundir.set_fold_dirs), but
    TrainConfig.record_data / record_folder (a resume given the moved data, or in a renamed folder) read every
    fold_<k> folder's config.yaml: the copy was rewritten to name this set's data and folder, its data was said
    among the set's earlier ones, and a damaged record of it refused the resume. Only the set's folds are
    rewritten."""
    kf = tmp_path / "runs" / "KF"
    for d in (kf, kf / "fold_0", kf / "fold_1", kf / "fold_2"):
        d.mkdir(parents=True, exist_ok=True)
        other = d.name == "fold_2"
        TrainConfig(name="OTHER" if other else "KF", out="elsewhere" if other else "outputs/runs", folds="all",
                    src="/other/data" if other else "/old/data").save(d / "config.yaml")
    (kf / "oof_score.json").write_text(json.dumps({"folds": [0, 1]}))      # train's record: the set trained 0, 1
    stray = (kf / "fold_2" / "config.yaml").read_text()
    assert TrainConfig(src="/new/data").record_data(kf) == ["/old/data"]
    assert [TrainConfig.load(kf / f"fold_{k}" / "config.yaml").src for k in (0, 1)] == ["/new/data"] * 2
    assert TrainConfig(name="KF2", out=str(kf.parent)).record_folder(kf, write=False) == ["outputs/runs/KF"]
    assert (kf / "fold_2" / "config.yaml").read_text() == stray
    (kf / "fold_2" / "config.yaml").write_text("src: [unclosed\n", encoding="utf-8")
    assert TrainConfig(src="/newer/data").record_data(kf) == ["/new/data"]


def test_a_kfold_tune_trial_s_report_is_a_kfold_set_s(tmp_path):
    """A tune trial trained with --folds is a k-fold set whose kind reads 'trial' (runs.read_run, its study's
    trials.csv beside it): its report.html showed no folds table nor out-of-fold summary and called the out-of-fold
    score 'val macro-F1 at the best epoch'. It now reads as the same set outside a study does."""
    import html

    from imgcls.runs import read_run
    from imgcls.train.report import write_run_report

    def kfold_set(run):
        run.mkdir(parents=True)
        for d in (run, run / "fold_0", run / "fold_1"):
            d.mkdir(exist_ok=True)
            (d / "config.yaml").write_text("model: test_resnet\nfolds: all\nepochs: 2\nplots: false\n")
        for k in (0, 1):
            pd.DataFrame({"epoch": [1, 2], "val_macro_f1": [0.4, 0.5], "val_acc": [0.5, 0.6]}).to_csv(
                run / f"fold_{k}" / "metrics.csv", index=False)
        pd.DataFrame({"path": ["a.png", "b.png"], "label": ["a", "b"], "pred": ["a", "a"], "fold": [0, 1],
                      "p_a": [0.9, 0.6], "p_b": [0.1, 0.4]}).to_csv(run / "val_predictions.csv", index=False)
        return run
    (tmp_path / "tune" / "s").mkdir(parents=True)
    (tmp_path / "tune" / "s" / "trials.csv").write_text("trial,state,value\n0,complete,0.5\n")
    pages = {}
    for run in (kfold_set(tmp_path / "runs" / "k"), kfold_set(tmp_path / "tune" / "s" / "trial_0000")):
        pages[read_run(run).kind] = " ".join(html.unescape(write_run_report(run).read_text()).split())
    assert set(pages) == {"k-fold", "trial"}
    for kind, page in pages.items():
        assert "out-of-fold val macro-F1" in page and "2 of 2 per fold" in page, (kind, page)
        assert "2 out-of-fold rows, each fold's best epoch" in page, (kind, page)
        assert "val macro-F1 at the best epoch" not in page, (kind, page)


def test_resume_of_a_folder_that_does_not_exist_says_so(tmp_path):
    """`train --resume nope` said 'no config.yaml there', as if the folder existed; now it says it does not exist
    (naming a close run folder), that a file is not a run folder, and no config.yaml only where that is so."""
    (tmp_path / "runs" / "effnet").mkdir(parents=True)
    (tmp_path / "runs" / "effnet" / "last.pt").write_bytes(b"x")
    for given, said in ((tmp_path / "nope", f"--resume {tmp_path / 'nope'} does not exist;"),
                        (tmp_path / "runs" / "efnet", f"does not exist (did you mean {tmp_path / 'runs' / 'effnet'}?)"),
                        (tmp_path / "runs" / "effnet" / "last.pt", "is a file, not a run folder"),
                        (tmp_path / "runs" / "effnet", "no config.yaml there")):
        r = CliRunner().invoke(app, ["train", "--resume", str(given)])
        line = " ".join(r.output.split())
        assert r.exit_code == 2 and said in line and "Traceback" not in r.output, (given, r.output)


def test_resume_dot_from_inside_the_run_folder(two_class, tmp_path, monkeypatch):
    """`imgcls train --resume .` from inside the run folder failed with "--name '' is not a plain folder name": the
    run's name was taken from the path as typed (Path('.').name is ''). The folder is resolved first where the path
    as typed does not end in its name (`.`, `..`, `RUN/fold_0/..`): it resumes, or says it is finished, by name."""
    run = run_train(cfg_for(two_class, tmp_path, epochs=2), stop_after=1)
    monkeypatch.chdir(run)
    r = CliRunner().invoke(app, ["train", "--resume", "."])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert metrics(run)["epoch"].tolist() == [1, 2] and read_checkpoint(run / "last.pt")["train_state"]["finished"]
    assert TrainConfig.load(run / "config.yaml").name == "run"        # the record kept as it was
    (run / "notes").mkdir()
    for where, given in ((run, "."), (run / "notes", ".."), (tmp_path / "runs", "run/"), (run, "notes/..")):
        monkeypatch.chdir(where)
        r = CliRunner().invoke(app, ["train", "--resume", given])
        assert r.exit_code == 0 and "run: already finished, nothing to resume" in r.output, (given, r.output)


def test_multi_head_train_acc_is_over_the_final_classes(tmp_path):
    # train_acc sits beside val_acc (the epoch table, curves.png): for a multi-branch run both count a row right only
    # when its decoded class is, i.e. when every head is; the first head alone was read as the training accuracy.
    # A first head whose column holds one value is always right: its accuracy is 1.0 whatever the model learnt
    src = make_image_folder(tmp_path / "raw", {"a": 10, "b": 10}, size=(40, 40))
    rows = [f"{c}/{i:03d}.png,{c},0,{int(c == 'b')}" for c in "ab" for i in range(10)]
    (src / "train.csv").write_text("path,label,const,kind\n" + "\n".join(rows) + "\n")
    run = run_train(cfg_for(src / "train.csv", tmp_path, name="ck", heads="multi", head_columns=["const", "kind"],
                            epochs=1, oversample="off"))
    m = metrics(run)
    assert m["val_const_acc"][0] == 1.0 and m["train_acc"][0] < 1.0


def test_a_python_caller_s_path_objects_are_recorded_as_the_cli_s_strings(tmp_path):
    """TrainConfig(out=Path(...)) (a Path where the CLI passes str) ended run_train in a yaml RepresenterError
    traceback when config.yaml was written, the run folder already made. Paths are taken as their strings."""
    from pathlib import Path
    given = TrainConfig(src=Path("data/splits.csv"), out=Path("outputs/runs"), weights=Path("w.pt"),
                        init_from=None, pretrained=True)
    as_cli = TrainConfig(src="data/splits.csv", out="outputs/runs", weights="w.pt")
    assert given == as_cli and isinstance(given.out, str)
    given.save(tmp_path / "config.yaml")
    assert TrainConfig.load(tmp_path / "config.yaml") == as_cli


def test_a_default_img_size_far_above_the_images_says_it_upsamples(tmp_path, capsys):
    """28 px Fashion-MNIST under the model's default --img-size (224) was upsampled 8x, every step paying for it, and
    nothing said so; a typed --img-size is the user's choice and says nothing. (A --crop-from that crops nothing at
    that size stops each run right after the line, before any training.)"""
    from imgcls.errors import UserError
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(20, 20))
    d = {k: v for k, v in TINY.items() if k != "img_size"}
    with pytest.raises(UserError, match="no crop"):
        run_train(TrainConfig(**d, src=str(src), out=str(tmp_path / "runs"), name="big", crop_from=1.001))
    said = " ".join(capsys.readouterr().err.split())
    assert "--img-size 160 (test_resnet's default) is 8x the images' median side (20 px)" in said
    assert "(--img-size 64: 6x fewer)" in said
    with pytest.raises(UserError, match="no crop"):
        run_train(cfg_for(src, tmp_path, name="typed", crop_from=1.001))
    assert "upsampl" not in capsys.readouterr().err


GIB = 2**30


def _fake_room(monkeypatch, mem, disk):
    """The memory available and free disk the cache check reads (20 images at 32 px need 61,440 bytes)."""
    from imgcls.train import data as tdata
    monkeypatch.setattr(tdata, "cache_room", lambda folder: (mem, disk))
    decodes = []
    real = tdata.decode_cache
    monkeypatch.setattr(tdata, "decode_cache", lambda *a, **kw: (
        kw.get("what") == "sampling the fill colour" or decodes.append(kw.get("memmap")), real(*a, **kw))[1])
    return decodes


def _train_cli(src, tmp_path, *extra):
    return CliRunner().invoke(app, ["train", str(src), "--model", "test_resnet", "--img-size", "32", "--epochs", "1",
                                    "--workers", "0", "--val-split", "0.3", "--out", str(tmp_path / "runs"),
                                    "--no-pretrained", "--name", "r", "--batch-size", "8", "--no-plots", "--quiet",
                                    *extra])


@pytest.mark.parametrize("mem", [50_000, GIB])
def test_cache_not_given_goes_to_disk_where_ram_would_not_fit(two_class, tmp_path, monkeypatch, mem):
    """The default --cache ram decoded every image into one array whatever its size (100,000 images at 224 px: 15 GB),
    and a 16 GB machine OOM-killed the run after minutes of decoding. Now, where it would take over CACHE_SHARE of the
    memory available, the cache goes to a memmap in the run folder, said in one warning; where it fits nothing is said."""
    decodes = _fake_room(monkeypatch, mem, 10**12)
    r = _train_cli(two_class, tmp_path)
    assert r.exit_code == 0, r.output
    run = tmp_path / "runs" / "r"
    said = [line for line in r.output.splitlines() if "decoded-image cache" in line]
    if mem == GIB:
        assert decodes == [None] and not said and TrainConfig.load(run / "config.yaml").cache_used == "ram"
    else:
        assert decodes == [run / "cache.npy"] and TrainConfig.load(run / "config.yaml").cache_used == "disk"
        assert len(said) == 1 and "0.1 MiB" in said[0] and "caching on disk" in said[0] and str(tmp_path) in said[0]
        assert not (run / "cache.npy").exists()


@pytest.mark.parametrize("flags,mem,disk,fix", [(["--cache", "ram"], 50_000, 10**12, "--cache disk"),
                                                (["--cache", "disk"], GIB, 50_000, "--cache none"),
                                                ([], 50_000, 50_000, "--cache none")])
def test_cache_without_room_is_refused_before_decoding(two_class, tmp_path, monkeypatch, flags, mem, disk, fix):
    """A typed --cache ram over the memory, a memmap over the free disk (typed, or the default's fallback): one line,
    exit 2, naming the bytes and the fixes, before any image is decoded or the run folder is made."""
    decodes = _fake_room(monkeypatch, mem, disk)
    r = _train_cli(two_class, tmp_path, *flags)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert decodes == [] and not (tmp_path / "runs" / "r").exists()
    line = [x for x in r.output.splitlines() if "needs" in x]
    assert len(line) == 1 and "20 images at 32px" in line[0] and fix in line[0] and "--img-size" in line[0], r.output


@pytest.mark.parametrize("typed", [[], ["--cache", "ram"]])
def test_a_reused_record_asks_for_the_cache_its_run_was_asked_for(two_class, tmp_path, monkeypatch, typed):
    """config.yaml recorded the cache that ran (ram) where --cache was not given, and `train --config RUN/config.yaml`
    or `--resume RUN` on a machine with less memory took it as a typed --cache ram: refused, where the original run
    would have gone to disk. The record now keeps what was asked (cache: None when not typed) apart from what ran
    (cache_used), so a reused record plans as the original did: not typed, to disk with the one warning; a typed
    --cache ram, refused in one line, on --config and on --resume alike."""
    _fake_room(monkeypatch, GIB, 10**12)
    first = run_train(cfg_for(two_class, tmp_path, name="first", cache=typed[-1] if typed else None), stop_after=1)
    rec = TrainConfig.load(first / "config.yaml")
    assert (rec.cache, rec.cache_used) == (typed[-1] if typed else None, "ram")
    decodes = _fake_room(monkeypatch, 50_000, 10**12)
    runs = tmp_path / "runs"
    for how in (["--config", str(first / "config.yaml"), "--name", "again"], ["--resume", str(first)]):
        r = CliRunner().invoke(app, ["train", *(["--out", str(runs)] if how[0] == "--config" else []), *how])
        ran = runs / ("again" if how[0] == "--config" else "first")
        if typed:
            assert r.exit_code == 2 and "--cache ram:" in r.output and "Traceback" not in r.output, r.output
            assert decodes == []
        else:
            assert r.exit_code == 0, r.output
            assert decodes[-1] == ran / "cache.npy" and "caching on disk" in r.output
            if how[0] == "--config":
                assert TrainConfig.load(ran / "config.yaml").cache is None
                assert TrainConfig.load(ran / "config.yaml").cache_used == "disk"


class _SetUp(Exception):
    """Raised by _spy_setup(stop=True) once a Trainer is set up."""


def _spy_setup(monkeypatch, stop: bool = False) -> list:
    """(DataLoader workers, mixed precision) of each Trainer that trains, as it set them up. stop: each run stops
    there (raising _SetUp; config.yaml and a resume's train.log lines are written before it): for a test of what a
    run resolves as it starts, whose training (and DataLoader worker processes) would check nothing more."""
    import imgcls.train.loop as loop
    seen, real = [], loop.Trainer.setup

    def setup(self):
        real(self)
        seen.append((self.train_loader.num_workers, self.use_amp))
        if stop:
            raise _SetUp
    monkeypatch.setattr(loop.Trainer, "setup", setup)
    return seen


def _set_up(r) -> None:
    """The CLI call `r` got as far as its Trainer's set-up (_spy_setup(stop=True)): no refusal, no other error."""
    assert isinstance(r.exception, _SetUp), r.output


def _reuse(first, how, *extra, name="again"):
    """`imgcls train` reusing the record of run `first`: --config (a new run, `name`) or --resume."""
    how = (["--config", str(first / "config.yaml"), "--out", str(first.parent), "--name", name]
           if how == "--config" else ["--resume", str(first)])
    return CliRunner().invoke(app, ["train", *how, *extra])


def test_a_reused_record_resolves_amp_for_the_machine_it_runs_on(two_class, tmp_path, monkeypatch):
    """config.yaml recorded the amp train resolved for its machine (not given: on for CUDA) as `amp`, so `train
    --config RUN/config.yaml --device cpu` (or --resume, tune's --config) of a CUDA run took its amp: true as a typed
    --amp and trained under bf16 autocast on the CPU, where --amp not given is off. The record now keeps what was
    asked (amp: None when not typed) apart from what ran (amp_used, what the loop reads); `imgcls runs` counts
    amp_used as how a run ran, not as what it learned."""
    import yaml
    from imgcls.runs import changed_options, diff_runs
    first = run_train(cfg_for(two_class, tmp_path, name="first", amp=None), stop_after=1)
    rec = TrainConfig.load(first / "config.yaml")
    assert (rec.amp, rec.amp_used) == (None, False)
    cuda = {**yaml.safe_load((first / "config.yaml").read_text()), "amp_used": True}    # what a CUDA run records
    (first / "config.yaml").write_text(yaml.safe_dump(cuda, sort_keys=False))
    seen = _spy_setup(monkeypatch, stop=True)
    r = _reuse(first, "--config", "--device", "cpu")
    _set_up(r)
    assert seen.pop()[1] is False
    again = TrainConfig.load(first.parent / "again" / "config.yaml")
    assert (again.amp, again.amp_used) == (None, False)
    d = diff_runs(first, first.parent / "again")
    assert d["config"] == [] and "amp_used" in d["ran"]
    assert "amp_used" not in changed_options(cuda)
    r = _reuse(first, "--resume", "--device", "cpu")
    _set_up(r)
    assert seen.pop()[1] is False
    assert TrainConfig.load(first / "config.yaml").amp_used is False      # the resumed session's, said in train.log
    assert "(the earlier session: amp_used True)" in (first / "train.log").read_text()
    # a typed --amp is still asked for, and runs as asked
    r = _reuse(first.parent / "again", "--config", "--amp", name="typed")
    _set_up(r)
    assert seen.pop()[1] is True
    typed = TrainConfig.load(first.parent / "typed" / "config.yaml")
    assert (typed.amp, typed.amp_used) == (True, True)


def test_resume_takes_a_typed_amp_that_is_what_the_run_ran_with(two_class, tmp_path, monkeypatch):
    """A run whose --amp was not typed records amp: None and amp_used (what ran). `--resume RUN --no-amp` of a CPU run
    that ran without mixed precision was refused as '--amp cannot change' (None -> False), though it asks for what
    ran (before amp_used, the record's amp: false took it). A typed value is compared with what ran: the same
    resumes, another is still refused."""
    first = run_train(cfg_for(two_class, tmp_path, name="first", amp=None, epochs=2), stop_after=1)
    assert TrainConfig.load(first / "config.yaml").amp_used is False
    seen = _spy_setup(monkeypatch)
    r = _reuse(first, "--resume", "--amp")
    assert r.exit_code == 2 and "--amp" in r.output and "cannot change" in r.output, r.output
    r = _reuse(first, "--resume", "--no-amp")
    assert r.exit_code == 0, r.output
    assert seen.pop()[1] is False


def test_a_reused_record_resolves_workers_for_the_machine_it_runs_on(two_class, tmp_path, monkeypatch):
    """config.yaml recorded the workers train resolved for its machine (not given: 0 on the CPU from the cache, else
    min(8, cores)) as `workers`, so `train --config RUN/config.yaml` (or --resume, tune's --config) of a CPU run on
    a CUDA machine took its workers: 0 as a typed --workers 0 and fed the GPU from the main process. The record now
    keeps what was asked (workers: None when not typed) apart from what ran (workers_used, what the loop reads)."""
    import imgcls.train.run as train
    from imgcls.runs import changed_options, diff_runs
    first = run_train(cfg_for(two_class, tmp_path, name="first", workers=None), stop_after=1)
    rec = TrainConfig.load(first / "config.yaml")
    assert (rec.workers, rec.workers_used) == (None, 0)          # the CPU from the decoded-image cache
    monkeypatch.setattr(train, "default_workers", lambda device_type, cache: 1)     # another machine's default
    seen = _spy_setup(monkeypatch, stop=True)
    r = _reuse(first, "--config")
    _set_up(r)
    assert seen.pop()[0] == 1
    again = TrainConfig.load(first.parent / "again" / "config.yaml")
    assert (again.workers, again.workers_used) == (None, 1)
    d = diff_runs(first, first.parent / "again")
    assert d["config"] == [] and "workers_used" in d["ran"]
    assert "workers_used" not in changed_options(again.to_dict())
    r = _reuse(first, "--resume")
    _set_up(r)
    assert seen.pop()[0] == 1
    # a typed --workers is still asked for, and runs as asked
    r = _reuse(first.parent / "again", "--config", "--workers", "0", name="typed")
    _set_up(r)
    assert seen.pop()[0] == 0
    typed = TrainConfig.load(first.parent / "typed" / "config.yaml")
    assert (typed.workers, typed.workers_used) == (0, 0)


def test_a_resumed_run_records_how_this_session_ran_and_logs_the_earlier(two_class, tmp_path, monkeypatch):
    """`train --resume RUN` on another machine (or with other resources) left config.yaml's records of how the run
    ran (workers_used, cache_used) at the first session's values. The record now says what the resumed session ran
    with, and the earlier session's values are said and kept in train.log; the other fields stay as recorded."""
    import imgcls.train.run as train
    import imgcls.train.data as tdata
    first = run_train(cfg_for(two_class, tmp_path, name="first", workers=None, epochs=2), stop_after=1)
    before = TrainConfig.load(first / "config.yaml")
    assert (before.workers_used, before.cache_used, before.device_used) == (0, "ram", "cpu")
    before.device_used = None           # a record written before device_used was: said as not recorded
    before.save(first / "config.yaml")
    monkeypatch.setattr(train, "default_workers", lambda device_type, cache: 1)     # another machine's default
    monkeypatch.setattr(tdata, "plan_cache", lambda *a, **k: "none")                # ... and its memory
    r = _reuse(first, "--resume")
    assert r.exit_code == 0, r.output
    after = TrainConfig.load(first / "config.yaml")
    assert (after.workers_used, after.cache_used) == (1, "none")
    assert after.to_dict() == {**before.to_dict(), "workers_used": 1, "cache_used": "none", "device_used": "cpu"}
    log = (first / "train.log").read_text()
    assert ("resumed with cache_used none, workers_used 1, device_used cpu (the earlier session: cache_used ram, "
            "workers_used 0, device_used not recorded)") in log, log
    assert "earlier session" in r.output
    r = _reuse(first, "--resume")            # finished: nothing runs, nothing is rewritten
    assert r.exit_code == 0 and TrainConfig.load(first / "config.yaml") == after


def test_an_older_record_reads_its_resolved_cache_amp_and_workers_as_what_ran(tmp_path):
    """A config.yaml written before the *_used records held in cache / amp / workers what that train resolved for
    its machine (cache: ram, amp: true, workers: 0, typed or not), and a reused record still read them as typed: a
    CUDA run's amp: true trained the CPU under bf16, a CPU run's workers: 0 fed a GPU from one process. Such a
    record (a whole one, with train's weights_source, and no *_used key) now reads them as what ran, the options
    as not given; a newer record and a file written by hand keep theirs."""
    import yaml
    old = {k: v for k, v in TrainConfig(model="test_resnet", cache="ram", amp=True, workers=0,
                                        weights_source="random init").to_dict().items()
           if k not in ("cache_used", "amp_used", "workers_used")}
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    rec = TrainConfig.load(tmp_path / "old.yaml")
    assert (rec.cache, rec.amp, rec.workers) == (None, None, None)
    assert (rec.cache_used, rec.amp_used, rec.workers_used) == ("ram", True, 0)
    reused = TrainConfig.resolve(config=tmp_path / "old.yaml")
    assert (reused.model, reused.cache, reused.amp, reused.workers) == ("test_resnet", None, None, None)
    assert (TrainConfig.resolve({"amp": False}, resume=None, config=tmp_path / "old.yaml").amp) is False   # typed
    new = TrainConfig(cache="ram", amp=True, workers=0, cache_used="ram", amp_used=True, workers_used=0)
    new.save(tmp_path / "new.yaml")
    assert TrainConfig.load(tmp_path / "new.yaml") == new         # asked for, as recorded
    (tmp_path / "hand.yaml").write_text("model: test_resnet\ncache: ram\namp: true\nworkers: 0\n")
    hand = TrainConfig.load(tmp_path / "hand.yaml")
    assert (hand.cache, hand.amp, hand.workers) == ("ram", True, 0)


def test_cache_check_reads_nothing_it_cannot(tmp_path, monkeypatch):
    """No /proc/meminfo nor disk reading (not Linux): nothing is checked, the cache is what was asked."""
    from imgcls.train import data as tdata
    mem, disk = tdata.cache_room(tmp_path / "not" / "yet")       # the real reading: the nearest folder that exists
    monkeypatch.setattr(tdata, "cache_room", lambda folder: (None, None))
    assert [tdata.plan_cache(c, 10**6, 512, tmp_path) for c in (None, "ram", "disk", "none")] == [
        "ram", "ram", "disk", "none"]
    assert disk > 0 and (mem is None or mem > 0)


def test_compile_on_the_cpu_prints_no_cuda_runtime_note(two_class, tmp_path, monkeypatch):
    """`train --compile --device cpu` on a machine with a CUDA toolkit and no CUDA device printed torch's
    `W... cpp_extension.py] No CUDA runtime is found, using CUDA_HOME=...` in the middle of the run's output
    (inductor's CPU code generation imports torch.utils.cpp_extension, which logs it once per process at import).
    The trainer imports that module first with its logger quieted (device.quiet_cuda_home_note): checked in a fresh
    process, which then imports the module again plainly (its logger's level as before the call), which does print
    it; and the trainer is checked to call it for a CPU --compile (no inductor build in the suite). One process, not
    one for each import: torch's import is most of the test's time."""
    import os
    import subprocess
    import sys

    import imgcls
    from imgcls import device
    env = {**os.environ, "PYTHONPATH": str(Path(imgcls.__file__).parents[1]), "CUDA_HOME": str(tmp_path),
           "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    code = ("import logging, sys\nlog = logging.getLogger('torch.utils.cpp_extension')\nlevel = log.level\n"
            "from imgcls.device import quiet_cuda_home_note\nquiet_cuda_home_note()\n"
            "print('plain import, level kept:', log.level == level, file=sys.stderr, flush=True)\n"
            "del sys.modules['torch.utils.cpp_extension']\nimport torch.utils.cpp_extension\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    quiet, plain = r.stderr.split("plain import, level kept: ")
    assert plain.startswith("True\n") and "No CUDA runtime" not in r.stdout, r.stderr
    if "No CUDA runtime" not in plain:
        pytest.skip("this torch does not log the CUDA_HOME note at import")
    assert "No CUDA runtime" not in quiet, r.stderr
    calls = []
    monkeypatch.setattr(device, "quiet_cuda_home_note", lambda: calls.append(1))
    # the call is the trainer's, before torch.compile: the model is returned as it is (no TorchDynamo to load and
    # trace with; test_channels_last_deterministic_and_compile_act runs the compiled model)
    monkeypatch.setattr(torch, "compile", lambda model, **kw: model)
    run_train(cfg_for(two_class, tmp_path, name="c", epochs=1, compile=True, device="cpu"))
    assert calls == [1]


def test_last_state_json_lets_runs_read_the_finished_flag_without_torch(two_class, tmp_path, monkeypatch):
    """`imgcls runs` imported torch (~2 s CPU) to read each last.pt's finished flag; train now records the flag in
    last_state.json beside it, written after last.pt: a crash between the two writes leaves no record that claims
    more than last.pt, and a run recorded before the file (none beside its last.pt) still has last.pt read."""
    import os
    import subprocess
    import sys

    from pathlib import Path

    import imgcls.train.loop as loop
    from imgcls.run_names import LAST_STATE
    from imgcls.train.rundir import train_finished
    run = run_train(cfg_for(two_class, tmp_path, epochs=3, early_stop=1, lr=0.0))   # lr 0: the early stop ends it
    assert json.loads((run / LAST_STATE).read_text()) == {"epoch": 2, "finished": True}
    # scipy's array-API helpers look torch up in sys.modules (a None there breaks them): asked after, not blocked
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom imgcls.cli import app\n"
            f"r = CliRunner().invoke(app, ['runs', {str(tmp_path / 'runs')!r}])\n"
            "print(r.exit_code, 'torch' in sys.modules, r.output)")
    env = {**os.environ, "PYTHONPATH": str(Path(loop.__file__).parents[2]), "COLUMNS": "300"}
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert said.startswith("0 False ") and "run" in said and "2/3, early stop" in said, said

    # an old run: no record beside its last.pt, which is read (with torch)
    (run / LAST_STATE).unlink()
    assert train_finished(run / "last.pt") is True

    # killed as last.pt is written: no record claims the epoch it did not save
    saved = loop.save_checkpoint

    def crash_on_last(path, *a, **kw):
        if path.name == "last.pt":
            raise KeyboardInterrupt
        return saved(path, *a, **kw)
    monkeypatch.setattr(loop, "save_checkpoint", crash_on_last)
    with pytest.raises(KeyboardInterrupt):
        run_train(cfg_for(two_class, tmp_path, name="killed", epochs=1))
    assert not (tmp_path / "runs" / "killed" / LAST_STATE).exists()
    monkeypatch.setattr(loop, "save_checkpoint", saved)

    # killed between the two writes: the record of the epoch before (older than last.pt) is not trusted
    (run / LAST_STATE).write_text(json.dumps({"epoch": 1, "finished": False}))
    os.utime(run / LAST_STATE, ns=(1, 1))
    assert train_finished(run / "last.pt") is True


@pytest.mark.parametrize("cache, gpu_aug", [("disk", "off"), ("ram", "on")])      # on: batches cut from the cache
def test_unreadable_image_is_dropped_without_copying_the_cache(two_class, tmp_path, monkeypatch, cache, gpu_aug):
    """An image found unreadable while the cache was decoded was dropped with images[ok]: a second copy of the whole
    decoded-image cache in RAM (--cache disk's memmap read into memory whole; 100k images at 224 px: 14 GiB more).
    Now the datasets read the cache as decoded, through the rows of the readable images, and the run is the one
    trained without that image."""
    from pathlib import Path
    from imgcls.train import data as tdata
    from imgcls.train.loop import Trainer
    caches, seen, broken = [], [], []
    real_decode, real_setup = tdata.decode_cache, Trainer.setup

    def decode_breaking_one(paths, *a, **kw):
        if kw.get("what") != "sampling the fill colour" and not broken:
            broken.append(Path(paths[3]))      # breaks after the scan read it: found by the decode, same size
            broken[0].write_bytes(b"\0" * broken[0].stat().st_size)
        images, errors = real_decode(paths, *a, **kw)
        caches.append(images)
        return images, errors

    def setup_seeing(self):
        real_setup(self)
        seen.append((self.train_loader.dataset.images, self.val_loader.dataset.images))

    monkeypatch.setattr(tdata, "decode_cache", decode_breaking_one)
    monkeypatch.setattr(Trainer, "setup", setup_seeing)
    with_broken = run_train(cfg_for(two_class, tmp_path, name="broken", cache=cache, epochs=1, gpu_aug=gpu_aug))
    assert len(caches) == 1 and len(caches[0]) == 20 and len(seen) == 1
    for arr in seen[0]:
        assert arr is caches[0] and isinstance(arr, np.memmap) == (cache == "disk")
    broken[0].unlink()
    without = run_train(cfg_for(two_class, tmp_path, name="without", cache=cache, epochs=1, gpu_aug=gpu_aug))
    vp = [pd.read_csv(r / "val_predictions.csv", keep_default_na=False) for r in (with_broken, without)]
    assert len(vp[0]) == 6 and str(broken[0].relative_to(two_class)) not in set(vp[0]["path"])
    pd.testing.assert_frame_equal(vp[0], vp[1])
    a, b = (read_checkpoint(r / "last.pt")["state_dict"] for r in (with_broken, without))
    assert all(torch.equal(a[k], b[k]) for k in a)


def _table_with(tmp_path, column, values) -> tuple[Path, list[Path]]:
    """A CSV of 6 images of classes a and b with `column` = values[i] for the i-th image of each class; returns it
    and the images in its rows' order."""
    raw = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32))
    files = [p for c in ("a", "b") for p in sorted((raw / c).iterdir())]
    table = pd.DataFrame({"path": [f"raw/{p.parent.name}/{p.name}" for p in files],
                          "label": [p.parent.name for p in files], column: values * 2})
    table.to_csv(tmp_path / "table.csv", index=False)
    return tmp_path / "table.csv", files


SIDES_UNREADABLE = [
    ("split", ["val", "val", "train", "train", "train", "train"], None,
     "no validation images: the split column's 4 val images are all unreadable"),
    ("fold", [1, 1, 0, 0, 2, 2], "all", "no validation images in fold 1: fold 1's 4 images are all unreadable")]


def _break_side(files, values) -> None:
    """The images of _table_with's rows of split 'val' / fold 1 made unreadable."""
    for i, p in enumerate(files):
        if str(values[i % 6]) in ("val", "1"):
            p.write_bytes(b"not an image")


@pytest.mark.parametrize("column, values, folds, said", SIDES_UNREADABLE)
def test_a_split_side_whose_images_are_all_unreadable_is_refused_not_drawn_anew(tmp_path, column, values, folds,
                                                                                said):
    """A split table whose val rows the scan found all unreadable trained on a random --val-split draw of its train
    rows (said only as 'no split column with val rows'), and a fold all of whose images were unreadable was left
    out of --folds all unsaid: the table's own side is refused in one line naming its images and the fix, before the
    run folder is made."""
    from imgcls.errors import UserError
    table, files = _table_with(tmp_path, column, values)
    _break_side(files, values)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(table), epochs=1, folds=folds, out=str(tmp_path / "runs"), **TINY))
    text = str(e.value)
    assert text.startswith(said + " (e.g. ") and "not an image" in text, text
    assert "replace those files, or split the readable images again: imgcls split" in text, text
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("side, said, n", [("val", "validation", 4), ("train", "training", 8)])
@pytest.mark.parametrize("column, value, why", [("label", "", "unlabeled"), ("keep", False, "dropped by clean")])
def test_split_side_rows_all_left_out_are_refused_not_drawn_anew(tmp_path, side, said, n, column, value, why):
    """A split table whose val rows were all unlabeled, or all set aside by clean (keep=false), trained on a random
    --val-split draw of its train rows, warned as 'no split column with val rows'; its train rows so was refused as
    'no training images; check the split'. Refused as a side all unreadable is: the rows, why, and the fix."""
    from imgcls.errors import UserError
    table, _ = _table_with(tmp_path, "split", ["val", "val", "train", "train", "train", "train"])
    df = pd.read_csv(table, keep_default_na=False).assign(keep=True)
    df[column] = df[column].astype(object)
    df.loc[df["split"] == side, column] = value
    df.to_csv(table, index=False)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(table), epochs=1, out=str(tmp_path / "runs"), **TINY))
    text = str(e.value)
    line = f"no {said} images: the split column's {n} {side} rows are all left out ({n} {why}; e.g. "
    assert text.startswith(line), text
    assert ("label them, or " in text) == (column == "label") and "split the usable images again: imgcls split" in text
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("folds", ["all", "1"])
def test_a_fold_whose_rows_are_all_left_out_is_refused_not_skipped(tmp_path, folds):
    """A k-fold table whose fold 1 rows were all unlabeled trained --folds all on folds 0 and 2 (said only as '4
    rows skipped: 4 unlabeled'), and --folds 1 was refused as 'fold(s) 1 not in the data': refused as a fold all
    unreadable is, the fold's rows, why and the fix, before the run folder is made."""
    from imgcls.errors import UserError
    table, _ = _table_with(tmp_path, "fold", [1, 1, 0, 0, 2, 2])
    df = pd.read_csv(table, keep_default_na=False)
    df["label"] = df["label"].astype(object)
    df.loc[df["fold"] == 1, "label"] = ""
    df.to_csv(table, index=False)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(table), epochs=1, folds=folds, out=str(tmp_path / "runs"), **TINY))
    text = str(e.value)
    assert text.startswith("no validation images in fold 1: fold 1's 4 rows are all left out (4 unlabeled; e.g. "), text
    assert "label them, or split the usable images again: imgcls split" in text and "--folds all" in text, text
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("kw", [{}, {"head_columns": ["mask", "gender"], "head_weights": [1.0, 2.5]}])
def test_split_val_rows_left_out_of_a_multi_head_run_name_a_fix_that_trains_what_it_would(tmp_path, monkeypatch, kw):
    """The fix of a --heads multi run's val rows all left out trained the split's table on one head (label): its
    train command dropped --heads multi, and then carried --heads / --head-columns but dropped --head-weights, --model
    and every other option: pasted, it trained another model. Its command and its Python call, read back, are this
    run's options but the data, its draw (the table's split) and its --name; the split draws the run's --val-split
    with its --seed."""
    import shlex

    from imgcls.errors import UserError
    from imgcls.options import cli_fields
    from imgcls.split import run_split
    src = make_profiles(tmp_path / "profiles", n_profiles=8)
    table = tmp_path / "splits.csv"
    run_split(str(src), str(table))
    df = pd.read_csv(table, keep_default_na=False)
    df.assign(keep=df["split"] != "val").to_csv(table, index=False)
    cfg = TrainConfig(src=str(table), epochs=1, out=str(tmp_path / "my runs"), heads="multi", seed=3, val_split=0.3,
                      name="mine", lr=3e-4, **kw, **TINY)     # a folder of runs whose name the shell splits
    with pytest.raises(UserError, match="val rows are all left out") as e:
        run_train(copy.deepcopy(cfg))
    split, then = str(e.value).split("split the usable images again: ")[1].split(", then ")
    assert " --val 0.3 --seed 3 " in split and "cfg=SplitConfig(val=0.3, seed=3)" in split, split
    typed, python = then.split(" (Python: ")
    got = []
    monkeypatch.setattr("imgcls.train.run_train", lambda c, **_: got.append(c) or tmp_path / "my runs" / "x")
    r = CliRunner().invoke(app, shlex.split(typed)[1:])
    assert r.exit_code == 0, r.output
    eval(python[:-1], {"run_train": lambda c: got.append(c), "TrainConfig": TrainConfig})
    for read in got:
        assert read.src == str(tmp_path / "splits_val.csv")
        assert {n: getattr(read, n) for n in cli_fields(TrainConfig) if n not in ("val_split", "name")} == \
            {n: getattr(cfg, n) for n in cli_fields(TrainConfig) if n not in ("val_split", "name")}, then


def test_split_val_rows_left_out_with_one_class_usable_says_the_class_count(tmp_path):
    """A split table whose usable rows hold one class (class a unlabeled, and the val rows) was refused as its val
    rows all left out, whose fix (split the usable images again) met 'at least 2 classes' next: that line first."""
    from imgcls.errors import UserError
    table, _ = _table_with(tmp_path, "split", ["val", "val", "train", "train", "train", "train"])
    df = pd.read_csv(table, keep_default_na=False)
    df["label"] = df["label"].astype(object)
    df.loc[(df["split"] == "val") | (df["label"] == "a"), "label"] = ""
    df.to_csv(table, index=False)
    with pytest.raises(UserError, match="^training needs at least 2 classes, column 'label' has 1"):
        run_train(TrainConfig(src=str(table), epochs=1, out=str(tmp_path / "runs"), **TINY))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("column, values, folds, said", SIDES_UNREADABLE)
def test_a_split_side_whose_images_broke_since_the_scan_is_refused_not_drawn_anew(tmp_path, monkeypatch, column,
                                                                                 values, folds, said):
    """The same side read at the scan and broken before the images were decoded: the split table trained on a random
    draw of the images left (the rows kept were drawn again), a fold of k-fold was refused as "no validation images
    in fold 1; check the split". The line says the images are unreadable now, and the fix."""
    from imgcls.errors import UserError
    from imgcls.train import data as tdata
    table, files = _table_with(tmp_path, column, values)
    real_decode = tdata.decode_cache

    def decode_breaking(paths, *a, **kw):
        _break_side(files, values)
        return real_decode(paths, *a, **kw)
    monkeypatch.setattr(tdata, "decode_cache", decode_breaking)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(table), epochs=1, folds=folds, out=str(tmp_path / "runs"), **TINY))
    text = str(e.value)
    assert text.startswith(said + " now (read at the scan, broken or deleted since) (e.g. "), text
    assert "replace those files, or split the readable images again: imgcls split" in text, text


@pytest.mark.parametrize("there", [False, True])
def test_a_side_broken_since_the_scan_leaves_no_run_folder_made_for_it(tmp_path, monkeypatch, there):
    """A side of the split broken after the scan is refused as the images decode, after the run folder was made: the
    folder stayed with config.yaml, plan.json and train.log (an unfinished run to `imgcls runs`), and the same
    command, once the files were replaced, was refused as the folder existed. The folder made for the run goes (and
    the --out made with it); a folder --exist-ok trained into stays."""
    from imgcls.errors import UserError
    from imgcls.train import data as tdata
    values = ["val", "val", "train", "train", "train", "train"]
    table, files = _table_with(tmp_path, "split", values)
    saved = {p: p.read_bytes() for p in files}
    real_decode = tdata.decode_cache

    def decode_breaking(paths, *a, **kw):
        _break_side(files, values)
        return real_decode(paths, *a, **kw)
    monkeypatch.setattr(tdata, "decode_cache", decode_breaking)
    runs = tmp_path / "runs"
    if there:
        (runs / "X").mkdir(parents=True)
    cfg = dict(src=str(table), epochs=1, out=str(runs), name="X", exist_ok=there, **TINY)
    with pytest.raises(UserError, match="unreadable now"):
        run_train(TrainConfig(**cfg))
    assert (runs / "X").is_dir() == there and runs.exists() == there
    monkeypatch.setattr(tdata, "decode_cache", real_decode)
    for p, b in saved.items():
        p.write_bytes(b)
    assert (run_train(TrainConfig(**cfg)) / "last.pt").is_file()


def test_a_side_broken_since_the_scan_names_the_data_as_typed_and_types_no_searched_target(tmp_path, monkeypatch):
    """The refusal of a fold whose images broke after the scan named the data by its absolute path (config.yaml's,
    anchored) in its split fix, and typed the --target a tune study's space draws (its trial's `searched` was not
    passed on), while the same refusal at the scan names it as typed and stratifies on every target drawn."""
    from imgcls.errors import UserError
    from imgcls.train import data as tdata
    values = [1, 1, 0, 0, 2, 2]
    table, files = _table_with(tmp_path, "fold", values)
    pd.read_csv(table).assign(artist=["x", "y"] * 6).to_csv(table, index=False)
    real_decode = tdata.decode_cache

    def decode_breaking(paths, *a, **kw):
        _break_side(files, values)
        return real_decode(paths, *a, **kw)
    monkeypatch.setattr(tdata, "decode_cache", decode_breaking)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src="table.csv", target="artist", epochs=1, folds="all", out="runs", **TINY),
                  searched={"target": ["artist", "label"]})
    text = str(e.value)
    assert "split the readable images again: imgcls split table.csv --folds 5 --stratify artist,label (Python: " \
           in text, text
    assert "then imgcls train data/splits.csv --model test_resnet --no-pretrained --img-size 32 --epochs 1 " \
           "--batch-size 8 --workers 0 --device cpu --out runs --no-plots --folds all (Python: " in text, text
    assert "--target" not in text, text


def test_a_draw_left_with_no_side_by_images_broken_since_the_scan_names_them(tmp_path, monkeypatch):
    """Images that broke after the scan (found as the cache was decoded) left the --val-split draw of the rows kept
    with no validation image, which train refused as "no validation images; check the split" (and named the CSV's
    group column): the line names the images unreadable now and the fix."""
    from imgcls.errors import UserError
    from imgcls.train import data as tdata
    table, files = _table_with(tmp_path, "group", ["g", "g", "", "", "", ""])
    real_decode = tdata.decode_cache

    def decode_breaking(paths, *a, **kw):
        for i, p in enumerate(files):
            if i % 6 >= 2:
                p.write_bytes(b"not an image")
        return real_decode(paths, *a, **kw)
    monkeypatch.setattr(tdata, "decode_cache", decode_breaking)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(table), epochs=1, out=str(tmp_path / "runs"), **TINY))
    text = str(e.value)
    assert text.startswith("no validation images once the 8 image(s) unreadable since the scan (broken or deleted; "
                           "e.g. "), text
    assert text.endswith("not an image (unrecognised format)) are left out; replace those files"), text


def test_a_draw_left_with_no_side_by_images_unreadable_at_the_scan_names_them(tmp_path):
    """The --val-split draw of the table as read (checked before the scan) had both sides, the draw of the rows the
    scan could read had no validation image: the second said "no validation images; check the split" and blamed the
    CSV's group column, though the unreadable images emptied it (their draw had both sides). It names them now."""
    from imgcls.errors import UserError
    table, files = _table_with(tmp_path, "group", ["g", "g", "", "", "", ""])
    for i, p in enumerate(files):
        if i % 6 >= 2:
            p.write_bytes(b"not an image")
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(table), epochs=1, out=str(tmp_path / "runs"), **TINY))
    text = str(e.value)
    assert text.startswith("no validation images once the 8 unreadable image(s) (e.g. "), text
    assert text.endswith("not an image (unrecognised format)) are left out; replace those files"), text
    assert not (tmp_path / "runs").exists()


def test_an_unfinished_folds_all_set_says_how_many_folds_it_plans(tmp_path):
    """`imgcls runs` showed a `train --folds all` set interrupted before its last fold as `folds done 2`, a bare
    count beside every other row's done/set (config.yaml records `all`; the data's fold ids were read nowhere until
    oof_score.json, written after the last fold): train records the folds it plans as it starts (plan.json), so
    the set reads `folds done 2/3`."""
    import shutil

    from imgcls import manifest as mf
    from imgcls.runs import read_run
    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 3
    mf.write(df, tmp_path / "splits.csv")
    run = run_train(cfg_for(tmp_path / "splits.csv", tmp_path, name="kf", epochs=1, folds="all"))
    assert json.loads((run / "plan.json").read_text()) == {"folds": [0, 1, 2], "classes": ["a", "b"]}
    assert read_run(run).progress == "folds done 3/3"
    shutil.rmtree(run / "fold_2")            # what a set interrupted before its last fold leaves
    (run / "oof_score.json").unlink()
    assert read_run(run).progress == "folds done 2/3"


def test_resume_writes_again_an_unreadable_oof_score_of_a_set_whose_folds_finished(tmp_path):
    """predict refuses a set whose oof_score.json is corrupt or names no folds and says `train --resume` writes it
    again; resume said `already finished, nothing to resume` (the file was there). The file is no record that the
    set finished: resume reads its finished folds' predictions back and writes it."""
    from imgcls import manifest as mf
    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    run = run_train(cfg_for(tmp_path / "splits.csv", tmp_path, name="kf", epochs=1, folds="all"))
    score = json.loads((run / "oof_score.json").read_text())
    for bad in ("{not json", "{}"):
        (run / "oof_score.json").write_text(bad)
        r = CliRunner().invoke(app, ["train", "--resume", str(run)])
        assert r.exit_code == 0 and "nothing to resume" not in r.output, r.output
        assert json.loads((run / "oof_score.json").read_text()) == score
        assert len(find_checkpoints(run)) == 2


def test_a_single_run_records_its_classes_as_it_starts(two_class, tmp_path):
    """`imgcls runs` showed a single run's task as a bare `label` until its first epoch validated (only a k-fold set
    recorded its classes as it started): every run writes plan.json before training, so a run stopped in its first
    epoch reads `label (2)`."""
    from imgcls.runs import read_run
    from imgcls.train.callbacks import Callback

    class Stop(Callback):
        def on_run_start(self, info):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_train(cfg_for(two_class, tmp_path, name="first"), callbacks=[Stop()])
    run = tmp_path / "runs" / "first"
    assert not (run / "val_predictions.csv").exists()
    assert json.loads((run / "plan.json").read_text()) == {"folds": [], "classes": ["a", "b"]}
    r = read_run(run)
    assert r.kind == "run" and r.task == "label (2)", r.task


def test_a_finished_run_resumed_under_torchrun_leaves_the_process_group(two_class, tmp_path, monkeypatch):
    """Under torchrun, `train --resume RUN` of a finished run returned early without ending the process group
    init_distributed started, as a run that trains does at its end: both ends now go through Dist.end (which keeps
    the group for the process's next run and marks it to be left at exit: 97d41d1). Rank 0 is played in-process (a
    one-process gloo group, the Dist saying two), no torchrun launched."""
    import torch.distributed as tdist

    from imgcls.train import dist as tdist_mod
    run = run_train(cfg_for(two_class, tmp_path, name="done", epochs=1))

    def init(device_spec):
        tdist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
        return tdist_mod.Dist(rank=0, world=2, local_rank=0)

    monkeypatch.setattr(tdist_mod, "init_distributed", init)
    monkeypatch.setitem(tdist_mod._GROUP, "ended", False)
    try:
        assert run_train(cfg_for(two_class, tmp_path, name="done", epochs=1), resume=run) == run
        assert tdist.is_initialized() and tdist_mod._GROUP["ended"]      # ended by Dist.end: left at exit
    finally:
        if tdist.is_initialized():
            tdist.destroy_process_group()


def test_a_model_typo_is_refused_before_the_process_group_starts(two_class, tmp_path, monkeypatch):
    """check_model_name ran in _run_train after init_distributed: under torchrun every process started its process
    group before a --model typo was refused. It is one of the up-front checks now (timm is imported by the
    optimizer registry's check there anyway); init_distributed is made to fail, so the refusal must come first."""
    from imgcls.errors import UserError
    from imgcls.train import dist as tdist_mod

    def init(device_spec):
        raise AssertionError("init_distributed ran before the --model check")

    monkeypatch.setattr(tdist_mod, "init_distributed", init)
    with pytest.raises(UserError, match="unknown model 'resnet_nope'"):
        run_train(cfg_for(two_class, tmp_path, model="resnet_nope"))
    assert not (tmp_path / "runs").exists()


def test_a_target_naming_the_labels_column_is_the_label_task():
    """TrainConfig.resolve_target, the one reading of the column a run's classes are values of (ModelMeta.target,
    config.yaml's target_used, which `imgcls runs` and ensemble tell its task by): `--target artist` on DACON's
    train.csv read unlabeled (artist its only column with classes), or on a table whose labels are the artist
    column (a manifest read with --label-col artist keeps both), is the label task; any other column is its own."""
    from imgcls.runs import run_target
    raw = pd.DataFrame({"path": ["a.png", "b.png", "c.png"], "label": "", "id": ["T0", "T1", "T2"],
                        "artist": ["Renée", "Monet", "Renée"]})
    both = raw.assign(label=["Renée", "Monet", "Renée"], artist=["Rene\u0301e", "Monet", "Renée"])   # NFD: the same
    cases = [(raw, "artist", "single", "read unlabeled", "label"),
             (both, "artist", "single", "its labels", "label"),
             (both.assign(artist=["Monet", "Monet", "Renée"]), "artist", "single", "", "artist"),  # another column
             (raw.assign(style=["x", "y", "y"]), "artist", "single", "", "artist"),      # two columns of classes
             (raw, "label", "single", "", "label"),
             (both, "label", "multi", "", "label"),
             # a profile attribute, even a table's only class column, is its own head (--combine profile reads a
             # gender model by its target; predict --eval its gender column): it read 'label' (reviewer)
             (raw.rename(columns={"artist": "gender"}), "gender", "single", "", "gender"),
             (both.rename(columns={"artist": "mask"}), "mask", "single", "", "mask")]
    for df, target, heads, how, used in cases:
        cfg = TrainConfig(target=target, heads=heads, target_used="stale")
        assert (cfg.resolve_target(df), cfg.target_used, cfg.class_column) == (how, used, used), (target, how)
    # `imgcls runs` reads the record; a config.yaml from before it, its --target
    assert run_target({"target": "artist", "target_used": "label"}) == "label"
    assert run_target({"target": "artist"}) == "artist" and run_target({}) == "label"


def test_target_naming_the_column_split_read_the_labels_from_is_the_label_task(tmp_path, monkeypatch):
    """DACON's `split train.csv --label-col artist` writes splits.csv with a label column and no artist; `train
    data/splits.csv --target artist` was refused ("--target artist: the data has no such column"), though on the raw
    train.csv it is the label task. The summaries record the column the labels were read from (label_col: split's,
    and clean's / preprocess.json, carried along the chain), and train resolves --target artist to the label task."""
    from conftest import make_dacon_csv
    from imgcls import manifest as mf
    make_dacon_csv(tmp_path)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["split", "train.csv", "--label-col", "artist", "--val", "0.5", "--no-near-dup",
                                 "-q"])
    assert r.exit_code == 0, r.output
    assert "artist" not in pd.read_csv(tmp_path / "data" / "splits.csv").columns
    assert json.loads((tmp_path / "data" / "splits_summary.json").read_text())["label_col"] == "artist"
    r = CliRunner().invoke(app, ["train", "data/splits.csv", "--target", "artist", "--model", "test_resnet",
                                 "--no-pretrained", "--img-size", "32", "--batch-size", "8", "--workers", "0",
                                 "--device", "cpu", "--aug", "none", "--epochs", "1", "--no-plots", "--out", "runs",
                                 "--name", "A"])
    said = " ".join(r.output.split())
    assert r.exit_code == 0 and said.count("--target artist: the column holds the labels of data/splits.csv (read "
                                           "from that column, as recorded beside it), so the run predicts the label "
                                           "task") == 1, r.output
    config = TrainConfig.load(tmp_path / "runs" / "A" / "config.yaml")
    assert (config.target, config.target_used) == ("artist", "label")
    assert read_checkpoint(tmp_path / "runs" / "A" / "best.pt")["meta"]["target"] == "label"
    # the record goes along the chain: clean --label-col artist, preprocess, split (and a --check --fix's table)
    for args in (["clean", "train.csv", "--label-col", "artist", "--exact-only", "--no-ood", "-q"],
                 ["preprocess", "data/clean", "-q"], ["split", "data/processed", "--out", "data/s.csv", "-q",
                                                     "--no-near-dup", "--val", "0.5"],
                 ["split", "--check", "data/s.csv", "--fix", "--out", "data/fixed.csv", "-q"]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, (args, r.output)
    assert [mf.recorded_label_col(tmp_path / "data" / t) for t in ("clean", "processed", "s.csv", "fixed.csv")] \
        == ["artist"] * 4
    # another column is none the labels were read from: refused as before
    r = CliRunner().invoke(app, ["train", "data/splits.csv", "--target", "style", "--out", "runs", "--name", "B"])
    assert r.exit_code == 2 and "--target style: the data has no such column" in r.output, r.output


def test_target_naming_a_csv_s_guessed_label_column_is_the_label_task(tmp_path, monkeypatch):
    """A CSV whose labels are read from its `class` column unasked (no --label-col) recorded nothing: `train
    train.csv --target class` and `train data/splits.csv --target class` were refused ("no such column"), though
    --label-col class made them the label task. The column is recorded as --label-col's, and resolves likewise."""
    from conftest import make_image
    from imgcls import manifest as mf
    rows = []
    for i in range(8):
        make_image(tmp_path / "train" / f"{i}.png", seed=i)
        rows.append({"img_path": f"train/{i}.png", "class": "ab"[i % 2]})
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    monkeypatch.chdir(tmp_path)
    raw = mf.load(tmp_path / "train.csv", mf.LayoutOptions())
    assert "class" not in raw.columns and TrainConfig(target="class").resolve_target(raw) == "recorded"
    r = CliRunner().invoke(app, ["split", "train.csv", "--val", "0.5", "--no-near-dup", "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "data" / "splits_summary.json").read_text())["label_col"] == "class"
    split = mf.load(tmp_path / "data" / "splits.csv", mf.LayoutOptions())
    cfg = TrainConfig(target="class")
    assert cfg.resolve_target(split) == "recorded" and cfg.target_used == "label"
    assert TrainConfig(target="style").resolve_target(split) == ""


def test_raw_age_target_on_profile_data_is_said_before_training(tmp_path, monkeypatch, capsys):
    """`train --target age` on the mask competition's profiles trained one class per age for the whole run and was
    refused only by ensemble --combine profile; it is said once the columns are known, before the heads are built
    and any image is decoded, naming --target age_band."""
    import imgcls.train.run as tr
    from imgcls import manifest as mf
    df = mf.load(make_profiles(tmp_path / "profiles", n_profiles=4), mf.LayoutOptions())
    mf.write(df, tmp_path / "m.csv")

    class Stop(Exception):
        pass

    def stop(*a, **k):
        raise Stop
    monkeypatch.setattr(tr, "_heads_meta", stop)
    for target, said in (("age", True), ("age_band", False)):
        capsys.readouterr()
        with pytest.raises(Stop):
            run_train(TrainConfig(src=str(tmp_path / "m.csv"), model="test_resnet", pretrained=False, img_size=32,
                                  workers=0, device="cpu", epochs=1, target=target, out=str(tmp_path / "runs")))
        err = " ".join(capsys.readouterr().err.split())
        assert ("--target age trains one class per age" in err and "train --target age_band" in err) == said, err
    assert not (tmp_path / "runs").exists()


def test_no_validation_images_of_a_csvs_group_column_names_group_col_none(tmp_path):
    """A competition CSV whose `group` column is a super-class (shoes / clothes), read as the groups unasked: train's
    --val-split draw validated on none of it and said "no validation images; check the split" only. The refusal
    now names the column and the way out, split --group-col none (train reads no --group-col)."""
    from imgcls.errors import UserError
    raw = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6})
    rows = [{"path": f"raw/{c}/{p.name}", "label": c, "group": "shoes" if c == "a" else "clothes"}
            for c in ("a", "b") for p in sorted((raw / c).iterdir())]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(tmp_path / "train.csv"), epochs=1, out=str(tmp_path / "runs"), **TINY))
    said = str(e.value)
    assert said.startswith("no validation images") and "column 'group', read without --group-col" in said, said
    assert "--group-col none" in said and "group_col='none'" in said, said


def test_the_group_column_fix_names_the_data_as_typed_and_its_target(tmp_path, monkeypatch):
    """The --group-col none fix above named the data by its absolute path (cfg.src, anchored), not as typed, and split
    it on `label` with train on data/splits.csv without the --target the run trained on: it is now _split_first's
    pair of commands, with --stratify and --target of a run on another column."""
    from imgcls.errors import UserError
    raw = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6})
    rows = [{"path": f"raw/{c}/{p.name}", "label": c, "kind": c, "group": "g"}
            for c in ("a", "b") for p in sorted((raw / c).iterdir())]
    pd.DataFrame(rows).to_csv(tmp_path / "grp.csv", index=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src="grp.csv", epochs=1, target="kind", out="runs", **TINY))
    said = str(e.value)
    assert str(tmp_path) not in said, said
    assert "imgcls split grp.csv --stratify kind --group-col none" in said, said
    assert "SplitConfig(stratify=['kind'], group_col='none')" in said, said
    assert "then imgcls train data/splits.csv --model test_resnet --no-pretrained --img-size 32 --target kind " \
           "--epochs 1" in said, said


def test_the_split_first_fix_types_oversample_none_as_off(tmp_path):
    """oversample=None (a Python caller's off, parse_target's None; its default is auto) was set but left out of
    the split-first fix's train command (_split_first dropped every None), which then trained with auto's median.
    It is typed as its off value; the Python call keeps the caller's None, which means the same."""
    from imgcls.errors import UserError
    raw = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6})
    rows = [{"path": f"raw/{c}/{p.name}", "label": c, "group": "g"} for c in ("a", "b")
            for p in sorted((raw / c).iterdir())]
    pd.DataFrame(rows).to_csv(tmp_path / "grp.csv", index=False)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(tmp_path / "grp.csv"), epochs=1, out=str(tmp_path / "runs"), oversample=None,
                              **TINY))
    said = str(e.value)
    assert "--img-size 32 --oversample off --epochs 1" in said and "img_size=32, oversample=None, epochs=1" in said, \
        said
    from imgcls.options import specs, typed_text
    assert typed_text(TrainConfig(oversample=None), ["oversample"]) == "--oversample off"
    assert TrainConfig(oversample=None).oversample_target() is None and specs(TrainConfig)["oversample"][1].off[0] == \
        "off"


def test_no_validation_images_of_a_draw_the_exact_copies_emptied_names_them(tmp_path):
    """A folder whose every class is copies of one picture (the scan's sha256 links them, one unit per class, which
    the --val-split draw keeps in train) was refused as "no validation images; check the split": no split column to
    check. The line now names the copies, the rule, and the fix; without the copies' links the draw has both sides."""
    import shutil

    from imgcls.errors import UserError
    raw = make_image_folder(tmp_path / "raw", {"a": 1, "b": 1})
    for c in ("a", "b"):
        one = next((raw / c).iterdir())
        for i in range(5):
            shutil.copy(one, raw / c / f"copy{i}{one.suffix}")
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(raw), epochs=1, out=str(tmp_path / "runs"), **TINY))
    said = str(e.value)
    assert said.startswith("no validation images: the 12 images are 2 distinct pictures (exact copies"), said
    assert said.endswith("add distinct images of each class (a copy of a training image validates nothing)"), said
    assert not (tmp_path / "runs").exists()
    from imgcls import manifest as mf
    from imgcls.train.run import check_data
    one = mf.load(str(raw), mf.LayoutOptions()).assign(sha256="x")     # one picture under both labels
    with pytest.raises(UserError, match=r"the 12 images are 1 distinct picture \(exact copies"):
        check_data(TrainConfig(src=str(raw), **TINY), one, src=str(raw), scanned=True)


def test_the_group_col_none_fix_names_the_data_as_typed(tmp_path, monkeypatch):
    """The --group-col none way out named the CSV by its absolute path (config.yaml's, anchored) while every other
    line of train names the data as typed: `imgcls split train.csv --group-col none`."""
    from imgcls.errors import UserError
    raw = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6})
    rows = [{"path": f"raw/{c}/{p.name}", "label": c, "group": "shoes" if c == "a" else "clothes"}
            for c in ("a", "b") for p in sorted((raw / c).iterdir())]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src="train.csv", epochs=1, out=str(tmp_path / "runs"), **TINY))
    said = str(e.value)
    assert "(split without them: imgcls split train.csv --group-col none (Python: " in said, said
    assert "run_split('train.csv', cfg=SplitConfig(group_col='none'))" in said, said


def test_a_fold_with_no_training_images_is_refused_before_the_long_work(tmp_path, monkeypatch):
    """train's "no training images in fold 0" (every row of the table in fold 0) was said as the first fold started:
    after the starting weights were loaded, the run folder made and every image decoded into the cache. It is now
    said with the data's other refusals, before any of that: no run folder is left behind, no cache planned."""
    import imgcls.train.data as tdata
    from imgcls.errors import UserError
    raw = make_image_folder(tmp_path / "raw", {"a": 4, "b": 4})
    rows = "".join(f"raw/{c}/{p.name},{c},0\n" for c in ("a", "b") for p in sorted((raw / c).iterdir()))
    (tmp_path / "folds.csv").write_text("path,label,fold\n" + rows)

    def no_cache(*a, **k):
        raise AssertionError("the decoded-image cache was planned before the refusal")
    monkeypatch.setattr(tdata, "plan_cache", no_cache)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(tmp_path / "folds.csv"), epochs=1, folds="all", out=str(tmp_path / "runs"),
                              **TINY))
    assert str(e.value) == "no training images in fold 0; check the split", str(e.value)
    assert not (tmp_path / "runs").exists()


def test_an_empty_fold_of_a_csv_with_a_group_column_is_not_blamed_on_its_groups(tmp_path):
    """"no training images in fold 0" of a competition CSV with a `group` column (read as the groups unasked) named
    the column and split --group-col none as the way out, though the table's fold column, not the groups, left the
    fold empty (every row in fold 0). The groups are named only where they kept a --val-split draw on one side."""
    from imgcls.errors import UserError
    raw = make_image_folder(tmp_path / "raw", {"a": 4, "b": 4})
    rows = "".join(f"raw/{c}/{p.name},{c},{c}{i % 2},0\n" for c in ("a", "b")
                   for i, p in enumerate(sorted((raw / c).iterdir())))
    (tmp_path / "train.csv").write_text("path,label,group,fold\n" + rows)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(tmp_path / "train.csv"), epochs=1, folds="all", out=str(tmp_path / "runs"),
                              **TINY))
    assert str(e.value) == "no training images in fold 0; check the split", str(e.value)


def test_init_from_a_run_whose_loss_diverged_is_refused_in_one_line_before_the_run_folder(tmp_path):
    """A run whose loss went NaN in its first epoch keeps a best.pt of NaN weights (epoch 1: nothing beat it).
    predict, export and ensemble refuse it in one line; `train --init-from` it loaded the NaN weights and trained a
    new run that diverged at its first step. It is refused as the starting weights are loaded, no run folder made."""
    import torch
    from conftest import make_tiny_run
    from imgcls.errors import UserError
    run = make_tiny_run(tmp_path / "runs" / "div", classes=("a", "b"), model="test_resnet")
    obj = torch.load(run / "best.pt", weights_only=False)
    next(t for t in obj["state_dict"].values() if t.is_floating_point()).fill_(float("nan"))
    torch.save(obj, run / "best.pt")
    make_image_folder(tmp_path / "raw", {"a": 4, "b": 4})
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(tmp_path / "raw"), epochs=1, init_from=str(run), out=str(tmp_path / "new"),
                              **{**TINY, "pretrained": True}))
    assert str(e.value) == (f"--init-from {run / 'best.pt'} holds NaN or infinite weights: the run's loss diverged; "
                            f"start from another run, or train it again with a lower --lr"), str(e.value)
    assert not (tmp_path / "new").exists()


def test_no_validation_images_in_a_tune_trial_names_tune_on_the_split_table(tmp_path):
    """The refusal above, met by a tune trial (run_train's study: tune's config), named `then imgcls train
    data/splits.csv` as the way on from a study: it now names `imgcls tune data/splits.csv --study S-split`, as the
    trial's other fixes (_split_first) do."""
    from imgcls.errors import UserError
    from imgcls.tune import TuneConfig
    raw = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6})
    rows = [{"path": f"raw/{c}/{p.name}", "label": c, "group": "shoes" if c == "a" else "clothes"}
            for c in ("a", "b") for p in sorted((raw / c).iterdir())]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(UserError) as e:
        run_train(TrainConfig(src=str(tmp_path / "train.csv"), epochs=1, out=str(tmp_path / "runs"), **TINY),
                  track_group="S", study=TuneConfig(study="S"))
    said = str(e.value)
    assert "--group-col none (Python: " in said, said
    assert "then imgcls tune data/splits.csv --model test_resnet --no-pretrained --img-size 32 --epochs 1 " \
           "--batch-size 8 --workers 0 --device cpu --study S-split" in said, said     # not the trial's --out
    assert "imgcls train" not in said, said


def test_a_run_checks_its_name_once(two_class, tmp_path, monkeypatch):
    """run_train checked a new run's --name three times (its up-front checks, _run_train, claim_run_dir) and a
    resumed run's folder name in _run_train: once each now, a bad name still refused before anything is written."""
    import imgcls.train.rundir as rundir
    from imgcls.errors import UserError
    calls, real = [], rundir.check_run_name
    monkeypatch.setattr(rundir, "check_run_name", lambda name: calls.append(name) or real(name))
    run = run_train(cfg_for(two_class, tmp_path, name="named", epochs=2), stop_after=1)
    assert calls == ["named"]
    calls.clear()
    run_train(TrainConfig.resolve(resume=run), resume=run)
    assert calls == ["named"]
    with pytest.raises(UserError, match="not a plain folder name"):
        run_train(cfg_for(two_class, tmp_path, name=".."))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["named"]


def test_a_resumed_kfold_set_records_how_its_continued_folds_ran(tmp_path, monkeypatch):
    """A k-fold set resumed with other resources: the set's config.yaml and each fold's that trains on in this
    session record this session's workers_used (a fold's config.yaml is its run's record for predict and ensemble)."""
    import imgcls.train.run as train
    from imgcls import manifest as mf
    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    run = run_train(TrainConfig(**{**TINY, "src": str(tmp_path / "splits.csv"), "out": str(tmp_path / "runs"),
                                   "name": "kf", "epochs": 2, "folds": "all", "aug": "none", "workers": None}),
                  stop_after=1)
    folds = [run / "fold_0", run / "fold_1"]
    assert [TrainConfig.load(d / "config.yaml").workers_used for d in (run, *folds)] == [0, 0, 0]
    monkeypatch.setattr(train, "default_workers", lambda device_type, cache: 1)     # another machine's default
    run_train(TrainConfig.resolve(resume=run), resume=run)
    assert [TrainConfig.load(d / "config.yaml").workers_used for d in (run, *folds)] == [1, 1, 1]
    assert "(the earlier session: workers_used 0)" in (run / "train.log").read_text()


def test_a_resumed_kfold_set_given_its_moved_data_records_the_new_path_everywhere(tmp_path):
    """`train DATA --resume RUN` with the set's data moved (another disk, another machine): the set's config.yaml
    kept the first session's src while the folds first written in the resumed session recorded the new one, so
    predict's leak check read other data for the set and for its folds. The new path (the data check_resume_data
    found to hold the run's validation images) is recorded in the set's config.yaml and in every fold's, said in
    one line and kept in train.log."""
    import shutil
    from imgcls import manifest as mf
    df = mf.load(make_image_folder(tmp_path / "disk1" / "data" / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    old = tmp_path / "disk1" / "data" / "splits.csv"
    mf.write(df, old)
    run = _kfold_set_stopped_after_fold_0(old, tmp_path / "runs")
    (tmp_path / "disk2").mkdir()
    shutil.move(tmp_path / "disk1" / "data", tmp_path / "disk2" / "data")         # the data moved
    new = tmp_path / "disk2" / "data" / "splits.csv"
    r = CliRunner().invoke(app, ["train", str(new), "--resume", str(run)])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert (run / "oof_score.json").is_file()
    assert [TrainConfig.load(d / "config.yaml").src for d in (run, run / "fold_0", run / "fold_1")] == [str(new)] * 3
    said = f"data {new} (recorded: {old}); config.yaml records the new path"
    assert said in " ".join(r.output.split()), r.output
    assert said in (run / "train.log").read_text()
    # the fold's record is otherwise kept as it was; a resume naming the same data again changes nothing
    before = [(d / "config.yaml").read_text() for d in (run, run / "fold_0", run / "fold_1")]
    r = CliRunner().invoke(app, ["train", str(new), "--resume", str(run)])
    assert r.exit_code == 0 and "recorded:" not in r.output, r.output
    assert [(d / "config.yaml").read_text() for d in (run, run / "fold_0", run / "fold_1")] == before


def test_a_renamed_run_resumed_records_its_folder_now_so_its_config_trains_no_run_of_the_old_name(tmp_path):
    """`mv runs/kf runs/kf2; train --resume runs/kf2` left config.yaml's `name: kf` (the set's and its folds'), so
    `train --config runs/kf2/config.yaml` trained into a new runs/kf. The resumed run records the folder it is in
    now, in every record, said in train.log; its config then names its own folder, which train refuses to train
    over, as it does for a run never renamed."""
    import shutil
    from imgcls import manifest as mf
    df = mf.load(make_image_folder(tmp_path / "data" / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "data" / "splits.csv")
    old = _kfold_set_stopped_after_fold_0(tmp_path / "data" / "splits.csv", tmp_path / "runs")
    run = old.parent / "kf2"
    shutil.move(old, run)
    r = CliRunner().invoke(app, ["train", "--resume", str(run)])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert (run / "oof_score.json").is_file()
    for d in (run, run / "fold_0", run / "fold_1"):
        rec = TrainConfig.load(d / "config.yaml")
        assert (rec.name, Path(rec.out).resolve()) == ("kf2", run.parent.resolve()), d
    assert f"resumed in {run} (recorded: {old}, renamed or moved since)" in (run / "train.log").read_text()
    r = CliRunner().invoke(app, ["train", "--config", str(run / "config.yaml")])
    assert r.exit_code == 2 and f"{run} already holds a finished run" in " ".join(r.output.split()), r.output
    assert not old.exists()


@pytest.mark.parametrize("kfold", [False, True])
def test_a_renamed_finished_run_given_to_resume_records_its_folder_now(tmp_path, kfold):
    """`mv runs/D runs/D2; train --resume runs/D2` on a finished run said "already finished, nothing to resume" and
    left `name: D` in its config.yaml (a k-fold set's and its folds'), so `train --config runs/D2/config.yaml` trained
    a new runs/D. It records the folder it is in now, as an unfinished run resumed does, said on screen and in
    train.log before it is said to be finished; the same resume again writes nothing."""
    import shutil
    from imgcls import manifest as mf
    src = make_image_folder(tmp_path / "data" / "raw", {"a": 6, "b": 6}, size=(32, 32))
    if kfold:
        df = mf.load(src)
        df["fold"] = np.arange(len(df)) % 2
        src = mf.write(df, tmp_path / "data" / "splits.csv")
    old = run_train(cfg_for(src, tmp_path, name="D", epochs=1, **({"folds": "all"} if kfold else {})))
    run = old.parent / "D2"
    shutil.move(old, run)
    records = [run, *((run / "fold_0", run / "fold_1") if kfold else ())]
    r = CliRunner().invoke(app, ["train", "--resume", str(run)])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    said, done = (f"finished run given in {run} (recorded: {old}, renamed or moved since); config.yaml records its "
                  f"folder now", "D2: already finished, nothing to resume")
    line = " ".join(r.output.split())
    assert said in line and done in line and line.index(said) < line.index(done), r.output
    assert said in (run / "train.log").read_text()
    for d in records:
        rec = TrainConfig.load(d / "config.yaml")
        assert (rec.name, Path(rec.out).resolve()) == ("D2", run.parent.resolve()), d
    before = [(d / "config.yaml").read_text() for d in records]
    r = CliRunner().invoke(app, ["train", "--resume", str(run)])      # recorded: nothing said or written
    assert r.exit_code == 0 and "recorded:" not in r.output and done in " ".join(r.output.split()), r.output
    assert [(d / "config.yaml").read_text() for d in records] == before
    r = CliRunner().invoke(app, ["train", "--config", str(run / "config.yaml")])
    assert r.exit_code == 2 and f"{run} already holds a finished run" in " ".join(r.output.split()), r.output
    assert not old.exists()


def test_record_folder_of_a_run_trained_with_out_dot_resumed_from_elsewhere_is_no_move(tmp_path, monkeypatch):
    """`train --out . --name D` records `out: .` (the working folder it ran in): resumed from another folder, the
    suffix rule never matched an empty path, so the run was said renamed or moved (recorded: D) and its records
    rewritten (a finished run's in a read-only folder refused). `.` names no folder to contradict."""
    run = tmp_path / "proj" / "D"
    run.mkdir(parents=True)
    TrainConfig(src=str(tmp_path / "data"), model="test_resnet", name="D", out=".").save(run / "config.yaml")
    before = (run / "config.yaml").read_text()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert TrainConfig(src=str(tmp_path / "data"), model="test_resnet", name="D", out=str(run.parent)
                       ).record_folder(run) == []
    assert (run / "config.yaml").read_text() == before


def test_record_folder_takes_a_relative_out_from_where_the_run_is_not_the_working_folder(tmp_path, monkeypatch):
    """config.yaml records train's relative --out as given (outputs/runs), from the working folder train ran in.
    TrainConfig.record_folder resolved it from the resume's working folder, so `cd elsewhere; train --resume
    /proj/outputs/runs/D` said the run was renamed or moved (recorded: outputs/runs/D) and rewrote its records, a
    finished run's too (refused where its folder is read-only). A run whose folder ends with the recorded out/name
    moved nothing; one renamed is recorded still."""
    run = tmp_path / "proj" / "outputs" / "runs" / "D"
    (run / "fold_0").mkdir(parents=True)
    for d in (run, run / "fold_0"):
        TrainConfig(src=str(tmp_path / "data"), model="test_resnet", name="D", out="outputs/runs", folds="all").save(
            d / "config.yaml")
    before = [(d / "config.yaml").read_text() for d in (run, run / "fold_0")]
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    now = TrainConfig(src=str(tmp_path / "data"), model="test_resnet", name="D", out=str(run.parent))
    assert now.record_folder(run) == []
    assert [(d / "config.yaml").read_text() for d in (run, run / "fold_0")] == before
    run2 = run.parent / "D2"
    run.rename(run2)
    now.name = "D2"
    assert now.record_folder(run2) == ["outputs/runs/D"]
    for d in (run2, run2 / "fold_0"):
        rec = TrainConfig.load(d / "config.yaml")
        assert (rec.name, rec.out) == ("D2", "outputs/runs"), d


def test_record_data_reads_every_record_before_writing_and_a_damaged_one_is_one_line(tmp_path):
    """TrainConfig.record_data (a resumed run given its moved data) read each fold's config.yaml with a bare
    yaml.safe_load: a damaged fold record was a traceback, after the run's own record had been rewritten."""
    from imgcls.errors import UserError
    run = tmp_path / "run"
    (run / "fold_0").mkdir(parents=True)
    old = TrainConfig(src=str(tmp_path / "old"), model="test_resnet", folds="all")     # a k-fold set's, as train writes
    old.save(run / "config.yaml")
    (run / "fold_0" / "config.yaml").write_text("src: [unclosed\n", encoding="utf-8")
    before = (run / "config.yaml").read_bytes()
    with pytest.raises(UserError, match=r"fold_0/config.yaml is not a readable YAML config"):
        TrainConfig(src=str(tmp_path / "new"), model="test_resnet").record_data(run)
    assert (run / "config.yaml").read_bytes() == before


def test_a_finished_run_given_its_moved_data_records_the_new_path_then_says_it_is_finished(tmp_path):
    """`train NEW --resume RUN` on a finished run whose data moved said "already finished, nothing to resume" before
    anything else, so its config.yaml kept the old src (predict's leak check, ensemble, train_longer's command then
    named data that is gone). The new path is checked to hold the run's validation images, recorded, said (screen
    and train.log), then the run is said to be finished; other data is refused in one line, the record kept."""
    import shutil
    old = make_image_folder(tmp_path / "disk1" / "data", {"a": 10, "b": 10}, size=(40, 40))
    run = run_train(cfg_for(old, tmp_path, epochs=1))
    (tmp_path / "disk2").mkdir()
    shutil.move(old, tmp_path / "disk2" / "data")                                  # the data moved
    new = tmp_path / "disk2" / "data"
    other = make_image_folder(tmp_path / "other", {"c": 4, "d": 4}, size=(40, 40))
    before = (run / "config.yaml").read_text()
    r = CliRunner().invoke(app, ["train", str(other), "--resume", str(run)])
    assert r.exit_code == 2 and "holds none of the run's validation images" in " ".join(r.output.split()), r.output
    assert (run / "config.yaml").read_text() == before
    r = CliRunner().invoke(app, ["train", str(new), "--resume", str(run)])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert TrainConfig.load(run / "config.yaml").src == str(new)
    said, done = (f"finished run given the data {new} (recorded: {old}); config.yaml records the new path",
                  "run: already finished")
    line = " ".join(r.output.split())
    assert said in line and done in line and line.index(said) < line.index(done), r.output
    assert said in (run / "train.log").read_text()
    rec = (run / "config.yaml").read_text()
    assert rec.replace(str(new), str(old)) == before        # only src changed
    r = CliRunner().invoke(app, ["train", str(new), "--resume", str(run)])      # the same data again: nothing
    assert r.exit_code == 0 and "recorded:" not in r.output and done in r.output, r.output
    assert (run / "config.yaml").read_text() == rec


def test_a_run_resumed_through_a_symlink_is_named_by_its_real_folder(tmp_path):
    """`train --resume LINK` (a symlink to the run folder) took the run's name and --out from the link as typed: a
    k-fold set's next fold recorded `name: LINK` in its config.yaml, and the run was said (and tracked, reported)
    as LINK. The run's name is its real folder's: the link is resolved."""
    from imgcls import manifest as mf
    df = mf.load(make_image_folder(tmp_path / "data" / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "data" / "splits.csv")
    run = _kfold_set_stopped_after_fold_0(tmp_path / "data" / "splits.csv", tmp_path / "runs")
    link = tmp_path / "shortcut"
    link.symlink_to(run, target_is_directory=True)
    r = CliRunner().invoke(app, ["train", "--resume", str(link)])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert (run / "oof_score.json").is_file() and link.is_symlink()
    for d in (run, run / "fold_0", run / "fold_1"):
        rec = TrainConfig.load(d / "config.yaml")
        assert (rec.name, rec.out) == ("kf", str(tmp_path / "runs")), d
    r = CliRunner().invoke(app, ["train", "--resume", str(link)])
    assert r.exit_code == 0 and "kf: already finished, nothing to resume" in r.output, r.output


def test_a_run_resumed_through_a_symlinked_folder_above_it_records_the_real_folder(tmp_path):
    """`train --resume LINK/kf` (LINK a symlink to the folder of runs) resolved only a link as the last part: the
    folds written in that session recorded `out: LINK`, the link's path, not the real folder's. The whole path is
    resolved where it is not the real one."""
    from imgcls import manifest as mf
    tmp_path = tmp_path.resolve()
    df = mf.load(make_image_folder(tmp_path / "data" / "raw", {"a": 6, "b": 6}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "data" / "splits.csv")
    run = _kfold_set_stopped_after_fold_0(tmp_path / "data" / "splits.csv", tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    r = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "link" / "kf")])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert (run / "oof_score.json").is_file()
    for d in (run, run / "fold_0", run / "fold_1"):
        rec = TrainConfig.load(d / "config.yaml")
        assert (rec.name, rec.out) == ("kf", str(tmp_path / "real")), d


def test_the_epoch_of_a_run_in_training_is_read_through_read_checkpoint(tmp_path, monkeypatch, capsys):
    """rundir.training_now read the epoch of a run being trained with torch_load_safely itself, beside
    checkpoint.read_checkpoint, the reader of a checkpoint (its checks, its mmap). The epoch is checkpoint's now
    (saved_epoch, through read_checkpoint with mmap); training_now says it with the run's progress (its callers
    added it themselves), reading the checkpoint only for a run in training."""
    from conftest import make_tiny_run, mark_training
    from imgcls.ensemble.spec import warn_training_now
    from imgcls.train import checkpoint
    from imgcls.train.rundir import RunLock, training_now
    run = mark_training(make_tiny_run(tmp_path / "runs" / "busy"), done=3, epochs=10, best=2)
    read = []
    reader = checkpoint.read_checkpoint
    monkeypatch.setattr(checkpoint, "read_checkpoint", lambda p, **k: read.append((Path(p), k)) or reader(p, **k))
    with RunLock(run):
        assert training_now(run / "best.pt") == "epoch 2, epochs done 3/10"
        assert read == [(run / "best.pt", {"mmap": True})]
        read.clear()
        capsys.readouterr()
        warn_training_now(run, run / "best.pt")
    said = " ".join(capsys.readouterr().err.split())
    assert f"{run} is being trained by imgcls train now: its best.pt is from an unfinished run (epoch 2, epochs " \
           f"done 3/10)" in said, said
    assert read == [(run / "best.pt", {"mmap": True})]
    warn_training_now(run, run / "best.pt")             # no train holds it: nothing read, nothing said
    assert len(read) == 1 and "being trained" not in capsys.readouterr().err


def test_single_head_profile_run_knows_the_18_classes(tmp_path):
    """On a profile set missing some classes (6 people: no 18 classes), a single-head run on the label had the
    classes it saw ('label (15)') and the multi-head run the competition's 18: macro-F1s over other class sets, and
    `imgcls runs` called them different tasks. A single-head run on the profile formula's labels now has every
    class of the task too; a class without rows counts with F1 0 in both."""
    from imgcls import manifest as mf
    from imgcls.runs import read_run
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    seen = set(mf.load(src, mf.LayoutOptions())["label"])
    assert len(seen) < 18
    single = run_train(cfg_for(src, tmp_path, name="single", epochs=1))
    meta = read_checkpoint(single / "best.pt")["meta"]
    assert meta["classes"] == [str(i) for i in range(18)] and meta["decode"] == "single"
    assert read_run(single).task == "label (18)"        # a multi-head run's (test_multi_branch_decode: 18 classes)
    assert len(pd.read_csv(single / "per_class.csv")) == 18


def test_a_profile_run_names_its_class_ids(tmp_path, monkeypatch):
    """per_class.csv, the report's per-class table and its confusion matrices named a profile run's classes 0..17
    only: they now say what each is ('4 (wear, female, 30-59)'), from the age bands the checkpoint records."""
    import html
    from imgcls import report
    ticks, save = [], report.save_figure

    def keep(fig, path, **kw):
        ticks.extend(t.get_text() for ax in fig.axes for t in ax.get_yticklabels())
        return save(fig, path, **kw)
    monkeypatch.setattr(report, "save_figure", keep)
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    run = run_train(cfg_for(src, tmp_path, name="single", epochs=1, plots=True))
    pc = pd.read_csv(run / "per_class.csv", keep_default_na=False, dtype=str)
    assert list(pc.columns[1:3]) == ["class", "meaning"]          # after best_epoch
    assert dict(zip(pc["class"], pc["meaning"]))["4"] == "wear, female, 30-59"
    page = html.unescape((run / "report.html").read_text()).replace("\n", "")
    assert "<td>4</td><td>wear, female, 30-59</td>" in page
    assert "4 (wear, female, 30-59)" in ticks and "17 (not_wear, female, >=60)" in ticks


def test_a_taken_run_name_names_the_keywords_a_python_caller_passes(two_class, tmp_path):
    """The refusals of a taken run folder told a Python caller of run_train to 'choose another --name' or 'pass
    --exist-ok', flags it has no way to pass; each fix now names its keyword too (options.python_too), and the
    held run's fix names run_train's own call, --resume being no field of TrainConfig."""
    from imgcls.errors import UserError
    (tmp_path / "runs" / "run").mkdir(parents=True)
    with pytest.raises(UserError, match=re.escape("already exists; choose another --name (Python: name=), or pass "
                                                  "--exist-ok (Python: exist_ok=True) to train into it")):
        run_train(cfg_for(two_class, tmp_path))
    (tmp_path / "runs" / "run" / "last.pt").write_bytes(b"")      # a run's checkpoint: a run, not finished
    run = tmp_path / "runs" / "run"
    with pytest.raises(UserError, match=re.escape(f"continue it with imgcls train --resume {run} (Python: run_train("
                                                  f"TrainConfig(), resume='{run}')), or choose "
                                                  f"another --name (Python: name=)")):
        run_train(cfg_for(two_class, tmp_path, exist_ok=True))


def test_a_resume_reads_its_record_once_and_says_an_option_that_never_acted_once(adamw_run, tmp_path):
    """run_train merged a resume's record with the flags given (resume_config) twice: up front, for the 'cannot
    change' refusal before timm's name check, and again in _run_train for the config it goes on with; a recorded
    option that never acted (--smoothing under --loss ce) was said twice. Merged once now and passed on."""
    import shutil
    run = shutil.copytree(adamw_run[1], tmp_path / "adamw")
    record = (run / "config.yaml").read_text()
    assert "\nloss: ce\n" in record
    (run / "config.yaml").write_text(record.replace("\nsmoothing: 0.1\n", "\nsmoothing: 0.3\n"))
    r = CliRunner().invoke(app, ["train", "--resume", str(run)])
    said = " ".join(r.output.split())
    assert r.exit_code == 0 and "already finished" in said, r.output
    assert said.count("--smoothing 0.3 of ") == 1 and "left at the default" in said, r.output


def test_a_resume_with_another_model_says_it_cannot_change_before_timm_s_name_check(adamw_run, tmp_path):
    """`imgcls train --resume RUN --model typo` said "unknown model 'typo'" once check_model_name moved up front
    (before the process group), where it said resume_config's '--model cannot change (drop the flag, or start a new
    run)', the line that helps a resume. A resume's changed option is refused up front now, before timm's check,
    whatever the name; a new run's typo is still an unknown model, and the recorded --model given again resumes."""
    src, run = adamw_run
    before = {f.name: f.stat().st_mtime_ns for f in run.iterdir()}
    for model in ("resnet_nope", "resnet18"):
        r = CliRunner().invoke(app, ["train", "--resume", str(run), "--model", model])
        said = " ".join(r.output.split())
        assert r.exit_code == 2 and f"--model test_resnet -> {model} cannot change (drop the flag, or start a new " \
            "run)" in said and "unknown model" not in said, r.output
    r = CliRunner().invoke(app, ["train", "--resume", str(run), "--model", "test_resnet"])
    assert r.exit_code == 0 and "already finished" in r.output, r.output
    assert {f.name: f.stat().st_mtime_ns for f in run.iterdir()} == before
    r = CliRunner().invoke(app, ["train", str(src), "--model", "resnet_nope", "--out", str(tmp_path / "runs")])
    assert r.exit_code == 2 and "unknown model 'resnet_nope'" in r.output and "cannot change" not in r.output


@pytest.mark.slow
def test_sigterm_says_what_the_run_keeps_and_still_ends_by_sigterm(two_class, tmp_path):
    """`timeout 3600 imgcls train ...` in a script, `kill PID`: SIGTERM ended train at once and said nothing (exit
    143), where Ctrl-C says what the run folder keeps and the resume command. SIGTERM to a train process says the
    same line, then the process still ends by SIGTERM (exit 143: scripts rely on it)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import imgcls
    run = tmp_path / "runs" / "cut"
    env = {**os.environ, "PYTHONPATH": str(Path(imgcls.__file__).parents[1]), "COLUMNS": "300"}
    proc = subprocess.Popen([sys.executable, "-m", "imgcls", "train", str(two_class), "--model", "test_resnet",
                             "--no-pretrained", "--img-size", "32", "--batch-size", "8", "--workers", "0",
                             "--device", "cpu", "--epochs", "500", "--aug", "none", "--val-split", "0.3",
                             "--out", str(tmp_path / "runs"), "--name", "cut"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (run / "last.pt").is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None and (run / "last.pt").is_file(), proc.communicate(timeout=60)
        proc.send_signal(signal.SIGTERM)            # the process only, as `kill PID` sends it
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    said = " ".join(err.split())
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, err)
    assert f"interrupted: {run} keeps the epochs finished so far (last.pt); imgcls train --resume {run} " in said, said
    assert "Traceback" not in err, err


def test_a_kfold_set_s_out_of_fold_score_names_the_classes_no_fold_validated(tmp_path, capsys):
    """A class with one image is train in every fold (split's fold -1): the out-of-fold macro-F1 counts it with F1 0
    in its mean over every class; the set's line says so, as each fold's line does for its own val."""
    from imgcls import manifest as mf
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6, "c": 1}, size=(40, 40))
    df = mf.load(src)
    df["fold"] = np.where(df["label"] == "c", -1, np.arange(len(df)) % 2)
    df["split"] = np.where(df["fold"] == 0, "val", "train")
    mf.write(df, tmp_path / "data" / "splits.csv")
    run = run_train(cfg_for(tmp_path / "data" / "splits.csv", tmp_path, name="kf", epochs=1, folds="all"))
    said = " ".join(capsys.readouterr().err.split())
    line = next(s for s in said.split("out-of-fold macro-F1 over 2 folds")[1:])
    assert ("1 of 3 classes have no out-of-fold rows (c): each counts in the macro-F1 with F1 0 (the mean is over "
            "every class of the task)") in line.split("training")[0]
    assert "no out-of-fold rows (c)" in (run / "train.log").read_text()


def test_a_kfold_set_names_a_class_no_fold_validates_once_not_in_every_fold(tmp_path, capsys):
    """--folds all: each fold's 'no validation rows' line named the 1-image class split keeps in train in every fold
    (fold -1), the same line once per fold. It is said once for the set now; a fold's own line names only the
    classes that fold alone does not validate."""
    from imgcls import manifest as mf
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6, "c": 1, "d": 3}, size=(40, 40))
    df = mf.load(src)
    df["fold"] = np.where(df["label"] == "c", -1, np.arange(len(df)) % 2)
    df.loc[df["label"] == "d", "fold"] = [1, 1, -1]         # d validates in fold 1 only
    df["split"] = np.where(df["fold"] == 0, "val", "train")
    mf.write(df, tmp_path / "data" / "splits.csv")
    run = run_train(cfg_for(tmp_path / "data" / "splits.csv", tmp_path, name="kf", epochs=1, folds="all"))
    said = " ".join(capsys.readouterr().err.split())
    once = ("1 of 4 classes have no validation rows in any fold (c): each counts in every fold's macro-F1 with F1 0 "
            "(the mean is over every class of the task)")
    assert said.count(once) == 1 and said.index(once) < said.index("training "), said
    assert said.count("no validation rows") == 2, said       # the set's line, and fold 0's about d
    fold0 = said.split("(fold 0,")[1].split("(fold 1,")[0]
    assert "1 of 4 classes have no validation rows (d): each counts in the macro-F1 with F1 0" in fold0
    assert once in " ".join((run / "train.log").read_text().split())
    assert "no validation rows" not in (run / "fold_1" / "train.log").read_text()


def test_a_set_of_some_folds_names_the_folds_it_trains_not_any_fold(tmp_path, capsys):
    """--folds 0,1 of a 3-fold table: a class that validates in fold 2 alone was said to have "no validation rows in
    any fold", which the table contradicts; the set's line names the folds it trains."""
    from imgcls import manifest as mf
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6, "d": 2}, size=(40, 40))
    df = mf.load(src)
    df["fold"] = np.arange(len(df)) % 3
    df.loc[df["label"] == "d", "fold"] = 2         # d validates in fold 2 only
    df["split"] = np.where(df["fold"] == 0, "val", "train")
    mf.write(df, tmp_path / "data" / "splits.csv")
    run_train(cfg_for(tmp_path / "data" / "splits.csv", tmp_path, name="kf", epochs=1, folds="0,1"))
    said = " ".join(capsys.readouterr().err.split())
    assert "in any fold" not in said, said
    assert ("1 of 3 classes have no validation rows in folds 0, 1 (d): each counts in every fold's macro-F1 with "
            "F1 0") in said, said


def test_a_run_report_s_per_class_table_names_the_classes_without_val_rows(tmp_path):
    """per_class.csv keeps every class (a class with no val row: support 0, F1 0, counted in the macro-F1); the
    report's table showed such a row as a plain 0.0000 beside the scored ones, under '31 val rows'."""
    from imgcls import manifest as mf
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6, "c": 2}, size=(40, 40))
    df = mf.load(src)
    df["split"] = np.where((df["label"] != "c") & (np.arange(len(df)) % 3 == 0), "val", "train")
    mf.write(df, tmp_path / "data" / "splits.csv")
    run = run_train(cfg_for(tmp_path / "data" / "splits.csv", tmp_path, name="ho", epochs=1))
    pc = pd.read_csv(run / "per_class.csv")
    assert pc.loc[pc["class"] == "c", "support"].tolist() == [0]
    html = " ".join((run / "report.html").read_text().split())
    assert "1 of 3 classes have no val rows (c): each counts in the macro-F1 with F1 0" in html
    # its recall and F1 not scored ('–'), not 0.0000 as if the model had failed on its images
    NOT_SCORED = "–"     # as the report shows it (metrics.NOT_SCORED)
    row = re.search(r"<tr><td>c</td>(.*?)</tr>", html).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)      # precision, recall, f1, support, predicted, ...
    assert cells[1:4] == [NOT_SCORED, NOT_SCORED, "0"], cells


def test_train_names_its_data_as_typed_in_its_read_line(tmp_path, monkeypatch):
    """`imgcls train raw` said 'read /abs/path/raw as layout ...': the data was made absolute (anchor_paths, for
    config.yaml) before it was read, and so did the data's refusals and the split hint. They name it as typed;
    config.yaml still records it absolute."""
    import yaml
    monkeypatch.chdir(tmp_path)
    make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(32, 32))
    r = CliRunner().invoke(app, ["train", "raw", "--model", "test_resnet", "--no-pretrained", "--img-size", "16",
                                 "--epochs", "1", "--workers", "0", "--device", "cpu", "--no-plots", "--out", "runs",
                                 "--name", "r"])
    said = " ".join(r.output.split())
    assert r.exit_code == 0 and "read raw as layout 'folder' (12 images)" in said, r.output
    assert str(tmp_path / "raw") not in said and "leak-free split: imgcls split raw (Python: run_split('raw'))" in said
    assert yaml.safe_load((tmp_path / "runs" / "r" / "config.yaml").read_text())["src"] == str(tmp_path / "raw")


@pytest.mark.timeout(120)
def test_rows_recorded_unreadable_whose_files_are_back_are_not_refused_before_the_scan(tmp_path):
    """train's check of the table as read (before its images are scanned) counted the rows its manifest recorded as
    unreadable: a class whose images were away when the manifest was scanned, and are back, was 'training needs at
    least 2 classes' before the scan could find them. The recorded scan is read after the scan alone."""
    from conftest import restored_class_manifest
    m = restored_class_manifest(tmp_path)
    r = CliRunner().invoke(app, ["train", str(m), "--model", "test_resnet", "--no-pretrained", "--epochs", "1",
                                 "--img-size", "16", "--out", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    assert "at least 2 classes" not in r.output


def test_a_k_fold_run_says_on_a_terminal_what_it_does_after_its_last_fold(tmp_path, monkeypatch):
    """After its last fold a k-fold run drew its out-of-fold confusion matrices and wrote the set's report with
    nothing on a terminal (seconds, matplotlib): a spinner says so meanwhile; each fold's plots and report too."""
    import io
    from rich.console import Console
    from imgcls import console
    from imgcls import manifest as mf
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(40, 40))
    df = mf.load(src)
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    buf = io.StringIO()
    monkeypatch.setattr(console, "console", Console(file=buf, force_terminal=True, width=200, markup=False))
    run_train(cfg_for(tmp_path / "splits.csv", tmp_path, name="kf", epochs=1, folds="all", plots=True))
    shown = buf.getvalue()
    for said in ("drawing the out-of-fold confusion matrices", "writing the k-fold run's report",
                 "drawing the training curves", "writing the run's report"):
        assert said in shown, said
    assert "spinner" not in console._state


def test_a_first_download_of_the_starting_weights_shows_its_own_progress_not_a_spinner(tmp_path, monkeypatch, capsys):
    """Weights from the hub (a first run of that model): the build's spinner took over stderr while the download's
    progress bar (huggingface_hub's tqdm, minutes for a large backbone) wrote there, which then showed nothing of
    it and left a blank line; the download's own bar says what happens, so no spinner runs over it."""
    import io
    from rich.console import Console
    from tqdm import tqdm
    from imgcls import console, weights
    from imgcls.train import heads, loop
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(40, 40))
    real, downloaded = heads.build_model, []

    def build(meta, pretrained=False, weights=None):
        if pretrained and not downloaded:         # the hub's download, once: the cache serves later builds
            for _ in tqdm(range(3), desc="model.safetensors", mininterval=0):
                pass
            downloaded.append(True)
        return real(meta, False, weights)
    monkeypatch.setattr(weights, "resolve_weights", lambda name, pretrained=True, *a, **k: weights.WeightSource(
        "hub" if pretrained else "none", "timm/test_resnet"))
    monkeypatch.setattr(heads, "build_model", build)
    monkeypatch.setattr(loop, "build_model", build, raising=False)
    buf = io.StringIO()
    monkeypatch.setattr(console, "console", Console(file=buf, force_terminal=True, width=200, markup=False))
    run_train(cfg_for(src, tmp_path, epochs=1, pretrained=True))
    assert downloaded and "model.safetensors: 100%" in capsys.readouterr().err
    assert "loading its starting weights" not in buf.getvalue()


def test_a_hand_made_split_with_a_person_on_both_sides_is_warned(tmp_path, capsys):
    """A split table edited by hand (one image of a person moved to val) trained without a word, and its validation
    score, of a person it trains on, ranked first in `imgcls runs`. train names the leak and the repair; the split
    imgcls split wrote trains silent."""
    from imgcls import manifest as mf
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    df = mf.load(src)
    df["split"] = np.where(df["group"].isin(["000000", "000001"]), "val", "train")
    mf.write(df, tmp_path / "splits.csv")
    run_train(cfg_for(tmp_path / "splits.csv", tmp_path, name="clean", epochs=1))
    assert "leak" not in capsys.readouterr().err
    df.loc[df.index[df["group"] == "000002"][0], "split"] = "val"
    mf.write(df, tmp_path / "leaky.csv")
    run_train(cfg_for(tmp_path / "leaky.csv", tmp_path, name="leaky", epochs=1))
    said = " ".join(capsys.readouterr().err.split())
    assert "1 leak(s) between the split's sides (group 000002: 000002_male_Asian_" in said
    assert f"imgcls split --check {tmp_path / 'leaky.csv'} --fix --out" in said


def test_the_leak_warning_reads_the_group_column_the_split_kept_together(tmp_path, capsys):
    """train's leak warning read the `group` column whatever column the split kept together, unlike `split --check`:
    a table of `split m.csv --group-col person` whose `group` holds a super-class (shoes on both sides) was warned
    of, pointing at a --check --fix that finds nothing, and a person moved across by hand was not. It now reads the
    group column the split recorded beside the table, as split --check does."""
    from imgcls import manifest as mf
    from imgcls.split import SplitConfig, run_split
    raw = make_image_folder(tmp_path / "raw", {"a": 8, "b": 8}, size=(32, 32))
    m = mf.load(raw, scan=False)
    m["person"] = [f"p{i // 2}" for i in range(len(m))]
    m["group"] = np.where(m["label"] == "a", "shoes", "clothes")
    mf.write(m, tmp_path / "m.csv")
    table = tmp_path / "splits.csv"
    run_split(tmp_path / "m.csv", table, cfg=SplitConfig(val=0.5, group_col="person", near_dup=False))
    df = pd.read_csv(table, dtype=str, keep_default_na=False)
    assert df.groupby("group")["split"].nunique().max() == 2       # a super-class on both sides: no leak
    capsys.readouterr()
    run_train(cfg_for(table, tmp_path, name="clean", epochs=1))
    assert "leak(s) between the split's sides" not in " ".join(capsys.readouterr().err.split())
    moved = df.index[df["person"] == df["person"].iloc[0]][0]
    df.loc[moved, "split"] = {"train": "val", "val": "train"}[df.loc[moved, "split"]]    # one person on two sides
    df.to_csv(table, index=False)
    run_train(cfg_for(table, tmp_path, name="leaky", epochs=1))
    said = " ".join(capsys.readouterr().err.split())
    assert f"1 leak(s) between the split's sides (person {df['person'][moved]}: " in said, said
    assert df["path"][moved] in said, said


def test_the_leak_warning_reads_a_person_spelled_nfd_in_some_rows_as_the_nfc_one(tmp_path):
    """`split --check` read a group id spelled NFD in some rows (a macOS zip's) and NFC in others as one person
    (split.leaks.nfc_keys), train's leak warning as two: a person with NFC rows in train and NFD rows in val was a
    leak to the check and nothing to train. Both now read the group keys in Unicode's composed form."""
    import unicodedata

    from imgcls.train.run import _leak_note
    df = pd.DataFrame({"path": ["a/1.png", "a/2.png", "b/3.png", "b/4.png"], "label": ["a", "a", "b", "b"],
                       "group": [unicodedata.normalize(f, "Renée") for f in ("NFC", "NFD")] + ["p1", "p2"],
                       "split": ["train", "val", "train", "val"]})
    note = " ".join(_leak_note(df, str(tmp_path / "s.csv")).split())
    assert note.startswith("1 leak(s) between the split's sides (") and "a/1.png in train, a/2.png in val" in note, note


def test_the_sides_of_a_hand_made_split_read_its_split_column_in_any_case(tmp_path):
    """split.leaks.sides read the `split` column as written, while train reads it in any case (split.config's
    split_values): a hand-made table's "VAL" row validates but was on no side to train's leak warning (a person in
    Train and VAL passed unwarned), and a k-fold table's single image of a class in a "Test" row was said to be "in
    no side" rather than in test. sides now reads the column through split_values."""
    from imgcls.train.data import single_image_classes
    from imgcls.train.run import _leak_note
    df = pd.DataFrame({"path": ["a/1.png", "a/2.png", "b/3.png", "b/4.png"], "label": ["a", "a", "b", "b"],
                       "group": ["p0", "p0", "p1", "p2"], "split": ["Train", "VAL", "train", "val"]})
    note = " ".join(_leak_note(df, str(tmp_path / "s.csv")).split())
    assert "(group p0: a/1.png in train, a/2.png in val)" in note, note
    folds = pd.DataFrame({"path": ["a/1.png", "a/2.png", "b/3.png", "c/4.png"], "label": ["a", "a", "b", "solo"],
                          "split": ["train", "val", "train", "Test"], "fold": [1, 0, 1, -1]})
    assert single_image_classes(folds, "label", True) == {"b": "fold 1", "solo": "test"}


def test_a_class_of_one_image_is_warned_by_name_and_trains_in_a_random_draw(tmp_path, capsys):
    """A class of one image trained without a word: the random --val-split draw put it in val (never trained on,
    F1 0), and its single member turned the draw's stratification off for every class. train now keeps it in
    training (as split keeps a single-group class) and warns naming the class, where it is and the fix; a split
    table's single image in val is named as never trained on."""
    from imgcls import manifest as mf
    src = make_image_folder(tmp_path / "raw", {"a": 10, "b": 10, "solo": 1}, size=(32, 32))
    run_train(cfg_for(src, tmp_path, name="draw", epochs=1))
    said = " ".join(capsys.readouterr().err.split())
    assert "1 class(es) with a single image (solo, in train): one image cannot both train and validate" in said, said
    assert "add images of it, or leave it out" in said, said
    val = pd.read_csv(tmp_path / "runs" / "draw" / "val_predictions.csv", keep_default_na=False)
    assert "solo" not in set(val["label"]) and len(val) == 6, val      # 30% of a and b, stratified
    df = mf.load(src)
    df["split"] = np.where(df["path"].str.endswith(("000.png", "001.png", "002.png")), "val", "train")
    mf.write(df, tmp_path / "splits.csv")
    run_train(cfg_for(tmp_path / "splits.csv", tmp_path, name="table", epochs=1))
    said = " ".join(capsys.readouterr().err.split())
    assert "1 class(es) with a single image (solo, in val)" in said and "in val: never trained on" in said, said


def test_a_hand_made_fold_table_with_a_person_in_two_folds_is_warned(tmp_path, capsys):
    """A k-fold table written by hand with only a `fold` column (no `split`: train reads every row with a fold as
    training data) skipped the leak check: a person with images in folds 0 and 1 trained in fold 0's model while
    validating it, unsaid. train names the leak and the repair as for a split column."""
    from imgcls import manifest as mf
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    df = mf.load(src).drop(columns=["split"], errors="ignore")
    df["fold"] = df["group"].astype(int) % 2
    df.loc[df.index[df["group"] == "000002"][0], "fold"] = 1
    mf.write(df, tmp_path / "folds.csv")
    assert "split" not in pd.read_csv(tmp_path / "folds.csv").columns
    run_train(cfg_for(tmp_path / "folds.csv", tmp_path, name="leaky", epochs=1, folds="0"))
    said = " ".join(capsys.readouterr().err.split())
    assert "1 leak(s) between the split's sides (group 000002: 000002_male_Asian_" in said, said
    assert "in fold 0" in said and "in fold 1" in said, said
    # the repair it names works on the fold-only table
    from imgcls.split import SplitConfig, check_leaks, run_check
    assert f"imgcls split --check {tmp_path / 'folds.csv'} --fix --out FIXED.csv" in said, said
    fixed = run_check(tmp_path / "folds.csv", tmp_path / "fixed.csv", SplitConfig(near_dup=False), fix=True)
    assert check_leaks(fixed).empty, fixed[["split", "fold"]].value_counts()
    assert set(fixed["split"]) <= {"train", "val"} and fixed["fold"].notna().all()     # split's: fold 0 is val


def _scripted_validation(monkeypatch, losses, f1s):
    """Each epoch's validation reports the next of `losses` / `f1s` as its loss and macro-F1 (the real pass runs):
    epochs whose best loss and best macro-F1 are not the same epoch."""
    from imgcls.train import loop
    real, n = loop.evaluate, iter(range(len(losses)))

    def evaluate(*a, **kw):
        ev, k = real(*a, **kw), next(n)
        ev["loss"], ev["final"] = losses[k], dict(ev["final"], macro_f1=f1s[k])
        return ev

    monkeypatch.setattr(loop, "evaluate", evaluate)


@pytest.mark.parametrize("metric, best", [("loss", 2), ("macro_f1", 3)])
def test_metric_picks_the_best_epoch_its_checkpoint_and_what_runs_reads(two_class, tmp_path, monkeypatch, capsys,
                                                                       metric, best):
    """`imgcls tune --metric loss` optimised the epoch of the lowest val loss, while every run (a trial too) saved
    best.pt, val_predictions.csv and per_class.csv at its best macro-F1 epoch and `imgcls runs` named that epoch:
    the trial's value was of another epoch than the model it kept. train's --metric (timm's --eval-metric) picks
    the best epoch; every reader of the run's best epoch follows it. Epoch 2 has the lowest loss, 3 the best F1."""
    from imgcls.runs import read_run
    _scripted_validation(monkeypatch, [0.9, 0.3, 0.6], [0.2, 0.4, 0.8])
    run = run_train(cfg_for(two_class, tmp_path, epochs=3, metric=metric))
    assert read_checkpoint(run / "best.pt")["epoch"] == best
    assert set(pd.read_csv(run / "per_class.csv")["best_epoch"]) == {best}
    r = read_run(run)
    assert r.best_epoch == best and r.val_macro_f1 == pytest.approx([0.2, 0.4, 0.8][best - 1])
    err = capsys.readouterr().err
    said = {"loss": "best val loss 0.3000 at epoch 2 (val macro-F1 0.4000)",
            "macro_f1": "best val macro-F1 0.8000 at epoch 3"}[metric]
    assert said in " ".join(err.split()), err


def test_metric_loss_stops_early_and_resumes_by_the_loss(two_class, tmp_path, monkeypatch):
    """--early-stop counts the epochs without a lower val loss, and a resumed run compares with the best loss so
    far: epoch 4's 0.42 is no gain on epoch 2's 0.4 (its macro-F1 0.95 would be), the second epoch without one."""
    _scripted_validation(monkeypatch, [0.5, 0.4, 0.45, 0.42, 0.3], [0.1, 0.2, 0.9, 0.95, 0.99])
    cfg = cfg_for(two_class, tmp_path, epochs=5, metric="loss", early_stop=2)
    run = run_train(cfg, stop_after=3)
    run_train(cfg, resume=run)
    assert list(metrics(run)["epoch"]) == [1, 2, 3, 4]
    assert read_checkpoint(run / "best.pt")["epoch"] == 2
    said = (run / "train.log").read_text()
    assert "early stop: val loss did not improve for 2 epochs (best 0.4000 at epoch 2)" in said, said
    (run / "last.pt").unlink()
    (run / "last_state.json").unlink()      # gone: its metrics.csv's val loss, not its rising macro-F1, tells
    assert finished(run) and _listed(tmp_path / "runs", "progress") == ["4/5, early stop"]


@pytest.mark.parametrize("metric, halved", [("loss", False), ("macro_f1", True)])
def test_plateau_watches_the_run_s_metric_in_its_direction(metric, halved):
    """--scheduler plateau watched val macro-F1 for a rise whatever the run's --metric: a val loss that falls every
    epoch read as no gain and halved the lr. It steps on the --metric value in that metric's direction."""
    from imgcls.train.optim import make_scheduler
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    s, _ = make_scheduler(opt, TrainConfig(scheduler="plateau", min_lr=0.0, metric=metric), steps_per_epoch=1)
    for e, value in enumerate([0.9, 0.7, 0.5, 0.3]):       # a falling loss; a falling macro-F1
        opt.step()
        s.step(e + 1, value)
    assert (opt.param_groups[0]["lr"] < 0.1) == halved


@pytest.mark.parametrize("metric, title", [("loss", "loss"), ("accuracy", "acc"), ("macro_f1", None)])
def test_the_epoch_table_names_the_metric_its_best_mark_follows(capsys, metric, title):
    """With --metric loss the table's `*` marked each epoch of a lower val loss under a bare `best` title, beside a
    macro-F1 that fell: read as the best macro-F1. The title names the metric where it is not macro-F1."""
    from imgcls.train.progress import EpochTable
    row = {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 0.9, "val_acc": 0.5, "val_macro_f1": 0.4,
           "lr": 1e-3, "epoch_seconds": 0.1}
    EpochTable(metric=metric).print(row, True)
    header = capsys.readouterr().err.splitlines()[:2]
    assert header[0].split()[-1] == "best", header
    assert (header[1].split()[-1] if title else header[1].split()[0]) == (title or "1"), header


def test_a_resume_whose_validation_rows_the_draw_now_trains_is_refused_before_the_images_are_decoded(
        tmp_path, monkeypatch):
    """A run started before train's random --val-split draw kept a class of one image in training (the earlier
    draw put solo/000.png in val), resumed after: the draw gave other rows, and its later epochs trained on an image
    its earlier epochs validated on and were scored on other rows, without a word (7 val images, then 6). Such a
    resume is one line naming an image and the fix, before the images are decoded; one whose rows are drawn again
    as they were resumes."""
    import shutil
    from imgcls.errors import UserError
    from imgcls.train import data as tdata
    src = make_image_folder(tmp_path / "raw", {"a": 10, "b": 10, "solo": 1}, size=(32, 32))
    real, real_decode = tdata._assign_split, tdata.decode_cache

    def earlier_draw(df, *a, **k):      # the earlier imgcls's: the single image drawn into val
        train, val = real(df, *a, **k)
        solo = df["path"].astype(str).str.startswith("solo").to_numpy()
        return train & ~solo, val | solo
    monkeypatch.setattr(tdata, "_assign_split", earlier_draw)
    part = run_train(cfg_for(src, tmp_path, name="part", epochs=2), stop_after=1)
    same = shutil.copytree(part, tmp_path / "runs" / "same")
    assert "solo/000.png" in set(pd.read_csv(part / "val_predictions.csv")["path"])
    monkeypatch.setattr(tdata, "_assign_split", real)
    decoded = []
    monkeypatch.setattr(tdata, "decode_cache", lambda *a, **k: decoded.append(1) or real_decode(*a, **k))
    with pytest.raises(UserError, match=r"--resume .*part: 1 of the images its earlier epochs validated on "
                                        r"\(solo/000\.png\) would now train"):
        run_train(TrainConfig(), resume=part)
    assert not decoded
    monkeypatch.setattr(tdata, "_assign_split", earlier_draw)
    assert run_train(TrainConfig(), resume=same) == same


def test_a_class_of_one_image_named_first_trains_and_the_others_are_drawn_stratified(tmp_path):
    """The random draw's rows were mapped to the units of the rows before the single-image classes were taken out:
    a class of one image sorted first ('a_solo') shifted every later row onto its neighbour's unit, so a_solo's
    image was drawn into val (while the warning said 'in train') and b / c went 2 / 3 instead of 3 / 3."""
    from imgcls import manifest as mf
    from imgcls.train import data as tdata
    df = mf.load(make_image_folder(tmp_path / "raw", {"a_solo": 1, "b": 10, "c": 10}, size=(32, 32)))
    train, val = tdata.assign_split(df, None, 0.3, 0)
    assert not val[df["label"].eq("a_solo").to_numpy()].any(), list(df["path"][val])
    assert df["label"][val].value_counts().to_dict() == {"b": 3, "c": 3}, list(df["path"][val])
    assert (train | val).all() and not (train & val).any()
    assert tdata.single_image_classes(df, "label", False) == {"a_solo": "train"}


def test_a_diverged_run_finishes_its_report_and_says_the_loss_diverged(two_class, tmp_path):
    """--lr 1e30 with sgd: the loss went NaN after the first update, val_predictions.csv held empty probabilities
    and the report's worst-predictions table stopped the run at its end with a traceback ('could not convert string
    to float'). The run finishes, its report says the NaN rows as such, and one warning names the diverged loss and
    a lower --lr."""
    r = _train_cli(two_class, tmp_path, "--lr", "1e30", "--optimizer", "sgd")
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert text.count("the loss diverged at epoch 1") == 1 and "lower --lr (this run's 1e+30)" in text
    html = (tmp_path / "runs" / "r" / "report.html").read_text()
    assert "its probabilities are NaN (the loss diverged)" in html and "(p NaN)" in html
    from imgcls.runs import find_runs
    run, = find_runs(tmp_path / "runs")     # `imgcls runs` reads it as diverged, with no score to rank
    assert run.state == "diverged" and np.isnan(run.val_macro_f1) and np.isnan(run.val_acc), run


def test_the_single_image_warning_explains_each_side_it_names(tmp_path, capsys):
    """The single-image-class warning named a class 'in test' or 'in fold k' but explained only train and val
    ('in train: never validated; in val: never trained on'). Its explanation is now of the sides it names."""
    from imgcls import manifest as mf
    from imgcls.train import data as tdata
    src = make_image_folder(tmp_path / "raw", {"a": 10, "b": 10, "solo": 1}, size=(32, 32))
    df = mf.load(src)
    df["split"] = np.where(df["label"].eq("solo"), "test",
                           np.where(df["path"].str.endswith(("000.png", "001.png", "002.png")), "val", "train"))
    mf.write(df, tmp_path / "splits.csv")
    run_train(cfg_for(tmp_path / "splits.csv", tmp_path, name="table", epochs=1))
    said = " ".join(capsys.readouterr().err.split())
    assert "(solo, in test): one image cannot both train and validate" in said, said
    assert "(in test: neither trained on nor validated (train uses no test row));" in said, said
    assert "in val: never trained on" not in said and "in train: never validated" not in said, said
    df["split"], df["fold"] = "train", np.arange(len(df)) % 2
    single = tdata.single_image_classes(df, "label", True)
    assert single == {"solo": "fold 0"} and tdata.single_image_sides(single.values()) == \
        "in fold 0: validated only by that fold's model, which never trained on it"


def test_a_plain_run_named_fold_0_in_a_run_being_trained_is_not_said_to_be_training(tmp_path):
    """training_now took any fold_<k> folder whose parent's RunLock is held for a fold of a set being trained: a
    finished-or-stopped plain run trained with `--name fold_0` into the folder of a run imgcls train is training now
    was said to be 'being trained by imgcls train now'. Only a k-fold set's folds (run_names.fold_set) are."""
    from conftest import make_tiny_run, mark_training
    from imgcls.train.rundir import RunLock, training_now
    a = make_tiny_run(tmp_path / "runs" / "A")
    run = mark_training(make_tiny_run(a / "fold_0"), done=3, epochs=10, best=2)
    kf = make_tiny_run(tmp_path / "runs" / "kf", folds=2)
    mark_training(kf / "fold_1", done=3, epochs=10, best=2)
    with RunLock(a), RunLock(kf):
        assert training_now(run / "best.pt") is None
        assert training_now(kf / "fold_1" / "best.pt") == "epoch 2, epochs done 3/10"


def test_a_resume_on_two_roots_of_one_relative_path_is_checked_by_root_and_drawn_once(tmp_path, monkeypatch):
    """A manifest of two roots holding the same relative paths (a/000.png in each, other pixels): the resume's check
    of its random --val-split draw compared the earlier validation rows by path alone, so the unchanged data's
    resume was refused (a validated a/003.png of one root is the other root's training image). It names images by
    root and path, as check_resume_data does, and the draw it checks is the one the run trains with (made once).
    The draw of the scanned rows is made once by any run (check_data's, which the run trains with): the refusal of
    an empty side (check_data) drew it again, and the fold loop a third time; the table as read is drawn apart (its
    check before the scan)."""
    from imgcls.train import data as tdata
    one = make_image_folder(tmp_path / "one", {"a": 6, "b": 6}, size=(32, 32))
    two = make_image_folder(tmp_path / "two", {"a": 6, "b": 6}, size=(32, 32), seed=1)
    rows = [{"path": f"{c}/{i:03d}.png", "root": str(r), "label": c} for r in (one, two) for c in "ab"
            for i in range(6)]
    (tmp_path / "data").mkdir()
    pd.DataFrame(rows).to_csv(src := tmp_path / "data" / "manifest.csv", index=False)
    real, draws = tdata._assign_split, []
    # each draw: of the table as read (before the scan), or of the scanned rows (their width read by the scan)
    monkeypatch.setattr(tdata, "_assign_split", lambda df, *a, **k: draws.append(
        "scanned" if df["width"].notna().all() else "as read") or real(df, *a, **k))
    part = run_train(cfg_for(src, tmp_path, name="part"), stop_after=1)
    assert draws == ["as read", "scanned"], draws
    vp = pd.read_csv(part / "val_predictions.csv", dtype=str)
    twins = set(vp["path"]) - set(vp.groupby("path")["root"].nunique().loc[lambda n: n > 1].index)
    assert twins        # a validated path whose other root's image trains: what a path-only check refuses
    draws.clear()
    assert run_train(TrainConfig(), resume=part) == part
    assert draws == ["as read", "scanned"], draws
    assert len(pd.read_csv(part / "metrics.csv")) == 2


def test_a_run_whose_relative_out_is_a_symlink_resumed_from_another_working_folder_is_not_said_moved(
        tmp_path, monkeypatch):
    """outputs a symlink (to a larger disk), `train --out outputs` from /proj, then `cd elsewhere; train --resume
    /proj/outputs/D`: --resume resolves the link, so the recorded relative out 'outputs' did not end the real folder's
    path, and the run was said renamed or moved and its config.yaml rewritten to the link's target. The folder as
    typed counts too; a run renamed there is still recorded, its out kept as it was."""
    src = make_image_folder(tmp_path / "data" / "raw", {"a": 6, "b": 6}, size=(32, 32))
    proj = tmp_path / "proj"
    (tmp_path / "disk").mkdir()
    proj.mkdir()
    (proj / "outputs").symlink_to(tmp_path / "disk")
    monkeypatch.chdir(proj)
    run_train(cfg_for(src, tmp_path, name="D", epochs=1, out="outputs"))
    before = (proj / "outputs" / "D" / "config.yaml").read_text()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    r = CliRunner().invoke(app, ["train", "--resume", str(proj / "outputs" / "D")])
    assert r.exit_code == 0 and "recorded:" not in r.output, r.output
    assert "D: already finished, nothing to resume" in " ".join(r.output.split()), r.output
    assert (proj / "outputs" / "D" / "config.yaml").read_text() == before
    (proj / "outputs" / "D").rename(proj / "outputs" / "D2")
    r = CliRunner().invoke(app, ["train", "--resume", str(proj / "outputs" / "D2")])
    assert r.exit_code == 0 and "(recorded: outputs/D, renamed or moved since)" in " ".join(r.output.split()), r.output
    rec = TrainConfig.load(proj / "outputs" / "D2" / "config.yaml")
    assert (rec.name, rec.out) == ("D2", "outputs")


def test_a_resume_of_a_k_fold_set_names_a_fold_folder_outside_its_plan_as_predict_does(tmp_path, capsys):
    """`train --resume` of a k-fold set holding a fold folder its plan does not name (a fold_2 copied into a 2-fold
    set: rundir.set_fold_dirs' second list) trained the set's folds and said nothing of it, where predict, ensemble
    and export say one warning naming it. The resume says that warning (rundir.warn_stray_folds) once: of an
    unfinished set, the folds it trains; of a finished one, those it trained."""
    import shutil

    from imgcls import manifest as mf
    from imgcls.train.callbacks import Callback

    class Crash(Callback):
        def on_run_start(self, info):
            if info["fold"] == 1:
                raise RuntimeError("stopped before fold 1")

    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "data" / "splits.csv")
    cfg = cfg_for(tmp_path / "data" / "splits.csv", tmp_path, name="kf", folds="all", epochs=1, cache="none",
                  fill="255,255,255")
    with pytest.raises(RuntimeError, match="stopped before fold 1"):
        run_train(cfg, callbacks=[Crash()])
    kf = tmp_path / "runs" / "kf"
    shutil.copytree(kf / "fold_0", kf / "fold_2")
    capsys.readouterr()
    run_train(TrainConfig(), resume=str(kf))
    said = " ".join("".join(capsys.readouterr()).split())
    assert said.count("left out") == 1, said
    assert f"warning: fold_2 in {kf} left out: not one of the set's folds (it trains fold_0, fold_1); to predict " \
           f"with it too, give it as an ensemble member: imgcls ensemble {kf} {kf / 'fold_2'} (Python: " in said, said
    assert json.loads((kf / "oof_score.json").read_text())["folds"] == [0, 1]
    run_train(TrainConfig(), resume=str(kf))       # finished: nothing to resume, the same warning
    said = " ".join("".join(capsys.readouterr()).split())
    assert said.count("left out") == 1 and "already finished, nothing to resume" in said, said
    assert f"warning: fold_2 in {kf} left out: not one of the set's folds (it trained fold_0, fold_1)" in said, said


def test_a_resume_of_an_older_k_fold_set_reads_no_stray_fold_folder_s_predictions(tmp_path, capsys):
    """An older k-fold set (no plan.json, --folds all) holding a fold_2 copied in (another set's fold), resumed
    after a crash, was refused as 'puts 6 of the 6 images fold_2 validated on in another fold ... the table's folds
    changed': before the resume recorded the plan, check_resume_data read every fold folder's val_predictions.csv,
    the stray one's too, though the table had not changed. The set's folds are those its data holds: the resume
    reads only theirs, trains them, and says the stray warning (rundir.warn_stray_folds) once, as a set with a plan
    does."""
    import shutil

    from imgcls import manifest as mf
    from imgcls.train.callbacks import Callback

    class Crash(Callback):
        def on_epoch_end(self, epoch, logs):
            raise RuntimeError("a bug after the first epoch")

    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    cfg = cfg_for(tmp_path / "splits.csv", tmp_path, name="kf", folds="all", epochs=2, cache="none")
    kf = tmp_path / "runs" / "kf"
    with pytest.raises(RuntimeError, match="a bug"):
        run_train(cfg, callbacks=[Crash()])
    (kf / "plan.json").unlink()             # a set trained before plan.json (and folds.json)
    shutil.copytree(kf / "fold_0", kf / "fold_2")     # fold 0's images: in fold 0 of this table, not fold 2
    capsys.readouterr()
    run_train(TrainConfig(), resume=str(kf))
    said = " ".join("".join(capsys.readouterr()).split())
    assert said.count("left out") == 1, said
    assert f"warning: fold_2 in {kf} left out: not one of the set's folds (it trains fold_0, fold_1)" in said, said
    assert json.loads((kf / "oof_score.json").read_text())["folds"] == [0, 1]


def test_a_resume_of_an_older_k_fold_set_given_moved_data_rewrites_no_stray_fold_s_record(tmp_path):
    """An older k-fold set (no plan.json, --folds all) holding a fold_2 copied in (another set's fold), resumed on
    its data moved since and given again: the resume rewrote the records of every fold folder (_record_session,
    TrainConfig.record_data: rundir.set_fold_dirs read no plan yet, so every fold folder was the set's), fold_2's
    config.yaml too, which then named this set's data. The plan is recorded before the records are rewritten:
    only the set's folds' name the new path."""
    import shutil

    from imgcls import manifest as mf
    from imgcls.train.callbacks import Callback

    class Crash(Callback):
        def on_epoch_end(self, epoch, logs):
            raise RuntimeError("a bug after the first epoch")

    df = mf.load(make_image_folder(tmp_path / "d" / "raw", {"a": 4, "b": 4}, size=(32, 32)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "d" / "splits.csv")
    cfg = cfg_for(tmp_path / "d" / "splits.csv", tmp_path, name="kf", folds="all", epochs=1, cache="none")
    kf = tmp_path / "runs" / "kf"
    with pytest.raises(RuntimeError, match="a bug"):
        run_train(cfg, callbacks=[Crash()])
    (kf / "plan.json").unlink()             # a set trained before plan.json (and folds.json)
    shutil.copytree(kf / "fold_0", kf / "fold_2")
    stray = (kf / "fold_2" / "config.yaml").read_text()
    shutil.move(tmp_path / "d", tmp_path / "d2")
    moved = str(tmp_path / "d2" / "splits.csv")
    run_train(TrainConfig(src=moved), resume=str(kf))
    assert (kf / "fold_2" / "config.yaml").read_text() == stray
    assert [TrainConfig.load(kf / d / "config.yaml").src for d in (".", "fold_0", "fold_1")] == [moved] * 3
