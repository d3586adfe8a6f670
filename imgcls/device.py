"""--device auto|cpu|cuda[:N] -> torch.device (torch imported only when needed)."""
from __future__ import annotations

from imgcls.errors import UserError


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
