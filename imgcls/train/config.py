"""Every option of a training run, resolved, in one dataclass; written to <run>/config.yaml.

Each field is declared once (imgcls.options.option): default, choices, range, help and --help panel; `imgcls train`'s
flags are built from these declarations. `TrainConfig.resolve` merges a --config file or a --resume run's
config.yaml with explicit overrides, the same for the CLI and a Python caller."""
from __future__ import annotations

import difflib
import functools
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePath
from typing import Optional

from imgcls.device import device_option
from imgcls.errors import UserError
from imgcls.figure_files import CURVES_PNG
from imgcls.image_options import INTERPOLATIONS, RESIZE_MODES, max_pixels_option
from imgcls.model_meta import CROP_FROM_RANGE
from imgcls.options import (NO_WEIGHT, When, check, check_type, check_typed, join, list_items, option, python_too,
                            recorded_nulls, seed_option, specs, weights_fault, whose, without)
from imgcls.outputs import REPORT_HTML, RUNS_DIR, yaml_dump, yaml_load
from imgcls.profile_names import PROFILE_HEADS
from imgcls.split.config import parse_folds    # --folds' reading: the fold column's owner (rundir reads it too)
from imgcls.run_names import BEST_BY, BEST_PT, METRICS_CSV, PER_CLASS_CSV, RUN_CONFIG, TRAIN_LOG, fold_set
from imgcls.oversample import AUTO, DEFAULT_MAX_FACTOR, OFF, oversamples, parse_target

# The names each choice-valued option accepts (the modules that implement them import these)
AUG_PRESETS = ("none", "light", "medium", "heavy")
MIXES = ("none", "cutmix", "mixup", "cutmix-vertical")
LOSSES = ("ce", "focal", "label-smoothing", "f1")
DUP_WEIGHTS = ("each", "group")        # train --dup-weight: a duplicate group's members each a sample, or one together
TRAIN_OPTIONS = python_too("imgcls train --help", "the fields of imgcls.train.TrainConfig")   # where they are listed
OURS_OPTIMIZERS = ("sam",)          # ours; every other --optimizer name is timm's (timm.optim.list_optimizers())
SCHEDULERS = ("cosine", "cosine-restarts", "plateau", "onecycle", "none")
TRACKERS = ("tensorboard", "mlflow", "wandb", "none")
GPU_AUG = ("auto", "on", "off")

MODEL, DATA, IMBALANCE, OPTIM, RUNTIME, OUTPUT = "Model", "Data", "Imbalance", "Optimisation", "Runtime", "Output"
# options.Spec.needs of the options that act only with another's value (refused when set where they would be ignored)
MULTI, SAM = (("heads", "multi"),), (("optimizer", "sam"),)
TRACKING = "Tracking"
# train's options of its run folder, which tune sets for each trial (OUT/STUDY/trial_NNNN, a new folder): a caller's
# is refused (TuneConfig.validate), a --config file's set aside
RUN_FOLDER_OPTIONS = ("name", "out", "exist_ok")
# train's options no tune flag sets: its run folder's, and --sampler and --metric, tune's own flags (the Optuna sampler;
# the objective, which is every trial's train --metric too; train's class-balanced sampler comes from --config or the
# space): here, not in imgcls.tune, as train's fix naming a new study (train.run._split_first) reads them too
NOT_TRIAL_FLAGS = RUN_FOLDER_OPTIONS + ("sampler", "metric")


def _csv_list(text: str) -> list[str]:
    return list_items("--head-columns", text, "label columns, comma-separated, e.g. mask,gender,age_band",
                      item="column", left_out=f"for {join(PROFILE_HEADS)}")


def _float_list(text: str) -> list[float]:
    """--head-weights' reading. An empty item between commas (1,,1) is a head's missing weight, refused with the
    declaration's blank_fix as a Python caller's [1, '', 1] is: list_items dropped it, and the count of weights no
    longer matched the heads ('has 2 values for 3 heads')."""
    takes = "comma-separated numbers, e.g. 1,1,2"
    parts = [w.strip() for w in str(text).split(",")]
    if "" in parts[1:-1] and any(parts):      # all blank (',,'): list_items' "names no weight"
        fix = specs(TrainConfig)["head_weights"][1].blank_fix
        raise UserError(f"--head-weights '{text}' holds a blank item; {fix}")
    words = list_items("--head-weights", text, takes, item="weight", left_out="to weigh every head 1")
    try:
        return [float(w) for w in words]
    except ValueError:
        raise UserError(f"--head-weights takes {takes} (got '{text}')") from None


def _head_weights(weights) -> None:
    """--head-weights' validator: the multi-head loss is the sum of each head's loss times its weight
    (loop.Trainer.head_w), so the weights keep options.weights_fault's rule (0: that head adds nothing to the loss).
    nan or inf trained a NaN loss, a negative weight a loss that training pushed up, all 0 none."""
    wrong = weights_fault(weights)
    if wrong == NO_WEIGHT:
        raise UserError("--head-weights weighs every head 0, so no head would learn; give one weight > 0 at least")
    if wrong:
        raise UserError(f"--head-weights holds {wrong}: each weight must be a finite number >= 0 (one per "
                        f"head), e.g. 1,1,2")


@functools.lru_cache(maxsize=2)
def optimizer_names(ours: bool = True) -> tuple[str, ...]:
    """Every --optimizer name: timm's registry (+ sam)."""
    from timm.optim import list_optimizers   # timm: only when a config is checked, not at --help
    return tuple(sorted(set(list_optimizers()) | (set(OURS_OPTIMIZERS) if ours else set())))


def optimizer_has_momentum(name: str) -> bool:
    """Whether timm's registry passes a momentum to optimizer `name` (OptimInfo.has_momentum; timm's
    create_optimizer_v2 drops it for the others)."""
    from timm.optim import get_optimizer_info
    try:
        return bool(get_optimizer_info(name).has_momentum)
    except (KeyError, ValueError):
        return False


def _momentum_acts(optimizer: str, cfg) -> bool:
    """--momentum's need: an optimizer with a momentum; sam: its --sam-base (any base, where only the name is known)."""
    if optimizer == "sam":
        return cfg is None or optimizer_has_momentum(cfg.sam_base)
    return optimizer_has_momentum(optimizer)


def _optimizer_text(optimizer: str, cfg) -> str:
    return f"--optimizer sam --sam-base {cfg.sam_base}" if optimizer == "sam" else f"--optimizer {optimizer}"


def _oversampling(value, cfg) -> bool:
    """--oversample-max-factor's need: a target other than off; auto is off where the config rebalances otherwise."""
    if value == AUTO:
        return cfg is None or cfg.rebalanced_by() is None
    return oversamples(value)


def check_optimizer_name(name: str, flag: str = "--optimizer", ours: bool = True) -> None:
    """One line naming close matches for a name neither timm's registry nor ours knows."""
    names = optimizer_names(ours)
    if name in names:
        return
    close = difflib.get_close_matches(str(name).lower(), names, n=4, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UserError(f"unknown {flag} '{name}'{hint}; use a name of timm.optim.list_optimizers() "
                    f"({len(names)} names, e.g. adamw, sgd, radam, rmsprop, lamb, lion){' or sam' if ours else ''}")


def _oversample_value(value) -> None:
    """--oversample: auto, or what imgcls.oversample.parse_target takes (median, max, a number, off)."""
    if value != AUTO:
        parse_target(value)


FILL_NAMES = {"white": (255, 255, 255), "black": (0, 0, 0)}


def parse_fill(value) -> tuple[int, int, int] | None:
    """--fill: None for auto (train measures the colour), else the RGB it names."""
    v = str(value).strip().lower()
    if v == AUTO:
        return None
    if v in FILL_NAMES:
        return FILL_NAMES[v]
    try:
        rgb = tuple(int(x) for x in v.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= x <= 255 for x in rgb):
        raise UserError(f"--fill {value!r}: use auto, white, black or R,G,B (three integers from 0 to 255, e.g. "
                        f"128,128,128)")
    return rgb


def fill_text(rgb) -> str:
    """The --fill value that names `rgb` (parse_fill's inverse): white, black or R,G,B."""
    rgb = tuple(int(v) for v in rgb)
    return next((name for name, v in FILL_NAMES.items() if v == rgb), ",".join(map(str, rgb)))


def _fill_value(value) -> None:
    parse_fill(value)




def _folds_value(value) -> None:
    parse_folds(value)


def _optimizer_name(name: str) -> None:
    check_optimizer_name(name)


def _sam_base_name(name: str) -> None:
    check_optimizer_name(name, flag="--sam-base", ours=False)


def resume_folder(run_dir: str | Path) -> Path:
    """The run folder --resume names, as typed where the path is the real folder's; resolved, the whole path, where
    it is not (`.` from inside the run, `..` from one of its folds, `RUN/fold_0/..`, a symlink to the run folder or
    to any folder above it), so the run's name and --out, taken from its last component and parent, are the real
    folder's (`.` gave the name '', a link its own name or its parent, recorded by the folds the session wrote and
    said as the run's)."""
    import os
    run_dir = Path(run_dir)
    real = run_dir.name not in ("", "..") and os.path.realpath(run_dir) == os.path.abspath(run_dir)
    return run_dir if real else run_dir.resolve()


def refuse_config_with_resume(config, resume) -> None:
    """--config with --resume: a resumed run continues as its config.yaml records it, so the file would be ignored;
    one line naming both flags and what each does instead."""
    if config is not None and resume is not None:
        raise UserError(f"--config {config} with --resume {resume}: a resumed run continues as its {RUN_CONFIG} "
                        f"records it and reads no --config; drop --config (flags given with --resume still apply), "
                        f"or drop --resume to start a new run from the file")


def resume_record(run_dir: str | Path) -> Path:
    """The config.yaml of a run folder given to --resume; a folder that does not exist (a mistyped name), a file
    (its best.pt), a folder without one, or a run whose last.pt is gone after it trained (check_last_pt_kept) is
    one line saying which."""
    from imgcls.fsutil import did_you_mean
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError(f"--resume {run_dir} does not exist{did_you_mean(run_dir, (RUNS_DIR,))}; give a run folder "
                        f"written by imgcls train")
    if not run_dir.is_dir():
        raise UserError(f"--resume {run_dir} is a file, not a run folder; give the folder imgcls train wrote "
                        f"({run_dir.parent})")
    kfold = fold_set(resume_folder(run_dir))      # `.` from inside a fold: named by its resolved folder
    if kfold is not None:       # its config.yaml records --folds: resumed alone, it trained a new set inside the fold
        from imgcls.train.rundir import resume_fix
        raise UserError(f"--resume {run_dir} is one fold of the k-fold set {kfold}, which is resumed whole (it "
                        f"trains the folds not finished); resume the set: {resume_fix(kfold)}")
    if not (run_dir / RUN_CONFIG).is_file():
        raise UserError(f"--resume {run_dir}: no {RUN_CONFIG} there; give a run folder written by imgcls train")
    from imgcls.train.rundir import check_last_pt_kept, check_validation_kept
    check_last_pt_kept(resume_folder(run_dir))      # epochs recorded, last.pt gone: not trained over from epoch 1
    check_validation_kept(resume_folder(run_dir))   # a fold's val_predictions.csv gone: no out-of-fold record
    return run_dir / RUN_CONFIG


@dataclass
class TrainConfig:
    src: str | None = option(None, cli=False, help="Training data: a dataset folder or a manifest / splits CSV.")
    model: str = option("tf_efficientnet_lite0", panel=MODEL, help="timm model name.")
    pretrained: bool = option(True, panel=MODEL,
                              needs=(("init_from", without("whose weights the run starts from")),
                                     ("weights", without("whose weights the run starts from"))),
                              help="Start from pretrained weights: the first of a package-shipped file, the timm / "
                                   "Hugging Face cache, the hub (when online); --no-pretrained: random init.")
    weights: str | None = option(None, panel=MODEL, cli_type=Optional[Path], from_cli=str,
                                 help="Start from this local weight file (before any pretrained source).")
    weights_source: str | None = option(None, cli=False,
                                        help="Recorded by train: where the starting weights came from (file PATH | "
                                             "package PATH | cache PATH | hub ID | random init).")
    init_from: str | None = option(None, panel=MODEL, cli_type=Optional[Path], from_cli=str, conflicts="weights",
                                   help=f"Start from this run's {BEST_PT} (a run folder or the file): its backbone, "
                                        "and its head(s) only when they are the same; with --freeze-backbone only the "
                                        "new heads train (before --weights / --pretrained).")
    img_size: int | None = option(None, panel=MODEL, lo=8, hi=4096, none="the model's (224 for most)",
                                  help="Input size in pixels.")
    drop_rate: float = option(0.0, panel=MODEL, lo=0, hi=1, hi_open=True, help="Dropout before the classifier.")
    freeze_backbone: bool = option(False, panel=MODEL, help="Train only the classifier / heads (the backbone's "
                                                            "weights and BatchNorm statistics stay as loaded).")
    target: str = option("label", panel=MODEL,
                         help="--heads single: the manifest column whose values are the classes (label, or one "
                              "attribute such as mask, gender, age_band: a single-attribute model; recorded as the "
                              "model metadata's `target`).")
    target_used: str | None = option(None, cli=False,
                                     help="Recorded by train: the column the run's classes are values of "
                                          "(class_column): --target, or label where --target names the column the "
                                          "labels are (manifest.holds_labels: DACON's artist), the label task "
                                          "`imgcls runs` and ensemble take it as; label for --heads multi.")
    heads: str = option("single", panel=MODEL, choices=("single", "multi"),
                        help="single (one softmax) | multi (one head per label column).")
    head_columns: list[str] = option(factory=lambda: list(PROFILE_HEADS), panel=MODEL, cli_type=str,
                                     to_cli=join, from_cli=_csv_list, needs=MULTI,
                                     help="Label columns for --heads multi.")
    head_weights: list[float] = option(factory=list, panel=MODEL, cli_type=Optional[str],
                                       to_cli=lambda v: join(v) or None, from_cli=_float_list, needs=MULTI,
                                       blank_fix="give a weight in its place (one per head)", validator=_head_weights,
                                       none="all 1", help="Per-head loss weights for --heads multi, e.g. 1,1,2.")
    branch: str = option("shallow", panel=MODEL, choices=("shallow", "deep"), needs=MULTI,
                         help="Multi heads: shallow (linear) | deep (MLP branch per head).")
    resize_mode: str = option("squash", panel=DATA, choices=RESIZE_MODES, help="How images become square.")
    interpolation: str = option("bilinear", panel=DATA, choices=INTERPOLATIONS, help="Resize filter.")
    aug: str = option("medium", panel=DATA, choices=AUG_PRESETS, help="Augmentation preset (torchvision transforms v2).")
    hflip: bool = option(True, panel=DATA,
                         help="Horizontal flips in the --aug presets; --no-hflip for classes a mirror changes "
                              "(digits, letters, left / right) keeps the rest of the preset.")
    fill: str = option("white", panel=DATA, validator=_fill_value,
                       help="Colour of the pixels that rotation, perspective, --resize-mode pad and TTA's smaller "
                            "scales bring in from outside an image: white, black, R,G,B, or auto (the median colour "
                            "of the training images' borders: white for clip art, black for digits). Kept in the "
                            "checkpoint; predict uses it.")
    crop_from: float = option(1.0, panel=DATA, lo=CROP_FROM_RANGE[0], hi=CROP_FROM_RANGE[1],
                              help="Train on --img-size crops of images resized to F x --img-size (cached at that "
                                   "size; a random crop per sample before --aug, validation on the centre crop): the "
                                   "painter write-up's 2x image + RandomCrop for test images that are a quarter of a "
                                   "painting (half width x half height), so training sees the test crops' pixel "
                                   "density. predict still resizes each test image whole (they are the crops). "
                                   "1: whole images.")
    mix: str = option("none", panel=DATA, choices=MIXES,
                      help="Batch mixing (cutmix-vertical: label-preserving halves).")
    mix_prob: float = option(0.5, panel=DATA, lo=0, hi=1, needs=(("mix", MIXES[1:]),),
                             help="Probability a batch is mixed.")
    mix_alpha: float = option(1.0, panel=DATA, lo=0, lo_open=True, needs=(("mix", ("cutmix", "mixup")),),
                              help="Beta(alpha, alpha) of the mixing ratio (cutmix / mixup); 1.0 draws it uniformly.")
    folds: str | None = option(None, panel=DATA, validator=_folds_value,
                               none="one model on the split column's val rows, else on --val-split",
                               help="all | K | K,L: train these folds of a k-fold split.")
    val_split: float = option(0.2, panel=DATA, lo=0, hi=1, lo_open=True, hi_open=True,
                              help="Validation fraction when the data has no split column.")
    cache: str | None = option(None, panel=DATA, choices=("ram", "disk", "none"),
                               none="ram, or disk where ram would not fit",
                               help="Decoded-image cache: ram, disk (a memmap beside the run), none (decode each "
                                    "epoch).")
    cache_used: str | None = option(None, cli=False,
                                    help="Recorded by train: the decoded-image cache the run built (ram | disk | "
                                         "none): --cache, or where it was not given (cache: None, planned again "
                                         "where the record is reused) ram, or disk where ram would not fit.")
    loss: str = option("ce", panel=IMBALANCE, choices=LOSSES, help="Loss.")
    smoothing: float = option(0.1, panel=IMBALANCE, lo=0, hi=1, hi_open=True,
                              needs=(("loss", "label-smoothing"),),
                              help="Label smoothing for --loss label-smoothing.")
    focal_gamma: float = option(2.0, panel=IMBALANCE, lo=0, needs=(("loss", "focal"),),
                                help="Gamma of --loss focal.")
    class_weights: str = option("none", panel=IMBALANCE, choices=("none", "auto"),
                                help="auto: inverse class frequency in the loss.")
    sampler: str = option("shuffle", panel=IMBALANCE, choices=("shuffle", "weighted"),
                          help="weighted: class-balanced batches.")
    # None: off (parse_target; an older config.yaml's `oversample: null`, before auto was the default)
    oversample: str | None = option(AUTO, panel=IMBALANCE, validator=_oversample_value,
                                    off=(OFF, "each image once per epoch"),
                                    help="Repeat each class's training images (each repeat freshly augmented) until "
                                         "the class has min(TARGET, count x --oversample-max-factor) samples per "
                                         "epoch: median | max | a number | off (each image once per epoch) | auto: "
                                         "median, or off when --sampler weighted, --class-weights auto or "
                                         "preprocess --oversample copies in the data rebalance instead (median "
                                         "measured +0.015 test macro-F1, docs/BENCHMARKS.md).")
    oversample_max_factor: float = option(DEFAULT_MAX_FACTOR, panel=IMBALANCE, lo=1,
                                          needs=(("oversample", When(_oversampling, "other than off (auto is off "
                                                                     "under --sampler weighted or --class-weights "
                                                                     "auto)")),),
                                          help="--oversample: a class grows to at most this many times its count.")
    dup_weight: str = option("each", panel=IMBALANCE, choices=DUP_WEIGHTS,
                             help="Duplicates clean linked (dup_group) or byte-identical (sha256): each member a "
                                  "sample (each), or a group of one label one sample per epoch, a random member "
                                  "each time (group); --sampler weighted, --oversample and --class-weights then "
                                  "count groups.")
    optimizer: str = option("adamw", panel=OPTIM, validator=_optimizer_name,
                            help="Any name timm.optim.list_optimizers() knows (adamw, adam, sgd, radam, rmsprop, "
                                 "nadamw, lamb, lion, ...), or sam: Sharpness-Aware Minimization over --sam-base (two "
                                 "forward/backward passes a step).")
    lr: float = option(1e-3, panel=OPTIM, lo=0, help="Peak learning rate (0 keeps the weights fixed).")
    weight_decay: float = option(0.01, panel=OPTIM, lo=0, help="Weight decay.")
    momentum: float = option(0.9, panel=OPTIM, lo=0, hi=1, hi_open=True,
                             needs=(("optimizer", When(_momentum_acts, "that has a momentum (sgd, momentum, "
                                                                       "rmsprop, lars, ...; sam: its --sam-base)",
                                                            _optimizer_text)),),
                             help="Momentum of the optimizers that have one (sgd, momentum, rmsprop, lars, ...).")
    sam_base: str = option("adamw", panel=OPTIM, validator=_sam_base_name, needs=SAM,
                           help="--optimizer sam: the optimizer it wraps (any timm optimizer name).")
    sam_rho: float = option(0.05, panel=OPTIM, lo=0, lo_open=True, needs=SAM,
                            help="--optimizer sam: neighbourhood radius (0.05 is the SAM paper's default).")
    sam_adaptive: bool = option(False, panel=OPTIM, needs=SAM,
                                help="--optimizer sam: ASAM (radius scaled by each weight).")
    scheduler: str = option("cosine", panel=OPTIM, choices=SCHEDULERS, help="Learning-rate schedule.")
    warmup_epochs: int = option(0, panel=OPTIM, lo=0,
                                needs=(("scheduler", ("cosine", "cosine-restarts", "onecycle")),),
                                help="Linear warm-up epochs.")
    min_lr: float = option(1e-6, panel=OPTIM, lo=0, needs=(("scheduler", ("cosine", "cosine-restarts", "plateau")),),
                           help="Lowest learning rate of the schedule.")
    epochs: int = option(10, panel=OPTIM, lo=1, help="Epochs.")
    batch_size: int = option(32, panel=OPTIM, lo=1, help="Batch size per process.")
    grad_accum: int = option(1, panel=OPTIM, lo=1, help="Accumulate gradients over N batches.")
    ema: bool = option(False, panel=OPTIM, help="Evaluate / save an exponential moving average of the weights.")
    ema_decay: float = option(0.998, panel=OPTIM, lo=0, hi=1, hi_open=True, needs=("ema",),
                              help="--ema: the decay its warmup rises to (timm's train.py uses 0.9998).")
    metric: str = option("macro_f1", panel=OPTIM, choices=tuple(BEST_BY),
                         help=f"The validation value that picks the best epoch (timm's --eval-metric): {BEST_PT}, "
                              f"the run's score and predictions, --early-stop and --scheduler plateau follow it.")
    early_stop: int = option(0, panel=OPTIM, lo=0, help="Stop after N epochs without a better --metric (0: off).")
    amp: bool | None = option(None, panel=RUNTIME, flags=("--amp/--no-amp",), none="on for CUDA, off on CPU",
                              help="Mixed precision: fp16 + scaler on CUDA, bf16 autocast on CPU.")
    amp_used: bool | None = option(None, cli=False,
                                   help="Recorded by train: whether the run trained in mixed precision: --amp / "
                                        "--no-amp, or where neither was given (amp: None, resolved again where the "
                                        "record is reused) on for CUDA, off on CPU.")
    channels_last: bool = option(True, panel=RUNTIME,
                                 help="channels_last memory format for the model and its batches; "
                                      "--no-channels-last: PyTorch's default NCHW (a tf_efficientnet_lite0 training "
                                      "step took 0.59x NCHW's time on the 2-core AVX-512 Xeon of docs/BENCHMARKS.md; "
                                      "other CPUs and GPUs may differ).")
    compile: bool = option(False, panel=RUNTIME, flags=("--compile",),
                           help="torch.compile the model that trains (its compile seconds are reported apart in "
                                f"{TRAIN_LOG} and {METRICS_CSV}; the partial last training batch is dropped so shapes "
                                "stay static).")
    gpu_aug: str = option("auto", panel=RUNTIME, choices=GPU_AUG,
                          help="Augment whole uint8 batches on the training device, per-sample random parameters "
                               "(imgcls.train.batch_aug) instead of image by image on the CPU: auto = on when "
                               "training on CUDA, and on the CPU from the decoded-image cache (measured faster "
                               "there); off with --cache none on the CPU (the loader's workers augment in "
                               "parallel).")
    gpu_aug_used: bool | None = option(None, cli=False,
                                       help="Recorded by train: whether the run augmented whole batches (--gpu-aug "
                                            "resolved on its machine); a resumed --gpu-aug auto keeps it, so the "
                                            "resumed epochs draw the augmentations the uninterrupted run would.")
    seed: int = seed_option(RUNTIME)
    deterministic: bool = option(False, panel=RUNTIME, help="Deterministic algorithms (slower).")
    workers: int | None = option(None, panel=RUNTIME, lo=0, none="0 on the CPU from the cache, else min(8, cores)",
                                 help="DataLoader worker processes (0 when training on the CPU from the decoded-image "
                                      "cache: the model uses every core); the cache is built over min(8, cores).")
    workers_used: int | None = option(None, cli=False,
                                      help="Recorded by train: the DataLoader workers the run used: --workers, or "
                                           "where it was not given (workers: None, resolved again where the record "
                                           "is reused) 0 on the CPU from the cache, else min(8, cores).")
    device: str = device_option(RUNTIME)
    device_used: str | None = option(None, cli=False,
                                     help="Recorded by train: the device the run trained on (cpu, cuda:0; under "
                                          "torchrun the main process's): --device as resolved on its machine.")
    max_pixels: int = max_pixels_option()
    out: str = option(RUNS_DIR, panel=OUTPUT, cli_type=Path, from_cli=str, help="Folder of runs.")
    name: str | None = option(None, panel=OUTPUT, none="time-model, made unique",
                              help="Run name, one plain folder name; an existing one is an error unless --exist-ok.")
    exist_ok: bool = option(False, panel=OUTPUT, help="Train into an existing --name folder that holds no run (a "
                                                      "folder with a run's checkpoints is only continued: --resume; "
                                                      "an earlier run's record whose checkpoints are gone is refused) "
                                                      "nor another step's output (a tune study is refused).")
    plots: bool = option(True, panel=OUTPUT,
                         help=f"Draw {CURVES_PNG} and the confusion-matrix PNGs (shown in {REPORT_HTML}); --no-plots: "
                              "no figures (matplotlib's seconds per run saved, e.g. for a k-fold set), "
                              f"the numbers stay in {METRICS_CSV} and {PER_CLASS_CSV}. Does not change what the run "
                              "learns.")
    tracker: list[str] = option(factory=list, panel=TRACKING, choices=TRACKERS, cli_type=Optional[list[str]],
                                from_cli=lambda v: list(v or []), to_cli=lambda v: list(v) or None,
                                none=f"none: {METRICS_CSV} and the run folder only",
                                help="Experiment tracker, repeat the flag for more (all offline; each an optional "
                                     "extra: pip install 'imgcls\\[mlflow]').")
    tracking_uri: str | None = option(None, panel=TRACKING, needs=(("tracker", ("mlflow",)),),
                                      none="$MLFLOW_TRACKING_URI, else sqlite:///<--out>/mlflow.db",
                                      per_command={"tune": {"none": "$MLFLOW_TRACKING_URI, else "
                                                                    "sqlite:///<--out>/<--study>/mlflow.db"}},
                                      help="--tracker mlflow: the tracking store or server.")
    track_checkpoint: bool = option(False, panel=TRACKING, needs=(("tracker", ("mlflow", "wandb")),),
                                    help=f"--tracker mlflow / wandb: also upload {BEST_PT} as an artifact.")
    # read_from's: the --config file resolve read this config from (resolved), None for none. A field, so
    # dataclasses.replace keeps it (tune's TuneConfig(config=FILE, train=replace(resolved, batch_size=32))); no option:
    # not compared nor shown, not written to config.yaml (to_dict) nor read from one (from_dict)
    _config: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # a Python caller's Path (out=Path("runs")) is the string the CLI passes: config.yaml records plain values
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, PurePath):
                setattr(self, f.name, str(value))

    # the options whose check asks timm's optimizer registry (importing timm and torch: seconds): checked after the
    # others, and run_train checks the data path and run name before them
    REGISTRY_CHECKED = ("optimizer", "sam_base", "momentum")
    # what train records of how a run ran (cli=False, as src; set by every run anew): a config a run starts from
    # (tune's best_config.yaml) holds none, as it says nothing about a run not yet made
    RECORDS = ("weights_source", "cache_used", "amp_used", "workers_used", "device_used", "gpu_aug_used",
               "target_used")

    def validate(self, acting_later=(), registry: bool = True) -> None:
        """Every option's choices and range (imgcls.options.check), before any data is read: a typo fails in a
        second, not after the decoded-image cache is built. `acting_later`: options whose needs imgcls tune's
        space values meet in some trials (imgcls.tune.space). `registry` False: all but REGISTRY_CHECKED (no
        timm import)."""
        check(self, [n for n in specs(self) if n not in self.REGISTRY_CHECKED], acting_later=acting_later)
        if self.sampler == "weighted" and self.oversample_target() is not None:     # auto yields, a typed target not
            raise UserError("--oversample and --sampler weighted both rebalance the classes (repeats vs draws with "
                            "replacement); use one of them")
        cols = list(self.head_columns)
        if self.heads == "multi":       # a Python caller's [] refused as the command line's --head-columns ''
            _csv_list(cols)
        if self.heads == "multi" and sorted(cols) == sorted(PROFILE_HEADS) and cols != list(PROFILE_HEADS):
            # another order of the profile heads decoded to the product of their classes ('1_0_2'): no
            # competition class ids, so predict --format mask / a sample submission refused the finished run
            raise UserError(f"--head-columns {join(cols)}: the profile heads decode to the competition's 18 "
                            f"classes (mask*6 + gender*3 + age_band) in the order {join(PROFILE_HEADS)}; give "
                            f"--head-columns {join(PROFILE_HEADS)} (and --head-weights in that order)")
        if self.heads == "multi" and self.head_weights and len(self.head_weights) != len(self.head_columns):
            # one weight per head (--head-columns): refused here, not once the images are decoded and the run
            # folder made (a run folder left behind, 'stopped 0/1' in imgcls runs)
            raise UserError(f"--head-weights has {len(self.head_weights)} values for {len(self.head_columns)} heads "
                            f"({', '.join(self.head_columns)}); give one weight per --head-columns column")
        if registry:
            self.validate_registry(acting_later)

    def validate_registry(self, acting_later=()) -> None:
        """The checks validate(registry=False) leaves: REGISTRY_CHECKED's, which import timm and torch."""
        from imgcls.console import loading
        with loading("torch", "timm"):      # seconds on a first import, with nothing else on screen
            check(self, self.REGISTRY_CHECKED, acting_later=acting_later)

    def _reset_inert(self, typed, source: str, say: bool = True) -> None:
        """Options read from a --config / --resume file (every field but the flags `typed`) that would not act --
        their `needs` unmet, by the file itself or by a typed flag (its smoothing under --loss ce) -- take their
        defaults, said in one line: the user typed no flag to drop, and a run recorded or a study's best_config.yaml
        written before an option was declared inert stays usable. A typed flag that would not act is still
        refused (validate)."""
        from imgcls.console import info
        from imgcls.options import reset_inert
        reset = reset_inert(self, typed)
        if reset and say:
            info(f"{', '.join(reset)} of {source} would not act with these options: left at the default")

    @property
    def class_column(self) -> str:
        """The column the run's final classes are values of: --target for one head, label for --heads multi (whose
        classes its heads decode to), and label where --target names the column the labels are, as resolved on the
        data (target_used; resolve_target): what a --val-split draw stratifies on, ModelMeta.target records and
        `imgcls runs` / ensemble tell a run's task by."""
        if self.target_used:
            return self.target_used
        return self.target if self.heads == "single" else "label"

    @property
    def labels_read_from(self) -> str:
        """The data column the run's labels were read from where --target named it and resolve_target made it the
        label task (target_used label: DACON's artist on train.csv): predict --eval reads it as the truth of a table
        read unlabeled that has it; '' for every other run."""
        single = self.heads == "single" and self.target != "label"
        return self.target if single and self.target_used == "label" else ""

    def resolve_target(self, df) -> str:
        """Set target_used (the class_column of this run) from its rows `df` as scanned, before check_data fills
        the labels from the column of a table read unlabeled: label where --target names the column that holds
        df's labels (manifest.holds_labels): a model of that column predicts the label task, so `imgcls runs` ranks
        it and ensemble combines it with the runs trained on the labels (DACON's `train train.csv --target artist`
        and `split train.csv --label-col artist` then train). Returns how the column holds them ('' where --target
        is the run's column as typed)."""
        from imgcls.manifest import holds_labels
        how = holds_labels(df, self.target) if self.heads == "single" else ""
        self.target_used = None
        self.target_used = "label" if how else self.class_column
        return how

    def oversample_target(self, data_oversampled: bool = False) -> str | int | None:
        """The --oversample target train uses (imgcls.oversample.parse_target; None: each image once per epoch).
        auto is median unless the classes are already rebalanced: by --sampler weighted, --class-weights auto, or
        copies written by preprocess --oversample in the training rows (`data_oversampled`)."""
        if self.oversample == AUTO:
            return None if self.rebalanced_by(data_oversampled) else "median"
        return parse_target(self.oversample)

    def rebalanced_by(self, data_oversampled: bool = False) -> str | None:
        """Why --oversample auto is off (what already rebalances the classes, for train.log), or None."""
        if self.sampler == "weighted":
            return "--sampler weighted rebalances the classes (draws each class equally often)"
        if self.class_weights == "auto":
            return ("--class-weights auto rebalances the loss (inverse class frequency); --oversample median "
                    "oversamples as well")
        if data_oversampled:
            return ("the training rows hold preprocess --oversample copies (augmented_from); --oversample median "
                    "oversamples them again")
        return None

    # the options that name a file or folder the run reads: recorded absolute (anchor_paths)
    PATHS = ("src", "weights", "init_from")

    def anchor_paths(self) -> "TrainConfig":
        """The paths the run reads (PATHS: the data, --weights, --init-from) made absolute from the working folder
        they were given in (os.path.abspath, as preprocess.json's source: symlinks kept as named), so config.yaml
        names the same files from any folder: --resume, --config, predict's leak check, tune's trials and its
        best_config.yaml. A relative path read from an older record is taken from the working folder, as before."""
        for name, value in self.anchored({n: getattr(self, n) for n in self.PATHS}).items():
            setattr(self, name, value)
        return self

    @classmethod
    def anchored(cls, d: dict) -> dict:
        """A config dict with its PATHS absolute (anchor_paths), e.g. a tune study's recorded fixed options."""
        import os
        return {**d, **{n: os.path.abspath(d[n]) for n in cls.PATHS if d.get(n)}}

    def to_dict(self) -> dict:
        """The options (every field but _config, read_from's), as config.yaml records them."""
        d = asdict(self)
        del d["_config"]
        return d

    def save(self, path) -> Path:
        from imgcls.fsutil import write_text
        return write_text(path, yaml_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = set(specs(cls))     # the options: not _config (read_from's)
        unknown = sorted(set(d) - names)
        if unknown:
            raise UserError(f"unknown option(s) in config: {', '.join(unknown)}; see {TRAIN_OPTIONS}")
        for k, v in d.items():      # a value of another type (ema: maybe, name: 2024) fails here, in one line:
            check_type(cls, k, v)   # options' type rule, load's line naming the file; ranges are validate()'s
        return cls(**d)

    # (option, its record): an older train resolved the option itself (cache: ram, amp: true, workers: 0, typed or
    # not) and recorded no *_used field
    RESOLVED = (("cache", "cache_used"), ("amp", "amp_used"), ("workers", "workers_used"))
    # what a session ran with, recorded anew by a resumed session (record_session); device_used is newer than the
    # older records RESOLVED reads (their device held what was asked, auto, not what ran); plots: whether the run
    # folder's figures were drawn (the report reads it)
    SESSION = tuple(used for _, used in RESOLVED) + ("device_used", "plots")

    @classmethod
    def _older_record(cls, d: dict) -> dict:
        """A config.yaml an older train (or tune, from its trials) wrote: a whole record (weights_source, train's
        own field, is a key of it) without the *_used key of a RESOLVED option holds in the option what that run
        resolved for its machine, given or not. It is read as the record of what ran (the *_used field), and the
        option as not given (None), resolved again where the record is reused (--config, --resume, tune), as a
        newer record's. A null a Python caller's None left where the option takes none (max_pixels: no limit) reads
        as what it meant (options.recorded_nulls). A file without weights_source (written by hand) keeps its values
        as asked."""
        if "weights_source" not in d:
            return d
        d = recorded_nulls(cls, d)
        old = {used: d[opt] for opt, used in cls.RESOLVED if used not in d and opt in d}
        return {**d, **old, **{opt: None for opt, used in cls.RESOLVED if used in old}}

    @classmethod
    def as_today(cls, d: dict) -> dict:
        """A config.yaml's mapping `d` read as this train reads its record (`imgcls runs`' one reading): an older
        record's RESOLVED options as _older_record reads them, and each option added to train after it ran (no key
        of it) at its default, which was its default when added, so an older run compares with, and --filter
        matches, a newer one. RECORDS an older train did not write stay missing (not known: never a default), and
        so does everything of a file train did not write whole (no weights_source: written by hand)."""
        if "weights_source" not in d:
            return d
        return {**{k: v for k, v in cls().to_dict().items() if k not in cls.RECORDS}, **cls._older_record(d)}

    def record_session(self, path, recorded: "TrainConfig | None" = None) -> dict:
        """Make a resumed run's config.yaml (`path`) record what this session ran with: the SESSION records
        (cache_used, amp_used, workers_used, device_used), which differ from the earlier session's where the run is
        resumed on another machine or with other resources; every other field is kept as recorded. Returns {record:
        (earlier, now)} of those that changed (empty: the file is left as it is), for train to say and write to
        train.log, so the earlier session's values are not lost. `recorded`: the record already read from `path`."""
        from dataclasses import replace
        if recorded is None:
            recorded = TrainConfig.load(path)
        changed = {used: (getattr(recorded, used), getattr(self, used)) for used in self.SESSION
                   if getattr(recorded, used) != getattr(self, used)}
        if changed:     # read again: `recorded` may have had its inert options reset (resume_config)
            replace(TrainConfig.load(path), **{k: now for k, (_, now) in changed.items()}).save(path)
        return changed

    @classmethod
    def _run_records(cls, run_dir) -> dict:
        """{path: mapping} of a run's config.yaml and each of its folds' (record_data's and record_folder's to
        rewrite), every one read (a damaged one: one line) before any is written. Its folds are the set's planned
        ones (rundir.set_fold_dirs): a fold_2 copied in from another set keeps its own record."""
        from imgcls.train.rundir import set_fold_dirs
        run_dir = Path(run_dir)
        return {path: cls.read_mapping(path)
                for path in (run_dir / RUN_CONFIG,
                             *(d / RUN_CONFIG for d in set_fold_dirs(run_dir)[0] if (d / RUN_CONFIG).is_file()))}

    def record_data(self, run_dir) -> list:
        """Make a resumed run's config.yaml, and each of its folds', name the data this session reads (self.src,
        anchored) where they name other data: a data set moved (another disk, another machine) and given again with
        --resume, which check_resume_data found to hold the run's validation images. Every record of the run then
        names the same data (a fold first written in this session records self.src), so predict's leak check reads
        one table for a k-fold set and each of its folds. Only `src` is rewritten; a finished fold's other fields
        stay as they ran. Returns the data the rewritten records named (each once, the run's first), [] where none
        was rewritten."""
        from imgcls.fsutil import write_text
        earlier = []
        for path, d in self._run_records(run_dir).items():
            if d.get("src") == self.src:
                continue
            if d.get("src") not in earlier:
                earlier.append(d.get("src"))
            write_text(path, yaml_dump({**d, "src": self.src}, sort_keys=False))
        return earlier

    def record_folder(self, run_dir, write: bool = True, typed_at: Path | None = None) -> list:
        """Make a resumed run's config.yaml, and each of its folds', name the folder the run is in now (self.name,
        and self.out where it is another folder than the recorded one) where the run was renamed or moved (`mv
        runs/D runs/D2; train --resume runs/D2`): the record said `name: D`, so `train --config runs/D2/config.yaml`
        trained into a new runs/D. Returns the 'out/name' the rewritten records named (each once), [] where none;
        `write=False` returns them and writes nothing (a finished run: is there anything to record?). `typed_at`:
        the run folder as --resume named it (absolute, its symlinks kept: self.out is the real folder's)."""
        from imgcls.fsutil import write_text
        from imgcls.run_names import names_folder
        earlier = []
        records = self._run_records(run_dir)
        now = Path(self.out).resolve()
        # the folder of runs as the resume reached it too: outputs a symlink (to a larger disk) is no move
        reached = [Path(typed_at).parent] if typed_at is not None else []
        for path, d in records.items():
            was_out = d.get("out")
            same_out = names_folder(was_out, now, *reached)
            if d.get("name") == self.name and same_out:
                continue
            was = f"{Path(str(was_out)) / str(d.get('name'))}"
            if was not in earlier:
                earlier.append(was)
            if write:
                write_text(path, yaml_dump({**d, "name": self.name, "out": was_out if same_out else self.out},
                                           sort_keys=False))
        return earlier

    @staticmethod
    def read_mapping(path: Path, fix: str = f"give a {RUN_CONFIG} written by imgcls train") -> dict:
        """A config.yaml's mapping as written, a missing, unreadable or non-mapping file one line naming it and
        `fix` (`imgcls runs` names its own: the file is a run's)."""
        import yaml
        if not path.is_file():
            raise UserError(f"config file {path} does not exist; {fix}")
        try:
            d = yaml_load(path.read_text(encoding="utf-8")) or {}
        except OSError as e:        # no permission to read it
            raise UserError(f"{path} cannot be read ({e.strerror or type(e).__name__}); {fix}") from None
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            # safe_load refuses !!python tags (a ConstructorError): they would build objects, i.e. run code
            where = getattr(e, "problem_mark", None)
            at = f" (line {where.line + 1})" if where is not None else ""
            raise UserError(f"{path} is not a readable YAML config{at}: "
                            f"{type(e).__name__}{' (a !!python tag is refused)' if 'python' in str(e) else ''}; "
                            f"{fix}") from None
        if not isinstance(d, dict):
            raise UserError(f"{path} is not a mapping of options; {fix}")
        return d

    @classmethod
    def load(cls, path, written: dict | None = None) -> "TrainConfig":
        """`written`: the file's mapping where the caller read it already (read_mapping, read_config)."""
        path = Path(path)
        d = cls.read_mapping(path) if written is None else written
        try:
            return cls.from_dict(cls._older_record(d))
        except UserError as e:
            raise UserError(f"{path}: {e}") from None

    def read_from(self, config: str | Path) -> bool:
        """Whether resolve read this config from the --config file `config`, its overrides laid over it already
        (imgcls tune takes such a train as it is: an override at its default is no 'set' option to lay over the file
        again). Kept by dataclasses.replace: a copy with other options is read from the file so too."""
        return self._config is not None and Path(self._config) == Path(config).resolve()

    @classmethod
    def read_config(cls, config: str | Path) -> dict:
        """A --config file's mapping as written, its one read (resolve's, or run_tune's, which passes it to resolve
        as `written`): another step's record or a folder refused in one line."""
        cls._refuse_not_a_config(config)
        return cls.read_mapping(Path(config))

    @classmethod
    def resolve(cls, overrides: dict | None = None, config: str | Path | None = None,
                resume: str | Path | None = None, validate: bool = True,
                record: "TrainConfig | None" = None, written: dict | None = None) -> "TrainConfig":
        """The run's options: a --resume run's config.yaml, else a --config file, else the defaults; `overrides`
        (the flags given) replace what they name; an option of the file that acts only with a value a flag
        changed (its smoothing under --loss ce) keeps its default, and says so. Checked before it is returned
        (`validate` False: imgcls tune, which checks its fixed options together with its search space). `record`:
        the resumed run's config.yaml where the caller read it already (run_train: read once); `written`: the
        --config file's mapping so (read_config; run_tune: read once)."""
        overrides = dict(overrides or {})
        refuse_config_with_resume(config, resume)
        if resume is not None:
            d = (record if record is not None else cls.load(resume_record(resume))).to_dict()
        elif config is not None:
            written = cls.read_config(config) if written is None else written
            # a run's record of how it ran (another machine's weights file, workers, AMP) is no option of the run
            # started from it: train records its own (tune's study would fix it for every trial)
            d = {**cls.load(config, written).to_dict(), **dict.fromkeys(cls.RECORDS)}
        else:
            d = {}
        if overrides.get("init_from") and resume is None and config is None:
            cls._take_init_from(overrides)
        d.update(overrides)
        cfg = cls.from_dict(d)
        if resume is not None or config is not None:     # a resumed run's line is said by resume_config
            cfg._reset_inert(overrides, str(config), say=resume is None)
        if config is not None:
            cfg._config = str(Path(config).resolve())        # read_from's
        if validate:
            cfg.validate()
            check_typed(cfg, overrides)     # a flag typed at its default that would not act (--momentum 0.9, adamw)
        return cfg

    @staticmethod
    def _refuse_not_a_config(config: str | Path) -> None:
        """A --config that is another step's record (outputs.step_record: `--config pr1/predict.json`, a prediction's)
        is refused in one line saying whose it is and what --config takes, not as a list of its keys called unknown
        options; a folder (`--config outputs/runs/RUN`, called a file that "does not exist") is named as one, with
        the config file in it where it holds one (a run's config.yaml, a study's best_config.yaml)."""
        from imgcls.outputs import BEST_CONFIG, step_record
        config = Path(config)
        if config.is_dir():
            found = next((config / n for n in (RUN_CONFIG, BEST_CONFIG) if (config / n).is_file()), None)
            raise UserError(f"config file {config} is a folder; give " + (
                f"the {found.name} in it: {found}" if found is not None else
                f"a {RUN_CONFIG} written by imgcls train (or imgcls tune's {BEST_CONFIG})"))
        step = step_record(config)
        if step is not None:
            raise UserError(f"config file {config} is imgcls {whose(step)} record of its output, not train options; "
                            f"give a {RUN_CONFIG} written by imgcls train (or imgcls tune's {BEST_CONFIG})")

    @classmethod
    def _take_init_from(cls, overrides: dict) -> None:
        """--init-from RUN: its model, and the pixels its weights learned on, where --model / --img-size /
        --resize-mode / --interpolation / --fill / --crop-from are not given (a run trained at 32 px, letterboxed with
        black, on crops of 2x images, would otherwise go on at the model's 224, squashed, white, whole); the mean /
        std follow from the model. The
        resize options are taken where they differ from the defaults. One line says what was taken, one what was
        typed other than the run's. `overrides` (the flags given) gains what is taken."""
        from imgcls.console import info
        from imgcls.options import flag
        from imgcls.train.rundir import init_meta
        meta = init_meta(overrides["init_from"])
        if meta is None:
            return
        src = overrides["init_from"]
        taken, typed_other = {}, []
        if "model" not in overrides:
            taken["model"] = meta.model
        if overrides.get("model", meta.model) == meta.model:
            default = {f.name: f.default for f in fields(cls)}
            run = {"img_size": meta.img_size, "resize_mode": meta.resize_mode, "interpolation": meta.interpolation,
                   "fill": fill_text(meta.fill), "crop_from": meta.crop_from}
            for k, v in run.items():
                if k in overrides:
                    try:
                        other = parse_fill(overrides[k]) != meta.fill if k == "fill" else overrides[k] != v
                    except UserError:           # a bad --fill: validate() names it
                        other = False
                    if other:
                        typed_other.append(k)
                elif k == "img_size" or (parse_fill(default[k]) != meta.fill if k == "fill" else default[k] != v):
                    taken[k] = v
        if taken:
            overrides.update(taken)
            words = [{"model": "the model", "img_size": "the input size", "resize_mode": "the resize mode",
                      "interpolation": "the resize filter", "fill": "the fill colour",
                      "crop_from": "the crop scale"}[k] for k in taken]
            what = " and ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + " and " + words[-1]
            info(f"{' '.join(f'{flag(k)} {v}' for k, v in taken.items())}: {what} of --init-from {src}")
        if typed_other:
            info(f"{' '.join(f'{flag(k)} {overrides[k]}' for k in typed_other)} as typed: --init-from {src} was "
                 f"trained with {' '.join(f'{flag(k)} {run[k]}' for k in typed_other)} (its weights learned on "
                 f"those pixels)")


def resume_config(cfg, run_dir: Path, recorded=None):
    """The config a resumed run continues with: its recorded config.yaml, where `cfg` may only change how data is
    read (RESUME_MAY_CHANGE). Any other difference (more --epochs, another --lr) is refused in one line before
    anything is written: the run would no longer be the run its record describes. Values `cfg` leaves unset
    (None) are the recorded ones. `recorded`: the record already read (TrainConfig.load of its config.yaml), so
    train reads it once for this and check_resume_data."""
    from imgcls.options import describe_changes
    from imgcls.train.rundir import RESUME_MAY_CHANGE, finished, not_extended, option_changes
    run_dir = resume_folder(run_dir)
    if recorded is None:
        recorded = TrainConfig.load(run_dir / RUN_CONFIG)
    record = str(run_dir / RUN_CONFIG)
    recorded._reset_inert({}, record)       # a recorded option that never acted (needs unmet) keeps its default
    merged = {n: getattr(cfg, n) if getattr(cfg, n) is not None else getattr(recorded, n) for n in specs(TrainConfig)}
    was = recorded.to_dict()
    if was.get("amp") is None and was.get("amp_used") is not None:
        # --amp was not typed: a typed --amp / --no-amp is compared with what ran (the same one continues the run)
        was["amp"] = was["amp_used"] if cfg.amp is not None else None
    changed = option_changes(was, merged)
    if changed:
        if any(k == "epochs" for k, _, _ in changed) and finished(run_dir):
            raise UserError(f"--resume {run_dir}: {not_extended(run_dir, recorded.epochs)}")
        what = describe_changes(TrainConfig, changed)
        raise UserError(f"--resume {run_dir} continues the run as its {RUN_CONFIG} records it; {what} cannot change "
                        f"(drop the flag, or start a new run)")
    merged["name"], merged["out"] = run_dir.name, str(run_dir.parent)
    cfg = TrainConfig.from_dict(merged)
    # another --tracker: the recorded --tracking-uri / --track-checkpoint it leaves without a need keep their defaults
    cfg._reset_inert({k: v for k, v in merged.items() if k in RESUME_MAY_CHANGE and v != getattr(recorded, k)},
                     record)
    return cfg
