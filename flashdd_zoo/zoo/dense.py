"""LADD's labelling stage: every static sub-image of D_S gets one soft label from a labeler, once.

The labeler is any network a teacher loads from (a labeler folder of any kind, a training checkpoint,
a torchvision .pth); LADD uses an early-stage one (`train-teacher --checkpoint-epochs`). It runs here
and never again: the student trains from the stored labels (zoo/evaluate.py, `evaluate --dense`).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..artifact.config import CONFIG, LabelerConfig, read_config
from ..data.images import normalize
from ..data.registry import Dataset
from ..dense.geometry import check_grid, crop_boxes, sub_images
from ..dense.store import image_index, write_dense
from ..errors import ArgumentError
from ..kinds import DENSE
from .distilled import distilled_files, distilled_sha256, images_per_class, load_distilled
from .runtime import autocast, pick_device
from .teachers import Teacher, load_teacher


def make_dense_labels(distilled: Path, dataset: Dataset, labeler: Path, out: Path, grid: int, ratio: float,
                      temperature: float = 1.0, device: str | None = None, batch_size: int = 20,
                      name: str | None = None) -> Path:
    """Label every sub-image of D_S `distilled` with `labeler` and write the dense folder `out`."""
    check_grid(grid, ratio)
    if not temperature > 0:
        raise ArgumentError(f"the soft-label temperature must be positive, got {temperature}.")
    teacher = load_teacher(labeler, dataset.num_classes)
    _check_class_names(labeler, dataset)
    d_s = load_distilled(distilled, dataset)
    boxes = crop_boxes(dataset.resolution, grid, ratio)
    t0 = time.perf_counter()
    labels = label_sub_images(teacher, d_s.images, boxes, dataset, temperature, pick_device(device), batch_size)
    seconds = time.perf_counter() - t0
    files, _ = distilled_files(distilled, dataset)
    ipc = images_per_class(d_s)
    config = LabelerConfig.create(
        name=name or DENSE.default_name({"grid": grid}, dataset.slug, ipc), kind=DENSE.name,
        architecture=DENSE.layout(dataset.num_classes, len(files), dataset.resolution, grid, ratio),
        class_names=dataset.class_names, resolution=dataset.resolution, mean=dataset.spec.mean, std=dataset.spec.std,
        temperature=temperature,
        lineage={"dataset": dataset.name, "ipc": ipc, "val_split": dataset.val_split(), "distilled": str(distilled),
                 "distilled_sha256": distilled_sha256(distilled), "labeler": teacher.source,
                 "labeler_epoch": teacher.info.get("epoch") or teacher.info.get("train_epochs")})
    metrics = {"image_bytes": sum(f.stat().st_size for f in files), "label_seconds": seconds,
               "labeler_top1": teacher.info.get("teacher_top1")}
    return write_dense(out, labels, config, image_index(Path(distilled), files), metrics)


@torch.no_grad()
def label_sub_images(teacher: Teacher, images: torch.Tensor, boxes: list, dataset: Dataset, temperature: float,
                     dev: torch.device, batch_size: int) -> torch.Tensor:
    """(M, C, S, S) uint8 images -> (M, len(boxes), classes) float16 soft labels, softmax(logits / T)."""
    net = teacher.model.to(dev).eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size].to(dev), dataset.spec.mean, dataset.spec.std)
        views = sub_images(x, boxes)  # (B, K, C, S, S)
        with autocast(dev):
            logits = net(views.flatten(0, 1)).float()
        out.append(F.softmax(logits / temperature, dim=1).view(len(x), len(boxes), -1).half().cpu())
    return torch.cat(out)


def _check_class_names(labeler: Path, dataset: Dataset) -> None:
    """A labeler folder names its classes: they must be the dataset's, not merely as many."""
    if not (Path(labeler) / CONFIG).is_file():
        return
    names = read_config(Path(labeler)).class_names
    if list(names) != list(dataset.class_names):
        differ = next(i for i, (a, b) in enumerate(zip(names, dataset.class_names)) if a != b)
        raise ArgumentError(f"labeler {labeler} predicts other classes than {dataset.name}: its class {differ} is "
                            f"{names[differ]!r}, the dataset's {dataset.class_names[differ]!r}. Use a labeler trained "
                            "on this dataset.")
