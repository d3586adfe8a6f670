"""Training throughput: `imgcls train` vs the loop timm's train.py wires from timm's own factories.

Both train the same model on the same ImageFolder (a class-stratified subset of it), batch size, image size and
epochs, in one process run, and both validate on the same held-out images each epoch. Printed: images/s of
training (train images x epochs / wall seconds of the whole run, data loading, validation and our decoded-image
cache build included) for both, and the ratio.

The reference is a plain baseline of train.py's wiring: timm.data.create_dataset / create_loader (its default
train transforms: RandomResizedCrop, flip, colour jitter; decoding every file every epoch), create_optimizer_v2,
create_scheduler_v2 (cosine), Mixup off, AMP when on CUDA.

    python bench/train_throughput.py /work/imgdata/out/openclipart_l1 --per-class 60 --model resnet10t \
        --img-size 128 --epochs 3 --batch-size 32 --workers 2
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


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


def ours(root: Path, model_name, img_size, epochs, batch_size, workers, lr, device, channels_last, amp, aug,
         our_workers):
    import pandas as pd
    from imgcls import manifest as mf
    from imgcls.train import TrainConfig, run_train
    # one manifest with split train/val = the same images the reference uses
    frames = []
    for part in ("train", "val"):
        df = mf.load(root / part, scan=True, workers=workers, announce=False)
        df["split"] = part
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    man = root / "splits.csv"
    mf.write(df, man)
    cfg = TrainConfig(src=str(man), model=model_name, img_size=img_size, epochs=epochs, batch_size=batch_size,
                      workers=our_workers, lr=lr, device=device, aug=aug, out=str(root / "runs"), name="ours",
                      channels_last=channels_last, amp=amp, pretrained=False)   # as the reference loop
    t0 = time.perf_counter()
    run = run_train(cfg)
    ours.workers = cfg.workers          # as resolved (auto when --our-workers is not given)
    ours.epoch_seconds = pd.read_csv(run / "metrics.csv")["epoch_seconds"].tolist()
    return time.perf_counter() - t0, int((df["split"] == "train").sum()) * epochs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--per-class", type=int, default=60)
    ap.add_argument("--model", default="resnet10t")
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--aug", default="medium", help="our preset (medium ~ timm's default RRC + flip + jitter)")
    ap.add_argument("--our-workers", type=int, default=None,
                    help="loader workers for imgcls (default: imgcls's own default, see default_workers)")
    ap.add_argument("--as-jpeg", type=int, default=0,
                    help="re-encode the subset as JPEG with this long side (e.g. 512: photo-sized files)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", action="store_true",
                    help="mixed precision on both sides, also on CPU (bf16 autocast); default: CUDA only")
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch
    from imgcls.console import set_quiet
    from imgcls.device import resolve_device
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="train_bench_"))
    try:
        train_dir, val_dir = subset_folder(args.folder, tmp / "data", args.per_class, args.seed, args.as_jpeg)
        set_quiet(True)
        amp = args.amp or device.type == "cuda"
        t_ref, n_ref = timm_reference(train_dir, val_dir, args.model, args.img_size, args.epochs, args.batch_size,
                                      args.workers, args.lr, device, amp=amp)
        print(f"timm reference loop: {t_ref:7.1f} s  {n_ref / t_ref:8.1f} images/s", flush=True)
        t_our, n_our = ours(tmp / "data", args.model, args.img_size, args.epochs, args.batch_size, args.workers,
                            args.lr, str(device), not args.no_channels_last, amp, args.aug,
                            args.our_workers)
        set_quiet(False)
        ref_ips, our_ips = n_ref / t_ref, n_our / t_our
        print(f"device {device}, torch threads {torch.get_num_threads()}, model {args.model}, {args.img_size}px, "
              f"batch {args.batch_size}, {args.epochs} epochs, {n_our // args.epochs} train images, "
              f"workers {args.workers} (imgcls {ours.workers}), files {'JPEG ' + str(args.as_jpeg) + 'px' if args.as_jpeg else 'as given'}, "
              f"imgcls --aug {args.aug}, channels_last {not args.no_channels_last}, amp {amp}")
        print(f"timm reference loop: {t_ref:7.1f} s  {ref_ips:8.1f} images/s")
        print(f"imgcls train:        {t_our:7.1f} s  {our_ips:8.1f} images/s  (decoded-image cache build included)")
        print(f"ratio imgcls / timm: {our_ips / ref_ips:.2f}x")
        n_train = n_our // args.epochs
        re, oe = timm_reference.epoch_seconds, ours.epoch_seconds
        print(f"epochs only (train + validation, setup excluded), median s/epoch: timm {np.median(re):.1f} "
              f"({n_train / np.median(re):.1f} images/s), imgcls {np.median(oe):.1f} ({n_train / np.median(oe):.1f} "
              f"images/s); per epoch timm {[round(x, 1) for x in re]}, imgcls {[round(x, 1) for x in oe]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
