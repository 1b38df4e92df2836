"""Diagnostics: share of softmax mass on the selected keys, and output error against dense attention."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import make_qkv

from gpa_lib.attention import gpa_attention, select_key_blocks
from gpa_lib.attention.analysis.diagnostics import (
    err_stat,
    gpa_quality,
    mass_ratio_interval,
    relative_error,
    selected_mass,
)


def inputs(seed=0):
    return make_qkv(1, 2, (8, 4), (4, 6), 3, 5, seed=seed)


@pytest.mark.parametrize("affinity", ["dot", "euclid"])
def test_selected_mass_matches_a_loop(affinity):
    q, k, v = inputs()
    _, sel = gpa_attention(
        q, k, v, pool=2, cell=4, topk=2, affinity=affinity, return_selection=True
    )
    mass = selected_mass(
        q, k, sel, pool=2, cell=4, affinity=affinity, chunk_elements=50
    )  # many chunks
    assert mass.shape == (1, 2, 8, 4)
    for h in range(2):
        for y in range(8):
            for x in range(4):
                diff = q[0, h, y, x] - k[0, h]  # (Hk, Wk, D)
                s = (
                    k[0, h] @ q[0, h, y, x] if affinity == "dot" else -(diff**2).sum(-1)
                ) / math.sqrt(3)
                p = torch.softmax(s.flatten(), 0).view(4, 6)
                kept = sum(
                    p[(b // 3) * 2 : (b // 3) * 2 + 2, (b % 3) * 2 : (b % 3) * 2 + 2].sum()
                    for b in sel[0, h, y // 4, x // 4].tolist()
                )
                assert mass[0, h, y, x].item() == pytest.approx(kept.item(), abs=1e-12)


def test_every_block_keeps_all_mass_and_no_error():
    q, k, v = inputs(1)
    quality = gpa_quality(q, k, v, pool=2, cell=4, topk=6)
    assert quality.mass_mean == pytest.approx(1.0, abs=1e-12)
    assert quality.mass_p05 == pytest.approx(1.0, abs=1e-12)
    assert quality.error_total < 1e-12 and quality.error_mean < 1e-12
    assert quality.keys_fraction == 1.0


def test_fewer_blocks_lose_mass_and_add_error():
    q, k, v = inputs(2)
    few, more = (
        gpa_quality(q, k, v, pool=2, cell=4, topk=1),
        gpa_quality(q, k, v, pool=2, cell=4, topk=4),
    )
    assert 0 < few.mass_mean < more.mass_mean < 1
    assert few.error_total > more.error_total > 0
    assert err_stat(q, k, pool=2, cell=4, topk=1) == pytest.approx(few.mass_mean)


def test_mass_ratio_interval_is_a_bootstrap_over_cells_around_the_mean_ratio():
    q, k, v = inputs(2)  # 2 heads, 2 query cells of 4x4: 4 units
    interval = mass_ratio_interval(q, k, pool=2, cell=4, topk=2, n_boot=500, seed=3)
    quality = gpa_quality(q, k, v, pool=2, cell=4, topk=2)
    assert interval.estimate == pytest.approx(quality.mass_mean / quality.keys_fraction - 1)
    assert interval.n == 4 and "query cell" in interval.method
    assert interval.lo <= interval.estimate <= interval.hi
    # the replicates are means of 4 per-cell ratios: the ends lie within their range
    selection = select_key_blocks(q, k, pool=2, cell=4, topk=2)
    mass = selected_mass(q, k, selection, pool=2, cell=4).double()  # (1, 2, 8, 4)
    per_cell = mass.unflatten(2, (2, 4)).mean((3, 4)) / quality.keys_fraction - 1  # (1, 2, 2)
    assert per_cell.min().item() - 1e-12 <= interval.lo < interval.hi <= per_cell.max() + 1e-12
    again = mass_ratio_interval(q, k, pool=2, cell=4, topk=2, n_boot=500, seed=3)
    assert (again.lo, again.hi) == (interval.lo, interval.hi)


def test_with_every_block_the_ratio_is_zero_without_spread():
    q, k, _ = inputs(1)
    interval = mass_ratio_interval(q, k, pool=2, cell=4, topk=6, n_boot=50)
    assert interval.estimate == pytest.approx(0.0, abs=1e-12)
    assert interval.lo == pytest.approx(0.0, abs=1e-12)
    assert interval.hi == pytest.approx(0.0, abs=1e-12)


def test_relative_error():
    ref = torch.ones(1, 1, 2, 2, 4)
    per_query, total = relative_error(ref * 1.1, ref)
    torch.testing.assert_close(per_query, torch.full((1, 1, 2, 2), 0.1, dtype=torch.float64))
    assert total == pytest.approx(0.1)
    with pytest.raises(ValueError, match="differs from reference.shape"):
        relative_error(ref, ref[..., :2])


def test_selection_of_the_wrong_shape_is_an_error():
    q, k, _ = inputs()
    with pytest.raises(
        ValueError, match=r"selection has shape \(1, 2, 2, 2\), expected \(1, 2, 2, 1, 2\)"
    ):
        selected_mass(q, k, torch.zeros(1, 2, 2, 2, dtype=torch.long), pool=2, cell=4)
