"""Stage checkpointing for builds: a stage reruns only when its inputs (its key) changed."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

from ..atomic import atomic_write_text


def digest(key: Any) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


class StageCache:
    """Results of finished stages in work/stages.json, each stored with the digest of its key."""

    def __init__(self, work_dir: Path):
        self.path = Path(work_dir) / "stages.json"
        self.entries: dict[str, dict] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.reused: list[str] = []
        self.ran: list[str] = []

    def run(self, name: str, key: Any, fn: Callable[[], dict], still_valid: Callable[[dict], bool] = lambda r: True) -> dict:
        """Return the stored result when the key matches (and its outputs still exist), else run."""
        entry, key_digest = self.entries.get(name), digest(key)
        if entry and entry["key"] == key_digest and still_valid(entry["result"]):
            self.reused.append(name)
            return entry["result"]
        t0 = time.perf_counter()
        result = fn()
        self.entries[name] = {"key": key_digest, "result": result, "seconds": time.perf_counter() - t0}
        self._save()
        self.ran.append(name)
        return result

    def seconds(self, name: str) -> float:
        return float(self.entries.get(name, {}).get("seconds", 0.0))

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(self.entries, indent=2, default=str) + "\n")
