"""CLI commands of the build recipes: train-teacher, distill, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cli_common import console, data_root_option, friendly_errors

RESULTS_DIR = Path("benchmarks/results")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split(",") if t.strip())


record_option = click.option(
    "--record", metavar="NAME", default=None,
    help="Also write benchmarks/results/NAME.json (device, date, command, git commit, metrics).",
)
device_option = click.option("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda if present).")


@click.command("train-teacher")
@click.option("--dataset", "dataset_name", required=True, help="Registry name or folder:PATH.")
@data_root_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: teacher/ (labeler), checkpoints/epoch-XXXX/, last/ (resume state).")
@click.option("--epochs", default=30, show_default=True, help="Training epochs.")
@click.option("--batch-size", default=512, show_default=True, help="Training batch size.")
@click.option("--lr", default=0.2, show_default=True, help="Peak SGD learning rate (warm-up, cosine).")
@click.option("--weight-decay", default=5e-4, show_default=True, help="SGD weight decay (not on BN/bias).")
@click.option("--label-smoothing", default=0.1, show_default=True, help="Cross-entropy label smoothing.")
@click.option("--width-scale", default=1.0, show_default=True,
              help="Uniform width multiplier of ResNet-18 (1.0 = the standard teacher).")
@click.option("--checkpoint-epochs", default="", metavar="E1,E2",
              help="Also keep checkpoints at these epochs (weak / early-stage teachers).")
@click.option("--seed", default=0, show_default=True, help="Seed of initialisation, order and augmentation.")
@device_option
@record_option
@friendly_errors
def train_teacher_cmd(dataset_name, data_root, out_dir, epochs, batch_size, lr, weight_decay,
                      label_smoothing, width_scale, checkpoint_epochs, seed, device, record):
    """Train a ResNet-18 teacher on a dataset; resumes from OUT/last after an interruption."""
    from .data import resolve_dataset
    from .zoo.teacher_training import TeacherRecipe, train_teacher

    dataset = resolve_dataset(dataset_name, data_root)
    recipe = TeacherRecipe(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                           label_smoothing=label_smoothing, width_scale=width_scale, seed=seed)
    result = train_teacher(dataset, out_dir, recipe, _ints(checkpoint_epochs), device)
    console.print(f"teacher top-1 {result.top1:.2f}% after {epochs} epochs, "
                  f"{result.train_seconds:.1f} s of training -> {result.labeler_dir}")
    if record:
        _record(record, {"top1": result.top1, "train_seconds": result.train_seconds, "epochs": epochs})


@click.command("distill")
@click.option("--method", type=click.Choice(["rded"]), default="rded", show_default=True,
              help="Distillation method (RDED: realistic, diverse crops scored by the teacher).")
@click.option("--dataset", "dataset_name", required=True, help="Registry name or folder:PATH.")
@data_root_option
@click.option("--teacher", required=True, type=click.Path(exists=True, path_type=Path),
              help="Observer: a labeler folder, a training checkpoint or a torchvision .pth.")
@click.option("--ipc", required=True, type=int, help="Distilled images per class.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="D_S folder to write (<00000>/class00000_id00000.png + distilled.json).")
@click.option("--mipc", default=300, show_default=True, help="Real images pre-selected per class.")
@click.option("--num-crop", default=5, show_default=True, help="Random crops scored per image (K).")
@click.option("--factor", default=None, type=int,
              help="Crops per side stitched into an image (default 1 up to 64 px, else 2).")
@click.option("--image-format", type=click.Choice(["png", "jpg"]), default="png", show_default=True,
              help="png is lossless; jpg (quality 95) is what RDED's code writes.")
@click.option("--seed", default=0, show_default=True, help="Seed of the image pre-selection and crops.")
@device_option
@friendly_errors
def distill_cmd(dataset_name, data_root, teacher, ipc, out_dir, mipc, num_crop, factor, image_format, seed, device):
    """Distil a dataset into IPC images per class with RDED, written as an ImageFolder tree."""
    from .data import resolve_dataset
    from .zoo.distill import RDEDConfig, distill_rded
    from .zoo.runtime import init_distributed
    from .zoo.teachers import load_teacher

    init_distributed()
    dataset = resolve_dataset(dataset_name, data_root)
    observer = load_teacher(teacher, dataset.num_classes)
    cfg = RDEDConfig(ipc=ipc, mipc=mipc, num_crop=num_crop, factor=factor, seed=seed)
    data, path = distill_rded(dataset, observer.model, out_dir, cfg, observer.source, device, image_format=image_format)
    console.print(f"distilled {len(data)} images ({ipc} per class) -> {path}")


@click.command("evaluate")
@click.option("--dataset", "dataset_name", required=True, help="Registry name or folder:PATH.")
@data_root_option
@click.option("--distilled", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="D_S folder: ours, or RDED / SRe2L / G-VBSM output (class folders of images).")
@click.option("--labeler", required=True, type=click.Path(exists=True, path_type=Path),
              help="Soft-label source: labeler folder, training checkpoint or torchvision .pth.")
@click.option("--epochs", default=300, show_default=True, help="Student training epochs (300 in the papers).")
@click.option("--seeds", default="0,1,2", show_default=True, help="Student seeds, comma separated.")
@click.option("--batch-size", default=100, show_default=True, help="Student batch size (capped at |D_S|).")
@click.option("--lr", default=1e-3, show_default=True, help="AdamW learning rate.")
@click.option("--loss", type=click.Choice(["kl", "mse_ce"]), default="kl", show_default=True,
              help="kl: KL at temperature T (RDED); mse_ce: MSE + 0.025 CE (Flash-DD).")
@click.option("--temperature", default=20.0, show_default=True, help="Soft-label temperature T (RDED: 20 with CutMix).")
@click.option("--schedule", type=click.Choice(["rded", "cosine"]), default="rded", show_default=True,
              help="rded: RDED's half cosine (lr ends at lr/2); cosine: decays to 0.")
@click.option("--student", default="resnet18", show_default=True,
              help="resnet18 or any torchvision classification model name.")
@click.option("--out", "report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the full report (top-1 per seed, loss curves) as JSON.")
@device_option
@record_option
@friendly_errors
def evaluate_cmd(dataset_name, data_root, distilled, labeler, epochs, seeds, batch_size, lr, loss,
                 temperature, schedule, student, report, device, record):
    """Train random students on D_S with soft labels from LABELER; top-1 on the real val split.

    With the full teacher as LABELER this measures tau(D_S). Runs under torchrun for several GPUs.
    """
    from .data import load_split, resolve_dataset
    from .zoo.distilled import load_distilled
    from .zoo.evaluate import EvalProtocol, evaluate
    from .zoo.runtime import init_distributed, is_main_process
    from .zoo.teachers import load_teacher

    init_distributed()
    dataset = resolve_dataset(dataset_name, data_root)
    d_s = load_distilled(distilled, dataset)
    val = load_split(dataset, dataset.val_split())
    label_fn = load_teacher(labeler, dataset.num_classes).model.to(_device(device)).eval()
    protocol = EvalProtocol(epochs=epochs, batch_size=batch_size, lr=lr, loss=loss,
                            temperature=temperature, schedule=schedule, student=student)
    result = evaluate(d_s, label_fn, dataset, val, protocol, _ints(seeds), device)
    if not is_main_process():
        return
    seconds = sum(r.seconds for r in result.runs) / len(result.runs)
    console.print(f"student top-1 {result.top1_mean:.2f} ± {result.top1_std:.2f} over seeds "
                  f"{list(_ints(seeds))}; {seconds:.1f} s per student")
    if report:
        report.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    if record:
        _record(record, {"top1_mean": result.top1_mean, "top1_std": result.top1_std,
                         "seeds": len(result.runs), "seconds": seconds, "epochs": epochs})


def _device(device):
    from .zoo.runtime import pick_device

    return pick_device(device)


def _record(name: str, metrics: dict) -> None:
    from .results import write_result

    path = write_result(RESULTS_DIR, name, metrics)
    console.print(f"recorded {path}")
