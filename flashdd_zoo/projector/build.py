"""The projector's architecture dict (config.json) and the base network it describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import ArtifactMismatchError
from ..models.projector import HEAD_TEXT, PROJECTOR
from .backbone import BackboneRef
from .libraries import LIBRARY, TEMPLATES, Backbone
from .network import InputAdapter, ProjectorNet


def projector_arch(ref: BackboneRef, backbone: Backbone, num_classes: int, head: str, logit_scale: float,
                   conv_rank: int, head_rank: int) -> dict[str, Any]:
    return {"name": PROJECTOR.name, "num_classes": int(num_classes), "backbone": ref.to_json(),
            "backbone_input": backbone.input_json(), "feature_dim": int(backbone.feature_dim), "head": head,
            **({"templates": TEMPLATES} if head == HEAD_TEXT else {}), "logit_scale": float(logit_scale),
            "lora": {"conv_rank": int(conv_rank), "head_rank": int(head_rank)}}


def load_backbone(arch: dict[str, Any], weights: Path) -> tuple[BackboneRef, Backbone]:
    """The frozen encoder `arch` pins, from its (already hash-checked) weights file; it must still
    take the input and give the features config.json recorded."""
    ref = BackboneRef.from_json(arch["backbone"])
    backbone = LIBRARY[ref.library].load(ref, weights)
    if backbone.feature_dim != arch["feature_dim"] or backbone.input_json() != arch["backbone_input"]:
        raise ArtifactMismatchError(f"backbone {ref.library}:{ref.name} gives {backbone.feature_dim}-d features of "
                                    f"{backbone.input_json()}, but config.json records {arch['feature_dim']}-d of "
                                    f"{arch['backbone_input']}; the library version differs or config.json was edited.")
    return ref, backbone


def base_network(backbone: Backbone, head_weight: torch.Tensor, logit_scale: float, size: tuple[int, int],
                 mean: tuple[float, ...], std: tuple[float, ...]) -> ProjectorNet:
    """Frozen encoder + head, taking images normalised with the labeler's mean/std at its size."""
    adapt = InputAdapter(size, mean, std, backbone.size, backbone.mean, backbone.std)
    return ProjectorNet(adapt, backbone.encoder, head_weight, logit_scale)


def text_head(backbone: Backbone, class_names: list[str]) -> torch.Tensor:
    assert backbone.text_head is not None
    return backbone.text_head(list(class_names))
