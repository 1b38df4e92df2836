"""Run the CUDA kernels of ``csrc/`` (phase 2 and phase 1) on the CPU, through the host emulation of ``gpa_emulation.h``.

The same ``gpa_phase2.cu`` that nvcc compiles for the GPU is compiled by g++ with
``-DGPA_HOST_EMULATION``: every CUDA thread becomes a ``std::thread``, barriers and warp collectives
become real barriers, ``mma.sync`` and ``ldmatrix`` are computed from the fragments that every lane
holds (per the PTX ISA layout tables), shared memory starts as NaN bytes, and ``cp.async`` copies
can be made to land only at their ``wait_group``. It checks the kernels' indexing, masking,
fragment bookkeeping, barrier placement and asynchronous-copy accounting on a machine without a
GPU; it says nothing about speed, and nothing about the hardware beyond the PTX tables it encodes.

Slow (one OS thread per CUDA thread): for grids of a few cells only. Used by the tests.
"""

from __future__ import annotations

import ctypes
import functools

import torch

from ..host_build import build_shared_library, cache_root
from .build import CSRC_DIR, KERNEL_SOURCE, source_hash
from .reference_math import selection_csr

_DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


class _Phase1Shape(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int)
        for name in ("batch_heads", "n_cells", "rows_per_cell", "n_key_blocks", "head_dim", "topk")
    ]


class _Shape(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int)
        for name in ("batch_heads", "hq", "wq", "hk", "wk", "head_dim", "pool", "cell", "topk")
    ]


@functools.cache
def emulation_library() -> ctypes.CDLL:
    """Build (once per source hash, cached under :func:`~gpa_lib.attention.kernel.cuda.build.cache_root`) and load."""
    target = cache_root() / "emulation" / source_hash() / "libgpa_phase2_emu.so"
    flags = ["-std=c++20", "-O1", "-pthread", "-fPIC", "-shared", "-x", "c++"]
    flags += ["-DGPA_HOST_EMULATION", "-fno-strict-aliasing", f"-I{CSRC_DIR}"]
    build_shared_library(
        [*flags, str(CSRC_DIR / KERNEL_SOURCE)], target, what="building the kernel emulation"
    )
    lib = ctypes.CDLL(str(target))
    lib.gpa_phase2_forward.restype = ctypes.c_int
    lib.gpa_phase2_backward.restype = ctypes.c_int
    lib.gpa_phase1_select.restype = ctypes.c_int
    lib.gpa_error_string.restype = ctypes.c_char_p
    lib.gpa_emulation_set_cp_async_late.argtypes = [ctypes.c_int]
    return lib


def _shape(
    q: torch.Tensor, k: torch.Tensor, selection: torch.Tensor, pool: int, cell: int
) -> _Shape:
    B, h, Hq, Wq, D = q.shape
    return _Shape(B * h, Hq, Wq, k.shape[2], k.shape[3], D, pool, cell, selection.shape[-1])


def _ptr(t: torch.Tensor | None):
    return ctypes.c_void_p(t.data_ptr() if t is not None else 0)


def _check(lib: ctypes.CDLL, code: int, what: str) -> None:
    if code != 0:
        raise RuntimeError(f"{what} failed in emulation: {lib.gpa_error_string(code).decode()}")


def emulated_forward(
    q, k, v, selection, key_bias, pool: int, cell: int, scale: float, *, late_copies: bool = False
):
    """The kernel's forward on CPU tensors: (out (B, h, Hq, Wq, D), lse (B, h, Hq, Wq) float32).

    Layouts and arguments as ``gpa_lib::gpa_phase2_fwd``; ``late_copies`` lands every cp.async at its
    wait_group instead of at issue.
    """
    lib = emulation_library()
    lib.gpa_emulation_set_cp_async_late(int(late_copies))
    q, k, v, selection = (t.contiguous() for t in (q, k, v, selection))
    bias = key_bias.contiguous() if key_bias is not None else None
    out = torch.empty_like(q)
    lse = torch.empty(q.shape[:4], dtype=torch.float32)
    shape = _shape(q, k, selection, pool, cell)
    code = lib.gpa_phase2_forward(
        ctypes.byref(shape),
        _DTYPE_CODES[q.dtype],
        _ptr(q),
        _ptr(k),
        _ptr(v),
        _ptr(selection),
        _ptr(bias),
        ctypes.c_float(scale),
        _ptr(out),
        _ptr(lse),
        ctypes.c_void_p(0),
    )
    _check(lib, code, "gpa_phase2_forward")
    return out, lse


def emulated_backward(
    dout,
    q,
    k,
    v,
    out,
    lse,
    selection,
    key_bias,
    pool: int,
    cell: int,
    scale: float,
    *,
    late_copies: bool = False,
):
    """The kernel's backward on CPU tensors: (dq, dk, dv, dbias or None); see ``gpa_phase2_bwd``."""
    lib = emulation_library()
    lib.gpa_emulation_set_cp_async_late(int(late_copies))
    dout, q, k, v, out, lse, selection = (
        t.contiguous() for t in (dout, q, k, v, out, lse, selection)
    )
    bias = key_bias.contiguous() if key_bias is not None else None
    n_blocks = (k.shape[2] // pool) * (k.shape[3] // pool)
    offsets, cells = selection_csr(selection, n_blocks)
    delta = torch.empty_like(lse)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    dbias = torch.empty_like(bias) if bias is not None else None
    shape = _shape(q, k, selection, pool, cell)
    code = lib.gpa_phase2_backward(
        ctypes.byref(shape),
        _DTYPE_CODES[q.dtype],
        _ptr(q),
        _ptr(k),
        _ptr(v),
        _ptr(out),
        _ptr(dout),
        _ptr(lse),
        _ptr(selection),
        _ptr(bias),
        ctypes.c_float(scale),
        _ptr(offsets),
        _ptr(cells),
        _ptr(delta),
        _ptr(dq),
        _ptr(dk),
        _ptr(dv),
        _ptr(dbias),
        ctypes.c_void_p(0),
    )
    _check(lib, code, "gpa_phase2_backward")
    return dq, dk, dv, dbias


def emulated_phase1(operands, *, late_copies: bool = False) -> torch.Tensor:
    """The phase-1 kernel on CPU tensors: (B, h, K, topk) int64 block indices, best first.

    ``operands``: a :class:`~gpa_lib.attention.kernel.cuda.phase1.Phase1Operands` (from
    :func:`~gpa_lib.attention.kernel.cuda.phase1.phase1_operands` on CPU tensors).
    """
    lib = emulation_library()
    lib.gpa_emulation_set_cp_async_late(int(late_copies))
    B, h, K, r, D = operands.q_hi.shape
    n_blocks = operands.k_hi.shape[2]
    selection = torch.empty(B, h, K, operands.topk, dtype=torch.long)
    shape = _Phase1Shape(B * h, K, r, n_blocks, D, operands.topk)
    code = lib.gpa_phase1_select(
        ctypes.byref(shape),
        _ptr(operands.q_hi),
        _ptr(operands.q_lo),
        _ptr(operands.k_hi),
        _ptr(operands.k_lo),
        _ptr(operands.key_bias),
        ctypes.c_float(operands.scale),
        _ptr(selection),
        ctypes.c_void_p(0),
    )
    _check(lib, code, "gpa_phase1_select")
    return selection
