"""``GPA``: a conv-net layer on (B, C, H, W) feature maps that calls :func:`gpa_attention`, and
:func:`dense_or_gpa`, the one switch between exact dense attention and GPA that every layer of the
package (this one, the pose generators' attention layers) goes through.

Queries come from ``x``; keys and values from ``context`` (``x`` itself when omitted), which may have
another size and channel count: cross-attention from a target image to a source image. The layer only
projects with 1x1 convolutions, reshapes to heads and adds the projected attention output to ``x``.
"""

from __future__ import annotations

import torch
from torch import nn

from .functional import dense_attention, gpa_attention
from .grid import from_heads, to_heads
from .problem import Hierarchy, check_affinity, check_hierarchy_type

#: The attention a layer can run: exact dense attention or GPA.
ATTENTION_KINDS = ("dense", "gpa")


def dense_or_gpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kind: str,
    *,
    pool: int,
    cell: int,
    topk: int,
    affinity: str = "dot",
    backend: str | None = None,
    dense_impl: str = "fused",
    return_selection: bool = False,
    hierarchy: Hierarchy | None = None,
):
    """Attention of queries q (B, h, Hq, Wq, D) to keys k (B, h, Hk, Wk, D) and values
    v (B, h, Hk, Wk, Dv): exact :func:`dense_attention` (``kind="dense"``, with ``dense_impl``) or
    :func:`gpa_attention` (``kind="gpa"``, with ``pool``, ``cell`` in pixels of the grids, ``topk`` in
    key blocks, ``backend`` and ``hierarchy``). Returns (B, h, Hq, Wq, Dv) and, with ``return_selection``, GPA's
    selection (B, h, Hq/cell, Wq/cell, topk), or ``None`` for dense."""
    if kind == "gpa":
        return gpa_attention(
            q,
            k,
            v,
            pool=pool,
            cell=cell,
            topk=topk,
            affinity=affinity,
            backend=backend,
            return_selection=return_selection,
            hierarchy=hierarchy,
        )  # (B, h, Hq, Wq, Dv) [, selection]
    if kind == "dense":
        out = dense_attention(q, k, v, affinity=affinity, impl=dense_impl)  # (B, h, Hq, Wq, Dv)
        return (out, None) if return_selection else out
    raise ValueError(f"kind={kind!r} must be one of {ATTENTION_KINDS}")


class GPA(nn.Module):
    """Residual Grid Partitioned Attention layer: ``x + proj(attention(q(x), k(context), v(context)))``.

    Args:
        channels: C, channels of ``x`` and of the output.
        context_channels: channels of ``context`` (default ``channels``).
        heads: attention heads h.
        head_dim: D, query/key channels per head.
        value_dim: Dv, value channels per head (default ``head_dim``).
        pool, cell, topk, affinity, backend, hierarchy: as in :func:`gpa_attention` (sizes in
            pixels of the feature map, ``topk`` in key blocks; ``hierarchy`` the optional
            super-blocks-first phase 1).
        dense_below: query maps with at most this many pixels use exact dense attention instead, as
            the authors' layer does below its ``SHIERARCHY`` size (0: never).

    The authors' layer fuses with ``concat([x, att]) -> 1x1 conv``; this one adds a 1x1 projection of
    the attention output to ``x``, the common residual form.
    """

    def __init__(
        self,
        channels: int,
        *,
        context_channels: int | None = None,
        heads: int = 1,
        head_dim: int = 32,
        value_dim: int | None = None,
        pool: int = 4,
        cell: int = 8,
        topk: int = 8,
        affinity: str = "dot",
        backend: str | None = None,
        dense_below: int = 0,
        hierarchy: Hierarchy | None = None,
    ):
        super().__init__()
        check_affinity(affinity)
        for name, value in (("channels", channels), ("heads", heads), ("head_dim", head_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive int")
        context_channels = channels if context_channels is None else context_channels
        value_dim = head_dim if value_dim is None else value_dim
        self.heads, self.head_dim, self.value_dim = heads, head_dim, value_dim
        self.pool, self.cell, self.topk = pool, cell, topk
        self.affinity, self.backend, self.dense_below = affinity, backend, dense_below
        self.hierarchy = check_hierarchy_type(hierarchy)
        self.to_q = nn.Conv2d(channels, heads * head_dim, kernel_size=1)
        self.to_k = nn.Conv2d(context_channels, heads * head_dim, kernel_size=1)
        self.to_v = nn.Conv2d(context_channels, heads * value_dim, kernel_size=1)
        self.proj = nn.Conv2d(heads * value_dim, channels, kernel_size=1)

    def project(self, x: torch.Tensor, context: torch.Tensor | None = None):
        """Queries, keys and values per head: (B, h, H, W, D), (B, h, Hc, Wc, D), (B, h, Hc, Wc, Dv)."""
        context = x if context is None else context
        q = to_heads(self.to_q(x), self.heads)  # (B, h, H, W, D)
        k = to_heads(self.to_k(context), self.heads)  # (B, h, Hc, Wc, D)
        v = to_heads(self.to_v(context), self.heads)  # (B, h, Hc, Wc, Dv)
        return q, k, v

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        return_selection: bool = False,
    ):
        """x: (B, C, H, W), context: (B, C_ctx, Hc, Wc) or None -> (B, C, H, W) [, selection]."""
        q, k, v = self.project(x, context)
        H, W = q.shape[2:4]
        att, selection = dense_or_gpa(
            q,
            k,
            v,
            "dense" if H * W <= self.dense_below else "gpa",
            pool=self.pool,
            cell=self.cell,
            topk=self.topk,
            affinity=self.affinity,
            backend=self.backend,
            return_selection=True,
            hierarchy=self.hierarchy,
        )  # (B, h, H, W, Dv), selection or None
        out = x + self.proj(from_heads(att))  # (B, C, H, W)
        return (out, selection) if return_selection else out

    def extra_repr(self) -> str:
        return (
            f"heads={self.heads}, head_dim={self.head_dim}, value_dim={self.value_dim}, pool={self.pool}, "
            f"cell={self.cell}, topk={self.topk}, affinity={self.affinity!r}, backend={self.backend!r}"
            + ("" if self.hierarchy is None else f", hierarchy={self.hierarchy}")
        )
