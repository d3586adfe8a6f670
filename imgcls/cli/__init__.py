"""The `imgcls` command line. Thin: each command parses options and calls a library function.

Commands live one module per step in this package (imgcls/cli/<step>.py) and register themselves on `app`;
heavy libraries (torch, rembg, deepface) are imported inside the command bodies so `imgcls --help` stays instant.
"""
from __future__ import annotations

import gc
import importlib
import pkgutil

import typer

from imgcls import __version__
from imgcls.cli.common import app

# The order commands appear in `imgcls --help`: the pipeline's order; anything else after.
ORDER = ["eda", "clean", "preprocess", "split", "train", "tune", "ensemble", "predict", "export", "runs", "models"]


def _register_commands() -> None:
    names = [m.name for m in pkgutil.iter_modules(__path__) if m.name != "common"]
    for name in sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        importlib.import_module(f"{__name__}.{name}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"imgcls {__version__}")
        raise typer.Exit()


EPILOG = """Examples:

  imgcls eda data/raw

  imgcls clean data/raw && imgcls preprocess data/clean && imgcls split data/processed

  imgcls train --model tf_efficientnet_lite0 && imgcls predict --tta flip

  imgcls runs

  imgcls train --help   # every command's options, with examples"""


@app.callback(epilog=EPILOG)
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Image-classification competitions from raw folders to a submission file.

    Each step reads the previous step's files and writes its own:
    eda -> clean -> preprocess -> split -> train -> ensemble -> predict.
    """


_register_commands()


def main() -> None:
    try:
        app()
    finally:
        # Python's last garbage collection at exit walks every object torch, timm and pandas made: 1.0-1.3 s of a
        # train's or predict's exit on this 2-core CPU, 0.25-0.28 s with them frozen (docs/BENCHMARKS.md). The
        # outputs are written and closed by now, atexit handlers still run, the memory goes with the process.
        gc.freeze()
