"""Training throughput: `imgcls train` vs timm's REAL train.py, both run as a user runs them (one process each).

Both train the same model on the same ImageFolder train/ and val/ (a class-stratified 80/20 subset of the data, or
--split-dir as given) with the same epochs, image size, batch size, AdamW lr / weight decay, cosine schedule
without warm-up, and the same starting weights (the offline ImageNet file, in timm's names, through train.py
--pretrained-path and imgcls --weights; random init on both sides when no offline file exists). timm's train.py
runs with its own default train transforms, --workers W (default 2) and, on CUDA, --amp (its cuDNN autotuning is
always on); imgcls with its defaults (decoded-image cache, --gpu-aug auto, AMP on CUDA) plus --imgcls-args.

Measured per side: whole-process wall seconds (python start to exit: imports, model, data, every epoch, validation,
checkpoints; our cache build included) and peak RSS (largest process: os.wait4), train images x epochs / wall
seconds, and per-epoch seconds (timm: from its timestamped log lines, train + validation; imgcls: metrics.csv
epoch_seconds). The sides alternate (timm, imgcls, imgcls, timm, ...) so slow drift of the machine hits both.

    # CPU (the issue's setting: lite0, 96 px, batch 32, 3 and 10 epochs)
    python bench/train_throughput.py /work/imgdata/out/openclipart_l1 --timm-repo /work/timm_scripts \
        --per-class 120 --model tf_efficientnet_lite0 --img-size 96 --batch-size 32 --epochs 3,10 --device cpu
    # GPU: see docs/BENCHMARKS.md (train) for the one script that runs every configuration
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timm_run import run, timm_weights, train_py_cmd, train_py_epoch_seconds  # noqa: E402


def subset_folder(src: Path, dst: Path, per_class: int, seed: int, as_jpeg: int = 0) -> tuple[Path, Path]:
    """train/ and val/ ImageFolders of symlinks (80/20 per class). `as_jpeg` N: instead, each image resized to a long
    side of N px and written as JPEG (quality 95): the file size and decode cost of competition photos (the mask
    task's images are 384 x 512 JPEG) with the same content and labels."""
    rng = np.random.default_rng(seed)
    for cls in sorted(p for p in src.iterdir() if p.is_dir()):
        files = sorted(f for f in cls.rglob("*") if f.is_file())
        files = [files[i] for i in rng.permutation(len(files))[:per_class]]
        n_val = max(1, len(files) // 5)
        for i, f in enumerate(files):
            part = "val" if i < n_val else "train"
            (dst / part / cls.name).mkdir(parents=True, exist_ok=True)
            if as_jpeg:
                from PIL import Image
                im = Image.open(f).convert("RGB")
                k = as_jpeg / max(im.size)
                im = im.resize((max(1, round(im.width * k)), max(1, round(im.height * k))), Image.Resampling.BICUBIC)
                im.save(dst / part / cls.name / (f.stem + ".jpg"), quality=95)
            else:
                (dst / part / cls.name / f.name).symlink_to(f.resolve())
    return dst / "train", dst / "val"


def write_manifest(split_dir: Path, out: Path) -> tuple[Path, int, int, int]:
    """One manifest with split train / val = the images timm's ImageFolder sees (written before timing: timm's
    side gets its folder split ready-made too). Returns (manifest, train images, val images, classes)."""
    import pandas as pd

    from imgcls import manifest as mf
    frames = []
    for part in ("train", "val"):
        df = mf.load(split_dir / part, scan=True, workers=2, announce=False)
        df["split"] = part
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    mf.write(df, out)
    n_classes = len({p.name for p in (split_dir / "train").iterdir() if p.is_dir()})
    return out, int((df["split"] == "train").sum()), int((df["split"] == "val").sum()), n_classes


def side_timm(a, split_dir, n_classes, epochs, weights, work, k):
    out = work / "timm_out"
    cmd = train_py_cmd(a.timm_repo, split_dir, a.model, num_classes=n_classes, img_size=a.img_size, epochs=epochs,
                       batch_size=a.batch_size, lr=a.lr, device=a.device, workers=a.workers, out=out,
                       experiment=f"e{epochs}-{k}", weights=weights, seed=a.seed, weight_decay=a.weight_decay,
                       amp=a.device.startswith("cuda") or a.amp, extra=tuple(a.timm_args.split()))
    p = run(cmd, work / "logs" / f"timm_e{epochs}_{k}.log", quiet=True)
    shutil.rmtree(out / f"e{epochs}-{k}", ignore_errors=True)
    return {"seconds": p.seconds, "peak_rss": p.peak_rss, "epoch_seconds": train_py_epoch_seconds(p.lines, epochs)}


def side_imgcls(a, manifest, epochs, weights, work, k):
    import pandas as pd
    name = f"e{epochs}-{k}"
    cmd = [sys.executable, "-m", "imgcls", "train", manifest, "--model", a.model, "--img-size", a.img_size,
           "--epochs", epochs, "--batch-size", a.batch_size, "--optimizer", "adamw", "--lr", a.lr,
           "--weight-decay", a.weight_decay, "--scheduler", "cosine", "--seed", a.seed, "--device", a.device,
           "--out", work / "runs", "--name", name, "--quiet"]
    cmd += ["--weights", weights] if weights is not None else ["--no-pretrained"]
    if a.amp:
        cmd.append("--amp")
    cmd += a.imgcls_args.split()
    p = run(cmd, work / "logs" / f"imgcls_e{epochs}_{k}.log", quiet=True)
    run_dir = work / "runs" / name
    m = pd.read_csv(run_dir / "metrics.csv")
    log = (run_dir / "train.log").read_text()
    cache = next((ln.split("decoded-image cache: ", 1)[1] for ln in log.splitlines() if "decoded-image cache" in ln),
                 "")
    res = {"seconds": p.seconds, "peak_rss": p.peak_rss, "epoch_seconds": m["epoch_seconds"].tolist(),
           "cache": cache}
    if "compile_seconds" in m.columns:
        res["compile_seconds"] = float(m["compile_seconds"].sum())
    shutil.rmtree(run_dir, ignore_errors=True)
    return res


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, nargs="?", help="an ImageFolder (class folders) to subset")
    ap.add_argument("--split-dir", type=Path, help="instead: an ImageFolder already split into train/ and val/")
    ap.add_argument("--timm-repo", type=Path, required=True, help="a pytorch-image-models checkout (its train.py)")
    ap.add_argument("--per-class", type=int, default=120)
    ap.add_argument("--as-jpeg", type=int, default=0,
                    help="re-encode the subset as JPEG with this long side (e.g. 512: photo-sized files)")
    ap.add_argument("--model", default="tf_efficientnet_lite0")
    ap.add_argument("--img-size", type=int, default=96)
    ap.add_argument("--epochs", default="3", help="comma-separated: one configuration per value, e.g. 3,10")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--workers", type=int, default=2, help="timm's loader workers (imgcls: its default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true", help="AMP on both sides also on the CPU (bf16); CUDA: always")
    ap.add_argument("--imgcls-args", default="", help="extra imgcls train flags, e.g. '--gpu-aug off'")
    ap.add_argument("--timm-args", default="", help="extra train.py flags, e.g. '--channels-last'")
    ap.add_argument("--repeats", type=int, default=1, help="runs per side and configuration (alternating)")
    ap.add_argument("--random-init", action="store_true", help="no starting weights on either side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--export", type=Path,
                    help="only write the split (real files; JPEG with --as-jpeg) and MODEL_timm.pth (the offline "
                         "weights, when there are any) into this folder, for --split-dir on another machine")
    a = ap.parse_args()
    if not (a.timm_repo / "train.py").is_file():
        raise SystemExit(f"{a.timm_repo / 'train.py'} does not exist: --timm-repo is a pytorch-image-models checkout")
    work = Path(tempfile.mkdtemp(prefix="train_bench_"))
    results = []
    try:
        if a.split_dir is None:
            if a.folder is None:
                raise SystemExit("give FOLDER (subset per class) or --split-dir (train/ and val/)")
            if a.export:
                subset_folder(a.folder, work / "data", a.per_class, a.seed, a.as_jpeg)
                shutil.copytree(work / "data", a.export, symlinks=False, dirs_exist_ok=True)
                w = timm_weights(a.export, a.model)
                print(f"wrote {a.export} (train/, val/{', ' + w.name if w else ''})")
                return
            subset_folder(a.folder, work / "data", a.per_class, a.seed, a.as_jpeg)
            split_dir = work / "data"
        else:
            split_dir = a.split_dir
        manifest, n_train, n_val, n_classes = write_manifest(split_dir, work / "splits.csv")
        shipped = split_dir / f"{a.model}_timm.pth"       # written by --export next to the split
        weights = None if a.random_init else (shipped if shipped.is_file() else timm_weights(work, a.model))
        import torch
        print(f"{a.model}, {a.img_size} px, batch {a.batch_size}, {n_train} train / {n_val} val images, "
              f"{n_classes} classes, device {a.device}, torch {torch.__version__} ({torch.get_num_threads()} "
              f"threads), timm --workers {a.workers}{' ' + a.timm_args if a.timm_args else ''}, imgcls defaults{' + ' + a.imgcls_args if a.imgcls_args else ''}"
              f", starting weights: {weights.name if weights else 'random init (no offline file)'}", flush=True)
        for epochs in [int(e) for e in a.epochs.split(",")]:
            runs = {"timm": [], "imgcls": []}
            for k in range(a.repeats):
                order = ("timm", "imgcls") if k % 2 == 0 else ("imgcls", "timm")
                for side in order:
                    load = load_average()
                    r = (side_timm(a, split_dir, n_classes, epochs, weights, work, k) if side == "timm"
                         else side_imgcls(a, manifest, epochs, weights, work, k))
                    r["load_before"], r["load_after"] = load, load_average()
                    runs[side].append(r)
                    print(f"  {epochs} epochs, {side:6s} run {k}: {r['seconds']:6.1f} s, peak RSS "
                          f"{r['peak_rss'] / 2**30:.2f} GiB, per epoch {[round(x, 1) for x in r['epoch_seconds']]}"
                          f"{', cache ' + r['cache'] if r.get('cache') else ''}"
                          f"{', compile %.1f s' % r['compile_seconds'] if 'compile_seconds' in r else ''}"
                          f" (load average {r['load_before']} -> {r['load_after']})", flush=True)
            t = {s: float(np.median([r["seconds"] for r in rs])) for s, rs in runs.items()}
            ips = {s: n_train * epochs / t[s] for s in t}
            ep = {s: float(np.median([x for r in rs for x in r["epoch_seconds"]] or [np.nan])) for s, rs in runs.items()}
            rss = {s: max(r["peak_rss"] for r in rs) / 2**30 for s, rs in runs.items()}
            print(f"{epochs} epochs: timm train.py {t['timm']:.1f} s ({ips['timm']:.1f} img/s, peak RSS "
                  f"{rss['timm']:.2f} GiB), imgcls train {t['imgcls']:.1f} s ({ips['imgcls']:.1f} img/s, peak RSS "
                  f"{rss['imgcls']:.2f} GiB): whole process {ips['imgcls'] / ips['timm']:.2f}x; median epoch timm "
                  f"{ep['timm']:.1f} s / imgcls {ep['imgcls']:.1f} s ({ep['timm'] / ep['imgcls']:.2f}x)", flush=True)
            results.append({"epochs": epochs, "n_train": n_train, "n_val": n_val, "runs": runs,
                            "ratio_whole": ips["imgcls"] / ips["timm"], "ratio_epoch": ep["timm"] / ep["imgcls"]})
        if a.json:
            a.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "results": results},
                                         indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
