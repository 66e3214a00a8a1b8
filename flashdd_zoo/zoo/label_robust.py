"""DD-Ranking's label-robust scores: how much of a distilled set's accuracy its images earn,
rather than its labeler (DD-Ranking, NUS-HPC-AI-Lab; definitions read from its metrics code).

All accuracies are student top-1 on the real validation split, as fractions:

    IOR = acc(D_S, soft labels) - acc(random real subset of D_S's size, soft labels), one labeler
    HLR = acc(real training data, hard labels) - acc(D_S, hard labels)
    LRS = (e^a - e^-1) / (e - e^-1),  a = lam * IOR - (1 - lam) * HLR   (lam = 0.5: (IOR - HLR) / 2)

Scores are computed per evaluation round (a student seed with its own random subset), then
averaged; the spread is the population standard deviation, as DD-Ranking reports it. DD-Ranking's
own code feeds percentages into the exponential; the paper's definition (and this module) uses
fractions, which keeps LRS in (0, 1].
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..errors import ArgumentError

DEFAULT_LAMBDA = 0.5


@dataclass(frozen=True)
class LabelRobustScores:
    ior: float | None  # improvement over random
    hlr: float | None  # hard-label recovery
    lrs: float | None  # label-robust score

    def to_json(self) -> dict:
        return asdict(self)


def label_robust_score(ior: float, hlr: float, lam: float = DEFAULT_LAMBDA) -> float:
    """LRS from IOR and HLR (fractions)."""
    a = lam * ior - (1 - lam) * hlr
    return (math.exp(a) - math.exp(-1)) / (math.e - math.exp(-1))


def label_robust_scores(ds_soft: float | None = None, random_soft: float | None = None,
                        real_hard: float | None = None, ds_hard: float | None = None,
                        lam: float = DEFAULT_LAMBDA) -> LabelRobustScores:
    """One round's IOR, HLR and LRS from its four top-1s (fractions); a score whose inputs are
    missing is None."""
    _check_fractions(ds_soft=ds_soft, random_soft=random_soft, real_hard=real_hard, ds_hard=ds_hard)
    if not 0 <= lam <= 1:
        raise ArgumentError(f"the LRS weight lambda must lie in [0, 1], got {lam}.")
    ior = ds_soft - random_soft if ds_soft is not None and random_soft is not None else None
    hlr = real_hard - ds_hard if real_hard is not None and ds_hard is not None else None
    lrs = label_robust_score(ior, hlr, lam) if ior is not None and hlr is not None else None
    return LabelRobustScores(ior, hlr, lrs)


def summarize_rounds(ds_soft: Sequence[float] | None, random_soft: Sequence[float] | None,
                     real_hard: float | None, ds_hard: Sequence[float] | None,
                     lam: float = DEFAULT_LAMBDA) -> dict:
    """Scores per round (round i pairs the i-th top-1 of each list) with their mean and std."""
    lengths = {len(v) for v in (ds_soft, random_soft, ds_hard) if v is not None}
    if len(lengths) > 1:
        raise ArgumentError(f"every list of top-1s needs one value per round, got lengths {sorted(lengths)}.")
    rounds = lengths.pop() if lengths else 0
    per_round = [label_robust_scores(_at(ds_soft, i), _at(random_soft, i), real_hard, _at(ds_hard, i), lam)
                 for i in range(rounds)]
    out: dict = {"rounds": rounds, "lambda": lam, "real_hard_top1": real_hard}
    for name in ("ior", "hlr", "lrs"):
        values = [getattr(r, name) for r in per_round]
        if values and values[0] is not None:
            out[name] = {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "values": values}
    return out


def flat_metrics(scores: dict | None) -> dict:
    """summarize_rounds' scores as flat metrics.json / result keys (ddranking_lrs_mean, ...)."""
    flat = {f"ddranking_{k}_{stat}": scores[k][stat] for k in ("ior", "hlr", "lrs") if scores and k in scores
            for stat in ("mean", "std")}
    if flat:
        flat["ddranking_rounds"] = scores["rounds"]
    return flat


def _at(values: Sequence[float] | None, i: int) -> float | None:
    return None if values is None else values[i]


def _check_fractions(**values: float | None) -> None:
    for name, v in values.items():
        if v is not None and not 0 <= v <= 1:
            raise ArgumentError(f"{name} top-1 must be a fraction in [0, 1], got {v}; divide percentages by 100.")
