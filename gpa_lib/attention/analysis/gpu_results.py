"""The stored GPU runs, read for the chapters: where the layer's time goes, how far each part is from
its floor, the general-purpose options beside it, and the kernel issue's targets, met or not.

Everything here works from the JSON in ``data/results/`` (no GPU needed): a kernel benchmark
(``kernel_bench_<gpu>.json``, :mod:`gpa_lib.bench.kernel`) and the pose training runs of the same GPU
(``pose_train_<gpu>.json`` of ``python -m gpa_lib.bench pose-gpu``, and the ``pose`` list of a
``probe_phase1_pose_<gpu>.json``). The newest complete benchmark of each GPU is the one reported, so
a rerun (with a fused phase-1 kernel, say) replaces the old numbers without a change here.

Names of the methods are the benchmark's: ``cuda`` is phase 2 by the fused kernel on a fixed
selection, ``cuda_gpa`` the whole ``gpa_attention(backend="cuda")``, ``phase1`` phase 1 timed alone,
``sdpa`` dense flash attention, ``flex`` FlexAttention on the same selection. Phase 1 *in the layer*
is the layer's time less phase 2's (same pass, forward): what the ``cuda`` backend spends outside the
fused kernel, the selection and the glue around it.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gpa_lib.attention.analysis.complexity import (
    AttentionSizes,
    phase1_cost,
    phase1_floor,
    phase2_cost,
    phase2_floor,
    phase2_flops,
)


def _folder(results_dir: str | Path | None) -> Path:
    from gpa_lib.results import RESULTS_DIR

    return Path(results_dir) if results_dir is not None else RESULTS_DIR


def _gpu_of(provenance: dict[str, Any]) -> str:
    return provenance.get("gpu") or (provenance.get("device") or {}).get("gpu") or "unknown GPU"


def newest_kernel_runs(results_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """GPU name -> the newest complete ``kernel_bench_*.json`` payload of that GPU (quick runs and
    runs stopped by their time budget left out), newest by ``provenance.date``."""
    from gpa_lib.results import read_result

    newest: dict[str, dict[str, Any]] = {}
    for path in sorted(_folder(results_dir).glob("kernel_bench_*.json")):
        if path.stem.endswith("_quick"):
            continue
        payload = read_result(path.stem, path.parent)
        if not payload.get("complete", False):
            continue
        gpu = _gpu_of(payload["provenance"])
        if gpu not in newest or payload["provenance"]["date"] > newest[gpu]["provenance"]["date"]:
            newest[gpu] = payload
    return newest


def stored_pose_runs(gpu: str, results_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Every stored pose training run on ``gpu``, oldest first, each with the ``date`` and ``source``
    file it comes from: the ``runs`` of ``pose_train_*.json`` and the ``pose`` of
    ``probe_phase1_pose_*.json``."""
    runs = []
    for pattern, key in (("probe_phase1_pose_*.json", "pose"), ("pose_train_*.json", "runs")):
        for path in sorted(_folder(results_dir).glob(pattern)):
            document = json.loads(path.read_text())
            provenance = document.get("provenance", {})
            if _gpu_of(provenance) != gpu:
                continue
            for run in document.get(key, []):
                runs.append({**run, "date": provenance.get("date", "")[:10], "source": path.name})
    return sorted(runs, key=lambda run: run["date"])  # stable: files of one date keep their order


def kernel_ms(payload: dict[str, Any], method: str, pass_: str, side: int) -> float | None:
    """Median milliseconds of one measurement (None: not measured, or skipped)."""
    for record in payload["records"]:
        if (record["method"], record["pass"], record["side"]) == (method, pass_, side):
            return record.get("median_ms")
    return None


def kernel_note(payload: dict[str, Any], method: str, pass_: str, side: int) -> str:
    """Why a measurement is missing, in a few words ('' when it was measured)."""
    for record in payload["records"]:
        if (record["method"], record["pass"], record["side"]) == (method, pass_, side):
            reason = record.get("skipped", "")
            if "NoValidChoicesError" in reason:
                return "FlexAttention's backward did not compile (16-token blocks)"
            if reason.startswith("out of memory"):
                return "out of memory"
            return reason.split(":")[0][:60]
    return "not in this run"


def benchmark_sizes(payload: dict[str, Any], side: int) -> AttentionSizes:
    """The cost model's sizes of one grid of a stored benchmark (its config's settings)."""
    cfg = payload["config"]
    dtype_bytes = {"bfloat16": 2, "float16": 2, "float32": 4}[cfg["dtype"]]
    return AttentionSizes(
        q_grid=(side, side),
        k_grid=(side, side),
        head_dim=cfg["head_dim"],
        heads=cfg["heads"],
        batch=cfg["batch"],
        pool=cfg["pool"],
        cell=cfg["cell"],
        topk=cfg["topk"],
        dtype_bytes=dtype_bytes,
        affinity=cfg.get("affinity", "dot"),
    )


def _rates(payload: dict[str, Any]) -> dict[str, float]:
    ceilings = payload["ceilings"]
    return {
        "flops_per_s": float(ceilings["bf16_flops_per_s"]),
        "bytes_per_s": float(ceilings["bytes_per_s"]),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def phase1_in_layer_ms(payload: dict[str, Any], side: int) -> float | None:
    """The layer's forward time less phase 2's: phase 1 and the glue around the fused kernel."""
    layer, phase2 = (
        kernel_ms(payload, "cuda_gpa", "fwd", side),
        kernel_ms(payload, "cuda", "fwd", side),
    )
    return layer - phase2 if layer is not None and phase2 is not None else None


def layer_split(payload: dict[str, Any]) -> pd.DataFrame:
    """Per grid: phase 2 (fused kernel), the whole layer, phase 1 in the layer and alone, and the
    share of the layer's time spent outside phase 2, forward and forward+backward (ms, %)."""
    rows = []
    for side in payload["config"]["sizes"]:
        ms = {
            (method, pass_): kernel_ms(payload, method, pass_, side)
            for method in ("cuda", "cuda_gpa", "phase1")
            for pass_ in ("fwd", "fwd+bwd")
        }
        share = {}
        for pass_ in ("fwd", "fwd+bwd"):
            layer, phase2 = ms["cuda_gpa", pass_], ms["cuda", pass_]
            share[pass_] = None if layer is None or phase2 is None else 100 * (1 - phase2 / layer)
        rows.append(
            {
                "grid": f"{side}²",
                "phase 2 fwd (ms)": ms["cuda", "fwd"],
                "phase 2 fwd+bwd (ms)": ms["cuda", "fwd+bwd"],
                "layer fwd (ms)": ms["cuda_gpa", "fwd"],
                "layer fwd+bwd (ms)": ms["cuda_gpa", "fwd+bwd"],
                "phase 1 in the layer (ms)": phase1_in_layer_ms(payload, side),
                "phase 1 alone, benchmark (ms)": ms["phase1", "fwd"],
                "outside phase 2, fwd (%)": share["fwd"],
                "outside phase 2, fwd+bwd (%)": share["fwd+bwd"],
            }
        )
    return pd.DataFrame(rows).set_index("grid")


def floor_distances(payload: dict[str, Any]) -> pd.DataFrame:
    """Per grid: each part's roofline floor at the run's own ceilings, its measured time, and the
    ratio (measured / floor). Phase 2's floors are the benchmark's (``per_size``); phase 1's is the
    two-pass floor of :func:`~gpa_lib.attention.analysis.complexity.phase1_floor`."""
    floors = {entry["side"]: entry for entry in payload.get("per_size", [])}
    rows = []
    for side in payload["config"]["sizes"]:
        entry = floors.get(side, {})
        fwd = kernel_ms(payload, "cuda", "fwd", side)
        fwd_bwd = kernel_ms(payload, "cuda", "fwd+bwd", side)
        p1_floor = 1e3 * phase1_floor(benchmark_sizes(payload, side), **_rates(payload)).floor_s
        p1 = phase1_in_layer_ms(payload, side)
        rows.append(
            {
                "grid": f"{side}²",
                "phase 2 fwd floor (ms)": entry.get("floor_fwd_ms"),
                "phase 2 fwd / floor": _ratio(fwd, entry.get("floor_fwd_ms")),
                "phase 2 fwd+bwd floor (ms)": entry.get("floor_fwd_bwd_ms"),
                "phase 2 fwd+bwd / floor": _ratio(fwd_bwd, entry.get("floor_fwd_bwd_ms")),
                "phase 1 two-pass floor (ms)": p1_floor,
                "phase 1 in the layer / floor": _ratio(p1, p1_floor),
            }
        )
    return pd.DataFrame(rows).set_index("grid")


def against_others(payload: dict[str, Any]) -> pd.DataFrame:
    """Per grid: the whole layer against dense SDPA (flash), and phase 2 against FlexAttention on the
    same selection; speed-ups are the other's time over ours (above 1: ours is faster)."""
    rows = []
    for side in payload["config"]["sizes"]:
        row: dict[str, Any] = {"grid": f"{side}²"}
        for pass_ in ("fwd", "fwd+bwd"):
            sdpa = kernel_ms(payload, "sdpa", pass_, side)
            row[f"SDPA {pass_} (ms)"] = sdpa
            row[f"layer speed-up over SDPA, {pass_}"] = _ratio(
                sdpa, kernel_ms(payload, "cuda_gpa", pass_, side)
            )
        for pass_ in ("fwd", "fwd+bwd"):
            flex = kernel_ms(payload, "flex", pass_, side)
            row[f"Flex {pass_} (ms)"] = flex
            row[f"phase 2 speed-up over Flex, {pass_}"] = _ratio(
                flex, kernel_ms(payload, "cuda", pass_, side)
            )
        notes = [
            f"{name} {pass_}: {kernel_note(payload, name, pass_, side)}"
            for name in ("sdpa", "flex")
            for pass_ in ("fwd", "fwd+bwd")
            if kernel_ms(payload, name, pass_, side) is None
        ]
        row["not measured"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows).set_index("grid")


# --- the targets -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One target of the kernel issue: a measured value against a bound."""

    key: str  # short name, also the row's label in tables and tests
    text: str  # the target in words
    op: str  # "<", "<=" or ">=": value op bound means met
    bound: float | None  # None: the bound itself comes from a stored measurement
    unit: str  # of the value and the bound


#: The targets of the kernel issue (issue 23), on an H200. ``side`` is the grid they are stated at.
TARGET_SIDE, LARGE_SIDE = 256, 1024
TARGETS = (
    Target("layer_fwd_bwd_1024", "whole GPA layer, fwd+bwd at 1024²", "<", 50.0, "ms"),
    Target(
        "phase1_over_floor_1024", "phase 1 within 3× its two-pass floor at 1024²", "<=", 3.0, "×"
    ),
    Target(
        "layer_vs_sdpa_fwd_256", "whole layer ≥ 25× faster than SDPA at 256², fwd", ">=", 25.0, "×"
    ),
    Target(
        "layer_vs_sdpa_fwd_bwd_256",
        "whole layer ≥ 25× faster than SDPA at 256², fwd+bwd",
        ">=",
        25.0,
        "×",
    ),
    Target(
        "phase2_fwd_bwd_over_floor",
        "phase 2 fwd+bwd within 3× its floor (worst grid)",
        "<=",
        3.0,
        "×",
    ),
    Target(
        "phase2_vs_flex_fwd_256",
        "phase 2 fwd ≥ 1.2× faster than FlexAttention at 256²",
        ">=",
        1.2,
        "×",
    ),
    Target("pose_runs", "gpa-gpu pose training through backend=None runs", ">=", 1.0, "run"),  # 1: ran
    Target("pose_step", "its step ≤ half the reference backend's step", "<=", None, "ms"),
    Target("pose_memory", "its peak memory below dense-gpu's (SDPA)", "<", None, "GB"),
)
_OPS = {"<": operator.lt, "<=": operator.le, ">=": operator.ge}


def _newest(runs: list[dict[str, Any]], preset: str, backend: str | None) -> dict[str, Any] | None:
    for run in reversed(runs):
        if run.get("preset") == preset and (backend is None or run.get("backend") == backend):
            return run
    return None


def pose_target_values(runs: list[dict[str, Any]]) -> dict[str, tuple[Any, Any, str]]:
    """The three pose targets from stored pose runs (newest of each kind): key -> (value, bound, note)."""
    auto = _newest(runs, "gpa-gpu", "auto")
    reference = _newest(runs, "gpa-gpu", "reference")
    dense = _newest(runs, "dense-gpu", None)
    half_reference = (
        0.5 * reference["step_time_ms"] if reference and "step_time_ms" in reference else None
    )
    dense_gb = dense["peak_memory_bytes"] / 1e9 if dense and "peak_memory_bytes" in dense else None
    if auto is None:
        absent = (None, None, "not run")
        return {"pose_runs": absent, "pose_step": (None, half_reference, "not run"),
                "pose_memory": (None, dense_gb, "not run")}  # fmt: skip
    if auto.get("error") or not auto.get("complete", False):
        why = auto.get("error") or auto.get("stopped") or "did not finish"
        crashed = f"the run failed ({auto['date']})"
        return {
            "pose_runs": (0.0, 1.0, f"failed: {why.split(' in ')[0][:90]}"),
            "pose_step": (None, half_reference, crashed),
            "pose_memory": (None, dense_gb, crashed),
        }
    return {
        "pose_runs": (1.0, 1.0, f"ran ({auto['date']})"),
        "pose_step": (auto.get("step_time_ms"), half_reference, "batch 8, 256 px"),
        "pose_memory": (
            auto["peak_memory_bytes"] / 1e9 if "peak_memory_bytes" in auto else None,
            dense_gb,
            "peak allocated",
        ),
    }


def target_values(
    payload: dict[str, Any], pose_runs: list[dict[str, Any]] | None = None
) -> dict[str, tuple[Any, Any, str]]:
    """Every target's (value, bound, note) from a kernel benchmark and the pose runs of its GPU."""
    sides = payload["config"]["sizes"]
    over_floor = floor_distances(payload)["phase 2 fwd+bwd / floor"].dropna()
    worst = (
        (float(over_floor.max()), f"worst at {over_floor.idxmax()}")
        if len(over_floor)
        else (None, "")
    )
    layer_1024 = kernel_ms(payload, "cuda_gpa", "fwd+bwd", LARGE_SIDE)
    p1_ratio = (
        floor_distances(payload).loc[f"{LARGE_SIDE}²", "phase 1 in the layer / floor"]
        if LARGE_SIDE in sides
        else None
    )
    sdpa = {
        p: _ratio(
            kernel_ms(payload, "sdpa", p, TARGET_SIDE),
            kernel_ms(payload, "cuda_gpa", p, TARGET_SIDE),
        )
        for p in ("fwd", "fwd+bwd")
    }
    flex = _ratio(
        kernel_ms(payload, "flex", "fwd", TARGET_SIDE),
        kernel_ms(payload, "cuda", "fwd", TARGET_SIDE),
    )
    bounds = {t.key: t.bound for t in TARGETS}
    values = {
        "layer_fwd_bwd_1024": (layer_1024, bounds["layer_fwd_bwd_1024"], "cuda_gpa"),
        "phase1_over_floor_1024": (
            p1_ratio,
            bounds["phase1_over_floor_1024"],
            "layer less phase 2, fwd",
        ),
        "layer_vs_sdpa_fwd_256": (sdpa["fwd"], bounds["layer_vs_sdpa_fwd_256"], "SDPA / cuda_gpa"),
        "layer_vs_sdpa_fwd_bwd_256": (
            sdpa["fwd+bwd"],
            bounds["layer_vs_sdpa_fwd_bwd_256"],
            "SDPA / cuda_gpa",
        ),
        "phase2_fwd_bwd_over_floor": (worst[0], bounds["phase2_fwd_bwd_over_floor"], worst[1]),
        "phase2_vs_flex_fwd_256": (flex, bounds["phase2_vs_flex_fwd_256"], "same selection"),
    }
    values.update(pose_target_values(pose_runs or []))
    return values


def verdict(target: Target, value: Any, bound: Any) -> str:
    """``met``, ``not met`` or ``not measured`` (no value, or no bound to hold it against)."""
    if value is None or bound is None:
        return "not measured"
    return "met" if _OPS[target.op](float(value), float(bound)) else "not met"


def target_table(
    payload: dict[str, Any], pose_runs: list[dict[str, Any]] | None = None
) -> pd.DataFrame:
    """The issue's targets as measured by ``payload`` (and ``pose_runs``): one row per target with
    its bound, the measured value, the verdict and a note."""
    values = target_values(payload, pose_runs)
    rows = []
    for target in TARGETS:
        value, bound, note = values[target.key]
        if target.unit == "run":
            shown = {None: "-", 0.0: "failed", 1.0: "ran"}[value]
        else:
            shown = "-" if value is None else f"{value:.3g} {target.unit}"
        rows.append(
            {
                "target": target.text,
                "bound": "-" if bound is None else f"{target.op} {bound:.3g} {target.unit}",
                "measured": shown,
                "verdict": verdict(target, value, bound),
                "note": note,
                "key": target.key,
                "value": value,
            }
        )
    return pd.DataFrame(rows).set_index("key")


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many targets of a :func:`target_table` are met, not met and not measured."""
    counts = table["verdict"].value_counts()
    return {name: int(counts.get(name, 0)) for name in ("met", "not met", "not measured")}


def complexity_against_measured(
    payload: dict[str, Any], side: int = LARGE_SIDE
) -> dict[str, float]:
    """Chapter 1's count of phase 1 against phase 2 at one grid of a stored benchmark, beside the
    measured split: FLOP share and ratio by the cost model (reference phase 1, fused phase 2 forward),
    time share and ratio as measured (phase 1 in the layer against the fused phase 2, forward)."""
    sizes = benchmark_sizes(payload, side)
    p1_flops, p2_flops = phase1_cost(sizes).flops, phase2_flops(sizes)
    p1_ms, p2_ms = phase1_in_layer_ms(payload, side), kernel_ms(payload, "cuda", "fwd", side)
    return {
        "side": side,
        "flop_share_pct": 100 * p1_flops / (p1_flops + p2_flops),
        "flop_ratio": p1_flops / p2_flops,
        "reference_phase2_flop_ratio": p1_flops / phase2_cost(sizes).flops,
        "time_share_pct": float("nan")
        if p1_ms is None or p2_ms is None
        else 100 * p1_ms / (p1_ms + p2_ms),
        "time_ratio": float("nan") if p1_ms is None or not p2_ms else p1_ms / p2_ms,
        "phase2_fwd_over_floor": _ratio(p2_ms, 1e3 * phase2_floor(sizes, **_rates(payload)).floor_s)
        or float("nan"),
    }
