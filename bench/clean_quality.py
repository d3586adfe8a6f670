"""Quality and speed of `imgcls clean` on ../shared/data's openclipart_dirty (with its truth CSV), against the
seeds' pixel-clustering photo detectors and imagededup's hashes, in one run.

usage: python bench/clean_quality.py [DATA_DIR] [--methods ...] [--skip-imagededup]
DATA_DIR holds openclipart_dirty/ and openclipart_dirty_truth.csv (default /work/imgdata/out).
imagededup is the `bench` extra (pip install imagededup); it is skipped with a note when missing.
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
from imgcls.clean import CONFLICT_POLICIES, CleanConfig, mark_duplicates, pixel_matrix, threshold_sweep  # noqa: E402
from imgcls.clean.features import feature_matrix  # noqa: E402
from imgcls.clean.near_dup import thumbnails, tiny_descriptors  # noqa: E402
from imgcls.clean.pair_cache import Thumbnails  # noqa: E402
from imgcls.clean.registry import OODInputs, get_detector  # noqa: E402
from imgcls.embed import embed_manifest, style_manifest  # noqa: E402
from imgcls.console import set_quiet  # noqa: E402


def prf(pred: np.ndarray, true: np.ndarray) -> tuple[float, float, float]:
    tp = int((pred & true).sum())
    p = tp / max(int(pred.sum()), 1)
    r = tp / max(int(true.sum()), 1)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def unmarked(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of the scanned manifest with clean's duplicate columns at run_clean's start values."""
    return df.assign(keep=True, reason="", dup_group="", duplicate_of="", label_conflict=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default="/work/imgdata/out")
    ap.add_argument("--methods", default="photo-style,photo-embedding,photo-features,embedding-knn,combined,"
                                         "pixels-agglomerative,pca-dbscan")
    ap.add_argument("--dup-methods", default="verified,embedding")
    ap.add_argument("--embed-size", type=int, default=160)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--skip-imagededup", action="store_true")
    ap.add_argument("--thresholds", default="0.85,0.88,0.90,0.92,0.94,0.95,0.96,0.97")
    a = ap.parse_args()
    set_quiet(True)
    root = Path(a.data) / "openclipart_dirty"
    truth = pd.read_csv(Path(a.data) / "openclipart_dirty_truth.csv")
    df = mf.load(root, workers=2, announce=False).reset_index(drop=True)
    name = df["path"].str.split("/").str[-1]
    photo = name.isin(set(truth.loc[truth.kind == "photo", "file"])).to_numpy()
    planted = truth[truth.kind.str.startswith("dup_")]
    planted_files = set(planted.file)
    sources = set(planted.source.str.split("/").str[-1])
    untouched = (~photo & ~name.isin(planted_files) & ~name.isin(sources)).to_numpy()
    print(f"images {len(df)}  photos {photo.sum()}  planted near-duplicates {len(planted)}  untouched {untouched.sum()}")

    t = time.time()
    emb = embed_manifest(df, img_size=a.embed_size, cache_dir=a.cache_dir, device="cpu")
    style = style_manifest(df, img_size=a.embed_size, cache_dir=a.cache_dir, device="cpu")
    t_emb = time.time() - t
    t = time.time()
    feats = feature_matrix(df)
    t_feat = time.time() - t
    print(f"embedding: {len(df) / t_emb:.1f} images/s (lite0 {a.embed_size}px, includes cache hits if any);"
          f"  photo features: {len(df) / t_feat:.1f} images/s")

    # --- duplicates -------------------------------------------------------------------------------------------
    # Open Clip Art's own near-identical images (same bytes, or RGB-16 correlation >= 0.99 with another original)
    # are real duplicates / families; `other` = untouched images without one, where any flag is a false alarm.
    t = time.time()
    # decoded into the Thumbnails that scored_pairs takes below (the rows' numbers kept in --cache-dir)
    decoded = Thumbnails(df, np.arange(len(df)), cache_dir=a.cache_dir)
    th = thumbnails(df, out=(decoded.thumbs, decoded.ok))
    decoded.decoded(np.arange(len(df)))
    t_th = time.time() - t
    d16, d16f = tiny_descriptors(*th)
    from imgcls.clean.near_dup import pair_arrays
    oi, oj, _ = pair_arrays(d16, 0.99, flipped=d16f)
    own = np.zeros(len(df), bool)
    own[oi] = own[oj] = True
    own |= df["sha256"].duplicated(keep=False).to_numpy()
    other = untouched & ~own
    print(f"thumbnails: {len(df) / t_th:.0f} images/s; untouched with Open Clip Art's own near-identical copy: "
          f"{(untouched & own).sum() / untouched.sum():.3f}; other untouched: {other.sum()}")
    path_of = dict(zip(name, range(len(df))))
    for method in a.dup_methods.split(","):
        cfg0 = CleanConfig(dup_method=method, dup_threshold=min(float(x) for x in a.thresholds.split(",")))
        t = time.time()
        scored = cfg0.near_duplicates().scored_pairs(df, emb, cfg0.dup_threshold, thumbs=decoded)
        t_pairs = time.time() - t
        print(f"\n[{method}] scored pairs: {len(scored[0])} in {t_pairs:.1f} s ({len(df) / t_pairs:.0f} images/s)")
        print("threshold | planted recall | untouched removed (exact / near) | other untouched removed as near dup "
              "| per kind")
        for thr in [float(x) for x in a.thresholds.split(",")]:
            cfg = CleanConfig(dup_method=method, dup_threshold=thr, duplicates="drop")
            d = mark_duplicates(unmarked(df), emb, cfg, pairs=scored).frame
            grp = d["dup_group"].to_numpy()
            found = sum(1 for f, s in zip(planted.file, planted.source.str.split("/").str[-1])
                        if grp[path_of[f]] != "" and grp[path_of[f]] == grp[path_of[s]])
            removed = ~d["keep"].to_numpy()
            reason = d["reason"].to_numpy()
            exact_u = (removed & untouched & (reason == "exact_duplicate")).sum() / untouched.sum()
            near_u = (removed & untouched & (reason == "near_duplicate")).sum() / untouched.sum()
            near_o = (removed & other & (reason == "near_duplicate")).sum() / other.sum()
            per_kind = {k: sum(1 for f, s in zip(g.file, g.source.str.split("/").str[-1])
                               if grp[path_of[f]] != "" and grp[path_of[f]] == grp[path_of[s]]) / len(g)
                        for k, g in planted.groupby("kind")}
            print(f"  {thr:.3f} | {found / len(planted):.3f} ({found}/{len(planted)}) | {exact_u:.3f} / {near_u:.3f} | "
                  f"{near_o:.3f} | " + " ".join(f"{k[4:]}={v:.2f}" for k, v in per_kind.items()))
        print("sweep (all images):", threshold_sweep(df.assign(keep=True), scored))

    # --- label conflicts: copies planted in another class than their source's (a wrong label, known) ----------
    wrong = planted[planted["class"] != planted.source.str.split("/").str[0]]
    scored = CleanConfig().near_duplicates().scored_pairs(df, emb, thumbs=decoded)
    print(f"\nlabel conflicts (clean's default duplicate definition): {len(wrong)} copies planted in another class "
          f"than their source\n--conflicts | sources kept | planted copies kept")
    for policy in CONFLICT_POLICIES:
        keep = mark_duplicates(unmarked(df), emb, CleanConfig(conflicts=policy),
                               pairs=scored).frame["keep"].to_numpy()
        print(f"  {policy:13s} | {sum(keep[path_of[s]] for s in wrong.source.str.split('/').str[-1])} | "
              f"{sum(keep[path_of[f]] for f in wrong.file)}")

    # --- out of domain ----------------------------------------------------------------------------------------
    inputs = OODInputs(features=lambda: feats, embeddings=lambda: emb, pixels=lambda: px(), seed=0,
                       style=lambda: style)
    px_cache = {}

    def px():
        if "p" not in px_cache:
            px_cache["p"] = pixel_matrix(df)
        return px_cache["p"]

    print("\nOOD method | default-rule P / R / F1 | best-threshold F1 | untouched flagged | seconds")
    for m in filter(None, a.methods.split(",")):     # --methods "": no OOD rows
        t = time.time()
        try:
            s = get_detector(m).score(inputs)
        except Exception as e:  # report, go on with the other methods
            print(f"  {m}: failed: {e}")
            continue
        dt = time.time() - t
        flagged = get_detector(m).flag(s)
        p, r, f = prf(flagged, photo)
        best = max((prf(~np.isnan(s) & (s >= c), photo)[2], c) for c in np.unique(np.nan_to_num(s, nan=-1))[-400:])
        print(f"  {m:21s} | {p:.3f} / {r:.3f} / {f:.3f} | {best[0]:.3f} (at {best[1]:.3g}) | "
              f"{(flagged & untouched).sum() / untouched.sum():.4f} | {dt:.1f}")

    # --- imagededup reference ---------------------------------------------------------------------------------
    if a.skip_imagededup:
        return
    try:
        from imagededup.methods import PHash
    except ImportError:
        print("\nimagededup not installed (pip install imagededup): reference skipped")
        return
    import logging
    logging.disable(logging.WARNING)
    ph = PHash(verbose=False)
    t = time.time()
    enc = {}
    for rel, p in zip(df["path"], mf.image_paths(df)):
        try:
            enc[rel] = ph.encode_image(image_file=str(p))
        except Exception:
            pass
    t_enc = time.time() - t
    rel_of = dict(zip(name, df["path"]))
    untouched_rel = set(df.loc[untouched, "path"])
    for thr in (0, 4, 10):
        dups = ph.find_duplicates(encoding_map=enc, max_distance_threshold=thr)
        found = sum(1 for f, s in zip(planted.file, planted.source.str.split("/").str[-1])
                    if rel_of[s] in dups.get(rel_of[f], []))
        flagged_u = sum(1 for k, v in dups.items() if v and k in untouched_rel) / len(untouched_rel)
        print(f"imagededup PHash max_distance={thr:2d}: planted recall {found / len(planted):.3f}, "
              f"untouched with a duplicate {flagged_u:.3f}, encode {len(enc) / t_enc:.0f} images/s")


if __name__ == "__main__":
    main()
