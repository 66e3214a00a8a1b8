"""Run the README's DD-Ranking recipe once, on a tiny real CIFAR-10 setup, with a labeler as its teacher.

Not a test: ddranking 0.2.0 requires numpy<2 and scipy<1.16, which would downgrade this project's
environment, so it is not a dependency. Run it by hand in a separate venv that holds ddranking and
its pins and sees this project's torch (see the README's DD-Ranking recipe):

    python benchmarks/check_ddranking_recipe.py LABELER_FOLDER --work /tmp/ddr-check

DD-Ranking's CIFAR-10 class downloads, so it is handed ImageFolders of ../shared/data/cifar10
(the first --per-class images of each class); its CIFAR-10 entry of the full-data accuracy cache
is missing in 0.2.0, so the full-data top-1 is given (--real-top1); its random baseline is written
as images (its 'tensor' format fails in 0.2.0). Prints DD-Ranking's scores and how many batches the
labeler labelled.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import ddranking.metrics.soft_label as soft_label
import ddranking.utils.data as ddr_data
from ddranking.utils import REAL_DATA_ACC_CACHE
from torchvision import datasets, transforms

from flashdd_zoo import load_labeler
from flashdd_zoo.data import default_data_root, load_split, normalize, resolve_dataset

MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]  # what DD-Ranking normalises CIFAR-10 with


def small_cifar(root: Path, per_class: int):
    """A stand-in for torchvision's CIFAR10 class: an ImageFolder of the first images of each class."""
    def make(path, train=True, download=False, transform=None):
        seen: collections.Counter = collections.Counter()

        def keep(p: str) -> bool:
            seen[Path(p).parent.name] += 1
            return seen[Path(p).parent.name] <= per_class
        return datasets.ImageFolder(root / ("train" if train else "test"), transform=transform, is_valid_file=keep)
    return make


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("labeler")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ddr-check"))
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=20)  # DD-Ranking validates every 20 epochs
    ap.add_argument("--real-top1", type=float, default=80.0)
    args = ap.parse_args()

    ddr_data.datasets.CIFAR10 = small_cifar(default_data_root() / "cifar10", args.per_class)
    REAL_DATA_ACC_CACHE["CIFAR10-ConvNet-3"] = args.real_top1

    # the recipe: the labeler stands in where DD-Ranking builds its pretrained teachers
    teacher_model = load_labeler(args.labeler, input_normalization="cifar10")
    calls = []
    teacher_model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    _build = soft_label.build_model
    soft_label.build_model = lambda *a, pretrained=False, **kw: (
        teacher_model if pretrained else _build(*a, pretrained=pretrained, **kw))

    train_trans = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    evaluator = soft_label.LabelRobustScoreSoft(
        dataset="CIFAR10", real_data_path=str(args.work), ipc=1, model_name="ConvNet-3", soft_label_criterion="kl",
        loss_fn_kwargs={"temperature": 4.0, "scale_loss": False}, data_aug_func="cutmix", aug_params={"beta": 1.0},
        soft_label_mode="M", optimizer="adamw", lr_scheduler="cosine", weight_decay=0.01, num_eval=1,
        im_size=(32, 32), num_epochs=args.epochs, real_batch_size=100, syn_batch_size=10, random_data_format="image",
        random_data_path=str(args.work / "random"), save_path=str(args.work / "obj_scores.csv"), num_workers=0,
        custom_train_trans=train_trans, teacher_dir=str(args.work / "no-teachers"),
        teacher_model_names=["flashdd-labeler"], device="cpu")
    assert evaluator.teacher_models == [teacher_model]

    cifar10 = resolve_dataset("cifar10")
    d_s = load_split(cifar10, "train", max_per_class=1, seed=0)  # IPC 1 of real images, in DD-Ranking's class order
    images = normalize(d_s.images, MEAN, STD)
    scores = evaluator.compute_metrics(image_tensor=images, soft_labels=None, syn_lr=0.001)
    print({k: round(float(v), 4) for k, v in scores.items()})
    print(f"the labeler labelled {len(calls)} batches ({sum(calls)} images)")


if __name__ == "__main__":
    main()
