"""--device auto|cpu|cuda[:N] -> torch.device (torch imported only when needed)."""
from __future__ import annotations

import re

from imgcls.errors import UserError
from imgcls.options import option

_SPELLING = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_spelling(spec: str) -> None:
    """auto | cpu | cuda | cuda:N, checked before any work (whether CUDA is there is resolve_device's question)."""
    if not isinstance(spec, str) or not _SPELLING.fullmatch(spec.strip().lower()):
        raise UserError(f"unknown --device '{spec}'; use auto, cpu, cuda or cuda:N")


def device_option(panel: str = "Runtime"):
    """--device, declared once for every step that runs a model."""
    return option("auto", panel=panel, validator=check_device_spelling,
                  help="Where models run: auto | cpu | cuda | cuda:N.")


def resolve_device(spec: str = "auto"):
    import torch
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {spec} asked for CUDA but no CUDA device is visible; use --device cpu or auto")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    raise UserError(f"unknown --device '{spec}'; use auto, cpu, cuda or cuda:N")


def inference_layout(model, device):
    """`model` in eval mode on `device` in channels_last layout, for inference (clean's embedding pass, predict):
    on this AVX-512 CPU tf_efficientnet_lite0 embeds a 64 x 160 px batch in 0.60x the time of the default layout
    (docs/BENCHMARKS.md, bench/inference_layout.py); train has the same choice as --channels-last. Feed it batches
    through `nhwc`."""
    import torch
    return model.eval().to(device, memory_format=torch.channels_last)


def nhwc(x):
    """A 4-D batch on its way into an `inference_layout` model, in the layout the model's weights are in."""
    import torch
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
