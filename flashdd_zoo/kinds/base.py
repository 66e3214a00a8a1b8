"""What every labeler kind answers; kinds/__init__.py lists the kinds that exist."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from torch import nn

from ..errors import ArtifactError, ArtifactMismatchError
from ..models import architecture_of, build_model, short_name

if TYPE_CHECKING:
    from ..artifact.config import LabelerConfig
    from ..exporters.weights import WeightsHeader


class Kind:
    """A kind of labeler (config.json's "kind"). Code elsewhere asks it instead of testing its name."""

    name: str
    composite: bool = False  # built on a composite architecture (an ensemble's members) instead of one network

    # -- the config -------------------------------------------------------------------------
    def check_architecture(self, architecture: dict[str, Any]) -> None:
        """Refuse an architecture this kind cannot be (ArtifactError naming the fix)."""
        family = architecture_of(architecture)
        family.validate(architecture)
        if family.composite != self.composite:
            from . import KINDS  # the registry imports this module

            fitting = " or ".join(repr(k.name) for k in KINDS.values() if k.composite == family.composite)
            raise ArtifactError(f"kind {self.name!r} does not fit a {family.name!r} network: export it as kind {fitting}.")

    def check_weights_header(self, config: LabelerConfig, header: WeightsHeader, where: str) -> None:
        """The weights file names the kind and architecture it was exported with; they must be config.json's."""
        meta = header.metadata
        if "kind" not in meta or "architecture" not in meta:
            return
        try:
            same = meta["kind"] == config.kind and json.loads(meta["architecture"]) == config.architecture
        except ValueError:
            same = False
        if not same:
            raise ArtifactMismatchError(f"{where} was exported as {meta['kind']!r} with another architecture than "
                                        "config.json describes; the folder mixes two exports. Export it again.")

    # -- the network ------------------------------------------------------------------------
    def build(self, config: LabelerConfig) -> nn.Module:
        """The network, on the meta device: loading the weights (assign=True) allocates its memory once."""
        return build_model(config.architecture, device="meta")

    def fast_defaults(self, cuda: bool) -> dict[str, Any]:
        """The fast-path options (FastOptions fields) this kind adds, with what `fast=True` sets them to."""
        return {}

    def for_speed(self, net: nn.Module, options: Any) -> nn.Module:
        """The kind's own rewrite of a float32 network for the fast path (before folding and casting)."""
        return net

    def weights_for_epoch(self, architecture: dict[str, Any], epoch: int | None) -> list[float] | None:
        """Combination weights in force at training epoch `epoch` (None: the default ones); None when the kind has none."""
        return None

    # -- cards, info and export -------------------------------------------------------------
    def describe(self, config: LabelerConfig) -> str:
        """One line for cards and `info`."""
        return architecture_of(config.architecture).describe(config.architecture)

    def card_section(self, config: LabelerConfig, metrics: dict[str, Any]) -> str:
        """Markdown the card adds for this kind ('' for none)."""
        return ""

    def export_metrics(self, measured: dict[str, Any]) -> dict[str, Any]:
        """Metrics the exporter adds for this kind, from what it measured (params, bytes, ...)."""
        return {}

    def default_name(self, architecture: dict[str, Any], dataset_slug: str, ipc: int | None = None) -> str:
        """The artifact name the build recipes give, e.g. 'resnet18-cifar10-ipc10-pruned'."""
        return f"{short_name(architecture)}-{dataset_slug}{f'-ipc{ipc}' if ipc else ''}-{self.name}"
