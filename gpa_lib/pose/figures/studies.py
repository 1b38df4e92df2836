"""Figures and tables of the chapter-3 benchmark studies (``python -m gpa_lib.bench pose``).

Each takes the JSON document of one study (``data/results/pose_<study>.json``, read with
:func:`gpa_lib.results.read_result`): ``seeds`` (:func:`seeds_table`, :func:`accuracy_table`,
:func:`plot_accuracy`), ``tradeoff`` (:func:`plot_tradeoff`), ``scaling`` (:func:`plot_scaling`).
A figure given the ``source`` its payload was read from carries the provenance footer of
:mod:`gpa_lib.stamp`, with :data:`POSE_CODE` as the code its numbers depend on.
"""

from __future__ import annotations

import numpy as np

from gpa_lib.pose.figures.comparison import MODEL_COLOURS, MODEL_LABELS, compact
from gpa_lib.pose.metrics import record_interval
from gpa_lib.stamp import stamp_results

MiB = 2**20
#: The code the numbers of a stamped pose figure depend on (paths relative to the repository).
POSE_CODE = ("gpa_lib/pose",)
#: How the accuracy modes are labelled in figures and tables.
MODE_LABELS = {
    "gpa": "GPA's selection",
    "random": "random blocks",
    "dense": "all keys (same q, k)",
}


def _interval(entry: dict, digits: int = 3) -> str:
    return record_interval(entry).text(digits, signed=False)


def seeds_table(payload: dict):
    """Per model: held-out metrics over seeds and pairs (mean [95% interval]) and per-seed SSIM."""
    import pandas as pd

    rows = []
    for name, model in payload["models"].items():
        if "pooled" not in model:
            continue
        pooled = model["pooled"]
        rows.append(
            {
                "model": MODEL_LABELS.get(name, name),
                "seeds": pooled["ssim"]["n_seeds"],
                "SSIM": _interval(pooled["ssim"]),
                "SSIM fg": _interval(pooled["ssim_fg"]),
                "L1 fg": _interval(pooled["l1_fg"]),
                "SSIM per seed": ", ".join(f"{v:.3f}" for v in pooled["ssim"]["per_seed"]),
                "training (s, mean)": round(np.mean([r["train_time_s"] for r in model["runs"]])),
            }
        )
    return pd.DataFrame(rows).set_index("model")


def accuracy_table(payload: dict, models: tuple[str, ...] = ("gpa", "dense")):
    """Per model and layer: selection recall and attention mass near the truth, over seeds and pairs."""
    import pandas as pd

    rows = []
    for name in models:
        pooled = payload["models"].get(name, {}).get("accuracy_pooled", {})
        for layer, metrics in pooled.items():
            run = payload["models"][name]["runs"][0]["accuracy"][layer]
            rows.append(
                {
                    "model": MODEL_LABELS.get(name, name),
                    "layer (grid)": f"{layer} ({run['kind']}, top {run['topk']} of "
                    f"{run['n_blocks']} blocks)",
                    "recall: GPA": _interval(metrics["gpa/recall"]),
                    "recall: random": _interval(metrics["random/recall"]),
                    "mass r≤1: GPA": _interval(metrics["gpa/mass_r1"]),
                    "mass r≤1: random": _interval(metrics["random/mass_r1"]),
                    "mass r≤1: all keys": _interval(metrics["dense/mass_r1"]),
                    "argmax r≤1: GPA": _interval(metrics["gpa/argmax_r1"]),
                    "kept mass (err_stat)": _interval(metrics["selected_mass"]),
                }
            )
    return pd.DataFrame(rows).set_index(["model", "layer (grid)"])


def plot_accuracy(
    payload: dict, models: tuple[str, ...] = ("gpa", "dense"), *, source: str | None = None
):
    """Bars with 95% intervals: selection recall (left) and attention mass within 1 pixel (right).
    ``source``, the name of the committed result ``payload`` was read from (``"pose_seeds"``), puts its
    file, commit, machine and date in a footer (:mod:`gpa_lib.stamp`); ``None``, no footer."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(7, 3.0))
    bars = []  # (label, layer, metric entries)
    for name in models:
        for layer, metrics in payload["models"].get(name, {}).get("accuracy_pooled", {}).items():
            bars.append((name, layer, metrics))
    width = 0.8 / 3
    for ax, metric, modes in (
        (axes[0], "recall", ("gpa", "random")),
        (axes[1], "mass_r1", ("gpa", "random", "dense")),
    ):
        for j, mode in enumerate(modes):
            entries = [m[f"{mode}/{metric}"] for _, _, m in bars]
            means = np.array([e["mean"] for e in entries])
            errors = np.abs(np.array([e["ci95"] for e in entries]).T - means)
            ax.bar(np.arange(len(bars)) + (j - 1) * width, means, width, yerr=errors, capsize=3,
                   label=MODE_LABELS[mode], color=f"C{j}")  # fmt: skip
        ax.set_xticks(
            np.arange(len(bars)),
            [f"{n}\n{layer}" for n, layer, _ in bars],
            fontsize=7,
        )
        ax.set_xlabel("generator, layer (grid)")
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("selection recall (share of pixels)")
    axes[1].set_ylabel("attention mass within 1 px of the truth")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    return _stamped(compact(fig), source, payload)


def _stamped(fig, source: str | None, payload: dict, rect=(0, 0, 1, 1)):
    """``fig`` with the footer of the committed result ``source`` (none when ``source`` is None)."""
    return stamp_results(fig, {source: payload} if source else {}, POSE_CODE, rect=rect)


def _curve(points: list[dict], key) -> np.ndarray:
    return np.array([key(p) for p in points], dtype=float)


def _layer_metric(point: dict, layer: str, metric: str) -> float:
    """A layer's accuracy metric at one curve point; 1 where topk kept every block (not measured)."""
    entry = point["accuracy"].get(layer)
    return 1.0 if entry is None else entry["metrics"][metric]["mean"]


def plot_tradeoff(payload: dict, *, source: str | None = None):
    """Against test-time ``topk``: SSIM, selection recall and kept mass, memory, time (2 x 2 panels).
    ``source``, the name of the committed result ``payload`` was read from (``"pose_tradeoff"``), puts its
    file, commit, machine and date in a footer (:mod:`gpa_lib.stamp`); ``None``, no footer."""
    import matplotlib.pyplot as plt

    curve = payload["gpa"]["curve"]
    dense = payload.get("dense")
    topk = _curve(curve, lambda p: p["topk"])
    fig, axes = plt.subplots(2, 2, figsize=(7, 5.6))
    gpa_colour, dense_colour = MODEL_COLOURS["gpa"], MODEL_COLOURS["dense"]

    ax = axes[0, 0]
    ssim = _curve(curve, lambda p: p["ssim"]["mean"])
    lo, hi = (
        _curve(curve, lambda p: p["ssim"]["ci95"][0]),
        _curve(curve, lambda p: p["ssim"]["ci95"][1]),
    )
    ax.plot(topk, ssim, "o-", color=gpa_colour, label="GPA generator, topk changed at test time")
    ax.fill_between(topk, lo, hi, color=gpa_colour, alpha=0.2)
    ax.axvline(
        payload["gpa"]["trained_topk"], color="grey", ls=":", label="topk it was trained with"
    )
    for point in payload.get("retrained", []):
        ax.errorbar(point["topk"], point["ssim"]["mean"], fmt="s", color="C2",
                    yerr=np.abs(np.array(point["ssim"]["ci95"])[:, None] - point["ssim"]["mean"]))  # fmt: skip
    if payload.get("retrained"):
        ax.plot([], [], "s", color="C2", label="GPA retrained at that topk")
    if dense:
        ax.axhline(
            dense["ssim"]["mean"], color=dense_colour, label="dense generator (trained dense)"
        )
        ax.axhspan(*dense["ssim"]["ci95"], color=dense_colour, alpha=0.15)
    ax.set_ylabel("held-out SSIM")
    ax.legend(fontsize=7)

    ax = axes[0, 1]
    layers = [la for la, e in curve[0]["accuracy"].items() if e["kind"] == "gpa"]
    for j, layer in enumerate(layers):
        recall = _curve(curve, lambda p, la=layer: _layer_metric(p, la, "gpa/recall"))
        kept = _curve(curve, lambda p, la=layer: _layer_metric(p, la, "selected_mass"))
        ax.plot(topk, recall, "o-", color=f"C{j}", label=f"selection recall, {layer}")
        ax.plot(topk, kept, "s--", color=f"C{j}", label=f"kept softmax mass (err_stat), {layer}")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("share")
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    memory = _curve(curve, lambda p: p["peak_training_bytes"] / MiB)
    ax.plot(topk, memory, "o-", color=gpa_colour, label="GPA (recompute backend)")
    if dense:
        ax.axhline(
            dense["peak_training_bytes"] / MiB, color=dense_colour, label="dense (fused SDPA)"
        )
    ax.set_yscale("log")
    ax.set_ylabel("peak attention memory,\ntraining step of one pair (MiB)")
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    time_ms = _curve(curve, lambda p: p["largest_call_time"]["median_s"] * 1e3)
    ax.plot(topk, time_ms, "o-", color=gpa_colour, label="GPA (recompute backend)")
    if dense:
        ax.axhline(dense["largest_call_time"]["median_s"] * 1e3, color=dense_colour,
                   label="dense (fused SDPA)")  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("time of the largest attention call,\nforward + backward (ms)")
    ax.legend(fontsize=7)
    for ax in axes.flat:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("topk (key blocks per cell; clipped to all blocks of a layer)")
    return _stamped(compact(fig), source, payload)


def plot_scaling(payload: dict, *, source: str | None = None):
    """Against image side: training-step time with the budgets, peak step memory, SSIM after the same
    steps (intervals over seeds and pairs). Cost-only sizes are hollow markers, extrapolated steps
    (too slow to measure) crosses on a dotted line.
    ``source``, the name of the committed result ``payload`` was read from (``"pose_scaling"``), puts its
    file, commit, machine and date in a footer (:mod:`gpa_lib.stamp`); ``None``, no footer."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(7, 3.2))
    for name in ("gpa", "dense"):
        points = sorted(
            (p for p in payload["points"] if p["model"] == name), key=lambda p: p["size"]
        )
        extra = [p for p in payload.get("cost_only", []) if p["model"] == name]
        if not points:
            continue
        sizes = _curve(points, lambda p: p["size"])
        style = {"color": MODEL_COLOURS[name], "label": MODEL_LABELS.get(name, name)}
        axes[0].plot(sizes, _curve(points, lambda p: p["step_cost"]["median_s"]), "o-", **style)
        axes[1].plot(
            sizes, _curve(points, lambda p: p["step_cost"]["peak_bytes"] / MiB), "o-", **style
        )
        axes[1].plot(sizes, _curve(points, lambda p: p["attention_peak_training_bytes"] / MiB), "s--",
                     color=style["color"])  # fmt: skip
        previous = points[-1]
        for p in sorted(extra, key=lambda p: p["size"]):
            x = [previous["size"], p["size"]]
            if p["measured"]:
                step = p["step_cost"]["median_s"]
                axes[0].plot(
                    x, [previous["step_cost"]["median_s"], step], "-", color=style["color"]
                )
                axes[0].plot(p["size"], step, "o", mfc="white", color=style["color"])
                memory = [
                    previous["step_cost"]["peak_bytes"] / MiB,
                    p["step_cost"]["peak_bytes"] / MiB,
                ]
                axes[1].plot(x, memory, "-", color=style["color"])
                axes[1].plot(p["size"], memory[1], "o", mfc="white", color=style["color"])
                previous = p
            else:
                start = previous["step_cost"]["median_s"]
                axes[0].plot(x, [start, p["predicted_step_s"]], ":", color=style["color"])
                axes[0].plot(p["size"], p["predicted_step_s"], "x", color=style["color"])
        ssim = _curve(points, lambda p: p["ssim"]["mean"])
        errors = np.abs(np.array([p["ssim"]["ci95"] for p in points]).T - ssim)
        axes[2].errorbar(sizes, ssim, yerr=errors, fmt="o-", capsize=3, **style)
    for j, (label, seconds) in enumerate(payload.get("budgets_s", {}).items()):
        axes[0].axhline(seconds, color="0.5", ls=("--", "-.")[j % 2], lw=1, label=label)
    axes[0].set_ylabel("training step, batch of 8 (s)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("peak memory (MiB); solid: whole step,\ndashed: largest attention call")
    n_seeds = len(payload.get("seeds", [payload.get("seed", 0)]))
    axes[2].set_ylabel(f"held-out SSIM after {payload['steps']} steps\n({n_seeds} seeds)")
    every_size = {p["size"] for p in payload["points"]} | {
        p["size"] for p in payload.get("cost_only", [])
    }
    for ax in axes:
        ax.set_xlabel("image side (pixels)")
        ax.set_xticks(sorted(every_size))
    axes[2].set_xticks(sorted({p["size"] for p in payload["points"]}))
    axes[1].set_yscale("log")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=4, fontsize=7)
    rect = (0, 0, 1, 0.9)  # the legend sits above the panels
    return _stamped(compact(fig, rect=rect), source, payload, rect=rect)


def scaling_table(steps: list[dict]):
    """Per model and image side: the training step (s), measured or extrapolated, and the budgets it
    fits; ``steps`` are the rows of :func:`gpa_lib.pose.studies.scaling_steps`."""
    import pandas as pd

    rows = [
        {"model": MODEL_LABELS.get(r["model"], r["model"]), "side (px)": r["side"],
         "step (s)": round(r["step_s"], 3), "how": r["how"],
         **{f"fits {label}": ok for label, ok in r["fits"].items()}}
        for r in steps
    ]  # fmt: skip
    return pd.DataFrame(rows).set_index(["model", "side (px)"])


def headline_figure(seeds: dict, payload: dict):
    """The chapter's result in one figure, 7 inches wide.

    Left: GPA's held-out SSIM minus each other generator's (paired, 95% intervals over seeds and
    pairs, from the several-seed benchmark ``seeds``); right: peak memory of the largest attention
    call in a training step for one pair (``payload``: the chapter's own comparison, its targets).
    """
    import matplotlib.pyplot as plt

    others = [n for n in ("dense", "coarse", "unet") if f"gpa_minus_{n}" in seeds["differences"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 2.8), width_ratios=(1.2, 1))
    for row, name in enumerate(others):
        entry = seeds["differences"][f"gpa_minus_{name}"]["ssim"]
        lo, hi = entry["ci95"]
        left.errorbar(entry["mean"], row, xerr=[[entry["mean"] - lo], [hi - entry["mean"]]],
                      fmt="o", color=MODEL_COLOURS[name], capsize=3)  # fmt: skip
    left.axvline(0, color="black", linewidth=0.8)
    left.set_yticks(range(len(others)), [MODEL_LABELS[n] for n in others], fontsize=8)
    left.set_ylim(len(others) - 0.5, -0.5)
    left.set_xlabel("GPA's held-out SSIM minus that of …", fontsize=8)
    left.tick_params(labelsize=7)
    training = payload["targets"]["memory_ratio_training_vs_fused_dense"]
    materialised = payload["targets"]["memory_ratio_training_vs_materialised_dense"]
    backend = training["gpa_backend"] or "automatic"
    bars = {f"GPA\n{backend}": training["gpa_bytes"]}
    if backend != "reference":
        bars["GPA\nreference"] = training["gpa_reference_bytes"]
    bars |= {"dense\nfused": training["dense_bytes"], "dense\nscores": materialised["dense_bytes"]}
    colours = ["tab:red", "mistyrose"][: len(bars) - 2] + ["tab:blue", "lightsteelblue"]
    drawn = right.bar(range(len(bars)), [b / MiB for b in bars.values()], color=colours,
                      edgecolor="black")  # fmt: skip
    right.bar_label(drawn, fmt="%.3g", fontsize=7)
    right.set_xticks(range(len(bars)), list(bars), fontsize=7)
    right.set_yscale("log")
    right.set_ylabel("MiB, largest call, training step", fontsize=8)
    right.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig
