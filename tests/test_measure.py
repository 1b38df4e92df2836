"""The one home of measurement (:mod:`gpa_lib.measure`) on the CPU: the timer's warm-up, samples and
budget, peak memory, and the ceilings it measures (the same code times a GPU with CUDA events)."""

from __future__ import annotations

import time

import pytest
import torch

from gpa_lib.measure import measure_ceilings, median_time, peak_memory


def test_the_timer_takes_samples_of_several_calls_after_a_warm_up():
    calls = []
    timing = median_time(lambda: calls.append(1), warmup=2, repeats=5, sample_s=0.02, seconds=0.01)
    assert timing["repeats"] >= 5 and timing["calls_per_sample"] >= 1
    assert len(calls) == 2 + timing["repeats"] * timing["calls_per_sample"]
    assert 0 < timing["min_s"] <= timing["median_s"] and timing["timer"] == "perf_counter"
    assert timing["first_call_s"] > 0 and len(timing["times_s"]) == timing["repeats"]


def test_the_timer_fits_the_repeats_to_the_budget_and_stops_a_slow_warm_up():
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.02)

    timing = median_time(slow, warmup=5, repeats=20, max_call_s=0.01, budget_s=0.05, min_repeats=3)
    assert len(calls) == 2 + timing["repeats"]  # the second slow call ended the warm-up
    assert timing["repeats"] == 3  # 0.05 s holds fewer than 3 calls of 20 ms: the floor of 3
    fast = median_time(lambda: None, warmup=1, repeats=7, budget_s=1.0)
    assert fast["repeats"] == 7  # within the budget, every repeat


def test_ceilings_on_the_cpu_count_the_right_work():
    ceilings = measure_ceilings("cpu", seconds=0.05, matmul_n=64, copy_bytes=2**16)
    bf16 = ceilings["bf16_matmul"]
    assert bf16["flops_per_call"] == 2 * 64**3 and bf16["dtype"] == "bfloat16"
    assert ceilings["copy"]["bytes_moved_per_call"] == 2 * 2**16  # read + written
    assert ceilings["bf16_flops_per_s"] == bf16["flops_per_s"] > 0
    assert ceilings["bytes_per_s"] == ceilings["copy"]["bytes_per_s"] > 0
    assert ceilings["fp32_matmul"]["dtype"] == "float32"


def test_peak_memory_counts_the_output_and_names_a_bad_device():
    _, peak = peak_memory(lambda: torch.empty(2**20, dtype=torch.float32))
    assert peak >= 4 * 2**20  # the 4 MiB output is allocated during the call
    with pytest.raises(ValueError, match="device=meta is not supported"):
        peak_memory(lambda: None, "meta")


def test_a_time_only_warm_up_and_no_warm_up():
    calls = []
    timing = median_time(lambda: calls.append(1), warmup=1, warmup_s=0.01, repeats=2)
    assert len(calls) > 3 and timing["repeats"] == 2  # warm-up went on for 10 ms
    cold = median_time(lambda: None, warmup=0, repeats=2, budget_s=0.0)
    assert cold["first_call_s"] is None and cold["repeats"] == 2  # no warm-up: no budget cut


def test_time_by_kernel_on_the_cpu_names_the_operators_and_sums_to_one():
    from gpa_lib.measure import time_by_kernel

    a = torch.randn(256, 256)

    def work():
        return (a @ a).exp().sum()

    rows = time_by_kernel(work, "cpu", calls=2)
    names = [row["name"] for row in rows]
    assert any("mm" in name for name in names) and any("exp" in name for name in names)
    assert sum(row["share"] for row in rows) == pytest.approx(1.0)
    assert [r["s_per_call"] for r in rows] == sorted((r["s_per_call"] for r in rows), reverse=True)
    few = time_by_kernel(work, "cpu", calls=1, top=1)
    assert len(few) == 2 and few[-1]["name"] == "(others)"
    with pytest.raises(ValueError, match="calls=0"):
        time_by_kernel(work, calls=0)
