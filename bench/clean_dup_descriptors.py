"""Which descriptor finds planted near-duplicates on openclipart_dirty: lite0 embeddings vs tiny RGB thumbnails
(zero-mean, L2-normalised, flip-invariant: cosine = Pearson correlation, so brightness/contrast changes cancel), and
their max. Open Clip Art's own near-identical copies (same bytes, or RGB-16 correlation >= 0.99) are counted apart,
since they are real duplicates, not false alarms.

usage: python bench/clean_dup_descriptors.py [DATA_DIR] [--cache-dir DIR]   (n x n matrices: for the ~8k benchmark set only)
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from imgcls import manifest as mf  # noqa: E402
from imgcls.console import set_quiet  # noqa: E402
from imgcls.embed import embed_manifest  # noqa: E402
from imgcls.io import ImageReadError, load_rgb  # noqa: E402


def thumbs(df: pd.DataFrame, sizes=(8, 16)) -> dict[int, np.ndarray]:
    from PIL import Image
    out = {s: np.zeros((len(df), s, s, 3), np.float32) for s in sizes}
    for i, p in enumerate(mf.image_paths(df)):
        try:
            im = load_rgb(p, draft=(32, 32)).resize((32, 32), Image.Resampling.BOX)
        except ImageReadError:
            continue
        for s in sizes:
            out[s][i] = np.asarray(im.resize((s, s), Image.Resampling.BOX), np.float32)
    return out


def corr_matrix(x: np.ndarray) -> np.ndarray:
    def desc(v):
        v = v.reshape(len(v), -1)
        v = v - v.mean(1, keepdims=True)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)
    d, dflip = desc(x), desc(x[:, :, ::-1])
    return np.maximum(d @ d.T, d @ dflip.T)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default="/work/imgdata/out")
    ap.add_argument("--cache-dir", default=None)
    a = ap.parse_args()
    set_quiet(True)
    df = mf.load(Path(a.data) / "openclipart_dirty", workers=2, announce=False).reset_index(drop=True)
    truth = pd.read_csv(Path(a.data) / "openclipart_dirty_truth.csv")
    name = df["path"].str.split("/").str[-1]
    ix = dict(zip(name, range(len(df))))
    planted = truth[truth.kind.str.startswith("dup_") & (truth.kind != "dup_exact")]
    src = planted.source.str.split("/").str[-1]
    photo = name.isin(set(truth.loc[truth.kind == "photo", "file"])).to_numpy()
    untouched = np.flatnonzero(~photo & ~name.isin(set(truth.file)) & ~name.isin(set(truth.source.str.split("/").str[-1])))
    ia, ib = np.array([ix[f] for f in planted.file]), np.array([ix[s] for s in src])
    kinds = planted.kind.str[4:].to_numpy()
    sha = df["sha256"].to_numpy()
    same = sha[:, None] == sha[None, :]

    emb = embed_manifest(df, img_size=160, cache_dir=a.cache_dir, device="cpu")
    th = thumbs(df)
    mats = {"lite0-160": emb @ emb.T, "rgb8": corr_matrix(th[8]), "rgb16": corr_matrix(th[16])}
    mats["max(lite0,rgb8)"] = np.maximum(mats["lite0-160"], mats["rgb8"])
    for m in mats.values():
        m[same] = -1                                   # byte-identical pairs are the exact stage's
    own = (mats["rgb16"][untouched] >= 0.99).any(1) | pd.Series(sha).duplicated(keep=False).to_numpy()[untouched]
    rest = untouched[~own]
    print(f"{len(df)} images, {len(planted)} planted non-exact near-duplicates, {len(untouched)} untouched, "
          f"of which {own.mean():.1%} have Open Clip Art's own near-identical copy (same bytes or rgb16 >= 0.99)")
    print("descriptor | threshold | planted recall (per kind) | other untouched with a twin >= threshold")
    for nm, thrs in (("lite0-160", (0.85, 0.90, 0.92, 0.95)), ("rgb8", (0.90, 0.95)), ("rgb16", (0.90, 0.95)),
                     ("max(lite0,rgb8)", (0.90, 0.95))):
        m = mats[nm]
        for t in thrs:
            hit = m[ia, ib] >= t
            per = " ".join(f"{k}={hit[kinds == k].mean():.2f}" for k in sorted(set(kinds)))
            print(f"  {nm:16s} {t:.2f} | {hit.mean():.3f} ({per}) | {(m[rest] >= t).any(1).mean():.3f}")


if __name__ == "__main__":
    main()
