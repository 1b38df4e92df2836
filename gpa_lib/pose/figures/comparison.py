"""Figures and tables of chapter 3: the architecture, training curves, outputs, attention, memory."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import torch

from gpa_lib.pose.config import ModelConfig
from gpa_lib.pose.data.pair import model_inputs
from gpa_lib.pose.experiment import Comparison
from gpa_lib.pose.figures.pairs import pose_to_rgb, to_numpy_image

MODEL_LABELS = {
    "gpa": "GPA copying",
    "dense": "dense everywhere",
    "coarse": "coarse attention only",
    "unet": "U-Net (no attention)",
}
MODEL_COLOURS = {"gpa": "tab:red", "dense": "tab:blue", "coarse": "tab:green", "unet": "tab:gray"}


def compact(fig, size: float = 7.5, rect=(0, 0, 1, 1)):
    """Fit ``fig`` to the book's 7-inch column: axis labels, titles, ticks and legends at ``size``
    points at most (the book's style sets 11 to 13), then a tight layout within ``rect``."""
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            current = min((t.get_fontsize() for t in axis.get_ticklabels()), default=size)
            ax.tick_params(axis=name, which="both", labelsize=min(size, current))
        texts = [ax.xaxis.label, ax.yaxis.label, ax.title]
        legend = ax.get_legend()
        texts += legend.get_texts() if legend is not None else []
        for text in texts:
            text.set_fontsize(min(text.get_fontsize(), size))
    fig.tight_layout(rect=rect)
    return fig


def architecture_figure(config: ModelConfig, size: int = 64):
    """A block diagram of the copying generator of ``config`` at ``size`` px: networks and attention."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    S = config.n_scales
    fig, ax = plt.subplots(figsize=(7, 0.8 * S + 1.1))
    ax.set_xlim(0, 11)
    ax.set_ylim(-0.9, S - 0.2)
    ax.axis("off")

    def box(x, y, w, text, colour):
        ax.add_patch(
            FancyBboxPatch(
                (x, y - 0.3),
                w,
                0.6,
                boxstyle="round,pad=0.03",
                facecolor=colour,
                edgecolor="black",
                linewidth=0.8,
            )
        )
        ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=6)

    def arrow(x0, y0, x1, y1, colour="black", style="-|>", text=None):
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0), (x1, y1), arrowstyle=style, mutation_scale=10, color=colour, linewidth=1.2
            )
        )
        if text:
            ax.text(
                (x0 + x1) / 2, (y0 + y1) / 2 + 0.12, text, ha="center", fontsize=5.5, color=colour
            )

    colours = {"dense": "tab:blue", "gpa": "tab:red", "none": "lightgray"}
    for s in range(S):
        y = S - 1 - s  # full resolution at the top
        side = size >> s
        box(0.1, y, 2.2, f"source encoder  {side}²\n{config.widths[s]} ch", "#dbe9f6")
        box(2.5, y, 1.6, f"pose net (source)\n{config.pose_widths[s]} ch", "#e8e8e8")
        label = "pixels: copy + mask" if s == 0 else f"decoder {side}²\n{config.widths[s]} ch"
        box(7.0, y, 2.0, label, "#fde2cf")
        box(9.3, y, 1.6, f"pose net (target)\n{config.pose_widths[s]} ch", "#e8e8e8")
        arrow(9.28, y, 9.02, y)  # the target pose drives the decoder
        kind = config.attention[s]
        if kind != "none":
            what = "RGB" if s == 0 else "features"
            detail = (
                f"GPA pool {config.pool}, cell {config.cell}, top-{config.topk}"
                if kind == "gpa"
                else "dense"
            )
            arrow(4.15, y, 6.95, y, colours[kind], text=f"{detail}\ncopies {what}")
        else:
            ax.text(5.55, y - 0.05, "no attention", ha="center", fontsize=5.5, color="gray")
        if s > 0:
            arrow(1.2, y + 0.7, 1.2, y + 0.3)  # the encoder goes down in resolution
            arrow(8.0, y + 0.3, 8.0, y + 0.7)  # the decoder goes up
    ax.text(1.2, S - 0.55, "source image + source pose", ha="center", fontsize=6.5)
    ax.text(10.1, S - 0.55, "target pose", ha="center", fontsize=6.5)
    ax.text(8.0, -0.75, "the decoder starts at the coarsest scale", ha="center", fontsize=6.5)
    ax.set_title(
        "Attention-copying generator: keys from the source, queries from the target pose",
        fontsize=8,
    )
    plt.close(fig)  # shown where the chapter places it (a glued figure)
    return fig


def plot_training_curves(comparison: Comparison, smooth: int = 20):
    """Training loss (moving average over ``smooth`` steps) and validation SSIM against the step."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 2.8))
    for name, run in comparison.runs.items():
        h = run.result.history
        loss = np.asarray(h["loss"])
        window = max(1, min(smooth, len(loss)))
        averaged = np.convolve(loss, np.ones(window) / window, mode="valid")
        left.plot(
            np.asarray(h["step"])[window - 1 :],
            averaged,
            label=MODEL_LABELS[name],
            color=MODEL_COLOURS[name],
        )
        right.plot(
            h["eval_step"],
            h["val_ssim"],
            marker="o",
            markersize=3,
            label=MODEL_LABELS[name],
            color=MODEL_COLOURS[name],
        )
    left.set_xlabel("optimisation step")
    left.set_ylabel(f"training loss (mean of {smooth} steps)")
    right.set_xlabel("optimisation step")
    right.set_ylabel("validation SSIM")
    right.legend(fontsize=8)
    return compact(fig)


def plot_outputs(comparison: Comparison, indices: Sequence[int]):
    """Rows of held-out pairs: source, target pose, ground truth, then every model's output."""
    import matplotlib.pyplot as plt

    batch = comparison.test_data.batch(torch.as_tensor(list(indices)))
    outputs = {}
    with torch.no_grad():
        for name, run in comparison.runs.items():
            device = next(run.model.parameters()).device
            inputs = [tensor.to(device) for tensor in model_inputs(batch)]
            outputs[name] = run.model(*inputs).cpu()
    columns = ["source", "target pose", "ground truth"] + [MODEL_LABELS[n] for n in outputs]
    fig, axes = plt.subplots(
        len(indices),
        len(columns),
        figsize=(7, 7 / len(columns) * 1.1 * len(indices)),
        squeeze=False,
        gridspec_kw={"wspace": 0.03, "hspace": 0.03},
    )
    for row in range(len(indices)):
        pictures = [
            to_numpy_image(batch["source"][row]),
            pose_to_rgb(batch["target_pose"][row]),
            to_numpy_image(batch["target"][row]),
        ]
        pictures += [to_numpy_image(out[row]) for out in outputs.values()]
        for col, picture in enumerate(pictures):
            axes[row, col].imshow(picture)
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if row == 0:
                axes[row, col].set_title(columns[col], fontsize=8)
    plt.close(fig)  # shown where the chapter places it (a glued figure)
    return fig


def copy_attention(model, batch: dict[str, torch.Tensor], pixels: Sequence[tuple[int, int]]):
    """Where the pixel-copying GPA layer looked for target ``pixels`` (y, x) of the first pair.

    Returns a list of dicts with ``pixel``, ``blocks`` (the selected key blocks as (y0, x0, side) in
    source pixels) and ``weights`` (H, W): the attention of the first head over source pixels (zero
    outside the selected blocks).
    """
    layer = model.copy
    if layer is None or layer.kind != "gpa":
        raise ValueError("the model has no GPA pixel-copying layer")
    config = layer.config
    device = next(model.parameters()).device
    calls: list = []
    layer.capture = calls
    try:
        with torch.no_grad():
            details = model(
                *(tensor[:1].to(device) for tensor in model_inputs(batch)),
                details=True,
            )
    finally:
        layer.capture = None
    _, q, k, _ = (t.cpu() if isinstance(t, torch.Tensor) else t for t in calls[0])
    # q (1, h, H, W, D), k (1, h, Hs, Ws, D)
    selection = details["selections"][0][0, 0].cpu()  # (H/cell, W/cell, topk)
    Hs, Ws = k.shape[2:4]
    blocks_per_row = Ws // config.pool
    out = []
    for y, x in pixels:
        chosen = selection[y // config.cell, x // config.cell]  # (topk,)
        blocks, tokens = [], []
        for b in chosen.tolist():
            y0, x0 = (b // blocks_per_row) * config.pool, (b % blocks_per_row) * config.pool
            blocks.append((y0, x0, config.pool))
            tokens += [(y0 + i, x0 + j) for i in range(config.pool) for j in range(config.pool)]
        ys = torch.tensor([t[0] for t in tokens])
        xs = torch.tensor([t[1] for t in tokens])
        logits = (k[0, 0, ys, xs] @ q[0, 0, y, x]) / q.shape[-1] ** 0.5  # (topk * pool^2,)
        weights = torch.zeros(Hs, Ws)
        weights[ys, xs] = torch.softmax(logits, dim=0)
        out.append({"pixel": (y, x), "blocks": blocks, "weights": weights.numpy()})
    return out


def plot_copy_attention(
    model,
    batch: dict[str, torch.Tensor],
    pixels: Sequence[tuple[int, int]],
    truth: Sequence[tuple[int, int]] | None = None,
):
    """Target with the chosen pixels, and per pixel the source with GPA's blocks and attention.

    ``truth`` (one (y, x) per pixel, (-1, -1) for none) marks each pixel's true source with a cross.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    looks = copy_attention(model, batch, pixels)
    fig, axes = plt.subplots(
        1, 1 + len(looks), figsize=(7, 7 / (1 + len(looks)) * 1.3), squeeze=False
    )
    axes = axes[0]
    axes[0].imshow(to_numpy_image(batch["target"][0]))
    axes[0].set_title("target, query pixels", fontsize=8)
    colours = plt.cm.tab10.colors
    for index, look in enumerate(looks):
        y, x = look["pixel"]
        axes[0].scatter([x], [y], s=40, color=colours[index], edgecolors="white", linewidths=1)
        ax = axes[index + 1]
        ax.imshow(to_numpy_image(batch["source"][0]))
        weights = look["weights"] / look["weights"].max()  # the pixel's strongest key is 1
        ax.imshow(weights, cmap="magma", vmin=0, vmax=1, alpha=0.8 * (weights > 0).astype(float))
        for y0, x0, side in look["blocks"]:
            ax.add_patch(
                Rectangle(
                    (x0 - 0.5, y0 - 0.5),
                    side,
                    side,
                    fill=False,
                    edgecolor=colours[index],
                    linewidth=1,
                )
            )
        if truth is not None and truth[index][0] >= 0:
            ty, tx = truth[index]
            ax.scatter([tx], [ty], s=60, marker="x", color="cyan", linewidths=1.5)
        ax.set_title(f"source, pixel ({y}, {x})", fontsize=8)
    for ax in axes:
        ax.set_xlabel("x (pixels)", fontsize=7)
        ax.set_ylabel("y (pixels)", fontsize=7)
        ax.tick_params(labelsize=6)
    return compact(fig)


def plot_memory(comparison: Comparison):
    """Peak attention memory per model (MiB, log scale): inference and training, both dense kernels.

    A GPA model trained on another backend gets one more bar: its GPA layers on the reference backend.
    Models of ``comparison.memory_only`` (measured untrained) are included.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    memories = {n: comparison.memory(n) for n in [*comparison.runs, *comparison.memory_only]}
    names = [n for n, memory in memories.items() if memory["fused"]["calls"]]
    extra = [n for n in names if "gpa_reference" in memories[n]]
    labels = [MODEL_LABELS[n] for n in names] + [
        f"{MODEL_LABELS[n]} (reference backend)" for n in extra
    ]
    labels = [textwrap.fill(label, 14) for label in labels]
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.2), sharey=True)
    width = 0.38
    for ax, phase in zip(axes, ("forward", "training"), strict=True):
        key = f"peak_{phase}_bytes"
        for offset, impl in ((-width / 2, "materialised"), (width / 2, "fused")):
            values = [memories[n][impl][key] / 2**20 for n in names]
            bars = ax.bar(
                np.arange(len(names)) + offset,
                values,
                width,
                hatch="" if impl == "fused" else "//",
                color=[MODEL_COLOURS[n] for n in names],
                edgecolor="black",
            )
            ax.bar_label(bars, fmt="%.2g", fontsize=7)
        if extra:
            values = [memories[n]["gpa_reference"][key] / 2**20 for n in extra]
            bars = ax.bar(
                len(names) + np.arange(len(extra)),
                values,
                width,
                color=[MODEL_COLOURS[n] for n in extra],
                alpha=0.5,
                edgecolor="black",
            )
            ax.bar_label(bars, fmt="%.2g", fontsize=7)
        ax.set_xticks(np.arange(len(labels)), labels, fontsize=6)
        ax.set_yscale("log")
        ax.set_title(
            "inference (one pair)" if phase == "forward" else "training step (one pair)", fontsize=9
        )
    axes[0].set_ylabel("peak attention memory (MiB)")
    handles = [
        Patch(facecolor="white", edgecolor="black", hatch="//", label="dense layers: score matrix"),
        Patch(facecolor="white", edgecolor="black", label="dense layers: fused kernel"),
    ]
    axes[0].legend(handles=handles, fontsize=7)
    return compact(fig)


def results_table(payload: dict):
    """A pandas DataFrame: per model the held-out metrics (mean ± sem), parameters, memory, time."""
    import pandas as pd

    rows = []
    for name, m in payload["models"].items():
        t = m["test"]
        rows.append(
            {
                "model": MODEL_LABELS.get(name, name),
                "SSIM": f"{t['ssim']['mean']:.3f} ± {t['ssim']['sem']:.3f}",
                "SSIM fg": f"{t['ssim_fg']['mean']:.3f} ± {t['ssim_fg']['sem']:.3f}",
                "PSNR (dB)": f"{t['psnr']['mean']:.2f} ± {t['psnr']['sem']:.2f}",
                "L1 fg": f"{t['l1_fg']['mean']:.3f} ± {t['l1_fg']['sem']:.3f}",
                "parameters (k)": round(m["parameters"] / 1e3),
                "attention MiB (train)": round(
                    m["attention_memory_bytes"]["fused"]["peak_training"] / 2**20, 2
                ),
                "… if materialised": round(
                    m["attention_memory_bytes"]["materialised"]["peak_training"] / 2**20, 2
                ),
                "training (s)": round(m["train_time_s"]),
            }
        )
    return pd.DataFrame(rows).set_index("model")
