"""Cost model of GPA and dense attention: FLOPs, bytes moved and peak extra memory.

Sizes (per batch element and head): Nq = Hq*Wq queries, Nk = Hk*Wk keys, nq = Nq/pool^2 low-res
queries, Nb = Nk/pool^2 key blocks, K = Nq/cell^2 cells, r = (cell/pool)^2 low-res queries per
cell, t = topk, so that every query sees t*pool^2 keys.

- Phase 1 (selection): scores nq x Nb, FLOPs ~ 2*B*h*nq*Nb*D = 2*B*h*Nq*Nk*D / pool^4.
- Phase 2 (attention to the selected keys): FLOPs ~ 2*B*h*Nq*t*pool^2*(D + Dv), memory linear in Nq.
- Dense attention: FLOPs ~ 2*B*h*Nq*Nk*(D + Dv); a materialised score matrix holds B*h*Nq*Nk entries.

Peak extra memory is modelled tensor by tensor for the ``"reference"`` backend, the masked
``"masked"`` backend and the materialised attention of :mod:`gpa_lib.attention.exact` (inference, no
autograd graph), so that :mod:`gpa_lib.measure` can check it. Bytes moved
count one read or write per tensor pass of those implementations and ignore caches: a traffic
estimate for a roofline, not a measurement. Softmax counts 4 FLOPs per entry (max, subtract and
exp, sum, divide).

The second half is the roofline floor of the fused phase-2 kernel on a GPU: the least work and
traffic any phase-2 kernel must do, over a device's matrix rate and memory bandwidth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..problem import GPAProblem, GridSizes
from ..selection import PHASE1_CHUNK_ELEMENTS, phase1_chunk_cells

INDEX_BYTES = 8  # int64 block indices
SOFTMAX_FLOPS = 4  # per score entry


@dataclass(frozen=True)
class AttentionSizes(GridSizes):
    """Everything the costs depend on; grids in tokens, ``dtype_bytes`` per element of q, k, v.

    The derived sizes (``n_queries``, ``n_key_blocks``, ``n_cells``, ...) are those of
    :class:`~gpa_lib.attention.problem.GPAProblem`; :meth:`from_problem` builds one from a checked call.
    """

    q_grid: tuple[int, int]  # (Hq, Wq), query grid in tokens
    k_grid: tuple[int, int]  # (Hk, Wk), key/value grid in tokens
    head_dim: int = 32  # D, query/key channels per head
    value_dim: int | None = None  # Dv, value channels per head (None: same as head_dim)
    heads: int = 1  # h
    batch: int = 1  # B
    pool: int = 4  # side of a key block / pooling block, tokens
    cell: int = 8  # side of a query cell, tokens
    topk: int = 8  # key blocks per cell
    dtype_bytes: int = 4  # bytes per element of q, k, v (4 for float32)
    affinity: str = "dot"  # "dot" or "euclid"
    phase1_chunk_elements: int = PHASE1_CHUNK_ELEMENTS  # bound on a phase-1 score chunk

    @classmethod
    def from_problem(cls, problem: GPAProblem, **changes) -> AttentionSizes:
        """The sizes of a checked GPA call (:func:`~gpa_lib.attention.problem.check_inputs`)."""
        fields = dict(
            q_grid=problem.q_grid,
            k_grid=problem.k_grid,
            head_dim=problem.head_dim,
            value_dim=problem.value_dim,
            heads=problem.heads,
            batch=problem.batch,
            pool=problem.pool,
            cell=problem.cell,
            topk=problem.topk,
            dtype_bytes=torch.empty((), dtype=problem.dtype).element_size(),
            affinity=problem.affinity,
        )
        return cls(**{**fields, **changes})

    @classmethod
    def of(cls, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **settings) -> AttentionSizes:
        """The sizes of tensors q (B, h, Hq, Wq, D), k (B, h, Hk, Wk, D), v (B, h, Hk, Wk, Dv);
        ``settings`` give pool, cell, topk, affinity (defaults otherwise)."""
        return cls(
            q_grid=tuple(q.shape[2:4]),
            k_grid=tuple(k.shape[2:4]),
            head_dim=q.shape[-1],
            value_dim=v.shape[-1],
            heads=q.shape[1],
            batch=q.shape[0],
            dtype_bytes=q.element_size(),
            **settings,
        )

    @property
    def dv(self) -> int:
        return self.head_dim if self.value_dim is None else self.value_dim

    def with_(self, **changes) -> AttentionSizes:
        return replace(self, **changes)


@dataclass(frozen=True)
class Cost:
    """FLOPs, bytes moved through memory and peak extra bytes allocated (output included)."""

    flops: float
    bytes_moved: float
    peak_bytes: float

    def time_s(self, flops_per_s: float, bytes_per_s: float, *, overlap: bool = False) -> float:
        """Predicted time at a machine's matrix rate and copy bandwidth.

        ``overlap=False`` adds compute time and memory time: the CPU model of chapter 1, where the
        tensor passes of the torch implementations run one after another. ``overlap=True`` takes the
        larger of the two: the roofline floor (:func:`roofline_floor`), what a fused kernel can reach.
        """
        if overlap:
            return roofline_floor(
                self.flops, self.bytes_moved, flops_per_s=flops_per_s, bytes_per_s=bytes_per_s
            ).floor_s
        _check_rates(flops_per_s, bytes_per_s)
        return self.flops / flops_per_s + self.bytes_moved / bytes_per_s


def authors_defaults(height: int) -> dict[str, int]:
    """pool, cell and topk of the authors' ``GPA_module`` for a ``height``-row query map.

    ``SHIERARCHY=64`` sets pool = height // 64 (a 64-row low-resolution grid), ``splitM=32`` cuts that
    grid into 32 cells per side (cell = 2 * pool), and ``kappa=2`` keeps two key blocks per cell.
    """
    pool = max(1, height // 64)
    return {"pool": pool, "cell": pool * max(1, (height // pool) // 32), "topk": 2}


def selection_bytes(s: AttentionSizes) -> int:
    """The (B, h, K, topk) int64 selection that phase 1 hands to phase 2."""
    return s.bh * s.n_cells * s.topk * INDEX_BYTES


def phase1_cost(s: AttentionSizes) -> Cost:
    """Phase 1 as :func:`~gpa_lib.attention.selection.select_key_blocks` runs it (at least float32)."""
    e = max(s.dtype_bytes, 4)
    D, nq, Nb, K = s.head_dim, s.n_low_queries, s.n_key_blocks, s.n_cells
    r = (s.cell // s.pool) ** 2
    euclid = s.affinity == "euclid"
    scores = s.bh * nq * Nb  # entries of the full low-res score matrix, never held at once
    pooling_flops = s.bh * (s.n_queries + s.n_keys) * D
    score_flops = 2 * scores * D + (2 * scores if euclid else 0)  # q̄·k̄ (and the euclid terms)
    softmax_mean_flops = SOFTMAX_FLOPS * scores + scores  # softmax, then mean over the cell
    topk_flops = s.bh * K * Nb  # one scan of the cell means
    flops = pooling_flops + score_flops + softmax_mean_flops + topk_flops
    read_qk = s.bh * (s.n_queries + s.n_keys) * D * s.dtype_bytes
    low_res = 3 * s.bh * (nq + Nb) * D * e  # write pooled grids, copy queries cell-major
    score_passes = 10 * scores * e  # matmul write; max, subtract, exp, sum, divide, mean passes
    bytes_moved = read_qk + low_res + score_passes + 2 * s.bh * K * Nb * e + selection_bytes(s)
    chunk = phase1_chunk_cells(s.batch, s.heads, K, r, Nb, s.phase1_chunk_elements)
    q_low = s.bh * nq * D * e
    cast = s.bh * s.n_queries * D * 4 if s.dtype_bytes < 4 else 0  # half inputs pooled in float32
    pooling = cast + 2 * q_low  # pooled grid and its cell-major copy
    # score chunk, its cell means, and the float32 tie key of topk_lower_index_ties
    chunk_scores = s.bh * chunk * ((r + 1) * Nb * e + Nb * 4)
    held = q_low + s.bh * Nb * D * e + (s.bh * Nb * e if euclid else 0) + selection_bytes(s)
    return Cost(flops, bytes_moved, max(pooling, held + chunk_scores))


def phase2_cost(s: AttentionSizes) -> Cost:
    """Phase 2 of the reference backend: gather the selected blocks, explicit softmax per cell."""
    e, D, Dv = s.dtype_bytes, s.head_dim, s.dv
    euclid = s.affinity == "euclid"
    entries = s.bh * s.n_queries * s.keys_per_query  # scores of all queries
    q = s.bh * s.n_queries * D * e
    out = s.bh * s.n_queries * Dv * e
    k_sel = s.bh * s.n_cells * s.keys_per_query * D * e
    v_sel = s.bh * s.n_cells * s.keys_per_query * Dv * e
    bias = s.bh * s.n_cells * s.keys_per_query * e if euclid else 0
    flops = 2 * entries * (D + Dv) + SOFTMAX_FLOPS * entries + (entries if euclid else 0)
    bytes_moved = 5 * q + 2 * (k_sel + v_sel) + (k_sel + v_sel) + 4 * entries * e + 3 * out
    stages = (
        2 * q,  # cell-major copy of q and its scaled copy
        q + k_sel + v_sel + entries * e,  # scores computed, q not yet freed
        q + 2 * k_sel + v_sel + entries * e if euclid else 0,  # squared keys for the euclid bias
        (q + bias if euclid else 0) + k_sel + v_sel + 2 * entries * e,  # softmax, euclid subtract
        entries * e + v_sel + out,  # attention times values
        2 * out,  # back from cell-major to the grid
    )
    return Cost(flops, bytes_moved, max(stages))


def gpa_cost(s: AttentionSizes) -> Cost:
    """Both phases of the reference backend; phase 1 is freed before phase 2 except the selection."""
    p1, p2 = phase1_cost(s), phase2_cost(s)
    return Cost(
        p1.flops + p2.flops,
        p1.bytes_moved + p2.bytes_moved,
        max(p1.peak_bytes, selection_bytes(s) + p2.peak_bytes),
    )


def cpu_kernel_cost(s: AttentionSizes, *, threads: int | None = None) -> Cost:
    """Both phases of the ``"cpu"`` backend in inference, both in the fused kernel.

    Phase 1: the pooled grids, the transposed pooled keys and a per-thread workspace of one cell's
    (cell/pool)^2 x Nb scores; phase 2: a per-thread workspace of one cell's queries, gathered keys,
    values and scores, the output and the log-sum-exp. Scores never leave the cache, so the bytes
    moved are the inputs, the gathered copies and the outputs (``threads``: torch's default).
    """
    e, D, Dv = s.dtype_bytes, s.head_dim, s.dv
    n, m, r, Nb = s.cell**2, s.keys_per_query, s.low_queries_per_cell, s.n_key_blocks
    threads = torch.get_num_threads() if threads is None else threads
    euclid = s.affinity == "euclid"
    # phase 1
    q_low, k_low = s.bh * s.n_low_queries * D * e, s.bh * Nb * D * e
    workspace1 = threads * ((r + 1) * Nb * e + Nb * 4)  # scores and mean; int32 order
    bias1 = s.bh * Nb * e if euclid else 0
    held1 = q_low + 2 * k_low + bias1 + selection_bytes(s) + workspace1
    p1 = phase1_cost(s)
    bytes1 = s.bh * (s.n_queries + s.n_keys) * D * e + 3 * q_low + 3 * k_low + selection_bytes(s)
    # phase 2
    entries = s.bh * s.n_queries * m
    flops = 2 * entries * (D + Dv) + SOFTMAX_FLOPS * entries + (entries if euclid else 0)
    gathered = s.bh * s.n_cells * m * (D + Dv + 1) * e  # keys, values, bias copied per cell
    out, lse = s.bh * s.n_queries * Dv * e, s.bh * s.n_queries * e
    bytes2 = s.bh * s.n_queries * D * e + gathered + out + lse
    workspace2 = threads * (n * D + D * m + m * Dv + m + n * m + n * Dv + n) * e
    bias2 = s.bh * s.n_keys * e if euclid else 0
    peak2 = selection_bytes(s) + bias2 + out + lse + workspace2
    return Cost(p1.flops + flops, bytes1 + bytes2, max(2 * q_low, held1, peak2))


def dense_cost(
    s: AttentionSizes,
    *,
    materialised: bool = True,
    masked: bool = False,
    threads: int | None = None,
) -> Cost:
    """Exact attention to all Nk keys.

    ``materialised=True``: the explicit (B, h, Nq, Nk) score matrix of ``materialised_attention``
    (with ``masked``: GPA's ``"masked"`` backend, phase 1 plus a bool mask of the same shape).
    ``materialised=False``: fused SDPA (flash attention on CPU), whose extra memory is the output,
    zero-padded copies when D != Dv, and per-thread score tiles (up to 256 queries x 512 keys) of
    ``threads`` threads (default: torch's intra-op thread count); approximate, within about 10%.
    """
    e, D, Dv = s.dtype_bytes, s.head_dim, s.dv
    entries = s.bh * s.n_queries * s.n_keys
    q = s.bh * s.n_queries * D * e
    kv = s.bh * s.n_keys * (D + Dv) * e
    out = s.bh * s.n_queries * Dv * e
    flops = 2 * entries * (D + Dv) + SOFTMAX_FLOPS * entries
    if not materialised:
        width = max(D, Dv)  # q, k, v are zero-padded to one head dim
        q_tile = 256 if s.n_queries >= 768 else 64 if s.n_queries >= 192 else 32
        kv_tile = min(512, s.n_keys)
        acc = max(e, 4)  # tiles accumulate in at least float32
        tile = q_tile * kv_tile * (acc + (e if e < 4 else 0)) + q_tile * (width + 2) * acc
        bias = 0
        if s.affinity == "euclid":  # the (B, h, 1, Nk) key bias
            bias = s.bh * s.n_keys * e
        threads = torch.get_num_threads() if threads is None else threads
        pad = (
            s.bh * (s.n_queries + s.n_keys) * width * e
            if Dv > D
            else s.bh * s.n_keys * width * e
            if Dv < D
            else 0
        )
        out_wide = s.bh * s.n_queries * width * e
        reads = q + out + kv * -(-s.n_queries // q_tile)
        return Cost(flops, reads, out_wide + threads * tile + pad + bias)
    bytes_moved = 2 * q + kv + 5 * entries * e + out
    peak = q + 2 * entries * e + (s.bh * s.n_keys * e if s.affinity == "euclid" else 0)
    if masked:
        mask = entries  # bool, one byte per entry
        p1 = phase1_cost(s)
        flops += p1.flops
        bytes_moved += p1.bytes_moved + 2 * mask
        peak = max(p1.peak_bytes, selection_bytes(s) + mask + peak)
    return Cost(flops, bytes_moved, peak)


def method_cost(method: str, sizes: AttentionSizes, backend: str | None = None) -> Cost | None:
    """The modelled cost of a benchmark method (``None``: not modelled, e.g. FlexAttention).

    ``method`` is ``"sdpa"`` (fused exact attention), ``"materialised"`` (exact attention through the
    score matrix), ``"phase1"`` (the selection alone), a GPA backend name, or ``"auto"`` with the
    ``backend`` that ``backend=None`` chose.
    """
    if method == "sdpa":
        return dense_cost(sizes, materialised=False)
    if method == "materialised":
        return dense_cost(sizes)
    if method == "phase1":
        return phase1_cost(sizes)
    name = backend if method == "auto" else method
    if name == "masked":
        return dense_cost(sizes, masked=True)
    if name == "reference":
        return gpa_cost(sizes)
    if name == "cpu":
        return cpu_kernel_cost(sizes)
    return None


def _check_rates(flops_per_s: float, bytes_per_s: float) -> None:
    if flops_per_s <= 0 or bytes_per_s <= 0:
        raise ValueError(
            f"rates must be positive, got flops_per_s={flops_per_s}, bytes_per_s={bytes_per_s}"
        )


#: H200 (SXM) ceilings measured on this project's lent H200 machines (2026-10-28 and 2026-11-04, by the
#: device tool's probe): an 8192^3 bf16 matrix product through PyTorch ran at about 790 TFLOP/s on
#: random data, and a device-to-device copy moved about 4.3 TB/s counting bytes read and written.
#: The vendor's datasheet says about 990 TFLOP/s dense bf16 and 4.8 TB/s of HBM3e bandwidth.
H200_BF16_FLOPS_PER_S = 790e12
H200_BYTES_PER_S = 4.3e12
H200_DATASHEET_BF16_FLOPS_PER_S = 989e12
H200_DATASHEET_BYTES_PER_S = 4.8e12


@dataclass(frozen=True)
class Floor:
    """Work, traffic and the roofline floor of one pass."""

    flops: float  # tensor-core FLOPs
    bytes_moved: float  # least bytes through device memory
    compute_s: float  # flops / matrix rate
    memory_s: float  # bytes / bandwidth
    floor_s: float  # the larger of the two
    bound: str  # "compute" or "memory"


def phase2_flops(s: AttentionSizes, *, backward: bool = False) -> float:
    """Tensor-core FLOPs of phase 2, forward or backward.

    Forward 2 N k (D + Dv) (S = Q K^T and O = P V), backward 2 N k (3 D + 2 Dv) (S again, dP = dO V^T,
    dV = P^T dO, dQ = dS K, dK = dS^T Q), with N = B*h*Nq queries and k = topk*pool^2 keys per query.
    Exponentials are not counted: a lower bound, as a floor must be.
    """
    pairs = s.bh * s.n_queries * s.keys_per_query
    if backward:
        return 2.0 * pairs * (3 * s.head_dim + 2 * s.dv)
    return 2.0 * pairs * (s.head_dim + s.dv)


def phase2_bytes(s: AttentionSizes, *, backward: bool = False) -> float:
    """Least bytes phase 2 moves through device memory, forward or backward.

    Forward: q, k, v read once, out and the fp32 lse written, the int64 selection read. Backward: q,
    k, v, out, dout, lse, selection and the int32 inverse map read; dq, dk, dv written; the fp32
    delta written and read. Keys count once although several cells select a block (perfect reuse).
    """
    e, D, Dv = s.dtype_bytes, s.head_dim, s.dv
    q = s.bh * s.n_queries * D * e
    kv = s.bh * s.n_keys * (D + Dv) * e
    out = s.bh * s.n_queries * Dv * e
    row_floats = s.bh * s.n_queries * 4  # lse or delta
    selection = selection_bytes(s)
    if not backward:
        return float(q + kv + out + row_floats + selection)
    inverse_map = s.bh * s.n_cells * s.topk * 4 + (s.bh * s.n_key_blocks + 1) * 4
    reads = q + kv + 2 * out + row_floats + selection + inverse_map  # q, k, v, out, dout, lse
    writes = q + kv  # dq, dk, dv
    return float(reads + writes + 2 * row_floats)  # delta written, then read


def phase2_kernel_bytes(s: AttentionSizes) -> dict[str, float]:
    """Bytes the fused phase-2 kernels (``kernel/cuda/csrc/``) move as they are designed, per kernel:
    unlike :func:`phase2_bytes`, a gathered row counts once for every (cell, key block) pair that
    uses it, since each pair loads it anew.

    - ``"forward"``: each cell's queries once, the keys and values of its topk blocks, out and lse;
    - ``"delta"``: out and dout read, the float32 delta written;
    - ``"dq"``: each cell's q, dout, lse and delta once, the keys and values of its blocks, dq written;
    - ``"dkdv"``: each key block's keys and values once and dk, dv written, and for every cell that
      selected it that cell's q, dout, lse and delta (cell² rows per pair);
    - ``"backward"``: delta + dq + dkdv and the int32 inverse map.

    Pairs are B h K topk. A model of traffic through the memory system (L2 or HBM), not of cache hits:
    the times of a run divided into it give the effective bandwidth the kernels reached.
    """
    e, D, Dv = s.dtype_bytes, s.head_dim, s.dv
    rows = s.bh * s.n_queries  # query rows
    pairs = s.bh * s.n_cells * s.topk
    pair_keys = pairs * s.pool**2 * (D + Dv) * e  # keys and values of a block, once per pair
    pair_queries = pairs * s.cell**2 * ((D + Dv) * e + 8)  # q, dout, lse, delta of a cell, per pair
    forward = rows * (D + Dv) * e + rows * 4 + selection_bytes(s) + pair_keys
    delta = rows * 2 * Dv * e + rows * 4
    dq = rows * ((D + Dv) * e + 8) + rows * D * e + selection_bytes(s) + pair_keys
    dkdv = 2 * s.bh * s.n_keys * (D + Dv) * e + pair_queries
    inverse_map = pairs * 4 + (s.bh * s.n_key_blocks + 1) * 4
    return {
        "forward": float(forward),
        "delta": float(delta),
        "dq": float(dq),
        "dkdv": float(dkdv),
        "backward": float(delta + dq + dkdv + inverse_map),
    }


def phase2_cell_major_backward_bytes(s: AttentionSizes, partial_bytes: int) -> float:
    """Bytes of a phase-2 backward that does not exist yet, for comparison with
    :func:`phase2_kernel_bytes`: one kernel per cell reads the cell's q, dout, lse and delta once,
    the keys and values of its topk blocks, writes dq and, per (cell, key block) pair, the pair's
    partial dk and dv (``partial_bytes`` per element: 4 for float32, 2 for bf16); a second kernel
    adds each key block's partials in the fixed order of the inverse map (no atomics) and writes dk,
    dv. The delta kernel and the inverse map are as today."""
    e, D, Dv = s.dtype_bytes, s.head_dim, s.dv
    rows = s.bh * s.n_queries
    pairs = s.bh * s.n_cells * s.topk
    today = phase2_kernel_bytes(s)
    per_cell = rows * ((D + Dv) * e + 8) + rows * D * e + selection_bytes(s)
    pair_keys = pairs * s.pool**2 * (D + Dv) * e
    partials = pairs * s.pool**2 * (D + Dv) * partial_bytes  # written once, read once
    reduce_writes = s.bh * s.n_keys * (D + Dv) * e
    inverse_map = pairs * 4 + (s.bh * s.n_key_blocks + 1) * 4
    return float(today["delta"] + per_cell + pair_keys + 2 * partials + reduce_writes + inverse_map)


def roofline_floor(
    flops: float,
    bytes_moved: float,
    *,
    flops_per_s: float = H200_BF16_FLOPS_PER_S,
    bytes_per_s: float = H200_BYTES_PER_S,
) -> Floor:
    """The roofline floor of ``flops`` and ``bytes_moved`` on a device (default: an H200)."""
    _check_rates(flops_per_s, bytes_per_s)
    compute_s, memory_s = flops / flops_per_s, bytes_moved / bytes_per_s
    bound = "compute" if compute_s >= memory_s else "memory"
    return Floor(flops, bytes_moved, compute_s, memory_s, max(compute_s, memory_s), bound)


def phase2_floor(
    s: AttentionSizes,
    *,
    backward: bool = False,
    flops_per_s: float = H200_BF16_FLOPS_PER_S,
    bytes_per_s: float = H200_BYTES_PER_S,
) -> Floor:
    """Roofline floor of phase 2 (forward, or backward alone) for sizes ``s``."""
    return roofline_floor(
        phase2_flops(s, backward=backward),
        phase2_bytes(s, backward=backward),
        flops_per_s=flops_per_s,
        bytes_per_s=bytes_per_s,
    )


def dense_flash_floor(
    s: AttentionSizes,
    *,
    flops_per_s: float = H200_BF16_FLOPS_PER_S,
    bytes_per_s: float = H200_BYTES_PER_S,
) -> Floor:
    """Roofline floor of an ideal fused dense (flash) attention forward: 2 N Nk (D + Dv) FLOPs, and
    q, k, v read once and the output written (it never materialises scores)."""
    e, D, Dv = s.dtype_bytes, s.head_dim, s.dv
    flops = 2.0 * s.bh * s.n_queries * s.n_keys * (D + Dv)
    bytes_moved = s.bh * (s.n_queries * (D + Dv) + s.n_keys * (D + Dv)) * e
    return roofline_floor(flops, bytes_moved, flops_per_s=flops_per_s, bytes_per_s=bytes_per_s)


def phase1_flops(s: AttentionSizes, *, passes: int = 1) -> float:
    """Tensor-core FLOPs of phase 1's low-resolution scores, ``passes`` times: 2 B h nq Nb D each.

    One pass computes every score between the nq pooled queries and the Nb pooled keys; a kernel
    that keeps no score matrix needs two (one for the softmax statistics of each row, one for the
    cell means and the running top-k), so two is the floor of such a kernel. The softmax, the means
    and the top-k are not counted: a lower bound.
    """
    if passes < 1:
        raise ValueError(f"passes={passes} must be at least 1")
    return 2.0 * passes * s.bh * s.n_low_queries * s.n_key_blocks * s.head_dim


def hierarchical_phase1_scores(s: AttentionSizes, group: int, candidates: int) -> int:
    """Low-resolution scores per (batch, head) of the hierarchical phase 1
    (:mod:`~gpa_lib.attention.hierarchical`): each of the nq pooled queries against the Nb / group²
    super-blocks and the candidates * group² blocks inside the kept ones (against Nb for exact phase 1)."""
    if group < 1 or candidates < 1:
        raise ValueError(f"group={group} and candidates={candidates} must be >= 1")
    return s.n_low_queries * (s.n_key_blocks // group**2 + candidates * group**2)


def hierarchical_phase1_fraction(s: AttentionSizes, group: int, candidates: int) -> float:
    """Scores (so score FLOPs) of the hierarchical phase 1 over those of exact phase 1 at sizes ``s``."""
    return hierarchical_phase1_scores(s, group, candidates) / (s.n_low_queries * s.n_key_blocks)


def phase1_floor(
    s: AttentionSizes,
    *,
    passes: int = 2,
    flops_per_s: float = H200_BF16_FLOPS_PER_S,
    bytes_per_s: float = H200_BYTES_PER_S,
) -> Floor:
    """Roofline floor of a fused phase 1 of ``passes`` passes over the scores (default two): its
    FLOPs (:func:`phase1_flops`) at the bf16 matrix rate, and q and k read once per pass plus the
    int64 selection written, at the bandwidth."""
    reads = passes * s.bh * (s.n_queries + s.n_keys) * s.head_dim * s.dtype_bytes
    return roofline_floor(
        phase1_flops(s, passes=passes),
        float(reads + selection_bytes(s)),
        flops_per_s=flops_per_s,
        bytes_per_s=bytes_per_s,
    )
