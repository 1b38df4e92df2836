"""Chapter 4's Fashion DNA chosen by validation, and the test gap between its variants.

:func:`choose_dna` fits every setting of a small grid (a linear map, ``hidden=0``, against hidden
layers, each at two DNA dimensions) at the protocol's validation cutoff
(:func:`gpa_lib.recsys.eval.protocol.validation_cutoff`: its window ends where the test window
starts) on the sales before it, scores each on the validation window with the protocol's tune metric
(MAP@12 on all candidates), and keeps the best. It reads nothing on or after the end of the
validation window: the data is cut there first (tested). :func:`variant_gap` then compares the best
linear and the best deep setting, both refitted at the test cutoff, with paired intervals from
:func:`gpa_lib.stats.hierarchical_bootstrap` over what the chapter has (one store, one cutoff, one
training seed: customers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gpa_lib.recsys.eval.backtest import evaluate, test_window
from gpa_lib.recsys.eval.protocol import ProtocolConfig, validation_cutoff
from gpa_lib.recsys.models import make_model
from gpa_lib.stats import hierarchical_bootstrap

#: The metric the validation maximises: the protocol's (ProtocolConfig.tune_metric), on all candidates.
CHOICE_METRIC = ProtocolConfig.tune_metric
#: How the test gap's interval is made (what the chapter has: one store, cutoff and seed).
GAP_METHOD = "bootstrap over customers (one store, one test cutoff, one training seed)"
#: The slices and metrics reported for every setting and in the test gap.
REPORTED = (("all", CHOICE_METRIC), ("cold", "auc"), ("warm", "auc"))


def dna_settings(deep_hidden: int, dims: tuple[int, ...] = (16, 32)) -> list[dict[str, int]]:
    """The grid: a linear map (``hidden`` 0) and two hidden layers of ``deep_hidden`` units, each
    at every DNA dimension of ``dims``; the first of equal scores wins, so simpler comes first."""
    if deep_hidden < 1:
        raise ValueError(f"deep_hidden={deep_hidden} must be >= 1 (the deep variant)")
    return [{"hidden": hidden, "dna_dim": dim} for hidden in (0, deep_hidden) for dim in dims]


def setting_label(setting: dict[str, Any]) -> str:
    """``"linear, 16 dimensions"`` or ``"two hidden layers of 128, 32 dimensions"``."""
    depth = "linear" if not setting["hidden"] else f"two hidden layers of {setting['hidden']}"
    return f"{depth}, {setting['dna_dim']} dimensions"


def chapter_validation_cutoff(data, test_weeks: int) -> pd.Timestamp:
    """The protocol's validation cutoff for the chapter's one test cutoff of ``test_weeks``."""
    config = ProtocolConfig(n_cutoffs=1, test_weeks=test_weeks, step_weeks=test_weeks)
    return validation_cutoff(data, config)


@dataclass
class DnaChoice:
    """The validation's record: every setting's scores and the one chosen."""

    cutoff: pd.Timestamp  # the validation cutoff
    window_end: pd.Timestamp  # the end of the validation window: nothing after it was read
    rows: list[dict[str, Any]]  # one per setting: the setting, its scores, fit seconds
    chosen: dict[str, int]  # {"hidden", "dna_dim"}
    best_linear: dict[str, int]
    best_deep: dict[str, int]
    metric: str = CHOICE_METRIC
    seconds: float = 0.0
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "validation_cutoff": str(self.cutoff.date()),
            "window_end": str(self.window_end.date()),
            "metric": self.metric,
            "settings": self.rows,
            "chosen": self.chosen,
            "chosen_label": setting_label(self.chosen),
            "best_linear": self.best_linear,
            "best_deep": self.best_deep,
        }


def choose_dna(
    data,
    cutoff: Any,
    settings: list[dict[str, int]],
    *,
    models: str,
    params: dict[str, Any],
    test_weeks: int,
    eval_customers: int,
    seed: int,
) -> DnaChoice:
    """Fit Fashion DNA with ``params`` and each of ``settings`` before ``cutoff`` and score it on
    ``[cutoff, cutoff + test_weeks)``; the best by :data:`CHOICE_METRIC` is chosen."""
    tic = time.perf_counter()
    cutoff = pd.Timestamp(cutoff)
    window_end = cutoff + pd.Timedelta(weeks=test_weeks)
    visible = data.window(end=window_end)  # nothing after the validation window
    window = test_window(visible, cutoff, test_weeks, max_customers=eval_customers, seed=seed)
    past = visible.window(end=cutoff)
    rows = []
    for setting in settings:
        fit_tic = time.perf_counter()
        model = make_model("fashion_dna", models, random_state=seed, **(params | setting))
        metrics = evaluate(
            model.fit(past, until=cutoff).score(window.customers, window.candidates), window
        )
        scores = {f"{m} {s}": float(np.nanmean(metrics[s, m])) for s, m in REPORTED}
        rows.append({**setting, **scores, "fit_seconds": time.perf_counter() - fit_tic})
    key = f"{CHOICE_METRIC} all"

    def best(candidates: list[dict[str, Any]]) -> dict[str, int]:
        top = max(candidates, key=lambda row: row[key])  # the first of equals
        return {"hidden": top["hidden"], "dna_dim": top["dna_dim"]}

    return DnaChoice(
        cutoff,
        window_end,
        rows,
        best(rows),
        best([r for r in rows if not r["hidden"]]),
        best([r for r in rows if r["hidden"]]),
        seconds=time.perf_counter() - tic,
    )


def variant_gap(
    metrics_deep, metrics_linear, *, n_boot: int = 500, seed: int = 0
) -> dict[tuple[str, str], Any]:
    """Deep minus linear at the test cutoff for every :data:`REPORTED` (slice, metric): paired
    :class:`~gpa_lib.stats.Interval` from :func:`~gpa_lib.stats.hierarchical_bootstrap` over the
    per-customer values (one store, one cutoff, one seed: the customers are resampled)."""
    values = {}
    for slice_, metric in REPORTED:
        for name, metrics in (("deep", metrics_deep), ("linear", metrics_linear)):
            per_customer = np.asarray(metrics[slice_, metric], dtype=float)
            values[(name, slice_, metric)] = [[per_customer[None, :]]]  # 1 store, 1 cutoff, 1 seed
    boot = hierarchical_bootstrap(values, n_boot=n_boot, seed=seed)
    boot.method = GAP_METHOD
    return {
        (slice_, metric): boot.gap(("deep", slice_, metric), ("linear", slice_, metric))
        for slice_, metric in REPORTED
    }
