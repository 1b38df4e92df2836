"""The fused GPA CUDA kernel against the general-purpose options: the measurements behind
``python -m gpa_lib.bench kernel`` (the command line; this module is its core, tested on any machine).

On a CUDA GPU, for each square resolution (query grid = key grid; B=1, 8 heads x 64, bf16, cell 8,
pool 4, topk 8 by default) it times, forward and forward+backward:

- ``cuda``: phase 2 by the fused kernel (``gpa_lib::gpa_phase2_fwd`` on a fixed selection), and
  ``cuda_gpa``: the whole ``gpa_attention(backend="cuda")`` with phase 1;
- ``phase1``: phase 1 alone (``select_key_blocks_flat`` at the ``cuda`` backend's chunk size), forward
  only: no gradient flows through a selection, so a training step pays its forward time once;
- ``reference``: phase 2 by gather in torch (the reference backend), and ``reference_gpa``;
- ``flex``: phase 2 as compiled FlexAttention with the equivalent BlockMask, layouts permuted and
  the mask built outside the timed region (kernel against kernel), and ``flex_gpa``: the whole
  ``gpa_attention(backend="flex")``;
- ``sdpa``: dense ``scaled_dot_product_attention`` restricted to the flash backend, at the sizes where
  it runs within ``max_dense_side``.

Median of ``repeats`` (>= 20) CUDA-event timings after ``warmup`` calls (fewer for calls slower than
``max_call_s``) by :func:`gpa_lib.measure.median_time`, peak extra memory of one call
(:func:`gpa_lib.measure.peak_memory`), the roofline floor of phase 2
(:mod:`gpa_lib.attention.analysis.complexity`; at given ceilings, else at the stored H200 ones), and
the largest difference between the kernel's and the reference's phase-2 output, and per size a
profiler breakdown of the fused forward+backward kernel by kernel (:func:`kernel_breakdown`). The stored records
keep milliseconds (``median_ms``, ``min_ms``, ``first_call_ms``), as every ``kernel_bench_*.json``
so far, and from now on the spread of the timed calls too (``q1_ms``, ``q3_ms``, ``max_ms``; the
committed runs before it keep none above the median). Methods run one after the other over all sizes, in the order of :data:`METHODS` (the
kernel's own first), and ``time_budget_s`` stops starting new measurements, so a budget cuts the
comparisons, not the kernel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from gpa_lib.attention.analysis.kernel_results import summarise
from gpa_lib.measure import median_time, peak_memory, time_by_kernel

#: Every method, in the order they run (a time budget cuts the last ones).
METHODS = (
    "cuda",
    "phase1_fused",
    "phase1",
    "cuda_gpa",
    "sdpa",
    "flex",
    "reference",
    "flex_gpa",
    "reference_gpa",
)
#: Methods that time phase 1 alone (no backward): the fused kernel, and the torch oracle.
PHASE1_METHODS = ("phase1_fused", "phase1")
PASSES = ("fwd", "fwd+bwd")


@dataclass(frozen=True)
class KernelBenchConfig:
    """One kernel benchmark run; sizes in tokens per grid side."""

    sizes: tuple[int, ...] = (256, 512, 1024)  # side of the square query and key grids
    batch: int = 1  # B
    heads: int = 8  # h
    head_dim: int = 64  # D = Dv
    pool: int = 4  # key block side, tokens
    cell: int = 8  # query cell side, tokens
    topk: int = 8  # key blocks per cell
    dtype: str = "bfloat16"  # torch dtype name of q, k, v
    affinity: str = "dot"  # "dot" or "euclid"
    methods: tuple[str, ...] = METHODS  # which of METHODS to run
    passes: tuple[str, ...] = PASSES  # "fwd" (no autograd) and/or "fwd+bwd"
    warmup: int = 5  # untimed calls first (compilation and the extension build happen here)
    repeats: int = 20  # timed calls; the median is reported
    max_call_s: float = 10.0  # a method whose warm-up call is slower is timed with fewer repeats
    time_budget_s: float | None = None  # seconds after which no measurement starts (None: no limit)
    max_dense_side: int = 512  # dense SDPA only up to this grid side (1024^2 is out of its reach)
    target_side: int = 256  # resolution of the stated speed-up targets
    seed: int = 0  # inputs are torch.randn under this seed


KERNEL_BENCH_PRESETS = {
    "full": KernelBenchConfig(),
    "quick": KernelBenchConfig(sizes=(256,), warmup=3),
}


def timing_quartiles(times_s: Sequence[float]) -> tuple[float, float]:
    """First and third quartiles of the timed calls (seconds; linear interpolation between the
    samples, as ``numpy.quantile``); a single call is both."""
    if not times_s:
        raise ValueError("times_s is empty: no timed call to take quartiles of")
    q1, q3 = np.quantile(np.asarray(times_s, dtype=np.float64), [0.25, 0.75])
    return float(q1), float(q3)


def measure_call(fn: Callable[[], Any], cfg: KernelBenchConfig) -> dict[str, Any]:
    """The stored fields of one timed call on CUDA: median, least, quartile and greatest
    milliseconds over CUDA events after ``cfg.warmup`` calls, the timed calls, the first call (compilation included) and the peak
    extra bytes of one more call.

    A call slower than ``cfg.max_call_s`` ends the warm-up after two calls, and the repeats drop (to at
    least 3) when they would take longer than 20 calls of ``max_call_s``.
    """
    timing = median_time(
        fn,
        device="cuda",
        warmup=max(1, cfg.warmup),
        repeats=cfg.repeats,
        max_call_s=cfg.max_call_s,
        budget_s=20 * cfg.max_call_s,
        min_repeats=3,
    )
    _, peak = peak_memory(fn, "cuda")
    q1_s, q3_s = timing_quartiles(timing["times_s"])
    return {
        "median_ms": timing["median_s"] * 1e3,
        "min_ms": timing["min_s"] * 1e3,
        "q1_ms": q1_s * 1e3,
        "q3_ms": q3_s * 1e3,
        "max_ms": max(timing["times_s"]) * 1e3,
        "repeats": timing["repeats"],
        "first_call_ms": timing["first_call_s"] * 1e3,
        "peak_extra_bytes": int(peak),
    }


def _inputs(cfg: KernelBenchConfig, side: int, requires_grad: bool):
    generator = torch.Generator(device="cuda").manual_seed(cfg.seed + side)
    shape = (cfg.batch, cfg.heads, side, side, cfg.head_dim)
    dtype = getattr(torch, cfg.dtype)
    return [
        torch.randn(shape, generator=generator, device="cuda", dtype=dtype).requires_grad_(
            requires_grad
        )
        for _ in range(3)
    ]  # q, k, v: (B, h, H, W, D)


def method_call(
    method: str, cfg: KernelBenchConfig, q, k, v, selection, problem
) -> Callable[[], torch.Tensor]:
    """A zero-argument call returning the output (B, h, H, W, D) for one method."""
    from gpa_lib.attention import gpa_attention
    from gpa_lib.attention.backends.reference import attend_selected
    from gpa_lib.attention.kernel.cuda.ops import phase2_fused

    gpa = {"pool": cfg.pool, "cell": cfg.cell, "topk": cfg.topk, "affinity": cfg.affinity}
    if method == "phase1":
        from gpa_lib.attention.selection import select_key_blocks_flat

        # The torch selection with its automatic chunk (sized to the free memory), the cuda
        # backend's fallback; the run of 2026-12-04 timed the CPU default, 2**22.
        return lambda: select_key_blocks_flat(q.detach(), k.detach(), problem)  # (B, h, K, k)
    if method == "phase1_fused":
        from gpa_lib.attention.kernel.cuda.phase1 import select_key_blocks_fused

        return lambda: select_key_blocks_fused(q.detach(), k.detach(), problem)  # (B, h, K, k)
    if method == "cuda":
        sel5 = selection.unflatten(2, problem.cell_grid)  # (B, h, Hq/c, Wq/c, k)
        return lambda: phase2_fused(
            q, k, v, sel5, pool=cfg.pool, cell=cfg.cell, affinity=cfg.affinity
        )
    if method.endswith("_gpa"):
        backend = method.removesuffix("_gpa")
        return lambda: gpa_attention(q, k, v, backend=backend, **gpa)
    if method == "reference":
        return lambda: attend_selected(q, k, v, selection, problem)
    if method == "flex":
        return _flex_kernel_call(q, k, v, selection, problem)
    if method == "sdpa":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        q_tok, k_tok, v_tok = (
            t.detach().flatten(2, 3).requires_grad_(t.requires_grad) for t in (q, k, v)
        )

        def dense():
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return torch.nn.functional.scaled_dot_product_attention(
                    q_tok, k_tok, v_tok
                )  # (B, h, N, D)

        return dense
    raise ValueError(f"method={method!r} is unknown; choose from {METHODS}")


def _flex_kernel_call(q, k, v, selection, problem):
    """Compiled flex_attention on pre-permuted inputs and a prebuilt BlockMask (euclid not covered)."""
    from gpa_lib.attention.backends.flex import (
        _compiled_flex_attention,
        flex_kernel_options,
        gpa_block_mask,
    )
    from gpa_lib.attention.grid import to_cells

    if problem.affinity != "dot":
        raise NotImplementedError("the kernel-only FlexAttention timing covers affinity='dot'")
    q_tok = (
        to_cells(q.detach(), problem.cell).flatten(2, 3).requires_grad_(q.requires_grad)
    )  # (B, h, Nq, D)
    k_tok = (
        to_cells(k.detach(), problem.pool).flatten(2, 3).requires_grad_(k.requires_grad)
    )  # (B, h, Nk, D)
    v_tok = (
        to_cells(v.detach(), problem.pool).flatten(2, 3).requires_grad_(v.requires_grad)
    )  # (B, h, Nk, D)
    mask = gpa_block_mask(selection, problem, with_q_blocks=q.requires_grad)
    options = flex_kernel_options(problem)  # the flex backend's tiles: one cell by one key block
    flex = _compiled_flex_attention()
    scale = 1.0 / math.sqrt(problem.head_dim)
    return lambda: flex(q_tok, k_tok, v_tok, block_mask=mask, scale=scale, kernel_options=options)


def skip_reason(method: str, pass_: str, cfg: KernelBenchConfig, side: int) -> str | None:
    """Why a (method, pass, side) is not measured at all (None: it is)."""
    if method == "sdpa" and side > cfg.max_dense_side:
        return f"dense attention at {side}^2 is beyond max_dense_side={cfg.max_dense_side}"
    if method in PHASE1_METHODS and pass_ == "fwd+bwd":
        return (
            "no backward: phase 1 selects without gradients; a training step pays its fwd time once"
        )
    return None


def bench_one(
    method: str,
    pass_: str,
    cfg: KernelBenchConfig,
    side: int,
    selection: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Time one method at one resolution for one pass; a failure is recorded, not raised.

    ``selection`` (B, h, K, k) is phase 1's answer for these inputs, computed here when not given.
    """
    from gpa_lib.attention.problem import check_inputs
    from gpa_lib.attention.selection import select_key_blocks_flat

    record: dict[str, Any] = {"method": method, "pass": pass_, "side": side}
    reason = skip_reason(method, pass_, cfg, side)
    if reason is not None:
        record["skipped"] = reason
        return record
    backward = pass_ == "fwd+bwd"
    q, k, v = _inputs(cfg, side, requires_grad=backward)
    problem = check_inputs(
        q, k, v, pool=cfg.pool, cell=cfg.cell, topk=cfg.topk, affinity=cfg.affinity
    )
    if selection is None:
        selection = select_key_blocks_flat(q.detach(), k.detach(), problem)  # (B, h, K, k)
    try:
        call = method_call(method, cfg, q, k, v, selection, problem)
        if backward:
            grad = None

            def fn():
                nonlocal grad
                out = call()
                grad = torch.ones_like(out) if grad is None else grad
                out.backward(grad)
        else:

            def fn():
                with torch.no_grad():
                    call()

        record.update(measure_call(fn, cfg))
    except torch.cuda.OutOfMemoryError as err:
        record["skipped"] = f"out of memory: {str(err).splitlines()[0][:200]}"
    except Exception as err:  # noqa: BLE001 - one failing method must not lose the others
        record["skipped"] = (
            f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300] if str(err).strip() else ''}"
        )
    finally:
        del q, k, v
        torch.cuda.empty_cache()
    return record


def kernel_error(cfg: KernelBenchConfig, side: int) -> dict[str, float]:
    """Largest |kernel - reference| of the phase-2 output at this resolution (inputs in cfg.dtype)."""
    from gpa_lib.attention.backends.reference import attend_selected
    from gpa_lib.attention.problem import check_inputs
    from gpa_lib.attention.selection import select_key_blocks_flat

    q, k, v = _inputs(cfg, side, requires_grad=False)
    problem = check_inputs(q, k, v, pool=cfg.pool, cell=cfg.cell, topk=cfg.topk, affinity="dot")
    selection = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
    with torch.no_grad():
        ours = method_call(
            "cuda", replace(cfg, affinity="dot"), q, k, v, selection, problem
        )().float()
        exact = attend_selected(q.float(), k.float(), v.float(), selection, problem)
        same_precision = attend_selected(q, k, v, selection, problem).float()
    return {
        "max_abs_err_kernel": (ours - exact).abs().max().item(),
        "max_abs_err_reference_same_dtype": (same_precision - exact).abs().max().item(),
    }


def phase1_check(
    cfg: KernelBenchConfig, side: int, near_tie_max_side: int = 256
) -> dict[str, float]:
    """The fused phase 1 against the torch oracle at this resolution: shared (cell, block) picks, and
    up to ``near_tie_max_side`` the worst kept-mass gap of a differing cell (float64 scores)."""
    from gpa_lib.attention.kernel.cuda.phase1 import (
        pick_agreement,
        select_key_blocks_fused,
        selection_agreement,
    )
    from gpa_lib.attention.problem import check_inputs
    from gpa_lib.attention.selection import select_key_blocks_flat

    q, k, v = _inputs(cfg, side, requires_grad=False)
    problem = check_inputs(
        q, k, v, pool=cfg.pool, cell=cfg.cell, topk=cfg.topk, affinity=cfg.affinity
    )
    ours = select_key_blocks_fused(q, k, problem)  # (B, h, K, k)
    oracle = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
    if side <= near_tie_max_side:
        report = selection_agreement(q, k, problem, ours, oracle)
    else:
        report = pick_agreement(ours, oracle)
    return {f"phase1_{key}": value for key, value in report.items()}


def default_ceilings() -> dict[str, Any]:
    """The stored H200 ceilings of :mod:`gpa_lib.attention.analysis.complexity`."""
    from gpa_lib.attention.analysis.complexity import H200_BF16_FLOPS_PER_S, H200_BYTES_PER_S

    return {
        "source": "gpa_lib.attention.analysis.complexity (H200, measured 2026-10/11)",
        "bf16_flops_per_s": H200_BF16_FLOPS_PER_S,
        "bytes_per_s": H200_BYTES_PER_S,
    }


def floors(
    cfg: KernelBenchConfig, side: int, ceilings: dict[str, Any] | None = None
) -> dict[str, float]:
    """Roofline floors of phase 2 at ``ceilings`` (``bf16_flops_per_s``, ``bytes_per_s``; default:
    :func:`default_ceilings`)."""
    from gpa_lib.attention.analysis.benchmark import square_sizes
    from gpa_lib.attention.analysis.complexity import phase1_floor, phase2_floor

    ceilings = ceilings or default_ceilings()
    rates = {
        "flops_per_s": float(ceilings["bf16_flops_per_s"]),
        "bytes_per_s": float(ceilings["bytes_per_s"]),
    }
    sizes = square_sizes(
        cfg, side, dtype_bytes=torch.tensor([], dtype=getattr(torch, cfg.dtype)).element_size()
    )
    fwd, bwd = phase2_floor(sizes, **rates), phase2_floor(sizes, backward=True, **rates)
    return {
        "floor_fwd_ms": fwd.floor_s * 1e3,
        "floor_bwd_ms": bwd.floor_s * 1e3,
        "floor_fwd_bwd_ms": (fwd.floor_s + bwd.floor_s) * 1e3,
        "bound_fwd": fwd.bound,
        "floor_phase1_ms": phase1_floor(sizes, **rates).floor_s * 1e3,  # two passes
    }


def kernel_breakdown(cfg: KernelBenchConfig, side: int, calls: int = 3) -> dict[str, Any]:
    """Where a forward+backward goes, kernel by kernel (:func:`gpa_lib.measure.time_by_kernel`):
    of the fused phase 2 alone (``"cuda"`` on phase 1's selection) and of the whole layer
    (``"cuda_gpa"``), at ``side``. The backward's kernels (the delta, dq and dk/dv kernels and the
    inverse map's sort) are what its distance to the floor is made of."""
    from gpa_lib.attention.problem import check_inputs

    q, k, v = _inputs(cfg, side, requires_grad=True)
    problem = check_inputs(
        q, k, v, pool=cfg.pool, cell=cfg.cell, topk=cfg.topk, affinity=cfg.affinity
    )
    selection = _selection(cfg, side)
    found = {}
    for label, method in (("phase2_fwd_bwd", "cuda"), ("layer_fwd_bwd", "cuda_gpa")):
        call = method_call(method, cfg, q, k, v, selection, problem)

        def step(call=call):
            out = call()
            out.backward(torch.ones_like(out))

        found[label] = time_by_kernel(step, "cuda", calls=calls)
    return found


def _selection(cfg: KernelBenchConfig, side: int) -> torch.Tensor:
    """Phase 1's answer (B, h, K, k) for the benchmark inputs at ``side`` (the same for every method)."""
    from gpa_lib.attention.problem import check_inputs
    from gpa_lib.attention.selection import select_key_blocks_flat

    q, k, v = _inputs(cfg, side, requires_grad=False)
    problem = check_inputs(
        q, k, v, pool=cfg.pool, cell=cfg.cell, topk=cfg.topk, affinity=cfg.affinity
    )
    return select_key_blocks_flat(q, k, problem)


def run_kernel_bench(
    cfg: KernelBenchConfig,
    log: Callable[[str], None] = print,
    *,
    ceilings: dict[str, Any] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    measure: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run every (method, size, pass) of ``cfg`` on the current CUDA device; the result payload.

    Methods run in the order of ``cfg.methods``, each over all sizes and passes. ``ceilings``: the
    rates of the floors (:func:`floors`). ``on_progress(payload)`` gets the payload so far, with
    ``"complete": False``, after every measurement. ``measure`` stands in for :func:`bench_one`
    (tests).
    """
    measure = measure or bench_one
    ceilings = ceilings or default_ceilings()
    started = time.perf_counter()
    records: list[dict[str, Any]] = []
    checks = []
    for side in cfg.sizes:
        entry = {"side": side, **floors(cfg, side, ceilings)}
        if "cuda" in cfg.methods:
            try:
                entry.update(kernel_error(cfg, side))
            except Exception as err:  # noqa: BLE001
                entry["error_check_failed"] = f"{type(err).__name__}: {err}"[:300]
        if "cuda" in cfg.methods:
            try:
                entry["breakdown"] = kernel_breakdown(cfg, side)
            except Exception as err:  # noqa: BLE001 - the profiler must not cost the timings
                entry["breakdown_failed"] = f"{type(err).__name__}: {err}"[:300]
        if "phase1_fused" in cfg.methods:
            try:
                entry.update(phase1_check(cfg, side))
            except Exception as err:  # noqa: BLE001
                entry["phase1_check_failed"] = f"{type(err).__name__}: {err}"[:300]
        checks.append(entry)

    def payload(complete: bool, stopped: str | None = None) -> dict[str, Any]:
        return {
            "config": asdict(cfg),
            "ceilings": ceilings,
            "complete": complete,
            "stopped": stopped,
            "records": records,
            "per_size": checks,
            "summary": summarise(records, cfg, checks),
        }

    stopped = None
    selections: dict[int, torch.Tensor] = {}
    for method in cfg.methods:
        for side in cfg.sizes:
            for pass_ in cfg.passes:
                spent = time.perf_counter() - started
                if cfg.time_budget_s is not None and spent > cfg.time_budget_s:
                    stopped = stopped or (
                        f"the time budget of {cfg.time_budget_s:.0f} s was spent at {method} "
                        f"{side}^2 {pass_}"
                    )
                    record = {"method": method, "pass": pass_, "side": side}
                    record["skipped"] = f"not started: {stopped}"
                else:
                    try:
                        selection = None
                        if measure is bench_one and skip_reason(method, pass_, cfg, side) is None:
                            if side not in selections:
                                selections[side] = _selection(cfg, side)
                            selection = selections[side]
                        record = measure(method, pass_, cfg, side, selection=selection)
                    except Exception as err:  # noqa: BLE001 - inputs or phase 1 failing (memory)
                        record = {"method": method, "pass": pass_, "side": side}
                        record["skipped"] = f"{type(err).__name__}: {str(err)[:300]}"
                        if torch.cuda.is_available():
                            torch.cuda.empty_cache()
                records.append(record)
                shown = (
                    record.get("skipped")
                    or f"{record['median_ms']:.3f} ms, peak {record['peak_extra_bytes'] / 2**20:.0f} MiB"
                )
                log(f"{side:>5}^2 {method:<14} {pass_:<8} {shown}")
                if on_progress is not None:
                    on_progress(payload(complete=False, stopped=stopped))
    return payload(complete=stopped is None, stopped=stopped)
