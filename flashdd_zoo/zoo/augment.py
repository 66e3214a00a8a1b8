"""Batched augmentations that run where the images are (GPU when there is one).

Each sample draws its own parameters (as per-image torchvision transforms would), but the whole
batch is transformed in one kernel call, so an H100 is not starved by a CPU data loader.
Each augmentation is a draw (its random parameters, from a seeded generator) and an apply; stored
parameters applied again give the identical batch (zoo/relabel.py replays them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _uniform(n: int, lo: float, hi: float, g: torch.Generator | None, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


@dataclass(frozen=True)
class ViewRecipe:
    """One training view: ShufflePatches(factor) -> RandomResizedCrop(scale, ratio) + flip -> CutMix(alpha).

    `factor` 1 skips ShufflePatches; `cutmix_alpha` None skips CutMix."""

    factor: int = 1
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    cutmix_alpha: float | None = 1.0

    @classmethod
    def rded(cls, factor: int, cutmix_alpha: float | None = 1.0) -> "ViewRecipe":
        """The downstream protocol's view (zoo/evaluate.py): crops of at least 1/factor of the area."""
        return cls(factor=factor, scale=(1.0 / factor, 1.0), cutmix_alpha=cutmix_alpha)


@dataclass
class CropParams:
    """Per-image RandomResizedCrop boxes (width, height, centre in [-1, 1] grid units) and flips."""

    w: torch.Tensor
    h: torch.Tensor
    cx: torch.Tensor
    cy: torch.Tensor
    flip: torch.Tensor | None  # bool; None: no flip was drawn


@dataclass
class MixParams:
    """One CutMix box per batch (rows y1:y2, columns x1:x2) pasted from images[perm]."""

    box: tuple[int, int, int, int]
    perm: torch.Tensor


@dataclass
class ViewParams:
    """Every random draw of one batch's view; applying them again gives the identical batch."""

    shuffle: tuple[torch.Tensor, torch.Tensor] | None  # (width, height) strip permutations per image
    crop: CropParams
    mix: MixParams | None


def draw_crop(n: int, scale: tuple[float, float], ratio: tuple[float, float], flip: bool,
              g: torch.Generator | None, device) -> CropParams:
    """Area fraction and log aspect ratio per sample as in torchvision; a crop that would leave the
    image is shrunk to fit instead of redrawn."""
    area = _uniform(n, scale[0], scale[1], g, device)
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), g, device)
    w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)
    h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
    cx = (torch.rand(n, generator=g, device=device) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, generator=g, device=device) * 2 - 1) * (1 - h)
    flips = torch.rand(n, generator=g, device=device) < 0.5 if flip else None
    return CropParams(w, h, cx, cy, flips)


def apply_crop(x: torch.Tensor, p: CropParams, size: int) -> torch.Tensor:
    n = x.shape[0]
    sign = torch.where(p.flip, -1.0, 1.0) if p.flip is not None else 1.0
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = p.w * sign, p.cx
    theta[:, 1, 1], theta[:, 1, 2] = p.h, p.cy
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_resized_crop(
    x: torch.Tensor,
    size: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
    g: torch.Generator | None = None,
) -> torch.Tensor:
    """RandomResizedCrop (+ horizontal flip) of float images (N, C, H, W) to size x size."""
    return apply_crop(x, draw_crop(x.shape[0], scale, ratio, flip, g, x.device), size)


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
    return apply_shuffle(x, draw_shuffle(x.shape[0], factor, g, x.device))


def draw_shuffle(n: int, factor: int, g: torch.Generator | None, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(width, height) strip permutations, (n, factor) each."""
    width = torch.rand(n, factor, generator=g, device=device).argsort(1)
    return width, torch.rand(n, factor, generator=g, device=device).argsort(1)


def apply_shuffle(x: torch.Tensor, perms: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return _shuffle_strips(_shuffle_strips(x, perms[0], 3), perms[1], 2)


def _shuffle_strips(x: torch.Tensor, perm: torch.Tensor, dim: int) -> torch.Tensor:
    size, (n, factor) = x.shape[dim], perm.shape
    if size % factor:
        raise ValueError(f"ShufflePatches needs a size divisible by {factor}, got {size}")
    strips = x.unflatten(dim, (factor, size // factor))  # strip index at `dim`
    shape = [n] + [1] * (strips.dim() - 1)
    shape[dim] = factor
    index = perm.long().view(shape).expand(*strips.shape[:dim], factor, *strips.shape[dim + 1 :])
    return strips.gather(dim, index).flatten(dim, dim + 1)


def cutmix(
    x: torch.Tensor, alpha: float = 1.0, g: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix as RDED applies it: one Beta(alpha, alpha) box per batch, pasted from a permutation.

    Returns (mixed images, permutation, lambda = share of each image left unpasted); soft labels
    come from the labeler on the mixed images, the permutation and lambda serve a CE term.
    """
    n, _, h, w = x.shape
    return apply_cutmix(x, draw_cutmix(n, h, w, alpha, g, x.device))


def draw_cutmix(n: int, h: int, w: int, alpha: float, g: torch.Generator | None, device) -> MixParams:
    lam = _beta(alpha, g, device)
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy = int(torch.randint(0, h, (1,), generator=g, device=device))
    cx = int(torch.randint(0, w, (1,), generator=g, device=device))
    box = (max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w))
    return MixParams(box, torch.randperm(n, generator=g, device=device))


def apply_cutmix(x: torch.Tensor, p: MixParams) -> tuple[torch.Tensor, torch.Tensor, float]:
    (y1, y2, x1, x2), perm = p.box, p.perm.long()
    out = x.clone()
    out[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]
    return out, perm, mix_lambda(p.box, x.shape[2], x.shape[3])


def mix_lambda(box: tuple[int, int, int, int], h: int, w: int) -> float:
    """Share of each image a CutMix box leaves unpasted."""
    y1, y2, x1, x2 = box
    return 1.0 - (y2 - y1) * (x2 - x1) / (h * w)


def draw_view(n: int, size: int, recipe: ViewRecipe, g: torch.Generator | None, device) -> ViewParams:
    """The draws of one batch, in the order the online view makes them (so one seeded generator gives
    the same parameters here as in draw-and-apply)."""
    shuffle = draw_shuffle(n, recipe.factor, g, device) if recipe.factor > 1 else None
    crop = draw_crop(n, recipe.scale, recipe.ratio, recipe.flip, g, device)
    mix = draw_cutmix(n, size, size, recipe.cutmix_alpha, g, device) if recipe.cutmix_alpha is not None else None
    return ViewParams(shuffle, crop, mix)


def apply_view(x: torch.Tensor, p: ViewParams, size: int) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """(images, CutMix permutation or None, lambda) of a batch viewed with parameters `p`."""
    if p.shuffle is not None:
        x = apply_shuffle(x, p.shuffle)
    x = apply_crop(x, p.crop, size)
    return apply_cutmix(x, p.mix) if p.mix is not None else (x, None, 1.0)


def _beta(alpha: float, g: torch.Generator | None, device) -> float:
    """Beta(alpha, alpha) from a (seeded) generator, via two Gamma draws (uniform when alpha = 1)."""
    if alpha == 1.0:
        return float(torch.rand(1, generator=g, device=device))
    a = torch._standard_gamma(torch.full((2,), alpha, device=device), generator=g)
    return float(a[0] / a.sum())
