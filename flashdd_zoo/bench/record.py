"""The throughput numbers a bench report puts on a labeler's card (written by artifact.refresh.update_metrics)."""

from __future__ import annotations

from ..errors import ArtifactError


def throughput_metrics(report: dict) -> dict:
    """metrics.json entries from a bench report: the fast path's images/s, where, and the speed-up."""
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
