"""Labeler folders written by flashdd-zoo before the kinds/typed-config regrouping (artifact format 1,
metrics inside config.json) still load: every stored tensor bit-identically, and the logits of the
networks that were exported to within float32 rounding (the reference logits were computed on another
CPU, whose kernels round differently: 1 ulp, about 3e-8, on this AMD EPYC against the Intel Xeon that
wrote them; a wrong weight, normalisation or layer moves them by 1e-3 or more).

tests/fixtures/format1/ was written once by make_format1.py at the commit that added it (the
exporter of that time); expected.safetensors holds the input images and the logits of the
networks that were exported. Never regenerate it with newer code: it stands for folders users
already have.
"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from flashdd_zoo import load_labeler

FIXTURES = Path(__file__).parent / "fixtures" / "format1"
EXPECTED = load_file(str(FIXTURES / "expected.safetensors"))


ROUNDING = 1e-6  # float32 logits of magnitude ~1 computed by two CPUs' kernels (measured: 3e-8 to 6e-8)


def assert_same_logits(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert (got - expected).abs().max() <= ROUNDING, (got - expected).abs().max()


@pytest.mark.parametrize("kind", ["pruned", "ensemble"])
def test_format1_folder_loads_bit_identically(kind):
    labeler = load_labeler(FIXTURES / kind)
    assert labeler.config.format_version == 1 and labeler.config.kind == kind
    stored, loaded = load_file(str(FIXTURES / kind / "model.safetensors")), labeler.net.state_dict()
    assert set(stored) == set(loaded)
    assert all(torch.equal(loaded[name], tensor) for name, tensor in stored.items())
    with torch.no_grad():
        assert_same_logits(labeler(EXPECTED["images"]), EXPECTED[f"{kind}.logits"])
    assert labeler.num_params == sum(p.numel() for p in labeler.net.parameters())
    assert labeler.storage_bytes == (FIXTURES / kind / "model.safetensors").stat().st_size


def test_format1_ensemble_schedule_still_applies():
    labeler = load_labeler(FIXTURES / "ensemble")
    with torch.no_grad():
        labeler.set_epoch(2)
        assert_same_logits(labeler(EXPECTED["images"]), EXPECTED["ensemble.logits_epoch2"])


@pytest.mark.parametrize("kind", ["pruned", "ensemble"])
def test_format1_onnx_backend_still_loads(kind):
    logits = load_labeler(FIXTURES / kind, backend="onnx")(EXPECTED["images"])
    assert (logits - EXPECTED[f"{kind}.logits"]).abs().max() < 1e-4
