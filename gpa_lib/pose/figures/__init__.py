"""Figures of pose morphing, one home split by topic.

- ``pairs``: pose data: images, keypoints drawn as skeletons, pose maps, grids of pairs.
- ``comparison``: chapter 3: the architecture, training curves, outputs, copy attention, memory and
  the results table.
- ``studies``: the benchmark studies of chapter 3 (seeds, correspondence accuracy, trade-off, scaling).
"""

from gpa_lib.pose.figures.comparison import (
    MODEL_COLOURS,
    MODEL_LABELS,
    architecture_figure,
    copy_attention,
    plot_copy_attention,
    plot_memory,
    plot_outputs,
    plot_training_curves,
    results_table,
)
from gpa_lib.pose.figures.pairs import (
    LIMB_COLOURS,
    draw_keypoints,
    plot_pairs,
    pose_to_rgb,
    to_numpy_image,
)
from gpa_lib.pose.figures.studies import (
    accuracy_table,
    headline_figure,
    plot_accuracy,
    plot_scaling,
    plot_tradeoff,
    scaling_table,
    seeds_table,
)

__all__ = [
    "LIMB_COLOURS",
    "accuracy_table",
    "headline_figure",
    "plot_accuracy",
    "plot_scaling",
    "plot_tradeoff",
    "scaling_table",
    "seeds_table",
    "MODEL_COLOURS",
    "MODEL_LABELS",
    "architecture_figure",
    "copy_attention",
    "draw_keypoints",
    "plot_copy_attention",
    "plot_memory",
    "plot_outputs",
    "plot_pairs",
    "plot_training_curves",
    "pose_to_rgb",
    "results_table",
    "to_numpy_image",
]
