"""Configurations of the pose-morphing models and their training, with named presets.

Two frozen dataclasses: :class:`ModelConfig` (the architecture) and :class:`TrainConfig` (data,
optimisation, losses, evaluation and checkpoints; it holds a ``ModelConfig``). :data:`TRAIN_PRESETS`
maps a name ``"<model>-<scale>"`` to a ``TrainConfig``; the same dict feeds the choices of
``python -m gpa_lib.pose.train --preset NAME``.

Models (see :mod:`gpa_lib.pose.models`):

- ``gpa``: the attention-copying generator; dense attention at the coarse scales, GPA at the large
  ones, and at full resolution GPA copies source pixels.
- ``coarse``: the same generator with attention only at the coarse scales (no pixel copying).
- ``dense``: the same generator with exact dense attention at every scale.
- ``unet``: a pose-conditioned U-Net without attention.

Scales: ``smoke`` (32 px, a few steps: tests and the smoke profile), ``full`` (64 px, the book on a
2-core CPU), ``gpu`` (256 px, one GPU).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

ATTENTION_KINDS = ("none", "dense", "gpa")
MODEL_KINDS = ("copy", "unet")
DENSE_IMPLS = ("fused", "materialised")
MODEL_NAMES = ("gpa", "coarse", "dense", "unet")
SCALES = ("smoke", "full", "gpu")


@dataclass(frozen=True)
class ModelConfig:
    """The architecture of a pose-morphing generator."""

    # "copy": the attention-copying generator; "unet": the pose-conditioned U-Net without attention.
    kind: str = "copy"
    # Channels of the appearance encoder and the decoder at scales 1, 1/2, 1/4, ... of the image
    # (full resolution first); the number of entries is the number of scales.
    widths: tuple[int, ...] = (16, 32, 48, 64)
    # Channels of the pose network at the same scales (copy generator only).
    pose_widths: tuple[int, ...] = (8, 16, 24, 32)
    # Attention at each scale, full resolution first: "none", "dense" or "gpa". At full resolution
    # the attention copies source pixels; at the other scales it copies source features.
    attention: tuple[str, ...] = ("gpa", "gpa", "dense", "dense")
    # Attention heads at the feature scales.
    heads: int = 2
    # D: query/key channels per head at the feature scales.
    head_dim: int = 16
    # Heads of the pixel-copying attention at full resolution (each copies RGB; a mask blends them).
    copy_heads: int = 1
    # D of the pixel-copying attention.
    copy_head_dim: int = 16
    # GPA pooling block side, in pixels of the feature map the attention runs on.
    pool: int = 4
    # GPA query cell side, in pixels of the feature map; a multiple of pool.
    cell: int = 8
    # GPA key blocks kept per query cell.
    topk: int = 8
    # Attention affinity: "dot" (q.k/sqrt(D)) or "euclid" (-|q-k|^2/sqrt(D)).
    affinity: str = "dot"
    # GPA backend: None picks the best that can run (see gpa_lib.attention.explain_backends).
    backend: str | None = None
    # Dense attention: "fused" (scaled_dot_product_attention) or "materialised" (explicit score matrix).
    dense_impl: str = "fused"
    # Add limb-coordinate maps (gpa_lib.pose.models.pose_encoding) to the pose input and to the
    # attention's queries and keys.
    limb_encoding: bool = True
    # Channels per head that every attention layer adds to its queries and keys by one projection
    # shared between them of the target's and the source's limb-coordinate maps: a learned metric
    # under which the same body location matches itself from the first step (0: off).
    limb_head_dim: int = 8
    # Factor on the initial weights of that shared projection: large, so that at the start the limb
    # metric dominates the (random) learned part of the cosine similarity.
    limb_init_gain: float = 5.0
    # Cosine attention: queries and keys are L2-normalised per head and the logits are cos(q, k)
    # times a learned temperature per head, so that attention can be sharp (copy one pixel) early.
    qk_norm: bool = True
    # Initial temperature of the cosine attention.
    init_temperature: float = 10.0
    # Width of a limb in the limb-coordinate maps, as a fraction of the image height.
    limb_width: float = 0.05
    # Image channels (RGB).
    image_channels: int = 3
    # Pose map channels (18 OpenPose/COCO keypoints).
    pose_channels: int = 18

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"kind={self.kind!r} must be one of {MODEL_KINDS}")
        if len(self.widths) < 2:
            raise ValueError(f"widths={self.widths} must name at least two scales")
        if self.kind == "copy":
            if len(self.attention) != len(self.widths):
                raise ValueError(
                    f"attention={self.attention} must have one entry per scale, like widths={self.widths}"
                )
            if len(self.pose_widths) != len(self.widths):
                raise ValueError(
                    f"pose_widths={self.pose_widths} must have one entry per scale, like widths={self.widths}"
                )
            for kind in self.attention:
                if kind not in ATTENTION_KINDS:
                    raise ValueError(
                        f"attention={self.attention} holds {kind!r}; use {ATTENTION_KINDS}"
                    )
        if self.cell % self.pool:
            raise ValueError(f"cell={self.cell} must be a multiple of pool={self.pool}")
        if self.dense_impl not in DENSE_IMPLS:
            raise ValueError(f"dense_impl={self.dense_impl!r} must be one of {DENSE_IMPLS}")
        if self.affinity not in ("dot", "euclid"):
            raise ValueError(f"affinity={self.affinity!r} must be 'dot' or 'euclid'")

    @property
    def n_scales(self) -> int:
        return len(self.widths)

    @property
    def divisor(self) -> int:
        """Inputs are padded to multiples of this many pixels (every scale, every GPA cell fits)."""
        need = 2 ** (self.n_scales - 1)
        if self.kind == "copy":
            for scale, kind in enumerate(self.attention):
                if kind == "gpa":
                    need = max(need, self.cell * 2**scale)
        return need


@dataclass(frozen=True)
class TrainConfig:
    """Data, optimisation, losses, evaluation and checkpoints of one training run."""

    # The generator to train.
    model: ModelConfig = field(default_factory=ModelConfig)
    # "synthetic" (SyntheticPoses, generated here) or "deepfashion" (DeepFashionPairs at deepfashion_root).
    data: str = "synthetic"
    # Folder of DeepFashion in the Pose-Transfer layout (data="deepfashion"); never downloaded.
    deepfashion_root: str | None = None
    # Image side in pixels of the synthetic pairs; DeepFashion items are (256, 176).
    size: int = 64
    # Training pairs (synthetic: SyntheticPoses(n_train, size, seed=data_seed)).
    n_train: int = 2000
    # Pairs of the periodic evaluation (the first n_val pairs of the held-out set).
    n_val: int = 64
    # Pairs of the fixed held-out test set (SyntheticPoses(n_test, size, seed=test_seed)).
    n_test: int = 200
    # Seed of the training pairs.
    data_seed: int = 0
    # Seed of the held-out pairs; differs from data_seed, so the people and outfits are new.
    test_seed: int = 10_000
    # Synthetic views: "mixed" (front, side, back) or "front".
    views: str = "mixed"
    # Seed of the initial weights and of the data order (epoch e shuffles with seed + e).
    seed: int = 0
    # Pairs per optimisation step, over all processes (a multiple of the world size).
    batch_size: int = 8
    # Optimisation steps.
    steps: int = 450
    # Adam learning rate; it decays with a cosine to lr * lr_final_ratio at the last step.
    lr: float = 2e-3
    # Final learning rate as a fraction of lr.
    lr_final_ratio: float = 0.05
    # Steps of linear learning-rate warm-up.
    warmup_steps: int = 20
    # Adam betas.
    betas: tuple[float, float] = (0.9, 0.99)
    # Gradient norm clip (0: off).
    grad_clip: float = 1.0
    # Weight of the L1 loss over the whole image.
    l1_weight: float = 1.0
    # Extra weight of the L1 loss over the target foreground (0: off); needs target_mask.
    foreground_l1_weight: float = 1.0
    # Weight of the SSIM loss (1 - SSIM).
    ssim_weight: float = 1.0
    # Weight of the PatchGAN adversarial loss (0: no discriminator).
    gan_weight: float = 0.0
    # Weight of the VGG19 perceptual loss (0: off); needs perceptual_weights.
    perceptual_weight: float = 0.0
    # Local path of torchvision VGG19 weights for the perceptual loss (never downloaded).
    perceptual_weights: str | None = None
    # Evaluate on the n_val pairs every this many steps (0: only at the end).
    eval_every: int = 50
    # Write a checkpoint every this many steps (0: only at the end).
    checkpoint_every: int = 50
    # Torch CPU threads per process (0: leave torch's default).
    num_threads: int = 2
    # "auto" (CUDA when available, else CPU), "cpu" or "cuda".
    device: str = "auto"

    def __post_init__(self):
        for name in ("n_train", "n_val", "n_test", "batch_size", "steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if self.n_val > self.n_test:
            raise ValueError(f"n_val={self.n_val} must be at most n_test={self.n_test}")
        if self.batch_size > self.n_train:
            raise ValueError(f"batch_size={self.batch_size} must be at most n_train={self.n_train}")
        if self.data not in ("synthetic", "deepfashion"):
            raise ValueError(f"data={self.data!r} must be 'synthetic' or 'deepfashion'")
        if self.data == "deepfashion" and not self.deepfashion_root:
            raise ValueError("data='deepfashion' needs deepfashion_root (the Pose-Transfer folder)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device={self.device!r} must be 'auto', 'cpu' or 'cuda'")

    def replace(self, **changes) -> TrainConfig:
        """A copy with ``changes``; ``model=dict(...)`` changes fields of the model config."""
        model = changes.pop("model", None)
        if isinstance(model, dict):
            model = dataclasses.replace(self.model, **model)
        if model is not None:
            changes["model"] = model
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        model = dict(data.pop("model"))
        for key in ("widths", "pose_widths", "attention"):
            model[key] = tuple(model[key])
        data["betas"] = tuple(data["betas"])
        return cls(model=ModelConfig(**model), **data)


def model_config(name: str, scale: str = "full") -> ModelConfig:
    """The architecture of model ``name`` (one of :data:`MODEL_NAMES`) at ``scale`` (:data:`SCALES`)."""
    if name not in MODEL_NAMES:
        raise ValueError(f"name={name!r} must be one of {MODEL_NAMES}")
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r} must be one of {SCALES}")
    if scale == "smoke":
        # 32 px, three scales (32, 16, 8): GPA at 32 and 16 px with cells of 8 and blocks of 2.
        widths, pose_widths = (8, 12, 16), (4, 8, 8)
        coarse, fine = ("dense",), ("gpa", "gpa")
        gpa = {"pool": 2, "cell": 8, "topk": 4, "heads": 1, "head_dim": 8, "copy_head_dim": 8,
               "backend": "reference"}  # fmt: skip
    elif scale == "full":
        # 64 px, four scales (64, 32, 16, 8): dense at 8 and 16 px, GPA at 32 px and for the pixels.
        widths, pose_widths = (16, 32, 48, 64), (8, 16, 24, 32)
        coarse, fine = ("dense", "dense"), ("gpa", "gpa")
        # The CPU path: FlexAttention has no CPU backward, and compiling it per shape for
        # evaluation costs more than it saves at 64 px. The recompute backend keeps no attention
        # weights for the backward pass and, in cache-sized runs of cells, is also faster here.
        gpa = {"pool": 4, "cell": 8, "topk": 16, "backend": "recompute"}
    else:
        # 256 px, six scales (256 ... 8): dense at 8 and 16 px, GPA from 32 px up.
        widths, pose_widths = (16, 32, 48, 64, 96, 128), (8, 16, 24, 32, 48, 64)
        coarse, fine = ("dense", "dense"), ("gpa", "gpa", "gpa", "gpa")
        gpa = {"pool": 4, "cell": 8, "topk": 16, "heads": 4, "head_dim": 16}
    n_fine = len(fine)
    attention = {
        "gpa": fine + coarse,
        "coarse": ("none",) * n_fine + coarse,
        "dense": ("dense",) * n_fine + coarse,
        "unet": ("none",) * (n_fine + len(coarse)),
    }[name]
    # The U-Net gets a little more width so that its parameter count matches the copy generator's.
    if name == "unet":
        widths = tuple(int(round(w * 1.25)) for w in widths)
    return ModelConfig(
        kind="unet" if name == "unet" else "copy",
        widths=widths,
        pose_widths=pose_widths,
        attention=attention,
        **gpa,
    )


def _train_config(name: str, scale: str) -> TrainConfig:
    model = model_config(name, scale)
    if scale == "smoke":
        return TrainConfig(
            model=model, size=32, n_train=16, n_val=4, n_test=8, batch_size=4, steps=6,
            warmup_steps=2, eval_every=3, checkpoint_every=3, num_threads=1,
        )  # fmt: skip
    if scale == "full":
        return TrainConfig(model=model, steps=450)
    return TrainConfig(
        model=model, size=256, n_train=8000, n_val=128, n_test=500, batch_size=16, steps=10_000,
        lr=1e-3, warmup_steps=500, eval_every=1000, checkpoint_every=1000, num_threads=0,
    )  # fmt: skip


#: Every named training configuration, ``"<model>-<scale>"``: the CLI's ``--preset`` choices.
TRAIN_PRESETS: dict[str, TrainConfig] = {
    f"{name}-{scale}": _train_config(name, scale) for scale in SCALES for name in MODEL_NAMES
}


def preset(name: str) -> TrainConfig:
    """The :class:`TrainConfig` called ``name`` in :data:`TRAIN_PRESETS`."""
    if name not in TRAIN_PRESETS:
        raise ValueError(f"preset={name!r} is unknown; choose one of {sorted(TRAIN_PRESETS)}")
    return TRAIN_PRESETS[name]
