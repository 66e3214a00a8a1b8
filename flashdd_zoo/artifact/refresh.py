"""Rewrite what is derived from a labeler folder's files: its card and its manifest, and new metrics."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..atomic import atomic_dir
from ..cards.render import write_card
from ..exporters.manifest import verify_manifest, write_manifest
from .config import CARD, read_config, write_config
from .metrics import read_metrics, write_metrics


def refresh_card_and_manifest(folder: Path) -> None:
    """Re-render README.md from config.json + metrics.json, then hash every file into the manifest."""
    write_card(folder)
    write_manifest(folder)


def update_metrics(folder: str | Path, metrics: dict[str, Any]) -> Path:
    """Merge `metrics` into metrics.json and refresh card and manifest, as one atomic folder swap.

    Every file but the card is verified against the manifest first: altered files are refused,
    never blessed by a new manifest. A format-1 folder (metrics inside config.json) is rewritten
    in the current format on the way, once.
    """
    folder = Path(folder)
    config = read_config(folder)
    verify_manifest(folder, required=config.required_files, ignore=(CARD,))
    merged = {**read_metrics(folder, config), **metrics}
    with atomic_dir(folder) as staged:
        shutil.copytree(folder, staged, dirs_exist_ok=True)
        if config.format_version == 1:
            write_config(staged, config.upgraded())
        write_metrics(staged, merged)
        refresh_card_and_manifest(staged)
        verify_manifest(staged, required=config.upgraded().required_files)
    return folder
