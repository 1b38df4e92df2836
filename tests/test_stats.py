"""gpa_lib.stats: the Interval's JSON form, the hierarchical bootstrap against a slow loop and on data
whose answer is known, and the p-values (bootstrap, sign flips, Holm)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gpa_lib.recsys.eval.bootstrap import block_bootstrap
from gpa_lib.stats import (
    TAILS_95,
    Interval,
    bootstrap_draws,
    bootstrap_p,
    hierarchical_bootstrap,
    holm,
    paired_bootstrap,
    sign_flip_p,
)


def toy_values(n_stores=3, n_cutoffs=(2, 3, 1), n_seeds=2, n_customers=7, seed=0):
    """``{key: [[(n_seeds, n_customers_sc)] per cutoff] per store}`` with some NaN."""
    rng = np.random.default_rng(seed)
    out = {"a": [], "b": []}
    for s in range(n_stores):
        blocks_a, blocks_b = [], []
        for c in range(n_cutoffs[s]):
            n = n_customers + s + c  # awkward, unequal sizes
            a = rng.normal(s, 1, (n_seeds, n))
            a[0, 0] = np.nan
            blocks_a.append(a)
            blocks_b.append(rng.normal(0, 1, (n_seeds + (s == 1), n)))  # seeds may differ
        out["a"].append(blocks_a)
        out["b"].append(blocks_b)
    return out


def slow_hierarchical(values, n_boot, seed):
    """The same draws as hierarchical_bootstrap, replicate by replicate, by expanding indices."""
    keys = list(values)
    n_stores = len(values[keys[0]])
    rng = np.random.default_rng(seed)
    if n_stores > 1:
        store_draws = rng.multinomial(n_stores, np.full(n_stores, 1 / n_stores), size=n_boot)
    else:
        store_draws = np.ones((n_boot, 1), dtype=int)
    # replay the within-store draws in the library's order, keeping them
    draws = []  # per store: (cutoff draws, [customer weights per cutoff], {key: [picks per cutoff]})
    for s in range(n_stores):
        n_cutoffs = len(values[keys[0]][s])
        cut = rng.multinomial(n_cutoffs, np.full(n_cutoffs, 1 / n_cutoffs), size=n_boot)
        weights, picks = [], {k: [] for k in keys}
        for c in range(n_cutoffs):
            n_c = values[keys[0]][s][c].shape[1]
            weights.append(rng.multinomial(n_c, np.full(n_c, 1 / n_c), size=n_boot))
            for k in keys:
                picks[k].append(rng.integers(0, len(values[k][s][c]), size=n_boot))
        draws.append((cut, weights, picks))
    out = {k: np.zeros(n_boot) for k in keys}
    for k in keys:
        for r in range(n_boot):
            pooled = []
            for s in range(n_stores):
                cut, weights, picks = draws[s]
                for _ in range(store_draws[r, s]):
                    for c in range(len(cut[r])):
                        for _ in range(cut[r, c]):
                            row = values[k][s][c][picks[k][c][r]]
                            pooled.append(np.repeat(row, weights[c][r]))
            pooled = np.concatenate(pooled)
            out[k][r] = np.nanmean(pooled)
    return out


def test_interval_json_round_trip_and_nan_as_null():
    interval = Interval(0.0086, 0.0013, 0.0163, 0.95, "block bootstrap", 1)
    record = json.loads(json.dumps(interval.to_dict()))
    assert list(record) == ["estimate", "lo", "hi", "level", "method", "n"]
    assert Interval.from_dict(record) == interval
    empty = Interval.from_replicates(0.5, np.array([np.nan, np.nan]))
    assert empty.to_dict()["lo"] is None and math.isnan(Interval.from_dict(empty.to_dict()).hi)
    assert interval.excludes_zero and interval.text() == "+0.009 [+0.001, +0.016]"


def test_interval_names_bad_arguments():
    with pytest.raises(ValueError, match="level=1.5"):
        Interval(0, -1, 1, level=1.5)
    with pytest.raises(ValueError, match="lo=2"):
        Interval(0, 2, 1)


def test_normal_p_of_a_normal_interval():
    # estimate 1.96 se above 0: p = 0.05
    interval = Interval(1.96, 0.0, 3.92)
    assert interval.normal_p() == pytest.approx(0.05, abs=1e-3)


def test_hierarchical_bootstrap_equals_a_slow_loop_with_the_same_draws():
    values = toy_values()
    boot = hierarchical_bootstrap(values, n_boot=40, seed=3)
    slow = slow_hierarchical(values, 40, 3)
    for key in values:
        np.testing.assert_allclose(boot.replicates[key], slow[key], rtol=1e-12)
    pooled = np.concatenate([b.ravel() for store in values["a"] for b in store])
    assert boot.point["a"] == pytest.approx(np.nanmean(pooled))
    assert boot.store_means["a"].shape == (3,)


def test_with_one_store_it_is_the_block_bootstrap():
    values = toy_values(n_stores=1, n_cutoffs=(4,))
    boot = hierarchical_bootstrap(values, n_boot=60, seed=5)
    old = block_bootstrap({k: v[0] for k, v in values.items()}, n_boot=60, seed=5)
    for key in values:
        np.testing.assert_array_equal(boot.replicates[key], old.replicates[key])
        assert boot.point[key] == old.point[key]
    gap, old_gap = boot.gap("a", "b"), old.gap("a", "b")
    assert (gap.lo, gap.hi) == (old_gap["lo"], old_gap["hi"])


def test_deterministic_by_seed():
    values = toy_values()
    one = hierarchical_bootstrap(values, n_boot=30, seed=1).replicates["a"]
    assert np.array_equal(one, hierarchical_bootstrap(values, n_boot=30, seed=1).replicates["a"])
    assert not np.array_equal(
        one, hierarchical_bootstrap(values, n_boot=30, seed=2).replicates["a"]
    )


def test_between_store_variance_widens_the_interval():
    """Stores differ by a gap of sd 0.5; within a store the gap is nearly constant. One store's
    block bootstrap sees almost no uncertainty; the hierarchical interval must be about as wide as
    the spread of store means says (sd 0.5 / sqrt(S))."""
    rng = np.random.default_rng(0)
    n_stores, sd_store = 8, 0.5
    effects = rng.normal(0, sd_store, n_stores)
    values = {"a": [], "b": []}
    for effect in effects:
        values["a"].append([effect + rng.normal(0, 0.01, (1, 200)) for _ in range(3)])
        values["b"].append([np.zeros((1, 200)) for _ in range(3)])
    boot = hierarchical_bootstrap(values, n_boot=2000, seed=0)
    gap = boot.gap("a", "b")
    within = hierarchical_bootstrap({k: v[:1] for k, v in values.items()}, n_boot=2000, seed=0).gap(
        "a", "b"
    )
    expected = 2 * 1.96 * effects.std(ddof=0) / math.sqrt(n_stores)  # the bootstrap's own scale
    assert (gap.hi - gap.lo) > 50 * (within.hi - within.lo)
    assert 0.7 * expected < (gap.hi - gap.lo) < 1.3 * expected
    assert gap.n == n_stores
    np.testing.assert_allclose(boot.store_gaps("a", "b"), effects, atol=0.01)


def test_hierarchical_bootstrap_names_bad_input():
    with pytest.raises(ValueError, match="values is empty"):
        hierarchical_bootstrap({})
    bad = toy_values()
    bad["b"] = bad["b"][:2]
    with pytest.raises(ValueError, match="same stores"):
        hierarchical_bootstrap(bad)
    bad = toy_values()
    bad["b"][0][0] = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"values\['b'\]\[0\]\[0\] has shape"):
        hierarchical_bootstrap(bad)
    with pytest.raises(ValueError, match="n_boot=0"):
        hierarchical_bootstrap(toy_values(), n_boot=0)


def test_p_values():
    assert bootstrap_p(np.linspace(1, 2, 99)) == pytest.approx(2 / 100)
    assert bootstrap_p(np.linspace(-1, 1, 101)) == 1.0
    # five stores all positive: the smallest attainable two-sided p, 2 / 32
    assert sign_flip_p(np.array([0.1, 0.2, 0.3, 0.1, 0.2])) == pytest.approx(2 / 32)
    assert sign_flip_p(np.array([0.1, -0.1])) == 1.0
    assert math.isnan(sign_flip_p(np.array([np.nan])))


def test_holm_against_the_textbook_example():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.03, 0.06, 0.06 (monotone)
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    out = holm([0.01, np.nan, 0.2])
    assert math.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.2)


def test_direction_verdict_reads_the_interval_against_the_claimed_side():
    from gpa_lib.stats import direction_verdict

    assert direction_verdict(0.1, 0.3) == "supported"
    assert direction_verdict(-0.3, -0.1) == "contradicted"
    assert direction_verdict(-0.1, 0.3) == "not supported"
    assert direction_verdict(-0.3, -0.1, direction=-1) == "supported"
    assert direction_verdict(0.57, 0.57, direction=-1) == "contradicted"  # a measurement
    assert direction_verdict(float("nan"), float("nan")) == "not supported"
    with pytest.raises(ValueError, match="direction=0"):
        direction_verdict(0.1, 0.2, direction=0)


def test_paired_bootstrap_equals_a_slow_loop_and_pairs_through_the_draws():
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 1, 23), rng.normal(0.5, 1, 23)
    draws = bootstrap_draws(23, 40, np.random.default_rng(1))
    again = np.random.default_rng(1)
    slow = [again.integers(0, 23, 23) for _ in range(40)]
    assert all(np.array_equal(d, e) for d, e in zip(draws, slow, strict=True))
    gap = paired_bootstrap(lambda d: (a[d] - b[d]).mean(), 23, draws, quantiles=TAILS_95)
    lo, hi = np.quantile([(a[d] - b[d]).mean() for d in slow], [0.025, 0.975])
    assert (gap.estimate, gap.lo, gap.hi, gap.n) == ((a - b).mean(), lo, hi, 23)
    level = paired_bootstrap(lambda d: a[d].mean(), 23, draws, level=0.9)
    assert (level.lo, level.hi) == tuple(
        np.quantile([a[d].mean() for d in slow], [(1 - 0.9) / 2, (1 + 0.9) / 2])
    )


def test_to_mean_dict_is_the_short_stored_form():
    assert Interval(0.5, 0.25, 0.75).to_mean_dict() == {"mean": 0.5, "lo": 0.25, "hi": 0.75}
    short = Interval(math.nan, math.nan, math.nan).to_mean_dict()
    assert list(short) == ["mean", "lo", "hi"] and all(math.isnan(v) for v in short.values())
