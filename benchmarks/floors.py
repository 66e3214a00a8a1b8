"""Memory-traffic floors of the benchmark labelers (no GPU needed): bytes each pass must move.

    PYTHONPATH=. python benchmarks/floors.py [--bandwidth-tb-s 3.0] [--teacher-img-s 17100]

Counts bf16 bytes read and written by every convolution, pooling and linear layer of the
BatchNorm-folded network, by each ReLU and each residual add (2 reads, 1 write), and the copy of
a float32 input into a bf16 buffer. "fused" drops the ReLU passes (folded into the add or conv
epilogue) and the input copy (bf16 batch written straight into the graph's input buffer).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from flashdd_zoo.bench.targets import subject_from_widths
from flashdd_zoo.models.resnet import BasicBlock
from flashdd_zoo.runtime.fast import fold_batchnorm

BF16 = 2


def traffic(net: nn.Module, batch: int, res: int) -> dict[str, int]:
    counts = {"layers": 0, "relu": 0, "add": 0, "input_copy": batch * 3 * res * res * (4 + BF16)}

    def leaf(m, inputs, out):
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Linear)):
            counts["layers"] += (inputs[0].numel() + out.numel()) * BF16
        elif isinstance(m, nn.ReLU):
            counts["relu"] += 2 * out.numel() * BF16

    def block(m, inputs, out):
        counts["add"] += 3 * out.numel() * BF16

    folded = fold_batchnorm(net)
    handles = [m.register_forward_hook(leaf) for m in folded.modules() if not list(m.children())]
    handles += [m.register_forward_hook(block) for m in net.modules() if isinstance(m, BasicBlock)]
    x = torch.randn(batch, 3, res, res)
    with torch.no_grad():
        folded(x)
        net(x)  # only its block hooks count
    for h in handles:
        h.remove()
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bandwidth-tb-s", type=float, default=3.0, help="measured device copy bandwidth")
    ap.add_argument("--teacher-img-s", type=float, default=17_100.0, help="full ResNet-18 fp32 eager")
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    print("| labeler | params | eager bytes | floor | img/s | vs teacher | fused bytes | floor | img/s | vs teacher |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for widths in ([8, 8, 8, 16], [16, 32, 48, 96]):
        subject = subject_from_widths(widths, None, 1000, 224)
        c = traffic(subject.network().eval(), args.batch, 224)
        row = [",".join(map(str, widths)), f"{subject.params:,}"]
        for total in (sum(c.values()), c["layers"] + c["add"]):
            seconds = total / (args.bandwidth_tb_s * 1e12)
            img_s = args.batch / seconds
            row += [f"{total / 1e6:.0f} MB", f"{seconds * 1e6:.0f} us", f"{img_s / 1e6:.2f}M",
                    f"{img_s / args.teacher_img_s:.0f}x"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
