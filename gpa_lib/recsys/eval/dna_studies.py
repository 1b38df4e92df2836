"""Chapter 4's sections as library calls: each function computes one section of the Fashion DNA
chapter and returns its glue values (``{key: value}``, glued by the chapter with one
:func:`gpa_lib.glue.glue_all`) and, where the section shows one, its table or figure. The chapter
calls, the library computes (issue 26)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gpa_lib.recsys.data.stats import store_summary
from gpa_lib.recsys.eval.analysis import (
    heldout_r2,
    metrics_table,
    neighbour_agreement,
    pca_2d,
    plot_dna_map,
    plot_neighbours,
    tsne_2d,
)
from gpa_lib.recsys.eval.backtest import evaluate, rolling_cutoffs, test_window
from gpa_lib.recsys.eval.dna_choice import (
    CHOICE_METRIC,
    GAP_METHOD,
    DnaChoice,
    chapter_validation_cutoff,
    choose_dna,
    dna_settings,
    setting_label,
    variant_gap,
)
from gpa_lib.recsys.eval.dna_claims import (
    angle_agreement,
    matched_outside_gap,
    plot_reliability,
    purchase_calibration,
)
from gpa_lib.recsys.eval.dna_variants import (
    IMAGE_DIM,
    VARIANT_LABELS,
    plot_variants,
    variant_params,
    variants_glue,
    variants_table,
)
from gpa_lib.recsys.eval.metrics import bootstrap_ci
from gpa_lib.recsys.eval.misspecified import misspecified_glue, plot_misspecified
from gpa_lib.recsys.eval.report import (
    compare_word,
    gap,
    gap_sentence,
    interval_glue,
    load_backtest,
    load_study,
    overlap_verdict,
    summary_table,
    verdict,
)
from gpa_lib.recsys.models import make_model
from gpa_lib.recsys.models.base import article_onehot
from gpa_lib.recsys.sim import (
    STORE_PRESETS,  # the store table
    simulate_preset,
)
from gpa_lib.results import result_exists


def _placed(figure):
    """Detach ``figure`` (or None) from pyplot, so a chapter shows it only where it glues it."""
    if figure is not None:
        plt.close(figure)
    return figure


def simulate_store(store: str, seed: int) -> tuple[Any, dict, dict[str, Any]]:
    """Simulate the preset ``store``: (data, its summary, the glue values of *The simulated
    store*)."""
    tic = time.perf_counter()
    store_config = STORE_PRESETS[store]
    data = simulate_preset(store, seed=seed, progress=False)
    simulate_s = time.perf_counter() - tic
    summary = store_summary(data)
    values = {
        "ch4_n_items": summary["n_items"],
        "ch4_n_orders": summary["n_orders"],
        "ch4_n_customers": store_config.n_customers,
        "ch4_n_weeks": store_config.n_weeks,
        "ch4_n_articles": summary["n_articles"],
        "ch4_simulate_s": simulate_s,
        "ch4_orders_per_year": summary["median_orders_per_customer_year"],
        "ch4_items_per_order": summary["mean_items_per_order"],
        "ch4_return_pct": 100 * summary["return_rate"],
        "ch4_life_weeks": summary["median_article_life_weeks"],
        "ch4_store": store,
        "ch4_image_share_pct": 100 * store_config.image_share,
        "ch4_attribute_share_pct": 100 * store_config.attribute_share,
    }
    return data, summary, values


@dataclass
class DnaFit:
    """Fashion DNA fitted at one cutoff, with the test window it is evaluated on."""

    cutoff: pd.Timestamp
    window: Any  # gpa_lib.recsys.eval.backtest.TestWindow
    past: Any  # the data before the cutoff
    params: dict[str, Any]  # the model's settings beyond the preset
    model: Any  # the fitted FashionDNA
    fit_s: float
    scores: np.ndarray
    metrics: Any  # evaluate()'s per-customer metrics
    auc_known: float
    auc_new: float
    values: dict[str, Any] = field(default_factory=dict)


def image_clause(store_config) -> str:
    """The sentence saying what this store's images show beyond the attributes."""
    if store_config.image_share > 0:
        return (
            f"In this store, part of each article's latent position "
            f"({100 * store_config.image_share:.0f}% of its variance, against "
            f"{100 * store_config.attribute_share:.0f}% from the attributes) is drawn from two "
            "values that only the image shows, a tone and a length (`data/simulator.md`), so the "
            "image says something the attribute table does not."
        )
    return (
        "In this store each image is drawn from the article's attributes plus pixel noise, "
        "so it says nothing the attribute table does not."
    )


def fit_dna(
    data,
    store: str,
    *,
    models: str,
    dna_inputs: str,
    train_customers: int,
    test_weeks: int,
    eval_customers: int,
    seed: int,
    setting: dict[str, Any] | None = None,
) -> DnaFit:
    """*Fitting Fashion DNA*: fit at the last cutoff ``test_weeks`` before the end of ``data``
    and evaluate on the window after it; ``setting`` (``{"hidden", "dna_dim"}``, the validation's
    choice) on top of the preset."""
    cutoff = rolling_cutoffs(data, 1, test_weeks)[0]
    window = test_window(data, cutoff, test_weeks, max_customers=eval_customers, seed=seed)
    past = data.window(end=cutoff)  # nothing on or after the cutoff, and no ground truth
    tic = time.perf_counter()
    # the inputs, the training sample and the chosen setting; the rest from the preset
    params = base_params(dna_inputs, train_customers) | dict(setting or {})
    model = make_model("fashion_dna", models, random_state=seed, **params).fit(past, until=cutoff)
    fit_s = time.perf_counter() - tic
    scores = model.score(window.customers, window.candidates)
    metrics = evaluate(scores, window)
    auc_known = float(np.nanmean(metrics["warm", "auc"]))
    auc_new = float(np.nanmean(metrics["cold", "auc"]))
    values = {
        "ch4_test_weeks": test_weeks,
        "ch4_cutoff": str(cutoff.date()),
        "ch4_fit_s": fit_s,
        "ch4_dna_dim": model.dna_dim,
        "ch4_dna_inputs": VARIANT_LABELS[dna_inputs],
        "ch4_image_dim": params["image_dim"],
        "ch4_image_clause": image_clause(STORE_PRESETS[store]),
        "ch4_n_train_customers": len(model.train_customers_),
        "ch4_candidates": len(window.candidates),
        "ch4_new_candidates": int(window.cold.sum()),
        "ch4_eval_customers": len(window.customers),
        "ch4_auc_known": auc_known,
        "ch4_auc_new": auc_new,
        "ch4_cold_ratio": auc_new / auc_known,
    }
    return DnaFit(
        cutoff, window, past, params, model, fit_s, scores, metrics, auc_known, auc_new, values
    )


def base_params(dna_inputs: str, train_customers: int) -> dict[str, Any]:
    """The chapter's Fashion DNA settings beyond the preset: its inputs and training sample."""
    return variant_params(dna_inputs) | {"n_train_customers": train_customers}


def choice_study(
    data,
    *,
    models: str,
    dna_inputs: str,
    train_customers: int,
    test_weeks: int,
    eval_customers: int,
    deep_hidden: int,
    seed: int,
) -> tuple[dict[str, Any], DnaChoice, pd.DataFrame]:
    """*Choosing the network on validation*: :func:`~gpa_lib.recsys.eval.dna_choice.choose_dna`
    at the protocol's validation cutoff: (glue values, the choice, its table)."""
    cutoff = chapter_validation_cutoff(data, test_weeks)
    choice = choose_dna(
        data,
        cutoff,
        dna_settings(deep_hidden),
        models=models,
        params=base_params(dna_inputs, train_customers),
        test_weeks=test_weeks,
        eval_customers=eval_customers,
        seed=seed,
    )
    by_setting = {(r["hidden"], r["dna_dim"]): r for r in choice.rows}
    linear = by_setting[tuple(choice.best_linear.values())]
    deep = by_setting[tuple(choice.best_deep.values())]
    metric = f"{choice.metric} all"
    values = {
        "ch4_val_cutoff": str(cutoff.date()),
        "ch4_val_settings": len(choice.rows),
        "ch4_dna_choice": setting_label(choice.chosen),
        "ch4_dna_choice_depth": "linear map" if not choice.chosen["hidden"] else "deep network",
        "ch4_val_linear": setting_label(choice.best_linear),
        "ch4_val_deep": setting_label(choice.best_deep),
        "ch4_val_linear_map": linear[metric],
        "ch4_val_deep_map": deep[metric],
        "ch4_val_linear_auc_new": linear["auc cold"],
        "ch4_val_deep_auc_new": deep["auc cold"],
        "ch4_val_s": choice.seconds,
    }
    table = pd.DataFrame(choice.rows).set_index(["hidden", "dna_dim"]).drop(columns="fit_seconds")
    table.columns = [c.replace("cold", "new").replace("warm", "known") for c in table.columns]
    return values, choice, table


def bench_study(bench: dict | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """The stored benchmark's rows for Fashion DNA, LightFM, popularity and the oracle: (glue
    values, AUC and MAP@12 table)."""
    bench = load_backtest() if bench is None else bench
    rows = ["popularity", "lightfm", "fashion_dna", "oracle"]
    subset = {**bench, "models": [m for m in rows if m in bench["models"]]}
    dna_summary = bench["summary"]["fashion_dna"]
    dna_lightfm = gap(bench, "fashion_dna", "lightfm", "auc", "cold")
    values = {
        "ch4_bench_cutoffs": len(bench["windows"]),
        "ch4_bench_seeds": len(bench["protocol"]["seeds"]),
        "ch4_bench_customers": bench["store"]["customers"],
        "ch4_bench_preset": bench["store"]["preset"],
        "ch4_bench_dna_new": dna_summary["cold/auc"]["mean"],
        "ch4_bench_dna_known": dna_summary["warm/auc"]["mean"],
        "ch4_bench_dna_ratio": dna_summary["cold/auc"]["mean"] / dna_summary["warm/auc"]["mean"],
        "ch4_bench_dna_lightfm": gap_sentence(dna_lightfm),
    }
    table = pd.concat(
        [summary_table(subset, "auc"), summary_table(subset, "map@12", digits=4)], axis=1
    )
    return values, table


def depth_study(
    fit: DnaFit, choice: DnaChoice, *, models: str, seed: int
) -> tuple[dict[str, Any], pd.DataFrame, dict]:
    """The best linear setting of the validation against the best deep one, both at the test
    cutoff (the chosen one is ``fit``; the other is fitted here): (glue values, the unrounded
    comparison table, the gaps deep - linear as Interval by (slice, metric))."""
    chosen_deep = bool(choice.chosen["hidden"])
    other = choice.best_linear if chosen_deep else choice.best_deep
    other_model = make_model("fashion_dna", models, random_state=seed, **(fit.params | other)).fit(
        fit.past, until=fit.cutoff
    )
    other_metrics = evaluate(
        other_model.score(fit.window.customers, fit.window.candidates), fit.window
    )
    deep_metrics, linear_metrics = (
        (fit.metrics, other_metrics) if chosen_deep else (other_metrics, fit.metrics)
    )
    labels = {
        setting_label(choice.best_linear) + (" (chosen)" if not chosen_deep else ""): "linear",
        setting_label(choice.best_deep) + (" (chosen)" if chosen_deep else ""): "deep",
    }
    depth = metrics_table({"linear": linear_metrics, "deep": deep_metrics}, labels)
    gaps = variant_gap(deep_metrics, linear_metrics, seed=seed)
    linear_row, deep_row = depth.iloc[0], depth.iloc[1]
    gap_values = {}
    for (slice_, metric), name in (
        (("cold", "auc"), "new"),
        (("warm", "auc"), "known"),
        (("all", CHOICE_METRIC), "map"),
    ):
        interval = gaps[(slice_, metric)]
        gap_values |= {
            f"ch4_depth_gap_{name}": interval.estimate,
            f"ch4_depth_gap_{name}_lo": interval.lo,
            f"ch4_depth_gap_{name}_hi": interval.hi,
            f"ch4_depth_gap_{name}_verdict": verdict(interval.lo, interval.hi),
        }
    map_verdict = gap_values["ch4_depth_gap_map_verdict"]
    test_prefers = {"above zero": True, "below zero": False}.get(map_verdict)
    values = {
        **gap_values,
        "ch4_depth_test_vs_choice": (
            "cannot tell the two apart"
            if test_prefers is None
            else "agrees with the validation's choice"
            if test_prefers == chosen_deep
            else "prefers the network the validation did not choose"
        ),
        "ch4_depth_interval": GAP_METHOD,
        "ch4_deep_hidden": choice.best_deep["hidden"],
        "ch4_deep_auc_known": deep_row["auc known"],
        "ch4_deep_auc_new": deep_row["auc new"],
        "ch4_deep_map": deep_row["map@12 all"],
        "ch4_linear_map": linear_row["map@12 all"],
        "ch4_deep_known_word": compare_word(deep_row["auc known"], linear_row["auc known"]),
        "ch4_deep_new_word": compare_word(deep_row["auc new"], linear_row["auc new"]),
        "ch4_deep_map_word": compare_word(deep_row["map@12 all"], linear_row["map@12 all"]),
    }
    return values, depth, gaps


def variants_study(result: dict | None = None, *, load: bool = True):
    """*Tags, image, or both* from the stored ``dna_variants`` study: (glue values, figure or
    None, table or a line saying how to produce it)."""
    if result is None and load and result_exists("dna_variants"):
        result = load_study("dna_variants")
    images_store = STORE_PRESETS["images"]
    values = {
        **variants_glue(result),
        "ch4_var_image_share_pct": 100 * images_store.image_share,
        "ch4_var_attribute_share_pct": 100 * images_store.attribute_share,
        "ch4_var_image_dim": (
            result["stores"]["images"]["settings"]["both"]["image_dim"]
            if result is not None
            else IMAGE_DIM
        ),
    }
    if result is None:
        shown = (
            "no stored study: python -m gpa_lib.bench recsys --study dna-variants "
            "writes data/results/dna_variants.json"
        )
        return values, None, shown
    figure = plot_variants(result, "auc", source="dna_variants")  # footer: read from the file
    return values, _placed(figure), variants_table(result)


def _interval(values) -> dict[str, float]:
    return bootstrap_ci(values).to_mean_dict()


def training_study(fit: DnaFit) -> tuple[dict[str, Any], dict[str, float], dict[str, float]]:
    """AUC of customers in the network's training sample and outside it: (glue values, inside
    interval, outside interval)."""
    in_training = np.isin(fit.window.customers, fit.model.train_customers_)
    inside = _interval(fit.metrics["all", "auc"][in_training])
    outside = _interval(fit.metrics["all", "auc"][~in_training])
    values = {
        "ch4_eval_in_training": int(in_training.sum()),
        **interval_glue("ch4_auc_in_training", inside, value="mean"),
        **interval_glue("ch4_auc_outside", outside, value="mean"),
        "ch4_in_out_verdict": overlap_verdict(inside, outside),
    }
    return values, inside, outside


def matched_study(fit: DnaFit, *, seed: int, n_boot: int = 500) -> tuple[dict[str, Any], dict]:
    """Customers outside training against training customers with as many past orders: (glue
    values, :func:`matched_outside_gap`'s result)."""
    in_training = np.isin(fit.window.customers, fit.model.train_customers_)
    matched = matched_outside_gap(
        fit.metrics["all", "auc"], in_training, fit.window.past_orders, n_boot=n_boot, seed=seed
    )
    values = {
        **interval_glue("ch4_matched_gap", matched["gap"], value="mean"),
        **interval_glue("ch4_matched_outside", matched["outside"], value="mean"),
        **interval_glue("ch4_matched_inside", matched["inside_matched"], value="mean"),
        "ch4_matched_gap_verdict": verdict(matched["gap"]["lo"], matched["gap"]["hi"]),
        "ch4_matched_strata": matched["strata"],
        "ch4_matched_n_outside": matched["n_outside"],
        "ch4_matched_dropped": matched["dropped_outside"],
    }
    return values, matched


LL_CONCLUSION = {
    "above zero": "No: on this store the sales counts give the better probability",
    "below zero": "Yes: on this store the DNA gives the better probability",
    "includes zero": "The two cannot be told apart on this store",
}
LL_WORD = {
    "above zero": "higher (worse) than popularity's",
    "below zero": "lower (better) than popularity's",
    "includes zero": "not separated from popularity's",
}


def calibration_study(fit: DnaFit, *, models: str, seed: int, pop_window_days: int = 28):
    """*Purchase probability*: Fashion DNA's score as a probability, raw and recalibrated, against
    popularity over ``pop_window_days`` recalibrated: (glue values, the calibration, figure)."""
    popularity = make_model("popularity", models, window_days=pop_window_days).fit(
        fit.past, until=fit.cutoff
    )
    popularity_logit = popularity.score(fit.window.customers, fit.window.candidates)
    calibration = purchase_calibration(
        {
            "Fashion DNA": fit.scores,
            "popularity": np.stack([popularity_logit, popularity_logit == 0], axis=-1),
        },
        fit.window.relevant,
        raw=("Fashion DNA",),
        gaps=(("Fashion DNA (recalibrated)", "popularity (recalibrated)"),),
        seed=seed,
    )
    figure = _placed(plot_reliability(calibration))
    ll = calibration["models"]
    (ll_gap,) = calibration["gaps"]  # Fashion DNA - popularity, both recalibrated
    ll_verdict = verdict(ll_gap["lo"], ll_gap["hi"])
    dna, raw = ll["Fashion DNA (recalibrated)"], ll["Fashion DNA (raw)"]
    values = {
        **interval_glue("ch4_ll_dna_raw", raw["log_loss"], value="mean"),
        **interval_glue("ch4_ll_dna", dna["log_loss"], value="mean"),
        **interval_glue("ch4_ll_pop", ll["popularity (recalibrated)"]["log_loss"], value="mean"),
        "ch4_ll_base_rate_pct": 100 * calibration["base_rate"],
        "ch4_ll_heldout": calibration["n_heldout"],
        "ch4_pop_window_days": pop_window_days,
        "ch4_dna_negatives": fit.model.n_negatives,
        "ch4_ll_platt_a": dna["platt"][0],
        "ch4_ll_platt_b": dna["platt"][1],
        "ch4_ll_raw_top_pred": raw["bins"][-1]["predicted"],
        "ch4_ll_raw_top_obs": raw["bins"][-1]["observed"],
        **interval_glue("ch4_ll_gap", ll_gap),
        "ch4_ll_gap_verdict": ll_verdict,
        "ch4_ll_gap_conclusion": LL_CONCLUSION[ll_verdict],
        "ch4_ll_gap_word": LL_WORD[ll_verdict],
    }
    return values, calibration, figure


def recent_articles(data, cutoff) -> np.ndarray:
    """Positions of the articles launched in the year before ``cutoff`` (or after it)."""
    launch = data.articles["launch"]
    return np.flatnonzero((launch >= cutoff - pd.Timedelta(weeks=52)).to_numpy())


def dna_map(data, fit: DnaFit, rng, *, map_articles: int, seed: int):
    """*A map of DNA space*: up to ``map_articles`` recent articles (drawn with ``rng``) by PCA
    and t-SNE: (glue values, figure)."""
    recent = recent_articles(data, fit.cutoff)
    shown = np.sort(rng.choice(recent, min(map_articles, len(recent)), replace=False))
    dna_shown = fit.model.dna(data.articles.index.to_numpy()[shown])
    coordinates, variance_share = pca_2d(dna_shown)
    embedded = tsne_2d(dna_shown, seed=seed)
    categories = data.articles["category"].to_numpy()[shown]
    # 10 in wide at most (the 772 px column): two panels side by side, the shared legend below
    figure, axes = plt.subplots(1, 2, figsize=(10, 6.2), constrained_layout=True)
    plot_dna_map(coordinates, categories, variance_share, title="PCA", ax=axes[0], legend=False)
    plot_dna_map(embedded, categories, title="t-SNE by angle", ax=axes[1], legend=False)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(
        handles, labels, loc="outside lower center", ncol=5, markerscale=3, fontsize="small"
    )
    values = {
        "ch4_map_articles": len(shown),
        "ch4_pca_share_pct": float(100 * variance_share.sum()),
    }
    return values, _placed(figure)


def neighbour_figure(data, fit: DnaFit, rng, *, n_queries: int, n_neighbours: int):
    """``n_queries`` new articles (drawn with ``rng``) and their ``n_neighbours`` nearest by DNA
    angle, as images."""
    article_ids = data.articles.index.to_numpy()
    queries = rng.choice(fit.window.candidates[fit.window.cold], n_queries, replace=False)
    neighbours, angles = fit.model.similar(queries, n=n_neighbours)
    attributes = data.articles[["category", "colour", "pattern"]].astype(str)
    captions = attributes["colour"] + " " + attributes["pattern"] + "\n" + attributes["category"]
    return _placed(plot_neighbours(data.images, article_ids, queries, neighbours, angles, captions))


def neighbour_study(
    data,
    fit: DnaFit,
    rng,
    *,
    n_neighbours: int,
    seed: int,
    n_category_sample: int = 500,
    n_category_neighbours: int = 5,
    n_angle_neighbours: int = 10,
    n_angle_articles: int = 600,
    n_boot: int = 100,
) -> tuple[dict[str, Any], dict[str, float], dict[str, dict]]:
    """Same-category neighbours and DNA angle against true angle on known and new articles
    (drawn with ``rng``): (glue values, same-category share, angle agreement by set)."""
    article_ids = data.articles.index.to_numpy()
    recent = recent_articles(data, fit.cutoff)
    new_articles = fit.window.candidates[fit.window.cold]
    sample = rng.choice(article_ids[recent], n_category_sample, replace=False)
    same_category, base_rate = neighbour_agreement(
        fit.model, data.articles, sample, "category", n=n_category_neighbours
    )
    values: dict[str, Any] = {
        "ch4_category_sample": n_category_sample,
        "ch4_category_neighbours": n_category_neighbours,
        "ch4_n_neighbours_shown": n_neighbours,
        "ch4_same_category_pct": 100 * same_category,
        "ch4_same_category_chance_pct": 100 * base_rate,
        "ch4_angle_neighbours": n_angle_neighbours,
    }
    launch = data.articles["launch"].to_numpy()[recent]
    known_pool = article_ids[recent][launch < fit.cutoff.to_datetime64()]
    angle_sets = {
        "known": rng.choice(known_pool, min(n_angle_articles, len(known_pool)), replace=False),
        "new": rng.choice(new_articles, min(n_angle_articles, len(new_articles)), replace=False),
    }
    angles_vs_truth = {
        name: angle_agreement(
            fit.model.dna(ids),
            data.truth.article_latent[data.articles.index.get_indexer(ids)],
            n_neighbours=n_angle_neighbours,
            n_boot=n_boot,
            seed=seed,
        )
        for name, ids in angle_sets.items()
    }
    for name, result in angles_vs_truth.items():
        values |= {
            **interval_glue(f"ch4_angle_rho_{name}", result["spearman"], value="mean"),
            **interval_glue(f"ch4_angle_nn_{name}", result["neighbour_overlap"], value="mean"),
            f"ch4_angle_chance_{name}": result["neighbour_chance"],
            f"ch4_angle_n_{name}": result["articles"],
        }
    return values, {"same_category": same_category, "chance": base_rate}, angles_vs_truth


R2_ROWS = {
    "dna_latent": "DNA -> article latent",
    "attributes_latent_ceiling": "one-hot attributes -> article latent (ceiling of tags only)",
    "dna_attribute_part": "DNA -> attribute part of the latent",
    "dna_image_part": "DNA -> image part of the latent",
    "style_now": "style -> customer's style at the cutoff",
    "style_base": "style -> customer's static base style",
}


def truth_study(data, fit: DnaFit, *, regular_min: int, seed: int):
    """*How much of the truth DNA recovers*: held-out R² of linear maps from DNA and styles to
    the simulator's truth: (glue values, the R² by row of :data:`R2_ROWS`, table)."""
    truth, model = data.truth, fit.model
    article_ids = data.articles.index.to_numpy()
    known = np.flatnonzero((data.articles["launch"] < fit.cutoff).to_numpy())
    dna_known = model.dna(article_ids[known])
    r2 = {"dna_latent": heldout_r2(dna_known, truth.article_latent[known], seed=seed)}
    r2["attributes_latent_ceiling"] = heldout_r2(
        article_onehot(data.articles.iloc[known]), truth.article_latent[known], seed=seed
    )
    r2["dna_attribute_part"] = heldout_r2(
        dna_known, truth.article_attribute_latent[known], seed=seed
    )
    r2["dna_image_part"] = (
        heldout_r2(dna_known, truth.article_image_latent[known], seed=seed)
        if truth.config.image_share > 0
        else float("nan")
    )
    cutoff_week = int((fit.cutoff - data.start).days // 7) - 1
    purchases = fit.past.transactions["customer"].value_counts()
    regular = data.customers.index.get_indexer(purchases.index[purchases >= regular_min])
    styles = model.styles(data.customers.index[regular])
    r2["style_now"] = heldout_r2(styles, truth.customer_style(cutoff_week)[regular], seed=seed)
    r2["style_base"] = heldout_r2(styles, truth.customer_base_style[regular], seed=seed)
    ceiling = r2["attributes_latent_ceiling"]
    values = {
        "ch4_r2_latent": r2["dna_latent"],
        "ch4_r2_attribute_part": r2["dna_attribute_part"],
        "ch4_r2_ceiling": ceiling,
        "ch4_r2_image_part": r2["dna_image_part"],
        "ch4_r2_vs_ceiling": compare_word(r2["dna_latent"], ceiling, "above", "below", "at"),
        "ch4_r2_style": r2["style_now"],
        "ch4_r2_base_style": r2["style_base"],
        "ch4_regular_customers": len(regular),
        "ch4_regular_min": regular_min,
    }
    table = pd.DataFrame(
        {"held-out R²": [r2[key] for key in R2_ROWS]}, index=list(R2_ROWS.values())
    ).round(3)
    return values, r2, table


def result_payload(
    *,
    store: str,
    summary: dict,
    dna_inputs: str,
    fit: DnaFit,
    choice: DnaChoice,
    depth: pd.DataFrame,
    depth_gaps: dict,
    inside: dict,
    outside: dict,
    neighbours: dict,
    matched: dict,
    calibration: dict,
    angles_vs_truth: dict,
    r2: dict,
) -> dict[str, Any]:
    """The chapter's result file (``write_result("ch4_fashion_dna", ...)``)."""
    return {
        "cutoff": str(fit.cutoff.date()),
        "store": summary,
        "store_preset": store,
        "dna_inputs": dna_inputs,
        "dna_params": fit.params,
        "fit_seconds": fit.fit_s,
        "auc_known": fit.auc_known,
        "auc_new": fit.auc_new,
        "cold_ratio": fit.auc_new / fit.auc_known,
        # the validation's choice: chapter 5 reads dna_choice["chosen"] ({"hidden", "dna_dim"})
        "dna_choice": choice.to_dict(),
        "depth_comparison": depth.reset_index().to_dict(orient="records"),
        "depth_gap_deep_minus_linear": {
            f"{metric} {slice_}": interval.to_dict()
            for (slice_, metric), interval in depth_gaps.items()
        },
        "auc_in_training": inside["mean"],
        "auc_outside_training": outside["mean"],
        "same_category_neighbours": neighbours["same_category"],
        "outside_training_matched": matched,
        "purchase_calibration": calibration,
        "angle_vs_truth": angles_vs_truth,
        "r2": r2,
    }


def misspecified_section(result: dict | None = None, *, load: bool = True):
    """*Does the cold-start result survive a store that is not the models' form?* from the stored
    ``misspecified`` study: (glue values, figure or None)."""
    if result is None and load and result_exists("misspecified"):
        result = load_study("misspecified")
    values = misspecified_glue(result)
    figure = None if result is None else plot_misspecified(result, source="misspecified")
    return values, _placed(figure)
