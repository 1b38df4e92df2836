"""Pose morphing with attention copying: data, generators, training, evaluation and figures.

Subpackages and modules:

- ``gpa_lib.pose.data``: the pair item (``pair``, one layout for every dataset), the synthetic
  benchmark ``SyntheticPoses`` (``synthetic``, built from ``body``, ``sampling``, ``parts`` and
  ``render``), the DeepFashion loader ``DeepFashionPairs`` (``deepfashion``), the shared keypoint
  tools (``keypoints``) and ``PairCache``, a dataset rendered once and batched by index (``cache``).
- ``gpa_lib.pose.models``: the attention-copying generator, its ablations and the U-Net baseline;
  attention only through the public ``gpa_lib.attention`` names.
- ``gpa_lib.pose.config``: ``ModelConfig``, ``TrainConfig`` and the named presets.
- ``gpa_lib.pose.losses``, ``gpa_lib.pose.metrics``: training losses; SSIM, PSNR, L1 per pair.
- ``gpa_lib.pose.train``: resumable, data-parallel training (``python -m gpa_lib.pose.train``).
- ``gpa_lib.pose.experiment``: the chapter-3 comparison of every model on the same pairs.
- ``gpa_lib.pose.figures``: figures of pose data (``pairs``) and of the comparison (``comparison``).

The two datasets are also importable from here: ``from gpa_lib.pose import DeepFashionPairs``.
"""

from gpa_lib.pose.data import DeepFashionPairs, SyntheticPoses

__all__ = ["DeepFashionPairs", "SyntheticPoses"]
