"""Fast-path soft labels vs a float64 reference on real images; writes a named result.

    PYTHONPATH=. python3 benchmarks/fast_path_tolerance.py --images .devdata/imagenet1k-sample \
        --device cuda --record fast-path-tolerance

The network is a ResNet-18 of the given stage widths whose BatchNorm statistics are calibrated on
the same real images (a random network with trained-like activation scales); the fast path is
compared with the reference for its default options on the device, and with raw-image input
(normalisation folded into the first convolution).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

from flashdd_zoo.bench.targets import subject_from_widths
from flashdd_zoo.bench.tolerance import agreement, calibrate_batchnorm, reference_logits
from flashdd_zoo.data import load_split, normalize, resolve_dataset
from flashdd_zoo.loaders.local import labeler_from_module
from flashdd_zoo.results import write_result
from flashdd_zoo.runtime.fast import TOLERANCES, resolve_options


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True, help="ImageFolder tree of real images (class folders at the top)")
    ap.add_argument("--stage-widths", default="16,32,48,96")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default=None, help="fast-path dtype (default: the device's fast choice)")
    ap.add_argument("--limit", type=int, default=None, help="use at most this many images")
    ap.add_argument("--record", default=None, help="write benchmarks/results/NAME.json")
    ap.add_argument("--results-dir", default="benchmarks/results")
    args = ap.parse_args(argv)

    dataset = resolve_dataset(f"folder:{args.images}")
    real = load_split(dataset, dataset.val_split()).images[: args.limit]
    x = normalize(real, dataset.spec.mean, dataset.spec.std)
    subject = subject_from_widths([int(w) for w in args.stage_widths.split(",")], None,
                                  len(dataset.class_ids), dataset.resolution)
    net = calibrate_batchnorm(subject.network(), x)
    ref = reference_logits(net, x)
    common = dict(resolution=dataset.resolution, mean=dataset.spec.mean, std=dataset.spec.std, device=args.device)
    fast = labeler_from_module(net, fast=True, dtype=args.dtype, **common)
    raw = labeler_from_module(net, fast=True, dtype=args.dtype, fuse_normalization=True, **common)
    eager = labeler_from_module(net, **common)
    dev = torch.device(args.device)
    metrics = agreement(fast, x.to(dev), ref)
    for prefix, labeler, inputs in (("raw_input_", raw, real.float() / 255), ("fp32_eager_", eager, x)):
        stats = agreement(labeler, inputs.to(dev), ref)
        metrics.update({prefix + k: v for k, v in stats.items() if k not in ("images", "max_abs_logit")})
    bounds = TOLERANCES[resolve_options(dev, fast=True, dtype=args.dtype).dtype]
    metrics["tolerance_prob_t1"] = bounds["prob_t1"]
    metrics["within_tolerance"] = float(max(metrics["max_abs_diff_prob"], metrics["raw_input_max_abs_diff_prob"])
                                        <= bounds["prob_t1"])
    metrics["labeler_params"] = subject.params
    for k, v in sorted(metrics.items()):
        print(f"{k:40s} {v:.6g}")
    print(f"fast path: {fast.options}")
    if args.record:
        command = "python3 " + shlex.join([str(Path(sys.argv[0])), *(argv if argv is not None else sys.argv[1:])])
        print(write_result(args.results_dir, args.record, metrics, command=command))


if __name__ == "__main__":
    main()
