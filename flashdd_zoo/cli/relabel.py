"""CLI for stored-label pipelines: relabel (write a store), relabel-check (verify one)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import console, data_root_option, friendly_errors

RESULTS_DIR = Path("benchmarks/results")
RECIPES = ("rded", "sre2l")


@click.command("relabel")
@click.option("--distilled", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="D_S folder (ours, or RDED / SRe2L / G-VBSM output).")
@click.option("--dataset", "dataset_name", required=True, help="Registry name or folder:PATH (D_S's classes).")
@data_root_option
@click.option("--labeler", required=True, help="Labeler folder or Hub repo id (ORG/NAME).")
@click.option("--revision", default=None, help="Hub revision (tag, branch or commit) of a repo id.")
@click.option("--input-normalization", default=None,
              help="Normalisation of the stored views, as your code feeds the labeler ('imagenet', 'raw', ...); "
                   "default: the labeler's own.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Store folder to write (relabel.json, shard-*.safetensors, README.md, manifest.json).")
@click.option("--epochs", default=300, show_default=True, help="Epochs of views to label.")
@click.option("--batch-size", default=100, show_default=True, help="Batch size (CutMix mixes within a batch).")
@click.option("--seed", default=0, show_default=True, help="Seed of batch order and views (as evaluate's student seed).")
@click.option("--temperature", default=20.0, show_default=True, help="Soft labels = softmax(logits / T).")
@click.option("--topk", type=int, default=None, help="Store only the k largest probabilities of every image.")
@click.option("--recipe", type=click.Choice(RECIPES), default="rded", show_default=True,
              help="rded: the evaluate command's views (ShufflePatches, RandomResizedCrop scale 1/factor..1, flip); "
                   "sre2l: RandomResizedCrop scale 0.08..1 and flip. Both end with CutMix.")
@click.option("--factor", type=int, default=None, help="rded: ShufflePatches strips (default: by resolution).")
@click.option("--cutmix-alpha", type=float, default=1.0, show_default=True, help="CutMix Beta(alpha, alpha).")
@click.option("--no-cutmix", is_flag=True, help="Skip CutMix.")
@click.option("--shard-batches", type=int, default=None, help="Batches per shard (default: about 256 MiB each).")
@click.option("--overwrite", is_flag=True, help="Replace an existing store at --out.")
@click.option("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda if present).")
@click.option("--record", metavar="NAME", default=None,
              help="Also write NAME.json (store and labeler bytes, epochs, images, ...) into --results-dir.")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), default=RESULTS_DIR,
              show_default=True, help="Folder for --record.")
@friendly_errors
def relabel_cmd(distilled, dataset_name, data_root, labeler, revision, input_normalization, out_dir, epochs,
                batch_size, seed, temperature, topk, recipe, factor, cutmix_alpha, no_cutmix, shard_batches,
                overwrite, device, record, results_dir):
    """Label every epoch's augmented views of D_S once and store them (safetensors shards) for
    stored-label training; flashdd_zoo.relabel.ReplayDataset replays them exactly."""
    from ..data import resolve_dataset
    from ..loaders import load_labeler
    from ..relabel import RelabelPlan, relabel
    from ..relabel.card import storage_metrics
    from ..relabel.store import RelabelStore
    from ..zoo.runtime import pick_device

    if out_dir.exists() and not overwrite:
        raise click.UsageError(f"{out_dir} exists; choose another --out or pass --overwrite.")
    dataset = resolve_dataset(dataset_name, data_root)
    hub = {"revision": revision} if revision else {}
    lab = load_labeler(labeler, device=pick_device(device), input_normalization=input_normalization, **hub)
    plan = RelabelPlan(epochs=epochs, batch_size=batch_size, seed=seed, temperature=temperature, topk=topk,
                       recipe=view_recipe(recipe, factor, None if no_cutmix else cutmix_alpha, dataset.resolution),
                       shard_batches=shard_batches)
    path = relabel(distilled, dataset, lab, out_dir, plan, device)
    m = storage_metrics(path, RelabelStore(path).description)
    console.print(f"stored {m['batches']:,} batches ({m['epochs']} epochs of {m['images']} images) in {m['shards']} "
                  f"shards: {m['store_bytes']:,} bytes, {m['ratio']:.3g}x the labeler's {m['labeler_bytes']:,} "
                  f"-> {path}")
    if record:
        from ..results import write_result

        console.print(f"recorded {write_result(results_dir, record, m)}")


def view_recipe(name: str, factor: int | None, cutmix_alpha: float | None, resolution: int):
    from ..zoo.augment import ViewRecipe
    from ..zoo.distill import default_factor

    if name == "sre2l":
        if factor is not None:
            raise click.UsageError("--factor (ShufflePatches) belongs to --recipe rded.")
        return ViewRecipe(factor=1, scale=(0.08, 1.0), cutmix_alpha=cutmix_alpha)
    return ViewRecipe.rded(factor or default_factor(resolution), cutmix_alpha)


@click.command("relabel-check")
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--distilled", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The D_S the store should have labelled.")
@click.option("--labeler", default=None, help="Labeler folder or Hub repo id the store should come from.")
@friendly_errors
def relabel_check_cmd(store, distilled, labeler):
    """Check a relabel store: every shard against its sha256, every D_S image, and the labeler."""
    from ..loaders import load_labeler
    from ..relabel import ReplayDataset

    replay = ReplayDataset(store, distilled, labeler=load_labeler(labeler) if labeler else None)
    shards = replay.store.verify_shards()
    console.print(f"{store}: {shards} shards, {len(replay.store.description['distilled']['images'])} D_S images"
                  f"{' and the labeler' if labeler else ''} match.")
