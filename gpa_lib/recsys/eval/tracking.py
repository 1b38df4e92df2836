"""Does a model's customer style track the simulator's true style? (chapter 5)

The simulator knows each customer's style ``s_c(t)`` (``D_true`` dimensions, week by week); a model
holds a style in its own space (Fashion DNA's, ``D`` dimensions). The two spaces are related by an
unknown linear map (the score ``style . DNA_a`` is bilinear), so each model gets a ridge map from
its style space to the true one, fitted on a random half of the customers with an order before the
cutoff (the *fit* customers) and scored on the other half (the *held-out* customers): R² of the
mapped styles against the true styles (pooled over coordinates), the mean cosine between them, and
both against the days since the customer's last order. The same split serves every model, and the
bootstrap resamples held-out customers with the maps fixed, the same draw for every model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.stats import bootstrap_draws, paired_bootstrap

#: How :func:`style_tracking` makes its intervals (``Interval.method``).
HELD_OUT = "percentile bootstrap over held-out customers, maps fixed"

#: Days since the last order at the cutoff: the bucket edges of :func:`style_tracking`.
RECENCY_EDGES = (0, 30, 90, 180, 10_000)


def ridge_map(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Weights ``(F + 1, T)`` of a ridge regression ``[x, 1] @ W ~ y`` (the intercept unpenalised)."""
    features = np.c_[x, np.ones(len(x))].astype(np.float64)  # (N, F + 1)
    penalty = alpha * np.eye(features.shape[1])
    penalty[-1, -1] = 0.0
    return np.linalg.solve(features.T @ features + penalty, features.T @ y.astype(np.float64))


def apply_map(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.c_[x, np.ones(len(x))] @ weights


def _r2(truth: np.ndarray, prediction: np.ndarray) -> float:
    residual = ((truth - prediction) ** 2).sum()
    total = ((truth - truth.mean(axis=0)) ** 2).sum()
    return float(1.0 - residual / total)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(1) / np.maximum(norms, 1e-12)


def truth_week(data: SalesData, day: pd.Timestamp) -> int:
    """The simulator's week (0 = the first simulated week) that contains ``day``, clipped."""
    n_weeks = data.truth.config.n_weeks
    week = (pd.Timestamp(day) - pd.Timestamp(data.truth.config.start)).days // 7
    return int(np.clip(week, 0, n_weeks - 1))


def style_tracking(
    data: SalesData,
    styles: dict[str, np.ndarray],
    until: Any,
    *,
    target_day: Any = None,
    alpha: float = 1.0,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """R² and cosine of each model's style (``styles[name]``: ``(n_customers, D)`` in the rows of
    ``data.customers``) against the true style in the week of ``target_day`` (default ``until``),
    over the customers with an order before ``until``; see the module docstring.

    Returns ``{"week", "n_fit", "n_heldout", "models": {name: {"r2", "cosine", "moving_r2"}},
    "gaps": {"a-b": {...}}, "by_recency": [...]}``; each statistic is an interval in its stored
    form ``{"mean", "lo", "hi"}`` (:meth:`gpa_lib.stats.Interval.to_mean_dict`).
    ``moving_r2`` is the R² against the moving part of the style (the true style minus its static
    part), from a map fitted to that part.
    """
    if data.truth is None:
        raise ValueError("data has no truth; style tracking needs the simulator's data")
    until = pd.Timestamp(until)
    target_day = until if target_day is None else pd.Timestamp(target_day)
    week = truth_week(data, target_day)
    truth = data.truth
    true_style = truth.customer_style(week).astype(np.float64)  # (n_customers, D_true)
    drift = truth.config.drift
    moving = true_style - np.sqrt(1 - drift**2) * truth.customer_base_style  # (n_customers, D_true)
    tx = data.transactions[data.transactions["t_dat"] < until]
    last = tx.groupby("customer")["t_dat"].max()
    rows = data.customers.index.get_indexer(last.index.to_numpy())
    recency = (until - last).dt.days.to_numpy()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    fit, held = order[: len(order) // 2], order[len(order) // 2 :]
    fit_rows, held_rows = rows[fit], rows[held]
    predictions, moving_predictions, cosines = {}, {}, {}
    for name, style in styles.items():
        style = np.asarray(style, dtype=np.float64)
        weights = ridge_map(style[fit_rows], true_style[fit_rows], alpha)
        predictions[name] = apply_map(style[held_rows], weights)  # (n_held, D_true)
        moving_weights = ridge_map(style[fit_rows], moving[fit_rows], alpha)
        moving_predictions[name] = apply_map(style[held_rows], moving_weights)
        cosines[name] = _cosine(predictions[name], true_style[held_rows])
    truth_held, moving_held = true_style[held_rows], moving[held_rows]
    draws = bootstrap_draws(len(held), n_boot, rng)  # the same customer draws for every model

    def stat(fn) -> dict[str, float]:
        return paired_bootstrap(fn, len(held), draws, level=level, method=HELD_OUT).to_mean_dict()

    models = {
        name: {
            "r2": stat(lambda d, n=name: _r2(truth_held[d], predictions[n][d])),
            "cosine": stat(lambda d, n=name: cosines[n][d].mean()),
            "moving_r2": (
                stat(lambda d, n=name: _r2(moving_held[d], moving_predictions[n][d]))
                if drift > 0
                else None
            ),
        }
        for name in styles
    }
    names = list(styles)
    gaps = {}
    for a in names:
        for b in names:
            if a < b or a == b:
                continue
            gaps[f"{a}-{b}"] = {
                "r2": stat(
                    lambda d, a=a, b=b: (
                        _r2(truth_held[d], predictions[a][d])
                        - _r2(truth_held[d], predictions[b][d])
                    )
                ),
                "cosine": stat(lambda d, a=a, b=b: (cosines[a][d] - cosines[b][d]).mean()),
            }
    by_recency = []
    held_recency = recency[held]
    for lo_days, hi_days in zip(RECENCY_EDGES[:-1], RECENCY_EDGES[1:], strict=True):
        members = np.flatnonzero((held_recency >= lo_days) & (held_recency < hi_days))
        if len(members) < 10:
            continue
        entry: dict[str, Any] = {
            "days_from": lo_days,
            "days_to": hi_days,
            "customers": len(members),
        }
        for name in names:
            interval = paired_bootstrap(
                lambda d, n=name, m=members: _r2(truth_held[m[d]], predictions[n][m[d]]),
                len(members),
                bootstrap_draws(len(members), n_boot, rng),
                level=level,
                method=HELD_OUT,
            )
            entry[name] = interval.to_mean_dict()
            entry[f"{name} cosine"] = float(cosines[name][members].mean())
        by_recency.append(entry)
    return {
        "week": week,
        "target_day": str(target_day.date()),
        "n_fit": len(fit),
        "n_heldout": len(held),
        "dims": {
            "true": int(true_style.shape[1]),
            **{n: int(s.shape[1]) for n, s in styles.items()},
        },
        "models": models,
        "gaps": gaps,
        "by_recency": by_recency,
        "fit_customers": data.customers.index.to_numpy()[fit_rows],
        "maps": {
            name: ridge_map(np.asarray(s, np.float64)[fit_rows], true_style[fit_rows], alpha)
            for name, s in styles.items()
        },
    }


def lstm_style_path(model, customer: int) -> tuple[np.ndarray, np.ndarray]:
    """The fitted LSTM's style of one customer after each of their orders before the cutoff, each
    aimed at the day of that order plus ``horizon_days / 2`` (as at the cutoff): order days
    (``(N,)`` int64, days since 1970-01-01) and styles ``(N, D)``."""
    from gpa_lib.recsys.models.lstm import N_QUERY_FEATURES

    history = model._fitted()
    row = int(np.flatnonzero(history.customer_ids == customer)[0])
    steps, index, lengths = model._sequences(np.array([row]))  # (1, N + 1, ...), (1, N)
    n = int(lengths[0])
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, model.dna_model_.dna_.shape[1]), np.float32)
    day = torch.from_numpy(model.orders_.day)[index[0, :n]]  # (N,) day of each order seen
    aim = day + model.horizon_days // 2
    queries = torch.zeros(1, n + 1, N_QUERY_FEATURES)
    queries[0, 1:] = model._queries(aim, day, torch.ones(n, dtype=torch.bool))
    with torch.no_grad():
        out = model.network_(steps, queries)[0, 1:, :-1]  # (N, D): output t has seen orders < t
    return day.numpy(), out.numpy()


def style_paths(
    data: SalesData,
    lstm,
    static_styles: np.ndarray,
    maps: dict[str, np.ndarray],
    customers: np.ndarray,
    *,
    lstm_name: str = "lstm",
    static_name: str = "fashion_dna",
) -> list[dict[str, Any]]:
    """For each customer id: the cosine of the mapped LSTM style after each order with the true
    style of the week it aims at, and of the mapped static style with the true style of every week
    up to the cutoff (the maps from :func:`style_tracking`)."""
    until = lstm._fitted().until
    last_week = truth_week(data, until - pd.Timedelta(days=1))
    weeks = np.arange(last_week + 1)
    rows = data.customers.index.get_indexer(np.asarray(customers))
    true = data.truth.customer_styles(weeks)[:, rows].astype(np.float64)  # (W, n, D_true)
    start = pd.Timestamp(data.truth.config.start)
    epoch_day = (start - pd.Timestamp("1970-01-01")).days
    static_true = apply_map(np.asarray(static_styles, np.float64)[rows], maps[static_name])
    out = []
    for i, customer in enumerate(customers):
        days, path = lstm_style_path(lstm, int(customer))
        aim_week = np.clip((days + lstm.horizon_days // 2 - epoch_day) // 7, 0, last_week)
        mapped = apply_map(path.astype(np.float64), maps[lstm_name])  # (N, D_true)
        out.append(
            {
                "customer": int(customer),
                "order_week": ((days - epoch_day) // 7).tolist(),
                "lstm_week": aim_week.tolist(),
                "lstm_cosine": _cosine(mapped, true[aim_week, i]).tolist(),
                "weeks": weeks.tolist(),
                "static_cosine": _cosine(
                    np.broadcast_to(static_true[i], true[:, i].shape), true[:, i]
                ).tolist(),
            }
        )
    return out


def plot_style_paths(paths: list[dict[str, Any]], labels=("LSTM", "Fashion DNA (static)")):
    """One panel per customer: cosine with the true style against weeks since the store opened."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1,
        len(paths),
        figsize=(min(3.6 * len(paths), 10), 3.2),
        sharey=True,
        constrained_layout=True,
    )
    for ax, path in zip(np.atleast_1d(axes), paths, strict=True):
        ax.plot(path["weeks"], path["static_cosine"], color="tab:gray", label=labels[1])
        ax.plot(
            path["lstm_week"], path["lstm_cosine"], "o-", ms=3, color="tab:red", label=labels[0]
        )
        for week in path["order_week"]:
            ax.axvline(week, color="k", alpha=0.08, lw=1)
        ax.set_title(f"customer {path['customer']}", fontsize="medium")
        ax.set_xlabel("week since the store opened")
        ax.axhline(0, color="k", lw=0.6)
    np.atleast_1d(axes)[0].set_ylabel("cosine with the true style that week")
    np.atleast_1d(axes)[0].legend(fontsize="small", loc="lower left")
    return fig


def plot_tracking_by_recency(result: dict[str, Any], labels: dict[str, str], ax=None):
    """R² of each model's mapped style against the true style, by days since the last order."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
    buckets = result["by_recency"]
    x = np.arange(len(buckets))
    names = list(result["models"])
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        mean = np.array([b[name]["mean"] for b in buckets])
        lo = np.array([b[name]["lo"] for b in buckets])
        hi = np.array([b[name]["hi"] for b in buckets])
        ax.bar(
            x + j * width,
            mean,
            width,
            yerr=[np.maximum(mean - lo, 0), np.maximum(hi - mean, 0)],
            capsize=3,
            label=labels.get(name, name),
        )
    ax.set_xticks(
        x + width * (len(names) - 1) / 2,
        [
            f"{b['days_from']}-{b['days_to'] if b['days_to'] < 10_000 else '…'} d\n({b['customers']:,})"
            for b in buckets
        ],
    )
    ax.set_xlabel("days since the last order at the cutoff (held-out customers)")
    ax.set_ylabel("R² against the true style")
    ax.axhline(0, color="k", lw=0.6)
    ax.legend(fontsize="small")
    return ax.figure
