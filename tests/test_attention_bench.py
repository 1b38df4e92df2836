"""The attention benchmark script on a tiny grid: records, summary and the JSON it writes."""

from __future__ import annotations

import json

from gpa_lib.bench.__main__ import main


def test_attention_bench_writes_json_with_provenance(tmp_path, capsys):
    rc = main(
        [
            "attention",
            "--sizes",
            "16",
            "--methods",
            "sdpa",
            "materialised",
            "auto",
            "reference",
            "phase1",
            "--repeats",
            "1",
            "--results-dir",
            str(tmp_path),
        ]
    )
    assert rc == 0
    document = json.loads((tmp_path / "attention_bench_cpu.json").read_text())
    assert document["provenance"]["profile"] == "full"
    records = {r["method"]: r for r in document["records"]}
    assert set(records) == {"sdpa", "materialised", "auto", "reference", "phase1"}
    assert records["auto"]["backend"] == "reference"  # 256 queries: too small to compile flex
    for record in records.values():
        assert record["median_s"] > 0 and record["peak_bytes"] > 0
    assert (
        abs(records["reference"]["peak_bytes"] / records["reference"]["model_peak_bytes"] - 1) < 0.2
    )
    assert document["summary"]["size"] == 128 and "speedup_auto_vs_sdpa" not in document["summary"]
    assert "16^2 reference" in capsys.readouterr().out
