"""GPA's three knobs on one grid: modelled memory and time, kept attention mass and output error.

:func:`tradeoff_grid` evaluates every valid combination of ``topk``, ``pool`` and ``cell`` on given
features. Memory and time come from the cost model (:mod:`.complexity`) at a machine's measured
rates; kept mass and output error are :func:`~.diagnostics.gpa_quality`'s ``mass_mean`` and
``error_total``, computed with the work shared across settings so that a grid of a hundred settings
costs about as much as a few separate calls:

- the exact softmax over all keys and the dense output are computed once per feature set;
- the exact probabilities summed over each key block are computed once per ``pool``;
- the phase-1 block scores of every cell (:func:`~gpa_lib.attention.selection.cell_block_scores`)
  once per (``pool``, ``cell``); each ``topk`` then takes its blocks from them with the selection's
  own tie rule, and phase 2 is the reference backend's
  (:func:`~gpa_lib.attention.backends.reference.attend_selected`).

The tests hold it to ``gpa_quality`` setting by setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..backends.reference import attend_selected
from ..functional import dense_attention
from ..grid import to_cells
from ..problem import check_inputs
from ..scores import key_bias, logit_scale
from ..selection import cell_block_scores, topk_lower_index_ties
from .complexity import AttentionSizes, cpu_kernel_cost, dense_cost, gpa_cost
from .diagnostics import relative_error

MiB = 2**20

#: The modelled methods of :func:`tradeoff_grid`: column prefix -> what it is.
COST_METHODS = {
    "reference": "GPA reference",  # the reference backend
    "cpu": "GPA cpu",  # the fused cpu backend
    "materialised": "exact, scores",  # exact attention through the score matrix
    "sdpa": "exact, SDPA",  # exact attention, PyTorch's fused kernel
}


def valid_setting(
    k_grid: tuple[int, int], q_grid: tuple[int, int], pool: int, cell: int, topk: int
):
    """None if (pool, cell, topk) is a GPA setting for these grids (in tokens), else why not."""
    if cell % pool:
        return f"cell={cell} is not a multiple of pool={pool}"
    if any(side % cell for side in q_grid):
        return f"cell={cell} does not divide the query grid {q_grid}"
    if any(side % pool for side in k_grid):
        return f"pool={pool} does not divide the key grid {k_grid}"
    blocks = (k_grid[0] // pool) * (k_grid[1] // pool)
    if topk > blocks:
        return f"topk={topk} is more than the {blocks} key blocks of pool={pool}"
    return None


def _exact_probabilities(q, k, affinity: str) -> torch.Tensor:
    """softmax over all keys of s(q, k): (B, h, Hq, Wq, D), (B, h, Hk, Wk, D) -> (B, h, Nq, Nk)."""
    q_tok, k_tok = q.flatten(2, 3), k.flatten(2, 3)  # (B, h, Nq, D), (B, h, Nk, D)
    scores = (q_tok * logit_scale(affinity, q.shape[-1])) @ k_tok.transpose(-1, -2)  # (B,h,Nq,Nk)
    bias = key_bias(k_tok, affinity)  # (B, h, Nk) or None
    if bias is not None:
        scores += bias[:, :, None, :]
    return torch.softmax(scores, dim=-1)


def _block_sums(p: torch.Tensor, q_grid, k_grid, pool: int) -> torch.Tensor:
    """(B, h, Nq, Nk) probabilities summed over pool x pool key blocks -> (B, h, Hq, Wq, Nb)."""
    B, h = p.shape[:2]
    (Hq, Wq), (Hk, Wk) = q_grid, k_grid
    blocks = p.view(B, h, Hq * Wq, Hk // pool, pool, Wk // pool, pool)  # (B, h, Nq, ., p, ., p)
    return blocks.sum(dim=(4, 6)).view(B, h, Hq, Wq, (Hk // pool) * (Wk // pool))  # (.., Nb)


def quality_rows(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    topk_values: Sequence[int],
    pool_values: Sequence[int],
    cell_values: Sequence[int],
    affinity: str = "dot",
) -> list[dict]:
    """``mass_mean`` and ``error_total`` of :func:`~.diagnostics.gpa_quality` for every valid setting.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv); knob values in tokens
    (``pool``, ``cell``) and blocks (``topk``). Holds the (B, h, Nq, Nk) exact probabilities: for
    the small grids of a study. Returns one dict per valid setting, with ``keys_fraction``.
    """
    q_grid, k_grid = tuple(q.shape[2:4]), tuple(k.shape[2:4])
    rows = []
    with torch.no_grad():
        dense = dense_attention(q, k, v, affinity=affinity)  # (B, h, Hq, Wq, Dv)
        probs = _exact_probabilities(q, k, affinity)  # (B, h, Nq, Nk)
        for pool in pool_values:
            if any(side % pool for side in k_grid):
                continue
            per_block = _block_sums(probs, q_grid, k_grid, pool)  # (B, h, Hq, Wq, Nb)
            for cell in cell_values:
                if valid_setting(k_grid, q_grid, pool, cell, 1):
                    continue
                scores = cell_block_scores(q, k, pool=pool, cell=cell, affinity=affinity)
                scores = scores.flatten(2, 3)  # (B, h, K, Nb)
                per_block_cells = to_cells(per_block, cell)  # (B, h, K, c*c, Nb)
                for topk in topk_values:
                    if valid_setting(k_grid, q_grid, pool, cell, topk):
                        continue
                    problem = check_inputs(
                        q, k, v, pool=pool, cell=cell, topk=topk, affinity=affinity
                    )
                    selection = topk_lower_index_ties(scores, topk)  # (B, h, K, k)
                    idx = selection[:, :, :, None, :].expand(-1, -1, -1, cell * cell, -1)
                    mass = per_block_cells.gather(-1, idx).sum(-1)  # (B, h, K, c*c)
                    out = attend_selected(q, k, v, selection, problem)  # (B, h, Hq, Wq, Dv)
                    _, error_total = relative_error(out, dense)
                    rows.append(
                        {
                            "topk": topk,
                            "pool": pool,
                            "cell": cell,
                            "mass_mean": float(mass.double().mean()),
                            "error_total": error_total,
                            "keys_fraction": topk * pool**2 / (k_grid[0] * k_grid[1]),
                        }
                    )
    return rows


def cost_columns(sizes: AttentionSizes, flops_per_s: float, bytes_per_s: float) -> dict:
    """Modelled peak extra memory (MiB) and time (ms) of each of :data:`COST_METHODS`."""
    costs = {
        "reference": gpa_cost(sizes),
        "cpu": cpu_kernel_cost(sizes),
        "materialised": dense_cost(sizes),
        "sdpa": dense_cost(sizes, materialised=False),
    }
    columns = {}
    for name, cost in costs.items():
        columns[f"{name}_mib"] = cost.peak_bytes / MiB
        columns[f"{name}_ms"] = 1e3 * cost.time_s(flops_per_s, bytes_per_s)
    return columns


def tradeoff_grid(
    features: Mapping[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    *,
    topk_values: Sequence[int],
    pool_values: Sequence[int],
    cell_values: Sequence[int],
    affinity: str,
    flops_per_s: float,
    bytes_per_s: float,
):
    """One row per valid (topk, pool, cell): cost columns, and mass and error per feature set.

    ``features`` maps a name (``"image-like"``) to (q, k, v), all of the same shapes
    (B, h, Hq, Wq, D), (B, h, Hk, Wk, D), (B, h, Hk, Wk, Dv). Columns: ``topk``, ``pool``, ``cell``,
    ``keys_fraction``, ``<method>_mib`` and ``<method>_ms`` for each of :data:`COST_METHODS` (the cost
    model of those shapes, time at ``flops_per_s`` FLOP/s and ``bytes_per_s`` bytes/s, as
    :meth:`~.complexity.Cost.time_s` adds them), and ``mass_mean/<name>``, ``error_total/<name>``.
    """
    import pandas as pd

    if not features:
        raise ValueError("features is empty: give at least one name -> (q, k, v)")
    shapes = {name: tuple(tuple(t.shape) for t in qkv) for name, qkv in features.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"features must share their shapes, got {shapes}")
    knobs = ["topk", "pool", "cell"]
    table = None
    for name, (q, k, v) in features.items():
        part = pd.DataFrame(
            quality_rows(
                q,
                k,
                v,
                topk_values=topk_values,
                pool_values=pool_values,
                cell_values=cell_values,
                affinity=affinity,
            )
        ).rename(columns={"mass_mean": f"mass_mean/{name}", "error_total": f"error_total/{name}"})
        table = part if table is None else table.merge(part.drop(columns="keys_fraction"), on=knobs)
    q, k, v = next(iter(features.values()))
    costs = [
        cost_columns(
            AttentionSizes.of(q, k, v, pool=r.pool, cell=r.cell, topk=r.topk, affinity=affinity),
            flops_per_s,
            bytes_per_s,
        )
        for r in table.itertuples()
    ]
    return pd.concat([table, pd.DataFrame(costs)], axis=1)
