"""Out-of-domain flags on photo-free sets (issue 20): how many images `photo-style` and `photo-embedding` flag on a set
without photographs (openclipart_l1, fmnist_lt), and their photo P / R / F1 on openclipart_dirty (with its truth).

usage: python bench/ood_photo_free.py SET [SET ...] [--data /work/imgdata/out] [--cap 150] [--cache-dir DIR]
       [--no-population-check] [--sample N,N,... --repeats R --photo-share S]
--cap N also scores a copy of each set capped at N images per class (seed 0); --no-population-check switches off
photo_population (the detectors as before issue 20), for the "before" figures. --sample scores R random samples of
each size N (seeds 0..R-1; sets under photo_population's ~1,250-image judging size among them), a share S of each
sample drawn from the set's planted photos where it has them (openclipart_dirty's truth), and prints each size's
mean images and photos flagged.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from imgcls import manifest as mf  # noqa: E402
from imgcls.clean import ood  # noqa: E402
from imgcls.clean.features import feature_matrix  # noqa: E402
from imgcls.clean.registry import OODInputs, get_detector  # noqa: E402
from imgcls.console import set_quiet  # noqa: E402
from imgcls.embed import embed_manifest, style_manifest  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--data", default="/work/imgdata/out")
    ap.add_argument("--cap", type=int, default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--no-population-check", action="store_true")
    ap.add_argument("--sample", default=None, help="sizes N,N,...: random samples of each set")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--photo-share", type=float, default=0.03)
    a = ap.parse_args()
    set_quiet(True)
    if a.no_population_check:
        ood.photo_population = lambda *args: True
    truth_file = Path(a.data) / "openclipart_dirty_truth.csv"
    photos = set(pd.read_csv(truth_file).query("kind == 'photo'").file) if truth_file.exists() else set()
    for name in a.sets:
        t = time.time()
        df = mf.load(Path(a.data) / name, workers=2, announce=False).reset_index(drop=True)
        f = feature_matrix(df, workers=2)
        em = embed_manifest(df, cache_dir=a.cache_dir, device="cpu")
        st = style_manifest(df, cache_dir=a.cache_dir, device="cpu")
        photo = df["path"].str.split("/").str[-1].isin(photos).to_numpy()
        subsets = {"all": np.arange(len(df))}
        if a.cap:
            subsets[f"capped {a.cap}/class"] = (df.groupby("label", group_keys=False)
                                                .apply(lambda g: g.sample(min(len(g), a.cap), random_state=0))
                                                .index.to_numpy())
        print(f"{name}: {len(df)} images, features + embeddings {time.time() - t:.0f} s")
        if a.sample:
            _samples(a, f, em, st, photo)
            continue
        for label, idx in subsets.items():
            for method in ("photo-style", "photo-embedding"):
                det = get_detector(method)
                s = det.score(OODInputs(features=lambda: f[idx], embeddings=lambda: em[idx], pixels=None, seed=0,
                                        style=lambda: st[idx]))
                fl, ph = det.flag(s), photo[idx]
                tp = int((fl & ph).sum())
                p, r = tp / max(int(fl.sum()), 1), tp / max(int(ph.sum()), 1)
                f1 = 2 * p * r / (p + r) if p + r else 0.0
                print(f"  {label:18s} n={len(idx):6d} {method:16s} flagged {int(fl.sum()):5d} ({fl.mean():.4f})"
                      + (f"  photos {int(ph.sum())}: P / R / F1 {p:.3f} / {r:.3f} / {f1:.3f}" if ph.any() else ""))


def _samples(a, f, em, st, photo) -> None:
    """Each size's R random samples (photos at --photo-share where the set has them): mean flagged per detector."""
    pool, pics = np.flatnonzero(~photo), np.flatnonzero(photo)
    for n in (int(x) for x in a.sample.split(",")):
        k = int(round(n * a.photo_share)) if len(pics) else 0
        for method in ("photo-style", "photo-embedding"):
            det = get_detector(method)
            flagged, caught, drawings = [], [], []
            for r in range(a.repeats):
                rng = np.random.default_rng(r)
                idx = np.r_[rng.choice(pool, n - k, replace=False), rng.choice(pics, k, replace=False)]
                s = det.score(OODInputs(features=lambda: f[idx], embeddings=lambda: em[idx], pixels=None, seed=0,
                                        style=lambda: st[idx]))
                fl, ph = det.flag(s), photo[idx]
                flagged.append(int(fl.sum()))
                caught.append(int((fl & ph).sum()))
                drawings.append(int((fl & ~ph).sum()))
            print(f"  n={n:5d} ({k} photos) {method:16s} x{a.repeats}: non-photos flagged mean "
                  f"{np.mean(drawings):.1f} ({np.mean(drawings) / (n - k):.2%}; per sample "
                  f"{'/'.join(map(str, drawings))})" + (f", photos caught {np.sum(caught)} of {k * a.repeats}"
                                                         if k else ""))


if __name__ == "__main__":
    main()
