"""Labeler runtime and loading (local folders; Hub repos)."""

from .labeler import Labeler
from .local import load_local_labeler

__all__ = ["Labeler", "load_labeler", "load_local_labeler"]


def load_labeler(path_or_repo, **kwargs) -> Labeler:
    """Load a labeler from a local folder (Hub repo ids are added by the hub module)."""
    return load_local_labeler(path_or_repo, **kwargs)
