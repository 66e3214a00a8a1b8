"""RDED's training-view augmentations (zoo/augment.py): ShufflePatches, CutMix and its Beta draw.

Images with a distinct value at every pixel of every image let each output pixel be traced back
to the one it came from, so the checks below state where every pixel must come from.
"""

from __future__ import annotations

import math

import pytest
import torch

from flashdd_zoo.zoo.augment import _beta, cutmix, shuffle_patches


def _traceable(n: int, h: int, w: int) -> torch.Tensor:
    """(n, 3, h, w) floats, all distinct: value = index of the element in the flattened batch."""
    return torch.arange(n * 3 * h * w, dtype=torch.float32).view(n, 3, h, w)


@pytest.mark.parametrize("factor", [2, 4])
def test_shuffle_patches_permutes_whole_strips_per_image(factor):
    n, side = 8, 16
    x = _traceable(n, side, side)
    out = shuffle_patches(x, factor, torch.Generator().manual_seed(0))
    s = side // factor
    perms = set()
    for i in range(n):
        # block (r, c) of the output is block (rows[r], cols[c]) of the input: whole strips along the
        # width moved, then whole strips along the height, so rows and columns are permutations
        src = out[i, 0, ::s, ::s]  # top-left pixel of every block
        rows = ((src - x[i, 0, 0, 0]) // side // s).long()
        cols = (((src - x[i, 0, 0, 0]) % side) // s).long()
        row_perm, col_perm = rows[:, 0].tolist(), cols[0, :].tolist()
        assert sorted(row_perm) == list(range(factor)) and sorted(col_perm) == list(range(factor))
        for r in range(factor):
            for c in range(factor):
                a, b = row_perm[r] * s, col_perm[c] * s
                assert torch.equal(out[i, :, r * s:(r + 1) * s, c * s:(c + 1) * s], x[i, :, a:a + s, b:b + s])
        perms.add((tuple(row_perm), tuple(col_perm)))
    ident = (tuple(range(factor)), tuple(range(factor)))
    assert len(perms) > 1 and perms != {ident}  # each image draws its own, and they do move strips
    again = shuffle_patches(x, factor, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # seeded: the same views on a resumed or repeated run


def test_shuffle_patches_edge_cases():
    x = _traceable(2, 12, 12)
    assert shuffle_patches(x, 1) is x
    with pytest.raises(ValueError, match="size divisible by 5, got 12"):
        shuffle_patches(x, 5)


def _box(changed: torch.Tensor) -> tuple[int, int, int, int]:
    rows = changed.any(1).nonzero().flatten()
    cols = changed.any(0).nonzero().flatten()
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


def test_cutmix_pastes_one_box_from_a_permutation_and_reports_its_share():
    n, h, w = 8, 16, 12
    x = _traceable(n, h, w)
    before = x.clone()
    boxes = 0
    for seed in range(12):
        out, perm, lam = cutmix(x, 1.0, torch.Generator().manual_seed(seed))
        assert torch.equal(x, before)  # the input is left alone
        assert sorted(perm.tolist()) == list(range(n))
        moved = [i for i in range(n) if perm[i] != i]
        changed = (out != x).any(1)  # (n, h, w)
        assert not changed[[i for i in range(n) if perm[i] == i]].any()
        if not changed.any():
            assert lam == 1.0
            continue
        boxes += 1
        y1, y2, x1, x2 = _box(changed.any(0))
        for i in moved:  # one box for the whole batch, the same rectangle in every image that moved
            assert changed[i, y1:y2, x1:x2].all() and changed[i].sum() == (y2 - y1) * (x2 - x1)
            assert torch.equal(out[i, :, y1:y2, x1:x2], x[perm[i], :, y1:y2, x1:x2])
        assert lam == pytest.approx(1 - (y2 - y1) * (x2 - x1) / (h * w))
    assert boxes >= 6


@pytest.mark.parametrize("alpha, below_tenth", [
    (0.5, 2 / math.pi * math.asin(math.sqrt(0.1))),  # Beta(1/2, 1/2): the arcsine law, 0.2048
    (1.0, 0.1),  # uniform
    (2.0, 3 * 0.1**2 - 2 * 0.1**3),  # Beta(2, 2): CDF 3x^2 - 2x^3, 0.028
])
def test_cutmix_lambda_is_beta_alpha_alpha(alpha, below_tenth):
    g = torch.Generator().manual_seed(0)
    draws = torch.tensor([_beta(alpha, g, "cpu") for _ in range(6000)], dtype=torch.float64)
    assert ((draws >= 0) & (draws <= 1)).all()
    # mean 1/2 and variance 1 / (4 (2 alpha + 1)) of Beta(alpha, alpha); P(lambda < 0.1) from its CDF
    assert float(draws.mean()) == pytest.approx(0.5, abs=0.015)
    assert float(draws.var()) == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.08)
    assert float((draws < 0.1).double().mean()) == pytest.approx(below_tenth, abs=0.015)
