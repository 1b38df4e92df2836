"""Hostile files: the H&M loader and the SalesData Parquet folder on empty, cut, mis-delimited, BOM,
non-UTF-8 and doubled-header input. Each case is one ``ValueError`` naming the file (and the line
where there is one), and a failed save leaves nothing half-written."""

from __future__ import annotations

import json

import pytest
from test_recsys_data import ARTICLE_HEADER, ARTICLE_ROWS, hex_id, tiny_frames, write_hm

import gpa_lib.recsys.data.parquet as parquet
from gpa_lib.recsys.data import SalesData, load, load_hm, save

HM_FILES = ("transactions_train.csv", "customers.csv", "articles.csv")


def hm_error(root, match):
    """The one ValueError of ``load_hm(root)``: a plain ValueError (not a decode error) matching."""
    with pytest.raises(ValueError, match=match) as info:
        load_hm(root, progress=False, block_size=300)
    assert type(info.value) is ValueError, type(info.value)
    return info.value


def lines(root, name):
    return (root / name).read_bytes().splitlines(keepends=True)


# ---------------------------------------------------------------------- H&M CSV files


@pytest.mark.parametrize("name", HM_FILES)
def test_empty_hm_file(tmp_path, name):
    root = write_hm(tmp_path / "hm")
    (root / name).write_bytes(b"")
    hm_error(root, rf"^{name} is empty \(no header line\)")


@pytest.mark.parametrize(
    "name, line, fields", [("transactions_train.csv", 13, 2), ("customers.csv", 6, 1)]
)
def test_file_cut_in_the_middle_of_a_row(tmp_path, name, line, fields):
    root = write_hm(tmp_path / "hm")
    raw = (root / name).read_bytes()
    (root / name).write_bytes(raw[: raw.rindex(b"\n", 0, -1) + 40])  # into the last row's id
    hm_error(root, rf"^{name} line {line}: expected \d+ fields, got {fields}")


def test_wrong_delimiter(tmp_path):
    root = write_hm(tmp_path / "hm")
    name = "transactions_train.csv"
    (root / name).write_bytes((root / name).read_bytes().replace(b",", b";"))
    hm_error(root, rf"^{name} line 1: the header is one field holding ';'")


@pytest.mark.parametrize("name", HM_FILES)
def test_utf8_byte_order_mark(tmp_path, name):
    root = write_hm(tmp_path / "hm")
    (root / name).write_bytes(b"\xef\xbb\xbf" + (root / name).read_bytes())
    hm_error(root, rf"^{name} line 1 starts with a UTF-8 byte-order mark")


def test_bytes_that_are_not_utf8_in_articles(tmp_path):
    rows = list(ARTICLE_ROWS)
    rows[1] = rows[1].replace("Strap top", "Strap t\udcffp")  # a lone \xff byte once encoded
    root = write_hm(tmp_path / "hm")
    text = "\n".join([ARTICLE_HEADER, *rows]) + "\n"
    (root / "articles.csv").write_bytes(text.encode("utf-8", "surrogateescape"))
    hm_error(root, r"^articles.csv line 3: bytes that are not UTF-8")


def test_bytes_that_are_not_utf8_in_transactions(tmp_path):
    root = write_hm(tmp_path / "hm")
    rows = lines(root, "transactions_train.csv")
    rows[7] = rows[7].replace(hex_id(3).encode()[:4], b"\xe9\x00\xff!")
    (root / "transactions_train.csv").write_bytes(b"".join(rows))
    hm_error(root, r"^transactions_train.csv line 8: bytes that are not UTF-8")


def test_bytes_that_are_not_utf8_in_the_header(tmp_path):
    root = write_hm(tmp_path / "hm")
    rows = lines(root, "customers.csv")
    rows[0] = rows[0].replace(b"age", b"\xe2ge")
    (root / "customers.csv").write_bytes(b"".join(rows))
    hm_error(root, r"^customers.csv line 1: bytes that are not UTF-8")


@pytest.mark.parametrize("name, line", [(n, 4) for n in HM_FILES])
def test_header_repeated_inside_the_file(tmp_path, name, line):
    root = write_hm(tmp_path / "hm")
    rows = lines(root, name)
    rows.insert(line - 1, rows[0])  # two files joined with `cat`
    (root / name).write_bytes(b"".join(rows))
    hm_error(root, rf"^{name} line {line} repeats the header")


def test_header_naming_a_column_twice(tmp_path):
    root = write_hm(tmp_path / "hm")
    rows = lines(root, "transactions_train.csv")
    rows[0] = rows[0].replace(b"price,", b"price,price,")
    (root / "transactions_train.csv").write_bytes(b"".join(rows))
    hm_error(root, r"^transactions_train.csv line 1: the header names column\(s\) \['price'\]")


# ---------------------------------------------------------------------- the Parquet folder


@pytest.fixture
def saved(tmp_path):
    return save(SalesData.from_frames(*tiny_frames(), meta={"source": "test"}), tmp_path / "store")


def folder_error(folder, match):
    with pytest.raises(ValueError, match=match) as info:
        load(folder)
    assert type(info.value) is ValueError, type(info.value)
    return info.value


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda raw: b"", r"manifest.json is empty"),
        (lambda raw: raw[: len(raw) // 2], r"manifest.json line \d+, column \d+: not valid JSON"),
        (lambda raw: raw.replace(b",\n", b";\n"), r"manifest.json line 2, column \d+: not valid"),
        (lambda raw: b"\xef\xbb\xbf" + raw, r"manifest.json starts with a UTF-8 byte-order mark"),
        (lambda raw: raw.replace(b'"test"', b'"t\xffst"'), r"manifest.json line \d+: bytes that"),
        (
            lambda raw: raw.replace(b'"version": 1,', b'"version": 1,\n  "version": 1,'),
            r"manifest.json: key\(s\) \['version'\] given more than once",
        ),
    ],
    ids=["empty", "cut", "delimiter", "bom", "not-utf8", "duplicated-key"],
)
def test_hostile_manifest(saved, change, match):
    file = saved / "manifest.json"
    file.write_bytes(change(file.read_bytes()))
    error = folder_error(saved, match)
    assert str(saved / "manifest.json") in str(error)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda raw: b"", r"transactions.parquet is not a readable Parquet file"),
        (lambda raw: raw[: len(raw) // 2], r"transactions.parquet is not a readable Parquet file"),
        (lambda raw: b"t_dat,customer\n2024-01-01,10\n", r"transactions.parquet is not a readable"),
    ],
    ids=["empty", "cut", "csv-renamed"],
)
def test_hostile_parquet_table(saved, change, match):
    file = saved / "transactions.parquet"
    file.write_bytes(change(file.read_bytes()))
    folder_error(saved, match)


def test_tables_of_two_saves_mixed(saved, tmp_path):
    other = save(SalesData.from_frames(*tiny_frames()).window(end="2024-01-02"), tmp_path / "other")
    (saved / "transactions.parquet").write_bytes((other / "transactions.parquet").read_bytes())
    folder_error(saved, r"transactions.parquet has 2 rows, manifest.json says 4")


def test_a_failed_save_leaves_the_old_folder_whole_and_no_temporary(saved, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    calls = []

    def write_then_fail(table, file):
        calls.append(file.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")  # the disk fills during the second table
        original(table, file)

    original = parquet._write_table
    monkeypatch.setattr(parquet, "_write_table", write_then_fail)
    smaller = SalesData.from_frames(*tiny_frames()).window(end="2024-01-02")
    with pytest.raises(OSError, match="No space left"):
        save(smaller, saved)
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["store"]  # no .store.*.tmp left
    calls.clear()
    with pytest.raises(OSError):
        save(smaller, saved.parent / "fresh")
    assert sorted(p.name for p in saved.parent.iterdir()) == ["store"]  # nothing half-written
    assert len(load(saved).transactions) == 4
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["n_transactions"] == 4
