"""Labeler kinds and architectures come from registries: every registered kind exports, loads and
renders a card; unknown names are refused with the list of known ones; errors are catchable by type."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from flashdd_zoo import load_labeler
from flashdd_zoo.artifact import read_config, read_metrics
from flashdd_zoo.artifact.refresh import update_metrics
from flashdd_zoo.data import normalize
from flashdd_zoo.errors import (
    ArgumentError,
    ArtifactError,
    FlashDDError,
    HubError,
    HubInvalidId,
    HubRepoNotFound,
    InputError,
)
from flashdd_zoo.exporters import export_labeler, verify_manifest, write_manifest
from flashdd_zoo.hub import check_repo_id
from flashdd_zoo.kinds import KINDS, get_kind
from flashdd_zoo.models import ARCHITECTURES, build_model, ensemble_arch, resnet18_arch

FORMAT1 = Path(__file__).parent / "fixtures" / "format1"


def _tiny(num_classes: int) -> dict:
    arch = resnet18_arch(num_classes, "cifar")
    arch["widths"] = {"stem": 4, "stages": [4, 4, 8, 8], "inner": [[4, 4], [4, 2], [8, 4], [8, 8]]}
    return arch


def _network_for(kind, num_classes: int):
    torch.manual_seed(0)
    arch = ensemble_arch([_tiny(num_classes)] * 2, [0.75, 0.25]) if kind.composite else _tiny(num_classes)
    return build_model(arch).eval()


@pytest.mark.parametrize("name", [k for k in KINDS if get_kind(k).standalone])  # projector: test_projector.py
def test_every_registered_kind_exports_loads_and_renders_a_card(name, tmp_path, cifar10, cifar_val):
    kind = get_kind(name)
    net = _network_for(kind, 10)
    out = export_labeler(net, tmp_path / name, name=f"tiny-{name}", kind=name, class_names=cifar10.class_names,
                         resolution=32, mean=cifar10.spec.mean, std=cifar10.spec.std,
                         sample_images=cifar_val.images[:8], lineage={"dataset": "cifar10", "ipc": 1})
    config = read_config(out)
    assert config.kind == name and config.format_version == 2
    metrics = read_metrics(out, config)
    assert "metrics" not in json.loads((out / "config.json").read_text())  # measurements live in metrics.json
    assert metrics["params"] == sum(p.numel() for p in net.parameters())
    assert sorted(verify_manifest(out)["files"]) == ["README.md", "config.json", "metrics.json", "model.onnx",
                                                     "model.safetensors"]
    labeler = load_labeler(out)
    x = normalize(cifar_val.images[:4], cifar10.spec.mean, cifar10.spec.std)
    with torch.no_grad():
        assert torch.equal(labeler(x), net(x))
    card = (out / "README.md").read_text()
    assert f"A **{name}** soft-label generator" in card and kind.describe(config) in card
    assert f"| parameters | {metrics['params']:,} |" in card


def test_unknown_or_unimplemented_kind_is_refused_with_the_known_ones(tmp_path, small_net, cifar10, cifar_val):
    known = ", ".join(KINDS)
    for name in ("sparse", "nonsense"):
        with pytest.raises(ArtifactError, match=f"unknown labeler kind '{name}'; this flashdd-zoo implements {known}") as e:
            get_kind(name)
        assert isinstance(e.value, ValueError) and isinstance(e.value, ArgumentError)
    with pytest.raises(ArgumentError, match=f"implements {known}"):
        export_labeler(small_net, tmp_path / "p", name="p", kind="sparse", class_names=cifar10.class_names,
                       resolution=32, mean=cifar10.spec.mean, std=cifar10.spec.std, sample_images=cifar_val.images)
    assert not (tmp_path / "p").exists()


def test_a_folder_naming_an_unknown_kind_is_refused_on_load(tmp_path):
    folder = tmp_path / "sparse"
    shutil.copytree(FORMAT1 / "pruned", folder)
    config = json.loads((folder / "config.json").read_text())
    config["kind"] = "sparse"
    (folder / "config.json").write_text(json.dumps(config))
    write_manifest(folder)
    with pytest.raises(ArtifactError, match=f"unknown labeler kind 'sparse'.*{', '.join(KINDS)}.*pip install -U"):
        load_labeler(folder)


def test_kind_and_architecture_must_fit(tmp_path, small_net, cifar10, cifar_val):
    ensemble = build_model(ensemble_arch([_tiny(10)] * 2))
    common = dict(class_names=cifar10.class_names, resolution=32, mean=cifar10.spec.mean, std=cifar10.spec.std,
                  sample_images=cifar_val.images)
    with pytest.raises(ArtifactError, match="kind 'teacher' does not fit a 'ensemble' network: export it as kind 'ensemble'"):
        export_labeler(ensemble, tmp_path / "a", name="a", kind="teacher", **common)
    with pytest.raises(ArtifactError, match="kind 'ensemble' does not fit a 'resnet18' network: export it as kind 'teacher' or "):
        export_labeler(small_net, tmp_path / "b", name="b", kind="ensemble", **common)


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ArtifactError, match="unknown architecture 'vgg11'; this version builds " +
                       ", ".join(repr(a) for a in ARCHITECTURES)):
        build_model({"name": "vgg11", "num_classes": 10})


def test_weights_from_another_export_are_refused(tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(FORMAT1 / "pruned", mixed)
    config = json.loads((mixed / "config.json").read_text())
    config["kind"] = "teacher"  # the weights header still says pruned
    (mixed / "config.json").write_text(json.dumps(config))
    write_manifest(mixed)
    with pytest.raises(ArtifactError, match="exported as 'pruned'.*Export it again"):
        load_labeler(mixed)


def test_updating_metrics_never_changes_config_json(tmp_path, exported):
    copy = tmp_path / "labeler"
    shutil.copytree(exported, copy)
    before = (copy / "config.json").read_bytes()
    update_metrics(copy, {"throughput_img_s": 123.0})
    assert (copy / "config.json").read_bytes() == before
    assert read_metrics(copy, read_config(copy))["throughput_img_s"] == 123.0
    assert "123 images/s" in (copy / "README.md").read_text()
    verify_manifest(copy, required=("metrics.json",))


def test_updating_metrics_of_a_format1_folder_moves_them_out_once(tmp_path):
    from safetensors.torch import load_file

    copy = tmp_path / "old"
    shutil.copytree(FORMAT1 / "pruned", copy)
    old_metrics = json.loads((copy / "config.json").read_text())["metrics"]
    update_metrics(copy, {"throughput_img_s": 7.0})
    config = read_config(copy)
    assert config.format_version == 2 and "metrics" not in json.loads((copy / "config.json").read_text())
    assert read_metrics(copy, config) == {**old_metrics, "throughput_img_s": 7.0}
    images = load_file(str(FORMAT1 / "expected.safetensors"))["images"]
    with torch.no_grad():  # the same machine's kernels on both sides: bit-identical
        assert torch.equal(load_labeler(copy)(images), load_labeler(FORMAT1 / "pruned")(images))


def test_errors_are_caught_by_type(exported):
    with pytest.raises(ValueError):  # a bad argument is a ValueError, and still the project's error
        load_labeler(exported, backend="tensorrt")
    with pytest.raises(FlashDDError):
        load_labeler(exported, backend="tensorrt")
    with pytest.raises(HubInvalidId) as e:
        check_repo_id("not a repo")
    assert isinstance(e.value, HubError) and isinstance(e.value, ValueError) and e.value.reason == "invalid_id"
    assert HubRepoNotFound("x").reason == "repo_not_found" and issubclass(InputError, ValueError)
