"""This process: which torchrun process it is (from the variables torchrun sets in every process before it starts),
and its end by SIGTERM. Light (os and signal alone): the entry point (imgcls.__main__) reads it before the CLI is
imported; imgcls.console, cli.common and parallel use it."""
from __future__ import annotations

import os
import signal


def under_torchrun() -> bool:
    """Whether torchrun started this process among others: WORLD_SIZE above 1 (torchrun sets it in every process
    before it starts; unset or unreadable: no)."""
    try:
        return int(os.environ.get("WORLD_SIZE") or 1) > 1
    except ValueError:
        return False


def main_process() -> bool:
    """False in a torchrun process other than rank 0: torchrun sets WORLD_SIZE and RANK in every process before it
    starts (read as imgcls.train.dist.init_distributed reads them), so a line said before the process group exists
    (the default input, the layout read) is silenced too."""
    try:
        return not under_torchrun() or int(os.environ.get("RANK") or 0) == 0
    except ValueError:
        return True


def first_on_machine() -> bool:
    """False in a torchrun process other than the first of its machine (LOCAL_RANK 0): a check of the options and
    files that every process of a machine runs alike fails alike, and that process says it for them all
    (imgcls.console.same_on_every_process)."""
    try:
        return not under_torchrun() or int(os.environ.get("LOCAL_RANK") or 0) == 0
    except ValueError:
        return True


STARTING = "interrupted: imgcls stopped while it was starting ({how}), before its command began: nothing was changed"


def say_stopped_starting(term: bool = False) -> None:
    """The one line of a Ctrl-C (SIGTERM: `term`) that came before a command's body took it: while the CLI was
    imported (imgcls.__main__), Typer built its commands or click parsed the command line (cli.common); rank 0 alone
    says it under torchrun."""
    if main_process():
        import sys
        print(STARTING.format(how="SIGTERM" if term else "Ctrl-C"), file=sys.stderr, flush=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM to a step that takes it as Ctrl-C (cli.common.sigterm_interrupts, and the entry point before that, from
    the CLI's import on: starting_sigterm): what catches Ctrl-C catches it (train's `interrupted:` line, its
    clean-up); the process then ends by SIGTERM, not with Ctrl-C's 130."""


_starting = {"sigterm": False}     # whether starting_sigterm raised: a SIGTERM before a command's body began


def starting_sigterm(signum, frame) -> None:
    """The entry point's SIGTERM handler (imgcls.__main__) from the CLI's import to the command's body, which sets
    its own (cli.common.sigterm_interrupts: takes_sigterm counts this one as none): Terminated, remembered for the
    line of a stop that Typer turned into a bare exit 130 (cli.common._OneLineErrors: stopped_by_sigterm)."""
    _starting["sigterm"] = True
    raise Terminated


def stopped_by_sigterm() -> bool:
    """Whether starting_sigterm was called in this process."""
    return _starting["sigterm"]


def takes_sigterm() -> bool:
    """Whether SIGTERM may be taken as Ctrl-C here: not under torchrun, which sends SIGTERM to every process when one
    ends with an error (the line would name another cause beside that error) and whose ranks may wait in a
    collective, where no Python handler runs; nor where the caller set its own handler, or outside the main thread
    (where Python runs them)."""
    import threading
    return not under_torchrun() and threading.current_thread() is threading.main_thread() \
        and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, starting_sigterm)


def end_by_sigterm() -> None:
    """This process ends as SIGTERM's default ends it (exit 143 to a shell, -15 to Popen): the default handler set
    back and the signal sent again. What a SIGTERM handler that has done its part does (parallel.closed_pool's,
    every command's cli.common.sigterm_interrupts, the entry point's while the CLI is imported, and a forked child
    that inherited one)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
