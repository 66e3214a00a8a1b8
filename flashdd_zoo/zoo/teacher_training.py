"""Train a teacher (ResNet-18, ConvNet-Dn, any registered network) fast: data resident on the device as uint8, batched augmentation,
bf16 autocast and channels_last on CUDA, checkpoints along the trajectory, resumable."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.images import ImageSet, load_split, normalize, training_split
from ..data.registry import Dataset
from ..errors import FlashDDError
from ..exporters import export_labeler
from ..kinds import TEACHER
from ..models import DEFAULT_SINGLE, build_model, full_architecture
from .augment import random_resized_crop, random_translate_flip
from .checkpoints import load_checkpoint, read_checkpoint_meta, restore_optimizer, save_checkpoint
from .runtime import autocast, generator, param_groups, pick_device, prepare_model, progress, seed_everything, top1_accuracy


@dataclass(frozen=True)
class TeacherRecipe:
    """SGD + Nesterov, linear warm-up then cosine decay per step, label smoothing."""

    epochs: int = 30
    batch_size: int = 512
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    width_scale: float = 1.0  # 1.0 = the full network; smaller only for quick CPU runs
    seed: int = 0
    stem: str | None = None  # "cifar" (3x3/1) or "imagenet" (7x7/2 + pool); None: the dataset's default
    holdout_per_class: int = 0  # training images per class kept out for accuracy-reading choices
    network: str = DEFAULT_SINGLE.name  # a name from models.network_names()

    def stem_for(self, dataset: Dataset) -> str:
        return self.stem or dataset.spec.stem

    def architecture(self, dataset: Dataset) -> dict:
        return full_architecture(self.network, dataset.num_classes, self.stem_for(dataset), dataset.resolution,
                                 self.width_scale)

    def to_json(self) -> dict:
        """The recipe as checkpoints and build keys record it; the default network is left out, so runs and
        build stages recorded before the field existed still resume."""
        doc = dataclasses.asdict(self)
        if doc["network"] == DEFAULT_SINGLE.name:
            del doc["network"]
        return doc

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        warm = self.warmup_epochs * steps_per_epoch
        total = self.epochs * steps_per_epoch
        if step < warm:
            return self.lr * (step + 1) / warm
        return 0.5 * self.lr * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


@dataclass
class TeacherResult:
    labeler_dir: Path
    top1: float
    train_seconds: float
    checkpoints: dict[int, Path]
    resumed_from_epoch: int  # 0 for a fresh run
    images_per_second: float = 0.0  # training throughput over every epoch, resumed ones included


def augment_for_training(x: torch.Tensor, resolution: int, g: torch.Generator) -> torch.Tensor:
    """Pad-and-crop + flip at CIFAR scale; RandomResizedCrop + flip at ImageNet scale."""
    if resolution <= 64:
        return random_translate_flip(x, pad=resolution // 8, g=g)
    return random_resized_crop(x, resolution, scale=(0.25, 1.0), g=g)


def train_teacher(
    dataset: Dataset,
    out_dir: str | Path,
    recipe: TeacherRecipe = TeacherRecipe(),
    checkpoint_epochs: tuple[int, ...] = (),
    device: str | None = None,
    train: ImageSet | None = None,
    val: ImageSet | None = None,
    show_progress: bool = True,
) -> TeacherResult:
    """Train (or resume) a teacher in `out_dir`; export it as the labeler folder out_dir/teacher.

    `out_dir/last` holds the resumable state after every epoch; `out_dir/checkpoints/epoch-XXXX`
    the trajectory checkpoints asked for (early, weak teachers for HeLIO and LADD).
    """
    out_dir, dev = Path(out_dir), pick_device(device)
    train = train if train is not None else training_split(dataset, recipe.holdout_per_class)[0]
    val = val if val is not None else load_split(dataset, dataset.val_split())
    mean, std = dataset.spec.mean, dataset.spec.std
    seed_everything(recipe.seed)
    model = prepare_model(build_model(recipe.architecture(dataset)), dev)
    optimizer = _sgd(model, recipe)
    start_epoch, seconds = _resume(out_dir / "last", recipe, model, optimizer, dev)
    images, labels = train.images.to(dev), train.labels.to(dev)
    steps = math.ceil(len(train) / recipe.batch_size)
    saved = {e: out_dir / "checkpoints" / f"epoch-{e:04d}" for e in checkpoint_epochs if e <= start_epoch}
    with progress(not show_progress) as bar:
        task = bar.add_task(f"teacher {dataset.name}", total=recipe.epochs, completed=start_epoch, status="")
        if start_epoch:  # state is saved at epoch ends, with each epoch's own RNG stream: exact
            bar.console.print(f"resuming {out_dir} after epoch {start_epoch} (an interrupted epoch restarts from "
                              "its beginning; the weights equal an uninterrupted run's)")
        for epoch in range(start_epoch, recipe.epochs):
            t0 = time.perf_counter()
            loss = _train_epoch(model, optimizer, images, labels, recipe, epoch, steps, dataset, dev)
            seconds += time.perf_counter() - t0
            meta = {"epoch": epoch + 1, "recipe": recipe.to_json(), "train_seconds": seconds,
                    "dataset": dataset.name, "input": dataset.input_json(), "metrics": {"train_loss": loss}}
            if epoch + 1 in checkpoint_epochs:
                top1 = top1_accuracy(model, val, mean, std, dev)
                path = out_dir / "checkpoints" / f"epoch-{epoch + 1:04d}"
                saved[epoch + 1] = save_checkpoint(path, model, {**meta, "metrics": {"teacher_top1": top1}})
            save_checkpoint(out_dir / "last", model, meta, optimizer)
            bar.update(task, advance=1, status=f"loss {loss:.3f}")
    top1 = top1_accuracy(model, val, mean, std, dev)
    labeler = export_labeler(
        model, out_dir / "teacher", name=TEACHER.default_name(model.arch, dataset.name.replace(":", "-")),
        kind=TEACHER.name, class_names=dataset.class_names, resolution=dataset.resolution,
        mean=mean, std=std, sample_images=val.spread(32),
        lineage={"dataset": dataset.name, "val_split": dataset.val_split(), "teacher": "trained by flashdd-zoo",
                 "recipe": recipe.to_json()},
        metrics={"teacher_top1": top1, "full_teacher_top1": top1, "train_seconds": seconds,
                 "train_epochs": recipe.epochs},
    )
    (out_dir / "teacher_report.json").write_text(json.dumps(
        {"top1": top1, "train_seconds": seconds, "epochs": recipe.epochs,
         "checkpoints": {str(k): str(v) for k, v in sorted(saved.items())}}, indent=2) + "\n")
    return TeacherResult(labeler, top1, seconds, saved, start_epoch, len(train) * recipe.epochs / max(seconds, 1e-9))


def fit(model, train: ImageSet, dataset: Dataset, recipe: TeacherRecipe, dev: torch.device) -> float:
    """Train `model` for recipe.epochs with a fresh optimizer (used to fine-tune pruned nets);
    returns the last epoch's mean loss."""
    optimizer = _sgd(model, recipe)
    images, labels = train.images.to(dev), train.labels.to(dev)
    steps = math.ceil(len(train) / recipe.batch_size)
    loss = float("nan")
    for epoch in range(recipe.epochs):
        loss = _train_epoch(model, optimizer, images, labels, recipe, epoch, steps, dataset, dev)
    return loss


def _sgd(model, recipe: TeacherRecipe) -> torch.optim.SGD:
    return torch.optim.SGD(param_groups(model, recipe.weight_decay), lr=recipe.lr,
                           momentum=recipe.momentum, nesterov=True)


def _train_epoch(model, optimizer, images, labels, recipe, epoch, steps, dataset, dev) -> float:
    model.train()
    g = generator(dev, recipe.seed * 100_003 + epoch)  # per-epoch stream: resume is exact
    order = torch.randperm(len(images), generator=g, device=dev)
    total = torch.zeros((), device=dev)
    for i in range(steps):
        idx = order[i * recipe.batch_size : (i + 1) * recipe.batch_size]
        x = augment_for_training(normalize(images[idx], dataset.spec.mean, dataset.spec.std), dataset.resolution, g)
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr_at(epoch * steps + i, steps)
        with autocast(dev):
            loss = F.cross_entropy(model(x), labels[idx], label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach()
    return float(total) / steps


def _resume(last: Path, recipe, model, optimizer, dev) -> tuple[int, float]:
    """Continue from out_dir/last when it was written with the same recipe."""
    if not (last / "checkpoint.json").is_file():
        return 0, 0.0
    meta = read_checkpoint_meta(last)
    if meta.get("recipe") != recipe.to_json():
        raise FlashDDError(
            f"{last.parent} holds a teacher run with a different recipe {meta.get('recipe')}; "
            "use another --out folder, or delete it to start over."
        )
    saved, _ = load_checkpoint(last)
    model.load_state_dict(saved.state_dict())
    restore_optimizer(last, optimizer)
    for state in optimizer.state.values():  # optimizer tensors onto the training device
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                state[k] = v.to(dev)
    return int(meta["epoch"]), float(meta["train_seconds"])
