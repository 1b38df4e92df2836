"""Limb-coordinate maps: a dense pose encoding computed from the 18 pose heatmaps.

A pose heatmap is a small Gaussian at each keypoint (1.5 px wide at 64 px), so most body pixels
carry no pose signal at all. For copying, a pixel needs to know *where on the body* it is: which limb,
how far along it, on which side. For every limb (``LIMBS`` plus four torso segments) this module
computes, per pixel, a weight ``w = exp(-d^2 / 2s^2)`` (d the distance to the segment in pixels, s
= ``width`` times the image height) and two limb coordinates: the position along the segment
mapped to [-1, 1], and the signed distance across it in units of 2s. The channels are ``w``,
``w * along`` and ``w * across`` per limb. The same pixel of the same body part gets the same
encoding in the source and in the target, however the limb moved, which is what the attention's
queries and keys need to find correspondences.

Keypoints are read back from the heatmaps by a thresholded soft-argmax, so the models keep taking
only pose maps (as both datasets provide them).
"""

from __future__ import annotations

import torch

from gpa_lib.pose.data.keypoints import LIMBS

# The OpenPose limbs plus the torso: shoulder line, hip line and both diagonals.
ENCODED_LIMBS: tuple[tuple[int, int], ...] = LIMBS + ((2, 5), (8, 11), (2, 11), (5, 8))
CHANNELS_PER_LIMB = 3
N_CHANNELS = CHANNELS_PER_LIMB * len(ENCODED_LIMBS)


def soft_keypoints(
    heatmaps: torch.Tensor, threshold: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints from heatmaps (B, K, H, W): ((B, K, 2) as (y, x) pixels, present (B, K) bool).

    A keypoint is present when its map peaks above ``threshold``; its position is the mean pixel
    position weighted by the map where the map exceeds a third of its peak.
    """
    B, K, H, W = heatmaps.shape
    peak = heatmaps.flatten(2).amax(dim=2)  # (B, K)
    weights = heatmaps * (heatmaps >= peak[..., None, None] / 3)  # (B, K, H, W)
    total = weights.flatten(2).sum(dim=2).clamp_min(1e-6)  # (B, K)
    ys = torch.arange(H, dtype=heatmaps.dtype, device=heatmaps.device)
    xs = torch.arange(W, dtype=heatmaps.dtype, device=heatmaps.device)
    y = (weights.sum(dim=3) * ys).sum(dim=2) / total  # (B, K)
    x = (weights.sum(dim=2) * xs).sum(dim=2) / total  # (B, K)
    return torch.stack([y, x], dim=-1), peak > threshold


def limb_maps(heatmaps: torch.Tensor, width: float = 0.05) -> torch.Tensor:
    """The limb-coordinate encoding (B, N_CHANNELS, H, W) of pose heatmaps (B, 18, H, W)."""
    B, K, H, W = heatmaps.shape
    keypoints, present = soft_keypoints(heatmaps.detach())  # (B, K, 2), (B, K)
    index = torch.tensor(ENCODED_LIMBS, device=heatmaps.device)  # (L, 2)
    a, b = keypoints[:, index[:, 0]], keypoints[:, index[:, 1]]  # (B, L, 2)
    valid = (present[:, index[:, 0]] & present[:, index[:, 1]]).to(heatmaps.dtype)  # (B, L)
    s = width * H
    ys = torch.arange(H, dtype=heatmaps.dtype, device=heatmaps.device)
    xs = torch.arange(W, dtype=heatmaps.dtype, device=heatmaps.device)
    ab = b - a  # (B, L, 2)
    length2 = ab.square().sum(-1).clamp_min(1.0)  # (B, L)
    ry = ys[None, None, :, None] - a[..., 0, None, None]  # (B, L, H, 1)
    rx = xs[None, None, None, :] - a[..., 1, None, None]  # (B, L, 1, W)
    t = (ry * ab[..., 0, None, None] + rx * ab[..., 1, None, None]) / length2[..., None, None]
    tc = t.clamp(0, 1)  # (B, L, H, W)
    dy = ry - tc * ab[..., 0, None, None]
    dx = rx - tc * ab[..., 1, None, None]
    weight = torch.exp(-(dy.square() + dx.square()) / (2 * s**2)) * valid[..., None, None]
    across = (ry * ab[..., 1, None, None] - rx * ab[..., 0, None, None]) / length2.sqrt()[
        ..., None, None
    ]
    features = torch.stack(
        [weight, weight * (2 * tc - 1), weight * (across / (2 * s)).clamp(-1.5, 1.5)], dim=2
    )  # (B, L, 3, H, W)
    return features.flatten(1, 2)  # (B, 3L, H, W)
