"""The labeler artifact: rebuild, ONNX parity, card numbers, bad inputs, atomic writes.

Self-consistent but hostile or wrong folders (a manifest rewritten to match) are in
tests/test_artifact_trust.py, whose docstring records the count of cases tried and refused.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
import yaml
from conftest import run_cli

from flashdd_zoo import load_labeler
from flashdd_zoo.artifact.config import read_config
from flashdd_zoo.cards import count_params, gflops_per_image
from flashdd_zoo.data import normalize
from flashdd_zoo.errors import ArtifactArgumentError, ArtifactError, ExportError, InputError
from flashdd_zoo.exporters import export_labeler, load_weights, write_manifest
from flashdd_zoo.loaders.hub import commit_of
from flashdd_zoo.loaders.local import (
    labeler_from_module,
    load_local_labeler,
    ort_providers,
    ort_uses_gpu,
    tensor_core_warning,
)
from flashdd_zoo.models import build_model, load_torchvision_resnet18, resnet18_arch
from flashdd_zoo.runtime.fast import FastOptions


def _x(cifar10, images):
    return normalize(images, cifar10.spec.mean, cifar10.spec.std)


def test_rebuild_from_config_is_bit_identical(exported, small_net, cifar10, cifar_val):
    labeler = load_labeler(exported)
    x = _x(cifar10, cifar_val.images)
    with torch.no_grad():
        assert torch.equal(labeler(x), small_net(x))
    assert labeler.num_params == count_params(small_net)
    assert labeler.storage_bytes == (exported / "model.safetensors").stat().st_size


def test_safetensors_header_carries_metadata(exported):
    from safetensors import safe_open

    with safe_open(str(exported / "model.safetensors"), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "flashdd-zoo/labeler" and meta["kind"] == "pruned"
    assert json.loads(meta["architecture"]) == json.loads((exported / "config.json").read_text())["architecture"]


def test_onnx_parity_on_real_images(exported, cifar10, cifar_val):
    metrics = json.loads((exported / "metrics.json").read_text())
    assert 0 <= metrics["onnx_max_abs_diff"] < 1e-4
    x = _x(cifar10, cifar_val.images[:7])  # a batch size the export never saw
    torch_out, onnx_out = load_labeler(exported)(x), load_labeler(exported, backend="onnx")(x)
    assert onnx_out.shape == (7, 10)
    assert (torch_out - onnx_out).abs().max() < 1e-4


def test_the_onnx_backend_resizes_when_asked_and_knows_its_folder(exported, cifar10, cifar_val):
    x40 = torch.nn.functional.interpolate(_x(cifar10, cifar_val.images[:3]), size=40, mode="bilinear")
    onnx_labeler = load_labeler(exported, backend="onnx", resize=True)
    assert onnx_labeler.backend == "onnx" and onnx_labeler.folder == exported
    assert (onnx_labeler(x40) - load_labeler(exported, resize=True)(x40)).abs().max() < 1e-4
    with pytest.raises(InputError, match="built for 32x32 images, got 40x40.*resize=True"):
        load_labeler(exported, backend="onnx")(x40)


def test_the_onnx_backend_carries_the_cards_measurements(exported):
    onnx_labeler = load_labeler(exported, backend="onnx")
    assert onnx_labeler.metrics == json.loads((exported / "metrics.json").read_text()) == load_labeler(exported).metrics
    assert onnx_labeler.num_params == count_params(load_labeler(exported).net) and onnx_labeler.storage_bytes == (
        exported / "model.safetensors").stat().st_size


def test_fast_true_from_load_labeler_takes_the_cpu_fast_path(exported, cifar10, cifar_val):
    """On the CPU, fast=True means float32, channels_last and folded BatchNorm (runtime/fast.resolve_options)."""
    fast, plain = load_labeler(exported, fast=True), load_labeler(exported)
    assert fast.options == FastOptions(channels_last=True, fold_bn=True) and plain.options == FastOptions()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.net.modules())
    x = _x(cifar10, cifar_val.images[:4])
    assert (fast(x) - plain(x)).abs().max() < 1e-4


def test_a_projector_folder_stores_no_onnx_and_the_onnx_backend_says_how_to_make_one(exported, tmp_path):
    folder = tmp_path / "projector"  # a projector on a zoo backbone: only its adapter and head are stored
    run_cli("projector", "--dataset", "cifar10", "--backbone", f"flashdd-zoo:{exported}", "--conv-rank", "4",
            "--weak-teachers", exported, "--out", folder, "--train-per-class", "3", "--val-per-class", "2",
            "--epochs", "1", "--batch-size", "16")
    assert not (folder / "model.onnx").exists() and load_labeler(folder).config.kind == "projector"
    with pytest.raises(ArtifactArgumentError) as e:
        load_labeler(folder, backend="onnx")
    assert str(e.value) == (f"{folder} stores no model.onnx (a projector folder may leave it out); write one with "
                            f"`flashdd-zoo export {folder} --out DIR` and load DIR instead.")


def test_soft_labels_are_tempered_probabilities(exported, cifar10, cifar_val):
    labeler = load_labeler(exported)
    x = _x(cifar10, cifar_val.images[:5])
    p4, p1 = labeler.soft_labels(x, temperature=4.0), labeler.soft_labels(x, temperature=1.0)
    assert torch.allclose(p4.sum(1), torch.ones(5))
    assert torch.allclose(p4, torch.softmax(labeler(x) / 4.0, 1))
    assert (p4.max(1).values <= p1.max(1).values + 1e-6).all()  # higher T is flatter


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_card_numbers_match_recomputation(exported):
    card = (exported / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["library_name"] == "flashdd-zoo" and "cifar10" in meta["datasets"]
    net = load_labeler(exported).net
    params = count_params(net)
    gflops = gflops_per_image(net, 32)
    size = (exported / "model.safetensors").stat().st_size
    fl = meta["flashdd"]
    assert fl["params"] == params and fl["weights_bytes"] == size
    assert abs(fl["gflops"] - gflops) < 1e-9
    assert f"| parameters | {params:,} |" in card
    assert f"| weights on disk (model.safetensors) | {size:,} bytes |" in card
    assert f"| GFLOPs per image at 32x32 | {gflops:.4f} |" in card
    assert f"{100 * params / 11_173_962:.2f}%" in card
    assert "37.00% ± 0.50 (3 seeds)" in card  # tau(D_S) as given by the build
    results = meta["model-index"][0]["results"]
    assert any(r["metrics"][0]["value"] == 37.0 for r in results)


@pytest.fixture
def copy_of(exported, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(exported, dst)
    return dst


def test_wrong_channels_and_resolution(exported, cifar10, cifar_val):
    labeler = load_labeler(exported)
    x = _x(cifar10, cifar_val.images[:2])
    with pytest.raises(InputError, match="expects 3-channel NCHW images, got 1 channels"):
        labeler(x[:, :1])
    with pytest.raises(InputError, match="built for 32x32 images, got 40x40.*resize=True"):
        labeler(torch.nn.functional.interpolate(x, size=40))
    with pytest.raises(InputError, match="normalised float images"):
        labeler(cifar_val.images[:2])
    resized = load_labeler(exported, resize=True)(torch.nn.functional.interpolate(x, size=40))
    assert resized.shape == (2, 10)


def test_missing_file_is_refused(copy_of):
    (copy_of / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match="model.onnx is missing"):
        load_labeler(copy_of)


def test_hash_mismatch_is_refused(copy_of):
    path = copy_of / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same size, one weight byte altered
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match its sha256"):
        load_labeler(copy_of)


def test_truncated_file_is_refused(copy_of):
    path = copy_of / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ArtifactError, match="truncated or altered"):
        load_labeler(copy_of)


def test_a_truncated_file_is_refused_with_its_size_the_manifests_and_what_to_do(copy_of):
    path = copy_of / "model.onnx"
    listed = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ArtifactError) as e:
        load_labeler(copy_of)
    assert str(e.value) == (f"{path} has {listed - 7} bytes but the manifest says {listed}: the file is truncated or "
                            "altered. Download or export the labeler again.")


def test_an_altered_file_of_the_same_size_is_refused_with_what_to_do(copy_of):
    path = copy_of / "model.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, another sha256
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError) as e:
        load_labeler(copy_of)
    assert str(e.value) == (f"{path} does not match its sha256 in manifest.json: the file was altered or corrupted. "
                            "Download or export the labeler again.")


def test_unknown_artifact_version_is_refused(copy_of):
    config = json.loads((copy_of / "config.json").read_text())
    config["format_version"] = 99
    (copy_of / "config.json").write_text(json.dumps(config))
    write_manifest(copy_of)  # a consistent folder, only from the future
    with pytest.raises(ArtifactError, match="format version 99.*Upgrade"):
        load_labeler(copy_of)


def test_weights_for_another_architecture_are_refused(copy_of, exported):
    wide = build_model(resnet18_arch(10, "cifar", scale=0.5))
    with pytest.raises(ArtifactError, match="shape mismatches"):
        load_weights(wide, exported / "model.safetensors")


def test_failed_export_keeps_previous_artifact(exported, tmp_path, small_net, cifar10, cifar_val, monkeypatch):
    target = tmp_path / "lab"
    shutil.copytree(exported, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def broken_parity(*a, **k):
        raise ExportError("simulated parity failure")

    monkeypatch.setattr("flashdd_zoo.exporters.artifact.check_parity", broken_parity)
    with pytest.raises(ExportError):
        export_labeler(small_net, target, name="x", kind="pruned", class_names=cifar10.class_names,
                       resolution=32, mean=cifar10.spec.mean, std=cifar10.spec.std,
                       sample_images=cifar_val.images)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab"]


def test_killed_export_leaves_no_half_artifact(tmp_path, cifar10):
    """SIGKILL an export mid-way: no labeler folder appears; the next export cleans up."""
    target = tmp_path / "lab"
    script = textwrap.dedent(f"""
        import time, flashdd_zoo.exporters.artifact as a
        from flashdd_zoo.data import resolve_dataset, load_split
        from flashdd_zoo.models import build_model, resnet18_arch
        real = a.export_onnx
        def slow(*args, **kw):
            real(*args, **kw); print("onnx-written", flush=True); time.sleep(60)
        a.export_onnx = slow
        ds = resolve_dataset("cifar10"); s = load_split(ds, "test", max_per_class=2)
        a.export_labeler(build_model(resnet18_arch(10, "cifar", 0.25)), {str(target)!r}, name="x",
            kind="pruned", class_names=ds.class_names, resolution=32, mean=ds.spec.mean,
            std=ds.spec.std, sample_images=s.images)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "FLASHDD_DATA_ROOT": str(cifar10.path.parent)})
    assert proc.stdout.readline().strip() == "onnx-written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not target.exists()
    leftovers = list(tmp_path.glob(".lab.tmp-*"))
    assert leftovers, "the killed export should have been writing into a temporary folder"
    with pytest.raises(ArtifactError):
        load_labeler(leftovers[0])  # no manifest: never mistaken for a labeler
    ds_images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    export_labeler(build_model(resnet18_arch(10, "cifar", 0.25)), target, name="x", kind="pruned",
                   class_names=cifar10.class_names, resolution=32, mean=cifar10.spec.mean,
                   std=cifar10.spec.std, sample_images=ds_images + 128)
    assert load_labeler(target).num_classes == 10
    assert not list(tmp_path.glob(".lab.tmp-*"))


def test_torchvision_weights_load_into_unpruned_config(tmp_path):
    tv = torchvision.models.resnet18().eval()
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(tv.state_dict(), path)
    ours = load_torchvision_resnet18(str(path)).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(ours(x), tv(x))
    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "r34.pth")
    with pytest.raises(ArtifactError, match="does not match ResNet-18"):
        load_torchvision_resnet18(str(tmp_path / "r34.pth"))


def test_same_weights_give_the_same_bytes_in_every_process(tmp_path, small_net):
    """safetensors writes its metadata map in a per-process random order; save_weights sorts it, so
    a weights file's sha256 (stage keys, build reports, manifests) names its content only."""
    from safetensors.torch import save_file

    from flashdd_zoo.exporters.weights import save_weights

    save_file({k: v.contiguous() for k, v in small_net.state_dict().items()}, str(tmp_path / "state.safetensors"))
    script = (
        "import sys, torch\n"
        "from flashdd_zoo.exporters.weights import save_weights\n"
        "from flashdd_zoo.models import build_model, resnet18_arch\n"
        "net = build_model(resnet18_arch(10, 'cifar', scale=0.25))\n"
        "from safetensors.torch import load_file\n"
        f"net.load_state_dict(load_file({str(tmp_path / 'state.safetensors')!r}))\n"
        "save_weights(net, sys.argv[1], {'format': 'f', 'kind': 'k', 'name': 'n', 'architecture': net.arch, 'v': 1})\n"
    )
    blobs = []
    for i in range(4):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / f"{i}.safetensors")], check=True)
        blobs.append((tmp_path / f"{i}.safetensors").read_bytes())
    assert len(set(blobs)) == 1
    save_weights(small_net, tmp_path / "here.safetensors", {"v": 1, "name": "n", "kind": "k", "format": "f",
                                                            "architecture": small_net.arch})
    assert (tmp_path / "here.safetensors").read_bytes() == blobs[0]  # insertion order does not matter either
    reloaded = load_weights(build_model(small_net.arch), tmp_path / "here.safetensors")
    for (k, a), b in zip(small_net.state_dict().items(), reloaded.state_dict().values()):
        assert torch.equal(a, b), k


# -- which onnxruntime provider runs the onnx backend, and labelers around in-memory networks ----------
@pytest.mark.parametrize("installed", [["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]])
def test_onnx_backend_takes_the_cuda_provider_only_for_a_cuda_device_with_onnxruntime_gpu(monkeypatch, installed):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(installed))
    gpu = "CUDAExecutionProvider" in installed
    for device in ("cuda", "cuda:1", torch.device("cuda", 0)):
        assert ort_providers(device) == (installed if gpu else ["CPUExecutionProvider"])
        assert ort_uses_gpu(device) is gpu
    for device in ("cpu", torch.device("cpu")):
        assert ort_providers(device) == ["CPUExecutionProvider"] and ort_uses_gpu(device) is False


def test_the_onnx_backend_opens_its_session_with_the_cuda_provider_for_a_cuda_device(monkeypatch, exported):
    """With onnxruntime-gpu installed (stood in for: this machine has the CPU build), load_labeler(device="cuda",
    backend="onnx") asks onnxruntime for CUDA first; device="cpu" for the CPU alone."""
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    asked, real = [], onnxruntime.InferenceSession
    monkeypatch.setattr(onnxruntime, "InferenceSession", lambda *a, **k: asked.append(k["providers"]) or real(
        *a, **{**k, "providers": ["CPUExecutionProvider"]}))  # the CPU build cannot open a CUDA session
    load_labeler(exported, backend="onnx", device="cuda")
    assert asked[-1] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    load_labeler(exported, backend="onnx", device="cpu")
    assert asked[-1] == ["CPUExecutionProvider"]


def test_a_labeler_around_an_in_memory_network_labels_like_its_export(small_net, exported, cifar10, cifar_val):
    before = {k: v.clone() for k, v in small_net.state_dict().items()}
    labeler = labeler_from_module(small_net, resolution=32, mean=cifar10.spec.mean, std=cifar10.spec.std,
                                  name="chain-member-3")
    images = normalize(cifar_val.images, cifar10.spec.mean, cifar10.spec.std)
    assert torch.equal(labeler.soft_labels(images), load_labeler(exported).soft_labels(images))
    assert labeler.config.name == "chain-member-3" and labeler.config.kind == "pruned"
    assert list(labeler.config.class_names) == [f"class_{i}" for i in range(10)]
    assert labeler.config.input.size == (32, 32) and labeler.folder is None
    assert labeler.metrics["params"] == sum(p.numel() for p in small_net.parameters())
    with torch.no_grad():  # the labeler runs a copy: changing it leaves the caller's network alone
        next(iter(labeler.net.parameters())).add_(1.0)
    assert all(torch.equal(v, before[k]) for k, v in small_net.state_dict().items())


def test_a_labeler_around_an_in_memory_network_takes_the_fast_path_and_labeler_options(small_net, cifar10, cifar_val):
    stats = dict(resolution=32, mean=cifar10.spec.mean, std=cifar10.spec.std)
    plain = labeler_from_module(small_net, **stats)
    assert plain.config.name == "in-memory" and plain.options == FastOptions() and plain.resize is False
    fast = labeler_from_module(small_net, fast=True, resize=True, **stats)
    assert (fast.options.channels_last, fast.options.fold_bn, fast.options.dtype) == (True, True, torch.float32)
    assert fast.resize is True  # a 40-px batch is resized, not refused
    images = normalize(cifar_val.images, cifar10.spec.mean, cifar10.spec.std)
    bigger = torch.nn.functional.interpolate(images, size=40, mode="bilinear")
    assert fast.soft_labels(bigger).shape == (len(images), 10)
    with pytest.raises(InputError, match="built for 32x32 images, got 40x40"):
        plain.soft_labels(bigger)


def test_a_labeler_loaded_for_raw_images_labels_them_like_its_own_normalised_ones(exported, cifar10, cifar_val):
    images = cifar_val.images[:16]
    own = load_labeler(exported)(normalize(images, cifar10.spec.mean, cifar10.spec.std))
    assert torch.allclose(load_labeler(exported, input_normalization="raw")(images.float() / 255), own, atol=1e-4)


@pytest.mark.parametrize("option", [dict(fast=True), dict(dtype="bfloat16"), dict(channels_last=False),
                                    dict(fold_bn=True), dict(fuse_normalization=False), dict(cuda_graphs=False),
                                    dict(compile=False), dict(graph_cache_size=4), dict(stack_members=False)])
def test_a_fast_path_option_with_the_onnx_backend_is_refused(exported, option):
    with pytest.raises(ArtifactArgumentError, match=r"^fast-path options \(fast, dtype, channels_last, fold_bn, "
                       r"fuse_normalization, cuda_graphs, compile, stack_members\) apply to backend='torch' only; "
                       r"drop them for 'onnx'\.$"):
        load_labeler(exported, backend="onnx", **option)


@pytest.mark.parametrize("option, field, value", [
    ("channels_last", "channels_last", True), ("fold_bn", "fold_bn", True), ("dtype", "dtype", torch.bfloat16),
    ("compile", "compile", "reduce-overhead"), ("stack_members", "stack_members", True),
    ("graph_cache_size", "graph_cache_size", 7), ("fuse_normalization", "fuse_normalization", True),
])
def test_each_fast_path_option_given_to_load_labeler_reaches_the_labeler(exported, option, field, value):
    options = load_labeler(exported, **{option: value}).options
    assert getattr(options, field) == value and getattr(FastOptions(), field) != value  # not the default by chance


def test_cuda_graphs_given_to_load_labeler_on_the_cpu_is_refused(exported):
    with pytest.raises(ArtifactArgumentError, match=r"^cuda_graphs=True needs a CUDA device, but the labeler is loaded "
                       r"on 'cpu'\. Load it with device='cuda', or drop cuda_graphs=True\.$"):
        load_labeler(exported, cuda_graphs=True)


def test_an_unknown_backend_or_a_missing_folder_is_refused_by_name(exported, tmp_path):
    with pytest.raises(ArtifactArgumentError, match=r"^unknown backend 'tvm'; choose one of \('torch', 'onnx'\)\.$"):
        load_labeler(exported, backend="tvm")
    for missing in (tmp_path / "nowhere", exported / "config.json"):  # nothing there, or a file
        with pytest.raises(ArtifactError, match=rf"^no labeler folder at {re.escape(str(missing))}\.$"):
            load_local_labeler(missing)


def test_only_a_reduced_precision_cuda_labeler_with_odd_channel_counts_is_warned_about(exported):
    odd = read_config(Path(__file__).parent / "fixtures" / "format1" / "pruned")  # widths 5, 4, 6, 3, ...
    bf16 = FastOptions(dtype=torch.bfloat16)
    message = tensor_core_warning(odd, bf16, "cuda:0")
    assert message.startswith("tiny-pruned: channel counts ['stem=5', 'layer1=4', 'layer2=4', 'layer3=6', ")
    assert message.endswith(", 'layer4.1.conv1=3'] are not multiples of 8; tensor-core kernels run far below peak on "
                            "them.")
    assert tensor_core_warning(odd, FastOptions(), "cuda") is None  # float32: no tensor-core tiling to miss
    assert tensor_core_warning(odd, bf16, "cpu") is None
    assert tensor_core_warning(read_config(exported), bf16, "cuda") is None  # quarter-width: multiples of 8


def test_the_tensor_core_warning_is_attributed_to_the_line_that_loaded_the_labeler(exported, small_net, cifar10,
                                                                                   monkeypatch):
    # whether to warn is tensor_core_warning's call (tested above; CUDA only): here it always says so
    monkeypatch.setattr("flashdd_zoo.loaders.local.tensor_core_warning", lambda config, options, device: f"{config.name} slow")
    stats = dict(resolution=32, mean=cifar10.spec.mean, std=cifar10.spec.std)
    name = read_config(exported).name
    for load, expected in ((lambda: load_labeler(exported), name), (lambda: load_local_labeler(exported), name),
                           (lambda: labeler_from_module(small_net, name="member", **stats), "member")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load()
        assert [(w.category, str(w.message), w.filename) for w in caught] == [(RuntimeWarning, f"{expected} slow", __file__)]


def test_a_bfloat16_labeler_on_the_cpu_labels_within_bfloat16_rounding_without_a_warning(exported, cifar10, cifar_val,
                                                                                        recwarn):
    x = normalize(cifar_val.images[:16], cifar10.spec.mean, cifar10.spec.std)
    half = load_labeler(exported, dtype="bfloat16")
    assert half.options.dtype == torch.bfloat16 and half(x).dtype == torch.float32
    assert torch.allclose(half(x), load_labeler(exported)(x), atol=0.1)  # bf16 keeps 8 mantissa bits
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_the_commit_of_a_folder_outside_the_hf_cache_is_unknown(tmp_path):
    assert commit_of(tmp_path / "models--org--lab" / "snapshots" / "0123abc" / "zoo" / "member") == "0123abc"
    assert commit_of(tmp_path / "zoo" / "member") == "?"
