"""Kinds that are one network: a full teacher, or a network pruned from one."""

from __future__ import annotations

from typing import Any

from .base import Kind


class NetworkKind(Kind):
    def __init__(self, name: str, is_reference: bool):
        self.name = name
        self.is_reference = is_reference  # the full teacher: its own reference size on the card

    def export_metrics(self, measured: dict[str, Any]) -> dict[str, Any]:
        if not self.is_reference:
            return {}
        return {"teacher_params": measured["params"], "teacher_weights_bytes": measured["weights_bytes"]}


TEACHER = NetworkKind("teacher", is_reference=True)
PRUNED = NetworkKind("pruned", is_reference=False)
