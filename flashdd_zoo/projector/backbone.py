"""Pinned backbone references: SPEC strings, the weights file's sha256, and finding that file again.

A projector stores only its adapter, so config.json pins the backbone it was trained on: library,
model name and the sha256 of the weights file. Loading finds the file (a `backbone=` path, the
directories in $FLASHDD_ZOO_BACKBONES, or the path recorded at training) and refuses any other bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, ArtifactError, ArtifactMismatchError
from ..exporters.manifest import sha256_file

LIBRARIES = ("open_clip", "timm", "flashdd-zoo")
ENV = "FLASHDD_ZOO_BACKBONES"  # os.pathsep-separated directories searched for a backbone's weights file


@dataclass(frozen=True)
class BackboneRef:
    """What config.json records about the backbone: enough to rebuild it and to recognise its weights."""

    library: str
    name: str  # the library's model name ('RN50', 'resnet18'); a folder's own name for flashdd-zoo
    sha256: str
    file: str  # the weights file's name (where it was at training is `path`)
    path: str = ""  # where the file was at training: the first place looked, after backbone=
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. open_clip's model config, for custom models

    def to_json(self) -> dict[str, Any]:
        return {"library": self.library, "name": self.name, "sha256": self.sha256, "file": self.file,
                "path": self.path, **({"extra": self.extra} if self.extra else {})}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> BackboneRef:
        return cls(str(doc["library"]), str(doc["name"]), str(doc["sha256"]), str(doc["file"]),
                   str(doc.get("path", "")), dict(doc.get("extra") or {}))

    @property
    def pin(self) -> str:
        """One string naming these exact weights (written as peft's base_model_name_or_path)."""
        return f"{self.library}:{self.name}@sha256:{self.sha256}"


@dataclass(frozen=True)
class Spec:
    """A parsed `--backbone` SPEC: library, model name and the local weights file (or folder)."""

    library: str
    name: str
    path: Path


def parse_spec(text: str) -> Spec:
    """'open_clip:NAME@FILE', 'timm:NAME@FILE' or 'flashdd-zoo:FOLDER' (a bare labeler folder works too)."""
    library, sep, rest = text.partition(":")
    if not sep and Path(text).is_dir():
        library, rest = "flashdd-zoo", text
    if library not in LIBRARIES:
        raise ArgumentError(f"backbone {text!r}: expected open_clip:MODEL@WEIGHTS_FILE, timm:MODEL@WEIGHTS_FILE or "
                            "flashdd-zoo:FOLDER (a labeler folder or a training checkpoint folder).")
    if library == "flashdd-zoo":
        name, path = Path(rest).name, Path(rest)
    else:
        name, at, file = rest.rpartition("@")
        if not at or not name:
            raise ArgumentError(f"backbone {text!r} names no weights file: write {library}:MODEL@/path/to/weights "
                                "(weights are never downloaded; a Hugging Face cache file path works).")
        path = Path(file).expanduser()
    if not path.exists():
        raise ArgumentError(f"backbone {text!r}: {path} does not exist. Give the local weights file "
                            f"(or, for flashdd-zoo, the folder) the backbone is loaded from.")
    return Spec(library, name, path)


def resolve_weights(ref: BackboneRef, given: str | Path | None, weights_name: str) -> Path:
    """The backbone's weights file whose sha256 is the pinned one, looked for where the docstring says.

    A file that exists but hashes differently is refused when it was asked for by name (backbone=);
    the search otherwise moves on. `weights_name` is the file inside a folder backbone.
    """
    if given is not None:
        path = _weights_in(Path(given), weights_name)
        if not path.is_file():
            raise ArtifactError(f"backbone={given!s}: {path} does not exist. {how_to_provide(ref)}")
        return check_hash(ref, path)
    for candidate in _candidates(ref, weights_name):
        if candidate.is_file() and sha256_file(candidate) == ref.sha256:
            return candidate
    raise ArtifactError(f"the projector's backbone {ref.library}:{ref.name} (weights {ref.file}, sha256 "
                        f"{ref.sha256[:12]}...) is not on this machine. {how_to_provide(ref)}")


def check_hash(ref: BackboneRef, path: Path) -> Path:
    found = sha256_file(path)
    if found != ref.sha256:
        raise ArtifactMismatchError(f"backbone weights {path} have sha256 {found[:12]}... but the projector was trained "
                                    f"on {ref.library}:{ref.name} with sha256 {ref.sha256[:12]}...; its adapter "
                                    f"only fits those weights. {how_to_provide(ref)}")
    return path


def how_to_provide(ref: BackboneRef) -> str:
    where = "folder" if ref.library == "flashdd-zoo" else "file"
    return (f"Provide the {where} with load_labeler(..., backbone='/path/to/{ref.file}') (CLI: --backbone), "
            f"or put {ref.file} in a directory listed in ${ENV}.")


def _weights_in(path: Path, weights_name: str) -> Path:
    return path / weights_name if path.is_dir() else path


def _candidates(ref: BackboneRef, weights_name: str) -> list[Path]:
    dirs = [Path(d) for d in os.environ.get(ENV, "").split(os.pathsep) if d]
    found = [_weights_in(d / ref.file, weights_name) for d in dirs] + [d / ref.file for d in dirs]
    if ref.path:
        found.append(_weights_in(Path(ref.path), weights_name))
    return found
