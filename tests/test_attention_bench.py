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
    assert records["auto"]["backend"] == "cpu"  # the fused CPU kernel; flex never on the CPU
    for record in records.values():
        assert record["median_s"] > 0 and record["peak_bytes"] > 0
    assert (
        abs(records["reference"]["peak_bytes"] / records["reference"]["model_peak_bytes"] - 1) < 0.2
    )
    assert document["summary"]["size"] == 128 and "speedup_auto_vs_sdpa" not in document["summary"]
    assert "16^2 reference" in capsys.readouterr().out


def test_training_bench_measures_steps_with_gradients(tmp_path, capsys):
    rc = main(
        [
            "attention",
            "--training",
            "--sizes",
            "32",
            "--repeats",
            "1",
            "--results-dir",
            str(tmp_path),
        ]
    )
    assert rc == 0
    document = json.loads((tmp_path / "attention_bench_cpu_training.json").read_text())
    assert document["mode"].startswith("training step")
    records = {r["method"]: r for r in document["records"]}
    assert set(records) == {"sdpa", "materialised", "auto", "reference", "recompute"}
    assert records["auto"]["backend"] == "cpu"  # both passes in the fused CPU kernel
    for record in records.values():
        assert record["median_s"] > 0 and "model_peak_bytes" not in record
    # Gradients of q, k and v are allocated by every step: three inputs' worth at least.
    q_bytes = 4 * 32 * 32 * 32 * 4  # (h, H, W, D) float32 of the training preset
    assert all(r["peak_bytes"] >= 3 * q_bytes for r in records.values())
    # The recompute backend keeps no attention weights: less than the reference at 32^2 already.
    assert records["recompute"]["peak_bytes"] < records["reference"]["peak_bytes"]
    assert records["materialised"]["peak_bytes"] > records["sdpa"]["peak_bytes"]


def test_training_summary_compares_backends_at_the_target_size():
    from gpa_lib.attention.analysis.benchmark import ATTENTION_BENCH_PRESETS, summarise_training

    cfg = ATTENTION_BENCH_PRESETS["training"]
    records = [
        {"size": 128, "method": m, "median_s": s, "peak_bytes": b}
        for m, s, b in (("sdpa", 2.0, 100), ("materialised", 4.0, 1000), ("recompute", 1.0, 50))
    ]
    summary = summarise_training(records, cfg)
    assert summary["memory_ratio_recompute_vs_sdpa"] == 0.5
    assert summary["speedup_recompute_vs_materialised"] == 4.0
    assert "memory_ratio_reference_vs_sdpa" not in summary
