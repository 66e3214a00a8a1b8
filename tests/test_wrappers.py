"""What DD codebases do to their teacher after loading it: DataParallel, .to / .cuda, .half,
requires_grad loops, torch.compile, .train(). Each gives the plain call's labels.

RDED's validation/main.py, for one:
    teacher_model = torch.nn.DataParallel(load_model(...)).cuda(); teacher_model.eval()
    for p in teacher_model.parameters(): p.requires_grad = False

Real CIFAR-10 test images. The CUDA cases are marked gpu (benchmarks/run_gpu_bench.sh wrappers).
"""

import pytest
import torch
from torch import nn

from flashdd_zoo import load_labeler
from flashdd_zoo.bench.tolerance import agreement, reference_logits
from flashdd_zoo.data import normalize
from flashdd_zoo.runtime.fast import TOLERANCES

FP32 = TOLERANCES[torch.float32]


@pytest.fixture(scope="module")
def images(cifar10, cifar_val):
    return normalize(cifar_val.images, cifar10.spec.mean, cifar10.spec.std)


@pytest.fixture(scope="module")
def plain(exported, images):
    """The plain call's logits: the oracle every wrapper is held to."""
    return load_labeler(exported)(images)


def _within(stats, bounds):
    assert stats["max_abs_diff_prob"] <= bounds["prob_t1"], stats
    assert stats["max_abs_diff_prob_t20"] <= bounds["prob_t20"], stats
    assert stats["rel_logit_error"] <= bounds["rel_logit"], stats


def _rded_wrapping(labeler):
    wrapped = nn.DataParallel(labeler)
    wrapped.eval()
    for p in wrapped.parameters():
        p.requires_grad = False
    return wrapped


@pytest.mark.parametrize("fast", [False, True], ids=["plain", "fast-cpu"])
def test_rded_wrapping_gives_the_plain_labels(exported, images, plain, fast):
    labeler = load_labeler(exported, fast=fast)
    assert len(list(labeler.parameters())) > 0  # the loop above reaches the weights
    got = _rded_wrapping(labeler)(images)
    if fast:  # folded BatchNorm: the same function up to float rounding
        assert torch.allclose(got, plain, rtol=0, atol=1e-4 * float(plain.abs().max()))
    else:
        assert torch.equal(got, plain)


def test_to_after_loading_gives_the_plain_labels(exported, images, plain):
    labeler = load_labeler(exported).to("cpu").to(torch.device("cpu"))
    assert torch.equal(labeler(images), plain)


def test_train_mode_keeps_the_network_in_inference(exported, images, plain):
    """A training loop's model.train() reaches every module it holds; BatchNorm must not switch
    to batch statistics, or the labels would depend on the batch."""
    labeler = load_labeler(exported)
    labeler.train()
    assert not any(m.training for m in labeler.net.modules())
    assert torch.equal(labeler(images), plain)
    assert torch.equal(labeler(images[:9]), plain[:9])


@pytest.mark.parametrize("options", [dict(), dict(fast=True), dict(input_normalization="raw")],
                         ids=["plain", "fast-cpu", "raw-input"])
def test_half_runs_in_float16_within_the_stated_bounds(exported, cifar_val, images, options):
    labeler = load_labeler(exported, **options).half()
    assert next(labeler.net.parameters()).dtype == torch.float16
    feed = cifar_val.images.float() / 255 if "input_normalization" in options else images
    stats = agreement(labeler, feed, reference_logits(load_labeler(exported).net, images))
    _within(stats, TOLERANCES[torch.float16])
    assert stats["top1_agreement"] >= 0.95
    assert labeler.soft_labels(feed[:4]).dtype == torch.float32


@pytest.mark.slow
def test_torch_compile_of_the_labeler_gives_the_plain_labels(exported, images, plain):
    """torch.compile(labeler) as users write it (inductor; needs a C compiler on the CPU)."""
    compiled = torch.compile(load_labeler(exported))
    got = compiled(images[:32])
    assert torch.allclose(got, plain[:32], rtol=0, atol=FP32["rel_logit"] * float(plain.abs().max()))


# -- CUDA: deselected by default (pyproject); benchmarks/run_gpu_bench.sh wrappers runs them ----------


@pytest.mark.gpu
@pytest.mark.parametrize("fast", [False, True], ids=["float32", "fast-bf16-graphs"])
def test_cuda_wrappers_give_the_plain_labels(exported, images, fast):
    x = images.cuda()
    bounds = TOLERANCES[torch.bfloat16 if fast else torch.float32]
    reference = reference_logits(load_labeler(exported).net, images)
    direct = load_labeler(exported, device="cuda", fast=fast)
    moved = load_labeler(exported).cuda()  # loaded on the CPU, moved after
    wrapped = _rded_wrapping(load_labeler(exported, device="cuda", fast=fast)).cuda()
    for labeler in (direct, moved, wrapped):
        for _ in range(3):  # the third call replays a captured graph on the fast path
            got = labeler(x)
        assert got.device.type == "cuda"
        probs = torch.softmax(got.double().cpu(), 1)
        assert float((probs - torch.softmax(reference, 1)).abs().max()) <= bounds["prob_t1"]
    _within(agreement(direct.half(), x, reference), TOLERANCES[torch.float16])
    _within(agreement(direct.cpu().float(), images, reference), bounds)  # back to the CPU


@pytest.mark.gpu
def test_dataparallel_replicas_give_the_plain_labels(exported, images):
    """Replicas (two on one GPU where only one is present) run their own copy of the network."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.device_count() > 1 else [0, 0]
    reference = reference_logits(load_labeler(exported).net, images)
    wrapped = nn.DataParallel(load_labeler(exported, device="cuda", fast=True), device_ids=devices)
    for _ in range(3):
        got = wrapped(images.cuda())
    probs = torch.softmax(got.double().cpu(), 1)
    assert float((probs - torch.softmax(reference, 1)).abs().max()) <= TOLERANCES[torch.bfloat16]["prob_t1"]


@pytest.mark.gpu
def test_torch_compile_on_cuda_gives_the_plain_labels(exported, images):
    reference = reference_logits(load_labeler(exported).net, images)
    compiled = torch.compile(load_labeler(exported, device="cuda", fast=True))
    for _ in range(3):
        got = compiled(images.cuda())
    probs = torch.softmax(got.double().cpu(), 1)
    assert float((probs - torch.softmax(reference, 1)).abs().max()) <= TOLERANCES[torch.bfloat16]["prob_t1"]
