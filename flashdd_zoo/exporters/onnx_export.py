"""ONNX export with a dynamic batch axis, verified against torch with onnxruntime."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ArtifactError, ExportError

OPSET = 18
INPUT_NAME, OUTPUT_NAME = "images", "logits"
# the export check's tolerance: max |onnxruntime - torch| <= ATOL + RTOL * max |torch logits|
ATOL = RTOL = 1e-4


def export_onnx(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    """Export with torch.export (dynamo) so the batch axis is symbolic."""
    model = model.eval().cpu()
    batch = torch.export.Dim("batch", min=1, max=65536)
    # the exporter narrates each step on stdout; keep CLI output readable
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(
            model,
            (example[:2].cpu().float(),),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def onnx_session(path: Path, providers: list[str] | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])


def parity(model: nn.Module, path: Path, x: torch.Tensor) -> tuple[float, float]:
    """max |onnxruntime (CPU) - torch| of the logits on `x`, and the bound the export check allows."""
    model = model.eval().cpu()
    x = x.cpu().float()
    with torch.no_grad():
        ref = model(x).numpy()
    got = onnx_session(path).run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
    return diff, ATOL + RTOL * float(np.abs(ref).max())


def check_parity(model: nn.Module, path: Path, images: torch.Tensor) -> float:
    """Run torch and onnxruntime on the same real images; return max |difference| of logits.

    Raises ExportError when the difference exceeds ATOL + RTOL * max|torch logits|.
    """
    diff, bound = parity(model, path, images)
    if not np.isfinite(diff) or diff > bound:
        raise ExportError(
            f"ONNX parity check failed: max |onnxruntime - torch| = {diff:.3g} > {bound:.3g} on "
            f"{len(images)} real images. The ONNX file was not kept; report this with your torch and "
            "onnxruntime versions."
        )
    return diff


def onnx_interface(path: Path) -> tuple[dict[str, list], dict[str, list]]:
    """The graph's inputs and outputs as {name: dims} (a symbolic dim as its name), read with onnx.

    Refuses a file that is not ONNX, or that pulls tensors from external files (which the
    manifest does not cover): a labeler's ONNX file is self-contained.
    """
    import onnx
    from onnx.external_data_helper import uses_external_data

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as e:  # protobuf raises its own decode errors
        raise ArtifactError(f"{path} is not a readable ONNX file: {e}") from e
    tensors = [*graph.initializer, *(a.t for n in graph.node for a in n.attribute if a.HasField("t"))]
    if any(uses_external_data(t) for t in tensors):
        raise ArtifactError(f"{path} reads tensors from files outside it (ONNX external data); a labeler's ONNX "
                            "file is self-contained. Export the labeler again.")
    initializers = {t.name for t in graph.initializer}

    def dims(value) -> list:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    return ({v.name: dims(v) for v in graph.input if v.name not in initializers},
            {v.name: dims(v) for v in graph.output})
