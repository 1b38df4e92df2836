"""python -m gpa_lib.bench hm on a tiny synthetic set: the child's figures, the independent count,
the reuse of the cache, and a synthetic set that has the real layout."""

from __future__ import annotations

import json

from gpa_lib.bench.__main__ import main
from gpa_lib.bench.hm import compare, ensure_synthetic
from gpa_lib.recsys.data import load_hm
from gpa_lib.recsys.data.hm_synthetic import MANIFEST, ROW_BYTES, count_transactions


def test_bench_hm_on_a_tiny_set_agrees_with_the_count(tmp_path):
    cache, results = tmp_path / "cache", tmp_path / "results"
    assert main(["hm", "--rows", "3000", "--cache", str(cache), "--results-dir", str(results)]) == 0
    document = json.loads((results / "hm_load_bench.json").read_text())
    load = document["load"]
    assert document["agrees"] and document["source"] == "synthetic"
    assert load["rows"] == document["independent_count"]["rows"] == 3000
    assert load["load_peak_rss_bytes"] >= load["rss_after_imports_bytes"] > 0
    assert document["result_bytes"] == sum(load["table_bytes"].values()) > 0
    assert document["provenance"]["wall_time_s"] == round(load["wall_time_s"], 3)
    # the set is reused while its size matches, rewritten when its manifest is gone (interrupted)
    manifest, written = ensure_synthetic(cache, 3000, 0)
    assert written is None and manifest["n_transactions"] == 3000
    (cache / MANIFEST).unlink()
    assert ensure_synthetic(cache, 3000, 0)[1] is not None


def test_synthetic_set_has_the_hm_layout_and_load_hm_reads_it(tmp_path):
    root = tmp_path / "hm"
    ensure_synthetic(root, 5000, 1)
    text = (root / "transactions_train.csv").read_text().splitlines()
    assert text[0] == "t_dat,customer_id,article_id,price,sales_channel_id"
    day, customer, article, price, channel = text[1].split(",")
    assert len(customer) == 64 and int(customer, 16) >= 0 and len(article) == 10
    assert len(text[1]) + 1 == ROW_BYTES and channel in ("1", "2") and 0 < float(price) < 1
    days = [line[:10] for line in text[1:]]
    assert days == sorted(days)  # sorted by day, as H&M's file
    counted = count_transactions(root / "transactions_train.csv", block_size=1 << 14)
    data = load_hm(root, progress=False)
    tx = data.transactions
    loaded = {
        "rows": len(tx),
        "customers": tx["customer"].nunique(),
        "articles": tx["article"].nunique(),
        "first_day": str(tx["t_dat"].iloc[0].date()),
        "last_day": str(tx["t_dat"].iloc[-1].date()),
    }
    assert compare(loaded, counted) == []
    assert compare({**loaded, "rows": 1}, counted) == ["rows: load_hm gives 1, the file has 5000"]
