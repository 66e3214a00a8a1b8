"""CLI commands of the build recipes: train-teacher, distill, evaluate."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import click

from ..artifact import read_config, read_metrics
from ..models import DEFAULT_SINGLE, network_names
from ..models.resnet import STEMS
from ..zoo.evaluate import DENSE_STEPS
from .common import console, data_root_option, friendly_errors, holdout_option, number_list, soft_label_options

RESULTS_DIR = Path("benchmarks/results")


record_option = click.option(
    "--record", metavar="NAME", default=None,
    help="Also write benchmarks/results/NAME.json (device, date, command, git commit, metrics).",
)
device_option = click.option("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda if present).")
stem_option = click.option(
    "--stem", type=click.Choice(STEMS), default=None,
    help="ResNet stem: cifar (3x3/1, no pool) or imagenet (7x7/2 + max-pool; about 17x cheaper at 32 px). "
         "Default: cifar up to 64 px, else imagenet.")
network_option = click.option(
    "--network", type=click.Choice(network_names()), default=DEFAULT_SINGLE.name, show_default=True,
    help="The teacher's network (ConvNet-Dn: width 128, instance norm, as DC and DD-Ranking use).")


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
              help="Uniform width multiplier of the network (1.0 = the standard teacher).")
@network_option
@click.option("--checkpoint-epochs", default="", metavar="E1,E2",
              help="Also keep checkpoints at these epochs (weak / early-stage teachers).")
@click.option("--seed", default=0, show_default=True, help="Seed of initialisation, order and augmentation.")
@stem_option
@holdout_option
@device_option
@record_option
@friendly_errors(resumable=True)
def train_teacher_cmd(dataset_name, data_root, out_dir, epochs, batch_size, lr, weight_decay, label_smoothing,
                      width_scale, network, checkpoint_epochs, seed, stem, holdout_per_class, device, record):
    """Train a teacher (ResNet-18 by default) on a dataset; resumes from OUT/last after an interruption."""
    from ..data import resolve_dataset
    from ..zoo.teacher_training import TeacherRecipe, train_teacher

    dataset = resolve_dataset(dataset_name, data_root)
    recipe = TeacherRecipe(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                           label_smoothing=label_smoothing, width_scale=width_scale, seed=seed, stem=stem,
                           holdout_per_class=holdout_per_class or 0, network=network)
    result = train_teacher(dataset, out_dir, recipe, number_list(checkpoint_epochs, int, "--checkpoint-epochs"), device)
    params = _metrics(result.labeler_dir)["params"]
    console.print(f"teacher top-1 {result.top1:.2f}% ({dataset.val_split()} split) after {epochs} epochs, "
                  f"{result.train_seconds:.1f} s of training, {params:,} parameters -> {result.labeler_dir}")
    if record:
        _record(record, {"top1": result.top1, "train_seconds": result.train_seconds, "epochs": epochs,
                         "params": params, "holdout_per_class": recipe.holdout_per_class,
                         "images_per_second": result.images_per_second})


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
def distill_cmd(method, dataset_name, data_root, teacher, ipc, out_dir, mipc, num_crop, factor, image_format, seed, device):
    """Distil a dataset into IPC images per class with RDED, written as an ImageFolder tree."""
    del method  # --method admits rded only, for now
    from ..data import resolve_dataset
    from ..zoo.distill import RDEDConfig, distill_rded
    from ..zoo.distilled import read_description
    from ..zoo.runtime import init_distributed, is_main_process
    from ..zoo.teachers import load_teacher

    init_distributed(device)
    dataset = resolve_dataset(dataset_name, data_root)
    observer = load_teacher(teacher, dataset.num_classes)
    cfg = RDEDConfig(ipc=ipc, mipc=mipc, num_crop=num_crop, factor=factor, seed=seed)
    _, path = distill_rded(dataset, observer.model, out_dir, cfg, observer.source, device, image_format=image_format)
    if is_main_process():  # under torchrun each rank holds its own classes; the description counts all
        console.print(f"distilled {read_description(path)['images']} images ({ipc} per class) -> {path}")


@click.command("evaluate")
@click.option("--dataset", "dataset_name", required=True, help="Registry name or folder:PATH.")
@data_root_option
@click.option("--distilled", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="D_S folder: ours, or RDED / SRe2L / G-VBSM output (class folders of images).")
@click.option("--labeler", default=None, type=click.Path(exists=True, path_type=Path),
              help="Soft-label source: labeler folder, training checkpoint or torchvision .pth.")
@click.option("--dense", "dense_dir", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Train from dense labels (`flashdd-zoo dense`) instead of a labeler (LADD): global views with "
                   "hard labels plus every stored sub-image with its dense label; no labeler runs.")
@click.option("--dense-step", type=click.Choice(DENSE_STEPS), default=DENSE_STEPS[0], show_default=True,
              help="With --dense: image = one optimizer step per batch of images (its global views and all its "
                   "sub-images summed); view = one step per batch of views (an epoch is a pass over the "
                   "label-augmented set, 1 + N*N steps per batch).")
@click.option("--epochs", default=300, show_default=True, help="Student training epochs (300 in the papers).")
@click.option("--seeds", default="0,1,2", show_default=True, help="Student seeds, comma separated.")
@click.option("--batch-size", default=100, show_default=True, help="Student batch size (capped at |D_S|).")
@click.option("--lr", default=1e-3, show_default=True, help="AdamW learning rate.")
@soft_label_options(preset_default=False)
@click.option("--schedule", type=click.Choice(["rded", "cosine"]), default="rded", show_default=True,
              help="rded: RDED's half cosine (lr ends at lr/2); cosine: decays to 0.")
@click.option("--student", default=DEFAULT_SINGLE.name, show_default=True,
              help=f"{', '.join(network_names())} or any torchvision classification model name.")
@click.option("--student-stem", type=click.Choice(STEMS), default=None,
              help="The student ResNet's stem (default: the dataset's; the cpu preset's students use imagenet).")
@click.option("--out", "report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the full report (top-1 per seed, loss curves) as JSON.")
@click.option("--val-per-class", type=int, default=None,
              help="Score on at most this many real validation images per class (default: all).")
@click.option("--random-baseline", is_flag=True,
              help="Also train the same students on a seeded, class-balanced random real subset of the training "
                   "split with D_S's images per class (one subset per seed), taught by the same labeler: "
                   "DD-Ranking's IOR.")
@click.option("--hard-labels", is_flag=True,
              help="Also train students on D_S with its hard labels (no labeler): DD-Ranking's HLR, with --real-top1.")
@click.option("--real-top1", type=float, default=None, metavar="PCT",
              help="Top-1 (%) of the student architecture trained on the real training data with hard labels, for "
                   "HLR (default: the full teacher's top-1 the labeler records, when student and teacher share it).")
@holdout_option
@click.option("--update-card", is_flag=True,
              help="Write IOR, HLR and LRS into LABELER's metrics.json and refresh its card and manifest.")
@device_option
@record_option
@friendly_errors
def evaluate_cmd(dataset_name, data_root, distilled, labeler, dense_dir, dense_step, epochs, seeds, batch_size, lr, loss,
                 temperature, schedule, student, student_stem, report, val_per_class, random_baseline, hard_labels,
                 real_top1, holdout_per_class, update_card, device, record):
    """Train random students on D_S with soft labels from LABELER (or from --dense labels); top-1 on the
    real val split.

    With the full teacher as LABELER this measures tau(D_S). --random-baseline and --hard-labels add
    DD-Ranking's label-robust scores (IOR, HLR, LRS). Runs under torchrun for several GPUs.
    """
    if dense_dir is not None or labeler is None:
        _check_dense_options(labeler, dense_dir, random_baseline or hard_labels or update_card)
        return _evaluate_dense(dataset_name, data_root, distilled, dense_dir, dense_step, epochs, seeds, batch_size, lr,
                               schedule, student, student_stem, report, val_per_class, device, record)
    if dense_step != DENSE_STEPS[0]:
        raise click.UsageError(f"--dense-step {dense_step} steps through dense labels: use it with --dense.")
    from ..data import load_split, resolve_dataset
    from ..zoo.distilled import load_distilled
    from ..zoo.evaluate import EvalProtocol, evaluate
    from ..zoo.runtime import init_distributed, is_main_process
    from ..zoo.teachers import load_teacher

    init_distributed(device)
    dataset = resolve_dataset(dataset_name, data_root)
    d_s = load_distilled(distilled, dataset)
    val = load_split(dataset, dataset.val_split(), max_per_class=val_per_class)
    teacher = load_teacher(labeler, dataset.num_classes)
    _check_label_robust_options(teacher, hard_labels, real_top1, update_card, random_baseline or hard_labels)
    label_fn = teacher.model.to(_device(device)).eval()
    protocol = EvalProtocol(epochs=epochs, batch_size=batch_size, lr=lr, loss=loss,
                            temperature=temperature, schedule=schedule, student=student, student_stem=student_stem)
    seed_list = number_list(seeds, int, "--seeds")
    result = evaluate(d_s, label_fn, dataset, val, protocol, seed_list, device)
    extra = _label_robust_runs(d_s, label_fn, dataset, val, protocol, seed_list, device, teacher,
                               random_baseline, hard_labels, real_top1, holdout_per_class)
    if not is_main_process():
        return
    seconds = sum(r.seconds for r in result.runs) / len(result.runs)
    console.print(f"student top-1 {result.top1_mean:.2f} ± {result.top1_std:.2f} over seeds "
                  f"{list(seed_list)}; {seconds:.1f} s per student")
    scores = _print_label_robust(result, extra)
    if report:
        report.write_text(json.dumps({**result.to_json(), **_extra_json(extra, scores)}, indent=2) + "\n")
    if update_card:
        _update_card(labeler, scores)
    if record:
        _record(record, {"top1_mean": result.top1_mean, "top1_std": result.top1_std,
                         "seeds": len(result.runs), "seconds": seconds, "epochs": epochs,
                         **_flat(scores)})


def _check_dense_options(labeler, dense_dir, label_robust: bool) -> None:
    if labeler is None and dense_dir is None:
        raise click.UsageError("give the soft labels: --labeler (a labeler, run on every batch) or --dense (stored).")
    if labeler is not None:
        raise click.UsageError("--dense replaces --labeler (no labeler runs on dense labels): give one of them.")
    if label_robust:
        raise click.UsageError("--random-baseline, --hard-labels and --update-card measure a labeler; run them with "
                               "--labeler, apart from --dense.")


def _evaluate_dense(dataset_name, data_root, distilled, dense_dir, dense_step, epochs, seeds, batch_size, lr, schedule,
                    student, student_stem, report, val_per_class, device, record) -> None:
    """The same protocol and seeds, soft labels from a dense-label folder (LADD's deployment stage)."""
    from ..data import load_split, resolve_dataset
    from ..kinds import DENSE
    from ..loaders.dense import load_dense_labels
    from ..zoo.distilled import load_distilled
    from ..zoo.evaluate import EvalProtocol, evaluate
    from ..zoo.runtime import init_distributed, is_main_process

    init_distributed(device)
    dataset = resolve_dataset(dataset_name, data_root)
    dense = load_dense_labels(dense_dir)
    dense.check_distilled(distilled, dataset)
    d_s = load_distilled(distilled, dataset)
    val = load_split(dataset, dataset.val_split(), max_per_class=val_per_class)
    protocol = EvalProtocol(epochs=epochs, batch_size=batch_size, lr=lr, loss="ce", schedule=schedule, student=student,
                            student_stem=student_stem, dense_step=dense_step)
    seed_list = number_list(seeds, int, "--seeds")
    result = evaluate(d_s, None, dataset, val, protocol, seed_list, device, dense=dense)
    if not is_main_process():
        return
    seconds = sum(r.seconds for r in result.runs) / len(result.runs)
    label_seconds = sum(r.label_seconds for r in result.runs) / len(result.runs)
    console.print(f"student top-1 {result.top1_mean:.2f} ± {result.top1_std:.2f} over seeds {list(seed_list)} "
                  f"(dense labels {dense.config.name}); {seconds:.1f} s per student, {label_seconds:.1f} s of it labelling")
    if report:
        report.write_text(json.dumps({**result.to_json(), DENSE.name: str(dense_dir)}, indent=2) + "\n")
    if record:
        _record(record, {"top1_mean": result.top1_mean, "top1_std": result.top1_std, "seeds": len(result.runs),
                         "seconds": seconds, "label_seconds": label_seconds, "epochs": epochs})


def _check_label_robust_options(teacher, hard_labels, real_top1, update_card, any_extra) -> None:
    """Refuse impossible combinations before any student trains."""
    if hard_labels and real_top1 is None and teacher.info.get("full_teacher_top1") is None:
        raise click.UsageError("--hard-labels needs --real-top1 PCT: the labeler records no full teacher top-1.")
    if update_card and not any_extra:
        raise click.UsageError("--update-card writes DD-Ranking's scores: add --random-baseline and/or --hard-labels.")
    if update_card and not teacher.source.startswith("labeler:"):
        raise click.UsageError("--update-card needs a labeler folder as --labeler (a checkpoint or .pth has no card).")
    if real_top1 is not None and not 0 <= real_top1 <= 100:
        raise click.UsageError(f"--real-top1 is a percentage in [0, 100], got {real_top1}.")


def _label_robust_runs(d_s, label_fn, dataset, val, protocol, seeds, device, teacher, random_baseline,
                       hard_labels, real_top1, holdout_per_class) -> dict:
    """The extra students of --random-baseline and --hard-labels, and the real-data top-1 for HLR."""
    from dataclasses import replace
    from functools import partial

    from ..data import draw_training_subset
    from ..zoo.evaluate import evaluate, evaluate_random_baseline

    extra: dict = {}
    if random_baseline:
        holdout = teacher.holdout_per_class if holdout_per_class is None else holdout_per_class
        draw = partial(draw_training_subset, dataset, holdout_per_class=holdout or 0)
        extra["random"] = evaluate_random_baseline(d_s, draw, label_fn, dataset, val, protocol, seeds, device)
        extra["holdout_per_class"] = holdout or 0
    if hard_labels:
        extra["hard"] = evaluate(d_s, None, dataset, val, replace(protocol, loss="ce"), seeds, device)
        extra["real_top1"] = real_top1 if real_top1 is not None else teacher.info["full_teacher_top1"]
    return extra


def _print_label_robust(result, extra: dict) -> dict | None:
    """Print the extra students' top-1 and DD-Ranking's scores; return the scores (None without extras)."""
    from ..zoo.label_robust import summarize_rounds

    if not extra:
        return None
    fractions = {name: [t / 100 for t in extra[name].top1s] for name in ("random", "hard") if name in extra}
    real = extra.get("real_top1")
    scores = summarize_rounds([t / 100 for t in result.top1s], fractions.get("random"),
                              real / 100 if real is not None else None, fractions.get("hard"))
    for name, label in (("random", "random real subset, same labeler"), ("hard", "D_S with hard labels")):
        if name in extra:
            console.print(f"student top-1 ({label}) {extra[name].top1_mean:.2f} ± {extra[name].top1_std:.2f}")
    line = ", ".join(f"{k.upper()} {scores[k]['mean']:.4f} ± {scores[k]['std']:.4f}" for k in ("ior", "hlr", "lrs")
                     if k in scores)
    console.print(f"DD-Ranking (fractions, {scores['rounds']} rounds): {line}")
    return scores


def _extra_json(extra: dict, scores: dict | None) -> dict:
    out = {name: extra[name].to_json() for name in ("random", "hard") if name in extra}
    if scores is not None:
        out["label_robust"] = {**scores, "holdout_per_class": extra.get("holdout_per_class")}
    return out


def _flat(scores: dict | None) -> dict:
    from ..zoo.label_robust import flat_metrics

    return flat_metrics(scores)


def _update_card(labeler: Path, scores: dict | None) -> None:
    from ..artifact.refresh import update_metrics
    from ..zoo.label_robust import flat_metrics

    update_metrics(labeler, flat_metrics(scores))
    console.print(f"updated {labeler / 'metrics.json'} and its card")


def _device(device):
    from ..zoo.runtime import pick_device

    return pick_device(device)


def _record(name: str, metrics: dict) -> None:
    from ..results import write_result

    path = write_result(RESULTS_DIR, name, metrics)
    console.print(f"recorded {path}")


@click.command("build")
@click.option("--preset", type=click.Choice(["smoke", "cpu", "paper"]), default="smoke", show_default=True,
              help="smoke: a real but tiny CPU run (default dataset: the embedded digits); cpu: 32-px sets on a "
                   "laptop CPU (ImageNet-stem ResNet-18, held-out selection, the whole curve); "
                   "paper: the papers' hyper-parameters (300-epoch students, 3 seeds).")
@click.option("--dataset", "dataset_name", default=None,
              help="Registry name or folder:PATH (default for smoke: digits, which ships with scikit-learn).")
@data_root_option
@click.option("--ipc", default=10, show_default=True, help="Distilled images per class.")
@click.option("--out", "out_dir", default="zoo-out", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: the labeler, build-report.{md,json}, plots/, work/ (resumable stages).")
@click.option("--teacher", type=click.Path(exists=True, path_type=Path), default=None,
              help="Full teacher: labeler folder, training checkpoint or torchvision ResNet-18 .pth "
                   "(default: train one).")
@click.option("--distilled", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Existing D_S folder (RDED / SRe2L / G-VBSM output; default: distil with RDED).")
@click.option("--epochs", type=int, default=None, help="Student epochs of every downstream evaluation.")
@click.option("--seeds", default=None, help="Student seeds, comma separated.")
@click.option("--teacher-epochs", type=int, default=None, help="Epochs when the teacher is trained here.")
@click.option("--finetune-epochs", type=int, default=None, help="Fine-tune epochs after each pruning step.")
@click.option("--param-fractions", default=None, metavar="F1,F2,...",
              help="Teacher parameter fractions the pruning chain steps aim at, e.g. 0.5,0.25,0.1.")
@soft_label_options(preset_default=True)
@click.option("--window", type=int, default=None, help="Early-window epochs for Dis(theta).")
@click.option("--gamma", type=float, default=None, help="Weight of accuracy in Dis + gamma * Acc.")
@click.option("--mipc", type=int, default=None, help="RDED: real images pre-selected per class.")
@click.option("--finetune-per-class", type=int, default=None,
              help="Real training images per class held in memory for the pruning fine-tunes (default: the "
                   "preset's; all for small sets, 100 for ImageNet-scale ones).")
@click.option("--val-per-class", type=int, default=None,
              help="Real validation images per class for every top-1 (default: the preset's).")
@click.option("--verify-candidates", is_flag=True, help="Run the full downstream evaluation of every candidate.")
@click.option("--label-robust", is_flag=True,
              help="Also measure DD-Ranking's IOR, HLR and LRS for the full teacher and the labeler (hard-label "
                   "students on D_S, random-real-subset students per labeler); in the report and on the card.")
@click.option("--curve/--no-curve", default=None,
              help="Prune to the last step and evaluate students of every member: curve.png and a table "
                   "(default: the preset's; on for cpu).")
@click.option("--network", type=click.Choice(network_names()), default=None,
              help=f"Network of the teacher trained here (default: {DEFAULT_SINGLE.name}); a given --teacher brings its own.")
@click.option("--student", default=None,
              help=f"Student network of every evaluation (default: {DEFAULT_SINGLE.name}): "
                   f"{', '.join(network_names())} or a torchvision model name.")
@stem_option
@holdout_option
@click.option("--chain-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the pruning chain here instead of OUT/work/chain, e.g. to share one chain between builds "
                   "of one teacher at several IPCs (members record their teacher, data and settings).")
@click.option("--nproc", default=1, show_default=True,
              help="GPUs for evaluations and distillation (runs them under torchrun).")
@device_option
@record_option
@click.option("--record-tau", metavar="NAME", default=None,
              help="Also write benchmarks/results/NAME.json with the build's tau(D_S) (top1_mean, top1_std, seeds).")
@click.option("--record-label-robust", metavar="NAME", default=None,
              help="With --label-robust: also write benchmarks/results/NAME.json with DD-Ranking's scores of the full "
                   "teacher and the selected labeler (ddranking_<who>_<score>_mean, ...).")
@friendly_errors(resumable=True)
def build_cmd(preset, dataset_name, data_root, ipc, out_dir, teacher, distilled, epochs, seeds, teacher_epochs,
              finetune_epochs, param_fractions, loss, temperature, window, gamma, mipc, finetune_per_class, val_per_class,
              verify_candidates, label_robust, curve, network, student, stem, holdout_per_class, chain_dir, nproc,
              device, record, record_tau, record_label_robust):
    """Build a capacity-matched pruned labeler (Flash-DD Algorithm 1) end to end.

    Teacher (given or trained) -> D_S (given or RDED) -> tau(D_S) -> pruning chain with
    fine-tunes -> Dis(theta) per member -> selection -> safetensors + ONNX + card + report.
    Interrupted builds resume; changed options rerun only the stages they affect.
    """
    from ..data import resolve_dataset
    from ..zoo.build import build
    from ..zoo.presets import preset_config, with_overrides

    if dataset_name is None:
        if preset != "smoke":
            raise click.UsageError("--dataset is required with --preset paper.")
        dataset_name = "digits"
    dataset = resolve_dataset(dataset_name, data_root)
    cfg = preset_config(preset, dataset_name, ipc, out_dir, dataset.resolution)
    cfg = with_overrides(
        cfg, curve=curve, holdout_per_class=holdout_per_class, teacher_stem=stem, protocol_student_stem=stem,
        teacher_network=network, protocol_student=student,
        chain_dir=str(chain_dir) if chain_dir else None)
    cfg = with_overrides(
        cfg, data_root=str(data_root) if data_root else None, teacher=str(teacher) if teacher else None,
        distilled=str(distilled) if distilled else None, seeds=number_list(seeds, int, "--seeds") if seeds else None,
        verify_candidates=verify_candidates or None, label_robust=label_robust or None, nproc=nproc, device=device,
        protocol_epochs=epochs, protocol_loss=loss, protocol_temperature=temperature,
        teacher_epochs=teacher_epochs, prune_finetune_epochs=finetune_epochs,
        prune_param_fractions=number_list(param_fractions, float, "--param-fractions"), selection_window=window, selection_gamma=gamma,
        rded_mipc=mipc, finetune_per_class=finetune_per_class, val_per_class=val_per_class,
    )
    if record_label_robust and not label_robust:
        raise click.UsageError("--record-label-robust records what --label-robust measures: add --label-robust.")
    report = build(cfg)
    _print_build_summary(report)
    if record:
        _record(record, capacity_metrics(report))
        curve = Path(cfg.out) / "plots" / "curve.png"
        if curve.is_file():  # beside the result, for the README's results section
            shutil.copyfile(curve, RESULTS_DIR / f"{record}-curve.png")
    if record_tau:
        tau = report["tau"]
        _record(record_tau, {"top1_mean": tau["top1_mean"], "top1_std": tau["top1_std"], "seeds": len(tau["top1s"])})
    if record_label_robust:
        _record(record_label_robust, {**_label_robust_metrics(report), "seeds": len(report["tau"]["top1s"])})


def capacity_metrics(report: dict) -> dict:
    """The numbers a capacity-* result records."""
    config = _metrics(Path(report["labeler_dir"]))
    teacher = report["teacher"]
    return {"tau_mean": report["tau"]["top1_mean"], "tau_std": report["tau"]["top1_std"],
            "teacher_params": teacher["params"], "labeler_params": config["params"],
            "param_ratio": config["params"] / teacher["params"], "labeler_bytes": config["weights_bytes"],
            "labeler_gflops": config["gflops"], "student_top1_mean": report["student"]["top1_mean"],
            "student_top1_std": report["student"]["top1_std"], "seeds": len(report["student"]["top1s"]),
            "build_seconds": report["build_seconds"], **_curve_metrics(report), **_label_robust_metrics(report)}


def _metrics(folder: Path) -> dict:
    return read_metrics(folder, read_config(folder))


def _curve_metrics(report: dict) -> dict:
    """Curve builds add the best point, the regret and the labelers' time per student run."""
    if "curve" not in report:
        return {}
    curve = report["curve"]
    best = next(p for p in curve["points"] if p["step"] == curve["best_step"])
    return {"best_member_param_ratio": best["param_ratio"], "best_member_top1_mean": best["top1_mean"],
            "selection_regret": curve["selection_regret"],
            "label_seconds_teacher": statistics.fmean(report["tau"]["label_seconds"]),
            "label_seconds_labeler": statistics.fmean(report["student"]["label_seconds"])}


def _label_robust_metrics(report: dict) -> dict:
    """DD-Ranking's scores of a --label-robust build, per soft-label source (ddranking_teacher_lrs_mean, ...)."""
    from ..zoo.label_robust import flat_metrics

    return {k.replace("ddranking_", f"ddranking_{who}_"): v
            for who, scores in report.get("label_robust", {}).items() for k, v in flat_metrics(scores).items()}


def _print_build_summary(report: dict) -> None:
    m = capacity_metrics(report)
    console.print(
        f"[bold]{report['dataset']} IPC {report['ipc']}[/bold]: tau(D_S) {m['tau_mean']:.2f} ± {m['tau_std']:.2f}; "
        f"labeler {m['labeler_params']:,} params ({100 * m['param_ratio']:.1f}% of the teacher), "
        f"{m['labeler_gflops']:.4f} GFLOPs; student top-1 {m['student_top1_mean']:.2f} ± {m['student_top1_std']:.2f}\n"
        f"labeler: {report['labeler_dir']}\nreport: {Path(report['labeler_dir']).parent / 'build-report.md'} "
        f"({report['build_seconds']:.0f} s of build time, {report['run_seconds']:.0f} s in this run; "
        f"stages reused: {', '.join(report['stages']['reused']) or 'none'})"
    )
