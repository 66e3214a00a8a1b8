"""Recorded benchmark results: benchmarks/results/<name>.json, one named result per file."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write_text


def device_name() -> str:
    """The machine as it reports itself: the CUDA device name, else the CPU model."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU: {line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"CPU: {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def this_command() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]])


def write_result(
    out_dir: str | Path, name: str, metrics: dict[str, float], command: str | None = None
) -> Path:
    """Write one named result with the required top-level keys; metrics must be flat numbers."""
    bad = {k: v for k, v in metrics.items() if not isinstance(v, (int, float)) or isinstance(v, bool)}
    if bad:
        raise ValueError(f"result metrics must be numbers, got {bad}")
    doc: dict[str, Any] = {
        "name": name,
        "device": device_name(),
        "date": _dt.date.today().isoformat(),
        "command": command or this_command(),
        "git_commit": git_commit(),
        "metrics": metrics,
    }
    path = Path(out_dir) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    return path
