"""imgcls.manifest: layouts, profile labels, scanning, writing / re-reading."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from conftest import make_image, make_image_folder
from imgcls import manifest as mf
from imgcls.errors import UserError


def opts(**kw) -> mf.LayoutOptions:
    return mf.LayoutOptions(**kw)


def test_detect_layouts(tmp_path, image_folder, profile_folder):
    assert mf.detect_layout(image_folder, opts()) == "folder"
    assert mf.detect_layout(profile_folder, opts()) == "profiles"
    flat = tmp_path / "test"
    for i in range(3):
        make_image(flat / f"{i}.png", seed=i)
    assert mf.detect_layout(flat, opts()) == "unlabeled"
    csv = tmp_path / "train.csv"
    pd.DataFrame({"image": ["a/000.png"], "label": ["a"]}).to_csv(csv, index=False)
    assert mf.detect_layout(csv, opts()) == "csv"
    assert mf.detect_layout(image_folder, opts(csv=str(csv))) == "csv"
    df = mf.load(image_folder, scan=True)
    mf.write(df, tmp_path / "out" / "manifest.csv")
    assert mf.detect_layout(tmp_path / "out" / "manifest.csv", opts()) == "manifest"
    assert mf.detect_layout(tmp_path / "out", opts()) == "manifest"
    assert mf.detect_layout(image_folder, opts(layout="unlabeled")) == "unlabeled"


def test_folder_layout_counts_and_nested(tmp_path):
    root = make_image_folder(tmp_path / "raw", {"cat": 3, "dog": 2})
    make_image(root / "dog" / "sub" / "deep.png", seed=99)       # root/<class>/**/<image>
    make_image(root / "loose.png", seed=98)                        # no class folder: left out, warned
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    make_image(root / ".hidden" / "x.png", seed=97)
    df = mf.load(root, scan=False)
    assert df["label"].value_counts().to_dict() == {"cat": 3, "dog": 3}
    assert "dog/sub/deep.png" in set(df["path"])
    assert (df["group"] == "").all()


def test_profiles_labels_and_groups(profile_folder):
    df = mf.load(profile_folder, scan=False)
    assert len(df) == 12 * 7
    for _, r in df.iterrows():
        pid, gender, race, age = r["profile"].split("_")
        stem = r["path"].split("/")[1].split(".")[0]
        mask = 0 if stem.startswith("mask") else 1 if stem.startswith("incorrect") else 2
        g = 0 if gender == "male" else 1
        band = 0 if int(age) < 30 else 1 if int(age) < 60 else 2
        assert (r["mask"], r["gender"], r["age"], r["age_band"]) == (mask, g, int(age), band)
        assert r["label"] == str(mask * 6 + g * 3 + band)
        assert r["group"] == pid
    assert all(sorted(g) == [0, 0, 0, 0, 0, 1, 2] for _, g in df.groupby("group")["mask"])


def test_profile_label_helpers():
    assert mf.age_band(29) == 0 and mf.age_band(30) == 1 and mf.age_band(59) == 1 and mf.age_band(60) == 2
    assert mf.age_band(58, (30, 58)) == 2
    assert mf.profile_label(2, 1, 2) == 17 and mf.profile_label(0, 0, 0) == 0 and mf.profile_label(1, 0, 1) == 7
    df = pd.DataFrame({"mask": [0, 1], "gender": [1, 0], "age": [58, 20]})
    out = mf.apply_profile_labels(df, (30, 58))
    assert out["age_band"].tolist() == [2, 0] and out["label"].tolist() == ["5", "6"]


def test_profiles_custom_bands(profile_folder):
    df = mf.load(profile_folder, opts(age_bands=(40,)), scan=False)
    assert set(df["age_band"]) <= {0, 1}
    r = df.iloc[0]
    assert r["label"] == str(r["mask"] * 4 + r["gender"] * 2 + (r["age"] >= 40))


def test_competition_csv(tmp_path, image_folder):
    csv = tmp_path / "train.csv"
    pd.DataFrame({"img": ["./a/000.png", "b/001.png", "c/000.png"], "cls": ["x", "y", "z"],
                  "person": ["p1", "p1", "p2"], "age": ["20", "30", "40"]}).to_csv(csv, index=False)
    df = mf.load(image_folder, opts(csv=str(csv), path_col="img", label_col="cls", group_col="person"), scan=True)
    assert df["path"].tolist() == ["a/000.png", "b/001.png", "c/000.png"]
    assert df["label"].tolist() == ["x", "y", "z"] and df["group"].tolist() == ["p1", "p1", "p2"]
    assert df["age"].tolist() == ["20", "30", "40"]                  # other columns kept as attributes
    assert (df["error"] == "").all() and df["width"].tolist() == [48] * 3


def test_competition_csv_guesses_and_errors(tmp_path, image_folder):
    csv = tmp_path / "train.csv"
    pd.DataFrame({"image_path": ["a/000.png", "missing.png"], "label": ["a", "b"]}).to_csv(csv, index=False)
    df = mf.load(image_folder, opts(csv=str(csv)), scan=True)
    assert df["label"].tolist() == ["a", "b"]
    assert df["error"].iloc[0] == "" and df["error"].iloc[1].startswith("cannot read file")   # listed, not crashed
    with pytest.raises(UserError, match="column 'nope' is not in .*--label-col"):
        mf.load(image_folder, opts(csv=str(csv), label_col="nope"), scan=False)
    bad = tmp_path / "weird.csv"
    pd.DataFrame({"x": ["a/000.png"]}).to_csv(bad, index=False)
    with pytest.raises(UserError, match="--path-col"):
        mf.load(image_folder, opts(csv=str(bad)), scan=False)
    with pytest.raises(UserError, match="does not exist; check --csv"):
        mf.load(image_folder, opts(csv=str(tmp_path / "none.csv")), scan=False)


def test_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        mf.load(tmp_path / "missing")
    with pytest.raises(UserError, match="unknown layout 'weird'"):
        mf.load(tmp_path, opts(layout="weird"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images found"):
        mf.load(tmp_path / "empty")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(UserError, match="neither a folder nor a CSV"):
        mf.load(tmp_path / "x.txt")
    with pytest.raises(UserError, match="needs --csv"):
        mf.load(tmp_path / "empty", opts(layout="csv"))


def test_write_and_reread_after_moving(tmp_path, image_folder):
    df = mf.load(image_folder, scan=True, workers=1)
    m = mf.write(df, tmp_path / "eda" / "manifest.csv")
    text = m.read_text()
    assert str(tmp_path) not in text                                  # root stored relative
    assert text.splitlines()[0].startswith("path,label,group")
    # move the data and the manifest together: the manifest still finds the images
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(str(image_folder), moved / "raw")
    shutil.move(str(tmp_path / "eda"), moved / "eda")
    back = mf.load(moved / "eda" / "manifest.csv", scan=True)
    assert back["root"].iloc[0] == str((moved / "raw").resolve())
    assert all(p.is_file() for p in mf.image_paths(back))
    cols = ["path", "label", "group", "width", "height", "mode", "format", "bytes", "sha256", "error"]
    pd.testing.assert_frame_equal(back[cols].reset_index(drop=True), df[cols].reset_index(drop=True),
                                  check_dtype=False)


def test_scan_skips_rows_already_scanned(tmp_path, image_folder):
    df = mf.load(image_folder, scan=True)
    df.loc[0, "sha256"] = "precomputed"
    again = mf.scan_images(df)
    assert again.loc[0, "sha256"] == "precomputed"                    # not rescanned
    assert (again["sha256"].iloc[1:] == df["sha256"].iloc[1:]).all()


def test_scan_workers_agree(tmp_path):
    root = make_image_folder(tmp_path / "raw", {"a": 40, "b": 30})
    (root / "a" / "bad.png").write_bytes(b"")
    one = mf.load(root, scan=True, workers=1)
    two = mf.scan_images(mf.load(root, scan=False), workers=2, chunk=16)
    pd.testing.assert_frame_equal(one, two)
    assert one.loc[one["path"] == "a/bad.png", "error"].item() == "empty file (0 bytes)"
    assert len(mf.readable(one)) == 70


def test_class_names_sorting():
    assert mf.class_names(["10", "2", "1", "", "2"]) == ["1", "2", "10"]
    assert mf.class_names(["b", "a", "B"]) == ["B", "a", "b"]


def test_default_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="pass the data folder"):
        mf.default_source(["data/clean", "data/raw"], "data")
    (tmp_path / "data" / "raw").mkdir(parents=True)
    assert mf.default_source(["data/clean", "data/raw"], "data").as_posix() == "data/raw"
