"""The no-attention baseline: a U-Net over (source image, source pose, target pose).

The classic pose-conditioned generator (PG2's first stage): every input is stacked as channels, so
the only way to move appearance from where it is in the source to where it belongs in the target is
the receptive field of the convolutions and the skip connections.
"""

from __future__ import annotations

import torch
from torch import nn

from gpa_lib.pose.config import ModelConfig
from gpa_lib.pose.models.blocks import ConvBlock, ResBlock, pad_inputs, upsample
from gpa_lib.pose.models.pose_encoding import N_CHANNELS, limb_maps


class PoseUNet(nn.Module):
    """``forward(source, source_pose, target_pose) -> (B, 3, H, W)`` in [-1, 1]; widths per scale."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.kind != "unet":
            raise ValueError(f"config.kind={config.kind!r}; PoseUNet builds kind='unet'")
        self.config = config
        W, S = config.widths, config.n_scales
        limbs = N_CHANNELS if config.limb_encoding else 0
        in_channels = config.image_channels + 2 * (config.pose_channels + limbs)
        self.down = nn.ModuleList([ConvBlock(in_channels, W[0])])
        for s in range(1, S):
            self.down.append(nn.Sequential(ConvBlock(W[s - 1], W[s], stride=2), ResBlock(W[s])))
        self.up = nn.ModuleList(
            [nn.Sequential(ConvBlock(W[s] + W[s + 1], W[s]), ResBlock(W[s])) for s in range(S - 1)]
        )
        self.to_rgb = nn.Conv2d(W[0], config.image_channels, 3, padding=1)

    def forward(self, source, source_pose, target_pose, *, details: bool = False):
        source, source_pose, target_pose, (H, W) = pad_inputs(
            source, source_pose, target_pose, self.config.divisor
        )
        inputs = [source, source_pose, target_pose]
        if self.config.limb_encoding:
            inputs += [
                limb_maps(source_pose, self.config.limb_width),
                limb_maps(target_pose, self.config.limb_width),
            ]
        x = torch.cat(inputs, dim=1)  # (B, 3 + 2 * (18 + L), H, W)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        for s in range(len(skips) - 2, -1, -1):
            x = self.up[s](torch.cat([skips[s], upsample(x)], dim=1))  # (B, C_s, H_s, W_s)
        image = torch.tanh(self.to_rgb(x))[..., :H, :W]  # (B, 3, H, W)
        return {"image": image, "selections": {}} if details else image
