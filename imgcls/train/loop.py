"""The training loop of one run (or one fold): a Trainer with phases, resumable at epoch boundaries, CPU / CUDA / DDP.

    Trainer(cfg, meta, data, run_dir, device, dist).run()
      setup()           data loaders, the model (+ EMA), optimiser, schedule, AMP scaler, losses
      restore()         --resume: every state from last.pt; True when the run had finished
      wrap()            torch.compile / DDP around the model that trains
      train_epoch(e)    one pass over the epoch's seeded order: mixing, forward / backward (SAM: two), updates
      evaluate_epoch(e) rank 0: the val set, the metrics.csv row, best.pt / val_predictions.csv / per_class.csv
      checkpoint(e)     the epoch's schedule step, plots, last.pt, on_epoch_end
      finish()          the best epoch in train.log, the run report, on_run_end

What lives across epochs (and what last.pt's `train_state` records) is the TrainState; the order of every seeded
draw is the one an uninterrupted run makes, so a resumed run gives the same weights and metrics.
Display and logging helpers are in imgcls.train.progress, validation in imgcls.train.validation, DDP helpers in
imgcls.train.dist. Over 400 lines because it is one class whose phases share the run's state (model, optimiser,
schedule, EMA, scaler, TrainState): split across modules, that state would be passed around instead of read.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from imgcls import manifest as mf
from imgcls import metrics
from imgcls.console import is_quiet, progress_bar, status, warn
from imgcls.figure_files import CURVES_PNG
from imgcls.fsutil import write_table
from imgcls.model_meta import ModelMeta
from imgcls.options import shown
from imgcls.oversample import AUTO
from imgcls.profiles import class_titles
from imgcls.run_names import BEST_BY, BEST_PT, LAST_PT, METRICS_CSV, PER_CLASS_CSV, TRAIN_LOG, VAL_PREDICTIONS
from imgcls.train.batch_aug import (BatchAugment, gather, random_crops, source_on_device, step_generator,
                                    use_batch_aug)
from imgcls.train.callbacks import Hooks
from imgcls.train.checkpoint import read_checkpoint, save_checkpoint
from imgcls.train.config import TrainConfig
from imgcls.train.data import (CachedImages, FileImages, ListSampler, SquareCrop, augment_transform,
                               cached_size, collate_readable, duplicate_units, epoch_indices, oversample_goals,
                               random_erasing, unit_labels, warn_unreadable)
from imgcls.train.dist import Dist
from imgcls.train.heads import as_list, build_model, head_parameters
from imgcls.train.losses import Criterion, class_weights_auto
from imgcls.train.mix import mix_batch
from imgcls.train.optim import make_optimizer, make_scheduler, second_order
from imgcls.train.progress import EpochTable, RunEta, RunLog, curves_png, val_f1_name
from imgcls.train.rundir import PER_CLASS, read_run_csv, read_validation, record_last_state
from imgcls.train.sam import frozen_bn_stats
from imgcls.train.validation import final_code, evaluate, val_predictions_frame

PLOT_EVERY_S = 60.0   # curves.png / confusion_matrix.png: redrawn at most this often, and after the last epoch


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
    # --cache none: {path: why} of the images found unreadable while training (each reported once); one dict shared
    # by every fold of a run
    unreadable: dict = field(default_factory=dict)
    # the row of `images` each usable row is (None: the same row): a cache decoded with unreadable files keeps their
    # rows, so neither a RAM cache nor a memmap is copied to drop them
    image_rows: np.ndarray | None = None
    # a k-fold set's classes no fold validates: said once for the set (metrics.missing_rows_note's every_fold), not
    # in each fold's line
    never_validated: tuple = ()

    def cache_rows(self, idx: np.ndarray) -> np.ndarray:
        """The rows of `images` of the usable rows `idx`."""
        return np.asarray(idx) if self.image_rows is None else self.image_rows[idx]


@dataclass
class TrainState:
    """What carries from one epoch to the next (restored from last.pt on --resume)."""
    epoch: int = 0                 # the next epoch to train (0-based)
    best_f1: float = -1.0          # the val macro-F1 of the best epoch (the one --metric picked)
    best_epoch: int = -1
    best_value: float | None = None     # that epoch's --metric value (None: no epoch validated yet)
    bad_epochs: int = 0
    history: list = field(default_factory=list)
    ema_updates: int = 0
    updates: int = 0               # optimiser updates of the run, --resume's earlier epochs included (on_step_end)
    best_preds: pd.DataFrame | None = None
    best_per_class: pd.DataFrame | None = None
    stop: bool = False             # early stop reached


def _unwrap(model):
    model = getattr(model, "module", model)          # DDP
    return getattr(model, "_orig_mod", model)        # torch.compile


def train_run(cfg: TrainConfig, meta: ModelMeta, data: FoldData, run_dir: Path, device: torch.device, dist: Dist,
              fold: int | None = None, resume: bool = False, stop_after: int | None = None,
              callbacks=None, parent_dir: Path | None = None, folds_after: int = 0) -> dict:
    """Train one model; returns {"best_f1", "best_epoch", "val_predictions": DataFrame, "history", "summary"}.
    callbacks: imgcls.train.callbacks.Callback objects, called on rank 0 only (see that module). folds_after: the
    k-fold folds still to train after this one (the run ETA covers them)."""
    return Trainer(cfg, meta, data, run_dir, device, dist, fold, resume, stop_after, callbacks, parent_dir,
                   folds_after).run()


class Trainer:
    def __init__(self, cfg: TrainConfig, meta: ModelMeta, data: FoldData, run_dir: Path, device: torch.device,
                 dist: Dist, fold: int | None = None, resume: bool = False, stop_after: int | None = None,
                 callbacks=None, parent_dir: Path | None = None, folds_after: int = 0):
        self.cfg, self.meta, self.data, self.run_dir, self.device, self.dist = cfg, meta, data, run_dir, device, dist
        self.fold, self.resume, self.stop_after, self.parent_dir = fold, resume, stop_after, parent_dir
        self.folds_after = folds_after
        self.log = RunLog(run_dir / TRAIN_LOG if dist.main else None, echo=dist.main)
        self.hooks = Hooks(callbacks, main=dist.main, distributed=dist.on, broadcast=dist.broadcast)
        self.sizes = meta.head_sizes
        self.state = TrainState()
        self.pending_confusion, self.plotted_at = None, time.monotonic()
        self.compile_seconds, self.compile_seconds_logged = None, False
        self.diverged_said = False

    def run(self) -> dict:
        if self.resume and self._restore_finished_gone():       # read back: no model, data or optimiser to build
            return self.result(None)
        self.setup()
        if self.resume and self.restore():
            return self.result(None)
        self.wrap()
        self.announce()
        cfg, st = self.cfg, self.state
        for epoch in range(st.epoch, cfg.epochs):
            t0 = time.perf_counter()
            train_loss, train_acc = self.train_epoch(epoch)
            ev, row, improved = self.evaluate_epoch(epoch, train_loss, train_acc, t0)
            st.stop = self.dist.broadcast(bool(row is not None
                                               and metrics.early_stopped(self.curve, cfg.metric, cfg.early_stop)))
            self.checkpoint(epoch, ev, row, improved)
            self.hooks.check()
            self.dist.barrier()
            if st.stop:
                if self.dist.main:
                    self.log(f"early stop: {self.metric_label} did not improve for {cfg.early_stop} epochs (best "
                             f"{st.best_value:.4f} at epoch {st.best_epoch})", every=True)
                break
            if self.stop_after is not None and epoch + 1 >= self.stop_after:
                break
        return self.finish()

    @property
    def metric_column(self) -> str:
        """--metric's metrics.csv column (run_names.BEST_BY): what picks the best epoch."""
        return BEST_BY[self.cfg.metric].column

    @property
    def curve(self) -> list:
        """--metric's value of each epoch of the run so far (its history's, an earlier session's too)."""
        return [h[self.metric_column] for h in self.state.history]

    @property
    def metric_label(self) -> str:
        """--metric's name for people ('val loss'); macro-F1 of a single-attribute run names its column."""
        return (val_f1_name(self.meta.attribute) if self.cfg.metric == "macro_f1"
                else BEST_BY[self.cfg.metric].label)

    def result(self, summary: dict | None) -> dict:
        st = self.state
        return {"best_f1": st.best_f1, "best_epoch": st.best_epoch, "val_predictions": st.best_preds,
                "history": st.history, "summary": summary}

    @property
    def eval_model(self):
        """What is validated and saved as best.pt: the EMA with --ema, else the model."""
        return self.ema.module if self.ema is not None else self.model

    # setup -----------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        self._data()
        self._model()
        self._optimisation()

    def _data(self) -> None:
        cfg, meta, data, device = self.cfg, self.meta, self.data, self.device
        # --gpu-aug: uint8 batches augmented whole on the device (batch_aug); else per image in the loader
        self.batch_aug = (BatchAugment(cfg.aug, meta.mean, meta.std, meta.fill, cfg.hflip)
                          if (cfg.gpu_aug_used if cfg.gpu_aug_used is not None
                              else use_batch_aug(cfg.gpu_aug, device.type, cfg.cache_used)) else None)
        raw = self.batch_aug is not None
        aug = None if raw else augment_transform(cfg.aug, meta.img_size, meta.fill, cfg.hflip)
        erase = None if raw else random_erasing(cfg.aug)
        tgt = data.targets
        # --crop-from: images come at cached_size (> img_size); a training sample is a random img_size crop (per
        # image here, or batch_aug.random_crops on the batch path: train_epoch), a validation one the centre crop
        size = cached_size(meta.img_size, cfg.crop_from)
        self.crop_size = meta.img_size if size > meta.img_size else None
        train_crop = SquareCrop(meta.img_size, random=True) if self.crop_size and not raw else None
        val_crop = SquareCrop(meta.img_size, random=False) if self.crop_size else None
        self.cache_batches = raw and data.images is not None     # batches cut straight from the cache, no loader
        if data.images is not None:
            self.train_cache_rows = data.cache_rows(data.train_idx)
            train_ds = CachedImages(data.images, tgt[data.train_idx], meta.mean, meta.std, aug, erase,
                                    rows=self.train_cache_rows, raw=raw, crop=train_crop)
            val_ds = CachedImages(data.images, tgt[data.val_idx], meta.mean, meta.std,
                                  rows=data.cache_rows(data.val_idx), crop=val_crop)
        else:
            tp = [data.paths[i] for i in data.train_idx]
            vp = [data.paths[i] for i in data.val_idx]
            args = (size, meta.resize_mode, meta.interpolation, meta.mean, meta.std)
            train_ds = FileImages(tp, tgt[data.train_idx], *args, aug, erase, raw=raw, fill=meta.fill,
                                  max_pixels=cfg.max_pixels, crop=train_crop)
            val_ds = FileImages(vp, tgt[data.val_idx], *args, fill=meta.fill, max_pixels=cfg.max_pixels,
                                crop=val_crop)
        if self.cache_batches:
            # CUDA: the training rows of the cache move to the device once (when they fit), batches are cut there
            self.train_on_device = source_on_device(data.images, self.train_cache_rows, device)
            self.train_targets = train_ds.targets.to(device)
        # static shapes (as timm's train.py): the partial last training batch is dropped when --compile or cuDNN
        # autotuning is on, so neither recompiles nor re-tunes for one odd batch an epoch
        self.static_shapes = bool(cfg.compile or (device.type == "cuda" and torch.backends.cudnn.benchmark))
        self.n_train = len(data.train_idx)
        self.train_final = data.final[data.train_idx]
        # --oversample: the samples each class gets per epoch (the epoch's length is their sum, the same every epoch)
        # --dup-weight group: a duplicate group (per class) is one sample; the epoch and --oversample count groups
        train_rows = data.frame.iloc[data.train_idx]
        self.units = duplicate_units(train_rows, self.train_final) if cfg.dup_weight == "group" else None
        counted = self.train_final if self.units is None else unit_labels(self.units, self.train_final)
        self.counted = counted          # the class of each image, or of each group (--dup-weight group)
        self.copies_in_train = bool(mf.augmented(train_rows).any())
        self.target = cfg.oversample_target(data_oversampled=self.copies_in_train)
        self.goals = (oversample_goals(counted, self.target, cfg.oversample_max_factor)
                      if self.target is not None else None)
        self.n_epoch = int(self.goals.sum()) if self.goals is not None else len(counted)
        bs = cfg.batch_size
        loader_kw = {"num_workers": cfg.workers_used, "pin_memory": self.device.type == "cuda"}
        if data.images is None:      # files read per item: one that broke since the scan is left out of its batch
            loader_kw["collate_fn"] = collate_readable
        if cfg.workers_used > 0:
            loader_kw.update(persistent_workers=True, prefetch_factor=4)
        self.sampler = ListSampler([])
        self.train_loader = torch.utils.data.DataLoader(train_ds, batch_size=bs, sampler=self.sampler, **loader_kw)
        self.val_loader = torch.utils.data.DataLoader(val_ds, batch_size=bs * 2, shuffle=False, **loader_kw)
        per_rank = math.ceil(self.n_epoch / self.dist.world)
        if self.static_shapes and per_rank >= bs:
            steps_per_epoch = per_rank // bs
        else:
            steps_per_epoch = max(1, (per_rank - (1 if per_rank % bs == 1 and per_rank > 1 else 0) + bs - 1) // bs)
        self.updates_per_epoch = max(1, math.ceil(steps_per_epoch / cfg.grad_accum))

    def _untrained_classes(self) -> tuple[list[str], int, int]:
        """(the classes of two or more validation rows and no training row, the classes counted, the validation
        images they make always wrong). A multi-head run is judged per head ('age_band 2'): its final class is the
        heads' decode, so a combination no training image holds ('4' = mask 0, gender 1, age_band 1) is still
        predicted when each head learnt its part; a head class never trained is not."""
        meta, d = self.meta, self.data
        heads = [(h.name, h.classes, d.targets[:, k]) for k, h in enumerate(meta.heads)] if meta.multi \
            else [("", meta.classes, d.final)]
        names, wrong = [], np.zeros(len(d.val_idx), bool)
        for name, classes, y in heads:
            trained = np.bincount(y[d.train_idx], minlength=len(classes))
            validated = np.bincount(y[d.val_idx], minlength=len(classes))
            never = np.flatnonzero((trained == 0) & (validated > 1))
            names += [f"{name} {classes[c]}" if name else classes[c] for c in never]
            wrong |= np.isin(y[d.val_idx], never)
        return names, sum(len(c) for _, c, _ in heads), int(wrong.sum())

    def _copies_said(self) -> str:
        """' images, N of them oversampled copies (augmented_from)' where the training rows hold preprocess
        --oversample's copies: they are counted among the training images, and are no images of the data's own."""
        n = int(mf.augmented(self.data.frame.iloc[self.data.train_idx]).sum()) if self.copies_in_train else 0
        return f" images, {n} of them oversampled copies (augmented_from)" if n else ""

    def _model(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        if self.resume and (self.run_dir / LAST_PT).is_file():
            model = build_model(self.meta)      # restore() loads every weight from last.pt
        elif cfg.init_from:      # run_train checked it (init_checkpoint): one best.pt of this --model
            from imgcls.train.checkpoint import load_init
            from imgcls.train.rundir import init_checkpoint
            model = build_model(self.meta, pretrained=False)
            load_init(model, self.meta, init_checkpoint(cfg.init_from, cfg.model))
        else:
            model = build_model(self.meta, pretrained=cfg.pretrained, weights=cfg.weights)
        if cfg.freeze_backbone:
            keep = {id(p) for p in head_parameters(model)}
            for p in model.parameters():
                p.requires_grad_(id(p) in keep)
        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = self.train_model = model
        self.ema = None
        if cfg.ema:
            from timm.utils import ModelEmaV3
            # decay warms up from 0 with the update count (timm's ModelEmaV3 applies the warmup only when update()
            # is given that count, as timm's train.py does): a short run's EMA follows the model, not its init
            self.ema = ModelEmaV3(model, decay=cfg.ema_decay, use_warmup=True)

    def _optimisation(self) -> None:
        cfg, device, sizes = self.cfg, self.device, self.sizes
        self.optimizer = make_optimizer(self.model, cfg)
        self.sam = cfg.optimizer == "sam"
        self.scheduler, self.sched_per_step = make_scheduler(self.optimizer, cfg, self.updates_per_epoch)
        self.use_amp = cfg.amp_used
        self.amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and device.type == "cuda")
        weights = None
        if cfg.class_weights == "auto":     # cfg's choices were checked by TrainConfig.validate (run_train)
            tgt = self.data.targets[self.data.train_idx]
            if self.units is not None:       # --dup-weight group: class frequency counted in groups
                tgt = tgt[np.unique(self.units, return_index=True)[1]]
            weights = [class_weights_auto(tgt[:, h], k) for h, k in enumerate(sizes)]
        self.crits = [Criterion(cfg.loss, weights[h] if weights else None, cfg.smoothing, cfg.focal_gamma)
                      for h in range(len(sizes))]
        # one weight per head: TrainConfig.validate checked the count against --head-columns
        self.head_w = [float(w) for w in cfg.head_weights] if cfg.head_weights else [1.0] * len(sizes)

    def restore(self) -> bool:
        """Continue from last.pt (when there is one); True when that run had finished (nothing left to train). A
        fold read back whole, its last.pt gone, was before setup (_restore_finished_gone)."""
        run_dir, st = self.run_dir, self.state
        if not (run_dir / LAST_PT).is_file():
            return False
        ck = read_checkpoint(run_dir / LAST_PT)
        ts = ck["train_state"]
        self.model.load_state_dict(ck["raw_state_dict"])
        self.optimizer.load_state_dict(ts["optimizer"])
        if self.scheduler is not None and ts.get("scheduler") is not None:
            self.scheduler.load_state_dict(ts["scheduler"])
        if self.ema is not None and ts.get("ema") is not None:
            self.ema.module.load_state_dict(ts["ema"])
            st.ema_updates = int(ts.get("ema_updates", (ts["epoch"] + 1) * self.updates_per_epoch))
        # the trackers' update axis (step/loss, step/lr) goes on from where the run stopped, not from 1 again
        st.updates = int(ts.get("updates", (ts["epoch"] + 1) * self.updates_per_epoch))
        if ts.get("scaler"):
            self.scaler.load_state_dict(ts["scaler"])
        st.epoch, st.best_f1, st.best_epoch = ts["epoch"] + 1, ts["best_f1"], ts["best_epoch"]
        st.bad_epochs, st.history = ts["bad_epochs"], [dict(h) for h in ts["history"]]
        # the best epoch's --metric value, from its metrics row (last.pt of any imgcls records the history)
        column = self.metric_column
        st.best_value = next((float(h[column]) for h in st.history if h["epoch"] == st.best_epoch),
                             None if st.best_epoch < 1 else float("nan"))
        if (run_dir / VAL_PREDICTIONS).is_file():
            # the best epoch's predictions (a k-fold set's out-of-fold rows are made of them): a malformed file is
            # read_validation's one line (check_resume_data said it before the images were decoded)
            st.best_preds = read_validation(run_dir / VAL_PREDICTIONS, dtype={"label": str, "pred": str})
        if ts.get("finished"):
            self.log(f"{run_dir.name}: already finished ({ts['epoch'] + 1} epochs)")
            return True
        if st.epoch and (run_dir / PER_CLASS_CSV).is_file():
            # a malformed file is read_run_csv's one line (check_resume_data said it before the images were decoded)
            st.best_per_class = read_run_csv(run_dir / PER_CLASS_CSV, PER_CLASS, dtype={"class": str})
        self.log(f"resuming {run_dir} at epoch {st.epoch + 1}")
        return False

    def _restore_finished_gone(self) -> bool:
        """A k-fold fold whose last.pt is gone since it finished (deleted by hand, tune --keep; rundir.fold_state
        reads it finished: its LAST_STATE, or metrics.csv's every epoch) has nothing to train: its best epoch and
        predictions are read back from its metrics.csv and val_predictions.csv, so the set's out-of-fold record is
        written from them; True then, before setup builds a model, reads data or makes an optimiser it would not
        use. False where there is no such fold (its last.pt kept: restore; nothing to continue: a stopped one's
        resume is refused before, rundir.check_last_pt_kept)."""
        from imgcls.metrics import best_epoch_of
        from imgcls.run_names import metric_column
        from imgcls.train.rundir import progress_settings, read_back, read_metrics
        run_dir, st, cfg = self.run_dir, self.state, self.cfg
        if self.fold is None or (run_dir / LAST_PT).is_file() or not read_back(run_dir, progress_settings(cfg)):
            return False
        h = read_metrics(run_dir)
        best = best_epoch_of(h[metric_column(cfg.metric, h.columns)], cfg.metric)      # train's pick (NaN: first)
        st.epoch, st.best_epoch = int(h["epoch"].max()), int(h.loc[best, "epoch"])
        st.best_f1 = float(h.loc[best, metric_column("macro_f1", h.columns)])
        st.history = h.to_dict("records")
        st.best_preds = read_validation(run_dir / VAL_PREDICTIONS, dtype={"label": str, "pred": str})
        self.log(f"{run_dir.name}: already finished ({st.epoch} epochs; its {LAST_PT} is gone, its "
                 f"{METRICS_CSV} and {VAL_PREDICTIONS} are read)")
        return True

    def wrap(self) -> None:
        if self.cfg.compile:
            if self.device.type != "cuda":
                from imgcls.device import quiet_cuda_home_note
                quiet_cuda_home_note()
            self.train_model = torch.compile(self.model)
        if self.dist.on:
            from torch.nn.parallel import DistributedDataParallel as DDP
            dev = self.device
            self.train_model = DDP(self.train_model, device_ids=[dev.index] if dev.type == "cuda" else None)

    def announce(self) -> None:
        cfg, meta, dist, fold = self.cfg, self.meta, self.dist, self.fold
        sam_desc = (f"SAM (rho {cfg.sam_rho}{', adaptive' if cfg.sam_adaptive else ''}) over {cfg.sam_base}, "
                    if self.sam else "")
        if dist.main:
            self.log(f"training {meta.model} ({'fold ' + str(fold) + ', ' if fold is not None else ''}"
                     f"{self.n_train} train{self._copies_said()} / {len(self.data.val_idx)} val images, "
                     f"{meta.n_classes} classes{' of ' + meta.attribute if meta.attribute else ''}"
                     f"{', heads ' + ' / '.join(meta.head_names) if meta.multi else ''}) "
                     f"on {self.device}{f' x{dist.world} processes (DDP)' if dist.on else ''}; "
                     f"{'AMP ' + str(self.amp_dtype).split('.')[-1] + ', ' if self.use_amp else ''}"
                     f"{sam_desc}"
                     f"batch {cfg.batch_size}{' (partial last batch dropped)' if self.static_shapes else ''}, "
                     f"{cfg.epochs} epoch{'' if cfg.epochs == 1 else 's'}; --aug {cfg.aug} "
                     f"{'batched on ' + self.device.type if self.batch_aug is not None else 'per image'}"
                     f"{', training rows of the cache on the device' if getattr(self, 'train_on_device', None) is not None else ''}"
                     f"{', torch.compile' if cfg.compile else ''}")
            missing = metrics.classes_without_rows(self.data.final[self.data.val_idx], list(meta.classes))
            note = metrics.missing_rows_note([c for c in missing if c not in self.data.never_validated],
                                             len(meta.classes))
            if note:
                self.log(note)
            # classes of validation rows and no training row (a hand-made split; a --target column whose values
            # follow the people, such as `age`): never learnt, their validation images always wrong. A class of
            # one image is said by the data notes (single_image_classes)
            untrained, n_classes, wrong = self._untrained_classes()
            if untrained:
                self.log(f"{len(untrained)} of {n_classes} {'head ' if meta.multi else ''}classes have validation "
                         f"rows but no training rows ({shown(untrained, 12)}): the model never learns them, so "
                         f"their {wrong} validation images are always predicted wrong; put some of their images "
                         f"(people) in training")
            if self.goals is not None:
                have = np.bincount(self.counted, minlength=len(self.goals))   # images, or groups (--dup-weight)
                grown = [f"{meta.classes[c]} {have[c]}->{g}" for c, g in enumerate(self.goals) if g > have[c]]
                how = (f"{self.target} (--oversample {AUTO}; off: each image once per epoch)"
                       if cfg.oversample == AUTO else cfg.oversample)
                self.log(f"--oversample {how} (max x{cfg.oversample_max_factor:g}): {self.n_epoch} samples "
                         f"per epoch from {self.n_train} images; "
                         + (shown(grown, 12) if grown else "no class below the target"))
            elif cfg.oversample == AUTO:
                self.log(f"--oversample {AUTO}: off, {cfg.rebalanced_by(self.copies_in_train)}")
        self.hooks("on_run_start", {"run_dir": self.run_dir, "config": cfg.to_dict(), "classes": list(meta.classes),
                                    "fold": fold, "total_epochs": cfg.epochs, "start_epoch": self.state.epoch,
                                    "start_step": self.state.updates,
                                    "parent_dir": self.parent_dir, "folds_after": self.folds_after, "model": meta.model,
                                    "train_images": self.n_train,
                                    "val_images": len(self.data.val_idx)})
        self.table = EpochTable(multi_fold=fold is not None, attribute=meta.attribute, metric=cfg.metric)
        # the whole run's ETA: this fold's epochs left and the later folds'
        self.eta = RunEta(cfg.epochs - self.state.epoch, later_epochs=self.folds_after * cfg.epochs)

    # one epoch of training ---------------------------------------------------------------------------------------
    def _forward_backward(self, x, soft):
        """One forward (autocast) and scaled backward of the weighted per-head loss; returns (outputs, loss)."""
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            outs = as_list(self.train_model(x))
        loss = sum(w * c(o.float(), s) for w, c, o, s in zip(self.head_w, self.crits, outs, soft))
        if second_order(self.cfg):   # adahessian: the backward keeps the graph for its Hessian estimate; the
            with warnings.catch_warnings():   # gradients are set to None after each update, breaking the cycle
                warnings.filterwarnings("ignore", message=r"Using backward\(\) with create_graph=True")
                self.scaler.scale(loss / self.cfg.grad_accum).backward(create_graph=True)
        else:
            self.scaler.scale(loss / self.cfg.grad_accum).backward()
        return outs, loss

    def _update(self, sam_batches: list, loss, epoch: int) -> None:
        """The optimiser update closing a --grad-accum group (SAM: the second pass first), EMA, schedule step."""
        dist, st, optimizer = self.dist, self.state, self.optimizer
        if self.sam:   # second pass over this update's batches at w + e, BatchNorm statistics untouched
            optimizer.perturb()
            with frozen_bn_stats(self.train_model):
                for j, (xj, sj) in enumerate(sam_batches):
                    last = j == len(sam_batches) - 1
                    with self.train_model.no_sync() if dist.on and not last else _nullctx():
                        self._forward_backward(xj, sj)
            optimizer.unperturb()
            sam_batches.clear()
        self.scaler.step(optimizer)
        self.scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            st.ema_updates += 1
            self.ema.update(self.model, step=st.ema_updates)
        if self.sched_per_step:
            self.scheduler.step()
        st.updates += 1
        if self.hooks.wants_steps:
            self.hooks("on_step_end", st.updates, {"loss": float(loss.detach()), "lr": _lr(optimizer),
                                                   "epoch": epoch + 1})

    def train_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over the epoch's seeded order; returns (train loss, train accuracy over the final classes: a
        multi-branch row counts when every head is right, what its decoded class needs, as val_acc counts it)."""
        cfg, dist, device, sizes, bs = self.cfg, self.dist, self.device, self.sizes, self.cfg.batch_size
        torch.manual_seed(cfg.seed * 1000 + epoch)
        mix_rng = np.random.default_rng([cfg.seed, epoch, dist.rank, 17])
        idx = epoch_indices(self.n_train, self.train_final, cfg.seed, epoch, cfg.sampler == "weighted", dist.rank,
                            dist.world, goals=self.goals, units=self.units)
        if self.static_shapes and len(idx) >= bs:
            idx = idx[: len(idx) // bs * bs]     # static shapes: full batches only (see _data)
        elif len(idx) % bs == 1 and len(idx) > 1:
            idx = idx[:-1]  # a batch of one breaks BatchNorm
        self.sampler.indices = idx
        self.sampler.base = (cfg.seed * 1_000_003 + epoch * 7_919) % (2 ** 31)
        self.train_model.train()
        if cfg.freeze_backbone:
            frozen_norms_eval(self.model)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        self.optimizer.zero_grad(set_to_none=True)
        sam_batches = []
        n_steps = math.ceil(len(idx) / bs)
        self.eta.start_epoch(n_steps)
        desc = f"epoch {epoch + 1}/{cfg.epochs}" + (f" fold {self.fold}" if self.fold is not None else "")
        shown_at = 0.0
        timing_compile = self.cfg.compile and self.compile_seconds is None
        t_epoch = time.perf_counter()
        pending = False      # gradients accumulated since the last update
        with progress_bar(desc, n_steps, every=True) if dist.main else _null_bar() as advance:
            for step, batch in enumerate(self._batches(idx, epoch)):
                x, y = batch[0], batch[1]
                last_in_update = (step + 1) % cfg.grad_accum == 0 or step + 1 == n_steps
                if len(batch) > 2 and not self._readable_batch(x, batch[2], self.train_loader.dataset):
                    if last_in_update and pending:
                        self._update(sam_batches, loss, epoch)
                        pending = False
                    self.eta.step()
                    advance()
                    continue
                x = x.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                if self.batch_aug is not None:      # uint8 -> augmented, normalised, on the device
                    g = step_generator(cfg.seed, epoch, step, dist.rank)
                    if self.crop_size:              # --crop-from: each sample's crop, then the preset at img_size
                        x = random_crops(x, self.crop_size, g)
                    x = self.batch_aug(x, g)
                # the layout --channels-last asks for (a batch cut from the cache arrives channels_last: NHWC)
                x = x.contiguous(memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
                group = final_code(y, sizes) if cfg.mix == "cutmix-vertical" else None
                x, soft = mix_batch(x, y, sizes, cfg.mix, cfg.mix_prob, cfg.mix_alpha, mix_rng, group)
                # SAM: the first pass only picks the direction of the perturbation, from each process's own
                # gradient (no all-reduce, as in the SAM paper's per-device m-sharpness); the second pass syncs
                with self.train_model.no_sync() if dist.on and (self.sam or not last_in_update) else _nullctx():
                    outs, loss = self._forward_backward(x, soft)
                if self.sam:
                    sam_batches.append((x, soft))
                pending = not last_in_update
                if last_in_update:
                    self._update(sam_batches, loss, epoch)
                if timing_compile and step == 0:
                    _sync(device)
                    t_first = time.perf_counter() - t_epoch
                loss_sum += loss.detach() * x.shape[0]
                correct += torch.stack([o.detach().argmax(1) for o in outs], 1).eq(y).all(1).sum()
                seen += x.shape[0]
                self.eta.step()
                now = time.monotonic()
                if dist.main and not is_quiet() and (now - shown_at >= 0.5 or step + 1 == n_steps):
                    # the running loss reads the device (a sync): twice a second at most, never with --quiet
                    shown_at = now
                    advance(status=f"loss {(loss_sum / max(seen, 1)).item():.4f}  lr {_lr(self.optimizer):.2e}  "
                                   f"run ETA {self.eta.text()}")
                else:
                    advance()
        if dist.on:
            for t in (loss_sum, correct):
                torch.distributed.all_reduce(t)
            seen *= dist.world
        result = (loss_sum / max(seen, 1)).item(), (correct / max(seen, 1)).item()
        if timing_compile and n_steps:
            # torch.compile compiles in the first step: its time beyond an ordinary step's (the mean of the others)
            rest = time.perf_counter() - t_epoch - t_first
            self.compile_seconds = max(0.0, t_first - rest / (n_steps - 1)) if n_steps > 1 else t_first
            if dist.main:
                self.log(f"torch.compile: {self.compile_seconds:.1f} s (the first step took {t_first:.1f} s, the "
                         f"{n_steps - 1} others {rest / max(1, n_steps - 1):.3f} s on average)")
        return result

    def _readable_batch(self, x, skipped: list, ds) -> bool:
        """--cache none: report the batch's images that could not be read (each once a run: FoldData.unreadable);
        whether what is left trains: not when nothing is, nor one image left of more (a batch of one breaks
        BatchNorm). Under DDP every process skips the step when one does (their gradients are averaged)."""
        self._note_unreadable(skipped, ds)
        usable = x is not None and (len(x) > 1 or self.cfg.batch_size == 1)
        if self.dist.on:
            flag = torch.tensor(int(usable), device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
            usable = bool(flag.item())
        return usable

    def _note_unreadable(self, skipped: list, ds) -> None:
        for i, why in skipped:
            path = str(ds.paths[i])
            if path not in self.data.unreadable:
                self.data.unreadable[path] = why
                warn_unreadable(path, why)

    def _batches(self, idx: list, epoch: int):
        """(x, y) batches of the epoch's order `idx`: from the loader (per-image augmentation, or uint8 with
        --gpu-aug from files), or cut straight from the decoded-image cache (--gpu-aug: uint8, no loader)."""
        if not self.cache_batches:
            yield from self.train_loader
            return
        bs = self.cfg.batch_size
        for k in range(0, len(idx), bs):
            chunk = idx[k:k + bs]
            x = gather(self.data.images, self.train_cache_rows, self.train_on_device, chunk, self.device)
            yield x, self.train_targets[torch.as_tensor(chunk, device=self.train_targets.device)]

    # validation (rank 0 evaluates the whole val set) ---------------------------------------------------------------
    def evaluate_epoch(self, epoch: int, train_loss: float, train_acc: float, t0: float):
        """(evaluation, metrics.csv row, improved) on rank 0; (None, None, False) on the other processes."""
        if not self.dist.main:
            return None, None, False
        cfg, meta, st, run_dir, fold = self.cfg, self.meta, self.state, self.run_dir, self.fold
        # the precision predict runs the model in (float16 under --amp on CUDA, float32 on the CPU), so
        # val_predictions.csv and the scores are what predict gives the same images
        ev = evaluate(self.eval_model, self.val_loader, meta, self.sizes, self.crits, self.head_w, self.device,
                      cfg.channels_last, bool(self.use_amp) and self.device.type == "cuda", self.amp_dtype,
                      desc="validation" + (f" fold {fold}" if fold is not None else ""))
        self._note_unreadable(ev["skipped"], self.val_loader.dataset)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc, "val_loss": ev["loss"],
               "val_acc": ev["final"]["accuracy"], "val_macro_precision": ev["final"]["macro_precision"],
               "val_macro_recall": ev["final"]["macro_recall"], "val_macro_f1": ev["final"]["macro_f1"]}
        if meta.multi:
            for name, m in zip(meta.head_names, ev["heads"]):
                row[f"val_{name}_acc"] = m["accuracy"]
                for k in ("macro_precision", "macro_recall", "macro_f1"):
                    row[f"val_{name}_{k}"] = m[k]
        self._say_diverged(epoch, train_loss, ev["loss"])
        row["lr"] = _lr(self.optimizer)
        row["epoch_seconds"] = time.perf_counter() - t0
        if cfg.compile:     # this epoch's share of torch.compile (its first in this process), inside epoch_seconds
            row["compile_seconds"] = self.compile_seconds if self.compile_seconds_logged is False else 0.0
            self.compile_seconds_logged = True
        st.history.append(row)
        improved = metrics.better(row[self.metric_column], st.best_value, cfg.metric)
        if improved:
            st.best_value, st.best_f1 = row[self.metric_column], row["val_macro_f1"]
            st.best_epoch = epoch + 1
            st.best_preds = val_predictions_frame(self.data, ev["proba"], meta, fold, ev["skipped"])
            save_checkpoint(run_dir / BEST_PT, _unwrap(self.eval_model).state_dict(), meta,
                            epoch=epoch + 1, val_f1=st.best_f1)
            write_table(st.best_preds, run_dir / VAL_PREDICTIONS)
            pred = ev["proba"].argmax(1)
            st.best_per_class = metrics.per_class(ev["y_final"], pred, list(meta.classes), meta.class_meanings())
            st.best_per_class.insert(0, "best_epoch", epoch + 1)
            # the class counts this run trained on: predict's report compares a submission's shares with them
            st.best_per_class["train_support"] = np.bincount(self.data.final[self.data.train_idx],
                                                             minlength=meta.n_classes)
            if self.copies_in_train:        # preprocess --oversample's copies among them: no images of the data's
                copy = mf.augmented(self.data.frame.iloc[self.data.train_idx])
                st.best_per_class["train_copies"] = np.bincount(self.data.final[self.data.train_idx][copy],
                                                                minlength=meta.n_classes)
            write_table(st.best_per_class, run_dir / PER_CLASS_CSV)
            if self.cfg.plots:
                self.pending_confusion = (ev["y_final"], pred, list(meta.classes), f"best epoch {epoch + 1}, val "
                                          f"macro-F1 {st.best_f1:.4f} ({len(pred)} val images)")
        st.bad_epochs = metrics.stale_epochs(self.curve, cfg.metric)       # last.pt's record of it
        self.table.print(row, improved)
        self.log(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                 terminal=False)
        write_table(pd.DataFrame(st.history), run_dir / METRICS_CSV)
        return ev, row, improved

    def _say_diverged(self, epoch: int, train_loss: float, val_loss: float) -> None:
        """A NaN/inf loss (too high an --lr): the probabilities are NaN from then on and every score is meaningless;
        said once a run, in the epoch it happens."""
        if self.diverged_said or (math.isfinite(train_loss) and math.isfinite(val_loss)):
            return
        self.diverged_said = True
        warn(f"the loss diverged at epoch {epoch + 1}{'' if self.fold is None else f' of fold {self.fold}'} (train "
             f"loss {train_loss:.4g}, val loss {val_loss:.4g}): the model's probabilities are NaN and its scores "
             f"mean nothing; train again with a lower --lr (this run's {self.cfg.lr:g})")

    # end of epoch: schedule, plots, last.pt ------------------------------------------------------------------------
    def checkpoint(self, epoch: int, ev, row, improved: bool) -> None:
        cfg, dist, st, run_dir = self.cfg, self.dist, self.state, self.run_dir
        metric = dist.broadcast(row[self.metric_column] if row else None)     # --scheduler plateau's
        if self.scheduler is not None and not self.sched_per_step:
            self.scheduler.step(epoch + 1, metric)
        finished = st.stop or epoch + 1 == cfg.epochs
        last_epoch_here = finished or (self.stop_after is not None and epoch + 1 >= self.stop_after)
        if dist.main and cfg.plots and (last_epoch_here or time.monotonic() - self.plotted_at >= PLOT_EVERY_S):
            with status("drawing the training curves" + (" and confusion matrices" if self.pending_confusion
                                                         is not None else "")):   # matplotlib: seconds at first
                curves_png(st.history, run_dir / CURVES_PNG, cfg.metric)
                if self.pending_confusion is not None:
                    metrics.confusion_pngs(*self.pending_confusion[:3], run_dir, title=self.pending_confusion[3],
                                          meanings=self.meta.class_meanings())
                    self.pending_confusion = None
            self.plotted_at = time.monotonic()
        if not dist.main:
            return
        sched = self.scheduler
        state = {"optimizer": self.optimizer.state_dict(),
                 "scheduler": sched.state_dict() if sched is not None else None,
                 "ema": self.ema.module.state_dict() if self.ema is not None else None,
                 "ema_updates": st.ema_updates, "updates": st.updates,
                 "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                 "epoch": epoch, "best_f1": st.best_f1, "best_epoch": st.best_epoch, "bad_epochs": st.bad_epochs,
                 "history": st.history, "finished": finished, "torch_rng": torch.get_rng_state()}
        save_checkpoint(run_dir / LAST_PT, _unwrap(self.eval_model).state_dict(), self.meta, epoch=epoch + 1,
                        raw_state_dict={k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                        train_state=state)
        record_last_state(run_dir / LAST_PT, epoch + 1, finished)     # after last.pt: never ahead of it
        if self.hooks.cbs:
            pcs = metrics.per_class(ev["y_final"], ev["proba"].argmax(1), list(self.meta.classes))
            titles = class_titles(pcs["class"], self.meta.class_meanings())     # '4 (wear, female, 30-59)'
            self.hooks("on_epoch_end", epoch + 1, dict(row, improved=improved,
                                                       per_class_f1=dict(zip(titles, pcs["f1"].astype(float)))))

    def finish(self) -> dict:
        st, run_dir = self.state, self.run_dir
        summary = None
        if self.dist.main:
            if self.pending_confusion is not None:    # a run stopped by stop_after between two plots
                metrics.confusion_pngs(*self.pending_confusion[:3], run_dir, title=self.pending_confusion[3],
                                      meanings=self.meta.class_meanings())
            if not self.cfg.plots:      # a resumed run's figures of an earlier session would show fewer epochs
                from imgcls.train.report import drop_figures
                drop_figures(run_dir)
            f1 = f" ({val_f1_name(self.meta.attribute)} {st.best_f1:.4f})" if self.cfg.metric != "macro_f1" else ""
            self.log(f"best {self.metric_label} {st.best_value:.4f} at epoch {st.best_epoch}{f1}; "
                     f"outputs in {run_dir}")
            summary = {"run_dir": run_dir, "fold": self.fold, "best_epoch": st.best_epoch,
                       "best_macro_f1": st.best_f1, "epochs_done": len(st.history), "best_pt": run_dir / BEST_PT,
                       "last_pt": run_dir / LAST_PT, "metrics_csv": run_dir / METRICS_CSV,
                       "per_class": st.best_per_class, "stopped_early": st.stop, "metric": self.cfg.metric,
                       "best_value": st.best_value,
                       "compile_seconds": self.compile_seconds}
            from imgcls.train.report import write_run_report
            with status("writing the run's report"):
                write_run_report(run_dir)
        self.hooks("on_run_end", summary)
        self.hooks.check()
        return self.result(summary)


def frozen_norms_eval(model: torch.nn.Module) -> None:
    """--freeze-backbone: normalisation layers whose parameters are all frozen stay in eval mode, so the frozen
    backbone's BatchNorm running statistics are not updated by training batches either (the heads' own norms train)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._NormBase):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _lr(optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


class _nullctx:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


class _null_bar(_nullctx):
    def __enter__(self):
        return lambda n=1, **kw: None
