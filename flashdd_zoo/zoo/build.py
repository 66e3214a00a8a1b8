"""`flashdd-zoo build`: teacher -> D_S -> tau(D_S) -> pruning chain -> Dis -> selection -> export.

Every stage is checkpointed in OUT/work (see stages.py): an interrupted build resumes where it
stopped, and a changed option reruns only the stages whose inputs it changes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys
import time
from pathlib import Path

from ..artifact import WEIGHTS, read_config, read_metrics
from ..data.images import HELD_OUT_SPLIT, ImageSet, draw_training_subset, load_split, training_split
from ..data.registry import Dataset, resolve_dataset
from ..errors import FlashDDError
from ..exporters import export_labeler
from ..exporters.manifest import sha256_file
from ..kinds import PRUNED, TEACHER
from ..models import is_composite
from ..results import device_name
from .capacity import mean_dis, select_over_chain
from .checkpoints import load_checkpoint
from .distill import distill_rded
from .distilled import distilled_sha256, images_per_class, load_distilled, read_description
from .evaluate import evaluate, evaluate_random_baseline, train_student
from .label_robust import flat_metrics, summarize_rounds
from .presets import BuildConfig, check_config
from .prune import prune_chain
from .report import capacity_curve, write_report
from .runtime import pick_device, top1_accuracy
from .stages import StageCache
from .teacher_training import train_teacher
from .teachers import load_teacher


@dataclasses.dataclass
class BuildContext:
    cfg: BuildConfig
    dataset: Dataset
    work: Path
    stages: StageCache
    val: ImageSet  # the dataset's validation / test split: every reported number
    train: ImageSet | None = None  # the training split less the held-out slice, decoded when first needed
    _holdout: ImageSet | None = None
    distilled_images: dict[str, ImageSet] = dataclasses.field(default_factory=dict)

    @property
    def holdout(self) -> ImageSet | None:
        """Held out of the training split (every accuracy a choice reads), or None without --holdout-per-class.
        Decoded on first use, so a resumed build whose stages are all cached decodes nothing."""
        if self.cfg.holdout_per_class:
            self.train_set()
        return self._holdout

    @property
    def choice_set(self) -> ImageSet:
        """Where Algorithm 1 reads accuracies: the held-out slice, else (as the papers) the val split."""
        return self.holdout if self.holdout is not None else self.val

    def extra_sets(self) -> dict[str, ImageSet]:
        return {HELD_OUT_SPLIT: self.holdout} if self.holdout is not None else {}

    def distilled(self, d_s: dict) -> ImageSet:
        """D_S decoded once per build (keyed by its hash), shared by every evaluation stage."""
        if d_s["sha256"] not in self.distilled_images:
            self.distilled_images[d_s["sha256"]] = load_distilled(d_s["path"], self.dataset)
        return self.distilled_images[d_s["sha256"]]

    def train_set(self) -> ImageSet:
        if self.train is None:
            self.train, self._holdout = training_split(self.dataset, self.cfg.holdout_per_class or 0,
                                                      self.cfg.finetune_per_class)
        return self.train


def build(cfg: BuildConfig) -> dict:
    """Run (or resume) a build; returns the report dict. The labeler lands in OUT/<name>."""
    t0 = time.perf_counter()
    check_config(cfg)
    dataset = resolve_dataset(cfg.dataset, cfg.data_root)
    work = Path(cfg.out) / "work"
    val = load_split(dataset, dataset.val_split(), max_per_class=cfg.val_per_class, seed=0)
    ctx = BuildContext(cfg, dataset, work, StageCache(work), val)
    teacher = _teacher_stage(ctx)
    d_s = _distilled_stage(ctx, teacher)
    tau = _tau_stage(ctx, teacher, d_s)
    tau_choice = _on_choice_set(tau)
    chain = _chain_stage(ctx, teacher, tau_choice)
    sel, dis = select_over_chain(chain, lambda m: _dis_stage(ctx, m, d_s), full_top1=teacher["choice_top1"],
                                 tau=tau_choice, cfg=cfg.selection)
    evaluated = sel.candidates if cfg.verify_candidates else []
    evaluated = range(len(chain)) if cfg.curve else evaluated
    verified = {i: _student_stage(ctx, chain[i]["path"], d_s, _student_stage_name(chain[i])) for i in evaluated}
    if sel.chosen is None:
        chosen_path, chosen = teacher["labeler_dir"], None
        student = tau
    else:
        chosen = chain[sel.chosen]
        chosen_path = chosen["path"]
        student = verified.get(sel.chosen) or _student_stage(ctx, chosen_path, d_s, _student_stage_name(chosen))
    report = {
        "dataset": dataset.name, "ipc": d_s["ipc"], "preset": cfg.preset, "teacher": teacher, "distilled": d_s,
        "splits": _splits(ctx), "tau": tau, "chain": chain, "dis": {str(k): v for k, v in dis.items()},
        "selection": dataclasses.asdict(sel), "student": student,
        "verified": {str(k): v for k, v in verified.items()},
        "stages": {"ran": ctx.stages.ran, "reused": ctx.stages.reused},
        "config": json.loads(json.dumps(dataclasses.asdict(cfg), default=str)),
    }
    if cfg.curve:
        report["curve"] = capacity_curve(report)
    if cfg.label_robust:
        report["label_robust"] = _label_robust_stage(ctx, teacher, d_s, tau, chosen_path, student)
    plots = write_report(Path(cfg.out), report)
    report["labeler_dir"] = str(_export_stage(ctx, report, chosen_path, chosen, plots))
    # a build cut into several runs (resumed) costs this run plus the stages earlier runs finished
    report["run_seconds"] = time.perf_counter() - t0
    report["build_seconds"] = report["run_seconds"] + sum(ctx.stages.seconds(n) for n in ctx.stages.reused)
    write_report(Path(cfg.out), report)
    return report


# -- stages -----------------------------------------------------------------------------------

def _teacher_stage(ctx: BuildContext) -> dict:
    cfg, ds = ctx.cfg, ctx.dataset
    if cfg.teacher is None:
        recipe = dataclasses.replace(cfg.teacher_recipe, holdout_per_class=cfg.holdout_per_class or 0)
        key = {"train": recipe.to_json(), "dataset": ds.name, "val_per_class": cfg.val_per_class}
        run = ctx.work / "teacher-run"

        def train() -> dict:
            result = train_teacher(ds, run, recipe, device=cfg.device, val=ctx.val)
            model = load_teacher(result.labeler_dir, ds.num_classes).model
            return _teacher_info(result.labeler_dir, result.top1, _choice_top1(ctx, model, result.top1),
                                 "trained by flashdd-zoo")
        return ctx.stages.run("teacher", key, train, lambda r: Path(r["labeler_dir"]).is_dir())
    source = Path(cfg.teacher)
    # the weights' hash, not the path: a work folder carried to another checkout (a later session) still resumes
    key = {"sha256": _source_sha(source), "dataset": ds.name,
           "holdout_per_class": cfg.holdout_per_class, "val_per_class": cfg.val_per_class}

    def adopt() -> dict:
        teacher = load_teacher(source, ds.num_classes)
        if is_composite(teacher.model.arch):
            raise FlashDDError(f"--teacher {source} is an ensemble; the build prunes one network. Give its "
                               "strongest member instead (the ensemble can label students via `flashdd-zoo evaluate`).")
        if cfg.holdout_per_class and teacher.holdout_per_class != cfg.holdout_per_class:
            raise FlashDDError(
                f"--teacher {source} was trained with {teacher.holdout_per_class or 'no'} held-out images per class, "
                f"but this build holds out {cfg.holdout_per_class} to choose the labeler without the test split: the "
                f"teacher has seen them. Train it with `flashdd-zoo train-teacher --holdout-per-class "
                f"{cfg.holdout_per_class}`, or build with --holdout-per-class {teacher.holdout_per_class or 0}.")
        dev = pick_device(cfg.device)
        top1 = top1_accuracy(teacher.model.to(dev), ctx.val, ds.spec.mean, ds.spec.std, dev)
        folder = export_labeler(
            teacher.model, ctx.work / "teacher", name=TEACHER.default_name(teacher.model.arch, ds.slug), kind=TEACHER.name,
            class_names=ds.class_names, resolution=ds.resolution, mean=ds.spec.mean, std=ds.spec.std,
            sample_images=ctx.val.spread(32), lineage={"dataset": ds.name, "teacher": teacher.source},
            metrics={"teacher_top1": top1, "full_teacher_top1": top1})
        return _teacher_info(folder, top1, _choice_top1(ctx, teacher.model, top1), teacher.source)
    return ctx.stages.run("teacher", key, adopt, lambda r: Path(r["labeler_dir"]).is_dir())


def _choice_top1(ctx: BuildContext, model, val_top1: float) -> float:
    """The teacher's top-1 where Algorithm 1 reads accuracies (the held-out slice, if any)."""
    if ctx.holdout is None:
        return val_top1
    dev = pick_device(ctx.cfg.device)
    return top1_accuracy(model.to(dev), ctx.holdout, ctx.dataset.spec.mean, ctx.dataset.spec.std, dev)


def _teacher_info(folder: Path, top1: float, choice_top1: float, source: str) -> dict:
    metrics = read_metrics(Path(folder), read_config(Path(folder)))
    return {"labeler_dir": str(folder), "top1": top1, "choice_top1": choice_top1, "source": source,
            "sha256": sha256_file(Path(folder) / WEIGHTS), "params": metrics["params"],
            "weights_bytes": metrics["weights_bytes"], "gflops": metrics["gflops"]}


def _distilled_stage(ctx: BuildContext, teacher: dict) -> dict:
    cfg, ds = ctx.cfg, ctx.dataset
    if cfg.distilled is not None:
        path = Path(cfg.distilled)

        def adopt() -> dict:
            data = load_distilled(path, ds)  # validates classes, emptiness and sizes
            ipc = images_per_class(data)
            if ipc != cfg.ipc:
                raise FlashDDError(f"--distilled {path} has {ipc} images per class but --ipc is {cfg.ipc}.")
            desc = read_description(path)
            return {"path": str(path), "sha256": distilled_sha256(path), "ipc": ipc,
                    "method": desc.get("method", "external")}
        return ctx.stages.run("distilled", {"path": str(path.resolve()), "sha256": distilled_sha256(path)}, adopt)
    out = ctx.work / "distilled"
    # real images are drawn from the in-memory train set when the build holds all of it (or holds
    # images out: RDED must not draw those), else per class from disk (another random draw): the
    # key says which
    from_memory = cfg.nproc == 1 and (cfg.finetune_per_class is None or bool(cfg.holdout_per_class))
    key = {"teacher": teacher["sha256"], "rded": dataclasses.asdict(cfg.rded), "ipc": cfg.ipc, "from_memory": from_memory,
           "holdout_per_class": cfg.holdout_per_class}

    def distil() -> dict:
        if cfg.nproc > 1:
            factor = ["--factor", str(cfg.rded.factor)] if cfg.rded.factor else []
            _torchrun(cfg, ["distill", "--dataset", ds.name, "--teacher", teacher["labeler_dir"], "--ipc", str(cfg.ipc),
                            "--out", str(out), "--mipc", str(cfg.rded.mipc), "--num-crop", str(cfg.rded.num_crop),
                            "--seed", str(cfg.rded.seed), *factor])
        else:
            observer = load_teacher(teacher["labeler_dir"], ds.num_classes).model
            rded = dataclasses.replace(cfg.rded, ipc=cfg.ipc)
            distill_rded(ds, observer, out, rded, teacher["source"], cfg.device,
                         train=ctx.train_set() if from_memory else None)
        return {"path": str(out), "sha256": distilled_sha256(out), "ipc": cfg.ipc, "method": "rded"}
    return ctx.stages.run("distilled", key, distil, lambda r: Path(r["path"]).is_dir())


def _tau_stage(ctx: BuildContext, teacher: dict, d_s: dict) -> dict:
    return _student_stage(ctx, teacher["labeler_dir"], d_s, "tau")


def _student_stage(ctx: BuildContext, labeler_path: str, d_s: dict, name: str) -> dict:
    """Full downstream evaluation (all seeds) of one soft-label source on D_S."""
    cfg, ds = ctx.cfg, ctx.dataset
    key = {"labeler": _source_sha(Path(labeler_path)), "distilled": d_s["sha256"],
           "protocol": cfg.protocol.stage_key(), "seeds": cfg.seeds, "val_per_class": cfg.val_per_class,
           "holdout_per_class": cfg.holdout_per_class}

    def run() -> dict:
        if cfg.nproc > 1:
            report = Path(ctx.work) / f"{name.replace('/', '-')}.json"
            _torchrun(cfg, ["evaluate", "--dataset", ds.name, "--distilled", d_s["path"], "--labeler", labeler_path,
                            "--epochs", str(cfg.protocol.epochs), "--seeds", ",".join(map(str, cfg.seeds)),
                            "--batch-size", str(cfg.protocol.batch_size), "--loss", cfg.protocol.loss,
                            "--temperature", str(cfg.protocol.temperature), "--out", str(report),
                            *(["--val-per-class", str(cfg.val_per_class)] if cfg.val_per_class else [])])
            doc = json.loads(report.read_text())
            return {"top1_mean": doc["top1_mean"], "top1_std": doc["top1_std"],
                    "top1s": [r["top1"] for r in doc["runs"]], "seconds": [r["seconds"] for r in doc["runs"]],
                    "label_seconds": [r["label_seconds"] for r in doc["runs"]]}
        data = ctx.distilled(d_s)
        label_fn = load_teacher(labeler_path, ds.num_classes).model.to(pick_device(cfg.device)).eval()
        result = evaluate(data, label_fn, ds, ctx.val, cfg.protocol, cfg.seeds, cfg.device, extra_sets=ctx.extra_sets())
        return {"top1_mean": result.top1_mean, "top1_std": result.top1_std, "top1s": result.top1s,
                **{name: result.extra(name) for name in ctx.extra_sets()},
                "seconds": [r.seconds for r in result.runs], "label_seconds": [r.label_seconds for r in result.runs]}
    return ctx.stages.run(name, key, run)


def _label_robust_stage(ctx: BuildContext, teacher: dict, d_s: dict, tau: dict, labeler_path: str,
                        student: dict) -> dict:
    """DD-Ranking's scores for the full teacher and the selected labeler: hard-label students on
    D_S (shared), a random-baseline run per soft-label source, HLR against the teacher's own top-1
    (the student's architecture trained on the real data with hard labels)."""
    hard = _reference_stage(ctx, None, d_s, "ddranking/hard-labels")
    out = {}
    for who, path, soft in (("teacher", teacher["labeler_dir"], tau), ("labeler", labeler_path, student)):
        rnd = _reference_stage(ctx, path, d_s, f"ddranking/random-{who}")
        out[who] = summarize_rounds([t / 100 for t in soft["top1s"]], [t / 100 for t in rnd["top1s"]],
                                    teacher["top1"] / 100, [t / 100 for t in hard["top1s"]])
    return out


def _reference_stage(ctx: BuildContext, labeler_path: str | None, d_s: dict, name: str) -> dict:
    """DD-Ranking's reference students: hard labels on D_S (no labeler), or the labeler's soft
    labels on a random real subset of D_S's size drawn from the training split less its held-out slice."""
    cfg, ds = ctx.cfg, ctx.dataset
    key = {"labeler": _source_sha(Path(labeler_path)) if labeler_path else None, "distilled": d_s["sha256"],
           "protocol": cfg.protocol.stage_key(), "seeds": cfg.seeds, "val_per_class": cfg.val_per_class,
           "holdout_per_class": cfg.holdout_per_class, "finetune_per_class": cfg.finetune_per_class}

    def run() -> dict:
        data = ctx.distilled(d_s)
        if labeler_path is None:
            result = evaluate(data, None, ds, ctx.val, dataclasses.replace(cfg.protocol, loss="ce"), cfg.seeds,
                              cfg.device)
        else:
            label_fn = load_teacher(labeler_path, ds.num_classes).model.to(pick_device(cfg.device)).eval()
            draw = functools.partial(draw_training_subset, ds, holdout_per_class=cfg.holdout_per_class or 0,
                                     max_per_class=cfg.finetune_per_class)
            result = evaluate_random_baseline(data, draw, label_fn, ds, ctx.val, cfg.protocol, cfg.seeds, cfg.device)
        return {"top1_mean": result.top1_mean, "top1_std": result.top1_std, "top1s": result.top1s}
    return ctx.stages.run(name, key, run)


def _on_choice_set(evaluation: dict) -> float:
    """A student evaluation's mean top-1 where Algorithm 1 reads accuracies."""
    return evaluation[HELD_OUT_SPLIT]["top1_mean"] if HELD_OUT_SPLIT in evaluation else evaluation["top1_mean"]


def _student_stage_name(member: dict) -> str:
    return f"student/step-{member['step']:02d}"


def _chain_stage(ctx: BuildContext, teacher: dict, tau: float) -> list[dict]:
    """The pruning chain; it stops at the first member at or below tau, except for a curve (it
    goes to the last step, and then does not depend on tau or D_S at all)."""
    cfg, ds = ctx.cfg, ctx.dataset
    stop_below = None if cfg.curve else tau
    inputs = {"teacher": teacher["sha256"], "finetune_per_class": cfg.finetune_per_class,
              "val_per_class": cfg.val_per_class, "holdout_per_class": cfg.holdout_per_class}
    key = {**inputs, "prune": dataclasses.asdict(cfg.prune), "stop_below": stop_below}

    def run() -> dict:
        model = load_teacher(teacher["labeler_dir"], ds.num_classes).model
        folder = Path(cfg.chain_dir) if cfg.chain_dir else ctx.work / "chain"
        members = prune_chain(model, ds, ctx.train_set(), ctx.choice_set, cfg.prune, folder,
                              stop_below=stop_below, device=cfg.device, inputs=inputs)
        return {"members": [m.to_json() for m in members]}
    result = ctx.stages.run("chain", key, run, lambda r: all(Path(m["path"]).is_dir() for m in r["members"]))
    return result["members"]


def _dis_stage(ctx: BuildContext, member: dict, d_s: dict) -> dict:
    """Dis(theta) of one chain member: early-window student loss reduction over several seeds."""
    cfg, ds = ctx.cfg, ctx.dataset
    sel = cfg.selection
    key = {"member": _source_sha(Path(member["path"])), "distilled": d_s["sha256"],
           "protocol": cfg.protocol.stage_key(), "window": sel.window, "seeds": sel.dis_seeds}

    def run() -> dict:
        data = ctx.distilled(d_s)
        model, _ = load_checkpoint(Path(member["path"]))
        model = model.to(pick_device(cfg.device)).eval()
        curves = [train_student(data, model, ds, cfg.protocol, seed, stop_after=sel.window, device=cfg.device).losses
                  for seed in sel.dis_seeds]
        dis, std = mean_dis(curves, sel.window)
        return {"dis_mean": dis, "dis_std": std, "curves": curves}
    return ctx.stages.run(f"dis/step-{member['step']:02d}", key, run)


def _export_stage(ctx: BuildContext, report: dict, chosen_path: str, chosen: dict | None, plots: dict) -> Path:
    ds, teacher, tau, student = ctx.dataset, report["teacher"], report["tau"], report["student"]
    if chosen is None:
        model, kind = load_teacher(chosen_path, ds.num_classes).model, TEACHER
    else:
        model, _ = load_checkpoint(Path(chosen_path))
        kind = PRUNED
    name = kind.default_name(model.arch, ds.slug, report["ipc"])
    top1 = chosen["top1"] if chosen else teacher["top1"]
    metrics = {
        "tau_mean": tau["top1_mean"], "tau_std": tau["top1_std"], "seeds": len(ctx.cfg.seeds),
        "teacher_top1": top1, "full_teacher_top1": teacher["top1"],
        "student_top1_mean": student["top1_mean"], "student_top1_std": student["top1_std"],
        "eval_epochs": ctx.cfg.protocol.epochs, "teacher_params": teacher["params"],
        "teacher_weights_bytes": teacher["weights_bytes"], "teacher_gflops": teacher["gflops"],
    }
    if report["selection"]["zeta"] is not None:
        metrics["zeta"] = report["selection"]["zeta"]
    metrics.update(flat_metrics(report.get("label_robust", {}).get("labeler")))
    if chosen is not None and tau.get("label_seconds") and student.get("label_seconds"):
        # Flash-DD's speed-up: the teacher's extra time for soft labels over the labeler's, both
        # measured inside the same downstream training loop on this machine
        metrics["label_speedup"] = sum(tau["label_seconds"]) / sum(student["label_seconds"])
        metrics["label_speedup_device"] = device_name()
    return export_labeler(
        model, Path(ctx.cfg.out) / name, name=name, kind=kind.name, class_names=ds.class_names,
        resolution=ds.resolution, mean=ds.spec.mean, std=ds.spec.std, sample_images=ctx.val.spread(32),
        lineage={"dataset": ds.name, "ipc": report["ipc"], "val_split": ds.val_split(),
                 "selection_split": report["splits"]["selection"],
                 "distilled": f"{report['distilled']['method']} ({Path(report['distilled']['path']).name})",
                 "distilled_sha256": report["distilled"]["sha256"], "teacher": teacher["source"],
                 "preset": ctx.cfg.preset, "chain_step": chosen["step"] if chosen else 0},
        metrics=metrics, extra_files={f"plots/{Path(p).name}": Path(p) for p in plots.values()},
    )


# -- helpers ----------------------------------------------------------------------------------


def _splits(ctx: BuildContext) -> dict:
    """Which images every number comes from (said in the report and on the card)."""
    reported = ctx.dataset.val_split()
    selection = (f"{ctx.cfg.holdout_per_class} training images per class held out of teacher training, fine-tunes "
                 f"and RDED's pool" if ctx.cfg.holdout_per_class else f"the {reported} split (as the papers do)")
    return {"reported": reported, "selection": selection}

def _source_sha(path: Path) -> str:
    """Content hash of a teacher source: its weights file (labeler or checkpoint) or .pth."""
    if path.is_file():
        return sha256_file(path)
    for weights in (path / WEIGHTS, path / "model.safetensors"):
        if weights.is_file():
            return sha256_file(weights)
    raise FlashDDError(f"{path} holds no weights to hash (expected {WEIGHTS}).")


def _torchrun(cfg: BuildConfig, args: list[str]) -> None:
    # --standalone: a free rendezvous port, so builds (or tests) running side by side on one node don't collide
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={cfg.nproc}",
           "-m", "flashdd_zoo", *args]
    if cfg.data_root:
        cmd += ["--data-root", str(cfg.data_root)]
    if cfg.device:
        cmd += ["--device", cfg.device]
    if subprocess.run(cmd).returncode != 0:
        raise FlashDDError(f"the torchrun stage `flashdd-zoo {args[0]}` failed on {cfg.nproc} processes (its error is "
                           "printed above); fix it and rerun the build, which resumes at this stage.")
