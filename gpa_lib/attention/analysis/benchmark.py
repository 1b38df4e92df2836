"""Timing and measuring attention: dense attention against every GPA backend, side by side.

The measurement core of ``python -m gpa_lib.bench attention`` (which is only the command line over
it) and of chapter 1. For each square resolution (query grid = key grid) :func:`bench_one` times, in
inference (``torch.no_grad``):

- ``sdpa``: exact attention with fused ``scaled_dot_product_attention`` (:func:`dense_attention`);
- ``materialised``: exact attention through an explicit (B, h, Nq, Nk) score matrix;
- ``auto`` and every registered GPA backend (``cuda``, ``flex``, ``reference``, ``recompute``,
  ``masked``, ...: :func:`gpa_lib.attention.backends.backend_names`): :func:`gpa_attention` with
  ``backend=None`` and with each backend forced (``masked`` is GPA through a masked materialised
  score matrix); a backend that cannot run here is recorded as skipped with its reason;
- ``phase1``: the selection alone (its share of the reference time is the phase-1 cost).

With ``training=True`` every call is a training step instead, forward and backward with the gradients
of q, k and v allocated afresh (``recompute`` joins, ``phase1`` and the inference-only ``flex`` on CPU
drop out); the complexity model covers inference only, so no prediction is stored.

Median wall time after warm-up (compilation included in the warm-up) with every timed call kept
(``times_s``, the spread), peak extra memory (output included) measured once, and the complexity
model's prediction next to it. Methods that would materialise more than ``max_materialised_bytes``
are skipped and only predicted.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from gpa_lib.attention import auto_backend, dense_attention, gpa_attention, select_key_blocks
from gpa_lib.attention.analysis.complexity import AttentionSizes, method_cost
from gpa_lib.attention.backends import backend_names, get_backend
from gpa_lib.attention.backends.reference import attend_selected
from gpa_lib.attention.problem import check_inputs
from gpa_lib.attention.selection import select_key_blocks_flat
from gpa_lib.measure import median_time, peak_memory

#: Exact attention without GPA: fused SDPA and the explicit score matrix.
EXACT_METHODS = ("sdpa", "materialised")
#: Methods of a training benchmark: phase 1 has no gradient, ``masked`` is the slow oracle.
TRAINING_METHODS = ("sdpa", "materialised", "auto", "reference", "recompute")
#: Methods whose memory is a materialised (B, h, Nq, Nk) score matrix, capped by max_materialised_bytes.
MATERIALISED_METHODS = ("materialised", "masked")


def all_methods() -> tuple[str, ...]:
    """Exact attention, ``auto``, every registered GPA backend (priority order) and ``phase1``."""
    return (*EXACT_METHODS, "auto", *backend_names(), "phase1")


@dataclass(frozen=True)
class AttentionBenchConfig:
    """One benchmark run; sizes in tokens per grid side."""

    sizes: tuple[int, ...] = (32, 64, 128, 256)  # side of the square query and key grids
    batch: int = 1  # B
    heads: int = 4  # h
    head_dim: int = 32  # D = Dv
    pool: int = 4  # key block side
    cell: int = 8  # query cell side
    topk: int = 8  # key blocks per cell
    affinity: str = "dot"  # "dot" or "euclid"
    methods: tuple[str, ...] = field(default_factory=all_methods)  # which of all_methods() to run
    warmup: int = 1  # untimed calls before timing (compilation happens here)
    repeats: int = 5  # timed calls, the median is reported
    budget_s: float = 20.0  # cap on the timed calls of one method at one size (repeats drop to fit)
    max_materialised_bytes: int = 2**30  # skip methods whose predicted peak memory is larger
    target_size: int = 128  # resolution of the stated target
    seed: int = 0  # inputs are torch.randn under this seed
    training: bool = False  # time forward + backward (gradients of q, k, v) instead of inference


ATTENTION_BENCH_PRESETS = {
    "full": AttentionBenchConfig(),
    "quick": AttentionBenchConfig(sizes=(32, 64, 128), repeats=3, budget_s=5.0),
    "training": AttentionBenchConfig(
        sizes=(32, 64, 128), methods=TRAINING_METHODS, training=True, max_materialised_bytes=2**31
    ),
    "training_quick": AttentionBenchConfig(
        sizes=(32, 64), methods=TRAINING_METHODS, training=True, repeats=3, budget_s=5.0
    ),
}


def _inputs(cfg: AttentionBenchConfig, size: int, device: torch.device):
    generator = torch.Generator().manual_seed(cfg.seed + size)
    shape = (cfg.batch, cfg.heads, size, size, cfg.head_dim)
    qkv = [torch.randn(shape, generator=generator).to(device) for _ in range(3)]  # q, k, v
    return [t.requires_grad_(cfg.training) for t in qkv]


def square_sizes(cfg: Any, side: int, *, dtype_bytes: int, **changes: Any) -> AttentionSizes:
    """:class:`AttentionSizes` of a ``side x side`` query grid and key grid for a benchmark config.

    ``cfg`` carries ``batch``, ``heads``, ``head_dim``, ``pool``, ``cell`` and ``topk``; ``changes``
    override any field (``affinity=...``). One builder for every benchmark.
    """
    fields = dict(
        q_grid=(side, side),
        k_grid=(side, side),
        head_dim=cfg.head_dim,
        heads=cfg.heads,
        batch=cfg.batch,
        pool=cfg.pool,
        cell=cfg.cell,
        topk=cfg.topk,
        dtype_bytes=dtype_bytes,
    )
    return AttentionSizes(**{**fields, **changes})


def _sizes(cfg: AttentionBenchConfig, size: int, dtype_bytes: int) -> AttentionSizes:
    return square_sizes(cfg, size, dtype_bytes=dtype_bytes, affinity=cfg.affinity)


def _call(method: str, cfg: AttentionBenchConfig, q, k, v):
    gpa = {"pool": cfg.pool, "cell": cfg.cell, "topk": cfg.topk, "affinity": cfg.affinity}
    if method == "sdpa":
        forward = lambda: dense_attention(q, k, v, affinity=cfg.affinity)  # noqa: E731
    elif method == "materialised":
        forward = lambda: dense_attention(q, k, v, affinity=cfg.affinity, impl="materialised")  # noqa: E731
    elif method == "phase1":
        forward = lambda: select_key_blocks(q, k, **gpa)  # noqa: E731
    else:
        backend = None if method == "auto" else method
        forward = lambda: gpa_attention(q, k, v, backend=backend, **gpa)  # noqa: E731
    if not cfg.training:
        return forward

    def step():
        for t in (q, k, v):
            t.grad = None  # every step allocates its gradients, as a training step does
        forward().sum().backward()

    return step


def bench_one(
    method: str, cfg: AttentionBenchConfig, size: int, device: torch.device
) -> dict[str, Any]:
    """Time and measure one method at one resolution; returns a record (``skipped`` says why not)."""
    q, k, v = _inputs(cfg, size, device)
    sizes = _sizes(cfg, size, q.element_size())
    record: dict[str, Any] = {"size": size, "tokens": size * size, "method": method}
    if cfg.training and method == "phase1":
        return {**record, "skipped": "phase 1 has no gradient; it runs inside every GPA method"}
    with torch.enable_grad() if cfg.training else torch.no_grad():
        problem = check_inputs(
            q, k, v, pool=cfg.pool, cell=cfg.cell, topk=cfg.topk, affinity=cfg.affinity
        )
        backend = None
        if method == "auto":
            backend = auto_backend(
                q, k, v, pool=cfg.pool, cell=cfg.cell, topk=cfg.topk, affinity=cfg.affinity
            )
        elif method in backend_names():
            backend = method
            reason = get_backend(method).can_run(problem)
            if reason is not None:
                return {**record, "skipped": reason}
        record["backend"] = backend
        model = method_cost(method, sizes, backend)
        if model is not None and method in MATERIALISED_METHODS and cfg.training:
            # Training adds the scores' gradient to the inference peak (1.5x measured on CPU at
            # 64^2 with 4 heads); twice the inference peak is the cautious estimate used to skip.
            model = replace(model, peak_bytes=2 * model.peak_bytes)
        if model is not None and not cfg.training:
            record.update(
                model_flops=model.flops,
                model_bytes_moved=model.bytes_moved,
                model_peak_bytes=model.peak_bytes,
            )
        if (
            method in MATERIALISED_METHODS
            and model is not None
            and model.peak_bytes > cfg.max_materialised_bytes
        ):
            return {
                **record,
                "skipped": f"predicted peak {model.peak_bytes / 2**30:.2f} GiB > "
                f"max_materialised_bytes={cfg.max_materialised_bytes / 2**30:.2f} GiB",
            }
        fn = _call(method, cfg, q, k, v)
        start = time.perf_counter()
        if backend == "flex":
            fn()  # compile before measuring memory: compilation allocates too
        record["first_call_s"] = time.perf_counter() - start
        start = time.perf_counter()
        _, record["peak_bytes"] = peak_memory(fn, device)  # also a warm-up call
        profiled_s = time.perf_counter() - start
        # A call that alone eats a good part of the budget has warmed up enough; fit the repeats.
        slow = profiled_s > cfg.budget_s / 4
        repeats = max(1, min(cfg.repeats, int(cfg.budget_s / profiled_s))) if slow else cfg.repeats
        timing = median_time(
            fn,
            warmup=0 if slow else cfg.warmup,
            repeats=repeats,
            budget_s=None if slow else cfg.budget_s,
            device=device,
        )
    record.update(median_s=timing["median_s"], times_s=timing["times_s"], repeats=timing["repeats"])
    return record


def phase_split(
    q, k, v, *, pool: int, cell: int, topk: int, affinity: str = "dot", repeats: int = 3
) -> dict[str, Any]:
    """Median seconds of phase 1 (selection) and of phase 2 (reference attention to the selected
    keys), each timed on its own in inference, every timed call of each (``*_times_s``), and phase
    1's share of their sum (in [0, 1] by construction: both parts are timed, never the whole)."""
    problem = check_inputs(q, k, v, pool=pool, cell=cell, topk=topk, affinity=affinity)
    with torch.no_grad():
        selection = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
        phase1 = median_time(lambda: select_key_blocks_flat(q, k, problem), repeats=repeats)
        phase2 = median_time(lambda: attend_selected(q, k, v, selection, problem), repeats=repeats)
    phase1_s, phase2_s = phase1["median_s"], phase2["median_s"]
    return {
        "phase1_s": phase1_s,
        "phase2_s": phase2_s,
        "phase1_times_s": phase1["times_s"],
        "phase2_times_s": phase2["times_s"],
        "phase1_share": phase1_s / (phase1_s + phase2_s),
    }


def summarise(records: list[dict[str, Any]], cfg: AttentionBenchConfig) -> dict[str, Any]:
    """The stated target at ``cfg.target_size``: speed of ``auto`` against ``sdpa`` and memory
    against attention with a materialised score matrix (measured if it ran, else the model)."""
    at = {r["method"]: r for r in records if r["size"] == cfg.target_size}
    auto, sdpa, materialised = at.get("auto", {}), at.get("sdpa", {}), at.get("materialised", {})
    summary: dict[str, Any] = {"size": cfg.target_size, "auto_backend": auto.get("backend")}
    if "median_s" in auto and "median_s" in sdpa:
        summary["speedup_auto_vs_sdpa"] = sdpa["median_s"] / auto["median_s"]
        summary["speed_target_met"] = summary["speedup_auto_vs_sdpa"] >= 5
    mat_peak = materialised.get("peak_bytes", materialised.get("model_peak_bytes"))
    if mat_peak and auto.get("peak_bytes"):
        summary["materialised_peak_bytes"] = mat_peak
        summary["materialised_peak_source"] = (
            "measured" if "peak_bytes" in materialised else "model"
        )
        summary["auto_peak_bytes"] = auto["peak_bytes"]
        summary["memory_ratio_materialised_vs_auto"] = mat_peak / auto["peak_bytes"]
        summary["memory_target_met"] = summary["memory_ratio_materialised_vs_auto"] >= 10
    return summary


def summarise_training(records: list[dict[str, Any]], cfg: AttentionBenchConfig) -> dict[str, Any]:
    """At ``cfg.target_size``: peak memory and time of a training step of each GPA backend against
    dense attention, fused (``sdpa``) and with its score matrix (``materialised``)."""
    at = {r["method"]: r for r in records if r["size"] == cfg.target_size and "median_s" in r}
    summary: dict[str, Any] = {"size": cfg.target_size}
    for method, record in at.items():
        summary[f"{method}_peak_bytes"] = record["peak_bytes"]
        summary[f"{method}_median_s"] = record["median_s"]
    for gpa in ("reference", "recompute"):
        for dense in ("sdpa", "materialised"):
            if gpa in at and dense in at:
                summary[f"memory_ratio_{gpa}_vs_{dense}"] = (
                    at[gpa]["peak_bytes"] / at[dense]["peak_bytes"]
                )
                summary[f"speedup_{gpa}_vs_{dense}"] = at[dense]["median_s"] / at[gpa]["median_s"]
    return summary


def run_benchmark(
    cfg: AttentionBenchConfig, device: str | torch.device = "cpu", log=print
) -> dict[str, Any]:
    """Every method of ``cfg.methods`` at every size; returns the payload written to JSON."""
    device = torch.device(device)
    records = []
    for size in cfg.sizes:
        for method in cfg.methods:
            record = bench_one(method, cfg, size, device)
            records.append(record)
            if "skipped" in record:
                log(f"{size:>4}^2 {method:<12} skipped: {record['skipped']}")
            else:
                log(
                    f"{size:>4}^2 {method:<12} {record['median_s'] * 1e3:10.2f} ms  "
                    f"peak {record['peak_bytes'] / 2**20:9.2f} MiB"
                    + (
                        f"  (model {record['model_peak_bytes'] / 2**20:.2f} MiB)"
                        if "model_peak_bytes" in record
                        else ""
                    )
                    + (f"  backend={record['backend']}" if method == "auto" else "")
                )
    mode = (
        "training step (forward, then backward of out.sum() into fresh gradients of q, k and v)"
        if cfg.training
        else "inference under torch.no_grad()"
    )
    return {
        "config": asdict(cfg),
        "mode": f"{mode}; float32; query grid = key grid",
        "device_type": device.type,
        "records": records,
        "summary": summarise_training(records, cfg) if cfg.training else summarise(records, cfg),
    }
