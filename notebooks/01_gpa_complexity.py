# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Grid Partitioned Attention: what it costs and what it keeps
#
# Full attention over an $H \times W$ feature map compares every pixel with every other one: time and
# memory grow with $(HW)^2$. Grid Partitioned Attention (GPA) {cite}`gpa2021` keeps full-resolution
# attention but lets each query see only a few regions, chosen by a cheap low-resolution attention.
# This chapter states the algorithm exactly as `gpa_lib.attention` implements it, derives its cost,
# checks the cost model against measurements on this machine's CPU, and measures how much of the
# true attention GPA keeps as its three knobs (`pool`, `cell`, `topk`) move.
#
# **What is synthetic, what is measured where.** The images are synthetic: a rendered person in two
# poses from the pose chapter's benchmark, and a procedurally textured image; "image-like" features
# come from a fixed random convolution of an image, "random" features are independent Gaussian noise.
# Times and memory were measured on the CPU that built this book (the reproduce page names it); a
# single time on a busy machine can be off by a factor, while peak memory is deterministic. GPU
# numbers belong to the kernel chapter and are not estimated here.

# %% tags=["parameters"]
profile = "full"
seed = 0
heads = 4  # attention heads h
head_dim = 32  # channels per head, D = Dv
pool = 4  # key block side (tokens) of the benchmark setting
cell = 8  # query cell side (tokens)
topk = 8  # key blocks per cell
figure_size = 128  # side of the synthetic person images in the algorithm figure (pixels)
figure_cell = 8  # cell side used in that figure (pixels)
figure_topk = 6  # blocks per cell in that figure
sweep_sizes = [32, 48, 64, 96, 128]  # grid sides for predicted against measured cost
sweep_methods = ["sdpa", "materialised", "auto", "reference", "phase1"]
sweep_repeats = 3  # timed calls per point (median)
max_materialised_mib = 1024  # skip explicit score matrices above this predicted peak
quality_size = 64  # side of the textured image and grid of the quality trade-off study
quality_heads = 2  # heads in the quality study (each head is one more sample)
quality_affinity = "euclid"  # the authors' default affinity
topk_values = [1, 2, 4, 8, 16, 32]
pool_values = [1, 2, 4, 8]  # at a fixed budget of topk * pool^2 = 128 keys per query
cell_values = [4, 8, 16, 32]
split_sizes = [256]  # grid sides for the phase 1 / phase 2 split
training_sizes = [32, 64, 128]  # grid sides of the training-step comparison

# %%
import dataclasses
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from myst_nb import glue

from gpa_lib.attention import cell_block_scores, select_key_blocks
from gpa_lib.attention.analysis.complexity import (
    AttentionSizes,
    authors_defaults,
    cpu_kernel_cost,
    dense_cost,
    gpa_cost,
    method_cost,
    phase1_cost,
    phase2_cost,
)
from gpa_lib.attention.analysis.diagnostics import gpa_quality
from gpa_lib.attention.analysis.figures import mark_blocks, outline_cells, show_grid_image
from gpa_lib.attention.analysis.gpu_results import (
    TARGET_GPU,
    complexity_against_measured,
    count_against_measured_sentence,
    newest_kernel_runs,
)
from gpa_lib.attention.analysis.measure import calibrate_cpu
from gpa_lib.attention.analysis.tradeoff import tradeoff_grid
from gpa_lib.interactive.tradeoff import tradeoff_figure
from gpa_lib.attention import to_heads
from gpa_lib.attention.synthetic import image_features, textured_image
from gpa_lib.pose.data import SyntheticPoses
from gpa_lib.bench.attention import AttentionBenchConfig, bench_one, phase_split
from gpa_lib.results import read_result, result_exists, write_result

start_time = time.perf_counter()
torch.manual_seed(seed)
MiB = 2**20

# %% [markdown]
# ## The algorithm
#
# Queries $q$ live on an $H_q \times W_q$ grid, keys $k$ and values $v$ on an $H_k \times W_k$ grid
# (the two grids may differ: cross-attention from a target image to a source image). Per head, with
# $D$ channels:
#
# 1. **Low resolution.** $\bar q$ and $\bar k$ are average pools of $q$ and $k$ over `pool`$\times$`pool`
#    blocks: $N_q/p^2$ low-resolution queries and $N_b = N_k/p^2$ key blocks.
# 2. **Block probabilities.** $P = \mathrm{softmax}_j\, s(\bar q_i, \bar k_j)$ over all key blocks, with
#    $s(q,k) = q\cdot k/\sqrt D$ (`"dot"`) or $s(q,k) = -\lVert q-k\rVert^2/\sqrt D$ (`"euclid"`, the
#    authors' default).
# 3. **Selection.** The query grid is cut into `cell`$\times$`cell` cells. Each key block gets the mean of
#    $P$ over the cell's $(c/p)^2$ low-resolution queries; the cell keeps the `topk` best blocks (ties to
#    the lower index). No gradient flows through this choice.
# 4. **Attention.** Every full-resolution query of the cell attends, softmax over $s(q,k)$, to exactly the
#    $t\,p^2$ keys inside its selected blocks.
#
# With `topk` equal to the number of key blocks GPA is dense attention (a property the tests check).
# The figure runs steps 1 to 3 as cross-attention, the use GPA was made for: queries from an image of
# a synthetic person in one pose (the target), keys from the same person in another pose (the source),
# both from the pose chapter's `SyntheticPoses`, through a fixed random convolution as features.

# %%
pair = SyntheticPoses(1, size=figure_size, seed=seed)[0]
target_image = (pair["target"] + 1) / 2  # (3, H, W) in [0, 1]: the queries' image
source_image = (pair["source"] + 1) / 2  # (3, H, W): the keys' image
q_fig = to_heads(
    image_features(target_image, heads * head_dim, seed=seed), heads
)  # (1, h, H, W, D)
k_fig = to_heads(
    image_features(source_image, heads * head_dim, seed=seed), heads
)  # (1, h, H, W, D)
setting = {"pool": pool, "cell": figure_cell, "affinity": "euclid"}
selection = select_key_blocks(q_fig, k_fig, topk=figure_topk, **setting)  # (1, h, H/c, W/c, k)
block_scores = cell_block_scores(q_fig, k_fig, **setting)  # (1, h, H/c, W/c, Nb)

cells_side, blocks_side = figure_size // figure_cell, figure_size // pool
coverage = (
    pair["target_mask"][0].view(cells_side, figure_cell, cells_side, figure_cell).mean((1, 3))
)
on_person = (coverage >= 0.5).nonzero().tolist()  # (row, col) of cells on the person, row-major
on_person = on_person or [list(divmod(int(coverage.argmax()), cells_side))]
shown_cells = [on_person[0], on_person[len(on_person) // 2], on_person[-1]]  # top, middle, bottom
colours = ["tab:red", "tab:cyan", "tab:orange"]


extent = (0, figure_size, figure_size, 0)
fig, axes = plt.subplots(1, 3, figsize=(15, 5))
show_grid_image(axes[0], target_image, title="target (queries): cells")
show_grid_image(axes[1], source_image, title=f"source (keys): each cell's top-{figure_topk} blocks")
outline_cells(axes[0], shown_cells, figure_cell, colours)
for (cy, cx), colour in zip(shown_cells, colours, strict=True):
    mark_blocks(axes[1], selection[0, 0, cy, cx].tolist(), pool, blocks_side, colour)
cy, cx = shown_cells[0]
heat = block_scores[0, 0, cy, cx].view(blocks_side, blocks_side)  # (Hk/p, Wk/p)
im = axes[2].imshow(heat.numpy(), extent=extent, cmap="magma")
fig.colorbar(im, ax=axes[2], label="mean of P over the cell's low-res queries")
axes[2].set_title("source: block scores of the red cell")
axes[2].set_xlabel("x (pixels)")
axes[2].set_ylabel("y (pixels)")
fig.tight_layout()
plt.show()
glue("ch1_fig_blocks", blocks_side**2, display=False)
glue("ch1_fig_cell", figure_cell, display=False)
glue("ch1_fig_topk", figure_topk, display=False)

# %% [markdown]
# *Left:* three {glue:text}`ch1_fig_cell`×{glue:text}`ch1_fig_cell` query cells (outlines) on the
# target image. *Middle:* the {glue:text}`ch1_fig_topk` key blocks each cell selects in the source
# image (filled squares in the cell's colour), out of {glue:text}`ch1_fig_blocks`. The selected
# blocks need not lie near the cell: GPA is not local attention, which is what lets it copy detail
# across a change of pose. *Right:* the phase-1 score of every source block for the red cell; the
# selection keeps the brightest blocks. The features come from an untrained random convolution, so
# they match colour and local texture only; how often a trained generator's selection holds the true
# source of a pixel is measured in chapter 3.

# %% [markdown]
# ## The cost model
#
# Per batch element and head, with $N_q$ queries, $N_k$ keys, pool $p$, cell $c$, $t$ = `topk`:
#
# | | FLOPs | peak extra memory (entries) |
# |---|---|---|
# | phase 1 (selection) | $2D\,\dfrac{N_q N_k}{p^4}$ | one chunk of the $\dfrac{N_q}{p^2}\times\dfrac{N_k}{p^2}$ scores, bounded |
# | phase 2 (attention) | $2 N_q\,t p^2\,(D+D_v)$ | $2N_q\,t p^2$ scores $+\ \dfrac{N_q}{c^2}\,t p^2 (D+D_v)$ gathered keys, values |
# | dense | $2 N_q N_k (D+D_v)$ | $2 N_q N_k$ (materialised) or $O(N_q D_v)$ (fused SDPA) |
#
# Phase 2 is linear in $N_q$ for fixed $p, c, t$; phase 1 is quadratic but divided by $p^4$, and its
# memory is bounded because the reference backend walks the cells in chunks. The ratio of the two is
# $F_1/F_2 = N_k D / \big(p^6\,t\,(D+D_v)\big)$. `gpa_lib.attention.analysis.complexity` models every tensor
# the reference and dense implementations allocate (tests hold it to ±20% of measured peak memory) and
# counts bytes moved for a roofline time estimate.

# %%
bench_sizes = AttentionSizes(
    q_grid=(128, 128),
    k_grid=(128, 128),
    head_dim=head_dim,
    heads=heads,
    pool=pool,
    cell=cell,
    topk=topk,
)
glue("ch1_keys_per_query", bench_sizes.keys_per_query, display=False)
glue(
    "ch1_keys_fraction_pct",
    float(100 * bench_sizes.keys_per_query / bench_sizes.n_keys),
    display=False,
)
glue(
    "ch1_flops_ratio_dense_gpa",
    dense_cost(bench_sizes).flops / gpa_cost(bench_sizes).flops,
    display=False,
)
glue(
    "ch1_mem_ratio_model",
    dense_cost(bench_sizes).peak_bytes / gpa_cost(bench_sizes).peak_bytes,
    display=False,
)

# %% [markdown]
# At the benchmark setting (128×128 grids, {glue:text}`ch1_keys_per_query` keys per query, that is
# {glue:text}`ch1_keys_fraction_pct:.2f`% of the keys) the model predicts
# {glue:text}`ch1_flops_ratio_dense_gpa:.0f`× fewer FLOPs than dense attention and
# {glue:text}`ch1_mem_ratio_model:.0f`× less peak memory than attention with a materialised score
# matrix.
#
# ## Predicted against measured, over resolution
#
# Each point below is one method at one square resolution, inference only (`torch.no_grad`), float32,
# {glue:text}`ch1_heads` heads of {glue:text}`ch1_head_dim` channels: `sdpa` is exact attention with
# PyTorch's fused kernel, `materialised` exact attention through an explicit score matrix (skipped where
# it would not fit the memory cap, where only the model is shown), `auto` GPA with the backend
# `backend=None` picks, `reference` the readable pure-torch backend, `phase1` the selection alone. Time
# is predicted as FLOPs over the measured matrix-multiply rate plus bytes over the measured copy
# bandwidth of this CPU.

# %%
glue("ch1_heads", heads, display=False)
glue("ch1_head_dim", head_dim, display=False)
machine = calibrate_cpu()
bench_config = AttentionBenchConfig(
    sizes=tuple(sweep_sizes),
    heads=heads,
    head_dim=head_dim,
    pool=pool,
    cell=cell,
    topk=topk,
    methods=tuple(sweep_methods),
    repeats=sweep_repeats,
    budget_s=3.0,
    max_materialised_bytes=max_materialised_mib * MiB,
)
rows = []
for size in sweep_sizes:
    for method in sweep_methods:
        record = bench_one(method, bench_config, size, torch.device("cpu"))
        sizes = bench_sizes.with_(q_grid=(size, size), k_grid=(size, size))
        model = method_cost(method, sizes, record.get("backend"))  # flex is measured, not modelled
        rows.append(
            {
                "size": size,
                "tokens": size * size,
                "method": method,
                "backend": record.get("backend"),
                "measured_ms": 1e3 * record["median_s"] if "median_s" in record else np.nan,
                "measured_mib": record["peak_bytes"] / MiB if "peak_bytes" in record else np.nan,
                "model_mib": model.peak_bytes / MiB if model else np.nan,
                "model_ms": 1e3 * model.time_s(machine["flops_per_s"], machine["bytes_per_s"])
                if model
                else np.nan,
            }
        )
sweep = pd.DataFrame(rows)
sweep.round(2)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
for method, colour in zip(sweep_methods, palette[: len(sweep_methods)], strict=True):
    part = sweep[sweep.method == method]
    axes[0].plot(part.tokens, part.measured_mib, "o", color=colour, label=f"{method} measured")
    axes[0].plot(part.tokens, part.model_mib, "-", color=colour, alpha=0.6, label=f"{method} model")
    axes[1].plot(part.tokens, part.measured_ms, "o", color=colour, label=f"{method} measured")
    axes[1].plot(
        part.tokens, part.model_ms, "-", color=colour, alpha=0.6, label=f"{method} predicted"
    )
for ax, label in zip(axes, ["peak extra memory (MiB)", "time per call (ms)"], strict=True):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("query tokens = key tokens (H×W)")
    ax.set_ylabel(label)
axes[0].legend(fontsize=7, ncol=2)
axes[0].set_title("memory: model (lines) and measurement (dots)")
axes[1].set_title("time: roofline prediction (lines) and median measurement (dots)")
fig.tight_layout()
plt.show()

modelled = sweep.dropna(subset=["measured_mib", "model_mib"])
mem_error = (modelled.measured_mib / modelled.model_mib - 1).abs().max()
largest = sweep[sweep["size"] == max(sweep_sizes)].set_index("method")
speedup = largest.loc["sdpa", "measured_ms"] / largest.loc["auto", "measured_ms"]
materialised_mib = (
    dense_cost(
        bench_sizes.with_(q_grid=(max(sweep_sizes),) * 2, k_grid=(max(sweep_sizes),) * 2)
    ).peak_bytes
    / MiB
)
time_ratio = (sweep.measured_ms / sweep.model_ms).dropna()
glue("ch1_mem_model_max_err_pct", float(100 * mem_error), display=False)
glue("ch1_sweep_max_size", max(sweep_sizes), display=False)
glue("ch1_speedup_auto_sdpa", float(speedup), display=False)
glue("ch1_auto_backend", str(largest.loc["auto", "backend"]), display=False)
glue(
    "ch1_mem_ratio_measured",
    float(materialised_mib / largest.loc["auto", "measured_mib"]),
    display=False,
)
glue("ch1_time_ratio_min", float(time_ratio.min()), display=False)
glue("ch1_time_ratio_max", float(time_ratio.max()), display=False)

# %% [markdown]
# *Left:* peak extra memory (output included) against the number of tokens, log-log. Lines are the
# model, dots the measurement; they agree to {glue:text}`ch1_mem_model_max_err_pct:.1f`% at worst.
# The materialised score matrix grows with the square of the tokens (slope 2), GPA's phase 2 linearly
# (slope 1), phase 1 stays small. *Right:* median time per call against tokens, with the roofline
# prediction; measured over predicted ranges from {glue:text}`ch1_time_ratio_min:.1f` to
# {glue:text}`ch1_time_ratio_max:.1f`: the prediction gets the slopes right, while small calls are
# dominated by per-operation overhead that no FLOP count sees, and on a shared CPU any single time can
# be off by a factor.
#
# At {glue:text}`ch1_sweep_max_size`×{glue:text}`ch1_sweep_max_size` the automatically chosen backend
# ({glue:text}`ch1_auto_backend:s`) is {glue:text}`ch1_speedup_auto_sdpa:.0f`× faster than fused
# dense SDPA, and uses {glue:text}`ch1_mem_ratio_measured:.0f`× less peak memory than the
# materialised score matrix would need (model value where that method was skipped).
#
# ## Training: what the backward pass keeps
#
# Everything above is inference. A training step also keeps, for the backward pass, whatever the
# forward computed: the `reference` backend keeps its $N_q \times t p^2$ attention weights, a
# materialised dense attention its $N_q \times N_k$ scores, while fused SDPA keeps only its output
# and one log-sum-exp per query. The `recompute` backend runs phase 2 in runs of cells under
# activation checkpointing: it keeps nothing but its inputs and recomputes one run at a time in the
# backward pass. Below, one training step (forward, then backward into fresh gradients of q, k and v,
# which every method must allocate) at each size, measured like the sweep above
# (`python -m gpa_lib.bench attention --training` runs the same comparison from the command line).

# %%
training_cfg = dataclasses.replace(  # the sweep's settings, as training steps
    bench_config,
    sizes=tuple(training_sizes),
    methods=("sdpa", "materialised", "reference", "recompute", "cpu"),
    training=True,
)
training_records = [
    bench_one(method, training_cfg, size, torch.device("cpu"))
    for size in training_sizes
    for method in training_cfg.methods
]
training = pd.DataFrame(
    [
        {
            "size": r["size"],
            "tokens": r["tokens"],
            "method": r["method"],
            "peak_mib": r.get("peak_bytes", np.nan) / MiB,
            "ms": r.get("median_s", np.nan) * 1e3,
        }
        for r in training_records
    ]
)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for method in training_cfg.methods:
    part = training[training.method == method].dropna()
    axes[0].plot(part.tokens, part.peak_mib, "o-", label=method)
    axes[1].plot(part.tokens, part.ms, "o-", label=method)
for ax, label in zip(
    axes, ["peak extra memory of a training step (MiB)", "time per step (ms)"], strict=True
):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("query tokens = key tokens (H×W)")
    ax.set_ylabel(label)
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

at_top = training[training["size"] == max(training_sizes)].set_index("method")
glue("ch1_train_size", max(training_sizes), display=False)
ratios = {  # glue key: (column, numerator method, denominator method)
    "ch1_train_ref_over_sdpa": ("peak_mib", "reference", "sdpa"),
    "ch1_train_rec_over_sdpa": ("peak_mib", "recompute", "sdpa"),
    "ch1_train_rec_over_ref": ("peak_mib", "recompute", "reference"),
    "ch1_train_rec_time_over_ref": ("ms", "recompute", "reference"),
    "ch1_train_speedup_rec_sdpa": ("ms", "sdpa", "recompute"),
    "ch1_train_speedup_cpu_sdpa": ("ms", "sdpa", "cpu"),
    "ch1_train_cpu_time_over_rec": ("ms", "cpu", "recompute"),
    "ch1_train_cpu_mem_over_rec": ("peak_mib", "cpu", "recompute"),
}
for key, (column, top, bottom) in ratios.items():
    glue(key, float(at_top[column][top] / at_top[column][bottom]), display=False)
training.pivot(index="size", columns="method", values=["peak_mib", "ms"]).round(2)

# %% [markdown]
# *Peak extra memory (left) and median time (right) of one training step against the number of
# tokens, log-log; the table holds the same numbers. Materialised dense attention is skipped where its
# score matrix would pass the memory cap.*
#
# At {glue:text}`ch1_train_size`×{glue:text}`ch1_train_size`, the `reference` backend needs
# {glue:text}`ch1_train_ref_over_sdpa:.1f`× the training memory of fused SDPA; `recompute` cuts that to
# {glue:text}`ch1_train_rec_over_sdpa:.1f`× ({glue:text}`ch1_train_rec_over_ref:.2f` of the reference
# backend's) for {glue:text}`ch1_train_rec_time_over_ref:.2f`× its time, and is still
# {glue:text}`ch1_train_speedup_rec_sdpa:.0f`× faster than SDPA, which on CPU pays the full
# $N_q \times N_k$ arithmetic twice. The `cpu` backend (both passes in the fused CPU kernel: the
# backward recomputes each cell's weights from the forward's log-sum-exp and forms the gradients of q,
# k, v and the key bias per cell) takes {glue:text}`ch1_train_cpu_time_over_rec:.2f`× the time of
# `recompute` with {glue:text}`ch1_train_cpu_mem_over_rec:.2f`× its memory:
# {glue:text}`ch1_train_speedup_cpu_sdpa:.0f`× faster than SDPA. All GPA backends stay linear in the
# tokens. The pose-morphing chapter trains its GPA generator on `recompute`.
#
# The committed benchmark runs the same step at 128×128 (B = 1, 4 heads of 32 channels, `cell` 8,
# `pool` 4, `topk` 8) with 1 and 2 torch threads on an otherwise idle machine
# (`python -m gpa_lib.bench attention --training --sizes 128 --methods sdpa recompute cpu reference
# --repeats 3 --threads N`); the table renders its JSON with the machine and commit that produced it.

# %%
bench_rows = []
for n_threads in (1, 2):
    name = f"attention_bench_cpu_training_threads{n_threads}"
    if not result_exists(name):
        continue
    stored = read_result(name)
    by_method = {r["method"]: r for r in stored["records"] if r.get("median_s")}
    if not {"sdpa", "cpu", "recompute"} <= set(by_method):
        continue
    cpu_run, sdpa_run, rec_run = (by_method[m] for m in ("cpu", "sdpa", "recompute"))
    bench_rows.append(
        {
            "threads": n_threads,
            "grid": f"{cpu_run['size']}²",
            "cpu (ms)": 1e3 * cpu_run["median_s"],
            "recompute (ms)": 1e3 * rec_run["median_s"],
            "sdpa (ms)": 1e3 * sdpa_run["median_s"],
            "sdpa / cpu": sdpa_run["median_s"] / cpu_run["median_s"],
            "cpu memory (MiB)": cpu_run["peak_bytes"] / MiB,
            "recompute memory (MiB)": rec_run["peak_bytes"] / MiB,
            "commit": stored["provenance"]["commit"][:12],
            "machine": f"{stored['provenance']['device']['cpu']}, {stored['provenance']['date'][:10]}",
        }
    )
training_bench = pd.DataFrame(bench_rows)
if len(training_bench):
    training_bench = training_bench.set_index("threads")
    for n_threads, row in training_bench.iterrows():
        glue(f"ch1_train_bench_speedup_t{n_threads}", float(row["sdpa / cpu"]), display=False)
        glue(
            f"ch1_train_bench_mem_over_rec_t{n_threads}",
            float(row["cpu memory (MiB)"] / row["recompute memory (MiB)"]),
            display=False,
        )
    glue("ch1_train_bench_where", training_bench["machine"].iloc[-1], display=False)
for n_threads in (1, 2):  # a missing run reads as nan, never as a stale number
    if not len(training_bench) or n_threads not in training_bench.index:
        glue(f"ch1_train_bench_speedup_t{n_threads}", float("nan"), display=False)
        glue(f"ch1_train_bench_mem_over_rec_t{n_threads}", float("nan"), display=False)
if not len(training_bench):
    glue("ch1_train_bench_where", "no machine: the benchmark has not been run", display=False)
training_bench.round(2) if len(training_bench) else "no stored training benchmark"

# %% [markdown]
# *One training step at 128×128 from the committed benchmark: median of 3 after a warm-up, peak extra
# memory measured once.* On {glue:text}`ch1_train_bench_where` the `cpu` backend's step is
# {glue:text}`ch1_train_bench_speedup_t2:.0f`× faster than SDPA's with 2 threads
# ({glue:text}`ch1_train_bench_speedup_t1:.0f`× with 1) and takes
# {glue:text}`ch1_train_bench_mem_over_rec_t2:.2f`× the memory of `recompute`.
#
# ## What GPA keeps: attention mass and output error
#
# Two measures compare GPA with exact attention, for every query: the share of the query's *full*
# softmax mass that falls on the keys GPA lets it see (the authors' `err_stat`; 1 means nothing was
# dropped), and the relative output error $\lVert o_{GPA}-o\rVert/\lVert o\rVert$ over the whole
# output. Image-like features are self-attention on the textured image's features ($q=k=v$); random
# features are independent Gaussian $q$, $k$, $v$, the case without any structure to exploit.
# Affinity is {glue:text}`ch1_quality_affinity`. Each panel moves one knob from the benchmark setting;
# the pool sweep keeps the key budget $t\,p^2$ fixed.

# %%
glue("ch1_quality_affinity", quality_affinity, display=False)
quality_image = to_heads(
    image_features(textured_image(quality_size, seed=seed), quality_heads * head_dim, seed=seed),
    quality_heads,
)  # (1, h, H, W, D)
generator = torch.Generator().manual_seed(seed + 1)
quality_random = [
    torch.randn(quality_image.shape, generator=generator) for _ in range(3)
]  # q, k, v
budget = topk * pool**2
settings = (
    [("topk", t, {"pool": pool, "cell": cell, "topk": t}) for t in topk_values]
    + [("pool", p, {"pool": p, "cell": max(cell, p), "topk": budget // p**2}) for p in pool_values]
    + [("cell", c, {"pool": pool, "cell": c, "topk": topk}) for c in cell_values]
)
quality_rows = []
for knob, value, setting in settings:
    for kind, (q, k, v) in (
        ("image-like", (quality_image,) * 3),
        ("random", quality_random),
    ):
        result = gpa_quality(q, k, v, affinity=quality_affinity, **setting)
        quality_rows.append(
            {"knob": knob, "value": value, "features": kind, **setting, **result.__dict__}
        )
quality = pd.DataFrame(quality_rows)

fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharey="row")
for column, knob in enumerate(["topk", "pool", "cell"]):
    for kind, marker in (("image-like", "o-"), ("random", "s--")):
        part = quality[(quality.knob == knob) & (quality.features == kind)]
        axes[0, column].plot(part.value, part.mass_mean, marker, label=kind)
        axes[1, column].plot(part.value, part.error_total, marker, label=kind)
    for row in range(2):
        axes[row, column].set_xscale("log", base=2)
        axes[row, column].set_xlabel(
            {
                "topk": "topk (blocks per cell)",
                "pool": "pool (block side, tokens)",
                "cell": "cell (side, tokens)",
            }[knob]
        )
axes[0, 0].set_ylabel("mean share of softmax mass kept")
axes[1, 0].set_ylabel("relative output error")
axes[0, 0].legend()
fig.suptitle(f"GPA against exact attention on a {quality_size}×{quality_size} grid")
fig.tight_layout()
plt.show()

at_default = quality[
    (quality["pool"] == pool) & (quality["cell"] == cell) & (quality["topk"] == topk)
].drop_duplicates("features")
if len(at_default) < 2:  # the sweeps skipped the benchmark setting: evaluate it once
    at_default = pd.DataFrame(
        [
            {
                "features": kind,
                **gpa_quality(
                    q, k, v, pool=pool, cell=cell, topk=topk, affinity=quality_affinity
                ).__dict__,
            }
            for kind, (q, k, v) in (
                ("image-like", (quality_image,) * 3),
                ("random", quality_random),
            )
        ]
    )
at_default = at_default.set_index("features")
glue("ch1_quality_size", quality_size, display=False)
glue("ch1_topk", topk, display=False)
glue("ch1_mass_image", float(at_default.loc["image-like", "mass_mean"]), display=False)
glue("ch1_mass_random", float(at_default.loc["random", "mass_mean"]), display=False)
glue("ch1_err_image", float(at_default.loc["image-like", "error_total"]), display=False)
glue("ch1_err_random", float(at_default.loc["random", "error_total"]), display=False)
glue("ch1_quality_keys_pct", float(100 * at_default.loc["random", "keys_fraction"]), display=False)
pool_sweep = quality[(quality.knob == "pool") & (quality.features == "image-like")].set_index(
    "value"
)
small, large = pool_sweep.loc[pool_sweep.index.min()], pool_sweep.loc[pool_sweep.index.max()]
glue("ch1_pool_small", int(pool_sweep.index.min()), display=False)
glue("ch1_pool_large", int(pool_sweep.index.max()), display=False)
glue("ch1_mass_pool_small", float(small.mass_mean), display=False)
glue("ch1_mass_pool_large", float(large.mass_mean), display=False)
glue("ch1_err_pool_small", float(small.error_total), display=False)
glue("ch1_err_pool_large", float(large.error_total), display=False)
glue("ch1_pool_mass_word", "more" if small.mass_mean > large.mass_mean else "less", display=False)
glue("ch1_pool_err_word", "larger" if small.error_total > large.error_total else "smaller",
     display=False)  # fmt: skip

# %% [markdown]
# *Top row:* mean share of the exact softmax mass on the keys GPA keeps; *bottom row:* relative output
# error, both against the knob on the horizontal axis (log scale). An error above 1 means GPA's output is
# further from the exact one than zero is: with random features exact attention averages almost all
# values to nearly nothing, GPA averages a few. On image-like features GPA keeps far
# more mass than the fraction of keys it looks at; on random features it keeps about that fraction,
# because nothing tells phase 1 where the mass is. At the benchmark setting of
# {glue:text}`ch1_topk` blocks per cell ({glue:text}`ch1_quality_keys_pct:.1f`% of the keys) the image-like
# features keep {glue:text}`ch1_mass_image:.2f` of the mass with a relative output error of
# {glue:text}`ch1_err_image:.2f`, the random ones {glue:text}`ch1_mass_random:.2f` and
# {glue:text}`ch1_err_random:.2f`. At a fixed key budget, smaller blocks (small `pool`) make phase 1
# more expensive (next section). On the image-like features pool {glue:text}`ch1_pool_small` keeps
# {glue:text}`ch1_pool_mass_word` mass than pool {glue:text}`ch1_pool_large`
# ({glue:text}`ch1_mass_pool_small:.2f` against {glue:text}`ch1_mass_pool_large:.2f`) yet has the
# {glue:text}`ch1_pool_err_word` output error ({glue:text}`ch1_err_pool_small:.2f` against
# {glue:text}`ch1_err_pool_large:.2f`). Larger cells share one selection among more queries and lose
# mass.
#
# ## Where the time goes: phase 1 against phase 2
#
# The authors' layer scales its knobs with the resolution: `pool` = H/64 (a 64×64 low-resolution grid),
# `cell` = 2·`pool` and `topk` = 2. We time phase 1 and phase 2 of the reference backend separately
# (phase 2 on a precomputed selection), on random inputs, at those defaults and at the benchmark
# setting.

# %%
split_rows = []
for size in split_sizes:
    q, k, v = (torch.randn(1, heads, size, size, head_dim, generator=generator) for _ in range(3))
    for name, setting in (
        ("authors' defaults", authors_defaults(size)),
        ("benchmark setting", {"pool": pool, "cell": cell, "topk": topk}),
    ):
        timing = phase_split(q, k, v, **setting, repeats=sweep_repeats)
        sizes = bench_sizes.with_(q_grid=(size, size), k_grid=(size, size), **setting)
        split_rows.append(
            {
                "size": size,
                "setting": name,
                **setting,
                "phase1_ms": 1e3 * timing["phase1_s"],
                "phase2_ms": 1e3 * timing["phase2_s"],
                "phase1_time_share": timing["phase1_share"],
                "phase1_flop_share": phase1_cost(sizes).flops
                / (phase1_cost(sizes).flops + phase2_cost(sizes).flops),
            }
        )
split = pd.DataFrame(split_rows)

fig, ax = plt.subplots(figsize=(8, 4))
labels = [
    f"{r.setting}\n{r.size}² (p={r.pool}, c={r.cell}, t={r.topk})" for r in split.itertuples()
]
ax.barh(labels, split.phase1_ms, label="phase 1: selection")
ax.barh(labels, split.phase2_ms, left=split.phase1_ms, label="phase 2: attention to selected keys")
ax.set_xlabel("time per call (ms, median, reference backend, CPU)")
ax.legend()
fig.tight_layout()
plt.show()
split.round(3)

# %%
largest_split = split[
    (split["size"] == max(split_sizes)) & (split.setting == "authors' defaults")
].iloc[0]
glue("ch1_split_size", int(largest_split["size"]), display=False)
glue("ch1_phase1_time_share_pct", float(100 * largest_split.phase1_time_share), display=False)
glue("ch1_phase1_flop_share_pct", float(100 * largest_split.phase1_flop_share), display=False)

high_res = []
for size in [256, 512, 1024, 2048]:
    for name, setting in (
        ("authors' defaults", authors_defaults(size)),
        ("fixed pool 4, cell 8, topk 8", {"pool": pool, "cell": cell, "topk": topk}),
    ):
        sizes = bench_sizes.with_(q_grid=(size, size), k_grid=(size, size), **setting)
        f1, f2, fd = phase1_cost(sizes).flops, phase2_cost(sizes).flops, dense_cost(sizes).flops
        high_res.append(
            {
                "size": size,
                "setting": name,
                "phase1_GFLOP": f1 / 1e9,
                "phase2_GFLOP": f2 / 1e9,
                "dense_GFLOP": fd / 1e9,
                "phase1_share": f1 / (f1 + f2),
                "dense_over_gpa": fd / (f1 + f2),
            }
        )
high_res = pd.DataFrame(high_res)
fixed_1024 = high_res[(high_res["size"] == 1024) & (high_res.setting != "authors' defaults")].iloc[
    0
]
defaults_1024 = high_res[
    (high_res["size"] == 1024) & (high_res.setting == "authors' defaults")
].iloc[0]
glue("ch1_fixed_1024_phase1_share_pct", float(100 * fixed_1024.phase1_share), display=False)
glue("ch1_fixed_1024_dense_over_gpa", float(fixed_1024.dense_over_gpa), display=False)
glue("ch1_defaults_1024_dense_over_gpa", float(defaults_1024.dense_over_gpa), display=False)
at_2048 = high_res[high_res["size"] == 2048].set_index("setting").dense_over_gpa
glue("ch1_defaults_2048_dense_over_gpa", float(at_2048["authors' defaults"]), display=False)
glue(
    "ch1_fixed_2048_dense_over_gpa", float(at_2048.drop("authors' defaults").iloc[0]), display=False
)
glue("ch1_fixed_limit", float(pool**4 * 2), display=False)  # p^4 (D + Dv) / D with Dv = D
high_res.round(3)

# %% [markdown]
# *Bars:* median time of phase 1 (selection) and phase 2 (attention to the selected keys) of the
# reference backend, per resolution and setting. At the authors' defaults and
# {glue:text}`ch1_split_size`×{glue:text}`ch1_split_size`, phase 1 takes
# {glue:text}`ch1_phase1_time_share_pct:.0f`% of the time ({glue:text}`ch1_phase1_flop_share_pct:.0f`%
# of the FLOPs): with only two blocks per cell, phase 2 is cheap, and the 64×64 low-resolution
# attention is what remains.
#
# What that means at high resolution, from the model (table). With the authors' defaults the
# low-resolution grid stays 64×64, so phase 1 costs the same at every size, but each query sees
# $2p^2 = 2(H/64)^2$ keys, a fixed fraction of the image, and phase 2 grows quadratically: GPA's saving
# over dense attention levels off ({glue:text}`ch1_defaults_1024_dense_over_gpa:.0f`× at 1024²,
# {glue:text}`ch1_defaults_2048_dense_over_gpa:.0f`× at 2048²). With `pool`, `cell` and `topk` fixed,
# phase 2 is linear, but phase 1 is the quadratic term $2 N_q N_k D/p^4$: at 1024² it is
# {glue:text}`ch1_fixed_1024_phase1_share_pct:.0f`% of the FLOPs, and the saving levels off at
# $p^4 (D+D_v)/D$ = {glue:text}`ch1_fixed_limit:.0f`× ({glue:text}`ch1_fixed_2048_dense_over_gpa:.0f`×
# at 2048²). Either way GPA divides a quadratic cost by a constant, and unless `pool` grows with the
# image that constant is set by phase 1. Its memory is bounded here by chunking, but its time is a dense
# attention at low resolution: a fast implementation has to fuse it with a running top-k (the CUDA
# kernel chapter) or make the selection hierarchical.

# %% [markdown]
# ### The count against a GPU
#
# Chapter 2 times both phases of the `cuda` backend on a GPU, at the setting of its kernel benchmark:
# phase 1 as the chunked products of the reference's selection, phase 2 as one fused kernel. The
# count of this chapter, at that setting, against that measurement: {glue:text}`ch1_gpu_sentence`

# %%
count = complexity_against_measured(newest_kernel_runs().get(TARGET_GPU))
glue("ch1_gpu_sentence", count_against_measured_sentence(count), display=False)
pd.Series(count, name="phase 1 against phase 2, forward")

# %% [markdown]
# ## The three knobs together
#
# The panels of *What GPA keeps* move one knob at a time. Below, every combination of the `topk`, `pool` and `cell`
# values of those sweeps (the ones that are GPA settings: `cell` a multiple of `pool`) is evaluated
# on the same {glue:text}`ch1_quality_size`×{glue:text}`ch1_quality_size` features, and the sliders
# choose one: the cost model's peak extra memory and time for that call at this CPU's measured rates,
# next to exact attention's, and the kept softmax mass and output error for both kinds of features
# (the same measures as above, for {glue:text}`ch1_tradeoff_settings` settings). The figure runs in
# the page, from numbers computed when the chapter was executed; the static figures above are its
# printed form.

# %%
tradeoff_start = time.perf_counter()
tradeoff = tradeoff_grid(
    {"image-like": (quality_image,) * 3, "random": tuple(quality_random)},
    topk_values=topk_values,
    pool_values=pool_values,
    cell_values=cell_values,
    affinity=quality_affinity,
    flops_per_s=machine["flops_per_s"],
    bytes_per_s=machine["bytes_per_s"],
)
glue("ch1_tradeoff_settings", len(tradeoff), display=False)
glue("ch1_tradeoff_s", time.perf_counter() - tradeoff_start, display=False)
tradeoff_figure(
    tradeoff,
    features=["image-like", "random"],
    initial={"topk": topk, "pool": pool, "cell": cell},
    q_grid=(quality_size, quality_size),
    k_grid=(quality_size, quality_size),
)

# %% [markdown]
# *Sliders:* `topk` (key blocks per cell), `pool` (block side) and `cell` (cell side, tokens).
# *Top:* modelled peak extra memory and time per call (log scale) of GPA's reference and fused `cpu`
# backends, and of exact attention with a materialised score matrix or fused SDPA, which do not
# depend on the knobs. *Bottom:* mean share of the exact softmax mass on the keys GPA keeps, beside
# the share of keys it looks at, and the relative output error. Memory and time grow with
# `topk`·`pool`² (the keys each query sees); on image-like features the kept mass stays above the
# share of keys seen, on random features close to it. Computing the whole grid took
# {glue:text}`ch1_tradeoff_s:.1f` s.

# %% [markdown]
# ## Against the authors' code, and the floor of this CPU
#
# The authors released their layer (`GPA_module.py` in `zalandoresearch/gpa`), not a benchmark. The
# stored comparison below feeds the same random inputs (one head of 64 channels, batch 1, the
# `"euclid"` affinity) through their attention core `GPA_module._doAtt` and through `gpa_attention`,
# at the settings their layer's defaults imply (`pool` = H/64, `cell` = 2·`pool`) and `topk` = 8,
# in inference. `auto` is what `backend=None` picks on this CPU (the fused `cpu` kernel: one task per
# query cell, the cell's keys and values gathered into a cache-sized buffer). The floor is the least
# time of both phases on the machine that ran the comparison: their FLOPs over its measured
# matrix-multiply rate, or the bytes they must move over its copy bandwidth, whichever is larger.
# Rerun it with a clone of their repository:
# `python -m gpa_lib.bench official --path <clone>` (their code is imported from there, never copied
# into this project).

# %%
official = read_result("official_gpa") if result_exists("official_gpa") else None
if official is not None:
    rates = official["machine"]
    official_rows = []
    for r in official["records"]:
        sizes = AttentionSizes(
            (r["size"], r["size"]), (r["size"], r["size"]), head_dim=official["config"]["head_dim"],
            pool=r["pool"], cell=r["cell"], topk=r["topk"], affinity="euclid",
        )  # fmt: skip
        floor = cpu_kernel_cost(sizes).time_s(
            rates["flops_per_s"], rates["bytes_per_s"], overlap=True
        )
        official_rows.append(
            {
                "grid": f"{r['size']}²",
                "size": r["size"],
                "authors (ms)": 1e3 * r["authors_median_s"],
                **{
                    f"{m} (ms)": 1e3 * r[f"{m}_median_s"]
                    for m in ("auto", "cpu", "reference", "recompute")
                },
                "floor (ms)": 1e3 * floor,
                "auto / floor": r["auto_median_s"] / floor,
                "authors / auto": r["speedup_auto_vs_authors"],
                "auto first call / warm": r["auto_first_call_s"] / r["auto_median_s"],
                "cpu phase 1 share": r.get("cpu_phase1_median_s", float("nan")) / r["cpu_median_s"],
                "max |ours - theirs|": max(r[f"{m}_max_abs_diff"] for m in ("auto", "reference")),
            }
        )
    official_table = pd.DataFrame(official_rows).set_index("grid")
    prov = official["provenance"]
    threads = official.get("threads")
    glue(
        "ch1_official_where",
        f"{prov['device']['cpu']}, {threads or 'all'} thread(s), {prov['date'][:10]}",
        display=False,
    )
    glue("ch1_official_min_speedup", float(official_table["authors / auto"].min()), display=False)
    glue("ch1_official_max_speedup", float(official_table["authors / auto"].max()), display=False)
    glue("ch1_official_max_diff", float(official_table["max |ours - theirs|"].max()), display=False)
    largest_official = official_table.iloc[-1]
    glue("ch1_official_largest", largest_official.name, display=False)
    glue("ch1_official_floor_ratio", float(largest_official["auto / floor"]), display=False)
    glue(
        "ch1_official_first_call", float(official_table["auto first call / warm"].max()),
        display=False,
    )  # fmt: skip
    glue("ch1_official_gflops", rates["flops_per_s"] / 1e9, display=False)
    glue(
        "ch1_official_phase1_share_pct", float(100 * largest_official["cpu phase 1 share"]),
        display=False,
    )  # fmt: skip
    fig, ax = plt.subplots(figsize=(8, 4))
    for column in ("authors (ms)", "auto (ms)", "reference (ms)", "recompute (ms)", "floor (ms)"):
        style = "k--" if column.startswith("floor") else "o-"
        ax.plot(official_table["size"] ** 2, official_table[column], style, label=column[:-5])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("query tokens = key tokens (H×W)")
    ax.set_ylabel("time per call (ms, median)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.show()
    display_official = official_table.drop(columns="size").round(3)
else:
    glue("ch1_official_where", "no machine: the comparison has not been run", display=False)
    glue("ch1_official_largest", "none", display=False)
    for key in ("min_speedup", "max_speedup", "max_diff", "floor_ratio", "first_call", "gflops",
                "phase1_share_pct"):  # fmt: skip
        glue(f"ch1_official_{key}", float("nan"), display=False)
    display_official = "no stored comparison: run python -m gpa_lib.bench official --path <clone>"
display_official

# %% [markdown]
# *Lines:* median time per call against tokens, log-log; the dashed line is the floor. Measured on
# {glue:text}`ch1_official_where` (the JSON's provenance). The automatic choice is
# {glue:text}`ch1_official_min_speedup:.1f`× to {glue:text}`ch1_official_max_speedup:.1f`× faster than
# the authors' code, with outputs that agree to {glue:text}`ch1_official_max_diff:.1e` (float32). At
# {glue:text}`ch1_official_largest` it is {glue:text}`ch1_official_floor_ratio:.1f`× above the floor
# (a matrix-multiply rate of {glue:text}`ch1_official_gflops:.0f` GFLOP/s); its first call at a new
# shape took at most {glue:text}`ch1_official_first_call:.2f`× a warm call (the CPU kernel is compiled
# once per machine and cached, and nothing is compiled per shape). At the authors' settings phase 1 is
# a full 64×64-grid attention whatever the resolution; fused with the cell averaging and the top-k it
# takes {glue:text}`ch1_official_phase1_share_pct:.0f`% of the `cpu` backend's time at
# {glue:text}`ch1_official_largest`.

# %% tags=["remove-cell"]
if profile != "smoke":
    write_result(
        "ch1_gpa_complexity",
        {
            "sweep": sweep.to_dict(orient="records"),
            "quality": quality.to_dict(orient="records"),
            "split": split.to_dict(orient="records"),
            "training": training.to_dict(orient="records"),
            "high_resolution_model": high_res.to_dict(orient="records"),
            "tradeoff": tradeoff.to_dict(orient="records"),
            "machine": machine,
        },
        profile=profile,
        wall_time_s=time.perf_counter() - start_time,
    )
glue("ch1_wall_s", time.perf_counter() - start_time, display=False)

# %% [markdown]
# This chapter ran in {glue:text}`ch1_wall_s:.0f` s. A reader with a GPU runs
# `python -m gpa_lib.bench attention --device cuda` for the same comparison there, and the kernel
# chapter for the fused CUDA backend.
