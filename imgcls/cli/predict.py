"""`imgcls predict`. Its flags are PredictConfig's and the input-layout declarations (imgcls/predict.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import Command, Quiet, command
from imgcls.layout_options import LayoutOptions
from imgcls.options import Given
from imgcls.outputs import SPEC_NAME, SUBMISSION_CSV
from imgcls.pipeline import TEST_DATA
from imgcls.predict_config import PredictConfig


class _BareTTA(Command):
    """`--tta` given alone means the default views (`flip`): the next word is its value when it reads as TTA
    views (flip, crops, ten, scales=..., none) or is no file or folder (a mistyped value, `--tta flp`, gets --tta's
    own error), so `--tta RUN` and `--tta --eval` keep RUN / --eval."""

    def parse_args(self, ctx, args):
        from imgcls.errors import UserError
        from imgcls.tta import DEFAULT_VIEWS, parse_tta
        args = list(args)
        for i, a in enumerate(args):
            if a == "--":
                break
            if a == "--tta":
                nxt = args[i + 1] if i + 1 < len(args) else None
                try:
                    is_value = nxt is not None and not nxt.startswith("-") and parse_tta(nxt) is not None
                except UserError:
                    is_value = not Path(nxt).exists()
                if not is_value:
                    args[i] = f"--tta={DEFAULT_VIEWS}"
        return super().parse_args(ctx, args)


EPILOG = """Examples:

  imgcls predict outputs/runs/effnet --data data/test --tta flip+crops --sample-submission data/sample_submission.csv

  imgcls predict outputs/runs/effnet --data data/splits.csv --eval   # one run: the val rows it validated on

  imgcls predict outputs/runs/effnet_kfold --data data/splits.csv --eval --eval-split test   # k-fold: test rows

  imgcls predict outputs/ensembles/blend --data data/test --tta --format mask"""


@command("predict", cls=_BareTTA, epilog=EPILOG,
         options={"cfg": PredictConfig, "layout": (LayoutOptions, ("layout", "csv", "path_col", "label_col", "ext"))})
def predict(source: Annotated[Optional[Path], typer.Argument(
                help=f"Run folder, checkpoint, or ensemble folder / {SPEC_NAME} (default: the newest).",
                show_default=False)] = None,
            data: Annotated[Optional[Path], typer.Option(
                help="Test images: a folder, a manifest, or a competition CSV such as info.csv "
                     f"(default: the first of {', '.join(TEST_DATA)} that exists).",
                rich_help_panel="Input layout")] = None,
            out: Annotated[Optional[Path], typer.Option(
                help="Output folder (default: outputs/predictions/<run or ensemble name>).",
                rich_help_panel="Output")] = None,
            quiet: Quiet = False, *, cfg: Given, layout: Given) -> None:
    """Predict test images with a run or an ensemble (TTA optional) -> probs + submission.csv."""
    from imgcls.predict import run_predict
    summary = run_predict(source, data, out, opts=layout.build(), **cfg.keywords())
    from imgcls.console import print_output
    # the submission file on stdout, --quiet or not: what a script uploads next (SUB=$(imgcls predict -q ...))
    print_output(out / SUBMISSION_CSV if out else Path(summary["submission"]).relative_to(Path.cwd()))
