"""Which saved mutation verdicts still stand after the tests changed (used by run_mutation.sh).

mutmut drops a verdict when the mutated function changes, never when a test does. The saved state
therefore records the sha256 of every file under tests/ and of pyproject.toml, and of each test
function of a test_*.py file (its syntax tree, decorators included, so comments and layout do not
count) beside the rest of that file (helpers, fixtures, constants; imports left out). A resumed run
keeps a verdict only where that is sound:

- a change to pyproject.toml or to anything under tests/ other than a test_*.py file (conftest,
  fixtures, helpers) can change every test: nothing is kept. So does a change to the test files
  [tool.mutmut] selects (recorded apart from pyproject's other settings, to name it): mutmut 3.8
  itself resets every verdict when its test selection changes, whatever is carried here;
- a changed test_*.py file whose helpers changed (or that has no per-test record) counts as every
  one of its tests changed; otherwise only its edited and removed tests count (an added test cannot
  undo a kill by another);
- the changed tests are dropped from mutmut's stats (it collects stats for them again, as new
  tests), every verdict on a function they covered is reset, and so is every verdict other than
  "killed" (a strengthened or added test may now reach or kill it);
- with nothing changed every verdict stands.

    python benchmarks/mutation_state.py hashes > tests-files.json   # in the checkout
    python benchmarks/mutation_state.py carry MUTANTS_DIR OLD.json NEW.json
        # resets the stale verdicts in MUTANTS_DIR in place; exit 3 when nothing can be kept
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

KEEPS_VERDICT = {1, 3, 37}  # mutmut's exit codes for killed (1, 3) and caught by type check (37)
NOTHING_KEPT = 3
REST = "<module>"  # the per-test record of everything in a test file but its tests and imports
PYPROJECT = "pyproject.toml"
SELECTION = "pyproject.toml::test-selection"  # the test files [tool.mutmut] runs, apart from the rest


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_hashes() -> dict[str, str]:
    """{path: sha256} for tests/, {"path::test": sha256} for each test function, and pyproject.toml's records."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "tests"], check=True, capture_output=True, text=True,
    ).stdout.split()
    hashes = {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in sorted(listed) if Path(p).is_file()}
    for path in [p for p in hashes if is_test_module(p)]:
        hashes.update({f"{path}::{name}": h for name, h in test_hashes(Path(path).read_text()).items()})
    return {**hashes, **pyproject_hashes(Path(PYPROJECT).read_text())}


def pyproject_hashes(text: str) -> dict[str, str]:
    """pyproject.toml's settings less [tool.mutmut]'s test selection (sha256), and that selection (a JSON list)."""
    doc = tomllib.loads(text)
    selection = doc.get("tool", {}).get("mutmut", {}).pop("pytest_add_cli_args_test_selection", [])
    return {PYPROJECT: _sha(json.dumps(doc, sort_keys=True)), SELECTION: json.dumps(sorted(selection))}


def test_hashes(source: str) -> dict[str, str]:
    """Each top-level test function's syntax tree, and REST: the file's other statements but imports."""
    tests, rest = {}, []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            tests[node.name] = _sha(ast.dump(node))
        elif not isinstance(node, (ast.Import, ast.ImportFrom)):
            rest.append(ast.dump(node))
    return {**tests, REST: _sha("\n".join(rest))}


def is_test_module(path: str) -> bool:
    return path.startswith("tests/") and Path(path).name.startswith("test_") and path.endswith(".py")


def stale_tests(old: dict[str, str], new: dict[str, str]) -> tuple[list[str], set[str], set[str]]:
    """(files whose change affects every test, test files with every test stale, "file::test" ids stale)."""
    changed = {p for p in old.keys() | new.keys() if "::" not in p and old.get(p) != new.get(p)}
    global_changes = sorted([p for p in changed if not is_test_module(p)] + [SELECTION] * (old.get(SELECTION) != new.get(SELECTION)))
    whole, single = set(), set()
    for path in sorted(p for p in changed if is_test_module(p)):
        rest = f"{path}::{REST}"
        if rest not in old or rest not in new or old[rest] != new[rest]:
            whole.add(path)
            continue
        single |= {k for k, h in old.items() if k.startswith(f"{path}::") and new.get(k) != h}
    return global_changes, whole, single


def drop_tests(stats: dict, whole: set[str], single: set[str]) -> set[str]:
    """Remove the stale tests from mutmut's stats; return the functions they covered."""
    def stale(test: str) -> bool:  # mutmut's ids: tests/test_x.py::test_name[param]
        return test.split("::", 1)[0] in whole or test.split("[", 1)[0] in single

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
    global_changes, whole, single = stale_tests(old, new)
    if global_changes:
        print(f"changed since the saved verdicts, affecting every test: {', '.join(global_changes)}")
        return NOTHING_KEPT
    stats_path = mutants / "mutmut-stats.json"
    stats = json.loads(stats_path.read_text())
    covered = drop_tests(stats, whole, single)
    stats_path.write_text(json.dumps(stats, indent=4))
    tests_changed = old != new
    kept = reset = 0
    for meta_path in sorted(mutants.rglob("*.meta")):
        k, r = reset_verdicts(meta_path, covered, tests_changed)
        kept, reset = kept + k, reset + r
    changed = sorted(whole) + [f"{k} ({'edited' if k in new else 'removed'})" for k in sorted(single)]
    detail = f" (tests changed: {', '.join(changed)})" if changed else (" (tests added)" if tests_changed else "")
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
