"""Which commands run under torchrun: train and clean share their work among its processes (test_train_ddp.py,
test_clean_ddp.py); every other command line runs as one process and refuses torchrun in one line before any work
(console.refuse_torchrun, cli.common.command), tune from its library entry too (both with tune's own reason); the
other library entries run in whichever processes a torchrun script calls them. torchrun's variables are set in this
process (monkeypatch), as torchrun sets them in each of its processes before they start; one real launch for tune."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import assert_said_once_per_machine, make_image_folder, run_launch, torchrun
from imgcls.cli import app
from imgcls.errors import UserError


def as_rank(monkeypatch, rank: int, world: int = 2) -> None:
    """This process as torchrun's process `rank` of `world`, on one machine."""
    for k, v in {"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank)}.items():
        monkeypatch.setenv(k, v)


def refusal(monkeypatch, call: list[str]) -> str:
    """The line rank 0 says for `call` under a two-process torchrun (exit 2, one line)."""
    as_rank(monkeypatch, 0)
    r = CliRunner().invoke(app, call)
    assert r.exit_code == 2 and r.output.count("error:") == 1, (call, r.output)
    return " ".join(r.output.split())


@pytest.mark.timeout(60)
def test_tune_refuses_torchrun_before_any_work(tmp_path, monkeypatch):
    """Each torchrun process joined the study as an Optuna worker, and the trials they drew (other options, other
    folders) called run_train together: one DDP group of two different runs. The data is not even read first."""
    from imgcls.train import TrainConfig
    from imgcls.tune import TuneConfig, run_tune
    as_rank(monkeypatch, 1)
    cfg = TuneConfig(study="s", out=str(tmp_path / "tune"), train=TrainConfig(src=str(tmp_path / "missing")))
    with pytest.raises(UserError) as e:
        run_tune(cfg)
    said = str(e.value)
    assert said.startswith("imgcls tune does not run under torchrun (") and "one DDP run" in said, said
    assert "--storage" in said and "--device cuda:N" in said and "(Python: run_tune in several processes" in said
    assert e.value.said_elsewhere             # LOCAL_RANK 1: the first process of the machine says it
    assert not (tmp_path / "tune").exists()
    monkeypatch.setenv("WORLD_SIZE", "1")     # one process: the data's own error, as before
    with pytest.raises(UserError, match="missing"):
        run_tune(cfg)


@pytest.mark.timeout(60)
def test_tune_cli_refusal_is_said_once_per_machine(tmp_path, monkeypatch):
    call = ["tune", str(tmp_path / "missing"), "--study", "s", "--out", str(tmp_path / "tune")]
    assert_said_once_per_machine(monkeypatch, [call])
    said = refusal(monkeypatch, call)
    assert "imgcls tune does not run under torchrun" in said and "--storage" in said, said
    assert not (tmp_path / "tune").exists()


@pytest.mark.timeout(60)
def test_tune_cli_refuses_before_reading_its_config(tmp_path, monkeypatch):
    """The command line left tune's refusal to run_tune, after it had read --config: a missing (or wrong) config
    file was said by every torchrun process, and the refusal not at all. It refuses first now, once per machine."""
    call = ["tune", str(tmp_path / "missing"), "--study", "s", "--config", str(tmp_path / "missing.yaml")]
    assert_said_once_per_machine(monkeypatch, [call])
    said = refusal(monkeypatch, call)
    assert said.startswith("error: imgcls tune does not run under torchrun (") and "--storage" in said, said


@pytest.mark.timeout(60)
def test_tune_show_space_refuses_torchrun_said_once_per_machine(monkeypatch):
    """`imgcls tune --show-space` printed the space and returned before run_tune's refusal: under torchrun every
    process printed it. The command line refuses tune before any work, --show-space too, said once per machine; as
    one process it prints the space. --show-space opens no study: its refusal is every one-process command's (each
    process would print it), not tune's study workers and --storage, which gave it a fix of no use."""
    from imgcls.tune.space import default_space_text
    call = ["tune", "--show-space"]
    assert_said_once_per_machine(monkeypatch, [call])
    said = refusal(monkeypatch, call)
    assert said == ("error: imgcls tune --show-space does not run under torchrun (each of its 2 processes would do "
                    "all of the work; only imgcls train and imgcls clean share theirs among them); run it as one "
                    "process: the same imgcls tune --show-space command without torchrun"), said
    monkeypatch.setenv("WORLD_SIZE", "1")
    r = CliRunner().invoke(app, call)
    assert r.exit_code == 0 and r.output == default_space_text()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_torchrun_tune_is_one_line_and_every_process_ends(tmp_path):
    src = make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(16, 16))
    launch, env = torchrun(2, tmp_path)
    r = run_launch(launch + ["-m", "imgcls", "tune", str(src), "--study", "s", "--out", str(tmp_path / "tune"),
                             "--model", "test_resnet", "--no-pretrained", "--device", "cpu", "--trials", "2"],
                   env=env, timeout=150)
    said = r.stdout + r.stderr
    assert r.returncode != 0 and said.count("error:") == 1, said[-3000:]
    assert "error: imgcls tune does not run under torchrun" in said, said[-3000:]
    assert not (tmp_path / "tune").exists()


def one_process_steps(tmp_path):
    """Every command that runs as one process (all but train, clean and tune) with its library entry: (CLI call,
    entry's name, a call of the entry). Nothing it names exists: the refusal comes before any path is read."""
    from imgcls.ensemble import build_ensemble
    from imgcls.eda import run_eda
    from imgcls.export import export_onnx
    from imgcls.predict import run_predict
    from imgcls.preprocess import run_preprocess
    from imgcls.runs import run_runs
    from imgcls.split import run_check, run_split
    from imgcls.weights import fetch_rembg, print_inventory
    missing, out = str(tmp_path / "missing"), str(tmp_path / "out")
    runs = [str(tmp_path / "runs" / "a"), str(tmp_path / "runs" / "b")]
    return [
        ("preprocess", ["preprocess", missing, "--out", out], "run_preprocess", lambda: run_preprocess(missing, out)),
        ("eda", ["eda", missing, "--out", out], "run_eda", lambda: run_eda(missing, out)),
        ("split", ["split", missing, "--out", out + ".csv"], "run_split", lambda: run_split(missing, out + ".csv")),
        ("split", ["split", "--check", missing + ".csv", "--fix"], "run_check",
         lambda: run_check(missing + ".csv", fix=True)),
        ("predict", ["predict", runs[0], "--data", missing, "--out", out], "run_predict",
         lambda: run_predict(runs[0], missing, out)),
        ("export", ["export", runs[0], "--out", out], "export_onnx", lambda: export_onnx(runs[0], out)),
        ("ensemble", ["ensemble", *runs, "--out", out], "build_ensemble", lambda: build_ensemble(runs, out=out)),
        ("runs", ["runs", str(tmp_path / "runs")], "run_runs", lambda: run_runs("table", [tmp_path / "runs"])),
        ("models list", ["models", "list"], "print_inventory", print_inventory),
        ("models fetch", ["models", "fetch", "rembg", "--home", out], "fetch_rembg", lambda: fetch_rembg(out)),
    ]


@pytest.mark.timeout(120)
def test_every_one_process_command_refuses_torchrun_said_once_per_machine(tmp_path, monkeypatch):
    """preprocess, eda, split, predict, export, ensemble, runs and models ran whole in every torchrun process: twice
    the work into the same output (the output folder's lock alone serialised the writes), two sets of lines."""
    steps = one_process_steps(tmp_path)
    assert_said_once_per_machine(monkeypatch, [call for _, call, _, _ in steps])
    for name, call, entry, _ in steps:
        said = refusal(monkeypatch, call)
        assert f"error: imgcls {name} does not run under torchrun (each of its 2 processes would do all" in said, said
        assert said.endswith(f"run it as one process: the same imgcls {name} command without torchrun"), said
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.csv").exists()


@pytest.mark.timeout(120)
def test_a_torchrun_script_s_one_process_steps_run_where_it_calls_them(tmp_path, monkeypatch):
    """The library entries refused torchrun too, so a torchrun script predicting (or exporting, ...) on rank 0 after
    its DDP train was stopped: a script chooses the processes that call a step, the command line cannot. They run
    (here: each says its own error, the missing data), and `models list` prints its table."""
    as_rank(monkeypatch, 0, world=4)
    for name, _, entry, call in one_process_steps(tmp_path):
        if entry == "fetch_rembg":          # it would look for the wheel to fetch from; nothing of torchrun's
            continue
        try:
            call()
        except UserError as e:
            assert "does not run under torchrun" not in str(e), (entry, str(e))
