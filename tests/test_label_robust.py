"""DD-Ranking's label-robust scores (IOR, HLR, LRS), the random real baseline and hard-label
students, on hand-computed numbers (bc -l) and real CIFAR-10 images."""

import json
import shutil

import pytest
import torch
from conftest import run_cli

from flashdd_zoo.data import draw_training_subset, load_split, training_split
from flashdd_zoo.data.registry import resolve_dataset
from flashdd_zoo.errors import ArgumentError, DataError
from flashdd_zoo.zoo.distill import RDEDConfig, distill_rded
from flashdd_zoo.zoo.distilled import load_distilled
from flashdd_zoo.zoo.evaluate import EvalProtocol, evaluate, evaluate_random_baseline
from flashdd_zoo.zoo.label_robust import label_robust_scores, summarize_rounds

# -- the scores, against values computed by hand with bc -l ----------------------------------------


def test_one_round_matches_hand_computed_scores():
    s = label_robust_scores(ds_soft=0.45, random_soft=0.40, real_hard=0.83, ds_hard=0.30)
    assert s.ior == pytest.approx(0.05) and s.hlr == pytest.approx(0.53)
    assert s.lrs == pytest.approx(0.17816031083016070095, abs=1e-12)  # a = (0.05 - 0.53) / 2 = -0.24


@pytest.mark.parametrize("ds_soft, random_soft, real_hard, ds_hard, lrs", [
    (1.0, 0.0, 0.0, 1.0, 1.0),  # a = 1: the best score
    (0.0, 1.0, 1.0, 0.0, 0.0),  # a = -1: the worst
    (0.6, 0.5, 0.9, 0.8, 0.26894142136999512074),  # IOR = HLR: a = 0, LRS = 1 / (1 + e)
])
def test_lrs_at_its_anchor_points(ds_soft, random_soft, real_hard, ds_hard, lrs):
    assert label_robust_scores(ds_soft, random_soft, real_hard, ds_hard).lrs == pytest.approx(lrs, abs=1e-12)


def test_lambda_weights_ior_against_hlr():
    s = label_robust_scores(0.52, 0.50, 0.90, 0.50, lam=0.25)  # a = 0.25 * 0.02 - 0.75 * 0.40
    assert s.lrs == pytest.approx(0.16025006966110550013, abs=1e-12)


def test_missing_inputs_leave_their_scores_out():
    s = label_robust_scores(ds_soft=0.45, random_soft=0.40)
    assert s.ior == pytest.approx(0.05) and s.hlr is None and s.lrs is None


def test_rounds_are_scored_one_by_one_then_averaged():
    out = summarize_rounds([0.50, 0.40], [0.40, 0.40], 0.80, [0.60, 0.80])
    assert out["rounds"] == 2
    assert out["ior"]["values"] == pytest.approx([0.10, 0.0]) and out["ior"]["std"] == pytest.approx(0.05)
    assert out["hlr"]["mean"] == pytest.approx(0.10) and out["hlr"]["std"] == pytest.approx(0.10)
    # rounds: a = -0.05 -> .24819153796149164564, a = 0 -> .26894142136999512074
    assert out["lrs"]["mean"] == pytest.approx(0.25856647966574338, abs=1e-12)
    assert out["lrs"]["std"] == pytest.approx(0.01037494170425174, abs=1e-12)


def test_percentages_and_ragged_rounds_are_refused():
    with pytest.raises(ArgumentError, match="fraction in \\[0, 1\\].*divide percentages by 100"):
        label_robust_scores(ds_soft=45.0, random_soft=40.0)
    with pytest.raises(ArgumentError, match="one value per round"):
        summarize_rounds([0.5, 0.4], [0.4], None, None)


# -- the random real subset ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_cifar(tmp_path_factory, cifar10):
    """A real ImageFolder tree of CIFAR-10 images: 30 training and 5 test images per class."""
    root = tmp_path_factory.mktemp("smallcifar")
    for split, n in (("train", 30), ("test", 5)):
        for c in cifar10.class_ids:
            files = sorted((cifar10.path / split / c).iterdir())[:n]
            (root / split / c).mkdir(parents=True)
            for f in files:
                shutil.copy(f, root / split / c / f.name)
    return resolve_dataset(f"folder:{root}")


def test_random_subset_is_class_balanced_seeded_and_outside_the_held_out_slice(small_cifar):
    a = draw_training_subset(small_cifar, 4, seed=0, holdout_per_class=10)
    assert a.labels.bincount().tolist() == [4] * 10
    assert torch.equal(a.images, draw_training_subset(small_cifar, 4, seed=0, holdout_per_class=10).images)
    assert not torch.equal(a.images, draw_training_subset(small_cifar, 4, seed=1, holdout_per_class=10).images)
    rest, held = training_split(small_cifar, holdout_per_class=10)  # the slice as the build holds it out
    flat = held.images.flatten(1)
    for img in draw_training_subset(small_cifar, 20, seed=3, holdout_per_class=10).images:
        assert not (flat == img.flatten()).all(1).any()  # 20 = everything but the slice: none from it
        assert (rest.images.flatten(1) == img.flatten()).all(1).any()


@pytest.fixture(scope="module")
def d_s(tmp_path_factory, cifar10, small_net):
    out = tmp_path_factory.mktemp("ds") / "cifar10-ipc2"
    train = load_split(cifar10, "train", max_per_class=20, seed=0)
    distill_rded(cifar10, small_net, out, RDEDConfig(ipc=2, mipc=8, num_crop=3), "small_net",
                 device="cpu", train=train, show_progress=False)
    return out


def test_random_baseline_and_hard_labels_train_their_students(d_s, cifar10, cifar_val, small_net):
    distilled = load_distilled(d_s, cifar10)
    protocol = EvalProtocol(epochs=1, batch_size=10)
    drawn = []

    def draw(per_class, seed):
        drawn.append((per_class, seed))
        return draw_training_subset(cifar10, per_class, seed)

    base = evaluate_random_baseline(distilled, draw, small_net, cifar10, cifar_val, protocol, (0, 1),
                                    device="cpu", show_progress=False)
    assert drawn == [(2, 0), (2, 1)] and len(base.runs) == 2

    def no_labeler(x):
        raise AssertionError("hard-label students must not call the labeler")

    hard = evaluate(distilled, no_labeler, cifar10, cifar_val, EvalProtocol(epochs=1, batch_size=10, loss="ce"),
                    (0,), device="cpu", show_progress=False)
    assert len(hard.runs[0].losses) == 1 and hard.runs[0].label_seconds == 0


def test_random_baseline_needs_a_class_balanced_d_s(d_s, cifar10, cifar_val, small_net):
    distilled = load_distilled(d_s, cifar10)
    keep = torch.ones(len(distilled), dtype=torch.bool)
    keep[0] = False
    distilled.images, distilled.labels = distilled.images[keep], distilled.labels[keep]
    with pytest.raises(DataError, match="class-balanced D_S"):
        evaluate_random_baseline(distilled, lambda n, s: None, small_net, cifar10, cifar_val,
                                 EvalProtocol(epochs=1), (0,), device="cpu")


def test_evaluate_cli_reports_ddranking_scores_and_puts_them_on_the_card(d_s, exported, cifar10, tmp_path):
    labeler = tmp_path / "labeler"
    shutil.copytree(exported, labeler)
    report = tmp_path / "report.json"
    res = run_cli("evaluate", "--dataset", "cifar10", "--data-root", cifar10.path.parent, "--distilled", d_s,
                  "--labeler", labeler, "--epochs", "1", "--seeds", "0,1", "--batch-size", "10",
                  "--device", "cpu", "--val-per-class", "5", "--random-baseline", "--hard-labels",
                  "--real-top1", "80", "--out", report, "--update-card")
    assert "DD-Ranking" in res.stdout
    doc = json.loads(report.read_text())
    ds = [r["top1"] / 100 for r in doc["runs"]]
    rnd = [r["top1"] / 100 for r in doc["random"]["runs"]]
    hard = [r["top1"] / 100 for r in doc["hard"]["runs"]]
    scores = doc["label_robust"]
    assert scores["ior"]["values"] == pytest.approx([d - r for d, r in zip(ds, rnd)])
    assert scores["hlr"]["values"] == pytest.approx([0.80 - h for h in hard])
    assert scores["holdout_per_class"] == 0
    metrics = json.loads((labeler / "metrics.json").read_text())
    assert metrics["ddranking_lrs_mean"] == pytest.approx(scores["lrs"]["mean"]) and metrics["ddranking_rounds"] == 2
    assert "| LRS: DD-Ranking's label-robust score" in (labeler / "README.md").read_text()


def test_evaluate_cli_refuses_hard_labels_without_a_real_top1(d_s, cifar10, small_net, tmp_path):
    from flashdd_zoo.zoo.checkpoints import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "ckpt", small_net, {})
    res = run_cli("evaluate", "--dataset", "cifar10", "--data-root", cifar10.path.parent, "--distilled", d_s,
                  "--labeler", ckpt, "--epochs", "1", "--device", "cpu", "--hard-labels", check=False)
    assert res.returncode != 0 and "--real-top1" in res.stdout + res.stderr


def test_build_stage_scores_teacher_and_labeler_and_reuses_its_students(d_s, exported, cifar10, cifar_val, tmp_path):
    """--label-robust's stage: hard-label students once, a random baseline per soft-label source,
    HLR against the teacher's own top-1; a second run reuses every student."""
    from dataclasses import replace

    from flashdd_zoo.zoo.build import BuildContext, _label_robust_stage
    from flashdd_zoo.zoo.distilled import distilled_sha256
    from flashdd_zoo.zoo.presets import preset_config
    from flashdd_zoo.zoo.report import render_markdown
    from flashdd_zoo.zoo.stages import StageCache

    cfg = preset_config("smoke", "cifar10", 2, tmp_path, 32)
    cfg = replace(cfg, protocol=replace(cfg.protocol, epochs=1, batch_size=10), seeds=(0, 1), holdout_per_class=None,
                  device="cpu")
    ds = {"path": str(d_s), "sha256": distilled_sha256(d_s)}
    teacher = {"labeler_dir": str(exported), "top1": 80.0}
    tau, student = {"top1s": [30.0, 20.0]}, {"top1s": [25.0, 15.0]}

    def run():
        ctx = BuildContext(cfg, cifar10, tmp_path, StageCache(tmp_path), cifar_val)
        return ctx, _label_robust_stage(ctx, teacher, ds, tau, str(exported), student)

    ctx, scores = run()
    assert ctx.stages.ran == ["ddranking/hard-labels", "ddranking/random-teacher", "ddranking/random-labeler"]
    stages = json.loads((tmp_path / "stages.json").read_text())
    hard = [t / 100 for t in stages["ddranking/hard-labels"]["result"]["top1s"]]
    rnd = [t / 100 for t in stages["ddranking/random-labeler"]["result"]["top1s"]]
    assert scores["labeler"]["hlr"]["values"] == pytest.approx([0.80 - h for h in hard])
    assert scores["labeler"]["ior"]["values"] == pytest.approx([0.25 - rnd[0], 0.15 - rnd[1]])
    assert scores["teacher"]["hlr"] == scores["labeler"]["hlr"]
    ctx, again = run()
    assert ctx.stages.ran == [] and again == scores
    md = render_markdown({"dataset": "cifar10", "ipc": 2, "preset": "smoke", "label_robust": scores,
                          "teacher": {"params": 1, "weights_bytes": 1, "top1": 80.0, "source": "t"},
                          "distilled": {"method": "rded", "path": "p", "sha256": "0" * 64},
                          "tau": {"top1_mean": 25.0, "top1_std": 5.0}, "student": {"top1_mean": 20.0, "top1_std": 5.0},
                          "selection": {"chosen": None, "zeta": None, "reason": "r", "scores": {}, "phase": []},
                          "chain": [], "dis": {}, "verified": {}, "stages": {"ran": [], "reused": []},
                          "config": {"protocol": {"epochs": 2}}})
    assert f"| labeler | {scores['labeler']['ior']['mean']:.4f} ± " in md


def test_build_refuses_recording_scores_it_does_not_measure(tmp_path):
    done = run_cli("build", "--preset", "smoke", "--out", tmp_path / "out", "--record-label-robust", "ddr-x", check=False)
    assert done.returncode == 2
    assert "--record-label-robust records what --label-robust measures: add --label-robust." in done.stdout + done.stderr
    assert not (tmp_path / "out").exists()
