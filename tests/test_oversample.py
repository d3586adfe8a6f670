"""Offline minority oversampling (preprocess --oversample): the count formula, the copies' manifest rows, resume,
split keeping copies with their sources, train never validating on a copy."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from imgcls import manifest as mf
from imgcls.errors import UserError
from imgcls.oversample import class_targets, extra_copies, parse_target
from imgcls.preprocess import PreprocessConfig, run_preprocess

from conftest import make_image_folder, tree_snapshot


def test_target_formula_and_spelling():
    counts = {"a": 20, "b": 6, "c": 2, "d": 9}
    # median of 2, 6, 9, 20 = (6 + 9) // 2 = 7; factor 4 caps c at 8 -> 7 stays the goal for c
    assert class_targets(counts, "median", 4) == {"a": 20, "b": 7, "c": 7, "d": 9}
    assert class_targets(counts, "max", 4) == {"a": 20, "b": 20, "c": 8, "d": 20}
    assert class_targets(counts, 12, 1.5) == {"a": 20, "b": 9, "c": 3, "d": 12}
    assert extra_copies(counts, "max", 4) == {"a": 0, "b": 14, "c": 6, "d": 11}
    assert parse_target(" MEDIAN ") == "median" and parse_target("15") == 15 and parse_target(None) is None
    assert parse_target("off") is None and parse_target(" Off ") is None
    for bad in ("mean", "0", "-3", "1.5"):
        with pytest.raises(UserError, match="--oversample takes median, max, off or a positive number"):
            parse_target(bad)
    with pytest.raises(UserError, match="--oversample-max-factor"):
        class_targets(counts, "max", 0.5)


def _run(src, out, **kw):
    return run_preprocess(src, out, PreprocessConfig(**kw), report=False)


@pytest.mark.parametrize("aug", ["medium", "mixup"])
def test_copies_per_class_match_the_formula_and_point_at_their_source(tmp_path, aug):
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 3, "c": 1}, size=(40, 32))
    before = tree_snapshot(src)
    out = tmp_path / "out"
    res = _run(src, out, oversample="max", oversample_aug=aug, oversample_max_factor=2, seed=3)
    assert tree_snapshot(src) == before                      # the input is never written
    copies = res[mf.augmented(res)]
    originals = res[~mf.augmented(res)]
    want = extra_copies(originals["label"].value_counts().to_dict(), "max", 2)
    assert copies["label"].value_counts().to_dict() == {k: v for k, v in want.items() if v} == {"b": 3, "c": 1}
    written = mf.read_manifest_file(out / "manifest.csv")
    assert len(written) == len(res) and mf.augmented(written).sum() == 4
    by_path = originals.set_index("path")
    for _, r in copies.iterrows():
        srcs = mf.copy_sources(r["augmented_from"])
        assert all(s in by_path.index and by_path.at[s, "label"] == r["label"] for s in srcs)
        assert r["source_path"] == by_path.at[srcs[0], "source_path"]   # the original input image
        assert (out / r["path"]).is_file() and r["sha256"] and r["error"] == ""
        assert "__os" in r["path"]
        # an augmented copy is not its source's pixels
        assert r["sha256"] != by_path.at[srcs[0], "sha256"]
    if aug == "mixup":   # class b has 3 images: its copies blend two different ones; class c (1 image) cannot
        b = copies[copies["label"] == "b"]
        assert all(len(mf.copy_sources(a)) == 2 for a in b["augmented_from"])
    # every copy of a source differs from the others (each drawn afresh)
    assert copies["sha256"].is_unique


def test_seeded_resumable_and_a_changed_target_removes_old_copies(tmp_path):
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 2}, size=(32, 32))
    out = tmp_path / "out"
    first = _run(src, out, oversample="max", oversample_max_factor=3, seed=1)
    hashes = dict(zip(first["path"], first["sha256"]))
    copies = first.loc[mf.augmented(first), "path"].tolist()
    assert len(copies) == 4
    mtimes = {p: (out / p).stat().st_mtime_ns for p in copies}
    again = _run(src, out, oversample="max", oversample_max_factor=3, seed=1)   # resumed: nothing rewritten
    assert dict(zip(again["path"], again["sha256"])) == hashes
    assert {p: (out / p).stat().st_mtime_ns for p in copies} == mtimes
    fresh = _run(src, tmp_path / "out2", oversample="max", oversample_max_factor=3, seed=1)
    assert dict(zip(fresh["path"], fresh["sha256"])) == hashes                     # seeded: same pixels
    fewer = _run(src, out, oversample=3, oversample_max_factor=3, seed=1)           # b: 2 -> 3, one copy
    kept = fewer.loc[mf.augmented(fewer), "path"].tolist()
    assert len(kept) == 1
    assert not any((out / p).exists() for p in set(copies) - set(kept))
    none = _run(src, out)                                                          # oversampling off
    assert not mf.augmented(none).any() and not any((out / p).exists() for p in copies)


@pytest.mark.parametrize("again", [{"oversample": "off"}, {"oversample": "max", "oversample_max_factor": 2}])
def test_an_input_image_named_like_an_earlier_run_s_copy_is_not_removed(tmp_path, again):
    """A real input image named like a copy an earlier run wrote (b/000__os2.png): the run wrote it to --out, then
    its removal of the earlier run's copies deleted it (only this run's copies were spared), leaving a manifest row
    with no file, with --oversample off and on."""
    import hashlib

    from conftest import make_image
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 2}, size=(32, 32))
    out = tmp_path / "out"
    first = _run(src, out, oversample="max", oversample_max_factor=3, seed=1)
    assert "b/000__os2.png" in set(first.loc[mf.augmented(first), "path"])
    make_image(src / "b" / "000__os2.png", size=(32, 32), seed=99)    # the user's own image, not a copy
    res = _run(src, out, seed=1, **again)
    row = res[res["path"] == "b/000__os2.png"]
    assert len(row) == 1 and not mf.augmented(row).any()
    assert (out / "b/000__os2.png").is_file()
    assert hashlib.sha256((out / "b/000__os2.png").read_bytes()).hexdigest() == row["sha256"].iloc[0]
    assert all((out / p).is_file() for p in res["path"])


def test_an_input_image_named_like_a_copy_this_run_may_make_is_refused_before_the_work(tmp_path, monkeypatch):
    """An input image named like a copy the run would make (b/000__os1.png beside b/000.png, b a minority class)
    was refused only after every image was processed, the plan of copies waiting for the written images. It is one
    line before the scan, --out untouched; --oversample off then processes that image as any other, and keeps it
    (with an earlier run's copy of that name in --out, too)."""
    import hashlib

    from conftest import make_image
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 2}, size=(32, 32))
    out = tmp_path / "out"
    first = _run(src, out, oversample="max", seed=1)
    assert "b/000__os1.png" in set(first.loc[mf.augmented(first), "path"])
    before = tree_snapshot(out)
    make_image(src / "b" / "000__os1.png", size=(32, 32), seed=99)    # the user's own image, not a copy
    monkeypatch.setattr(mf, "scan_images", lambda *a, **k: pytest.fail("scanned"))
    with pytest.raises(UserError) as e:
        _run(src, out, oversample="max", seed=1)
    assert "an oversampled copy may be named b/000__os1.png, which the input image b/000__os1.png already is" in \
        str(e.value) and "rename that image, or drop --oversample" in str(e.value)
    assert tree_snapshot(out) == before
    monkeypatch.undo()
    res = _run(src, out, oversample="off", seed=1)
    row = res[res["path"] == "b/000__os1.png"]
    assert len(row) == 1 and not mf.augmented(res).any()
    assert hashlib.sha256((out / "b/000__os1.png").read_bytes()).hexdigest() == row["sha256"].iloc[0]
    assert all((out / p).is_file() for p in res["path"])

def _interrupted_copies(monkeypatch, src, out, at_copy: int, **kw) -> None:
    """A preprocess --oversample run into `out` killed (Ctrl-C) as it starts writing its `at_copy`-th copy."""
    import imgcls.preprocess.oversample as ov
    real, calls = ov.save_image, []

    def dies(*a, **k):
        calls.append(1)
        if len(calls) == at_copy:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(ov, "save_image", dies)
    with pytest.raises(KeyboardInterrupt):
        _run(src, out, **kw)
    monkeypatch.setattr(ov, "save_image", real)


def test_copies_of_interrupted_runs_under_other_settings_are_removed_by_the_run_that_finishes(tmp_path,
                                                                                              monkeypatch):
    """The copies an interrupted --oversample run wrote are recorded only in its journal, which the finishing run's
    removal of stale copies never read (only the last manifest): interrupted with --oversample-aug light, again with
    heavy (whose journal carries the light run's copies over in its header), then finished with --oversample off,
    the copies and the journal stayed in --out for good. The finished run removes them."""
    from imgcls.preprocess.oversample import COPY_JOURNAL, COPY_TAG
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 2, "c": 2}, size=(32, 32))
    out = tmp_path / "out"
    _interrupted_copies(monkeypatch, src, out, 3, oversample="max", oversample_aug="light")
    light = sorted(p.relative_to(out).as_posix() for p in out.rglob(f"*{COPY_TAG}*"))
    assert len(light) == 2
    _interrupted_copies(monkeypatch, src, out, 2, oversample="max", oversample_aug="heavy")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob(f"*{COPY_TAG}*")) == light   # one rewritten
    res = _run(src, out, oversample="off")
    assert not mf.augmented(res).any()
    assert not list(out.rglob(f"*{COPY_TAG}*")) and not (out / COPY_JOURNAL).exists()
    assert len(list(out.rglob("*.png"))) == 12


def test_a_folder_whose_copies_an_interrupted_run_was_rewriting_is_not_read_as_data(tmp_path, monkeypatch):
    """A rerun that changes only the oversampling options finds its originals up to date and keeps no preprocess
    journal: killed while it rewrote the copies, it left the earlier run's manifest.csv (mixup copies of two
    sources) over copies half rewritten under the new options (heavy copies of one), and `split` read it as the
    data. Refused in one line, as an unfinished preprocess run is, until the run is finished."""
    from typer.testing import CliRunner

    from imgcls.cli import app
    from imgcls.preprocess.oversample import COPY_JOURNAL
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 2, "c": 2}, size=(32, 32))
    out = tmp_path / "out"
    _run(src, out, oversample="max", oversample_aug="mixup", seed=0)
    _interrupted_copies(monkeypatch, src, out, 3, oversample="max", oversample_aug="heavy", seed=0)
    assert (out / COPY_JOURNAL).is_file()
    for given in (out, out / "manifest.csv"):
        r = CliRunner().invoke(app, ["split", str(given), "--out", str(tmp_path / "s.csv"), "--no-near-dup", "-q"])
        said = " ".join(r.output.split())
        assert r.exit_code == 2 and "Traceback" not in said, said
        assert f"{out} holds an imgcls preprocess run that did not finish" in said and COPY_JOURNAL in said, said
    assert not (tmp_path / "s.csv").exists()
    res = _run(src, out, oversample="max", oversample_aug="heavy", seed=0)
    r = CliRunner().invoke(app, ["split", str(out), "--out", str(tmp_path / "s.csv"), "--no-near-dup", "-q"])
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(tmp_path / "s.csv")) == len(res) == 24


def test_a_kill_after_the_copies_before_the_manifest_leaves_the_folder_refused(tmp_path, monkeypatch):
    """add_copies removed its journal as it finished, before run.py wrote the stamps, manifest.csv and
    preprocess.json: a kill in that window left the earlier manifest (mixup copies) over copies rewritten under
    the new options with no journal, and the folder was read as finished data. The journal goes only after
    preprocess.json is written; the rerun finishes the folder."""
    import imgcls.preprocess.run as pr
    from imgcls.outputs import refuse_output_as_data
    from imgcls.preprocess.oversample import COPY_JOURNAL
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 2, "c": 2}, size=(32, 32))
    out = tmp_path / "out"
    _run(src, out, oversample="max", oversample_aug="mixup", seed=0)

    def dies(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pr, "write_stamps", dies)
    with pytest.raises(KeyboardInterrupt):
        _run(src, out, oversample="max", oversample_aug="heavy", seed=0)
    monkeypatch.undo()
    assert (out / COPY_JOURNAL).is_file()
    with pytest.raises(UserError, match="did not finish"):
        refuse_output_as_data(out)
    res = _run(src, out, oversample="max", oversample_aug="heavy", seed=0)
    assert not (out / COPY_JOURNAL).exists()
    refuse_output_as_data(out)
    assert not res.loc[mf.augmented(res), "augmented_from"].str.contains(mf.COPY_SEP, regex=False).any()


def _assert_copies_follow_sources(sp: pd.DataFrame) -> int:
    """Every copy in a split has all its sources on its side (split and fold), or with folds one of them, the
    others in other folds (train drops it from their training); a copy left out (COPY_ACROSS) has its sources on
    two sides (with folds, one of them test); nothing else is left out. Returns the number of copies left out."""
    from imgcls.split import COPY_ACROSS
    fold = sp["fold"].astype("Int64") if "fold" in sp.columns else pd.Series(pd.NA, index=sp.index, dtype="Int64")
    side = dict(zip(sp["path"], zip(sp["split"], fold.fillna(-2).astype(int))))
    copy = mf.augmented(sp)
    assert (sp.loc[~copy, "drop_reason"] == "").all() and (sp.loc[~copy, "split"] != "").all()
    left = 0
    for _, r in sp[copy].iterrows():
        sources = {side[s] for s in mf.copy_sources(r["augmented_from"])}
        folds = "fold" in sp.columns
        if r["drop_reason"] == COPY_ACROSS:
            assert side[r["path"]] == ("", -2) and len(sources) == 2, (r["path"], sources)
            assert not folds or "test" in {s for s, _ in sources}, (r["path"], sources)
            left += 1
        elif folds:
            assert r["drop_reason"] == "" and side[r["path"]] in sources, (r["path"], sources)
            assert len(sources) == 1 or "test" not in {s for s, _ in sources}, (r["path"], sources)
        else:
            assert r["drop_reason"] == "" and sources == {side[r["path"]]}, (r["path"], sources)
    return left


def test_split_never_puts_a_copy_and_its_source_on_two_sides(tmp_path):
    from imgcls.split import SplitConfig, make_split
    src = make_image_folder(tmp_path / "raw", {"a": 12, "b": 6, "c": 4}, size=(32, 32))
    out = tmp_path / "out"
    res = _run(src, out, oversample="max", oversample_aug="mixup", oversample_max_factor=3, seed=0)
    df = mf.load(out / "manifest.csv", announce=False)
    for seed in range(3):
        sp, *_ = make_split(df, SplitConfig(val=0.3, test=0.2, near_dup=False, seed=seed))
        _assert_copies_follow_sources(sp)
    sp, *_ = make_split(df, SplitConfig(folds=3, test=0.2, near_dup=False, seed=1))
    _assert_copies_follow_sources(sp)
    # the link holds by augmented_from alone (a manifest whose source_path was rewritten)
    df2 = df.assign(source_path=[f"x{k}" for k in range(len(df))])
    sp, *_ = make_split(df2, SplitConfig(val=0.3, test=0.2, near_dup=False, seed=5))
    _assert_copies_follow_sources(sp)
    assert len(res) == len(df)


def test_train_never_validates_on_a_copy(tmp_path, capsys):
    from imgcls.train.data import assign_split
    paths = [f"a/{k}.png" for k in range(10)] + ["a/0__os1.png", "a/1__os1.png", "a/2__os1.png"]
    df = pd.DataFrame({"path": paths, "label": ["a"] * 5 + ["b"] * 5 + ["a", "a", "b"],
                       "augmented_from": [""] * 10 + ["a/0.png", "a/1.png", "a/5.png|a/6.png"]})
    # the random fallback: drawn from originals, a copy trains only with its sources
    for seed in range(5):
        train, val = assign_split(df, None, 0.4, seed)
        assert not val[10:].any()
        for k, a in zip(range(10, 13), df["augmented_from"][10:]):
            srcs = [paths.index(s) for s in mf.copy_sources(a)]
            assert train[k] == all(train[s] for s in srcs)
        # the copies left in neither train nor val are said, as split's placement of them is (they were missing
        # from train's 'N train images / M val images' with no line)
        out = (~train & ~val)[10:].sum()
        err = " ".join(capsys.readouterr().err.split())
        assert (f"{out} oversampled cop{'y' if out == 1 else 'ies'} (augmented_from) of validation images: neither "
                f"validated on" in err) == (out > 0), (seed, err)
    # a hand-made split that validates on a copy, and trains on a copy of a validation image: both dropped, said
    df["split"] = ["train"] * 8 + ["val"] * 2 + ["val", "train", "train"]
    df.loc[1, "split"] = "val"
    train, val = assign_split(df, None, 0.2, 0)
    err = capsys.readouterr().err
    assert not val[10] and not train[11] and train[12] and val[1]
    assert "warning: 1 oversampled copy (augmented_from) in the validation rows whose sources train: dropped from " \
           "validation" in " ".join(err.split())
    assert "whose source validates: dropped from training" in " ".join(err.split())
    # imgcls split's placement: a validation image's copies validate with it; used for neither, said without alarm
    df["split"] = ["train"] * 8 + ["val"] * 2 + ["train", "val", "val"]
    df.loc[[1, 5, 6], "split"] = "val"
    train, val = assign_split(df, None, 0.2, 0)
    err = " ".join(capsys.readouterr().err.split())
    assert not val[10:].any() and not train[11:].any() and train[10]
    assert "2 oversampled copies (augmented_from) of validation images: neither validated on" in err
    assert "warning" not in err


def test_cli_oversample_and_bad_target(tmp_path):
    from typer.testing import CliRunner

    from imgcls.cli import app
    src = make_image_folder(tmp_path / "raw", {"a": 4, "b": 2}, size=(32, 32))
    r = CliRunner().invoke(app, ["preprocess", str(src), "--out", str(tmp_path / "o"), "--oversample", "lots"])
    assert r.exit_code == 2 and "--oversample takes median, max, off or a positive number" in r.output
    r = CliRunner().invoke(app, ["preprocess", str(src), "--out", str(tmp_path / "o"), "--oversample", "median",
                                 "--oversample-aug", "light", "--quiet"])
    assert r.exit_code == 0, r.output
    res = mf.read_manifest_file(tmp_path / "o" / "manifest.csv")
    assert res.loc[mf.augmented(res), "label"].tolist() == ["b"]       # median (2 + 4) // 2 = 3: one copy of b
    assert np.all(res["augmented_from"].astype(str).str.len()[~mf.augmented(res)] == 0)
    # --oversample off, typed, is the default's no oversampling: the copies go, nothing is summarised as oversampled
    r = CliRunner().invoke(app, ["preprocess", str(src), "--out", str(tmp_path / "o"), "--oversample", "off",
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    res = mf.read_manifest_file(tmp_path / "o" / "manifest.csv")
    assert not mf.augmented(res).any() and len(res) == 6
    import json

    from imgcls.preprocess.outputs import SETTINGS_FILE
    assert json.loads((tmp_path / "o" / SETTINGS_FILE).read_text())["oversample_settings"] is None


def test_copies_of_a_black_background_image_bring_in_no_white_corners():
    """Rotation fills with the source's own border colour: white corners on the copies of a black-background set
    (Fashion-MNIST, digits) appeared on the minority classes only, a shortcut that names the class."""
    from PIL import Image

    from imgcls.preprocess.oversample import make_copy
    a = np.zeros((28, 28, 3), np.uint8)
    a[6:22, 8:20] = 150                                   # a grey garment on black
    src = Image.fromarray(a)
    cfg = PreprocessConfig(oversample="max", oversample_aug="medium", seed=0)
    corners = [np.asarray(make_copy([src], cfg, f"x__os{k}.png")[0])[[0, 0, -1, -1], [0, -1, 0, -1]].max()
               for k in range(12)]
    assert max(corners) < 60, corners
    w = np.full((28, 28, 3), 255, np.uint8)               # a white-background drawing keeps white corners
    w[6:22, 8:20] = 40
    assert min(np.asarray(make_copy([Image.fromarray(w)], cfg, f"x__os{k}.png")[0])[0, 0].min()
               for k in range(12)) > 200



def _grey_set(src):
    """Class a: 9 grey PNGs; class b: 3 grey and 1 colour."""
    from PIL import Image
    rng = np.random.default_rng(1)
    for cls, n in {"a": 9, "b": 3}.items():
        (src / cls).mkdir(parents=True)
        for i in range(n):
            g = rng.integers(0, 256, (30, 36), dtype=np.uint8)
            g[:, :4] = 20                                          # a dark border: rotation fills with its grey
            Image.fromarray(g, "L").save(src / cls / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (30, 36, 3), dtype=np.uint8)).save(src / "b" / "c.png")
    return src


@pytest.mark.parametrize("aug", ["light", "medium", "heavy", "mixup"])
def test_copies_of_a_grey_source_are_grey_and_read_back_as_the_rgb_augmentation(tmp_path, aug):
    """preprocess writes a grey source as 'L', but its oversampled copies were read with io.load_rgb and written RGB:
    a grey set got L originals beside RGB copies. A copy is grey when its sources are: the augmentation of the RGB
    that train reads, as its R channel; a copy with a colour source is RGB."""
    from PIL import Image

    from imgcls.preprocess.oversample import make_copy
    out = tmp_path / "out"
    res = _run(_grey_set(tmp_path / "raw"), out, oversample="max", oversample_aug=aug, oversample_max_factor=3,
               seed=0)
    copies = res[mf.augmented(res)].set_index("path")
    ori = res[~mf.augmented(res)].set_index("path")
    assert (ori["mode"] == "L").sum() == 12 and ori.at["b/c.png", "mode"] == "RGB"
    cfg = PreprocessConfig(oversample="max", oversample_aug=aug, seed=0)
    modes = []
    for name, r in copies.iterrows():
        sources = mf.copy_sources(r["augmented_from"])
        want = "L" if all(ori.at[s, "mode"] == "L" for s in sources) else "RGB"
        assert r["mode"] == want and Image.open(out / name).mode == want
        modes.append(want)
        # the pixels train reads back are those of the augmentation of the sources' RGB
        rgb = make_copy([Image.open(out / s).convert("RGB") for s in sources], cfg, name)[0]
        np.testing.assert_array_equal(np.asarray(Image.open(out / name).convert("RGB")), np.asarray(rgb))
    assert len(modes) == 5 and "L" in modes and "RGB" in modes, modes


def test_every_preset_keeps_a_grey_image_grey(tmp_path):
    """The grey copy is the R channel of the augmented RGB: it loses nothing because every preset (colour jitter
    and heavy's hue shift included) and mixup keep equal channels equal; a grey and a colour image blend to RGB."""
    from PIL import Image

    from imgcls.preprocess.oversample import make_copy
    from imgcls.train.data import AUG_PRESETS
    src = _grey_set(tmp_path / "raw")
    two = [Image.open(src / "a" / "0.png"), Image.open(src / "a" / "1.png")]
    for preset in [p for p in AUG_PRESETS if p != "none"] + ["mixup"]:
        cfg = PreprocessConfig(oversample="max", oversample_aug=preset, seed=0)
        for k in range(30):     # copies 1-3 (light: the mirror, then affine moves) of 30 names
            name = f"a/{k}__os{k % 3 + 1}.png"
            rgb = np.asarray(make_copy([im.convert("RGB") for im in two], cfg, name)[0])
            assert (rgb == rgb[..., :1]).all(), (preset, k)
            grey = make_copy(two, cfg, name)[0]
            assert grey.mode == "L", (preset, k)
            np.testing.assert_array_equal(np.asarray(grey), rgb[..., 0])
    cfg = PreprocessConfig(oversample="max", oversample_aug="mixup", seed=0)
    c = Image.open(src / "b" / "c.png")
    mixed = make_copy([two[0], c], cfg, "a/0__os1.png")[0]
    assert mixed.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(mixed),
                                  np.asarray(make_copy([two[0].convert("RGB"), c], cfg, "a/0__os1.png")[0]))


@pytest.mark.parametrize("factor", [1.5, 2, 2.5, 4])
def test_every_copy_name_a_run_may_make_is_known_before_the_work(factor):
    """preprocess refuses a user's own file of an oversampled copy's name before any image is written
    (possible_copy_names), when which images are written (and so each class's draw, plan_copies) is not yet known:
    whichever of the rows end up written, every copy name the plan gives is among those names."""
    from imgcls.preprocess.oversample import plan_copies, possible_copy_names
    labels = ["a"] * 9 + ["b"] * 4 + ["c"] * 1 + [""] * 2
    df = pd.DataFrame({"path": [f"{lab or 'x'}/{i:03d}.png" for i, lab in enumerate(labels)], "label": labels})
    cfg = PreprocessConfig(oversample="max", oversample_max_factor=factor)
    possible = set(possible_copy_names(df, list(df["path"]), cfg))
    assert not any(n.startswith("x/") for n in possible)        # an unlabelled row gets no copy
    rng = np.random.default_rng(0)
    for _ in range(30):                 # the images that fail or are dropped: any subset
        eligible = (rng.random(len(df)) < 0.7) & (df["label"] != "").to_numpy()
        for target in ("max", 9, 5):
            plan = plan_copies(df, eligible, PreprocessConfig(oversample=target, oversample_max_factor=factor))
            assert {n for n, _ in plan} <= possible
    assert possible_copy_names(df, list(df["path"]), PreprocessConfig()) == []      # no --oversample: none


def test_oversample_of_an_unlabelled_folder_is_refused_before_the_work(tmp_path):
    """preprocess photos/ --oversample median (a flat folder of 72 photos, read as layout 'unlabeled') processed every
    image and then said 'oversampling (median, x4 at most, medium): 0 copies of 0 class(es)': a flag that did
    nothing, said after the work. It is now one line naming the missing labels, before any image is read."""
    from PIL import Image
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 16), (40 * i, 90, 30)).save(src / f"p{i}.png")
    from imgcls.cli import app
    from typer.testing import CliRunner
    r = CliRunner().invoke(app, ["preprocess", str(src), "--out", str(tmp_path / "out"), "--size", "16",
                                 "--oversample", "median", "--workers", "1", "-q"])
    flat = " ".join(r.output.split())
    assert r.exit_code == 2 and "--oversample median copies the images of each labelled class" in flat, r.output
    assert "has no labels" in flat and "drop --oversample" in flat and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()
    # as the line says: without --oversample the same folder is processed
    _run(src, tmp_path / "out", size=16)
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


def test_predict_s_training_distribution_leaves_a_run_s_oversampled_copies_out(tmp_path):
    """predict's report sets the submission's class shares against the run's training shares (per_class.csv's
    train_support), which counted preprocess --oversample's copies as training images: on a long-tailed
    Fashion-MNIST a class of 3 images and 4 copies read as 7, its training share doubled and the share ratio
    halved, though the copies are synthetic. per_class.csv now records train_copies, and the report's training
    counts are the images (train_support - train_copies), said in its source line."""
    from imgcls.inference_report import training_distribution
    from imgcls.train import TrainConfig, run_train
    src = make_image_folder(tmp_path / "raw", {"a": 10, "b": 3}, size=(32, 32))
    data = _run(src, tmp_path / "proc", oversample="max", oversample_max_factor=3, seed=0)
    assert int(mf.augmented(data).sum()) == 6
    run = run_train(TrainConfig(src=str(tmp_path / "proc"), out=str(tmp_path / "runs"), name="r", epochs=1,
                                model="test_resnet", img_size=32, batch_size=8, workers=0, device="cpu",
                                pretrained=False, plots=False, val_split=0.3))
    pc = pd.read_csv(run / "per_class.csv", keep_default_na=False).set_index("class")
    counts, source = training_distribution(run, ["a", "b"])
    assert (pc["train_support"] - pc["train_copies"]).to_dict() == counts.to_dict()
    assert pc.loc["b", "train_copies"] > 0 and counts["b"] < pc.loc["b", "train_support"]
    assert source == f"training images of {run} (its {int(pc['train_copies'].sum())} oversampled copies left out)"


def test_train_says_how_many_of_its_training_images_are_oversampled_copies(tmp_path):
    """train's first line counted preprocess --oversample's copies as training images, unsaid ("157 train / 38 val
    images" on a long-tailed Fashion-MNIST, 17 of the 157 copies). It says how many of them are copies."""
    from imgcls.train import TrainConfig, run_train
    src = make_image_folder(tmp_path / "raw", {"a": 10, "b": 3}, size=(32, 32))
    _run(src, tmp_path / "proc", oversample="max", oversample_max_factor=3, seed=0)
    run = run_train(TrainConfig(src=str(tmp_path / "proc"), out=str(tmp_path / "runs"), name="r", epochs=1,
                                model="test_resnet", img_size=32, batch_size=8, workers=0, device="cpu",
                                pretrained=False, plots=False, val_split=0.3))
    pc = pd.read_csv(run / "per_class.csv", keep_default_na=False)
    n, copies = int(pc["train_support"].sum()), int(pc["train_copies"].sum())
    said = f"({n} train images, {copies} of them oversampled copies (augmented_from) / "
    assert said in (run / "train.log").read_text()


@pytest.mark.parametrize("fold", [None, 0])
def test_train_never_trains_on_a_copy_of_a_test_image(fold, capsys):
    """A hand-made split training on an oversampled copy whose source (or a mixup's second source) is a test image
    trained on it silently (a copy of a validation image is dropped, said): the test score then measures an image
    the model saw. Such a copy is dropped from training now, with a warning; a k-fold table alike."""
    from imgcls.train.data import assign_split
    paths = [f"a/{k}.png" for k in range(8)] + ["a/0__os1.png", "a/1__os1.png", "a/2__os1.png"]
    df = pd.DataFrame({"path": paths, "label": ["a"] * 4 + ["b"] * 4 + ["a", "a", "b"],
                       "split": ["train", "test", "train", "val", "train", "test", "train", "val"] + ["train"] * 3,
                       "augmented_from": [""] * 8 + ["a/0.png", "a/1.png", "a/2.png|a/5.png"]})
    if fold is not None:
        df["fold"] = [1, -1, 1, 0, 1, -1, 1, 0, 1, 1, 1]
    train, val = assign_split(df, fold, 0.2, 0)
    err = " ".join(capsys.readouterr().err.split())
    assert train.tolist() == [True, False, True, False, True, False, True, False, True, False, False], train
    assert val.tolist() == [False, False, False, True, False, False, False, True, False, False, False], val
    assert "warning: 2 oversampled copies whose source is a test image: dropped from training" in err, err


def _symmetric_images():
    """Small grey images (0 / 255): a left-right symmetric one (its mirror is itself), a lopsided one, and a centred
    square on which train's medium / heavy presets can skip every op (a full crop, a rotation nearest interpolation
    undoes, brightness and contrast that 0 and 255 clip back)."""
    from PIL import Image
    sym = np.zeros((28, 28), np.uint8)
    sym[6:22, 8:20] = 255
    side = sym.copy()
    side[6:12, 8:12] = 0
    square = np.zeros((6, 6), np.uint8)
    square[2:4, 2:4] = 255
    return [Image.fromarray(a, "L") for a in (sym, side, square)]


@pytest.mark.parametrize("aug", ["light", "medium", "heavy", "mixup"])
def test_copies_differ_from_their_source_and_from_each_other(aug):
    """light was train's random horizontal flip: a copy was its image as it is or mirrored (136 fmnist_lt images,
    --oversample median: 20 of 48 copies byte-identical to their source), and a class needing several copies per
    image repeated them. The first light copy is the mirror, later ones add a small seeded shift / scale / rotation,
    and with every preset a draw equal to the source or to an earlier copy of it is drawn again (on the 6 px square
    medium's and heavy's copies 1 and 15 were their source). Same seed, same pixels."""
    from imgcls.preprocess.oversample import make_copy
    cfg = PreprocessConfig(oversample="max", oversample_aug=aug, seed=0)
    for i, src in enumerate(_symmetric_images()):
        # light moves the 6 px square by a pixel or none (8 other pictures): 4 copies of it
        n = 4 if i == 2 and aug in ("light", "mixup") else 16
        # in order, as add_copies makes them (copy k draws only itself: `drawn` holds copies 1..k-1; from scratch
        # each drew its k - 1 earlier copies again, n(n+1)/2 draws); the same pixels as from scratch (`again`: the
        # last from scratch draws every earlier copy of its source again, each as its own call would)
        drawn: dict = {}
        copies = [np.asarray(make_copy([src], cfg, f"a/{i}__os{k}.png", drawn)[0]) for k in range(1, n + 1)]
        for k, c in enumerate(copies, 1):
            assert c.shape == np.asarray(src).shape and not np.array_equal(c, np.asarray(src)), (i, k)
        same = [(j, k) for k in range(len(copies)) for j in range(k) if np.array_equal(copies[j], copies[k])]
        assert same == [], (i, same)
        again = [np.asarray(make_copy([src], cfg, f"a/{i}__os{k}.png")[0]) for k in (1, n)]
        np.testing.assert_array_equal(again[0], copies[0])
        np.testing.assert_array_equal(again[1], copies[-1])
    if aug == "light":      # the first copy is the mirror itself, the later ones are not
        lop = _symmetric_images()[1]
        np.testing.assert_array_equal(np.asarray(make_copy([lop], cfg, "a/1__os1.png")[0]), np.asarray(lop)[:, ::-1])
        assert not np.array_equal(np.asarray(make_copy([lop], cfg, "a/1__os3.png")[0]), np.asarray(lop)[:, ::-1])
        other = np.asarray(make_copy([lop], PreprocessConfig(oversample="max", oversample_aug=aug, seed=1),
                                     "a/1__os2.png")[0])
        assert not np.array_equal(other, np.asarray(make_copy([lop], cfg, "a/1__os2.png")[0]))


@pytest.mark.parametrize("aug", ["light", "mixup"])
def test_a_class_needing_several_copies_per_image_gets_distinct_copies_and_no_warning(tmp_path, capsys, aug):
    """End to end: the written copies (pixels read back) differ from their source and from each other, and the
    warning that light copies repeat their image (and preprocess.json's repeating_classes) is gone."""
    import json

    from PIL import Image
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 2, "c": 1, "d": 5}, size=(32, 32))
    out = tmp_path / "out"
    res = run_preprocess(src, out, PreprocessConfig(oversample="max", oversample_aug=aug, seed=0), workers=1)
    assert "--oversample-aug" not in capsys.readouterr().err
    copies = res[mf.augmented(res)]
    assert copies["label"].value_counts().to_dict() == {"b": 6, "c": 3, "d": 3}
    pixels = {p: np.asarray(Image.open(out / p)) for p in res["path"]}
    groups = copies.groupby(copies["augmented_from"].map(lambda a: mf.copy_sources(a)[0]))["path"]
    for source, names in groups:
        arrays = [pixels[source]] + [pixels[n] for n in names]
        assert all(not np.array_equal(arrays[j], arrays[k]) for k in range(len(arrays)) for j in range(k)), source
    summary = json.loads((out / "preprocess.json").read_text())["oversampled"]
    assert "repeating_classes" not in summary and "repeat" not in (out / "report.html").read_text()


def test_copies_of_an_image_no_augmentation_changes_are_said(tmp_path, capsys):
    """An image of one colour is its own mirror, shift, crop and rotation (filled with its border's colour) and
    brightness of black: no draw differs, and its copies were written as repeats of it, unsaid. One warning after
    the copies names them; a class of varied images gets none."""
    from PIL import Image
    src = make_image_folder(tmp_path / "raw", {"a": 4, "b": 1}, size=(24, 24))
    Image.new("RGB", (24, 24), (0, 0, 0)).save(src / "b" / "000.png")      # b: one black image
    out = tmp_path / "out"
    res = _run(src, out, oversample="max", oversample_aug="medium", seed=0)
    err = " ".join(capsys.readouterr().err.split())
    assert mf.augmented(res).sum() == 3
    assert ("warning: 3 oversampled copies (b/000__os1.png, b/000__os2.png, b/000__os3.png) equal their source or an "
            "earlier copy of it: no draw of --oversample-aug medium changed it (an image of one colour, or too small "
            "for that many copies?)") in err, err
    _run(make_image_folder(tmp_path / "raw2", {"a": 4, "b": 2}, size=(24, 24)), tmp_path / "out2",
         oversample="max", oversample_aug="light", seed=0)
    assert "their source or an earlier copy" not in capsys.readouterr().err


def test_light_copies_bring_in_no_grey_line_at_the_edge():
    """A light copy's shift was drawn with bilinear interpolation, and torchvision blends the fill in with weights it
    has already applied (mask x (mask x pixel - fill) + fill): a white-background drawing got a grey line (191 where
    the edge fell half-way) along the moved edge, on the minority classes' copies only. Nearest, as train's rotation:
    the border band of a white drawing stays white."""
    from PIL import Image

    from imgcls.preprocess.oversample import make_copy
    w = np.full((32, 32, 3), 255, np.uint8)
    w[10:22, 12:20] = 30
    cfg = PreprocessConfig(oversample="max", oversample_aug="light", seed=0)
    for k in range(2, 12):
        c = np.asarray(make_copy([Image.fromarray(w)], cfg, f"x__os{k}.png")[0])
        band = np.concatenate([c[:4].ravel(), c[-4:].ravel(), c[:, :4].ravel(), c[:, -4:].ravel()])
        assert band.min() == 255, (k, band.min())


def test_copies_that_repeat_another_copy_of_their_source_are_said(tmp_path, capsys):
    """A 6 px light copy moves by a pixel or none: a 2 x 2 square on black has 8 other pictures, and copies past
    those (a factor of 12: 11 copies) repeat one another, while each still differs from its source; the warning
    named only copies equal to their source. It names the copies that repeat an earlier copy too."""
    from PIL import Image
    src = tmp_path / "raw"
    for cls, n in {"a": 12, "b": 1}.items():
        (src / cls).mkdir(parents=True)
        for i in range(n):
            a = np.zeros((6, 6), np.uint8)
            a[2:4, 2:4] = 255 if cls == "b" else 20 * i
            Image.fromarray(a, "L").save(src / cls / f"{i:03d}.png")
    res = _run(src, tmp_path / "out", oversample="max", oversample_aug="light", oversample_max_factor=12, seed=0)
    err = " ".join(capsys.readouterr().err.split())
    assert mf.augmented(res).sum() == 11
    said = re.search(r"warning: (\d+) oversampled copies \(b/000__os\d+\.png, .*?\) equal their source or an earlier "
                     r"copy of it: no draw of --oversample-aug light changed it \(an image of one colour, or too small "
                     r"for that many copies\?\)", err)
    assert said and 3 <= int(said.group(1)) <= 10, err


def test_a_source_s_earlier_copies_are_not_drawn_again_for_each_later_copy(tmp_path, monkeypatch):
    """make_copy compares copy k with copies 1..k-1 of its source, and drew each of them again for every copy: a
    source needing 9 copies (--oversample-max-factor 10) took 45 light draws, ever more as the factor grows. Within
    one run the earlier copies' pixels are known (add_copies keeps a digest of each): a copy is drawn once."""
    from imgcls.preprocess import oversample
    draws = []
    real = oversample.light_copy
    monkeypatch.setattr(oversample, "light_copy", lambda *a: draws.append(a[1]) or real(*a))
    src = make_image_folder(tmp_path / "raw", {"a": 10, "b": 1}, size=(32, 32))
    res = _run(src, tmp_path / "out", oversample="max", oversample_aug="light", oversample_max_factor=10, seed=0)
    assert mf.augmented(res).sum() == 9
    assert len(draws) < 2 * 9, sorted(draws)
    from PIL import Image       # the same pixels as a copy drawn alone, its earlier copies drawn again
    cfg = PreprocessConfig(oversample="max", oversample_aug="light", oversample_max_factor=10, seed=0)
    for k in (2, 9):
        alone = oversample.make_copy([Image.open(tmp_path / "out" / "b/000.png")], cfg, f"b/000__os{k}.png")[0]
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / f"b/000__os{k}.png")), alone)


def test_a_rerun_s_counts_say_what_is_in_the_output_apart_from_what_it_wrote(tmp_path):
    """A rerun that changed only --oversample-aug (originals up to date) recorded 'written 6' beside the oversampled
    copies' 'written 2': one word for the images in the output and for what this run wrote. The originals in --out
    are `in_output` (preprocess.json and report.html); `written` is only what a run wrote (the copies')."""
    import json
    src = make_image_folder(tmp_path / "raw", {"a": 4, "b": 2}, size=(32, 32))
    out = tmp_path / "o"
    _run(src, out, oversample="median", oversample_aug="light")
    run_preprocess(src, out, PreprocessConfig(oversample="median", oversample_aug="heavy"))
    s = json.loads((out / "preprocess.json").read_text())
    assert (s["processed"], s["up_to_date"], s["in_output"]) == (0, 6, 6) and "written" not in s, s
    assert (s["oversampled"]["copies"], s["oversampled"]["written"], s["oversampled"]["up_to_date"]) == (1, 1, 0)
    page = (out / "report.html").read_text()
    assert "in_output" in page and ">written<" not in page
