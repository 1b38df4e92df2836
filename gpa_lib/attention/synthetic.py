"""Synthetic inputs for GPA studies: a procedurally textured image and features computed from it.

Chapter 2 and the kernel's evidence use an image of a few textured shapes on a smooth background:
regions of similar colour and texture, the structure that makes attention in image models sparse
(chapter 1's figure uses the pose chapter's synthetic people instead). Everything here is
deterministic given ``seed``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def textured_image(size: int | tuple[int, int], seed: int = 0, n_shapes: int = 6) -> torch.Tensor:
    """An RGB image (3, H, W) in [0, 1]: striped discs and rectangles over a colour gradient.

    ``size`` is the side in pixels or (H, W); every shape gets its own colour, stripe frequency and
    orientation.
    """
    H, W = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, H)[:, None].expand(H, W)
    x = torch.linspace(0, 1, W)[None, :].expand(H, W)
    corner = torch.rand(2, 3, generator=g)  # background colours at the top-left / bottom-right
    mix = (0.5 * (x + y))[None]  # (1, H, W)
    image = corner[0, :, None, None] * (1 - mix) + corner[1, :, None, None] * mix  # (3, H, W)
    for _ in range(n_shapes):
        cy, cx, radius, angle, freq = torch.rand(5, generator=g).tolist()
        radius = 0.1 + 0.2 * radius
        if torch.rand(1, generator=g).item() < 0.5:
            inside = (y - cy) ** 2 + (x - cx) ** 2 < radius**2  # disc
        else:
            inside = ((y - cy).abs() < radius) & ((x - cx).abs() < 0.6 * radius)  # rectangle
        theta = math.pi * angle
        phase = (x * math.cos(theta) + y * math.sin(theta)) * (8 + 24 * freq) * 2 * math.pi
        stripes = 0.5 + 0.5 * torch.sin(phase)  # (H, W)
        colour = torch.rand(2, 3, generator=g)  # stripe colours
        texture = colour[0, :, None, None] * stripes + colour[1, :, None, None] * (1 - stripes)
        image = torch.where(inside[None], texture, image)
    return image.clamp(0, 1)


def image_features(image: torch.Tensor, channels: int, seed: int = 0) -> torch.Tensor:
    """Features of an image from a fixed random 3x3 convolution and ReLU: (3, H, W) -> (1, C, H, W).

    Like the random embedding in the authors' ``err_stat`` demonstration, but 3x3 so that features
    see local texture as well as colour; normalised to zero mean and unit variance per channel.
    """
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(channels, 3, 3, 3, generator=g) / math.sqrt(27)
    bias = 0.1 * torch.randn(channels, generator=g)
    features = F.relu(F.conv2d(2 * image[None] - 1, weight, bias, padding=1))  # (1, C, H, W)
    mean = features.mean(dim=(2, 3), keepdim=True)
    std = features.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    return (features - mean) / std
