"""Score a finished mutmut 3 run: killed / total per mutated module and overall (issue 19).

    python benchmarks/mutation_score.py MUTMUT_DIR [--name mutation-score] [--out benchmarks/results]

MUTMUT_DIR is where `mutmut run` ran (it holds pyproject.toml and mutants/). Statuses come from
`mutmut results --all true` run there. Mutants listed in mutation-equivalents.toml (beside
pyproject.toml, read from this checkout) are left out of every total; an entry naming a mutant
that no longer exists, or one that was killed, is reported so the list cannot go stale silently.

Counted as killed: "killed" and "timeout" (a mutant that makes a test hang is caught by the
per-test time limit). Everything else that is not equivalent counts against the score:
"survived", "no tests" (no selected test reaches the mutated function), "suspicious",
"segfault", "not checked", "skipped".
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flashdd_zoo.results import write_result  # noqa: E402

EQUIVALENTS = ROOT / "mutation-equivalents.toml"
KILLED = {"killed", "timeout"}
LINE = re.compile(r"^\s+(?P<name>\S+__mutmut_\d+): (?P<status>.+?)\s*$")


def module_of(mutant: str) -> str:
    """'flashdd_zoo.zoo.capacity.x_select_capacity__mutmut_3' -> 'flashdd_zoo.zoo.capacity'
    (methods are named 'module.xǁClassǁmethod__mutmut_N')."""
    head = mutant.split("__mutmut_")[0]
    parts = head.split(".")
    for i, part in enumerate(parts):
        if part.startswith(("x_", "xǁ")):
            return ".".join(parts[:i])
    return ".".join(parts[:-1])


def read_equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """mutant name -> reason. Every entry needs both, and a reason of one line."""
    doc = tomllib.loads(path.read_text()) if path.is_file() else {}
    out = {}
    for entry in doc.get("equivalent", []):
        name, reason = entry.get("mutant"), entry.get("reason", "")
        if not name or not reason.strip() or "\n" in reason:
            raise SystemExit(f"{path}: every [[equivalent]] needs a mutant and a one-line reason, got {entry}")
        out[name] = reason
    return out


def read_statuses(mutmut_dir: Path, mutmut: str) -> dict[str, str]:
    text = subprocess.run([mutmut, "results", "--all", "true"], cwd=mutmut_dir, capture_output=True, text=True,
                          check=True).stdout
    return {m["name"]: m["status"] for line in text.splitlines() if (m := LINE.match(line))}


def score(statuses: dict[str, str], equivalents: dict[str, str]) -> tuple[dict[str, float], dict[str, list[str]], list[str]]:
    """(flat metrics, surviving mutants by module, problems with the equivalents list)."""
    by_module: dict[str, Counter] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    problems = [f"{name}: listed as equivalent but not among this run's mutants"
                for name in sorted(set(equivalents) - set(statuses))]
    for name, status in sorted(statuses.items()):
        module = module_of(name)
        if name in equivalents:
            by_module[module]["equivalent"] += 1
            if status in KILLED:
                problems.append(f"{name}: listed as equivalent but a test kills it ({status}); drop the entry")
            continue
        by_module[module]["total"] += 1
        if status in KILLED:
            by_module[module]["killed"] += 1
        else:
            by_module[module]["survived" if status == "survived" else "no_tests" if status == "no tests" else "other"] += 1
            survivors[module].append(f"{name} ({status})")
    metrics: dict[str, float] = {}
    overall = Counter()
    for module, counts in sorted(by_module.items()):
        short = module.removeprefix("flashdd_zoo.")
        for key in ("killed", "total", "survived", "no_tests", "other", "equivalent"):
            metrics[f"{short}.{key}"] = counts[key]
        metrics[f"{short}.score"] = counts["killed"] / counts["total"] if counts["total"] else 1.0
        overall.update(counts)
    for key in ("killed", "total", "survived", "no_tests", "other", "equivalent"):
        metrics[key] = overall[key]
    metrics["score"] = overall["killed"] / overall["total"] if overall["total"] else 1.0
    metrics["modules"] = len(by_module)
    return metrics, survivors, problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mutmut_dir", type=Path)
    ap.add_argument("--name", default="mutation-score")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--mutmut", default=str(Path(sys.executable).with_name("mutmut")))
    ap.add_argument("--command", default=None, help="The command to record (default: this one).")
    args = ap.parse_args()
    statuses = read_statuses(args.mutmut_dir, args.mutmut)
    if not statuses:
        raise SystemExit(f"`mutmut results` in {args.mutmut_dir} listed no mutants: did the run finish?")
    metrics, survivors, problems = score(statuses, read_equivalents())
    path = write_result(args.out, args.name, metrics, command=args.command)
    for module, names in sorted(survivors.items()):
        print(f"{module}: {len(names)} not killed")
        for name in names:
            print(f"    {name}")
    for problem in problems:
        print(f"equivalents: {problem}")
    print(f"killed {metrics['killed']} of {metrics['total']} non-equivalent mutants ({100 * metrics['score']:.1f}%); "
          f"{metrics['equivalent']} listed as equivalent; recorded {path}")


if __name__ == "__main__":
    main()
