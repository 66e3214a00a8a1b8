"""sha256 manifest of a labeler folder: written last, checked before anything is loaded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath

from ..errors import ArtifactError, ArtifactPathError

MANIFEST = "manifest.json"
ALGORITHM = "sha256"
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
    manifest = {"algorithm": ALGORITHM, "files": files}
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
        if manifest["algorithm"] != ALGORITHM:
            raise ValueError(f"algorithm {manifest['algorithm']!r}, but flashdd-zoo checks {ALGORITHM} only")
        for entry in manifest["files"].values():
            if not (isinstance(entry["sha256"], str) and isinstance(entry["bytes"], int)):
                raise ValueError(f"entry {entry!r} needs a sha256 string and a bytes count")
    except (ValueError, KeyError, AttributeError, TypeError) as e:
        raise ArtifactError(f"{path} is not a valid manifest: {e}") from e
    return manifest


def listed_path(folder: Path, rel: str) -> Path:
    """Where the manifest entry `rel` lies, refusing any way out of `folder`.

    One rule for local folders and Hub downloads: a plain relative POSIX path (no '..', '.', empty
    or absolute parts, no backslash or drive), and, once on disk, no link that resolves outside the
    folder (a Hugging Face cache snapshot's links into its own repo's blob store are the exception).
    """
    parts = rel.split("/")
    if PurePosixPath(rel).is_absolute() or any(p in ("", ".", "..") or "\\" in p or ":" in p for p in parts):
        raise ArtifactPathError(f"{folder / MANIFEST} lists {rel!r}, a path outside the labeler folder; refusing "
                                "this artifact. A labeler's manifest names only files inside its folder.")
    path = folder / rel
    if path.is_symlink() or path.exists():
        target = path.resolve()
        if not any(target.is_relative_to(root) for root in _link_roots(folder)):
            raise ArtifactPathError(f"{path} links to {target}, outside the labeler folder; refusing this artifact. "
                                    "Replace the link by a copy of the file (and rewrite the manifest).")
    return path


def _link_roots(folder: Path) -> list[Path]:
    """Where a listed file may resolve: the folder, plus the blob store of the HF cache repo holding it."""
    root = folder.resolve()
    # huggingface_hub's cache: <repo>/snapshots/<commit>/<files> are links to <repo>/blobs/<hash>
    snapshot = next((p for p in (root, *root.parents) if p.parent.name == "snapshots"), None)
    blobs = snapshot.parent.parent / "blobs" if snapshot is not None else None
    return [root, blobs] if blobs is not None and blobs.is_dir() else [root]


def verify_manifest(folder: Path, required: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> dict:
    """Check every listed file's size and sha256; refuse missing, truncated or altered files."""
    manifest = read_manifest(folder)
    files = manifest["files"]
    for name in required:
        if name not in files:
            raise ArtifactError(f"{folder}/{MANIFEST} does not list required file {name}.")
    paths = {rel: listed_path(folder, rel) for rel in files}  # every path, before any file is read
    for rel, entry in files.items():
        if rel in ignore:
            continue
        path = paths[rel]
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
