"""The committed CPU and GPU runs the chapters read: machines, the training benchmark, the
comparison with the authors' code.

Every reader returns plain values (tables as DataFrames, ``{glue key: value}`` dicts, sentences);
a missing file gives ``None`` or values that say so, never a stale number. The benchmarks that write
these files are ``python -m gpa_lib.bench machine | attention --training | official``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from gpa_lib.attention.analysis.complexity import AttentionSizes, cpu_kernel_cost
from gpa_lib.attention.analysis.measure import speed_words
from gpa_lib.results import read_result, result_exists

MiB = 2**20


# ------------------------------------------------------------------------- GPU machines


def read_ceilings(path: str | os.PathLike) -> dict[str, Any]:
    """The two roofline rates of a stored ``machine_*.json``, with the GPU and date they belong to."""
    result = json.loads(Path(path).read_text())
    ceilings = result["ceilings"]
    return {
        "source": Path(path).name,
        "gpu": result["gpu"]["name"],
        "date": result["provenance"]["date"][:10],
        "bf16_flops_per_s": float(ceilings["bf16_flops_per_s"]),
        "bytes_per_s": float(ceilings["bytes_per_s"]),
    }


def stored_machines(results_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """:func:`read_ceilings` of every ``machine_*.json`` in the results folder, by file name."""
    from gpa_lib.results import RESULTS_DIR

    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    return [read_ceilings(p) for p in sorted(folder.glob("machine_*.json"))]


# ----------------------------------------------------------- the CPU training benchmark


def _where(stored: dict[str, Any]) -> str:
    prov = stored["provenance"]
    return f"{prov['device']['cpu']}, {prov['date'][:10]}"


def training_memory_against_sdpa(threads: int = 2, results_dir=None) -> dict[str, Any] | None:
    """Peak memory of one training step per method of the stored CPU training benchmark
    (``attention_bench_cpu_training_threads<threads>.json``), against fused SDPA's; None when that
    file is absent. ``sentence`` says which GPA backends stayed below SDPA and which went above."""
    name = f"attention_bench_cpu_training_threads{threads}"
    if not result_exists(name, results_dir):
        return None
    stored = read_result(name, results_dir)
    mib = {r["method"]: r["peak_bytes"] / MiB for r in stored["records"] if r.get("peak_bytes")}
    if "sdpa" not in mib:
        return None
    sdpa = mib.pop("sdpa")
    below = sorted((m for m in mib if mib[m] < sdpa), key=mib.get)
    above = sorted((m for m in mib if mib[m] >= sdpa), key=mib.get)

    def listed(methods: list[str]) -> str:
        return ", ".join(f"{m} ({mib[m]:.1f} MiB)" for m in methods)

    grid = stored["config"]["sizes"][-1]
    clauses = []
    if below:
        clauses.append(f"{listed(below)} below fused SDPA's {sdpa:.1f} MiB")
    if above:
        clauses.append(f"{listed(above)} {'above it' if below else f'above SDPA ({sdpa:.1f} MiB)'}")
    sentence = (
        f"in a training step at {grid}² on the CPU ({threads} threads, "
        f"{stored['provenance']['date'][:10]}), GPA's peak memory was " + ", and ".join(clauses)
    )
    return {"sdpa_mib": sdpa, "mib": mib, "below": below, "above": above, "sentence": sentence}


def stored_training_bench(
    threads: tuple[int, ...] = (1, 2), results_dir=None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The committed training benchmark per thread count: a table (``cpu``, ``recompute`` and
    ``sdpa`` times with the range of their timed calls, memory, commit, machine) and the glue values
    ``ch1_train_bench_*``: SDPA over ``cpu`` (ratio of medians), its range and the words it allows,
    ``cpu``'s memory over ``recompute``'s, and where it ran. A missing run reads as nan."""
    rows, values = [], {}
    for n in threads:
        name = f"attention_bench_cpu_training_threads{n}"
        stored = read_result(name, results_dir) if result_exists(name, results_dir) else None
        runs = {r["method"]: r for r in (stored or {}).get("records", []) if r.get("median_s")}
        if not {"sdpa", "cpu", "recompute"} <= set(runs):
            values |= {
                f"ch1_train_bench_speedup_t{n}": float("nan"),
                f"ch1_train_bench_mem_over_rec_t{n}": float("nan"),
                f"ch1_train_bench_speed_t{n}": "not measured: the benchmark has not been run",
            }
            continue
        cpu, sdpa, rec = (runs[m] for m in ("cpu", "sdpa", "recompute"))
        words = speed_words(cpu["times_s"], sdpa["times_s"], "cpu", "sdpa")
        rows.append(
            {
                "threads": n,
                "grid": f"{cpu['size']}²",
                **{
                    f"{m} (ms)": f"{1e3 * r['median_s']:.0f} [{1e3 * min(r['times_s']):.0f}, "
                    f"{1e3 * max(r['times_s']):.0f}]"
                    for m, r in (("cpu", cpu), ("recompute", rec), ("sdpa", sdpa))
                },
                "sdpa / cpu": sdpa["median_s"] / cpu["median_s"],
                "cpu memory (MiB)": cpu["peak_bytes"] / MiB,
                "recompute memory (MiB)": rec["peak_bytes"] / MiB,
                "commit": stored["provenance"]["commit"][:12],
                "machine": _where(stored),
            }
        )
        values |= {
            f"ch1_train_bench_speedup_t{n}": float(sdpa["median_s"] / cpu["median_s"]),
            f"ch1_train_bench_mem_over_rec_t{n}": float(cpu["peak_bytes"] / rec["peak_bytes"]),
            f"ch1_train_bench_speed_t{n}": words["phrase"],
        }
        values["ch1_train_bench_where"] = _where(stored)
    values.setdefault("ch1_train_bench_where", "no machine: the benchmark has not been run")
    table = pd.DataFrame(rows)
    return (table.set_index("threads") if len(table) else table), values


# ------------------------------------------------------------- against the authors' code

OFFICIAL_METHODS = ("auto", "cpu", "reference", "recompute")


def time_share(part_s: float, whole_s: float) -> float:
    """The share of ``whole_s`` that ``part_s`` (a part of the same call, timed on its own) takes,
    in [0, 1]. Two medians timed apart on a shared machine can put a part that is nearly all of the
    call above the whole; that reads as 1, all of the time within what the timing resolves."""
    if not whole_s > 0:
        raise ValueError(f"whole_s={whole_s} must be a positive time")
    return min(1.0, max(0.0, part_s / whole_s))


def official_comparison(results_dir=None) -> tuple[pd.DataFrame | str, dict[str, Any]]:
    """The stored comparison with the authors' ``GPA_module`` (``official_gpa.json``): a table per
    grid (times of theirs and ours, the floor of the machine that ran it, ratios, the fused CPU
    backend's phase-1 share, the largest output difference) and the glue values ``ch1_official_*``.
    Without the file, a line saying how to run it and values that say it was not run."""
    if not result_exists("official_gpa", results_dir):
        values = {"ch1_official_where": "no machine: the comparison has not been run"}
        values["ch1_official_largest"] = "none"
        values["ch1_official_phase1_note"] = ""
        for key in ("min_speedup", "max_speedup", "max_diff", "floor_ratio", "first_call",
                    "gflops", "phase1_share_pct"):  # fmt: skip
            values[f"ch1_official_{key}"] = float("nan")
        return "no stored comparison: run python -m gpa_lib.bench official --path <clone>", values
    official = read_result("official_gpa", results_dir)
    rates, rows, over = official["machine"], [], []
    for r in official["records"]:
        sizes = AttentionSizes(
            (r["size"], r["size"]), (r["size"], r["size"]), head_dim=official["config"]["head_dim"],
            pool=r["pool"], cell=r["cell"], topk=r["topk"], affinity="euclid",
        )  # fmt: skip
        floor = cpu_kernel_cost(sizes).time_s(
            rates["flops_per_s"], rates["bytes_per_s"], overlap=True
        )
        phase1 = r.get("cpu_phase1_median_s", float("nan"))
        if phase1 > r["cpu_median_s"]:
            over.append(f"{r['size']}² ({phase1 / r['cpu_median_s']:.2f}×)")
        rows.append(
            {
                "grid": f"{r['size']}²",
                "size": r["size"],
                "authors (ms)": 1e3 * r["authors_median_s"],
                **{f"{m} (ms)": 1e3 * r[f"{m}_median_s"] for m in OFFICIAL_METHODS},
                "floor (ms)": 1e3 * floor,
                "auto / floor": r["auto_median_s"] / floor,
                "authors / auto": r["speedup_auto_vs_authors"],
                "auto first call / warm": r["auto_first_call_s"] / r["auto_median_s"],
                "cpu phase 1 share": time_share(phase1, r["cpu_median_s"]),
                "max |ours - theirs|": max(r[f"{m}_max_abs_diff"] for m in ("auto", "reference")),
            }
        )
    table = pd.DataFrame(rows).set_index("grid")
    # where the numbers come from, for the figure's footer (figures.official_figure)
    table.attrs.update(source="official_gpa.json", provenance=official["provenance"])
    largest = table.iloc[-1]
    prov = official["provenance"]
    note = (
        "At " + ", ".join(over) + " phase 1 alone was timed above the whole call it is part of "
        "(two medians of a few calls, taken apart); the table shows its share as 1.00 there: "
        "within what those timings resolve, phase 1 is all of the call."
        if over
        else ""
    )
    values = {
        "ch1_official_where": f"{prov['device']['cpu']}, {official.get('threads') or 'all'} "
        f"thread(s), {prov['date'][:10]}",
        "ch1_official_min_speedup": float(table["authors / auto"].min()),
        "ch1_official_max_speedup": float(table["authors / auto"].max()),
        "ch1_official_max_diff": float(table["max |ours - theirs|"].max()),
        "ch1_official_largest": largest.name,
        "ch1_official_floor_ratio": float(largest["auto / floor"]),
        "ch1_official_first_call": float(table["auto first call / warm"].max()),
        "ch1_official_gflops": rates["flops_per_s"] / 1e9,
        "ch1_official_phase1_share_pct": float(100 * largest["cpu phase 1 share"]),
        "ch1_official_repeats": int(official["config"]["repeats"]),
        "ch1_official_phase1_note": note,
    }
    return table, values
