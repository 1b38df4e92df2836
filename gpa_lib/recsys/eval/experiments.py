"""Experiments built on the backtest: the drift control and the scoring-time measurement."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from gpa_lib.recsys.eval.backtest import run_backtest
from gpa_lib.recsys.eval.protocol import ProtocolConfig, block_bootstrap, seed_values
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
    ("lstm", "fashion_dna", "auc", "warm"),
    ("lstm", "static_cf", "map@12", "all"),
    ("lstm", "static_cf", "map@12", "warm"),
)


def drift_sweep(
    drifts: Iterable[float],
    *,
    n_customers: int,
    n_weeks: int,
    profile: str = "full",
    config: ProtocolConfig | None = None,
    sim_seed: int = 0,
    models: tuple[str, ...] = ("static_cf", "fashion_dna", "lstm"),
    overrides: dict[str, dict[str, Any]] | None = None,
    comparisons: Iterable[tuple[str, str, str, str]] = DRIFT_COMPARISONS,
    simulate_overrides: dict[str, Any] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """The drift control: simulate the store at each ``drift`` (same ``sim_seed`` otherwise), fit
    ``models`` (settings of ``profile`` with ``overrides``, e.g. those tuned by the backtest) with
    every training seed of ``config`` at its rolling cutoffs, and put block-bootstrap intervals
    (cutoffs, customers and seeds, as in :func:`~gpa_lib.recsys.eval.protocol.block_bootstrap`) on
    each gap ``a - b``. One row per drift.

    Columns: ``drift``; ``"{model} {metric} {slice}"`` (means) for AUC and MAP; for each comparison
    ``"{a}-{b} {metric} {slice}"`` with ``... lo`` and ``... hi``; ``per_cutoff`` holds each gap at
    each cutoff (mean over seeds and customers).
    """
    config = config or ProtocolConfig()
    comparisons = list(comparisons)
    rows = []
    for drift in drifts:
        tic = time.perf_counter()
        data = simulate(
            n_customers,
            n_weeks,
            sim_seed,
            drift=float(drift),
            progress=False,
            **(simulate_overrides or {}),
        )
        results = [
            run_backtest(
                data,
                model_factories(models, profile, random_state=seed, overrides=overrides),
                config.backtest(),
            )
            for seed in config.seeds
        ]
        values = seed_values(results, config.k)
        boot = block_bootstrap(values, n_boot=config.n_boot, level=config.level, seed=config.seed)
        row: dict[str, Any] = {"drift": float(drift)}
        for model in results[0].models:
            for metric in ("auc", f"map@{config.k}"):
                for slice_ in ("all", "warm"):
                    row[f"{model} {metric} {slice_}"] = boot.point[model, slice_, metric]
        per_cutoff = {}
        for a, b, metric, slice_ in comparisons:
            if a in results[0].models and b in results[0].models:
                gap = boot.gap((a, slice_, metric), (b, slice_, metric))
                key = f"{a}-{b} {metric} {slice_}"
                row[key], row[f"{key} lo"], row[f"{key} hi"] = gap["diff"], gap["lo"], gap["hi"]
                per_cutoff[key] = [
                    float(np.nanmean(va) - np.nanmean(vb))
                    for va, vb in zip(
                        values[a, slice_, metric], values[b, slice_, metric], strict=True
                    )
                ]
        row["per_cutoff"] = per_cutoff
        row["cutoffs"] = [str(w.cutoff.date()) for w in results[0].windows]
        row["seconds"] = round(time.perf_counter() - tic, 1)
        rows.append(row)
        if progress:
            print(f"drift {drift}: {row['seconds']:.0f} s", flush=True)
    return pd.DataFrame(rows)
