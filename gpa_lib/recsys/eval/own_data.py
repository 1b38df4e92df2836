"""Backtest your own data: the chapters' protocol on a user's folder, with settings sized to it.

:func:`backtest_own_data` loads a folder (the interactions format, H&M's layout or a Parquet save,
:func:`~gpa_lib.recsys.data.layouts.load_data`), derives defaults from the data, lets any of them be
overridden, and runs :func:`~gpa_lib.recsys.eval.protocol.run_protocol`. The command line is
``python -m gpa_lib.bench recsys --data PATH --out FILE`` (``data/interactions.md``).

Defaults that follow the data (:func:`suggest_protocol`, :func:`suggest_params`):

- **Windows.** ``test_weeks`` 4 (2 under 16 weeks of data, 1 under 8), ``step_weeks`` the same;
  as many rolling cutoffs (up to 3) as leave a third of the span, and at least 4 weeks, of history
  before the validation cutoff. Every buyer is evaluated up to 20,000 customers per cutoff.
- **Candidates.** The articles sold in the 4 weeks before the cutoff plus those first sold in the
  window (``recent_sales``); when almost no customer buys an article twice (under 1% of the
  purchases repeat one), what a customer bought before is left out of their ranking
  (``exclude_seen``): with no repeats it can never be right, and ranking it would only punish the
  models that remember it.
- **Training budgets.** In optimiser steps, not epochs, sized on the smallest training set (the
  sales before the validation cutoff): the sequence models (LSTM, SASRec) get
  :data:`SEQUENCE_STEPS` Adam steps with batches of about a sixteenth of their training sequences
  (16 to 256), the factor models (static CF, Fashion DNA) enough epochs of batches of a fiftieth of
  the purchases for :data:`MIN_STEPS`; every model trains all customers. The tuning grids vary the
  training length next to the learning rate or size (:func:`suggest_search_space`), and a fit with
  fewer than :data:`MIN_STEPS` steps warns.
- **Cold customers.** Every model gives customers without a purchase before the cutoff the
  popularity ranking (``cold_customers="popularity"``, :mod:`gpa_lib.recsys.models.base`).
- **The LSTM's horizon** is the test window (``7 * test_weeks`` days).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gpa_lib.recsys.data.layouts import detect_layout, load_data
from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.eval.protocol import (
    SEARCH_SPACE,
    ProtocolConfig,
    run_protocol,
    validation_cutoff,
)
from gpa_lib.recsys.models.presets import check_model_names, model_parameters

#: The models run on a user's data unless told otherwise (those that cannot run are skipped).
DEFAULT_MODELS = (
    "popularity",
    "static_cf",
    "implicit_als",
    "lightfm",
    "fashion_dna",
    "lstm",
    "sasrec",
)
#: Adam steps of the sequence models at their shorter tuning setting.
SEQUENCE_STEPS = 400
#: Fewer optimiser steps than this in a fit warns (:class:`~gpa_lib.recsys.eval.protocol.TrainingBudgetWarning`).
MIN_STEPS = 300
#: Share of purchases that repeat an earlier (customer, article) pair below which seen items are
#: left out of the rankings by default.
REPEAT_SHARE = 0.01


def data_facts(data: SalesData) -> dict[str, Any]:
    """Counts the defaults are derived from: events, customers, articles, span, repeats."""
    tx = data.transactions
    customer, article = tx["customer"].to_numpy(), tx["article"].to_numpy()
    key = customer * max(len(data.articles), 1) + np.searchsorted(
        np.sort(data.articles.index.to_numpy()), article
    )
    distinct_pairs = len(np.unique(key))
    orders = tx[["customer", "order"]].drop_duplicates()["customer"].value_counts()
    span_days = (data.end.normalize() - data.start.normalize()).days + 1
    return {
        "events": len(tx),
        "customers": len(data.customers),
        "buyers": int(tx["customer"].nunique()),
        "articles": len(data.articles),
        "first_day": str(data.start.date()),
        "last_day": str(data.end.date()),
        "span_weeks": round(span_days / 7, 1),
        "distinct_pairs": distinct_pairs,
        "repeat_share": round(1 - distinct_pairs / max(len(tx), 1), 4),
        "customers_with_2_orders": int((orders >= 2).sum()),
        "customers_with_1_event": int((tx["customer"].value_counts() == 1).sum()),
    }


def suggest_protocol(data: SalesData, **overrides: Any) -> ProtocolConfig:
    """The :class:`ProtocolConfig` the module docstring describes, with ``overrides`` applied
    (any field of ProtocolConfig; unknown names are a ``TypeError``)."""
    known = {f.name for f in fields(ProtocolConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"ProtocolConfig has no field(s) {unknown}; it has {sorted(known)}")
    facts = data_facts(data)
    span = facts["span_weeks"]
    test_weeks = overrides.get("test_weeks") or (4 if span >= 16 else 2 if span >= 8 else 1)
    step_weeks = overrides.get("step_weeks") or test_weeks
    history = max(overrides.get("min_history_weeks", 4), math.ceil(span / 3))
    room = span - history - 2 * test_weeks  # weeks left for more test cutoffs
    n_cutoffs = overrides.get("n_cutoffs") or int(max(1, min(3, room // step_weeks + 1)))
    defaults = {
        "n_cutoffs": n_cutoffs,
        "test_weeks": test_weeks,
        "step_weeks": step_weeks,
        "seeds": (0, 1),
        "max_customers": 20_000,
        "candidate_rule": "recent_sales" if data.availability is None else "availability",
        "exclude_seen": facts["repeat_share"] < REPEAT_SHARE,
        "min_steps": MIN_STEPS,
    }
    return ProtocolConfig(**{**defaults, **{k: v for k, v in overrides.items() if v is not None}})


def _clamp(value: float, low: int, high: int) -> int:
    return int(min(max(value, low), high))


def suggest_params(
    data: SalesData, names: list[str], config: ProtocolConfig, threads: int = 1
) -> dict[str, dict[str, Any]]:
    """``{model: settings}`` sized to ``data`` (see the module docstring), on top of the ``full``
    profile; only parameters the model takes."""
    try:  # the smallest training set the protocol fits on: the one before the validation cutoff
        facts = data_facts(data.window(end=validation_cutoff(data, config)))
    except ValueError:  # no valid validation cutoff: run_protocol will say why
        facts = data_facts(data)
    n_pairs = max(facts["distinct_pairs"], 1)
    batch = _clamp(n_pairs // 50, 256, 16_384)
    factor_epochs = max(6, math.ceil(MIN_STEPS / math.ceil(n_pairs / batch)))
    lstm_batch = _clamp(facts["customers_with_2_orders"] // 16, 16, 256)
    sasrec_batch = _clamp(facts["buyers"] // 16, 16, 128)
    wanted = {
        "static_cf": {"batch_size": batch, "epochs": factor_epochs},
        "static_cf_dna": {"batch_size": batch, "epochs": factor_epochs},
        "fashion_dna": {
            "batch_size": _clamp(n_pairs // 50, 256, 8_192),
            "epochs": max(
                4, math.ceil(MIN_STEPS / math.ceil(n_pairs / _clamp(n_pairs // 50, 256, 8_192)))
            ),
            "n_train_customers": None,
            "min_purchases": 2,
        },
        "lstm": {"batch_customers": lstm_batch, "steps": SEQUENCE_STEPS, "n_train_customers": None},
        "lstm_paper": {
            "batch_customers": lstm_batch,
            "steps": SEQUENCE_STEPS,
            "n_train_customers": None,
        },
        "sasrec": {"batch_customers": sasrec_batch, "steps": SEQUENCE_STEPS},
        "sasrec_catalogue": {"batch_customers": sasrec_batch, "steps": SEQUENCE_STEPS},
        "implicit_als": {"num_threads": threads},
        "implicit_bpr": {"num_threads": threads},
        "lightfm": {"num_threads": threads},
    }
    out = {}
    for name in names:
        accepted = model_parameters(name)
        settings = {k: v for k, v in wanted.get(name, {}).items() if k in accepted}
        settings["cold_customers"] = "popularity"
        out[name] = settings
    return out


def suggest_search_space(
    names: list[str], params: dict[str, dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The ``full`` grids, with the training length as one axis where a model trains for long:
    the steps of the sequence models (x1, x3), the epochs of static CF and Fashion DNA (x1, x2)."""
    space = {n: list(SEARCH_SPACE["full"][n]) for n in names if n in SEARCH_SPACE["full"]}
    for name in names:
        settings = params.get(name, {})
        if "steps" in settings:
            steps = settings["steps"]
            lr = (3e-3, 1e-2) if name.startswith("lstm") else (1e-3, 3e-3)
            space[name] = [{"steps": s, "lr": r} for s in (steps, 3 * steps) for r in lr]
        elif name in ("static_cf", "static_cf_dna") and "epochs" in settings:
            e = settings["epochs"]
            space[name] = [{"factors": f, "epochs": n} for f in (16, 32) for n in (e, 2 * e)]
        elif name == "fashion_dna" and "epochs" in settings:
            e = settings["epochs"]
            space[name] = [{"dna_dim": d, "epochs": n} for d in (16, 32) for n in (e, 2 * e)]
    return space


def parse_params(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``["lstm.steps=2000", "sasrec.lr=0.003"]`` -> ``{"lstm": {"steps": 2000}, ...}``; values are
    read as JSON where they parse (numbers, true/false, null), else kept as strings."""
    import json

    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        model, dot, parameter = key.strip().partition(".")
        if not sep or not dot or not model or not parameter:
            raise ValueError(f"--params {item!r} must look like model.parameter=value")
        check_model_names([model])
        accepted = model_parameters(model)
        if parameter not in accepted and parameter != "cold_customers":
            raise ValueError(
                f"--params {item!r}: model {model!r} takes no parameter {parameter!r}; it takes "
                f"{sorted(accepted)} and cold_customers"
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(model, {})[parameter] = value
    return out


def backtest_own_data(
    data: SalesData | str | os.PathLike,
    models: list[str] | None = None,
    *,
    layout: str = "auto",
    params: dict[str, dict[str, Any]] | None = None,
    threads: int = 1,
    progress: bool = True,
    echo: Any = print,
    **protocol: Any,
) -> dict[str, Any]:
    """Run the protocol on ``data`` (a SalesData or a folder) and return the JSON-able payload.

    ``models`` default :data:`DEFAULT_MODELS`; ``params`` (``{model: {parameter: value}}``)
    override the suggested settings; ``protocol`` overrides fields of the suggested
    :class:`ProtocolConfig` (``n_cutoffs=``, ``test_weeks=``, ``candidate_rule=``, ...). The
    settings in force are printed through ``echo`` before anything is fitted.
    """
    import torch

    tic = time.perf_counter()
    source: dict[str, Any] = {"layout": "given"}
    if not isinstance(data, SalesData):
        root = Path(data)
        layout = detect_layout(root) if layout == "auto" else layout
        source = {"path": str(root.resolve()), "layout": layout}
        data = load_data(root, layout, progress=progress)
    load_s = time.perf_counter() - tic
    names = check_model_names(models or DEFAULT_MODELS)
    config = suggest_protocol(data, **protocol)
    settings = suggest_params(data, names, config, threads=threads)
    for name, extra in (params or {}).items():
        if name not in names:
            raise ValueError(f"params names model {name!r}, which is not among the models {names}")
        settings[name] = {**settings[name], **extra}
    space = suggest_search_space(names, settings)
    for name, extra in (params or {}).items():  # a parameter set by hand is not tuned over
        space[name] = [
            {k: v for k, v in s.items() if k not in extra} for s in space.get(name, [{}])
        ]
        space[name] = [dict(t) for t in {tuple(sorted(s.items())) for s in space[name]}] or [{}]
        space[name].sort(key=lambda s: sorted(s.items()))
    facts = data_facts(data)
    echo(f"data: {facts}")
    echo(f"protocol: {asdict(config)}")
    for name in names:
        echo(f"  {name}: {settings[name]}; tuned over {space[name]}")
    torch.set_num_threads(threads)
    payload = run_protocol(
        data,
        names,
        "full",
        config,
        params=settings,
        search_space=space,
        oracle=False,
        progress=progress,
    )
    payload["data"] = {**source, **facts, "meta": data.meta}
    payload["params_given"] = params or {}
    payload["threads"] = threads
    payload["timing_seconds"]["load"] = round(load_s, 1)
    payload["timing_seconds"]["total"] = round(time.perf_counter() - tic, 1)
    return payload


def summary_table(payload: dict[str, Any], k: int = 12) -> pd.DataFrame:
    """Models (rows) by metric (columns), each ``mean [lo, hi]`` (``n/a`` where undefined)."""
    columns = [f"all/{m}" for m in ("auc", f"map@{k}", f"recall@{k}", f"ndcg@{k}")]
    columns += ["cold/auc", "warm/auc"]

    def cell(stats: dict[str, Any]) -> str:
        if stats is None or stats.get("mean") is None:
            return "n/a"
        lo, hi = stats.get("lo"), stats.get("hi")
        interval = "" if lo is None or hi is None else f" [{lo:.3f}, {hi:.3f}]"
        return f"{stats['mean']:.3f}{interval}"

    rows = {
        model: {c: cell(payload["summary"][model].get(c)) for c in columns}
        for model in payload["models"]
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["fit s"] = [f"{payload['fit_seconds'][m]:.1f}" for m in table.index]
    return table


__all__ = [
    "DEFAULT_MODELS",
    "MIN_STEPS",
    "backtest_own_data",
    "data_facts",
    "parse_params",
    "suggest_params",
    "suggest_protocol",
    "suggest_search_space",
    "summary_table",
]
