"""The backtest protocol of the recommendation chapters: tune on a validation cutoff, refit with
several seeds at rolling test cutoffs, and put block-bootstrap intervals on every mean and gap.

1. **Validation.** One cutoff before the test cutoffs (its window ends where the first test window
   starts). Every model gets the same budget: the fixed grid :data:`SEARCH_SPACE` (the same number of
   settings for each: nine on ``full``, popularity's windows from 1 to 28 days), scored by
   ``tune_metric`` on all candidates; the best setting is kept, and where it sits on the edge of
   its grid the tuning record says so (:func:`grid_edges`). The LSTM is tuned on the Fashion DNA
   chosen just before it.
2. **Test.** For each training seed, every model is refitted with its chosen setting at every test
   cutoff (:func:`~gpa_lib.recsys.eval.backtest.run_backtest`), next to the simulator's oracle
   (:class:`~gpa_lib.recsys.eval.oracle.SimulatorOracle`) when the data has a truth.
3. **Intervals.** :func:`~gpa_lib.recsys.eval.bootstrap.block_bootstrap` resamples cutoffs, then customers within each drawn cutoff,
   then one training seed per drawn cutoff and model; the same cutoff and customer draws serve
   every model, so gaps are paired. A gap is significant when its interval excludes zero.

Options for other data (:class:`ProtocolConfig`; the defaults are what the chapters ran): the
candidate rule and its window (``candidate_rule``, ``recent_weeks``, passed to every window of the
tuning and the tests), leaving out what a customer bought before (``exclude_seen``), the history the
validation cutoff must leave (``min_history_weeks``), and a warning below ``min_steps`` optimiser
steps. ``run_protocol(..., params=, search_space=)`` overrides any model's settings and grid; a
model with a horizon (the LSTMs) aims at the test window, ``7 * test_weeks`` days. Undefined values
(an empty slice) are ``None`` in the payload, with an :class:`EmptySliceWarning`.
:mod:`gpa_lib.recsys.eval.own_data` sizes all of this to a user's data.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.eval.backtest import (
    SLICES,
    BacktestConfig,
    BacktestResult,
    EvaluationConfig,
    TestWindow,
    evaluate,
    metric_names,
    quiet_nanmean,
    rolling_cutoffs,
    run_backtest,
    window_for,
)
from gpa_lib.recsys.eval.bootstrap import (  # noqa: F401 (re-exported: their old home)
    COMPARISONS,
    Bootstrap,
    block_bootstrap,
    comparisons,
    oracle_shares,
    seed_values,
    summaries,
)
from gpa_lib.recsys.eval.oracle import SimulatorOracle
from gpa_lib.recsys.models.base import Recommender
from gpa_lib.recsys.models.presets import (
    DNA_READERS,
    MODEL_PARAMS,
    check_model_names,
    make_model,
    model_factories,
    model_parameters,
)


def _grid(**axes: Iterable[Any]) -> list[dict[str, Any]]:
    """Every combination of the axes, in order: ``_grid(a=(1, 2), b=(3,))`` -> 2 settings."""
    settings = [{}]
    for name, values in axes.items():
        settings = [{**s, name: v} for s in settings for v in values]
    return settings


#: Settings tried on the validation cutoff, per model profile; every model gets the same number.
SEARCH_SPACE: dict[str, dict[str, list[dict[str, Any]]]] = {
    "full": {  # nine settings each; moved where the 8-store study chose an edge (grid_edges)
        "popularity": _grid(window_days=(1, 2, 3, 5, 7, 10, 14, 21, 28)),
        "static_cf": _grid(factors=(4, 8, 16), l2=(3e-3, 1e-2, 3e-2)),
        "implicit_als": _grid(factors=(16, 32, 64), alpha=(0.5, 2.0, 8.0)),
        "implicit_bpr": _grid(factors=(16, 32, 64), learning_rate=(3e-3, 1e-2, 3e-2)),
        "lightfm": _grid(no_components=(32, 64, 128), epochs=(6, 12, 24)),
        "fashion_dna": _grid(dna_dim=(8, 16, 32), epochs=(2, 4, 8)),
        "lstm": _grid(hidden=(32, 64, 128), lr=(1e-2, 3e-2, 1e-1)),
        "sasrec": _grid(hidden=(32, 64, 128), lr=(1e-3, 3e-3, 1e-2)),
        "lstm_paper": _grid(hidden=(32, 64, 128), lr=(3e-3, 1e-2, 3e-2)),
        "context_popularity": _grid(epochs=(1, 2, 4), max_iter=(3, 10, 50)),
        "static_cf_dna": _grid(factors=(4, 8, 16), l2=(3e-3, 1e-2, 3e-2)),
    },
    "smoke": {
        "popularity": _grid(window_days=(7, 14)),
        "static_cf": _grid(l2=(1e-4, 1e-3)),
        "implicit_als": _grid(regularization=(0.1, 1.0)),
        "implicit_bpr": _grid(learning_rate=(0.01, 0.05)),
        "lightfm": _grid(loss=("warp", "bpr")),
        "fashion_dna": _grid(dna_dim=(8, 16)),
        "lstm": _grid(hidden=(8, 16)),
        "sasrec": _grid(lr=(1e-3, 3e-3)),
        "lstm_paper": _grid(hidden=(8, 16)),
        "context_popularity": _grid(n_negatives=(4, 16)),
        "static_cf_dna": _grid(l2=(1e-4, 1e-3)),
    },
}


def grid_edges(settings: list[dict[str, Any]], chosen: Mapping[str, Any] | None) -> dict[str, str]:
    """``{axis: "low" | "high"}`` for every numeric axis of the grid ``settings`` with at least three
    values on which ``chosen`` sits at the smallest or largest value: the best setting may lie
    outside the grid there. ``grid_edges(_grid(a=(1, 2, 3)), {"a": 3})`` -> ``{"a": "high"}``."""
    out: dict[str, str] = {}
    for axis, value in (chosen or {}).items():
        values = sorted({s[axis] for s in settings if isinstance(s.get(axis), int | float)})
        if len(values) < 3 or not isinstance(value, int | float):
            continue
        if value == values[0]:
            out[axis] = "low"
        elif value == values[-1]:
            out[axis] = "high"
    return out


for _space in SEARCH_SPACE.values():  # the softmax control searches SASRec's grid
    _space["sasrec_catalogue"] = list(_space["sasrec"])


@dataclass(frozen=True, kw_only=True)
class ProtocolConfig(EvaluationConfig):
    """How to tune, cut and resample: the fields of a backtest (:class:`EvaluationConfig`; its
    ``seed`` also seeds the validation models) and the protocol's own. Sizes in weeks (7 days)."""

    n_cutoffs: int = 6  # rolling test cutoffs, the last leaving one test window at the end
    seeds: tuple[int, ...] = (0, 1, 2)  # training seeds per model
    tune_metric: str = "map@12"  # what the validation search maximises (on all candidates)
    min_history_weeks: int = 4  # weeks of sales the validation cutoff must leave before it
    min_steps: int | None = None  # warn when a model trains with fewer optimiser steps (None: no)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.seeds:
            raise ValueError("seeds is empty; give at least one training seed")
        if self.min_history_weeks < 0:
            raise ValueError(f"min_history_weeks={self.min_history_weeks} must be >= 0")
        if self.tune_metric not in metric_names(self.k):
            raise ValueError(
                f"tune_metric={self.tune_metric!r} is not one of {metric_names(self.k)}"
            )

    def backtest(self) -> BacktestConfig:
        return BacktestConfig(**self.evaluation())


class TrainingBudgetWarning(UserWarning):
    """A model trained with fewer optimiser steps than ``ProtocolConfig.min_steps``."""


class EmptySliceWarning(UserWarning):
    """A cutoff whose new (cold) or known (warm) candidate slice is empty: reported as null."""


def validation_cutoff(data: SalesData, config: ProtocolConfig) -> pd.Timestamp:
    """The cutoff whose window ends where the first test window starts; it must leave at least
    ``config.min_history_weeks`` weeks of sales before it to train on."""
    first = rolling_cutoffs(data, config.n_cutoffs, config.test_weeks, config.step_weeks)[0]
    cutoff = first - pd.Timedelta(weeks=config.test_weeks)
    history = cutoff - data.start.normalize()
    if cutoff <= data.start or history < pd.Timedelta(weeks=config.min_history_weeks):
        raise ValueError(
            f"the validation cutoff {cutoff.date()} leaves {max(history.days, 0)} day(s) of sales "
            f"after the first sale {data.start.date()}, fewer than min_history_weeks="
            f"{config.min_history_weeks} weeks; with n_cutoffs={config.n_cutoffs}, "
            f"test_weeks={config.test_weeks}, step_weeks={config.step_weeks} the cutoffs need "
            f"{config.test_weeks * 2 + config.step_weeks * (config.n_cutoffs - 1)} weeks after it: "
            "use fewer or shorter cutoffs"
        )
    return cutoff


def protocol_params(
    names: Iterable[str], config: ProtocolConfig, params: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """Each model's settings on top of its profile's: ``params`` (the user's overrides), plus what
    follows from the protocol: a model with ``horizon_days`` (the LSTMs) aims at the test window,
    ``7 * test_weeks`` days, unless ``params`` says otherwise."""
    out = {}
    for name in names:
        extra = dict((params or {}).get(name, {}))
        if "horizon_days" in model_parameters(name):
            extra.setdefault("horizon_days", 7 * config.test_weeks)
        out[name] = extra
    return out


def _dna_params(profile: str, *layers: Mapping[str, Any]) -> dict[str, Any]:
    """The Fashion DNA settings a DNA reader fits its own DNA with (no scoring rules: it does not
    score customers)."""
    merged = dict(MODEL_PARAMS[profile]["fashion_dna"])
    for layer in layers:
        merged.update(layer)
    merged.pop("cold_customers", None)
    return merged


def _check_steps(name: str, steps: list[int | None], config: ProtocolConfig, where: str) -> None:
    """One :class:`TrainingBudgetWarning` when some of a model's fits (``steps``, one per fit)
    took fewer than ``config.min_steps`` optimiser steps."""
    few = [
        s for s in steps if s is not None and config.min_steps is not None and s < config.min_steps
    ]
    if not few:
        return
    knob = "steps" if "steps" in model_parameters(name) else "epochs"
    warnings.warn(
        f"{name} trained with {min(few)} optimiser step(s) (fewer than min_steps="
        f"{config.min_steps}) in {len(few)} of its {len(steps)} fit(s) {where}: give it more "
        f"with --params {name}.{knob}=... (params={{{name!r}: {{{knob!r}: ...}}}}) or a smaller "
        "batch size",
        TrainingBudgetWarning,
        stacklevel=3,
    )


def tune(
    data: SalesData,
    names: Iterable[str],
    profile: str,
    config: ProtocolConfig,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    search_space: Mapping[str, list[dict[str, Any]]] | None = None,
    progress: bool = False,
) -> dict[str, dict[str, Any]]:
    """``{model: {"chosen": setting, "trials": [{"setting", "value", "fit_seconds"}]}}`` on the
    validation cutoff (``"edges"``: :func:`grid_edges` of the chosen setting); each model tries every setting of ``search_space[model]`` (default
    ``SEARCH_SPACE[profile]``) on top of its profile's settings and ``params[model]``."""
    names = check_model_names(names)
    space = SEARCH_SPACE[profile] if search_space is None else search_space
    missing = [n for n in names if n not in space]
    if missing:
        raise ValueError(f"search_space has no settings for model(s) {missing}")
    cutoff = validation_cutoff(data, config)
    window = window_for(data, cutoff, config)
    past = data.window(end=cutoff)
    base = protocol_params(names, config, params)
    if "fashion_dna" in names:  # the models reading DNA are tuned on the chosen DNA
        names = [n for n in names if n not in DNA_READERS] + [n for n in names if n in DNA_READERS]
    out: dict[str, dict[str, Any]] = {}
    best_models: dict[str, Recommender] = {}
    n_trials = sum(len(space[n]) for n in names)
    bar = tqdm(total=n_trials, desc="tune", disable=not progress or n_trials < 2, leave=False)
    tuning_steps: dict[str, list[int | None]] = {}
    for name in names:
        trials, best = [], (-np.inf, None, None)
        for setting in space[name]:
            extra = {**base[name], **setting}
            if name in DNA_READERS:
                extra.setdefault("dna", best_models.get("fashion_dna"))
                extra.setdefault(
                    "dna_params",
                    _dna_params(
                        profile,
                        base.get("fashion_dna", (params or {}).get("fashion_dna", {})),
                        out.get("fashion_dna", {}).get("chosen", {}),
                    ),
                )
            model = make_model(name, profile, random_state=config.seed, **extra)
            ok, why = model.can_run()
            if not ok:
                out[name] = {"chosen": {}, "trials": [], "skipped": why}
                bar.update(len(space[name]))
                break
            bar.set_postfix_str(name)
            tic = time.perf_counter()
            model.fit(past, until=cutoff)
            fit_s = time.perf_counter() - tic
            tuning_steps.setdefault(name, []).append(model.steps_)
            metrics = evaluate(model.score(window.customers, window.candidates), window, config.k)
            value = quiet_nanmean(metrics["all", config.tune_metric])
            trials.append(
                {"setting": setting, "value": value, "fit_seconds": round(fit_s, 2)}
                | (
                    {}
                    if model.steps_ is None or config.min_steps is None
                    else {"steps": model.steps_}
                )
            )
            bar.update(1)
            if progress:
                bar.write(
                    f"tune {name} {setting}: {config.tune_metric} {value:.4f} ({fit_s:.1f} s)"
                )
            if value > best[0] or best[1] is None:
                best = (value, setting, model)
        else:
            out[name] = {
                "chosen": best[1],
                "trials": trials,
                "edges": grid_edges(space[name], best[1]),
            }
            best_models[name] = best[2]
    bar.close()
    for name, steps in tuning_steps.items():
        _check_steps(name, steps, config, "at the validation cutoff")
    return out


def run_protocol(
    data: SalesData,
    names: Iterable[str],
    profile: str = "full",
    config: ProtocolConfig | None = None,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    search_space: Mapping[str, list[dict[str, Any]]] | None = None,
    oracle: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Tune, test with every seed, resample: the JSON-able payload of ``backtest.json``.

    ``params`` (``{model: {parameter: value}}``) overrides the profile's settings of each model
    (the tuning grid is tried on top of them); ``search_space`` replaces ``SEARCH_SPACE[profile]``.
    Values that are undefined (a slice without candidates at every cutoff) are ``None`` in the
    payload, with an :class:`EmptySliceWarning` naming the cutoffs."""
    config = config or ProtocolConfig()
    names = check_model_names(names)
    space = SEARCH_SPACE[profile] if search_space is None else search_space
    base = protocol_params(names, config, params)
    tic = time.perf_counter()
    tuning = tune(
        data, names, profile, config, params=params, search_space=space, progress=progress
    )
    tune_s = time.perf_counter() - tic
    chosen = {n: t["chosen"] for n, t in tuning.items() if "skipped" not in t}
    skipped = {n: t["skipped"] for n, t in tuning.items() if "skipped" in t}
    runnable = [n for n in names if n not in skipped]
    settings = {n: {**base[n], **chosen[n]} for n in runnable}
    results: list[BacktestResult] = []
    tic = time.perf_counter()
    for seed in config.seeds:
        factories = model_factories(runnable, profile, random_state=seed, overrides=settings)
        if oracle and data.truth is not None:
            factories["oracle"] = lambda fitted, truth=data.truth: SimulatorOracle(truth)
        results.append(
            run_backtest(
                data, factories, replace(config.backtest(), seed=config.seed), progress=progress
            )
        )
        if progress:
            print(f"seed {seed} done ({time.perf_counter() - tic:.0f} s)", flush=True)
    test_s = time.perf_counter() - tic
    models = results[0].models
    for name in results[0].steps:
        steps = [s for r in results for s in r.steps[name]]
        _check_steps(name, steps, config, "at the test cutoffs")
    _warn_empty_slices(results[0].windows)
    values = seed_values(results, config.k)
    boot = block_bootstrap(values, n_boot=config.n_boot, seed=config.seed)
    payload = {
        "protocol": {
            **asdict(config),
            "validation_cutoff": str(validation_cutoff(data, config).date()),
            "search_space": {n: space[n] for n in names},
            "budget_per_model": {n: len(space[n]) for n in names},
            "model_profile": profile,
        },
        "models": models,
        "windows": results[0].to_dict()["windows"],
        "tuning": tuning,
        "chosen_params": {n: {**MODEL_PARAMS[profile][n], **c} for n, c in settings.items()},
        "summary": summaries(boot, models, config),
        "per_cutoff": {
            m: {
                f"{s}/{metric}": [
                    [quiet_nanmean(v[i]) for v in values[m, s, metric]]
                    for i in range(len(config.seeds))
                ]
                for s in SLICES
                for metric in metric_names(config.k)
            }
            for m in models
        },
        "oracle_share": oracle_shares(boot, models, config) if "oracle" in models else {},
        "comparisons": comparisons(boot, models, config),
        "segments_auc": {
            m: {
                label: quiet_nanmean([r.by_segment("auc").loc[m, label] for r in results])
                for label in results[0].by_segment("auc").columns
            }
            for m in models
        }
        | {"customers": results[0].by_segment("auc").loc["customers"].to_dict()},
        "fit_seconds": {
            m: float(np.mean([np.mean(r.fit_seconds[m]) for r in results])) for m in models
        },
        "skipped": skipped,
        "timing_seconds": {"tune": round(tune_s, 1), "test": round(test_s, 1)},
    }
    if config.min_steps is not None:
        payload["training_steps"] = {
            m: [r.steps[m] for r in results] for m in models if m in results[0].steps
        }
    return finite_or_none(payload)


def _warn_empty_slices(windows: list[TestWindow]) -> None:
    """One :class:`EmptySliceWarning` per slice that is empty at some cutoff."""
    for name, members in (("cold", lambda w: w.cold), ("warm", lambda w: ~w.cold)):
        empty = [str(w.cutoff.date()) for w in windows if not members(w).any()]
        if empty:
            what = "new (launched on or after the cutoff)" if name == "cold" else "known"
            warnings.warn(
                f"no {what} candidates at cutoff(s) {empty}: the {name!r} slice is empty there, "
                "its metrics leave those cutoffs out (null where no cutoff has any)",
                EmptySliceWarning,
                stacklevel=3,
            )


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinite float (nested in dicts and lists) replaced by ``None``:
    JSON has no NaN, and a reader should see "undefined", not a number."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value
