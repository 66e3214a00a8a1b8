"""Flash-DD's label-generation cost: the extra time a training epoch spends producing soft labels.

Use `LabelTimer` inside an existing training loop (the evaluator's), or `time_labeling` to time
a labeler over a batch iterator on its own:

    timer = LabelTimer(device)
    for x in batches:
        with timer.section(x.shape[0]):
            soft = labeler.soft_labels(x)
        ...
    timing = timer.result()      # LabelTiming(seconds, calls, images); one synchronisation
    timer.reset()                # next epoch

On CUDA a section is timed with CUDA events on the current stream: the training loop is never
synchronised per batch, and the time counted is the device time from the start of the labeling
work to its end (launch gaps included, earlier queued work excluded). On the CPU it is wall time.
The speed-up of a labeler over a teacher is `label_speedup(teacher_timing, labeler_timing)`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LabelTiming:
    seconds: float
    calls: int
    images: int

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("inf")

    def to_json(self) -> dict:
        return {"seconds": self.seconds, "calls": self.calls, "images": self.images,
                "images_per_second": self.images_per_second}


class LabelTimer:
    """Accumulates the time spent inside `section()` blocks; see the module docstring."""

    def __init__(self, device: str | torch.device | None = None):
        device = torch.device(device) if device is not None else torch.device("cpu")
        self.cuda = device.type == "cuda"
        self.device = device
        self.reset()

    def reset(self) -> None:
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._seconds = 0.0
        self.calls = 0
        self.images = 0

    @contextlib.contextmanager
    def section(self, images: int = 0) -> Iterator[None]:
        """Time the block as one labeling call over `images` images."""
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(torch.cuda.current_stream(self.device))
            yield
            end.record(torch.cuda.current_stream(self.device))
            self._events.append((start, end))
        else:
            t0 = time.perf_counter()
            yield
            self._seconds += time.perf_counter() - t0
        self.calls += 1
        self.images += int(images)

    @property
    def seconds(self) -> float:
        if self._events:
            self._events[-1][1].synchronize()
            self._seconds += sum(s.elapsed_time(e) for s, e in self._events) / 1000.0
            self._events = []
        return self._seconds

    def result(self) -> LabelTiming:
        return LabelTiming(self.seconds, self.calls, self.images)


def time_labeling(
    label_fn: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[torch.Tensor],
    device: str | torch.device | None = None,
    warmup_batches: int = 1,
) -> LabelTiming:
    """Time `label_fn` (e.g. `labeler.soft_labels`, or a teacher) over every batch of `batches`.

    The first `warmup_batches` batches run untimed (lazy initialisation, graph capture). Returns
    the time summed over the remaining calls.
    """
    timer = LabelTimer(device)
    with torch.no_grad():
        for i, x in enumerate(batches):
            if i < warmup_batches:
                label_fn(x)
                continue
            with timer.section(x.shape[0]):
                label_fn(x)
    return timer.result()


def label_speedup(teacher: LabelTiming, labeler: LabelTiming) -> float:
    """Flash-DD's speed-up: the teacher's extra label time over the labeler's, per image."""
    if labeler.images == 0 or teacher.images == 0:
        raise ValueError("both timings need at least one timed image")
    return (teacher.seconds / teacher.images) / (labeler.seconds / labeler.images)
