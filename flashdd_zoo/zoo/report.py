"""Build reports: JSON (everything), Markdown (for people) and plots like Flash-DD Figs. 2 and 4."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def write_report(out: Path, report: dict) -> dict[str, Path]:
    """Write build-report.json/.md and plots/*.png under `out`; return the plot paths."""
    out.mkdir(parents=True, exist_ok=True)
    plots = {"capacity": _plot_capacity(out / "plots" / "capacity.png", report),
             "dis": _plot_dis(out / "plots" / "dis.png", report)}
    _atomic_write(out / "build-report.json", json.dumps(report, indent=2, default=str) + "\n")
    _atomic_write(out / "build-report.md", render_markdown(report))
    return plots


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def render_markdown(r: dict) -> str:
    t, tau, sel = r["teacher"], r["tau"], r["selection"]
    chosen = sel["chosen"]
    lines = [
        f"# Build report: {r['dataset']} IPC {r['ipc']} ({r['preset']} preset)", "",
        f"- full teacher: {t['params']:,} parameters, {t['weights_bytes']:,} bytes, top-1 {t['top1']:.2f}% ({t['source']})",
        f"- distilled set: {r['distilled']['method']} at {r['distilled']['path']} (sha256 {r['distilled']['sha256'][:12]}…)",
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
        lines.append(
            f"| {m['step']}{mark} | {m['params']:,} | {100 * m['params'] / t['params']:.2f}% | {m['gflops']:.4f} | "
            f"{m['top1']:.2f}% | {sel['phase'][i]} | {_f(dis and dis['dis_mean'], '.4f')} | {_f(score, '.4f')} | "
            f"{_f(ver and ver['top1_mean'], '.2f')} |")
    lines += ["", "Phase 1: top-1 holds at the full teacher's; phase 2: above tau(D_S); 0: below tau.",
              "", "![capacity](plots/capacity.png)", "", "![Dis](plots/dis.png)", "",
              f"Stages run: {', '.join(r['stages']['ran']) or 'none'}; reused: {', '.join(r['stages']['reused']) or 'none'}.", ""]
    return "\n".join(lines)


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
