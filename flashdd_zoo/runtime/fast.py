"""The labeler's fast inference path: folded BatchNorm, folded input normalisation, bf16/fp16,
channels_last, optional torch.compile, and CUDA-graph replay per input shape.

Numerics: TOLERANCES below are the bounds the fast path is held to against float32 (tested on
real CIFAR-10 test images in tests/test_fast_path.py; measured on real ImageNet images at 224x224
by benchmarks/fast_path_tolerance.py):

- float32 with BatchNorm and/or normalisation folded: the same function up to float rounding,
  max |logit difference| <= 1e-4 * max|logit|, max |probability difference| <= 1e-5.
- bfloat16 weights and activations (softmax always in float32): max |probability difference|
  <= 0.03 at temperature 1 and <= 0.003 at temperature 20; ||logits - ref|| / ||ref|| <= 0.02.
  (Measured on CIFAR-10: about 0.011-0.015, 6e-4 and 0.007.) float16 is held to the same bounds
  and lands about 10x inside them.

Everything here maps a network that takes images to logits onto a faster one computing the same
function. An ensemble whose members share one architecture is first stacked into one network of
grouped convolutions (flashdd_zoo.models.ensemble.StackedEnsemble), so all members run in one pass
and get the same folding and graph replay as a single ResNet.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.experimental.optimization import fuse as fx_fuse_conv_bn

from ..errors import ArtifactArgumentError, ArtifactError, warn_user
from ..models import architecture_of
from .normalization import CallerNormalization, caller_normalization, conversion

if TYPE_CHECKING:
    from ..artifact.config import LabelerConfig
    from ..kinds import Kind

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
          "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
GRAPH_WARMUP_RUNS = 3
HARDWARE_MULTIPLE = 8

# bounds against float32: max |prob diff| at T=1 and T=20, relative logit error
TOLERANCES = {
    torch.float32: {"prob_t1": 1e-5, "prob_t20": 1e-5, "rel_logit": 1e-4},
    torch.bfloat16: {"prob_t1": 0.03, "prob_t20": 0.003, "rel_logit": 0.02},
    torch.float16: {"prob_t1": 0.03, "prob_t20": 0.003, "rel_logit": 0.02},
}

# ---------------------------------------------------------------------------------------------
# options


@dataclass(frozen=True)
class FastOptions:
    """How a torch labeler runs. The defaults are the plain float32 eager path."""

    dtype: torch.dtype = torch.float32
    channels_last: bool = False
    fold_bn: bool = False
    input_normalization: CallerNormalization | None = None  # what the caller feeds; None: the labeler's own
    cuda_graphs: bool = False
    compile: bool | str = False  # True, or a torch.compile mode such as "max-autotune-no-cudagraphs"
    stack_members: bool = False  # an ensemble of one architecture runs as one grouped network
    graph_cache_size: int = 4  # input shapes kept as captured CUDA graphs (least recently used out)

    @property
    def fuse_normalization(self) -> bool:
        """The caller feeds raw [0, 1] images (the older spelling of input_normalization='raw')."""
        return self.input_normalization is not None and self.input_normalization.is_raw


def resolve_options(device: str | torch.device, fast: bool = False, kind: Kind | None = None,
                    channels: int = 3, **explicit: Any) -> FastOptions:
    """Options for `device`: `fast=True` picks the defaults that suit it; explicit values win.

    fast on CUDA: bf16, channels_last, folded BatchNorm, CUDA graphs. fast on CPU: float32,
    channels_last, folded BatchNorm (bf16 convolutions are slower than float32 on most CPUs).
    `kind` adds what fast means for it (an ensemble stacks its members on CUDA: Kind.fast_defaults).
    `explicit` holds FastOptions fields; a None value means "not given". `input_normalization`
    (a name, (mean, std) or None) and `fuse_normalization=True` (= 'raw') are resolved for a
    labeler of `channels` input channels (see runtime/normalization.py).
    """
    cuda = torch.device(device).type == "cuda"
    base = FastOptions()
    if fast:
        base = FastOptions(dtype=torch.bfloat16 if cuda else torch.float32, channels_last=True,
                           fold_bn=True, cuda_graphs=cuda, **(kind.fast_defaults(cuda) if kind else {}))
    caller = caller_normalization(explicit.pop("input_normalization", None),
                                  explicit.pop("fuse_normalization", None), channels)
    given = {k: v for k, v in explicit.items() if v is not None}
    if caller is not None:
        given["input_normalization"] = caller
    unknown = set(given) - set(FastOptions.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown fast-path option(s) {sorted(unknown)}")
    if "dtype" in given:
        given["dtype"] = as_dtype(given["dtype"])
    options = replace(base, **given)
    if options.cuda_graphs and not cuda:
        raise ArtifactArgumentError(
            f"cuda_graphs=True needs a CUDA device, but the labeler is loaded on {device!r}. "
            "Load it with device='cuda', or drop cuda_graphs=True."
        )
    if options.graph_cache_size < 1:
        raise ArtifactArgumentError(f"graph_cache_size must be at least 1, got {options.graph_cache_size}.")
    return options


def describe_options(options: FastOptions) -> str:
    """A short name such as 'bfloat16+channels_last+fold_bn+cuda_graphs'."""
    parts = [str(options.dtype).replace("torch.", "")]
    parts += [name for name in ("channels_last", "fold_bn", "fuse_normalization", "cuda_graphs", "stack_members")
              if getattr(options, name)]
    if options.input_normalization is not None and not options.fuse_normalization:
        parts.append(f"input_normalization={options.input_normalization.name}")
    if options.compile:
        parts.append(f"compile={options.compile}" if isinstance(options.compile, str) else "compile")
    return "+".join(parts)


def as_dtype(value: torch.dtype | str) -> torch.dtype:
    if isinstance(value, torch.dtype) and value in DTYPES.values():
        return value
    if isinstance(value, str) and value in DTYPES:
        return DTYPES[value]
    raise ArtifactArgumentError(f"unsupported labeler dtype {value!r}; use one of float32, bfloat16, float16.")


# ---------------------------------------------------------------------------------------------
# network rewrites (float32, before any cast)


def fold_batchnorm(net: nn.Module) -> fx.GraphModule:
    """Fold every eval-mode BatchNorm that follows a conv into that conv (torch.fx's fuse pass,
    which calls torch.nn.utils.fusion.fuse_conv_bn_eval). Returns a new module."""
    return fx_fuse_conv_bn(net.eval(), inplace=False)


class RawInputConv(nn.Module):
    """`conv((x - mean) / std)` for raw images x, as one convolution plus a bias map.

    Folding the normalisation into the weights (W / std) and a per-channel bias is exact only
    away from the borders: the conv zero-pads the *normalised* image, and a raw 0 is not a
    normalised 0. The bias map, computed once for the input size, holds the exact constant term
    at every output position, borders included.
    """

    def __init__(self, conv: nn.Conv2d, mean: torch.Tensor, std: torch.Tensor, size: tuple[int, int]):
        super().__init__()
        if conv.padding_mode != "zeros" or conv.in_channels != len(mean):
            raise ArtifactError(f"cannot fold input normalisation into {conv}: expected a zero-padded "
                                f"conv with {len(mean)} input channels.")
        w = conv.weight.detach().double()
        std64, mean64 = std.double().view(1, -1, 1, 1), mean.double().view(1, -1, 1, 1)
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                              conv.padding, conv.dilation, conv.groups, bias=False)
        self.conv.weight = nn.Parameter((w / std64).float(), requires_grad=False)
        shifted = (mean64 / std64).expand(1, -1, *size)  # the normalised value of every raw pixel 0
        constant = F.conv2d(shifted, w, None, conv.stride, conv.padding, conv.dilation, conv.groups)
        bias = conv.bias.detach().double().view(1, -1, 1, 1) if conv.bias is not None else 0.0
        self.register_buffer("bias_map", (bias - constant).float())
        self.size = tuple(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.size:
            raise ArtifactError(f"raw-input labeler was folded for {self.size} images, got "
                                f"{tuple(x.shape[-2:])}; load it with resize=True.")
        return self.conv(x) + self.bias_map


def fold_input_normalization(
    net: nn.Module, mean: list[float], std: list[float], size: tuple[int, int]
) -> fx.GraphModule:
    """Make `net` take images it must first map by (x - mean) / std (raw [0, 1] images, or images
    normalised with another mean/std): its first layer absorbs the map exactly.

    The first layer must be a Conv2d that is the only consumer of the input.
    """
    gm = net if isinstance(net, fx.GraphModule) else fx.symbolic_trace(net)
    placeholder = next(n for n in gm.graph.nodes if n.op == "placeholder")
    users = list(placeholder.users)
    first = users[0].target if len(users) == 1 and users[0].op == "call_module" else None
    conv = gm.get_submodule(first) if first else None
    if not isinstance(conv, nn.Conv2d):
        raise ArtifactError("input_normalization / fuse_normalization need a network whose input feeds exactly one Conv2d; "
                            "this one does not (an ensemble must be stacked: members of one architecture "
                            "and stack_members=True). Normalise the images yourself instead.")
    folded = RawInputConv(conv, torch.tensor(mean), torch.tensor(std), size)
    gm.add_submodule(first, folded.to(conv.weight.device))
    gm.recompile()
    return gm


def optimize_network(net: nn.Module, options: FastOptions, config: LabelerConfig,
                     device: str | torch.device) -> nn.Module:
    """Apply the rewrites in float32 (the kind's own first), then move to device, dtype and memory format."""
    net = config.labeler_kind.for_speed(net.eval().float(), options)
    if options.fold_bn:
        net = fold_batchnorm(net)
    inp = config.input
    folded = conversion(options.input_normalization, inp.mean, inp.std)
    if folded is not None:  # the caller's normalisation -> the labeler's, inside conv1
        net = fold_input_normalization(net, *folded, inp.size)
    fmt = torch.channels_last if options.channels_last else torch.preserve_format
    net = net.to(device=device, dtype=options.dtype, memory_format=fmt).requires_grad_(False)
    if options.compile:
        mode = options.compile if isinstance(options.compile, str) else None
        net = torch.compile(net, mode=mode, dynamic=False)
    return net


# ---------------------------------------------------------------------------------------------
# shape-keyed replay cache


class ReplayCache:
    """Runs `eager(x)` until an input signature repeats, then a captured replay of it.

    `capture(x)` returns a callable replaying the computation for inputs like x (a CUDA graph in
    practice, anything in tests). A signature is captured on its second sighting, so one-off shapes
    never pay for a capture; at most `capacity` replays are kept, least recently used evicted. A
    capture that fails turns that signature to eager for good (with one warning). `stamp` names the
    weights the replays were captured with; a different stamp empties the cache.
    """

    def __init__(self, eager: Callable, capture: Callable, capacity: int = 4):
        self.eager, self.capture, self.capacity = eager, capture, capacity
        self.replays: OrderedDict[Any, Callable] = OrderedDict()
        self.seen: set[Any] = set()
        self.failed: set[Any] = set()
        self.stamp: Any = None
        self.stats = {"replays": 0, "captures": 0, "eager": 0, "evictions": 0}

    def __call__(self, key: Any, stamp: Any, x: torch.Tensor, *args: Any) -> torch.Tensor:
        if stamp != self.stamp:
            self.clear()
            self.stamp = stamp
        replay = self.replays.get(key)
        if replay is None and key in self.seen and key not in self.failed:
            replay = self._capture(key, x, *args)
        if replay is None:
            self.seen.add(key)
            self.stats["eager"] += 1
            return self.eager(x, *args)
        self.replays.move_to_end(key)
        self.stats["replays"] += 1
        return replay(x, *args)

    def _capture(self, key: Any, x: torch.Tensor, *args: Any) -> Callable | None:
        try:
            replay = self.capture(x, *args)
        except (RuntimeError, NotImplementedError) as e:
            self.failed.add(key)
            warn_user(f"CUDA graph capture failed for input {key}; running eager for it: {e}", RuntimeWarning)
            return None
        self.stats["captures"] += 1
        self.replays[key] = replay
        while len(self.replays) > self.capacity:
            self.replays.popitem(last=False)
            self.stats["evictions"] += 1
        return replay

    def clear(self) -> None:
        self.replays.clear()
        self.seen.clear()
        self.failed.clear()


def capture_cuda_graph(fn: Callable, example: torch.Tensor, *args: Any,
                       dtype: torch.dtype, channels_last: bool) -> Callable:
    """Capture `fn(static_input, *args)` in a CUDA graph; return `replay(x, *args)`.

    The static input is kept in the network's dtype and memory format, so copying the caller's
    batch into it is also the cast. `args` are tensors baked into the graph (read at replay).
    Each replay returns a fresh copy of the output, so results never alias later calls.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    static_in = torch.empty(example.shape, dtype=dtype, device=example.device, memory_format=fmt)
    static_in.copy_(example)
    side = torch.cuda.Stream(example.device)
    side.wait_stream(torch.cuda.current_stream(example.device))
    with torch.cuda.stream(side), torch.no_grad():
        for _ in range(GRAPH_WARMUP_RUNS):
            fn(static_in, *args)
    torch.cuda.current_stream(example.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        static_out = fn(static_in, *args)

    def replay(x: torch.Tensor, *_: Any) -> torch.Tensor:
        if x.data_ptr() != static_in.data_ptr():
            static_in.copy_(x)
        graph.replay()
        return static_out.clone()

    replay.static_input = static_in
    return replay


# ---------------------------------------------------------------------------------------------
# the runner a Labeler calls


def first_weight(net: nn.Module) -> torch.Tensor:
    """A weight tensor of `net`, for its device and dtype. DataParallel's replicas hold their
    weights as plain attributes, not parameters, so parameters() alone would find none."""
    p = next(net.parameters(), None)
    if p is not None:
        return p
    for m in net.modules():
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor):
            return w
    raise ArtifactError("the labeler's network holds no weights.")


class FastRunner:
    """Turns images into float32 logits or soft labels with an optimised network.

    Device and dtype are read off the network's weights at each call, so `labeler.to(...)` keeps
    working (captured graphs are dropped when the weights move). The temperature lives in a
    device tensor, so soft labels (softmax in float32) are part of the captured graph too: one
    replay per batch.
    """

    def __init__(self, net: nn.Module, options: FastOptions):
        self.net, self.options = net, options
        self.fmt = torch.channels_last if options.channels_last else torch.preserve_format
        self._temp: torch.Tensor | None = None
        self._t = 1.0
        self.cache = None
        if options.cuda_graphs:
            self.cache = ReplayCache(self._compute, self._capture, options.graph_cache_size)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, soft=False)

    def soft_labels(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        return self._run(x, soft=True, temperature=temperature)

    def _run(self, x: torch.Tensor, soft: bool, temperature: float = 1.0) -> torch.Tensor:
        p = first_weight(self.net)
        x = x.to(p.device, non_blocking=p.device.type == "cuda")  # host-bound copies must block
        if soft:
            self._set_temperature(p.device, float(temperature))
        if self.cache is None or x.device.type != "cuda":
            return self._compute(x, soft)
        key = (tuple(x.shape), x.dtype, str(x.device), soft, torch.is_autocast_enabled("cuda"))
        return self.cache(key, (p.device, p.dtype, p.data_ptr()), x, soft)

    def _set_temperature(self, device: torch.device, t: float) -> None:
        """Update the temperature in place, so captured graphs read the new value."""
        if self._temp is None or self._temp.device != device:
            self._temp, self._t = torch.full((), t, device=device), t
        elif t != self._t:
            self._temp.fill_(t)
            self._t = t

    def _compute(self, x: torch.Tensor, soft: bool) -> torch.Tensor:
        dtype = first_weight(self.net).dtype
        with torch.no_grad():
            logits = self.net(x.to(dtype=dtype, memory_format=self.fmt)).float()
            return F.softmax(logits / self._temp, dim=1) if soft else logits

    def _capture(self, x: torch.Tensor, soft: bool) -> Callable:
        return capture_cuda_graph(self._compute, x, soft, dtype=first_weight(self.net).dtype,
                                  channels_last=self.options.channels_last)

    def static_input(self, shape: tuple[int, ...], soft: bool = True) -> torch.Tensor | None:
        """The captured graph's input tensor for batches of `shape`, or None if none is captured.

        Writing a batch into it and passing that tensor skips the copy into the graph.
        """
        for key, replay in (self.cache.replays.items() if self.cache else ()):
            if key[0] == tuple(shape) and key[3] == soft:
                return replay.static_input
        return None


# ---------------------------------------------------------------------------------------------
# hardware fit


def unaligned_widths(arch: dict[str, Any], multiple: int = HARDWARE_MULTIPLE) -> list[str]:
    """Channel counts of an architecture that are not multiples of `multiple`.

    Tensor cores work on channel tiles of 8 (bf16/fp16); odd widths such as 14, 25, 51 fall back
    to slow kernels or pad. Returns 'where=width' strings, empty when every width is aligned.
    """
    return [f"{where}={c}" for where, c in architecture_of(arch).named_widths(arch) if c % multiple]
