"""The 18 OpenPose/COCO keypoints, their limbs, and the tensors both pose datasets build from them.

Conventions shared by :mod:`gpa_lib.pose.data.synthetic` and :mod:`gpa_lib.pose.data.deepfashion`:

- Keypoints are a float tensor ``(18, 2)`` of ``(y, x)`` pixel coordinates in the image the item
  returns; pixel ``(i, j)`` has its centre at ``y = i, x = j``. A missing keypoint is ``(-1, -1)``.
- Pose maps are ``(18, H, W)`` Gaussian heatmaps, peak 1 at the keypoint, all zeros for a missing one.
  The default width is ``sigma = 6 * H / 256`` pixels, the value PATN and GFLA use at 256x176.
- Image sizes are ``(H, W)`` in pixels; an ``int`` means a square image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# OpenPose COCO order, as in DeepFashion's Pose-Transfer annotations ("fasion-resize-annotation-*.csv").
KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
N_KEYPOINTS = len(KEYPOINT_NAMES)
KEYPOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

# The OpenPose COCO limbs (pairs of keypoint indices) without the two ear-shoulder links.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
)

# Left/right partners, for horizontal flips: index i becomes FLIP_PERMUTATION[i].
FLIP_PERMUTATION: tuple[int, ...] = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)

MIN_SIDE = 32  # pixels; below this a person is a few pixels tall
MAX_SIDE = 1024  # pixels; the renderer and loader are tested up to 256


def parse_size(size: int | Sequence[int], name: str = "size") -> tuple[int, int]:
    """``size`` as ``(H, W)`` pixels: an int is square; each side in [MIN_SIDE, MAX_SIDE]."""
    if isinstance(size, bool):
        raise TypeError(f"{name}={size!r} must be an int or an (H, W) pair of ints")
    if isinstance(size, int):
        pair = (size, size)
    elif isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2:
        pair = tuple(size)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
            raise TypeError(f"{name}={size!r} must be an int or an (H, W) pair of ints")
    else:
        raise TypeError(f"{name}={size!r} must be an int or an (H, W) pair of ints")
    if not all(MIN_SIDE <= v <= MAX_SIDE for v in pair):
        raise ValueError(
            f"{name}={size!r} is not supported: each side must be in [{MIN_SIDE}, {MAX_SIDE}] pixels"
        )
    return pair[0], pair[1]


def default_sigma(height: int) -> float:
    """Heatmap width in pixels for an image ``height`` pixels tall: 6 px at 256, as in PATN/GFLA."""
    return 6.0 * height / 256.0


def keypoint_heatmaps(
    keypoints: torch.Tensor, size: int | Sequence[int], sigma: float | None = None
) -> torch.Tensor:
    """Gaussian pose maps ``(18, H, W)`` from keypoints ``(18, 2)`` as ``(y, x)`` pixels.

    Each map is ``exp(-d^2 / (2 sigma^2))`` with ``d`` the distance in pixels to the keypoint, so it
    peaks at 1 on the keypoint's pixel; a missing keypoint (any coordinate < 0) gives a zero map.
    ``sigma`` is in pixels, :func:`default_sigma` of ``H`` when ``None``.
    """
    height, width = parse_size(size)
    if keypoints.ndim != 2 or keypoints.shape[1] != 2:
        raise ValueError(f"keypoints must have shape (K, 2), got {tuple(keypoints.shape)}")
    if sigma is None:
        sigma = default_sigma(height)
    if not sigma > 0:
        raise ValueError(f"sigma={sigma} must be a positive number of pixels")
    keypoints = keypoints.to(torch.float32)
    present = (keypoints >= 0).all(dim=1)  # (K,)
    ys = torch.arange(height, dtype=torch.float32)
    xs = torch.arange(width, dtype=torch.float32)
    # The Gaussian is separable: one outer product per keypoint instead of a distance per pixel.
    gy = torch.exp(-((ys[None, :] - keypoints[:, :1]) ** 2) / (2 * sigma**2))  # (K, H)
    gx = torch.exp(-((xs[None, :] - keypoints[:, 1:]) ** 2) / (2 * sigma**2))  # (K, W)
    gy = gy * present[:, None]
    return gy[:, :, None] * gx[:, None, :]  # (K, H, W)


def _capsule_sdf(
    ys: torch.Tensor, xs: torch.Tensor, a: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """Distance in pixels from every pixel to the segments ``a[i] -> b[i]`` (each ``(L, 2)`` as y, x)."""
    ba = b - a  # (L, 2)
    length2 = (ba**2).sum(dim=1).clamp_min(1e-6)  # (L,)
    py = ys[None, :, None] - a[:, 0, None, None]  # (L, H, 1)
    px = xs[None, None, :] - a[:, 1, None, None]  # (L, 1, W)
    h = ((py * ba[:, 0, None, None] + px * ba[:, 1, None, None]) / length2[:, None, None]).clamp(
        0, 1
    )
    dy = py - h * ba[:, 0, None, None]  # (L, H, W)
    dx = px - h * ba[:, 1, None, None]
    return torch.sqrt(dy**2 + dx**2)


def skeleton_mask(
    keypoints: torch.Tensor, size: int | Sequence[int], limb_width: float | None = None
) -> torch.Tensor:
    """A rough foreground mask ``(1, H, W)`` in {0, 1} drawn from keypoints ``(18, 2)`` (y, x pixels).

    For datasets without segmentation (DeepFashion): the union of the limbs in :data:`LIMBS` drawn as
    capsules ``limb_width`` pixels wide (default ``0.09 * H``), the torso polygon (shoulders and
    hips) filled, and a head disc around the face keypoints. It covers the body, not loose clothes
    or hair, so it is an approximation of the true foreground; limbs with a missing end are left out.
    """
    height, width = parse_size(size)
    if limb_width is None:
        limb_width = 0.09 * height
    keypoints = keypoints.to(torch.float32)
    present = (keypoints >= 0).all(dim=1)
    ys = torch.arange(height, dtype=torch.float32)
    xs = torch.arange(width, dtype=torch.float32)
    mask = torch.zeros(height, width, dtype=torch.bool)

    limbs = [(i, j) for i, j in LIMBS if present[i] and present[j]]
    if limbs:
        index = torch.tensor(limbs)  # (L, 2)
        dist = _capsule_sdf(ys, xs, keypoints[index[:, 0]], keypoints[index[:, 1]])  # (L, H, W)
        mask |= (dist <= limb_width / 2).any(dim=0)

    # Torso: the convex polygon through the shoulders and hips that are present, filled.
    torso = [
        KEYPOINT_INDEX[k] for k in ("right_shoulder", "left_shoulder", "left_hip", "right_hip")
    ]
    corners = keypoints[[i for i in torso if present[i]]]  # (c, 2)
    if len(corners) >= 3:
        centre = corners.mean(dim=0)
        angles = torch.atan2(corners[:, 0] - centre[0], corners[:, 1] - centre[1])
        corners = corners[angles.argsort()]
        # A pixel is inside a convex polygon when it lies on the same side of every edge; the sign of
        # the cross product says which side of edge p -> q it is on.
        left = torch.ones(height, width, dtype=torch.bool)
        right = torch.ones(height, width, dtype=torch.bool)
        for k in range(len(corners)):
            p, q = corners[k], corners[(k + 1) % len(corners)]
            cross = (q[1] - p[1]) * (ys[:, None] - p[0]) - (q[0] - p[0]) * (xs[None, :] - p[1])
            left &= cross >= 0
            right &= cross <= 0
        mask |= left | right

    face = [KEYPOINT_INDEX[k] for k in ("nose", "right_eye", "left_eye", "right_ear", "left_ear")]
    face_points = keypoints[[i for i in face if present[i]]]
    if len(face_points):
        centre = face_points.mean(dim=0)
        radius = max(limb_width, 0.06 * height)
        mask |= (ys[:, None] - centre[0]) ** 2 + (xs[None, :] - centre[1]) ** 2 <= radius**2
    return mask[None].to(torch.float32)  # (1, H, W)
