"""Pose morphing: the synthetic pose-pair benchmark, the DeepFashion loader and shared keypoint tools.

Data (issue 5):

- ``gpa_lib.pose.keypoints``: the 18 OpenPose/COCO keypoints, limbs, heatmaps, a skeleton mask.
- ``gpa_lib.pose.synthetic``: ``SyntheticPoses``, pairs rendered on the fly, built from
  ``body`` (data types, 3D kinematics, keypoints), ``sampling`` (random people, outfits, textures,
  poses), ``parts`` (a posed person as flat, depth-sorted parts) and ``render`` (rasterising the
  parts, each texture evaluated in its part's own frame).
- ``gpa_lib.pose.deepfashion``: ``DeepFashionPairs``, the Pose-Transfer layout of DeepFashion.
- ``gpa_lib.pose.plot``: keypoints, skeletons, pose maps and grids of pairs for figures.
"""
