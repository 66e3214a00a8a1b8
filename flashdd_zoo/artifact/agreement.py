"""config.json, the weights and the ONNX file of a labeler folder compute one function.

The manifest proves the files are the ones it lists, not that they agree: a folder whose manifest
was rewritten after an edit passes it. These checks compare the files with each other, cheapest
first, and allocate nothing for the network until the config and the weights header agree.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from ..errors import ArtifactError, ArtifactMismatchError
from ..exporters.onnx_export import INPUT_NAME, OUTPUT_NAME, onnx_interface, parity
from ..exporters.weights import check_shapes, read_weights_header
from ..models import member_archs
from .config import CARD, METRICS, ONNX, WEIGHTS, LabelerConfig

ANY = "any"  # a symbolic (batch) dimension of the ONNX graph
PROBE_BATCH, PROBE_SEED = 2, 0
# (ONNX sha256, weights sha256) pairs whose functions agreed on the probe in this process
_AGREED: set[tuple[str, str]] = set()


def checked_network(config: LabelerConfig, folder: Path) -> nn.Module:
    """The network config.json describes, on the meta device, once every tensor it implies has the
    weights header's shape and its input and output are config.json's; load_weights fills it."""
    weights = folder / WEIGHTS
    header = read_weights_header(weights)
    networks = len(member_archs(config.architecture))
    if networks > len(header.shapes):  # bounds the build itself: a config listing a million members
        raise ArtifactMismatchError(f"config.json describes {networks} networks but {weights} holds only "
                                    f"{len(header.shapes)} tensors; config.json was edited or belongs to another export.")
    kind = config.labeler_kind
    net = kind.build(config)  # meta device: nothing allocated
    check_shapes(net, header, weights)
    kind.check_weights_header(config, header, weights)
    check_input_output(net.eval(), config, weights)
    return net


def check_input_output(net: nn.Module, config: LabelerConfig, where: Path) -> None:
    """config.json's input spec runs through the (meta) network and gives one logit per class name."""
    c, (h, w) = config.input.channels, config.input.size
    shapes_only = copy.deepcopy(net).to("meta")  # a kind may keep small non-weight buffers on the CPU
    try:
        with torch.no_grad():
            out = shapes_only(torch.empty((1, c, h, w), device="meta"))
    except RuntimeError as e:
        raise ArtifactMismatchError(f"config.json's input ({c}-channel {h}x{w} images) does not fit the network "
                                    f"{where} holds ({str(e).splitlines()[0]}). Export the labeler again.") from e
    if tuple(out.shape) != (1, config.num_classes):
        raise ArtifactMismatchError(f"the network {where} holds gives {tuple(out.shape)[1:]} outputs per image but "
                                    f"config.json names {config.num_classes} classes. Export the labeler again.")


def check_onnx_interface(config: LabelerConfig, folder: Path) -> None:
    """The ONNX graph takes config.json's images (any batch size) and gives one logit per class."""
    path = folder / ONNX
    inputs, outputs = (_any_batch(v) for v in onnx_interface(path))
    c, (h, w) = config.input.channels, config.input.size
    want = ({INPUT_NAME: [ANY, c, h, w]}, {OUTPUT_NAME: [ANY, config.num_classes]})
    if (inputs, outputs) != want:
        raise ArtifactMismatchError(f"{path} maps {inputs} to {outputs}, but config.json describes {want[0]} to "
                                    f"{want[1]}; the ONNX file belongs to another network. Export the labeler again.")


def _any_batch(values: dict[str, list]) -> dict[str, list]:
    """Symbolic dims (a name in the graph) read as ANY."""
    return {name: [ANY if isinstance(d, str) else d for d in dims] for name, dims in values.items()}


def check_onnx_function(net: nn.Module, config: LabelerConfig, folder: Path, manifest: dict) -> None:
    """The ONNX file computes the weights' function: both run a fixed probe batch and agree within the
    export's tolerance. `net` is the loaded network (Kind.load_network). Once per set of files and process."""
    onnx = folder / ONNX
    key = (manifest["files"][ONNX]["sha256"], _other_files(manifest))
    if key in _AGREED:
        return
    generator = torch.Generator().manual_seed(PROBE_SEED)
    probe = torch.randn((PROBE_BATCH, config.input.channels, *config.input.size), generator=generator)
    try:
        diff, bound = parity(net, onnx, probe)
    except Exception as e:  # onnxruntime refuses a graph it cannot run with its own error types
        raise ArtifactError(f"{onnx} does not run on a probe batch with onnxruntime: {e}") from e
    if not diff <= bound:  # also catches NaN
        weights = ", ".join(str(folder / k) for k in sorted(manifest["files"]) if k.endswith(".safetensors"))
        raise ArtifactMismatchError(f"{onnx} computes another function than {weights}: max |onnx - torch| = "
                                    f"{diff:.3g} > {bound:.3g} on a fixed probe batch. The ONNX file belongs to "
                                    "another network; export the labeler again.")
    _AGREED.add(key)


def _other_files(manifest: dict) -> str:
    """The hashes of every file but the ONNX one, the card and the metrics: what defines the torch function."""
    skip = (ONNX, CARD, METRICS)
    return ",".join(f"{k}={v['sha256']}" for k, v in sorted(manifest["files"].items()) if k not in skip)
