"""What a chapter section shows, as one value: :class:`Study` (a table, a figure, the glue values),
the benchmark setting the studies share, and the result file assembled from their tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gpa_lib.attention.analysis.complexity import AttentionSizes


@dataclass
class Study:
    """What one section of a chapter shows: ``values`` are its glue keys; ``data`` holds what a
    later section reuses (inputs, raw records), not shown."""

    values: dict[str, Any]
    table: Any = None  # a DataFrame (or a line saying why there is none)
    figure: Any = None  # a matplotlib Figure
    data: dict[str, Any] = field(default_factory=dict)


def benchmark_sizes(*, heads: int, head_dim: int, pool: int, cell: int, topk: int, side=128):
    """The chapter's benchmark setting: ``side``² query and key grids, float32."""
    return AttentionSizes(
        q_grid=(side, side), k_grid=(side, side), head_dim=head_dim, heads=heads,
        pool=pool, cell=cell, topk=topk,
    )  # fmt: skip


def square(sizes: AttentionSizes, side: int, **changes) -> AttentionSizes:
    """``sizes`` on ``side x side`` query and key grids, with ``changes`` (pool, cell, topk)."""
    return sizes.with_(q_grid=(side, side), k_grid=(side, side), **changes)


def result_payload(*parts: Study, machine: dict[str, float]) -> dict[str, Any]:
    """The chapter's result file: every table the studies keep in ``data`` (unrounded, as
    records) and the machine's measured rates."""
    payload: dict[str, Any] = {}
    for part in parts:
        for name, table in part.data.items():
            if isinstance(table, pd.DataFrame):
                payload[name] = table.to_dict(orient="records")
    return payload | {"machine": machine}
