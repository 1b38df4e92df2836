"""gpa_lib.recsys.eval.dna_studies: chapter 4's sections as library calls, on the smoke store."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gpa_lib.recsys.data.stats import store_summary  # noqa: E402
from gpa_lib.recsys.eval import dna_studies  # noqa: E402
from gpa_lib.recsys.eval.dna_variants import IMAGE_DIM  # noqa: E402
from gpa_lib.recsys.sim import STORE_PRESETS  # noqa: E402

SEED = 0


@pytest.fixture(scope="module")
def store():
    return dna_studies.simulate_store("smoke", SEED)


@pytest.fixture(scope="module")
def choice(store):
    data, _, _ = store
    return dna_studies.choice_study(
        data, models="smoke", dna_inputs="tags", train_customers=300, test_weeks=4,
        eval_customers=300, deep_hidden=8, seed=SEED,
    )  # fmt: skip


@pytest.fixture(scope="module")
def fit(store, choice):
    data, _, _ = store
    return dna_studies.fit_dna(
        data, "smoke", models="smoke", dna_inputs="tags", train_customers=300,
        test_weeks=4, eval_customers=300, seed=SEED, setting=choice[1].chosen,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_simulate_store_glues_the_summary_and_the_preset(store):
    data, summary, values = store
    config = STORE_PRESETS["smoke"]
    assert summary == store_summary(data)
    assert values["ch4_store"] == "smoke" and values["ch4_n_items"] == summary["n_items"]
    assert values["ch4_n_customers"] == config.n_customers
    assert values["ch4_return_pct"] == 100 * summary["return_rate"]
    assert all(key.startswith("ch4_") for key in values)


def test_image_clause_says_whether_the_image_adds():
    assert "only the image shows" in dna_studies.image_clause(STORE_PRESETS["images"])
    assert "says nothing" in dna_studies.image_clause(STORE_PRESETS["smoke"])


def test_fit_dna_glues_its_window_and_aucs(fit):
    values = fit.values
    assert values["ch4_cutoff"] == str(fit.cutoff.date())
    assert values["ch4_candidates"] == len(fit.window.candidates)
    assert values["ch4_new_candidates"] == int(fit.window.cold.sum())
    assert values["ch4_n_train_customers"] == len(fit.model.train_customers_) <= 300
    assert values["ch4_cold_ratio"] == fit.auc_new / fit.auc_known
    assert 0 <= fit.auc_known <= 1 and 0 <= fit.auc_new <= 1
    assert values["ch4_image_dim"] == fit.params["image_dim"] == 0  # tags only


def test_choice_study_glues_the_chosen_setting_and_fits_it(choice, fit):
    values, dna_choice, table = choice
    assert len(table) == values["ch4_val_settings"] == 4
    assert values["ch4_dna_choice"] == dna_studies.setting_label(dna_choice.chosen)
    assert dna_choice.cutoff < fit.cutoff and dna_choice.window_end == fit.cutoff
    assert {k: fit.params[k] for k in ("hidden", "dna_dim")} == dna_choice.chosen
    assert fit.model.dna_dim == dna_choice.chosen["dna_dim"]
    best = table["map@12 all"].max()
    assert table.loc[tuple(dna_choice.chosen.values()), "map@12 all"] == best


def test_depth_study_compares_the_best_linear_and_deep_with_intervals(fit, choice):
    values, depth, gaps = dna_studies.depth_study(fit, choice[1], models="smoke", seed=SEED)
    assert len(depth) == 2 and sum("(chosen)" in label for label in depth.index) == 1
    assert values["ch4_deep_hidden"] == 8
    assert values["ch4_linear_map"] == depth.iloc[0]["map@12 all"]
    gap = gaps[("cold", "auc")]
    assert gap.estimate == pytest.approx(depth.iloc[1]["auc new"] - depth.iloc[0]["auc new"])
    assert gap.lo <= gap.estimate <= gap.hi
    assert values["ch4_depth_gap_new_verdict"] in ("above zero", "below zero", "includes zero")
    assert values["ch4_depth_test_vs_choice"] in (
        "cannot tell the two apart",
        "agrees with the validation's choice",
        "prefers the network the validation did not choose",
    )


def test_variants_study_without_a_stored_study_says_how_to_make_one():
    values, figure, shown = dna_studies.variants_study(None, load=False)
    assert figure is None and "--study dna-variants" in shown
    assert values["ch4_var_image_dim"] == IMAGE_DIM
    assert values["ch4_var_image_share_pct"] == 100 * STORE_PRESETS["images"].image_share


def test_training_and_matched_studies_split_the_evaluated_customers(fit):
    values, inside, outside = dna_studies.training_study(fit)
    in_training = np.isin(fit.window.customers, fit.model.train_customers_)
    assert values["ch4_eval_in_training"] == int(in_training.sum())
    assert values["ch4_auc_in_training"] == inside["mean"]
    assert inside["lo"] <= inside["mean"] <= inside["hi"]
    assert values["ch4_auc_outside"] == outside["mean"]
    matched_values, matched = dna_studies.matched_study(fit, seed=SEED, n_boot=50)
    assert matched_values["ch4_matched_n_outside"] == matched["n_outside"]
    assert matched_values["ch4_matched_gap_verdict"] in dna_studies.LL_WORD


def test_calibration_study_words_follow_the_verdict(fit):
    values, calibration, figure = dna_studies.calibration_study(fit, models="smoke", seed=SEED)
    verdict = values["ch4_ll_gap_verdict"]
    assert values["ch4_ll_gap_word"] == dna_studies.LL_WORD[verdict]
    assert values["ch4_ll_gap_conclusion"] == dna_studies.LL_CONCLUSION[verdict]
    assert values["ch4_pop_window_days"] == 28
    assert values["ch4_ll_heldout"] == calibration["n_heldout"]
    assert figure is not None


def test_map_and_neighbours_are_reproducible_from_the_seed(store, fit):
    data, _, _ = store

    def run():
        rng = np.random.default_rng(SEED)
        map_values, _ = dna_studies.dna_map(data, fit, rng, map_articles=50, seed=SEED)
        dna_studies.neighbour_figure(data, fit, rng, n_queries=2, n_neighbours=3)
        values, neighbours, angles = dna_studies.neighbour_study(
            data, fit, rng, n_neighbours=3, seed=SEED, n_category_sample=50,
            n_angle_articles=40, n_boot=10,
        )  # fmt: skip
        return map_values | values, neighbours

    (first, neighbours), (second, _) = run(), run()
    assert first == second
    assert first["ch4_map_articles"] == 50
    assert first["ch4_same_category_pct"] == 100 * neighbours["same_category"]
    assert {"ch4_angle_rho_known", "ch4_angle_nn_new_hi", "ch4_angle_n_new"} <= set(first)


def test_truth_study_table_rows_are_the_r2_values(store, fit):
    data, _, _ = store
    values, r2, table = dna_studies.truth_study(data, fit, regular_min=3, seed=SEED)
    assert list(r2) == list(dna_studies.R2_ROWS)
    assert isinstance(table, pd.DataFrame) and len(table) == len(dna_studies.R2_ROWS)
    assert values["ch4_r2_latent"] == r2["dna_latent"]
    assert math.isnan(values["ch4_r2_image_part"])  # the smoke store's images add nothing
    assert values["ch4_regular_min"] == 3


def test_result_payload_holds_every_section(store, fit, choice):
    data, summary, _ = store
    _, depth, gaps = dna_studies.depth_study(fit, choice[1], models="smoke", seed=SEED)
    _, inside, outside = dna_studies.training_study(fit)
    payload = dna_studies.result_payload(
        store="smoke", summary=summary, dna_inputs="tags", fit=fit, choice=choice[1],
        depth=depth, depth_gaps=gaps,
        inside=inside, outside=outside, neighbours={"same_category": 0.5}, matched={},
        calibration={}, angles_vs_truth={}, r2={},
    )  # fmt: skip
    assert payload["auc_in_training"] == inside["mean"]
    assert payload["cold_ratio"] == fit.auc_new / fit.auc_known
    assert len(payload["depth_comparison"]) == 2
    assert payload["dna_choice"]["chosen"] == choice[1].chosen  # what chapter 5 reads
    assert payload["depth_gap_deep_minus_linear"]["auc cold"]["n"] == 1


def test_bench_study_reads_the_stored_backtest():
    from gpa_lib.recsys.eval.report import load_backtest

    bench = load_backtest()
    values, table = dna_studies.bench_study(bench)
    assert values["ch4_bench_cutoffs"] == len(bench["windows"])
    summary = bench["summary"]["fashion_dna"]
    assert values["ch4_bench_dna_new"] == summary["cold/auc"]["mean"]
    assert len(table) == len(
        {"popularity", "lightfm", "fashion_dna", "oracle"} & set(bench["models"])
    )
