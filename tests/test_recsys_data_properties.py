"""Property tests: ``SalesData`` validation on random corruptions of random valid tables.

A valid store is drawn (a few articles and customers, up to 30 sales over ten days, one order per
customer and day); then one corruption is applied to ``n`` drawn rows or ids: an id the table lacks,
a negative price, a missing day or price, a sale before its article's launch, a duplicated id, an
order split over two customers. Validation must raise one ``ValueError`` whose message names the
column and gives the count. Bounded, derandomized example counts.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpa_lib.recsys.data import SalesData

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
START = pd.Timestamp("2024-03-01")


@st.composite
def stores(draw):
    """Valid ``(transactions, articles, customers)`` frames as a user would hand them over."""
    n_articles = draw(st.integers(1, 6))
    n_customers = draw(st.integers(1, 6))
    article_ids = draw(
        st.lists(st.integers(0, 10**9), min_size=n_articles, max_size=n_articles, unique=True)
    )
    customer_ids = draw(
        st.lists(st.integers(0, 10**6), min_size=n_customers, max_size=n_customers, unique=True)
    )
    sale = st.tuples(
        st.integers(0, 9),  # day
        st.sampled_from(customer_ids),
        st.sampled_from(article_ids),
        st.floats(0.0, 500.0, allow_nan=False),
    )
    sales = sorted(draw(st.lists(sale, min_size=2, max_size=30)), key=lambda s: s[0])
    day, customer, article, price = (list(c) for c in zip(*sales, strict=True))
    order = pd.factorize(pd.Series(list(zip(day, customer, strict=True))))[0]
    transactions = pd.DataFrame(
        {
            "t_dat": START + pd.to_timedelta(day, unit="D"),
            "customer": customer,
            "article": article,
            "price": price,
            "order": order,
        }
    )
    articles = pd.DataFrame(
        {
            "article": article_ids,
            "category": draw(
                st.lists(st.sampled_from(["top", "coat"]), min_size=n_articles, max_size=n_articles)
            ),
            "launch": START - pd.Timedelta(days=1),
        }
    )
    customers = pd.DataFrame({"customer": customer_ids, "age": 30})
    return transactions, articles, customers


def rows_of(draw, transactions, at_least=1):
    n_rows = len(transactions)
    picked = draw(
        st.lists(st.integers(0, n_rows - 1), min_size=at_least, max_size=n_rows, unique=True)
    )
    return sorted(picked)


@st.composite
def corruptions(draw):
    """``(frames, column, count, pattern)``: a corrupted store and what validation must say."""
    transactions, articles, customers = draw(stores())
    kind = draw(
        st.sampled_from(
            [
                "article",
                "customer",
                "negative",
                "nat",
                "nan",
                "launch",
                "dup_article",
                "dup_customer",
                "split",
            ]
        )
    )
    if kind in ("article", "customer"):
        table = articles if kind == "article" else customers
        rows = rows_of(draw, transactions)
        strangers = draw(st.lists(st.integers(-50, -1), min_size=1, max_size=3, unique=True))
        values = [strangers[i % len(strangers)] for i in range(len(rows))]
        transactions.loc[rows, kind] = values
        n_ids = len(set(values))
        assert not set(values) & set(table[kind])
        pattern = rf"{len(rows)} row\(s\) refer to {n_ids} {kind} id\(s\) not in the {kind}s table"
        return (transactions, articles, customers), kind, len(rows), pattern
    if kind == "negative":
        rows = rows_of(draw, transactions)
        transactions.loc[rows, "price"] = -draw(st.floats(0.01, 100.0))
        return (
            (transactions, articles, customers),
            "price",
            len(rows),
            rf"{len(rows)} row\(s\) with a negative price",
        )
    if kind in ("nat", "nan"):
        column = "t_dat" if kind == "nat" else "price"
        rows = rows_of(draw, transactions)
        transactions.loc[rows, column] = pd.NaT if kind == "nat" else np.nan
        pattern = rf"{len(rows)} row\(s\) with missing '{column}'"
        return (transactions, articles, customers), column, len(rows), pattern
    if kind == "launch":
        # one article launches after its first sale: every sale of it before that day counts
        article = draw(st.sampled_from(sorted(set(transactions["article"]))))
        sold = transactions.loc[transactions["article"] == article, "t_dat"]
        launch = draw(st.sampled_from(sorted(set(sold)))) + pd.Timedelta(days=1)
        articles.loc[articles["article"] == article, "launch"] = launch
        count = int((sold < launch).sum())
        pattern = rf"{count} row\(s\) dated before their article's launch"
        return (transactions, articles, customers), "launch", count, pattern
    if kind in ("dup_article", "dup_customer"):
        column = kind.removeprefix("dup_")
        table = articles if column == "article" else customers
        extra = draw(st.integers(1, 3))
        copies = table.iloc[[draw(st.integers(0, len(table) - 1)) for _ in range(extra)]]
        table = pd.concat([table, copies], ignore_index=True)
        frames = (
            (transactions, table, customers)
            if column == "article"
            else (transactions, articles, table)
        )
        n_dup = int(table[column].duplicated().sum())
        return frames, column, n_dup, rf"{n_dup} duplicated {column} id\(s\)"
    # split: the rows of one order handed to a customer the others do not have
    groups = transactions.groupby("order").size()
    if (groups < 2).all() or len(customers) < 2:
        row = draw(st.integers(0, len(transactions) - 2))
        transactions.loc[row + 1, "order"] = transactions.loc[row, "order"]
        same = transactions.loc[row, ["t_dat", "customer"]].equals(
            transactions.loc[row + 1, ["t_dat", "customer"]]
        )
        count = 0 if same else 1
    else:
        order = draw(st.sampled_from(sorted(groups[groups >= 2].index)))
        row = transactions.index[transactions["order"] == order][-1]
        other = next(c for c in customers["customer"] if c != transactions.loc[row, "customer"])
        transactions.loc[row, "customer"] = other
        count = 1
    pattern = rf"{count} order\(s\) span more than one day or customer"
    return (transactions, articles, customers), "order", count, pattern


@PROPERTY
@given(stores())
def test_valid_stores_pass(frames):
    data = SalesData.from_frames(*frames)
    assert len(data.transactions) == len(frames[0])


@PROPERTY
@given(corruptions())
def test_a_corruption_names_the_column_and_the_count(corruption):
    frames, column, count, pattern = corruption
    if count == 0:  # the drawn change left the store valid (e.g. two sales already one order)
        SalesData.from_frames(*frames)
        return
    with pytest.raises(ValueError) as info:
        SalesData.from_frames(*frames)
    assert type(info.value) is ValueError
    message = str(info.value)
    assert re.search(pattern, message), message
    assert column in message, f"{column!r} not named in: {message}"
    # order ids far apart (no dense numbering) are checked the same way
    transactions = frames[0].assign(order=frames[0]["order"] * 10**12 + 7)
    with pytest.raises(ValueError) as sparse:
        SalesData.from_frames(transactions, *frames[1:])
    assert str(sparse.value) == message
