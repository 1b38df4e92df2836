"""The article side of Fashion DNA: attributes (one-hot) and, when present, the image -> DNA and bias.

Functional core: :func:`purchase_logits` is the whole model once the DNA is known; the modules only
encode articles. Layout: ``N`` articles, ``F`` one-hot attribute slots, images ``(N, C, H, W)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def purchase_logits(
    style: torch.Tensor, dna: torch.Tensor, article_bias: torch.Tensor, customer_bias: torch.Tensor
) -> torch.Tensor:
    """``style . dna + b_article + b_customer``; ``style`` (B, D), ``dna`` (B, K, D) or (K, D),
    ``article_bias`` (B, K) or (K,), ``customer_bias`` (B,) -> logits (B, K)."""
    if dna.dim() == 2:
        logits = style @ dna.T  # (B, K)
    else:
        logits = torch.einsum("bd,bkd->bk", style, dna)  # (B, K)
    return logits + article_bias + customer_bias[:, None]


def angle_degrees(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angles (degrees) between the rows of ``a`` (N, D) and ``b`` (M, D) -> (N, M)."""
    a = nn.functional.normalize(a, dim=1)
    b = nn.functional.normalize(b, dim=1)
    return torch.rad2deg(torch.arccos((a @ b.T).clamp(-1.0, 1.0)))


def images_to_tensor(images: np.ndarray, size: int = 16) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, size, size) in [-0.5, 0.5], area-downsampled."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0 - 0.5
    if x.shape[-1] != size:  # (N, C, H, W)
        x = nn.functional.adaptive_avg_pool2d(x, size)  # (N, C, size, size)
    return x.contiguous()


class ImageEncoder(nn.Module):
    """Two conv blocks and a linear layer: (N, 3, H, W) -> (N, out_dim). Small on purpose (CPU)."""

    def __init__(
        self, out_dim: int = 32, channels: tuple[int, int] = (8, 16), size: int = 16
    ) -> None:
        super().__init__()
        c1, c2 = channels
        self.conv = nn.Sequential(
            nn.Conv2d(3, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, c1, H/2, W/2)
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, c2, H/4, W/4)
        )
        self.linear = nn.Linear(c2 * (size // 4) ** 2, out_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(self.conv(images).flatten(1)))  # (N, out_dim)


class DNANetwork(nn.Module):
    """Feedforward article encoder: one-hot attributes (N, F) [+ images] -> (DNA (N, D), bias (N,)).

    ``n_features`` one-hot slots, ``dna_dim`` D, ``hidden`` units (0: DNA linear in the one-hot
    attributes, a sum of one embedding per attribute value); ``image_dim`` > 0 adds the
    :class:`ImageEncoder` whose output joins the attribute features before the last layers.
    ``use_attributes=False`` builds the paper's image-only network: no attribute input at all
    (``features`` is ignored and may be None), the DNA from the image features alone (needs
    ``image_dim`` > 0; with ``hidden`` > 0 one hidden layer of ``hidden`` units over them).
    """

    def __init__(
        self,
        n_features: int,
        dna_dim: int = 32,
        hidden: int = 128,
        image_dim: int = 0,
        image_size: int = 16,
        use_attributes: bool = True,
    ) -> None:
        super().__init__()
        if not use_attributes and not image_dim:
            raise ValueError(
                f"use_attributes=False needs image_dim > 0 (got image_dim={image_dim}): "
                "without attributes the image is the only input"
            )
        self.dna_dim = dna_dim
        self.use_attributes = bool(use_attributes)
        self.images = ImageEncoder(image_dim, size=image_size) if image_dim else None
        if not use_attributes:
            self.attributes = None
            n_in = image_dim
        elif hidden:
            self.attributes = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU())
            n_in = hidden + image_dim
        else:
            self.attributes = nn.Identity()
            n_in = n_features + image_dim
        if hidden:
            self.head = nn.Sequential(
                nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, dna_dim + 1)
            )
        else:
            self.head = nn.Linear(n_in, dna_dim + 1)

    def forward(
        self,
        features: torch.Tensor | None,
        images: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """DNA (N, D) and bias (N,); ``image_features`` (N, image_dim) replace ``images`` when the
        image encoder's output is already known (a cache during training)."""
        parts = []
        if self.attributes is not None:
            parts.append(self.attributes(features))  # (N, hidden) or (N, F)
        if self.images is not None:
            if image_features is None:
                if images is None:
                    raise ValueError("this DNANetwork was built with an image encoder; pass images")
                image_features = self.images(images)  # (N, image_dim)
            parts.append(image_features)
        h = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # (N, hidden + image_dim)
        out = self.head(h)  # (N, D + 1)
        return out[:, : self.dna_dim], out[:, self.dna_dim]
