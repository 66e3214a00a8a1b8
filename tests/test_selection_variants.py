"""benchmarks/selection_variants.py on a hand-made curve report whose every choice is worked out by hand.

Chain (largest first; top-1 on the held-out slice): A 100 params 80.0, B 50 params 79.0, C 10 params
78.0; the teacher 80.0 there, tau 50.0. Phase 1 (within 1 point of the teacher) holds A and B, so the
candidates are B (the last phase-1 member) and C; with two candidates zeta is the smaller Dis, so both
pass. Early-window losses: B 1.0 -> 0.5 (relative Dis 0.5, absolute 0.5), C 2.0 -> 1.4 (relative 0.3,
absolute 0.6). Scores Dis + 0.05 * Acc: B wins on relative Dis, C on absolute or negated Dis, and C is
the smallest passing member.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "selection_variants.py"


@pytest.fixture(scope="module")
def variants():
    spec = importlib.util.spec_from_file_location("selection_variants", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _evaluation(test: float, holdout: float) -> dict:
    return {"top1_mean": test, "holdout": {"top1_mean": holdout}}


REPORT = {
    "config": {"selection": {"window": 2, "gamma": 0.05, "hold_tolerance": 1.0}},
    "teacher": {"params": 200, "choice_top1": 80.0},
    "tau": _evaluation(30.0, 50.0),  # tau(D_S): 30 on the test split, 50 on the held-out slice
    "chain": [{"step": 1, "params": 100, "top1": 80.0}, {"step": 2, "params": 50, "top1": 79.0},
              {"step": 3, "params": 10, "top1": 78.0}],
    "dis": {"0": {"curves": [[3.0, 1.0], [3.0, 1.0]]}, "1": {"curves": [[1.0, 0.5], [1.0, 0.5]]},
            "2": {"curves": [[2.0, 1.4], [2.0, 1.4]]}},
    "verified": {"0": _evaluation(33.0, 34.0), "1": _evaluation(35.0, 33.0), "2": _evaluation(34.0, 36.0)},
    "curve": {},
}


@pytest.mark.parametrize("name, chosen", [
    ("default (relative Dis)", 1), ("absolute Dis", 2), ("negated Dis", 2), ("gamma 0", 1),
    ("smallest with Dis >= zeta", 2)])
def test_each_variant_picks_the_member_worked_out_by_hand(variants, name, chosen):
    variant = next(v for v in variants.VARIANTS if v.name == name)
    assert variants.choose(REPORT, variant) == chosen


def test_rows_report_the_choice_on_the_test_split_and_its_regret(variants):
    row = variants.row(REPORT, "x", 2)
    assert row == {"variant": "x", "step": 3, "param_ratio": 10 / 200, "test_top1_mean": 34.0,
                   "holdout_top1_mean": 36.0, "regret": 35.0 - 34.0}
    assert variants.row(REPORT, "t", None)["param_ratio"] == 1.0


def test_holdout_students_pick_by_the_slice_never_the_test_split(variants):
    # by hand: held-out student means are teacher 50.0, A 34.0, B 33.0, C 36.0 -> the teacher (None)
    assert variants.holdout_students_choice(REPORT) is None


def test_the_script_refuses_a_build_without_a_curve(variants, tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({k: v for k, v in REPORT.items() if k != "curve"}))
    monkeypatch.setattr("sys.argv", ["selection_variants.py", str(path)])
    with pytest.raises(SystemExit, match="needs a --curve build"):
        variants.main()
