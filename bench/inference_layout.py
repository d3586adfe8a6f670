"""The inference layout (imgcls.device.inference_layout): one forward pass of a batch in the default (NCHW) layout vs
channels_last vs channels_last with the batch norms folded into their convolutions (what inference_layout returns),
alternated in one process, and the largest difference of each from the default layout's outputs.

usage: python bench/inference_layout.py [--model tf_efficientnet_lite0] [--size 160] [--batch 64] [--reps 5]
       (clean's embedding pass: lite0 at 160 px, batch 64; predict in the end-to-end benchmark: 96 px, batch 32)
"""
from __future__ import annotations

import argparse
import copy
import os
import time

import torch

import timm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tf_efficientnet_lite0")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    torch.manual_seed(0)
    nchw = timm.create_model(a.model, num_classes=0).eval()
    nhwc = copy.deepcopy(nchw).to(memory_format=torch.channels_last)
    from imgcls.device import inference_layout
    folded = inference_layout(copy.deepcopy(nchw), torch.device("cpu"), a.size)
    x = torch.randn(a.batch, 3, a.size, a.size)
    xl = x.contiguous(memory_format=torch.channels_last)
    times = {"nchw": [], "channels_last": [], "folded": []}
    with torch.inference_mode():
        ref = nchw(x)
        diff = (ref - nhwc(xl)).abs().max().item()           # also the warm-up of all three
        diff_folded = (ref - folded(xl)).abs().max().item()
        for _ in range(a.reps):
            for name, net, inp in (("nchw", nchw, x), ("channels_last", nhwc, xl), ("folded", folded, xl)):
                t = time.perf_counter()
                net(inp)
                times[name].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    print(f"{a.model} {a.size}px batch {a.batch}, torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}: "
          f"nchw {best['nchw']:.3f} s, channels_last {best['channels_last']:.3f} s "
          f"(ratio {best['channels_last'] / best['nchw']:.2f}), max |diff| {diff:.1e}; channels_last + folded batch "
          f"norms {best['folded']:.3f} s (ratio {best['folded'] / best['nchw']:.2f}, "
          f"{best['folded'] / best['channels_last']:.2f} of channels_last), max |diff| {diff_folded:.1e}")


if __name__ == "__main__":
    main()
