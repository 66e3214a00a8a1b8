"""sha256 manifest of a labeler folder: written last, checked before anything is loaded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import ArtifactError

MANIFEST = "manifest.json"
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def artifact_files(folder: Path) -> list[str]:
    """Every file of the artifact except the manifest itself, as sorted POSIX relative paths."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
    )


def write_manifest(folder: Path) -> dict:
    files = {
        rel: {"sha256": sha256_file(folder / rel), "bytes": (folder / rel).stat().st_size}
        for rel in artifact_files(folder)
    }
    manifest = {"algorithm": "sha256", "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise ArtifactError(
            f"{folder} has no {MANIFEST}; it is not a complete flashdd-zoo labeler "
            "(re-export it with `flashdd-zoo export`)."
        )
    try:
        manifest = json.loads(path.read_text())
        manifest["files"].items()
    except (ValueError, KeyError, AttributeError) as e:
        raise ArtifactError(f"{path} is not a valid manifest: {e}") from e
    return manifest


def verify_manifest(folder: Path, required: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> dict:
    """Check every listed file's size and sha256; refuse missing, truncated or altered files."""
    manifest = read_manifest(folder)
    files = manifest["files"]
    for name in required:
        if name not in files:
            raise ArtifactError(f"{folder}/{MANIFEST} does not list required file {name}.")
    for rel, entry in files.items():
        if rel in ignore:
            continue
        path = folder / rel
        if not path.is_file():
            raise ArtifactError(f"{path} is missing; the labeler folder is incomplete (listed in {MANIFEST}).")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise ArtifactError(
                f"{path} has {size} bytes but the manifest says {entry['bytes']}: the file is "
                "truncated or altered. Download or export the labeler again."
            )
        if sha256_file(path) != entry["sha256"]:
            raise ArtifactError(
                f"{path} does not match its sha256 in {MANIFEST}: the file was altered or "
                "corrupted. Download or export the labeler again."
            )
    return manifest
