"""Correspondence accuracy of a trained generator's attention, against the synthetic ground truth.

For every held-out target pixel whose true source point is visible
(:mod:`gpa_lib.pose.data.correspondence`), and for every attention layer of the generator, this module
asks where that pixel's query looks on the layer's grid (the pixel and its true source both mapped to
the grid by integer division):

- **selection recall**: is the true source location in one of the key blocks that GPA's phase 1
  selected for the query's cell?
- **mass near the truth**: the share of the query's attention weights on keys within ``radius``
  grid pixels (Chebyshev distance) of the true source location;
- **argmax near the truth**: is the query's strongest key within ``radius``?

each under three selections on the same queries and keys: ``"gpa"`` (the layer's own phase 1 with
its ``pool``, ``cell``, ``topk``), ``"random"`` (``topk`` blocks drawn uniformly per cell) and
``"dense"`` (every key; recall 1 by construction). Target pixels whose truth is hidden in the source
or that show a part without a flat texture frame (the head) are not counted; their shares of the
foreground are reported next to the metrics (``status``), so that a reader can count them as misses.

Per-pair values are means over the pair's counted pixels (and heads); intervals come from the
bootstrap over pairs (:func:`gpa_lib.pose.metrics.bootstrap_mean`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from gpa_lib.attention import select_key_blocks
from gpa_lib.attention.analysis.diagnostics import selected_mass
from gpa_lib.pose.config import TrainConfig
from gpa_lib.pose.data.cache import PairCache
from gpa_lib.pose.data.correspondence import STATUS_NAMES, VISIBLE
from gpa_lib.pose.data.pair import model_inputs
from gpa_lib.pose.data.synthetic import SyntheticPoses
from gpa_lib.pose.metrics import bootstrap_mean
from gpa_lib.pose.models.blocks import capturing_layers

MODES = ("gpa", "random", "dense")
#: Radii (grid pixels, Chebyshev) of the "mass near the truth" metrics.
RADII = (1, 2)


@dataclass(frozen=True)
class Truth:
    """Ground truth of a held-out set: corr (N, 2, H, W) long (-1: none), status (N, H, W) uint8."""

    corr: torch.Tensor
    status: torch.Tensor

    def __len__(self) -> int:
        return self.corr.shape[0]


def held_out_truth(config: TrainConfig, n: int | None = None) -> Truth:
    """The correspondence of the first ``n`` (default ``n_test``) held-out pairs of ``config``."""
    if config.data != "synthetic":
        raise ValueError(
            f"config.data={config.data!r}: ground truth exists for synthetic data only"
        )
    data = SyntheticPoses(config.n_test, config.size, config.test_seed, views=config.views)
    n = len(data) if n is None else min(n, len(data))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small tensor ops: threads only add synchronisation (see cache)
    try:
        pairs = [data.correspondence(i) for i in range(n)]
    finally:
        torch.set_num_threads(threads)
    return Truth(torch.stack([c for c, _ in pairs]), torch.stack([s for _, s in pairs]))


def status_shares(truth: Truth) -> dict[str, float]:
    """Share of the target foreground (every non-background pixel) in each status, over all pairs."""
    counts = torch.bincount(truth.status.flatten().long(), minlength=len(STATUS_NAMES))
    foreground = float(counts[1:].sum())
    return {name: float(counts[i]) / foreground for i, name in enumerate(STATUS_NAMES) if i}


def capture_qk(
    model: nn.Module, batch: dict[str, torch.Tensor]
) -> list[tuple[nn.Module, Any, Any]]:
    """(layer, q, k) of every attention call of ``model`` on ``batch``, as attention receives them.

    q (B, h, Hq, Wq, D), k (B, h, Hk, Wk, D); the logits are ``q·k / sqrt(D)`` (``"dot"`` affinity).
    """
    with capturing_layers(model) as calls, torch.no_grad():
        model(*model_inputs(batch))
    return [(layer, q, k) for layer, q, k, _ in calls]


def _pair_layer(
    q: torch.Tensor,
    k: torch.Tensor,
    corr: torch.Tensor,
    status: torch.Tensor,
    selections: dict[str, torch.Tensor],
    pool: int,
    cell: int,
) -> dict[str, float]:
    """Metrics of one pair at one layer: q (h, Hq, Wq, D), k (h, Hk, Wk, D), corr (2, H, W).

    ``selections`` maps a mode to its blocks (h, Hq/cell, Wq/cell, topk), or ``None`` for every key.
    """
    heads, Hq, Wq, D = q.shape
    _, Hk, Wk, _ = k.shape
    H, W = status.shape
    ty, tx = torch.nonzero(status == VISIBLE, as_tuple=True)
    if len(ty) == 0:
        return {}
    sy, sx = corr[0, ty, tx], corr[1, ty, tx]
    qy, qx = ty * Hq // H, tx * Wq // W  # (n,) query of each counted target pixel
    ky, kx = sy * Hk // H, sx * Wk // W  # (n,) true source location on the key grid
    n_blocks_x = Wk // pool
    key_y = torch.arange(Hk * Wk, device=q.device) // Wk  # (Nk,)
    key_x = torch.arange(Hk * Wk, device=q.device) % Wk
    block_of_key = (key_y // pool) * n_blocks_x + key_x // pool  # (Nk,)
    true_block = (ky // pool) * n_blocks_x + kx // pool  # (n,)
    distance = torch.maximum(
        (key_y[None] - ky[:, None]).abs(), (key_x[None] - kx[:, None]).abs()
    )  # (n, Nk) Chebyshev distance to the truth
    out: dict[str, list[float]] = {}
    for head in range(heads):
        logits = q[head, qy, qx] @ k[head].flatten(0, 1).T / D**0.5  # (n, Nk)
        for mode, selection in selections.items():
            if selection is None:
                weights = logits.softmax(-1)  # (n, Nk)
                recall = torch.ones(len(ty))
            else:
                blocks = selection[head, qy // cell, qx // cell]  # (n, topk)
                chosen = torch.zeros(len(ty), (Hk // pool) * n_blocks_x, dtype=torch.bool)
                chosen.scatter_(1, blocks, True)  # (n, Nb)
                recall = chosen.gather(1, true_block[:, None])[:, 0].float()
                keep = chosen[:, block_of_key]  # (n, Nk)
                weights = logits.masked_fill(~keep, float("-inf")).softmax(-1)  # (n, Nk)
            strongest = distance.gather(1, weights.argmax(-1, keepdim=True))[:, 0]  # (n,)
            values = {"recall": recall.mean()}
            for radius in RADII:
                near = distance <= radius
                values[f"mass_r{radius}"] = (weights * near).sum(-1).mean()
                values[f"argmax_r{radius}"] = (strongest <= radius).float().mean()
            for name, value in values.items():
                out.setdefault(f"{mode}/{name}", []).append(float(value))
    return {name: float(np.mean(v)) for name, v in out.items()}


def correspondence_accuracy(
    model: nn.Module,
    data: PairCache,
    truth: Truth,
    *,
    batch_size: int = 8,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, dict[str, Any]]:
    """Per-pair accuracy of every attention layer of ``model`` on the first ``len(truth)`` pairs.

    ``data`` holds the held-out pairs ``truth`` describes. Returns ``{layer_name: {"grid", "kind",
    "pool", "cell", "topk", "n_blocks", "per_pair": {metric: (N,) array}, "selected_mass": (N,)}}``;
    metric names are ``"<mode>/<metric>"`` (:data:`MODES`; ``recall``, ``mass_r<r>``,
    ``argmax_r<r>``). Layers where ``topk`` covers every key block are left out. A layer trained as dense is measured with GPA's phase 1 at the model config's
    ``pool``, ``cell`` and ``topk`` (what GPA would have selected on its queries and keys).
    ``selected_mass`` is the mean over the pair's queries of the softmax mass on GPA's selection
    (:func:`~gpa_lib.attention.analysis.diagnostics.err_stat` per pair).
    """
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    layers: dict[str, dict[str, Any]] = {}
    try:
        for start in range(0, len(truth), batch_size):
            index = torch.arange(start, min(start + batch_size, len(truth)))
            batch = data.batch(index, device)
            for layer, q, k in capture_qk(model, batch):
                config = layer.config
                grid = tuple(q.shape[2:4])
                name = f"{grid[0]}x{grid[1]}"
                pool, cell = config.pool, config.cell
                n_blocks = (k.shape[2] // pool) * (k.shape[3] // pool)
                if grid[0] % cell or grid[1] % cell or k.shape[2] % pool or k.shape[3] % pool:
                    continue  # GPA's selection is not defined on this grid
                if config.topk >= n_blocks:
                    continue  # GPA would keep every block: nothing to measure
                topk = config.topk
                entry = layers.setdefault(
                    name,
                    {"grid": list(grid), "kind": layer.kind, "pool": pool, "cell": cell,
                     "topk": topk, "n_blocks": n_blocks, "rows": [], "selected_mass": []},
                )  # fmt: skip
                gpa = select_key_blocks(q, k, pool=pool, cell=cell, topk=topk)  # (B, h, ., ., k)
                mass = selected_mass(q, k, gpa, pool=pool, cell=cell)  # (B, h, Hq, Wq)
                entry["selected_mass"] += mass.mean(dim=(1, 2, 3)).tolist()
                cells = gpa.shape[2] * gpa.shape[3]
                for b in range(q.shape[0]):
                    scores = torch.rand(q.shape[1], cells, n_blocks, generator=generator)
                    random = scores.argsort(-1)[..., :topk].unflatten(1, gpa.shape[2:4])
                    selections = {"gpa": gpa[b], "random": random, "dense": None}
                    entry["rows"].append(
                        _pair_layer(q[b], k[b], truth.corr[int(index[b])],
                                    truth.status[int(index[b])], selections, pool, cell)
                    )  # fmt: skip
    finally:
        model.train(was_training)
    for entry in layers.values():
        rows = entry.pop("rows")
        names = sorted({name for row in rows for name in row})
        entry["per_pair"] = {
            name: np.array([row.get(name, np.nan) for row in rows]) for name in names
        }
        entry["selected_mass"] = np.array(entry["selected_mass"])
    return layers


def accuracy_summary(layers: dict[str, dict[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """JSON of :func:`correspondence_accuracy`: every metric's bootstrap mean and 95% interval."""
    out = {}
    for name, entry in layers.items():
        metrics = {
            metric: bootstrap_mean(values, seed=seed)
            for metric, values in entry["per_pair"].items()
        }
        metrics["selected_mass"] = bootstrap_mean(entry["selected_mass"], seed=seed)
        out[name] = {
            key: entry[key] for key in ("grid", "kind", "pool", "cell", "topk", "n_blocks")
        }
        out[name]["metrics"] = metrics
    return out
