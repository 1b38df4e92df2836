"""Correctness evidence for the fused kernel that needs no GPU: the CUDA source run by the host emulation
(``csrc/gpa_emulation.h``) against the float64 reference, by FlashAttention's test rule.

The rule (flash-attention ``tests/test_flash_attn.py``): the kernel's error against an exact (float64)
result may be at most twice the error of the PyTorch reference run in the same precision, plus a
rounding floor of twice the error of merely rounding the exact result to that precision.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .backends.reference import attend_selected
from .problem import check_inputs


def flash_rule(
    ours: torch.Tensor, same_precision: torch.Tensor, exact: torch.Tensor, dtype: torch.dtype
) -> dict[str, Any]:
    """Max abs errors of ``ours`` and of the same-precision reference against ``exact``, and the verdict."""
    exact = exact.double()
    err = (ours.double() - exact).abs().max().item()
    ref_err = (same_precision.double() - exact).abs().max().item()
    floor = 2 * (exact.to(dtype).double() - exact).abs().max().item() + 1e-6
    bound = 2 * ref_err + floor
    return {
        "kernel_error": err,
        "reference_error": ref_err,
        "floor": floor,
        "bound": bound,
        "ok": err <= bound,
    }


def emulated_kernel_report(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    selection: torch.Tensor,
    *,
    pool: int,
    cell: int,
    affinity: str = "dot",
    late_copies: bool = False,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """Forward and dq, dk, dv of the emulated kernel against the reference, one row per tensor.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv) in the kernel's dtype (bf16, fp16
    or fp32, CPU); selection: (B, h, Hq/cell, Wq/cell, topk) block indices. ``seed`` draws the output
    gradient. Needs a host C++ compiler (see :func:`gpa_lib.attention.kernel_emulation.compiler`).
    """
    from . import kernel_emulation

    dtype, dim = q.dtype, q.shape[-1]
    euclid = affinity == "euclid"
    scale = (2.0 if euclid else 1.0) / math.sqrt(dim)
    bias64 = -k.double().square().sum(-1) / math.sqrt(dim) if euclid else None  # (B, h, Hk, Wk)
    bias = None if bias64 is None else bias64.float()
    out, lse = kernel_emulation.emulated_forward(
        q, k, v, selection, bias, pool, cell, scale, late_copies=late_copies
    )
    dout = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    dq, dk, dv, dbias = kernel_emulation.emulated_backward(
        dout, q, k, v, out, lse, selection, bias, pool, cell, scale, late_copies=late_copies
    )
    if euclid:  # chain rule through key_bias = -|k|^2 / sqrt(D), as autograd does on the GPU
        dk = dk.double() + dbias.double().unsqueeze(-1) * (-2.0 / math.sqrt(dim)) * k.double()
    problem = check_inputs(
        q, k, v, pool=pool, cell=cell, topk=selection.shape[-1], affinity=affinity
    )
    reference = {}
    for label, precision in (("exact", torch.float64), ("same", dtype)):
        tensors = [t.to(precision).requires_grad_() for t in (q, k, v)]
        ref = attend_selected(*tensors, selection.flatten(2, 3), problem)
        reference[label] = (ref, *torch.autograd.grad(ref, tensors, dout.to(precision)))
    rows = []
    for i, (name, ours) in enumerate(
        zip(("out", "dq", "dk", "dv"), (out, dq, dk, dv), strict=True)
    ):
        rows.append(
            {"tensor": name, **flash_rule(ours, reference["same"][i], reference["exact"][i], dtype)}
        )
    return rows
