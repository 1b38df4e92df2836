"""Ground-truth correspondence of a synthetic pair: which source pixel shows each target pixel's point.

The renderer paints every part's texture as a function of the part's own frame (``s`` along the bone
with the part's ``s_offset``, ``t`` across it, in pixels; :class:`~gpa_lib.pose.data.render.SurfaceMap`),
so a point of a garment is a part name and an ``(s, t)``. For a target pixel showing part ``P`` at
``(s, t)``, the same point in the source image lies where the source's ``P`` has those coordinates;
it is *visible* there when the source pixel nearest to it shows ``P`` too (not another part in front,
not outside the frame or off the part's outline in that pose).

:func:`correspondence` returns, for every target pixel, the ``(y, x)`` of that source pixel, or -1
where there is none: background, the truth hidden or off the part in the source (:data:`HIDDEN`
pixels of the status), or a part without a flat texture frame (the head, whose hair and face follow its 3D
normal; :data:`NO_FRAME`). See ``data/synthetic_poses.md``.
"""

from __future__ import annotations

import numpy as np
import torch

from gpa_lib.pose.data.body import Person, Pose
from gpa_lib.pose.data.parts import body_parts, image_frame
from gpa_lib.pose.data.render import SurfaceMap, render_parts

#: Status codes of :func:`correspondence_status`, one per target pixel.
BACKGROUND, VISIBLE, HIDDEN, NO_FRAME = 0, 1, 2, 3
STATUS_NAMES = ("background", "visible", "hidden", "no_frame")
#: Parts whose texture is not a function of their flat frame (the head's hair follows its 3D normal).
FRAMELESS_PARTS = ("head",)


def _surface(person: Person, pose: Pose, size: tuple[int, int]):
    parts, _ = body_parts(person, pose, size)
    scale, _, _ = image_frame(person, pose, size)
    _, _, surface = render_parts(parts, person, size, scale, surface=True)
    return parts, surface


def _frame(part) -> tuple[np.ndarray, np.ndarray]:
    """A part's origin ``a`` (y, x) and unit bone direction ``u``, as the renderer computes them."""
    axis = part.b - part.a
    length = float(np.linalg.norm(axis))
    return part.a, axis / length if length > 1e-6 else np.array([1.0, 0.0])


def match_surfaces(
    target_parts, target: SurfaceMap, source_parts, source: SurfaceMap
) -> tuple[torch.Tensor, torch.Tensor]:
    """Correspondence ``(2, H, W)`` long and status ``(H, W)`` uint8 from two rendered surfaces."""
    height, width = target.owner.shape
    corr = torch.full((2, height, width), -1, dtype=torch.long)
    status = torch.zeros(height, width, dtype=torch.uint8)
    source_index = {part.name: i for i, part in enumerate(source_parts)}
    for index, part in enumerate(target_parts):
        where = target.owner == index  # (H, W)
        if not bool(where.any()):
            continue
        if part.name in FRAMELESS_PARTS:
            status[where] = NO_FRAME
            continue
        status[where] = HIDDEN
        if part.name not in source_index:  # e.g. the eyes of a face turned away in the source
            continue
        j = source_index[part.name]
        a, u = _frame(source_parts[j])
        s = target.s[where].double() - source_parts[j].s_offset  # (n,) along the source bone, px
        t = target.t[where].double()  # (n,)
        # The frame map (dy, dx) -> (s, t) = (dy u0 + dx u1, dy u1 - dx u0) is its own inverse.
        y = torch.round(a[0] + s * u[0] + t * u[1]).long()  # (n,)
        x = torch.round(a[1] + s * u[1] - t * u[0]).long()  # (n,)
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        shown = torch.zeros_like(inside)
        shown[inside] = source.owner[y[inside], x[inside]] == j
        ty, tx = torch.nonzero(where, as_tuple=True)
        ty, tx = ty[shown], tx[shown]
        corr[0, ty, tx] = y[shown]
        corr[1, ty, tx] = x[shown]
        status[ty, tx] = VISIBLE
    return corr, status


def correspondence_status(
    person: Person, source_pose: Pose, target_pose: Pose, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The target-to-source correspondence of one pair and each target pixel's status.

    ``size`` is (H, W) pixels. Returns ``corr`` (2, H, W) long, the (y, x) source pixel of every
    target pixel (-1 unless the status is :data:`VISIBLE`), and ``status`` (H, W) uint8 with the codes
    :data:`BACKGROUND`, :data:`VISIBLE`, :data:`HIDDEN`, :data:`NO_FRAME`. A target pixel's part is
    the one that covers at least half of it, topmost first; the item's mask (coverage >= 0.5) can
    differ from ``status != BACKGROUND`` on a few edge pixels where several parts each cover less.
    """
    target_parts, target = _surface(person, target_pose, size)
    source_parts, source = _surface(person, source_pose, size)
    return match_surfaces(target_parts, target, source_parts, source)


def correspondence(
    person: Person, source_pose: Pose, target_pose: Pose, size: tuple[int, int]
) -> torch.Tensor:
    """(2, H, W) long: for every target pixel the (y, x) of the source pixel that shows the same
    point of the same garment, -1 where none does (see :func:`correspondence_status`)."""
    return correspondence_status(person, source_pose, target_pose, size)[0]
