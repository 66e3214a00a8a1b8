"""`flashdd-zoo ensemble`: several teachers as one ensemble labeler."""

from __future__ import annotations

from pathlib import Path

import click

from ..kinds import ENSEMBLE
from .common import console, data_root_option, friendly_errors, number_list


@click.command(ENSEMBLE.name)
@click.argument("members", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--dataset", "dataset_name", required=True, help="Registry name or folder:PATH the members were trained on.")
@data_root_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Labeler folder to write (replaced atomically if it exists).")
@click.option("--weights", default=None, metavar="W1,W2,...",
              help="Member weights of the logit average (normalised to sum 1; default uniform).")
@click.option("--schedule", multiple=True, metavar="EPOCH:W1,W2,...",
              help="From training epoch EPOCH on, use these member weights (repeat for several steps; "
                   "the DD loop passes epoch= to soft_labels). Before the first step: --weights.")
@click.option("--name", default=None, help="Labeler name (default resnet18-DATASET-ensembleN).")
@click.option("--val-per-class", type=int, default=None,
              help="Measure top-1 on at most this many real validation images per class (default: all).")
@click.option("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda if present).")
@friendly_errors
def ensemble_cmd(members, dataset_name, data_root, out_dir, weights, schedule, name, val_per_class, device):
    """Combine MEMBERS (labeler folders, training checkpoints such as train-teacher's
    checkpoints/epoch-XXXX, or torchvision .pth files) into one ensemble labeler.

    Soft labels are softmax of the weighted sum of member logits over T. Members of one
    architecture run as one grouped network on the GPU fast path (all members in one pass).
    """
    from ..data import load_split, resolve_dataset
    from ..zoo.ensemble import build_ensemble, parse_schedule

    dataset = resolve_dataset(dataset_name, data_root)
    val = load_split(dataset, dataset.val_split(), max_per_class=val_per_class)
    member_weights = number_list(weights, float, "--weights")  # their count is checked with the members
    result = build_ensemble(list(members), dataset, out_dir, weights=member_weights,
                            schedule=parse_schedule(schedule, len(members)), name=name, val=val, device=device)
    tops = ", ".join(f"{t:.2f}%" for t in result.member_top1s)
    console.print(f"ensemble of {len(members)} ({result.params:,} params): top-1 {result.top1:.2f}% "
                  f"(members {tops}) -> {result.folder}")

