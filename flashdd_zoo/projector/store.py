"""A projector folder's own files: the adapter in peft's layout, and the head where it is stored.

peft users load the adapter with `PeftModel.from_pretrained(base, folder)`; its
`base_model_name_or_path` is the backbone pin (library:name@sha256:...), checked against config.json.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import ArtifactError, ArtifactMismatchError
from ..exporters.weights import read_weights_header
from ..models.projector import HEAD_STORED
from .backbone import BackboneRef, resolve_weights
from .build import base_network, load_backbone, text_head
from .libraries import LIBRARY
from .network import HEAD, ProjectorNet, check_ranks

if TYPE_CHECKING:
    from ..artifact.config import LabelerConfig

ADAPTER_CONFIG, ADAPTER_WEIGHTS, HEAD_WEIGHTS = "adapter_config.json", "adapter_model.safetensors", "head.safetensors"


def stored_files(arch: dict) -> tuple[str, ...]:
    return (ADAPTER_CONFIG, ADAPTER_WEIGHTS, *((HEAD_WEIGHTS,) if arch["head"] == HEAD_STORED else ()))


def save_projector(peft_model: nn.Module, folder: Path, head: torch.Tensor | None) -> None:
    """The adapter as peft writes it (its README.md is replaced by the card later), and the base head."""
    peft_model.save_pretrained(str(folder))
    if head is not None:
        save_file({f"{HEAD}.weight": head.detach().cpu().contiguous()}, str(folder / HEAD_WEIGHTS))


def rebuild(config: LabelerConfig, folder: Path, backbone: str | Path | None = None) -> ProjectorNet:
    """Backbone (hash-checked) + head + adapter, merged into one float32 network on the CPU."""
    arch = config.architecture
    ref = BackboneRef.from_json(arch["backbone"])
    check_adapter_pin(ref, folder)
    weights = resolve_weights(ref, backbone, LIBRARY[ref.library].weights_name)
    ref, bb = load_backbone(arch, weights)
    head = stored_head(folder, config) if arch["head"] == HEAD_STORED else text_head(bb, list(config.class_names))
    inp = config.input
    net = base_network(bb, head, arch["logit_scale"], inp.size, inp.mean, inp.std)
    check_ranks(net, arch["lora"]["conv_rank"], arch["lora"]["head_rank"])
    return attach_adapter(net, folder).merge_and_unload().eval()


def check_adapter_pin(ref: BackboneRef, folder: Path) -> None:
    """adapter_config.json must name the backbone config.json pins: an adapter trained on other weights is refused."""
    try:
        pin = json.loads((folder / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{folder / ADAPTER_CONFIG} is missing or not JSON ({e}); export the projector again.") from e
    if pin != ref.pin:
        raise ArtifactMismatchError(f"the adapter in {folder} was trained on backbone {pin!r}, but config.json pins "
                                    f"{ref.pin!r}: the adapter belongs to another backbone. Use the adapter and "
                                    "config.json of one export.")


def stored_head(folder: Path, config: LabelerConfig) -> torch.Tensor:
    head = load_file(str(folder / HEAD_WEIGHTS)).get(f"{HEAD}.weight")
    want = (config.num_classes, config.architecture["feature_dim"])
    if head is None or tuple(head.shape) != want:
        raise ArtifactMismatchError(f"{folder / HEAD_WEIGHTS} holds no {want} head weight for config.json's "
                                    f"{config.num_classes} classes; export the projector again.")
    return head.float()


def attach_adapter(net: ProjectorNet, folder: Path) -> nn.Module:
    """PeftModel.from_pretrained, after checking the adapter's tensors are exactly the ones this
    backbone's layers take (peft itself only warns about missing keys)."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from peft.utils import get_peft_model_state_dict

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # peft warns that our module is not a transformers model
            peft_model = get_peft_model(_meta_copy(net), LoraConfig.from_pretrained(str(folder)))
        want = {k: tuple(v.shape) for k, v in get_peft_model_state_dict(peft_model).items()}
    except ValueError as e:  # peft refuses target modules this backbone lacks, or has as unsupported layers
        want = {"(adapter_config.json's target modules)": str(e).splitlines()[0][:120]}
    found = read_weights_header(folder / ADAPTER_WEIGHTS).shapes
    if want != found:
        odd = sorted(set(want.items()) ^ set(found.items()), key=str)[:3]
        raise ArtifactMismatchError(f"{folder / ADAPTER_WEIGHTS} does not fit this backbone's layers (differing "
                                    f"tensors: {odd}); the adapter was trained on another backbone.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft warns that our module is not a transformers model
        return PeftModel.from_pretrained(net, str(folder), is_trainable=False)


def _meta_copy(net: ProjectorNet) -> nn.Module:
    import copy

    return copy.deepcopy(net).to("meta")
