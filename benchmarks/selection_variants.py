"""What Algorithm 1 would pick under other readings of Dis and of the score, on a finished curve build.

    python benchmarks/selection_variants.py benchmarks/work/cifar10-cpu-ipc1/build-report.json \
        [--record selection-variants-cifar10-ipc1-cpu]

Issue 10 asks, where the capacity effect does not show, what was tried (Dis sign and
normalisation, window, the weight of Acc). Every variant here is recomputed from the build's own
records, with no training: Dis from the stored early-window loss curves of each member's students,
phases from the chain's top-1 on the held-out slice. The variants choose on the held-out slice only;
the test-split columns are what the choice would then report. `holdout-students` is not Algorithm 1:
it picks the member whose full students score best on the held-out slice (a selection that costs a
full evaluation of every member, the upper bound of choosing without the test split).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flashdd_zoo.zoo.capacity import SelectionConfig, select_over_chain  # noqa: E402


def relative(curve: list[float], window: int) -> float:
    return (curve[0] - curve[window - 1]) / curve[0]


def absolute(curve: list[float], window: int) -> float:
    return curve[0] - curve[window - 1]


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    dis: object = relative  # (loss curve, window) -> Dis
    sign: float = 1.0
    window: int | None = None  # None: the build's window
    gamma: float | None = None  # None: the build's gamma
    smallest: bool = False  # the smallest member passing Dis >= zeta instead of argmax Dis + gamma * Acc


VARIANTS = (
    Variant("default (relative Dis)"),
    Variant("absolute Dis", dis=absolute),
    Variant("negated Dis", sign=-1.0),
    Variant("window 10", window=10),
    Variant("window 5", window=5),
    Variant("gamma 0", gamma=0.0),
    Variant("gamma 1", gamma=1.0),
    Variant("smallest with Dis >= zeta", smallest=True),
)


def choose(report: dict, variant: Variant) -> int | None:
    """The chain index the variant selects (None: the full teacher)."""
    sel_cfg = report["config"]["selection"]
    window = variant.window or sel_cfg["window"]
    cfg = SelectionConfig(window=window, gamma=sel_cfg["gamma"] if variant.gamma is None else variant.gamma,
                          hold_tolerance=sel_cfg["hold_tolerance"])
    chain = report["chain"]
    dis = {int(i): variant.sign * sum(variant.dis(c, min(window, len(c))) for c in rec["curves"]) / len(rec["curves"])
           for i, rec in report["dis"].items()}
    # the build's own wiring, with this variant's Dis of the members the build measured
    sel, _ = select_over_chain(chain, lambda m: {"dis_mean": dis[chain.index(m)]},
                               full_top1=report["teacher"]["choice_top1"], tau=choice_tau(report), cfg=cfg)
    if variant.smallest and sel.scores:
        return min(sel.scores, key=lambda i: chain[i]["params"])
    return sel.chosen


def choice_tau(report: dict) -> float:
    tau = report["tau"]
    return tau["holdout"]["top1_mean"] if "holdout" in tau else tau["top1_mean"]


def holdout_students_choice(report: dict) -> int | None:
    """The member (or the teacher, None) whose students score best on the held-out slice."""
    scores = {None: report["tau"]["holdout"]["top1_mean"]}
    scores.update({int(i): v["holdout"]["top1_mean"] for i, v in report["verified"].items()})
    return max(scores, key=scores.get)


def row(report: dict, name: str, index: int | None) -> dict:
    teacher_params = report["teacher"]["params"]
    evaluation = report["tau"] if index is None else report["verified"][str(index)]
    params = teacher_params if index is None else report["chain"][index]["params"]
    best = max([report["tau"]["top1_mean"]] + [v["top1_mean"] for v in report["verified"].values()])
    return {"variant": name, "step": 0 if index is None else report["chain"][index]["step"],
            "param_ratio": params / teacher_params, "test_top1_mean": evaluation["top1_mean"],
            "holdout_top1_mean": evaluation["holdout"]["top1_mean"], "regret": best - evaluation["top1_mean"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="build-report.json of a build run with --curve")
    parser.add_argument("--record", metavar="NAME", help="write benchmarks/results/NAME.json")
    args = parser.parse_args()
    report = json.loads(args.report.read_text())
    if "curve" not in report or "holdout" not in report["tau"]:
        sys.exit(f"{args.report}: needs a --curve build with a held-out slice (--holdout-per-class), as the cpu preset runs")
    rows = [row(report, v.name, choose(report, v)) for v in VARIANTS]
    rows.append(row(report, "holdout-students (not Alg. 1)", holdout_students_choice(report)))
    print(f"{report['dataset']} IPC {report['ipc']}: tau(D_S) {report['tau']['top1_mean']:.2f} on test\n")
    print("| variant | step | % of params | students, test | students, held-out | regret |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['step']} | {100 * r['param_ratio']:.2f}% | {r['test_top1_mean']:.2f} | "
              f"{r['holdout_top1_mean']:.2f} | {r['regret']:.2f} |")
    if args.record:
        from flashdd_zoo.results import write_result

        metrics = {}
        for r in rows:
            slug = "".join(ch if ch.isalnum() else "_" for ch in r["variant"].split(" (")[0]).strip("_").lower()
            metrics.update({f"{slug}_param_ratio": r["param_ratio"], f"{slug}_top1_mean": r["test_top1_mean"],
                            f"{slug}_regret": r["regret"]})
        print(write_result(Path(__file__).parent / "results", args.record, metrics,
                           command=" ".join(["python", *sys.argv])))


if __name__ == "__main__":
    main()
