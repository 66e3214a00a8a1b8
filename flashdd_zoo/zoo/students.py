"""Randomly initialised students for the downstream protocol."""

from __future__ import annotations

import torchvision
from torch import nn

from ..errors import FlashDDError
from ..models import build_model, full_architecture, network_names


def build_student(name: str, num_classes: int, stem: str, resolution: int) -> nn.Module:
    """A network of ours by name (full size: our ResNet-18 is RDED's 'resnet18_modified' with the CIFAR
    stem, a ConvNet-Dn is DC's); any other name is a torchvision classification model, given the 3x3
    stem at low resolution if a ResNet."""
    if name in network_names():
        return build_model(full_architecture(name, num_classes, stem, resolution))
    try:
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    except ValueError as e:
        raise FlashDDError(f"unknown student {name!r}: {e}. Use one of {', '.join(network_names())} "
                           "or a torchvision model name.") from e
    if stem == "cifar" and hasattr(model, "conv1") and hasattr(model, "maxpool"):
        model.conv1 = nn.Conv2d(3, model.conv1.out_channels, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    return model
