"""The fused CPU GPA kernel's calls (``csrc/gpa_cpu.cpp``, built by :mod:`.build`) through ctypes.

:func:`fused_cpu_phase2` is differentiable, and both passes run in the kernel: the forward keeps
its inputs, the key bias and the log-sum-exp of every query (B, h, Nq); the backward recomputes each
cell's weights from them and forms dq, dk, dv and the key-bias gradient cell by cell
(:func:`cpu_phase2_backward`), so a training step holds no (B, h, Nq, topk * pool^2) attention
weights and calls no torch operator per cell. :func:`cpu_select_key_blocks` is phase 1 in the kernel.
"""

from __future__ import annotations

import ctypes

import torch

from .build import BACKWARD_ENTRY_POINTS, ENTRY_POINTS, SELECT_ENTRY_POINTS, load_cpu_kernel


class _Shape(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int)
        for name in (
            "batch_heads", "hq", "wq", "hk", "wk", "head_dim", "value_dim", "pool", "cell", "topk",
        )
    ]  # fmt: skip


def _check_phase2(code: int, entry: str, shape: _Shape) -> None:
    """Raise for a phase-2 entry point's return code: 2 is a bad block index, others bad sizes."""
    if code == 2:
        raise ValueError("selection holds a block index outside [0, number of key blocks)")
    if code != 0:
        sizes = ", ".join(f"{name}={getattr(shape, name)}" for name, _ in shape._fields_)
        raise RuntimeError(f"{entry} failed with code {code} for sizes {sizes}")


def cpu_phase2_forward(q, k, v, selection, key_bias, pool: int, cell: int, scale: float):
    """Phase 2 by the kernel, no autograd: (out (B, h, Hq, Wq, Dv), lse (B, h, Hq, Wq)).

    q (B, h, Hq, Wq, D), k (B, h, Hk, Wk, D), v (B, h, Hk, Wk, Dv) CPU tensors of one dtype of
    :data:`ENTRY_POINTS`; selection (B, h, K, topk) int64 block indices; key_bias (B, h, Hk, Wk) or
    None; ``scale`` multiplies q·k (see :mod:`~gpa_lib.attention.scores`). lse in the input dtype.
    """
    lib = load_cpu_kernel()
    if q.dtype not in ENTRY_POINTS:
        raise TypeError(
            f"the fused CPU kernel is built for {tuple(ENTRY_POINTS)}, got dtype={q.dtype}"
        )
    q, k, v, selection = (t.detach().contiguous() for t in (q, k, v, selection))
    bias = key_bias.detach().to(q.dtype).contiguous() if key_bias is not None else None
    B, h, Hq, Wq, D = q.shape
    out = torch.empty(B, h, Hq, Wq, v.shape[-1], dtype=q.dtype)
    lse = torch.empty(B, h, Hq, Wq, dtype=q.dtype)
    threads = torch.get_num_threads()
    shape = _Shape(
        B * h, Hq, Wq, k.shape[2], k.shape[3], D, v.shape[-1], pool, cell, selection.shape[-1]
    )
    # One slice per thread: the cell's queries, its gathered keys and values, the scores.
    workspace = torch.empty(
        threads * lib.gpa_cpu_workspace_size(ctypes.byref(shape)), dtype=q.dtype
    )
    code = getattr(lib, ENTRY_POINTS[q.dtype])(
        ctypes.byref(shape),
        *(ctypes.c_void_p(t.data_ptr()) for t in (q, k, v, selection)),
        ctypes.c_void_p(bias.data_ptr() if bias is not None else 0),
        ctypes.c_double(scale),
        ctypes.c_void_p(out.data_ptr()),
        ctypes.c_void_p(lse.data_ptr()),
        ctypes.c_void_p(workspace.data_ptr()),
        ctypes.c_int(threads),
    )
    _check_phase2(code, "gpa_cpu_forward", shape)
    return out, lse


def cpu_select_key_blocks(q: torch.Tensor, k: torch.Tensor, problem) -> torch.Tensor:
    """Phase 1 by the kernel: (B, h, K, topk) block indices, best first, ties to the lower index.

    The pooling runs in torch (one pass over q and k); the scores of each cell against every key
    block, their softmax, the mean over the cell and the top-k run per cell in the kernel, so no
    score tensor larger than one cell's (cell/pool)^2 x Nb exists. No gradient.
    """
    from ...scores import key_bias, logit_scale
    from ...selection import low_resolution

    lib = load_cpu_kernel()
    with torch.no_grad():
        q_low, k_low = low_resolution(q, k, problem.pool, problem.cell)  # (B,h,K,r,D), (B,h,Nb,D)
        if q_low.dtype not in SELECT_ENTRY_POINTS:
            raise TypeError(
                f"the fused CPU kernel selects in {tuple(SELECT_ENTRY_POINTS)}, got {q_low.dtype}"
            )
        q_low = q_low.contiguous()
        k_low_t = k_low.transpose(-1, -2).contiguous()  # (B, h, D, Nb)
        bias = key_bias(k_low, problem.affinity)  # (B, h, Nb) or None
        bias = bias.to(q_low.dtype).contiguous() if bias is not None else None
        B, h, K, r, D = q_low.shape
        Nb = k_low.shape[2]
        threads = torch.get_num_threads()
        selection = torch.empty(B, h, K, problem.topk, dtype=torch.long)
        workspace = torch.empty(threads * (r + 1) * Nb, dtype=q_low.dtype)
        order = torch.empty(threads * Nb, dtype=torch.int32)
        sizes = (ctypes.c_int * 6)(B * h, K, r, D, Nb, problem.topk)
        code = getattr(lib, SELECT_ENTRY_POINTS[q_low.dtype])(
            sizes,
            ctypes.c_void_p(q_low.data_ptr()),
            ctypes.c_void_p(k_low_t.data_ptr()),
            ctypes.c_void_p(bias.data_ptr() if bias is not None else 0),
            ctypes.c_double(logit_scale(problem.affinity, D)),
            ctypes.c_void_p(selection.data_ptr()),
            ctypes.c_void_p(workspace.data_ptr()),
            ctypes.c_void_p(order.data_ptr()),
            ctypes.c_int(threads),
        )
    if code != 0:
        raise RuntimeError(
            f"{SELECT_ENTRY_POINTS[q_low.dtype]} failed with code {code} (bad sizes)"
        )
    return selection


def heads_per_thread(batch_heads: int, threads: int) -> bool:
    """Whether the backward pass splits whole heads among the threads (else one head's cells).

    A key block is read by many cells, so two threads adding to one key's gradient would race. When
    the heads divide evenly among the threads (or there are at least four per thread), each thread
    owns whole heads and adds straight into their gradients; otherwise each thread adds one head's
    cells into a private copy of that head's dk, dv and dbias (threads * Hk*Wk*(D+Dv+1) numbers),
    summed after the head.
    """
    return batch_heads % threads == 0 or batch_heads >= 4 * threads


def cpu_phase2_backward(
    dout, q, k, v, selection, key_bias, lse, pool: int, cell: int, scale: float
):
    """Phase 2's gradients by the kernel: (dq, dk, dv, dbias); dbias is None without a key bias.

    Inputs as :func:`cpu_phase2_forward`, with ``dout`` (B, h, Hq, Wq, Dv) the output gradient and
    ``lse`` (B, h, Hq, Wq) the forward's log-sum-exp. The weights are recomputed per cell from the
    lse; ``dbias`` (B, h, Hk, Wk) is the gradient of the additive key logit, which autograd carries
    back into k through :func:`~gpa_lib.attention.scores.key_bias`.
    """
    lib = load_cpu_kernel()
    if q.dtype not in BACKWARD_ENTRY_POINTS:
        raise TypeError(
            f"the fused CPU kernel is built for {tuple(BACKWARD_ENTRY_POINTS)}, got dtype={q.dtype}"
        )
    q, k, v, selection, lse = (t.detach().contiguous() for t in (q, k, v, selection, lse))
    dout = dout.detach().to(q.dtype).contiguous()
    bias = key_bias.detach().to(q.dtype).contiguous() if key_bias is not None else None
    B, h, Hq, Wq, D = q.shape
    Hk, Wk, Dv = k.shape[2], k.shape[3], v.shape[-1]
    dq = torch.empty_like(q)
    dk = torch.zeros_like(k)
    dv = torch.zeros_like(v)
    dbias = torch.zeros(B, h, Hk, Wk, dtype=q.dtype) if bias is not None else None
    threads = torch.get_num_threads()
    shape = _Shape(B * h, Hq, Wq, Hk, Wk, D, Dv, pool, cell, selection.shape[-1])
    workspace = torch.empty(
        threads * lib.gpa_cpu_backward_workspace_size(ctypes.byref(shape)), dtype=q.dtype
    )
    accum = (
        None
        if heads_per_thread(B * h, threads)
        else torch.empty(threads * Hk * Wk * (D + Dv + 1), dtype=q.dtype)
    )
    code = getattr(lib, BACKWARD_ENTRY_POINTS[q.dtype])(
        ctypes.byref(shape),
        *(ctypes.c_void_p(t.data_ptr()) for t in (q, k, v, selection)),
        ctypes.c_void_p(bias.data_ptr() if bias is not None else 0),
        ctypes.c_double(scale),
        *(ctypes.c_void_p(t.data_ptr()) for t in (dout, lse, dq, dk, dv)),
        ctypes.c_void_p(dbias.data_ptr() if dbias is not None else 0),
        ctypes.c_void_p(workspace.data_ptr()),
        ctypes.c_void_p(accum.data_ptr() if accum is not None else 0),
        ctypes.c_int(threads),
    )
    _check_phase2(code, "gpa_cpu_backward", shape)
    return dq, dk, dv, dbias


class _FusedCPUPhase2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, selection, problem):
        from ...scores import logit_scale

        scale = logit_scale(problem.affinity, problem.head_dim)
        out, lse = cpu_phase2_forward(q, k, v, selection, bias, problem.pool, problem.cell, scale)
        ctx.save_for_backward(q, k, v, bias, selection, lse)
        ctx.problem, ctx.scale = problem, scale
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout):
        q, k, v, bias, selection, lse = ctx.saved_tensors
        p = ctx.problem
        dq, dk, dv, dbias = cpu_phase2_backward(
            dout, q, k, v, selection, bias, lse, p.pool, p.cell, ctx.scale
        )
        needs = ctx.needs_input_grad
        return (
            dq if needs[0] else None,
            dk if needs[1] else None,
            dv if needs[2] else None,
            dbias if needs[3] else None,
            None,
            None,
        )


def fused_cpu_phase2(q, k, v, selection, problem) -> torch.Tensor:
    """Differentiable phase 2 by the fused CPU kernel: (B, h, Hq, Wq, Dv); see the module docstring."""
    from ...scores import key_bias

    bias = key_bias(k, problem.affinity)  # (B, h, Hk, Wk) or None; autograd carries dbias into k
    return _FusedCPUPhase2.apply(q, k, v, bias, selection, problem)
