"""`imgcls predict`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import (Csv, Device, Layout, PathCol, Quiet, Workers, command, default_workers,
                               layout_options)


@command("predict", epilog="Example: imgcls predict outputs/runs/effnet --data data/test --tta flip+crops "
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
                help="Test-time augmentation: none, flip, crops (five), ten, scales=0.9,1.0,1.1, joined by '+'.")
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
            batch_size: Annotated[int, typer.Option(help="Images per batch (each with all its TTA views).")] = 32,
            amp: Annotated[bool, typer.Option(help="Mixed precision (float16) on CUDA.")] = True,
            device: Device = "auto", workers: Workers = default_workers(),
            layout: Layout = "auto", csv: Csv = None, path_col: PathCol = None,
            quiet: Quiet = False) -> None:
    """Predict test images with a run or an ensemble (TTA optional) -> probs + submission.csv."""
    from imgcls.predict import run_predict
    run_predict(source, data, out, tta=tta, tta_merge=tta_merge, fmt=format, sample_submission=sample_submission,
                probs_format=probs_format, evaluate=eval, device=device, batch_size=batch_size, workers=workers,
                amp=amp, opts=layout_options(layout, csv, path_col))
