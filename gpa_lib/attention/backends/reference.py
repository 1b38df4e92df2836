"""The reference backend: readable pure torch, autograd, any device and floating dtype.

Phase 1 is :func:`~gpa_lib.attention.selection.select_key_blocks` (chunked over cells). Phase 2
gathers, for every query cell, the tokens of its ``topk`` selected key blocks and runs an explicit
softmax attention inside the cell; its memory is linear in the number of queries:
(B, h, Nq, topk * pool^2) scores instead of (B, h, Nq, Nk).
"""

from __future__ import annotations

import math

import torch

from ..grid import from_cells, gather_blocks, to_cells
from ..problem import GPAProblem
from ..selection import select_key_blocks_flat
from . import Backend


def attend_selected(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, selection: torch.Tensor, problem: GPAProblem
) -> torch.Tensor:
    """Phase 2 by gather: every query attends to the tokens of its cell's selected key blocks.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv), selection: (B, h, K, topk)
    block indices. Returns (B, h, Hq, Wq, Dv).
    """
    scale = 1.0 / math.sqrt(problem.head_dim)
    euclid = problem.affinity == "euclid"
    # -|q-k|^2 = 2 q.k - |k|^2 - |q|^2; the |q|^2 term is constant along the softmax axis and cancels.
    q_cells = to_cells(q, problem.cell) * (2 * scale if euclid else scale)  # (B, h, K, c*c, D)
    k_sel = gather_blocks(k, selection, problem.pool)  # (B, h, K, k*p*p, D)
    v_sel = gather_blocks(v, selection, problem.pool)  # (B, h, K, k*p*p, Dv)
    scores = q_cells @ k_sel.transpose(-1, -2)  # (B, h, K, c*c, k*p*p)
    if euclid:
        scores = scores - (scale * k_sel.square().sum(-1)).unsqueeze(-2)  # (B, h, K, c*c, k*p*p)
    del q_cells
    attn = torch.softmax(scores, dim=-1)  # (B, h, K, c*c, k*p*p)
    del scores, k_sel
    out_cells = attn @ v_sel  # (B, h, K, c*c, Dv)
    del attn, v_sel
    return from_cells(out_cells, problem.q_grid, problem.cell)  # (B, h, Hq, Wq, Dv)


class ReferenceBackend(Backend):
    """Chunked phase 1 and gathered phase 2 in plain torch; runs everywhere, differentiable."""

    name = "reference"

    def can_run(self, problem: GPAProblem) -> str | None:
        return None

    def __call__(self, q, k, v, problem):
        selection = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
        return attend_selected(q, k, v, selection, problem), selection
