"""`flashdd-zoo dense`: LADD's dense labels for a distilled set, from any labeler."""

from __future__ import annotations

from pathlib import Path

import click

from ..kinds import DENSE
from .common import console, data_root_option, friendly_errors


@click.command(DENSE.name)
@click.option("--distilled", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="D_S folder (ours, or RDED / SRe2L / G-VBSM output).")
@click.option("--labeler", required=True, type=click.Path(exists=True, path_type=Path),
              help="Labels the sub-images: a labeler folder, a training checkpoint (LADD: an early one, "
                   "`train-teacher --checkpoint-epochs`) or a torchvision .pth.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Dense-label folder to write (replaced atomically if it exists).")
@click.option("--dataset", "dataset_name", default=None,
              help="Dataset D_S was distilled from (default: the one its distilled.json names).")
@data_root_option
@click.option("--n", "grid", default=5, show_default=True, help="Crops per axis (N x N sub-images per image).")
@click.option("--ratio", default=0.625, show_default=True, help="Share R of each image side a crop covers.")
@click.option("--temperature", default=1.0, show_default=True, help="Stored labels are softmax(logits / T).")
@click.option("--name", default=None, help="Artifact name (default: <dataset>-ipc<IPC>-dense<N>).")
@click.option("--batch-size", default=20, show_default=True, help="D_S images labelled per batch (x N*N crops).")
@click.option("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda if present).")
@friendly_errors
def dense_cmd(distilled, labeler, out_dir, dataset_name, data_root, grid, ratio, temperature, name, batch_size,
              device) -> None:
    """Cut every D_S image into N x N static sub-images, label each once with LABELER, store the labels.

    Students then train on them with `flashdd-zoo evaluate --dense OUT`, with no labeler at training time.
    """
    from ..data import resolve_dataset
    from ..dense.store import read_dense
    from ..zoo.dense import make_dense_labels
    from ..zoo.distilled import read_description

    dataset_name = dataset_name or read_description(distilled).get("dataset")
    if not dataset_name:
        raise click.UsageError(f"{distilled} has no distilled.json naming its dataset: give --dataset.")
    dataset = resolve_dataset(dataset_name, data_root, need_files=False)
    folder = make_dense_labels(distilled, dataset, labeler, out_dir, grid, ratio, temperature, device, batch_size, name)
    dense = read_dense(folder)
    m = dense.metrics
    console.print(f"dense labels {tuple(dense.labels.shape)} ({m['dense_bytes']:,} bytes, "
                  f"{m.get('storage_pct', float('nan')):.2f}% of D_S's {m['image_bytes']:,} image bytes) "
                  f"in {m['label_seconds']:.1f} s -> {folder}")
