"""The recommendation backtest, interactive: choose model, slice and metric; see intervals and cutoffs.

Reads the layout of ``data/results/backtest.json`` written by ``python -m gpa_lib.bench recsys
--study backtest``:

- ``models``: model names in order; ``summary[model]["<slice>/<metric>"]``: ``{"mean", "lo", "hi"}``
  (block-bootstrap interval at ``protocol.level``, over ``protocol.n_boot`` resamples);
- ``per_cutoff[model]["<slice>/<metric>"]``: one list per training seed, one value per test window;
- ``windows``: the test windows, each with its ``cutoff`` date.

Slices are ``all``, ``cold`` (articles new in the test window) and ``warm`` (known articles).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from gpa_lib.interactive.linked import Control, LinkedFigure, UpdateGroup
from gpa_lib.recsys.eval.report import MODEL_LABELS, SLICE_LABELS

# Reader-facing names come from the chapters' own table (recsys.eval.report), so that a dropdown and
# a table never name a model differently.
ALL_MODELS = "all models"
HIGHLIGHT, DIMMED = "#d62728", "#1f77b4"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def slices_and_metrics(payload: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The slices and metrics of the summary keys ``"<slice>/<metric>"``, in their first order."""
    slices: list[str] = []
    metrics: list[str] = []
    for stats in payload["summary"].values():
        for key in stats:
            if "/" not in key:
                raise ValueError(f"summary key {key!r} is not '<slice>/<metric>'")
            slice_, metric = key.split("/", 1)
            slices += [slice_] if slice_ not in slices else []
            metrics += [metric] if metric not in metrics else []
    if not slices:
        raise ValueError("the backtest payload's summary is empty")
    return slices, metrics


def backtest_figure(
    payload: Mapping[str, Any],
    *,
    metrics: Sequence[str] | None = None,
    model_labels: Mapping[str, str] = MODEL_LABELS,
    slice_labels: Mapping[str, str] = SLICE_LABELS,
    initial: Mapping[str, str] | None = None,
    height: int = 560,
) -> LinkedFigure:
    """Dropdowns for model, slice and metric over the backtest results JSON (layout in the module doc).

    *Left:* each model's mean with its interval for the chosen slice and metric; the chosen model is
    highlighted (``"all models"``: none). *Right:* the same metric at each test cutoff, mean over
    the training seeds, one line per model, the chosen one drawn bold. ``metrics`` restricts and
    orders the metrics (default: all in the summary); ``initial`` picks the first view, e.g.
    ``{"model": "lstm", "slice": "cold", "metric": "auc"}``.
    """
    from plotly.subplots import make_subplots

    models = [m for m in payload["models"] if m in payload["summary"]]
    if not models:
        raise ValueError("no model of payload['models'] has a summary")
    slices, all_metrics = slices_and_metrics(payload)
    metrics = list(all_metrics if metrics is None else metrics)
    unknown = [m for m in metrics if m not in all_metrics]
    if unknown:
        raise ValueError(f"metrics={unknown} are not in the results, which have {all_metrics}")
    protocol = payload.get("protocol", {})
    level = protocol.get("level", 0.95)
    cutoffs = [w["cutoff"] for w in payload.get("windows", [])]
    labels = [model_labels.get(m, m) for m in models]
    first = {"model": ALL_MODELS, "slice": slices[0], "metric": metrics[0], **(initial or {})}

    def view(slice_: str, metric: str) -> dict:
        key = f"{slice_}/{metric}"
        stats = [payload["summary"][m].get(key, {}) for m in models]
        mean = [_finite(s.get("mean")) for s in stats]
        lo = [_finite(s.get("lo")) for s in stats]
        hi = [_finite(s.get("hi")) for s in stats]
        plus = [None if h is None or x is None else h - x for x, h in zip(mean, hi, strict=True)]
        minus = [
            None if low is None or x is None else x - low for x, low in zip(mean, lo, strict=True)
        ]
        text = [
            "n/a" if x is None else f"{x:.4f} [{low:.4f}, {h:.4f}]"
            for x, low, h in zip(mean, lo, hi, strict=True)
        ]
        traces: dict[int, dict] = {
            0: {"x": mean, "error_x.array": plus, "error_x.arrayminus": minus, "text": text}
        }
        for i, m in enumerate(models, start=1):
            seeds = payload.get("per_cutoff", {}).get(m, {}).get(key) or []
            per_cutoff = []
            for c in range(len(cutoffs)):
                values = [v for s in seeds if c < len(s) and (v := _finite(s[c])) is not None]
                per_cutoff.append(sum(values) / len(values) if values else None)
            traces[i] = {"y": per_cutoff}
        name = f"{metric.upper()} ({slice_labels.get(slice_, slice_)} articles)"
        return {
            "traces": traces,
            "layout": {"xaxis.title.text": name, "yaxis2.title.text": name},
        }

    def highlight(model: str) -> dict:
        chosen = [model in (ALL_MODELS, m) for m in models]
        colours = [HIGHLIGHT if c and model != ALL_MODELS else DIMMED for c in chosen]
        traces: dict[int, dict] = {0: {"marker.color": colours}}
        for i, c in enumerate(chosen, start=1):
            single = c and model != ALL_MODELS
            colour = HIGHLIGHT if single else PALETTE[(i - 1) % len(PALETTE)]
            traces[i] = {
                "opacity": 1.0 if c else 0.2,
                "line.width": 3.5 if single else 1.8,
                "line.color": colour,
                "marker.color": colour,
            }
        return {"traces": traces, "layout": {}}

    view_table = {f"{s}|{m}": view(s, m) for s in slices for m in metrics}
    model_keys = [ALL_MODELS, *models]
    highlight_table = {m: highlight(m) for m in model_keys}
    start_view = view_table[f"{first['slice']}|{first['metric']}"]
    start_high = highlight_table[first["model"]]

    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.45, 0.55],
        horizontal_spacing=0.2,
        subplot_titles=(
            f"mean, {100 * level:.0f}% interval",
            "per test cutoff (mean of seeds)",
        ),
    )
    v0 = start_view["traces"][0]
    fig.add_scatter(
        row=1,
        col=1,
        x=v0["x"],
        y=labels,
        mode="markers",
        marker={"size": 10, "color": start_high["traces"][0]["marker.color"]},
        error_x={
            "type": "data",
            "array": v0["error_x.array"],
            "arrayminus": v0["error_x.arrayminus"],
        },
        text=v0["text"],
        hovertemplate="%{y}: %{text}<extra></extra>",
        showlegend=False,
    )
    for i, label in enumerate(labels, start=1):
        fig.add_scatter(
            row=1,
            col=2,
            x=cutoffs,
            y=start_view["traces"][i]["y"],
            mode="lines+markers",
            name=label,
            line={
                "color": start_high["traces"][i]["line.color"],
                "width": start_high["traces"][i]["line.width"],
            },
            marker={"color": start_high["traces"][i]["marker.color"]},
            opacity=start_high["traces"][i]["opacity"],
            hovertemplate=f"{label}<br>cutoff %{{x}}: %{{y:.4f}}<extra></extra>",
        )
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text=start_view["layout"]["xaxis.title.text"], row=1, col=1)
    fig.update_yaxes(title_text=start_view["layout"]["yaxis2.title.text"], row=1, col=2)
    fig.update_xaxes(title_text="test window starts (cutoff date)", row=1, col=2)
    fig.update_layout(
        template="plotly_white",
        margin={"l": 130, "r": 20, "t": 140, "b": 60},
        legend={"font": {"size": 10}},
    )
    controls = [
        Control("model", "model", [model_labels.get(m, m) if m != ALL_MODELS else m for m in model_keys],
                values=model_keys, initial=model_keys.index(first["model"]), kind="dropdown"),
        Control("slice", "slice", [slice_labels.get(s, s) for s in slices], values=slices,
                initial=slices.index(first["slice"]), kind="dropdown"),
        Control("metric", "metric", [m.upper() for m in metrics], values=metrics,
                initial=metrics.index(first["metric"]), kind="dropdown"),
    ]  # fmt: skip
    caption = (
        f"backtest of {len(models)} models over {len(cutoffs)} test cutoffs: {', '.join(metrics)} "
        f"by slice ({', '.join(slice_labels.get(s, s) for s in slices)}), {100 * level:.0f}% block-bootstrap intervals"
    )
    return LinkedFigure(
        fig,
        controls,
        [UpdateGroup(["slice", "metric"], view_table), UpdateGroup(["model"], highlight_table)],
        height=height,
        caption=caption,
    )
