"""Which commands run under torchrun: train and clean share their work among its processes (test_train_ddp.py,
test_clean_ddp.py); every other one runs as one process and refuses torchrun in one line before any work
(process.refuse_torchrun), from the CLI and from its library entry alike. torchrun's variables are set in this
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
