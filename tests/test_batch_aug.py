"""train --gpu-aug: batched augmentation (imgcls.train.batch_aug) on CPU tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from imgcls.train.batch_aug import BatchAugment, gather, step_generator, use_batch_aug
from imgcls.train.data import normalize_transform
from imgcls.train.mix import mix_batch

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def picture(n=8, size=32, seed=0):
    """n copies of one random uint8 image [n, 3, size, size]."""
    g = torch.Generator().manual_seed(seed)
    one = torch.randint(0, 256, (1, 3, size, size), generator=g, dtype=torch.uint8)
    return one.repeat(n, 1, 1, 1)


@pytest.mark.parametrize("preset", ["medium", "heavy"])
def test_each_sample_gets_its_own_parameters(preset):
    x = picture(16)
    y = BatchAugment(preset, MEAN, STD)(x, step_generator(0, 0, 0))
    assert y.shape == (16, 3, 32, 32) and y.dtype == torch.float32
    flat = y.flatten(1)
    # 16 copies of one image, 16 different results (crop, rotation, jitter drawn per sample)
    assert all(not torch.allclose(flat[i], flat[j], atol=1e-3) for i in range(16) for j in range(i + 1, 16))
    p = BatchAugment(preset, MEAN, STD).params(64, step_generator(0, 0, 0))
    assert 0 < int(p["flip"].sum()) < 64 and len(set(p["angle"].tolist())) == 64
    assert p["cw"].max() <= 1 and p["cw"].min() >= np.sqrt(0.8 * 0.9) - 1e-9


def test_light_flips_some_samples_exactly_and_none_only_normalises():
    x = torch.randint(0, 256, (32, 3, 16, 16), dtype=torch.uint8)
    norm = normalize_transform(MEAN, STD)
    plain = torch.stack([norm(i) for i in x])
    assert torch.allclose(BatchAugment("none", MEAN, STD)(x, step_generator(0, 0, 0)), plain, atol=1e-6)
    y = BatchAugment("light", MEAN, STD)(x, step_generator(0, 0, 0))
    flipped = [torch.allclose(y[i], plain[i].flip(-1), atol=1e-6) for i in range(32)]
    kept = [torch.allclose(y[i], plain[i], atol=1e-6) for i in range(32)]
    assert all(f or k for f, k in zip(flipped, kept)) and 0 < sum(flipped) < 32
    assert torch.equal(x, x.clone())            # the input batch (a view of the cache) is not modified
    assert BatchAugment("light", MEAN, STD)(x, None).allclose(plain, atol=1e-6)   # no generator: no augmentation


@pytest.mark.parametrize("preset", ["light", "medium", "heavy"])
def test_reproducible_from_seed_epoch_step(preset):
    x = torch.randint(0, 256, (8, 3, 24, 24), dtype=torch.uint8)
    aug = BatchAugment(preset, MEAN, STD)
    a = aug(x, step_generator(3, 1, 5))
    assert torch.equal(a, BatchAugment(preset, MEAN, STD)(x, step_generator(3, 1, 5)))
    for other in (step_generator(3, 1, 6), step_generator(3, 2, 5), step_generator(4, 1, 5),
                  step_generator(3, 1, 5, rank=1)):
        assert not torch.equal(a, aug(x, other))


def test_identity_geometry_keeps_pixels_and_rotation_fills_white():
    from imgcls.train.batch_aug import _homographies, _warp
    x = torch.randint(0, 256, (2, 3, 20, 20)).float()
    assert torch.allclose(_warp(x, torch.eye(3).repeat(2, 1, 1)), x, atol=1e-2)
    assert torch.allclose(_homographies(torch.zeros(2, 4, 2, dtype=torch.float64), torch.tensor([True, True])),
                          torch.eye(3, dtype=torch.float64).expand(2, 3, 3))
    rot = torch.eye(3).repeat(2, 1, 1)
    rot[:, :2, :2] = torch.tensor([[0.7071, -0.7071], [0.7071, 0.7071]])
    out = _warp(torch.zeros(2, 3, 20, 20), rot)
    assert out[:, :, 0, 0].min() > 250 and out[:, :, 10, 10].max() < 1     # corners from outside: white


@pytest.mark.parametrize("mode", ["cutmix", "mixup"])
def test_labels_stay_aligned_under_cutmix_and_mixup(mode):
    # each image is one flat grey level that encodes its class: after augmentation and mixing, an image's mean
    # level must be its soft target's mixture of the class levels
    levels = torch.tensor([20.0, 90.0, 160.0, 230.0])
    y = torch.tensor([[c] for c in [0, 1, 2, 3, 3, 2, 1, 0, 1, 3]])
    x = levels[y[:, 0]].view(-1, 1, 1, 1).expand(-1, 3, 16, 16).round().to(torch.uint8).contiguous()
    aug = BatchAugment("light", (0, 0, 0), (1, 1, 1))
    rng = np.random.default_rng(0)
    for step in range(5):
        xa = aug(x, step_generator(0, 0, step))
        xm, soft = mix_batch(xa, y, [4], mode, 1.0, 1.0, rng)
        want = soft[0] @ (levels / 255)
        assert torch.allclose(xm.mean((1, 2, 3)), want, atol=1e-5)


def test_gather_cuts_batches_from_the_cache_rows():
    images = np.arange(5 * 4 * 4 * 3, dtype=np.uint8).reshape(5, 4, 4, 3)
    rows = np.array([4, 1, 3])
    b = gather(images, rows, None, [2, 0], torch.device("cpu"))
    assert b.shape == (2, 3, 4, 4) and b.dtype == torch.uint8
    assert torch.equal(b[0], torch.from_numpy(images[3]).permute(2, 0, 1))
    assert torch.equal(b[1], torch.from_numpy(images[4]).permute(2, 0, 1))


def test_auto_choice():
    assert use_batch_aug("auto", "cuda", "none") and use_batch_aug("auto", "cpu", "ram")
    assert use_batch_aug("auto", "cpu", "disk") and not use_batch_aug("auto", "cpu", "none")
    assert use_batch_aug("on", "cpu", "none") and not use_batch_aug("off", "cuda", "ram")
