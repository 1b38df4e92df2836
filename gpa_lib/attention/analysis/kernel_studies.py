"""Chapter 2's studies (the fused GPA kernel): each reads the stored GPU runs, evaluates the floor
model or runs the emulated kernel, and returns a :class:`~gpa_lib.attention.analysis.study.Study`
of a table, a figure and the ``{glue key: value}`` dict its prose cites.

The chapter calls one function per section, displays the table or figure and glues the values with
:func:`gpa_lib.glue.glue_all`.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from gpa_lib.attention.analysis import gpu_results, gpu_targets
from gpa_lib.attention.analysis.figures import ATTENTION_CODE, _closed
from gpa_lib.attention.analysis.study import Study
from gpa_lib.stamp import stamp_provenance
from gpa_lib.stats import direction_verdict

NO_RUN = "no GPU run stored"
NO_COMPILER = "No host C++ compiler (g++): the emulated kernel cannot be run here."

__all__ = [
    "NO_RUN", "NO_COMPILER", "targets_verdict", "flex_words", "gpu_run_study",
    "tiling_figure", "tiling_study", "floor_study", "layer_split_study", "probe_table", "floor_distance_study", "against_others_table",
    "emulated_evidence_study", "phase1_study", "registers_study", "time_against_floor_figure",
]  # fmt: skip


# ------------------------------------------------------------------------- the stored GPU run


def targets_verdict(numbers: dict[str, Any]) -> str:
    """The targets' verdict in words, from :func:`~gpa_lib.attention.analysis.gpu_targets.chapter_numbers`:
    none met, all met, or how many of how many."""
    total, met = numbers.get("targets_total"), numbers.get("targets_met")
    if not total or met is None or met != met:  # no run, or NaN
        return "No GPU run is stored: no target is measured"
    if met == 0:
        return "No target is met"
    if met == total:
        return "Every target is met"
    return f"{met} of {total} targets are met"


def flex_words(speed: float | None) -> str:
    """The fused phase 2's forward against FlexAttention's in words, from its speed relative to
    Flex's (above 1: faster)."""
    if speed is None or speed != speed:
        return "no comparison was measured"
    return "the kernel is " + ("slower" if speed < 1 else "faster" if speed > 1 else "as fast")


def gpu_run_study(*, target_gpu: str) -> Study:
    """The newest complete kernel benchmark of every GPU stored in ``data/results`` (a new one is
    measured by ``python -m gpa_lib.bench kernel`` or the prepared GPU run), the kernel issue's
    targets against the run of ``target_gpu``, and the chapter's GPU numbers (``ch2_gpu_*``), where
    it was run (``ch2_where``) and chapter 1's training memory against SDPA
    (``ch2_cpu_training_memory``). ``data``: ``runs``, ``gpu_run``, ``probe``."""
    from gpa_lib.attention.analysis.stored import training_memory_against_sdpa
    from gpa_lib.attention.kernel.cuda.build import cuda_kernel_available
    from gpa_lib.results import device_description

    device = device_description()
    _, kernel_reason = cuda_kernel_available(build=False)
    runs = gpu_results.newest_kernel_runs()  # GPU name -> newest complete kernel_bench_*.json
    gpu_run = runs.get(target_gpu)
    memory = training_memory_against_sdpa(threads=2)
    pose_runs = gpu_results.stored_pose_runs(target_gpu)
    probe = gpu_results.stored_probe(target_gpu)
    numbers = gpu_targets.chapter_numbers(gpu_run, pose_runs, probe)
    speed = gpu_results.speed_range(
        gpu_run, "cuda_gpa", "sdpa", "fwd+bwd", gpu_results.TARGET_SIDE
    )  # the whole layer against dense SDPA, forward+backward, at the targets' small grid
    values = {
        "ch2_targets_verdict": targets_verdict(numbers),
        # the paper's claim on the GPU: the whole layer is faster than dense (flash) attention
        # over the range the stored run allows (its spread; see gpu_results.speed_range)
        "ch2_verdict_speed": direction_verdict(speed["lo"] - 1, speed["hi"] - 1),
        "ch2_speed_lo": speed["lo"],
        "ch2_speed_hi": speed["hi"],
        "ch2_speed_spread": speed["sentence"],
        "ch2_flex_words": flex_words(numbers.get("phase2_vs_flex_fwd_small")),
        "ch2_where": gpu_results.where_sentence(device, runs, kernel_reason),
        "ch2_cpu_training_memory": memory["sentence"] if memory else "not measured",
    } | {f"ch2_gpu_{key}": value for key, value in numbers.items()}
    targets = gpu_targets.target_table(gpu_run, pose_runs) if gpu_run else None
    table = targets[["target", "measured", "verdict", "note"]] if targets is not None else NO_RUN
    data = {"runs": runs, "gpu_run": gpu_run, "probe": probe}
    return Study(values=values, table=table, data=data)


# ------------------------------------------------------------------------- the tiling figure


def tiling_figure(image, chosen_cell, chosen_blocks, *, cell: int, pool: int, figsize=(7.0, 2.9)):
    """Query grid with one cell outlined, key grid with its blocks numbered by rank, and the cell's
    score tile (c² queries × topk·p² gathered keys) in 16×16 tensor-core tiles."""
    from gpa_lib.attention.analysis.figures import mark_blocks, outline_cells, show_grid_image

    side = image.shape[-1]
    n_top = len(chosen_blocks)
    fig, axes = plt.subplots(1, 3, figsize=figsize, gridspec_kw={"width_ratios": [1, 1, 1.5]})
    show_grid_image(axes[0], image, lines=cell, title="query grid: c×c cells")
    show_grid_image(axes[1], image, lines=pool, title="key grid: p×p blocks")
    for ax in axes[:2]:
        ax.title.set_fontsize(9)
    outline_cells(axes[0], [chosen_cell], cell, ["red"])
    mark_blocks(axes[1], chosen_blocks, pool, side // pool, "red", filled=False, numbered=True)
    for ax in axes[:2]:
        ax.set_xlabel("x (tokens)")
        ax.set_ylabel("y (tokens)")
    n_q, n_k, width = cell * cell, n_top * pool * pool, pool * pool
    ax = axes[2]
    ax.set_xlim(0, n_k)
    ax.set_ylim(n_q, 0)
    for rank, block in enumerate(chosen_blocks):
        colour = plt.cm.tab10(rank % 10)
        ax.add_patch(Rectangle((rank * width, 0), width, n_q, color=colour, alpha=0.35))
        ax.text((rank + 0.5) * width, n_q / 2, f"{block}", ha="center", va="center", fontsize=7)
    for x in range(0, n_k + 1, 16):
        ax.axvline(x, color="black", lw=0.4)
    for y in range(0, n_q + 1, 16):
        ax.axhline(y, color="black", lw=0.4)
    ax.set_xlabel("gathered keys (shared memory)")
    ax.set_ylabel("queries of the cell")
    ax.set_title(f"score tile S: {n_q} × {n_k}", fontsize=9)
    fig.tight_layout()
    return _closed(fig)


def tiling_study(
    *, figure_side: int, head_dim: int, pool: int, cell: int, topk: int, seed: int
) -> Study:
    """GPA's selection on a textured image of ``figure_side``² tokens (one head), the cell right of
    the centre and its blocks, drawn by :func:`tiling_figure`; glue: the tile's queries and keys
    and the topk of the figure."""
    from gpa_lib.attention import select_key_blocks, to_heads
    from gpa_lib.attention.synthetic import image_features, textured_image

    image = textured_image(figure_side, seed=seed)  # (3, H, W) in [0, 1], one pixel per token
    features = to_heads(image_features(image, head_dim, seed=seed), 1)  # (1, 1, H, W, D)
    fig_topk = min(topk, (figure_side // pool) ** 2)
    selection = select_key_blocks(features, features, pool=pool, cell=cell, topk=fig_topk)
    cells_side = figure_side // cell
    chosen_cell = (cells_side // 2, cells_side // 2 - 1)
    chosen_blocks = selection[0, 0, chosen_cell[0], chosen_cell[1]].tolist()
    figure = tiling_figure(image, chosen_cell, chosen_blocks, cell=cell, pool=pool)
    values = {
        "ch2_tile_queries": cell * cell,
        "ch2_tile_keys": fig_topk * pool * pool,
        "ch2_fig_topk": fig_topk,
    }
    return Study(values=values, figure=figure, data={"chosen_blocks": chosen_blocks})


# ------------------------------------------------------------------------- the floor


def floor_study(
    *, sides, heads: int, head_dim: int, pool: int, cell: int, topk: int, target_gpu: str
) -> Study:
    """The floor model of phase 1 and phase 2 per grid side at the stored machine rates of
    ``target_gpu`` (the H200's data-sheet rates when none is stored), with the setting's glue."""
    from gpa_lib.attention.analysis.complexity import H200_BF16_FLOPS_PER_S, H200_BYTES_PER_S
    from gpa_lib.attention.analysis.stored import stored_machines

    machine = next((m for m in stored_machines() if m["gpu"] == target_gpu), None)
    rates = gpu_results.floor_rates(machine, H200_BF16_FLOPS_PER_S, H200_BYTES_PER_S)
    settings = dict(heads=heads, head_dim=head_dim, pool=pool, cell=cell, topk=topk)
    floors = gpu_results.floor_model(
        sides, **settings, flops_per_s=rates["flops_per_s"], bytes_per_s=rates["bytes_per_s"]
    )
    values = {
        "ch2_heads": heads,
        "ch2_head_dim": head_dim,
        "ch2_cell": cell,
        "ch2_pool": pool,
        "ch2_topk": topk,
        "ch2_keys_per_query": topk * pool * pool,
        "ch2_rate_tflops": rates["flops_per_s"] / 1e12,
        "ch2_bandwidth_tbs": rates["bytes_per_s"] / 1e12,
        "ch2_rates_source": rates["source"],
    }
    values |= {
        f"ch2_{key}": value for key, value in gpu_results.floor_model_numbers(floors).items()
    }
    return Study(values=values, table=floors.style.format(precision=3), data={"floors": floors})


# ------------------------------------------------------------------------- the measured tables


def layer_split_study(gpu_run: dict[str, Any] | None) -> Study:
    """Phase 1 against phase 2 in the stored run's layer, and its sentence (``ch2_split``)."""
    if not gpu_run:
        return Study(values={"ch2_split": "Not measured."}, table=NO_RUN)
    split = gpu_results.layer_split(gpu_run)
    values = {"ch2_split": gpu_results.split_sentence(split)}
    return Study(values=values, table=split.style.format(precision=3), data={"split": split})


def probe_table(probe: dict[str, Any] | None):
    """Phase 1 alone per grid and score-chunk size, from the stored probe (or why there is none)."""
    if not probe:
        return "no probe stored"
    return gpu_results.phase1_chunk_table(probe).style.format(precision=3)


def floor_distance_study(gpu_run: dict[str, Any] | None) -> Study:
    """Each part's distance from its floor in the stored run, and its sentence
    (``ch2_floor_distances``)."""
    if not gpu_run:
        return Study(values={"ch2_floor_distances": "Not measured."}, table=NO_RUN)
    distances = gpu_results.floor_distances(gpu_run)
    values = {"ch2_floor_distances": gpu_results.floor_sentence(distances)}
    table = distances.style.format(precision=3)
    return Study(values=values, table=table, data={"distances": distances})


def traffic_study(gpu_run: dict[str, Any] | None) -> Study:
    """The fused phase 2's bytes as designed against the stored run's times, per grid, and glue
    ``ch2_traffic_*`` (none without a run)."""
    if not gpu_run:
        return Study(values={}, table=NO_RUN)
    table = gpu_results.traffic_table(gpu_run)
    values = gpu_results.traffic_numbers(table, gpu_results.floor_distances(gpu_run))
    return Study(values=values, table=table.style.format(precision=3), data={"traffic": table})


def against_others_table(gpu_run: dict[str, Any] | None):
    """Dense SDPA and FlexAttention against the kernel in the stored run (or why there is none)."""
    return gpu_results.against_others(gpu_run).style.format(precision=3) if gpu_run else NO_RUN


# ------------------------------------------------------------------------- the emulated evidence


def emulated_evidence_study(names, *, seed: int) -> Study:
    """:func:`~gpa_lib.attention.kernel.cuda.evidence.emulated_evidence` of the cases ``names`` (or a line
    saying why it cannot run here), glue ``ch2_evidence_*``."""
    from gpa_lib.attention.kernel.cuda.evidence import emulated_evidence
    from gpa_lib.attention.kernel.host_build import compiler

    table, values = emulated_evidence(names if compiler() is not None else [], seed=seed)
    shown = table.style.format(precision=3) if len(table) else "emulation not run"
    return Study(values=values, table=shown, data={"evidence": table})


def phase1_study(names, *, seed: int) -> Study:
    """:func:`~gpa_lib.attention.kernel.cuda.evidence.phase1_evidence` of the cases ``names`` on image
    features, with the agreements also in percent (``*_pct``); without a host compiler, no values
    and a line saying why."""
    from gpa_lib.attention.kernel.cuda.evidence import phase1_evidence
    from gpa_lib.attention.kernel.host_build import compiler

    if compiler() is None:
        return Study(values={}, table=NO_COMPILER)
    table, values = phase1_evidence(names, seed=seed)
    values["ch2_p1_split_agreement_pct"] = 100 * values["ch2_p1_split_agreement"]
    values["ch2_p1_single_agreement_pct"] = 100 * values["ch2_p1_single_agreement"]
    values["ch2_p1_seed"] = seed
    shown = table.style.format(precision=4).hide(axis="index")
    return Study(values=values, table=shown, data={"phase1": table})


# ------------------------------------------------------------------------- registers


def registers_study(compile_check: bool) -> Study:
    """Registers per thread of every kernel build (``nvcc -Xptxas -v`` for sm_80 and sm_90), pivoted
    to kernel × arch, and ``ch2_compile_status``; without nvcc or when not asked, a line saying why."""
    from gpa_lib.attention.kernel.cuda.build import find_nvcc
    from gpa_lib.attention.kernel.cuda.check import compile_status, registers_table, run_check

    nvcc = find_nvcc()
    if not (compile_check and nvcc):
        reason = "nvcc not found" if not nvcc else "skipped in this profile"
        status = f"not compiled in this run ({reason}); make kernel-check compiles it"
        return Study(values={"ch2_compile_status": status}, table=f"compile check: {reason}")
    _, _, kernels = run_check()
    regs = registers_table(kernels)
    table = regs.pivot_table(index="kernel", columns="arch", values="registers")
    return Study(values={"ch2_compile_status": compile_status(regs)}, table=table,
                 data={"registers": regs})  # fmt: skip


# ------------------------------------------------------------------------- the headline figure


def time_against_floor_figure(gpu_run: dict[str, Any], figsize=(7.0, 3.2)):
    """Measured time of each part of the layer against its floor per grid, log-log: phase 2 forward
    and forward+backward (the fused kernel) and phase 1 in the layer (its forward time less phase
    2's) against its two-pass floor. Lines: measured; dashed: floors. A run read from
    ``data/results`` (with ``source``) gets the file, commit, GPU and date as a footer."""
    split = gpu_results.layer_split(gpu_run)
    distances = gpu_results.floor_distances(gpu_run)
    sides = [int(str(grid).rstrip("²")) for grid in split.index]
    parts = [
        ("phase 2 fwd", "phase 2 fwd (ms)", "phase 2 fwd floor (ms)", "C0"),
        ("phase 2 fwd+bwd", "phase 2 fwd+bwd (ms)", "phase 2 fwd+bwd floor (ms)", "C1"),
        ("phase 1 in the layer", "phase 1 in the layer (ms)", "phase 1 two-pass floor (ms)", "C3"),
    ]
    fig, ax = plt.subplots(figsize=figsize)
    for label, measured, floor, colour in parts:
        ax.plot(sides, split[measured].to_numpy(float), "o-", color=colour, label=label)
        ax.plot(sides, distances[floor].to_numpy(float), "--", color=colour, lw=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sides, [f"{s}²" for s in sides])
    ax.set_xlabel("query = key grid (tokens)")
    ax.set_ylabel("time (ms)")
    gpu = gpu_run.get("provenance", {}).get("gpu", "GPU")
    ax.set_title(f"measured (solid) against floor (dashed), {gpu}")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    if "source" in gpu_run:  # read from data/results (gpu_results.newest_kernel_runs)
        stamp_provenance(fig, gpu_run["source"], gpu_run.get("provenance", {}), ATTENTION_CODE)
    return _closed(fig)
