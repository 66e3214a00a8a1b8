"""Weights as safetensors (never pickle), loaded back with strict key and shape checks."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import nn

from ..errors import ArtifactError


def save_weights(model: nn.Module, path: Path, metadata: dict[str, object]) -> None:
    """Write the state dict; metadata values are stored as JSON strings in the header.

    The same weights always give the same bytes (so sha256 identifies them across processes):
    safetensors writes the metadata map in a per-process random order, which is sorted here.
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    Path(path).write_bytes(_canonical_header(save(state, metadata=header)))


def _canonical_header(blob: bytes) -> bytes:
    """Rewrite the header with its metadata keys sorted; the length (and so every offset) is unchanged."""
    size = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + size])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > size:
        raise ArtifactError("internal: the canonical safetensors header came out longer than the original.")
    return blob[:8] + text.ljust(size) + blob[8 + size :]


def read_weights_header(path: Path) -> dict[str, str]:
    """The metadata the exporter wrote into the safetensors header (JSON strings), without reading tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ArtifactError(f"{path} is not a readable safetensors file: {e}") from e


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load safetensors into `model`, refusing any missing, extra or mis-shaped tensor.

    A model built on the meta device takes the loaded tensors as they are (no second copy).
    """
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ArtifactError(f"{path} is not a readable safetensors file: {e}") from e
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs config {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or extra or shapes:
        raise ArtifactError(
            f"{path} does not match the architecture in config.json: "
            f"missing {missing[:4]}, unexpected {extra[:4]}, shape mismatches {shapes[:4]}. "
            "The weights and config.json must come from the same export."
        )
    model.load_state_dict(state, strict=True, assign=any(t.is_meta for t in expected.values()))
    return model

