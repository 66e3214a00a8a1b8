"""`flashdd-zoo bench`: labeler vs full-teacher throughput, read ceiling, throughput on cards."""

from .measure import Measurement, make_inputs, measure, read_ceiling
from .record import throughput_metrics
from .run import BenchSpec, result_metrics, run_bench
from .targets import Subject, subject_from_folder, subject_from_widths

__all__ = ["BenchSpec", "Measurement", "Subject", "make_inputs", "measure", "read_ceiling",
           "result_metrics", "run_bench", "subject_from_folder",
           "subject_from_widths", "throughput_metrics"]
