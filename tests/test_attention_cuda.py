"""The ``"cuda"`` GPA backend: the fused kernel on a GPU, and everything around it on any machine.

Tests marked ``gpu`` skip with a reason where torch sees no CUDA device (tests/conftest.py); they
also skip when the extension cannot be built for a missing toolkit, and fail if it is present but
the build fails. The rest runs everywhere: the backend's reasons, the guarded build door, the
compile check (needs nvcc), the roofline floor and the benchmark harness.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from gpa_lib.attention.analysis import kernel_bench
from gpa_lib.attention.analysis.complexity import (
    AttentionSizes,
    phase2_bytes,
    phase2_floor,
    phase2_flops,
    roofline_floor,
)
from gpa_lib.attention.analysis.kernel_results import summarise
from gpa_lib.attention.backends import cuda as cuda_backend
from gpa_lib.attention.backends.cuda import CudaBackend
from gpa_lib.attention.backends.reference import attend_selected
from gpa_lib.attention.kernel.cuda import build as cuda_ext
from gpa_lib.attention.kernel.cuda import check as kernel_check
from gpa_lib.attention.kernel.cuda.evidence import flash_rule as kernel_flash_rule
from gpa_lib.attention.kernel.cuda.ops import (
    gpa_attention_fused,
    gpa_phase2_bwd,
    gpa_phase2_fwd,
    phase2_fused,
)
from gpa_lib.attention.problem import GPAProblem, check_inputs
from gpa_lib.bench import kernel as kernel_cli


def problem(**changes) -> GPAProblem:
    base = GPAProblem(
        batch=1,
        heads=8,
        q_grid=(64, 64),
        k_grid=(64, 64),
        head_dim=64,
        value_dim=64,
        pool=4,
        cell=8,
        topk=8,
        affinity="dot",
        dtype=torch.bfloat16,
        device=torch.device("cuda", 0),
        needs_grad=False,
    )
    return dataclasses.replace(base, **changes)


# --- on every machine --------------------------------------------------------------------------


class TestBackendReasons:
    def test_cpu_tensors_are_refused_with_the_reason(self):
        reason = CudaBackend().can_run(problem(device=torch.device("cpu")))
        assert "no fused CUDA kernel" in reason and "device=cpu" in reason

    def test_this_machine_says_what_is_missing(self):
        if torch.cuda.is_available() and cuda_ext.find_nvcc():
            pytest.skip("this machine has a GPU and nvcc")
        reason = CudaBackend().can_run(problem())
        assert reason and ("CUDA" in reason or "nvcc" in reason)

    def test_unsupported_inputs_are_refused_where_the_toolchain_is_present(self, monkeypatch):
        for name in ("toolchain_reason", "device_reason", "build_failure"):
            monkeypatch.setattr(cuda_backend, name, lambda *args: None)
        backend = CudaBackend()
        assert backend.can_run(problem()) is None
        assert "got dtype=torch.float64" in backend.can_run(problem(dtype=torch.float64))
        assert "head dims (16, 32, 64, 128), got D=24" in backend.can_run(
            problem(head_dim=24, value_dim=24)
        )
        assert "Dv == D" in backend.can_run(problem(value_dim=32))

    def test_refusals_are_logged_once(self, caplog):
        backend = CudaBackend()
        with caplog.at_level("INFO", logger="gpa_lib.attention"):
            for _ in range(3):
                backend.can_run(problem(device=torch.device("cpu")))
        assert sum("falls back" in r.message for r in caplog.records) == 1


class TestBuildDoor:
    def test_availability_gives_a_reason_here(self):
        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
        ok, reason = cuda_ext.cuda_kernel_available()
        assert not ok and ("install" in reason or "CUDA device" in reason)

    def test_a_missing_nvcc_names_the_toolkit_to_install(self, monkeypatch):
        monkeypatch.setattr(torch.version, "cuda", "12.8")
        monkeypatch.setattr(cuda_ext, "find_nvcc", lambda: None)
        expected = "nvcc was not found; install the CUDA toolkit 12.8"
        assert cuda_ext.toolchain_reason().startswith(expected)
        ok, reason = cuda_ext.cuda_kernel_available(build=False)
        assert not ok and reason.startswith(expected)
        with pytest.raises(cuda_ext.CudaKernelUnavailable, match=expected):
            cuda_ext.load_extension()

    def test_a_cpu_torch_build_is_named(self, monkeypatch):
        monkeypatch.setattr(torch.version, "cuda", None)
        assert "has no CUDA support; install a CUDA build of torch" in cuda_ext.toolchain_reason()

    def test_the_build_name_follows_every_source_file(self):
        names = {p.name for p in cuda_ext.source_files()}
        assert {"gpa_phase2.cu", "gpa_binding.cpp", "gpa_tc_fwd.cuh", "gpa_emulation.h"} <= names
        assert len(cuda_ext.source_hash()) == 12


PTXAS_SAMPLE = """\
ptxas info    : Compiling entry function '_ZN3gpa17gpa_fwd_tc_kernelINS_4BF16ELi64EEEvNS_6ParamsE' for 'sm_80'
ptxas info    : Function properties for _ZN3gpa17gpa_fwd_tc_kernelINS_4BF16ELi64EEEvNS_6ParamsE
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 135 registers, used 1 barriers, 576 bytes cmem[0]
ptxas info    : Compiling entry function '_ZN3gpa20gpa_query_f32_kernelILi32ELb1EEEvNS_6ParamsE' for 'sm_80'
ptxas info    : Function properties for _ZN3gpa20gpa_query_f32_kernelILi32ELb1EEEvNS_6ParamsE
    8 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 64 registers, used 1 barriers, 8 bytes cumulative stack size, 576 bytes cmem[0]
"""


class TestKernelCheck:
    def test_ptxas_output_is_parsed(self):
        fwd, dq = kernel_check.parse_ptxas(PTXAS_SAMPLE, "80")
        assert (fwd.kernel, fwd.registers, fwd.spill_stores) == ("fwd_tc<bf16,64>", 135, 0)
        assert (dq.kernel, dq.registers, dq.spill_stores, dq.spill_loads, dq.stack) == (
            "dq_f32<f32,32>",
            64,
            8,
            4,
            8,
        )

    def test_a_missing_nvcc_fails_unless_optional(self, monkeypatch):
        monkeypatch.setattr(kernel_check, "find_nvcc", lambda: None)
        monkeypatch.delenv(kernel_check.OPTIONAL_ENV, raising=False)
        code, report, _ = kernel_check.run_check()
        assert code == 1 and "nvcc not found" in report
        monkeypatch.setenv(kernel_check.OPTIONAL_ENV, "1")
        code, report, _ = kernel_check.run_check()
        assert code == 0 and "skipped" in report

    def test_the_kernels_compile_for_sm80_and_sm90_without_spills(self):
        if cuda_ext.find_nvcc() is None:
            pytest.skip("nvcc not found: the compile check needs the CUDA toolkit")
        code, report, reports = kernel_check.run_check()
        assert code == 0, report
        families = {r.family for r in reports}
        assert {"fwd_tc", "dq_tc", "dkdv_tc", "fwd_f32", "dq_f32", "dkdv_f32"} <= families
        assert {r.arch for r in reports} == {"80", "90"}
        assert all(r.spill_stores == r.spill_loads == 0 for r in reports)


class TestRoofline:
    SIZES = AttentionSizes(
        q_grid=(256, 256),
        k_grid=(256, 256),
        head_dim=64,
        heads=8,
        batch=1,
        pool=4,
        cell=8,
        topk=8,
        dtype_bytes=2,
    )

    def test_forward_work_and_traffic_by_hand(self):
        n = 8 * 256 * 256  # queries over heads
        assert phase2_flops(self.SIZES) == 2 * n * 128 * (64 + 64)
        selection = 8 * 32 * 32 * 8 * 8
        assert phase2_bytes(self.SIZES) == n * 64 * 2 * 4 + n * 4 + selection  # q, k, v, out; lse
        floor = phase2_floor(self.SIZES)
        assert floor.bound == "memory"
        assert floor.floor_s == pytest.approx(phase2_bytes(self.SIZES) / 4.3e12)
        assert floor.compute_s == pytest.approx(phase2_flops(self.SIZES) / 790e12)

    def test_backward_is_two_and_a_half_forwards_of_work(self):
        assert phase2_flops(self.SIZES, backward=True) == 2.5 * phase2_flops(self.SIZES)
        assert phase2_bytes(self.SIZES, backward=True) > 2 * phase2_bytes(self.SIZES)

    def test_the_floor_is_the_larger_time(self):
        floor = roofline_floor(1e12, 1e9, flops_per_s=1e12, bytes_per_s=1e12)
        assert (floor.floor_s, floor.bound) == (1.0, "compute")
        with pytest.raises(ValueError, match="rates must be positive"):
            roofline_floor(1.0, 1.0, flops_per_s=0.0)


class TestBenchHarness:
    def test_without_a_gpu_it_says_so_and_writes_nothing(self, tmp_path, monkeypatch, capsys):
        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
        monkeypatch.setenv("GPA_LIB_RESULTS_DIR", str(tmp_path))
        assert kernel_cli.main(["--quick"]) == 1
        assert "needs a CUDA GPU" in capsys.readouterr().out
        assert list(tmp_path.iterdir()) == []

    def test_the_default_run_is_the_issue_configuration(self):
        cfg = kernel_bench.KERNEL_BENCH_PRESETS["full"]
        assert (cfg.sizes, cfg.batch, cfg.heads, cfg.head_dim, cfg.dtype) == (
            (256, 512, 1024),
            1,
            8,
            64,
            "bfloat16",
        )
        assert (cfg.cell, cfg.pool, cfg.topk) == (8, 4, 8) and cfg.repeats >= 20

    def test_summary_states_the_targets(self):
        records = [
            {"method": m, "pass": "fwd", "side": 256, "median_ms": t}
            for m, t in (("cuda", 1.0), ("sdpa", 30.0), ("flex", 2.0))
        ]
        records.append({"method": "cuda", "pass": "fwd+bwd", "side": 1024, "median_ms": 40.0})
        summary = summarise(records, kernel_bench.KERNEL_BENCH_PRESETS["full"])
        assert (
            summary["speedup_vs_sdpa_fwd_256"] == 30.0 and summary["speedup_vs_flex_fwd_256"] == 2.0
        )
        assert summary["cuda_fwd_bwd_1024_ms"] == 40.0


# --- on a GPU ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel():
    ok, reason = cuda_ext.cuda_kernel_available(build=False)
    if not ok:
        pytest.skip(reason)
    return cuda_ext.load_extension()  # a present toolkit that fails to build is a failure


def cuda_inputs(
    dtype,
    dim,
    *,
    batch=2,
    heads=2,
    q_grid=(32, 48),
    k_grid=(24, 40),
    pool=4,
    cell=8,
    topk=5,
    affinity="dot",
    seed=0,
):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, *q_grid, dim, generator=gen).to("cuda", dtype)
    k = torch.randn(batch, heads, *k_grid, dim, generator=gen).to("cuda", dtype)
    v = torch.randn(batch, heads, *k_grid, dim, generator=gen).to("cuda", dtype)
    prob = check_inputs(q, k, v, pool=pool, cell=cell, topk=topk, affinity=affinity)
    n_blocks, cells = prob.n_key_blocks, prob.cell_grid
    selection = (
        torch.rand(batch, heads, *cells, n_blocks, generator=gen).argsort(-1)[..., :topk].cuda()
    )
    return q, k, v, selection, prob


def flash_rule(name, ours, same_precision, exact, dtype):
    """Assert FlashAttention's rule (:func:`gpa_lib.attention.kernel.cuda.evidence.flash_rule`)."""
    row = kernel_flash_rule(ours, same_precision, exact, dtype)
    assert row["ok"], (
        f"{name}: error {row['kernel_error']:.3g} > 2 x same-precision reference error "
        f"{row['reference_error']:.3g} + floor {row['floor']:.3g}"
    )


def check_against_reference(q, k, v, selection, prob, dtype):
    """Forward and dq, dk, dv of the kernel by the FlashAttention rule (float64 reference as truth)."""
    dout = torch.randn(q.shape, generator=torch.Generator().manual_seed(1)).to("cuda", dtype)
    runs = {}
    for label, precision in (("kernel", dtype), ("exact", torch.float64), ("same", dtype)):
        tensors = [t.detach().to(precision).requires_grad_() for t in (q, k, v)]
        if label == "kernel":
            out = phase2_fused(
                *tensors, selection, pool=prob.pool, cell=prob.cell, affinity=prob.affinity
            )
        else:
            out = attend_selected(*tensors, selection.flatten(2, 3), prob)
        runs[label] = (out, *torch.autograd.grad(out, tensors, dout.to(precision)))
    for i, name in enumerate(("out", "dq", "dk", "dv")):
        flash_rule(name, runs["kernel"][i], runs["same"][i], runs["exact"][i], dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("affinity", ["dot", "euclid"])
@pytest.mark.parametrize("dim", [16, 32, 64, 128])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_kernel_matches_the_reference(kernel, dtype, dim, affinity):
    q, k, v, selection, prob = cuda_inputs(dtype, dim, affinity=affinity)
    check_against_reference(q, k, v, selection, prob, dtype)


AWKWARD = {
    "pool2_cell4": {"q_grid": (12, 20), "k_grid": (10, 6), "pool": 2, "cell": 4, "topk": 3},
    "pool8_cell16": {"q_grid": (32, 16), "k_grid": (24, 40), "pool": 8, "cell": 16, "topk": 4},
    "pool1_cell3": {"q_grid": (9, 6), "k_grid": (7, 5), "pool": 1, "cell": 3, "topk": 11},
    "cell_equals_pool": {"q_grid": (16, 8), "k_grid": (12, 12), "pool": 4, "cell": 4, "topk": 2},
    "every_block": {"q_grid": (16, 16), "k_grid": (16, 8), "pool": 4, "cell": 8, "topk": 8},
    "blocks_shared_by_many_cells": {
        "q_grid": (64, 64),
        "k_grid": (8, 8),
        "pool": 4,
        "cell": 8,
        "topk": 2,
    },
    "one_head_three_batches": {
        "batch": 3,
        "heads": 1,
        "q_grid": (8, 24),
        "k_grid": (40, 8),
        "topk": 6,
    },
}


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(AWKWARD))
def test_kernel_on_awkward_sizes(kernel, name):
    q, k, v, selection, prob = cuda_inputs(torch.bfloat16, 64, **AWKWARD[name])
    check_against_reference(q, k, v, selection, prob, torch.bfloat16)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_repeated_runs_are_bitwise_identical(kernel, dtype):
    q, k, v, selection, prob = cuda_inputs(
        dtype, 64, q_grid=(64, 64), k_grid=(32, 32), topk=8, affinity="euclid"
    )
    results = []
    for _ in range(3):
        tensors = [t.clone().requires_grad_() for t in (q, k, v)]
        out = phase2_fused(*tensors, selection, pool=4, cell=8, affinity="euclid")
        results.append((out, *torch.autograd.grad(out, tensors, torch.ones_like(out))))
    for again in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], again, strict=True))


@pytest.mark.gpu
def test_opcheck_on_cuda(kernel):
    q, k, v, selection, _ = cuda_inputs(torch.bfloat16, 64)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    bias = (-k.detach().float().square().sum(-1) / 8.0).requires_grad_()
    for key_bias in (None, bias):
        torch.library.opcheck(gpa_phase2_fwd, (q, k, v, selection, key_bias, 4, 8, 0.125))
    out, lse = gpa_phase2_fwd(q, k, v, selection, bias, 4, 8, 0.125)
    torch.library.opcheck(
        gpa_phase2_bwd,
        (
            torch.randn_like(out),
            q.detach(),
            k.detach(),
            v.detach(),
            out.detach(),
            lse,
            selection,
            bias.detach(),
            4,
            8,
            0.125,
        ),
    )


@pytest.mark.gpu
def test_backend_end_to_end_and_compiled(kernel):
    from gpa_lib.attention import auto_backend, gpa_attention

    q, k, v, _, _ = cuda_inputs(torch.bfloat16, 64, q_grid=(32, 32), k_grid=(32, 32), topk=8)
    args = {"pool": 4, "cell": 8, "topk": 8}
    assert auto_backend(q, k, v, **args) == "cuda"
    out, selection = gpa_attention(q, k, v, backend="cuda", return_selection=True, **args)
    ref, ref_selection = gpa_attention(q, k, v, backend="reference", return_selection=True, **args)
    assert torch.equal(selection, ref_selection)
    exact = gpa_attention(q.double(), k.double(), v.double(), backend="reference", **args)
    flash_rule("gpa_attention", out, ref, exact, torch.bfloat16)
    compiled = torch.compile(lambda q, k, v: gpa_attention_fused(q, k, v, **args), fullgraph=True)
    out_compiled, selection_compiled = compiled(q, k, v)
    assert torch.equal(selection_compiled, selection) and torch.equal(out_compiled, out)


@pytest.mark.gpu
def test_unsupported_head_dim_falls_back_with_the_reason(kernel):
    from gpa_lib.attention import auto_backend, explain_backends

    q, k, v, _, _ = cuda_inputs(torch.bfloat16, 24)
    args = {"pool": 4, "cell": 8, "topk": 5}
    assert "got D=24" in explain_backends(q, k, v, **args)["cuda"]
    assert auto_backend(q, k, v, **args) != "cuda"


@pytest.mark.gpu
def test_euclid_scale_matches_the_definition(kernel):
    q, k, v, selection, prob = cuda_inputs(torch.float32, 32, affinity="euclid")
    out = phase2_fused(q, k, v, selection, pool=4, cell=8, affinity="euclid")
    ref = attend_selected(q, k, v, selection.flatten(2, 3), prob)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * math.sqrt(32))


@pytest.mark.gpu
@pytest.mark.parametrize("affinity", ["dot", "euclid"])
@pytest.mark.parametrize("dim", [16, 64, 128])
def test_fused_phase1_matches_the_oracle(kernel, dim, affinity):
    from gpa_lib.attention.kernel.cuda.phase1 import select_key_blocks_fused, selection_agreement
    from gpa_lib.attention.selection import select_key_blocks_flat

    q, k, _, _, prob = cuda_inputs(
        torch.bfloat16, dim, q_grid=(64, 96), k_grid=(80, 48), topk=8, affinity=affinity
    )
    ours = select_key_blocks_fused(q, k, prob)
    oracle = select_key_blocks_flat(q, k, prob)
    report = selection_agreement(q, k, prob, ours, oracle)
    assert report["agreement"] >= 0.999, report
    assert report["worst_mass_gap"] < 1e-4, report  # any difference is a near-tie


@pytest.mark.gpu
def test_fused_phase1_at_the_benchmark_setting_agrees_on_999_of_1000_picks(kernel):
    from gpa_lib.attention.kernel.cuda.phase1 import select_key_blocks_fused, selection_agreement
    from gpa_lib.attention.selection import select_key_blocks_flat

    gen = torch.Generator(device="cuda").manual_seed(0)
    q, k = (
        torch.randn(1, 8, 256, 256, 64, generator=gen, device="cuda", dtype=torch.bfloat16)
        for _ in range(2)
    )
    prob = check_inputs(q, k, k, pool=4, cell=8, topk=8, affinity="dot")
    ours = select_key_blocks_fused(q, k, prob)
    report = selection_agreement(q, k, prob, ours, select_key_blocks_flat(q, k, prob))
    assert report["agreement"] >= 0.999 and report["worst_mass_gap"] < 1e-4, report


@pytest.mark.gpu
def test_pose_gpu_heads_train_through_the_automatic_choice(kernel):
    """The pose generator's gpu preset (4 heads x 16, float32, pool 4, cell 8, topk 16) on the kernel."""
    from gpa_lib.attention import auto_backend, gpa_attention

    q, k, v, _, _ = cuda_inputs(torch.float32, 16, heads=4, q_grid=(64, 64), k_grid=(64, 64))
    args = {"pool": 4, "cell": 8, "topk": 16}
    tensors = [t.detach().requires_grad_() for t in (q, k, v)]
    assert auto_backend(*tensors, **args) == "cuda"
    out = gpa_attention(*tensors, **args)
    out.square().sum().backward()
    ref = [t.detach().double().requires_grad_() for t in (q, k, v)]
    out_ref = gpa_attention(*ref, backend="reference", **args)
    out_ref.square().sum().backward()
    torch.testing.assert_close(out.double(), out_ref, rtol=1e-4, atol=1e-4)
    for ours, exact in zip(tensors, ref, strict=True):
        torch.testing.assert_close(ours.grad.double(), exact.grad, rtol=1e-3, atol=1e-3)


@pytest.mark.gpu
def test_kernel_breakdown_names_the_backward_kernels(kernel):
    cfg = dataclasses.replace(kernel_bench.KERNEL_BENCH_PRESETS["quick"], sizes=(64,))
    found = kernel_bench.kernel_breakdown(cfg, 64, calls=2)
    names = " ".join(row["name"] for row in found["phase2_fwd_bwd"])
    assert "gpa_dkdv" in names and "gpa_dq" in names and "gpa_fwd" in names
    assert sum(r["share"] for r in found["layer_fwd_bwd"]) == pytest.approx(1.0)
