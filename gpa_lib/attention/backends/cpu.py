"""The ``"cpu"`` GPA backend: both phases in the fused CPU kernel.

Phase 1 pools q and k in torch, then scores each cell's low-resolution queries against every key
block, soft-maxes, averages and keeps the top-k inside the kernel, one cell at a time. Phase 2 runs
one task per (batch*head, query cell) on OpenMP threads: the cell's queries and the tokens of its
selected blocks are gathered into buffers that stay in cache, scores and weighted values are computed
in register tiles, and nothing of size (B, h, Nq, topk * pool^2) is ever written to memory
(:mod:`~gpa_lib.attention.kernel.cpu.ops`). The backward pass runs in the kernel too: it recomputes each
cell's weights from the forward's log-sum-exp and forms dq, dk, dv and the key-bias gradient per
cell, so a training step holds no attention weights (less memory than ``"recompute"``).

``can_run`` refuses, with the reason, anything the kernel does not cover (other devices, dtypes other
than float32 and float64, no C++ compiler, a build that failed earlier in this process);
``backend=None`` then falls back to the next backend, and a build failure during a call falls back
with a logged warning. The kernel is built once per machine in about a second (g++, no torch headers)
and cached across processes, so later first calls compile nothing.
"""

from __future__ import annotations

from ..hierarchical import phase1_selection
from ..kernel.cpu.build import ENTRY_POINTS, cpu_kernel_reason, load_cpu_kernel
from ..kernel.cpu.ops import cpu_select_key_blocks, fused_cpu_phase2
from ..problem import GPAProblem
from .base import Backend, BackendCompileError


class CpuBackend(Backend):
    """GPA with the fused phase-2 CPU kernel; float32 (fast) or float64 CPU tensors."""

    name = "cpu"

    def can_run(self, problem: GPAProblem) -> str | None:
        if problem.device.type != "cpu":
            return f"the fused CPU kernel runs on CPU tensors, got device={problem.device}"
        if problem.dtype not in ENTRY_POINTS:
            return (
                f"the fused CPU kernel is built for float32 and float64, got dtype={problem.dtype}"
            )
        return cpu_kernel_reason()

    def __call__(self, q, k, v, problem):
        try:
            load_cpu_kernel()
        except RuntimeError as err:
            raise BackendCompileError(str(err)) from err
        selection = phase1_selection(q, k, problem, cpu_select_key_blocks)  # (B, h, K, k)
        return fused_cpu_phase2(q, k, v, selection, problem), selection  # (B, h, Hq, Wq, Dv)
