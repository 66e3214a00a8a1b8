"""Export a model as a complete labeler folder, written atomically."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..artifact.config import FORMAT, ONNX, WEIGHTS, LabelerConfig, write_config
from ..artifact.metrics import write_metrics
from ..artifact.refresh import refresh_card_and_manifest
from ..atomic import atomic_dir
from ..cards.measure import count_params, file_bytes, gflops_per_image
from ..data.images import normalize
from .onnx_export import check_parity, export_onnx
from .weights import save_weights


def export_labeler(
    model: nn.Module,
    out_dir: str | Path,
    *,
    name: str,
    kind: str,
    class_names: list[str],
    resolution: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    sample_images: torch.Tensor,
    temperature: float | None = None,
    lineage: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Export `model` as a complete labeler folder at `out_dir` and return its path.

    `sample_images` are real uint8 images of the dataset; the ONNX file is checked against torch
    on them. `metrics` carries measured accuracies (tau, teacher/student top-1, ...); the
    exporter adds params, bytes, GFLOPs and the ONNX difference itself, and writes them all to
    metrics.json. Any failure leaves an existing `out_dir` untouched and no partial folder behind.
    """
    out_dir = Path(out_dir)
    model = model.eval().cpu().float()
    config = LabelerConfig.create(  # validated before any work
        name=name, kind=kind, architecture=model.arch, class_names=class_names, resolution=resolution,
        mean=mean, std=std, temperature=temperature, lineage=lineage,
        plots=sorted(k for k in (extra_files or {}) if k.endswith(".png")),
    )
    with atomic_dir(out_dir) as tmp:
        save_weights(model, tmp / WEIGHTS, {"format": FORMAT, "format_version": config.format_version,
                                            "name": name, "kind": kind, "architecture": config.architecture})
        x = normalize(sample_images[:32], mean, std)
        export_onnx(model, tmp / ONNX, x)
        onnx_diff = check_parity(model, tmp / ONNX, x)
        measured = {
            "params": count_params(model),
            "weights_bytes": file_bytes(tmp / WEIGHTS),
            "onnx_bytes": file_bytes(tmp / ONNX),
            "gflops": gflops_per_image(model, resolution),
            "onnx_max_abs_diff": onnx_diff,
            "onnx_parity_images": int(x.shape[0]),
        }
        measured.update(config.labeler_kind.export_metrics(measured))
        for rel, src in (extra_files or {}).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, tmp / rel)
        write_config(tmp, config)
        write_metrics(tmp, {**(metrics or {}), **measured})
        for f in tmp.rglob("*"):
            f.chmod(0o755 if f.is_dir() else 0o644)
        refresh_card_and_manifest(tmp)
    return out_dir


def add_onnx(source: str | Path, out_dir: str | Path, sample_images: torch.Tensor, **sources: Any) -> Path:
    """A copy of the labeler folder `source`, which stores no ONNX file (a projector keeps only its
    adapter), with the network it loads as (adapter merged) exported to ONNX and parity-checked on
    `sample_images`. `sources` go to the loader (a projector's `backbone=`)."""
    from ..exporters.manifest import verify_manifest
    from ..loaders.local import load_local_labeler

    source, out_dir = Path(source), Path(out_dir)
    labeler = load_local_labeler(source, **sources)  # verifies the manifest and the pinned backbone
    model, config = labeler.net.eval(), labeler.config
    with atomic_dir(out_dir) as tmp:
        for rel in verify_manifest(source, required=config.required_files)["files"]:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, tmp / rel)
        x = normalize(sample_images[:32], config.input.mean, config.input.std)
        export_onnx(model, tmp / ONNX, x)
        diff = check_parity(model, tmp / ONNX, x)
        metrics = {**labeler.metrics, "onnx_max_abs_diff": diff, "onnx_parity_images": int(x.shape[0]),
                   "onnx_bytes": file_bytes(tmp / ONNX)}
        write_metrics(tmp, metrics)
        refresh_card_and_manifest(tmp)
    return out_dir
