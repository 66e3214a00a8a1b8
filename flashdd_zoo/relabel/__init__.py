"""Stored-label pipelines (SRe2L, G-VBSM, LPLD, ...): every epoch's views of D_S labelled once and
stored as safetensors shards (write.py), replayed exactly by a torch Dataset (replay.py)."""

from .replay import ReplayBatch, ReplayDataset
from .store import RelabelStore
from .write import RelabelPlan, relabel

__all__ = ["RelabelPlan", "RelabelStore", "ReplayBatch", "ReplayDataset", "relabel"]
