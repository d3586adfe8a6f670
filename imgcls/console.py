"""The one place for terminal output: a shared rich console, `--quiet`, and progress bars.

Messages are plain text: the console reads no rich markup, so a path or class name with brackets
(`photo[red].png`, `pip install 'imgcls[wandb]'`) prints as written. Styling is added here (warn()'s and error()'s
prefix, the progress bar's bold description) with rich styles, never by markup inside a message.

Results (tables and their headings, `models list`) go to stdout and everything else (messages, warnings, progress)
to stderr, so `imgcls runs > runs.txt` or `imgcls runs | grep` gets the table and nothing else.

Under torchrun (train and clean; the command line refuses it for the others, refuse_torchrun) every process runs
the command; only the main one (rank 0) prints info lines, warnings, tables and progress bars (main_process()), as
if the others ran with --quiet and warnings silenced: each would say the same line once more. error() prints on
every rank (a rank's own failure is named by that rank), but for a UserError every process raises alike
(same_on_every_process(), UserError.said_elsewhere): one process says that."""
from __future__ import annotations

import os
import shlex
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Column

from imgcls.process import first_on_machine, main_process, under_torchrun  # noqa: F401  (declared there: light)

T = TypeVar("T")

console = Console(stderr=True, highlight=False, markup=False)   # markup=False: messages, table cells are plain
results = Console(highlight=False, markup=False)               # stdout: tables and listings a script may redirect
_state = {"quiet": False, "command": False}


def set_quiet(quiet: bool, command: bool = False) -> None:
    """--quiet: from Python, set_quiet(True) silences every step the process calls after it (bars, info lines,
    tables; warnings and errors stay). `command`: set by the CLI around a command (cli.common.one_line_errors),
    whose --quiet keeps the command's own output (imgcls runs' table: print_table(always=True)); a Python caller's
    quiet silences that too, as the function returns it."""
    _state["quiet"] = bool(quiet)
    _state["command"] = bool(command)


@contextmanager
def quiet_for(quiet: bool, command: bool = False) -> Iterator[None]:
    """set_quiet(quiet, command) for the body, and the state before it back after: a notebook that set_quiet(True)
    for itself and runs a command through Typer's CliRunner stays quiet after it (a command set quiet off)."""
    before = (_state["quiet"], _state["command"])
    set_quiet(quiet, command)
    try:
        yield
    finally:
        set_quiet(*before)


def prints_output() -> bool:
    """Whether a command's output (imgcls runs' leaderboard and diff) is printed: not under a Python caller's
    set_quiet(True) (run_runs returns it), under the CLI's --quiet yes (it is what the command was asked for);
    by rank 0 alone under torchrun."""
    return main_process() and (not _state["quiet"] or _state["command"])


@contextmanager
def same_on_every_process() -> Iterator[None]:
    """Around work every torchrun process runs alike on the same options and files (train's checks, rank 0's
    refusal every process receives): a UserError raised there is said by the first process of each machine; the
    others wait for it to end (UserError.said_elsewhere), so the user reads the line once, not once per process. A
    process that hit one alone says it after that wait."""
    from imgcls.errors import UserError
    try:
        yield
    except UserError as e:
        e.said_elsewhere = not first_on_machine()
        raise


# the commands whose processes share the work under torchrun (imgcls.train.dist); the command line refuses it for
# every other command (refuse_torchrun)
TORCHRUN_COMMANDS = ("imgcls train", "imgcls clean")


def refuse_torchrun(command: str) -> None:
    """Under torchrun, a command that runs as one process refuses before any work: every command but train and
    clean (which share their work among the processes, imgcls.train.dist), whose processes would each do all of it,
    into the same output. A UserError every process raises alike, said by the first process of each machine
    (same_on_every_process). `command`: `imgcls predict`. The command line refuses them (cli.common.command), and
    their library entries run in whichever processes a torchrun script calls them (rank 0 predicting after a DDP
    train), but run_tune, whose processes' trials would train as one DDP run. The one place that says why each
    command refuses and what to run instead: a command with a reason of its own (tune, with its Python half) is in
    the table below, every other one gets the common reason, and so does a flag's other job (`imgcls tune
    --show-space`, which prints the space: no study; cli.common.command's modes)."""
    if not under_torchrun():
        return
    from imgcls.errors import UserError
    from imgcls.options import python_too
    own = {     # command -> (why, fix)
        # each process would join the study as a worker of its own, and their trials' trainings (other options,
        # other folders) would pair as one DDP run: parallel tune is several tune processes on one storage
        "imgcls tune": (
            "each of its processes would join the study as a worker of its own, and their trials, with other "
            "options, would train as one DDP run",
            python_too("run the same imgcls tune command in several processes instead: they share the study's "
                       "--storage as Optuna's parallel workers, each on a device of its own with --device cuda:N",
                       "run_tune in several processes torchrun did not start, each with its own TrainConfig(device=)")),
    }
    why, fix = own.get(command, (
        f"each of its {os.environ['WORLD_SIZE']} processes would do all of the work; only imgcls train and imgcls "
        f"clean share theirs among them",
        f"run it as one process: the same {command} command without torchrun"))
    with same_on_every_process():
        raise UserError(f"{command} does not run under torchrun ({why}); {fix}")


def is_quiet() -> bool:
    """--quiet, or a torchrun process other than rank 0: nothing but errors is printed."""
    return _state["quiet"] or not main_process()


def _said(msg: str) -> bool:
    """Inside said_once(): whether `msg` was printed there already (and it counts as printed from now on)."""
    said = _state.get("said")
    if said is None:
        return False
    if msg in said:
        return True
    said.add(msg)
    return False


def sh(value) -> str:
    """A path (or value) in a command a message suggests, as a shell reads it back: `imgcls train --resume
    'outputs/runs/my run'` pastes as one argument; a plain path is unchanged (`outputs/runs/effnet`)."""
    return shlex.quote(str(value))


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 group', '3 groups' ('1 copy', '2 copies' with many='copies')."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def info(msg: str, key: str | None = None, every: bool = False) -> None:
    """A line for the user (defaults used, outputs written); silenced by --quiet. Inside said_once(), a line
    already printed there is not printed again; `key`: what counts as the same line there when `msg` holds a part
    that changes although it says the same thing (a duration). `every`: a line of the run's own course, not of its
    data or set-up (train's early stop), printed inside said_once() too: a tune trial that stopped as an earlier
    one did says so."""
    if not is_quiet() and (every or not _said(msg if key is None else "key: " + key)):
        console.print(msg, soft_wrap=True)   # soft_wrap: long lines (paths) stay whole, never cut at 80 columns


@contextmanager
def said_once() -> Iterator[None]:
    """info() lines and warnings are printed once in this block: for steps that run another step many times
    (tune's trials each run train, whose set-up lines -- manifest, weights, sampling -- are the same every trial);
    a line that changes (another --aug, another sampler) is printed when it first appears, and a line of a run's
    own course (info(every=True): an early stop) each time."""
    outer = _state.get("said")
    _state["said"] = set() if outer is None else outer
    try:
        yield
    finally:
        _state["said"] = outer


@contextmanager
def cache_reuse(step: str, folder) -> Iterator[None]:
    """Around a step's passes over the content-keyed caches in `folder` (clean's thumbnail numbers, photo features,
    embeddings, candidate search, verified pairs; split's near-duplicate search): a pass that an earlier run's cache
    served whole says so with reused(), no line of its own (a partial hit says its own line: embedding's,
    verification's); one line names them all (`step: reused from the cache in FOLDER: ...`) as the block ends, or
    where the passes end and other work begins (say_reused: clean's out-of-domain fit), where a warm run said nothing
    of why it took seconds, not minutes."""
    outer = _state.get("reused")
    _state["reused"] = {"step": step, "folder": folder, "what": [], "made": set(), "said": 0} \
        if outer is None else outer
    try:
        yield
        if outer is None:
            say_reused()
    finally:
        _state["reused"] = outer


def say_reused() -> None:
    """Inside cache_reuse(): the passes are done (what follows reads no cache: a model's fit), so the line naming
    what the caches served is said now, before that work's bar, not after it; a pass reused later is named in a line
    of its own as the block ends."""
    got = _state.get("reused")
    if got is not None and got["what"][got["said"]:]:
        info(f"{got['step']}: reused from the cache in {got['folder']}: {', '.join(got['what'][got['said']:])}")
        got["said"] = len(got["what"])


def reused(what: str, key: str | None = None) -> None:
    """Inside cache_reuse(): a pass the cache served whole (`what` it reused: 'photo features of 168 images'),
    named once in its line; outside one nothing is said. `key`: the cache it read, not counted as reused when a
    pass of this same run filled it (made(key): the embedding pass keeps both kinds of vector, the style pass after
    it finds its own in the cache)."""
    got = _state.get("reused")
    if got is not None and what not in got["what"] and (key is None or key not in got["made"]):
        got["what"].append(what)


def made(key: str) -> None:
    """Inside cache_reuse(): this run filled the cache `key` (see reused)."""
    got = _state.get("reused")
    if got is not None:
        got["made"].add(key)


def print_table(table, always: bool = False) -> None:
    """A rich Table: in a terminal at its width; piped or captured (80 columns by default) as wide as the table
    needs, so cells (paths, run names) are not folded. A summary of a step's work (ensemble's scores, predict's
    --eval) is silenced by --quiet like its other lines (the numbers are in its files); `always`: the table is the
    command's output (`imgcls runs`), printed under the CLI's --quiet but not a Python caller's (prints_output)."""
    if not (prints_output() if always else not is_quiet()):
        return
    if results.is_terminal:
        with _spinner_paused():
            results.print(table)
    else:
        Console(file=results.file, width=max(results.width, 240), highlight=False, markup=False).print(table)


def print_output(text) -> None:
    """A command's output that is one line (train's run folder, whose default name is the time it started: what
    `RUN=$(imgcls train -q ...)` gives a script): on stdout, printed where print_table(always=True) prints
    (prints_output), whole however long (a long path is not folded)."""
    if prints_output():
        with _spinner_paused():
            results.print(str(text), soft_wrap=True, emoji=False)   # a path as it is (no :name: emoji codes)


def print_heading(text: str) -> None:
    """A command's output heading its tables (runs diff's `A: ... / B: ...`, which names the runs its A and B
    columns mean): on stdout with them, so it comes before them on a terminal (stdout and stderr are written apart)
    and goes with them into `> diff.txt` or a pipe; printed where print_table(always=True) prints (prints_output)."""
    print_output(text)


def warn(msg: str, key: str | None = None) -> None:
    """Warnings are printed even with --quiet (inside said_once(), once), by rank 0 alone under torchrun. `key`:
    as info()'s, what counts as the same warning inside said_once() when `msg` names a part that changes although
    the warning is the same (each tune trial's run folder, on one file system)."""
    if main_process() and not _said("warning: " + (msg if key is None else "key: " + key)):
        console.print(f"[yellow]warning:[/yellow] {escape(msg)}", soft_wrap=True, markup=True)


def interrupted(msg: str) -> None:
    """Ctrl-C: the one line (`interrupted: ...`) saying what the step leaves and what to run next, printed even with
    --quiet, by rank 0 alone under torchrun. A step that knows (train: its run folder and the resume command) says
    it; the CLI says a general line only for a step that said none (interrupt_said())."""
    if _state.get("inner_step"):      # a step run inside another (interrupt_said_outside): the outer one says it
        return
    _state["interrupted"] = True
    if main_process():
        console.print(msg, soft_wrap=True)


@contextmanager
def interrupt_said_outside() -> Iterator[None]:
    """Around a step run inside another (tune's trials run train): Ctrl-C's `interrupted:` line is the outer
    step's alone; the inner one's (train's `imgcls train --resume TRIAL continues it`, which would continue the
    trial outside its study) is not printed."""
    outer = _state.get("inner_step", False)
    _state["inner_step"] = True
    try:
        yield
    finally:
        _state["inner_step"] = outer


def interrupt_said() -> bool:
    """Whether interrupted() was said since the last call (which forgets it)."""
    return bool(_state.pop("interrupted", False))


# what the CLI's general `interrupted:` line says a step left (interruption_leaves): a step that writes nothing, and
# one that writes its files whole at its end (an earlier output left as it was), whose rerun starts over
WRITES_NOTHING = "it writes nothing, so nothing was changed"
RERUN_COMPLETES = "run the same command again to complete it"     # a step that said nothing: the rerun finishes it


def nothing_written(where: str | os.PathLike) -> str:
    """What a step that writes its files whole at its end leaves when stopped before (`where`: its output folder
    or file, 'data/splits.csv and its reports')."""
    return f"nothing was written to {where} (an earlier output there is left as it was); the same command again " \
           f"starts it over"


def partly_placed(where: str | os.PathLike, undone: str = "") -> str:
    """What a step writing its files as one set leaves when stopped while it renames them into place
    (outputs.output_set): some new, some earlier or none. `undone`: the work that follows the set (OutputSet.then's),
    not begun yet ('images/ is not filled yet')."""
    return f"some of its files were already renamed into {where}, the others not" \
           + (f", and {undone}; the same command again replaces them and completes it" if undone else
              "; the same command again replaces them")


def all_placed(where: str | os.PathLike, undone: str = "") -> str:
    """What a step writing its files as one set leaves when stopped after it renamed them all into place (while it
    says what it wrote: eda's summary, split's `wrote` line): its new output, whole (`where`: as nothing_written's).
    `undone`: the work that follows the set (OutputSet.then's), not done yet ('images/ is not filled yet')."""
    if undone:
        return f"its files were all written to {where}, and {undone}; the same command again completes it"
    return f"its files were all written to {where} before it stopped (only the lines it says after them were cut " \
           f"short); nothing needs to run again"


def set_placed(leaves: str) -> None:
    """Said by outputs.output_set as its set is in place: what a stop from then on leaves (all_placed), said in
    place of the line of an interruption_leaves block entered before (the CLI's nothing_written around all of eda,
    the CLI's RERUN_COMPLETES): a stop in the instant between the last rename and the step's own all_placed block
    said that nothing was written, or to run again. A block entered after (that all_placed block) says its own."""
    count = _state.get("placed", (0, ""))[0]
    _state["placed"] = (count + 1, leaves)


@contextmanager
def interruption_leaves(leaves: str) -> Iterator[None]:
    """Around a step's work: a Ctrl-C or SIGTERM in the block is said by the CLI's general `interrupted:` line
    with `leaves` (WRITES_NOTHING, nothing_written(OUT)) as what the step left, not RERUN_COMPLETES, which tells a
    step that wrote nothing to run again to complete it. The innermost block stopped says it; where a set was
    placed since the block was entered (set_placed), what that placing said."""
    since = _state.get("placed", (0, ""))[0]
    try:
        yield
    except KeyboardInterrupt:
        count, placed = _state.get("placed", (0, ""))
        _state.setdefault("interruption_leaves", placed if count > since else leaves)
        raise


def what_interruption_left() -> str:
    """What the step stopped said it left (interruption_leaves), RERUN_COMPLETES where it said nothing; forgets
    it."""
    return _state.pop("interruption_leaves", RERUN_COMPLETES)


def error(msg: str) -> None:
    """The CLI's one line for a UserError (printed even with --quiet)."""
    console.print(f"[bold red]error:[/bold red] {escape(msg)}", soft_wrap=True, markup=True)


@contextmanager
def progress_bar(description: str | None, total: int | None, transient: bool = False, every: bool = False
                 ) -> Iterator:
    """Yields `advance(n=1, status=None)`; a rich progress bar unless --quiet or description is None. `status`: a
    short text shown after the bar (e.g. the running loss and lr of an epoch). transient: the bar disappears when
    done (e.g. the validation pass of an epoch); piped or captured, where rich cannot erase it, the bar is not shown
    (rich would leave a blank line between the lines around it), its progress_line()s are. Inside said_once(), a bar
    of a description shown there already is transient, as its info() lines are said once: tune's trials each scan
    and decode the images again, and a finished `scanning images` / `decoding images` bar was left (piped: printed)
    once per trial; `every`: a bar of the run's own course (an epoch's), left each time. `total` None: work with
    no count (a fit), shown as a moving bar and its elapsed time. Piped or in a log file, where rich prints the bar
    once as it ends, a progress_line() is printed every PIPED_LINE_EVERY seconds meanwhile. `total` 0: nothing to do
    (a pass its caches serve whole), no bar (it showed 'thumbnails (246 images less 246 cached) 0/0')."""
    if is_quiet() or description is None or total == 0:
        yield lambda n=1, status=None: None
        return
    transient = transient or (not every and _said("bar: " + description))
    held = []            # info_after_bar()'s lines, said as the bar ends
    _state.setdefault("bars", []).append(held)
    _spinner_off()       # a status() open around the bar: rich shows one live display at a time; back after the bar
    try:
        with _bar(description, total, transient) as advance:
            yield advance
    finally:
        _state["bars"].pop()
        _spinner_on()
    for msg in held:
        info(msg)


@contextmanager
def status(what: str) -> Iterator[None]:
    """A spinner and `what` the step is doing ('loading torch and timm', 'building tf_efficientnet_lite0') while
    the block runs: work of seconds with no bar (imports, a model's build, a report's plots), where a terminal showed
    nothing and the user thought it hung. Shown on a terminal alone (live_display), not with --quiet nor on ranks
    other than 0, and erased as the block ends: piped or in a file the output is as without it. Nested, the inner
    block's text replaces the outer's while it runs; a progress_bar() inside hides the spinner while the bar runs."""
    if is_quiet() or not live_display():
        yield
        return
    texts = _state.setdefault("status", [])
    texts.append(what)
    _spinner_on()
    try:
        yield
    finally:
        texts.pop()
        if texts:
            _spinner_on()
        else:
            _spinner_off()


PACKAGE_NAMES = {"sklearn": "scikit-learn", "onnxruntime": "ONNX Runtime"}     # loading()'s text for an import name


@contextmanager
def loading(*modules: str) -> Iterator[None]:
    """status('loading torch and timm') around the first import of `modules` (import names: seconds each on a busy
    machine); nothing shown where they are all imported already (a second run in the process, tune's trials)."""
    import sys
    if all(m in sys.modules for m in modules):
        yield
        return
    with status("loading " + " and ".join(PACKAGE_NAMES.get(m, m) for m in modules)):
        yield


def _spinner_on() -> None:
    """Shows (or updates) status()'s spinner with the innermost open status's text; not while a bar is open."""
    texts = _state.get("status")
    if not texts or _state.get("bars"):
        return
    from rich.live import Live
    from rich.spinner import Spinner
    from rich.text import Text
    live = _state.get("spinner")
    shown = Spinner("dots", Text(texts[-1]))     # Text: a path's brackets are no markup
    if live is None:
        # drawn at once (refresh=True), not at the first tick: a status of a second showed nothing for that tick;
        # stdout not redirected: rich would send a result written meanwhile to stderr, out of `imgcls ... > file`
        live = _state["spinner"] = Live(shown, console=console, transient=True, refresh_per_second=12.5,
                                        redirect_stdout=False)
        live.start(refresh=True)
    else:
        live.update(shown, refresh=True)


@contextmanager
def _spinner_paused() -> Iterator[None]:
    """Around a result written to stdout on a terminal: status()'s spinner erased meanwhile and drawn again after.
    rich's live display (on stderr) does not know of stdout's console: the result went after the spinner's text on
    its line, which the next redraw left there. Piped or in a file stdout is not the spinner's screen: left alone."""
    if "spinner" not in _state or not results.is_terminal:
        yield
        return
    _spinner_off()
    try:
        yield
    finally:
        _spinner_on()


def _spinner_off() -> None:
    """Erases status()'s spinner (a transient display), where one shows."""
    spinner = _state.pop("spinner", None)
    if spinner is not None:
        spinner.stop()


def info_after_bar(msg: str) -> None:
    """info(), for a line that concludes the work of the progress bar open around it (clean's out-of-domain fit:
    'no out-of-domain population ... nothing flagged'): said when the bar ends, below it. Said inside, it came
    above the bar in a terminal and, piped, where rich prints the bar only as it ends, before the bar's line. With
    no bar open it is said now."""
    bars = _state.get("bars")
    if bars:
        bars[-1].append(msg)
    else:
        info(msg)


BAR_ROOM = 40       # columns a progress bar keeps beside its description: the bar, count, elapsed and remaining time


@contextmanager
def _bar(description: str, total: int | None, transient: bool) -> Iterator:
    """progress_bar's bar, shown (not --quiet)."""
    if transient and not (console.is_terminal or console.is_jupyter):
        # a validation pass of minutes said nothing piped: no bar (rich cannot erase it), but the lines meanwhile
        prog = Progress(disable=True)
        task = prog.add_task(description, total=total, status="")
        with _piped_lines(prog, task):
            yield _advance(prog, task)
        return
    # total None: work with no count to show (a model's fit) -- a moving bar and the time it has taken, not 0/?
    counts = [MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()] if total is not None else \
        [TimeElapsedColumn()]
    # piped or captured (80 columns by default) the finished bar is printed once: as wide as it needs, so a
    # k-fold epoch's status (loss, lr, run ETA) is not cut
    shown = console if console.is_terminal else Console(file=console.file, width=max(console.width, 200),
                                                        highlight=False, markup=False)
    # a description cut to leave the bar, count and times BAR_ROOM columns: clean's 'embedding (...; 474 images less
    # 3 byte-identical copies)' took an 80-column terminal's whole row, and its pass showed nothing moving
    text = Column(no_wrap=True, overflow="ellipsis", max_width=max(12, shown.width - BAR_ROOM))
    cols = [TextColumn("{task.description}", style="bold", markup=False, table_column=text), BarColumn(), *counts,
            TextColumn("{task.fields[status]}", markup=False)]
    with Progress(*cols, console=shown, transient=transient) as prog:
        task = prog.add_task(description, total=total, status="")
        advance = _advance(prog, task)
        if live_display():
            yield advance
            return
        # piped or in a log file rich draws the bar only when it ends: a 30-minute pass printed nothing for 30
        # minutes; a line every PIPED_LINE_EVERY seconds says how far it is meanwhile
        with _piped_lines(prog, task):
            yield advance


def _advance(prog: Progress, task):
    """progress_bar's `advance(n=1, status=None)` of `task`."""
    def advance(n: int = 1, status: str | None = None) -> None:
        if status is None:
            prog.advance(task, n)
        else:
            prog.update(task, advance=n, status=status)
    return advance


PIPED_LINE_EVERY = 30.0     # seconds between a piped progress bar's lines


def live_display() -> bool:
    """Whether stderr redraws a progress bar in place (a terminal that is not dumb, a notebook); piped or written
    to a file, rich prints a bar once, when it ends."""
    return (console.is_terminal and not console.is_dumb_terminal) or console.is_jupyter


def progress_line(task) -> str:
    """A rich progress task as one line: 'preprocessing: 120/315 (38%), 0:06:02 elapsed, 0:09:40 left, STATUS'."""
    from datetime import timedelta

    def hms(s) -> str:
        return str(timedelta(seconds=int(s)))
    parts = []
    if task.total is not None:
        pct = f" ({task.completed / task.total:.0%})" if task.total else ""
        parts.append(f"{int(task.completed)}/{int(task.total)}{pct}")
    parts.append(f"{hms(task.elapsed or 0)} elapsed")
    if task.total is not None and task.time_remaining is not None and not task.finished:
        parts.append(f"{hms(task.time_remaining)} left")
    if task.fields.get("status"):
        parts.append(str(task.fields["status"]))
    return f"{task.description}: {', '.join(parts)}"


@contextmanager
def _piped_lines(prog: Progress, task) -> Iterator[None]:
    """progress_line() of `task` every PIPED_LINE_EVERY seconds while the block runs, from a daemon thread (work
    that advances rarely -- a first chunk of worker processes, a fit -- is still seen running)."""
    import threading
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(PIPED_LINE_EVERY):
            console.print(progress_line(next(t for t in prog.tasks if t.id == task)), soft_wrap=True)

    thread = threading.Thread(target=run, name="imgcls-progress-lines", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def pass_label(what: str, readable: int, distinct: int, todo: int) -> str:
    """A per-image pass's progress-bar label (`what`), saying what its count counts where that is not the readable
    images the step read and sums up: each content once (`distinct` of the `readable` rows,
    links.content_representatives: byte-identical copies take the first's result) and, of those, the `todo` images
    no earlier run's cache holds.
    'thumbnails (16 images less 4 byte-identical copies)', 'embedding (m, 160px; 18 images less 5 byte-identical
    copies and 12 cached)'; `what` alone when the count is every readable image."""
    less = [plural(readable - distinct, "byte-identical copy", "byte-identical copies")] if distinct < readable else []
    if todo < distinct:
        less.append(f"{distinct - todo} cached")
    if not less:
        return what
    said = f"{plural(readable, 'image')} less {' and '.join(less)}"
    return f"{what[:-1]}; {said})" if what.endswith(")") else f"{what} ({said})"


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar (silenced by --quiet)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar(description, total) as advance:
        for item in items:
            yield item
            advance()
