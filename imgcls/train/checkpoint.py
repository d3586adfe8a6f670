"""Run checkpoints: `best.pt` / `last.pt` = torch.save({"state_dict", "meta", ...}) with tensors and plain
containers only, so `torch.load(path, weights_only=True)` reads them (no pickled classes).

`meta` describes how to rebuild and use the network: model (timm name), classes (final labels in index order),
heads ([{"name", "classes"}]; one head "label" for single), decode ("single" | "profile" | "product"), branch,
img_size, mean, std, interpolation, resize_mode, drop_rate: `imgcls.model_meta.ModelMeta`, written as its plain
dict and checked when read (`read_meta`, `load_model`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from imgcls.errors import UserError
from imgcls.fsutil import did_you_mean, file_stamp
from imgcls.run_names import BEST_PT, LAST_PT

if TYPE_CHECKING:
    from imgcls.model_meta import ModelMeta


def save_checkpoint(path: str | os.PathLike, state_dict: dict, meta, **extra) -> Path:
    """`meta`: a ModelMeta (or its dict, checked)."""
    from imgcls.fsutil import atomic_path
    from imgcls.model_meta import ModelMeta
    obj = {"state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
           "meta": ModelMeta.coerce(meta).to_dict(), **extra}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def read_checkpoint(path: str | os.PathLike, mmap: bool = False) -> dict:
    """A checkpoint, checked (`mmap`: its tensors mapped, not read: to look at its metadata cheaply)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist{did_you_mean(path)}; give a run folder written by "
                        f"`imgcls train`")
    from imgcls.model_meta import ModelMeta
    from imgcls.weights import torch_load_safely
    obj = torch_load_safely(path, "an imgcls checkpoint", f"give a {BEST_PT} / {LAST_PT} written by imgcls train",
                            mmap=mmap, damaged_fix="copy it again from where it was written, or train the run again "
                                                   "(an unfinished run: imgcls train --resume RUN)")
    if not isinstance(obj, dict) or "state_dict" not in obj or "meta" not in obj:
        raise UserError(f"{path} is not an imgcls checkpoint (no state_dict / meta); was it written by imgcls train?")
    # range-checked before anything is built from it (an img_size of 30000 would allocate GBs per image)
    obj["meta"] = ModelMeta.from_dict(obj["meta"], source=str(path)).to_dict()
    return obj


def saved_epoch(path: str | os.PathLike) -> int | None:
    """The epoch a checkpoint was saved at (its `epoch`; its tensors mapped, not read); None where it records none
    or is no readable imgcls checkpoint (a best.pt being replaced is renamed into place, never half written)."""
    try:
        epoch = read_checkpoint(path, mmap=True).get("epoch")
    except (UserError, OSError):
        return None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


def saved_finished(path: str | os.PathLike) -> bool | None:
    """Whether the run a last.pt was saved by had finished (its train_state's `finished`: the last epoch, or the
    early stop; its tensors mapped, not read); None where it records none or cannot be read. Its meta is not
    checked (read_checkpoint): a meta that does not check changes nothing of whether the run finished."""
    from imgcls.weights import torch_load_safely
    try:
        obj = torch_load_safely(path, "an imgcls checkpoint", "", mmap=True)
    except (UserError, OSError):
        return None
    state = obj.get("train_state") if isinstance(obj, dict) else None
    return bool(state.get("finished")) if isinstance(state, dict) else None


_METAS: dict = {}      # (file, size, mtime) -> ModelMeta: predict's checks and its model loading read one file once


def read_meta(path: str | os.PathLike):
    """A checkpoint's ModelMeta (checked); read once per file version."""
    from imgcls.model_meta import ModelMeta
    p = Path(path)
    key = None
    if p.is_file():
        key = (str(p.resolve()), *file_stamp(p))
        if key in _METAS:
            return _METAS[key]
    meta = ModelMeta.from_dict(read_checkpoint(path, mmap=True)["meta"], source=str(path))
    if key is not None:
        _METAS[key] = meta
    return meta


def load_init(model: torch.nn.Module, meta, path: str | os.PathLike) -> list[str]:
    """Load a checkpoint's backbone into `model` (built from `meta`), single or multi-head on either side; the
    checkpoint's head(s) only when they are the same as `meta`'s (same heads, classes and branch), else the new
    heads keep their initialisation. Returns the names of the tensors left as initialised (the new heads)."""
    from imgcls.model_meta import ModelMeta
    from imgcls.train.heads import MultiHeadNet, head_parameters
    meta = ModelMeta.coerce(meta)
    obj = read_checkpoint(path)
    src = ModelMeta.from_dict(obj["meta"], source=str(path))
    state = obj["state_dict"]
    check_finite(state, f"--init-from {path}", "start from another run, or train it again with a lower --lr")
    same_heads = (src.heads, src.decode, src.branch) == (meta.heads, meta.decode, meta.branch)
    own = model.state_dict()
    head_ids = {id(p) for p in head_parameters(model)}
    head_keys = {k for k, p in model.named_parameters() if id(p) in head_ids}
    if isinstance(model, MultiHeadNet):
        head_keys |= {k for k in own if k.startswith("heads.")}
    else:
        prefixes = tuple(k.rsplit(".", 1)[0] + "." for k in head_keys)
        head_keys |= {k for k in own if k.startswith(prefixes)}
    src_backbone = {k.removeprefix("backbone."): v for k, v in state.items()
                    if not src.multi or k.startswith("backbone.")}
    keep = {}
    for k in own:
        if k in head_keys:
            if same_heads and k in state:
                keep[k] = state[k]
            continue
        name = k.removeprefix("backbone.") if isinstance(model, MultiHeadNet) else k
        v = src_backbone.get(name)
        if v is None or v.shape != own[k].shape:
            raise UserError(f"--init-from {path}: its backbone does not fit this model ({name} "
                            f"{'missing' if v is None else 'of another shape'}); was it trained with another --model "
                            f"or --drop-rate?")
        keep[k] = v
    model.load_state_dict(keep, strict=False)
    return sorted(set(own) - set(keep))


@dataclass
class LoadedModel:
    model: torch.nn.Module
    meta: "ModelMeta"
    device: torch.device

    def _forward(self, x: torch.Tensor):
        from imgcls.device import nhwc
        return self.model(nhwc(x.to(self.device)))

    @property
    def classes(self) -> list[str]:
        return list(self.meta.classes)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Final-class probabilities [N, len(classes)] (multi-branch heads decoded, e.g. 18 = product of heads)."""
        from imgcls.train.heads import decode_proba
        return decode_proba(self._forward(x), self.meta)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Single head: the raw logits; multi-branch: log of the decoded probabilities."""
        from imgcls.train.heads import decode_proba
        out = self._forward(x)
        if isinstance(out, torch.Tensor):
            return out.float()
        return decode_proba(out, self.meta).clamp_min(1e-12).log()     # the heads' outputs, one forward pass


def check_finite(state_dict: dict, named: str, fix: str | Callable[[], str]) -> None:
    """Refuse a checkpoint (`named`: how its line names it) whose weights hold NaN or infinity, a diverged run's (its
    loss NaN from epoch 1, its best.pt is that epoch's): predicted with, its probabilities would be NaN (argmax's
    first class for every image); started from (--init-from), a new run would diverge at its first step. `fix`: the
    refusal's fix, or what says it (called only for a refusal: a k-fold fold's reads its set's config.yaml)."""
    if not all(torch.isfinite(t).all() for t in state_dict.values() if torch.is_tensor(t) and t.is_floating_point()):
        raise UserError(f"{named} holds NaN or infinite weights: the run's loss diverged; "
                        f"{fix() if callable(fix) else fix}")


def load_model(ckpt_path: str | os.PathLike, device: str | torch.device = "cpu",
               diverged: str | Callable[[], str] = "train it again with a lower --lr") -> LoadedModel:
    """Rebuild the network of a checkpoint (no download: the weights are in the file) in eval mode, in the
    channels_last layout of imgcls.device.inference_layout (its inputs are converted by LoadedModel). `diverged`:
    the fix its refusal names where the weights are NaN, or what says it (check_finite: rundir.diverged_fix, which knows
    a k-fold set's folds: this module does not import rundir)."""
    from imgcls.console import status
    from imgcls.device import inference_layout
    from imgcls.model_meta import ModelMeta
    from imgcls.train.heads import build_model
    with status(f"loading the model of {ckpt_path}"):     # timm's import and the build: seconds, silent
        obj = read_checkpoint(ckpt_path)
        meta = ModelMeta.from_dict(obj["meta"], source=str(ckpt_path))
        model = build_model(meta, pretrained=False)
        model.load_state_dict(obj["state_dict"])
        check_finite(obj["state_dict"], str(ckpt_path), diverged)
        device = torch.device(device)
        return LoadedModel(inference_layout(model, device, meta.img_size), meta, device)
