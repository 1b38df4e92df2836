"""Exact attention of every query to every key, in its two forms.

:func:`sdpa_attention` is fused ``scaled_dot_product_attention`` (extra memory linear in the tokens);
:func:`materialised_attention` forms the (B, h, Nq, Nk) score matrix explicitly, optionally masked,
the textbook form whose memory the benchmarks quote and the masked backend's core. The public door is
:func:`gpa_lib.attention.dense_attention`, which checks its inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .scores import key_bias, logit_dtype, logit_scale


def sdpa_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, affinity: str = "dot"
) -> torch.Tensor:
    """Exact attention of every query to every key with ``F.scaled_dot_product_attention``.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv) -> (B, h, Hq, Wq, Dv). Inputs are
    not checked here (see :func:`gpa_lib.attention.dense_attention`).
    """
    B, h, Hq, Wq, D = q.shape
    Dv = v.shape[-1]
    if logit_dtype(q.dtype, affinity) != q.dtype:  # float16 euclid: in float32 (see logit_dtype)
        work = logit_dtype(q.dtype, affinity)
        return sdpa_attention(q.to(work), k.to(work), v.to(work), affinity).to(q.dtype)
    # Non-contiguous inputs (e.g. permuted conv features) silently send SDPA to its math kernel, which
    # forms the whole score matrix; a copy into token-major layout keeps the fused kernel.
    q_tok, k_tok, v_tok = (t.flatten(2, 3).contiguous() for t in (q, k, v))  # (B, h, N, D or Dv)
    # The fused CPU kernels need one head dim for q, k and v; zero padding changes no dot product.
    width = max(D, Dv)
    if D < width:
        q_tok, k_tok = F.pad(q_tok, (0, width - D)), F.pad(k_tok, (0, width - D))  # (B, h, N, Dv)
    if Dv < width:
        v_tok = F.pad(v_tok, (0, width - Dv))  # (B, h, Nk, D)
    bias = key_bias(k.flatten(2, 3), affinity)  # (B, h, Nk) or None, from the unpadded keys
    out = F.scaled_dot_product_attention(
        q_tok,
        k_tok,
        v_tok,
        attn_mask=None if bias is None else bias.unsqueeze(-2),  # (B, h, 1, Nk)
        scale=logit_scale(affinity, D),
    )  # (B, h, Nq, width)
    return out[..., :Dv].unflatten(2, (Hq, Wq))  # (B, h, Hq, Wq, Dv)


def materialised_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    affinity: str = "dot",
    blocked: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attention through an explicit (B, h, Nq, Nk) score matrix, optionally masked.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv); ``blocked``: bool
    (B, h, Nq, Nk), True where a query may not see a key. Returns (B, h, Hq, Wq, Dv).
    """
    B, h, Hq, Wq, D = q.shape
    work = logit_dtype(q.dtype, affinity)
    q_tok = q.flatten(2, 3).to(work) * logit_scale(affinity, D)  # (B, h, Nq, D)
    k_tok, v_tok = k.flatten(2, 3).to(work), v.flatten(2, 3)  # (B, h, Nk, D), (B, h, Nk, Dv)
    scores = q_tok @ k_tok.transpose(-1, -2)  # (B, h, Nq, Nk)
    bias = key_bias(k_tok, affinity)  # (B, h, Nk) or None
    if bias is not None:
        scores = scores + bias.unsqueeze(-2)  # (B, h, Nq, Nk)
    if blocked is not None:
        scores = scores.masked_fill(blocked, float("-inf"))  # (B, h, Nq, Nk)
    attn = torch.softmax(scores, dim=-1).to(v_tok.dtype)  # (B, h, Nq, Nk)
    del scores
    return (attn @ v_tok).unflatten(2, (Hq, Wq))  # (B, h, Hq, Wq, Dv)
