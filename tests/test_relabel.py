"""Stored-label pipelines: a relabel store of real CIFAR-10 views replays exactly what the online
student loop (zoo/evaluate.train_student) labels for the same seed; top-k, shards, refusals, CLI."""

from __future__ import annotations

import json
import shutil
import struct

import pytest
import torch
from conftest import run_cli
from PIL import Image
from safetensors import safe_open

from flashdd_zoo import load_labeler
from flashdd_zoo.data import load_split
from flashdd_zoo.errors import ArgumentError, RelabelDistilledMismatch, RelabelLabelerMismatch, RelabelStoreError
from flashdd_zoo.exporters import export_labeler
from flashdd_zoo.models import build_model, resnet18_arch
from flashdd_zoo.relabel import RelabelPlan, RelabelStore, ReplayDataset, relabel
from flashdd_zoo.zoo.augment import ViewRecipe
from flashdd_zoo.zoo.distilled import write_distilled
from flashdd_zoo.zoo.evaluate import EvalProtocol, train_student

SEED, EPOCHS, BATCH, T = 7, 3, 8, 4.0  # 30 images: steps of 8, 8, 8, 6; 12 batches


@pytest.fixture(scope="module")
def d_s(tmp_path_factory, cifar10):
    """A small D_S of 30 real CIFAR-10 training images, written as RDED writes one."""
    train = load_split(cifar10, "train", max_per_class=3, seed=4)
    return write_distilled(tmp_path_factory.mktemp("relabel") / "ds", train, {"method": "test"})


@pytest.fixture(scope="module")
def labeler(exported):
    return load_labeler(exported)


def plan(**kw) -> RelabelPlan:
    base = dict(epochs=EPOCHS, batch_size=BATCH, seed=SEED, temperature=T, recipe=ViewRecipe.rded(2), shard_batches=5)
    return RelabelPlan(**{**base, **kw})


@pytest.fixture(scope="module")
def store(tmp_path_factory, d_s, cifar10, labeler):
    return relabel(d_s, cifar10, labeler, tmp_path_factory.mktemp("stores") / "full", plan(), "cpu", False)


@pytest.fixture(scope="module")
def online(d_s, cifar10, labeler):
    """What the online loop feeds its labeler: train_student (a cheap student) with a label_fn that
    records every batch, and the labeler's soft labels of each, computed there and then."""
    seen = []

    def label_fn(x):
        seen.append((x.clone(), labeler.soft_labels(x, T, epoch=len(seen) // 4)))
        return labeler(x)

    from flashdd_zoo.zoo.distilled import load_distilled

    protocol = EvalProtocol(epochs=EPOCHS, batch_size=BATCH, factor=2, temperature=T, student="mobilenet_v3_small")
    train_student(load_distilled(d_s, cifar10), label_fn, cifar10, protocol, SEED, device="cpu")
    return seen


def test_replay_equals_the_online_loop(store, d_s, online, labeler):
    replay = ReplayDataset(store, d_s, labeler=labeler)
    assert len(replay) == len(online) == 12
    for b, (x, soft) in enumerate(online):
        item = replay[b]
        assert torch.equal(item.images, x), f"batch {b}: replayed images differ from the online batch"
        assert torch.equal(item.soft_labels, soft.half().float()), f"batch {b}: labels differ"
        assert item.epoch == b // 4
    # the views really are augmented and mixed: not the plain D_S images, and CutMix pasted something
    assert replay[0].cutmix_lam < 1.0 and not torch.equal(replay[0].cutmix_perm, torch.arange(BATCH))
    # and iterating a DataLoader gives the same batches
    loader = torch.utils.data.DataLoader(replay, batch_size=None)
    assert all(torch.equal(a.images, x) for a, (x, _) in zip(loader, online))


def test_replayed_labels_are_the_labelers_on_the_replayed_images(store, d_s, labeler):
    replay = ReplayDataset(store, d_s)
    for b in (0, 5, 11):
        item = replay[b]
        assert torch.equal(item.soft_labels, labeler.soft_labels(item.images, T, epoch=item.epoch).half().float())
        assert item.images.shape == (BATCH if b % 4 < 3 else 6, 3, 32, 32)


def test_shards_straddle_epochs_and_change_nothing(tmp_path, store, d_s, cifar10, labeler):
    d = RelabelStore(store).description
    assert [(s["first_batch"], s["batches"]) for s in d["shards"]] == [(0, 5), (5, 5), (10, 2)]
    one = relabel(d_s, cifar10, labeler, tmp_path / "one", plan(shard_batches=None), "cpu", False)
    assert len(RelabelStore(one).description["shards"]) == 1
    a, b = ReplayDataset(store, d_s), ReplayDataset(one, d_s)
    for i in range(12):
        assert torch.equal(a[i].images, b[i].images) and torch.equal(a[i].soft_labels, b[i].soft_labels)
    with pytest.raises(IndexError):
        a[12]
    # shards are safetensors (8-byte header length + JSON header), never pickles
    raw = (store / "shard-00001.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    assert header["__metadata__"]["first_batch"] == "5" and header["soft"]["dtype"] == "F16"
    with safe_open(str(store / "shard-00001.safetensors"), "pt") as f:
        assert f.get_tensor("size").tolist() == [8, 8, 6, 8, 8]  # batches 5-9: epoch 1 ends short at 7


def test_topk_stores_k_values_and_fills(tmp_path, store, d_s, cifar10, labeler):
    k = 3
    top = relabel(d_s, cifar10, labeler, tmp_path / "top3", plan(topk=k), "cpu", False)
    full = ReplayDataset(store, d_s)
    spread, renorm = ReplayDataset(top, d_s), ReplayDataset(top, d_s, topk_fill="renormalize")
    with safe_open(str(top / "shard-00000.safetensors"), "pt") as f:
        assert set(f.keys()) >= {"topk_values", "topk_indices"} and "soft" not in f.keys()
        assert f.get_tensor("topk_values").shape[1] == k
    for b in (0, 7, 11):
        want = full[b].soft_labels
        values, indices = want.topk(k, dim=1)
        s, r = spread[b].soft_labels, renorm[b].soft_labels
        assert torch.equal(s.gather(1, indices), values)  # the k stored values, as stored
        others = torch.ones_like(s, dtype=torch.bool).scatter_(1, indices, False)
        rest = ((1 - values.sum(1, keepdim=True)) / (10 - k)).expand(-1, 10)
        assert torch.allclose(s[others], rest[others], atol=1e-6)
        assert torch.allclose(s.sum(1), torch.ones(len(s)), atol=1e-5)
        assert torch.allclose(r.gather(1, indices), values / values.sum(1, keepdim=True), atol=1e-6)
        assert torch.all(r[others] == 0)
        assert torch.equal(spread[b].images, full[b].images)
    assert (top / "manifest.json").is_file()
    with pytest.raises(ArgumentError, match="fill"):
        ReplayDataset(top, d_s, topk_fill="zeros")
    with pytest.raises(ArgumentError, match="top-k"):
        relabel(d_s, cifar10, labeler, tmp_path / "bad", plan(topk=11), "cpu", False)


def test_another_distilled_set_is_refused_naming_the_image(tmp_path, store, d_s, cifar10):
    other = shutil.copytree(d_s, tmp_path / "other")
    changed = sorted((other / "00003").glob("*.png"))[1]
    replacement = load_split(cifar10, "train", max_per_class=1, seed=9).images[3]
    Image.fromarray(replacement.permute(1, 2, 0).numpy()).save(changed)
    with pytest.raises(RelabelDistilledMismatch, match=f"00003/{changed.name} differs from image 10"):
        ReplayDataset(store, other)
    changed.unlink()
    with pytest.raises(RelabelDistilledMismatch, match=f"lacks 00003/{changed.name}"):
        ReplayDataset(store, other)
    shutil.copyfile(d_s / "00003" / changed.name, changed)
    shutil.copyfile(changed, other / "00003" / "extra.png")
    with pytest.raises(RelabelDistilledMismatch, match="extra.png is not one of the 30 images"):
        ReplayDataset(store, other)
    (other / "00003" / "extra.png").unlink()
    assert len(ReplayDataset(store, other)) == 12  # the same images again: accepted


def test_a_store_from_another_labeler_is_refused(tmp_path, store, d_s, exported, cifar10, cifar_val):
    torch.manual_seed(1)
    other = export_labeler(build_model(resnet18_arch(10, "cifar", scale=0.25)).eval(), tmp_path / "other",
                           name="other", kind="pruned", class_names=cifar10.class_names, resolution=32,
                           mean=cifar10.spec.mean, std=cifar10.spec.std, sample_images=cifar_val.images[:8],
                           lineage={"dataset": "cifar10"}, metrics={})
    with pytest.raises(RelabelLabelerMismatch, match="differing files: .*model.safetensors"):
        ReplayDataset(store, d_s, labeler=load_labeler(other))
    # new measurements on the card of the same labeler do not make it another one
    same = shutil.copytree(exported, tmp_path / "same")
    from flashdd_zoo.artifact.refresh import update_metrics

    update_metrics(same, {"images_per_s": 1234.0})
    ReplayDataset(store, d_s, labeler=load_labeler(same))


def test_an_altered_shard_is_refused_when_read(tmp_path, store, d_s):
    copy = shutil.copytree(store, tmp_path / "altered")
    shard = copy / "shard-00001.safetensors"
    raw = bytearray(shard.read_bytes())
    raw[-3] ^= 0xFF
    shard.write_bytes(bytes(raw))
    replay = ReplayDataset(copy, d_s)
    replay[0]  # shard 0 is intact
    with pytest.raises(RelabelStoreError, match="shard-00001.safetensors is missing, truncated or altered"):
        replay[5]
    (copy / "manifest.json").unlink()
    with pytest.raises(RelabelStoreError, match="not a complete relabel store"):
        RelabelStore(copy)


def test_cli_relabel_card_and_record(tmp_path, d_s, exported):
    out, results = tmp_path / "store", tmp_path / "results"
    r = run_cli("relabel", "--distilled", d_s, "--dataset", "cifar10", "--labeler", exported, "--out", out,
                "--epochs", 2, "--batch-size", 10, "--topk", 4, "--recipe", "sre2l", "--device", "cpu",
                "--record", "relabel-test", "--results-dir", results)
    assert "6 batches (2 epochs of 30 images)" in r.stdout
    doc = json.loads((results / "relabel-test.json").read_text())["metrics"]
    shards = sum(p.stat().st_size for p in out.glob("shard-*.safetensors"))
    assert doc["store_bytes"] == shards + (out / "relabel.json").stat().st_size
    assert doc["labeler_bytes"] == (exported / "model.safetensors").stat().st_size
    assert doc["ratio"] == pytest.approx(doc["store_bytes"] / doc["labeler_bytes"])
    assert doc["label_bytes"] == 60 * 4 * (2 + 1)  # float16 values + uint8 class indices of 60 views
    card = (out / "README.md").read_text()
    assert f"| store (shards + relabel.json, measured on disk) | {doc['store_bytes']:,} |" in card
    assert f"| labeler weights | {doc['labeler_bytes']:,} |" in card
    recipe = json.loads((out / "relabel.json").read_text())["recipe"]
    assert recipe["factor"] == 1 and recipe["scale"] == [0.08, 1.0]
    assert run_cli("relabel-check", out, "--distilled", d_s, "--labeler", exported).returncode == 0
    again = run_cli("relabel", "--distilled", d_s, "--dataset", "cifar10", "--labeler", exported, "--out", out,
                    check=False)
    assert again.returncode != 0 and "--overwrite" in again.stdout + again.stderr


def test_sre2l_layout_and_one_epoch_at_a_time(tmp_path, store, d_s, cifar10, labeler):
    """SRe2L's recover step writes new000/class000_id000.jpg: such a D_S relabels, and epoch(e) serves
    the loops that make one DataLoader pass per epoch."""
    sre2l = tmp_path / "sre2l"
    for folder in sorted(p for p in d_s.iterdir() if p.is_dir()):
        (sre2l / f"new{int(folder.name):03d}").mkdir(parents=True)
        for i, f in enumerate(sorted(folder.glob("*.png"))):
            Image.open(f).save(sre2l / f"new{int(folder.name):03d}" / f"class{int(folder.name):03d}_id{i:03d}.jpg", quality=95)
    out = relabel(sre2l, cifar10, labeler, tmp_path / "store", plan(epochs=2), "cpu", False)
    replay = ReplayDataset(out, sre2l)
    assert replay.labels.tolist() == [c for c in range(10) for _ in range(3)]
    second = replay.epoch(1)
    assert len(second) == 4 and torch.equal(second[0].images, replay[4].images) and second[0].epoch == 1
    with pytest.raises(IndexError):
        replay.epoch(2)
