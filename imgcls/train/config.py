"""Every option of a training run, resolved, in one dataclass; written to <run>/config.yaml.
`imgcls train --config FILE` starts from such a file; flags given on the command line override it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from imgcls.errors import UserError


@dataclass
class TrainConfig:
    src: str | None = None
    model: str = "tf_efficientnet_lite0"
    pretrained: bool = False
    weights: str | None = None
    img_size: int | None = None          # None: the model's pretrained input size (224 for most)
    resize_mode: str = "squash"
    interpolation: str = "bilinear"
    drop_rate: float = 0.0
    freeze_backbone: bool = False
    channels_last: bool = False
    compile: bool = False
    heads: str = "single"                # single | multi
    head_columns: list = field(default_factory=lambda: ["mask", "gender", "age_band"])
    head_weights: list = field(default_factory=list)
    branch: str = "shallow"
    loss: str = "ce"
    smoothing: float = 0.1
    focal_gamma: float = 2.0
    class_weights: str = "none"          # none | auto
    sampler: str = "shuffle"             # shuffle | weighted
    aug: str = "medium"
    mix: str = "none"
    mix_prob: float = 0.5
    mix_alpha: float = 1.0
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    momentum: float = 0.9
    sam_base: str = "adamw"              # --optimizer sam: the optimizer SAM wraps (adamw | adam | sgd)
    sam_rho: float = 0.05
    sam_adaptive: bool = False           # ASAM's parameter-scaled neighbourhood
    scheduler: str = "cosine"
    warmup_epochs: int = 0
    min_lr: float = 1e-6
    epochs: int = 10
    batch_size: int = 32
    grad_accum: int = 1
    amp: bool | None = None              # None: on for CUDA (fp16 + scaler), off on CPU
    ema: bool = False
    ema_decay: float = 0.998
    early_stop: int = 0
    seed: int = 0
    deterministic: bool = False
    folds: str | None = None             # None | "all" | "K" | "K,L"
    val_split: float = 0.2
    cache: str = "ram"                   # ram | disk | none
    workers: int | None = None           # None: auto (imgcls.train.default_workers)
    device: str = "auto"
    out: str = "outputs/runs"
    name: str | None = None

    def validate(self) -> None:
        """Every choice-valued option, checked before any data is read: a typo fails in a second, not after the
        decoded-image cache is built."""
        from imgcls.train.data import AUG_PRESETS, INTERPOLATIONS, RESIZE_MODES
        from imgcls.train.losses import LOSSES
        from imgcls.train.optim import OPTIMIZERS, SAM_BASES, SCHEDULERS
        from imgcls.train.mix import MIXES
        choices = {"heads": ("single", "multi"), "branch": ("shallow", "deep"), "loss": LOSSES,
                   "class_weights": ("none", "auto"), "sampler": ("shuffle", "weighted"), "aug": AUG_PRESETS,
                   "mix": MIXES, "optimizer": OPTIMIZERS, "sam_base": SAM_BASES, "scheduler": SCHEDULERS,
                   "resize_mode": RESIZE_MODES, "interpolation": INTERPOLATIONS, "cache": ("ram", "disk", "none")}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise UserError(f"unknown --{name.replace('_', '-')} '{value}'; use one of: {', '.join(allowed)}")
        if self.optimizer == "sam" and not self.sam_rho > 0:
            raise UserError(f"--sam-rho must be > 0 (got {self.sam_rho}); 0.05 is the SAM paper's default")
        if self.grad_accum < 1 or self.batch_size < 1 or self.epochs < 1:
            raise UserError("--epochs, --batch-size and --grad-accum must be >= 1")
        if not 0 <= self.mix_prob <= 1:
            raise UserError(f"--mix-prob must be between 0 and 1 (got {self.mix_prob})")
        if not self.mix_alpha > 0:
            raise UserError(f"--mix-alpha must be > 0 (got {self.mix_alpha}); 1.0 draws the mixing ratio uniformly")
        if not 0 <= self.momentum < 1:
            raise UserError(f"--momentum must be in [0, 1) (got {self.momentum})")
        if not 0 <= self.ema_decay < 1:
            raise UserError(f"--ema-decay must be in [0, 1) (got {self.ema_decay}); timm's train.py uses 0.9998")

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path) -> Path:
        import yaml
        from imgcls.fsutil import write_text
        return write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UserError(f"unknown option(s) in config: {', '.join(unknown)}; see imgcls train --help")
        return cls(**d)

    @classmethod
    def load(cls, path) -> "TrainConfig":
        import yaml
        path = Path(path)
        if not path.is_file():
            raise UserError(f"config file {path} does not exist; give a config.yaml written by imgcls train")
        d = yaml.safe_load(path.read_text()) or {}
        if not isinstance(d, dict):
            raise UserError(f"{path} is not a mapping of options")
        return cls.from_dict(d)
