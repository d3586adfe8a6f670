"""`imgcls export`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import Quiet, command
from imgcls.errors import UserError


@command("export", epilog="Example: imgcls export outputs/runs/effnet --onnx --out outputs/onnx/effnet")
def export(run: Annotated[Path, typer.Argument(help="Run folder (every fold is exported) or checkpoint.",
                                               show_default=False)],
           onnx: Annotated[bool, typer.Option("--onnx", help="Export to ONNX (checked with onnxruntime).")] = False,
           out: Annotated[Optional[Path], typer.Option(help="Output folder (default: RUN/onnx).")] = None,
           opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
           atol: Annotated[float, typer.Option(help="Largest allowed |onnxruntime - torch| probability.")] = 1e-4,
           quiet: Quiet = False) -> None:
    """Export a trained run (single or multi-branch) and check onnxruntime's output against torch's."""
    if not onnx:
        raise UserError("choose an export format: --onnx (the only one so far)")
    from imgcls.export import export_onnx
    export_onnx(run, out, opset=opset, atol=atol)
