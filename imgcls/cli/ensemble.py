"""`imgcls ensemble`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from imgcls.cli.common import Quiet, command


@command("ensemble", epilog="Example: imgcls ensemble outputs/runs/effb3 outputs/runs/vit --method weighted "
                            "--weights auto --out outputs/ensembles/blend")
def ensemble(runs: Annotated[List[Path], typer.Argument(help="Run folders (a k-fold run counts as one member).",
                                                        show_default=False)],
             method: Annotated[str, typer.Option(help="soft | hard | weighted.")] = "soft",
             weights: Annotated[Optional[str], typer.Option(
                 help="auto (fit on validation predictions) or w1,w2,... (weighted / hard).")] = None,
             weight_metric: Annotated[Optional[str], typer.Option(
                 help="What auto weights optimise: logloss (soft/weighted default) | f1 (hard default).")] = None,
             out: Annotated[Optional[Path], typer.Option(
                 help="Ensemble folder (default: outputs/ensembles/<name>).")] = None,
             name: Annotated[Optional[str], typer.Option(help="Ensemble name (default: the --out folder's).")] = None,
             quiet: Quiet = False) -> None:
    """Vote over runs and folds; fit weights on out-of-fold predictions; write a spec predict reads."""
    from imgcls.ensemble import build_ensemble
    if weights and method == "soft":
        method = "weighted"
    build_ensemble(runs, method=method, weights=weights, out=out, name=name, metric=weight_metric)
