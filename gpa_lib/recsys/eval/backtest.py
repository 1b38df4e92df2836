"""Temporal backtests: global cutoffs, full ranking of everything on sale, intervals.

For each cutoff ``t``: every model is fitted on ``data.window(end=t)`` with ``until=t`` (so nothing
dated ``>= t`` exists in what it is handed, and ``truth`` is gone), then ranks *all* candidates for
the evaluated customers:

- candidates: what is on sale at ``t`` (from the catalogue and the stock known at ``t``, see
  :func:`candidates_at`) plus what the catalogue launches before ``t + test_weeks`` (the cold-start
  slice), never chosen from the window's sales, so most candidates may not sell at all;
- customers: those who bought a candidate in the test window (a seeded random sample of ``max_customers`` when
  set), including customers who never bought before ``t``;
- relevant: the candidates the customer bought in the window. No sampled negatives anywhere
  (sampled metrics do not preserve model order; Krichene & Rendle, KDD 2020).

Per customer: AUC, MAP@k, recall@k, NDCG@k from :mod:`gpa_lib.recsys.eval.metrics`, on all candidates,
on the cold slice (launched on or after ``t``) and the warm slice (launched before). Results pool
(cutoff, customer) pairs over the cutoffs; :meth:`BacktestResult.summary` gives 95% bootstrap
intervals over those pairs (one training run, customers only). The chapters' protocol, with a
validation cutoff, several seeds and a block bootstrap over cutoffs, customers and seeds, is
:mod:`gpa_lib.recsys.eval.protocol`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.eval.metrics import bootstrap_ci, paired_bootstrap_diff, ranking_metrics
from gpa_lib.recsys.models.base import Recommender

SLICES = ("all", "cold", "warm")
METRIC_NAMES = ("auc", "map@12", "recall@12", "ndcg@12")


def quiet_nanmean(values: Any) -> float:
    """``np.nanmean`` as a float, NaN (without numpy's "Mean of empty slice" warning) when nothing
    is finite: an empty slice is reported once, by whoever knows why it is empty."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if (~np.isnan(values)).any() else float("nan")


def metric_names(k: int = 12) -> tuple[str, ...]:
    """The metric keys of :func:`evaluate` for depth ``k``."""
    return ("auc", f"map@{k}", f"recall@{k}", f"ndcg@{k}")


#: Customers by number of orders before the cutoff: (label, lowest, highest) inclusive.
SEGMENTS = (
    ("0", 0, 0),
    ("1-2", 1, 2),
    ("3-5", 3, 5),
    ("6-10", 6, 10),
    ("11-20", 11, 20),
    ("21+", 21, np.iinfo(np.int64).max),
)

#: A model factory gets the models already fitted at this cutoff (by name, in order) and returns a
#: new, unfitted recommender; so the LSTM can reuse the FashionDNA fitted just before it.
ModelFactory = Callable[[dict[str, Recommender]], Recommender]


#: Without an availability table (H&M), the articles sold in this many weeks before a cutoff count
#: as on sale at the cutoff.
RECENT_WEEKS = 4
#: How the candidates of a cutoff are chosen (see :func:`candidates_at`).
CANDIDATE_RULES = ("auto", "availability", "recent_sales", "ever_sold", "catalogue")


@dataclass(frozen=True, kw_only=True)
class EvaluationConfig:
    """What a backtest (:class:`BacktestConfig`) and the protocol
    (:class:`~gpa_lib.recsys.eval.protocol.ProtocolConfig`) share: how the test cutoffs are cut, the
    customers sampled, the candidates chosen and the intervals made. Sizes in weeks (7 days) and
    customers. Keyword arguments only: the subclasses append their own fields after these."""

    n_cutoffs: int = 3  # rolling cutoffs, the last one leaving exactly one test window at the end
    test_weeks: int = 4  # length of each test window
    step_weeks: int = 4  # distance between consecutive cutoffs
    max_customers: int | None = 10_000  # customers evaluated per cutoff (seeded sample); None = all
    k: int = 12  # depth of MAP, recall and NDCG
    n_boot: int = 500  # bootstrap resamples for each interval
    level: float = 0.95  # interval level
    seed: int = 0  # customer sampling and bootstrap
    recent_weeks: int = (
        RECENT_WEEKS  # the "recent_sales" rule: weeks of sales that make an article a candidate
    )
    candidate_rule: str = "auto"  # which articles are ranked, one of CANDIDATE_RULES
    exclude_seen: bool = False  # leave out of each customer's ranking what they bought before

    def __post_init__(self) -> None:
        if self.recent_weeks < 1:
            raise ValueError(f"recent_weeks={self.recent_weeks} must be at least 1")
        if self.candidate_rule not in CANDIDATE_RULES:
            raise ValueError(
                f"candidate_rule={self.candidate_rule!r} is not one of {CANDIDATE_RULES}"
            )
        for name in ("n_cutoffs", "test_weeks", "step_weeks", "k", "n_boot"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if self.max_customers is not None and self.max_customers < 1:
            raise ValueError(f"max_customers={self.max_customers} must be >= 1 or None")

    def evaluation(self) -> dict[str, Any]:
        """The shared fields by name: ``BacktestConfig(**config.evaluation())`` keeps them."""
        return {f.name: getattr(self, f.name) for f in fields(EvaluationConfig)}


@dataclass(frozen=True, kw_only=True)
class BacktestConfig(EvaluationConfig):
    """How to cut and evaluate: :class:`EvaluationConfig` and, optionally, explicit cutoffs."""

    cutoffs: tuple[str, ...] | None = None  # explicit cutoff dates instead of the rolling ones


def rolling_cutoffs(
    data: SalesData, n_cutoffs: int = 3, test_weeks: int = 4, step_weeks: int = 4
) -> list[pd.Timestamp]:
    """``n_cutoffs`` dates ``step_weeks`` apart, the last ``test_weeks`` before the day after the data."""
    if not len(data.transactions):
        raise ValueError("data has no transactions")
    end = data.end.normalize() + pd.Timedelta(days=1)
    last = end - pd.Timedelta(weeks=test_weeks)
    cutoffs = [last - pd.Timedelta(weeks=step_weeks * i) for i in range(n_cutoffs)][::-1]
    if cutoffs[0] <= data.start:
        raise ValueError(
            f"n_cutoffs={n_cutoffs}, step_weeks={step_weeks}, test_weeks={test_weeks} put the first "
            f"cutoff at {cutoffs[0].date()}, not after the first sale {data.start.date()}"
        )
    return cutoffs


@dataclass
class TestWindow:
    """What is evaluated at one cutoff."""

    cutoff: pd.Timestamp
    end: pd.Timestamp
    customers: np.ndarray  # (n_customers,) int64 ids
    candidates: np.ndarray  # (n_candidates,) int64 article ids
    relevant: np.ndarray  # bool (n_customers, n_candidates)
    cold: np.ndarray  # bool (n_candidates,): launched on or after the cutoff
    past_orders: np.ndarray  # (n_customers,) orders before the cutoff
    n_buyers: int  # customers who bought a candidate in the window (before sampling)
    n_outside: int = 0  # items sold in the window that are not candidates (back from returns)
    rule: str = "availability"  # how candidates were chosen (see candidates_at)
    seen: np.ndarray | None = None  # bool (n_customers, n_candidates) left out: bought before


def candidates_at(
    data: SalesData, cutoff: Any, end: Any, recent_weeks: int = RECENT_WEEKS, rule: str = "auto"
) -> tuple[np.ndarray, str]:
    """Sorted ids of the articles on sale at ``cutoff`` or launched in ``[cutoff, end)``, and the rule.

    Decided from the catalogue and the stock known at the cutoff, never from what sells in the
    window. ``rule`` (one of :data:`CANDIDATE_RULES`):

    - ``"availability"`` (needs ``data.availability``, the simulator's): the articles on sale at
      the start of the cutoff day (launched, not yet delisted, some size in stock) plus those the
      catalogue launches before ``end`` (with stock);
    - ``"recent_sales"`` (H&M has no stock data): the articles sold in the ``recent_weeks`` before
      the cutoff plus those whose ``launch`` falls in ``[cutoff, end)``;
    - ``"ever_sold"``: every article sold before the cutoff plus those launched in the window (for
      catalogues whose items stay available, e.g. films or books);
    - ``"catalogue"``: every article of the table launched before ``end`` or never sold;
    - ``"auto"``: ``"availability"`` when the data has the table, else ``"recent_sales"``.
    """
    if rule not in CANDIDATE_RULES:
        raise ValueError(f"rule={rule!r} is not one of {CANDIDATE_RULES}")
    cutoff, end = pd.Timestamp(cutoff), pd.Timestamp(end)
    launch = data.articles["launch"].to_numpy()
    ids = data.articles.index.to_numpy()
    new = ids[(launch >= cutoff.to_datetime64()) & (launch < end.to_datetime64())]
    if rule == "auto":
        rule = "availability" if data.availability is not None else "recent_sales"
    if rule == "availability":
        if data.availability is None:
            raise ValueError(
                "rule='availability' needs data.availability (stock data), which this data lacks; "
                "use 'recent_sales', 'ever_sold' or 'catalogue'"
            )
        stocked = np.isin(new, data.availability["article"].to_numpy())
        return np.union1d(data.on_sale(cutoff), new[stocked]), rule
    if rule == "catalogue":
        return np.sort(ids[~(launch >= end.to_datetime64())]), rule  # NaT compares False
    t = data.transactions["t_dat"]
    since = pd.Timestamp.min if rule == "ever_sold" else cutoff - pd.Timedelta(weeks=recent_weeks)
    recent = ((t >= since) & (t < cutoff)).to_numpy()
    sold = np.unique(data.transactions["article"].to_numpy()[recent])
    return np.union1d(sold, new), rule


def test_window(
    data: SalesData,
    cutoff: Any,
    test_weeks: int = 4,
    max_customers: int | None = None,
    seed: int = 0,
    recent_weeks: int = RECENT_WEEKS,
    *,
    candidate_rule: str = "auto",
    exclude_seen: bool = False,
) -> TestWindow:
    """The candidates (see :func:`candidates_at`), customers and purchases of
    ``[cutoff, cutoff + test_weeks)``; purchases of articles that are not candidates are left out
    and counted in ``n_outside``. ``exclude_seen`` marks in ``seen`` what each customer bought
    before the cutoff: :func:`evaluate` leaves those pairs out (neither relevant nor ranked
    against), the rule for stores without repeat purchases."""
    cutoff = pd.Timestamp(cutoff)
    end = cutoff + pd.Timedelta(weeks=test_weeks)
    candidates, rule = candidates_at(data, cutoff, end, recent_weeks, candidate_rule)
    tx = data.transactions
    in_window = ((tx["t_dat"] >= cutoff) & (tx["t_dat"] < end)).to_numpy()
    if not in_window.any():
        raise ValueError(f"no sales in the test window {cutoff.date()}..{end.date()}")
    customer = tx["customer"].to_numpy()[in_window]
    article = tx["article"].to_numpy()[in_window]
    listed = np.isin(article, candidates)
    n_outside = int((~listed).sum())
    customer, article = customer[listed], article[listed]
    buyers = np.unique(customer)
    customers = buyers
    if max_customers is not None and len(buyers) > max_customers:
        rng = np.random.default_rng([seed, int(cutoff.value // 86_400_000_000_000)])
        customers = np.sort(rng.choice(buyers, max_customers, replace=False))
    row = pd.Index(customers).get_indexer(customer)
    keep = row >= 0
    relevant = np.zeros((len(customers), len(candidates)), dtype=bool)
    relevant[row[keep], np.searchsorted(candidates, article[keep])] = True
    launch = data.articles["launch"].reindex(candidates).to_numpy()
    cold = ~(launch < cutoff.to_datetime64())  # NaT (unknown launch) counts as cold
    before = (tx["t_dat"] < cutoff).to_numpy()
    seen = None
    if exclude_seen:
        row = pd.Index(customers).get_indexer(tx["customer"].to_numpy()[before])
        past_article = tx["article"].to_numpy()[before]
        col = np.searchsorted(candidates, past_article).clip(max=len(candidates) - 1)
        keep = (row >= 0) & (candidates[col] == past_article)
        seen = np.zeros_like(relevant)
        seen[row[keep], col[keep]] = True
        relevant &= ~seen
    orders = tx.loc[before, ["customer", "order"]].drop_duplicates()
    past = orders["customer"].value_counts().reindex(customers, fill_value=0).to_numpy()
    return TestWindow(
        cutoff,
        end,
        customers,
        candidates,
        relevant,
        cold,
        past.astype(np.int64),
        len(buyers),
        n_outside,
        rule,
        seen,
    )


def window_for(data: SalesData, cutoff: Any, config: Any) -> TestWindow:
    """:func:`test_window` with the options of a :class:`BacktestConfig` (or ProtocolConfig)."""
    return test_window(
        data,
        cutoff,
        config.test_weeks,
        config.max_customers,
        config.seed,
        config.recent_weeks,
        candidate_rule=config.candidate_rule,
        exclude_seen=config.exclude_seen,
    )


def window_record(window: TestWindow) -> dict[str, Any]:
    """JSON-able facts of one test window: dates, customers, candidates, how many are new or sold."""
    return {
        "cutoff": str(window.cutoff.date()),
        "end": str(window.end.date()),
        "customers": len(window.customers),
        "buyers": window.n_buyers,
        "candidates": len(window.candidates),
        "cold_candidates": int(window.cold.sum()),
        "candidate_rule": window.rule,
        "candidates_sold": int(window.relevant.any(axis=0).sum()),
        "items_outside_candidates": window.n_outside,
    } | ({} if window.seen is None else {"seen_pairs_excluded": int(window.seen.sum())})


def evaluate(
    scores: np.ndarray, window: TestWindow, k: int = 12
) -> dict[tuple[str, str], np.ndarray]:
    """Per-customer metrics {(slice, metric): (n_customers,)} on all, cold and warm candidates."""
    out = {}
    for name in SLICES:
        cols = slice(None) if name == "all" else (window.cold if name == "cold" else ~window.cold)
        s, r = scores[:, cols], window.relevant[:, cols]
        if s.shape[1] == 0:
            for metric in metric_names(k):
                out[name, metric] = np.full(len(s), np.nan)
            continue
        exclude = None if window.seen is None else window.seen[:, cols]
        for metric, values in ranking_metrics(s, r, k, exclude=exclude).items():
            out[name, metric] = values
    return out


@dataclass
class BacktestResult:
    """Per-customer metrics of every model at every cutoff, with timings; summaries on demand."""

    config: BacktestConfig
    windows: list[TestWindow]
    metrics: dict[str, list[dict[tuple[str, str], np.ndarray]]]  # model -> per cutoff -> metrics
    fit_seconds: dict[str, list[float]]
    score_seconds: dict[str, list[float]]
    skipped: dict[str, str] = field(default_factory=dict)
    fitted: dict[str, Recommender] = field(
        default_factory=dict
    )  # the last cutoff's models, if kept
    steps: dict[str, list[int | None]] = field(default_factory=dict)  # optimiser steps per fit

    @property
    def models(self) -> list[str]:
        return list(self.metrics)

    def pooled(self, model: str, metric: str = "auc", slice_: str = "all") -> np.ndarray:
        """(sum of customers over cutoffs,) values, aligned across models (same order)."""
        if model not in self.metrics:
            raise ValueError(f"model={model!r} is not in this backtest: {self.models}")
        return np.concatenate([cut[slice_, metric] for cut in self.metrics[model]])

    def summary(
        self, metrics: Iterable[str] | None = None, slices: Iterable[str] = SLICES
    ) -> pd.DataFrame:
        """One row per model, columns (slice, metric, mean|lo|hi): pooled means with intervals."""
        metrics = metric_names(self.config.k) if metrics is None else tuple(metrics)
        rows = {}
        for model in self.models:
            row = {}
            for s in slices:
                for metric in metrics:
                    interval = bootstrap_ci(
                        self.pooled(model, metric, s),
                        n_boot=self.config.n_boot,
                        level=self.config.level,
                        seed=self.config.seed,
                    )
                    row[s, metric, "mean"] = interval.estimate
                    row[s, metric, "lo"], row[s, metric, "hi"] = interval.lo, interval.hi
            rows[model] = row
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["slice", "metric", "stat"])
        return frame

    def compare(self, a: str, b: str, metric: str = "auc", slice_: str = "all") -> dict[str, float]:
        """Mean gap ``a - b`` over paired (cutoff, customer) values with its interval; ``significant``
        when the interval excludes 0."""
        gap = paired_bootstrap_diff(
            self.pooled(a, metric, slice_),
            self.pooled(b, metric, slice_),
            n_boot=self.config.n_boot,
            level=self.config.level,
            seed=self.config.seed,
        )
        return {
            "a": a,
            "b": b,
            "metric": metric,
            "slice": slice_,
            "diff": gap.estimate,
            "lo": gap.lo,
            "hi": gap.hi,
            "significant": gap.excludes_zero,
        }

    def per_cutoff(self, metric: str = "auc", slice_: str = "all") -> pd.DataFrame:
        """Mean of ``metric`` per model (rows) and cutoff (columns)."""
        return pd.DataFrame(
            {
                str(w.cutoff.date()): {
                    m: quiet_nanmean(self.metrics[m][i][slice_, metric]) for m in self.models
                }
                for i, w in enumerate(self.windows)
            }
        )

    def by_segment(self, metric: str = "auc", slice_: str = "all") -> pd.DataFrame:
        """Mean of ``metric`` per model (rows) and customer segment by past orders (columns)."""
        past = np.concatenate([w.past_orders for w in self.windows])
        table = {}
        for label, lo, hi in SEGMENTS:
            members = (past >= lo) & (past <= hi)
            table[label] = {
                m: quiet_nanmean(self.pooled(m, metric, slice_)[members])
                if members.any()
                else float("nan")
                for m in self.models
            }
            table[label]["customers"] = int(members.sum())
        return pd.DataFrame(table)

    def to_dict(self, comparisons: Iterable[tuple[str, str, str, str]] = ()) -> dict[str, Any]:
        """JSON-able payload: config, windows, summary with intervals, gaps, per cutoff, timings."""
        summary = self.summary()
        table = {
            model: {
                f"{s}/{metric}": {
                    stat: float(summary.loc[model, (s, metric, stat)])
                    for stat in ("mean", "lo", "hi")
                }
                for s in SLICES
                for metric in metric_names(self.config.k)
            }
            for model in self.models
        }
        return {
            "config": asdict(self.config),
            "windows": [window_record(w) for w in self.windows],
            "summary": table,
            "comparisons": [
                self.compare(*c)
                for c in comparisons
                if c[0] in self.metrics and c[1] in self.metrics
            ],
            "per_cutoff_auc": self.per_cutoff("auc").to_dict(),
            "per_cutoff_map": self.per_cutoff(f"map@{self.config.k}").to_dict(),
            "segments_auc": self.by_segment("auc").to_dict(),
            "fit_seconds": self.fit_seconds,
            "score_seconds": self.score_seconds,
            "skipped": self.skipped,
        }


def run_backtest(
    data: SalesData,
    models: dict[str, ModelFactory],
    config: BacktestConfig | None = None,
    *,
    keep_models: bool = False,
    progress: bool = False,
) -> BacktestResult:
    """Fit every model at every cutoff on the data before it and evaluate it on the window after.

    ``models`` maps names to factories (see :data:`ModelFactory`); a model whose ``can_run()`` is
    false is skipped and its reason kept in ``result.skipped``. ``keep_models`` keeps the models
    fitted at the last cutoff in ``result.fitted`` (for timing or inspection).
    """
    config = config or BacktestConfig()
    if not models:
        raise ValueError("models is empty; pass at least one name -> factory")
    cutoffs = (
        [pd.Timestamp(c) for c in config.cutoffs]
        if config.cutoffs
        else rolling_cutoffs(data, config.n_cutoffs, config.test_weeks, config.step_weeks)
    )
    windows, skipped = [], {}
    metrics: dict[str, list] = {}
    fit_seconds: dict[str, list[float]] = {}
    score_seconds: dict[str, list[float]] = {}
    steps: dict[str, list[int | None]] = {}
    bar = tqdm(total=len(cutoffs) * len(models), desc="backtest", disable=not progress)
    for cutoff in cutoffs:
        window = window_for(data, cutoff, config)
        windows.append(window)
        past = data.window(end=cutoff)  # nothing on or after the cutoff, and no ground truth
        fitted: dict[str, Recommender] = {}
        for name, factory in models.items():
            bar.set_postfix_str(f"{cutoff.date()} {name}")
            model = factory(fitted)
            ok, why = model.can_run()
            if not ok:
                skipped[name] = why
                bar.update(1)
                continue
            tic = time.perf_counter()
            model.fit(past, until=cutoff)
            fit_seconds.setdefault(name, []).append(round(time.perf_counter() - tic, 3))
            tic = time.perf_counter()
            scores = model.score(window.customers, window.candidates)
            score_seconds.setdefault(name, []).append(round(time.perf_counter() - tic, 3))
            metrics.setdefault(name, []).append(evaluate(scores, window, config.k))
            steps.setdefault(name, []).append(model.steps_)
            fitted[name] = model
            bar.update(1)
    bar.close()
    return BacktestResult(
        config,
        windows,
        metrics,
        fit_seconds,
        score_seconds,
        skipped,
        fitted if keep_models else {},
        steps,
    )
