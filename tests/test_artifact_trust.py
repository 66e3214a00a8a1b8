"""Artifact trust: labeler folders whose manifest was rewritten to match hostile or wrong files.

The manifest only proves the files are the ones it lists. Each case here edits a copy of a labeler,
recomputes the manifest with the project's own writer (so the folder is self-consistent), and checks
that loading refuses it with its own clear error, before the network's memory is allocated.

Hostile-artifact cases tried: 19; refused: 19, each with its own message (the issue's four rows
plus fifteen more). Config vs weights: stage width 2,000,000 (also run in a fresh process, peak memory
and time bounded), a width change with the weights header rewritten to match, 20,000 ensemble
members, a member added, member weights edited, weights stored as float64. Facts the weights fix:
num_classes 10 -> 7 with its class names, the top-level num_classes alone, 1 input channel, an input
size the ONNX graph does not take, an input size beyond the bound. ONNX: another interface, another
network with the same interface (onnx backend), external data, not ONNX at all. Paths: '../..',
absolute, a link leading out, a malformed manifest entry. Two more tests check what must still
load (links inside the folder, a Hugging Face cache snapshot) and that the ONNX verdict is cached.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import onnx
import pytest
import torch
from safetensors.torch import load_file, save_file

from flashdd_zoo import load_labeler
from flashdd_zoo.artifact import agreement
from flashdd_zoo.artifact.config import InputSpec, LabelerConfig, read_config, write_config
from flashdd_zoo.errors import ArtifactError, ArtifactMismatchError, ArtifactPathError
from flashdd_zoo.exporters import write_manifest
from flashdd_zoo.exporters.manifest import listed_path, sha256_file
from flashdd_zoo.exporters.onnx_export import onnx_interface
from flashdd_zoo.exporters.weights import load_weights, read_weights_header, save_tensors
from flashdd_zoo.models import build_model, convnet_arch

FORMAT1 = Path(__file__).parent / "fixtures" / "format1"


@pytest.fixture
def copy_of(exported, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(exported, dst)
    return dst


def _fixture_copy(tmp_path: Path, kind: str) -> Path:
    dst = tmp_path / kind
    shutil.copytree(FORMAT1 / kind, dst)
    return dst


def _edit_config(folder: Path, edit) -> Path:
    """Apply `edit` to config.json, then rewrite the manifest to match (a self-consistent folder)."""
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    write_manifest(folder)
    return folder


def _list_in_manifest(folder: Path, rel: str, target: Path) -> None:
    """Add `rel` to the manifest with the real hash and size of `target` (what a hostile publisher would write)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][rel] = {"sha256": sha256_file(target), "bytes": target.stat().st_size}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _set_stage_width(config: dict, width: int) -> None:
    config["architecture"]["widths"]["stages"][0] = width


# -- 1. config and weights agree before anything is allocated ---------------------------------------
def test_huge_stage_width_names_the_first_differing_tensor(copy_of):
    _edit_config(copy_of, lambda c: _set_stage_width(c, 2_000_000))
    with pytest.raises(ArtifactMismatchError, match=r"tensor 'layer1.0.conv2.weight' is \(16, 16, 3, 3\) in the "
                       r"weights file but config.json implies \(2000000, 16, 3, 3\)"):
        load_labeler(copy_of)


def test_huge_stage_width_is_refused_quickly_with_bounded_memory(copy_of, exported, tmp_path):
    """In a fresh process: peak RSS after a normal load, then after the hostile one (16.7 GB before the fix)."""
    _edit_config(copy_of, lambda c: _set_stage_width(c, 2_000_000))
    script = textwrap.dedent("""
        import json, resource, sys, time
        from flashdd_zoo import load_labeler
        from flashdd_zoo.errors import ArtifactMismatchError
        load_labeler(sys.argv[1])  # imports and allocator warmed by a normal load
        before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
        try:
            load_labeler(sys.argv[2])
            refused = False
        except ArtifactMismatchError:
            refused = True
        print(json.dumps({"refused": refused, "seconds": time.perf_counter() - start,
                          "grew_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}))
    """)
    done = subprocess.run([sys.executable, "-c", script, str(exported), str(copy_of)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    weights_kib = (exported / "model.safetensors").stat().st_size / 1024
    assert result["refused"]
    assert result["grew_kib"] <= 2 * weights_kib, result  # ru_maxrss is in KiB on Linux
    assert result["seconds"] < 10, result


def test_width_change_with_the_weights_header_rewritten_to_match(copy_of):
    """The header's own architecture record is no proof either: the tensor shapes decide."""
    weights = copy_of / "model.safetensors"
    state = load_file(str(weights))
    config = json.loads((copy_of / "config.json").read_text())
    _set_stage_width(config, 24)
    save_file(state, str(weights), metadata={"format": "flashdd-zoo/labeler", "kind": config["kind"],
                                             "architecture": json.dumps(config["architecture"])})
    _edit_config(copy_of, lambda c: _set_stage_width(c, 24))
    with pytest.raises(ArtifactMismatchError, match=r"tensor 'layer1.0.conv2.weight' is \(16, 16, 3, 3\) .* "
                       r"implies \(24, 16, 3, 3\)"):
        load_labeler(copy_of)


def test_a_million_ensemble_members_are_refused_before_building(tmp_path):
    folder = _fixture_copy(tmp_path, "ensemble")

    def many(config):
        arch = config["architecture"]
        arch["members"] = [arch["members"][0]] * 20_000
        arch["weights"] = [1 / 20_000] * 20_000
        arch.pop("schedule", None)
    _edit_config(folder, many)
    start = time.perf_counter()
    with pytest.raises(ArtifactMismatchError, match="describes 20000 networks but .* holds only 244 tensors"):
        load_labeler(folder)
    assert time.perf_counter() - start < 20


def test_an_ensemble_member_added_to_config_is_refused(tmp_path):
    folder = _fixture_copy(tmp_path, "ensemble")

    def three(config):
        arch = config["architecture"]
        arch["members"].append(arch["members"][0])
        arch["weights"] = [1 / 3] * 3
        arch.pop("schedule", None)
    _edit_config(folder, three)
    with pytest.raises(ArtifactMismatchError, match="tensor 'members.2.conv1.weight' .* is not in the weights file"):
        load_labeler(folder)


def test_ensemble_weights_edited_are_refused_by_the_header_record(tmp_path):
    """Shapes cannot tell member weights apart; the header's record of the export can."""
    folder = _edit_config(_fixture_copy(tmp_path, "ensemble"),
                          lambda c: c["architecture"].__setitem__("weights", [0.9, 0.1]))
    with pytest.raises(ArtifactMismatchError, match="exported as 'ensemble' with another architecture"):
        load_labeler(folder)


def test_ensemble_weights_from_another_export_are_refused_by_path_and_fix(tmp_path):
    folder = _edit_config(_fixture_copy(tmp_path, "ensemble"),
                          lambda c: c["architecture"].__setitem__("weights", [0.9, 0.1]))
    with pytest.raises(ArtifactMismatchError, match=rf"^{re.escape(str(folder / 'model.safetensors'))} was exported as "
                       r"'ensemble' with another architecture than config\.json describes; the folder mixes two exports\. "
                       r"Export it again\.$"):
        load_labeler(folder)


def test_a_config_may_list_as_many_networks_as_the_weights_hold_tensors(tmp_path):
    """The cheap bound refuses only more networks than tensors; at the bound the shapes decide."""
    folder = _fixture_copy(tmp_path, "ensemble")

    def as_many(config):
        arch = config["architecture"]
        arch["members"] = [arch["members"][0]] * 244  # the fixture's weights hold 244 tensors
        arch["weights"] = [1 / 244] * 244
        arch.pop("schedule", None)
    _edit_config(folder, as_many)
    with pytest.raises(ArtifactMismatchError, match=r"tensor 'members\.2\.conv1\.weight' .* is not in the weights file"):
        load_labeler(folder)


def test_a_config_input_the_network_cannot_take_is_refused_naming_why(tmp_path):
    folder = _fixture_copy(tmp_path, "pruned")

    def one_channel(config):
        inp = config["input"]
        inp["channels"], inp["mean"], inp["std"] = 1, inp["mean"][:1], inp["std"][:1]
    _edit_config(folder, one_channel)
    with pytest.raises(ArtifactMismatchError) as e:
        load_labeler(folder)
    assert str(e.value) == (f"config.json's input (1-channel 8x8 images) does not fit the network "
                            f"{folder / 'model.safetensors'} holds ({str(e.value.__cause__).splitlines()[0]}). "
                            "Export the labeler again.")
    assert isinstance(e.value.__cause__, RuntimeError) and "channel" in str(e.value.__cause__)


def test_a_network_giving_other_than_one_logit_per_class_name_is_refused(tmp_path):
    # not reachable by editing a folder (config.json's class count is the network's); checked all the same
    config = read_config(FORMAT1 / "pruned")  # 3 classes, 3-channel 8x8 images
    net = build_model(convnet_arch(5, 8, depth=1, width=8))
    with pytest.raises(ArtifactMismatchError, match=r"^the network /x/model\.safetensors holds gives \(5,\) outputs per "
                       r"image but config\.json names 3 classes\. Export the labeler again\.$"):
        agreement.check_input_output(net, config, Path("/x/model.safetensors"))


def test_a_weights_file_not_matching_config_is_refused_with_the_fix(tmp_path):
    folder = _fixture_copy(tmp_path, "pruned")
    weights = _rewrite_weights(folder, lambda state: {**state, "zz.extra": torch.zeros(3)})
    with pytest.raises(ArtifactMismatchError) as e:
        load_labeler(folder)
    assert str(e.value) == (f"{weights} does not match config.json: the weights file holds tensor 'zz.extra' that "
                            "config.json has no place for. The weights and config.json must come from the same export; "
                            "export the labeler again.")


def _rewrite_weights(folder: Path, edit) -> Path:
    """Replace model.safetensors by edit(its tensors), keeping its header metadata; rewrite the manifest to match."""
    weights = folder / "model.safetensors"
    save_tensors(edit(load_file(str(weights))), weights, read_weights_header(weights).metadata)
    write_manifest(folder)
    return weights


def test_weights_stored_in_another_dtype_are_refused(tmp_path):
    folder = _fixture_copy(tmp_path, "pruned")
    _rewrite_weights(folder, lambda state: {k: (v.double() if v.is_floating_point() else v) for k, v in state.items()})
    with pytest.raises(ArtifactMismatchError, match=r"dtype mismatches \['conv1.weight: file torch.float64 vs config "
                       r"torch.float32'"):
        load_labeler(folder)


def test_extra_tensors_in_the_weights_file_are_refused_by_name(tmp_path):
    folder = _fixture_copy(tmp_path, "pruned")
    weights = _rewrite_weights(folder, lambda state: {**state, "zz.extra": torch.zeros(3), "zz.more": torch.zeros(2)})
    with pytest.raises(ArtifactMismatchError, match=rf"^{re.escape(str(weights))} does not match config.json: the "
                       r"weights file holds tensor 'zz\.extra' \(and 1 more\) that config.json has no place for\. "):
        load_labeler(folder)


def test_a_weights_file_that_is_not_safetensors_is_refused_by_name(tmp_path):
    folder = _fixture_copy(tmp_path, "pruned")
    weights = folder / "model.safetensors"
    weights.write_bytes(b"\x10" + bytes(7) + b"{not a header}")
    write_manifest(folder)
    with pytest.raises(ArtifactError, match=rf"^{re.escape(str(weights))} is not a readable safetensors file: "):
        load_labeler(folder)
    with pytest.raises(ArtifactError, match=rf"^{re.escape(str(weights))} is not a readable safetensors file: "):
        load_weights(build_model(convnet_arch(10, 32, depth=1, width=8)), weights)


def test_load_weights_lists_every_kind_of_difference(tmp_path):
    net = build_model(convnet_arch(10, 32, depth=2, width=8))
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("layers.1.") and k != "fc.bias"}
    state.update({"extra.weight": torch.zeros(1), "fc.weight": torch.zeros(10, 256),
                  "layers.0.conv.bias": torch.zeros(8, dtype=torch.float64)})
    path = tmp_path / "other.safetensors"
    save_file(state, str(path))
    expected = (f"{path} does not match the architecture in config.json: missing ['fc.bias', 'layers.1.conv.bias', "
                "'layers.1.conv.weight', 'layers.1.norm.bias']; unexpected ['extra.weight']; shape mismatches "
                "['fc.weight: file (10, 256) vs config (10, 512)']; dtype mismatches ['layers.0.conv.bias: file "
                "torch.float64 vs config torch.float32']. The weights and config.json must come from the same export.")
    with pytest.raises(ArtifactMismatchError) as e:
        load_weights(net, path)
    assert str(e.value) == expected


def test_saved_weights_have_one_byte_form_whatever_the_metadata_order(tmp_path):
    tensors = {"b": torch.arange(3.0), "a": torch.ones(2, 2)}
    metadata = {f"key{i}": i for i in range(8)} | {"name": "naïve café"}  # values: JSON, and UTF-8 text as it is
    save_tensors(tensors, tmp_path / "one.safetensors", metadata)
    save_tensors(tensors, tmp_path / "two.safetensors", dict(reversed(metadata.items())))
    one = (tmp_path / "one.safetensors").read_bytes()
    assert one == (tmp_path / "two.safetensors").read_bytes()
    size = int.from_bytes(one[:8], "little")
    assert list(json.loads(one[8:8 + size])["__metadata__"]) == sorted(metadata)
    header = read_weights_header(tmp_path / "one.safetensors")
    assert header.metadata == {**{f"key{i}": str(i) for i in range(8)}, "name": "naïve café"}
    assert header.shapes == {"a": (2, 2), "b": (3,)}
    assert all(torch.equal(load_file(str(tmp_path / "one.safetensors"))[k], v) for k, v in tensors.items())


def test_saved_weights_pad_their_header_after_the_json_as_the_safetensors_format_says(tmp_path):
    """The format: 8 bytes of header length, the JSON header, padded with trailing spaces (0x20)."""
    save_tensors({"a": torch.ones(3)}, tmp_path / "w.safetensors", {"name": "x" * 5})
    blob = (tmp_path / "w.safetensors").read_bytes()
    size = int.from_bytes(blob[:8], "little")
    header = blob[8:8 + size]
    assert header[:1] == b"{" and header.rstrip(b" ").endswith(b"}") and size % 8 == 0
    assert json.loads(header) == json.loads(header.rstrip(b" "))


def test_a_header_that_would_grow_when_rewritten_is_refused_rather_than_shifting_the_tensors():
    from flashdd_zoo.exporters.weights import _canonical_header

    header = b'{"a":1E2}'  # read back as 100.0, which writes longer than "1E2": the offsets would move
    with pytest.raises(ArtifactError) as e:
        _canonical_header(len(header).to_bytes(8, "little") + header + b"\0" * 4)
    assert str(e.value) == "internal: the canonical safetensors header came out longer than the original."


# -- 2. every fact config.json states that the weights determine -----------------------------------
def test_num_classes_edited_with_its_class_names(copy_of):
    def seven(config):
        config["num_classes"] = config["architecture"]["num_classes"] = 7
        config["class_names"] = config["class_names"][:7]
    _edit_config(copy_of, seven)
    with pytest.raises(ArtifactMismatchError, match=r"tensor 'fc.weight' is \(10, 128\) in the weights file but "
                       r"config.json implies \(7, 128\)"):
        load_labeler(copy_of)


def test_top_level_num_classes_disagreeing_with_the_architecture(copy_of):
    _edit_config(copy_of, lambda c: c.__setitem__("num_classes", 7))
    with pytest.raises(ArtifactMismatchError, match="says num_classes 7 but its architecture has 10 classes"):
        load_labeler(copy_of)


def test_input_channels_the_weights_do_not_take(copy_of):
    def gray(config):
        config["input"].update(channels=1, mean=[0.5], std=[0.25])
    _edit_config(copy_of, gray)
    with pytest.raises(ArtifactMismatchError, match=r"config.json's input \(1-channel 32x32 images\) does not fit "
                       r"the network .*model.safetensors holds"):
        load_labeler(copy_of)


def test_input_size_the_onnx_graph_does_not_take(copy_of):
    _edit_config(copy_of, lambda c: c["input"].update(size=[40, 40]))
    with pytest.raises(ArtifactMismatchError, match=r"model.onnx maps \{'images': \['any', 3, 32, 32\]\} .* "
                       r"config.json describes \{'images': \['any', 3, 40, 40\]\}"):
        load_labeler(copy_of)


def test_input_size_beyond_the_bound(copy_of):
    _edit_config(copy_of, lambda c: c["input"].update(size=[100_000, 100_000]))
    with pytest.raises(ArtifactError, match=r"input size \(100000, 100000\) must be 1 to 1024 pixels a side"):
        load_labeler(copy_of)


def test_a_format1_config_is_read_and_written_back_field_for_field(tmp_path):
    text = (FORMAT1 / "pruned" / "config.json").read_text()
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2) + "\n"  # the committed layout, which write_config keeps
    write_config(tmp_path, read_config(FORMAT1 / "pruned"))
    expected = {k: v for k, v in doc.items() if k != "metrics"}  # format 1 kept the metrics in config.json
    assert (tmp_path / "config.json").read_text() == json.dumps(expected, indent=2) + "\n"
    upgraded = read_config(tmp_path).upgraded().to_json()
    assert upgraded == {**expected, "format_version": 2}


@pytest.mark.parametrize("edit, message", [
    (lambda d: "{", "{path} is not valid JSON: "),
    (lambda d: [d], "{path} is not a flashdd-zoo labeler config (format != 'flashdd-zoo/labeler')."),
    (lambda d: {**d, "format": "flashdd-zoo/checkpoint"},
     "{path} is not a flashdd-zoo labeler config (format != 'flashdd-zoo/labeler')."),
    (lambda d: {**d, "format_version": "2"}, "{folder} was written in artifact format version '2' (by flashdd-zoo "
     "0.1.0); this flashdd-zoo reads up to version 2. Upgrade: pip install -U flashdd-zoo."),
    (lambda d: {k: v for k, v in d.items() if k != "input"},
     "{path} is missing or has a malformed field (KeyError('input')); export the labeler again."),
    (lambda d: {**d, "temperature": "warm"}, "{path} is missing or has a malformed field (ValueError("),
    (lambda d: {**d, "class_names": d["class_names"][:2]}, "2 class names for a 3-class network."),
    (lambda d: {**d, "input": {**d["input"], "std": [0.2, 0.2]}},
     "input mean (0.4914, 0.4822, 0.4465) and std (0.2, 0.2) must give one value per channel (3)."),
])
def test_a_config_json_that_is_not_a_valid_config_is_refused_naming_why(tmp_path, edit, message):
    folder = _fixture_copy(tmp_path, "pruned")
    path = folder / "config.json"
    doc = edit(json.loads(path.read_text()))
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(ArtifactError) as e:
        read_config(folder)
    assert str(e.value).startswith(message.format(path=path, folder=folder))


def test_a_folder_without_config_json_is_not_a_labeler_folder(tmp_path):
    folder = _fixture_copy(tmp_path, "pruned")
    (folder / "config.json").unlink()
    with pytest.raises(ArtifactError) as e:
        read_config(folder)
    assert str(e.value) == (f"{folder / 'config.json'} is missing: {folder} is not a flashdd-zoo labeler folder "
                            "(expected config.json, model.safetensors, model.onnx, README.md, metrics.json).")


def test_input_sides_and_channels_at_their_bounds():
    gray = ((0.5,), (0.25,))
    assert InputSpec((1, 1024), *gray, channels=1).size == (1, 1024)  # the smallest and largest side, one channel
    for size in ((0, 8), (8, 1025)):
        with pytest.raises(ArtifactError, match=rf"^input size \({size[0]}, {size[1]}\) must be 1 to 1024 pixels"):
            InputSpec(size, *gray, channels=1)
    with pytest.raises(ArtifactError, match=r"^input mean \(\) and std \(\) must give one value per channel \(0\)\.$"):
        InputSpec((8, 8), (), (), channels=0)


def test_a_new_config_labels_at_rdeds_temperature_unless_told(tmp_path):
    doc = json.loads((FORMAT1 / "pruned" / "config.json").read_text())
    common = dict(name="x", kind="pruned", architecture=doc["architecture"], class_names=doc["class_names"],
                  resolution=8, mean=(0.5,) * 3, std=(0.25,) * 3)
    assert LabelerConfig.create(**common).temperature == 20.0
    made = LabelerConfig.create(**common, temperature=4, lineage={"ipc": 1}, plots=["curve.png"])
    assert (made.temperature, made.lineage, made.plots, made.input.size) == (4.0, {"ipc": 1}, ("curve.png",), (8, 8))
    assert made.to_json()["output"] == {"type": "logits", "soft_labels": "softmax(logits / temperature)"}


def test_a_config_reads_back_equal_to_the_one_written(tmp_path):
    """Every field survives config.json, including the lineage, plots and versions a reader passes on."""
    doc = json.loads((FORMAT1 / "pruned" / "config.json").read_text())
    made = LabelerConfig.create(name="x", kind="pruned", architecture=doc["architecture"], class_names=doc["class_names"],
                                resolution=8, mean=(0.5,) * 3, std=(0.25,) * 3, temperature=4,
                                lineage={"ipc": 1, "teacher": "t"}, plots=["curve.png", "tau.png"])
    write_config(tmp_path, made)
    assert read_config(tmp_path) == made


def test_a_config_without_its_optional_fields_reads_with_their_defaults():
    """num_classes (redundant with the architecture), the writer's version, lineage and plots may be absent;
    a too-new format then says the writer's version is unknown, and names the source it was given."""
    doc = json.loads((FORMAT1 / "pruned" / "config.json").read_text())
    for key in ("num_classes", "flashdd_zoo_version", "lineage", "plots"):
        doc.pop(key)
    config = LabelerConfig.from_json(doc)
    assert (config.num_classes, config.flashdd_zoo_version, config.lineage, config.plots) == (3, "?", {}, ())
    with pytest.raises(ArtifactError) as e:
        LabelerConfig.from_json({**doc, "format_version": 99}, "org/lab@v1")
    assert str(e.value) == ("org/lab@v1 was written in artifact format version 99 (by flashdd-zoo ?); this flashdd-zoo "
                            "reads up to version 2. Upgrade: pip install -U flashdd-zoo.")


def test_onnx_of_another_interface_is_refused_even_for_torch(copy_of):
    shutil.copy(FORMAT1 / "pruned" / "model.onnx", copy_of / "model.onnx")  # 3 classes, 8x8 images
    write_manifest(copy_of)
    with pytest.raises(ArtifactMismatchError, match=r"model.onnx maps \{'images': \['any', 3, 8, 8\]\} to "
                       r"\{'logits': \['any', 3\]\}"):
        load_labeler(copy_of)


def test_onnx_of_another_network_with_the_same_interface(tmp_path, monkeypatch):
    """Same inputs and outputs, another function: only running both tells, so the onnx backend does."""
    folder = _fixture_copy(tmp_path, "pruned")
    shutil.copy(FORMAT1 / "ensemble" / "model.onnx", folder / "model.onnx")
    write_manifest(folder)
    monkeypatch.setattr(agreement, "_AGREED", set())
    load_labeler(folder)  # the torch backend never runs the ONNX file
    with pytest.raises(ArtifactMismatchError, match="model.onnx computes another function than .*model.safetensors: "
                       r"max \|onnx - torch\| = .* on a fixed probe batch"):
        load_labeler(folder, backend="onnx")


def test_onnx_verdict_is_computed_once_per_file(tmp_path, monkeypatch):
    folder = _fixture_copy(tmp_path, "pruned")
    monkeypatch.setattr(agreement, "_AGREED", set())
    calls = []
    real = agreement.parity
    monkeypatch.setattr(agreement, "parity", lambda *a: calls.append(1) or real(*a))
    load_labeler(folder, backend="onnx")
    load_labeler(folder, backend="onnx")
    assert len(calls) == 1


def test_onnx_reading_external_data_is_refused(tmp_path):
    folder = _fixture_copy(tmp_path, "pruned")
    model = onnx.load(str(folder / "model.onnx"))
    onnx.save_model(model, str(folder / "model.onnx"), save_as_external_data=True, location="weights.bin",
                    size_threshold=0)
    write_manifest(folder)  # lists weights.bin too: still not a self-contained ONNX file
    with pytest.raises(ArtifactError, match="reads tensors from files outside it"):
        load_labeler(folder)


def test_an_onnx_file_with_external_data_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "model.onnx"
    model = onnx.load(str(Path(__file__).parent / "fixtures" / "format1" / "pruned" / "model.onnx"))
    onnx.save_model(model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0)
    with pytest.raises(ArtifactError, match=rf"^{re.escape(str(path))} reads tensors from files outside it \(ONNX "
                       r"external data\); a labeler's ONNX file is self-contained\. Export the labeler again\.$"):
        onnx_interface(path)


def test_a_file_that_is_not_onnx(tmp_path):
    folder = _fixture_copy(tmp_path, "pruned")
    (folder / "model.onnx").write_bytes(b"\x08\x07garbage" * 10)
    write_manifest(folder)
    with pytest.raises(ArtifactError, match="is not a readable ONNX file"):
        load_labeler(folder)


# -- 3. manifest paths: one rule for local folders and Hub downloads --------------------------------
@pytest.mark.parametrize("rel", ["../../../../../../../../etc/hostname", "/etc/hostname"])
def test_manifest_paths_leaving_the_folder(tmp_path, rel):
    folder = _fixture_copy(tmp_path, "pruned")
    _list_in_manifest(folder, rel, Path("/etc/hostname"))
    with pytest.raises(ArtifactPathError, match=f"lists '{rel}', a path outside the labeler folder"):
        load_labeler(folder)
    from flashdd_zoo.loaders.hub import _listed_files  # the Hub's first step, before any download

    with pytest.raises(ArtifactPathError, match=f"lists '{rel}', a path outside the labeler folder"):
        _listed_files(folder)


def test_a_symlink_leading_out_of_the_folder(tmp_path):
    folder = _fixture_copy(tmp_path, "pruned")
    outside = tmp_path / "elsewhere.md"
    shutil.move(folder / "README.md", outside)
    (folder / "README.md").symlink_to(outside)
    write_manifest(folder)
    with pytest.raises(ArtifactPathError, match=r"README.md links to .*elsewhere.md, outside the labeler folder"):
        load_labeler(folder)


def test_malformed_manifest_entry(tmp_path):
    folder = _fixture_copy(tmp_path, "pruned")
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"]["model.onnx"]["bytes"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="manifest.json is not a valid manifest"):
        load_labeler(folder)


def test_write_manifest_keeps_the_format1_layout_and_hashes_every_artifact_file(tmp_path):
    folder = _fixture_copy(tmp_path, "pruned")
    committed = (folder / "manifest.json").read_bytes()
    (folder / "manifest.json").unlink()
    write_manifest(folder)
    assert (folder / "manifest.json").read_bytes() == committed  # same bytes: old artifacts and Hub copies agree

    (folder / ".DS_Store").write_bytes(b"finder")  # hidden files are no part of an artifact
    (folder / "plots").mkdir()
    (folder / "plots" / "curve.png").write_bytes(b"\x89PNG" * 3)
    returned = write_manifest(folder)
    written = json.loads((folder / "manifest.json").read_text())
    assert returned == written and written["algorithm"] == "sha256"
    listed = ["README.md", "config.json", "model.onnx", "model.safetensors", "plots/curve.png"]
    assert written["files"] == {rel: {"sha256": hashlib.sha256((folder / rel).read_bytes()).hexdigest(),
                                      "bytes": len((folder / rel).read_bytes())} for rel in listed}


def test_a_folder_without_a_manifest_is_refused_with_the_fix(tmp_path):
    folder = _fixture_copy(tmp_path, "pruned")
    (folder / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match=rf"^{re.escape(str(folder))} has no manifest\.json; it is not a complete "
                       r"flashdd-zoo labeler \(re-export it with `flashdd-zoo export`\)\.$"):
        load_labeler(folder)


@pytest.mark.parametrize("edit, problem", [
    (lambda m: m.update(algorithm="md5"), "algorithm 'md5', but flashdd-zoo checks sha256 only"),
    (lambda m: m["files"]["model.onnx"].update(bytes="97791"), "needs a sha256 string and a bytes count"),
    (lambda m: m["files"]["model.onnx"].update(sha256=None), "needs a sha256 string and a bytes count"),
    (lambda m: m.update(files=["model.onnx"]), ""),
])
def test_a_manifest_of_another_shape_is_refused(tmp_path, edit, problem):
    folder = _fixture_copy(tmp_path, "pruned")
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=rf"^{re.escape(str(folder / 'manifest.json'))} is not a valid manifest: "
                       rf".*{re.escape(problem)}"):
        load_labeler(folder)


@pytest.mark.parametrize("rel", ["plots//README.md", "./README.md", "plots\\README.md", "C:README.md"])
def test_manifest_entries_must_be_plain_relative_posix_paths(tmp_path, rel):
    folder = _fixture_copy(tmp_path, "pruned")
    _list_in_manifest(folder, rel, folder / "README.md")
    with pytest.raises(ArtifactPathError, match=f"lists {re.escape(repr(rel))}, a path outside the labeler folder"):
        load_labeler(folder)


def test_path_refusals_say_whole_what_to_do(tmp_path):
    """Both refusals end with the fix, word for word (the tests above match only their first part)."""
    folder = tmp_path / "lab"
    folder.mkdir()
    with pytest.raises(ArtifactPathError) as outside_rel:
        listed_path(folder, "../x.md")
    assert str(outside_rel.value) == (f"{folder / 'manifest.json'} lists '../x.md', a path outside the labeler folder; "
                                      "refusing this artifact. A labeler's manifest names only files inside its folder.")
    (folder / "README.md").symlink_to(tmp_path / "elsewhere.md")
    (tmp_path / "elsewhere.md").write_text("x")
    with pytest.raises(ArtifactPathError) as outside_link:
        listed_path(folder, "README.md")
    assert str(outside_link.value) == (f"{folder / 'README.md'} links to {(tmp_path / 'elsewhere.md').resolve()}, "
                                       "outside the labeler folder; refusing this artifact. Replace the link by a copy "
                                       "of the file (and rewrite the manifest).")


def test_a_dangling_link_out_of_the_folder_is_refused_too(tmp_path):
    """A link to a file that does not exist (yet) outside the folder is refused like any other way out: a
    download or a rewrite through it would land outside."""
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "model.onnx").symlink_to(tmp_path / "not-there" / "model.onnx")
    with pytest.raises(ArtifactPathError, match=r"model\.onnx links to .*not-there/model\.onnx, outside the labeler"):
        listed_path(folder, "model.onnx")
    assert listed_path(folder, "README.md") == folder / "README.md"  # a plain file not yet written is fine


def test_links_that_stay_inside_are_fine(tmp_path):
    """A link within the folder, and the layout of a Hugging Face cache snapshot (links into its blob store)."""
    repo = tmp_path / "models--org--lab"
    folder = repo / "snapshots" / "0123abc"
    shutil.copytree(FORMAT1 / "pruned", folder)
    (repo / "blobs").mkdir()
    for name in ("model.onnx", "model.safetensors"):
        shutil.move(folder / name, repo / "blobs" / name)
        (folder / name).symlink_to(Path("..", "..", "blobs", name))
    assert listed_path(folder, "model.onnx").resolve() == (repo / "blobs" / "model.onnx").resolve()
    load_labeler(folder)


def test_an_agreed_onnx_file_does_not_vouch_for_other_weights(tmp_path, monkeypatch):
    """The once-per-process verdict is keyed on every file that defines the torch function: the same
    ONNX file beside edited weights (manifest rewritten) is checked again and refused."""
    monkeypatch.setattr(agreement, "_AGREED", set())
    good = _fixture_copy(tmp_path, "pruned")
    load_labeler(good, backend="onnx")
    edited = tmp_path / "edited"
    shutil.copytree(good, edited)
    weights = load_file(edited / "model.safetensors")
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.dim() == 4)
    weights[name] = weights[name] * -3.0
    save_file(weights, edited / "model.safetensors")
    write_manifest(edited)
    assert sha256_file(edited / "model.onnx") == sha256_file(good / "model.onnx")
    with pytest.raises(ArtifactMismatchError) as first:
        load_labeler(edited, backend="onnx")
    message = str(first.value)
    assert f"than {edited / 'model.safetensors'}: max |onnx - torch| = " in message
    assert message.endswith("The ONNX file belongs to another network; export the labeler again.")
    with pytest.raises(ArtifactMismatchError) as second:  # a fixed probe: the same numbers every time
        load_labeler(edited, backend="onnx")
    assert str(second.value) == message


def test_a_parity_failure_names_every_weights_file_of_the_folder(tmp_path, monkeypatch):
    """A folder can hold more than one .safetensors file (a projector's adapter and head): the refusal
    names each, so the user knows which files the ONNX file disagrees with."""
    monkeypatch.setattr(agreement, "_AGREED", set())
    folder = _fixture_copy(tmp_path, "pruned")
    weights = load_file(folder / "model.safetensors")
    save_file({"note": weights[next(iter(weights))]}, folder / "extra.safetensors")  # listed, never loaded
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.dim() == 4)
    weights[name] = weights[name] * -3.0
    save_file(weights, folder / "model.safetensors")
    write_manifest(folder)
    with pytest.raises(ArtifactMismatchError) as e:
        load_labeler(folder, backend="onnx")
    assert f"computes another function than {folder / 'extra.safetensors'}, {folder / 'model.safetensors'}: " \
        in str(e.value)


def test_an_onnx_file_onnxruntime_cannot_run_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(agreement, "_AGREED", set())
    folder = _fixture_copy(tmp_path, "pruned")
    model = onnx.load(str(folder / "model.onnx"))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    conv.op_type = "NoSuchOperator"  # same interface, a graph no runtime can execute
    onnx.save(model, str(folder / "model.onnx"))
    write_manifest(folder)
    with pytest.raises(ArtifactError, match=r"model.onnx does not run on a probe batch with onnxruntime: "):
        load_labeler(folder, backend="onnx")
