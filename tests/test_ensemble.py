"""Teacher ensembles: trajectory checkpoints of a real CIFAR-10 teacher combined into one labeler,
evaluated in one pass when the members share an architecture."""

import json

import click
import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli

from flashdd_zoo import load_labeler
from flashdd_zoo.cli.common import number_list
from flashdd_zoo.data import load_split, normalize
from flashdd_zoo.errors import ArtifactError, FlashDDError, InputError
from flashdd_zoo.models import Ensemble, StackedEnsemble, build_model, ensemble_arch, resnet18_arch
from flashdd_zoo.runtime.fast import TOLERANCES
from flashdd_zoo.zoo.ensemble import build_ensemble, parse_schedule
from flashdd_zoo.zoo.evaluate import EvalProtocol, evaluate
from flashdd_zoo.zoo.runtime import top1_accuracy
from flashdd_zoo.zoo.teacher_training import TeacherRecipe, train_teacher
from flashdd_zoo.zoo.teachers import load_teacher

FP32 = TOLERANCES[torch.float32]


@pytest.fixture(scope="module")
def trajectory(tmp_path_factory, cifar10, cifar_val):
    """A quarter-width teacher trained 3 epochs on 200 real images: checkpoints at epochs 1 and 2
    (HeLIO/LADD's weak early teachers) and the final labeler folder."""
    run = tmp_path_factory.mktemp("traj") / "teacher-run"
    train = load_split(cifar10, "train", max_per_class=20, seed=0)
    result = train_teacher(cifar10, run, TeacherRecipe(epochs=3, batch_size=50, lr=0.05, width_scale=0.25, seed=1),
                           checkpoint_epochs=(1, 2), device="cpu", train=train, val=cifar_val, show_progress=False)
    return [result.checkpoints[1], result.checkpoints[2], result.labeler_dir]


@pytest.fixture(scope="module")
def ensemble_dir(tmp_path_factory, trajectory, cifar10):
    out = tmp_path_factory.mktemp("ens") / "ensemble3"
    res = run_cli("ensemble", *trajectory, "--dataset", "cifar10", "--out", out, "--weights", "1,1,2",
                  "--schedule", "0:1,0,0", "--schedule", "2:1,1,2", "--val-per-class", "8", "--device", "cpu",
                  check=False, env={"FLASHDD_DATA_ROOT": str(cifar10.path.parent)})
    assert res.returncode == 0, res.stderr[-2000:]
    assert "ensemble of 3" in res.stdout
    return out


@pytest.fixture(scope="module")
def images(cifar10, cifar_val):
    return normalize(cifar_val.images, cifar10.spec.mean, cifar10.spec.std)


def _member_logits(trajectory, images):
    with torch.no_grad():
        return torch.stack([load_teacher(p, 10).model.eval()(images) for p in trajectory], dim=1)


def test_ensemble_folder_records_members_and_measured_top1(ensemble_dir, trajectory, cifar10):
    config = json.loads((ensemble_dir / "config.json").read_text())
    arch = config["architecture"]
    assert config["kind"] == "ensemble" and len(arch["members"]) == 3
    assert arch["weights"] == [0.25, 0.25, 0.5]
    assert arch["schedule"] == [{"from_epoch": 0, "weights": [1.0, 0.0, 0.0]},
                                {"from_epoch": 2, "weights": [0.25, 0.25, 0.5]}]
    members = config["lineage"]["members"]
    assert [m["source"] for m in members] == ["checkpoint:epoch-0001", "checkpoint:epoch-0002",
                                              "labeler:resnet18-cifar10-teacher"]
    labeler = load_labeler(ensemble_dir)
    assert labeler.num_params == sum(m["params"] for m in members) == sum(p.numel() for p in labeler.net.parameters())
    val = load_split(cifar10, "test", max_per_class=8, seed=0)  # what --val-per-class 8 measured on
    ds_mean, ds_std = cifar10.spec.mean, cifar10.spec.std
    metrics = json.loads((ensemble_dir / "metrics.json").read_text())
    assert metrics["teacher_top1"] == pytest.approx(top1_accuracy(labeler.net, val, ds_mean, ds_std, torch.device("cpu")))
    for path, m in zip(trajectory, members):
        assert m["top1"] == pytest.approx(top1_accuracy(load_teacher(path, 10).model, val, ds_mean, ds_std, torch.device("cpu")))
    card = (ensemble_dir / "README.md").read_text()
    assert "ensemble of 3 resnet18 (cifar stem)" in card and "## Ensemble members" in card
    assert "checkpoint:epoch-0001" in card and "from epoch 2" in card
    info = run_cli("info", ensemble_dir, check=False)
    assert info.returncode == 0 and "ensemble of 3" in info.stdout


def test_ensemble_logits_are_the_weighted_member_sum(ensemble_dir, trajectory, images):
    member = _member_logits(trajectory, images)
    expected = (member * torch.tensor([0.25, 0.25, 0.5]).view(1, 3, 1)).sum(1)
    torch.testing.assert_close(load_labeler(ensemble_dir)(images), expected, rtol=1e-5, atol=1e-5)
    onnx = load_labeler(ensemble_dir, backend="onnx")
    torch.testing.assert_close(onnx(images), expected, rtol=1e-4, atol=1e-4)


def test_stacked_members_run_as_one_network(ensemble_dir, images):
    plain = load_labeler(ensemble_dir)
    fast = load_labeler(ensemble_dir, fast=True, stack_members=True)  # stacked, BN folded, channels_last
    convs = [m for m in fast.net.modules() if isinstance(m, torch.nn.Conv2d)]
    single = [m for m in build_model(plain.config.architecture["members"][0]).modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len(single) + 1  # one conv per layer for all 3 members, plus the grouped classifier
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.net.modules())
    ref = plain(images)
    for labeler in (fast, load_labeler(ensemble_dir, stack_members=True),
                    load_labeler(ensemble_dir, fast=True, stack_members=True, fuse_normalization=True)):
        x = images if labeler.expects_normalized else _raw(images)
        out = labeler(x)
        assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()
        assert torch.equal(out.argmax(1), ref.argmax(1))


def _raw(images):
    from flashdd_zoo.data.registry import REGISTRY

    spec = REGISTRY["cifar10"]
    return images * torch.tensor(spec.std).view(1, 3, 1, 1) + torch.tensor(spec.mean).view(1, 3, 1, 1)


def test_mixed_width_members_fall_back_to_one_by_one(small_net, images):
    wide = build_model(resnet18_arch(10, "cifar", scale=0.5)).eval()
    ens = Ensemble(ensemble_arch([small_net.arch, wide.arch]))
    ens.members[0].load_state_dict(small_net.state_dict())
    ens.members[1].load_state_dict(wide.state_dict())
    assert not ens.shares_architecture()
    with pytest.raises(ArtifactError, match="one architecture"):
        StackedEnsemble(ens)
    from flashdd_zoo.loaders.local import labeler_from_module

    fast = labeler_from_module(ens, resolution=32, mean=(0.5,) * 3, std=(0.25,) * 3, fast=True)
    assert fast.config.kind == "ensemble"
    with torch.no_grad():
        ref = ens.eval()(images)
    assert (fast(images) - ref).abs().max() <= 1e-4 * ref.abs().max()


@pytest.mark.parametrize("options", [dict(), dict(fast=True, stack_members=True)], ids=["plain", "fast-stacked"])
def test_epoch_schedule_switches_member_weights(ensemble_dir, trajectory, images, options):
    labeler = load_labeler(ensemble_dir, **options)
    member = _member_logits(trajectory, images)
    first_only = F.softmax(member[:, 0] / 20, dim=1)
    weighted = F.softmax((member * torch.tensor([0.25, 0.25, 0.5]).view(1, 3, 1)).sum(1) / 20, dim=1)
    for epoch, expected in ((0, first_only), (1, first_only), (2, weighted), (299, weighted), (0, first_only)):
        got = labeler.soft_labels(images, temperature=20, epoch=epoch)
        assert (got - expected).abs().max() <= FP32["prob_t20"], epoch


def test_onnx_backend_refuses_a_scheduled_epoch(ensemble_dir, images):
    onnx = load_labeler(ensemble_dir, backend="onnx")
    onnx.soft_labels(images, epoch=5)  # the default weights are in force from epoch 2 on
    with pytest.raises(InputError, match="backend='torch'"):
        onnx.soft_labels(images, epoch=0)


def test_students_train_on_ensemble_soft_labels(ensemble_dir, cifar10, cifar_val):
    """The evaluator takes an ensemble like any teacher (labels from the stacked fast path)."""
    d_s = load_split(cifar10, "train", max_per_class=2, seed=5)
    label_fn = load_labeler(ensemble_dir, fast=True, stack_members=True)
    result = evaluate(d_s, label_fn, cifar10, cifar_val, EvalProtocol(epochs=2, batch_size=10), seeds=(0,),
                      device="cpu", show_progress=False)
    assert len(result.runs[0].losses) == 2 and all(loss > 0 for loss in result.runs[0].losses)
    assert 0 <= result.top1_mean <= 100


def test_bad_ensembles_are_refused_with_a_reason(trajectory, small_net, cifar10, tmp_path):
    with pytest.raises(FlashDDError, match="at least 2"):
        build_ensemble(trajectory[:1], cifar10, tmp_path / "one")
    imagenet_stem = resnet18_arch(10, "imagenet", scale=0.25)
    with pytest.raises(ArtifactError, match="one stem"):
        ensemble_arch([small_net.arch, imagenet_stem])
    with pytest.raises(ArtifactError, match="non-negative"):
        ensemble_arch([small_net.arch, small_net.arch], weights=[1, -1])
    with pytest.raises(ArtifactError, match="2 numbers"):
        ensemble_arch([small_net.arch, small_net.arch], weights=[1, 1, 1])
    with pytest.raises(FlashDDError, match="EPOCH:w1"):
        parse_schedule(("ten:1,1",), 2)
    with pytest.raises(FlashDDError, match="EPOCH:w1"):
        parse_schedule(("3:1,1,1",), 2)
    with pytest.raises(click.BadParameter, match="comma-separated float"):
        number_list("1,x", float, "--weights")
    res = run_cli("ensemble", *trajectory[:2], "--dataset", "cifar10", "--out", tmp_path / "x", "--weights", "1,2,3",
                  check=False, env={"FLASHDD_DATA_ROOT": str(cifar10.path.parent)})
    assert res.returncode != 0 and "one per member" in res.stderr and not (tmp_path / "x").exists()


def test_bench_measures_an_ensemble_against_the_full_teacher(ensemble_dir, tmp_path):
    out = tmp_path / "bench.json"
    res = run_cli("bench", ensemble_dir, "--device", "cpu", "--batch", "4", "--warmup", "1", "--repeats", "2",
                  "--rep-seconds", "0", "--json", out, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(out.read_text())
    names = [t["name"] for t in report["targets"]]
    assert "labeler-fast-float32+channels_last+fold_bn" in names  # on CPU members run one by one
    assert report["teacher"]["name"] == "resnet18-full" and len(report["labeler"]["widths"]) == 3
    assert all(t["images_per_second"] > 0 for t in report["targets"])


def test_export_reexports_an_ensemble_folder(ensemble_dir, cifar10, images, tmp_path):
    env = {"FLASHDD_DATA_ROOT": str(cifar10.path.parent)}
    out = tmp_path / "again"
    res = run_cli("export", ensemble_dir, "--out", out, "--dataset", "cifar10", check=False, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    again = load_labeler(out)
    assert again.config.kind == "ensemble"
    assert torch.equal(again(images), load_labeler(ensemble_dir)(images))
    res = run_cli("export", ensemble_dir, "--out", tmp_path / "bad", "--dataset", "cifar10", "--kind", "teacher",
                  check=False, env=env)
    assert res.returncode != 0 and "kind 'ensemble'" in res.stderr and not (tmp_path / "bad").exists()
