"""Frozen image encoders from open_clip, timm and flashdd-zoo folders, loaded from local files only.

Each library answers the same three questions: build the encoder from a pinned reference and its
weights file, say what input it takes, and (open_clip only) give the text-initialised head.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..errors import ArgumentError, ArtifactError, DataError
from .backbone import BackboneRef, Spec

TEMPLATES = "OPENAI_IMAGENET_TEMPLATES"  # open_clip.zero_shot_metadata's CLIP prompt templates
DEFAULT_LOGIT_SCALE = 1 / 0.07  # CLIP's initial temperature, for heads without a text tower


@dataclass
class Backbone:
    """A loaded, frozen encoder and what it takes: images of `size`, normalised with mean/std."""

    encoder: nn.Module
    feature_dim: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    logit_scale: float = DEFAULT_LOGIT_SCALE
    text_head: Callable[[list[str]], torch.Tensor] | None = None  # class names -> (C, D) unit rows

    def input_json(self) -> dict[str, Any]:
        return {"size": list(self.size), "mean": list(self.mean), "std": list(self.std)}


def frozen(module: nn.Module) -> nn.Module:
    return module.eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------
# open_clip


class OpenClip:
    weights_name = ""  # the SPEC names the file itself

    def reference(self, spec: Spec) -> dict[str, Any]:
        """Extra fields to pin: the model config, so a custom (add_model_config) model rebuilds anywhere."""
        import open_clip

        config = open_clip.get_model_config(spec.name)
        if config is None:
            raise ArgumentError(f"open_clip has no model config {spec.name!r}; known: {', '.join(open_clip.list_models()[:8])}, "
                                "... (open_clip.list_models()), or register yours with open_clip.add_model_config.")
        return {"model_config": config}

    def load(self, ref: BackboneRef, path: Path) -> Backbone:
        import open_clip

        _register(ref)
        # a local file as `pretrained`: open_clip loads it (weights_only=True) and downloads nothing
        model, _, _ = open_clip.create_model_and_transforms(ref.name, pretrained=str(path), weights_only=True)
        tokenizer = open_clip.get_tokenizer(ref.name)
        model = frozen(model)
        size = _to_pair(model.visual.image_size)
        mean, std = tuple(model.visual.image_mean or open_clip.OPENAI_DATASET_MEAN), \
            tuple(model.visual.image_std or open_clip.OPENAI_DATASET_STD)
        return Backbone(model.visual, int(model.visual.output_dim), size, mean, std,
                        float(model.logit_scale.exp()), lambda names: _text_head(model, tokenizer, names))


def _register(ref: BackboneRef) -> None:
    """Make a custom model config known to open_clip again (add_model_config reads JSON files)."""
    import json
    import tempfile

    import open_clip

    config = ref.extra.get("model_config")
    if config is None or open_clip.get_model_config(ref.name) is not None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"{ref.name}.json").write_text(json.dumps(config))
        open_clip.add_model_config(tmp)


def _text_head(model: nn.Module, tokenizer: Any, class_names: list[str]) -> torch.Tensor:
    """Normalised mean of the normalised text embeddings of CLIP's prompt templates per class (C, D)."""
    import open_clip
    from open_clip import zero_shot_metadata

    templates = getattr(zero_shot_metadata, TEMPLATES)
    with torch.no_grad():  # build_zero_shot_classifier returns (D, C) unit columns
        classifier = open_clip.build_zero_shot_classifier(model, tokenizer, class_names, templates,
                                                          num_classes_per_batch=10, device="cpu")
    return classifier.T.contiguous().float()


def _to_pair(size: Any) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


# ---------------------------------------------------------------------------------------------
# timm


class Timm:
    weights_name = ""

    def reference(self, spec: Spec) -> dict[str, Any]:
        import timm

        if not timm.is_model(spec.name):
            raise ArgumentError(f"timm has no model {spec.name!r}; see timm.list_models().")
        return {}

    def load(self, ref: BackboneRef, path: Path) -> Backbone:
        import timm

        model = timm.create_model(ref.name, pretrained=False)
        model.load_state_dict(_state_dict(path), strict=True)
        model.reset_classifier(0)  # the pooled features, without the library's classifier
        cfg = model.pretrained_cfg
        return Backbone(frozen(model), int(model.num_features), _to_pair(tuple(cfg["input_size"][1:])),
                        tuple(cfg["mean"]), tuple(cfg["std"]))


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A weights file as tensors: safetensors, or a torch file read with weights_only=True (never unpickled)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


# ---------------------------------------------------------------------------------------------
# flashdd-zoo (a labeler folder or a training checkpoint: a ResNet whose fc is dropped)


class Zoo:
    weights_name = "model.safetensors"

    def reference(self, spec: Spec) -> dict[str, Any]:
        net, inp = _zoo_network(spec.path)
        return {"input": inp, "architecture": net.arch}

    def load(self, ref: BackboneRef, path: Path) -> Backbone:
        net, inp = _zoo_network(path.parent)
        if net.arch != ref.extra.get("architecture", net.arch):
            raise ArtifactError(f"{path.parent} holds another architecture than the projector's backbone.")
        if not isinstance(getattr(net, "fc", None), nn.Linear):
            raise ArgumentError(f"{path.parent} is not a single network with a classifier (fc) to drop; "
                                "give a teacher or pruned labeler, or a training checkpoint.")
        dim = net.fc.in_features
        net.fc = nn.Identity()
        return Backbone(frozen(net), dim, tuple(inp["size"]), tuple(inp["mean"]), tuple(inp["std"]))


def _zoo_network(folder: Path) -> tuple[nn.Module, dict[str, Any]]:
    from ..artifact.config import CONFIG
    from ..data import resolve_dataset
    from ..zoo.checkpoints import is_checkpoint, load_checkpoint

    if (folder / CONFIG).is_file():
        from ..loaders import load_local_labeler

        labeler = load_local_labeler(folder)
        inp = labeler.config.input
        return labeler.net, {"size": list(inp.size), "mean": list(inp.mean), "std": list(inp.std)}
    if is_checkpoint(folder):
        net, meta = load_checkpoint(folder)
        if "input" in meta:
            return net, meta["input"]
        missing = f"{folder} does not record its input size and normalisation"
        if "dataset" not in meta:  # a chain member written before checkpoints recorded their input
            raise ArtifactError(f"{missing}, nor its dataset; rebuild it with this version (checkpoints now record both).")
        try:  # a checkpoint written before checkpoints recorded their input: ask its dataset
            return net, resolve_dataset(meta["dataset"], need_files=False).input_json()
        except DataError as e:
            raise ArtifactError(f"{missing}, and its dataset cannot tell them ({e}); make that dataset available "
                                "again, or retrain it with this version (checkpoints now record both).") from e
    raise ArgumentError(f"{folder} is neither a flashdd-zoo labeler folder nor a training checkpoint folder.")


LIBRARY = {"open_clip": OpenClip(), "timm": Timm(), "flashdd-zoo": Zoo()}
