"""scikit-learn's bundled `digits` (1,797 real 8x8 handwritten digits): the embedded default set.

It ships inside scikit-learn, so a fresh machine can run a real build with no data root.
"""

from __future__ import annotations

import torch

from ..errors import DataError
from .images import ImageSet
from .registry import Dataset, DatasetSpec

VAL_FRACTION = 0.2


def digits_dataset(spec: DatasetSpec) -> Dataset:
    return Dataset(spec, None, [str(i) for i in range(10)], [str(i) for i in range(10)])


def load_digits_split(dataset: Dataset, split: str) -> ImageSet:
    """A fixed stratified split: the last 20% of each class (in file order) is 'val'."""
    from sklearn.datasets import load_digits

    if split not in ("train", "val"):
        raise DataError(f"dataset 'digits' has splits 'train' and 'val', not {split!r}.")
    raw = load_digits()
    images = torch.from_numpy(raw.images * (255.0 / 16.0)).round().to(torch.uint8)
    images = images[:, None].expand(-1, 3, -1, -1).contiguous()  # grey -> RGB
    labels = torch.from_numpy(raw.target).to(torch.int64)
    keep = []
    for c in range(10):
        idx = (labels == c).nonzero().flatten()
        n_val = round(len(idx) * VAL_FRACTION)
        keep.append(idx[-n_val:] if split == "val" else idx[:-n_val])
    index = torch.cat(keep).sort().values
    return ImageSet(images[index], labels[index], list(dataset.class_names))
