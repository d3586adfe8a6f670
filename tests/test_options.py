"""Options have one source of truth (imgcls.options): each command's flags are its config dataclass's fields, with
the dataclass's defaults, choices, ranges, help and panels; every numeric option is range-checked in one line with
exit 2 before any work, for the CLI and Python callers alike."""
from __future__ import annotations

import dataclasses
import inspect
import math
import re
from pathlib import Path

import numpy as np
import pytest
import typer.main
from typer.testing import CliRunner

from imgcls import options as opts
from imgcls.cli import app
from imgcls.errors import UserError
from imgcls.train.config import TrainConfig

runner = CliRunner()
# the repository's sample data: train resolves its data before the checks these tests reach (the steps' default
# input, data/raw and the like, is not there in the tests' working folder)
SAMPLE = str(Path(__file__).resolve().parents[1] / "data" / "sample")


def _commands():
    """name -> (click command, {key: config class}) for every registered command."""
    group = typer.main.get_command(app)
    out = {}
    for info in app.registered_commands:
        name = info.name or info.callback.__name__
        out[name] = (group.commands[name], getattr(info.callback, "imgcls_options", {}))   # key -> (cls, only)
    return out


def test_cli_defaults_equal_the_dataclass_defaults_for_every_command():
    """The class of bug where `--help` (or the flag) says 0.95 and the config says 0.98: any flag named like a
    field of the command's config class has that field's default, choices and range."""
    checked = 0
    for name, (cmd, classes) in _commands().items():
        params = {p.name: p for p in cmd.params}
        for cls, owned in classes.values():     # owned: the fields whose flags this class's declarations built
            table = opts.specs(cls)
            for field in owned:
                f, spec = table[field]
                param = params[field]
                assert param.default == opts.cli_default(f, spec), (name, field, param.default)
                if spec.choices:
                    assert param.metavar == "[" + "|".join(spec.choices) + "]", (name, field)
                checked += 1
        # a parameter the command declares itself may not shadow a field with another default (an own `--dup-threshold`
        # saying 0.95 beside the config's 0.98 is the bug this test exists for)
        owned_names = {n for _, owned in classes.values() for n in owned}
        for pname, param in params.items():
            for cls, _ in classes.values():
                if pname not in owned_names and pname in opts.cli_fields(cls):
                    f, spec = opts.specs(cls)[pname]
                    assert param.default == opts.cli_default(f, spec), (name, pname, param.default)
    assert checked >= 150
    built = {name for name, (_, classes) in _commands().items() if classes}
    assert built >= {"eda", "clean", "preprocess", "split", "train", "ensemble", "predict", "export"}, built
    cls, owned = _commands()["train"][1]["cfg"]
    assert cls is TrainConfig and set(owned) == set(opts.cli_fields(TrainConfig))


def test_the_library_functions_the_commands_call_default_as_their_flags_do():
    """A Python caller with defaults gets the CLI's: each step function's keyword that is a config field defaults to
    that field's default (run_eda(workers=1) scanned in one process where `imgcls eda` used --workers' min(4, cores))."""
    from imgcls.clean import run_clean
    from imgcls.eda import EdaConfig, run_eda
    from imgcls.ensemble import EnsembleConfig, build_ensemble
    from imgcls.export import ExportConfig, export_onnx
    from imgcls.io import ImageLimits
    from imgcls.parallel import ParallelOptions
    from imgcls.predict import PredictConfig, run_predict
    from imgcls.preprocess import run_preprocess
    from imgcls.split import run_check, run_split
    checked = 0
    for fn, classes in [(run_eda, (EdaConfig, ParallelOptions, ImageLimits)), (build_ensemble, (EnsembleConfig,)),
                        (run_predict, (PredictConfig,)), (export_onnx, (ExportConfig,)), (run_clean, (ParallelOptions,)),
                        (run_preprocess, (ParallelOptions,)), (run_split, (ParallelOptions,)),
                        (run_check, (ParallelOptions,))]:
        params = inspect.signature(fn).parameters
        for cls in classes:
            for name, (f, _) in opts.specs(cls).items():
                assert name in params, (fn.__name__, name)
                assert params[name].default == opts.default_of(f), (fn.__name__, name, params[name].default)
                checked += 1
    assert checked >= 25


def test_help_shows_choices_defaults_ranges_and_panels():
    r = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    for text in ("[ce|focal|label-smoothing|f1]", "[default: tf_efficientnet_lite0]", "[> 0]", "[in [0, 1)]",
                 "[between 0 and 1]", "Model", "Data", "Optimisation", "Imbalance", "Runtime", "Output"):
        assert text in r.output, text
    # examples: one per line, copy-pastable (no ' | ' joining several commands)
    examples = [line.strip() for line in r.output.splitlines() if line.strip().startswith(("imgcls ", "torchrun "))]
    assert len(examples) >= 4 and not any(" | " in e for e in examples)


def test_clean_help_says_the_near_duplicate_threshold_the_code_uses():
    """`imgcls clean --help` said --dup-threshold defaults to 0.95 while the code and README used 0.98."""
    from imgcls.clean import CleanConfig
    from imgcls.links import DEFAULT_DUP_THRESHOLDS
    r = runner.invoke(app, ["clean", "--help"], env={"COLUMNS": "250"})
    assert r.exit_code == 0
    line = next(ln for ln in r.output.splitlines() if "--dup-threshold" in ln)
    assert "verified 0.98, embedding 0.9" in r.output.replace("\n", " ") and "0.95" not in line
    assert CleanConfig().near_duplicates().cut == DEFAULT_DUP_THRESHOLDS["verified"] == 0.98


@pytest.mark.parametrize("cmd", ["eda", "clean", "preprocess", "split", "predict"])
def test_label_col_help_says_which_column_is_read_without_it(cmd):
    """--label-col showed no default, though without it a CSV's labels are read from its label, class or target
    column (the first present) and a CSV whose classes sit in another column is read unlabeled."""
    from imgcls.layouts import LABEL_COLUMN_GUESSES
    r = runner.invoke(app, [cmd, "--help"], env={"COLUMNS": "250"})
    line = next(ln for ln in r.output.splitlines() if "--label-col" in ln)
    assert LABEL_COLUMN_GUESSES == ("label", "class", "target")
    assert "[default: (a column named label, class or target)]" in line, line


@pytest.mark.parametrize("cmd", ["train", "tune"])
def test_folds_help_says_what_trains_without_it(cmd):
    """--folds showed no default, though without it one model trains (validated on the split column's val rows,
    else on a random --val-split), not every fold of a k-fold table."""
    r = runner.invoke(app, [cmd, "--help"], env={"COLUMNS": "250"})
    line = next(ln for ln in r.output.splitlines() if "--folds " in ln)
    assert "[default: (one model on the split column's val rows, else on --val-split)]" in line, line


def test_undersample_help_says_it_is_off_without_it():
    """clean --undersample showed no default, beside the other stages' (--dedup, --ood: on); without it no row is
    undersampled."""
    r = runner.invoke(app, ["clean", "--help"], env={"COLUMNS": "250"})
    line = next(ln for ln in r.output.splitlines() if "--undersample" in ln)
    assert "[default: (off: every row kept)]" in line, line


@pytest.mark.parametrize("cmd, store", [("train", "sqlite:///<--out>/mlflow.db"),
                                        ("tune", "sqlite:///<--out>/<--study>/mlflow.db")])
def test_tracking_uri_help_names_each_command_s_own_store(cmd, store):
    """tune --tracking-uri said its default store is sqlite:///<--out>/mlflow.db, train's words: tune's --out is
    the folder of studies, and its trials and the study's run log to OUT/STUDY/mlflow.db. Then train's --help
    carried tune's sentence (and a --study train has not): each command says its own (Spec.per_command)."""
    r = runner.invoke(app, [cmd, "--help"], env={"COLUMNS": "300"})
    line = next(ln for ln in r.output.splitlines() if "--tracking-uri" in ln)
    assert f"[default: ($MLFLOW_TRACKING_URI, else {store})]" in line, line


def _every_command(group=None, path=()):
    """(name words, click command) for every command, a group's subcommands included (imgcls models list)."""
    group = typer.main.get_command(app) if group is None else group
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _every_command(cmd, (*path, name))
        else:
            yield " ".join((*path, name)), cmd


OTHER_TOOLS = ("timm's",)       # a flag named after another tool's name is that tool's (timm's --eval-metric)


def test_no_help_text_names_a_flag_its_command_lacks():
    """train and tune share TrainConfig's declarations, and tune --exist-ok said "Train into an existing --name
    folder", though tune has no --name (nor --resume), while train's --tracking-uri named tune's --study. A flag
    named in a command's help or default texts is that command's own, or follows the name of the imgcls command
    (which has it) or the tool it is another's of: 'preprocess --oversample', "timm's --eval-metric"."""
    commands = dict(_every_command())
    flags = {name: {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} for name, cmd in commands.items()}
    wrong = []
    for name, cmd in commands.items():
        for p in cmd.params:
            texts = [getattr(p, "help", None) or "", *[d for d in [getattr(p, "show_default", None)]
                                                       if isinstance(d, str)]]
            for text in texts:
                for m in re.finditer(r"(?<![\w-])--[a-z][a-z0-9-]*", text):
                    before = text[:m.start()].split()
                    other = before[-1].lstrip("(`'\"") if before else ""
                    if m.group() in flags[name] or other in OTHER_TOOLS or m.group() in flags.get(other, ()):
                        continue
                    wrong.append(f"imgcls {name} {p.opts[0] if p.opts else p.name}: {m.group()}")
    assert not wrong, wrong


def test_no_help_text_speaks_of_the_user_s_machine_as_one_measured():
    """--channels-last said "on this AVX-512 CPU a tf_efficientnet_lite0 training step took 0.59x the time": fixed
    text, the same on every machine, that read as a fact of the user's machine (of the benchmark's, in truth), and
    "the default layout's" meant NCHW, no longer the default. A help text names the machine a number was measured
    on; only a line a run says after looking (embed's "this CPU has AMX") speaks of this one."""
    said = [f"imgcls {name} {p.opts[0] if p.opts else p.name}: {m.group()}"
            for name, cmd in _every_command() for p in cmd.params
            for m in re.finditer(r"(?i)\bthis\s+(\S+\s+)?(cpu|gpu|machine|host)\b", getattr(p, "help", None) or "")]
    assert not said, said
    r = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "300"})
    line = " ".join(r.output.split("--channels-last", 1)[1].split("[default")[0].replace("│", " ").split())
    assert "--no-channels-last: PyTorch's default NCHW" in line and "AVX-512 Xeon of docs/BENCHMARKS.md" in line, line


def test_per_command_help_is_that_command_s_alone():
    spec = opts.Spec("shared words", none="shared", per_command=(("tune", (("help", "tune's words"),)),))
    assert opts.for_command(spec, "tune").help == "tune's words"
    assert opts.for_command(spec, "tune").none == "shared"
    assert opts.for_command(spec, "train") is spec and opts.for_command(spec, None) is spec
    with pytest.raises(ValueError, match="per_command"):
        opts.option(0, help="x", per_command={"tune": {"choices": (1, 2)}})


def test_ensemble_weights_help_says_what_weights_are_used_without_it():
    """ensemble --weights showed no default, though without it --method soft averages the members equally and
    --method weighted / hard fit the weights (auto)."""
    r = runner.invoke(app, ["ensemble", "--help"], env={"COLUMNS": "250"})
    line = next(ln for ln in r.output.splitlines() if ln.lstrip("│ ").startswith("--weights "))
    assert "[default: (equal for soft, auto for weighted / hard)]" in line, line


def test_range_text_and_check_value():
    assert opts.range_text(opts.Spec("", lo=0, lo_open=True)) == "> 0"
    assert opts.range_text(opts.Spec("", lo=1)) == ">= 1"
    assert opts.range_text(opts.Spec("", lo=0, hi=1)) == "between 0 and 1"
    assert opts.range_text(opts.Spec("", lo=0, hi=1, hi_open=True)) == "in [0, 1)"
    spec = opts.Spec("", lo=0, hi=1, lo_open=True, hi_open=True)
    for bad in (0, 1, -0.2, 1.5, math.nan):
        with pytest.raises(UserError, match=r"--val must be in \(0, 1\)"):
            opts.check_value("val", bad, spec)
    opts.check_value("val", 0.5, spec)
    opts.check_value("val", None, spec)           # not set
    with pytest.raises(UserError, match="--val must be a number in"):
        opts.check_value("val", "abc", spec)      # a config.yaml typo
    with pytest.raises(UserError, match="unknown --loss 'dice'; use one of: ce, focal"):
        opts.check_value("loss", "dice", opts.Spec("", choices=("ce", "focal")))


# issue 15: numeric options, one line naming the option and its range, exit 2, before any work --------------------

TRAIN_BAD = [(["--img-size", "-5"], "--img-size must be between 8 and 4096 (got -5)"),
             (["--img-size", "0"], "--img-size must be between 8 and 4096 (got 0)"),
             (["--lr", "-1"], "--lr must be >= 0 (got -1.0)"),
             (["--seed", "-1"], "--seed must be between 0 and 4294967295 (got -1)"),
             (["--workers", "-3"], "--workers must be >= 0 (got -3)"),
             (["--val-split", "1.5"], "--val-split must be in (0, 1) (got 1.5)"),
             (["--epochs", "0"], "--epochs must be >= 1 (got 0)"),
             (["--batch-size", "0"], "--batch-size must be >= 1 (got 0)")]


@pytest.mark.parametrize("flags,msg", TRAIN_BAD, ids=[" ".join(f) for f, _ in TRAIN_BAD])
def test_train_numeric_options_are_range_checked_before_any_work(flags, msg, image_folder, tmp_path, monkeypatch):
    import imgcls.manifest as mf
    import imgcls.train as train_mod
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    r = runner.invoke(app, ["train", str(image_folder), "--out", str(tmp_path / "runs"), *flags])
    assert r.exit_code == 2 and msg in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "runs").exists()
    # a Python caller gets the same line from the same declaration
    field = flags[0][2:].replace("-", "_")
    value = type(getattr(TrainConfig(), field) if getattr(TrainConfig(), field) is not None else 1)(float(flags[1]))
    cfg = TrainConfig(src=str(image_folder), out=str(tmp_path / "runs"), **{field: value})
    with pytest.raises(UserError, match=re.escape(msg.split(" (got")[0])):
        train_mod.run_train(cfg)
    assert not (tmp_path / "runs").exists()


def test_resolve_merges_config_file_resume_and_overrides_in_the_library(tmp_path):
    """`train --config FILE` / `--resume RUN` merging is TrainConfig.resolve: a Python caller gets what the CLI gets."""
    base = TrainConfig(model="resnet10t", epochs=3, img_size=32, lr=0.01)
    base.save(tmp_path / "config.yaml")
    cfg = TrainConfig.resolve({"epochs": 5}, config=tmp_path / "config.yaml")
    assert (cfg.model, cfg.epochs, cfg.img_size, cfg.lr) == ("resnet10t", 5, 32, 0.01)
    run = tmp_path / "run"
    run.mkdir()
    base.save(run / "config.yaml")
    assert TrainConfig.resolve({}, resume=run).epochs == 3
    assert TrainConfig.resolve({"model": "resnet18"}) == TrainConfig(model="resnet18")
    with pytest.raises(UserError, match="--resume .*nope does not exist"):
        TrainConfig.resolve({}, resume=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="--resume .* no config.yaml"):
        TrainConfig.resolve({}, resume=tmp_path / "empty")
    (tmp_path / "bad.yaml").write_text("lr: fast\n")
    with pytest.raises(UserError, match="--lr must be a number >= 0"):
        TrainConfig.resolve({}, config=tmp_path / "bad.yaml")


def test_train_resume_with_config_is_refused_in_one_line_before_any_work(tmp_path, monkeypatch):
    """`imgcls train --resume RUN --config FILE` read the run's config.yaml and ignored FILE without a word: one line
    naming both flags and what to do, exit 2, before the run is read (RUN need not exist); the library the same."""
    import imgcls.train as train_pkg
    monkeypatch.setattr(train_pkg, "run_train", lambda *a, **k: pytest.fail("run_train reached"))
    TrainConfig(epochs=3).save(tmp_path / "c.yaml")
    r = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--config", str(tmp_path / "c.yaml")])
    assert r.exit_code == 2, r.output
    line = " ".join(r.output.split())
    assert "--config" in line and "--resume" in line and "drop --config" in line and "Traceback" not in r.output
    with pytest.raises(UserError, match="--config .* with --resume .*drop --config"):
        TrainConfig.resolve({}, config=tmp_path / "c.yaml", resume=tmp_path / "run")


def test_flags_given_override_a_config_file_and_defaults_do_not(tmp_path, monkeypatch):
    """Only the flags typed on the command line replace the file's values (a flag left at its default does not)."""
    import imgcls.train.run as train_mod
    seen = []
    # run_train checks; the run is not trained (the run folder returned, as train's)
    monkeypatch.setattr(train_mod, "_run_train", lambda cfg, *a: seen.append(cfg) or Path(cfg.out) / "run")
    TrainConfig(model="resnet10t", epochs=3, lr=0.01, heads="multi", head_columns=["a", "b"]).save(
        tmp_path / "c.yaml")
    r = runner.invoke(app, ["train", SAMPLE, "--config", str(tmp_path / "c.yaml"), "--epochs", "7", "--head-weights", "1,2"])
    assert r.exit_code == 0, r.output
    assert (seen[0].model, seen[0].epochs, seen[0].lr, seen[0].head_columns, seen[0].head_weights) == \
        ("resnet10t", 7, 0.01, ["a", "b"], [1.0, 2.0])


def test_a_config_option_the_flags_leave_without_its_need_keeps_its_default(tmp_path, monkeypatch):
    """train --config best_config.yaml --loss ce over a label-smoothing config: its smoothing no longer acts, and the
    user typed no --smoothing to drop; it keeps its default (said in one line) instead of the run being refused.
    So does a file that holds such a pair itself (a study's best_config.yaml or a run's record from before the
    option was declared inert); a typed flag that would not act is refused."""
    import imgcls.train.run as train_mod
    seen = []
    # run_train checks; the run is not trained (the run folder returned, as train's)
    monkeypatch.setattr(train_mod, "_run_train", lambda cfg, *a: seen.append(cfg) or Path(cfg.out) / "run")
    TrainConfig(loss="label-smoothing", smoothing=0.05, lr=0.01).save(tmp_path / "c.yaml")
    r = runner.invoke(app, ["train", SAMPLE, "--config", str(tmp_path / "c.yaml"), "--loss", "ce"])
    assert r.exit_code == 0, r.output
    assert (seen[0].loss, seen[0].smoothing, seen[0].lr) == ("ce", 0.1, 0.01)
    assert "--smoothing 0.05 of " in r.output and "left at the default" in " ".join(r.output.split())
    r = runner.invoke(app, ["train", SAMPLE, "--config", str(tmp_path / "c.yaml"), "--loss", "ce", "--smoothing", "0.2"])
    assert r.exit_code == 2 and "--smoothing acts only with --loss label-smoothing" in r.output
    (tmp_path / "old.yaml").write_text("loss: ce\nsmoothing: 0.3\nmix_alpha: 0.4\n")
    r = runner.invoke(app, ["train", SAMPLE, "--config", str(tmp_path / "old.yaml")])
    assert r.exit_code == 0 and (seen[1].smoothing, seen[1].mix_alpha) == (0.1, 1.0), r.output
    assert "--mix-alpha 0.4, --smoothing 0.3 of " in " ".join(r.output.split()) and len(seen) == 2
    # a run recorded with such a pair resumes (its record is compared without the values that never acted)
    from imgcls.train.config import resume_config
    old = tmp_path / "old_run"
    TrainConfig(loss="ce", smoothing=0.3, name="old_run", out=str(tmp_path)).save(old / "config.yaml")
    cfg = resume_config(TrainConfig.resolve({}, resume=old), old)
    cfg.validate()
    assert (cfg.loss, cfg.smoothing) == ("ce", 0.1)
    # --resume with another tracker (one of the options a resumed run may change): the recorded --tracking-uri
    run = tmp_path / "run"
    TrainConfig(tracker=["mlflow"], tracking_uri="sqlite:///x.db", track_checkpoint=True).save(run / "config.yaml")
    cfg = resume_config(TrainConfig.resolve({"tracker": ["tensorboard"]}, resume=run), run)
    cfg.validate()
    assert (cfg.tracker, cfg.tracking_uri, cfg.track_checkpoint) == (["tensorboard"], None, False)


def test_a_reset_config_option_is_named_as_typed(tmp_path, monkeypatch):
    """A file's `pretrained: false` beside its `weights:` does not act; the line that says it keeps its default names
    it as a user types it (--no-pretrained), not as a Python value (--pretrained False)."""
    import imgcls.train.run as train_mod
    seen = []
    # run_train checks; the run is not trained (the run folder returned, as train's)
    monkeypatch.setattr(train_mod, "_run_train", lambda cfg, *a: seen.append(cfg) or Path(cfg.out) / "run")
    # found before the run, with a torch.save file's first bytes (its contents: _run_train's, patched here)
    (tmp_path / "w.pt").write_bytes(b"PK\x03\x04")
    (tmp_path / "old.yaml").write_text(f"pretrained: false\nweights: {tmp_path / 'w.pt'}\n")
    r = runner.invoke(app, ["train", SAMPLE, "--config", str(tmp_path / "old.yaml")])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and (seen[0].pretrained, seen[0].weights) == (True, str(tmp_path / "w.pt")), r.output
    assert "--no-pretrained of " in out and "--pretrained False" not in out, r.output


def test_a_reset_list_option_is_named_in_its_command_line_form():
    """A file's `head_weights: [1, 1, 2]` under --heads single does not act; the line that says it keeps its default
    named it once per item (--head-weights 1 --head-weights 1 --head-weights 2, which the command line reads as the
    last alone), not as typed (--head-weights 1,1,2: the field's to_cli, as split's --check refusals spell their
    flags: options.typed_text)."""
    from imgcls.split import SplitConfig
    assert opts.reset_inert(TrainConfig(head_weights=[1, 1, 2])) == ["--head-weights 1,1,2"]
    assert opts.typed_text(SplitConfig(seed=0, age_bands=[20, 40], drop_ages=[57, 58]), ["seed", "age_bands",
                                                                                        "drop_ages"]) \
        == "--seed 0 --age-bands 20,40 --drop-ages 57,58"


def test_every_declared_field_has_help_and_a_panel():
    for name, (cmd, classes) in _commands().items():
        for cls, _ in classes.values():
            for field, (f, spec) in opts.specs(cls).items():
                assert spec.help.strip(), (cls.__name__, field)
                assert spec.panel or not spec.cli, (cls.__name__, field)
            # every field but a private one (TrainConfig._config: read_from's, no option) is declared
            assert {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")} == set(opts.specs(cls)), \
                cls.__name__


@pytest.mark.parametrize("cmd,flags,msg", [
    ("preprocess", ["--max-pixels", "-1"], "--max-pixels must be >= 0 (got -1)"),
    ("preprocess", ["--workers", "-3"], "--workers must be >= 1 (got -3)"),
    ("preprocess", ["--size", "0"], "--size must be >= 8 (got 0)"),
    ("preprocess", ["--quality", "101"], "--quality must be between 1 and 100 (got 101)"),
    ("clean", ["--workers", "-3"], "--workers must be >= 1 (got -3)"),
    ("clean", ["--seed", "-1"], "--seed must be between 0 and 4294967295 (got -1)"),
    ("clean", ["--dup-threshold", "1.5"], "--dup-threshold must be between 0 and 1 (got 1.5)"),
    ("clean", ["--ood-contamination", "0"], "--ood-contamination must be in (0, 1) (got 0.0)"),
])
def test_numeric_options_of_the_image_steps(cmd, flags, msg, image_folder, tmp_path, monkeypatch):
    """preprocess --max-pixels -1 rejected every image and exited 0; now each bad number is one line, exit 2, before
    the input is even listed."""
    import imgcls.manifest as mf
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    r = runner.invoke(app, [cmd, str(image_folder), "--out", str(tmp_path / "out"), *flags])
    assert r.exit_code == 2 and msg in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cmd,flags,msg", [
    ("clean", ["--no-ood", "--ood-threshold", "0.5"], "--ood-threshold acts only with --ood, which --no-ood turns off"),
    ("clean", ["--no-ood", "--force"], "--force acts only with --ood"),
    ("clean", ["--ood-threshold", "0.5", "--ood-contamination", "0.1"],
     "--ood-threshold and --ood-contamination are alternatives"),
    ("clean", ["--exact-only", "--dup-threshold", "0.9"], "--dup-threshold acts only with --near-dup, which "
                                                          "--exact-only turns off"),
    ("clean", ["--no-dedup", "--duplicates", "drop"], "--duplicates acts only with --dedup"),
    # --max-per-class alone capped nothing: the run kept every image and said nothing
    ("clean", ["--max-per-class", "3"], "--max-per-class acts only with --undersample, and this run has no "
                                        "--undersample"),
    ("clean", ["--dup-method", "embedding", "--dup-candidates", "0.5"],
     "--dup-candidates acts only with --dup-method verified, and this run has --dup-method embedding"),
    ("preprocess", ["--detector", "yunet"], "--detector acts only with --face-crop"),
    ("preprocess", ["--no-face", "drop"], "--no-face acts only with --face-crop"),
    ("preprocess", ["--resize-mode", "crop"], "--resize-mode acts only with --size"),
    ("preprocess", ["--oversample-aug", "heavy"], "--oversample-aug acts only with --oversample"),
    ("preprocess", ["--keep-alpha"], "--keep-alpha acts only with --remove-bg, and this run has no --remove-bg"),
    # off is a value, not None: the need is a test (options.When), not "set"
    ("preprocess", ["--oversample", "off", "--oversample-max-factor", "2"],
     "--oversample-max-factor acts only with --oversample other than off, and this run has --oversample off"),
    ("train", ["--oversample", "off", "--oversample-max-factor", "2"],
     "--oversample-max-factor acts only with --oversample other than off (auto is off under --sampler weighted or "
     "--class-weights auto), and this run has --oversample off; set --oversample or drop --oversample-max-factor"),
    ("train", ["--sampler", "weighted", "--oversample-max-factor", "2"],
     "--oversample-max-factor acts only with --oversample other than off (auto is off under --sampler weighted"),
    # timm's create_optimizer_v2 passes a momentum only to the optimizers its registry says have one
    ("train", ["--momentum", "0.5"], "--momentum acts only with --optimizer that has a momentum (sgd, momentum, "
                                     "rmsprop, lars, ...; sam: its --sam-base), and this run has --optimizer adamw; "
                                     "set --optimizer or drop --momentum"),
    ("train", ["--optimizer", "sam", "--momentum", "0.5"],
     "and this run has --optimizer sam --sam-base adamw; set --optimizer or drop --momentum"),
    ("split", ["--no-near-dup", "--dup-threshold", "0.9"], "--dup-threshold acts only with --near-dup"),
    ("train", ["--init-from", "r", "--weights", "w.pth"], "--init-from and --weights are alternatives"),
    # the run / file gives the starting weights: --no-pretrained (random init) loaded the file anyway
    ("train", ["--no-pretrained", "--weights", "w.pth"],
     "--no-pretrained does nothing with --weights w.pth, whose weights the run starts from; drop one of them"),
    ("train", ["--init-from", "r", "--no-pretrained"], "--no-pretrained does nothing with --init-from r, whose weights"),
    # train's options that act only with another's value ran and did nothing
    ("train", ["--smoothing", "0.2"], "--smoothing acts only with --loss label-smoothing, and this run has --loss ce"),
    ("train", ["--loss", "focal", "--smoothing", "0.2"], "--smoothing acts only with --loss label-smoothing, and "
                                                         "this run has --loss focal; add --loss label-smoothing"),
    ("train", ["--focal-gamma", "3"], "--focal-gamma acts only with --loss focal, and this run has --loss ce"),
    ("train", ["--loss", "f1", "--focal-gamma", "3"], "--focal-gamma acts only with --loss focal, and this run has "
                                                      "--loss f1; add --loss focal or drop --focal-gamma"),
    ("train", ["--mix-prob", "0.8"], "--mix-prob acts only with --mix cutmix, mixup or cutmix-vertical, and this run "
                                     "has --mix none; set --mix or drop --mix-prob"),
    ("train", ["--mix", "cutmix-vertical", "--mix-alpha", "0.3"], "--mix-alpha acts only with --mix cutmix or mixup"),
    ("train", ["--sam-rho", "0.1"], "--sam-rho acts only with --optimizer sam, and this run has --optimizer adamw"),
    ("train", ["--sam-adaptive"], "--sam-adaptive acts only with --optimizer sam"),
    ("train", ["--scheduler", "none", "--min-lr", "0"],
     "--min-lr acts only with --scheduler cosine, cosine-restarts or plateau, and this run has --scheduler none"),
    ("train", ["--scheduler", "plateau", "--warmup-epochs", "2"], "--warmup-epochs acts only with --scheduler "
                                                                  "cosine, cosine-restarts or onecycle"),
    ("train", ["--ema-decay", "0.9"], "--ema-decay acts only with --ema, and this run has no --ema"),
    ("train", ["--branch", "deep"], "--branch acts only with --heads multi, and this run has --heads single"),
    ("train", ["--head-weights", "2"], "--head-weights acts only with --heads multi, and this run has --heads single"),
    ("train", ["--tracking-uri", "sqlite:///x.db"], "--tracking-uri acts only with --tracker mlflow, and this run has "
                                                     "no --tracker; add --tracker mlflow or drop --tracking-uri"),
    ("train", ["--tracker", "tensorboard", "--track-checkpoint"], "--track-checkpoint acts only with --tracker mlflow "
                                                                  "or wandb, and this run has --tracker tensorboard"),
])
def test_an_option_that_would_be_ignored_is_refused_before_any_work(cmd, flags, msg, image_folder, tmp_path,
                                                                     monkeypatch):
    """clean --no-ood --ood-threshold, --exact-only --dup-threshold, preprocess --detector without --face-crop, ...
    ran and silently ignored the option; now one line, exit 2, before the input is read (Spec.needs / conflicts)."""
    import imgcls.manifest as mf
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    out = tmp_path / ("out.csv" if cmd == "split" else "out")
    r = runner.invoke(app, [cmd, str(image_folder), "--out", str(out), *flags])
    flat = " ".join(r.output.split())
    assert r.exit_code == 2 and msg in flat and flat.count("error:") == 1 and "Traceback" not in flat, r.output
    assert not out.exists()


@pytest.mark.parametrize("cmd,flags,msg", [
    # typed at its default value: the check by value let it through, and the run did nothing with it
    ("train", ["--optimizer", "adamw", "--momentum", "0.9"], "--momentum acts only with --optimizer that has a "
                                                             "momentum"),
    ("train", ["--smoothing", "0.1"], "--smoothing acts only with --loss label-smoothing, and this run has --loss ce"),
    ("train", ["--ema-decay", "0.998"], "--ema-decay acts only with --ema, and this run has no --ema"),
    ("train", ["--init-from", "r", "--pretrained"], "--pretrained does nothing with --init-from r, whose weights the "
                                                    "run starts from; drop one of them"),
    ("train", ["--weights", "w.pth", "--pretrained"], "--pretrained does nothing with --weights w.pth"),
    ("preprocess", ["--detector", "opencv"], "--detector acts only with --face-crop"),
    ("clean", ["--no-ood", "--ood-method", "photo-style"], "--ood-method acts only with --ood, which --no-ood turns "
                                                           "off"),
])
def test_a_flag_typed_at_its_default_that_would_be_ignored_is_refused(cmd, flags, msg, image_folder, tmp_path,
                                                                      monkeypatch):
    """`train --optimizer adamw --momentum 0.9` ran and ignored --momentum: the check compared values with the
    default, so a flag typed at its default passed (options.check_typed)."""
    import imgcls.manifest as mf
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    out = tmp_path / "out"
    r = runner.invoke(app, [cmd, str(image_folder), "--out", str(out), *flags])
    flat = " ".join(r.output.split())
    assert r.exit_code == 2 and msg in flat and flat.count("error:") == 1, r.output
    assert not out.exists()


@pytest.mark.parametrize("args,cls,name", [
    (["eda", "{d}", "--samples", "4"], "EdaConfig", "samples_per_class"),
    (["ensemble", "{d}/a", "{d}/b", "--method", "soft"], "EnsembleConfig", "method"),
    (["export", "{d}/r", "--onnx", "--opset", "17"], "ExportConfig", "opset"),
    (["predict", "{d}/r", "--eval-split", "val"], "PredictConfig", "eval_split"),
])
def test_every_step_checks_its_typed_flags(args, cls, name, tmp_path, monkeypatch):
    """eda, ensemble, export and predict passed their values on without Given.build(), so options.check_typed (a
    flag typed at its default that would not act) never saw them; none of their options with `needs` can be typed
    at its default today (both default to None), so the path is what is checked here."""
    seen = []

    def typed(cfg, given):
        seen.append((type(cfg).__name__, set(given)))
        if type(cfg).__name__ == cls:       # the step's own options (its input layout's are built too)
            raise UserError("checked")
    monkeypatch.setattr(opts, "check_typed", typed)
    r = runner.invoke(app, [a.format(d=tmp_path) for a in args])
    assert r.exit_code == 2 and "checked" in r.output and seen[-1] == (cls, {name}), (r.output, seen)


def test_a_typed_off_value_or_a_flag_that_acts_passes_the_typed_check():
    from imgcls.options import check_typed
    from imgcls.preprocess import PreprocessConfig
    check_typed(TrainConfig(optimizer="sgd", momentum=0.9), ["optimizer", "momentum"])
    check_typed(TrainConfig(loss="label-smoothing", smoothing=0.1), ["loss", "smoothing"])
    check_typed(PreprocessConfig(face_crop=False), ["face_crop"])       # --no-face-crop: an off value asks nothing
    with pytest.raises(UserError, match="--momentum acts only"):
        check_typed(TrainConfig(momentum=0.9), ["momentum"])
    with pytest.raises(UserError, match="--momentum acts only"):        # a Python caller's overrides count as typed
        TrainConfig.resolve({"momentum": 0.9})


def test_an_option_at_its_default_or_with_what_it_needs_is_accepted():
    from imgcls.clean import CleanConfig
    from imgcls.preprocess import PreprocessConfig
    CleanConfig(ood=False, ood_method=CleanConfig().ood_method).validate()     # typed at its default: harmless
    CleanConfig(ood_contamination=0.1).validate()
    TrainConfig(init_from="r").validate()       # --pretrained at its default, not typed: the run's weights, no error
    TrainConfig(weights="w.pth").validate()
    PreprocessConfig(face_crop=True, detector="yunet", no_face="drop").validate()
    PreprocessConfig(size=64, resize_mode="crop").validate()
    with pytest.raises(UserError, match="--detector acts only with --face-crop"):
        PreprocessConfig(detector="yunet").validate()                          # the Python caller: the same check
    TrainConfig(loss="label-smoothing", smoothing=0.2).validate()
    TrainConfig(loss="focal", focal_gamma=3.0, smoothing=0.1).validate()      # smoothing at its default
    TrainConfig(mix="cutmix-vertical", mix_prob=1.0).validate()               # one of the values it needs
    TrainConfig(scheduler="onecycle", warmup_epochs=2).validate()
    TrainConfig(optimizer="sam", sam_rho=0.1, sam_adaptive=True).validate()
    TrainConfig(optimizer="rmsprop", momentum=0.5).validate()
    TrainConfig(optimizer="sam", sam_base="sgd", momentum=0.5).validate()    # the base's momentum
    TrainConfig(oversample="max", oversample_max_factor=2).validate()
    TrainConfig(oversample_max_factor=2).validate()                             # auto oversamples here
    PreprocessConfig(oversample="median", oversample_max_factor=2, oversample_aug="heavy").validate()
    TrainConfig(tracker=["tensorboard", "mlflow"], tracking_uri="sqlite:///x.db", track_checkpoint=True).validate()
    with pytest.raises(UserError, match="--focal-gamma acts only with --loss focal"):
        TrainConfig(loss="label-smoothing", focal_gamma=3.0).validate()


def test_python_callers_get_the_same_checks(image_folder, tmp_path):
    from imgcls.clean import CleanConfig, run_clean
    from imgcls.preprocess import PreprocessConfig, run_preprocess
    with pytest.raises(UserError, match=re.escape("--max-pixels must be >= 0 (got -1)")):
        run_preprocess(image_folder, tmp_path / "p", PreprocessConfig(max_pixels=-1))
    with pytest.raises(UserError, match=re.escape("--workers must be >= 1 (got 0)")):
        run_preprocess(image_folder, tmp_path / "p", PreprocessConfig(), workers=0)
    with pytest.raises(UserError, match=re.escape("--embed-size must be between 16 and 2048 (got 0)")):
        run_clean(image_folder, tmp_path / "c", CleanConfig(embed_size=0))
    assert not (tmp_path / "p").exists() and not (tmp_path / "c").exists()


@pytest.mark.parametrize("cmd,flags,msg", [
    ("eda", ["--samples", "0"], "--samples must be >= 1 (got 0)"),
    ("eda", ["--workers", "-3"], "--workers must be >= 1 (got -3)"),
    ("eda", ["--max-pixels", "-1"], "--max-pixels must be >= 0 (got -1)"),
    ("eda", ["--seed", "-1"], "--seed must be between 0 and 4294967295 (got -1)"),
])
def test_eda_numeric_options(cmd, flags, msg, image_folder, tmp_path, monkeypatch):
    import imgcls.manifest as mf
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    r = runner.invoke(app, [cmd, str(image_folder), "--out", str(tmp_path / "out"), *flags])
    assert r.exit_code == 2 and msg in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "out").exists()


def test_a_keyword_note_is_for_a_flag_named_whole():
    """options._keywords_named added the keyword of every field whose flag the error's text held, by substring:
    --eval (evaluate) inside --eval-split, so a line naming --eval-split alone would end "(Python: evaluate=)"."""
    from imgcls.errors import UserError
    from imgcls.options import _keywords_named, specs
    from imgcls.predict_config import PredictConfig
    named = [(n, specs(PredictConfig)[n][1]) for n in ("evaluate", "eval_split")]
    for text, note in (("unknown --eval-split 'x'", ""), ("--eval-split acts only with --eval", " (Python: evaluate=)"),
                       ("--eval, scored", " (Python: evaluate=)")):
        with pytest.raises(UserError) as e, _keywords_named(*named):
            raise UserError(text)
        assert str(e.value) == text + note


def test_an_option_whose_flag_is_another_word_is_named_with_its_python_keyword(tmp_path):
    """README (From Python): an error names an option by its flag, and a flag with no keyword of its name is
    followed by its Python form. Five are another word (--samples: samples_per_class, --format: image_format / fmt,
    --eval: evaluate, --weight-metric: metric), and their range, choice and needs errors named the flag alone:
    run_eda(samples_per_class=0) said `--samples must be >= 1 (got 0)`, a keyword run_eda has not. Each such
    error now ends with the keywords (`(Python: samples_per_class=)`); the CLI's line keeps its text before it."""
    from imgcls.ensemble import build_ensemble
    from imgcls.ensemble.voting import fit_weights
    from imgcls.eda import run_eda
    from imgcls.predict import run_predict
    from imgcls.preprocess import PreprocessConfig, run_preprocess
    out = tmp_path / "out"
    cases = [
        (lambda: run_eda(tmp_path, out, samples_per_class=0),
         "--samples must be >= 1 (got 0) (Python: samples_per_class=)"),
        (lambda: build_ensemble([tmp_path, tmp_path], metric="acc", out=out),
         "unknown --weight-metric 'acc'; use one of: logloss, f1 (Python: metric=)"),
        (lambda: build_ensemble([tmp_path, tmp_path], method="weighted", weights="1,2", metric="f1", out=out),
         "this run has --weights 1,2; set --weights or drop --weight-metric (Python: metric=)"),
        (lambda: run_predict(tmp_path, tmp_path, out=out, eval_split="test"),
         "--eval-split acts only with --eval, and this run has no --eval; add --eval or drop --eval-split "
         "(Python: evaluate=)"),
        (lambda: run_preprocess(tmp_path, out, PreprocessConfig(image_format="gif")),
         "(Python: image_format=)"),
        # the ensemble's weight fit (hard voting's metric is checked there) says it too
        (lambda: fit_weights([np.eye(2), np.eye(2)], np.array([0, 1]), "hard", "logloss"),
         "hard voting has no probabilities to fit by log-loss; use --weight-metric f1 (Python: metric=)"),
        # preprocess's own check of --format beside --keep-alpha (PreprocessConfig.validate) says it too
        (lambda: run_preprocess(tmp_path, out, PreprocessConfig(remove_bg=True, keep_alpha=True, image_format="jpg")),
         "--keep-alpha needs a format with transparency: --format png or webp (Python: image_format=)"),
    ]
    for call, msg in cases:
        with pytest.raises(UserError) as got:
            call()
        assert str(got.value).endswith(msg), str(got.value)
    # predict's --format is read by its own check (predict_config.resolve_format), which says it too
    from imgcls.predict_config import resolve_format
    with pytest.raises(UserError) as got:
        resolve_format("weird")
    assert str(got.value).startswith("unknown --format 'weird'; use id,label") and \
        str(got.value).endswith("or ID_COL,LABEL_COL (Python: fmt=)"), str(got.value)
    with pytest.raises(UserError) as got:          # flags that spell their keywords: no note
        run_eda(tmp_path, out, seed=-1)
    assert "Python" not in str(got.value)
    r = runner.invoke(app, ["eda", str(tmp_path), "--out", str(out), "--samples", "0"])
    assert r.exit_code == 2 and "--samples must be >= 1 (got 0) (Python: samples_per_class=)" in r.output, r.output
    assert not out.exists()


def test_export_numeric_options_before_loading_the_run(tmp_path):
    for flags, msg in ((["--opset", "3"], "--opset must be between 7 and 20 (got 3)"),
                       (["--atol", "0"], "--atol must be > 0 (got 0.0)")):
        r = runner.invoke(app, ["export", str(tmp_path / "no_such_run"), "--onnx", *flags])
        assert r.exit_code == 2 and msg in r.output, r.output


@pytest.mark.parametrize("flags,msg", [
    (["--val", "-0.2"], "--val must be in [0, 1) (got -0.2)"),
    (["--test", "1"], "--test must be in [0, 1) (got 1.0)"),
    (["--val", "0.5", "--test", "0.5"], "--val 0.5 + --test 0.5 leave nothing to train on"),
    (["--folds", "1"], "--folds must be >= 2 (got 1)"),
    (["--workers", "-3"], "--workers must be >= 1 (got -3)"),
    (["--max-pixels", "-1"], "--max-pixels must be >= 0 (got -1)"),
    (["--dup-method", "hash"], "unknown --dup-method 'hash'; use one of: verified, embedding"),
    (["--val", "0.2", "--folds", "3"], "--val and --folds are alternatives (only one is used)"),
])
def test_split_numeric_options(flags, msg, image_folder, tmp_path, monkeypatch):
    """split --val -0.2 exited 0 with no val rows; now one line, exit 2, before the data is read."""
    import imgcls.manifest as mf
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    r = runner.invoke(app, ["split", str(image_folder), "--out", str(tmp_path / "s.csv"), "--no-near-dup", *flags])
    assert r.exit_code == 2 and msg in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "s.csv").exists()


def test_split_python_caller_gets_the_same_check(image_folder, tmp_path):
    from imgcls import split as sp
    from imgcls.manifest import LayoutOptions
    with pytest.raises(UserError, match=re.escape("--val must be in [0, 1) (got -0.2)")):
        sp.run_split(image_folder, tmp_path / "s.csv", LayoutOptions(), sp.SplitConfig(val=-0.2))
    # --val beside --folds: the CLI refused it, a Python caller's val was ignored (each fold validates 1/K)
    with pytest.raises(UserError, match="--val and --folds are alternatives"):
        sp.run_split(image_folder, tmp_path / "s.csv", LayoutOptions(), sp.SplitConfig(val=0.3, folds=3))
    assert not (tmp_path / "s.csv").exists()


def test_a_config_given_in_another_step_s_argument_order_names_the_keyword(tmp_path):
    """run_clean / run_preprocess take (src, out, cfg, opts), run_split (src, out, opts, cfg): a Python caller who
    wrote run_split(SRC, OUT, SplitConfig(val=0.3)) as for clean got AttributeError: 'SplitConfig' object has no
    attribute 'csv' from deep in the manifest reader (run_clean(SRC, OUT, LayoutOptions()): no attribute
    'materialize'). It is a TypeError naming the argument, its class and the keyword, before any work."""
    from imgcls.clean import run_clean
    from imgcls.manifest import LayoutOptions
    from imgcls.preprocess import PreprocessConfig, run_preprocess
    from imgcls.split import SplitConfig, run_split
    src, out = tmp_path / "raw", tmp_path / "out"
    with pytest.raises(TypeError, match=re.escape("run_split's opts must be a LayoutOptions (got a SplitConfig); "
                                                  "pass the SplitConfig as cfg=")):
        run_split(src, out, SplitConfig(val=0.3))
    with pytest.raises(TypeError, match=re.escape("run_clean's cfg must be a CleanConfig (got a LayoutOptions); "
                                                  "pass the LayoutOptions as opts=")):
        run_clean(src, out, LayoutOptions())
    with pytest.raises(TypeError, match=re.escape("run_preprocess's opts must be a LayoutOptions (got a "
                                                  "PreprocessConfig); pass the PreprocessConfig as cfg=")):
        run_preprocess(src, out, None, PreprocessConfig())
    with pytest.raises(TypeError, match=re.escape("run_clean's cfg must be a CleanConfig (got a dict)")):
        run_clean(src, out, {"near_dup": False})
    assert not out.exists()


def test_every_step_s_config_argument_of_another_type_is_a_type_error_naming_it(tmp_path):
    """clean, preprocess and split checked their config / layout arguments (above); train, tune, eda, predict, runs
    and split --check did not: run_train({'epochs': 1}) was `AttributeError: 'dict' object has no attribute
    'validate'`, run_train(CleanConfig()) `TypeError: CleanConfig.validate() got an unexpected keyword argument
    'registry'`, TuneConfig(train={...}) `must be called with a dataclass type or instance`, run_eda(src, out,
    opts=CleanConfig()) `'CleanConfig' object has no attribute 'ext'`, each from deep inside. Each is a TypeError
    naming the step's argument and its class (a dict: the constructor that takes it), before any work."""
    from imgcls.clean import CleanConfig
    from imgcls.eda import run_eda
    from imgcls.predict import run_predict
    from imgcls.runs import run_runs
    from imgcls.split.run import run_check
    from imgcls.train import TrainConfig, run_train
    from imgcls.tune import TuneConfig, run_tune
    out = tmp_path / "out"
    cases = [
        (lambda: run_train({"epochs": 1}), "run_train's cfg must be a TrainConfig (got a dict); pass TrainConfig(**d)"),
        (lambda: run_train(None), "run_train's cfg must be a TrainConfig (got None)"),
        (lambda: run_train(CleanConfig()), "run_train's cfg must be a TrainConfig (got a CleanConfig)"),
        (lambda: run_tune({"study": "s"}), "run_tune's cfg must be a TuneConfig (got a dict); pass TuneConfig(**d)"),
        (lambda: run_tune(TuneConfig(study="s", out=str(out), train={"epochs": 1})),
         "TuneConfig's train must be a TrainConfig (got a dict); pass TrainConfig(**d)"),
        (lambda: run_eda(tmp_path, out, opts=CleanConfig()),
         "run_eda's opts must be a LayoutOptions (got a CleanConfig)"),
        (lambda: run_predict(tmp_path, tmp_path, out=out, opts=CleanConfig()),
         "run_predict's opts must be a LayoutOptions (got a CleanConfig)"),
        (lambda: run_runs("table", [tmp_path], CleanConfig()),
         "run_runs' cfg must be a RunsConfig (got a CleanConfig)"),
        (lambda: run_check(tmp_path / "s.csv", cfg=TrainConfig()),
         "run_check's cfg must be a SplitConfig (got a TrainConfig)"),
    ]
    for call, msg in cases:
        with pytest.raises(TypeError, match=re.escape(msg)):
            call()
    assert not out.exists()


def test_a_step_s_name_takes_one_possessive_in_every_line_that_names_its_arguments(tmp_path):
    """check_arguments said "run_runs's cfg" where path_list said "run_runs' paths": opts.whose, the one owner,
    writes an apostrophe alone after a plural's s (find_checkpoints' which) and 's after ss (run_preprocess's)."""
    from imgcls.runs import run_runs
    from imgcls.runs_config import RunsConfig
    from imgcls.train.rundir import check_which
    assert [opts.whose(n) for n in ("run_train", "run_runs", "find_checkpoints", "run_preprocess", "preprocess")] == [
        "run_train's", "run_runs'", "find_checkpoints'", "run_preprocess's", "preprocess's"]
    for call, msg in ((lambda: run_runs("table", [tmp_path], {}), "run_runs' cfg must be a RunsConfig (got a dict)"),
                      (lambda: run_runs("diff", 5, RunsConfig()), "run_runs' paths must be a list of folders"),
                      (lambda: opts.whole_argument("run_runs", "top", 0, lo=1), "run_runs' top must be a whole"),
                      (lambda: check_which("run_runs", "x"), "run_runs' which must be one of")):
        with pytest.raises((TypeError, UserError), match="^" + re.escape(msg)):
            call()


def test_got_a_type_takes_the_article_of_its_name():
    """The "(got a <type>)" of the steps' TypeErrors read "got a int" (check_arguments, path_list, check_callbacks,
    run_train's study, each by hand): opts.a_name / a_type, the one owner, say 'an int', 'a list'; None is 'None'
    (it read "got a NoneType")."""
    assert [opts.a_type(v) for v in (5, [], {}, np.zeros(2), None, "s")] == [
        "an int", "a list", "a dict", "an ndarray", "None", "a str"]
    assert [opts.a_name(n) for n in ("EnsembleConfig", "ExportConfig", "UserError", "uint8", "object", "Path")] == [
        "an EnsembleConfig", "an ExportConfig", "a UserError", "a uint8", "an object", "a Path"]
    with pytest.raises(TypeError, match=re.escape("run_x's size must be a path to a CSV (got an int)")):
        opts.check_arguments("run_x", size=(3, opts.PATH, "a path to a CSV"))
    with pytest.raises(TypeError, match=re.escape("run_x's cfg must be an EnsembleConfig (got a float)")):
        opts.check_arguments("run_x", cfg=(1.5, type("EnsembleConfig", (), {})))
    with pytest.raises(TypeError, match=re.escape("run_x's cfg must be an EnsembleConfig (got None)")):
        opts.check_arguments("run_x", required=("cfg",), cfg=(None, type("EnsembleConfig", (), {})))


@pytest.mark.parametrize("step,make,msg", [
    # a float where an int goes passed the range check: epochs=1.5 broke training with a TypeError after the data
    # was read, SplitConfig(folds=2.0) in scikit-learn, run_eda(workers=1.5) in multiprocessing
    ("train", lambda: {"epochs": 1.5}, "--epochs must be a whole number >= 1 (got 1.5)"),
    ("split", lambda: {"folds": 2.0}, "--folds must be a whole number >= 2 (got 2.0)"),
    ("eda", lambda: {"workers": 1.5}, "--workers must be a whole number >= 1 (got 1.5)"),
    # a string where a list goes was read letter by letter: --stratify column 'l', unknown --tracker 't'
    ("split", lambda: {"stratify": "label"}, "--stratify takes a list of values, not the string 'label' "
                                             "(Python: stratify=[...])"),
    ("train", lambda: {"tracker": "tensorboard"}, "--tracker takes a list of values, not the string 'tensorboard'"),
    # a number where a list goes: age_bands=30 was a TypeError traceback ('int' object is not iterable)
    ("split", lambda: {"age_bands": 30}, "--age-bands takes a list of values, not 30 (Python: age_bands=[...])"),
    ("train", lambda: {"head_weights": 2.0}, "--head-weights takes a list of values, not 2.0"),
    # a numpy array of more than one dimension was taken unchecked (plain_value lists a 1-d one alone): the columns
    # of a row ['label', 'gender'], a TypeError of --head-weights' validator, a ValueError of a choice's truth
    ("split", lambda: {"stratify": np.array([["label", "gender"]])}, "--stratify takes a list of values, not a "
                                                                     "2-dimensional array (shape 1x2) (Python: "
                                                                     "stratify=[...])"),
    ("train", lambda: {"head_weights": np.ones((2, 2))}, "--head-weights takes a list of values, not a "
                                                          "2-dimensional array (shape 2x2)"),
    ("train", lambda: {"tracker": np.array([["tensorboard"]])}, "--tracker takes a list of values, not a "
                                                                "2-dimensional array (shape 1x1)"),
    # None where the field takes none passed as 'not set': epochs=None, lr=None a TypeError once the data was read,
    # model=None an AttributeError in timm, scheduler=None trained with no schedule, recorded as null
    ("train", lambda: {"epochs": None}, "--epochs cannot be None; give a whole number >= 1, or leave it out for its "
                                        "default"),
    ("train", lambda: {"lr": None}, "--lr cannot be None; give a number >= 0"),
    ("train", lambda: {"model": None}, "--model cannot be None; give a string, or leave it out"),
    ("train", lambda: {"scheduler": None}, "--scheduler cannot be None; give one of: cosine, "),
    ("train", lambda: {"hflip": None}, "--hflip cannot be None; give True or False"),
    ("train", lambda: {"tracker": [None]}, "--tracker cannot be None; give one of: tensorboard"),
    ("split", lambda: {"val": None}, "--val cannot be None; give a number in [0, 1)"),
    ("eda", lambda: {"seed": None}, "--seed cannot be None"),
    # a None that meant no limit / serial / no TTA: one line naming the value that means it
    *((step, lambda: {"max_pixels": None}, "--max-pixels cannot be None; give 0 for no limit (a whole number >= 0), "
                                           "or leave it out for its default") for step in ("train", "eda")),
    ("eda", lambda: {"workers": None}, "--workers cannot be None; give 1 for no worker processes (a whole number "
                                       ">= 1), or leave it out for its default"),
    ("predict", lambda: {"workers": None}, "--workers cannot be None; give 0 for decoding in the main process"),
    ("predict", lambda: {"tta": None}, "--tta cannot be None; give 'none' for no TTA, or leave it out for its "
                                       "default"),
    # a field no flag sets was named by a flag there is not (--extra)
    ("split", lambda: {"extra": None}, "extra= cannot be None; give a value, or leave it out for its default"),
])
def test_a_python_callers_value_of_the_wrong_type_is_one_line_before_any_work(step, make, msg, image_folder,
                                                                              tmp_path, monkeypatch):
    import imgcls.manifest as mf
    from imgcls.eda import run_eda
    from imgcls.predict import run_predict
    from imgcls.split import SplitConfig, run_split
    from imgcls.train import TrainConfig, run_train
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    kw = make()
    with pytest.raises(UserError, match=re.escape(msg)):
        if step == "train":
            run_train(TrainConfig(src=str(image_folder), out=str(tmp_path / "runs"), pretrained=False, **kw))
        elif step == "split":
            run_split(image_folder, tmp_path / "s.csv", cfg=SplitConfig(near_dup=False, **kw))
        elif step == "predict":
            run_predict(tmp_path / "runs" / "r", image_folder, out=tmp_path / "p", **kw)
        else:
            run_eda(image_folder, tmp_path / "eda", **kw)
    assert not any((tmp_path / name).exists() for name in ("runs", "s.csv", "eda", "p"))


def test_whole_numbers_and_lists_of_the_right_type_pass():
    from imgcls.split import SplitConfig
    from imgcls.train import TrainConfig
    TrainConfig(epochs=2, img_size=None, tracker=["tensorboard"], heads="multi", head_columns=("mask",)).validate(
        registry=False)
    SplitConfig(folds=3, stratify=("label",), drop_ages=[57, 58]).validate()
    assert opts._kind(TrainConfig, "workers") == "int" and opts._kind(SplitConfig, "relabel_age") == "list"
    assert opts._kind(TrainConfig, "lr") == "float" and opts._kind(SplitConfig, "extra") is None
    TrainConfig(img_size=None, folds=None, oversample=None, amp=None, workers=None).validate(registry=False)


def test_numpy_numbers_pass_as_plain_ones_and_whole_valued_floats_stay_refused(tmp_path):
    """A notebook's `for e in np.arange(1, 4): TrainConfig(epochs=e)` was refused (--epochs must be a number >= 1
    (got np.int64(1))), lr=np.float32(0.001) too; lr=np.float64(0.001) passed and config.yaml's yaml.safe_dump
    refused it. Each is checked as the number it is and stored plain; 2.0 is no whole number, of any float type."""
    import yaml
    assert [opts.whole_number(v) for v in (np.int64(3), np.uint8(3), 3, True, 2.0, np.float64(2.0), "3", None)] \
        == [3, 3, 3, None, None, None, None, None]
    assert type(opts.whole_number(np.int64(3))) is int
    cfg = TrainConfig(epochs=np.int64(2), seed=np.int32(7), lr=np.float32(0.5), weight_decay=np.float64(0.25),
                      oversample=np.int64(30))
    cfg.validate(registry=False)
    assert [(type(getattr(cfg, n)), getattr(cfg, n)) for n in ("epochs", "seed", "lr", "weight_decay", "oversample")] \
        == [(int, 2), (int, 7), (float, 0.5), (float, 0.25), (int, 30)]
    cfg.save(tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    assert "!!" not in text and yaml.safe_load(text)["epochs"] == 2 and yaml.safe_load(text)["lr"] == 0.5
    for whole in (2.0, np.float64(2.0), np.float32(2.0)):
        with pytest.raises(UserError, match=re.escape(f"--epochs must be a whole number >= 1 (got {whole!r})")):
            TrainConfig(epochs=whole).validate(registry=False)
    with pytest.raises(UserError, match=re.escape("--epochs must be >= 1 (got 0)")):
        TrainConfig(epochs=np.int64(0)).validate(registry=False)


def test_numpy_numbers_in_a_list_and_numpy_bools_are_stored_plain(tmp_path):
    """head_weights=[np.float64(1), ...] and hflip=np.bool_(False) (a notebook's array, a mask's element) passed the
    checks and then broke config.yaml's yaml.safe_dump with a RepresenterError traceback as the run folder was made:
    each is stored as the plain value it is, the list's values too."""
    import yaml
    cfg = TrainConfig(heads="multi", head_weights=[np.float64(1), np.int64(1), np.float32(2)], hflip=np.bool_(False))
    cfg.validate(registry=False)
    assert [(type(w), w) for w in cfg.head_weights] == [(float, 1.0), (int, 1), (float, 2.0)]
    assert cfg.hflip is False
    cfg.save(tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["hflip"] is False
    plain = [1, 2.5]
    assert opts.plain_value(plain) is plain         # nothing in it to change: the same list


def test_a_config_yaml_null_where_the_option_takes_none_is_one_line(tmp_path):
    """`epochs: null` in a config.yaml was read as not set and broke training with a TypeError after the data was
    read; now the command's one line, exit 2."""
    (tmp_path / "c.yaml").write_text("epochs: null\n")
    r = runner.invoke(app, ["train", SAMPLE, "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "runs"),
                            "--no-pretrained"])
    assert r.exit_code == 2 and "--epochs cannot be None" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "runs").exists(), r.output


@pytest.mark.parametrize("flags,msg", [
    (["--batch-size", "0"], "--batch-size must be >= 1 (got 0)"),
    (["--workers", "-3"], "--workers must be >= 0 (got -3)"),
    (["--tta-merge", "max"], "unknown --tta-merge 'max'; use one of: mean, logits"),
    (["--eval-split", "train"], "unknown --eval-split 'train'; use one of: all, val, test"),
    (["--tta-merge", "logits"], "--tta-merge acts only with --tta of more than one view"),   # silently ignored before
    (["--eval-split", "test"], "--eval-split acts only with --eval"),
])
def test_predict_options_are_checked_before_the_model_is_loaded(flags, msg, tmp_path, monkeypatch):
    import imgcls.predict as pr
    monkeypatch.setattr(pr, "resolve_source", lambda *a, **k: pytest.fail("model loaded before the options were checked"))
    r = runner.invoke(app, ["predict", str(tmp_path / "run"), "--data", str(tmp_path), "--out", str(tmp_path / "p"),
                            *flags])
    assert r.exit_code == 2 and msg in r.output and len(r.output.strip().splitlines()) == 1, r.output
    with pytest.raises(UserError, match=re.escape(msg.split(" (got")[0])):
        field = flags[0][2:].replace("-", "_")
        value = int(flags[1]) if field in ("batch_size", "workers") else flags[1]
        pr.run_predict(tmp_path / "run", tmp_path, tmp_path / "p", **{field: value})
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("flags,has", [(["--tta-merge", "mean"], "--tta none"),
                                       (["--tta", "scales=1.0", "--tta-merge", "mean"], "--tta scales=1.0")])
def test_predict_typed_tta_merge_without_views_is_refused(flags, has, tmp_path, monkeypatch):
    """predict --tta-merge mean with no --tta ran, the typed flag doing nothing (mean is the default, so only a
    different value was refused); now a typed --tta-merge with one view is refused in one line."""
    import imgcls.predict as pr
    monkeypatch.setattr(pr, "resolve_source", lambda *a, **k: pytest.fail("model loaded before the options were checked"))
    r = runner.invoke(app, ["predict", str(tmp_path / "run"), "--data", str(tmp_path), "--out", str(tmp_path / "p"),
                            *flags])
    flat = " ".join(r.output.split())
    assert r.exit_code == 2 and flat.count("error:") == 1, r.output
    assert "--tta-merge acts only with --tta of more than one view" in flat and f"this run has {has}" in flat, flat
    assert not (tmp_path / "p").exists()


def test_ensemble_options_are_checked_before_the_runs_are_read(tmp_path, monkeypatch):
    import imgcls.ensemble.build as ens          # build_ensemble reads the runs with this name
    monkeypatch.setattr(ens, "member_from_run", lambda *a, **k: pytest.fail("runs read before the options were checked"))
    for flags, msg in ((["--method", "median"], "unknown --method 'median'; use one of: soft, hard, weighted"),
                       (["--weight-metric", "acc"], "unknown --weight-metric 'acc'; use one of: logloss, f1"),
                       # it did nothing without fitted weights: equal (soft) or typed weights
                       (["--weight-metric", "f1"], "--weight-metric acts only with --method weighted or hard (soft "
                                                   "with --weights is weighted), and this run has --method soft; set "
                                                   "--method or drop --weight-metric"),
                       (["--weight-metric", "f1", "--weights", "1,2"], "--weight-metric acts only with --weights auto "
                                                                       "or not given: weights fitted, not typed, and "
                                                                       "this run has --weights 1,2"),
                       (["--weight-metric", "f1", "--combine", "profile"], "--weight-metric acts only with --combine "
                                                                           "vote, and this run has --combine profile")):
        r = runner.invoke(app, ["ensemble", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "e"),
                                *flags])
        flat = " ".join(r.output.split())
        assert r.exit_code == 2 and msg in flat and flat.count("error:") == 1, r.output
    assert not (tmp_path / "e").exists()
    from imgcls.ensemble.build import EnsembleConfig
    from imgcls.options import check
    for fitted in ({"method": "weighted"}, {"method": "hard"}, {"weights": "auto"}, {"method": "hard", "weights": ""}):
        check(EnsembleConfig(metric="f1", **fitted))         # weights fitted: the metric acts


def test_output_defaults_come_from_the_library():
    """The default --out of each step is its library default (eda, clean) or its pipeline stage (preprocess):
    written once."""
    from imgcls import eda
    from imgcls.clean import run_clean
    from imgcls.pipeline import PIPELINE
    cmds = _commands()
    out = {name: next(p for p in cmd.params if p.name == "out").default for name, (cmd, _) in cmds.items()
           if any(p.name == "out" for p in cmd.params)}
    assert str(out["eda"]) == inspect.signature(eda.run_eda).parameters["out"].default
    assert str(out["clean"]) == inspect.signature(run_clean).parameters["out"].default == dict(PIPELINE)["clean"]
    assert str(out["preprocess"]) == dict(PIPELINE)["processed"]


def test_preprocess_and_split_called_from_python_without_paths_read_and_write_where_the_cli_does(tmp_path,
                                                                                                   monkeypatch):
    """`imgcls preprocess` and `imgcls split` without SRC read the furthest pipeline stage and write the next one;
    run_preprocess() and run_split() with no paths do the same (a None src was a TypeError traceback)."""
    from conftest import make_image_folder
    from imgcls.preprocess import run_preprocess
    from imgcls.split import SplitConfig, run_split
    make_image_folder(tmp_path / "data" / "raw", {"a": 5, "b": 5})
    monkeypatch.chdir(tmp_path)
    processed = run_preprocess()
    assert (tmp_path / "data" / "processed" / "manifest.csv").is_file() and len(processed) == 10
    table = run_split(cfg=SplitConfig(near_dup=False))
    assert (tmp_path / "data" / "splits.csv").is_file() and set(table["split"]) == {"train", "val"}
    assert table["root"].str.endswith("processed").all()       # it read preprocess's output, not data/raw


def test_clean_materialize_is_a_declared_choice(image_folder, tmp_path):
    r = runner.invoke(app, ["clean", str(image_folder), "--out", str(tmp_path / "c"), "--materialize", "move"])
    assert r.exit_code == 2 and "unknown --materialize 'move'; use one of: link, copy" in r.output, r.output
    assert not (tmp_path / "c").exists()


def _examples(cmd) -> list[list[str]]:
    """The example command lines of a --help epilog, as argv after `imgcls` (a trailing '# comment' dropped)."""
    import shlex
    lines = []
    for line in (cmd.epilog or "").splitlines():
        words = shlex.split(line.split("#", 1)[0])
        if "imgcls" in words:
            lines.append(words[words.index("imgcls") + 1:])
    return lines


def test_every_help_example_parses():
    """Examples are copy-pastable: each line of every command's epilog is one command (of imgcls) whose flags and
    values that command accepts (parsed by the command itself, nothing run)."""
    group = typer.main.get_command(app)
    declared = {name: classes for name, (_, classes) in _commands().items()}
    seen = 0

    def leaves(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from leaves(sub, path + [name])
        else:
            yield cmd, path

    for cmd, path in leaves(group, []):
        examples = _examples(cmd)
        assert examples, f"imgcls {' '.join(path)}: no example"
        assert any(argv[:len(path)] == path for argv in examples), f"imgcls {' '.join(path)}: no example of itself"
        for argv in examples:
            target, i = group, 0
            while getattr(target, "commands", None):      # imgcls models fetch ...: walk to the leaf command
                target, i = target.commands[argv[i]], i + 1
            ctx = target.make_context(" ".join(argv[:i]), argv[i:])   # raises on an unknown flag or a bad value
            for cls, only in declared.get(argv[0], {}).values():        # and the declared choices / ranges hold
                got = opts.from_cli(cls, ctx.params, set(), only).values
                opts.check(cls(**got))
            seen += 1
    assert seen >= 20


def test_every_flag_of_every_command_is_named_in_the_readme():
    """README (Conventions): a user learns every option from the README as from --help; `eda --samples` and
    `export --opset` were in --help alone. A flag counts as named when its own spelling or
    its negation (`--no-ood` for `--ood`) is in README.md."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"--[a-z][a-z0-9-]*", readme))
    missing = []

    def walk(cmd, path):
        for sub_name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, path + [sub_name])
        for param in cmd.params:
            flags = [f for f in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ()))
                     if f.startswith("--")]
            if flags and param.name != "help" and not named & set(flags):
                missing.append(f"imgcls {' '.join(path)} {flags[0]}")

    walk(typer.main.get_command(app), [])
    assert not missing, missing


@pytest.mark.parametrize("cmd", ["clean", "split", "train"])
def test_device_spelling_is_checked_before_the_scan(cmd, image_folder, tmp_path, monkeypatch):
    """--device gpu failed only when the first model was built (clean: after scanning every image)."""
    import imgcls.manifest as mf
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    r = runner.invoke(app, [cmd, str(image_folder), "--out", str(tmp_path / "o.csv"), "--device", "gpu"])
    assert r.exit_code == 2 and "unknown --device 'gpu'; use auto, cpu, cuda or cuda:N" in r.output, r.output
    from imgcls.device import check_device_spelling
    for ok in ("auto", "cpu", "cuda", "cuda:1", " CUDA:0 "):
        check_device_spelling(ok)


def test_changed_options_are_named_by_the_flags_users_type():
    """A refused resume / study names each changed option as its flag: --samples for eda's samples_per_class,
    --no-amp -> --amp for a bool, not the field's name."""
    from imgcls.eda import EdaConfig
    assert opts.describe_changes(TrainConfig, [("img_size", 96, 128), ("amp", False, True)]) == \
        "--img-size 96 -> 128, --no-amp -> --amp"
    assert opts.describe_changes(EdaConfig, [("samples_per_class", 4, 8)]) == "--samples 4 -> 8"


def test_a_config_class_annotations_are_evaluated_once_not_once_per_flag(monkeypatch):
    """Building a command's flags evaluated the whole class's string annotations once per field (228 calls of
    typing.get_type_hints at start-up, ~2 s of every `imgcls` invocation, `--help` included): once per class."""
    import typing

    @dataclasses.dataclass
    class Cfg:
        a: int = opts.option(1, help="a", panel="P")
        b: float = opts.option(0.5, help="b", panel="P")
        c: str | None = opts.option(None, help="c", panel="P")

    calls = []
    real = typing.get_type_hints
    monkeypatch.setattr(typing, "get_type_hints", lambda *a, **k: calls.append(a) or real(*a, **k))
    names = [p.name for p in opts.cli_parameters(Cfg)]
    opts.cli_parameters(Cfg)
    assert names == ["a", "b", "c"]
    assert len(calls) == 1


def test_a_python_caller_reads_fixes_that_work_from_python(tmp_path):
    """Fixes a library error names in the command line's words only ('choose another --out', 'imgcls train --resume
    RUN finishes it', '`imgcls runs` lists them', 'pass --force', '--workers N, or workers=N from Python') are no fix
    as written to a Python caller: each is followed by its Python form, in python_too's one wording (the CLI's
    words stay first, as the command-line tests pin)."""
    import numpy as np
    import pandas as pd
    from imgcls.clean import CleanConfig
    from imgcls.clean.run import check_ood_classes, check_ood_share
    from imgcls.ensemble.spec import read_oof
    from imgcls.fsutil import check_not_replacing, check_output_not_source
    from imgcls.outputs import CLEAN_SUMMARY, refuse_other_output, refuse_users_files
    from imgcls.parallel import worker_died
    from imgcls.train.rundir import RunLock, find_checkpoints

    def said(fn, *args, **kw):
        with pytest.raises(UserError) as e:
            fn(*args, **kw)
        return str(e.value)

    assert opts.choose_another("--out") == "choose another --out (Python: out=)"
    assert "fewer workers: --workers N (Python: workers=N); 1 runs in this process" in str(worker_died(OSError("x")))
    run = tmp_path / "run"
    run.mkdir()
    assert said(read_oof, run, ["a"]).endswith(f"; finish it with imgcls train --resume {run} (Python: run_train("
                                               f"TrainConfig(), resume='{run}'))")
    runs_py = "`imgcls runs` (Python: imgcls.runs.run_runs())"
    assert said(find_checkpoints, tmp_path / "nope").endswith(f"; give a folder under outputs/runs; {runs_py} lists "
                                                               f"them")
    from imgcls.runs import diff_runs
    assert said(diff_runs, tmp_path / "nope", run).endswith(f"outputs/runs or outputs/ensembles; {runs_py} lists them")
    with RunLock(run):
        assert said(RunLock(run, resuming=True).__enter__).endswith(f"wait for it to finish; {runs_py} shows it "
                                                                     f"running")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.html").write_text("the user's own")
    assert "choose another --out (Python: out=), or move it away first" in \
        said(refuse_users_files, mine, "eda", [mine / "report.html"])
    (mine / CLEAN_SUMMARY).write_text("{}")
    assert "choose another --out (Python: out=): an empty folder, or an earlier imgcls eda output" in \
        said(refuse_other_output, mine, "eda")
    assert said(refuse_other_output, mine, "tune", flag="--study").endswith("choose another --study (Python: study=): "
                                                                           "an empty folder, or an earlier imgcls "
                                                                           "tune output")
    assert said(check_output_not_source, run, [run]).endswith(f"choose another --out (Python: out=), e.g. "
                                                              f"{run / 'pred'}")
    f = tmp_path / "train.csv"
    assert said(check_not_replacing, [f], [f]).endswith("; choose another --out (Python: out=)")
    ten = np.ones(10, bool)
    assert said(check_ood_share, ten, ten, CleanConfig()).endswith(
        "Flag a share with --ood-contamination 0.05, raise --ood-threshold, or pass --force to accept it (Python: "
        "ood_contamination=0.05, a higher ood_threshold, or force=True)")
    df = pd.DataFrame({"label": ["a"] * 10, "keep": ten})
    assert said(check_ood_classes, ten, df, CleanConfig()).endswith(
        "Pass --no-ood, raise --ood-threshold, or --force to accept it (Python: ood=False, a higher ood_threshold, "
        "or force=True)")


def test_a_python_caller_reads_how_to_predict_and_build_an_ensemble_from_python(tmp_path):
    """'imgcls predict RUN', '`imgcls ensemble RUN RUN ...`' and 'imgcls ensemble outputs/runs/A outputs/runs/B' were
    a library error's fixes in the command line's words only: each is followed by its Python call (run_predict,
    build_ensemble), the CLI's words first."""
    from conftest import make_tiny_run
    from imgcls.ensemble import build_ensemble
    from imgcls.ensemble.spec import load_spec
    from imgcls.outputs import predict_fix
    from imgcls.train.rundir import find_checkpoints

    def said(fn, *args, **kw):
        with pytest.raises(UserError) as e:
            fn(*args, **kw)
        return str(e.value)

    assert predict_fix("outputs/runs/my run") == ("imgcls predict 'outputs/runs/my run' (Python: "
                                                  "run_predict('outputs/runs/my run'))")
    assert said(build_ensemble, []) == ("give two or more runs: imgcls ensemble outputs/runs/A outputs/runs/B "
                                        "(Python: build_ensemble(['outputs/runs/A', 'outputs/runs/B']))")
    run = make_tiny_run(tmp_path / "runs" / "one")
    assert said(build_ensemble, [run], out=tmp_path / "e").endswith(
        f"(a k-fold set there averages its folds): imgcls predict {run} (Python: run_predict('{run}'))")
    ens = tmp_path / "ens"
    ens.mkdir()
    build = "`imgcls ensemble RUN RUN ...` (Python: build_ensemble([RUN, RUN, ...]))"
    assert said(load_spec, ens).endswith(f"; build one with {build}")
    (ens / "spec.yaml").write_text("kind: imgcls-ensemble\nmembers: {a: 1}\n")
    assert said(load_spec, ens).endswith(f"members is not a list; rebuild it with {build}")
    (ens / "spec.yaml").write_text("kind: [\n")
    assert said(load_spec, ens).endswith(f"; rebuild it with {build}")
    (ens / "spec.yaml").write_text("kind: imgcls-ensemble\nmembers: [a]\n")
    assert f"is an ensemble, not a run: imgcls predict {ens} (Python: run_predict('{ens}')) predicts with it" in \
        said(find_checkpoints, ens)


def test_a_python_caller_reads_which_run_a_profile_ensemble_lacks_as_a_run_train_call():
    """--combine profile without a member for an attribute said "add a run trained with `imgcls train --target
    age_band`", a command only: its run_train call follows it."""
    import numpy as np
    from imgcls.ensemble.profile import combine_profile
    from imgcls.model_meta import ModelMeta

    def meta(target, classes):
        return ModelMeta.from_dict({"model": "test_resnet", "classes": list(classes), "img_size": 32,
                                    "heads": [{"name": "label", "classes": list(classes)}], "decode": "single",
                                    "mean": [0.5] * 3, "std": [0.5] * 3, "target": target})
    with pytest.raises(UserError) as e:
        combine_profile([np.ones((1, 3)) / 3, np.ones((1, 2)) / 2], [meta("mask", "012"), meta("gender", "01")])
    assert str(e.value).endswith("no member predicts age_band; add a run trained with `imgcls train --target "
                                 "age_band` (Python: run_train(TrainConfig(target='age_band'))), or a profile run "
                                 "(--heads multi)")


def test_a_python_caller_reads_how_to_split_the_data_as_a_run_split_call():
    """'run `imgcls split`' / 'a splits.csv written by `imgcls split`' / '`imgcls split --test 0.2`' were the fixes
    of data without the split rows a step needs, a command only: each is followed by its run_split call."""
    import pandas as pd
    from imgcls.predict import eval_rows
    from imgcls.train.data import assign_split

    table = pd.DataFrame({"path": ["a.png", "b.png"], "label": ["x", "y"], "split": ["train", "val"]})
    with pytest.raises(UserError) as e:
        assign_split(table.drop(columns="split"), None, 0.0, 0)
    assert str(e.value) == ("the data has no `split` column and --val-split is 0; pass --val-split 0.2, or split the "
                            "data first: `imgcls split` (Python: run_split())")
    with pytest.raises(UserError) as e:
        eval_rows(table.drop(columns="split"), "val")
    assert str(e.value).endswith("pass a splits.csv written by `imgcls split` (Python: run_split()), or --eval-split "
                                 "all")
    with pytest.raises(UserError) as e:
        eval_rows(table, "test")
    assert ("needs them held out before training: `imgcls split --test 0.2` (Python: run_split(cfg=SplitConfig("
            "test=0.2))), then train on that table; or --eval-split all scores every row") in str(e.value)


def test_a_python_caller_reads_how_to_resume_on_its_data_and_retrain_a_trial_from_python(tmp_path, monkeypatch):
    """'imgcls train DATA --resume RUN' (a resumed run's data, given again) and 'imgcls train --config
    TRIAL/config.yaml --out outputs/runs --name TRIAL' (a trial whose checkpoints tune --keep deleted) were a
    library error's fixes as commands only: each is followed by its run_train call."""
    import pandas as pd
    from imgcls.train import TrainConfig
    from imgcls.train.rundir import check_resume_data, check_resume_src, deleted_by_tune, resume_fix

    assert resume_fix("outputs/runs/r", "/d/my splits.csv") == (
        "imgcls train '/d/my splits.csv' --resume outputs/runs/r (Python: run_train(TrainConfig(src='/d/my "
        "splits.csv'), resume='outputs/runs/r'))")
    proj, other = tmp_path / "proj", tmp_path / "other"
    run = proj / "outputs" / "runs" / "r"
    run.mkdir(parents=True)
    other.mkdir()
    record = TrainConfig(src="data/splits.csv", out="outputs/runs", name="r")
    record.save(run / "config.yaml")
    monkeypatch.chdir(other)          # a relative recorded src read from elsewhere: cd there, or its absolute path
    data = proj / "data" / "splits.csv"
    with pytest.raises(UserError) as e:
        check_resume_src(run, "data/splits.csv", record)
    assert str(e.value).endswith(f"give its data's absolute path: imgcls train {data} --resume {run} (Python: "
                                 f"run_train(TrainConfig(src='{data}'), resume='{run}'))")
    pd.DataFrame({"path": ["a.png"], "root": [str(proj)]}).to_csv(run / "val_predictions.csv", index=False)
    df = pd.DataFrame({"path": ["b.png"], "root": [str(other)]})
    with pytest.raises(UserError) as e:      # data given again that is not the run's
        check_resume_data(run, df, str(other / "splits.csv"), record)
    assert str(e.value).endswith(f"run from the folder it was trained from, or pass the data it was trained on "
                                 f"again: imgcls train DATA --resume {run} (Python: run_train(TrainConfig("
                                 f"src='DATA'), resume='{run}'))")
    trial = tmp_path / "study" / "trial_0001"
    trial.mkdir(parents=True)
    (trial.parent / "trials.csv").write_text("trial,checkpoints\n1,removed (--keep best-1)\n")
    assert deleted_by_tune(trial).endswith(
        f"or retrain it: imgcls train --config {trial / 'config.yaml'} --out outputs/runs --name trial_0001 (Python: "
        f"run_train(TrainConfig.resolve({{'out': 'outputs/runs', 'name': 'trial_0001'}}, config='"
        f"{trial / 'config.yaml'}')))")


def test_a_python_caller_of_run_runs_reads_its_usage_as_a_run_runs_call(tmp_path):
    """run_runs' refusals of its paths gave the command's usage only ('imgcls runs diff outputs/runs/A
    outputs/runs/B', 'e.g. imgcls runs outputs'): each is followed by its run_runs call."""
    from imgcls.runs import run_runs
    with pytest.raises(UserError) as e:
        run_runs("diff", [tmp_path])
    assert str(e.value) == ("runs diff takes two run folders: imgcls runs diff outputs/runs/A outputs/runs/B (Python: "
                            "run_runs('diff', ['outputs/runs/A', 'outputs/runs/B']))")
    with pytest.raises(UserError) as e:
        run_runs("table", [tmp_path, tmp_path])
    assert str(e.value).endswith("; e.g. imgcls runs outputs (Python: run_runs('table', ['outputs']))")


def test_a_python_caller_reads_how_to_finish_an_interrupted_preprocess_from_python(tmp_path):
    """A folder where a preprocess run did not finish, given as data, said "run the same imgcls preprocess command
    again to finish it": run_preprocess's caller ran no command; the fix names the same run_preprocess call too."""
    from imgcls.outputs import PREPROCESS_JOURNAL, refuse_output_as_data
    (tmp_path / PREPROCESS_JOURNAL).write_text("")
    with pytest.raises(UserError) as e:
        refuse_output_as_data(tmp_path)
    assert str(e.value).endswith("; run the same imgcls preprocess command again (Python: the same run_preprocess "
                                 "call) to finish it (the images it finished are kept)")


def test_a_python_caller_of_run_predict_without_a_run_reads_run_train(tmp_path):
    """run_predict() with no run trained yet said "train first (imgcls train) or pass a run folder": the command
    names its run_train call too."""
    from imgcls.predict import locate_source
    with pytest.raises(UserError) as e:
        locate_source(None, tmp_path / "runs", tmp_path / "ensembles")
    assert str(e.value).endswith("; train first with imgcls train (Python: run_train(TrainConfig())), or pass a run "
                                 "folder")


def test_a_python_caller_of_run_tune_reads_how_to_retrain_the_best_trial_from_python(tmp_path):
    """run_tune's closing line (and report.html) said the best trial's figures come from "imgcls train --config
    STUDY/best_config.yaml": the command names its run_train call too."""
    from imgcls.tune import TuneConfig
    from imgcls.tune.report import trial_figures
    best = tmp_path / "best_config.yaml"
    best.write_text("{}")
    assert trial_figures(TuneConfig(), tmp_path).endswith(
        f"; the best trial's: imgcls train --config {best} (Python: run_train(TrainConfig.resolve(config='{best}')))")


def test_a_python_caller_reads_a_no_flag_fix_as_its_keyword(monkeypatch):
    """A fix that is a --no-X flag ('--no-pretrained to train from random init on purpose', '--no-near-dup') names a
    keyword of another word (pretrained=False, near_dup=False): the Python form follows it."""
    import numpy as np
    from imgcls import weights
    from imgcls.split.assign import _sgkf
    monkeypatch.setattr(weights, "hub_cached_file", lambda name: None)
    monkeypatch.setattr(weights, "hub_reachable", lambda *a, **k: False)
    with pytest.raises(UserError) as e:
        weights.resolve_weights("resnet18")
    assert str(e.value).endswith(", or --no-pretrained (Python: pretrained=False) to train from random init on "
                                 "purpose")
    with pytest.raises(UserError) as e:
        _sgkf(np.array(["u", "u", "v"]), np.array(["a", "a", "a"]), 5, 0)
    assert str(e.value).endswith("or check --group-col and the near-duplicate definition: --dup-method, "
                                 "--dup-threshold, or --no-near-dup (Python: dup_method, dup_threshold, or "
                                 "near_dup=False)")


def test_a_python_caller_reads_where_a_runs_honest_score_is_as_run_runs(tmp_path):
    """predict's warning that the data is a run's training data named the honest score's place as "`imgcls runs`"
    alone: it is runs_config.RUNS_TABLE, the command and its run_runs() call."""
    from conftest import make_tiny_run
    from imgcls.predict import _member_honest_score
    rows = [(str(tmp_path / "data"), f"{c}/{i}.png", c) for i, c in enumerate("abc" * 4)]
    run = make_tiny_run(tmp_path / "r", val_rows=rows)
    assert _member_honest_score(run, []).endswith(f"({run}/val_predictions.csv; `imgcls runs` (Python: "
                                                  f"imgcls.runs.run_runs()) shows it)")


def test_a_python_caller_of_build_ensemble_reads_how_to_predict_from_python(tmp_path, monkeypatch):
    """build_ensemble's closing line said "(use: imgcls predict OUT)", and a profile ensemble's "(use: imgcls predict
    OUT --format mask)": commands only. Each names its run_predict call too (outputs.predict_fix, fmt='mask')."""
    from conftest import make_tiny_run
    from imgcls.ensemble import build, build_ensemble, profile
    said = []
    monkeypatch.setattr(build, "info", said.append)
    monkeypatch.setattr(profile, "info", said.append)
    rows = [("/d", f"img{k}.jpg", c) for k, c in enumerate("abca")]
    runs = [make_tiny_run(tmp_path / "runs" / n, seed=k, val_rows=rows) for k, n in enumerate(("one", "two"))]
    out = tmp_path / "my ens"
    build_ensemble(runs, out=out)
    assert said[-1].endswith(f"(use: imgcls predict '{out}' (Python: run_predict('{out}')))")
    attrs = []
    for k, (target, classes) in enumerate((("mask", "012"), ("gender", "01"), ("age_band", "012"))):
        vr = [(d, n, classes[k % len(classes)]) for k, (d, n, _) in enumerate(rows)]
        attrs.append(make_tiny_run(tmp_path / "runs" / target, classes=tuple(classes), target=target, seed=k,
                                   val_rows=vr))
    out = tmp_path / "profile"
    build_ensemble(attrs, out=out, combine="profile")
    assert said[-1].endswith(f"(use: imgcls predict {out} --format mask (Python: run_predict('{out}', fmt='mask')))")


def test_a_dataframe_given_as_a_step_s_input_is_one_line_naming_it(tmp_path):
    """run_eda / run_clean / run_preprocess / run_split(df), run_train(TrainConfig(src=df)) and
    run_tune(TuneConfig(train=TrainConfig(src=df))) (a notebook's DataFrame where the data's path goes) failed
    inside pathlib (`expected str, bytes or os.PathLike object`) or pandas (`The truth value of a DataFrame is
    ambiguous`): one TypeError naming the argument, as run_predict's."""
    import pandas as pd
    from imgcls.clean import run_clean
    from imgcls.eda import run_eda
    from imgcls.preprocess import run_preprocess
    from imgcls.split import run_split
    from imgcls.train import run_train
    from imgcls.tune import TuneConfig, run_tune
    df = pd.DataFrame({"path": ["a.png"], "label": ["a"]})
    out = tmp_path / "out"
    what = "src must be a path to a dataset folder or a manifest CSV (got a DataFrame)"
    for step, call in [("run_eda", lambda: run_eda(df, out)), ("run_clean", lambda: run_clean(df, out)),
                       ("run_preprocess", lambda: run_preprocess(df, out)), ("run_split", lambda: run_split(df, out)),
                       ("TrainConfig", lambda: run_train(TrainConfig(src=df, out=str(out)))),
                       ("TrainConfig", lambda: run_tune(TuneConfig(train=TrainConfig(src=df), out=str(out),
                                                                   study="s")))]:
        with pytest.raises(TypeError, match=re.escape(f"{step}'s {what}") + "$"):
            call()
    assert not out.exists()


def test_a_dataframe_given_to_run_predict_and_an_unknown_checkpoint_name_are_one_line_each(tmp_path):
    """run_predict(df, ...) / run_predict(run, df) (a notebook's DataFrame where a path goes) failed with pathlib's
    `TypeError: expected str, bytes or os.PathLike object, not DataFrame`, not naming the argument;
    find_checkpoints(run, which='x') raised a bare KeyError: 'x'. Each is one line naming what to pass."""
    import pandas as pd
    from imgcls.predict import run_predict
    from imgcls.train.rundir import find_checkpoints
    df = pd.DataFrame({"path": ["a.png"]})
    out = tmp_path / "out"
    cases = [
        (lambda: run_predict(tmp_path, df, out=out),
         "run_predict's data must be a path to the test data: a folder of images, a CSV or a manifest (got a "
         "DataFrame)"),
        (lambda: run_predict(df, tmp_path, out=out),
         "run_predict's source must be a path to a run or ensemble folder, a checkpoint or a spec.yaml, or an "
         "EnsembleSpec (got a DataFrame)"),
        (lambda: run_predict(tmp_path, tmp_path, out=out, sample_submission=df),
         "run_predict's sample_submission must be a path to a CSV (got a DataFrame)"),
        (lambda: run_predict(tmp_path, tmp_path, out=df), "run_predict's out must be a path to a folder (got a "
                                                          "DataFrame)"),
    ]
    for call, msg in cases:
        with pytest.raises(TypeError, match=re.escape(msg) + "$"):
            call()
    assert not out.exists()
    with pytest.raises(ValueError, match=re.escape("find_checkpoints' which must be one of: best, last (got 'x')")):
        find_checkpoints(tmp_path, which="x")


def test_every_step_s_other_path_arguments_of_another_type_are_a_type_error_naming_them(tmp_path):
    """The steps' path arguments other than their input (an out, run_check's file, export_onnx's run,
    build_ensemble's and run_runs' folders) were not checked: a notebook's DataFrame or None there failed inside
    pathlib (`expected str, bytes or os.PathLike object, not NoneType`), naming no argument, where run_predict's
    and every src are one TypeError naming the argument and what to pass."""
    import pandas as pd
    from imgcls.clean import run_clean
    from imgcls.eda import run_eda
    from imgcls.ensemble import build_ensemble
    from imgcls.export import export_onnx
    from imgcls.preprocess import run_preprocess
    from imgcls.runs import run_runs
    from imgcls.split import run_check, run_split
    df = pd.DataFrame({"path": ["a.png"]})
    data, csv = tmp_path / "data", tmp_path / "splits.csv"
    folder = "must be a path to a folder (got a DataFrame)"
    cases = [(lambda: run_eda(data, df), f"run_eda's out {folder}"),
             (lambda: run_clean(data, df), f"run_clean's out {folder}"),
             (lambda: run_preprocess(data, df), f"run_preprocess's out {folder}"),
             (lambda: run_split(data, df), "run_split's out must be a path to a CSV (got a DataFrame)"),
             (lambda: run_check(df), "run_check's file must be a path to a splits CSV (got a DataFrame)"),
             (lambda: run_check(None), "run_check's file must be a path to a splits CSV (got None)"),
             (lambda: run_check(csv, df, fix=True), "run_check's out must be a path to a CSV (got a DataFrame)"),
             (lambda: export_onnx(None),
              "export_onnx's run must be a path to a run folder or a checkpoint (got None)"),
             (lambda: export_onnx(tmp_path, df), f"export_onnx's out {folder}"),
             (lambda: build_ensemble([tmp_path, df]),
              "build_ensemble's runs[1] must be a path to a run folder or a checkpoint (got a DataFrame)"),
             (lambda: build_ensemble([tmp_path, tmp_path], out=df), f"build_ensemble's out {folder}"),
             (lambda: run_runs("diff", [tmp_path, None]),
              "run_runs' paths[1] must be a path to a folder (got None)")]
    for call, msg in cases:
        with pytest.raises(TypeError, match=re.escape(msg) + "$"):
            call()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_python_caller_of_run_runs_reads_a_flag_of_another_action_as_its_first_argument(tmp_path):
    """run_runs with an option of another action said "--csv acts only with imgcls runs [DIR] (the leaderboard), not
    with imgcls runs report; drop --csv": commands and a flag only. A Python caller passes the action as run_runs'
    first argument and the option as a RunsConfig keyword: the Python form follows the CLI's words."""
    from imgcls.runs import RunsConfig, run_runs
    with pytest.raises(UserError) as e:
        run_runs("report", [tmp_path], RunsConfig(csv=str(tmp_path / "x.csv")))
    assert str(e.value) == ("--csv acts only with imgcls runs [DIR] (the leaderboard), not with imgcls runs report; "
                            "drop --csv (Python: csv= acts only with run_runs('table'), not with run_runs('report'); "
                            "drop csv=)")
    with pytest.raises(UserError) as e:
        run_runs("diff", [tmp_path, tmp_path], typed=["sort"])
    assert str(e.value).endswith("(Python: sort= acts only with run_runs('table') or run_runs('report'), not with "
                                 "run_runs('diff'); drop sort=)")



def test_shown_cuts_a_list_to_its_first_names_and_counts_the_rest():
    """One owner of "a, b, c and N more" (outputs', tune's, export's refusals, split's warnings, the classes with no
    validation rows, train's oversampling line, the unreadable images' warning, tune's pruned trials): each wrote it by
    hand, and two said "(+N more)" instead; those two last said where the whole list is (listed_in) in words of
    their own."""
    assert opts.shown(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"
    assert opts.shown(["a", "b", "c"]) == "a, b, c"                      # k or fewer: the whole list, no count
    assert opts.shown(["a"]) == "a"
    assert opts.shown(iter(range(15)), 12) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 3 more"   # any iterable
    assert opts.shown([f"c{i}" for i in range(5)], 4) == "c0, c1, c2, c3 and 1 more"
    assert opts.shown(["a (x, y)", "b (z)", "c"], 2, sep="; ") == "a (x, y); b (z) and 1 more"   # names with commas
    assert opts.shown(["id", "a", "b"], sep=",") == "id,a,b"
    assert opts.shown(range(5), 3, listed_in="trials.csv") == "0, 1, 2 and 2 more (all in trials.csv)"
    assert opts.shown(range(3), 3, listed_in="trials.csv") == "0, 1, 2"     # nothing left out: no place to look


def test_a_list_option_holding_a_blank_item_is_refused_in_one_line_for_every_config():
    """A Python caller's (or a config.yaml's) list with a blank item passed each config's validation: stratify=
    ['label', ' '] was refused only once the data was read, drop_ages=[57, ''] failed with a TypeError,
    head_columns=['mask', ''] and filter=['model=x', ''] were taken. One rule of every list option (options.check)
    refuses it before any work, naming the list without the blank; an empty list stays each option's own."""
    from imgcls.layout_options import LayoutOptions
    from imgcls.runs_config import RunsConfig
    from imgcls.split.config import SplitConfig
    for make, said in (
            (lambda: SplitConfig(stratify=["label", " "]).validate(),
             "--stratify ['label', ' '] holds a blank item; drop it (stratify=['label'])"),
            (lambda: SplitConfig(stratify=("",)).validate(),
             "--stratify ('',) holds a blank item; drop it, or --stratify itself for its default"),
            (lambda: SplitConfig(drop_ages=[57, ""]).validate(),
             "--drop-ages [57, ''] holds a blank item; drop it (drop_ages=[57])"),
            (lambda: TrainConfig(heads="multi", head_columns=["mask", ""]).validate(registry=False),
             "--head-columns ['mask', ''] holds a blank item; drop it (head_columns=['mask'])"),
            # one weight per head: a blank is a missing weight (dropping it, the count no longer matched the heads)
            (lambda: TrainConfig(heads="multi", head_weights=[1, "", 1]).validate(registry=False),
             "--head-weights [1, '', 1] holds a blank item; give a weight in its place (one per head)"),
            (lambda: opts.check(LayoutOptions(age_bands=[30, " "])),
             "--age-bands [30, ' '] holds a blank item; drop it (age_bands=[30])"),
            # a list that checks its items itself names the blank in its own words: --filter's syntax, the choices
            (lambda: opts.check(RunsConfig(filter=["model=x", ""])),
             "--filter '': write COLUMN=VALUE (also !=, >, <, >=, <=, ~ for 'contains'), e.g. "
             "--filter model=resnet10t"),
            (lambda: TrainConfig(tracker=["mlflow", " "]).validate(registry=False),
             "unknown --tracker ' '; use one of: tensorboard, mlflow, wandb, none")):
        with pytest.raises(UserError) as e:
            make()
        assert str(e.value) == said
    # an empty list means something where it is taken: no stratification, no age left out, every head weighs 1
    SplitConfig(stratify=(), drop_ages=[]).validate()
    TrainConfig(heads="multi", head_weights=[], tracker=[]).validate(registry=False)
    opts.check(RunsConfig(filter=[]))


def test_head_weights_that_train_no_loss_are_refused_in_one_line(tmp_path):
    """--head-weights nan,-1,inf was taken from the command line and from Python: the multi-head loss is each head's
    loss times its weight, summed, so such a run trained a NaN loss (nan, inf), one that training pushed up (a
    negative weight) or none (every weight 0). --head-weights' validator refuses them before any work; 0 for some
    heads stays taken."""
    r = runner.invoke(app, ["train", str(tmp_path / "nosuch.csv"), "--heads", "multi", "--head-weights", "nan,-1,inf"])
    assert r.exit_code == 2 and r.output.strip() == "error: --head-weights holds nan: each weight must be a finite " \
                                                    "number >= 0 (one per head), e.g. 1,1,2", r.output
    for weights, said in (([1, -1, 1], "holds -1.0: each weight must be a finite number >= 0"),
                          ([1, 1, float("inf")], "holds inf: each weight"),
                          ([np.float32("-inf"), 1, 1], "holds -inf: each weight"),
                          ([0, 0.0, 0], "--head-weights weighs every head 0, so no head would learn; give one "
                                        "weight > 0 at least")):
        with pytest.raises(UserError, match=re.escape(said)):
            TrainConfig(heads="multi", head_weights=weights).validate(registry=False)
    TrainConfig(heads="multi", head_weights=[0, 1, 2.5]).validate(registry=False)


def test_head_weights_past_a_floats_range_or_as_a_numpy_array_are_one_line_or_taken():
    """head_weights=[1, 10**400, 1] failed with math.isfinite's OverflowError traceback, np.array([1., 1., 2.]) with
    numpy's ValueError at `if weights` (the truth of an array). The first is refused in one line; a numpy array is
    checked and stored as the plain list it holds (options.plain_value), as a numpy number is, for any list option:
    config.yaml's yaml.safe_dump refuses an array."""
    from imgcls.split.config import SplitConfig
    for weights in ([1, 10**400, 1], [1, -(10**400), 1]):
        with pytest.raises(UserError) as e:
            TrainConfig(heads="multi", head_weights=weights).validate(registry=False)
        assert str(e.value) == ("--head-weights holds a number past a float's range: each weight must be a finite "
                                "number >= 0 (one per head), e.g. 1,1,2")
    cfg = TrainConfig(heads="multi", head_weights=np.array([1., 1., 2.]))
    cfg.validate(registry=False)
    assert cfg.head_weights == [1.0, 1.0, 2.0] and type(cfg.head_weights) is list
    for weights, said in ((np.array([1., 1.]), "--head-weights has 2 values for 3 heads"),
                          (np.array([0., 0., 0.]), "--head-weights weighs every head 0"),
                          (np.array([1., np.nan, 1.]), "--head-weights holds nan: each weight")):
        with pytest.raises(UserError, match=re.escape(said)):
            TrainConfig(heads="multi", head_weights=weights).validate(registry=False)
    cfg = SplitConfig(age_bands=np.array([30, 60]))
    cfg.validate()
    assert cfg.age_bands == [30, 60] and type(cfg.age_bands[0]) is int
    with pytest.raises(UserError, match=re.escape("--drop-ages ['57'] holds '57', not a whole number")):
        SplitConfig(drop_ages=np.array(["57"])).validate()


def test_an_object_numpy_array_s_items_are_made_plain_as_a_list_s_are():
    """options.plain_value listed a numpy array (tolist) but left an object-dtype array's items numpy's:
    age_bands=np.array([np.str_('30'), np.str_('60')], dtype=object) was refused as "holds np.str_('30')", not as
    the plain list ['30', '60'] is, and np.array([np.int64(30), np.int64(60)], dtype=object) was kept as numpy
    numbers (config.yaml's yaml.safe_dump refuses them). Each item is made plain: the same call as the list's."""
    from imgcls.options import plain_value
    from imgcls.split.config import SplitConfig
    assert plain_value(np.array([np.int64(30), np.float64(2.5), np.bool_(True)], dtype=object)) == [30, 2.5, True]
    assert [type(v) for v in plain_value(np.array([np.int64(30), np.float64(2.5)], dtype=object))] == [int, float]
    texts = np.array([np.str_("30"), np.str_("60")], dtype=object)
    assert plain_value(texts) == ["30", "60"] and type(plain_value(texts)[0]) is str
    for bands in (["30", "60"], texts):
        with pytest.raises(UserError) as e:
            SplitConfig(age_bands=bands).validate()
        assert str(e.value) == "--age-bands ['30', '60'] holds '30', not a whole number; give age_bands=[30, 60]"
    cfg = SplitConfig(age_bands=np.array([np.int64(30), np.int64(60)], dtype=object))
    cfg.validate()
    assert cfg.age_bands == [30, 60] and [type(v) for v in cfg.age_bands] == [int, int]


def test_a_list_option_item_of_the_wrong_type_is_refused_in_one_line_for_every_config():
    """A Python caller's (or a config.yaml's) list items were checked only for blanks: drop_ages=['57', 'x'] dropped
    no one, silently (no age is a text), head_weights=[1.0, None, 1] was taken (only a count mismatch was refused,
    not naming the None). Each list option declares its item type (Sequence[int], list[float], list[str]) and one
    rule of options.check refuses a wrong item before any work, naming the option, the item and the fix: the list
    as the command line would read it where each item reads so. A text for a number is refused, as --epochs '5' is;
    a numpy number is the plain one it is."""
    from imgcls.layout_options import LayoutOptions
    from imgcls.runs_config import RunsConfig
    from imgcls.split.config import SplitConfig
    with pytest.raises(UserError, match=re.escape("--epochs must be a whole number >= 1 (got '5'); give epochs=5")):
        TrainConfig(epochs="5").validate(registry=False)
    for make, said in (
            (lambda: SplitConfig(drop_ages=["57", "x"]).validate(),
             "--drop-ages ['57', 'x'] holds '57', not a whole number; give each item as a whole number"),
            (lambda: SplitConfig(drop_ages=["57", 58]).validate(),
             "--drop-ages ['57', 58] holds '57', not a whole number; give drop_ages=[57, 58]"),
            (lambda: SplitConfig(drop_ages=[True]).validate(),
             "--drop-ages [True] holds True, not a whole number; give each item as a whole number"),
            (lambda: SplitConfig(age_bands=[30.0, 60.0]).validate(),
             "--age-bands [30.0, 60.0] holds 30.0, not a whole number; give age_bands=[30, 60]"),
            (lambda: SplitConfig(relabel_age=(29, "59")).validate(),
             "--relabel-age (29, '59') holds '59', not a whole number; give relabel_age=(29, 59)"),
            (lambda: SplitConfig(stratify=["label", 1]).validate(),
             "--stratify ['label', 1] holds 1, not a string; give each item as a string"),
            (lambda: TrainConfig(heads="multi", head_weights=[1.0, None, 1]).validate(registry=False),
             "--head-weights [1.0, None, 1] holds None, not a number; give each item as a number"),
            (lambda: TrainConfig(heads="multi", head_weights=[1, "2", 1]).validate(registry=False),
             "--head-weights [1, '2', 1] holds '2', not a number; give head_weights=[1, 2.0, 1]"),
            (lambda: TrainConfig(heads="multi", head_columns=["mask", 3]).validate(registry=False),
             "--head-columns ['mask', 3] holds 3, not a string; give each item as a string"),
            (lambda: opts.check(LayoutOptions(age_bands=[30, "60"])),
             "--age-bands [30, '60'] holds '60', not a whole number; give age_bands=[30, 60]"),
            (lambda: opts.check(RunsConfig(filter=["model=x", None])),
             "--filter ['model=x', None] holds None, not a string; give each item as a string")):
        with pytest.raises(UserError) as e:
            make()
        assert str(e.value) == said
    # a choice list's items are its choices' (one line naming the unknown one)
    with pytest.raises(UserError, match=re.escape("unknown --tracker '1'; use one of")):
        TrainConfig(tracker=[1]).validate(registry=False)
    # numpy numbers are the plain numbers they are; a whole number is a number
    cfg = SplitConfig(drop_ages=[np.int64(57), 58], age_bands=(np.int32(30), 60))
    cfg.validate()
    assert cfg.drop_ages == [57, 58] and type(cfg.drop_ages[0]) is int
    TrainConfig(heads="multi", head_weights=[np.float32(1), np.int64(2), 1]).validate(registry=False)
    # every list option of every config declares its item type (a new one cannot go unchecked)
    for cls in (SplitConfig, TrainConfig, RunsConfig, LayoutOptions):
        lists = [n for n in opts.specs(cls) if opts._kind(cls, n) == "list"]
        assert lists and all(opts._item_type(cls, n) in (int, float, str) for n in lists), (cls, lists)


def test_a_scalar_option_of_the_wrong_type_is_refused_in_one_line_for_every_config(tmp_path):
    """A scalar option's type was checked only where it declared a range (a number) or choices: pretrained='no'
    and ood='false' were taken as true, silently, ema=1 kept as 1, model=3 taken, tta=2 and keep=3 failed later
    with a traceback, ood_threshold='0.5' was taken as a text. One rule of options.check refuses a value of another type
    than the field declares (int, float, bool, str), as the list items' rule does, naming the option, the value and
    the fix: the value as the command line would read it, where it reads so. What is taken on purpose stays
    taken: a numpy number or bool (stored plain), a pathlib.Path for a path, None where the type has it, what a
    declared validator reads (an --oversample target 30, --folds 0, a --timeout of 3600 seconds)."""
    from imgcls.clean.config import CleanConfig
    from imgcls.eda_config import EdaConfig
    from imgcls.ensemble.config import EnsembleConfig
    from imgcls.export import ExportConfig
    from imgcls.layout_options import LayoutOptions
    from imgcls.predict_config import PredictConfig
    from imgcls.preprocess.config import PreprocessConfig
    from imgcls.runs_config import RunsConfig
    from imgcls.split.config import SplitConfig
    from imgcls.tune import TuneConfig
    for make, said in (
            (lambda: TrainConfig(pretrained="no"), "--pretrained must be True or False (got 'no'); give "
                                                   "pretrained=False"),
            (lambda: TrainConfig(ema=1), "--ema must be True or False (got 1); give ema=True"),
            (lambda: TrainConfig(amp="x"), "--amp must be True or False (got 'x')"),
            (lambda: CleanConfig(ood="false"), "--ood must be True or False (got 'false'); give ood=False"),
            (lambda: TrainConfig(model=3), "--model must be a string (got 3)"),
            (lambda: TrainConfig(out=5), "--out must be a string (got 5)"),
            (lambda: PredictConfig(tta=2), "--tta must be a string (got 2)"),
            (lambda: LayoutOptions(label_col=["label"]), "--label-col must be a string (got ['label'])"),
            (lambda: CleanConfig(ood_threshold="0.5"), "--ood-threshold must be a number (got '0.5'); give "
                                                       "ood_threshold=0.5"),
            (lambda: TrainConfig(lr=True), "--lr must be a number >= 0 (got True)"),
            (lambda: TrainConfig(epochs="5"), "--epochs must be a whole number >= 1 (got '5'); give epochs=5"),
            (lambda: TrainConfig(epochs=2.0), "--epochs must be a whole number >= 1 (got 2.0); give epochs=2"),
            (lambda: ExportConfig(opset="17"), "--opset must be a whole number between 7 and 20 (got '17'); give "
                                               "opset=17"),
            # a flag of another word than its keyword: the fix gives the keyword, said once
            (lambda: EdaConfig(samples_per_class="4"), "--samples must be a whole number >= 1 (got '4'); give "
                                                       "samples_per_class=4"),
            (lambda: TuneConfig(study="s", keep=3), "--keep must be a string (got 3)")):
        with pytest.raises(UserError) as e:
            opts.check(make())
        assert str(e.value) == said
    # taken on purpose: numpy values (stored plain), a path, None where the type has it, a validator's own values
    cfg = TrainConfig(hflip=np.bool_(False), seed=np.int64(3), lr=np.float32(0.5), amp=None, out=tmp_path,
                      oversample=30, folds=0)
    cfg.validate(registry=False)
    assert (cfg.hflip, cfg.seed, cfg.out, cfg.oversample) == (False, 3, str(tmp_path), 30)
    for cfg in (SplitConfig(cache_dir=tmp_path), CleanConfig(cache_dir=tmp_path, ood_threshold=1), EdaConfig(
            test=tmp_path), PreprocessConfig(oversample=20), PredictConfig(sample_submission=tmp_path),
            EnsembleConfig(), ExportConfig(atol=1), RunsConfig(csv=tmp_path / "t.csv"),
            LayoutOptions(csv=tmp_path / "a.csv"), TuneConfig(study="s", timeout=3600, out=tmp_path)):
        opts.check(cfg)
    # every field of every config declares a type the rule checks: a new one cannot go unchecked
    for cls in (TrainConfig, SplitConfig, CleanConfig, EdaConfig, PreprocessConfig, PredictConfig, EnsembleConfig,
                TuneConfig, RunsConfig, ExportConfig, LayoutOptions):
        unchecked = [n for n in opts.specs(cls) if opts._kind(cls, n) is None]
        assert unchecked == {SplitConfig: ["extra"], TuneConfig: ["train", "typed", "search_typed"]}.get(cls, []), \
            (cls, unchecked)


def test_a_bool_options_text_is_read_by_the_one_truth_table_of_parse_bool():
    """A text given to a bool option was read by click's truth table (imported from a package imgcls does not
    declare), which takes 'on' / 'off' and refuses '1.0', where a manifest's bool cell (manifest.parse_bool) and a
    runs --filter value read the one truth table (options.truth): the fix a refusal offers is the value parse_bool
    reads, and none where parse_bool reads none."""
    from imgcls.manifest import parse_bool
    for word in (*opts.TRUE_WORDS, *opts.FALSE_WORDS, " YES ", "F", "on", "off", "2"):
        try:
            read = parse_bool(word)
        except ValueError:
            read = None
        with pytest.raises(UserError) as e:
            opts.check(TrainConfig(pretrained=word))
        fix = f"; give pretrained={read}" if read is not None else ""
        assert str(e.value) == f"--pretrained must be True or False (got {word!r}){fix}"


def test_a_number_for_a_text_option_is_refused_with_no_fix_the_option_would_refuse():
    """A number given to a text option (a scalar or a list's item) was refused with its str() as the fix: "--tta
    must be a string (got 2); give tta='2'", which parse_tta then refused (unknown --tta '2'); keep=3, bg_color=0,
    filter=[1] the same. A text's refusal now offers no quoted number: it says what the option takes."""
    from imgcls.predict_config import PredictConfig
    from imgcls.preprocess.config import PreprocessConfig
    from imgcls.runs_config import RunsConfig
    from imgcls.tune import TuneConfig
    for make, said in (
            (lambda: PredictConfig(tta=2), "--tta must be a string (got 2)"),
            (lambda: TuneConfig(study="s", keep=3), "--keep must be a string (got 3)"),
            (lambda: PreprocessConfig(bg_color=0), "--bg-color must be a string (got 0)"),
            (lambda: RunsConfig(filter=[1]), "--filter [1] holds 1, not a string; give each item as a string")):
        with pytest.raises(UserError) as e:
            opts.check(make())
        assert str(e.value) == said


def test_a_blank_head_weight_between_commas_on_the_command_line_is_a_missing_weight():
    """--head-weights 1,,1: list_items dropped the blank, so train said "has 2 values for 3 heads", where Python's
    [1, '', 1] is told the declaration's blank_fix. The command line's empty item between commas is refused with it
    too, before the count; a text naming no weight stays list_items' line."""
    for typed, said in (("1,,1", "error: --head-weights '1,,1' holds a blank item; give a weight in its place (one "
                                 "per head)"),
                        ("1, ,2,3", "error: --head-weights '1, ,2,3' holds a blank item; give a weight in its place "
                                    "(one per head)"),
                        (",,", "error: --head-weights ',,' names no weight")):
        r = runner.invoke(app, ["train", SAMPLE, "--heads", "multi", "--head-weights", typed])
        assert r.exit_code == 2 and r.output.strip().startswith(said), r.output


def test_a_config_files_value_of_the_wrong_type_is_refused_by_the_options_rule_naming_the_file(tmp_path):
    """TrainConfig.from_dict had its own type table, checking only where the default is a bool, a str or a list: a
    --config file's `pretrained: 'no'` got its line naming the file, `name: 2024` options' line without it (from
    validate). from_dict now asks options' type rule (check_type) inside load's try: one rule, the file named."""
    for text, said in (("name: 2024\n", "--name must be a string (got 2024)"),
                       ("pretrained: 'no'\n", "--pretrained must be True or False (got 'no'); give pretrained=False"),
                       ("epochs: '5'\n", "--epochs must be a whole number >= 1 (got '5'); give epochs=5")):
        config = tmp_path / "c.yaml"
        config.write_text(text)
        r = runner.invoke(app, ["train", SAMPLE, "--config", str(config)])
        assert r.exit_code == 2 and r.output.strip() == f"error: {config}: {said}", r.output
