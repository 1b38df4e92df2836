"""Chapter 1's studies, stored-run readers and speed words: tiny sizes, no timed assertion."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import imported_names

from gpa_lib.attention.analysis import studies
from gpa_lib.attention.analysis.benchmark import AttentionBenchConfig, phase_split
from gpa_lib.attention.analysis.measure import growth_words, ratio_range, speed_words
from gpa_lib.attention.analysis.stored import (
    official_comparison,
    stored_training_bench,
    time_share,
)
from gpa_lib.results import RESULTS_DIR

ROOT = Path(__file__).resolve().parents[1]
SIZES = studies.benchmark_sizes(heads=1, head_dim=8, pool=2, cell=4, topk=2, side=16)
MACHINE = {"flops_per_s": 1e10, "bytes_per_s": 1e10}


# ------------------------------------------------------------------------- speed words


def test_speed_words_claim_only_separated_ranges():
    fast, slow = [1.0, 1.1, 1.2], [3.0, 3.3, 3.1]
    assert ratio_range(slow, fast) == (3.0 / 1.2, 3.3 / 1.0)
    words = speed_words(fast, slow, "cpu", "sdpa")
    assert words["word"] == "faster" and words["phrase"].startswith("`cpu` is 2.5× to 3.3× faster")
    assert speed_words(slow, fast, "sdpa", "cpu")["word"] == "slower"
    overlapping = speed_words([1.0, 2.0, 1.5], [1.4, 1.8, 1.2], "a", "b")
    assert overlapping["word"] == "not separated" and "not separated" in overlapping["phrase"]
    one_call = speed_words([1.0], [9.0], "a", "b")  # a 9x gap in one call is still no range
    assert one_call["word"] == "not separated" and "1 timed call" in one_call["phrase"]


def test_growth_words_place_the_slope_or_say_they_cannot():
    tokens = [1024, 4096, 16384]
    linear = [[1.0, 1.1], [4.0, 4.2], [16.0, 17.0]]
    quadratic = [[1.0, 1.1], [16.0, 17.0], [256.0, 260.0]]
    assert growth_words(tokens, linear, "cpu")["word"] == "linear"
    assert growth_words(tokens, quadratic, "sdpa")["word"] == "quadratic"
    noisy = [[2200.0, 5.0], [110.0, 100.0], [400.0, 20.0]]  # a wild first call: no claim
    assert growth_words(tokens, noisy, "reference")["word"] == "not separated"
    assert growth_words(tokens, [[1.0], [4.0], [16.0]], "cpu")["word"] == "not separated"


def test_a_time_share_stays_in_zero_one():
    assert time_share(0.5, 2.0) == 0.25
    assert time_share(0.0363, 0.0337) == 1.0  # phase 1 timed apart, above the whole call
    with pytest.raises(ValueError, match="whole_s"):
        time_share(1.0, 0.0)


def test_phase_split_keeps_every_call_and_a_share_in_zero_one():
    q, k, v = (torch.randn(1, 1, 16, 16, 8) for _ in range(3))
    timing = phase_split(q, k, v, pool=2, cell=4, topk=2, repeats=2)
    assert len(timing["phase1_times_s"]) == 2 and len(timing["phase2_times_s"]) == 2
    assert 0 <= timing["phase1_share"] <= 1


# ------------------------------------------------------------------------ stored runs


def test_stored_training_bench_reads_the_committed_runs():
    table, values = stored_training_bench()
    assert list(table.index) == [1, 2]
    assert values["ch1_train_bench_speedup_t2"] > 1
    assert values["ch1_train_bench_speed_t2"].startswith("`cpu` is")  # committed ranges separate
    assert "AMD EPYC" in values["ch1_train_bench_where"]


def test_stored_runs_that_are_missing_read_as_missing(tmp_path):
    table, values = stored_training_bench(results_dir=tmp_path)
    assert table.empty and math.isnan(values["ch1_train_bench_speedup_t1"])
    assert values["ch1_train_bench_where"].startswith("no machine")
    line, values = official_comparison(results_dir=tmp_path)
    assert "python -m gpa_lib.bench official" in line
    assert math.isnan(values["ch1_official_max_speedup"])


def test_official_comparison_shares_are_in_zero_one(tmp_path):
    table, values = official_comparison()
    assert table["cpu phase 1 share"].between(0, 1).all()
    assert "128²" in values["ch1_official_phase1_note"]  # the stored 1.08 is named, not shown
    stored = json.loads((RESULTS_DIR / "official_gpa.json").read_text())
    for record in stored["records"]:
        record["cpu_phase1_median_s"] = record["cpu_median_s"] / 2
    (tmp_path / "official_gpa.json").write_text(json.dumps(stored))
    table, values = official_comparison(results_dir=tmp_path)
    assert (table["cpu phase 1 share"] == 0.5).all() and values["ch1_official_phase1_note"] == ""


# ---------------------------------------------------------------------------- studies


def test_model_studies_glue_what_the_chapter_cites():
    sizes = studies.benchmark_sizes(heads=4, head_dim=32, pool=4, cell=8, topk=8)
    values = studies.cost_model_study(sizes).values
    assert values["ch1_keys_per_query"] == 128 and values["ch1_flops_ratio_dense_gpa"] > 1
    high = studies.high_resolution_study(sizes)
    assert high.values["ch1_fixed_limit"] == 512.0
    assert (
        high.values["ch1_defaults_2048_dense_over_gpa"]
        < high.values["ch1_defaults_1024_dense_over_gpa"] * 2
    )  # the saving levels off
    assert isinstance(high.table, pd.DataFrame) and len(high.table) == 8


def test_measured_studies_on_a_tiny_grid():
    config = AttentionBenchConfig(
        sizes=(16, 32), heads=1, head_dim=8, pool=2, cell=4, topk=2,
        methods=("sdpa", "materialised", "auto", "reference", "phase1"), repeats=2, budget_s=1.0,
    )  # fmt: skip
    sweep = studies.resolution_sweep(config, SIZES, MACHINE)
    assert sweep.values["ch1_sweep_max_size"] == 32 and sweep.values["ch1_auto_backend"] == "cpu"
    assert sweep.values["ch1_mem_model_max_err_pct"] < 20
    assert (sweep.table.fastest_ms <= sweep.table.slowest_ms).all()
    training = studies.training_study(config, [16, 32])
    assert training.values["ch1_train_rec_over_ref"] <= 1  # recompute keeps no more weights
    assert all(training.values[k].startswith("`") for k in studies.TRAINING_SPEED_WORDS)
    split = studies.phase_split_study(SIZES, [64], repeats=1, seed=0)
    assert 0 <= split.values["ch1_phase1_time_share_pct"] <= 100
    assert split.table.setting.tolist() == ["authors' defaults", "benchmark setting"]


def test_mass_against_keys_says_about_only_within_a_factor_one_and_a_half():
    assert studies.mass_against_keys(0.12, 0.1) == "about the share of keys it sees"
    assert studies.mass_against_keys(0.5, 0.1) == "5.0× the share of keys it sees"
    assert studies.mass_against_keys(0.02, 0.1) == "0.20 of the share of keys it sees"


def test_quality_study_and_the_headline_figure():
    inputs = studies.quality_inputs(size=16, heads=1, head_dim=8, seed=0)
    quality = studies.quality_study(
        inputs, pool=2, cell=4, topk=2, topk_values=[1, 2], pool_values=[2], cell_values=[4],
        affinity="euclid",
    )  # fmt: skip
    assert 0 < quality.values["ch1_mass_random"] <= 1
    assert quality.values["ch1_pool_mass_word"] in ("more", "less")
    values = quality.values
    assert values["ch1_bias_lo"] <= values["ch1_bias_ratio"] <= values["ch1_bias_hi"]
    assert values["ch1_bias_units"] == 16  # one head, 4x4 cells of 4x4 tokens
    assert values["ch1_verdict_bias"] == studies.direction_verdict(
        values["ch1_bias_lo"] - 1, values["ch1_bias_hi"] - 1
    )
    sweep = pd.DataFrame(
        {"method": ["auto"] * 2, "tokens": [256, 1024], "model_mib": [1, 4], "measured_mib": [1, 4]}
    )
    figure = studies.figures.headline_figure(sweep, quality.data["quality"], ("auto",))
    assert len(figure.axes) == 2


# ------------------------------------------------------------------------ the layering


def test_chapters_read_stored_runs_from_the_library_not_the_bench():
    chapter_one = imported_names(ROOT / "notebooks" / "01_gpa_complexity.py")
    assert not any(name.startswith("gpa_lib.bench") for name in chapter_one)
    outside = [p for p in (ROOT / "gpa_lib").rglob("*.py") if "bench" not in p.parts]
    chapters = sorted((ROOT / "notebooks").glob("*.py"))
    for path in outside + chapters + sorted((ROOT / "tests").glob("*.py")):
        names = imported_names(path)
        assert "gpa_lib.bench.attention" not in names, path
        assert path not in chapters or "gpa_lib.bench.machine" not in names, path


def test_chapter_one_cells_are_calls():
    source = (ROOT / "notebooks" / "01_gpa_complexity.py").read_text()
    cells = [c for c in source.split("# %%")[1:] if not c.lstrip(" ").startswith("[markdown]")]
    cells = [c for c in cells if '"parameters"' not in c.splitlines()[0]]  # values, not code
    code = [[ln for ln in c.splitlines()[1:] if ln.strip()] for c in cells]
    assert max(len(lines) for lines in code) <= 20
    assert source.count("glue(") == 0  # glued through glue_all only
    assert all(len(ln) <= 100 for lines in code for ln in lines)


def test_the_result_payload_keeps_unrounded_tables():
    sizes = studies.benchmark_sizes(heads=4, head_dim=32, pool=4, cell=8, topk=8)
    high = studies.high_resolution_study(sizes)
    payload = studies.result_payload(high, studies.cost_model_study(sizes), machine=MACHINE)
    assert set(payload) == {"high_resolution_model", "machine"}
    shares = [row["phase1_share"] for row in payload["high_resolution_model"]]
    assert shares != [round(x, 3) for x in shares]  # the rounded copy is for display only
