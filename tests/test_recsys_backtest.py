"""The backtest: cutoffs, windows, no leakage, summaries."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from gpa_lib.recsys.data import SalesData
from gpa_lib.recsys.data.toy import toy_store
from gpa_lib.recsys.eval.backtest import (
    BacktestConfig,
    candidates_at,
    rolling_cutoffs,
    run_backtest,
    test_window,
)
from gpa_lib.recsys.eval.experiments import drift_sweep, scoring_time
from gpa_lib.recsys.eval.protocol import ProtocolConfig
from gpa_lib.recsys.models import (
    MODEL_CLASSES,
    Popularity,
    Recommender,
    StaticCF,
    model_factories,
)

torch.set_num_threads(1)
test_window.__test__ = False  # a library function whose name starts with "test"


@pytest.fixture(scope="module")
def store():
    return toy_store(n_customers=150, n_weeks=12, seed=1)


def test_rolling_cutoffs_end_one_window_before_the_data(store):
    cutoffs = rolling_cutoffs(store, n_cutoffs=3, test_weeks=2, step_weeks=1)
    assert len(cutoffs) == 3 and all(np.diff(cutoffs) == pd.Timedelta(weeks=1))
    assert cutoffs[-1] + pd.Timedelta(weeks=2) == store.end.normalize() + pd.Timedelta(days=1)
    with pytest.raises(ValueError, match="not after the first sale"):
        rolling_cutoffs(store, n_cutoffs=20, test_weeks=2, step_weeks=1)


def test_window_ranks_what_is_on_sale_not_what_sold(store):
    cutoff = pd.Timestamp("2024-03-04")
    end = cutoff + pd.Timedelta(weeks=2)
    window = test_window(store, cutoff, test_weeks=2)
    # the catalogue's rule, by a slow loop: on sale at the cutoff, or launched before the window ends
    spells = store.availability
    expected = set()
    for article, launch in store.articles["launch"].items():
        rows = spells[spells["article"] == article]
        live = ((rows["on_sale_from"] <= cutoff) & (cutoff < rows["on_sale_until"])).any()
        if live or (cutoff <= launch < end and len(rows)):
            expected.add(article)
    assert set(window.candidates) == expected and window.rule == "availability"
    tx = store.transactions
    inside = tx[(tx["t_dat"] >= cutoff) & (tx["t_dat"] < end)]
    assert set(inside["article"]) <= expected
    launch = store.articles.loc[window.candidates, "launch"]
    np.testing.assert_array_equal(window.cold, (launch >= cutoff).to_numpy())
    assert window.cold.any() and (~window.cold).any()
    np.testing.assert_array_equal(window.customers, np.sort(inside["customer"].unique()))
    for i, customer in enumerate(window.customers[:20]):  # relevant, by a slow loop
        bought = set(inside.loc[inside["customer"] == customer, "article"])
        assert set(window.candidates[window.relevant[i]]) == bought
    before = tx[tx["t_dat"] < cutoff]
    for i, customer in enumerate(window.customers[:20]):
        assert (
            window.past_orders[i] == before.loc[before["customer"] == customer, "order"].nunique()
        )
    sampled = test_window(store, cutoff, test_weeks=2, max_customers=10, seed=3)
    assert len(sampled.customers) == 10 and sampled.n_buyers == len(window.customers)


@pytest.mark.parametrize("with_availability", [True, False])
def test_deleting_an_articles_window_sales_leaves_the_candidates_unchanged(
    store, with_availability
):
    cutoff = pd.Timestamp("2024-03-04")
    end = cutoff + pd.Timedelta(weeks=2)
    data = (
        store
        if with_availability
        else SalesData(store.transactions, store.articles, store.customers, availability=None)
    )
    window = test_window(data, cutoff, test_weeks=2)
    tx = data.transactions
    inside = (tx["t_dat"] >= cutoff) & (tx["t_dat"] < end)
    for article in (
        tx.loc[inside, "article"].value_counts().index[0],  # the window's best seller
        window.candidates[window.cold][0],  # a new article
    ):
        kept = tx.loc[~(inside & (tx["article"] == article))].reset_index(drop=True)
        deleted = SalesData(kept, data.articles, data.customers, availability=data.availability)
        again = test_window(deleted, cutoff, test_weeks=2)
        np.testing.assert_array_equal(again.candidates, window.candidates)
        np.testing.assert_array_equal(again.cold, window.cold)
        column = np.searchsorted(window.candidates, article)
        assert window.relevant[:, column].any() and not again.relevant[:, column].any()


def test_without_stock_data_recent_sales_and_new_launches_are_the_candidates(store):
    cutoff = pd.Timestamp("2024-03-04")
    end = cutoff + pd.Timedelta(weeks=2)
    data = SalesData(store.transactions, store.articles, store.customers, availability=None)
    candidates, rule = candidates_at(data, cutoff, end, recent_weeks=3)
    tx = data.transactions
    recent = tx[(tx["t_dat"] >= cutoff - pd.Timedelta(weeks=3)) & (tx["t_dat"] < cutoff)]
    launch = data.articles["launch"]
    new = launch.index[(launch >= cutoff) & (launch < end)]
    assert rule == "recent_sales"
    assert set(candidates) == set(recent["article"]) | set(new)


class Spy(Recommender):
    """Records the latest transaction date it was handed; scores at random."""

    seen_until: list = []

    def _fit(self, history, data):
        Spy.seen_until.append((data.transactions["t_dat"].max(), history.until, data.truth))

    def _score(self, customer_rows, article_rows):
        return np.random.default_rng(0).random((len(customer_rows), len(article_rows)))


def test_no_model_is_handed_anything_from_after_its_cutoff(store):
    Spy.seen_until.clear()
    config = BacktestConfig(n_cutoffs=3, test_weeks=2, step_weeks=1, n_boot=50)
    result = run_backtest(store, {"spy": lambda fitted: Spy()}, config)
    assert len(Spy.seen_until) == 3
    for (latest, until, truth), window in zip(Spy.seen_until, result.windows, strict=True):
        assert latest < window.cutoff and until == window.cutoff and truth is None


def test_backtest_summary_gaps_segments_and_json(store):
    config = BacktestConfig(n_cutoffs=2, test_weeks=2, step_weeks=1, n_boot=100)
    factories = {
        "popularity": lambda fitted: Popularity(),
        "static_cf": lambda fitted: StaticCF(factors=2, epochs=10, batch_size=256, cold="lowest"),
    }

    class Missing(Popularity):
        @classmethod
        def can_run(cls):
            return False, "library x is not installed"

    factories["missing"] = lambda fitted: Missing()
    result = run_backtest(store, factories, config)
    assert result.models == ["popularity", "static_cf"]
    assert result.skipped == {"missing": "library x is not installed"}
    summary = result.summary()
    assert (
        summary.loc["static_cf", ("all", "auc", "mean")]
        > summary.loc["popularity", ("all", "auc", "mean")]
    )
    lo, mean, hi = (summary.loc["static_cf", ("all", "auc", s)] for s in ("lo", "mean", "hi"))
    assert lo <= mean <= hi
    n = sum(len(w.customers) for w in result.windows)
    assert len(result.pooled("static_cf", "map@12", "cold")) == n
    gap = result.compare("static_cf", "popularity", "auc")
    assert gap["significant"] and gap["lo"] > 0
    segments = result.by_segment()
    assert segments.loc["customers"].sum() == n
    payload = result.to_dict(
        comparisons=[("static_cf", "popularity", "auc", "all"), ("x", "y", "auc", "all")]
    )
    assert len(payload["comparisons"]) == 1
    json.dumps(payload)
    with pytest.raises(ValueError, match="model='nope'"):
        result.pooled("nope")


def test_presets_run_through_the_backtest(store):
    config = BacktestConfig(n_cutoffs=1, test_weeks=2, n_boot=20)
    names = ("popularity", "fashion_dna", "lstm")
    result = run_backtest(store, model_factories(names, profile="smoke"), config)
    assert set(result.models) == set(names)
    assert np.isfinite(result.pooled("lstm", "auc", "cold")).any()


def test_scoring_time_scores_every_customer_in_blocks(store):
    model = Popularity().fit(store, until=pd.Timestamp("2024-03-04"))
    timing = scoring_time(
        model, store.customers.index.to_numpy(), store.articles.index.to_numpy(), block=64
    )
    assert timing["customers"] == len(store.customers) and timing["seconds"] >= 0


def test_drift_sweep_reports_the_gap_per_drift():
    table = drift_sweep(
        [0.0, 0.9],
        n_customers=300,
        n_weeks=20,
        profile="smoke",
        config=ProtocolConfig(n_cutoffs=2, test_weeks=2, step_weeks=2, seeds=(0, 1), n_boot=20),
        simulate_overrides={"articles_per_week": 10, "image_size": 0},
    )
    assert list(table["drift"]) == [0.0, 0.9]
    for column in ("lstm-static_cf auc warm", "lstm-static_cf auc warm lo", "lstm auc all"):
        assert column in table.columns
    row = table.iloc[0]
    assert row["lstm-static_cf auc warm lo"] <= row["lstm-static_cf auc warm hi"]
    assert len(row["per_cutoff"]["lstm-static_cf auc warm"]) == len(row["cutoffs"]) == 2


def test_bench_script_writes_json_with_every_model(tmp_path, capsys):
    from gpa_lib.bench.recsys import STUDY_MODELS, main

    rc = main(
        [
            "--study",
            "timing",
            "--customers",
            "300",
            "--weeks",
            "14",
            "--profile",
            "smoke",
            "--threads",
            "1",
            "--results-dir",
            str(tmp_path),
        ]
    )
    assert rc == 0
    document = json.loads((tmp_path / "recsys_bench.json").read_text())
    assert document["provenance"]["profile"] == "smoke"
    timed = {row["model"] for row in document["models"]} | set(document["skipped"])
    assert timed == set(STUDY_MODELS["timing"]) == set(MODEL_CLASSES) - {"sasrec_catalogue"}
    for row in document["models"]:
        assert row["fit_seconds"] >= 0 and row["customers"] == 300
    assert "lstm" in capsys.readouterr().out


def test_bench_backtest_study_writes_the_protocol(tmp_path):
    from gpa_lib.bench.recsys import main

    args = ["--store", "smoke", "--customers", "400", "--weeks", "20", "--profile", "smoke"]
    args += ["--models", "popularity,static_cf,fashion_dna,lstm", "--cutoffs", "3"]
    args += ["--test-weeks", "2", "--step-weeks", "2", "--seeds", "0,1", "--n-boot", "30"]
    assert main([*args, "--results-dir", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "backtest.json").read_text())
    protocol = document["protocol"]
    assert protocol["validation_cutoff"] < document["windows"][0]["cutoff"]
    assert len(document["windows"]) == 3 and protocol["seeds"] == [0, 1]
    assert set(document["models"]) == {"popularity", "static_cf", "fashion_dna", "lstm", "oracle"}
    (budget,) = set(protocol["budget_per_model"].values())  # the same budget for every model
    for name in ("popularity", "static_cf", "fashion_dna", "lstm"):
        tuning = document["tuning"][name]
        assert len(tuning["trials"]) == budget
        assert tuning["chosen"] in [t["setting"] for t in tuning["trials"]]
    for slice_ in ("all", "cold", "warm"):
        stats = document["summary"]["lstm"][f"{slice_}/map@12"]
        assert stats["lo"] <= stats["mean"] <= stats["hi"]
        per_cutoff = document["per_cutoff"]["lstm"][f"{slice_}/auc"]
        assert len(per_cutoff) == 2 and len(per_cutoff[0]) == 3  # seeds x cutoffs
    assert "lstm" in document["oracle_share"] and document["provenance"]["profile"] == "smoke"


def test_bench_sasrec_softmax_study_pairs_the_two_objectives(tmp_path):
    from gpa_lib.bench.recsys import STUDY_MODELS, main

    assert "sasrec_catalogue" not in STUDY_MODELS["backtest"]  # a control, run by its own study
    args = ["--study", "sasrec-softmax", "--store", "smoke", "--customers", "300", "--weeks", "16"]
    args += ["--profile", "smoke", "--cutoffs", "2", "--test-weeks", "2", "--step-weeks", "2"]
    args += ["--seeds", "0", "--n-boot", "20", "--results-dir", str(tmp_path)]
    assert main(args) == 0
    document = json.loads((tmp_path / "sasrec_softmax.json").read_text())
    assert set(document["models"]) == {*STUDY_MODELS["sasrec-softmax"], "oracle"}
    gaps = {(r["a"], r["b"]) for r in document["comparisons"]}
    assert ("sasrec", "sasrec_catalogue") in gaps and ("sasrec", "popularity") in gaps
    assert document["chosen_params"]["sasrec_catalogue"]["softmax"] == "catalogue"


def test_analysis_helpers_on_a_small_backtest(store):
    from gpa_lib.recsys.eval.analysis import (
        heldout_r2,
        order_reversals,
        pca_2d,
        results_table,
        target_report,
    )

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    coordinates, share = pca_2d(x)
    assert coordinates.shape == (200, 2) and 0 < share.sum() <= 1
    assert heldout_r2(x, x @ rng.normal(size=(5, 3))) > 0.99
    assert abs(heldout_r2(x, rng.normal(size=(200, 3)))) < 0.2

    config = BacktestConfig(n_cutoffs=2, test_weeks=2, step_weeks=1, n_boot=50)
    factories = {
        "popularity": lambda fitted: Popularity(),
        "static_cf": lambda fitted: StaticCF(factors=2, epochs=10, batch_size=256, cold="lowest"),
    }
    result = run_backtest(store, factories, config)
    table = results_table(result, metrics=("auc",), slices=("all",))
    assert list(table.index) == ["popularity", "static_cf"]
    assert table.iloc[0, 0].count("[") == 1
    report = target_report(result)
    assert set(report) == {"static_cf>popularity auc", "static_cf>popularity map@12"}
    per_cutoff = result.per_cutoff("auc")
    reversals = order_reversals(result, pairs=(("popularity", "static_cf"),), metrics=("auc",))
    assert len(reversals) == int(
        (per_cutoff.loc["popularity"] <= per_cutoff.loc["static_cf"]).sum()
    )
