"""flashdd-zoo: compact soft-label generators (labelers) for large-scale dataset distillation."""

__version__ = "0.1.0"

from .loaders import Labeler, list_labelers, load_labeler  # noqa: E402
from .loaders.dense import load_dense_labels  # noqa: E402

__all__ = ["Labeler", "__version__", "list_labelers", "load_dense_labels", "load_labeler"]
