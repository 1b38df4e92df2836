"""Ranking metrics against slow loops written from their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpa_lib.recsys.metrics import (
    bootstrap_ci,
    map_at_k,
    ndcg_at_k,
    paired_bootstrap_diff,
    per_customer_auc,
    recall_at_k,
    top_k,
)


def random_case(seed: int, n: int = 40, m: int = 30, ties: bool = True):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=(n, m)).astype(float) if ties else rng.normal(size=(n, m))
    relevant = rng.random((n, m)) < 0.15
    relevant[0] = False  # a customer without purchases
    relevant[1] = True  # a customer who bought everything
    return scores, relevant


def slow_ranking(row: np.ndarray) -> list[int]:
    return sorted(range(len(row)), key=lambda j: (-row[j], j))


def slow_auc(row, rel):
    pos = [s for s, r in zip(row, rel, strict=True) if r]
    neg = [s for s, r in zip(row, rel, strict=True) if not r]
    if not pos or not neg:
        return math.nan
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def slow_ap(row, rel, k):
    ranking = slow_ranking(row)[:k]
    n_rel = int(sum(rel))
    if n_rel == 0:
        return math.nan
    hits, total = 0, 0.0
    for i, j in enumerate(ranking, start=1):
        if rel[j]:
            hits += 1
            total += hits / i
    return total / min(n_rel, k)


def slow_recall(row, rel, k):
    n_rel = int(sum(rel))
    return math.nan if n_rel == 0 else sum(rel[j] for j in slow_ranking(row)[:k]) / n_rel


def slow_ndcg(row, rel, k):
    n_rel = int(sum(rel))
    if n_rel == 0:
        return math.nan
    dcg = sum(1 / math.log2(i + 1) for i, j in enumerate(slow_ranking(row)[:k], start=1) if rel[j])
    ideal = sum(1 / math.log2(i + 1) for i in range(1, min(n_rel, k) + 1))
    return dcg / ideal


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [True, False])
def test_metrics_match_slow_loops(seed, ties):
    scores, relevant = random_case(seed, ties=ties)
    for k in (1, 5, 12, 30, 50):
        expected_top = np.array([slow_ranking(r)[: min(k, scores.shape[1])] for r in scores])
        np.testing.assert_array_equal(top_k(scores, k), expected_top)
        for fast, slow in ((map_at_k, slow_ap), (recall_at_k, slow_recall), (ndcg_at_k, slow_ndcg)):
            got = fast(scores, relevant, k)
            want = np.array([slow(s, r, k) for s, r in zip(scores, relevant, strict=True)])
            np.testing.assert_allclose(got, want, equal_nan=True, err_msg=f"{fast.__name__} k={k}")
    auc = per_customer_auc(scores, relevant)
    want = np.array([slow_auc(s, r) for s, r in zip(scores, relevant, strict=True)])
    np.testing.assert_allclose(auc, want, equal_nan=True)
    assert np.isnan(auc[0]) and np.isnan(auc[1])


def test_auc_with_unscoreable_articles_ranked_last_and_tied():
    scores, relevant = random_case(5, n=37, m=23)
    scores[:, :3] = -np.inf  # articles a model cannot score (e.g. StaticCF's cold="lowest")
    want = np.array([slow_auc(s, r) for s, r in zip(scores, relevant, strict=True)])
    np.testing.assert_allclose(per_customer_auc(scores, relevant, block=7), want, equal_nan=True)


def test_perfect_and_reversed_rankings():
    relevant = np.array([[True, True, False, False, False]])
    perfect = np.array([[5.0, 4, 3, 2, 1]])
    assert per_customer_auc(perfect, relevant)[0] == 1.0
    assert per_customer_auc(-perfect, relevant)[0] == 0.0
    assert map_at_k(perfect, relevant, 12)[0] == 1.0
    assert ndcg_at_k(perfect, relevant, 2)[0] == 1.0
    assert recall_at_k(-perfect, relevant, 2)[0] == 0.0


def test_bootstrap_interval_covers_mean_and_is_deterministic():
    values = np.random.default_rng(0).normal(0.7, 0.1, size=500)
    values[:10] = np.nan
    mean, lo, hi = bootstrap_ci(values, seed=3)
    assert lo < mean < hi and hi - lo < 0.05
    assert bootstrap_ci(values, seed=3) == (mean, lo, hi)
    diff, dlo, dhi = paired_bootstrap_diff(values + 0.05, values)
    assert dlo == pytest.approx(0.05) and dhi == pytest.approx(0.05) and diff == pytest.approx(0.05)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="relevant has shape"):
        per_customer_auc(np.zeros((2, 3)), np.zeros((2, 4), dtype=bool))
    with pytest.raises(TypeError, match="relevant must be a bool array"):
        map_at_k(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="scores must be 2-D"):
        recall_at_k(np.zeros(3), np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match="k=0 must be at least 1"):
        top_k(np.zeros((2, 3)), 0)
    with pytest.raises(ValueError, match="level=1.5"):
        bootstrap_ci(np.ones(3), level=1.5)
    with pytest.raises(ValueError, match="scores contain 1 NaN"):
        ndcg_at_k(np.array([[np.nan, 1.0]]), np.array([[True, False]]))
