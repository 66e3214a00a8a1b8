import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import run_cli


def _run(*args, check=True):
    return run_cli(*args, check=check)


def test_console_script_lists_commands():
    exe = shutil.which("flashdd-zoo") or shutil.which("flashdd-zoo", path=str(Path(sys.executable).parent))
    assert exe, "the flashdd-zoo console script is not installed"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("info", "export", "card"):
        assert f"  {command} " in out


def test_info_prints_params_bytes_gflops(exported):
    out = _run("info", str(exported)).stdout
    config = json.loads((exported / "metrics.json").read_text())
    assert f"{config['params']:,}" in out
    assert f"{config['weights_bytes']:,}" in out
    assert f"{config['gflops']:.4f}" in out
    assert "sha256 verified" in out


def test_info_on_tampered_folder_fails_cleanly(exported, tmp_path):
    copy = tmp_path / "c"
    shutil.copytree(exported, copy)
    (copy / "README.md").write_text("edited")
    res = _run("info", str(copy), check=False)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "README.md has" in res.stderr


def test_card_command_rerenders_from_config(exported, tmp_path):
    copy = tmp_path / "c"
    shutil.copytree(exported, copy)
    original = (copy / "README.md").read_text()
    (copy / "README.md").write_text("hand-edited card")
    _run("card", str(copy))
    assert (copy / "README.md").read_text() == original
    _run("info", str(copy))  # manifest consistent again
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics["student_top1_mean"] = 99.0
    (copy / "metrics.json").write_text(json.dumps(metrics))
    res = _run("card", str(copy), check=False)
    assert res.returncode != 0 and "metrics.json has" in res.stderr and "altered" in res.stderr


def test_export_from_torchvision_pth(tmp_path, cifar10):
    import torch
    import torchvision

    pth = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), pth)
    out = tmp_path / "tv-teacher"
    _run("export", str(pth), "--out", str(out), "--dataset", "cifar10",
         "--data-root", str(cifar10.path.parent))
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert config["architecture"]["stem"] == "imagenet" and metrics["params"] == 11_181_642
    assert config["lineage"]["teacher"] == "torchvision:resnet18.pth"
