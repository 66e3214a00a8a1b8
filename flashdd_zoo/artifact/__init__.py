"""The labeler folder format that exporters write and loaders read: config.json, metrics.json."""

from .config import (
    CARD,
    CONFIG,
    DEFAULT_TEMPERATURE,
    FORMAT,
    FORMAT_VERSION,
    METRICS,
    ONNX,
    REQUIRED_FILES,
    WEIGHTS,
    InputSpec,
    LabelerConfig,
    read_config,
    write_config,
)
from .metrics import read_metrics, write_metrics

__all__ = ["CARD", "CONFIG", "DEFAULT_TEMPERATURE", "FORMAT", "FORMAT_VERSION", "METRICS", "ONNX", "REQUIRED_FILES",
           "WEIGHTS", "InputSpec", "LabelerConfig", "read_config", "read_metrics", "write_config", "write_metrics"]
