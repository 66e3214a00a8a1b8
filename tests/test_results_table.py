"""benchmarks/RESULTS.md is generated from benchmarks/results/*.json and must be up to date."""

import importlib.util
import json
from pathlib import Path

from flashdd_zoo.results import write_result

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _renderer():
    spec = importlib.util.spec_from_file_location("render_results", BENCHMARKS / "render_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_md_is_up_to_date():
    r = _renderer()
    assert (BENCHMARKS / "RESULTS.md").read_text() == r.render(BENCHMARKS / "results"), (
        "benchmarks/RESULTS.md is stale: run python benchmarks/render_results.py")


def test_readme_real_data_block_is_up_to_date():
    r = _renderer()
    readme = (BENCHMARKS.parent / "README.md").read_text()
    assert readme == r.with_block(readme, r.render_real_data(BENCHMARKS / "results")), (
        "README.md's results block is stale: run python benchmarks/render_results.py")


def test_every_recorded_result_has_the_required_keys():
    for path in sorted((BENCHMARKS / "results").glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc["name"] == path.stem
        assert {"device", "date", "command", "git_commit", "metrics"} <= set(doc), path
        assert all(isinstance(v, (int, float)) for v in doc["metrics"].values()), path


def test_render_tables_sorted_with_command_and_metrics(tmp_path):
    write_result(tmp_path, "b-second", {"ratio": 25.5, "batch": 100}, command="flashdd-zoo bench x --batch 100")
    write_result(tmp_path, "a-first", {"max_abs_diff_prob": 0.0123, "img_s": 1234567.8, "n": 3.0, "tiny": 4.2e-7},
                 command="python3 a.py | tee log")
    text = _renderer().render(tmp_path)
    assert text.index("## a-first") < text.index("## b-second")
    assert "| command | `flashdd-zoo bench x --batch 100` |" in text
    assert "`python3 a.py \\| tee log`" in text  # a pipe would break the table
    assert "| ratio | 25.5 |" in text and "| batch | 100 |" in text
    assert "| max_abs_diff_prob | 0.0123 |" in text and "| img_s | 1,234,567.8 |" in text and "| n | 3 |" in text
    assert "| tiny | 4.200e-07 |" in text
    assert "| device | CPU" in text or "| device | NVIDIA" in text


def test_check_mode_detects_stale_output(tmp_path):
    r = _renderer()
    results, out, readme = tmp_path / "results", tmp_path / "RESULTS.md", tmp_path / "README.md"
    readme.write_text((BENCHMARKS.parent / "README.md").read_text())  # a copy: the real one is never written here
    paths = ["--results-dir", str(results), "--out", str(out), "--readme", str(readme)]
    write_result(results, "x", {"v": 1})
    assert r.main([*paths, "--check"]) == 1  # missing
    assert r.main(paths) == 0
    assert r.main([*paths, "--check"]) == 0
    write_result(results, "y", {"v": 2})
    assert r.main([*paths, "--check"]) == 1
    assert r.main(paths) == 0
    write_result(results, "teacher-cifar10-cpu", {"params": 5, "top1": 80.5, "epochs": 2, "train_seconds": 120.0})
    assert r.main([*paths, "--check"]) == 1  # the README block names the teacher now
    assert r.main(paths) == 0 and "top-1 80.50% on the test split after 2 epochs" in readme.read_text()
