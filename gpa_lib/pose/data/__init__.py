"""Pose-pair data: the synthetic benchmark, the DeepFashion loader and a tensor cache.

keypoints    the 18 OpenPose/COCO keypoints, limbs, heatmaps, a skeleton mask
synthetic    ``SyntheticPoses``, pairs rendered on the fly, built from
body         data types, 3D kinematics, keypoints of a synthetic person
sampling     random people, outfits, textures and poses
parts        a posed person as flat, depth-sorted parts
render       rasterising the parts, each texture evaluated in its part's own frame
deepfashion  ``DeepFashionPairs``, the Pose-Transfer layout of DeepFashion
cache        ``PairCache``: a dataset rendered or read once, batched by index for training
"""

from gpa_lib.pose.data.cache import PairCache, cached
from gpa_lib.pose.data.deepfashion import DeepFashionPairs
from gpa_lib.pose.data.synthetic import SyntheticPoses, render_view

__all__ = [
    "DeepFashionPairs",
    "PairCache",
    "SyntheticPoses",
    "cached",
    "render_view",
]
