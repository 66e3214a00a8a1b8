"""The config.json of a labeler artifact: pure JSON, versioned, read before anything else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import ArtifactError

FORMAT = "flashdd-zoo/labeler"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
ONNX = "model.onnx"
CARD = "README.md"
REQUIRED_FILES = (CONFIG, WEIGHTS, ONNX, CARD)
KINDS = ("teacher", "pruned", "ensemble", "projector", "dense")

# RDED trains students with CutMix and soft labels at temperature 20
DEFAULT_TEMPERATURE = 20.0


def make_config(
    *,
    name: str,
    kind: str,
    architecture: dict[str, Any],
    class_names: list[str],
    resolution: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    temperature: float = DEFAULT_TEMPERATURE,
    lineage: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    plots: list[str] | None = None,
) -> dict[str, Any]:
    from . import __version__

    if kind not in KINDS:
        raise ArtifactError(f"unknown labeler kind {kind!r}; expected one of {KINDS}.")
    if (kind == "ensemble") != (architecture.get("name") == "ensemble"):
        raise ArtifactError(f"kind {kind!r} does not fit a {architecture.get('name')!r} network: "
                            "ensembles (and only they) have kind 'ensemble'.")
    if len(class_names) != architecture["num_classes"]:
        raise ArtifactError(
            f"{len(class_names)} class names for a {architecture['num_classes']}-class network."
        )
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "flashdd_zoo_version": __version__,
        "name": name,
        "kind": kind,
        "architecture": architecture,
        "num_classes": architecture["num_classes"],
        "class_names": list(class_names),
        "input": {
            "layout": "NCHW",
            "channels": 3,
            "size": [resolution, resolution],
            "dtype": "float32",
            "normalized": True,
            "mean": list(mean),
            "std": list(std),
            "note": "images in [0,1], then (x - mean) / std, as DD training loops feed teachers",
        },
        "output": {"type": "logits", "soft_labels": "softmax(logits / temperature)"},
        "temperature": float(temperature),
        "lineage": dict(lineage or {}),
        "metrics": dict(metrics or {}),
        "plots": list(plots or []),
    }


def write_config(folder: Path, config: dict[str, Any]) -> None:
    (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def read_config(folder: Path) -> dict[str, Any]:
    """Read and version-check config.json of a labeler folder."""
    path = folder / CONFIG
    if not path.is_file():
        raise ArtifactError(
            f"{path} is missing: {folder} is not a flashdd-zoo labeler folder "
            f"(expected {', '.join(REQUIRED_FILES)})."
        )
    try:
        config = json.loads(path.read_text())
    except ValueError as e:
        raise ArtifactError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not a flashdd-zoo labeler config (format != {FORMAT!r}).")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{folder} was written in artifact format version {version!r} (by flashdd-zoo "
            f"{config.get('flashdd_zoo_version', '?')}); this flashdd-zoo reads up to version "
            f"{FORMAT_VERSION}. Upgrade: pip install -U flashdd-zoo."
        )
    return config
