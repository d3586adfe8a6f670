"""imgcls.manifest: layouts, profile labels, scanning, writing / re-reading."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import lock_folder, make_profiles, make_image, make_image_folder, make_tiny_run
from imgcls import manifest as mf
from imgcls import profiles
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


def test_the_mask_competitions_folders_as_they_come(tmp_path, capsys):
    """eval/ holds info.csv and images/: read as that CSV (its ids, its order), not as one class named 'images' --
    predict's default --data data/eval wrote ImageID images/<name> in file order. train/ holds train.csv and
    images/<profile>/: read as the profiles under images/."""
    from conftest import make_profiles
    ev = tmp_path / "eval"
    ids = ["f3.jpg", "0a.jpg", "9c.jpg"]
    for i, n in enumerate(ids):
        make_image(ev / "images" / n, seed=i)
    pd.DataFrame({"ImageID": ids, "ans": 0}).to_csv(ev / "info.csv", index=False)
    assert mf.detect_layout(ev, opts()) == "csv"
    df = mf.load(ev, scan=False)
    assert df["path"].tolist() == ids and df["source_id"].tolist() == ids          # the CSV's order, not sorted
    assert {str((ev / "images").resolve())} == set(df["root"])
    said = " ".join(capsys.readouterr().err.split())
    assert f"the rows of {ev / 'info.csv'}, in its order; --layout folder" in said and "images in" in said
    assert mf.load(ev / "info.csv", scan=False)["root"].iloc[0] == str((ev / "images").resolve())
    assert mf.load(ev, opts(layout="folder"), scan=False)["label"].unique().tolist() == ["images"]   # as asked
    # ids without an extension, images beside the CSV, and only the listed ones
    flat = tmp_path / "test"
    for i, n in enumerate(["b", "a", "extra"]):
        make_image(flat / f"{n}.png", seed=i)
    pd.DataFrame({"id": ["b", "a"]}).to_csv(flat / "test.csv", index=False)
    assert mf.load(flat, scan=False)["path"].tolist() == ["b.png", "a.png"]
    # not taken: a CSV naming no image here, two CSVs (refused: which one is the data is the user's call, see
    # test_two_csvs_listing_an_eval_folders_images_are_refused), or class folders beside the CSV
    (flat / "test.csv").write_text("id\nzz\n")
    assert mf.detect_layout(flat, opts()) == "unlabeled"
    pd.DataFrame({"ImageID": ids}).to_csv(ev / "other.csv", index=False)
    with pytest.raises(UserError):
        mf.detect_layout(ev, opts())
    (ev / "other.csv").unlink()
    classes = make_image_folder(tmp_path / "classes", {"cat": 2, "dog": 1})
    pd.DataFrame({"path": ["cat/000.png"], "breed": ["x"]}).to_csv(classes / "notes.csv", index=False)
    assert mf.detect_layout(classes, opts()) == "folder"
    train = tmp_path / "train"
    make_profiles(train / "images", n_profiles=3)
    pd.DataFrame({"id": ["000001"], "path": ["000001_female_Asian_45"]}).to_csv(train / "train.csv", index=False)
    assert mf.detect_layout(train, opts()) == "profiles"
    df = mf.load(train, scan=False)
    assert len(df) == 3 * 7 and set(df["root"]) == {str((train / "images").resolve())}
    assert mf.load(train, scan=False).equals(df)


def _step_reading(step: str, data, out, tmp_path) -> list[str]:
    """The command line of `step` reading `data` and writing under `out` (predict: a tiny run's, data as --data)."""
    args = {"predict": ["predict", make_tiny_run(tmp_path / "run"), "--data", data, "--out", out],
            "split": ["split", data, "--out", out / "splits.csv"], "train": ["train", data, "--out", out]}.get(
        step, [step, data, "--out", out])
    return [str(a) for a in args]


@pytest.mark.parametrize("step", ["eda", "clean", "preprocess", "split", "train", "predict"])
def test_two_csvs_listing_an_eval_folders_images_are_refused(tmp_path, step):
    """eval/ holding images/ and two CSVs that both list its images (info.csv, sample_submission.csv) was read as
    class folders: one class named 'images', in every step. Now one line naming both CSVs and the fix, exit 2,
    before anything is written; either CSV given is read as the data."""
    from imgcls.cli import app
    from typer.testing import CliRunner
    ev = tmp_path / "eval"
    ids = ["f3.jpg", "0a.jpg"]
    for i, n in enumerate(ids):
        make_image(ev / "images" / n, seed=i)
    for name in ("info.csv", "sample_submission.csv"):
        pd.DataFrame({"ImageID": ids, "ans": 0}).to_csv(ev / name, index=False)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, _step_reading(step, ev, out, tmp_path))
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert (f"{ev} holds info.csv and sample_submission.csv, each listing the images in {ev / 'images'}: which one "
            f"is the data is unsaid; give that one in place of {ev} (e.g. {ev / 'info.csv'})") in said, said
    assert not out.exists()
    if step == "eda":
        assert mf.load(ev / "info.csv", scan=False)["path"].tolist() == ids
        assert mf.load(ev, opts(csv=str(ev / "sample_submission.csv")), scan=False)["path"].tolist() == ids


def test_an_eval_folder_without_its_info_csv_is_unlabeled_images_named_in_images(tmp_path, capsys):
    """eval/ holding images/ alone (its info.csv lost) was read as class folders: one class 'images', paths (and
    predict's ids) images/<name>. Now unlabeled images rooted at images/ (ids as info.csv spells them), said in the
    read line; a folder with more in it, class folders under images/, or --layout typed reads as before."""
    ev = tmp_path / "eval"
    for i, n in enumerate(["f3.jpg", "0a.jpg"]):
        make_image(ev / "images" / n, seed=i)
    assert mf.detect_layout(ev, opts()) == "unlabeled"
    df = mf.load(ev, scan=False)
    assert df["path"].tolist() == ["0a.jpg", "f3.jpg"] and set(df["label"]) == {""}
    assert set(df["root"]) == {str((ev / "images").resolve())} and mf.input_folders(df)[-1] == str(ev.resolve())
    said = " ".join(capsys.readouterr().err.split())
    assert (f"read {ev} as layout 'unlabeled' (2 images; images in {ev / 'images'}: {ev} holds that folder alone "
            f"and no CSV listing its images (the mask competition's info.csv), so the ids are their names there, "
            f"in name order)") in said, said
    assert mf.load(ev, opts(layout="unlabeled"), scan=False)["path"].tolist() == ["images/0a.jpg", "images/f3.jpg"]
    make_image(ev / "images" / "sub" / "x.png")         # an image below images/: no flat test folder
    assert mf.detect_layout(ev, opts()) == "folder"
    shutil.rmtree(ev / "images" / "sub")
    make_image(ev / "loose.png")                        # an image beside images/
    assert mf.detect_layout(ev, opts()) == "folder"
    (ev / "loose.png").unlink()
    make_image(ev / "cat" / "x.png")                    # another folder of images: class folders
    assert mf.detect_layout(ev, opts()) == "folder"
    shutil.rmtree(ev / "cat")
    assert mf.detect_layout(ev, opts()) == "unlabeled"


def test_a_lone_image_folder_is_walked_once(tmp_path, monkeypatch):
    """eval/ holding images/ alone: detect_layout's lone_image_folder (now lone_folder) walked images/ whole, then
    load asked it again and read_unlabeled walked it a third time. Now the detection's finding (its images)
    is what load reads: one walk of the folder."""
    from imgcls import layouts
    ev = tmp_path / "eval"
    for i, n in enumerate(["f3.jpg", "0a.jpg"]):
        make_image(ev / "images" / n, seed=i)
    walks = []
    walk = layouts.images_under
    counted = lambda root, *a: walks.append(root) or walk(root, *a)      # noqa: E731
    monkeypatch.setattr(layouts, "images_under", counted)
    df = mf.load(ev, scan=False)
    assert df["path"].tolist() == ["0a.jpg", "f3.jpg"] and set(df["root"]) == {str((ev / "images").resolve())}
    assert walks == [ev / "images"], walks


def test_detection_stops_at_the_first_image_of_a_folder(tmp_path, monkeypatch):
    """detect_layout asked "does this folder hold an image?" with images_under(d)[:1]: a walk and sort of the whole
    class folder (every image of it, every folder below) to take the first, then read_folder walked it again. Now
    holds_image stops at the first image: the folders past it are never opened; its answers are images_under's."""
    import os
    from imgcls import layouts
    data = tmp_path / "data"
    for cls in ("cat", "dog"):
        for i in range(5):
            make_image(data / cls / f"{i}.png", size=(16, 16), seed=i)
            make_image(data / cls / "deep" / "deeper" / f"{i}.png", size=(16, 16), seed=i)
    nested = tmp_path / "nested"                    # images/ alone holding class folders: lone_folder
    for cls in ("cat", "dog"):
        make_image(nested / "images" / cls / "deep" / "x.png", size=(16, 16))
        make_image(nested / "images" / cls / "deep" / "more" / "y.png", size=(16, 16))
    opened, pulled = [], {}
    scandir = os.scandir

    class Counted:
        def __init__(self, path):
            self.path, self.it = Path(path), scandir(path)
            opened.append(self.path)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.it.close()

        def __iter__(self):
            return self

        def __next__(self):
            entry = next(self.it)
            pulled[self.path] = pulled.get(self.path, 0) + 1
            return entry

        def close(self):
            self.it.close()

    monkeypatch.setattr(os, "scandir", Counted)
    assert mf.detect_layout(data, opts()) == "folder"
    under = lambda root: [p for p in opened if root == p or root in p.parents]      # noqa: E731
    assert not under(data / "cat" / "deep") and not under(data / "dog"), opened       # past the first image
    assert pulled[data / "cat"] <= 2, pulled        # deep/ at most, then an image: not every image of cat/
    assert mf.detect_layout(nested, opts()) == "folder"
    images = nested / "images"      # the one of cat/ and dog/ listed first holds an image: the other is not opened
    assert not (under(images / "cat") and under(images / "dog")), opened
    assert not under(images / "cat" / "deep" / "more") and not under(images / "dog" / "deep" / "more"), opened
    assert mf.detect_source(nested, opts())[1] == layouts.LoneFolder(images, None, None)     # the classes' root
    monkeypatch.undo()

    odd = tmp_path / "odd"                          # images_under's rules, answer for answer
    make_image(odd / "hidden" / ".x" / "a.png", size=(16, 16))
    make_image(odd / "hidden" / "@eaDir" / "a.png", size=(16, 16))
    make_image(odd / "hidden" / "._b.png", size=(16, 16))
    (odd / "text").mkdir()
    (odd / "text" / "notes.txt").write_text("x")
    (odd / "loop" / "sub").mkdir(parents=True)
    (odd / "loop" / "sub" / "up").symlink_to(odd / "loop", target_is_directory=True)
    make_image(odd / "elsewhere" / "c.png", size=(16, 16))
    (odd / "linked").mkdir()
    (odd / "linked" / "to").symlink_to(odd / "elsewhere", target_is_directory=True)
    (odd / "not_utf8").mkdir()
    make_image(Path(os.fsdecode(bytes(odd / "not_utf8") + b"/\xff.png")), size=(16, 16))
    (odd / "empty").mkdir()
    make_image(odd / "flat" / "a.png", size=(16, 16))
    (odd / "flat" / "self").symlink_to(odd / "flat", target_is_directory=True)     # a loop back to it: no subfolder
    assert not layouts.holds_image(odd / "flat", below=True) and layouts.holds_image(odd / "linked", below=True)
    for d in ("hidden", "text", "loop", "linked", "not_utf8", "empty", "elsewhere", "flat", "missing"):
        assert layouts.holds_image(odd / d) == bool(layouts.images_under(odd / d)), d
    assert [layouts.holds_image(odd / d) for d in ("hidden", "loop", "linked", "not_utf8")] == [False, False, True,
                                                                                                 False]


def test_detection_asks_each_subfolder_once_whether_it_holds_an_image(tmp_path, monkeypatch):
    """detect_layout asked holds_image of the same subfolders up to three times (the listing CSV's check, the
    two-CSV refusal's, the folder answer's): each subfolder listed again for each. Now it is asked once each."""
    import os
    data = tmp_path / "data"
    make_image(data / "images" / "a.png", size=(16, 16))
    (data / "other").mkdir()
    (data / "other" / "notes.txt").write_text("x")
    pd.DataFrame({"image": ["a.png"]}).to_csv(data / "a.csv", index=False)   # lists images/'s image
    pd.DataFrame({"x": [1]}).to_csv(data / "b.csv", index=False)             # lists nothing: no folder_csv
    opened = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": opened.append(Path(path)) or scandir(path))
    assert mf.detect_layout(data, opts()) == "folder"
    assert sorted(p for p in opened if p != data) == [data / "images", data / "other"], opened    # data: its view


def test_a_lone_folder_of_class_folders_is_found_once(tmp_path, monkeypatch):
    """data/ holding images/ alone, class folders in it: the detection listed data/ for its lone image folder (and
    asked its CSVs, and images/'s class folders) and load listed it all again to find the classes' root. Now the
    detection's finding is what load reads from."""
    from conftest import count_folder_listings
    data = tmp_path / "data"
    for cls in ("cat", "dog"):
        make_image(data / "images" / cls / "x.png", size=(16, 16))
    listed = count_folder_listings(monkeypatch)
    df = mf.load(data, scan=False)
    assert df["path"].tolist() == ["cat/x.png", "dog/x.png"] and set(df["root"]) == {str((data / "images").resolve())}
    assert listed.count(data) == 1 and listed.count(data / "images") == 1, listed     # detection's look, read again


def _dacon(d: Path) -> Path:
    """DACON's folder: train.csv and test.csv listing ./train/ and ./test/'s images, no class folders."""
    for part in ("train", "test"):
        make_image(d / part / f"{part.upper()}_0.jpg", size=(16, 16))
        pd.DataFrame({"id": [f"{part.upper()}_0"], "img_path": [f"./{part}/{part.upper()}_0.jpg"]}
                     ).to_csv(d / f"{part}.csv", index=False)
    return d


def _eval(d: Path, folder: str = "images") -> Path:
    """The mask competition's eval/: info.csv listing the images in `folder` (images/, or beside it: '.')."""
    make_image(d / folder / "a.jpg", size=(16, 16))
    pd.DataFrame({"ImageID": ["a.jpg"], "ans": [0]}).to_csv(d / "info.csv", index=False)
    return d


def _train(d: Path) -> Path:
    """The mask competition's train/: train.csv naming the profile folders under images/."""
    names = sorted(p.name for p in make_profiles(d / "images", n_profiles=3).iterdir())
    pd.DataFrame({"id": [n[:6] for n in names], "path": names}).to_csv(d / "train.csv", index=False)
    return d


def _kaggle(d: Path) -> Path:
    """Kaggle's folder: train.csv naming the images in train_images/ beside it by their bare names."""
    for n in ("a", "b"):
        make_image(d / "train_images" / f"{n}.png", size=(16, 16))
    pd.DataFrame({"id": ["a.png", "b.png"], "label": ["x", "y"]}).to_csv(d / "train.csv", index=False)
    return d


def _flat(d: Path) -> Path:
    """Unlabeled images, no folder and no CSV."""
    for n in ("a", "b"):
        make_image(d / f"{n}.png", size=(16, 16))
    return d


def _split_folders(d: Path) -> Path:
    """The split-folder layout: train/<class>/, val/<class>/."""
    for part in ("train", "val"):
        make_image_folder(d / part, {"cat": 1, "dog": 1})
    return d


@pytest.mark.parametrize("make, given, layout, lists, reads", [
    (_flat, ".", "unlabeled", {".": 1}, {}),
    (_split_folders, ".", "folder", {".": 1, "train": 1, "val": 1}, {}),
    (_eval, ".", "csv", {".": 1}, {"info.csv": 1}),             # its head and its rows: one read of the file
    (lambda d: _eval(d, "."), ".", "csv", {".": 1}, {"info.csv": 1}),
    (_dacon, ".", "folder", {".": 1}, {"train.csv": 1, "test.csv": 1}),       # the loose images' CSVs: detection's
    (_train, ".", "profiles", {".": 1, "images": 1}, {"train.csv": 0}),
    (_train, "train.csv", "profiles", {".": 1, "images": 1}, {"train.csv": 1}),    # its header and its head
])
def test_detection_and_load_look_at_a_folder_once(tmp_path, monkeypatch, make, given, layout, lists, reads):
    """The detection listed a folder given as a dataset up to four times (profiles_root, its subfolders, its CSVs,
    the lone image folder) and load up to three more (profiles_root again, the split folders, the CSVs of loose
    images, the empty class folders); each CSV's first rows were read up to four times (folder_csv twice in the
    detection, once more in load; listing_csvs again for loose images; a train.csv given itself three times for its
    profiles). Now the detection's look (FolderView) is what load reads: each folder listed once, each CSV read from
    disk once (its header, its head and its rows: FolderView.text; they were two reads)."""
    from conftest import count_folder_listings
    src = make(tmp_path / "data") / given
    read = []
    read_bytes = Path.read_bytes
    listed = count_folder_listings(monkeypatch)
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or read_bytes(self))
    df = mf.load(src, scan=False)
    assert mf.layout_read(df) == layout and len(df)
    data = tmp_path / "data"
    assert {f: listed.count(data / f) for f in lists} == {f: 1 for f in lists}, listed
    assert {c: read.count(data / c) for c in reads} == reads, read


def test_a_csv_of_bare_names_finds_its_images_folder_in_the_folders_listing(tmp_path, monkeypatch):
    """Kaggle's train.csv naming images in train_images/ beside it: the folder of its images was looked for
    through a new look at the folder (csv_images_subfolder), listing it once more than the detection or the look
    for outputs below it had. It takes the detection's (read_competition_csv's view), given as the data or with
    --csv."""
    from conftest import count_folder_listings
    data = _kaggle(tmp_path / "data")
    for src, given in ((data / "train.csv", opts()), (data, opts(csv=str(data / "train.csv")))):
        listed = count_folder_listings(monkeypatch)
        df = mf.load(src, given, scan=False)
        assert df["path"].tolist() == ["a.png", "b.png"] and set(df["root"]) == {str(data / "train_images")}
        assert listed.count(data) == 1, (src, listed)
        monkeypatch.undo()


@pytest.mark.parametrize("layout, below", [("auto", []), ("unlabeled", ["sub", "sub/deep"])])
def test_unlabeled_images_are_walked_through_the_folders_look(tmp_path, monkeypatch, layout, below):
    """Unlabeled images (a flat folder detected, or --layout unlabeled): load's look for imgcls outputs below the
    folder listed it and its subfolders, and read_unlabeled's walk, given no view, listed each again. The walk
    takes the look's listings, as read_folder's and read_profiles' do."""
    from conftest import count_folder_listings
    data = _flat(tmp_path / "data")
    if below:
        make_image(data / below[-1] / "c.png", size=(16, 16))
    listed = count_folder_listings(monkeypatch, walks=True)
    df = mf.load(data, opts(layout=layout), scan=False)
    assert mf.layout_read(df) == "unlabeled"
    assert df["path"].tolist() == ["a.png", "b.png"] + [f"{d}/c.png" for d in below[-1:]]
    assert {f: listed.count(data / f) for f in [".", *below]} == {f: 1 for f in [".", *below]}, listed


def test_the_csvs_beside_loose_images_are_found_in_the_listing_the_walk_took(tmp_path, monkeypatch, capsys):
    """Images outside a class folder beside CSVs that list them (DACON's folder read as class folders: --layout
    folder, or read_folder from Python): the warning names those CSVs, found in the folder's listing, which the
    walk had taken (and forgotten there): the folder was listed again for them. Its CSVs are found before the
    walk."""
    from conftest import count_folder_listings
    from imgcls.layouts import read_folder
    data = _dacon(tmp_path / "data")       # train/ and test/: the split folders, train/'s images in no class folder
    for read in (lambda: read_folder(data), lambda: mf.load(data, opts(layout="folder"), scan=False)):
        listed = count_folder_listings(monkeypatch, walks=True)
        df = read()
        assert df["path"].tolist() == ["test/TEST_0.jpg"] and "(test.csv, train.csv list images here" in (
            capsys.readouterr().err)
        assert listed.count(data) == 1, listed
        monkeypatch.undo()


def test_an_image_beside_the_split_folders_is_a_loose_image(tmp_path, capsys):
    """An image directly in a folder of split folders (train/, val/ and x.png beside them) was looked up as a split
    folder's name: a KeyError traceback. It is an image outside a class folder: left out in the warning, refused
    where every image must be read (predict)."""
    data = _split_folders(tmp_path / "data")
    make_image(data / "x.png", size=(16, 16))
    df = mf.load(data, scan=False)
    assert len(df) == 4 and set(df["split"]) == {"train", "val"}
    assert "1 image(s) under" in capsys.readouterr().err
    with pytest.raises(UserError, match=r"1 image\(s\) under .* have no class folder, e.g. x.png"):
        mf.load(data, scan=False, loose_images="refuse")


def test_read_folder_without_a_view_lists_a_split_folder_once(tmp_path, monkeypatch):
    """layouts.read_folder called from Python without a view (load gives it the detection's) walked train/ and val/
    (listing each) and then listed each again for its class folders (empty_class_folders, through new views): the
    class folders are found through the views before the walk, which takes their listings."""
    from conftest import count_folder_listings
    from imgcls.layouts import empty_class_folders_read, read_folder
    data = _split_folders(tmp_path / "data")
    (data / "val" / "bird").mkdir()
    listed = count_folder_listings(monkeypatch, walks=True)
    df = read_folder(data)
    assert len(df) == 4 and empty_class_folders_read(df) == ["val/bird"]
    assert {f: listed.count(data / f) for f in (".", "train", "val", "train/cat", "val/bird")} == {
        ".": 1, "train": 1, "val": 1, "train/cat": 1, "val/bird": 1}, listed


def test_a_folder_view_takes_its_entries_types_from_the_listing(tmp_path, monkeypatch):
    """FolderView listed a folder (Path.iterdir) and then stat'ed each entry to tell folders from files (is_dir, and
    is_file for each CSV): os.scandir's entries carry their types, so a folder of class folders is read without a
    stat per entry; the answers are pathlib's, a link by what it points to."""
    import os

    from imgcls.layouts import FolderView
    root = make_image_folder(tmp_path / "data", {"a": 1, "b": 1, "c": 1})
    (root / "train.csv").write_text("path,label\n")
    (root / "notes.txt").write_text("x")
    (root / "d").symlink_to(root / "a")                  # a link to a folder is a folder
    (root / "gone.csv").symlink_to(root / "missing.csv")  # a broken link is neither
    (root / "loop").symlink_to(root / "loop")             # nor a link to itself (its stat: too many levels)
    (root / "loop.csv").symlink_to(root / "loop.csv")
    (root / ".hidden").mkdir()
    stats = []
    stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: stats.append(Path(p)) or stat(p, *a, **k))
    view = FolderView(root)
    assert view.subfolders == [root / "a", root / "b", root / "c", root / "d"]
    assert view.csvs == [root / "train.csv"]
    assert [p for p in stats if p.parent == root and p.name in ("a", "b", "c", "train.csv", "notes.txt")] == [], stats


def test_a_folder_holding_only_images_of_class_folders_reads_those_classes(tmp_path, capsys):
    """data/ holding only images/cat/... and images/dog/... was read as ONE class 'images' (paths images/cat/x.png)
    by every step. Now the class folders under images/ are the classes, rooted there, and the read line says so
    (as profiles_root goes one level down); --layout folder typed, or anything beside images/, reads as before."""
    from imgcls.predict import read_test_data
    data = tmp_path / "data"
    make_image_folder(data / "images", {"cat": 2, "dog": 1})
    df = mf.load(data, scan=False)
    assert sorted(df["label"]) == ["cat", "cat", "dog"] and df["path"].tolist()[0] == "cat/000.png"
    assert set(df["root"]) == {str((data / "images").resolve())} and mf.input_folders(df)[-1] == str(data.resolve())
    said = " ".join(capsys.readouterr().err.split())
    assert (f"read {data} as layout 'folder' (3 images; images in {data / 'images'}: {data} holds that folder alone, "
            f"so the folders in it are the classes (--layout folder reads 'images' as one class))") in said, said
    assert sorted(read_test_data(data)["label"]) == ["cat", "cat", "dog"]          # predict reads it alike
    assert set(mf.load(data, opts(layout="folder"), scan=False)["label"]) == {"images"}      # as asked
    from imgcls.eda import run_eda                      # eda's empty class folders are those under images/
    (data / "images" / "bird").mkdir()
    assert run_eda(data, tmp_path / "eda")["empty_class_folders"] == ["bird"]
    make_image(data / "other" / "x.png")                # another folder of images beside images/: its classes
    assert set(mf.load(data, scan=False)["label"]) == {"images", "other"}


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


def test_a_class_whose_images_are_all_unreadable_is_named(tmp_path, capsys):
    """A class folder holding only unreadable files (HEIC without pillow-heif, a broken download) vanished from the
    class table and the model with nothing said but its files among the unreadable ones; an empty folder is
    named ('hold no images'), so is this. Said by the scan that finds them, not again by a later step."""
    root = make_image_folder(tmp_path / "raw", {"cat": 2, "dog": 2})
    (root / "ghost").mkdir()
    for n in ("a.png", "b.jpg"):
        (root / "ghost" / n).write_bytes(b"not an image")
    (root / "dog" / "bad.png").write_bytes(b"")                  # one bad file in a class that keeps others
    df = mf.load(root, scan=True)
    said = " ".join(capsys.readouterr().err.split())
    assert "1 class with no readable image, so the data has no such class: ghost (2 unreadable images)" in said
    assert "dog (" not in said
    mf.write(df, tmp_path / "m" / "manifest.csv")
    mf.load(tmp_path / "m" / "manifest.csv", scan=True)
    assert "no such class" not in capsys.readouterr().err


def test_a_class_folder_that_cannot_be_listed_is_named_not_called_empty(tmp_path, monkeypatch, capsys):
    """A class folder without read permission (a shared disk, an archive unpacked with odd modes) could not be
    listed: its images were dropped and the class named as one that 'hold(s) no images'. The warning now names the
    folder, the system's reason and the fix, and no empty class."""
    root = make_image_folder(tmp_path / "raw", {"cat": 2, "dog": 2})
    lock_folder(monkeypatch, root / "dog")
    df = mf.load(root, scan=False)
    said = " ".join(capsys.readouterr().err.split())
    assert set(df["label"]) == {"cat"}
    assert (f"the images of 1 folder(s) under {root} cannot be listed and were left out, e.g. dog (Permission "
            f"denied): make them readable (e.g. chmod -R u+rX {root / 'dog'}) and run again") in said, said
    assert "hold no images" not in said, said


def test_a_class_whose_only_subfolder_cannot_be_listed_is_not_called_empty(tmp_path, monkeypatch, capsys):
    """raw/dog/sub without read permission, dog holding no other image: the warning named dog/sub as a folder
    that cannot be listed, and a second warning said dog 'hold(s) no images, so the data has no such class': its
    images are unknown, not none (reproduced with chmod 000 and CAP_DAC_OVERRIDE dropped)."""
    root = make_image_folder(tmp_path / "raw", {"cat": 2, "dog/sub": 2})
    lock_folder(monkeypatch, root / "dog" / "sub")
    df = mf.load(root, scan=False)
    said = " ".join(capsys.readouterr().err.split())
    assert set(df["label"]) == {"cat"}
    assert "cannot be listed and were left out, e.g. dog/sub (Permission denied)" in said, said
    assert "hold no images" not in said, said


def test_classes_lost_to_unreadable_images_past_the_first_five_are_counted(capsys):
    """The warning of classes none of whose images can be read named the first five, then ' ...': how many more was
    unsaid. It says 'and N more' as every cut list does (imgcls.options.shown)."""
    df = pd.DataFrame({"label": ["ok"] + [f"x{i}" for i in range(7)], "error": [""] + ["not an image"] * 7})
    mf.say_lost_classes(df, df.index)
    said = " ".join(capsys.readouterr().err.split())
    assert said.endswith("7 classes with no readable image, so the data has no such class: x0 (1 unreadable image), "
                         "x1 (1 unreadable image), x2 (1 unreadable image), x3 (1 unreadable image), x4 (1 "
                         "unreadable image) and 2 more"), said


def test_empty_class_folders_past_the_first_five_are_counted(tmp_path, capsys):
    """The empty class folders' warning named the first five, then ' ...': how many more was unsaid. It says
    'and N more' as every cut list does (imgcls.options.shown)."""
    root = make_image_folder(tmp_path / "raw", {"cat": 1, "dog": 1})
    for i in range(7):
        (root / f"e{i}").mkdir()
    mf.load(root, scan=False)
    said = " ".join(capsys.readouterr().err.split())
    assert (f"7 class folder(s) under {root} hold no images, so the data has no such class: e0, e1, e2, e3, e4 and 2 "
            f"more") in said, said


def test_unreadable_images_past_the_first_are_counted_and_where_all_are_said(tmp_path, capsys):
    """The unreadable images' warning names the first five by path and reason, '; ' between them (a reason holds
    commas), then how many more and where every one is, as every cut list does (imgcls.options.shown)."""
    df = pd.DataFrame({"root": str(tmp_path), "path": [f"b{i}.png" for i in range(7)],
                       "error": ["cannot identify image file, truncated"] * 7})
    mf.say_unreadable(df)
    said = " ".join(capsys.readouterr().err.split())
    assert f"7 unreadable images, left out: {tmp_path / 'b0.png'} (cannot identify image file, truncated); " in said
    assert said.endswith(f"{tmp_path / 'b4.png'} (cannot identify image file, truncated) and 2 more (all in the "
                         f"manifest's error column)"), said
    assert "b5.png" not in said


@pytest.mark.parametrize("step", ["clean", "split"])
def test_data_none_of_whose_images_reads_is_one_error_line_without_a_left_out_warning(tmp_path, step):
    """clean and split on data none of whose images can be read warned '8 unreadable images, left out: ... and 3
    more (all in the manifest's error column)', then refused: no manifest is written, nothing goes on without them.
    The refusal alone is said (one line, exit 2), and --out is not made."""
    from typer.testing import CliRunner

    from imgcls.cli import app
    for i in range(8):
        (tmp_path / "raw" / "a").mkdir(parents=True, exist_ok=True)
        (tmp_path / "raw" / "a" / f"{i}.png").symlink_to(tmp_path / f"gone{i}.png")
    r = CliRunner().invoke(app, [step, str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--workers", "1"])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output and said.count("error:") == 1, r.output
    assert "none of the 8 image(s) can be read" in said and "the symlinks point at files that are gone" in said
    assert "left out" not in said and "error column" not in said and "warning:" not in said, r.output
    assert not (tmp_path / "out").exists()


def test_a_class_lost_to_a_lower_pixel_bound_is_named_without_a_rescan(tmp_path, capsys):
    """A manifest scanned under a higher --max-pixels, read again with a lower one: nothing to scan, yet its rows
    over the bound are unreadable now, and a class left with none is named as by a scan (one place says both)."""
    root = make_image_folder(tmp_path / "raw", {"cat": 2, "dog": 2}, size=(12, 12))
    make_image(root / "big" / "x.png", size=(64, 64), seed=5)
    df = mf.load(root, scan=True, max_pixels=None)
    capsys.readouterr()
    again = mf.scan_images(df, max_pixels=1000)
    said = " ".join(capsys.readouterr().err.split())
    assert "1 unreadable image, left out" in said and "too many pixels" in said
    assert "1 class with no readable image, so the data has no such class: big (1 unreadable image)" in said
    assert (again["error"] != "").sum() == 1
    mf.scan_images(df, max_pixels=None)                          # nothing scanned, nothing over: nothing said
    assert capsys.readouterr().err == ""


def test_a_row_left_out_under_a_lower_pixel_bound_is_read_under_a_higher_one(tmp_path):
    """A manifest an earlier step scanned under a lower --max-pixels (eda's or clean's default) records a large scan
    as 'too many pixels'; a later step with a higher bound, or 0 (no limit), kept it unreadable, said as over a bound
    it did not have. It is scanned again where the bound admits it, and stays out where it does not."""
    root = make_image_folder(tmp_path / "raw", {"cat": 2, "dog": 2}, size=(12, 12))
    make_image(root / "cat" / "big.png", size=(64, 64), seed=5)          # 4,096 pixels
    df = mf.scan_images(mf.load(root, scan=False), max_pixels=1000)
    big = df["path"] == "cat/big.png"
    assert df.loc[big, "error"].item().startswith("too many pixels")
    assert mf.scan_images(df, max_pixels=2000).loc[big, "error"].item().startswith("too many pixels")
    for bound in (0, 5000):
        again = mf.scan_images(df, max_pixels=bound)
        assert again.loc[big, "error"].item() == "" and again.loc[big, "width"].item() == 64, bound


def test_file_names_that_are_not_utf8_are_left_out_with_one_warning(tmp_path, capsys):
    """A zip made on Windows unpacks its cp949 / latin-1 names as those bytes; os gives them back with surrogate
    escapes, which no UTF-8 manifest can hold: eda, clean, preprocess, train and predict on such a folder ended in a
    pandas UnicodeEncodeError traceback. Each such file or folder is left out and named once, the rest is read."""
    import os
    root = make_image_folder(tmp_path / "raw", {"cat": 2, "dog": 2})
    make_image(Path(os.fsdecode(bytes(root / "cat") + b"/caf\xe9.png")), seed=7)
    make_image(Path(os.fsdecode(bytes(root) + b"/\xb0\xed\xbe\xe7\xc0\xcc/x.png")), seed=8)   # cp949 class
    df = mf.load(root, scan=True)
    said = " ".join(capsys.readouterr().err.split())
    assert df["label"].value_counts().to_dict() == {"cat": 2, "dog": 2}
    assert "2 image file or folder name(s) under" in said and "are not UTF-8 text and were left out" in said
    assert "e.g. '\\xb0\\xed\\xbe\\xe7\\xc0\\xcc'" in said and "hold no images" not in said   # its bytes shown
    mf.write(df, tmp_path / "m" / "manifest.csv")               # the manifest is UTF-8 text
    test = tmp_path / "test"
    make_image(test / "a.png", seed=1)
    make_image(Path(os.fsdecode(bytes(test) + b"/\xe9t\xe9.png")), seed=2)
    assert list(mf.load(test, scan=False)["path"]) == ["a.png"]
    assert "1 image file or folder name(s) under" in " ".join(capsys.readouterr().err.split())


def test_images_saved_without_an_image_extension_are_named_not_skipped_silently(tmp_path, capsys):
    """Web data comes as photo.jpg_large, image.php or bare ids: such files were skipped with nothing said, a class
    silently smaller (or gone with 'hold no images'). They are still not read (the name decides what is an
    image), but a file whose first bytes are an image's is named in one warning; notes and CSVs are not."""
    root = make_image_folder(tmp_path / "raw", {"cat": 2, "dog": 2})
    shutil.copy(root / "cat" / "000.png", root / "cat" / "photo.png_large")
    shutil.copy(root / "dog" / "000.png", root / "dog" / "download")
    (root / "dog" / "notes.txt").write_text("labels checked by hand")
    (root / "labels.csv").write_text("path,label\n")
    df = mf.load(root, scan=False)
    said = " ".join(capsys.readouterr().err.split())
    assert len(df) == 4
    assert ("2 file(s) under" in said and "hold images but their names have no image extension, so they were not "
            "read, e.g. cat/photo.png_large (PNG)" in said)
    test = tmp_path / "test"
    make_image(test / "a.png", seed=1)
    shutil.copy(test / "a.png", test / "b")
    assert list(mf.load(test, scan=False)["path"]) == ["a.png"]
    assert "1 file(s) under" in " ".join(capsys.readouterr().err.split())


def test_the_warning_for_images_without_an_extension_names_the_csv_route_that_reads_them(tmp_path, capsys):
    """eda / train's warning for images saved without an image extension named only renaming; predict's refusal
    named a CSV that lists them too. One wording (LeftOut) names the routes that work for the layout read: class
    folders a CSV of path,label (saved in ROOT and given as the data, as train too reads it: it has no --csv), which
    does read them; an unlabeled folder one of path; profile folders (labels from the folders' names) renaming only."""
    root = make_image_folder(tmp_path / "raw", {"cat": 2, "dog": 2})
    shutil.copy(root / "dog" / "000.png", root / "dog" / "download")
    mf.load(root, scan=False, announce=False)
    said = " ".join(capsys.readouterr().err.split())
    assert said.endswith(
        f"warning: 1 file(s) under {root} hold images but their names have no image extension, so they were not "
        f"read, e.g. dog/download (PNG): rename them with their format's extension (.jpg, .png, ...); or keep their "
        f"names and read them through a CSV that lists them (path,label, the paths relative to {root}): {root}/CSV "
        f"(the CSV saved in {root}, given as the data)"), said
    listing = root / "list.csv"             # as train reads it too, which has no --csv
    pd.DataFrame({"path": ["cat/000.png", "dog/download"], "label": ["cat", "dog"]}).to_csv(listing, index=False)
    df = mf.load(listing, scan=True)
    assert list(df["path"]) == ["cat/000.png", "dog/download"] and (df["error"] == "").all()
    test = tmp_path / "test"
    make_image(test / "a.png", seed=1)
    shutil.copy(test / "a.png", test / "b")
    mf.load(test, scan=False, announce=False)
    assert " ".join(capsys.readouterr().err.split()).endswith(
        f"read them through a CSV that lists them (path, the paths relative to {test}): {test}/CSV (the CSV saved in "
        f"{test}, given as the data)")
    prof_root = make_profiles(tmp_path / "prof", n_profiles=2)
    prof = sorted(p for p in prof_root.iterdir() if p.is_dir())[0]
    shutil.copy(prof / "mask1.jpg", prof / "mask2.jpg_large")
    mf.load(prof_root, scan=False, announce=False)
    said = " ".join(capsys.readouterr().err.split())
    assert said.endswith("(JPEG): rename them with their format's extension (.jpg, .png, ...)"), said


def test_a_profile_folders_images_the_walk_cannot_read_are_named_or_refused(tmp_path, capsys):
    """The mask competition layout's reader walked each profile folder without collecting what the walk leaves out:
    an image saved without an image extension or under a name that is not UTF-8 was dropped with nothing said (the
    folder reader warns, predict refuses). Now the same warning, and predict's refusal (unread_images="refuse")."""
    import os
    root = make_profiles(tmp_path / "raw", n_profiles=2)
    prof = sorted(p for p in root.iterdir() if p.is_dir())[0]
    shutil.copy(prof / "mask1.jpg", prof / "mask2.jpg_large")
    make_image(Path(os.fsdecode(bytes(prof) + b"/norm\xe9.jpg")), seed=9)
    df = mf.load(root, scan=False)
    said = " ".join(capsys.readouterr().err.split())
    assert mf.layout_read(df) == "profiles" and len(df) == 14
    assert "1 image file or folder name(s) under" in said and "are not UTF-8 text and were left out" in said, said
    assert f"e.g. '{prof.name}/norm\\xe9.jpg'" in said, said
    assert ("1 file(s) under" in said and "hold images but their names have no image extension, so they were not "
            f"read, e.g. {prof.name}/mask2.jpg_large (JPEG)" in said), said
    from imgcls.predict import read_test_data        # predict's test images read through it: refused
    with pytest.raises(UserError, match="would have no row in the predictions"):
        read_test_data(root)


def test_a_macos_zips_macosx_folder_is_no_class_and_no_split(tmp_path, capsys):
    """A zip made on macOS unpacks a __MACOSX folder of resource forks (._<name>) beside the data: it was read as a
    class folder, named as a class with no images, and beside train/ and val/ it hid the split-folder layout, so
    'train' and 'val' became the two classes. It is skipped like a hidden folder."""
    root = make_image_folder(tmp_path / "raw", {"train/cat": 2, "train/dog": 2, "val/cat": 1, "val/dog": 1})
    (root / "__MACOSX" / "train" / "cat").mkdir(parents=True)
    (root / "__MACOSX" / "train" / "cat" / "._000.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    df = mf.load(root, scan=False)
    assert df["label"].value_counts().to_dict() == {"cat": 3, "dog": 3}
    assert df["split"].value_counts().to_dict() == {"train": 4, "val": 2}
    flat = make_image_folder(tmp_path / "flat", {"cat": 2, "dog": 2})
    shutil.copytree(root / "__MACOSX", flat / "__MACOSX")
    assert mf.detect_layout(flat, opts()) == "folder" and len(mf.load(flat, scan=False)) == 4
    assert "__MACOSX" not in capsys.readouterr().err


def test_a_synology_nas_thumbnail_folder_is_not_read_as_images(tmp_path, capsys):
    """A folder copied off a Synology NAS holds @eaDir/<image>/SYNOPHOTO_THUMB_M.jpg beside the images it indexed:
    those thumbnails were read as more images of the class (a copy of each, leaking across a split), and a
    top-level @eaDir was named as a class with no images."""
    root = make_image_folder(tmp_path / "raw", {"cat": 2, "dog": 2})
    shutil.copy(root / "cat" / "000.png", make_image(root / "cat" / "@eaDir" / "000.png" / "SYNOPHOTO_THUMB_M.jpg"))
    (root / "@eaDir").mkdir()
    df = mf.load(root, scan=False)
    assert sorted(df["path"]) == ["cat/000.png", "cat/001.png", "dog/000.png", "dog/001.png"]
    assert "@eaDir" not in capsys.readouterr().err


def test_a_symlinked_class_folder_is_read_and_a_link_loop_ends(tmp_path, capsys):
    """A class folder linked from elsewhere (another disk, a Kaggle input) holds its images: os.walk did not follow
    it, so the class was dropped with the warning that its folder holds no images. A link back to an ancestor is
    read once, not forever."""
    elsewhere = make_image_folder(tmp_path / "disk2", {"cat": 3})
    root = make_image_folder(tmp_path / "raw", {"dog": 2})
    (root / "cat").symlink_to(elsewhere / "cat", target_is_directory=True)
    (root / "dog" / "loop").symlink_to(root, target_is_directory=True)
    (root / "dog" / "again").symlink_to(root / "dog", target_is_directory=True)
    df = mf.load(root, scan=False)
    assert df["label"].value_counts().to_dict() == {"cat": 3, "dog": 2}
    assert sorted(df.loc[df["label"] == "cat", "path"]) == ["cat/000.png", "cat/001.png", "cat/002.png"]
    assert "hold no images" not in capsys.readouterr().err


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


def test_the_competitions_train_csv_given_itself_is_read_as_its_profiles(tmp_path, capsys):
    """`imgcls eda train/train.csv` (the mask competition's id,gender,race,age,path, each path a profile folder under
    images/) read it as a generic CSV: 12 "images" that are folders, reported as `No such file or directory`, and
    a hint to --label-col gender; it is the profiles under images/, as train/ given whole."""
    train = tmp_path / "train"
    make_profiles(train / "images", n_profiles=4)
    dirs = sorted(d.name for d in (train / "images").iterdir())
    (train / "train.csv").write_text("id,gender,race,age,path\n" + "".join(
        f"{d.split('_')[0]},{d.split('_')[1]},Asian,{d.split('_')[3]},{d}\n" for d in dirs))
    df = mf.load(train / "train.csv", scan=False)
    whole = mf.load(train, scan=False)
    assert len(df) == 4 * 7 and df["label"].tolist() == whole["label"].tolist()
    assert df["path"].tolist() == whole["path"].tolist() and df["root"].iloc[0] == str((train / "images").resolve())
    assert "layout 'profiles'" in capsys.readouterr().err


def test_split_never_writes_over_the_competitions_train_csv_read_as_its_profiles(tmp_path):
    """`imgcls split train/train.csv --out train/train.csv`: the table read as the profiles under images/ (3cee3d1)
    was no longer recorded as the file the step reads (a competition CSV's is), so split replaced the user's own
    train.csv with its split table, exit 0. Refused in one line, the file untouched."""
    from typer.testing import CliRunner

    from imgcls.cli import app
    train = tmp_path / "train"
    make_profiles(train / "images", n_profiles=4)
    dirs = sorted(d.name for d in (train / "images").iterdir())
    table = train / "train.csv"
    table.write_text("id,gender,race,age,path\n" + "".join(
        f"{d.split('_')[0]},{d.split('_')[1]},Asian,{d.split('_')[3]},{d}\n" for d in dirs))
    before = table.read_text()
    assert mf.read_table(mf.load(table, scan=False)) == [str(table)]
    r = CliRunner().invoke(app, ["split", str(table), "--out", str(table), "--no-near-dup", "-q"])
    assert r.exit_code == 2 and "is a file this step reads" in r.output, r.output
    assert table.read_text() == before


def test_profile_label_helpers():
    assert profiles.age_band(29) == 0 and profiles.age_band(30) == 1 and profiles.age_band(59) == 1
    assert profiles.age_band(60) == 2 and profiles.age_band(58, (30, 58)) == 2
    three = profiles.ProfileScheme()
    assert three.label(2, 1, 2) == 17 and three.label(0, 0, 0) == 0 and three.label(1, 0, 1) == 7
    assert three.n_classes == 18 and three.sizes == (3, 2, 3)
    df = pd.DataFrame({"mask": [0, 1], "gender": [1, 0], "age": [58, 20]})
    out = profiles.apply_profile_labels(df, (30, 58))
    assert out["age_band"].tolist() == [2, 0] and out["label"].tolist() == ["5", "6"]


@pytest.mark.parametrize("edges", [(40,), (30, 60), (20, 40, 60)])
def test_one_profile_formula_for_any_number_of_bands(edges):
    """label, its inverse and the decode table are one formula: every (mask, gender, band) has its own id, in the
    order of the heads' product (what a multi-head model's decode enumerates)."""
    import itertools
    scheme = profiles.ProfileScheme.from_edges(edges)
    assert scheme.n_bands == len(edges) + 1 and scheme.n_classes == 6 * scheme.n_bands
    assert scheme.table() == list(itertools.product(*(range(k) for k in scheme.sizes)))
    ids = [int(scheme.label(*t)) for t in scheme.table()]
    assert ids == list(range(scheme.n_classes))
    assert [tuple(int(x) for x in scheme.parts(i)) for i in ids] == scheme.table()
    ages = [10, 25, 35, 45, 59, 60, 70]
    df = pd.DataFrame({"mask": [2] * 7, "gender": [1] * 7, "age": ages})
    out = profiles.apply_profile_labels(df, edges)
    assert out["label"].tolist() == [str(scheme.label(2, 1, profiles.age_band(a, edges))) for a in ages]
    moved = profiles.apply_profile_labels(df, edges, assign_edges=[e - 1 for e in edges])
    assert moved["age_band"].tolist() == [profiles.age_band(a, [e - 1 for e in edges]) for a in ages]
    with pytest.raises(UserError, match="--relabel-age needs as many edges"):
        profiles.apply_profile_labels(df, edges, assign_edges=list(edges) + [90])


def test_profiles_custom_bands(profile_folder):
    df = mf.load(profile_folder, opts(age_bands=(40,)), scan=False)
    assert set(df["age_band"]) <= {0, 1}
    r = df.iloc[0]
    assert r["label"] == str(r["mask"] * 4 + r["gender"] * 2 + (r["age"] >= 40))


def test_age_bands_on_a_source_that_is_not_profile_folders_is_refused(tmp_path, profile_folder, image_folder):
    """`eda data/clean --age-bands 40` / `preprocess ... --age-bands 40` on a manifest kept its three-band labels
    and said nothing (eda drew the edge at 40 beside 18 classes); the bands are made as the profile folders are
    read, so elsewhere the flag is one line (split relabels a manifest with its own --age-bands)."""
    mf.write(mf.load(profile_folder, scan=False), tmp_path / "m" / "manifest.csv")
    for src in (tmp_path / "m" / "manifest.csv", image_folder):
        with pytest.raises(UserError, match="--age-bands"):
            mf.load(src, opts(age_bands=(40,)), scan=False)
    assert len(mf.load(tmp_path / "m" / "manifest.csv", opts(), scan=False)) == 12 * 7    # the default: no flag


def test_age_bands_on_a_manifest_name_split_s_command_and_its_python_call(tmp_path, profile_folder):
    """The refusal of --age-bands on a manifest said 'imgcls split --age-bands relabels a manifest' to a Python caller
    too (run_eda(opts=LayoutOptions(age_bands=...))), and no SRC: a bare `imgcls split` reads the pipeline's default
    input. It names the command and the run_split call that relabel this manifest with those bands."""
    from typer.testing import CliRunner
    from imgcls.cli import app
    from imgcls.eda import run_eda
    manifest = tmp_path / "m" / "manifest.csv"
    mf.write(mf.load(profile_folder, scan=False), manifest)
    fix = (f"whose labels are already made: imgcls split {manifest} --age-bands 40,60 (Python: run_split("
           f"'{manifest}', cfg=SplitConfig(age_bands=[40, 60]))) relabels a manifest; drop --age-bands or give the "
           f"profile folders")
    with pytest.raises(UserError) as e:
        run_eda(manifest, tmp_path / "eda", opts=opts(age_bands=[40, 60]))
    assert fix in str(e.value), e.value
    r = CliRunner().invoke(app, ["eda", str(manifest), "--age-bands", "40,60", "--out", str(tmp_path / "eda")],
                           env={"COLUMNS": "1000"})
    assert r.exit_code == 2 and fix in r.output, r.output
    assert not (tmp_path / "eda").exists()


def test_competition_csv(tmp_path, image_folder):
    csv = tmp_path / "train.csv"
    pd.DataFrame({"img": ["./a/000.png", "b/001.png", "c/000.png"], "cls": ["x", "y", "z"],
                  "person": ["p1", "p1", "p2"], "age": ["20", "30", "40"]}).to_csv(csv, index=False)
    df = mf.load(image_folder, opts(csv=str(csv), path_col="img", label_col="cls", group_col="person"), scan=True)
    assert df["path"].tolist() == ["a/000.png", "b/001.png", "c/000.png"]
    assert df["label"].tolist() == ["x", "y", "z"] and df["group"].tolist() == ["p1", "p1", "p2"]
    assert df["age"].tolist() == ["20", "30", "40"]                  # other columns kept as attributes
    assert (df["error"] == "").all() and df["width"].tolist() == [48] * 3


def test_class_folders_spelled_nfd_give_nfc_class_names(tmp_path):
    """Korean class folders unpacked from a macOS zip are NFD on disk: the class name was kept NFD, so the
    submission's labels were other bytes than the competition's (NFC) for the same-looking name, and a folder in
    each form made two classes that look alike. Labels are NFC; paths stay spelled as on disk."""
    import unicodedata
    name = "마스크 착용 (정상)"
    root = tmp_path / "raw"
    make_image(root / unicodedata.normalize("NFD", name) / "a.png", seed=1)
    make_image(root / name / "b.png", seed=2)
    df = mf.load(root, scan=False)
    assert df["label"].unique().tolist() == [name]
    assert unicodedata.normalize("NFD", name) + "/a.png" in df["path"].tolist()
    split_root = tmp_path / "split"
    make_image(split_root / "train" / unicodedata.normalize("NFD", name) / "c.png", seed=3)
    assert mf.load(split_root, scan=False)["label"].tolist() == [name]


def test_labels_a_csv_spells_nfd_are_nfc_class_names(tmp_path):
    """A train.csv (or a manifest's --label-col column) spelling a label NFD beside the same label NFC gave two
    classes that look identical (class folders were made NFC, CSV labels were not). Every label load reads is NFC."""
    import unicodedata
    name = "정상"
    for i in range(3):
        make_image(tmp_path / "train" / f"{i}.png", seed=i)
    labels = [unicodedata.normalize("NFD", name), name, "b"]
    pd.DataFrame({"img_path": [f"train/{i}.png" for i in range(3)], "label": labels,
                  "kind": labels}).to_csv(tmp_path / "train.csv", index=False)
    df = mf.load(tmp_path / "train.csv", scan=False)
    assert df["label"].tolist() == [name, name, "b"]
    assert df["kind"].tolist() == labels            # another column is kept as written
    df.drop(columns="label").to_csv(tmp_path / "m.csv", index=False)
    got = mf.load(tmp_path / "m.csv", mf.LayoutOptions(layout="manifest", label_col="kind"), scan=False)
    assert got["label"].tolist() == [name, name, "b"]


def test_a_csv_finds_files_spelled_in_another_unicode_form(tmp_path):
    """DACON's Korean (or any accented) file names unpacked from a macOS zip are NFD on disk while train.csv spells
    them NFC: the names looked the same and every row was 'cannot read file: No such file or directory'. The file
    is found, `path` spelled as on disk, the CSV's own spelling kept as the id."""
    import unicodedata
    names = ["고양이_0.png", "café_1.png"]
    for i, n in enumerate(names + ["강아지_2.jpg"]):
        make_image(tmp_path / "train" / unicodedata.normalize("NFD", n), seed=i)
    ids = ["./train/" + n for n in names] + ["./train/강아지_2"]          # the last without its extension
    pd.DataFrame({"img_path": ids, "label": ["a", "b", "a"]}).to_csv(tmp_path / "train.csv", index=False)
    df = mf.load(tmp_path / "train.csv", scan=True)
    assert (df["error"] == "").all(), df["error"].tolist()
    assert df["path"].tolist() == [unicodedata.normalize("NFD", n) for n in names + ["강아지_2.jpg"]]
    assert df["source_id"].tolist() == ids
    # bare ids looked for in images/ beside the CSV (the mask competition's eval/info.csv) are found there too
    ev = tmp_path / "eval"
    make_image(ev / "images" / unicodedata.normalize("NFD", "평가.png"))
    pd.DataFrame({"ImageID": ["평가.png"]}).to_csv(ev / "info.csv", index=False)
    got = mf.load(ev / "info.csv", scan=True)
    assert got["error"].tolist() == [""] and set(got["root"]) == {str((ev / "images").resolve())}


def test_a_csv_s_images_are_read_from_the_folder_that_holds_them(tmp_path):
    """The root of a CSV's rows is the deepest folder holding all its images (DACON: train/ beside train.csv), the
    paths relative to it; the paths as written stay the submission's ids."""
    make_image(tmp_path / "train" / "T0.png")
    make_image(tmp_path / "train" / "sub" / "T1.png", seed=1)
    pd.DataFrame({"id": ["T0", "T1"], "img_path": ["./train/T0.png", "train/sub/T1.png"],
                  "label": ["a", "b"]}).to_csv(tmp_path / "train.csv", index=False)
    df = mf.load(tmp_path / "train.csv", scan=True)
    assert set(df["root"]) == {str((tmp_path / "train").resolve())}
    assert df["path"].tolist() == ["T0.png", "sub/T1.png"] and (df["error"] == "").all()
    assert df["source_id"].tolist() == ["./train/T0.png", "train/sub/T1.png"] and df["id"].tolist() == ["T0", "T1"]
    pd.DataFrame({"path": ["train/T0.png"], "label": ["a"]}).to_csv(tmp_path / "p.csv", index=False)
    df = mf.load(tmp_path / "p.csv", scan=False)          # a column named path: its values kept as ids too
    assert df["path"].tolist() == ["T0.png"] and df["source_id"].tolist() == ["train/T0.png"]
    (tmp_path / "csvs").mkdir()                                  # a path leaving the CSV's folder: as given
    pd.DataFrame({"img_path": ["../train/T0.png"], "label": ["a"]}).to_csv(tmp_path / "csvs" / "o.csv", index=False)
    df = mf.load(tmp_path / "csvs" / "o.csv", scan=True)
    assert df["path"].tolist() == ["../train/T0.png"] and set(df["root"]) == {str((tmp_path / "csvs").resolve())}
    assert (df["error"] == "").all()


def test_dacon_s_folder_given_whole_points_at_its_train_csv(tmp_path, capsys):
    """DACON's folder (train.csv, test.csv, sample_submission.csv, train/ and test/ with no class folders) given
    as a folder reads as the split-folder layout and leaves train/'s images out: the warning names the CSVs that
    list them and the one to give, not --layout unlabeled."""
    d = tmp_path / "data"
    for part, n in (("train", 3), ("test", 2)):
        for i in range(n):
            make_image(d / part / f"{part.upper()}_{i:05d}.jpg", seed=i)
    pd.DataFrame({"id": [f"TRAIN_{i:05d}" for i in range(3)],
                  "img_path": [f"./train/TRAIN_{i:05d}.jpg" for i in range(3)],
                  "artist": ["x", "y", "x"]}).to_csv(d / "train.csv", index=False)
    pd.DataFrame({"id": ["TEST_00000", "TEST_00001"], "img_path": ["./test/TEST_00000.jpg", "./test/TEST_00001.jpg"]}
                 ).to_csv(d / "test.csv", index=False)
    pd.DataFrame({"id": ["TEST_00000", "TEST_00001"], "artist": ""}).to_csv(d / "sample_submission.csv", index=False)
    capsys.readouterr()
    mf.load(d, scan=False)
    said = " ".join(capsys.readouterr().err.split())
    assert "3 image(s) under" in said and "have no class folder and were left out" in said
    assert "sample_submission.csv, test.csv, train.csv list images here: give the CSV that holds the classes as " \
           f"the input, e.g. {d / 'train.csv'}" in said and "--layout unlabeled" not in said
    # read unlabeled: the column with classes is named, with the flag that reads it
    df = mf.load(d / "train.csv", scan=False)
    assert mf.label_column_hint(df) == "--label-col COLUMN reads one of its columns with classes: artist"
    assert mf.label_column_hint(mf.load(d / "train.csv", opts(label_col="artist"), scan=False)) == ""
    assert mf.label_column_hint(mf.load(d / "test.csv", scan=False)) == ""        # ids and paths: no classes
    # a manifest written from it (clean's, split's) takes --label-col too: the step after reads its classes
    m = mf.write(df.assign(person=["7", "", "9"]), tmp_path / "m" / "manifest.csv")
    again = mf.load(m, opts(label_col="artist"), scan=False)
    assert again["label"].tolist() == ["x", "y", "x"] and again["artist"].tolist() == ["x", "y", "x"]
    assert "(3 rows; labels from its column 'artist')" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(UserError, match=r"column 'nope' is not in .*manifest.csv \(columns with classes: artist, "
                                        r"person\); check --label-col"):
        mf.load(m, opts(label_col="nope"), scan=False)
    # where the folders give the labels, a column flag is refused, not ignored
    with pytest.raises(UserError, match="--label-col names a column of a competition CSV or a manifest; .* is "
                                        "read as layout 'folder', whose folders give labels"):
        mf.load(make_image_folder(tmp_path / "f", {"a": 1, "b": 1}), opts(label_col="artist"), scan=False)
    with pytest.raises(UserError, match="--group-col 'person' names a column of a competition CSV or a manifest; "
                                        ".* is read as layout 'folder', which has no such column"):
        mf.load(tmp_path / "f", opts(group_col="person"), scan=False)        # eda / clean ignored it
    with pytest.raises(UserError, match="--csv .*test.csv goes with a dataset folder; .*train.csv is itself the "
                                        "table read"):
        mf.load(d / "train.csv", opts(csv=str(d / "test.csv")), scan=False)   # the --csv was ignored
    with pytest.raises(UserError, match="^--path-col applies to a competition CSV"):
        mf.load(m, opts(path_col="img_path"), scan=False)


def test_a_manifests_own_columns_keep_class_names_as_written(tmp_path):
    """A manifest written from a CSV read unlabeled keeps DACON's `artist` column as text; read back with
    --label-col artist, classes '001', '1', '1.5', '06' stay themselves (pandas' inference of an all-numeric column
    made them 1.0, 1.0, 1.5 and 6.0: '001' and '1' merged into one class '1.0')."""
    d = tmp_path / "data"
    names = ["001", "1", "1.5", "06"]
    for i in range(len(names)):
        make_image(d / "train" / f"T {i}.jpg", seed=i)
    pd.DataFrame({"id": [f"TRAIN_{i}" for i in range(len(names))],
                  "img_path": [f"./train/T {i}.jpg" for i in range(len(names))],
                  "artist": names}).to_csv(d / "train.csv", index=False)
    m = mf.write(mf.load(d / "train.csv", scan=False), tmp_path / "m" / "manifest.csv")
    again = mf.load(m, opts(label_col="artist"), scan=False)
    assert again["label"].tolist() == names and again["artist"].tolist() == names


def test_a_csv_header_with_spaces_after_its_commas_is_named(tmp_path, image_folder):
    """A hand-written header `path, label` names a column ' label': the labels were not found, the data read
    unlabeled with a warning offering --label-col ' label' (train: 'has no labels'), and --label-col label was
    refused as a missing column. One line names the spaced column and the fix, with or without --label-col."""
    csv = tmp_path / "train.csv"
    csv.write_text("path, label\na/000.png,a\n")
    said = f"the header of {csv} has spaces around its column name ' label', so no column is named 'label'"
    for kw in ({}, {"label_col": "label"}):
        with pytest.raises(UserError, match=re.escape(said)):
            mf.load(image_folder, opts(csv=str(csv), **kw), scan=False)
    csv.write_text("path,label\na/000.png,a\n")
    assert mf.load(image_folder, opts(csv=str(csv)), scan=False)["label"].tolist() == ["a"]


def test_a_spaced_path_column_is_named_not_passed_over_for_the_id_column(tmp_path, image_folder):
    """DACON's test.csv written by hand as `id, img_path`: the path guesses skipped ' img_path' and took the later
    guess 'id', so predict looked for the images TEST_0, TEST_1, ... ('none of the 2 image(s) can be read ...: file
    not found'). The spaced column is named, as a spaced label column is."""
    csv = tmp_path / "test.csv"
    csv.write_text("id, img_path\nTEST_0,a/000.png\nTEST_1,a/001.png\n")
    said = f"the header of {csv} has spaces around its column name ' img_path', so no column is named 'img_path'"
    with pytest.raises(UserError, match=re.escape(said)):
        mf.load(image_folder, opts(csv=str(csv)), scan=False)
    csv.write_text("id,img_path\nTEST_0,a/000.png\nTEST_1,a/001.png\n")
    files = mf.image_paths(mf.load(image_folder, opts(csv=str(csv)), scan=False))    # the img_path column's, not ids
    assert [Path(f) for f in files] == [image_folder / "a" / "000.png", image_folder / "a" / "001.png"], files


def test_competition_csv_guesses_and_errors(tmp_path, image_folder):
    csv = tmp_path / "train.csv"
    pd.DataFrame({"image_path": ["a/000.png", "missing.png"], "label": ["a", "b"]}).to_csv(csv, index=False)
    df = mf.load(image_folder, opts(csv=str(csv)), scan=True)
    assert df["label"].tolist() == ["a", "b"]
    assert df["error"].iloc[0] == "" and df["error"].iloc[1] == "file not found"   # listed, not crashed
    with pytest.raises(UserError, match="column 'nope' is not in .*--label-col"):
        mf.load(image_folder, opts(csv=str(csv), label_col="nope"), scan=False)
    bad = tmp_path / "weird.csv"
    pd.DataFrame({"x": ["a/000.png"]}).to_csv(bad, index=False)
    with pytest.raises(UserError, match="--path-col"):
        mf.load(image_folder, opts(csv=str(bad)), scan=False)
    with pytest.raises(UserError, match="does not exist; check --csv"):
        mf.load(image_folder, opts(csv=str(tmp_path / "none.csv")), scan=False)
    with pytest.raises(UserError, match=r"--csv .* is a folder, not a CSV file; give the competition's CSV file"):
        mf.load(image_folder, opts(csv=str(tmp_path)), scan=False)      # it exists: not 'does not exist'


def test_age_band_edges_that_are_none_or_out_of_order_are_one_line(tmp_path, profile_folder):
    """A Python caller's age_bands=[] (LayoutOptions, SplitConfig) broke eda and split with an IndexError after the
    read, and --age-bands 60,30 (or 30,30) named the bands '<60', '60-29', '>=30' unsaid; --relabel-age alike. Each is
    one line, before any image is read, for the command line and Python alike."""
    from typer.testing import CliRunner
    from imgcls.cli import app
    from imgcls.split import SplitConfig, run_split
    said = "give the band edges in increasing order, e.g. 30,60"
    with pytest.raises(UserError, match=re.escape(f"--age-bands names no age: {said} (Python: age_bands=[30, 60])")):
        mf.load(profile_folder, opts(age_bands=[]), scan=False)
    with pytest.raises(UserError, match=re.escape("--age-bands names no age")):
        run_split(profile_folder, tmp_path / "s.csv", cfg=SplitConfig(age_bands=[], near_dup=False))
    with pytest.raises(UserError, match=re.escape("--relabel-age 59,29 is not increasing ages: give the band edges "
                                                  "in increasing order, e.g. 29,59")):
        SplitConfig(relabel_age=[59, 29]).validate()
    with pytest.raises(UserError, match=re.escape("--age-bands [30.0, 60.0] holds 30.0, not a whole number; give "
                                                  "age_bands=[30, 60]")):       # options.check's item rule
        SplitConfig(age_bands=[30.0, 60.0]).validate()        # increasing, but not ages the bands can be named by
    for cmd, out in (("eda", "eda"), ("split", "s.csv")):
        r = CliRunner().invoke(app, [cmd, str(profile_folder), "--age-bands", "60,30", "--out", str(tmp_path / out)])
        assert r.exit_code == 2 and f"error: --age-bands 60,30 is not increasing ages: {said}" in r.output, r.output
        assert "read " not in r.output and not (tmp_path / out).exists()
    assert not (tmp_path / "s.csv").exists()


def test_age_band_edges_that_are_text_or_negative_are_one_line_with_the_flags_own_example(tmp_path):
    """A Python caller's age_bands=["30", "60"] was refused as "--age-bands 30,60 is not whole ages", which read as
    whole ages; age_bands=[-5, 30] passed (a band of ages below -5); and --relabel-age's refusal gave the example
    30,60 where its parser's gave 29,59. Text is shown quoted, a negative edge refused, each with the flag's example."""
    from imgcls.split import SplitConfig
    with pytest.raises(UserError, match=re.escape("--age-bands ['30', '60'] holds '30', not a whole number; give "
                                                  "age_bands=[30, 60]")):       # options.check's item rule
        SplitConfig(age_bands=["30", "60"]).validate()
    with pytest.raises(UserError, match=re.escape("--age-bands -5,30 is not ages of 0 or more: give the band edges")):
        SplitConfig(age_bands=[-5, 30]).validate()
    with pytest.raises(UserError, match=re.escape("--age-bands -5,30 is not ages of 0 or more")):
        mf.load(tmp_path, opts(age_bands=[-5, 30]), scan=False)
    with pytest.raises(UserError, match=re.escape("--relabel-age names no age: give the band edges in increasing "
                                                  "order, e.g. 29,59 (Python: relabel_age=[29, 59])")):
        SplitConfig(relabel_age=[]).validate()
    SplitConfig(age_bands=[0, 30], relabel_age=[0, 29]).validate()


def test_age_band_edges_of_numpy_text_are_shown_as_the_plain_text():
    """The --age-bands validator (profile_names.age_edges) showed a numpy array's text items by their repr:
    "--age-bands np.str_('60'),np.str_('30') is not whole ages"; they are shown as plain text is, quoted."""
    import numpy as np

    from imgcls.profile_names import age_edges
    for given, said in ((np.array(["60", "30"]), "'60','30'"), (["30", np.str_("60")], "'30','60'")):
        with pytest.raises(UserError) as e:
            age_edges("--age-bands")(given)
        assert str(e.value).startswith(f"--age-bands {said} is not whole ages: give the band edges"), str(e.value)


def test_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        mf.load(tmp_path / "missing")
    # a Python caller's LayoutOptions gets the command line's line (it said "unknown layout 'weird'"), and a string
    # for a list is refused, not read digit by digit
    with pytest.raises(UserError, match=re.escape("unknown --layout 'weird'; use one of: auto, manifest, folder")):
        mf.load(tmp_path, opts(layout="weird"))
    with pytest.raises(UserError, match=re.escape("--age-bands takes a list of values, not the string '30,60'")):
        mf.load(tmp_path, opts(age_bands="30,60"))
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


def test_a_missing_file_is_reported_once_and_rescanned_when_restored(tmp_path, image_folder, capsys, monkeypatch):
    """A row the scan recorded as missing (error, no bytes / sha256) was scanned and warned about again by every
    later step (split, train); and once restored it was never scanned again (stale_rows skipped rows with no bytes)."""
    from imgcls import io as imgio
    df = mf.load(image_folder, scan=True)
    gone = image_folder / df.loc[0, "path"]
    kept = gone.read_bytes()
    gone.unlink()
    capsys.readouterr()
    first = mf.scan_images(df)                    # the step that finds it: rescanned (stale), said once
    said = " ".join(capsys.readouterr().err.split())
    assert "1 row(s) of the manifest no longer match their file" in said and "1 unreadable image" in said
    assert first.loc[0, "error"] == "file not found" and pd.isna(first.loc[0, "bytes"])
    probed = []
    monkeypatch.setattr(imgio, "probe", lambda *a, **k: probed.append(a[0]) or pytest.fail("rescanned"))
    again = mf.scan_images(first)                 # the next step: still missing, as recorded: nothing to say
    assert capsys.readouterr().err == "" and not probed
    assert again.loc[0, "error"] == first.loc[0, "error"]
    monkeypatch.undo()
    gone.write_bytes(kept)                        # restored: its record (missing) no longer matches the disk
    back = mf.scan_images(again)
    assert "1 row(s) of the manifest no longer match their file" in " ".join(capsys.readouterr().err.split())
    assert back.loc[0, "error"] == "" and back.loc[0, "sha256"] == df.loc[0, "sha256"]
    assert int(back.loc[0, "bytes"]) == len(kept)


def test_a_same_size_file_copied_over_an_image_is_scanned_again(tmp_path, monkeypatch):
    """A file changed in place at the same size (cp plants/00.bmp buildings/01.bmp: BMPs of one size are all the
    same size) kept its old sha256: stale_rows compared the size alone, so the cross-class byte copy went unseen and
    the embedding cache was read under the old key. The scan records each file's mtime (ns) and a row whose file
    has another mtime is scanned again; read back from the CSV exactly (a blank among 19-digit ns values once made
    them floats)."""
    import os

    from imgcls import io as imgio
    root = make_image_folder(tmp_path / "bmp", {"buildings": 2, "plants": 2}, size=(16, 16), ext=".bmp")
    for k, p in enumerate(sorted(root.rglob("*.bmp"))):
        os.utime(p, ns=(1_700_000_000_123_456_789 + k, 1_700_000_000_123_456_789 + k))
    man = mf.write(mf.load(root, scan=True), tmp_path / "m.csv")
    table = pd.read_csv(man, dtype=str, keep_default_na=False)
    table.loc[table["path"] == "plants/001.bmp", "mtime"] = ""     # one row without (from an older manifest)
    table.to_csv(man, index=False)
    df = mf.load(man)
    assert df["mtime"].dtype == "Int64"
    assert int(df.set_index("path").loc["plants/000.bmp", "mtime"]) == 1_700_000_000_123_456_789 + 2
    probed = []
    real = imgio.probe
    monkeypatch.setattr(imgio, "probe", lambda *a, **k: probed.append(a[0]) or real(*a, **k))
    assert mf.scan_images(df)["sha256"].tolist() == df["sha256"].tolist() and not probed     # unchanged: trusted
    src, dst = root / "plants" / "000.bmp", root / "buildings" / "001.bmp"
    assert src.stat().st_size == dst.stat().st_size and src.read_bytes() != dst.read_bytes()
    shutil.copyfile(src, dst)
    os.utime(dst, ns=(1_700_000_000_999_000_000, 1_700_000_000_999_000_000))
    again = mf.scan_images(df).set_index("path")
    assert probed == [str(dst)]
    assert again.loc["buildings/001.bmp", "sha256"] == again.loc["plants/000.bmp", "sha256"]
    assert int(again.loc["buildings/001.bmp", "mtime"]) == 1_700_000_000_999_000_000
    cells = pd.DataFrame({"mtime": ["1700000000123456789", ""]}, dtype=object)    # a table given in memory
    assert mf.coerce(cells)["mtime"].tolist()[0] == 1_700_000_000_123_456_789           # not rounded to a float's


def test_a_fifo_among_the_images_keeps_every_mtime_exact(tmp_path, monkeypatch, capsys):
    """A file the scan records no mtime for (a FIFO, not read) made the scan's own results a float64 column, which
    rounded every other row's 19-digit st_mtime_ns to its 53 bits: the manifest eda / clean wrote held mtimes that
    matched no file, so the next step (preprocess data/clean) said '43 row(s) of the manifest no longer match their
    file' and hashed every image again. The scan keeps each mtime exact; the next scan trusts the rows."""
    import os

    from imgcls import io as imgio
    root = make_image_folder(tmp_path / "bmp", {"a": 2, "b": 2}, size=(16, 16), ext=".bmp")
    for k, p in enumerate(sorted(root.rglob("*.bmp"))):
        os.utime(p, ns=(1_796_596_891_566_088_768 + k, 1_796_596_891_566_088_768 + k))
    os.mkfifo(root / "b" / "fifo.bmp")
    df = mf.load(root, scan=True).set_index("path", drop=False)
    for p in sorted(root.rglob("*.bmp")):
        if p.is_file():
            assert int(df.loc[p.relative_to(root).as_posix(), "mtime"]) == p.stat().st_mtime_ns
    assert pd.isna(df.loc["b/fifo.bmp", "mtime"])
    capsys.readouterr()
    probed = []
    real = imgio.probe
    monkeypatch.setattr(imgio, "probe", lambda *a, **k: probed.append(a[0]) or real(*a, **k))
    again = mf.scan_images(mf.load(mf.write(df.reset_index(drop=True), tmp_path / "m.csv")), require=False)
    assert probed == [] and "no longer match" not in capsys.readouterr().err
    assert again["mtime"].tolist()[:4] == df["mtime"].tolist()[:4]


def test_a_table_older_than_its_images_rewritten_in_another_format_says_rerun_not_rename(tmp_path):
    """A split table written before preprocess ran again with --format jpg lists the .png files that run deleted;
    every image unreadable, the line's fix was 'the names listed and the files differ in their extension; rename
    the files as listed' (JPEGs renamed .png), beside the pipeline's own warning to rerun split. For a manifest the
    fix named is rerunning the steps after the one that rewrote the images."""
    from PIL import Image
    root = make_image_folder(tmp_path / "processed", {"a": 2, "b": 2}, size=(16, 16))
    table = mf.write(mf.load(root, scan=True), tmp_path / "splits.csv")
    for p in sorted(root.rglob("*.png")):
        Image.open(p).convert("RGB").save(p.with_suffix(".jpg"))
        p.unlink()
    with pytest.raises(UserError) as e:
        mf.load(table, scan=True)
    text = str(e.value)
    assert "holds 000.jpg, not 000.png" in text and "rename the files as listed" not in text
    assert "rerun the steps after the one that rewrote them (e.g. imgcls split)" in text


def test_a_manifest_without_mtime_is_judged_by_size(tmp_path):
    """A manifest written before the mtime column loads; its rows are stale by size alone, as before (a same-size
    change is not seen until the row is scanned again; a size change is), and a rescanned row gains its mtime."""
    import os
    root = make_image_folder(tmp_path / "bmp", {"a": 2, "b": 1}, size=(16, 16), ext=".bmp")
    man = mf.write(mf.load(root, scan=True), tmp_path / "m.csv")
    old = pd.read_csv(man, dtype=str, keep_default_na=False).drop(columns=["mtime"])
    old.to_csv(man, index=False)
    df = mf.load(man)
    assert df["mtime"].isna().all()
    os.utime(root / "a" / "000.bmp", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))   # touched only
    assert mf.stale_rows(df) == []
    make_image(root / "b" / "000.bmp", size=(20, 16), seed=9)                                    # another size
    again = mf.scan_images(df).set_index("path")
    assert int(again.loc["b/000.bmp", "width"]) == 20 and pd.notna(again.loc["b/000.bmp", "mtime"])
    assert again["mtime"].isna().sum() == 2


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


def test_default_input_follows_the_pipeline_and_warns_when_shadowed(tmp_path, monkeypatch, capsys):
    """raw -> clean -> processed -> splits: a step reads the furthest stage up to its own place, not the newest file;
    an earlier step's output written after the chosen one is named in a warning."""
    import os
    import time

    from imgcls import pipeline
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="data/splits.csv, data/processed, data/clean, data/raw"):
        pipeline.default_input("train")
    make_image_folder(tmp_path / "data" / "raw", {"a": 2, "b": 2})
    assert pipeline.default_input("train").as_posix() == "data/raw"
    (tmp_path / "data" / "clean").mkdir()                    # a folder without a manifest is no step's output
    assert pipeline.default_input("train").as_posix() == "data/raw"
    df = mf.load(tmp_path / "data" / "raw", announce=False)
    mf.write(df, tmp_path / "data" / "clean" / "manifest.csv")
    mf.write(df, tmp_path / "data" / "splits.csv")
    assert pipeline.default_input("preprocess").as_posix() == "data/clean"
    assert pipeline.default_input("split").as_posix() == "data/clean"
    capsys.readouterr()
    assert pipeline.default_input("train").as_posix() == "data/splits.csv"
    assert "warning" not in capsys.readouterr().err
    later = time.time() + 10                                 # clean re-run after the split
    os.utime(tmp_path / "data" / "clean" / "manifest.csv", (later, later))
    assert pipeline.default_input("train").as_posix() == "data/splits.csv"
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: data/clean was written after data/splits.csv" in err and "imgcls split" in err


@pytest.mark.parametrize("layout", [_dacon, _kaggle])
def test_a_bare_step_in_a_competition_folder_names_its_train_csv(tmp_path, monkeypatch, layout):
    """A bare `imgcls train` in a DACON folder (train.csv, train/, test/) or a Kaggle one (train.csv beside
    train_images/) said none of data/... exists and "pass the data folder or manifest", not naming the train.csv
    right there; it names it, with the command that reads it. A folder without one is told as before."""
    from imgcls import pipeline
    layout(tmp_path / "comp")
    monkeypatch.chdir(tmp_path / "comp")
    for step in ("train", "split", "preprocess"):
        with pytest.raises(UserError) as e:
            pipeline.default_input(step)
        assert str(e.value).endswith(f"exists; this folder holds train.csv: imgcls {step} train.csv"), str(e.value)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="exists; pass the data folder or manifest$"):
        pipeline.default_input("train")


def test_a_bare_step_in_a_dacon_folder_names_the_flag_that_reads_its_class_column(tmp_path, monkeypatch):
    """A bare `imgcls split` in DACON's folder (train.csv: id,img_path,artist) named `imgcls split train.csv`, which
    typed as told was refused in turn (no labels to stratify on: --label-col artist); `imgcls train train.csv`
    alike (--target artist). The command named now carries the flag that reads the class column, so it works as
    typed; several candidate columns are named with COLUMN."""
    from imgcls import pipeline
    d = _dacon(tmp_path / "comp")
    for i in range(1, 4):
        make_image(d / "train" / f"TRAIN_{i}.jpg", size=(16, 16), seed=i)
    ids = [f"TRAIN_{i}" for i in range(4)]
    table = pd.DataFrame({"id": ids, "img_path": [f"./train/{i}.jpg" for i in ids],
                          "artist": ["Monet", "Monet", "Degas", "Degas"]})
    table.to_csv(d / "train.csv", index=False)
    monkeypatch.chdir(d)
    for step, flag in (("split", "--label-col"), ("preprocess", "--label-col"), ("train", "--target")):
        with pytest.raises(UserError) as e:
            pipeline.default_input(step)
        assert str(e.value).endswith(f"this folder holds train.csv: imgcls {step} train.csv {flag} artist"), \
            str(e.value)
    table.assign(style=["a", "b", "a", "b"]).to_csv(d / "train.csv", index=False)
    with pytest.raises(UserError) as e:
        pipeline.default_input("split")
    assert str(e.value).endswith("imgcls split train.csv --label-col COLUMN (one of: artist, style)"), str(e.value)
    table.to_csv(d / "train.csv", index=False, sep=";")      # a European spreadsheet's export: read as split reads it
    with pytest.raises(UserError) as e:
        pipeline.default_input("split")
    assert str(e.value).endswith("imgcls split train.csv --label-col artist"), str(e.value)


@pytest.mark.parametrize("step", ["eda", "clean"])
def test_a_bare_eda_or_clean_names_what_to_give(tmp_path, monkeypatch, step):
    """A bare `imgcls eda` / `imgcls clean` said click's "Missing argument 'src'" where the other steps name what to
    give: one line, exit 2, naming the command to type: in DACON's folder its train.csv with the flag reading its
    class column (as a bare split's advice), beside the pipeline's data/raw that folder, elsewhere a data folder or
    manifest. --help still works."""
    from typer.testing import CliRunner

    from imgcls.cli import app

    def bare() -> str:
        r = CliRunner().invoke(app, [step])
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.output
        assert "Missing argument" not in lines[0], lines[0]
        return " ".join(lines[0].split())

    d = _dacon(tmp_path / "comp")
    for i in range(1, 4):
        make_image(d / "train" / f"TRAIN_{i}.jpg", size=(16, 16), seed=i)
    ids = [f"TRAIN_{i}" for i in range(4)]
    pd.DataFrame({"id": ids, "img_path": [f"./train/{i}.jpg" for i in ids],
                  "artist": ["Monet", "Monet", "Degas", "Degas"]}).to_csv(d / "train.csv", index=False)
    monkeypatch.chdir(d)
    assert bare().endswith(f"this folder holds train.csv: imgcls {step} train.csv --label-col artist")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    assert bare().endswith(f"imgcls {step} DATA_FOLDER (a folder of class folders, or a manifest.csv)")
    make_image_folder(empty / "data" / "raw", {"a": 1, "b": 1})
    assert bare().endswith(f"imgcls {step} data/raw")
    r = CliRunner().invoke(app, [step, "--help"])
    assert r.exit_code == 0 and "Dataset folder" in r.output, r.output


@pytest.mark.parametrize("step", ["eda", "clean"])
def test_run_eda_and_run_clean_without_data_say_what_the_bare_command_says(tmp_path, monkeypatch, step):
    """run_eda(None) / run_clean(None) (a notebook's `src=None`) were a TypeError traceback deep in pathlib, and
    run_eda() / run_clean() a missing-argument TypeError, where a bare `imgcls eda` / `imgcls clean` names what to
    give: the library says the command's line itself, as a UserError, and writes nothing."""
    from imgcls.clean import run_clean
    from imgcls.eda import run_eda
    run = {"eda": run_eda, "clean": run_clean}[step]
    monkeypatch.chdir(tmp_path)
    for call in (lambda: run(None), lambda: run()):
        with pytest.raises(UserError) as e:
            call()
        assert str(e.value) == (f"no data given to {step}; pass the dataset: imgcls {step} DATA_FOLDER (a folder of "
                                f"class folders, or a manifest.csv)"), str(e.value)
    make_image_folder(tmp_path / "data" / "raw", {"a": 1, "b": 1})
    with pytest.raises(UserError, match=f"no data given to {step}; pass the dataset: imgcls {step} data/raw$"):
        run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"] and \
        sorted(p.name for p in (tmp_path / "data").iterdir()) == ["raw"]


def test_a_bare_predict_in_a_competition_folder_names_its_test_csv(tmp_path, monkeypatch):
    """A bare `imgcls predict RUN` in a DACON folder (train.csv, test.csv, test/) said none of data/test, data/eval
    exists and "pass the data folder or manifest", not naming the test.csv right there; it names it, with the
    command (and Python call) that reads it, the run as given or none. A folder without one is told as before."""
    from imgcls import pipeline
    _dacon(tmp_path / "comp")
    monkeypatch.chdir(tmp_path / "comp")
    for source, run, call in (("outputs/runs/r 1", " 'outputs/runs/r 1'", "'outputs/runs/r 1', "), (None, "", "")):
        with pytest.raises(UserError) as e:
            pipeline.default_test_data(source=source)
        assert str(e.value).endswith(f"exists; this folder holds test.csv: imgcls predict{run} --data test.csv "
                                     f"(Python: run_predict({call}data='test.csv'))"), str(e.value)
    from imgcls.predict import read_test_data
    assert list(read_test_data("test.csv")["id"]) == ["TEST_0"]     # what the command named reads: test.csv's rows
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="exists; pass the data folder or manifest$"):
        pipeline.default_test_data()


def test_a_bare_predict_in_a_kaggle_folder_names_its_sample_submission(tmp_path, monkeypatch):
    """A bare `imgcls predict RUN` in a Kaggle folder (train.csv + train_images/, test_images/ listed by
    sample_submission.csv, no test.csv) said only "pass the data folder or manifest", though --data
    sample_submission.csv reads the test images there, in the submission's order; it names that command."""
    from imgcls import pipeline
    from imgcls.predict import read_test_data
    d = _kaggle(tmp_path / "comp")
    for n in ("s1", "s0"):
        make_image(d / "test_images" / f"{n}.png", size=(16, 16))
    pd.DataFrame({"id": ["s1.png", "s0.png"], "label": "x"}).to_csv(d / "sample_submission.csv", index=False)
    monkeypatch.chdir(d)
    with pytest.raises(UserError) as e:
        pipeline.default_test_data(source="outputs/runs/r")
    assert str(e.value).endswith(
        "exists; this folder holds sample_submission.csv (no test table; its rows are the test images): imgcls "
        "predict outputs/runs/r --data sample_submission.csv (Python: run_predict('outputs/runs/r', "
        "data='sample_submission.csv'))"), str(e.value)
    assert list(read_test_data("sample_submission.csv")["path"]) == ["s1.png", "s0.png"]   # what it names reads
    assert pipeline._competition_table(d, "train").name == "train.csv"        # a bare train still names train.csv


def test_declared_columns_are_coerced_on_read(tmp_path, image_folder):
    """Every step's columns come back with their declared type, whatever pandas would have guessed."""
    df = mf.load(image_folder, announce=False).iloc[:4].reset_index(drop=True)
    df["keep"] = ["true", "no", "", "1"]
    df["label_conflict"] = ["", "True", "false", "0"]
    df["ood_score"] = ["0.5", "", "1", "2.5"]
    df["face_found"] = ["True", "", "False", ""]
    df["fold"] = ["0", "", "-1", "3"]
    df["dup_group"] = ["", "7", "", "7"]
    df["attribute"] = ["x", "", "y", ""]                     # undeclared: left as read
    mf.write(df, tmp_path / "m.csv")
    back = mf.load(tmp_path / "m.csv", announce=False)
    assert back["keep"].tolist() == [True, False, True, True] and back["keep"].dtype == bool
    assert back["label_conflict"].tolist() == [False, True, False, False]
    assert back["ood_score"].isna().tolist() == [False, True, False, False] and back["ood_score"].dtype == "float64"
    assert back["face_found"].tolist()[0] is True and back["face_found"].isna().tolist() == [False, True, False, True]
    assert str(back["fold"].dtype) == "Int64" and back["fold"].isna().tolist() == [False, True, False, False]
    assert back["dup_group"].tolist() == ["", "7", "", "7"]  # text, not 7.0
    assert back["attribute"].tolist() == ["x", "", "y", ""]
    assert mf.columns_of("clean") == ["keep", "reason", "dup_group", "duplicate_of", "ood_score", "label_conflict"]
    assert mf.columns_of("split") == ["split", "fold", "drop_reason"]


@pytest.mark.parametrize("column, value", [("keep", "maybe"), ("fold", "two"), ("fold", "1.5"), ("ood_score", "x")])
def test_a_bad_cell_of_a_declared_column_is_one_line(tmp_path, image_folder, column, value):
    df = mf.load(image_folder, announce=False).iloc[:3].reset_index(drop=True)
    df[column] = ["1", value, "0"]
    mf.write(df, tmp_path / "m.csv")
    with pytest.raises(UserError, match=rf"m.csv: line 3 has '{value}' in its column '{column}' .*fix the cell"):
        mf.load(tmp_path / "m.csv", announce=False)


def test_a_bad_cell_is_named_by_its_line_in_the_file_and_by_its_row_in_a_python_table(tmp_path, image_folder):
    """A manifest's bad cell was named 'row N' (its position among the rows), a count no editor shows: a blank line
    before it put it further off. It is named by the file's line (the reader's layouts.row_at); a Python caller's
    own DataFrame by its 1-based row and its df.iloc position."""
    df = mf.load(image_folder, announce=False).iloc[:3].reset_index(drop=True)
    df["keep"] = ["1", "0", "maybe"]
    mf.write(df, tmp_path / "m.csv")
    header, *rows = (tmp_path / "m.csv").read_text().splitlines(keepends=True)
    (tmp_path / "m.csv").write_text(header + rows[0] + "\n" + "".join(rows[1:]))      # line 3 empty
    with pytest.raises(UserError, match=r"m.csv: line 5 has 'maybe' in its column 'keep' "):
        mf.load(tmp_path / "m.csv", announce=False)
    with pytest.raises(UserError, match=r"^the manifest: row 3 \(df.iloc\[2\]\) has 'maybe' in its column 'keep' "):
        mf.coerce(pd.DataFrame({"keep": ["1", "0", "maybe"]}, index=[7, 8, 9]))


def test_a_bad_bool_cell_lists_every_word_the_truth_table_accepts():
    """A bad bool cell's line said 'accepted: true/false, 1/0, yes/no, y/n, t/f', spelt by hand beside options'
    TRUE_WORDS / FALSE_WORDS, and left out 1.0 / 0.0, which parse_bool takes. It is built from the table."""
    assert mf.parse_bool("1.0") is True and mf.parse_bool("0.0") is False
    with pytest.raises(UserError) as e:
        mf.coerce(pd.DataFrame({"keep": ["1", "maybe"]}))
    assert "(accepted: true/false, 1/0, 1.0/0.0, yes/no, y/n, t/f or empty (= kept));" in str(e.value), str(e.value)


def test_profile_attributes_that_are_text_stay_text(tmp_path, image_folder):
    """`mask` / `age` may be a competition CSV's own text attributes: not an error, left as they are."""
    df = mf.load(image_folder, announce=False).iloc[:2].reset_index(drop=True)
    df["mask"] = ["none", "surgical"]
    mf.write(df, tmp_path / "m.csv")
    assert mf.load(tmp_path / "m.csv", announce=False)["mask"].tolist() == ["none", "surgical"]


KEEP_TABLE = {"true": True, "True": True, " TRUE ": True, "1": True, "yes": True, "Y": True, "t": True, "": True,
              "false": False, "False": False, "0": False, "no": False, "N": False, "f": False, "FALSE": False}


def test_one_keep_truth_table_across_split_preprocess_and_train(tmp_path):
    """A hand-edited `keep` cell means the same to every step: split leaves the row out, preprocess does not process
    it, train does not use it - exactly for the false spellings; an empty cell is kept by all three."""
    from imgcls import split as sp
    from imgcls.preprocess import run_preprocess
    from imgcls.train.data import usable_rows
    src = make_image_folder(tmp_path / "raw", {"a": 8, "b": 7}, size=(24, 20))
    df = mf.load(src, announce=False).reset_index(drop=True)
    df["keep"] = list(KEEP_TABLE)
    mf.write(df, tmp_path / "clean" / "manifest.csv")
    expect_kept = {p for p, k in zip(df["path"], KEEP_TABLE.values()) if k}
    back = mf.load(tmp_path / "clean", announce=False)
    assert {p for p, k in zip(back["path"], mf.kept(back)) if k} == expect_kept
    split_df, *_ = sp.make_split(back, sp.SplitConfig(near_dup=False, val=0.25))
    assert set(split_df.loc[split_df["split"] != "", "path"]) == expect_kept
    assert set(split_df.loc[split_df["split"] == "", "drop_reason"]) == {"clean: keep=false"}
    processed = run_preprocess(tmp_path / "clean", tmp_path / "p", report=False)
    written = processed["root"] == str((tmp_path / "p").resolve())
    assert set(processed.loc[written, "path"]) == expect_kept
    assert set(usable_rows(back)[0]["path"]) == expect_kept
    # the in-memory spellings of a Python caller read the same way
    raw = pd.DataFrame({"keep": list(KEEP_TABLE)})
    assert mf.kept(raw).tolist() == list(KEEP_TABLE.values())


def test_write_table_is_atomic_csv_or_parquet(tmp_path):
    from imgcls.fsutil import write_table
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    write_table(df, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "a,b\n1,x\n2,y\n"
    write_table(df, tmp_path / "t.parquet")
    assert pd.read_parquet(tmp_path / "t.parquet").equals(df)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.parquet"]     # no temporary left behind


def test_a_csv_is_not_read_from_a_folder_that_shares_only_a_few_of_its_names(tmp_path):
    """Kaggle's train.csv of bare ids (0000, 0001, ...) with its images in train/ and the test images in test/:
    the test folder holds 5 of the first 20 names, and train's rows were read from it (5 test images under train's
    labels, the rest unreadable). A folder holding half of the names or fewer is not the CSV's."""
    ids = [f"{i:04d}" for i in range(20)]
    for i, n in enumerate(ids):
        make_image(tmp_path / "train" / f"{n}.png", seed=i)
    for i in (0, 3, 7, 11, 5):
        make_image(tmp_path / "test" / f"{ids[i]}.png", seed=100 + i)
    pd.DataFrame({"id": ids, "label": [i % 3 for i in range(20)]}).to_csv(tmp_path / "train.csv", index=False)
    df = mf.load(tmp_path / "train.csv", scan=False)
    assert set(df["root"]) != {str((tmp_path / "test").resolve())}      # not test/
    df = mf.load(tmp_path / "train.csv", opts(image_dir=str(tmp_path / "train")), scan=False)
    assert df["path"].tolist() == [f"{n}.png" for n in ids]
    # a test.csv whose images are in test/ is still found there, and so is one with a few files missing
    pd.DataFrame({"id": [ids[i] for i in (0, 3, 7, 11, 5, 19)]}).to_csv(tmp_path / "test.csv", index=False)
    assert set(mf.load(tmp_path / "test.csv", scan=False)["root"]) == {str((tmp_path / "test").resolve())}


def test_a_kaggle_csv_finds_its_images_in_the_one_folder_beside_it_that_holds_them(tmp_path, capsys):
    """Kaggle's train.csv (image_id,label) beside train_images/ and test_images/: no name was found beside the CSV
    or in images/ / test/, the CSV's own folder (the working folder) became the input, and `imgcls clean train.csv`
    refused its default --out data/clean as 'inside the input folder'; `train train.csv`, which has no
    --image-dir, could not read it at all. The one folder beside the CSV that holds most of its names is read."""
    ids = [f"{1000 + 7 * i}.jpg" for i in range(12)]
    for i, n in enumerate(ids):
        make_image(tmp_path / "train_images" / n, seed=i)
    make_image(tmp_path / "test_images" / "2216.jpg", seed=99)
    pd.DataFrame({"image_id": ids, "label": [i % 3 for i in range(12)]}).to_csv(tmp_path / "train.csv", index=False)
    df = mf.load(tmp_path / "train.csv", scan=True)
    assert set(df["root"]) == {str((tmp_path / "train_images").resolve())} and (df["error"] == "").all()
    assert "images in" in capsys.readouterr().err
    # the clean default output under the working folder is not under the input
    from imgcls.fsutil import check_output_location
    check_output_location(tmp_path / "data" / "clean", *mf.roots(df))
    # two folders that hold the names: one line naming them and --image-dir
    for i, n in enumerate(ids):
        make_image(tmp_path / "copy" / n, seed=i)
    with pytest.raises(UserError, match=r"are files in several folders beside it .*copy.*train_images.*--image-dir"):
        mf.load(tmp_path / "train.csv", scan=False)
    assert set(mf.load(tmp_path / "train.csv", opts(image_dir=str(tmp_path / "copy")), scan=False)["root"]) == \
        {str((tmp_path / "copy").resolve())}


def test_the_folder_of_a_csvs_bare_ids_is_found_by_their_names_with_ext(tmp_path):
    """test.csv's bare ids beside test/ holding a.jfif, b.jfif, read with --ext .jfif: the folder the names are in
    was judged by the ids without --ext (looked for as a.jpg, a.png, ...), none was found in test/, and the rows were
    read from the CSV's own folder, every image 'file not found' (eda, split, predict alike). It is judged by the
    names --ext makes, as they are then looked for."""
    for i, n in enumerate(("a", "b")):
        make_image(tmp_path / "test" / f"{n}.jpg", seed=i).rename(tmp_path / "test" / f"{n}.jfif")
    pd.DataFrame({"id": ["a", "b"]}).to_csv(tmp_path / "test.csv", index=False)
    for ext in (".jfif", "jfif"):
        df = mf.load(tmp_path / "test.csv", opts(ext=ext), scan=True)
        assert set(df["root"]) == {str((tmp_path / "test").resolve())}, df
        assert df["path"].tolist() == ["a.jfif", "b.jfif"] and (df["error"] == "").all()
        assert df["source_id"].tolist() == ["a", "b"]


def test_a_folder_given_whole_finds_its_csv_of_bare_ids_with_ext(tmp_path):
    """The folder holding test.csv (bare ids) and test/*.jfif, given whole with --ext .jfif: the detection judged
    whether test.csv lists the folder's images by its ids without --ext, found none, read test/ unlabeled and then
    refused --ext ('applies to a competition CSV'); without --ext the ids were the file names (a.jfif), not the
    CSV's. The detection looks for the names --ext makes: the folder is read as its CSV, ids as listed."""
    for i, n in enumerate(("a", "b")):
        make_image(tmp_path / "test" / f"{n}.jpg", seed=i).rename(tmp_path / "test" / f"{n}.jfif")
    pd.DataFrame({"id": ["a", "b"]}).to_csv(tmp_path / "test.csv", index=False)
    df = mf.load(tmp_path, opts(ext=".jfif"), scan=True)
    assert mf.layout_read(df) == "csv" and df["source_id"].tolist() == ["a", "b"] and (df["error"] == "").all()
    assert set(df["root"]) == {str((tmp_path / "test").resolve())}



def test_a_csvs_bare_ids_of_jfif_images_are_found_without_ext(tmp_path):
    """Bare ids were looked for with layouts.COMMON_EXTENSIONS added (.jpg, .png, ..., .heic), a list of its own that
    lacked extensions imgcls.io reads as images (.jfif, .jpe, .ppm, .pgm, .pbm, .heif): test.csv's ids of test/*.jfif
    were every one 'file not found' without --ext, and the folder holding both was read unlabeled (ids the file
    names). The list is io's, the common extensions first: the CSV and the folder given whole read as listed."""
    for i, n in enumerate(("a", "b")):
        make_image(tmp_path / "test" / f"{n}.jpg", seed=i).rename(tmp_path / "test" / f"{n}.jfif")
    make_image(tmp_path / "test" / "c.jpg", seed=2).rename(tmp_path / "test" / "c.jpe")
    make_image(tmp_path / "test" / "c.png", seed=3)     # beside c.jpe: the common extension is the one read
    pd.DataFrame({"id": ["a", "b", "c"]}).to_csv(tmp_path / "test.csv", index=False)
    for src in (tmp_path / "test.csv", tmp_path):
        df = mf.load(src, scan=True)
        assert mf.layout_read(df) == "csv" and df["source_id"].tolist() == ["a", "b", "c"], df
        assert df["path"].tolist() == ["a.jfif", "b.jfif", "c.png"] and (df["error"] == "").all(), df
        assert set(df["root"]) == {str((tmp_path / "test").resolve())}


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_semicolon_or_tab_separated_csv_is_read_with_its_separator(tmp_path, sep):
    """A spreadsheet in a comma-decimal locale saves `id;label`, and some competitions ship TSVs: the header was read
    as one column, 'cannot tell which column holds the paths ... pass --path-col', which no flag could fix. The
    separator is judged by the header: a comma unless the header has none. A ragged row names its separator."""
    ids = [f"{i:04d}" for i in range(6)]
    for i, n in enumerate(ids):
        make_image(tmp_path / "train" / f"{n}.png", seed=i)
    (tmp_path / "train.csv").write_text("id" + sep + "label" + sep + "note\n"
                                        + "".join(f"{n}{sep}{'ab'[i % 2]}{sep}x,y\n" for i, n in enumerate(ids)))
    df = mf.load(tmp_path / "train.csv", scan=False)
    assert sorted(df["label"]) == ["a", "a", "a", "b", "b", "b"] and df["note"].eq("x,y").all()
    assert set(df["root"]) == {str((tmp_path / "train").resolve())}
    (tmp_path / "bad.csv").write_text(f"id{sep}label\n0000{sep}a{sep}extra\n")
    name = {";": "semicolon", "\t": "tab"}[sep]
    with pytest.raises(UserError, match=f"line 2 has 3 field.*a {name} inside a value needs quotes"):
        mf.load(tmp_path / "bad.csv", scan=False)
    from imgcls.submission import match_template      # a sample submission in the same format is matched
    (tmp_path / "sample.csv").write_text(f"id{sep}label\n" + "".join(f"{n}{sep}a\n" for n in ids))
    tpl = match_template(tmp_path / "sample.csv", df.assign(id=[p[:4] for p in df["path"]]))   # predict adds id
    assert list(tpl.frame.columns) == ["id", "label"] and list(tpl.frame["id"]) == ids
    assert list(df["path"].iloc[tpl.order].str[:4]) == ids


def test_a_row_naming_no_image_is_named_by_its_line_in_the_file(tmp_path):
    """A row with an empty image cell was named by 'line {row + 2}': off for a CSV whose earlier rows hold a quoted
    value spread over two lines or a blank line (pandas skips it), so the user looked at the wrong row. The line is
    the one the row starts on in the file, as a text editor numbers it."""
    make_image(tmp_path / "test" / "a.png", seed=0)
    (tmp_path / "test.csv").write_text('img_path,note\n\ntest/a.png,"two\nlines"\n\n,x\n')
    with pytest.raises(UserError, match="line 6 has no image in its column img_path"):
        mf.load(tmp_path / "test.csv", scan=False)


def test_a_whitespace_only_line_of_a_csv_is_skipped_as_pandas_skips_it_not_a_ragged_row(tmp_path):
    """A line of spaces (a hand-edited test.csv's last line) is no row to pandas, and read_csv's check of each
    row's fields refused it: 'line 3 has 1 field(s), the header has 2'. A TSV's line of one tab is a row."""
    make_image(tmp_path / "test" / "a.png", seed=0)
    (tmp_path / "test.csv").write_text("img_path,note\n  \ntest/a.png,x\n \t \n")
    assert mf.load(tmp_path / "test.csv", scan=False)["note"].tolist() == ["x"]
    (tmp_path / "test.tsv").write_text("img_path\tnote\ntest/a.png\tx\n\t\t\n")
    with pytest.raises(UserError, match="line 3 has 3 field"):
        mf.load(tmp_path / "test.tsv", scan=False, opts=mf.LayoutOptions(layout="csv"))


def test_blank_lines_before_a_csv_s_header_are_passed_over_as_pandas_does(tmp_path):
    """pandas reads a CSV whose header follows empty lines or lines of spaces; read_csv took the first of them for
    the header: 'line 3 has 2 field(s), the header has 0', its separator judged by an empty line (a comma)."""
    make_image(tmp_path / "test" / "a.png", seed=0)
    (tmp_path / "test.csv").write_text("\n \t\nimg_path;note\ntest/a.png;x,y\n")
    assert mf.load(tmp_path / "test.csv", scan=False)["note"].tolist() == ["x,y"]
    (tmp_path / "test.csv").write_text("\n \t\nimg_path;note\ntest/a.png;x\n\n;y\n")
    with pytest.raises(UserError, match="line 6 has no image in its column img_path"):
        mf.load(tmp_path / "test.csv", scan=False)


def test_a_whitespace_only_line_of_a_one_column_csv_is_no_row_in_its_line_numbers(tmp_path):
    """pandas skips a line of spaces or tabs as it skips an empty one, and csv_row_lines counted it as a row of a
    one-column CSV (its one field '   '): a row naming no image after it was named one line early."""
    make_image(tmp_path / "test" / "a.png", seed=0)
    (tmp_path / "test.csv").write_text('img_path\ntest/a.png\n   \n \t\n""\n')
    with pytest.raises(UserError, match="line 5 has no image in its column img_path"):
        mf.load(tmp_path / "test.csv", scan=False)


def test_no_step_writes_into_the_competitions_train_or_eval_folder_given_whole(tmp_path):
    """`imgcls eda train --out train/eda` (the mask competition's train/: train.csv and images/<profile>/) wrote the
    report beside train.csv: only images/, the profiles' root, was checked. `train` was then read as class folders
    of eda's PNGs (173 "images" of layout 'folder'). The folder given (and a profile train.csv's own folder) is an
    input folder too, for eda, clean, preprocess, split and train, as it was for predict's eval/."""
    from typer.testing import CliRunner

    from imgcls.cli import app
    train = tmp_path / "train"
    make_profiles(train / "images", n_profiles=4)
    dirs = sorted(d.name for d in (train / "images").iterdir())
    (train / "train.csv").write_text("id,gender,race,age,path\n" + "".join(
        f"{d.split('_')[0]},{d.split('_')[1]},Asian,{d.split('_')[3]},{d}\n" for d in dirs))
    for src in (train, train / "train.csv"):
        assert str(train.resolve()) in mf.input_folders(mf.load(src, scan=False))
    runs = [["eda", str(train), "--out", str(train / "eda")],
            ["eda", str(train / "train.csv"), "--out", str(train / "eda")],
            ["clean", str(train), "--out", str(train / "clean"), "--exact-only", "--no-ood"],
            ["preprocess", str(train / "train.csv"), "--out", str(train / "processed")],
            ["split", str(train), "--out", str(train / "splits.csv"), "--no-near-dup"],
            ["train", str(train), "--out", str(train / "runs"), "--model", "resnet10t", "--no-pretrained"]]
    for args in runs:
        r = CliRunner().invoke(app, args + ["-q"])
        assert r.exit_code == 2 and "Traceback" not in r.output, (args, r.output)
        assert f"is inside the input folder {train.resolve()}" in " ".join(r.output.split()), (args, r.output)
    assert sorted(p.name for p in train.iterdir()) == ["images", "train.csv"]
    # an --out beside train/ is fine, and a plain class folder's own folder is its root as before
    assert mf.input_folders(mf.load(train, scan=False)) == [str((train / "images").resolve()), str(train.resolve())]


@pytest.mark.parametrize("hidden", ["@eaDir", "__MACOSX", ".thumbs"])
def test_a_folder_no_layout_reads_is_not_searched_for_imgcls_outputs(tmp_path, hidden):
    """The look for imgcls outputs below a dataset (outputs._output_below: a folder of runs given as the data, or as a
    step's --out) passed over names starting with '.' only, not layouts.hidden_name's rule: a Synology NAS's @eaDir
    or a macOS zip's __MACOSX holding a folder that looks like a run refused a dataset whose read leaves those
    folders out. Both now ask the owner of the rule (FolderView's listing)."""
    from imgcls.outputs import refuse_other_output
    data = make_image_folder(tmp_path / "data", {"cat": 1, "dog": 1}, size=(16, 16))
    run = data / hidden / "run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("src: x\n")
    (run / "metrics.csv").write_text("epoch\n0\n")
    df = mf.load(data, scan=False)
    assert sorted(df["label"]) == ["cat", "dog"]
    refuse_other_output(data, "eda", whole=True)        # no output below it that a layout reads
    shown = data / "runs" / "run"                       # a folder a layout reads: still refused, in both
    shutil.copytree(run, shown)
    with pytest.raises(UserError, match="runs/run: train run"):
        mf.load(data, scan=False)
    with pytest.raises(UserError, match="runs/run: train run"):
        refuse_other_output(data, "eda", whole=True)


@pytest.mark.parametrize("make, images, n_folders", [
    (lambda d: make_image_folder(d, {"cat": 3, "dog": 3}, size=(16, 16)), 6, 3),   # data/, cat/, dog/: 3, 3, 2; 2, 2, 2
    (_split_folders, 4, 7),  # data/, train/, val/, train/cat, train/dog, val/...: 3, 4, 3, 1, 2, 1, 1; 2, 3, 2, 1, 2, ...
    (lambda d: make_profiles(d, n_profiles=3), 21, 4),  # data/ and each profile folder: 2 (it was walked: 2 each)
    (lambda d: make_image_folder(d / "images", {"cat": 2, "dog": 1}, size=(16, 16)).parent, 3, 4),  # images/: 2
    (lambda d: make_image(d / "images" / "a.png", size=(16, 16)).parent.parent, 1, 2),   # images/ alone: 3
])  # (train/ asked for an image, its first class folder walked for one; images/ asked for a class folder, walked)
def test_the_look_for_outputs_below_a_dataset_shares_the_reads_listings(tmp_path, monkeypatch, make, images,
                                                                         n_folders):
    """load's check that the data is no folder of imgcls outputs listed the folder and each folder in it itself
    (os.scandir) besides the detection's look (FolderView) and the read's walk: the folder given listed three times,
    a class folder three times (the detection asking it for an image). The check then looked through the detection's
    FolderView, and the read's image walk still listed every folder again, as did the detection's walk for an image
    below a split folder, the profiles' read each profile folder, and the look for the image folder a folder holds
    alone (the classes' folder, or the images read unlabeled) walked it again. Now the walks take the views' listings (the
    detection's walk keeps those it makes for the read's, which forgets each once walked): every folder is listed
    once, and no listing is held after the walk. Every os.scandir counted, the image walks' included."""
    import os

    from imgcls.layouts import FolderView
    data = make(tmp_path / "data")
    folders = [data, *(p for p in data.rglob("*") if p.is_dir())]
    listed = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda p=".": listed.append(Path(p)) or scandir(p))
    views = []
    init = FolderView.__init__
    monkeypatch.setattr(FolderView, "__init__", lambda self, *a, **k: views.append(self) or init(self, *a, **k))
    df = mf.load(data, scan=False)
    assert {f: listed.count(f) for f in folders} == {f: 1 for f in folders}, listed
    assert len(df) == images and len(folders) == n_folders
    # no listing below the folder given outlives the read's walk: the class folders' (~250 bytes an image) were held
    # through load; the folder given, where it is not walked (the profiles', a lone image folder's), keeps its own
    assert [v.root for v in views if "_listing" in v.__dict__ and v.root != data] == []


@pytest.mark.parametrize("step", ["eda", "clean", "split", "train", "predict"])
def test_the_competitions_folder_given_whole_is_refused_not_read_as_classes_train_and_eval(tmp_path, step):
    """The mask competition unpacked as comp/train (train.csv, images/<profile>/) and comp/eval (info.csv, images/),
    and comp given to a step: read as class folders, the profiles' images were class 'train' and the test images
    class 'eval' (eda: 2 classes; train a 2-class model of which folder an image came from). Now one line naming the
    competition's folders and the fix, exit 2, before anything is written; --layout folder reads them as asked."""
    from imgcls.cli import app
    from typer.testing import CliRunner
    comp = tmp_path / "comp"
    make_profiles(comp / "train" / "images", n_profiles=3)
    pd.DataFrame({"id": ["000001"], "path": ["000001_female_Asian_45"]}).to_csv(comp / "train" / "train.csv",
                                                                                  index=False)
    ids = ["f3.jpg", "0a.jpg"]
    for i, n in enumerate(ids):
        make_image(comp / "eval" / "images" / n, seed=i)
    pd.DataFrame({"ImageID": ids, "ans": 0}).to_csv(comp / "eval" / "info.csv", index=False)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, _step_reading(step, comp, out, tmp_path))
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert (f"{comp} holds the mask competition's folders, not classes: {comp / 'train'} (its profiles, "
            f"{comp / 'train' / 'images'}) and {comp / 'eval'} (the images {comp / 'eval' / 'info.csv'} lists); "
            f"give the one to read in place of {comp} ({comp / 'train'} to train, {comp / 'eval'} to predict), or "
            f"--layout folder to read its "
            f"folders as classes") in said, said
    assert not out.exists()
    if step == "eda":
        assert mf.detect_layout(comp / "train", opts()) == "profiles"
        assert set(mf.load(comp, opts(layout="folder"), scan=False)["label"]) == {"train", "eval"}


def test_a_csv_whose_names_are_in_several_folders_names_a_route_the_step_has(tmp_path, monkeypatch):
    """A train.csv whose names are files in two folders beside it was one line ending 'pass --image-dir with the one
    that holds its images', for every step: `imgcls train train.csv`, `tune` and `predict --data train.csv`, which
    have no --image-dir, answered the user who followed it with 'No such option: --image-dir'. The line names the
    routes those steps have too (the CSV saved in the folder and given as the data; predict's --data DIR --csv CSV),
    and both read the images from that folder."""
    from typer.testing import CliRunner

    from imgcls.cli import app
    ids = [f"{1000 + 7 * i}.png" for i in range(6)]
    for i, n in enumerate(ids):
        make_image(tmp_path / "imgs_a" / n, seed=i)
        make_image(tmp_path / "imgs_b" / n, seed=i)
    pd.DataFrame({"id": ids, "label": [i % 2 for i in range(6)]}).to_csv(tmp_path / "train.csv", index=False)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["train", "train.csv", "--model", "resnet10t", "--no-pretrained", "--epochs", "1"])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and said.count("error:") == 1, r.output
    assert ("pass --image-dir with the one that holds its images (a step without --image-dir, train, tune or "
            "predict: DIR/CSV (the CSV saved in DIR, given as the data); predict: --data DIR --csv CSV)") in said, said
    shutil.copy(tmp_path / "train.csv", tmp_path / "imgs_a" / "train.csv")
    assert set(mf.load(tmp_path / "imgs_a" / "train.csv", scan=False)["root"]) == {str((tmp_path / "imgs_a").resolve())}
    assert set(mf.load(tmp_path / "imgs_b", opts(csv=str(tmp_path / "train.csv")), scan=False)["root"]) == \
        {str((tmp_path / "imgs_b").resolve())}


def test_a_csv_none_of_whose_files_exist_is_one_line_for_each_step(tmp_path, monkeypatch):
    """A train.csv every path of which (./tst/A.jpg) is missing: split, clean, preprocess and train first said
    "read tr.csv as layout 'csv' (2 images; images in tst)", a folder that does not exist, then a warning listing
    the missing files, then their refusal: three lines where one would do. The refusal is the first and only line.
    eda refuses it as well, before writing anything, and its read line names no folder that is not there; a CSV
    whose files are there is announced as before."""
    from typer.testing import CliRunner

    from imgcls.cli import app
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"id": ["A", "B"], "img_path": ["./tst/A.jpg", "./tst/B.jpg"], "label": ["x", "y"]}
                 ).to_csv(tmp_path / "tr.csv", index=False)
    for call in (["split", "tr.csv", "--out", "sp.csv"], ["clean", "tr.csv", "--out", "cl"],
                 ["preprocess", "tr.csv", "--out", "pp"], ["train", "tr.csv", "--no-pretrained", "--out", "runs"]):
        res = CliRunner().invoke(app, call)
        said = " ".join(res.output.split())
        assert res.exit_code == 2 and "Traceback" not in res.output, (call, res.output)
        assert said.startswith("error: none of the 2 image(s) can be read (e.g. "), (call, said)
        assert said.count("error:") == 1 and "warning" not in said and "read tr.csv" not in said, (call, said)
    res = CliRunner().invoke(app, ["eda", "tr.csv", "--out", "eda"])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "error: none of the 2 image(s) can be read" in said, said
    assert "read tr.csv as layout 'csv' (2 images)" in said and "images in" not in said, said
    assert not (tmp_path / "eda").exists()
    for i, name in enumerate("AB"):
        make_image(tmp_path / "tst" / f"{name}.jpg", size=(16, 16), seed=i)
    res = CliRunner().invoke(app, ["split", "tr.csv", "--out", "sp.csv"])
    assert "read tr.csv as layout 'csv' (2 images; images in tst)" in " ".join(res.output.split()), res.output


def test_the_readme_names_every_column_each_step_appends():
    """README (The manifest): "`preprocess` adds `source_path`, `face_*`, `bg_removed`, `augmented_from`" left out
    `faces` and `matte_kept`, which preprocess writes (manifest.COLUMNS, the owner). The sentence names every column
    COLUMNS gives clean, preprocess and split (a `face_*` covering the face_ columns), and no other."""
    import fnmatch
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for step in ("clean", "preprocess", "split"):
        said = re.search(rf"`{step}` adds (.*?)[;.]", " ".join(readme.split()))
        assert said, f"the README's list of {step}'s columns moved"
        named = re.findall(r"`([\w*]+)`", said.group(1))
        owned = [c.name for c in mf.COLUMNS.values() if c.step == step]
        assert all(any(fnmatch.fnmatch(c, n) for n in named) for c in owned), (step, named, owned)
        assert all(any(fnmatch.fnmatch(c, n) for c in owned) for n in named), (step, named, owned)


def test_reading_a_manifest_resolves_each_root_once(tmp_path, monkeypatch):
    """A manifest's roots were resolved row by row (a realpath per image on every read: preprocess, split, train,
    predict); each distinct root is resolved once now, to the same absolute roots."""
    import pathlib
    root = make_image_folder(tmp_path / "raw", {"a": 20, "b": 20}, size=(16, 16))
    (tmp_path / "link").symlink_to(root)
    df = mf.load(tmp_path / "link")
    df["root"] = [str(tmp_path / ("link" if i % 2 else "raw")) for i in range(len(df))]
    mf.write(df, tmp_path / "m" / "manifest.csv")
    resolved = []
    real = pathlib.Path.resolve
    monkeypatch.setattr(pathlib.Path, "resolve", lambda self, *a, **k: resolved.append(self) or real(self, *a, **k))
    back = mf.read_manifest_file(tmp_path / "m" / "manifest.csv")
    assert len(resolved) <= 3, len(resolved)
    assert set(back["root"]) == {str(root.resolve())} and back["path"].tolist() == df["path"].tolist()


def test_text_values_reads_every_dtype_as_astype_str_with_blank_for_missing():
    """manifest.text_values, the one reading of a text column: each value as astype(str) gives it (a float column's
    1.0 as '1.0', as fillna('').astype(str) gave it), '' where missing, whatever dtype a CSV left (an all-empty column
    is float64), with no pandas warning; an Int64 column with a gap (fillna('') raised) and a list too."""
    import warnings
    import numpy as np
    cases = [(pd.Series([np.nan, np.nan]), ["", ""]), (pd.Series([1.0, np.nan]), ["1.0", ""]),
             (pd.Series([1, None], dtype="Int64"), ["1", ""]), (pd.Series(["a", None]), ["a", ""]),
             (pd.Series(["a", None, 2, pd.NA], dtype=object), ["a", "", "2", ""]),
             (pd.Series([True, False]), ["True", "False"]), (["x", None, np.nan], ["x", "", ""])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for values, want in cases:
            got = mf.text_values(values)
            assert list(got) == want and all(isinstance(v, str) for v in got), (values, list(got))
    s = pd.Series(["b", None], index=[7, 7])
    assert list(mf.text_values(s).index) == [7, 7]
