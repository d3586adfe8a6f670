"""Shared pieces of the CLI: the app, the error wrapper, and option types every command uses."""
from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
import typing
from pathlib import Path
from contextlib import contextmanager
from typing import Annotated, Callable, Iterator, Optional

import typer
import typer.core

from imgcls.console import (RERUN_COMPLETES, TORCHRUN_COMMANDS, error, interrupt_said, interrupted,
                            interruption_leaves, quiet_for, refuse_torchrun, what_interruption_left)
from imgcls.errors import UserError
from imgcls.options import cli_parameters, empty_path, from_cli
from imgcls.outputs import MANIFEST_NAME
from imgcls.process import Terminated     # the SIGTERM taken as Ctrl-C (declared there: the entry point takes it too)


class _UnwrappedExamples:
    """--help whose epilog's example lines are never wrapped: Typer's rich help folded a long example at the
    terminal's width (80 columns when piped: `imgcls clean -h | cat`), so copying the line ran half a command.
    The epilog is printed here after the rest of the help: its indented paragraphs (the examples) whole, however
    wide, its prose (`Examples:`) wrapped as Typer wraps it; the text is printed as written (no markup)."""

    def format_help(self, ctx, formatter):
        epilog = self.epilog
        if not epilog or self.rich_markup_mode is None:
            return super().format_help(ctx, formatter)
        self.epilog = None
        try:
            super().format_help(ctx, formatter)
        finally:
            self.epilog = epilog
        from rich.padding import Padding
        from rich.text import Text
        from typer import rich_utils
        console = rich_utils._get_rich_console()      # Typer's help console: its width, colours, stdout
        console.print()
        for i, para in enumerate(epilog.strip("\n").split("\n\n")):
            if i:
                console.print()
            if para[:1].isspace():                  # an example: one command per line, never folded
                for line in para.splitlines():
                    console.print(Text(" " + line.strip()), soft_wrap=True, highlight=False)
            else:
                console.print(Padding(Text(" ".join(para.split())), (0, 1)), highlight=False)
        console.print()


# A flag some commands take, typed to one that names the same thing otherwise: the flag it has instead, and what
# that does (`imgcls train train.csv --label-col artist`, as eda / clean / split take it: train's is --target)
OTHER_FLAG = {"--label-col": ("--target", "--target COLUMN trains on a column of the table whose values are the "
                                          "classes")}


class _UsageErrorsInContext:
    """A usage error raised while a command (or group) parses its arguments carries its context, whence
    _OneLineErrors names the command's help ('(see imgcls preprocess -h)'): click's parser raises an option typed
    without its value (BadOptionUsage: "Option '--oversample' requires an argument") with none. An unknown flag
    another command takes, where this one has its OTHER_FLAG, says that flag."""

    def parse_args(self, ctx, args):
        ex = _click_exceptions(type(self))
        try:
            _refuse_empty_paths(self, ctx, args, ex)
            return super().parse_args(ctx, args)
        except ex.NoSuchOption as e:
            flag, hint = OTHER_FLAG.get(e.option_name, (None, ""))
            if any(flag in p.opts for p in self.params):
                raise ex.UsageError(f"No such option: {e.option_name}; {hint}", ctx=ctx) from None
            if e.ctx is None:
                e.ctx = ctx
            raise
        except ex.UsageError as e:
            if e.ctx is None:
                e.ctx = ctx
            raise


def _takes_path(param) -> bool:
    """Whether a command's parameter takes a path: typed Path (Optional[Path], list[Path]), or an --out."""
    def is_path(annotation) -> bool:
        return annotation is Path or any(is_path(a) for a in typing.get_args(annotation))
    descriptor = getattr(param, "type_descriptor", None)
    return param.name == "out" or (descriptor is not None and is_path(descriptor.annotation))


def _refuse_empty_paths(command, ctx, args: list[str], ex) -> None:
    """An empty path typed (`--out "$OUT"`, `imgcls predict "$RUN"`, the shell variable unset) is one usage line:
    pathlib reads '' as '.', so eda, clean, preprocess, train, ensemble, export and predict wrote their outputs into
    the current folder and exited 0, and a source read as '.' was refused as the folder it is not."""
    if (ctx.resilient_parsing or not any(a == "" or a.endswith("=") for a in args)
            or any(a in ctx.help_option_names for a in args)):      # --help: the help, as before
        return
    try:
        opts, _, _ = command.make_parser(ctx).parse_args(args=list(args))
    except Exception:       # the parse's own error, which super().parse_args says
        return
    for param in command.get_params(ctx):
        given = opts.get(param.name)
        if "" in (given if isinstance(given, (list, tuple)) else [given]) and _takes_path(param):
            option = param.param_type_name == "option"
            raise ex.UsageError(empty_path(param.opts[0] if option else param.name.upper(), option), ctx=ctx)


class Command(_UsageErrorsInContext, _UnwrappedExamples, typer.core.TyperCommand):
    """Every imgcls command (command() uses it; a command's own class derives from it): examples never wrapped."""


class Group(_UsageErrorsInContext, _UnwrappedExamples, typer.core.TyperGroup):
    """A group of commands (`imgcls`, `imgcls models`): examples never wrapped."""


class _OneLineErrors(Group):
    """The command group, whose usage errors (an unknown flag or command, a value click cannot convert, a missing
    argument) are one line naming the fix and exit 2, as imgcls's own errors; Typer printed a usage line, a hint and
    a boxed message. Run standalone, the command runs in click's non-standalone mode and its errors are shown here:
    Typer's handler offers no other hook. The exception classes are taken from the click this group is built on
    (typer 0.29 vendors one as typer._click, older typer uses click itself)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        ex = _click_exceptions(type(self))
        _BODY["began"] = False
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ex.ClickException as e:
            if type(e).__name__ == "NoArgsIsHelpError":     # `imgcls` alone: the help (rich printed it), as Typer
                if e.format_message().strip():
                    typer.echo(e.format_message())
            else:
                _say_click_error(e)
            sys.exit(e.exit_code)
        except typer.Abort:
            typer.echo(ABORTED, err=True)
            sys.exit(1)
        if code == 130 and not _BODY["began"]:
            # Ctrl-C (or the entry point's SIGTERM) while click parsed the command line (its values, their
            # callbacks), before a command's body took it: Typer turned it into exit 130 saying nothing
            from imgcls.process import say_stopped_starting, stopped_by_sigterm
            say_stopped_starting(stopped_by_sigterm())
            if stopped_by_sigterm():
                _end_by_sigterm()
        sys.exit(code if isinstance(code, int) else 0)      # an Exit's code; a command returns None


def _say_click_error(e) -> None:
    """A click error (a ClickException: a usage error, a command's typer.BadParameter) as its one line: a usage
    error's names the command's help where it knows the command ('(see imgcls preprocess -h)')."""
    if isinstance(e, _click_exceptions(Command).UsageError):
        where = f" (see {e.ctx.command_path} -h)" if e.ctx is not None else ""
        error(" ".join(e.format_message().split()).rstrip(".") + where)
    else:
        error(" ".join(e.format_message().split()))


_BODY = {"began": False}    # whether a command's body (command()'s wrapper) began in this run of the command line


ABORTED = "Aborted!"     # what click says of an Abort (typer.Abort: a prompt's Ctrl-C), as the command line says it


def _click_exceptions(group: type):
    base = next(k for k in group.__mro__ if k.__name__ == "Command" and "click" in k.__module__)
    return importlib.import_module(base.__module__.rsplit(".", 1)[0] + ".exceptions")


app = typer.Typer(cls=_OneLineErrors, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode="rich", context_settings={"help_option_names": ["-h", "--help"]})


def command(name: str | None = None, *, options: dict | None = None, group: typer.Typer | None = None,
            modes: tuple[str, ...] = (), **kwargs) -> Callable:
    """Register a command on `app` (`group`: on that sub-app, e.g. `imgcls models`, named by its info.name); a
    UserError becomes one red line and exit code 2 (no traceback), Ctrl-C or SIGTERM one `interrupted:` line.

    `options={"cfg": TrainConfig}`: the command's flags for every CLI field of that config dataclass are built from
    its declarations (imgcls.options: defaults, choices, ranges, help, panel) and appended to the function's own
    parameters; the function receives `cfg=imgcls.options.Given(...)` (the values, and which were typed).
    `(Config, ("a", "b"))` instead of a class: only those fields. A name taken by the function's own parameters or
    by an earlier class is not that class's flag: it keeps its default (the command passes it on if it must).
    `modes`: the function's own flags that make it another job (tune's show_space: print the space and exit),
    named with the command in its torchrun refusal, which then gives the common reason, not the command's own."""
    options = {key: (v if isinstance(v, tuple) else (v, None)) for key, v in (options or {}).items()}

    def deco(fn: Callable) -> Callable:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name not in options]
        what = " ".join(["imgcls", *([group.info.name] if group is not None else []),
                         name or fn.__name__.replace("_", "-")])
        generated: list[inspect.Parameter] = []
        owned: dict[str, tuple[str, ...]] = {}      # key -> the fields whose flags that class's declarations built
        for key, (cls, only) in options.items():
            taken = {p.name for p in own + generated}
            params = cli_parameters(cls, skip=taken, only=only, command=what.removeprefix("imgcls "))
            owned[key] = tuple(p.name for p in params)
            generated += params
        if generated:   # --help order: arguments, the config's panels, then the command's own options
            kw_only = inspect.Parameter.KEYWORD_ONLY
            args = [p.replace(kind=kw_only) for p in own if _is_argument(p)]
            rest = [p.replace(kind=kw_only) for p in own if not _is_argument(p)]
            params = args + generated + rest + [inspect.Parameter(CTX, kw_only, annotation=typer.Context)]
        else:
            params = own
        signature = inspect.Signature(params, return_annotation=None)

        @functools.wraps(fn)
        def wrapper(*args, **kw):
            _BODY["began"] = True       # its Ctrl-C is its own line (one_line_errors)
            with one_line_errors(what, kw.get("quiet", False)), \
                    sigterm_interrupts(what):   # `timeout 1h imgcls clean ...`: Ctrl-C's `interrupted:` line, exit 143
                from imgcls.fsutil import check_file_name_encoding
                check_file_name_encoding()  # every command reads or writes file names
                if what not in TORCHRUN_COMMANDS:
                    # each torchrun process would run it whole, into the same output
                    refuse_torchrun(" ".join([what, *("--" + m.replace("_", "-") for m in modes if kw.get(m))]))
                if options:
                    ctx = kw.pop(CTX, None)   # flags typed on the command line (compared by name: typer vendors click)
                    given = set() if ctx is None else {
                        k for k in ctx.params if getattr(ctx.get_parameter_source(k), "name", "") == "COMMANDLINE"}
                    received = {key: from_cli(cls, kw, given, owned[key]) for key, (cls, _) in options.items()}
                    for p in generated:
                        kw.pop(p.name, None)
                    kw.update(received)
                fn(*args, **kw)             # a command's exit code is 0, or its typer.Exit's
        wrapper.__signature__ = signature
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__     # typer reads the signature above, not fn's
        # which config classes the flags come from (tests/test_options.py)
        wrapper.imgcls_options = {key: (cls, owned[key]) for key, (cls, _) in options.items()}
        (app if group is None else group).command(name, **{"cls": Command, **kwargs})(wrapper)
        return fn
    return deco


SAID_ELSEWHERE_WAIT_S = 10.0    # how long a torchrun process waits for another to say the error they share


class _SigtermInterrupts:
    """sigterm_interrupts' SIGTERM handler: raises Terminated in the process that set it, once (a second SIGTERM,
    while the step says its line and cleans up, ends the process at once, as before). A forked child that
    inherited it before setting its own (a pool's worker) ends by SIGTERM as before. `after_pool`: a pool's own
    SIGTERM handler (parallel.closed_pool) stops its workers, then calls this one."""
    after_pool = True

    def __init__(self):
        import threading
        self.pid = os.getpid()
        self.raised = False     # whether it raised Terminated in this process (sigterm_interrupts: one that vanished)
        self.pending = False    # a Terminated a finalizer swallowed, not raised again yet (unraisable)
        # `pending` and the handler set, against send_again's check-and-send (re-entrant: the handler may run in
        # the main thread while it holds it)
        self.lock = threading.RLock()
        self.again = None       # send_again's thread

    def __call__(self, signum, frame):
        import signal

        from imgcls.process import end_by_sigterm
        if os.getpid() != self.pid:     # before the lock: a child forked while send_again held it never gets it
            end_by_sigterm()
            return
        with self.lock:
            self.pending = False
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if callable(signal.getsignal(signal.SIGCHLD)):
            # torch's DataLoader handler: the workers the same SIGTERM ended (`timeout` signals the whole process
            # group) raised its RuntimeError 'DataLoader worker (pid N) is killed by signal: Terminated' over this
            # Terminated as it unwound (a tune trial failed, the study went on: exit 0)
            signal.signal(signal.SIGCHLD, _ignore_signal)
        self.raised = True
        raise Terminated

    def unraisable(self, unraisable) -> None:
        """sys.unraisablehook while the handler is set: Python runs a handler at the main thread's next bytecode,
        which may be a finalizer's (a __del__, a weakref callback: torch's DataLoader iterator, a pool's executor),
        where the raised Terminated is only printed ('Exception ignored in') and the step ran on to its end, exit 0.
        It is raised again outside it: this handler set back, the signal sent again from a thread (sent from here,
        it would be raised in this hook, where it is ignored too) until the handler runs (send_again). A SIGTERM
        that runs the handler here, once it is set back (send_again's, a second `kill`), is armed again alike."""
        if isinstance(unraisable.exc_value, Terminated) and os.getpid() == self.pid:
            while True:
                try:
                    self.arm()
                    return
                except Terminated:
                    pass
        self.hook(unraisable)

    def arm(self) -> None:
        """A swallowed Terminated pending: the handler set back, send_again's thread running."""
        import signal
        import threading
        with self.lock:
            self.pending = True
            signal.signal(signal.SIGTERM, self)
        if self.again is None or not self.again.is_alive():
            self.again = threading.Thread(target=self.send_again, daemon=True)
            self.again.start()

    def send_again(self, every_s: float = 0.05, tries: int = 600) -> None:
        """SIGTERM to the main thread every `every_s` while a swallowed Terminated is pending: one sent once can
        land between the main thread's last check and a sleep or a wait it then blocks in (seen: `time.sleep(8)`
        ran to its end). The check and the send hold the lock the handler takes, so none comes after it ran."""
        import signal
        import threading
        import time
        main = threading.main_thread().ident
        for _ in range(tries):
            time.sleep(every_s)
            with self.lock:
                if not self.pending:
                    return
                signal.pthread_kill(main, signal.SIGTERM)

    def stop(self) -> None:
        """No signal sent again from here on (sigterm_interrupts' block ended)."""
        with self.lock:
            self.pending = False


def _ignore_signal(signum, frame) -> None:
    """A Python handler that does nothing (SIG_IGN would reap SIGCHLD's children before their pools wait for them)."""


@contextmanager
def sigterm_interrupts(what: str = "imgcls") -> Iterator[None]:
    """Around every command's body (command()), whose Ctrl-C line says how to continue (train: the run folder keeps
    its epochs, --resume; clean, preprocess, eda, predict, ensemble: one_line_errors' `run the same command again`):
    SIGTERM (`timeout 3600 imgcls train ...` in a script, `kill PID`) is taken as Ctrl-C, so the step says that
    line and cleans up (a --cache disk memmap) where it ended silently; the process still ends by SIGTERM (exit
    143: one_line_errors). Only where process.takes_sigterm (not under torchrun, nor over a caller's own handler,
    nor outside the main thread). A step (`what`: `imgcls ensemble`) that ran to its end over its Terminated says
    so, then ends by SIGTERM all the same; so does one that stopped on a refusal (its line) or a crash (its
    traceback) after a Terminated it swallowed, and one that ended by its own typer.Exit or Abort there (no
    traceback: they are no crash; an Exit of 0 is an end, said as one), by sys.exit (as an Exit; a message said as
    Python says it) or by a click error (typer.BadParameter: its one line, as the command line says it)."""
    import signal

    from imgcls.process import takes_sigterm
    if not takes_sigterm():
        yield
        return
    handler = _SigtermInterrupts()
    handler.hook = sys.unraisablehook
    signal.signal(signal.SIGTERM, handler)
    sys.unraisablehook = handler.unraisable     # a Terminated a finalizer swallowed: raised again
    try:
        try:
            yield
        finally:
            try:
                handler.stop()      # a signal sent again before it may run the handler here: the rest still runs
            finally:
                if sys.unraisablehook == handler.unraisable:
                    sys.unraisablehook = handler.hook
                if signal.getsignal(signal.SIGTERM) is handler:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except UserError as e:
        # a refusal after a Terminated that vanished (or that the step's clean-up replaced): one_line_errors says
        # it, and the process still ends by SIGTERM
        e.after_sigterm = e.after_sigterm or handler.raised
        raise
    except (typer.Exit, typer.Abort) as e:
        # the command's own end (click's Exit / Abort where typer uses click's), Exceptions but no crash: no
        # traceback. After a Terminated that vanished, an Exit of 0 is the step's end (below), any other code or an
        # Abort (said as the command line says it) ends by SIGTERM as a refusal does
        if not handler.raised:
            raise
        if getattr(e, "exit_code", None) != 0:
            if isinstance(e, typer.Abort):
                typer.echo(ABORTED, err=True)
            _end_by_sigterm()
            raise
    except SystemExit as e:
        # sys.exit(N) in the body (its own, or a library's), as typer.Exit: after a Terminated that vanished, a code
        # of 0 (None) is the step's end (below), any other ends by SIGTERM, a message (sys.exit('...')) said first
        # as Python says it at the exit
        if not handler.raised:
            raise
        if e.code not in (0, None):
            if not isinstance(e.code, int):
                print(e.code, file=sys.stderr)
            _end_by_sigterm()
            raise
    except _click_exceptions(Command).ClickException as e:
        # a click error the command's body raised (typer.BadParameter), no crash either: after a Terminated that
        # vanished, its usual line (no traceback), and the process ends by SIGTERM as a refusal does
        if not handler.raised:
            raise
        _say_click_error(e)
        _end_by_sigterm()
        raise
    except Exception:
        if handler.raised:
            # a crash (a traceback, not a refusal) after a Terminated that vanished (or that the step's clean-up
            # replaced): its traceback said, as Python says it at the exit, and the process still ends by SIGTERM,
            # as a refusal's does (one_line_errors), not with exit 1
            sys.excepthook(*sys.exc_info())
            _end_by_sigterm()
        raise
    if handler.raised:
        # the step ran to its end over a Terminated it raised: one cleared where Python code called from C ran the
        # handler (a lookup that swallows every error), or send_again's signal outrun by the step's end (a CI run
        # of `kill PID` on ensemble exited 0). The step finished: said so, and the process still ends by SIGTERM
        from imgcls.console import interrupted
        interrupted(f"interrupted: {what} took its SIGTERM only as it ended: its work is complete, "
                    f"nothing needs to run again")
        raise Terminated


def _end_by_sigterm() -> None:
    """The process ends as SIGTERM's default ends it (process.end_by_sigterm), its lines written first."""
    from imgcls.process import end_by_sigterm
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    end_by_sigterm()


@contextmanager
def one_line_errors(what: str, quiet: bool = False) -> Iterator[None]:
    """Around a command's body (`what`: `imgcls train`), with its --quiet: a UserError is one red line and its exit
    code, no traceback; Ctrl-C is one `interrupted:` line and exit 130 (Typer exited 130 saying nothing), unless the
    step said its own (imgcls.console.interrupted: train names its run folder and the resume command). SIGTERM taken
    as Ctrl-C (sigterm_interrupts) says it alike, then ends the process by SIGTERM (exit 143), as does a UserError
    that came after one (its line said; a crash's traceback after one: sigterm_interrupts)."""
    interrupt_said()                    # a line said outside a command (a Python caller's run) is not this one's
    what_interruption_left()
    with quiet_for(quiet, command=True):    # the quiet before it back after (a notebook's own)
        try:
            with interruption_leaves(RERUN_COMPLETES):    # or, once a set is in place (output_set), what it says
                yield
        except UserError as e:
            if e.said_elsewhere:
                # torchrun stops every process as soon as one ends: this one lets the process that says the line end
                # first (torchrun's SIGTERM ends this one then), and says it itself if it is still running by then
                import time
                time.sleep(SAID_ELSEWHERE_WAIT_S)
            error(str(e))
            if e.after_sigterm:
                _end_by_sigterm()
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt as e:
            term = isinstance(e, Terminated)
            if not interrupt_said():
                interrupted(f"interrupted: {what} stopped before it finished ({'SIGTERM' if term else 'Ctrl-C'}); "
                            f"{what_interruption_left()}")
            if term:
                _end_by_sigterm()
            raise typer.Exit(143 if term else 130) from None


CTX = "imgcls_click_context"   # the Typer context a command built with options= receives (not passed on)


def _is_argument(p: inspect.Parameter) -> bool:
    return any(isinstance(m, typer.models.ArgumentInfo) for m in getattr(p.annotation, "__metadata__", ()))


def as_named(path: Path, named: Path) -> Path:
    """A folder a step returned (absolute: run_train's, build_ensemble's) as the command line named it (`named`: a
    relative --out kept relative), where both are the same path; else the one returned."""
    return Path(named) if os.path.abspath(named) == os.path.abspath(path) else Path(path)




# Parameters that are not a config field (paths, --quiet); every other flag is built from a config dataclass's
# declarations (imgcls.options) through command(options=...): no default or choice list is written here
# Src: a step without a default input (eda, clean); None, a bare call, is refused naming what to give
# (pipeline.given_input), not by click's "Missing argument"
# (metavar SRC and the help say it is required: click's optional argument alone would show [src])
Src = Annotated[Optional[Path], typer.Argument(help=f"Dataset folder (any layout) or a {MANIFEST_NAME}; required.",
                                               metavar="SRC", show_default=False)]
OptSrc = Annotated[Optional[Path], typer.Argument(help=f"Dataset folder or {MANIFEST_NAME}.", show_default=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or info lines.", rich_help_panel="Runtime")]
