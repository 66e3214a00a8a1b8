"""Put a measured throughput on a labeler's card: config.json metrics, README.md, manifest.

The folder is updated as a whole: a verified copy is changed beside it and swapped in, so a
failure leaves the original untouched and no half-updated folder is ever visible.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..atomic import atomic_dir
from ..cards.render import write_card
from ..errors import ArtifactError
from ..exporters.manifest import verify_manifest, write_manifest
from ..labeler_config import CARD, REQUIRED_FILES, read_config, write_config


def throughput_metrics(report: dict) -> dict:
    """config.json metrics from a bench report: the fast path's images/s, where, and the speed-up."""
    rows = {r["key"]: r for r in report["targets"]}
    fast, teacher = rows.get("labeler"), rows.get("teacher")
    if fast is None:
        raise ArtifactError("the benchmark measured no torch fast path; run it with --backends torch.")
    if teacher is None:
        raise ArtifactError("the speed-up needs the full teacher measured in the same run; drop --against none.")
    where = (f"{report['device']} (batch {report['batch']}, {report['res']}x{report['res']}, "
             f"{report['fast_path']}, flashdd-zoo bench)")
    return {
        "throughput_img_s": round(fast["images_per_second"], 1),
        "throughput_device": where,
        "throughput_speedup": round(report["ratio"], 3),
        "throughput_batch": report["batch"],
        "teacher_throughput_img_s": round(teacher["images_per_second"], 1),
    }


def record_throughput(folder: str | Path, metrics: dict) -> Path:
    """Merge `metrics` into config.json, re-render the card and rewrite the manifest, atomically.

    Every file but the card is verified against the manifest first: altered files are refused,
    never blessed by a new manifest.
    """
    folder = Path(folder)
    read_config(folder)
    verify_manifest(folder, required=REQUIRED_FILES, ignore=(CARD,))
    with atomic_dir(folder) as staged:
        shutil.copytree(folder, staged, dirs_exist_ok=True)
        config = read_config(staged)
        config["metrics"] = {**config["metrics"], **metrics}
        write_config(staged, config)
        write_card(staged)
        write_manifest(staged)
        verify_manifest(staged, required=REQUIRED_FILES)
    return folder
