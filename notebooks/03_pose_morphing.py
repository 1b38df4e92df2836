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
# # Pose morphing by attention copying
#
# The GPA paper's second contribution is a generator that re-renders a person in a new pose by
# *copying*: for every pixel of the target it looks up where in the source image the same piece of
# clothing is and takes it from there. Its authors never released it. This chapter builds it
# (`gpa_lib.pose.models`), trains it next to three baselines on the same pairs with the same budget,
# and measures what GPA buys: the quality of attention everywhere at a fraction of its memory.
#
# **Everything here is measured on synthetic data** (`gpa_lib.pose.data.SyntheticPoses`, no
# downloads), at 64×64 pixels on a 2-core CPU in the `full` profile. The section
# {ref}`ch3-deepfashion` says how to run the same code on the real benchmark.

# %% tags=["parameters"]
profile = "full"
scale = "full"  # model presets "<model>-<scale>" of gpa_lib.pose.config.PRESETS
steps = 450  # optimisation steps of every model
n_train = 2000  # training pairs, rendered once into a tensor cache
n_test = 200  # fixed held-out pairs (new people, outfits and poses)
batch_size = 8
eval_every = 50  # steps between validation points of the training curves
num_threads = 2  # torch CPU threads
data_workers = 0  # processes rendering the pairs (0: this one)
seed = 0
n_show = 5  # held-out pairs in the output figure
run_dir = ""  # where checkpoints go ("" : a temporary folder); a re-run resumes from them

# %%
import tempfile

import matplotlib.pyplot as plt
import torch
from myst_nb import glue

from gpa_lib.pose.config import MODEL_NAMES, PRESETS
from gpa_lib.pose.experiment import compare_models, result_payload
from gpa_lib.pose.data import SyntheticPoses
from gpa_lib.pose.figures import (
    architecture_figure,
    plot_copy_attention,
    plot_memory,
    plot_outputs,
    plot_pairs,
    plot_training_curves,
    results_table,
)
from gpa_lib.results import write_result

torch.set_num_threads(num_threads)
gpa_config = PRESETS[f"gpa-{scale}"]
size = gpa_config.size
glue("ch3_size", size, display=False)
glue("ch3_n_pixels", size * size, display=False)
for key in ("pool", "cell", "topk"):
    glue(f"ch3_{key}", getattr(gpa_config.model, key), display=False)
glue("ch3_keys_per_query", gpa_config.model.topk * gpa_config.model.pool**2, display=False)

# %% [markdown]
# ## The data
#
# Each synthetic pair is one person in one outfit seen in two poses. Garments carry random stripes,
# checks, dots and prints attached to the limb they are on, so the texture moves and turns with the
# limb: a model that only knows the target pose cannot guess it, it has to fetch it from the source.

# %%
examples = SyntheticPoses(8, size=size, seed=gpa_config.test_seed)
fig = plot_pairs([examples[i] for i in range(8)], n_cols=4)
fig.suptitle("Held-out synthetic pairs (source | target)", fontsize=10)
plt.show()

# %% [markdown]
# *Eight held-out pairs, each shown as source and target, {glue:text}`ch3_size` pixels square. The
# outfit is the same within a pair; pose and often the limb that is in front change.*
#
# ## The generator
#
# An **appearance encoder** reads the source image with its pose maps and builds a feature pyramid. A
# small **pose network**, shared by both poses, turns the 18 keypoint heatmaps (plus limb-coordinate
# maps, `gpa_lib.pose.models.pose_encoding`: for every pixel, which limb it is on and where along and
# across it) into features with whole-body context. The **decoder** starts from the target's pose
# features at the coarsest scale; at every scale it asks the source for what belongs there:
# cross-attention with queries from the decoder and the target pose, keys from the source features and
# the source pose. It adds what it copies to its own features and goes up one scale. At full
# resolution the values are the **source pixels** themselves, and a learned mask blends the copied
# pixels with pixels the decoder paints itself (for what the source does not show).
#
# Attention over a {glue:text}`ch3_size`² grid compares {glue:text}`ch3_n_pixels` queries with as
# many keys. Dense attention is used where the grids are small (8² and 16²); GPA where they are large
# (the two finest scales, including the pixel copy): every {glue:text}`ch3_cell`×{glue:text}`ch3_cell`
# cell of queries keeps the {glue:text}`ch3_topk` best {glue:text}`ch3_pool`×{glue:text}`ch3_pool`
# blocks of keys, found on average-pooled queries and keys, and attends to those
# {glue:text}`ch3_keys_per_query` keys only.

# %%
fig = architecture_figure(gpa_config.model, size=size)
plt.show()

# %% [markdown]
# *The copying generator at {glue:text}`ch3_size` pixels: rows are scales (full resolution at the
# top), the coloured arrows are the cross-attention layers (red: GPA, blue: dense) and what they
# copy.*
#
# The three baselines get the same pairs, the same number of steps, batch size, learning-rate
# schedule, losses (L1, foreground L1 and SSIM) and seed:
#
# - **U-Net (no attention)**: the classic pose-conditioned generator, source image and both poses
#   stacked as input channels, widened to about the same number of parameters.
# - **coarse attention only**: the copying generator with attention at 8² and 16² and none above (no
#   pixel copying).
# - **dense everywhere**: the copying generator with exact dense attention at every scale.

# %%
workdir = run_dir or tempfile.mkdtemp(prefix="pose_morphing_")
overrides = dict(
    steps=steps,
    n_train=n_train,
    n_test=n_test,
    n_val=min(64, n_test),
    batch_size=batch_size,
    eval_every=eval_every,
    checkpoint_every=eval_every,
    num_threads=num_threads,
    seed=seed,
)
comparison = compare_models(
    scale, MODEL_NAMES, overrides=overrides, out_dir=workdir, num_workers=data_workers
)
payload = result_payload(comparison)
path = write_result("pose_morphing", payload, profile=profile, wall_time_s=comparison.wall_time_s)
runs = comparison.runs
targets = payload["targets"]

glue("ch3_steps", steps, display=False)
glue("ch3_batch", batch_size, display=False)
glue("ch3_n_train", len(comparison.train_data), display=False)
glue("ch3_n_test", len(comparison.test_data), display=False)
glue("ch3_total_train_min", targets["total_train_time_s"]["value"] / 60, display=False)
glue("ch3_time_target_min", targets["total_train_time_s"]["target"] / 60, display=False)
glue("ch3_time_met", "met" if targets["total_train_time_s"]["met"] else "missed", display=False)
for name in MODEL_NAMES:
    test = payload["models"][name]["test"]
    glue(f"ch3_{name}_ssim", test["ssim"]["mean"], display=False)
    glue(f"ch3_{name}_ssim_fg", test["ssim_fg"]["mean"], display=False)
    glue(f"ch3_{name}_l1_fg", test["l1_fg"]["mean"], display=False)
    glue(f"ch3_{name}_params_k", payload["models"][name]["parameters"] / 1e3, display=False)
    glue(f"ch3_{name}_train_s", payload["models"][name]["train_time_s"], display=False)

# %% [markdown]
# ## Training
#
# Every model trains for {glue:text}`ch3_steps` steps of {glue:text}`ch3_batch` pairs drawn from
# {glue:text}`ch3_n_train` training pairs; all four together took {glue:text}`ch3_total_train_min:.1f`
# minutes of training on this CPU (target: about {glue:text}`ch3_time_target_min:.0f` minutes,
# {glue:text}`ch3_time_met`): GPA
# {glue:text}`ch3_gpa_train_s:.0f` s, dense everywhere {glue:text}`ch3_dense_train_s:.0f` s, coarse
# attention only {glue:text}`ch3_coarse_train_s:.0f` s and the U-Net {glue:text}`ch3_unet_train_s:.0f` s.
# These are the optimisation steps alone (validation and checkpoints excluded), timed while this
# notebook ran; the machine is named in the provenance block of `data/results/pose_morphing.json`.

# %%
fig = plot_training_curves(comparison)
plt.show()

# %% [markdown]
# *Left: training loss (L1 + foreground L1 + (1 − SSIM)), a moving average. Right: SSIM on the first
# validation pairs of the held-out set during training. The two models that copy at every scale
# (GPA and dense) pull away from the U-Net within the first steps; attention at the coarse scales
# alone does not.*
#
# ## Results on held-out pairs

# %%
results_table(payload)

# %% [markdown]
# *Mean ± standard error over the {glue:text}`ch3_n_test` held-out pairs. "fg": over the target's
# foreground (the person) only; L1 in units of the [−1, 1] pixel range. Attention memory: the peak of
# the largest attention call for one pair in a training step (forward and backward), with the dense
# layers on the fused kernel, and what it would be with a materialised score matrix.*

# %%
gain = targets["gpa_minus_unet_ssim"]
l1_gain = targets["unet_minus_gpa_l1_fg"]
vs_dense = targets["gpa_minus_dense_ssim"]
glue("ch3_gain_ssim", gain["mean"], display=False)
glue("ch3_gain_ssim_lo", gain["ci95"][0], display=False)
glue("ch3_gain_ssim_hi", gain["ci95"][1], display=False)
glue("ch3_gain_l1_fg", l1_gain["mean"], display=False)
glue("ch3_gain_l1_fg_lo", l1_gain["ci95"][0], display=False)
glue("ch3_gain_l1_fg_hi", l1_gain["ci95"][1], display=False)
glue("ch3_vs_dense_ssim", vs_dense["mean"], display=False)
glue("ch3_vs_dense_ssim_lo", vs_dense["ci95"][0], display=False)
glue("ch3_vs_dense_ssim_hi", vs_dense["ci95"][1], display=False)
glue("ch3_gain_met", "met" if gain["met"] else "missed", display=False)
glue("ch3_l1_met", "met" if l1_gain["met"] else "missed", display=False)
glue("ch3_dense_met", "met" if vs_dense["met"] else "missed", display=False)
{k: (v.get("mean", v.get("ratio", v.get("value"))), v["met"]) for k, v in targets.items()}

# %% [markdown]
# On the same test pairs, the GPA copying generator's SSIM is {glue:text}`ch3_gain_ssim:.3f` above
# the U-Net's (95% interval of the paired difference {glue:text}`ch3_gain_ssim_lo:.3f` to
# {glue:text}`ch3_gain_ssim_hi:.3f`; target ≥ 0.03: {glue:text}`ch3_gain_met`), and its foreground L1
# is lower by {glue:text}`ch3_gain_l1_fg:.3f` ({glue:text}`ch3_gain_l1_fg_lo:.3f` to
# {glue:text}`ch3_gain_l1_fg_hi:.3f`; {glue:text}`ch3_l1_met`). Against dense attention at every scale
# its SSIM differs by {glue:text}`ch3_vs_dense_ssim:.3f` ({glue:text}`ch3_vs_dense_ssim_lo:.3f` to
# {glue:text}`ch3_vs_dense_ssim_hi:.3f`; target ≥ −0.01: {glue:text}`ch3_dense_met`). Attention at
# the coarse scales alone is no better than the U-Net (SSIM {glue:text}`ch3_coarse_ssim:.3f` against
# {glue:text}`ch3_unet_ssim:.3f`): an 8² or 16² grid can carry colours, not a 2-pixel stripe. The
# texture comes from copying at the fine scales, which is where attention is expensive and where GPA
# stands in for dense attention.

# %%
fig = plot_outputs(comparison, list(range(n_show)))
plt.show()

# %% [markdown]
# *Held-out pairs (rows): the source, the target pose (keypoint heatmaps, one colour per keypoint),
# the ground truth and every model's output. The U-Net and the coarse-only model paint a blurred
# outfit; the two models that copy pixels fetch colours and part of the pattern from the source.*
#
# ## Where GPA looks
#
# For a few pixels of a target, the pixel-copying GPA layer's choice: the {glue:text}`ch3_topk`
# source blocks its cell selected (boxes) and, inside them, the attention weights of that pixel
# (colour). Phase 1 picks blocks for a whole cell at low resolution; phase 2 decides within them, per
# pixel.

# %%
pair = comparison.test_data.batch(torch.tensor([1]))
mask = pair["target_mask"][0, 0]
ys, xs = torch.nonzero(mask > 0, as_tuple=True)
picks = torch.linspace(0, len(ys) - 1, 4).round().long()
pixels = [(int(ys[i]), int(xs[i])) for i in picks]
fig = plot_copy_attention(runs["gpa"].model, pair, pixels)
plt.show()

# %% [markdown]
# *Left: a held-out target with four query pixels on the person. Right: the source, the key blocks
# GPA selected for each pixel's cell (boxes in the pixel's colour) and the pixel's attention weights
# over their pixels (bright: close to its strongest key). The blocks sit on the same body part in the source,
# wherever it moved.*
#
# ## Memory

# %%
mem = targets["memory_ratio_training_vs_materialised_dense"]
mem_fused = targets["memory_ratio_training_vs_fused_dense"]
mem_fwd = targets["memory_ratio_forward_vs_materialised_dense"]
glue("ch3_gpa_backend", mem["gpa_backend"] or "automatic", display=False)
glue("ch3_mem_gpa_mib", mem["gpa_bytes"] / 2**20, display=False)
glue("ch3_mem_dense_mib", mem["dense_bytes"] / 2**20, display=False)
glue("ch3_mem_ratio", mem["ratio"], display=False)
glue("ch3_mem_ratio_fwd", mem_fwd["ratio"], display=False)
glue("ch3_mem_fused_mib", mem_fused["dense_bytes"] / 2**20, display=False)
glue("ch3_mem_fused_ratio", mem_fused["ratio"], display=False)
glue("ch3_mem_fused_met", "met" if mem_fused["met"] else "missed", display=False)
glue("ch3_mem_reference_mib", mem_fused["gpa_reference_bytes"] / 2**20, display=False)
glue("ch3_mem_reference_fused_ratio", mem_fused["reference_ratio"], display=False)
glue("ch3_mem_met", "met" if mem["met"] else "missed", display=False)
fig = plot_memory(comparison)
plt.show()

# %% [markdown]
# *Peak memory of the largest attention call for one pair, measured (CPU allocator events through the
# PyTorch profiler, `gpa_lib.attention.analysis.measure`): left for inference, right for a training step, the
# gradients of the queries and keys included. Hatched: with the dense layers on an explicit score
# matrix, plain: on the fused kernel. The pale bar is the GPA generator with its GPA layers on the
# `reference` backend instead of the `recompute` backend it trains with. The U-Net has no attention.*
#
# The GPA generator trains on the {glue:text}`ch3_gpa_backend` backend. A training step of its largest
# attention call needs {glue:text}`ch3_mem_gpa_mib:.1f` MiB; dense attention at the same place with its
# score matrix needs {glue:text}`ch3_mem_dense_mib:.0f` MiB, a ratio of {glue:text}`ch3_mem_ratio:.3f`
# (target ≤ 0.25: {glue:text}`ch3_mem_met`; {glue:text}`ch3_mem_ratio_fwd:.3f` for inference). That
# score matrix grows with the square of the pixel count, GPA's phase 2 linearly.
#
# A fused dense kernel (flash attention, here PyTorch's `scaled_dot_product_attention` on CPU) never
# forms the matrix either: at 64×64 its training step needs {glue:text}`ch3_mem_fused_mib:.1f` MiB, and
# GPA {glue:text}`ch3_mem_fused_ratio:.2f` times that (≤ 0.25 against the fused kernel:
# {glue:text}`ch3_mem_fused_met`). Both must allocate the gradients of the queries and keys and the
# output, which is most of what the fused kernel needs, so no attention layer of this shape can go far
# below it. GPA comes in under it at all only because the `recompute` backend keeps none of its
# attention weights for the backward pass and recomputes them in runs of cells. The plain `reference` backend keeps them: {glue:text}`ch3_mem_reference_mib:.1f` MiB,
# {glue:text}`ch3_mem_reference_fused_ratio:.1f` times the fused kernel. What GPA saves against a fused
# kernel in any case is arithmetic: every query scores {glue:text}`ch3_keys_per_query` keys instead of
# {glue:text}`ch3_n_pixels`.
#
# (ch3-deepfashion)=
# ## DeepFashion
#
# The numbers above are on synthetic people. The same code trains on DeepFashion In-shop in the
# Pose-Transfer layout used by PATN, GFLA and the GPA authors (`gpa_lib.pose.data.deepfashion`, see
# `data/deepfashion.md` for the files). With the data at `ROOT`:
#
# ```bash
# python -m gpa_lib.pose.train --preset gpa-gpu --deepfashion ROOT --out runs/gpa-df
# torchrun --nproc_per_node 4 -m gpa_lib.pose.train --preset gpa-gpu --deepfashion ROOT --out runs/gpa-df
# ```
#
# Images are 256×176 and are padded to the model's multiple internally; the foreground metrics then
# use the skeleton mask the loader draws, an approximation (DeepFashion has no segmentation). FID and
# LPIPS run only with their pretrained weights at a local path (`gpa_lib.pose.metrics.
# optional_metric_status`); nothing is downloaded.
