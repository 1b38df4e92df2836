"""Reading and reporting kernel-benchmark results: no GPU needed.

:func:`summarise` condenses a run's records (speed-ups, phase 1 against phase 2, phase 2 against its
floor), :func:`format_table` prints a payload as a short table (``python -m gpa_lib.bench kernel
--show JSON``) with the kernel issue's targets (:mod:`gpa_lib.attention.analysis.gpu_targets`), and
:func:`stored_kernel_results` reads the stored ``kernel_bench_*.json`` files for the chapters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def summarise(
    records: list[dict[str, Any]],
    cfg: Any,  # a KernelBenchConfig: passes, sizes, target_side
    per_size: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The issue's targets: speed-ups over SDPA and FlexAttention at target_side, 1024^2 fwd+bwd time;
    phase 1 against phase 2 at every size, and phase 2 over its floor where ``per_size`` has floors."""

    def ms(method, pass_, side):
        for r in records:
            if (r["method"], r["pass"], r["side"]) == (method, pass_, side) and "median_ms" in r:
                return r["median_ms"]
        return None

    summary: dict[str, Any] = {}
    side = cfg.target_side
    for pass_ in cfg.passes:
        ours = ms("cuda", pass_, side)
        for other in ("sdpa", "flex", "reference"):
            theirs = ms(other, pass_, side)
            if ours and theirs:
                summary[f"speedup_vs_{other}_{pass_}_{side}"] = theirs / ours
    for method in ("cuda", "cuda_gpa"):
        t = ms(method, "fwd+bwd", 1024)
        if t is not None:
            summary[f"{method}_fwd_bwd_1024_ms"] = t
    for side in cfg.sizes:
        phase1, phase2 = ms("phase1", "fwd", side), ms("cuda", "fwd", side)
        if phase1 is not None and phase2:
            summary[f"phase1_over_phase2_fwd_{side}"] = phase1 / phase2
        fused = ms("phase1_fused", "fwd", side)
        if fused and phase1 is not None:
            summary[f"phase1_fused_speedup_vs_torch_{side}"] = phase1 / fused
    floors_by_side = {entry["side"]: entry for entry in per_size or []}
    for side, entry in floors_by_side.items():
        for pass_, key in (("fwd", "floor_fwd_ms"), ("fwd+bwd", "floor_fwd_bwd_ms")):
            t = ms("cuda", pass_, side)
            if t is not None and entry.get(key):
                summary[f"phase2_over_floor_{pass_}_{side}"] = t / entry[key]
        fused = ms("phase1_fused", "fwd", side)
        if fused is not None and entry.get("floor_phase1_ms"):
            summary[f"phase1_fused_over_floor_{side}"] = fused / entry["floor_phase1_ms"]
        if "phase1_agreement" in entry:
            summary[f"phase1_agreement_{side}"] = entry["phase1_agreement"]
    return summary


def format_table(payload: dict[str, Any]) -> str:
    """A short text table of a kernel-bench payload: one row per (size, method), ms per pass."""
    rows: dict[tuple[int, str], dict[str, str]] = {}
    for r in payload["records"]:
        row = rows.setdefault((r["side"], r["method"]), {})
        if "median_ms" in r:
            row[r["pass"]] = f"{r['median_ms']:.3f} ({r['repeats']})"
            peak = max(float(row.get("peak", 0.0)), r["peak_extra_bytes"] / 2**20)
            row["peak"] = f"{peak:.0f}"
        else:
            row[r["pass"]] = "-"
            row.setdefault("note", r.get("skipped", "")[:48])
    lines = [
        f"{'grid':>6} {'method':<14} {'fwd ms (n)':>14} {'fwd+bwd ms (n)':>16} {'MiB':>7}  note"
    ]
    order = {}  # methods in the order they ran
    for r in payload["records"]:
        order.setdefault(r["method"], len(order))
    for (side, method), row in sorted(
        rows.items(), key=lambda x: (x[0][0], order.get(x[0][1], 99))
    ):
        lines.append(
            f"{side:>5}² {method:<14} {row.get('fwd', ''):>14} {row.get('fwd+bwd', ''):>16} "
            f"{row.get('peak', ''):>7}  {row.get('note', '')}"
        )
    for entry in payload.get("per_size", []):
        error = entry.get("max_abs_err_kernel")
        same = entry.get("max_abs_err_reference_same_dtype")
        check = (
            f"max|err| kernel {error:.2e}, same-dtype reference {same:.2e}"
            if error is not None
            else entry.get("error_check_failed", "no error check")[:100]
        )
        lines.append(
            f"{entry['side']:>5}² floor fwd {entry['floor_fwd_ms']:.3f} ms, fwd+bwd "
            f"{entry['floor_fwd_bwd_ms']:.3f} ms ({entry['bound_fwd']}-bound); {check}"
        )
        for label, rows in entry.get("breakdown", {}).items():
            parts = ", ".join(f"{r['name'][:28]} {100 * r['share']:.0f}%" for r in rows[:5])
            lines.append(f"{entry['side']:>5}² {label} by kernel: {parts}")
    for key, value in payload.get("summary", {}).items():
        lines.append(f"  {key} = {value:.3g}")
    from gpa_lib.attention.analysis.gpu_targets import target_table

    # The kernel issue's targets that this benchmark measures (the pose ones need pose runs).
    for key, row in target_table(payload).iterrows():
        if not key.startswith("pose"):
            verdict = "NOT met" if row["verdict"] == "not met" else row["verdict"]
            lines.append(f"  target: {row['target']}: {row['measured']} ({verdict})")
    state = "complete" if payload.get("complete", True) else f"INCOMPLETE: {payload.get('stopped')}"
    lines.append(f"kernel bench: {len(payload['records'])} records, {state}")
    return "\n".join(lines)


def stored_kernel_results(
    results_dir: str | Path | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """The stored GPU measurements: names of the ``kernel_bench_*.json`` files (quick runs left out)
    and their records, each labelled with the ``device`` (GPU name) and ``date`` it was measured on."""
    from gpa_lib.results import RESULTS_DIR, read_result

    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    names = sorted(
        p.stem for p in folder.glob("kernel_bench_*.json") if not p.stem.endswith("_quick")
    )
    records = []
    for name in names:
        result = read_result(name, folder)
        prov = result["provenance"]
        gpu = prov.get("gpu") or prov["device"].get("gpu")
        records += [
            {"device": gpu, "date": prov["date"][:10], **record}
            for record in result.get("records", [])
        ]
    return names, records
