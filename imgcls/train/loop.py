"""The training loop: one run (or one fold), resumable at epoch boundaries, CPU / CUDA / DDP."""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from imgcls import metrics
from imgcls.console import console, info, is_quiet, progress_bar
from imgcls.errors import UserError
from imgcls.fsutil import write_table
from imgcls.model_meta import ModelMeta
from imgcls.train.callbacks import Hooks
from imgcls.train.checkpoint import read_checkpoint, save_checkpoint
from imgcls.train.config import TrainConfig
from imgcls.train.data import (CachedImages, FileImages, ListSampler, augment_transform, epoch_indices,
                               random_erasing)
from imgcls.train.heads import as_list, build_model, decode_proba, head_parameters
from imgcls.train.losses import Criterion, class_weights_auto
from imgcls.train.mix import mix_batch
from imgcls.train.optim import make_optimizer, make_scheduler
from imgcls.train.sam import frozen_bn_stats

PLOT_EVERY_S = 60.0   # curves.png / confusion_matrix.png: redrawn at most this often, and after the last epoch


# ---------------------------------------------------------------------------------------------------------------
# Distributed helpers (torchrun sets RANK / WORLD_SIZE / LOCAL_RANK)
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1

    def barrier(self):
        if self.on:
            torch.distributed.barrier()

    def broadcast(self, obj):
        if not self.on:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


def init_distributed(device_spec: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_spec != "cpu"
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(rank, world, local)


class RunLog:
    """Lines to <run>/train.log (and to the terminal unless --quiet)."""

    def __init__(self, path: Path | None, echo: bool = True):
        self.path, self.echo = path, echo

    def __call__(self, msg: str, terminal: bool = True):
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")
        if terminal and self.echo:
            info(msg)


# ---------------------------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class FoldData:
    """What one run trains and validates on (rows of the cached arrays)."""
    train_idx: np.ndarray
    val_idx: np.ndarray
    targets: np.ndarray            # [N, n_heads] head class indices for every cached row
    final: np.ndarray              # [N] final class index
    frame: pd.DataFrame            # the usable manifest rows, aligned with the cache
    images: np.ndarray | None      # decoded cache [N, S, S, 3] (None with --cache none)
    paths: list


def _unwrap(model):
    model = getattr(model, "module", model)          # DDP
    return getattr(model, "_orig_mod", model)        # torch.compile


def train_run(cfg: TrainConfig, meta: ModelMeta, data: FoldData, run_dir: Path, device: torch.device, dist: Dist,
              fold: int | None = None, resume: bool = False, stop_after: int | None = None,
              callbacks=None, parent_dir: Path | None = None, folds_after: int = 0) -> dict:
    """Train one model; returns {"best_f1", "best_epoch", "val_predictions": DataFrame, "history", "summary"}.
    callbacks: imgcls.train.callbacks.Callback objects, called on rank 0 only (see that module)."""
    log = RunLog(run_dir / "train.log" if dist.main else None, echo=dist.main)
    hooks = Hooks(callbacks, main=dist.main, distributed=dist.on, broadcast=dist.broadcast)
    sizes = meta.head_sizes
    n_final = meta.n_classes
    head_names = meta.head_names
    multi = meta.multi

    # data ------------------------------------------------------------------------------------------------------
    aug = augment_transform(cfg.aug, meta.img_size)
    erase = random_erasing(cfg.aug)
    tgt = data.targets
    if data.images is not None:
        train_ds = CachedImages(data.images, tgt[data.train_idx], meta.mean, meta.std, aug, erase,
                                rows=data.train_idx)
        val_ds = CachedImages(data.images, tgt[data.val_idx], meta.mean, meta.std, rows=data.val_idx)
    else:
        tp = [data.paths[i] for i in data.train_idx]
        vp = [data.paths[i] for i in data.val_idx]
        args = (meta.img_size, meta.resize_mode, meta.interpolation, meta.mean, meta.std)
        train_ds = FileImages(tp, tgt[data.train_idx], *args, aug, erase)
        val_ds = FileImages(vp, tgt[data.val_idx], *args)
    n_train = len(data.train_idx)
    train_final = data.final[data.train_idx]
    bs = cfg.batch_size
    loader_kw = {"num_workers": cfg.workers, "pin_memory": device.type == "cuda"}
    if cfg.workers > 0:
        loader_kw.update(persistent_workers=True, prefetch_factor=4)
    sampler = ListSampler([])
    train_loader = torch.utils.data.DataLoader(train_ds, batch_size=bs, sampler=sampler, **loader_kw)
    val_loader = torch.utils.data.DataLoader(val_ds, batch_size=bs * 2, shuffle=False, **loader_kw)
    per_rank = math.ceil(n_train / dist.world)
    steps_per_epoch = max(1, (per_rank - (1 if per_rank % bs == 1 and per_rank > 1 else 0) + bs - 1) // bs)
    updates_per_epoch = max(1, math.ceil(steps_per_epoch / cfg.grad_accum))

    # model -----------------------------------------------------------------------------------------------------
    torch.manual_seed(cfg.seed)
    model = build_model(meta, pretrained=cfg.pretrained, weights=cfg.weights)
    if cfg.freeze_backbone:
        keep = {id(p) for p in head_parameters(model)}
        for p in model.parameters():
            p.requires_grad_(id(p) in keep)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    ema = None
    if cfg.ema:
        from timm.utils import ModelEmaV3
        # decay warms up from 0 with the update count (timm's ModelEmaV3 applies the warmup only when update() is
        # given that count, as timm's train.py does): a short run's EMA follows the model instead of its init
        ema = ModelEmaV3(model, decay=cfg.ema_decay, use_warmup=True)
    ema_updates = 0
    optimizer = make_optimizer(model, cfg)
    sam = cfg.optimizer == "sam"
    scheduler, sched_per_step = make_scheduler(optimizer, cfg, updates_per_epoch)
    use_amp = cfg.amp
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and device.type == "cuda")
    weights = None
    if cfg.class_weights == "auto":     # cfg's choices were checked by TrainConfig.validate (run_train)
        weights = [class_weights_auto(tgt[data.train_idx, h], k) for h, k in enumerate(sizes)]
    crits = [Criterion(cfg.loss, weights[h] if weights else None, cfg.smoothing, cfg.focal_gamma)
             for h in range(len(sizes))]
    head_w = [float(w) for w in cfg.head_weights] if cfg.head_weights else [1.0] * len(sizes)
    if len(head_w) != len(sizes):
        raise UserError(f"--head-weights has {len(head_w)} values for {len(sizes)} heads ({', '.join(head_names)})")

    start_epoch, best_f1, best_epoch, bad_epochs, history = 0, -1.0, -1, 0, []
    best_preds = None
    if resume and (run_dir / "last.pt").is_file():
        ck = read_checkpoint(run_dir / "last.pt")
        st = ck["train_state"]
        model.load_state_dict(ck["raw_state_dict"])
        optimizer.load_state_dict(st["optimizer"])
        if scheduler is not None and st.get("scheduler") is not None:
            scheduler.load_state_dict(st["scheduler"])
        if ema is not None and st.get("ema") is not None:
            ema.module.load_state_dict(st["ema"])
            ema_updates = int(st.get("ema_updates", (st["epoch"] + 1) * updates_per_epoch))
        if st.get("scaler"):
            scaler.load_state_dict(st["scaler"])
        start_epoch, best_f1, best_epoch = st["epoch"] + 1, st["best_f1"], st["best_epoch"]
        bad_epochs, history = st["bad_epochs"], [dict(h) for h in st["history"]]
        if (run_dir / "val_predictions.csv").is_file():
            best_preds = pd.read_csv(run_dir / "val_predictions.csv", keep_default_na=False, dtype={"label": str,
                                                                                                   "pred": str})
        if st.get("finished"):
            log(f"{run_dir.name}: already finished ({st['epoch'] + 1} epochs)")
            return {"best_f1": best_f1, "best_epoch": best_epoch, "val_predictions": best_preds, "history": history,
                    "summary": None}
        log(f"resuming {run_dir} at epoch {start_epoch + 1}")
    train_model = model
    if cfg.compile:
        train_model = torch.compile(model)
    if dist.on:
        from torch.nn.parallel import DistributedDataParallel as DDP
        train_model = DDP(train_model, device_ids=[device.index] if device.type == "cuda" else None)

    sam_desc = (f"SAM (rho {cfg.sam_rho}{', adaptive' if cfg.sam_adaptive else ''}) over {cfg.sam_base}, "
                if sam else "")
    if dist.main:
        log(f"training {meta.model} ({'fold ' + str(fold) + ', ' if fold is not None else ''}"
            f"{n_train} train / {len(data.val_idx)} val images, {n_final} classes"
            f"{', heads ' + ' / '.join(head_names) if multi else ''}) "
            f"on {device}{f' x{dist.world} processes (DDP)' if dist.on else ''}; "
            f"{'AMP ' + str(amp_dtype).split('.')[-1] + ', ' if use_amp else ''}"
            f"{sam_desc}"
            f"batch {bs}, {cfg.epochs} epochs")
    def forward_backward(x, soft):
        """One forward (autocast) and scaled backward of the weighted per-head loss; returns (outputs, loss)."""
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            outs = as_list(train_model(x))
        loss = sum(w * c(o.float(), s) for w, c, o, s in zip(head_w, crits, outs, soft))
        scaler.scale(loss / cfg.grad_accum).backward()
        return outs, loss

    hooks("on_run_start", {"run_dir": run_dir, "config": cfg.to_dict(), "classes": list(meta.classes),
                           "fold": fold, "total_epochs": cfg.epochs, "start_epoch": start_epoch,
                           "parent_dir": parent_dir, "model": meta.model, "train_images": n_train,
                           "val_images": len(data.val_idx)})
    table = EpochTable(multi_fold=fold is not None)
    stop = False
    pending_confusion, plotted_at = None, time.monotonic()
    best_per_class = None
    if start_epoch and (run_dir / "per_class.csv").is_file():
        best_per_class = pd.read_csv(run_dir / "per_class.csv", keep_default_na=False, dtype={"class": str})
    updates = 0                              # optimiser updates in this process's run (the step of on_step_end)
    eta = RunEta(cfg.epochs - start_epoch, later_epochs=folds_after * cfg.epochs)   # the whole run: later folds too
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed * 1000 + epoch)
        mix_rng = np.random.default_rng([cfg.seed, epoch, dist.rank, 17])
        idx = epoch_indices(n_train, train_final, cfg.seed, epoch, cfg.sampler == "weighted", dist.rank, dist.world)
        if len(idx) % bs == 1 and len(idx) > 1:
            idx = idx[:-1]  # a batch of one breaks BatchNorm
        sampler.indices = idx
        sampler.base = (cfg.seed * 1_000_003 + epoch * 7_919) % (2 ** 31)
        train_model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        optimizer.zero_grad(set_to_none=True)
        sam_batches = []
        n_steps = math.ceil(len(idx) / bs)
        eta.start_epoch(n_steps)
        desc = f"epoch {epoch + 1}/{cfg.epochs}" + (f" fold {fold}" if fold is not None else "")
        shown_at = 0.0
        with progress_bar(desc, n_steps) if dist.main else _null_bar() as advance:
            for step, (x, y) in enumerate(train_loader):
                x = x.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                group = _final_of(y, meta, sizes) if cfg.mix == "cutmix-vertical" else None
                x, soft = mix_batch(x, y, sizes, cfg.mix, cfg.mix_prob, cfg.mix_alpha, mix_rng, group)
                last_in_update = (step + 1) % cfg.grad_accum == 0 or step + 1 == n_steps
                # SAM: the first pass only picks the direction of the perturbation, from each process's own
                # gradient (no all-reduce, as in the SAM paper's per-device m-sharpness); the second pass syncs
                with train_model.no_sync() if dist.on and (sam or not last_in_update) else _nullctx():
                    outs, loss = forward_backward(x, soft)
                if sam:
                    sam_batches.append((x, soft))
                if last_in_update:
                    if sam:   # second pass over this update's batches at w + e, BatchNorm statistics untouched
                        optimizer.perturb()
                        with frozen_bn_stats(train_model):
                            for j, (xj, sj) in enumerate(sam_batches):
                                last = j == len(sam_batches) - 1
                                with train_model.no_sync() if dist.on and not last else _nullctx():
                                    forward_backward(xj, sj)
                        optimizer.unperturb()
                        sam_batches.clear()
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    if ema is not None:
                        ema_updates += 1
                        ema.update(model, step=ema_updates)
                    if sched_per_step:
                        scheduler.step()
                    updates += 1
                    if hooks.wants_steps:
                        hooks("on_step_end", updates, {"loss": float(loss.detach()), "lr": _lr(optimizer),
                                                       "epoch": epoch + 1})
                loss_sum += loss.detach() * x.shape[0]
                correct += (outs[0].detach().argmax(1) == y[:, 0]).sum()
                seen += x.shape[0]
                eta.step()
                now = time.monotonic()
                if dist.main and not is_quiet() and (now - shown_at >= 0.5 or step + 1 == n_steps):
                    # the running loss reads the device (a sync): twice a second at most, never with --quiet
                    shown_at = now
                    advance(status=f"loss {(loss_sum / max(seen, 1)).item():.4f}  lr {_lr(optimizer):.2e}  "
                                   f"run ETA {eta.text()}")
                else:
                    advance()
        if dist.on:
            for t in (loss_sum, correct):
                torch.distributed.all_reduce(t)
            seen *= dist.world
        train_loss, train_acc = (loss_sum / max(seen, 1)).item(), (correct / max(seen, 1)).item()

        # validation (rank 0 evaluates the whole val set) ---------------------------------------------------------
        eval_model = ema.module if ema is not None else model
        row = None
        if dist.main:
            ev = evaluate(eval_model, val_loader, meta, sizes, crits, head_w, device, cfg.channels_last, use_amp,
                          amp_dtype, desc="validation" + (f" fold {fold}" if fold is not None else ""))
            lr = _lr(optimizer)
            row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc, "val_loss": ev["loss"],
                   "val_acc": ev["final"]["accuracy"], "val_macro_precision": ev["final"]["macro_precision"],
                   "val_macro_recall": ev["final"]["macro_recall"], "val_macro_f1": ev["final"]["macro_f1"]}
            if multi:
                for name, m in zip(head_names, ev["heads"]):
                    row[f"val_{name}_acc"] = m["accuracy"]
                    for k in ("macro_precision", "macro_recall", "macro_f1"):
                        row[f"val_{name}_{k}"] = m[k]
            row["lr"] = lr
            row["epoch_seconds"] = time.perf_counter() - t0
            history.append(row)
            improved = row["val_macro_f1"] > best_f1
            if improved:
                best_f1, best_epoch, bad_epochs = row["val_macro_f1"], epoch + 1, 0
                best_preds = val_predictions_frame(data, ev["proba"], meta, fold)
                save_checkpoint(run_dir / "best.pt", _unwrap(eval_model).state_dict(), meta,
                                epoch=epoch + 1, val_f1=best_f1)
                write_table(best_preds, run_dir / "val_predictions.csv")
                pred = ev["proba"].argmax(1)
                best_per_class = metrics.per_class(ev["y_final"], pred, list(meta.classes))
                best_per_class.insert(0, "best_epoch", epoch + 1)
                # the class counts this run trained on: predict's report compares a submission's shares with them
                best_per_class["train_support"] = np.bincount(data.final[data.train_idx],
                                                              minlength=len(meta.classes))
                write_table(best_per_class, run_dir / "per_class.csv")
                pending_confusion = (ev["y_final"], pred, list(meta.classes),
                                     f"best epoch {epoch + 1}, val macro-F1 {best_f1:.4f} ({len(pred)} val images)")
            else:
                bad_epochs += 1
            table.print(row, improved)
            log(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                terminal=False)
            write_table(pd.DataFrame(history), run_dir / "metrics.csv")
            stop = bool(cfg.early_stop and bad_epochs >= cfg.early_stop)
        stop = dist.broadcast(stop)
        metric = dist.broadcast(row["val_macro_f1"] if row else None)
        if scheduler is not None and not sched_per_step:
            scheduler.step(epoch + 1, metric)
        finished = stop or epoch + 1 == cfg.epochs
        last_epoch_here = finished or (stop_after is not None and epoch + 1 >= stop_after)
        if dist.main and (last_epoch_here or time.monotonic() - plotted_at >= PLOT_EVERY_S):
            curves_png(history, run_dir / "curves.png")
            if pending_confusion is not None:
                metrics.confusion_pngs(*pending_confusion[:3], run_dir, title=pending_confusion[3])
                pending_confusion = None
            plotted_at = time.monotonic()
        if dist.main:
            state = {"optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict() if scheduler is not None else None,
                     "ema": ema.module.state_dict() if ema is not None else None, "ema_updates": ema_updates,
                     "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                     "epoch": epoch, "best_f1": best_f1, "best_epoch": best_epoch, "bad_epochs": bad_epochs,
                     "history": history, "finished": finished, "torch_rng": torch.get_rng_state()}
            save_checkpoint(run_dir / "last.pt", _unwrap(eval_model).state_dict(), meta, epoch=epoch + 1,
                            raw_state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
                            train_state=state)
            if hooks.cbs:
                pcs = metrics.per_class(ev["y_final"], ev["proba"].argmax(1), list(meta.classes))
                hooks("on_epoch_end", epoch + 1, dict(row, improved=improved,
                                                      per_class_f1=dict(zip(pcs["class"], pcs["f1"].astype(float)))))
        hooks.check()
        dist.barrier()
        if stop:
            if dist.main:
                log(f"early stop: val macro-F1 did not improve for {cfg.early_stop} epochs (best {best_f1:.4f} at "
                    f"epoch {best_epoch})")
            break
        if stop_after is not None and epoch + 1 >= stop_after:
            break
    summary = None
    if dist.main:
        if pending_confusion is not None:    # a run stopped by stop_after between two plots
            metrics.confusion_pngs(*pending_confusion[:3], run_dir, title=pending_confusion[3])
        log(f"best val macro-F1 {best_f1:.4f} at epoch {best_epoch}; outputs in {run_dir}")
        summary = {"run_dir": run_dir, "fold": fold, "best_epoch": best_epoch, "best_macro_f1": best_f1,
                   "epochs_done": len(history), "best_pt": run_dir / "best.pt", "last_pt": run_dir / "last.pt",
                   "metrics_csv": run_dir / "metrics.csv", "per_class": best_per_class, "stopped_early": stop}
        from imgcls.train.report import write_run_report
        write_run_report(run_dir)
    hooks("on_run_end", summary)
    hooks.check()
    return {"best_f1": best_f1, "best_epoch": best_epoch, "val_predictions": best_preds, "history": history,
            "summary": summary}


def _lr(optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


class RunEta:
    """The whole run's remaining time (this fold's epochs and `later_epochs` of the folds after it), from the
    measured time per training step so far (validation time included, spread over the steps of the epochs it
    followed; later folds assumed as long as this one)."""

    def __init__(self, epochs_left: int, later_epochs: int = 0):
        self.epochs_left, self.t0 = epochs_left + later_epochs, time.monotonic()
        self.done, self.steps_per_epoch, self.in_epoch = 0, 0, 0

    def start_epoch(self, n_steps: int) -> None:
        if self.steps_per_epoch:
            self.epochs_left -= 1
        self.steps_per_epoch, self.in_epoch = n_steps, 0

    def step(self) -> None:
        self.done += 1
        self.in_epoch += 1

    def seconds(self) -> float | None:
        if not self.done:
            return None
        left = self.steps_per_epoch * self.epochs_left - self.in_epoch
        return (time.monotonic() - self.t0) / self.done * max(left, 0)

    def text(self) -> str:
        s = self.seconds()
        if s is None:
            return "-"
        s = int(round(s))
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _final_of(y: torch.Tensor, meta: ModelMeta, sizes: list[int]) -> torch.Tensor:
    if y.shape[1] == 1:
        return y[:, 0]
    code = torch.zeros_like(y[:, 0])
    for h, k in enumerate(sizes):
        code = code * k + y[:, h]
    return code


class _nullctx:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


class _null_bar(_nullctx):
    def __enter__(self):
        return lambda n=1: None


@torch.no_grad()
def evaluate(model, loader, meta, sizes, crits, head_w, device, channels_last=False, use_amp=False,
             amp_dtype=torch.bfloat16, desc: str | None = None) -> dict:
    """Loss, probabilities and imgcls.metrics scores over the loader (a transient bar `desc` unless --quiet)."""
    model.eval()
    outs_all = [[] for _ in sizes]
    ys = []
    with progress_bar(desc, len(loader), transient=True) as advance:
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                outs = as_list(model(x))
            for h, o in enumerate(outs):
                outs_all[h].append(o.float())
            ys.append(y.to(device))
            advance()
    y = torch.cat(ys)
    outs = [torch.cat(o) for o in outs_all]
    loss = sum(w * c(o, F.one_hot(y[:, h], k).float())
               for h, (w, c, o, k) in enumerate(zip(head_w, crits, outs, sizes)))
    proba = decode_proba(outs if len(outs) > 1 else outs[0], meta).cpu().numpy()
    y_np = y.cpu().numpy()
    table = {t: i for i, t in enumerate(meta.decode_table())}
    y_final = np.array([table[tuple(r)] for r in y_np]) if len(sizes) > 1 else y_np[:, 0]
    heads = [metrics.scores(y_np[:, h], outs[h].argmax(1).cpu().numpy(), k) for h, k in enumerate(sizes)]
    return {"loss": float(loss), "proba": proba, "y_final": y_final, "heads": heads,
            "final": metrics.scores(y_final, proba.argmax(1), list(meta.classes))}


def val_predictions_frame(data: FoldData, proba: np.ndarray, meta: ModelMeta, fold: int | None) -> pd.DataFrame:
    rows = data.frame.iloc[data.val_idx]
    classes = list(meta.classes)
    df = pd.DataFrame({"path": rows["path"].values, "root": rows["root"].values,
                       "label": rows[meta.target].astype(str).values,   # the true class of this model's target
                       "fold": "" if fold is None else fold,
                       "pred": [classes[i] for i in proba.argmax(1)]})
    probs = pd.DataFrame(proba, columns=[f"p_{c}" for c in classes])
    return pd.concat([df, probs], axis=1)


_COLS = [("epoch", "epoch", "{:d}", 5), ("train_loss", "trn loss", "{:.4f}", 8),
         ("train_acc", "trn acc", "{:.4f}", 7), ("val_loss", "val loss", "{:.4f}", 8),
         ("val_acc", "val acc", "{:.4f}", 7), ("val_macro_f1", "macro-F1", "{:.4f}", 8), ("lr", "lr", "{:.2e}", 8),
         ("epoch_seconds", "sec", "{:.1f}", 7)]


class EpochTable:
    """The per-epoch table on the terminal: one rich Table row per epoch (the header with the first), fixed column
    widths so the rows line up and fit 80 columns; `*` marks a new best. Macro precision / recall (and per-head
    scores) are in metrics.csv."""

    def __init__(self, multi_fold: bool = False):
        self.header = True

    def print(self, row: dict, improved: bool) -> None:
        if is_quiet():
            return
        from rich.table import Table
        t = Table(box=None, show_header=self.header, header_style="bold", padding=(0, 0, 0, 2), pad_edge=False)
        for _, title, _, width in _COLS:
            t.add_column(title, justify="right", width=width + 2, no_wrap=True)   # rich's width includes padding
        t.add_column("best", width=6, no_wrap=True)
        t.add_row(*[fmt.format(row[k]) for k, _, fmt, _ in _COLS], "*" if improved else "")
        console.print(t)
        self.header = False


def curves_png(history: list[dict], path: Path) -> None:
    """Loss, accuracy / macro-F1 and the lr by epoch: integer epoch ticks, labelled axes, the best epoch marked."""
    from matplotlib.ticker import MaxNLocator
    from imgcls.report import pyplot, save_figure
    plt = pyplot()
    h = pd.DataFrame(history)
    f1 = "val_macro_f1" if "val_macro_f1" in h.columns else "val_f1"
    best = int(h.loc[h[f1].idxmax(), "epoch"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True)
    axes[0].plot(h["epoch"], h["train_loss"], "o-", label="train")
    axes[0].plot(h["epoch"], h["val_loss"], "o-", label="val")
    axes[0].set_title("loss")
    axes[0].set_ylabel("loss")
    axes[1].plot(h["epoch"], h["train_acc"], "o-", label="train accuracy")
    axes[1].plot(h["epoch"], h["val_acc"], "o-", label="val accuracy")
    axes[1].plot(h["epoch"], h[f1], "o-", label="val macro-F1")
    axes[1].set_title(f"accuracy / macro-F1 (best {h[f1].max():.4f} at epoch {best})")
    axes[1].set_ylabel("score")
    axes[2].plot(h["epoch"], h["lr"], "o-", color="tab:gray")
    axes[2].set_title("learning rate (end of epoch)")
    axes[2].set_ylabel("lr")
    axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.axvline(best, color="tab:red", linestyle=":", linewidth=1, label=f"best epoch {best}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    save_figure(fig, path)
