"""Save and load a :class:`~gpa_lib.recsys.data.sales.SalesData` as a folder of Parquet tables."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gpa_lib.recsys.data.sales import TABLES, SalesData
from gpa_lib.recsys.data.tables import images_from_table, images_to_table

FORMAT_NAME = "gpa_lib.recsys.SalesData"
FORMAT_VERSION = 1


def save(data: SalesData, path: str | os.PathLike) -> Path:
    """Write ``data`` to the folder ``path`` atomically and return it.

    The folder holds ``transactions.parquet``, ``articles.parquet``, ``customers.parquet``, optionally
    ``images.parquet`` and ``availability.parquet``, and ``manifest.json`` (format, counts, image shape, ``meta``). Everything is
    written into a temporary sibling folder that then replaces ``path`` by renames, so a reader never
    sees a half-written folder. An existing ``path`` is replaced only if it holds a manifest (it was
    written by this function); ``truth`` is not saved.
    """
    path = Path(path)
    if path.exists() and not (path / "manifest.json").is_file():
        raise ValueError(
            f"path={str(path)!r} exists and is not a SalesData folder (no manifest.json); "
            "refusing to replace it"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        for name in TABLES:
            _write_table(
                pa.Table.from_pandas(getattr(data, name), preserve_index=name != "transactions"),
                tmp / f"{name}.parquet",
            )
        if data.availability is not None:
            _write_table(
                pa.Table.from_pandas(data.availability, preserve_index=False),
                tmp / "availability.parquet",
            )
        if data.images is not None:
            _write_table(
                images_to_table(data.articles.index.to_numpy(), data.images), tmp / "images.parquet"
            )
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "n_transactions": len(data.transactions),
            "n_articles": len(data.articles),
            "n_customers": len(data.customers),
            "image_shape": None if data.images is None else list(data.images.shape[1:]),
            "availability": data.availability is not None,
            "meta": data.meta,
        }
        _write_bytes(
            tmp / "manifest.json", (json.dumps(manifest, indent=2, default=str) + "\n").encode()
        )
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.{os.getpid()}.old"
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load(path: str | os.PathLike) -> SalesData:
    """Read a folder written by :func:`save`, validating it; ``truth`` is ``None``."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise ValueError(f"path={str(path)!r} is not a SalesData folder: no manifest.json")
    manifest = _read_manifest(manifest_path)
    if manifest.get("format") != FORMAT_NAME or manifest.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{manifest_path}: format {manifest.get('format')!r} version {manifest.get('version')!r}, "
            f"expected {FORMAT_NAME!r} version {FORMAT_VERSION}"
        )
    tables = {}
    for name in TABLES:
        file = path / f"{name}.parquet"
        tables[name] = _empty_categories_as_str(_read_table(file).to_pandas())
        expected = manifest.get(f"n_{name}")
        if expected is not None and expected != len(tables[name]):
            raise ValueError(
                f"{file} has {len(tables[name])} rows, {manifest_path.name} says {expected}: "
                "the folder mixes two saves"
            )
    images = None
    if manifest.get("image_shape") is not None:
        images = images_from_table(
            _read_table(path / "images.parquet"), tables["articles"].index.to_numpy()
        )
    availability = None
    if manifest.get("availability"):
        availability = _read_table(path / "availability.parquet").to_pandas()
    return SalesData(
        tables["transactions"],
        tables["articles"],
        tables["customers"],
        images=images,
        meta=manifest.get("meta", {}),
        availability=availability,
    )


def _read_manifest(file: Path) -> dict:
    """``manifest.json`` as a dict; an empty, cut, non-UTF-8 or BOM-prefixed file, or a key given
    twice, is a ``ValueError`` naming the file (and the line where there is one)."""
    raw = file.read_bytes()
    if not raw.strip():
        raise ValueError(f"{file} is empty; the folder was not written by save(), or not fully")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ValueError(f"{file} starts with a UTF-8 byte-order mark; save() writes none")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(f"{file} line {line}: bytes that are not UTF-8 ({error.reason})") from None

    def no_duplicates(pairs: list) -> dict:
        keys = [key for key, _ in pairs]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ValueError(f"{file}: key(s) {twice} given more than once")
        return dict(pairs)

    try:
        manifest = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{file} line {error.lineno}, column {error.colno}: not valid JSON ({error.msg}); "
            "it may have been cut off"
        ) from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{file} holds a JSON {type(manifest).__name__}, not an object")
    return manifest


def _read_table(file: Path) -> pa.Table:
    """One Parquet table; a missing, empty, cut or foreign file is a ``ValueError`` naming it."""
    if not file.is_file():
        raise ValueError(f"{file} is missing")
    try:
        return pq.read_table(file)
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"{file} is not a readable Parquet file ({error})") from None


def _empty_categories_as_str(table: pd.DataFrame) -> pd.DataFrame:
    """Parquet stores no dtype for the categories of an all-missing categorical; give back ``str``."""
    for column in table.columns:
        dtype = table[column].dtype
        if isinstance(dtype, pd.CategoricalDtype) and len(dtype.categories) == 0:
            table[column] = pd.Categorical(
                table[column], categories=pd.Index([], dtype=str), ordered=dtype.ordered
            )
    return table


def _write_table(table: pa.Table, file: Path) -> None:
    pq.write_table(table, file, compression="zstd")
    _fsync(file)


def _write_bytes(file: Path, payload: bytes) -> None:
    file.write_bytes(payload)
    _fsync(file)


def _fsync(file: Path) -> None:
    fd = os.open(file, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
