"""Fixtures for the Hub tests: a loopback Hub server, a clean HF environment, published labelers.

huggingface_hub reads HF_HOME, HF_ENDPOINT, HF_HUB_DISABLE_XET and HF_HUB_OFFLINE once, when it is
imported (already done by the time fixtures run), so the in-process values are set on
huggingface_hub.constants as well as in os.environ (which subprocesses inherit).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hub_server import HubServer
from huggingface_hub import constants
from safetensors.torch import load_file, save_file

from flashdd_zoo.data import normalize
from flashdd_zoo.exporters import export_labeler
from flashdd_zoo.exporters.publish import publish_labeler
from flashdd_zoo.loaders import load_local_labeler

TOKEN = "hf_testtoken_4f1c9d2b7e"  # what the test Hub accepts; must never show up in output or files
ORG = "flashdd-test"

# loads labelers by repo id and writes their soft labels; run in a fresh interpreter
PULL_SCRIPT = r"""
import json, os, sys, time
from pathlib import Path
from safetensors.torch import load_file, save_file
from flashdd_zoo import load_labeler
x = load_file(sys.argv[1])["x"]
if os.environ.get("PULL_GATE"):  # imports done: report ready, then start together with the others
    gate = Path(os.environ["PULL_GATE"])
    (gate / f"ready-{os.getpid()}").touch()
    while not (gate / "go").exists():
        time.sleep(0.01)
out = {}
for i, spec in enumerate(json.loads(sys.argv[3])):
    labeler = load_labeler(spec.pop("repo"), **spec)
    out[f"y{i}"] = labeler.soft_labels(x).contiguous()
    print(labeler.folder)
save_file(out, sys.argv[2])
"""


@pytest.fixture(scope="module")
def hub():
    with HubServer(tokens={TOKEN}) as server:
        yield server


@pytest.fixture(scope="module")
def hub_env(hub, tmp_path_factory):
    """A logged-in user (HF_TOKEN) talking to the test Hub, with an empty HF home, no Xet."""
    home = tmp_path_factory.mktemp("hf-home")
    env = {"HF_HOME": str(home), "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    consts = {"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"), "HF_TOKEN_PATH": str(home / "token"),
              "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"), "ENDPOINT": hub.url,
              "HUGGINGFACE_CO_URL_TEMPLATE": hub.url + "/{repo_id}/resolve/{revision}/{filename}",
              "HF_HUB_DISABLE_XET": True, "HF_HUB_OFFLINE": False}
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_ETAG_TIMEOUT"):
            mp.delenv(var, raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        for k, v in consts.items():
            mp.setattr(constants, k, v)
        yield home


@pytest.fixture
def fresh_cache(tmp_path) -> Path:
    """An empty HF home: `fresh_cache / "hub"` is its cache."""
    home = tmp_path / "hf-fresh"
    home.mkdir()
    return home


@pytest.fixture(scope="module")
def images(cifar10, cifar_val) -> torch.Tensor:
    """80 real CIFAR-10 test images, normalised as a DD loop feeds them to a teacher."""
    return normalize(cifar_val.images, cifar10.spec.mean, cifar10.spec.std).contiguous()


@pytest.fixture(scope="module")
def changed(tmp_path_factory, small_net, cifar10, cifar_val) -> Path:
    """A second real labeler: other weights, and a plot in a subfolder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    net = copy.deepcopy(small_net)
    with torch.no_grad():
        net.fc.weight.mul_(-1.5)
    out = tmp_path_factory.mktemp("zoo2")
    png = out / "curve.png"
    plt.imsave(png, torch.linspace(0, 1, 64).reshape(8, 8).numpy())
    return export_labeler(
        net, out / "resnet18q-cifar10-v2", name="resnet18q-cifar10-v2", kind="pruned",
        class_names=cifar10.class_names, resolution=32, mean=cifar10.spec.mean, std=cifar10.spec.std,
        sample_images=cifar_val.images, lineage={"dataset": "cifar10", "ipc": 50, "val_split": "test"},
        metrics={"student_top1_mean": 41.25, "tau_mean": 37.0}, extra_files={"plots/curve.png": png},
    )


@pytest.fixture(scope="module")
def published(hub_env, exported, changed):
    """ORG/lab: tag v1 = `exported`; main moved on to `changed`."""
    first = publish_labeler(exported, f"{ORG}/lab", tag="v1")
    second = publish_labeler(changed, f"{ORG}/lab")
    return first, second


def soft(folder: Path, images: torch.Tensor) -> torch.Tensor:
    return load_local_labeler(folder).soft_labels(images)


def pull_in_subprocess(tmp: Path, images: torch.Tensor, specs: list[dict], env: dict, wait=True):
    """Run PULL_SCRIPT in a fresh interpreter; returns the Popen (wait=False) or (stdout, outputs)."""
    tmp.mkdir(parents=True, exist_ok=True)
    x_path, y_path = tmp / "x.safetensors", tmp / "y.safetensors"
    save_file({"x": images}, x_path)
    proc = subprocess.Popen([sys.executable, "-c", PULL_SCRIPT, str(x_path), str(y_path), json.dumps(specs)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc if not wait else finish(proc, y_path)


def finish(proc: subprocess.Popen, y_path: Path):
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    y = load_file(y_path)
    return out, [y[f"y{i}"] for i in range(len(y))]


def subprocess_env(home: Path, **extra: str) -> dict:
    env = {**os.environ, "HF_HOME": str(home), **extra}
    env.pop("HF_HUB_CACHE", None)
    return env
