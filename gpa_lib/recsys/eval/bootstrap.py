"""The protocol's intervals: the block bootstrap over cutoffs, customers and seeds, and the tables
:func:`~gpa_lib.recsys.eval.protocol.run_protocol` builds from it (summaries with intervals, shares of
the oracle's gain over popularity, the paired gaps of :data:`COMPARISONS`).

``config`` below is a :class:`~gpa_lib.recsys.eval.protocol.ProtocolConfig` (only its ``k`` is read).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gpa_lib.recsys.eval.backtest import SLICES, BacktestResult, metric_names
from gpa_lib.recsys.eval.claims import CLAIMS, label_exploratory
from gpa_lib.stats import Interval


@dataclass
class Bootstrap:
    """Point means and ``n_boot`` replicate means per key, from :func:`block_bootstrap`."""

    point: dict[Any, float]
    replicates: dict[Any, np.ndarray]  # (n_boot,) each
    level: float = 0.95

    def interval(self, values: np.ndarray) -> tuple[float, float]:
        """The percentile interval of the finite replicates ``values`` (NaN ends when none is):
        :meth:`gpa_lib.stats.Interval.from_replicates`."""
        i = Interval.from_replicates(math.nan, values, level=self.level)
        return i.lo, i.hi

    def stats(self, key: Any) -> dict[str, float]:
        lo, hi = self.interval(self.replicates[key])
        return {"mean": self.point[key], "lo": lo, "hi": hi}

    def gap(self, a: Any, b: Any) -> dict[str, Any]:
        lo, hi = self.interval(self.replicates[a] - self.replicates[b])
        return {
            "diff": self.point[a] - self.point[b],
            "lo": lo,
            "hi": hi,
            "excludes_zero": bool(lo > 0 or hi < 0),
        }


def seed_values(results: list[BacktestResult], k: int = 12) -> dict[Any, list[np.ndarray]]:
    """``{(model, slice, metric): [(n_seeds, n_customers_c) per cutoff c]}`` from one backtest per
    training seed (same data, cutoffs and customers): the input of :func:`block_bootstrap`."""
    return {
        (m, s, metric): [
            np.stack([r.metrics[m][c][s, metric] for r in results])
            for c in range(len(results[0].windows))
        ]
        for m in results[0].models
        for s in SLICES
        for metric in metric_names(k)
    }


def block_bootstrap(
    values: Mapping[Any, list[np.ndarray]], *, n_boot: int = 500, level: float = 0.95, seed: int = 0
) -> Bootstrap:
    """Means over (seed, cutoff, customer) with intervals from resampling cutoffs, customers and seeds.

    ``values[key][c]`` is ``(n_seeds, n_customers_c)``: per-customer values (NaN where undefined) of
    every seed at cutoff ``c``; every key has the same cutoffs and customers (the seeds may differ in
    number). A replicate draws the cutoffs with replacement, the customers of each cutoff with
    replacement (the same draw for every key: gaps are paired), and one seed per cutoff and key; its
    value is the pooled mean over the drawn (cutoff, customer) pairs.
    """
    keys = list(values)
    if not keys:
        raise ValueError("values is empty")
    n_cutoffs = len(values[keys[0]])
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(
        n_cutoffs, np.full(n_cutoffs, 1 / n_cutoffs), size=n_boot
    )  # (n_boot, C)
    sums = {key: np.zeros((n_boot, n_cutoffs)) for key in keys}
    counts = {key: np.zeros((n_boot, n_cutoffs)) for key in keys}
    for c in range(n_cutoffs):
        n_c = values[keys[0]][c].shape[1]
        weights = rng.multinomial(n_c, np.full(n_c, 1 / n_c), size=n_boot).astype(np.float64)
        for key in keys:
            v = np.asarray(values[key][c], dtype=np.float64)  # (n_seeds, n_c)
            finite = np.isfinite(v)
            pick = rng.integers(0, len(v), size=n_boot)  # one seed per replicate
            sums[key][:, c] = (weights @ np.where(finite, v, 0.0).T)[np.arange(n_boot), pick]
            counts[key][:, c] = (weights @ finite.T.astype(np.float64))[np.arange(n_boot), pick]
    point, replicates = {}, {}
    for key in keys:
        pooled = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in values[key]])
        point[key] = float(np.nanmean(pooled)) if np.isfinite(pooled).any() else float("nan")
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates[key] = (draws * sums[key]).sum(1) / (draws * counts[key]).sum(1)
    return Bootstrap(point, replicates, level)


def summaries(boot: Bootstrap, models: list[str], config: Any) -> dict[str, Any]:
    return {
        m: {
            f"{s}/{metric}": boot.stats((m, s, metric))
            for s in SLICES
            for metric in metric_names(config.k)
        }
        for m in models
    }


def oracle_shares(boot: Bootstrap, models: list[str], config: Any) -> dict[str, Any]:
    """Each model's (model - popularity) / (oracle - popularity), with its interval."""
    out: dict[str, Any] = {}
    for m in models:
        if m in ("oracle", "popularity"):
            continue
        out[m] = {}
        for s in SLICES:
            for metric in metric_names(config.k):
                key, pop, top = (m, s, metric), ("popularity", s, metric), ("oracle", s, metric)
                with np.errstate(invalid="ignore", divide="ignore"):
                    replicates = (boot.replicates[key] - boot.replicates[pop]) / (
                        boot.replicates[top] - boot.replicates[pop]
                    )
                    point = (boot.point[key] - boot.point[pop]) / (
                        boot.point[top] - boot.point[pop]
                    )
                lo, hi = boot.interval(replicates)
                out[m][f"{s}/{metric}"] = {"mean": float(point), "lo": lo, "hi": hi}
    return out


#: The gaps the chapters discuss: (a, b); each is reported for every slice and metric.
COMPARISONS = (
    ("lstm", "static_cf"),
    ("lstm", "fashion_dna"),
    ("lstm", "popularity"),
    ("static_cf", "popularity"),
    ("implicit_als", "popularity"),
    ("fashion_dna", "lightfm"),
    ("lstm", "implicit_als"),
    ("lstm", "lightfm"),
    ("sasrec", "lstm"),
    ("sasrec", "static_cf"),
    ("sasrec", "popularity"),
    ("sasrec", "sasrec_catalogue"),  # the on-sale softmax against the original's
    ("sasrec_catalogue", "popularity"),
    # the ablation of the LSTM (gpa_lib.recsys.models.ablation)
    ("lstm", "lstm_paper"),
    ("lstm", "context_popularity"),
    ("lstm_paper", "context_popularity"),
    ("lstm", "static_cf_dna"),
    ("lstm_paper", "static_cf_dna"),
    ("static_cf_dna", "static_cf"),
    ("context_popularity", "popularity"),
)


def comparisons(boot: Bootstrap, models: list[str], config: Any) -> list[dict[str, Any]]:
    """Every gap of :data:`COMPARISONS` on every slice and metric; a row that is one of the papers'
    claims (:data:`gpa_lib.recsys.eval.claims.CLAIMS`) names it under ``"primary"``, every other row
    is ``"exploratory"`` (its interval is shown, never called significant)."""
    out = []
    for a, b in COMPARISONS:
        if a in models and b in models:
            for s in SLICES:
                for metric in metric_names(config.k):
                    out.append(
                        {"a": a, "b": b, "slice": s, "metric": metric}
                        | boot.gap((a, s, metric), (b, s, metric))
                    )
    return label_exploratory(out, [c for family in CLAIMS.values() for c in family])
