"""The compute floor of one training epoch: the model's own work with no data pipeline at all.

Times forward + loss + backward + optimizer step over ready-made random batches (the shapes of an epoch of
`bench/train_throughput.py`: N_TRAIN images in batches of B, the last one partial, then a no-grad forward over
N_VAL images in batches of 2B), in fp32 or bf16 autocast, with torch's per-tensor AdamW (what timm's factory
leaves on the CPU) and with the fused one. No loader, no augmentation, no decoding, no metrics: no training loop
can run an epoch faster than this, so `timm epoch seconds / floor` bounds the per-epoch ratio any loop can reach
against the timm reference on the same model and precision.

    python bench/train_floor.py --model resnet10t --img-size 96 --batch-size 32 --n-train 741 --n-val 185
"""
from __future__ import annotations

import argparse
import time


def epoch_floor(model_name: str, img_size: int, batch_size: int, n_train: int, n_val: int, n_classes: int,
                channels_last: bool, fused: bool, amp: bool, epochs: int) -> list[float]:
    import torch
    from imgcls.weights import create_model
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=n_classes, pretrained=False)
    mf = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=mf)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, fused=fused or None,
                            foreach=False if not fused else None)
    sizes = [batch_size] * (n_train // batch_size) + ([n_train % batch_size] if n_train % batch_size else [])
    vsizes = [2 * batch_size] * (n_val // (2 * batch_size)) + ([n_val % (2 * batch_size)]
                                                                 if n_val % (2 * batch_size) else [])
    batches = [(torch.randn(b, 3, img_size, img_size).contiguous(memory_format=mf),
                torch.randint(0, n_classes, (b,))) for b in sizes]
    vbatches = [torch.randn(b, 3, img_size, img_size).contiguous(memory_format=mf) for b in vsizes]
    loss_fn = torch.nn.CrossEntropyLoss()
    out = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        for x, y in batches:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for x in vbatches:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                    model(x).argmax(1)
        out.append(time.perf_counter() - t0)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet10t")
    ap.add_argument("--img-size", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--n-train", type=int, default=741)
    ap.add_argument("--n-val", type=int, default=185)
    ap.add_argument("--classes", type=int, default=17)
    ap.add_argument("--epochs", type=int, default=4, help="timed epochs; the first is reported apart (warm-up)")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast")
    ap.add_argument("--no-channels-last", action="store_true")
    args = ap.parse_args()
    import numpy as np
    import torch
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model {args.model}, {args.img_size}px, "
          f"batch {args.batch_size}, {args.n_train} train / {args.n_val} val images, amp {args.amp}, "
          f"channels_last {not args.no_channels_last}")
    for fused in (False, True):
        s = epoch_floor(args.model, args.img_size, args.batch_size, args.n_train, args.n_val, args.classes,
                        not args.no_channels_last, fused, args.amp, args.epochs)
        print(f"AdamW {'fused     ' if fused else 'per-tensor'}: first epoch {s[0]:.2f} s, then median "
              f"{np.median(s[1:]):.2f} s/epoch ({args.n_train / np.median(s[1:]):.1f} train images/s) "
              f"{[round(x, 2) for x in s]}")


if __name__ == "__main__":
    main()
