"""The README's promises under hostile input (issue 15): no command modifies its input or writes outside --out,
outputs are atomic with the process umask, only regular files are read, output names never collide, a user's
mistake is one line with exit 2. Each test plants the exact reproduction of one hole."""
from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import make_image, make_image_folder
from imgcls.cli import app

runner = CliRunner()


def invoke(*args):
    r = runner.invoke(app, [str(a) for a in args])
    r.flat = " ".join(r.output.split())
    return r


def one_line_error(r, *words) -> None:
    """Exit 2, one `error:` line (rich may wrap it) naming each of `words`, no traceback."""
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.output.count("error:") == 1, r.output
    tail = r.flat[r.flat.index("error:"):]
    for w in words:
        assert w in tail, (w, r.output)


def snapshot(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple]:
    """{relative path: (kind, sha256 / link target, mode)} of everything under root, symlinks not followed and
    FIFOs / devices never opened; paths under `skip` (the outputs) left out."""
    out = {}
    skip = tuple(p.resolve() for p in skip)
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if any(d.resolve() == s or s in d.resolve().parents for s in skip):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = d / name
            rel = p.relative_to(root).as_posix()
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p), None)
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest(), stat.S_IMODE(st.st_mode))
            elif stat.S_ISDIR(st.st_mode):
                if not any(p.resolve() == s for s in skip):
                    out[rel] = ("dir", None, stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("special", None, stat.S_IMODE(st.st_mode))
    return out


def all_files(root: Path) -> list[Path]:
    return [Path(d, f) for d, _, fs in os.walk(root) for f in fs]


# ---------------------------------------------------------------------------------------------------------------
# 1. preprocess never writes outside --out, whatever the manifest's paths say
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture
def victim(tmp_path) -> Path:
    """Images outside every dataset root that a hostile manifest points at."""
    v = tmp_path / "victim"
    make_image(v / "a.png", seed=1)
    make_image(v / "c.png", seed=2)
    make_image(v / "d.jpg", seed=3)
    return v


def test_preprocess_absolute_and_dotdot_manifest_paths_are_read_never_written(tmp_path, victim):
    ds = tmp_path / "ds" / "sub"
    ds.mkdir(parents=True)
    make_image(ds / "animals" / "in.png", seed=4)
    (ds / "abs.csv").write_text("path,label,root\n"
                                f"{victim / 'a.png'},animals,\n"
                                "../../victim/c.png,animals,\n"
                                "animals/../../../victim/d.jpg,animals,\n"
                                "animals/in.png,animals,\n")
    before = snapshot(tmp_path)
    out = tmp_path / "out" / "p"
    r = invoke("preprocess", ds / "abs.csv", "--out", out, "--size", 32, "--workers", 1, "-q")
    assert r.exit_code == 0, r.output
    assert snapshot(tmp_path, skip=(tmp_path / "out",)) == before        # nothing outside --out changed
    written = {p.relative_to(out).as_posix() for p in all_files(out)}
    outside = sorted(w for w in written if w.startswith("_outside_root/"))
    assert len(outside) == 3 and any(w.endswith("_a.png") for w in outside) and any(w.endswith("_d.jpg") for w in
                                                                                    outside)
    assert "animals/in.png" in written                                   # rows inside the root keep their layout
    m = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert (m["error"] == "").all() and set(m["root"]) == {"."}
    assert all(Path(out, p).resolve().is_relative_to(out.resolve()) for p in m["path"])
    assert str(victim / "a.png") in set(m["source_path"])


def test_preprocess_competition_csv_with_absolute_paths(tmp_path, victim):
    ds = tmp_path / "comp"
    ds.mkdir()
    (ds / "train.csv").write_text(f"image,label\n{victim / 'a.png'},x\n{victim / 'c.png'},y\n")
    before = snapshot(tmp_path)
    out = tmp_path / "out"
    r = invoke("preprocess", ds, "--csv", ds / "train.csv", "--out", out, "--size", 32, "--workers", 1, "-q")
    assert r.exit_code == 0, r.output
    assert snapshot(tmp_path, skip=(out,)) == before
    assert len([p for p in all_files(out / "_outside_root")]) == 2


def test_preprocess_refuses_inputs_inside_out_and_symlinked_escapes(tmp_path, victim):
    out = tmp_path / "out"
    make_image(out / "mine.png", seed=5)
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "m.csv").write_text(f"path,label,root\n{out / 'mine.png'},a,\n")
    before = snapshot(tmp_path)
    r = invoke("preprocess", ds / "m.csv", "--out", out, "--size", 32, "--workers", 1)
    one_line_error(r, "inside --out", "mine.png")
    assert snapshot(tmp_path) == before
    # a folder inside --out that is a symlink to the victim: the output would land in the victim; refused
    make_image_folder(tmp_path / "raw", {"animals": 1})
    out2 = tmp_path / "out2"
    out2.mkdir()
    (out2 / "animals").symlink_to(victim)
    before = snapshot(tmp_path)
    r = invoke("preprocess", tmp_path / "raw", "--out", out2, "--size", 32, "--workers", 1)
    one_line_error(r, "outside")
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------------------------------------------
# 4. output names are unique by construction
# ---------------------------------------------------------------------------------------------------------------

def test_preprocess_output_names_never_collide(tmp_path):
    raw = tmp_path / "raw"
    for name, seed in (("pic.gif", 1), ("pic_gif.png", 2), ("pic.png", 3), ("pic.bmp", 4), ("Pic.PNG", 5)):
        im = Image.open(make_image(tmp_path / "tmp" / f"{seed}.png", seed=seed))
        (raw / "a").mkdir(parents=True, exist_ok=True)
        im.save(raw / "a" / name, format={"gif": "GIF", "bmp": "BMP"}.get(name.split(".")[-1].lower(), "PNG"))
    out = tmp_path / "out"
    r = invoke("preprocess", raw, "--out", out, "--workers", 1, "-q")
    assert r.exit_code == 0, r.output
    m = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert len(m) == 5 and (m["error"] == "").all()
    assert m["path"].str.casefold().is_unique
    written = [p for p in all_files(out / "a")]
    assert len(written) == 5                       # five inputs, five files: none overwrote another
    # each output holds its own input's pixels
    for src, path in zip(m["source_path"], m["path"]):
        a = Image.open(src).convert("RGB")
        b = Image.open(out / path).convert("RGB")
        assert a.tobytes() == b.tobytes(), (src, path)


def test_output_names_unique_for_duplicate_and_case_clashing_rows():
    from imgcls.preprocess import PreprocessConfig, output_names
    df = pd.DataFrame({"root": ["/r"] * 6, "path": ["a/x.png", "a/x.png", "a/X.PNG", "a/x.gif", "a/x_gif.png",
                                                     "a/.hidden.png"]})
    names = output_names(df, PreprocessConfig())
    assert len({n.casefold() for n in names}) == 6
    assert names[0] == "a/x.png" and names[4] == "a/x_gif.png" and not any(
        part.startswith(".") for n in names for part in n.split("/"))


# ---------------------------------------------------------------------------------------------------------------
# 6. outputs get the process umask's mode, not mkstemp's 0600
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_follow_the_umask(tmp_path, umask):
    from imgcls.fsutil import atomic_path, write_json
    old = os.umask(umask)
    try:
        write_json(tmp_path / "x.json", {"a": 1})
        with atomic_path(tmp_path / "y.bin") as tmp:
            tmp.write_bytes(b"1")
        make_image_folder(tmp_path / "raw", {"a": 2})
        r = invoke("preprocess", tmp_path / "raw", "--out", tmp_path / "out", "--size", 16, "--workers", 1, "-q")
        assert r.exit_code == 0, r.output
    finally:
        os.umask(old)
    files = [tmp_path / "x.json", tmp_path / "y.bin"] + all_files(tmp_path / "out")
    assert len(files) >= 6
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f
