"""Model = timm backbone + one softmax head (single) or one head per label column (multi-branch).

`--heads single`: the timm model with `num_classes` = number of labels (its own classifier).
`--heads multi`: the backbone's pooled features feed one head per column (e.g. mask / gender / age_band):
  `--branch shallow` (seed 003's Model B): a linear layer per head on the shared features;
  `--branch deep`    (seed 003's Model C): a small MLP branch per head (Linear-BN-ReLU-Dropout-Linear).
The final label of a profile dataset is decoded from the heads: label = mask*6 + gender*3 + age_band, its
probability the product of the three heads' probabilities.
"""
from __future__ import annotations

import itertools

import torch
from torch import nn


class MultiHeadNet(nn.Module):
    def __init__(self, backbone: nn.Module, heads: list[dict], branch: str = "shallow", drop_rate: float = 0.0,
                 hidden: int = 256):
        super().__init__()
        self.backbone = backbone
        self.head_names = [h["name"] for h in heads]
        nf = backbone.num_features
        layers = {}
        for h in heads:
            k = len(h["classes"])
            if branch == "deep":
                layers[h["name"]] = nn.Sequential(nn.Linear(nf, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                                  nn.Dropout(drop_rate), nn.Linear(hidden, k))
            else:
                layers[h["name"]] = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(nf, k))
        self.heads = nn.ModuleDict(layers)

    def forward(self, x):
        f = self.backbone(x)
        return [self.heads[n](f) for n in self.head_names]


def build_model(meta: dict, pretrained: bool = False, weights: str | None = None) -> nn.Module:
    """The network described by a checkpoint's `meta` (weights: pretrained backbone source, or none)."""
    from imgcls.weights import create_model
    kw = {"drop_rate": float(meta.get("drop_rate", 0.0))}
    if meta["decode"] == "single" and len(meta["heads"]) == 1:
        return create_model(meta["model"], num_classes=len(meta["heads"][0]["classes"]), pretrained=pretrained,
                            weights=weights, **kw)
    backbone = create_model(meta["model"], num_classes=0, pretrained=pretrained, weights=weights, **kw)
    return MultiHeadNet(backbone, meta["heads"], meta.get("branch", "shallow"), float(meta.get("drop_rate", 0.0)))


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters trained with --freeze-backbone (the classifier / heads)."""
    if isinstance(model, MultiHeadNet):
        return list(model.heads.parameters())
    return list(model.get_classifier().parameters())


def as_list(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def decode_table(meta: dict) -> list[tuple[int, ...]]:
    """For each final class index, the index of each head's class (rows of the product decode)."""
    heads = meta["heads"]
    if meta["decode"] == "single":
        return [(i,) for i in range(len(heads[0]["classes"]))]
    if meta["decode"] == "profile18":
        # label = mask*6 + gender*3 + age_band; heads ordered mask, gender, age_band
        names = [h["name"] for h in heads]
        order = [names.index(c) for c in ("mask", "gender", "age_band")]
        sizes = [len(heads[i]["classes"]) for i in order]
        table = []
        for m, g, a in itertools.product(*(range(s) for s in sizes)):
            idx = [0] * len(heads)
            idx[order[0]], idx[order[1]], idx[order[2]] = m, g, a
            table.append(tuple(idx))
        return table
    # generic product decode: classes are the cartesian product of the heads' classes
    return list(itertools.product(*(range(len(h["classes"])) for h in heads)))


def decode_proba(outputs, meta: dict) -> torch.Tensor:
    """Final-class probabilities [N, n_classes] from the raw head outputs."""
    outs = as_list(outputs)
    probs = [o.float().softmax(1) for o in outs]
    if meta["decode"] == "single" and len(outs) == 1:
        return probs[0]
    table = torch.tensor(decode_table(meta), device=probs[0].device)  # [C, H]
    p = torch.ones(probs[0].shape[0], table.shape[0], device=probs[0].device)
    for h, ph in enumerate(probs):
        p = p * ph[:, table[:, h]]
    return p
