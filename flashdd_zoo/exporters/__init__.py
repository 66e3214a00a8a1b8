"""Exporters: safetensors weights, verified ONNX, sha256 manifest, atomic labeler folders."""

from .artifact import export_labeler
from .manifest import verify_manifest, write_manifest
from .onnx_export import check_parity, export_onnx
from .weights import load_weights, save_weights

__all__ = ["check_parity", "export_labeler", "export_onnx", "load_weights", "save_weights",
           "verify_manifest", "write_manifest"]
