"""Top-k selection with ties broken by a seeded random order: used by the recommenders' ``recommend``
and by the metrics, so it sits below both."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Indices (n_customers, k) of the ``k`` best candidates per customer, best first; ties are
    broken by a random order seeded by ``seed`` (never by index: articles are numbered in launch
    order). Linear in the number of candidates (a partition, not a full sort)."""
    scores = np.asarray(scores, dtype=np.float64)
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
    n, m = scores.shape
    k = min(k, m)
    priority = np.random.default_rng(seed).random((n, m))  # breaks ties, (n, m)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]  # the k-th best score per row, (n, 1)
    greater = scores > kth
    tied = scores == kth
    # of the candidates tied with the k-th score, keep those of the lowest priority that still fit
    room = k - greater.sum(axis=1, keepdims=True)  # (n, 1), at least 1
    tied_priority = np.where(tied, priority, np.inf)
    cut = np.take_along_axis(np.sort(tied_priority, axis=1), room - 1, axis=1)  # (n, 1)
    selected = greater | (tied & (tied_priority <= cut))
    idx = np.nonzero(selected)[1].reshape(n, k)
    order = np.lexsort(
        (np.take_along_axis(priority, idx, axis=1), -np.take_along_axis(scores, idx, axis=1)),
        axis=1,
    )
    return np.take_along_axis(idx, order, axis=1)
