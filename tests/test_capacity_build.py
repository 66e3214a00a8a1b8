"""Pruning chain, Eq. 2 importance, zeta/selection and the smoke build (issue 4)."""

import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch_pruning as tp
import yaml

from flashdd_zoo import load_labeler
from flashdd_zoo.cards import count_params, gflops_per_image
from flashdd_zoo.data import load_split
from flashdd_zoo.errors import FlashDDError
from flashdd_zoo.exporters.weights import load_weights
from flashdd_zoo.models import arch_of, build_model, resnet18_arch
from flashdd_zoo.zoo.capacity import (
    SelectionConfig,
    assign_phases,
    dis_from_losses,
    inflection_zeta,
    mean_dis,
    select_capacity,
    select_over_chain,
)
from flashdd_zoo.zoo.checkpoints import load_checkpoint
from flashdd_zoo.zoo.presets import check_config, preset_config, with_overrides
from flashdd_zoo.zoo.prune import (
    PruneConfig,
    PruningReference,
    channel_ratios,
    flashdd_importance,
    prune_chain,
    step_pruner,
)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_eq2_importance_matches_hand_computation():
    torch.manual_seed(0)
    net = build_model(resnet18_arch(10, "cifar", scale=0.25)).eval()
    for p in net.parameters():  # BN affine parameters away from their 1/0 initialisation
        p.data.uniform_(-1, 1) if p.ndim == 1 else None
    graph = tp.DependencyGraph().build_dependency(net, torch.zeros(1, 3, 32, 32))
    block = net.layer2[1]  # conv1 -> bn1 -> conv2: a group of its own (the block's inner width)
    channels = block.conv1.out_channels
    group = graph.get_pruning_group(block.conv1, tp.prune_conv_out_channels, idxs=list(range(channels)))
    got = flashdd_importance(top_n=4)(group)
    by_hand = (block.conv1.weight.abs().flatten(1).sum(1) + block.bn1.weight.abs() + block.bn1.bias.abs()
               + block.conv2.weight.abs().transpose(0, 1).flatten(1).sum(1))
    expected = by_hand / by_hand.topk(4).values.mean()
    assert torch.allclose(got, expected, rtol=1e-5)
    assert got.max() >= 1.0  # normalised by the mean of the top 4


def test_dis_zeta_and_selection_on_recorded_curves():
    assert dis_from_losses([2.0, 1.5, 1.0, 0.9], window=3) == pytest.approx(0.5)
    params = [5_000_000, 2_500_000, 1_200_000, 600_000, 300_000, 150_000]
    dis = [0.30, 0.33, 0.38, 0.45, 0.47, 0.48]  # convex then concave in log-size
    zeta, idx = inflection_zeta(params, dis)
    assert idx == 2 and zeta == 0.38
    top1 = [95.2, 93.0, 91.0, 88.0, 80.0, 60.0]
    assert assign_phases(top1, full_top1=95.5, tau=70.0, tolerance=1.0) == [1, 2, 2, 2, 2, 0]
    sel = select_capacity(params, top1, dict(enumerate(dis)), 95.5, 70.0, SelectionConfig(gamma=0.05))
    assert sel.candidates == [0, 1, 2, 3, 4]  # the member below tau is out
    assert set(sel.scores) == {2, 3, 4}  # Dis >= zeta
    assert sel.chosen == 4 and sel.scores[4] == pytest.approx(0.47 + 0.05 * 0.80)
    # a strong accuracy weight moves the choice to the more accurate member
    assert select_capacity(params, top1, dict(enumerate(dis)), 95.5, 70.0, SelectionConfig(gamma=5.0)).chosen == 2
    none = select_capacity(params, [60.0] * 6, dict(enumerate(dis)), 95.5, 70.0, SelectionConfig())
    assert none.chosen is None and "full teacher" in none.reason


def test_dis_needs_two_epochs_of_positive_loss():
    """Dis = (L_first - L_last) / L_first over the window; the window is cut to the run's length."""
    assert dis_from_losses([2.0, 1.0], window=2) == pytest.approx(0.5)  # the shortest valid window
    assert dis_from_losses([0.8, 0.0, 0.4], window=2) == pytest.approx(1.0)  # a first loss below 1, a zero later
    assert dis_from_losses([4.0, 3.0, 2.0], window=10) == pytest.approx(0.5)  # window longer than the run
    for losses, window in (([2.0], 5), ([2.0, 1.0], 1), ([0.0, 1.0], 2), ([-1.0, -2.0], 2)):
        with pytest.raises(ValueError, match=r"Dis needs at least 2 epochs of positive loss, got \["):
            dis_from_losses(losses, window)
    mean, std = mean_dis([[2.0, 1.0, 0.5], [4.0, 1.0, 0.0]], window=2)  # Dis 0.5 and 0.75
    assert (mean, std) == (pytest.approx(0.625), pytest.approx(0.1767767, rel=1e-6))  # stdev = 0.25 / sqrt 2
    assert mean_dis([[2.0, 1.0]], window=2) == (pytest.approx(0.5), 0.0)


def test_zeta_edge_cases_by_hand():
    # fewer than 3 members: no curvature, zeta is the smallest Dis and every candidate passes
    assert inflection_zeta([100, 10], [0.4, 0.2]) == (0.2, None)
    assert inflection_zeta([100], [0.3]) == (0.3, None)
    # params 10^3..10^7 (log-sizes 3..7, evenly spaced) and dyadic Dis: second derivative -1/16, -1/16,
    # -1/32, then exactly 0 twice. A zero is no sign change, so there is no inflection
    assert inflection_zeta([10**k for k in range(3, 8)], [0.125, 0.375, 0.5, 0.625, 0.75]) == (0.125, None)
    # uneven log-sizes: the derivative is taken against log10(size), and the first sign change is
    # between the two largest members (at the second of them)
    params, dis = [2215829, 3889768, 4490480, 4952226, 6178737], [0.12, 0.93, 0.11, 0.05, 0.04]
    assert inflection_zeta(params, dis) == (0.93, 1)
    assert inflection_zeta(params[::-1], dis[::-1]) == (0.93, 3)  # order of the inputs does not matter


def test_selection_fields_and_tolerance_on_recorded_curves():
    params = [5_000_000, 2_500_000, 1_200_000, 600_000, 300_000, 150_000]
    dis = [0.30, 0.33, 0.38, 0.45, 0.47, 0.38 - 1e-12]  # the last equals zeta up to rounding: it passes
    top1 = [95.2, 93.0, 91.0, 88.0, 80.0, 75.0]
    sel = select_capacity(params, top1, dict(enumerate(dis)), 95.5, 70.0, SelectionConfig(gamma=0.05))
    assert (sel.zeta, sel.zeta_index) == (0.38, 2)
    assert set(sel.scores) == {2, 3, 4, 5} and sel.chosen == 4
    assert sel.reason == "argmax Dis + 0.05 * Acc over 4 members with Dis >= zeta"
    # two more free reductions in front: the candidates start at the last phase-1 member (index 2),
    # and zeta's index is the member's index in the chain, not in the candidate list
    params2, top12 = [20_000_000, 10_000_000, *params[:5]], [95.5, 95.4, *top1[:5]]
    dis2 = dict(enumerate([0.10, 0.20, 0.30, 0.33, 0.38, 0.45, 0.47]))
    sel2 = select_capacity(params2, top12, dis2, 95.5, 70.0, SelectionConfig(gamma=0.05))
    assert sel2.phase == [1, 1, 1, 2, 2, 2, 2] and sel2.candidates == [2, 3, 4, 5, 6]
    assert (sel2.zeta, sel2.zeta_index) == (0.38, 4) and set(sel2.scores) == {4, 5, 6} and sel2.chosen == 6
    none = select_capacity(params, [60.0] * 6, dict(enumerate(dis)), 95.5, 70.0, SelectionConfig())
    assert none.candidates == [] and none.scores == {} and (none.zeta, none.zeta_index) == (None, None)
    assert none.reason == "no pruned member stays above tau(D_S): keep the full teacher"


def test_selection_over_a_chain_follows_algorithm_1_by_hand():
    """The build's wiring of Algorithm 1, on a chain with several phase-1 members and a curve
    pruned past tau. Expected values are worked out by hand from the paper's rule, not by the code:
    full teacher 90.0 on the choice split, tolerance 1.0 -> phase 1 while top-1 >= 89.0;
    tau 70.0 -> phase 2 while top-1 > 70.0; the selection stops at the first member <= tau."""
    top1 = [90.0, 89.6, 89.0, 86.0, 80.0, 71.0, 70.0, 75.0, 40.0]  # member 7 climbs back above tau
    chain = [{"step": i, "params": 1_000_000 >> i, "top1": t} for i, t in enumerate(top1)]
    # Dis rising as the labeler shrinks, convex in log-size over the candidates (steps 0.05, 0.10, 0.15
    # per halving): no inflection, so every candidate passes Dis >= zeta and the score alone decides
    dis = {0: 0.10, 1: 0.20, 2: 0.30, 3: 0.35, 4: 0.45, 5: 0.60, 6: 0.65, 7: 0.90, 8: 0.95}
    asked = []

    def dis_of(member):
        asked.append(member["step"])
        return {"dis_mean": dis[member["step"]]}

    cfg = SelectionConfig(gamma=0.05, hold_tolerance=1.0)
    sel, measured = select_over_chain(chain, dis_of, full_top1=90.0, tau=70.0, cfg=cfg)
    assert sel.phase == [1, 1, 1, 2, 2, 2, 0]  # members 7 and 8 lie past the first member <= tau: unseen
    assert asked == [0, 1, 2, 3, 4, 5] and sorted(measured) == asked  # Dis only above tau, each once
    assert sel.candidates == [2, 3, 4, 5]  # the last phase-1 member and the phase-2 members
    # scores: 0.30 + 0.05*0.890 = 0.3445, 0.35 + 0.0430 = 0.3930, 0.45 + 0.0400 = 0.4900, 0.60 + 0.0355 = 0.6355
    assert sel.scores == pytest.approx({2: 0.3445, 3: 0.3930, 4: 0.4900, 5: 0.6355})
    assert sel.chosen == 5
    # tau and the full teacher's top-1 in each other's place give another selection: member 0 (90.0)
    # is already at or below "tau" 90.0, so the selection sees it alone, measures no Dis and keeps the teacher
    asked.clear()
    swapped, _ = select_over_chain(chain, dis_of, full_top1=70.0, tau=90.0, cfg=cfg)
    assert swapped.chosen is None and swapped.phase == [1] and asked == []
    # a stricter tolerance ends phase 1 earlier: member 1 becomes the last free reduction
    strict, _ = select_over_chain(chain, dis_of, full_top1=90.0, tau=70.0, cfg=SelectionConfig(hold_tolerance=0.5))
    assert strict.phase[:3] == [1, 1, 2] and strict.candidates[0] == 1
    # a chain entirely above tau is seen whole
    above, _ = select_over_chain(chain[:5], dis_of, full_top1=90.0, tau=70.0, cfg=cfg)
    assert above.phase == [1, 1, 1, 2, 2] and above.chosen == 4


def test_pruning_chain_shrinks_and_members_rebuild(tmp_path, cifar10, small_net, cifar_val):
    train = load_split(cifar10, "train", max_per_class=10, seed=2)
    cfg = PruneConfig(param_fractions=(0.5, 0.25), finetune_epochs=1, finetune_batch_size=50, top_n=4)
    members = prune_chain(small_net, cifar10, train, cifar_val, cfg, tmp_path / "chain", device="cpu",
                          show_progress=False)
    sizes = [count_params(small_net)] + [m.params for m in members]
    assert len(members) == 2 and sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
    for m in members:
        widths = [m.arch["widths"]["stem"], *m.arch["widths"]["stages"], *sum(m.arch["widths"]["inner"], [])]
        assert all(w % 8 == 0 for w in widths)  # tensor-core friendly
        saved, meta = load_checkpoint(m.path)
        rebuilt = load_weights(build_model(meta["architecture"]), m.path / "model.safetensors")
        assert count_params(rebuilt) == m.params
        assert gflops_per_image(rebuilt, 32) == pytest.approx(m.gflops)
        x = torch.randn(4, 3, 32, 32)
        assert torch.equal(rebuilt.eval()(x), saved.eval()(x))
    # a rerun with the same config reuses the finished members
    again = prune_chain(small_net, cifar10, train, cifar_val, cfg, tmp_path / "chain", device="cpu",
                        show_progress=False)
    assert [m.params for m in again] == [m.params for m in members]
    # a chain interrupted after step 1 continues to the very member an uninterrupted chain made
    shutil.copytree(tmp_path / "chain" / "step-01", tmp_path / "resumed" / "step-01")
    resumed = prune_chain(small_net, cifar10, train, cifar_val, cfg, tmp_path / "resumed", device="cpu",
                          show_progress=False)
    assert [m.to_json()["arch"] for m in resumed] == [m.arch for m in members]
    assert [m.top1 for m in resumed] == [m.top1 for m in members]
    assert _sha(resumed[1].path / "model.safetensors") == _sha(members[1].path / "model.safetensors")


def test_step_pruner_acts_as_one_pruner_kept_across_the_chain(small_net):
    """Each chain step builds a fresh pruner on the previous member with the teacher as reference;
    it must cut exactly what one torch-pruning pruner stepped through the whole chain cuts (the
    behaviour a resumed chain could not reproduce before), max_pruning_ratio included."""
    cfg = PruneConfig(max_pruning_ratio=0.8)
    ratios = channel_ratios(cfg.param_fractions)
    kept = copy.deepcopy(small_net)
    one = tp.pruner.MetaPruner(
        kept, torch.zeros(1, 3, 32, 32), importance=flashdd_importance(cfg.top_n), global_pruning=True,
        iterative_steps=len(ratios), iterative_pruning_ratio_scheduler=lambda r, s: [0.0, *ratios],
        pruning_ratio=ratios[-1], max_pruning_ratio=cfg.max_pruning_ratio, ignored_layers=[kept.fc], round_to=8)
    reference = PruningReference.of(small_net, cfg, 32)
    fresh = copy.deepcopy(small_net)
    for step, ratio in enumerate(ratios):
        one.step()
        step_pruner(fresh, cfg, ratio, reference, 32).step()
        assert arch_of(fresh) == arch_of(kept), f"step {step + 1}"
        fresh = copy.deepcopy(fresh)  # the next step sees a member as if reloaded: no pruner state survives
    assert count_params(fresh) < 0.1 * count_params(small_net)  # the chain really went deep


def _stages(out):
    path = out / "work" / "stages.json"
    return json.loads(path.read_text()) if path.is_file() else {}


SMOKE = [sys.executable, "-m", "flashdd_zoo", "build", "--preset", "smoke", "--device", "cpu"]

# where each run is killed: (what is under way, the sign that it has started, seconds to wait after it)
KILL_POINTS = (
    ("teacher training, mid epoch", lambda out: (out / "work" / "teacher-run" / "last").is_dir(), 0.5),
    ("tau(D_S) student evaluation", lambda out: "distilled" in _stages(out), 3.0),
    ("pruning chain, step 2's fine-tune", lambda out: (out / "work" / "chain" / "step-01").is_dir(), 1.0),
    ("Dis(theta) of the second member", lambda out: "dis/step-01" in _stages(out), 1.0),
    ("export of the chosen labeler", lambda out: (out / "build-report.md").is_file(), 0.0),
)
# times, paths and the record of which stages this run reused are the only fields allowed to differ
VOLATILE = {"seconds", "label_seconds", "run_seconds", "build_seconds", "stages", "path", "labeler_dir", "out"}


def _comparable(doc):
    if isinstance(doc, dict):
        return {k: _comparable(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [_comparable(v) for v in doc]
    return doc


@pytest.fixture(scope="module")
def clean_smoke(tmp_path_factory):
    """The README's main job, run once without interruption."""
    out = tmp_path_factory.mktemp("clean") / "zoo-out"
    res = subprocess.run(SMOKE + ["--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


@pytest.mark.slow  # the whole smoke build: minutes on CPU
def test_smoke_build_report_and_card(clean_smoke):
    report = json.loads((clean_smoke / "build-report.json").read_text())
    assert set(report["stages"]["ran"]) >= {"teacher", "distilled", "tau", "chain"} and not report["stages"]["reused"]
    labeler = load_labeler(report["labeler_dir"])
    m = labeler.metrics
    assert m["tau_mean"] == pytest.approx(report["tau"]["top1_mean"])
    card = (labeler.folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])["flashdd"]
    assert meta["params"] == count_params(labeler.net) and meta["tau_mean"] == pytest.approx(m["tau_mean"])
    assert f"| parameters | {meta['params']:,} |" in card
    assert f"| weights on disk (model.safetensors) | {meta['weights_bytes']:,} bytes |" in card
    assert f"| GFLOPs per image at 8x8 | {meta['gflops']:.4f} |" in card
    assert "tau(D_S): student top-1 with the full teacher | " + f"{m['tau_mean']:.2f}%" in card
    assert (labeler.folder / "plots" / "capacity.png").is_file() and (clean_smoke / "build-report.md").is_file()
    if labeler.config.kind == "pruned":
        assert labeler.num_params < report["teacher"]["params"]


@pytest.mark.slow
def test_killed_and_resumed_build_equals_the_clean_build(clean_smoke, tmp_path):
    """The smoke build SIGKILLed five times and resumed each time (issue 18), at:

    1. teacher training, mid epoch (after epoch 1's resume state was written);
    2. the tau(D_S) student evaluation (3 s into it);
    3. the pruning chain, during step 2's fine-tune;
    4. Dis(theta) of the second chain member;
    5. the export of the chosen labeler (after the report's first write).

    The sixth run finishes. Its build-report.json equals the clean run's in every field except
    times, paths and the reused-stage record, and the exported model.safetensors has the same
    sha256: no stage's result depends on where the build was interrupted.
    """
    out = tmp_path / "zoo-out"
    cmd = SMOKE + ["--out", str(out)]
    for where, started, wait in KILL_POINTS:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 600
        while not started(out):
            assert proc.poll() is None, f"the build ended before it could be killed during {where}"
            assert time.time() < deadline, f"no sign of {where} after 600 s"
            time.sleep(0.05)
        time.sleep(wait)
        assert proc.poll() is None, f"the build ended before it could be killed during {where}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (out / "work" / "stages.json").exists():  # replaced atomically: never torn by a kill
            json.loads((out / "work" / "stages.json").read_text())
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]

    clean = json.loads((clean_smoke / "build-report.json").read_text())
    resumed = json.loads((out / "build-report.json").read_text())
    assert _comparable(resumed) == _comparable(clean)
    assert {"teacher", "distilled", "tau", "chain"} <= set(resumed["stages"]["reused"])
    stages = _stages(out)
    reused_seconds = sum(stages[n]["seconds"] for n in resumed["stages"]["reused"])
    assert resumed["build_seconds"] == pytest.approx(resumed["run_seconds"] + reused_seconds)  # all runs' work
    weights = [Path(r["labeler_dir"]) / "model.safetensors" for r in (clean, resumed)]
    assert _sha(weights[0]) == _sha(weights[1])
    assert not list(out.rglob(".*.tmp-*")), "an interrupted write left a temporary folder behind"

    # a changed Dis window redoes the Dis stages, and nothing else but the student evaluation of a
    # member the new Dis values select for the first time
    evaluated = {s for s in stages if s.startswith("student/")}
    rerun = subprocess.run(cmd + ["--window", "4"], capture_output=True, text=True, env=dict(os.environ))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    report = json.loads((out / "build-report.json").read_text())
    ran = set(report["stages"]["ran"])
    dis = {s for s in ran if s.startswith("dis/")}
    assert dis == {f"dis/step-{report['chain'][int(i)]['step']:02d}" for i in report["dis"]}
    chosen = report["selection"]["chosen"]
    student = f"student/step-{report['chain'][chosen]['step']:02d}" if chosen is not None else None
    assert ran - dis == ({student} if student and student not in evaluated else set())


def test_ctrl_c_names_the_resume_command_and_leaves_no_half_folder(tmp_path):
    out = tmp_path / "zoo-out"
    cmd = SMOKE + ["--out", str(out)]
    # a shell's background job ignores SIGINT and its children inherit that: give the build a terminal's default
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not (out / "work" / "teacher-run" / "last").is_dir():
        assert proc.poll() is None and time.time() < deadline, "the build did not reach teacher training"
        time.sleep(0.05)
    time.sleep(0.3)  # mid epoch 2, while a checkpoint may be being written
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)  # one Ctrl-C is enough
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("Interrupted; no half-written folder was kept. Run `flashdd-zoo build --preset smoke")
    assert f"--out {out}` to resume where it stopped." in lines[-1]
    assert "Traceback" not in err
    assert not list(out.rglob(".*.tmp-*"))


def test_build_settings_that_cannot_work_are_refused_up_front(tmp_path):
    cfg = preset_config("smoke", "digits", 10, tmp_path, 8)
    for overrides, option in ((dict(selection_window=1), "--window"), (dict(selection_window=31), "--window"),
                              (dict(prune_param_fractions=(0.2, 0.5)), "--param-fractions"),
                              (dict(rded_mipc=0), "--mipc"), (dict(ipc=0), "--ipc")):
        with pytest.raises(FlashDDError, match=option):
            check_config(with_overrides(cfg, **overrides))
    check_config(cfg)  # the preset itself is valid


@pytest.mark.slow
def test_build_record_writes_the_reports_numbers_as_a_result(clean_smoke, tmp_path, monkeypatch):
    """`build --record NAME --record-tau NAME2` on a copy of the finished smoke build (every stage
    reused): benchmarks/results/NAME.json under the working directory, with the required keys and
    the numbers read here from the report, the labeler's files and metrics.json."""
    import re

    from conftest import run_cli

    out = tmp_path / "zoo-out"
    shutil.copytree(clean_smoke, out, symlinks=True)
    monkeypatch.chdir(tmp_path)
    args = ["build", "--preset", "smoke", "--device", "cpu", "--out", str(out), "--record", "smoke-rec",
            "--record-tau", "smoke-tau"]
    monkeypatch.setattr(sys, "argv", ["flashdd-zoo", *args])  # as the console script sees it
    res = run_cli(*args)
    report = json.loads((out / "build-report.json").read_text())
    assert {"teacher", "distilled", "tau", "chain"} <= set(report["stages"]["reused"])
    results = tmp_path / "benchmarks" / "results"
    assert sorted(p.name for p in results.iterdir()) == ["smoke-rec.json", "smoke-tau.json"]  # no curve: no png
    assert f"recorded {Path('benchmarks/results/smoke-rec.json')}" in res.stdout

    doc = json.loads((results / "smoke-rec.json").read_text())
    assert set(doc) == {"name", "device", "date", "command", "git_commit", "metrics"} and doc["name"] == "smoke-rec"
    assert doc["command"] == "flashdd-zoo " + " ".join(args)
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", doc["git_commit"]) and doc["device"].startswith("CPU")
    labeler = Path(report["labeler_dir"])
    metrics = json.loads((labeler / "metrics.json").read_text())
    m = doc["metrics"]
    assert m["labeler_params"] == metrics["params"] == count_params(load_labeler(labeler).net)
    assert m["labeler_bytes"] == (labeler / "model.safetensors").stat().st_size
    assert m["teacher_params"] == report["teacher"]["params"]
    assert m["param_ratio"] == pytest.approx(metrics["params"] / report["teacher"]["params"])
    assert m["labeler_gflops"] == pytest.approx(metrics["gflops"])
    assert (m["tau_mean"], m["tau_std"]) == (report["tau"]["top1_mean"], report["tau"]["top1_std"])
    assert (m["student_top1_mean"], m["student_top1_std"]) == (report["student"]["top1_mean"], report["student"]["top1_std"])
    assert m["seeds"] == len(report["student"]["top1s"]) and m["build_seconds"] == report["build_seconds"]
    assert not any(k.startswith(("best_member", "selection_regret", "ddranking")) for k in m)  # no curve, no --label-robust

    tau = json.loads((results / "smoke-tau.json").read_text())
    assert tau["metrics"] == {"top1_mean": report["tau"]["top1_mean"], "top1_std": report["tau"]["top1_std"],
                              "seeds": len(report["tau"]["top1s"])}
