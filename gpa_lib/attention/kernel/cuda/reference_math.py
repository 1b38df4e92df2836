"""Phase 2 of GPA written as the fused kernel computes it, in plain torch.

These functions are the portable implementation of the ``gpa_lib::gpa_phase2_fwd`` / ``_bwd``
custom ops (every device without the kernel) and the oracle the kernel tests compare with. They
spell out what the CUDA kernel does, in the same symbols:

    s_ij  = scale * q_i . k_j + b_j                (b: optional per-key bias; euclid affinity)
    lse_i = log sum_j exp(s_ij)                    (j over the topk * pool^2 keys of i's cell)
    out_i = sum_j exp(s_ij - lse_i) v_j
    backward, from the saved lse (no softmax is stored):
    P_ij = exp(s_ij - lse_i),  dP_ij = dout_i . v_j,  delta_i = dout_i . out_i
    dS_ij = P_ij (dP_ij - delta_i)
    dq_i = scale sum_j dS_ij k_j,  dk_j = scale sum_i dS_ij q_i,  dv_j = sum_i P_ij dout_i,
    db_j = sum_i dS_ij

Euclid affinity: -|q - k|^2 / sqrt(D) = (2 q.k - |k|^2 - |q|^2) / sqrt(D); |q|^2 is constant along
the softmax axis, so the kernel runs it as scale = 2/sqrt(D) and b_j = -|k_j|^2/sqrt(D).

The inverse map :func:`selection_csr` (key block -> cells that selected it) is what lets the kernel
compute dk and dv without atomics.
"""

from __future__ import annotations

import torch

from ...grid import block_tokens, from_cells, gather_blocks, to_cells


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _selected_scores(q, k, selection, key_bias, pool, cell, scale, work):
    """Scores of every cell's queries on its selected keys: (B, h, K, c*c, k*p*p) in ``work``."""
    sel = selection.flatten(2, 3)  # (B, h, K, k)
    q_cells = to_cells(q, cell).to(work)  # (B, h, K, c*c, D)
    k_sel = gather_blocks(k, sel, pool).to(work)  # (B, h, K, k*p*p, D)
    scores = scale * (q_cells @ k_sel.transpose(-1, -2))  # (B, h, K, c*c, k*p*p)
    tokens = block_tokens(sel, tuple(k.shape[2:4]), pool)  # (B, h, K, k*p*p)
    if key_bias is not None:
        B, h, K, n_sel = tokens.shape
        bias = key_bias.flatten(2).to(work).gather(2, tokens.flatten(2))  # (B, h, K*k*p*p)
        scores = scores + bias.view(B, h, K, 1, n_sel)  # (B, h, K, c*c, k*p*p)
    return scores, q_cells, k_sel, tokens


def phase2_forward_math(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    selection: torch.Tensor,
    key_bias: torch.Tensor | None,
    pool: int,
    cell: int,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Phase 2 forward with its log-sum-exp.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv), selection: LongTensor
    (B, h, Hq/cell, Wq/cell, topk) of key-block indices, key_bias: (B, h, Hk, Wk) or None; ``pool``,
    ``cell`` in tokens. Returns out (B, h, Hq, Wq, Dv) in v's dtype and lse (B, h, Hq, Wq) in
    float32 (float64 for float64 inputs). Computed in at least float32.
    """
    work = _work_dtype(q.dtype)
    scores, _, _, _ = _selected_scores(q, k, selection, key_bias, pool, cell, scale, work)
    lse = torch.logsumexp(scores, dim=-1)  # (B, h, K, c*c)
    probs = torch.exp(scores - lse.unsqueeze(-1))  # (B, h, K, c*c, k*p*p)
    del scores
    v_sel = gather_blocks(v, selection.flatten(2, 3), pool).to(work)  # (B, h, K, k*p*p, Dv)
    out_cells = probs @ v_sel  # (B, h, K, c*c, Dv)
    q_grid = tuple(q.shape[2:4])
    out = from_cells(out_cells, q_grid, cell).to(v.dtype)  # (B, h, Hq, Wq, Dv)
    lse_grid = from_cells(lse.unsqueeze(-1), q_grid, cell).squeeze(-1)  # (B, h, Hq, Wq)
    return out, lse_grid.to(work)


def phase2_backward_math(
    dout: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    selection: torch.Tensor,
    key_bias: torch.Tensor | None,
    pool: int,
    cell: int,
    scale: float,
):
    """Gradients of phase 2 from the saved lse (the formulas in the module docstring).

    Layouts as in :func:`phase2_forward_math`; dout like out. Returns dq, dk, dv in the dtypes of
    q, k, v and d(key_bias) (B, h, Hk, Wk) in lse's dtype, or None without a key bias. The
    scatter of dk, dv into the key grid is an ``index_add``: deterministic on CPU only.
    """
    work = _work_dtype(q.dtype)
    scores, q_cells, k_sel, tokens = _selected_scores(
        q, k, selection, key_bias, pool, cell, scale, work
    )
    lse_cells = to_cells(lse.unsqueeze(-1).to(work), cell)  # (B, h, K, c*c, 1)
    probs = torch.exp(scores - lse_cells)  # (B, h, K, c*c, k*p*p)
    del scores
    sel = selection.flatten(2, 3)  # (B, h, K, k)
    v_sel = gather_blocks(v, sel, pool).to(work)  # (B, h, K, k*p*p, Dv)
    dout_cells = to_cells(dout, cell).to(work)  # (B, h, K, c*c, Dv)
    delta = (dout_cells * to_cells(out, cell).to(work)).sum(-1, keepdim=True)  # (B, h, K, c*c, 1)
    dv_sel = probs.transpose(-1, -2) @ dout_cells  # (B, h, K, k*p*p, Dv)
    dscores = probs * (dout_cells @ v_sel.transpose(-1, -2) - delta)  # (B, h, K, c*c, k*p*p)
    del probs
    dq_cells = scale * (dscores @ k_sel)  # (B, h, K, c*c, D)
    dk_sel = scale * (dscores.transpose(-1, -2) @ q_cells)  # (B, h, K, k*p*p, D)

    B, h, Hk, Wk, D = k.shape
    index = tokens.flatten(2)  # (B, h, K*k*p*p), key tokens row-major over (Hk, Wk)

    def scatter(values: torch.Tensor, width: int) -> torch.Tensor:
        grid = values.new_zeros(B, h, Hk * Wk, width)  # (B, h, Nk, width)
        grid.scatter_add_(2, index.unsqueeze(-1).expand(-1, -1, -1, width), values.flatten(2, 3))
        return grid.unflatten(2, (Hk, Wk))  # (B, h, Hk, Wk, width)

    dq = from_cells(dq_cells, tuple(q.shape[2:4]), cell).to(q.dtype)  # (B, h, Hq, Wq, D)
    dk = scatter(dk_sel, D).to(k.dtype)  # (B, h, Hk, Wk, D)
    dv = scatter(dv_sel, v.shape[-1]).to(v.dtype)  # (B, h, Hk, Wk, Dv)
    dbias = None
    if key_bias is not None:
        dbias = (
            scatter(dscores.sum(-2).unsqueeze(-1), 1).squeeze(-1).to(lse.dtype)
        )  # (B, h, Hk, Wk)
    return dq, dk, dv, dbias


def selection_csr(selection: torch.Tensor, n_key_blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse map of a selection: for every (head-batch, key block) the cells that selected it.

    selection: (B, h, Kh, Kw, topk) or (BH, K, topk) block indices in [0, n_key_blocks). Returns
    int32 ``offsets`` (BH * n_key_blocks + 1,) and int32 ``cells`` (BH * K * topk,): the cells (indices
    local to their head-batch, row-major over the cell grid) that selected block b of head-batch bh
    are ``cells[offsets[bh * n_key_blocks + b] : offsets[bh * n_key_blocks + b + 1]]``, in increasing
    order. A stable sort and a binary search build it, no atomics, so it is the same on every run.
    """
    topk = selection.shape[-1]
    if selection.dim() == 5:
        selection = selection.flatten(0, 1).flatten(1, 2)  # (BH, K, k)
    BH, K, _ = selection.shape
    device = selection.device
    head_offset = torch.arange(BH, device=device).view(BH, 1, 1) * n_key_blocks  # (BH, 1, 1)
    keys = (selection.long() + head_offset).flatten()  # (BH*K*k,), global block ids
    sorted_keys, order = torch.sort(keys, stable=True)
    cells = torch.div(order, topk, rounding_mode="floor").remainder_(K).to(torch.int32)  # (BH*K*k,)
    bounds = torch.arange(BH * n_key_blocks + 1, device=device)  # (BH*Nb + 1,)
    offsets = torch.searchsorted(sorted_keys, bounds).to(torch.int32)  # (BH*Nb + 1,)
    return offsets, cells
