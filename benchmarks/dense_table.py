"""Issue 12's table on this CPU: one D_S, one student protocol, four sources of labels, the same seeds.

    python benchmarks/dense_table.py --build B --teacher T --dense D [--dense D2 ...] \
        --out benchmarks/work/dense-cifar10-ipc10 --record dense-cifar10-ipc10-cpu

On the D_S of build B (its build-report.json), with B's student protocol: hard labels only; LADD
dense labels (D, made from an early-stage labeler); online soft labels from the full teacher T
(tau(D_S)) and from the capacity-matched labeler B selected. Given several dense folders (labels of
the same D_S from other checkpoints or at other temperatures, and --dense-per-view folders stepped once per
batch of views: EvalProtocol.dense_step), the row is the one whose first-seed student scores best on B's
held-out slice of the training split; the test split only reports. A control row trains the chosen
dense row's crops with the same steps but every crop labelled with its image's hard label, so the gain
of dense labels over hard labels splits into what the extra views give and what the labels give. Each row
is cached per seed in OUT/<row>-seed<s>.json with the settings that made it, so a rerun resumes at the
first unfinished seed. Storage is measured as LADD does: the label file against the zip-compressed uint8 images, at the
native 32 px and with the images upsampled to 128 px (the labels do not grow with the resolution).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from flashdd_zoo import load_dense_labels
from flashdd_zoo.atomic import atomic_write_text
from flashdd_zoo.data import load_split, resolve_dataset
from flashdd_zoo.data.images import HELD_OUT_SPLIT, training_split
from flashdd_zoo.results import write_result
from flashdd_zoo.zoo.distilled import load_distilled
from flashdd_zoo.zoo.evaluate import EvalProtocol, evaluate
from flashdd_zoo.zoo.teachers import load_teacher

RESULTS = Path(__file__).parent / "results"


def zip_bytes(images: torch.Tensor) -> int:
    """Bytes of the uint8 images (N, C, H, W), one array per image, in a deflated zip (LADD's measure)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i, img in enumerate(images):
            z.writestr(f"{i:05d}.npy", np.ascontiguousarray(img.numpy()).tobytes())
    return len(buf.getvalue())


def upsampled(images: torch.Tensor, size: int) -> torch.Tensor:
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def row(out: Path, name: str, settings: dict, seeds: tuple[int, ...], run, holdout: bool = False) -> dict:
    """One row over `seeds`, each seed cached in OUT/<name>-seed<s>.json with the settings that made it (a rerun
    reuses finished seeds and trains the rest); `run(seeds)` returns an EvalResult. holdout=True also needs each
    seed's top-1 on the held-out slice (a seed cached without it is trained again)."""
    runs = []
    for seed in seeds:
        path = out / f"{name}-seed{seed}.json"
        doc = json.loads(path.read_text()) if path.is_file() else None
        if doc is None or doc.get("settings") != settings or (holdout and "holdout_top1" not in doc):
            r = run((seed,)).runs[0]
            doc = {"settings": settings, "top1": r.top1, "label_seconds": r.label_seconds, "seconds": r.seconds}
            if HELD_OUT_SPLIT in r.extra_top1:
                doc["holdout_top1"] = r.extra_top1[HELD_OUT_SPLIT]
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
        runs.append(doc)
    top1s = [d["top1"] for d in runs]
    summary = {"top1s": top1s, "top1_mean": statistics.fmean(top1s),
               "top1_std": statistics.stdev(top1s) if len(top1s) > 1 else 0.0,
               "label_seconds": [d["label_seconds"] for d in runs], "holdout_top1s": [d.get("holdout_top1") for d in runs]}
    print(f"{name}: {summary['top1_mean']:.2f} ± {summary['top1_std']:.2f} over seeds {list(seeds)}")
    return summary


def labeler_epoch(dense) -> int:
    return int(dense.config.lineage.get("labeler_epoch") or 0)


def one_hot_crops(labels: torch.Tensor, dense_labels: torch.Tensor) -> torch.Tensor:
    """Dense labels of D_S's shape [images, N*N, classes] with every crop given its image's one-hot label."""
    one_hot = F.one_hot(labels, dense_labels.shape[-1]).to(dense_labels.dtype)
    return one_hot[:, None].expand_as(dense_labels).contiguous()


def variant(dense, step: str) -> str:
    """A dense folder's labeler checkpoint and label temperature (and its step if per view), as a metric key's suffix."""
    return f"epoch_{labeler_epoch(dense)}_t{dense.config.temperature:g}" + ("_per_view" if step == "view" else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, required=True,
                    help="a build folder: its D_S, student protocol and selected labeler (build-report.json)")
    ap.add_argument("--teacher", type=Path, required=True, help="the full teacher (labeler folder)")
    ap.add_argument("--dense", type=Path, required=True, action="append",
                    help="dense labels made from an early-stage labeler; repeat for other checkpoints or temperatures "
                         "(chosen on the build's held-out slice)")
    ap.add_argument("--dense-per-view", type=Path, action="append", default=[],
                    help="dense labels to try also with one optimizer step per batch of views (an epoch is a pass "
                         "over the label-augmented set); repeatable, chosen on the held-out slice like --dense")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--record", default=None)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    report = json.loads((args.build / "build-report.json").read_text())
    distilled, capacity = Path(report["distilled"]["path"]), report["labeler_dir"]
    ds = resolve_dataset(report["dataset"])
    d_s, val = load_distilled(distilled, ds), load_split(ds, ds.val_split())
    seeds = tuple(int(s) for s in args.seeds.split(","))
    soft = EvalProtocol(**report["config"]["protocol"])
    hard = replace(soft, loss="ce")
    common = {"distilled": str(distilled), "device": args.device}
    holdout_per_class = report["config"]["holdout_per_class"]
    holdout = {}  # decoded only when a student must be trained (the training split is 50,000 images)

    def extra_sets() -> dict:
        if not holdout and holdout_per_class:
            holdout[HELD_OUT_SPLIT] = training_split(ds, holdout_per_class)[1]
        return holdout

    def online(source: Path | str):
        return lambda s: evaluate(d_s, load_teacher(source, ds.num_classes).model.eval(), ds, val, soft, s, args.device)

    def dense_row(candidate: tuple[Path, str], row_seeds: tuple[int, ...], need_holdout: bool = False,
                  hard_crops: bool = False) -> dict:
        folder, step = candidate
        dense, protocol = load_dense_labels(folder), replace(hard, dense_step=step)
        dense.check_distilled(distilled, ds)
        name = f"dense-{folder.name}" + ("-per-view" if step == "view" else "")
        settings = {**common, "protocol": protocol.stage_key(), "dense": str(folder)}
        if hard_crops:  # the control: every crop labelled with its image's hard label
            dense = replace(dense, labels=one_hot_crops(d_s.labels, dense.labels))
            name, settings = f"{name}-hard-crops", {**settings, "crop_labels": "hard"}
        return row(args.out, name, settings, row_seeds,
                   lambda s: evaluate(d_s, None, ds, val, protocol, s, args.device, extra_sets=extra_sets(), dense=dense),
                   holdout=need_holdout)

    candidates = [(folder, "image") for folder in args.dense] + [(folder, "view") for folder in args.dense_per_view]
    selection = {}
    if len(candidates) > 1:
        if not holdout_per_class:
            raise SystemExit(f"{args.build} was built without --holdout-per-class: no held-out slice to choose "
                             "between dense labelers on")
        selection = {c: dense_row(c, seeds[:1], need_holdout=True)["holdout_top1s"][0] for c in candidates}
        for (folder, step), acc in selection.items():
            print(f"held-out slice, seed {seeds[0]}: {acc:.2f} with {folder}, one step per batch of {step}s")
    chosen = max(candidates, key=selection.get) if selection else candidates[0]
    dense = load_dense_labels(chosen[0])
    rows = {
        "hard": row(args.out, "hard", {**common, "protocol": hard.stage_key()}, seeds,
                    lambda s: evaluate(d_s, None, ds, val, hard, s, args.device)),
        "dense": dense_row(chosen, seeds),
        "hard_crops": dense_row(chosen, seeds, hard_crops=True),
        "online_tau": row(args.out, "online_tau", {**common, "protocol": soft.stage_key(), "labeler": str(args.teacher)},
                          seeds, online(args.teacher)),
        "online_capacity": row(args.out, "online_capacity", {**common, "protocol": soft.stage_key(), "labeler": capacity},
                               seeds, online(capacity)),
    }
    dense_bytes = (chosen[0] / "labels.safetensors").stat().st_size
    image_bytes, image_bytes_128 = zip_bytes(d_s.images), zip_bytes(upsampled(d_s.images, 128))
    metrics = {
        "dense_bytes": dense_bytes, "image_bytes": image_bytes, "storage_pct": 100 * dense_bytes / image_bytes,
        "image_bytes_128": image_bytes_128, "storage_pct_128": 100 * dense_bytes / image_bytes_128,
        "student_top1_mean": rows["dense"]["top1_mean"], "student_top1_std": rows["dense"]["top1_std"],
        # the control: the dense row's crops and steps with hard labels, so dense - hard_crops is the labels' share
        "hard_crops_top1_mean": rows["hard_crops"]["top1_mean"], "hard_crops_top1_std": rows["hard_crops"]["top1_std"],
        "dense_label_seconds": statistics.fmean(rows["dense"]["label_seconds"]),
        "hard_top1_mean": rows["hard"]["top1_mean"], "hard_top1_std": rows["hard"]["top1_std"],
        "online_tau_mean": rows["online_tau"]["top1_mean"], "online_tau_std": rows["online_tau"]["top1_std"],
        "online_capacity_mean": rows["online_capacity"]["top1_mean"],
        "online_capacity_std": rows["online_capacity"]["top1_std"],
        "labeler_epoch": labeler_epoch(dense), "labeler_temperature": dense.config.temperature,
        "dense_steps_per_batch": 1 + len(dense.boxes) if chosen[1] == "view" else 1,
        "seeds": len(seeds), "epochs": soft.epochs,
        # the choice between dense labelers: each one's first-seed student on the held-out slice
        **{f"holdout_top1_{variant(load_dense_labels(f), step)}": acc for (f, step), acc in selection.items()},
    }
    print(json.dumps(metrics, indent=2))
    if args.record:
        print(f"recorded {write_result(RESULTS, args.record, metrics)}")


if __name__ == "__main__":
    main()
