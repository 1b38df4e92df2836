"""Experiments built on the backtest: the drift control and the scoring-time measurement."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from gpa_lib.recsys.eval.backtest import BacktestConfig, run_backtest
from gpa_lib.recsys.models.base import Recommender
from gpa_lib.recsys.models.presets import model_factories
from gpa_lib.recsys.sim.simulate import simulate


def scoring_time(
    model: Recommender, customers: np.ndarray, articles: np.ndarray, block: int = 8192
) -> dict[str, Any]:
    """Wall-clock seconds to score ``articles`` for all ``customers`` in blocks of ``block`` customers
    (the scores themselves are dropped block by block, as a serving job would write them out)."""
    if block < 1:
        raise ValueError(f"block={block} must be at least 1")
    customers = np.asarray(customers)
    tic = time.perf_counter()
    for start in range(0, len(customers), block):
        model.score(customers[start : start + block], articles)
    return {
        "model": model.name,
        "customers": len(customers),
        "articles": len(articles),
        "block": block,
        "seconds": round(time.perf_counter() - tic, 3),
    }


DRIFT_COMPARISONS = (
    ("lstm", "static_cf", "auc", "all"),
    ("lstm", "static_cf", "auc", "warm"),
    ("lstm", "fashion_dna", "auc", "all"),
    ("lstm", "static_cf", "map@12", "all"),
)


def drift_sweep(
    drifts: Iterable[float],
    *,
    n_customers: int,
    n_weeks: int,
    profile: str = "full",
    config: BacktestConfig | None = None,
    seed: int = 0,
    models: tuple[str, ...] = ("static_cf", "fashion_dna", "lstm"),
    comparisons: Iterable[tuple[str, str, str, str]] = DRIFT_COMPARISONS,
    simulate_overrides: dict[str, Any] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """The drift control: simulate the store at each ``drift`` (same seed otherwise), backtest
    ``models``, and report each gap ``a - b`` with its paired interval, one row per drift.

    Columns: ``drift``, the pooled mean AUC of each model, and for each comparison
    ``"{a}-{b} {metric} {slice}"`` with ``... lo`` and ``... hi``.
    """

    rows = []
    for drift in drifts:
        data = simulate(
            n_customers,
            n_weeks,
            seed,
            drift=float(drift),
            progress=False,
            **(simulate_overrides or {}),
        )
        result = run_backtest(
            data, model_factories(models, profile, random_state=seed), config, progress=progress
        )
        row: dict[str, Any] = {"drift": float(drift)}
        for model in result.models:
            row[f"{model} auc"] = float(np.nanmean(result.pooled(model, "auc")))
        for a, b, metric, slice_ in comparisons:
            if a in result.models and b in result.models:
                gap = result.compare(a, b, metric, slice_)
                key = f"{a}-{b} {metric} {slice_}"
                row[key], row[f"{key} lo"], row[f"{key} hi"] = gap["diff"], gap["lo"], gap["hi"]
        rows.append(row)
    return pd.DataFrame(rows)
