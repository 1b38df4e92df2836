"""Pose-pair data: the pair item, the synthetic benchmark, the DeepFashion loader and a tensor cache.

- ``pair``: the item layout every dataset returns (``PoseView``, ``pair_item``, ``pair_views``).
- ``keypoints``: the 18 OpenPose/COCO keypoints, limbs, heatmaps, a skeleton mask.
- ``synthetic``: ``SyntheticPoses``, pairs rendered on the fly, built from ``body`` (data types, 3D
  kinematics, keypoints), ``sampling`` (random people, outfits, textures, poses), ``parts`` (a posed
  person as flat, depth-sorted parts) and ``render`` (rasterising the parts, each texture evaluated
  in its part's own frame).
- ``deepfashion``: ``DeepFashionPairs``, the Pose-Transfer layout of DeepFashion.
- ``cache``: ``PairCache``, a dataset rendered or read once and batched by index for training.
"""

from gpa_lib.pose.data.cache import PairCache, cached
from gpa_lib.pose.data.deepfashion import DeepFashionPairs
from gpa_lib.pose.data.pair import PAIR_KEYS, PoseView, pair_item, pair_views
from gpa_lib.pose.data.synthetic import SyntheticPoses, render_view

__all__ = [
    "PAIR_KEYS",
    "DeepFashionPairs",
    "PairCache",
    "PoseView",
    "SyntheticPoses",
    "cached",
    "pair_item",
    "pair_views",
    "render_view",
]
