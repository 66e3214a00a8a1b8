"""How far the fast path's soft labels are from a float64 reference, on real images."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime.labeler import Labeler


def calibrate_batchnorm(net: nn.Module, images: torch.Tensor, batch: int = 100) -> nn.Module:
    """Set every BatchNorm's running statistics from real (normalised) images, in place.

    A randomly initialised network then has the activation scales of a trained one, so its
    numerics under bf16 are representative; speed is unaffected.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all batches
    net.train()
    with torch.no_grad():
        for i in range(0, len(images), batch):
            net(images[i : i + batch])
    return net.eval()


def reference_logits(net: nn.Module, images: torch.Tensor, batch: int = 100) -> torch.Tensor:
    """float64 logits on the CPU: the reference every precision is compared with."""
    ref = copy.deepcopy(net).cpu().double().eval()
    with torch.no_grad():
        return torch.cat([ref(images[i : i + batch].cpu().double()) for i in range(0, len(images), batch)])


def agreement(labeler: Labeler, images: torch.Tensor, ref_logits: torch.Tensor,
              temperatures: tuple[float, ...] = (1.0, 20.0), batch: int = 100) -> dict[str, float]:
    """Compare a labeler's logits and soft labels with reference logits on the same images.

    max_abs_diff_prob is at temperature 1 (the strictest); *_t{T} at the others.
    """
    logits = torch.cat([labeler(images[i : i + batch]) for i in range(0, len(images), batch)]).double().cpu()
    ref = ref_logits.double().cpu()
    out: dict[str, Any] = {
        "images": len(images),
        "rel_logit_error": float((logits - ref).norm() / ref.norm()),
        "max_abs_diff_logit": float((logits - ref).abs().max()),
        "max_abs_logit": float(ref.abs().max()),
        "top1_agreement": float((logits.argmax(1) == ref.argmax(1)).double().mean()),
    }
    for t in temperatures:
        probs = torch.cat([labeler.soft_labels(images[i : i + batch], temperature=t)
                           for i in range(0, len(images), batch)]).double().cpu()
        diff = float((probs - F.softmax(ref / t, dim=1)).abs().max())
        out["max_abs_diff_prob" if t == temperatures[0] else f"max_abs_diff_prob_t{t:g}"] = diff
    return out
