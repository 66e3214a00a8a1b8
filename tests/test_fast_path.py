"""The fast path computes the same soft labels as float32, within the bounds fast.py states.

Real CIFAR-10 test images; the CUDA-graph dispatch is tested with a fake capture on the CPU, and
for real where a GPU is present.
"""

import warnings

import pytest
import torch
from torch import nn

from flashdd_zoo import load_labeler
from flashdd_zoo.bench.tolerance import agreement, reference_logits
from flashdd_zoo.data import normalize
from flashdd_zoo.errors import ArtifactError, InputError
from flashdd_zoo.loaders.local import labeler_from_module
from flashdd_zoo.models import resnet18_arch
from flashdd_zoo.runtime.fast import (
    TOLERANCES,
    FastOptions,
    FastRunner,
    RawInputConv,
    ReplayCache,
    resolve_options,
    unaligned_widths,
)

FP32 = TOLERANCES[torch.float32]


@pytest.fixture(scope="module")
def images(cifar10, cifar_val):
    """(normalised, raw [0, 1]) real CIFAR-10 test images."""
    return normalize(cifar_val.images, cifar10.spec.mean, cifar10.spec.std), cifar_val.images.float() / 255


@pytest.fixture(scope="module")
def reference(exported, images):
    """float64 logits of the exported labeler on the real images."""
    return reference_logits(load_labeler(exported).net, images[0])


def _within(stats: dict, bounds: dict) -> None:
    assert stats["max_abs_diff_prob"] <= bounds["prob_t1"], stats
    assert stats["max_abs_diff_prob_t20"] <= bounds["prob_t20"], stats
    assert stats["rel_logit_error"] <= bounds["rel_logit"], stats


@pytest.mark.parametrize("options", [dict(), dict(fold_bn=True), dict(channels_last=True), dict(fast=True)],
                         ids=["plain", "fold_bn", "channels_last", "fast-cpu"])
def test_float32_settings_match_reference(exported, images, reference, options):
    labeler = load_labeler(exported, **options)
    stats = agreement(labeler, images[0], reference)
    _within(stats, FP32)
    assert stats["max_abs_diff_logit"] <= 1e-4 * stats["max_abs_logit"]
    assert stats["top1_agreement"] == 1.0


def test_fold_bn_leaves_no_batchnorm(exported):
    plain, folded = load_labeler(exported), load_labeler(exported, fold_bn=True)
    def batchnorms(m):
        return sum(isinstance(x, nn.BatchNorm2d) for x in m.modules())

    assert batchnorms(plain.net) == 20 and batchnorms(folded.net) == 0
    assert folded.options == FastOptions(fold_bn=True)


def test_fuse_normalization_takes_raw_images_exactly(exported, images, reference):
    labeler = load_labeler(exported, fuse_normalization=True, fold_bn=True)
    assert not labeler.expects_normalized
    _within(agreement(labeler, images[1], reference), FP32)


def test_normalization_fold_needs_the_border_map(exported, images, reference):
    """A per-channel bias alone (the naive fold) is wrong where conv1 pads: the test would see it."""
    labeler = load_labeler(exported, fuse_normalization=True)
    stem = labeler.net.conv1
    assert isinstance(stem, RawInputConv)
    bias_map = stem.bias_map.clone()
    interior = bias_map[..., 1:-1, 1:-1]
    assert torch.allclose(interior, interior[..., :1, :1].expand_as(interior), atol=1e-5)
    stem.bias_map.copy_(interior[..., :1, :1].expand_as(bias_map))  # the naive fold
    stats = agreement(labeler, images[1], reference)
    assert stats["rel_logit_error"] > 10 * FP32["rel_logit"]


def test_raw_input_labeler_explains_its_input(exported, cifar_val):
    labeler = load_labeler(exported, fuse_normalization=True)
    with pytest.raises(InputError, match=r"raw float .*images / 255"):
        labeler(cifar_val.images[:2])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("raw", [False, True], ids=["normalised", "raw-input"])
def test_half_precision_within_stated_tolerance(exported, images, reference, dtype, raw):
    """The pinned torch runs bf16/fp16 convolutions on the CPU, so this never skips."""
    labeler = load_labeler(exported, fast=True, dtype=dtype, fuse_normalization=raw)
    assert next(labeler.net.parameters()).dtype == dtype
    stats = agreement(labeler, images[1] if raw else images[0], reference)
    _within(stats, TOLERANCES[dtype])
    assert stats["top1_agreement"] >= 0.95
    probs = labeler.soft_labels(images[0][:4] if not raw else images[1][:4])
    assert probs.dtype == torch.float32 and torch.allclose(probs.sum(1), torch.ones(4))


def test_options_per_device():
    assert resolve_options("cpu") == FastOptions()
    cpu = resolve_options("cpu", fast=True)
    assert (cpu.dtype, cpu.channels_last, cpu.fold_bn, cpu.cuda_graphs) == (torch.float32, True, True, False)
    gpu = resolve_options("cuda", fast=True)  # pure logic: no GPU needed
    assert (gpu.dtype, gpu.channels_last, gpu.fold_bn, gpu.cuda_graphs) == (torch.bfloat16, True, True, True)
    assert resolve_options("cuda", fast=True, dtype="float16", cuda_graphs=False).dtype == torch.float16
    with pytest.raises(ArtifactError, match="cuda_graphs=True needs a CUDA device"):
        resolve_options("cpu", cuda_graphs=True)
    with pytest.raises(ArtifactError, match="unsupported labeler dtype"):
        resolve_options("cpu", dtype=torch.float64)


def test_onnx_backend_refuses_fast_options(exported):
    with pytest.raises(ArtifactError, match="backend='torch' only"):
        load_labeler(exported, backend="onnx", fast=True)


def test_labeler_from_module_leaves_the_callers_net_alone(small_net, images):
    labeler = labeler_from_module(small_net, resolution=32, mean=(0.5,) * 3, std=(0.25,) * 3,
                                  fast=True, dtype=torch.bfloat16)
    assert next(small_net.parameters()).dtype == torch.float32
    assert any(isinstance(m, nn.BatchNorm2d) for m in small_net.modules())
    assert labeler(images[0][:3]).shape == (3, 10)


def test_unaligned_widths_are_reported():
    arch = resnet18_arch(10, "cifar")
    assert unaligned_widths(arch) == []
    arch["widths"]["stages"][2] = 51
    arch["widths"]["inner"][0][1] = 14
    assert unaligned_widths(arch) == ["layer3=51", "layer1.1.conv1=14"]


# -- the CUDA-graph replay cache, with a fake capture ------------------------------------------


class FakeCapture:
    def __init__(self, fail_for=()):
        self.calls, self.fail_for = [], set(fail_for)

    def __call__(self, x, tag):
        self.calls.append(tuple(x.shape))
        if tuple(x.shape) in self.fail_for:
            raise RuntimeError("operation not permitted when stream is capturing")
        return lambda y, t: ("replay", tuple(y.shape), t)


def _cache(capture, capacity=2):
    return ReplayCache(lambda x, t: ("eager", tuple(x.shape), t), capture, capacity)


def test_replay_cache_captures_on_second_sighting_and_replays():
    capture = FakeCapture()
    cache = _cache(capture)
    x = torch.zeros(4, 3)
    assert cache("k4", 1, x, "a")[0] == "eager"  # one-off shapes never pay for a capture
    assert cache("k4", 1, x, "a")[0] == "replay"
    assert cache("k4", 1, x, "a")[0] == "replay"
    assert capture.calls == [(4, 3)]
    assert cache.stats == {"replays": 2, "captures": 1, "eager": 1, "evictions": 0}


def test_replay_cache_evicts_least_recently_used():
    capture = FakeCapture()
    cache = _cache(capture, capacity=2)
    shapes = {k: torch.zeros(n, 3) for k, n in (("a", 1), ("b", 2), ("c", 3))}
    for k in "ab":
        cache(k, 0, shapes[k], None), cache(k, 0, shapes[k], None)
    cache("a", 0, shapes["a"], None)  # a is now the most recently used
    cache("c", 0, shapes["c"], None), cache("c", 0, shapes["c"], None)
    assert list(cache.replays) == ["a", "c"] and cache.stats["evictions"] == 1
    assert cache("b", 0, shapes["b"], None)[0] == "replay" and len(capture.calls) == 4  # b re-captured


def test_replay_cache_drops_replays_when_weights_move():
    capture = FakeCapture()
    cache = _cache(capture)
    x = torch.zeros(2, 3)
    cache("k", "weights-v1", x, None), cache("k", "weights-v1", x, None)
    assert cache("k", "weights-v2", x, None)[0] == "eager"  # never replays a graph of old weights
    assert cache("k", "weights-v2", x, None)[0] == "replay" and len(capture.calls) == 2


def test_failed_capture_falls_back_to_eager_for_that_shape_only():
    capture = FakeCapture(fail_for=[(5, 3)])
    cache = _cache(capture)
    bad, good = torch.zeros(5, 3), torch.zeros(6, 3)
    cache("bad", 0, bad, None)
    with pytest.warns(RuntimeWarning, match="capture failed"):
        assert cache("bad", 0, bad, None)[0] == "eager"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache("bad", 0, bad, None)[0] == "eager"  # not retried, no second warning
    cache("good", 0, good, None)
    assert cache("good", 0, good, None)[0] == "replay"
    assert capture.calls == [(5, 3), (6, 3)]


def test_graph_runner_runs_eager_off_cuda(small_net, images):
    """cuda_graphs on a runner whose weights are on the CPU: plain eager, cache untouched."""
    runner = FastRunner(small_net, FastOptions(cuda_graphs=True))
    x = images[0][:4]
    for _ in range(3):
        out = runner.soft_labels(x, 4.0)
    assert runner.cache.stats == {"replays": 0, "captures": 0, "eager": 0, "evictions": 0}
    with torch.no_grad():
        assert torch.allclose(out, torch.softmax(small_net(x) / 4.0, 1), atol=1e-6)


def test_temperature_is_updated_in_place(small_net, images):
    """A captured graph reads the temperature tensor's memory: it must never be replaced."""
    runner = FastRunner(small_net, FastOptions())
    x = images[0][:4]
    runner.soft_labels(x, 4.0)
    buffer = runner._temp
    p2 = runner.soft_labels(x, 2.0)
    assert runner._temp is buffer and float(buffer) == 2.0
    with torch.no_grad():
        assert torch.allclose(p2, torch.softmax(small_net(x) / 2.0, 1), atol=1e-6)


def test_static_input_is_none_without_graphs(exported):
    assert load_labeler(exported, fast=True).static_input(8) is None


# -- real CUDA graphs: deselected by default (pyproject), run on the GPU machine with -m gpu ------


@pytest.mark.gpu
def test_cuda_graphs_match_eager_and_follow_shape_and_temperature(exported, images, reference):
    labeler = load_labeler(exported, device="cuda", fast=True)
    eager = load_labeler(exported, device="cuda", fast=True, cuda_graphs=False)
    x = images[0].cuda()
    for n in (16, 16, 16, 7, 7, 7, 16):
        for t in (1.0, 4.0):
            got, want = labeler.soft_labels(x[:n], t), eager.soft_labels(x[:n], t)
            assert torch.allclose(got, want, atol=1e-3)
    stats = labeler.runner.cache.stats
    assert stats["captures"] == 2 and stats["replays"] > 0
    buf = labeler.static_input(16)
    assert buf is not None
    buf.copy_(x[:16])
    assert torch.allclose(labeler.soft_labels(buf, 4.0), eager.soft_labels(x[:16], 4.0), atol=1e-3)
    _within(agreement(labeler, x, reference), TOLERANCES[torch.bfloat16])


@pytest.mark.slow
def test_torch_compile_path_matches_eager(exported, images, reference):
    """torch.compile (inductor; about 30 s on 2 CPU cores) computes the same soft labels."""
    labeler = load_labeler(exported, fast=True, compile=True)
    assert "compile" in repr(labeler)
    _within(agreement(labeler, images[0][:32], reference[:32]), FP32)
