"""Hierarchical phase 1 (beyond the paper): super-blocks first, then key blocks inside the chosen ones.

Exact phase 1 scores every low-resolution query against all Nb low-resolution keys, so its cost grows
with the square of the tokens (97% of the layer at 1024² on the H200 run). With
:class:`~gpa_lib.attention.problem.Hierarchy` ``(group=S, candidates=m)``:

1. Coarse level. k̿: average pool of the low-resolution key grid over ``S x S`` blocks (Ns = Nb/S²
   super-blocks). Each cell ranks the super-blocks by exact phase 1 at this level (mean over its
   low-resolution queries of softmax_J s(q̄_i, k̿_J)) and keeps the ``m`` best, ties to the lower
   super-block index.
2. Fine level. The ``m S²`` key blocks inside those super-blocks are scored exactly: f_ij = s(q̄_i, k̄_j).
   Each row's softmax normaliser over *all* Nb keys is estimated as
   Z_i = Σ_{j in the candidates} e^{f_ij} + Σ_{J not kept} S² e^{s(q̄_i, k̿_J)}
   (the fine scores where they were computed, each other super-block as S² copies of its pooled key).
   The cell's score of block j is the mean over its rows of e^{f_ij} / Z_i; it keeps the ``topk`` best,
   best first, ties to the lower block index (after the coarse tie rule).

Scores per low-resolution query: Ns + m S² instead of Nb. Exact phase 1 is recovered with ``S = 1``
and ``m >= topk``, or with ``m = Ns`` (every super-block kept, Z_i exact): the tests' oracle. The
estimate of Z_i is exact for keys that are equal inside a super-block; for the dot affinity it is a
lower bound otherwise (Jensen: the mean of e^s is at least e^{mean s}), which weights the rows whose
mass lies outside the candidates a little more than exact phase 1 does.

Like :mod:`~gpa_lib.attention.selection` it runs without autograd, in at least float32, chunked over
cells, and reads nothing back to the host.
"""

from __future__ import annotations

import math

import torch

from .grid import avg_pool_grid
from .problem import Hierarchy, check_inputs
from .scores import key_bias, logit_scale
from .selection import (
    low_resolution,
    resolve_chunk_elements,
    select_key_blocks_flat,
    topk_lower_index_ties,
)


def super_block_members(
    chosen: torch.Tensor, block_grid: tuple[int, int], group: int
) -> torch.Tensor:
    """The key blocks inside chosen super-blocks, in increasing block index.

    chosen: (..., m) super-block indices, row-major over (Hb/group, Wb/group) for the key-block grid
    ``block_grid`` = (Hb, Wb). Returns (..., m * group**2) block indices, row-major over (Hb, Wb),
    sorted ascending (distinct super-blocks hold distinct blocks).
    """
    wb = block_grid[1]
    per_row = wb // group
    rows = torch.div(chosen, per_row, rounding_mode="floor")  # (..., m)
    cols = chosen - rows * per_row  # (..., m)
    offsets = torch.arange(group, device=chosen.device)
    block_rows = rows[..., None, None] * group + offsets[:, None]  # (..., m, S, 1)
    block_cols = cols[..., None, None] * group + offsets[None, :]  # (..., m, 1, S)
    members = (block_rows * wb + block_cols).flatten(-3)  # (..., m*S*S)
    return members.sort(dim=-1).values


def hierarchical_chunk_cells(problem, chunk_elements: int) -> int:
    """Cells per chunk so that one chunk's coarse scores, fine scores and gathered keys fit in
    ``chunk_elements`` entries; at least one."""
    h = problem.hierarchy
    per_cell = (
        problem.batch
        * problem.heads
        * (
            problem.low_queries_per_cell * (problem.n_super_blocks + h.candidate_blocks)
            + h.candidate_blocks * (problem.head_dim + 1)
        )
    )
    return max(1, min(problem.n_cells, chunk_elements // per_cell))


def _fine_scores(q_cells, k_low, bias, members, scale):
    """Scores of each cell's rows against its candidate blocks: (B,h,Kc,r,D), (B,h,Nb,D) ->
    (B, h, Kc, r, M) for members (B, h, Kc, M)."""
    B, h, Kc, M = members.shape
    D = k_low.shape[-1]
    index = members.reshape(B, h, Kc * M, 1).expand(-1, -1, -1, D)  # (B, h, Kc*M, D)
    k_cand = k_low.gather(2, index).view(B, h, Kc, M, D)  # (B, h, Kc, M, D)
    scores = q_cells @ k_cand.transpose(-1, -2)  # (B, h, Kc, r, M)
    scores.mul_(scale)
    if bias is not None:
        scores.add_(bias.gather(2, members.reshape(B, h, Kc * M)).view(B, h, Kc, 1, M))
    return scores


def _outside_log_mass(coarse, chosen, group):
    """log Σ over the super-blocks a cell did not keep of group² e^{coarse score}, per row:
    coarse (B, h, Kc, r, Ns), chosen (B, h, Kc, m) -> (B, h, Kc, r); -inf when all were kept."""
    kept = torch.zeros(coarse.shape[:3] + coarse.shape[-1:], dtype=torch.bool, device=coarse.device)
    kept.scatter_(-1, chosen, True)  # (B, h, Kc, Ns)
    outside = coarse.masked_fill(kept[:, :, :, None, :], float("-inf"))  # (B, h, Kc, r, Ns)
    return outside.logsumexp(-1) + 2.0 * math.log(group)


def select_key_blocks_hierarchical_flat(
    q: torch.Tensor, k: torch.Tensor, problem, chunk_elements: int | None = None
) -> torch.Tensor:
    """Hierarchical phase 1 on checked inputs (``problem.hierarchy`` set), cells flattened:
    (B, h, K, topk) block indices, best first."""
    hierarchy: Hierarchy = problem.hierarchy
    chunk_elements = resolve_chunk_elements(chunk_elements, q.device)
    S, m, topk = hierarchy.group, hierarchy.candidates, problem.topk
    B, h, K = problem.batch, problem.heads, problem.n_cells
    hb, wb = problem.block_grid
    scale = logit_scale(problem.affinity, problem.head_dim)
    with torch.no_grad():
        # q_low_cells (B, h, K, r, D) with r = (cell/pool)^2, k_low (B, h, Nb, D)
        q_low_cells, k_low = low_resolution(q, k, problem.pool, problem.cell)
        D = k_low.shape[-1]
        bias = key_bias(k_low, problem.affinity)  # (B, h, Nb) or None
        k_coarse = avg_pool_grid(k_low.view(B, h, hb, wb, D), S).flatten(2, 3)  # (B, h, Ns, D)
        bias_coarse = key_bias(k_coarse, problem.affinity)  # (B, h, Ns) or None
        chunk = hierarchical_chunk_cells(problem, chunk_elements)
        selection = torch.empty(B, h, K, topk, dtype=torch.long, device=q.device)  # (B, h, K, k)
        for start in range(0, K, chunk):
            q_cells = q_low_cells[:, :, start : start + chunk]  # (B, h, Kc, r, D)
            Kc, r = q_cells.shape[2], q_cells.shape[3]
            coarse = q_cells.flatten(2, 3) @ k_coarse.transpose(-1, -2)  # (B, h, Kc*r, Ns)
            coarse = coarse.view(B, h, Kc, r, -1).mul_(scale)  # (B, h, Kc, r, Ns)
            if bias_coarse is not None:
                coarse.add_(bias_coarse[:, :, None, None, :])
            chosen = topk_lower_index_ties(_cell_means(coarse), m)  # (B, h, Kc, m)
            members = super_block_members(chosen, (hb, wb), S)  # (B, h, Kc, M), ascending
            fine = _fine_scores(q_cells, k_low, bias, members, scale)  # (B, h, Kc, r, M)
            log_z = torch.logaddexp(
                fine.logsumexp(-1), _outside_log_mass(coarse, chosen, S)
            )  # (B, h, Kc, r)
            del coarse
            mean_p = fine.sub_(log_z[..., None]).exp_().mean(dim=-2)  # (B, h, Kc, M)
            picks = topk_lower_index_ties(mean_p, topk)  # (B, h, Kc, k), positions in members
            selection[:, :, start : start + chunk] = members.gather(-1, picks)
    return selection


def _cell_means(scores: torch.Tensor) -> torch.Tensor:
    """Mean over a cell's rows of the softmax over the last axis: (B, h, Kc, r, N) -> (B, h, Kc, N)."""
    return torch.softmax(scores, dim=-1).mean(dim=-2)


def select_key_blocks_hierarchical(
    q: torch.Tensor,
    k: torch.Tensor,
    *,
    pool: int,
    cell: int,
    topk: int,
    hierarchy: Hierarchy,
    affinity: str = "dot",
    chunk_elements: int | None = None,
) -> torch.Tensor:
    """Hierarchical phase 1: the ``topk`` key blocks of every query cell, found by super-blocks first.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D); ``pool``, ``cell`` in tokens, ``topk`` in blocks;
    ``hierarchy`` a :class:`~gpa_lib.attention.Hierarchy` that divides the key-block grid. Returns a
    LongTensor (B, h, Hq/cell, Wq/cell, topk) of block indices like
    :func:`~gpa_lib.attention.select_key_blocks`, best first. ``chunk_elements`` bounds one chunk's
    entries (``None``: sized to the device).
    """
    if hierarchy is None:
        raise TypeError("hierarchy must be a gpa_lib.attention.Hierarchy, got None")
    problem = check_inputs(
        q, k, k, pool=pool, cell=cell, topk=topk, affinity=affinity, hierarchy=hierarchy
    )
    flat = select_key_blocks_hierarchical_flat(q, k, problem, chunk_elements)
    return flat.unflatten(2, problem.cell_grid)  # (B, h, Hq/c, Wq/c, k)


def phase1_selection(q: torch.Tensor, k: torch.Tensor, problem, exact=select_key_blocks_flat):
    """Phase 1 of a backend: the hierarchical selection when ``problem.hierarchy`` is set, else
    ``exact(q, k, problem)`` (the backend's own exact phase 1). Returns (B, h, K, topk)."""
    if problem.hierarchy is not None:
        return select_key_blocks_hierarchical_flat(q, k, problem)
    return exact(q, k, problem)
