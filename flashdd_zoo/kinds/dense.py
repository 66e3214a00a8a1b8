"""The dense kind (LADD): soft labels of every static sub-image of a distilled set, stored once.

It holds no network. config.json's "architecture" describes the label tensor instead (the layout:
images, grid, ratio, crop boxes, classes), labels.safetensors holds it as float16
[images, N*N, classes], and images.json binds it to one D_S by the sha256 of each image file.
Loading it as a labeler is refused; flashdd_zoo.load_dense_labels reads it (dense/store.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from ..errors import ArtifactArgumentError, ArtifactError
from .base import Kind

if TYPE_CHECKING:
    from ..artifact.config import LabelerConfig

LABELS = "labels.safetensors"
IMAGES = "images.json"
LABELS_TENSOR = "labels"
DTYPE = "float16"


class DenseKind(Kind):
    name = "dense"
    standalone = False  # `flashdd-zoo dense` makes it, export_labeler cannot
    network = False

    def layout(self, num_classes: int, images: int, size: int, grid: int, ratio: float) -> dict[str, Any]:
        """config.json's "architecture" of a dense artifact (validated)."""
        from ..dense.geometry import crop_boxes

        return self.check_architecture({
            "name": self.name, "num_classes": num_classes, "images": images, "image_size": size, "grid": grid,
            "ratio": ratio, "boxes": [list(b) for b in crop_boxes(size, grid, ratio)], "dtype": DTYPE,
            "shape": [images, grid * grid, num_classes]})

    def check_architecture(self, architecture: dict[str, Any]) -> dict[str, Any]:
        """The layout must be whole and its boxes the sub-sampler's for its grid, ratio and image size."""
        from ..dense.geometry import crop_boxes
        from ..errors import ArgumentError

        a = architecture
        try:
            ok = (a["name"] == self.name and a["dtype"] == DTYPE and int(a["num_classes"]) >= 1
                  and int(a["images"]) >= 1
                  and a["shape"] == [a["images"], a["grid"] ** 2, a["num_classes"]]
                  and a["boxes"] == [list(b) for b in crop_boxes(int(a["image_size"]), a["grid"], float(a["ratio"]))])
        except (KeyError, TypeError, ValueError, ArgumentError) as e:
            raise ArtifactError(f"this dense artifact's layout is missing or has a malformed field ({e}); "
                                "make it again with `flashdd-zoo dense`.") from e
        if not ok:
            raise ArtifactError(f"kind {self.name!r} needs the dense-label layout `flashdd-zoo dense` writes (name "
                                f"{self.name!r}, images, grid, ratio, its crop boxes, classes); this one differs. A "
                                "network is exported as kind 'teacher' or 'pruned'.")
        return a

    def stored_files(self, config: LabelerConfig) -> tuple[str, ...]:
        from ..artifact.config import CARD, CONFIG, METRICS

        return (CONFIG, LABELS, IMAGES, CARD, METRICS)

    def checked_network(self, config: LabelerConfig, folder: Path, **sources: Any) -> nn.Module:
        raise ArtifactArgumentError(f"{folder} holds dense labels ({self.name!r}), not a network: load them with "
                                    "flashdd_zoo.load_dense_labels(...) or train on them with `flashdd-zoo evaluate "
                                    "--dense FOLDER`.")

    def build(self, config: LabelerConfig) -> nn.Module:
        raise ArtifactArgumentError(f"{config.name} holds dense labels ({self.name!r}), not a network: load them "
                                    "with flashdd_zoo.load_dense_labels(...).")

    def describe(self, config: LabelerConfig) -> str:
        a = config.architecture
        return (f"dense labels: {a['grid']}x{a['grid']} crops of {100 * a['ratio']:g}% of the side, resized to "
                f"{a['image_size']} px, for {a['images']} images, {a['dtype']}")

    def default_name(self, architecture: dict[str, Any], dataset_slug: str, ipc: int | None = None) -> str:
        return f"{dataset_slug}{f'-ipc{ipc}' if ipc else ''}-{self.name}{architecture['grid']}"

    def info_rows(self, config: LabelerConfig, metrics: dict[str, Any]) -> list[tuple[str, str]]:
        from ..cards.render import format_number, format_share

        lin = config.lineage
        return [("dataset", f"{lin.get('dataset', '?')}  IPC {lin.get('ipc', '-')}"), ("what", self.describe(config)),
                ("labels", f"{tuple(config.architecture['shape'])} {DTYPE}"),
                ("bytes stored", format_number(metrics.get("dense_bytes"), ",")),
                ("share of D_S image bytes", format_share(metrics.get("dense_bytes"), metrics.get("image_bytes"))),
                ("labeler", str(config.lineage.get("labeler", "?")))]

    def card_body(self, config: LabelerConfig, m: dict[str, Any]) -> str | None:
        from ..cards.render import format_number, format_share

        a, lin = config.architecture, config.lineage
        return f"""# {config.name}

**Dense labels** (LADD) for a distilled set, made by [flashdd-zoo](https://pypi.org/project/flashdd-zoo/):
every image of D_S is cut into {a['grid']} x {a['grid']} static sub-images (each {100 * a['ratio']:g}% of the
side, resized back to {a['image_size']} px), and each sub-image carries one soft label,
softmax(logits / {config.temperature:g}) of the labeler below. A student trains on global views with hard
labels plus these local views with their dense labels; no labeler runs during its training.

| quantity | value |
|---|---|
| labels ({LABELS}) | {a['shape'][0]} images x {a['shape'][1]} crops x {a['shape'][2]} classes, {DTYPE} |
| bytes on disk ({LABELS}) | {format_number(m.get('dense_bytes'), ',')} |
| D_S image files, bytes | {format_number(m.get('image_bytes'), ',')} |
| labels / image bytes | {format_share(m.get('dense_bytes'), m.get('image_bytes'))} |
| labeler | {lin.get('labeler', '—')} |
| labeler epoch (early stage) | {lin.get('labeler_epoch', '—')} |
| labeler top-1 | {format_number(m.get('labeler_top1'), '.2f', '%')} |
| dataset | {lin.get('dataset', '—')} (IPC {lin.get('ipc', '—')}) |
| distilled set sha256 | {lin.get('distilled_sha256', '—')} |

Crop boxes (top, left, height, width; row-major): {', '.join(str(tuple(b)) for b in a['boxes'])}.

## Usage

```python
from flashdd_zoo import load_dense_labels

dense = load_dense_labels("{lin.get('repo_id', 'PATH_OR_REPO_ID')}")
dense.check_distilled("path/to/D_S")        # refuses another D_S, naming the first differing image
soft = dense.label(image_index, crop_index)  # the stored soft label of one sub-image
```

```bash
flashdd-zoo evaluate --dataset {lin.get('dataset', 'DATASET')} --distilled path/to/D_S --dense path/to/this/folder
```

`{IMAGES}` binds the labels to D_S: the sha256 of every image file, in label order. `manifest.json`
holds the sha256 of every file, checked on load.
"""


DENSE = DenseKind()
