"""Dense labels (LADD): the static sub-sampler, the dense artifact bound to its D_S, training from it."""

from __future__ import annotations

import contextlib
import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli
from PIL import Image

from flashdd_zoo import load_dense_labels, load_labeler
from flashdd_zoo.data import normalize
from flashdd_zoo.dense.geometry import crop_boxes, sub_image, sub_images
from flashdd_zoo.errors import ArgumentError, ArtifactError, DataError
from flashdd_zoo.exporters import export_labeler, write_manifest
from flashdd_zoo.models import build_model, convnet_arch
from flashdd_zoo.zoo.checkpoints import save_checkpoint
from flashdd_zoo.zoo.distilled import load_distilled, write_distilled
from flashdd_zoo.zoo.evaluate import EvalProtocol, _local_views_backward, train_student


@pytest.fixture(scope="module")
def work(tmp_path_factory, cifar10, cifar_val):
    """A real D_S (2 CIFAR-10 test images per class) and an early-stage ConvNet checkpoint labeler."""
    root = tmp_path_factory.mktemp("dense")
    picked = torch.cat([torch.nonzero(cifar_val.labels == c)[:2, 0] for c in range(10)])
    from flashdd_zoo.data.images import ImageSet

    d_s = ImageSet(cifar_val.images[picked], cifar_val.labels[picked], list(cifar10.class_names))
    write_distilled(root / "ds", d_s, {"method": "test", "dataset": "cifar10"})
    torch.manual_seed(0)
    net = build_model(convnet_arch(10, 32, width=16)).eval()
    save_checkpoint(root / "early", net, {"epoch": 3, "metrics": {"teacher_top1": 31.5}})
    run_cli("dense", "--distilled", root / "ds", "--labeler", root / "early", "--out", root / "labels", "--device", "cpu")
    return root, net


def test_crop_boxes_for_ladds_grid_by_hand():
    # 32 px: crops of round(0.625 * 32) = 20 px, starts j * (32 - 20) / 4 = 0, 3, 6, 9, 12
    starts = [0, 3, 6, 9, 12]
    assert crop_boxes(32) == [(t, s, 20, 20) for t in starts for s in starts]
    assert crop_boxes(32, 5, 0.625)[6] == (3, 3, 20, 20) and len(crop_boxes(32)) == 25
    # 128 px: 80 px crops every 12 px, the last touching the corner (48 + 80 = 128)
    assert crop_boxes(128)[-1] == (48, 48, 80, 80) and crop_boxes(128)[1] == (0, 12, 80, 80)
    assert crop_boxes(32, 2, 1.0) == [(0, 0, 32, 32)] * 4  # R = 1: the whole image, N*N times


@pytest.mark.parametrize("n, ratio, what", [(1, 0.625, "N >= 2"), (0, 0.5, "N >= 2"), (5, 0.0, r"in \(0, 1\]"),
                                            (5, 1.5, r"in \(0, 1\]"), (5, -0.2, r"in \(0, 1\]")])
def test_bad_grid_is_refused(n, ratio, what):
    with pytest.raises(ArgumentError, match=what):
        crop_boxes(32, n, ratio)


def test_sub_images_are_the_crops_resized_back():
    ramp = torch.arange(32.0).expand(1, 3, 32, 32)  # value = column index
    views = sub_images(ramp, crop_boxes(32))
    assert views.shape == (1, 25, 3, 32, 32)
    crop = views[0, 4]  # top row, last column: columns 12..31, upsampled 20 -> 32 (bilinear, edges clamped)
    assert crop.min() == 12 and crop.max() == 31 and torch.all(crop[..., 1:] >= crop[..., :-1])
    assert torch.equal(sub_image(ramp, (0, 0, 32, 32)), ramp)


def test_dense_artifact_holds_one_soft_label_per_sub_image(work, cifar10):
    root, net = work
    dense = load_dense_labels(root / "labels")
    assert dense.labels.shape == (20, 25, 10) and dense.labels.dtype == torch.float16
    assert dense.boxes == crop_boxes(32) and (dense.grid, dense.ratio) == (5, 0.625)
    # the oracle: slice each crop by hand, resize with torch, run the labeler one crop at a time
    d_s = load_distilled(root / "ds", cifar10)
    x = normalize(d_s.images, cifar10.spec.mean, cifar10.spec.std)
    for i, k in [(0, 0), (7, 12), (19, 24)]:
        top, left, h, w = dense.boxes[k]
        crop = F.interpolate(x[i:i + 1, :, top:top + h, left:left + w], size=(32, 32), mode="bilinear")
        with torch.no_grad():
            want = F.softmax(net(crop), dim=1)[0]
        assert torch.allclose(dense.label(i, k), want, atol=2e-3)
    assert torch.allclose(dense.labels.float().sum(-1), torch.ones(20, 25), atol=1e-2)
    assert dense.config.lineage["labeler_epoch"] == 3 and dense.metrics["labeler_top1"] == 31.5


def test_card_and_metrics_give_the_exact_bytes(work):
    root, _ = work
    folder = root / "labels"
    size = (folder / "labels.safetensors").stat().st_size
    images = sum(p.stat().st_size for p in (root / "ds").rglob("*.png"))
    m = json.loads((folder / "metrics.json").read_text())
    assert m["dense_bytes"] == size and m["image_bytes"] == images
    assert m["storage_pct"] == pytest.approx(100 * size / images)
    card = (folder / "README.md").read_text()
    assert f"| bytes on disk (labels.safetensors) | {size:,} |" in card and "kind: dense" in card
    assert sorted(json.loads((folder / "manifest.json").read_text())["files"]) == [
        "README.md", "config.json", "images.json", "labels.safetensors", "metrics.json"]
    info = run_cli("info", folder).stdout
    assert f"{size:,}" in info and "sha256 verified" in info


def test_a_dense_folder_is_not_a_labeler_and_is_verified(work, tmp_path):
    root, _ = work
    with pytest.raises(ArtifactError, match="holds dense labels .*load_dense_labels"):
        load_labeler(root / "labels")
    bad = tmp_path / "bad"
    shutil.copytree(root / "labels", bad)
    blob = bytearray((bad / "labels.safetensors").read_bytes())
    blob[-1] ^= 1
    (bad / "labels.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match="does not match its sha256"):
        load_dense_labels(bad)
    config = json.loads((bad / "config.json").read_text())
    config["architecture"]["boxes"][0] = [1, 1, 20, 20]  # not the sub-sampler's grid
    (bad / "config.json").write_text(json.dumps(config))
    write_manifest(bad)
    with pytest.raises(ArtifactError, match="dense-label layout"):
        load_dense_labels(bad)


def test_another_distilled_set_is_refused_naming_the_image(work, cifar10, tmp_path):
    root, _ = work
    dense = load_dense_labels(root / "labels")
    dense.check_distilled(root / "ds", cifar10)  # its own D_S passes
    other = tmp_path / "other"
    shutil.copytree(root / "ds", other)
    target = sorted((other / "00003").glob("*.png"))[1]
    pixels = torch.from_numpy(__import__("numpy").array(Image.open(target))).clone()
    pixels[0, 0, 0] ^= 1
    Image.fromarray(pixels.numpy()).save(target)
    with pytest.raises(DataError, match=r"D_S image 7 \(.*00003/class00003_id00001.png\) differs"):
        dense.check_distilled(other, cifar10)
    target.unlink()
    result = run_cli("evaluate", "--dataset", "cifar10", "--distilled", other, "--dense", root / "labels",
                     "--epochs", "1", "--seeds", "0", check=False)
    assert result.returncode != 0 and "holds 19 images but the dense labels" in (result.stdout + result.stderr)


def test_labeler_with_other_classes_is_refused(work, cifar10, cifar_val, tmp_path):
    root, _ = work
    five = build_model(convnet_arch(5, 32, width=8))
    save_checkpoint(tmp_path / "five", five, {"epoch": 1})
    result = run_cli("dense", "--distilled", root / "ds", "--labeler", tmp_path / "five", "--out", tmp_path / "o",
                     check=False)
    assert result.returncode != 0 and "has 5 classes but the dataset has 10" in (result.stdout + result.stderr)
    renamed = export_labeler(build_model(convnet_arch(10, 32, width=8)).eval(), tmp_path / "renamed", name="r",
                             kind="teacher", class_names=[f"digit{i}" for i in range(10)], resolution=32,
                             mean=cifar10.spec.mean, std=cifar10.spec.std, sample_images=cifar_val.images[:4])
    result = run_cli("dense", "--distilled", root / "ds", "--labeler", renamed, "--out", tmp_path / "o", check=False)
    assert result.returncode != 0 and "its class 0 is 'digit0', the dataset's 'airplane'" in (result.stdout + result.stderr)
    for args, what in ((["--n", "1"], "N >= 2"), (["--ratio", "1.25"], "in (0, 1]")):
        result = run_cli("dense", "--distilled", root / "ds", "--labeler", root / "early", "--out", tmp_path / "o",
                         *args, check=False)
        assert result.returncode != 0 and what in (result.stdout + result.stderr)
    assert not (tmp_path / "o").exists()


def test_local_views_gradient_is_ladds_summed_loss(work, cifar10):
    """One backward pass per crop position adds up to the gradient of CE summed over all crops at once."""
    root, _ = work
    dense = load_dense_labels(root / "labels")
    d_s = load_distilled(root / "ds", cifar10)
    x = normalize(d_s.images[:6], cifar10.spec.mean, cifar10.spec.std)
    targets = dense.labels[:6].float()
    torch.manual_seed(1)
    student = build_model(convnet_arch(10, 32, width=8))
    g = torch.Generator().manual_seed(5)
    _local_views_backward(student, x, targets, dense, g, torch.device("cpu"), lambda last: __import__("contextlib").nullcontext())
    got = [p.grad.clone() for p in student.parameters()]
    student.zero_grad()
    g = torch.Generator().manual_seed(5)
    loss = 0.0
    for k, (top, left, h, w) in enumerate(dense.boxes):  # the oracle: LADD's sum, written out
        flip = torch.rand(6, generator=g) < 0.5
        view = F.interpolate(x[:, :, top:top + h, left:left + w], size=(32, 32), mode="bilinear")
        view = torch.where(flip[:, None, None, None], view.flip(3), view)
        loss = loss + (-(targets[:, k] * F.log_softmax(student(view), 1)).sum(1)).mean()
    loss.backward()
    for a, p in zip(got, student.parameters()):
        assert torch.allclose(a, p.grad, rtol=1e-4, atol=1e-6)


def test_view_steps_step_once_per_crop_position_in_a_random_order(work, cifar10):
    """dense_step "view": each crop position's batch is its own optimizer step, the positions in a seeded order."""
    root, _ = work
    dense = load_dense_labels(root / "labels")
    x = normalize(load_distilled(root / "ds", cifar10).images[:6], cifar10.spec.mean, cifar10.spec.std)
    targets = dense.labels[:6].float()
    torch.manual_seed(1)
    student = build_model(convnet_arch(10, 32, width=8))
    oracle = build_model(convnet_arch(10, 32, width=8))
    oracle.load_state_dict(student.state_dict())
    opt = torch.optim.SGD(student.parameters(), lr=0.5)
    total = _local_views_backward(student, x, targets, dense, torch.Generator().manual_seed(5), torch.device("cpu"),
                                  lambda last: contextlib.nullcontext(), opt)
    g, want_total = torch.Generator().manual_seed(5), 0.0
    oracle_opt = torch.optim.SGD(oracle.parameters(), lr=0.5)
    order = torch.randperm(25, generator=g).tolist()
    assert order != list(range(25))
    for k in order:  # the oracle: one SGD step per crop position, written out
        top, left, h, w = dense.boxes[k]
        flip = torch.rand(6, generator=g) < 0.5
        view = F.interpolate(x[:, :, top:top + h, left:left + w], size=(32, 32), mode="bilinear")
        view = torch.where(flip[:, None, None, None], view.flip(3), view)
        oracle_opt.zero_grad()
        loss = (-(targets[:, k] * F.log_softmax(oracle(view), 1)).sum(1)).mean()
        loss.backward()
        oracle_opt.step()
        want_total += float(loss.detach())
    assert float(total) == pytest.approx(want_total, rel=1e-4)
    for a, b in zip(student.parameters(), oracle.parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_view_steps_make_an_epoch_one_pass_over_the_label_augmented_set(work, cifar10, monkeypatch):
    root, _ = work
    d_s, dense = load_distilled(root / "ds", cifar10), load_dense_labels(root / "labels")
    steps = []
    adamw_step = torch.optim.AdamW.step
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, *a, **k: steps.append(1) or adamw_step(self, *a, **k))
    counts = {}
    for step in ("image", "view"):
        steps.clear()
        protocol = EvalProtocol(epochs=1, batch_size=10, loss="ce", student="convnet-d3", dense_step=step)
        train_student(d_s, None, cifar10, protocol, 0, device="cpu", dense=dense)
        counts[step] = len(steps)
    assert counts == {"image": 2, "view": 2 * 26}  # 20 images in batches of 10; 1 global + 25 local view batches
    with pytest.raises(ArgumentError, match="not one of image, view"):
        train_student(d_s, None, cifar10, EvalProtocol(epochs=1, loss="ce", dense_step="crop"), 0, device="cpu",
                      dense=dense)
    with pytest.raises(ArgumentError, match="give dense labels"):
        train_student(d_s, None, cifar10, EvalProtocol(epochs=1, loss="ce", dense_step="view"), 0, device="cpu")
    misuse = run_cli("evaluate", "--dataset", "cifar10", "--distilled", root / "ds", "--labeler", root / "early",
                     "--dense-step", "view", check=False)
    assert misuse.returncode != 0 and "use it with --dense" in (misuse.stdout + misuse.stderr)


def test_training_from_dense_labels_runs_no_labeler(work, cifar10, cifar_val, tmp_path):
    root, _ = work
    report = tmp_path / "report.json"
    run_cli("evaluate", "--dataset", "cifar10", "--distilled", root / "ds", "--dense", root / "labels",
            "--epochs", "2", "--seeds", "0,1", "--student", "convnet-d3", "--val-per-class", "4", "--device", "cpu",
            "--out", report)
    doc = json.loads(report.read_text())
    assert [r["seed"] for r in doc["runs"]] == [0, 1] and all(r["label_seconds"] == 0 for r in doc["runs"])
    assert doc["protocol"]["loss"] == "ce" and doc["dense"] == str(root / "labels")
    # the same seed without the dense term: the loss the dense run reports adds the 25 local CE terms
    d_s, dense = load_distilled(root / "ds", cifar10), load_dense_labels(root / "labels")
    protocol = EvalProtocol(epochs=1, batch_size=100, loss="ce", student="convnet-d3")
    hard = train_student(d_s, None, cifar10, protocol, 0, device="cpu")
    both = train_student(d_s, None, cifar10, protocol, 0, device="cpu", dense=dense)
    assert both.losses[0] > hard.losses[0] + 10  # 25 soft CE terms of about ln(10) each
    with pytest.raises(ArgumentError, match="dense labels replace the labeler"):
        train_student(d_s, None, cifar10, EvalProtocol(epochs=1), 0, device="cpu", dense=dense)
    both_given = run_cli("evaluate", "--dataset", "cifar10", "--distilled", root / "ds", "--dense", root / "labels",
                         "--labeler", root / "early", check=False)
    assert both_given.returncode != 0 and "--dense replaces --labeler" in (both_given.stdout + both_given.stderr)


def test_dense_training_runs_under_torchrun(work, cifar10, tmp_path):
    """Two processes (gloo on CPU) share each batch; gradients are all-reduced once per step."""
    import os
    import subprocess
    import sys

    root, _ = work
    report = tmp_path / "ddp.json"
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "flashdd_zoo",
                          "evaluate", "--dataset", "cifar10", "--distilled", str(root / "ds"), "--dense",
                          str(root / "labels"), "--epochs", "2", "--seeds", "0", "--batch-size", "10", "--device", "cpu",
                          "--student", "convnet-d3", "--val-per-class", "4", "--out", str(report)],
                         capture_output=True, text=True, env={**os.environ, "FLASHDD_DATA_ROOT": str(cifar10.path.parent)})
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("student top-1") == 1  # only rank 0 reports
    doc = json.loads(report.read_text())
    assert len(doc["runs"][0]["losses"]) == 2 and doc["runs"][0]["label_seconds"] == 0
