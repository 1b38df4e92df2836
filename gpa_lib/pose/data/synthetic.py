"""SyntheticPoses: a pose-transfer benchmark that renders on the fly, with no downloads.

Each item is one person in one outfit seen in two poses (``source`` and ``target``). The outfit's
patterns are random and attached to the limbs, so a model can only get the target right by copying
detail from the source image, which is what attention copying is for. See ``data/synthetic_poses.md``.

Item ``i`` is a pure function of ``(seed, i)``: it is the same whatever the access order, the
DataLoader workers or the thread count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from gpa_lib.pose.data.body import VIEWS, Person, Pose
from gpa_lib.pose.data.correspondence import correspondence_status
from gpa_lib.pose.data.keypoints import keypoint_heatmaps, parse_size
from gpa_lib.pose.data.pair import PoseView, pair_item
from gpa_lib.pose.data.parts import body_parts, image_frame
from gpa_lib.pose.data.render import render_parts
from gpa_lib.pose.data.sampling import sample_person, sample_pose


def render_view(
    person: Person, pose: Pose, size: tuple[int, int], sigma: float | None = None
) -> PoseView:
    """One image of ``person`` in ``pose`` at ``size`` (H, W) pixels, as a :class:`PoseView`.

    ``image`` (3, H, W) in [-1, 1], ``mask`` (1, H, W) in {0, 1} (coverage >= 0.5), ``keypoints``
    (18, 2) as (y, x) pixels with -1 for hidden or out-of-frame points, and ``pose`` (18, H, W)
    Gaussian heatmaps of width ``sigma`` pixels (default 6 px per 256 rows).
    """
    parts, keypoints = body_parts(person, pose, size)
    scale, _, _ = image_frame(person, pose, size)
    image, cover = render_parts(parts, person, size, scale)
    keypoints = torch.from_numpy(keypoints).to(torch.float32)
    return PoseView(
        image=image * 2 - 1,
        pose=keypoint_heatmaps(keypoints, size, sigma),
        keypoints=keypoints,
        mask=(cover >= 0.5).to(torch.float32)[None],
    )


class SyntheticPoses(Dataset):
    """Pairs of renders of one synthetic person in two poses: the built-in pose-transfer benchmark.

    Args:
        n: number of pairs (>= 1).
        size: image size in pixels, an int for square images or ``(H, W)``; 64, 128 and 256 are the
            tested sizes, (256, 176) matches DeepFashion; each side in [32, 1024].
        seed: non-negative int; item ``i`` depends only on ``(seed, i)``.
        views: ``"mixed"`` (front, side and back views, as in DeepFashion) or ``"front"`` (body turned
            at most 35 degrees from the camera in both images).
        sigma: heatmap width in pixels; default 6 px per 256 image rows.

    Each item is a pair item (:mod:`gpa_lib.pose.data.pair`): a dict of float32 tensors ``source``,
    ``target`` (3, H, W) in [-1, 1], ``source_pose``, ``target_pose`` (18, H, W),
    ``source_keypoints``, ``target_keypoints`` (18, 2) and ``source_mask``, ``target_mask``
    (1, H, W), here the exact coverage of the rendered person.
    """

    def __init__(
        self,
        n: int,
        size: int | Sequence[int] = 64,
        seed: int = 0,
        *,
        views: str = "mixed",
        sigma: float | None = None,
    ):
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n={n!r} must be an int")
        if n < 1:
            raise ValueError(f"n={n} must be at least 1")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed={seed!r} must be an int")
        if seed < 0:
            raise ValueError(f"seed={seed} must be non-negative")
        if views not in VIEWS:
            raise ValueError(f"views={views!r} must be one of {VIEWS}")
        if sigma is not None and not (isinstance(sigma, int | float) and sigma > 0):
            raise ValueError(f"sigma={sigma!r} must be a positive number of pixels or None")
        self.n = n
        self.size = parse_size(size)
        self.seed = seed
        self.views = views
        self.sigma = sigma

    def __len__(self) -> int:
        return self.n

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"index={index!r} must be an int")
        index = int(index)
        if not -self.n <= index < self.n:
            raise IndexError(f"index={index} is out of range for {self.n} pairs")
        return index % self.n

    def sample(self, index: int) -> tuple[Person, Pose, Pose]:
        """The person and the source and target poses of item ``index``, before rendering."""
        rng = np.random.default_rng([self.seed, self._index(index)])
        person = sample_person(rng)
        return person, sample_pose(rng, self.views), sample_pose(rng, self.views)

    def correspondence(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Ground truth of item ``index``: which source pixel shows each target pixel's point.

        Returns ``corr`` (2, H, W) long, the (y, x) source pixel of every target pixel or -1, and
        ``status`` (H, W) uint8 (:mod:`gpa_lib.pose.data.correspondence`: background, visible,
        hidden in the source, or a part without a flat texture frame). Not part of the item: the
        pair layout is the same for every dataset, and DeepFashion has no such truth.
        """
        person, source_pose, target_pose = self.sample(index)
        return correspondence_status(person, source_pose, target_pose, self.size)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        person, source_pose, target_pose = self.sample(index)
        return pair_item(
            render_view(person, source_pose, self.size, self.sigma),
            render_view(person, target_pose, self.size, self.sigma),
        )

    def __repr__(self) -> str:
        return (
            f"SyntheticPoses(n={self.n}, size={self.size}, seed={self.seed}, views={self.views!r})"
        )
