"""The two affinities as a scale on q·k and an additive per-key bias: the one home of that identity.

``"dot"``: s(q, k) = q·k/√D. ``"euclid"``: s(q, k) = −‖q−k‖²/√D = (2 q·k − ‖k‖²)/√D − ‖q‖²/√D, and the
last term is constant along the softmax axis (over keys), so it cancels. Every implementation (the
selection, the reference and masked backends, SDPA, FlexAttention, the fused kernel and the
diagnostics) therefore computes ``logit_scale * q·k + key_bias`` and never forms ‖q−k‖².
"""

from __future__ import annotations

import math

import torch


def logit_dtype(dtype: torch.dtype, affinity: str) -> torch.dtype:
    """The dtype the torch paths compute logits in: float32 for ``"euclid"`` on float16 inputs.

    The decomposition adds two large terms of opposite sign (2 q·k and −‖k‖²), and float16 overflows
    at 65504: keys of norm above about 256 would give inf − inf. bfloat16 has float32's range, and
    ``"dot"`` logits overflow only where the softmax itself would (|q·k|/√D > 65504), so both stay.
    The fused kernel accumulates in float32 anyway.
    """
    if affinity == "euclid" and dtype == torch.float16:
        return torch.float32
    return dtype


def logit_scale(affinity: str, head_dim: int) -> float:
    """The factor on q·k: 1/√D for ``"dot"``, 2/√D for ``"euclid"``."""
    return (2.0 if affinity == "euclid" else 1.0) / math.sqrt(head_dim)


def key_bias(
    k: torch.Tensor, affinity: str, *, dtype: torch.dtype | None = None
) -> torch.Tensor | None:
    """The additive per-key logit, −‖k‖²/√D for ``"euclid"``; ``None`` for ``"dot"``.

    k: (..., N, D) or any (..., D) layout -> (...,) without the channel axis, in ``dtype`` (default:
    :func:`logit_dtype` of k's dtype). Broadcast it over the query axis: ``scores + bias.unsqueeze(-2)``.
    """
    if affinity != "euclid":
        return None
    k = k.to(logit_dtype(k.dtype, affinity) if dtype is None else dtype)
    return k.square().sum(-1).mul(-1.0 / math.sqrt(k.shape[-1]))
