"""Property tests: the ranking metrics on random score and purchase tables against slow loops over
every tie order, and invariant under a permutation of the candidates.

Scores are drawn from a few values so that tied blocks are common (the metrics give a tied block its
expected value under a uniformly random order; the slow loop averages over every such order). At
most 7 candidates keep the enumeration of tie orders small; example counts are bounded and
derandomized, so a run is reproducible and quick.
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from test_recsys_metrics import ap_of, ndcg_of, recall_of, slow_auc

from gpa_lib.recsys.eval.metrics import (
    map_at_k,
    ndcg_at_k,
    per_customer_auc,
    ranking_metrics,
    recall_at_k,
)

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SLOW = {"map": (map_at_k, ap_of), "recall": (recall_at_k, recall_of), "ndcg": (ndcg_at_k, ndcg_of)}


@st.composite
def cases(draw, max_candidates=7):
    """``(scores, relevant, k)``: 1-4 customers, 1-``max_candidates`` candidates, ties likely."""
    n = draw(st.integers(1, 4))
    m = draw(st.integers(1, max_candidates))
    values = draw(st.sampled_from([[0.0, 1.0], [0.0, 1.0, 2.5], [-1.0, 0.0, 0.5, 3.0]]))
    scores = draw(arrays(np.float64, (n, m), elements=st.sampled_from(values)))
    if draw(st.booleans()):  # some rows of distinct scores as well
        scores = scores + draw(arrays(np.float64, (n, m), elements=st.sampled_from([0.0, 1e-3])))
    relevant = draw(arrays(np.bool_, (n, m)))
    k = draw(st.integers(1, m + 2))
    return scores, relevant, k


def tie_orders(row):
    """Every ranking of ``row`` best first, tied candidates in every order (each equally likely)."""
    return [
        list(p)
        for p in itertools.permutations(range(len(row)))
        if all(row[a] >= row[b] for a, b in itertools.pairwise(p))
    ]


def slow_expected(slow, scores, relevant, k):
    return np.array(
        [
            np.mean([slow(order, r, k) for order in tie_orders(s)])
            for s, r in zip(scores, relevant, strict=True)
        ]
    )


@PROPERTY
@given(cases())
def test_metrics_equal_their_mean_over_every_tie_order(case):
    scores, relevant, k = case
    for name, (fast, slow) in SLOW.items():
        np.testing.assert_allclose(
            fast(scores, relevant, k),
            slow_expected(slow, scores, relevant, k),
            rtol=1e-12,
            atol=1e-12,
            equal_nan=True,
            err_msg=f"{name}@{k}",
        )
    want_auc = np.array([slow_auc(s, r) for s, r in zip(scores, relevant, strict=True)])
    np.testing.assert_allclose(per_customer_auc(scores, relevant), want_auc, equal_nan=True)


@PROPERTY
@given(cases(max_candidates=40), st.randoms(use_true_random=False))
def test_metrics_do_not_depend_on_the_order_of_the_candidates(case, rng):
    scores, relevant, k = case
    permutation = list(range(scores.shape[1]))
    rng.shuffle(permutation)
    before = ranking_metrics(scores, relevant, k)
    after = ranking_metrics(scores[:, permutation], relevant[:, permutation], k)
    for name in before:
        np.testing.assert_allclose(
            after[name], before[name], rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=name
        )


@PROPERTY
@given(cases(max_candidates=40))
def test_ranking_metrics_agree_with_the_single_metrics_and_stay_in_range(case):
    scores, relevant, k = case
    together = ranking_metrics(scores, relevant, k)
    singles = {
        "auc": per_customer_auc(scores, relevant),
        f"map@{k}": map_at_k(scores, relevant, k),
        f"recall@{k}": recall_at_k(scores, relevant, k),
        f"ndcg@{k}": ndcg_at_k(scores, relevant, k),
    }
    assert set(together) == set(singles)
    n_rel = relevant.sum(axis=1)
    for name, values in singles.items():
        np.testing.assert_allclose(together[name], values, rtol=1e-12, equal_nan=True)
        defined = np.isfinite(values)
        assert ((values[defined] >= -1e-12) & (values[defined] <= 1 + 1e-12)).all(), name
        undefined = (n_rel == 0) | ((n_rel == scores.shape[1]) if name == "auc" else False)
        np.testing.assert_array_equal(~defined, undefined, err_msg=name)
    # recall@k reaches 1 once k covers every candidate
    if k >= scores.shape[1]:
        np.testing.assert_allclose(together[f"recall@{k}"][n_rel > 0], 1.0)


@PROPERTY
@given(cases(max_candidates=12))
def test_a_constant_shift_or_positive_scale_of_the_scores_changes_nothing(case):
    scores, relevant, k = case
    before = ranking_metrics(scores, relevant, k)
    after = ranking_metrics(3.0 * scores + 7.0, relevant, k)
    for name in before:
        np.testing.assert_allclose(after[name], before[name], equal_nan=True, err_msg=name)
