"""Correctness evidence for the fused kernel that needs no GPU: the CUDA source run by the host emulation
(``csrc/gpa_emulation.h``) against the float64 reference, by FlashAttention's test rule.

The rule (flash-attention ``tests/test_flash_attn.py``): the kernel's error against an exact (float64)
result may be at most twice the error of the PyTorch reference run in the same precision, plus a
rounding floor of twice the error of merely rounding the exact result to that precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ...backends.reference import attend_selected
from ...problem import check_inputs
from ...scores import key_bias, logit_scale


def flash_rule(
    ours: torch.Tensor, same_precision: torch.Tensor, exact: torch.Tensor, dtype: torch.dtype
) -> dict[str, Any]:
    """Max abs errors of ``ours`` and of the same-precision reference against ``exact``, and the verdict."""
    exact = exact.double()
    err = (ours.double() - exact).abs().max().item()
    ref_err = (same_precision.double() - exact).abs().max().item()
    floor = 2 * (exact.to(dtype).double() - exact).abs().max().item() + 1e-6
    bound = 2 * ref_err + floor
    return {
        "kernel_error": err,
        "reference_error": ref_err,
        "floor": floor,
        "bound": bound,
        "ok": err <= bound,
    }


def emulated_kernel_report(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    selection: torch.Tensor,
    *,
    pool: int,
    cell: int,
    affinity: str = "dot",
    late_copies: bool = False,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """Forward and dq, dk, dv of the emulated kernel against the reference, one row per tensor.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv) in the kernel's dtype (bf16, fp16
    or fp32, CPU); selection: (B, h, Hq/cell, Wq/cell, topk) block indices. ``seed`` draws the output
    gradient. Needs a host C++ compiler (see :func:`gpa_lib.attention.kernel.cuda.emulation.compiler`).
    """
    from . import emulation

    dtype, dim = q.dtype, q.shape[-1]
    euclid = affinity == "euclid"
    scale = logit_scale(affinity, dim)
    bias64 = key_bias(k, affinity, dtype=torch.float64)  # (B, h, Hk, Wk) or None
    bias = None if bias64 is None else bias64.float()
    out, lse = emulation.emulated_forward(
        q, k, v, selection, bias, pool, cell, scale, late_copies=late_copies
    )
    dout = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    dq, dk, dv, dbias = emulation.emulated_backward(
        dout, q, k, v, out, lse, selection, bias, pool, cell, scale, late_copies=late_copies
    )
    if euclid:  # chain rule through key_bias = -|k|^2 / sqrt(D), as autograd does on the GPU
        dk = dk.double() + dbias.double().unsqueeze(-1) * (-2.0 / math.sqrt(dim)) * k.double()
    problem = check_inputs(
        q, k, v, pool=pool, cell=cell, topk=selection.shape[-1], affinity=affinity
    )
    reference = {}
    for label, precision in (("exact", torch.float64), ("same", dtype)):
        tensors = [t.to(precision).requires_grad_() for t in (q, k, v)]
        ref = attend_selected(*tensors, selection.flatten(2, 3), problem)
        reference[label] = (ref, *torch.autograd.grad(ref, tensors, dout.to(precision)))
    rows = []
    for i, (name, ours) in enumerate(
        zip(("out", "dq", "dk", "dv"), (out, dq, dk, dv), strict=True)
    ):
        rows.append(
            {"tensor": name, **flash_rule(ours, reference["same"][i], reference["exact"][i], dtype)}
        )
    return rows


@dataclass(frozen=True)
class EmulationCase:
    """One configuration of the emulated kernel check; grids in tokens, ``topk`` in key blocks."""

    dtype: torch.dtype  # the kernel's input dtype
    head_dim: int  # D = Dv
    q_grid: tuple[int, int]  # (Hq, Wq)
    k_grid: tuple[int, int]  # (Hk, Wk)
    pool: int
    cell: int
    topk: int
    heads: int = 2
    affinity: str = "dot"  # "euclid" exercises the key-bias path
    late_copies: bool = False  # make cp.async copies land as late as allowed


#: The configurations the tests run and chapter 2 picks from: head dims 16/32/64/128, pool 1 to 8, cells
#: 3 to 16, query and key grids of different sizes, blocks shared by many cells, late copies.
EMULATION_CASES: dict[str, EmulationCase] = {
    "bf16_d64": EmulationCase(torch.bfloat16, 64, (16, 16), (16, 16), 4, 8, 4, heads=1),
    "f16_d32_euclid": EmulationCase(
        torch.float16, 32, (16, 8), (8, 16), 2, 4, 3, heads=1, affinity="euclid"
    ),
    "f32_d128": EmulationCase(torch.float32, 128, (8, 8), (12, 8), 4, 8, 2, heads=1),
    "bf16_d64_euclid_late": EmulationCase(
        torch.bfloat16, 64, (16, 16), (16, 16), 4, 8, 3, affinity="euclid", late_copies=True
    ),
    "f16_d32_cell4_pool2_hq_ne_hk": EmulationCase(torch.float16, 32, (8, 12), (6, 10), 2, 4, 3),
    "bf16_d128_multi_tile": EmulationCase(
        torch.bfloat16, 128, (8, 24), (12, 20), 4, 8, 5, heads=1, late_copies=True
    ),
    "bf16_d32_blocks_shared_by_many_cells": EmulationCase(
        torch.bfloat16, 32, (32, 32), (8, 8), 4, 8, 2, heads=1, late_copies=True
    ),
    "f16_d64_pool8_cell16": EmulationCase(
        torch.float16, 64, (16, 16), (16, 16), 8, 16, 2, heads=1, affinity="euclid"
    ),
    "bf16_d64_pool1_cell3": EmulationCase(torch.bfloat16, 64, (6, 9), (5, 7), 1, 3, 7, heads=1),
    "f32_d32_euclid": EmulationCase(
        torch.float32, 32, (4, 8), (6, 4), 2, 4, 2, affinity="euclid", late_copies=True
    ),
    # D = 16: the pose generator's heads (its gpu preset, 4 x 16, pool 4, cell 8, in float32).
    "f32_d16_pose": EmulationCase(torch.float32, 16, (16, 16), (16, 16), 4, 8, 4),
    "bf16_d16_euclid_late": EmulationCase(
        torch.bfloat16, 16, (8, 16), (12, 8), 4, 8, 3, affinity="euclid", late_copies=True
    ),
}


def case_inputs(case: EmulationCase, *, features: str = "random", seed: int = 0):
    """q, k, v (B=1, h, H, W, D) in ``case.dtype`` and a selection (1, h, Hq/cell, Wq/cell, topk).

    ``features="random"``: Gaussian q, k, v and a random selection of distinct blocks (the tests).
    ``features="image"``: features of textured images and GPA's own phase-1 selection (chapter 2).
    """
    gen = torch.Generator().manual_seed(seed)
    h, D = case.heads, case.head_dim
    if features == "random":
        q, k, v = (
            torch.randn(1, h, *grid, D, generator=gen, dtype=torch.float64).to(case.dtype)
            for grid in (case.q_grid, case.k_grid, case.k_grid)
        )
        n_blocks = (case.k_grid[0] // case.pool) * (case.k_grid[1] // case.pool)
        cells = (case.q_grid[0] // case.cell, case.q_grid[1] // case.cell)
        ranks = torch.rand(1, h, *cells, n_blocks, generator=gen)
        return q, k, v, ranks.argsort(dim=-1)[..., : case.topk]  # (1, h, Hq/c, Wq/c, k)
    if features != "image":
        raise ValueError(f"features={features!r} must be 'random' or 'image'")
    from ...grid import to_heads
    from ...selection import select_key_blocks
    from ...synthetic import image_features, textured_image

    def grid_features(grid, image_seed):
        image = textured_image(grid, seed=image_seed)
        return to_heads(image_features(image, h * D, seed=seed), h)  # (1, h, H, W, D)

    q, k = grid_features(case.q_grid, seed), grid_features(case.k_grid, seed + 1)
    v = torch.randn(k.shape, generator=gen)
    selection = select_key_blocks(
        q.double(), k.double(), pool=case.pool, cell=case.cell, topk=case.topk,
        affinity=case.affinity,
    )  # fmt: skip
    return q.to(case.dtype), k.to(case.dtype), v.to(case.dtype), selection


def emulated_case_report(
    name: str, *, features: str = "random", seed: int = 0
) -> list[dict[str, Any]]:
    """:func:`emulated_kernel_report` of the case ``name`` of :data:`EMULATION_CASES`."""
    if name not in EMULATION_CASES:
        raise ValueError(f"case name={name!r} is unknown; choose one of {list(EMULATION_CASES)}")
    case = EMULATION_CASES[name]
    q, k, v, selection = case_inputs(case, features=features, seed=seed)
    return emulated_kernel_report(
        q, k, v, selection, pool=case.pool, cell=case.cell, affinity=case.affinity,
        late_copies=case.late_copies, seed=seed + 1,
    )  # fmt: skip


# --- phase 1 -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase1Case:
    """One configuration of the emulated phase-1 check; grids in tokens, ``topk`` in key blocks."""

    batch: int  # B
    heads: int  # h
    q_grid: tuple[int, int]  # (Hq, Wq)
    k_grid: tuple[int, int]  # (Hk, Wk)
    head_dim: int  # D
    pool: int
    cell: int
    topk: int
    affinity: str = "dot"
    late_copies: bool = False  # make cp.async copies land as late as allowed


#: Unequal and non-square grids, several blocks of cells and several key tiles, (cell/pool)^2 of 1,
#: 4, 9, 16 and 64 low-resolution rows per cell, topk equal to the number of key blocks, late copies.
PHASE1_CASES: dict[str, Phase1Case] = {
    "d32_two_batches_three_heads": Phase1Case(
        2, 3, (24, 40), (36, 28), 32, 4, 8, 6, late_copies=True
    ),
    "d16_many_key_tiles_and_blocks": Phase1Case(1, 1, (48, 48), (80, 80), 16, 4, 8, 8),
    "d128_nine_rows_euclid": Phase1Case(
        1, 1, (12, 12), (8, 8), 128, 1, 3, 9, affinity="euclid", late_copies=True
    ),
    "d64_64_rows_topk_all": Phase1Case(1, 2, (16, 16), (8, 8), 64, 1, 8, 64),
    "d32_one_row_per_cell_euclid": Phase1Case(1, 1, (32, 32), (32, 32), 32, 4, 4, 3, "euclid"),
    "d16_pose_gpu_setting": Phase1Case(2, 4, (32, 32), (32, 32), 16, 4, 8, 16, late_copies=True),
    "d64_benchmark_setting": Phase1Case(1, 2, (64, 64), (64, 64), 64, 4, 8, 8),
}


def phase1_case_inputs(case: Phase1Case, *, features: str = "random", seed: int = 0):
    """q, k (B, h, H, W, D) float32 for a phase-1 case: Gaussian (``"random"``) or features of
    textured images (``"image"``, as in chapter 2)."""
    B, h, D = case.batch, case.heads, case.head_dim
    if features == "random":
        gen = torch.Generator().manual_seed(seed)
        return tuple(
            torch.randn(B, h, *grid, D, generator=gen) for grid in (case.q_grid, case.k_grid)
        )
    if features != "image":
        raise ValueError(f"features={features!r} must be 'random' or 'image'")
    from ...grid import to_heads
    from ...synthetic import image_features, textured_image

    def grid_features(grid, image_seed):
        per_item = [
            to_heads(
                image_features(textured_image(grid, seed=image_seed + 7 * b), h * D, seed=seed), h
            )
            for b in range(B)
        ]  # each (1, h, H, W, D)
        return torch.cat(per_item).float()  # (B, h, H, W, D)

    return grid_features(case.q_grid, seed), grid_features(case.k_grid, seed + 1)


def emulated_phase1_report(name: str, *, features: str = "random", seed: int = 0) -> dict[str, Any]:
    """The emulated phase-1 kernel of case ``name`` of :data:`PHASE1_CASES` against the float32 torch
    selection, with split (three-term) and single-term bf16 products: shared picks, differing cells,
    and the worst kept-mass gap of a differing cell (see
    :func:`~gpa_lib.attention.kernel.cuda.phase1.selection_agreement`)."""
    from ...selection import select_key_blocks_flat
    from . import emulation
    from .phase1 import phase1_operands, pick_agreement, selection_agreement

    if name not in PHASE1_CASES:
        raise ValueError(f"case name={name!r} is unknown; choose one of {list(PHASE1_CASES)}")
    case = PHASE1_CASES[name]
    q, k = phase1_case_inputs(case, features=features, seed=seed)
    problem = check_inputs(
        q, k, k, pool=case.pool, cell=case.cell, topk=case.topk, affinity=case.affinity
    )
    oracle = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
    exact = select_key_blocks_flat(q.double(), k.double(), problem)  # the float64 selection
    row: dict[str, Any] = {
        "case": name,
        "D": case.head_dim,
        "rows per cell": problem.low_queries_per_cell,
        "key blocks": problem.n_key_blocks,
        "topk": case.topk,
        # the control: how far the float32 oracle itself is from the float64 selection
        "float32 oracle agreement with float64": pick_agreement(oracle, exact)["agreement"],
    }
    for label, split in (("split", True), ("single", False)):
        ours = emulation.emulated_phase1(
            phase1_operands(q, k, problem, split=split), late_copies=case.late_copies
        )
        report = selection_agreement(q, k, problem, ours, oracle)
        row[f"{label} agreement"] = report["agreement"]
        row[f"{label} worst mass gap"] = report["worst_mass_gap"]
        if split:
            row["identical"] = bool(torch.equal(ours, oracle))
    return row


def phase1_evidence(names, *, features: str = "image", seed: int = 0):
    """Chapter 2's table of :func:`emulated_phase1_report` over the cases ``names``, and its glue:
    ``ch2_p1_cases``, the smallest split and single-term agreements with the float32 oracle (shares
    of picks), the largest kept-mass gaps of a differing cell, and the smallest agreement of the
    float32 oracle itself with the float64 selection (the control)."""
    import pandas as pd

    table = pd.DataFrame([emulated_phase1_report(n, features=features, seed=seed) for n in names])
    glue = {
        "ch2_p1_cases": len(table),
        "ch2_p1_split_agreement": float(table["split agreement"].min()),
        "ch2_p1_single_agreement": float(table["single agreement"].min()),
        "ch2_p1_split_mass_gap": float(table["split worst mass gap"].max()),
        "ch2_p1_single_mass_gap": float(table["single worst mass gap"].max()),
        "ch2_p1_oracle_agreement": float(table["float32 oracle agreement with float64"].min()),
    }
    return table, glue


def emulated_evidence(names, *, features: str = "image", seed: int = 0):
    """Chapter 2's table of :func:`emulated_case_report` over the cases ``names`` (one row per
    configuration and tensor, with ``error / bound``), and its glue: the checks that pass
    (``ch2_evidence_passed``), all checks (``ch2_evidence_total``) and the largest error over its
    bound (``ch2_evidence_worst``, NaN without checks)."""
    import pandas as pd

    rows = [
        {"configuration": name, **row, "error / bound": row["kernel_error"] / row["bound"]}
        for name in names
        for row in emulated_case_report(name, features=features, seed=seed)
    ]
    table = pd.DataFrame(rows)
    glue = {
        "ch2_evidence_passed": int(table["ok"].sum()) if len(table) else 0,
        "ch2_evidence_total": len(table),
        "ch2_evidence_worst": float(table["error / bound"].max()) if len(table) else float("nan"),
    }
    return table, glue
