"""`imgcls tune`. Its flags are TuneConfig's fields (the search) and TrainConfig's (the fixed options of every
trial), built from their declarations (imgcls.options)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import OptSrc, Quiet, command
from imgcls.options import Given, cli_fields
from imgcls.outputs import BEST_CONFIG
from imgcls.run_names import RUN_CONFIG
from imgcls.train.config import NOT_TRIAL_FLAGS, OUTPUT, TrainConfig
from imgcls.tune import SEARCH, TuneConfig

EPILOG = f"""Examples:

  imgcls tune data/splits.csv --study lite0 --model tf_efficientnet_lite0 --pretrained --epochs 3 --img-size 96 --trials 12

  imgcls tune --study lite0 --trials 30

  imgcls tune --study mine --space space.yaml --timeout 2h

  imgcls tune --study big --storage postgresql://user@db/optuna --trials 200

  imgcls tune --show-space

  imgcls train --config outputs/tune/lite0/{BEST_CONFIG} --epochs 20"""


# every train flag fixes that option for all trials, but --out, --sampler and --metric (tune's own: the folder of
# studies, the Optuna sampler; train's class-balanced sampler comes from --config or the space; the objective, which
# is every trial's train --metric too), --name (tune names each trial's run folder OUT/STUDY/trial_NNNN) and
# --exist-ok (train's, into an existing --name folder: a trial's folder is new, an empty one is taken over and one
# of the user's refused before the study opens, so it would do nothing): NOT_TRIAL_FLAGS
TRIAL_FLAGS = tuple(n for n in cli_fields(TrainConfig) if n not in NOT_TRIAL_FLAGS)


# --show-space prints the space, no study: under torchrun it is refused as every one-process command is
@command("tune", epilog=EPILOG, options={"cfg": TuneConfig, "train": (TrainConfig, TRIAL_FLAGS)},
         modes=("show_space",))
def tune(src: OptSrc = None,
         show_space: Annotated[bool, typer.Option("--show-space", help="Print the default search space and exit.",
                                                  rich_help_panel=SEARCH)] = False,
         config: Annotated[Optional[Path], typer.Option(help=f"Fixed train options from a {RUN_CONFIG}; flags "
                                                        "override it.", rich_help_panel=OUTPUT,
                                                        show_default=False)] = None,
         quiet: Quiet = False, *, cfg: Given, train: Given) -> None:
    """Search imgcls train options with Optuna: pruned, resumable, parallel over processes -> OUT/STUDY/."""
    if show_space:
        from imgcls.tune.space import default_space_text
        typer.echo(default_space_text(), nl=False)
        return
    from imgcls.tune import run_tune
    overrides = train.explicit()
    if src is not None:
        overrides["src"] = str(src)
    # the --config file is run_tune's to read (once), as a Python caller's: it lays these flags over the file's
    # values, checks them with the space, and sets aside the file's name / out (a run's config.yaml's)
    base = TrainConfig.from_dict(overrides) if config else TrainConfig.resolve(overrides, validate=False)
    tc = cfg.build(train=base, typed=frozenset(train.given), search_typed=frozenset(cfg.given),
                   config=str(config) if config else None)
    # Ctrl-C: the running trial is recorded interrupted (rerun when the study resumes), run_tune says its
    # `interrupted:` line, the command exits 130; SIGTERM (`timeout 2h imgcls tune ...`, a batch job's time
    # limit) alike, then the process still ends by SIGTERM (exit 143: command()'s sigterm_interrupts)
    run_tune(tc)
