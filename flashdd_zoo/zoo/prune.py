"""DD-oriented parameter reduction (Flash-DD): iterative structured channel pruning of a teacher
with torch-pruning, each step followed by a short fine-tune.

Importance is Flash-DD Eq. 2: the L1 magnitude of every parameter coupled to a channel, summed
over the dependency group, divided by the mean importance of the group's top-N channels, so
that groups can be ranked against each other in global pruning.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch_pruning as tp
from torch import nn

from ..cards.measure import count_params, gflops_per_image
from ..data.images import ImageSet
from ..data.registry import Dataset
from ..errors import FlashDDError
from ..models import ResNet, arch_of
from .checkpoints import is_checkpoint, load_checkpoint, read_checkpoint_meta, save_checkpoint
from .runtime import pick_device, prepare_model, progress, top1_accuracy
from .teacher_training import TeacherRecipe, fit


@dataclass(frozen=True)
class PruneConfig:
    # parameter fractions of the teacher the chain steps aim at (torch-pruning's ratio counts
    # channels, and parameters scale about with its square, hence 1 - sqrt(fraction) per step)
    param_fractions: tuple[float, ...] = (0.5, 0.3, 0.2, 0.12, 0.08, 0.05, 0.03, 0.02, 0.012)
    top_n: int = 8  # Eq. 2: normalise by the mean importance of the top-N channels of the group
    max_pruning_ratio: float = 0.95  # no layer loses more (global pruning can starve early layers)
    round_to: int = 8  # widths stay multiples of 8 for tensor cores
    finetune_epochs: int = 5
    finetune_lr: float = 1e-2  # Flash-DD: SGD lr 1e-2, weight decay 1e-4
    finetune_weight_decay: float = 1e-4
    finetune_batch_size: int = 256
    seed: int = 0


@dataclass
class ChainMember:
    step: int
    params: int
    gflops: float
    top1: float
    arch: dict
    path: Path | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"step": self.step, "params": self.params, "gflops": self.gflops, "top1": self.top1,
                "arch": self.arch, "path": str(self.path) if self.path else None}


class TopNMeanNormalizer:
    """Flash-DD Eq. 2's beta_g: divide a group's importance by the mean of its top-N items."""

    def __init__(self, top_n: int):
        self.top_n = top_n

    def __call__(self, importance: torch.Tensor) -> torch.Tensor:
        k = min(self.top_n, importance.numel())
        return importance / importance.topk(k).values.mean().clamp_min(1e-12)


def flashdd_importance(top_n: int = 8) -> tp.importance.GroupMagnitudeImportance:
    """Eq. 2: sum over all parameters of the group of ||w[k]||_1 (weights and biases), normalised."""
    return tp.importance.GroupMagnitudeImportance(
        p=1, group_reduction="sum", normalizer=TopNMeanNormalizer(top_n), bias=True
    )


def channel_ratios(param_fractions: tuple[float, ...]) -> list[float]:
    return [1.0 - math.sqrt(f) for f in param_fractions]


def make_pruner(model: nn.Module, cfg: PruneConfig, ratios: list[float], resolution: int):
    """One torch-pruning pruner for the whole chain; step k prunes to ratios[k] of the channels
    it started with (global ranking, classifier outputs untouched)."""
    device = next(model.parameters()).device
    example = torch.zeros(1, 3, resolution, resolution, device=device)
    with torch.enable_grad():  # the dependency graph is traced with autograd
        return tp.pruner.MetaPruner(
            model, example, importance=flashdd_importance(cfg.top_n), global_pruning=True,
            iterative_steps=len(ratios), iterative_pruning_ratio_scheduler=lambda r, s: [0.0, *ratios],
            pruning_ratio=ratios[-1], max_pruning_ratio=cfg.max_pruning_ratio,
            ignored_layers=[model.fc], round_to=cfg.round_to,
        )


def prune_chain(
    teacher: nn.Module,
    dataset: Dataset,
    train: ImageSet,
    val: ImageSet,
    cfg: PruneConfig,
    out_dir: str | Path,
    stop_below: float | None = None,
    device: str | None = None,
    show_progress: bool = True,
) -> list[ChainMember]:
    """Prune step by step, fine-tuning after each step, saving every member as a checkpoint
    (architecture widths + safetensors) in out_dir/step-XX. Stops after the first member whose
    top-1 is at or below `stop_below` (tau(D_S)). Finished members are reused on a rerun."""
    if not isinstance(teacher, ResNet):
        raise FlashDDError(f"the pruning chain starts from one ResNet teacher, got {type(teacher).__name__}; "
                           "give an ensemble's strongest member as --teacher (an ensemble can still label "
                           "students through `flashdd-zoo evaluate --labeler`).")
    out_dir, dev = Path(out_dir), pick_device(device)
    mean, std = dataset.spec.mean, dataset.spec.std
    ratios = channel_ratios(cfg.param_fractions)
    recipe = TeacherRecipe(epochs=cfg.finetune_epochs, batch_size=cfg.finetune_batch_size,
                           lr=cfg.finetune_lr, weight_decay=cfg.finetune_weight_decay,
                           warmup_epochs=0.0, seed=cfg.seed)
    members: list[ChainMember] = []
    model, done = _resume(out_dir, cfg, teacher, ratios, members)
    model = prepare_model(model, dev).requires_grad_(True)  # labelers arrive frozen
    pruner = None
    with progress(not show_progress) as bar:
        task = bar.add_task("pruning chain", total=len(ratios), completed=done, status="")
        for step in range(done, len(ratios)):
            if members and stop_below is not None and members[-1].top1 <= stop_below:
                break
            if pruner is None:
                pruner = make_pruner(model, cfg, _remaining(ratios, done), dataset.resolution)
            pruner.step()
            model.arch = arch_of(model)
            model.train()
            fit(model, train, dataset, recipe, dev)  # parameters were replaced: fresh optimizer
            top1 = top1_accuracy(model, val, mean, std, dev)
            member = ChainMember(step + 1, count_params(model), gflops_per_image(model, dataset.resolution),
                                 top1, model.arch)
            member.path = save_checkpoint(out_dir / f"step-{step + 1:02d}", model,
                                          {"config": asdict(cfg), "member": member.to_json()})
            members.append(member)
            bar.update(task, advance=1, status=f"{member.params:,} params, top-1 {top1:.1f}%")
    return members


def _remaining(ratios: list[float], done: int) -> list[float]:
    """Ratios for the steps after `done`, relative to the member the pruner starts from."""
    if done == 0:
        return ratios
    kept = 1.0 - ratios[done - 1]
    return [1.0 - (1.0 - r) / kept for r in ratios[done:]]


def _resume(out_dir: Path, cfg: PruneConfig, teacher: nn.Module, ratios, members) -> tuple[nn.Module, int]:
    """Reload the members a previous run with the same config finished; continue from the last."""
    model, done = copy.deepcopy(teacher), 0
    for step in range(1, len(ratios) + 1):
        path = out_dir / f"step-{step:02d}"
        if not is_checkpoint(path) or read_checkpoint_meta(path).get("config") != _json_config(cfg):
            break
        model, meta = load_checkpoint(path)
        m = meta["member"]
        members.append(ChainMember(m["step"], m["params"], m["gflops"], m["top1"], m["arch"], path))
        done = step
    return model, done


def _json_config(cfg: PruneConfig) -> dict:
    import json

    return json.loads(json.dumps(asdict(cfg)))  # tuples become lists, as read back from JSON
