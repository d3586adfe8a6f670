"""imgcls export --onnx: single and multi-branch runs, onnxruntime output equals torch's."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
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


def test_a_notebooks_numpy_numbers_export_and_are_recorded_plain(tmp_path):
    """export_onnx(..., batch=np.int64(8)) was refused as no whole number, opset=np.int64(17) and atol=np.float32 as
    no number; each is the number it is, and export.json records them plain (an np.int64 as given was "17").
    batch=2.0 is still no whole number."""
    from imgcls.errors import UserError
    from imgcls.export import export_onnx
    run = make_tiny_run(tmp_path / "runs" / "single")
    summary = export_onnx(run, tmp_path / "onnx", opset=np.int64(17), atol=np.float32(1e-3), batch=np.int64(3),
                          seed=np.int64(1))
    on_disk = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert on_disk["opset"] == 17 and on_disk["atol"] == pytest.approx(1e-3) and on_disk["files"][0]["parity_ok"]
    assert type(summary["opset"]) is int and type(summary["atol"]) is float
    for given in (2.0, np.float64(2.0)):
        with pytest.raises(UserError, match=re.escape(f"batch must be a whole number >= 1 (got {given!r})")):
            export_onnx(run, tmp_path / "onnx2", batch=given)


def test_export_of_a_run_trained_on_another_decoding_says_so(tmp_path):
    """export.json's recipe is this imgcls's decoding (decode.version): a run whose checkpoint records another
    (ModelMeta.decode_version; none recorded: 1) is exported with one line saying its model learnt from other
    pixels; a run of this decoding is exported in silence. export.json recorded only the recipe's version, so the
    file alone could not tell a deployment that its model learnt from another decoding; each file's record now names
    it (trained_decode_version), the recipe's staying predict's."""
    from imgcls.io import DECODE_VERSION
    for name, version, said in (("now", -1, False), ("older", None, True)):
        run = make_tiny_run(tmp_path / "runs" / name, decode_version=version)
        res = runner.invoke(app, ["export", str(run), "--onnx", "--out", str(tmp_path / f"onnx_{name}")])
        text = " ".join(res.output.split())
        assert res.exit_code == 0, res.output
        assert (f"best.pt trained on images decoded as version 1; this imgcls decodes as version {DECODE_VERSION}"
                in text) is said, text
        summary = json.loads((tmp_path / f"onnx_{name}" / "export.json").read_text())
        assert summary["preprocessing"]["decode"]["version"] == DECODE_VERSION
        assert [f["trained_decode_version"] for f in summary["files"]] == [1 if said else DECODE_VERSION]


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



def test_a_plain_run_named_fold_0_exports_best_onnx_as_any_run(tmp_path):
    """_onnx_name took any fold_<k> folder's checkpoint for a k-fold set's fold: a plain run trained with
    `--name fold_0` into another run's folder exported fold_0_best.onnx, where every other run exports best.onnx.
    A fold is one of a set by run_names.fold_set (its set's config.yaml records --folds), whose folds keep theirs."""
    run = make_tiny_run(make_tiny_run(tmp_path / "runs" / "A") / "fold_0")
    res = runner.invoke(app, ["export", str(run), "--onnx"])
    assert res.exit_code == 0, res.output
    summary = json.loads((run / "onnx" / "export.json").read_text())
    assert [f["onnx"].rsplit("/", 1)[1] for f in summary["files"]] == ["best.onnx"]
    kf = make_tiny_run(tmp_path / "runs" / "kf", folds=2)
    res = runner.invoke(app, ["export", str(kf / "fold_1"), "--onnx"])
    assert res.exit_code == 0, res.output
    assert (kf / "fold_1" / "onnx" / "fold_1_best.onnx").is_file()

def test_export_json_names_the_run_and_files_absolute(tmp_path, monkeypatch):
    """`imgcls export runs/kf/fold_1 --out x` recorded "run": "runs/kf/fold_1" (and each file's onnx / checkpoint)
    relative to the folder export ran from, which means nothing to a reader of x/export.json elsewhere; they are
    absolute, as train's config.yaml records its paths."""
    run = make_tiny_run(tmp_path / "runs" / "one")
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["export", "runs/one", "--out", "x", "-q"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "x" / "export.json").read_text())
    assert summary["run"] == str(run)
    assert [(f["onnx"], f["checkpoint"]) for f in summary["files"]] == [(str(tmp_path / "x" / "best.onnx"),
                                                                         str(run / "best.pt"))]


def test_export_without_onnx_exports_onnx_and_needs_a_run(tmp_path):
    """ONNX is the only format: `imgcls export RUN` exports it, as with --onnx, rather than stopping with "choose an
    export format: --onnx", a choice of one; a missing run is said with or without the flag."""
    run = make_tiny_run(tmp_path / "run")
    res = runner.invoke(app, ["export", str(run), "-q"])
    assert res.exit_code == 0, res.output
    assert (run / "onnx" / "best.onnx").is_file()
    assert json.loads((run / "onnx" / "export.json").read_text())["files"][0]["parity_ok"]
    for flags in ([], ["--onnx"]):
        res = runner.invoke(app, ["export", str(tmp_path / "nope"), *flags])
        assert res.exit_code == 2 and "does not exist" in res.output, res.output


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


def test_an_export_over_an_earlier_one_removes_the_onnx_files_it_no_longer_writes(tmp_path):
    """An export into a folder holding an earlier export replaced its export.json and the files of the same names,
    and left the others: best.onnx of `export RUN/best.pt` stayed beside the export.json of `export RUN/last.pt`,
    which names last.onnx only, read by a deployment as this export's. The earlier export's files (those its
    export.json names) that this one does not write go, as eda's and preprocess's do; a file of the user's there
    that no export.json names stays, and in a folder no export wrote a file of an export's name is refused."""
    import shutil
    run = make_tiny_run(tmp_path / "run")
    shutil.copy(run / "best.pt", run / "last.pt")
    out = tmp_path / "onnx"
    assert runner.invoke(app, ["export", str(run / "best.pt"), "--out", str(out), "-q"]).exit_code == 0
    assert (out / "best.onnx").is_file()
    (out / "notes.onnx").write_text("mine")
    res = runner.invoke(app, ["export", str(run / "last.pt"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"{out} holds an earlier export; this run replaces it once its files are all written" \
        in " ".join(res.output.split()), res.output
    named = [Path(r["onnx"]).name for r in json.loads((out / "export.json").read_text())["files"]]
    assert named == ["last.onnx"] and (out / "last.onnx").is_file()
    assert not (out / "best.onnx").exists() and (out / "notes.onnx").read_text() == "mine"
    assert "notes.onnx" not in res.output        # an export.json there: the files it names are the earlier export's
    # a folder no export wrote: a user's last.onnx is refused, not replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "last.onnx").write_text("mine")
    res = runner.invoke(app, ["export", str(run / "last.pt"), "--out", str(mine)])
    assert res.exit_code == 2 and "last.onnx is not from an earlier imgcls export run" in \
        " ".join(res.output.split()), res.output
    assert (mine / "last.onnx").read_text() == "mine" and not (mine / "export.json").exists()


def test_an_export_stopped_after_placing_its_set_leaves_no_earlier_onnx_file_beside_it(tmp_path, monkeypatch):
    """An earlier export's .onnx files this one does not write were removed by hand after the set was placed: a
    stop (Ctrl-C) right after it left best.onnx beside the new export.json, which names last.onnx only, and no
    later export removed it (no export.json named it any more). They go with the set (output_set's earlier,
    fsutil.remove_earlier), as its renames are journaled; a link of an earlier file's name is the user's (an
    export writes files, never links) and stays, as every step's remove_earlier leaves links."""
    import shutil

    import imgcls.outputs as outputs
    run = make_tiny_run(tmp_path / "run")
    shutil.copy(run / "best.pt", run / "last.pt")
    out = tmp_path / "onnx"
    for linked in (False, True):
        shutil.rmtree(out, ignore_errors=True)
        assert runner.invoke(app, ["export", str(run / "best.pt"), "--out", str(out), "-q"]).exit_code == 0
        if linked:
            (out / "best.onnx").rename(tmp_path / "kept.onnx")
            (out / "best.onnx").symlink_to(tmp_path / "kept.onnx")
        commit = outputs.OutputSet._commit

        def placed_then_stopped(self, *a, **k):
            commit(self, *a, **k)
            raise KeyboardInterrupt
        monkeypatch.setattr(outputs.OutputSet, "_commit", placed_then_stopped)
        res = runner.invoke(app, ["export", str(run / "last.pt"), "--out", str(out), "-q"])
        monkeypatch.undo()
        assert res.exit_code == 130, res.output
        assert [Path(r["onnx"]).name for r in json.loads((out / "export.json").read_text())["files"]] == \
            ["last.onnx"]
        assert sorted(p.name for p in out.iterdir()) == (["best.onnx", "export.json", "last.onnx"] if linked
                                                         else ["export.json", "last.onnx"])
        assert not linked or ((out / "best.onnx").is_symlink() and (tmp_path / "kept.onnx").is_file())


def test_an_export_over_one_whose_export_json_went_names_the_onnx_files_it_leaves(tmp_path):
    """An earlier export's files this one does not write are known by its export.json alone: where that is missing
    or unreadable, best.onnx of `export RUN/best.pt` stayed beside the export.json of `export RUN/last.pt` with no
    word. imgcls cannot prove it wrote them, so it does not remove them: one warning names them (and no temporary
    file of a killed export's); the .onnx files this export writes are not named."""
    import shutil
    run = make_tiny_run(tmp_path / "run")
    shutil.copy(run / "best.pt", run / "last.pt")
    for broken in ("missing", "unreadable"):
        out = tmp_path / f"onnx_{broken}"
        assert runner.invoke(app, ["export", str(run / "best.pt"), "--out", str(out), "-q"]).exit_code == 0
        (out / "notes.onnx").write_text("mine")
        (out / ".best.onnx.x1.tmp.onnx").write_text("")
        if broken == "missing":
            (out / "export.json").unlink()
        else:
            (out / "export.json").write_text("{not json")
        res = runner.invoke(app, ["export", str(run / "last.pt"), "--out", str(out), "-q"])
        assert res.exit_code == 0, res.output
        said = " ".join(res.output.split())
        assert (f"{out}: best.onnx, notes.onnx are not this export's and no readable export.json there says an "
                f"earlier export wrote them") in said, res.output
        assert "last.onnx" not in said and ".tmp" not in said, res.output
        assert (out / "best.onnx").is_file() and (out / "notes.onnx").read_text() == "mine"
        assert [Path(r["onnx"]).name for r in json.loads((out / "export.json").read_text())["files"]] == ["last.onnx"]


READER_DECODE_VERSION = 2       # _rebuild_input follows this decode (2: a PNG's tRNS colour key is transparent)


def _rebuild_input(path, p) -> np.ndarray:
    """export.json's `preprocessing` followed with plain PIL / numpy, as a deployment without imgcls would: [3, S, S]."""
    from PIL import Image, ImageOps

    def square(im, fill):
        w, h = im.size
        side = max(w, h)
        out = Image.new("RGB", (side, side), tuple(fill))
        out.paste(im, ((side - w) // 2, (side - h) // 2))
        return out

    d = p["decode"]
    # the decode this reader was written for (imgcls.io.DECODE_VERSION then): an export from an imgcls whose loaders
    # return other pixels is another recipe, not followed as this one
    if d.get("version") != READER_DECODE_VERSION:
        raise ValueError(f"export.json's decode version {d.get('version')}: this reader follows version "
                         f"{READER_DECODE_VERSION}")
    im = Image.open(path)
    if d["draft"] and im.format in d["draft"]["formats"]:
        im.draft("RGB", tuple(d["draft"]["size"]))
    im.load()
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), np.float64)
        a = rgba[..., 3:] / 255
        im = Image.fromarray(np.rint(rgba[..., :3] * a + np.array(d["alpha"]["background"]) * (1 - a)).astype(np.uint8))
    im = im.convert("RGB")
    if p["letterbox"] is not None:
        im = square(im, p["letterbox"]["fill"])
    r = p["resize"]
    s = r["size"]
    if r["mode"] == "pad":
        im = square(im, r["fill"])
    w, h = im.size
    if r["mode"] == "crop":
        new = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
    else:
        new = (s, s)
    if r["interpolation"] == "nearest":
        arr = np.asarray(im)
        rows = np.floor(np.arange(new[1]) * h / new[1]).astype(int)
        cols = np.floor(np.arange(new[0]) * w / new[0]).astype(int)
        arr = arr[rows][:, cols]
    else:
        arr = np.asarray(im.resize(new, {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[r["interpolation"]]))
    if r["mode"] == "crop":
        top, left = round((new[1] - s) / 2), round((new[0] - s) / 2)
        arr = arr[top:top + s, left:left + s]
    x = arr.astype(np.float32) / p["scale"]["divide_by"]
    x = (x - np.array(p["normalize"]["mean"], np.float32)) / np.array(p["normalize"]["std"], np.float32)
    return x.transpose(2, 0, 1)


@pytest.mark.parametrize("resize_mode,interpolation,letterbox,fill", [
    ("squash", "bilinear", None, [255, 255, 255]),
    ("crop", "bicubic", None, [255, 255, 255]),
    ("pad", "nearest", [0, 0, 0], [90, 160, 30]),
])
def test_export_json_preprocessing_rebuilds_predicts_input(tmp_path, resize_mode, interpolation, letterbox, fill):
    """export.json spells out every step from the image file to the model's input (the JPEG draft scale, EXIF
    orientation, transparency's white background, letterbox, resize mode / filter / fill, 0-1 scaling, mean / std):
    followed with plain PIL / numpy it gives predict's own tensor (within 1 of 255: PIL's filters against
    torchvision's) for an RGBA PNG and a rotated JPEG large enough to be draft-decoded."""
    from PIL import Image

    from imgcls.predict import _ViewDataset
    from imgcls.train.checkpoint import load_model, read_checkpoint, save_checkpoint
    from imgcls.tta import ViewMaker, parse_tta
    run = make_tiny_run(tmp_path / "run")
    ck = read_checkpoint(run / "best.pt")
    save_checkpoint(run / "best.pt", ck["state_dict"], {**ck["meta"], "resize_mode": resize_mode, "std": [0.2, 0.3, 0.4],
                    "interpolation": interpolation, "letterbox": letterbox, "fill": fill}, epoch=1)
    res = runner.invoke(app, ["export", str(run), "--onnx", "--out", str(tmp_path / "onnx")])
    assert res.exit_code == 0, res.output
    p = json.loads((tmp_path / "onnx" / "export.json").read_text())["preprocessing"]
    from imgcls.io import DECODE_VERSION
    assert p["decode"]["version"] == DECODE_VERSION          # the loaders' decoding the recipe describes

    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (30, 50, 4), dtype=np.uint8)
    rgba[:10, :, 3] = 0                      # transparent rows: white in predict, black if the alpha were dropped
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    big = np.asarray(Image.fromarray(rng.integers(0, 256, (50, 75, 3), dtype=np.uint8)).resize((300, 200),
                                                                                            Image.NEAREST))
    exif = Image.Exif()
    exif[0x0112] = 6                          # rotated 90 degrees: predict sees it 200 x 300
    Image.fromarray(big).save(tmp_path / "b.jpg", quality=95, exif=exif)

    meta = load_model(run / "best.pt").meta
    maker = ViewMaker(meta, parse_tta("none"))
    paths = [str(tmp_path / "a.png"), str(tmp_path / "b.jpg")]
    ds = _ViewDataset(paths, maker)
    for i, path in enumerate(paths):
        _, views, err = ds[i]
        assert err == ""
        want = maker.normalize(views)[0].numpy()
        got = _rebuild_input(path, p)
        assert got.shape == want.shape == (3, 32, 32)
        # back on the 0..255 scale: PIL's resampling filters agree with torchvision's to within 1
        diff = np.abs(got - want) * np.array(p["normalize"]["std"]).reshape(3, 1, 1) * 255
        assert diff.max() <= 1.01, (path, diff.max())


def test_an_export_stopped_before_its_export_json_leaves_nothing_and_its_rerun_runs(tmp_path, monkeypatch):
    """export wrote each .onnx file into place as it went and export.json at the end: a Ctrl-C between them (the
    parity check, a k-fold run's next fold) left RUN/onnx/best.onnx without export.json, and the rerun its
    `interrupted:` line asks for was refused ('best.onnx is not from an earlier imgcls export run (no export.json
    there)', exit 2). The files and export.json are written as one set: a stop leaves no --out folder (or the
    earlier export whole) and the rerun exports."""
    import imgcls.export as ex
    run = make_tiny_run(tmp_path / "run")

    def stop(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(ex, "write_json", stop)        # export.json, after the ONNX file
    res = runner.invoke(app, ["export", str(run), "-q"])
    assert res.exit_code == 130 and "Traceback" not in res.output, res.output
    assert not (run / "onnx").exists()
    monkeypatch.undo()
    res = runner.invoke(app, ["export", str(run), "-q"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (run / "onnx").iterdir()) == ["best.onnx", "export.json"]


def test_an_export_failing_its_parity_check_places_nothing(tmp_path, monkeypatch):
    """A failed onnxruntime-vs-torch parity check raised after the set was placed: the failing .onnx files stayed
    in --out with an export.json recording them (in place of the earlier export, or as the folder's first). The
    check comes before the set is placed: nothing is written (the earlier export stays whole), in one line."""
    import onnxruntime as ort
    run = make_tiny_run(tmp_path / "run")
    out = run / "onnx"
    assert runner.invoke(app, ["export", str(run), "-q"]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    session = ort.InferenceSession

    class Off(session):
        def run(self, *a, **k):
            return [np.asarray(y) + 0.5 for y in super().run(*a, **k)]
    monkeypatch.setattr(ort, "InferenceSession", Off)
    for folder in (out, tmp_path / "first"):
        res = runner.invoke(app, ["export", str(run), "--out", str(folder), "-q"])
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        line = " ".join(res.output.split())
        assert line.startswith("error: ONNX parity check failed for ") and line.count("error:") == 1, res.output
        assert f"nothing was written to {folder}" in line, res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / "first").exists()


def test_a_k_fold_export_stops_at_its_first_failed_parity_check(tmp_path, monkeypatch):
    """A k-fold set's export went on building, exporting and checking every later fold after one failed its parity
    check (seconds each: ~4 s for tf_efficientnet_lite0), though nothing could be written then (one model, one
    --opset: no later checkpoint makes the set pass). It stops at the first failure, its line saying how many
    checkpoints were left."""
    import onnxruntime as ort
    run = make_tiny_run(tmp_path / "runs" / "kf", folds=3)
    session, made = ort.InferenceSession, []

    class Off(session):
        def __init__(self, *a, **k):
            made.append(1)
            super().__init__(*a, **k)

        def run(self, *a, **k):
            return [np.asarray(y) + 0.5 for y in super().run(*a, **k)]
    monkeypatch.setattr(ort, "InferenceSession", Off)
    res = runner.invoke(app, ["export", str(run)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    line = " ".join(res.output.split())
    assert "error: ONNX parity check failed for " in line and "fold_0_best.onnx" in line, res.output
    assert "(the other 2 checkpoint(s) not exported)" in line and "fold_1" not in line, res.output
    assert made == [1] and not (run / "onnx").exists()


def test_an_export_whose_onnx_probabilities_are_nan_fails_its_parity_check(tmp_path, monkeypatch):
    """The check that stops an export at its first failed checkpoint compared `diff > atol`, which a NaN |diff|
    (ONNX Runtime's probabilities NaN) never is: the set was placed, its export.json recording parity_ok false, and
    its line said "ok". A NaN difference fails the check, as it did when the set was judged by parity_ok."""
    import onnxruntime as ort
    run = make_tiny_run(tmp_path / "run")

    class Nan(ort.InferenceSession):
        def run(self, *a, **k):
            return [np.full_like(np.asarray(y, dtype=float), np.nan) for y in super().run(*a, **k)]
    monkeypatch.setattr(ort, "InferenceSession", Nan)
    res = runner.invoke(app, ["export", str(run)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    line = " ".join(res.output.split())
    assert "error: ONNX parity check failed for " in line and "max |diff| nan" in line and " ok," not in line, \
        res.output
    assert not (run / "onnx").exists()


def test_export_says_what_it_does_on_a_terminal_while_no_line_is_printed(tmp_path, monkeypatch):
    """export printed nothing for ~18 s on a terminal (torch, timm, ONNX Runtime's import, the model's build, the
    export and its check) before its first line: a spinner names the model being exported meanwhile."""
    import io
    from rich.console import Console
    from imgcls import console
    from imgcls.export import export_onnx
    run = make_tiny_run(tmp_path / "runs" / "single")
    buf = io.StringIO()
    monkeypatch.setattr(console, "console", Console(file=buf, force_terminal=True, width=200, markup=False))
    export_onnx(run, tmp_path / "onnx")
    shown = buf.getvalue()
    assert f"exporting {run / 'best.pt'} to ONNX and checking it with ONNX Runtime" in shown, shown
    assert f"loading the model of {run / 'best.pt'}" in shown, shown
    assert "spinner" not in console._state


def test_a_checkpoint_whose_own_probabilities_are_nan_is_told_to_retrain_not_to_try_another_opset(tmp_path):
    """Finite weights that overflow (a diverged run's; NaN weights are refused as it loads) gave NaN probabilities
    in torch itself, and the parity check said 'try another --opset', which cannot help. It says the checkpoint's
    own probabilities are NaN and to train again with a lower --lr; nothing is written."""
    import torch
    run = make_tiny_run(tmp_path / "run")
    obj = torch.load(run / "best.pt", weights_only=False)
    obj["state_dict"]["classifier.weight"] *= 1e37
    torch.save(obj, run / "best.pt")
    res = runner.invoke(app, ["export", str(run)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    line = " ".join(res.output.split())
    assert line.startswith("error: ONNX parity check failed for ") and line.count("error:") == 1, res.output
    assert f"{run / 'best.pt'}'s own (torch) probabilities are NaN for 4 of the 4 check inputs" in line, res.output
    assert "train it again with a lower --lr" in line and "try another --opset" not in line, res.output
    assert not (run / "onnx").exists()


@pytest.mark.parametrize("kw,msg", [
    ({"which": "latest"}, "export_onnx's which must be one of: best, last (got 'latest')"),
    ({"batch": 0}, "export_onnx's batch must be a whole number >= 1 (got 0)"),
    ({"batch": -1}, "export_onnx's batch must be a whole number >= 1 (got -1)"),
    ({"seed": None}, "export_onnx's seed must be a whole number between 0 and 4294967295 (got None)"),
    ({"seed": -1}, "export_onnx's seed must be a whole number between 0 and 4294967295 (got -1)"),
    ({"seed": 2**64}, f"export_onnx's seed must be a whole number between 0 and 4294967295 (got {2**64})"),
])
def test_a_python_callers_bad_keyword_with_no_flag_is_one_line_before_the_model_loads(kw, msg, tmp_path,
                                                                                      monkeypatch):
    """export_onnx's keywords no flag sets were not checked: which='latest' raised find_checkpoints' ValueError,
    batch=0 numpy's 'zero-size array' and batch=-1 torch's 'negative dimension' after the model was loaded."""
    import imgcls.train.checkpoint as ckpt
    from imgcls.errors import UserError
    from imgcls.export import export_onnx
    run = make_tiny_run(tmp_path / "runs" / "single")
    monkeypatch.setattr(ckpt, "load_model", lambda *a, **k: pytest.fail("model loaded before the keywords' check"))
    with pytest.raises(UserError) as e:
        export_onnx(run, tmp_path / "onnx", **kw)
    assert str(e.value) == msg
    assert not (tmp_path / "onnx").exists()
