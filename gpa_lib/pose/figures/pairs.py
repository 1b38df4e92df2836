"""Figures of pose data: images, keypoints drawn as skeletons, pose maps, and grids of pairs."""

from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from gpa_lib.pose.data.keypoints import LIMBS, N_KEYPOINTS

# One colour per limb, as OpenPose draws them (hues around the wheel), as RGB in [0, 1].
LIMB_COLOURS = tuple(
    tuple(float(c) for c in colorsys.hsv_to_rgb(i / len(LIMBS), 0.9, 0.95))
    for i in range(len(LIMBS))
)


def to_numpy_image(image: torch.Tensor) -> np.ndarray:
    """An image ``(3, H, W)`` in [-1, 1] as an ``(H, W, 3)`` array in [0, 1] for ``imshow``."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (3, H, W), got {tuple(image.shape)}")
    return ((image.detach().float().cpu() + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()


def pose_to_rgb(heatmaps: torch.Tensor) -> np.ndarray:
    """Pose maps ``(18, H, W)`` as one ``(H, W, 3)`` picture: each keypoint in its own hue, on black."""
    if heatmaps.ndim != 3:
        raise ValueError(f"heatmaps must have shape (K, H, W), got {tuple(heatmaps.shape)}")
    k = heatmaps.shape[0]
    hues = torch.tensor(
        [colorsys.hsv_to_rgb(i / k, 1.0, 1.0) for i in range(k)], dtype=torch.float32
    )
    maps = heatmaps.detach().float().cpu().clamp(0, 1)  # (K, H, W)
    rgb = torch.einsum("khw,kc->hwc", maps, hues)
    return rgb.clamp(0, 1).numpy()


def draw_keypoints(
    ax,
    keypoints: torch.Tensor | np.ndarray,
    *,
    point_size: float = 12.0,
    linewidth: float = 1.5,
    colours: Sequence[tuple[float, float, float]] = LIMB_COLOURS,
) -> None:
    """Draw keypoints ``(18, 2)`` (y, x pixels, -1 missing) and the limbs between present ones on ``ax``."""
    kp = np.asarray(keypoints, dtype=float)
    if kp.shape != (N_KEYPOINTS, 2):
        raise ValueError(f"keypoints must have shape ({N_KEYPOINTS}, 2), got {kp.shape}")
    present = (kp >= 0).all(axis=1)
    for (i, j), colour in zip(LIMBS, colours, strict=False):
        if present[i] and present[j]:
            ax.plot([kp[i, 1], kp[j, 1]], [kp[i, 0], kp[j, 0]], color=colour, linewidth=linewidth)
    ax.scatter(
        kp[present, 1],
        kp[present, 0],
        s=point_size,
        c="white",
        edgecolors="black",
        linewidths=0.5,
        zorder=3,
    )


def plot_pairs(
    items: Sequence[Mapping[str, torch.Tensor]],
    *,
    n_cols: int = 4,
    show_keypoints: bool = False,
    panel_inches: float = 1.6,
):
    """A grid of pairs, each shown as source | target side by side; returns the matplotlib Figure.

    ``items`` are dataset items (``source``, ``target`` and, with ``show_keypoints``, the keypoints).
    """
    import matplotlib.pyplot as plt

    if not items:
        raise ValueError("items must hold at least one pair")
    if n_cols < 1:
        raise ValueError(f"n_cols={n_cols} must be at least 1")
    n_rows = -(-len(items) // n_cols)
    height, width = items[0]["source"].shape[-2:]
    aspect = width / height
    fig, axes = plt.subplots(
        n_rows,
        2 * n_cols,
        figsize=(2 * n_cols * panel_inches * aspect, n_rows * panel_inches),
        squeeze=False,
        gridspec_kw={"wspace": 0.02, "hspace": 0.02},
    )
    for ax in axes.flat:
        ax.axis("off")
    for index, item in enumerate(items):
        row, col = divmod(index, n_cols)
        for side, key in enumerate(("source", "target")):
            ax = axes[row, 2 * col + side]
            ax.imshow(to_numpy_image(item[key]))
            if show_keypoints:
                draw_keypoints(ax, item[f"{key}_keypoints"], point_size=4, linewidth=0.8)
            if row == 0:
                ax.set_title(key, fontsize=8)
    return fig
