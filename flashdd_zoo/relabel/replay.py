"""Replaying a relabel store: the stored views of D_S, rebuilt from their parameters, with their labels."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import Dataset, Subset

from ..data.images import decode_files, normalize
from ..zoo.augment import apply_view
from .store import RelabelStore, check_distilled, check_fill, check_labeler, decode_params, expand_labels


class ReplayBatch(NamedTuple):
    images: torch.Tensor  # (n, C, H, W) float32, normalised as the labeler was fed
    soft_labels: torch.Tensor  # (n, classes) float32
    labels: torch.Tensor  # D_S's hard labels of the unmixed images
    cutmix_perm: torch.Tensor | None  # images[i] was pasted from images[perm[i]]
    cutmix_lam: float  # share of each image left unpasted
    epoch: int
    index: torch.Tensor  # D_S indices (replay order of relabel.json)


class ReplayDataset(Dataset):
    """Item i is batch i of the store (epoch i // steps_per_epoch), as an online run labelled it.

    Use it with `DataLoader(dataset, batch_size=None)` (items are whole batches: CutMix mixes
    within a batch), or index it. `distilled` must hold exactly the images the store labelled
    (sha256 per image, RelabelDistilledMismatch otherwise); `labeler`, when given, must be the one
    that wrote it (RelabelLabelerMismatch). Top-k stores are filled by `topk_fill` (store.expand_labels).
    """

    def __init__(self, store: str | Path | RelabelStore, distilled: str | Path, labeler=None,
                 topk_fill: str = "spread", device: str | torch.device = "cpu"):
        self.store = store if isinstance(store, RelabelStore) else RelabelStore(store)
        d = self.store.description
        files = check_distilled(d, Path(distilled), self.store.folder)
        if labeler is not None:
            check_labeler(d, labeler, self.store.folder)
        self.device = torch.device(device)
        self.images = decode_files(files, None).to(self.device)
        self.labels = torch.tensor([e["label"] for e in d["distilled"]["images"]], device=self.device)
        self.recipe, self.topk_fill = d["recipe"], topk_fill
        check_fill(topk_fill)

    def __len__(self) -> int:
        return self.store.batches

    def epoch(self, e: int) -> Subset:
        """The batches of epoch `e` alone, for loops that run one DataLoader pass per epoch."""
        steps = self.store.description["steps_per_epoch"]
        if not 0 <= e < self.store.description["epochs"]:
            raise IndexError(f"epoch {e} outside the store's {self.store.description['epochs']} epochs")
        return Subset(self, range(e * steps, (e + 1) * steps))

    def __getitem__(self, i: int) -> ReplayBatch:
        if i < 0:
            i += len(self)
        rec = self.store.batch(i)  # IndexError past the end, which ends plain iteration
        params = decode_params({k: v.to(self.device) for k, v in rec.items()})
        idx = rec["index"].to(self.device).long()
        x = normalize(self.images[idx], self.recipe["mean"], self.recipe["std"])
        x, perm, lam = apply_view(x, params, self.recipe["size"])
        soft = expand_labels(rec, self.store.num_classes, self.topk_fill).to(self.device)
        return ReplayBatch(x, soft, self.labels[idx], perm, lam, self.store.epoch_of(i), idx)
