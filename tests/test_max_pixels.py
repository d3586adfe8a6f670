"""--max-pixels on clean, train and predict (eda, preprocess and split had it): an image with more pixels is reported
and skipped, and a raised limit reaches every decode of the step (the scan, clean's embeddings, thumbnails, photo
features and report, train's decoded-image cache and --cache none loader, predict's loader, eda --test's grey check,
preprocess's report thumbnails), not only the scan.

No real 90-megapixel image is built: `fake_default` makes io's default bound (PIL's 89,478,485) act as 5,000 pixels,
so a 100 x 100 image (10,000 pixels) is "too big by default", and records the bound every decode was given."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import make_image, make_image_folder, make_tiny_run
from imgcls import io as imgio
from imgcls.cli import app

runner = CliRunner()
BIG = "big.png"                 # 100 x 100 = 10,000 pixels; the others 40 x 40 = 1,600
SMALL_DEFAULT = 5_000           # io's default bound, as fake_default makes it act


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def said(res) -> str:
    return " ".join(res.output.split())


@pytest.fixture
def data(tmp_path) -> Path:
    root = make_image_folder(tmp_path / "raw", {"a": 8, "b": 8}, size=(40, 40))
    make_image(root / "a" / BIG, size=(100, 100), seed=99)
    return root


@pytest.fixture
def fake_default(monkeypatch) -> list[tuple[str, int | None]]:
    """io's default bound acts as SMALL_DEFAULT; returns the (file name, bound) of every image opened."""
    calls: list[tuple[str, int | None]] = []
    real = imgio._open_checked

    def checked(path, max_pixels):
        calls.append((Path(path).name, max_pixels))
        return real(path, SMALL_DEFAULT if max_pixels == imgio.DEFAULT_MAX_PIXELS else max_pixels)
    monkeypatch.setattr(imgio, "_open_checked", checked)
    return calls


# --- clean -------------------------------------------------------------------------------------------------------

def _clean(src, out, *flags):
    res = invoke("clean", src, "--out", out, "--device", "cpu", "--workers", 1, *flags)
    assert res.exit_code == 0, res.output
    return res, pd.read_csv(out / "manifest.csv", keep_default_na=False).set_index("path")


def test_clean_max_pixels_reports_and_skips_a_bigger_image(data, tmp_path):
    res, m = _clean(data, tmp_path / "c1", "--exact-only", "--no-ood", "--max-pixels", 5000)
    assert m.loc[f"a/{BIG}", "error"] == "too many pixels: 100x100 = 10000 > --max-pixels 5000"
    assert m.loc[f"a/{BIG}", "reason"] == "unreadable" and str(m.loc[f"a/{BIG}", "keep"]) == "False"
    assert f"a/{BIG} (too many pixels" in said(res)
    assert json.loads((tmp_path / "c1" / "clean_summary.json").read_text())["config"]["max_pixels"] == 5000
    _, m = _clean(data, tmp_path / "c2", "--exact-only", "--no-ood")          # the default keeps it
    assert m.loc[f"a/{BIG}", "error"] == "" and str(m.loc[f"a/{BIG}", "keep"]) == "True"
    # a manifest an earlier step scanned (the image readable there) is bounded too, without scanning it again
    _, m = _clean(tmp_path / "c2" / "manifest.csv", tmp_path / "c3", "--exact-only", "--no-ood", "--max-pixels", 5000)
    assert m.loc[f"a/{BIG}", "error"].startswith("too many pixels") and m.loc[f"a/{BIG}", "reason"] == "unreadable"


def test_clean_raised_limit_reaches_embeddings_thumbnails_features_and_report(data, tmp_path, fake_default):
    """The scan honoured --max-pixels but the embedding pass, the thumbnails and the photo features decoded at
    PIL's default: an image above it was scanned readable, then silently never embedded or verified."""
    res, m = _clean(data, tmp_path / "low", "--force")
    assert m.loc[f"a/{BIG}", "error"].startswith("too many pixels") and m.loc[f"a/{BIG}", "reason"] == "unreadable"
    fake_default.clear()
    res, m = _clean(data, tmp_path / "high", "--force", "--max-pixels", 20_000)
    assert m.loc[f"a/{BIG}", "error"] == "" and m.loc[f"a/{BIG}", "reason"] == ""
    bounds = {b for _, b in fake_default}
    assert bounds == {20_000}, bounds                # every decode, the scan's and each pass's, took the flag
    big = [b for n, b in fake_default if n == BIG]
    assert len(big) >= 4         # the scan (header, decode check), the thumbnail + photo-feature pass, the embedding
    for method in ("pca-dbscan",):                   # the raw-pixel detectors read their own 32 x 32 pixels
        fake_default.clear()
        _clean(data, tmp_path / method, "--no-dedup", "--ood-method", method, "--force", "--max-pixels", 20_000)
        assert {b for _, b in fake_default} == {20_000}


# --- train (and tune, which builds train's config) ----------------------------------------------------------------

TRAIN = ("--model", "test_resnet", "--no-pretrained", "--img-size", 32, "--epochs", 1, "--batch-size", 8,
         "--workers", 0, "--device", "cpu", "--val-split", 0.3, "--aug", "none")


def _train(src, tmp_path, name, *flags):
    res = invoke("train", src, *TRAIN, "--out", tmp_path / "runs", "--name", name, *flags)
    assert res.exit_code == 0, res.output
    return res, tmp_path / "runs" / name


def _trained_on(run: Path) -> set[str]:
    """Every image the run used: its validation rows and the rows train.log's skip line leaves."""
    vp = pd.read_csv(run / "val_predictions.csv", keep_default_na=False)
    return {Path(p).name for p in vp["path"]}


def test_train_max_pixels_reports_and_skips_a_bigger_image(data, tmp_path):
    from imgcls.train import TrainConfig
    res, run = _train(data, tmp_path, "low", "--max-pixels", 5000)
    text = said(res)
    assert f"a/{BIG} (too many pixels: 100x100 = 10000 > --max-pixels 5000)" in text, text
    assert "1 unreadable" in text and BIG not in _trained_on(run)
    assert TrainConfig.load(run / "config.yaml").max_pixels == 5000          # recorded
    res, run = _train(data, tmp_path, "default")
    assert "unreadable" not in said(res) and TrainConfig.load(run / "config.yaml").max_pixels == \
        imgio.DEFAULT_MAX_PIXELS
    # a manifest scanned at the default (the image readable there) is bounded by train's own limit
    from imgcls import manifest as mf
    table = tmp_path / "scanned.csv"
    mf.write(mf.load(data, announce=False), table)
    res, run = _train(table, tmp_path, "manifest", "--max-pixels", 5000)
    assert f"a/{BIG} (too many pixels" in said(res) and "1 unreadable" in said(res)


@pytest.mark.parametrize("cache", ["ram", "none"])
def test_train_raised_limit_reaches_the_decoded_cache_and_the_file_loader(data, tmp_path, fake_default, cache):
    res, run = _train(data, tmp_path, "low", "--cache", cache)
    assert f"a/{BIG} (too many pixels" in said(res)
    fake_default.clear()
    res, run = _train(data, tmp_path, "high", "--cache", cache, "--max-pixels", 20_000)
    assert "unreadable" not in said(res) and "skipped" not in said(res), said(res)
    assert {b for _, b in fake_default} == {20_000}
    assert sum(n == BIG for n, _ in fake_default) >= 2       # the scan and the cache / the loader's epoch


def test_tune_passes_max_pixels_to_every_trial_and_never_searches_it(data, tmp_path):
    from imgcls.errors import UserError
    from imgcls.tune.space import load_space
    from imgcls.train import TrainConfig
    space = tmp_path / "space.yaml"
    space.write_text("max_pixels: {choice: [5000, 20000]}\n")
    with pytest.raises(UserError, match="space key 'max_pixels' cannot be searched"):
        load_space(str(space), TrainConfig())
    lr_only = tmp_path / "lr.yaml"          # the default space varies --aug, which TRAIN types
    lr_only.write_text("lr: {log_uniform: [1.0e-3, 1.0e-2]}\n")
    res = invoke("tune", data, "--study", "s", "--trials", 1, "--out", tmp_path / "tune", *TRAIN,
                 "--space", lr_only, "--max-pixels", 5000, "-q")
    assert res.exit_code == 0, res.output
    trial = next((tmp_path / "tune" / "s").glob("trial_*"))
    assert TrainConfig.load(trial / "config.yaml").max_pixels == 5000 and BIG not in _trained_on(trial)


# --- predict -------------------------------------------------------------------------------------------------------

def _test_images(tmp_path) -> Path:
    test = tmp_path / "test"
    for i in range(3):
        make_image(test / f"ok{i}.png", size=(40, 40), seed=i)
    make_image(test / BIG, size=(100, 100), seed=99)
    return test


def _predict(run, test, out, *flags):
    res = invoke("predict", run, "--data", test, "--out", out, "--workers", 0, "--device", "cpu", *flags)
    assert res.exit_code == 0, res.output
    return res, json.loads((out / "predict.json").read_text())


def test_predict_max_pixels_reports_and_skips_a_bigger_image(tmp_path):
    run = make_tiny_run(tmp_path / "runs" / "r1")
    test = _test_images(tmp_path)
    res, summary = _predict(run, test, tmp_path / "p1", "--max-pixels", 5000)
    assert [Path(p).name for p in summary["unreadable"]["paths"]] == [BIG]
    assert f"{BIG} (too many pixels: 100x100 = 10000 > --max-pixels 5000)" in said(res)
    probs = pd.read_parquet(tmp_path / "p1" / "probs.parquet")
    assert probs.set_index("path").loc[BIG, "error"].startswith("too many pixels")
    res, summary = _predict(run, test, tmp_path / "p2")                      # the default reads it
    assert summary["n_unreadable"] == 0 and "max-pixels" not in said(res)


def test_predict_defaults_to_the_limit_the_run_trained_with(tmp_path, fake_default):
    """A run trained with a raised --max-pixels predicts test images of that size without the flag; one trained
    with a lower one skips them; the flag given wins over the record."""
    test = _test_images(tmp_path)
    default = make_tiny_run(tmp_path / "runs" / "plain")               # config.yaml without max_pixels
    _, summary = _predict(default, test, tmp_path / "p0")
    assert [Path(p).name for p in summary["unreadable"]["paths"]] == [BIG]     # io's default (faked: 5,000)
    raised = make_tiny_run(tmp_path / "runs" / "raised")
    cfg = yaml.safe_load((raised / "config.yaml").read_text())
    (raised / "config.yaml").write_text(yaml.safe_dump({**cfg, "max_pixels": 20_000}))
    fake_default.clear()
    res, summary = _predict(raised, test, tmp_path / "p1")
    assert summary["n_unreadable"] == 0 and {b for _, b in fake_default} == {20_000}
    assert "--max-pixels 20000: the limit raised trained with (config.yaml)" in said(res)
    _, summary = _predict(raised, test, tmp_path / "p2", "--max-pixels", 5000)
    assert [Path(p).name for p in summary["unreadable"]["paths"]] == [BIG]
    # an ensemble: the highest of its members' limits (a run without a record: io's default)
    from imgcls.ensemble import EnsembleSpec, member_from_run
    from imgcls.predict import recorded_max_pixels
    scans = make_tiny_run(tmp_path / "runs" / "scans")
    (scans / "config.yaml").write_text(yaml.safe_dump({**cfg, "max_pixels": 150_000_000}))

    def spec(*runs):
        return EnsembleSpec("e", "soft", [member_from_run(r) for r in runs], ["a", "b", "c"])
    assert recorded_max_pixels(spec(default, raised)) == imgio.DEFAULT_MAX_PIXELS
    assert recorded_max_pixels(spec(default, scans, raised)) == 150_000_000


def test_a_run_recorded_without_a_limit_resumes_and_predicts_without_one(data, tmp_path, fake_default):
    """A run trained from Python with max_pixels=None (no limit, before such a None was refused) recorded
    `max_pixels: null`: its `train --resume` was refused (--max-pixels cannot be None) and predict said
    '--max-pixels None'. The record's null reads as 0, no limit, as the run ran; `--max-pixels 0` types it."""
    from imgcls.ensemble import EnsembleSpec, member_from_run
    from imgcls.predict import recorded_max_pixels
    from imgcls.train import TrainConfig
    _, run = _train(data, tmp_path, "free", "--max-pixels", 20_000)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "max_pixels": None}, sort_keys=False))
    assert TrainConfig.load(run / "config.yaml").max_pixels == 0
    res = invoke("train", "--resume", run)
    assert res.exit_code == 0 and "already finished" in said(res), res.output
    test = _test_images(tmp_path)
    fake_default.clear()
    res, summary = _predict(run, test, tmp_path / "p1")
    assert summary["n_unreadable"] == 0 and {b for _, b in fake_default} == {0}, set(fake_default)
    assert "--max-pixels 0 (no limit): the limit free trained with" in said(res), said(res)
    scans = make_tiny_run(tmp_path / "runs" / "scans")          # no limit is the highest of an ensemble's limits
    (scans / "config.yaml").write_text(yaml.safe_dump({**cfg, "max_pixels": 150_000_000}))
    assert recorded_max_pixels(EnsembleSpec("e", "soft", [member_from_run(r) for r in (scans, run)], ["a", "b"])) == 0
    fake_default.clear()
    _, summary = _predict(scans, test, tmp_path / "p2", "--max-pixels", 0)
    assert summary["n_unreadable"] == 0 and {b for _, b in fake_default} == {0}, set(fake_default)
    # a study's recorded fixed options alike (tune --study NAME resumes it)
    from imgcls.tune import _base_config
    assert _base_config({"base_config": {**cfg, "max_pixels": None}})["max_pixels"] == 0


# --- split -------------------------------------------------------------------------------------------------------

def test_split_raised_limit_reaches_the_near_duplicate_pass(data, tmp_path, fake_default):
    """split's scan honoured --max-pixels but its near-duplicate pass (embeddings, verification thumbnails)
    decoded at PIL's default: an image above it was scanned readable, then never embedded, so its near copy on
    the other side went unseen. Split --check alike."""
    res = invoke("split", data, "--out", tmp_path / "s.csv", "--device", "cpu", "--max-pixels", 20_000)
    assert res.exit_code == 0, res.output
    assert {b for _, b in fake_default} == {20_000}, set(fake_default)
    assert [n for n, _ in fake_default].count(BIG) >= 2        # the scan and the embedding pass
    fake_default.clear()
    res = invoke("split", "--check", tmp_path / "s.csv", "--device", "cpu", "--max-pixels", 20_000,
                 "--cache-dir", tmp_path / "fresh")                    # embedded again, not served by the cache
    assert res.exit_code == 0, res.output
    assert {b for _, b in fake_default} == {20_000}, set(fake_default)


def test_split_with_a_higher_limit_takes_back_an_image_clean_left_out_as_too_big(data, tmp_path):
    """clean left an image over its --max-pixels out (keep=false, reason unreadable); split of that manifest with a
    higher limit scanned it again readable, but clean's keep=false still left it out, said as 'clean: unreadable'
    with no error. clean judged it unreadable alone: read now, it is kept."""
    _, m = _clean(data, tmp_path / "c", "--exact-only", "--no-ood", "--max-pixels", 5000)
    assert str(m.loc[f"a/{BIG}", "keep"]) == "False"
    for limit, kept in ((0, True), (20_000, True), (8_000, False)):         # 8,000 still leaves it out
        table = tmp_path / f"s{limit}.csv"
        res = invoke("split", tmp_path / "c" / "manifest.csv", "--out", table, "--no-near-dup", "--max-pixels",
                     limit)
        assert res.exit_code == 0, res.output
        row = pd.read_csv(table, keep_default_na=False).set_index("path").loc[f"a/{BIG}"]
        assert (row["drop_reason"] == "" and row["split"] != "" and row["reason"] == "") == kept, (limit, row)


# --- eda and preprocess ---------------------------------------------------------------------------------------

def test_eda_raised_limit_reaches_the_test_sets_grey_check(tmp_path, fake_default):
    """eda --test looks at colour images to tell greyscale pictures saved as RGB (no colour shift) from colour ones.
    That look decoded at PIL's default bound, not eda's --max-pixels: a large grey scan the scan read under a
    raised --max-pixels could not be looked at, was taken for colour, and eda warned of a mode shift (L training
    images, RGB test images) that the pixels do not show."""
    from PIL import Image
    train, test = tmp_path / "train" / "x", tmp_path / "test"
    train.mkdir(parents=True)
    test.mkdir()
    for k in range(3):
        Image.new("L", (48, 40), 60 + 40 * k).save(train / f"g{k}.jpg")
    Image.new("RGB", (100, 100), (120, 120, 120)).save(test / BIG.replace(".png", ".jpg"))   # grey, as RGB
    out = tmp_path / "eda"
    res = invoke("eda", train.parent, "--test", test, "--out", out, "--max-pixels", 20_000, "--workers", 1)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())["test"]
    assert summary["n_readable"] == 1 and summary["modes"] == {"RGB": 1}
    assert summary["shifts"]["mode"] == [] and "image modes differ" not in said(res), summary["shifts"]
    assert {b for _, b in fake_default} == {20_000}, set(fake_default)     # every decode took the flag


def test_preprocess_raised_limit_reaches_the_reports_thumbnails(data, tmp_path, fake_default):
    """report.html's before / after thumbnails decoded at PIL's default bound, not preprocess's --max-pixels: a
    large scan it processed under a raised --max-pixels was a blank input thumbnail in its report."""
    out = tmp_path / "p"
    res = invoke("preprocess", data, "--out", out, "--size", 32, "--max-pixels", 20_000, "--workers", 1, "--quiet")
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text()
    assert f"a/{BIG}" in page and page.count("data:image/jpeg;base64,") == 24    # an input and an output for 12
    assert imgio.DEFAULT_MAX_PIXELS not in {b for _, b in fake_default}, set(fake_default)


@pytest.mark.parametrize("cmd", ["clean", "train", "predict", "tune", "split"])
@pytest.mark.parametrize("value", ["-1", "-5"])
def test_max_pixels_out_of_range_is_one_line(cmd, value, data, tmp_path, monkeypatch):
    import imgcls.manifest as mf
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    extra = ["--study", "s"] if cmd == "tune" else []
    res = invoke(cmd, data, *extra, "--out", tmp_path / "out", "--max-pixels", value)
    assert res.exit_code == 2 and res.output.strip() == f"error: --max-pixels must be >= 0 (got {value})", res.output
    assert not (tmp_path / "out").exists()
