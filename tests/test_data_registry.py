import pytest

from flashdd_zoo.data import REGISTRY, load_split, resolve_dataset
from flashdd_zoo.data.imagenet_subsets import IMAGENET100_WNIDS
from flashdd_zoo.errors import DataError


def test_registry_names_the_papers_datasets():
    for name in ["cifar10", "cifar100", "imagenette", "imagenet100", "imagenet1k", "places365", "tinyimagenet"]:
        assert name in REGISTRY
    assert REGISTRY["imagenet1k"].num_classes == 1000 and REGISTRY["imagenet1k"].resolution == 224
    assert REGISTRY["cifar10"].stem == "cifar" and REGISTRY["imagenet1k"].stem == "imagenet"
    assert REGISTRY["imagenet100"].class_subset == tuple(IMAGENET100_WNIDS)
    assert IMAGENET100_WNIDS[:2] == ["n02869837", "n01749939"]


def test_cifar10_from_shared_data(cifar10):
    assert cifar10.num_classes == 10 and cifar10.resolution == 32
    assert cifar10.class_names[0] == "airplane"
    s = load_split(cifar10, "test", max_per_class=3)
    assert s.images.shape == (30, 3, 32, 32) and s.images.dtype.is_floating_point is False
    assert sorted(s.labels.tolist()) == sorted(list(range(10)) * 3)


def test_embedded_digits_needs_no_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("FLASHDD_DATA_ROOT", str(tmp_path / "nowhere"))
    ds = resolve_dataset("digits")
    train, val = load_split(ds, "train"), load_split(ds, "val")
    assert len(train) + len(val) == 1797 and train.images.shape[1:] == (3, 8, 8)
    assert set(val.labels.tolist()) == set(range(10))


def test_missing_root_and_split_errors(tmp_path):
    with pytest.raises(DataError, match="not found under .*expected one of the folders"):
        resolve_dataset("cifar100", data_root=tmp_path)
    with pytest.raises(DataError, match="no data root"):
        resolve_dataset("cifar100", data_root=tmp_path / "absent")
    (tmp_path / "cifar100" / "train" / "apple").mkdir(parents=True)
    with pytest.raises(DataError, match="has 1 class folders, expected 100"):
        resolve_dataset("cifar100", data_root=tmp_path)
    with pytest.raises(DataError, match="unknown dataset"):
        resolve_dataset("mnist-but-typo")


def test_missing_split_names_expected_layout(cifar10):
    with pytest.raises(DataError, match=r"split folder .*valid.* is missing"):
        cifar10.split_dir("valid")


def test_folder_dataset_reads_class_json(cifar10):
    ds = resolve_dataset(f"folder:{cifar10.path}")
    assert ds.num_classes == 10 and ds.resolution == 32 and ds.class_names[1] == "automobile"
