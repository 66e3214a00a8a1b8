"""The labeler at run time: the Labeler module, its fast inference path, label-time measurement."""

from .labeler import Labeler

__all__ = ["Labeler"]
