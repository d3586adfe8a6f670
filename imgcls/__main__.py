"""The `imgcls` command (pyproject's [project.scripts]) and `python -m imgcls`. main() imports the CLI (typer, rich
and every command's module: about a second) and runs it; this module stays light (imgcls.process alone), so that a
Ctrl-C or SIGTERM during that import says the one `interrupted:` line every command says, not a traceback."""
from __future__ import annotations

from imgcls.process import Terminated, end_by_sigterm, say_stopped_starting, starting_sigterm, takes_sigterm


def main() -> None:
    """Import the CLI and run it. SIGTERM is taken as Ctrl-C from the import to the command's body, which takes it
    itself (cli.common.sigterm_interrupts), where a command would take it (process.takes_sigterm: not under torchrun,
    nor over a caller's own handler): the line said, the process ends by SIGTERM as a command's does; Ctrl-C: the
    line, exit 130."""
    import signal
    taken = takes_sigterm()
    try:
        if taken:
            signal.signal(signal.SIGTERM, starting_sigterm)
        try:
            from imgcls.cli import main as run
            # Typer building the commands from their signatures (typer.main.get_command) before any parsing: the
            # line, not a traceback; a command's body takes its own Ctrl-C (cli.common.one_line_errors), and one
            # while click parses the command line comes back as exit 130 (cli.common._OneLineErrors)
            run()
        except KeyboardInterrupt as e:
            term = isinstance(e, Terminated)
            say_stopped_starting(term)
            if term:
                end_by_sigterm()
            raise SystemExit(143 if term else 130) from None
    finally:
        if taken and signal.getsignal(signal.SIGTERM) is starting_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":
    main()
