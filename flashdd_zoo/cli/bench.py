"""`flashdd-zoo bench`: labeler vs full teacher throughput, measured in one process."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click
from rich.table import Table

from ..atomic import atomic_write_text
from ..models import single_architectures
from ..results import this_command
from .common import console, friendly_errors, number_list

RESULTS_DIR = Path("benchmarks/results")
INPUT_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise click.UsageError("--device cuda, but torch sees no CUDA GPU here; use --device cpu.")
    return device


@click.command("bench")
@click.argument("labeler", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--stage-widths", metavar="W1,W2,W3,W4", default=None,
              help="Without LABELER: a ResNet-18 with these stage widths (random weights).")
@click.option("--stem-width", type=int, default=None, help="Stem width with --stage-widths (default W1).")
@click.option("--widths-scale", type=float, default=None,
              help="Without LABELER: ResNet-18 with widths scaled uniformly (multiples of 8).")
@click.option("--members", type=click.IntRange(min=1), default=1, show_default=True,
              help="Without LABELER: an ensemble of this many ResNet-18s of the given widths.")
@click.option("--classes", type=int, default=1000, show_default=True, help="Classes without LABELER.")
@click.option("--res", type=int, default=None, help="Input resolution (default: the labeler's, else 224).")
@click.option("--batch", type=int, default=100, show_default=True, help="Images per batch.")
@click.option("--against", type=click.Choice([*single_architectures(), "none"]), default=single_architectures()[0],
              show_default=True,
              help="Full teacher measured in the same run (float32 eager, random weights).")
@click.option("--backends", default="torch", show_default=True, help="Comma list of torch, onnx.")
@click.option("--device", "device_name", default="auto", show_default=True, help="auto, cuda, cuda:N or cpu.")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default=None,
              help="Fast-path dtype (default: bfloat16 on CUDA, float32 on CPU).")
@click.option("--cuda-graphs/--no-cuda-graphs", default=None, help="Fast path: CUDA graphs (default on CUDA).")
@click.option("--channels-last/--no-channels-last", default=None, help="Fast path: channels_last (default on).")
@click.option("--compile", "compile_mode", default=None, metavar="MODE",
              help="Fast path: torch.compile with this mode ('default', 'max-autotune-no-cudagraphs').")
@click.option("--stack-members/--no-stack-members", default=None,
              help="Fast path of an ensemble: members of one architecture as one grouped network "
                   "(default: on CUDA).")
@click.option("--raw-input", is_flag=True, help="Fast path takes raw [0,1] images (normalisation folded in).")
@click.option("--input-dtype", type=click.Choice(list(INPUT_DTYPES)), default="float32", show_default=True,
              help="dtype of the batches the fast path is fed (the eager targets always get float32).")
@click.option("--repeats", type=int, default=10, show_default=True, help="Timed repetitions (median reported).")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed warm-up batches.")
@click.option("--rep-seconds", type=float, default=0.2, show_default=True, help="Length of one repetition.")
@click.option("--cudnn-benchmark", is_flag=True,
              help="Set torch.backends.cudnn.benchmark (autotuned convolutions) for every target.")
@click.option("--ceiling", is_flag=True, help="Also measure the input-read ceiling (bf16 batch read once).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the full report as JSON here.")
@click.option("--record", metavar="NAME", default=None,
              help="Also write benchmarks/results/NAME.json (device, date, command, git commit, metrics).")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), default=RESULTS_DIR,
              show_default=True, help="Folder for --record.")
@click.option("--update-card", is_flag=True,
              help="Write the measured throughput and speed-up into LABELER's metrics.json, card and manifest.")
@friendly_errors
def bench(labeler, stage_widths, stem_width, widths_scale, members, classes, res, batch, against, backends,
          device_name, dtype, cuda_graphs, channels_last, compile_mode, stack_members, raw_input, input_dtype, repeats,
          warmup, rep_seconds, cudnn_benchmark, ceiling, json_out, record, results_dir, update_card) -> None:
    """Measure LABELER (a labeler folder) against the full ResNet-18 teacher in one process.

    Without LABELER, --stage-widths or --widths-scale bench a ResNet-18 of those widths with
    random weights (speed does not depend on the weights). Reports images/s, latency per batch,
    peak memory and the speed-up; softmax is included in every target.
    """
    import torch

    from ..artifact.refresh import update_metrics
    from ..bench import BenchSpec, result_metrics, run_bench, throughput_metrics
    from ..bench.targets import subject_from_folder, subject_from_widths
    from ..results import write_result

    dev = _device(device_name)
    torch.backends.cudnn.benchmark = cudnn_benchmark
    if labeler is not None and (stage_widths or widths_scale or members != 1):
        raise click.UsageError("give a LABELER folder or --stage-widths/--widths-scale (and --members), not both.")
    if update_card and labeler is None:
        raise click.UsageError("--update-card needs a LABELER folder.")
    if labeler is not None:
        subject = subject_from_folder(labeler)
        if res is not None and res != subject.resolution:
            raise click.UsageError(f"{labeler} takes {subject.resolution}x{subject.resolution} images; drop --res.")
    else:
        widths = number_list(stage_widths, int, "--stage-widths")
        subject = subject_from_widths(widths, widths_scale, classes, res or 224, stem_width=stem_width, members=members)
    chosen = [b.strip() for b in backends.split(",") if b.strip()]
    if not chosen or set(chosen) - {"torch", "onnx"}:
        raise click.UsageError(f"--backends takes a comma list of torch, onnx; got {backends!r}.")
    options = {"dtype": dtype, "cuda_graphs": cuda_graphs, "channels_last": channels_last,
               "fuse_normalization": True if raw_input else None,
               "compile": (True if compile_mode == "default" else compile_mode), "stack_members": stack_members}
    spec = BenchSpec(device=dev, batch=batch, against=None if against == "none" else against,
                     backends=tuple(chosen), fast_options={k: v for k, v in options.items() if v is not None},
                     input_dtype=INPUT_DTYPES[input_dtype], warmup=warmup, repeats=repeats,
                     rep_seconds=rep_seconds, ceiling=ceiling)
    report = run_bench(subject, spec, log=lambda s: console.print(f"[dim]{s}[/dim]"))
    report["command"] = _command()
    _print(report)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(json_out, json.dumps(report, indent=2) + "\n")
    if record:
        path = write_result(results_dir, record, result_metrics(report), command=report["command"])
        console.print(f"[green]recorded[/green] {path}")
    if update_card:
        update_metrics(labeler, throughput_metrics(report))
        console.print(f"[green]throughput written to the card of[/green] {labeler}")


def _command() -> str:
    """The command line as a user would type it (also when run as python -m flashdd_zoo)."""
    if Path(sys.argv[0]).name in ("flashdd-zoo", "__main__.py"):
        return shlex.join(["flashdd-zoo", *sys.argv[1:]])
    return this_command()


def _print(report: dict) -> None:
    lab = report["labeler"]
    title = (f"{lab['name']} ({lab['params']:,} params) on {report['device']}, batch {report['batch']}, "
             f"{report['res']}x{report['res']}, {report['classes']} classes")
    table = Table(title=title)
    for col in ("target", "images/s", "ms / batch", "peak memory", "speed-up"):
        table.add_column(col, justify="left" if col == "target" else "right")
    for r in report["targets"]:
        speedup = f"{r['speedup_vs_teacher']:.2f}x" if "speedup_vs_teacher" in r else "-"
        table.add_row(r["name"], f"{r['images_per_second']:,.0f}", f"{r['latency_ms']:.3f}",
                      f"{r['peak_mem_bytes'] / 2**20:,.1f} MiB", speedup)
    console.print(table)
    for s in report["skipped"]:
        console.print(f"[yellow]not measured[/yellow] {s['name']}: {s['reason']}")
    if lab["unaligned_widths"]:
        console.print(f"[yellow]widths not multiples of 8[/yellow] {', '.join(lab['unaligned_widths'])}")
    if "read_ceiling" in report:
        c = report["read_ceiling"]
        frac = report.get("fraction_of_read_ceiling")
        console.print(f"input-read ceiling (bf16 batch read once): {c['images_per_second']:,.0f} images/s"
                      + (f"; the fast path reaches {100 * frac:.2f}% of it" if frac is not None else ""))
