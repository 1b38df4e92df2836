"""``torch.library`` custom ops of the fused GPA backend, so that ``torch.compile`` traces it whole.

- ``gpa_lib::gpa_select(q, k, pool, cell, topk, affinity, chunk_elements) -> selection``: phase 1
  (no gradient). On CUDA tensors that :func:`~gpa_lib.attention.kernel.cuda.phase1.fused_phase1_reason`
  accepts it runs the fused phase-1 kernel (``csrc/gpa_phase1.cuh``, split bf16 products);
  everywhere else the chunked torch selection of
  :func:`~gpa_lib.attention.selection.select_key_blocks`, the oracle. One opaque op either way,
  because its tie handling is data-dependent.
- ``gpa_lib::gpa_phase2_fwd(q, k, v, selection, key_bias, pool, cell, scale) -> (out, lse)`` and
  ``gpa_lib::gpa_phase2_bwd(dout, q, k, v, out, lse, selection, key_bias, pool, cell, scale)
  -> (dq, dk, dv, dkey_bias)``: phase 2. On CUDA tensors of a supported dtype and head dim they run
  the fused kernel (``csrc/``); everywhere else the torch formulas of
  :mod:`~gpa_lib.attention.kernel.cuda.reference_math`, the same math.

Each op has a fake (meta) implementation; ``gpa_phase2_fwd`` has its autograd formula attached
through ``gpa_phase2_bwd``. :func:`phase2_fused` and :func:`gpa_attention_fused` compose them
into GPA.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...problem import check_inputs
from ...scores import key_bias, logit_scale
from ...selection import select_key_blocks
from .phase1 import fused_phase1_reason, select_key_blocks_fused
from .reference_math import phase2_backward_math, phase2_forward_math, selection_csr

#: dtypes and head dims the fused kernels are instantiated for (csrc/gpa_phase2.cu).
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
KERNEL_HEAD_DIMS = (16, 32, 64, 128)
#: Phase-1 score chunk on a GPU: 2**26 float32 entries (256 MiB), a few hundred chunks at 1024^2.
CUDA_PHASE1_CHUNK_ELEMENTS = 2**26


def _lse_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def kernel_supports(q: Tensor, v: Tensor) -> bool:
    """True when the compiled kernels cover q's dtype and head dim (and Dv equals D)."""
    return (
        q.dtype in KERNEL_DTYPES and q.shape[-1] in KERNEL_HEAD_DIMS and v.shape[-1] == q.shape[-1]
    )


@torch.library.custom_op("gpa_lib::gpa_select", mutates_args=())
def gpa_select(
    q: Tensor, k: Tensor, pool: int, cell: int, topk: int, affinity: str, chunk_elements: int
) -> Tensor:
    """Phase 1: LongTensor (B, h, Hq/cell, Wq/cell, topk) of key blocks, best first."""
    return select_key_blocks(
        q, k, pool=pool, cell=cell, topk=topk, affinity=affinity, chunk_elements=chunk_elements
    )


@gpa_select.register_kernel("cuda")
def _gpa_select_cuda(q, k, pool, cell, topk, affinity, chunk_elements):
    problem = check_inputs(q, k, k, pool=pool, cell=cell, topk=topk, affinity=affinity)
    if fused_phase1_reason(problem) is not None:
        return select_key_blocks(
            q, k, pool=pool, cell=cell, topk=topk, affinity=affinity, chunk_elements=chunk_elements
        )
    return select_key_blocks_fused(q, k, problem).unflatten(2, problem.cell_grid)


@gpa_select.register_fake
def _gpa_select_fake(q, k, pool, cell, topk, affinity, chunk_elements):
    B, h, Hq, Wq, _ = q.shape
    return q.new_empty((B, h, Hq // cell, Wq // cell, topk), dtype=torch.long)


@torch.library.custom_op("gpa_lib::gpa_phase2_fwd", mutates_args=())
def gpa_phase2_fwd(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    selection: Tensor,
    key_bias: Tensor | None,
    pool: int,
    cell: int,
    scale: float,
) -> tuple[Tensor, Tensor]:
    """Phase 2: out (B, h, Hq, Wq, Dv) and lse (B, h, Hq, Wq), scores ``scale * q.k + key_bias``."""
    return phase2_forward_math(q, k, v, selection, key_bias, pool, cell, scale)


@gpa_phase2_fwd.register_kernel("cuda")
def _gpa_phase2_fwd_cuda(q, k, v, selection, key_bias, pool, cell, scale):
    if not kernel_supports(q, v):
        return phase2_forward_math(q, k, v, selection, key_bias, pool, cell, scale)
    from .build import load_extension

    out, lse = load_extension().phase2_fwd(
        q, k, v, selection, _bias_f32(key_bias), pool, cell, scale
    )
    return out, lse


@gpa_phase2_fwd.register_fake
def _gpa_phase2_fwd_fake(q, k, v, selection, key_bias, pool, cell, scale):
    B, h, Hq, Wq, _ = q.shape
    out = v.new_empty((B, h, Hq, Wq, v.shape[-1]))
    lse = q.new_empty((B, h, Hq, Wq), dtype=_lse_dtype(q.dtype))
    return out, lse


@torch.library.custom_op("gpa_lib::gpa_phase2_bwd", mutates_args=())
def gpa_phase2_bwd(
    dout: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    selection: Tensor,
    key_bias: Tensor | None,
    pool: int,
    cell: int,
    scale: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of phase 2 from the saved lse: dq, dk, dv, and d(key_bias) (empty without a bias)."""
    dq, dk, dv, dbias = phase2_backward_math(
        dout, q, k, v, out, lse, selection, key_bias, pool, cell, scale
    )
    return dq, dk, dv, dbias if dbias is not None else lse.new_empty((0,))


@gpa_phase2_bwd.register_kernel("cuda")
def _gpa_phase2_bwd_cuda(dout, q, k, v, out, lse, selection, key_bias, pool, cell, scale):
    if not kernel_supports(q, v):
        dq, dk, dv, dbias = phase2_backward_math(
            dout, q, k, v, out, lse, selection, key_bias, pool, cell, scale
        )
        return dq, dk, dv, dbias if dbias is not None else lse.new_empty((0,))
    from .build import load_extension

    n_blocks = (k.shape[2] // pool) * (k.shape[3] // pool)
    offsets, cells = selection_csr(selection, n_blocks)  # deterministic inverse map
    dq, dk, dv, dbias = load_extension().phase2_bwd(
        dout.to(q.dtype),
        q,
        k,
        v,
        out,
        lse.float(),
        selection,
        _bias_f32(key_bias),
        offsets,
        cells,
        pool,
        cell,
        scale,
    )
    if key_bias is not None and dbias.dtype != key_bias.dtype:
        dbias = dbias.to(key_bias.dtype)
    return dq, dk, dv, dbias


@gpa_phase2_bwd.register_fake
def _gpa_phase2_bwd_fake(dout, q, k, v, out, lse, selection, key_bias, pool, cell, scale):
    dbias = key_bias.new_empty(key_bias.shape) if key_bias is not None else lse.new_empty((0,))
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape), dbias


def _bias_f32(key_bias: Tensor | None) -> Tensor | None:
    return None if key_bias is None else key_bias.float()


def _setup_context(ctx, inputs, output):
    q, k, v, selection, key_bias, pool, cell, scale = inputs
    out, lse = output
    ctx.mark_non_differentiable(lse)
    ctx.save_for_backward(q, k, v, selection, key_bias, out, lse)
    ctx.pool, ctx.cell, ctx.scale = pool, cell, scale
    ctx.has_bias = key_bias is not None


def _backward(ctx, dout, _dlse):
    q, k, v, selection, key_bias, out, lse = ctx.saved_tensors
    dq, dk, dv, dbias = gpa_phase2_bwd(
        dout.contiguous(), q, k, v, out, lse, selection, key_bias, ctx.pool, ctx.cell, ctx.scale
    )
    return dq, dk, dv, None, dbias if ctx.has_bias else None, None, None, None


gpa_phase2_fwd.register_autograd(_backward, setup_context=_setup_context)


def phase2_fused(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    selection: Tensor,
    *,
    pool: int,
    cell: int,
    affinity: str = "dot",
) -> Tensor:
    """Phase 2 through ``gpa_lib::gpa_phase2_fwd`` for a selection (B, h, Hq/cell, Wq/cell, topk).

    The euclid affinity runs as a doubled scale and the per-key bias -|k|^2/sqrt(D) (its gradient
    reaches k through autograd): -|q-k|^2/sqrt(D) = (2 q.k - |k|^2)/sqrt(D) - |q|^2/sqrt(D), and the
    last term is constant along the softmax axis. Returns out (B, h, Hq, Wq, Dv).
    """
    scale = logit_scale(affinity, q.shape[-1])
    bias = key_bias(k, affinity, dtype=_lse_dtype(k.dtype))  # (B, h, Hk, Wk) or None
    out, _ = torch.ops.gpa_lib.gpa_phase2_fwd(q, k, v, selection, bias, pool, cell, scale)
    return out


def gpa_attention_fused(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    pool: int,
    cell: int,
    topk: int,
    affinity: str = "dot",
    chunk_elements: int = CUDA_PHASE1_CHUNK_ELEMENTS,
) -> tuple[Tensor, Tensor]:
    """GPA through the custom ops: (out (B, h, Hq, Wq, Dv), selection (B, h, Hq/cell, Wq/cell, topk)).

    Layouts and units as :func:`gpa_lib.attention.gpa_attention`; inputs are assumed checked.
    Traces under ``torch.compile(fullgraph=True)``.
    """
    selection = torch.ops.gpa_lib.gpa_select(
        q.detach(), k.detach(), pool, cell, topk, affinity, chunk_elements
    )  # (B, h, Hq/c, Wq/c, k)
    return phase2_fused(q, k, v, selection, pool=pool, cell=cell, affinity=affinity), selection
