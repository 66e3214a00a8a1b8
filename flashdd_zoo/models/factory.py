"""Rebuild any labeler network from its pure-JSON architecture."""

from __future__ import annotations

from typing import Any

from torch import nn

from .ensemble import Ensemble
from .resnet import ResNet


def build_model(arch: dict[str, Any]) -> nn.Module:
    """A ResNet, or an Ensemble of ResNets for architecture name 'ensemble'."""
    return Ensemble(arch) if arch.get("name") == "ensemble" else ResNet(arch)


def member_archs(arch: dict[str, Any]) -> list[dict[str, Any]]:
    """The ResNet architectures inside `arch`: its members, or itself."""
    return arch["members"] if arch.get("name") == "ensemble" else [arch]


def describe_architecture(arch: dict[str, Any]) -> str:
    """One line for cards and `info`, e.g. 'resnet18 (cifar stem)' or 'ensemble of 3 resnet18 (cifar stem)'."""
    members = member_archs(arch)
    one = f"{members[0]['name']} ({members[0]['stem']} stem)"
    return f"ensemble of {len(members)} {one}" if arch.get("name") == "ensemble" else one
