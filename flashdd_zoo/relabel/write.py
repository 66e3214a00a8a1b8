"""Writing a relabel store: every epoch's views of D_S, labelled once, for stored-label pipelines.

The batch order and the views come from the generators the online student loop draws from
(zoo/evaluate.py: epoch_generators, batch_indices, draw_view), so a store written with seed s holds
exactly the batches an online run with seed s labels (on the same device type).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomic import atomic_dir
from ..data.images import decode_files, normalize
from ..data.registry import Dataset
from ..errors import ArgumentError
from ..exporters.manifest import write_manifest
from ..zoo.augment import ViewRecipe, apply_view, draw_view
from ..zoo.distilled import distilled_files, distilled_sha256
from ..zoo.evaluate import batch_indices, epoch_generators
from ..zoo.runtime import pick_device, progress
from .card import write_card
from .store import DESCRIPTION, FORMAT, STORE_KIND, ShardWriter, encode_batch, image_entries, labeler_identity

SHARD_TARGET_BYTES = 256 << 20  # default shard size; shards are read whole, one at a time


@dataclass(frozen=True)
class RelabelPlan:
    epochs: int
    batch_size: int = 100
    seed: int = 0
    temperature: float = 20.0  # soft labels = softmax(logits / T), as the online loop's KL uses them
    topk: int | None = None  # keep only the k largest probabilities per image
    recipe: ViewRecipe = field(default_factory=ViewRecipe)
    shard_batches: int | None = None  # None: about SHARD_TARGET_BYTES per shard

    def check(self, num_classes: int) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ArgumentError(f"relabel needs epochs >= 1 and batch size >= 1, got {self.epochs} and {self.batch_size}.")
        if self.topk is not None and not 1 <= self.topk <= num_classes:
            raise ArgumentError(f"top-k must be between 1 and the {num_classes} classes, got {self.topk}.")
        if self.temperature <= 0:
            raise ArgumentError(f"temperature must be positive, got {self.temperature}.")
        if self.shard_batches is not None and self.shard_batches < 1:
            raise ArgumentError(f"shard batches must be >= 1, got {self.shard_batches}.")


def relabel(distilled: str | Path, dataset: Dataset, labeler, out: str | Path, plan: RelabelPlan,
            device: str | None = None, show_progress: bool = True) -> Path:
    """Label every view of `plan.epochs` epochs of D_S with `labeler` and write the store `out` atomically."""
    plan.check(labeler.num_classes)
    dev, root = pick_device(device), Path(distilled)
    files, labels = distilled_files(root, dataset)
    images = decode_files(files, None).to(dev)
    mean, std = labeler.input_normalization  # the views are what the labeler expects to be fed
    batch = min(plan.batch_size, len(files))
    steps = math.ceil(len(files) / batch)
    shard_batches = plan.shard_batches or _default_shard_batches(batch, labeler.num_classes, plan.topk)
    t0 = time.perf_counter()
    with atomic_dir(out) as tmp:
        writer = ShardWriter(tmp, shard_batches)
        with progress(not show_progress) as bar:
            task = bar.add_task("relabel", total=plan.epochs, status="")
            for epoch in range(plan.epochs):
                _label_epoch(images, labeler, dataset.resolution, plan, epoch, mean, std, writer)
                bar.update(task, advance=1)
        writer.flush()
        seconds = time.perf_counter() - t0
        doc = _description(root, files, labels, dataset, labeler, plan, batch, steps, shard_batches,
                           mean, std, writer, seconds, dev)
        (tmp / DESCRIPTION).write_text(json.dumps(doc, indent=2) + "\n")
        write_card(tmp, doc)
        write_manifest(tmp)
    return Path(out)


def _label_epoch(images, labeler, size, plan, epoch, mean, std, writer) -> None:
    g, g_aug = epoch_generators(images.device, plan.seed, epoch)
    for idx in batch_indices(len(images), min(plan.batch_size, len(images)), g, images.device):
        params = draw_view(len(idx), size, plan.recipe, g_aug, images.device)
        x, _, _ = apply_view(normalize(images[idx], mean, std), params, size)
        soft = labeler.soft_labels(x, plan.temperature, epoch=epoch)
        writer.add(encode_batch(idx, params, soft, plan.topk, len(images)))


def _default_shard_batches(batch: int, num_classes: int, topk: int | None) -> int:
    per_image = 2 * num_classes if topk is None else 4 * topk  # float16 labels (+ their indices)
    return max(1, SHARD_TARGET_BYTES // (batch * (per_image + 32)))  # + at most about 32 bytes of view parameters


def _description(root, files, labels, dataset, labeler, plan, batch, steps, shard_batches, mean, std, writer,
                 seconds, dev) -> dict:
    shard_bytes = sum((writer.folder / s["file"]).stat().st_size for s in writer.shards)
    return {
        "kind": STORE_KIND, "format": FORMAT,
        "distilled": {"path": str(root), "sha256": distilled_sha256(root), "class_names": list(dataset.class_names),
                      "images": image_entries(root, files, labels)},
        "labeler": labeler_identity(labeler),
        "recipe": {**asdict(plan.recipe), "size": dataset.resolution, "mean": list(mean), "std": list(std)},
        "seed": plan.seed, "epochs": plan.epochs, "batch_size": batch, "steps_per_epoch": steps,
        "temperature": plan.temperature, "topk": plan.topk, "labels_dtype": "float16",
        "generator_device": dev.type,  # views drawn on CUDA differ from views drawn on the CPU
        "shard_batches": shard_batches, "shards": writer.shards,
        "bytes": {"shards": shard_bytes, "labels": writer.tensor_bytes["labels"],
                  "params": writer.tensor_bytes["params"], "labeler_weights": labeler.storage_bytes},
        "seconds": seconds,
    }
