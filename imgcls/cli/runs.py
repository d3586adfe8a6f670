"""`imgcls runs [DIR]`, `imgcls runs diff RUN_A RUN_B`, `imgcls runs report [DIR]`: compare experiments."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from imgcls.cli.common import Quiet, command
from imgcls.options import empty_path
from imgcls.options import Given
from imgcls.runs_config import RunsConfig

EPILOG = """Examples:

  imgcls runs

  imgcls runs outputs/runs --sort seconds --filter model=resnet10t --filter "val_macro_f1>0.5"

  imgcls runs --csv runs.csv

  imgcls runs diff outputs/runs/A outputs/runs/B

  imgcls runs report outputs --out outputs/runs_report.html"""


@command("runs", epilog=EPILOG, options={"cfg": RunsConfig})
def runs(args: Annotated[Optional[list[str]], typer.Argument(
             help="[DIR] (default outputs): the leaderboard of every run under it;  diff RUN_A RUN_B: their option "
                  "differences, metric and per-class F1 deltas;  report [DIR]: one self-contained HTML page "
                  "comparing the runs.",
             show_default=False, metavar="[DIR] | diff RUN_A RUN_B | report [DIR]")] = None,
         quiet: Quiet = False, *, cfg: Given) -> None:
    """Compare experiments: every run, k-fold set, tune trial and ensemble under outputs/, one metric for all."""
    from imgcls.console import interruption_leaves
    args = list(args or [])
    action = args[0] if args and args[0] in ("diff", "report") else "table"
    config = RunsConfig(**cfg.values)
    paths = args[1:] if action != "table" else args
    if "" in paths:     # its paths are text (a word `diff` / `report` first): not among _refuse_empty_paths' Path ones
        from imgcls.errors import UserError
        raise UserError(empty_path({"table": "DIR", "report": "DIR"}.get(action, "RUN")))
    with interruption_leaves(config.interruption_leaves(action, paths)):
        from imgcls.runs import run_runs
        run_runs(action, paths, config, typed=cfg.given)
