"""The optimiser and the learning-rate schedule of a run, built with timm's / torch's factories from a TrainConfig.
--optimizer takes every name of timm's optimizer registry (timm.optim.list_optimizers()) plus ours (sam, over any
timm optimizer); --scheduler's names (SCHEDULERS) are declared with the options in imgcls.train.config."""
from __future__ import annotations

import torch

from imgcls.errors import UserError
from imgcls.run_names import BEST_BY
from imgcls.train.config import SCHEDULERS  # noqa: F401  (the names --scheduler accepts; --optimizer's: config)

NEEDS_CUDA = ("bnb", "fused")       # timm's bitsandbytes and APEX optimizers assert a CUDA device


def check_optimizer_device(cfg, device: torch.device) -> None:
    """bitsandbytes / APEX optimizers need CUDA: refused in one line before the data is read on another device."""
    name = cfg.sam_base if cfg.optimizer == "sam" else cfg.optimizer
    if device.type != "cuda" and name.startswith(NEEDS_CUDA):
        raise UserError(f"--optimizer {name} is a CUDA-only optimizer (timm's bitsandbytes / APEX) and this run is "
                        f"on {device.type}; use another (e.g. adamw), or --device cuda")


def second_order(cfg) -> bool:
    """AdaHessian estimates the Hessian from the gradients' graph: its backward keeps the graph (create_graph)."""
    return (cfg.sam_base if cfg.optimizer == "sam" else cfg.optimizer) == "adahessian"


def make_optimizer(model, cfg):
    from timm.optim import create_optimizer_v2
    cfg.validate()
    name = cfg.sam_base if cfg.optimizer == "sam" else cfg.optimizer
    kw = {"momentum": cfg.momentum}     # timm passes it only to the optimizers that have a momentum
    if name == "sgd" and cfg.momentum == 0:
        name = "momentum"   # timm's "sgd" is Nesterov, which needs momentum > 0; "momentum" is plain torch SGD
    # torch's fused kernels (CPU and CUDA) update every tensor in one pass: on this 2-core CPU an AdamW step of
    # resnet10t takes 5-8 ms fused vs 40 ms with the default per-tensor loop (docs/BENCHMARKS.md)
    try:
        opt = create_optimizer_v2(model, opt=name, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):   # a device / dtype without fused kernels
        opt = create_optimizer_v2(model, opt=name, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)
    if cfg.optimizer == "sam":
        from imgcls.train.sam import SAM
        opt = SAM(opt, rho=cfg.sam_rho, adaptive=cfg.sam_adaptive)
    return opt


def make_scheduler(optimizer, cfg, steps_per_epoch: int):
    """(scheduler, per_step). cosine and plateau step once per epoch; onecycle (torch) and cosine-restarts (timm,
    counted in updates) once per optimiser update."""
    cfg.validate()
    if cfg.scheduler == "none":
        return None, False
    if cfg.scheduler == "onecycle":
        pct = min(0.9, max(cfg.warmup_epochs, 0.3 * cfg.epochs) / max(cfg.epochs, 1))
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                   pct_start=pct), True
    if cfg.scheduler == "plateau":
        return _Plateau(optimizer, cfg.min_lr, BEST_BY[cfg.metric].direction), False
    import logging

    from timm.scheduler import CosineLRScheduler
    # timm warns that a one-step cosine "will have no effect" (e.g. --epochs 1): true and expected, not for users
    log = logging.getLogger("timm.scheduler.cosine_lr")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        if cfg.scheduler == "cosine-restarts":
            # three cycles over the run, counted in optimiser updates (t_in_epochs=False): stepped per epoch, a run
            # of fewer than 6 epochs would get one-epoch "cycles", i.e. a constant lr
            warm_t = cfg.warmup_epochs * steps_per_epoch
            cycle = max(1, (cfg.epochs * steps_per_epoch - warm_t) // 3)
            return _PerUpdate(CosineLRScheduler(
                optimizer, t_initial=cycle, lr_min=cfg.min_lr, cycle_limit=100, cycle_decay=1.0, warmup_t=warm_t,
                warmup_lr_init=cfg.lr * 0.01, warmup_prefix=True, t_in_epochs=False)), True
        return CosineLRScheduler(optimizer, t_initial=max(1, cfg.epochs - cfg.warmup_epochs), lr_min=cfg.min_lr,
                                 warmup_t=cfg.warmup_epochs, warmup_lr_init=cfg.lr * 0.01, warmup_prefix=True), False
    finally:
        log.setLevel(level)


class _PerUpdate:
    """A timm scheduler built with t_in_epochs=False behind torch's per-update `step()`; the update count is part of
    its state, so a resumed run continues the schedule where it stopped."""

    def __init__(self, s):
        self.s, self.updates = s, 0

    def step(self):
        self.updates += 1
        self.s.step_update(self.updates)

    def state_dict(self):
        return {"timm": self.s.state_dict(), "updates": self.updates}

    def load_state_dict(self, state):
        if "updates" not in state:
            raise UserError("this run's cosine-restarts schedule was saved per epoch by an older imgcls; resume it "
                            "with that version, or start a new run")
        self.s.load_state_dict(state["timm"])
        self.updates = int(state["updates"])
        self.s.step_update(self.updates)


class _Plateau:
    """Halve the lr when the run's --metric (`direction`: BEST_BY's) has not improved for 1 epoch (torch's
    ReduceLROnPlateau, whose state is checkpointed, unlike timm's deprecated PlateauLRScheduler), behind timm's
    `step(epoch, metric)` call."""

    def __init__(self, optimizer, min_lr: float, direction: str = "maximize"):
        mode = "min" if direction == "minimize" else "max"
        self.s = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.5, patience=1,
                                                            min_lr=min_lr)

    def step(self, epoch, metric=None):
        if metric is not None:
            self.s.step(metric)

    def state_dict(self):
        return self.s.state_dict()

    def load_state_dict(self, state):
        self.s.load_state_dict(state)
