"""The CLI: every layout through `imgcls eda`, user errors as one line + exit 2, --quiet, --version, --help."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import make_image, make_image_folder, tree_snapshot
from imgcls import __version__
from imgcls.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def eda(*args):
    # one sample per class: no test of this file reads the sample grid beyond its file (8 a class: a subplot each,
    # 144 for the 18 profile classes, ~1 s of an eda that is ~0.5 s without them)
    r = runner.invoke(app, ["eda", *map(str, args), "--workers", "1", "--samples", "1"])
    r.flat = " ".join(r.output.split())        # rich wraps info lines at the runner's 80 columns
    return r


def summary(out) -> dict:
    return json.loads((Path(out) / "summary.json").read_text())


def one_error_line(r) -> str:
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert len(errors) == 1, r.output                   # the error is one (unwrapped) line
    assert r.output.rstrip().endswith(errors[0])        # and the last thing printed
    return errors[0]


def test_folder_layout(tmp_path, image_folder):
    before = tree_snapshot(image_folder)
    r = eda(image_folder, "--out", tmp_path / "eda")
    assert r.exit_code == 0, r.output
    assert "layout 'folder'" in r.flat
    assert summary(tmp_path / "eda")["classes"] == {"a": 6, "b": 4, "c": 2}
    assert tree_snapshot(image_folder) == before


def test_csv_layout_with_columns(tmp_path, image_folder):
    csv = tmp_path / "train.csv"
    pd.DataFrame({"file": ["./a/000.png", "a/001.png", "b/000.png", "c/001.png"], "y": ["1", "1", "2", "3"],
                  "pid": ["p", "p", "q", "r"]}).to_csv(csv, index=False)
    out = tmp_path / "eda"
    r = eda(image_folder, "--csv", csv, "--path-col", "file", "--label-col", "y", "--group-col", "pid", "--out", out)
    assert r.exit_code == 0, r.output
    assert "layout 'csv'" in r.flat
    assert summary(out)["classes"] == {"1": 2, "2": 1, "3": 1}
    m = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert m["group"].tolist() == ["p", "p", "q", "r"] and m["path"].iloc[0] == "a/000.png"


def test_csv_bad_column_is_one_line(tmp_path, image_folder):
    csv = tmp_path / "train.csv"
    pd.DataFrame({"file": ["a/000.png"], "y": ["1"]}).to_csv(csv, index=False)
    line = one_error_line(eda(image_folder, "--csv", csv, "--path-col", "file", "--label-col", "target",
                              "--out", tmp_path / "eda"))
    assert "'target'" in line and "--label-col" in line
    assert not (tmp_path / "eda").exists()


def test_profiles_layout(tmp_path, profile_folder):
    out = tmp_path / "eda"
    r = eda(profile_folder, "--out", out, "--age-bands", "30,60")
    assert r.exit_code == 0, r.output
    assert "layout 'profiles'" in r.flat
    m = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    for c in ("mask", "gender", "age", "age_band", "profile"):
        assert c in m.columns
    lab = m["mask"].astype(int) * 6 + m["gender"].astype(int) * 3 + m["age_band"].astype(int)
    assert (lab.astype(str) == m["label"]).all()
    assert (m["group"] == m["profile"].str.split("_").str[0]).all()
    assert summary(out)["n_images"] == 84 and (out / "attributes.png").is_file()


def test_unlabeled_layout(tmp_path):
    root = tmp_path / "test"
    for i in range(5):
        make_image(root / f"{i}.jpg", seed=i)
    out = tmp_path / "eda"
    r = eda(root, "--out", out)
    assert r.exit_code == 0, r.output
    s = summary(out)
    assert "layout 'unlabeled'" in r.flat and s["n_images"] == 5 and s["classes"] == {}
    assert (out / "samples.png").is_file()


def test_manifest_reread_is_not_rescanned(tmp_path, image_folder):
    out1, out2 = tmp_path / "eda1", tmp_path / "eda2"
    assert eda(image_folder, "--out", out1, "-q").exit_code == 0
    r = eda(out1 / "manifest.csv", "--out", out2)
    assert r.exit_code == 0, r.output
    assert "using manifest" in r.output and "scanning images" not in r.output
    assert summary(out2)["classes"] == summary(out1)["classes"]
    r = eda(out1, "--out", tmp_path / "eda3", "-q")                  # a folder holding manifest.csv
    assert r.exit_code == 0 and summary(tmp_path / "eda3")["n_images"] == 12


def test_quiet_prints_no_progress(tmp_path, image_folder):
    loud = eda(image_folder, "--out", tmp_path / "loud")
    assert "scanning images" in loud.output and "dataset summary" in loud.output
    quiet = eda(image_folder, "--out", tmp_path / "quiet", "--quiet")
    assert quiet.exit_code == 0
    assert quiet.output.strip() == ""


def test_a_transient_progress_bar_leaves_no_blank_line_when_piped(capsys):
    from imgcls.console import console, progress_bar
    console.print("epoch 1")
    with progress_bar("validating", 3, transient=True) as advance:   # as train's validation pass
        for _ in range(3):
            advance()
    console.print("epoch 2")
    assert "epoch 1\nepoch 2\n" in capsys.readouterr().err


def test_two_workers(tmp_path, image_folder):
    r = runner.invoke(app, ["eda", str(image_folder), "--out", str(tmp_path / "eda"), "--workers", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert summary(tmp_path / "eda")["classes"] == {"a": 6, "b": 4, "c": 2}


@pytest.mark.parametrize("case", ["out_inside_input", "missing_folder", "unknown_layout", "bad_age_bands"])
def test_user_errors_one_line(case, tmp_path, image_folder):
    before = tree_snapshot(image_folder)
    args = {"out_inside_input": [image_folder, "--out", image_folder / "eda"],
            "missing_folder": [tmp_path / "br[x]", "--out", tmp_path / "eda"],    # brackets print as written
            "unknown_layout": [image_folder, "--layout", "imagenet", "--out", tmp_path / "eda"],
            "bad_age_bands": [image_folder, "--age-bands", "thirty", "--out", tmp_path / "eda"]}[case]
    line = one_error_line(eda(*args))
    assert {"out_inside_input": "inside the input folder", "missing_folder": "br[x] does not exist",
            "unknown_layout": "unknown --layout 'imagenet'", "bad_age_bands": "--age-bands"}[case] in line
    assert tree_snapshot(image_folder) == before


@pytest.mark.parametrize("cmd,typed,said", [
    ("split", ["--age-bands", ""], "--age-bands '' names no value: it takes comma-separated integers, e.g. 30,60; "
                                   "drop --age-bands for its default"),
    ("eda", ["--age-bands", ","], "--age-bands ',' names no value: it takes comma-separated integers"),
    ("preprocess", ["--age-bands", ""], "--age-bands '' names no value"),
    ("split", ["--relabel-age", ""], "--relabel-age '' names no value: it takes comma-separated integers, e.g. 29,59"),
    ("split", ["--stratify", ""], "--stratify '' names no column: it takes column(s), comma-separated (e.g. "
                                  "mask,gender,age_band), or 'none'; drop --stratify for label"),
    ("train", ["--heads", "multi", "--head-columns", ""], "--head-columns '' names no column: it takes label columns, "
                                                          "comma-separated, e.g. mask,gender,age_band"),
    ("train", ["--heads", "multi", "--head-weights", ""], "--head-weights '' names no weight: it takes "
                                                          "comma-separated numbers, e.g. 1,1,2; drop --head-weights "
                                                          "to weigh every head 1")])
def test_a_list_option_that_names_nothing_is_one_line(cmd, typed, said, tmp_path, profile_folder):
    """A comma-separated option typed empty (an empty shell variable: --age-bands "$BANDS") broke split and eda with
    an IndexError traceback (exit 1), train's --head-columns with a ValueError; preprocess and clean made one age band
    of everyone, split's --stratify '' stratified on nothing and train's --head-weights '' took the default, unsaid.
    Each is now one line naming the option and what it takes, before any image is read."""
    out = tmp_path / ("splits.csv" if cmd == "split" else "out")
    r = runner.invoke(app, [cmd, str(profile_folder), *typed, "--out", str(out)])
    assert said in one_error_line(r)
    assert "read " not in r.output and not out.exists()


def test_an_empty_stratify_of_a_check_fix_says_what_dropping_it_takes(tmp_path):
    """`split --check F --fix --stratify ''` said "drop --stratify for label", but a --check --fix without --stratify
    balances the columns F's split recorded (split.run._stratify_of), not label. The line now says both."""
    r = runner.invoke(app, ["split", "--check", str(tmp_path / "s.csv"), "--fix", "--stratify", ""])
    assert "drop --stratify for label (with --check FILE --fix: the columns its split recorded, if any)" \
        in one_error_line(r), r.output


@pytest.mark.parametrize("cmd,out", [("eda", "eda"), ("clean", "clean"), ("split", "splits.csv"),
                                     ("preprocess", "processed")])
def test_out_inside_the_input_is_refused_before_the_scan(cmd, out, tmp_path, image_folder):
    """"Errors come before the long work": no step scans the images before refusing an --out under them."""
    r = runner.invoke(app, [cmd, str(image_folder), "--out", str(image_folder / out)])
    assert "scanning images" not in r.output
    assert "inside the input folder" in one_error_line(r)


def test_split_never_writes_its_table_over_the_competition_csv_it_reads(tmp_path):
    """`split train.csv --out train.csv` (or through --csv, or a symlink to it) replaced the competition's own
    train.csv with the split table: the images' folder was the only input it guarded. Now one line, nothing
    written; another --out beside the CSV is still fine."""
    project = tmp_path / "project"
    rows = []
    for i in range(8):
        make_image(project / "train" / f"TRAIN_{i:05d}.png", seed=i)
        rows.append({"id": f"TRAIN_{i:05d}", "img_path": f"./train/TRAIN_{i:05d}.png", "artist": "ab"[i % 2]})
    pd.DataFrame(rows).to_csv(project / "train.csv", index=False)
    (project / "link.csv").symlink_to("train.csv")
    before = sorted(p.name for p in project.iterdir()), (project / "train.csv").read_bytes()
    base = ["split", "--label-col", "artist", "--val", "0.5", "--no-near-dup", "-q"]
    for src, out in (("train.csv", "train.csv"), (".", "train.csv"), ("train.csv", "link.csv")):
        args = base + [str(project / src), "--out", str(project / out)]
        r = runner.invoke(app, args + (["--csv", str(project / "train.csv")] if src == "." else []))
        assert "is a file this step reads; writing it would replace your own file" in one_error_line(r)
    assert (sorted(p.name for p in project.iterdir()), (project / "train.csv").read_bytes()) == before
    r = runner.invoke(app, base + [str(project / "train.csv"), "--out", str(project / "splits.csv")])
    assert r.exit_code == 0, r.output


def test_dacon_files_unpacked_in_the_working_folder_take_every_default_output(tmp_path, monkeypatch):
    """DACON's archive unpacks train.csv (id, img_path ./train/..., artist) and train/ into the user's folder. The
    images' folder is train/, so the README's default outputs (outputs/eda, data/clean, data/processed,
    data/splits.csv) beside it are allowed; before, the CSV's folder counted as the input and every step refused."""
    project = tmp_path / "project"
    (project / "train").mkdir(parents=True)
    rows = []
    for i in range(12):
        make_image(project / "train" / f"TRAIN_{i:05d}.png", seed=i)
        rows.append({"id": f"TRAIN_{i:05d}", "img_path": f"./train/TRAIN_{i:05d}.png", "artist": "ab"[i % 2]})
    pd.DataFrame(rows).to_csv(project / "train.csv", index=False)
    before = tree_snapshot(project / "train"), (project / "train.csv").read_bytes()
    monkeypatch.chdir(project)
    for cmd in ("eda", "clean"):        # without --label-col: read unlabeled, and said so with the column to name
        r = runner.invoke(app, [cmd, "train.csv", "--out", str(tmp_path / cmd), "-q",
                                *(["--samples", "1"] if cmd == "eda" else [])])
        said = " ".join(r.output.split())
        assert r.exit_code == 0 and "warning: train.csv has no labels (no column label, class or target), so it is " \
            "read unlabeled; --label-col COLUMN reads one of its columns with classes: artist" in said
    r = runner.invoke(app, ["split", str(tmp_path / "clean"), "--out", str(tmp_path / "s.csv")])
    assert "no labels to stratify on; --label-col COLUMN reads one of its columns with classes: artist, or " \
        "--stratify none" in one_error_line(r)
    for args in (["eda", "train.csv", "--label-col", "artist", "--samples", "1"],
                 ["clean", "train.csv", "--label-col", "artist"],
                 ["preprocess", "data/clean"], ["split", "data/processed", "--val", "0.5"]):
        r = runner.invoke(app, args + ["-q"])
        assert r.exit_code == 0, (args, r.output)
    assert (project / "data" / "splits.csv").is_file() and (project / "outputs" / "eda").is_dir()
    assert (tree_snapshot(project / "train"), (project / "train.csv").read_bytes()) == before
    for cmd in ("clean", "preprocess"):     # the images' folder stays refused, before any image is scanned
        r = runner.invoke(app, [cmd, "train.csv", "--label-col", "artist", "--out", f"train/{cmd}"])
        assert "inside the input folder" in one_error_line(r) and "scanning images" not in r.output


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"imgcls {__version__}"


def test_every_command_help_has_an_example():
    import typer.main
    group = typer.main.get_command(app)
    assert "eda" in group.commands
    for name in group.commands:
        r = runner.invoke(app, [name, "--help"])
        assert r.exit_code == 0, (name, r.output)
        assert "Example" in r.output, f"imgcls {name} --help has no example"


def test_python_dash_m_help():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "imgcls", "--help"], capture_output=True, text=True, cwd=REPO,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "eda" in r.stdout and "Usage" in r.stdout
    # heavy libraries stay out of `imgcls --help`
    probe = ("import sys, imgcls.cli; print(sorted(m for m in ('torch', 'timm', 'rembg', 'deepface', 'cv2') "
             "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_the_command_line_leaves_python_s_exit_collection_nothing_to_walk(monkeypatch):
    """Python's last garbage collection walked every object torch / timm / pandas made: ~1 s of each train's and
    predict's exit. The console entry point freezes them once the command is done, whether it ended well or not."""
    import gc

    import imgcls.cli as cli
    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(sys, "argv", ["imgcls", "--version"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 0 and frozen == [True]
    monkeypatch.setattr(sys, "argv", ["imgcls", "train", "--no-such-flag"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 2 and frozen == [True, True]


@pytest.mark.parametrize("argv,words", [
    (["trian"], ["No such command 'trian'", "Did you mean 'train'?", "-h)"]),
    (["train", "--epoch", "3"], ["No such option: --epoch", "--epochs", "train -h)"]),
    # a DACON user's flag of eda / clean / split: train's own for a table's class column is --target
    (["train", "train.csv", "--label-col", "artist"],
     ["No such option: --label-col; --target COLUMN trains on a column of the table whose values are the classes",
      "train -h)"]),
    (["tune", "--label-col", "artist"], ["No such option: --label-col; --target COLUMN", "tune -h)"]),
    (["train", "--epochs", "abc"], ["Invalid value for '--epochs'", "train -h)"]),
    (["ensemble"], ["Missing argument 'runs'", "ensemble -h)"]),
    # an option typed without its value: click's parser raises it without the command's context, and the hint the
    # other usage errors end with was missing
    (["preprocess", "data/clean", "--oversample"], ["Option '--oversample' requires an argument",
                                                    "preprocess -h)"]),
])
def test_click_s_usage_errors_are_one_line_like_imgcls_s_own(argv, words):
    """A mistyped flag or command, a value click cannot convert, a missing argument: one line, exit 2, as a UserError
    (Typer printed a usage line, a hint and a boxed message)."""
    r = CliRunner().invoke(app, argv)
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert all(w in lines[0] for w in words), lines[0]


@pytest.mark.parametrize("argv,line", [
    (["eda", "raw", "--out", ""],
     "error: --out '' names no path (an unset shell variable?): give one, or leave --out out (see imgcls eda -h)"),
    (["preprocess", "raw", "--out="],
     "error: --out '' names no path (an unset shell variable?): give one, or leave --out out "
     "(see imgcls preprocess -h)"),
    (["split", "raw", "--out", ""],
     "error: --out '' names no path (an unset shell variable?): give one, or leave --out out (see imgcls split -h)"),
    (["predict", "", "--data", "raw"], "error: SOURCE '' names no path (an unset shell variable?): give one "
                                       "(see imgcls predict -h)"),
    (["ensemble", "runs/a", ""], "error: RUNS '' names no path (an unset shell variable?): give one "
                                 "(see imgcls ensemble -h)"),
    # runs' paths arrive as text (after a word diff / report): it said "no run under ." of the current folder
    (["runs", ""], "error: DIR '' names no path (an unset shell variable?): give one"),
    (["runs", "diff", "runs/a", ""], "error: RUN '' names no path (an unset shell variable?): give one"),
    # its files are text options (`-`: stdout): '' read '.' ("--csv . is an existing folder")
    (["runs", "--csv", ""], "error: --csv '' names no path (an unset shell variable?): give one, or leave --csv out"),
    (["runs", "--json="], "error: --json '' names no path (an unset shell variable?): give one, or leave --json out"),
])
def test_an_empty_path_is_one_line_not_the_current_folder(tmp_path, monkeypatch, argv, line):
    """A script's unset variable (`--out "$OUT"`, `imgcls predict "$RUN"`) typed an empty path, which pathlib reads as
    '.': eda, clean, preprocess, train, ensemble, export and predict wrote their outputs into the current folder
    (exit 0) where it held no input (here eda's --out '' was refused as the folder holding its input), split's --out
    '' was its default, and an empty RUN was refused as the dataset folder '.'. Now one line naming the flag or
    argument, exit 2, nothing written."""
    make_image_folder(tmp_path / "raw", {"a": 2, "b": 2})
    monkeypatch.chdir(tmp_path)
    before = tree_snapshot(tmp_path)
    r = runner.invoke(app, argv, prog_name="imgcls")
    assert r.exit_code == 2 and " ".join(r.output.split()) == line, r.output
    assert tree_snapshot(tmp_path) == before
    r = runner.invoke(app, [*argv, "-h"], prog_name="imgcls")
    assert r.exit_code == 0 and "Examples:" in r.output, r.output


@pytest.mark.parametrize("argv,line", [
    (["runs", "rr", "--filter", "model=resnet18", "--filter", ""],
     "error: --filter '': write COLUMN=VALUE (also !=, >, <, >=, <=, ~ for 'contains'), e.g. --filter model=resnet10t"),
    (["train", "nosuch.csv", "--tracker", ""],
     "error: unknown --tracker ''; use one of: tensorboard, mlflow, wandb, none"),
])
def test_a_repeated_flag_s_blank_value_is_named_by_the_flag_s_own_line(argv, line):
    """A repeated flag reaches options.check as a list: the blank-item rule of a Python caller's list fired first,
    showing the command line a Python list and a Python fix ("--filter ['model=resnet18', ''] holds a blank item;
    drop it (filter=['model=resnet18'])"). The flag's own check names it: --filter's syntax, --tracker's choices."""
    r = runner.invoke(app, argv)
    assert r.exit_code == 2 and r.output.strip() == line, r.output


def test_no_command_shows_the_help_and_a_command_s_exit_code_is_kept():
    r = CliRunner().invoke(app, [])
    assert r.exit_code == 2 and "Usage:" in r.output and "train" in r.output and "error:" not in r.output
    assert CliRunner().invoke(app, ["--version"]).exit_code == 0
    r = CliRunner().invoke(app, ["runs", "diff"])                           # a UserError: its own line, exit 2
    assert r.exit_code == 2 and r.output.count("error:") == 1


def test_imgcls_help_itself_ends_with_examples():
    """README: 'every --help ends with an example'; `imgcls --help` listed the commands and ended there."""
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0, r.output
    tail = r.output[r.output.rindex("Commands"):]
    assert "Examples" in tail and "imgcls train --model tf_efficientnet_lite0" in tail, r.output


def test_predict_help_names_every_default_test_folder():
    """`imgcls predict --help` said --data defaults to data/test, while predict (and the README) take the first of
    data/test, data/eval that exists: the mask competition's eval/ was not named. The help names pipeline's list."""
    from imgcls.pipeline import TEST_DATA
    r = runner.invoke(app, ["predict", "--help"], terminal_width=200)
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.replace("│", " ").split())
    assert f"(default: the first of {', '.join(TEST_DATA)} that exists)" in text, text


@pytest.mark.parametrize("own_line", [False, True])
def test_ctrl_c_is_one_interrupted_line_and_exit_130(own_line, tmp_path, image_folder, monkeypatch):
    """Ctrl-C exited 130 saying nothing (Typer turns KeyboardInterrupt into a silent Exit(130)) but in train after an
    epoch and in tune; now one `interrupted` line naming the command to rerun, also with --quiet, and none added to
    a step's own (train's run folder and resume command)."""
    import imgcls.eda
    from imgcls.console import interrupted

    def ctrl_c(*a, **kw):
        if own_line:
            interrupted("interrupted: the step's own line")
        raise KeyboardInterrupt
    monkeypatch.setattr(imgcls.eda, "run_eda", ctrl_c)
    r = runner.invoke(app, ["eda", str(image_folder), "--out", str(tmp_path / "eda"), "-q"])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 130 and "Traceback" not in r.output, r.output
    from imgcls.console import nothing_written
    assert lines == (["interrupted: the step's own line"] if own_line else
                     ["interrupted: imgcls eda stopped before it finished (Ctrl-C); "
                      + nothing_written(tmp_path / "eda")]), r.output


def _interrupted_case(case: str, tmp_path: Path, image_folder: Path, monkeypatch):
    """`case`'s command line, whose step a first run (where it writes) has given an earlier output, with a function
    inside its work made to raise Ctrl-C; the folder whose files the interruption must leave as they were; what its
    `interrupted:` line says the step left."""
    from conftest import make_tiny_run
    import imgcls.eda
    import imgcls.runs
    import imgcls.split.run
    import imgcls.weights
    from imgcls.console import WRITES_NOTHING, nothing_written

    def ctrl_c(*a, **kw):
        raise KeyboardInterrupt
    if case == "eda":
        out = tmp_path / "eda"
        argv = ["eda", str(image_folder), "--out", str(out), "-q"]
        assert runner.invoke(app, argv).exit_code == 0
        monkeypatch.setattr(imgcls.eda, "plot_sample_grids", ctrl_c)        # among its plots, in its output set
        return argv, out, nothing_written(out)
    table = tmp_path / "s" / "splits.csv"
    if case in ("split", "split --check", "split --check --fix"):
        argv = ["split", str(image_folder), "--out", str(table), "--val", "0.5", "--no-near-dup", "-q"]
        assert runner.invoke(app, argv).exit_code == 0
        if case == "split":
            monkeypatch.setattr(imgcls.split.run, "write_reports", ctrl_c)      # its table and reports: one set
            return argv, table.parent, nothing_written(f"{table} and its reports")
        monkeypatch.setattr(imgcls.split.run, "check_leaks", ctrl_c)
        fixed = tmp_path / "s" / "fixed.csv"
        fix = ["--fix", "--out", str(fixed)] if case.endswith("--fix") else []
        return (["split", "--check", str(table), "--no-near-dup", *fix, "-q"], table.parent,
                nothing_written(f"{fixed} and its reports") if fix else WRITES_NOTHING)
    if case in ("runs", "runs report"):
        make_tiny_run(tmp_path / "outputs" / "r1")
        monkeypatch.setattr(imgcls.runs, "leaderboard", ctrl_c)
        report = ["report", str(tmp_path / "outputs")] if case == "runs report" else [str(tmp_path / "outputs")]
        return (["runs", *report, "-q"], tmp_path / "outputs",
                nothing_written(tmp_path / "outputs" / "runs_report.html") if report[0] == "report" else WRITES_NOTHING)
    monkeypatch.setattr(imgcls.weights, "print_inventory", ctrl_c)
    return ["models", "list", "-q"], tmp_path, WRITES_NOTHING


@pytest.mark.parametrize("case", ["eda", "split", "split --check", "split --check --fix", "runs", "runs report",
                                  "models list"])
def test_ctrl_c_says_what_a_step_that_writes_nothing_or_writes_whole_left(case, tmp_path, image_folder, monkeypatch):
    """Ctrl-C (and SIGTERM) told every step without a line of its own to 'run the same command again to complete
    it': a read-only command (`imgcls runs`, `split --check`, `models list`) has nothing to complete, and eda and
    split, which write their files as one set at their end, left the earlier output as it was, nothing of theirs
    to complete. Each says what it left; and it is true: the folder holds the same files, byte for byte, no
    temporary one."""
    argv, folder, leaves = _interrupted_case(case, tmp_path, image_folder, monkeypatch)
    before = tree_snapshot(folder)
    r = runner.invoke(app, argv)
    what = " ".join(["imgcls", *argv[:2 if argv[0] == "models" else 1]])
    assert r.exit_code == 130 and "Traceback" not in r.output, r.output
    assert " ".join(r.output.split()) == f"interrupted: {what} stopped before it finished (Ctrl-C); {leaves}", \
        r.output
    assert tree_snapshot(folder) == before


@pytest.mark.parametrize("step", ["eda", "split"])
def test_ctrl_c_among_the_renames_of_a_set_says_some_files_were_placed(step, tmp_path, image_folder, monkeypatch):
    """A step that writes its files as one set, stopped while renaming them into place (output_set), said that
    nothing was written to its --out: the files renamed so far are there. It says so, and that the rerun replaces
    them (it does: the placing journal names them as the step's own)."""
    from conftest import stop_after_first_rename
    from imgcls.console import partly_placed
    out = tmp_path / ("eda" if step == "eda" else "s")
    argv = ["eda", str(image_folder), "--out", str(out), "-q"] if step == "eda" else \
        ["split", str(image_folder), "--out", str(out / "splits.csv"), "--val", "0.5", "--no-near-dup", "-q"]
    placed = stop_after_first_rename(monkeypatch)
    r = runner.invoke(app, argv)
    assert r.exit_code == 130 and placed and (out / placed[0]).is_file(), r.output
    assert " ".join(r.output.split()) == (f"interrupted: imgcls {step} stopped before it finished (Ctrl-C); "
                                          f"{partly_placed(out)}"), r.output
    monkeypatch.undo()
    assert runner.invoke(app, argv).exit_code == 0


@pytest.mark.parametrize("step", ["eda", "split"])
def test_a_placing_journal_an_older_imgcls_wrote_still_names_its_files(step, tmp_path, image_folder, monkeypatch):
    """A run of an older imgcls stopped among its renames left a placing journal of {name: [size, mtime]}; 9a3be77
    records a list of such stamps per name and read only that: the rerun after an upgrade took the files the older
    run placed for the user's and refused them. Both are read."""
    import json

    from conftest import stop_after_first_rename
    from imgcls.outputs import placing_journal
    out = tmp_path / ("eda" if step == "eda" else "s")
    argv = ["eda", str(image_folder), "--out", str(out), "-q"] if step == "eda" else \
        ["split", str(image_folder), "--out", str(out / "splits.csv"), "--val", "0.5", "--no-near-dup", "-q"]
    placed = stop_after_first_rename(monkeypatch)
    assert runner.invoke(app, argv).exit_code == 130 and placed
    monkeypatch.undo()
    journal = placing_journal(out / "eda" if step == "eda" else out / "splits.csv")
    assert journal.is_file()
    stat = (out / placed[0]).stat()
    journal.write_text(json.dumps({placed[0]: [stat.st_size, stat.st_mtime_ns]}))       # the older version's
    r = runner.invoke(app, argv)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("step", ["eda", "split"])
def test_ctrl_c_between_the_last_rename_and_the_step_s_next_line_says_the_files_are_in_place(step, tmp_path,
                                                                                              image_folder,
                                                                                              monkeypatch):
    """A stop in the instant after a set's last rename, before the step's own all_placed block (output_set
    removing its empty staging folder), said 'run the same command again to complete it': the set was whole. It
    says the files were all written, from the last rename on."""
    import shutil

    from imgcls.console import all_placed
    out = tmp_path / ("eda" if step == "eda" else "s")
    argv = ["eda", str(image_folder), "--out", str(out), "-q"] if step == "eda" else \
        ["split", str(image_folder), "--out", str(out / "splits.csv"), "--val", "0.5", "--no-near-dup", "-q"]
    rmtree = shutil.rmtree

    def stopped_removing_the_stage(path, *a, **k):
        if os.path.basename(path).endswith(".tmp"):
            raise KeyboardInterrupt
        return rmtree(path, *a, **k)
    monkeypatch.setattr(shutil, "rmtree", stopped_removing_the_stage)
    r = runner.invoke(app, argv)
    monkeypatch.undo()
    assert r.exit_code == 130, r.output
    assert " ".join(r.output.split()) == (f"interrupted: imgcls {step} stopped before it finished (Ctrl-C); "
                                          f"{all_placed(out)}"), r.output
    assert (out / ("summary.json" if step == "eda" else "splits_summary.json")).is_file()
    # the next run, stopped before its set is placed, says its own line, not the last run's
    import imgcls.eda
    import imgcls.split.run

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(*((imgcls.eda, "plot_sample_grids") if step == "eda" else
                          (imgcls.split.run, "write_reports")), ctrl_c)
    r = runner.invoke(app, argv)
    assert r.exit_code == 130 and "nothing was written to" in r.output, r.output


@pytest.mark.parametrize("step", ["eda", "split", "split --check --fix", "predict", "ensemble", "clean"])
def test_ctrl_c_after_a_set_was_placed_says_the_files_are_in_place(step, tmp_path, image_folder, monkeypatch):
    """eda and split stopped (Ctrl-C) after their set was renamed into place, while they said what they wrote,
    said 'nothing was written to OUT (an earlier output there is left as it was)': every file of the new set was
    there; predict, ensemble (stopped in print_scores) and clean said 'run the same command again to complete it'.
    They say that it was all written, and it is."""
    import imgcls.clean.run
    import imgcls.eda
    import imgcls.ensemble.build
    import imgcls.predict
    import imgcls.split.run
    from conftest import make_tiny_run
    from imgcls.console import all_placed
    table = tmp_path / "s" / "splits.csv"
    if step == "ensemble":
        rows = [(str(tmp_path / "data"), f"{c}/{i:03d}.png", c) for i, c in enumerate("abc" * 4)]
        runs = [make_tiny_run(tmp_path / "runs" / f"r{k}", seed=k, val_rows=rows) for k in (1, 2)]
        out = tmp_path / "ens"

        def stopped_printing_scores(*a, **k):
            raise KeyboardInterrupt
        monkeypatch.setattr(imgcls.ensemble.build, "print_scores", stopped_printing_scores)
        r = runner.invoke(app, ["ensemble", *map(str, runs), "--out", str(out), "-q"])
        assert r.exit_code == 130 and (out / "spec.yaml").is_file(), r.output
        assert " ".join(r.output.split()) == (f"interrupted: imgcls ensemble stopped before it finished (Ctrl-C); "
                                              f"{all_placed(out)}"), r.output
        assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
        return
    if step == "clean":
        out = tmp_path / "clean"
        argv, module, last, where, mark = (["clean", str(image_folder), "--out", str(out), "--exact-only", "--no-ood",
                                            "--workers", "1", "--materialize", "link", "-q"],
                                           imgcls.clean.run, "clean: kept ", out, out / "clean_summary.json")
    elif step == "predict":
        out = tmp_path / "pred"
        argv, module, last, where, mark = (["predict", str(make_tiny_run(tmp_path / "run")), "--data",
                                            str(image_folder), "--out", str(out), "--workers", "0", "-q"],
                                           imgcls.predict, "wrote ", out, out / "predict.json")
    elif step == "eda":
        out = tmp_path / "eda"
        argv, module, last, where, mark = (["eda", str(image_folder), "--out", str(out), "-q"], imgcls.eda,
                                           "eda outputs:", out, out / "summary.json")
    else:
        argv = ["split", str(image_folder), "--out", str(table), "--val", "0.5", "--no-near-dup", "-q"]
        if step != "split":
            assert runner.invoke(app, argv).exit_code == 0
            table = tmp_path / "s" / "fixed.csv"
            argv = ["split", "--check", str(tmp_path / "s" / "splits.csv"), "--no-near-dup", "--fix", "--out",
                    str(table), "-q"]
        module, last, where, mark = imgcls.split.run, "wrote ", f"{table} and its reports", table
    info = module.info

    def stopped_saying_what_it_wrote(msg, *a, **k):
        if msg.startswith(last):
            raise KeyboardInterrupt
        info(msg, *a, **k)
    monkeypatch.setattr(module, "info", stopped_saying_what_it_wrote)
    r = runner.invoke(app, argv)
    assert r.exit_code == 130 and mark.is_file(), r.output
    assert " ".join(r.output.split()) == (f"interrupted: imgcls {step.split()[0]} stopped before it finished "
                                          f"(Ctrl-C); {all_placed(where)}"), r.output
    assert not [p.name for p in mark.parent.iterdir() if p.name.startswith(".")]


def _sigterm_once_working(tmp_path, argv: list[str], working) -> tuple[int, str]:
    """`imgcls ARGV` in its own process, sent SIGTERM (the process alone, as `kill PID` sends it) as soon as
    `working(stderr lines so far)` is true: its exit status and stderr."""
    import signal
    import threading
    import time
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "COLUMNS": "300"}
    with open(tmp_path / "stdout.txt", "w") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "imgcls", *argv], stdout=stdout, stderr=subprocess.PIPE,
                                text=True, env=env, cwd=tmp_path, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: [lines.append(ln) for ln in proc.stderr], daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not working(list(lines)) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None and working(list(lines)), ("not seen at work", proc.poll(), lines)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, "".join(lines)


def _said(text: str):
    return lambda lines: any(text in ln for ln in lines)


def _sigterm_case(step: str, tmp_path: Path):
    """`step`'s command line on data that keeps it at work for seconds, and when it is visibly at work."""
    from conftest import make_tiny_run
    counts = {"a": 120, "b": 120, "c": 120}
    if step in ("clean", "eda", "preprocess", "predict"):
        make_image_folder(tmp_path / "data", counts, size=(64, 64))
    if step == "clean":     # the embedder's pool of workers: its own SIGTERM handler stops them first
        return ["clean", "data", "--out", "c", "--device", "cpu", "--workers", "2"], _said("as layout")
    if step == "eda":
        return ["eda", "data", "--out", "e", "--workers", "2"], _said("as layout")
    if step == "preprocess":    # the resume journal: images finished, kept for the rerun
        journal = tmp_path / "p" / ".preprocess_journal.jsonl"
        return ["preprocess", "data", "--out", "p", "--size", "48", "--workers", "2"], \
            lambda lines: journal.is_file() and journal.stat().st_size > 0
    if step == "predict":
        make_tiny_run(tmp_path / "r1")
        return ["predict", "r1", "--data", "data", "--out", "pr", "--device", "cpu"], _said("predicting with")
    rows = [("data", f"{c}/{i:03d}.png", c) for c in counts for i in range(counts[c])]
    for k in (1, 2):
        make_tiny_run(tmp_path / f"r{k}", seed=k, val_rows=rows, val_quality=0.5 / k)
    # its scores staged, its report's figures (seconds) being drawn: spec.yaml, placed last, is the set placed whole
    staged = tmp_path / "en"
    return ["ensemble", "r1", "r2", "--out", "en"], lambda lines: any(staged.glob(".ensemble.*.tmp/scores.csv"))


@pytest.mark.slow
@pytest.mark.parametrize("step", ["clean", "preprocess", "eda", "predict", "ensemble"])
def test_sigterm_says_ctrl_c_s_line_and_still_ends_by_sigterm(step, tmp_path):
    """`timeout 60 imgcls clean data/raw` in a batch script, `kill PID`: clean, preprocess, eda, predict and
    ensemble ended by SIGTERM saying nothing (only train and tune took it as Ctrl-C), so the log did not say what
    happened or that a rerun completes the step. Now every command says Ctrl-C's `interrupted:` line, then the
    process still ends by SIGTERM (exit 143 to a shell)."""
    import signal
    for attempt in (tmp_path / "first", tmp_path / "again"):
        attempt.mkdir()
        argv, working = _sigterm_case(step, attempt)
        code, err = _sigterm_once_working(attempt, argv, working)
        said = " ".join(err.split())
        assert code == -signal.SIGTERM, (code, err)
        assert "Traceback" not in err, err
        # its Terminated vanished where C code ran the handler (test_a_sigterm_whose_interruption_vanished): seen
        # once in ~10 loaded runs of ensemble; once more, where it must not
        vanished = f"interrupted: imgcls {step} took its SIGTERM only as it ended: its work is complete" in said
        if not vanished:
            break
    assert not vanished, err
    tmp_path = attempt
    if step == "preprocess":    # its own line: what its resume journal keeps
        assert "interrupted: p keeps the" in said and "finished so far (its resume journal" in said \
            or "interrupted: p holds no finished image yet; the same imgcls preprocess command again" in said \
            or "interrupted after the last image: every image is finished (360 images in p" in said, err
    elif step == "eda":         # its files are written whole at its end
        from imgcls.console import nothing_written
        assert f"interrupted: imgcls eda stopped before it finished (SIGTERM); {nothing_written('e')}" in said, err
        assert not (tmp_path / "e").exists()
    else:
        assert f"interrupted: imgcls {step} stopped before it finished (SIGTERM); run the same command again to " \
               f"complete it" in said, err


def _entry_point(how: str) -> str:
    """Python that starts `imgcls` as `how` does: `python -m imgcls`, or the console script pip writes from
    pyproject's [project.scripts] entry (module:function), which the venv's installed copy may predate."""
    if how == "python -m imgcls":
        return "import runpy; runpy.run_module('imgcls', run_name='__main__', alter_sys=True)"
    import re
    scripts = (REPO / "pyproject.toml").read_text().split("[project.scripts]", 1)[1]
    module, function = re.search(r'^imgcls\s*=\s*"([\w.]+):(\w+)"', scripts, re.M).groups()
    return f"import sys; from {module} import {function}; sys.exit({function}())"


@pytest.mark.parametrize("how,signame", [("python -m imgcls", "SIGINT"), ("console script", "SIGINT"),
                                         ("python -m imgcls", "SIGTERM")])
def test_ctrl_c_while_the_cli_is_imported_is_the_interrupted_line_not_a_traceback(how, signame, tmp_path):
    """A Ctrl-C in the first second of any command, while imgcls.cli is imported and its commands registered,
    printed a Python traceback (2 of 7 early-timed runs) where every command says one `interrupted:` line. The
    entry point (light itself) says it: exit 130; SIGTERM: the line, and the process ends by SIGTERM as a
    command's does. The import is held here (a command module's import sleeps) until the signal is sent."""
    started = tmp_path / "importing"
    hold = ("import sys, time\n"
            "class Hold:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'imgcls.cli.split':\n"
            f"            open({str(started)!r}, 'w').close()\n"
            "            time.sleep(60)\n"
            "sys.meta_path.insert(0, Hold())\n")
    _signalled_while_held(hold + _entry_point(how), started, signame, tmp_path)


def _signalled_while_held(code: str, started, signame: str, tmp_path) -> None:
    """Run `code` (`imgcls eda --help` held at a point of its start-up, which touches `started` there), send
    `signame` once it is held, and check the one starting line: no traceback, exit 130 (SIGTERM: the process ends by
    SIGTERM)."""
    import signal
    import time
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code, "eda", "--help"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert started.exists() and proc.poll() is None, proc.communicate(timeout=10)
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    how = "Ctrl-C" if signame == "SIGINT" else "SIGTERM"
    assert "Traceback" not in err and out == "", err
    assert err.strip() == f"interrupted: imgcls stopped while it was starting ({how}), before its command began: " \
                          "nothing was changed", err
    assert proc.returncode == (130 if signame == "SIGINT" else -signal.SIGTERM), (proc.returncode, err)


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("stage", ["building its commands", "parsing the command line"])
def test_ctrl_c_after_the_import_before_the_command_s_body_is_the_interrupted_line(stage, signame, tmp_path):
    """After the import, before a command's body takes Ctrl-C, Typer builds every command from its signature
    (typer.main.get_command) and click parses the command line: a Ctrl-C there (`timeout -s INT 3 imgcls ensemble
    ...` on the loaded 2-core machine) printed a traceback, or exited 130 saying nothing; a SIGTERM (`timeout 3`)
    ended the process saying nothing. Each says the starting line (exit 130; SIGTERM: the process ends by SIGTERM).
    Each stage is held here (it sleeps) until the signal is sent."""
    started = tmp_path / "held"
    held = f"    open({str(started)!r}, 'w').close()\n    time.sleep(60)\n"
    hold = ("import time, typer.main, typer.core\n"
            + ("def held(*a, **k):\n" + held + "typer.main.get_command = held\n"
               if stage == "building its commands" else
               "def held(*a, **k):\n" + held + "typer.core.TyperCommand.parse_args = held\n"))
    _signalled_while_held(hold + _entry_point("python -m imgcls"), started, signame, tmp_path)


def test_a_sigterm_handled_inside_a_finalizer_still_stops_the_step():
    """Python runs a signal handler at the next bytecode of the main thread, which may be inside a finalizer (a
    __del__, a weakref callback: torch's DataLoader iterator, concurrent.futures' executors), where a raised
    exception is only printed ('Exception ignored in ... Terminated'): the SIGTERM was lost, the step ran on to its
    end and exited 0 (seen once each on `timeout -s TERM 2 imgcls preprocess ... --oversample-aug mixup` and
    `timeout -s TERM 4 imgcls train ... --folds all`). The interruption is raised again outside the finalizer: the
    step stops, says its `interrupted:` line and ends by SIGTERM."""
    _a_finalizer_swallows_the_sigterm_and_the_step_still_stops()


def test_a_sigterm_that_comes_while_a_swallowed_one_is_armed_again_still_stops_the_step():
    """unraisable arms a swallowed Terminated again (the handler set back, send_again's thread started): a SIGTERM
    in the middle of that (send_again's next one while a second finalizer swallowed one, a second `kill`) ran the
    handler inside the hook, where its Terminated is lost too ('Exception ignored in sys.unraisablehook'), and
    nothing sent it again: the step ran on to its end. It is armed again and stops the step."""
    _a_finalizer_swallows_the_sigterm_and_the_step_still_stops(
        before="import threading\n"
               "start = threading.Thread.start\n"
               "def start_after_a_sigterm(thread):\n"    # a SIGTERM as the hook starts send_again's thread
               "    threading.Thread.start = start\n"
               "    signal.raise_signal(signal.SIGTERM)\n"
               "    start(thread)\n",
        first="        threading.Thread.start = start_after_a_sigterm\n")


def test_a_sigterm_handled_as_the_block_ends_still_sets_the_hook_and_handler_back():
    """send_again's signal can run the handler in sigterm_interrupts' own clean-up (its stop()): the Terminated cut
    the clean-up short, and sys.unraisablehook (a notebook's, CliRunner's process) kept the block's hook, the SIGTERM
    handler the block's handler. Both are set back however the clean-up ends."""
    import signal

    from imgcls.cli.common import _SigtermInterrupts, sigterm_interrupts
    from imgcls.process import Terminated
    hook, before = sys.unraisablehook, signal.signal(signal.SIGTERM, signal.SIG_DFL)
    real = _SigtermInterrupts.stop
    try:
        def stopped_by_the_handler(self):
            real(self)
            raise Terminated
        _SigtermInterrupts.stop = stopped_by_the_handler
        with pytest.raises(Terminated):
            with sigterm_interrupts("imgcls demo"):
                assert isinstance(signal.getsignal(signal.SIGTERM), _SigtermInterrupts)
        assert sys.unraisablehook is hook and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        _SigtermInterrupts.stop = real
        sys.unraisablehook = hook
        signal.signal(signal.SIGTERM, before)


def _python_of_this_checkout(script: str) -> subprocess.CompletedProcess:
    """`script` run by a Python of its own that imports this checkout (the signal tests' steps): its exit status,
    stdout and stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)


def _a_finalizer_swallows_the_sigterm_and_the_step_still_stops(before: str = "", first: str = "") -> None:
    """A step (one_line_errors and sigterm_interrupts, as command() wraps a command's body) whose finalizer sends
    SIGTERM and swallows the Terminated its handler raises there, then sleeps 30 s (`before`: lines run first;
    `first`: the step's own first line): it must end by SIGTERM with its line, its sleep cut short."""
    import signal
    import time
    script = (
        "import gc, os, signal, sys, time, typer\n"
        "from imgcls.cli.common import one_line_errors, sigterm_interrupts\n"
        + before +
        "class Finalized:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        sum(range(100000))\n"
        "try:\n"
        "    with one_line_errors('imgcls demo'), sigterm_interrupts('imgcls demo'):\n"
        + first +
        "        Finalized()\n"
        "        gc.collect()\n"
        "        time.sleep(30)\n"   # the signal sent again ends it at once
        "        print('the step went on to its end', file=sys.stderr)\n"
        "except typer.Exit as e:\n"
        "    sys.exit(e.exit_code)\n")
    began = time.monotonic()
    r = _python_of_this_checkout(script)
    err = " ".join(r.stderr.split())
    assert r.returncode == -signal.SIGTERM, (r.returncode, r.stderr)
    assert "interrupted: imgcls demo stopped before it finished (SIGTERM)" in err, r.stderr
    # the main thread's sleep cut short (the signal sent to the process went to the timer's thread: 30 s)
    assert time.monotonic() - began < 25, r.stderr
    assert "went on" not in err and "Exception ignored" not in err and "Traceback" not in err, r.stderr


def test_a_forked_child_ends_by_sigterm_though_a_thread_held_the_handler_s_lock_at_the_fork():
    """A child forked (a DataLoader's worker, a pool's) while send_again's thread held the handler's lock inherits
    the lock held by a thread it does not have: its SIGTERM (the pool's terminate, `timeout`'s to the group) waited
    for it for ever in the inherited handler, a worker left running. The child ends by SIGTERM at once."""
    import signal
    script = (
        "import os, signal, sys, threading, time\n"
        "from imgcls.cli.common import sigterm_interrupts\n"
        "with sigterm_interrupts('imgcls demo'):\n"
        "    handler, held, free = signal.getsignal(signal.SIGTERM), threading.Event(), threading.Event()\n"
        "    def hold():\n"
        "        with handler.lock:\n"
        "            held.set()\n"
        "            free.wait()\n"
        "    threading.Thread(target=hold, daemon=True).start()\n"
        "    held.wait()\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    free.set()\n"
        "    time.sleep(0.5)\n"
        "    os.kill(pid, signal.SIGTERM)\n"
        "    for _ in range(200):\n"
        "        done, status = os.waitpid(pid, os.WNOHANG)\n"
        "        if done:\n"
        "            print('child', os.waitstatus_to_exitcode(status))\n"
        "            break\n"
        "        time.sleep(0.05)\n"
        "    else:\n"
        "        os.kill(pid, signal.SIGKILL)\n"
        "        print('child still running')\n")
    r = _python_of_this_checkout(script)
    assert r.returncode == 0 and r.stdout.split() == ["child", str(-signal.SIGTERM)], (r.stdout, r.stderr)



def _sigterm_swallowed_then(last: str) -> str:
    """A step's script whose SIGTERM's Terminated is swallowed (an except BaseException around the sleep it lands in),
    which then runs `last` (a line of Python) inside one_line_errors and sigterm_interrupts."""
    return ("import os, signal, sys, time, typer\n"
            "from imgcls.cli.common import one_line_errors, sigterm_interrupts\n"
            "from imgcls.errors import UserError\n"
            "try:\n"
            "    with one_line_errors('imgcls demo'), sigterm_interrupts('imgcls demo'):\n"
            "        try:\n"
            "            os.kill(os.getpid(), signal.SIGTERM)\n"
            "            time.sleep(5)\n"
            "        except BaseException:\n"
            "            pass\n"
            f"        {last}\n"
            "except typer.Exit as e:\n"
            "    sys.exit(e.exit_code)\n")

def test_a_sigterm_whose_interruption_vanished_still_ends_the_process_by_sigterm():
    """The handler's Terminated can vanish without a trace: Python code that C calls (a lookup that clears every
    error, as PyObject_HasAttr does in 3.11) ran the handler, or send_again's signal was outrun by the step's end. A
    CI run of `kill PID` on `imgcls ensemble` at work then printed its `wrote` line and exited 0, as if no SIGTERM
    came. The step that ran to its end says that it took the SIGTERM only then and that its work is complete, and
    the process still ends by SIGTERM (exit 143 to a shell)."""
    import signal
    r = _python_of_this_checkout(_sigterm_swallowed_then("print('the step went on to its end', file=sys.stderr)"))
    err = " ".join(r.stderr.split())
    assert r.returncode == -signal.SIGTERM, (r.returncode, r.stderr)
    assert err == "the step went on to its end interrupted: imgcls demo took its SIGTERM only as it ended: its " \
                  "work is complete, nothing needs to run again", r.stderr


def test_a_sigterm_whose_interruption_vanished_before_a_refusal_still_ends_the_process_by_sigterm():
    """A step whose Terminated vanished (as above) and that then stopped on a UserError (a refusal the interruption
    may have caused) said the error and exited 2, where every other SIGTERM'd step ends by SIGTERM: a script that
    waits for 143 (`timeout`'s caller, a scheduler) read it as a plain refusal. It says the error line, and the
    process ends by SIGTERM."""
    import signal
    r = _python_of_this_checkout(_sigterm_swallowed_then("raise UserError('the demo refused: fix the demo')"))
    err = " ".join(r.stderr.split())
    assert r.returncode == -signal.SIGTERM, (r.returncode, r.stderr)
    assert err == "error: the demo refused: fix the demo", r.stderr


def test_a_sigterm_whose_interruption_vanished_before_a_crash_still_ends_the_process_by_sigterm():
    """A step whose Terminated vanished (as above) and that then crashed (an exception that is no UserError, one the
    interruption may have caused) printed its traceback and exited 1, where a refusal there ends by SIGTERM: a
    script that waits for 143 read it as a plain failure. The traceback is said, and the process ends by SIGTERM."""
    import signal
    r = _python_of_this_checkout(_sigterm_swallowed_then("raise RuntimeError('the demo crashed')"))
    assert r.returncode == -signal.SIGTERM, (r.returncode, r.stderr)
    assert r.stderr.startswith("Traceback (most recent call last):"), r.stderr
    assert r.stderr.rstrip().splitlines()[-1] == "RuntimeError: the demo crashed", r.stderr



def test_a_sigterm_whose_interruption_vanished_before_a_typer_exit_ends_by_sigterm_with_no_traceback():
    """sigterm_interrupts' crash path (`except Exception`) took a command's own typer.Exit / Abort after a swallowed
    SIGTERM for a crash: `Traceback ... typer.exceptions.Exit`. They are no crash: an Exit of another code than 0
    ends by SIGTERM as a refusal does (no line of its own), an Abort says click's `Aborted!` first, and an Exit of 0
    is the step's end, said as one. Without a SIGTERM an Exit is the command's exit code, as before."""
    import signal

    import typer

    from imgcls.cli.common import sigterm_interrupts
    said_end = ("interrupted: imgcls demo took its SIGTERM only as it ended: its work is complete, nothing needs to "
                "run again")
    for last, said in (("raise typer.Exit(3)", ""), ("raise typer.Abort()", "Aborted!"),
                       ("raise typer.Exit(0)", said_end)):
        r = _python_of_this_checkout(_sigterm_swallowed_then(last))
        assert r.returncode == -signal.SIGTERM, (last, r.returncode, r.stderr)
        assert " ".join(r.stderr.split()) == said, (last, r.stderr)
    with pytest.raises(typer.Exit) as e:
        with sigterm_interrupts("imgcls demo"):
            raise typer.Exit(3)
    assert e.value.exit_code == 3


def test_a_sigterm_whose_interruption_vanished_before_sys_exit_ends_by_sigterm_as_a_typer_exit_does():
    """sys.exit(N) (SystemExit, no Exception) in a command's body after a swallowed SIGTERM passed every clause of
    sigterm_interrupts and the process exited N (3; 1 for sys.exit('message')), where a typer.Exit, an Abort, a click
    error, a refusal or a crash there ends by SIGTERM (143): a script waiting for 143 read it as the step's own
    failure. It ends as typer.Exit does: another code than 0 by SIGTERM (a message said first, as Python says it),
    0 or None as the step's end, said as one. Without a SIGTERM sys.exit is the process's exit, as before."""
    import signal

    from imgcls.cli.common import sigterm_interrupts
    said_end = ("interrupted: imgcls demo took its SIGTERM only as it ended: its work is complete, nothing needs to "
                "run again")
    for last, said in (("sys.exit(3)", ""), ("sys.exit('the demo gave up')", "the demo gave up"),
                       ("sys.exit(0)", said_end), ("sys.exit()", said_end)):
        r = _python_of_this_checkout(_sigterm_swallowed_then(last))
        assert r.returncode == -signal.SIGTERM, (last, r.returncode, r.stderr)
        assert " ".join(r.stderr.split()) == said, (last, r.stderr)
    with pytest.raises(SystemExit) as e:
        with sigterm_interrupts("imgcls demo"):
            sys.exit(3)
    assert e.value.code == 3


def test_a_sigterm_whose_interruption_vanished_before_a_usage_error_says_its_line_and_ends_by_sigterm():
    """sigterm_interrupts' crash path (`except Exception`) took a click error a command's body raised (a
    typer.BadParameter, any ClickException) after a swallowed SIGTERM for a crash: a traceback. It is no crash: its
    usual one line is said, as the command line says it, and the process ends by SIGTERM as a refusal does. Without
    a SIGTERM it goes on to the command line's handler, as before."""
    import signal

    import typer

    from imgcls.cli.common import Command, _click_exceptions, sigterm_interrupts
    own = "from imgcls.cli.common import Command, _click_exceptions; raise _click_exceptions(Command)."
    for last, said in (("raise typer.BadParameter('no demo here.')", "error: Invalid value: no demo here"),
                       (own + "ClickException('the demo failed')", "error: the demo failed")):
        r = _python_of_this_checkout(_sigterm_swallowed_then(last))
        assert r.returncode == -signal.SIGTERM, (last, r.returncode, r.stderr)
        assert " ".join(r.stderr.split()) == said, (last, r.stderr)
    with pytest.raises(_click_exceptions(Command).ClickException):
        with sigterm_interrupts("imgcls demo"):
            raise typer.BadParameter("no demo here")

def test_help_examples_are_never_wrapped_at_80_columns_or_piped(monkeypatch):
    """Piped or in an 80-column terminal (`imgcls clean -h | cat`), rich folded a long example over two lines, so
    pasting the first ran half a command; each example is now one line however long, the prose still wraps."""
    import typer.main
    monkeypatch.setenv("COLUMNS", "80")
    root = typer.main.get_command(app)

    def commands(group, path):
        yield path, group
        for name, cmd in getattr(group, "commands", {}).items():
            yield from commands(cmd, [*path, name])
    seen = 0
    for path, cmd in commands(root, []):
        r = runner.invoke(app, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        lines = [ln.strip() for ln in r.output.splitlines()]
        examples = [ln.strip() for ln in cmd.epilog.split("\n\n") if ln[:1].isspace()]
        assert examples or "Example: imgcls" in cmd.epilog, path
        for ex in examples:
            assert ex in lines, (path, ex, r.output[-1500:])
            seen += len(ex) > 78
    assert seen >= 5            # long examples were checked: clean's, predict's, ensemble's, tune's, ...


def test_every_command_and_subcommand_takes_quiet():
    """README's conventions of every command include --quiet (-q); `imgcls models fetch` and `models list` had
    none (exit 2 on -q)."""
    import typer.main

    def leaves(group, path):
        for name, cmd in getattr(group, "commands", {}).items():
            yield from (leaves(cmd, [*path, name]) if hasattr(cmd, "commands") else [([*path, name], cmd)])
    found = list(leaves(typer.main.get_command(app), []))
    assert len(found) >= 12 and ["models", "fetch"] in [p for p, _ in found]
    for path, cmd in found:
        opts = {o for p in cmd.params for o in getattr(p, "opts", ())}
        assert {"--quiet", "-q"} <= opts, f"imgcls {' '.join(path)} has no --quiet"


def test_a_header_only_csv_is_named_as_having_no_rows(tmp_path, image_folder, tiny_run):
    """A CSV with only its header said 'no images found in X.csv; check the folder', and predict --data DIR --csv
    FILE named the folder DIR: the message now names the CSV and says it has no rows."""
    (tmp_path / "train.csv").write_text("path,label\n")
    line = one_error_line(eda(tmp_path / "train.csv", "--out", tmp_path / "e1"))
    assert f"{tmp_path / 'train.csv'} has no rows (only its header)" in line, line
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.csv").write_text("path,root,sha256\n")
    line = one_error_line(eda(tmp_path / "m", "--out", tmp_path / "e2"))
    assert f"{tmp_path / 'm' / 'manifest.csv'} has no rows" in line, line
    run = tiny_run(tmp_path / "runs" / "r")
    (image_folder / "test.csv").write_text("id\n")
    r = runner.invoke(app, ["predict", str(run), "--data", str(image_folder), "--csv", str(image_folder / "test.csv"),
                            "--out", str(tmp_path / "p")])
    assert f"{image_folder / 'test.csv'} has no rows" in one_error_line(r), r.output


@pytest.mark.parametrize("step", [pytest.param("eda", marks=pytest.mark.slow), "clean",
                                  pytest.param("split", marks=pytest.mark.slow)])   # eda twice: ~12 s, split ~7 s
def test_a_rerun_over_its_own_earlier_output_says_it_replaces_it(tmp_path, step):
    """eda, clean and split replaced an earlier run's files in their --out (the same default every run) without a
    line, where predict says "holds an earlier prediction; it is replaced". They now say it in predict's words
    (imgcls.outputs.replacing_line), only when an earlier output of theirs is there."""
    from conftest import make_image_folder
    raw = make_image_folder(tmp_path / "raw", {"cat": 4, "dog": 4})
    out = tmp_path / ("splits.csv" if step == "split" else "out")
    extra = {"eda": ["--samples", "1"], "clean": ["--exact-only", "--no-ood"],
             "split": ["--no-near-dup", "--folds", "2"]}.get(step, [])
    said = []
    for _ in range(2):
        r = runner.invoke(app, [step, str(raw), "--out", str(out), "--workers", "1", *extra])
        assert r.exit_code == 0, r.output
        said.append(" ".join(r.output.split()))
    what = {"eda": "an earlier eda output", "clean": "an earlier clean output",
            "split": "an earlier split (its reports beside it too)"}[step]
    line = (f"{out} holds {what}; this run replaces it once its files are all written "
            f"(--out {'FILE' if step == 'split' else 'FOLDER'} keeps both)")
    assert line not in said[0] and line in said[1], said


@pytest.mark.parametrize("env", [{"LC_ALL": "C", "PYTHONUTF8": "0"}, {"LC_ALL": "C"}])
def test_a_locale_that_reads_file_names_as_ascii_is_one_line_not_a_lost_class(tmp_path, env):
    """Under LC_ALL=C with PYTHONUTF8=0 Python decodes file names as ASCII: eda called the UTF-8 class 고양이 "not
    UTF-8 text", left it out (exit 0, its fix convmv wrong), and train on a manifest naming it was a
    UnicodeEncodeError traceback. Now one line naming the setting and PYTHONUTF8=1, exit 2, nothing written. LC_ALL=C
    alone (Python's UTF-8 mode) is harmless: the class is read. A fresh process: the encoding is fixed at start."""
    make_image_folder(tmp_path / "data", {"cat": 2, "고양이": 2}, size=(16, 16))
    out = tmp_path / "eda"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONUTF8"))}
    r = subprocess.run([sys.executable, "-m", "imgcls", "eda", str(tmp_path / "data"), "--out", str(out),
                        "--workers", "1"], capture_output=True, text=True, encoding="utf-8", errors="replace",
                       cwd=tmp_path, env={**full, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", **env}, timeout=300)
    if env.get("PYTHONUTF8") == "0":
        assert r.returncode == 2, r.stdout + r.stderr
        assert "Traceback" not in r.stderr
        lines = (r.stdout + r.stderr).strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: Python reads file names as ascii"), lines
        assert "LC_ALL=C, PYTHONUTF8=0" in lines[0] and "PYTHONUTF8=1" in lines[0]
        assert not out.exists()
    else:
        assert r.returncode == 0, r.stdout + r.stderr
        assert sorted(summary(out)["classes"]) == ["cat", "고양이"]


def test_the_library_steps_refuse_a_locale_that_reads_file_names_as_ascii_as_the_commands_do(tmp_path, monkeypatch):
    """The file-name encoding check ran in the CLI's command wrapper only: under LC_ALL=C PYTHONUTF8=0 a Python
    caller's run_eda(data) left the class 고양이 out (summary: {'dog': 5}, exit fine) where `imgcls eda` refuses in
    one line. Every step function says that line, as a UserError, before any work. (sys.getfilesystemencoding is
    what the check reads: faked here, as a process's encoding is fixed at its start.)"""
    import sys as sys_mod

    from imgcls.clean import run_clean
    from imgcls.eda import run_eda
    from imgcls.errors import UserError
    from imgcls.ensemble import build_ensemble
    from imgcls.export import export_onnx
    from imgcls.predict import run_predict
    from imgcls.preprocess import run_preprocess
    from imgcls.runs import run_runs
    from imgcls.split import run_check, run_split
    from imgcls.train import TrainConfig, run_train
    from imgcls.tune import TuneConfig, run_tune
    data = make_image_folder(tmp_path / "data", {"cat": 2, "고양이": 2}, size=(16, 16))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys_mod, "getfilesystemencoding", lambda: "ascii")
    calls = {"run_eda": lambda: run_eda(data, tmp_path / "eda"),
             "run_clean": lambda: run_clean(data, tmp_path / "clean"),
             "run_preprocess": lambda: run_preprocess(data, tmp_path / "processed"),
             "run_split": lambda: run_split(data, tmp_path / "splits.csv"),
             "run_check": lambda: run_check(tmp_path / "splits.csv"),
             "run_train": lambda: run_train(TrainConfig(src=str(data), out=str(tmp_path / "runs"))),
             "run_tune": lambda: run_tune(TuneConfig(study="s", out=str(tmp_path / "tune"),
                                                     train=TrainConfig(src=str(data)))),
             "build_ensemble": lambda: build_ensemble([tmp_path / "runs" / "a", tmp_path / "runs" / "b"]),
             "run_predict": lambda: run_predict(tmp_path / "runs" / "a", data),
             "run_runs": lambda: run_runs("table", [tmp_path]),
             "export_onnx": lambda: export_onnx(tmp_path / "runs" / "a")}
    said = {}
    for name, call in calls.items():
        try:
            call()
        except (UserError, TypeError, OSError) as e:
            said[name] = str(e)
    wrong = {n: said.get(n) for n in calls if not re.match(r"Python reads file names as ascii here, not UTF-8 .*"
                                                          r"PYTHONUTF8=1", said.get(n, ""))}
    assert not wrong, wrong
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
