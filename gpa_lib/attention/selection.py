"""Phase 1 of GPA: choose, for every query cell, the ``topk`` key blocks it will attend to.

1. q̄, k̄: average pools of q and k over ``pool x pool`` blocks (the low-resolution grids).
2. P = softmax over all low-resolution keys j of s(q̄_i, k̄_j), with s = q·k/√D (``"dot"``) or
   s = −‖q−k‖²/√D (``"euclid"``).
3. Each key block j gets the mean of P[i, j] over the low-resolution queries i inside the cell; the
   cell keeps the ``topk`` best, ties going to the lower block index.

The work is done cell chunk by cell chunk, so that no tensor of all low-resolution queries by all
low-resolution keys exists: a chunk's score matrix has at most ``chunk_elements`` entries, by default
sized to the device (:func:`phase1_chunk_elements`). Phase 1 runs without autograd (no gradient flows
through a selection) and in at least float32, and never waits on the device: no value is read back to
the host, so on a GPU the chunks queue up behind each other.
"""

from __future__ import annotations

import torch

from .grid import avg_pool_grid, to_cells
from .problem import check_inputs
from .scores import key_bias, logit_scale

#: Upper bound on the entries of one phase-1 score chunk (B * h * cells * (cell/pool)^2 * blocks) on
#: the CPU and on devices other than CUDA; 2**22 float32 entries are 16 MiB, which stay in cache.
PHASE1_CHUNK_ELEMENTS = 2**22
#: On CUDA a chunk takes this fraction of the free memory (the driver's free bytes plus what torch's
#: caching allocator holds unused) ...
PHASE1_CUDA_FREE_FRACTION = 0.25
#: ... at this many bytes per score entry: 4 for the float32 entry itself, its share of the cell
#: means and of the float32 tie key of :func:`topk_lower_index_ties` (4/r each, r low-res queries a
#: cell), matmul and topk workspace, and a margin for what else the step allocates meanwhile ...
PHASE1_BYTES_PER_ELEMENT = 16
#: ... between these bounds: 2**20 entries (16 MiB with the above) when memory is short, and 2**28
#: (1 GiB of float32 scores) at most; past a few hundred MiB larger chunks stop paying on an H200.
PHASE1_CUDA_CHUNK_BOUNDS = (2**20, 2**28)


def phase1_chunk_elements(device_type: str, free_bytes: int | None = None) -> int:
    """The automatic phase-1 chunk (score entries) for a device of type ``device_type``.

    ``"cuda"``: :data:`PHASE1_CUDA_FREE_FRACTION` of ``free_bytes`` (bytes the device can still
    allocate) at :data:`PHASE1_BYTES_PER_ELEMENT` bytes an entry, clipped to
    :data:`PHASE1_CUDA_CHUNK_BOUNDS`. Anything else: :data:`PHASE1_CHUNK_ELEMENTS`. A pure function:
    :func:`device_phase1_chunk_elements` reads ``free_bytes`` from the device.
    """
    if device_type != "cuda":
        return PHASE1_CHUNK_ELEMENTS
    if isinstance(free_bytes, bool) or not isinstance(free_bytes, int) or free_bytes < 0:
        raise ValueError(
            f"free_bytes must be a non-negative int for device_type='cuda', got free_bytes={free_bytes!r}"
        )
    low, high = PHASE1_CUDA_CHUNK_BOUNDS
    fitting = int(free_bytes * PHASE1_CUDA_FREE_FRACTION) // PHASE1_BYTES_PER_ELEMENT
    return max(low, min(high, fitting))


def device_phase1_chunk_elements(device: torch.device) -> int:
    """:func:`phase1_chunk_elements` for ``device``, reading its free memory on CUDA (no sync)."""
    if device.type != "cuda":
        return phase1_chunk_elements(device.type)
    free, _ = torch.cuda.mem_get_info(device)
    cached_unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return phase1_chunk_elements("cuda", free + cached_unused)


def resolve_chunk_elements(chunk_elements: int | None, device: torch.device) -> int:
    """A phase-1 chunk given by a caller, checked, or ``None``: :func:`device_phase1_chunk_elements`."""
    if chunk_elements is None:
        return device_phase1_chunk_elements(device)
    if isinstance(chunk_elements, bool) or not isinstance(chunk_elements, int):
        raise TypeError(
            f"chunk_elements must be an int or None, got chunk_elements={chunk_elements!r}"
        )
    if chunk_elements < 1:
        raise ValueError(f"chunk_elements={chunk_elements} must be >= 1 (score entries per chunk)")
    return chunk_elements


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

    scores: (..., n) -> LongTensor (..., topk): the first ``topk`` of a stable descending sort.
    ``torch.topk`` leaves the order of equal values unspecified, and which of the entries equal to
    the k-th largest value it keeps. Both are put right without reading anything back to the host
    (no per-chunk sync on a GPU), at the cost of a second topk:

    1. The set. Every entry above the k-th largest value v is kept by any topk. Of the entries equal
       to v, the lowest indices are kept: a second topk on the key ``n - j`` where ``scores_j == v``
       and 0 elsewhere lists them in increasing index.
    2. The order. The kept (value, index) pairs are sorted by index, then stably by value, descending.
    """
    values, indices = torch.topk(scores, topk, dim=-1, sorted=True)  # (..., k), values descending
    kth = values[..., -1:]  # (..., 1): the k-th largest value, whatever torch.topk did with ties
    n = scores.shape[-1]
    key_dtype = torch.float32 if n < 2**24 else torch.float64  # n - j exact in the key
    lower_first = torch.arange(n, 0, -1, dtype=key_dtype, device=scores.device)  # (n,)
    # The comparison written straight into the float key: a bool intermediate costs 6x more on CPU.
    tie_key = torch.eq(
        scores, kth, out=torch.empty(scores.shape, dtype=key_dtype, device=scores.device)
    )
    tie_key.mul_(lower_first)  # (..., n): n - j where scores_j == v, else 0
    lowest_ties = torch.topk(tie_key, topk, dim=-1, sorted=True).indices  # (..., k)
    del tie_key
    # The entries equal to v are a suffix of the sorted values (NaN, which equals nothing, is not).
    n_above = topk - (values == kth).sum(-1, keepdim=True)  # (..., 1)
    slot = torch.arange(topk, device=scores.device) - n_above  # (..., k), place among the v's
    indices = torch.where(slot < 0, indices, lowest_ties.gather(-1, slot.clamp_(min=0)))
    by_index, perm = indices.sort(dim=-1)  # (..., k)
    order = values.gather(-1, perm).sort(dim=-1, descending=True, stable=True).indices
    return by_index.gather(-1, order)  # (..., k)


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
    chunk_elements: int | None = None,
) -> torch.Tensor:
    """Phase 1: the ``topk`` key blocks of every query cell.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D); ``pool``, ``cell`` in tokens, ``topk`` in blocks.
    Returns a LongTensor (B, h, Hq/cell, Wq/cell, topk) of block indices, row-major over the
    (Hk/pool, Wk/pool) grid, best block first (ties to the lower index). ``chunk_elements`` bounds the
    entries of the score chunk; ``None`` sizes it to q's device (:func:`phase1_chunk_elements`:
    :data:`PHASE1_CHUNK_ELEMENTS` on the CPU, a share of the free memory on CUDA).
    """
    problem = check_inputs(q, k, k, pool=pool, cell=cell, topk=topk, affinity=affinity)
    return select_key_blocks_flat(q, k, problem, chunk_elements).unflatten(2, problem.cell_grid)


def select_key_blocks_flat(
    q: torch.Tensor, k: torch.Tensor, problem, chunk_elements: int | None = None
) -> torch.Tensor:
    """:func:`select_key_blocks` on checked inputs, cells flattened: (B, h, K, topk)."""
    chunk_elements = resolve_chunk_elements(chunk_elements, q.device)
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
