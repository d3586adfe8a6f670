"""imgcls.device.fold_batchnorm / inference_layout: batch norms folded into the convolutions that feed them."""
import torch
from torch import nn

from imgcls.device import fold_batchnorm, inference_layout


def _randomise_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return model


class Net(nn.Module):
    def __init__(self, reuse_pre_bn: bool = False):
        from timm.layers import BatchNormAct2d
        super().__init__()
        self.reuse_pre_bn = reuse_pre_bn
        self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), BatchNormAct2d(8, act_layer=nn.ReLU6)
        self.shared = nn.Conv2d(8, 8, 1)                     # run twice: never folded
        self.b3 = nn.BatchNorm2d(8)                          # fed by an addition: never folded
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        pre = self.c1(x)
        x = self.b1(pre)
        if self.reuse_pre_bn:                                # the convolution's raw output used a second time
            x = x + pre
        x = self.b2(self.c2(x))
        x = self.shared(self.shared(x))
        x = self.b3(x + 1)
        return {"logits": self.head(x.mean((2, 3))), "features": x}


def test_fold_keeps_the_outputs_and_removes_the_folded_norms():
    torch.manual_seed(0)
    net = _randomise_bn(Net()).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref = net(x)
    folded = fold_batchnorm(net, 32)
    assert folded is not net
    kinds = {name: type(m).__name__ for name, m in folded.named_modules()}
    assert kinds["b1"] == "Identity" and kinds["b2"] == "Sequential" and kinds["b3"] == "BatchNorm2d"
    assert folded.c1.bias is not None and net.c1.bias is None           # the original is left as it was
    with torch.no_grad():
        got = folded(x)
    for k in ref:
        assert torch.allclose(got[k], ref[k], atol=1e-5)


def test_a_fold_that_would_change_the_outputs_is_not_used():
    net = _randomise_bn(Net(reuse_pre_bn=True)).eval()
    assert fold_batchnorm(net, 32) is net


def test_a_model_whose_outputs_overflow_is_returned_unfolded_not_a_traceback():
    """Finite weights large enough that the probe's outputs are NaN (a run near divergence) made the fold's check
    call torch.allclose with atol NaN: 'RuntimeError: atol must be greater than or equal to zero', a traceback from
    predict and export's load_model. No comparison can prove such a fold: the model is returned as it is."""
    net = _randomise_bn(Net()).eval()
    with torch.no_grad():
        net.b3.weight.mul_(1e38)
        ref = net(torch.randn(2, 3, 32, 32))
    assert not all(bool(torch.isfinite(t).all()) for t in ref.values())
    assert fold_batchnorm(net, 32, in_place=True) is net and type(net.b1) is nn.BatchNorm2d


def test_training_mode_and_norm_free_models_are_returned_as_they_are():
    net = _randomise_bn(Net())
    assert fold_batchnorm(net.train(), 32) is net
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    assert fold_batchnorm(plain, 32) is plain


def test_in_place_folds_the_model_itself_and_puts_back_a_fold_that_changes_the_outputs():
    """inference_layout folds its model in place (no deep copy at each predict / embedding load): the same outputs
    as the copy's fold; where the fold would change them, the model's own convolutions and norms are put back."""
    torch.manual_seed(0)
    net, x = _randomise_bn(Net()).eval(), torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref = net(x)
    assert fold_batchnorm(net, 32, in_place=True) is net
    assert type(net.b1) is nn.Identity and type(net.b2) is nn.Sequential and net.c1.bias is not None
    with torch.no_grad():
        got = net(x)
    assert all(torch.allclose(got[k], ref[k], atol=1e-5) for k in ref)
    reuse = _randomise_bn(Net(reuse_pre_bn=True)).eval()
    before = {n: type(m) for n, m in reuse.named_modules()}
    weights = {n: p.detach().clone() for n, p in reuse.named_parameters()}
    assert fold_batchnorm(reuse, 32, in_place=True) is reuse
    assert {n: type(m) for n, m in reuse.named_modules()} == before and reuse.c1.bias is None
    assert {n: p.detach() for n, p in reuse.named_parameters()}.keys() == weights.keys()
    assert all(torch.equal(p.detach(), weights[n]) for n, p in reuse.named_parameters())


def test_inference_layout_is_eval_channels_last_and_folded():
    net = _randomise_bn(Net()).train()
    out = inference_layout(net, torch.device("cpu"), 32)
    assert not out.training and not any(type(m) is nn.BatchNorm2d and n == "b1" for n, m in out.named_modules())
    assert out.c1.weight.is_contiguous(memory_format=torch.channels_last)


def test_reuse_freed_memory_sets_glibc_malloc_once_and_can_be_turned_off(monkeypatch):
    import imgcls.device as device
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1
    monkeypatch.setattr(device, "_glibc", lambda: FakeLibc())
    device.reuse_freed_memory.cache_clear()
    try:
        monkeypatch.setenv("IMGCLS_REUSE_FREED_MEMORY", "0")
        assert device.reuse_freed_memory() is False and calls == []
        device.reuse_freed_memory.cache_clear()
        monkeypatch.delenv("IMGCLS_REUSE_FREED_MEMORY")
        device.resolve_device("cpu")                              # every step that runs a model resolves its device
        assert device.reuse_freed_memory() is True
        assert dict(calls) == {device._M_MMAP_THRESHOLD: 32 << 20, device._M_TRIM_THRESHOLD: 1 << 30,
                               device._M_TOP_PAD: 256 << 20} and len(calls) == 3      # once per process
    finally:
        device.reuse_freed_memory.cache_clear()


def test_reuse_freed_memory_on_this_machine():
    import platform

    import pytest

    import imgcls.device as device
    if device._glibc() is None:
        pytest.skip(f"not glibc ({platform.libc_ver()})")
    assert device._glibc().mallopt(device._M_MMAP_THRESHOLD, 32 << 20) == 1      # the real call is accepted


def test_a_convolution_feeding_two_norms_folds_into_neither():
    class Fork(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.b1, self.b2 = nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.BatchNorm2d(4)
            self.d, self.b3 = nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.c(x)
            return self.b1(y) + self.b2(y) + self.b3(self.d(x))
    net = _randomise_bn(Fork()).eval()
    folded = fold_batchnorm(net, 16)
    kinds = {name: type(m).__name__ for name, m in folded.named_modules()}
    assert kinds["b1"] == kinds["b2"] == "BatchNorm2d" and kinds["b3"] == "Identity"
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(folded(x), net(x), atol=1e-5)


def test_auto_inference_precision_is_bf16_only_on_a_cpu_run_with_amx(monkeypatch):
    import imgcls.device as device
    from imgcls.device import inference_precision
    monkeypatch.setattr(device, "_cuda_maybe", lambda: False)
    monkeypatch.setattr(device, "cpu_has_amx", lambda: True)
    assert inference_precision("auto", "cpu") == "bf16" and inference_precision("auto", "auto") == "bf16"
    assert inference_precision("auto", "cuda") == "fp32" and inference_precision("fp32", "cpu") == "fp32"
    monkeypatch.setattr(device, "_cuda_maybe", lambda: True)       # --device auto would pick the GPU
    assert inference_precision("auto", "auto") == "fp32"
    monkeypatch.setattr(device, "cpu_has_amx", lambda: False)      # AVX-512 without AMX: bf16 is slower there
    assert inference_precision("auto", "cpu") == "fp32" and inference_precision("bf16", "cpu") == "bf16"
