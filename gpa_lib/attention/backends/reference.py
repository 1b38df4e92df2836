"""The reference and recompute backends: readable pure torch, autograd, any device and floating dtype.

Phase 1 is :func:`~gpa_lib.attention.selection.select_key_blocks` (chunked over cells). Phase 2
gathers, for every query cell, the tokens of its ``topk`` selected key blocks and runs an explicit
softmax attention inside the cell; its memory is linear in the number of queries:
(B, h, Nq, topk * pool^2) scores instead of (B, h, Nq, Nk). The recompute backend runs the same
math in runs of cells under activation checkpointing, so training keeps none of those scores.
"""

from __future__ import annotations

import math

import torch
from torch.utils.checkpoint import checkpoint

from ..grid import from_cells, gather_blocks, to_cells
from ..problem import GPAProblem
from ..selection import select_key_blocks_flat
from . import Backend


def attend_cells(
    q_cells: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    selection: torch.Tensor,
    problem: GPAProblem,
) -> torch.Tensor:
    """Phase 2 for a run of cells: each query attends to the tokens of its cell's selected blocks.

    q_cells: (B, h, K', c*c, D) queries cut into cells (:func:`~gpa_lib.attention.grid.to_cells`),
    unscaled; k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv) the whole key grid; selection:
    (B, h, K', topk) the blocks of those K' cells. Returns (B, h, K', c*c, Dv).
    """
    scale = 1.0 / math.sqrt(problem.head_dim)
    euclid = problem.affinity == "euclid"
    # -|q-k|^2 = 2 q.k - |k|^2 - |q|^2; the |q|^2 term is constant along the softmax axis and cancels.
    q_cells = q_cells * (2 * scale if euclid else scale)  # (B, h, K', c*c, D)
    k_sel = gather_blocks(k, selection, problem.pool)  # (B, h, K', k*p*p, D)
    v_sel = gather_blocks(v, selection, problem.pool)  # (B, h, K', k*p*p, Dv)
    scores = q_cells @ k_sel.transpose(-1, -2)  # (B, h, K', c*c, k*p*p)
    if euclid:
        scores = scores - (scale * k_sel.square().sum(-1)).unsqueeze(-2)  # (B, h, K', c*c, k*p*p)
    del q_cells
    attn = torch.softmax(scores, dim=-1)  # (B, h, K', c*c, k*p*p)
    del scores, k_sel
    return attn @ v_sel  # (B, h, K', c*c, Dv)


def attend_selected(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, selection: torch.Tensor, problem: GPAProblem
) -> torch.Tensor:
    """Phase 2 by gather: every query attends to the tokens of its cell's selected key blocks.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv), selection: (B, h, K, topk)
    block indices. Returns (B, h, Hq, Wq, Dv). All cells at once: autograd keeps the
    (B, h, Nq, topk * pool^2) attention weights for the backward pass.
    """
    out_cells = attend_cells(
        to_cells(q, problem.cell), k, v, selection, problem
    )  # (B, h, K, c*c, Dv)
    return from_cells(out_cells, problem.q_grid, problem.cell)  # (B, h, Hq, Wq, Dv)


def recompute_chunk_cells(problem: GPAProblem) -> int:
    """Cells per chunk of the recompute backend: a chunk's scores are about the size of q.

    A cell's scores are c*c * topk*pool^2 numbers against c*c * D for its queries, so
    ``K * D / (topk * pool^2)`` cells (at least one) hold about as many scores as q holds numbers.
    """
    return max(1, problem.n_cells * problem.head_dim // problem.keys_per_query)


def attend_selected_recompute(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    selection: torch.Tensor,
    problem: GPAProblem,
    chunk_cells: int | None = None,
) -> torch.Tensor:
    """:func:`attend_selected` in runs of ``chunk_cells`` cells, recomputed in the backward pass.

    Same inputs and output. Under autograd each run is a :func:`torch.utils.checkpoint.checkpoint`:
    the forward keeps nothing but its inputs and the backward recomputes one run's scores at a time,
    so a training step needs memory linear in Nq * D (no Nq * topk * pool^2 weights are kept)
    for the price of a second phase-2 forward.
    """
    chunk = recompute_chunk_cells(problem) if chunk_cells is None else chunk_cells
    if chunk < 1:
        raise ValueError(f"chunk_cells={chunk_cells} must be at least 1")
    q_cells = to_cells(q, problem.cell)  # (B, h, K, c*c, D)
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    runs = []
    for start in range(0, problem.n_cells, chunk):
        part = (q_cells[:, :, start : start + chunk], k, v, selection[:, :, start : start + chunk])
        if grad:
            runs.append(checkpoint(attend_cells, *part, problem, use_reentrant=False))
        else:
            runs.append(attend_cells(*part, problem))  # (B, h, chunk, c*c, Dv)
    out_cells = torch.cat(runs, dim=2) if len(runs) > 1 else runs[0]  # (B, h, K, c*c, Dv)
    return from_cells(out_cells, problem.q_grid, problem.cell)  # (B, h, Hq, Wq, Dv)


class ReferenceBackend(Backend):
    """Chunked phase 1 and gathered phase 2 in plain torch; runs everywhere, differentiable."""

    name = "reference"

    def can_run(self, problem: GPAProblem) -> str | None:
        return None

    def __call__(self, q, k, v, problem):
        selection = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
        return attend_selected(q, k, v, selection, problem), selection


class RecomputeBackend(Backend):
    """The reference math in runs of cells, recomputed in the backward pass: least memory to train.

    Never picked automatically (it trades a second phase-2 forward for memory); ask for it with
    ``backend="recompute"`` when the (B, h, Nq, topk * pool^2) attention weights do not fit.
    """

    name = "recompute"

    def can_run(self, problem: GPAProblem) -> str | None:
        return None

    def declines(self, problem: GPAProblem) -> str | None:
        return "it recomputes phase 2 in the backward pass to save memory; force it with backend='recompute'"

    def __call__(self, q, k, v, problem):
        selection = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
        return attend_selected_recompute(q, k, v, selection, problem), selection
