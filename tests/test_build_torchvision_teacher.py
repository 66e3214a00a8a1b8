"""`flashdd-zoo build` the way an ImageNet user runs it: the teacher is a torchvision ResNet-18 `.pth`
state dict, the dataset an ImageNet-style ImageFolder tree at 128 px (ImageNet stem, RDED stitching
N = 4 crops per image), and `--nproc 2` runs RDED and every downstream evaluation under torchrun
(gloo on CPU). Real images only: a few Imagenette-128 classes, symlinked from ../shared/data."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
import torchvision
import yaml
from conftest import shared_dataset
from PIL import Image

from flashdd_zoo import load_labeler
from flashdd_zoo.data import load_split, normalize, resolve_dataset
from flashdd_zoo.zoo.distilled import load_distilled

CLASSES = ("n03028079", "n03445777", "n03888257")  # church, golf ball, parachute
TRAIN_PER_CLASS, VAL_PER_CLASS, IPC, NPROC = 24, 10, 2, 2
TEACHER_EPOCHS = 6


@pytest.fixture(scope="module")
def imagenette_subset(tmp_path_factory):
    """folder:PATH dataset of real Imagenette-128 images: train/ and val/ of symlinks, classes.json."""
    source = shared_dataset("imagenette128").path  # skips (or fails under FLASHDD_REQUIRE_DATA=1) when absent
    root = tmp_path_factory.mktemp("imagenette-subset") / "imagenette-3"
    for split, count in (("train", TRAIN_PER_CLASS), ("val", VAL_PER_CLASS)):
        for wnid in CLASSES:
            files = sorted((source / split / wnid).iterdir())[:count]
            assert len(files) == count, f"{source / split / wnid} holds fewer than {count} images"
            (root / split / wnid).mkdir(parents=True)
            for f in files:
                (root / split / wnid / f.name).symlink_to(f.resolve())
    names = json.loads((source / "classes.json").read_text())
    (root / "classes.json").write_text(json.dumps({w: names[w] for w in CLASSES}))
    ds = resolve_dataset(f"folder:{root}")
    assert ds.resolution == 128 and ds.spec.stem == "imagenet" and ds.num_classes == len(CLASSES)
    return ds


def _train_torchvision_teacher(ds, path):
    """What an ImageNet user holds: torchvision's resnet18, trained (briefly, on real images) and
    saved as a plain state dict. Returns its top-1 (%) on the val split, evaluated here."""
    train, val = load_split(ds, "train"), load_split(ds, "val")
    x, y = normalize(train.images, ds.spec.mean, ds.spec.std), train.labels
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = torchvision.models.resnet18(num_classes=ds.num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(TEACHER_EPOCHS):
        model.train()
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 24):
            idx = order[i : i + 24]
            xb = torch.where(torch.rand(len(idx), 1, 1, 1, generator=g) < 0.5, x[idx].flip(3), x[idx])
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        top1 = 100.0 * (model(normalize(val.images, ds.spec.mean, ds.spec.std)).argmax(1) == val.labels).float().mean().item()
    torch.save(model.state_dict(), path)
    return model, top1


@pytest.mark.slow
def test_build_with_torchvision_pth_teacher_under_torchrun(tmp_path, imagenette_subset):
    ds, k = imagenette_subset, len(CLASSES)
    pth = tmp_path / "resnet18-imagenette3.pth"
    tv_model, tv_top1 = _train_torchvision_teacher(ds, pth)
    assert tv_top1 > 100.0 / k, f"the torchvision teacher is no better than chance ({tv_top1:.1f}%)"

    out = tmp_path / "zoo-out"
    cmd = [sys.executable, "-m", "flashdd_zoo", "build", "--dataset", ds.name, "--teacher", str(pth),
           "--ipc", str(IPC), "--nproc", str(NPROC), "--out", str(out), "--device", "cpu",
           "--epochs", "2", "--seeds", "0", "--finetune-epochs", "1", "--param-fractions", "0.5", "--window", "2",
           "--mipc", "16", "--finetune-per-class", "20",
           "--holdout-per-class", "0"]  # a torchvision teacher saw its whole training split: nothing held out
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # torchrun's ranks on CPU (gloo) even on a GPU machine
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, (res.stdout[-3000:], res.stderr[-3000:])
    report = json.loads((out / "build-report.json").read_text())
    work = out / "work"

    # the teacher: adopted from the torchvision file, converted exactly (same top-1, same size)
    teacher = report["teacher"]
    assert teacher["source"] == f"torchvision:{pth.name}"
    assert teacher["top1"] == pytest.approx(tv_top1)
    assert teacher["params"] == sum(p.numel() for p in tv_model.parameters())
    adopted = load_labeler(teacher["labeler_dir"])
    assert adopted.config.architecture["stem"] == "imagenet"
    assert adopted.config.lineage["teacher"] == f"torchvision:{pth.name}"

    # D_S: RDED under torchrun, every rank's classes in one set, IPC 128x128 images per class of 2x2 crops
    d_s = report["distilled"]
    assert d_s["method"] == "rded" and d_s["ipc"] == IPC and d_s["path"] == str(work / "distilled")
    desc = json.loads((work / "distilled" / "distilled.json").read_text())
    assert desc["method"] == "rded" and desc["factor"] == 2 and desc["resolution"] == 128
    assert desc["images"] == k * IPC and desc["observer"].startswith("labeler:") and desc["mipc"] == 16
    assert report["config"]["finetune_per_class"] == 20 and report["config"]["rded"]["mipc"] == 16
    assert sorted(p.name for p in (work / "distilled").iterdir() if p.is_dir()) == [f"{c:05d}" for c in range(k)]
    for c in range(k):
        files = sorted((work / "distilled" / f"{c:05d}").iterdir())
        assert [f.name for f in files] == [f"class{c:05d}_id{i:05d}.png" for i in range(IPC)]
        for f in files:
            with Image.open(f) as im:
                assert im.size == (128, 128)
    data = load_distilled(work / "distilled", ds)
    assert data.images.shape == (k * IPC, 3, 128, 128) and data.labels.bincount().tolist() == [IPC] * k
    assert res.stdout.count(f"distilled {k * IPC} images ({IPC} per class)") == 1  # every rank's classes, reported once by rank 0

    # tau(D_S) and the student: evaluated under torchrun, whose per-stage reports the build read back
    tau, student, chosen = report["tau"], report["student"], report["selection"]["chosen"]
    for result in (tau, student):
        assert len(result["top1s"]) == 1 and 0.0 <= result["top1_mean"] <= 100.0
        assert len(result["label_seconds"]) == 1 and result["label_seconds"][0] > 0
    evaluations = [work / "tau.json"]
    if chosen is not None:
        evaluations.append(work / f"student-step-{report['chain'][chosen]['step']:02d}.json")
    for path, result in zip(evaluations, (tau, student)):
        doc = json.loads(path.read_text())
        assert doc["top1_mean"] == pytest.approx(result["top1_mean"]) and doc["protocol"]["epochs"] == 2
        assert len(doc["runs"]) == 1 and len(doc["runs"][0]["losses"]) == 2
    assert res.stdout.count("over seeds [0]") == len(evaluations)  # one line per torchrun evaluation: rank 0's
    assert {"teacher", "distilled", "tau", "chain"} <= set(report["stages"]["ran"])

    # the exported labeler: loads, ImageNet stem at 128 px, labels real images
    labeler = load_labeler(report["labeler_dir"])
    cfg, m = labeler.config, labeler.metrics
    assert cfg.architecture["stem"] == "imagenet" and cfg.input.size == (128, 128)
    assert labeler.input_size == (128, 128) and labeler.num_classes == k
    assert cfg.class_names == ("church", "golf ball", "parachute")
    assert cfg.lineage["teacher"] == f"torchvision:{pth.name}" and cfg.lineage["ipc"] == IPC
    assert m["tau_mean"] == pytest.approx(tau["top1_mean"]) and m["student_top1_mean"] == pytest.approx(student["top1_mean"])
    assert m["full_teacher_top1"] == pytest.approx(tv_top1)
    val = load_split(ds, "val")
    soft = labeler.soft_labels(normalize(val.images, ds.spec.mean, ds.spec.std))
    assert soft.shape == (k * VAL_PER_CLASS, k) and torch.allclose(soft.sum(1), torch.ones(len(soft)), atol=1e-4)
    if cfg.kind == "pruned":
        assert labeler.num_params < teacher["params"]
        assert m["label_speedup"] > 0  # label times come back from the torchrun evaluations too

    # the card shows tau and the parameter count
    card = (labeler.folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])["flashdd"]
    assert meta["params"] == labeler.num_params and meta["tau_mean"] == pytest.approx(tau["top1_mean"])
    assert f"| parameters | {meta['params']:,} |" in card
    assert f"| GFLOPs per image at 128x128 | {meta['gflops']:.4f} |" in card
    assert f"tau(D_S): student top-1 with the full teacher | {tau['top1_mean']:.2f}%" in card
