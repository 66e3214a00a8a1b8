"""The checks that guard users, exercised through the real checker with a broken input."""

import copy
import dataclasses
import json
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import flashdd_zoo.exporters.onnx_export as onnx_export
from flashdd_zoo.data import normalize
from flashdd_zoo.errors import ExportError
from flashdd_zoo.exporters.onnx_export import check_parity, export_onnx, onnx_interface, onnx_session
from flashdd_zoo.models import build_model, resnet18_arch
from flashdd_zoo.zoo.evaluate import EvalProtocol
from flashdd_zoo.zoo.stages import StageCache, digest


def _shift_initializer(src, dst, name_part: str, delta: float) -> None:
    """Copy an ONNX file with `delta` added to the first initializer whose name contains name_part."""
    model = onnx.load(str(src))
    for init in model.graph.initializer:
        if name_part in init.name:
            values = numpy_helper.to_array(init).copy()
            values += np.asarray(delta, dtype=values.dtype)
            init.CopyFrom(numpy_helper.from_array(values, init.name))
            break
    else:
        raise AssertionError(f"no initializer named like {name_part!r}")
    onnx.save(model, str(dst))


def test_onnx_parity_check_catches_a_perturbed_file(tmp_path, small_net, cifar_val):
    x = normalize(cifar_val.images[:16], (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    export_onnx(small_net, tmp_path / "model.onnx", x)
    assert check_parity(small_net, tmp_path / "model.onnx", x) < 1e-4
    # every logit off by 0.01: far beyond the 1e-4 + 1e-4 * max|logit| bound
    _shift_initializer(tmp_path / "model.onnx", tmp_path / "bias.onnx", "fc.bias", 0.01)
    with pytest.raises(ExportError, match=r"ONNX parity check failed: max \|onnxruntime - torch\| = 0\.01"):
        check_parity(small_net, tmp_path / "bias.onnx", x)
    # a drift well inside the bound passes, so the bound is what decides
    _shift_initializer(tmp_path / "model.onnx", tmp_path / "tiny.onnx", "fc.bias", 1e-6)
    assert 5e-7 < check_parity(small_net, tmp_path / "tiny.onnx", x) < 1e-4
    changed = copy.deepcopy(small_net)
    with torch.no_grad():
        changed.fc.bias.add_(0.01)  # the torch side changed instead: the same check fails
    with pytest.raises(ExportError):
        check_parity(changed, tmp_path / "model.onnx", x)


def test_a_failed_parity_check_says_by_how_much_against_what_bound_and_what_to_do(tmp_path, small_net, cifar_val):
    x = normalize(cifar_val.images[:16], (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    export_onnx(small_net, tmp_path / "model.onnx", x)
    _shift_initializer(tmp_path / "model.onnx", tmp_path / "bias.onnx", "fc.bias", 0.01)
    with torch.no_grad():
        bound = 1e-4 + 1e-4 * small_net.eval()(x).abs().max().item()  # the documented ATOL + RTOL * max |logit|
    with pytest.raises(ExportError) as e:
        check_parity(small_net, tmp_path / "bias.onnx", x)
    assert str(e.value) == (f"ONNX parity check failed: max |onnxruntime - torch| = 0.01 > {bound:.3g} on 16 real "
                            "images. The ONNX file was not kept; report this with your torch and onnxruntime versions.")


def test_an_onnx_file_computing_nan_fails_the_parity_check(tmp_path, small_net, cifar_val):
    x = normalize(cifar_val.images[:8], (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    export_onnx(small_net, tmp_path / "model.onnx", x)
    _shift_initializer(tmp_path / "model.onnx", tmp_path / "nan.onnx", "fc.bias", float("nan"))
    with pytest.raises(ExportError, match=r"^ONNX parity check failed: max \|onnxruntime - torch\| = nan > "):
        check_parity(small_net, tmp_path / "nan.onnx", x)


def test_the_exported_onnx_file_has_the_documented_interface_and_any_batch_size(tmp_path, small_net, cifar_val,
                                                                                capsys, monkeypatch):
    x = normalize(cifar_val.images[:65], (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    path = tmp_path / "model.onnx"
    real = torch.onnx.export  # older torch releases narrate each export step on stdout: stand in for them
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: print("[torch.onnx] Obtain model graph ...") or real(*a, **k))
    export_onnx(small_net, path, x)
    assert capsys.readouterr().out == ""  # kept off stdout: the CLI's output stays readable
    assert [o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx")] == [18]
    assert onnx_interface(path) == ({"images": ["batch", 3, 32, 32]}, {"logits": ["batch", 10]})
    session = onnx_session(path)
    for n in (1, 2, 65):
        got = session.run(["logits"], {"images": x[:n].numpy()})[0]
        with torch.no_grad():
            assert np.abs(got - small_net.eval()(x[:n]).numpy()).max() < 1e-4


def test_an_onnx_file_giving_another_number_of_logits_fails_the_parity_check(tmp_path, small_net, cifar_val):
    x = normalize(cifar_val.images[:8], (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    torch.manual_seed(3)
    seven = build_model(resnet18_arch(7, "cifar", scale=0.25)).eval()  # same input, 7 logits instead of 10
    export_onnx(seven, tmp_path / "seven.onnx", x)
    with pytest.raises(ExportError, match=r"^ONNX parity check failed: max \|onnxruntime - torch\| = inf > "):
        check_parity(small_net, tmp_path / "seven.onnx", x)


def test_a_difference_at_the_bound_passes_the_parity_check_and_one_above_it_fails(tmp_path, monkeypatch):
    """The documented rule: refused when the difference *exceeds* the bound (0.25 and its successor are exact)."""
    monkeypatch.setattr(onnx_export, "parity", lambda model, path, images: (0.25, 0.25))
    assert check_parity(torch.nn.Identity(), tmp_path / "m.onnx", torch.zeros(2, 3, 32, 32)) == 0.25
    monkeypatch.setattr(onnx_export, "parity", lambda model, path, images: (np.nextafter(0.25, 1.0), 0.25))
    with pytest.raises(ExportError, match=r"= 0\.25 > 0\.25 on 2 real images"):
        check_parity(torch.nn.Identity(), tmp_path / "m.onnx", torch.zeros(2, 3, 32, 32))


def test_parity_sessions_run_on_onnxruntimes_cpu_provider_without_warnings(tmp_path, small_net, cifar_val, capfd,
                                                                           monkeypatch):
    """Whatever providers the install has (onnxruntime-gpu's CUDA, Azure), the parity check's reference is the CPU;
    onnxruntime's warnings (here: an unused initializer) stay off the user's terminal."""
    import onnxruntime as ort

    x = normalize(cifar_val.images[:4], (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    export_onnx(small_net, tmp_path / "model.onnx", x)
    model = onnx.load(str(tmp_path / "model.onnx"))
    model.graph.initializer.append(numpy_helper.from_array(np.ones(3, np.float32), "unused_by_any_node"))
    onnx.save(model, str(tmp_path / "unused.onnx"))
    capfd.readouterr()
    ort.InferenceSession(str(tmp_path / "unused.onnx"), providers=["CPUExecutionProvider"])
    assert "Removing initializer 'unused_by_any_node'" in capfd.readouterr().err  # the file makes ort warn

    asked = []
    real = ort.InferenceSession
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: asked.append(k.get("providers")) or real(*a, **k))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ort warns (and falls back) on a provider name it does not know
        session = onnx_session(tmp_path / "unused.onnx")
        assert np.abs(session.run(["logits"], {"images": x.numpy()})[0] - small_net(x).detach().numpy()).max() < 1e-4
        onnx_session(tmp_path / "unused.onnx", ["CPUExecutionProvider"])
    assert asked == [["CPUExecutionProvider"], ["CPUExecutionProvider"]]
    assert "unused_by_any_node" not in capfd.readouterr().err


@pytest.mark.parametrize("dropped", ["model.onnx", "metrics.json", "model.safetensors"])
def test_a_manifest_missing_a_required_file_is_refused(exported, tmp_path, dropped):
    """The file is still on disk and every listed hash matches: only the manifest's list is short.
    Loading, `flashdd-zoo info` and the Hub pull's check all refuse it."""
    import json
    import shutil

    from conftest import run_cli

    from flashdd_zoo import load_labeler
    from flashdd_zoo.errors import ArtifactError
    from flashdd_zoo.exporters.manifest import verify_manifest

    folder = tmp_path / "short"
    shutil.copytree(exported, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"][dropped]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    message = f"manifest.json does not list required file {dropped}"
    with pytest.raises(ArtifactError, match=message):
        load_labeler(folder)
    res = run_cli("info", folder, check=False)
    assert res.returncode == 1 and message in res.stderr
    verify_manifest(folder)  # the listed files themselves are intact: the list is what is refused
    with pytest.raises(ArtifactError, match=message):
        verify_manifest(folder, required=("config.json", "model.safetensors", "model.onnx", "README.md", "metrics.json"))


# -- the stage cache that resumes builds: a stage reruns exactly when its inputs changed ----------------
def test_a_stage_reruns_only_when_its_key_changes_and_survives_a_new_process(tmp_path):
    runs = []
    cache = StageCache(tmp_path / "work")
    assert cache.entries == {} and not (tmp_path / "work" / "stages.json").exists()
    first = cache.run("teacher", {"epochs": 3, "seed": 0}, lambda: runs.append(1) or {"top1": 71.5})
    assert first == {"top1": 71.5} and cache.ran == ["teacher"] and cache.reused == []
    assert cache.seconds("teacher") >= 0.0 and cache.seconds("never ran") == 0.0

    # a later build (a new StageCache on the same folder, as after an interrupted session)
    resumed = StageCache(tmp_path / "work")
    same_key_other_order = {"seed": 0, "epochs": 3}  # the key's digest ignores dict order
    assert resumed.run("teacher", same_key_other_order, lambda: runs.append(2) or {"top1": 0.0}) == {"top1": 71.5}
    assert resumed.reused == ["teacher"] and resumed.ran == [] and runs == [1]
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1}) != digest({"a": 1, "b": 3})

    # a changed input reruns the stage and replaces the stored result, on disk too
    assert resumed.run("teacher", {"epochs": 4, "seed": 0}, lambda: runs.append(3) or {"top1": 74.0}) == {"top1": 74.0}
    assert runs == [1, 3] and resumed.ran == ["teacher"]
    stored = json.loads((tmp_path / "work" / "stages.json").read_text())
    assert stored["teacher"]["result"] == {"top1": 74.0}
    assert stored["teacher"]["key"] == digest({"epochs": 4, "seed": 0})
    assert StageCache(tmp_path / "work").entries == stored


def test_a_stage_records_how_long_it_ran_and_where_a_new_work_folder_goes(tmp_path):
    """A first build creates its (nested) work folder; each stage keeps its wall time across processes,
    and keys and results holding paths are stored as their text (as the builds' do)."""
    work = tmp_path / "out" / "build" / "work"  # nothing of it exists yet
    cache = StageCache(work)
    result = cache.run("teacher", {"weights": Path("runs/t.safetensors")},
                       lambda: time.sleep(0.2) or {"path": Path("runs/t.safetensors")})
    assert result == {"path": Path("runs/t.safetensors")}
    assert digest({"weights": Path("runs/t.safetensors")}) == digest({"weights": "runs/t.safetensors"})
    text = (work / "stages.json").read_text()
    assert text.splitlines()[:2] == ["{", '  "teacher": {'] and text.endswith("}\n")  # one field a line: reviewable diffs
    stored = json.loads(text)["teacher"]
    assert stored["result"] == {"path": "runs/t.safetensors"}
    assert 0.2 <= stored["seconds"] < 30  # the stage's own duration, not a clock reading
    assert StageCache(work).seconds("teacher") == stored["seconds"] == cache.seconds("teacher")


def test_a_stage_whose_outputs_are_gone_runs_again(tmp_path):
    out = tmp_path / "teacher.safetensors"
    cache = StageCache(tmp_path)

    def train():
        out.write_bytes(b"weights")
        return {"path": str(out)}

    def outputs_exist(result):
        return Path(result["path"]).is_file()

    cache.run("teacher", {"epochs": 3}, train, outputs_exist)
    out.unlink()
    again = StageCache(tmp_path)
    again.run("teacher", {"epochs": 3}, train, outputs_exist)
    assert again.ran == ["teacher"] and out.is_file()
    again.run("teacher", {"epochs": 3}, train, outputs_exist)
    assert again.reused == ["teacher"]


# the student protocol's share of every build stage's key: finished builds were cached under this digest
DEFAULT_PROTOCOL_KEY = "5c6810eff0d3ca24a8449d75ac077592c08ea40aec96fe6b21082b686660ed68"


def test_a_protocol_option_added_later_keeps_finished_build_stages_valid():
    """A new EvalProtocol field would change every stage key and rerun hours of students: at its default it
    stays out of the key (EvalProtocol.LATER_OPTIONS); set, it enters and reruns what it changes."""
    default = EvalProtocol()
    assert digest(default.stage_key()) == DEFAULT_PROTOCOL_KEY, (
        "the default protocol's stage key changed, so every finished build would rerun: list the new field in "
        "EvalProtocol.LATER_OPTIONS")
    assert "dense_step" in dataclasses.asdict(default) and "dense_step" not in default.stage_key()
    per_view = dataclasses.replace(default, dense_step="view").stage_key()
    assert per_view == {**default.stage_key(), "dense_step": "view"}
    assert digest(dataclasses.replace(default, epochs=299).stage_key()) != DEFAULT_PROTOCOL_KEY
