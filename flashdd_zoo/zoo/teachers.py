"""Where a teacher network comes from: a torchvision weights file, a checkpoint, or a labeler."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..artifact.config import CONFIG
from ..errors import ArtifactError
from ..models import load_torchvision_resnet18


@dataclass
class Teacher:
    model: nn.Module
    source: str
    info: dict[str, Any] = field(default_factory=dict)  # e.g. top-1, epochs, lineage
    holdout_per_class: int | None = None  # training images per class it never saw (None: unknown)


def load_teacher(source: str | Path, num_classes: int) -> Teacher:
    """Load a teacher from a torchvision .pth state dict, a training checkpoint or a labeler folder."""
    path = Path(source)
    if path.is_file() and path.suffix in (".pth", ".pt"):
        return Teacher(load_torchvision_resnet18(str(path), num_classes), f"torchvision:{path.name}")
    if path.is_dir() and (path / CONFIG).is_file():
        from ..loaders import load_local_labeler

        labeler = load_local_labeler(path)
        _check_classes(labeler.num_classes, num_classes, path)
        recipe = labeler.config.lineage.get("recipe") or {}
        return Teacher(labeler.net, f"labeler:{labeler.config.name}", dict(labeler.metrics),
                       recipe.get("holdout_per_class"))
    from .checkpoints import is_checkpoint, load_checkpoint

    if is_checkpoint(path):
        model, meta = load_checkpoint(path)
        _check_classes(model.arch["num_classes"], num_classes, path)
        return Teacher(model, f"checkpoint:{path.name}", {**meta.get("metrics", {}), "epoch": meta.get("epoch")},
                       (meta.get("recipe") or {}).get("holdout_per_class"))
    raise ArtifactError(
        f"cannot load a teacher from {path}: expected a torchvision ResNet-18 .pth state dict, a "
        "flashdd-zoo training checkpoint folder, or a labeler folder."
    )


def _check_classes(found: int, expected: int, path: Path) -> None:
    if found != expected:
        raise ArtifactError(f"teacher {path} has {found} classes but the dataset has {expected}.")
