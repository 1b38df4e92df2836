"""The chapter-3 experiment: train every model on the same pairs and compare them on held-out pairs.

:func:`compare_models` renders the pairs once into a tensor cache, trains each model of
:data:`~gpa_lib.pose.config.MODEL_NAMES` with the same data, order, steps and seed, evaluates it on
the fixed held-out set (per pair, so that every number has its spread), measures the peak memory of
its attention calls and returns everything; :func:`result_payload` turns that into the JSON of
``data/results/pose_morphing.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gpa_lib.pose.config import MODEL_NAMES, TRAIN_PRESETS, TrainConfig
from gpa_lib.pose.data.cache import PairCache
from gpa_lib.pose.metrics import METRIC_NAMES, paired_difference, summarize
from gpa_lib.pose.models import attention_memory, build_model
from gpa_lib.pose.train import TrainResult, evaluate_model, load_data, train

#: What the issue asks of the full profile.
TARGET_SSIM_GAIN = 0.03  # GPA over the U-Net, held-out SSIM
TARGET_SSIM_TOLERANCE = 0.01  # GPA at most this far below dense-everywhere
TARGET_MEMORY_RATIO = 0.25  # GPA's peak attention memory over dense's


@dataclass
class ModelRun:
    """One trained model and its measurements."""

    name: str
    result: TrainResult
    test: dict[str, np.ndarray]  # per-pair metrics on the held-out set
    # From attention_memory: "fused" and "materialised" (how dense layers run; GPA layers as trained)
    # and, for a GPA model not trained on the reference backend, "gpa_reference".
    memory: dict[str, dict[str, Any]]

    @property
    def model(self) -> torch.nn.Module:
        return self.result.model


@dataclass
class Comparison:
    """Every model's run, the shared data and the wall time of the whole comparison."""

    runs: dict[str, ModelRun]
    train_data: PairCache
    test_data: PairCache
    scale: str
    wall_time_s: float
    configs: dict[str, TrainConfig] = field(default_factory=dict)
    # Attention memory of models measured untrained (memory does not depend on the weights), by name.
    memory_only: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def memory(self, name: str) -> dict[str, dict[str, Any]] | None:
        """The attention memory of model ``name``, trained or measured untrained; None if neither."""
        if name in self.runs:
            return self.runs[name].memory
        return self.memory_only.get(name)


def compare_models(
    scale: str = "full",
    models: tuple[str, ...] = MODEL_NAMES,
    *,
    overrides: dict[str, Any] | None = None,
    out_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    data: tuple[PairCache, PairCache] | None = None,
    num_workers: int = 0,
    memory_only: tuple[str, ...] = (),
) -> Comparison:
    """Train and evaluate ``models`` (names of :data:`MODEL_NAMES`) at ``scale`` on the same pairs.

    ``overrides`` changes TrainConfig fields of every model (``steps``, ``n_train``, ...);
    ``out_dir/<name>`` receives each model's checkpoints (a re-run resumes or reuses them);
    ``data`` reuses caches already built; ``num_workers`` processes render the pairs. Memory is
    measured on one held-out pair; the models of ``memory_only`` are built (untrained) for their
    attention memory alone.
    """
    start = time.perf_counter()
    configs = {
        name: TRAIN_PRESETS[f"{name}-{scale}"].replace(**(overrides or {})) for name in models
    }
    first = configs[models[0]]
    if data is None:
        data = load_data(first, cache_dir, num_workers=num_workers)
    train_data, test_data = data
    device = (
        "cuda"
        if first.device == "cuda" or (first.device == "auto" and torch.cuda.is_available())
        else "cpu"
    )
    one_pair = test_data.batch(torch.tensor([0]), device)
    runs = {}
    for name, config in configs.items():
        run_dir = None if out_dir is None else Path(out_dir) / name
        result = train(
            config, train_data, test_data, out_dir=run_dir, progress=progress, description=name
        )
        test = evaluate_model(result.model, test_data, batch_size=config.batch_size, device=device)
        memory = {
            impl: attention_memory(result.model, one_pair, dense_impl=impl)
            for impl in ("fused", "materialised")
        }
        if "gpa" in config.model.attention and config.model.backend != "reference":
            # What the same layers need on the reference backend, which keeps its attention weights.
            memory["gpa_reference"] = attention_memory(
                result.model, one_pair, gpa_backend="reference"
            )
        runs[name] = ModelRun(name, result, test, memory)
    untrained = {}
    for name in memory_only:
        torch.manual_seed(first.seed)
        model = build_model(TRAIN_PRESETS[f"{name}-{scale}"].model).to(device).eval()
        untrained[name] = {
            impl: attention_memory(model, one_pair, dense_impl=impl)
            for impl in ("fused", "materialised")
        }
    wall = time.perf_counter() - start
    return Comparison(runs, train_data, test_data, scale, wall, configs, untrained)


def _thin(values: list, at_most: int = 200) -> list:
    step = max(1, len(values) // at_most)
    return values[::step]


def result_payload(comparison: Comparison) -> dict[str, Any]:
    """The JSON document of a comparison: per model and the target checks."""
    models = {}
    for name, run in comparison.runs.items():
        config = run.result.config
        history = run.result.history
        models[name] = {
            "parameters": run.result.parameters,
            "attention": list(config.model.attention) if config.model.kind == "copy" else [],
            "train_time_s": run.result.train_time_s,
            "steps": run.result.steps_done,
            "batch_size": config.batch_size,
            "test": {metric: summarize(run.test[metric]) for metric in METRIC_NAMES},
            "attention_memory_bytes": {
                impl: {
                    "peak_forward": m["peak_forward_bytes"],
                    "peak_training": m["peak_training_bytes"],
                    "calls": m["calls"],
                }
                for impl, m in run.memory.items()
            },
            "history": {
                "step": _thin(history["step"]),
                "loss": _thin(history["loss"]),
                **{k: v for k, v in history.items() if k.startswith("val_") or k == "eval_step"},
            },
            "config": config.to_dict(),
        }
    payload: dict[str, Any] = {
        "scale": comparison.scale,
        "data": {
            "train_pairs": len(comparison.train_data),
            "test_pairs": len(comparison.test_data),
            "size": list(comparison.test_data.size),
            "kind": next(iter(comparison.configs.values())).data,
        },
        "models": models,
        "untrained_attention_memory_bytes": {
            name: {
                impl: {
                    "peak_forward": m["peak_forward_bytes"],
                    "peak_training": m["peak_training_bytes"],
                    "calls": m["calls"],
                }
                for impl, m in memory.items()
            }
            for name, memory in comparison.memory_only.items()
        },  # fmt: skip
        "comparison_wall_time_s": comparison.wall_time_s,
        "targets": targets(comparison),
    }
    return payload


def targets(comparison: Comparison) -> dict[str, Any]:
    """The issue's targets, each with the measured values and whether it is met (None: not run)."""
    runs = comparison.runs
    out: dict[str, Any] = {}
    if "gpa" in runs and "unet" in runs:
        ssim = paired_difference(runs["gpa"].test["ssim"], runs["unet"].test["ssim"])
        l1_fg = paired_difference(runs["unet"].test["l1_fg"], runs["gpa"].test["l1_fg"])
        out["gpa_minus_unet_ssim"] = {
            **ssim,
            "target": TARGET_SSIM_GAIN,
            "met": ssim["mean"] >= TARGET_SSIM_GAIN,
        }
        # "Clearly": the 95% interval of the paired improvement excludes zero.
        out["unet_minus_gpa_l1_fg"] = {**l1_fg, "met": l1_fg["ci95"][0] > 0}
    if "gpa" in runs and "dense" in runs:
        ssim = paired_difference(runs["gpa"].test["ssim"], runs["dense"].test["ssim"])
        out["gpa_minus_dense_ssim"] = {
            **ssim,
            "target": -TARGET_SSIM_TOLERANCE,
            "met": ssim["mean"] >= -TARGET_SSIM_TOLERANCE,
        }
    dense_memories = comparison.memory("dense")
    if "gpa" in runs and dense_memories is not None:
        for impl in ("materialised", "fused"):
            for phase in ("forward", "training"):
                gpa = runs["gpa"].memory["fused"][f"peak_{phase}_bytes"]
                dense_memory = dense_memories[impl]
                dense = dense_memory[f"peak_{phase}_bytes"]
                if phase == "training" and not dense_memory["complete"]:
                    dense = None  # the largest dense call was too big to run
                ratio = gpa / dense if dense else None
                reference = runs["gpa"].memory.get("gpa_reference", runs["gpa"].memory["fused"])
                reference_bytes = reference[f"peak_{phase}_bytes"]
                out[f"memory_ratio_{phase}_vs_{impl}_dense"] = {
                    "gpa_bytes": gpa,
                    "gpa_backend": runs["gpa"].result.config.model.backend,
                    "dense_bytes": dense,
                    "ratio": ratio,
                    "target": TARGET_MEMORY_RATIO,
                    "met": None if ratio is None else ratio <= TARGET_MEMORY_RATIO,
                    # The same GPA layers on the reference backend (it keeps its attention weights).
                    "gpa_reference_bytes": reference_bytes,
                    "reference_ratio": reference_bytes / dense if dense else None,
                }
    total = sum(run.result.train_time_s for run in runs.values())
    out["total_train_time_s"] = {"value": total, "target": 600.0, "met": total <= 600.0}
    return out
