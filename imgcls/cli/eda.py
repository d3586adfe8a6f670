"""`imgcls eda`. Its flags are EdaConfig's, LayoutOptions', --workers' and --max-pixels' declarations."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgcls.cli.common import Quiet, Src, command
from imgcls.eda_config import DEFAULT_OUT, EdaConfig
from imgcls.image_options import ImageLimits
from imgcls.layout_options import LayoutOptions
from imgcls.options import Given
from imgcls.parallel import ParallelOptions

EPILOG = """Examples:

  imgcls eda data/raw --out outputs/eda

  imgcls eda data/kaggle --csv data/kaggle/train.csv --path-col image --label-col label --samples 4

  imgcls eda data/train --test data/test   # test sizes beside train's, test images copied from train"""


@command("eda", epilog=EPILOG, options={"cfg": EdaConfig, "layout": LayoutOptions, "run": ParallelOptions,
                                        "limits": ImageLimits})
def eda(src: Src = None,
        out: Annotated[Path, typer.Option(help="Output folder.", rich_help_panel="Output")] = Path(DEFAULT_OUT),
        quiet: Quiet = False, *, cfg: Given, layout: Given, run: Given, limits: Given) -> None:
    """Explore a dataset: class counts, size heatmap, sample grids, errors, exact duplicates -> report.html."""
    from imgcls.console import interruption_leaves, nothing_written
    with interruption_leaves(nothing_written(out)):     # its files are written as one set at its end (output_set)
        from imgcls.eda import run_eda
        run_eda(src, out, layout.build(), workers=run.values["workers"], max_pixels=limits.values["max_pixels"],
                **cfg.keywords())
