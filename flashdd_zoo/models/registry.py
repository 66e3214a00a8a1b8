"""The architectures this version builds, by the name config.json gives them.

A new network family is one module defining an Architecture plus one entry in ARCHITECTURES.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from ..errors import ArtifactError
from .architecture import Architecture
from .convnet import CONVNET
from .ensemble import ENSEMBLE
from .projector import PROJECTOR
from .resnet import RESNET18

ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (RESNET18, CONVNET, ENSEMBLE, PROJECTOR)}
DEFAULT_SINGLE = RESNET18  # the family of fresh students and of the full teacher benchmarks compare with


def architecture_of(arch: dict[str, Any] | str) -> Architecture:
    """The family of an architecture dict (or of its name); unknown names list the known ones."""
    name = arch if isinstance(arch, str) else arch.get("name") if isinstance(arch, dict) else None
    family = ARCHITECTURES.get(name) if isinstance(name, str) else None
    if family is None:
        raise ArtifactError(f"unknown architecture {name!r}; this version builds {', '.join(map(repr, ARCHITECTURES))}. "
                            "A labeler from a newer flashdd-zoo may need pip install -U flashdd-zoo.")
    return family


def single_architectures() -> list[str]:
    """Names of the families that are one network built from config.json alone (student choices,
    benchmark references)."""
    return [name for name, family in ARCHITECTURES.items() if not family.composite and family.standalone]


def network_names() -> list[str]:
    """Every name a fresh network can be asked for by (students, teachers): each single family's variants."""
    return [v for name in single_architectures() for v in ARCHITECTURES[name].variants()]


def full_architecture(name: str, num_classes: int, stem: str | None, resolution: int,
                      scale: float = 1.0) -> dict[str, Any]:
    """The full-size configuration of network `name` (a family name or one of its variants, e.g. 'convnet-d4')."""
    for family in (ARCHITECTURES[n] for n in single_architectures()):
        variants = family.variants()
        if name in variants or name == family.name:
            return family.full(num_classes, stem, resolution, scale, **variants.get(name, {}))
    raise ArtifactError(f"unknown network {name!r}; choose one of {', '.join(network_names())}.")


def validate_architecture(arch: dict[str, Any]) -> dict[str, Any]:
    return architecture_of(arch).validate(arch)


def build_model(arch: dict[str, Any], device: str | torch.device | None = None) -> nn.Module:
    """Rebuild a network from its JSON architecture. device='meta' allocates nothing (for loading
    weights into it with assign=True, so a labeler needs memory for its weights once, not twice)."""
    family = architecture_of(arch)
    with torch.device(device) if device is not None else contextlib.nullcontext():
        return family.build(arch)


def member_archs(arch: dict[str, Any]) -> list[dict[str, Any]]:
    """The single networks inside `arch`: its members, or itself."""
    return architecture_of(arch).members(arch)


def is_composite(arch: dict[str, Any]) -> bool:
    return architecture_of(arch).composite


def describe_architecture(arch: dict[str, Any]) -> str:
    """One line for cards and `info`, e.g. 'resnet18 (cifar stem)' or 'ensemble of 3 resnet18 (cifar stem)'."""
    return architecture_of(arch).describe(arch)


def short_name(arch: dict[str, Any]) -> str:
    """How an artifact name of this architecture starts: the family of its (first) single network."""
    first = member_archs(arch)[0]
    return architecture_of(first).artifact_prefix(first)
