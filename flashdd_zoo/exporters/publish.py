"""Publish a labeler folder to a Hugging Face Hub repo as one commit, optionally tagged.

The folder is checked before anything is sent: its manifest (every file's sha256) and its card's
YAML front matter. Exactly the files the manifest lists, plus the manifest, are committed; the
client's preupload step compares their hashes with the repo's, so an unchanged folder sends no
file and makes no commit. Files of the previous labeler at the same path that the new one no
longer has are deleted in the same commit; other labelers of a zoo repo are left alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, ModelCard, RepoFile
from huggingface_hub.errors import EntryNotFoundError

from ..artifact.config import CARD, LabelerConfig, read_config
from ..errors import ArtifactError, HubInvalidId, HubTagConflict
from ..hub import LIBRARY, check_repo_id, endpoint_url, hub_api, hub_errors
from .manifest import MANIFEST, verify_manifest

BRANCH = "main"


@dataclass(frozen=True)
class PublishResult:
    repo_id: str
    commit: str
    url: str
    path_in_repo: str
    files: int
    unchanged: bool
    tag: str | None


def publish_labeler(
    folder: str | Path,
    repo_id: str,
    *,
    tag: str | None = None,
    private: bool = False,
    path_in_repo: str = "",
    endpoint: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> PublishResult:
    """Upload labeler `folder` to `repo_id` (created if missing) on branch main; tag the commit."""
    folder = Path(folder)
    check_repo_id(repo_id)
    prefix = _prefix(path_in_repo)
    config = read_config(folder)
    files = sorted(verify_manifest(folder, required=config.required_files)["files"]) + [MANIFEST]
    check_card(folder, config)
    api = hub_api(endpoint, token)
    with hub_errors(repo_id, BRANCH, endpoint):
        api.create_repo(repo_id, private=private or None, exist_ok=True)  # None: the org's default
        head, tags = _refs(api, repo_id)
        if tag in tags and tags[tag] != head:
            raise _tag_conflict(tag, tags[tag], repo_id, "")
        ops = [CommitOperationAdd(prefix + rel, folder / rel) for rel in files]
        ops += [CommitOperationDelete(p) for p in _stale(api, repo_id, prefix, files, head)]
        message = commit_message or f"Publish labeler {config.name} with {LIBRARY}"
        info = api.create_commit(repo_id, ops, commit_message=message, revision=BRANCH, parent_commit=head)
        if tag in tags and tags[tag] != info.oid:
            raise _tag_conflict(tag, tags[tag], repo_id, f"Commit {info.oid} was published to {BRANCH} untagged. ")
        if tag and tag not in tags:
            api.create_tag(repo_id, tag=tag, revision=info.oid, tag_message=f"{config.name} {tag}")
    return PublishResult(repo_id=repo_id, commit=info.oid, url=f"{endpoint_url(endpoint)}/{repo_id}",
                         path_in_repo=prefix.rstrip("/"), files=len(files),
                         unchanged=info.oid == head, tag=tag)


def check_card(folder: Path, config: LabelerConfig) -> None:
    """The card must carry valid YAML front matter with the flashdd block `flashdd-zoo ls` reads."""
    fix = f"Re-render it with `flashdd-zoo card {folder}`."
    try:
        card = ModelCard((folder / CARD).read_text(encoding="utf-8"))
    except (yaml.YAMLError, ValueError, TypeError) as e:
        raise ArtifactError(f"{folder / CARD} has invalid YAML front matter ({e}). {fix}") from e
    meta = card.data.to_dict()
    block = meta.get("flashdd")
    if not isinstance(block, dict) or meta.get("library_name") != LIBRARY:
        raise ArtifactError(f"{folder / CARD} lacks the library_name: {LIBRARY} / flashdd: front matter "
                            f"that the Hub index reads. {fix}")
    if (block.get("name"), block.get("kind")) != (config.name, config.kind):
        raise ArtifactError(f"{folder / CARD} describes {block.get('name')!r} ({block.get('kind')}) but "
                            f"config.json is {config.name!r} ({config.kind}). {fix}")


def _prefix(path_in_repo: str) -> str:
    parts = PurePosixPath(path_in_repo.strip("/")).parts if path_in_repo else ()
    if any(p in (".", "..") for p in parts) or "\\" in path_in_repo:
        raise HubInvalidId(f"--path-in-repo {path_in_repo!r} must be a plain folder path inside the repo, "
                       "e.g. resnet18-cifar10-ipc10.")
    return "/".join(parts) + "/" if parts else ""


def _refs(api: HfApi, repo_id: str) -> tuple[str | None, dict[str, str]]:
    refs = api.list_repo_refs(repo_id)
    head = next((b.target_commit for b in refs.branches if b.name == BRANCH), None)
    return head, {t.name: t.target_commit for t in refs.tags}


def _tag_conflict(tag: str, target: str, repo_id: str, done: str) -> HubTagConflict:
    """Tags are pins users rely on: never move one (re-tagging the same commit is a no-op)."""
    return HubTagConflict(f"{done}Tag {tag!r} of {repo_id} already points at commit {target}, and tags are "
                    "permanent pins: publish under a new tag (e.g. v2).")


def _stale(api: HfApi, repo_id: str, prefix: str, files: list[str], head: str | None) -> list[str]:
    """Repo files of the previous labeler at `prefix` that the new manifest no longer lists."""
    if head is None:
        return []
    try:
        old = api.hf_hub_download(repo_id, prefix + MANIFEST, revision=head)
    except EntryNotFoundError:
        return []
    previous = set(_manifest_files(Path(old))) | {MANIFEST}
    present = {f.path for f in api.list_repo_tree(repo_id, path_in_repo=prefix.rstrip("/") or None,
                                                  recursive=True, revision=head) if isinstance(f, RepoFile)}
    return sorted(prefix + rel for rel in previous - set(files) if prefix + rel in present)


def _manifest_files(path: Path) -> list[str]:
    try:
        return list(json.loads(path.read_text())["files"])
    except (ValueError, KeyError, TypeError):
        return []
