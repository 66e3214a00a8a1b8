"""The projector family in config.json: a pinned foundation backbone plus a LoRA adapter.

It validates and describes the architecture dict like any family, but cannot be built from JSON
alone: the backbone's weights live outside the folder (kinds/projector.py rebuilds it).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ArtifactError
from .architecture import Architecture

LIBRARIES = ("open_clip", "timm", "flashdd-zoo")
HEAD_TEXT, HEAD_STORED = "text", "stored"  # recomputed from class names, or kept in head.safetensors
HEADS = (HEAD_TEXT, HEAD_STORED)


class Projector(Architecture):
    name = "projector"
    short_name = "projector"
    standalone = False  # its backbone's weights live outside config.json

    def validate(self, arch: dict[str, Any]) -> dict[str, Any]:
        try:
            ok = (arch["backbone"]["library"] in LIBRARIES and len(str(arch["backbone"]["sha256"])) == 64
                  and arch["head"] in HEADS and int(arch["num_classes"]) >= 1 and int(arch["feature_dim"]) >= 1
                  and all(int(arch["lora"][k]) >= 1 for k in ("conv_rank", "head_rank"))
                  and float(arch["logit_scale"]) > 0 and len(arch["backbone_input"]["size"]) == 2)
        except (KeyError, TypeError, ValueError) as e:
            raise ArtifactError(f"projector architecture is missing or has a malformed field ({e!r}); "
                                "export the projector again.") from e
        if not ok:
            raise ArtifactError(f"projector architecture has an out-of-range field: backbone library must be one of "
                                f"{LIBRARIES} with a sha256, head one of {HEADS}, ranks >= 1. Export it again.")
        return arch

    def build(self, arch: dict[str, Any]) -> nn.Module:
        raise ArtifactError("a projector is rebuilt from its backbone's weights file: load it with "
                            "load_labeler(folder, backbone=...) instead of building it from config.json.")

    def describe(self, arch: dict[str, Any]) -> str:
        b, lora = arch["backbone"], arch["lora"]
        return (f"frozen {b['library']} {b['name']} (sha256 {b['sha256'][:12]}) + {arch['head']} head, "
                f"LoRA rank {lora['conv_rank']} (convs) / {lora['head_rank']} (head)")

    def named_widths(self, arch: dict[str, Any]) -> list[tuple[str, int]]:
        return []  # the backbone's widths are its library's, not ours to align


PROJECTOR = Projector()
