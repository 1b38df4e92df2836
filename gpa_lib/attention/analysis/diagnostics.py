"""How close GPA is to dense attention: softmax mass captured and output error.

- :func:`selected_mass`: per query, the share of its *full* softmax mass (over all Nk keys) that falls
  on the keys GPA lets it see. The authors' ``err_stat`` reports its mean (over one random query
  per cell); here every query gets its value.
- :func:`relative_error`: per query ‖out − ref‖ / ‖ref‖, and the same over the whole tensor.
- :func:`gpa_quality`: both, for one setting of pool, cell and topk, against :func:`dense_attention`.
- :func:`mass_ratio_interval`: kept mass over the share of keys seen, minus 1, with a percentile
  bootstrap interval over (head, query cell) units: the interval of chapter 1's inductive-bias verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gpa_lib.stats import Interval

from ..functional import dense_attention, gpa_attention
from ..grid import block_tokens, from_cells, to_cells
from ..problem import check_inputs
from ..scores import key_bias, logit_scale
from ..selection import select_key_blocks

#: How :func:`mass_ratio_interval` made its interval (``Interval.method``).
CELLS_BOOTSTRAP = "percentile bootstrap over (batch, head, query cell) units"

#: Upper bound on the entries of one score chunk of :func:`selected_mass` (B*h*cells*cell^2*Nk).
MASS_CHUNK_ELEMENTS = 2**22


def selected_mass(
    q: torch.Tensor,
    k: torch.Tensor,
    selection: torch.Tensor,
    *,
    pool: int,
    cell: int,
    affinity: str = "dot",
    chunk_elements: int = MASS_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Share of each query's full softmax mass on the keys of its cell's selected blocks.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), selection: (B, h, Hq/cell, Wq/cell, topk) as returned
    by ``gpa_attention(..., return_selection=True)``. Returns (B, h, Hq, Wq) in [0, 1]; 1 means GPA
    dropped no attention mass for that query. Chunked over cells (``chunk_elements`` score entries).
    """
    topk = selection.shape[-1]
    problem = check_inputs(q, k, k, pool=pool, cell=cell, topk=topk, affinity=affinity)
    expected = (problem.batch, problem.heads, *problem.cell_grid, topk)
    if tuple(selection.shape) != expected:
        raise ValueError(
            f"selection has shape {tuple(selection.shape)}, expected {expected} for these q, k, cell"
        )
    B, h, K = problem.batch, problem.heads, problem.n_cells
    with torch.no_grad():
        q_cells = to_cells(q, cell) * logit_scale(affinity, problem.head_dim)  # (B, h, K, c*c, D)
        k_tok = k.flatten(2, 3)  # (B, h, Nk, D)
        bias = key_bias(k_tok, affinity)  # (B, h, Nk) or None
        tokens = block_tokens(selection.flatten(2, 3), problem.k_grid, pool)  # (B, h, K, k*p*p)
        n_cell = cell * cell
        mass = torch.empty(B, h, K, n_cell, dtype=q_cells.dtype, device=q.device)  # (B, h, K, c*c)
        chunk = max(1, chunk_elements // (B * h * n_cell * problem.n_keys))
        for start in range(0, K, chunk):
            stop = min(start + chunk, K)
            q_chunk = q_cells[:, :, start:stop].flatten(2, 3)  # (B, h, Kc*c*c, D)
            scores = q_chunk @ k_tok.transpose(-1, -2)  # (B, h, Kc*c*c, Nk)
            if bias is not None:
                scores += bias[:, :, None, :]
            scores = scores.unflatten(2, (stop - start, n_cell))  # (B, h, Kc, c*c, Nk)
            idx = tokens[:, :, start:stop, None, :].expand(
                -1, -1, -1, n_cell, -1
            )  # (B,h,Kc,c*c,k*p*p)
            kept = scores.gather(-1, idx)  # (B, h, Kc, c*c, k*p*p)
            mass[:, :, start:stop] = (kept.logsumexp(-1) - scores.logsumexp(-1)).exp()
    return from_cells(mass[..., None], problem.q_grid, cell)[..., 0]  # (B, h, Hq, Wq)


def err_stat(
    q: torch.Tensor, k: torch.Tensor, *, pool: int, cell: int, topk: int, affinity: str = "dot"
) -> float:
    """The authors' statistic: mean over queries of :func:`selected_mass` for GPA's own selection."""
    selection = select_key_blocks(q, k, pool=pool, cell=cell, topk=topk, affinity=affinity)
    return float(selected_mass(q, k, selection, pool=pool, cell=cell, affinity=affinity).mean())


def relative_error(out: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Per query ‖out − ref‖ / ‖ref‖ over the channel axis (B, h, H, W), and the Frobenius ratio."""
    if out.shape != reference.shape:
        raise ValueError(
            f"out.shape={tuple(out.shape)} differs from reference.shape={tuple(reference.shape)}"
        )
    diff = (out - reference).double()
    ref = reference.double()
    per_query = diff.norm(dim=-1) / ref.norm(dim=-1).clamp_min(torch.finfo(torch.float64).tiny)
    return per_query, float(diff.norm() / ref.norm().clamp_min(torch.finfo(torch.float64).tiny))


@dataclass(frozen=True)
class GPAQuality:
    """How well one GPA setting approximates dense attention on given q, k, v."""

    mass_mean: (
        float  # mean over queries of the softmax mass on the selected keys (1 = nothing lost)
    )
    mass_p05: float  # 5th percentile over queries of that mass
    error_mean: float  # mean over queries of the relative output error against dense attention
    error_total: float  # ‖out − dense‖_F / ‖dense‖_F over the whole output
    keys_fraction: float  # share of the keys every query sees: topk * pool^2 / Nk


def gpa_quality(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    pool: int,
    cell: int,
    topk: int,
    affinity: str = "dot",
    backend: str | None = "reference",
    hierarchy=None,
) -> GPAQuality:
    """Compare GPA with ``dense_attention`` on q (B,h,Hq,Wq,D), k (B,h,Hk,Wk,D), v (B,h,Hk,Wk,Dv);
    ``hierarchy`` (a :class:`~gpa_lib.attention.Hierarchy`) selects with the hierarchical phase 1."""
    with torch.no_grad():
        out, selection = gpa_attention(
            q,
            k,
            v,
            pool=pool,
            cell=cell,
            topk=topk,
            affinity=affinity,
            backend=backend,
            return_selection=True,
            hierarchy=hierarchy,
        )
        dense = dense_attention(q, k, v, affinity=affinity)
        mass = selected_mass(q, k, selection, pool=pool, cell=cell, affinity=affinity).double()
    per_query, total = relative_error(out, dense)
    return GPAQuality(
        mass_mean=float(mass.mean()),
        mass_p05=float(mass.flatten().quantile(0.05)) if mass.numel() <= 2**24 else float("nan"),
        error_mean=float(per_query.mean()),
        error_total=total,
        keys_fraction=topk * pool**2 / (k.shape[2] * k.shape[3]),
    )


def mass_ratio_interval(
    q: torch.Tensor,
    k: torch.Tensor,
    *,
    pool: int,
    cell: int,
    topk: int,
    affinity: str = "dot",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Mean kept softmax mass over the share of keys seen, minus 1 (above 0: the kept blocks carry
    more mass than their share of keys), with a percentile bootstrap interval.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D); ``pool`` and ``cell`` in tokens, ``topk`` in key
    blocks. The unit resampled is one query cell of one head of one batch item: its mean mass over
    its queries (the queries of a cell share one selection, so they are not independent). The
    estimate equals ``gpa_quality(...).mass_mean / keys_fraction - 1``. The interval resamples
    cells and heads of the given features only, not new draws of the features.
    """
    selection = select_key_blocks(q, k, pool=pool, cell=cell, topk=topk, affinity=affinity)
    mass = selected_mass(q, k, selection, pool=pool, cell=cell, affinity=affinity)  # (B, h, Hq, Wq)
    per_cell = to_cells(mass[..., None].double(), cell)[..., 0].mean(-1)  # (B, h, K)
    keys_fraction = topk * pool**2 / (k.shape[2] * k.shape[3])
    ratio = (per_cell / keys_fraction - 1).flatten().cpu().numpy()  # (B*h*K,)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(ratio), (n_boot, len(ratio)))  # (n_boot, B*h*K)
    return Interval.from_replicates(
        float(ratio.mean()), ratio[draws].mean(1), level=level, method=CELLS_BOOTSTRAP, n=len(ratio)
    )
