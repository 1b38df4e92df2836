"""Roofline floor of the fused phase-2 kernel: the time no implementation can beat on a given GPU.

floor = max(FLOPs / matrix rate, bytes / memory bandwidth), with the least work and traffic any
phase-2 kernel must do (sizes as in :class:`~gpa_lib.attention.complexity.AttentionSizes`,
N = B*h*Nq queries, k = topk*pool^2 keys per query):

- forward FLOPs  2 N k (D + Dv)            (S = Q K^T and O = P V on the tensor cores)
- backward FLOPs 2 N k (3 D + 2 Dv)        (S again, dP = dO V^T, dV = P^T dO, dQ = dS K, dK = dS^T Q)
- forward bytes  q, k, v read once, out written, lse (fp32) written, the int64 selection read
- backward bytes q, k, v, out, dout, lse, selection read; dq, dk, dv written; delta (fp32)
  written and read; the int32 inverse map read
Keys are counted once although several cells select the same block (perfect cache reuse), and
exponentials are not counted: a lower bound, as a floor must be.
"""

from __future__ import annotations

from dataclasses import dataclass

from .complexity import AttentionSizes

#: H200 (SXM): dense bf16 tensor-core rate and HBM3e bandwidth, the targets of the kernel issue.
H200_BF16_FLOPS_PER_S = 790e12
H200_BYTES_PER_S = 4.3e12


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
    """Tensor-core FLOPs of phase 2, forward or backward (see the module docstring)."""
    pairs = s.bh * s.n_queries * s.keys_per_query
    if backward:
        return 2.0 * pairs * (3 * s.head_dim + 2 * s.dv)
    return 2.0 * pairs * (s.head_dim + s.dv)


def phase2_bytes(s: AttentionSizes, *, backward: bool = False) -> float:
    """Least bytes phase 2 moves through device memory, forward or backward."""
    e, D, Dv = s.dtype_bytes, s.head_dim, s.dv
    q = s.bh * s.n_queries * D * e
    kv = s.bh * s.n_keys * (D + Dv) * e
    out = s.bh * s.n_queries * Dv * e
    row_floats = s.bh * s.n_queries * 4  # lse or delta
    selection = s.bh * s.n_cells * s.topk * 8
    if not backward:
        return float(q + kv + out + row_floats + selection)
    inverse_map = s.bh * s.n_cells * s.topk * 4 + (s.bh * s.n_blocks + 1) * 4
    reads = q + kv + 2 * out + row_floats + selection + inverse_map  # q, k, v, out, dout, lse
    writes = q + kv  # dq, dk, dv
    return float(reads + writes + 2 * row_floats)  # delta written, then read


def roofline_floor(
    flops: float,
    bytes_moved: float,
    *,
    flops_per_s: float = H200_BF16_FLOPS_PER_S,
    bytes_per_s: float = H200_BYTES_PER_S,
) -> Floor:
    """The roofline floor of ``flops`` and ``bytes_moved`` on a device (default: an H200)."""
    if flops_per_s <= 0 or bytes_per_s <= 0:
        raise ValueError(
            f"rates must be positive, got flops_per_s={flops_per_s}, bytes_per_s={bytes_per_s}"
        )
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
