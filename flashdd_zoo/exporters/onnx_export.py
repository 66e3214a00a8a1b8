"""ONNX export with a dynamic batch axis, verified against torch with onnxruntime."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ExportError

OPSET = 18
INPUT_NAME, OUTPUT_NAME = "images", "logits"


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


def check_parity(
    model: nn.Module, path: Path, images: torch.Tensor, atol: float = 1e-4, rtol: float = 1e-4
) -> float:
    """Run torch and onnxruntime on the same real images; return max |difference| of logits.

    Raises ExportError when the difference exceeds atol + rtol * max|torch logits|.
    """
    model = model.eval().cpu()
    x = images.cpu().float()
    with torch.no_grad():
        ref = model(x).numpy()
    sess = onnx_session(path)
    got = sess.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    diff = float(np.abs(got - ref).max())
    bound = atol + rtol * float(np.abs(ref).max())
    if not np.isfinite(diff) or diff > bound:
        raise ExportError(
            f"ONNX parity check failed: max |onnxruntime - torch| = {diff:.3g} > {bound:.3g} on "
            f"{len(x)} real images. The ONNX file was not kept; report this with your torch and "
            "onnxruntime versions."
        )
    return diff
