"""Sweep of near_dup.LOCAL_TOL and COLOUR_TOL (the worst-window residuals, per-channel tone curves / one shared gain,
that score 0.98) on openclipart_dirty: the candidate pairs, their global correlation and both worst local windows
(near_dup.local_residuals) are computed once, then the verified score min(global, 1 - 0.02 max(w1 / tol,
w2 / colour_tol)) is re-cut for each pair of tolerances and threshold; planted recall and other-untouched false
alarms as in bench/clean_quality.py. usage: python bench/clean_local_tol.py (embeddings cached in /tmp/cs/cache)
"""
import os, numpy as np, pandas as pd
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from pathlib import Path
from imgcls import manifest as mf
from imgcls.clean import CleanConfig, mark_duplicates
from imgcls.clean import near_dup as nd
from imgcls.embed import embed_manifest
from imgcls.console import set_quiet
set_quiet(True)
root = Path("/work/imgdata/out/openclipart_dirty")
truth = pd.read_csv("/work/imgdata/out/openclipart_dirty_truth.csv")
df = mf.load(root, workers=2, announce=False).reset_index(drop=True)
name = df["path"].str.split("/").str[-1]
photo = name.isin(set(truth.loc[truth.kind == "photo", "file"])).to_numpy()
planted = truth[truth.kind.str.startswith("dup_")]
sources = set(planted.source.str.split("/").str[-1])
untouched = (~photo & ~name.isin(set(planted.file)) & ~name.isin(sources)).to_numpy()
emb = embed_manifest(df, img_size=160, cache_dir="/tmp/cs/cache", device="cpu")
th = nd.thumbnails(df, workers=2)
d16, d16f = nd.tiny_descriptors(*th)
oi, oj, _ = nd.pair_arrays(d16, 0.99, flipped=d16f)
own = np.zeros(len(df), bool); own[oi] = own[oj] = True
own |= df["sha256"].duplicated(keep=False).to_numpy()
other = untouched & ~own
ok = (df["error"] == "").to_numpy(); rep = ok & ~df["sha256"].duplicated().to_numpy()
t_ok = th[1] & rep
i, j = nd.candidate_pairs(emb, th[0], t_ok, 0.80)
keep = t_ok[i] & t_ok[j]; i, j = i[keep], j[keep]
g = np.zeros(len(i), np.float32); how = np.zeros((len(i), 3), np.int64)
for s in range(0, len(i), 1024):
    g[s:s+1024], how[s:s+1024] = nd._verify_chunk(th[0], i[s:s+1024], j[s:s+1024])
sel = g >= 0.95
w1 = np.zeros(len(i), np.float32)
w2 = np.zeros(len(i), np.float32)
w1[sel], w2[sel] = nd.local_residuals(th[0], i[sel], j[sel], how[sel])

path_of = dict(zip(name, range(len(df))))
for tol in (12, 16, 20):
    for ctol in (20, 24, 27, 30, 1e9):
        for thr in (0.975, 0.98, 0.985):
            sc = np.minimum(g, 1 - 0.02 * np.maximum(w1 / tol, w2 / ctol))
            k = sc >= thr
            d = df.copy()
            d["keep"], d["reason"], d["dup_group"], d["duplicate_of"], d["label_conflict"] = True, "", "", "", False
            d = mark_duplicates(d, None, CleanConfig(dup_threshold=thr, duplicates="drop"),
                                pairs=(i[k], j[k], sc[k])).frame
            grp = d["dup_group"].to_numpy()
            found = sum(1 for f, s_ in zip(planted.file, planted.source.str.split("/").str[-1])
                        if grp[path_of[f]] != "" and grp[path_of[f]] == grp[path_of[s_]])
            rem = (~d["keep"].to_numpy()) & other & (d["reason"].to_numpy() == "near_duplicate")
            print(f"tol {tol} colour_tol {ctol:g} thr {thr}: recall {found/len(planted):.3f} "
                  f"other removed {rem.sum()/other.sum():.4f}", flush=True)
