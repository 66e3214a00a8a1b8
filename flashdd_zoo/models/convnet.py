"""ConvNet-Dn (the DC/DM/DD-Ranking ConvNet) with explicit per-layer widths, rebuilt from pure-JSON config.

Each of the `depth` blocks is conv 3x3 (padding 1, with bias) -> norm -> ReLU -> 2x2 average
pooling; one linear layer reads the flattened last feature map. The classic network is width 128
at every layer with instance normalisation (affine), so ConvNet-D3 at 32 px has 320,010
parameters for 10 classes. Widths are free per layer, so a network pruned by torch-pruning maps
back onto this one by reading its widths.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ArtifactError
from .architecture import Architecture

NAME = "convnet"
FULL_WIDTH = 128
NORMS = ("instance", "batch", "none")
DEPTHS = (3, 4, 5)  # the named variants convnet-d3 .. convnet-d5; any depth >= 1 validates


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":  # affine, no running statistics: DC's GroupNorm(C, C) computes the same
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


class ConvBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, norm: str):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.norm = _norm(norm, out_ch)
        # not in place: instance norm's output is a view, and an in-place ReLU on it rewrites the autograd
        # node torch-pruning's tracer recorded for the norm, which then drops out of the pruning groups
        self.relu = nn.ReLU()
        self.pool = nn.AvgPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.norm(self.conv(x))))


class ConvNet(nn.Module):
    def __init__(self, arch: dict[str, Any]):
        super().__init__()
        arch = validate_convnet_arch(arch)
        self.arch = arch
        widths, in_ch = arch["widths"], 3
        blocks = []
        for w in widths:
            blocks.append(ConvBlock(in_ch, w, arch["norm"]))
            in_ch = w
        self.layers = nn.Sequential(*blocks)
        side = feature_side(arch)
        self.fc = nn.Linear(in_ch * side * side, arch["num_classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.layers(x), 1))


def feature_side(arch: dict[str, Any]) -> int:
    """The side of the last feature map: each block halves it (floor, as AvgPool2d does)."""
    side = arch["input_size"]
    for _ in range(arch["depth"]):
        side //= 2
    return side


def convnet_arch(num_classes: int, resolution: int, depth: int = 3, width: int = FULL_WIDTH,
                 norm: str = "instance") -> dict[str, Any]:
    """ConvNet-D`depth` at `resolution` px, every layer `width` channels."""
    return validate_convnet_arch({"name": NAME, "depth": depth, "widths": [width] * depth, "norm": norm,
                                  "num_classes": num_classes, "input_size": resolution})


def validate_convnet_arch(arch: dict[str, Any]) -> dict[str, Any]:
    """Check a ConvNet architecture from config.json; raise ArtifactError naming the bad field."""
    try:
        widths, depth = arch["widths"], arch["depth"]
        ok_types = (arch["name"] == NAME and isinstance(depth, int) and isinstance(arch["input_size"], int)
                    and isinstance(widths, list) and all(isinstance(w, int) for w in widths)
                    and isinstance(arch["num_classes"], int))
        norm = arch["norm"]
    except (KeyError, TypeError) as e:
        raise ArtifactError(f"convnet architecture is missing or has a malformed field {e}: {arch}") from e
    if not ok_types:
        raise ArtifactError(f"convnet architecture fields must be integers (depth, input_size, num_classes, widths "
                            f"a list of integers) with name {NAME!r}; got {arch}")
    if norm not in NORMS:
        raise ArtifactError(f"unknown convnet norm {norm!r}; expected one of {NORMS}.")
    if depth < 1 or len(widths) != depth or min(widths) < 1 or arch["num_classes"] < 1:
        raise ArtifactError(f"a convnet of depth {depth} needs {depth} positive widths and at least one class; "
                            f"got widths {widths}, {arch['num_classes']} classes.")
    if feature_side(arch) < 1:
        raise ArtifactError(f"a depth-{depth} convnet halves its input {depth} times: {arch['input_size']} px "
                            f"images are too small (at least {2 ** depth} px).")
    return arch


def read_convnet_arch(model: nn.Module) -> dict[str, Any]:
    """The architecture of a ConvNet module as it now is (e.g. after torch-pruning thinned it)."""
    arch = dict(model.arch)
    arch["widths"] = [block.conv.out_channels for block in model.layers]
    arch["num_classes"] = model.fc.out_features
    return validate_convnet_arch(arch)


class ConvNetArchitecture(Architecture):
    name = NAME
    short_name = NAME
    prunable = True

    def validate(self, arch: dict[str, Any]) -> dict[str, Any]:
        return validate_convnet_arch(arch)

    def build(self, arch: dict[str, Any]) -> nn.Module:
        return ConvNet(arch)

    def describe(self, arch: dict[str, Any]) -> str:
        return f"{self.artifact_prefix(arch)} ({arch['norm']} norm, {arch['input_size']} px)"

    def artifact_prefix(self, arch: dict[str, Any]) -> str:
        return f"{NAME}-d{arch['depth']}"

    def named_widths(self, arch: dict[str, Any]) -> list[tuple[str, int]]:
        return [(f"layers.{i}.conv", w) for i, w in enumerate(arch["widths"])]

    def variants(self) -> dict[str, dict[str, Any]]:
        return {f"{NAME}-d{d}": {"depth": d} for d in DEPTHS}

    def full(self, num_classes: int, stem: str | None = None, resolution: int | None = None,
             scale: float = 1.0, depth: int = DEPTHS[0]) -> dict[str, Any]:
        if resolution is None:
            raise ArtifactError(f"a {NAME}'s linear layer depends on the image size: give the resolution.")
        width = max(8, int(round(FULL_WIDTH * scale / 8)) * 8)
        return convnet_arch(num_classes, resolution, depth, width)

    def input_signature(self, arch: dict[str, Any]) -> Any:
        return ("input_size", arch["input_size"])

    def read_arch(self, model: nn.Module) -> dict[str, Any]:
        return read_convnet_arch(model)

    def classifier(self, model: nn.Module) -> nn.Module:
        return model.fc


CONVNET = ConvNetArchitecture()
