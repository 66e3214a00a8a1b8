"""Dataset registry and in-memory image loading."""

from .images import ImageSet, decode_files, draw_training_subset, list_split, load_split, normalize, sample_images, training_split
from .registry import DATA_ROOT_ENV, REGISTRY, Dataset, DatasetSpec, default_data_root, resolve_dataset

__all__ = [
    "DATA_ROOT_ENV",
    "REGISTRY",
    "Dataset",
    "DatasetSpec",
    "ImageSet",
    "decode_files",
    "draw_training_subset",
    "default_data_root",
    "list_split",
    "load_split",
    "normalize",
    "resolve_dataset",
    "sample_images",
    "training_split",
]
