"""A relabel store on disk: relabel.json, safetensors shards, a README.md card, manifest.json.

relabel.json binds the store to its D_S (every image's path and sha256, in replay order) and to
its labeler (the sha256 of the files that define the labeler's function); each shard holds the
view parameters and soft labels of consecutive batches (a shard may straddle epochs). No pickle:
shards are safetensors, everything else JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..artifact.config import CARD, METRICS
from ..data.registry import IMAGE_SUFFIXES
from ..errors import ArgumentError, RelabelDistilledMismatch, RelabelLabelerMismatch, RelabelStoreError
from ..exporters.manifest import MANIFEST, read_manifest, sha256_file
from ..zoo.augment import CropParams, MixParams, ViewParams

DESCRIPTION = "relabel.json"
STORE_KIND = "flashdd-zoo relabel store"
FORMAT = 1
SHARD_PATTERN = re.compile(r"shard-\d{5}\.safetensors")
LABEL_FIELDS = ("soft", "topk_values", "topk_indices")
TOPK_FILLS = ("spread", "renormalize")


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.safetensors"


# -- binding to D_S ----------------------------------------------------------------------------
def image_entries(root: Path, files: list[Path], labels: list[int]) -> list[dict[str, Any]]:
    """D_S's images in replay order: relative path, sha256 of the file, label."""
    return [{"path": f.relative_to(root).as_posix(), "sha256": sha256_file(f), "label": int(c)}
            for f, c in zip(files, labels)]


def check_distilled(description: dict, root: Path, store: Path) -> list[Path]:
    """The files of D_S `root` in replay order, each one the store labelled; otherwise
    RelabelDistilledMismatch naming the first image that differs."""
    root, recorded = Path(root), description["distilled"]["images"]
    fix = (f"Replay {store} against the D_S it was written for, or write a store for {root} with "
           "`flashdd-zoo relabel`.")
    if not root.is_dir():
        raise RelabelDistilledMismatch(f"distilled set {root} does not exist. {fix}")
    for i, entry in enumerate(recorded):
        path = root / entry["path"]
        if not path.is_file():
            raise RelabelDistilledMismatch(f"{root} lacks {entry['path']}, image {i} of the {len(recorded)} "
                                           f"{store} labelled. {fix}")
        sha = sha256_file(path)
        if sha != entry["sha256"]:
            raise RelabelDistilledMismatch(f"{path} differs from image {i} that {store} labelled (sha256 "
                                           f"{sha[:16]}..., the store's {entry['sha256'][:16]}...). {fix}")
    known = {e["path"] for e in recorded}
    extra = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.relative_to(root).as_posix() not in known)
    if extra:
        raise RelabelDistilledMismatch(f"{root / extra[0]} is not one of the {len(recorded)} images {store} "
                                       f"labelled ({len(extra)} such images). {fix}")
    return [root / e["path"] for e in recorded]


# -- binding to the labeler --------------------------------------------------------------------
def labeler_identity(labeler) -> dict[str, Any]:
    """Name, kind and the sha256 (from its verified manifest) of every file that defines the labeler's
    function: its required files but the card and metrics.json, which measurements rewrite."""
    if labeler.folder is None:
        raise ArgumentError("a relabel store is bound to its labeler's files: load the labeler from a folder or a "
                            "Hub repo (load_labeler), not from an in-memory module.")
    defining = set(labeler.config.required_files) - {CARD, METRICS}
    files = {rel: e["sha256"] for rel, e in sorted(read_manifest(labeler.folder)["files"].items()) if rel in defining}
    fingerprint = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return {"name": labeler.config.name, "kind": labeler.config.kind, "fingerprint": fingerprint, "files": files,
            "weights_bytes": labeler.storage_bytes, "backend": labeler.backend}


def check_labeler(description: dict, labeler, store: Path) -> None:
    """Refuse (RelabelLabelerMismatch) a labeler other than the one that wrote the store."""
    want, have = description["labeler"], labeler_identity(labeler)
    if have["fingerprint"] == want["fingerprint"]:
        return
    differing = sorted(r for r in set(want["files"]) | set(have["files"]) if want["files"].get(r) != have["files"].get(r))
    raise RelabelLabelerMismatch(
        f"{store} holds the labels of labeler {want['name']!r} (fingerprint {want['fingerprint'][:16]}...), not of "
        f"{have['name']!r} ({have['fingerprint'][:16]}...; differing files: {', '.join(differing)}). Replay it without a labeler "
        "(the labels are stored), check it against its own labeler, or write a store for this labeler with "
        "`flashdd-zoo relabel`.")


# -- batches <-> tensors -----------------------------------------------------------------------
def index_dtype(limit: int) -> torch.dtype:
    """The smallest integer dtype holding 0..limit-1 (D_S indices, CutMix permutations, classes)."""
    return torch.uint8 if limit <= 256 else torch.int16 if limit <= 32768 else torch.int32


def encode_batch(index: torch.Tensor, params: ViewParams, soft: torch.Tensor, topk: int | None,
                 images: int) -> dict[str, torch.Tensor]:
    """One batch as named CPU tensors; per-image fields have the batch's length, `size` and `box` one
    row. `images`: D_S's size, which bounds the stored indices."""
    crop = params.crop
    rec = {"index": index.to(index_dtype(images)), "size": torch.tensor([len(index)], dtype=torch.int32),
           "crop": torch.stack([crop.w, crop.h, crop.cx, crop.cy], 1).float()}
    if crop.flip is not None:
        rec["flip"] = crop.flip
    if params.shuffle is not None:
        rec["shuffle"] = torch.stack(params.shuffle, 1).to(torch.uint8)  # (n, 2, factor): width, height
    if params.mix is not None:
        rec["box"] = torch.tensor([params.mix.box], dtype=torch.int32)
        rec["perm"] = params.mix.perm.to(index_dtype(len(index)))
    if topk is None:
        rec["soft"] = soft.half()
    else:
        values, indices = soft.topk(topk, dim=1)
        rec["topk_values"] = values.half()
        rec["topk_indices"] = indices.to(index_dtype(soft.shape[1]))
    return {k: v.detach().cpu().contiguous() for k, v in rec.items()}


def decode_params(rec: dict[str, torch.Tensor]) -> ViewParams:
    crop = rec["crop"]
    crop_params = CropParams(crop[:, 0], crop[:, 1], crop[:, 2], crop[:, 3], rec.get("flip"))
    shuffle = (rec["shuffle"][:, 0].long(), rec["shuffle"][:, 1].long()) if "shuffle" in rec else None
    mix = MixParams(tuple(int(v) for v in rec["box"][0]), rec["perm"].long()) if "box" in rec else None
    return ViewParams(shuffle, crop_params, mix)


def expand_labels(rec: dict[str, torch.Tensor], num_classes: int, fill: str) -> torch.Tensor:
    """Float32 soft labels of a stored batch. Top-k stores: 'spread' puts the mass the k stored
    classes leave over evenly on the others (each row sums to 1, the k values as stored);
    'renormalize' scales the k values to sum 1 and leaves the others 0."""
    check_fill(fill)
    if "soft" in rec:
        return rec["soft"].float()
    values, indices = rec["topk_values"].float(), rec["topk_indices"].long()
    k, total = values.shape[1], values.sum(1, keepdim=True)
    if fill == "renormalize":
        return torch.zeros(len(values), num_classes).scatter_(1, indices, values / total)
    rest = (1 - total).clamp(min=0) / max(num_classes - k, 1)
    return rest.expand(-1, num_classes).clone().scatter_(1, indices, values)


def check_fill(fill: str) -> None:
    if fill not in TOPK_FILLS:
        raise ArgumentError(f"unknown top-k fill {fill!r}; use one of {', '.join(TOPK_FILLS)}.")


class ShardWriter:
    """Collects encoded batches and writes every `shard_batches` of them as one safetensors shard."""

    def __init__(self, folder: Path, shard_batches: int):
        self.folder, self.shard_batches = folder, shard_batches
        self.pending: list[dict[str, torch.Tensor]] = []
        self.shards: list[dict[str, Any]] = []
        self.tensor_bytes = {"labels": 0, "params": 0}
        self.batches = 0

    def add(self, rec: dict[str, torch.Tensor]) -> None:
        self.pending.append(rec)
        if len(self.pending) == self.shard_batches:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        tensors = {k: torch.cat([r[k] for r in self.pending]) for k in self.pending[0]}
        for k, v in tensors.items():
            self.tensor_bytes["labels" if k in LABEL_FIELDS else "params"] += v.numel() * v.element_size()
        name = shard_name(len(self.shards))
        save_file(tensors, str(self.folder / name), metadata={"format": STORE_KIND, "first_batch": str(self.batches)})
        self.shards.append({"file": name, "first_batch": self.batches, "batches": len(self.pending)})
        self.batches += len(self.pending)
        self.pending = []


# -- reading -----------------------------------------------------------------------------------
class RelabelStore:
    """A relabel store opened for reading: relabel.json checked against the manifest at once, each
    shard when first read (sha256), so opening a large store does not read all of it."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._listed = self._manifest_files()
        self._verify(DESCRIPTION)
        self.description = json.loads((self.folder / DESCRIPTION).read_text())
        self._check_description()
        self._cache: tuple[int, dict[str, torch.Tensor], torch.Tensor] | None = None

    def _manifest_files(self) -> dict[str, dict]:
        if not (self.folder / MANIFEST).is_file() or not (self.folder / DESCRIPTION).is_file():
            raise RelabelStoreError(f"{self.folder} is not a complete relabel store (it needs {DESCRIPTION} and "
                                    f"{MANIFEST}); write it with `flashdd-zoo relabel`.")
        return read_manifest(self.folder)["files"]

    def _verify(self, name: str) -> None:
        path, entry = self.folder / name, self._listed.get(name)
        if entry is None:
            raise RelabelStoreError(f"{self.folder}/{MANIFEST} does not list {name}; the store is incomplete. "
                                    "Write it again with `flashdd-zoo relabel`.")
        if not path.is_file() or path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            raise RelabelStoreError(f"{path} is missing, truncated or altered (it does not match its sha256 in "
                                    f"{MANIFEST}). Write the store again with `flashdd-zoo relabel`.")

    def _check_description(self) -> None:
        d = self.description
        if d.get("kind") != STORE_KIND or d.get("format") != FORMAT:
            raise RelabelStoreError(f"{self.folder / DESCRIPTION} is not a format-{FORMAT} {STORE_KIND} (kind "
                                    f"{d.get('kind')!r}, format {d.get('format')!r}); upgrade flashdd-zoo or relabel.")
        for shard in d["shards"]:
            if not SHARD_PATTERN.fullmatch(shard["file"]) or shard["file"] not in self._listed:
                raise RelabelStoreError(f"{self.folder / DESCRIPTION} names shard {shard['file']!r}, which is not a "
                                        f"shard listed in {MANIFEST}; the store is altered. Write it again.")

    # -- facts ---------------------------------------------------------------------------------
    @property
    def batches(self) -> int:
        return self.description["epochs"] * self.description["steps_per_epoch"]

    @property
    def num_classes(self) -> int:
        return len(self.description["distilled"]["class_names"])

    def epoch_of(self, batch: int) -> int:
        return batch // self.description["steps_per_epoch"]

    def verify_shards(self) -> int:
        """Check every shard against its sha256 now (reading otherwise checks each when first read)."""
        for shard in self.description["shards"]:
            self._verify(shard["file"])
        return len(self.description["shards"])

    # -- batches -------------------------------------------------------------------------------
    def batch(self, b: int) -> dict[str, torch.Tensor]:
        """The stored tensors of global batch `b` (epoch * steps_per_epoch + step)."""
        if not 0 <= b < self.batches:
            raise IndexError(f"batch {b} outside the store's {self.batches} batches")
        s = self._shard_of(b)
        tensors, offsets = self._load(s)
        j = b - self.description["shards"][s]["first_batch"]
        lo, hi = int(offsets[j]), int(offsets[j + 1])
        return {k: (v[j : j + 1] if k in ("size", "box") else v[lo:hi]) for k, v in tensors.items()}

    def _shard_of(self, b: int) -> int:
        for s, shard in enumerate(self.description["shards"]):
            if shard["first_batch"] <= b < shard["first_batch"] + shard["batches"]:
                return s
        raise RelabelStoreError(f"{self.folder / DESCRIPTION} lists no shard holding batch {b}; the store is altered.")

    def _load(self, s: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        if self._cache is None or self._cache[0] != s:
            name = self.description["shards"][s]["file"]
            self._verify(name)
            tensors = load_file(str(self.folder / name))
            offsets = torch.cat([torch.zeros(1, dtype=torch.int64), tensors["size"].long().cumsum(0)])
            self._cache = (s, tensors, offsets)
        return self._cache[1], self._cache[2]
