"""Chapter 1's timed studies: inference over resolution, training steps, phase 1 against phase 2.

Times are this machine's, taken as it was loaded when the chapter ran; every comparison is worded by
:func:`~gpa_lib.attention.analysis.measure.speed_words` and every growth by
:func:`~gpa_lib.attention.analysis.measure.growth_words` from the range of the timed calls, so
"faster" or "linear" appears only when the ranges allow it. Memory is deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from gpa_lib.attention.analysis import figures
from gpa_lib.attention.analysis.benchmark import AttentionBenchConfig, bench_one, phase_split
from gpa_lib.attention.analysis.complexity import (
    AttentionSizes,
    authors_defaults,
    dense_cost,
    method_cost,
    phase1_cost,
    phase2_cost,
)
from gpa_lib.attention.analysis.measure import growth_words, speed_words
from gpa_lib.attention.analysis.study import Study, square
from gpa_lib.stats import direction_verdict

MiB = 2**20
CPU = torch.device("cpu")


# -------------------------------------------------------- predicted against measured, inference


def _sweep_row(record: dict, model, machine: dict[str, float]) -> dict[str, Any]:
    times = record.get("times_s") or [np.nan]
    return {
        "size": record["size"],
        "tokens": record["tokens"],
        "method": record["method"],
        "backend": record.get("backend"),
        "measured_ms": 1e3 * record["median_s"] if "median_s" in record else np.nan,
        "fastest_ms": 1e3 * min(times),
        "slowest_ms": 1e3 * max(times),
        "measured_mib": record["peak_bytes"] / MiB if "peak_bytes" in record else np.nan,
        "model_mib": model.peak_bytes / MiB if model else np.nan,
        "model_ms": 1e3 * model.time_s(machine["flops_per_s"], machine["bytes_per_s"])
        if model
        else np.nan,
    }


def resolution_sweep(
    config: AttentionBenchConfig, sizes: AttentionSizes, machine: dict[str, float]
) -> Study:
    """Every method of ``config`` at every size of it, inference: measured peak memory and time
    (median, fastest and slowest call) beside the model and the roofline prediction at this CPU's
    measured rates. Glues the model's worst memory error, the measured/predicted time range, and
    at the largest size ``auto`` against ``sdpa`` (ratio of medians, and in words from the range)
    and its memory against a materialised score matrix."""
    rows, records = [], []
    for side in config.sizes:
        for method in config.methods:
            record = bench_one(method, config, side, CPU)
            model = method_cost(method, square(sizes, side), record.get("backend"))
            rows.append(_sweep_row(record, model, machine))
            records.append(record)
    sweep = pd.DataFrame(rows)
    top = max(config.sizes)
    largest = sweep[sweep["size"] == top].set_index("method")
    modelled = sweep.dropna(subset=["measured_mib", "model_mib"])
    time_ratio = (sweep.measured_ms / sweep.model_ms).dropna()
    at_top = {r["method"]: r for r in records if r["size"] == top and "times_s" in r}
    speed = speed_words(at_top["auto"]["times_s"], at_top["sdpa"]["times_s"], "auto", "sdpa")
    values = {
        "ch1_mem_model_max_err_pct": float(
            100 * (modelled.measured_mib / modelled.model_mib - 1).abs().max()
        ),
        "ch1_sweep_max_size": top,
        "ch1_speedup_auto_sdpa": float(speed["ratio"]),
        "ch1_speed_auto_sdpa_words": speed["phrase"],
        "ch1_auto_backend": str(largest.loc["auto", "backend"]),
        "ch1_mem_ratio_measured": float(
            dense_cost(square(sizes, top)).peak_bytes / MiB / largest.loc["auto", "measured_mib"]
        ),
        "ch1_time_ratio_min": float(time_ratio.min()),
        "ch1_time_ratio_max": float(time_ratio.max()),
        "ch1_sweep_repeats": config.repeats,
    }
    fig = figures.sweep_figure(sweep, config.methods)
    return Study(values, table=sweep.round(2), figure=fig, data={"sweep": sweep})


# ------------------------------------------------------------------------------ training


TRAINING_METHODS = ("sdpa", "materialised", "reference", "recompute", "cpu")
#: glue key: (column, numerator method, denominator method) at the largest training size
TRAINING_RATIOS = {
    "ch1_train_ref_over_sdpa": ("peak_mib", "reference", "sdpa"),
    "ch1_train_rec_over_sdpa": ("peak_mib", "recompute", "sdpa"),
    "ch1_train_rec_over_ref": ("peak_mib", "recompute", "reference"),
    "ch1_train_rec_time_over_ref": ("ms", "recompute", "reference"),
    "ch1_train_speedup_rec_sdpa": ("ms", "sdpa", "recompute"),
    "ch1_train_speedup_cpu_sdpa": ("ms", "sdpa", "cpu"),
    "ch1_train_cpu_time_over_rec": ("ms", "cpu", "recompute"),
    "ch1_train_cpu_mem_over_rec": ("peak_mib", "cpu", "recompute"),
}
#: glue key: (method, against) whose times at the largest size are put into words
TRAINING_SPEED_WORDS = {
    "ch1_train_speed_rec_sdpa": ("recompute", "sdpa"),
    "ch1_train_speed_cpu_sdpa": ("cpu", "sdpa"),
    "ch1_train_speed_cpu_rec": ("cpu", "recompute"),
    "ch1_train_speed_rec_ref": ("recompute", "reference"),
}
GPA_TRAINING = ("reference", "recompute", "cpu")


def _growth_sentence(records: list[dict], methods: Sequence[str]) -> str:
    """Which GPA backends' step time grew linearly, which quadratically, which the timed calls
    cannot tell, over the sizes of ``records``."""
    groups: dict[str, list[str]] = {}
    for method in methods:
        runs = [r for r in records if r["method"] == method and r.get("times_s")]
        if len(runs) < 2:
            continue
        growth = growth_words([r["tokens"] for r in runs], [r["times_s"] for r in runs], method)
        groups.setdefault(growth["word"], []).append(
            f"`{method}` (slope {growth['lo']:.1f} to {growth['hi']:.1f})"
        )
    said = {
        "linear": "grew about linearly in the tokens",
        "quadratic": "grew about quadratically",
        "not separated": "grew at slopes the timed calls cannot place (too few calls, or ranges too wide)",
    }
    parts = [f"{', '.join(names)} {said[word]}" for word, names in groups.items()]
    return "; ".join(parts) if parts else "no GPA backend was timed at two sizes"


def training_study(config: AttentionBenchConfig, sizes: Sequence[int]) -> Study:
    """One training step (forward, backward into fresh gradients of q, k, v) per method and size,
    with ``config``'s settings: peak memory and time (median and range). Glues the ratios at the
    largest size (memory is deterministic; times are ratios of medians, and in words only as far
    as the ranges separate) and how each GPA backend's time grew (log-log slope range)."""
    cfg = dataclasses.replace(config, sizes=tuple(sizes), methods=TRAINING_METHODS, training=True)
    records = [bench_one(m, cfg, side, CPU) for side in cfg.sizes for m in cfg.methods]
    training = pd.DataFrame(
        [
            {
                "size": r["size"], "tokens": r["tokens"], "method": r["method"],
                "peak_mib": r.get("peak_bytes", np.nan) / MiB,
                "ms": r.get("median_s", np.nan) * 1e3,
                "ms_min": 1e3 * min(r.get("times_s") or [np.nan]),
                "ms_max": 1e3 * max(r.get("times_s") or [np.nan]),
            }
            for r in records
        ]
    )  # fmt: skip
    top = max(sizes)
    at_top = training[training["size"] == top].set_index("method")
    values: dict[str, Any] = {"ch1_train_size": top, "ch1_train_repeats": cfg.repeats}
    for key, (column, num, den) in TRAINING_RATIOS.items():
        values[key] = float(at_top[column][num] / at_top[column][den])
    times = {r["method"]: r["times_s"] for r in records if r["size"] == top and r.get("times_s")}
    for key, (a, b) in TRAINING_SPEED_WORDS.items():
        values[key] = speed_words(times[a], times[b], a, b)["phrase"]
    values["ch1_train_growth"] = _growth_sentence(records, GPA_TRAINING)
    # exploratory: GPA (recompute) needs less training memory than fused exact attention (SDPA)
    values["ch1_verdict_memory_fused"] = direction_verdict(
        *[values["ch1_train_rec_over_sdpa"] - 1] * 2, direction=-1
    )
    table = training.pivot(index="size", columns="method", values=["peak_mib", "ms"]).round(2)
    fig = figures.training_figure(training, cfg.methods)
    return Study(values, table=table, figure=fig, data={"training": training})


# ------------------------------------------------------------------ phase 1 against phase 2


def phase_split_study(
    sizes: AttentionSizes, sides: Sequence[int], *, repeats: int, seed: int
) -> Study:
    """Median time of phase 1 and phase 2 of the reference backend (each timed alone, with the
    range of its calls) at the authors' defaults and at the benchmark setting of ``sizes``, on
    random inputs, beside phase 1's share of the FLOPs; glues the shares at the largest side."""
    generator = torch.Generator().manual_seed(seed + 2)
    bench = {"pool": sizes.pool, "cell": sizes.cell, "topk": sizes.topk}
    rows = []
    for side in sides:
        shape = (1, sizes.heads, side, side, sizes.head_dim)  # (B, h, H, W, D)
        q, k, v = (torch.randn(shape, generator=generator) for _ in range(3))
        for name, setting in (
            ("authors' defaults", authors_defaults(side)),
            ("benchmark setting", bench),
        ):
            timing = phase_split(q, k, v, **setting, repeats=repeats)
            cost = square(sizes, side, **setting)
            f1, f2 = phase1_cost(cost).flops, phase2_cost(cost).flops
            rows.append(
                {
                    "size": side, "setting": name, **setting,
                    "phase1_ms": 1e3 * timing["phase1_s"], "phase2_ms": 1e3 * timing["phase2_s"],
                    "phase1_range_ms": f"{1e3 * min(timing['phase1_times_s']):.3g} to "
                    f"{1e3 * max(timing['phase1_times_s']):.3g}",
                    "phase2_range_ms": f"{1e3 * min(timing['phase2_times_s']):.3g} to "
                    f"{1e3 * max(timing['phase2_times_s']):.3g}",
                    "phase1_time_share": timing["phase1_share"],
                    "phase1_flop_share": f1 / (f1 + f2),
                }
            )  # fmt: skip
    split = pd.DataFrame(rows)
    top = split[(split["size"] == max(sides)) & (split.setting == "authors' defaults")].iloc[0]
    values = {
        "ch1_split_size": int(top["size"]),
        "ch1_phase1_time_share_pct": float(100 * top.phase1_time_share),
        "ch1_phase1_flop_share_pct": float(100 * top.phase1_flop_share),
    }
    return Study(
        values, table=split.round(3), figure=figures.split_figure(split), data={"split": split}
    )
