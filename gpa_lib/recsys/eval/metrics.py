"""Ranking metrics as free functions over full candidate rankings (never sampled negatives).

All functions work on a block of customers at once:

- ``scores``: float (n_customers, n_candidates), higher is better;
- ``relevant``: bool (n_customers, n_candidates), True where the customer bought the candidate in the
  test window.

Ties never go to the lower index (articles are numbered in launch order): AUC counts a tie one half,
and MAP, recall and NDCG at ``k`` give a tied block its expected value under a uniformly random order
(:func:`expected_hits`); :func:`top_k` breaks ties by a seeded random order.

Per-customer values are returned as arrays (NaN where the metric is undefined for that customer, e.g.
AUC without any purchase); :func:`bootstrap_ci` turns them into a mean with a 95% interval over
customers, and :func:`paired_bootstrap_diff` into the interval of the gap between two models.
"""

from __future__ import annotations

import math

import numpy as np

from gpa_lib.recsys.ranking import top_k
from gpa_lib.stats import Interval


def _check(scores: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant)
    if scores.ndim != 2:
        raise ValueError(
            f"scores must be 2-D (n_customers, n_candidates), got shape {scores.shape}"
        )
    if relevant.shape != scores.shape:
        raise ValueError(
            f"relevant has shape {relevant.shape}, but scores has shape {scores.shape}"
        )
    if relevant.dtype != bool:
        raise TypeError(f"relevant must be a bool array, got dtype {relevant.dtype}")
    if np.isnan(scores).any():
        raise ValueError(f"scores contain {int(np.isnan(scores).sum())} NaN values")
    return scores, relevant


def per_customer_auc(
    scores: np.ndarray,
    relevant: np.ndarray,
    block: int = 4096,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """AUC of each customer's ranking of all candidates (ties count one half); NaN without positives or negatives.

    The papers' measure: the probability that a bought article outranks a not-bought one. Computed
    from the average rank of each purchase among its row, in time linear in (purchases x candidates)
    rather than a sort per row; ``block`` purchases are ranked at a time to bound memory.
    ``exclude`` (bool, same shape, never on a relevant cell) leaves candidates out of a row: they
    count neither as positives nor as negatives.
    """
    scores, relevant = _check(scores, relevant)
    n, m = scores.shape
    if exclude is not None:
        scores, n_excluded = _push_excluded(scores, relevant, exclude)
        n_neg_excluded = n_excluded
    else:
        n_neg_excluded = np.zeros(n)
    rows, cols = np.nonzero(relevant)
    rank_sum = np.zeros(n)
    for start in range(0, len(rows), block):
        r, c = rows[start : start + block], cols[start : start + block]
        value = scores[r, c][:, None]  # (P, 1)
        row_scores = scores[r]  # (P, m)
        average_rank = (row_scores < value).sum(1) + ((row_scores == value).sum(1) + 1) / 2.0
        np.add.at(rank_sum, r, average_rank - n_neg_excluded[r])  # excluded: strictly below
    n_pos = relevant.sum(axis=1)
    n_neg = m - n_pos - n_neg_excluded
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _push_excluded(
    scores: np.ndarray, relevant: np.ndarray, exclude: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Scores with the excluded cells at -inf and every other cell finite (a -inf score becomes the
    lowest finite float), so excluded candidates rank strictly last; and excluded counts per row."""
    exclude = np.asarray(exclude, dtype=bool)
    if exclude.shape != scores.shape:
        raise ValueError(f"exclude has shape {exclude.shape}, but scores has shape {scores.shape}")
    if (exclude & relevant).any():
        raise ValueError("exclude marks relevant cells; a purchase cannot be left out")
    lowest = np.finfo(np.float64).min
    pushed = np.where(exclude, -np.inf, np.maximum(scores, lowest))
    return pushed, exclude.sum(axis=1).astype(np.float64)


def hits_at_k(scores: np.ndarray, relevant: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Bool (n_customers, k): is the candidate at rank i relevant? (ties in a seeded random order)"""
    scores, relevant = _check(scores, relevant)
    return np.take_along_axis(relevant, top_k(scores, k, seed), axis=1)


def expected_hits(
    scores: np.ndarray, relevant: np.ndarray, k: int, block: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """What ranks 1..k hold when tied scores are put in a uniformly random order, in expectation.

    Returns ``p`` and ``e``, both float (n_customers, k): ``p[:, i]`` is the probability that rank
    ``i + 1`` holds a purchase and ``e[:, i]`` is E[hit at rank i+1 x hits at ranks <= i+1], which
    MAP needs. The ranks of a tied block of ``n_b`` candidates holding ``r_b`` purchases, after
    ``R`` purchases ranked above it, have ``p = r_b / n_b`` and, at the ``q``-th place of the block,
    ``e = p (R + 1) + (q - 1) r_b (r_b - 1) / (n_b (n_b - 1))``. Without ties this is the plain
    0/1 hit vector. ``block`` customers are done at a time to bound memory.
    """
    scores, relevant = _check(scores, relevant)
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
    n, m = scores.shape
    k = min(k, m)
    p = np.zeros((n, k))
    e = np.zeros((n, k))
    for start in range(0, n, block):
        s, r = scores[start : start + block], relevant[start : start + block]
        best = -np.partition(-s, k - 1, axis=1)[:, :k]  # the k best scores, unordered
        best = -np.sort(-best, axis=1)  # (b, k) best first
        for i in range(k):
            value = best[:, i : i + 1]  # (b, 1)
            above = s > value
            tied = s == value
            n_above = above.sum(axis=1)
            n_b = tied.sum(axis=1)
            r_b = (tied & r).sum(axis=1)
            r_above = (above & r).sum(axis=1)
            q = i + 1 - n_above  # place of rank i + 1 within its block, 1-based
            share = r_b / n_b
            with np.errstate(invalid="ignore", divide="ignore"):
                pair = np.where(n_b > 1, r_b * (r_b - 1) / (n_b * (n_b - 1.0)), 0.0)
            p[start : start + block, i] = share
            e[start : start + block, i] = share * (r_above + 1) + (q - 1) * pair
    return p, e


def map_at_k(scores: np.ndarray, relevant: np.ndarray, k: int = 12) -> np.ndarray:
    """Average precision at ``k`` per customer (the H&M competition's MAP@12): sum of precision@i at
    each hit, divided by min(#relevant, k); NaN for customers without purchases. Tied scores count
    at their expected value under a random order (:func:`expected_hits`)."""
    _, e = expected_hits(scores, relevant, k)
    n_rel = np.asarray(relevant).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (e / np.arange(1, e.shape[1] + 1)).sum(axis=1) / np.minimum(n_rel, k)
    return np.where(n_rel > 0, ap, np.nan)


def recall_at_k(scores: np.ndarray, relevant: np.ndarray, k: int = 12) -> np.ndarray:
    """Share of each customer's purchases found in the top ``k``; NaN without purchases. Tied
    scores count at their expected value under a random order."""
    p, _ = expected_hits(scores, relevant, k)
    n_rel = np.asarray(relevant).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, p.sum(axis=1) / n_rel, np.nan)


def ndcg_at_k(scores: np.ndarray, relevant: np.ndarray, k: int = 12) -> np.ndarray:
    """Normalised discounted cumulative gain at ``k`` with binary gains; NaN without purchases.
    Tied scores count at their expected value under a random order."""
    p, _ = expected_hits(scores, relevant, k)
    n_rel = np.asarray(relevant).sum(axis=1)
    discount = 1.0 / np.log2(np.arange(2, p.shape[1] + 2))
    dcg = (p * discount).sum(axis=1)
    ideal = np.cumsum(discount)[np.clip(np.minimum(n_rel, p.shape[1]) - 1, 0, None)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, dcg / ideal, np.nan)


def ranking_metrics(
    scores: np.ndarray, relevant: np.ndarray, k: int = 12, exclude: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """``{"auc", "map@k", "recall@k", "ndcg@k"}`` per customer, sharing one pass of
    :func:`expected_hits` (what a backtest calls). ``exclude`` (bool, same shape, never on a
    relevant cell) leaves candidates out of each row: AUC ignores them and the top ``k`` holds them
    only below every other candidate."""
    auc = per_customer_auc(scores, relevant, exclude=exclude)
    if exclude is not None:
        scores, _ = _push_excluded(*_check(scores, relevant), exclude)
    p, e = expected_hits(scores, relevant, k)
    n_rel = np.asarray(relevant).sum(axis=1)
    ranks = np.arange(1, p.shape[1] + 1)
    discount = 1.0 / np.log2(ranks + 1)
    ideal = np.cumsum(discount)[np.clip(np.minimum(n_rel, p.shape[1]) - 1, 0, None)]
    has = n_rel > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "auc": auc,
            f"map@{k}": np.where(has, (e / ranks).sum(axis=1) / np.minimum(n_rel, k), np.nan),
            f"recall@{k}": np.where(has, p.sum(axis=1) / n_rel, np.nan),
            f"ndcg@{k}": np.where(has, (p * discount).sum(axis=1) / ideal, np.nan),
        }


METRICS = {
    "auc": per_customer_auc,
    "map@12": map_at_k,
    "recall@12": recall_at_k,
    "ndcg@12": ndcg_at_k,
}


#: How :func:`bootstrap_ci` made its interval (``Interval.method``).
CUSTOMER_BOOTSTRAP = "percentile bootstrap over customers"


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Mean of the finite ``values`` and its percentile bootstrap interval over customers, as the
    project's one :class:`~gpa_lib.stats.Interval` (``n``: the customers kept); NaN ends for none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not 0 < level < 1:
        raise ValueError(f"level={level} must lie strictly between 0 and 1")
    if values.size == 0:
        return Interval(math.nan, math.nan, math.nan, level, CUSTOMER_BOOTSTRAP, 0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(
        float(values.mean()), float(lo), float(hi), level, CUSTOMER_BOOTSTRAP, values.size
    )


def paired_bootstrap_diff(
    a: np.ndarray, b: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Mean of ``a - b`` over customers where both are finite, with its bootstrap interval
    (an :class:`~gpa_lib.stats.Interval`).

    The gap between two models is significant at ``level`` when the interval excludes 0.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a has shape {a.shape}, b has shape {b.shape}; pair them per customer")
    both = np.isfinite(a) & np.isfinite(b)
    return bootstrap_ci(a[both] - b[both], n_boot=n_boot, level=level, seed=seed)
