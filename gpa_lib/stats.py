"""One interval, one hierarchical bootstrap, and the tests of several claims at once.

:class:`Interval` is the one form of a point estimate with its interval (``estimate``, ``lo``, ``hi``,
``level``, ``method``, ``n``) and :meth:`Interval.to_dict` its one JSON form; new code in
``gpa_lib.pose`` and ``gpa_lib.recsys`` returns it instead of tuples or ``{"mean", "lo", "hi"}``;
where committed results store that short form, :meth:`Interval.to_mean_dict` writes it.

:func:`paired_bootstrap` is the percentile bootstrap of any statistic over units (customers,
articles), with the draws of :func:`bootstrap_draws` shared between statistics to pair them.

:func:`hierarchical_bootstrap` resamples the levels a recommendation study has: stores (independent
simulated worlds), then cutoffs within each drawn store, then customers within each drawn
(store, cutoff), and one training seed per drawn (store, cutoff) and key. With one store it draws
exactly what :func:`gpa_lib.recsys.eval.bootstrap.block_bootstrap` draws (tested), so the
single-store intervals of the committed results are its special case.

:func:`direction_verdict` words one claim about the sign of a gap from its interval (or from a
measurement without one).

:func:`bootstrap_p`, :func:`sign_flip_p` and :func:`holm` turn the replicates or the per-store
estimates of several paired gaps into p-values and Holm-adjusted p-values.

This module imports only numpy, so that every part of the package can import it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The fields of :meth:`Interval.to_dict`, in order.
INTERVAL_FIELDS = ("estimate", "lo", "hi", "level", "method", "n")

#: The quantiles of a 95% interval written out, as chapter 4's claims read them: the default
#: ``((1 - 0.95) / 2, (1 + 0.95) / 2)`` is ``(0.025000000000000022, 0.975)`` in floating point, which
#: moves an interpolated quantile in its last bits.
TAILS_95 = (0.025, 0.975)


def _float_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Interval:
    """A point estimate and its two-sided interval."""

    estimate: float  # the point estimate (a mean, or a paired gap a - b)
    lo: float  # lower end of the interval
    hi: float  # upper end of the interval
    level: float = 0.95  # coverage the interval aims at
    method: str = ""  # how it was made, e.g. "hierarchical bootstrap (stores, cutoffs, customers)"
    n: int | None = None  # units at the top level of the resampling (stores, or customers)

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise ValueError(f"level={self.level} must be strictly between 0 and 1")
        if math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo > self.hi:
            raise ValueError(f"lo={self.lo} must not exceed hi={self.hi}")

    @classmethod
    def from_replicates(
        cls,
        estimate: float,
        replicates: np.ndarray,
        *,
        level: float = 0.95,
        method: str = "percentile bootstrap",
        n: int | None = None,
        quantiles: tuple[float, float] | None = None,
    ) -> Interval:
        """The percentile interval of the finite ``replicates`` around ``estimate`` (NaN ends
        when no replicate is finite), at the ``quantiles`` of the replicates (default
        ``((1 - level) / 2, (1 + level) / 2)``; :data:`TAILS_95` for the written-out pair)."""
        if quantiles is None:
            quantiles = ((1 - level) / 2, (1 + level) / 2)
        finite = np.asarray(replicates, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if not finite.size:
            return cls(float(estimate), math.nan, math.nan, level, method, n)
        lo, hi = np.quantile(finite, list(quantiles))
        return cls(float(estimate), float(lo), float(hi), level, method, n)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Interval:
        """The inverse of :meth:`to_dict` (``None`` ends read as NaN)."""

        def num(key: str) -> float:
            value = record.get(key)
            return math.nan if value is None else float(value)

        return cls(
            num("estimate"),
            num("lo"),
            num("hi"),
            float(record.get("level", 0.95)),
            str(record.get("method", "")),
            record.get("n"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every field of :data:`INTERVAL_FIELDS`, NaN as ``None``."""
        return {
            "estimate": _float_or_none(self.estimate),
            "lo": _float_or_none(self.lo),
            "hi": _float_or_none(self.hi),
            "level": self.level,
            "method": self.method,
            "n": self.n,
        }

    def to_mean_dict(self) -> dict[str, float]:
        """The short form ``{"mean", "lo", "hi"}`` (NaN kept) that the recsys summaries and
        claims store, and chapters 4 and 5 read: the committed results keep these keys."""
        return {"mean": float(self.estimate), "lo": float(self.lo), "hi": float(self.hi)}

    @property
    def excludes_zero(self) -> bool:
        return bool(self.lo > 0 or self.hi < 0)

    def normal_p(self) -> float:
        """Two-sided p-value of "the true value is 0" read off the interval as if it were a
        normal one (``se = (hi - lo) / (2 z)``): for results that kept no replicates."""
        z_level = _normal_quantile((1 + self.level) / 2)
        se = (self.hi - self.lo) / (2 * z_level)
        if not (math.isfinite(se) and se > 0):
            return math.nan
        return math.erfc(abs(self.estimate) / se / math.sqrt(2))

    def text(self, digits: int = 3, signed: bool = True) -> str:
        """``"+0.009 [+0.001, +0.016]"``."""
        spec = f"{'+' if signed else ''}.{digits}f"
        return f"{self.estimate:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]"


def _normal_quantile(p: float) -> float:
    """The standard normal quantile by bisection on ``erfc`` (numpy has none; scipy is not needed
    for one number)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# ---------------------------------------------------------------------- bootstrap over units


def bootstrap_draws(n_units: int, n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n_boot`` draws of ``n_units`` row indices with replacement (``(n_units,)`` each), one
    ``rng.integers(0, n_units, n_units)`` call per draw. Statistics resampled with the same draws
    are paired."""
    return [rng.integers(0, n_units, n_units) for _ in range(n_boot)]


def paired_bootstrap(
    statistic: Callable[[np.ndarray], float],
    n_units: int,
    draws: Sequence[np.ndarray],
    *,
    level: float = 0.95,
    quantiles: tuple[float, float] | None = None,
    method: str = "percentile bootstrap over customers",
) -> Interval:
    """The percentile bootstrap of ``statistic(rows)`` over units (customers, articles).

    ``statistic`` maps row indices ``(n,)`` to one number; the estimate is its value on all
    ``n_units`` rows (``np.arange(n_units)``), the replicates its values on ``draws`` (from
    :func:`bootstrap_draws`). Passing the same draws to several statistics, or a statistic that is a
    difference of two, gives paired intervals. ``quantiles`` as in :meth:`Interval.from_replicates`.
    """
    estimate = statistic(np.arange(n_units))
    replicates = np.array([statistic(rows) for rows in draws])  # (n_boot,)
    return Interval.from_replicates(
        estimate, replicates, level=level, method=method, n=n_units, quantiles=quantiles
    )


# ---------------------------------------------------------------------- hierarchical bootstrap


@dataclass
class HierarchicalBootstrap:
    """Point means and ``n_boot`` replicate means per key, from :func:`hierarchical_bootstrap`."""

    point: dict[Any, float]
    replicates: dict[Any, np.ndarray]  # (n_boot,) each
    store_means: dict[Any, np.ndarray]  # (n_stores,) each: the pooled mean within every store
    level: float = 0.95
    method: str = "hierarchical bootstrap (stores, cutoffs within store, customers within cutoff)"

    @property
    def n_stores(self) -> int:
        return len(next(iter(self.store_means.values())))

    def interval(self, key: Any) -> Interval:
        return Interval.from_replicates(
            self.point[key],
            self.replicates[key],
            level=self.level,
            method=self.method,
            n=self.n_stores,
        )

    def gap(self, a: Any, b: Any) -> Interval:
        """The paired gap ``a - b`` (the same draws serve both keys)."""
        return Interval.from_replicates(
            self.point[a] - self.point[b],
            self.replicates[a] - self.replicates[b],
            level=self.level,
            method=self.method,
            n=self.n_stores,
        )

    def gap_replicates(self, a: Any, b: Any) -> np.ndarray:
        return self.replicates[a] - self.replicates[b]

    def store_gaps(self, a: Any, b: Any) -> np.ndarray:
        """``(n_stores,)`` the gap ``a - b`` within each store: the input of :func:`sign_flip_p`."""
        return self.store_means[a] - self.store_means[b]


def _check_values(values: Mapping[Any, Sequence[Sequence[np.ndarray]]]) -> list[Any]:
    keys = list(values)
    if not keys:
        raise ValueError("values is empty")
    first = values[keys[0]]
    if not len(first):
        raise ValueError(f"values[{keys[0]!r}] has no store")
    for key in keys:
        if len(values[key]) != len(first):
            raise ValueError(
                f"values[{key!r}] has {len(values[key])} store(s), values[{keys[0]!r}] "
                f"{len(first)}: every key needs the same stores"
            )
        for s, store in enumerate(values[key]):
            if not len(store):
                raise ValueError(f"values[{key!r}][{s}] has no cutoff")
            if len(store) != len(first[s]):
                raise ValueError(
                    f"values[{key!r}][{s}] has {len(store)} cutoff(s), values[{keys[0]!r}][{s}] "
                    f"{len(first[s])}: every key needs the same cutoffs"
                )
            for c, block in enumerate(store):
                if np.ndim(block) != 2 or np.shape(block)[1] != np.shape(first[s][c])[1]:
                    raise ValueError(
                        f"values[{key!r}][{s}][{c}] has shape {np.shape(block)}; every key needs "
                        f"(n_seeds, {np.shape(first[s][c])[1]}) there (seeds x customers)"
                    )
    return keys


def _store_sums(
    store: Mapping[Any, Sequence[np.ndarray]],
    keys: list[Any],
    n_boot: int,
    rng: np.random.Generator,
) -> tuple[dict[Any, np.ndarray], dict[Any, np.ndarray]]:
    """``(sums, counts)``: per key ``(n_boot,)`` the sum and the count of finite values over the
    cutoffs and customers one replicate draws within one store. The draws happen in the order of
    :func:`gpa_lib.recsys.eval.bootstrap.block_bootstrap`: cutoffs, then per cutoff the customers,
    then per key one seed."""
    n_cutoffs = len(store[keys[0]])
    draws = rng.multinomial(
        n_cutoffs, np.full(n_cutoffs, 1 / n_cutoffs), size=n_boot
    )  # (n_boot, C)
    sums = {key: np.zeros((n_boot, n_cutoffs)) for key in keys}
    counts = {key: np.zeros((n_boot, n_cutoffs)) for key in keys}
    rows = np.arange(n_boot)
    for c in range(n_cutoffs):
        n_c = np.shape(store[keys[0]][c])[1]
        weights = rng.multinomial(n_c, np.full(n_c, 1 / n_c), size=n_boot).astype(np.float64)
        for key in keys:
            v = np.asarray(store[key][c], dtype=np.float64)  # (n_seeds, n_c)
            finite = np.isfinite(v)
            pick = rng.integers(0, len(v), size=n_boot)  # one seed per replicate
            sums[key][:, c] = (weights @ np.where(finite, v, 0.0).T)[rows, pick]
            counts[key][:, c] = (weights @ finite.T.astype(np.float64))[rows, pick]
    return (
        {key: (draws * sums[key]).sum(1) for key in keys},
        {key: (draws * counts[key]).sum(1) for key in keys},
    )


def hierarchical_bootstrap(
    values: Mapping[Any, Sequence[Sequence[np.ndarray]]],
    *,
    n_boot: int = 500,
    level: float = 0.95,
    seed: int = 0,
) -> HierarchicalBootstrap:
    """Means over (store, cutoff, seed, customer) with intervals from resampling every level.

    ``values[key][s][c]`` is ``(n_seeds, n_customers_sc)``: the per-customer values (NaN where
    undefined) of every training seed at cutoff ``c`` of store ``s``; every key has the same stores,
    cutoffs and customers (the seeds may differ in number). A replicate draws the stores with
    replacement, then the cutoffs of each store with replacement, then the customers of each cutoff
    with replacement, and one seed per (store, cutoff) and key; the same store, cutoff and customer
    draws serve every key, so gaps between keys are paired. Its value is the pooled mean over the
    drawn (store, cutoff, customer) triples, a store drawn twice counting twice. The point value is
    the pooled mean over everything (NaN ignored).

    Deterministic in ``seed``. With one store no store is drawn, and the replicates equal those of
    :func:`gpa_lib.recsys.eval.bootstrap.block_bootstrap` with the same seed.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot} must be >= 1")
    if not 0 < level < 1:
        raise ValueError(f"level={level} must be strictly between 0 and 1")
    keys = _check_values(values)
    n_stores = len(values[keys[0]])
    rng = np.random.default_rng(seed)
    store_draws = (
        rng.multinomial(n_stores, np.full(n_stores, 1 / n_stores), size=n_boot).astype(np.float64)
        if n_stores > 1
        else np.ones((n_boot, 1))
    )  # (n_boot, S)
    sums = {key: np.zeros((n_boot, n_stores)) for key in keys}
    counts = {key: np.zeros((n_boot, n_stores)) for key in keys}
    for s in range(n_stores):
        store_sums, store_counts = _store_sums({k: values[k][s] for k in keys}, keys, n_boot, rng)
        for key in keys:
            sums[key][:, s] = store_sums[key]
            counts[key][:, s] = store_counts[key]
    point, replicates, store_means = {}, {}, {}
    for key in keys:
        pooled = [np.asarray(b, dtype=np.float64).ravel() for store in values[key] for b in store]
        pooled = np.concatenate(pooled)
        point[key] = float(np.nanmean(pooled)) if np.isfinite(pooled).any() else math.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates[key] = (store_draws * sums[key]).sum(1) / (store_draws * counts[key]).sum(1)
        store_means[key] = np.array(
            [_nanmean(np.concatenate([np.ravel(b) for b in store])) for store in values[key]]
        )
    return HierarchicalBootstrap(point, replicates, store_means, level)


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan


# ---------------------------------------------------------------------- p-values


def bootstrap_p(replicates: np.ndarray) -> float:
    """Two-sided p-value of "the gap is 0" from bootstrap replicates of the gap: twice the smaller
    share of replicates on either side of 0, each share counted as ``(1 + hits) / (1 + B)`` so
    that it is never 0. It agrees with the percentile interval: p < 1 - level roughly when the
    interval excludes 0."""
    finite = np.asarray(replicates, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return math.nan
    below = (1 + np.count_nonzero(finite <= 0)) / (1 + finite.size)
    above = (1 + np.count_nonzero(finite >= 0)) / (1 + finite.size)
    return float(min(1.0, 2 * min(below, above)))


def sign_flip_p(store_gaps: np.ndarray, *, n_flips: int = 100_000, seed: int = 0) -> float:
    """Two-sided p-value of "the gap is symmetric about 0 across stores" by flipping the sign of each
    store's gap: the share of sign patterns whose mean is at least as far from 0 as the observed
    one (all ``2**S`` patterns when ``S <= 16``, else ``n_flips`` random ones plus the observed).

    With ``S`` stores the smallest attainable p is ``2 / 2**S``: 0.0625 for 5 stores, so five
    stores alone can never pass a 0.05 threshold this way (six give 0.031, eight 0.0078).
    """
    gaps = np.asarray(store_gaps, dtype=np.float64)
    gaps = gaps[np.isfinite(gaps)]
    if not gaps.size:
        return math.nan
    observed = abs(gaps.mean())
    if gaps.size <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=gaps.size)))  # (2**S, S)
        means = np.abs(signs @ gaps) / gaps.size
        return float(np.mean(means >= observed - 1e-12 * max(observed, 1.0)))
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(n_flips, gaps.size))
    means = np.abs(signs @ gaps) / gaps.size
    return float((1 + np.count_nonzero(means >= observed)) / (1 + n_flips))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN and is not counted):
    the i-th smallest p becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if not m:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out


def direction_verdict(lo: float, hi: float, direction: int = 1) -> str:
    """The verdict on one claim that a gap lies above 0 (``direction=+1``) or below 0 (``-1``), from
    its interval ``[lo, hi]`` (``lo == hi`` for a measurement without one, such as a deterministic
    peak memory): **supported** when the whole interval lies on the claimed side, **contradicted**
    when it lies on the other, **not supported** when it holds 0 (or is not finite).
    ``direction_verdict(0.1, 0.3)`` -> ``"supported"``."""
    if direction not in (1, -1):
        raise ValueError(f"direction={direction} must be +1 or -1")
    lo, hi = sorted((float(lo), float(hi)))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "not supported"
    if direction * lo > 0 and direction * hi > 0:
        return "supported"
    if direction * lo < 0 and direction * hi < 0:
        return "contradicted"
    return "not supported"
