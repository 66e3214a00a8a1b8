"""What the calling code feeds a labeler, and the conversion to what the labeler was trained on.

A DD codebase normalises its images one way (RDED and SRe2L use ImageNet's mean/std for every
dataset, CIFAR included); a labeler was trained with its own. Images y normalised with the
caller's (m_c, s_c) become the labeler's z = (x - m_L) / s_L through one per-channel affine map,

    z = (y - (m_L - m_c) / s_c) / (s_L / s_c),

which is itself a normalisation, so the fast path folds it into the first convolution exactly as
it folds raw [0, 1] input (raw is m_c = 0, s_c = 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..data.registry import IMAGENET_MEAN, IMAGENET_STD, REGISTRY
from ..errors import ArtifactArgumentError

RAW = "raw"

# First-batch check: thresholds read off real images (CIFAR-10 test, Imagenette-128 val) in
# batches of >= 8. Correctly normalised batches: per-channel |mean| <= 0.9, std 0.75-1.62;
# raw [0, 1] batches: std <= 0.31. A smaller batch is too noisy to judge and waits for a bigger one.
CHECK_MIN_BATCH = 8
MEAN_LIMIT = 1.5
STD_RANGE = (0.5, 2.5)


@dataclass(frozen=True)
class CallerNormalization:
    """The mean/std the caller's images are normalised with (raw [0, 1] images: 0 and 1)."""

    name: str  # a key of named_normalizations(), or "custom"
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def is_raw(self) -> bool:
        return all(m == 0 for m in self.mean) and all(s == 1 for s in self.std)

    def describe(self) -> str:
        return self.name if self.name != "custom" else f"mean={list(self.mean)}, std={list(self.std)}"


def named_normalizations() -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    """Every named normalisation: 'imagenet', 'raw' and each registered dataset's mean/std."""
    table = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), RAW: ((0.0,) * 3, (1.0,) * 3)}
    for spec in REGISTRY.values():
        table.setdefault(spec.name, (spec.mean, spec.std))
    return table


def caller_normalization(spec: str | Sequence | None, fuse_normalization: bool | None,
                         channels: int) -> CallerNormalization | None:
    """Resolve `input_normalization` (a name, (mean, std) or None) and the older
    `fuse_normalization=True` (same as 'raw') for a labeler taking `channels` channels."""
    if fuse_normalization:
        if spec is not None and spec != RAW:
            raise ArtifactArgumentError(f"fuse_normalization=True means input_normalization='raw', but input_normalization="
                                f"{spec!r} was given too; pass only input_normalization.")
        spec = RAW
    if spec is None:
        return None
    if isinstance(spec, str):
        return _named(spec, channels)
    try:
        mean, std = (tuple(float(v) for v in part) for part in spec)
    except (TypeError, ValueError) as e:
        raise ArtifactArgumentError(f"input_normalization must be a name or a (mean, std) pair of sequences, got {spec!r}.") from e
    return _checked(CallerNormalization("custom", mean, std), channels)


def _named(name: str, channels: int) -> CallerNormalization:
    table = named_normalizations()
    key = name.lower()
    if key not in table:
        raise ArtifactArgumentError(f"unknown input_normalization {name!r}; known: {', '.join(sorted(table))}, "
                            "or a (mean, std) pair.")
    mean, std = table[key]
    if key == RAW:  # raw fits any channel count
        mean, std = (0.0,) * channels, (1.0,) * channels
    return _checked(CallerNormalization(key, tuple(mean), tuple(std)), channels)


def _checked(norm: CallerNormalization, channels: int) -> CallerNormalization:
    if len(norm.mean) != channels or len(norm.std) != channels:
        raise ArtifactArgumentError(f"input_normalization {norm.describe()} has {len(norm.mean)} mean and {len(norm.std)} std "
                            f"values, but this labeler takes {channels}-channel images: give {channels} of each.")
    if any(not s > 0 for s in norm.std):
        raise ArtifactArgumentError(f"input_normalization std must be positive, got {list(norm.std)}.")
    return norm


def conversion(caller: CallerNormalization | None, own_mean: Sequence[float], own_std: Sequence[float]
               ) -> tuple[list[float], list[float]] | None:
    """The (mean', std') with which (y - mean') / std' turns the caller's images into the labeler's;
    None when the caller already feeds what the labeler expects."""
    if caller is None:
        return None
    mean = [(m_l - m_c) / s_c for m_l, m_c, s_c in zip(own_mean, caller.mean, caller.std)]
    std = [s_l / s_c for s_l, s_c in zip(own_std, caller.std)]
    if all(abs(m) < 1e-12 for m in mean) and all(abs(s - 1) < 1e-12 for s in std):
        return None
    return mean, std


def convert(images: torch.Tensor, caller: CallerNormalization | None, own_mean, own_std) -> torch.Tensor:
    """Apply the conversion explicitly (where it cannot be folded, e.g. the ONNX backend)."""
    conv = conversion(caller, own_mean, own_std)
    if conv is None:
        return images
    mean, std = (torch.tensor(v, dtype=images.dtype, device=images.device).view(1, -1, 1, 1) for v in conv)
    return (images - mean) / std


# -- the first-batch check ------------------------------------------------------------------------


def batch_statistics(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of a batch, pooled over images and pixels."""
    x = images.detach().float()
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).tolist()


def as_labeler_sees(mean: Sequence[float], std: Sequence[float], caller: CallerNormalization | None,
                    own_mean, own_std) -> tuple[list[float], list[float]]:
    """Statistics of the batch after the conversion the labeler applies (affine, so exact)."""
    conv = conversion(caller, own_mean, own_std) or ([0.0] * len(mean), [1.0] * len(mean))
    return ([(m - c) / s for m, c, s in zip(mean, *conv)], [d / s for d, s in zip(std, conv[1])])


def off_normalization(mean: Sequence[float], std: Sequence[float]) -> bool:
    """True when a batch's statistics, as the labeler sees them, are far from normalised images'."""
    return any(abs(m) > MEAN_LIMIT for m in mean) or any(not STD_RANGE[0] <= s <= STD_RANGE[1] for s in std)


def likely_normalization(mean: Sequence[float], std: Sequence[float], own_mean, own_std) -> str | None:
    """The named normalisation (None: the labeler's own) that best explains a batch's statistics."""
    channels = len(mean)
    candidates: dict[str | None, CallerNormalization | None] = {None: None}
    for name, (m, _) in named_normalizations().items():
        if name == RAW or len(m) == channels:
            candidates.setdefault(name, _named(name, channels))

    def distance(c: CallerNormalization | None) -> float:
        seen_mean, seen_std = as_labeler_sees(mean, std, c, own_mean, own_std)
        return sum(abs(m) + abs(math.log(max(s, 1e-6))) for m, s in zip(seen_mean, seen_std))

    best = min(candidates, key=lambda k: distance(candidates[k]))
    return best


def mismatch_warning(images: torch.Tensor, caller: CallerNormalization | None, own_mean, own_std,
                     name: str) -> str | None:
    """A warning text when the batch does not look like what the caller said it feeds; else None."""
    mean, std = batch_statistics(images)
    seen_mean, seen_std = as_labeler_sees(mean, std, caller, own_mean, own_std)
    if not off_normalization(seen_mean, seen_std):
        return None
    likely = likely_normalization(mean, std, own_mean, own_std)
    said = f"input_normalization={caller.name!r}" if caller else f"its own mean {list(own_mean)}, std {list(own_std)}"
    guess = (f"they look like {'raw [0, 1] images' if likely == RAW else f'{likely}-normalised images'}: "
             f"load it with input_normalization={likely!r}" if likely is not None else
             "they look normalised with the labeler's own mean/std: load it without input_normalization")
    return (f"{name}: the first batch does not look like the images this labeler was told to expect ({said}). "
            f"As the labeler sees them, per-channel mean {_fmt(seen_mean)} and std {_fmt(seen_std)}, where "
            f"normalised images give about 0 and 1; {guess}. Wrong normalisation changes the labels silently.")


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"
