"""ResNet-18 with explicit per-layer widths, rebuilt from pure-JSON config.

Parameter names match torchvision's ResNet, so torchvision state dicts load as they are and a
network pruned by torch-pruning (a torchvision ResNet with thinner layers) maps onto this one by
reading its widths.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ArtifactError
from .architecture import Architecture

NAME = "resnet18"
FULL_STAGE_WIDTHS = (64, 128, 256, 512)
STEMS = ("cifar", "imagenet")


class BasicBlock(nn.Module):
    """torchvision's BasicBlock, but the inner width (conv1 out) is free of the output width."""

    def __init__(self, in_ch: int, inner: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, inner, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(inner, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet with the ImageNet stem (7x7/2 + max-pool) or the CIFAR stem (3x3/1, no pool)."""

    def __init__(self, arch: dict[str, Any]):
        super().__init__()
        arch = validate_arch(arch)
        w = arch["widths"]
        self.arch = arch
        if arch["stem"] == "imagenet":
            self.conv1 = nn.Conv2d(3, w["stem"], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(3, w["stem"], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(w["stem"])
        self.relu = nn.ReLU(inplace=True)
        in_ch = w["stem"]
        for s, (out_ch, inners) in enumerate(zip(w["stages"], w["inner"])):
            blocks = []
            for b, inner in enumerate(inners):
                blocks.append(BasicBlock(in_ch, inner, out_ch, 2 if (s > 0 and b == 0) else 1))
                in_ch = out_ch
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, arch["num_classes"])
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation, so a fresh student trains as RDED's does
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18_arch(num_classes: int, stem: str, scale: float = 1.0) -> dict[str, Any]:
    """The unpruned ResNet-18 configuration (optionally uniformly thinner by `scale`)."""
    stages = [max(8, int(round(c * scale / 8)) * 8) for c in FULL_STAGE_WIDTHS]
    return {
        "name": NAME,
        "stem": stem,
        "num_classes": num_classes,
        "widths": {"stem": stages[0], "stages": stages, "inner": [[c, c] for c in stages]},
    }


def validate_arch(arch: dict[str, Any]) -> dict[str, Any]:
    """Check an architecture dict from config.json; raise ArtifactError naming the bad field."""
    try:
        if arch["name"] != NAME:
            raise ArtifactError(f"architecture {arch['name']!r} is not a {NAME}.")
        if arch["stem"] not in STEMS:
            raise ArtifactError(f"unknown stem {arch['stem']!r}; expected one of {STEMS}.")
        w = arch["widths"]
        ok = (
            isinstance(w["stem"], int)
            and len(w["stages"]) == 4
            and len(w["inner"]) == 4
            and all(len(blocks) == 2 for blocks in w["inner"])
            and all(isinstance(c, int) and c > 0 for c in [w["stem"], *w["stages"], *sum(w["inner"], [])])
            and int(arch["num_classes"]) > 0
        )
    except (KeyError, TypeError) as e:
        raise ArtifactError(f"architecture config is missing or malformed field {e}: {arch}") from e
    if not ok:
        raise ArtifactError(
            "architecture widths must be positive integers: stem, 4 stage widths and 4x2 inner "
            f"widths; got {arch.get('widths')}"
        )
    return arch


def arch_of(model: nn.Module, num_classes: int | None = None) -> dict[str, Any]:
    """Read the architecture (stem and every width) off a torchvision-style ResNet-18 module."""
    stem = "imagenet" if model.conv1.kernel_size == (7, 7) else "cifar"
    stages, inner = [], []
    for s in range(1, 5):
        layer = getattr(model, f"layer{s}")
        stages.append(layer[-1].conv2.out_channels)
        inner.append([block.conv1.out_channels for block in layer])
    return validate_arch(
        {
            "name": NAME,
            "stem": stem,
            "num_classes": num_classes or model.fc.out_features,
            "widths": {"stem": model.conv1.out_channels, "stages": stages, "inner": inner},
        }
    )


def load_torchvision_resnet18(path: str, num_classes: int = 1000) -> ResNet:
    """Load torchvision's ResNet-18 ImageNet weights (a local .pth state dict) into our ResNet.

    The one non-safetensors read the project allows: a plain state dict, read with
    weights_only=True so no code can run.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or "fc.weight" not in state:
        raise ArtifactError(f"{path} is not a torchvision ResNet-18 state dict (no 'fc.weight').")
    model = ResNet(resnet18_arch(state["fc.weight"].shape[0], "imagenet"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ArtifactError(
            f"{path} does not match ResNet-18: missing {missing[:5]}, unexpected {unexpected[:5]}."
        )
    if num_classes != model.fc.out_features:
        raise ArtifactError(f"{path} has {model.fc.out_features} classes, expected {num_classes}.")
    return model


class ResNet18Architecture(Architecture):
    name = short_name = NAME
    prunable = stackable = True

    def validate(self, arch: dict[str, Any]) -> dict[str, Any]:
        return validate_arch(arch)

    def build(self, arch: dict[str, Any]) -> nn.Module:
        return ResNet(arch)

    def describe(self, arch: dict[str, Any]) -> str:
        return f"{NAME} ({arch['stem']} stem)"

    def named_widths(self, arch: dict[str, Any]) -> list[tuple[str, int]]:
        w = arch["widths"]
        named = [("stem", w["stem"])]
        named += [(f"layer{s + 1}", c) for s, c in enumerate(w["stages"])]
        named += [(f"layer{s + 1}.{b}.conv1", c) for s, blocks in enumerate(w["inner"]) for b, c in enumerate(blocks)]
        return named

    def full(self, num_classes: int, stem: str | None = None, resolution: int | None = None,
             scale: float = 1.0, **variant: Any) -> dict[str, Any]:
        if stem is None:
            raise ArtifactError(f"a {NAME} needs its stem: one of {STEMS}.")
        return resnet18_arch(num_classes, stem, scale)

    def input_signature(self, arch: dict[str, Any]) -> Any:
        return ("stem", arch["stem"])

    def read_arch(self, model: nn.Module) -> dict[str, Any]:
        return arch_of(model)

    def classifier(self, model: nn.Module) -> nn.Module:
        return model.fc


RESNET18 = ResNet18Architecture()
