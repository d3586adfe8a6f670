"""Issue 16, model side: predict --eval scores the rows train validated on (parity with train's own number),
train says when its fallback split is not leak-free, typed model metadata."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import make_image_folder, make_tiny_run
from imgcls.cli import app

runner = CliRunner()


def _splits(tmp_path):
    from imgcls import manifest as mf
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 8, "c": 8}, size=(40, 40))
    df = mf.load(src)
    i = np.arange(len(df))
    df["split"] = np.where(i % 4 == 1, "val", np.where(i % 8 == 3, "test", "train"))
    df["keep"] = [k != 5 for k in i]                  # row 5 (val) was dropped by clean: never scored
    path = tmp_path / "data" / "splits.csv"
    mf.write(df, path)
    return path, df


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_predict_eval_scores_the_val_rows_and_matches_train(tmp_path):
    from imgcls.train import TrainConfig, run_train
    splits, df = _splits(tmp_path)
    run = run_train(TrainConfig(src=str(splits), model="test_resnet", pretrained=False, img_size=32, batch_size=8, workers=0,
                                device="cpu", aug="none", epochs=2, out=str(tmp_path / "runs"), name="r", plots=False))
    best = pd.read_csv(run / "metrics.csv")["val_macro_f1"].max()
    n_val = int(((df["split"] == "val") & df["keep"]).sum())
    assert len(pd.read_csv(run / "val_predictions.csv")) == n_val
    out = tmp_path / "pred"
    r = runner.invoke(app, ["predict", str(run), "--data", str(splits), "--eval", "--out", str(out), "--workers", "0"])
    assert r.exit_code == 0, r.output
    ev = json.loads((out / "predict.json").read_text())["eval"]
    assert ev["rows"] == "val" and ev["n_images"] == n_val
    assert f"--eval on {n_val} labelled val rows" in " ".join(r.output.split())
    assert "no TTA" in r.output and "views)" not in r.output          # one view: one column of scores
    assert f"--eval on {n_val} labelled val rows\n" in r.output          # a title on one line
    assert abs(ev["plain"]["macro_f1"] - best) < 1e-6          # the two numbers of the same rows agree
    # --eval-split test scores the test rows
    n_test = int(((df["split"] == "test") & df["keep"]).sum())
    o = tmp_path / "pred_test"
    r = runner.invoke(app, ["predict", str(run), "--data", str(splits), "--eval", "--eval-split", "test",
                            "--out", str(o), "--workers", "0"])
    assert r.exit_code == 0, r.output
    ev = json.loads((o / "predict.json").read_text())["eval"]
    assert (ev["rows"], ev["n_images"]) == ("test", n_test)
    # --eval-split all would score the rows the run trained on (a leaked score): refused before the model runs,
    # naming the run's validation macro-F1 and the test rows; the folder the split was made from likewise (its
    # leaked rows are those the run trained on, by its training table: not the test rows)
    n_train = int(((df["split"] == "train") & df["keep"]).sum())
    raw = tmp_path / "raw"
    for data, part, n, alt in ((splits, ["--eval-split", "all"], n_train,
                                f"--eval-split test scores the {n_test} test rows it never trained on"),
                               # the table it trained on holds test rows: one predict away, not a new split
                               (raw, [], n_train, f"or the {n_test} test rows of the table it trained on, which "
                                f"it never trained on, score: imgcls predict {run} --data {splits} --eval "
                                f"--eval-split test")):
        o = tmp_path / "pred_leak"
        r = runner.invoke(app, ["predict", str(run), "--data", str(data), "--eval", *part, "--out", str(o),
                                "--workers", "0"])
        said = " ".join(r.output.split())
        assert r.exit_code == 2 and "Traceback" not in r.output and not o.exists(), r.output
        scored = len(df) if data == raw else int(df['keep'].sum())
        assert f"--eval (Python: evaluate=) would score {n} of the {scored} labelled rows " \
               f"of {data} outside the validation and test rows of the run {run}" in said, said
        assert f"the honest one is its validation macro-F1, {best:.4f} over {n_val} images" in said, said
        assert alt in said, said


def test_eval_split_needs_a_split_column(tmp_path):
    run = make_tiny_run(tmp_path / "runs" / "r")
    data = make_image_folder(tmp_path / "test", {"a": 2, "b": 2})
    r = runner.invoke(app, ["predict", str(run), "--data", str(data), "--eval", "--eval-split", "val",
                            "--out", str(tmp_path / "p"), "--workers", "0"])
    assert r.exit_code == 2 and "--eval-split val: the data has no split column" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "p").exists()
    r = runner.invoke(app, ["predict", str(run), "--data", str(data), "--eval", "--out", str(tmp_path / "q"),
                            "--workers", "0"])
    assert r.exit_code == 0, r.output                               # no split column: every row, as before
    assert json.loads((tmp_path / "q" / "predict.json").read_text())["eval"]["n_images"] == 4


def test_train_says_its_fallback_split_is_not_leak_free(tmp_path, monkeypatch):
    from imgcls.train import loop
    monkeypatch.setattr(loop, "train_run", lambda *a, **k: {"best_f1": 0.0, "best_epoch": 1,
                                                          "val_predictions": None, "history": []})
    data = make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(36, 36))
    args = ["--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--workers", "0", "--device", "cpu", "--epochs", "1",
            "--out", str(tmp_path / "runs")]
    r = runner.invoke(app, ["train", str(data), *args, "--name", "plain"])
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())
    assert "near copies clean did not link" in flat and "imgcls split" in flat
    splits, _ = _splits(tmp_path / "s")
    r = runner.invoke(app, ["train", str(splits), *args, "--name", "split"])
    assert r.exit_code == 0, r.output
    assert "near copies clean did not link" not in " ".join(r.output.split())


def test_train_split_hints_name_the_data_and_target_and_work_as_typed(tmp_path, monkeypatch):
    """`train train.csv --target artist` (DACON's columns) said 'run `imgcls split` and train on its splits.csv':
    typed, `imgcls split` reads only the pipeline's default input (none here: an error), and split's table of
    train.csv, stratified on no label, was refused. The hints name the data, --stratify and --target."""
    import shlex
    from imgcls.train import loop
    monkeypatch.setattr(loop, "train_run", lambda *a, **k: {"best_f1": 0.0, "best_epoch": 1,
                                                          "val_predictions": None, "history": []})
    comp = make_image_folder(tmp_path / "comp" / "train", {"a": 6, "b": 6}, size=(36, 36))
    paths = sorted(p.relative_to(comp).as_posix() for p in comp.rglob("*.png"))
    pd.DataFrame({"id": [f"TRAIN_{i:04d}" for i in range(len(paths))], "img_path": [f"./train/{p}" for p in paths],
                  "artist": [p.split("/")[0] for p in paths]}).to_csv(tmp_path / "comp" / "train.csv", index=False)
    monkeypatch.chdir(tmp_path / "comp")
    args = ["--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--workers", "0", "--device", "cpu",
            "--epochs", "1", "--out", str(tmp_path / "runs")]
    r = runner.invoke(app, ["train", "train.csv", "--target", "artist", *args, "--name", "t"])
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())
    csv = "train.csv"                 # named as typed (relative to the working folder, where the commands run)
    # each command is followed by its Python call; the train command carries the run's options but its --name
    runs = tmp_path / "runs"
    typed = f"--model test_resnet --no-pretrained --img-size 32 --target artist --epochs 1 --workers 0 --device cpu " \
            f"--out {runs}"
    python = f"model='test_resnet', pretrained=False, img_size=32, target='artist', epochs=1, workers=0, " \
             f"device='cpu', out='{runs}'"
    assert f"for a leak-free split: imgcls split {csv} --stratify artist (Python: run_split('{csv}', cfg=SplitConfig(" \
           f"stratify=['artist']))), then imgcls train data/splits.csv {typed} (Python: run_train(TrainConfig(" \
           f"src='data/splits.csv', {python})))" in flat, flat
    r = runner.invoke(app, ["train", "train.csv", "--target", "artist", "--folds", "all", *args, "--name", "f"])
    assert r.exit_code == 2 and f"run imgcls split {csv} --folds 5 --stratify artist (Python: run_split('{csv}', " \
                                f"cfg=SplitConfig(folds=5, stratify=['artist']))) first and train on its table: " \
                                f"imgcls train data/splits.csv {typed} --folds all (Python: run_train(" \
                                f"TrainConfig(src='data/splits.csv', {python}, folds='all')))" in " ".join(
                                    r.output.split()), r.output
    # the hinted commands, as typed (split's near-duplicate search off only to keep the test fast)
    r = runner.invoke(app, shlex.split(f"split {csv} --stratify artist") + ["--no-near-dup", "--quiet"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, shlex.split("train data/splits.csv --target artist") + args + ["--name", "s"])
    assert r.exit_code == 0, r.output
    assert "near copies clean did not link" not in " ".join(r.output.split())


# --- typed model metadata ----------------------------------------------------------------------------------------

def test_model_meta_round_trip_and_old_names():
    from imgcls.model_meta import ModelMeta
    d = {"model": "test_resnet", "classes": [str(i) for i in range(18)], "decode": "profile18",
         "heads": [{"name": "mask", "classes": ["0", "1", "2"]}, {"name": "gender", "classes": ["0", "1"]},
                   {"name": "age_band", "classes": ["0", "1", "2"]}],
         "img_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3, "note": "kept"}
    m = ModelMeta.from_dict(d)
    assert m.decode == "profile" and m.head_sizes == [3, 2, 3] and m.n_classes == 18 and m.multi
    assert (m.resize_mode, m.interpolation, m.branch, m.drop_rate) == ("squash", "bilinear", "shallow", 0.0)
    assert ModelMeta.from_dict(m.to_dict()) == m and m.to_dict()["note"] == "kept"
    from imgcls.profiles import ProfileScheme
    assert m.decode_table() == ProfileScheme(3).table()            # the one profile formula
    assert m.decode_table()[17] == (2, 1, 2) and m.decode_table()[7] == (1, 0, 1)   # 17 = 2*6 + 1*3 + 2


def test_the_readme_names_every_checkpoint_meta_key():
    """README's list of a checkpoint's `meta` keys left out fill, preprocess and letterbox; it names every field of
    ModelMeta (the owner), `extra` (the unknown keys kept as read) aside."""
    import dataclasses
    import re
    from pathlib import Path
    from imgcls.model_meta import ModelMeta
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    listed = re.search(r"and `meta` \((.*?)\); `last\.pt`", readme, re.S)
    assert listed, "the README's list of meta keys moved"
    named = set(re.findall(r"`(\w+)`", listed.group(1)))
    fields = {f.name for f in dataclasses.fields(ModelMeta)} - {"extra"}
    assert fields <= named, sorted(fields - named)


def test_four_age_bands_train_and_decode_with_the_profile_formula(tmp_path):
    """train's heads were [3, 2, 3] whatever the data: four age bands now give 24 classes by the one formula."""
    import torch
    from conftest import make_profiles
    from imgcls import manifest as mf
    from imgcls.profiles import ProfileScheme
    from imgcls.train import TrainConfig, run_train
    from imgcls.train.checkpoint import load_model
    from imgcls.train.rundir import find_checkpoints
    df = mf.load(make_profiles(tmp_path / "profiles", n_profiles=8), mf.LayoutOptions(age_bands=[20, 40, 60]))
    assert df["age_band"].astype(int).max() == 3
    mf.write(df, tmp_path / "m.csv")
    run = run_train(TrainConfig(src=str(tmp_path / "m.csv"), model="test_resnet", pretrained=False, img_size=32, batch_size=8,
                                workers=0, device="cpu", aug="none", epochs=1, heads="multi", val_split=0.3,
                                out=str(tmp_path / "runs"), name="bands4", plots=False))
    lm = load_model(find_checkpoints(run)[0])
    assert lm.meta.decode == "profile" and lm.meta.head_sizes == [3, 2, 4] and lm.classes == [str(i) for i in range(24)]
    scheme = ProfileScheme(4)
    x = torch.randn(2, 3, 32, 32)
    p = lm.predict_proba(x)
    pm, pg, pa = [o.softmax(1) for o in lm.model(x)]
    for label, (m, g, a) in enumerate(scheme.table()):
        assert torch.allclose(p[:, label], pm[:, m] * pg[:, g] * pa[:, a], atol=1e-6)
    vp = pd.read_csv(run / "val_predictions.csv", dtype={"label": str})
    want = df.set_index("path").loc[vp["path"], "label"].astype(str).tolist()
    assert vp["label"].tolist() == want                             # the manifest's labels are the model's classes


# --- the trainer, phase by phase ---------------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_trainer_phases_run_and_restore_by_part(tmp_path):
    """setup / train_epoch / evaluate_epoch / checkpoint called one by one give the files and state a run has;
    a second Trainer's restore() continues from that last.pt."""
    import math
    import torch
    from imgcls import manifest as mf
    from imgcls.model_meta import ModelMeta
    from imgcls.train import TrainConfig
    from imgcls.train.run import _heads_meta
    from imgcls.train import data as tdata
    from imgcls.train.dist import Dist
    from imgcls.train.loop import FoldData, Trainer
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(36, 36))
    cfg = TrainConfig(src=str(src), model="test_resnet", pretrained=False, img_size=32, batch_size=4, workers=0,
                      device="cpu",
                      aug="none", epochs=2, amp=False, cache="none", amp_used=False, workers_used=0, plots=False)
    df, _ = tdata.usable_rows(mf.load(src, scan=True, workers=1))
    heads, decode, classes, targets, final = _heads_meta(df, cfg)
    meta = ModelMeta.from_dict({"model": "test_resnet", "classes": classes, "heads": heads, "decode": decode,
                                "img_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3})
    tr, va = tdata.assign_split(df, None, 0.34, 0)
    fd = FoldData(np.flatnonzero(tr), np.flatnonzero(va), targets, final, df, None, mf.image_paths(df))
    run = tmp_path / "run"
    run.mkdir()
    t = Trainer(cfg, meta, fd, run, torch.device("cpu"), Dist())
    t.setup()
    assert t.updates_per_epoch == math.ceil(len(fd.train_idx) / 4) and len(t.crits) == 1
    assert not t.restore()                                          # no last.pt yet: a fresh run
    t.wrap()
    t.announce()
    loss, acc = t.train_epoch(0)
    assert math.isfinite(loss) and 0 <= acc <= 1 and t.state.updates == t.updates_per_epoch
    ev, row, improved = t.evaluate_epoch(0, loss, acc, 0.0)
    assert improved and row["epoch"] == 1 and (run / "best.pt").is_file() and (run / "val_predictions.csv").is_file()
    assert len(ev["proba"]) == len(fd.val_idx)
    t.checkpoint(0, ev, row, improved)
    assert (run / "last.pt").is_file() and (run / "metrics.csv").is_file()
    again = Trainer(cfg, meta, fd, run, torch.device("cpu"), Dist(), resume=True)
    again.setup()
    assert not again.restore() and again.state.epoch == 1 and again.state.best_epoch == 1
    assert again.state.history == t.state.history
    for k, v in t.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k


@pytest.mark.parametrize("edges,ages,n_classes", [((40,), (22, 45), 12),            # two bands: 12 classes
                                                   ((30, 60), (22, 45), 18),        # no one over 60: still 18
                                                   ((20, 40, 60), (22, 45), 24)])   # top band empty: still 24
def test_multi_heads_decode_with_the_bands_the_labels_were_made_with(edges, ages, n_classes):
    """--heads multi took max(3, bands seen) age bands: data labelled with --age-bands 40 (12 classes) trained and
    scored 18-class ids against its 12-class labels (train's val macro-F1 disagreed with `imgcls runs`'), and a
    four-band set without anyone in its top band decoded with three. The labels' own formula decides."""
    from imgcls.profiles import ProfileScheme, apply_profile_labels
    from imgcls.train import TrainConfig
    from imgcls.train.run import _heads_meta
    rows = [{"path": f"p{i}_{m}_{g}.png", "mask": m, "gender": g, "age": a}
            for i, a in enumerate(ages) for m in range(3) for g in range(2)]
    df = apply_profile_labels(pd.DataFrame(rows), edges)
    heads, decode, classes, _, final = _heads_meta(df, TrainConfig(src="x", heads="multi"))
    assert decode == "profile" and len(classes) == n_classes
    assert [h["name"] for h in heads] == list(ProfileScheme.HEADS) and len(heads[2]["classes"]) == len(edges) + 1
    assert [classes[i] for i in final] == df["label"].tolist()      # the model's class of a row is its label


@pytest.mark.parametrize("edges,relabel,summary,want", [((30, 60), None, False, [30, 60]),    # a manifest
                                                         ((40,), None, True, [40]),           # split --age-bands 40
                                                         ((30, 60), (29, 59), True, [30, 60]),  # --relabel-age
                                                         ((20, 50), None, True, [20, 50]),
                                                         # no record of the 40 edge: ages 22..61 bound it, never
                                                         # give it (the youngest of band 1, 45, was recorded)
                                                         ((40,), None, False, None)])
def test_train_records_the_age_bands_its_labels_were_made_with(tmp_path, edges, relabel, summary, want):
    """Checkpoints did not record the age band edges, so ensemble --combine profile combined runs of other bands
    unsaid: train records them (ModelMeta.age_bands) from the split's summary or the rows' ages and bands."""
    from imgcls.errors import UserError
    from imgcls.model_meta import ModelMeta
    from imgcls.profiles import apply_profile_labels
    from imgcls.train import TrainConfig
    from imgcls.train.run import _age_bands, _heads_meta
    rows = [{"path": f"p{i}_{m}_{g}.png", "mask": m, "gender": g, "age": a}
            for i, a in enumerate((22, 29, 45, 59, 61)) for m in range(3) for g in range(2)]
    df = apply_profile_labels(pd.DataFrame(rows), edges, relabel)
    src = tmp_path / "splits.csv"
    df.to_csv(src, index=False)
    if summary:
        (tmp_path / "splits_summary.json").write_text(json.dumps(
            {"config": {"age_bands": list(edges), "relabel_age": None if relabel is None else list(relabel)}}))
    for heads in ("multi", "single"):
        cfg = TrainConfig(src=str(src), heads=heads, target="label" if heads == "multi" else "age_band")
        h, decode, classes, *_ = _heads_meta(df, cfg)
        assert _age_bands(df, str(src), h, decode) == want
        if want is None:
            continue
        meta = ModelMeta.from_dict({"model": "m", "classes": classes, "heads": h, "decode": decode, "img_size": 32,
                                    "mean": [0.5] * 3, "std": [0.5] * 3, "age_bands": want})
        assert ModelMeta.from_dict(meta.to_dict()).age_bands == tuple(want)
    if want is None:
        return
    with pytest.raises(UserError, match="age_bands"):
        ModelMeta.from_dict({**meta.to_dict(), "age_bands": [60, 30]})
    assert _age_bands(df.drop(columns="age"), str(src), h, decode) is None        # not a profile table
    assert _age_bands(df.assign(age_band=""), str(src), h, decode) is None       # bands emptied: not told


def test_a_checkpoint_s_bad_age_bands_are_said_by_the_band_edges_rule():
    """A checkpoint's recorded age_bands had its own check beside profile_names.age_edges (the options' rule of
    band edges), which said every fault "is not increasing ages": [30.5, 60] and [-1, 30] are increasing. Both now
    read the one rule (profile_names.edges_fault): the fault named as the options name it, the checkpoint's own fix
    kept; what the checkpoint accepts unchanged."""
    from imgcls.errors import UserError
    from imgcls.model_meta import ModelMeta
    meta = {"model": "m", "classes": ["a", "b"], "heads": [{"name": "label", "classes": ["a", "b"]}],
            "decode": "single", "img_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3}
    assert ModelMeta.from_dict({**meta, "age_bands": [30, 60]}).age_bands == (30, 60)
    for bands, what in (([30.5, 60], "is not whole ages"), ([-1, 30], "is not ages of 0 or more"),
                        ([60, 30], "is not increasing ages"), ([], "names no age"), ([True], "is not whole ages"),
                        ([30, 2000], "is not ages up to 1000"), ("30,60", "is not a list of ages"),
                        ([np.int64(30)], "is not plain integers")):
        with pytest.raises(UserError) as e:
            ModelMeta.from_dict({**meta, "age_bands": bands}, source="m.pt")
        assert str(e.value).startswith(f"m.pt: model metadata age_bands {str(bands)[:80]} {what} (the band edges); "
                                       f"the file is damaged or not written by imgcls train"), e.value


def test_a_manifest_of_clean_or_preprocess_records_the_age_bands_its_profiles_were_read_with(tmp_path):
    """`imgcls clean PROFILES --age-bands 40` labels two age bands, but train read recorded edges only from
    split's summary: a run trained on clean's manifest recorded none (the 40 edge cannot be told from the ages),
    and ensemble --combine profile could not check it. clean_summary.json and preprocess.json record the bands a
    profile layout was read with, and train reads them beside the manifest as it reads split's."""
    from conftest import make_profiles
    from imgcls import manifest as mf
    from imgcls.clean.config import CleanConfig
    from imgcls.clean.run import run_clean
    from imgcls.preprocess.config import PreprocessConfig
    from imgcls.preprocess.run import run_preprocess
    from imgcls.train import TrainConfig, run_train
    from imgcls.train.checkpoint import read_meta
    from imgcls.train.rundir import find_checkpoints
    profiles = make_profiles(tmp_path / "profiles", n_profiles=6)
    forty = mf.LayoutOptions(age_bands=[40])
    run_clean(profiles, tmp_path / "clean", CleanConfig(near_dup=False, ood=False), forty, workers=1)
    assert json.loads((tmp_path / "clean" / "clean_summary.json").read_text())["age_bands"] == [40]
    run = run_train(TrainConfig(src=str(tmp_path / "clean"), model="test_resnet", pretrained=False, img_size=32,
                                batch_size=8, workers=0, device="cpu", aug="none", epochs=1, heads="multi",
                                val_split=0.3, out=str(tmp_path / "runs"), name="forty", plots=False))
    assert read_meta(find_checkpoints(run)[0]).age_bands == (40,)
    run_preprocess(profiles, tmp_path / "pre", PreprocessConfig(size=32), forty, workers=1, report=False)
    assert json.loads((tmp_path / "pre" / "preprocess.json").read_text())["age_bands"] == [40]
    from imgcls.train.run import _age_bands, _heads_meta
    df = mf.load(tmp_path / "pre" / "manifest.csv", scan=False)
    h, decode, *_ = _heads_meta(df, TrainConfig(src="x", heads="multi"))
    assert _age_bands(df, str(tmp_path / "pre" / "manifest.csv"), h, decode) == [40]
    # a table of another layout records none (class folders, not profile folders)
    from conftest import make_image_folder
    run_clean(make_image_folder(tmp_path / "folder", {"a": 3, "b": 3}), tmp_path / "clean2", CleanConfig(near_dup=False, ood=False), workers=1)
    assert "age_bands" not in json.loads((tmp_path / "clean2" / "clean_summary.json").read_text())


def test_preprocess_and_clean_carry_the_age_band_record_of_the_manifest_they_read(tmp_path):
    """`imgcls clean PROFILES --age-bands 40`, then `imgcls preprocess` on clean's manifest: preprocess recorded the
    bands only when its input was profile folders, so preprocess.json had none and a run trained on its manifest
    recorded age_bands None. clean and preprocess carry the record beside the manifest they read (the one reader
    train uses: manifest.recorded_age_bands)."""
    from conftest import make_profiles
    from imgcls import manifest as mf
    from imgcls.clean.config import CleanConfig
    from imgcls.clean.run import run_clean
    from imgcls.preprocess.config import PreprocessConfig
    from imgcls.preprocess.run import run_preprocess
    from imgcls.train import TrainConfig
    from imgcls.train.run import _age_bands, _heads_meta
    profiles = make_profiles(tmp_path / "profiles", n_profiles=6)
    run_clean(profiles, tmp_path / "clean", CleanConfig(near_dup=False, ood=False), mf.LayoutOptions(age_bands=[40]),
              workers=1)
    run_preprocess(tmp_path / "clean", tmp_path / "pre", PreprocessConfig(size=32), workers=1, report=False)
    assert json.loads((tmp_path / "pre" / "preprocess.json").read_text())["age_bands"] == [40]
    assert mf.recorded_age_bands(tmp_path / "pre") == {"age_bands": [40]}
    df = mf.load(tmp_path / "pre" / "manifest.csv", scan=False)
    h, decode, *_ = _heads_meta(df, TrainConfig(src="x", heads="multi"))
    assert _age_bands(df, str(tmp_path / "pre"), h, decode) == [40]
    # and clean on preprocess's manifest carries it on too
    run_clean(tmp_path / "pre", tmp_path / "clean2", CleanConfig(near_dup=False, ood=False), workers=1)
    assert json.loads((tmp_path / "clean2" / "clean_summary.json").read_text())["age_bands"] == [40]
