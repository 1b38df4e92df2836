"""Chapter 3's studies: those of a trained generator that its benchmark runs
(``python -m gpa_lib.bench pose``), and one function per section of the chapter.

- :func:`tradeoff_point`: GPA's selection has no parameters, so ``topk`` can change at test time;
  one point of the curve is the held-out SSIM, the correspondence accuracy, the kept attention mass,
  and the memory and time of the largest attention call at one ``topk``.
- :func:`step_cost`: time and peak memory of one training step of a generator (forward, loss and
  backward), for the resolution scaling of GPA against dense attention.
- The chapter's sections (:func:`seeds_study`, :func:`accuracy_study`, :func:`comparison_study`,
  :func:`tradeoff_study`, :func:`memory_study`, :func:`scaling_study`, :func:`headline_study`...):
  each returns a :class:`~gpa_lib.attention.analysis.study.Study` of a table, a figure and the
  ``{glue key: value}`` dict its prose cites; the chapter displays them and glues the dict with
  :func:`gpa_lib.glue.glue_all`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from gpa_lib.attention.analysis.study import Study
from gpa_lib.measure import median_time, peak_memory
from gpa_lib.pose.accuracy import Truth, accuracy_summary, capture_qk, correspondence_accuracy
from gpa_lib.pose.config import TrainConfig
from gpa_lib.pose.data.cache import PairCache
from gpa_lib.pose.losses import GeneratorLoss
from gpa_lib.pose.metrics import bootstrap_mean, record_interval
from gpa_lib.pose.models.blocks import PixelCopy, attend, attention_layers, capturing_layers
from gpa_lib.pose.models.memory import attention_memory
from gpa_lib.pose.train import evaluate_model, predict
from gpa_lib.stats import Interval, direction_verdict


def gpa_layers(model: nn.Module) -> list[nn.Module]:
    """The attention layers of ``model`` that run GPA."""
    return [layer for layer in attention_layers(model) if layer.kind == "gpa"]


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
    with capturing_layers(model) as calls, torch.no_grad():
        predict(model, batch)
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
    (:func:`~gpa_lib.measure.peak_memory`): activations kept for the backward
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


# ------------------------------------------------------------------ chapter 3: one call per section
#
# Each function below computes what one section of chapter 3 shows and returns a
# :class:`~gpa_lib.attention.analysis.study.Study`: a table, a figure and the ``{glue key: value}``
# dict its prose cites; the chapter displays them and glues the dict with
# :func:`gpa_lib.glue.glue_all`.

#: Accuracy glue keys: ``ch3_acc_<name>_<grid side>`` for the metric path of each accuracy record.
ACCURACY_KEYS = {
    "gpa/recall": "gpa_recall",
    "random/recall": "random_recall",
    "gpa/mass_r1": "gpa_mass_r1",
    "random/mass_r1": "random_mass_r1",
    "dense/mass_r1": "all_mass_r1",
    "gpa/argmax_r1": "gpa_argmax_r1",
    "dense/argmax_r1": "all_argmax_r1",
    "selected_mass": "kept_mass",
}
MiB = 2**20


def _closed(fig):
    """Detach ``fig`` from pyplot, so a notebook shows it only where the chapter displays it."""
    from gpa_lib.attention.analysis.figures import _closed as closed

    return closed(fig)


def _interval_values(key: str, entry: dict[str, Any]) -> dict[str, Any]:
    """``{key: mean, key_lo: lower, key_hi: upper}`` of a stored bootstrap entry (``mean``, ``ci95``)."""
    interval = record_interval(entry)
    return {key: interval.estimate, f"{key}_lo": interval.lo, f"{key}_hi": interval.hi}


def verdict(entry: Interval | dict[str, Any]) -> str:
    """How a paired difference (an :class:`~gpa_lib.stats.Interval`, or a stored entry with
    ``mean`` and ``ci95``) compares with zero: "above", "below" or "not separated from" (the
    interval contains 0)."""
    interval = entry if isinstance(entry, Interval) else record_interval(entry)
    return "above" if interval.lo > 0 else "below" if interval.hi < 0 else "not separated from"


def threads_text(threads: int) -> str:
    """``"1 torch thread"``, ``"2 torch threads"``; 0 or less: torch's default."""
    if threads <= 0:
        return "torch's default number of threads"
    return f"{threads} torch thread{'s' if threads != 1 else ''}"


def run_record(payload: dict[str, Any]) -> str:
    """Where a benchmark ran and how loaded the machine was, from its record alone: the provenance's
    CPU, cores, torch threads and date, and the range of the 1-minute load averages it stored."""
    loads: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.startswith("load") and isinstance(value, list) and value:
                    loads.append(float(value[0]))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: v for k, v in payload.items() if k != "provenance"})
    provenance = payload["provenance"]
    device = provenance["device"]
    text = (
        f"{device['cpu']} ({device['cpu_count']} cores), {threads_text(device['torch_threads'])}, "
        f"{provenance['date'][:10]}"
    )
    if loads:
        text += (
            f" (1-minute load average {min(loads):.1f} to {max(loads):.1f} where it was recorded)"
        )
    return text


def setting_values(config) -> dict[str, Any]:
    """The GPA generator's image size and GPA knobs (a :class:`~gpa_lib.pose.config.TrainConfig`)."""
    model = config.model
    values = {"ch3_size": config.size, "ch3_n_pixels": config.size * config.size}
    values |= {f"ch3_{key}": getattr(model, key) for key in ("pool", "cell", "topk")}
    return values | {"ch3_keys_per_query": model.topk * model.pool**2}


def examples_study(config, *, n: int = 8, n_cols: int = 4, width: float = 7.0) -> Study:
    """``n`` held-out synthetic pairs of ``config``'s size and test seed, as a figure ``width`` wide."""
    from gpa_lib.pose.data import SyntheticPoses
    from gpa_lib.pose.figures import plot_pairs

    examples = SyntheticPoses(n, size=config.size, seed=config.test_seed)
    fig = plot_pairs(
        [examples[i] for i in range(n)], n_cols=n_cols, panel_inches=width / (2 * n_cols)
    )
    fig.suptitle("Held-out synthetic pairs (source | target)", fontsize=9, y=1.08)
    return Study(values={}, figure=_closed(fig))


def seeds_study(seeds: dict[str, Any]) -> Study:
    """The several-seed benchmark (``pose_seeds.json``): its table and every number the prose cites."""
    from gpa_lib.pose.figures import seeds_table

    models = seeds["models"]
    values = {
        "ch3_seed_n": len(models["gpa"]["runs"]),
        "ch3_seed_steps": models["gpa"]["runs"][0]["steps"],
        "ch3_seed_n_test": seeds["data"]["test_pairs"],
        "ch3_seed_machine": seeds["machine"],
        "ch3_seed_where": run_record(seeds),
    }
    for name, entry in seeds["differences"].items():
        for metric in ("ssim", "l1_fg"):
            values |= _interval_values(f"ch3_seed_{name}_{metric}", entry[metric])
        values[f"ch3_seed_{name}_ssim_word"] = verdict(entry["ssim"])
    # the paper's claim: copying through GPA beats a generator without attention (U-Net), SSIM
    if "ch3_seed_gpa_minus_unet_ssim_lo" in values:
        unet = values["ch3_seed_gpa_minus_unet_ssim_lo"], values["ch3_seed_gpa_minus_unet_ssim_hi"]
        values["ch3_verdict_vs_unet"] = direction_verdict(*unet)
    for name, entry in models.items():
        values[f"ch3_seed_{name}_ssim"] = entry["pooled"]["ssim"]["mean"]
        values[f"ch3_seed_{name}_n"] = len(entry["runs"])
        runs = entry["runs"]
        values[f"ch3_bench_{name}_train_s"] = sum(r["train_time_s"] for r in runs) / len(runs)
    return Study(values=values, table=seeds_table(seeds))


def accuracy_study(seeds: dict[str, Any]) -> Study:
    """Does GPA find the right source: the accuracy figure, table and numbers of ``pose_seeds.json``.

    Keys ``ch3_acc_<selection>_<metric>_<grid side>`` for the GPA generator, ``ch3_acc_densemodel_…``
    for the dense one (selections gpa, random, all: every key, same q and k), with ``_lo``/``_hi``.
    """
    from gpa_lib.pose.figures import accuracy_table, plot_accuracy

    values: dict[str, Any] = {}
    for name, prefix in (("gpa", "ch3_acc"), ("dense", "ch3_acc_densemodel")):
        for layer, metrics in seeds["models"][name]["accuracy_pooled"].items():
            side = layer.split("x")[0]
            for metric, key in ACCURACY_KEYS.items():
                values |= _interval_values(f"{prefix}_{key}_{side}", metrics[metric])
    for status, share in seeds["truth_status"].items():
        values[f"ch3_truth_{status}_pct"] = 100 * share
    values["ch3_acc_pairs"] = seeds["data"]["accuracy_pairs"]
    return Study(
        values=values,
        table=accuracy_table(seeds),
        figure=_closed(plot_accuracy(seeds, source="pose_seeds")),
    )


def comparison_study(
    scale: str,
    models: Sequence[str],
    overrides: dict[str, Any],
    *,
    out_dir: str,
    num_workers: int = 0,
) -> Study:
    """Train ``models`` once on the ``scale`` presets with ``overrides`` (steps, seed, sizes...).

    The dense generator is measured untrained for its attention memory when it is not trained.
    ``data`` holds the :class:`~gpa_lib.pose.experiment.Comparison` (``comparison``) and its result
    document (``payload``); the figure is the training curves, the table the held-out results.
    """
    from gpa_lib.pose.experiment import compare_models, result_payload
    from gpa_lib.pose.figures import MODEL_LABELS, plot_training_curves, results_table

    comparison = compare_models(
        scale,
        tuple(models),
        overrides=overrides,
        out_dir=out_dir,
        num_workers=num_workers,
        memory_only=tuple(n for n in ("dense",) if n not in models),
    )
    payload = result_payload(comparison)
    values = {
        "ch3_steps": overrides["steps"],
        "ch3_seed": overrides["seed"],
        "ch3_batch": overrides["batch_size"],
        "ch3_threads": threads_text(overrides["num_threads"]),
        "ch3_n_train": len(comparison.train_data),
        "ch3_n_test": len(comparison.test_data),
        "ch3_models_trained": " and ".join(MODEL_LABELS[n] for n in models),
        "ch3_total_train_min": payload["targets"]["total_train_time_s"]["value"] / 60,
    }
    for name in models:
        values[f"ch3_{name}_train_s"] = payload["models"][name]["train_time_s"]
    return Study(
        values=values,
        table=results_table(payload),
        figure=_closed(plot_training_curves(comparison)),
        data={"comparison": comparison, "payload": payload},
    )


def copy_attention_study(comparison, config, *, index: int = 1, n_pixels: int = 4) -> Study:
    """The pixel-copying GPA layer's choice for ``n_pixels`` foreground pixels of held-out pair
    ``index``, spread along the person, with each pixel's true source (``config``: the GPA preset)."""
    from gpa_lib.pose.data import SyntheticPoses
    from gpa_lib.pose.figures import plot_copy_attention

    pair = comparison.test_data.batch(torch.tensor([index]))
    ys, xs = torch.nonzero(pair["target_mask"][0, 0] > 0, as_tuple=True)
    picks = torch.linspace(0, len(ys) - 1, n_pixels).round().long()
    pixels = [(int(ys[i]), int(xs[i])) for i in picks]
    truth_map, _ = SyntheticPoses(
        index + 1, size=config.size, seed=config.test_seed
    ).correspondence(index)
    truth = [tuple(int(c) for c in truth_map[:, y, x]) for y, x in pixels]
    figure = plot_copy_attention(comparison.runs["gpa"].model, pair, pixels, truth)
    return Study(values={}, figure=_closed(figure))


def _retrained_text(tradeoff: dict[str, Any], curve: dict[int, dict[str, Any]]) -> str:
    parts = []
    for point in sorted(tradeoff.get("retrained", []), key=lambda point: point["topk"]):
        switched = curve.get(point["topk"])
        ssim = record_interval(point["ssim"])
        text = f"topk {point['topk']}: {ssim.text(4, signed=False)} retrained"
        if switched is not None:
            text += f" against {switched['ssim']['mean']:.4f} when only switched at test time"
        parts.append(text)
    return "; ".join(parts) if parts else "no retrained runs are stored"


def tradeoff_study(tradeoff: dict[str, Any]) -> Study:
    """The test-time ``topk`` trade-off of ``pose_tradeoff.json``: its figure and cited numbers."""
    from gpa_lib.pose.figures import plot_tradeoff

    curve = {point["topk"]: point for point in tradeoff["gpa"]["curve"]}
    dense = tradeoff["dense"]
    values = {
        "ch3_tradeoff_seed": tradeoff["seed"],
        "ch3_tradeoff_pairs": tradeoff["n_test"],
        "ch3_tradeoff_acc_pairs": tradeoff["accuracy_pairs"],
        "ch3_to_min_topk": min(curve),
        "ch3_to_max_topk": max(curve),
    }
    trained = tradeoff["gpa"]["trained_topk"]
    for label, topk in (("min", min(curve)), ("trained", trained), ("max", max(curve))):
        values[f"ch3_to_ssim_{label}"] = curve[topk]["ssim"]["mean"]
        values[f"ch3_to_mem_{label}_mib"] = curve[topk]["peak_training_bytes"] / MiB
        values[f"ch3_to_ms_{label}"] = curve[topk]["largest_call_time"]["median_s"] * 1e3
    values |= {
        "ch3_to_dense_ssim": dense["ssim"]["mean"],
        "ch3_to_dense_mib": dense["peak_training_bytes"] / MiB,
        "ch3_to_dense_ms": dense["largest_call_time"]["median_s"] * 1e3,
        "ch3_to_machine": tradeoff["machine"],
        "ch3_to_where": run_record(tradeoff),
        "ch3_to_threads": threads_text(tradeoff["threads"]),
        "ch3_to_mem_max_over_trained": values["ch3_to_mem_max_mib"]
        / values["ch3_to_mem_trained_mib"],
        "ch3_to_retrained": _retrained_text(tradeoff, curve),
    }
    return Study(values=values, figure=_closed(plot_tradeoff(tradeoff, source="pose_tradeoff")))


def memory_study(comparison, payload: dict[str, Any]) -> Study:
    """Peak memory of the largest attention call, from the chapter's own comparison: the figure and
    the ratios of its result document's targets (GPA against fused and materialised dense)."""
    from gpa_lib.pose.figures import plot_memory

    targets = payload["targets"]
    mem = targets["memory_ratio_training_vs_materialised_dense"]
    mem_fused = targets["memory_ratio_training_vs_fused_dense"]
    values = {
        "ch3_gpa_backend": mem["gpa_backend"] or "automatic",
        "ch3_mem_gpa_mib": mem["gpa_bytes"] / MiB,
        "ch3_mem_dense_mib": mem["dense_bytes"] / MiB,
        "ch3_mem_ratio": mem["ratio"],
        "ch3_mem_ratio_fwd": targets["memory_ratio_forward_vs_materialised_dense"]["ratio"],
        "ch3_mem_fused_mib": mem_fused["dense_bytes"] / MiB,
        "ch3_mem_fused_ratio": mem_fused["ratio"],
        # GPA's largest attention call needs less memory than fused dense attention (measured once)
        "ch3_verdict_memory": direction_verdict(*[mem_fused["ratio"] - 1] * 2, direction=-1),
        "ch3_mem_reference_mib": mem_fused["gpa_reference_bytes"] / MiB,
        "ch3_mem_reference_fused_ratio": mem_fused["reference_ratio"],
    }
    return Study(values=values, figure=_closed(plot_memory(comparison)))


def headline_study(seeds: dict[str, Any], payload: dict[str, Any]) -> Study:
    """The one figure of the chapter's summary (:func:`~gpa_lib.pose.figures.headline_figure`),
    glued as ``ch3_headline_figure``: GPA's SSIM against the other generators and the memory of
    the largest attention call, from the same records as the sections that cite them."""
    from gpa_lib.pose.figures import headline_figure

    figure = _closed(headline_figure(seeds, payload))
    return Study(values={"ch3_headline_figure": figure}, figure=figure)


def _joined(sides) -> str:
    return " and ".join(str(s) for s in sides)


def scaling_study(scaling: dict[str, Any]) -> Study:
    """Resolution scaling of ``pose_scaling.json``: figure, table and the numbers the prose cites,
    including per model the largest side whose step fits the study's first (the book's) budget."""
    from gpa_lib.pose.figures import plot_scaling, scaling_table

    points = {(p["model"], p["size"]): p for p in scaling["points"]}
    sizes = sorted({p["size"] for p in scaling["points"]})
    cost_sizes = sorted({p["size"] for p in scaling["cost_only"]})
    values = {
        "ch3_scaling_sizes": _joined(sizes),
        "ch3_scaling_steps": scaling["steps"],
        "ch3_scaling_n_seeds": len(scaling["seeds"]),
        "ch3_scaling_machine": scaling["machine"],
        "ch3_scaling_where": run_record(scaling),
        "ch3_scaling_max_step_s": scaling["max_step_s"],
        "ch3_scaling_cost_sizes": _joined(cost_sizes) or "no larger sizes",
        "ch3_sc_small": sizes[0],
        "ch3_sc_large": sizes[-1],
    }
    for side in sizes:
        gpa, dense = points[("gpa", side)]["step_cost"], points[("dense", side)]["step_cost"]
        values[f"ch3_sc_time_ratio_{side}"] = dense["median_s"] / gpa["median_s"]
        values[f"ch3_sc_gpa_step_s_{side}"] = gpa["median_s"]
        values[f"ch3_sc_dense_step_s_{side}"] = dense["median_s"]
        values[f"ch3_sc_mem_ratio_{side}"] = gpa["peak_bytes"] / dense["peak_bytes"]
        values |= _interval_values(
            f"ch3_sc_ssim_gap_{side}", scaling["differences"][str(side)]["ssim"]
        )
    rows = scaling_steps(scaling)
    budget_label, values["ch3_sc_book_budget_s"] = next(iter(scaling["budgets_s"].items()))
    values["ch3_sc_book_budget_what"] = budget_label.split(":", 1)[-1].strip()
    for name in ("gpa", "dense"):
        own = [r for r in rows if r["model"] == name]
        fits = largest_side_within(rows, name, budget_label)
        values[f"ch3_sc_{name}_fits_book"] = (
            f"up to {fits}²"
            if fits
            else f"at none of the measured sides ({own[0]['side']}² already takes "
            f"{own[0]['step_s']:.2f} s)"
        )
        values[f"ch3_sc_{name}_largest_side"] = own[-1]["side"]
        values[f"ch3_sc_{name}_largest_step_s"] = own[-1]["step_s"]
        values[f"ch3_sc_{name}_largest_how"] = own[-1]["how"]
    return Study(
        values=values,
        table=scaling_table(scaling_steps(scaling)),
        figure=_closed(plot_scaling(scaling, source="pose_scaling")),
    )
