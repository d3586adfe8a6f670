"""Verified near-duplicate pairs kept by the two images' content hashes, beside the embedding cache: a pair verified
once (its global score and alignment, its local agreement and that check's floor: near_dup.PairRecord) is replayed,
not verified again, by a later clean of the same images (another --dup-threshold or --conflicts) and by split on
clean's output. On fmnist_lt, verification is most of a clean (docs/BENCHMARKS.md).

A pair's numbers depend on its two thumbnails alone, so they are keyed by (sha256 of the first image, of the second),
in the order verify_pairs scores them (the smaller key first, whatever the rows' order: NearDuplicates.scored_pairs;
the other order is verified anew), and per path (three channels,
or one for a greyscale set). The file name carries a digest of what the numbers come from: the verification code
(near_dup), image decoding (imgcls.io) and the libraries whose arithmetic they use (numpy, Pillow, OpenCV, SciPy);
any change starts a new file, and writing it removes the files of older digests (embed.drop_replaced). A file that
does not fit is reported and ignored, never trusted; writes are atomic. While a verification runs, what it verified
since the last save is written as a shard beside the file (`<file>.parts/`: only those pairs, so a periodic save costs
what is new, not the whole table), read with the file; the run's last save writes the whole file and removes the
shards it took in (the file names them: a shard it could not remove is never read over it).

Beside the pairs, each image's numbers the candidate search and the greyscale test read (SummaryCache), so that a
verification the pairs replay (Thumbnails) decodes only the images of the pairs it computes; and the candidate pairs of
the last few searches (CandidateCache), each under a digest of that search's whole input (the searched rows'
embeddings and block sums in order, the thresholds, the search, the code): split on clean's output, when it searches
exactly the rows clean searched, or clean again, takes the pairs instead of searching (O(n^2)) again. The same cache
keeps --dup-method embedding's cosine search (CandidateCache.scored: the pairs and their cosines).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from imgcls.clean.near_dup import THUMB, TINY, PairRecord, _thumbnail_of, block_sums, grey_rows
from imgcls.io import DEFAULT_MAX_PIXELS

CACHE_VERSION = 1
SUMS = np.uint16 if (THUMB // TINY) ** 2 * 255 < 1 << 16 else np.uint32    # near_dup.block_sums' integers
FIELDS = ("a", "b", "glob", "how", "local", "local_floor")
# while verification runs, what it verified is written at most this often (a shard of the pairs new since the last
# write): a Ctrl-C loses at most this much of it, not every pair verified so far
SAVE_SECONDS = 30.0
KEPT_SEARCHES = 4        # candidate searches kept per cache folder (clean's, split's on its output, and one more each)


def numbers_digest(code: object = PairRecord, version: int = CACHE_VERSION) -> str:
    """12 hex digits of the module that computes the numbers (`code`: an object of it; near_dup's verification by
    default), imgcls.io (the decoding) and the library versions the numbers depend on: a cache file carries it in
    its name, so numbers from other code are never replayed (this cache, clean's photo-feature cache)."""
    import hashlib
    import inspect

    import cv2
    import PIL
    import scipy

    from imgcls.io import load_rgb
    h = hashlib.sha256()
    for source in (inspect.getfile(code), inspect.getfile(load_rgb)):
        h.update(Path(source).read_bytes())
    for v in (np.__version__, PIL.__version__, cv2.__version__, scipy.__version__, str(version)):
        h.update(v.encode())
    return h.hexdigest()[:12]


class SummaryCache:
    """Each image's tiny-descriptor block sums and greyscale flag (Thumbnails, below) kept by its sha256, beside
    the pairs and under the same digest, as the sums' own integers (1.5 kB an image at 96 px): a replayed
    verification searches its candidates without decoding."""

    def __init__(self, cache_dir: str | Path | None):
        from imgcls.embed import VectorCache, open_cache_folder
        folder = open_cache_folder(cache_dir)
        self.file = VectorCache(folder / f"thumbnail_summaries_{THUMB}px_{numbers_digest()}.npz",
                                "thumbnail-summaries", THUMB, "summaries", "thumbnail-summary cache", dtype=SUMS,
                                replaces=f"thumbnail_summaries_{THUMB}px_*.npz")

    def fill(self, shas: np.ndarray, rows: np.ndarray, sums: np.ndarray, grey: np.ndarray, known: np.ndarray
             ) -> np.ndarray:
        """Fill sums / grey / known for the kept rows; returns the rows no run kept."""
        size = int(np.prod(sums.shape[1:]))
        found, vecs, todo = self.file.lookup(shas, rows, size + 1)
        sums[found], grey[found], known[found] = vecs[:, :size].reshape(-1, *sums.shape[1:]), vecs[:, size] != 0, True
        if len(found) and not len(todo):
            from imgcls.console import plural, reused
            reused(f"thumbnail numbers of {plural(len(found), 'image')}")
        return todo

    def store(self, shas: np.ndarray, rows: np.ndarray, sums: np.ndarray, grey: np.ndarray) -> None:
        """Keep the rows' numbers and write the file."""
        self.file.add({shas[i]: np.r_[sums[i].ravel(), grey[i]].astype(SUMS) for i in rows if shas[i]},
                      "decodes these images again")


class Thumbnails:
    """The verification thumbnails of df's `rows` (one per content hash), decoded when a pass asks for them (`need`),
    and the per-image numbers the candidate search and the greyscale test read (block_sums, grey_rows), taken from
    the SummaryCache where an earlier run kept them: a verification the pair cache replays decodes only the
    rows of the pairs it computes. Rows never decoded stay zero, as unreadable ones."""

    def __init__(self, df: pd.DataFrame, rows: np.ndarray, workers: int = 1, cache_dir: str | None = None,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS):
        from imgcls.manifest import content_hashes, error_texts
        n = len(df)
        self.df, self.workers, self.max_pixels = df, workers, max_pixels
        self.thumbs = np.zeros((n, THUMB, THUMB, 3), np.uint8)
        self.ok, self.tried = np.zeros(n, bool), np.zeros(n, bool)
        self.sums = np.zeros((n, TINY, TINY, 3), SUMS)
        self.grey, self.known = np.ones(n, bool), np.zeros(n, bool)   # a zero thumbnail is R = G = B
        self.shas, self.cache = content_hashes(df), SummaryCache(cache_dir)
        # what the bars say they count: `rows` (one per content hash) of the readable rows
        self.readable = int((error_texts(df) == "").sum())
        self.distinct = len(rows)
        self.missing = self.cache.fill(self.shas, np.asarray(rows, np.int64), self.sums, self.grey, self.known)

    def decoded(self, rows: np.ndarray) -> None:
        """`rows` were decoded into self.thumbs / self.ok by another pass (one that splits them by rank, or
        measures the photo features from the same decode)."""
        self.tried[rows] = True

    def need(self, rows: np.ndarray, what: str = "thumbnails") -> None:
        """Decode the `rows` not tried yet (over `workers` processes); `what`: the progress bar's label."""
        from imgcls import manifest as mf
        from imgcls.parallel import chunked_map
        rows = np.asarray(rows, np.int64)
        rows = rows[~self.tried[rows]]
        if not len(rows):
            return
        paths = mf.image_paths(self.df.iloc[rows])
        jobs = [(str(p), THUMB, self.max_pixels) for p in paths]
        for i, t in zip(rows, chunked_map(_thumbnail_of, jobs, self.workers, what), strict=True):
            if t is not None:
                self.thumbs[i], self.ok[i] = t, True
        self.tried[rows] = True

    def summarise(self) -> np.ndarray:
        """Decode the rows whose numbers no run kept, measure and keep them; returns the rows that can be verified
        (kept or decoded: readable)."""
        from imgcls.console import pass_label
        left = self.missing[~self.tried[self.missing]]        # not decoded by a pass before
        self.need(left, pass_label("thumbnails", self.readable, self.distinct, len(left)))
        new = np.flatnonzero(self.ok & ~self.known)
        if len(new):
            self.sums[new], self.grey[new], self.known[new] = block_sums(self.thumbs[new]), \
                grey_rows(self.thumbs[new]), True
            self.cache.store(self.shas, new, self.sums, self.grey)
        return self.known.copy()


class CandidateCache:
    """The candidate pairs of near_dup.candidate_pairs over the rows it searches (each row readable, one per content
    hash), kept under a digest of everything the pairs depend on: a later search with the same digest (split on
    clean's output that searches the very rows clean searched, in any row order (scored_pairs searches them in their
    content keys' order); clean again with another
    --dup-threshold or --conflicts) takes them, and any other searches as before; `scored` does the same for
    --dup-method embedding's cosine search (its pairs and cosines). The last KEPT_SEARCHES searches (either method) are
    kept, one file each, named by the code's numbers_digest and the input's (writing one removes other code's); a file
    that does not fit is said and searched anew, never trusted."""

    def __init__(self, cache_dir: str | Path | None):
        from imgcls.embed import open_cache_folder
        self.folder = open_cache_folder(cache_dir)

    @staticmethod
    def digest(emb: np.ndarray | None, sums: np.ndarray | None, candidates: float | None, ann: str,
               method: str = "verified") -> str:
        """The search's input: the --dup-method (verified: the candidate search that verification reads; embedding:
        the cosine search that is the whole definition), the rows' embeddings (float32) and, for verified, block
        sums, in order (the embeddings are the embedder's, its weights', size's and precision's numbers: any of
        them changed is another input), verified's embedding threshold, the search the --ann mode picks for these
        rows (index or exact), and the code and libraries (numbers_digest: near_dup, which holds the searches, the
        tiny-descriptor threshold and the per-image cap; and the index's module). The embedding method's floor is
        not in it: the file says the floor it was searched at (see scored)."""
        import hashlib

        import imgcls.clean.ann as ann_module
        from imgcls.clean.ann import faiss_available, use_ann
        h = hashlib.sha256()
        n = len(sums) if sums is not None else len(emb)
        index = use_ann(ann, n) and (ann == "on" or faiss_available())
        h.update(Path(ann_module.__file__).read_bytes())          # the index's code (numbers_digest: near_dup's)
        h.update(f"{CACHE_VERSION} {method} {numbers_digest()} "
                 f"{None if candidates is None else float(candidates)!r} {'index' if index else 'exact'} "
                 f"{None if sums is None else (sums.shape, str(sums.dtype))} "
                 f"{None if emb is None else emb.shape}".encode())
        if sums is not None:
            h.update(np.ascontiguousarray(sums).data)
        if emb is not None:
            h.update(np.ascontiguousarray(emb, np.float32).data)
        return h.hexdigest()[:24]

    def _path(self, key: str) -> Path:
        return self.folder / f"candidate_pairs_{THUMB}px_{numbers_digest()}_{key}.npz"

    def _load(self, path: Path, n: int, scored: bool) -> dict | None:
        """The kept search at `path` (arrays i, j, and s and floor when `scored`), checked against n rows; None
        when there is none or it does not fit (said)."""
        from imgcls.console import warn
        if not path.is_file():
            return None
        try:
            with np.load(path) as z:
                out = {"i": z["i"].astype(np.int64), "j": z["j"].astype(np.int64)}
                kept = int(z["n"])
                if scored:
                    out["s"], out["floor"] = z["s"].astype(np.float32), float(z["floor"])
            i, j = out["i"], out["j"]
            if kept != n or i.shape != j.shape or (len(i) and not (0 <= i.min() and j.max() < n)) \
                    or (scored and (out["s"].shape != i.shape or not np.isfinite(out["floor"]))):
                raise ValueError(f"{len(i)} pairs of {kept} rows for {n} rows")
            return out
        except Exception as e:  # noqa: BLE001 - a damaged file is ignored (and replaced), never trusted
            warn(f"candidate-pair cache {path} does not fit ({type(e).__name__}: {e}): ignored, searched again")
            return None

    def pairs(self, emb: np.ndarray | None, sums: np.ndarray, candidates: float, ann: str = "auto"
              ) -> tuple[np.ndarray, np.ndarray]:
        """near_dup.candidate_pairs of these rows (every one searched): kept ones when a search of the same digest
        wrote them, else searched and kept."""
        from imgcls.clean.near_dup import candidate_pairs
        path = self._path(self.digest(emb, sums, candidates, ann))
        kept = self._load(path, len(sums), scored=False)
        if kept is not None:
            from imgcls.console import reused
            reused("the candidate-pair search")
            return kept["i"], kept["j"]
        i, j = candidate_pairs(emb, np.zeros((0, THUMB, THUMB, 3), np.uint8), np.ones(len(sums), bool), candidates,
                               ann=ann, sums=sums)
        self._store(path, len(sums), i=i.astype(np.int32), j=j.astype(np.int32))
        return i, j

    def scored(self, emb: np.ndarray, floor: float, ann: str = "auto", what: str | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """--dup-method embedding's search of these rows (every one searched): the pairs (i < j, cosine >= floor)
        and their cosines, as NearDuplicates.scored_pairs returns them: the exact blockwise search (every such
        pair), or with the FAISS index each row's CANDIDATES_PER_IMAGE nearest (near_dup.top_pairs). A kept search
        of the same digest at this floor or a lower one is taken (its pairs at or above `floor`: either search
        picks its pairs whatever the floor, then keeps those at or above it), so split at the cut takes clean's
        search down to its lowest sweep row; else searched at `floor` and kept."""
        from imgcls.clean.ann import faiss_available, use_ann
        from imgcls.clean.near_dup import pair_arrays, top_pairs
        floor = float(floor)
        path = self._path(self.digest(emb, None, None, ann, method="embedding"))
        kept = self._load(path, len(emb), scored=True)
        if kept is not None and kept["floor"] <= floor:
            from imgcls.console import reused
            reused("the near-duplicate search")
            keep = kept["s"] >= floor                  # as the searches compare: float32 scores, a Python float
            return kept["i"][keep], kept["j"][keep], kept["s"][keep]
        if use_ann(ann, len(emb)) and (ann == "on" or faiss_available()):
            i, j, s = top_pairs(emb, floor, ann=ann, what=what)
        else:
            i, j, s = pair_arrays(emb, floor, what=what)
        self._store(path, len(emb), i=i.astype(np.int32), j=j.astype(np.int32), s=s.astype(np.float32),
                    floor=np.array(floor))
        return i.astype(np.int64), j.astype(np.int64), s.astype(np.float32)

    def _store(self, path: Path, n: int, **arrays: np.ndarray) -> None:
        from imgcls.fsutil import atomic_path
        try:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, n=np.array(n), **arrays)
        except OSError as e:             # the run's own results stand; only the next run's reuse is lost
            from imgcls.console import warn
            warn(f"candidate-pair cache {path} not written ({e.strerror or e}): the next run searches again")
            return
        # the searches of other code (another numbers_digest) are never read again; of this code's, the latest few
        # written (no lock: a search another run has just written is among them unless KEPT_SEARCHES newer ones
        # were written since, and then it is only searched again)
        code = f"candidate_pairs_{THUMB}px_{numbers_digest()}_"
        others = [p for p in path.parent.glob(f"candidate_pairs_{THUMB}px_*.npz") if p != path]
        written = {}
        for p in others:
            if p.name.startswith(code):
                try:
                    written[p] = p.stat().st_mtime
                except OSError:     # removed meanwhile by another run's prune
                    pass
        older = sorted(written, key=written.__getitem__, reverse=True)
        for old in [p for p in others if not p.name.startswith(code)] + older[KEPT_SEARCHES - 1:]:
            try:
                old.unlink()
            except OSError:
                pass


def content_keys(df: pd.DataFrame) -> np.ndarray:
    """A uint64 per row from its sha256 (its first 16 hex digits); 0 for a row without one (never kept)."""
    from imgcls.manifest import content_hashes
    return np.array([int(s[:16], 16) if len(s) >= 16 else 0 for s in content_hashes(df)], np.uint64)


class PairCache:
    """The pairs kept for one verification path in one cache folder: `lookup` before verify_pairs, `store` after;
    `keeper`'s saves while it runs (shards of what is new)."""

    def __init__(self, cache_dir: str | Path | None, greyscale: bool):
        from imgcls.embed import open_cache_folder
        folder = open_cache_folder(cache_dir)
        stem = f"verified_pairs_{THUMB}px_{'grey' if greyscale else 'rgb'}"
        self.path, self.replaces = folder / f"{stem}_{numbers_digest()}.npz", f"{stem}_*.npz"
        self.parts = self.path.with_name(self.path.name + ".parts")     # the shards of runs since the file
        self._said = False          # a write that failed is said once
        self.shards: list[Path] = []    # the shards the table holds (read, or written by this run): `store` merges
        self.saved: list[pd.DataFrame] = []     # the pairs of this run's shards, kept by `store` with the table
        self.table = self._load()

    def _read(self, path: Path) -> tuple[dict, list[str]]:
        """The columns of a pairs file or shard, and the shards a whole file took in (their names); ValueError when
        they do not fit."""
        with np.load(path) as z:
            cols = {k: z[k] for k in FIELDS}
            version = int(z["version"])
            merged = [str(n) for n in z["merged"]] if "merged" in z.files else []
        n = len(cols["a"])
        if version != CACHE_VERSION or cols["how"].shape != (n, 3) or any(len(v) != n for v in cols.values()):
            raise ValueError(f"version {version}, fields of {[len(v) for v in cols.values()]} rows")
        return cols, merged

    def _load(self, say: bool = True) -> pd.DataFrame:
        """The file's pairs, then the shards' it did not take in, in the order they were written (a pair's newer
        numbers replace its older ones). `say`: a file or shard that does not fit is said (store's second read
        does not say it again)."""
        from imgcls.console import warn
        tell = warn if say else (lambda _msg: None)
        # the shards before the file: a store writes the file taking them in before it removes them, so the pairs
        # of a shard gone since are in the file (read the other way, a store in between left neither)
        shards = sorted(self.parts.glob("shard-*.npz")) if self.parts.is_dir() else []
        read: list[tuple[Path, pd.DataFrame | Exception]] = []
        for shard in shards:
            if shard not in self.shards:    # taken in (or, named by the file, removed) by this run's store
                self.shards.append(shard)
            try:
                read.append((shard, _frame(self._read(shard)[0])))
            except FileNotFoundError:   # another run's store took it into the file and removed it meanwhile
                continue
            except Exception as e:  # noqa: BLE001 - a damaged shard is ignored (and removed), never trusted
                read.append((shard, e))
        frames, merged = [], set()
        if self.path.is_file():
            try:
                cols, names = self._read(self.path)
                frames.append(_frame(cols))
                merged = set(names)
            except Exception as e:  # noqa: BLE001 - a damaged cache is ignored (and replaced), never trusted
                tell(f"verified-pair cache {self.path} does not fit ({type(e).__name__}: {e}): ignored and rebuilt")
        for shard, got in read:
            if shard.name in merged:
                continue
            if isinstance(got, Exception):
                tell(f"verified-pair cache shard {shard} does not fit ({type(got).__name__}: {got}): ignored")
            else:
                frames.append(got)
        if not frames:
            return _frame({})
        t = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        return t.drop_duplicates(["a", "b"], keep="last").reset_index(drop=True) if len(frames) > 1 else t

    def lookup(self, key_a: np.ndarray, key_b: np.ndarray) -> PairRecord:
        """A PairRecord of the pairs (key_a[k], key_b[k]) with what is kept for them (NaN where nothing is)."""
        rec = PairRecord.empty(len(key_a))
        if not len(self.table) or not len(key_a):
            return rec
        want = pd.DataFrame({"a": key_a, "b": key_b, "row": np.arange(len(key_a))})
        hit = want.merge(self.table, on=["a", "b"], how="inner")       # the table holds no key 0
        rows = hit["row"].to_numpy()
        rec.glob[rows] = hit["glob"].to_numpy(np.float32)
        rec.how[rows] = np.stack([hit[f"how{k}"].to_numpy() for k in range(3)], 1)
        rec.local[rows] = hit["local"].to_numpy(np.float32)
        rec.local_floor[rows] = hit["local_floor"].to_numpy(np.float32)
        return rec

    def keeper(self, pairs: Callable[[], tuple[np.ndarray, np.ndarray, PairRecord]],
               seconds: float | None = None) -> Callable[[], None]:
        """verification's `save` (near_dup.global_scores, local_scores): each call keeps the pairs verified so far
        (`pairs()`: the keys and record, as `store` takes them) once `seconds` (SAVE_SECONDS) have passed since the
        last save, so a stopped verification keeps what it verified and the rerun verifies only the rest. A save
        writes a shard of the pairs whose numbers changed since the last one (what `pairs()` gave when the keeper
        was made: the record as the cache replayed it), not the whole file."""
        import time
        last = [time.monotonic()]
        saved = [_numbers(*pairs(), copy=True)]        # the numbers as kept, updated where a shard keeps new ones

        def keep() -> None:
            if time.monotonic() - last[0] >= (SAVE_SECONDS if seconds is None else seconds):
                key_a, key_b, rec = pairs()
                kept = saved[0]
                if len(kept[0]) != len(key_a) or not (np.array_equal(kept[0], key_a)
                                                      and np.array_equal(kept[1], key_b)):
                    kept = saved[0] = _numbers(key_a, key_b, self.lookup(key_a, key_b))  # pairs left out since
                now = _numbers(key_a, key_b, rec)
                fresh = np.flatnonzero(rec.fresh)      # only a pair the verification computed can have changed
                changed = fresh[~_same([x[fresh] for x in kept[2:]], [x[fresh] for x in now[2:]])]
                if self._write_shard(key_a[changed], key_b[changed], rec.take(changed)):
                    for x, y in zip(kept[2:], now[2:]):
                        x[changed] = y[changed]
                last[0] = time.monotonic()
        return keep

    def _write_shard(self, key_a: np.ndarray, key_b: np.ndarray, rec: PairRecord) -> bool:
        """Write the record's pairs (keys both known) as a new shard; False when it could not be written (said)."""
        import time
        import uuid
        ok = (key_a != 0) & (key_b != 0)
        if not ok.any():
            return True
        shard = self.parts / f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"   # names in write order
        new = _frame({"a": key_a[ok], "b": key_b[ok], "glob": rec.glob[ok], "how": rec.how[ok],
                      "local": rec.local[ok], "local_floor": rec.local_floor[ok]})
        if not self._write(shard, new):
            return False
        self.shards.append(shard)
        self.saved.append(new)
        return True

    def _write(self, path: Path, t: pd.DataFrame, **extra: np.ndarray) -> bool:
        """Write the pairs of `t` to `path` (atomic); False when it could not be written (said once)."""
        from imgcls.fsutil import atomic_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, version=np.array(CACHE_VERSION), a=t["a"].to_numpy(np.uint64),
                             b=t["b"].to_numpy(np.uint64), glob=t["glob"].to_numpy(np.float32),
                             how=np.stack([t[f"how{k}"].to_numpy(np.int8) for k in range(3)], 1).reshape(-1, 3),
                             local=t["local"].to_numpy(np.float32),
                             local_floor=t["local_floor"].to_numpy(np.float32), **extra)
        except OSError as e:             # the run's own results stand; only the next run's replay is lost
            if not self._said:
                self._said = True
                from imgcls.console import warn
                warn(f"verified-pair cache {self.path} not written ({e.strerror or e}): the next run verifies these "
                     f"pairs again")
            return False
        return True

    def store(self, key_a: np.ndarray, key_b: np.ndarray, rec: PairRecord) -> int:
        """Keep the pairs the record's verify_pairs call computed (`fresh`; a pair's newer numbers replace its
        older ones) and write the whole file when there are any, taking in the shards (read, or written by this
        run's saves: then removed). The file and shards are read again as they are now, under the file's lock
        (fsutil.lock_beside): another run sharing the cache folder may have stored its pairs since this one
        read them, and they stay. Returns how many."""
        from contextlib import ExitStack

        from imgcls.embed import drop_replaced
        from imgcls.fsutil import lock_beside
        ok = rec.fresh & (key_a != 0) & (key_b != 0)           # a fresh pair's global part is always known
        if not ok.any():
            return 0
        new = _frame({"a": key_a[ok], "b": key_b[ok], "glob": rec.glob[ok], "how": rec.how[ok],
                      "local": rec.local[ok], "local_floor": rec.local_floor[ok]})
        with ExitStack() as turn:
            try:
                turn.enter_context(lock_beside(self.path))
                now = self._load(say=False)
            except OSError:         # a folder that cannot be written: _write says so
                now = self.table
            t = pd.concat([now, *self.saved, new], ignore_index=True).drop_duplicates(["a", "b"], keep="last")
            self.table, self.saved = t.reset_index(drop=True), []
            if not self._write(self.path, self.table, merged=np.array([p.name for p in self.shards], dtype=str)):
                return 0
            for shard in self.shards:       # in the file now (which names them, should one stay)
                shard.unlink(missing_ok=True)
            self.shards = []
            try:
                self.parts.rmdir()          # a concurrent run's shards keep it
            except OSError:
                pass
        drop_replaced(self.path, self.replaces)
        for old in self.path.parent.glob(self.replaces + ".parts"):     # older code's shards: never read again
            if old != self.parts:
                import shutil
                shutil.rmtree(old, ignore_errors=True)
        return int(ok.sum())


def _numbers(key_a: np.ndarray, key_b: np.ndarray, rec: PairRecord, copy: bool = False) -> list[np.ndarray]:
    """The keys and a record's numbers (what a keeper compares a later record to); `copy`: its own arrays."""
    out = [key_a, key_b, rec.glob, rec.how, rec.local, rec.local_floor]
    return [x.copy() for x in out] if copy else out


def _same(x: list[np.ndarray], y: list[np.ndarray]) -> np.ndarray:
    """Per pair: every one of the numbers `x` equal to `y`'s (NaN equal to NaN)."""
    out = np.ones(len(x[0]), bool)
    for u, v in zip(x, y):
        eq = (u == v) | (np.isnan(u) & np.isnan(v)) if u.dtype.kind == "f" else u == v
        out &= eq.reshape(len(out), -1).all(1)
    return out


def _frame(cols: dict) -> pd.DataFrame:
    """The kept pairs as columns a, b (uint64), glob, how0-2, local, local_floor."""
    how = np.asarray(cols.get("how", np.zeros((0, 3))), np.int8).reshape(-1, 3)
    return pd.DataFrame({"a": np.asarray(cols.get("a", []), np.uint64), "b": np.asarray(cols.get("b", []), np.uint64),
                         "glob": np.asarray(cols.get("glob", []), np.float32),
                         **{f"how{k}": how[:, k] for k in range(3)},
                         "local": np.asarray(cols.get("local", []), np.float32),
                         "local_floor": np.asarray(cols.get("local_floor", []), np.float32)})
