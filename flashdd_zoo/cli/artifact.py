"""`flashdd-zoo info`, `export` and `card`: one labeler folder, inspected, written or re-rendered."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from ..kinds import kind_names
from .common import console, data_root_option, friendly_errors


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the metrics (metrics.json) as JSON.")
@friendly_errors
def info(path: Path, as_json: bool) -> None:
    """Summarise the labeler folder PATH (verifies its manifest first)."""
    from ..artifact import read_config, read_metrics
    from ..exporters.manifest import verify_manifest

    config = read_config(path)
    verify_manifest(path, required=config.required_files)
    m = read_metrics(path, config)
    if as_json:
        click.echo(json.dumps({"name": config.name, "kind": config.kind, **m}, indent=2))
        return
    table = Table(title=f"{config.name} ({config.kind})", show_header=False)
    rows = config.labeler_kind.info_rows(config, m) or _network_rows(config, m)
    rows.append(("manifest", "sha256 verified"))
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)


def _network_rows(config, m: dict) -> list[tuple[str, str]]:
    from ..cards.render import format_number

    lin = config.lineage
    rows = [
        ("dataset", f"{lin.get('dataset', '?')}  IPC {lin.get('ipc', '-')}"),
        ("architecture", config.labeler_kind.describe(config)),
        ("classes", str(config.num_classes)),
        ("input", "x".join(map(str, config.input.size))),
        ("parameters", f"{m['params']:,}"),
        ("bytes stored", f"{m['weights_bytes']:,}"),
        ("GFLOPs / image", f"{m['gflops']:.4f}"),
        ("ONNX max |diff|", format_number(m.get("onnx_max_abs_diff"), ".2e")),
    ]
    for key, label in (("tau_mean", "tau(D_S) top-1"), ("teacher_top1", "labeler top-1"),
                       ("student_top1_mean", "student top-1")):
        if m.get(key) is not None:
            rows.append((label, f"{m[key]:.2f}%"))
    return rows


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Labeler folder to write (replaced atomically if it exists).")
@click.option("--dataset", "dataset_name", required=True,
              help="Dataset the teacher was trained on (registry name or folder:PATH).")
@data_root_option
@click.option("--name", default=None, help="Labeler name (default: the output folder's name).")
@click.option("--kind", default=None, type=click.Choice(kind_names()),
              help="What the network is (default: ensemble for an ensemble, else teacher).")
@click.option("--sample-images", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of real images for the ONNX check (default: the dataset's val split).")
@click.option("--temperature", type=float, default=None, help="Default soft-label temperature.")
@click.option("--backbone", default=None, type=click.Path(exists=True, path_type=Path),
              help="A projector's backbone weights file (or folder), where it is not found by itself.")
@friendly_errors
def export(source, out_dir, dataset_name, data_root, name, kind, sample_images, temperature, backbone) -> None:
    """Export SOURCE as a labeler folder: config.json, model.safetensors, model.onnx, card, manifest.

    SOURCE is a torchvision ResNet-18 .pth state dict (read with weights_only=True), a
    flashdd-zoo training checkpoint folder, or an existing labeler folder. A folder that stores no
    ONNX file (a projector) is copied with its network, adapter merged, added as model.onnx.
    """
    from ..artifact import ONNX, read_config
    from ..data import resolve_dataset
    from ..data import sample_images as draw_samples
    from ..exporters import export_labeler
    from ..exporters.artifact import add_onnx
    from ..kinds import kind_for
    from ..zoo.teachers import load_teacher

    dataset = resolve_dataset(dataset_name, data_root, need_files=sample_images is None)
    samples = draw_samples(dataset, folder=sample_images)
    if source.is_dir() and (source / "config.json").is_file() and ONNX not in read_config(source).required_files:
        console.print(f"[green]exported[/green] {add_onnx(source, out_dir, samples, backbone=backbone)} (adapter merged)")
        return
    teacher = load_teacher(source, dataset.num_classes)
    kind = kind or kind_for(teacher.model.arch).name
    out = export_labeler(
        teacher.model, out_dir, name=name or out_dir.name, kind=kind,
        class_names=dataset.class_names, resolution=dataset.resolution,
        mean=dataset.spec.mean, std=dataset.spec.std, sample_images=samples,
        temperature=temperature, lineage={"dataset": dataset.name, "teacher": teacher.source},
        metrics={k: v for k, v in teacher.info.items() if k in ("teacher_top1",)},
    )
    console.print(f"[green]exported[/green] {out}")


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@friendly_errors
def card(path: Path) -> None:
    """Re-render the model card (README.md) of PATH from its config.json and metrics, and update the manifest."""
    from ..artifact.refresh import refresh_card_and_manifest
    from ..exporters.manifest import verify_manifest

    verify_manifest(path, ignore=("README.md",))  # never bless files that were altered
    refresh_card_and_manifest(path)
    console.print(f"[green]card written[/green] {path / 'README.md'}")
