"""The generic interactions format: who took what when, with optional item and user attributes.

Files under ``root`` (the data card ``data/interactions.md`` shows an example and the command):

- ``interactions.csv`` (required): ``user``, ``item``, ``time``, optionally ``quantity`` (a
  positive integer, default 1) and ``price`` (what was paid per unit, >= 0);
- ``items.csv`` (optional): ``item`` and any attribute columns;
- ``users.csv`` (optional): ``user`` and any attribute columns;
- ``schema.json`` (optional): the kind of attribute columns where the guess is wrong,
  ``{"items": {"tags": "multi"}, "users": {...}, "separator": "|"}``.

Ids are strings (an integer id is read as its text). ``time`` is an ISO date (``2024-03-01``), an
ISO date and time to the second (``2024-03-01 14:05:09``, ``T`` allowed; a time zone is converted
to UTC and dropped) or Unix seconds (all digits). Attribute kinds (:data:`ATTRIBUTE_KINDS`):
``categorical`` (one value), ``multi`` (several values joined by the separator, ``"a|b|c"``),
``numeric`` and ``text`` (free text, read as a bag of lower-case words). Without a schema the kind
is guessed per column: numeric when every value parses as a number, multi when a value holds the
separator, text when values average three or more words and are mostly distinct, else categorical.

Mapping to :class:`~gpa_lib.recsys.data.SalesData` (what every model reads):

- ``customers``: one row per user of ``users.csv`` (file order), then the users that appear only in
  the interactions (in order of first appearance); the int64 index ``customer`` is the row number
  and ``customers["user_id"]`` keeps the id, so the mapping goes both ways. Attribute columns are
  kept (no model reads them).
- ``articles``: the same for items (``articles["item_id"]``); every attribute column is kept with
  its kind in ``meta["item_attributes"]``, which Fashion DNA and LightFM read
  (:mod:`gpa_lib.recsys.models.features`); ``launch`` = the day of the first interaction. The
  fashion attributes of the data model (``category``, ``colour``, ...) are all missing unless a
  categorical column has that name. ``price_tier`` stays missing (no product groups to rank in);
  a price that varies between items becomes a numeric attribute ``median_price``.
- ``transactions``: one row per unit (a row of quantity 3 gives three rows); ``t_dat`` keeps the
  time to the second, and ``order`` groups the rows of one user with the same time, numbered in
  time order, so sequence models see a user's purchases in time order even within a day (rows with
  the same user and time keep the file's order). Without a ``price`` column the price is 0.0
  (``meta["price"] = "absent"``). ``returned`` and ``size`` are unknown (all missing).

An item or user that appears in the interactions but not in ``items.csv`` / ``users.csv`` is added
with missing attributes and counted in a warning. Every error names the file, the column and the
line.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from gpa_lib.recsys.data.csvfiles import check_header, read_small_csv
from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.data.tables import ARTICLE_ATTRIBUTES, size_categorical

INTERACTIONS_FILE = "interactions.csv"
ITEMS_FILE = "items.csv"
USERS_FILE = "users.csv"
SCHEMA_FILE = "schema.json"
ATTRIBUTE_KINDS = ("categorical", "multi", "numeric", "text")
#: Default separator of multi-valued attributes.
SEPARATOR = "|"
#: Columns of the articles table the data model sets itself (an item attribute may not take them).
RESERVED_ITEM_COLUMNS = ("item_id", "launch", "has_image", "median_price")


class MissingRowsWarning(UserWarning):
    """Items or users of the interactions that the items or users table does not list."""


def load_interactions(root: str | os.PathLike) -> SalesData:
    """Read the interactions format under ``root`` into a validated :class:`SalesData`."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root={str(root)!r} is not a folder")
    if not (root / INTERACTIONS_FILE).is_file():
        raise ValueError(
            f"{INTERACTIONS_FILE} is missing under root={str(root)!r} (see data/interactions.md)"
        )
    schema = read_schema(root / SCHEMA_FILE)
    separator = schema.get("separator", SEPARATOR)
    events = read_events(root / INTERACTIONS_FILE)
    items = read_attributes(root / ITEMS_FILE, "item") if (root / ITEMS_FILE).is_file() else None
    users = read_attributes(root / USERS_FILE, "user") if (root / USERS_FILE).is_file() else None
    return sales_from_interactions(
        events,
        items,
        users,
        item_kinds=schema.get("items", {}),
        user_kinds=schema.get("users", {}),
        separator=separator,
        meta={"source": "interactions", "root": str(root)},
    )


def read_schema(file: Path) -> dict[str, Any]:
    """``schema.json`` checked: keys ``items``/``users`` map columns to a kind; ``separator``."""
    if not file.is_file():
        return {}
    try:
        schema = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file.name} is not valid UTF-8 JSON: {error}") from None
    if not isinstance(schema, dict):
        raise ValueError(f"{file.name} must hold a JSON object, got {type(schema).__name__}")
    unknown = sorted(set(schema) - {"items", "users", "separator"})
    if unknown:
        raise ValueError(f"{file.name}: unknown key(s) {unknown}; allowed: items, users, separator")
    for table in ("items", "users"):
        kinds = schema.get(table, {})
        if not isinstance(kinds, dict):
            raise ValueError(f"{file.name}: {table!r} must map column names to kinds")
        for column, kind in kinds.items():
            if kind not in ATTRIBUTE_KINDS:
                raise ValueError(
                    f"{file.name}: {table}.{column} has kind={kind!r}, not one of {ATTRIBUTE_KINDS}"
                )
    separator = schema.get("separator", SEPARATOR)
    if not isinstance(separator, str) or len(separator) != 1 or separator in ", \t":
        raise ValueError(
            f"{file.name}: separator={separator!r} must be one character other than ',', space, tab"
        )
    return schema


def _strings(file: Path, required: tuple[str, ...]) -> tuple[pd.DataFrame, list[str]]:
    """Every column of ``file`` as stripped strings ("" = missing), after the header checks."""
    header = check_header(file, dict.fromkeys(required))
    table = read_small_csv(file, header, dict.fromkeys(header, pa.string()))
    frame = table.to_pandas()
    for column in frame.columns:
        frame[column] = frame[column].fillna("").astype(str).str.strip()
    return frame, header


def _line_of(mask: np.ndarray) -> int:
    """The file line of the first True row (line 1 is the header)."""
    return int(np.flatnonzero(mask)[0]) + 2


def read_events(file: Path) -> pd.DataFrame:
    """``interactions.csv`` as ``user``, ``item`` (str), ``time`` (datetime64[ns]), ``quantity``
    (int64), ``price`` (float64, NaN when the file has none), in file order."""
    frame, header = _strings(file, ("user", "item", "time"))
    for column in ("user", "item", "time"):
        empty = (frame[column] == "").to_numpy()
        if empty.any():
            raise ValueError(
                f"{file.name} line {_line_of(empty)}, column {column!r}: missing value"
            )
    out = pd.DataFrame({"user": frame["user"], "item": frame["item"]})
    out["time"] = parse_times(frame["time"], file)
    if "quantity" in header:
        quantity = pd.to_numeric(frame["quantity"].replace("", "1"), errors="coerce").to_numpy()
        bad = ~np.isfinite(quantity) | (quantity < 1) | (quantity != np.round(quantity))
        if bad.any():
            line = _line_of(bad)
            raise ValueError(
                f"{file.name} line {line}, column 'quantity': {frame['quantity'].iloc[line - 2]!r} "
                "is not a whole number >= 1"
            )
        out["quantity"] = quantity.astype(np.int64)
    else:
        out["quantity"] = np.ones(len(out), np.int64)
    if "price" in header:
        price = pd.to_numeric(frame["price"], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(price) | (price < 0)
        if bad.any():
            line = _line_of(bad)
            raise ValueError(
                f"{file.name} line {line}, column 'price': {frame['price'].iloc[line - 2]!r} is "
                "not a number >= 0 (leave the column out if there are no prices)"
            )
        out["price"] = price
    else:
        out["price"] = np.nan
    if not len(out):
        raise ValueError(f"{file.name} has a header but no interactions")
    return out


def parse_times(values: pd.Series, file: Path) -> np.ndarray:
    """ISO dates, ISO date-times (to the second; zones converted to UTC) or Unix seconds ->
    naive datetime64[ns]; an unparsable value is a ValueError naming the line."""
    text = values.astype(str).reset_index(drop=True)
    digits = text.str.fullmatch(r"\d+").to_numpy()
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if digits.any():
        parsed[digits] = pd.to_datetime(pd.to_numeric(text[digits]), unit="s", utc=True)
    if (~digits).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed[~digits] = pd.to_datetime(
                text[~digits], format="ISO8601", errors="coerce", utc=True
            )
    bad = parsed.isna().to_numpy()
    if bad.any():
        line = _line_of(bad)
        raise ValueError(
            f"{file.name} line {line}, column 'time': cannot parse {text.iloc[line - 2]!r} as an "
            "ISO date (2024-03-01), date and time (2024-03-01 14:05:09) or Unix seconds"
        )
    return parsed.dt.tz_localize(None).astype("datetime64[ns]").to_numpy()


def read_attributes(file: Path, key: str) -> pd.DataFrame:
    """``items.csv`` / ``users.csv``: the ``key`` column and the attribute columns as strings."""
    frame, _ = _strings(file, (key,))
    empty = (frame[key] == "").to_numpy()
    if empty.any():
        raise ValueError(f"{file.name} line {_line_of(empty)}, column {key!r}: missing id")
    duplicated = frame[key].duplicated().to_numpy()
    if duplicated.any():
        line = _line_of(duplicated)
        raise ValueError(
            f"{file.name} line {line}, column {key!r}: duplicated id {frame[key].iloc[line - 2]!r} "
            f"({int(duplicated.sum())} duplicates)"
        )
    return frame


def guess_kind(values: pd.Series, separator: str = SEPARATOR) -> str:
    """The attribute kind of a column of strings ("" = missing); see the module docstring."""
    present = values[values != ""]
    if not len(present):
        return "categorical"
    if pd.to_numeric(present, errors="coerce").notna().all():
        return "numeric"
    if present.str.contains(separator, regex=False).any():
        return "multi"
    words = present.str.split().str.len()
    if words.mean() >= 3 and present.nunique() > 0.5 * len(present):
        return "text"
    return "categorical"


def split_values(values: pd.Series, kind: str, separator: str = SEPARATOR) -> list[list[str]]:
    """The tokens of each value of a ``multi`` or ``text`` column (empty list where missing)."""
    if kind == "multi":
        return [[t.strip() for t in v.split(separator) if t.strip()] for v in values]
    if kind == "text":
        return [re.findall(r"\w+", v.lower()) for v in values]
    raise ValueError(f"kind={kind!r} has no tokens; only 'multi' and 'text' do")


def _attribute_table(
    frame: pd.DataFrame | None,
    key: str,
    ids: pd.Index,
    kinds: dict[str, str],
    separator: str,
    file_name: str,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The attribute columns of ``frame`` reindexed to ``ids`` and typed by kind."""
    if frame is None:
        unknown = sorted(kinds)
        if unknown:
            raise ValueError(f"{SCHEMA_FILE} names column(s) {unknown} but {file_name} is missing")
        return pd.DataFrame(index=pd.RangeIndex(len(ids))), {}
    columns = [c for c in frame.columns if c != key]
    unknown = sorted(set(kinds) - set(columns))
    if unknown:
        raise ValueError(
            f"{SCHEMA_FILE} names column(s) {unknown} that {file_name} lacks; it has {columns}"
        )
    aligned = frame.set_index(key).reindex(ids).fillna("")
    out, chosen = {}, {}
    for column in columns:
        values = aligned[column].astype(str)
        kind = kinds.get(column) or guess_kind(values, separator)
        chosen[column] = kind
        if kind == "numeric":
            number = pd.to_numeric(values.replace("", np.nan), errors="coerce")
            bad = (values != "").to_numpy() & number.isna().to_numpy()
            if bad.any():
                position = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"{file_name}, column {column!r} (numeric): {values.iloc[position]!r} of "
                    f"{key} {ids[position]!r} is not a number"
                )
            out[column] = number.to_numpy(dtype=np.float64)
        elif kind == "categorical":
            out[column] = pd.Categorical(values.replace("", None))
        else:  # multi or text: the raw string, tokenised where read
            out[column] = values.to_numpy(dtype=object)
    return pd.DataFrame(out, index=pd.RangeIndex(len(ids))), chosen


def _ids_in_order(listed: pd.Series | None, seen: pd.Series, what: str, file_name: str) -> pd.Index:
    """The ids of the table file, then those only in the interactions (first appearance)."""
    first = pd.Index(listed.to_numpy() if listed is not None else [], dtype=object)
    extra = pd.Index(pd.unique(seen.to_numpy()), dtype=object).difference(first, sort=False)
    if listed is not None and len(extra):
        warnings.warn(
            f"{len(extra)} {what}(s) of {INTERACTIONS_FILE} are not in {file_name}, e.g. "
            f"{list(extra[:3])}: added with missing attributes",
            MissingRowsWarning,
            stacklevel=3,
        )
    return first.append(extra)


def sales_from_interactions(
    events: pd.DataFrame,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    *,
    item_kinds: dict[str, str] | None = None,
    user_kinds: dict[str, str] | None = None,
    separator: str = SEPARATOR,
    meta: dict[str, Any] | None = None,
) -> SalesData:
    """:class:`SalesData` from the interactions tables (see the module docstring for the mapping).

    ``events``: ``user``, ``item``, ``time`` and optionally ``quantity``, ``price``; ``items`` /
    ``users``: an ``item`` / ``user`` column and attribute columns (strings, "" = missing), or
    ``None``. ``item_kinds`` / ``user_kinds`` fix the kind of some columns (others are guessed).
    """
    item_kinds, user_kinds = dict(item_kinds or {}), dict(user_kinds or {})
    events = events.copy()
    for column in ("user", "item"):
        events[column] = events[column].astype(str)
    if "quantity" not in events.columns:
        events["quantity"] = 1
    if "price" not in events.columns:
        events["price"] = np.nan
    user_ids = _ids_in_order(
        None if users is None else users["user"].astype(str), events["user"], "user", USERS_FILE
    )
    item_ids = _ids_in_order(
        None if items is None else items["item"].astype(str), events["item"], "item", ITEMS_FILE
    )
    if items is not None:
        items = items.assign(item=items["item"].astype(str))
    if users is not None:
        users = users.assign(user=users["user"].astype(str))
    article_attributes, item_kinds = _attribute_table(
        items, "item", item_ids, item_kinds, separator, ITEMS_FILE
    )
    taken = sorted(
        c
        for c, kind in item_kinds.items()
        if c in RESERVED_ITEM_COLUMNS or (c in ARTICLE_ATTRIBUTES and kind != "categorical")
    )
    if taken:
        raise ValueError(
            f"{ITEMS_FILE}: column(s) {taken} have names the data model uses itself "
            f"({RESERVED_ITEM_COLUMNS}, or a fashion attribute {ARTICLE_ATTRIBUTES} that is "
            "not categorical); rename them"
        )
    customer_attributes, user_kinds = _attribute_table(
        users, "user", user_ids, user_kinds, separator, USERS_FILE
    )

    # transactions: one row per unit, sorted by time (stable: ties keep the file's order)
    order_in_time = np.argsort(events["time"].to_numpy(), kind="stable")
    events = events.iloc[order_in_time].reset_index(drop=True)
    repeat = events["quantity"].to_numpy(dtype=np.int64)
    customer = user_ids.get_indexer(events["user"]).astype(np.int64)
    article = item_ids.get_indexer(events["item"]).astype(np.int64)
    time = events["time"].to_numpy(dtype="datetime64[ns]")
    has_price = bool(events["price"].notna().any())
    price = events["price"].to_numpy(dtype=np.float64) if has_price else np.zeros(len(events))
    # one order per (user, exact time), numbered in time order
    order = (
        pd.DataFrame({"t": time, "c": customer}).groupby(["t", "c"], sort=True).ngroup().to_numpy()
    )
    n = int(repeat.sum())
    transactions = pd.DataFrame(
        {
            "t_dat": np.repeat(time, repeat),
            "customer": np.repeat(customer, repeat),
            "article": np.repeat(article, repeat),
            "price": np.repeat(price, repeat),
            "order": np.repeat(order.astype(np.int64), repeat),
            "returned": pd.arrays.BooleanArray(np.zeros(n, bool), np.ones(n, bool)),
            "size": size_categorical([None] * n),
        }
    )

    articles = article_attributes
    articles.insert(0, "item_id", item_ids.to_numpy(dtype=object).astype(str))
    first_sale = pd.Series(time, index=article).groupby(level=0).min().reindex(range(len(item_ids)))
    articles["launch"] = first_sale.dt.normalize().to_numpy(dtype="datetime64[ns]")
    if has_price:
        median = pd.Series(price).groupby(article).median().reindex(range(len(item_ids)))
        if median.nunique() > 1:  # a constant price says nothing about an item
            articles["median_price"] = median.to_numpy(dtype=np.float64)
            item_kinds["median_price"] = "numeric"
    for column in ARTICLE_ATTRIBUTES:
        if column not in articles.columns:
            articles[column] = pd.Categorical(
                [None] * len(articles), categories=pd.Index([], dtype=str)
            )
    articles.index = pd.Index(np.arange(len(item_ids), dtype=np.int64), name="article")

    customers = customer_attributes
    customers.insert(0, "user_id", user_ids.to_numpy(dtype=object).astype(str))
    customers.index = pd.Index(np.arange(len(user_ids), dtype=np.int64), name="customer")
    meta = {
        **(meta or {}),
        "item_attributes": item_kinds,
        "user_attributes": user_kinds,
        "separator": separator,
        "price": "given" if has_price else "absent",
        "time_resolution": "second",
    }
    return SalesData(transactions, articles, customers, meta=meta)
