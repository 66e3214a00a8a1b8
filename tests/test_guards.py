"""The checks that guard users, exercised through the real checker with a broken input."""

import copy

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from flashdd_zoo.data import normalize
from flashdd_zoo.errors import ExportError
from flashdd_zoo.exporters.onnx_export import check_parity, export_onnx


def _shift_initializer(src, dst, name_part: str, delta: float) -> None:
    """Copy an ONNX file with `delta` added to the first initializer whose name contains name_part."""
    model = onnx.load(str(src))
    for init in model.graph.initializer:
        if name_part in init.name:
            values = numpy_helper.to_array(init).copy()
            values += np.asarray(delta, dtype=values.dtype)
            init.CopyFrom(numpy_helper.from_array(values, init.name))
            break
    else:
        raise AssertionError(f"no initializer named like {name_part!r}")
    onnx.save(model, str(dst))


def test_onnx_parity_check_catches_a_perturbed_file(tmp_path, small_net, cifar_val):
    x = normalize(cifar_val.images[:16], (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    export_onnx(small_net, tmp_path / "model.onnx", x)
    assert check_parity(small_net, tmp_path / "model.onnx", x) < 1e-4
    # every logit off by 0.01: far beyond the 1e-4 + 1e-4 * max|logit| bound
    _shift_initializer(tmp_path / "model.onnx", tmp_path / "bias.onnx", "fc.bias", 0.01)
    with pytest.raises(ExportError, match=r"ONNX parity check failed: max \|onnxruntime - torch\| = 0\.01"):
        check_parity(small_net, tmp_path / "bias.onnx", x)
    # a drift well inside the bound passes, so the bound is what decides
    _shift_initializer(tmp_path / "model.onnx", tmp_path / "tiny.onnx", "fc.bias", 1e-6)
    assert 5e-7 < check_parity(small_net, tmp_path / "tiny.onnx", x) < 1e-4
    changed = copy.deepcopy(small_net)
    with torch.no_grad():
        changed.fc.bias.add_(0.01)  # the torch side changed instead: the same check fails
    with pytest.raises(ExportError):
        check_parity(changed, tmp_path / "model.onnx", x)


@pytest.mark.parametrize("dropped", ["model.onnx", "metrics.json", "model.safetensors"])
def test_a_manifest_missing_a_required_file_is_refused(exported, tmp_path, dropped):
    """The file is still on disk and every listed hash matches: only the manifest's list is short.
    Loading, `flashdd-zoo info` and the Hub pull's check all refuse it."""
    import json
    import shutil

    from conftest import run_cli

    from flashdd_zoo import load_labeler
    from flashdd_zoo.errors import ArtifactError
    from flashdd_zoo.exporters.manifest import verify_manifest

    folder = tmp_path / "short"
    shutil.copytree(exported, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"][dropped]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    message = f"manifest.json does not list required file {dropped}"
    with pytest.raises(ArtifactError, match=message):
        load_labeler(folder)
    res = run_cli("info", folder, check=False)
    assert res.returncode == 1 and message in res.stderr
    verify_manifest(folder)  # the listed files themselves are intact: the list is what is refused
    with pytest.raises(ArtifactError, match=message):
        verify_manifest(folder, required=("config.json", "model.safetensors", "model.onnx", "README.md", "metrics.json"))
