"""Numbers users read, checked against oracles that do not call the code under test (issue 19).

GFLOPs are worked out by hand from the layer shapes (and counted from the layers' shapes by
forward hooks, not by torch's FLOP counter), `resize=True` against the filter an antialiased
bilinear 2x reduction is, the default temperature against softmax(logits / 20) written out, the
bench's median against a scripted clock, the students' losses against their formulas, and
"students learn from the labeler" by what the students predict.
"""

from __future__ import annotations

import importlib
import math
from types import SimpleNamespace

import pytest
import torch
import yaml
from torch import nn

from flashdd_zoo import load_labeler
from flashdd_zoo.cards import gflops_per_image
from flashdd_zoo.data import load_split, normalize
from flashdd_zoo.data.images import ImageSet
from flashdd_zoo.exporters import export_labeler
from flashdd_zoo.models import build_model, resnet18_arch
from flashdd_zoo.zoo.evaluate import EvalProtocol, _loss, train_student

measure_module = importlib.import_module("flashdd_zoo.bench.measure")  # the package re-exports measure()


# -- GFLOPs ------------------------------------------------------------------------------------------
def _conv_macs(hw: int, c_out: int, c_in: int, k: int) -> int:
    return hw * hw * c_out * c_in * k * k


# ResNet-18 at 32x32, multiply-adds layer by layer (1 multiply-add = 2 FLOPs on the card).
# CIFAR stem: 3x3/1 conv, no pool; stages at 32, 16, 8, 4 px.
CIFAR_STEM_MACS = (
    _conv_macs(32, 64, 3, 3)  # stem
    + 4 * _conv_macs(32, 64, 64, 3)  # layer1: two blocks of two 3x3 convs
    + sum(_conv_macs(hw, c, c // 2, 3) + 3 * _conv_macs(hw, c, c, 3) + _conv_macs(hw, c, c // 2, 1)
          for hw, c in ((16, 128), (8, 256), (4, 512)))  # layers 2-4: strided conv, 3 convs, 1x1 shortcut
    + 512 * 10  # fc
)
# ImageNet stem at 32 px: 7x7/2 conv (16 px) and 3x3/2 max-pool (8 px), stages at 8, 4, 2, 1 px
IMAGENET_STEM_MACS = (
    _conv_macs(16, 64, 3, 7)
    + 4 * _conv_macs(8, 64, 64, 3)
    + sum(_conv_macs(hw, c, c // 2, 3) + 3 * _conv_macs(hw, c, c, 3) + _conv_macs(hw, c, c // 2, 1)
          for hw, c in ((4, 128), (2, 256), (1, 512)))
    + 512 * 10
)


def test_resnet18_gflops_match_the_count_by_hand():
    # the figure: a full CIFAR-stem ResNet-18 at 32 px is 0.556 G multiply-adds
    assert CIFAR_STEM_MACS == 555_422_720 and IMAGENET_STEM_MACS == 37_016_576
    cifar = build_model(resnet18_arch(10, "cifar"))
    assert gflops_per_image(cifar, 32) == pytest.approx(2 * CIFAR_STEM_MACS / 1e9, rel=1e-12)  # 1.1108
    imagenet = build_model(resnet18_arch(10, "imagenet"))
    assert gflops_per_image(imagenet, 32) == pytest.approx(2 * IMAGENET_STEM_MACS / 1e9, rel=1e-12)  # 0.0740
    assert gflops_per_image(cifar, 64) == pytest.approx(4 * 2 * (CIFAR_STEM_MACS - 5120) / 1e9 + 2 * 5120 / 1e9)
    cifar.train()
    gflops_per_image(cifar, 32)
    assert cifar.training  # measuring leaves the module's mode as it was


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_gflops_of_a_network_in_another_precision_are_the_count_by_hand(dtype):
    cifar = build_model(resnet18_arch(10, "cifar")).to(dtype)  # measured with an input of its own dtype
    assert gflops_per_image(cifar, 32) == pytest.approx(2 * CIFAR_STEM_MACS / 1e9, rel=1e-12)


def test_gflops_of_a_network_on_the_meta_device_are_the_count_by_hand():
    """Kinds build networks on the meta device before any weight is read; measuring one needs no memory."""
    with torch.device("meta"):
        cifar = build_model(resnet18_arch(10, "cifar"))
    assert next(cifar.parameters()).is_meta
    assert gflops_per_image(cifar, 32) == pytest.approx(2 * CIFAR_STEM_MACS / 1e9, rel=1e-12)


def _macs_by_hooks(net: nn.Module, resolution: int) -> int:
    """Multiply-adds of every conv and linear layer, from the shapes a forward pass gives them."""
    total, handles = [0], []

    def conv(m, _inp, out):
        total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear(m, _inp, out):
        total[0] += out.numel() * m.in_features

    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear))
    with torch.no_grad():
        net(torch.zeros(1, 3, resolution, resolution))
    for h in handles:
        h.remove()
    return total[0]


def test_card_gflops_agree_with_a_count_from_layer_shapes(exported):
    """The exported quarter-width net's card number against a count that never touches
    torch.utils.flop_counter; the full net's hook count equals the hand count above."""
    assert _macs_by_hooks(build_model(resnet18_arch(10, "cifar")), 32) == CIFAR_STEM_MACS
    labeler = load_labeler(exported)
    expected = 2 * _macs_by_hooks(labeler.net, 32) / 1e9
    assert expected > 0.05  # a quarter-width net is about 1/16 of 1.11 GFLOPs
    assert labeler.metrics["gflops"] == pytest.approx(expected, rel=1e-9)
    card = (exported / "README.md").read_text()
    assert yaml.safe_load(card.split("---\n")[1])["flashdd"]["gflops"] == pytest.approx(expected, rel=1e-9)
    assert f"| GFLOPs per image at 32x32 | {expected:.4f} |" in card


# -- resize=True -------------------------------------------------------------------------------------
def _reduction_by_two(n: int) -> torch.Tensor:
    """The n x 2n matrix an antialiased bilinear 2x reduction applies to a 2x nearest upsampling,
    written out: output pixel i = 1/8 of i-1, 3/4 of i, 1/8 of i+1 (triangle filter of width 2
    output pixels), the weights renormalised where a neighbour lies outside the image."""
    w = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j, weight in ((i - 1, 1 / 8), (i, 3 / 4), (i + 1, 1 / 8)):
            if 0 <= j < n:
                w[i, j] = weight
        w[i] /= w[i].sum()
    return w


def test_resize_true_resizes_the_image_as_stated(exported, cifar10, cifar_val):
    x = normalize(cifar_val.images[:6], cifar10.spec.mean, cifar10.spec.std)
    big = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # 64x64: each pixel 2x2
    w = _reduction_by_two(32)
    expected_input = torch.einsum("ij,ncjk,lk->ncil", w, x.double(), w).float()
    plain, resizing = load_labeler(exported), load_labeler(exported, resize=True)
    with torch.no_grad():
        got = resizing(big)
        assert (got - plain(expected_input)).abs().max() < 1e-4
        # not the original image (what a plain 2x subsampling gives back): the filter is what was checked
        assert (got - plain(x)).abs().max() > 1e-3
        # images already at the labeler's size pass untouched
        assert torch.equal(resizing(x), plain(x))
        # a uniform image stays uniform at any size
        flat = torch.full((2, 3, 40, 56), 0.3)
        assert (resizing(flat) - plain(torch.full((2, 3, 32, 32), 0.3))).abs().max() < 1e-5


# -- the default temperature -------------------------------------------------------------------------
def _softmax_by_hand(logits: torch.Tensor, t: float) -> torch.Tensor:
    z = logits.double() / t
    e = torch.exp(z - z.max(dim=1, keepdim=True).values)
    return (e / e.sum(dim=1, keepdim=True)).float()


def test_default_temperature_is_rdeds_20_unless_exported_otherwise(exported, tmp_path, small_net, cifar10, cifar_val):
    labeler = load_labeler(exported)
    config = (exported / "config.json").read_text()
    assert '"temperature": 20.0' in config and labeler.default_temperature == 20.0
    x = normalize(cifar_val.images[:5], cifar10.spec.mean, cifar10.spec.std)
    with torch.no_grad():
        logits = labeler(x)
        soft = labeler.soft_labels(x)
    assert (soft - _softmax_by_hand(logits, 20.0)).abs().max() < 1e-6
    assert (soft - _softmax_by_hand(logits, 1.0)).abs().max() > 1e-3
    assert "default T = 20)" in (exported / "README.md").read_text()

    four = export_labeler(small_net, tmp_path / "t4", name="t4", kind="pruned", class_names=cifar10.class_names,
                          resolution=32, mean=cifar10.spec.mean, std=cifar10.spec.std,
                          sample_images=cifar_val.images[:8], temperature=4.0)
    with torch.no_grad():
        assert (load_labeler(four).soft_labels(x) - _softmax_by_hand(logits, 4.0)).abs().max() < 1e-6
    assert "default T = 4)" in (four / "README.md").read_text()


# -- the bench's median ------------------------------------------------------------------------------
def test_measure_reports_the_median_of_its_repetitions(monkeypatch):
    """A scripted clock: each call of the target advances it by the next duration."""
    clock = [0.0]
    durations = []

    def target(_x):
        clock[0] += durations.pop(0)

    monkeypatch.setattr(measure_module, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    inputs = [torch.ones(4, 3, 2, 2)] * 2
    # one batch per repetition: 2 warm-up calls, 1 probe, then repetitions of 9, 1, 3, 2, 4 ms
    durations[:] = [0.5, 0.5, 0.001, 0.009, 0.001, 0.003, 0.002, 0.004]
    m = measure_module.measure(lambda: target, inputs, torch.device("cpu"), warmup=2, repeats=5, rep_seconds=0)
    assert not durations and m.iters_per_repeat == 1 and m.repeats == 5
    assert m.latency_ms == pytest.approx(3.0)  # the mean would be 3.8, the max 9
    assert (m.latency_ms_min, m.latency_ms_max) == (pytest.approx(1.0), pytest.approx(9.0))
    assert m.images_per_second == pytest.approx(4 / 0.003)
    # a 2 ms probe and 4 ms repetitions: two batches per repetition, time per batch is their mean
    durations[:] = [0.5, 0.002, 0.002, 0.004, 0.001, 0.001, 0.010, 0.010]
    m = measure_module.measure(lambda: target, inputs, torch.device("cpu"), warmup=1, repeats=3, rep_seconds=0.004)
    assert not durations and m.iters_per_repeat == 2
    assert m.latency_ms == pytest.approx(3.0) and m.latency_ms_max == pytest.approx(10.0)


# -- the students' losses ----------------------------------------------------------------------------
def _ce_by_hand(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logp = logits.double() - torch.logsumexp(logits.double(), dim=1, keepdim=True)
    return -logp[torch.arange(len(labels)), labels].mean()


def test_student_losses_follow_their_formulas():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(6, 10, generator=g) * 3, torch.randn(6, 10, generator=g) * 3
    labels, perm, lam = torch.tensor([0, 1, 2, 3, 4, 5]), torch.tensor([5, 4, 3, 2, 1, 0]), 0.7
    ce = lam * _ce_by_hand(student, labels) + (1 - lam) * _ce_by_hand(student, labels[perm])
    t = 4.0
    p, q = _softmax_by_hand(teacher, t).double(), _softmax_by_hand(student, t).double()
    kl = (p * (p.log() - q.log())).sum(1).mean()  # KL(p_teacher || q_student) at T, batch mean
    mse_ce = ((q - p) ** 2).mean() + 0.025 * ce
    got = {loss: float(_loss(student, teacher, labels, perm, lam, EvalProtocol(loss=loss, temperature=t)))
           for loss in ("kl", "mse_ce", "ce")}
    assert got["kl"] == pytest.approx(float(kl), rel=1e-5)
    assert got["mse_ce"] == pytest.approx(float(mse_ce), rel=1e-5)
    assert got["ce"] == pytest.approx(float(ce), rel=1e-5)
    assert len({round(v, 6) for v in got.values()}) == 3


def _always(c: int):
    """A labeler that puts everything in class c (logit 200 there, 0 elsewhere)."""
    def label_fn(x):
        out = torch.zeros(len(x), 10)
        out[:, c] = 200.0
        return out
    return label_fn


@pytest.fixture(scope="module")
def student_setup(cifar10, cifar_val):
    return load_split(cifar10, "train", max_per_class=2, seed=0), cifar_val


@pytest.mark.parametrize("loss, temperature, least", [("kl", 20.0, 90.0), ("mse_ce", 1.0, 75.0)])
def test_students_learn_what_their_labeler_says(student_setup, cifar10, loss, temperature, least):
    """Same seed, same D_S, two labelers that disagree: each student predicts its own labeler's
    class on real test images. Students trained on D_S's hard labels (ignoring the labeler) would
    predict every class about equally, so at most a few percent of either."""
    train, val = student_setup
    protocol = EvalProtocol(epochs=3, batch_size=10, loss=loss, temperature=temperature)
    runs = {}
    for c in (3, 7):
        said_c = ImageSet(val.images, torch.full((len(val),), c), val.class_names)  # top-1 = % predicted c
        runs[c] = train_student(train, _always(c), cifar10, protocol, seed=0, val=said_c, device="cpu")
        assert runs[c].top1 >= least, (loss, c, runs[c].top1)
    assert runs[3].losses != runs[7].losses
    assert all(math.isfinite(v) and v > 0 for r in runs.values() for v in r.losses)


def test_kl_and_mse_ce_students_differ_from_each_other_and_from_hard_labels(student_setup, cifar10, small_net):
    """The same labeler and seed under the three losses: three different students."""
    train, val = student_setup
    runs = {loss: train_student(train, small_net, cifar10, EvalProtocol(epochs=2, batch_size=10, loss=loss),
                                seed=0, val=val, device="cpu") for loss in ("kl", "mse_ce", "ce")}
    curves = [tuple(r.losses) for r in runs.values()]
    assert len(set(curves)) == 3
    assert runs["ce"].label_seconds == 0 and runs["kl"].label_seconds > 0 and runs["mse_ce"].label_seconds > 0
    # the hard-label loss is a cross-entropy over 10 classes: it starts near ln 10
    assert abs(runs["ce"].losses[0] - math.log(10)) < 1.0
    # KL at T=20 between two near-uniform distributions starts far below the cross-entropy
    assert runs["kl"].losses[0] < 0.5 * runs["ce"].losses[0]
