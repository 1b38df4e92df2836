"""Training losses of the pose generators: L1, SSIM, and optional PatchGAN and VGG19 perceptual terms.

Images are (B, 3, H, W) in [-1, 1]. The generator loss is

    l1_weight * L1 + foreground_l1_weight * L1 over the target foreground
    + ssim_weight * (1 - SSIM) + gan_weight * LSGAN + perceptual_weight * VGG19 feature L1

SSIM is torchmetrics' (differentiable). The perceptual loss needs VGG19 weights in torchvision's
layout at a local path; they are never downloaded, and asking for the loss without them is an error
that says so.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure

from gpa_lib.pose.config import TrainConfig
from gpa_lib.pose.metrics import DATA_RANGE


def l1_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean absolute error; with ``mask`` (B, 1, H, W) the batch mean of each image's foreground mean.

    Per image, then averaged, so that data-parallel shards average to the loss of the whole batch; an
    image without foreground contributes 0.
    """
    if mask is None:
        return (pred - target).abs().mean()
    weights = mask.expand_as(pred)  # (B, 3, H, W)
    per_image = ((pred - target).abs() * weights).flatten(1).sum(1)  # (B,)
    return (per_image / weights.flatten(1).sum(1).clamp_min(1.0)).mean()


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - SSIM`` averaged over the batch (torchmetrics SSIM, data range 2)."""
    return 1 - structural_similarity_index_measure(pred, target, data_range=DATA_RANGE)


class PatchDiscriminator(nn.Module):
    """A conditional PatchGAN: (image (B, 3, H, W), pose (B, 18, H, W)) -> logits (B, 1, H/8, W/8).

    Three stride-2 4x4 convolutions and a 3x3 head: every logit judges a patch of about 46 px.
    """

    def __init__(self, in_channels: int = 3 + 18, width: int = 32):
        super().__init__()
        layers, channels = [], in_channels
        for i in range(3):
            layers += [nn.Conv2d(channels, width * 2**i, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            channels = width * 2**i
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, pose], dim=1))


def lsgan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN: real patches towards 1, generated ones towards 0."""
    return 0.5 * ((real_logits - 1).square().mean() + fake_logits.square().mean())


def lsgan_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * (fake_logits - 1).square().mean()


# torchvision's vgg19().features, up to relu4_1 (index 20); the loss compares relu1_1 ... relu4_1.
_VGG19_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512)
_VGG_TAPS = (1, 6, 11, 20)  # indices of relu1_1, relu2_1, relu3_1, relu4_1 in vgg19().features
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg19_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for spec in _VGG19_LAYERS:
        if spec == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, spec, 3, padding=1), nn.ReLU(inplace=False)]
            channels = spec
    return nn.Sequential(*layers)


class VGGPerceptualLoss(nn.Module):
    """L1 between VGG19 features (relu1_1 to relu4_1) of prediction and target, frozen weights.

    ``weights``: a local file with torchvision's ``vgg19`` state dict (``vgg19-dcbb9e9d.pth``), or
    one holding only the ``features.*`` entries. Nothing is downloaded.
    """

    def __init__(self, weights: str | os.PathLike | None):
        super().__init__()
        if weights is None:
            raise ValueError(
                "perceptual_weight > 0 needs VGG19 weights at a local path: set perceptual_weights= "
                "(TrainConfig) or --perceptual-weights to torchvision's vgg19 state dict; this "
                "compendium never downloads weights"
            )
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"perceptual_weights={str(weights)!r} is not a file")
        self.features = _vgg19_features()
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {
            k.removeprefix("features."): v
            for k, v in state.items()
            if k.startswith("features.") or k[0].isdigit()
        }
        state = {k: v for k, v in state.items() if int(k.split(".")[0]) < len(self.features)}
        missing = self.features.load_state_dict(state, strict=False).missing_keys
        if missing:
            raise ValueError(f"perceptual_weights={str(weights)!r} lacks VGG19 layers {missing}")
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True):
        super().train(mode)
        self.features.eval()  # frozen feature extractor
        return self

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in _VGG_TAPS:
                taps.append(x)
        return taps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_taps = self._taps(target)
        return sum(F.l1_loss(p, t) for p, t in zip(self._taps(pred), target_taps, strict=True))


class GeneratorLoss(nn.Module):
    """The weighted generator loss of a :class:`TrainConfig`; returns (total, {term: value})."""

    def __init__(self, config: TrainConfig):
        super().__init__()
        self.config = config
        self.perceptual = None
        if config.perceptual_weight > 0:
            self.perceptual = VGGPerceptualLoss(config.perceptual_weights)

    def forward(
        self,
        pred: torch.Tensor,
        batch: dict[str, torch.Tensor],
        fake_logits: torch.Tensor | None = None,
    ):
        c = self.config
        target = batch["target"]
        terms = {"l1": l1_loss(pred, target), "ssim": ssim_loss(pred, target)}
        total = c.l1_weight * terms["l1"] + c.ssim_weight * terms["ssim"]
        if c.foreground_l1_weight > 0:
            terms["l1_fg"] = l1_loss(pred, target, batch["target_mask"])
            total = total + c.foreground_l1_weight * terms["l1_fg"]
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual(pred, target)
            total = total + c.perceptual_weight * terms["perceptual"]
        if fake_logits is not None and c.gan_weight > 0:
            terms["gan"] = lsgan_generator_loss(fake_logits)
            total = total + c.gan_weight * terms["gan"]
        return total, {k: float(v.detach()) for k, v in terms.items()}
