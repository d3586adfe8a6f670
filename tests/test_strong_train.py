"""issue 17, train side: --target (one model per attribute), default-pretrained weight resolution, timm's
optimizer registry, --oversample, --init-from (tiny models, generated images)."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from conftest import make_image_folder, make_profiles
from imgcls.cli import app
from imgcls.errors import UserError
from imgcls.train import TrainConfig, run_train
from imgcls.train.checkpoint import find_checkpoints, load_model, read_checkpoint, read_meta

TINY = dict(model="resnet10t", img_size=32, batch_size=8, workers=0, device="cpu", pretrained=False)


def cfg_for(src, tmp_path, **kw):
    d = dict(TINY, src=str(src), out=str(tmp_path / "runs"), name="run", epochs=1, aug="none", val_split=0.3)
    d.update(kw)
    return TrainConfig(**d)


# --- --target: one model per attribute ---------------------------------------------------------------------------

def test_target_trains_a_single_attribute_model_recorded_in_the_metadata(tmp_path):
    src = make_profiles(tmp_path / "profiles", n_profiles=6)
    run = run_train(cfg_for(src, tmp_path, name="mask", target="mask"))
    meta = read_meta(find_checkpoints(run)[0])
    assert meta.target == "mask" and meta.decode == "single"
    assert meta.classes == ("0", "1", "2") and meta.head_names == ["mask"]
    vp = pd.read_csv(run / "val_predictions.csv", dtype={"label": str})
    assert set(vp["label"]) <= {"0", "1", "2"} and [c for c in vp.columns if c.startswith("p_")] == \
        ["p_0", "p_1", "p_2"]
    assert load_model(find_checkpoints(run)[0]).predict_proba(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    # the usual model records target label; an old checkpoint without the key reads as label
    run = run_train(cfg_for(src, tmp_path, name="label"))
    assert read_meta(find_checkpoints(run)[0]).target == "label"
    d = read_checkpoint(find_checkpoints(run)[0])["meta"]
    d.pop("target")
    from imgcls.model_meta import ModelMeta
    assert ModelMeta.from_dict(d).target == "label"


def test_target_errors_are_one_line_before_any_data_is_read(tmp_path):
    src = make_profiles(tmp_path / "profiles", n_profiles=4)
    with pytest.raises(UserError, match="--target colour: the data has no such column.*mask"):
        run_train(cfg_for(src, tmp_path, target="colour"))
    with pytest.raises(UserError, match="drop --heads multi"):
        run_train(cfg_for(src, tmp_path, target="mask", heads="multi"))
    assert not (tmp_path / "runs").exists()
    folder = make_image_folder(tmp_path / "one", {"a": 4})
    r = CliRunner().invoke(app, ["train", str(folder), "--model", "resnet10t", "--no-pretrained", "--target", "label",
                                 "--out", str(tmp_path / "runs2")])
    assert r.exit_code == 2 and "column 'label' has 1" in r.output and "Traceback" not in r.output
