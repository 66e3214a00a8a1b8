"""`flashdd-zoo projector-update`: HeLIO's image update (Eq. 7) of a distilled set for a projector.

RDED-style images are mosaics of down-sampled patches; the projector's frozen encoder should see
a patch and its down- then up-sampled copy alike. Each image is moved (pixels in [0, 1]) to
minimise MSE(E(patch), E(up(down(patch)))) over its `factor` x `factor` patches; the encoder stays fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data.images import ImageSet
from ..data.registry import Dataset
from ..errors import ArgumentError
from .distilled import load_distilled, read_description, write_distilled


@dataclass
class UpdateSettings:
    steps: int = 50
    lr: float = 0.01
    factor: int = 2  # patches per side, and the down-sampling factor of each patch's copy
    batch_size: int = 100


def patch_loss(features: nn.Module, images: torch.Tensor, mean, std, factor: int) -> torch.Tensor:
    """Eq. 7 on [0, 1] images: mean over patches of MSE(E(patch), E(up(down(patch)))), each patch
    seen at the labeler's input size as the student's crops are."""
    size = images.shape[-2:]
    patches = _patches(images, factor)
    patches = F.interpolate(patches, size=size, mode="bilinear", align_corners=False) if factor > 1 else patches
    low = F.interpolate(patches, scale_factor=1 / factor, mode="bilinear", align_corners=False, antialias=True)
    copy = F.interpolate(low, size=size, mode="bilinear", align_corners=False)
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return F.mse_loss(features((patches - m) / s), features((copy - m) / s))


def _patches(images: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, C, H, W) -> (N * factor^2, C, H / factor, W / factor)."""
    n, c, h, w = images.shape
    if h % factor or w % factor:
        raise ArgumentError(f"images of {h}x{w} pixels do not split into {factor}x{factor} patches; choose --factor "
                            f"dividing both sides.")
    x = images.reshape(n, c, factor, h // factor, factor, w // factor)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(n * factor * factor, c, h // factor, w // factor)


def update_images(features: nn.Module, data: ImageSet, mean, std, settings: UpdateSettings) -> tuple[ImageSet, float, float]:
    """The updated images (uint8) and the mean Eq. 7 loss before and after."""
    before = after = 0.0
    out = []
    for batch in data.images.split(settings.batch_size):
        x = (batch.float() / 255.0).requires_grad_(True)
        opt = torch.optim.Adam([x], lr=settings.lr)
        for step in range(settings.steps + 1):
            loss = patch_loss(features, x, mean, std, settings.factor)
            if step == 0:
                before += loss.item() * len(batch)
            if step == settings.steps:
                after += loss.item() * len(batch)
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
        out.append((x.detach() * 255.0).round().clamp(0, 255).to(torch.uint8))
    n = len(data)
    return ImageSet(torch.cat(out), data.labels.clone(), list(data.class_names)), before / n, after / n


def projector_update(distilled: str | Path, labeler_path: str | Path, dataset: Dataset, out: str | Path,
                     settings: UpdateSettings, backbone: str | Path | None = None) -> tuple[Path, float, float]:
    """Load D_S and the projector, update the images, write the new D_S folder atomically at `out`."""
    from ..loaders import load_local_labeler

    labeler = load_local_labeler(labeler_path, backbone=backbone)
    features = getattr(labeler.net, "features", None)
    if features is None:
        raise ArgumentError(f"{labeler_path} is a {labeler.config.kind!r} labeler; the image update needs a projector "
                            "(its frozen encoder's features).")
    if labeler.config.class_names != tuple(dataset.class_names):
        raise ArgumentError(f"{labeler_path} labels {labeler.config.num_classes} classes of "
                            f"{labeler.config.lineage.get('dataset')}, not {dataset.name}'s; use a projector of that dataset.")
    data = load_distilled(distilled, dataset)
    labeler.net.requires_grad_(False)
    updated, before, after = update_images(features, data, labeler.config.input.mean, labeler.config.input.std, settings)
    description = {**read_description(Path(distilled)), "updated_by": "helio-eq7", "source": str(distilled),
                   "labeler": labeler.config.name, "update": vars(settings), "eq7_loss_before": before,
                   "eq7_loss_after": after}
    description.pop("sha256", None)
    return write_distilled(Path(out), updated, description), before, after
