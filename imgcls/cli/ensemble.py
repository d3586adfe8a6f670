"""`imgcls ensemble`. Its flags are EnsembleConfig's declarations (imgcls/ensemble/build.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from imgcls.cli.common import Quiet, as_named, command
from imgcls.ensemble.config import ENSEMBLES_DIR, EnsembleConfig
from imgcls.options import Given


EPILOG = """Examples:

  imgcls ensemble outputs/runs/effb3 outputs/runs/vit --out outputs/ensembles/blend

  imgcls ensemble outputs/runs/effb3 outputs/runs/vit --method weighted --weights auto --out outputs/ensembles/blend

  imgcls ensemble outputs/runs/effb3 outputs/runs/vit outputs/runs/convnext --method hard --weights 2,1,1

  imgcls ensemble outputs/runs/mask outputs/runs/gender outputs/runs/age --combine profile   # train --target each"""


@command("ensemble", epilog=EPILOG, options={"cfg": EnsembleConfig})
def ensemble(runs: Annotated[List[Path], typer.Argument(help="Run folders (a k-fold run counts as one member).",
                                                        show_default=False)],
             out: Annotated[Optional[Path], typer.Option(
                 help="Ensemble folder (default: outputs/ensembles/<name>).", rich_help_panel="Output")] = None,
             name: Annotated[Optional[str], typer.Option(help="Ensemble name (default: the --out folder's).",
                                                         rich_help_panel="Output")] = None,
             quiet: Quiet = False, *, cfg: Given) -> None:
    """Vote over runs and folds; fit weights on out-of-fold predictions; write a spec predict reads."""
    from imgcls.ensemble import build_ensemble
    spec = build_ensemble(runs, out=out, name=name, **cfg.keywords())
    from imgcls.console import print_output
    # the ensemble folder on stdout, --quiet or not: what `imgcls predict` takes; named as --out named it
    # (build_ensemble returns it absolute)
    print_output(as_named(spec.path.parent, Path(out) if out is not None else ENSEMBLES_DIR / spec.name))
