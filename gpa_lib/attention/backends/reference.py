"""The reference backend: readable pure torch, autograd, any device and floating dtype; the tests' oracle.

Phase 1 is :func:`~gpa_lib.attention.selection.select_key_blocks` (chunked over cells). Phase 2
gathers, for every query cell, the tokens of its ``topk`` selected key blocks and runs an explicit
softmax attention inside the cell; its memory is linear in the number of queries:
(B, h, Nq, topk * pool^2) scores instead of (B, h, Nq, Nk). The recompute backend
(:mod:`.recompute`) runs the same math in runs of cells under activation checkpointing.
"""

from __future__ import annotations

import torch

from ..grid import from_cells, gather_blocks, to_cells
from ..hierarchical import phase1_selection
from ..problem import GPAProblem
from ..scores import key_bias, logit_dtype, logit_scale
from .base import Backend


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
    work = logit_dtype(q_cells.dtype, problem.affinity)
    q_cells = q_cells.to(work) * logit_scale(problem.affinity, problem.head_dim)  # (B,h,K',c*c,D)
    k_sel = gather_blocks(k, selection, problem.pool).to(work)  # (B, h, K', k*p*p, D)
    v_sel = gather_blocks(v, selection, problem.pool)  # (B, h, K', k*p*p, Dv)
    scores = q_cells @ k_sel.transpose(-1, -2)  # (B, h, K', c*c, k*p*p)
    bias = key_bias(k_sel, problem.affinity)  # (B, h, K', k*p*p) or None
    if bias is not None:
        scores = scores + bias.unsqueeze(-2)  # (B, h, K', c*c, k*p*p)
    del q_cells
    attn = torch.softmax(scores, dim=-1).to(v_sel.dtype)  # (B, h, K', c*c, k*p*p)
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


class ReferenceBackend(Backend):
    """Chunked phase 1 and gathered phase 2 in plain torch; runs everywhere, differentiable."""

    name = "reference"

    def can_run(self, problem: GPAProblem) -> str | None:
        return None

    def __call__(self, q, k, v, problem):
        selection = phase1_selection(q, k, problem)  # (B, h, K, k), exact or hierarchical
        return attend_selected(q, k, v, selection, problem), selection
