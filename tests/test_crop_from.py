"""train --crop-from F: the painter write-up's 2x image + RandomCrop (seed 002: test images a quarter of a painting)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from imgcls.train import TrainConfig, run_train
from imgcls.train.checkpoint import read_checkpoint

from test_train import cfg_for as _cfg_for, two_class  # noqa: F401  (two_class: a fixture)

S = 16       # the input size these tests train at (test_train's TINY at img_size=16)


def cfg_for(src, tmp_path, **kw):
    return _cfg_for(src, tmp_path, **{"img_size": S, **kw})


def _windows(big: torch.Tensor, crop: torch.Tensor) -> list[tuple[int, int]]:
    """Where `crop` [3, s, s] sits in `big` [3, H, W] (every exact match)."""
    s, (h, w) = crop.shape[-1], big.shape[-2:]
    return [(t, left) for t in range(h - s + 1) for left in range(w - s + 1)
            if torch.equal(big[:, t:t + s, left:left + s], crop)]


def test_a_cached_training_sample_is_a_seeded_random_crop_and_validation_the_centre():
    from imgcls.train.data import CachedImages, SquareCrop
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)      # cached at 2 x 16
    mean, std = (0.0,) * 3, (1.0,) * 3
    train = CachedImages(images, np.zeros((3, 1)), mean, std, crop=SquareCrop(16, random=True), raw=True)
    big = torch.from_numpy(images[1]).permute(2, 0, 1)
    where = set()
    for seed in range(12):
        x, _ = train[(1, seed)]
        assert x.shape == (3, 16, 16)
        w = _windows(big, x)
        assert len(w) == 1
        where.add(w[0])
        y, _ = train[(1, seed)]
        assert torch.equal(x, y)                  # seeded: the same sample seed, the same crop
    assert len(where) >= 8                        # positions vary with the seed, anywhere in the 17 x 17 offsets
    val = CachedImages(images, np.zeros((3, 1)), mean, std, crop=SquareCrop(16, random=False))
    for i in range(3):
        v, _ = val[i]                             # normalised (mean 0, std 1): the uint8 values / 255
        assert torch.allclose(v, torch.from_numpy(images[i]).permute(2, 0, 1)[:, 8:24, 8:24].float() / 255)


def test_batch_crops_are_per_sample_seeded_windows():
    from imgcls.train.batch_aug import random_crops, step_generator
    x = torch.randint(0, 256, (6, 3, 24, 24), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    a = random_crops(x, 16, step_generator(0, 0, 0))
    b = random_crops(x, 16, step_generator(0, 0, 0))
    c = random_crops(x, 16, step_generator(0, 1, 0))
    assert a.shape == (6, 3, 16, 16) and a.dtype == torch.uint8 and torch.equal(a, b)
    pos_a = [_windows(x[i], a[i]) for i in range(6)]
    pos_c = [_windows(x[i], c[i]) for i in range(6)]
    assert all(len(p) == 1 for p in pos_a + pos_c)
    assert len({p[0] for p in pos_a}) > 1 and pos_a != pos_c    # per sample, and per (epoch, step)


@pytest.mark.parametrize("gpu_aug,cache", [("off", "ram"), ("on", "ram"), ("off", "none"), ("on", "none")])
def test_a_run_caches_at_f_times_s_trains_on_crops_and_validates_on_centre_crops(two_class, tmp_path, monkeypatch,
                                                                                gpu_aug, cache):
    from imgcls import io as imgio
    from imgcls.train import data as tdata
    from imgcls.train.checkpoint import load_model
    from imgcls.train.loop import Trainer
    decoded, seen = [], []
    real_decode, real_fb = tdata.decode_cache, Trainer._forward_backward
    monkeypatch.setattr(tdata, "decode_cache", lambda paths, size, *a, **kw: (decoded.append(size),
                                                                             real_decode(paths, size, *a, **kw))[1])
    monkeypatch.setattr(Trainer, "_forward_backward", lambda self, x, soft: (seen.append(x.detach().clone()),
                                                                               real_fb(self, x, soft))[1])
    run = run_train(cfg_for(two_class, tmp_path, crop_from=2.0, gpu_aug=gpu_aug, cache=cache))
    assert decoded == ([32] if cache == "ram" else [])
    assert seen and all(x.shape[-2:] == (16, 16) for x in seen)
    log = (run / "train.log").read_text()
    assert "validation: centre crops of 2x images, as the test's crops" in log
    meta = read_checkpoint(run / "best.pt")["meta"]
    assert meta["crop_from"] == 2.0 and meta["img_size"] == 16
    # validation's probabilities are the model's on the centre 16 x 16 crops of the images resized to 32 x 32
    lm = load_model(run / "best.pt")
    from torchvision.transforms import v2
    load32 = v2.Compose([v2.ToImage(), tdata.resize_transform(32, "squash", "bilinear", lm.meta.fill)])
    vp = pd.read_csv(run / "val_predictions.csv", keep_default_na=False)
    norm = tdata.normalize_transform(lm.meta.mean, lm.meta.std)
    x = torch.stack([norm(v2.functional.center_crop(load32(imgio.load_rgb(f"{r}/{p}")), [16, 16]))
                     for r, p in zip(vp["root"], vp["path"])])
    assert np.allclose(lm.predict_proba(x).numpy(), vp[["p_a", "p_b"]].to_numpy(), atol=1e-4)
    # predict does not crop: it resizes each test image whole to 16 (eval_transform), other inputs than validation's
    whole = torch.stack([tdata.eval_transform(lm.meta)(imgio.load_rgb(f"{r}/{p}"))
                         for r, p in zip(vp["root"], vp["path"])])
    assert not torch.allclose(whole, x)


def test_training_crops_differ_over_epochs_on_both_paths(two_class, tmp_path, monkeypatch):
    """One image trained on three epochs: its sample's window in the 2x image moves (seeded: a rerun repeats it)."""
    from imgcls.train.loop import Trainer
    real_fb = Trainer._forward_backward
    for gpu_aug in ("off", "on"):
        seen = []
        monkeypatch.setattr(Trainer, "_forward_backward", lambda self, x, soft: (seen.append(x.detach().clone()),
                                                                                   real_fb(self, x, soft))[1])
        for name in ("a", "b"):
            run_train(cfg_for(two_class, tmp_path, name=f"{gpu_aug}{name}", crop_from=1.5, gpu_aug=gpu_aug,
                              epochs=3, batch_size=14))
        n = len(seen) // 2
        first, again = seen[:n], seen[n:]
        assert all(torch.equal(p, q) for p, q in zip(first, again))      # seeded
        assert len(first) == 3 and all(b.shape == (14, 3, 16, 16) for b in first)
        sums = [sorted(b.double().sum((1, 2, 3)).tolist()) for b in first]
        assert sums[0] != sums[1] and sums[1] != sums[2], gpu_aug       # other crops of the same 14 images


def test_crop_from_one_is_the_default_and_reads_as_one_from_an_older_checkpoint():
    from imgcls.errors import UserError
    from imgcls.model_meta import ModelMeta
    assert TrainConfig().crop_from == 1.0
    old = {"model": "test_resnet", "classes": ["a", "b"], "heads": [{"name": "label", "classes": ["a", "b"]}],
           "decode": "single", "img_size": 16, "mean": [0.5] * 3, "std": [0.5] * 3}
    meta = ModelMeta.from_dict(old)
    assert meta.crop_from == 1.0 and meta.to_dict()["crop_from"] == 1.0
    assert ModelMeta.from_dict({**old, "crop_from": 2}).crop_from == 2.0
    for bad in (0.5, 9.0, "2", True, float("nan")):
        with pytest.raises(UserError, match="crop_from"):
            ModelMeta.from_dict({**old, "crop_from": bad})


def test_crop_from_out_of_range_is_one_line(two_class, tmp_path):
    from typer.testing import CliRunner

    from imgcls.cli import app
    r = CliRunner().invoke(app, ["train", str(two_class), "--crop-from", "0.5", "--out", str(tmp_path / "runs")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "--crop-from must be between 1 and 4 (got 0.5)" in r.output


def test_eda_finding_on_smaller_test_images_names_crop_from():
    from imgcls.eda import findings_on_test
    t = {"scale_ratio": 2.1, "median_side": {"train": 420.0, "test": 200.0}, "shifts": {}, "n_copies_of_train": 0}
    line, = findings_on_test(t)
    assert "train --crop-from 2" in line
    larger, = findings_on_test({**t, "scale_ratio": 0.5})
    assert "--crop-from" not in larger


def test_the_cache_check_counts_the_f_times_s_images(two_class, tmp_path, monkeypatch):
    """20 images at 16 px need 15,360 bytes, at --crop-from 2 (32 px) 61,440: a typed --cache ram with room for the
    first only is refused, naming the size cached and --crop-from, before anything is decoded."""
    from typer.testing import CliRunner

    from imgcls.cli import app
    from imgcls.train import data as tdata
    monkeypatch.setattr(tdata, "cache_room", lambda folder: (60_000, 10**12))      # 60% of it: 36,000 bytes
    decodes = []
    monkeypatch.setattr(tdata, "decode_cache", lambda *a, **kw: decodes.append(a[1]))

    def train(*extra):
        return CliRunner().invoke(app, ["train", str(two_class), "--model", "test_resnet", "--img-size", "16",
                                        "--epochs", "1", "--workers", "0", "--val-split", "0.3", "--no-pretrained",
                                        "--out", str(tmp_path / "runs"), "--cache", "ram", "--quiet", *extra])
    r = train("--crop-from", "2", "--name", "crop")
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    line = " ".join(r.output.split())
    assert "cache of 20 images at 32px (--crop-from 2 x --img-size 16) needs" in line, line
    assert line.endswith("or a smaller --img-size or --crop-from")
    assert decodes == [] and not (tmp_path / "runs" / "crop").exists()
    assert tdata.plan_cache("ram", 20, 16, tmp_path) == "ram"                          # without it the cache fits


def test_tune_never_searches_crop_from():
    """--crop-from changes the validation images (centre crops of Fx images): trials' scores would not compare."""
    from imgcls.errors import UserError
    from imgcls.tune.space import parse_space
    with pytest.raises(UserError, match="space key 'crop_from' cannot be searched"):
        parse_space({"crop_from": {"uniform": [1.0, 2.0]}})


def test_a_crop_from_that_rounds_to_the_input_size_is_one_line(two_class, tmp_path):
    """--crop-from 1.02 at --img-size 16 resizes to round(16.32) = 16 px: nothing to crop, while the checkpoint
    would record crop_from 1.02; refused in one line before any image is decoded."""
    from typer.testing import CliRunner

    from imgcls.cli import app
    r = CliRunner().invoke(app, ["train", str(two_class), "--model", "test_resnet", "--img-size", "16",
                                 "--no-pretrained", "--crop-from", "1.02", "--out", str(tmp_path / "runs")])
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert r.exit_code == 2 and len(errors) == 1 and "no crop" in errors[0] and "Traceback" not in r.output, r.output
    assert "--crop-from 1.032 or more" in errors[0], errors        # round(1.032 x 16) = 17: the smallest that crops
    assert not (tmp_path / "runs").exists()


def test_predict_says_once_that_a_crop_from_run_gets_whole_test_images(two_class, tmp_path):
    """predict feeds a --crop-from run each test image resized whole (the test images are meant to be the crops),
    which it did without a word: it now says so in one info line, and nothing for a run trained on whole images."""
    from typer.testing import CliRunner

    from imgcls.cli import app
    said = {}
    for name, f in (("crop", 2.0), ("whole", 1.0)):
        run = run_train(cfg_for(two_class, tmp_path, name=name, crop_from=f, epochs=1))
        r = CliRunner().invoke(app, ["predict", str(run), "--data", str(two_class), "--workers", "0",
                                     "--device", "cpu", "--out", str(tmp_path / f"p_{name}")])
        assert r.exit_code == 0, r.output
        said[name] = " ".join(r.output.split())
    line = ("trained on crops: crop on 16 x 16 crops of images resized to 32 x 32 (--crop-from 2); each test image "
            "is resized whole to the model's input size, not cropped (the test images are meant to be the crops)")
    assert said["crop"].count(line) == 1, said["crop"]
    assert "crops of images resized" not in said["whole"], said["whole"]
