"""`imgcls train`: timm backbones, single / multi-branch heads, imbalance tools, resumable runs, DDP.

Python use:  from imgcls.train import run_train, TrainConfig
             run_dir = run_train(TrainConfig(src="data/splits.csv", model="resnet10t", epochs=5))
             run_train(cfg, callbacks=[...])   # imgcls.train.callbacks.Callback objects (trackers, tune, yours)
"""
from __future__ import annotations

from imgcls.lazy import lazy_exports

# imported when first used (imgcls.lazy): `imgcls train --help` (and preprocess's, which names train's augmentation
# presets) reads imgcls.train.config alone
__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "config": ("TrainConfig",),
    "run": ("run_train", "default_workers")})
