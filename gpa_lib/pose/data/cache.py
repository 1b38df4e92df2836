"""A tensor cache of pose pairs: render (or read) a dataset once, then batch it by index.

Rendering a synthetic pair costs milliseconds; a training run reads every pair many times. The cache
keeps images as uint8 (like the PNG or JPEG of a real dataset: 1/255 steps), keypoints as float32 and
masks as bool; pose maps are rebuilt from keypoints per batch with
:func:`gpa_lib.pose.data.keypoints.keypoint_heatmaps` (the same function the datasets use), which keeps
the cache about 30 times smaller than the float items.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from gpa_lib.pose.data.keypoints import default_sigma, keypoint_heatmaps
from gpa_lib.pose.data.pair import SIDES, PoseView, pair_item, pair_views
from gpa_lib.results import atomic_write_bytes


def _to_uint8(image: torch.Tensor) -> torch.Tensor:
    return ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _to_float(image: torch.Tensor) -> torch.Tensor:
    return image.to(torch.float32) / 127.5 - 1


@dataclass
class PairCache:
    """Pairs as tensors; :meth:`batch` returns the pair-item layout (:mod:`gpa_lib.pose.data.pair`), stacked.

    images (N, 2, 3, H, W) uint8 (source, target); keypoints (N, 2, 18, 2) float32 (y, x pixels, -1
    missing); masks (N, 2, 1, H, W) bool; ``sigma`` the pose-map width in pixels.
    """

    images: torch.Tensor
    keypoints: torch.Tensor
    masks: torch.Tensor
    sigma: float

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    @classmethod
    def build(cls, dataset: Dataset, *, num_workers: int = 0, batch_size: int = 32) -> PairCache:
        """Read every item of ``dataset`` (pair items, :mod:`gpa_lib.pose.data.pair`)."""
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        images, keypoints, masks = [], [], []
        first = None
        # Rendering runs many small tensor ops: threads only add synchronisation, and on a busy CPU
        # their spinning slows it down many times over. One thread per rendering process.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for batch in loader:
                first = batch if first is None else first
                source, target = pair_views(batch)
                images.append(torch.stack([_to_uint8(source.image), _to_uint8(target.image)], 1))
                keypoints.append(torch.stack([source.keypoints, target.keypoints], 1))
                masks.append(torch.stack([source.mask, target.mask], 1) > 0.5)
        finally:
            torch.set_num_threads(threads)
        height = first["source"].shape[-2]
        sigma = getattr(dataset, "sigma", None) or default_sigma(height)
        cache = cls(torch.cat(images), torch.cat(keypoints).float(), torch.cat(masks), float(sigma))
        # The rebuilt pose maps must be the dataset's own.
        rebuilt = cache.batch(torch.tensor([0]))["target_pose"][0]
        if not torch.allclose(rebuilt, first["target_pose"][0], atol=1e-5):
            raise ValueError(
                f"pose maps rebuilt with sigma={sigma} differ from the dataset's; give the dataset a "
                "'sigma' attribute"
            )
        return cache

    def batch(
        self, index: torch.Tensor, device: str | torch.device = "cpu"
    ) -> dict[str, torch.Tensor]:
        """Items ``index`` (a LongTensor) as one batch of pair items, on ``device``.

        ``source``, ``target`` (B, 3, H, W) in [-1, 1], ``source_pose``, ``target_pose``
        (B, 18, H, W), ``*_keypoints`` (B, 18, 2), ``*_mask`` (B, 1, H, W).
        """
        images = _to_float(self.images[index])  # (B, 2, 3, H, W)
        keypoints = self.keypoints[index]  # (B, 2, 18, 2)
        masks = self.masks[index].to(torch.float32)  # (B, 2, 1, H, W)
        views = [
            PoseView(
                image=images[:, side],  # (B, 3, H, W)
                pose=torch.stack(
                    [keypoint_heatmaps(kp, self.size, self.sigma) for kp in keypoints[:, side]]
                ),  # (B, 18, H, W)
                keypoints=keypoints[:, side],  # (B, 18, 2)
                mask=masks[:, side],  # (B, 1, H, W)
            )
            for side in range(len(SIDES))
        ]
        return {key: value.to(device) for key, value in pair_item(*views).items()}

    def batches(
        self, batch_size: int, device: str | torch.device = "cpu", limit: int | None = None
    ):
        """The first ``limit`` (default all) pairs in order, ``batch_size`` at a time."""
        n = len(self) if limit is None else min(limit, len(self))
        for start in range(0, n, batch_size):
            yield self.batch(torch.arange(start, min(start + batch_size, n)), device)

    def save(self, path: str | os.PathLike) -> Path:
        buffer = io.BytesIO()
        torch.save(
            {
                "images": self.images,
                "keypoints": self.keypoints,
                "masks": self.masks,
                "sigma": self.sigma,
            },
            buffer,
        )
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> PairCache:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return cls(state["images"], state["keypoints"], state["masks"], float(state["sigma"]))


def cached(
    dataset: Dataset, path: str | os.PathLike | None = None, *, num_workers: int = 0
) -> PairCache:
    """:meth:`PairCache.build` of ``dataset``, read from ``path`` when it exists, written there otherwise."""
    if path is not None and Path(path).is_file():
        cache = PairCache.load(path)
        if len(cache) == len(dataset):
            return cache
    cache = PairCache.build(dataset, num_workers=num_workers)
    if path is not None:
        cache.save(path)
    return cache
