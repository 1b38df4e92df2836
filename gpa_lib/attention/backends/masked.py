"""The ``"masked"`` GPA backend: the definition written out, a materialised score matrix masked to the selection.

Phase 1 picks the key blocks, then a full (B, h, Nq, Nk) score matrix is masked to the selected keys
and soft-maxed. It is exact and slow: the second oracle of the tests, never chosen automatically.
With ``topk`` covering every key block there is nothing to mask and it calls fused SDPA instead.
"""

from __future__ import annotations

import torch

from ..exact import materialised_attention, sdpa_attention
from ..grid import block_tokens
from ..hierarchical import phase1_selection
from ..problem import GPAProblem
from .base import Backend


def blocked_keys(selection: torch.Tensor, problem: GPAProblem) -> torch.Tensor:
    """Bool (B, h, Nq, Nk), True where a query's cell did not select the key's block."""
    device = selection.device
    shape = (problem.batch, problem.heads, problem.n_cells, problem.n_key_blocks)
    allowed = torch.zeros(shape, dtype=torch.bool, device=device)  # (B, h, K, Nb)
    allowed.scatter_(-1, selection, True)
    Hq, Wq = problem.q_grid
    rows = torch.arange(Hq, device=device) // problem.cell
    cols = torch.arange(Wq, device=device) // problem.cell
    cell_of_query = (rows[:, None] * problem.cell_grid[1] + cols[None, :]).flatten()  # (Nq,)
    token = block_tokens(
        torch.arange(problem.n_key_blocks, device=device), problem.k_grid, problem.pool
    )
    block_of_key = torch.empty(problem.n_keys, dtype=torch.long, device=device)  # (Nk,)
    block_of_key[token.flatten()] = torch.arange(
        problem.n_key_blocks, device=device
    ).repeat_interleave(problem.pool**2)
    blocked_cells = ~allowed  # (B, h, K, Nb)
    return blocked_cells[:, :, cell_of_query][:, :, :, block_of_key]  # (B, h, Nq, Nk)


class MaskedBackend(Backend):
    """GPA by masking a materialised score matrix: exact, memory (B, h, Nq, Nk)."""

    name = "masked"

    def can_run(self, problem: GPAProblem) -> str | None:
        return None

    def declines(self, problem: GPAProblem) -> str | None:
        return (
            "it materialises a (B, h, Nq, Nk) score matrix; it is the exact oracle, not a fast path"
        )

    def __call__(self, q, k, v, problem):
        selection = phase1_selection(q, k, problem)  # (B, h, K, k), exact or hierarchical
        if problem.covers_all_keys:
            return sdpa_attention(q, k, v, problem.affinity), selection
        blocked = blocked_keys(selection, problem)  # (B, h, Nq, Nk)
        return materialised_attention(q, k, v, problem.affinity, blocked), selection
