"""Decode an ImageFolder split into one uint8 tensor, so training can keep it on the GPU."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .registry import IMAGE_SUFFIXES, Dataset


@dataclass
class ImageSet:
    """Images as uint8 (N, 3, H, W) with int64 labels; the unit every stage trades in."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: str | torch.device) -> "ImageSet":
        return ImageSet(self.images.to(device), self.labels.to(device), self.class_names)

    def spread(self, n: int = 32) -> torch.Tensor:
        """At most n images taken evenly across the set (every class when sorted by label)."""
        return self.images[:: max(1, len(self) // n)][:n]

    def per_class(self, n: int, seed: int = 0) -> "ImageSet":
        """At most n images of each class, drawn uniformly at random."""
        return self._take(self._draw(n, seed))

    def split_off(self, n: int, seed: int = 0) -> tuple["ImageSet", "ImageSet"]:
        """(the rest, n random images of each class): a held-out slice and what remains."""
        held = self._draw(n, seed)
        rest = torch.ones(len(self), dtype=torch.bool)
        rest[held] = False
        return self._take(rest.nonzero().flatten()), self._take(held)

    def _draw(self, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        keep = []
        for c in range(len(self.class_names)):
            idx = (self.labels.cpu() == c).nonzero().flatten()
            keep.append(idx[torch.randperm(len(idx), generator=g)[:n]])
        return torch.cat(keep).sort().values

    def _take(self, index: torch.Tensor) -> "ImageSet":
        index = index.to(self.labels.device)
        return ImageSet(self.images[index], self.labels[index], self.class_names)


def list_split(split_dir: Path, class_folders: list[str]) -> list[list[Path]]:
    """Image files of each class folder, sorted; a missing or empty class is an error."""
    files = []
    for c in class_folders:
        d = split_dir / c
        if not d.is_dir():
            raise DataError(f"class folder {d} is missing; every class needs a folder in {split_dir}.")
        found = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataError(f"class folder {d} holds no images ({sorted(IMAGE_SUFFIXES)}).")
        files.append(found)
    return files


def decode_files(paths: list[Path], resolution: int | None, workers: int = 8) -> torch.Tensor:
    """Decode images to uint8 RGB; resize the shorter side to `resolution` and centre-crop.

    With resolution None every image must already have the same size.
    """

    def one(p: Path) -> torch.Tensor:
        try:
            with Image.open(p) as im:
                img = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
        except (OSError, UnidentifiedImageError) as e:
            raise DataError(f"cannot decode image {p}: {e}") from e
        return img.contiguous() if resolution is None else _fit(img, resolution)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        images = list(pool.map(one, paths))
    sizes = {tuple(i.shape[1:]) for i in images}
    if len(sizes) > 1:
        raise DataError(f"images differ in size {sorted(sizes)[:4]}; expected one size for all.")
    return torch.stack(images) if images else torch.empty(0, 3, 0, 0, dtype=torch.uint8)


def _fit(img: torch.Tensor, size: int) -> torch.Tensor:
    h, w = img.shape[1:]
    if (h, w) == (size, size):
        return img
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    img = F.interpolate(img[None].float(), size=(nh, nw), mode="bilinear", antialias=True)[0]
    top, left = (nh - size) // 2, (nw - size) // 2
    return img[:, top : top + size, left : left + size].round().clamp(0, 255).to(torch.uint8)


def load_split(
    dataset: Dataset,
    split: str,
    max_per_class: int | None = None,
    classes: list[int] | None = None,
    seed: int = 0,
) -> ImageSet:
    """Load a split into memory, optionally a uniformly random subset of each class.

    `classes` selects label indices; labels stay the dataset's own indices.
    """
    if dataset.spec.embedded:
        from .digits import load_digits_split

        return _select(load_digits_split(dataset, split), max_per_class, classes, seed)
    paths, labels = split_files(dataset, split, max_per_class, classes, seed)
    images = decode_files(paths, dataset.resolution)
    return ImageSet(images, labels, list(dataset.class_names))


def split_files(dataset: Dataset, split: str, max_per_class: int | None = None, classes: list[int] | None = None,
                seed: int = 0) -> tuple[list[Path], torch.Tensor]:
    """The files load_split would decode, in its order, and their labels."""
    split_dir = dataset.split_dir(split)
    wanted = list(range(dataset.num_classes)) if classes is None else classes
    per_class = list_split(split_dir, [dataset.class_ids[c] for c in wanted])
    rng = random.Random(seed)
    paths, labels = [], []
    for c, files in zip(wanted, per_class):
        if max_per_class is not None and len(files) > max_per_class:
            files = sorted(rng.sample(files, max_per_class))
        paths += files
        labels += [c] * len(files)
    return paths, torch.tensor(labels, dtype=torch.int64)


HOLDOUT_SEED = 0  # one held-out slice per (dataset, size), whatever the teacher's own seed
HELD_OUT_SPLIT = "holdout"  # how reports and cards name that slice


def training_split(dataset: Dataset, holdout_per_class: int = 0, max_per_class: int | None = None
                   ) -> tuple[ImageSet, ImageSet | None]:
    """The training split without its held-out slice, and that slice (None when 0 per class).

    The slice stands in for the test split wherever a choice reads accuracy (phase boundaries,
    Acc > tau, gamma * Acc): teacher training, fine-tunes and RDED's candidates never see it.
    """
    train = load_split(dataset, dataset.spec.train_split, max_per_class=max_per_class, seed=0)
    if not holdout_per_class:
        return train, None
    counts = torch.bincount(train.labels, minlength=dataset.num_classes)
    if int(counts.min()) <= holdout_per_class:
        raise DataError(f"cannot hold out {holdout_per_class} images per class: {dataset.name}'s training split has "
                        f"{int(counts.min())} in its smallest class; choose a smaller --holdout-per-class.")
    return train.split_off(holdout_per_class, HOLDOUT_SEED)


def draw_training_subset(dataset: Dataset, per_class: int, seed: int, holdout_per_class: int = 0,
                         max_per_class: int | None = None) -> ImageSet:
    """`per_class` random training images of each class (seeded), from what training_split(dataset,
    holdout_per_class, max_per_class) keeps for training (never its held-out slice); decodes only
    the chosen files."""
    if dataset.spec.embedded:  # small enough to load whole
        return training_split(dataset, holdout_per_class, max_per_class)[0].per_class(per_class, seed)
    files, labels = split_files(dataset, dataset.spec.train_split, max_per_class, seed=0)
    # file positions stand in for images, so the slice is drawn exactly as training_split draws it
    positions = ImageSet(torch.arange(len(files)), labels, list(dataset.class_names))
    if holdout_per_class:
        positions = positions.split_off(holdout_per_class, HOLDOUT_SEED)[0]
    chosen = positions.per_class(per_class, seed)
    images = decode_files([files[i] for i in chosen.images.tolist()], dataset.resolution)
    return ImageSet(images, chosen.labels, list(dataset.class_names))


def _select(s: ImageSet, max_per_class: int | None, classes: list[int] | None, seed: int) -> ImageSet:
    if classes is not None:
        keep = torch.isin(s.labels, torch.tensor(classes))
        s = ImageSet(s.images[keep], s.labels[keep], s.class_names)
    return s.per_class(max_per_class, seed) if max_per_class is not None else s


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (or [0,1] float) images -> float32 (x/255 - mean) / std, on the images' device."""
    x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def sample_images(
    dataset: Dataset | None = None, folder: Path | None = None, n: int = 32
) -> torch.Tensor:
    """A few real images (uint8) for export checks: from any image folder, or a dataset's val split."""
    if folder is not None:
        folder = Path(folder)
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:n]
        if not files:
            raise DataError(f"no images under {folder} to check the export on.")
        if dataset is None:
            raise DataError("a dataset (for its resolution) is needed with --sample-images.")
        return decode_files(files, dataset.resolution)
    if dataset is None:
        raise DataError("give a dataset or an image folder to draw sample images from.")
    per_class = max(1, -(-n // dataset.num_classes))
    return load_split(dataset, dataset.val_split(), max_per_class=per_class).images[:n]
