"""Batch mixing: CutMix, MixUp, and seed 003's label-preserving vertical CutMix.

Targets are per head, soft ([N, K] per head). `cutmix` / `mixup` pair each image with another of the batch
(a permutation) and mix the targets by the pasted area / lambda, as timm's Mixup does (one lambda per batch).
`cutmix-vertical` (seed 003's "custom CutMix", which beat plain CutMix there): the left half of an image is kept and
the right half is taken from another image OF THE SAME LABEL, so labels stay exact (5:5, no soft target); an image
without a same-label partner in the batch is left as is.
"""
from __future__ import annotations

import numpy as np
import torch

from imgcls.train.config import MIXES


def one_hot(targets: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    return [torch.nn.functional.one_hot(targets[:, h], k).float() for h, k in enumerate(sizes)]


def mix_batch(x: torch.Tensor, targets: torch.Tensor, sizes: list[int], mode: str, prob: float, alpha: float,
              rng: np.random.Generator, group: torch.Tensor | None = None):
    """Returns (x, soft targets per head). `group`: the final label of each image (for cutmix-vertical)."""
    soft = one_hot(targets, sizes)
    if mode == "none" or rng.random() >= prob:
        return x, soft
    n = x.shape[0]
    if mode == "cutmix-vertical":
        g = (group if group is not None else targets[:, 0]).cpu().numpy()
        partner = np.arange(n)
        for lab in np.unique(g):
            idx = np.flatnonzero(g == lab)
            if len(idx) > 1:
                p = rng.permutation(idx)
                partner[p] = np.roll(p, 1)  # a cycle through the class: nobody is its own partner
        partner_t = torch.as_tensor(partner, device=x.device)
        w = x.shape[-1]
        x = x.clone()
        x[..., w // 2:] = x[partner_t][..., w // 2:]
        return x, soft
    perm = torch.as_tensor(rng.permutation(n), device=x.device)
    lam = float(rng.beta(alpha, alpha))
    if mode == "mixup":
        x = x * lam + x[perm] * (1 - lam)
    elif mode == "cutmix":
        h, w = x.shape[-2:]
        cut = np.sqrt(1 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = rng.integers(h), rng.integers(w)
        y0, y1 = np.clip([cy - ch // 2, cy + ch // 2], 0, h)
        x0, x1 = np.clip([cx - cw // 2, cx + cw // 2], 0, w)
        x = x.clone()
        x[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        raise ValueError(mode)
    return x, [s * lam + s[perm] * (1 - lam) for s in soft]
