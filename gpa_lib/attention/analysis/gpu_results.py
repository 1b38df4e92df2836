"""The stored GPU runs, read for the chapters: where the layer's time goes, how far each part is from
its floor, the general-purpose options beside it, and the kernel issue's targets, met or not.

Everything here works from the JSON in ``data/results/`` (no GPU needed): a kernel benchmark
(``kernel_bench_<gpu>.json``, :mod:`gpa_lib.attention.analysis.kernel_bench`) and the pose training
runs of the same GPU (``pose_train_<gpu>.json`` of ``python -m gpa_lib.bench pose-gpu``, and the ``pose`` list of a
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
from pathlib import Path
from typing import Any

import pandas as pd

from gpa_lib.attention.analysis.complexity import (
    AttentionSizes,
    phase1_cost,
    phase1_floor,
    phase2_cell_major_backward_bytes,
    phase2_floor,
    phase2_flops,
    phase2_kernel_bytes,
)

#: The grids the kernel issue states its targets at: the small one (against SDPA and Flex) and the large.
TARGET_SIDE, LARGE_SIDE = 256, 1024
#: The GPU the kernel issue states its targets for.
TARGET_GPU = "NVIDIA H200"


def _folder(results_dir: str | Path | None) -> Path:
    from gpa_lib.results import RESULTS_DIR

    return Path(results_dir) if results_dir is not None else RESULTS_DIR


def _gpu_of(provenance: dict[str, Any]) -> str:
    return provenance.get("gpu") or (provenance.get("device") or {}).get("gpu") or "unknown GPU"


def newest_kernel_runs(results_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """GPU name -> the newest complete ``kernel_bench_*.json`` payload of that GPU (quick runs and
    runs stopped by their time budget left out), newest by ``provenance.date``; each payload as
    stored plus ``source``, the name of its file."""
    from gpa_lib.results import read_result

    newest: dict[str, dict[str, Any]] = {}
    for path in sorted(_folder(results_dir).glob("kernel_bench_*.json")):
        if path.stem.endswith("_quick"):
            continue
        payload = read_result(path.stem, path.parent) | {"source": path.name}
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
    record = kernel_record(payload, method, pass_, side)
    return None if record is None else record.get("median_ms")


def kernel_record(payload: dict[str, Any], method: str, pass_: str, side: int) -> dict | None:
    """The stored record of one measurement, timed or skipped (None: not in the run)."""
    for record in payload["records"]:
        if (record["method"], record["pass"], record["side"]) == (method, pass_, side):
            return record
    return None


def _fast_slow_ms(record: dict[str, Any]) -> tuple[float, float, str]:
    """A fast and a slow time of one record and what they are: the quartiles where the record keeps
    them (runs from the benchmark's quartile fields on), else its least time and its median."""
    if "q1_ms" in record and "q3_ms" in record:
        return record["q1_ms"], record["q3_ms"], "quartiles"
    return record["min_ms"], record["median_ms"], "fastest and median"


def speed_range(
    payload: dict[str, Any] | None, method: str, baseline: str, pass_: str, side: int
) -> dict[str, Any]:
    """How much faster ``method`` is than ``baseline`` (the baseline's time over the method's; above
    1: ``method`` is faster) in one pass at one grid side (tokens), as the ratio of the medians
    (``estimate``) and a conservative range from what the stored records keep of their spread: the
    least speed-up (``lo``) divides the baseline's fast time by the method's slow one, the greatest
    (``hi``) the baseline's slow time by the method's fast one. Fast and slow are the first and third
    quartiles where both records keep them, else the fastest call and the median (older runs keep no
    upper spread, so the range then misses the slow tails). ``sentence`` says which, and how many
    calls; all NaN without both measurements."""
    nan = float("nan")
    records = [kernel_record(payload, name, pass_, side) if payload else None
               for name in (method, baseline)]  # fmt: skip
    if not all(r and "median_ms" in r for r in records):
        none = {"estimate": nan, "lo": nan, "hi": nan, "repeats": 0}
        return none | {"sentence": "not measured: the stored run has no such pair of timings"}
    ours, theirs = records
    (ours_fast, ours_slow, kind), (theirs_fast, theirs_slow, kind_b) = map(_fast_slow_ms, records)
    lo, hi = theirs_fast / ours_slow, theirs_slow / ours_fast
    repeats = min(ours.get("repeats", 0), theirs.get("repeats", 0))
    if kind == kind_b == "quartiles":
        how = "each side's first quartile against the other's third"
    else:
        how = (
            "each side's fastest call against the other's median; the stored run keeps each "
            "timing's median and fastest call but no slow tail (no quartiles or maximum), so slow "
            "outliers are not in the range"
        )
    sentence = f"the median of {repeats} timed calls each; the range pairs {how}"
    estimate = theirs["median_ms"] / ours["median_ms"]
    return {"estimate": estimate, "lo": lo, "hi": hi, "repeats": repeats, "sentence": sentence}


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


def traffic_table(payload: dict[str, Any]) -> pd.DataFrame:
    """Per grid: the bytes the fused phase 2 moves as designed
    (:func:`~gpa_lib.attention.analysis.complexity.phase2_kernel_bytes`) forward and backward, the
    measured times (backward = forward+backward less forward), the effective bandwidth each reached,
    the dk/dv kernel's share of the backward's bytes, the backward's time predicted at the
    forward's effective bandwidth and at the run's measured copy bandwidth, and the bytes of a
    cell-major backward (:func:`~gpa_lib.attention.analysis.complexity.phase2_cell_major_backward_bytes`,
    a model of a design not built) with float32 and bf16 partials."""
    bandwidth = _rates(payload)["bytes_per_s"]
    rows = []
    for side in payload["config"]["sizes"]:
        sizes = benchmark_sizes(payload, side)
        traffic = phase2_kernel_bytes(sizes)
        cell_major = {b: phase2_cell_major_backward_bytes(sizes, b) for b in (4, 2)}
        fwd = kernel_ms(payload, "cuda", "fwd", side)
        fwd_bwd = kernel_ms(payload, "cuda", "fwd+bwd", side)
        bwd = fwd_bwd - fwd if fwd is not None and fwd_bwd is not None else None
        fwd_tbs = traffic["forward"] / fwd / 1e9 if fwd else None
        rows.append(
            {
                "grid": f"{side}²",
                "forward (GB)": traffic["forward"] / 1e9,
                "forward (ms)": fwd,
                "forward (TB/s)": fwd_tbs,
                "backward (GB)": traffic["backward"] / 1e9,
                "backward (ms)": bwd,
                "backward (TB/s)": traffic["backward"] / bwd / 1e9 if bwd else None,
                "dk/dv share of backward bytes (%)": 100 * traffic["dkdv"] / traffic["backward"],
                "backward / forward bytes": traffic["backward"] / traffic["forward"],
                "backward at forward's rate (ms)": (
                    traffic["backward"] / fwd_tbs / 1e9 if fwd_tbs else None
                ),
                "backward at copy bandwidth (ms)": 1e3 * traffic["backward"] / bandwidth,
                "cell-major, f32 partials (GB)": cell_major[4] / 1e9,
                "cell-major, bf16 partials (GB)": cell_major[2] / 1e9,
                "cell-major bf16 at forward's rate (ms)": (
                    cell_major[2] / fwd_tbs / 1e9 if fwd_tbs else None
                ),
            }
        )
    return pd.DataFrame(rows).set_index("grid")


def traffic_numbers(table: pd.DataFrame, floors: pd.DataFrame) -> dict[str, Any]:
    """Glue ``ch2_traffic_*`` for the largest grid measured: the effective bandwidths, the dk/dv
    share, how much of the measured backward the traffic explains at the forward's rate, and the
    time the backward's bytes take at the copy bandwidth against what the 3×-floor target leaves it
    (3 × the forward+backward floor less the measured forward)."""
    measured = table.dropna(subset=["backward (ms)"])
    if measured.empty:
        return {}
    grid = measured.index[-1]
    row = measured.loc[grid]
    floor = floors.loc[grid, "phase 2 fwd+bwd floor (ms)"] if grid in floors.index else None
    allowed = None if floor is None else float(3 * floor - row["forward (ms)"])
    row = row.astype(float)
    return {
        "ch2_traffic_grid": grid,
        "ch2_traffic_fwd_tbs": row["forward (TB/s)"],
        "ch2_traffic_bwd_tbs": row["backward (TB/s)"],
        "ch2_traffic_ratio": row["backward / forward bytes"],
        "ch2_traffic_dkdv_pct": row["dk/dv share of backward bytes (%)"],
        "ch2_traffic_bwd_ms": row["backward (ms)"],
        "ch2_traffic_pred_ms": row["backward at forward's rate (ms)"],
        "ch2_traffic_explained_pct": 100
        * row["backward at forward's rate (ms)"]
        / row["backward (ms)"],
        "ch2_traffic_copy_ms": row["backward at copy bandwidth (ms)"],
        "ch2_traffic_allowed_ms": allowed,
        "ch2_traffic_cell_f32_gb": row["cell-major, f32 partials (GB)"],
        "ch2_traffic_cell_bf16_gb": row["cell-major, bf16 partials (GB)"],
        "ch2_traffic_bwd_gb": row["backward (GB)"],
        "ch2_traffic_cell_bf16_ms": row["cell-major bf16 at forward's rate (ms)"],
    }


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


def complexity_against_measured(
    payload: dict[str, Any] | None, side: int = LARGE_SIDE
) -> dict[str, Any]:
    """Chapter 1's count of phase 1 against phase 2 at one grid of a stored benchmark, beside the
    measured split: FLOP share and ratio by the cost model (reference phase 1, fused phase 2 forward),
    time share and ratio as measured (phase 1 in the layer against the fused phase 2, forward). The
    same keys without a run (``payload`` None): NaN, and ``gpu`` says no run is stored."""
    nan = float("nan")
    if payload is None:
        return {"gpu": "no GPU run stored in data/results/", "date": "never", "grid": f"{side}²",
                "flop_share_pct": nan, "flop_ratio": nan, "time_share_pct": nan,
                "time_ratio": nan, "phase2_fwd_over_floor": nan}  # fmt: skip
    sizes = benchmark_sizes(payload, side)
    p1_flops, p2_flops = phase1_cost(sizes).flops, phase2_flops(sizes)
    p1_ms, p2_ms = phase1_in_layer_ms(payload, side), kernel_ms(payload, "cuda", "fwd", side)
    measured = p1_ms is not None and bool(p2_ms)
    p2_floor_ms = 1e3 * phase2_floor(sizes, **_rates(payload)).floor_s
    return {
        "gpu": _gpu_of(payload["provenance"]),
        "date": payload["provenance"]["date"][:10],
        "grid": f"{side}²",
        "flop_share_pct": 100 * p1_flops / (p1_flops + p2_flops),
        "flop_ratio": p1_flops / p2_flops,
        "time_share_pct": 100 * p1_ms / (p1_ms + p2_ms) if measured else nan,
        "time_ratio": p1_ms / p2_ms if measured else nan,
        "phase2_fwd_over_floor": p2_ms / p2_floor_ms if p2_ms else nan,
    }


def count_against_measured_sentence(count: dict[str, Any]) -> str:
    """Chapter 1's sentence on :func:`complexity_against_measured`: the count's share of phase 1
    against the measured one."""
    if count["time_share_pct"] != count["time_share_pct"]:  # NaN: nothing measured
        return f"No GPU run of the layer is stored ({count['gpu']}): the count stands unmeasured."
    return (
        f"On the {count['gpu']} ({count['date']}, {count['grid']}), the count gives phase 1 "
        f"{count['flop_share_pct']:.0f}% of a forward pass's FLOPs ({count['flop_ratio']:.0f}× "
        f"phase 2's); the measured layer spent {count['time_share_pct']:.1f}% of its forward time "
        f"in phase 1, {count['time_ratio']:.0f}× the fused phase 2, which ran at "
        f"{count['phase2_fwd_over_floor']:.1f}× its floor. The FLOP count understates phase 1's "
        "share on a GPU: its products run in float32 outside the tensor-core rate, in chunks, with "
        "the softmax and the cell means as separate passes over memory."
    )


def stored_probe(gpu: str, results_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The newest ``probe_phase1_pose_*.json`` of ``gpu`` (None: there is none)."""
    newest = None
    for path in sorted(_folder(results_dir).glob("probe_phase1_pose_*.json")):
        document = json.loads(path.read_text())
        provenance = document.get("provenance", {})
        if _gpu_of(provenance) == gpu and (
            newest is None or provenance.get("date", "") > newest["provenance"].get("date", "")
        ):
            newest = document
    return newest


def phase1_chunk_table(probe: dict[str, Any]) -> pd.DataFrame:
    """Phase 1's time (ms) per grid (rows) and score-chunk size, TF32 off and on (columns), from a
    probe; a last column gives the share of cells whose selection TF32 left unchanged."""
    rows = [r for r in probe.get("phase1", []) if "ms" in r]
    table = pd.DataFrame(
        {
            "grid": f"{r['side']}²",
            "chunk": f"2^{r['chunk_log2']}" + (", TF32" if r["tf32"] else ""),
            "ms": r["ms"],
        }
        for r in rows
    ).pivot(index="grid", columns="chunk", values="ms")
    table = table.loc[sorted(table.index, key=lambda g: int(g.rstrip("²")))]
    agree = {f"{r['side']}²": r["agree_with_first"] for r in rows if r["tf32"]}
    table["same selection with TF32 (share)"] = [agree.get(grid) for grid in table.index]
    return table


def probe_ms(probe: dict[str, Any] | None, side: int, chunk_log2: int, tf32: bool = False):
    """One phase-1 time of a probe (None: not in it)."""
    for r in (probe or {}).get("phase1", []):
        if (r["side"], r["chunk_log2"], r["tf32"]) == (side, chunk_log2, tf32) and "ms" in r:
            return r["ms"]
    return None


def floor_model(
    sides: list[int],
    *,
    heads: int,
    head_dim: int,
    pool: int,
    cell: int,
    topk: int,
    flops_per_s: float,
    bytes_per_s: float,
) -> pd.DataFrame:
    """The cost model's floors per grid (bf16, B = 1) at a machine's rates: phase 2 forward and
    backward, phase 1 in two passes, an ideal dense flash attention forward, and the FLOPs."""
    from gpa_lib.attention.analysis.complexity import dense_cost, dense_flash_floor

    rates = {"flops_per_s": flops_per_s, "bytes_per_s": bytes_per_s}
    rows = []
    for side in sides:
        s = AttentionSizes(
            (side, side), (side, side), head_dim=head_dim, heads=heads, pool=pool, cell=cell,
            topk=topk, dtype_bytes=2,
        )  # fmt: skip
        fwd, bwd = phase2_floor(s, **rates), phase2_floor(s, backward=True, **rates)
        dense_fwd = dense_flash_floor(s, **rates)
        rows.append(
            {
                "grid": f"{side}²",
                "queries": s.n_queries,
                "phase 2 fwd floor (ms)": 1e3 * fwd.floor_s,
                "phase 2 fwd bound": fwd.bound,
                "phase 2 bwd floor (ms)": 1e3 * bwd.floor_s,
                "phase 2 bwd bound": bwd.bound,
                "phase 1 two-pass floor (ms)": 1e3 * phase1_floor(s, **rates).floor_s,
                "dense fwd floor (ms)": 1e3 * dense_fwd.floor_s,
                "dense / GPA floor": dense_fwd.floor_s / fwd.floor_s,
                "phase 1 GFLOP": phase1_cost(s).flops / 1e9,
                "phase 2 fwd GFLOP": fwd.flops / 1e9,
                "dense fwd GFLOP": dense_cost(s, materialised=False).flops / 1e9,
            }
        )
    return pd.DataFrame(rows).set_index("grid")


def measurement_table(runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Every measurement of the given runs (GPU name -> payload): median ms per pass, by GPU, date,
    grid and method, in the order the methods ran; a measurement not taken reads as its reason."""
    rows = []
    for gpu, payload in runs.items():
        date = payload.get("provenance", {}).get("date", "this run")[:10]
        for record in payload["records"]:
            value = record.get("median_ms")
            rows.append(
                {
                    "device": gpu,
                    "date": date,
                    "grid": f"{record['side']}²",
                    "method": record["method"],
                    "pass": record["pass"],
                    "ms": value if value is not None else kernel_note(payload, record["method"],
                                                                       record["pass"], record["side"]),
                }
            )  # fmt: skip
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    return table.pivot_table(
        index=["device", "date", "grid", "method"],
        columns="pass",
        values="ms",
        aggfunc="first",
        sort=False,
    )


def floor_rates(
    machine: dict[str, Any] | None, flops_per_s: float, bytes_per_s: float
) -> dict[str, Any]:
    """The rates floors divide by: a stored machine's measured ceilings
    (:func:`gpa_lib.attention.analysis.stored.stored_machines`), else the given ones; ``source`` in words."""
    if machine is None:
        return {
            "flops_per_s": flops_per_s,
            "bytes_per_s": bytes_per_s,
            "source": "the H200 rates stored in gpa_lib.attention.analysis.complexity",
        }
    return {
        "flops_per_s": machine["bf16_flops_per_s"],
        "bytes_per_s": machine["bytes_per_s"],
        "source": f"as measured on the {machine['gpu']} on {machine['date']} ({machine['source']})",
    }


def floor_model_numbers(floors: pd.DataFrame) -> dict[str, Any]:
    """What the chapter states about a :func:`floor_model` table: its smallest and largest grid."""
    largest, smallest = floors.iloc[-1], floors.iloc[0]
    return {
        "largest": floors.index[-1],
        "smallest": floors.index[0],
        "floor_fwd_largest_ms": float(largest["phase 2 fwd floor (ms)"]),
        "floor_bwd_largest_ms": float(largest["phase 2 bwd floor (ms)"]),
        "floor_bound": str(largest["phase 2 fwd bound"]),
        "dense_ratio_smallest": float(smallest["dense / GPA floor"]),
        "phase1_over_phase2_largest": float(
            largest["phase 1 GFLOP"] / largest["phase 2 fwd GFLOP"]
        ),
        "phase1_floor_largest_ms": float(largest["phase 1 two-pass floor (ms)"]),
        "phase1_floor_over_phase2_largest": float(
            largest["phase 1 two-pass floor (ms)"] / largest["phase 2 fwd floor (ms)"]
        ),
    }


def where_sentence(
    device: dict[str, Any], runs: dict[str, dict[str, Any]], kernel_reason: str
) -> str:
    """Where a chapter build ran and where its GPU numbers come from (``device``:
    :func:`gpa_lib.results.device_description`; ``runs``: :func:`newest_kernel_runs`)."""
    here = f"This build ran on {device['cpu']} (GPU: {device['gpu'] or 'none'})."
    if runs:
        listed = ", ".join(
            f"{gpu} ({payload['provenance']['date'][:10]})" for gpu, payload in runs.items()
        )
        return (
            f"{here} The GPU numbers below are read from the newest complete benchmark of each GPU "
            f"stored in data/results/ ({listed}), each labelled with the device and date it was "
            "measured on; the floors are computed."
        )
    return (
        f"{here} No GPU measurement of the kernel exists yet: data/results/ holds no complete "
        "kernel_bench_*.json file. Every GPU time in this chapter is therefore a computed floor (a "
        "lower bound), never a measurement; the benchmark python -m gpa_lib.bench kernel fills the "
        "tables when run on a GPU. The correctness evidence comes from executing the CUDA source on "
        f"the CPU through a host emulation. Kernel status on this machine: {kernel_reason}"
    )


def _listed(values: pd.Series, fmt: str, unit: str) -> str:
    shown = [f"{format(v, fmt)}{unit} at {grid}" for grid, v in values.items() if pd.notna(v)]
    return ", ".join(shown) if shown else "not measured"


def split_sentence(split: pd.DataFrame) -> str:
    """A :func:`layer_split` in one sentence: the share of the layer outside phase 2, per grid."""
    return (
        "Outside the fused phase 2, the layer spent "
        + _listed(split["outside phase 2, fwd (%)"], ".1f", "%")
        + " of its forward time, and "
        + _listed(split["outside phase 2, fwd+bwd (%)"], ".1f", "%")
        + " of its forward+backward time."
    )


def floor_sentence(distances: pd.DataFrame) -> str:
    """A :func:`floor_distances` in one sentence: each part's measured time over its floor, per grid."""
    return (
        "Measured over floor: phase 2 forward "
        + _listed(distances["phase 2 fwd / floor"], ".1f", "×")
        + "; phase 2 forward+backward "
        + _listed(distances["phase 2 fwd+bwd / floor"], ".1f", "×")
        + "; phase 1 in the layer "
        + _listed(distances["phase 1 in the layer / floor"], ".0f", "×")
        + "."
    )
