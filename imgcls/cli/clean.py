"""`imgcls clean`. Its flags are CleanConfig's, LayoutOptions' and --workers' declarations (defaults, choices, ranges,
help)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgcls.cli.common import Quiet, Src, command
from imgcls.clean.config import DEFAULT_OUT, CleanConfig
from imgcls.layout_options import LayoutOptions
from imgcls.options import Given
from imgcls.outputs import MANIFEST_NAME, REPORT_HTML
from imgcls.parallel import ParallelOptions

EPILOG = """Examples:

  imgcls clean data/raw --out data/clean

  imgcls clean data/raw --out data/clean --dup-threshold 0.97 --undersample nearmiss --max-per-class 500

  imgcls clean data/raw --exact-only --no-ood --materialize link   # sha256 twins only, kept images as links"""


@command("clean", epilog=EPILOG, options={"cfg": CleanConfig, "layout": LayoutOptions, "run": ParallelOptions})
def clean(src: Src = None,
          out: Annotated[Path, typer.Option(help=f"Output folder ({MANIFEST_NAME}, {REPORT_HTML}).",
                                            rich_help_panel="Output")] = Path(DEFAULT_OUT),
          quiet: Quiet = False, *, cfg: Given, layout: Given, run: Given) -> None:
    """Mark exact / near duplicates, out-of-domain images and undersampled rows; nothing is deleted."""
    from imgcls.clean import run_clean
    from imgcls.console import same_on_every_process
    # under torchrun every process checks the same options and files (the data path, --out, the embedder's weights)
    # until the passes split by rank: a refusal there is said once, not once per process
    with same_on_every_process():
        run_clean(src, out, cfg.build(), layout.build(), workers=run.values["workers"])
