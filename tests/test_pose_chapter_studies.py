"""The library side of chapter 3: each section's study returns its table, figure and glue values."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest

from gpa_lib.pose import studies
from gpa_lib.pose.config import TRAIN_PRESETS
from gpa_lib.results import RESULTS_DIR, read_result
from gpa_lib.stats import Interval


@pytest.fixture(scope="module")
def committed():
    return {
        name: read_result(f"pose_{name}", RESULTS_DIR) for name in ("seeds", "tradeoff", "scaling")
    }


def _plain(values: dict) -> None:
    """Every glue value is a string or a finite number, and every key belongs to chapter 3."""
    for key, value in values.items():
        assert key.startswith("ch3_"), key
        assert isinstance(value, str) or math.isfinite(value), (key, value)


def test_setting_values_follow_the_preset():
    config = TRAIN_PRESETS["gpa-smoke"]
    values = studies.setting_values(config)
    assert values["ch3_n_pixels"] == config.size**2
    assert values["ch3_keys_per_query"] == config.model.topk * config.model.pool**2


def test_studies_of_the_committed_benchmarks(committed):
    open_before = set(plt.get_fignums())  # other tests may have left figures open
    seeds = studies.seeds_study(committed["seeds"])
    accuracy = studies.accuracy_study(committed["seeds"])
    tradeoff = studies.tradeoff_study(committed["tradeoff"])
    scaling = studies.scaling_study(committed["scaling"])
    for study in (seeds, accuracy, tradeoff, scaling):
        _plain(study.values)
    assert len(seeds.table) == len(committed["seeds"]["models"])
    gap = committed["seeds"]["differences"]["gpa_minus_dense"]["ssim"]
    assert seeds.values["ch3_seed_gpa_minus_dense_ssim_lo"] == gap["ci95"][0]
    assert 0 <= accuracy.values["ch3_acc_gpa_recall_64"] <= 1
    assert accuracy.figure is not None and len(accuracy.table)
    assert tradeoff.values["ch3_to_min_topk"] <= tradeoff.values["ch3_to_max_topk"]
    assert scaling.values["ch3_sc_small"] < scaling.values["ch3_sc_large"]
    assert len(scaling.table) and scaling.figure is not None
    # detached: shown only where the chapter displays them
    assert set(plt.get_fignums()) <= open_before


def test_retrained_text_without_retrained_runs(committed):
    tradeoff = dict(committed["tradeoff"], retrained=[])
    assert studies.tradeoff_study(tradeoff).values["ch3_to_retrained"] == (
        "no retrained runs are stored"
    )


def test_chapter_studies_on_a_tiny_comparison(tmp_path):
    open_before = set(plt.get_fignums())
    overrides = dict(
        steps=2, n_train=4, n_test=2, n_val=2, batch_size=2, eval_every=1, checkpoint_every=1,
        num_threads=1, seed=0,
    )  # fmt: skip
    trained = studies.comparison_study("smoke", ["gpa"], overrides, out_dir=str(tmp_path))
    _plain(trained.values)
    assert trained.values["ch3_steps"] == 2 and trained.values["ch3_n_test"] == 2
    assert list(trained.table.index) == ["GPA copying"]
    comparison, payload = trained.data["comparison"], trained.data["payload"]
    memory = studies.memory_study(comparison, payload)
    _plain(memory.values)
    assert memory.values["ch3_mem_fused_ratio"] == pytest.approx(
        memory.values["ch3_mem_gpa_mib"] / memory.values["ch3_mem_fused_mib"]
    )
    example = studies.copy_attention_study(comparison, TRAIN_PRESETS["gpa-smoke"], n_pixels=2)
    assert len(example.figure.axes) == 3
    assert (
        studies.examples_study(TRAIN_PRESETS["gpa-smoke"], n=2, n_cols=2).figure.get_figwidth() == 7
    )
    for figure in (trained.figure, memory.figure, example.figure):
        assert figure.get_figwidth() == 7  # the book's column
    assert set(plt.get_fignums()) <= open_before


def test_verdict_words_follow_the_interval():
    assert studies.verdict({"mean": 0.015, "ci95": [0.01, 0.02]}) == "above"
    assert studies.verdict({"mean": -0.015, "ci95": [-0.02, -0.01]}) == "below"
    assert studies.verdict({"mean": 0.005, "ci95": [-0.01, 0.02]}) == "not separated from"
    assert studies.verdict(Interval(0.015, 0.01, 0.02)) == "above"


def test_run_record_reads_provenance_and_loads_only():
    payload = {
        "machine": "a label written by hand",
        "provenance": {"date": "2026-12-01T11:20:25+00:00",
                       "device": {"cpu": "AMD EPYC", "cpu_count": 2, "torch_threads": 1}},
        "runs": [{"load_before": [0.5, 1, 1], "load_after": [3.25, 2, 2]}],
    }  # fmt: skip
    text = studies.run_record(payload)
    assert text == (
        "AMD EPYC (2 cores), 1 torch thread, 2026-12-01 "
        "(1-minute load average 0.5 to 3.2 where it was recorded)"
    )
    assert "by hand" not in text
    assert studies.threads_text(2) == "2 torch threads"


def test_headline_figure_is_one_column_wide(committed):
    payload = read_result("pose_morphing", RESULTS_DIR)
    figure = studies.headline_study(committed["seeds"], payload).figure
    assert figure.get_figwidth() == 7
    assert len(figure.axes) == 2
