"""Reading CSV files (H&M's and the interactions format's) with errors that name the file, the line and the column.

:func:`check_header` refuses, before any parsing, what would otherwise fail later with a vaguer
message: an empty file, a UTF-8 byte-order mark, bytes that are not UTF-8, another delimiter, a
column named twice or missing. :func:`locate_bad_row` turns pyarrow's error (which names the column
but not the row) into one naming the first bad line, re-reading the file with the csv module; it
runs only on that error path.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv


def check_header(file: Path, required: dict[str, Any]) -> list[str]:
    """The header of ``file``, refusing what would otherwise fail later with a vaguer message:
    an empty file, a byte-order mark, bytes that are not UTF-8, another delimiter, a column named
    twice, a required column missing."""
    with open(file, "rb") as handle:
        first = handle.readline()
    if not first.strip():
        raise ValueError(
            f"{file.name} is empty (no header line); expected a header line of column names"
        )
    if first.startswith(b"\xef\xbb\xbf"):
        raise ValueError(
            f"{file.name} line 1 starts with a UTF-8 byte-order mark; the loaders read "
            "UTF-8 without one (re-save it as UTF-8 without BOM)"
        )
    text = _decode_line(file, first, 1)
    header = next(csv.reader([text]), [])
    missing = [c for c in required if c not in header]
    if missing and len(header) == 1:
        delimiter = next((d for d in (";", "\t", "|") if d in header[0]), None)
        if delimiter is not None:
            raise ValueError(
                f"{file.name} line 1: the header is one field holding {delimiter!r}; the file "
                f"seems delimited by {delimiter!r}, the loaders read ','"
            )
    if missing:
        raise ValueError(f"{file.name} lacks column(s) {missing}; its header has {header}")
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise ValueError(f"{file.name} line 1: the header names column(s) {twice} more than once")
    return header


def _decode_line(file: Path, raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{file.name} line {line}: bytes that are not UTF-8 "
            f"({raw[error.start : error.start + 4]!r} at byte {error.start} of the line)"
        ) from None


def _text_lines(file: Path):
    """The lines of ``file`` decoded one at a time, so that bad bytes are named by line."""
    with open(file, "rb") as handle:
        for line, raw in enumerate(handle, start=1):
            yield _decode_line(file, raw, line)


def read_small_csv(file: Path, header: list[str], types: dict[str, Any]) -> pa.Table:
    types = {c: t for c, t in types.items() if c in header}
    try:
        return pacsv.read_csv(file, convert_options=pacsv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as error:
        raise locate_bad_row(file, header, types, 0, error) from error


_PARSERS = {
    pa.date32(): dt.date.fromisoformat,
    pa.int64(): int,
    pa.int8(): int,
    pa.float64(): float,
}


def locate_bad_row(
    file: Path, header: list[str], types: dict[str, Any], rows_done: int, error: Exception
) -> ValueError:
    """A ``ValueError`` naming the first unparsable line at or after data row ``rows_done``.

    pyarrow reports the column but not the row, so the file is re-read with the csv module from the
    failing block on (only on this error path), decoding line by line so bad bytes get a line too.
    """
    reader = csv.reader(_text_lines(file))
    next(reader, None)  # the header
    for row in itertools.islice(reader, rows_done, None):
        line = reader.line_num
        if row == header:
            return ValueError(
                f"{file.name} line {line} repeats the header (two files joined into one?)"
            )
        if len(row) != len(header):
            return ValueError(
                f"{file.name} line {line}: expected {len(header)} fields, got {len(row)}"
            )
        for column, value in zip(header, row, strict=True):
            parse = _PARSERS.get(types.get(column))
            if parse is None or value == "":
                continue
            try:
                parse(value)
            except ValueError:
                return ValueError(
                    f"{file.name} line {line}, column {column!r}: cannot parse {value!r} "
                    f"as {types[column]}"
                )
    return ValueError(f"{file.name}: unparsable content after data row {rows_done}: {error}")
