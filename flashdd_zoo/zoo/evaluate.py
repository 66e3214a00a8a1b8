"""The downstream protocol of RDED / Flash-DD: a random student learns D_S from a labeler.

Every step: ShufflePatches + RandomResizedCrop + flip + CutMix on the batch (on the device),
soft labels from the labeler on exactly those images, loss KL(T) (RDED) or MSE + 0.025 CE
(Flash-DD), AdamW, cosine schedule. Top-1 on the real validation split; per-epoch training loss
is recorded because the capacity search reads Dis(theta) off its early part. DD-Ranking's two
reference runs use the same protocol: loss "ce" trains on D_S's hard labels (no labeler), and
evaluate_random_baseline on random real subsets of D_S's size (zoo/label_robust.py scores them).

Dense labels (LADD) are a third source: with `dense=`, no labeler runs at all; each step adds to the
hard-label CE of the global views LADD's local term, sum_j CE(crop_j, dense_j) over the N x N stored
sub-images of the batch's images, with their stored soft labels. `dense_step` says how that sum is
stepped: "image" makes it one optimizer step per batch of images (global and local views summed);
"view" makes each view batch its own step, so an epoch is one pass over the label-augmented set D_LA
(1 + N*N steps per batch of images, the same images seen and the same compute).
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable, ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..data.images import ImageSet, normalize
from ..data.registry import Dataset
from ..dense.geometry import sub_image
from ..errors import ArgumentError, DataError
from ..models import DEFAULT_SINGLE
from ..runtime.timing import LabelTimer
from .augment import ViewRecipe, apply_view, draw_view
from .distill import default_factor
from .runtime import autocast, generator, param_groups, pick_device, prepare_model, progress, seed_everything, top1_accuracy, world
from .students import build_student

if TYPE_CHECKING:
    from ..dense.store import DenseLabels

LabelFn = Callable[[torch.Tensor], torch.Tensor]  # normalised images -> logits
SOFT_LABEL_LOSSES = ("kl", "mse_ce")  # the losses that train on a labeler's soft labels
DENSE_STEPS = ("image", "view")  # dense labels: one optimizer step per batch of images, or per batch of views


@dataclass(frozen=True)
class EvalProtocol:
    epochs: int = 300
    batch_size: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.01
    loss: str = "kl"  # "kl" (RDED), "mse_ce" (Flash-DD: MSE of soft labels + 0.025 CE), "ce" (hard labels, no labeler)
    temperature: float = 20.0  # RDED with CutMix
    ce_weight: float = 0.025
    cutmix_alpha: float = 1.0
    factor: int | None = None  # ShufflePatches strips / RRC min scale 1/factor; None: by resolution
    schedule: str = "rded"  # "rded": lr * (1 + cos(pi t / 2T)) / 2 as RDED's code; "cosine": to 0
    student: str = DEFAULT_SINGLE.name
    student_stem: str | None = None  # None: the dataset's default stem
    dense_step: str = "image"  # dense labels only: "image" or "view" (one of DENSE_STEPS; see the module docstring)

    # options added after builds had cached stages under this protocol: at their defaults they stay out of
    # stage_key, so finished stages stay valid (a new option must never rerun hours of students)
    LATER_OPTIONS: ClassVar[tuple[str, ...]] = ("dense_step",)

    def stage_key(self) -> dict:
        """The protocol as part of a build stage's key (zoo/stages.py)."""
        key = asdict(self)
        for name in self.LATER_OPTIONS:
            if key[name] == getattr(EvalProtocol, name):
                del key[name]
        return key

    @property
    def uses_labeler(self) -> bool:
        return self.loss != "ce"

    def loss_text(self) -> str:
        """The loss in words, for reports."""
        return {"kl": f"KL at T = {self.temperature:g} (RDED)",
                "mse_ce": f"MSE of softmax at T = {self.temperature:g} + {self.ce_weight:g} CE (Flash-DD)",
                "ce": "CE on D_S's hard labels"}[self.loss]

    def lr_at(self, epoch: float) -> float:
        if self.schedule == "rded":
            return self.lr * 0.5 * (1 + math.cos(math.pi * epoch / self.epochs / 2))
        return self.lr * 0.5 * (1 + math.cos(math.pi * epoch / self.epochs))


@dataclass
class StudentRun:
    seed: int
    top1: float | None
    losses: list[float]
    seconds: float
    label_seconds: float  # time inside the labeler: Flash-DD's "extra time for soft labels"
    extra_top1: dict[str, float] = field(default_factory=dict)  # top-1 on further sets (e.g. the held-out slice)


@dataclass
class EvalResult:
    runs: list[StudentRun]
    protocol: EvalProtocol

    @property
    def top1s(self) -> list[float]:
        return [r.top1 for r in self.runs if r.top1 is not None]

    @property
    def top1_mean(self) -> float:
        return statistics.fmean(self.top1s)

    @property
    def top1_std(self) -> float:
        return statistics.stdev(self.top1s) if len(self.top1s) > 1 else 0.0

    def extra(self, name: str) -> dict:
        """Mean, std and per-seed top-1 on one of the further evaluation sets."""
        values = [r.extra_top1[name] for r in self.runs]
        return {"top1_mean": statistics.fmean(values), "top1_std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "top1s": values}

    def to_json(self) -> dict:
        return {"protocol": asdict(self.protocol), "top1_mean": self.top1_mean if self.top1s else None,
                "top1_std": self.top1_std if self.top1s else None,
                "runs": [asdict(r) for r in self.runs]}


def augment_batch(x: torch.Tensor, res: int, factor: int, alpha: float, g: torch.Generator):
    """RDED's training view: ShufflePatches -> RandomResizedCrop(scale 1/N..1) + flip -> CutMix.

    Returns (images, CutMix permutation, CutMix lambda)."""
    return apply_view(x, draw_view(x.shape[0], res, ViewRecipe.rded(factor, alpha), g, x.device), res)


def epoch_generators(dev: torch.device, seed: int, epoch: int, rank: int = 0) -> tuple[torch.Generator, torch.Generator]:
    """(batch order, augmentation) generators of one student epoch: the order is the same on every
    rank, the views are each rank's own. zoo/relabel.py draws from the same ones (rank 0)."""
    base = seed * 1_000_003 + epoch
    return generator(dev, base), generator(dev, base * 64 + rank + 1)


def batch_indices(n: int, batch: int, g: torch.Generator, dev: torch.device) -> list[torch.Tensor]:
    """One epoch's batches of D_S indices: a seeded permutation cut into batches (the last may be short)."""
    order = torch.randperm(n, generator=g, device=dev)
    return [order[i : i + batch] for i in range(0, n, batch)]


def _hard_ce(student_logits, labels, perm, lam) -> torch.Tensor:
    """CE with D_S's own hard labels, mixed as CutMix mixed the images."""
    return lam * F.cross_entropy(student_logits, labels) + (1 - lam) * F.cross_entropy(student_logits, labels[perm])


def _loss(student_logits, teacher_logits, labels, perm, lam, p: EvalProtocol) -> torch.Tensor:
    ce = _hard_ce(student_logits, labels, perm, lam)
    if not p.uses_labeler:
        return ce
    t = p.temperature
    soft = F.softmax(teacher_logits / t, dim=1)
    if p.loss == "kl":
        return F.kl_div(F.log_softmax(student_logits / t, dim=1), soft, reduction="batchmean")
    return F.mse_loss(F.softmax(student_logits / t, dim=1), soft) + p.ce_weight * ce


def _local_views_backward(model, x: torch.Tensor, targets: torch.Tensor, dense: DenseLabels, g: torch.Generator,
                          dev: torch.device, sync: Callable[[bool], contextlib.AbstractContextManager],
                          opt: torch.optim.Optimizer | None = None) -> torch.Tensor:
    """LADD's sum_j CE(crop_j, dense_j) for normalised images `x` with their (B, N*N, C) dense labels, one crop
    position per backward pass: the gradients add up to the whole sum's, with one batch's memory. Each view
    is flipped at random (the flip of a sub-image keeps its label). With `opt` (dense_step "view") each crop
    position is its own optimizer step instead, the positions in a random order."""
    total = torch.zeros((), device=dev)
    last = len(dense.boxes) - 1
    order = range(len(dense.boxes)) if opt is None else torch.randperm(len(dense.boxes), generator=g, device=dev).tolist()
    for n, k in enumerate(order):
        view = sub_image(x, dense.boxes[k])
        flip = torch.rand(len(view), generator=g, device=dev) < 0.5
        view = torch.where(flip[:, None, None, None], view.flip(3), view)
        if dev.type == "cuda":
            view = view.contiguous(memory_format=torch.channels_last)
        if opt is not None:
            opt.zero_grad(set_to_none=True)
        with sync(opt is not None or n == last), autocast(dev):
            logits = model(view).float()
            loss = -(targets[:, k] * F.log_softmax(logits, dim=1)).sum(1).mean()
        loss.backward()
        if opt is not None:
            opt.step()
        total += loss.detach()
    return total


def _check_label_source(label_fn: LabelFn | None, dense: DenseLabels | None, distilled: ImageSet,
                        protocol: EvalProtocol) -> None:
    if dense is not None and (label_fn is not None or protocol.uses_labeler):
        raise ArgumentError("dense labels replace the labeler: train with label_fn=None and loss 'ce' "
                            "(global views take D_S's hard labels, local views their dense labels).")
    if dense is not None and dense.labels.shape[0] != len(distilled):
        raise DataError(f"the dense labels hold {dense.labels.shape[0]} images, D_S {len(distilled)}: check "
                        "them with DenseLabels.check_distilled against the D_S folder they were made for.")
    if protocol.dense_step not in DENSE_STEPS:
        raise ArgumentError(f"dense_step {protocol.dense_step!r} is not one of {', '.join(DENSE_STEPS)}: \"image\" "
                            "steps once per batch of images, \"view\" once per batch of views.")
    if dense is None and protocol.dense_step != EvalProtocol.dense_step:
        raise ArgumentError(f"dense_step {protocol.dense_step!r} steps through dense labels: give dense labels, or "
                            f"leave dense_step at {EvalProtocol.dense_step!r}.")
    if dense is None and protocol.uses_labeler and label_fn is None:
        raise ArgumentError(f"loss {protocol.loss!r} needs soft labels: give a labeler, dense labels, or use loss 'ce'.")


def train_student(
    distilled: ImageSet,
    label_fn: LabelFn | None,
    dataset: Dataset,
    protocol: EvalProtocol,
    seed: int,
    val: ImageSet | None = None,
    stop_after: int | None = None,
    device: str | None = None,
    show_progress: bool = False,
    extra_sets: dict[str, ImageSet] | None = None,
    dense: DenseLabels | None = None,
) -> StudentRun:
    """Train one student; `stop_after` ends early (schedule unchanged) for Dis(theta) windows.
    Top-1 on `val`, and on each of `extra_sets`. With `dense` (LADD), no labeler runs: loss 'ce' on the
    global views plus the dense labels' CE on every stored sub-image of the batch."""
    _check_label_source(label_fn, dense, distilled, protocol)
    dev = pick_device(device)
    rank, size = world()
    seed_everything(seed)
    stem = protocol.student_stem or dataset.spec.stem
    student = prepare_model(build_student(protocol.student, dataset.num_classes, stem, dataset.resolution), dev)
    model = nn.parallel.DistributedDataParallel(student) if size > 1 else student
    opt = torch.optim.AdamW(param_groups(student, protocol.weight_decay), lr=protocol.lr, betas=(0.9, 0.999))
    images, labels = distilled.images.to(dev), distilled.labels.to(dev)
    dense_targets = dense.labels.to(dev).float() if dense is not None else None
    per_view = dense is not None and protocol.dense_step == "view"

    def sync(last: bool):  # under DDP, gradients are all-reduced once per step, on its last backward pass
        return model.no_sync() if size > 1 and not last else contextlib.nullcontext()
    mean, std = dataset.spec.mean, dataset.spec.std
    factor = protocol.factor or default_factor(dataset.resolution)
    batch = min(protocol.batch_size, len(images))
    steps = math.ceil(len(images) / batch)
    epochs = min(protocol.epochs, stop_after or protocol.epochs)
    losses, timer, t0 = [], LabelTimer(dev), time.perf_counter()
    with progress(not show_progress) as bar:
        task = bar.add_task(f"student seed {seed}", total=epochs, status="")
        for epoch in range(epochs):
            g, g_aug = epoch_generators(dev, seed, epoch, rank)
            for group in opt.param_groups:
                group["lr"] = protocol.lr_at(epoch)
            total = torch.zeros((), device=dev)
            for idx in batch_indices(len(images), batch, g, dev):
                idx = idx[rank::size]
                clean = normalize(images[idx], mean, std)
                x, perm, lam = augment_batch(clean, dataset.resolution, factor, protocol.cutmix_alpha, g_aug)
                if dev.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                teacher_logits = None
                if protocol.uses_labeler:
                    with timer.section(len(x)), torch.no_grad(), autocast(dev):
                        teacher_logits = label_fn(x).float()
                opt.zero_grad(set_to_none=True)
                with sync(dense is None or per_view), autocast(dev):
                    loss = _loss(model(x).float(), teacher_logits, labels[idx], perm, lam, protocol)
                loss.backward()
                total += loss.detach()
                if per_view:
                    opt.step()
                if dense is not None:
                    total += _local_views_backward(model, clean, dense_targets[idx], dense, g_aug, dev, sync,
                                                   opt if per_view else None)
                if not per_view:
                    opt.step()
            if size > 1:
                dist.all_reduce(total)
                total /= size
            losses.append(float(total) / steps)
            bar.update(task, advance=1, status=f"loss {losses[-1]:.4f}")
    top1 = top1_accuracy(student, val, mean, std, dev) if val is not None else None
    extra = {name: top1_accuracy(student, s, mean, std, dev) for name, s in (extra_sets or {}).items()}
    return StudentRun(seed, top1, losses, time.perf_counter() - t0, timer.seconds, extra)


def evaluate(
    distilled: ImageSet,
    label_fn: LabelFn | None,
    dataset: Dataset,
    val: ImageSet,
    protocol: EvalProtocol = EvalProtocol(),
    seeds: tuple[int, ...] = (0, 1, 2),
    device: str | None = None,
    show_progress: bool = True,
    extra_sets: dict[str, ImageSet] | None = None,
    dense: DenseLabels | None = None,
) -> EvalResult:
    """Train one student per seed and report top-1 mean and std on the real validation split
    (and on each of `extra_sets`); `dense` trains from dense labels instead of a labeler (train_student)."""
    runs = [train_student(distilled, label_fn, dataset, protocol, s, val, device=device,
                          show_progress=show_progress, extra_sets=extra_sets, dense=dense) for s in seeds]
    return EvalResult(runs, protocol)


def evaluate_random_baseline(
    distilled: ImageSet,
    draw: Callable[[int, int], ImageSet],
    label_fn: LabelFn | None,
    dataset: Dataset,
    val: ImageSet,
    protocol: EvalProtocol = EvalProtocol(),
    seeds: tuple[int, ...] = (0, 1, 2),
    device: str | None = None,
    show_progress: bool = True,
) -> EvalResult:
    """DD-Ranking's random baseline: students taught exactly as on D_S, each seed on its own
    random real subset with D_S's images per class. `draw(per_class, seed)` returns that subset
    (data.draw_training_subset: the training split, never its held-out slice)."""
    per_class = _balanced_ipc(distilled, dataset.num_classes)
    runs = []
    for s in seeds:
        subset = draw(per_class, s)
        if len(subset) != len(distilled):
            raise DataError(f"the random baseline needs {per_class} training images of every class, but "
                            f"{dataset.name}'s training split (less its held-out slice) gave {len(subset)} in all.")
        runs.append(train_student(subset, label_fn, dataset, protocol, s, val, device=device,
                                  show_progress=show_progress))
    return EvalResult(runs, protocol)


def _balanced_ipc(distilled: ImageSet, num_classes: int) -> int:
    """D_S's images per class; a random baseline of its size needs every class to have as many."""
    counts = torch.bincount(distilled.labels.cpu(), minlength=num_classes)
    if int(counts.min()) != int(counts.max()):
        raise DataError(f"D_S holds {int(counts.min())} to {int(counts.max())} images per class; the random baseline "
                        "draws the same number for every class, so it needs a class-balanced D_S.")
    return int(counts.max())
