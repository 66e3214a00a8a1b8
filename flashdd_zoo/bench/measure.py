"""Timing one callable over batches: warm-up, synchronisation, repetitions, median, peak memory."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

CACHE_FLUSH_BYTES = 256 << 20  # rotate input buffers so they never sit in the GPU's L2 (50 MB on H100)
MAX_ITERS = 1000


@dataclass(frozen=True)
class Measurement:
    batch: int
    images_per_second: float
    latency_ms: float  # median time per batch (pipelined, as a training loop sees it)
    latency_ms_min: float
    latency_ms_max: float
    repeats: int
    iters_per_repeat: int
    peak_mem_bytes: int  # CUDA: allocated by this target above what was there; CPU: RSS growth
    peak_mem_kind: str

    def to_json(self) -> dict:
        return asdict(self)


def synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def make_inputs(batch: int, res: int, device: torch.device, dtype: torch.dtype, raw: bool,
                seed: int = 0) -> list[torch.Tensor]:
    """Random image batches (never zeros): normalised N(0, 1), or raw U[0, 1) when `raw`.

    On CUDA enough buffers to exceed the L2 cache are rotated; on the CPU two.
    """
    g = torch.Generator(device="cpu").manual_seed(seed)
    nbytes = batch * 3 * res * res * torch.finfo(dtype).bits // 8
    n = min(8, max(2, math.ceil(CACHE_FLUSH_BYTES / nbytes))) if device.type == "cuda" else 2
    make = torch.rand if raw else torch.randn
    return [make(batch, 3, res, res, generator=g).to(device=device, dtype=dtype) for _ in range(n)]


def measure(build: Callable[[], Callable[[torch.Tensor], torch.Tensor]], inputs: list[torch.Tensor],
            device: torch.device, warmup: int = 3, repeats: int = 10,
            rep_seconds: float = 0.2) -> Measurement:
    """Build the target (its memory counted), warm it up, then time `repeats` repetitions.

    Each repetition runs enough batches to last about `rep_seconds` and synchronises once at its
    end; the per-batch time is the repetition's time over its batches; the median is reported.
    """
    sync = synchronizer(device)
    mem = _MemoryProbe(device)
    fn = build()
    for i in range(max(1, warmup)):
        fn(inputs[i % len(inputs)])
    one = _timed(fn, inputs, 1, sync)
    iters = max(1, min(MAX_ITERS, math.ceil(rep_seconds / max(one, 1e-9))))
    times = [_timed(fn, inputs, iters, sync) for _ in range(max(1, repeats))]
    median = statistics.median(times)
    batch = inputs[0].shape[0]
    return Measurement(batch, batch / median, 1e3 * median, 1e3 * min(times), 1e3 * max(times),
                       len(times), iters, mem.peak(), mem.kind)


def _timed(fn: Callable, inputs: list[torch.Tensor], iters: int, sync: Callable[[], None]) -> float:
    sync()
    t0 = time.perf_counter()
    for i in range(iters):
        fn(inputs[i % len(inputs)])
    sync()
    return (time.perf_counter() - t0) / iters


class _MemoryProbe:
    """Peak memory a target adds: CUDA allocator peak, or the process's resident-set peak."""

    def __init__(self, device: torch.device):
        self.device = device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            self.kind = "cuda_max_memory_allocated"
            self.base = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        else:
            self.kind = "rss_peak_growth"
            self.base = _status_kb("VmRSS")
            _reset_rss_peak()

    def peak(self) -> int:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return int(torch.cuda.max_memory_allocated(self.device) - self.base)
        return max(0, (_status_kb("VmHWM") - self.base) * 1024)


def _status_kb(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_rss_peak() -> None:
    """Linux: writing 5 to /proc/self/clear_refs resets the resident-set high-water mark."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def read_ceiling(batch: int, res: int, device: torch.device, repeats: int = 10,
                 rep_seconds: float = 0.2) -> Measurement:
    """How fast the device can read a bf16 batch once (a float32-accumulated sum of it): the
    physical ceiling of any labeler, which has to read its input at least once."""
    inputs = make_inputs(batch, res, device, torch.bfloat16, raw=True, seed=1)
    return measure(lambda: lambda x: x.sum(dtype=torch.float32), inputs, device, warmup=3,
                   repeats=repeats, rep_seconds=rep_seconds)
