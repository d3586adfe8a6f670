"""Image embeddings from a timm backbone (offline lite0 weights by default), batched and cached by content hash.

clean (near duplicates, out-of-domain, undersampling) and split's leakage check share one pass through the cache:
vectors are stored per (model, image size) keyed by the file's sha256.

Resumable: while a pass runs, every SHARD_IMAGES embedded images are written as a shard (both kinds of vector, keyed
by sha256) under `<model>_<size>.parts/` beside the cache; a pass that ends merges its shards and any earlier ones
into the cache files and removes them. A pass killed half-way keeps the shards it finished, so the rerun embeds only
what is missing, and says how many vectors it reused.

Cache files and shards record the decoding their images' pixels came from (imgcls.io.DECODE_VERSION): vectors of
another decoding are reported and embedded again, never replayed.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from imgcls import manifest as mf
from imgcls.console import info, pass_label, plural, progress_bar, warn
from imgcls.fsutil import file_stamp, lock_beside, lock_file
from imgcls.io import DECODE_VERSION, DEFAULT_MAX_PIXELS, ImageReadError, load_rgb
# the embedder clean and split default to, declared once with their options (light: the command line's)
from imgcls.link_options import DEFAULT_EMBED_SIZE, DEFAULT_EMBEDDER  # noqa: F401


# images per forward pass: 32 keeps every activation of lite0 at 160 px under the 32 MiB that
# imgcls.device.reuse_freed_memory serves from the heap (with it the pass took 0.86x its time at 64, 0.77x at 32)
EMBED_BATCH = 32


def default_cache_dir() -> Path:
    return Path(os.environ.get("IMGCLS_CACHE", Path.home() / ".cache" / "imgcls")) / "embeddings"


def cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """The one folder every content-keyed cache (embeddings, photo features, thumbnail summaries, verified pairs)
    lives in: `cache_dir` (split's --cache-dir, CleanConfig.cache_dir) or $IMGCLS_CACHE/embeddings."""
    return Path(cache_dir) if cache_dir else default_cache_dir()


_SWEPT: set[str] = set()


def open_cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """cache_folder, as every content-keyed cache opens it: the temporary files a killed run left there and in its
    shard folders (*.parts) are removed first, once per folder and process. Only the caches' own names (atomic_path's
    temporary name of an .npz) untouched for fsutil.STALE_TEMP_SECONDS go: --cache-dir may be a folder of the user's."""
    from imgcls.fsutil import STALE_TEMP_SECONDS, remove_stale_temps
    folder = cache_folder(cache_dir)
    key = os.path.abspath(folder)
    if key not in _SWEPT:
        _SWEPT.add(key)
        try:
            remove_stale_temps(folder, suffix=".npz", older_than=STALE_TEMP_SECONDS)
        except OSError:             # a folder it may not list: nothing swept, the cache still opens
            pass
    return folder


def check_cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """Before the long work: the cache folder can be made and written (a file there failed after the embedding
    pass, with a traceback)."""
    from imgcls.fsutil import check_writable
    flag = ("--cache-dir" if cache_dir else
            f"IMGCLS_CACHE={os.environ['IMGCLS_CACHE']}: its" if os.environ.get("IMGCLS_CACHE") else "the cache")
    # no --cache-dir given: the folder comes from $IMGCLS_CACHE or the home folder (a home folder a service account
    # cannot write), and `give another path` named no way to give one
    another = "give another path" if cache_dir else "pass --cache-dir or set IMGCLS_CACHE to a writable folder"
    return check_writable(cache_folder(cache_dir), flag=flag, another=another)


class _Images:
    """Dataset of (index, CHW float tensor) for the rows to embed; unreadable images give None."""

    def __init__(self, paths, size, mean, std, max_pixels: int | None = DEFAULT_MAX_PIXELS):
        self.paths, self.size, self.max_pixels = paths, size, max_pixels
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import torch
        from PIL import Image
        try:
            im = load_rgb(self.paths[i], max_pixels=self.max_pixels, draft=(self.size, self.size))
            im = im.resize((self.size, self.size), Image.Resampling.BILINEAR)
        except ImageReadError:
            return i, torch.zeros(3, self.size, self.size), False
        arr = (np.asarray(im, np.float32).transpose(2, 0, 1) / 255.0 - self.mean) / self.std
        return i, torch.from_numpy(arr), True


def _weights_tag(weights: str | os.PathLike, flag: str | None) -> str:
    """The cache name of a weight file: its stem and a digest of where it is and which version it is (size, mtime),
    so two files of one name (two runs' best.pt) or a file overwritten since never share cached vectors."""
    import hashlib

    from imgcls.weights import weight_file
    path = weight_file(weights, flag)
    size, mtime = file_stamp(path)
    key = f"{path.resolve()}|{size}|{mtime}".encode()
    return f"{path.stem}-{hashlib.sha256(key).hexdigest()[:10]}"


def _cache_file(cache_dir: Path, model: str, size: int) -> Path:
    return cache_dir / f"{model}_{size}.npz"


SHARD_IMAGES = 1024     # images per resumable shard of an embedding pass


def _shard_dir(cache_dir: Path, model: str, size: int) -> Path:
    return cache_dir / f"{model}_{size}.parts"


def _save_shard(folder: Path, keys: list[str], pooled: list[np.ndarray], style: list[np.ndarray]) -> Path | None:
    """One finished shard of a pass (atomic: a shard is whole or absent)."""
    import uuid

    from imgcls.fsutil import atomic_path
    if not keys:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"shard-{uuid.uuid4().hex}.npz"
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=np.array(keys), pooled=np.stack(pooled).astype(np.float32),
                     style=np.stack(style).astype(np.float32), version=np.array(CACHE_VERSION),
                     decode=np.array(DECODE_VERSION))
    return path


def _load_shards(folder: Path) -> tuple[list[Path], dict[str, dict[str, np.ndarray]]]:
    """The shards an earlier (interrupted) pass left: their paths and {kind: {sha256: vector}}; a damaged shard is
    skipped, as is one of another decoding (decode_mismatch), and removed with the others once the pass ends."""
    out: dict[str, dict[str, np.ndarray]] = {"pooled": {}, "style": {}}
    paths = sorted(folder.glob("shard-*.npz")) if folder.is_dir() else []
    for path in list(paths):
        try:
            with np.load(path) as z:
                why = decode_mismatch(z["decode"].item() if "decode" in z.files else None)
                if why:
                    warn(f"embedding shard {path} does not fit ({why}): ignored")
                    continue
                keys = [str(k) for k in z["keys"]]
                for kind in out:
                    out[kind].update(zip(keys, z[kind]))
        except FileNotFoundError:   # a pass ending now merged it into the cache file and removed it: no shard
            paths.remove(path)
        except Exception as e:  # noqa: BLE001 - a damaged shard is re-embedded, never trusted
            warn(f"embedding shard {path} is damaged ({e}): ignored")
    return paths, out


CACHE_VERSION = 1


def decode_mismatch(decode: object) -> str:
    """Why numbers recorded as computed from pixels of decode version `decode` (None: a file written before the
    record, version 1) are not this imgcls's (imgcls.io.DECODE_VERSION), or "" when they are."""
    version = 1 if decode is None else int(decode)
    if version == DECODE_VERSION:
        return ""
    return (f"decoded by {'an older' if version < DECODE_VERSION else 'a newer'} imgcls: decode version {version}, "
            f"this one's {DECODE_VERSION}")


def load_vectors(path: Path, tag: str = "", size: int = 0, kind: str = "", what: str = "embedding cache"
                 ) -> dict[str, np.ndarray]:
    """{sha256: vector} of a cache file written for this (model, size, kind): the embeddings here, clean's photo
    features and thumbnail numbers (VectorCache); a cache of another model / size / kind, of another decoding
    (decode_mismatch), with vectors of another size than it records, or damaged, is reported and rebuilt, never
    trusted."""
    vectors, why = read_vectors(path, tag, size, kind)
    if why:
        say_stale(what, [(path, why)])
    return vectors


def say_stale(what: str, stale: list[tuple[Path, str]]) -> None:
    """One line for the cache files of a pass that do not fit (the pooled and style embeddings are rebuilt together,
    often for one reason): each file with its reason, the reason once where they share it."""
    if not stale:
        return
    files = " and ".join(str(p) for p, _ in stale)
    if len({why for _, why in stale}) == 1:
        said = f"{what}{'s' if len(stale) > 1 else ''} {files} {'do' if len(stale) > 1 else 'does'} not fit " \
               f"({stale[0][1]})"
    else:
        said = f"{what}s " + " and ".join(f"{p} ({why})" for p, why in stale) + " do not fit"
    warn(f"{said}: ignored and rebuilt")


def read_vectors(path: Path, tag: str = "", size: int = 0, kind: str = "") -> tuple[dict[str, np.ndarray], str]:
    """load_vectors' vectors and why the file does not fit ('' where it does, or is not there), unsaid."""
    if not path.is_file():
        return {}, ""
    why = ""
    try:
        with np.load(path) as z:
            keys, vectors = z["keys"], z["vectors"]
            meta = {k: z[k].item() for k in ("version", "model", "size", "kind", "dim", "decode") if k in z.files}
        if vectors.ndim != 2 or len(keys) != len(vectors):
            why = f"vectors of shape {vectors.shape} for {len(keys)} keys"
        elif meta.get("version") != CACHE_VERSION:
            why = "written by another version (no record of its model and vector size)"
        elif tag and (meta.get("model"), int(meta.get("size", -1)), meta.get("kind")) != (tag, int(size), kind):
            why = f"written for {meta.get('model')} / {meta.get('size')} px / {meta.get('kind')}"
        elif other := decode_mismatch(meta.get("decode")):
            why = other
        elif vectors.shape[1] != int(meta.get("dim", -1)):
            why = f"vector size {vectors.shape[1]}, its record says {meta.get('dim')}"
    except Exception as e:  # a damaged cache is rebuilt, never trusted
        why = f"unreadable ({type(e).__name__})"
    if why:
        return {}, why
    return dict(zip(keys.tolist(), vectors)), ""


def save_vectors(path: Path, cache: dict[str, np.ndarray], tag: str = "", size: int = 0, kind: str = "",
                 dtype: type = np.float32) -> None:
    from imgcls.fsutil import atomic_path
    if not cache:
        return
    keys = np.array(list(cache.keys()))
    vecs = np.stack(list(cache.values())).astype(dtype)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, vectors=vecs, version=np.array(CACHE_VERSION), model=np.array(tag),
                     size=np.array(int(size)), kind=np.array(kind), dim=np.array(vecs.shape[1]),
                     decode=np.array(DECODE_VERSION))


def merge_vectors(path: Path, cache: dict[str, np.ndarray], tag: str = "", size: int = 0, kind: str = "",
                  dtype: type = np.float32) -> dict[str, np.ndarray]:
    """save_vectors of `cache` merged into the file as it is now (under fsutil.lock_beside: another process may have
    written its entries since this one read it; readers take no lock, a write is atomic); returns what was written.
    The file's vectors are of this tag, size and kind (read_vectors); those of another length than `cache`'s (a file
    that does not fit) are dropped, and a key in both takes `cache`'s vector (the same numbers: the file name and
    record are the model, size, kind)."""
    if not cache:
        return cache
    with lock_beside(path):
        now, _ = read_vectors(path, tag, size, kind)
        dim = next(iter(cache.values())).shape
        if now and next(iter(now.values())).shape == dim:
            cache = {**now, **cache}
        save_vectors(path, cache, tag, size, kind, dtype)
    return cache


def drop_replaced(path: Path, replaces: str | None) -> None:
    """Remove the cache files beside `path` that match the glob `replaces` (the same numbers from other code: an
    older digest in the name) once `path` is written: no run of this code reads them, and each upgrade would
    otherwise leave one more behind; their write locks (fsutil.lock_file) go with them. Two imgcls versions
    used in turn rebuild each other's file, and two runs of the older one writing then may each keep only their own
    entries (its lock file removed under them): slower, not wrong."""
    if not replaces:
        return
    for old in path.parent.glob(replaces):
        if old.name != path.name:
            for f in (old, lock_file(old)):
                try:
                    f.unlink()
                except OSError:
                    pass


class VectorCache:
    """One {sha256: vector} file (load_vectors / save_vectors) that a per-image pass fills and a later pass over the
    same images reads instead of measuring again (clean's photo features, its thumbnail numbers). `replaces`: a
    glob of the older files this one supersedes (drop_replaced), removed once it is written."""

    def __init__(self, path: Path, tag: str, size: int, kind: str, what: str, dtype: type = np.float32,
                 replaces: str | None = None):
        self.path, self.meta, self.what, self.dtype, self.replaces = path, (tag, size, kind), what, dtype, replaces
        self.vectors = load_vectors(path, tag, size, kind, what=what)

    def lookup(self, shas: np.ndarray, rows: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows found, their vectors stacked, rows not found) of `rows` (positions into shas): a row is found when
        a vector of `dim` values is kept for its content hash."""
        found, vecs, todo = [], [], []
        for i in rows:
            v = self.vectors.get(shas[i]) if shas[i] else None
            if v is not None and v.shape == (dim,):
                found.append(i)
                vecs.append(v)
            else:
                todo.append(i)
        return (np.asarray(found, np.int64), np.stack(vecs) if vecs else np.zeros((0, dim), self.dtype),
                np.asarray(todo, np.int64))

    def add(self, new: dict[str, np.ndarray], redo: str) -> None:
        """Keep `new` and write the file; one that cannot be written is said (`redo`: what the next run does
        again) and the run goes on with its own numbers."""
        if not new:
            return
        try:        # with what another run (sharing the cache folder) wrote since this one read the file
            self.vectors = merge_vectors(self.path, {**self.vectors, **new}, *self.meta, dtype=self.dtype)
        except OSError as e:
            from imgcls import console
            console.warn(f"{self.what} {self.path} not written ({e.strerror or e}): the next run {redo}")
            self.vectors = {**self.vectors, **new}
            return
        drop_replaced(self.path, self.replaces)


# Texture ("style") statistics: per-channel mean and std of one intermediate feature map. Drawings and photographs
# differ in texture far more than in content, and a mid-level map (stride 16) sees texture without the semantics of
# the pooled embedding: self-trained on it, clean's `photo-style` detector separates photos from clip art at F1 0.97
# where the pooled embedding reaches 0.66 (docs/BENCHMARKS.md).
STYLE_LAYERS = {"tf_efficientnet_lite0": "blocks.3"}


def style_layer(model_name: str, net) -> str:
    """The module whose output gives the style statistics: a measured choice for lite0, else timm's stride-16 stage."""
    if model_name in STYLE_LAYERS:
        return STYLE_LAYERS[model_name]
    info = getattr(net, "feature_info", None)
    entries = list(info) if info is not None else []
    for e in entries:
        if isinstance(e, dict) and e.get("reduction") == 16 and e.get("module"):
            return e["module"]
    if entries and isinstance(entries[-1], dict) and entries[-1].get("module"):
        return entries[-1]["module"]
    from imgcls.errors import UserError
    raise UserError(f"--embedder {model_name} exposes no feature stages for style statistics; "
                    f"use --ood-method photo-embedding or embedding-knn")


def embed_manifest(df: pd.DataFrame, model: str = DEFAULT_EMBEDDER, weights: str | None = None,
                   pretrained: bool = True, img_size: int | None = None, batch_size: int = EMBED_BATCH,
                   device: str = "auto", cache_dir: str | os.PathLike | None = None, workers: int = 1,
                   weights_flag: str | None = "--weights", model_flag: str = "--model",
                   precision: str = "auto", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(len(df), d) float32 L2-normalised embeddings; rows with an `error` (or undecodable) are all-zero.
    `workers`: processes that decode and resize the images while the model runs (as --workers counts them: 1 =
    decoding in this process, between batches). `max_pixels`: the decoding bound (--max-pixels); a row the scan
    read has its pixels within it."""
    return _embed(df, "pooled", model, weights, pretrained, img_size, batch_size, device, cache_dir, workers,
                  weights_flag, model_flag, precision, max_pixels)


def style_manifest(df: pd.DataFrame, model: str = DEFAULT_EMBEDDER, weights: str | None = None,
                   pretrained: bool = True, img_size: int | None = None, batch_size: int = EMBED_BATCH,
                   device: str = "auto", cache_dir: str | os.PathLike | None = None, workers: int = 1,
                   weights_flag: str | None = "--weights", model_flag: str = "--model",
                   precision: str = "auto", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(len(df), 2c) per-channel mean and std of the style layer's feature map (see STYLE_LAYERS); computed in the
    same pass (and cached beside) the pooled embeddings. Unreadable rows are all-zero."""
    return _embed(df, "style", model, weights, pretrained, img_size, batch_size, device, cache_dir, workers,
                  weights_flag, model_flag, precision, max_pixels)


def import_libraries() -> None:
    """Import what an embedding pass builds its model with (torch, timm and torchvision: ~3 s on a 2-core machine)
    now, e.g. while worker processes decode images; a pass imports them itself when it first needs them."""
    import timm  # noqa: F401  (imports torch and torchvision)


def _embed(df, kind, model, weights, pretrained, img_size, batch_size, device, cache_dir, workers,
           weights_flag="--weights", model_flag="--model", precision="auto",
           max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    from imgcls.device import inference_precision
    size = int(img_size or DEFAULT_EMBED_SIZE)
    cache_dir = open_cache_folder(cache_dir)
    bf16 = inference_precision(precision, device) == "bf16"
    # one cache file per precision: a bf16 vector differs from the fp32 one (cosine ~0.999), and a run's result
    # must not depend on which pass filled the cache
    tag = (model if weights is None else f"{model}-{_weights_tag(weights, weights_flag)}") + ("-bf16" if bf16 else "")
    cpaths = {"pooled": _cache_file(cache_dir, tag, size), "style": _cache_file(cache_dir, tag + "-style", size)}
    # the shards first, then the file: a pass ending meanwhile merges its shards into the file before it removes
    # them, so what a shard gone since held is in the file (read the other way, the pass had neither)
    parts = _shard_dir(cache_dir, tag, size)
    shard_paths, shards = _load_shards(parts)
    # a cache file that does not fit is said once the pass knows whether the other kind's (rebuilt with it) fits
    cache, why = read_vectors(cpaths[kind], tag, size, kind)
    stale = [(cpaths[kind], why)] if why else []
    n = len(df)
    errors = mf.text_values(df["error"]).to_numpy() if "error" in df.columns else np.array([""] * n)
    shas = mf.content_hashes(df)
    readable = [i for i in range(n) if errors[i] == ""]
    resumed = sum(1 for i in readable if shas[i] and shas[i] not in cache and shas[i] in shards[kind])
    if shard_paths:
        cache = {**cache, **shards[kind]}
    missing = [i for i in readable if not shas[i] or shas[i] not in cache]
    # byte-identical files (same sha256) are embedded once: `same[i]` is the row whose vectors row i takes
    todo, first, same = [], {}, {}
    for i in missing:
        if shas[i] and shas[i] in first:
            same[i] = first[shas[i]]
        else:
            if shas[i]:
                first[shas[i]] = i
            todo.append(i)
    if readable and not missing and not resumed:     # a full hit: named in the step's one line (cache_reuse)
        from imgcls.console import reused
        kept = len({shas[i] for i in readable})
        reused(f"{'style ' if kind == 'style' else ''}embeddings ({model}, {size}px) of {plural(kept, 'image')}",
               key=str(cpaths[kind]))
    if resumed or 0 < len(missing) < len(readable):     # a partial hit is worth a line of its own
        # counted as the progress bar counts (pass_label): its total is `todo`, the copies among the rest take theirs
        info(f"embedding ({model}, {size}px): {len(readable) - len(missing)} of {len(readable)} images reused from "
             f"the cache{f' ({resumed} from an interrupted pass)' if resumed else ''}, {len(todo)} to embed"
             + (f" ({plural(len(same), 'byte-identical copy', 'byte-identical copies')} of them take their vectors)"
                if same else ""))
    vectors: dict[str, dict[int, np.ndarray]] = {"pooled": {}, "style": {}}
    from imgcls.train.dist import current
    d = current()          # under torchrun each rank embeds its share and writes it as shards; all read them all
    mine = d.mine(todo)
    if todo or shard_paths:
        caches = {kind: cache}
        for k in (k for k in cpaths if k != kind):
            other, why = read_vectors(cpaths[k], tag, size, k)
            stale += [(cpaths[k], why)] if why else []
            caches[k] = {**other, **shards[k]}
    say_stale("embedding cache", stale)
    if todo:         # torch and timm are imported only here: a pass served by the cache needs neither (~2.5 s)
        import torch

        from imgcls.device import inference_layout, nhwc, resolve_device
        from imgcls.weights import create_model, data_config
        dev = resolve_device(device)
        net = create_model(model, num_classes=0, pretrained=pretrained and weights is None, weights=weights,
                           weights_flag=weights_flag, model_flag=model_flag)
        net = inference_layout(net, dev, size)
        grabbed = {}
        hook = net.get_submodule(style_layer(model, net)).register_forward_hook(
            lambda _m, _i, out: grabbed.__setitem__("map", out))
        cfg = data_config(model, net)
        paths = [str(p) for p in mf.image_paths(df.iloc[mine])]
        loader = torch.utils.data.DataLoader(_Images(paths, size, cfg["mean"], cfg["std"], max_pixels),
                                             batch_size=batch_size,
                                             num_workers=workers if workers > 1 else 0, shuffle=False,
                                             pin_memory=dev.type == "cuda")
        pending: tuple[list, list, list] = ([], [], [])
        if bf16 and precision == "auto":
            info("embedding in bfloat16 (this CPU has AMX, where it is faster; --embed-precision fp32 for float32)")
        distinct = len({shas[i] for i in readable if shas[i]}) + sum(1 for i in readable if not shas[i])
        label = pass_label(f"embedding ({model}, {size}px{', bf16' if bf16 else ''})", len(readable), distinct,
                           len(todo))
        with torch.inference_mode(), progress_bar(label, len(paths)) as advance:
            for idx, x, ok in loader:
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                    feats = net(nhwc(x.to(dev, non_blocking=True))).float()
                feats = torch.nn.functional.normalize(feats, dim=1).cpu().numpy()
                fmap = grabbed["map"].float()
                style = torch.cat([fmap.mean((2, 3)), fmap.std((2, 3))], 1).cpu().numpy()
                for j, f, st, good in zip(idx.tolist(), feats, style, ok.tolist()):
                    if good:
                        vectors["pooled"][mine[j]] = f
                        vectors["style"][mine[j]] = st
                        if shas[mine[j]]:
                            for lst, v in zip(pending, (shas[mine[j]], f, st)):
                                lst.append(v)
                if len(pending[0]) >= SHARD_IMAGES:
                    shard_paths.append(_save_shard(parts, *pending))
                    pending = ([], [], [])
                advance(len(idx))
        hook.remove()
        if d.on:
            shard_paths.append(_save_shard(parts, *pending))
            d.barrier()                                  # every rank's shards are written
            shard_paths, shards = _load_shards(parts)
            for k in vectors:
                vectors[k].update({i: shards[k][shas[i]] for i in todo if shas[i] in shards[k]})
            d.barrier()                                  # ... and read, before rank 0 merges and removes them
        for k in vectors:
            vectors[k].update({i: vectors[k][j] for i, j in same.items() if j in vectors[k]})
    if (todo or shard_paths) and d.main:
        from imgcls.console import made
        for path in cpaths.values():          # both kinds filled by this pass: not reused by the next one
            made(str(path))
        again, stale = False, []
        for k in caches:
            fresh = next(iter(vectors[k].values()), None)
            old_dim = next(iter(caches[k].values())).shape[0] if caches[k] else None
            if fresh is not None and old_dim is not None and old_dim != fresh.shape[0]:
                stale.append((cpaths[k], f"vectors of size {old_dim}, the model gives {fresh.shape[0]}"))
                caches[k].clear()
                again = again or k == kind
        say_stale("embedding cache", stale)
        for k in caches:
            for i, v in vectors[k].items():
                if shas[i]:
                    caches[k][shas[i]] = v
            merge_vectors(cpaths[k], caches[k], tag, size, k)     # with what another pass wrote since
        for path in shard_paths:         # merged into the cache files: the pass is whole
            if path is not None:
                path.unlink(missing_ok=True)
        try:
            parts.rmdir()       # only where empty: another pass's shards (or one it is writing now) keep it
        except OSError:
            pass
        if again and not d.on:   # rows taken from the bad cache are embedded now (the saved cache holds good vectors)
            return _embed(df, kind, model, weights, pretrained, img_size, batch_size, device, cache_dir, workers,
                          weights_flag, model_flag, precision, max_pixels)
    if d.on and (todo or shard_paths):
        d.barrier()                                      # rank 0's cache files are whole before anyone reads them
    got = vectors[kind]
    dim = next(iter(got.values())).shape[0] if got else (next(iter(cache.values())).shape[0] if cache else 0)
    out = np.zeros((n, dim), np.float32)
    for i in range(n):
        if i in got:
            out[i] = got[i]
        elif errors[i] == "" and shas[i] in cache:
            out[i] = cache[shas[i]]
    return out
