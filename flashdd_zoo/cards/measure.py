"""Numbers for cards, measured by code: parameters, FLOPs per image, bytes on disk."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

FLOPS_NOTE = (
    "FLOPs from torch.utils.flop_counter (conv and matmul only; 1 multiply-add = 2 FLOPs; "
    "BatchNorm, ReLU and pooling not counted)"
)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def gflops_per_image(model: nn.Module, resolution: int) -> float:
    """Forward FLOPs of one image at the given resolution, in GFLOPs."""
    param = next(model.parameters())
    x = torch.zeros(1, 3, resolution, resolution, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    model.train(was_training)
    return counter.get_total_flops() / 1e9


def file_bytes(path: Path) -> int:
    return Path(path).stat().st_size
