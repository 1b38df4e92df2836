"""Ranking metrics against slow loops written from their definitions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from gpa_lib.recsys.eval.metrics import (
    bootstrap_ci,
    map_at_k,
    ndcg_at_k,
    paired_bootstrap_diff,
    per_customer_auc,
    ranking_metrics,
    recall_at_k,
    top_k,
)
from gpa_lib.stats import Interval


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


def ap_of(ranking, rel, k):
    n_rel = int(sum(rel))
    if n_rel == 0:
        return math.nan
    hits, total = 0, 0.0
    for i, j in enumerate(ranking[:k], start=1):
        if rel[j]:
            hits += 1
            total += hits / i
    return total / min(n_rel, k)


def recall_of(ranking, rel, k):
    n_rel = int(sum(rel))
    return math.nan if n_rel == 0 else sum(rel[j] for j in ranking[:k]) / n_rel


def ndcg_of(ranking, rel, k):
    n_rel = int(sum(rel))
    if n_rel == 0:
        return math.nan
    dcg = sum(1 / math.log2(i + 1) for i, j in enumerate(ranking[:k], start=1) if rel[j])
    ideal = sum(1 / math.log2(i + 1) for i in range(1, min(n_rel, k) + 1))
    return dcg / ideal


SLOW = ((map_at_k, ap_of), (recall_at_k, recall_of), (ndcg_at_k, ndcg_of))


def tie_orders(row):
    """Every ranking of ``row`` best first, ties in every order (each equally likely)."""
    return [
        list(p)
        for p in itertools.permutations(range(len(row)))
        if all(row[a] >= row[b] for a, b in itertools.pairwise(p))
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_without_ties_match_slow_loops(seed):
    scores, relevant = random_case(seed, ties=False)
    for k in (1, 5, 12, 30, 50):
        expected_top = np.array([slow_ranking(r)[: min(k, scores.shape[1])] for r in scores])
        np.testing.assert_array_equal(top_k(scores, k), expected_top)
        for fast, slow in SLOW:
            got = fast(scores, relevant, k)
            want = np.array(
                [slow(slow_ranking(s), r, k) for s, r in zip(scores, relevant, strict=True)]
            )
            np.testing.assert_allclose(got, want, equal_nan=True, err_msg=f"{fast.__name__} k={k}")
    auc = per_customer_auc(scores, relevant)
    want = np.array([slow_auc(s, r) for s, r in zip(scores, relevant, strict=True)])
    np.testing.assert_allclose(auc, want, equal_nan=True)
    assert np.isnan(auc[0]) and np.isnan(auc[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tied_scores_count_at_their_mean_over_every_tie_order(seed):
    scores, relevant = random_case(seed, n=14, m=7, ties=True)
    scores = np.minimum(scores, 2.0)  # few distinct values: long tied blocks
    for k in (1, 3, 5, 12):
        for fast, slow in SLOW:
            got = fast(scores, relevant, k)
            want = np.array(
                [
                    np.mean([slow(order, r, k) for order in tie_orders(s)])
                    for s, r in zip(scores, relevant, strict=True)
                ]
            )
            np.testing.assert_allclose(got, want, equal_nan=True, err_msg=f"{fast.__name__} k={k}")
    auc = per_customer_auc(scores, relevant)
    want = np.array([slow_auc(s, r) for s, r in zip(scores, relevant, strict=True)])
    np.testing.assert_allclose(auc, want, equal_nan=True)


def test_constant_scores_give_chance_not_the_first_columns():
    n_customers, n = 50, 600
    scores = np.zeros((n_customers, n))
    relevant = np.zeros((n_customers, n), dtype=bool)
    relevant[:, :12] = True  # the purchases sit in the first columns (the oldest articles)
    recall = recall_at_k(scores, relevant, 12)
    ap = map_at_k(scores, relevant, 12)
    np.testing.assert_allclose(recall, 12 / n)
    # a random order of all n: the mean AP of 4,000 shuffles, within its Monte Carlo error
    rng = np.random.default_rng(0)
    shuffled = [ap_of(list(rng.permutation(n)), relevant[0], 12) for _ in range(4000)]
    assert ap[0] == pytest.approx(np.mean(shuffled), abs=4 * np.std(shuffled) / math.sqrt(4000))
    assert np.all(ap == ap[0]) and ap[0] < 12 / n  # of the order of 12/n, not 1
    np.testing.assert_allclose(per_customer_auc(scores, relevant), 0.5)
    metrics = ranking_metrics(scores, relevant, 12)
    np.testing.assert_allclose(metrics["map@12"], ap)
    np.testing.assert_allclose(metrics["recall@12"], recall)
    np.testing.assert_allclose(metrics["ndcg@12"], ndcg_at_k(scores, relevant, 12))


def test_top_k_breaks_ties_at_random_not_by_index():
    scores = np.zeros((200, 50))
    scores[:, 7] = 1.0
    best = top_k(scores, 3, seed=1)
    assert (best[:, 0] == 7).all()
    assert np.array_equal(best, top_k(scores, 3, seed=1))  # seeded
    assert len(np.unique(best[:, 1:])) > 40  # every column gets picked, not the first ones
    assert not (best[:, 1:] < 2).all()


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
    interval = bootstrap_ci(values, seed=3)
    assert isinstance(interval, Interval) and interval.n == 490 and interval.level == 0.95
    assert interval.lo < interval.estimate < interval.hi and interval.hi - interval.lo < 0.05
    assert bootstrap_ci(values, seed=3) == interval
    gap = paired_bootstrap_diff(values + 0.05, values)
    assert gap.lo == pytest.approx(0.05) and gap.hi == pytest.approx(0.05)
    assert gap.estimate == pytest.approx(0.05) and gap.excludes_zero


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
