"""Loader for the public H&M Personalized Fashion Recommendations data (Kaggle, 2022).

Files under ``root`` (see ``data/hm.md`` for where to get them):
``transactions_train.csv`` (31.8M rows: ``t_dat, customer_id, article_id, price, sales_channel_id``),
``articles.csv`` (25 columns), ``customers.csv`` (7 columns), optionally ``images/0xx/0xxxxxxxxx.jpg``.

Required are only the ids and the day (``t_dat, customer_id, article_id``; ``customer_id``;
``article_id``): H&M's other columns are read when present (no price: 0.0 and no price tiers; no
``sales_channel_id``: no such column; no article names: those attributes all missing), and extra
columns of ``customers.csv`` and ``articles.csv`` are kept as text. Article ids must be integers
(they name the image files); for string ids use the interactions format
(:mod:`gpa_lib.recsys.data.interactions`).

Mapping to :class:`~gpa_lib.recsys.data.SalesData`:

- customers: the row order of ``customers.csv`` gives the int64 ``customer`` id (0, 1, ...); the hex
  ``customer_id`` is kept as a column, so ``customers["customer_id"]`` is the mapping back.
- transactions: ``order`` approximates a checkout by (customer, day), numbered in time order;
  ``returned`` and ``size`` are unknown (all missing); ``sales_channel_id`` is kept (int8).
- articles: ``category`` = ``product_type_name``, ``colour`` = ``colour_group_name``, ``pattern`` =
  ``graphical_appearance_name``, ``brand`` = ``index_name`` (H&M's lines: Ladieswear, Divided, ...),
  ``price_tier`` = tertile (low/mid/high) of the article's median price within its
  ``product_group_name`` (missing in a group where every article sells at one price), ``season`` and ``material`` all missing (H&M does not publish them),
  ``launch`` = first day sold (``NaT`` if never sold). Every original column is kept.

The transactions file is streamed in blocks with typed columns (pyarrow), so memory follows the
typed result (1.6 GB for the full file, peak 3.0 GB: ``data/hm.md``) rather than the text. A missing file, a missing column
or an unparsable row is a ``ValueError`` naming the file, the column and the line.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from tqdm.auto import tqdm

from gpa_lib.recsys.data.csvfiles import check_header, locate_bad_row, read_small_csv
from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.data.tables import size_categorical


class MissingImagesWarning(UserWarning):
    """Articles without an image file under ``images/`` (they get an all-zero image)."""


TRANSACTIONS_FILE = "transactions_train.csv"
ARTICLES_FILE = "articles.csv"
CUSTOMERS_FILE = "customers.csv"

TRANSACTION_TYPES = {
    "t_dat": pa.date32(),
    "customer_id": pa.dictionary(pa.int32(), pa.string()),
    "article_id": pa.int64(),
    "price": pa.float64(),
    "sales_channel_id": pa.int8(),
}
CUSTOMER_TYPES = {
    "customer_id": pa.string(),
    "FN": pa.float64(),
    "Active": pa.float64(),
    "club_member_status": pa.string(),
    "fashion_news_frequency": pa.string(),
    "age": pa.float64(),
    "postal_code": pa.string(),
}
#: The columns a file must have; the others of the types above are read when present (a dump of
#: another store may lack H&M's prices, channels, customer flags or article names).
TRANSACTION_REQUIRED = ("t_dat", "customer_id", "article_id")
CUSTOMER_REQUIRED = ("customer_id",)
ARTICLE_REQUIRED = ("article_id",)
#: The data model's attributes and the H&M column each comes from (all missing when absent).
ARTICLE_NAME_COLUMNS = {
    "category": "product_type_name",
    "colour": "colour_group_name",
    "pattern": "graphical_appearance_name",
    "brand": "index_name",
}
ARTICLE_INT_COLUMNS = (
    "article_id",
    "product_code",
    "product_type_no",
    "graphical_appearance_no",
    "colour_group_code",
    "perceived_colour_value_id",
    "perceived_colour_master_id",
    "department_no",
    "index_group_no",
    "section_no",
    "garment_group_no",
)


def load_hm(
    root: str | os.PathLike,
    images: bool = False,
    *,
    image_size: int = 32,
    block_size: int = 16 << 20,
    progress: bool = True,
) -> SalesData:
    """Read the H&M files under ``root`` into a validated :class:`SalesData`.

    ``images=True`` also reads ``images/0xx/0xxxxxxxxx.jpg``, fitted into ``image_size`` x
    ``image_size`` pixels on white; without an ``images/`` folder it is a ``ValueError``, and
    articles without a file get a zero image, ``articles["has_image"] = False`` and one
    :class:`MissingImagesWarning` counting them. ``block_size`` (bytes) bounds the text read at once.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root={str(root)!r} is not a folder; point it at the unpacked H&M data")
    for name in (TRANSACTIONS_FILE, ARTICLES_FILE, CUSTOMERS_FILE):
        if not (root / name).is_file():
            raise ValueError(f"{name} is missing under root={str(root)!r} (see data/hm.md)")
    customers = read_customers(root / CUSTOMERS_FILE)
    articles = read_articles(root / ARTICLES_FILE)
    transactions = read_transactions(
        root / TRANSACTIONS_FILE, customers["customer_id"], block_size=block_size, progress=progress
    )
    articles = _add_model_attributes(articles, transactions)
    image_array = None
    if images:
        if not (root / "images").is_dir():
            raise ValueError(
                f"images=True but {str(root / 'images')!r} is not a folder; unpack the images "
                "there (images/0xx/0xxxxxxxxx.jpg, see data/hm.md) or pass images=False"
            )
        image_array, found = read_images(
            root / "images", articles.index.to_numpy(), image_size, progress
        )
        if not found.all():
            warnings.warn(
                f"{int((~found).sum())} of {len(found)} articles have no image under "
                f"{str(root / 'images')!r} (e.g. article {int(articles.index[~found][0])}): they "
                "get an all-zero image and articles['has_image'] = False",
                MissingImagesWarning,
                stacklevel=2,
            )
        articles["has_image"] = found
    return SalesData(
        transactions,
        articles,
        customers,
        images=image_array,
        meta={"source": "hm", "root": str(root)},
    )


# ---------------------------------------------------------------------- the three tables


def read_customers(file: Path) -> pd.DataFrame:
    """``customers.csv`` indexed by ``customer`` = row number; ``customer_id`` keeps the hex id."""
    header = check_header(file, dict.fromkeys(CUSTOMER_REQUIRED))
    types = {c: CUSTOMER_TYPES.get(c, pa.string()) for c in header}  # extra columns as text
    table = read_small_csv(file, header, types)
    hex_ids = table.column("customer_id")
    if hex_ids.null_count:
        line = int(np.flatnonzero(hex_ids.is_null().to_numpy(zero_copy_only=False))[0]) + 2
        raise ValueError(f"{file.name} line {line}, column 'customer_id': missing customer id")
    convert = {
        "FN": lambda c: c.eq(1.0),
        "Active": lambda c: c.eq(1.0),
        "club_member_status": lambda c: c.astype("category"),
        "fashion_news_frequency": lambda c: c.astype("category"),
        "age": lambda c: c.astype("Int64"),
    }
    customers = pd.DataFrame(
        {
            column: convert.get(column, lambda c: c)(table.column(column).to_pandas())
            for column in header
        },
        index=pd.RangeIndex(table.num_rows, name="customer").astype(np.int64),
    )
    del table, hex_ids
    pa.default_memory_pool().release_unused()
    duplicated = customers["customer_id"].duplicated()
    if duplicated.any():
        line = int(np.flatnonzero(duplicated.to_numpy())[0]) + 2
        raise ValueError(
            f"{file.name} line {line}, column 'customer_id': duplicated id "
            f"{customers['customer_id'].iloc[line - 2]!r} ({int(duplicated.sum())} duplicates)"
        )
    return customers


def read_articles(file: Path) -> pd.DataFrame:
    """``articles.csv`` indexed by ``article`` (= ``article_id``), names as categoricals."""
    header = check_header(file, dict.fromkeys(ARTICLE_REQUIRED))
    types = {c: pa.int64() for c in ARTICLE_INT_COLUMNS if c in header}
    types.update({c: pa.string() for c in header if c not in types})
    table = read_small_csv(file, header, types)
    ids = table.column("article_id")
    if ids.null_count:
        line = int(np.flatnonzero(ids.is_null().to_numpy(zero_copy_only=False))[0]) + 2
        raise ValueError(f"{file.name} line {line}, column 'article_id': missing article id")
    articles = table.to_pandas()
    for column in articles.columns:
        if column not in ("article_id", "detail_desc") and pd.api.types.is_string_dtype(
            articles[column].dtype
        ):
            articles[column] = articles[column].astype("category")
    articles = articles.set_index(
        pd.Index(articles.pop("article_id").to_numpy(np.int64), name="article")
    )
    duplicated = articles.index.duplicated()
    if duplicated.any():
        line = int(np.flatnonzero(duplicated)[0]) + 2
        raise ValueError(
            f"{file.name} line {line}, column 'article_id': duplicated id {articles.index[line - 2]}"
        )
    return articles


def read_transactions(
    file: Path, customer_ids: pd.Series, *, block_size: int = 16 << 20, progress: bool = True
) -> pd.DataFrame:
    """Stream ``transactions_train.csv`` in blocks into the transactions table.

    ``customer_ids`` (hex strings, position = integer id) maps ``customer_id``; an id not in it is a
    ``ValueError`` naming the line. Rows are sorted by day (stably) and numbered into orders by
    (customer, day).
    """
    header = check_header(file, dict.fromkeys(TRANSACTION_REQUIRED))
    types = {c: t for c, t in TRANSACTION_TYPES.items() if c in header}
    id_index = pd.Index(customer_ids.to_numpy())
    try:  # open_csv already reads the first block
        reader = pacsv.open_csv(
            file,
            read_options=pacsv.ReadOptions(block_size=block_size),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types)),
        )
    except pa.ArrowInvalid as error:
        raise locate_bad_row(file, header, types, 0, error) from error
    days, customers, articles, prices, channels = [], [], [], [], []
    rows_done = 0
    bar = tqdm(
        total=file.stat().st_size,
        unit="B",
        unit_scale=True,
        desc="H&M transactions",
        disable=not progress,
    )
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as error:
            raise locate_bad_row(file, header, types, rows_done, error) from error
        for column in types:
            values = batch.column(column)
            if values.null_count:
                line = (
                    rows_done
                    + int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
                    + 2
                )
                optional = (
                    ""
                    if column in TRANSACTION_REQUIRED
                    else f" (no model reads {column!r}: leave the column out if it is unknown)"
                )
                raise ValueError(
                    f"{file.name} line {line}, column {column!r}: missing value{optional}"
                )
        hex_ids = batch.column("customer_id")
        code_of_value = id_index.get_indexer(hex_ids.dictionary.to_numpy(zero_copy_only=False))
        customer = code_of_value[hex_ids.indices.to_numpy()]  # (rows,) integer ids, -1 unknown
        if (customer < 0).any():
            first = int(np.flatnonzero(customer < 0)[0])
            raise ValueError(
                f"{file.name} line {rows_done + first + 2}, column 'customer_id': "
                f"{hex_ids[first].as_py()!r} is not in {CUSTOMERS_FILE} "
                f"({int((customer < 0).sum())} such rows in this block)"
            )
        days.append(batch.column("t_dat").cast(pa.int32()).to_numpy())
        customers.append(customer.astype(np.int32))  # (rows,) positions in customers.csv
        articles.append(batch.column("article_id").to_numpy())
        if "price" in types:
            prices.append(batch.column("price").to_numpy())
        if "sales_channel_id" in types:
            channels.append(batch.column("sales_channel_id").to_numpy())
        rows_done += batch.num_rows
        bar.update(block_size)
    bar.close()
    del reader
    # Each column is built once, in its final dtype, from the blocks, which are freed as they are
    # copied: the peak is the typed result plus the blocks of the columns not yet built (~25 bytes
    # a row), never the text or a second copy of a column.
    n = rows_done
    columns = {
        "t_dat": _fill(days, np.empty(n, "datetime64[ns]")),
        "customer": _fill(customers, np.empty(n, np.int64)),
        "article": _fill(articles, np.empty(n, np.int64)),
        "price": _fill(prices, np.empty(n, np.float64)) if "price" in types else np.zeros(n),
    }
    if "sales_channel_id" in types:
        columns["sales_channel_id"] = _fill(channels, np.empty(n, np.int8))
    pa.default_memory_pool().release_unused()  # the blocks' buffers, back to the system
    day = columns["t_dat"].view(np.int64)
    if n and not (day[1:] >= day[:-1]).all():  # H&M is sorted by day; other dumps may not be
        sort = np.argsort(day, kind="stable")
        for name in columns:
            columns[name] = columns[name][sort]
        del sort
        day = columns["t_dat"].view(np.int64)
    order = _orders_by_customer_day(day, columns["customer"])
    del day
    frame = {
        "t_dat": columns.pop("t_dat"),
        "customer": columns.pop("customer"),
        "article": columns.pop("article"),
        "price": columns.pop("price"),
        "order": order,
        "returned": pd.arrays.BooleanArray(np.zeros(n, bool), np.ones(n, bool)),  # all unknown
        "size": pd.Categorical.from_codes(
            np.full(n, -1, np.int8), dtype=size_categorical([]).dtype
        ),
    }
    if "sales_channel_id" in columns:
        frame["sales_channel_id"] = columns.pop("sales_channel_id")
    return pd.DataFrame(frame, copy=False)  # pandas 3 keeps one block per column: no copy


def _fill(parts: list[np.ndarray], out: np.ndarray) -> np.ndarray:
    """Copy ``parts`` one after the other into ``out`` (converting dtype), emptying ``parts``."""
    parts.reverse()
    start = 0
    while parts:
        part = parts.pop()
        if out.dtype.kind == "M":  # days since the epoch, int32
            part = part.astype("datetime64[D]")
        out[start : start + len(part)] = part
        start += len(part)
    return out


def _orders_by_customer_day(day: np.ndarray, customer: np.ndarray) -> np.ndarray:
    """Order ids for rows sorted by ``day``: one order per (customer, day), numbered by day, then customer."""
    order = np.empty(len(day), dtype=np.int64)
    bounds = np.r_[0, np.flatnonzero(day[1:] != day[:-1]) + 1, len(day)]
    next_order = 0
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        distinct, inverse = np.unique(customer[start:stop], return_inverse=True)
        order[start:stop] = next_order + inverse
        next_order += len(distinct)
    return order


def _add_model_attributes(articles: pd.DataFrame, transactions: pd.DataFrame) -> pd.DataFrame:
    """The data model's attribute columns, derived from H&M's columns and the sales."""
    out = articles.copy()
    for attribute, column in ARTICLE_NAME_COLUMNS.items():
        out[attribute] = (
            out[column].astype("category")
            if column in out.columns
            else pd.Categorical([None] * len(out), categories=pd.Index([], dtype=str))
        )
    sold = transactions.groupby("article", sort=False)
    first_day = sold["t_dat"].min()
    median_price = sold["price"].median()
    out["launch"] = first_day.reindex(out.index).astype("datetime64[ns]")
    price = median_price.reindex(out.index)
    groups = (
        out["product_group_name"].astype(str)
        if "product_group_name" in out.columns
        else pd.Series("all", index=out.index)
    )
    rank = price.groupby(groups, sort=False).rank(pct=True)
    # a group whose articles all sell at one price has no tiers (its ranks would all read "high")
    varies = price.groupby(groups, sort=False).transform("nunique") > 1
    rank = rank.where(varies)
    tier = pd.cut(
        rank, [0.0, 1 / 3, 2 / 3, 1.0], labels=["low", "mid", "high"], include_lowest=True
    )
    out["price_tier"] = tier.astype(pd.CategoricalDtype(["low", "mid", "high"], ordered=True))
    for unknown in ("season", "material"):
        out[unknown] = pd.Categorical([None] * len(out), categories=pd.Index([], dtype=str))
    return out


# ---------------------------------------------------------------------- images


def read_images(
    folder: Path, article_ids: np.ndarray, image_size: int, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, S, S, 3) uint8, found (n,) bool)``: each JPEG fitted into S x S on white."""
    from PIL import Image

    images = np.zeros((len(article_ids), image_size, image_size, 3), dtype=np.uint8)  # (n, H, W, C)
    found = np.zeros(len(article_ids), dtype=bool)
    for i, article in enumerate(tqdm(article_ids, desc="H&M images", disable=not progress)):
        name = f"{int(article):010d}"
        file = folder / name[:3] / f"{name}.jpg"
        if not file.is_file():
            continue
        with Image.open(file) as image:
            image.draft(
                "RGB", (image_size * 2, image_size * 2)
            )  # JPEG decodes at reduced scale: fast
            image = image.convert("RGB")
            image.thumbnail((image_size, image_size))
            canvas = Image.new("RGB", (image_size, image_size), (255, 255, 255))
            canvas.paste(image, ((image_size - image.width) // 2, (image_size - image.height) // 2))
        images[i] = np.asarray(canvas)
        found[i] = True
    return images, found
