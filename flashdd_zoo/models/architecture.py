"""What every network family offers the rest of the code; models/registry.py lists the families."""

from __future__ import annotations

from typing import Any

from torch import nn


class Architecture:
    """One network family, named by `architecture["name"]` in config.json.

    Code outside models/ asks the family (through models.registry) instead of testing its name.
    """

    name: str  # the value of architecture["name"] in config.json
    short_name: str  # how artifact names start, e.g. 'resnet18' in 'resnet18-cifar10-ipc10-pruned'
    composite: bool = False  # a combination of member networks (an ensemble) rather than one network
    standalone: bool = True  # built from config.json alone, so it can be a student or a benchmark reference

    def validate(self, arch: dict[str, Any]) -> dict[str, Any]:
        """Return `arch` if it is a well-formed configuration; raise ArtifactError naming the bad field."""
        raise NotImplementedError

    def build(self, arch: dict[str, Any]) -> nn.Module:
        """The network of configuration `arch` (freshly initialised; on the ambient default device)."""
        raise NotImplementedError

    def describe(self, arch: dict[str, Any]) -> str:
        """One line for cards and `info`, e.g. 'resnet18 (cifar stem)'."""
        raise NotImplementedError

    def members(self, arch: dict[str, Any]) -> list[dict[str, Any]]:
        """The single networks inside `arch`: itself, unless composite."""
        return [arch]

    def named_widths(self, arch: dict[str, Any]) -> list[tuple[str, int]]:
        """Every channel count of `arch` with where it is, e.g. ('layer2.0.conv1', 96)."""
        raise NotImplementedError

    def full(self, num_classes: int, stem: str) -> dict[str, Any]:
        """The unpruned reference configuration (a fresh student, the full teacher a benchmark compares with)."""
        raise NotImplementedError
