"""Image embeddings from a timm backbone (offline lite0 weights by default), batched and cached by content hash.

clean (near duplicates, out-of-domain, undersampling) and split's leakage check share one pass through the cache:
vectors are stored per (model, image size) keyed by the file's sha256.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from imgcls import manifest as mf
from imgcls.console import progress_bar
from imgcls.io import ImageReadError, load_rgb

DEFAULT_EMBEDDER = "tf_efficientnet_lite0"
DEFAULT_EMBED_SIZE = 160


def default_cache_dir() -> Path:
    return Path(os.environ.get("IMGCLS_CACHE", Path.home() / ".cache" / "imgcls")) / "embeddings"


class _Images:
    """Dataset of (index, CHW float tensor) for the rows to embed; unreadable images give None."""

    def __init__(self, paths, size, mean, std):
        self.paths, self.size = paths, size
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import torch
        from PIL import Image
        try:
            im = load_rgb(self.paths[i], draft=(self.size, self.size)).resize((self.size, self.size),
                                                                               Image.Resampling.BILINEAR)
        except ImageReadError:
            return i, torch.zeros(3, self.size, self.size), False
        arr = (np.asarray(im, np.float32).transpose(2, 0, 1) / 255.0 - self.mean) / self.std
        return i, torch.from_numpy(arr), True


def _cache_file(cache_dir: Path, model: str, size: int) -> Path:
    return cache_dir / f"{model}_{size}.npz"


def _load_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        with np.load(path) as z:
            return dict(zip(z["keys"].tolist(), z["vectors"]))
    except Exception:  # a damaged cache is rebuilt, never trusted
        return {}


def _save_cache(path: Path, cache: dict[str, np.ndarray]) -> None:
    from imgcls.fsutil import atomic_path
    if not cache:
        return
    keys = np.array(list(cache.keys()))
    vecs = np.stack(list(cache.values())).astype(np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, vectors=vecs)


def embed_manifest(df: pd.DataFrame, model: str = DEFAULT_EMBEDDER, weights: str | None = None,
                   pretrained: bool = True, img_size: int | None = None, batch_size: int = 64,
                   device: str = "auto", cache_dir: str | os.PathLike | None = None, workers: int = 0) -> np.ndarray:
    """(len(df), d) float32 L2-normalised embeddings; rows with an `error` (or undecodable) are all-zero."""
    import torch
    from imgcls.device import resolve_device
    from imgcls.weights import create_model, data_config

    size = int(img_size or DEFAULT_EMBED_SIZE)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    cpath = _cache_file(cache_dir, model if weights is None else f"{model}-{Path(weights).stem}", size)
    cache = _load_cache(cpath)
    n = len(df)
    errors = df["error"].fillna("").astype(str).to_numpy() if "error" in df.columns else np.array([""] * n)
    shas = df["sha256"].fillna("").astype(str).to_numpy() if "sha256" in df.columns else np.array([""] * n)
    todo = [i for i in range(n) if errors[i] == "" and (not shas[i] or shas[i] not in cache)]
    vectors: dict[int, np.ndarray] = {}
    if todo:
        dev = resolve_device(device)
        net = create_model(model, num_classes=0, pretrained=pretrained and weights is None, weights=weights)
        net = net.eval().to(dev)
        cfg = data_config(model, net)
        paths = [str(p) for p in mf.image_paths(df.iloc[todo])]
        loader = torch.utils.data.DataLoader(_Images(paths, size, cfg["mean"], cfg["std"]), batch_size=batch_size,
                                             num_workers=workers, shuffle=False)
        with torch.inference_mode(), progress_bar(f"embedding ({model}, {size}px)", len(paths)) as advance:
            for idx, x, ok in loader:
                feats = net(x.to(dev, non_blocking=True)).float()
                feats = torch.nn.functional.normalize(feats, dim=1).cpu().numpy()
                for j, f, good in zip(idx.tolist(), feats, ok.tolist()):
                    if good:
                        vectors[todo[j]] = f
                advance(len(idx))
        for i, v in vectors.items():
            if shas[i]:
                cache[shas[i]] = v
        _save_cache(cpath, cache)
    dim = next(iter(vectors.values())).shape[0] if vectors else (next(iter(cache.values())).shape[0] if cache else 0)
    out = np.zeros((n, dim), np.float32)
    for i in range(n):
        if i in vectors:
            out[i] = vectors[i]
        elif errors[i] == "" and shas[i] in cache:
            out[i] = cache[shas[i]]
    return out
