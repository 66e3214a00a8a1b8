"""metrics.json: what was measured about a labeler (size, cost, accuracies, throughput).

Kept apart from config.json so measuring again never changes the file that defines the function.
Format-1 folders kept these numbers in config.json's "metrics"; they are read from there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ArtifactError
from .config import CONFIG, METRICS, LabelerConfig


def read_metrics(folder: Path, config: LabelerConfig) -> dict[str, Any]:
    if config.format_version == 1:
        return dict(json.loads((folder / CONFIG).read_text()).get("metrics") or {})
    path = folder / METRICS
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path} is missing or not valid JSON ({e}); the labeler folder is incomplete. "
                            "Download or export it again.") from e
    if not isinstance(metrics, dict):
        raise ArtifactError(f"{path} is not a JSON object of metrics; download or export the labeler again.")
    return metrics


def write_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    (folder / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
