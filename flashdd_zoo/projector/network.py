"""The projector network (HeLIO): frozen encoder, cosine head, and the LoRA adapter peft puts on them."""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ArgumentError

HEAD = "head"  # the head's module name, so LoRA ranks and stored tensors can name it


class InputAdapter(nn.Module):
    """Images normalised for the labeler (dataset mean/std, dataset size) -> what the backbone takes.

    Undoing one normalisation and applying the other is one per-channel affine map, so both are
    folded into `scale` and `shift`; buffers are not persistent because the config recomputes them.
    """

    def __init__(self, size: tuple[int, int], mean, std, backbone_size: tuple[int, int], backbone_mean, backbone_std):
        super().__init__()
        m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
        bm, bs = torch.tensor(backbone_mean).view(1, -1, 1, 1), torch.tensor(backbone_std).view(1, -1, 1, 1)
        self.register_buffer("scale", s / bs, persistent=False)
        self.register_buffer("shift", (m - bm) / bs, persistent=False)
        self.resize = tuple(backbone_size) != tuple(size)
        self.backbone_size = tuple(int(v) for v in backbone_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize:  # before the affine map: resizing commutes with it, and fewer pixels are touched
            x = F.interpolate(x, size=self.backbone_size, mode="bilinear", align_corners=False)
        return x * self.scale + self.shift


class ProjectorNet(nn.Module):
    """logits = logit_scale * head(normalise(encoder(adapt(x)))): CLIP's zero-shot classifier shape."""

    def __init__(self, adapt: InputAdapter, encoder: nn.Module, head_weight: torch.Tensor, logit_scale: float):
        super().__init__()
        self.adapt = adapt
        self.encoder = encoder
        self.head = nn.Linear(head_weight.shape[1], head_weight.shape[0], bias=False)
        with torch.no_grad():
            self.head.weight.copy_(head_weight)
        self.logit_scale = float(logit_scale)

    def train(self, mode: bool = True) -> "ProjectorNet":
        """The encoder is frozen: it stays in eval mode (fixed BatchNorm statistics) whatever a caller
        sets; a batch in train mode would otherwise overwrite the foundation model's running stats."""
        super().train(mode)
        self.encoder.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's embedding of labeler-normalised images (what HeLIO's image update matches)."""
        return self.encoder(self.adapt(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.normalize(self.features(x), dim=-1)) * self.logit_scale


# ---------------------------------------------------------------------------------------------
# LoRA targets and ranks (peft does the rest)


def lora_targets(net: ProjectorNet) -> list[str]:
    """Every plain convolution of the encoder, and the head. Grouped convolutions are left frozen:
    a rank-r update of a grouped conv is not what HeLIO's encoder (CLIP RN50) has."""
    convs = [f"encoder.{n}" for n, m in net.encoder.named_modules() if isinstance(m, nn.Conv2d) and m.groups == 1]
    return [*convs, HEAD]


def max_rank(module: nn.Module) -> int:
    """The largest useful LoRA rank of a layer: B @ A reaches every update at min(fan_in, fan_out)."""
    if isinstance(module, nn.Conv2d):
        return min(module.in_channels * module.kernel_size[0] * module.kernel_size[1], module.out_channels)
    return min(module.in_features, module.out_features)


def check_ranks(net: ProjectorNet, conv_rank: int, head_rank: int) -> None:
    """Refuse a rank above what a targeted layer allows, naming the layer and the largest rank that fits."""
    for name in lora_targets(net):
        rank, option = (head_rank, "--head-rank") if name == HEAD else (conv_rank, "--conv-rank")
        limit = max_rank(net.get_submodule(name))
        if not 1 <= rank <= limit:
            raise ArgumentError(f"LoRA rank {rank} does not fit layer {name!r} ({_shape(net.get_submodule(name))}): "
                                f"its largest rank is {limit}. Give {option} between 1 and {limit}.")


def _shape(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        return f"Conv2d {module.in_channels}->{module.out_channels}, kernel {tuple(module.kernel_size)}"
    return f"Linear {module.in_features}->{module.out_features}"


def lora_config(net: ProjectorNet, conv_rank: int, head_rank: int) -> Any:
    """peft's LoraConfig: rank `conv_rank` on the encoder's convolutions, `head_rank` on the head,
    alpha = rank (scaling 1)."""
    from peft import LoraConfig

    check_ranks(net, conv_rank, head_rank)
    # a regex is matched against whole module names; a list would also catch any nested '...head'
    targets = "|".join(re.escape(name) for name in lora_targets(net))
    return LoraConfig(r=conv_rank, lora_alpha=conv_rank, target_modules=targets, lora_dropout=0.0,
                      bias="none", rank_pattern={f"^{HEAD}$": head_rank}, alpha_pattern={f"^{HEAD}$": head_rank},
                      init_lora_weights=True)
