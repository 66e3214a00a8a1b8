"""The README.md card of a relabel store: what it holds, and its bytes against the labeler's."""

from __future__ import annotations

from pathlib import Path

from .store import DESCRIPTION


def store_bytes(folder: Path, doc: dict) -> int:
    """What replay reads besides D_S: the shards and relabel.json (the card and manifest excluded)."""
    return doc["bytes"]["shards"] + (Path(folder) / DESCRIPTION).stat().st_size


def storage_metrics(folder: Path, doc: dict) -> dict[str, float]:
    """Flat numbers of a store (benchmarks/results/<name>.json, the card)."""
    total, labeler = store_bytes(folder, doc), doc["bytes"]["labeler_weights"]
    return {"store_bytes": total, "label_bytes": doc["bytes"]["labels"], "param_bytes": doc["bytes"]["params"],
            "labeler_bytes": labeler, "ratio": total / labeler, "epochs": doc["epochs"],
            "images": len(doc["distilled"]["images"]), "batches": doc["epochs"] * doc["steps_per_epoch"],
            "batch_size": doc["batch_size"], "topk": doc["topk"] or 0, "shards": len(doc["shards"]),
            "seconds": doc["seconds"]}


def write_card(folder: Path, doc: dict) -> Path:
    m = storage_metrics(folder, doc)
    recipe, lab = doc["recipe"], doc["labeler"]
    labels = "whole float16 vectors" if doc["topk"] is None else f"the top {doc['topk']} float16 probabilities"
    lines = [
        f"# Relabel store: {lab['name']} on {m['images']} distilled images",
        "",
        f"Soft labels softmax(logits / {doc['temperature']:g}), stored as {labels}, of labeler `{lab['name']}` "
        f"(fingerprint `{lab['fingerprint'][:16]}`) for {doc['epochs']} epochs of augmented views of the D_S at "
        f"`{doc['distilled']['path']}`: batch {doc['batch_size']}, seed {doc['seed']}, ShufflePatches factor "
        f"{recipe['factor']}, RandomResizedCrop scale {tuple(recipe['scale'])}, flip {recipe['flip']}, CutMix alpha "
        f"{recipe['cutmix_alpha']}. Replay with `flashdd_zoo.relabel.ReplayDataset(store, distilled)`; every D_S "
        "image is checked against its sha256 in relabel.json first.",
        "",
        "| stored | bytes |",
        "|---|---|",
        f"| soft labels | {m['label_bytes']:,} |",
        f"| view parameters (order, crops, flips, patches, CutMix) | {m['param_bytes']:,} |",
        f"| store (shards + relabel.json, measured on disk) | {m['store_bytes']:,} |",
        f"| labeler weights | {m['labeler_bytes']:,} |",
        "",
        f"The store takes {m['ratio']:.3g}x the labeler's bytes ({m['batches']:,} batches in {m['shards']} "
        f"safetensors shards, written in {m['seconds']:.1f} s). Neither count includes the D_S images.",
        "",
    ]
    path = Path(folder) / "README.md"
    path.write_text("\n".join(lines))
    return path
