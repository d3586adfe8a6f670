"""`imgcls tune`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import Device, OptSrc, Quiet, command
from imgcls.train.config import TrainConfig
from imgcls.tune import PRUNERS, SAMPLERS, TuneConfig

O = typer.Option
T = TuneConfig
EPILOG = ("Examples: imgcls tune data/splits.csv --study lite0 --model tf_efficientnet_lite0 --pretrained --epochs 3 "
          "--img-size 96 --trials 12  |  imgcls tune --study lite0 --space space.yaml --timeout 2h  |  "
          "imgcls tune --study big --storage postgresql://user@db/optuna (run it on several machines)  |  "
          "imgcls tune --show-space > space.yaml")
# the fixed `imgcls train` options tune takes as flags (every other one: --config FILE)
TRAIN_FLAGS = ("src", "model", "pretrained", "img_size", "epochs", "batch_size", "folds", "val_split", "cache",
               "workers", "device", "seed")


@command("tune", epilog=EPILOG)
def tune(ctx: typer.Context,
         src: OptSrc = None,
         study: Annotated[Optional[str], O(help="Study name: its folder is OUT/STUDY; the same name resumes it.",
                                           show_default=False)] = None,
         space: Annotated[Optional[Path], O(help="YAML search space over imgcls train options (default: the "
                                            "shipped one, see --show-space).")] = None,
         show_space: Annotated[bool, O("--show-space", help="Print the default search space and exit.")] = False,
         trials: Annotated[int, O(help="Trials in the study at most (every process and re-run counted).")] = T.trials,
         timeout: Annotated[Optional[str], O(help="Wall-clock budget of this command: 2h, 45m, 90s, 1h30m; a "
                                             "trial running at the end is stopped and recorded as failed.")] = None,
         storage: Annotated[Optional[str], O(help="Optuna RDB URL (postgresql://, mysql://, sqlite:///) or a journal "
                                             "file; default sqlite:///OUT/STUDY/study.db.")] = None,
         out: Annotated[Path, O(help="Folder of studies.")] = Path(T.out),
         sampler: Annotated[str, O(help=" | ".join(SAMPLERS) + " (seeded with --seed).")] = T.sampler,
         pruner: Annotated[str, O(help=" | ".join(PRUNERS) + ": stop trials whose per-epoch metric lags.")] = T.pruner,
         prune_startup: Annotated[int, O(help="--pruner median: completed trials before any is pruned.")] =
         T.prune_startup,
         prune_warmup: Annotated[int, O(help="--pruner median: epochs every trial runs before it can be pruned.")] =
         T.prune_warmup,
         metric: Annotated[str, O(help="macro_f1 | accuracy | loss: the best epoch's validation value (mean over "
                                  "folds with --folds).")] = T.metric,
         keep: Annotated[str, O(help="best-K: only the K best trials keep their checkpoints | all.")] = T.keep,
         config: Annotated[Optional[Path], O(help="Fixed train options from a config.yaml (flags override it).")] =
         None,
         model: Annotated[str, O(help="timm model (fixed unless the space has `model`).")] = TrainConfig.model,
         pretrained: Annotated[bool, O(help="Start from pretrained weights.")] = TrainConfig.pretrained,
         img_size: Annotated[Optional[int], O(help="Input size (default: the model's).")] = TrainConfig.img_size,
         epochs: Annotated[int, O(help="Epochs of each trial.")] = TrainConfig.epochs,
         batch_size: Annotated[int, O(help="Batch size.")] = TrainConfig.batch_size,
         folds: Annotated[Optional[str], O(help="all | K | K,L: each trial trains these folds; the objective is "
                                           "the mean over them.")] = TrainConfig.folds,
         val_split: Annotated[float, O(help="Validation fraction when the data has no split column.")] =
         TrainConfig.val_split,
         cache: Annotated[str, O(help="ram | disk | none: decoded-image cache.")] = TrainConfig.cache,
         workers: Annotated[Optional[int], O(help="DataLoader workers (default as in imgcls train).")] = None,
         device: Device = TrainConfig.device,
         seed: Annotated[int, O(help="Seed of the sampler and of every trial's training.")] = TrainConfig.seed,
         quiet: Quiet = False) -> None:
    """Search imgcls train options with Optuna (TPE, pruning, resumable, parallel over processes) -> OUT/STUDY/."""
    if show_space:
        from imgcls.tune.space import default_space_text
        typer.echo(default_space_text(), nl=False)
        return
    from imgcls.errors import UserError
    from imgcls.tune import run_tune
    if study is None:
        raise UserError("--study NAME is missing: it names the study (and OUT/NAME); the same name resumes it")
    given = {k for k in ctx.params if getattr(ctx.get_parameter_source(k), "name", "") == "COMMANDLINE"}
    values = {k: ctx.params[k] for k in TRAIN_FLAGS}
    values["src"] = str(src) if src is not None else None
    if config is not None:
        train = TrainConfig.load(config).to_dict()
        train.update({k: values[k] for k in TRAIN_FLAGS if k in given})
    else:
        train = TrainConfig().to_dict()
        train.update(values)
    train.update(out=TrainConfig.out, name=None)   # trials are named and placed by tune
    cfg = TuneConfig(study=study, train=TrainConfig.from_dict(train), space=str(space) if space else None,
                     trials=trials, timeout=timeout, storage=storage, out=str(out), sampler=sampler, pruner=pruner,
                     prune_startup=prune_startup, prune_warmup=prune_warmup, metric=metric, keep=keep)
    try:
        run_tune(cfg)
    except KeyboardInterrupt:
        from imgcls.console import console
        console.print(f"interrupted: trials.csv / report.html written for the trials so far in {cfg.study_dir()}; "
                      f"run the same command to resume")
        raise typer.Exit(130) from None
