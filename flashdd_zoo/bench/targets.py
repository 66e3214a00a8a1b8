"""What `flashdd-zoo bench` measures: the labeler (eager, fast, onnxruntime) and the full teacher.

Every target is a builder returning `fn(images) -> soft labels` (softmax included), so building,
weights and graph capture are counted in its memory and kept out of its timing.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..artifact.config import read_config
from ..artifact.metrics import read_metrics
from ..cards.measure import count_params
from ..data.registry import IMAGENET_MEAN, IMAGENET_STD
from ..errors import ArtifactArgumentError
from ..exporters.manifest import verify_manifest
from ..kinds import ENSEMBLE
from ..loaders.local import labeler_from_module, load_local_labeler, ort_providers, ort_uses_gpu
from ..models import architecture_of, build_model, ensemble_arch, member_archs, resnet18_arch, validate_arch
from ..models.resnet import RESNET18
from ..runtime.labeler import Labeler

Builder = Callable[[], Callable[[torch.Tensor], torch.Tensor]]


@dataclass
class Subject:
    """The labeler under test: a folder, or a ResNet-18 of given widths with random weights."""

    name: str
    arch: dict[str, Any]
    resolution: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    folder: Path | None = None
    params: int = 0
    _net: torch.nn.Module | None = field(default=None, repr=False)

    def network(self) -> torch.nn.Module:
        """A fresh float32 CPU copy of the network (random weights unless from a folder)."""
        if self.folder is not None:
            return load_local_labeler(self.folder).net
        if self._net is None:
            torch.manual_seed(0)
            self._net = build_model(self.arch).eval()
        return copy.deepcopy(self._net)


def subject_from_folder(folder: Path) -> Subject:
    """The labeler in `folder`, its manifest verified before anything is measured."""
    config = read_config(folder)
    verify_manifest(folder, required=config.required_files)
    inp = config.input
    return Subject(config.name, config.architecture, inp.size[0], inp.mean, inp.std, folder=folder,
                   params=int(read_metrics(folder, config)["params"]))


def subject_from_widths(stage_widths: list[int] | None, scale: float | None, classes: int, res: int,
                        stem: str | None = None, stem_width: int | None = None, members: int = 1) -> Subject:
    """A ResNet-18 with explicit stage widths (inner widths equal) or a uniform width scale; with
    members > 1, an ensemble of that many such ResNets."""
    stem = stem or ("cifar" if res <= 64 else "imagenet")
    if (stage_widths is None) == (scale is None):
        raise ArtifactArgumentError("give exactly one of a labeler folder, --stage-widths or --widths-scale.")
    arch = resnet18_arch(classes, stem, scale if scale is not None else 1.0)
    if stage_widths is not None:
        if len(stage_widths) != 4:
            raise ArtifactArgumentError(f"--stage-widths needs 4 comma-separated widths, got {stage_widths}.")
        arch["widths"] = {"stem": stem_width or stage_widths[0], "stages": list(stage_widths),
                          "inner": [[c, c] for c in stage_widths]}
    arch = validate_arch(arch)
    w = arch["widths"]
    name = f"{RESNET18.short_name}-stem{w['stem']}-stages{'-'.join(map(str, w['stages']))}-{classes}c"
    if members > 1:
        arch, name = ensemble_arch([arch] * members), f"{ENSEMBLE.name}{members}-{name}"
    subject = Subject(name, arch, res, IMAGENET_MEAN, IMAGENET_STD)
    subject.params = count_params(subject.network())
    return subject


def eager_target(subject: Subject, device: torch.device) -> Builder:
    """float32 eager, NCHW, as DD codebases (RDED) run their teacher."""
    def build():
        lab = labeler_from_module(subject.network(), resolution=subject.resolution, mean=subject.mean,
                                  std=subject.std, name=subject.name, device=device)
        return lab.soft_labels
    return build


def fast_target(subject: Subject, device: torch.device, **options: Any) -> Builder:
    """The Labeler fast path for the device, with `options` overriding its choices."""
    def build():
        lab = labeler_from_module(subject.network(), resolution=subject.resolution, mean=subject.mean,
                                  std=subject.std, name=subject.name, device=device, fast=True, **options)
        return lab.soft_labels
    return build


def onnx_target(subject: Subject, device: torch.device) -> Builder:
    """onnxruntime (CUDA provider with onnxruntime-gpu on a GPU, else CPU provider)."""
    def build():
        if subject.folder is not None:
            return load_local_labeler(subject.folder, device=device, backend="onnx").soft_labels
        return _exported_onnx(subject, device).soft_labels
    return build


def onnx_skip_reason(device: torch.device) -> str | None:
    """Why the onnx backend is not measured on `device`, or None when it is."""
    if device.type == "cuda" and not ort_uses_gpu(device):
        return ("onnxruntime-gpu (CUDAExecutionProvider) is not installed here; the CPU provider "
                "would not measure the GPU, so the onnx backend was not measured")
    return None


def teacher_subject(subject: Subject, against: str) -> Subject:
    """The full-width network of family `against` with the labeler's stem, classes and input (random weights)."""
    family = architecture_of(against)
    first = member_archs(subject.arch)[0]
    stem = first.get("stem") or ("cifar" if subject.resolution <= 64 else "imagenet")  # a ConvNet labeler has none
    arch = family.full(subject.arch["num_classes"], stem, subject.resolution)
    teacher = Subject(f"{family.short_name}-full", arch, subject.resolution, subject.mean, subject.std)
    teacher.params = count_params(teacher.network())
    return teacher


def _exported_onnx(subject: Subject, device: torch.device) -> Labeler:
    from ..exporters.onnx_export import export_onnx, onnx_session

    net = subject.network()
    lab = labeler_from_module(net, resolution=subject.resolution, mean=subject.mean, std=subject.std,
                              name=subject.name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(net, path, torch.randn(2, 3, subject.resolution, subject.resolution))
        session = onnx_session(path, ort_providers(device))
    return Labeler(lab.config, None, session=session)
