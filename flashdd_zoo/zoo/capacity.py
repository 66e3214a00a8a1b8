"""Capacity selection (Flash-DD Algorithm 1, Eqs. 6-8) over a pruning chain.

Phase 1: members whose top-1 holds at the full teacher's (within a tolerance) are free
reductions. Phase 2: members still above tau(D_S) are candidates, each scored by Dis(theta), how
much a fresh student's loss falls over the early window of downstream training with that
teacher (averaged over student seeds). zeta is Dis at the inflection of Dis against model size;
candidates with Dis >= zeta compete on Dis + gamma * Acc.

Our conventions (the paper leaves them open): Dis is the *relative* loss reduction
(L_first - L_last) / L_first over the window, so it is comparable across temperatures and loss
types; Acc enters as a fraction in [0, 1]; size is log10(parameters).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SelectionConfig:
    window: int = 20  # early epochs for Dis (Flash-DD: 50 on ImageNet-1K / Places, 20 on ImageNet-100)
    gamma: float = 0.05  # weight of Acc (Flash-DD: 0.1 on ImageNet-1K / Places, 0.05 on ImageNet-100)
    dis_seeds: tuple[int, ...] = (0, 1)
    hold_tolerance: float = 1.0  # phase 1 while top-1 >= full teacher's - this (points)


def dis_from_losses(losses: list[float], window: int) -> float:
    """Relative loss reduction over the first `window` epochs."""
    w = min(window, len(losses))
    if w < 2 or losses[0] <= 0:
        raise ValueError(f"Dis needs at least 2 epochs of positive loss, got {losses[:w]}")
    return (losses[0] - losses[w - 1]) / losses[0]


def inflection_zeta(params: list[int], dis: list[float]) -> tuple[float, int | None]:
    """zeta = Dis where the second derivative of Dis over log10(size) first changes sign.

    Returns (zeta, index into the inputs) or (min Dis, None) when there is no sign change (then
    every candidate passes the Dis >= zeta test).
    """
    if len(dis) < 3:
        return min(dis), None
    order = np.argsort(params)
    x = np.log10(np.asarray(params, dtype=float)[order])
    y = np.asarray(dis, dtype=float)[order]
    second = np.gradient(np.gradient(y, x), x)
    for i in range(1, len(second)):
        if np.sign(second[i]) != np.sign(second[i - 1]) and second[i] != 0:
            idx = int(order[i])
            return float(dis[idx]), idx
    return float(min(dis)), None


@dataclass
class Selection:
    phase: list[int]  # 1, 2, or 0 (below tau: out)
    candidates: list[int]
    zeta: float | None
    zeta_index: int | None
    scores: dict[int, float] = field(default_factory=dict)
    chosen: int | None = None
    reason: str = ""


def assign_phases(top1: list[float], full_top1: float, tau: float, tolerance: float) -> list[int]:
    """Members are ordered from largest to smallest; phase 1 ends at the first that loses accuracy."""
    phases, in_phase1 = [], True
    for acc in top1:
        in_phase1 = in_phase1 and acc >= full_top1 - tolerance
        phases.append(1 if in_phase1 else (2 if acc > tau else 0))
    return phases


def select_capacity(
    params: list[int], top1: list[float], dis: dict[int, float], full_top1: float, tau: float,
    cfg: SelectionConfig,
) -> Selection:
    """Pick the chain member to keep. `dis` maps member index -> Dis for the scored members."""
    phases = assign_phases(top1, full_top1, tau, cfg.hold_tolerance)
    last_phase1 = max((i for i, p in enumerate(phases) if p == 1), default=None)
    candidates = [i for i, p in enumerate(phases) if p == 2 or i == last_phase1]
    candidates = [i for i in candidates if i in dis]
    if not candidates:
        return Selection(phases, [], None, None, chosen=None,
                         reason="no pruned member stays above tau(D_S): keep the full teacher")
    zeta, zeta_idx = inflection_zeta([params[i] for i in candidates], [dis[i] for i in candidates])
    zeta_idx = candidates[zeta_idx] if zeta_idx is not None else None
    passing = [i for i in candidates if dis[i] >= zeta - 1e-12]
    scores = {i: dis[i] + cfg.gamma * top1[i] / 100.0 for i in passing}
    chosen = max(scores, key=scores.get)
    return Selection(phases, candidates, zeta, zeta_idx, scores, chosen,
                     reason=f"argmax Dis + {cfg.gamma} * Acc over {len(passing)} members with Dis >= zeta")


def select_over_chain(
    chain: list[dict], dis_of: Callable[[dict], dict], *, full_top1: float, tau: float, cfg: SelectionConfig,
) -> tuple[Selection, dict[int, dict]]:
    """Algorithm 1 on a pruning chain (members largest first, each with "params" and "top1").

    The selection sees the chain up to its first member at or below tau, however far a curve build
    pruned past it (the curve shows what the selection would pick; it never changes it), and
    measures Dis (`dis_of(member)` -> {"dis_mean": ...}) only for members above tau. `full_top1` and
    `tau` are read on the same split as the members' top-1. Returns the selection and the Dis records.
    """
    first_out = next((i for i, m in enumerate(chain) if m["top1"] <= tau), len(chain) - 1)
    seen = chain[: first_out + 1]
    dis = {i: dis_of(m) for i, m in enumerate(seen) if m["top1"] > tau}
    sel = select_capacity([m["params"] for m in seen], [m["top1"] for m in seen],
                          {i: d["dis_mean"] for i, d in dis.items()}, full_top1, tau, cfg)
    return sel, dis


def mean_dis(loss_curves: list[list[float]], window: int) -> tuple[float, float]:
    values = [dis_from_losses(c, window) for c in loss_curves]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
