"""`imgcls export`. Its flags are ExportConfig's declarations (imgcls/export.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import Quiet, command
from imgcls.export import ExportConfig
from imgcls.options import Given
from imgcls.run_names import BEST_PT

EPILOG = f"""Examples:

  imgcls export outputs/runs/effnet

  imgcls export outputs/runs/effnet --onnx --out outputs/onnx/effnet

  imgcls export outputs/runs/effnet/{BEST_PT} --onnx --opset 13 --atol 1e-3"""


@command("export", epilog=EPILOG, options={"cfg": ExportConfig})
def export(run: Annotated[Path, typer.Argument(help="Run folder (every fold is exported) or checkpoint.",
                                               show_default=False)],
           onnx: Annotated[bool, typer.Option("--onnx", help="Export to ONNX, checked with onnxruntime (the only "
                                                              "format so far: also without the flag).",
                                              rich_help_panel="ONNX")] = False,
           out: Annotated[Optional[Path], typer.Option(help="Output folder (default: RUN/onnx).",
                                                       rich_help_panel="Output")] = None,
           quiet: Quiet = False, *, cfg: Given) -> None:
    """Export a trained run (single or multi-branch) to ONNX and check onnxruntime's output against torch's."""
    # ONNX is the only format: `imgcls export RUN` exports it (it stopped with "choose an export format: --onnx",
    # a flag the user had no choice but to type); --onnx is kept for the commands and scripts that name it
    del onnx
    from imgcls.export import export_onnx
    export_onnx(run, out, **cfg.keywords())
