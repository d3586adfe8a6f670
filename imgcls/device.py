"""--device auto|cpu|cuda[:N] -> torch.device (torch imported only when needed)."""
from __future__ import annotations

import functools
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


PRECISIONS = ("auto", "fp32", "bf16")


@functools.cache
def cpu_has_amx() -> bool:
    """The CPU multiplies bfloat16 matrices in AMX tiles (Linux /proc/cpuinfo flag amx_bf16; read without importing
    torch, so a pass the cache serves stays torch-free). Only there is a bfloat16 pass faster than float32: on an
    AVX-512 CPU without AMX the same autocast is slower (oneDNN emulates it)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


def _cuda_maybe() -> bool:
    """Whether --device auto could pick CUDA, asked without torch first: no NVIDIA device node, no CUDA."""
    import glob
    if not glob.glob("/dev/nvidia[0-9]*"):
        return False
    import torch
    return torch.cuda.is_available()


def inference_precision(precision: str, device: str = "auto") -> str:
    """fp32 | bf16 for an inference pass (clean's and split's embedding pass): `auto` is bf16 on a CPU run where
    the CPU has AMX (lite0's forward pass 0.57x the time there, a cold clean 0.86-0.91x: docs/BENCHMARKS.md,
    bench/embed_precision.py), fp32 elsewhere (CUDA: not measured here). predict keeps fp32 on the CPU: bf16
    saved it 0.7 s of 9.3 s and moved the hidden test's macro-F1 by 0.005."""
    if precision != "auto":
        return precision
    spec = (device or "auto").strip().lower()
    if not cpu_has_amx() or spec.startswith("cuda") or (spec == "auto" and _cuda_maybe()):
        return "fp32"
    return "bf16"


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


@functools.cache
def reuse_freed_memory() -> bool:
    """Under glibc, have malloc serve blocks up to 32 MiB from its heap and keep freed memory for reuse (mallopt),
    instead of mapping fresh pages from the kernel, which it then zeroes, for every large tensor. PyTorch's CPU
    tuning guide swaps in a caching allocator (jemalloc, tcmalloc) for this; glibc's own knobs need nothing
    installed. On the 2-core machine (docs/BENCHMARKS.md, bench/cpu_allocator.py): kernel time of a lite0 training
    run 9.6 s -> 1.9 s, wall 0.94x; clean's embedding pass 0.77x, predict 0.88x; peak RSS 12-16% higher. Once per
    process (resolve_device calls it: every step that runs a model); IMGCLS_REUSE_FREED_MEMORY=0 turns it off.
    Returns whether the settings are in place."""
    import os
    if os.environ.get("IMGCLS_REUSE_FREED_MEMORY", "1") == "0":
        return False
    libc = _glibc()
    return libc is not None and all(libc.mallopt(k, v) == 1 for k, v in (
        (_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 256 << 20)))


def _glibc():
    import platform
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    import ctypes
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def resolve_device(spec: str = "auto"):
    import torch
    reuse_freed_memory()
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


def check_device_present(spec: str = "auto") -> None:
    """A --device naming CUDA (`cuda`, `cuda:N`) that this machine does not have, refused in one line (resolve_device's)
    before a step reads its data, not after minutes of it; auto and cpu always resolve, and are checked without
    importing torch."""
    if (spec or "auto").strip().lower().startswith("cuda"):
        resolve_device(spec)


def quiet_cuda_home_note() -> None:
    """Import torch.utils.cpp_extension with its logger raised to ERROR: torch.compile's CPU code generation imports
    it, and on a machine with a CUDA toolkit and no CUDA device its import logs 'No CUDA runtime is found, using
    CUDA_HOME=...' (once per process) in the middle of a CPU run's output, about nothing the run asked for."""
    import importlib
    import logging
    import sys
    if "torch.utils.cpp_extension" in sys.modules:
        return
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        importlib.import_module("torch.utils.cpp_extension")
    finally:
        log.setLevel(level)


def device_name(dev) -> str:
    """What a resolved torch.device is called in a step's outputs: 'cpu', 'cuda:0' (a bare 'cuda' is the current
    CUDA device, named with its index), never the 'auto' that chose it."""
    if dev.type == "cuda" and dev.index is None:
        import torch
        return f"cuda:{torch.cuda.current_device()}"
    return str(dev)


def inference_layout(model, device, probe_size: int = 64):
    """`model` in eval mode on `device` in channels_last layout, batch norms folded into their convolutions
    (fold_batchnorm), for inference (clean's embedding pass, predict, export): on this AVX-512 CPU channels_last
    embeds a 64 x 160 px lite0 batch in 0.60x the time of the default layout, and folding takes it to ~0.7x of that
    (docs/BENCHMARKS.md, bench/inference_layout.py); train has the layout choice as --channels-last. Feed it batches
    through `nhwc`. `probe_size`: the side of the random batch fold_batchnorm checks the folded model on (the size
    the model will see)."""
    import torch
    return fold_batchnorm(model.eval().to(device, memory_format=torch.channels_last), probe_size, in_place=True)


def _tensors(out) -> list:
    import torch
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for o in out for t in _tensors(o)] if isinstance(out, (list, tuple)) else []


def fold_batchnorm(model, probe_size: int = 64, in_place: bool = False):
    """A copy of eval-mode `model` in which each BatchNorm2d fed by a convolution is folded into that convolution's
    weights and bias (torch's fuse_conv_bn_weights), for inference only; `model` itself when nothing folds or when the
    copy's outputs on a random batch differ from `model`'s. `in_place`: `model` is folded itself, not a copy (and
    put back as it was when the outputs differ): inference_layout's model is its caller's to change, and the deep
    copy (~40 ms for a small timm model, every predict's and embedding pass's load) bought nothing there. Pairs are
    found by one forward pass with hooks (a batch norm whose input is the very tensor a convolution returned, each
    run once) because torch.fx's fuse cannot trace timm's 'same'-padding convolutions and matches exact BatchNorm2d
    types only. BatchNorm2d becomes Identity, timm's
    BatchNormAct2d its dropout + activation; other norm types are left as they are."""
    import copy
    from collections import Counter

    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_weights
    try:
        from timm.layers import BatchNormAct2d
    except ImportError:                     # timm is a dependency; a model built without it has no such layers
        BatchNormAct2d = None
    kinds = tuple(k for k in (nn.BatchNorm2d, BatchNormAct2d) if k is not None)

    def foldable_bn(m) -> bool:
        return type(m) in kinds and not m.training and m.track_running_stats and m.running_mean is not None

    if model.training or "forward" in vars(model) or not any(foldable_bn(m) for m in model.modules()):
        return model            # (a forward replaced on the instance would run the original model's layers in a copy)
    names: dict[int, list[str]] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), []).append(name)
    calls: dict[int, int] = {}
    produced: dict[int, tuple] = {}         # id(conv output) -> (output, conv): outputs kept alive, ids not reused
    pairs: list[tuple] = []

    def hook(m, inp, out):
        calls[id(m)] = calls.get(id(m), 0) + 1
        if isinstance(m, nn.Conv2d):
            produced[id(out)] = (out, m)
        elif inp and id(inp[0]) in produced and produced[id(inp[0])][0] is inp[0]:
            pairs.append((produced[id(inp[0])][1], m))

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if (isinstance(m, nn.Conv2d) or foldable_bn(m)) and len(names[id(m)]) == 1]
    p = next(model.parameters())
    x = torch.randn(2, 3, probe_size, probe_size, generator=torch.Generator().manual_seed(0)).to(p.device, p.dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    try:
        with torch.no_grad():
            ref = [t.float().clone() for t in _tensors(model(x))]
    except RuntimeError:                    # the model does not take this input size: fold nothing
        return model
    finally:
        for h in hooks:
            h.remove()
    if not all(bool(torch.isfinite(r).all()) for r in ref):
        return model        # NaN / inf outputs (finite weights that overflow): no comparison could prove a fold
    feeds = Counter(id(c) for c, _ in pairs)             # a convolution feeding two norms folds into neither
    pairs = [(c, b) for c, b in pairs if calls[id(c)] == 1 and calls[id(b)] == 1 and feeds[id(c)] == 1]
    produced.clear()
    if not pairs:
        return model
    folded = model if in_place else copy.deepcopy(model)
    undo = []                               # (conv, its weight, its bias, the norm's parent, name, the norm)
    with torch.no_grad():
        for conv, bn in pairs:
            fconv = folded.get_submodule(names[id(conv)][0])
            w, b = fuse_conv_bn_weights(fconv.weight, fconv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight,
                                        bn.bias)
            bn_name = names[id(bn)][0]
            parent, _, attr = bn_name.rpartition(".")
            fbn, holder = folded.get_submodule(bn_name), folded.get_submodule(parent) if parent else folded
            undo.append((fconv, fconv.weight, fconv.bias, holder, attr, fbn))
            fconv.weight, fconv.bias = w, b
            rest = nn.Identity() if type(bn) is nn.BatchNorm2d else nn.Sequential(fbn.drop, fbn.act)
            setattr(holder, attr, rest)
        folded = folded.to(memory_format=torch.channels_last)
        got = [t.float() for t in _tensors(folded(x))]
    same = len(got) == len(ref) and all(
        g.shape == r.shape and torch.allclose(g, r, rtol=1e-3, atol=1e-4 * (1 + float(r.abs().max())))
        for g, r in zip(got, ref))
    if not same and in_place:
        for fconv, w, b, holder, attr, fbn in reversed(undo):
            fconv.weight, fconv.bias = w, b
            setattr(holder, attr, fbn)
    return folded if same else model


def nhwc(x):
    """A 4-D batch on its way into an `inference_layout` model, in the layout the model's weights are in."""
    import torch
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
