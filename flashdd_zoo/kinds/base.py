"""What every labeler kind answers; kinds/__init__.py lists the kinds that exist."""

from __future__ import annotations

import json
from pathlib import Path
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
    standalone: bool = True  # its architecture is built from config.json alone (not: a projector's outside backbone)
    network: bool = True  # it computes labels with a network (not: dense labels, stored once)

    # -- the config -------------------------------------------------------------------------
    def check_architecture(self, architecture: dict[str, Any]) -> None:
        """Refuse an architecture this kind cannot be (ArtifactError naming the fix)."""
        family = architecture_of(architecture)
        family.validate(architecture)
        if (family.composite, family.standalone) != (self.composite, self.standalone):
            from . import KINDS  # the registry imports this module

            fitting = " or ".join(repr(k.name) for k in KINDS.values()
                                  if k.network and (k.composite, k.standalone) == (family.composite, family.standalone))
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

    def stored_files(self, config: LabelerConfig) -> tuple[str, ...]:
        """The files a folder of this kind must list in its manifest (format 2)."""
        from ..artifact.config import REQUIRED_FILES

        return REQUIRED_FILES

    # -- the network ------------------------------------------------------------------------
    def checked_network(self, config: LabelerConfig, folder: Path, **sources: Any) -> nn.Module:
        """The network the folder describes, its files checked against each other first (artifact/agreement.py);
        on the meta device until load_network. `sources` name files kept outside the folder (none here)."""
        from ..artifact.agreement import checked_network
        from ..errors import ArtifactArgumentError

        given = sorted(k for k, v in sources.items() if v is not None)
        if given:
            raise ArtifactArgumentError(f"{', '.join(given)} apply to labelers built on an outside backbone; "
                                        f"{config.name} is a {self.name!r} labeler that holds all its weights.")
        return checked_network(config, folder)

    def load_network(self, net: nn.Module, folder: Path) -> nn.Module:
        """Fill checked_network's network with the folder's weights."""
        from ..artifact.config import WEIGHTS
        from ..exporters.weights import load_weights

        return load_weights(net, folder / WEIGHTS)

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

    def card_body(self, config: LabelerConfig, metrics: dict[str, Any]) -> str | None:
        """The whole card body for a kind that is no network (None: the network card)."""
        return None

    def info_rows(self, config: LabelerConfig, metrics: dict[str, Any]) -> list[tuple[str, str]] | None:
        """`flashdd-zoo info` rows for a kind that is no network (None: the network rows)."""
        return None

    def export_metrics(self, measured: dict[str, Any]) -> dict[str, Any]:
        """Metrics the exporter adds for this kind, from what it measured (params, bytes, ...)."""
        return {}

    def default_name(self, architecture: dict[str, Any], dataset_slug: str, ipc: int | None = None) -> str:
        """The artifact name the build recipes give, e.g. 'resnet18-cifar10-ipc10-pruned'."""
        return f"{short_name(architecture)}-{dataset_slug}{f'-ipc{ipc}' if ipc else ''}-{self.name}"
