"""Load a labeler from a local folder: version check, manifest check, strict rebuild by its kind."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..artifact.agreement import check_onnx_function, check_onnx_interface
from ..artifact.config import ONNX, LabelerConfig, read_config
from ..artifact.metrics import read_metrics
from ..errors import ArtifactArgumentError, ArtifactError, warn_user
from ..exporters.manifest import verify_manifest
from ..exporters.onnx_export import onnx_session
from ..kinds import PRUNED, kind_for
from ..runtime.fast import FastOptions, optimize_network, resolve_options, unaligned_widths
from ..runtime.labeler import Labeler

BACKENDS = ("torch", "onnx")


def load_local_labeler(
    folder: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    backend: str = "torch",
    resize: bool = False,
    *,
    input_normalization: str | tuple | None = None,
    fast: bool = False,
    channels_last: bool | None = None,
    fold_bn: bool | None = None,
    fuse_normalization: bool | None = None,
    cuda_graphs: bool | None = None,
    compile: bool | str | None = None,
    graph_cache_size: int | None = None,
    stack_members: bool | None = None,
    backbone: str | Path | None = None,
) -> Labeler:
    """Load the labeler folder `folder` (manifest verified first, then its files checked against each other) on `device`.

    Default: float32 eager, images normalised with the config's mean/std. `fast=True` takes the
    fast path that suits the device (CUDA: bf16, channels_last, folded BatchNorm, CUDA graphs;
    CPU: float32, channels_last, folded BatchNorm). Each option can also be set on its own;
    given values override what `fast` picks. `fuse_normalization=True` makes the labeler take raw
    [0, 1] images instead (the normalisation is folded exactly into the first convolution);
    `input_normalization` ('imagenet', 'cifar10', ..., 'raw' or (mean, std)) names what the calling
    code feeds, converted to the labeler's own normalisation the same way (runtime/normalization.py).
    `stack_members=True` runs an ensemble whose members share one architecture as one network of
    grouped convolutions (all members in one pass; `fast` turns it on for CUDA).
    Numerical tolerances are stated in flashdd_zoo.runtime.fast. The onnx backend takes none of
    these options. `backbone` is the local weights file (or folder) of a projector's pinned backbone
    when it is not found where the projector looks (see flashdd_zoo.projector.backbone).
    """
    folder = Path(folder)
    explicit = dict(dtype=dtype, channels_last=channels_last, fold_bn=fold_bn,
                    fuse_normalization=fuse_normalization, cuda_graphs=cuda_graphs, compile=compile,
                    graph_cache_size=graph_cache_size, stack_members=stack_members)
    if backend not in BACKENDS:
        raise ArtifactArgumentError(f"unknown backend {backend!r}; choose one of {BACKENDS}.")
    if backend == "onnx" and (fast or any(v is not None for v in explicit.values())):
        raise ArtifactArgumentError("fast-path options (fast, dtype, channels_last, fold_bn, fuse_normalization, "
                            "cuda_graphs, compile, stack_members) apply to backend='torch' only; drop them for 'onnx'.")
    if not folder.is_dir():
        raise ArtifactError(f"no labeler folder at {folder}.")
    config = read_config(folder)
    manifest = verify_manifest(folder, required=config.required_files)
    metrics = read_metrics(folder, config)
    # the files are the listed ones; now they must agree with each other, before any weight is read
    kind = config.labeler_kind
    net = kind.checked_network(config, folder, backbone=backbone)
    has_onnx = ONNX in manifest["files"]
    if has_onnx:
        check_onnx_interface(config, folder)
    if backend == "onnx":
        if not has_onnx:
            raise ArtifactArgumentError(f"{folder} stores no {ONNX} (a {config.kind} folder may leave it out); write "
                                        f"one with `flashdd-zoo export {folder} --out DIR` and load DIR instead.")
        check_onnx_function(kind.load_network(net, folder), config, folder, manifest)
        session = onnx_session(folder / ONNX, ort_providers(device))
        options = resolve_options("cpu", channels=config.input.channels, input_normalization=input_normalization)
        return Labeler(config, folder, session=session, resize=resize, options=options, metrics=metrics)
    net = kind.load_network(net, folder)
    return torch_labeler(net, config, metrics, folder, device, resize, fast=fast,
                         input_normalization=input_normalization, **explicit)


def torch_labeler(net: nn.Module, config: LabelerConfig, metrics: dict[str, Any], folder: Path | None,
                  device: str | torch.device, resize: bool = False, *, fast: bool,
                  **explicit: Any) -> Labeler:
    """Wrap a float32 network (built from `config`) as a Labeler with the chosen options."""
    options = resolve_options(device, fast=fast, kind=config.labeler_kind, channels=config.input.channels, **explicit)
    if slow := tensor_core_warning(config, options, device):
        warn_user(slow, RuntimeWarning)
    net = optimize_network(net, options, config, device)
    return Labeler(config, folder, net=net, resize=resize, options=options, metrics=metrics)


def tensor_core_warning(config: LabelerConfig, options: FastOptions, device: str | torch.device) -> str | None:
    """Why a reduced-precision labeler on CUDA would run far below peak: channel counts tensor cores do not tile."""
    if options.dtype == torch.float32 or torch.device(device).type != "cuda":
        return None
    odd = unaligned_widths(config.architecture)
    return (f"{config.name}: channel counts {odd} are not multiples of 8; tensor-core kernels run far below peak "
            "on them.") if odd else None


def labeler_from_module(
    net: nn.Module, *, resolution: int, mean: tuple[float, ...], std: tuple[float, ...],
    name: str = "in-memory", device: str | torch.device = "cpu", fast: bool = False, **options: Any,
) -> Labeler:
    """A Labeler around an in-memory network (e.g. a freshly pruned one) without a folder.

    Class names are placeholders; use it to run or benchmark a network before it is exported.
    The caller's module is left untouched (the labeler runs a copy).
    """
    from ..cards.measure import count_params

    net = copy.deepcopy(net)
    arch = net.arch
    config = LabelerConfig.create(
        name=name, kind=kind_for(arch, single=PRUNED).name, architecture=arch,
        class_names=[f"class_{i}" for i in range(arch["num_classes"])], resolution=resolution, mean=mean, std=std,
    )
    return torch_labeler(net, config, {"params": count_params(net)}, None, device, fast=fast, **options)


def ort_providers(device: str | torch.device) -> list[str]:
    """onnxruntime-gpu's CUDA provider when asked for a GPU and installed, else the CPU."""
    import onnxruntime as ort

    wanted = str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers()
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if wanted else ["CPUExecutionProvider"]


def ort_uses_gpu(device: str | torch.device) -> bool:
    """Whether the onnx backend would run on the GPU for `device` (onnxruntime-gpu installed)."""
    return ort_providers(device)[0] == "CUDAExecutionProvider"
