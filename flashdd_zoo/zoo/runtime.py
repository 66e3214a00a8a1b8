"""Device, precision, seeding, progress and accuracy helpers shared by every training stage."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch
import torch.distributed as dist
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from ..data.images import ImageSet, normalize


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    if dist.is_initialized() and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device):
    """bf16 autocast on CUDA (tensor cores); plain fp32 on CPU, where bf16 is slower."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return world()[0] == 0


def progress(disable: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        disable=disable or not is_main_process(), transient=False,
    )


@torch.no_grad()
def top1_accuracy(
    model: nn.Module, data: ImageSet, mean, std, device: torch.device, batch_size: int = 500
) -> float:
    """Top-1 (%) of `model` on an in-memory image set; sharded across ranks under torchrun."""
    was_training = model.training
    model.eval()
    rank, size = world()
    correct = torch.zeros((), device=device)
    for start in range(rank * batch_size, len(data), batch_size * size):
        images = data.images[start : start + batch_size].to(device, non_blocking=True)
        labels = data.labels[start : start + batch_size].to(device)
        x = normalize(images, mean, std)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device):
            logits = model(x)
        correct += (logits.argmax(1) == labels).sum()
    if size > 1:
        dist.all_reduce(correct)
    model.train(was_training)
    return 100.0 * float(correct) / len(data)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv/linear weights only (as RDED and common practice do)."""
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def init_distributed(device: str | None = None) -> None:
    """Join the process group torchrun describes (NCCL on GPUs, gloo on CPU or with device 'cpu');
    no-op otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    if torch.cuda.is_available() and not (device and torch.device(device).type == "cpu"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
