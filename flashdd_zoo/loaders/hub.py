"""Pull a labeler from a Hugging Face Hub repo into the standard HF cache, then load it locally.

Two steps, so nothing large is fetched for a repo that is not a labeler (or is too new for this
version): first config.json + manifest.json, then exactly the files the manifest lists, pinned to
the commit the first step resolved. The loaded folder is the cache snapshot itself; the local
loader checks every file against the manifest's sha256.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import httpx2
from huggingface_hub import get_cached_repo_tree, snapshot_download
from huggingface_hub.errors import CachedRepoTreeNotFoundError, HfHubHTTPError

from ..artifact.config import CONFIG, LabelerConfig, read_config
from ..errors import ArtifactArgumentError, ArtifactError, HubError, HubInvalidId, HubNotALabeler, HubRepoNotFound, HubRevisionNotFound
from ..exporters.manifest import MANIFEST, listed_path, read_manifest, verify_manifest
from ..hub import LIBRARY, check_repo_id, endpoint_url, hub_api, hub_errors, revision_not_found
from ..runtime.labeler import Labeler
from .local import BACKENDS, load_local_labeler


def download_labeler(
    repo_id: str,
    *,
    revision: str | None,
    name: str | None,
    endpoint: str | None,
    token: str | bool | None,
    cache_dir: str | Path | None,
    local_files_only: bool,
    force_download: bool,
) -> Path:
    """Fetch a labeler folder (the repo root, or subfolder `name` of a zoo repo) into the HF cache.
    Its callers pass every Hub option of load_labeler / `flashdd-zoo pull`, so none has a default.

    Returns the folder inside the cache snapshot. Files are not hash-checked here; the loader
    (or `flashdd-zoo pull`) verifies them against the manifest.
    """
    check_repo_id(repo_id)
    prefix = _prefix(name)
    fetch = dict(repo_id=repo_id, endpoint=endpoint, token=token, cache_dir=cache_dir,
                 local_files_only=local_files_only, force_download=force_download,
                 library_name=LIBRARY, library_version=_version())
    checked = _revision_checked(repo_id, revision, endpoint, token)
    with checked, hub_errors(repo_id, revision, endpoint, loading=True):
        first = [prefix + CONFIG, prefix + MANIFEST]
        snapshot = Path(snapshot_download(revision=revision, allow_patterns=first, **fetch))
        folder = snapshot / prefix  # prefix '' leaves the snapshot itself
        if not ((folder / CONFIG).is_file() and (folder / MANIFEST).is_file()):
            raise _not_a_labeler(repo_id, revision, name, snapshot.name, cache_dir)
        read_config(folder)  # a too-new artifact is refused before its weights are fetched
        listed = _listed_files(folder)
        # pinned to the resolved commit: a branch that moves meanwhile cannot mix two versions
        snapshot_download(revision=snapshot.name, allow_patterns=[prefix + rel for rel in listed], **fetch)
    return folder


def load_hub_labeler(repo_id: str, fetch: dict[str, Any], **load_kwargs: Any) -> Labeler:
    """Download (or find in the cache) and load a labeler published on the Hub: load_labeler's Hub half.
    `fetch` holds download_labeler's keywords, `load_kwargs` load_local_labeler's."""
    backend = load_kwargs.get("backend", "torch")
    if backend not in BACKENDS:  # before any download
        raise ArtifactArgumentError(f"unknown backend {backend!r}; choose one of {BACKENDS}.")
    folder = download_labeler(repo_id, **fetch)
    try:
        return load_local_labeler(folder, **load_kwargs)
    except ArtifactError as e:
        raise ArtifactError(f"{e}\n{_refetch_hint(repo_id, fetch['revision'], fetch['name'], folder)}") from e


def pull_labeler(repo_id: str, *, revision: str | None = None, name: str | None = None,
                 **fetch: Any) -> tuple[Path, LabelerConfig]:
    """Download a labeler and verify every file against its manifest; returns (folder, config)."""
    folder = download_labeler(repo_id, revision=revision, name=name, **fetch)
    try:
        config = read_config(folder)
        verify_manifest(folder, required=config.required_files)
    except ArtifactError as e:
        raise ArtifactError(f"{e}\n{_refetch_hint(repo_id, revision, name, folder)}") from e
    return folder, config


@contextmanager
def _revision_checked(repo_id: str, revision: str | None, endpoint: str | None, token):
    """Name the revisions a repo has when one is missing. Some Hub mirrors (olah) answer "repo not
    found" for a missing revision: the repo's refs tell the two cases apart. (Offline, a missing
    revision is a not-cached error instead, which passes through.)"""
    try:
        yield
    except (HubRepoNotFound, HubRevisionNotFound) as e:
        if revision is None:
            raise
        try:
            refs = hub_api(endpoint, token).list_repo_refs(repo_id)
        except (HfHubHTTPError, httpx2.HTTPError):  # no such repo, or the probe failed: the error stands
            raise e from e.__cause__
        names = (f"branches: {', '.join(b.name for b in refs.branches) or '-'}; "
                 f"tags: {', '.join(t.name for t in refs.tags) or '-'}")
        raise revision_not_found(repo_id, revision, endpoint_url(endpoint), names) from e


def _refetch_hint(repo_id: str, revision: str | None, name: str | None, folder: Path) -> str:
    commit = commit_of(folder)
    pull = f"flashdd-zoo pull {repo_id}" + (f" --revision {revision}" if revision else "") + (
        f" --name {name}" if name else "")
    return (f"This copy of {repo_id}{'@' + revision if revision else ''} (commit {commit}) is in the "
            f"Hugging Face cache at {folder}. Fetch it again with load_labeler(..., "
            f"force_download=True) or `{pull} --force-download`; if the fresh copy fails too, the "
            "repo's files do not match the manifest they were published with: tell the publisher.")


def commit_of(folder: Path) -> str:
    parts = folder.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else "?"


def _prefix(name: str | None) -> str:
    if not name:
        return ""
    parts = PurePosixPath(name.strip("/")).parts  # "." components are dropped here, ".." are not
    if not parts or ".." in parts:
        raise HubInvalidId(f"labeler name {name!r} must be a folder inside the repo, e.g. 'resnet18-cifar10'.")
    return "/".join(parts) + "/"


def _listed_files(folder: Path) -> list[str]:
    """Files of the manifest, refusing paths that would leave the labeler folder (the local loader's rule)."""
    listed = sorted(read_manifest(folder)["files"])
    for rel in listed:
        listed_path(folder, rel)
    return listed + [MANIFEST]


def _not_a_labeler(repo_id: str, revision: str | None, name: str | None, commit: str,
                   cache_dir: str | Path | None) -> HubError:
    where = f"{repo_id}@{revision or 'main'}" + (f" folder {name!r}" if name else "")
    found = _labeler_folders(repo_id, commit, cache_dir)
    if found:
        hint = (f"Labelers in this repo: {', '.join(found)}; load one with load_labeler({repo_id!r}, "
                f"name={found[0]!r}) or `flashdd-zoo pull {repo_id} --name {found[0]}`.")
    else:
        hint = ("It holds no flashdd-zoo labeler; check the repo id (and name=), or publish one with "
                "`flashdd-zoo publish`.")
    return HubNotALabeler(f"{where} is not a flashdd-zoo labeler: it has no {CONFIG} + {MANIFEST}. {hint}")


def _labeler_folders(repo_id: str, commit: str, cache_dir: str | Path | None) -> list[str]:
    """Subfolders holding a manifest, from the tree listing the download step cached."""
    try:
        files = get_cached_repo_tree(repo_id, revision=commit, cache_dir=cache_dir)
    except (CachedRepoTreeNotFoundError, ValueError):
        return []
    return sorted(str(PurePosixPath(f.path).parent) for f in files
                  if PurePosixPath(f.path).name == MANIFEST and "/" in f.path)


def _version() -> str:
    from .. import __version__

    return __version__

