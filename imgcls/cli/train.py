"""`imgcls train`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import Device, OptSrc, Quiet, Seed, command

O = typer.Option
EPILOG = ("Examples: imgcls train --model tf_efficientnet_lite0 --pretrained --epochs 10  |  "
          "imgcls train data/splits.csv --model resnet10t --heads multi --branch deep --loss focal --sampler weighted  |  "
          "imgcls train --folds all --model efficientnet_b4 --amp  |  imgcls train --resume outputs/runs/RUN  |  "
          "torchrun --nproc_per_node 2 -m imgcls train --model resnet10t")


@command("train", epilog=EPILOG)
def train(ctx: typer.Context,
          src: OptSrc = None,
          model: Annotated[str, O(help="timm model name.")] = "tf_efficientnet_lite0",
          pretrained: Annotated[bool, O(help="Start from pretrained weights (package-shipped, else timm hub cache).")] = False,
          weights: Annotated[Optional[Path], O(help="Start from this local weight file.")] = None,
          img_size: Annotated[Optional[int], O(help="Input size (default: the model's).")] = None,
          resize_mode: Annotated[str, O(help="squash | crop | pad (how images become square).")] = "squash",
          interpolation: Annotated[str, O(help="Resize filter: bilinear | bicubic | nearest.")] = "bilinear",
          drop_rate: Annotated[float, O(help="Dropout before the classifier.")] = 0.0,
          freeze_backbone: Annotated[bool, O(help="Train only the classifier / heads.")] = False,
          channels_last: Annotated[bool, O(help="channels_last memory format (faster convs on CPU/GPU).")] = False,
          compile: Annotated[bool, O("--compile", help="torch.compile the model.")] = False,
          heads: Annotated[str, O(help="single (one softmax) | multi (one head per label column).")] = "single",
          head_columns: Annotated[str, O(help="Label columns for --heads multi.")] = "mask,gender,age_band",
          head_weights: Annotated[str, O(help="Per-head loss weights, e.g. 1,1,2 (default all 1).")] = "",
          branch: Annotated[str, O(help="Multi heads: shallow (linear) | deep (MLP branch per head).")] = "shallow",
          loss: Annotated[str, O(help="ce | focal | label-smoothing | f1.")] = "ce",
          smoothing: Annotated[float, O(help="Label smoothing for --loss label-smoothing.")] = 0.1,
          focal_gamma: Annotated[float, O(help="Gamma of --loss focal.")] = 2.0,
          class_weights: Annotated[str, O(help="none | auto (inverse class frequency in the loss).")] = "none",
          sampler: Annotated[str, O(help="shuffle | weighted (class-balanced batches).")] = "shuffle",
          aug: Annotated[str, O(help="none | light | medium | heavy (torchvision transforms v2).")] = "medium",
          mix: Annotated[str, O(help="none | cutmix | mixup | cutmix-vertical (label-preserving halves).")] = "none",
          mix_prob: Annotated[float, O(help="Probability a batch is mixed.")] = 0.5,
          mix_alpha: Annotated[float, O(help="Beta(alpha, alpha) of the mixing ratio (cutmix / mixup).")] = 1.0,
          optimizer: Annotated[str, O(help="adamw | adam | sgd | sam (Sharpness-Aware Minimization over "
                                      "--sam-base: two forward/backward passes a step).")] = "adamw",
          sam_base: Annotated[str, O(help="--optimizer sam: the optimizer it wraps (adamw | adam | sgd).")] = "adamw",
          sam_rho: Annotated[float, O(help="--optimizer sam: neighbourhood radius.")] = 0.05,
          sam_adaptive: Annotated[bool, O(help="--optimizer sam: ASAM (radius scaled by each weight).")] = False,
          lr: Annotated[float, O(help="Peak learning rate.")] = 1e-3,
          weight_decay: Annotated[float, O(help="Weight decay.")] = 0.01,
          momentum: Annotated[float, O(help="SGD momentum (--optimizer sgd, --sam-base sgd).")] = 0.9,
          scheduler: Annotated[str, O(help="cosine | cosine-restarts | plateau | onecycle | none.")] = "cosine",
          warmup_epochs: Annotated[int, O(help="Linear warm-up epochs.")] = 0,
          min_lr: Annotated[float, O(help="Lowest learning rate of the schedule.")] = 1e-6,
          epochs: Annotated[int, O(help="Epochs.")] = 10,
          batch_size: Annotated[int, O(help="Batch size per process.")] = 32,
          grad_accum: Annotated[int, O(help="Accumulate gradients over N batches.")] = 1,
          amp: Annotated[Optional[bool], O("--amp/--no-amp", help="Mixed precision: fp16 + scaler on CUDA, bf16 "
                                           "autocast on CPU. Default: on for CUDA, off on CPU.")] = None,
          ema: Annotated[bool, O(help="Evaluate / save an exponential moving average of the weights.")] = False,
          ema_decay: Annotated[float, O(help="--ema: the decay its warmup rises to.")] = 0.998,
          early_stop: Annotated[int, O(help="Stop after N epochs without val macro-F1 gain (0: off).")] = 0,
          seed: Seed = 0,
          deterministic: Annotated[bool, O(help="Deterministic algorithms (slower).")] = False,
          folds: Annotated[Optional[str], O(help="all | K | K,L: train these folds of a k-fold split.")] = None,
          val_split: Annotated[float, O(help="Validation fraction when the data has no split column.")] = 0.2,
          cache: Annotated[str, O(help="ram | disk | none: decoded-image cache.")] = "ram",
          workers: Annotated[Optional[int], O(help="DataLoader worker processes. Default: 0 when training on "
                                              "the CPU from the decoded-image cache (the model uses every core), "
                                              "else min(8, cores); the cache is built over min(8, cores).")] = None,
          device: Device = "auto",
          out: Annotated[Path, O(help="Folder of runs.")] = Path("outputs/runs"),
          name: Annotated[Optional[str], O(help="Run name (default: time-model).")] = None,
          config: Annotated[Optional[Path], O(help="Start from a config.yaml; flags override it.")] = None,
          resume: Annotated[Optional[Path], O(help="Continue this run folder from its last.pt.")] = None,
          quiet: Quiet = False) -> None:
    """Train a timm model: single or multi-branch heads, imbalance tools, k-fold, resumable -> outputs/runs/<RUN>/."""
    from imgcls.train import TrainConfig, run_train
    # flags typed on the command line override --config / --resume (compared by name: typer may vendor click)
    given = {k for k in ctx.params if getattr(ctx.get_parameter_source(k), "name", "") == "COMMANDLINE"}
    values = dict(ctx.params)
    values["head_columns"] = [c.strip() for c in head_columns.split(",") if c.strip()]
    values["head_weights"] = [float(w) for w in head_weights.split(",") if w.strip()] if head_weights else []
    for k in ("src", "weights", "out"):
        values[k] = str(values[k]) if values[k] is not None else None
    for k in ("config", "resume", "quiet"):
        values.pop(k)
    base = None
    if resume is not None:
        base = TrainConfig.load(Path(resume) / "config.yaml")
    elif config is not None:
        base = TrainConfig.load(config)
    if base is None:
        cfg = TrainConfig.from_dict(values)
    else:
        d = base.to_dict()
        d.update({k: values[k] for k in values if k in given})
        cfg = TrainConfig.from_dict(d)
    run_train(cfg, resume=resume)
