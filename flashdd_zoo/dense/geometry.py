"""LADD's static sub-sampler: an N x N grid of square crops, each R of the image side, resized back.

Crop side c = round(R * S) pixels; along each axis the N crops start at round(j * (S - c) / (N - 1)),
j = 0..N-1, i.e. a stride of (100% - R) / (N - 1) of the side, so the first crop touches the top-left
corner and the last the bottom-right one. Boxes are (top, left, height, width) in pixels, row-major.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ArgumentError

LADD_GRID, LADD_RATIO = 5, 0.625


def check_grid(n: int, ratio: float) -> None:
    """Refuse a grid LADD's sub-sampler cannot make."""
    if not isinstance(n, int) or n < 2:
        raise ArgumentError(f"the sub-image grid needs N >= 2 crops per axis (LADD: N = {LADD_GRID}), got {n!r}.")
    if not 0 < ratio <= 1:
        raise ArgumentError(f"the crop ratio R is the share of each image side a crop covers, in (0, 1] "
                            f"(LADD: {LADD_RATIO}); got {ratio!r}.")


def crop_boxes(size: int, n: int = LADD_GRID, ratio: float = LADD_RATIO) -> list[tuple[int, int, int, int]]:
    """The n*n crop boxes (top, left, height, width) of a size x size image, row-major."""
    check_grid(n, ratio)
    side = max(1, round(ratio * size))
    starts = [round(j * (size - side) / (n - 1)) for j in range(n)]
    return [(top, left, side, side) for top in starts for left in starts]


def sub_image(images: torch.Tensor, box: tuple[int, int, int, int] | list[int]) -> torch.Tensor:
    """(B, C, S, S) float images -> their crop `box`, resized back to S x S (bilinear, as torchvision's
    Resize of a tensor)."""
    size = images.shape[-1]
    top, left, h, w = (int(v) for v in box)
    patch = images[..., top:top + h, left:left + w]
    if h == size and w == size:
        return patch
    return F.interpolate(patch, size=(size, size), mode="bilinear", align_corners=False)


def sub_images(images: torch.Tensor, boxes: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """(B, C, S, S) float images -> (B, K, C, S, S): every crop of every image, resized back to S x S."""
    return torch.stack([sub_image(images, box) for box in boxes], dim=1)
