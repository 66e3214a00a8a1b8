"""Teacher ensembles: several ResNets whose logits are combined with per-member weights.

`Ensemble` keeps every member as its own ResNet; it is the stored form (weights `members.<i>.*`)
and runs members of any widths one after another. `StackedEnsemble` computes the same function
for members that share one architecture as a single network of grouped convolutions: each layer
of every member runs in one kernel, so the whole ensemble is evaluated in one pass, and the fast
path folds BatchNorm and input normalisation into it like into a single ResNet.

Soft labels are softmax(sum_m w_m * logits_m / T) with weights summing to 1. An optional
schedule changes the weights by training epoch (weak, early-trajectory teachers first, as in
curriculum labeling); the weights live in a buffer, so captured CUDA graphs read the new values.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ArtifactError
from .architecture import Architecture
from .resnet import BasicBlock

NAME = "ensemble"
WEIGHTS_BUFFER = "member_weights"


def ensemble_arch(members: list[dict[str, Any]], weights: list[float] | None = None,
                  schedule: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON architecture of an ensemble of ResNet members (weights default to uniform)."""
    arch = {"name": NAME, "num_classes": members[0]["num_classes"] if members else 0,
            "members": [dict(m) for m in members],
            "weights": _normalised(weights or [1.0] * len(members), "weights")}
    if schedule:
        arch["schedule"] = [{"from_epoch": int(s["from_epoch"]), "weights": _normalised(s["weights"], "schedule weights")}
                            for s in sorted(schedule, key=lambda s: s["from_epoch"])]
    return validate_ensemble_arch(arch)


def validate_ensemble_arch(arch: dict[str, Any]) -> dict[str, Any]:
    """Check an ensemble architecture from config.json; raise ArtifactError naming the problem."""
    members = arch.get("members")
    if not isinstance(members, list) or len(members) < 2:
        raise ArtifactError(f"an ensemble needs at least 2 members, got {members!r:.80}.")
    for m in members:
        _member_architecture(m).validate(m)
    classes = {m["num_classes"] for m in members}
    inputs = {(m["name"], _member_architecture(m).input_signature(m)) for m in members}
    if len(classes) > 1 or arch.get("num_classes") not in classes:
        raise ArtifactError(f"ensemble members must all predict the ensemble's classes; got {sorted(classes)}.")
    if len({signature for _, signature in inputs}) > 1:
        raise ArtifactError(f"ensemble members must read one input the same way (one stem, one input size); "
                            f"got {sorted(map(str, inputs))}.")
    for weights in [arch.get("weights"), *(s.get("weights") for s in arch.get("schedule", []))]:
        if not isinstance(weights, list) or len(weights) != len(members):
            raise ArtifactError(f"ensemble weights {weights!r} must be a list of {len(members)} numbers, one per member.")
        _normalised(weights, "weights")
    return arch


def weights_for_epoch(arch: dict[str, Any], epoch: int | None) -> list[float]:
    """The member weights in force at `epoch` (the default weights when there is no schedule)."""
    weights = arch["weights"]
    if epoch is None:
        return weights
    for step in arch.get("schedule", []):
        if epoch >= step["from_epoch"]:
            weights = step["weights"]
    return weights


def set_member_weights(net: nn.Module, weights: list[float]) -> bool:
    """Write member weights into an (optimised, possibly compiled) ensemble network in place.

    Returns False when `net` is not an ensemble.
    """
    buffer = next((b for name, b in net.named_buffers() if name.split(".")[-1] == WEIGHTS_BUFFER), None)
    if buffer is None:
        return False
    buffer.copy_(torch.tensor(weights, dtype=buffer.dtype))
    return True


class Ensemble(nn.Module):
    """Members as separate ResNets, run one after another; logits combined by the weights."""

    def __init__(self, arch: dict[str, Any]):
        super().__init__()
        self.arch = validate_ensemble_arch(arch)
        self.members = nn.ModuleList(_member_architecture(a).build(a) for a in arch["members"])
        # not in the weights file, so never on the meta device: loading weights cannot fill it in
        self.register_buffer(WEIGHTS_BUFFER, torch.tensor(arch["weights"], device="cpu"), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([member(x) for member in self.members], dim=1)
        return combine(logits, self.member_weights)

    def shares_architecture(self) -> bool:
        first = self.arch["members"][0]
        return all(m == first for m in self.arch["members"][1:])

    def stackable(self) -> bool:
        """Members of one architecture whose family StackedEnsemble can rewrite (its layers are a ResNet's)."""
        return self.shares_architecture() and _member_architecture(self.arch["members"][0]).stackable


def combine(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(N, M, C) member logits -> (N, C) weighted sum."""
    return (logits * weights.to(logits.dtype).view(1, -1, 1)).sum(dim=1)


class StackedEnsemble(nn.Module):
    """M ResNets of one architecture as one network: member m owns channel block m of every layer.

    The first convolution reads the shared image with all members' filters at once; every later
    convolution is grouped (groups = M), BatchNorm is per channel anyway, and the classifiers are
    one grouped 1x1 convolution. Float results equal Ensemble's up to summation order.
    """

    def __init__(self, ensemble: Ensemble):
        super().__init__()
        if not ensemble.stackable():
            raise ArtifactError("only members of one architecture whose family stacks (a ResNet) can be stacked "
                                "into one network; run the ensemble member by member (stack_members=False).")
        members = list(ensemble.members)
        self.arch = ensemble.arch
        self.num_members = len(members)
        first = members[0]
        self.conv1 = stack_convs([m.conv1 for m in members], shared_input=True)
        self.bn1 = stack_batchnorms([m.bn1 for m in members])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = first.maxpool
        for s in range(1, 5):
            layers = [getattr(m, f"layer{s}") for m in members]
            setattr(self, f"layer{s}", nn.Sequential(*(StackedBlock(list(blocks)) for blocks in zip(*layers))))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = stack_linears([m.fc for m in members])
        self.register_buffer(WEIGHTS_BUFFER, ensemble.member_weights.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        logits = self.fc(self.avgpool(x)).flatten(1)
        return combine(logits.view(x.shape[0], self.num_members, -1), self.member_weights)


class StackedBlock(nn.Module):
    """BasicBlock of M members with grouped convolutions (same attribute names, so the fx
    conv+BatchNorm fuser folds it like a plain block)."""

    def __init__(self, blocks: list[BasicBlock]):
        super().__init__()
        self.conv1 = stack_convs([b.conv1 for b in blocks])
        self.bn1 = stack_batchnorms([b.bn1 for b in blocks])
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = stack_convs([b.conv2 for b in blocks])
        self.bn2 = stack_batchnorms([b.bn2 for b in blocks])
        self.downsample = None
        if blocks[0].downsample is not None:
            self.downsample = nn.Sequential(stack_convs([b.downsample[0] for b in blocks]),
                                            stack_batchnorms([b.downsample[1] for b in blocks]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def stack_convs(convs: list[nn.Conv2d], shared_input: bool = False) -> nn.Conv2d:
    """One convolution computing every member's conv on its own channel block (or, with
    shared_input, all members' filters on the same input)."""
    c, m = convs[0], len(convs)
    groups = c.groups if shared_input else c.groups * m
    in_channels = c.in_channels if shared_input else c.in_channels * m
    out = nn.Conv2d(in_channels, c.out_channels * m, c.kernel_size, c.stride, c.padding, c.dilation, groups,
                    bias=c.bias is not None)
    with torch.no_grad():
        out.weight.copy_(torch.cat([k.weight for k in convs]))
        if c.bias is not None:
            out.bias.copy_(torch.cat([k.bias for k in convs]))
    return out


def stack_batchnorms(bns: list[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    b = bns[0]
    out = nn.BatchNorm2d(b.num_features * len(bns), eps=b.eps, momentum=b.momentum)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(out, name).copy_(torch.cat([getattr(k, name) for k in bns]))
    return out.eval()


def stack_linears(fcs: list[nn.Linear]) -> nn.Conv2d:
    """Member classifiers as one grouped 1x1 convolution over the stacked pooled features."""
    f, m = fcs[0], len(fcs)
    out = nn.Conv2d(f.in_features * m, f.out_features * m, 1, groups=m)
    with torch.no_grad():
        out.weight.copy_(torch.cat([k.weight for k in fcs])[:, :, None, None])
        out.bias.copy_(torch.cat([k.bias for k in fcs]))
    return out


def _normalised(weights: list[float], what: str) -> list[float]:
    try:
        values = [float(w) for w in weights]
    except (TypeError, ValueError) as e:
        raise ArtifactError(f"ensemble {what} {weights!r} must be numbers: {e}") from e
    if any(w < 0 for w in values) or sum(values) <= 0:
        raise ArtifactError(f"ensemble {what} {weights!r} must be non-negative with a positive sum.")
    total = sum(values)
    return [w / total for w in values]


def _member_architecture(arch: dict[str, Any]) -> Architecture:
    from .registry import architecture_of  # the registry lists this module's ENSEMBLE too

    family = architecture_of(arch)
    if family.composite:
        raise ArtifactError("an ensemble member must be a single network, not another ensemble.")
    return family


class EnsembleArchitecture(Architecture):
    """Several single networks whose logits are combined with per-member weights."""

    name = short_name = NAME
    composite = True

    def validate(self, arch: dict[str, Any]) -> dict[str, Any]:
        return validate_ensemble_arch(arch)

    def build(self, arch: dict[str, Any]) -> nn.Module:
        return Ensemble(arch)

    def describe(self, arch: dict[str, Any]) -> str:
        first = arch["members"][0]
        return f"{NAME} of {len(arch['members'])} {_member_architecture(first).describe(first)}"

    def members(self, arch: dict[str, Any]) -> list[dict[str, Any]]:
        return arch["members"]

    def named_widths(self, arch: dict[str, Any]) -> list[tuple[str, int]]:
        return [(f"members.{i}.{where}", c) for i, m in enumerate(arch["members"])
                for where, c in _member_architecture(m).named_widths(m)]


ENSEMBLE = EnsembleArchitecture()
