"""The kernel issue's targets (issue 23, on an H200), met or not, from the stored GPU runs; and the
numbers chapter 2 states about them.

A target's value comes from the newest complete kernel benchmark of a GPU
(:func:`~gpa_lib.attention.analysis.gpu_results.newest_kernel_runs`) and the pose runs stored for it
(:func:`~gpa_lib.attention.analysis.gpu_results.stored_pose_runs`): a rerun replaces the verdicts
without a change here. A target without a value, or whose bound comes from a run that is missing,
is ``not measured``, never met.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gpa_lib.attention.analysis.gpu_results import (
    LARGE_SIDE,
    TARGET_SIDE,
    _ratio,
    floor_distances,
    kernel_ms,
)


@dataclass(frozen=True)
class Target:
    """One target of the kernel issue: a measured value against a bound."""

    key: str  # short name, also the row's label in tables and tests
    text: str  # the target in words
    op: str  # "<", "<=" or ">=": value op bound means met
    bound: float | None  # None: the bound itself comes from a stored measurement
    unit: str  # of the value and the bound


#: The targets of the kernel issue (issue 23), on an H200, at the grids TARGET_SIDE and LARGE_SIDE.
TARGETS = (
    Target("layer_fwd_bwd_1024", "whole GPA layer fwd+bwd under 50 ms at 1024²", "<", 50.0, "ms"),
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
    Target(
        "pose_runs", "gpa-gpu pose training through backend=None runs", ">=", 1.0, "run"
    ),  # 1: ran
    Target("pose_step", "that run's step ≤ half the reference backend's", "<=", None, "ms"),
    Target("pose_memory", "that run's peak memory below dense-gpu's (SDPA)", "<", None, "GB"),
)
BY_KEY = {target.key: target for target in TARGETS}
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
    if not auto.get("error") and not auto.get("complete", False):  # stopped by its budget
        stopped = f"the gpa-gpu run stopped on {auto['date']}: {auto.get('stopped', '')}"
        return {
            "pose_runs": (None, 1.0, stopped),
            "pose_step": (None, half_reference, stopped),
            "pose_memory": (None, dense_gb, stopped),
        }
    if auto.get("error"):
        why = auto["error"]
        crashed = f"the gpa-gpu run failed on {auto['date']}"
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


def targets_in_words(table: pd.DataFrame) -> str:
    """The verdicts of a :func:`target_table` as one sentence, the targets grouped by verdict."""
    parts = []
    for name in ("met", "not met", "not measured"):
        rows = table[table["verdict"] == name]
        if not len(rows):
            continue
        items = []
        for key, row in rows.iterrows():
            if name == "not measured":
                items.append(f"{row['target']} ({row['note']})")
            elif BY_KEY[key].bound is None:  # a bound from a stored run: say which
                items.append(f"{row['target']} ({row['measured']}, bound {row['bound']})")
            else:
                items.append(f"{row['target']} ({row['measured']})")
        parts.append(f"{name}: " + "; ".join(items))
    return ". ".join(part[0].upper() + part[1:] for part in parts) + "."


def pose_numbers(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Step time (ms) and peak memory (GB) of the newest stored pose runs: ``gpa-gpu`` on the
    reference backend and through ``backend=None`` (``auto``), and ``dense-gpu``; NaN where absent,
    and ``auto_status`` in words."""
    nan = float("nan")
    numbers: dict[str, Any] = {}
    for name, preset, backend in (
        ("reference", "gpa-gpu", "reference"),
        ("auto", "gpa-gpu", "auto"),
        ("dense", "dense-gpu", None),
    ):
        run = _newest(runs, preset, backend) or {}
        numbers[f"pose_{name}_step_ms"] = run.get("step_time_ms", nan)
        peak = run.get("peak_memory_bytes")
        numbers[f"pose_{name}_peak_gb"] = nan if peak is None else peak / 1e9
        numbers[f"pose_{name}_batch"] = run.get("batch_size", nan)
    auto = _newest(runs, "gpa-gpu", "auto")
    if auto is None:
        numbers["pose_auto_status"] = "has not been run"
    elif auto.get("error") or not auto.get("complete", False):
        numbers["pose_auto_status"] = f"failed on {auto['date']}: " + (
            auto.get("error") or auto.get("stopped") or "it did not finish"
        )
    else:
        numbers["pose_auto_status"] = f"ran on {auto['date']}"
    return numbers


def probe_numbers(probe: dict[str, Any] | None, side: int = LARGE_SIDE) -> dict[str, Any]:
    """Phase 1 at ``side`` in the probe: ms at score chunks of 2^22 (the CPU default), 2^26 (the
    ``cuda`` backend's) and 2^30, with TF32 at 2^30, and the share of cells TF32 changed (%)."""
    from gpa_lib.attention.analysis.gpu_results import probe_ms

    nan = float("nan")
    agree = [
        r["agree_with_first"]
        for r in (probe or {}).get("phase1", [])
        if r["side"] == side and r["tf32"] and r.get("agree_with_first") is not None
    ]
    return {
        "probe_date": ((probe or {}).get("provenance") or {}).get("date", "no probe stored")[:10],
        "probe_chunk22_ms": probe_ms(probe, side, 22) or nan,
        "probe_chunk26_ms": probe_ms(probe, side, 26) or nan,
        "probe_chunk30_ms": probe_ms(probe, side, 30) or nan,
        "probe_chunk30_tf32_ms": probe_ms(probe, side, 30, tf32=True) or nan,
        "probe_tf32_changed_pct": 100 * (1 - min(agree)) if agree else nan,
    }


def phase1_alone_note(payload: dict[str, Any], side: int = LARGE_SIDE) -> str:
    """Phase 1 timed alone against phase 1 inside the layer, at ``side``, in a sentence."""
    from gpa_lib.attention.analysis.gpu_results import phase1_in_layer_ms

    alone, inside = kernel_ms(payload, "phase1", "fwd", side), phase1_in_layer_ms(payload, side)
    if alone is None or inside is None:
        return f"Phase 1 alone or the whole layer was not measured at {side}²."
    text = (
        f"At {side}², the benchmark's `phase1` method took {alone:.0f} ms, phase 1 inside the layer "
        f"{inside:.0f} ms"
    )
    if alone > 1.2 * inside:
        return (
            f"{text}: phase 1 alone took longer than the whole layer. The `phase1` method of that run "
            "called the selection with the CPU's default score chunk, while the `cuda` backend uses "
            "a larger one; the benchmark now times the backend's chunk."
        )
    return text + "."


def chapter_numbers(
    payload: dict[str, Any] | None,
    pose_runs: list[dict[str, Any]] | None = None,
    probe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What chapter 2 states about a stored GPU run, by glue name (without the chapter prefix).

    Without a run every number is NaN and every text says that nothing was measured, so that the
    chapter's prose still renders and says so.
    """
    from gpa_lib.attention.analysis.gpu_results import (
        against_others,
        layer_split,
        phase1_in_layer_ms,
    )

    nan = float("nan")
    if payload is None:
        numbers: dict[str, Any] = {
            k: nan
            for k in (
                "layer_fwd_bwd_large_ms", "layer_fwd_large_ms", "phase2_fwd_bwd_large_ms",
                "phase2_fwd_large_ms", "outside_phase2_large_pct", "outside_phase2_small_pct",
                "phase1_in_layer_large_ms", "phase1_alone_large_ms", "phase1_floor_large_ms",
                "phase1_over_floor_large", "phase2_fwd_over_floor_min", "phase2_fwd_over_floor_max",
                "phase2_fwd_bwd_over_floor_min", "phase2_fwd_bwd_over_floor_max",
                "layer_vs_sdpa_fwd_small", "layer_vs_sdpa_fwd_bwd_small", "phase2_vs_flex_fwd_small",
                "flex_fwd_small_ms", "phase2_fwd_small_ms", "targets_total", "targets_met",
                "targets_not_met", "targets_unmeasured",
            )
        }  # fmt: skip
        none = "no GPU run is stored in data/results/"
        return numbers | pose_numbers(pose_runs or []) | probe_numbers(probe) | {
            "large_grid": f"{LARGE_SIDE}²", "small_grid": f"{TARGET_SIDE}²", "gpu": none, "date": none, "commit": none, "torch": none,
            "targets_in_words": f"Not measured: {none}.", "phase1_alone_note": none,
        }  # fmt: skip
    provenance = payload["provenance"]
    split, others = layer_split(payload), against_others(payload)
    floors = floor_distances(payload)
    large, small = f"{LARGE_SIDE}²", f"{TARGET_SIDE}²"

    def cell(table: pd.DataFrame, row: str, column: str) -> float:
        value = table[column].get(row) if row in table.index else None
        return nan if value is None or pd.isna(value) else float(value)

    table = target_table(payload, pose_runs)
    counts = verdict_counts(table)
    return {
        "gpu": provenance.get("gpu") or provenance["device"].get("gpu"),
        "date": provenance["date"][:10],
        "commit": provenance["commit"][:7],
        "torch": provenance["versions"]["torch"],
        "large_grid": large,
        "small_grid": small,
        "layer_fwd_bwd_large_ms": cell(split, large, "layer fwd+bwd (ms)"),
        "layer_fwd_large_ms": cell(split, large, "layer fwd (ms)"),
        "phase2_fwd_bwd_large_ms": cell(split, large, "phase 2 fwd+bwd (ms)"),
        "phase2_fwd_large_ms": cell(split, large, "phase 2 fwd (ms)"),
        "outside_phase2_large_pct": cell(split, large, "outside phase 2, fwd+bwd (%)"),
        "outside_phase2_small_pct": cell(split, small, "outside phase 2, fwd+bwd (%)"),
        "phase1_in_layer_large_ms": phase1_in_layer_ms(payload, LARGE_SIDE) or nan,
        "phase1_alone_large_ms": cell(split, large, "phase 1 alone, benchmark (ms)"),
        "phase1_floor_large_ms": cell(floors, large, "phase 1 two-pass floor (ms)"),
        "phase1_over_floor_large": cell(floors, large, "phase 1 in the layer / floor"),
        "phase2_fwd_over_floor_min": float(floors["phase 2 fwd / floor"].min()),
        "phase2_fwd_over_floor_max": float(floors["phase 2 fwd / floor"].max()),
        "phase2_fwd_bwd_over_floor_min": float(floors["phase 2 fwd+bwd / floor"].min()),
        "phase2_fwd_bwd_over_floor_max": float(floors["phase 2 fwd+bwd / floor"].max()),
        "layer_vs_sdpa_fwd_small": cell(others, small, "layer speed-up over SDPA, fwd"),
        "layer_vs_sdpa_fwd_bwd_small": cell(others, small, "layer speed-up over SDPA, fwd+bwd"),
        "phase2_vs_flex_fwd_small": cell(others, small, "phase 2 speed-up over Flex, fwd"),
        "flex_fwd_small_ms": cell(others, small, "Flex fwd (ms)"),
        "phase2_fwd_small_ms": cell(split, small, "phase 2 fwd (ms)"),
        "targets_total": len(table),
        "targets_met": counts["met"],
        "targets_not_met": counts["not met"],
        "targets_unmeasured": counts["not measured"],
        "targets_in_words": targets_in_words(table),
        "phase1_alone_note": phase1_alone_note(payload),
        **pose_numbers(pose_runs or []),
        **probe_numbers(probe),
    }
