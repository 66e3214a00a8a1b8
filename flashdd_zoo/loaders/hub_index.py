"""The zoo index: labelers published under an organisation, or in one zoo repo, read from card metadata.

Every card flashdd-zoo renders carries a `flashdd:` block in its YAML front matter (dataset, IPC,
kind, params, bytes, accuracies). An organisation is listed through the Hub's model search
(tag flashdd-zoo, card data included); a zoo repo by reading the card of each labeler subfolder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from huggingface_hub import ModelCard, RepoFile

from ..artifact.config import CARD
from ..errors import HubInvalidId
from ..exporters.manifest import MANIFEST
from ..hub import LIBRARY, check_repo_id, hub_api, hub_errors


@dataclass(frozen=True)
class LabelerEntry:
    """One published labeler; `repo_id` + `name` are what load_labeler takes."""

    repo_id: str
    name: str | None  # subfolder in a zoo repo, None for a one-labeler repo
    labeler: str | None
    kind: str | None
    dataset: str | None
    ipc: int | None
    params: int | None
    weights_bytes: int | None
    student_top1: float | None
    tau: float | None
    teacher_top1: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_labelers(
    author: str | None = None,
    *,
    repo_id: str | None = None,
    revision: str | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
) -> list[LabelerEntry]:
    """List the labelers of organisation/user `author`, or those in zoo repo `repo_id`.

    An organisation's listing comes from the Hub's model search (repos tagged flashdd-zoo whose
    root card has a flashdd block); a zoo repo's from the card of each folder holding a manifest.
    """
    if (author is None) == (repo_id is None):
        raise HubInvalidId("list_labelers takes an organisation (author=) or a zoo repo (repo_id=), not both.")
    api = hub_api(endpoint, token)
    if repo_id is not None:
        check_repo_id(repo_id)
        with hub_errors(repo_id, revision, endpoint):
            return _zoo_repo(api, repo_id, revision, cache_dir)
    with hub_errors(f"{author}/*", None, endpoint):
        models = api.list_models(author=author, filter=LIBRARY, cardData=True)
        return sorted((e for m in models if (e := _entry(m.id, None, _card_dict(m.card_data)))),
                      key=lambda e: e.repo_id)


def _zoo_repo(api, repo_id: str, revision: str | None, cache_dir) -> list[LabelerEntry]:
    files = [f.path for f in api.list_repo_tree(repo_id, recursive=True, revision=revision)
             if isinstance(f, RepoFile)]
    folders = sorted(str(PurePosixPath(p).parent) for p in files if PurePosixPath(p).name == MANIFEST)
    entries = []
    for folder in folders:
        card_path = CARD if folder == "." else f"{folder}/{CARD}"
        if card_path not in files:
            continue
        local = api.hf_hub_download(repo_id, card_path, revision=revision, cache_dir=cache_dir)
        meta = ModelCard.load(Path(local), ignore_metadata_errors=True).data.to_dict()
        entry = _entry(repo_id, None if folder == "." else folder, meta)
        if entry:
            entries.append(entry)
    return entries


def _card_dict(card_data) -> dict[str, Any]:
    """huggingface_hub hands the search's card metadata over as a ModelCardData, or None."""
    return {} if card_data is None else card_data.to_dict()


def _entry(repo_id: str, name: str | None, meta: dict[str, Any]) -> LabelerEntry | None:
    block = meta.get("flashdd")
    if not isinstance(block, dict):
        return None  # tagged flashdd-zoo but not a labeler card (e.g. a zoo repo's index page)
    return LabelerEntry(
        repo_id=repo_id, name=name, labeler=block.get("name"), kind=block.get("kind"),
        dataset=block.get("dataset"), ipc=block.get("ipc"), params=block.get("params"),
        weights_bytes=block.get("weights_bytes"), student_top1=block.get("student_top1_mean"),
        tau=block.get("tau_mean"), teacher_top1=block.get("teacher_top1"),
    )
