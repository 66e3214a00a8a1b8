"""Pruning chain, Eq. 2 importance, zeta/selection and the smoke build (issue 4)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch_pruning as tp
import yaml

from flashdd_zoo import load_labeler
from flashdd_zoo.cards import count_params, gflops_per_image
from flashdd_zoo.data import load_split
from flashdd_zoo.errors import FlashDDError
from flashdd_zoo.exporters.weights import load_weights
from flashdd_zoo.models import build_model, resnet18_arch
from flashdd_zoo.zoo.capacity import SelectionConfig, assign_phases, dis_from_losses, inflection_zeta, select_capacity
from flashdd_zoo.zoo.checkpoints import load_checkpoint
from flashdd_zoo.zoo.presets import check_config, preset_config, with_overrides
from flashdd_zoo.zoo.prune import PruneConfig, flashdd_importance, prune_chain


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


def _stages(out):
    path = out / "work" / "stages.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def test_smoke_build_end_to_end_and_resume(tmp_path):
    """The README's main job: interrupted after tau(D_S), it resumes without redoing stages."""
    out = tmp_path / "zoo-out"
    cmd = [sys.executable, "-m", "flashdd_zoo", "build", "--preset", "smoke", "--out", str(out), "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    while "tau" not in _stages(out):
        assert proc.poll() is None, "the build ended before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list(out.glob("resnet18-*"))  # nothing exported yet

    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads((out / "build-report.json").read_text())
    assert {"teacher", "distilled", "tau"} <= set(report["stages"]["reused"])
    assert not {"teacher", "distilled", "tau"} & set(report["stages"]["ran"])
    assert "chain" in report["stages"]["ran"]
    stages = _stages(out)
    reused_seconds = sum(stages[n]["seconds"] for n in report["stages"]["reused"])
    assert report["build_seconds"] == pytest.approx(report["run_seconds"] + reused_seconds)  # both runs' work

    labeler = load_labeler(report["labeler_dir"])
    m = labeler.config["metrics"]
    assert m["tau_mean"] == pytest.approx(report["tau"]["top1_mean"])
    card = (labeler.folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])["flashdd"]
    assert meta["params"] == count_params(labeler.net) and meta["tau_mean"] == pytest.approx(m["tau_mean"])
    assert f"| parameters | {meta['params']:,} |" in card
    assert f"| weights on disk (model.safetensors) | {meta['weights_bytes']:,} bytes |" in card
    assert f"| GFLOPs per image at 8x8 | {meta['gflops']:.4f} |" in card
    assert "tau(D_S): student top-1 with the full teacher | " + f"{m['tau_mean']:.2f}%" in card
    assert (labeler.folder / "plots" / "capacity.png").is_file() and (out / "build-report.md").is_file()
    if labeler.config["kind"] == "pruned":
        assert labeler.num_params < report["teacher"]["params"]

    # a changed Dis window redoes the Dis stages, and nothing else but the student evaluation of a
    # member the new Dis values select for the first time
    evaluated = {s for s in _stages(out) if s.startswith("student/")}
    rerun = subprocess.run(cmd + ["--window", "4"], capture_output=True, text=True, env=dict(os.environ))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    report = json.loads((out / "build-report.json").read_text())
    ran = set(report["stages"]["ran"])
    dis = {s for s in ran if s.startswith("dis/")}
    assert dis == {f"dis/step-{report['chain'][int(i)]['step']:02d}" for i in report["dis"]}
    chosen = report["selection"]["chosen"]
    student = f"student/step-{report['chain'][chosen]['step']:02d}" if chosen is not None else None
    assert ran - dis == ({student} if student and student not in evaluated else set())


def test_build_settings_that_cannot_work_are_refused_up_front(tmp_path):
    cfg = preset_config("smoke", "digits", 10, tmp_path, 8)
    for overrides, option in ((dict(selection_window=1), "--window"), (dict(selection_window=31), "--window"),
                              (dict(prune_param_fractions=(0.2, 0.5)), "--param-fractions"),
                              (dict(rded_mipc=0), "--mipc"), (dict(ipc=0), "--ipc")):
        with pytest.raises(FlashDDError, match=option):
            check_config(with_overrides(cfg, **overrides))
    check_config(cfg)  # the preset itself is valid
