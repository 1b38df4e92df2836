"""Building blocks of the pose generators: convolution blocks and the two cross-attention layers.

:func:`attend` is the one door to attention: the library's switch
:func:`gpa_lib.attention.dense_or_gpa` between ``"dense"`` (exact; fused SDPA or a materialised score
matrix) and ``"gpa"`` (:func:`gpa_lib.attention.gpa_attention`), with the generator's settings. :class:`FeatureAttention` copies
source features into the decoder; :class:`PixelCopy` copies source pixels (the values are the RGB
pixels themselves, unprojected, so that what it copies is exactly what the source shows).
:func:`capturing_layers` hands the q, k, v of every attention call of a model to a list (for the
accuracy, memory and timing studies).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from gpa_lib.attention import dense_or_gpa, from_heads, to_heads
from gpa_lib.pose.config import ModelConfig


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kind: str,
    config: ModelConfig,
    *,
    dense_impl: str | None = None,
    return_selection: bool = False,
):
    """:func:`gpa_lib.attention.dense_or_gpa` with the settings of ``config``: attention of queries
    q (B, h, Hq, Wq, D) to keys k (B, h, Hk, Wk, D) and values v (B, h, Hk, Wk, Dv).

    ``kind`` is ``"dense"`` or ``"gpa"`` (with ``config.pool``, ``cell``, ``topk`` in pixels of the
    grids); ``dense_impl`` overrides ``config.dense_impl``. Returns (B, h, Hq, Wq, Dv) and, with
    ``return_selection``, GPA's selection (B, h, Hq/cell, Wq/cell, topk) or ``None`` for dense.
    """
    return dense_or_gpa(
        q,
        k,
        v,
        kind,
        pool=config.pool,
        cell=config.cell,
        topk=config.topk,
        affinity=config.affinity,
        backend=config.backend,
        dense_impl=config.dense_impl if dense_impl is None else dense_impl,
        return_selection=return_selection,
    )


class ConvBlock(nn.Sequential):
    """3x3 convolution (stride 1 or 2), GroupNorm and SiLU: (B, C_in, H, W) -> (B, C_out, H/s, W/s)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        groups = 4 if out_channels % 4 == 0 else 1
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
            nn.GroupNorm(groups, out_channels),
            nn.SiLU(),
        )


class ResBlock(nn.Module):
    """Two ConvBlocks with a residual connection, channels and size unchanged."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(ConvBlock(channels, channels), ConvBlock(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def pad_inputs(source, source_pose, target_pose, multiple: int):
    """Pad the right and bottom of the inputs to multiples of ``multiple`` pixels.

    Images repeat their edge pixels, pose maps get zeros. Returns the three tensors and the original
    (H, W), to crop the output back with ``out[..., :H, :W]``.
    """
    H, W = source.shape[-2:]
    pad_h, pad_w = -H % multiple, -W % multiple
    if pad_h or pad_w:
        source = F.pad(source, (0, pad_w, 0, pad_h), mode="replicate")
        source_pose = F.pad(source_pose, (0, pad_w, 0, pad_h))
        target_pose = F.pad(target_pose, (0, pad_w, 0, pad_h))
    return source, source_pose, target_pose, (H, W)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling: (B, C, H, W) -> (B, C, 2H, 2W)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class _Capturing(nn.Module):
    """Base of the attention layers: queries and keys, optionally with the shared limb metric.

    With ``config.limb_head_dim`` > 0 and limb maps given, every head's queries and keys get
    ``limb_head_dim`` more channels, ``R @ limbs_target`` and ``R @ limbs_source`` with one learned
    ``R`` for both: their dot product is a learned positive semi-definite similarity of body
    locations. Layers can also hand their q, k, v to a list (for memory measurements).
    """

    capture: list | None = None
    kind: str = "dense"

    def _init_qk(self, query_channels: int, key_channels: int, limb_channels: int) -> None:
        self.limb_dim = self.config.limb_head_dim if limb_channels else 0
        self.to_q = nn.Conv2d(query_channels, self.heads * self.head_dim, 1)
        self.to_k = nn.Conv2d(key_channels, self.heads * self.head_dim, 1)
        self.limb_proj = None
        if self.limb_dim:
            self.limb_proj = nn.Conv2d(limb_channels, self.heads * self.limb_dim, 1, bias=False)
            with torch.no_grad():
                self.limb_proj.weight.mul_(self.config.limb_init_gain)
        self.log_temperature = None
        if self.config.qk_norm:
            start = math.log(self.config.init_temperature)
            self.log_temperature = nn.Parameter(torch.full((self.heads, 1, 1, 1), start))

    def _qk(self, query, key, query_limbs, key_limbs):
        q = to_heads(self.to_q(query), self.heads)  # (B, h, H, W, D)
        k = to_heads(self.to_k(key), self.heads)  # (B, h, Hs, Ws, D)
        if self.limb_proj is not None:
            q_limb = to_heads(self.limb_proj(query_limbs), self.heads)  # (B, h, H, W, Dl)
            k_limb = to_heads(self.limb_proj(key_limbs), self.heads)  # (B, h, Hs, Ws, Dl)
            q = torch.cat([q, q_limb], dim=-1)  # (B, h, H, W, D + Dl)
            k = torch.cat([k, k_limb], dim=-1)  # (B, h, Hs, Ws, D + Dl)
        if self.log_temperature is not None:
            # Attention divides the logits by sqrt(D'): scale q so that they are temperature * cos.
            temperature = self.log_temperature.clamp(max=math.log(100.0)).exp()  # (h, 1, 1, 1)
            q = F.normalize(q, dim=-1) * (temperature * math.sqrt(q.shape[-1]))
            k = F.normalize(k, dim=-1)
        return q, k

    def _capture(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        if self.capture is not None:
            self.capture.append((self, q.detach(), k.detach(), v.detach()))


def attention_layers(model: nn.Module) -> list[_Capturing]:
    """The attention layers of ``model`` (:class:`FeatureAttention` and :class:`PixelCopy`), in
    module order."""
    return [m for m in model.modules() if isinstance(m, _Capturing)]


@contextlib.contextmanager
def capturing_layers(model: nn.Module) -> Iterator[list[tuple]]:
    """Within the block, every attention call of ``model`` appends ``(layer, q, k, v)`` (detached,
    as attention receives them: q (B, h, Hq, Wq, D), k and v (B, h, Hk, Wk, D or C)) to the yielded
    list, in call order; the layers stop capturing on leaving, also on an error.

    ``with capturing_layers(model) as calls: model(...)`` is the one way the studies read q, k, v.
    """
    layers = attention_layers(model)
    calls: list[tuple] = []
    for layer in layers:
        layer.capture = calls
    try:
        yield calls
    finally:
        for layer in layers:
            layer.capture = None


class FeatureAttention(_Capturing):
    """Cross-attention that adds copied source features to decoder features.

    ``x + proj(attention(q(query), k(key), v(value)))`` with x (B, C, H, W) the decoder features,
    ``query`` (B, C_q, H, W), ``key`` (B, C_k, Hs, Ws) and ``value`` (B, C_v, Hs, Ws) on the source grid;
    ``query_limbs`` (B, L, H, W) and ``key_limbs`` (B, L, Hs, Ws) feed the shared limb metric.
    """

    def __init__(
        self,
        channels: int,
        query_channels: int,
        key_channels: int,
        value_channels: int,
        kind: str,
        config: ModelConfig,
        limb_channels: int = 0,
    ):
        super().__init__()
        self.kind, self.config = kind, config
        self.heads, self.head_dim = config.heads, config.head_dim
        self._init_qk(query_channels, key_channels, limb_channels)
        self.to_v = nn.Conv2d(value_channels, self.heads * self.head_dim, 1)
        self.proj = nn.Conv2d(self.heads * self.head_dim, channels, 1)

    def forward(
        self,
        x,
        query,
        key,
        value,
        query_limbs=None,
        key_limbs=None,
        *,
        return_selection: bool = False,
    ):
        q, k = self._qk(query, key, query_limbs, key_limbs)  # (B, h, H, W, D'), (B, h, Hs, Ws, D')
        v = to_heads(self.to_v(value), self.heads)  # (B, h, Hs, Ws, D)
        self._capture(q, k, v)
        out, selection = attend(q, k, v, self.kind, self.config, return_selection=True)
        x = x + self.proj(from_heads(out))  # (B, C, H, W)
        return (x, selection) if return_selection else x


class PixelCopy(_Capturing):
    """Full-resolution attention whose values are the source pixels: it returns copied RGB per head.

    query (B, C_q, H, W), key (B, C_k, Hs, Ws), source (B, 3, Hs, Ws) -> (B, h, 3, H, W) copied pixels.
    """

    def __init__(
        self,
        query_channels: int,
        key_channels: int,
        kind: str,
        config: ModelConfig,
        limb_channels: int = 0,
    ):
        super().__init__()
        self.kind, self.config = kind, config
        self.heads, self.head_dim = config.copy_heads, config.copy_head_dim
        self._init_qk(query_channels, key_channels, limb_channels)

    def forward(
        self,
        query,
        key,
        source,
        query_limbs=None,
        key_limbs=None,
        *,
        return_selection: bool = False,
    ):
        q, k = self._qk(query, key, query_limbs, key_limbs)  # (B, h, H, W, D'), (B, h, Hs, Ws, D')
        B, C, Hs, Ws = source.shape
        v = (
            source.permute(0, 2, 3, 1)[:, None].expand(B, self.heads, Hs, Ws, C).contiguous()
        )  # (B, h, Hs, Ws, 3)
        self._capture(q, k, v)
        out, selection = attend(q, k, v, self.kind, self.config, return_selection=True)
        copied = out.permute(0, 1, 4, 2, 3)  # (B, h, 3, H, W)
        return (copied, selection) if return_selection else copied
