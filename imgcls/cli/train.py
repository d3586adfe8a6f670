"""`imgcls train`. Its flags are TrainConfig's fields (imgcls/train/config.py: defaults, choices, ranges, help)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import OptSrc, Quiet, as_named, command
from imgcls.options import Given
from imgcls.run_names import LAST_PT, RUN_CONFIG
from imgcls.train.config import OUTPUT, TrainConfig, refuse_config_with_resume, resume_folder

# what a stop before run_train's own `interrupted:` line (its run folder made, its resume begun) leaves
NOT_BEGUN = "nothing was written (it stopped before its run folder was made); the same command again starts the run"
RESUME_NOT_BEGUN = "nothing of the run was changed (it stopped before the resume began); the same command again " \
                   "resumes it"

EPILOG = """Examples:

  imgcls train --model tf_efficientnet_lite0 --epochs 10

  imgcls train --model resnet10t --no-pretrained --optimizer radam

  imgcls train data/splits.csv --model resnet10t --no-pretrained --heads multi --branch deep --loss focal --sampler weighted

  imgcls train --folds all --model tf_efficientnet_lite2 --amp

  imgcls train --model tf_efficientnet_lite2 --img-size 260 --crop-from 2   # test images a quarter of a painting

  imgcls train --resume outputs/runs/RUN

  torchrun --nproc_per_node 2 -m imgcls train --model resnet10t --no-pretrained"""


@command("train", epilog=EPILOG, options={"cfg": TrainConfig})
def train(src: OptSrc = None,
          config: Annotated[Optional[Path], typer.Option(help=f"Start from a {RUN_CONFIG}; flags override it.",
                                                         rich_help_panel=OUTPUT, show_default=False)] = None,
          resume: Annotated[Optional[Path], typer.Option(help=f"Continue this run folder from its {LAST_PT}, as its "
                                                         f"{RUN_CONFIG} records it (only the data path, --workers, "
                                                         "--device, --cache, --plots may differ).",
                                                         rich_help_panel=OUTPUT,
                                                         show_default=False)] = None,
          quiet: Quiet = False, *, cfg: Given) -> None:
    """Train a timm model: single or multi-branch heads, imbalance tools, k-fold, resumable -> outputs/runs/<RUN>/."""
    from imgcls.console import same_on_every_process
    from imgcls.train import run_train
    refuse_config_with_resume(config, resume)     # before any work: the run's record would win silently
    overrides = cfg.explicit()
    if src is not None:
        overrides["src"] = str(src)
    with same_on_every_process():     # under torchrun: a --config record refused once, not per process
        # a resume's flags are laid over its config.yaml by run_train (which reads it once), as for a Python caller
        resolved = TrainConfig.from_dict(overrides) if resume is not None else \
            TrainConfig.resolve(overrides, config=config, validate=False)
    # checked by run_train: what needs no torch / timm import first (the data path, the run name); SIGTERM
    # (`timeout 3600 imgcls train`): Ctrl-C's line (the run folder, --resume), exit 143 (command(): sigterm_interrupts)
    from imgcls.console import interruption_leaves
    # a stop before the run folder is made (its checks, the data's scan) wrote nothing; run_train's own line once
    # it is (the folder, --resume); "run the same command again to complete it" promised what a rerun does not do
    with interruption_leaves(NOT_BEGUN if resume is None else RESUME_NOT_BEGUN):
        run = run_train(resolved, resume=resume, typed=overrides)
    from imgcls.console import print_output
    # the run folder on stdout, --quiet or not: RUN=$(imgcls train -q ...) in a script; named as --out / --resume
    # named it (run_train returns it absolute)
    print_output(as_named(run, resume_folder(resume) if resume is not None else Path(resolved.out) / run.name))
