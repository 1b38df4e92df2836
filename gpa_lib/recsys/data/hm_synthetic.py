"""An H&M-format data set of any size, written in bounded memory, and an independent count of a file.

:func:`write_synthetic_hm` writes ``transactions_train.csv``, ``articles.csv`` and ``customers.csv``
with the real column layout (64-character hex ``customer_id``, 10-digit zero-padded ``article_id``,
ISO days sorted in time) and crude distributions: customers and articles drawn with a power-law skew,
one price per article with occasional discounts, 70% online. The default sizes are the real ones.
Transactions are written in chunks of fixed-width rows assembled as byte arrays, so memory stays at a
few hundred MB whatever the size and a full-size set takes about a minute.

:func:`count_transactions` reads a ``transactions_train.csv`` independently of
:func:`~gpa_lib.recsys.data.hm.load_hm` (every column as text, no mapping through ``customers.csv``):
rows, distinct customers and articles, first and last day. The H&M benchmark checks the loader
against it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from gpa_lib.results import atomic_write_json

#: The sizes of the real Kaggle files.
HM_TRANSACTIONS = 31_788_324
HM_CUSTOMERS = 1_371_980
HM_ARTICLES = 105_542
HM_FIRST_DAY = dt.date(2018, 9, 20)
HM_LAST_DAY = dt.date(2020, 9, 22)

TRANSACTION_HEADER = b"t_dat,customer_id,article_id,price,sales_channel_id\n"
CUSTOMER_HEADER = "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code"
ARTICLE_COLUMNS = (
    "article_id,product_code,prod_name,product_type_no,product_type_name,product_group_name,"
    "graphical_appearance_no,graphical_appearance_name,colour_group_code,colour_group_name,"
    "perceived_colour_value_id,perceived_colour_value_name,perceived_colour_master_id,"
    "perceived_colour_master_name,department_no,department_name,index_code,index_name,"
    "index_group_no,index_group_name,section_no,section_name,garment_group_no,garment_group_name,"
    "detail_desc"
)
_TYPES = (  # (product_type_no, product_type_name, product_group_name)
    (253, "Vest top", "Garment Upper body"),
    (255, "T-shirt", "Garment Upper body"),
    (252, "Sweater", "Garment Upper body"),
    (272, "Trousers", "Garment Lower body"),
    (274, "Shorts", "Garment Lower body"),
    (265, "Dress", "Garment Full body"),
    (306, "Bra", "Underwear"),
    (304, "Underwear Tights", "Socks & Tights"),
    (87, "Boots", "Shoes"),
    (66, "Hat/beanie", "Accessories"),
)
_PATTERNS = ((1010016, "Solid"), (1010017, "Stripe"), (1010001, "All over pattern"))
_COLOURS = ((9, "Black"), (10, "White"), (73, "Dark Blue"), (13, "Beige"), (6, "Light Grey"))
_INDEXES = (("A", "Ladieswear", 1), ("D", "Divided", 2), ("F", "Menswear", 3), ("H", "Children", 4))
#: Bytes of one transaction row: ``YYYY-MM-DD,<64 hex>,<10 digits>,0.dddddd,c\n``.
ROW_BYTES = 10 + 1 + 64 + 1 + 10 + 1 + 8 + 1 + 1 + 1
MANIFEST = "synthetic.json"


def write_synthetic_hm(
    root: str | os.PathLike,
    n_transactions: int = HM_TRANSACTIONS,
    *,
    n_customers: int = HM_CUSTOMERS,
    n_articles: int = HM_ARTICLES,
    seed: int = 0,
    chunk_rows: int = 1 << 20,
) -> Path:
    """Write the three H&M files under ``root`` (created) and a ``synthetic.json`` saying how.

    ``n_customers`` and ``n_articles`` are capped at ``n_transactions`` (a small set stays small).
    The files are written under temporary names and renamed, ``synthetic.json`` last, so an
    interrupted run leaves no set that looks complete. Returns ``root``.
    """
    if n_transactions < 1:
        raise ValueError(f"n_transactions={n_transactions} must be at least 1")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows={chunk_rows} must be at least 1")
    n_customers = max(1, min(n_customers, n_transactions))
    n_articles = max(1, min(n_articles, n_transactions))
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    hex_ids = _hex_ids(rng, n_customers)  # (n_customers, 64) uint8
    article_ids = _article_ids(rng, n_articles)  # sorted int64
    base_price = rng.integers(1_000, 120_000, size=n_articles)  # millionths, H&M's scale
    _write_customers(root / "customers.csv", hex_ids, rng)
    _write_articles(root / "articles.csv", article_ids, rng)
    _write_transactions(
        root / "transactions_train.csv",
        n_transactions,
        hex_ids,
        article_ids,
        base_price,
        rng,
        chunk_rows,
    )
    atomic_write_json(
        root / MANIFEST,
        {
            "what": "synthetic H&M-format data (gpa_lib.recsys.data.hm_synthetic)",
            "n_transactions": n_transactions,
            "n_customers": n_customers,
            "n_articles": n_articles,
            "seed": seed,
            "transactions_bytes": (root / "transactions_train.csv").stat().st_size,
        },
    )
    return root


def synthetic_manifest(root: str | os.PathLike) -> dict[str, Any] | None:
    """What :func:`write_synthetic_hm` wrote under ``root``, or ``None`` if no complete set is there."""
    import json

    file = Path(root) / MANIFEST
    return json.loads(file.read_text()) if file.is_file() else None


# ---------------------------------------------------------------------- the three files

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct random 64-character lowercase hex ids as a (n, 64) uint8 array."""
    while True:
        raw = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
        if len(np.unique(raw.view("V32").ravel())) == n:  # a collision is ~impossible; be sure
            break
    out = np.empty((n, 64), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    return out


def _article_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` sorted article ids like H&M's: product code (6-7 digits) x 1000 + a 3-digit variant."""
    products = np.unique(rng.integers(108_775, 959_461, size=n + n // 2))
    codes = np.sort(rng.choice(products, size=n, replace=True))
    same = np.r_[False, codes[1:] == codes[:-1]]
    run_start = np.maximum.accumulate(np.where(~same, np.arange(n), 0))
    variant = np.arange(n) - run_start + 1  # 001, 002, ... within a product
    return codes.astype(np.int64) * 1000 + variant


def _write_customers(file: Path, hex_ids: np.ndarray, rng: np.random.Generator) -> None:
    n = len(hex_ids)
    ids = hex_ids.view("S64").ravel()
    fn = np.where(rng.random(n) < 0.35, 1.0, np.nan)
    age = np.where(rng.random(n) < 0.99, rng.integers(16, 90, size=n), np.nan)
    status = np.array(["ACTIVE", "PRE-CREATE", "LEFT CLUB"])[
        rng.choice(3, size=n, p=[0.93, 0.068, 0.002])
    ]
    news = np.array(["NONE", "Regularly", "Monthly"])[rng.choice(3, size=n, p=[0.64, 0.355, 0.005])]
    postal = ids[rng.integers(0, n, size=n)]  # H&M's postal codes are hashed like the ids
    table = pa.table(
        {
            "customer_id": pa.array(ids.astype(str)),
            "FN": pa.array(fn, from_pandas=True),
            "Active": pa.array(fn, from_pandas=True),
            "club_member_status": pa.array(status),
            "fashion_news_frequency": pa.array(news),
            "age": pa.array(age, from_pandas=True).cast(pa.int64()),
            "postal_code": pa.array(postal.astype(str)),
        }
    )
    tmp = file.with_name(f".{file.name}.tmp")
    with open(tmp, "wb") as handle:  # pyarrow would quote the header; H&M's is bare
        handle.write((CUSTOMER_HEADER + "\n").encode())
        pacsv.write_csv(
            table, handle, pacsv.WriteOptions(include_header=False, quoting_style="none")
        )
    os.replace(tmp, file)


def _write_articles(file: Path, article_ids: np.ndarray, rng: np.random.Generator) -> None:
    lines = [ARTICLE_COLUMNS]
    for article in article_ids.tolist():
        type_no, type_name, group = _TYPES[rng.integers(len(_TYPES))]
        pattern_no, pattern = _PATTERNS[rng.integers(len(_PATTERNS))]
        colour_no, colour = _COLOURS[rng.integers(len(_COLOURS))]
        index_code, index_name, index_group = _INDEXES[rng.integers(len(_INDEXES))]
        lines.append(
            f"{article:010d},{article // 1000:07d},Article {article},{type_no},{type_name},{group},"
            f"{pattern_no},{pattern},{colour_no:02d},{colour},4,Dark,5,{colour},1676,Jersey Basic,"
            f"{index_code},{index_name},{index_group},{index_name},16,Basics,1002,Jersey Basic,"
            f'"A {colour.lower()} {type_name.lower()}, synthetic."'
        )
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, file)


def _write_transactions(
    file: Path,
    n_rows: int,
    hex_ids: np.ndarray,
    article_ids: np.ndarray,
    base_price: np.ndarray,
    rng: np.random.Generator,
    chunk_rows: int,
) -> None:
    n_days = (HM_LAST_DAY - HM_FIRST_DAY).days + 1
    days = np.frombuffer(
        "".join((HM_FIRST_DAY + dt.timedelta(days=d)).isoformat() for d in range(n_days)).encode(),
        dtype=np.uint8,
    ).reshape(n_days, 10)
    article_text = np.frombuffer(
        "".join(f"{a:010d}" for a in article_ids.tolist()).encode(), dtype=np.uint8
    ).reshape(-1, 10)
    # customers and articles drawn with a power-law skew (a few are very popular); at the real
    # size nearly all of them sell, as on H&M
    tmp = file.with_name(f".{file.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(TRANSACTION_HEADER)
        for start in range(0, n_rows, chunk_rows):
            stop = min(start + chunk_rows, n_rows)
            n = stop - start
            row = np.arange(start, stop)
            customer = (len(hex_ids) * rng.random(n) ** 2).astype(np.int64)
            article = (len(article_ids) * rng.random(n) ** 1.5).astype(np.int64)
            price = base_price[article] * np.where(rng.random(n) < 0.2, 0.5, 1.0)
            price = np.clip(price.astype(np.int64), 1, 999_999)
            buf = np.empty((n, ROW_BYTES), dtype=np.uint8)  # (rows, bytes) fixed-width text
            buf[:, 0:10] = days[row * n_days // n_rows]
            buf[:, 10] = ord(",")
            buf[:, 11:75] = hex_ids[customer]
            buf[:, 75] = ord(",")
            buf[:, 76:86] = article_text[article]
            buf[:, 86:89] = np.frombuffer(b",0.", dtype=np.uint8)
            for place in range(6):  # six decimals, most significant first
                buf[:, 89 + place] = ord("0") + (price // 10 ** (5 - place)) % 10
            buf[:, 95] = ord(",")
            buf[:, 96] = np.where(rng.random(n) < 0.7, ord("2"), ord("1"))
            buf[:, 97] = ord("\n")
            handle.write(buf.tobytes())
    os.replace(tmp, file)


# ---------------------------------------------------------------------- independent count


def count_transactions(file: str | os.PathLike, block_size: int = 16 << 20) -> dict[str, Any]:
    """Rows, distinct customers and articles, first and last day of a ``transactions_train.csv``.

    Independent of the loader: every column is read as text (pyarrow's streaming reader with no type
    inference), ids are counted as strings and days compared as ISO strings; distinct values are
    merged in C++ (``pyarrow.compute.unique``) every few blocks, so memory is the distinct ids plus
    one block.
    """
    columns = ["t_dat", "customer_id", "article_id"]
    reader = pacsv.open_csv(
        file,
        read_options=pacsv.ReadOptions(block_size=block_size),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.string()), include_columns=columns
        ),
    )
    rows = 0
    first, last = None, None
    seen: dict[str, list[pa.Array]] = {"customer_id": [], "article_id": []}
    for batch in reader:
        rows += batch.num_rows
        if not batch.num_rows:
            continue
        span = pc.min_max(batch.column("t_dat"))
        low, high = span["min"].as_py(), span["max"].as_py()
        first = low if first is None else min(first, low)
        last = high if last is None else max(last, high)
        for column, parts in seen.items():
            parts.append(pc.unique(batch.column(column)))
            if len(parts) >= 8:
                parts[:] = [pc.unique(pa.concat_arrays(parts))]
    distinct = {
        column: len(pc.unique(pa.concat_arrays(parts))) if parts else 0
        for column, parts in seen.items()
    }
    return {
        "rows": rows,
        "customers": distinct["customer_id"],
        "articles": distinct["article_id"],
        "first_day": first,
        "last_day": last,
    }
