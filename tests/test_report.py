"""The build report (zoo/report.py): what build-report.md says, and what write_report writes.

The report below is written by hand in the shape build() gives it; every expected cell is worked
out from its numbers here (percentages, marks, phases), not by calling the renderer's helpers.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from flashdd_zoo.zoo.report import capacity_curve, render_markdown, write_report


def _evaluation(mean: float, std: float) -> dict:
    return {"top1_mean": mean, "top1_std": std, "top1s": [mean - std, mean + std], "label_seconds": [2.0, 4.0]}


def _report(curve: bool) -> dict:
    report = {
        "dataset": "cifar10", "ipc": 10, "preset": "cpu",
        "splits": {"reported": "test", "selection": "the held-out slice of the training split"},
        "teacher": {"params": 1_000_000, "weights_bytes": 4_000_123, "top1": 90.5, "source": "runs/teacher"},
        "distilled": {"method": "rded", "path": "work/distilled", "sha256": "abcdef0123456789" + "0" * 48},
        "tau": _evaluation(40.0, 1.5),
        "chain": [
            {"step": 1, "params": 500_000, "gflops": 0.123456, "top1": 90.0},
            {"step": 2, "params": 250_000, "gflops": 0.0612, "top1": 85.25},
            {"step": 3, "params": 80_000, "gflops": 0.02, "top1": 39.0},  # at or below tau: the stop
            {"step": 4, "params": 30_000, "gflops": 0.01, "top1": 20.0},  # pruned further for the curve only
        ],
        "dis": {"0": {"dis_mean": 0.31, "dis_std": 0.01}, "1": {"dis_mean": 0.42, "dis_std": 0.02}},
        "selection": {"phase": [1, 2, 0], "candidates": [0, 1], "zeta": 0.31, "zeta_index": None,
                      "scores": {"0": 0.355, "1": 0.4626}, "chosen": 1, "reason": "argmax Dis + 0.05 * Acc"},
        "student": _evaluation(44.0, 0.5),
        "verified": {},
        "stages": {"ran": ["chain", "dis/step-01"], "reused": ["teacher"]},
        "labeler_dir": "zoo-out/resnet18-cifar10-ipc10-pruned", "build_seconds": 1234.4, "run_seconds": 100.2,
        "config": {"protocol": {"epochs": 300, "batch_size": 100, "lr": 0.001, "weight_decay": 0.01, "loss": "kl",
                                "temperature": 20.0, "ce_weight": 0.025, "cutmix_alpha": 1.0, "factor": None,
                                "schedule": "rded", "student": "resnet18", "student_stem": "imagenet"}},
    }
    if curve:
        report["verified"] = {"0": _evaluation(43.0, 1.0), "1": _evaluation(44.0, 0.5),
                              "2": _evaluation(45.5, 0.25), "3": _evaluation(30.0, 2.0)}
        report["curve"] = capacity_curve(report)
    return report


def _rows(md: str) -> dict[str, list[str]]:
    """Table rows of the chain table, by their first cell."""
    rows = {}
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| step") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.setdefault(cells[0], cells)
    return rows


def test_markdown_states_the_build_and_marks_the_selection():
    md = render_markdown(_report(curve=False))
    assert md.startswith("# Build report: cifar10 IPC 10 (cpu preset)\n")
    assert "Reported numbers (tau, student and teacher top-1) are on the real test split." in md
    assert "come from the held-out slice of the training split." in md
    assert "- full teacher: 1,000,000 parameters, 4,000,123 bytes, top-1 90.50% (runs/teacher)" in md
    assert "- distilled set: rded at work/distilled (sha256 abcdef012345…)" in md
    assert "- students: resnet18 (imagenet stem), 300 epochs, loss KL at T = 20 (RDED)\n" in md
    assert "- tau(D_S) = 40.00 ± 1.50 (student top-1 with the full teacher)" in md
    assert "- zeta = 0.3100; selection: argmax Dis + 0.05 * Acc" in md
    assert "- selected: step 2; student top-1 44.00 ± 0.50" in md
    assert "- labeler: zoo-out/resnet18-cifar10-ipc10-pruned; build time 1234 s (this run 100 s" in md
    rows = _rows(md)
    # step | params | % of teacher | GFLOPs | teacher top-1 | phase | Dis | score | student top-1
    assert rows["1"] == ["1", "500,000", "50.00%", "0.1235", "90.00%", "1", "0.3100", "0.3550", "—"]
    assert rows["2 **selected**"] == ["2 **selected**", "250,000", "25.00%", "0.0612", "85.25%", "2", "0.4200",
                                      "0.4626", "44.00"]
    assert rows["3"] == ["3", "80,000", "8.00%", "0.0200", "39.00%", "0", "—", "—", "—"]
    assert rows["4"][5] == "past stop"
    assert "Stages run: chain, dis/step-01; reused: teacher." in md
    assert "## Curve" not in md


def test_markdown_names_flash_dds_loss_and_the_temperature_of_the_build():
    report = _report(curve=False)
    report["config"]["protocol"].update(loss="mse_ce", temperature=4.0, ce_weight=0.025, student_stem=None, epochs=50)
    assert "- students: resnet18, 50 epochs, loss MSE of softmax at T = 4 + 0.025 CE (Flash-DD)\n" in render_markdown(report)


def test_markdown_of_a_build_that_keeps_the_full_teacher():
    report = _report(curve=False)
    report["selection"].update(chosen=None, zeta=None, scores={}, reason="no pruned member stays above tau(D_S)")
    report["stages"] = {"ran": [], "reused": []}
    md = render_markdown(report)
    assert "- selected: the full teacher; student top-1 44.00 ± 0.50" in md
    assert "- zeta = —;" in md and "**selected**" not in md
    assert "Stages run: none; reused: none." in md


def test_markdown_curve_section_marks_selected_and_best_and_gives_the_regret():
    md = render_markdown(_report(curve=True))
    curve = md[md.index("## Curve"):]
    assert curve.startswith("## Curve: every member taught students (2 seeds)")
    rows = _rows(curve)
    # step | params | % of teacher | student top-1 | on held-out slice | label s / run (mean of 2.0 and 4.0)
    assert rows["teacher"] == ["teacher", "1,000,000", "100.00%", "40.00 ± 1.50", "—", "3.0"]
    assert rows["2 **selected**"][3] == "44.00 ± 0.50"
    assert rows["3 **best**"] == ["3 **best**", "80,000", "8.00%", "45.50 ± 0.25", "—", "3.0"]
    assert "Selection regret (best point's mean minus the selected one's): 1.50 points." in curve
    # the chain table shows each member's verified students too
    assert _rows(md)["4"][-1] == "30.00"


def test_write_report_writes_json_markdown_and_readable_plots(tmp_path):
    plain = write_report(tmp_path / "plain", _report(curve=False))
    assert sorted(plain) == ["capacity", "dis"]
    with_curve = write_report(tmp_path / "curve", _report(curve=True))
    assert sorted(with_curve) == ["capacity", "curve", "dis"]
    for name, path in with_curve.items():
        assert path == tmp_path / "curve" / "plots" / f"{name}.png"
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
    doc = json.loads((tmp_path / "curve" / "build-report.json").read_text())
    assert doc == json.loads(json.dumps(_report(curve=True)))
    assert (tmp_path / "curve" / "build-report.md").read_text() == render_markdown(_report(curve=True))
    assert not list(tmp_path.rglob(".*tmp*"))


@pytest.mark.parametrize("chosen, selected_step, regret", [(1, 2, 1.5), (0, 1, 2.5), (None, 0, 5.5)])
def test_capacity_curve_by_hand(chosen, selected_step, regret):
    report = _report(curve=True)
    report["selection"]["chosen"] = chosen
    curve = capacity_curve(report)
    assert curve["best_step"] == 3 and curve["selected_step"] == selected_step
    assert curve["selection_regret"] == pytest.approx(regret)
    assert [p["step"] for p in curve["points"]] == [0, 1, 2, 3, 4]
    assert [p["param_ratio"] for p in curve["points"]] == [1.0, 0.5, 0.25, 0.08, 0.03]
