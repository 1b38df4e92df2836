"""The contract every recommender follows, and the purchase history it is fitted on.

A recommender is fitted on the transactions strictly before a cutoff ``until`` and then ranks any
articles for any customers of the same :class:`~gpa_lib.recsys.data.SalesData`:

- ``fit(data, until=None) -> self``: ``until`` (a date) is the cutoff; ``None`` means the day after
  the last transaction. Only rows with ``t_dat < until`` are read, and a return flag only where the
  purchase lies at least ``return_lag_days`` before the cutoff (a return is known when it happens,
  not when the item was bought). ``data.truth`` is never read.
- ``score(customers, articles) -> (n_customers, n_articles)`` float32, higher is better; ids are the
  int64 ids of ``data.customers`` / ``data.articles``.
- ``recommend(customers, n=12, exclude_seen=True, articles=None) -> (ids, scores)``, both
  ``(n_customers, n)``, best first; ``articles`` defaults to what was on sale just before the cutoff.
- ``random_state`` (int) seeds everything random; ``progress`` shows tqdm bars on long fits.

Articles the model cannot score (e.g. collaborative filtering on an article nobody bought before the
cutoff) follow the model's documented ``cold`` policy: an error by default, or ``-inf`` (ranked last,
tied) when asked.

Customers without any purchase before the cutoff ("cold customers") follow one rule shared by every
model, ``cold_customers`` (:data:`COLD_CUSTOMER_RULES`, set by ``make_model(..., cold_customers=)``
or :meth:`Recommender.set_cold_customers`): ``"own"`` (the default, what the chapters ran) gives
them the model's own documented fallback (article biases, the LSTM's start step, or, for implicit's
ALS and BPR, all zeros, a random ranking); ``"popularity"`` gives every model the same scores for
them: ``log1p`` of each article's items sold in the :data:`COLD_CUSTOMER_WINDOW_DAYS` days before
the cutoff (the popularity model's ranking), so the models differ only where they have data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.data.tables import ARTICLE_ATTRIBUTES
from gpa_lib.recsys.ranking import top_k

#: Days a return needs to become known; purchases closer than this to the cutoff count as "unknown".
RETURN_LAG_DAYS = 14
#: An article counts as on sale at the cutoff when it sold within this many days before it.
ON_SALE_DAYS = 14
COLD_POLICIES = ("error", "lowest")
#: What customers without purchases before the cutoff get (see the module docstring).
COLD_CUSTOMER_RULES = ("own", "popularity")
#: The window of the popularity fallback for cold customers, in days before the cutoff.
COLD_CUSTOMER_WINDOW_DAYS = 7


def _epoch_days(values: Any) -> np.ndarray:
    """Days since 1970-01-01 (int64) of datetime64 values (NaT -> a very large number)."""
    days = np.asarray(values, dtype="datetime64[ns]").astype("datetime64[D]")
    out = days.astype(np.int64)
    return np.where(np.isnat(days), np.iinfo(np.int32).max, out)


@dataclass(repr=False)
class History:
    """The transactions before ``until`` as integer arrays over the rows of the data's tables.

    ``customer``/``article`` index ``customer_ids``/``article_ids`` (all customers and articles of the
    data, in table order, so the indices are the same whatever the window); ``day`` counts days since
    1970-01-01; ``returned`` is 1.0 (returned), 0.0 (kept) or NaN (unknown, or too recent to know).
    """

    until: pd.Timestamp
    until_day: int
    customer_ids: np.ndarray  # (n_customers,) int64
    article_ids: np.ndarray  # (n_articles,) int64
    customer: np.ndarray  # (n_tx,) int64 rows into customer_ids
    article: np.ndarray  # (n_tx,) int64 rows into article_ids
    day: np.ndarray  # (n_tx,) int64 days since epoch
    order: np.ndarray  # (n_tx,) int64
    returned: np.ndarray  # (n_tx,) float32 1 / 0 / NaN
    launch_day: np.ndarray  # (n_articles,) int64 days since epoch (huge where unknown)

    @classmethod
    def from_data(
        cls, data: SalesData, until: Any = None, *, return_lag_days: int = RETURN_LAG_DAYS
    ) -> History:
        if not isinstance(data, SalesData):
            raise TypeError(f"data must be a SalesData, got {type(data).__name__}")
        tx = data.transactions
        if until is None:
            if not len(tx):
                raise ValueError("data has no transactions; pass until= explicitly")
            until = tx["t_dat"].iloc[-1].normalize() + pd.Timedelta(days=1)
        until = pd.Timestamp(until)
        if until.tz is not None:
            raise ValueError(f"until={until} must be a naive date, like the transaction dates")
        # t_dat is sorted (validated), so the rows before the cutoff are a prefix
        n = int(np.searchsorted(tx["t_dat"].to_numpy(), until.to_datetime64(), side="left"))
        part = tx.iloc[:n]
        customer_ids = data.customers.index.to_numpy(dtype=np.int64)
        article_ids = data.articles.index.to_numpy(dtype=np.int64)
        customer = data.customers.index.get_indexer(part["customer"].to_numpy())
        article = data.articles.index.get_indexer(part["article"].to_numpy())
        day = _epoch_days(part["t_dat"].to_numpy())
        until_day = int(_epoch_days([until.to_datetime64()])[0])
        returned = part["returned"].to_numpy(dtype=np.float32, na_value=np.nan)
        returned[day > until_day - return_lag_days] = np.nan
        return cls(
            until=until,
            until_day=until_day,
            customer_ids=customer_ids,
            article_ids=article_ids,
            customer=customer.astype(np.int64),
            article=article.astype(np.int64),
            day=day,
            order=part["order"].to_numpy(dtype=np.int64),
            returned=returned,
            launch_day=_epoch_days(data.articles["launch"].to_numpy()),
        )

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_articles(self) -> int:
        return len(self.article_ids)

    @property
    def week(self) -> np.ndarray:
        """(n_tx,) int64 weeks before the cutoff, 0 = the last 7 days."""
        return (self.until_day - 1 - self.day) // 7

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct (customer, article) purchases with the week of the first: three (n_pairs,) arrays."""
        key = self.customer * self.n_articles + self.article
        unique, first = np.unique(key, return_index=True)
        return unique // self.n_articles, unique % self.n_articles, self.week[first]

    def article_counts(self, days: int | None = None) -> np.ndarray:
        """(n_articles,) items sold in the last ``days`` days before the cutoff (all history if None)."""
        keep = slice(None) if days is None else self.day >= self.until_day - days
        return np.bincount(self.article[keep], minlength=self.n_articles)

    def sold_articles(self) -> np.ndarray:
        """Bool (n_articles,): sold at least once before the cutoff (a model has seen it)."""
        return self.article_counts() > 0

    def on_sale(self, days: int = ON_SALE_DAYS) -> np.ndarray:
        """Ids of the articles sold in the last ``days`` days before the cutoff."""
        return self.article_ids[self.article_counts(days) > 0]

    def seen(self, customer_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        """Bool (len(customer_rows), len(article_rows)): bought before the cutoff."""
        col_of = np.full(self.n_articles, -1, dtype=np.int64)
        col_of[article_rows] = np.arange(len(article_rows))
        row_of = np.full(self.n_customers, -1, dtype=np.int64)
        row_of[customer_rows] = np.arange(len(customer_rows))
        rows, cols = row_of[self.customer], col_of[self.article]
        keep = (rows >= 0) & (cols >= 0)
        out = np.zeros((len(customer_rows), len(article_rows)), dtype=bool)
        out[rows[keep], cols[keep]] = True
        return out


def rows_of(index_ids: np.ndarray, ids: Any, what: str) -> np.ndarray:
    """Rows of ``ids`` in ``index_ids`` (int64); unknown ids raise a ValueError naming them."""
    ids = np.atleast_1d(np.asarray(ids))
    if ids.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of ids, got shape {ids.shape}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{what} must be integer ids, got dtype {ids.dtype}")
    rows = pd.Index(index_ids).get_indexer(ids.astype(np.int64))
    if (rows < 0).any():
        unknown = ids[rows < 0]
        raise ValueError(
            f"{what}: {len(unknown)} id(s) not in the data the model was fitted on, "
            f"e.g. {unknown[:3].tolist()}"
        )
    return rows.astype(np.int64)


def article_onehot(
    articles: pd.DataFrame, columns: tuple[str, ...] = ARTICLE_ATTRIBUTES
) -> np.ndarray:
    """Float32 (n_articles, F) one-hot of the categorical attributes: one slot per category of the
    column's dtype plus one for "missing", so any subset of a table encodes to the same slots;
    attributes without categories (missing in the source) are left out."""
    blocks = []
    for name in columns:
        if name not in articles.columns:
            continue
        column = articles[name]
        if not isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype("category")
        n_values = len(column.cat.categories) + 1  # + the missing slot
        if n_values == 1:
            continue
        codes = column.cat.codes.to_numpy()
        block = np.zeros((len(articles), n_values), dtype=np.float32)
        block[np.arange(len(articles)), np.where(codes < 0, n_values - 1, codes)] = 1.0
        blocks.append(block)
    if not blocks:
        return np.ones((len(articles), 1), dtype=np.float32)
    return np.concatenate(blocks, axis=1)


class Recommender:
    """Base class: subclasses implement ``_fit(history, data)`` and ``_score(customer_rows, article_rows)``.

    Class attribute ``cold_articles``: whether the model can score articles nobody bought before the
    cutoff (from their attributes); models that cannot take ``cold="error" | "lowest"``.
    """

    name = "recommender"
    cold_articles = False
    #: The rule for customers without purchases before the cutoff (:data:`COLD_CUSTOMER_RULES`).
    cold_customers = "own"
    #: Optimiser steps the last fit took (``None`` for models fitted without an optimiser).
    steps_: int | None = None

    def __init__(self, *, random_state: int = 0, progress: bool = False) -> None:
        if not isinstance(random_state, (int, np.integer)):
            raise TypeError(f"random_state must be an int, got {type(random_state).__name__}")
        self.random_state = int(random_state)
        self.progress = bool(progress)
        self.history_: History | None = None

    def set_cold_customers(self, rule: str) -> Recommender:
        """Choose the rule for customers without purchases (see the module docstring); returns self."""
        if rule not in COLD_CUSTOMER_RULES:
            raise ValueError(f"cold_customers={rule!r} is not one of {COLD_CUSTOMER_RULES}")
        self.cold_customers = rule
        return self

    # ------------------------------------------------------------------ availability
    @classmethod
    def can_run(cls) -> tuple[bool, str]:
        """(True, "") when everything the model needs is installed, else (False, why not)."""
        return True, ""

    # ------------------------------------------------------------------ the contract
    def fit(self, data: SalesData, until: Any = None) -> Recommender:
        ok, why = self.can_run()
        if not ok:
            raise RuntimeError(f"{type(self).__name__} cannot run here: {why}")
        self.history_ = History.from_data(data, until)
        self._fit(self.history_, data)
        return self

    def score(self, customers: Any, articles: Any) -> np.ndarray:
        """Float32 (n_customers, n_articles) scores of the given ids; higher means likelier to buy.

        Customers without purchases before the cutoff follow ``cold_customers``."""
        history = self._fitted()
        customer_rows = rows_of(history.customer_ids, customers, "customers")
        article_rows = rows_of(history.article_ids, articles, "articles")
        scores = np.ascontiguousarray(self._score(customer_rows, article_rows), dtype=np.float32)
        if self.cold_customers == "popularity":
            cold = np.bincount(history.customer, minlength=history.n_customers)[customer_rows] == 0
            if cold.any():
                if not scores.flags.writeable:  # e.g. a broadcast row
                    scores = scores.copy()
                counts = history.article_counts(COLD_CUSTOMER_WINDOW_DAYS)[article_rows]
                scores[cold] = np.log1p(counts).astype(np.float32)
        return scores

    def recommend(
        self, customers: Any, n: int = 12, exclude_seen: bool = True, articles: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best articles per customer: ids (int64) and scores (float32), ``(n_customers, n)``.

        ``articles`` are the candidates (default: the articles on sale in the last
        :data:`ON_SALE_DAYS` days before the cutoff); ``exclude_seen`` drops what each customer bought
        before the cutoff. Fewer than ``n`` candidates left: the tail is padded with id -1, score -inf.
        """
        history = self._fitted()
        if n < 1:
            raise ValueError(f"n={n} must be at least 1")
        candidates = history.on_sale() if articles is None else np.asarray(articles, dtype=np.int64)
        scores = self.score(customers, candidates).astype(np.float64)
        if exclude_seen:
            customer_rows = rows_of(history.customer_ids, customers, "customers")
            article_rows = rows_of(history.article_ids, candidates, "articles")
            scores[history.seen(customer_rows, article_rows)] = -np.inf
        n_take = min(n, scores.shape[1])
        best = (
            top_k(np.nan_to_num(scores, nan=-np.inf), n_take, seed=self.random_state)
            if n_take
            else np.zeros((len(scores), 0), int)
        )
        ids = np.full((len(scores), n), -1, dtype=np.int64)
        out = np.full((len(scores), n), -np.inf, dtype=np.float32)
        best_scores = np.take_along_axis(scores, best, axis=1)
        valid = np.isfinite(best_scores)
        ids[:, :n_take] = np.where(valid, candidates[best], -1)
        out[:, :n_take] = np.where(valid, best_scores, -np.inf)
        return ids, out

    # ------------------------------------------------------------------ for subclasses
    def _fit(self, history: History, data: SalesData) -> None:
        raise NotImplementedError

    def _score(self, customer_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _fitted(self) -> History:
        if self.history_ is None:
            raise RuntimeError(
                f"{type(self).__name__} is not fitted; call fit(data, until=...) first"
            )
        return self.history_

    def __repr__(self) -> str:
        state = (
            "unfitted" if self.history_ is None else f"fitted until {self.history_.until.date()}"
        )
        return f"{type(self).__name__}(random_state={self.random_state}, {state})"


class ColdPolicyMixin:
    """For models that only know articles sold before the cutoff: ``cold="error"`` raises, ``"lowest"``
    gives such articles ``-inf`` (every customer ranks them last, tied)."""

    cold: str
    known_: np.ndarray  # bool (n_articles,)

    def _check_cold(self, cold: str) -> str:
        if cold not in COLD_POLICIES:
            raise ValueError(f"cold={cold!r} must be one of {COLD_POLICIES}")
        return cold

    def _apply_cold(
        self, scores: np.ndarray, article_rows: np.ndarray, ids: np.ndarray
    ) -> np.ndarray:
        unknown = ~self.known_[article_rows]
        if not unknown.any():
            return scores
        if self.cold == "error":
            raise ValueError(
                f"{type(self).__name__} cannot score {int(unknown.sum())} article(s) nobody bought "
                f"before the cutoff, e.g. {ids[article_rows[unknown]][:3].tolist()}; pass "
                "cold='lowest' to rank them last, or use a model with cold-start (FashionDNA)"
            )
        scores[:, unknown] = -np.inf
        return scores
