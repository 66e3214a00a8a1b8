"""The projector kind (HeLIO): a frozen foundation backbone pinned by sha256, plus a LoRA adapter.

The folder stores the adapter only (peft's layout), so the kind replaces the network kinds' file
checks: the adapter must fit the pinned backbone, which load_labeler finds and hash-checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from .base import Kind

if TYPE_CHECKING:
    from ..artifact.config import LabelerConfig

SOFT_LABEL_EPOCHS = 300  # the papers' student epochs, for the stored-soft-labels comparison


class ProjectorKind(Kind):
    name = "projector"
    standalone = False  # `flashdd-zoo projector` builds it; export_labeler cannot

    def stored_files(self, config: LabelerConfig) -> tuple[str, ...]:
        from ..artifact.config import CARD, CONFIG, METRICS
        from ..projector.store import stored_files

        return (CONFIG, CARD, METRICS, *stored_files(config.architecture))

    def checked_network(self, config: LabelerConfig, folder: Path, backbone: str | Path | None = None) -> nn.Module:
        """Backbone found and hash-checked, adapter checked against it, then merged (merge_and_unload):
        the fast path then folds and casts it like any network."""
        from ..projector.store import rebuild

        return rebuild(config, folder, backbone)

    def load_network(self, net: nn.Module, folder: Path) -> nn.Module:
        return net  # checked_network already loaded and merged it

    def describe(self, config: LabelerConfig) -> str:
        return f"projector: {super().describe(config)}"

    def default_name(self, architecture: dict[str, Any], dataset_slug: str, ipc: int | None = None) -> str:
        backbone = str(architecture["backbone"]["name"]).lower().replace("/", "-")
        return f"{backbone}-{dataset_slug}{f'-ipc{ipc}' if ipc else ''}-{self.name}"

    def card_section(self, config: LabelerConfig, metrics: dict[str, Any]) -> str:
        """Stored bytes against the full teacher and against stored soft labels; the backbone and how to get it."""
        from ..cards.render import format_number, format_share
        from ..projector.backbone import BackboneRef, how_to_provide

        ref = BackboneRef.from_json(config.architecture["backbone"])
        stored, teacher, soft = (metrics.get(k) for k in ("stored_bytes", "teacher_bytes", "soft_label_bytes"))
        what = "adapter + head" if config.architecture["head"] == "stored" else "adapter"
        ipc = config.lineage.get("ipc", "?")
        return f"""
## Projector (HeLIO)

| stored | bytes | share |
|---|---|---|
| this projector ({what}, peft layout) | {format_number(stored, ',')} | 100% |
| full teacher's weights | {format_number(teacher, ',')} | {format_share(stored, teacher)} of it |
| soft labels for {SOFT_LABEL_EPOCHS} epochs (float32, a vector per image per epoch, IPC {ipc}) | {format_number(soft, ',')} \
| {format_share(stored, soft)} of it |

Backbone (frozen, not stored): **{ref.library} `{ref.name}`**, weights file `{ref.file}`, sha256 `{ref.sha256}`.
{how_to_provide(ref)} Weak teachers: {', '.join(config.lineage.get('weak_teachers', [])) or '—'}.
The adapter loads with peft too: `PeftModel.from_pretrained(base, folder)` on the same base network.
"""


PROJECTOR = ProjectorKind()
