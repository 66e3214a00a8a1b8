"""The caller's normalisation (load_labeler(..., input_normalization=...)) and the first-batch check.

Real CIFAR-10 test images, normalised the ways DD codebases do it; the oracle is always the plain
labeler fed images in its own normalisation.
"""

import warnings

import pytest
import torch

from flashdd_zoo import load_labeler
from flashdd_zoo.bench.tolerance import agreement, reference_logits
from flashdd_zoo.data import normalize
from flashdd_zoo.data.registry import IMAGENET_MEAN, IMAGENET_STD
from flashdd_zoo.errors import ArgumentError, InputStatisticsWarning
from flashdd_zoo.runtime.fast import TOLERANCES, RawInputConv

FP32 = TOLERANCES[torch.float32]
CUSTOM = ((0.5, 0.4, 0.3), (0.3, 0.25, 0.2))


@pytest.fixture(scope="module")
def cifar_images(cifar10, cifar_val):
    """The same 80 real CIFAR-10 test images as each caller feeds them."""
    raw = cifar_val.images.float() / 255
    return {
        "own": normalize(cifar_val.images, cifar10.spec.mean, cifar10.spec.std),
        "imagenet": normalize(cifar_val.images, IMAGENET_MEAN, IMAGENET_STD),
        "raw": raw,
        "custom": normalize(cifar_val.images, *CUSTOM),
    }


@pytest.fixture(scope="module")
def reference(exported, cifar_images):
    """float64 logits of the plain labeler on images in its own (CIFAR-10) normalisation."""
    return reference_logits(load_labeler(exported).net, cifar_images["own"])


def _close(labeler, images, reference):
    stats = agreement(labeler, images, reference)
    assert stats["rel_logit_error"] <= FP32["rel_logit"], stats
    assert stats["max_abs_diff_prob"] <= FP32["prob_t1"], stats
    assert stats["top1_agreement"] == 1.0


@pytest.mark.parametrize("fast", [False, True], ids=["plain", "fast-cpu"])
@pytest.mark.parametrize("feed", ["imagenet", "raw", "custom"])
def test_callers_normalisation_gives_the_labelers_own_labels(exported, cifar_images, reference, feed, fast):
    spec = CUSTOM if feed == "custom" else feed
    labeler = load_labeler(exported, input_normalization=spec, fast=fast)
    assert isinstance(labeler.net.conv1, RawInputConv)  # folded into the first convolution
    _close(labeler, cifar_images[feed], reference)


def test_without_the_option_imagenet_statistics_change_the_labels(exported, cifar_images, reference):
    """What RDED's loop does today: the error the option removes is far above float rounding."""
    stats = agreement(load_labeler(exported), cifar_images["imagenet"], reference)
    assert stats["rel_logit_error"] > 100 * FP32["rel_logit"]


def test_onnx_backend_converts_the_callers_images(exported, cifar_images, reference):
    labeler = load_labeler(exported, backend="onnx", input_normalization="imagenet")
    stats = agreement(labeler, cifar_images["imagenet"], reference)
    assert stats["rel_logit_error"] <= 1e-4 and stats["top1_agreement"] == 1.0


def test_fuse_normalization_is_input_normalization_raw(exported, cifar_images):
    fused = load_labeler(exported, fuse_normalization=True, fold_bn=True)
    raw = load_labeler(exported, input_normalization="raw", fold_bn=True)
    assert fused.options == raw.options and not raw.expects_normalized
    assert torch.equal(fused(cifar_images["raw"]), raw(cifar_images["raw"]))
    with pytest.raises(ArgumentError, match="pass only input_normalization"):
        load_labeler(exported, fuse_normalization=True, input_normalization="imagenet")


def test_the_labelers_own_normalisation_folds_nothing(exported, cifar_images):
    own = load_labeler(exported, input_normalization="cifar10")
    assert not isinstance(own.net.conv1, RawInputConv)
    assert torch.equal(own(cifar_images["own"]), load_labeler(exported)(cifar_images["own"]))


def test_unknown_name_lists_the_known_ones(exported):
    with pytest.raises(ArgumentError, match=r"unknown input_normalization 'imagenet21k'.*cifar10.*imagenet.*raw"):
        load_labeler(exported, input_normalization="imagenet21k")


def test_mean_std_of_the_wrong_length_says_how_many_channels(exported):
    with pytest.raises(ArgumentError, match="takes 3-channel images: give 3 of each"):
        load_labeler(exported, input_normalization=((0.5,), (0.25,)))
    with pytest.raises(ArgumentError, match="std must be positive"):
        load_labeler(exported, input_normalization=((0.5,) * 3, (0.25, 0.0, 0.25)))


# -- the first-batch check -------------------------------------------------------------------------


def _warnings_of(labeler, *batches):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for b in batches:
            labeler(b)
    return [w for w in caught if issubclass(w.category, InputStatisticsWarning)]


def test_raw_images_to_a_normalised_labeler_warn_once(exported, cifar_images):
    labeler = load_labeler(exported)
    raw = cifar_images["raw"]
    caught = _warnings_of(labeler, raw[:16], raw[16:48], raw[48:])
    assert len(caught) == 1
    assert "input_normalization='raw'" in str(caught[0].message)


@pytest.mark.parametrize("feed", ["own", "imagenet", "raw"])
def test_correctly_declared_images_never_warn(exported, cifar_images, feed):
    labeler = load_labeler(exported, input_normalization=None if feed == "own" else feed)
    batches = [cifar_images[feed][i : i + 8] for i in range(0, 80, 8)]  # the smallest judged batch, 10 of them
    for b in batches:
        assert _warnings_of(labeler, b) == []
        labeler._input_check["pending"] = True  # judge every batch, not just the first


def test_normalised_images_to_a_raw_input_labeler_warn(exported, cifar_images):
    caught = _warnings_of(load_labeler(exported, input_normalization="raw"), cifar_images["own"])
    assert len(caught) == 1 and "without input_normalization" in str(caught[0].message)


def test_small_first_batches_wait_for_one_big_enough(exported, cifar_images):
    labeler = load_labeler(exported)
    raw = cifar_images["raw"]
    assert _warnings_of(labeler, raw[:2], raw[2:4]) == []
    assert len(_warnings_of(labeler, raw[4:20])) == 1


def test_the_statistics_warning_is_attributed_to_the_callers_line(exported, cifar_images):
    for call in (lambda labeler, x: labeler(x), lambda labeler, x: labeler.soft_labels(x)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call(load_labeler(exported), cifar_images["raw"])
        assert [w.filename for w in caught if issubclass(w.category, InputStatisticsWarning)] == [__file__]


def test_card_states_the_labelers_own_normalisation(exported, cifar10):
    card = (exported / "README.md").read_text()
    line = next(line for line in card.splitlines() if line.startswith("**Input normalisation"))
    assert str(list(cifar10.spec.mean)) in line and str(list(cifar10.spec.std)) in line
    assert "input_normalization='cifar10'" in line
