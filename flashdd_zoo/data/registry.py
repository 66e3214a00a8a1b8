"""Named datasets: classes, native resolution, normalisation and where their files live."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .imagenet_subsets import IMAGENET100_WNIDS

DATA_ROOT_ENV = "FLASHDD_DATA_ROOT"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is, independent of where it is stored."""

    name: str
    resolution: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    folders: tuple[str, ...] = ()  # candidate folder names under the data root
    num_classes: int | None = None  # None: discovered from the folder
    class_subset: tuple[str, ...] | None = None  # class folders to keep, in label order
    train_split: str = "train"
    val_splits: tuple[str, ...] = ("val", "test")
    embedded: bool = False  # ships inside a package; needs no data root

    @property
    def stem(self) -> str:
        """ResNet stem that suits the resolution (RDED: 'modified' 3x3 stem up to 64 px)."""
        return "cifar" if self.resolution <= 64 else "imagenet"


CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)

REGISTRY: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        DatasetSpec("digits", 8, (0.3053,) * 3, (0.3760,) * 3, num_classes=10, embedded=True),
        DatasetSpec("cifar10", 32, CIFAR10_MEAN, CIFAR10_STD, ("cifar10",), 10),
        DatasetSpec(
            "cifar100", 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), ("cifar100",), 100
        ),
        DatasetSpec(
            "tinyimagenet",
            64,
            (0.4802, 0.4481, 0.3975),
            (0.2302, 0.2265, 0.2262),
            ("tinyimagenet", "tiny-imagenet-200"),
            200,
        ),
        DatasetSpec("imagenette", 224, IMAGENET_MEAN, IMAGENET_STD, ("imagenette",), 10),
        DatasetSpec(
            "imagenette128", 128, IMAGENET_MEAN, IMAGENET_STD, ("imagenette-128", "imagenette128"), 10
        ),
        DatasetSpec(
            "imagenet100",
            224,
            IMAGENET_MEAN,
            IMAGENET_STD,
            ("imagenet100", "imagenet1k", "imagenet"),
            100,
            class_subset=tuple(IMAGENET100_WNIDS),
        ),
        DatasetSpec("imagenet1k", 224, IMAGENET_MEAN, IMAGENET_STD, ("imagenet1k", "imagenet"), 1000),
        DatasetSpec("places365", 224, IMAGENET_MEAN, IMAGENET_STD, ("places365",), 365),
    ]
}


def default_data_root() -> Path | None:
    """$FLASHDD_DATA_ROOT, else ../shared/data beside the checkout or the working directory."""
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    for candidate in (Path.cwd() / ".." / "shared" / "data", checkout / ".." / "shared" / "data"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


@dataclass
class Dataset:
    """A dataset spec bound to a folder on disk (or to its embedded source)."""

    spec: DatasetSpec
    path: Path | None
    class_ids: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def slug(self) -> str:
        """The name as part of a file name ('folder:/data/pets' -> 'data-pets')."""
        return self.name.replace("folder:", "").replace("/", "-").strip("-")

    @property
    def num_classes(self) -> int:
        return len(self.class_ids)

    @property
    def resolution(self) -> int:
        return self.spec.resolution

    def input_json(self) -> dict:
        """What a network trained on this set expects: size and normalisation, as JSON."""
        return {"size": [self.resolution] * 2, "mean": list(self.spec.mean), "std": list(self.spec.std)}

    def split_dir(self, split: str) -> Path:
        """Folder of one split; a tree with class folders at its top is a single split 'all'."""
        if self.path is None:
            raise DataError(f"dataset {self.name!r} is embedded and has no split folders")
        if split == "all" and not (self.path / self.spec.train_split).is_dir():
            return self.path
        d = self.path / split
        if not d.is_dir():
            present = sorted(p.name for p in self.path.iterdir() if p.is_dir())[:8]
            raise DataError(
                f"dataset {self.name!r}: split folder {d} is missing (found {present}). "
                f"Expected an ImageFolder tree {self.path}/{{train,val|test}}/<class>/<image>."
            )
        return d

    def val_split(self) -> str:
        """The first validation split present ('val' for ImageNet-style, 'test' for CIFAR)."""
        if self.spec.embedded:
            return "val"
        if self.path is not None and not (self.path / self.spec.train_split).is_dir():
            return "all"  # a single-split tree: class folders at the top
        for split in self.spec.val_splits:
            if self.path is not None and (self.path / split).is_dir():
                return split
        raise DataError(
            f"dataset {self.name!r} at {self.path} has none of the validation splits "
            f"{list(self.spec.val_splits)}; add one, e.g. {self.path}/val/<class>/<image>."
        )


def resolve_dataset(name: str, data_root: str | Path | None = None, need_files: bool = True) -> Dataset:
    """Look a dataset up by name (or 'folder:PATH') and bind it to its files.

    With need_files=False, ImageNet-1K resolves without local files (class names from
    torchvision's metadata), enough to export a torchvision teacher.
    """
    if name.startswith("folder:"):
        return _folder_dataset(Path(name[len("folder:") :]).expanduser())
    if name not in REGISTRY:
        raise DataError(
            f"unknown dataset {name!r}; choose one of {sorted(REGISTRY)} or 'folder:PATH' "
            "for any ImageFolder tree."
        )
    spec = REGISTRY[name]
    if spec.embedded:
        from .digits import digits_dataset

        return digits_dataset(spec)
    root = Path(data_root).expanduser() if data_root else default_data_root()
    found = [root / f for f in spec.folders if root is not None and (root / f).is_dir()]
    if found:
        return _bind(spec, found[0])
    if not need_files and name == "imagenet1k":
        from torchvision.models._meta import _IMAGENET_CATEGORIES

        return Dataset(spec, None, list(_IMAGENET_CATEGORIES), list(_IMAGENET_CATEGORIES))
    if root is None or not root.is_dir():
        raise DataError(
            f"no data root for dataset {name!r}: pass --data-root DIR or set ${DATA_ROOT_ENV} "
            f"to a folder holding one of {list(spec.folders)}/."
        )
    raise DataError(
        f"dataset {name!r} not found under {root}: expected one of the folders "
        f"{[str(root / f) for f in spec.folders]}, each an ImageFolder tree with train/ and val/ "
        "(or test/) splits."
    )


def _bind(spec: DatasetSpec, path: Path) -> Dataset:
    ds = Dataset(spec, path)
    names = _read_class_json(path)
    if spec.class_subset is not None:
        ds.class_ids = list(spec.class_subset)
    else:
        ds.class_ids = _class_folders(ds.split_dir(spec.train_split if (path / spec.train_split).is_dir() else "all"))
    if spec.num_classes is not None and len(ds.class_ids) != spec.num_classes:
        raise DataError(
            f"dataset {spec.name!r} at {path} has {len(ds.class_ids)} class folders, "
            f"expected {spec.num_classes}; point the data root at the complete set."
        )
    ds.class_names = [names.get(c, c) for c in ds.class_ids]
    return ds


def _folder_dataset(path: Path) -> Dataset:
    if not path.is_dir():
        raise DataError(f"folder dataset {path} does not exist; give folder:PATH of an ImageFolder tree.")
    top = path / "train" if (path / "train").is_dir() else path
    first = next((p for p in sorted(top.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES), None)
    if first is None:
        raise DataError(f"folder dataset {path} holds no images ({sorted(IMAGE_SUFFIXES)}).")
    from PIL import Image

    with Image.open(first) as im:
        resolution = min(im.size)
    spec = DatasetSpec(f"folder:{path}", resolution, IMAGENET_MEAN, IMAGENET_STD, folders=(path.name,))
    return _bind(spec, path)


def _class_folders(split_dir: Path) -> list[str]:
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{split_dir} has no class folders; expected {split_dir}/<class>/<image>.")
    return classes


def _read_class_json(path: Path) -> dict[str, str]:
    f = path / "classes.json"
    if not f.is_file():
        return {}
    try:
        return {str(k): str(v) for k, v in json.loads(f.read_text()).items()}
    except (ValueError, AttributeError) as e:
        raise DataError(f"{f} is not a JSON object of folder name -> class name: {e}") from e
