"""`flashdd-zoo projector` and `projector-update`: HeLIO's LoRA projector labeler and its image update."""

from __future__ import annotations

from pathlib import Path

import click

from ..kinds import PROJECTOR
from .common import console, data_root_option, friendly_errors, holdout_option


@click.command(PROJECTOR.name)
@click.option("--dataset", "dataset_name", required=True, help="Registry name or folder:PATH to learn the projector on.")
@data_root_option
@click.option("--backbone", "spec", required=True, metavar="SPEC",
              help="open_clip:MODEL@WEIGHTS_FILE, timm:MODEL@WEIGHTS_FILE or flashdd-zoo:FOLDER (local files only).")
@click.option("--weak-teachers", "weak", required=True, multiple=True, type=click.Path(exists=True, path_type=Path),
              help="An early checkpoint of one teacher run (repeat; train-teacher --checkpoint-epochs writes them).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Projector folder to write (replaced atomically if it exists).")
@click.option("--conv-rank", type=int, default=8, show_default=True, help="LoRA rank on the encoder's convolutions.")
@click.option("--head-rank", type=int, default=None, help="LoRA rank on the head (default 64, or the class count if smaller).")
@click.option("--lambda", "lam", type=float, default=0.1, show_default=True, help="Weight of the CE term.")
@click.option("--epochs", type=int, default=5, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--ipc", type=int, default=10, show_default=True, help="IPC of the sets it labels (for the soft-label size).")
@click.option("--train-per-class", type=int, default=None, help="Use at most this many training images per class.")
@click.option("--val-per-class", type=int, default=None,
              help="Measure top-1 on at most this many per class (of the held-out slice where one is kept).")
@holdout_option
@click.option("--name", default=None, help="Labeler name (default BACKBONE-DATASET-ipcN-projector).")
@click.option("--seed", type=int, default=0, show_default=True)
@friendly_errors
def projector_cmd(dataset_name, data_root, spec, weak, out_dir, conv_rank, head_rank, lam, epochs, batch_size, lr,
                  ipc, train_per_class, val_per_class, holdout_per_class, name, seed):
    """Learn a LoRA projector (HeLIO) on a frozen backbone from the mean of weak teachers' logits; store the adapter only."""
    from ..data import load_split, resolve_dataset, training_split
    from ..data.images import HELD_OUT_SPLIT
    from ..zoo.projector import ProjectorSettings, build_projector

    dataset = resolve_dataset(dataset_name, data_root)
    # the weak teachers' run holds the same slice out (same seed): the projector never trains on it either
    train, held = training_split(dataset, holdout_per_class or 0)
    train = train.per_class(train_per_class, seed=seed) if train_per_class else train
    if held is None:
        val, val_split = load_split(dataset, dataset.val_split(), max_per_class=val_per_class), dataset.val_split()
    else:
        val, val_split = (held.per_class(val_per_class) if val_per_class else held), HELD_OUT_SPLIT
    settings = ProjectorSettings(conv_rank=conv_rank, head_rank=head_rank, lam=lam, epochs=epochs,
                                 batch_size=batch_size, lr=lr, ipc=ipc, seed=seed)
    r = build_projector(spec, list(weak), dataset, train, val, out_dir, settings, name=name, val_split=val_split)
    console.print(f"projector top-1 on {val_split} {r.top1:.2f}% (weak teachers {', '.join(f'{t:.2f}%' for t in r.weak_top1s)}), "
                  f"{r.stored_bytes:,} bytes stored = {100 * r.stored_bytes / r.teacher_bytes:.2f}% of the teacher's "
                  f"{r.teacher_bytes:,}, {r.train_seconds:.0f} s -> {r.folder}")


@click.command("projector-update")
@click.option("--distilled", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The distilled set (D_S) folder to update.")
@click.option("--labeler", "labeler_path", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A projector folder.")
@click.option("--dataset", "dataset_name", required=True, help="Registry name or folder:PATH D_S was distilled from.")
@data_root_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="New D_S folder (written atomically).")
@click.option("--backbone", default=None, type=click.Path(exists=True, path_type=Path),
              help="The projector's backbone weights file (or folder), where it is not found by itself.")
@click.option("--steps", type=int, default=50, show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True)
@click.option("--factor", type=int, default=2, show_default=True, help="Patches per side and down-sampling factor.")
@friendly_errors
def projector_update_cmd(distilled, labeler_path, dataset_name, data_root, out_dir, backbone, steps, lr, factor):
    """Update D_S's images so the projector's encoder sees each patch and its down-up-sampled copy alike (HeLIO Eq. 7)."""
    from ..data import resolve_dataset
    from ..zoo.projector_update import UpdateSettings, projector_update

    dataset = resolve_dataset(dataset_name, data_root, need_files=False)
    out, before, after = projector_update(distilled, labeler_path, dataset, out_dir,
                                          UpdateSettings(steps=steps, lr=lr, factor=factor), backbone=backbone)
    console.print(f"Eq. 7 loss {before:.4g} -> {after:.4g}; updated set -> {out}")
