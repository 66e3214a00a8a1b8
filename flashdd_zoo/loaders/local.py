"""Load a labeler from a local folder: version check, manifest check, strict rebuild."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ArtifactError
from ..exporters.manifest import verify_manifest
from ..exporters.onnx_export import onnx_session
from ..exporters.weights import load_weights
from ..labeler_config import ONNX, REQUIRED_FILES, WEIGHTS, read_config
from ..models import build_model
from .labeler import Labeler

BACKENDS = ("torch", "onnx")


def load_local_labeler(
    folder: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    backend: str = "torch",
    resize: bool = False,
) -> Labeler:
    folder = Path(folder)
    if backend not in BACKENDS:
        raise ArtifactError(f"unknown backend {backend!r}; choose one of {BACKENDS}.")
    if not folder.is_dir():
        raise ArtifactError(f"no labeler folder at {folder}.")
    config = read_config(folder)
    verify_manifest(folder, required=REQUIRED_FILES)
    if backend == "onnx":
        return Labeler(config, folder, session=onnx_session(folder / ONNX, _ort_providers(device)), resize=resize)
    net = load_weights(build_model(config["architecture"]), folder / WEIGHTS)
    net = net.eval().to(device=device, dtype=dtype)
    return Labeler(config, folder, net=net, resize=resize)


def _ort_providers(device: str | torch.device) -> list[str]:
    """onnxruntime-gpu's CUDA provider when asked for a GPU and installed, else the CPU."""
    import onnxruntime as ort

    wanted = str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers()
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if wanted else ["CPUExecutionProvider"]
