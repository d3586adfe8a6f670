"""`imgcls preprocess`. Its flags are PreprocessConfig's, LayoutOptions' and --workers' declarations."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgcls.cli.common import OptSrc, Quiet, command
from imgcls.layout_options import LayoutOptions
from imgcls.options import Given
from imgcls.outputs import MANIFEST_NAME, REPORT_HTML
from imgcls.pipeline import PIPELINE
from imgcls.parallel import ParallelOptions
from imgcls.preprocess.config import PreprocessConfig

EPILOG = """Examples:

  imgcls preprocess data/raw --size 384   # normalise (EXIF, RGB) and pad to 384x384: a cheap-to-decode cache

  imgcls preprocess data/raw --face-crop --remove-bg --size 384   # seed 003: deepface crop + rembg, white bg

  imgcls preprocess data/raw --face-crop --detector yunet --no-face center-crop --face-margin 0.3

  imgcls models fetch rembg   # once, before --remove-bg (installs u2netp.onnx, offline afterwards)"""


@command("preprocess", epilog=EPILOG, options={"cfg": PreprocessConfig, "layout": LayoutOptions, "run": ParallelOptions})
def preprocess(src: OptSrc = None,
               out: Annotated[Path, typer.Option(help=f"Output folder (mirrors SRC; {MANIFEST_NAME}, {REPORT_HTML}).",
                                                 rich_help_panel="Output")] = Path(dict(PIPELINE)["processed"]),
               quiet: Quiet = False, *, cfg: Given, layout: Given, run: Given) -> None:
    """Face crop (deepface), background removal (rembg) and resize, offline -> processed images + manifest.csv.
    Order: detect faces on the original, matte the whole photo (rembg), crop both, scale to --size, composite, pad.
    Resumable."""
    from imgcls.preprocess import run_preprocess
    run_preprocess(src, out, cfg.build(), layout.build(), workers=run.values["workers"])
