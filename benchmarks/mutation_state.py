"""Which saved mutation verdicts still stand after the tests changed (used by run_mutation.sh).

mutmut drops a verdict when the mutated function changes, never when a test does. The saved state
therefore records the sha256 of every file under tests/ and of pyproject.toml, and a resumed run
keeps a verdict only where that is sound:

- a change to pyproject.toml or to anything under tests/ other than a test_*.py file (conftest,
  fixtures, helpers) can change every test: nothing is kept;
- otherwise the tests of the changed test files are dropped from mutmut's stats (it collects
  stats for them again, as new tests), every verdict on a function those tests covered is reset,
  and so is every verdict other than "killed" (a strengthened test may now reach or kill it);
- with nothing changed every verdict stands.

    python benchmarks/mutation_state.py hashes > tests-files.json   # in the checkout
    python benchmarks/mutation_state.py carry MUTANTS_DIR OLD.json NEW.json
        # resets the stale verdicts in MUTANTS_DIR in place; exit 3 when nothing can be kept
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

KEEPS_VERDICT = {1, 3, 37}  # mutmut's exit codes for killed (1, 3) and caught by type check (37)
NOTHING_KEPT = 3


def file_hashes() -> dict[str, str]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "tests", "pyproject.toml"],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    return {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in sorted(listed) if Path(p).is_file()}


def changed_files(old: dict[str, str], new: dict[str, str]) -> set[str]:
    return {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}


def is_test_module(path: str) -> bool:
    return path.startswith("tests/") and Path(path).name.startswith("test_") and path.endswith(".py")


def drop_tests(stats: dict, changed: set[str]) -> set[str]:
    """Remove the changed files' tests from mutmut's stats; return the functions they covered."""
    def stale(test: str) -> bool:
        return test.split("::", 1)[0] in changed

    covered = {fn for fn, tests in stats["tests_by_mangled_function_name"].items() if any(map(stale, tests))}
    stats["tests_by_mangled_function_name"] = {
        fn: [t for t in tests if not stale(t)] for fn, tests in stats["tests_by_mangled_function_name"].items()
    }
    stats["duration_by_test"] = {t: s for t, s in stats["duration_by_test"].items() if not stale(t)}
    return covered


def reset_verdicts(meta_path: Path, covered: set[str], tests_changed: bool) -> tuple[int, int]:
    meta = json.loads(meta_path.read_text())
    kept = reset = 0
    for key, code in meta["exit_code_by_key"].items():
        if code is None:
            continue
        if (code in KEEPS_VERDICT or not tests_changed) and key.rsplit("__mutmut_", 1)[0] not in covered:
            kept += 1
        else:
            meta["exit_code_by_key"][key] = None
            reset += 1
    meta_path.write_text(json.dumps(meta, indent=4))
    return kept, reset


def carry(mutants: Path, old: dict[str, str], new: dict[str, str]) -> int:
    changed = changed_files(old, new)
    global_changes = sorted(p for p in changed if not is_test_module(p))
    if global_changes:
        print(f"changed since the saved verdicts, affecting every test: {', '.join(global_changes)}")
        return NOTHING_KEPT
    stats_path = mutants / "mutmut-stats.json"
    stats = json.loads(stats_path.read_text())
    covered = drop_tests(stats, changed)
    stats_path.write_text(json.dumps(stats, indent=4))
    kept = reset = 0
    for meta_path in sorted(mutants.rglob("*.meta")):
        k, r = reset_verdicts(meta_path, covered, bool(changed))
        kept, reset = kept + k, reset + r
    detail = f" (test files changed: {', '.join(sorted(changed))})" if changed else ""
    print(f"resuming: kept {kept} verdicts, reset {reset} to run again{detail}")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["hashes"]:
        print(json.dumps(file_hashes(), indent=1))
        return 0
    if argv[:1] == ["carry"] and len(argv) == 4:
        mutants, old, new = Path(argv[1]), *(json.loads(Path(p).read_text()) for p in argv[2:])
        return carry(mutants, old, new)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
