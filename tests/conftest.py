"""Shared fixtures. Real data comes from ../shared/data; where it is absent tests skip with a
message, unless FLASHDD_REQUIRE_DATA=1 (set by .ci/run), which turns the skip into a failure."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from flashdd_zoo.data import default_data_root, load_split, resolve_dataset
from flashdd_zoo.exporters import export_labeler
from flashdd_zoo.models import build_model, resnet18_arch

REQUIRE_DATA = os.environ.get("FLASHDD_REQUIRE_DATA") == "1"


def shared_dataset(name: str):
    """Resolve a dataset from ../shared/data, or skip (fail under FLASHDD_REQUIRE_DATA=1)."""
    root = default_data_root()
    folder = {"cifar10": "cifar10", "imagenette128": "imagenette-128"}.get(name, name)
    if root is None or not (root / folder).is_dir():
        msg = f"../shared/data/{folder} is absent (set FLASHDD_DATA_ROOT to a folder holding it)"
        if REQUIRE_DATA:
            pytest.fail(f"FLASHDD_REQUIRE_DATA=1 but {msg}")
        pytest.skip(msg)
    return resolve_dataset(name)


@pytest.fixture(scope="session")
def cifar10():
    return shared_dataset("cifar10")


@pytest.fixture(scope="session")
def cifar_val(cifar10):
    """80 real CIFAR-10 test images, 8 per class."""
    return load_split(cifar10, "test", max_per_class=8, seed=1)


@pytest.fixture(scope="session")
def small_net():
    """A thin ResNet-18 (quarter width) whose BN statistics are not the identity."""
    torch.manual_seed(0)
    net = build_model(resnet18_arch(10, "cifar", scale=0.25))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="session")
def exported(tmp_path_factory, small_net, cifar10, cifar_val) -> Path:
    out = tmp_path_factory.mktemp("zoo") / "resnet18q-cifar10"
    return export_labeler(
        small_net, out, name="resnet18q-cifar10", kind="pruned",
        class_names=cifar10.class_names, resolution=32, mean=cifar10.spec.mean,
        std=cifar10.spec.std, sample_images=cifar_val.images,
        lineage={"dataset": "cifar10", "ipc": 10, "val_split": "test"},
        metrics={"teacher_params": 11_173_962, "tau_mean": 37.0, "tau_std": 0.5, "seeds": 3},
    )


def run_cli(*args, check: bool = True, env: dict | None = None):
    """Run `flashdd-zoo ARGS` in this process with click's CliRunner (no interpreter start-up).

    The result has returncode, stdout and stderr as subprocess.run's has; check=True fails the
    test on a non-zero exit, with the output and any traceback. Use a subprocess where the
    process itself is the point (console script, signals, environment read at import time).
    """
    import traceback

    from click.testing import CliRunner

    from flashdd_zoo.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    if check and result.exit_code != 0:
        trace = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
        pytest.fail(f"flashdd-zoo {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}\n{trace}")
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)
