"""`flashdd-zoo ensemble`: combine teachers (labeler folders, trajectory checkpoints, torchvision
.pth files) into one ensemble labeler, measured on the real validation split and exported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..cards.measure import count_params
from ..data.images import ImageSet, load_split
from ..data.registry import Dataset
from ..errors import FlashDDError
from ..exporters import export_labeler
from ..kinds import ENSEMBLE
from ..models import Ensemble, ensemble_arch, is_composite
from .runtime import pick_device, top1_accuracy
from .teachers import load_teacher


@dataclass
class EnsembleResult:
    folder: Path
    top1: float
    member_top1s: list[float]
    params: int


def parse_schedule(entries: tuple[str, ...], members: int) -> list[dict]:
    """'EPOCH:w1,w2,...' strings -> schedule entries (weights are normalised later)."""
    schedule = []
    for entry in entries:
        epoch, _, weights = entry.partition(":")
        try:
            start, values = int(epoch), [float(w) for w in weights.split(",")]
        except ValueError:
            start, values = -1, []
        if start < 0 or len(values) != members:
            raise FlashDDError(f"schedule entry {entry!r}: expected EPOCH:w1,...,w{members} "
                               f"(a start epoch >= 0 and one weight per member), e.g. 0:{','.join(['1'] * members)}.")
        schedule.append({"from_epoch": start, "weights": values})
    return schedule


def build_ensemble(
    sources: list[str | Path],
    dataset: Dataset,
    out: str | Path,
    *,
    weights: list[float] | None = None,
    schedule: list[dict] | None = None,
    name: str | None = None,
    val: ImageSet | None = None,
    device: str | None = None,
) -> EnsembleResult:
    """Load every member, measure each and the ensemble on `val` (default: the real validation
    split), and export the ensemble labeler folder at `out` (atomically)."""
    if len(sources) < 2:
        raise FlashDDError(f"an ensemble needs at least 2 member teachers, got {len(sources)}.")
    teachers = [load_teacher(s, dataset.num_classes) for s in sources]
    for source, t in zip(sources, teachers):
        if is_composite(t.model.arch):
            raise FlashDDError(f"member {source} is itself an ensemble; give its members instead.")
    ensemble = Ensemble(ensemble_arch([t.model.arch for t in teachers], weights, schedule))
    for slot, t in zip(ensemble.members, teachers):
        slot.load_state_dict(t.model.state_dict())
    dev = pick_device(device)
    val = val if val is not None else load_split(dataset, dataset.val_split())
    mean, std = dataset.spec.mean, dataset.spec.std
    member_top1s = [top1_accuracy(t.model.to(dev).eval(), val, mean, std, dev) for t in teachers]
    top1 = top1_accuracy(ensemble.to(dev).eval(), val, mean, std, dev)
    members = [{"source": t.source, "params": count_params(t.model), "top1": acc} for t, acc in zip(teachers, member_top1s)]
    name = name or ENSEMBLE.default_name(ensemble.arch, dataset.slug)
    folder = export_labeler(
        ensemble, out, name=name, kind=ENSEMBLE.name, class_names=dataset.class_names,
        resolution=dataset.resolution, mean=mean, std=std, sample_images=val.spread(32),
        lineage={"dataset": dataset.name, "val_split": dataset.val_split(),
                 "teacher": f"ensemble of {len(teachers)}: " + ", ".join(t.source for t in teachers),
                 "members": members},
        metrics={"teacher_top1": top1, "member_top1_min": min(member_top1s), "member_top1_max": max(member_top1s),
                 "members": len(teachers)},
    )
    return EnsembleResult(Path(folder), top1, member_top1s, count_params(ensemble))
