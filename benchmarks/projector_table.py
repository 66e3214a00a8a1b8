"""The table of run_cpu_projector.sh: full teacher, pruned labeler and projector on one D_S, same seeds.

    python benchmarks/projector_table.py benchmarks/work/projector-cifar10-ipc10 --teacher T --pruned P \
        [--record projector-cifar10-ipc10-cpu]

Reads the evaluate reports, one per row and seed (eval-teacher-seed0.json, ..., eval-updated-seedN.json:
"updated" is the projector on the Eq. 7-updated D_S), and the stored bytes of each labeler (the
projector stores its adapter and head only; the others their weights file). Only the seeds every
row has are used, so a table of an unfinished run still compares like with like.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROWS = (("teacher", "full teacher (tau)"), ("pruned", "capacity-matched pruned"), ("projector", "projector"),
        ("updated", "projector, D_S after Eq. 7"))


def stored_bytes(folder: Path) -> int:
    """What a user downloads to label: the projector's metrics name its stored files; else the weights file."""
    metrics = folder / "metrics.json"
    if metrics.is_file():
        doc = json.loads(metrics.read_text())
        if "stored_bytes" in doc:
            return int(doc["stored_bytes"])
    return (folder / "model.safetensors").stat().st_size


def seed_runs(out: Path) -> dict[str, dict]:
    """Per row: the student runs of the seeds that every row has finished, with their mean and spread."""
    from flashdd_zoo.zoo.evaluate import EvalProtocol, EvalResult, StudentRun

    reports = {who: [json.loads(p.read_text()) for p in sorted(out.glob(f"eval-{who}-seed*.json"))] for who, _ in ROWS}
    runs = {who: {r["seed"]: r for doc in docs for r in doc["runs"]} for who, docs in reports.items()}
    seeds = sorted(set.intersection(*(set(r) for r in runs.values())))
    if not seeds:
        sys.exit(f"{out}: no seed has a report for every row ({', '.join(w for w, _ in ROWS)}); run the table stage.")
    results = {who: EvalResult([StudentRun(**runs[who][s]) for s in seeds], EvalProtocol(**reports[who][0]["protocol"]))
               for who in runs}
    return {who: {"runs": [asdict(r) for r in e.runs], "top1_mean": e.top1_mean, "top1_std": e.top1_std}
            for who, e in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--pruned", type=Path, required=True)
    parser.add_argument("--record", metavar="NAME")
    args = parser.parse_args()
    evals = seed_runs(args.out)
    folders = {"teacher": args.teacher, "pruned": args.pruned, "projector": args.out / "projector",
               "updated": args.out / "projector"}
    label = {who: statistics.fmean(r["label_seconds"] for r in e["runs"]) for who, e in evals.items()}
    print("| labeler | stored bytes | label s / student | student top-1 (test) |\n|---|---|---|---|")
    for who, title in ROWS:
        e = evals[who]
        print(f"| {title} | {stored_bytes(folders[who]):,} | {label[who]:.1f} | {e['top1_mean']:.2f} ± {e['top1_std']:.2f} |")
    if args.record:
        from flashdd_zoo.results import write_result

        p, t = evals["projector"], evals["teacher"]
        metrics = {"stored_bytes": stored_bytes(folders["projector"]), "teacher_bytes": stored_bytes(args.teacher),
                   "student_top1_mean": p["top1_mean"], "student_top1_std": p["top1_std"],
                   "tau_mean": t["top1_mean"], "tau_std": t["top1_std"], "label_seconds": label["projector"],
                   "label_seconds_teacher": label["teacher"],
                   "pruned_top1_mean": evals["pruned"]["top1_mean"], "pruned_bytes": stored_bytes(args.pruned),
                   "student_top1_after_update_mean": evals["updated"]["top1_mean"],
                   "student_top1_after_update_std": evals["updated"]["top1_std"], "seeds": len(p["runs"])}
        print(write_result(Path(__file__).parent / "results", args.record, metrics,
                           command=" ".join(["python", *sys.argv])))


if __name__ == "__main__":
    main()
