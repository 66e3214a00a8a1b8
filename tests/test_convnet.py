"""ConvNet-Dn: rebuilt from pure JSON, usable as teacher, labeler and student, and pruned by torch-pruning."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli

from flashdd_zoo import load_labeler
from flashdd_zoo.artifact import read_config, read_metrics
from flashdd_zoo.cards.measure import count_params
from flashdd_zoo.data import normalize
from flashdd_zoo.errors import ArtifactError
from flashdd_zoo.exporters import export_labeler
from flashdd_zoo.models import architecture_of, build_model, convnet_arch, ensemble_arch, full_architecture, resnet18_arch
from flashdd_zoo.zoo.checkpoints import load_checkpoint, save_checkpoint
from flashdd_zoo.zoo.evaluate import EvalProtocol, train_student
from flashdd_zoo.zoo.prune import PruneConfig, prune_chain
from flashdd_zoo.zoo.students import build_student
from flashdd_zoo.zoo.teacher_training import TeacherRecipe, train_teacher


def _hand_count(widths: list[int], side: int, classes: int) -> int:
    """Parameters by hand: each 3x3 conv (with bias) + its affine norm, then Linear(C * side^2, classes)."""
    total, in_ch = 0, 3
    for w in widths:
        total += in_ch * w * 9 + w + 2 * w
        in_ch = w
    return total + in_ch * side * side * classes + classes


def _trained_like(arch: dict) -> torch.nn.Module:
    """A ConvNet whose norm affine parameters are not the identity (so the norm matters everywhere)."""
    torch.manual_seed(0)
    net = build_model(arch)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def test_convnet_d3_is_dcs_320010_parameter_network():
    arch = full_architecture("convnet-d3", 10, None, 32)
    assert arch == {"name": "convnet", "depth": 3, "widths": [128, 128, 128], "norm": "instance",
                    "num_classes": 10, "input_size": 32}
    assert count_params(build_model(arch)) == 320_010 == _hand_count([128] * 3, 4, 10)
    d5 = full_architecture("convnet-d5", 100, None, 64)  # 64 px halved 5 times: a 2x2 map
    assert count_params(build_model(d5)) == _hand_count([128] * 5, 2, 100)
    net = build_model(full_architecture("convnet-d4", 10, None, 32))
    assert len(net.layers) == 4 and net.fc.in_features == 128 * 2 * 2
    assert isinstance(net.layers[0].norm, torch.nn.InstanceNorm2d) and net.layers[0].norm.affine


def test_bad_convnet_configs_name_the_problem():
    with pytest.raises(ArtifactError, match="8 px images are too small \\(at least 16 px\\)"):
        build_model(convnet_arch(10, 8, depth=4))
    with pytest.raises(ArtifactError, match="unknown convnet norm 'layer'"):
        build_model({**convnet_arch(10, 32), "norm": "layer"})
    with pytest.raises(ArtifactError, match="depth 3 needs 3 positive widths"):
        build_model({**convnet_arch(10, 32), "widths": [8, 8]})


def test_checkpoint_rebuilds_from_json_and_safetensors(tmp_path, cifar10, cifar_val):
    net = _trained_like(convnet_arch(10, 32, width=16))
    save_checkpoint(tmp_path / "ck", net, {"epoch": 1})
    doc = json.loads((tmp_path / "ck" / "checkpoint.json").read_text())
    assert doc["architecture"]["widths"] == [16, 16, 16]  # the config is plain JSON
    back, _ = load_checkpoint(tmp_path / "ck")
    x = normalize(cifar_val.images[:8], cifar10.spec.mean, cifar10.spec.std)
    with torch.no_grad():
        assert torch.equal(back.eval()(x), net(x))


def test_exported_convnet_labeler_matches_torch_onnx_and_card(tmp_path, cifar10, cifar_val):
    net = _trained_like(convnet_arch(10, 32, width=16))
    out = export_labeler(net, tmp_path / "c", name="convnet-d3-cifar10", kind="teacher",
                         class_names=cifar10.class_names, resolution=32, mean=cifar10.spec.mean,
                         std=cifar10.spec.std, sample_images=cifar_val.images, lineage={"dataset": "cifar10"})
    metrics = read_metrics(out, read_config(out))
    assert metrics["params"] == _hand_count([16] * 3, 4, 10) and metrics["onnx_max_abs_diff"] < 1e-4
    x = normalize(cifar_val.images[:16], cifar10.spec.mean, cifar10.spec.std)
    with torch.no_grad():
        ref = net(x)
    assert torch.equal(load_labeler(out)(x), ref)
    assert torch.allclose(load_labeler(out, backend="onnx")(x), ref, atol=1e-4)
    assert torch.allclose(load_labeler(out, fast=True)(x), ref, atol=1e-4)  # nothing to fold: same function
    raw = load_labeler(out, input_normalization="raw")(cifar_val.images[:16].float() / 255)
    assert torch.allclose(raw, ref, atol=1e-4)  # normalisation folded into the first conv, borders included
    assert "convnet-d3 (instance norm, 32 px)" in (out / "README.md").read_text()
    assert "convnet-d3 (instance norm, 32 px)" in run_cli("info", out).stdout


def test_ensemble_of_convnets_runs_member_by_member_and_mixed_inputs_are_refused(tmp_path, cifar10, cifar_val):
    members = [_trained_like(convnet_arch(10, 32, width=8)) for _ in range(2)]
    arch = ensemble_arch([m.arch for m in members], [0.5, 0.5])
    ens = build_model(arch)
    for i, m in enumerate(members):
        ens.members[i].load_state_dict(m.state_dict())
    out = export_labeler(ens.eval(), tmp_path / "e", name="e", kind="ensemble", class_names=cifar10.class_names,
                         resolution=32, mean=cifar10.spec.mean, std=cifar10.spec.std, sample_images=cifar_val.images)
    x = normalize(cifar_val.images[:8], cifar10.spec.mean, cifar10.spec.std)
    with torch.no_grad():
        ref = (members[0](x) + members[1](x)) / 2
    # stack_members asks for the ResNet-only grouped rewrite: ConvNet members stay separate networks
    assert torch.allclose(load_labeler(out, stack_members=True)(x), ref, atol=1e-5)
    with pytest.raises(ArtifactError, match="must read one input the same way"):
        ensemble_arch([resnet18_arch(10, "cifar", 0.25), convnet_arch(10, 32, width=8)])


def test_students_by_name(cifar10):
    assert build_student("convnet-d4", 10, "cifar", 32).arch == full_architecture("convnet-d4", 10, None, 32)
    assert architecture_of(build_student("resnet18", 10, "cifar", 32).arch).name == "resnet18"


def test_convnet_teacher_trains_checkpoints_and_teaches_a_convnet_student(tmp_path, cifar10, cifar_val):
    from flashdd_zoo.data import load_split

    train = load_split(cifar10, "train", max_per_class=30, seed=0)
    recipe = TeacherRecipe(epochs=2, batch_size=100, lr=0.05, network="convnet-d3", width_scale=0.125)
    result = train_teacher(cifar10, tmp_path / "run", recipe, checkpoint_epochs=(1,), device="cpu", train=train,
                           val=cifar_val, show_progress=False)
    config = read_config(result.labeler_dir)
    assert config.architecture["name"] == "convnet" and config.architecture["widths"] == [16, 16, 16]
    assert set(result.checkpoints) == {1} and result.images_per_second > 0
    assert json.loads((tmp_path / "run" / "last" / "checkpoint.json").read_text())["recipe"]["network"] == "convnet-d3"
    teacher = load_labeler(result.labeler_dir)
    run = train_student(train, teacher, cifar10, EvalProtocol(epochs=1, batch_size=100, student="convnet-d3"), 0,
                        cifar_val, device="cpu")
    assert run.top1 is not None and run.label_seconds > 0


def test_default_recipe_json_is_unchanged_so_old_runs_resume():
    doc = TeacherRecipe().to_json()
    assert "network" not in doc and TeacherRecipe(network="convnet-d3").to_json()["network"] == "convnet-d3"


def test_pruning_chain_thins_convnet_with_instance_norm(tmp_path, cifar10, cifar_val):
    from flashdd_zoo.data import load_split

    train = load_split(cifar10, "train", max_per_class=10, seed=0)
    teacher = _trained_like(convnet_arch(10, 32, width=64))
    cfg = PruneConfig(param_fractions=(0.4, 0.15), finetune_epochs=1, finetune_batch_size=50)
    members = prune_chain(teacher, cifar10, train, cifar_val, cfg, tmp_path / "chain", device="cpu",
                          show_progress=False)
    assert len(members) == 2
    for member in members:
        widths = member.arch["widths"]
        assert all(w % 8 == 0 for w in widths) and sum(widths) < 3 * 64
        net, meta = load_checkpoint(member.path)  # strict load: the norms were pruned with their convs
        # a chain member can serve as a projector backbone without its dataset: it says what it takes
        assert meta["input"] == {"size": [32, 32], "mean": list(cifar10.spec.mean), "std": list(cifar10.spec.std)}
        for block, w in zip(net.layers, widths):
            assert block.conv.out_channels == block.norm.num_features == block.norm.weight.numel() == w
        assert member.params == count_params(net) == _hand_count(widths, 4, 10)
    assert members[1].params < members[0].params < count_params(teacher)
    out = export_labeler(net, tmp_path / "pruned", name="p", kind="pruned", class_names=cifar10.class_names,
                         resolution=32, mean=cifar10.spec.mean, std=cifar10.spec.std, sample_images=cifar_val.images)
    assert read_metrics(out, read_config(out))["onnx_max_abs_diff"] < 1e-4


def test_train_teacher_cli_offers_convnets():
    result = run_cli("train-teacher", "--help")
    assert "convnet-d3" in result.stdout and "convnet-d5" in result.stdout


def test_build_trains_prunes_and_exports_a_convnet(tmp_path):
    """The whole recipe on the embedded digits with a ConvNet-D3 teacher and ConvNet-D3 students."""
    out = tmp_path / "build"
    run_cli("build", "--preset", "smoke", "--network", "convnet-d3", "--student", "convnet-d3", "--teacher-epochs", "3",
            "--epochs", "3", "--window", "2", "--seeds", "0", "--finetune-epochs", "1", "--param-fractions", "0.5,0.2",
            "--out", out, "--device", "cpu")
    report = json.loads((out / "build-report.json").read_text())
    labeler = read_config(out / report["labeler_dir"].split("/")[-1])
    assert labeler.kind == "pruned" and labeler.architecture["name"] == "convnet"
    assert all(w % 8 == 0 for w in labeler.architecture["widths"]) and labeler.name.startswith("convnet-d3-digits")
    teacher = read_config(out / "work" / "teacher-run" / "teacher")
    assert teacher.architecture["widths"] == [64, 64, 64]  # the smoke preset's half width
    assert read_metrics(out / labeler.name, labeler)["params"] < count_params(build_model(teacher.architecture))
