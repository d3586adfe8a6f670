"""No import circle inside imgcls: every `import` / `from ... import` is walked, function-level ones included
(a lazy import still ties the two modules together and still fails once someone hoists it)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

import imgcls

PKG = Path(imgcls.__file__).resolve().parent


def _modname(path: Path, pkg: Path) -> str:
    parts = list(path.relative_to(pkg.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(pkg: Path = PKG) -> dict[str, set[str]]:
    """module -> the imgcls modules it imports anywhere in its body (`from a.b import c` counts a.b.c when c is a
    module, else a.b; `from a import b` counts the package a too, as Python runs a/__init__ first)."""
    mods = {_modname(p, pkg): p for p in pkg.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in mods:
                    name = name.rpartition(".")[0]
                if name and name != mod:
                    edges[mod].add(name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_import_cycle_in_imgcls():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_walk_finds_function_level_and_relative_cycles(tmp_path):
    """The checker itself can fail: a lazy import inside a function and a relative import each close a circle."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import pkg.b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from . import d\n")
    (pkg / "sub" / "d.py").write_text("from .c import y\n")
    (pkg / "e.py").write_text("from pkg import a\n")
    found = cycles(import_graph(pkg))
    assert sorted(found) == [["pkg.a", "pkg.b"], ["pkg.sub.c", "pkg.sub.d"]]
    assert "pkg.sub" in import_graph(pkg)["pkg.sub.c"]   # `from . import d` runs pkg/sub/__init__ first



def _run_files(run, lr: str, metrics: str) -> None:
    """A run folder as `imgcls runs` reads it: config.yaml (lr), metrics.csv and two validation predictions."""
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"model: resnet10t\nimg_size: 32\nepochs: 1\nlr: {lr}\n")
    (run / "metrics.csv").write_text(metrics)
    (run / "val_predictions.csv").write_text("path,root,label,pred,p_x,p_y\n1.png,r,x,x,0.9,0.1\n2.png,r,y,x,0.6,0.4\n")


def test_runs_list_and_diff_import_torch_only_to_read_a_last_pt(tmp_path):
    """`imgcls runs` reads config.yaml, metrics.csv and val_predictions.csv: it imported torch (seconds of start-up)
    for every run, where only a last.pt (its finished flag, a torch file) needs it."""
    import torch
    for name in ("a", "b", "c"):
        run = tmp_path / ("with_last_pt" if name == "c" else "plain") / "runs" / name
        _run_files(run, f"0.{ord(name) - 96}", "epoch,val_macro_f1\n1,0.5\n")
    torch.save({"state_dict": {}, "meta": {}, "train_state": {"finished": True}}, run / "last.pt")
    plain = tmp_path / "plain"
    calls = [["runs", str(plain), "--quiet"], ["runs", "diff", str(plain / "runs" / "a"), str(plain / "runs" / "b")],
             ["runs", str(tmp_path / "with_last_pt"), "--quiet"]]
    (listed, _, l_out, l_torch), (diffed, _, d_out, d_torch), (last, _, t_out, t_torch) = _invoke_without([], calls)
    assert (listed, diffed, last) == (0, 0, 0), (l_out, d_out, t_out)
    assert "runs/a" in l_out and "runs/b" in l_out and "lr" in d_out and "runs/c" in t_out
    assert not l_torch and not d_torch
    assert t_torch              # a last.pt is read with torch: the check can tell the two apart


def test_runs_list_and_diff_import_no_sklearn_where_train_recorded_the_scores(tmp_path):
    """`imgcls runs` re-scored every run from its val_predictions.csv with sklearn (~1.3 s of its start-up) where
    train had recorded those scores (metrics.csv's best epoch, per_class.csv; a k-fold set's oof_score.json): a run
    that records them is read without it; one that does not (an older run) still imports it to be scored."""
    for name in ("a", "b", "old"):
        run = tmp_path / ("old" if name == "old" else "recorded") / "runs" / name
        _run_files(run, f"0.{ord(name[0]) - 96}", "epoch,val_acc,val_macro_f1\n1,0.5,0.3333333333333333\n")
        if name != "old":
            (run / "per_class.csv").write_text("best_epoch,class,precision,recall,f1,support,predicted\n"
                                               "1,x,0.5,1.0,0.6666666666666666,1,2\n1,y,0.0,0.0,0.0,1,0\n")
    recorded = tmp_path / "recorded"
    calls = [["runs", str(recorded), "--quiet"],
             ["runs", "diff", str(recorded / "runs" / "a"), str(recorded / "runs" / "b")],
             ["runs", str(tmp_path / "old"), "--quiet"]]
    (listed, _, l_out, _), (diffed, _, d_out, _), (old, o_exc, _, _) = _invoke_without(["sklearn"], calls)
    assert (listed, diffed) == (0, 0), (l_out, d_out)
    assert re.search(r"runs/a\W.*\W0\.3333\W+0\.5000\W+val \(2\)", l_out) and "runs/b" in l_out, l_out
    # the per-class table of the recorded per_class.csv (x's F1 0.6667 in both: every class unchanged)
    assert "every class unchanged (2 classes)" in " ".join(d_out.split()), d_out
    assert old == 1 and "sklearn" in o_exc   # an older run is re-scored: the check can tell the two apart


def test_runs_lists_an_ensemble_without_sklearn_where_it_recorded_its_scores(tmp_path):
    """An ensemble recorded only its macro-F1 and row count, so `imgcls runs` of any folder holding one re-scored
    it with sklearn; one that records its accuracy (spec.yaml) and per_class.csv is listed without it."""
    ens = tmp_path / "ensembles" / "e"
    ens.mkdir(parents=True)
    member = lambda n: {"name": n, "run": f"../../runs/{n}", "weight": 0.5, "checkpoints": [f"../../runs/{n}/best.pt"]}
    scores = {"common_val_images": 2, "ensemble_macro_f1": 0.3333333333333333, "ensemble_accuracy": 0.5}
    (ens / "spec.yaml").write_text(yaml.safe_dump({"kind": "imgcls-ensemble", "name": "e", "method": "soft",
                                                   "classes": ["x", "y"], "members": [member("a"), member("b")],
                                                   "scores": scores}))
    (ens / "oof_predictions.csv").write_text("key,label,pred,p_x,p_y\nr/1.png,x,x,0.9,0.1\nr/2.png,y,x,0.6,0.4\n")
    (ens / "per_class.csv").write_text("class,precision,recall,f1,support,predicted\n"
                                       "x,0.5,1.0,0.6666666666666666,1,2\ny,0.0,0.0,0.0,1,0\n")
    (code, exc, out, _), = _invoke_without(["sklearn"], [["runs", str(tmp_path), "--quiet"]])
    assert code == 0, (out, exc)
    assert re.search(r"ensembles/e\W.*\W0\.3333\W+0\.5000\W+common val \(2\)", out), out


REFUSAL_CASES = {}


def _refusal_case(make):
    """Registers make(folder) -> the `imgcls` calls of one refusal test, which makes its files in folder."""
    REFUSAL_CASES[make.__name__] = make
    return make


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """case name -> (its folder, _invoke_without's answer for each of its calls). Every case's calls run in one
    fresh process, in an empty folder, with torch, timm, optuna, wandb and mlflow unimportable (the refusals need
    none of them; wandb and mlflow: not installed): one interpreter and imgcls.cli start-up (~1 s) for them all, not
    one per test."""
    root = tmp_path_factory.mktemp("refusals")
    (root / "empty").mkdir()
    spans, calls = {}, []
    for name, make in REFUSAL_CASES.items():
        (root / name).mkdir()
        made = make(root / name)
        spans[name] = (root / name, len(calls), len(calls) + len(made))
        calls += made
    said = _invoke_without(["torch", "timm", "optuna", "wandb", "mlflow"], calls, cwd=root / "empty")
    return {name: (folder, said[a:b]) for name, (folder, a, b) in spans.items()}


@_refusal_case
def _wrong_run(tmp_path):
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(b"")             # found by its name; never read before the refusal
    kfold = tmp_path / "runs" / "k"
    (kfold / "fold_0").mkdir(parents=True)
    (kfold / "fold_0" / "best.pt").write_bytes(b"")
    (kfold / "config.yaml").write_text("folds: all\n")        # a k-fold set's (run_names.fold_dirs)
    test = tmp_path / "test"
    test.mkdir()
    (test / "1.png").write_bytes(b"")
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "clean_summary.json").write_text("{}")
    calls = [["export", str(run), "--onnx", "--out", str(clean)],
             ["ensemble", str(run), str(tmp_path / "runs" / "typo"), "--out", str(tmp_path / "ens")],
             ["export", str(tmp_path / "runs" / "typo"), "--onnx"],
             ["predict", str(test), "--data", str(test), "--out", str(tmp_path / "pred")],
             ["predict", str(kfold), "--data", str(test), "--out", str(tmp_path / "pred")]]
    return calls


def test_a_wrong_run_is_refused_before_torch_is_imported(refused):
    """A run that is not there (a typo in `ensemble A B`, `export`), a dataset folder given as the run (`predict
    data/test`), an unfinished k-fold set or export's --out holding another step's output is one line found from the
    folders' files; it paid torch's import first (~1.6 s CPU; export: torch's and onnx's, ~2 s) because the lookup
    lived beside torch.load in train.checkpoint and export imported both before checking its run and --out."""
    _, said = refused["_wrong_run"]
    assert [code for code, *_ in said] == [2] * 5, said         # not 1 (ModuleNotFoundError: import of torch)
    assert "holds the output of imgcls clean" in " ".join(said[0][2].split())
    assert "typo does not exist" in said[1][2] and "typo does not exist" in said[2][2]
    assert "is a dataset folder" in said[3][2] and "unfinished k-fold run" in said[4][2]


HEAVY = ("torch", "pandas", "numpy", "sklearn", "matplotlib", "PIL")


def test_no_help_imports_torch_or_pandas():
    """`imgcls --help`, every `imgcls CMD --help` and every subcommand's (models list, models fetch) print without
    importing torch, pandas, numpy, sklearn, matplotlib or PIL (start-up of every command a shell script chains:
    what a help text and the option parsing need is in the config dataclasses, whose modules import none of them).
    `runs diff` is an argument of `runs`, whose help it prints."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json, sys\nimport typer.main\nfrom typer.testing import CliRunner\nfrom imgcls.cli import app\n"
            f"HEAVY = {HEAVY!r}\n"
            "def paths(cmd, prefix):\n"
            "    yield prefix\n"
            "    for name, sub in getattr(cmd, 'commands', {}).items():\n"
            "        yield from paths(sub, prefix + [name])\n"
            "said = [['(import)', 0, [m for m in HEAVY if m in sys.modules]]]\n"
            "for p in paths(typer.main.get_command(app), []):\n"
            "    r = CliRunner().invoke(app, [*p, '--help'])\n"
            "    said.append([' '.join(p), r.exit_code, [m for m in HEAVY if m in sys.modules]])\n"
            "print(json.dumps(said))")
    env = {**os.environ, "PYTHONPATH": str(PKG.parent)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    said = json.loads(done.stdout.splitlines()[-1])
    names = [p for p, _, _ in said]
    assert {"", "eda", "clean", "split", "train", "predict", "runs", "models list"} <= set(names), names
    assert all(code == 0 for _, code, _ in said), said
    assert [(p, heavy) for p, _, heavy in said if heavy][:1] == [], said


def test_imgcls_help_as_a_script_runs_it_imports_no_heavy_library():
    """`python -m imgcls split --help` (what the `imgcls` script runs), seen by -X importtime: not one of pandas,
    numpy, torch, sklearn, matplotlib, PIL is imported."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(PKG.parent), "COLUMNS": "300"}
    for args in (["--help"], ["split", "--help"], ["runs", "--help"]):
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "imgcls", *args], capture_output=True,
                              text=True, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Usage" in done.stdout
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
        assert "imgcls.cli" in imported                 # the check reads the import log it means to
        assert sorted(imported & set(HEAVY)) == [], args


def _invoke_without(modules, calls, cwd=None):
    """[exit code, repr(exception), output, whether torch was imported by then] of each `imgcls` call of `calls`,
    run in one fresh process where every module of `modules` is made unimportable (sys.modules[m] = None: `import
    m` raises, so a path that imports it exits 1 with a ModuleNotFoundError instead of its one line)."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json, sys\n"
            f"for m in {list(modules)!r}:\n"
            "    sys.modules[m] = None\n"
            "from typer.testing import CliRunner\nfrom imgcls.cli import app\nsaid = []\n"
            f"for args in {calls!r}:\n"
            "    r = CliRunner().invoke(app, args)\n"
            "    said.append([r.exit_code, repr(r.exception), r.output, sys.modules.get('torch') is not None])\n"
            "print(json.dumps(said))")
    env = {**os.environ, "PYTHONPATH": str(PKG.parent), "COLUMNS": "300"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                          cwd=cwd)
    return json.loads(done.stdout.splitlines()[-1])


@_refusal_case
def _tune_missing_data(tmp_path):
    return [["tune", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "tune"), "--study", "s"]]


def test_tune_refuses_missing_data_before_optuna_is_imported(refused):
    """`imgcls tune missing.csv` imported optuna (~0.1 s) before its up-front checks; a new study needs it only
    once they pass."""
    _, said = refused["_tune_missing_data"]
    assert said[0][0] == 2, said
    assert "missing.csv does not exist" in said[0][2]


@_refusal_case
def _predict_missing_data(tmp_path):
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(b"")             # found by its name; never read before the refusal
    (run / "config.yaml").write_text("model: resnet10t\nimg_size: 32\n")
    return [["predict", str(run), "--data", str(tmp_path / "test"), "--out", str(tmp_path / "pred")]]


def test_predict_refuses_missing_data_before_torch_is_imported(refused):
    """`imgcls predict RUN --data MISSING` read the run's checkpoint (its classes: torch, ~1.6 s CPU) before it
    looked for the test data."""
    _, said = refused["_predict_missing_data"]
    assert said[0][0] == 2, said
    assert "test data" in said[0][2] and "does not exist" in said[0][2]


@_refusal_case
def _train_missing_data_and_taken_name(tmp_path):
    data = tmp_path / "raw"
    (data / "a").mkdir(parents=True)
    (data / "a" / "1.png").write_bytes(b"")
    out = tmp_path / "runs"
    (out / "taken").mkdir(parents=True)
    (out / "taken" / "last.pt").write_bytes(b"")
    (out / "empty").mkdir()
    missing = str(tmp_path / "missing.csv")
    calls = [["train", missing, "--out", str(out)],
             ["train", missing, "--out", str(out), "--optimizer", "sgd", "--momentum", "0.8"],
             ["train", str(data), "--out", str(out), "--name", "taken", "--optimizer", "sgd"],
             ["train", str(data), "--out", str(out), "--name", "empty"]]
    return calls


def test_train_refuses_missing_data_and_a_taken_name_before_timm_is_imported(refused):
    """`imgcls train missing.csv` or `--name` of a folder that is taken paid timm's and torch's import (4-5 s CPU)
    before its one line: the --optimizer name was checked against timm's registry first. The checks that need no
    import come first now, the registry's after them (a typed --optimizer / --momentum included)."""
    _, said = refused["_train_missing_data_and_taken_name"]
    assert [code for code, *_ in said] == [2] * 4, said        # not 1 (ModuleNotFoundError: import of torch / timm)
    assert "missing.csv does not exist" in said[0][2] and "missing.csv does not exist" in said[1][2]
    assert "already holds a run" in " ".join(said[2][2].split())
    assert "already exists" in said[3][2] and "--exist-ok" in said[3][2]


@_refusal_case
def _train_default_input_out_and_weights(tmp_path):
    data = tmp_path / "raw"
    (data / "a").mkdir(parents=True)
    (data / "a" / "1.png").write_bytes(b"")
    (tmp_path / "file").write_text("x")
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "clean_summary.json").write_text("{}")
    out = str(tmp_path / "runs")
    calls = [["train", "--out", out],
             ["train", str(data), "--out", str(tmp_path / "file")],
             ["train", str(data), "--out", str(clean)],
             ["train", str(data), "--out", out, "--weights", str(tmp_path / "missing.pt")]]
    return calls                                # run in an empty folder: no data folder here


def test_train_refuses_a_missing_default_input_a_bad_out_and_a_missing_weights_file_before_torch(refused):
    """`imgcls train` with no data folder here (the pipeline's default input), an --out that is a file or holds
    another step's output, or a --weights file that is not there paid torch's and timm's import (4-5 s CPU; under
    torchrun per process) first: they were checked after the model name. They need neither, and come first now."""
    tmp_path, said = refused["_train_default_input_out_and_weights"]
    assert [code for code, *_ in said] == [2] * 4, said        # not 1 (ModuleNotFoundError: import of torch / timm)
    assert "no input given to train" in said[0][2]
    assert "is an existing file, not a folder" in said[1][2]
    assert "holds the output of imgcls clean" in " ".join(said[2][2].split())
    assert "missing.pt does not exist; check --weights" in " ".join(said[3][2].split())
    assert not (tmp_path / "runs").exists()                    # refused before anything is written


@_refusal_case
def _train_init_from_not_one_checkpoint(tmp_path):
    data = tmp_path / "raw"
    (data / "a").mkdir(parents=True)
    (data / "a" / "1.png").write_bytes(b"")
    kfold = tmp_path / "runs" / "k"
    for k in (0, 1):
        (kfold / f"fold_{k}").mkdir(parents=True)
        (kfold / f"fold_{k}" / "best.pt").write_bytes(b"")     # found by its name; never read before the refusal
    (kfold / "config.yaml").write_text("folds: all\n")        # a k-fold set's (run_names.fold_dirs)
    (kfold / "oof_score.json").write_text('{"folds": [0, 1]}')             # a finished set
    out = str(tmp_path / "out")
    calls = [["train", str(data), "--out", out, "--init-from", str(tmp_path / "runs" / "typo")],
             ["train", str(data), "--out", out, "--init-from", str(kfold)]]
    return calls


def test_train_refuses_an_init_from_run_that_is_not_one_checkpoint_before_torch(refused):
    """`imgcls train --init-from RUN` with RUN not there (a typo) or a k-fold set (several best.pt) read no
    checkpoint, yet imported torch (TrainConfig.resolve's look at RUN's model imported the checkpoint module before
    finding the file) and timm before its line. Both are seen from the folder's files (rundir.init_path) up front."""
    _, said = refused["_train_init_from_not_one_checkpoint"]
    assert [code for code, *_ in said] == [2, 2], said          # not 1 (ModuleNotFoundError: import of torch / timm)
    assert "typo does not exist" in said[0][2]
    assert "holds 2 folds; give one of them" in " ".join(said[1][2].split())


@_refusal_case
def _tracker_not_installed(tmp_path):
    data = tmp_path / "raw"
    (data / "a").mkdir(parents=True)
    (data / "a" / "1.png").write_bytes(b"")
    calls = [["train", str(data), "--out", str(tmp_path / "runs"), "--tracker", "wandb"],
             ["train", str(data), "--out", str(tmp_path / "runs"), "--tracker", "none", "--tracker", "mlflow"],
             ["tune", str(data), "--out", str(tmp_path / "tune"), "--study", "s", "--tracker", "wandb"]]
    return calls                                # wandb and mlflow: None in sys.modules, not installed


def test_train_and_tune_refuse_a_tracker_not_installed_before_torch_and_timm(refused):
    """`imgcls train --tracker wandb` (or mlflow, tensorboard) without the package was refused by make_trackers,
    after torch's and timm's import (4-5 s CPU; under torchrun per process); `imgcls tune --tracker` after the
    search space's check (timm). importlib.util.find_spec sees it with nothing imported: the same line, up front."""
    tmp_path, said = refused["_tracker_not_installed"]
    assert [code for code, *_ in said] == [2] * 3, said        # not 1 (ModuleNotFoundError: import of torch / timm)
    for (_, _, output, _), name in zip(said, ("wandb", "mlflow", "wandb")):
        assert f"--tracker {name} needs the {name} package: pip install 'imgcls[{name}]'" in output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "tune").exists()


LAZY_PACKAGES = ("imgcls.clean", "imgcls.split", "imgcls.ensemble", "imgcls.train", "imgcls.preprocess")


def test_lazy_exports_are_their_submodules_objects_whatever_was_imported_first():
    """Each name a package re-exports lazily (imgcls.lazy) is the object its submodule defines, also where that
    submodule has the name's own name and was imported first (imgcls.split.run imports imgcls.split.assign, which
    Python binds to imgcls.split.assign: `from imgcls.split import assign` gave the module, not the function).
    A fresh interpreter: every submodule imported before any name is asked for."""
    import json
    import os
    import subprocess
    import sys

    code = ("import importlib, json, pkgutil\n"
            f"wrong = []\nfor pkg in {LAZY_PACKAGES!r}:\n"
            "    p = importlib.import_module(pkg)\n"
            "    for m in pkgutil.iter_modules(p.__path__):\n"
            "        importlib.import_module(pkg + '.' + m.name)\n"
            "    for name in p.__all__:\n"
            "        got = getattr(p, name)\n"
            "        if type(got).__name__ == 'module':\n"
            "            wrong.append(pkg + '.' + name)\n"
            "print(json.dumps(wrong))")
    env = {**os.environ, "PYTHONPATH": str(PKG.parent), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(done.stdout.splitlines()[-1]) == []
    from imgcls.split import assign
    from imgcls.split.assign import assign as defined
    assert assign is defined


def test_a_run_s_figure_names_have_one_owner_that_rundir_reads_without_pandas():
    """rundir.RUN_FILES (what a run writes over) spelled the figure names train.report.figure_names owns (curves.png
    and the confusion PNGs, from imgcls.metrics): two owners, which a renamed figure would part. Both read
    imgcls.figure_files now, which imports nothing: rundir still imports neither pandas nor matplotlib."""
    import subprocess
    import sys

    from imgcls.figure_files import RUN_FIGURES
    from imgcls.train.report import figure_names
    from imgcls.train.rundir import RUN_FILES
    assert figure_names() is RUN_FIGURES and set(RUN_FIGURES) <= set(RUN_FILES)
    heavy = subprocess.run([sys.executable, "-c", "import sys, imgcls.train.rundir; print(sorted(m for m in ("
                            "'numpy', 'pandas', 'matplotlib') if m in sys.modules))"], capture_output=True, text=True,
                           cwd=PKG.parent)
    assert heavy.returncode == 0 and heavy.stdout.strip() == "[]", heavy
