"""Randomly initialised students for the downstream protocol."""

from __future__ import annotations

import torchvision
from torch import nn

from ..errors import FlashDDError
from ..models import DEFAULT_SINGLE, architecture_of, build_model, single_architectures


def build_student(name: str, num_classes: int, stem: str) -> nn.Module:
    """An architecture of ours by name (full size; our ResNet-18 is RDED's 'resnet18_modified' with the
    CIFAR stem); any other name is a torchvision classification model, given the 3x3 stem at low
    resolution if a ResNet."""
    if name in single_architectures():
        return build_model(architecture_of(name).full(num_classes, stem))
    try:
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    except ValueError as e:
        raise FlashDDError(f"unknown student {name!r}: {e}. Use {DEFAULT_SINGLE.name!r} or a torchvision model name.") from e
    if stem == "cifar" and hasattr(model, "conv1") and hasattr(model, "maxpool"):
        model.conv1 = nn.Conv2d(3, model.conv1.out_channels, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    return model
