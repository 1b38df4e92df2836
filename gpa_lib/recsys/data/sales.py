"""One data model for fashion sales: the simulator and the H&M loader both produce a :class:`SalesData`.

Tables (pandas):

``transactions``, one row per item sold, sorted by ``t_dat``:
    ``t_dat`` datetime64[ns] (the day), ``customer`` int64, ``article`` int64, ``price`` float64
    (what was paid, in the store's currency), ``order`` int64 (the items of one checkout share it),
    ``returned`` boolean (pandas nullable; ``<NA>`` where unknown), ``size`` categorical over
    :data:`SIZES`, ordered (``NaN`` where unknown).
``articles``, indexed by ``article`` (int64, unique):
    the categorical attributes :data:`ARTICLE_ATTRIBUTES` (all-missing where a source lacks one),
    ``launch`` datetime64[ns] (first day on sale; ``NaT`` if never sold), and any further columns.
``customers``, indexed by ``customer`` (int64, unique): whatever attributes the source has.

Images are not a table column: ``images`` is a ``uint8`` array of shape ``(n_articles, H, W, 3)``
aligned row by row with ``articles`` (``images[i]`` shows ``articles.index[i]``), or ``None``.
On disk it is ``images.parquet``: an ``article`` column and an ``image`` column of fixed-size binary
(``H*W*3`` bytes, row-major HWC) with the shape in the schema metadata, so it round-trips through
Parquet exactly and stays readable by any Parquet reader.

``availability``, one row per spell an article was on sale (or ``None`` where the source has no stock
data, as H&M): ``article`` int64, ``on_sale_from`` and ``on_sale_until`` datetime64[ns], the spell
being ``on_sale_from <= day < on_sale_until`` (an article that sells out in every size and comes back
from returns has two spells). What a backtest may rank at a cutoff is decided from this table and the
catalogue's launch dates, never from what sold after the cutoff.

``truth`` holds the simulator's ground truth (:class:`gpa_lib.recsys.sim.simulate.SimTruth`) and is
``None`` for loaded data; it is never saved, and :meth:`SalesData.window` drops it, so a model that
is handed a window cannot see it. The same seed re-creates it bit for bit.
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gpa_lib.recsys.data.tables import (
    ARTICLE_ATTRIBUTES,
    AVAILABILITY_COLUMNS,
    TRANSACTION_COLUMNS,
    conform_articles,
    conform_availability,
    conform_customers,
    conform_transactions,
    is_naive_datetime,
)

TABLES = ("transactions", "articles", "customers")


@dataclass(repr=False)
class SalesData:
    """Sales of a fashion store: ``transactions``, ``articles``, ``customers``, article ``images``.

    See the module docstring for the exact columns and dtypes. ``meta`` is a small JSON-able dict
    describing the source (``{"source": "simulator", "config": {...}}`` or ``{"source": "hm", ...}``).
    Construction validates the tables (``check=False`` skips it, for internal copies of checked data).
    """

    transactions: pd.DataFrame
    articles: pd.DataFrame
    customers: pd.DataFrame
    images: np.ndarray | None = None
    truth: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    check: InitVar[bool] = True
    availability: pd.DataFrame | None = None

    def __post_init__(self, check: bool) -> None:
        if check:
            self.validate()

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_frames(
        cls,
        transactions: pd.DataFrame,
        articles: pd.DataFrame,
        customers: pd.DataFrame,
        images: np.ndarray | None = None,
        meta: dict[str, Any] | None = None,
        availability: pd.DataFrame | None = None,
    ) -> SalesData:
        """Coerce user tables to the model's dtypes (ids to int64, dates to datetime64[ns], ...) and validate.

        ``articles`` and ``customers`` may carry their id as index or as a column named
        ``article``/``customer``; missing ``returned``/``size`` columns become all-unknown, missing
        article attributes become all-missing categoricals.
        """
        return cls(
            conform_transactions(transactions),
            conform_articles(articles),
            conform_customers(customers),
            images=images,
            meta=dict(meta or {}),
            availability=None if availability is None else conform_availability(availability),
        )

    # ------------------------------------------------------------------ views
    @property
    def start(self) -> pd.Timestamp:
        """The first transaction day."""
        return self.transactions["t_dat"].iloc[0] if len(self.transactions) else pd.NaT

    @property
    def end(self) -> pd.Timestamp:
        """The last transaction day."""
        return self.transactions["t_dat"].iloc[-1] if len(self.transactions) else pd.NaT

    def window(self, start: Any = None, end: Any = None) -> SalesData:
        """The transactions with ``start <= t_dat < end`` (either bound may be ``None``).

        Articles, customers and images are kept whole (a backtest decides which articles a model may
        see); ``truth`` is dropped so that nothing derived from it reaches a model, and the
        availability spells are cut at ``end`` (when an article sells out later is not known yet).
        """
        t = self.transactions["t_dat"]
        keep = np.ones(len(t), dtype=bool)
        if start is not None:
            keep &= (t >= pd.Timestamp(start)).to_numpy()
        if end is not None:
            keep &= (t < pd.Timestamp(end)).to_numpy()
        return SalesData(
            self.transactions.loc[keep].reset_index(drop=True),
            self.articles,
            self.customers,
            images=self.images,
            truth=None,
            meta=dict(self.meta),
            check=False,
            availability=_availability_until(self.availability, end),
        )

    def on_sale(self, day: Any) -> np.ndarray:
        """Sorted ids of the articles on sale at the start of ``day`` (from ``availability``)."""
        if self.availability is None:
            raise ValueError(
                "this SalesData has no availability table (no stock data, e.g. H&M); "
                "see gpa_lib.recsys.eval.backtest.test_window for the fallback"
            )
        day = pd.Timestamp(day).to_datetime64()
        table = self.availability
        live = (table["on_sale_from"].to_numpy() <= day) & (day < table["on_sale_until"].to_numpy())
        return np.unique(table["article"].to_numpy()[live])

    def __repr__(self) -> str:
        span = "" if not len(self.transactions) else f", {self.start.date()}..{self.end.date()}"
        image = "" if self.images is None else f", images {tuple(self.images.shape[1:])}"
        truth = "" if self.truth is None else ", with truth"
        truth += "" if self.availability is None else ", with availability"
        return (
            f"SalesData({len(self.transactions):,} items in {self.transactions['order'].nunique():,} "
            f"orders{span}; {len(self.articles):,} articles, {len(self.customers):,} customers"
            f"{image}{truth})"
        )

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ``ValueError`` listing every inconsistency found, each with what and how many."""
        problems = _schema_problems(self)
        if not problems:  # the content checks need the schema to hold
            problems = _content_problems(self)
        if problems:
            raise ValueError("invalid SalesData:\n  - " + "\n  - ".join(problems))


# ---------------------------------------------------------------------- validation


def _schema_problems(data: SalesData) -> list[str]:
    problems: list[str] = []
    tx, articles, customers = data.transactions, data.articles, data.customers
    for name, table in zip(TABLES, (tx, articles, customers), strict=True):
        if not isinstance(table, pd.DataFrame):
            problems.append(f"{name} must be a pandas DataFrame, got {type(table).__name__}")
    if problems:
        return problems
    missing = [c for c in TRANSACTION_COLUMNS if c not in tx.columns]
    if missing:
        problems.append(f"transactions lacks column(s) {missing}")
    expected = {"customer": "int64", "article": "int64", "order": "int64", "returned": "boolean"}
    for column, dtype in expected.items():
        if column in tx.columns and str(tx[column].dtype) != dtype:
            problems.append(
                f"transactions[{column!r}] has dtype {tx[column].dtype}, expected {dtype}"
            )
    if "t_dat" in tx.columns and not is_naive_datetime(tx["t_dat"]):
        problems.append(f"transactions['t_dat'] has dtype {tx['t_dat'].dtype}, expected datetime64")
    if "price" in tx.columns and not pd.api.types.is_float_dtype(tx["price"].dtype):
        problems.append(f"transactions['price'] has dtype {tx['price'].dtype}, expected float")
    if "size" in tx.columns and not isinstance(tx["size"].dtype, pd.CategoricalDtype):
        problems.append(f"transactions['size'] has dtype {tx['size'].dtype}, expected category")
    for name, table, key in (
        ("articles", articles, "article"),
        ("customers", customers, "customer"),
    ):
        if table.index.name != key or str(table.index.dtype) != "int64":
            problems.append(
                f"{name} must be indexed by an int64 index named {key!r}, got "
                f"name={table.index.name!r} dtype={table.index.dtype}"
            )
    missing = [c for c in (*ARTICLE_ATTRIBUTES, "launch") if c not in articles.columns]
    if missing:
        problems.append(f"articles lacks column(s) {missing}")
    for column in ARTICLE_ATTRIBUTES:
        if column in articles.columns and not isinstance(
            articles[column].dtype, pd.CategoricalDtype
        ):
            problems.append(
                f"articles[{column!r}] has dtype {articles[column].dtype}, expected category"
            )
    if "launch" in articles.columns and not is_naive_datetime(articles["launch"]):
        problems.append(
            f"articles['launch'] has dtype {articles['launch'].dtype}, expected datetime64"
        )
    if data.availability is not None:
        problems += _availability_schema_problems(data.availability)
    if data.images is not None:
        images = data.images
        if (
            not isinstance(images, np.ndarray)
            or images.dtype != np.uint8
            or images.ndim != 4
            or images.shape[0] != len(articles)
            or images.shape[3] != 3
        ):
            shape = getattr(images, "shape", None)
            problems.append(
                f"images must be uint8 of shape (n_articles={len(articles)}, H, W, 3), got "
                f"{type(images).__name__} {getattr(images, 'dtype', '')} {shape}"
            )
    return problems


def _content_problems(data: SalesData) -> list[str]:
    problems: list[str] = []
    tx, articles, customers = data.transactions, data.articles, data.customers
    for name, table, key in (
        ("articles", articles, "article"),
        ("customers", customers, "customer"),
    ):
        n_dup = int(table.index.duplicated().sum())
        if n_dup:
            problems.append(
                f"{name}: {n_dup} duplicated {key} id(s), e.g. "
                f"{_examples(table.index[table.index.duplicated()])}"
            )
    if problems:  # the id lookups below need unique ids
        return problems
    for column in ("t_dat", "price"):
        n_na = int(tx[column].isna().sum())
        if n_na:
            problems.append(f"transactions: {n_na} row(s) with missing {column!r}")
    price = tx["price"].to_numpy()
    n_negative = int((price < 0).sum())
    if n_negative:
        problems.append(
            f"transactions: {n_negative} row(s) with a negative price, e.g. {_examples(price[price < 0])}"
        )
    for column, table, name in (
        ("article", articles, "articles"),
        ("customer", customers, "customers"),
    ):
        ids = tx[column].to_numpy()
        unknown_rows = _rows_not_in(ids, table.index)
        if len(unknown_rows):
            unknown_ids = pd.unique(ids[unknown_rows])
            n_rows = len(unknown_rows)
            problems.append(
                f"transactions: {n_rows} row(s) refer to {len(unknown_ids)} {column} id(s) "
                f"not in the {name} table, e.g. {_examples(unknown_ids)}"
            )
    if problems or not len(tx):
        return problems
    day = tx["t_dat"].to_numpy()
    n_back = int((day[1:] < day[:-1]).sum())
    if n_back:
        problems.append(
            f"transactions: dates out of order, {n_back} row(s) dated before the row above "
            "(sort by t_dat)"
        )
    early = _rows_before_launch(day, tx["article"].to_numpy(), articles)
    if len(early):
        problems.append(
            f"transactions: {len(early)} row(s) dated before their article's launch, "
            f"e.g. article {_examples(tx['article'].to_numpy()[early])}"
        )
    if data.availability is not None:
        table = data.availability
        known = articles.index.get_indexer(table["article"].to_numpy()) >= 0
        if not known.all():
            problems.append(
                f"availability: {int((~known).sum())} row(s) refer to article id(s) not in the "
                f"articles table, e.g. {_examples(table['article'].to_numpy()[~known])}"
            )
        empty = ~(table["on_sale_from"].to_numpy() < table["on_sale_until"].to_numpy())
        if empty.any():
            problems.append(
                f"availability: {int(empty.sum())} spell(s) with on_sale_from >= on_sale_until "
                "(or missing), e.g. article "
                f"{_examples(table['article'].to_numpy()[empty])}"
            )
    n_split = _orders_split(tx["order"].to_numpy(), day, tx["customer"].to_numpy())
    if n_split:
        problems.append(f"transactions: {n_split} order(s) span more than one day or customer")
    return problems


#: Rows looked up at a time by the row-wise checks, so that their temporaries stay small on H&M.
_CHECK_ROWS = 1 << 22


def _rows_not_in(ids: np.ndarray, index: pd.Index) -> np.ndarray:
    """Positions of the ``ids`` that ``index`` (unique) lacks, looked up a block at a time.

    The hash table is the index's (small); hashing the 31.8M H&M rows to find their distinct ids
    first would cost a table of their size.
    """
    rows = [
        start + np.flatnonzero(index.get_indexer(ids[start : start + _CHECK_ROWS]) < 0)
        for start in range(0, len(ids), _CHECK_ROWS)
    ]
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)


def _rows_before_launch(day: np.ndarray, article: np.ndarray, articles: pd.DataFrame) -> np.ndarray:
    """Positions of the rows dated before their article's launch (``NaT`` launches pass)."""
    launch = articles["launch"].to_numpy()
    early = []
    for start in range(0, len(day), _CHECK_ROWS):
        stop = start + _CHECK_ROWS
        row_launch = launch[articles.index.get_indexer(article[start:stop])]
        early.append(start + np.flatnonzero(day[start:stop] < row_launch))  # NaT compares False
    return np.concatenate(early) if early else np.zeros(0, np.int64)


def _orders_split(order: np.ndarray, day: np.ndarray, customer: np.ndarray) -> int:
    """How many orders hold rows of more than one day or customer.

    Each order's values are compared with those of one of its rows (whichever is written last
    below): an order is split exactly when some row differs from it. Linear, and without the
    per-order tables of a groupby (H&M has about 25M orders).
    """
    if not len(order):
        return 0
    low, high = int(order.min()), int(order.max())
    if high - low < 2 * len(order):  # dense ids (the simulator's, H&M's): no hashing needed
        codes, n_codes = (order - low if low else order), high - low + 1
    else:
        codes, uniques = pd.factorize(order)
        n_codes = len(uniques)
    split = np.zeros(n_codes, dtype=bool)
    for values in (day, customer):
        representative = np.empty(n_codes, dtype=values.dtype)
        representative[codes] = values
        split[codes[values != representative[codes]]] = True
    return int(split.sum())


def _availability_schema_problems(table: Any) -> list[str]:
    if not isinstance(table, pd.DataFrame):
        return [f"availability must be a pandas DataFrame or None, got {type(table).__name__}"]
    missing = [c for c in AVAILABILITY_COLUMNS if c not in table.columns]
    if missing:
        return [f"availability lacks column(s) {missing}"]
    problems = []
    if str(table["article"].dtype) != "int64":
        problems.append(
            f"availability['article'] has dtype {table['article'].dtype}, expected int64"
        )
    for column in ("on_sale_from", "on_sale_until"):
        if not is_naive_datetime(table[column]):
            problems.append(
                f"availability[{column!r}] has dtype {table[column].dtype}, expected datetime64"
            )
    return problems


def _availability_until(table: pd.DataFrame | None, end: Any) -> pd.DataFrame | None:
    """The spells as known the day before ``end``: later spells dropped, open ones cut at ``end``."""
    if table is None or end is None:
        return table
    end = pd.Timestamp(end).to_datetime64()
    keep = table["on_sale_from"].to_numpy() < end
    out = table.loc[keep].reset_index(drop=True)
    out["on_sale_until"] = np.minimum(out["on_sale_until"].to_numpy(), end)
    return out


def _examples(values: Any, n: int = 3) -> str:
    values = list(np.asarray(values)[:n])
    return ", ".join(str(v) for v in values)
