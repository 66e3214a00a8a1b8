"""Batched augmentations that run where the images are (GPU when there is one).

Each sample draws its own parameters (as per-image torchvision transforms would), but the whole
batch is transformed in one kernel call, so an H100 is not starved by a CPU data loader.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, lo: float, hi: float, g: torch.Generator | None, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def random_resized_crop(
    x: torch.Tensor,
    size: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
    g: torch.Generator | None = None,
) -> torch.Tensor:
    """RandomResizedCrop (+ horizontal flip) of float images (N, C, H, W) to size x size.

    Area fraction and log aspect ratio are drawn per sample as in torchvision; a crop that would
    leave the image is shrunk to fit instead of redrawn.
    """
    n, dev = x.shape[0], x.device
    area = _uniform(n, scale[0], scale[1], g, dev)
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), g, dev)
    w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)
    h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
    cx = (torch.rand(n, generator=g, device=dev) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, generator=g, device=dev) * 2 - 1) * (1 - h)
    sign = torch.where(torch.rand(n, generator=g, device=dev) < 0.5, -1.0, 1.0) if flip else 1.0
    theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = w * sign, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_translate_flip(x: torch.Tensor, pad: int = 4, g: torch.Generator | None = None) -> torch.Tensor:
    """CIFAR's RandomCrop(padding=pad) + horizontal flip: integer shifts with zero fill."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None])  # (n, h)
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None])  # (n, w)
    flip = torch.rand(n, generator=g, device=x.device) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    out = padded.gather(2, rows[:, None, :, None].expand(-1, x.shape[1], -1, padded.shape[3]))
    return out.gather(3, cols[:, None, None, :].expand(-1, x.shape[1], h, -1))


def shuffle_patches(x: torch.Tensor, factor: int, g: torch.Generator | None = None) -> torch.Tensor:
    """RDED's ShufflePatches: cut each image into `factor` strips along the width and shuffle
    them, then the same along the height; each image draws its own permutations."""
    if factor <= 1:
        return x
    return _shuffle_strips(_shuffle_strips(x, factor, 3, g), factor, 2, g)


def _shuffle_strips(x: torch.Tensor, factor: int, dim: int, g: torch.Generator | None) -> torch.Tensor:
    size = x.shape[dim]
    if size % factor:
        raise ValueError(f"ShufflePatches needs a size divisible by {factor}, got {size}")
    n = x.shape[0]
    perm = torch.rand(n, factor, generator=g, device=x.device).argsort(1)
    strips = x.unflatten(dim, (factor, size // factor))  # strip index at `dim`
    shape = [n] + [1] * (strips.dim() - 1)
    shape[dim] = factor
    index = perm.view(shape).expand(*strips.shape[:dim], factor, *strips.shape[dim + 1 :])
    return strips.gather(dim, index).flatten(dim, dim + 1)


def cutmix(
    x: torch.Tensor, alpha: float = 1.0, g: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix as RDED applies it: one Beta(alpha, alpha) box per batch, pasted from a permutation.

    Returns (mixed images, permutation, lambda = share of each image left unpasted); soft labels
    come from the labeler on the mixed images, the permutation and lambda serve a CE term.
    """
    n, _, h, w = x.shape
    lam = _beta(alpha, g, x.device)
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy = int(torch.randint(0, h, (1,), generator=g, device=x.device))
    cx = int(torch.randint(0, w, (1,), generator=g, device=x.device))
    y1, y2 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x1, x2 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    perm = torch.randperm(n, generator=g, device=x.device)
    out = x.clone()
    out[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]
    return out, perm, 1.0 - (y2 - y1) * (x2 - x1) / (h * w)


def _beta(alpha: float, g: torch.Generator | None, device) -> float:
    """Beta(alpha, alpha) from a (seeded) generator, via two Gamma draws (uniform when alpha = 1)."""
    if alpha == 1.0:
        return float(torch.rand(1, generator=g, device=device))
    a = torch._standard_gamma(torch.full((2,), alpha, device=device), generator=g)
    return float(a[0] / a.sum())
