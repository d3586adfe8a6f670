"""Model = timm backbone + one softmax head (single) or one head per label column (multi-branch).

`--heads single`: the timm model with `num_classes` = number of labels (its own classifier).
`--heads multi`: the backbone's pooled features feed one head per column (e.g. mask / gender / age_band):
  `--branch shallow` (seed 003's Model B): a linear layer per head on the shared features;
  `--branch deep`    (seed 003's Model C): a small MLP branch per head (Linear-BN-ReLU-Dropout-Linear).
The final label of a profile dataset is decoded from the heads with the one profile formula
(imgcls.profiles.ProfileScheme: mask*6 + gender*3 + age_band with three age bands), its probability the product of
the three heads' probabilities.
"""
from __future__ import annotations

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


def build_model(meta, pretrained: bool = False, weights: str | None = None) -> nn.Module:
    """The network described by a checkpoint's metadata (a ModelMeta, or its dict); weights: the pretrained
    backbone source, or none."""
    from imgcls.model_meta import ModelMeta
    from imgcls.weights import create_model
    meta = ModelMeta.coerce(meta)
    kw = {"drop_rate": meta.drop_rate}
    if not meta.multi:
        return create_model(meta.model, num_classes=meta.n_classes, pretrained=pretrained, weights=weights, **kw)
    backbone = create_model(meta.model, num_classes=0, pretrained=pretrained, weights=weights, **kw)
    heads = [{"name": h.name, "classes": list(h.classes)} for h in meta.heads]
    return MultiHeadNet(backbone, heads, meta.branch, meta.drop_rate)


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters trained with --freeze-backbone (the classifier / heads)."""
    if isinstance(model, MultiHeadNet):
        return list(model.heads.parameters())
    return list(model.get_classifier().parameters())


def as_list(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def decode_table(meta) -> list[tuple[int, ...]]:
    """For each final class index, the index of each head's class (rows of the product decode)."""
    from imgcls.model_meta import ModelMeta
    return ModelMeta.coerce(meta).decode_table()


def decode_proba(outputs, meta) -> torch.Tensor:
    """Final-class probabilities [N, n_classes] from the raw head outputs."""
    from imgcls.model_meta import ModelMeta
    meta = ModelMeta.coerce(meta)
    outs = as_list(outputs)
    probs = [o.float().softmax(1) for o in outs]
    if not meta.multi and len(outs) == 1:
        return probs[0]
    table = torch.tensor(meta.decode_table(), device=probs[0].device)  # [C, H]
    p = torch.ones(probs[0].shape[0], table.shape[0], device=probs[0].device)
    for h, ph in enumerate(probs):
        p = p * ph[:, table[:, h]]
    return p
