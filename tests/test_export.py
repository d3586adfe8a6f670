"""imgcls export --onnx: single and multi-branch runs, onnxruntime output equals torch's."""
from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from conftest import make_tiny_run
from imgcls.cli import app

runner = CliRunner()


def test_onnx_export_single_head_matches_torch(tmp_path):
    run = make_tiny_run(tmp_path / "runs" / "single")
    out = tmp_path / "onnx"
    res = runner.invoke(app, ["export", str(run), "--onnx", "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "export.json").read_text())
    rec = summary["files"][0]
    assert rec["parity_ok"] and rec["max_abs_diff"] <= 1e-4 and rec["argmax_agreement"] == 1.0
    # an independent check with a batch size other than the exported one (dynamic batch axis)
    import onnxruntime as ort
    import torch
    from imgcls.train.checkpoint import load_model
    lm = load_model(run / "best.pt")
    x = torch.randn(3, 3, 32, 32)
    got = ort.InferenceSession(rec["onnx"]).run(None, {"input": x.numpy()})[0]
    assert np.abs(got - lm.predict_proba(x).numpy()).max() < 1e-4


def test_export_json_states_the_letterbox_predict_pads_test_images_with(tmp_path):
    """A run trained on images preprocess letterboxed (meta.letterbox): predict pads each test image to a square with
    that colour before the resize; export.json says so (null for a run without one), so a deployment does too."""
    from imgcls.train.checkpoint import read_checkpoint, save_checkpoint
    for name, box in (("boxed", [0, 0, 0]), ("plain", None)):
        run = make_tiny_run(tmp_path / "runs" / name)
        ck = read_checkpoint(run / "best.pt")
        save_checkpoint(run / "best.pt", ck["state_dict"], {**ck["meta"], "letterbox": box}, epoch=1)
        res = runner.invoke(app, ["export", str(run), "--onnx", "--out", str(tmp_path / f"onnx_{name}")])
        assert res.exit_code == 0, res.output
        assert json.loads((tmp_path / f"onnx_{name}" / "export.json").read_text())["letterbox"] == box


def test_onnx_export_multibranch_kfold_decodes_18_classes(tmp_path):
    run = make_tiny_run(tmp_path / "runs" / "multi", multi=True, model="test_resnet", folds=2)
    res = runner.invoke(app, ["export", str(run), "--onnx"])
    assert res.exit_code == 0, res.output
    summary = json.loads((run / "onnx" / "export.json").read_text())
    assert [f["onnx"].rsplit("/", 1)[1] for f in summary["files"]] == ["fold_0_best.onnx", "fold_1_best.onnx"]
    assert all(f["parity_ok"] and f["output"][1] == 18 for f in summary["files"])
    assert summary["classes"] == [str(i) for i in range(18)]


def test_export_needs_a_format_and_a_run(tmp_path):
    res = runner.invoke(app, ["export", str(tmp_path)])
    assert res.exit_code == 2 and "--onnx" in res.output
    res = runner.invoke(app, ["export", str(tmp_path / "nope"), "--onnx"])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_export_without_the_onnx_package_is_one_line(tmp_path, monkeypatch):
    """onnx (torch's exporter writes the file with it) missing: one line naming the package, as for onnxruntime, not
    torch's OnnxExporterError traceback after the model was built; nothing is written."""
    import sys
    run = make_tiny_run(tmp_path / "run")
    for missing in ("onnx", "onnxruntime"):
        monkeypatch.setitem(sys.modules, missing, None)       # `import onnx` raises ImportError
        r = CliRunner().invoke(app, ["export", str(run), "--onnx"])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert f"{missing} is not installed; pip install {missing}" in r.output
        assert not (run / "onnx").exists()
        monkeypatch.delitem(sys.modules, missing)


def test_export_refuses_an_out_holding_another_steps_output(tmp_path):
    """Every writing command refuses an --out holding another step's output (README), export included: `export RUN
    --out data/clean` put best.onnx and export.json among clean's files, `--out RUN2` into another run. One line
    before the model is built; its own earlier export is replaced, and other steps know its folder."""
    from imgcls.outputs import output_step
    run, run2 = make_tiny_run(tmp_path / "r"), make_tiny_run(tmp_path / "r2")
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "clean_summary.json").write_text("{}")
    for out, what in ((clean, "the output of imgcls clean"), (run2, "an imgcls train run")):
        res = runner.invoke(app, ["export", str(run), "--onnx", "--out", str(out)])
        said = " ".join(res.output.split())
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert f"--out {out} holds {what}" in said and "choose another --out" in said, said
        assert not list(out.glob("*.onnx")) and not (out / "export.json").exists()
    assert output_step(run / "onnx") is None
    assert runner.invoke(app, ["export", str(run), "--onnx"]).exit_code == 0
    assert output_step(run / "onnx")[0] == "export"
