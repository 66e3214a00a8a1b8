"""`flashdd-zoo projector`: HeLIO's projector labeler, learnt from weak teachers and exported.

Frozen backbone + head (text-initialised with open_clip, else class-mean features, then stored),
LoRA from peft on the encoder's convolutions and the head, trained with
MSE(f(x), mean of the weak teachers' logits) + lambda * CE(f(x), y) on the training split (the MSE on
logits less their per-image mean: see projector_loss).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save as save_tensors
from torch import nn

from ..artifact.config import LabelerConfig, write_config
from ..artifact.metrics import write_metrics
from ..artifact.refresh import refresh_card_and_manifest
from ..atomic import atomic_dir
from ..cards.measure import count_params, file_bytes, gflops_per_image
from ..data.images import ImageSet, normalize
from ..data.registry import Dataset
from ..errors import ArgumentError
from ..kinds import PROJECTOR
from ..kinds.projector import SOFT_LABEL_EPOCHS
from ..models.projector import HEAD_STORED, HEAD_TEXT
from ..projector.backbone import BackboneRef, check_hash, parse_spec
from ..projector.build import base_network, projector_arch, text_head
from ..projector.libraries import LIBRARY, Backbone
from ..projector.network import lora_config
from ..projector.store import save_projector, stored_files
from .runtime import progress, top1_accuracy
from .teachers import load_teacher

FLOAT32_BYTES = 4


@dataclass
class ProjectorSettings:
    conv_rank: int = 8
    head_rank: int | None = None  # default: HeLIO's 64, or the class count when smaller (a full-rank head update)
    lam: float = 0.1  # weight of the CE term
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    ipc: int = 10  # of the distilled sets it will label: sizes the stored-soft-labels comparison
    seed: int = 0


@dataclass
class ProjectorResult:
    folder: Path
    top1: float
    weak_top1s: list[float]
    stored_bytes: int
    teacher_bytes: int
    train_seconds: float


def build_projector(spec_text: str, weak: list[str | Path], dataset: Dataset, train: ImageSet, val: ImageSet,
                    out: str | Path, settings: ProjectorSettings, name: str | None = None,
                    val_split: str | None = None) -> ProjectorResult:
    """Train the adapter on `train`, measure it on `val` (the split named `val_split`, by default the
    dataset's validation split) and export the projector folder at `out` (atomically)."""
    if not weak:
        raise ArgumentError("give at least one weak teacher (--weak-teachers): early checkpoints of one teacher run.")
    torch.manual_seed(settings.seed)
    spec = parse_spec(spec_text)
    library = LIBRARY[spec.library]
    weights = spec.path / library.weights_name if spec.path.is_dir() else spec.path
    ref = BackboneRef(spec.library, spec.name, _sha256(weights), spec.path.name, str(spec.path.resolve()),
                      library.reference(spec))
    backbone = library.load(ref, check_hash(ref, weights))
    teachers = [load_teacher(w, dataset.num_classes) for w in weak]  # refuses another class count
    mean, std = dataset.spec.mean, dataset.spec.std
    size = (dataset.resolution, dataset.resolution)
    head_kind, head = _initial_head(backbone, dataset, train)
    scale = backbone.logit_scale
    net = base_network(backbone, head, scale, size, mean, std)
    head_rank = settings.head_rank or min(64, dataset.num_classes)
    arch = projector_arch(ref, backbone, dataset.num_classes, head_kind, scale, settings.conv_rank, head_rank)
    config = LabelerConfig.create(  # validated before any training
        name=name or PROJECTOR.default_name(arch, dataset.slug, settings.ipc), kind=PROJECTOR.name, architecture=arch,
        class_names=list(dataset.class_names), resolution=dataset.resolution, mean=mean, std=std,
        lineage={"dataset": dataset.name, "val_split": val_split or dataset.val_split(), "ipc": settings.ipc,
                 "teacher": f"mean of {len(teachers)} weak teachers", "weak_teachers": [t.source for t in teachers],
                 "recipe": {**vars(settings), "head_rank": head_rank, "train_images": len(train)}})
    peft_model = _with_lora(net, settings.conv_rank, head_rank, ref.pin)
    start = time.perf_counter()
    curve = train_adapter(peft_model, [t.model.eval() for t in teachers], train, val, mean, std, settings)
    seconds = time.perf_counter() - start
    cpu = torch.device("cpu")
    weak_top1s = [top1_accuracy(t.model, val, mean, std, cpu) for t in teachers]
    folder, stored, top1 = _export(peft_model, config, head if head_kind == HEAD_STORED else None, val, teachers[0].model,
                                   seconds, weak_top1s, curve, Path(out))
    return ProjectorResult(folder, top1, weak_top1s, stored, _weights_bytes(teachers[0].model), seconds)


def _sha256(path: Path) -> str:
    from ..exporters.manifest import sha256_file

    return sha256_file(path)


def _initial_head(backbone: Backbone, dataset: Dataset, train: ImageSet) -> tuple[str, torch.Tensor]:
    """Text embeddings of the class names where the backbone has a text tower (recomputed, not stored);
    else the normalised class means of the training features (stored: they depend on the data)."""
    if backbone.text_head is not None:
        return HEAD_TEXT, text_head(backbone, list(dataset.class_names))
    net = base_network(backbone, torch.zeros(1, backbone.feature_dim), 1.0, (dataset.resolution,) * 2,
                       dataset.spec.mean, dataset.spec.std)
    with torch.no_grad():
        feats = torch.cat([F.normalize(net.features(normalize(x, dataset.spec.mean, dataset.spec.std)), dim=-1)
                           for x in train.images.split(256)])
        means = torch.stack([feats[train.labels == c].mean(0) for c in range(dataset.num_classes)])
    return HEAD_STORED, F.normalize(torch.nan_to_num(means), dim=-1)


def _with_lora(net: nn.Module, conv_rank: int, head_rank: int, pin: str) -> nn.Module:
    import warnings

    from peft import get_peft_model

    net.name_or_path = pin  # peft writes a base model's name_or_path as adapter_config's base_model_name_or_path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft notes that our module is not a transformers model
        return get_peft_model(net, lora_config(net, conv_rank, head_rank))


def train_adapter(model: nn.Module, teachers: list[nn.Module], train: ImageSet, val: ImageSet, mean, std,
                  settings: ProjectorSettings) -> list[float]:
    """AdamW on the LoRA matrices only; the frozen backbone stays in eval mode (its BatchNorm statistics
    fixed). Returns the top-1 on `val` after each epoch: the curve a training length is chosen by."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    steps = settings.epochs * -(-len(train) // settings.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    model.eval()
    curve: list[float] = []
    with progress() as bar:
        task = bar.add_task(PROJECTOR.name, total=steps, status="")
        for _ in range(settings.epochs):
            for idx in torch.randperm(len(train)).split(settings.batch_size):
                x = _flip(normalize(train.images[idx], mean, std))
                with torch.no_grad():
                    target = torch.stack([t(x) for t in teachers]).mean(0)
                loss = projector_loss(model(x), target, train.labels[idx], settings.lam)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.update(task, advance=1, status=f"loss {loss.item():.4f}")
            curve.append(top1_accuracy(model, val, mean, std, torch.device("cpu")))
            bar.update(task, status=f"top-1 {curve[-1]:.2f}% after epoch {len(curve)}")
    return curve


def projector_loss(logits: torch.Tensor, target: torch.Tensor, labels: torch.Tensor, lam: float) -> torch.Tensor:
    """HeLIO's MSE(f(x), weak teachers' mean) + lambda * CE, with the MSE on logits less their per-image
    mean. Softmax ignores that offset, but a cosine head cannot give the teachers' offset (its logits
    are scale * cosines, all positive for ReLU features), and MSE on raw logits spends the adapter on
    it: measured, one epoch on the teacher's own logits took an 83.5% head to 46.3%."""
    centred = [z - z.mean(dim=1, keepdim=True) for z in (logits, target)]
    return F.mse_loss(*centred) + lam * F.cross_entropy(logits, labels)


def _flip(x: torch.Tensor) -> torch.Tensor:
    flip = torch.rand(x.shape[0]) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def _weights_bytes(model: nn.Module) -> int:
    """Bytes of the model's weights as a safetensors file (the full teacher's reference size)."""
    return len(save_tensors({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}))


def _export(peft_model: nn.Module, config: LabelerConfig, head: torch.Tensor | None, val: ImageSet,
            teacher: nn.Module, seconds: float, weak_top1s: list[float], curve: list[float],
            out: Path) -> tuple[Path, int, float]:
    """The folder: adapter (+ head), config.json, metrics.json, card, manifest; no backbone bytes."""
    import copy

    merged = copy.deepcopy(peft_model).merge_and_unload().eval()
    mean, std = config.input.mean, config.input.std
    top1 = top1_accuracy(merged, val, mean, std, torch.device("cpu"))
    with atomic_dir(out) as tmp:
        save_projector(peft_model, tmp, head)
        stored = sum(file_bytes(tmp / f) for f in stored_files(config.architecture))
        teacher_bytes = _weights_bytes(teacher)
        soft = config.lineage["ipc"] * config.num_classes * SOFT_LABEL_EPOCHS * config.num_classes * FLOAT32_BYTES
        write_config(tmp, config)
        write_metrics(tmp, {
            "params": count_params(merged), "stored_params": _stored_params(peft_model, head),
            "weights_bytes": stored, "stored_bytes": stored, "teacher_bytes": teacher_bytes,
            "teacher_weights_bytes": teacher_bytes, "teacher_params": count_params(teacher), "soft_label_bytes": soft,
            "gflops": gflops_per_image(merged, config.input.size[0]), "teacher_top1": top1,
            "weak_teacher_top1s": weak_top1s, "top1_by_epoch": curve, "train_seconds": seconds,
            "onnx_max_abs_diff": None})
        for f in tmp.rglob("*"):
            f.chmod(0o755 if f.is_dir() else 0o644)
        refresh_card_and_manifest(tmp)  # replaces the README.md peft wrote with our card
    return out, stored, top1


def _stored_params(peft_model: nn.Module, head: torch.Tensor | None) -> int:
    lora = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    return lora + (head.numel() if head is not None else 0)
