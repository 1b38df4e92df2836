"""Chapter 1's studies: each runs one measurement or model evaluation and returns what the page
shows, a :class:`~gpa_lib.attention.analysis.study.Study` of a table, a figure and the
``{glue key: value}`` dict its prose cites.

The chapter calls one function per section, displays the table and the figure and glues the dict
with :func:`gpa_lib.glue.glue_all`. The timed studies live in
:mod:`~gpa_lib.attention.analysis.timing_studies` and are re-exported here, so the chapter has one
module to call.
"""

from __future__ import annotations

import time

import pandas as pd
import torch

from gpa_lib.attention.analysis import figures
from gpa_lib.attention.analysis.complexity import (
    AttentionSizes,
    authors_defaults,
    dense_cost,
    gpa_cost,
    phase1_cost,
    phase2_cost,
)
from gpa_lib.attention.analysis.diagnostics import gpa_quality, mass_ratio_interval
from gpa_lib.attention.analysis.study import Study, benchmark_sizes, result_payload, square
from gpa_lib.attention.analysis.timing_studies import (
    TRAINING_RATIOS,
    TRAINING_SPEED_WORDS,
    phase_split_study,
    resolution_sweep,
    training_study,
)
from gpa_lib.stats import direction_verdict

__all__ = [
    "Study", "benchmark_sizes", "result_payload", "method_names", "algorithm_study",
    "cost_model_study", "resolution_sweep", "training_study", "TRAINING_RATIOS",
    "TRAINING_SPEED_WORDS", "quality_inputs", "quality_study", "mass_against_keys",
    "phase_split_study", "high_resolution_study", "tradeoff_study", "gpu_count_study",
]  # fmt: skip


def method_names() -> pd.DataFrame:
    """The one table of method and backend names the chapter's figures, tables and prose use."""
    names = pd.Series(figures.METHOD_LABELS, name="what it is")
    return names.str.split(" ", n=1).str[1].str.strip("()").rename("what it is").to_frame()


# ---------------------------------------------------------------------------- the algorithm


def algorithm_study(
    *, figure_size: int, pool: int, heads: int, head_dim: int, seed: int, figure_cell: int = 8,
    figure_topk: int = 6,
) -> Study:  # fmt: skip
    """Phases 1 to 3 as cross-attention between two poses of a synthetic person: three query cells
    on the target (top, middle and bottom of the person), their selected blocks on the source and
    the block scores of the first one. ``figure_size`` is the image side and ``figure_cell`` the
    cell side in pixels, ``figure_topk`` the blocks each cell keeps."""
    from gpa_lib.attention import cell_block_scores, select_key_blocks, to_heads
    from gpa_lib.attention.synthetic import image_features
    from gpa_lib.pose.data import SyntheticPoses

    pair = SyntheticPoses(1, size=figure_size, seed=seed)[0]
    target, source = (pair["target"] + 1) / 2, (pair["source"] + 1) / 2  # (3, H, W) in [0, 1]
    q, k = (
        to_heads(image_features(im, heads * head_dim, seed=seed), heads) for im in (target, source)
    )
    setting = {"pool": pool, "cell": figure_cell, "affinity": "euclid"}
    selection = select_key_blocks(q, k, topk=figure_topk, **setting)  # (1, h, H/c, W/c, k)
    block_scores = cell_block_scores(q, k, **setting)  # (1, h, H/c, W/c, Nb)
    cells_side, blocks_side = figure_size // figure_cell, figure_size // pool
    mask = pair["target_mask"][0].view(cells_side, figure_cell, cells_side, figure_cell)
    coverage = mask.mean((1, 3))  # (H/c, W/c): share of each cell on the person
    on_person = (coverage >= 0.5).nonzero().tolist() or [
        list(divmod(int(coverage.argmax()), cells_side))
    ]  # (row, col) of cells on the person, row-major
    shown = [on_person[0], on_person[len(on_person) // 2], on_person[-1]]  # top, middle, bottom
    cy, cx = shown[0]
    fig = figures.algorithm_figure(
        target, source, shown, torch.stack([selection[0, 0, y, x] for y, x in shown]),
        block_scores[0, 0, cy, cx].view(blocks_side, blocks_side),
        cell=figure_cell, pool=pool, topk=figure_topk,
    )  # fmt: skip
    values = {"ch1_fig_blocks": blocks_side**2, "ch1_fig_cell": figure_cell}
    return Study(values | {"ch1_fig_topk": figure_topk}, figure=fig)


# --------------------------------------------------------------------------- the cost model


def cost_model_study(sizes: AttentionSizes) -> Study:
    """Keys per query and the model's FLOP and peak-memory ratios of dense attention over GPA."""
    dense, gpa = dense_cost(sizes), gpa_cost(sizes)
    return Study(
        {
            "ch1_keys_per_query": sizes.keys_per_query,
            "ch1_keys_fraction_pct": float(100 * sizes.keys_per_query / sizes.n_keys),
            "ch1_flops_ratio_dense_gpa": dense.flops / gpa.flops,
            "ch1_mem_ratio_model": dense.peak_bytes / gpa.peak_bytes,
            # the paper's claim against its baseline, exact attention with a score matrix
            "ch1_verdict_memory": direction_verdict(*[dense.peak_bytes / gpa.peak_bytes - 1] * 2),
            "ch1_heads": sizes.heads,
            "ch1_head_dim": sizes.head_dim,
        }
    )


# ------------------------------------------------------------------------- what GPA keeps


def quality_inputs(*, size: int, heads: int, head_dim: int, seed: int) -> dict[str, tuple]:
    """The features of the quality study: image-like (``q = k = v`` from the textured image) and
    random (independent Gaussian q, k, v, generator seeded ``seed + 1``), each (1, h, H, W, D)."""
    from gpa_lib.attention import to_heads
    from gpa_lib.attention.synthetic import image_features, textured_image

    image = to_heads(
        image_features(textured_image(size, seed=seed), heads * head_dim, seed=seed), heads
    )  # (1, h, H, W, D)
    generator = torch.Generator().manual_seed(seed + 1)
    random = tuple(torch.randn(image.shape, generator=generator) for _ in range(3))  # q, k, v
    return {"image-like": (image,) * 3, "random": random}


def _knob_settings(pool, cell, topk, topk_values, pool_values, cell_values):
    budget = topk * pool**2  # the pool sweep keeps topk * pool^2 keys per query
    return (
        [("topk", t, {"pool": pool, "cell": cell, "topk": t}) for t in topk_values]
        + [
            ("pool", p, {"pool": p, "cell": max(cell, p), "topk": budget // p**2})
            for p in pool_values
        ]
        + [("cell", c, {"pool": pool, "cell": c, "topk": topk}) for c in cell_values]
    )


def mass_against_keys(mass: float, keys_fraction: float) -> str:
    """The kept softmax mass against the share of keys seen, in words: "about" within a factor 1.5
    either way, else the factor."""
    ratio = mass / keys_fraction
    if 1 / 1.5 <= ratio <= 1.5:
        return "about the share of keys it sees"
    if ratio > 1:
        return f"{ratio:.1f}× the share of keys it sees"
    return f"{ratio:.2f} of the share of keys it sees"


def quality_study(
    inputs: dict[str, tuple], *, pool: int, cell: int, topk: int, topk_values, pool_values,
    cell_values, affinity: str, bias_seed: int = 0,
) -> Study:  # fmt: skip
    """Kept softmax mass and relative output error of GPA against exact attention, moving one knob
    at a time from (``pool``, ``cell``, ``topk``); glues both measures at that setting and the pool
    sweep's ends, with the comparison words they imply, and the inductive-bias verdict from the
    image-like features' kept mass over the share of keys, with its bootstrap interval over heads
    and query cells (:func:`~gpa_lib.attention.analysis.diagnostics.mass_ratio_interval`, generator
    seeded ``bias_seed``)."""
    rows = []
    for knob, value, setting in _knob_settings(
        pool, cell, topk, topk_values, pool_values, cell_values
    ):
        for kind, (q, k, v) in inputs.items():
            result = gpa_quality(q, k, v, affinity=affinity, **setting)
            rows.append(
                {"knob": knob, "value": value, "features": kind, **setting, **result.__dict__}
            )
    quality = pd.DataFrame(rows)
    here = quality[
        (quality["pool"] == pool) & (quality["cell"] == cell) & (quality["topk"] == topk)
    ]
    at = here.drop_duplicates("features")
    if len(at) < len(inputs):  # the sweeps skipped the setting: evaluate it once
        at = pd.DataFrame(
            [
                {"features": kind, **gpa_quality(*qkv, pool=pool, cell=cell, topk=topk,
                                                 affinity=affinity).__dict__}
                for kind, qkv in inputs.items()
            ]
        )  # fmt: skip
    at = at.set_index("features")
    sweep = quality[(quality.knob == "pool") & (quality.features == "image-like")].set_index(
        "value"
    )
    small, large = sweep.loc[sweep.index.min()], sweep.loc[sweep.index.max()]
    size = inputs["image-like"][0].shape[2]
    q_image, k_image, _ = inputs["image-like"]
    bias = mass_ratio_interval(
        q_image, k_image, pool=pool, cell=cell, topk=topk, affinity=affinity, seed=bias_seed
    )
    values = {
        "ch1_quality_affinity": affinity,
        "ch1_quality_size": size,
        "ch1_topk": topk,
        "ch1_mass_image": float(at.loc["image-like", "mass_mean"]),
        "ch1_mass_random": float(at.loc["random", "mass_mean"]),
        "ch1_err_image": float(at.loc["image-like", "error_total"]),
        "ch1_err_random": float(at.loc["random", "error_total"]),
        "ch1_quality_keys_pct": float(100 * at.loc["random", "keys_fraction"]),
        # the inductive bias: on image-like features the kept blocks carry more of the softmax
        # mass than the share of keys they hold; the interval resamples heads and query cells of
        # one draw of fixed-seed features, not new features
        "ch1_verdict_bias": direction_verdict(bias.lo, bias.hi),
        "ch1_bias_ratio": bias.estimate + 1,
        "ch1_bias_lo": bias.lo + 1,
        "ch1_bias_hi": bias.hi + 1,
        "ch1_bias_units": bias.n,
        "ch1_bias_level_pct": 100 * bias.level,
        "ch1_pool_small": int(sweep.index.min()),
        "ch1_pool_large": int(sweep.index.max()),
        "ch1_mass_pool_small": float(small.mass_mean),
        "ch1_mass_pool_large": float(large.mass_mean),
        "ch1_err_pool_small": float(small.error_total),
        "ch1_err_pool_large": float(large.error_total),
        **{
            f"ch1_mass_words_{kind.split('-')[0]}": mass_against_keys(
                at.loc[kind, "mass_mean"], at.loc[kind, "keys_fraction"]
            )
            for kind in ("image-like", "random")
        },
        "ch1_pool_mass_word": "more" if small.mass_mean > large.mass_mean else "less",
        "ch1_pool_err_word": "larger" if small.error_total > large.error_total else "smaller",
    }
    fig = figures.quality_figure(quality, size)
    return Study(values, figure=fig, data={"quality": quality})


def high_resolution_study(sizes: AttentionSizes, sides=(256, 512, 1024, 2048)) -> Study:
    """The model's FLOPs of both phases and of dense attention at high resolution, at the authors'
    defaults and at the fixed setting of ``sizes``; glues the saving and phase 1's share."""
    fixed = {"pool": sizes.pool, "cell": sizes.cell, "topk": sizes.topk}
    name = f"fixed pool {sizes.pool}, cell {sizes.cell}, topk {sizes.topk}"
    rows = []
    for side in sides:
        for setting, knobs in (("authors' defaults", authors_defaults(side)), (name, fixed)):
            cost = square(sizes, side, **knobs)
            f1, f2, fd = phase1_cost(cost).flops, phase2_cost(cost).flops, dense_cost(cost).flops
            rows.append(
                {
                    "size": side, "setting": setting, "phase1_GFLOP": f1 / 1e9,
                    "phase2_GFLOP": f2 / 1e9, "dense_GFLOP": fd / 1e9,
                    "phase1_share": f1 / (f1 + f2), "dense_over_gpa": fd / (f1 + f2),
                }
            )  # fmt: skip
    table = pd.DataFrame(rows)
    saving = table.set_index(["size", "setting"]).dense_over_gpa
    share = table.set_index(["size", "setting"]).phase1_share
    values = {
        "ch1_fixed_1024_phase1_share_pct": float(100 * share[1024, name]),
        "ch1_fixed_1024_dense_over_gpa": float(saving[1024, name]),
        "ch1_defaults_1024_dense_over_gpa": float(saving[1024, "authors' defaults"]),
        "ch1_defaults_2048_dense_over_gpa": float(saving[2048, "authors' defaults"]),
        "ch1_fixed_2048_dense_over_gpa": float(saving[2048, name]),
        "ch1_fixed_limit": float(sizes.pool**4 * 2),  # p^4 (D + Dv) / D with Dv = D
    }
    return Study(values, table=table.round(3), data={"high_resolution_model": table})


# ------------------------------------------------------------------------- the three knobs


def tradeoff_study(inputs: dict[str, tuple], machine: dict[str, float], *, initial: dict,
                   **grid) -> Study:  # fmt: skip
    """Every (topk, pool, cell) combination of ``grid`` (the quality sweeps' values) evaluated for
    the interactive figure: modelled memory and time at ``machine``'s rates, kept mass, error."""
    from gpa_lib.attention.analysis.tradeoff import tradeoff_grid
    from gpa_lib.interactive.tradeoff import tradeoff_figure

    start = time.perf_counter()
    table = tradeoff_grid(
        inputs, affinity=grid.pop("affinity"), flops_per_s=machine["flops_per_s"],
        bytes_per_s=machine["bytes_per_s"], **grid,
    )  # fmt: skip
    side = inputs["image-like"][0].shape[2]
    values = {"ch1_tradeoff_settings": len(table), "ch1_tradeoff_s": time.perf_counter() - start}
    fig = tradeoff_figure(
        table, features=list(inputs), initial=initial, q_grid=(side, side), k_grid=(side, side)
    )
    return Study(values, table=table, figure=fig, data={"tradeoff": table})


# ------------------------------------------------------------------------ against a GPU


def gpu_count_study() -> Study:
    """This chapter's count of phase 1 against phase 2 at the kernel benchmark's setting, against
    the newest stored GPU run of chapter 2 (a sentence, and the numbers as a Series)."""
    from gpa_lib.attention.analysis.gpu_results import (
        TARGET_GPU,
        complexity_against_measured,
        count_against_measured_sentence,
        newest_kernel_runs,
    )

    count = complexity_against_measured(newest_kernel_runs().get(TARGET_GPU))
    table = pd.Series(count, name="phase 1 against phase 2, forward")
    return Study({"ch1_gpu_sentence": count_against_measured_sentence(count)}, table=table)
