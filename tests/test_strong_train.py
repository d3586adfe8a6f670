"""issue 17, train side: --target (one model per attribute), default-pretrained weight resolution, timm's
optimizer registry, --oversample, --init-from (tiny models, generated images)."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from conftest import make_image_folder, make_profiles
from imgcls.cli import app
from imgcls.errors import UserError
from imgcls.train import TrainConfig, run_train
from imgcls.train.checkpoint import load_model, read_checkpoint, read_meta, save_checkpoint
from imgcls.train.rundir import find_checkpoints

TINY = dict(model="test_resnet", img_size=32, batch_size=8, workers=0, device="cpu", pretrained=False, plots=False)


def cfg_for(src, tmp_path, **kw):
    d = dict(TINY, src=str(src), out=str(tmp_path / "runs"), name="run", epochs=1, aug="none", val_split=0.3)
    d.update(kw)
    return TrainConfig(**d)


# --- --target: one model per attribute ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(120)
def test_target_trains_a_single_attribute_model_recorded_in_the_metadata(tmp_path):
    src = make_profiles(tmp_path / "profiles", n_profiles=4)
    run = run_train(cfg_for(src, tmp_path, name="mask", target="mask"))
    meta = read_meta(find_checkpoints(run)[0])
    assert meta.target == "mask" and meta.decode == "single"
    assert meta.classes == ("0", "1", "2") and meta.head_names == ["mask"]
    # the start line names the column the classes are values of (it said '3 classes', of which column unsaid)
    assert "val images, 3 classes of mask) on cpu" in (run / "train.log").read_text()
    vp = pd.read_csv(run / "val_predictions.csv", dtype={"label": str})
    assert set(vp["label"]) <= {"0", "1", "2"} and [c for c in vp.columns if c.startswith("p_")] == \
        ["p_0", "p_1", "p_2"]
    assert load_model(find_checkpoints(run)[0]).predict_proba(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    # an old checkpoint without the key reads as label (a new one of the usual model records label: below)
    d = read_checkpoint(find_checkpoints(run)[0])["meta"]
    d.pop("target")
    from imgcls.model_meta import ModelMeta
    assert ModelMeta.from_dict(d).target == "label"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_single_attribute_run_s_epoch_table_names_the_attribute(tmp_path, capsys):
    """`train --target mask` said "3 classes of mask" at the start, but its epoch table's score column read
    "macro-F1" and its last line "best val macro-F1 ...", of which column unsaid. Both name the attribute, as the
    start line does (ModelMeta.attribute); a label run's table is as before."""
    src = make_profiles(tmp_path / "profiles", n_profiles=4)
    run_train(cfg_for(src, tmp_path, name="mask", target="mask"))
    err = capsys.readouterr().err
    head = err.splitlines()
    i = next(n for n, ln in enumerate(head) if re.search(r"epoch\s+trn loss", ln))
    above, titles = head[i - 1], head[i]         # the score column's title: two lines, the attribute under it
    col = re.search(r"\(mask\)", titles)
    assert col and "macro-F1" in above[col.start() - 3:col.end()], err
    assert re.search(r"best val macro-F1 \(mask\) \d\.\d{4} at epoch 1", err), err
    run_train(cfg_for(make_image_folder(tmp_path / "two", {"a": 6, "b": 6}), tmp_path, name="label"))
    err = capsys.readouterr().err
    assert re.search(r"val acc\s+macro-F1\s+lr", err) and "best val macro-F1 " in err and "(label)" not in err, err


def test_target_errors_are_one_line_before_any_data_is_read(tmp_path):
    src = make_profiles(tmp_path / "profiles", n_profiles=4)
    with pytest.raises(UserError, match="--target colour: the data has no such column.*mask"):
        run_train(cfg_for(src, tmp_path, target="colour"))
    with pytest.raises(UserError, match="drop --heads multi"):
        run_train(cfg_for(src, tmp_path, target="mask", heads="multi"))
    assert not (tmp_path / "runs").exists()
    folder = make_image_folder(tmp_path / "one", {"a": 4})
    r = CliRunner().invoke(app, ["train", str(folder), "--model", "test_resnet", "--no-pretrained", "--target", "label",
                                 "--out", str(tmp_path / "runs2")])
    assert r.exit_code == 2 and "column 'label' has 1" in r.output and "Traceback" not in r.output
    # DACON's train.csv (id, img_path, artist): no label column; said with the column to give --target, not as
    # "every row skipped as unlabeled" and "column 'label' has 0 classes"
    import pandas as pd
    data = make_image_folder(tmp_path / "dacon", {"a": 3, "b": 3})
    paths = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png"))
    pd.DataFrame({"id": [f"T{i}" for i in range(6)], "img_path": paths,
                  "artist": [p.split("/")[0] for p in paths]}).to_csv(data / "train.csv", index=False)
    with pytest.raises(UserError, match=r"train.csv has no labels \(no column label, class or target\); --target "
                                        r"COLUMN trains on one of its columns with classes: artist$"):
        run_train(cfg_for(data / "train.csv", tmp_path))
    with pytest.raises(UserError, match=r"--target artst: the data has no such column \(columns with classes: artist\)"):
        run_train(cfg_for(data / "train.csv", tmp_path, target="artst"))
    assert not (tmp_path / "runs").exists()
    run = run_train(cfg_for(data / "train.csv", tmp_path, name="artist", target="artist"))
    assert read_meta(find_checkpoints(run)[0]).classes == ("a", "b")


def test_target_values_spelled_nfd_are_their_nfc_class(tmp_path):
    """--target COLUMN: the label is NFC in manifest.load, the other columns were read as written, so a train.csv
    whose Korean artist is NFD in some rows (a macOS zip's, or a hand-edited CSV) trained two look-alike classes."""
    import unicodedata
    data = make_image_folder(tmp_path / "dacon", {"a": 3, "b": 3})
    paths = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png"))
    name = "이중섭"
    artists = [unicodedata.normalize("NFD", name), name, name, "b", "b", "b"]
    assert len(set(artists)) == 3                               # other bytes, the same text
    pd.DataFrame({"id": [f"T{i}" for i in range(6)], "img_path": paths, "artist": artists}).to_csv(
        data / "train.csv", index=False)
    run = run_train(cfg_for(data / "train.csv", tmp_path, name="artist", target="artist"))
    assert read_meta(find_checkpoints(run)[0]).classes == ("b", name)
    assert set(pd.read_csv(run / "val_predictions.csv", dtype=str)["label"]) <= {"b", name}


# --- pretrained by default: file > package > cache > hub -------------------------------------------------------

def _seeded_state(seed: int, num_classes: int = 1000) -> dict:
    import timm
    torch.manual_seed(seed)
    return timm.create_model("test_resnet", num_classes=num_classes).state_dict()


def _fake_hf_cache(root, repo: str, state: dict):
    """A Hugging Face hub cache holding `repo`'s model.safetensors (the layout huggingface_hub writes)."""
    from safetensors.torch import save_file
    d = root / ("models--" + repo.replace("/", "--"))
    (d / "refs").mkdir(parents=True)
    (d / "refs" / "main").write_text("abc123")
    (d / "snapshots" / "abc123").mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(d / "snapshots" / "abc123" / "model.safetensors"))


def test_pretrained_resolution_order_file_package_cache_hub(tmp_path, monkeypatch):
    import huggingface_hub.constants as hfc
    import timm

    from imgcls import weights
    from imgcls.errors import MissingWeightsError
    key = "conv1.0.weight"
    file_sd, pkg_sd, cache_sd = _seeded_state(1, 5), _seeded_state(2), _seeded_state(3)
    torch.save(file_sd, tmp_path / "w.pt")
    torch.save(pkg_sd, tmp_path / "pkg.pth")
    fake = weights.LocalSource("test_resnet", "fake-test_resnet-package", lambda: tmp_path / "pkg.pth",
                               (0.5,) * 3, (0.5,) * 3, 224)
    monkeypatch.setitem(weights.LOCAL_SOURCES, "test_resnet", fake)
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    _fake_hf_cache(tmp_path / "hf", timm.models.get_pretrained_cfg("test_resnet").hf_hub_id, cache_sd)
    monkeypatch.setattr(weights, "hub_reachable", lambda timeout=1.5: True)

    def first(**kw):
        src = weights.resolve_weights("test_resnet", **kw)
        return src, weights.create_model("test_resnet", num_classes=3, source=src).state_dict()[key]

    src, w = first(pretrained=True, weights=tmp_path / "w.pt")          # a file beats everything
    assert src.kind == "file" and torch.equal(w, file_sd[key])
    src, w = first(pretrained=True)                                     # then the package-shipped file
    assert src.kind == "package" and torch.equal(w, pkg_sd[key])
    monkeypatch.delitem(weights.LOCAL_SOURCES, "test_resnet")
    src, w = first(pretrained=True)                                     # then the cache, read by timm's loader
    assert src.kind == "cache" and src.where.endswith("model.safetensors") and torch.equal(w, cache_sd[key])
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "empty"))
    assert weights.resolve_weights("test_resnet").kind == "hub"           # then the hub, when reachable
    monkeypatch.setattr(weights, "hub_reachable", lambda timeout=1.5: False)
    with pytest.raises(MissingWeightsError) as e:
        weights.resolve_weights("test_resnet")
    msg = str(e.value)
    assert "\n" not in msg and "'test_resnet'" in msg and "not in the timm / Hugging Face cache" in msg
    assert "--weights FILE" in msg and "tf_efficientnet_lite0" in msg and "--no-pretrained" in msg
    assert weights.resolve_weights("test_resnet", pretrained=False).kind == "none"


def test_hub_probe_is_fast_and_honours_hf_hub_offline(monkeypatch, connections):
    """Fast as in bounded, not as in wall seconds (a loaded machine stretches those): the probe is one connection
    attempt a process, with a 1.5 s timeout; none under HF_HUB_OFFLINE."""
    from imgcls import weights
    monkeypatch.setattr(weights, "_hub_probe", {})
    assert weights.hub_offline() and not weights.hub_reachable()       # HF_HUB_OFFLINE=1 (conftest): no probe
    assert weights._hub_probe == {} and connections == []
    monkeypatch.setattr(weights, "hub_offline", lambda: False)
    monkeypatch.setattr(weights, "HUB_HOST", ("127.0.0.1", 9))          # an address: no name lookup
    assert not weights.hub_reachable() and not weights.hub_reachable()
    assert connections == [(("127.0.0.1", 9), 1.5)]                     # refused: asked once, with a short timeout


def test_offline_pretrained_error_is_one_line_fast_and_before_the_data(tmp_path, monkeypatch, connections):
    """Fast as in no network attempt (no hub retries) and no data read, not as in wall seconds: a 2 s bound failed
    when the test ran alone (the first train command of a session imports what train needs: 16-26 s at load 6-8)."""
    import imgcls.manifest as mf
    folder = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3})
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the weights were resolved"))
    r = CliRunner().invoke(app, ["train", str(folder), "--model", "test_resnet", "--out", str(tmp_path / "runs")])
    assert connections == []
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert "no pretrained weights for 'test_resnet'" in lines[0] and "--no-pretrained" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_source_recorded_and_printed_once_random_init_said(tmp_path):
    folder = make_image_folder(tmp_path / "raw", {"a": 5, "b": 5}, size=(36, 36))
    base = ["train", str(folder), "--img-size", "32", "--epochs", "1", "--workers", "0", "--device", "cpu",
            "--out", str(tmp_path / "runs"), "--aug", "none", "--val-split", "0.3", "--no-plots"]
    r = CliRunner().invoke(app, base + ["--model", "tf_efficientnet_lite0", "--freeze-backbone", "--name", "p"])
    assert r.exit_code == 0, r.output
    assert r.output.count("weights: package ") == 1
    cfg = TrainConfig.load(tmp_path / "runs" / "p" / "config.yaml")
    assert cfg.pretrained and cfg.weights_source.startswith("package ") and cfg.weights_source.endswith(".pth")
    r = CliRunner().invoke(app, base + ["--model", "test_resnet", "--no-pretrained", "--name", "r"])
    assert r.exit_code == 0 and "random init" in r.output
    assert TrainConfig.load(tmp_path / "runs" / "r" / "config.yaml").weights_source == "random init"
    assert read_meta(tmp_path / "runs" / "r" / "best.pt").target == "label"


# --- --optimizer: timm's registry + sam -------------------------------------------------------------------------

def test_every_timm_optimizer_name_is_accepted_and_a_typo_is_one_line_with_close_matches():
    import timm.optim
    for name in timm.optim.list_optimizers():
        TrainConfig(optimizer=name).validate()
        TrainConfig(optimizer="sam", sam_base=name).validate()
    TrainConfig(optimizer="sam").validate()
    with pytest.raises(UserError) as e:
        TrainConfig(optimizer="radamw2").validate()
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("unknown --optimizer 'radamw2' (did you mean radamw")
    assert "timm.optim.list_optimizers()" in msg
    with pytest.raises(UserError, match="unknown --sam-base 'sam'"):
        TrainConfig(optimizer="sam", sam_base="sam").validate()
    sample = Path(__file__).resolve().parents[1] / "data" / "sample"       # train finds its data before timm's registry
    r = CliRunner().invoke(app, ["train", str(sample), "--optimizer", "rmsprob", "--no-pretrained"])
    assert r.exit_code == 2 and "did you mean rmsprop" in r.output and len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["radam", "rmsprop", "nadamw", "lamb", "lion", "adabelief", "sgdp"])
def test_registry_optimizers_take_a_step(name):
    from imgcls.train.config import optimizer_has_momentum
    from imgcls.train.optim import make_optimizer
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(64, 2))
    has = optimizer_has_momentum(name)
    assert has == (name in ("rmsprop", "sgdp"))          # timm's registry (OptimInfo.has_momentum)
    if not has:          # a --momentum the optimizer would drop is refused, not ignored
        with pytest.raises(UserError, match=f"--momentum acts only with .* this run has --optimizer {name}"):
            make_optimizer(model, TrainConfig(optimizer=name, lr=0.01, momentum=0.5))
    opt = make_optimizer(model, TrainConfig(optimizer=name, lr=0.01, **({"momentum": 0.5} if has else {})))
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(4, 3, 6, 6)).sum().backward()
    opt.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters())), name
    if "momentum" in opt.defaults:
        assert opt.defaults["momentum"] == 0.5           # --momentum reaches the optimizers that have one


def test_cuda_only_optimizer_is_refused_on_cpu_before_the_data(tmp_path, monkeypatch):
    import imgcls.manifest as mf
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the optimizer was checked"))
    with pytest.raises(UserError, match="--optimizer bnbadamw8bit is a CUDA-only optimizer.*on cpu"):
        run_train(cfg_for(tmp_path, tmp_path, optimizer="bnbadamw8bit"))


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_adahessian_trains_with_a_second_order_backward(tmp_path):
    folder = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(36, 36))
    run = run_train(cfg_for(folder, tmp_path, name="ah", optimizer="adahessian", lr=0.05))
    m = pd.read_csv(run / "metrics.csv")
    assert len(m) == 1 and m["train_loss"].notna().all()
    st = read_checkpoint(run / "last.pt")["train_state"]["optimizer"]["state"]
    assert any("exp_hessian_diag_sq" in s for s in st.values())


# --- --oversample: repeat-factor sampling at train time ---------------------------------------------------------

def test_oversampled_epoch_composition_matches_the_formula():
    import numpy as np

    from imgcls.train.data import epoch_indices, oversample_goals
    labels = np.array([0] * 20 + [1] * 5 + [2] * 2)
    for target, factor, goals in (("max", 4, [20, 20, 8]), ("median", 4, [20, 5, 5]), ("10", 4, [20, 10, 8]),
                                  ("7", 4, [20, 7, 7]), ("max", 2, [20, 10, 4]), (3, 4, [20, 5, 3])):
        g = oversample_goals(labels, target, factor)
        assert g.tolist() == goals, (target, factor)      # max(n, min(T, n x factor)) per class
        for epoch in (0, 1):
            idx = np.array(epoch_indices(len(labels), labels, 0, epoch, False, goals=g))
            assert np.bincount(labels[idx], minlength=3).tolist() == goals
            per_image = np.bincount(idx, minlength=len(labels))
            for c in range(3):
                reps = per_image[labels == c]
                q = goals[c] // (labels == c).sum()
                assert reps.min() >= q and reps.max() <= q + 1   # repeats spread evenly over a class's images
    # a target no class is below (a balanced pool, or --oversample 1) leaves the epoch exactly the plain one
    mixed = np.random.default_rng(0).permutation(labels)          # classes interleaved, as a real manifest
    plain = epoch_indices(len(mixed), mixed, 5, 1, False)
    assert epoch_indices(len(mixed), mixed, 5, 1, False, goals=oversample_goals(mixed, 1, 4)) == plain
    # deterministic per (seed, epoch) (a resumed run replays it), another epoch another order
    g = oversample_goals(labels, "max", 4)
    a = epoch_indices(len(labels), labels, 3, 1, False, goals=g)
    assert a == epoch_indices(len(labels), labels, 3, 1, False, goals=g)
    assert a != epoch_indices(len(labels), labels, 3, 2, False, goals=g)
    # DDP: the ranks' shards are the epoch's samples (padded to equal length as without oversampling)
    shards = [epoch_indices(len(labels), labels, 3, 1, False, rank=r, world=2, goals=g) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 24 and sorted(sum(shards, [])) == sorted(a)


def test_repeats_of_one_image_are_augmented_differently():
    import numpy as np

    from imgcls.train.data import CachedImages, ListSampler, augment_transform, epoch_indices, oversample_goals
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 0, 1])
    ds = CachedImages(images, labels[:, None], (0.5,) * 3, (0.5,) * 3, augment_transform("medium", 32))
    idx = epoch_indices(3, labels, 0, 0, False, goals=oversample_goals(labels, "max", 4))
    assert idx.count(2) == 2                               # the minority image twice in the epoch
    items = list(ListSampler(idx, seed=0, epoch=0))
    a, b = [ds[it][0] for it in items if it[0] == 2]
    assert not torch.equal(a, b)
    assert torch.equal(ds[items[0]][0], ds[items[0]][0])   # each one seeded: replayed exactly


def test_oversample_options_are_checked_before_any_data(tmp_path, monkeypatch):
    import imgcls.manifest as mf
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    for kw, words in (({"oversample": "most"}, "--oversample takes median, max, off or a positive number"),
                      ({"oversample": "max", "sampler": "weighted"}, "use one of them"),
                      ({"oversample": "max", "oversample_max_factor": 0.5}, "--oversample-max-factor must be >= 1")):
        with pytest.raises(UserError, match=words):
            run_train(cfg_for(tmp_path, tmp_path, **kw))
    r = CliRunner().invoke(app, ["train", str(tmp_path), "--oversample", "median", "--sampler", "weighted"])
    assert r.exit_code == 2 and "use one of them" in r.output and len(r.output.strip().splitlines()) == 1


def test_oversample_default_is_median_unless_another_option_rebalances():
    assert TrainConfig().oversample == "auto" and TrainConfig().oversample_target() == "median"
    for kw in ({"sampler": "weighted"}, {"class_weights": "auto"}, {"oversample": "off"}, {"oversample": None}):
        cfg = TrainConfig(**kw)
        cfg.validate()                       # auto yields to --sampler weighted: not refused
        assert cfg.oversample_target() is None, kw
    assert TrainConfig(oversample="max", class_weights="auto").oversample_target() == "max"   # typed: kept
    assert TrainConfig(oversample="12").oversample_target() == 12
    # a config.yaml from before the default (oversample: null) stays off; a number written by hand is taken
    assert TrainConfig.from_dict({"oversample": None}).oversample_target() is None
    assert TrainConfig.from_dict({"oversample": 300}).oversample_target() == 300
    r = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert "auto" in r.output and "off (each image once per epoch)" in " ".join(r.output.split()).replace("│ ", "")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_oversample_in_a_run_sets_the_epoch_length(tmp_path):
    from imgcls.train.callbacks import Callback
    folder = make_image_folder(tmp_path / "raw", {"a": 12, "b": 3}, size=(36, 36))
    steps = []

    class Count(Callback):
        def on_step_end(self, step, logs):
            steps.append(step)

    run = run_train(cfg_for(folder, tmp_path, name="os", oversample="max", oversample_max_factor=3, val_split=0.2,
                            batch_size=4), callbacks=[Count()])
    # 12 train images: a 10 -> 10, b 2 -> 6 (2 x factor 3): 16 samples, 4 batches of 4
    log = (run / "train.log").read_text()
    assert "16 samples per epoch from 12 images; b 2->6" in log
    assert len(steps) == 4
    assert TrainConfig.load(run / "config.yaml").oversample == "max"
    # the default (auto = median): b 2 -> min(median 6, 2 x 4) = 6, said in the log; off: the plain epoch
    steps.clear()
    run = run_train(cfg_for(folder, tmp_path, name="default", val_split=0.2, batch_size=4), callbacks=[Count()])
    assert ("--oversample median (--oversample auto; off: each image once per epoch) (max x4): 16 samples per epoch "
            "from 12 images; b 2->6") in (run / "train.log").read_text()
    assert len(steps) == 4
    steps.clear()
    run = run_train(cfg_for(folder, tmp_path, name="off", oversample="off", val_split=0.2, batch_size=4),
                    callbacks=[Count()])
    assert "--oversample" not in (run / "train.log").read_text() and len(steps) == 3
    # data that preprocess --oversample already rebalanced: auto is off (said), a typed target still oversamples
    import shutil
    for k in range(2):
        shutil.copyfile(folder / "b" / f"{k:03d}.png", folder / "b" / f"{k:03d}__os1.png")
    rows = [(f"{c}/{f.name}", c, f"{c}/{f.name.replace('__os1', '')}" if "__os1" in f.name else "")
            for c in ("a", "b") for f in sorted((folder / c).glob("*.png"))]
    pd.DataFrame(rows, columns=["path", "label", "augmented_from"]).to_csv(folder / "m.csv", index=False)
    steps.clear()
    run = run_train(cfg_for(folder / "m.csv", tmp_path, name="copies", val_split=0.2, batch_size=4),
                    callbacks=[Count()])
    log = (run / "train.log").read_text()
    assert "--oversample auto: off, the training rows hold preprocess --oversample copies" in log
    assert "samples per epoch" not in log
    run = run_train(cfg_for(folder / "m.csv", tmp_path, name="copies_max", oversample="max", val_split=0.2,
                            batch_size=4))
    assert "--oversample max (max x4)" in (run / "train.log").read_text()


class _Started(Exception):
    pass


def test_oversampling_over_12_classes_names_the_first_12_and_how_many_more(tmp_path):
    """train.log's oversampling line names the first 12 classes it grows and counts the rest in the words of every
    cut list (imgcls.options.shown): it said "(+1 more classes)" where every other message says "and 1 more". The
    line is written as the run starts: the run is stopped there (no epoch trained)."""
    from imgcls.train.callbacks import Callback

    class StopAtStart(Callback):
        def on_run_start(self, logs):
            raise _Started

    folder = make_image_folder(tmp_path / "raw", {"a": 12, **{f"c{i:02d}": 4 for i in range(13)}}, size=(24, 24))
    with pytest.raises(_Started):
        run_train(cfg_for(folder, tmp_path, name="os", oversample="max", val_split=0.25, batch_size=16),
                  callbacks=[StopAtStart()])
    run = tmp_path / "runs" / "os"
    line = next(t for t in (run / "train.log").read_text().splitlines() if "samples per epoch" in t)
    assert re.search(r"images; (c\d\d \d+->\d+, ){11}c11 \d+->\d+ and 1 more$", line), line


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_oversampled_run_resumes_exactly(tmp_path):
    folder = make_image_folder(tmp_path / "raw", {"a": 9, "b": 3}, size=(36, 36))
    kw = dict(epochs=2, aug="medium", oversample="max", val_split=0.25, batch_size=4)
    full = run_train(cfg_for(folder, tmp_path, name="full", **kw))
    part = run_train(cfg_for(folder, tmp_path, name="part", **kw), stop_after=1)
    run_train(TrainConfig.load(part / "config.yaml"), resume=part)
    a, b = read_checkpoint(full / "last.pt"), read_checkpoint(part / "last.pt")
    for k in a["raw_state_dict"]:
        assert torch.equal(a["raw_state_dict"][k], b["raw_state_dict"][k]), k


# --- --init-from RUN --freeze-backbone: a frozen backbone, new heads -------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(180)
def test_init_from_loads_and_freezes_the_backbone_and_trains_new_heads(tmp_path):
    from imgcls.train.checkpoint import load_init
    from imgcls.train.heads import build_model
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    a = run_train(cfg_for(src, tmp_path, name="A", epochs=1, lr=0.05))
    sd_a = read_checkpoint(a / "best.pt")["state_dict"]
    b = run_train(cfg_for(src, tmp_path, name="B", init_from=str(a), pretrained=True, freeze_backbone=True, heads="multi",
                          branch="deep", lr=0.05, epochs=2))
    assert TrainConfig.load(b / "config.yaml").weights_source == f"run {a / 'best.pt'}"
    last = read_checkpoint(b / "last.pt")
    meta = read_meta(b / "best.pt")
    assert meta.head_names == ["mask", "gender", "age_band"] and meta.branch == "deep"
    sd_b = last["raw_state_dict"]
    backbone = [k for k in sd_b if k.startswith("backbone.")]
    assert backbone and any(k.startswith("fc.") for k in sd_a)     # A's classifier is not part of B
    for k in backbone:       # weights and BatchNorm statistics: the source's, unchanged by two epochs of training
        assert torch.equal(sd_b[k], sd_a[k.removeprefix("backbone.")]), k
    # the heads trained: they differ from the initialisation the run started from
    torch.manual_seed(0)
    init = build_model(meta)
    left = load_init(init, meta, a / "best.pt")
    assert left and all(k.startswith("heads.") for k in left)
    heads = [k for k in sd_b if k.startswith("heads.") and k.endswith("weight")]
    assert heads and all(not torch.equal(sd_b[k], init.state_dict()[k]) for k in heads)


def test_init_from_keeps_a_head_only_when_it_is_the_same_and_refuses_misfits(tmp_path, tiny_run):
    from imgcls.train.checkpoint import load_init
    from imgcls.train.rundir import init_checkpoint
    from imgcls.train.heads import build_model
    run = tiny_run(tmp_path / "r", classes=("a", "b", "c"), model="test_efficientnet")
    src = read_checkpoint(run / "best.pt")
    meta = read_meta(run / "best.pt")
    torch.manual_seed(1)
    same = build_model(meta)
    assert load_init(same, meta, run / "best.pt") == []          # same classes: the head comes along
    assert all(torch.equal(v, src["state_dict"][k]) for k, v in same.state_dict().items())
    from dataclasses import replace
    other = replace(meta, classes=("x", "y"), heads=(type(meta.heads[0])("label", ("x", "y")),))
    torch.manual_seed(1)
    net = build_model(other)
    left = load_init(net, other, run / "best.pt")
    assert left and all(k.startswith("classifier.") for k in left)
    assert all(torch.equal(v, src["state_dict"][k]) for k, v in net.state_dict().items() if k not in left)
    with pytest.raises(UserError, match="is a test_efficientnet checkpoint, the run trains test_resnet; pass --model"):
        init_checkpoint(run, "test_resnet")
    folds = tiny_run(tmp_path / "k", folds=2)
    with pytest.raises(UserError, match="holds 2 folds; give one of them"):
        init_checkpoint(folds, "test_efficientnet")
    r = CliRunner().invoke(app, ["train", str(tmp_path), "--init-from", str(run), "--model", "test_resnet"])
    assert r.exit_code == 2 and "pass --model test_efficientnet" in r.output
    # --model not typed: the run's own (it had to be typed again, the default refused as another model)
    from imgcls.train.rundir import init_meta
    assert init_meta(run).model == "test_efficientnet" and init_meta(folds) is None
    r = CliRunner().invoke(app, ["train", str(tmp_path / "nothing"), "--init-from", str(run)])
    assert r.exit_code == 2 and f"--model test_efficientnet --img-size 32: the model and the input size of " \
        f"--init-from {run}" in " ".join(r.output.split()) and "does not exist" in r.output, r.output   # then the data's
    # a Python caller gets the same (TrainConfig.resolve, which the CLI calls): the run's model, unless given, and
    # the input size its weights learned at (32 px here; it went on at the model's 224 unless --img-size was typed)
    from imgcls.train.config import TrainConfig
    cfg = TrainConfig.resolve({"src": str(tmp_path), "init_from": str(run)})
    assert (cfg.model, cfg.img_size) == ("test_efficientnet", 32)
    assert TrainConfig.resolve({"src": str(tmp_path), "init_from": str(run), "img_size": 48}).img_size == 48
    assert TrainConfig.resolve({"src": str(tmp_path), "init_from": str(run),
                                "model": "test_efficientnet"}).img_size == 32
    with pytest.raises(UserError, match="pass --model test_efficientnet"):
        init_checkpoint(run, TrainConfig.resolve({"src": str(tmp_path), "init_from": str(run),
                                                  "model": "test_resnet"}).model)
    # TrainConfig(init_from=RUN) keeps its default model (a default cannot be told from a choice): the refusal names
    # the Python fix, resolve() or model=, before any data is read
    from imgcls.train import run_train
    (tmp_path / "nothing").mkdir()          # there (a missing path is said first, before torch), but no data
    with pytest.raises(UserError, match=r"model='test_efficientnet', or TrainConfig\.resolve\(\{'init_from'"):
        run_train(TrainConfig(src=str(tmp_path / "nothing"), init_from=str(run), out=str(tmp_path / "runs")))
    assert not (tmp_path / "runs").exists()


def test_init_from_carries_the_resize_mode_filter_and_fill_its_weights_learned_on(tmp_path, tiny_run):
    """--init-from RUN took the run's model and input size but not its --resize-mode / --interpolation / --fill: a run
    trained on letterboxed (pad), bicubic, black-filled pixels went on squashed, bilinear, white. They are taken too
    unless typed, and said; typed other than the run's: one line naming both."""
    run = tiny_run(tmp_path / "r")
    ck = read_checkpoint(run / "best.pt")
    save_checkpoint(run / "best.pt", ck["state_dict"], {**ck["meta"], "resize_mode": "pad", "interpolation": "bicubic",
                                                        "fill": [0, 0, 0], "crop_from": 2.0}, epoch=1)
    cfg = TrainConfig.resolve({"src": str(tmp_path), "init_from": str(run)})
    assert (cfg.img_size, cfg.resize_mode, cfg.interpolation, cfg.fill) == (32, "pad", "bicubic", "black")
    assert cfg.crop_from == 2.0                   # trained on 32 px crops of 64 px images: the same pixel density
    assert TrainConfig.resolve({"src": str(tmp_path), "init_from": str(run), "crop_from": 1.0}).crop_from == 1.0
    cfg = TrainConfig.resolve({"src": str(tmp_path), "init_from": str(run), "resize_mode": "crop", "fill": "0,0,0"})
    assert (cfg.resize_mode, cfg.interpolation, cfg.fill) == ("crop", "bicubic", "0,0,0")
    r = CliRunner().invoke(app, ["train", str(tmp_path / "nothing"), "--init-from", str(run)])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and "does not exist" in said, r.output
    assert (f"--model test_efficientnet --img-size 32 --resize-mode pad --interpolation bicubic --fill black "
            f"--crop-from 2.0: the model, the input size, the resize mode, the resize filter, the fill colour and the "
            f"crop scale of --init-from {run}") in said
    r = CliRunner().invoke(app, ["train", str(tmp_path / "nothing"), "--init-from", str(run), "--resize-mode", "crop",
                                 "--fill", "black", "--interpolation", "bilinear", "--crop-from", "1"])
    said = " ".join(r.output.split())
    assert (f"--resize-mode crop --interpolation bilinear --crop-from 1.0 as typed: --init-from {run} was trained "
            f"with --resize-mode pad --interpolation bicubic --crop-from 2.0") in said, r.output
    assert "--fill black as typed" not in said and "--fill black:" not in said


def test_models_list_shows_backbones_cached_here(tmp_path, monkeypatch):
    import huggingface_hub.constants as hfc
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    _fake_hf_cache(tmp_path / "hf", "timm/resnet10t.c3_in1k", {"w": torch.zeros(2)})
    r = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if "timm:resnet10t.c3_in1k" in ln)
    state, _, location, _ = (c.strip() for c in line.strip().strip("│").split("│"))
    assert state == "present" and location.endswith("model.safetensors"), line
    assert "timm:tf_efficientnet_lite0" in r.output


@pytest.mark.parametrize("target", ["profile", "group"])
def test_a_target_that_names_the_person_is_refused_before_training(tmp_path, target):
    """train --target profile (or group) on the mask competition's profiles trained a model whose classes are the
    people: split keeps each person on one side, so no validation row had a class training saw (macro-F1 0 by
    construction, 'N of 16 classes have no validation rows'). Now one line naming the column, why, and the columns
    with classes, before the run folder is made."""
    src = make_profiles(tmp_path / "profiles", n_profiles=4)
    with pytest.raises(UserError, match=rf"--target {target}: each of its values is one group \(the person split "
                                        r"keeps on one side\), so no validation row has a class training saw; train on "
                                        r"a label or attribute column \(columns with classes: mask, gender"):
        run_train(cfg_for(src, tmp_path, target=target))
    assert not (tmp_path / "runs").exists()
