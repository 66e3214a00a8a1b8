"""One benchmark run: the labeler and the full teacher measured in one process, as a report."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..kinds import kind_for
from ..models import DEFAULT_SINGLE, member_archs
from ..results import device_name
from ..runtime.fast import as_dtype, describe_options, resolve_options, unaligned_widths
from .measure import Measurement, make_inputs, measure, read_ceiling
from .targets import Subject, eager_target, fast_target, onnx_skip_reason, onnx_target, teacher_subject

BACKENDS = ("torch", "onnx")


@dataclass
class BenchSpec:
    device: torch.device
    batch: int = 100
    against: str | None = DEFAULT_SINGLE.name  # the architecture of the full teacher to compare with, or None
    backends: tuple[str, ...] = ("torch",)
    fast_options: dict[str, Any] = field(default_factory=dict)  # overrides of the fast path's choices
    input_dtype: torch.dtype = torch.float32  # what the fast path is fed (the others get float32)
    warmup: int = 3
    repeats: int = 10
    rep_seconds: float = 0.2
    ceiling: bool = False


@dataclass
class Target:
    key: str  # prefix of its numbers in result files: teacher, labeler, labeler_eager_fp32, onnxruntime
    name: str
    role: str
    backend: str
    build: Callable
    inputs: list[torch.Tensor]


def run_bench(subject: Subject, spec: BenchSpec, log: Callable[[str], None] = lambda s: None) -> dict:
    """Measure teacher, labeler (eager and fast, optionally onnxruntime) and the read ceiling."""
    dev, res = spec.device, subject.resolution
    options = resolve_options(dev, fast=True, kind=kind_for(subject.arch), **spec.fast_options)
    normalised = make_inputs(spec.batch, res, dev, torch.float32, raw=False)
    fast_inputs = make_inputs(spec.batch, res, dev, as_dtype(spec.input_dtype), raw=options.fuse_normalization)
    plan: list[Target] = []
    teacher = teacher_subject(subject, spec.against) if spec.against else None
    if teacher is not None:
        plan.append(Target("teacher", "teacher-eager-float32", "teacher", "torch",
                           eager_target(teacher, dev), normalised))
    if "torch" in spec.backends:
        plan.append(Target("labeler_eager_fp32", "labeler-eager-float32", "labeler", "torch",
                           eager_target(subject, dev), normalised))
        plan.append(Target("labeler", f"labeler-fast-{describe_options(options)}", "labeler", "torch",
                           fast_target(subject, dev, **spec.fast_options), fast_inputs))
    skipped = []
    if "onnx" in spec.backends:
        reason = onnx_skip_reason(dev)
        if reason is None:
            plan.append(Target("onnxruntime", "labeler-onnxruntime", "labeler", "onnx",
                               onnx_target(subject, dev), normalised))
        else:
            skipped.append({"name": "labeler-onnxruntime", "reason": reason})
    rows = []
    for t in plan:
        log(f"measuring {t.name} ...")
        m = measure(t.build, t.inputs, dev, spec.warmup, spec.repeats, spec.rep_seconds)
        rows.append({"key": t.key, "name": t.name, "role": t.role, "backend": t.backend, **m.to_json()})
        _release(dev)
    ceiling = None
    if spec.ceiling:
        log("measuring the input-read ceiling ...")
        ceiling = read_ceiling(spec.batch, res, dev, spec.repeats, spec.rep_seconds)
    return _report(subject, teacher, spec, options, rows, skipped, ceiling)


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _report(subject: Subject, teacher: Subject | None, spec: BenchSpec, options, rows: list[dict],
            skipped: list[dict], ceiling: Measurement | None) -> dict:
    import onnxruntime

    by_key = {r["key"]: r for r in rows}
    fast, teacher_row = by_key.get("labeler"), by_key.get("teacher")
    report = {
        "device": device_name(),
        "device_type": spec.device.type,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "batch": spec.batch,
        "res": subject.resolution,
        "classes": subject.arch["num_classes"],
        "input_dtype_fast_path": str(as_dtype(spec.input_dtype)).replace("torch.", ""),
        "fast_path": describe_options(options),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "labeler": {"name": subject.name, "params": subject.params, "widths": [a["widths"] for a in member_archs(subject.arch)],
                    "unaligned_widths": unaligned_widths(subject.arch),
                    "folder": str(subject.folder) if subject.folder else None},
        "teacher": {"name": teacher.name, "params": teacher.params, "weights": "random (speed only)"}
        if teacher else None,
        "targets": rows,
        "skipped": skipped,
    }
    if teacher_row:
        for r in rows:
            r["speedup_vs_teacher"] = r["images_per_second"] / teacher_row["images_per_second"]
    if fast and teacher_row:
        report["ratio"] = fast["speedup_vs_teacher"]
    if ceiling is not None:
        report["read_ceiling"] = ceiling.to_json()
        if fast:
            report["fraction_of_read_ceiling"] = fast["images_per_second"] / ceiling.images_per_second
    return report


def result_metrics(report: dict) -> dict[str, float]:
    """The flat numbers a benchmarks/results/<name>.json file records (write_result)."""
    m: dict[str, float] = {"batch": report["batch"], "res": report["res"], "classes": report["classes"],
                           "labeler_params": report["labeler"]["params"]}
    for r in report["targets"]:
        m[f"{r['key']}_img_s"] = r["images_per_second"]
        m[f"{r['key']}_latency_ms"] = r["latency_ms"]
        m[f"{r['key']}_peak_mem_bytes"] = r["peak_mem_bytes"]
        if "speedup_vs_teacher" in r and r["key"] != "teacher":
            m["ratio" if r["key"] == "labeler" else f"ratio_{r['key']}"] = r["speedup_vs_teacher"]
    if report.get("teacher"):
        m["teacher_params"] = report["teacher"]["params"]
    if "read_ceiling" in report:
        m["read_ceiling_img_s"] = report["read_ceiling"]["images_per_second"]
    if "fraction_of_read_ceiling" in report:
        m["fraction"] = report["fraction_of_read_ceiling"]
    return m
