"""benchmarks/mutation_state.py: which saved mutation verdicts survive an edit of the tests."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
spec = importlib.util.spec_from_file_location("mutation_state", BENCHMARKS / "mutation_state.py")
state = importlib.util.module_from_spec(spec)
spec.loader.exec_module(state)

BEFORE = '''
import json

LIMIT = 3

def helper():
    return LIMIT

def test_kept():
    assert helper() == 3

@pytest.mark.parametrize("n", [1, 2])
def test_edited(n):
    assert n > 0

def test_removed():
    assert True
'''


def _hashes(source: str, path: str = "tests/test_x.py") -> dict[str, str]:
    return {path: state._sha(source), **{f"{path}::{k}": v for k, v in state.test_hashes(source).items()}}


def _stats() -> dict:
    by_function = {"m.x_kept_only": ["tests/test_x.py::test_kept"],
                   "m.x_edited": ["tests/test_x.py::test_edited[1]", "tests/test_x.py::test_edited[2]"],
                   "m.x_removed": ["tests/test_x.py::test_removed", "tests/test_y.py::test_other"]}
    tests = {t for ts in by_function.values() for t in ts}
    return {"tests_by_mangled_function_name": by_function, "duration_by_test": {t: 1.0 for t in tests}}


def _mutants(tmp_path: Path) -> Path:
    mutants = tmp_path / "mutants"
    (mutants / "m").mkdir(parents=True)
    (mutants / "mutmut-stats.json").write_text(json.dumps(_stats()))
    verdicts = {"m.x_kept_only__mutmut_1": 1, "m.x_kept_only__mutmut_2": 0, "m.x_edited__mutmut_1": 1,
                "m.x_removed__mutmut_1": 1, "m.x_untested__mutmut_1": 1, "m.x_untested__mutmut_2": None}
    (mutants / "m" / "x.py.meta").write_text(json.dumps({"exit_code_by_key": verdicts}))
    return mutants


def _verdicts(mutants: Path) -> dict:
    return json.loads((mutants / "m" / "x.py.meta").read_text())["exit_code_by_key"]


def test_an_edit_to_one_test_resets_only_what_that_test_covered(tmp_path):
    after = BEFORE.replace("assert n > 0", "assert n > 1 - 1").replace(
        "def test_removed():\n    assert True\n", "def test_added():\n    assert helper()\n")
    after = after.replace("def test_kept():", "# a comment moves nothing\ndef test_kept():")
    after = after.replace("import json", "import json\nimport os")  # an import is not a helper
    old, new = _hashes(BEFORE), _hashes(after)
    assert state.stale_tests(old, new) == (
        [], set(), {"tests/test_x.py::test_edited", "tests/test_x.py::test_removed"})

    mutants = _mutants(tmp_path)
    assert state.carry(mutants, old, new) == 0
    assert _verdicts(mutants) == {
        "m.x_kept_only__mutmut_1": 1,  # killed, and its only test is unchanged
        "m.x_kept_only__mutmut_2": None,  # survived: a new test may kill it
        "m.x_edited__mutmut_1": None, "m.x_removed__mutmut_1": None,  # their tests changed or went
        "m.x_untested__mutmut_1": 1, "m.x_untested__mutmut_2": None}
    stats = json.loads((mutants / "mutmut-stats.json").read_text())
    assert stats["tests_by_mangled_function_name"] == {
        "m.x_kept_only": ["tests/test_x.py::test_kept"], "m.x_edited": [], "m.x_removed": ["tests/test_y.py::test_other"]}
    assert set(stats["duration_by_test"]) == {"tests/test_x.py::test_kept", "tests/test_y.py::test_other"}


def test_a_changed_helper_counts_as_every_test_of_its_file_changed(tmp_path):
    old, new = _hashes(BEFORE), _hashes(BEFORE.replace("LIMIT = 3", "LIMIT = 4"))
    assert state.stale_tests(old, new) == ([], {"tests/test_x.py"}, set())
    mutants = _mutants(tmp_path)
    state.carry(mutants, old, new)
    assert _verdicts(mutants)["m.x_kept_only__mutmut_1"] is None
    assert _verdicts(mutants)["m.x_untested__mutmut_1"] == 1


def test_a_saved_state_without_per_test_records_treats_the_file_as_changed():
    old = {"tests/test_x.py": state._sha(BEFORE)}  # what earlier runs saved
    assert state.stale_tests(old, _hashes(BEFORE + "\n\ndef test_new():\n    pass\n")) == ([], {"tests/test_x.py"}, set())


def test_conftest_or_pyproject_changes_keep_nothing(tmp_path):
    old = {**_hashes(BEFORE), "tests/conftest.py": "a", "pyproject.toml": "b"}
    assert state.stale_tests(old, {**old, "tests/conftest.py": "c"})[0] == ["tests/conftest.py"]
    assert state.carry(_mutants(tmp_path), old, {**old, "pyproject.toml": "d"}) == state.NOTHING_KEPT


def test_nothing_changed_keeps_every_verdict(tmp_path):
    mutants = _mutants(tmp_path)
    before = _verdicts(mutants)
    assert state.carry(mutants, _hashes(BEFORE), _hashes(BEFORE)) == 0
    assert _verdicts(mutants) == before


SETTINGS = """
[tool.mutmut]
only_mutate = ["m.py"]  # a comment moves nothing
pytest_add_cli_args_test_selection = [%s]
"""


def _with_selection(*files: str) -> dict[str, str]:
    return {**_hashes(BEFORE), **state.pyproject_hashes(SETTINGS % ", ".join(f'"{f}"' for f in files))}


@pytest.mark.parametrize("before, after", [
    (("tests/test_x.py",), ("tests/test_x.py", "tests/test_z.py")),  # a file added
    (("tests/test_x.py", "tests/test_y.py"), ("tests/test_x.py",)),  # a file dropped
    (("tests/test_x.py", "tests/test_y.py::test_other"), ("tests/test_x.py",)),  # a single selected test dropped
])
def test_a_changed_test_selection_keeps_nothing_as_mutmut_itself_resets_every_verdict(tmp_path, before, after):
    old, new = _with_selection(*before), _with_selection(*after)
    assert state.stale_tests(old, new)[0] == [state.SELECTION]
    assert state.carry(_mutants(tmp_path), old, new) == state.NOTHING_KEPT
    assert state.stale_tests(old, _with_selection(*reversed(before)))[0] == []  # the order of the list is no change


def test_any_other_pyproject_setting_changed_keeps_nothing(tmp_path):
    old = _with_selection("tests/test_x.py")
    new = {**old, **state.pyproject_hashes((SETTINGS % '"tests/test_x.py"').replace('"m.py"', '"m.py", "n.py"'))}
    assert state.stale_tests(old, new)[0] == ["pyproject.toml"]
    assert state.carry(_mutants(tmp_path), old, new) == state.NOTHING_KEPT
    same = state.pyproject_hashes((SETTINGS % '"tests/test_x.py"').replace("a comment moves nothing", "another"))
    assert {**old, **same} == old
