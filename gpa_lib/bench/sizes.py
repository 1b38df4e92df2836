"""The cost model's sizes for a benchmark config: one builder for every benchmark."""

from __future__ import annotations

from typing import Any

from gpa_lib.attention.analysis.complexity import AttentionSizes


def square_sizes(cfg: Any, side: int, *, dtype_bytes: int, **changes: Any) -> AttentionSizes:
    """:class:`AttentionSizes` of a ``side x side`` query grid and key grid for a benchmark config.

    ``cfg`` carries ``batch``, ``heads``, ``head_dim``, ``pool``, ``cell`` and ``topk``; ``changes``
    override any field (``affinity=...``).
    """
    fields = dict(
        q_grid=(side, side),
        k_grid=(side, side),
        head_dim=cfg.head_dim,
        heads=cfg.heads,
        batch=cfg.batch,
        pool=cfg.pool,
        cell=cfg.cell,
        topk=cfg.topk,
        dtype_bytes=dtype_bytes,
    )
    return AttentionSizes(**{**fields, **changes})
