"""The data model's column names and the coercion of user tables to its dtypes (no SalesData here)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

SIZES = ("XS", "S", "M", "L", "XL")
ARTICLE_ATTRIBUTES = ("category", "colour", "pattern", "brand", "price_tier", "season", "material")
TRANSACTION_COLUMNS = ("t_dat", "customer", "article", "price", "order", "returned", "size")
AVAILABILITY_COLUMNS = ("article", "on_sale_from", "on_sale_until")


def is_naive_datetime(series: pd.Series) -> bool:
    return (
        pd.api.types.is_datetime64_dtype(series.dtype) and getattr(series.dtype, "tz", None) is None
    )


def conform_transactions(tx: pd.DataFrame) -> pd.DataFrame:
    """``tx`` with the model's dtypes and column order, sorted stably by ``t_dat``."""
    missing = [c for c in ("t_dat", "customer", "article", "price", "order") if c not in tx.columns]
    if missing:
        raise ValueError(
            f"transactions lacks column(s) {missing}; needs t_dat, customer, article, price, order"
        )
    out = pd.DataFrame(
        {
            "t_dat": pd.to_datetime(tx["t_dat"]).astype("datetime64[ns]").to_numpy(),
            "customer": tx["customer"].to_numpy(dtype=np.int64),
            "article": tx["article"].to_numpy(dtype=np.int64),
            "price": tx["price"].to_numpy(dtype=np.float64),
            "order": tx["order"].to_numpy(dtype=np.int64),
            "returned": (
                tx["returned"].astype("boolean")
                if "returned" in tx.columns
                else pd.array([pd.NA] * len(tx), dtype="boolean")
            ),
            "size": size_categorical(tx["size"] if "size" in tx.columns else [None] * len(tx)),
        }
    )
    extra = [c for c in tx.columns if c not in out.columns]
    for column in extra:
        out[column] = tx[column].to_numpy()
    order = np.argsort(out["t_dat"].to_numpy(), kind="stable")
    return out.iloc[order].reset_index(drop=True)


def size_categorical(values: Any) -> pd.Categorical:
    """``values`` (labels from :data:`SIZES` or missing) as the ordered size categorical."""
    values = pd.Series(values, dtype=object)
    unknown = set(values.dropna()) - set(SIZES)
    if unknown:
        raise ValueError(f"size values {sorted(map(str, unknown))[:5]} are not in SIZES={SIZES}")
    return pd.Categorical(values, categories=list(SIZES), ordered=True)


def conform_articles(articles: pd.DataFrame) -> pd.DataFrame:
    """``articles`` indexed by int64 ``article`` with categorical attributes and a datetime ``launch``."""
    out = articles.copy()
    if out.index.name != "article":
        if "article" not in out.columns:
            raise ValueError("articles needs an index or column named 'article'")
        out = out.set_index("article")
    out.index = pd.Index(out.index.to_numpy(dtype=np.int64), name="article")
    for column in ARTICLE_ATTRIBUTES:
        if column not in out.columns:
            out[column] = pd.Categorical([None] * len(out), categories=pd.Index([], dtype=str))
        elif not isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype("category")
    launch = out["launch"] if "launch" in out.columns else pd.Series(pd.NaT, index=out.index)
    out["launch"] = pd.to_datetime(launch).astype("datetime64[ns]")
    return out


def conform_availability(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` as the availability spells: int64 ``article``, datetime64[ns] bounds, sorted."""
    missing = [c for c in AVAILABILITY_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"availability lacks column(s) {missing}; needs {AVAILABILITY_COLUMNS}")
    out = pd.DataFrame(
        {
            "article": table["article"].to_numpy(dtype=np.int64),
            "on_sale_from": pd.to_datetime(table["on_sale_from"])
            .astype("datetime64[ns]")
            .to_numpy(),
            "on_sale_until": pd.to_datetime(table["on_sale_until"])
            .astype("datetime64[ns]")
            .to_numpy(),
        }
    )
    return out.sort_values(["article", "on_sale_from"], kind="stable").reset_index(drop=True)


def conform_customers(customers: pd.DataFrame) -> pd.DataFrame:
    """``customers`` indexed by int64 ``customer``."""
    out = customers.copy()
    if out.index.name != "customer":
        if "customer" not in out.columns:
            raise ValueError("customers needs an index or column named 'customer'")
        out = out.set_index("customer")
    out.index = pd.Index(out.index.to_numpy(dtype=np.int64), name="customer")
    return out


def availability_from_days(
    on_sale: np.ndarray, start: Any, article_ids: np.ndarray
) -> pd.DataFrame:
    """Spells table from a bool ``(n_days, n_articles)`` array (on sale at the start of each day,
    day 0 = ``start``), sorted by article then date."""
    n_days, n_articles = on_sale.shape
    if len(article_ids) != n_articles:
        raise ValueError(f"article_ids has {len(article_ids)} ids, on_sale {n_articles} columns")
    padded = np.zeros((n_days + 2, n_articles), dtype=np.int8)
    padded[1:-1] = on_sale
    step = np.diff(padded, axis=0)  # (n_days + 1, n_articles): +1 where a spell starts, -1 after
    column, first_day = np.nonzero(step.T == 1)  # row-major: sorted by article, then by day
    _, last_day = np.nonzero(step.T == -1)
    start = np.datetime64(pd.Timestamp(start).normalize().to_datetime64(), "D")
    return pd.DataFrame(
        {
            "article": np.asarray(article_ids, dtype=np.int64)[column],
            "on_sale_from": (start + first_day.astype("timedelta64[D]")).astype("datetime64[ns]"),
            "on_sale_until": (start + last_day.astype("timedelta64[D]")).astype("datetime64[ns]"),
        }
    )


def images_to_table(article_ids: np.ndarray, images: np.ndarray) -> pa.Table:
    """Images ``(n, H, W, 3)`` uint8 as a table: ``article`` int64, ``image`` fixed_size_binary(H*W*3)."""
    n, height, width, channels = images.shape
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(-1)  # (n*H*W*C,)
    column = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(height * width * channels), n, [None, pa.py_buffer(flat)]
    )
    schema = pa.schema(
        [("article", pa.int64()), ("image", pa.binary(height * width * channels))],
        metadata={"image_shape": json.dumps([height, width, channels]), "layout": "HWC uint8"},
    )
    return pa.Table.from_arrays([pa.array(article_ids, pa.int64()), column], schema=schema)


def images_from_table(table: pa.Table, article_ids: np.ndarray) -> np.ndarray:
    """Inverse of :func:`images_to_table`, rows put in the order of ``article_ids``."""
    height, width, channels = json.loads(table.schema.metadata[b"image_shape"])
    column = table.column("image").combine_chunks()
    raw = np.frombuffer(
        column.buffers()[1], dtype=np.uint8, count=len(column) * height * width * channels
    )
    images = raw.reshape(len(column), height, width, channels)  # (n, H, W, C) in file order
    position = pd.Index(table.column("article").to_numpy()).get_indexer(article_ids)
    if (position < 0).any():
        raise ValueError(
            f"images.parquet lacks {int((position < 0).sum())} article(s) of the articles table"
        )
    return images[position].copy()
