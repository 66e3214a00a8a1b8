"""config.json of a labeler folder: the typed, versioned description of the function it computes.

Read and validated once (LabelerConfig.from_json); written once, at export. Measured numbers live
in metrics.json (artifact/metrics.py), so config.json never changes after export.

Format versions: 1 kept the metrics inside config.json; 2 (written since) keeps them in
metrics.json, listed in the manifest like every other file. Both are read.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArtifactError, ArtifactMismatchError

if TYPE_CHECKING:
    from ..kinds import Kind

FORMAT = "flashdd-zoo/labeler"
FORMAT_VERSION = 2
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
ONNX = "model.onnx"
CARD = "README.md"
METRICS = "metrics.json"
REQUIRED_FILES = (CONFIG, WEIGHTS, ONNX, CARD, METRICS)
REQUIRED_FILES_V1 = (CONFIG, WEIGHTS, ONNX, CARD)

# RDED trains students with CutMix and soft labels at temperature 20
DEFAULT_TEMPERATURE = 20.0
INPUT_NOTE = "images in [0,1], then (x - mean) / std, as DD training loops feed teachers"
OUTPUT = {"type": "logits", "soft_labels": "softmax(logits / temperature)"}
# a bound on config.json's image side, so a hostile config cannot make the loader's probe batch huge
MAX_SIDE = 1024


def _version() -> str:
    from .. import __version__

    return __version__


@dataclass(frozen=True)
class InputSpec:
    """What the labeler takes: NCHW float32 images of `size`, normalised with mean and std."""

    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channels: int = 3

    def __post_init__(self) -> None:
        if not all(1 <= side <= MAX_SIDE for side in self.size):
            raise ArtifactError(f"input size {self.size} must be 1 to {MAX_SIDE} pixels a side.")
        if self.channels < 1 or not len(self.mean) == len(self.std) == self.channels:
            raise ArtifactError(f"input mean {self.mean} and std {self.std} must give one value per channel "
                                f"({self.channels}).")

    def to_json(self) -> dict[str, Any]:
        return {"layout": "NCHW", "channels": self.channels, "size": list(self.size), "dtype": "float32",
                "normalized": True, "mean": list(self.mean), "std": list(self.std), "note": INPUT_NOTE}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> InputSpec:
        h, w = doc["size"]
        return cls(size=(int(h), int(w)), mean=tuple(float(v) for v in doc["mean"]),
                   std=tuple(float(v) for v in doc["std"]), channels=int(doc["channels"]))


@dataclass(frozen=True)
class LabelerConfig:
    """A labeler's config.json. Validated on creation: the kind exists and fits the architecture,
    one class name per output. `architecture` and `lineage` stay JSON dicts (the architecture
    family and the build recipe own their fields); treat them as read-only."""

    name: str
    kind: str
    architecture: dict[str, Any]
    class_names: tuple[str, ...]
    input: InputSpec
    temperature: float = DEFAULT_TEMPERATURE
    lineage: dict[str, Any] = field(default_factory=dict)
    plots: tuple[str, ...] = ()
    format_version: int = FORMAT_VERSION
    flashdd_zoo_version: str = field(default_factory=_version)

    def __post_init__(self) -> None:
        self.labeler_kind.check_architecture(self.architecture)
        if len(self.class_names) != self.num_classes:
            raise ArtifactError(f"{len(self.class_names)} class names for a {self.num_classes}-class network.")

    @classmethod
    def create(cls, *, name: str, kind: str, architecture: dict[str, Any], class_names: list[str], resolution: int,
               mean: tuple[float, ...], std: tuple[float, ...], temperature: float | None = None,
               lineage: dict[str, Any] | None = None, plots: list[str] | None = None) -> LabelerConfig:
        """A config in the current format for a square input of `resolution` pixels."""
        return cls(name=name, kind=kind, architecture=architecture, class_names=tuple(class_names),
                   input=InputSpec((resolution, resolution), tuple(mean), tuple(std)),
                   temperature=DEFAULT_TEMPERATURE if temperature is None else float(temperature),
                   lineage=dict(lineage or {}), plots=tuple(plots or ()))

    @property
    def num_classes(self) -> int:
        return int(self.architecture["num_classes"])

    @property
    def labeler_kind(self) -> Kind:
        from ..kinds import get_kind

        return get_kind(self.kind)

    @property
    def required_files(self) -> tuple[str, ...]:
        return REQUIRED_FILES_V1 if self.format_version == 1 else self.labeler_kind.stored_files(self)

    def upgraded(self) -> LabelerConfig:
        """The same config in the current format (for a format-1 folder whose metrics are rewritten)."""
        return dataclasses.replace(self, format_version=FORMAT_VERSION)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "flashdd_zoo_version": self.flashdd_zoo_version,
            "name": self.name,
            "kind": self.kind,
            "architecture": self.architecture,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "input": self.input.to_json(),
            "output": dict(OUTPUT),
            "temperature": float(self.temperature),
            "lineage": self.lineage,
            "plots": list(self.plots),
        }

    @classmethod
    def from_json(cls, doc: Any, where: str | Path = CONFIG) -> LabelerConfig:
        """Check format and version, then every field; ArtifactError names what is wrong and the fix."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ArtifactError(f"{where} is not a flashdd-zoo labeler config (format != {FORMAT!r}).")
        version = doc.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            folder = Path(where).parent if Path(where).name == CONFIG else where
            raise ArtifactError(
                f"{folder} was written in artifact format version {version!r} (by flashdd-zoo "
                f"{doc.get('flashdd_zoo_version', '?')}); this flashdd-zoo reads up to version "
                f"{FORMAT_VERSION}. Upgrade: pip install -U flashdd-zoo."
            )
        try:
            config = cls(name=str(doc["name"]), kind=doc["kind"], architecture=doc["architecture"],
                       class_names=tuple(doc["class_names"]), input=InputSpec.from_json(doc["input"]),
                       temperature=float(doc["temperature"]), lineage=dict(doc.get("lineage") or {}),
                       plots=tuple(doc.get("plots") or ()), format_version=version,
                       flashdd_zoo_version=str(doc.get("flashdd_zoo_version", "?")))
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ArtifactError):
                raise
            raise ArtifactError(f"{where} is missing or has a malformed field ({e!r}); export the labeler again.") from e
        if doc.get("num_classes", config.num_classes) != config.num_classes:
            raise ArtifactMismatchError(f"{where} says num_classes {doc['num_classes']!r} but its architecture has "
                                        f"{config.num_classes} classes; the file was edited. Export the labeler again.")
        return config


def write_config(folder: Path, config: LabelerConfig) -> None:
    (folder / CONFIG).write_text(json.dumps(config.to_json(), indent=2) + "\n")


def read_config(folder: Path) -> LabelerConfig:
    """Read and validate config.json of a labeler folder."""
    path = folder / CONFIG
    if not path.is_file():
        raise ArtifactError(
            f"{path} is missing: {folder} is not a flashdd-zoo labeler folder "
            f"(expected {', '.join(REQUIRED_FILES)})."
        )
    try:
        doc = json.loads(path.read_text())
    except ValueError as e:
        raise ArtifactError(f"{path} is not valid JSON: {e}") from e
    return LabelerConfig.from_json(doc, path)
