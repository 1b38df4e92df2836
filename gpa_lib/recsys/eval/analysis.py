"""What the recommendation chapters compute and plot: DNA maps, neighbours by angle, how much of the
simulator's latent truth DNA recovers, result tables with intervals, the drift sweep, segments.

Plots return matplotlib figures with labelled axes; numbers come back as plain floats or frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gpa_lib.recsys.eval.backtest import BacktestResult


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (N, 2) on the first two principal axes, and the share of variance of each."""
    centred = np.asarray(vectors, dtype=np.float64) - np.mean(vectors, axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    share = singular**2 / np.sum(singular**2)
    return centred @ components[:2].T, share[:2]


def tsne_2d(vectors: np.ndarray, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """t-SNE coordinates (N, 2) under the cosine distance: neighbours by angle, as DNA similarity is."""
    from sklearn.manifold import TSNE

    tsne = TSNE(
        n_components=2,
        metric="cosine",
        init="pca",
        perplexity=perplexity,
        random_state=seed,
        n_jobs=1,
    )
    return tsne.fit_transform(np.asarray(vectors, dtype=np.float64))


def heldout_r2(
    features: np.ndarray, target: np.ndarray, *, seed: int = 0, alpha: float = 1.0
) -> float:
    """R² of a ridge regression from ``features`` (N, F) to ``target`` (N, T), fitted on a random half
    of the rows and scored on the other half (variance-weighted over the target's columns)."""
    from sklearn.linear_model import Ridge

    rows = np.random.default_rng(seed).permutation(len(features))
    train, test = rows[: len(rows) // 2], rows[len(rows) // 2 :]
    model = Ridge(alpha=alpha).fit(features[train], target[train])
    prediction = model.predict(features[test])
    residual = ((target[test] - prediction) ** 2).sum()
    total = ((target[test] - target[test].mean(axis=0)) ** 2).sum()
    return float(1.0 - residual / total)


def plot_dna_map(
    coordinates: np.ndarray,
    labels: pd.Series | np.ndarray,
    variance_share: np.ndarray | None = None,
    title: str = "Fashion DNA, first two principal axes",
    ax=None,
    legend: bool = True,
):
    """Scatter of articles in 2-D, one colour per label (e.g. category); axes are principal axes
    when ``variance_share`` is given, t-SNE coordinates otherwise."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 6.5), constrained_layout=True)
    labels = pd.Series(np.asarray(labels)).astype(str)
    cmap = plt.get_cmap("tab20")
    for i, value in enumerate(sorted(labels.unique())):
        members = (labels == value).to_numpy()
        ax.scatter(
            coordinates[members, 0],
            coordinates[members, 1],
            s=5,
            alpha=0.6,
            color=cmap(i % 20),
            label=value,
        )
    if variance_share is not None:
        ax.set_xlabel(f"principal axis 1 ({100 * variance_share[0]:.0f}% of variance, DNA units)")
        ax.set_ylabel(f"principal axis 2 ({100 * variance_share[1]:.0f}% of variance, DNA units)")
    else:
        ax.set_xlabel("t-SNE coordinate 1 (arbitrary units)")
        ax.set_ylabel("t-SNE coordinate 2 (arbitrary units)")
    ax.set_title(title)
    if legend:
        ax.legend(markerscale=3, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return ax.figure


def plot_neighbours(
    images: np.ndarray,
    article_ids: np.ndarray,
    queries: np.ndarray,
    neighbours: np.ndarray,
    angles: np.ndarray,
    captions: pd.Series | None = None,
):
    """A grid: each row a query article's image, then its nearest articles by DNA angle."""
    import matplotlib.pyplot as plt

    position = pd.Index(article_ids)
    n_rows, n_cols = neighbours.shape[0], neighbours.shape[1] + 1
    panel = min(1.7, 10 / n_cols)  # in; the figure stays within the 10 in of the page column
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(panel * n_cols, panel * 1.9 / 1.7 * n_rows), squeeze=False
    )
    for row in range(n_rows):
        shown = [queries[row], *neighbours[row]]
        for col, article in enumerate(shown):
            ax = axes[row, col]
            ax.imshow(images[position.get_loc(article)], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            label = "" if captions is None else str(captions.loc[article])
            ax.set_xlabel(
                label if col == 0 else f"{angles[row, col - 1]:.0f}°\n{label}", fontsize=7
            )
        axes[row, 0].set_ylabel(f"query {row + 1}", fontsize=8)
    fig.suptitle("query article (left) and its nearest articles by angle between DNA vectors")
    fig.tight_layout()
    return fig


def results_table(
    result: BacktestResult,
    metrics: tuple[str, ...] = ("auc", "map@12", "recall@12", "ndcg@12"),
    slices: tuple[str, ...] = ("all", "cold", "warm"),
    digits: int = 3,
) -> pd.DataFrame:
    """Display table: one row per model, one "mean [lo, hi]" cell per (slice, metric)."""
    summary = result.summary(metrics=metrics, slices=slices)
    cells = {}
    for s in slices:
        for metric in metrics:
            mean, lo, hi = (summary[(s, metric, stat)] for stat in ("mean", "lo", "hi"))
            cells[f"{metric} ({s})"] = [
                "n/a" if np.isnan(m) else f"{m:.{digits}f} [{a:.{digits}f}, {b:.{digits}f}]"
                for m, a, b in zip(mean, lo, hi, strict=True)
            ]
    return pd.DataFrame(cells, index=summary.index)


def plot_per_cutoff(result: BacktestResult, metric: str = "auc", ax=None):
    """Mean ``metric`` of every model at each cutoff (lines)."""
    import matplotlib.pyplot as plt

    table = result.per_cutoff(metric)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    for model, row in table.iterrows():
        ax.plot(range(len(row)), row.to_numpy(), marker="o", label=model)
    ax.set_xticks(range(len(table.columns)), table.columns)
    ax.set_xlabel("cutoff (test window: the following weeks)")
    ax.set_ylabel(f"mean per-customer {metric.upper()}")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return ax.figure


def plot_segments(result: BacktestResult, metric: str = "auc", ax=None):
    """Mean ``metric`` per model against the customer's number of orders before the cutoff."""
    import matplotlib.pyplot as plt

    table = result.by_segment(metric)
    counts = table.loc["customers"]
    table = table.drop(index="customers")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4), constrained_layout=True)
    x = np.arange(len(table.columns))
    for model, row in table.iterrows():
        ax.plot(x, row.to_numpy(), marker="o", label=model)
    ax.set_xticks(x, [f"{c}\n(n={int(counts[c])})" for c in table.columns])
    ax.set_xlabel("orders before the cutoff (customers evaluated)")
    ax.set_ylabel(f"mean per-customer {metric.upper()}")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return ax.figure


def plot_drift_sweep(
    table: pd.DataFrame,
    gaps: tuple[str, ...],
    ax=None,
    labels: dict[str, str] | None = None,
    ylabel: str = "gap in mean per-customer metric",
):
    """Each gap (a column of :func:`gpa_lib.recsys.eval.experiments.drift_sweep`) against drift,
    with its 95% interval as a band; ``labels`` name the gaps in the legend."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4), constrained_layout=True)
    for gap in gaps:
        ax.plot(table["drift"], table[gap], marker="o", label=(labels or {}).get(gap, gap))
        ax.fill_between(table["drift"], table[f"{gap} lo"], table[f"{gap} hi"], alpha=0.25)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("drift of customer tastes (simulator's drift, 0 = static)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    return ax.figure


def order_reversals(
    result: BacktestResult,
    pairs: tuple[tuple[str, str], ...] = (("lstm", "static_cf"), ("static_cf", "popularity")),
    metrics: tuple[str, ...] = ("auc", "map@12"),
) -> list[str]:
    """Cutoffs where a pair's per-cutoff mean goes the other way from ``a > b``, in words."""
    out = []
    for metric in metrics:
        table = result.per_cutoff(metric)
        for a, b in pairs:
            if a in table.index and b in table.index:
                for cutoff in table.columns[table.loc[a] <= table.loc[b]]:
                    out.append(
                        f"{a} {table.loc[a, cutoff]:.4f} vs {b} {table.loc[b, cutoff]:.4f} "
                        f"{metric.upper()} at {cutoff}"
                    )
    return out


def target_report(result: BacktestResult) -> dict[str, Any]:
    """The issue's accuracy targets, each with the numbers that decide it."""
    out: dict[str, Any] = {}
    for a, b in (("lstm", "static_cf"), ("static_cf", "popularity")):
        for metric in ("auc", "map@12"):
            if a in result.models and b in result.models:
                gap = result.compare(a, b, metric)
                out[f"{a}>{b} {metric}"] = {**gap, "met": bool(gap["lo"] > 0)}
    if "fashion_dna" in result.models:
        cold = float(np.nanmean(result.pooled("fashion_dna", "auc", "cold")))
        warm = float(np.nanmean(result.pooled("fashion_dna", "auc", "warm")))
        out["fashion_dna cold/known auc"] = {
            "cold": cold,
            "known": warm,
            "ratio": cold / warm,
            "met": bool(cold >= 0.9 * warm),
        }
        if "lightfm" in result.models:
            gap = result.compare("fashion_dna", "lightfm", "auc", "cold")
            out["fashion_dna>=lightfm cold auc"] = {**gap, "met": bool(gap["hi"] >= 0)}
    return out


def plot_protocol_per_cutoff(
    payload: dict[str, Any], metric: str = "auc", slice_: str = "all", ax=None
):
    """Mean ``metric`` on ``slice_`` of every model at each test cutoff of the backtest JSON: the
    mean over training seeds (marker) and the lowest to highest seed (bar)."""
    import matplotlib.pyplot as plt

    from gpa_lib.recsys.eval.report import MODEL_LABELS, SLICE_LABELS

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    cutoffs = [w["cutoff"] for w in payload["windows"]]
    x = np.arange(len(cutoffs))
    models = payload["models"]
    for i, model in enumerate(models):
        values = np.asarray(payload["per_cutoff"][model][f"{slice_}/{metric}"])  # (seeds, cutoffs)
        offset = (i - (len(models) - 1) / 2) * 0.04
        mean = values.mean(axis=0)
        ax.errorbar(
            x + offset,
            mean,
            yerr=np.clip([mean - values.min(axis=0), values.max(axis=0) - mean], 0, None),
            marker="o",
            ms=3,
            lw=1,
            capsize=2,
            label=MODEL_LABELS.get(model, model),
        )
    ax.set_xticks(x, [c[2:] for c in cutoffs], fontsize="small")
    ax.set_xlabel("test cutoff (window: the 4 weeks after it)")
    ax.set_ylabel(f"mean per-customer {metric.upper()}")
    ax.set_title(f"{SLICE_LABELS[slice_]} articles", fontsize="medium")
    return ax.figure


def plot_protocol_segments(payload: dict[str, Any], ax=None):
    """Mean AUC (all candidates, mean over seeds and cutoffs) per model against the customer's
    number of orders before the cutoff."""
    import matplotlib.pyplot as plt

    from gpa_lib.recsys.eval.report import MODEL_LABELS

    segments = payload["segments_auc"]
    counts = segments["customers"]
    labels = list(counts)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4), constrained_layout=True)
    x = np.arange(len(labels))
    for model in payload["models"]:
        ax.plot(
            x,
            [segments[model][c] for c in labels],
            marker="o",
            label=MODEL_LABELS.get(model, model),
        )
    ax.set_xticks(x, [f"{c}\n(n={int(counts[c])})" for c in labels])
    ax.set_xlabel("orders before the cutoff (customers evaluated, first seed)")
    ax.set_ylabel("mean per-customer AUC, all candidates")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return ax.figure


def neighbour_agreement(
    model, articles: pd.DataFrame, sample: np.ndarray, column: str = "category", n: int = 5
) -> tuple[float, float]:
    """Share of the ``n`` nearest articles by DNA angle (``model.similar``) that share ``column``
    with the query, over the ``sample`` ids, and the share two random articles of the sample's
    population would (the sum of squared value shares)."""
    near, _ = model.similar(sample, n=n)
    values = articles[column]
    same = (
        values.loc[near.ravel()].to_numpy().reshape(near.shape)
        == values.loc[sample].to_numpy()[:, None]
    )
    chance = float((values.loc[sample].value_counts(normalize=True) ** 2).sum())
    return float(same.mean()), chance


def metrics_table(metrics: dict[str, dict], rows: dict[str, str]) -> pd.DataFrame:
    """Mean AUC and MAP@12 of per-customer metric dicts (from ``evaluate``) on every slice; ``rows``
    maps a label to the key of ``metrics``."""
    table = {}
    for label, key in rows.items():
        values = metrics[key]
        table[label] = {
            f"{metric} {name}": float(np.nanmean(values[slice_, metric]))
            for metric in ("auc", "map@12")
            for slice_, name in (("all", "all"), ("cold", "new"), ("warm", "known"))
        }
    return pd.DataFrame.from_dict(table, orient="index")
