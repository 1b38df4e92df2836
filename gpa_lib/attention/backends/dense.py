"""Exact attention: fused SDPA over all keys, and the materialised score matrix with GPA's mask.

The ``"dense"`` GPA backend is the definition written out: phase 1 picks the key blocks, then a full
(B, h, Nq, Nk) score matrix is masked to the selected keys and soft-maxed. It is exact and slow, the
second oracle of the tests and the "attention with a materialised score matrix" of the benchmark. With
``topk`` covering every key block there is nothing to mask and it calls fused SDPA instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..grid import block_tokens
from ..problem import GPAProblem
from ..selection import select_key_blocks_flat
from . import Backend


def sdpa_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, affinity: str = "dot"
) -> torch.Tensor:
    """Exact attention of every query to every key with ``F.scaled_dot_product_attention``.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv) -> (B, h, Hq, Wq, Dv). Inputs are
    not checked here (see :func:`gpa_lib.attention.dense_attention`).
    """
    B, h, Hq, Wq, D = q.shape
    Dv = v.shape[-1]
    scale = 1.0 / math.sqrt(D)
    # Non-contiguous inputs (e.g. permuted conv features) silently send SDPA to its math kernel, which
    # forms the whole score matrix; a copy into token-major layout keeps the fused kernel.
    q_tok, k_tok, v_tok = (t.flatten(2, 3).contiguous() for t in (q, k, v))  # (B, h, N, D or Dv)
    # The fused CPU kernels need one head dim for q, k and v; zero padding changes no dot product.
    width = max(D, Dv)
    if D < width:
        q_tok, k_tok = F.pad(q_tok, (0, width - D)), F.pad(k_tok, (0, width - D))  # (B, h, N, Dv)
    if Dv < width:
        v_tok = F.pad(v_tok, (0, width - Dv))  # (B, h, Nk, D)
    if affinity == "euclid":
        # s = (2 q.k - |k|^2) / sqrt(D): a doubled scale and a per-key additive bias (|q|^2 cancels).
        bias = (-scale * k_tok.square().sum(-1)).unsqueeze(-2)  # (B, h, 1, Nk)
        out = F.scaled_dot_product_attention(q_tok, k_tok, v_tok, attn_mask=bias, scale=2 * scale)
    else:
        out = F.scaled_dot_product_attention(q_tok, k_tok, v_tok, scale=scale)  # (B, h, Nq, width)
    return out[..., :Dv].unflatten(2, (Hq, Wq))  # (B, h, Hq, Wq, Dv)


def materialised_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    affinity: str = "dot",
    blocked: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attention through an explicit (B, h, Nq, Nk) score matrix, optionally masked.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv); ``blocked``: bool
    (B, h, Nq, Nk), True where a query may not see a key. Returns (B, h, Hq, Wq, Dv).
    """
    B, h, Hq, Wq, D = q.shape
    scale = 1.0 / math.sqrt(D)
    euclid = affinity == "euclid"
    q_tok = q.flatten(2, 3) * (2 * scale if euclid else scale)  # (B, h, Nq, D)
    k_tok, v_tok = k.flatten(2, 3), v.flatten(2, 3)  # (B, h, Nk, D), (B, h, Nk, Dv)
    scores = q_tok @ k_tok.transpose(-1, -2)  # (B, h, Nq, Nk)
    if euclid:
        scores = scores - (scale * k_tok.square().sum(-1)).unsqueeze(-2)  # (B, h, Nq, Nk)
    if blocked is not None:
        scores = scores.masked_fill(blocked, float("-inf"))  # (B, h, Nq, Nk)
    attn = torch.softmax(scores, dim=-1)  # (B, h, Nq, Nk)
    del scores
    return (attn @ v_tok).unflatten(2, (Hq, Wq))  # (B, h, Hq, Wq, Dv)


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


class DenseBackend(Backend):
    """GPA by masking a materialised score matrix: exact, memory (B, h, Nq, Nk)."""

    name = "dense"

    def can_run(self, problem: GPAProblem) -> str | None:
        return None

    def declines(self, problem: GPAProblem) -> str | None:
        return (
            "it materialises a (B, h, Nq, Nk) score matrix; it is the exact oracle, not a fast path"
        )

    def __call__(self, q, k, v, problem):
        selection = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
        if problem.covers_all_keys:
            return sdpa_attention(q, k, v, problem.affinity), selection
        blocked = blocked_keys(selection, problem)  # (B, h, Nq, Nk)
        return materialised_attention(q, k, v, problem.affinity, blocked), selection
