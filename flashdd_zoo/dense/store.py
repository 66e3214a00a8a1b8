"""A dense-label folder on disk: written atomically, read back only after every check passes.

Files: config.json (kind dense; its "architecture" is the label layout), labels.safetensors (one
float16 tensor [images, N*N, classes]), images.json (the sha256 of every D_S image file, in label
order), metrics.json, README.md and manifest.json, the same layout as a labeler folder, so the
Hub's publish and pull move it unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ..artifact.config import FORMAT, LabelerConfig, read_config, write_config
from ..artifact.metrics import read_metrics, write_metrics
from ..artifact.refresh import refresh_card_and_manifest
from ..atomic import atomic_dir
from ..data.registry import Dataset
from ..errors import ArtifactError, ArtifactMismatchError, DataError
from ..exporters.manifest import sha256_file, verify_manifest
from ..exporters.weights import read_weights_header, save_tensors
from ..kinds.dense import DENSE, IMAGES, LABELS, LABELS_TENSOR


def image_index(root: Path, files: list[Path]) -> list[dict[str, str]]:
    """images.json's entries: each D_S image file's path (relative to the D_S folder) and sha256, in order."""
    return [{"path": f.relative_to(root).as_posix(), "sha256": sha256_file(f)} for f in files]


def write_dense(out: Path, labels: torch.Tensor, config: LabelerConfig, images: list[dict[str, str]],
                metrics: dict[str, Any]) -> Path:
    """Write the folder (replacing `out` only once complete); metrics gain the label file's exact bytes."""
    if list(labels.shape) != config.architecture["shape"] or len(images) != labels.shape[0]:
        raise ArtifactError(f"internal: labels {tuple(labels.shape)} and {len(images)} images do not fit the layout "
                            f"{config.architecture['shape']}.")
    with atomic_dir(out) as tmp:
        save_tensors({LABELS_TENSOR: labels.to(torch.float16)}, tmp / LABELS,
                     {"format": FORMAT, "kind": config.kind, "layout": config.architecture})
        (tmp / IMAGES).write_text(json.dumps({"algorithm": "sha256", "images": images}, indent=1) + "\n")
        write_config(tmp, config)
        dense_bytes = (tmp / LABELS).stat().st_size
        image_bytes = metrics.get("image_bytes")
        write_metrics(tmp, {**metrics, "dense_bytes": dense_bytes,
                            **({"storage_pct": 100.0 * dense_bytes / image_bytes} if image_bytes else {})})
        for f in tmp.rglob("*"):
            f.chmod(0o755 if f.is_dir() else 0o644)
        refresh_card_and_manifest(tmp)
    return out


@dataclass(frozen=True)
class DenseLabels:
    """Dense labels as loaded: `labels[i, k]` is the soft label of crop `boxes[k]` of D_S image i."""

    config: LabelerConfig
    labels: torch.Tensor  # [images, N*N, classes], float16
    images: tuple[dict[str, str], ...]  # path and sha256 of each D_S image file, in label order
    folder: Path
    metrics: dict[str, Any]

    @property
    def boxes(self) -> list[tuple[int, int, int, int]]:
        """(top, left, height, width) of every crop, row-major over the N x N grid."""
        return [tuple(b) for b in self.config.architecture["boxes"]]

    @property
    def grid(self) -> int:
        return int(self.config.architecture["grid"])

    @property
    def ratio(self) -> float:
        return float(self.config.architecture["ratio"])

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def label(self, image: int, crop: int) -> torch.Tensor:
        """The stored soft label (float32) of crop `crop` of D_S image `image`."""
        return self.labels[image, crop].float()

    def check_distilled(self, path: str | Path, dataset: Dataset) -> None:
        """Refuse a D_S these labels were not made for: another image count, or the first image whose file differs."""
        from ..zoo.distilled import distilled_files

        path = Path(path)
        if dataset.num_classes != self.num_classes:
            raise DataError(f"{dataset.name} has {dataset.num_classes} classes but the dense labels {self.folder} are "
                            f"over {self.num_classes}; use dense labels made for this dataset.")
        files, _ = distilled_files(path, dataset)
        if len(files) != len(self.images):
            raise DataError(f"D_S {path} holds {len(files)} images but the dense labels {self.folder} were made for "
                            f"{len(self.images)}; give the D_S they were made from, or make dense labels for this one "
                            "with `flashdd-zoo dense`.")
        for i, (f, want) in enumerate(zip(files, self.images)):
            if sha256_file(f) != want["sha256"]:
                raise DataError(f"D_S image {i} ({f}) differs from the one the dense labels {self.folder} were made "
                                f"for ({want['path']}, sha256 {want['sha256'][:16]}...); give the D_S they were made "
                                "from, or make dense labels for this one with `flashdd-zoo dense`.")


def read_dense(folder: str | Path) -> DenseLabels:
    """A dense-label folder, its manifest and the label tensor's header checked before the labels are read."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"no dense-label folder at {folder}.")
    config = read_config(folder)
    if config.kind != DENSE.name:
        raise ArtifactError(f"{folder} is a {config.kind!r} labeler, not dense labels; load it with load_labeler, "
                            "or make dense labels from it with `flashdd-zoo dense --labeler`.")
    verify_manifest(folder, required=config.required_files)
    shape = tuple(config.architecture["shape"])
    header = read_weights_header(folder / LABELS)
    if header.shapes != {LABELS_TENSOR: shape}:
        raise ArtifactMismatchError(f"{folder / LABELS} holds {header.shapes} but config.json describes "
                                    f"{LABELS_TENSOR!r} {shape}; the folder mixes two runs. Make it again.")
    labels = load_file(str(folder / LABELS))[LABELS_TENSOR]
    if labels.dtype != torch.float16:
        raise ArtifactMismatchError(f"{folder / LABELS} holds {labels.dtype} labels, config.json float16. Make it again.")
    images = _read_images(folder, shape[0])
    return DenseLabels(config, labels, images, folder, read_metrics(folder, config))


def _read_images(folder: Path, count: int) -> tuple[dict[str, str], ...]:
    try:
        entries = json.loads((folder / IMAGES).read_text())["images"]
        ok = all(isinstance(e["path"], str) and len(e["sha256"]) == 64 for e in entries)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"{folder / IMAGES} is not a readable image index ({e}); make the labels again.") from e
    if not ok or len(entries) != count:
        raise ArtifactMismatchError(f"{folder / IMAGES} lists {len(entries)} images but the labels hold {count}; "
                                    "make the labels again.")
    return tuple(entries)
