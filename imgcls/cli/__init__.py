"""The `imgcls` command line. Thin: each command parses options and calls a library function.

Commands live one module per step in this package (imgcls/cli/<step>.py) and register themselves on `app`;
heavy libraries (torch, rembg, deepface) are imported inside the command bodies so `imgcls --help` stays instant.
"""
from __future__ import annotations

import gc
import importlib
import os
import pkgutil
import sys

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


BROKEN_PIPE_EXIT = 128 + 13     # killed by SIGPIPE, as the shell reports it: `yes | head -1` leaves yes's 141


def _pipe_probe() -> int | None:
    """A duplicate of stdout's descriptor where stdout is a pipe or socket (None otherwise): the way to ask, at the
    end, whether its reader went away, after rich (or click) has pointed descriptor 1 at os.devnull."""
    import stat
    try:
        if stat.S_ISFIFO(mode := os.fstat(1).st_mode) or stat.S_ISSOCK(mode):
            return os.dup(1)
    except OSError:
        pass
    return None


def _reader_gone(probe: int | None, stdout) -> bool:
    """Whether the command's exit 1 was rich's or click's answer to the reader of stdout's pipe (socket) going away
    (`imgcls runs | head -1` after head's line): that end is closed, and stdout was put aside (click: sys.stdout
    replaced; rich: descriptor 1 pointed at os.devnull)."""
    if probe is None:
        return False
    try:
        put_aside = sys.stdout is not stdout or not os.path.samestat(os.fstat(1), os.fstat(probe))
    except OSError:
        put_aside = True
    if not put_aside:
        return False
    import select
    poll = select.poll()
    poll.register(probe, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))


def main() -> None:
    probe, stdout = _pipe_probe(), sys.stdout
    try:
        app()
    except SystemExit as e:
        # rich and click answer a write to a closed pipe with exit 1 and no line: the reader's choice (head has its
        # lines), not a failure; exit as coreutils do, 128 + SIGPIPE
        if e.code == 1 and _reader_gone(probe, stdout):
            raise SystemExit(BROKEN_PIPE_EXIT) from None
        raise
    finally:
        # Python's last garbage collection at exit walks every object torch, timm and pandas made: 1.0-1.3 s of a
        # train's or predict's exit on this 2-core CPU, 0.25-0.28 s with them frozen (docs/BENCHMARKS.md). The
        # outputs are written and closed by now, atexit handlers still run, the memory goes with the process.
        gc.freeze()
