"""Benchmark `imgcls predict`.

  throughput  our predict (imgcls.predict.run_predict, TTA none and flip) vs a timm reference doing what timm's
              inference.py does (create_model, resolve_data_config, create_transform, create_loader, plain batched
              forward) on the same model, images and batch size, in one process: images/s per TTA view and ratio.
  rss         peak RSS of a fresh process predicting 1k vs 10k images (the image list repeated to reach N):
              streaming means it stays flat.
  f1          Open Clip Art: two short runs (imgcls train, tf_efficientnet_lite0 pretrained offline, frozen
              backbone), predict --eval on the first run's validation split: macro-F1 of one model, with TTA,
              and of the two-run ensemble.

    .venv/bin/python bench/predict_throughput.py --part all --data /work/imgdata/out/openclipart_l1

Numbers go to stdout and to --out/results.json. Model load time is excluded from both throughput sides.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def image_list(data: Path, n: int) -> pd.DataFrame:
    from imgcls import io as imgio
    files = sorted(p for p in data.rglob("*") if p.is_file() and imgio.is_image_name(p.name))
    reps = [files[i % len(files)] for i in range(n)]
    # a manifest (path relative to root, root absolute); repeated files get distinct ids via the row number
    return pd.DataFrame({"path": [p.relative_to(data).as_posix() for p in reps], "root": str(data),
                         "label": "", "id": [f"{i:06d}" for i in range(n)], "sha256": ""})


def make_run(run_dir: Path, model: str, img_size: int, n_classes: int, pretrained: bool) -> Path:
    from imgcls.train.checkpoint import save_checkpoint
    from imgcls.train.heads import build_model
    from imgcls.weights import data_config
    cfg = data_config(model)
    classes = [f"c{i}" for i in range(n_classes)]
    meta = {"model": model, "classes": classes, "heads": [{"name": "label", "classes": classes}],
            "decode": "single", "img_size": img_size, "mean": list(cfg["mean"]), "std": list(cfg["std"]),
            "interpolation": "bilinear", "resize_mode": "crop", "drop_rate": 0.0}
    net = build_model(meta, pretrained=pretrained)
    save_checkpoint(run_dir / "best.pt", net.state_dict(), meta)
    return run_dir


def timm_reference(model_name: str, weights: Path, files: list[str], img_size: int, batch: int, workers: int,
                   device: str) -> float:
    """timm inference.py's path: create_model, resolve_data_config, create_transform, create_loader, forward."""
    import timm
    import torch
    from timm.data import ImageDataset, create_loader, resolve_data_config
    from imgcls.weights import load_state_dict_file
    state = load_state_dict_file(weights)
    n_cls = state[[k for k in state if k.endswith(".weight")][-1]].shape[0]
    model = timm.create_model(model_name, num_classes=n_cls)
    model.load_state_dict(state)
    dev = torch.device(device)
    model.to(dev).eval()
    cfg = resolve_data_config({"input_size": (3, img_size, img_size)}, model=model)

    class Files(ImageDataset):
        def __init__(self, paths):
            self.paths = paths
            self.transform = None
            self.target_transform = None
            self.load_bytes = False
            self.input_img_mode = "RGB"
            self.additional_features = None

        def __len__(self):
            return len(self.paths)

        def __getitem__(self, i):
            from PIL import Image
            img = Image.open(self.paths[i]).convert("RGB")
            return self.transform(img), 0

    ds = Files(files)
    loader = create_loader(ds, input_size=cfg["input_size"], batch_size=batch, use_prefetcher=dev.type == "cuda",
                           interpolation=cfg["interpolation"], mean=cfg["mean"], std=cfg["std"],
                           num_workers=workers, crop_pct=cfg["crop_pct"], device=dev)
    t0 = time.perf_counter()
    out = []
    with torch.no_grad(), torch.autocast(dev.type, dtype=torch.float16, enabled=dev.type == "cuda"):
        for x, _ in loader:
            out.append(model(x.to(dev)).float().softmax(1).cpu())
    assert sum(len(o) for o in out) == len(files)
    return time.perf_counter() - t0


def part_throughput(args, work: Path) -> dict:
    from imgcls.console import set_quiet
    from imgcls.predict import run_predict
    set_quiet(True)
    df = image_list(args.data, args.n)
    from imgcls import manifest as mf
    man = work / "test" / "manifest.csv"
    mf.write(df, man)
    run = make_run(work / "run", args.model, args.img_size, 10, pretrained=args.pretrained)
    res = {"model": args.model, "img_size": args.img_size, "batch_size": args.batch_size, "workers": args.workers,
           "n_images": args.n, "device": args.device}
    files = [str(p) for p in mf.image_paths(df)]
    # warm-up both (first-call allocations, thread pools)
    timm_reference(args.model, run / "best.pt", files[: args.batch_size], args.img_size, args.batch_size, 0,
                   args.device)
    for rep in range(args.repeats):
        t = timm_reference(args.model, run / "best.pt", files, args.img_size, args.batch_size, args.workers,
                           args.device)
        res.setdefault("timm_images_per_s", []).append(args.n / t)
        for tta in ("none", "flip"):
            s = run_predict(run, man, work / f"pred_{tta}", tta=tta, device=args.device, batch_size=args.batch_size,
                            workers=args.workers, probs_format="csv")
            res.setdefault(f"imgcls_{tta}_view_images_per_s", []).append(args.n * s["tta_views"] / s["seconds"])
    for k in [k for k in res if isinstance(res[k], list)]:
        res[k] = round(float(np.median(res[k])), 2)
    res["ratio_none"] = round(res["imgcls_none_view_images_per_s"] / res["timm_images_per_s"], 3)
    res["ratio_flip_per_view"] = round(res["imgcls_flip_view_images_per_s"] / res["timm_images_per_s"], 3)
    return res


def _rss_child(args_json: str) -> None:
    a = json.loads(args_json)
    from imgcls.console import set_quiet
    from imgcls.predict import run_predict
    set_quiet(True)
    s = run_predict(a["run"], a["manifest"], a["out"], tta="none", device=a["device"], batch_size=a["batch"],
                    workers=a["workers"])
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"peak_rss_mib": round(peak_kib / 1024, 1), "worker_peak_rss_mib": round(kids_kib / 1024, 1),
                      "seconds": s["seconds"]}))


def part_parity(args, work: Path) -> dict:
    """--device (CUDA + AMP float16) vs CPU float32 probabilities on the same images: does the fast path agree?"""
    from imgcls import manifest as mf
    from imgcls.console import set_quiet
    from imgcls.predict import run_predict
    set_quiet(True)
    n = min(args.n, 256)
    man = work / "parity" / "manifest.csv"
    mf.write(image_list(args.data, n), man)
    run = make_run(work / "parity_run", args.model, args.img_size, 10, pretrained=args.pretrained)
    probs = {}
    for dev in ("cpu", args.device):
        s = run_predict(run, man, work / f"parity_{dev.replace(':', '_')}", tta="flip", device=dev,
                        batch_size=args.batch_size, workers=args.workers, probs_format="csv")
        probs[dev] = pd.read_csv(s["probs"]).filter(like="p_").to_numpy()
    a, b = probs["cpu"], probs[args.device]
    return {"device": args.device, "n_images": n, "tta": "flip", "max_abs_prob_diff": float(np.abs(a - b).max()),
            "argmax_agreement": float((a.argmax(1) == b.argmax(1)).mean())}


def synthetic_images(folder: Path, n: int) -> Path:
    """Generated 256x256 PNGs (for a machine without the benchmark data)."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(n):
        p = folder / f"c{i % 10}" / f"{i:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        arr = np.full((256, 256, 3), 255, np.uint8)
        for _ in range(6):
            x, y = rng.integers(0, 200, 2)
            arr[y:y + rng.integers(10, 56), x:x + rng.integers(10, 56)] = rng.integers(0, 256, 3)
        Image.fromarray(arr).save(p)
    return folder


def part_rss(args, work: Path) -> dict:
    from imgcls import manifest as mf
    run = make_run(work / "rss_run", args.rss_model, args.rss_size, 10, pretrained=False)
    res = {"model": args.rss_model, "img_size": args.rss_size, "batch_size": args.batch_size, "workers": args.workers}
    for n in args.rss_n:
        man = work / f"rss_{n}" / "manifest.csv"
        mf.write(image_list(args.data, n), man)
        child = {"run": str(run), "manifest": str(man), "out": str(work / f"rss_pred_{n}"), "device": args.device,
                 "batch": args.batch_size, "workers": args.workers}
        out = subprocess.run([sys.executable, __file__, "--rss-child", json.dumps(child)], capture_output=True,
                             text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        res[str(n)] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


def part_f1(args, work: Path) -> dict:
    """Two short runs on Open Clip Art, then predict --eval on run A's validation images."""
    from imgcls.console import set_quiet
    from imgcls.ensemble import build_ensemble
    from imgcls.predict import run_predict
    from imgcls.train import run_train
    from imgcls.train.config import TrainConfig
    set_quiet(True)
    runs = []
    for name, size in (("lite0_128", 128), ("lite0_160", 160)):
        cfg = TrainConfig(src=str(args.data), model="tf_efficientnet_lite0", pretrained=True, freeze_backbone=True,
                          img_size=size, epochs=args.f1_epochs, batch_size=64, lr=3e-3, aug="light", workers=2,
                          device=args.device, out=str(work / "runs"), name=name, val_split=0.2, seed=0)
        runs.append(run_train(cfg))
    val = pd.read_csv(runs[0] / "val_predictions.csv", dtype=str, keep_default_na=False)
    man = work / "val" / "manifest.csv"
    man.parent.mkdir(parents=True, exist_ok=True)
    val[["path", "root", "label"]].assign(sha256="").to_csv(man, index=False)
    res = {"n_val": len(val), "epochs": args.f1_epochs}
    for tag, src, tta in (("one_model", runs[0], "none"), ("one_model_tta_flip", runs[0], "flip"),
                          ("one_model_tta_flip_crops", runs[0], "flip+crops")):
        s = run_predict(src, man, work / f"pred_{tag}", tta=tta, evaluate=True, device=args.device, workers=2)
        res[tag] = s["eval"].get("tta", s["eval"]["plain"])["macro_f1"]      # no TTA: plain alone
    spec = build_ensemble(runs, method="soft", out=work / "ens")
    s = run_predict(spec.path.parent, man, work / "pred_ens", tta="none", evaluate=True, device=args.device, workers=2)
    res["ensemble_soft_2_runs"] = s["eval"]["plain"]["macro_f1"]         # --tta none: no eval.tta
    s = run_predict(spec.path.parent, man, work / "pred_ens_tta", tta="flip", evaluate=True, device=args.device,
                    workers=2)
    res["ensemble_soft_2_runs_tta_flip"] = s["eval"]["tta"]["macro_f1"]
    res["note"] = "both runs use the same 80/20 split (seed 0); --eval on the 20% validation images"
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", default="all", choices=["all", "throughput", "rss", "f1", "parity"])
    ap.add_argument("--synthetic", type=int, default=0, help="generate N images instead of --data")
    ap.add_argument("--data", type=Path, default=Path("/work/imgdata/out/openclipart_l1"))
    ap.add_argument("--model", default="tf_efficientnet_lite0")
    ap.add_argument("--pretrained", action="store_true")
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rss-model", default="test_efficientnet")
    ap.add_argument("--rss-size", type=int, default=64)
    ap.add_argument("--rss-n", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--f1-epochs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/predict"))
    ap.add_argument("--rss-child")
    args = ap.parse_args()
    if args.rss_child:
        _rss_child(args.rss_child)
        return
    import platform
    import torch
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cpu, torch {torch.__version__}, "
                          f"cuda {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}"}
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        if args.synthetic:
            args.data = synthetic_images(work / "synthetic", args.synthetic)
            results["data"] = f"{args.synthetic} synthetic 256x256 PNGs"
        else:
            results["data"] = str(args.data)
        for part, fn in (("throughput", part_throughput), ("rss", part_rss), ("f1", part_f1),
                         ("parity", part_parity)):
            if args.part == part or (args.part == "all" and part != "parity"):
                t0 = time.perf_counter()
                results[part] = fn(args, work)
                results[part]["bench_seconds"] = round(time.perf_counter() - t0, 1)
                print(json.dumps({part: results[part]}, indent=2), flush=True)
    prev = json.loads((args.out / "results.json").read_text()) if (args.out / "results.json").exists() else {}
    prev.update(results)
    (args.out / "results.json").write_text(json.dumps(prev, indent=2) + "\n")


if __name__ == "__main__":
    main()
