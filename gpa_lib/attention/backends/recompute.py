"""The recompute backend: the reference math in runs of cells under activation checkpointing.

Training keeps none of phase 2's (B, h, Nq, topk * pool^2) attention weights: the forward pass keeps
only its inputs and the backward pass recomputes one run's scores at a time, for the price of a
second phase-2 forward.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from ..grid import from_cells, to_cells
from ..hierarchical import phase1_selection
from ..problem import GPAProblem
from .base import Backend
from .reference import attend_cells


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
        selection = phase1_selection(q, k, problem)  # (B, h, K, k), exact or hierarchical
        return attend_selected_recompute(q, k, v, selection, problem), selection
