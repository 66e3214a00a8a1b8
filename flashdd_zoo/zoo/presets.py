"""Build presets: `smoke` (a real but tiny CPU run) and `paper` (the papers' hyper-parameters)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import FlashDDError
from .capacity import SelectionConfig
from .distill import RDEDConfig
from .evaluate import EvalProtocol
from .prune import PruneConfig
from .teacher_training import TeacherRecipe

PRESETS = ("smoke", "cpu", "paper")


@dataclass(frozen=True)
class BuildConfig:
    dataset: str
    ipc: int
    out: Path
    preset: str
    teacher_recipe: TeacherRecipe
    rded: RDEDConfig
    protocol: EvalProtocol
    seeds: tuple[int, ...]
    prune: PruneConfig
    selection: SelectionConfig
    data_root: str | None = None
    teacher: str | None = None  # labeler folder, checkpoint or torchvision .pth; None: train one
    distilled: str | None = None  # an existing D_S folder; None: distil with RDED
    verify_candidates: bool = False  # full downstream evaluation of every candidate
    finetune_per_class: int | None = None  # real images per class for fine-tuning (None: all)
    val_per_class: int | None = None  # real validation images per class (None: all)
    nproc: int = 1  # >1: evaluations and distillation run under torchrun on that many GPUs
    device: str | None = None
    holdout_per_class: int | None = None  # training images per class held out for Algorithm 1's accuracies
    curve: bool = False  # evaluate students of every chain member (the chain runs to its last step)
    label_robust: bool = False  # DD-Ranking's IOR, HLR, LRS for the teacher and the labeler (extra students)
    chain_dir: str | None = None  # where chain members are kept (None: OUT/work/chain); builds of one
    # teacher at several IPCs can share it (members are bound to their teacher, data and config)


def preset_config(preset: str, dataset: str, ipc: int, out: Path, resolution: int) -> BuildConfig:
    if preset == "smoke":
        return BuildConfig(
            dataset=dataset, ipc=ipc, out=out, preset=preset,
            teacher_recipe=TeacherRecipe(epochs=20, batch_size=64, lr=0.05, width_scale=0.5),
            rded=RDEDConfig(ipc=ipc, mipc=100, num_crop=5),
            protocol=EvalProtocol(epochs=30, batch_size=100),
            seeds=(0, 1),
            prune=PruneConfig(param_fractions=(0.4, 0.2, 0.1, 0.05, 0.025), finetune_epochs=4,
                              finetune_batch_size=64),
            selection=SelectionConfig(window=5, gamma=0.05, dis_seeds=(0, 1)),
            val_per_class=None,
            holdout_per_class=20,
        )
    if preset == "cpu":
        # 32-px sets on a 2-core CPU: ResNet-18 with the ImageNet stem (about 17x cheaper than the
        # CIFAR stem at 32 px) as teacher, pruned labelers and students alike; the whole curve
        return BuildConfig(
            dataset=dataset, ipc=ipc, out=out, preset=preset,
            teacher_recipe=TeacherRecipe(epochs=30, stem="imagenet"),
            rded=RDEDConfig(ipc=ipc, mipc=300, num_crop=5),
            protocol=EvalProtocol(epochs=300, batch_size=100, student_stem="imagenet"),
            seeds=(0, 1, 2),
            prune=PruneConfig(param_fractions=(0.5, 0.3, 0.2, 0.12, 0.08, 0.05, 0.03, 0.02, 0.012, 0.008),
                              finetune_epochs=2),
            selection=SelectionConfig(window=20, gamma=0.05, dis_seeds=(0, 1)),
            holdout_per_class=500,
            curve=True,
        )
    if preset == "paper":
        large = dataset in ("imagenet1k", "imagenet100", "places365")  # too many images to hold at 224 px
        return BuildConfig(
            dataset=dataset, ipc=ipc, out=out, preset=preset,
            teacher_recipe=TeacherRecipe(epochs=30 if resolution <= 64 else 60),
            rded=RDEDConfig(ipc=ipc, mipc=300, num_crop=5),
            protocol=EvalProtocol(epochs=300, batch_size=100),
            seeds=(0, 1, 2),
            prune=PruneConfig(),
            selection=SelectionConfig(window=50 if large else 20, gamma=0.1 if large else 0.05),
            finetune_per_class=100 if large else None,
            val_per_class=10 if large else None,
        )
    raise FlashDDError(f"unknown preset {preset!r}; choose one of {PRESETS}.")


def check_config(cfg: BuildConfig) -> BuildConfig:
    """Refuse settings that would only fail hours into a build; name the option to change."""
    problems = []
    if cfg.ipc < 1:
        problems.append(f"--ipc must be at least 1, got {cfg.ipc}")
    if not 2 <= cfg.selection.window <= cfg.protocol.epochs:
        problems.append(f"--window must lie in [2, --epochs = {cfg.protocol.epochs}] (Dis is a loss reduction over "
                        f"that many epochs), got {cfg.selection.window}")
    if len(cfg.selection.dis_seeds) < 2:
        problems.append("Dis needs at least 2 student seeds (Flash-DD averages over initialisations)")
    if not cfg.seeds:
        problems.append("--seeds must name at least one student seed")
    fractions = cfg.prune.param_fractions
    if not fractions or any(not 0 < f < 1 for f in fractions) or list(fractions) != sorted(fractions, reverse=True):
        problems.append(f"--param-fractions must be decreasing fractions in (0, 1), e.g. 0.5,0.25,0.1; got {fractions}")
    for name, value in (("--finetune-per-class", cfg.finetune_per_class), ("--val-per-class", cfg.val_per_class),
                        ("--mipc", cfg.rded.mipc)):
        if value is not None and value < 1:
            problems.append(f"{name} must be at least 1, got {value}")
    if cfg.nproc < 1:
        problems.append(f"--nproc must be at least 1, got {cfg.nproc}")
    if cfg.nproc > 1 and (cfg.holdout_per_class or cfg.protocol.student_stem):
        problems.append("--holdout-per-class and --stem run in one process for now; use --nproc 1")
    if cfg.holdout_per_class is not None and cfg.holdout_per_class < 0:
        problems.append(f"--holdout-per-class must be 0 or more, got {cfg.holdout_per_class}")
    if problems:
        raise FlashDDError("invalid build settings: " + "; ".join(problems) + ".")
    return cfg


def with_overrides(cfg: BuildConfig, **overrides) -> BuildConfig:
    """Apply CLI overrides (None means 'keep the preset's value'); nested fields by prefix."""
    nested = {"teacher_": "teacher_recipe", "protocol_": "protocol", "prune_": "prune", "selection_": "selection",
              "rded_": "rded"}
    top, parts = {}, {v: {} for v in nested.values()}
    for key, value in overrides.items():
        if value is None:
            continue
        prefix = next((p for p in nested if key.startswith(p)), None)
        if prefix:
            parts[nested[prefix]][key[len(prefix):]] = value
        else:
            top[key] = value
    for name, fields in parts.items():
        if fields:
            top[name] = replace(getattr(cfg, name), **fields)
    return replace(cfg, **top)
