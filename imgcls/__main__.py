"""The `imgcls` command (pyproject's [project.scripts]) and `python -m imgcls`. main() imports the CLI (typer, rich
and every command's module: about a second) and runs it; this module stays light (imgcls.process alone), so that a
Ctrl-C or SIGTERM during that import says the one `interrupted:` line every command says, not a traceback."""
from __future__ import annotations

import sys

from imgcls.process import Terminated, end_by_sigterm, main_process, takes_sigterm

STARTING = "interrupted: imgcls stopped while it was starting ({how}), before its command began: nothing was changed"


def _terminated(signum, frame) -> None:
    raise Terminated


def main() -> None:
    """Import the CLI and run it. SIGTERM is taken as Ctrl-C during the import where a command would take it
    (process.takes_sigterm: not under torchrun, nor over a caller's own handler): the line said, the process ends by
    SIGTERM as a command's does; Ctrl-C: the line, exit 130."""
    import signal
    taken = takes_sigterm()
    try:
        try:
            if taken:
                signal.signal(signal.SIGTERM, _terminated)
            from imgcls.cli import main as run
        finally:
            if taken and signal.getsignal(signal.SIGTERM) is _terminated:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except KeyboardInterrupt as e:     # a SIGTERM raised in the finally above, once the import was done, too
        term = isinstance(e, Terminated)
        if main_process():          # under torchrun, rank 0 alone says it (imgcls.console.interrupted)
            print(STARTING.format(how="SIGTERM" if term else "Ctrl-C"), file=sys.stderr, flush=True)
        if term:
            end_by_sigterm()
        raise SystemExit(143 if term else 130) from None
    run()


if __name__ == "__main__":
    main()
