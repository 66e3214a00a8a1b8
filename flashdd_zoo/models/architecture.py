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
    prunable: bool = False  # one network torch-pruning can thin (read_arch and classifier answer for it)
    stackable: bool = False  # members of this family can run as one grouped network (models/ensemble.py)

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

    def full(self, num_classes: int, stem: str | None = None, resolution: int | None = None,
             scale: float = 1.0, **variant: Any) -> dict[str, Any]:
        """The unpruned reference configuration (a fresh student, the full teacher a benchmark compares with),
        optionally uniformly thinner by `scale`; `variant` holds the options of a name from variants()."""
        raise NotImplementedError

    def variants(self) -> dict[str, dict[str, Any]]:
        """The network names this family answers to (students, teachers), each with its options for full()."""
        return {self.name: {}}

    def artifact_prefix(self, arch: dict[str, Any]) -> str:
        """How artifact names of `arch` start, e.g. 'resnet18' or 'convnet-d3'."""
        return self.short_name

    def input_signature(self, arch: dict[str, Any]) -> Any:
        """What ensemble members must share to read one image (a stem, an input size)."""
        return None

    def read_arch(self, model: nn.Module) -> dict[str, Any]:
        """The configuration of `model` as it now is (after pruning replaced its layers)."""
        raise NotImplementedError(f"{self.name} networks are not pruned")

    def classifier(self, model: nn.Module) -> nn.Module:
        """The output layer, which pruning leaves its class count."""
        raise NotImplementedError(f"{self.name} networks are not pruned")
