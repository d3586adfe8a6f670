"""`imgcls split`. Its flags are SplitConfig's, LayoutOptions', and --workers' declarations."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import OptSrc, Quiet, command
from imgcls.errors import UserError
from imgcls.layout_options import LayoutOptions
from imgcls.options import Given
from imgcls.pipeline import PIPELINE
from imgcls.parallel import ParallelOptions
from imgcls.split.config import SplitConfig

EPILOG = """Examples:

  imgcls split data/processed --val 0.2   # train/val, grouped by person, stratified by label

  imgcls split data/clean --folds 5 --test 0.2 --stratify mask,gender,age_band

  imgcls split data/raw --val 0.2 --test 0.2   # seed 001's 6:2:2 per class

  imgcls split data/raw --drop-ages 57-59 --relabel-age 29,59   # seed 003 / seed 004 label tricks

  imgcls split --check data/splits.csv --fix   # repair a contaminated split"""


@command("split", epilog=EPILOG, options={
    "cfg": SplitConfig,
    "layout": (LayoutOptions, ("layout", "csv", "path_col", "label_col", "image_dir", "ext")),
    "run": ParallelOptions})
def split(src: OptSrc = None,
          out: Annotated[Optional[str], typer.Option(
              help="Output table (manifest + split, fold, drop_reason); reports are written beside it. "
                   "Default data/splits.csv; with --check --fix, the checked file.", show_default=False,
              rich_help_panel="Output")] = None,
          check: Annotated[Optional[Path], typer.Option(
              help="Only check this split file for leaks (exit 1 if contaminated).", show_default=False,
              rich_help_panel="Check")] = None,
          fix: Annotated[bool, typer.Option(help="With --check: move each leaking group wholly to one side.",
                                            rich_help_panel="Check")] = False,
          quiet: Quiet = False, *, cfg: Given, layout: Given, run: Given) -> None:
    """Split a dataset into train / val / test or k folds without leaks: groups (people), exact and near
    duplicates never cross sides; stratified by label or attributes; per-split distribution report."""
    from imgcls.console import WRITES_NOTHING, interruption_leaves, nothing_written
    table = out or (check if check is not None and fix else dict(PIPELINE)["splits"])
    # its table and reports are written as one set at its end (output_set); --check alone writes nothing
    with interruption_leaves(WRITES_NOTHING if check is not None and not fix else
                             nothing_written(f"{table} and its reports")):
        from imgcls import split as sp

        config = cfg.build()
        workers = run.values["workers"]
        if check is not None:
            if src is not None:
                raise UserError("--check FILE checks an existing split; give either SRC or --check, not both")
            if layout.given:        # --check reads FILE as the table split wrote: a layout flag would do nothing
                flag = "--" + sorted(layout.given)[0].replace("_", "-")
                raise UserError(f"{flag} reads a dataset for a new split; --check FILE reads the table split wrote "
                                f"as it is: drop {flag}")
            sp.run_check(check, out, config, fix=fix, workers=workers, given=cfg.given)
            return
        if fix:
            raise UserError("--fix goes with --check FILE (a new split never has leaks: linked images are kept "
                            "together)")
        sp.run_split(src, table, layout.build(), config, workers=workers)
