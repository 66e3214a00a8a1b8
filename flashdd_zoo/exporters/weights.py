"""Weights as safetensors (never pickle), loaded back with strict key and shape checks."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import nn

from ..errors import ArtifactError, ArtifactMismatchError


def save_weights(model: nn.Module, path: Path, metadata: dict[str, object]) -> None:
    """Write the state dict; metadata values are stored as JSON strings in the header.

    The same weights always give the same bytes (so sha256 identifies them across processes):
    safetensors writes the metadata map in a per-process random order, which is sorted here.
    """
    save_tensors({k: v for k, v in model.state_dict().items()}, path, metadata)


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, object]) -> None:
    """Write named tensors as safetensors with JSON-string metadata; the same tensors give the same bytes."""
    state = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
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


@dataclass(frozen=True)
class WeightsHeader:
    """What a safetensors header says, read without touching the tensor data."""

    metadata: dict[str, str]  # the exporter's JSON strings (format, kind, architecture, ...)
    shapes: dict[str, tuple[int, ...]]  # every tensor's shape, in the file's order


def read_weights_header(path: Path) -> WeightsHeader:
    """The header of a safetensors file: metadata and tensor shapes, no tensor data read."""
    try:
        with safe_open(str(path), framework="pt") as f:
            shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
            return WeightsHeader(dict(f.metadata() or {}), shapes)
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ArtifactError(f"{path} is not a readable safetensors file: {e}") from e


def check_shapes(model: nn.Module, header: WeightsHeader, path: Path) -> None:
    """Every tensor of `model` (built from config.json, e.g. on the meta device) has the header's shape.

    Names the first tensor that differs, in the model's order, so a mismatch is refused before
    any weight is read or allocated.
    """
    problem = _first_difference({k: tuple(v.shape) for k, v in model.state_dict().items()}, header.shapes)
    if problem:
        raise ArtifactMismatchError(f"{path} does not match config.json: {problem}. The weights and config.json "
                                    "must come from the same export; export the labeler again.")


def _first_difference(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]) -> str | None:
    for name, shape in expected.items():
        if name not in found:
            return f"tensor {name!r} of shape {shape}, which config.json implies, is not in the weights file"
        if found[name] != shape:
            return f"tensor {name!r} is {found[name]} in the weights file but config.json implies {shape}"
    extra = [k for k in found if k not in expected]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        return f"the weights file holds tensor {extra[0]!r}{more} that config.json has no place for"
    return None


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load safetensors into `model`, refusing any missing, extra or mis-shaped tensor.

    A model built on the meta device takes the loaded tensors as they are (no second copy).
    """
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ArtifactError(f"{path} is not a readable safetensors file: {e}") from e
    expected = model.state_dict()
    problems = {
        "missing": sorted(set(expected) - set(state)),
        "unexpected": sorted(set(state) - set(expected)),
        "shape mismatches": [f"{k}: file {tuple(state[k].shape)} vs config {tuple(v.shape)}"
                             for k, v in expected.items() if k in state and state[k].shape != v.shape],
        "dtype mismatches": [f"{k}: file {state[k].dtype} vs config {v.dtype}"
                             for k, v in expected.items() if k in state and state[k].dtype != v.dtype],
    }
    found = "; ".join(f"{what} {names[:4]}" for what, names in problems.items() if names)
    if found:
        raise ArtifactMismatchError(f"{path} does not match the architecture in config.json: {found}. "
                                    "The weights and config.json must come from the same export.")
    model.load_state_dict(state, strict=True, assign=any(t.is_meta for t in expected.values()))
    return model

