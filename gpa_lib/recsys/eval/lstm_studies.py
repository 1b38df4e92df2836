"""Chapter 5's sections on the committed backtest, ablation and SASRec results as library calls:
each function reads one committed study (``data/results/*.json``) and returns the section's glue
values (``{key: value}``, glued by the chapter with one :func:`gpa_lib.glue.glue_all`) and, where the
section shows one, its table or figure. The live style-tracking experiment, the drift control and
the chapter's result record are in :mod:`gpa_lib.recsys.eval.lstm_style_studies`; the verdicts that
open the chapter in :mod:`gpa_lib.recsys.eval.store_verdicts`. The chapter calls, the library
computes (issue 26)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gpa_lib.recsys.eval.analysis import plot_protocol_per_cutoff, plot_protocol_segments
from gpa_lib.recsys.eval.report import (
    MODEL_LABELS,
    RECSYS_CODE,
    best_model,
    gap,
    gap_glue,
    gap_sentence,
    interval_glue,
    load_study,
    segment_leaders,
    share_table,
    summary_table,
    windows_table,
)
from gpa_lib.recsys.eval.verdicts import context_glue, tracking_glue, verdict_glue, verdict_table
from gpa_lib.results import result_exists
from gpa_lib.stamp import stamp_results

#: The backtest's gaps the *Results* section states: ``{key: (a, b, metric, slice)}``.
BACKTEST_GAPS = {
    "lstm_cf_known_auc": ("lstm", "static_cf", "auc", "warm"),
    "lstm_cf_known_map": ("lstm", "static_cf", "map@12", "warm"),
    "lstm_cf_all_auc": ("lstm", "static_cf", "auc", "all"),
    "lstm_cf_all_map": ("lstm", "static_cf", "map@12", "all"),
    "lstm_dna_known_auc": ("lstm", "fashion_dna", "auc", "warm"),
    "lstm_pop_all_map": ("lstm", "popularity", "map@12", "all"),
    "lstm_pop_known_map": ("lstm", "popularity", "map@12", "warm"),
    "cf_pop_known_auc": ("static_cf", "popularity", "auc", "warm"),
    "dna_lightfm_new_auc": ("fashion_dna", "lightfm", "auc", "cold"),
    "lstm_als_all_map": ("lstm", "implicit_als", "map@12", "all"),
}
#: The ablation's gaps (keys ``ch5_abl_*``).
ABLATION_GAPS = {
    "ctx_all_map": ("lstm", "lstm_paper", "map@12", "all"),
    "ctx_known_map": ("lstm", "lstm_paper", "map@12", "warm"),
    "ctx_new_map": ("lstm", "lstm_paper", "map@12", "cold"),
    "ctx_known_auc": ("lstm", "lstm_paper", "auc", "warm"),
    "paper_np_all_map": ("lstm_paper", "context_popularity", "map@12", "all"),
    "paper_np_known_map": ("lstm_paper", "context_popularity", "map@12", "warm"),
    "ours_np_all_map": ("lstm", "context_popularity", "map@12", "all"),
    "ours_np_known_map": ("lstm", "context_popularity", "map@12", "warm"),
    "ours_np_known_auc": ("lstm", "context_popularity", "auc", "warm"),
    "np_pop_all_map": ("context_popularity", "popularity", "map@12", "all"),
    "ours_cfdna_all_map": ("lstm", "static_cf_dna", "map@12", "all"),
    "ours_cfdna_known_auc": ("lstm", "static_cf_dna", "auc", "warm"),
    "paper_cfdna_all_map": ("lstm_paper", "static_cf_dna", "map@12", "all"),
    "paper_cfdna_known_map": ("lstm_paper", "static_cf_dna", "map@12", "warm"),
    "cfdna_cf_all_map": ("static_cf_dna", "static_cf", "map@12", "all"),
}
#: SASRec's gaps (keys ``ch5_sas_*``).
SASREC_GAPS = {
    "lstm_known_auc": ("sasrec", "lstm", "auc", "warm"),
    "lstm_known_map": ("sasrec", "lstm", "map@12", "warm"),
    "lstm_all_map": ("sasrec", "lstm", "map@12", "all"),
    "lstm_new_auc": ("sasrec", "lstm", "auc", "cold"),
    "cf_known_auc": ("sasrec", "static_cf", "auc", "warm"),
    "cf_known_map": ("sasrec", "static_cf", "map@12", "warm"),
}
#: The softmax study's gaps: on-sale against catalogue softmax, and the catalogue one against
#: popularity.
SOFTMAX_GAPS = {
    "known_map": ("sasrec", "sasrec_catalogue", "map@12", "warm"),
    "known_auc": ("sasrec", "sasrec_catalogue", "auc", "warm"),
    "all_map": ("sasrec", "sasrec_catalogue", "map@12", "all"),
    "catalogue_pop_known_map": ("sasrec_catalogue", "popularity", "map@12", "warm"),
}
#: The models of the SASRec section's table.
SASREC_TABLE_MODELS = ["popularity", "static_cf", "lstm", "sasrec"]


def _commit(provenance: Mapping[str, Any]) -> str:
    """The short commit of a provenance record, ``-dirty`` kept."""
    commit = provenance["commit"]
    return f"{commit[:7]}{'-dirty' if commit.endswith('-dirty') else ''}"


def results_table(payload: Mapping[str, Any], models: list[str] | None = None) -> pd.DataFrame:
    """Mean AUC and MAP@12 with their intervals, one row per model (``models``: a subset)."""
    shown = payload if models is None else {**payload, "models": models}
    return pd.concat(
        [summary_table(shown, "auc"), summary_table(shown, "map@12", digits=4)], axis=1
    )


def single_store_study(
    judgements: list, bench: Mapping[str, Any], results_dir: Any = None
) -> tuple[dict[str, Any], pd.DataFrame]:
    """*The claims on one store*: the LSTM paper's claims judged on the committed single-store
    results (``judgements``: :func:`~gpa_lib.recsys.eval.verdicts.committed_verdicts`), the
    ablation's personal and context gaps, the committed style tracking, and how many exploratory
    comparisons the backtest and the ablation report."""
    ablation = load_study("ablation", results_dir)
    values = (
        verdict_glue("ch5", judgements)
        | context_glue("ch5", ablation)
        | tracking_glue("ch5", load_study("ch5_claims", results_dir))
        | {
            "ch5_n_comparisons_backtest": len(bench["comparisons"]),
            "ch5_n_comparisons_ablation": len(ablation["comparisons"]),
        }
    )
    return values, verdict_table(judgements)


def design_study(bench: Mapping[str, Any]) -> dict[str, Any]:
    """*Backtest design*: the store, cutoffs, seeds, tuning budget and provenance."""
    store, protocol = bench["store"], bench["protocol"]
    return {
        "ch5_bench_customers": store["customers"],
        "ch5_bench_weeks": store["weeks"],
        "ch5_bench_items": store["items"],
        "ch5_bench_preset": store["preset"],
        "ch5_drift": store["drift"],
        "ch5_n_cutoffs": len(bench["windows"]),
        "ch5_n_seeds": len(protocol["seeds"]),
        "ch5_test_weeks": protocol["test_weeks"],
        "ch5_validation_cutoff": protocol["validation_cutoff"],
        "ch5_first_cutoff": bench["windows"][0]["cutoff"],
        "ch5_last_cutoff": bench["windows"][-1]["cutoff"],
        "ch5_tune_metric": protocol["tune_metric"].upper(),
        "ch5_budget": max(protocol["budget_per_model"].values()),
        "ch5_bench_commit": bench["provenance"]["commit"][:7],
        "ch5_bench_min": bench["provenance"]["wall_time_s"] / 60,
    }


def windows_study(bench: Mapping[str, Any]) -> tuple[dict[str, Any], pd.DataFrame]:
    """The test windows: candidates, new ones, what sold, and the models skipped."""
    windows = windows_table(bench)
    values = {
        "ch5_candidates_mean": float(windows["candidates"].mean()),
        "ch5_new_share_pct": float(
            100 * (windows["new candidates"] / windows["candidates"]).mean()
        ),
        "ch5_sold_pct": float(windows["candidates that sold (%)"].mean()),
        "ch5_eval_customers": int(windows["customers evaluated"].sum()),
        "ch5_outside_items": float(windows["items sold outside the candidates"].mean()),
        "ch5_skipped": ", ".join(f"{k} ({v})" for k, v in bench["skipped"].items()) or "none",
    }
    return values, windows.round(1)


def gaps_study(bench: Mapping[str, Any]) -> dict[str, Any]:
    """*Results*: the gaps that decide the papers' claims, the best model per slice, the oracle."""
    values = gap_glue(bench, "ch5", BACKTEST_GAPS)
    values |= {
        f"ch5_best_{metric.split('@')[0]}_{label}": best_model(bench, metric, slice_)
        for metric in ("auc", "map@12")
        for slice_, label in (("all", "all"), ("cold", "new"), ("warm", "known"))
    }
    summary = bench["summary"]
    return values | {
        "ch5_oracle_auc_all": summary["oracle"]["all/auc"]["mean"],
        "ch5_oracle_map_all": summary["oracle"]["all/map@12"]["mean"],
        "ch5_pop_map_all": summary["popularity"]["all/map@12"]["mean"],
    }


def shares_study(bench: Mapping[str, Any]) -> tuple[dict[str, float], pd.DataFrame]:
    """Each model's share (%) of the oracle-minus-popularity gap, and the LSTM's in words."""
    shares = pd.concat([share_table(bench, "auc"), share_table(bench, "map@12")], axis=1)
    lstm_share = bench["oracle_share"].get("lstm", {})
    values = {
        "ch5_lstm_share_known_auc": 100 * lstm_share["warm/auc"]["mean"],
        "ch5_lstm_share_all_map": 100 * lstm_share["all/map@12"]["mean"],
        "ch5_lstm_share_all_map_lo": 100 * lstm_share["all/map@12"]["lo"],
        "ch5_lstm_share_all_map_hi": 100 * lstm_share["all/map@12"]["hi"],
    }
    return values, shares


def per_cutoff_study(bench: Mapping[str, Any]):
    """Every model's AUC and MAP@12 per test cutoff (2 x 3 panels), and popularity's range; the
    figure of a ``bench`` read from ``backtest.json`` has its footer (:mod:`gpa_lib.stamp`)."""
    # 10 in wide at most (the 772 px column): the legend goes above the panels, not beside them
    fig, axes = plt.subplots(2, 3, figsize=(10, 7.2), constrained_layout=True, sharex=True)
    for row, metric in enumerate(("auc", "map@12")):
        for column, slice_ in enumerate(("all", "cold", "warm")):
            plot_protocol_per_cutoff(bench, metric, slice_, ax=axes[row, column])
            axes[row, column].set_xlabel("")  # one shared label below: three would overlap
            axes[row, column].tick_params(axis="x", labelrotation=45)
            if column > 0:
                axes[row, column].set_ylabel("")
    fig.supxlabel("test cutoff (window: the 4 weeks after it)", fontsize="medium")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=4, fontsize="small")
    per_cutoff_pop = np.asarray(bench["per_cutoff"]["popularity"]["all/map@12"]).mean(axis=0)
    values = {
        "ch5_pop_map_lowest": float(per_cutoff_pop.min()),
        "ch5_pop_map_highest": float(per_cutoff_pop.max()),
    }
    stamp_results(fig, {"backtest": bench}, RECSYS_CODE)
    plt.close(fig)  # shown where the chapter places it (a glued figure)
    return values, fig


def segments_study(bench: Mapping[str, Any]):
    """*Who gains*: AUC per group of customers by past orders, and the leader of each group; the
    figure of a ``bench`` read from ``backtest.json`` has its footer (:mod:`gpa_lib.stamp`)."""
    fig = plot_protocol_segments(bench)
    segments = bench["segments_auc"]
    leaders = segment_leaders(bench)
    values = {
        "ch5_lstm_new_customers_auc": segments["lstm"]["0"],
        "ch5_lstm_regular_auc": segments["lstm"]["21+"],
        "ch5_segment_leader": ", ".join(f"{k} orders: {v}" for k, v in leaders.items()),
    }
    stamp_results(fig, {"backtest": bench}, RECSYS_CODE)
    plt.close(fig)  # shown where the chapter places it (a glued figure)
    return values, fig


def ablation_study(ablation: Mapping[str, Any]) -> tuple[dict[str, Any], pd.DataFrame]:
    """*Ablation*: its store and provenance, the gaps of :data:`ABLATION_GAPS`, and its table."""
    store = ablation["store"]
    values = {
        "ch5_abl_customers": store["customers"],
        "ch5_abl_weeks": store["weeks"],
        "ch5_abl_cutoffs": len(ablation["windows"]),
        "ch5_abl_seeds": len(ablation["protocol"]["seeds"]),
        "ch5_abl_commit": ablation["provenance"]["commit"][:7],
        "ch5_abl_min": ablation["provenance"]["wall_time_s"] / 60,
    }
    return values | gap_glue(ablation, "ch5_abl", ABLATION_GAPS), results_table(ablation)


def sasrec_study(bench: Mapping[str, Any]) -> tuple[dict[str, Any], pd.DataFrame]:
    """*A modern sequential anchor*: SASRec's grid, choice, fit time, gaps and oracle share."""
    if "sasrec" not in bench["models"]:
        raise ValueError(
            f"data/results/backtest.json has no sasrec (its models: {bench['models']}): rerun "
            "python -m gpa_lib.bench recsys --study backtest with SASRec among --models"
        )
    tuned, chosen = bench["tuning"]["sasrec"], bench["chosen_params"]["sasrec"]
    values = gap_glue(bench, "ch5_sas", SASREC_GAPS) | {
        "ch5_sas_grid": "; ".join(
            ", ".join(f"{k} {v}" for k, v in trial["setting"].items()) for trial in tuned["trials"]
        ),
        "ch5_sas_chosen": ", ".join(f"{k} {v}" for k, v in tuned["chosen"].items()),
        "ch5_sas_budget": len(tuned["trials"]),
        "ch5_sas_epochs": chosen["epochs"],
        "ch5_bench_cores": bench["provenance"]["device"]["cpu_count"],
        "ch5_sas_max_len": chosen["max_len"],
        "ch5_sas_layers": chosen["layers"],
        "ch5_sas_fit_s": bench["fit_seconds"]["sasrec"],
        "ch5_lstm_fit_s": bench["fit_seconds"]["lstm"],
    }
    for key, model in (("ch5_sas_share_known_map", "sasrec"), ("ch5_lstm_share_known_map", "lstm")):
        share = bench["oracle_share"][model]["warm/map@12"]
        values |= interval_glue(key, {k: 100 * v for k, v in share.items()}, value="mean")
    return values, results_table(bench, SASREC_TABLE_MODELS)


def softmax_study(results_dir: Any = None) -> tuple[dict[str, str], pd.DataFrame | None]:
    """*The softmax*: SASRec's on-sale against catalogue softmax in one sentence
    (``ch5_sas_softmax_sentence``) and the study's MAP@12 table; a sentence saying what to run
    (and no table) when ``sasrec_softmax.json`` is not stored."""
    if not result_exists("sasrec_softmax", results_dir):
        sentence = "the study is not stored (it writes data/results/sasrec_softmax.json)."
        return {"ch5_sas_softmax_sentence": sentence}, None
    study = load_study("sasrec_softmax", results_dir)
    rows = {key: gap(study, a, b, metric, s) for key, (a, b, metric, s) in SOFTMAX_GAPS.items()}
    store = study["store"]
    sentence = (
        f"on known articles {gap_sentence(rows['known_map'], digits=4)} "
        f"({gap_sentence(rows['known_auc'])}); on all candidates "
        f"{gap_sentence(rows['all_map'], digits=4)}. Against popularity on known articles, "
        f"{gap_sentence(rows['catalogue_pop_known_map'], digits=4)}. "
        f"({len(study['windows'])} cutoffs, {len(study['protocol']['seeds'])} "
        f"seeds, a {store['customers']:,}-customer store of the {store['preset']} preset; commit "
        f"{_commit(study['provenance'])}.)"
    )
    return {"ch5_sas_softmax_sentence": sentence}, summary_table(study, "map@12", digits=4)


def speed_study(
    bench: Mapping[str, Any], ablation: Mapping[str, Any]
) -> tuple[dict[str, float], pd.DataFrame]:
    """*Speed*: the mean fit time per model, and the search and test times of both studies."""
    fit_times = pd.DataFrame({"mean fit at one cutoff (s)": bench["fit_seconds"]})
    values = {
        "ch5_tune_s": bench["timing_seconds"]["tune"],
        "ch5_test_s": bench["timing_seconds"]["test"],
        "ch5_abl_test_s": ablation["timing_seconds"]["test"],
    }
    return values, fit_times.rename(index=MODEL_LABELS).round(2)


def timing_study(results_dir: Any = None) -> tuple[dict[str, str], pd.DataFrame | None]:
    """The full-size timing study (``recsys_bench.json``) in one sentence (the chapter names the
    command before it) and one table; a sentence saying it is not stored (and no table) without it."""
    if not result_exists("recsys_bench", results_dir):
        sentence = "it is not stored, so no table is shown."
        return {"ch5_timing_sentence": sentence}, None
    timing = load_study("recsys_bench", results_dir)
    store = timing["store"]
    sentence = (
        f"at commit {_commit(timing['provenance'])} with {timing['threads']} torch threads, each "
        f"model fitted once on the {store['items_before_cutoff']:,} items before one cutoff "
        f"of a {store['customers']:,}-customer store, then scoring every one of those "
        f"customers against the {timing['models'][0]['articles']} articles on sale after it. "
        "Wall-clock and process CPU seconds on the machine in the JSON's provenance; the LSTM's "
        "fit excludes the Fashion DNA it reads."
    )
    table = (
        pd.DataFrame(timing["models"])
        .set_index("model")
        .rename(index=MODEL_LABELS)[["fit_seconds", "fit_cpu_seconds", "score_seconds"]]
        .rename(
            columns={
                "fit_seconds": "fit (s, wall)",
                "fit_cpu_seconds": "fit (s, process CPU)",
                "score_seconds": "score every customer (s)",
            }
        )
    )
    return {"ch5_timing_sentence": sentence}, table
