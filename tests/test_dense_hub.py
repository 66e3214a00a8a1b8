"""Dense labels travel through the Hub as labelers do: one commit, a tag to pin, sha256 on pull."""

from __future__ import annotations

import pytest
import torch
from conftest import run_cli

from flashdd_zoo import load_dense_labels
from flashdd_zoo.data.images import ImageSet
from flashdd_zoo.errors import HubError
from flashdd_zoo.exporters.publish import publish_labeler
from flashdd_zoo.models import build_model, convnet_arch
from flashdd_zoo.zoo.checkpoints import save_checkpoint
from flashdd_zoo.zoo.dense import make_dense_labels
from flashdd_zoo.zoo.distilled import write_distilled

pytest.register_assert_rewrite("hub_fixtures")
from hub_fixtures import ORG  # noqa: E402

pytest_plugins = ["hub_fixtures"]
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")


def _dense(root, cifar10, cifar_val, seed: int):
    d_s = ImageSet(cifar_val.images[::4], cifar_val.labels[::4], list(cifar10.class_names))
    write_distilled(root / "ds", d_s, {"dataset": "cifar10"})
    torch.manual_seed(seed)
    save_checkpoint(root / f"early{seed}", build_model(convnet_arch(10, 32, width=8)), {"epoch": 2})
    return make_dense_labels(root / "ds", cifar10, root / f"early{seed}", root / f"labels{seed}", 5, 0.625,
                             device="cpu")


def test_dense_labels_publish_pull_and_pin(hub_env, tmp_path, cifar10, cifar_val):
    first, second = _dense(tmp_path, cifar10, cifar_val, 0), _dense(tmp_path, cifar10, cifar_val, 1)
    v1 = publish_labeler(first, f"{ORG}/dense", tag="v1")
    publish_labeler(second, f"{ORG}/dense")  # main moves on
    pinned = load_dense_labels(f"{ORG}/dense", revision="v1")
    latest = load_dense_labels(f"{ORG}/dense")
    assert torch.equal(pinned.labels, load_dense_labels(first).labels)
    assert torch.equal(latest.labels, load_dense_labels(second).labels)
    assert v1.commit in str(pinned.folder) and pinned.boxes == latest.boxes
    pinned.check_distilled(tmp_path / "ds", cifar10)
    pulled = run_cli("pull", f"{ORG}/dense", "--revision", "v1").stdout
    assert "(dense)" in pulled and "manifest sha256 verified" in pulled
    with pytest.raises(HubError, match="v2"):
        load_dense_labels(f"{ORG}/dense", revision="v2")
