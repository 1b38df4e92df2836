"""The figures of chapter 1 and the selection figure of chapters 1 and 2. A figure drawn from a
committed ``data/results/*.json`` carries the provenance footer of :mod:`gpa_lib.stamp`, with
:data:`ATTENTION_CODE` as the code its numbers depend on.

The selection panels are drawn on the image in token (pixel) coordinates, so a cell of
``cell x cell`` tokens and a block of ``pool x pool`` tokens are squares of that many pixels. Every
chapter figure is returned closed (detached from pyplot): the chapter shows it where it displays it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from gpa_lib.stamp import stamp_provenance


def show_grid_image(ax: Axes, image: torch.Tensor, *, lines: int | None = None, title: str = ""):
    """``image`` (3, H, W) in [0, 1] in pixel coordinates, with grid lines every ``lines`` pixels."""
    _, H, W = image.shape
    ax.imshow(image.permute(1, 2, 0).numpy(), extent=(0, W, H, 0))
    if lines:
        for y in range(0, H + 1, lines):
            ax.axhline(y, color="white", lw=0.5)
        for x in range(0, W + 1, lines):
            ax.axvline(x, color="white", lw=0.5)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    ax.set_title(title)


def outline_cells(
    ax: Axes, cells: Sequence[tuple[int, int]], cell: int, colours: Sequence[str]
) -> None:
    """Outline query cells given as (row, col) on the cell grid, one colour each."""
    for (cy, cx), colour in zip(cells, colours, strict=True):
        ax.add_patch(Rectangle((cx * cell, cy * cell), cell, cell, fill=False, ec=colour, lw=2.5))


def mark_blocks(
    ax: Axes,
    blocks: Sequence[int],
    pool: int,
    blocks_per_row: int,
    colour: str,
    *,
    filled: bool = True,
    numbered: bool = False,
) -> None:
    """Mark key blocks (indices row-major over the block grid): filled squares, or numbered outlines."""
    for rank, block in enumerate(blocks):
        by, bx = divmod(int(block), blocks_per_row)
        corner = (bx * pool, by * pool)
        if filled:
            ax.add_patch(Rectangle(corner, pool, pool, color=colour, alpha=0.75))
        else:
            ax.add_patch(Rectangle(corner, pool, pool, fill=False, ec=colour, lw=2))
        if numbered:
            ax.text(
                corner[0] + pool / 2, corner[1] + pool / 2, str(rank),
                color="yellow", ha="center", va="center", fontsize=8,
            )  # fmt: skip


# ------------------------------------------------------------------ the figures of chapter 1

#: How chapter 1 names each method it times, in one place: legends, tables and prose use these.
METHOD_LABELS = {
    "sdpa": "sdpa (exact, fused)",
    "materialised": "materialised (exact, score matrix)",
    "auto": "auto (GPA, backend=None)",
    "cpu": "cpu (GPA, fused CPU kernel)",
    "reference": "reference (GPA, pure torch)",
    "recompute": "recompute (GPA, recomputed backward)",
    "phase1": "phase1 (GPA selection alone)",
    "authors": "authors (their GPA_module)",
    "floor": "floor (this CPU's least time)",
}

TOKENS_LABEL = "query tokens = key tokens (H×W)"

#: The code the numbers of a stamped attention figure depend on (paths relative to the repository).
ATTENTION_CODE = ("gpa_lib/attention",)


def _log_log(ax: Axes, ylabel: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(TOKENS_LABEL)
    ax.set_ylabel(ylabel)


def _closed(fig: Figure) -> Figure:
    """Detach ``fig`` from pyplot, so a notebook shows it only where the chapter displays it."""
    plt.close(fig)
    return fig


def algorithm_figure(
    target_image: torch.Tensor,
    source_image: torch.Tensor,
    shown_cells: Sequence[tuple[int, int]],
    selection: torch.Tensor,
    heat: torch.Tensor,
    *,
    cell: int,
    pool: int,
    topk: int,
) -> Figure:
    """Three query cells on the target, their ``topk`` key blocks on the source and the block
    scores of the first cell; ``selection`` is (cells, topk) block indices, ``heat`` (Hk/p, Wk/p)."""
    colours = ["tab:red", "tab:cyan", "tab:orange"][: len(shown_cells)]
    size = target_image.shape[-1]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.7))
    show_grid_image(axes[0], target_image, title="target (queries): cells")
    show_grid_image(axes[1], source_image, title=f"source (keys): top-{topk} blocks")
    outline_cells(axes[0], shown_cells, cell, colours)
    for blocks, colour in zip(selection.tolist(), colours, strict=True):
        mark_blocks(axes[1], blocks, pool, size // pool, colour)
    im = axes[2].imshow(heat.numpy(), extent=(0, size, size, 0), cmap="magma")
    fig.colorbar(im, ax=axes[2], label="mean P over the cell")
    axes[2].set_title("block scores, red cell")
    axes[2].set_xlabel("x (pixels)")
    axes[2].set_ylabel("y (pixels)")
    fig.tight_layout()
    return _closed(fig)


def sweep_figure(sweep, methods: Sequence[str]) -> Figure:
    """Peak memory and time per call against tokens: the model as lines, measurements as dots."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for method, colour in zip(methods, palette[: len(methods)], strict=True):
        part = sweep[sweep.method == method]
        for ax, measured, model, word in (
            (axes[0], "measured_mib", "model_mib", "model"),
            (axes[1], "measured_ms", "model_ms", "predicted"),
        ):
            ax.plot(part.tokens, part[measured], "o", color=colour, label=f"{method} measured")
            ax.plot(
                part.tokens, part[model], "-", color=colour, alpha=0.6, label=f"{method} {word}"
            )
    _log_log(axes[0], "peak extra memory (MiB)")
    _log_log(axes[1], "time per call (ms)")
    axes[0].legend(fontsize=8, ncol=2)
    axes[0].set_title("memory: model (lines), measured (dots)")
    axes[1].set_title("time: roofline (lines), median (dots)")
    fig.tight_layout()
    return _closed(fig)


def training_figure(training, methods: Sequence[str]) -> Figure:
    """Peak memory and median time of one training step against tokens, one line per method;
    the time panel draws the range of the timed calls as error bars."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0))
    for method in methods:
        part = training[training.method == method].dropna(subset=["ms"])
        axes[0].plot(part.tokens, part.peak_mib, "o-", label=method)
        spread = [part.ms - part.ms_min, part.ms_max - part.ms]
        axes[1].errorbar(part.tokens, part.ms, yerr=spread, fmt="o-", capsize=3, label=method)
    _log_log(axes[0], "peak extra memory of a training step (MiB)")
    _log_log(axes[1], "time per step (ms; median, bars: call range)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return _closed(fig)


QUALITY_AXES = {
    "topk": "topk (blocks per cell)",
    "pool": "pool (block side, tokens)",
    "cell": "cell (side, tokens)",
}


def quality_figure(quality, size: int) -> Figure:
    """Kept softmax mass (top row) and relative output error (bottom row) against each knob."""
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.4), sharey="row")
    for column, knob in enumerate(QUALITY_AXES):
        for kind, marker in (("image-like", "o-"), ("random", "s--")):
            part = quality[(quality.knob == knob) & (quality.features == kind)]
            axes[0, column].plot(part.value, part.mass_mean, marker, label=kind)
            axes[1, column].plot(part.value, part.error_total, marker, label=kind)
        for row in range(2):
            axes[row, column].set_xscale("log", base=2)
            axes[row, column].set_xlabel(QUALITY_AXES[knob])
    axes[0, 0].set_ylabel("mean share of softmax mass kept")
    axes[1, 0].set_ylabel("relative output error")
    axes[0, 0].legend()
    fig.suptitle(f"GPA against exact attention on a {size}×{size} grid")
    fig.tight_layout()
    return _closed(fig)


def split_figure(split) -> Figure:
    """Stacked bars: median time of phase 1 and phase 2 per resolution and setting."""
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [
        f"{r.setting}\n{r.size}² (p={r.pool}, c={r.cell}, t={r.topk})" for r in split.itertuples()
    ]
    ax.barh(labels, split.phase1_ms, label="phase 1: selection")
    ax.barh(
        labels, split.phase2_ms, left=split.phase1_ms, label="phase 2: attention to selected keys"
    )
    ax.set_xlabel("time per call (ms, median, reference backend, CPU)")
    ax.legend()
    fig.tight_layout()
    return _closed(fig)


def official_figure(table) -> Figure:
    """Median time per call against tokens of the authors' code, ours and the floor (dashed). A
    table read from a results file (``table.attrs``: ``source`` and ``provenance``, as
    :func:`~gpa_lib.attention.analysis.stored.official_comparison` sets them) gets the file,
    commit, machine and date as a footer."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for column in ("authors (ms)", "auto (ms)", "reference (ms)", "recompute (ms)", "floor (ms)"):
        style = "k--" if column.startswith("floor") else "o-"
        ax.plot(table["size"] ** 2, table[column], style, label=column[:-5])
    _log_log(ax, "time per call (ms, median)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    if "source" in table.attrs:
        stamp_provenance(
            fig, table.attrs["source"], table.attrs.get("provenance", {}), ATTENTION_CODE
        )
    return _closed(fig)


def headline_figure(sweep, quality, memory_methods: Sequence[str] = ("materialised", "auto")):
    """The chapter's result in one figure: peak memory of exact attention with a score matrix
    against GPA over resolution (measured dots, model lines), and the softmax mass GPA keeps
    against the share of keys it sees, as ``topk`` grows."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for method in memory_methods:
        part = sweep[sweep.method == method]
        (line,) = axes[0].plot(part.tokens, part.model_mib, "-", label=f"{method} model")
        axes[0].plot(
            part.tokens, part.measured_mib, "o", color=line.get_color(), label=f"{method} measured"
        )
    _log_log(axes[0], "peak extra memory (MiB)")
    axes[0].legend(fontsize=8)
    axes[0].set_title("cost: exact ∝ tokens², GPA ∝ tokens")
    seen = quality[quality.knob == "topk"]
    for kind, marker in (("image-like", "o-"), ("random", "s--")):
        part = seen[seen.features == kind]
        axes[1].plot(100 * part.keys_fraction, 100 * part.mass_mean, marker, label=kind)
    diagonal = np.geomspace(100 * seen.keys_fraction.min(), 100, 20)
    axes[1].plot(diagonal, diagonal, "k:", lw=1, label="mass = keys seen")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("keys each query sees (% of all; topk →)")
    axes[1].set_ylabel("softmax mass kept (%)")
    axes[1].legend(fontsize=8)
    axes[1].set_title("kept: the mass sits on few keys")
    fig.tight_layout()
    return _closed(fig)
