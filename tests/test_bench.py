"""`flashdd-zoo bench` on the CPU with tiny batches, throughput on cards, label-time helpers."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import run_cli

from flashdd_zoo.bench.measure import make_inputs, measure
from flashdd_zoo.cards.measure import count_params
from flashdd_zoo.exporters import verify_manifest
from flashdd_zoo.models import build_model, resnet18_arch
from flashdd_zoo.runtime.timing import LabelTimer, LabelTiming, label_speedup, time_labeling

TINY = ["--batch", "2", "--repeats", "2", "--warmup", "1", "--rep-seconds", "0", "--device", "cpu"]


def _bench(*args, check=True):
    return run_cli("bench", *args, check=check)


def _bench_process(*args):
    """In its own process: the command line recorded in the report is the one a user typed."""
    return subprocess.run([sys.executable, "-m", "flashdd_zoo", "bench", *args], capture_output=True, text=True, check=True)


def test_bench_folder_against_teacher_with_onnx(exported, tmp_path):
    out, results = tmp_path / "report.json", tmp_path / "results"
    res = _bench_process(str(exported), *TINY, "--backends", "torch,onnx", "--json", str(out),
                         "--record", "bench-cpu-test", "--results-dir", str(results))
    assert "speed-up" in res.stdout and "teacher-eager-float32" in res.stdout
    report = json.loads(out.read_text())
    assert report["device"].startswith("CPU") and report["batch"] == 2 and report["res"] == 32
    names = [t["name"] for t in report["targets"]]
    assert names == ["teacher-eager-float32", "labeler-eager-float32",
                     "labeler-fast-float32+channels_last+fold_bn", "labeler-onnxruntime"]
    for t in report["targets"]:
        assert t["images_per_second"] > 0 and t["latency_ms"] > 0 and t["peak_mem_bytes"] >= 0
        assert t["images_per_second"] == pytest.approx(2e3 / t["latency_ms"])
        assert t["peak_mem_kind"] == "rss_peak_growth"
    fast = report["targets"][2]
    assert report["ratio"] == pytest.approx(fast["images_per_second"] / report["targets"][0]["images_per_second"])
    assert report["teacher"]["params"] == 11_173_962  # full CIFAR ResNet-18, 10 classes
    doc = json.loads((results / "bench-cpu-test.json").read_text())
    assert doc["command"].startswith(f"flashdd-zoo bench {exported}")
    m = doc["metrics"]
    for key in ("labeler_params", "labeler_img_s", "teacher_img_s", "ratio", "batch", "res", "onnxruntime_img_s"):
        assert key in m, key
    metrics = json.loads((exported / "metrics.json").read_text())
    assert m["labeler_params"] == metrics["params"] and m["res"] == 32


def test_bench_widths_without_folder_and_read_ceiling(tmp_path):
    out = tmp_path / "r.json"
    _bench("--stage-widths", "8,8,8,16", "--classes", "10", "--res", "32", *TINY, "--against", "none",
           "--ceiling", "--json", str(out))
    report = json.loads(out.read_text())
    arch = resnet18_arch(10, "cifar")
    arch["widths"] = {"stem": 8, "stages": [8, 8, 8, 16], "inner": [[8, 8], [8, 8], [8, 8], [16, 16]]}
    assert report["labeler"]["params"] == count_params(build_model(arch))
    assert report["labeler"]["unaligned_widths"] == []
    assert report["teacher"] is None and "ratio" not in report
    fast = next(t for t in report["targets"] if t["key"] == "labeler")
    assert report["fraction_of_read_ceiling"] == pytest.approx(
        fast["images_per_second"] / report["read_ceiling"]["images_per_second"])


@pytest.mark.parametrize("stacking", ["--stack-members", "--no-stack-members"])
def test_bench_random_ensemble_with_and_without_stacking(tmp_path, stacking):
    out = tmp_path / "r.json"
    _bench("--stage-widths", "8,8,8,16", "--members", "3", "--classes", "10", "--res", "32", *TINY,
           "--against", "none", stacking, "--json", str(out))
    report = json.loads(out.read_text())
    single = resnet18_arch(10, "cifar")
    single["widths"] = {"stem": 8, "stages": [8, 8, 8, 16], "inner": [[8, 8], [8, 8], [8, 8], [16, 16]]}
    assert report["labeler"]["params"] == 3 * count_params(build_model(single))
    assert report["labeler"]["name"].startswith("ensemble3-")
    fast = next(t for t in report["targets"] if t["key"] == "labeler")
    assert fast["name"].endswith("+stack_members") == (stacking == "--stack-members")


def test_bench_usage_errors(exported):
    res = _bench(str(exported), "--stage-widths", "8,8,8,8", *TINY, check=False)
    assert res.returncode != 0 and "not both" in res.stderr and "Traceback" not in res.stderr
    res = _bench("--stage-widths", "8,8,8,8", "--update-card", *TINY, check=False)
    assert res.returncode != 0 and "needs a LABELER folder" in res.stderr
    res = _bench(str(exported), "--res", "64", *TINY, check=False)
    assert res.returncode != 0 and "takes 32x32 images" in res.stderr


def test_update_card_records_throughput(exported, tmp_path):
    copy = tmp_path / "labeler"
    shutil.copytree(exported, copy)
    _bench(str(copy), *TINY, "--update-card")
    assert (copy / "config.json").read_text() == (exported / "config.json").read_text()  # never changes after export
    metrics = json.loads((copy / "metrics.json").read_text())
    assert metrics["throughput_img_s"] > 0 and metrics["throughput_speedup"] > 0
    assert metrics["throughput_device"].startswith("CPU") and "batch 2" in metrics["throughput_device"]
    card = (copy / "README.md").read_text()
    assert f"| measured throughput | {metrics['throughput_img_s']:,.0f} images/s on CPU" in card
    assert f"| labeler throughput / full teacher's (same run) | {metrics['throughput_speedup']:.2f}x |" in card
    verify_manifest(copy)  # manifest rewritten to match
    assert not list(tmp_path.glob(".labeler*"))  # no temporaries left beside it


def test_update_card_refuses_altered_files(exported, tmp_path):
    copy = tmp_path / "labeler"
    shutil.copytree(exported, copy)
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes() + b"x")
    before = (copy / "config.json").read_text(), (copy / "metrics.json").read_text()
    res = _bench(str(copy), *TINY, "--update-card", check=False)
    assert res.returncode != 0 and "model.onnx" in res.stderr
    assert ((copy / "config.json").read_text(), (copy / "metrics.json").read_text()) == before


def test_measure_counts_batches_and_reports_the_median():
    calls = {"build": 0, "run": 0}

    def build():
        calls["build"] += 1

        def run(x):
            calls["run"] += 1
            return x.sum()
        return run

    inputs = make_inputs(3, 8, torch.device("cpu"), torch.float32, raw=False)
    assert len(inputs) == 2 and not torch.equal(inputs[0], inputs[1]) and inputs[0].abs().sum() > 0
    m = measure(build, inputs, torch.device("cpu"), warmup=2, repeats=4, rep_seconds=0)
    assert calls == {"build": 1, "run": 2 + 1 + 4 * m.iters_per_repeat}
    assert m.latency_ms_min <= m.latency_ms <= m.latency_ms_max
    assert m.images_per_second == pytest.approx(3e3 / m.latency_ms) and m.repeats == 4


def test_label_timer_counts_calls_and_images_and_skips_warmup():
    seen = []
    batches = [torch.randn(n, 3, 4, 4) for n in (5, 7, 9)]
    timing = time_labeling(lambda x: seen.append(len(x)) or x.mean(), batches, warmup_batches=1)
    assert seen == [5, 7, 9] and timing.calls == 2 and timing.images == 16 and timing.seconds > 0
    timer = LabelTimer("cpu")
    with timer.section(4):
        torch.randn(64, 64) @ torch.randn(64, 64)
    assert timer.result().calls == 1 and timer.result().images == 4
    timer.reset()
    assert timer.result() == LabelTiming(0.0, 0, 0)


def test_label_speedup_is_per_image_time_ratio():
    teacher, labeler = LabelTiming(10.0, 100, 10_000), LabelTiming(0.5, 50, 5_000)
    assert label_speedup(teacher, labeler) == pytest.approx(10.0)
    with pytest.raises(ValueError):
        label_speedup(teacher, LabelTiming(0.0, 0, 0))


def test_label_time_of_a_real_labeler(exported, cifar10, cifar_val):
    from flashdd_zoo import load_labeler
    from flashdd_zoo.data import normalize

    x = normalize(cifar_val.images, cifar10.spec.mean, cifar10.spec.std)
    labeler = load_labeler(exported, fast=True)
    timing = time_labeling(labeler.soft_labels, x.split(20))
    assert timing.calls == 3 and timing.images == 60 and timing.images_per_second > 0
