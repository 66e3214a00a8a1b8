"""RDED distillation (Sun et al., CVPR 2024, "On the Diversity and Realism of Distilled Dataset").

Per class: draw `mipc` real images uniformly at random, cut K random square crops of each at
1/N of the resolution, score each crop's realism with the observer teacher (-CE against the true
class, crop zero-padded to full size as RDED does), keep each image's best crop, keep the best
N^2 x IPC crops, and stitch N x N of them into every distilled image.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..atomic import atomic_dir
from ..data.images import ImageSet, load_split, normalize
from ..data.registry import Dataset
from .augment import random_resized_crop
from .distilled import write_class_images, write_description, write_distilled
from .runtime import autocast, generator, pick_device, progress, world


@dataclass(frozen=True)
class RDEDConfig:
    ipc: int = 10
    mipc: int = 300  # pre-selected real images per class
    num_crop: int = 5  # K crops scored per image
    factor: int | None = None  # N crops per side; None: 1 up to 64 px, else 2 (RDED's N = 4 crops)
    seed: int = 0

    def crops_per_side(self, resolution: int) -> int:
        return self.factor if self.factor is not None else (1 if resolution <= 64 else 2)


def default_factor(resolution: int) -> int:
    return RDEDConfig().crops_per_side(resolution)


@torch.no_grad()
def rded_class(
    observer: nn.Module, images: torch.Tensor, label: int, cfg: RDEDConfig, dataset: Dataset,
    g: torch.Generator,
) -> torch.Tensor:
    """Distil one class: uint8 real images (M, 3, H, W) -> uint8 distilled images (IPC, 3, H, W)."""
    res, n = dataset.resolution, cfg.crops_per_side(dataset.resolution)
    crop = res // n
    x = images.float().div_(255.0)
    crops = torch.stack([
        random_resized_crop(x, crop, ratio=(1.0, 1.0), flip=False, g=g) for _ in range(cfg.num_crop)
    ], 1)  # (M, K, 3, crop, crop) in [0, 1]
    flat = crops.flatten(0, 1)
    pad = (res - crop) // 2, res - crop - (res - crop) // 2
    scored = F.pad(normalize(flat, dataset.spec.mean, dataset.spec.std), (*pad, *pad))
    ce = torch.cat([_ce(observer, chunk, label) for chunk in scored.split(512)])
    ce = ce.view(len(images), cfg.num_crop)
    best_ce, best_k = ce.min(1)
    best = crops[torch.arange(len(images), device=crops.device), best_k]
    keep = best[best_ce.argsort()[: cfg.ipc * n * n]]
    return _stitch(keep, cfg.ipc, n, res)


def _ce(observer: nn.Module, x: torch.Tensor, label: int) -> torch.Tensor:
    with autocast(x.device):
        logits = observer(x).float()
    target = torch.full((len(x),), label, device=x.device)
    return F.cross_entropy(logits, target, reduction="none")


def _stitch(crops: torch.Tensor, ipc: int, n: int, res: int) -> torch.Tensor:
    """Crop ranked r goes to image r mod IPC, tile r // IPC (RDED's order); tiles fill res x res."""
    if n == 1:
        out = F.interpolate(crops, size=(res, res), mode="bilinear", antialias=True) if crops.shape[-1] != res else crops
        return (out * 255).round().clamp(0, 255).to(torch.uint8)
    edges = [res * i // n for i in range(n + 1)]
    out = torch.zeros(ipc, 3, res, res, device=crops.device)
    for k in range(n * n):
        r, c = divmod(k, n)
        h, w = edges[r + 1] - edges[r], edges[c + 1] - edges[c]
        tile = crops[k * ipc : (k + 1) * ipc]
        if tile.shape[-2:] != (h, w):
            tile = F.interpolate(tile, size=(h, w), mode="bilinear", antialias=True)
        out[: len(tile), :, edges[r] : edges[r + 1], edges[c] : edges[c + 1]] = tile
    return (out * 255).round().clamp(0, 255).to(torch.uint8)


def distill_rded(
    dataset: Dataset,
    observer: nn.Module,
    out_dir: str | Path,
    cfg: RDEDConfig = RDEDConfig(),
    observer_name: str = "teacher",
    device: str | None = None,
    train: ImageSet | None = None,
    image_format: str = "png",
    show_progress: bool = True,
) -> tuple[ImageSet, Path]:
    """Distil every class with RDED and write D_S. Under torchrun each rank takes every world-th
    class and writes its class folders into one staging folder that rank 0 then completes and
    swaps in; each rank returns the images of its own classes."""
    dev = pick_device(device)
    observer = observer.eval().to(dev)
    rank, size = world()
    classes = list(range(dataset.num_classes))[rank::size]
    outs, labels = [], []
    t0 = time.perf_counter()
    with progress(not show_progress) as bar:
        task = bar.add_task(f"RDED {dataset.name} IPC {cfg.ipc}", total=len(classes), status="")
        for c in classes:
            real = _class_images(dataset, train, c, cfg)
            g = generator(dev, cfg.seed * 1_000_003 + c)
            outs.append(rded_class(observer, real.to(dev), c, cfg, dataset, g).cpu())
            labels += [c] * len(outs[-1])
            bar.update(task, advance=1)
    res = dataset.resolution
    images = torch.cat(outs) if outs else torch.empty(0, 3, res, res, dtype=torch.uint8)  # more ranks than classes
    data = ImageSet(images, torch.tensor(labels, dtype=torch.int64), list(dataset.class_names))
    description = {"method": "rded", "dataset": dataset.name, "ipc": cfg.ipc, "resolution": dataset.resolution,
                   **{k: v for k, v in asdict(cfg).items() if k != "ipc"},
                   "factor": cfg.crops_per_side(dataset.resolution), "observer": observer_name,
                   "seconds": time.perf_counter() - t0}
    if size == 1:
        return data, write_distilled(Path(out_dir), data, description, image_format)
    return data, _write_from_ranks(Path(out_dir), data, description, image_format, rank)


def _write_from_ranks(out_dir: Path, data: ImageSet, description: dict, image_format: str, rank: int) -> Path:
    """Every rank writes its classes into one staging folder (a filesystem all ranks share);
    rank 0 adds distilled.json and swaps the complete set in atomically."""
    staging = out_dir.with_name(f".{out_dir.name}.ranks")
    if rank == 0:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    dist.barrier()
    write_class_images(staging, data, image_format)
    dist.barrier()
    if rank == 0:
        with atomic_dir(out_dir) as tmp:
            for class_dir in staging.iterdir():
                os.rename(class_dir, tmp / class_dir.name)
            write_description(tmp, description)
        staging.rmdir()
    dist.barrier()
    return out_dir


def _class_images(dataset: Dataset, train: ImageSet | None, c: int, cfg: RDEDConfig) -> torch.Tensor:
    """`mipc` uniformly random real images of class c (from memory when given, else from disk)."""
    if train is None:
        return load_split(dataset, dataset.spec.train_split, max_per_class=cfg.mipc, classes=[c], seed=cfg.seed).images
    idx = (train.labels == c).nonzero().flatten()
    g = torch.Generator().manual_seed(cfg.seed * 7919 + c)
    return train.images[idx[torch.randperm(len(idx), generator=g)[: cfg.mipc]]]
