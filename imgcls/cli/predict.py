"""`imgcls predict`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand

from imgcls.cli.common import (Csv, Device, Layout, PathCol, Quiet, Workers, command, default_workers,
                               layout_options)


class _BareTTA(TyperCommand):
    """`--tta` given alone means the default views (`flip`): the next word is its value only when it reads as
    TTA views (flip, crops, ten, scales=..., none), so `--tta RUN` and `--tta --eval` keep RUN / --eval."""

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
                    is_value = False
                if not is_value:
                    args[i] = f"--tta={DEFAULT_VIEWS}"
        return super().parse_args(ctx, args)


@command("predict", cls=_BareTTA, epilog="Example: imgcls predict outputs/runs/effnet --data data/test --tta flip+crops "
                           "--sample-submission data/sample_submission.csv")
def predict(source: Annotated[Optional[Path], typer.Argument(
                help="Run folder, checkpoint, or ensemble folder / spec.yaml (default: the newest).",
                show_default=False)] = None,
            data: Annotated[Optional[Path], typer.Option(
                help="Test images: a folder, a manifest, or a competition CSV such as info.csv "
                     "(default: data/test).")] = None,
            out: Annotated[Optional[Path], typer.Option(
                help="Output folder (default: outputs/predictions/<run or ensemble name>).")] = None,
            tta: Annotated[str, typer.Option(
                help="Test-time augmentation: none, flip, crops (five), ten, scales=0.9,1.0,1.1, joined by '+'; "
                     "a bare --tta means flip.")
            ] = "none",
            tta_merge: Annotated[str, typer.Option(help="mean (of probabilities) | logits (mean, then softmax).")
                                 ] = "mean",
            format: Annotated[str, typer.Option(
                "--format", help="Submission columns: id,label | mask (ImageID,ans; class ids) | dacon (id,artist) "
                                 "| ID_COL,LABEL_COL.")] = "id,label",
            sample_submission: Annotated[Optional[Path], typer.Option(
                help="The competition's sample submission: filled in its row order; missing/extra ids fail.")
            ] = None,
            probs_format: Annotated[str, typer.Option(help="Per-image probabilities file: parquet | csv.")
                                    ] = "parquet",
            eval: Annotated[bool, typer.Option(
                "--eval", help="On labelled data: macro-F1 / accuracy with and without TTA.")] = False,
            eval_split: Annotated[Optional[str], typer.Option(
                help="Rows --eval scores: all | val | test (default: val when the data has a split column with val "
                     "rows, as a splits.csv does; else all).", show_default=False)] = None,
            batch_size: Annotated[int, typer.Option(help="Images per batch (each with all its TTA views).")] = 32,
            amp: Annotated[bool, typer.Option(help="Mixed precision (float16) on CUDA.")] = True,
            device: Device = "auto", workers: Workers = default_workers(),
            layout: Layout = "auto", csv: Csv = None, path_col: PathCol = None,
            quiet: Quiet = False) -> None:
    """Predict test images with a run or an ensemble (TTA optional) -> probs + submission.csv."""
    from imgcls.predict import run_predict
    run_predict(source, data, out, tta=tta, tta_merge=tta_merge, fmt=format, sample_submission=sample_submission,
                probs_format=probs_format, evaluate=eval, device=device, batch_size=batch_size, workers=workers,
                amp=amp, opts=layout_options(layout, csv, path_col), eval_split=eval_split)
