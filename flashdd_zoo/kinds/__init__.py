"""Labeler kinds, by the name config.json gives them.

A new kind is one module defining a Kind plus one entry in KINDS.
"""

from __future__ import annotations

from typing import Any

from ..errors import ArtifactArgumentError
from ..models import is_composite
from .base import Kind
from .dense import DENSE
from .ensemble import ENSEMBLE
from .network import PRUNED, TEACHER
from .projector import PROJECTOR

KINDS: dict[str, Kind] = {k.name: k for k in (TEACHER, PRUNED, ENSEMBLE, PROJECTOR, DENSE)}


def get_kind(name: str) -> Kind:
    """The kind called `name`; any other name is refused with the list of known kinds."""
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ArtifactArgumentError(
            f"unknown labeler kind {name!r}; this flashdd-zoo implements {', '.join(KINDS)}. A labeler from "
            "a newer flashdd-zoo may use a kind added since: pip install -U flashdd-zoo.")
    return kind


def kind_names() -> list[str]:
    return list(KINDS)


def kind_for(architecture: dict[str, Any], single: Kind = TEACHER) -> Kind:
    """The kind a bare network is exported as: the composite kind for an ensemble, else `single`."""
    return ENSEMBLE if is_composite(architecture) else single


__all__ = ["DENSE", "ENSEMBLE", "KINDS", "PROJECTOR", "PRUNED", "TEACHER", "Kind", "get_kind", "kind_for", "kind_names"]
