"""Loading labelers: from local folders and from Hub repos (runtime/ runs them)."""

from __future__ import annotations

from pathlib import Path

from ..runtime.labeler import Labeler
from .hub import load_hub_labeler
from .hub_index import list_labelers
from .local import load_local_labeler
from .source import local_or_repo

__all__ = ["Labeler", "list_labelers", "load_labeler", "load_local_labeler"]


def load_labeler(
    path_or_repo: str | Path,
    *,
    revision: str | None = None,
    name: str | None = None,
    local_files_only: bool = False,
    endpoint: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    force_download: bool = False,
    **runtime,
) -> Labeler:
    """Load a labeler from a local folder or from a Hub repo id ("ORG/NAME").

    An existing local directory always wins, and a `Path` is always local. A repo id is resolved
    with huggingface_hub into the standard HF cache: `revision` pins a tag, branch or commit;
    `local_files_only=True` (or HF_HUB_OFFLINE=1) uses the cache only; `endpoint` (or
    HF_ENDPOINT) points at a self-hosted Hub; `token` defaults to HF_TOKEN or the saved login.
    `name` picks one labeler of a zoo repo (or of a local zoo folder). `runtime` keywords
    go to the labeler runtime: device, dtype, backend, resize, and the fast-path options fast,
    channels_last, fold_bn, fuse_normalization, cuda_graphs, compile, stack_members (see
    loaders/local.py). Every file is checked against the manifest's sha256, and the files against each
    other (artifact/agreement.py), before anything is built.
    """
    hub = dict(revision=revision, local_files_only=local_files_only, endpoint=endpoint, token=token,
               cache_dir=cache_dir, force_download=force_download)
    source = local_or_repo(path_or_repo, name, hub, "labeler folder", " Check the path, or pass the repo id as the Hub "
                           "shows it, e.g. flashdd/resnet18-imagenet1k-ipc10-pruned.")
    if isinstance(source, Path):
        return load_local_labeler(source, **runtime)
    return load_hub_labeler(source, dict(hub, name=name), **runtime)
