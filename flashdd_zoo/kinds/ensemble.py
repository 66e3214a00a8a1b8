"""The ensemble kind: several single networks whose logits are combined with per-member weights."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from ..models.ensemble import Ensemble, StackedEnsemble, weights_for_epoch
from .base import Kind

if TYPE_CHECKING:
    from ..artifact.config import LabelerConfig


class EnsembleKind(Kind):
    name = "ensemble"
    composite = True

    def fast_defaults(self, cuda: bool) -> dict[str, Any]:
        # not on CPU, where oneDNN's grouped convolutions ran a 3-member ensemble at 95 images/s
        # against 154 member by member (benchmarks/results/bench-cpu-ensemble3-ipc10-*.json)
        return {"stack_members": cuda}

    def for_speed(self, net: nn.Module, options: Any) -> nn.Module:
        if options.stack_members and isinstance(net, Ensemble) and net.stackable():
            return StackedEnsemble(net)
        return net

    def weights_for_epoch(self, architecture: dict[str, Any], epoch: int | None) -> list[float] | None:
        return weights_for_epoch(architecture, epoch)

    def card_section(self, config: LabelerConfig, metrics: dict[str, Any]) -> str:
        """The members: source, parameters, own top-1 and weight (schedule, if any)."""
        from ..cards.render import format_accuracy, format_number

        arch = config.architecture
        members = config.lineage.get("members") or [{} for _ in arch["members"]]
        rows = "\n".join(
            f"| {i} | {m.get('source', '—')} | {format_number(m.get('params'), ',')} | {format_accuracy(m.get('top1'))} | {w:.3f} |"
            for i, (m, w) in enumerate(zip(members, arch["weights"])))
        schedule = "".join(f"\n- from epoch {s['from_epoch']}: weights {[round(w, 3) for w in s['weights']]}"
                           for s in arch.get("schedule", []))
        if schedule:
            schedule = "\n\nWeight schedule (`soft_labels(..., epoch=e)` or `set_epoch(e)`):" + schedule
        return ("\n## Ensemble members\n\nSoft labels are softmax of the weighted sum of the members' logits over T.\n\n"
                "| member | source | parameters | top-1 | weight |\n|---|---|---|---|---|\n" + rows + schedule + "\n")

    def default_name(self, architecture: dict[str, Any], dataset_slug: str, ipc: int | None = None) -> str:
        return f"{super().default_name(architecture, dataset_slug, ipc)}{len(architecture['members'])}"


ENSEMBLE = EnsembleKind()
