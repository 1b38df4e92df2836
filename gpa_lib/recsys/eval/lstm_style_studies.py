"""Chapter 5's experiments on the LSTM's style as library calls: the style-tracking experiment the
chapter runs (:func:`tracking_study`, :func:`paths_study`), the committed drift control
(:func:`drift_control_study`) and the chapter's result record (:func:`write_chapter_result`). Each
section returns its glue values (``{key: value}``) and its figure or table; the sections on the
committed backtest are in :mod:`gpa_lib.recsys.eval.lstm_studies`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gpa_lib.recsys.eval.analysis import plot_drift_sweep
from gpa_lib.recsys.eval.backtest import rolling_cutoffs
from gpa_lib.recsys.eval.report import (
    MODEL_LABELS,
    RECSYS_CODE,
    drift_glue,
    interval_glue,
    verdict,
)
from gpa_lib.recsys.eval.tracking import (
    plot_style_paths,
    plot_tracking_by_recency,
    style_paths,
    style_tracking,
)
from gpa_lib.recsys.models.presets import make_model
from gpa_lib.recsys.sim import simulate_preset
from gpa_lib.stamp import stamp_results

#: The drift study's gaps the chapter plots: column of ``drift_sweep`` -> label.
DRIFT_GAPS = {
    "lstm-static_cf auc warm": "LSTM − static CF, known articles",
    "lstm-fashion_dna auc warm": "LSTM − Fashion DNA, known articles",
    "lstm-static_cf auc all": "LSTM − static CF, all candidates",
}
#: The drift gaps the chapter states: glue prefix -> column of ``drift_sweep``.
DRIFT_GLUE = {
    "ch5_dr_cf_known": "lstm-static_cf auc warm",
    "ch5_dr_dna_known": "lstm-fashion_dna auc warm",
    "ch5_dr_cf_all": "lstm-static_cf auc all",
    "ch5_dr_cf_known_map": "lstm-static_cf map@12 warm",
}


@dataclass
class TrackingRun:
    """The style-tracking experiment: a store simulated, Fashion DNA and the LSTM fitted at its
    last test cutoff, and :func:`~gpa_lib.recsys.eval.tracking.style_tracking` of both styles."""

    data: Any  # the simulated SalesData
    cutoff: pd.Timestamp
    dna_model: Any  # the fitted FashionDNA
    lstm_model: Any  # the fitted LSTMCustomerModel
    styles: dict[str, np.ndarray]  # model -> (customers, D) style without its bias
    tracking: dict[str, Any]  # style_tracking's result
    seconds: float  # wall time of simulating, fitting and tracking
    values: dict[str, Any]  # the section's glue values
    figure: Any  # R² by days since the last order


def tracking_study(
    bench: Mapping[str, Any],
    *,
    track_store: str,
    track_customers: int,
    models: str,
    n_boot: int,
    seed: int,
) -> TrackingRun:
    """*Does the dynamic style track the true style?*: simulate ``track_store`` with
    ``track_customers`` customers, fit Fashion DNA and the LSTM (with the backtest's tuned settings
    when ``models`` is the backtest's model profile) at the last test cutoff of the backtest's
    protocol, and compare both styles with the true style of the week the LSTM aims at."""
    tic = time.perf_counter()
    protocol = bench["protocol"]
    data = simulate_preset(track_store, progress=False, n_customers=track_customers, seed=seed)
    cutoff = rolling_cutoffs(data, 1, protocol["test_weeks"])[-1]  # the last test cutoff
    tuned = bench["tuning"] if models == protocol["model_profile"] else {}

    def chosen(name: str) -> dict[str, Any]:
        return tuned.get(name, {}).get("chosen", {})

    dna = make_model("fashion_dna", models, random_state=seed, **chosen("fashion_dna"))
    dna.fit(data, until=cutoff)
    lstm = make_model("lstm", models, random_state=seed, dna=dna, **chosen("lstm"))
    lstm.fit(data, until=cutoff)
    styles = {"lstm": lstm.style_[:, :-1].numpy(), "fashion_dna": dna.style_[:, :-1].numpy()}
    target = cutoff + pd.Timedelta(days=lstm.horizon_days // 2)
    tracking = style_tracking(data, styles, cutoff, target_day=target, n_boot=n_boot, seed=seed)
    seconds = time.perf_counter() - tic
    figure = plot_tracking_by_recency(tracking, MODEL_LABELS)
    plt.close(figure)  # shown where the chapter places it (a glued figure)
    values = tracking_glue(tracking, track_customers, cutoff, seconds)
    return TrackingRun(data, cutoff, dna, lstm, styles, tracking, seconds, values, figure)


def tracking_glue(
    tracking: Mapping[str, Any], track_customers: int, cutoff: pd.Timestamp, seconds: float
) -> dict[str, Any]:
    """The glue values ``ch5_track_*`` of a :func:`style_tracking` result."""
    values: dict[str, Any] = {
        "ch5_track_customers": track_customers,
        "ch5_track_cutoff": str(cutoff.date()),
        "ch5_track_fit": tracking["n_fit"],
        "ch5_track_heldout": tracking["n_heldout"],
        "ch5_track_dim_model": tracking["dims"]["lstm"],
        "ch5_track_dim_true": tracking["dims"]["true"],
        "ch5_track_s": seconds,
    }
    for name, label in (("lstm", "lstm"), ("fashion_dna", "dna")):
        for stat in ("r2", "cosine", "moving_r2"):
            cell = tracking["models"][name][stat]
            values |= interval_glue(f"ch5_track_{label}_{stat}", cell, "mean")
    for stat in ("r2", "cosine"):
        row = tracking["gaps"]["lstm-fashion_dna"][stat]
        values |= interval_glue(f"ch5_track_gap_{stat}", row, "mean")
        values[f"ch5_track_gap_{stat}_verdict"] = verdict(row["lo"], row["hi"])
    recent, stale = tracking["by_recency"][0], tracking["by_recency"][-1]
    return values | {
        "ch5_track_recent_days": recent["days_to"],
        "ch5_track_stale_days": stale["days_from"],
        "ch5_track_recent_lstm": recent["lstm"]["mean"],
        "ch5_track_recent_dna": recent["fashion_dna"]["mean"],
        "ch5_track_stale_lstm": stale["lstm"]["mean"],
        "ch5_track_stale_dna": stale["fashion_dna"]["mean"],
    }


def paths_study(run: TrackingRun, *, n_paths: int, seed: int):
    """Style trajectories of ``n_paths`` held-out customers whose whole history the LSTM reads,
    drawn among the most active of them: ``(values, figure, paths)``."""
    tx = run.data.transactions
    n_orders = tx[tx["t_dat"] < run.cutoff].groupby("customer")["order"].nunique()
    held_out = ~n_orders.index.isin(run.tracking["fit_customers"])
    readable = n_orders[(n_orders <= run.lstm_model.max_orders) & held_out]
    most_active = readable.sort_values(ascending=False, kind="stable").index[: 10 * n_paths]
    shown = np.random.default_rng(seed).choice(
        most_active.to_numpy(), min(n_paths, len(most_active)), replace=False
    )
    paths = style_paths(
        run.data, run.lstm_model, run.styles["fashion_dna"], run.tracking["maps"], shown
    )
    figure = plot_style_paths(paths, labels=(MODEL_LABELS["lstm"], "Fashion DNA (static style)"))
    plt.close(figure)  # shown where the chapter places it (a glued figure)
    return {"ch5_track_path_orders": run.lstm_model.max_orders}, figure, paths


def drift_control_study(drift: Mapping[str, Any]):
    """*The control*: the committed drift study's gaps against drift (figure, with the footer of
    ``drift.json``: :mod:`gpa_lib.stamp`), their glue values (``ch5_dr_*``) and the AUC columns of
    the sweep as a table."""
    sweep = pd.DataFrame(drift["drift_sweep"])
    figure = plot_drift_sweep(
        sweep, tuple(DRIFT_GAPS), labels=DRIFT_GAPS, ylabel="gap in mean per-customer AUC"
    )
    stamp_results(figure, {"drift": drift}, RECSYS_CODE)
    plt.close(figure)  # shown where the chapter places it (a glued figure)
    values = {
        "ch5_dr_customers": drift["store"]["customers"],
        "ch5_dr_weeks": drift["store"]["weeks"],
        "ch5_dr_seeds": len(drift["protocol"]["seeds"]),
        "ch5_dr_cutoffs": drift["protocol"]["n_cutoffs"],
        "ch5_dr_eval": drift["protocol"]["max_customers"],
        "ch5_dr_min": drift["provenance"]["wall_time_s"] / 60,
        "ch5_dr_commit": drift["provenance"]["commit"][:7],
    }
    for prefix, key in DRIFT_GLUE.items():
        values |= drift_glue(prefix, drift["drift_sweep"], key, digits=4 if "map" in key else 3)
    table = sweep.drop(columns=["per_cutoff", "cutoffs"]).set_index("drift").filter(like="auc")
    return values, figure, table.round(4)


def write_chapter_result(
    *,
    profile: str,
    run: TrackingRun,
    paths: list[dict[str, Any]],
    seed: int,
    track_store: str,
    track_customers: int,
    studies: Mapping[str, Mapping[str, Any]],
    wall_s: float,
) -> dict[str, float]:
    """Write ``ch5_claims.json`` (the style-tracking result and the commit of each study the
    chapter rendered, ``studies``: ``{"backtest": payload, ...}``) unless ``profile`` is ``smoke``;
    return the chapter's wall time as glue (``ch5_wall_s``)."""
    from gpa_lib.results import write_result

    if profile != "smoke":
        drop = ("fit_customers", "maps")
        payload = {
            "style_tracking": {k: v for k, v in run.tracking.items() if k not in drop},
            "style_paths": paths,
            "store": {"preset": track_store, "customers": track_customers, "seed": seed},
            "cutoff": str(run.cutoff.date()),
            **{f"{name}_commit": study["provenance"]["commit"] for name, study in studies.items()},
            "timing_seconds": {"style_tracking": run.seconds},
        }
        write_result("ch5_claims", payload, profile=profile, wall_time_s=wall_s)
    return {"ch5_wall_s": wall_s}
