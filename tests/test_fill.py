"""train --fill: the colour augmentation, pad resizing and TTA's smaller scales bring in from outside an image
(white by default; auto: the training images' border colour), kept in the checkpoint and used by predict; and
train --no-hflip."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from imgcls.errors import UserError
from imgcls.model_meta import ModelMeta
from imgcls.train import data as tdata
from imgcls.train.batch_aug import BatchAugment, step_generator
from imgcls.train.config import TrainConfig, parse_fill
from imgcls.options import check

META = {"model": "test_resnet", "classes": ["a", "b"], "heads": [{"name": "label", "classes": ["a", "b"]}],
        "decode": "single", "img_size": 24, "mean": [0.0] * 3, "std": [1.0] * 3}


def digit(size=32, value=255, shift=0):
    """A black square with a light stroke near the middle, as a handwritten digit."""
    a = np.zeros((size, size, 3), np.uint8)
    a[size // 4: 3 * size // 4, size // 2 - 2 + shift: size // 2 + 2 + shift] = value
    return a


def test_parse_fill_and_its_one_line_error():
    assert parse_fill("auto") is None and parse_fill("white") == (255, 255, 255) and parse_fill("Black") == (0, 0, 0)
    assert parse_fill("10, 20,30") == (10, 20, 30)
    for bad in ("grey", "1,2", "0,0,256", "a,b,c"):
        with pytest.raises(UserError, match="--fill .*use auto, white, black or R,G,B"):
            check(TrainConfig(fill=bad))


def test_border_colour_is_the_background_not_the_strokes():
    digits = np.stack([digit() for _ in range(5)])
    assert tdata.border_colour(digits) == (0, 0, 0)
    assert tdata.border_colour(255 - digits) == (255, 255, 255)
    assert tdata.border_colour(np.zeros((0, 8, 8, 3), np.uint8)) == tdata.WHITE


def test_resolve_fill_from_files_when_nothing_is_cached(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(digit()).save(paths[-1])
    (tmp_path / "bad.png").write_bytes(b"no")
    assert tdata.resolve_fill("auto", [*paths, tmp_path / "bad.png"], 24, "bilinear")[0] == (0, 0, 0)
    assert tdata.resolve_fill("7,8,9", paths, 24, "bilinear") == ((7, 8, 9), "--fill 7,8,9")


@pytest.mark.parametrize("fill", [(0, 0, 0), (255, 255, 255), (10, 200, 30)])
def test_rotation_brings_in_the_fill_on_both_augmentation_paths(fill):
    x = torch.full((3, 32, 32), 128, dtype=torch.uint8)                 # a flat grey image
    torch.manual_seed(0)
    per_image = torch.stack([tdata.augment_transform("heavy", 32, fill)(x) for _ in range(8)])
    batched = BatchAugment("heavy", (0.0,) * 3, (1 / 255,) * 3, fill)(x.repeat(8, 1, 1, 1), step_generator(0, 0, 0))
    for out in (per_image.float(), batched):
        px = out.permute(0, 2, 3, 1).reshape(-1, 3)
        brought_in = (px - 128).abs().amax(1) > 40       # not the image's grey (jitter moves grey by < 40)
        assert brought_in.any()
        got = px[brought_in]
        # what rotation brings in is the fill, up to colour jitter (heavy: 0.3) on the per-image path's order
        assert (got - torch.tensor(fill, dtype=torch.float32)).abs().amax(1).median() < 80


def test_meta_keeps_the_fill_and_older_checkpoints_are_white():
    m = ModelMeta.from_dict({**META, "fill": [0, 0, 0]})
    assert m.fill == (0, 0, 0) and ModelMeta.from_dict(m.to_dict()).fill == (0, 0, 0)
    assert ModelMeta.from_dict(META).fill == (255, 255, 255)
    with pytest.raises(UserError, match="fill"):
        ModelMeta.from_dict({**META, "fill": [0, 0, 300]})


def test_pad_resizing_and_tta_scales_use_the_checkpoint_fill():
    from imgcls.tta import ViewMaker, parse_tta
    im = Image.fromarray(np.full((12, 24, 3), 128, np.uint8))          # wide grey: pad mode adds rows
    for fill in ([0, 0, 0], [255, 255, 255]):
        meta = ModelMeta.from_dict({**META, "fill": fill, "resize_mode": "pad"})
        x = tdata.eval_transform(meta)(im)                               # mean 0, std 1: pixels in 0-1
        assert torch.allclose(x[:, 0, :], torch.tensor(fill, dtype=torch.float32).view(3, 1) / 255)
        views = ViewMaker(ModelMeta.from_dict({**META, "fill": fill}), parse_tta("scales=0.5,1.0"))(im)
        small = views[1]                                                 # the 0.5 scale: padded to 24 px
        assert torch.allclose(small[:, 0, 0], torch.tensor(fill, dtype=torch.float32) / 255)
        assert torch.allclose(small[:, 12, 12], torch.full((3,), 128 / 255), atol=1e-3)


def test_a_run_on_dark_images_records_black_a_given_fill_and_white_by_default(tmp_path):
    from imgcls.train import run_train
    from imgcls.train.checkpoint import read_checkpoint
    for cls, n in (("a", 6), ("b", 6)):
        (tmp_path / "raw" / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(digit(value=200 if cls == "a" else 90, shift=i)).save(tmp_path / "raw" / cls / f"{i}.png")
    base = dict(src=str(tmp_path / "raw"), out=str(tmp_path / "runs"), model="test_resnet", img_size=32,
                batch_size=4, workers=0, device="cpu", pretrained=False, epochs=1, val_split=0.3, plots=False)
    for name, fill, cache, want in (("auto", "auto", "ram", [0, 0, 0]), ("auto_files", "auto", "none", [0, 0, 0]),
                                    ("given", "1,2,3", "ram", [1, 2, 3]), ("default", None, "ram", [255] * 3)):
        run = run_train(TrainConfig(**base, name=name, cache=cache, **({"fill": fill} if fill else {})))
        assert read_checkpoint(run / "best.pt")["meta"]["fill"] == want, name


@pytest.mark.parametrize("preset", ["light", "medium", "heavy"])
def test_no_hflip_never_mirrors_on_either_path(preset):
    """--no-hflip: an image whose mirror differs a lot (a bar at the left edge) never comes out mirrored."""
    x = torch.zeros(3, 32, 32, dtype=torch.uint8)
    x[:, 4:28, 2:8] = 255                                          # a bar at the left
    torch.manual_seed(0)
    aug = tdata.augment_transform(preset, 32, (0, 0, 0), hflip=False) or (lambda im: im)   # light: None
    per_image = torch.stack([aug(x) for _ in range(32)])
    batched = BatchAugment(preset, (0.0,) * 3, (1 / 255,) * 3, (0, 0, 0), hflip=False)(
        x.repeat(32, 1, 1, 1), step_generator(0, 0, 0))
    for out in (per_image.float(), batched):
        left, right = out[..., :16].sum((1, 2, 3)), out[..., 16:].sum((1, 2, 3))
        assert (left > right).all()
    flipped = BatchAugment(preset, (0.0,) * 3, (1 / 255,) * 3, (0, 0, 0))(x.repeat(32, 1, 1, 1),
                                                                            step_generator(0, 0, 0))
    assert (flipped[..., :16].sum((1, 2, 3)) < flipped[..., 16:].sum((1, 2, 3))).any()   # flips by default


def test_the_fill_colour_auto_measured_is_in_train_log_under_quiet(tmp_path):
    """--fill auto's measured colour went only to the terminal: under --quiet no file but best.pt's meta said it."""
    from imgcls.console import set_quiet
    from imgcls.train import run_train
    for cls in ("a", "b"):
        (tmp_path / "raw" / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(digit(value=200 if cls == "a" else 90, shift=i)).save(tmp_path / "raw" / cls / f"{i}.png")
    set_quiet(True)
    try:
        run = run_train(TrainConfig(src=str(tmp_path / "raw"), out=str(tmp_path / "runs"), name="q", model="test_resnet",
                                    img_size=32, batch_size=4, workers=0, device="cpu", pretrained=False, epochs=1,
                                    val_split=0.3, fill="auto", aug="none", plots=False))
    finally:
        set_quiet(False)
    assert "fill colour RGB 0,0,0 (--fill auto: the median colour of the training images' borders)" in \
        (run / "train.log").read_text()
