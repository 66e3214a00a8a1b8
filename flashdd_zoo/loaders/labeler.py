"""The Labeler: an nn.Module that stands in for `teacher_model` in a DD training loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError


class Labeler(nn.Module):
    """Soft-label generator loaded from a labeler folder.

    `labeler(images) -> logits` (float32) and `labeler.soft_labels(images, temperature, epoch)`
    -> probabilities. Images are NCHW, normalised with the config's mean/std, at the config's
    resolution unless the labeler was loaded with `resize=True`.
    """

    def __init__(
        self,
        config: dict[str, Any],
        folder: Path,
        net: nn.Module | None = None,
        session: Any = None,
        resize: bool = False,
    ):
        super().__init__()
        if (net is None) == (session is None):
            raise ValueError("a Labeler runs either a torch module or an onnxruntime session")
        self.config = config
        self.folder = Path(folder)
        self.net = net
        self.session = session
        self.resize = resize
        self.backend = "torch" if net is not None else "onnx"
        self.requires_grad_(False)
        self.eval()

    # -- facts -----------------------------------------------------------------
    @property
    def num_params(self) -> int:
        return int(self.config["metrics"]["params"])

    @property
    def storage_bytes(self) -> int:
        """Bytes of the weights file, the storage the labeler adds to a distilled set."""
        return int(self.config["metrics"]["weights_bytes"])

    @property
    def num_classes(self) -> int:
        return int(self.config["num_classes"])

    @property
    def input_size(self) -> tuple[int, int]:
        h, w = self.config["input"]["size"]
        return int(h), int(w)

    @property
    def default_temperature(self) -> float:
        return float(self.config["temperature"])

    # -- inference -------------------------------------------------------------
    def check_images(self, images: torch.Tensor) -> torch.Tensor:
        """Validate shape and dtype; resize when allowed. Returns the images to run."""
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
            raise InputError(f"labeler expects a 4-D NCHW image tensor, got {shape}.")
        channels = self.config["input"]["channels"]
        if images.shape[1] != channels:
            raise InputError(
                f"labeler expects {channels}-channel NCHW images, got {images.shape[1]} channels "
                f"(shape {tuple(images.shape)}). Grey images: images.expand(-1, 3, -1, -1); "
                "NHWC batches: images.permute(0, 3, 1, 2)."
            )
        if not images.is_floating_point():
            raise InputError(
                f"labeler expects normalised float images, got dtype {images.dtype}. Convert "
                f"with (images / 255 - mean) / std using mean={self.config['input']['mean']}, "
                f"std={self.config['input']['std']}."
            )
        size = self.input_size
        if tuple(images.shape[-2:]) != size:
            if not self.resize:
                raise InputError(
                    f"labeler was built for {size[0]}x{size[1]} images, got "
                    f"{images.shape[-2]}x{images.shape[-1]}. Resize them, or load with "
                    "load_labeler(..., resize=True) to resize on the fly."
                )
            images = F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = self.check_images(images)
        if self.session is not None:
            return self._run_onnx(images)
        param = next(self.net.parameters())
        with torch.no_grad():
            logits = self.net(images.to(device=param.device, dtype=param.dtype))
        return logits.float().to(images.device)

    def soft_labels(
        self, images: torch.Tensor, temperature: float | None = None, epoch: int | None = None
    ) -> torch.Tensor:
        """softmax(logits / T) in float32. `epoch` selects ensemble weights; single nets ignore it."""
        t = self.default_temperature if temperature is None else float(temperature)
        if t <= 0:
            raise InputError(f"temperature must be positive, got {t}.")
        return F.softmax(self.forward(images) / t, dim=1)

    def _run_onnx(self, images: torch.Tensor) -> torch.Tensor:
        x = images.detach().to("cpu", torch.float32).contiguous().numpy()
        out = self.session.run(["logits"], {"images": x})[0]
        return torch.from_numpy(np.ascontiguousarray(out)).to(images.device)

    def __repr__(self) -> str:
        return (
            "Labeler("
            f"name={self.config['name']!r}, kind={self.config['kind']!r}, backend={self.backend}, "
            f"params={self.num_params:,}, classes={self.num_classes}, input={self.input_size})"
        )
