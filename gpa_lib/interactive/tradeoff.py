"""Chapter 1's trade-off figure: move ``topk``, ``pool`` and ``cell``, see memory, time, mass and error."""

from __future__ import annotations

import math
from collections.abc import Sequence

from gpa_lib.attention.analysis.tradeoff import COST_METHODS, valid_setting
from gpa_lib.interactive.linked import Control, LinkedFigure, UpdateGroup

GPA_COLOUR, EXACT_COLOUR, KEYS_COLOUR = "#1f77b4", "#9e9e9e", "#d9d9d9"
FEATURE_COLOURS = ("#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")


def _log_range(values: Sequence[float]) -> list[float]:
    positive = [v for v in values if v and v > 0 and math.isfinite(v)]
    lo, hi = min(positive), max(positive)
    return [math.log10(lo) - 0.15, math.log10(hi) + 0.35]


def _fmt(value: float, unit: str) -> str:
    digits = 0 if value >= 100 else 1 if value >= 10 else 2 if value >= 0.1 else 3
    return f"{value:.{digits}f} {unit}"


def tradeoff_figure(
    grid,
    *,
    features: Sequence[str],
    initial: dict[str, int],
    q_grid: tuple[int, int],
    k_grid: tuple[int, int],
    topk_values: Sequence[int] | None = None,
    pool_values: Sequence[int] | None = None,
    cell_values: Sequence[int] | None = None,
    height: int = 640,
) -> LinkedFigure:
    """The grid of :func:`~gpa_lib.attention.analysis.tradeoff.tradeoff_grid` as four linked panels.

    Three sliders (``topk`` in blocks, ``pool`` and ``cell`` in tokens) choose a setting; the panels
    show its modelled peak extra memory (MiB) and time (ms) next to exact attention's, and the kept
    softmax mass and relative output error for each of ``features`` (column suffixes of ``grid``).
    ``initial`` gives the setting shown first; combinations that are no GPA setting say why. The
    slider positions are the knob values of the sweep (default: those present in ``grid``); grids in
    tokens.
    """
    from plotly.subplots import make_subplots

    topk_values = sorted({int(t) for t in grid["topk"]}) if topk_values is None else topk_values
    pool_values = sorted({int(p) for p in grid["pool"]}) if pool_values is None else pool_values
    cell_values = sorted({int(c) for c in grid["cell"]}) if cell_values is None else cell_values

    methods = list(COST_METHODS)
    method_labels = [COST_METHODS[m] for m in methods]
    method_colours = [GPA_COLOUR if m in ("reference", "cpu") else EXACT_COLOUR for m in methods]
    quality_labels = [*features, "keys seen"]
    quality_colours = [*FEATURE_COLOURS[: len(features)], KEYS_COLOUR]
    rows = {(int(r["topk"]), int(r["pool"]), int(r["cell"])): r for r in grid.to_dict("records")}
    n_keys = k_grid[0] * k_grid[1]

    def entry(topk: int, pool: int, cell: int) -> dict:
        row = rows.get((topk, pool, cell))
        if row is None:
            why = valid_setting(k_grid, q_grid, pool, cell, topk) or "not in the precomputed grid"
            empty = {"x": [None] * len(methods), "text": ["n/a"] * len(methods)}
            return {
                "traces": {
                    0: empty,
                    1: empty,
                    2: {"x": [None] * len(quality_labels), "text": ["n/a"] * len(quality_labels)},
                    3: {"x": [None] * len(features), "text": ["n/a"] * len(features)},
                },
                "layout": {
                    "title.text": f"topk {topk}, pool {pool}, cell {cell}: not a GPA setting ({why})"
                },
            }
        mib = [row[f"{m}_mib"] for m in methods]
        ms = [row[f"{m}_ms"] for m in methods]
        mass = [row[f"mass_mean/{f}"] for f in features] + [row["keys_fraction"]]
        error = [row[f"error_total/{f}"] for f in features]
        keys = topk * pool**2
        return {
            "traces": {
                0: {"x": mib, "text": [_fmt(v, "MiB") for v in mib]},
                1: {"x": ms, "text": [_fmt(v, "ms") for v in ms]},
                2: {"x": mass, "text": [f"{v:.3f}" for v in mass]},
                3: {"x": error, "text": [f"{v:.3f}" for v in error]},
            },
            "layout": {
                "title.text": (
                    f"topk {topk}, pool {pool}, cell {cell}: each query sees {keys} of {n_keys} keys "
                    f"({100 * keys / n_keys:.2g}%)"
                )
            },
        }

    table = {
        f"{t}|{p}|{c}": entry(t, p, c)
        for t in topk_values
        for p in pool_values
        for c in cell_values
    }
    first = tuple(int(initial[knob]) for knob in ("topk", "pool", "cell"))
    if first not in rows:  # not a valid setting of these lists: start at the first one that is
        first = next(iter(rows))
    initial = dict(zip(("topk", "pool", "cell"), first, strict=True))
    start = table["|".join(map(str, first))]

    fig = make_subplots(
        rows=2,
        cols=2,
        horizontal_spacing=0.22,
        vertical_spacing=0.22,
        subplot_titles=(
            "peak extra memory (model)",
            "time per call (model)",
            "softmax mass kept (mean)",
            "relative output error",
        ),
    )
    panels = [
        (1, 1, method_labels, method_colours),
        (1, 2, method_labels, method_colours),
        (2, 1, quality_labels, quality_colours),
        (2, 2, list(features), list(FEATURE_COLOURS[: len(features)])),
    ]
    for index, (row, col, labels, colours) in enumerate(panels):
        fig.add_bar(
            row=row,
            col=col,
            orientation="h",
            y=labels,
            x=start["traces"][index]["x"],
            text=start["traces"][index]["text"],
            textposition="auto" if row == 1 else "outside",
            textangle=0,
            cliponaxis=False,
            marker_color=colours,
            showlegend=False,
            hovertemplate="%{y}: %{x:.4g}<extra></extra>",
        )
    memory = [v for m in methods for v in grid[f"{m}_mib"]]
    time = [v for m in methods for v in grid[f"{m}_ms"]]
    fig.update_xaxes(type="log", range=_log_range(memory), title_text="MiB (log)", row=1, col=1)
    fig.update_xaxes(type="log", range=_log_range(time), title_text="ms (log)", row=1, col=2)
    fig.update_xaxes(range=[0, 1.25], title_text="share (1: nothing dropped)", row=2, col=1)
    errors = [v for f in features for v in grid[f"error_total/{f}"]]
    fig.update_xaxes(
        range=[0, 1.3 * max(errors + [1.0])], title_text="‖o_GPA − o‖ / ‖o‖", row=2, col=2
    )
    for row, col in ((1, 1), (1, 2), (2, 1), (2, 2)):
        fig.update_yaxes(autorange="reversed", row=row, col=col)
    fig.update_layout(
        title={"text": start["layout"]["title.text"], "font": {"size": 14}},
        margin={"l": 100, "r": 20, "t": 90, "b": 130},
        uniformtext={"minsize": 9, "mode": "show"},
        template="plotly_white",
    )
    controls = [
        Control("topk", "topk", [str(t) for t in topk_values],
                initial=list(topk_values).index(initial["topk"])),
        Control("pool", "pool", [str(p) for p in pool_values],
                initial=list(pool_values).index(initial["pool"])),
        Control("cell", "cell", [str(c) for c in cell_values],
                initial=list(cell_values).index(initial["cell"])),
    ]  # fmt: skip
    caption = (
        f"GPA on a {q_grid[0]}x{q_grid[1]} grid: modelled memory and time, kept mass and output "
        f"error for {len(grid)} settings of topk, pool and cell"
    )
    return LinkedFigure(
        fig,
        controls,
        [UpdateGroup(["topk", "pool", "cell"], table)],
        height=height,
        caption=caption,
    )
