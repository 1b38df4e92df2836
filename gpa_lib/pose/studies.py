"""Studies of a trained generator that the chapter-3 benchmark runs (``python -m gpa_lib.bench pose``).

- :func:`tradeoff_point`: GPA's selection has no parameters, so ``topk`` can change at test time;
  one point of the curve is the held-out SSIM, the correspondence accuracy, the kept attention mass,
  and the memory and time of the largest attention call at one ``topk``.
- :func:`step_cost`: time and peak memory of one training step of a generator (forward, loss and
  backward), for the resolution scaling of GPA against dense attention.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from gpa_lib.attention.analysis.measure import median_time, peak_memory
from gpa_lib.pose.accuracy import Truth, accuracy_summary, capture_qk, correspondence_accuracy
from gpa_lib.pose.config import TrainConfig
from gpa_lib.pose.data.cache import PairCache
from gpa_lib.pose.losses import GeneratorLoss
from gpa_lib.pose.metrics import bootstrap_mean
from gpa_lib.pose.models.blocks import PixelCopy, _Capturing, attend
from gpa_lib.pose.models.memory import attention_memory
from gpa_lib.pose.train import evaluate_model, predict


def gpa_layers(model: nn.Module) -> list[_Capturing]:
    """The attention layers of ``model`` that run GPA."""
    return [m for m in model.modules() if isinstance(m, _Capturing) and m.kind == "gpa"]


@contextlib.contextmanager
def topk_at_test_time(model: nn.Module, topk: int, batch: dict[str, torch.Tensor]):
    """Run every GPA layer of ``model`` with ``topk`` blocks per cell (at most all its key blocks).

    ``batch`` (one pair is enough) tells each layer's key grid. Yields ``{grid: topk used}``.
    """
    layers = gpa_layers(model)
    saved = [layer.config for layer in layers]
    used = {}
    try:
        for layer, q, k in capture_qk(model, batch):
            if layer.kind != "gpa":
                continue
            n_blocks = (k.shape[2] // layer.config.pool) * (k.shape[3] // layer.config.pool)
            layer.config = dataclasses.replace(layer.config, topk=min(topk, n_blocks))
            used[f"{q.shape[2]}x{q.shape[3]}"] = layer.config.topk
        yield used
    finally:
        for layer, config in zip(layers, saved, strict=True):
            layer.config = config


def largest_call_time(
    model: nn.Module, batch: dict[str, torch.Tensor], *, repeats: int = 3
) -> dict[str, Any]:
    """Median time of a training step (forward and backward) of the model's largest attention call.

    The call with the most queries times keys, as the model runs it (GPA layers with their current
    config, dense layers on their ``dense_impl``); copied pixels need no gradient.
    """
    calls = []
    layers = [m for m in model.modules() if isinstance(m, _Capturing)]
    for layer in layers:
        layer.capture = calls
    try:
        with torch.no_grad():
            predict(model, batch)
    finally:
        for layer in layers:
            layer.capture = None
    layer, q, k, v = max(
        calls, key=lambda c: c[1].shape[2] * c[1].shape[3] * c[2].shape[2] * c[2].shape[3]
    )
    q_leaf, k_leaf = q.clone().requires_grad_(True), k.clone().requires_grad_(True)
    v_leaf = v.clone().requires_grad_(not isinstance(layer, PixelCopy))

    def step():
        attend(q_leaf, k_leaf, v_leaf, layer.kind, layer.config).sum().backward()

    timing = median_time(step, warmup=1, repeats=repeats)
    return {"kind": layer.kind, "grid": list(q.shape[2:4]), "median_s": timing["median_s"],
            "times_s": timing["times_s"]}  # fmt: skip


def tradeoff_point(
    model: nn.Module,
    topk: int,
    test_data: PairCache,
    truth: Truth,
    *,
    n_test: int,
    batch_size: int = 8,
    seed: int = 0,
) -> dict[str, Any]:
    """One point of the test-time ``topk`` curve of a trained GPA generator (see the module docstring).

    SSIM over the first ``n_test`` held-out pairs (bootstrap mean and interval), the accuracy of
    :func:`~gpa_lib.pose.accuracy.correspondence_accuracy` on the pairs of ``truth``, the peak memory
    of the largest attention call (training step and inference) and its training-step time.
    """
    one_pair = test_data.batch(torch.tensor([0]))
    with topk_at_test_time(model, topk, one_pair) as used:
        tic = time.perf_counter()
        test = evaluate_model(model, test_data, batch_size=batch_size, limit=n_test)
        eval_s = time.perf_counter() - tic
        accuracy = accuracy_summary(correspondence_accuracy(model, test_data, truth, seed=seed))
        memory = attention_memory(model, one_pair)
        timing = largest_call_time(model, one_pair)
    return {
        "topk": topk,
        "topk_used": used,
        "ssim": bootstrap_mean(test["ssim"], seed=seed),
        "ssim_per_pair": np.round(test["ssim"], 6).tolist(),
        "l1_fg": bootstrap_mean(test["l1_fg"], seed=seed),
        "accuracy": accuracy,
        "peak_training_bytes": memory["peak_training_bytes"],
        "peak_forward_bytes": memory["peak_forward_bytes"],
        "largest_call_time": timing,
        "eval_s": eval_s,
    }


def step_cost(
    model: nn.Module, config: TrainConfig, batch: dict[str, torch.Tensor], *, repeats: int = 3
) -> dict[str, Any]:
    """Median time and peak extra memory of one training step (forward, loss, backward) on ``batch``.

    Memory is the CPU allocator's peak during the step beyond what was allocated before it
    (:func:`~gpa_lib.attention.analysis.measure.peak_memory`): activations kept for the backward
    pass, attention included, and gradients; not the weights.
    """
    loss_fn = GeneratorLoss(config)
    model.train()

    def step():
        model.zero_grad(set_to_none=True)
        loss, _ = loss_fn(predict(model, batch), batch, None)
        loss.backward()

    timing = median_time(step, warmup=1, repeats=repeats)
    _, peak = peak_memory(step)
    model.zero_grad(set_to_none=True)
    model.eval()
    return {"median_s": timing["median_s"], "times_s": timing["times_s"], "peak_bytes": int(peak)}


def scaling_steps(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every model's training step per image side from a scaling result, against its budgets.

    One row per (model, side), smallest side first: ``step_s`` (the median step of a fresh model),
    ``how`` ("measured" or "extrapolated": a cost-only side predicted to pass the study's
    ``max_step_s``) and, per entry of ``payload["budgets_s"]``, whether the step fits it.
    """
    rows = []
    for name in ("gpa", "dense"):
        found = {
            p["size"]: (p["step_cost"]["median_s"], "measured")
            for p in payload["points"]
            if p["model"] == name
        }
        for p in payload.get("cost_only", []):
            if p["model"] == name:
                found[p["size"]] = (
                    (p["step_cost"]["median_s"], "measured")
                    if p["measured"]
                    else (p["predicted_step_s"], "extrapolated")
                )
        for side, (step, how) in sorted(found.items()):
            fits = {label: step <= budget for label, budget in payload.get("budgets_s", {}).items()}
            rows.append({"model": name, "side": side, "step_s": step, "how": how, "fits": fits})
    return rows


def largest_side_within(rows: list[dict[str, Any]], model: str, budget_label: str) -> int | None:
    """The largest side whose step of ``model`` fits the budget ``budget_label``; None if none does."""
    sides = [r["side"] for r in rows if r["model"] == model and r["fits"][budget_label]]
    return max(sides) if sides else None
