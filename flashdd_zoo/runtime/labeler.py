"""The Labeler: an nn.Module that stands in for `teacher_model` in a DD training loop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..artifact.config import LabelerConfig
from ..errors import InputError, InputStatisticsWarning, warn_user
from ..models.ensemble import set_member_weights
from .fast import FastOptions, FastRunner, describe_options
from .normalization import CHECK_MIN_BATCH, convert, mismatch_warning


class Labeler(nn.Module):
    """Soft-label generator loaded from a labeler folder.

    `labeler(images) -> logits` (float32) and `labeler.soft_labels(images, temperature, epoch)`
    -> probabilities (float32). Images are NCHW, normalised with the config's mean/std, or with
    what `input_normalization` named at load time ('imagenet', 'raw' [0, 1], ...: converted to the
    labeler's own), at the config's resolution unless the labeler was loaded with `resize=True`.
    The first batch of at least CHECK_MIN_BATCH images is checked once against that normalisation
    (a warning names the likely mismatch). The fast path (bf16, folded BatchNorm, CUDA graphs; see
    flashdd_zoo.runtime.fast) changes nothing for the caller but speed and float rounding.

    The usual wrappers give the same labels as the plain call: `.to(device)` / `.cuda()` after
    loading, `.half()` (runs in float16, labels within the fast path's float16 bounds),
    `requires_grad` loops, `torch.compile(labeler)`, `DataParallel(labeler)` (replicas run eager
    on their own GPU; CUDA graphs stay with the original), and `.train()`, which leaves the
    network in inference mode: a labeler's BatchNorm never switches to batch statistics.
    """

    def __init__(
        self,
        config: LabelerConfig,
        folder: Path | None,
        net: nn.Module | None = None,
        session: Any = None,
        resize: bool = False,
        options: FastOptions | None = None,
        metrics: dict[str, Any] | None = None,
    ):
        super().__init__()
        if (net is None) == (session is None):
            raise ValueError("a Labeler runs either a torch module or an onnxruntime session")
        self.config = config
        self.metrics = dict(metrics or {})  # metrics.json: params, bytes, accuracies, ...
        self.folder = Path(folder) if folder is not None else None
        self.net = net
        self.session = session
        self.resize = resize
        self.options = options or FastOptions()
        self.backend = "torch" if net is not None else "onnx"
        self.runner = FastRunner(net, self.options) if net is not None else None
        self.member_weights = config.labeler_kind.weights_for_epoch(config.architecture, None)  # combination weights in force
        self._input_check = {"pending": True}  # a dict, so DataParallel replicas share it: one warning in all
        self.requires_grad_(False)
        self.eval()

    # -- facts -----------------------------------------------------------------
    @property
    def num_params(self) -> int:
        return int(self.metrics["params"])

    @property
    def storage_bytes(self) -> int:
        """Bytes of the weights file, the storage the labeler adds to a distilled set."""
        return int(self.metrics["weights_bytes"])

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def input_size(self) -> tuple[int, int]:
        return self.config.input.size

    @property
    def default_temperature(self) -> float:
        return float(self.config.temperature)

    @property
    def expects_normalized(self) -> bool:
        """True: feed (x - mean) / std images; False: raw [0, 1] images (input_normalization='raw')."""
        return not self.options.fuse_normalization

    @property
    def input_normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The (mean, std) the caller's images must be normalised with, as loaded."""
        caller = self.options.input_normalization
        return (caller.mean, caller.std) if caller is not None else (self.config.input.mean, self.config.input.std)

    def train(self, mode: bool = True) -> Labeler:
        """Flag only: the network stays in eval mode, so a training loop's model.train() on every
        module cannot turn the labeler's BatchNorm to batch statistics."""
        self.training = mode
        return self

    # -- inference -------------------------------------------------------------
    def check_images(self, images: torch.Tensor) -> torch.Tensor:
        """Validate shape and dtype; resize when allowed. Returns the images to run."""
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
            raise InputError(f"labeler expects a 4-D NCHW image tensor, got {shape}.")
        channels = self.config.input.channels
        if images.shape[1] != channels:
            raise InputError(
                f"labeler expects {channels}-channel NCHW images, got {images.shape[1]} channels "
                f"(shape {tuple(images.shape)}). Grey images: images.expand(-1, 3, -1, -1); "
                "NHWC batches: images.permute(0, 3, 1, 2)."
            )
        if not images.is_floating_point():
            what = "normalised float" if self.expects_normalized else "raw float ([0, 1])"
            raise InputError(f"labeler expects {what} images, got dtype {images.dtype}. {self._convert_hint()}")
        self._check_statistics(images)
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

    def _check_statistics(self, images: torch.Tensor) -> None:
        """Once per labeler, on the first batch big enough to judge: warn when its statistics are far
        from what the expected normalisation produces."""
        if not self._input_check["pending"] or images.shape[0] < CHECK_MIN_BATCH:
            return
        self._input_check["pending"] = False
        inp = self.config.input
        message = mismatch_warning(images, self.options.input_normalization, inp.mean, inp.std, self.config.name)
        if message:
            warn_user(message, InputStatisticsWarning)

    def _convert_hint(self) -> str:
        if not self.expects_normalized:
            return "This labeler was loaded with input_normalization='raw': pass images / 255."
        mean, std = self.input_normalization
        return f"Convert with (images / 255 - mean) / std using mean={list(mean)}, std={list(std)}."

    def _runner(self) -> FastRunner:
        """The runner of this module: DataParallel's replicas hold their own copy of the network
        on their own GPU and run it eager (the captured graphs belong to the original)."""
        if self.runner.net is self.net:
            return self.runner
        return FastRunner(self.net, replace(self.options, cuda_graphs=False))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.check_images(images)
        logits = self._run_onnx(x) if self.session is not None else self._runner().logits(x)
        return logits.to(images.device)

    def soft_labels(
        self, images: torch.Tensor, temperature: float | None = None, epoch: int | None = None
    ) -> torch.Tensor:
        """softmax(logits / T) in float32. `epoch` selects an ensemble's member weights from its
        schedule (see set_epoch); single nets ignore it."""
        t = self.default_temperature if temperature is None else float(temperature)
        if t <= 0:
            raise InputError(f"temperature must be positive, got {t}.")
        if epoch is not None:
            self.set_epoch(epoch)
        x = self.check_images(images)
        if self.session is not None:
            return F.softmax(self._run_onnx(x) / t, dim=1).to(images.device)
        return self._runner().soft_labels(x, t).to(images.device)

    def set_epoch(self, epoch: int) -> None:
        """Use the member weights an ensemble's schedule gives for training epoch `epoch` (for
        this call and later ones, logits included). A no-op for single networks."""
        weights = self.config.labeler_kind.weights_for_epoch(self.config.architecture, int(epoch))
        if weights is None or weights == self.member_weights:  # called every batch: copy to the device only on a change
            return
        if self.session is not None:
            raise InputError(f"the onnx backend runs {self.config.name}'s default member weights "
                             f"{self.member_weights}, but its schedule asks for {weights} at epoch {epoch}. "
                             "Load it with backend='torch' to follow the schedule.")
        set_member_weights(self.net, weights)
        self.member_weights = weights

    def static_input(self, batch_size: int) -> torch.Tensor | None:
        """The CUDA graph's input buffer for soft labels of `batch_size` images, once captured.

        Writing the next batch straight into it (`buf.copy_(images)` inside your augmentation, or
        as its output) and calling `soft_labels(buf)` saves one copy per batch. None when no graph
        is captured for that batch shape (before the second call, or without CUDA graphs).
        """
        if self.runner is None:
            return None
        return self.runner.static_input((batch_size, self.config.input.channels, *self.input_size))

    def _run_onnx(self, images: torch.Tensor) -> torch.Tensor:
        """Run onnxruntime through I/O binding: it reads the input tensor's memory in place (on
        the GPU with onnxruntime-gpu's CUDA provider) and writes into a torch output tensor."""
        inp = self.config.input
        images = convert(images, self.options.input_normalization, inp.mean, inp.std)  # no conv to fold it into
        on_gpu = self.session.get_providers()[0] == "CUDAExecutionProvider"
        device = images.device if (on_gpu and images.is_cuda) else torch.device("cuda" if on_gpu else "cpu")
        x = images.detach().to(device=device, dtype=torch.float32).contiguous()
        out = torch.empty((x.shape[0], self.num_classes), dtype=torch.float32, device=device)
        binding = self.session.io_binding()
        kind, index = device.type, device.index or 0
        binding.bind_input("images", kind, index, np.float32, tuple(x.shape), x.data_ptr())
        binding.bind_output("logits", kind, index, np.float32, tuple(out.shape), out.data_ptr())
        if kind == "cuda":
            torch.cuda.current_stream(device).synchronize()  # the input must be ready for onnxruntime's stream
        self.session.run_with_iobinding(binding)
        return out

    def __repr__(self) -> str:
        fast = "" if self.options == FastOptions() else f", options={describe_options(self.options)}"
        return (
            "Labeler("
            f"name={self.config.name!r}, kind={self.config.kind!r}, backend={self.backend}, "
            f"params={self.num_params:,}, classes={self.num_classes}, input={self.input_size}{fast})"
        )

