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
#
# ## In short
#
# - **Cost.** At 128×128 each query sees {glue:text}`ch1_keys_per_query` keys
#   ({glue:text}`ch1_keys_fraction_pct:.2f`% of them). The cost model predicts
#   {glue:text}`ch1_flops_ratio_dense_gpa:.0f`× fewer FLOPs than dense attention and
#   {glue:text}`ch1_mem_ratio_model:.0f`× less peak memory than a materialised score matrix; the
#   measured peak memory matches the model within {glue:text}`ch1_mem_model_max_err_pct:.1f`%
#   ([predicted against measured](#ch1-sweep)). The paper's memory claim against its baseline,
#   exact attention with a score matrix: **{glue:text}`ch1_verdict_memory`**; against fused exact
#   attention in a training step (exploratory, below): **{glue:text}`ch1_verdict_memory_fused`**.
# - **What it keeps.** Looking at {glue:text}`ch1_quality_keys_pct:.1f`% of the keys, GPA keeps
#   {glue:text}`ch1_mass_image:.2f` of the softmax mass on image-like features
#   ({glue:text}`ch1_mass_words_image`) and {glue:text}`ch1_mass_random:.2f` on random features
#   ({glue:text}`ch1_mass_words_random`) ([what GPA keeps](#ch1-quality)). The paper's inductive
#   bias, that image structure puts the attention on few blocks: **{glue:text}`ch1_verdict_bias`**
#   (kept mass {glue:text}`ch1_bias_ratio:.1f`× the share of keys, {glue:text}`ch1_bias_level_pct:.0f`%
#   interval {glue:text}`ch1_bias_lo:.1f`× to {glue:text}`ch1_bias_hi:.1f`×, a bootstrap over the
#   {glue:text}`ch1_bias_units` heads × query cells of one draw of the features; it does not
#   resample the features).
# - **Training memory.** With `recompute` a training step at {glue:text}`ch1_train_size`² needs
#   {glue:text}`ch1_train_rec_over_sdpa:.1f`× the memory of fused SDPA, against
#   {glue:text}`ch1_train_ref_over_sdpa:.1f`× for `reference` ([training](#ch1-training)).
# - **Speed, from committed runs.** On {glue:text}`ch1_train_bench_where` with 2 threads,
#   {glue:text}`ch1_train_bench_speed_t2` in a training step at 128² ([the committed
#   benchmark](#ch1-training-bench)). Against the authors' code, `auto` took
#   {glue:text}`ch1_official_min_speedup:.1f`× to {glue:text}`ch1_official_max_speedup:.1f`× less
#   time (medians of {glue:text}`ch1_official_repeats` calls, {glue:text}`ch1_official_where`), with
#   outputs that agree to {glue:text}`ch1_official_max_diff:.1e` ([against the authors](#ch1-official)).
# - **Where the cost goes.** Unless `pool` grows with the image, phase 1 (the selection) sets the
#   constant: at 1024² with fixed knobs it is {glue:text}`ch1_fixed_1024_phase1_share_pct:.0f`% of
#   the FLOPs ([phase 1 against phase 2](#ch1-split)).
#
# Times measured live in this chapter are this machine's, under whatever load it had; the words
# "faster", "slower" and "linear" appear only where the range of the timed calls allows them.
#
# ```{glue:figure} ch1_headline_figure
# :alt: Two panels: left, peak extra memory of materialised exact attention and of GPA against the number of tokens, log-log, with model lines and measured dots; right, the share of the exact softmax mass GPA keeps against the share of keys each query sees, for image-like and random features, with a dotted diagonal.
#
# *Left:* peak extra memory of exact attention with a materialised score matrix (`materialised`)
# and of GPA (`auto`) against the number of tokens, log-log: model as lines, measurements as dots.
# The score matrix grows with the square of the tokens, GPA about linearly. *Right:* the share of the
# exact softmax mass GPA keeps against the share of keys each query sees, as `topk` grows; above the
# dotted line GPA keeps more mass than the keys it looks at, which structured (image-like) features
# allow and random ones do not.
# ```
#
# **What is synthetic, what is measured where.** The images are synthetic: a rendered person in two
# poses from the pose chapter's benchmark, and a procedurally textured image; "image-like" features
# come from a fixed random convolution of an image, "random" features are independent Gaussian noise.
# Memory is deterministic. Live times were taken on the CPU that built this book (the reproduce page
# names it); committed benchmarks name their own machine. GPU numbers belong to the kernel chapter.

# %% tags=["parameters", "hide-input"]
profile = "full"
seed = 0
heads = 4  # attention heads h
head_dim = 32  # channels per head, D = Dv
pool = 4  # key block side (tokens) of the benchmark setting
cell = 8  # query cell side (tokens)
topk = 8  # key blocks per cell
figure_size = 128  # side of the synthetic person images in the algorithm figure (pixels)
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

# %% tags=["hide-input"]
import time

import torch
from IPython.display import display

from gpa_lib.attention.analysis import studies
from gpa_lib.attention.analysis.benchmark import AttentionBenchConfig
from gpa_lib.attention.analysis.figures import headline_figure, official_figure
from gpa_lib.attention.analysis.stored import official_comparison, stored_training_bench
from gpa_lib.glue import glue_all
from gpa_lib.measure import calibrate_cpu
from gpa_lib.results import write_result

start_time = time.perf_counter()
_ = torch.manual_seed(seed)

# %% [markdown]
# ## The algorithm
#
# ```{index} grid partitioned attention, GPA; grid partitioned attention, pool; key block side
# ```
# ```{index} cell; query cell, top-k; key blocks per cell, phase 1; key-block selection
# ```
# ```{index} key-block selection, phase 2; attention within the selected blocks
# ```
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
# {numref}`Figure %s <fig-ch1-algorithm>` runs steps 1 to 3 as cross-attention, the use GPA was made for: queries from an image of
# a synthetic person in one pose (the target), keys from the same person in another pose (the source),
# both from the pose chapter's `SyntheticPoses`, through a fixed random convolution as features.

# %% tags=["hide-input"]
algorithm = studies.algorithm_study(
    figure_size=figure_size, pool=pool, heads=heads, head_dim=head_dim, seed=seed,
)  # fmt: skip
glue_all(algorithm.values | {"ch1_fig_algorithm": algorithm.figure})

# %% [markdown]
# ```{glue:figure} ch1_fig_algorithm
# :name: fig-ch1-algorithm
# :alt: Three panels: a target image with three outlined query cells; the source image with the key blocks each cell selects filled in the cell's colour; and a map of the phase-1 score of every source block for the red cell.
#
# *Left:* three {glue:text}`ch1_fig_cell`×{glue:text}`ch1_fig_cell` query cells (outlines) on the
# target image. *Middle:* the {glue:text}`ch1_fig_topk` key blocks each cell selects in the source
# image (filled squares in the cell's colour), out of {glue:text}`ch1_fig_blocks`. The selected
# blocks need not lie near the cell: GPA is not local attention, which is what lets it copy detail
# across a change of pose. *Right:* the phase-1 score of every source block for the red cell; the
# selection keeps the brightest blocks. The features come from an untrained random convolution, so
# they match colour and local texture only; how often a trained generator's selection holds the true
# source of a pixel is measured in chapter 3.
# ```

# %% [markdown]
# (ch1-cost)=
# ## The cost model
#
# ```{index} complexity; cost model, complexity; FLOPs, complexity; peak memory
# ```
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

# %% tags=["remove-cell"]
bench_sizes = studies.benchmark_sizes(
    heads=heads, head_dim=head_dim, pool=pool, cell=cell, topk=topk
)
glue_all(studies.cost_model_study(bench_sizes).values)

# %% [markdown]
# At the benchmark setting (128×128 grids, {glue:text}`ch1_keys_per_query` keys per query, that is
# {glue:text}`ch1_keys_fraction_pct:.2f`% of the keys) the model predicts
# {glue:text}`ch1_flops_ratio_dense_gpa:.0f`× fewer FLOPs than dense attention and
# {glue:text}`ch1_mem_ratio_model:.0f`× less peak memory than attention with a materialised score
# matrix.
#
# (ch1-sweep)=
# ## Predicted against measured, over resolution
#
# Each point below is one method at one square resolution, inference only (`torch.no_grad`), float32,
# {glue:text}`ch1_heads` heads of {glue:text}`ch1_head_dim` channels, median of
# {glue:text}`ch1_sweep_repeats` timed calls. The methods, named the same way in every table, figure
# and sentence of this chapter:

# %% tags=["remove-input"]
studies.method_names()

# %% [markdown]
# `materialised` is skipped where it would not fit the memory cap (only the model is shown there);
# `auto` is GPA with the backend `backend=None` picks. Time is predicted as FLOPs over the measured
# matrix-multiply rate plus bytes over the measured copy bandwidth of this CPU.

# %% tags=["hide-input"]
machine = calibrate_cpu()
bench_config = AttentionBenchConfig(
    sizes=tuple(sweep_sizes), heads=heads, head_dim=head_dim, pool=pool, cell=cell, topk=topk,
    methods=tuple(sweep_methods), repeats=sweep_repeats, budget_s=3.0,
    max_materialised_bytes=max_materialised_mib * 2**20,
)  # fmt: skip
sweep = studies.resolution_sweep(bench_config, bench_sizes, machine)
glue_all(sweep.values | {"ch1_fig_sweep": sweep.figure})
sweep.table

# %% [markdown]
# ```{glue:figure} ch1_fig_sweep
# :name: fig-ch1-sweep
# :alt: Two log-log panels against the number of tokens, one colour per method: peak extra memory on the left and median time per call on the right, with the model or roofline prediction as lines and the measurements as dots.
#
# *Left:* peak extra memory (output included) against the number of tokens, log-log. Lines are the
# model, dots the measurement; they agree to {glue:text}`ch1_mem_model_max_err_pct:.1f`% at worst.
# The materialised score matrix grows with the square of the tokens (slope 2), GPA's phase 2 linearly
# (slope 1), phase 1 stays small. *Right:* median time per call against tokens, with the roofline
# prediction; measured over predicted ranges from {glue:text}`ch1_time_ratio_min:.1f` to
# {glue:text}`ch1_time_ratio_max:.1f` on this machine. The prediction is a floor: small calls are
# dominated by per-operation overhead that no FLOP count sees. The table gives the fastest and the
# slowest timed call of each point beside the median.
# ```
#
# At {glue:text}`ch1_sweep_max_size`×{glue:text}`ch1_sweep_max_size`, `auto` ran the
# {glue:text}`ch1_auto_backend:s` backend and used {glue:text}`ch1_mem_ratio_measured:.0f`× less
# peak memory than the materialised score matrix would need (model value where that method was
# skipped). In time, on this machine as loaded when the chapter ran:
# {glue:text}`ch1_speed_auto_sdpa_words` (ratio of the medians {glue:text}`ch1_speedup_auto_sdpa:.0f`×).
# The committed benchmarks below are the numbers to quote.
#
# (ch1-training)=
# ## Training: what the backward pass keeps
#
# ```{index} SDPA; training memory, complexity; training memory
# ```
#
# Everything above is inference. A training step also keeps, for the backward pass, whatever the
# forward computed: the `reference` backend keeps its $N_q \times t p^2$ attention weights, a
# materialised dense attention its $N_q \times N_k$ scores, while fused SDPA keeps only its output
# and one log-sum-exp per query. The `recompute` backend runs phase 2 in runs of cells under
# activation checkpointing: it keeps nothing but its inputs and recomputes one run at a time in the
# backward pass. The `cpu` backend runs both passes in the fused CPU kernel: the backward recomputes
# each cell's weights from the forward's log-sum-exp. Below, one training step (forward, then backward
# into fresh gradients of q, k and v, which every method must allocate) at each size, measured like
# the sweep above (`python -m gpa_lib.bench attention --training` runs the same comparison from the
# command line).

# %% tags=["hide-input"]
training = studies.training_study(bench_config, training_sizes)
glue_all(training.values | {"ch1_fig_training": training.figure})
training.table

# %% [markdown]
# ```{glue:figure} ch1_fig_training
# :name: fig-ch1-training
# :alt: Two log-log panels against the number of tokens, one line per method: the peak extra memory of one training step on the left and its median time with bars from the fastest to the slowest call on the right.
#
# *Peak extra memory (left) and median time (right) of one training step against the number of
# tokens, log-log; the bars span the fastest to the slowest of {glue:text}`ch1_train_repeats` timed
# calls, and the table holds the medians. Materialised dense attention is skipped where its score
# matrix would pass the memory cap.*
# ```
#
# Memory, at {glue:text}`ch1_train_size`×{glue:text}`ch1_train_size`: the `reference` backend needs
# {glue:text}`ch1_train_ref_over_sdpa:.1f`× the training memory of fused SDPA; `recompute` cuts that to
# {glue:text}`ch1_train_rec_over_sdpa:.1f`× ({glue:text}`ch1_train_rec_over_ref:.2f` of the reference
# backend's), and `cpu` needs {glue:text}`ch1_train_cpu_mem_over_rec:.2f`× the memory of `recompute`.
#
# Time, on this machine as loaded when the chapter ran, from the range of the timed calls:
# {glue:text}`ch1_train_speed_rec_sdpa`; {glue:text}`ch1_train_speed_cpu_rec`;
# {glue:text}`ch1_train_speed_cpu_sdpa`; {glue:text}`ch1_train_speed_rec_ref`. Over the sizes timed,
# {glue:text}`ch1_train_growth` (the range of the log-log slope between the smallest and the largest
# size; 1 is linear, 2 quadratic). SDPA on the CPU pays the full $N_q \times N_k$ arithmetic twice.
# The pose-morphing chapter trains its GPA generator on `recompute`.
#
# (ch1-training-bench)=
# ### The committed training benchmark
#
# The committed benchmark runs the same step at 128×128 (B = 1, 4 heads of 32 channels, `cell` 8,
# `pool` 4, `topk` 8) with 1 and 2 torch threads on an otherwise idle machine
# (`python -m gpa_lib.bench attention --training --sizes 128 --methods sdpa recompute cpu reference
# --repeats 3 --threads N`); the table renders its JSON with the machine and commit that produced it.

# %% tags=["hide-input"]
bench_table, bench_values = stored_training_bench()
glue_all(bench_values)
bench_table.round(2) if len(bench_table) else "no stored training benchmark"

# %% [markdown]
# *One training step at 128×128 from the committed benchmark: median [fastest, slowest] of the timed
# calls after a warm-up, peak extra memory measured once.* On {glue:text}`ch1_train_bench_where`,
# with 2 threads {glue:text}`ch1_train_bench_speed_t2` (ratio of the medians
# {glue:text}`ch1_train_bench_speedup_t2:.0f`×); with 1 thread {glue:text}`ch1_train_bench_speed_t1`
# ({glue:text}`ch1_train_bench_speedup_t1:.0f`×). The `cpu` backend takes
# {glue:text}`ch1_train_bench_mem_over_rec_t2:.2f`× the memory of `recompute`.
#
# (ch1-quality)=
# ## What GPA keeps: attention mass and output error
#
# Two measures compare GPA with exact attention, for every query: the share of the query's *full*
# softmax mass that falls on the keys GPA lets it see (the authors' `err_stat`; 1 means nothing was
# dropped), and the relative output error $\lVert o_{GPA}-o\rVert/\lVert o\rVert$ over the whole
# output. Image-like features are self-attention on the textured image's features ($q=k=v$); random
# features are independent Gaussian $q$, $k$, $v$, the case without any structure to exploit.
# Affinity is {glue:text}`ch1_quality_affinity`. Each panel moves one knob from the benchmark setting;
# the pool sweep keeps the key budget $t\,p^2$ fixed.

# %% tags=["hide-input"]
quality_features = studies.quality_inputs(
    size=quality_size, heads=quality_heads, head_dim=head_dim, seed=seed
)
quality = studies.quality_study(
    quality_features, pool=pool, cell=cell, topk=topk, topk_values=topk_values,
    pool_values=pool_values, cell_values=cell_values, affinity=quality_affinity,
)  # fmt: skip
headline = headline_figure(sweep.data["sweep"], quality.data["quality"])
glue_all(quality.values | {"ch1_headline_figure": headline, "ch1_fig_quality": quality.figure})

# %% [markdown]
# ```{glue:figure} ch1_fig_quality
# :name: fig-ch1-quality
# :alt: A grid of panels, one column per knob (topk, pool, cell) on a log axis: the kept share of the exact softmax mass in the top row and the relative output error in the bottom row, for image-like and random features.
#
# *Top row:* mean share of the exact softmax mass on the keys GPA keeps; *bottom row:* relative output
# error, both against the knob on the horizontal axis (log scale). An error above 1 means GPA's output is
# further from the exact one than zero is: with random features exact attention averages almost all
# values to nearly nothing, GPA averages a few.
# ```
#
# At the benchmark setting of {glue:text}`ch1_topk`
# blocks per cell ({glue:text}`ch1_quality_keys_pct:.1f`% of the keys) the image-like features keep
# {glue:text}`ch1_mass_image:.2f` of the mass ({glue:text}`ch1_mass_words_image`) with a relative
# output error of {glue:text}`ch1_err_image:.2f`; the random ones keep
# {glue:text}`ch1_mass_random:.2f` ({glue:text}`ch1_mass_words_random`: nothing tells phase 1 where
# the mass is) with an error of {glue:text}`ch1_err_random:.2f`. At a fixed key budget, smaller blocks (small `pool`) make phase 1
# more expensive (next section). On the image-like features pool {glue:text}`ch1_pool_small` keeps
# {glue:text}`ch1_pool_mass_word` mass than pool {glue:text}`ch1_pool_large`
# ({glue:text}`ch1_mass_pool_small:.2f` against {glue:text}`ch1_mass_pool_large:.2f`) yet has the
# {glue:text}`ch1_pool_err_word` output error ({glue:text}`ch1_err_pool_small:.2f` against
# {glue:text}`ch1_err_pool_large:.2f`). Larger cells share one selection among more queries and lose
# mass.
#
# The inductive-bias verdict rests on the ratio of kept mass to the share of keys seen on the
# image-like features, {glue:text}`ch1_bias_ratio:.1f`×. Its {glue:text}`ch1_bias_level_pct:.0f`%
# interval, {glue:text}`ch1_bias_lo:.1f`× to {glue:text}`ch1_bias_hi:.1f`×, is a percentile
# bootstrap over the {glue:text}`ch1_bias_units` (head, query cell) units: a cell is the unit because
# its queries share one selection. It says how much the ratio varies across the image and the heads;
# it does not resample the features themselves, which are one draw of a fixed-seed convolution of one
# textured image.
#
# (ch1-split)=
# ## Where the time goes: phase 1 against phase 2
#
# ```{index} phase 1; time share, phase 2; time share
# ```
#
# The authors' layer scales its knobs with the resolution: `pool` = H/64 (a 64×64 low-resolution grid),
# `cell` = 2·`pool` and `topk` = 2. We time phase 1 and phase 2 of the reference backend separately
# (phase 2 on a precomputed selection), on random inputs, at those defaults and at the benchmark
# setting.

# %% tags=["hide-input"]
split = studies.phase_split_study(bench_sizes, split_sizes, repeats=sweep_repeats, seed=seed)
high_res = studies.high_resolution_study(bench_sizes)
glue_all(split.values | high_res.values | {"ch1_fig_split": split.figure})
display(split.table)
high_res.table

# %% [markdown]
# ```{glue:figure} ch1_fig_split
# :name: fig-ch1-split
# :alt: Horizontal stacked bars of the median time of phase 1 and phase 2 of the reference backend, one bar per resolution and setting, the authors' defaults beside the benchmark setting.
#
# *Bars:* median time of phase 1 (selection) and phase 2 (attention to the selected keys) of the
# reference backend, per resolution and setting, on this machine (the table gives the range of the
# timed calls).
# ```
#
# At the authors' defaults and
# {glue:text}`ch1_split_size`×{glue:text}`ch1_split_size`, phase 1 took
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

# %% tags=["hide-input"]
gpu_count = studies.gpu_count_study()
glue_all(gpu_count.values)
gpu_count.table

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

# %% tags=["hide-input"]
tradeoff = studies.tradeoff_study(
    quality_features, machine, initial={"topk": topk, "pool": pool, "cell": cell},
    topk_values=topk_values, pool_values=pool_values, cell_values=cell_values,
    affinity=quality_affinity,
)  # fmt: skip
glue_all(tradeoff.values)
tradeoff.figure

# %% [markdown]
# *Sliders:* `topk` (key blocks per cell), `pool` (block side) and `cell` (cell side, tokens).
# *Top:* modelled peak extra memory and time per call (log scale) of GPA's reference and fused `cpu`
# backends, and of exact attention with a materialised score matrix or fused SDPA, which do not
# depend on the knobs. *Bottom:* mean share of the exact softmax mass on the keys GPA keeps, beside
# the share of keys it looks at, and the relative output error. Memory and time grow with
# `topk`·`pool`² (the keys each query sees); compare the kept mass with the share of keys seen for
# each kind of features. Computing the whole grid took
# {glue:text}`ch1_tradeoff_s:.1f` s.

# %% [markdown]
# (ch1-official)=
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

# %% tags=["hide-input"]
official_table, official_values = official_comparison()
official_stored = not isinstance(official_table, str)  # a str says how to produce the comparison
official_fig = official_figure(official_table) if official_stored else None
glue_all(official_values | {"ch1_fig_official": official_fig})
if official_stored:
    display(official_table.drop(columns="size").round(3))
else:
    display(official_table)

# %% [markdown]
# ```{glue:figure} ch1_fig_official
# :name: fig-ch1-official
# :alt: Log-log lines of the median time per call against the number of tokens for the authors' code and for GPA's auto, reference and recompute backends, with the machine's floor as a dashed line.
#
# *Lines:* median time per call against tokens, log-log; the dashed line is the floor. Measured on
# {glue:text}`ch1_official_where` (the JSON's provenance), medians of
# {glue:text}`ch1_official_repeats` calls; the file keeps no spread, so these ratios are one run's.
# ```
#
# The automatic choice took {glue:text}`ch1_official_min_speedup:.1f`× to
# {glue:text}`ch1_official_max_speedup:.1f`× less time than the authors' code, with outputs that
# agree to {glue:text}`ch1_official_max_diff:.1e` (float32). At {glue:text}`ch1_official_largest` it
# is {glue:text}`ch1_official_floor_ratio:.1f`× above the floor (a matrix-multiply rate of
# {glue:text}`ch1_official_gflops:.0f` GFLOP/s); its first call at a new shape took at most
# {glue:text}`ch1_official_first_call:.2f`× a warm call (the CPU kernel is compiled once per machine
# and cached, and nothing is compiled per shape). At the authors' settings phase 1 is a full
# 64×64-grid attention whatever the resolution; fused with the cell averaging and the top-k it takes
# {glue:text}`ch1_official_phase1_share_pct:.0f`% of the `cpu` backend's time at
# {glue:text}`ch1_official_largest`. {glue:text}`ch1_official_phase1_note`

# %% tags=["remove-cell"]
if profile != "smoke":
    write_result(
        "ch1_gpa_complexity",
        studies.result_payload(
            sweep, quality, split, training, high_res, tradeoff, machine=machine
        ),
        profile=profile,
        wall_time_s=time.perf_counter() - start_time,
    )
glue_all({"ch1_wall_s": time.perf_counter() - start_time})

# %% [markdown]
# ## What this chapter does not show, and why
#
# - **No GPU times.** This chapter runs on the CPU that builds the book; the fused CUDA backend and
#   its measurements are the kernel chapter's (a reader with a GPU runs
#   `python -m gpa_lib.bench attention --device cuda` for the same comparison there).
# - **No speed claim from a single live run.** Live times carry the load of a shared machine; where
#   the range of the timed calls does not separate two methods, the text says "not separated"
#   instead of a ratio, and the figures to quote are the committed benchmarks, each with its machine.
# - **No spread for the comparison with the authors' code.** Its JSON keeps medians only; rerunning
#   it needs a clone of their repository, which this book does not ship.
# - **No trained features.** The quality study uses image-like features from an untrained
#   convolution and random ones; how a trained generator's selection behaves is chapter 3's.
# - **No backward pass in the cost model.** The model covers inference; training is measured only.
#
# This chapter ran in {glue:text}`ch1_wall_s:.0f` s.
