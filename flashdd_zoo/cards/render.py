"""Model cards rendered from config.json and metrics.json: Hugging Face YAML front matter + human tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from ..artifact.config import CARD, LabelerConfig, read_config
from ..artifact.metrics import read_metrics
from ..atomic import atomic_write_text
from .measure import FLOPS_NOTE

NOT_MEASURED = "not measured"


def format_share(part: float | None, whole: float | None) -> str:
    return f"{100.0 * part / whole:.2f}%" if part is not None and whole else NOT_MEASURED


def format_accuracy(mean: float | None, std: float | None = None, seeds: int | None = None) -> str:
    if mean is None:
        return NOT_MEASURED
    text = f"{mean:.2f}%"
    if std is not None:
        text += f" ± {std:.2f}"
    if seeds:
        text += f" ({seeds} seeds)"
    return text


def format_number(value: Any, fmt: str, unit: str = "") -> str:
    return NOT_MEASURED if value is None else format(value, fmt) + unit


def card_metadata(config: LabelerConfig, m: dict[str, Any]) -> ModelCardData:
    lin = config.lineage
    dataset = lin.get("dataset", "unknown")
    split = lin.get("val_split", "val")
    results = []
    for key, label in (
        ("student_top1_mean", "student top-1"),
        ("tau_mean", "tau(D_S): student top-1 with the full teacher"),
        ("teacher_top1", "labeler top-1"),
    ):
        if m.get(key) is not None:
            results.append(
                EvalResult(task_type="image-classification", dataset_type=dataset,
                           dataset_name=dataset, dataset_split=split, metric_type="accuracy",
                           metric_value=round(float(m[key]), 4), metric_name=label)
            )
    summary = {
        "name": config.name,
        "kind": config.kind,
        "dataset": dataset,
        "ipc": lin.get("ipc"),
        "architecture": config.architecture["name"],
        "params": m.get("params"),
        "weights_bytes": m.get("weights_bytes"),
        "gflops": m.get("gflops"),
        "tau_mean": m.get("tau_mean"),
        "student_top1_mean": m.get("student_top1_mean"),
        "teacher_top1": m.get("teacher_top1"),
        "format_version": config.format_version,
    }
    return ModelCardData(
        library_name="flashdd-zoo",
        pipeline_tag="image-classification",
        tags=["flashdd-zoo", "dataset-distillation", "soft-labels", config.kind, dataset],
        datasets=[dataset],
        metrics=["accuracy"],
        eval_results=results or None,
        model_name=config.name if results else None,
        flashdd=summary,
    )


def render_card(config: LabelerConfig, m: dict[str, Any]) -> str:
    body = config.labeler_kind.card_body(config, m)
    if body is None:
        body = _network_body(config, m)
    return f"---\n{card_metadata(config, m).to_yaml()}\n---\n\n{body}"


def _network_body(config: LabelerConfig, m: dict[str, Any]) -> str:
    lin, inp = config.lineage, config.input
    h, w = inp.size
    name = config.name
    onnx_diff = format_number(m.get('onnx_max_abs_diff'), '.2e')
    body = f"""# {name}

A **{config.kind}** soft-label generator ("labeler") for dataset distillation, built by
[flashdd-zoo](https://pypi.org/project/flashdd-zoo/). It stands in for the full teacher a
distillation codebase calls as `teacher_model(images)`: give it a batch of normalised images and it
returns logits; `soft_labels` returns `softmax(logits / T)` (default T = {config.temperature:g}).

**Input normalisation: {_normalisation(inp)}.** Code that normalises differently (RDED and SRe2L
use ImageNet's mean/std for every dataset) loads it with `input_normalization="imagenet"`,
`"raw"` for [0, 1] images, or `(mean, std)`; the conversion is folded into the first convolution.

## Size and cost

| quantity | value |
|---|---|
| parameters | {format_number(m.get('params'), ',')} |
| % of full teacher's parameters | {format_share(m.get('params'), m.get('teacher_params'))} |
| weights on disk (model.safetensors) | {format_number(m.get('weights_bytes'), ',', ' bytes')} |
| % of full teacher's weights on disk | {format_share(m.get('weights_bytes'), m.get('teacher_weights_bytes'))} |
| GFLOPs per image at {h}x{w} | {format_number(m.get('gflops'), '.4f')} |
| measured throughput | {format_number(m.get('throughput_img_s'), ',.0f', ' images/s')}{_on(m.get('throughput_device'))} |
| labeler throughput / full teacher's (same run) | {format_number(m.get('throughput_speedup'), '.2f', 'x')} |
| label-generation speed-up vs full teacher (extra label time per student epoch) | \
{format_number(m.get('label_speedup'), '.2f', 'x')}{_on(m.get('label_speedup_device'))} |
| ONNX vs torch, max abs logit difference | {onnx_diff} ({m.get('onnx_parity_images', 0)} real images) |

{FLOPS_NOTE}.

## Accuracy

| quantity | value |
|---|---|
| tau(D_S): student top-1 with the full teacher | {format_accuracy(m.get('tau_mean'), m.get('tau_std'), m.get('seeds'))} |
| labeler top-1 on {lin.get('val_split', 'val')} | {format_accuracy(m.get('teacher_top1'))} |
| student top-1 with this labeler | {format_accuracy(m.get('student_top1_mean'), m.get('student_top1_std'), m.get('seeds'))} |
| full teacher top-1 | {format_accuracy(m.get('full_teacher_top1'))} |

{_label_robust_rows(m)}
Students are randomly initialised and trained on the distilled set with this labeler's soft labels
on every augmented batch, then scored on the real {lin.get('val_split', 'validation')} split{_epochs(m)}. Every
accuracy above is on that split. The capacity selection read its accuracies from {lin.get('selection_split', 'the same split')}.

## Lineage

| | |
|---|---|
| dataset | {lin.get('dataset', NOT_MEASURED)} |
| images per class (IPC) | {lin.get('ipc', '—')} |
| distilled set | {lin.get('distilled', '—')} |
| distilled set sha256 | {lin.get('distilled_sha256', '—')} |
| teacher | {lin.get('teacher', '—')} |
| architecture | {config.labeler_kind.describe(config)} |
| input | {inp.channels}x{h}x{w}, normalised with mean {list(inp.mean)} and std {list(inp.std)} |
| classes | {config.num_classes} |
{config.labeler_kind.card_section(config, m)}{_plots(config)}
## Usage

```python
from flashdd_zoo import load_labeler

teacher_model = load_labeler("{lin.get('repo_id', 'PATH_OR_REPO_ID')}", device="cuda")
soft = teacher_model.soft_labels(mixed_images, temperature={config.temperature:g})
logits = teacher_model(mixed_images)
```

```bash
flashdd-zoo info {lin.get('repo_id', 'PATH')}
```

The folder holds `config.json` (pure JSON), `model.safetensors`, `model.onnx` (input
`images`, output `logits`, dynamic batch) and `manifest.json` (sha256 of every file, checked on load).
"""
    return body


def _normalisation(inp) -> str:
    """The labeler's own normalisation, and its name where it has one (the first: 'imagenet' before the
    datasets that share it)."""
    from ..runtime.normalization import named_normalizations

    names = [n for n, (m, s) in named_normalizations().items() if tuple(m) == inp.mean and tuple(s) == inp.std]
    name = f", input_normalization={names[0]!r}" if names else ""
    return f"(x - mean) / std with mean {list(inp.mean)}, std {list(inp.std)}{name}, x in [0, 1]"


def _label_robust_rows(m: dict[str, Any]) -> str:
    """DD-Ranking's label-robust scores, where `evaluate --update-card` measured them."""
    rows = [(key, label) for key, label in (
        ("ior", "IOR: top-1 on D_S minus on a random real subset of its size, this labeler"),
        ("hlr", "HLR: top-1 with real data minus on D_S, hard labels"),
        ("lrs", "LRS: DD-Ranking's label-robust score, (e^a - e^-1) / (e - e^-1), a = (IOR - HLR) / 2"),
    ) if m.get(f"ddranking_{key}_mean") is not None]
    if not rows:
        return ""
    lines = [f"| {label} | {m[f'ddranking_{key}_mean']:.4f} ± {m[f'ddranking_{key}_std']:.4f} "
             f"({m.get('ddranking_rounds')} rounds) |" for key, label in rows]
    return "\n| DD-Ranking (fractions) | value |\n|---|---|\n" + "\n".join(lines) + "\n"


def _on(device: str | None) -> str:
    return f" on {device}" if device else ""


def _epochs(m: dict[str, Any]) -> str:
    return f" after {m['eval_epochs']} epochs" if m.get("eval_epochs") else ""


def _plots(config: LabelerConfig) -> str:
    plots = config.plots
    if not plots:
        return ""
    return "\n## Plots\n\n" + "\n\n".join(f"![{Path(p).stem}]({p})" for p in plots) + "\n"


def write_card(folder: Path) -> Path:
    """Render README.md from the folder's config.json and metrics.json (atomic replace)."""
    config = read_config(folder)
    return atomic_write_text(folder / CARD, render_card(config, read_metrics(folder, config)))
