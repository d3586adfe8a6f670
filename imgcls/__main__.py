"""The `imgcls` command (pyproject's [project.scripts]) and `python -m imgcls`. main() imports the CLI (typer, rich
and every command's module: about a second) and runs it; this module stays light (imgcls.process alone), so that a
Ctrl-C or SIGTERM during that import says the one `interrupted:` line every command says, not a traceback."""
from __future__ import annotations

from imgcls.process import Terminated, end_by_sigterm, say_stopped_starting, takes_sigterm


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
        say_stopped_starting(term)
        if term:
            end_by_sigterm()
        raise SystemExit(143 if term else 130) from None
    try:
        run()
    except KeyboardInterrupt:
        # Typer building the commands from their signatures (typer.main.get_command) before any parsing: the line,
        # not a traceback; a command's body takes its own Ctrl-C (cli.common.one_line_errors), and one while click
        # parses the command line comes back as exit 130 (cli.common._OneLineErrors)
        say_stopped_starting()
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
