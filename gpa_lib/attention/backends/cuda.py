"""The ``"cuda"`` GPA backend: phase 1 and phase 2 each as one fused CUDA kernel.

Phase 2 runs one block of threads per (head-batch, query cell): the cell's queries are loaded
once, the selected key blocks are gathered by index into shared memory, the softmax is computed
online, and the output and log-sum-exp are written; the backward pass recomputes the probabilities
from the log-sum-exp and adds dk, dv without atomics (see ``csrc/``). Phase 1 runs the fused
selection kernel (:mod:`~gpa_lib.attention.kernel.cuda.phase1`: two sweeps over the low-resolution keys
per block of cells, per-cell top-k lists in shared memory) where it applies ((cell/pool)^2 <= 64),
else the reference's chunked torch selection. Both run as ``torch.library`` custom ops
(:mod:`~gpa_lib.attention.kernel.cuda.ops`), so ``torch.compile`` traces the backend without graph breaks.

``can_run`` refuses, with the reason, anything the kernel does not cover (CPU tensors, no nvcc,
a GPU older than compute capability 8.0, dtypes other than float32/float16/bfloat16, head dims other
than 16/32/64/128, Dv != D, sizes past int32 indices); ``backend=None`` then falls back to the next
backend and logs the reason once. A build failure becomes
:class:`~gpa_lib.attention.backends.BackendCompileError` and is remembered.
"""

from __future__ import annotations

import logging

from ..hierarchical import select_key_blocks_hierarchical_flat
from ..kernel.cuda.build import (
    CudaKernelUnavailable,
    build_failure,
    device_reason,
    load_extension,
    toolchain_reason,
)
from ..kernel.cuda.ops import (
    CUDA_PHASE1_CHUNK_ELEMENTS,
    KERNEL_DTYPES,
    KERNEL_HEAD_DIMS,
    gpa_attention_fused,
    phase2_fused,
)
from ..kernel.cuda.phase1 import fused_phase1_reason
from ..problem import GPAProblem
from ..selection import device_phase1_chunk_elements
from .base import Backend, BackendCompileError

logger = logging.getLogger("gpa_lib.attention")
_INT32_MAX = 2**31 - 1


class CudaBackend(Backend):
    """GPA with the fused phase-2 kernel; CUDA tensors only."""

    name = "cuda"

    def __init__(self) -> None:
        self._logged: set[str] = set()

    def can_run(self, problem: GPAProblem) -> str | None:
        reason = self._reason(problem)
        if reason is not None and reason not in self._logged:
            self._logged.add(reason)
            logger.info("GPA backend 'cuda' falls back: %s", reason)
        return reason

    def _reason(self, problem: GPAProblem) -> str | None:
        if problem.device.type != "cuda":
            return f"no fused CUDA kernel for device={problem.device}: it runs on CUDA tensors only"
        reason = build_failure() or toolchain_reason() or device_reason(problem.device)
        if reason is not None:
            return reason
        if problem.dtype not in KERNEL_DTYPES:
            return f"the fused kernel supports float32, float16 and bfloat16, got dtype={problem.dtype}"
        if problem.head_dim not in KERNEL_HEAD_DIMS:
            return f"the fused kernel is built for head dims {KERNEL_HEAD_DIMS}, got D={problem.head_dim}"
        if problem.value_dim != problem.head_dim:
            return (
                f"the fused kernel needs Dv == D, got D={problem.head_dim}, Dv={problem.value_dim}"
            )
        bh = problem.batch * problem.heads
        if (
            max(
                problem.n_queries,
                problem.n_keys,
                bh * problem.n_cells * problem.topk,
                bh * problem.n_key_blocks + 1,
            )
            > _INT32_MAX
        ):
            return "the grids or the selection exceed the kernel's 32-bit token and inverse-map indices"
        return None

    def __call__(self, q, k, v, problem):
        try:
            load_extension()
        except CudaKernelUnavailable as err:
            raise BackendCompileError(str(err)) from err
        if problem.hierarchy is not None:
            # Hierarchical phase 1 in torch (chunked to the free memory), then the fused phase 2.
            selection = select_key_blocks_hierarchical_flat(q.detach(), k.detach(), problem)
            out = phase2_fused(
                q,
                k,
                v,
                selection.unflatten(2, problem.cell_grid),
                pool=problem.pool,
                cell=problem.cell,
                affinity=problem.affinity,
            )
            return out, selection  # (B, h, Hq, Wq, Dv), (B, h, K, k)
        # The torch selection (where the fused phase 1 does not apply) chunks by the free memory;
        # read it only then: it is a host query, and the fused path needs none.
        chunk = (
            CUDA_PHASE1_CHUNK_ELEMENTS
            if fused_phase1_reason(problem) is None
            else device_phase1_chunk_elements(q.device)
        )
        out, selection = gpa_attention_fused(
            q,
            k,
            v,
            pool=problem.pool,
            cell=problem.cell,
            topk=problem.topk,
            affinity=problem.affinity,
            chunk_elements=chunk,
        )
        return out, selection.flatten(2, 3)  # (B, h, Hq, Wq, Dv), (B, h, K, k)
