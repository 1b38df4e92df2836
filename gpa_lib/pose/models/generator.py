"""The attention-copying pose generator.

Three networks and a blend (scales s = 0 (full resolution), 1 (1/2), ..., S-1 (coarsest)):

- a **pose network** (a small U-Net over the 18 pose maps, shared by the source and the target pose)
  gives pose features ``p_s`` with whole-body context at every scale;
- an **appearance encoder** over (source image, source pose) gives a feature pyramid ``e_s``;
- a **decoder** driven by the target pose starts at the coarsest scale from the target's pose
  features and, at every scale with attention, lets its features (with the target pose features) query
  the source: keys from (``e_s``, source pose features), values ``e_s``. It adds what it copies to its
  own features, then upsamples. ``config.attention[s]`` picks ``"dense"``, ``"gpa"`` or ``"none"``.
- at full resolution (``s = 0``) the attention copies **source pixels** instead of features, and a
  learned mask blends them with the pixels the decoder generates:
  ``out = sum_h m_h * copied_h + m_gen * generated`` with ``(m_gen, m_1, ..., m_h)`` a softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gpa_lib.pose.config import ModelConfig
from gpa_lib.pose.models.blocks import (
    ConvBlock,
    FeatureAttention,
    PixelCopy,
    ResBlock,
    pad_inputs,
    upsample,
)
from gpa_lib.pose.models.pose_encoding import N_CHANNELS, limb_maps


class PoseNet(nn.Module):
    """A U-Net over pose maps: (B, 18, H, W) -> [p_0 (B, P_0, H, W), ..., p_{S-1} (B, P_{S-1}, H/2^(S-1), ...)]."""

    def __init__(self, in_channels: int, widths: tuple[int, ...]):
        super().__init__()
        self.down = nn.ModuleList(
            [ConvBlock(in_channels, widths[0])]
            + [ConvBlock(widths[s - 1], widths[s], stride=2) for s in range(1, len(widths))]
        )
        self.up = nn.ModuleList(
            [ConvBlock(widths[s] + widths[s + 1], widths[s]) for s in range(len(widths) - 1)]
        )

    def forward(self, pose: torch.Tensor) -> list[torch.Tensor]:
        skips, x = [], pose
        for block in self.down:
            x = block(x)
            skips.append(x)
        features = [None] * len(skips)
        features[-1] = x
        for s in range(len(skips) - 2, -1, -1):
            x = self.up[s](torch.cat([skips[s], upsample(x)], dim=1))  # (B, P_s, H_s, W_s)
            features[s] = x
        return features


class AppearanceEncoder(nn.Module):
    """(B, 3 + 18, H, W) -> [e_0 (B, C_0, H, W), ..., e_{S-1}]: bottom-up features of the source."""

    def __init__(self, in_channels: int, widths: tuple[int, ...]):
        super().__init__()
        self.stages = nn.ModuleList([nn.Sequential(ConvBlock(in_channels, widths[0]))])
        for s in range(1, len(widths)):
            self.stages.append(
                nn.Sequential(ConvBlock(widths[s - 1], widths[s], stride=2), ResBlock(widths[s]))
            )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class CopyGenerator(nn.Module):
    """The attention-copying generator; see the module docstring and :class:`ModelConfig`.

    ``forward(source (B, 3, H, W) in [-1, 1], source_pose (B, 18, H, W), target_pose (B, 18, H, W))``
    returns the predicted target (B, 3, H, W); with ``details=True`` a dict with ``image``, and for
    pixel copying ``generated`` (B, 3, H, W), ``copied`` (B, h, 3, H, W), ``weights`` (B, 1 + h, H, W)
    (generated first) and ``selections``: {scale: (B, h, H_s/cell, W_s/cell, topk)} for GPA layers.
    Inputs whose sides are not multiples of ``config.divisor`` are padded, and the outputs cropped
    (selections refer to the padded grids).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.kind != "copy":
            raise ValueError(f"config.kind={config.kind!r}; CopyGenerator builds kind='copy'")
        self.config = config
        W, P, S = config.widths, config.pose_widths, config.n_scales
        L = N_CHANNELS if config.limb_encoding else 0  # limb-coordinate channels
        self.pose_net = PoseNet(config.pose_channels + L, P)
        self.encoder = AppearanceEncoder(config.image_channels + config.pose_channels, W)
        self.start = ConvBlock(P[-1], W[-1])
        # fuse[s] turns (upsampled decoder features, target pose features) into decoder features.
        self.fuse = nn.ModuleList([ConvBlock(W[s + 1] + P[s], W[s]) for s in range(S - 1)])
        self.refine = nn.ModuleList([ResBlock(W[s]) for s in range(S)])
        self.attention = nn.ModuleDict()
        for s in range(1, S):
            if config.attention[s] != "none":
                self.attention[str(s)] = FeatureAttention(
                    W[s], W[s] + P[s] + L, W[s] + P[s] + L, W[s], config.attention[s], config, L
                )
        self.copy = None
        if config.attention[0] != "none":
            self.copy = PixelCopy(W[0] + P[0] + L, W[0] + P[0] + L, config.attention[0], config, L)
        self.to_rgb = nn.Conv2d(W[0], config.image_channels, 3, padding=1)
        n_copies = config.copy_heads if self.copy is not None else 0
        self.to_weights = nn.Conv2d(W[0], 1 + n_copies, 3, padding=1) if n_copies else None

    def _limb_pyramid(self, pose: torch.Tensor) -> list[torch.Tensor]:
        """Limb-coordinate maps at every scale (average-pooled), or empty (B, 0, H_s, W_s) tensors."""
        B, _, H, W = pose.shape
        if not self.config.limb_encoding:
            return [pose.new_zeros(B, 0, H >> s, W >> s) for s in range(self.config.n_scales)]
        maps = [limb_maps(pose, self.config.limb_width)]  # (B, L, H, W)
        for _ in range(1, self.config.n_scales):
            maps.append(F.avg_pool2d(maps[-1], 2))  # (B, L, H_s, W_s)
        return maps

    def forward(self, source, source_pose, target_pose, *, details: bool = False):
        source, source_pose, target_pose, (H, W) = pad_inputs(
            source, source_pose, target_pose, self.config.divisor
        )
        source_limbs = self._limb_pyramid(source_pose)  # [(B, L, H_s, W_s)]
        target_limbs = self._limb_pyramid(target_pose)  # [(B, L, H_s, W_s)]
        source_p = self.pose_net(
            torch.cat([source_pose, source_limbs[0]], dim=1)
        )  # [(B, P_s, H_s, W_s)]
        target_p = self.pose_net(
            torch.cat([target_pose, target_limbs[0]], dim=1)
        )  # [(B, P_s, H_s, W_s)]
        enc = self.encoder(torch.cat([source, source_pose], dim=1))  # [(B, C_s, H_s, W_s)]
        selections = {}
        S = self.config.n_scales
        x = self.start(target_p[-1])  # (B, C_{S-1}, H_{S-1}, W_{S-1})
        for s in range(S - 1, -1, -1):
            if s < S - 1:
                x = self.fuse[s](torch.cat([upsample(x), target_p[s]], dim=1))  # (B, C_s, H_s, W_s)
            layer = self.attention[str(s)] if str(s) in self.attention else None
            if layer is not None:
                query = torch.cat(
                    [x, target_p[s], target_limbs[s]], dim=1
                )  # (B, C_s + P_s + L, H_s, W_s)
                key = torch.cat(
                    [enc[s], source_p[s], source_limbs[s]], dim=1
                )  # (B, C_s + P_s + L, ...)
                x, selection = layer(
                    x, query, key, enc[s], target_limbs[s], source_limbs[s], return_selection=True
                )
                if selection is not None:
                    selections[s] = selection
            x = self.refine[s](x)
        generated = torch.tanh(self.to_rgb(x))  # (B, 3, H, W)
        if self.copy is None:
            generated = generated[..., :H, :W]
            return {"image": generated, "selections": selections} if details else generated
        query = torch.cat([x, target_p[0], target_limbs[0]], dim=1)  # (B, C_0 + P_0 + L, H, W)
        key = torch.cat([enc[0], source_p[0], source_limbs[0]], dim=1)  # (B, C_0 + P_0 + L, H, W)
        copied, selection = self.copy(
            query, key, source, target_limbs[0], source_limbs[0], return_selection=True
        )  # (B, h, 3, H, W)
        if selection is not None:
            selections[0] = selection
        weights = torch.softmax(self.to_weights(x), dim=1)  # (B, 1 + h, H, W)
        image = weights[:, :1] * generated + (weights[:, 1:, None] * copied).sum(
            dim=1
        )  # (B, 3, H, W)
        if not details:
            return image[..., :H, :W]
        return {
            "image": image[..., :H, :W],
            "generated": generated[..., :H, :W],
            "copied": copied[..., :H, :W],
            "weights": weights[..., :H, :W],
            "selections": selections,
        }
