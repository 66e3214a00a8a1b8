"""Labeler folders written by flashdd-zoo before the kinds/typed-config regrouping (artifact format 1,
metrics inside config.json) still load and compute bit-identical logits.

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


@pytest.mark.parametrize("kind", ["pruned", "ensemble"])
def test_format1_folder_loads_bit_identically(kind):
    labeler = load_labeler(FIXTURES / kind)
    assert labeler.config.format_version == 1 and labeler.config.kind == kind
    with torch.no_grad():
        assert torch.equal(labeler(EXPECTED["images"]), EXPECTED[f"{kind}.logits"])
    assert labeler.num_params == sum(p.numel() for p in labeler.net.parameters())
    assert labeler.storage_bytes == (FIXTURES / kind / "model.safetensors").stat().st_size


def test_format1_ensemble_schedule_still_applies():
    labeler = load_labeler(FIXTURES / "ensemble")
    with torch.no_grad():
        labeler.set_epoch(2)
        assert torch.equal(labeler(EXPECTED["images"]), EXPECTED["ensemble.logits_epoch2"])


@pytest.mark.parametrize("kind", ["pruned", "ensemble"])
def test_format1_onnx_backend_still_loads(kind):
    logits = load_labeler(FIXTURES / kind, backend="onnx")(EXPECTED["images"])
    assert (logits - EXPECTED[f"{kind}.logits"]).abs().max() < 1e-4
