"""Batched augmentation (`train --gpu-aug on`): whole uint8 batches augmented on the training device, each sample
with its own random parameters, then normalised.

The per-image path (imgcls.train.data.augment_transform) runs torchvision v2 transforms one image at a time on the
CPU. Here one batch [B, 3, S, S] uint8 (from the decoded-image cache, which moves to a CUDA device once, or from the
file loader) goes through:

1. geometry as ONE resampling: each sample's horizontal flip, random resized crop, rotation and (heavy) perspective
   are composed into one 3x3 matrix (output pixel -> input pixel, normalised coordinates), and a single
   `grid_sample` (bilinear) draws the batch; pixels from outside the image take the fill colour (train --fill),
   as in the per-image presets;
2. colour jitter per sample (brightness, contrast, saturation, and hue for heavy) as blends, in that fixed order
   (torchvision's ColorJitter draws the order at random; hue is a YIQ rotation, an approximation of its HSV shift);
3. normalisation by the model's mean / std, then (heavy) random erasing of one rectangle per sample (p 0.25, value 0).

The presets mean what they mean in augment_transform: light = flip; medium = flip + crop (scale 0.8-1, ratio
0.9-1.1) + rotation (+-10 deg) + jitter 0.2; heavy = flip + crop + rotation (+-15) + jitter 0.3 / hue 0.05 +
perspective (0.2, p 0.5) + erasing. Torch ops only (no kornia): a flip, crop, rotation and perspective are one
matrix each, so one grid_sample does them all, and nothing outside torch is needed on the device.

Every random draw comes from a CPU torch.Generator seeded from (seed, epoch, step, rank): the same batch gets the
same augmentation on any device and after --resume. CutMix / MixUp (imgcls.train.mix) run after this on the same
batch, whose order this module never changes, so labels stay aligned.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from imgcls.errors import UserError
from imgcls.train.config import AUG_PRESETS, FILL_NAMES

_GRAY = (0.2989, 0.587, 0.114)     # torchvision's rgb_to_grayscale weights


def use_batch_aug(choice: str, device_type: str, cache: str) -> bool:
    """--gpu-aug resolved: on / off as given; auto = on when training on CUDA, and on the CPU when batches come from
    the decoded-image cache (one process: batched is faster than image by image there, docs/BENCHMARKS.md); off on
    the CPU with --cache none, where the loader's worker processes augment in parallel with the model."""
    if choice == "auto":
        return device_type == "cuda" or cache in ("ram", "disk")
    return choice == "on"


def step_generator(seed: int, epoch: int, step: int, rank: int = 0) -> torch.Generator:
    """The CPU generator one training step's augmentation draws from: a function of (seed, epoch, step, rank) only."""
    g = torch.Generator()
    g.manual_seed((int(seed) * 1_000_003 + int(epoch) * 7_919 + int(step) * 104_729 + int(rank) * 15_485_863
                   + 0x9E3779B9) % (2 ** 63))
    return g


class BatchAugment:
    """uint8 [B, 3, S, S] (any device) -> normalised float [B, 3, S, S] on the same device, augmented by `preset`.
    `__call__(x, generator)`; `generator` None: no augmentation (normalisation only)."""

    def __init__(self, preset: str, mean, std, fill=FILL_NAMES["white"], hflip: bool = True):
        if preset not in AUG_PRESETS:
            raise UserError(f"unknown --aug '{preset}'; use one of: {', '.join(AUG_PRESETS)}")
        self.preset = preset
        self.fill = torch.tensor([float(v) for v in fill]).view(1, 3, 1, 1)
        self.hflip = hflip
        self.mean = torch.tensor([float(m) for m in mean]).view(1, 3, 1, 1)
        self.std = torch.tensor([float(s) for s in std]).view(1, 3, 1, 1)
        heavy = preset == "heavy"
        self.geometry = preset in ("medium", "heavy")
        self.degrees = 15.0 if heavy else 10.0
        self.jitter = (0.3, 0.3, 0.3, 0.05) if heavy else (0.2, 0.2, 0.2, 0.0)
        self.perspective = 0.2 if heavy else 0.0
        self.erase_p = 0.25 if heavy else 0.0

    # -- parameters (drawn on the CPU generator, then moved) -----------------------------------------------------
    def params(self, n: int, g: torch.Generator) -> dict:
        """Every random parameter of a batch of n, as CPU tensors (one row per sample)."""
        def u(lo, hi, *shape):
            return lo + (hi - lo) * torch.rand(*(shape or (n,)), generator=g, dtype=torch.float64)
        p = {"flip": (torch.rand(n, generator=g) < 0.5) & self.hflip}    # drawn either way: the same other draws
        if self.preset in ("none", "light"):
            return p
        # random resized crop: area fraction and aspect ratio (log-uniform), centre anywhere that keeps it inside
        area, ratio = u(0.8, 1.0), torch.exp(u(math.log(0.9), math.log(1.1)))
        p["cw"] = torch.sqrt(area * ratio).clamp(max=1.0)
        p["ch"] = torch.sqrt(area / ratio).clamp(max=1.0)
        p["cx"] = (1 - p["cw"]) * u(-1.0, 1.0)
        p["cy"] = (1 - p["ch"]) * u(-1.0, 1.0)
        p["angle"] = u(-self.degrees, self.degrees) * math.pi / 180
        b, c, s, h = self.jitter
        p["bright"], p["contrast"], p["sat"] = u(1 - b, 1 + b), u(1 - c, 1 + c), u(1 - s, 1 + s)
        if h:
            p["hue"] = u(-h, h)
        if self.perspective:
            p["persp"] = torch.rand(n, generator=g) < 0.5
            p["corners"] = u(0.0, self.perspective, n, 4, 2)     # each corner moved inwards by up to d x half size
        if self.erase_p:
            p["erase"] = torch.rand(n, generator=g) < self.erase_p
            p["erase_area"] = u(0.02, 0.33)
            p["erase_ratio"] = torch.exp(u(math.log(0.3), math.log(3.3)))
            p["erase_pos"] = u(0.0, 1.0, n, 2)
        return p

    def matrices(self, p: dict) -> torch.Tensor:
        """[B, 3, 3] float64: output pixel -> input pixel in normalised coordinates ([-1, 1], align_corners=False):
        crop . flip . rotation^-1 . perspective^-1 (the order torchvision applies them: flip, crop, rotate, warp)."""
        n = len(p["flip"])
        eye = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
        crop = eye.clone()
        crop[:, 0, 0], crop[:, 1, 1], crop[:, 0, 2], crop[:, 1, 2] = p["cw"], p["ch"], p["cx"], p["cy"]
        flip = eye.clone()
        flip[:, 0, 0] = torch.where(p["flip"], -1.0, 1.0).double()
        cos, sin = torch.cos(p["angle"]), torch.sin(p["angle"])
        rot = eye.clone()
        rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = cos, -sin, sin, cos
        m = crop @ flip @ rot
        if "persp" in p:
            m = m @ _homographies(p["corners"], p["persp"])
        return m

    # -- the batch -----------------------------------------------------------------------------------------------
    def __call__(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"BatchAugment takes uint8 [B, 3, S, S] batches, got {x.dtype} {tuple(x.shape)}")
        dev = x.device
        if g is not None and self.preset != "none":
            p = self.params(x.shape[0], g)
            if self.geometry:
                x = _warp(x.float(), self.matrices(p).to(dev, torch.float32), self.fill.to(dev))
            else:                                     # light: flip the chosen samples, on uint8 (a quarter the bytes)
                x = x.clone()
                sel = torch.flatten(torch.nonzero(p["flip"])).to(dev)
                x[sel] = x[sel].flip(-1)
                x = x.float()
            x = x.mul_(1 / 255)
            if "bright" in p:
                x = self._jitter(x, p, dev)
        else:
            x = x.float().mul_(1 / 255)
        x = x.sub_(self.mean.to(dev)).div_(self.std.to(dev))
        if g is not None and self.erase_p:
            x = _erase(x, p)
        return x

    @staticmethod
    def _jitter(x: torch.Tensor, p: dict, dev) -> torch.Tensor:
        def col(t):
            return t.to(dev, torch.float32).view(-1, 1, 1, 1)
        gray_w = torch.tensor(_GRAY, device=dev).view(1, 3, 1, 1)
        x = (x * col(p["bright"])).clamp_(0, 1)
        mean = (x * gray_w).sum(1, keepdim=True).mean((2, 3), keepdim=True)
        c = col(p["contrast"])
        x = (x * c + mean * (1 - c)).clamp_(0, 1)
        gray = (x * gray_w).sum(1, keepdim=True)
        s = col(p["sat"])
        x = (x * s + gray * (1 - s)).clamp_(0, 1)
        if "hue" in p:
            x = _hue(x, p["hue"].to(dev, torch.float32))
        return x


def random_crops(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """train --crop-from on a batch: uint8 [B, 3, H, W] (H, W >= size, any device) -> [B, 3, size, size], each sample
    an integer-pixel crop at its own uniform position drawn from the step's CPU generator `g`, before the preset's
    augmentation (BatchAugment, which then works at size as without it). The per-image path's SquareCrop."""
    n, _, h, w = x.shape
    top = torch.randint(0, h - size + 1, (n,), generator=g).tolist()
    left = torch.randint(0, w - size + 1, (n,), generator=g).tolist()
    return torch.stack([x[i, :, t:t + size, l:l + size] for i, (t, l) in enumerate(zip(top, left))])


def _homographies(corners: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """[B, 3, 3] output -> input maps of torchvision's RandomPerspective: the image's corners (+-1, +-1) land on
    corners moved inwards by `corners` [B, 4, 2]; identity where `active` is False."""
    n = corners.shape[0]
    src = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64)
    inward = -src                                   # the direction towards the centre, per corner
    dst = src + inward * corners                    # where each corner is drawn in the output
    # solve H (8 unknowns, h33 = 1) with H @ dst_i ~ src_i: the sampling map from output to input
    a = torch.zeros(n, 8, 8, dtype=torch.float64)
    b = torch.zeros(n, 8, dtype=torch.float64)
    for i in range(4):
        u, v = dst[:, i, 0], dst[:, i, 1]
        x, y = src[i, 0], src[i, 1]
        a[:, 2 * i, 0], a[:, 2 * i, 1], a[:, 2 * i, 2] = u, v, 1
        a[:, 2 * i, 6], a[:, 2 * i, 7] = -u * x, -v * x
        a[:, 2 * i + 1, 3], a[:, 2 * i + 1, 4], a[:, 2 * i + 1, 5] = u, v, 1
        a[:, 2 * i + 1, 6], a[:, 2 * i + 1, 7] = -u * y, -v * y
        b[:, 2 * i], b[:, 2 * i + 1] = x, y
    h = torch.cat([torch.linalg.solve(a, b), torch.ones(n, 1, dtype=torch.float64)], 1).view(n, 3, 3)
    return torch.where(active.view(-1, 1, 1), h, torch.eye(3, dtype=torch.float64).expand(n, 3, 3))


_GRIDS: dict = {}


def _warp(x: torch.Tensor, m: torch.Tensor, fill: torch.Tensor | None = None) -> torch.Tensor:
    """Resample float [B, 3, H, W] (0-255) through per-sample matrices [B, 3, 3]; outside pixels take `fill`
    ([1, 3, 1, 1], 0-255; white when None)."""
    n, _, hgt, wid = x.shape
    key = (hgt, wid, x.device)
    base = _GRIDS.get(key)
    if base is None:
        ys = (torch.arange(hgt, device=x.device, dtype=torch.float32) * 2 + 1) / hgt - 1
        xs = (torch.arange(wid, device=x.device, dtype=torch.float32) * 2 + 1) / wid - 1
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        base = _GRIDS[key] = torch.stack([gx, gy, torch.ones_like(gx)], 0).view(3, -1)   # [3, H*W]
    pts = m @ base                                                   # [B, 3, H*W]
    grid = (pts[:, :2] / pts[:, 2:3]).transpose(1, 2).reshape(n, hgt, wid, 2)
    # the fill: sample (x - fill) with zero padding, add the fill back
    fill = torch.full((1, 3, 1, 1), 255.0, device=x.device) if fill is None else fill
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False).add_(fill)


def _hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate each sample's hue by shift x 360 degrees in YIQ space ([B, 3, H, W] in 0-1)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                          device=x.device)
    from_yiq = torch.linalg.inv(to_yiq)
    th = shift * 2 * math.pi
    cos, sin = torch.cos(th), torch.sin(th)
    rot = torch.zeros(len(shift), 3, 3, device=x.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    t = from_yiq @ rot @ to_yiq                                      # [B, 3, 3]
    return torch.einsum("bij,bjhw->bihw", t, x).clamp_(0, 1)


def _erase(x: torch.Tensor, p: dict) -> torch.Tensor:
    """torchvision RandomErasing per sample (scale 0.02-0.33, ratio 0.3-3.3, value 0) on the normalised batch."""
    n, _, hgt, wid = x.shape
    area = p["erase_area"] * hgt * wid
    eh = torch.sqrt(area * p["erase_ratio"]).round().clamp(1, hgt - 1)
    ew = torch.sqrt(area / p["erase_ratio"]).round().clamp(1, wid - 1)
    y0 = (p["erase_pos"][:, 0] * (hgt - eh + 1)).floor()
    x0 = (p["erase_pos"][:, 1] * (wid - ew + 1)).floor()
    dev = x.device
    ys = torch.arange(hgt, device=dev).view(1, hgt, 1)
    xs = torch.arange(wid, device=dev).view(1, 1, wid)

    def col(t):
        return t.to(dev).view(-1, 1, 1)
    inside = ((ys >= col(y0)) & (ys < col(y0 + eh)) & (xs >= col(x0)) & (xs < col(x0 + ew))
              & col(p["erase"]))
    return x.masked_fill(inside.unsqueeze(1), 0.0)


def source_on_device(images, rows, device: torch.device, max_fraction: float = 0.25):
    """The training rows of the decoded-image cache where batches are cut from: a uint8 tensor [N, S, S, 3] on a
    CUDA device when it fits in `max_fraction` of the free memory (moved once), else None (batches are gathered
    on the CPU and moved one by one)."""
    if device.type != "cuda":
        return None
    import numpy as np
    need = len(rows) * int(np.prod(images.shape[1:]))
    free, _ = torch.cuda.mem_get_info(device)
    if need > max_fraction * free:
        return None
    return torch.from_numpy(np.ascontiguousarray(images[np.asarray(rows)])).to(device)


def gather(images, rows, on_device: torch.Tensor | None, idx, device: torch.device) -> torch.Tensor:
    """uint8 [B, 3, S, S] on `device`: the training samples `idx` (positions in `rows`)."""
    import numpy as np
    if on_device is not None:
        b = on_device[torch.as_tensor(idx, device=device)]
    else:
        b = torch.from_numpy(np.take(images, np.asarray(rows)[np.asarray(idx)], axis=0))
        if device.type == "cuda":
            b = b.pin_memory().to(device, non_blocking=True)
    return b.permute(0, 3, 1, 2)
