"""Image metrics of pose morphing: SSIM, PSNR and L1, over the whole image and over the foreground.

Images are (B, 3, H, W) in [-1, 1] (data range 2); masks (B, 1, H, W) in {0, 1}. Every metric returns
one value per image (B,), so that results can carry their spread over test pairs.

- SSIM: torchmetrics' ``structural_similarity_index_measure`` (Gaussian window 11 px, sigma 1.5 px,
  k1 0.01, k2 0.03). Its per-image value is the mean of its SSIM map; the foreground SSIM is the mean
  of the same map over the foreground pixels.
- PSNR in dB: ``10 log10(range^2 / MSE)`` with range 2, through torchmetrics; over the foreground the
  MSE is taken over foreground pixels only.
- L1: mean absolute difference over pixels and channels, in [-1, 1] units (0 to 2).

FID and LPIPS need pretrained networks, which this compendium never downloads:
:func:`optional_metric_status` says whether they can run here and why not.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from gpa_lib.stats import Interval

DATA_RANGE = 2.0  # images live in [-1, 1]
METRIC_NAMES = ("ssim", "ssim_fg", "psnr", "psnr_fg", "l1", "l1_fg")


def _check_pair(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> None:
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(
            f"pred and target must both be (B, C, H, W), got pred {tuple(pred.shape)}, "
            f"target {tuple(target.shape)}"
        )
    if mask is not None and (
        mask.dim() != 4
        or mask.shape[1] != 1
        or mask.shape[0] != pred.shape[0]
        or mask.shape[2:] != pred.shape[2:]
    ):
        raise ValueError(
            f"mask must be (B, 1, H, W) = ({pred.shape[0]}, 1, {pred.shape[2]}, "
            f"{pred.shape[3]}), got {tuple(mask.shape)}"
        )


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-image mean of (B, C, H, W) values over the pixels where mask (B, 1, H, W) is 1: (B,)."""
    if mask is None:
        return values.flatten(1).mean(dim=1)
    weights = mask.to(values.dtype).expand_as(values)  # (B, C, H, W)
    total = weights.flatten(1).sum(dim=1)
    if (total == 0).any():
        raise ValueError(
            "mask is empty for some image: a foreground metric needs foreground pixels"
        )
    return (values * weights).flatten(1).sum(dim=1) / total


def ssim(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """SSIM per image (B,), over the whole image or, with ``mask``, over its foreground pixels."""
    _check_pair(pred, target, mask)
    whole, ssim_map = structural_similarity_index_measure(
        pred, target, data_range=DATA_RANGE, reduction="none", return_full_image=True
    )  # (B,), (B, C, H, W)
    return whole if mask is None else _masked_mean(ssim_map, mask)


def psnr(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """PSNR in dB per image (B,), data range 2; with ``mask`` the MSE is over foreground pixels."""
    _check_pair(pred, target, mask)
    if mask is None:
        return peak_signal_noise_ratio(
            pred, target, data_range=DATA_RANGE, reduction="none", dim=(1, 2, 3)
        )
    mse = _masked_mean((pred - target).square(), mask)  # (B,)
    return 10 * torch.log10(DATA_RANGE**2 / mse.clamp_min(1e-12))


def l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error per image (B,) in [-1, 1] units; with ``mask`` over foreground pixels."""
    _check_pair(pred, target, mask)
    return _masked_mean((pred - target).abs(), mask)


def image_metrics(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """All of :data:`METRIC_NAMES` per image: {name: (B,)}; ``_fg`` ones over ``mask``'s foreground."""
    pred, target, mask = pred.detach().float(), target.detach().float(), mask.detach().float()
    return {
        "ssim": ssim(pred, target),
        "ssim_fg": ssim(pred, target, mask),
        "psnr": psnr(pred, target),
        "psnr_fg": psnr(pred, target, mask),
        "l1": l1(pred, target),
        "l1_fg": l1(pred, target, mask),
    }


@torch.no_grad()
def evaluate(
    predict: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    batches: Iterable[dict[str, torch.Tensor]],
) -> dict[str, np.ndarray]:
    """Per-pair metrics of ``predict(batch) -> (B, 3, H, W)`` over ``batches``: {name: (N,) array}.

    Each batch holds ``target`` (B, 3, H, W) and ``target_mask`` (B, 1, H, W).
    """
    values: dict[str, list] = {name: [] for name in METRIC_NAMES}
    for batch in batches:
        pred = predict(batch)
        for name, value in image_metrics(pred, batch["target"], batch["target_mask"]).items():
            values[name].append(value.cpu())
    return {name: torch.cat(v).numpy().astype(np.float64) for name, v in values.items()}


def summarize(values: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation, standard error and 95% interval (mean +- 1.96 sem) of per-pair values."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    std = float(values.std(ddof=1)) if n > 1 else 0.0
    sem = std / math.sqrt(n) if n > 1 else 0.0
    mean = float(values.mean())
    return {
        "mean": mean,
        "std": std,
        "sem": sem,
        "ci95": [mean - 1.96 * sem, mean + 1.96 * sem],
        "n": n,
    }


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """``a - b`` on the same test pairs: :func:`summarize` of the per-pair differences."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must hold the same pairs, got shapes {a.shape} and {b.shape}")
    return summarize(a - b)


#: How :func:`bootstrap_interval` made its interval (``Interval.method``).
PAIRS_BOOTSTRAP = "percentile bootstrap over test pairs"


def bootstrap_interval(
    values: np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> Interval:
    """Mean of per-pair ``values`` (NaN dropped) and its percentile bootstrap interval over pairs,
    as the project's one :class:`~gpa_lib.stats.Interval` (``n``: the pairs kept); all NaN for no
    values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return Interval(math.nan, math.nan, math.nan, level, PAIRS_BOOTSTRAP, 0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return Interval(float(values.mean()), float(lo), float(hi), level, PAIRS_BOOTSTRAP, len(values))


def interval_record(interval: Interval, **extra) -> dict[str, Any]:
    """The stored form of ``interval`` in pose's results: ``{"mean", "ci95": [lo, hi], "n", **extra}``.

    The committed ``data/results/pose_*.json`` and their readers (chapter 3, the figures) use these
    field names, so pose keeps them at the storage boundary; :func:`record_interval` reads them
    back. In code, pose works with :class:`~gpa_lib.stats.Interval`, as recsys does.
    """
    return {"mean": interval.estimate, "ci95": [interval.lo, interval.hi], "n": interval.n, **extra}


def record_interval(entry: Mapping[str, Any], *, level: float = 0.95) -> Interval:
    """The :class:`~gpa_lib.stats.Interval` of a stored pose entry (``mean``, ``ci95`` and, when
    present, ``n`` or ``n_pairs``): the inverse of :func:`interval_record`."""
    lo, hi = entry["ci95"]
    n = entry.get("n", entry.get("n_pairs"))
    return Interval(float(entry["mean"]), float(lo), float(hi), level, PAIRS_BOOTSTRAP, n)


def bootstrap_mean(
    values: np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """:func:`bootstrap_interval` in the stored form of pose's results (:func:`interval_record`):
    ``{"mean", "ci95": [lo, hi], "n", "n_boot"}`` (``ci95`` at ``level``); all NaN for no values."""
    interval = bootstrap_interval(values, n_boot=n_boot, seed=seed, level=level)
    return interval_record(interval, n_boot=n_boot)


def bootstrap_seeds_pairs(
    values: np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Mean of ``values`` (n_seeds, n_pairs) and a two-level bootstrap interval over seeds and pairs.

    Each resample draws seeds with replacement, then, for each drawn seed, pairs with replacement:
    the interval holds both the spread between training runs and between test pairs. Also returns the
    per-seed means (``per_seed``) and their spread (``seed_std``, ddof 1).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must have shape (n_seeds, n_pairs), got {values.shape}")
    n_seeds, n_pairs = values.shape
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, n_seeds, (n_boot, n_seeds))  # (n_boot, S)
    pairs = rng.integers(0, n_pairs, (n_boot, n_seeds, n_pairs))  # (n_boot, S, N)
    means = values[seeds[..., None], pairs].mean(axis=(1, 2))
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    per_seed = values.mean(axis=1)
    return {
        "mean": float(values.mean()),
        "ci95": [float(lo), float(hi)],
        "per_seed": per_seed.tolist(),
        "seed_std": float(per_seed.std(ddof=1)) if n_seeds > 1 else 0.0,
        "n_seeds": n_seeds,
        "n_pairs": n_pairs,
        "n_boot": n_boot,
    }


# --- Metrics that need pretrained networks -------------------------------------------------------

#: Environment variables naming local weight files (never downloaded).
FID_WEIGHTS_ENV = (
    "GPA_LIB_FID_WEIGHTS"  # torch-fidelity Inception (pt_inception-2015-12-05-6726825d.pth)
)
LPIPS_WEIGHTS_ENV = (
    "GPA_LIB_LPIPS_WEIGHTS"  # torchvision AlexNet weights (alexnet-owt-7be5be79.pth)
)


def _weights(path: str | os.PathLike | None, env: str) -> Path | None:
    path = path if path is not None else os.environ.get(env)
    return Path(path) if path else None


def optional_metric_status(
    fid_weights: str | os.PathLike | None = None, lpips_weights: str | os.PathLike | None = None
) -> dict[str, str | None]:
    """``{"fid": reason or None, "lpips": reason or None}``: ``None`` when the metric can run here.

    FID needs ``torch-fidelity`` and its Inception weights at a local path (``fid_weights`` or
    ``$GPA_LIB_FID_WEIGHTS``); LPIPS needs ``torchvision`` and AlexNet weights at a local path
    (``lpips_weights`` or ``$GPA_LIB_LPIPS_WEIGHTS``). Nothing is downloaded.
    """
    status: dict[str, str | None] = {}
    fid_path = _weights(fid_weights, FID_WEIGHTS_ENV)
    if importlib.util.find_spec("torch_fidelity") is None:
        status["fid"] = "torch-fidelity is not installed (pip install torch-fidelity)"
    elif fid_path is None or not fid_path.is_file():
        status["fid"] = (
            f"no Inception weights at a local path (set ${FID_WEIGHTS_ENV} or pass "
            f"fid_weights=); found {str(fid_path)!r}"
        )
    else:
        status["fid"] = None
    lpips_path = _weights(lpips_weights, LPIPS_WEIGHTS_ENV)
    if importlib.util.find_spec("torchvision") is None:
        status["lpips"] = "torchvision is not installed (LPIPS needs its AlexNet)"
    elif lpips_path is None or not lpips_path.is_file():
        status["lpips"] = (
            f"no AlexNet weights at a local path (set ${LPIPS_WEIGHTS_ENV} or pass "
            f"lpips_weights=); found {str(lpips_path)!r}"
        )
    else:
        status["lpips"] = None
    return status


def _require(name: str, status: dict[str, str | None]) -> None:
    if status[name] is not None:
        raise RuntimeError(f"{name.upper()} is not available here: {status[name]}")


def fid(
    real: torch.Tensor, fake: torch.Tensor, *, weights: str | os.PathLike | None = None
) -> float:
    """Fréchet Inception Distance between image sets (N, 3, H, W) in [-1, 1], from local weights."""
    status = optional_metric_status(fid_weights=weights)
    _require("fid", status)
    from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3

    path = str(_weights(weights, FID_WEIGHTS_ENV))
    extractor = NoTrainInceptionV3(
        name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=path
    )
    metric = FrechetInceptionDistance(feature=extractor, normalize=True)
    metric.update(((real + 1) / 2).clamp(0, 1), real=True)
    metric.update(((fake + 1) / 2).clamp(0, 1), real=False)
    return float(metric.compute())


def lpips(
    pred: torch.Tensor, target: torch.Tensor, *, weights: str | os.PathLike | None = None
) -> torch.Tensor:
    """LPIPS (AlexNet) per image (B,) of images in [-1, 1], from local AlexNet weights."""
    status = optional_metric_status(lpips_weights=weights)
    _require("lpips", status)
    import torchvision
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    path = _weights(weights, LPIPS_WEIGHTS_ENV)
    # pnet_rand=True builds the AlexNet trunk without fetching weights; the local ones fill it. The
    # LPIPS linear heads ship inside torchmetrics.
    net = _NoTrainLpips(net="alex", pretrained=True, pnet_rand=True)
    alexnet = torchvision.models.alexnet()
    alexnet.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    for trunk_slice in (
        net.net.slice1,
        net.net.slice2,
        net.net.slice3,
        net.net.slice4,
        net.net.slice5,
    ):
        for name, layer in trunk_slice.named_children():  # named by their index in alexnet.features
            layer.load_state_dict(alexnet.features[int(name)].state_dict())
    return net(pred.float(), target.float(), normalize=False).flatten()
