"""Build reports: JSON (everything), Markdown (for people) and plots like Flash-DD Figs. 2 and 4."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..atomic import atomic_write_text  # noqa: E402
from .evaluate import EvalProtocol  # noqa: E402


def capacity_curve(r: dict) -> dict:
    """Flash-DD Fig. 2 measured: the full teacher and every chain member with its students' top-1
    (reported split, mean/std over seeds), the selected and the best point, and the regret."""
    t, sel = r["teacher"], r["selection"]
    points = [_point(0, t["params"], t["params"], r["tau"])]
    for i, m in enumerate(r["chain"]):
        points.append(_point(m["step"], m["params"], t["params"], r["verified"][str(i)]))
    chosen = 0 if sel["chosen"] is None else r["chain"][sel["chosen"]]["step"]
    best = max(points, key=lambda p: p["top1_mean"])
    selected = next(p for p in points if p["step"] == chosen)
    return {"points": points, "selected_step": chosen, "best_step": best["step"],
            "selection_regret": best["top1_mean"] - selected["top1_mean"]}


def _point(step: int, params: int, teacher_params: int, evaluation: dict) -> dict:
    point = {"step": step, "params": params, "param_ratio": params / teacher_params,
             "top1_mean": evaluation["top1_mean"], "top1_std": evaluation["top1_std"], "top1s": evaluation["top1s"],
             "label_seconds": evaluation.get("label_seconds")}
    if "holdout" in evaluation:
        point["holdout_top1_mean"] = evaluation["holdout"]["top1_mean"]
    return point


def write_report(out: Path, report: dict) -> dict[str, Path]:
    """Write build-report.json/.md and plots/*.png under `out`; return the plot paths."""
    out.mkdir(parents=True, exist_ok=True)
    plots = {"capacity": _plot_capacity(out / "plots" / "capacity.png", report),
             "dis": _plot_dis(out / "plots" / "dis.png", report)}
    if "curve" in report:
        plots["curve"] = _plot_curve(out / "plots" / "curve.png", report)
    atomic_write_text(out / "build-report.json", json.dumps(report, indent=2, default=str) + "\n")
    atomic_write_text(out / "build-report.md", render_markdown(report))
    return plots


def _protocol_text(protocol: dict) -> str:
    p = EvalProtocol(**protocol)
    return (f"{p.student}{f' ({p.student_stem} stem)' if p.student_stem else ''}, {p.epochs} epochs, "
            f"loss {p.loss_text()}")


def render_markdown(r: dict) -> str:
    t, tau, sel = r["teacher"], r["tau"], r["selection"]
    chosen = sel["chosen"]
    splits = r.get("splits", {})
    lines = [
        f"# Build report: {r['dataset']} IPC {r['ipc']} ({r['preset']} preset)", "",
        f"Reported numbers (tau, student and teacher top-1) are on the real {splits.get('reported', 'val')} split. "
        f"Algorithm 1's accuracies (phases, Acc > tau, gamma * Acc, the \"labeler top-1\" column) come from "
        f"{splits.get('selection', 'the same split')}.", "",
        f"- full teacher: {t['params']:,} parameters, {t['weights_bytes']:,} bytes, top-1 {t['top1']:.2f}% ({t['source']})",
        f"- distilled set: {r['distilled']['method']} at {r['distilled']['path']} (sha256 {r['distilled']['sha256'][:12]}…)",
        f"- students: {_protocol_text(r['config']['protocol'])}",
        f"- tau(D_S) = {tau['top1_mean']:.2f} ± {tau['top1_std']:.2f} (student top-1 with the full teacher)",
        f"- zeta = {_f(sel['zeta'], '.4f')}; selection: {sel['reason']}",
        f"- selected: {'the full teacher' if chosen is None else 'step ' + str(r['chain'][chosen]['step'])}; "
        f"student top-1 {r['student']['top1_mean']:.2f} ± {r['student']['top1_std']:.2f}",
    ]
    if "labeler_dir" in r:
        lines.append(f"- labeler: {r['labeler_dir']}; build time {r.get('build_seconds', 0):.0f} s "
                     f"(this run {r.get('run_seconds', 0):.0f} s, plus stages reused from earlier runs)")
    lines += ["", "| step | params | % of teacher | GFLOPs | teacher top-1 | phase | Dis | score | student top-1 |",
              "|---|---|---|---|---|---|---|---|---|"]
    for i, m in enumerate(r["chain"]):
        dis = r["dis"].get(str(i))
        ver = r["verified"].get(str(i)) or (r["student"] if i == chosen else None)
        score = sel["scores"].get(str(i), sel["scores"].get(i))
        mark = " **selected**" if i == chosen else ""
        phase = sel["phase"][i] if i < len(sel["phase"]) else "past stop"  # pruned further for the curve only
        lines.append(
            f"| {m['step']}{mark} | {m['params']:,} | {100 * m['params'] / t['params']:.2f}% | {m['gflops']:.4f} | "
            f"{m['top1']:.2f}% | {phase} | {_f(dis and dis['dis_mean'], '.4f')} | {_f(score, '.4f')} | "
            f"{_f(ver and ver['top1_mean'], '.2f')} |")
    if "curve" in r:
        lines += _curve_lines(r)
    if "label_robust" in r:
        lines += _label_robust_lines(r["label_robust"])
    lines += ["", "Phase 1: top-1 holds at the full teacher's; phase 2: above tau(D_S); 0: below tau (the chain stops "
              "there; members past the stop exist only for the curve and are never selected).",
              "", "![capacity](plots/capacity.png)", "", "![Dis](plots/dis.png)", "",
              f"Stages run: {', '.join(r['stages']['ran']) or 'none'}; reused: {', '.join(r['stages']['reused']) or 'none'}.", ""]
    return "\n".join(lines)


def _label_robust_lines(scores: dict) -> list[str]:
    """DD-Ranking's scores (fractions, mean ± std over seeds) for the teacher and the labeler."""
    lines = ["", "DD-Ranking's label-robust scores (fractions; IOR: D_S minus a random real subset of its size, "
             "same labeler; HLR: real data minus D_S, hard labels; LRS = (e^a - e^-1) / (e - e^-1), "
             "a = (IOR - HLR) / 2):", "", "| soft labels from | IOR | HLR | LRS |", "|---|---|---|---|"]
    for who, s in scores.items():
        cells = [f"{s[k]['mean']:.4f} ± {s[k]['std']:.4f}" for k in ("ior", "hlr", "lrs")]
        lines.append(f"| {who} | " + " | ".join(cells) + " |")
    return lines


def _curve_lines(r: dict) -> list[str]:
    c = r["curve"]
    lines = ["", f"## Curve: every member taught students ({len(c['points'][0]['top1s'])} seeds)", "",
             "| step | params | % of teacher | student top-1 (mean ± std) | on held-out slice | label s / run |",
             "|---|---|---|---|---|---|"]
    for p in c["points"]:
        marks = [m for m, s in (("selected", c["selected_step"]), ("best", c["best_step"])) if p["step"] == s]
        label = statistics.fmean(p["label_seconds"]) if p.get("label_seconds") else None
        lines.append(f"| {'teacher' if p['step'] == 0 else p['step']}{' **' + ', '.join(marks) + '**' if marks else ''} | "
                     f"{p['params']:,} | {100 * p['param_ratio']:.2f}% | {p['top1_mean']:.2f} ± {p['top1_std']:.2f} | "
                     f"{_f(p.get('holdout_top1_mean'), '.2f')} | {_f(label, '.1f')} |")
    lines += ["", f"Selection regret (best point's mean minus the selected one's): {c['selection_regret']:.2f} points.",
              "", "![curve](plots/curve.png)"]
    return lines


def _plot_curve(path: Path, r: dict) -> Path:
    """Student top-1 against labeler size (log), seeds' std as error bars, tau as a band."""
    path.parent.mkdir(parents=True, exist_ok=True)
    c, tau = r["curve"], r["tau"]
    pts = sorted(c["points"], key=lambda p: p["params"])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.axhspan(tau["top1_mean"] - tau["top1_std"], tau["top1_mean"] + tau["top1_std"], color="grey", alpha=0.25,
               label="tau(D_S) ± std (full teacher)")
    ax.errorbar([p["params"] for p in pts], [p["top1_mean"] for p in pts], yerr=[p["top1_std"] for p in pts],
                fmt="o-", capsize=3, label="student top-1 (mean ± std over seeds)")
    for step, style, name in ((c["best_step"], "g*", "best"), (c["selected_step"], "rD", "selected (Algorithm 1)")):
        p = next(p for p in pts if p["step"] == step)
        ax.plot([p["params"]], [p["top1_mean"]], style, markersize=11, alpha=0.8, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labeler parameters")
    ax.set_ylabel(f"student top-1 on {r.get('splits', {}).get('reported', 'val')} (%)")
    ax.set_title(f"{r['dataset']} IPC {r['ipc']}: students vs labeler size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _f(value, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _plot_capacity(path: Path, r: dict) -> Path:
    """Fig. 2-like: teacher and student top-1 against teacher size, tau(D_S) marked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chain, t = r["chain"], r["teacher"]
    fig, ax = plt.subplots(figsize=(6, 4))
    sizes = [t["params"]] + [m["params"] for m in chain]
    ax.plot(sizes, [t["top1"]] + [m["top1"] for m in chain], "o-", label="labeler top-1 (val)")
    students = [(t["params"], r["tau"]["top1_mean"])]
    for i, m in enumerate(chain):
        v = r["verified"].get(str(i)) or (r["student"] if i == r["selection"]["chosen"] else None)
        if v:
            students.append((m["params"], v["top1_mean"]))
    xs, ys = zip(*sorted(students))
    ax.plot(xs, ys, "s--", label="student top-1 on D_S")
    ax.axhline(r["tau"]["top1_mean"], color="grey", ls=":", label="tau(D_S)")
    return _finish(fig, ax, path, r, "top-1 (%)", "accuracy")


def _plot_dis(path: Path, r: dict) -> Path:
    """Fig. 4-like: Dis(theta) against teacher size with zeta and the selection marked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    pts = sorted((r["chain"][int(i)]["params"], d["dis_mean"], d["dis_std"]) for i, d in r["dis"].items())
    if pts:
        xs, ys, es = zip(*pts)
        ax.errorbar(xs, ys, yerr=es, fmt="o-", capsize=3, label="Dis (early-window loss reduction)")
    sel = r["selection"]
    if sel["zeta"] is not None:
        ax.axhline(sel["zeta"], color="grey", ls=":", label="zeta (inflection)")
    return _finish(fig, ax, path, r, "Dis", "Dis")


def _finish(fig, ax, path: Path, r: dict, ylabel: str, what: str) -> Path:
    """Shared look of both plots: log size axis, the selected member marked, legend, PNG."""
    chosen = r["selection"]["chosen"]
    if chosen is not None:
        ax.axvline(r["chain"][chosen]["params"], color="red", alpha=0.4, label="selected")
    ax.set_xscale("log")
    ax.set_xlabel("teacher parameters")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{r['dataset']} IPC {r['ipc']}: {what} vs teacher size")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
