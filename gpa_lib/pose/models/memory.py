"""Measured peak memory of a generator's attention calls.

One forward pass records the queries, keys and values of every attention layer; each call is then
run again on its own, and :func:`gpa_lib.measure.peak_memory` measures the peak extra bytes
it allocates (the CPU allocator's events through the PyTorch profiler, or CUDA's allocator
statistics): once for inference (no autograd) and once for training (forward and backward, the
gradients of q and k included). Convolutions and everything else outside attention are not counted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from gpa_lib.measure import peak_memory
from gpa_lib.pose.data.pair import model_inputs
from gpa_lib.pose.models.blocks import PixelCopy, attend, capturing_layers

#: A materialised score matrix above this many bytes is predicted, not run (it would not fit).
MAX_MATERIALISED_BYTES = 8 * 2**30


def _materialised_bytes(q: torch.Tensor, k: torch.Tensor) -> int:
    """Bytes of one (B, h, Nq, Nk) score matrix of q (B, h, Hq, Wq, D) and k (B, h, Hk, Wk, D)."""
    B, h, Hq, Wq, _ = q.shape
    return B * h * Hq * Wq * k.shape[2] * k.shape[3] * q.element_size()


def attention_memory(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    *,
    dense_impl: str | None = None,
    gpa_backend: str | None = None,
    max_materialised_bytes: int = MAX_MATERIALISED_BYTES,
) -> dict[str, Any]:
    """Peak extra bytes of each attention call of ``model`` on ``batch`` and their maximum.

    ``batch`` holds ``source`` (B, 3, H, W), ``source_pose`` and ``target_pose`` (B, 18, H, W) on the
    model's device. ``dense_impl`` (``"fused"`` or ``"materialised"``) overrides how dense layers run,
    ``gpa_backend`` (a name of :func:`gpa_lib.attention.backends.backend_names`) the backend of GPA layers.
    Returns ``{"calls": [...], "complete", "peak_forward_bytes", "peak_training_bytes"}``; each call
    has its ``kind``, ``dense_impl``, ``gpa_backend``, ``grid`` (Hq, Wq), ``keys`` (Hk * Wk),
    ``heads``, ``forward_bytes``, ``training_bytes`` and ``measured``. A materialised dense call whose score matrix would exceed
    ``max_materialised_bytes`` is not run: its inference peak is predicted by
    :func:`gpa_lib.attention.analysis.complexity.dense_cost` and its training peak left ``None``
    (``measured`` False). A model without attention gives zeros.
    """
    from gpa_lib.attention.analysis.complexity import AttentionSizes, dense_cost

    device = batch["source"].device
    with capturing_layers(model) as captured, torch.no_grad():
        model(*model_inputs(batch))
    calls = []
    for layer, q, k, v in captured:
        kind_impl = (dense_impl or layer.config.dense_impl) if layer.kind == "dense" else None
        config = layer.config
        if layer.kind == "gpa" and gpa_backend is not None:
            config = dataclasses.replace(config, backend=gpa_backend)
        call = {
            "kind": layer.kind,
            "dense_impl": kind_impl,
            "gpa_backend": config.backend if layer.kind == "gpa" else None,
            "grid": list(q.shape[2:4]),
            "keys": int(k.shape[2] * k.shape[3]),
            "heads": int(q.shape[1]),
            "batch": int(q.shape[0]),
            "measured": True,
        }
        if kind_impl == "materialised" and _materialised_bytes(q, k) > max_materialised_bytes:
            sizes = AttentionSizes.of(q, k, v)
            calls.append({**call, "measured": False, "training_bytes": None,
                          "forward_bytes": int(dense_cost(sizes).peak_bytes)})  # fmt: skip
            continue
        with torch.no_grad():
            _, forward_bytes = peak_memory(
                lambda layer=layer, config=config, q=q, k=k, v=v: attend(
                    q, k, v, layer.kind, config, dense_impl=dense_impl
                ),
                device,
            )
        q_leaf, k_leaf = q.clone().requires_grad_(True), k.clone().requires_grad_(True)
        # Copied source pixels are data, not features: they need no gradient.
        v_leaf = v.clone().requires_grad_(not isinstance(layer, PixelCopy))

        def step(layer=layer, config=config, q_leaf=q_leaf, k_leaf=k_leaf, v_leaf=v_leaf):
            out = attend(q_leaf, k_leaf, v_leaf, layer.kind, config, dense_impl=dense_impl)
            out.sum().backward()

        _, training_bytes = peak_memory(step, device)
        calls.append({**call, "forward_bytes": int(forward_bytes),
                      "training_bytes": int(training_bytes)})  # fmt: skip
    return {
        "calls": calls,
        "complete": all(c["measured"] for c in calls),  # False: some peaks predicted or missing
        "peak_forward_bytes": max((c["forward_bytes"] for c in calls), default=0),
        "peak_training_bytes": max(
            (c["training_bytes"] for c in calls if c["training_bytes"] is not None), default=0
        ),
    }
