"""imgcls.console: info lines, --quiet, said_once."""
from __future__ import annotations

import re

from imgcls import console


def test_said_once_prints_a_line_once_inside_and_again_after(capsys):
    with console.said_once():
        for _ in range(3):
            console.info("weights: package lite0")
            console.info("training with --aug medium")
        console.info("training with --aug heavy")           # a line that changes is printed when it first appears
        console.warn("no val rows")
        console.warn("no val rows")
        with console.said_once():                           # nested: the outer block's lines stay said
            console.info("weights: package lite0")
    console.info("weights: package lite0")                  # after the block every line prints again
    assert capsys.readouterr().err.splitlines() == [
        "weights: package lite0", "training with --aug medium", "training with --aug heavy", "warning: no val rows",
        "weights: package lite0"]


def test_said_once_a_keyed_line_with_a_changing_part_is_printed_once(capsys):
    """A line holding a duration is the same line each tune trial; its key (the line without the time) says so."""
    with console.said_once():
        for secs in (5.3, 5.4):
            console.info(f"decoded-image cache: 9 images in {secs}s", key="decoded-image cache: 9 images")
        console.info("decoded-image cache: 12 images in 5.4s", key="decoded-image cache: 12 images")
    assert capsys.readouterr().err.splitlines() == ["decoded-image cache: 9 images in 5.3s",
                                                    "decoded-image cache: 12 images in 5.4s"]


def test_quiet_prints_nothing(capsys):
    console.set_quiet(True)
    try:
        with console.said_once():
            console.info("x")
        console.info("y")
    finally:
        console.set_quiet(False)
    assert capsys.readouterr().err == ""


def test_messages_are_plain_text_brackets_print_as_written(capsys):
    """Paths, class names and pip extras hold brackets: rich markup would eat `[red]` and `[x]`."""
    from rich.table import Table
    console.info("bad file data/photo[red].png")
    console.warn("pip install 'imgcls[wandb]'")
    console.error("data/br[x] does not exist")
    with console.progress_bar("scan [x]", 1) as advance:
        advance(status="[red]")
    t = Table(title="per [x]")
    t.add_column("class")
    t.add_row("c[red]")
    console.print_table(t)
    cap = capsys.readouterr()
    err, out = cap.err, cap.out
    lines = err.splitlines()
    assert lines[:3] == ["bad file data/photo[red].png", "warning: pip install 'imgcls[wandb]'",
                         "error: data/br[x] does not exist"]
    assert any(ln.startswith("scan [x] ") and ln.endswith(" [red]") for ln in lines), err
    assert "per [x]" in out and "c[red]" in out      # a result table goes to stdout, messages to stderr
    assert "per [x]" not in err


def test_a_pass_with_nothing_to_do_shows_no_bar(capsys):
    """A clean its caches served whole showed an empty bar, 'thumbnails (246 images less 246 cached) 0/0': a
    pass of no work shows none; one of some work still does."""
    for total in (0, 1):
        with console.progress_bar("thumbnails (246 images less 246 cached)", total) as advance:
            advance(total)
        err = capsys.readouterr().err
        assert ("thumbnails" in err) is bool(total), (total, err)


def test_a_piped_progress_bar_keeps_its_status_whole(capsys):
    """Piped (80 columns) a k-fold epoch's bar -- a long description, the bar, counts, times and the status --
    had its times cut to '0:…' and its bar to a few cells."""
    with console.progress_bar("fold 3/5 epoch 12/30", 4) as advance:
        advance(4, status="loss 1.1558  lr 1.00e-03  run ETA 0:12:34")
    err = capsys.readouterr().err
    assert "fold 3/5 epoch 12/30" in err and "run ETA 0:12:34" in err and "4/4 0:00:00" in err, err
    assert "\u2026" not in err, err


def test_a_piped_progress_bar_says_how_far_it_is_while_it_runs(capsys, monkeypatch):
    """Piped or in a log file rich draws a bar once, when it ends: `imgcls preprocess ... > log` printed nothing for
    29 minutes. A line with the count, elapsed and remaining time comes every PIPED_LINE_EVERY seconds; --quiet
    silences them with the bar."""
    import time
    monkeypatch.setattr(console, "PIPED_LINE_EVERY", 0.05, raising=False)
    with console.progress_bar("preprocessing", 4) as advance:
        advance(1)
        mid, deadline = "", time.monotonic() + 5
        while "elapsed" not in mid and time.monotonic() < deadline:      # read before the bar ends
            time.sleep(0.02)
            mid += capsys.readouterr().err
        advance(3)
    assert re.match(r"preprocessing: 1/4 \(25%\), 0:00:0\d elapsed", mid), mid   # a loaded machine: 0:00:01
    assert "4/4" in capsys.readouterr().err      # and the finished bar, as before
    console.set_quiet(True)
    try:
        with console.progress_bar("preprocessing", 4) as advance:
            time.sleep(0.2)
    finally:
        console.set_quiet(False)
    assert capsys.readouterr().err == ""


def test_a_piped_transient_progress_bar_says_how_far_it_is_while_it_runs(capsys, monkeypatch):
    """train's validation pass (a transient bar) is not shown piped, where rich cannot erase it: a pass of minutes
    said nothing in a log file. Its progress_line()s come as a shown bar's do, and no bar once it ends."""
    import time
    monkeypatch.setattr(console, "PIPED_LINE_EVERY", 0.05, raising=False)
    console.console.print("epoch 1")
    with console.progress_bar("validating", 4, transient=True) as advance:
        advance(1)
        mid, deadline = "", time.monotonic() + 5
        while "validating:" not in mid and time.monotonic() < deadline:      # read before the bar ends
            time.sleep(0.02)
            mid += capsys.readouterr().err
        advance(3, status="loss 0.5")
    console.console.print("epoch 2")
    assert re.match(r"epoch 1\nvalidating: 1/4 \(25%\), 0:00:0\d elapsed", mid), mid
    assert capsys.readouterr().err.splitlines()[-1] == "epoch 2"      # no bar and no blank line after the lines


def test_quiet_silences_a_summary_table_not_a_command_s_output(capsys):
    from rich.table import Table
    t = Table(title="summary")
    t.add_column("a column wider than its title")
    console.set_quiet(True)
    try:
        console.print_table(t)
        assert capsys.readouterr().out == ""
        console.print_table(t, always=True)            # a Python caller's quiet: it has the returned table
        assert capsys.readouterr().out == ""
        console.set_quiet(True, command=True)          # `imgcls runs --quiet`: the table is what was asked for
        console.print_table(t)
        assert capsys.readouterr().out == ""
        console.print_table(t, always=True)
        assert "summary" in capsys.readouterr().out
    finally:
        console.set_quiet(False)


def test_a_torchrun_process_other_than_rank_0_prints_only_errors(capsys, monkeypatch):
    """torchrun sets WORLD_SIZE / RANK in each process before it starts: a line said before the process group exists
    (`using data/splits.csv`, `read ... as layout ...`) or by a step that runs on every rank is printed by rank 0 alone,
    decided here, not by each line."""
    from rich.table import Table
    t = Table()
    t.add_column("class")
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("1", "0"):
        monkeypatch.setenv("RANK", rank)
        console.info(f"read data/raw as layout 'folder' (rank {rank})")
        console.warn(f"no val rows (rank {rank})")
        with console.progress_bar(f"scan (rank {rank})", 1) as advance:
            advance()
        console.print_table(t, always=True)
        console.error(f"bad (rank {rank})")
        assert console.is_quiet() == (rank == "1")
    cap = capsys.readouterr()
    assert "rank 1" not in cap.out and cap.err.count("rank 1") == 1 and "error: bad (rank 1)" in cap.err
    assert "read data/raw as layout 'folder' (rank 0)" in cap.err and "warning: no val rows (rank 0)" in cap.err
    assert "scan (rank 0)" in cap.err and "class" in cap.out
    monkeypatch.setenv("WORLD_SIZE", "1")          # a single process is the main one whatever RANK says
    monkeypatch.setenv("RANK", "1")
    console.info("alone")
    assert capsys.readouterr().err == "alone\n"


def test_sh_quotes_a_path_for_a_suggested_command():
    """imgcls.console.sh: what a message puts in a command it suggests pastes back as one argument."""
    import shlex
    assert console.sh("outputs/runs/effnet") == "outputs/runs/effnet"          # a plain path reads as it is
    for odd in ("outputs/runs/my run", "it's", "a;b", "$HOME/x"):
        assert shlex.split(f"imgcls train --resume {console.sh(odd)}") == ["imgcls", "train", "--resume", odd]


def test_python_quiet_is_the_flag_for_the_steps_a_process_calls(tmp_path, capsys):
    """No step takes a quiet= keyword (nor has its config a quiet field): set_quiet(True) is the one way, --quiet for
    every step called after it, printing what `imgcls split --quiet` prints (nothing: its lines and distribution
    table included); set_quiet(False) gives them back."""
    from conftest import make_image_folder
    from typer.testing import CliRunner
    from imgcls.cli import app
    from imgcls.split import SplitConfig, run_split
    root = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(16, 16))
    r = CliRunner().invoke(app, ["split", str(root), "--out", str(tmp_path / "cli.csv"), "--folds", "2", "--no-near-dup",
                                 "--quiet"])
    assert (r.exit_code, r.output) == (0, "")
    capsys.readouterr()
    console.set_quiet(True)
    try:
        run_split(root, tmp_path / "py.csv", cfg=SplitConfig(folds=2, near_dup=False))
    finally:
        console.set_quiet(False)
    said = capsys.readouterr()
    assert (said.out, said.err) == ("", "")
    assert (tmp_path / "py.csv").read_text() == (tmp_path / "cli.csv").read_text()
    run_split(root, tmp_path / "py2.csv", cfg=SplitConfig(folds=2, near_dup=False))
    assert capsys.readouterr().out          # not quiet again: split's distribution table


def test_a_command_run_from_python_leaves_the_caller_s_quiet_as_it_was(tmp_path):
    """one_line_errors ended every command with set_quiet(False): a notebook that set_quiet(True) for itself and ran
    a command through Typer's CliRunner was loud again after it. The state before the command is restored, after a
    command that succeeds and one that fails, with or without its own --quiet."""
    from typer.testing import CliRunner
    from imgcls.cli import app
    missing = str(tmp_path / "missing")
    for before in (True, False):
        for args in (["tune", "--show-space"], ["tune", "--show-space", "--quiet"], ["split", missing, "--quiet"],
                     ["split", missing]):
            console.set_quiet(before)
            try:
                r = CliRunner().invoke(app, args)
                assert r.exit_code == (2 if args[0] == "split" else 0), (args, r.output)
                assert (console.is_quiet(), console._state["command"]) == (before, False), (before, args)
            finally:
                console.set_quiet(False)


def test_a_terminal_progress_bar_with_a_long_description_keeps_its_bar_and_counts(monkeypatch):
    """In an 80-column terminal clean's bar 'embedding (tf_efficientnet_lite0, 160px; 474 images less 3
    byte-identical copies)' showed that text cut to the whole width, 'embedding (... byte-identical copi… ', and no
    bar, count or time: its longest pass showed nothing moving. The description is cut instead, to leave them room;
    a short one is shown whole, as before."""
    import io
    import re
    from rich.console import Console
    long = "embedding (tf_efficientnet_lite0, 160px; 474 images less 3 byte-identical copies)"
    for desc in (long, "preprocessing"):
        buf = io.StringIO()
        monkeypatch.setattr(console, "console", Console(file=buf, force_terminal=True, width=80))
        with console.progress_bar(desc, 471) as advance:
            advance(100)
        lines = [ln for ln in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue()).replace("\r", "\n").split("\n")
                 if ln.strip()]
        assert lines and "100/471" in lines[-1] and "\u2501" in lines[-1], lines       # the count and the bar
        assert lines[-1].startswith(desc[:20]) and len(lines[-1].rstrip()) <= 80, lines
    assert "preprocessing" in lines[-1], lines


def _terminal(monkeypatch, **kw):
    """console's stderr console as a terminal writing into a buffer (returned)."""
    import io
    from rich.console import Console
    buf = io.StringIO()
    monkeypatch.setattr(console, "console", Console(file=buf, width=80, highlight=False, markup=False, **kw))
    return buf


def test_a_status_shows_its_text_on_a_terminal_and_is_erased_after(monkeypatch):
    """`imgcls train` showed nothing for ~14 s while torch and timm were imported and the model built: a user thought
    it hung. status() shows a spinner and what is being done there, gone when the work ends; a bar inside hides it
    while the bar runs (rich shows one live display at a time), and it shows again after."""
    buf = _terminal(monkeypatch, force_terminal=True)
    with console.status("loading torch and timm"):
        assert "loading torch and timm" in buf.getvalue()
        with console.status("building [tf_efficientnet_lite0]"):        # plain text: brackets as written
            assert "building [tf_efficientnet_lite0]" in buf.getvalue()
            with console.progress_bar("scanning", 2) as advance:
                assert "spinner" not in console._state
                advance(2)
            assert "spinner" in console._state
            console.info("weights: package lite0")
        assert "spinner" in console._state
    assert "spinner" not in console._state
    assert "weights: package lite0" in buf.getvalue() and "scanning" in buf.getvalue()


def test_a_status_shows_nothing_piped_quiet_or_on_another_rank(monkeypatch):
    """Piped or in a file (where rich cannot erase it), with --quiet, and on a torchrun rank other than 0, status()
    prints nothing: a step's output there is as before."""
    buf = _terminal(monkeypatch)               # not a terminal: a file or pipe
    with console.status("loading torch and timm"):
        console.info("line")
    assert buf.getvalue() == "line\n" and "spinner" not in console._state
    buf = _terminal(monkeypatch, force_terminal=True)
    console.set_quiet(True)
    try:
        with console.status("loading torch and timm"):
            assert "spinner" not in console._state
    finally:
        console.set_quiet(False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with console.status("loading torch and timm"):
        assert "spinner" not in console._state
    assert buf.getvalue() == ""


def test_loading_says_the_packages_a_first_import_loads_and_nothing_once_they_are_loaded(monkeypatch):
    """console.loading: the status of a first import of torch, timm, scikit-learn (seconds each); a module already
    imported shows no spinner (it would flicker for the milliseconds its import takes)."""
    import sys
    buf = _terminal(monkeypatch, force_terminal=True)
    monkeypatch.delitem(sys.modules, "imgcls_no_such_module", raising=False)
    with console.loading("sklearn", "imgcls_no_such_module"):
        assert "loading scikit-learn and imgcls_no_such_module" in buf.getvalue()
    shown = buf.getvalue()
    with console.loading("sys", "os"):
        assert "spinner" not in console._state
    assert buf.getvalue() == shown


def test_a_status_leaves_stdout_to_the_results(monkeypatch, capsys):
    """With stderr a terminal and stdout a file (`imgcls ... > out.txt`), a result printed while a status shows
    goes to stdout, not through rich's live display onto stderr."""
    import sys
    buf = _terminal(monkeypatch, force_terminal=True)
    with console.status("writing the report"):
        print("a result", file=sys.stdout)
    assert capsys.readouterr().out == "a result\n" and "a result" not in buf.getvalue()


def _screen(raw: str) -> list[str]:
    """The lines a terminal shows after `raw`: text, \\r, \\n and the codes rich's live display moves and erases
    with (cursor up, erase line); other codes dropped."""
    import re
    lines, row, col = [""], 0, 0
    for part in re.split(r"(\x1b\[[0-9;?]*[A-Za-z]|\r|\n)", raw):
        if part == "\r":
            col = 0
        elif part == "\n":
            row, col = row + 1, 0
            lines += [""] * (row + 1 - len(lines))
        elif part.startswith("\x1b["):
            n = int(part[2:-1]) if part[2:-1].isdigit() else 1
            if part.endswith("A"):
                row = max(0, row - n)
            elif part.endswith("2K"):
                lines[row] = ""
        elif part:
            lines[row] = lines[row][:col].ljust(col) + part + lines[row][col + len(part):]
            col += len(part)
    return lines


def test_a_result_printed_under_a_status_on_a_terminal_is_not_glued_to_the_spinner(monkeypatch):
    """stdout and stderr the same terminal: a table or heading printed while a status shows went after the
    spinner's text on its line, which the spinner's next redraw left there ('⠋ writing the reportA: run-a')."""
    import io
    from rich.console import Console
    from rich.table import Table
    screen = io.StringIO()          # one terminal behind both consoles
    monkeypatch.setattr(console, "console", Console(file=screen, force_terminal=True, width=80, highlight=False,
                                                    markup=False))
    monkeypatch.setattr(console, "results", Console(file=screen, force_terminal=True, width=80, highlight=False,
                                                    markup=False))
    table = Table("member")
    table.add_row("run-b")
    with console.status("writing the report"):
        console.print_heading("A: run-a")
        console.print_table(table)
        assert "spinner" in console._state          # shown again after the result
    shown = _screen(screen.getvalue())
    assert any("A: run-a" in ln for ln in shown) and any("run-b" in ln for ln in shown), shown
    assert not any("writing the report" in ln for ln in shown), shown
