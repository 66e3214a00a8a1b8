"""Weights as safetensors (never pickle), loaded back with strict key and shape checks."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import ArtifactError


def save_weights(model: nn.Module, path: Path, metadata: dict[str, object]) -> None:
    """Write the state dict; metadata values are stored as JSON strings in the header."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    save_file(state, str(path), metadata=header)


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load safetensors into `model`, refusing any missing, extra or mis-shaped tensor."""
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
    model.load_state_dict(state, strict=True)
    return model

