"""The kernel benchmark's runner on any machine: order, time budget, partial writes, phase 1, floors
(:mod:`gpa_lib.attention.analysis.kernel_bench`, and its command line ``gpa_lib.bench.kernel``).

The measurements themselves need a GPU; here a stand-in for ``bench_one`` records what is asked.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from gpa_lib.attention.analysis import kernel_bench
from gpa_lib.attention.analysis.kernel_results import format_table
from gpa_lib.attention.problem import check_inputs
from gpa_lib.attention.selection import select_key_blocks_flat
from gpa_lib.bench import kernel as kernel_cli


def fake_measure(asked):
    def measure(method, pass_, cfg, side, selection=None):
        asked.append((method, side, pass_))
        reason = kernel_bench.skip_reason(method, pass_, cfg, side)
        if reason:
            return {"method": method, "pass": pass_, "side": side, "skipped": reason}
        return {
            "method": method,
            "pass": pass_,
            "side": side,
            "median_ms": {"cuda": 1.0, "phase1": 4.0, "sdpa": 30.0}.get(method, 2.0),
            "repeats": 20,
            "peak_extra_bytes": 2**20,
        }

    return measure


def small_config(**changes):
    cfg = dataclasses.replace(
        kernel_bench.KERNEL_BENCH_PRESETS["full"], sizes=(256, 512), **changes
    )
    return cfg


def test_the_kernel_runs_first_over_all_sizes():
    asked = []
    payload = kernel_bench.run_kernel_bench(
        small_config(), log=lambda line: None, measure=fake_measure(asked)
    )
    methods = [m for m, _, _ in asked]
    assert methods[:4] == ["cuda"] * 4 and methods[4:8] == ["phase1_fused"] * 4
    assert methods[8:12] == ["phase1"] * 4
    assert methods.index("sdpa") > methods.index("cuda_gpa")
    assert payload["complete"] is True and payload["stopped"] is None
    assert len(payload["records"]) == len(kernel_bench.METHODS) * 2 * 2


def test_phase1_is_forward_only_and_compared_with_phase2():
    asked = []
    payload = kernel_bench.run_kernel_bench(
        small_config(), log=lambda line: None, measure=fake_measure(asked)
    )
    phase1 = [r for r in payload["records"] if r["method"] == "phase1"]
    assert {r["pass"] for r in phase1 if "median_ms" in r} == {"fwd"}
    assert all("no backward" in r["skipped"] for r in phase1 if r["pass"] == "fwd+bwd")
    summary = payload["summary"]
    assert summary["phase1_over_phase2_fwd_256"] == 4.0
    floor = payload["per_size"][0]["floor_fwd_ms"]
    assert summary["phase2_over_floor_fwd_256"] == 1.0 / floor
    fused = [r for r in payload["records"] if r["method"] == "phase1_fused"]
    assert all("no backward" in r["skipped"] for r in fused if r["pass"] == "fwd+bwd")
    assert summary["phase1_fused_speedup_vs_torch_256"] == 4.0 / 2.0
    phase1_floor = payload["per_size"][0]["floor_phase1_ms"]
    assert summary["phase1_fused_over_floor_256"] == 2.0 / phase1_floor


def test_the_phase1_floor_is_two_low_resolution_score_passes():
    cfg = small_config()
    entry = kernel_bench.floors(cfg, 1024, {"bf16_flops_per_s": 681e12, "bytes_per_s": 4.25e12})
    # 65,536 low-res queries x 65,536 key blocks x 8 heads x 2 * 64 FLOPs per pass, two passes
    flops = 2 * 65536 * 65536 * 8 * 2 * 64
    assert entry["floor_phase1_ms"] == pytest.approx(flops / 681e12 * 1e3)  # compute-bound
    assert 12.0 < entry["floor_phase1_ms"] < 14.0  # the "about 13 ms"


def test_a_spent_budget_records_the_rest_as_skipped_and_every_step_is_reported():
    asked, progress = [], []
    cfg = small_config(time_budget_s=0.0)
    payload = kernel_bench.run_kernel_bench(
        cfg, log=lambda line: None, on_progress=progress.append, measure=fake_measure(asked)
    )
    assert asked == []  # a budget of 0 s starts nothing
    assert payload["complete"] is False and "time budget of 0 s" in payload["stopped"]
    assert all(r["skipped"].startswith("not started") for r in payload["records"])
    assert len(progress) == len(payload["records"])
    assert all(p["complete"] is False for p in progress)


def test_floors_follow_the_given_ceilings():
    cfg = small_config()
    default = kernel_bench.floors(cfg, 256)
    ceilings = {"bf16_flops_per_s": 395e12, "bytes_per_s": 2.15e12}  # half of the stored H200 ones
    halved = kernel_bench.floors(cfg, 256, ceilings)
    assert abs(halved["floor_fwd_ms"] / default["floor_fwd_ms"] - 2.0) < 1e-9
    payload = kernel_bench.run_kernel_bench(
        cfg, log=lambda line: None, ceilings=ceilings, measure=fake_measure([])
    )
    assert payload["ceilings"] == ceilings


def test_the_stored_fields_are_milliseconds_from_the_one_timer(monkeypatch):
    """measure_call asks gpa_lib.measure for seconds and stores the kernel records' milliseconds."""
    asked = {}

    def timer(fn, **options):
        asked.update(options)
        times = [0.001, 0.002, 0.002, 0.003, 0.005]
        return {"median_s": 0.002, "min_s": 0.001, "times_s": times, "repeats": 5,
                "first_call_s": 1.5}  # fmt: skip

    monkeypatch.setattr(kernel_bench, "median_time", timer)
    monkeypatch.setattr(kernel_bench, "peak_memory", lambda fn, device: (None, 2**20))
    cfg = kernel_bench.KERNEL_BENCH_PRESETS["full"]
    record = kernel_bench.measure_call(lambda: None, cfg)
    assert record == {
        "median_ms": 2.0,
        "min_ms": 1.0,
        "q1_ms": 2.0,
        "q3_ms": 3.0,
        "max_ms": 5.0,
        "repeats": 5,
        "first_call_ms": 1500.0,
        "peak_extra_bytes": 2**20,
    }
    assert asked["device"] == "cuda" and asked["min_repeats"] == 3
    assert asked["budget_s"] == 20 * cfg.max_call_s and asked["max_call_s"] == cfg.max_call_s


def test_quartiles_interpolate_between_the_timed_calls():
    assert kernel_bench.timing_quartiles([4.0, 1.0, 3.0, 2.0]) == (1.75, 3.25)
    assert kernel_bench.timing_quartiles([0.5]) == (0.5, 0.5)
    with pytest.raises(ValueError, match="times_s is empty"):
        kernel_bench.timing_quartiles([])


def test_phase1_call_is_the_shared_selection():
    q, k, v = (torch.randn(1, 2, 16, 16, 8) for _ in range(3))  # (B, h, H, W, D)
    cfg = dataclasses.replace(
        kernel_bench.KERNEL_BENCH_PRESETS["quick"], heads=2, head_dim=8, topk=2
    )
    problem = check_inputs(q, k, v, pool=4, cell=8, topk=2, affinity="dot")
    selection = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
    call = kernel_bench.method_call("phase1", cfg, q, k, v, None, problem)
    assert torch.equal(call(), selection)


def test_the_table_shows_every_record_and_the_state(tmp_path, capsys):
    payload = kernel_bench.run_kernel_bench(
        small_config(), log=lambda line: None, measure=fake_measure([])
    )
    table = format_table(payload)
    assert "  256² cuda" in table and "no backward" in table
    n_records = len(kernel_bench.METHODS) * 4
    assert table.splitlines()[-1].startswith(f"kernel bench: {n_records} records, complete")
    path = tmp_path / "kernel_bench_test.json"
    path.write_text(json.dumps(payload))
    assert kernel_cli.main(["--show", str(path)]) == 0  # no GPU needed
    assert capsys.readouterr().out == table + "\n"


def test_cli_options_reach_the_config():
    parser = __import__("argparse").ArgumentParser()
    kernel_cli.add_arguments(parser)
    args = parser.parse_args(["--max-call-s", "0.5", "--time-budget-s", "200", "--sizes", "256"])
    cfg = kernel_cli.config_from_args(args)
    assert (cfg.max_call_s, cfg.time_budget_s, cfg.sizes) == (0.5, 200.0, (256,))


def test_bench_one_runs_each_torch_method_on_the_cpu(monkeypatch):
    """The real measurement calls at a tiny size, with the inputs and the timer moved to the CPU."""

    def cpu_inputs(cfg, side, requires_grad):
        generator = torch.Generator().manual_seed(cfg.seed + side)
        shape = (cfg.batch, cfg.heads, side, side, cfg.head_dim)
        return [
            torch.randn(shape, generator=generator).requires_grad_(requires_grad) for _ in range(3)
        ]  # q, k, v: (B, h, H, W, D)

    def cpu_timer(fn, cfg):
        for _ in range(2):
            fn()
        return {"median_ms": 1.0, "min_ms": 1.0, "repeats": 2, "peak_extra_bytes": 0}

    monkeypatch.setattr(kernel_bench, "_inputs", cpu_inputs)
    monkeypatch.setattr(kernel_bench, "measure_call", cpu_timer)
    cfg = dataclasses.replace(
        kernel_bench.KERNEL_BENCH_PRESETS["quick"],
        sizes=(32,),
        heads=2,
        head_dim=16,
        topk=2,
        dtype="float32",
    )
    for method, pass_ in [
        ("cuda", "fwd"),  # the custom op's CPU path
        ("phase1", "fwd"),
        ("reference", "fwd"),
        ("reference", "fwd+bwd"),
        ("reference_gpa", "fwd+bwd"),
    ]:
        record = kernel_bench.bench_one(method, pass_, cfg, 32)
        assert record.get("median_ms") == 1.0, record
    assert "no backward" in kernel_bench.bench_one("phase1", "fwd+bwd", cfg, 32)["skipped"]
    # The cuda backend refuses a CPU problem: the failure is recorded, not raised.
    assert "skipped" in kernel_bench.bench_one("cuda_gpa", "fwd", cfg, 32)
    # So does the fused phase 1, which needs the built extension.
    assert (
        "CudaKernelUnavailable" in kernel_bench.bench_one("phase1_fused", "fwd", cfg, 32)["skipped"]
    )


def test_a_measurement_that_raises_is_recorded_and_the_run_goes_on():
    def measure(method, pass_, cfg, side, selection=None):
        if method == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 3 GiB")
        return {"method": method, "pass": pass_, "side": side, "skipped": "stand-in"}

    payload = kernel_bench.run_kernel_bench(small_config(), log=lambda line: None, measure=measure)
    cuda = [r for r in payload["records"] if r["method"] == "cuda"]
    assert len(cuda) == 4 and all("OutOfMemoryError" in r["skipped"] for r in cuda)
    assert len(payload["records"]) == len(kernel_bench.METHODS) * 4 and payload["complete"] is True


def test_the_driver_comes_from_the_machine_facts(monkeypatch):
    from gpa_lib import results

    monkeypatch.setattr(results, "nvidia_smi_facts", lambda fields: {"driver_version": "580.1"})
    assert results.driver_version() == "580.1"
    monkeypatch.setattr(results, "nvidia_smi_facts", lambda fields: {})
    assert results.driver_version().startswith("CUDA driver API")


def test_the_table_shows_the_kernel_breakdown_and_a_failed_one_is_kept():
    payload = kernel_bench.run_kernel_bench(
        dataclasses.replace(small_config(), sizes=(256,)),
        log=lambda line: None,
        measure=fake_measure([]),
    )
    entry = payload["per_size"][0]
    if not torch.cuda.is_available():
        assert "breakdown" not in entry and entry["breakdown_failed"]  # no GPU: recorded, no crash
    entry["breakdown"] = {
        "phase2_fwd_bwd": [
            {
                "name": "gpa_dkdv_tc_kernel",
                "s_per_call": 2e-3,
                "share": 0.6,
                "launches_per_call": 1,
            },
            {"name": "gpa_dq_tc_kernel", "s_per_call": 1e-3, "share": 0.4, "launches_per_call": 1},
        ]
    }
    table = format_table(payload)
    assert "256² phase2_fwd_bwd by kernel: gpa_dkdv_tc_kernel 60%, gpa_dq_tc_kernel 40%" in table
