"""Phase 1 as one fused CUDA kernel (``csrc/gpa_phase1.cuh``): the selection without a score tensor.

The torch selection (:func:`~gpa_lib.attention.selection.select_key_blocks`) is the oracle: it forms
the low-resolution scores chunk by chunk in float32, exponentiates them, averages them over each
cell and takes ``torch.topk``. The kernel does the same two passes per block of cells on the
tensor cores: the log-sum-exp of every low-resolution query row over all key blocks, then the
probabilities again, summed over the cell's rows and merged into a running top-k list per cell
(ties to the lower block index). Only the (B, h, K, topk) indices reach global memory.

Precision. The pooled grids are float32; the tensor cores multiply bf16. With ``split=True`` (the
default) each operand is sent as bf16 hi + lo, and ``hi*hi + hi*lo + lo*hi`` keeps about 16
significant bits of every product (three mma per product); ``split=False`` sends hi only, bf16
accuracy at a third of the tensor-core work. Selections may differ from the float32 oracle only
where two blocks' mean probabilities are within that rounding of each other (near-ties): see
:func:`selection_agreement`.

Everything but the kernel call is torch and runs anywhere, so the CPU emulation
(:func:`gpa_lib.attention.kernel.cuda.emulation.emulated_phase1`) executes the same kernel on the same
operands.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...problem import GPAProblem
from ...scores import key_bias, logit_scale
from ...selection import cell_block_scores, low_resolution

#: Head dims the phase-1 kernel is instantiated for, and the most low-resolution rows per cell
#: ((cell/pool)^2; one block of 64 rows holds at least one whole cell).
PHASE1_HEAD_DIMS = (16, 32, 64, 128)
PHASE1_MAX_ROWS_PER_CELL = 64
#: Largest top-k list of the worst case (64 cells of one row per block, D=128) within the kernel's
#: 200 KiB of shared memory; larger topk runs when fewer cells share a block (see the C source).
PHASE1_MAX_TOPK = 256


@dataclass(frozen=True)
class Phase1Operands:
    """What the kernel reads: pooled grids split into bf16 parts, the key bias and the scale."""

    q_hi: torch.Tensor  # (B, h, K, r, D) bf16, r = (cell/pool)^2 low-res queries per cell
    q_lo: torch.Tensor | None  # same, the rounding error of q_hi (None: single-term products)
    k_hi: torch.Tensor  # (B, h, Nb, D) bf16, one low-res key per key block
    k_lo: torch.Tensor | None  # same, or None
    key_bias: torch.Tensor | None  # (B, h, Nb) float32, -|k|^2/sqrt(D) for euclid, else None
    scale: float  # factor on q.k: 1/sqrt(D) (dot) or 2/sqrt(D) (euclid)
    topk: int


def fused_phase1_reason(problem: GPAProblem) -> str | None:
    """Why the fused phase-1 kernel does not cover ``problem`` (None: it does, if the kernel builds)."""
    if problem.head_dim not in PHASE1_HEAD_DIMS:
        return f"the phase-1 kernel is built for head dims {PHASE1_HEAD_DIMS}, got D={problem.head_dim}"
    rows = problem.low_queries_per_cell
    if rows > PHASE1_MAX_ROWS_PER_CELL:
        return (
            f"(cell/pool)^2={rows} low-resolution queries per cell > {PHASE1_MAX_ROWS_PER_CELL} "
            f"(cell={problem.cell}, pool={problem.pool}): one block must hold a whole cell"
        )
    if problem.topk > PHASE1_MAX_TOPK:
        return f"topk={problem.topk} > {PHASE1_MAX_TOPK}: the top-k lists must fit in shared memory"
    return None


def _split_bf16(x: torch.Tensor, split: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    hi = x.to(torch.bfloat16)
    return hi, ((x - hi.to(x.dtype)).to(torch.bfloat16) if split else None)


def phase1_operands(
    q: torch.Tensor, k: torch.Tensor, problem: GPAProblem, *, split: bool = True
) -> Phase1Operands:
    """Pool q and k (in float32, as the oracle does) and split them into the kernel's bf16 parts.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D) on any device; no gradient flows.
    """
    with torch.no_grad():
        q_low_cells, k_low = low_resolution(q, k, problem.pool, problem.cell)
        q_low_cells, k_low = q_low_cells.float(), k_low.float()  # (B, h, K, r, D), (B, h, Nb, D)
        bias = key_bias(k_low, problem.affinity, dtype=torch.float32)  # (B, h, Nb) or None
        q_hi, q_lo = _split_bf16(q_low_cells, split)
        k_hi, k_lo = _split_bf16(k_low, split)
    return Phase1Operands(
        q_hi=q_hi.contiguous(),
        q_lo=None if q_lo is None else q_lo.contiguous(),
        k_hi=k_hi.contiguous(),
        k_lo=None if k_lo is None else k_lo.contiguous(),
        key_bias=None if bias is None else bias.contiguous(),
        scale=logit_scale(problem.affinity, problem.head_dim),
        topk=problem.topk,
    )


def select_key_blocks_fused(
    q: torch.Tensor, k: torch.Tensor, problem: GPAProblem, *, split: bool = True
) -> torch.Tensor:
    """Phase 1 by the fused kernel on CUDA tensors: (B, h, K, topk) block indices, best first.

    Raises :class:`~gpa_lib.attention.kernel.cuda.build.CudaKernelUnavailable` when the extension cannot
    be built and ``ValueError`` (with the reason) for a problem outside :func:`fused_phase1_reason`.
    """
    reason = fused_phase1_reason(problem)
    if reason is not None:
        raise ValueError(reason)
    from .build import load_extension

    ops = phase1_operands(q, k, problem, split=split)
    return load_extension().phase1_select(
        ops.q_hi, ops.q_lo, ops.k_hi, ops.k_lo, ops.key_bias, ops.scale, ops.topk
    )


def pick_agreement(ours: torch.Tensor, oracle: torch.Tensor) -> dict[str, float]:
    """Share of (cell, block) picks two selections (B, h, K, topk) share, and of cells that differ.

    Cheap at any size (sorts along topk only); :func:`selection_agreement` adds the near-tie check.
    """
    topk = oracle.shape[-1]
    a, b = ours.sort(-1).values, oracle.sort(-1).values  # (B, h, K, k) each
    # shared picks of two sorted rows: for each of ours, whether it occurs in the oracle's row
    shared = (a.unsqueeze(-1) == b.unsqueeze(-2)).any(-1).sum(-1)  # (B, h, K)
    return {
        "agreement": float(shared.sum()) / shared.numel() / topk,
        "cells_differing": float((shared < topk).double().mean()),
    }


def selection_agreement(
    q: torch.Tensor,
    k: torch.Tensor,
    problem: GPAProblem,
    ours: torch.Tensor,
    oracle: torch.Tensor,
) -> dict[str, float]:
    """How a selection compares with the oracle's, pick by pick, in the oracle's own float64 scores.

    ``ours``, ``oracle``: (B, h, K, topk). Returns the share of (cell, block) picks the two share
    (``agreement``), the share of cells with any difference, and, over the differing cells, the
    largest gap in kept mass (oracle's sum of mean probabilities minus ours, relative to the
    oracle's) and the largest gap between the best block left out by us and the worst we kept,
    relative to the cell's top score (``worst_swap``): a near-tie has both close to zero.
    """
    B, h, K, topk = oracle.shape
    scores = cell_block_scores(
        q.double(), k.double(), pool=problem.pool, cell=problem.cell, affinity=problem.affinity
    ).flatten(2, 3)  # (B, h, K, Nb) float64
    n_blocks = scores.shape[-1]
    ours_mask = torch.zeros(B, h, K, n_blocks, dtype=torch.bool, device=scores.device)
    oracle_mask = torch.zeros_like(ours_mask)
    ours_mask.scatter_(-1, ours.to(scores.device), True)
    oracle_mask.scatter_(-1, oracle.to(scores.device), True)
    shared = (ours_mask & oracle_mask).sum(-1)  # (B, h, K)
    differs = shared < topk
    kept_ours = (scores * ours_mask).sum(-1)
    kept_oracle = (scores * oracle_mask).sum(-1)
    top = scores.amax(-1)
    mass_gap = ((kept_oracle - kept_ours) / kept_oracle.clamp_min(1e-300))[differs]
    only_oracle = torch.where(oracle_mask & ~ours_mask, scores, torch.zeros_like(scores)).amax(-1)
    only_ours = torch.where(ours_mask & ~oracle_mask, scores, torch.full_like(scores, torch.inf))
    swap = ((only_oracle - only_ours.amin(-1)) / top.clamp_min(1e-300))[differs]
    return {
        "agreement": float(shared.sum()) / (B * h * K * topk),
        "cells_differing": float(differs.double().mean()),
        "worst_mass_gap": float(mass_gap.max()) if mass_gap.numel() else 0.0,
        "worst_swap": float(swap.max()) if swap.numel() else 0.0,
    }
