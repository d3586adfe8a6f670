"""Losses for imbalanced data. Every loss takes logits [N, K] and soft targets [N, K] (one-hot, smoothed or
mixed by CutMix / MixUp), and optional per-class weights (`--class-weights auto` = inverse frequency).

  ce               cross-entropy
  label-smoothing  cross-entropy with targets smoothed by --smoothing (default 0.1)
  focal            focal loss (Lin et al. 2017): -sum_k w_k * t_k * (1 - p_k)^gamma * log p_k
  f1               1 - soft macro-F1 over the batch (probabilities as soft counts)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from imgcls.errors import UserError
from imgcls.train.config import LOSSES


def class_weights_auto(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights n / (K * count_k), normalised to mean 1 over classes (absent classes: 1)."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    w = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 1.0)
    return torch.tensor(w / w.mean(), dtype=torch.float32)


def focal_loss(logits, target, gamma: float = 2.0, weight=None):
    logp = F.log_softmax(logits.float(), 1)
    p = logp.exp()
    term = -target * (1 - p).pow(gamma) * logp
    if weight is not None:
        term = term * weight.to(term.device)
    return term.sum(1).mean()


def soft_f1_loss(logits, target, weight=None, eps: float = 1e-7):
    p = logits.float().softmax(1)
    tp = (p * target).sum(0)
    fp = (p * (1 - target)).sum(0)
    fn = ((1 - p) * target).sum(0)
    f1 = 2 * tp / (2 * tp + fp + fn + eps)
    present = target.sum(0) > 0
    w = (weight.to(f1.device) if weight is not None else torch.ones_like(f1)) * present
    return 1 - (f1 * w).sum() / w.sum().clamp_min(eps)


class Criterion:
    def __init__(self, name: str, weight=None, smoothing: float = 0.1, gamma: float = 2.0):
        if name not in LOSSES:
            raise UserError(f"unknown --loss '{name}'; use one of: {', '.join(LOSSES)}")
        self.name, self.weight, self.smoothing, self.gamma = name, weight, smoothing, gamma

    def __call__(self, logits, target):
        w = self.weight.to(logits.device) if self.weight is not None else None
        if self.name == "focal":
            return focal_loss(logits, target, self.gamma, w)
        if self.name == "f1":
            return soft_f1_loss(logits, target, w)
        ls = self.smoothing if self.name == "label-smoothing" else 0.0
        return F.cross_entropy(logits.float(), target, weight=w, label_smoothing=ls)
