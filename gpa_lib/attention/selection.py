"""Phase 1 of GPA: choose, for every query cell, the ``topk`` key blocks it will attend to.

1. q̄, k̄: average pools of q and k over ``pool x pool`` blocks (the low-resolution grids).
2. P = softmax over all low-resolution keys j of s(q̄_i, k̄_j), with s = q·k/√D (``"dot"``) or
   s = −‖q−k‖²/√D (``"euclid"``).
3. Each key block j gets the mean of P[i, j] over the low-resolution queries i inside the cell; the
   cell keeps the ``topk`` best, ties going to the lower block index.

The work is done cell chunk by cell chunk, so that no tensor of all low-resolution queries by all
low-resolution keys exists: a chunk's score matrix has at most ``chunk_elements`` entries. Phase 1
runs without autograd (no gradient flows through a selection) and in at least float32.
"""

from __future__ import annotations

import torch

from .grid import avg_pool_grid, to_cells
from .problem import check_inputs
from .scores import key_bias, logit_scale

#: Upper bound on the entries of one phase-1 score chunk (B * h * cells * (cell/pool)^2 * blocks);
#: 2**22 float32 entries are 16 MiB.
PHASE1_CHUNK_ELEMENTS = 2**22


def phase1_chunk_cells(
    batch: int,
    heads: int,
    n_cells: int,
    low_per_cell: int,
    n_blocks: int,
    chunk_elements: int = PHASE1_CHUNK_ELEMENTS,
) -> int:
    """Cells per phase-1 chunk: as many as fit in ``chunk_elements`` score entries, at least one."""
    per_cell = batch * heads * low_per_cell * n_blocks
    return max(1, min(n_cells, chunk_elements // per_cell))


def low_resolution(q: torch.Tensor, k: torch.Tensor, pool: int, cell: int):
    """Pooled queries grouped by cell and pooled keys, in at least float32:
    (B, h, K, (cell/pool)^2, D) and (B, h, Nb, D)."""
    work = torch.promote_types(q.dtype, torch.float32)
    q_low = avg_pool_grid(q.to(work), pool)  # (B, h, Hq/p, Wq/p, D)
    q_low_cells = to_cells(q_low, cell // pool)  # (B, h, K, r, D) with r = (cell/pool)^2
    k_low = avg_pool_grid(k.to(work), pool).flatten(2, 3)  # (B, h, Nb, D)
    return q_low_cells, k_low


def _mean_probabilities(
    q_low_cells: torch.Tensor, k_low: torch.Tensor, affinity: str, bias: torch.Tensor | None
) -> torch.Tensor:
    """Mean over each cell's low-res queries of softmax_j s(q̄_i, k̄_j): (B, h, Kc, r, D) -> (B, h, Kc, Nb).

    ``bias`` is :func:`~gpa_lib.attention.scores.key_bias` of ``k_low``, computed once for all chunks.
    """
    B, h, Kc, r, D = q_low_cells.shape
    scores = q_low_cells.flatten(2, 3) @ k_low.transpose(-1, -2)  # (B, h, Kc*r, Nb)
    scores.mul_(logit_scale(affinity, D))
    if bias is not None:
        scores.add_(bias[:, :, None, :])
    # Softmax over the low-resolution keys, fused with the mean over the cell: exponentiate in place
    # (one chunk-sized buffer), then one batched product weights each row by 1 / (its sum * r), so
    # the normalised probabilities are never written out.
    scores.sub_(scores.amax(dim=-1, keepdim=True)).exp_()
    weights = scores.sum(dim=-1).mul_(r).reciprocal_()  # (B, h, Kc*r)
    rows = scores.view(B, h, Kc, r, scores.shape[-1])  # (B, h, Kc, r, Nb)
    return (weights.view(B, h, Kc, 1, r) @ rows).squeeze(-2)  # (B, h, Kc, Nb)


def topk_lower_index_ties(scores: torch.Tensor, topk: int) -> torch.Tensor:
    """Indices of the ``topk`` largest entries along the last axis, best first, ties to the lower index.

    ``torch.topk`` leaves the order of equal values unspecified, so rows where the kept values tie
    with each other or with a value left out are redone with a stable sort.
    """
    values, indices = torch.topk(scores, topk, dim=-1, sorted=True)  # (..., k)
    kth = values[..., -1:]  # (..., 1)
    tied = (scores == kth).sum(dim=-1) > 1  # boundary value occurs more than once
    if topk > 1:
        tied |= (values[..., 1:] == values[..., :-1]).any(dim=-1)
    if tied.any():
        order = torch.sort(scores[tied], dim=-1, descending=True, stable=True).indices
        indices[tied] = order[..., :topk]
    return indices


def cell_block_scores(
    q: torch.Tensor, k: torch.Tensor, *, pool: int, cell: int, affinity: str = "dot"
) -> torch.Tensor:
    """The phase-1 score of every key block for every cell, mean of P over the cell's low-res queries.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D); sizes in tokens. Returns float
    (B, h, Hq/cell, Wq/cell, Nb), Nb = (Hk/pool)(Wk/pool), rows summing to 1. Materialises all of it:
    for figures and diagnostics on small grids.
    """
    problem = check_inputs(q, k, k, pool=pool, cell=cell, topk=1, affinity=affinity)
    with torch.no_grad():
        q_low_cells, k_low = low_resolution(q, k, pool, cell)
        bias = key_bias(k_low, affinity)  # (B, h, Nb) or None
        scores = _mean_probabilities(q_low_cells, k_low, affinity, bias)  # (B, h, K, Nb)
    return scores.unflatten(2, problem.cell_grid)  # (B, h, Hq/c, Wq/c, Nb)


def select_key_blocks(
    q: torch.Tensor,
    k: torch.Tensor,
    *,
    pool: int,
    cell: int,
    topk: int,
    affinity: str = "dot",
    chunk_elements: int = PHASE1_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Phase 1: the ``topk`` key blocks of every query cell.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D); ``pool``, ``cell`` in tokens, ``topk`` in blocks.
    Returns a LongTensor (B, h, Hq/cell, Wq/cell, topk) of block indices, row-major over the
    (Hk/pool, Wk/pool) grid, best block first (ties to the lower index). ``chunk_elements`` bounds the
    entries of the score chunk (see :data:`PHASE1_CHUNK_ELEMENTS`).
    """
    problem = check_inputs(q, k, k, pool=pool, cell=cell, topk=topk, affinity=affinity)
    return select_key_blocks_flat(q, k, problem, chunk_elements).unflatten(2, problem.cell_grid)


def select_key_blocks_flat(
    q: torch.Tensor, k: torch.Tensor, problem, chunk_elements: int = PHASE1_CHUNK_ELEMENTS
) -> torch.Tensor:
    """:func:`select_key_blocks` on checked inputs, cells flattened: (B, h, K, topk)."""
    B, h, topk = problem.batch, problem.heads, problem.topk
    K, Nb = problem.n_cells, problem.n_key_blocks
    with torch.no_grad():
        # q_low_cells (B, h, K, r, D) with r = (cell/pool)^2, k_low (B, h, Nb, D)
        q_low_cells, k_low = low_resolution(q, k, problem.pool, problem.cell)
        bias = key_bias(k_low, problem.affinity)  # (B, h, Nb) or None
        chunk = phase1_chunk_cells(B, h, K, problem.low_queries_per_cell, Nb, chunk_elements)
        selection = torch.empty(B, h, K, topk, dtype=torch.long, device=q.device)  # (B, h, K, k)
        for start in range(0, K, chunk):
            stop = min(start + chunk, K)
            mean_p = _mean_probabilities(
                q_low_cells[:, :, start:stop], k_low, problem.affinity, bias
            )  # (B, h, Kc, Nb)
            selection[:, :, start:stop] = topk_lower_index_ties(mean_p, topk)  # (B, h, Kc, k)
            del mean_p
    return selection
