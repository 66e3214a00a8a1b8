"""Loading dense labels (LADD) from a local folder or a Hub repo, pinned and verified like a labeler."""

from __future__ import annotations

from pathlib import Path

from ..dense.store import DenseLabels, read_dense
from ..errors import ArtifactError
from .source import local_or_repo


def load_dense_labels(
    path_or_repo: str | Path,
    *,
    revision: str | None = None,
    name: str | None = None,
    local_files_only: bool = False,
    endpoint: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    force_download: bool = False,
) -> DenseLabels:
    """Dense labels from a folder or a Hub repo id ("ORG/NAME"): crop boxes and labels by (image, crop).

    The same rules as load_labeler: an existing local folder (or any `Path`) wins; a repo id is fetched
    into the HF cache through the manifest (config.json + manifest.json first, then exactly the files it
    lists, pinned to the resolved commit of `revision`), and every file is checked against its sha256.
    """
    from .hub import _refetch_hint, download_labeler

    hub = dict(revision=revision, local_files_only=local_files_only, endpoint=endpoint, token=token,
               cache_dir=cache_dir, force_download=force_download)
    source = local_or_repo(path_or_repo, name, hub, "dense-label folder")
    if isinstance(source, Path):
        return read_dense(source)
    folder = download_labeler(source, name=name, **hub)
    try:
        return read_dense(folder)
    except ArtifactError as e:
        raise ArtifactError(f"{e}\n{_refetch_hint(str(path_or_repo), revision, name, folder)}") from e
