"""Teachers, RDED distillation and the downstream evaluator on small real CIFAR-10 subsets."""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from flashdd_zoo.cli.zoo import distill_cmd, evaluate_cmd
from flashdd_zoo.data import load_split
from flashdd_zoo.errors import ArtifactError, DataError, FlashDDError
from flashdd_zoo.models import build_model, convnet_arch
from flashdd_zoo.zoo.checkpoints import load_checkpoint, read_checkpoint_meta, restore_optimizer, save_checkpoint
from flashdd_zoo.zoo.distill import RDEDConfig, _stitch, distill_rded
from flashdd_zoo.zoo.distilled import distilled_sha256, load_distilled
from flashdd_zoo.zoo.evaluate import EvalProtocol, evaluate, train_student
from flashdd_zoo.zoo.teacher_training import TeacherRecipe, train_teacher

RECIPE = TeacherRecipe(epochs=2, batch_size=64, lr=0.05, width_scale=0.25, seed=3)


@pytest.fixture(scope="session")
def cifar_train_small(cifar10):
    return load_split(cifar10, "train", max_per_class=20, seed=0)


@pytest.fixture(scope="session")
def distilled_dir(tmp_path_factory, cifar10, cifar_train_small, small_net):
    out = tmp_path_factory.mktemp("ds") / "cifar10-ipc2"
    distill_rded(cifar10, small_net, out, RDEDConfig(ipc=2, mipc=8, num_crop=3), "small_net",
                 device="cpu", train=cifar_train_small, show_progress=False)
    return out


def test_distill_writes_ipc_images_per_class_in_rded_layout(distilled_dir, cifar10):
    folders = sorted(p.name for p in distilled_dir.iterdir() if p.is_dir())
    assert folders == [f"{c:05d}" for c in range(10)]
    for c in range(10):
        files = sorted((distilled_dir / f"{c:05d}").iterdir())
        assert [f.name for f in files] == [f"class{c:05d}_id{i:05d}.png" for i in range(2)]
        with Image.open(files[0]) as im:
            assert im.size == (32, 32)
    desc = json.loads((distilled_dir / "distilled.json").read_text())
    assert desc["method"] == "rded" and desc["ipc"] == 2 and desc["factor"] == 1
    assert desc["sha256"] == distilled_sha256(distilled_dir)
    back = load_distilled(distilled_dir, cifar10)
    assert back.images.shape == (20, 3, 32, 32) and back.labels.bincount().tolist() == [2] * 10


def test_rded_keeps_the_most_realistic_crops(cifar10, cifar_train_small, small_net):
    """Every kept crop scores at least as well as every crop that was dropped."""
    from flashdd_zoo.zoo.distill import rded_class

    images = cifar_train_small.images[cifar_train_small.labels == 3][:12]
    cfg = RDEDConfig(ipc=4, mipc=12, num_crop=1)
    g = torch.Generator().manual_seed(0)
    out = rded_class(small_net, images, 3, cfg, cifar10, g)
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.uint8
    from flashdd_zoo.data import normalize

    def ce(x):
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(
                small_net(normalize(x, cifar10.spec.mean, cifar10.spec.std)),
                torch.full((len(x),), 3), reduction="none")

    g = torch.Generator().manual_seed(0)
    from flashdd_zoo.zoo.augment import random_resized_crop

    crops = random_resized_crop(images.float() / 255, 32, ratio=(1.0, 1.0), flip=False, g=g)
    crops_u8 = (crops * 255).round().clamp(0, 255).to(torch.uint8)
    all_ce = ce(crops_u8).sort().values
    assert torch.allclose(ce(out).sort().values, all_ce[:4], atol=1e-4)


def test_stitch_places_crops_in_rded_order():
    crops = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 3, 4, 4) / 255
    out = _stitch(crops, ipc=2, n=2, res=8)
    # image 0 holds crops ranked 0, 2, 4, 6 (row-major tiles); image 1 holds 1, 3, 5, 7
    assert out[0, 0, 0, 0] == 0 and out[0, 0, 0, 4] == 2 and out[0, 0, 4, 0] == 4 and out[0, 0, 4, 4] == 6
    assert out[1, 0, 7, 7] == 7


def test_evaluate_returns_top1_and_loss_curve(distilled_dir, cifar10, cifar_val, small_net):
    d_s = load_distilled(distilled_dir, cifar10)
    result = evaluate(d_s, small_net, cifar10, cifar_val, EvalProtocol(epochs=3, batch_size=10),
                      seeds=(0, 1), device="cpu", show_progress=False)
    assert len(result.runs) == 2 and all(0.0 <= t <= 100.0 for t in result.top1s)
    assert all(len(r.losses) == 3 and all(math.isfinite(x) for x in r.losses) for r in result.runs)
    assert result.runs[0].losses != result.runs[1].losses  # seeds differ
    assert result.runs[0].label_seconds > 0
    early = train_student(d_s, small_net, cifar10, EvalProtocol(epochs=300, batch_size=10), seed=0,
                          stop_after=2, device="cpu")
    assert len(early.losses) == 2 and early.top1 is None


def test_mse_ce_loss_runs(distilled_dir, cifar10, small_net):
    d_s = load_distilled(distilled_dir, cifar10)
    run = train_student(d_s, small_net, cifar10, EvalProtocol(epochs=2, batch_size=10, loss="mse_ce"),
                        seed=0, device="cpu")
    assert len(run.losses) == 2 and run.losses[0] > 0


@pytest.fixture
def external_copy(distilled_dir, tmp_path):
    copy = tmp_path / "external"
    shutil.copytree(distilled_dir, copy)
    for c in range(10):  # other DD code names class folders by class id, not index
        (copy / f"{c:05d}").rename(copy / ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                            "frog", "horse", "ship", "truck"][c])
    return copy


def test_external_distilled_set_with_class_names(external_copy, cifar10):
    assert load_distilled(external_copy, cifar10).images.shape == (20, 3, 32, 32)


def test_external_set_missing_class(external_copy, cifar10):
    shutil.rmtree(external_copy / "frog")
    with pytest.raises(DataError, match=r"lacks 1 of 10 classes .*label 6 = \['frog'\]"):
        load_distilled(external_copy, cifar10)


def test_external_set_empty_class(external_copy, cifar10):
    for f in (external_copy / "ship").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="ship holds no images"):
        load_distilled(external_copy, cifar10)


def test_external_set_wrong_image_size(external_copy, cifar10):
    victim = next((external_copy / "cat").iterdir())
    Image.new("RGB", (64, 64)).save(victim)
    with pytest.raises(DataError, match=r"is 64x64, but the dataset's resolution is 32x32"):
        load_distilled(external_copy, cifar10)


def test_external_set_unknown_folders(external_copy, cifar10):
    (external_copy / "cat").rename(external_copy / "kitten")
    with pytest.raises(DataError, match=r"\['kitten'\] are neither cifar10 class ids"):
        load_distilled(external_copy, cifar10)


def test_train_teacher_resumes_after_interruption(tmp_path, cifar10, cifar_train_small, cifar_val):
    straight = train_teacher(cifar10, tmp_path / "straight", RECIPE, checkpoint_epochs=(1,),
                             device="cpu", train=cifar_train_small, val=cifar_val, show_progress=False)
    assert straight.resumed_from_epoch == 0 and set(straight.checkpoints) == {1}

    run = tmp_path / "interrupted"
    script = (
        "from flashdd_zoo.data import resolve_dataset, load_split\n"
        "from flashdd_zoo.zoo.teacher_training import TeacherRecipe, train_teacher\n"
        "ds = resolve_dataset('cifar10')\n"
        f"train_teacher(ds, {str(run)!r}, TeacherRecipe(**{RECIPE.__dict__!r}), checkpoint_epochs=(1,),"
        " device='cpu', train=load_split(ds, 'train', max_per_class=20, seed=0),"
        " val=load_split(ds, 'test', max_per_class=8, seed=1), show_progress=False)\n"
    )
    env = {**os.environ, "FLASHDD_DATA_ROOT": str(cifar10.path.parent)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.time() + 300
    while time.time() < deadline:
        last = run / "last" / "checkpoint.json"
        if last.is_file() and read_checkpoint_meta(run / "last")["epoch"] == 1:
            proc.send_signal(signal.SIGKILL)
            break
        assert proc.poll() is None, "the training finished before it could be interrupted"
        time.sleep(0.02)
    proc.wait()
    assert not (run / "teacher").exists()

    resumed = train_teacher(cifar10, run, RECIPE, checkpoint_epochs=(1,), device="cpu",
                            train=cifar_train_small, val=cifar_val, show_progress=False)
    assert resumed.resumed_from_epoch == 1  # epoch 1 was not trained again
    a, _ = load_checkpoint(tmp_path / "straight" / "last")
    b, _ = load_checkpoint(run / "last")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert resumed.top1 == straight.top1

    with pytest.raises(FlashDDError, match="different recipe"):
        train_teacher(cifar10, run, TeacherRecipe(epochs=3, width_scale=0.25), device="cpu",
                      train=cifar_train_small, val=cifar_val, show_progress=False)


def test_a_checkpoint_says_what_it_is_and_a_foreign_folder_is_refused_by_name(tmp_path):
    folder = save_checkpoint(tmp_path / "ck", build_model(convnet_arch(10, 32, depth=1, width=8)), {"epoch": 3})
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        assert weights.metadata() == {"format": "flashdd-zoo/checkpoint"}
    # one field a line, so committed checkpoints (benchmarks/work) diff line by line
    assert (folder / "checkpoint.json").read_text().startswith(
        '{\n  "format": "flashdd-zoo/checkpoint",\n  "architecture": {\n    "name": "convnet",\n')

    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(ArtifactError, match=rf"^{re.escape(str(bad))} is not a readable checkpoint: .*checkpoint\.json"):
        read_checkpoint_meta(bad)
    (bad / "checkpoint.json").write_text('{"format": "flashdd-zoo/labeler"}')
    with pytest.raises(ArtifactError, match=rf"^{re.escape(str(bad))}/checkpoint\.json is not a flashdd-zoo checkpoint\.$"):
        read_checkpoint_meta(bad)


def test_checkpoint_restores_every_optimizer_state_entry(tmp_path):
    # Optimizers may keep plain Python values beside tensors (here a step count), and any name; all must survive.
    net = build_model(convnet_arch(10, 32, depth=1, width=8))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    first = next(iter(opt.state))
    opt.state[first]["steps_taken"] = 7
    opt.state[first]["ema.slow"] = torch.arange(3.0)
    save_checkpoint(tmp_path / "ck", net, {"epoch": 1}, optimizer=opt)

    fresh = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    restore_optimizer(tmp_path / "ck", fresh)
    restored = fresh.state_dict()["state"]
    assert restored[0]["steps_taken"] == 7 and torch.equal(restored[0]["ema.slow"], torch.arange(3.0))
    for idx, entries in opt.state_dict()["state"].items():
        assert torch.equal(restored[idx]["momentum_buffer"], entries["momentum_buffer"]), idx


@pytest.mark.parametrize("command", [distill_cmd, evaluate_cmd])
def test_cli_help_describes_every_option(command):
    for param in command.params:
        if param.name != "help":
            assert getattr(param, "help", None), f"{command.name} --{param.name} has no help text"


def test_evaluate_cli_end_to_end(distilled_dir, exported, cifar10, tmp_path):
    report = tmp_path / "report.json"
    res = subprocess.run([sys.executable, "-m", "flashdd_zoo", "evaluate", "--dataset", "cifar10",
                          "--distilled", str(distilled_dir), "--labeler", str(exported), "--epochs", "2",
                          "--seeds", "0", "--batch-size", "10", "--device", "cpu", "--out", str(report),
                          "--val-per-class", "20"],
                         capture_output=True, text=True,
                         env={**os.environ, "FLASHDD_DATA_ROOT": str(cifar10.path.parent)})
    assert res.returncode == 0, res.stderr
    doc = json.loads(report.read_text())
    assert len(doc["runs"]) == 1 and len(doc["runs"][0]["losses"]) == 2 and 0 <= doc["top1_mean"] <= 100


def test_evaluate_runs_under_torchrun(distilled_dir, exported, cifar10, tmp_path):
    """Two processes (gloo on CPU) share each batch through DistributedDataParallel."""
    report = tmp_path / "ddp.json"
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "flashdd_zoo",
                          "evaluate", "--dataset", "cifar10", "--distilled", str(distilled_dir), "--labeler",
                          str(exported), "--epochs", "2", "--seeds", "0", "--batch-size", "10", "--device", "cpu",
                          "--val-per-class", "10", "--out", str(report)],
                         capture_output=True, text=True,
                         env={**os.environ, "FLASHDD_DATA_ROOT": str(cifar10.path.parent)})
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("student top-1") == 1  # only rank 0 reports
    doc = json.loads(report.read_text())
    assert len(doc["runs"][0]["losses"]) == 2 and 0 <= doc["top1_mean"] <= 100
