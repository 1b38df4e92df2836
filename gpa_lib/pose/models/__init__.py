"""Pose-morphing generators: the attention-copying generator, its ablations and the U-Net baseline.

    build_model(config)            a CopyGenerator (config.kind="copy") or a PoseUNet ("unet")
    count_parameters(model)        trainable parameters
    attention_memory(model, batch) measured peak memory of every attention call

All models take ``(source (B, 3, H, W) in [-1, 1], source_pose (B, 18, H, W), target_pose (B, 18, H,
W))`` and return the predicted target (B, 3, H, W) in [-1, 1].
"""

from __future__ import annotations

from torch import nn

from gpa_lib.pose.config import ModelConfig
from gpa_lib.pose.models.generator import CopyGenerator
from gpa_lib.pose.models.memory import attention_memory
from gpa_lib.pose.models.unet import PoseUNet

__all__ = ["CopyGenerator", "PoseUNet", "attention_memory", "build_model", "count_parameters"]


def build_model(config: ModelConfig) -> nn.Module:
    """The generator ``config`` describes (weights from torch's current RNG state)."""
    if config.kind == "copy":
        return CopyGenerator(config)
    if config.kind == "unet":
        return PoseUNet(config)
    raise ValueError(f"config.kind={config.kind!r} must be 'copy' or 'unet'")


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
