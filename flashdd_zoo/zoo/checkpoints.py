"""Training checkpoints without pickle: weights and optimizer tensors in safetensors, the rest JSON.

A checkpoint is a folder `<run>/epoch-XXXX/` holding checkpoint.json, model.safetensors and,
for resuming, train_state.safetensors. Folders are written to a temporary name and renamed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import atomic_dir
from ..errors import ArtifactError
from ..exporters.weights import load_weights, save_weights
from ..models import build_model

CHECKPOINT_JSON = "checkpoint.json"
FORMAT = "flashdd-zoo/checkpoint"


def is_checkpoint(path: Path) -> bool:
    return (Path(path) / CHECKPOINT_JSON).is_file()


def save_checkpoint(
    folder: Path,
    model: nn.Module,
    meta: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
) -> Path:
    """Atomically write a checkpoint folder. `meta` must be JSON (epoch, metrics, lineage...)."""
    with atomic_dir(folder) as tmp:
        save_weights(model, tmp / "model.safetensors", {"format": FORMAT})
        doc = {"format": FORMAT, "architecture": model.arch, **meta}
        if optimizer is not None:
            tensors, structure = _flatten_optimizer(optimizer.state_dict())
            tensors["rng.cpu"] = torch.get_rng_state()
            save_file(tensors, str(tmp / "train_state.safetensors"))
            doc["optimizer"] = structure
        (tmp / CHECKPOINT_JSON).write_text(json.dumps(doc, indent=2) + "\n")
    return folder


def read_checkpoint_meta(folder: Path) -> dict[str, Any]:
    try:
        doc = json.loads((Path(folder) / CHECKPOINT_JSON).read_text())
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{folder} is not a readable checkpoint: {e}") from e
    if doc.get("format") != FORMAT:
        raise ArtifactError(f"{folder}/{CHECKPOINT_JSON} is not a flashdd-zoo checkpoint.")
    return doc


def load_checkpoint(folder: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint from its JSON and load its weights strictly."""
    meta = read_checkpoint_meta(folder)
    model = load_weights(build_model(meta["architecture"]), Path(folder) / "model.safetensors")
    return model, meta


def restore_optimizer(folder: Path, optimizer: torch.optim.Optimizer) -> None:
    """Load optimizer state and the CPU RNG state saved with a checkpoint."""
    meta = read_checkpoint_meta(folder)
    tensors = load_file(str(Path(folder) / "train_state.safetensors"))
    torch.set_rng_state(tensors.pop("rng.cpu"))
    optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    per_param: dict[str, dict[str, Any]] = {}
    for idx, entries in state["state"].items():
        plain = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                plain[name] = value
        per_param[str(idx)] = plain
    return tensors, {"param_groups": state["param_groups"], "plain_state": per_param}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], structure: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in structure["plain_state"].items()}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": structure["param_groups"]}
