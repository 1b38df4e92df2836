"""The pair item: one person seen in two images, the layout every pose dataset returns.

An item is a dict of float32 tensors with these keys (a plain dict so that torch's DataLoader
collates it; a batch has the same keys with a leading ``B``):

- ``source``, ``target``: (3, H, W) RGB images in [-1, 1].
- ``source_pose``, ``target_pose``: (18, H, W) keypoint heatmaps in [0, 1], OpenPose/COCO order
  (:mod:`gpa_lib.pose.data.keypoints`).
- ``source_keypoints``, ``target_keypoints``: (18, 2) as (y, x) pixels, (-1, -1) when missing.
- ``source_mask``, ``target_mask``: (1, H, W) person foreground in {0, 1}.

The training loop, the losses and the metrics read ``source``, ``source_pose``, ``target_pose``
(:data:`MODEL_INPUTS`), ``target`` and ``target_mask``; the figures also read the keypoints.

:func:`pair_item` is the one place that builds an item, from two :class:`PoseView` (the source and
the target image); :func:`pair_views` takes one apart. ``SyntheticPoses``, ``DeepFashionPairs`` and
``PairCache.batch`` (the training batches) all go through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import torch

from gpa_lib.pose.data.keypoints import N_KEYPOINTS

SIDES = ("source", "target")
#: What every generator takes, in its argument order: ``model(*(item[k] for k in MODEL_INPUTS))``.
MODEL_INPUTS = ("source", "source_pose", "target_pose")


@dataclass(frozen=True, eq=False)
class PoseView:
    """One image of a pair and its pose: what an item holds for its ``source`` or its ``target``.

    The shapes below are unbatched; every field may carry the same leading dimensions, e.g. ``(B,)``.
    Mismatched shapes raise a ``ValueError`` naming the field.
    """

    image: torch.Tensor  # (3, H, W) RGB in [-1, 1]
    pose: torch.Tensor  # (18, H, W) keypoint heatmaps in [0, 1]
    keypoints: torch.Tensor  # (18, 2) as (y, x) pixels, (-1, -1) when missing
    mask: torch.Tensor  # (1, H, W) person foreground in {0, 1}

    def __post_init__(self):
        image, pose, keypoints, mask = self.image, self.pose, self.keypoints, self.mask
        if image.ndim < 3 or image.shape[-3] != 3:
            raise ValueError(f"image must have shape (..., 3, H, W), got {tuple(image.shape)}")
        lead, grid = image.shape[:-3], image.shape[-2:]
        expected = {
            "pose": (pose, (*lead, N_KEYPOINTS, *grid)),
            "keypoints": (keypoints, (*lead, N_KEYPOINTS, 2)),
            "mask": (mask, (*lead, 1, *grid)),
        }
        for name, (tensor, shape) in expected.items():
            if tuple(tensor.shape) != tuple(shape):
                raise ValueError(
                    f"{name} must have shape {tuple(shape)} to go with image {tuple(image.shape)}, "
                    f"got {tuple(tensor.shape)}"
                )


VIEW_FIELDS = tuple(f.name for f in fields(PoseView))


def item_key(side: str, field: str) -> str:
    """The item key of ``field`` (a :class:`PoseView` field) of ``side``: ``"source"``, ``"target_pose"``.

    The image is the bare side name; every other field is ``f"{side}_{field}"``.
    """
    if side not in SIDES:
        raise ValueError(f"side={side!r} must be one of {SIDES}")
    if field not in VIEW_FIELDS:
        raise ValueError(f"field={field!r} must be one of {VIEW_FIELDS}")
    return side if field == "image" else f"{side}_{field}"


#: Every key of an item, in the order :func:`pair_item` writes them.
PAIR_KEYS = tuple(item_key(side, field) for side in SIDES for field in VIEW_FIELDS)


def pair_item(source: PoseView, target: PoseView) -> dict[str, torch.Tensor]:
    """The item (the layout of the module docstring) of a pair from its ``source`` and ``target``."""
    return {
        item_key(side, field): getattr(view, field)
        for side, view in zip(SIDES, (source, target), strict=True)
        for field in VIEW_FIELDS
    }


def pair_views(item: Mapping[str, torch.Tensor]) -> tuple[PoseView, PoseView]:
    """The ``(source, target)`` views of an item or a batch of items: the inverse of :func:`pair_item`."""
    missing = [key for key in PAIR_KEYS if key not in item]
    if missing:
        raise ValueError(f"item lacks the keys {missing}; a pair item has {list(PAIR_KEYS)}")
    source, target = (
        PoseView(**{field: item[item_key(side, field)] for field in VIEW_FIELDS}) for side in SIDES
    )
    return source, target


def model_inputs(item: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``(source, source_pose, target_pose)`` of an item or a batch: what every generator takes."""
    return tuple(item[key] for key in MODEL_INPUTS)
