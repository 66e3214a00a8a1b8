"""Distilled sets (D_S) on disk: an ImageFolder tree, ours or from other DD code.

Accepted class-folder names: the dataset's own class ids (wnids, CIFAR names) or the 5-digit
label indices RDED, SRe2L and G-VBSM write (00000, 00001, ...).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..atomic import atomic_dir
from ..data.images import ImageSet, decode_files, list_split
from ..data.registry import IMAGE_SUFFIXES, Dataset
from ..errors import DataError

DESCRIPTION = "distilled.json"


def class_folder_name(index: int) -> str:
    return f"{index:05d}"


def _map_class_folders(path: Path, dataset: Dataset) -> dict[int, str]:
    folders = sorted(p.name for p in path.iterdir() if p.is_dir())
    if not folders:
        raise DataError(f"distilled set {path} has no class folders; expected {path}/<class>/<image>.")
    by_id = {c: i for i, c in enumerate(dataset.class_ids)}
    if all(f in by_id for f in folders):
        mapping = {by_id[f]: f for f in folders}
    elif all(f.isdigit() for f in folders):
        mapping = {int(f): f for f in folders}
        out_of_range = [f for f in folders if int(f) >= dataset.num_classes]
        if out_of_range:
            raise DataError(f"distilled set {path}: class folders {out_of_range[:5]} exceed the "
                            f"{dataset.num_classes} classes of {dataset.name}.")
    else:
        odd = [f for f in folders if f not in by_id and not f.isdigit()][:5]
        raise DataError(
            f"distilled set {path}: class folders {odd} are neither {dataset.name} class ids "
            f"(e.g. {dataset.class_ids[0]!r}) nor label indices like '00000'."
        )
    missing = [c for c in range(dataset.num_classes) if c not in mapping]
    if missing:
        names = [dataset.class_names[c] for c in missing[:5]]
        raise DataError(
            f"distilled set {path} lacks {len(missing)} of {dataset.num_classes} classes "
            f"(e.g. label {missing[0]} = {names}); every class needs a folder of images."
        )
    return mapping


def distilled_files(path: str | Path, dataset: Dataset) -> list[list[Path]]:
    """The image files of a D_S folder, per class, in the order load_distilled reads them."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"distilled set {path} does not exist.")
    mapping = _map_class_folders(path, dataset)
    return list_split(path, [mapping[c] for c in range(dataset.num_classes)])


def load_distilled(path: str | Path, dataset: Dataset) -> ImageSet:
    """Load and validate a D_S folder against the dataset it was distilled from."""
    files = distilled_files(path, dataset)
    _check_sizes(files, dataset.resolution)
    images = decode_files([f for fs in files for f in fs], None)
    labels = torch.tensor([c for c, fs in enumerate(files) for _ in fs], dtype=torch.int64)
    return ImageSet(images, labels, list(dataset.class_names))


def _check_sizes(files: list[list[Path]], resolution: int) -> None:
    for f in (f for fs in files for f in fs):
        with Image.open(f) as im:
            if im.size != (resolution, resolution):
                raise DataError(
                    f"distilled image {f} is {im.size[0]}x{im.size[1]}, but the dataset's "
                    f"resolution is {resolution}x{resolution}; distilled sets must be stored at "
                    "the native resolution of the dataset."
                )


def images_per_class(data: ImageSet) -> int:
    """The IPC of a distilled set (the most common per-class count)."""
    counts = Counter(data.labels.tolist())
    return Counter(counts.values()).most_common(1)[0][0]


def distilled_sha256(path: str | Path) -> str:
    """One hash of a D_S folder: over sorted relative paths and file contents."""
    path, h = Path(path), hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        h.update(f.relative_to(path).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def write_distilled(path: Path, data: ImageSet, description: dict, image_format: str = "png") -> Path:
    """Write D_S as RDED does (<00000>/class00000_id00000.<ext>), plus distilled.json."""
    with atomic_dir(path) as tmp:
        write_class_images(tmp, data, image_format)
        write_description(tmp, description)
    return path


def write_class_images(folder: Path, data: ImageSet, image_format: str = "png") -> None:
    """Images of each class in `data` into folder/<00000>/class00000_id00000.<ext>."""
    ids: Counter = Counter()
    for img, label in zip(data.images, data.labels.tolist()):
        class_dir = folder / class_folder_name(label)
        class_dir.mkdir(exist_ok=True)
        name = f"class{label:05d}_id{ids[label]:05d}.{image_format}"
        pixels = np.ascontiguousarray(img.permute(1, 2, 0).cpu().numpy())
        Image.fromarray(pixels).save(class_dir / name, **({"quality": 95} if image_format == "jpg" else {}))
        ids[label] += 1


def write_description(folder: Path, description: dict) -> None:
    """distilled.json: how D_S was made, its image count and content hash."""
    images = sum(1 for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    doc = {**description, "images": images, "sha256": distilled_sha256(folder)}
    (folder / DESCRIPTION).write_text(json.dumps(doc, indent=2) + "\n")


def read_description(path: Path) -> dict:
    f = Path(path) / DESCRIPTION
    return json.loads(f.read_text()) if f.is_file() else {}

