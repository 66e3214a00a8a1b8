"""DD-oriented parameter reduction (Flash-DD): iterative structured channel pruning of a teacher
with torch-pruning, each step followed by a short fine-tune.

Importance is Flash-DD Eq. 2: the L1 magnitude of every parameter coupled to a channel, summed
over the dependency group, divided by the mean importance of the group's top-N channels, so
that groups can be ranked against each other in global pruning.
"""

from __future__ import annotations

import copy
import json
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
from ..models import architecture_of
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
    """Eq. 2: sum over all parameters of the group of ||w[k]||_1 (weights and biases), normalised.

    torch-pruning 1.6.1 scores conv, linear and BatchNorm parameters only: a ConvNet's instance-norm
    affine parameters are pruned with their channels (its InstanceNormPruner) but add nothing to the score."""
    return tp.importance.GroupMagnitudeImportance(
        p=1, group_reduction="sum", normalizer=TopNMeanNormalizer(top_n), bias=True
    )


def channel_ratios(param_fractions: tuple[float, ...]) -> list[float]:
    return [1.0 - math.sqrt(f) for f in param_fractions]


@dataclass(frozen=True)
class PruningReference:
    """What every chain step measures its target against: the teacher's channel counts per layer
    (for max_pruning_ratio) and its total prunable channels (for the global ratio). A step's
    target then depends on the teacher and the step only, never on where a run resumed."""

    out_channels: dict[str, int]
    in_channels: dict[str, int]
    total_channels: int

    @classmethod
    def of(cls, teacher: nn.Module, cfg: PruneConfig, resolution: int) -> PruningReference:
        model = copy.deepcopy(teacher).cpu().requires_grad_(True)  # torch-pruning traces with autograd
        pruner = _meta_pruner(model, cfg, 0.0, resolution)
        names = {m: n for n, m in model.named_modules()}
        return cls({names[m]: c for m, c in pruner.layer_init_out_ch.items() if m in names},
                   {names[m]: c for m, c in pruner.layer_init_in_ch.items() if m in names}, pruner.initial_total_channels)


def step_pruner(model: nn.Module, cfg: PruneConfig, ratio: float, reference: PruningReference, resolution: int):
    """A torch-pruning pruner for one chain step: prune `model` (the previous member) down to
    `ratio` of the *teacher's* channels (global ranking, classifier outputs untouched).

    torch-pruning measures ratios against the widths a pruner was built on; pointing its
    reference widths at the teacher's makes a fresh pruner on any member act exactly as one pruner
    kept across the whole chain would, so an uninterrupted and a resumed chain run the same code.
    """
    pruner = _meta_pruner(model, cfg, ratio, resolution)
    modules = dict(model.named_modules())
    # layers by name; the graph's own reshape nodes keep their counts (each shares its group with a
    # named layer of the same width, whose teacher-relative limit is the binding one)
    pruner.layer_init_out_ch.update({modules[n]: c for n, c in reference.out_channels.items()})
    pruner.layer_init_in_ch.update({modules[n]: c for n, c in reference.in_channels.items()})
    pruner._scope_initial_channels = {"DEFAULT_SCOPE": reference.total_channels}  # torch-pruning 1.6's global scope
    return pruner


def _meta_pruner(model: nn.Module, cfg: PruneConfig, ratio: float, resolution: int):
    device = next(model.parameters()).device
    example = torch.zeros(1, 3, resolution, resolution, device=device)
    with torch.enable_grad():  # the dependency graph is traced with autograd
        return tp.pruner.MetaPruner(
            model, example, importance=flashdd_importance(cfg.top_n), global_pruning=True,
            iterative_steps=1, iterative_pruning_ratio_scheduler=lambda r, s: [0.0, ratio],
            pruning_ratio=ratio, max_pruning_ratio=cfg.max_pruning_ratio,
            ignored_layers=[architecture_of(model.arch).classifier(model)], round_to=cfg.round_to,
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
    inputs: dict | None = None,
) -> list[ChainMember]:
    """Prune step by step, fine-tuning after each step, saving every member as a checkpoint
    (architecture widths + safetensors) in out_dir/step-XX. Stops after the first member whose
    top-1 is at or below `stop_below` (tau(D_S)). Finished members are reused on a rerun with the
    same config and `inputs` (JSON naming the teacher and data; any change starts a new chain)."""
    family = architecture_of(getattr(teacher, "arch", {}))
    if not family.prunable:
        raise FlashDDError(f"the pruning chain starts from one network torch-pruning can thin, got a {family.name!r} "
                           "teacher; give an ensemble's strongest member as --teacher (an ensemble can still label "
                           "students through `flashdd-zoo evaluate --labeler`).")
    out_dir, dev = Path(out_dir), pick_device(device)
    mean, std = dataset.spec.mean, dataset.spec.std
    ratios = channel_ratios(cfg.param_fractions)
    recipe = TeacherRecipe(epochs=cfg.finetune_epochs, batch_size=cfg.finetune_batch_size,
                           lr=cfg.finetune_lr, weight_decay=cfg.finetune_weight_decay,
                           warmup_epochs=0.0, seed=cfg.seed)
    reference = PruningReference.of(teacher, cfg, dataset.resolution)
    made_from = {"config": _json_config(cfg), "inputs": json.loads(json.dumps(inputs or {}))}
    members = _finished_members(out_dir, made_from, len(ratios))
    with progress(not show_progress) as bar:
        task = bar.add_task("pruning chain", total=len(ratios), completed=len(members), status="")
        for step in range(len(members), len(ratios)):
            if members and stop_below is not None and members[-1].top1 <= stop_below:
                break
            # every step starts from the *saved* previous member, resumed or not: one code path
            previous = load_checkpoint(members[-1].path)[0] if members else copy.deepcopy(teacher)
            model = prepare_model(previous, dev).requires_grad_(True)  # labelers arrive frozen
            step_pruner(model, cfg, ratios[step], reference, dataset.resolution).step()
            model.arch = family.read_arch(model)
            model.train()
            fit(model, train, dataset, recipe, dev)  # parameters were replaced: fresh optimizer
            top1 = top1_accuracy(model, val, mean, std, dev)
            member = ChainMember(step + 1, count_params(model), gflops_per_image(model, dataset.resolution),
                                 top1, model.arch)
            member.path = save_checkpoint(out_dir / f"step-{step + 1:02d}", model,
                                          {**made_from, "member": member.to_json(), "input": dataset.input_json()})
            members.append(member)
            bar.update(task, advance=1, status=f"{member.params:,} params, top-1 {top1:.1f}%")
    return members


def _finished_members(out_dir: Path, made_from: dict, steps: int) -> list[ChainMember]:
    """The members a previous run from the same config and inputs saved, in order (a chain
    continues from them)."""
    members = []
    for step in range(1, steps + 1):
        path = out_dir / f"step-{step:02d}"
        if not is_checkpoint(path):
            break
        meta = read_checkpoint_meta(path)
        if {k: meta.get(k) for k in made_from} != made_from:
            break
        m = meta["member"]
        members.append(ChainMember(m["step"], m["params"], m["gflops"], m["top1"], m["arch"], path))
    return members


def _json_config(cfg: PruneConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg)))  # tuples become lists, as read back from JSON
