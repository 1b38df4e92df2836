"""The checked description of one GPA call: sizes, hyper-parameters, dtype and device.

:func:`check_inputs` validates every argument of :func:`~gpa_lib.attention.gpa_attention` before any
work is done and returns a :class:`GPAProblem`, the value-free summary that backends read in
``can_run``. Every error names the argument and the values that broke the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

AFFINITIES = ("dot", "euclid")


class GridSizes:
    """Sizes derived from the fields ``batch``, ``heads``, ``q_grid``, ``k_grid``, ``pool``, ``cell``
    and ``topk``: one definition for :class:`GPAProblem` and the cost model's ``AttentionSizes``."""

    batch: int
    heads: int
    q_grid: tuple[int, int]
    k_grid: tuple[int, int]
    pool: int
    cell: int
    topk: int

    @property
    def bh(self) -> int:
        """Independent attention problems: B * h."""
        return self.batch * self.heads

    @property
    def n_queries(self) -> int:
        """Full-resolution query tokens per (batch, head): Hq * Wq."""
        return self.q_grid[0] * self.q_grid[1]

    @property
    def n_keys(self) -> int:
        """Full-resolution key tokens per (batch, head): Hk * Wk."""
        return self.k_grid[0] * self.k_grid[1]

    @property
    def cell_grid(self) -> tuple[int, int]:
        """Cells along each query axis: (Hq / cell, Wq / cell)."""
        return self.q_grid[0] // self.cell, self.q_grid[1] // self.cell

    @property
    def n_cells(self) -> int:
        """Query cells per (batch, head), K in the shape comments."""
        return self.cell_grid[0] * self.cell_grid[1]

    @property
    def block_grid(self) -> tuple[int, int]:
        """Key blocks along each key axis, the low-resolution key grid: (Hk / pool, Wk / pool)."""
        return self.k_grid[0] // self.pool, self.k_grid[1] // self.pool

    @property
    def n_key_blocks(self) -> int:
        """Low-resolution keys (pool x pool key blocks) per (batch, head), Nb."""
        return self.block_grid[0] * self.block_grid[1]

    @property
    def n_low_queries(self) -> int:
        """Low-resolution queries per (batch, head): Nq / pool^2."""
        return self.n_queries // self.pool**2

    @property
    def low_queries_per_cell(self) -> int:
        """Low-resolution queries inside one cell: (cell / pool)^2."""
        return (self.cell // self.pool) ** 2

    @property
    def keys_per_query(self) -> int:
        """Full-resolution keys every query attends to: topk * pool^2."""
        return self.topk * self.pool**2

    @property
    def covers_all_keys(self) -> bool:
        """True when topk keeps every key block, so that GPA equals dense attention."""
        return self.topk == self.n_key_blocks


@dataclass(frozen=True)
class Hierarchy:
    """Settings of the hierarchical phase 1 (:mod:`~gpa_lib.attention.hierarchical`), beyond the paper.

    Each cell first ranks *super-blocks* of ``group x group`` key blocks (average pools of the
    low-resolution keys) by exact phase 1 at that coarser level and keeps ``candidates`` of them; it
    then ranks only the ``candidates * group**2`` key blocks inside those, and keeps ``topk``. Phase 1
    computes ``Nb / group**2 + candidates * group**2`` scores per low-resolution query instead of Nb.
    ``group=1`` (with ``candidates >= topk``) or ``candidates`` equal to every super-block reproduce
    exact phase 1.
    """

    group: int = 4  # key blocks per super-block side
    candidates: int = 8  # super-blocks kept per cell at the coarse level

    def __post_init__(self) -> None:
        for name in ("group", "candidates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(
                    f"Hierarchy.{name} must be an int, got {name}={value!r} ({type(value).__name__})"
                )
            if value < 1:
                raise ValueError(f"Hierarchy.{name}={value} must be >= 1")

    @property
    def candidate_blocks(self) -> int:
        """Key blocks each cell scores at the fine level: candidates * group**2."""
        return self.candidates * self.group**2


@dataclass(frozen=True)
class GPAProblem(GridSizes):
    """Sizes and settings of a GPA call, without tensor values (what a backend needs to decide)."""

    batch: int  # B, images per batch
    heads: int  # h, attention heads
    q_grid: tuple[int, int]  # (Hq, Wq), query grid in tokens (pixels of the feature map)
    k_grid: tuple[int, int]  # (Hk, Wk), key/value grid in tokens
    head_dim: int  # D, channels per head of queries and keys
    value_dim: int  # Dv, channels per head of values and of the output
    pool: int  # side of a pooling block, in tokens; key blocks are pool x pool tokens
    cell: int  # side of a query cell, in tokens; a multiple of pool
    topk: int  # key blocks kept per query cell
    affinity: str  # "dot" or "euclid"
    dtype: torch.dtype  # dtype of q, k and v
    device: torch.device  # device of q, k and v
    needs_grad: bool  # autograd will differentiate the output
    hierarchy: Hierarchy | None = None  # phase 1 by super-blocks first (None: exact phase 1)

    @property
    def super_block_grid(self) -> tuple[int, int]:
        """Super-blocks along each key axis under :attr:`hierarchy`: block grid / group."""
        group = self.hierarchy.group if self.hierarchy is not None else 1
        return self.block_grid[0] // group, self.block_grid[1] // group

    @property
    def n_super_blocks(self) -> int:
        """Super-blocks per (batch, head) under :attr:`hierarchy` (Nb without one)."""
        return self.super_block_grid[0] * self.super_block_grid[1]


def _check_tensor(name: str, x: object, layout: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of layout {layout}, got {type(x).__name__}")
    if x.dim() != 5:
        raise ValueError(
            f"{name} must have 5 dimensions {layout}, got {x.dim()} dimensions with shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {name}.dtype={x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    return x


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {name}={value!r} ({type(value).__name__})")
    return value


def check_affinity(affinity: object) -> str:
    if affinity not in AFFINITIES:
        raise ValueError(f"affinity={affinity!r} is unknown; choose one of {AFFINITIES}")
    return affinity  # type: ignore[return-value]


def check_qkv(q: object, k: object, v: object) -> None:
    """Ranks, dtypes, devices and matching sizes of q (B,h,Hq,Wq,D), k (B,h,Hk,Wk,D), v (B,h,Hk,Wk,Dv)."""
    _check_tensor("q", q, "(B, heads, Hq, Wq, D)")
    _check_tensor("k", k, "(B, heads, Hk, Wk, D)")
    _check_tensor("v", v, "(B, heads, Hk, Wk, Dv)")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(
            f"q, k and v must share a dtype, got q.dtype={q.dtype}, k.dtype={k.dtype}, v.dtype={v.dtype}"
        )
    if not (q.device == k.device == v.device):
        raise ValueError(
            f"q, k and v must be on one device, got q.device={q.device}, k.device={k.device}, v.device={v.device}"
        )
    for axis, label in ((0, "batch"), (1, "heads")):
        if not (q.shape[axis] == k.shape[axis] == v.shape[axis]):
            raise ValueError(
                f"{label} sizes differ: q.shape[{axis}]={q.shape[axis]}, k.shape[{axis}]={k.shape[axis]}, "
                f"v.shape[{axis}]={v.shape[axis]}"
            )
    if q.shape[4] != k.shape[4]:
        raise ValueError(
            f"head dims differ: q.shape[4]={q.shape[4]} (D of q) but k.shape[4]={k.shape[4]} (D of k)"
        )
    if k.shape[2:4] != v.shape[2:4]:
        raise ValueError(
            f"k and v grids differ: k grid (Hk, Wk)={tuple(k.shape[2:4])}, v grid={tuple(v.shape[2:4])}"
        )


def check_inputs(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    pool: int,
    cell: int,
    topk: int,
    affinity: str,
    hierarchy: Hierarchy | None = None,
) -> GPAProblem:
    """Validate the arguments of ``gpa_attention`` and describe the call; raises before any work."""
    check_qkv(q, k, v)
    pool = _check_int("pool", pool)
    cell = _check_int("cell", cell)
    topk = _check_int("topk", topk)
    check_affinity(affinity)
    if pool < 1:
        raise ValueError(f"pool={pool} must be >= 1")
    if cell < 1:
        raise ValueError(f"cell={cell} must be >= 1")
    if cell % pool:
        raise ValueError(f"cell={cell} must be a multiple of pool={pool}")
    hq, wq = q.shape[2], q.shape[3]
    if hq % cell or wq % cell:
        raise ValueError(f"query grid (Hq, Wq)=({hq}, {wq}) must be multiples of cell={cell}")
    hk, wk = k.shape[2], k.shape[3]
    if hk % pool or wk % pool:
        raise ValueError(f"key grid (Hk, Wk)=({hk}, {wk}) must be multiples of pool={pool}")
    n_blocks = (hk // pool) * (wk // pool)
    if not 1 <= topk <= n_blocks:
        raise ValueError(
            f"topk={topk} must be between 1 and the number of key blocks "
            f"(Hk/pool)*(Wk/pool)=({hk}/{pool})*({wk}/{pool})={n_blocks}"
        )
    check_hierarchy(hierarchy, block_grid=(hk // pool, wk // pool), topk=topk)
    return GPAProblem(
        batch=q.shape[0],
        heads=q.shape[1],
        q_grid=(hq, wq),
        k_grid=(hk, wk),
        head_dim=q.shape[4],
        value_dim=v.shape[4],
        pool=pool,
        cell=cell,
        topk=topk,
        affinity=affinity,
        dtype=q.dtype,
        device=q.device,
        needs_grad=torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)),
        hierarchy=hierarchy,
    )


def check_hierarchy_type(hierarchy: object) -> Hierarchy | None:
    """``hierarchy`` itself, when it is a :class:`Hierarchy` or ``None``; raises otherwise."""
    if hierarchy is not None and not isinstance(hierarchy, Hierarchy):
        raise TypeError(
            f"hierarchy must be a gpa_lib.attention.Hierarchy or None, got {type(hierarchy).__name__}"
        )
    return hierarchy


def check_hierarchy(
    hierarchy: object, *, block_grid: tuple[int, int], topk: int
) -> Hierarchy | None:
    """``hierarchy`` fits a key-block grid ``block_grid`` (Hk/pool, Wk/pool) and ``topk``; raises why not."""
    if check_hierarchy_type(hierarchy) is None:
        return None
    group, hb, wb = hierarchy.group, *block_grid
    if hb % group or wb % group:
        raise ValueError(
            f"hierarchy.group={group} must divide the key-block grid (Hk/pool, Wk/pool)=({hb}, {wb})"
        )
    n_super = (hb // group) * (wb // group)
    if hierarchy.candidates > n_super:
        raise ValueError(
            f"hierarchy.candidates={hierarchy.candidates} exceeds the {n_super} super-blocks of "
            f"{group}x{group} key blocks in the ({hb}, {wb}) key-block grid"
        )
    if hierarchy.candidate_blocks < topk:
        raise ValueError(
            f"hierarchy.candidates * group**2 = {hierarchy.candidates} * {group}**2 = "
            f"{hierarchy.candidate_blocks} key blocks cannot hold topk={topk}; raise candidates"
        )
    return hierarchy
