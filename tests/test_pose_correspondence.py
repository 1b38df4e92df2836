"""The synthetic correspondence ground truth and the accuracy metrics built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpa_lib.pose.accuracy import RADII, _pair_layer
from gpa_lib.pose.data import SyntheticPoses
from gpa_lib.pose.data.correspondence import (
    BACKGROUND,
    HIDDEN,
    VISIBLE,
    _surface,
    correspondence_status,
    match_surfaces,
)
from gpa_lib.pose.metrics import (
    bootstrap_interval,
    bootstrap_mean,
    bootstrap_seeds_pairs,
    record_interval,
)
from gpa_lib.stats import Interval


@pytest.fixture(scope="module")
def pairs():
    data = SyntheticPoses(5, size=128, seed=3)
    return data, [data.correspondence(i) for i in range(len(data))]


def _texture_difference(item, corr, status, shuffle=False):
    ty, tx = torch.nonzero(status == VISIBLE, as_tuple=True)
    sy, sx = corr[0, ty, tx], corr[1, ty, tx]
    if shuffle:
        perm = torch.randperm(len(sy), generator=torch.Generator().manual_seed(0))
        sy, sx = sy[perm], sx[perm]
    target, source = item["target"][:, ty, tx], item["source"][:, sy, sx]
    return (target - source).abs().amax(0)  # (n,) largest channel difference, [-1, 1] units


def test_true_source_shows_the_same_texture(pairs):
    data, truths = pairs
    for i, (corr, status) in enumerate(truths):
        n_visible = int((status == VISIBLE).sum())
        assert n_visible > 500, f"pair {i} has only {n_visible} pixels with a visible source"
        close = float((_texture_difference(data[i], corr, status) < 0.1).float().mean())
        chance = float((_texture_difference(data[i], corr, status, True) < 0.1).float().mean())
        # Antialiased pattern edges and the half-pixel rounding of the source position leave some
        # pixels off; a wrong correspondence would be no better than the shuffled one.
        assert close > 0.6, f"pair {i}: only {close:.2f} of true sources match in colour"
        assert close > 2.5 * chance, f"pair {i}: {close:.2f} against {chance:.2f} by chance"


def test_source_pixel_shows_the_same_part_at_the_same_frame_coordinates(pairs):
    data, _ = pairs
    person, source_pose, target_pose = data.sample(1)
    target_parts, target = _surface(person, target_pose, data.size)
    source_parts, source = _surface(person, source_pose, data.size)
    corr, status = match_surfaces(target_parts, target, source_parts, source)
    ty, tx = torch.nonzero(status == VISIBLE, as_tuple=True)
    sy, sx = corr[0, ty, tx], corr[1, ty, tx]
    target_names = [target_parts[int(o)].name for o in target.owner[ty, tx]]
    source_names = [source_parts[int(o)].name for o in source.owner[sy, sx]]
    assert target_names == source_names
    # Same texture coordinates (offsets included, as the texture sees them), up to the rounding of
    # the source position to the nearest pixel: at most half a pixel along each axis.
    assert float((target.t[ty, tx] - source.t[sy, sx]).abs().max()) <= 0.75
    assert float((target.s[ty, tx] - source.s[sy, sx]).abs().max()) <= 0.75


def test_same_pose_is_the_identity():
    data = SyntheticPoses(3, size=64, seed=5)
    for i in range(len(data)):
        person, pose, _ = data.sample(i)
        corr, status = correspondence_status(person, pose, pose, data.size)
        assert not bool((status == HIDDEN).any())
        ys, xs = torch.nonzero(status == VISIBLE, as_tuple=True)
        assert len(ys) > 100
        assert torch.equal(corr[0, ys, xs], ys) and torch.equal(corr[1, ys, xs], xs)
        assert bool((corr[:, status != VISIBLE] == -1).all())


def test_status_follows_the_mask(pairs):
    data, truths = pairs
    corr, status = truths[0]
    mask = data[0]["target_mask"][0] > 0
    # Edge pixels where several parts each cover less than half can differ; almost none do.
    assert float(((status != BACKGROUND) != mask).float().mean()) < 0.01
    assert corr.dtype == torch.long and corr.shape == (2, *data.size)


def _one_hot_problem(grid=8):
    """q, k on a grid x grid image whose attention goes to the true source of every pixel."""
    n = grid * grid
    k = torch.eye(n).reshape(1, grid, grid, n) * 40.0  # (h, Hk, Wk, D): key j is e_j
    truth_y = (torch.arange(grid)[:, None].expand(grid, grid) + 2) % grid  # shifted by 2 rows
    truth_x = torch.arange(grid)[None].expand(grid, grid)
    target = (truth_y * grid + truth_x).flatten()  # (n,) true key of every query
    q = (torch.eye(n)[target] * 40.0 * n**0.5).reshape(1, grid, grid, n)
    corr = torch.stack([truth_y, truth_x])
    status = torch.full((grid, grid), VISIBLE, dtype=torch.uint8)
    return q, k, corr, status, truth_y, truth_x


def test_pair_layer_measures_attention_at_the_truth():
    grid, pool, cell = 8, 2, 4
    q, k, corr, status, truth_y, truth_x = _one_hot_problem(grid)
    n_blocks = (grid // pool) ** 2
    # A selection that holds, for every cell, the blocks of its queries' truths; one that holds none.
    good = torch.zeros(1, grid // cell, grid // cell, 4, dtype=torch.long)
    bad = torch.zeros_like(good)
    for cy in range(grid // cell):
        for cx in range(grid // cell):
            ys, xs = (
                truth_y[cy * cell : (cy + 1) * cell, cx * cell : (cx + 1) * cell],
                truth_x[cy * cell : (cy + 1) * cell, cx * cell : (cx + 1) * cell],
            )
            blocks = torch.unique((ys // pool) * (grid // pool) + xs // pool)
            good[0, cy, cx] = blocks
            others = torch.tensor([b for b in range(n_blocks) if b not in set(blocks.tolist())])
            bad[0, cy, cx] = others[:4]
    out = _pair_layer(q, k, corr, status, {"good": good, "bad": bad, "dense": None}, pool, cell)
    assert out["good/recall"] == 1.0 and out["bad/recall"] == 0.0 and out["dense/recall"] == 1.0
    for radius in RADII:
        assert out[f"good/mass_r{radius}"] > 0.99 and out[f"dense/mass_r{radius}"] > 0.99
        assert out[f"good/argmax_r{radius}"] == 1.0
    assert out["bad/mass_r1"] < 0.9  # the truth's block is gone; only neighbours can be near it


def test_bootstrap_intervals():
    flat = bootstrap_mean(np.full(20, 0.5))
    assert flat["mean"] == 0.5 and flat["ci95"] == [0.5, 0.5] and flat["n"] == 20
    assert bootstrap_mean(np.array([np.nan]))["n"] == 0
    values = np.random.default_rng(0).normal(size=(3, 50))
    both = bootstrap_seeds_pairs(values)
    pairs_only = bootstrap_mean(values.mean(axis=0))
    assert both["ci95"][0] < both["mean"] < both["ci95"][1]
    assert len(both["per_seed"]) == 3
    # Resampling the seeds too can only widen the interval (up to bootstrap noise).
    assert both["ci95"][1] - both["ci95"][0] > 0.8 * (pairs_only["ci95"][1] - pairs_only["ci95"][0])
    with pytest.raises(ValueError, match="n_seeds, n_pairs"):
        bootstrap_seeds_pairs(np.zeros(5))


def test_bootstrap_interval_is_the_project_interval_and_stores_as_before():
    values = np.random.default_rng(1).normal(size=40)
    interval = bootstrap_interval(values, seed=3)
    assert isinstance(interval, Interval) and interval.n == 40 and interval.level == 0.95
    assert interval.lo < interval.estimate < interval.hi
    # The stored form keeps the committed results' field names and reads back to the same interval.
    stored = bootstrap_mean(values, seed=3)
    assert stored == {"mean": interval.estimate, "ci95": [interval.lo, interval.hi], "n": 40,
                      "n_boot": 2000}  # fmt: skip
    assert record_interval(stored) == interval
    empty = bootstrap_interval(np.array([np.nan]))
    assert empty.n == 0 and np.isnan(empty.estimate) and np.isnan(empty.lo)
