"""Every recommender passes one contract, on a toy store whose right answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gpa_lib.recsys.data.toy import toy_store
from gpa_lib.recsys.eval.metrics import per_customer_auc
from gpa_lib.recsys.models import (
    FashionDNA,
    History,
    ImplicitALS,
    ImplicitBPR,
    LightFMHybrid,
    LSTMCustomerModel,
    Popularity,
    StaticCF,
    implicit_available,
    lightfm_available,
    make_model,
    model_factories,
)
from gpa_lib.recsys.models.base import article_onehot
from gpa_lib.recsys.models.sequences import Orders, article_context_table

torch.set_num_threads(1)
CUTOFF = pd.Timestamp("2024-03-04")  # week 9 of 12


@pytest.fixture(scope="module")
def store():
    return toy_store(n_customers=200, n_weeks=12, seed=0)


def candidates(data, cutoff=CUTOFF):
    """Articles on sale after the cutoff that either sold before it (warm) or launched after it
    (cold, flagged True)."""
    tx = data.transactions
    ids = np.unique(tx.loc[tx["t_dat"] >= cutoff, "article"].to_numpy())
    cold = data.articles.loc[ids, "launch"].to_numpy() >= cutoff.to_datetime64()
    sold = np.isin(ids, tx.loc[tx["t_dat"] < cutoff, "article"].to_numpy())
    keep = cold | sold
    return ids[keep], cold[keep]


def taste_auc(model, data, articles):
    """Mean per-customer AUC of 'the article is of the customer's kind' under the model's scores."""
    customers = data.customers.index[data.customers["taste"] != "switch"].to_numpy()
    taste = data.customers.loc[customers, "taste"].to_numpy()
    kind = data.articles.loc[articles, "kind"].to_numpy()
    relevant = taste[:, None] == kind[None, :]
    scores = model.score(customers, articles)
    return float(np.nanmean(per_customer_auc(np.nan_to_num(scores, neginf=-1e30), relevant)))


class RecommenderContract:
    """The contract: subclasses set ``make()`` and what the model should get right. The toy store
    has two tastes, so the factor models get two factors (more overfit its thin history)."""

    personalised = True  # should separate the two tastes on known articles
    cold_start = False  # should also separate them on articles launched after the cutoff

    def make(self, **kwargs):
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, store):
        return cls().make().fit(store, until=CUTOFF)

    def test_fit_returns_self_and_records_the_cutoff(self, store):
        model = self.make()
        assert model.fit(store, until=CUTOFF) is model
        assert model.history_.until == CUTOFF
        assert "fitted until 2024-03-04" in repr(model)

    def test_score_shape_dtype_and_finite_on_known_articles(self, fitted, store):
        ids, cold = candidates(store)
        customers = store.customers.index.to_numpy()[:17]
        scores = fitted.score(customers, ids[~cold])
        assert scores.shape == (17, int((~cold).sum())) and scores.dtype == np.float32
        assert np.isfinite(scores).all()

    def test_same_random_state_same_scores(self, fitted, store):
        ids, _ = candidates(store)
        again = self.make().fit(store, until=CUTOFF)
        customers = store.customers.index.to_numpy()
        np.testing.assert_array_equal(fitted.score(customers, ids), again.score(customers, ids))

    def test_nothing_after_the_cutoff_reaches_the_model(self, fitted, store):
        """Fitting on the data cut at the cutoff and on all of it with until=cutoff: same scores."""
        ids, _ = candidates(store)
        truncated = self.make().fit(store.window(end=CUTOFF), until=CUTOFF)
        customers = store.customers.index.to_numpy()
        np.testing.assert_array_equal(truncated.score(customers, ids), fitted.score(customers, ids))

    def test_recommend_is_sorted_and_excludes_what_was_bought(self, fitted, store):
        customers = store.customers.index.to_numpy()[:30]
        ids, scores = fitted.recommend(customers, n=5)
        assert ids.shape == scores.shape == (30, 5)
        assert (np.diff(scores, axis=1) <= 0).all()
        on_sale = set(fitted.history_.on_sale())
        bought = store.transactions[store.transactions["t_dat"] < CUTOFF]
        for customer, row in zip(customers, ids, strict=True):
            seen = set(bought.loc[bought["customer"] == customer, "article"])
            assert not (set(row[row >= 0]) & seen)
            assert set(row[row >= 0]) <= on_sale
        with_seen, _ = fitted.recommend(customers, n=5, exclude_seen=False)
        assert with_seen.shape == (30, 5)

    def test_unknown_ids_and_unfitted_use_are_clear_errors(self, fitted, store):
        with pytest.raises(ValueError, match="articles: 1 id"):
            fitted.score([0], [10**9])
        with pytest.raises(ValueError, match="customers: 1 id"):
            fitted.score([-5], [0])
        with pytest.raises(RuntimeError, match="not fitted"):
            self.make().score([0], [0])
        with pytest.raises(ValueError, match="n=0"):
            fitted.recommend([0], n=0)

    def test_right_answer_on_known_articles(self, fitted, store):
        if not self.personalised:
            pytest.skip("not a personalised model")
        ids, cold = candidates(store)
        assert taste_auc(fitted, store, ids[~cold]) > 0.9

    def test_cold_start(self, fitted, store):
        ids, cold = candidates(store)
        assert cold.any()
        if self.cold_start:
            scores = fitted.score(store.customers.index.to_numpy(), ids[cold])
            assert np.isfinite(scores).all()
            assert taste_auc(fitted, store, ids[cold]) > 0.8
        elif type(fitted).cold_articles is False:
            with pytest.raises(ValueError, match="nobody bought before the cutoff"):
                self.make(cold="error").fit(store, until=CUTOFF).score([0], ids[cold])
            scores = fitted.score([0, 1], ids)  # fitted with cold="lowest"
            assert np.isneginf(scores[:, cold]).all() and np.isfinite(scores[:, ~cold]).all()


class TestPopularity(RecommenderContract):
    personalised = False

    def make(self, **kwargs):
        return Popularity(window_days=7, **kwargs)

    def test_right_answer_is_last_week_sales(self, fitted, store):
        tx = store.transactions
        last_week = tx[(tx["t_dat"] >= CUTOFF - pd.Timedelta(days=7)) & (tx["t_dat"] < CUTOFF)]
        counts = last_week["article"].value_counts()
        ids = counts.index.to_numpy()
        np.testing.assert_allclose(
            fitted.score([0], ids)[0], np.log1p(counts.to_numpy()), rtol=1e-6
        )
        assert (fitted.score([0, 1], ids)[0] == fitted.score([0, 1], ids)[1]).all()

    def test_window_days_is_checked(self):
        with pytest.raises(ValueError, match="window_days=0"):
            Popularity(window_days=0)


class TestStaticCF(RecommenderContract):
    def make(self, **kwargs):
        params = {
            "factors": 2,
            "epochs": 15,
            "batch_size": 256,
            "cold": "lowest",
            "random_state": 3,
            **kwargs,
        }
        return StaticCF(**params)

    def test_cold_policy_is_checked(self):
        with pytest.raises(ValueError, match="cold='zero'"):
            StaticCF(cold="zero")


class TestFashionDNA(RecommenderContract):
    cold_start = True

    def make(self, **kwargs):
        return FashionDNA(
            dna_dim=8,
            hidden=0,
            image_dim=4,
            n_train_customers=120,
            epochs=6,
            style_epochs=6,
            batch_size=256,
            random_state=1,
            **kwargs,
        )

    def test_customers_outside_the_training_set_get_styles(self, fitted, store):
        trained = set(fitted.train_customers_)
        outside = np.array([c for c in store.customers.index if c not in trained])
        assert len(outside) > 0
        ids, cold = candidates(store)
        kind = store.articles.loc[ids, "kind"].to_numpy()
        taste = store.customers.loc[outside, "taste"].to_numpy()
        auc = per_customer_auc(fitted.score(outside, ids), taste[:, None] == kind[None, :])
        assert np.nanmean(auc) > 0.9

    def test_fit_customers_refits_styles_without_touching_the_network(self, fitted, store):
        before = {k: v.clone() for k, v in fitted.network_.state_dict().items()}
        dna = fitted.dna_.clone()
        model = fitted.fit_customers(store, customers=[0, 1, 2])
        assert model is fitted
        for key, value in fitted.network_.state_dict().items():
            assert torch.equal(value, before[key])
        assert torch.equal(fitted.dna_, dna)
        assert np.abs(fitted.styles([0, 1, 2])).sum() > 0

    def test_similar_articles_are_at_small_angles_and_of_the_same_kind(self, fitted, store):
        ids, angles = fitted.similar([0, 4], n=3)
        assert ids.shape == angles.shape == (2, 3)
        assert (np.diff(angles, axis=1) >= 0).all() and (angles >= 0).all()
        assert 0 not in ids[0] and 4 not in ids[1]  # never itself
        kinds = store.articles["kind"]
        assert (kinds.loc[ids[0]] == kinds.loc[0]).mean() >= 2 / 3

    def test_encode_gives_dna_for_a_new_catalogue(self, fitted, store):
        dna = fitted.encode(store.articles.iloc[:5], images=store.images[:5])
        np.testing.assert_allclose(dna, fitted.dna(store.articles.index[:5]), rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError, match="pass images"):
            fitted.encode(store.articles.iloc[:5])

    def test_deeper_network_and_no_images_run(self, store):
        model = FashionDNA(
            dna_dim=4, hidden=16, image_dim=0, n_train_customers=None, epochs=1, style_epochs=1
        ).fit(store, until=CUTOFF)
        assert model.network_.images is None and model.dna([0]).shape == (1, 4)

    def test_bad_sizes_are_clear_errors(self):
        with pytest.raises(ValueError, match="dna_dim=0"):
            FashionDNA(dna_dim=0)
        with pytest.raises(ValueError, match="n_train_customers=0"):
            FashionDNA(n_train_customers=0)


class TestLSTMCustomerModel(RecommenderContract):
    cold_start = True

    def make(self, **kwargs):
        dna = {
            "dna_dim": 8,
            "hidden": 0,
            "image_dim": 0,
            "epochs": 6,
            "style_epochs": 2,
            "batch_size": 256,
        }
        return LSTMCustomerModel(
            dna_params=dna,
            hidden=16,
            max_orders=8,
            epochs=12,
            batch_customers=32,
            random_state=2,
            **kwargs,
        )

    def test_reuses_a_fitted_dna_with_the_same_cutoff(self, store):
        dna = FashionDNA(dna_dim=8, hidden=0, image_dim=0, epochs=2, style_epochs=1).fit(
            store, until=CUTOFF
        )
        model = LSTMCustomerModel(dna=dna, hidden=8, epochs=1).fit(store, until=CUTOFF)
        assert model.dna_model_ is dna
        other = LSTMCustomerModel(dna=dna, hidden=8, epochs=1).fit(
            store, until=CUTOFF - pd.Timedelta(days=7)
        )
        assert other.dna_model_ is not dna  # refitted at its own cutoff
        with pytest.raises(TypeError, match="dna must be a FashionDNA"):
            LSTMCustomerModel(dna=StaticCF())

    def test_follows_customers_whose_taste_changed(self):
        """Switchers bought A for 9 weeks and B for the last 2: the LSTM ranks B first, a static CF A."""
        data = toy_store(
            n_customers=300, n_weeks=12, switchers=60, switch_week=9, orders_per_week=0.8
        )
        cutoff = pd.Timestamp("2024-03-18")  # week 11
        ids, _ = candidates(data, cutoff)
        switchers = data.customers.index[data.customers["taste"] == "switch"].to_numpy()
        now_b = np.broadcast_to(
            data.articles.loc[ids, "kind"].to_numpy() == "B", (len(switchers), len(ids))
        )
        lstm = self.make().fit(data, until=cutoff)
        static = StaticCF(factors=2, epochs=15, batch_size=256, cold="lowest").fit(
            data, until=cutoff
        )
        warm = np.isfinite(static.score([0], ids)[0])
        lstm_auc = np.nanmean(per_customer_auc(lstm.score(switchers, ids)[:, warm], now_b[:, warm]))
        static_auc = np.nanmean(
            per_customer_auc(static.score(switchers, ids)[:, warm], now_b[:, warm])
        )
        assert lstm_auc > 0.7 and lstm_auc > static_auc + 0.2


@pytest.mark.skipif(not implicit_available()[0], reason=implicit_available()[1])
class TestImplicitALS(RecommenderContract):
    def make(self, **kwargs):
        params = {
            "factors": 2,
            "iterations": 15,
            "cold": "lowest",
            "regularization": 0.01,
            **kwargs,
        }
        return ImplicitALS(**params)


@pytest.mark.skipif(not implicit_available()[0], reason=implicit_available()[1])
class TestImplicitBPR(RecommenderContract):
    def make(self, **kwargs):
        params = {
            "factors": 2,
            "iterations": 100,
            "learning_rate": 0.05,
            "cold": "lowest",
            **kwargs,
        }
        return ImplicitBPR(**params)


@pytest.mark.skipif(not lightfm_available()[0], reason=lightfm_available()[1])
class TestLightFMHybrid(RecommenderContract):
    cold_start = True

    def make(self, **kwargs):
        return LightFMHybrid(no_components=8, epochs=10, **kwargs)


def test_anchor_availability_says_why_not(monkeypatch):
    from gpa_lib.recsys.models import anchors

    anchors._probe.cache_clear()
    ok, why = anchors._probe("surely_not_a_module_here", "install it with `pip install x`")
    assert not ok and "surely_not_a_module_here" in why and "pip install x" in why

    monkeypatch.setattr(
        ImplicitALS, "can_run", classmethod(lambda cls: (False, "no implicit here"))
    )
    with pytest.raises(RuntimeError, match="no implicit here"):
        ImplicitALS().fit(toy_store(n_customers=10, n_weeks=3))


def test_history_reads_only_the_past_and_hides_recent_returns(store):
    history = History.from_data(store, CUTOFF)
    assert history.day.max() < history.until_day
    recent = history.day > history.until_day - 14
    assert np.isnan(history.returned[recent]).all()
    assert np.isfinite(history.returned[~recent]).all()
    with pytest.raises(TypeError, match="SalesData"):
        History.from_data(store.transactions, CUTOFF)


def test_orders_and_article_context_are_built_from_the_past_only(store):
    history = History.from_data(store, CUTOFF)
    orders = Orders.from_history(history)
    assert orders.n_items.sum() == len(history.day)
    assert (
        len(orders.day)
        == store.transactions.loc[store.transactions["t_dat"] < CUTOFF, "order"].nunique()
    )
    table = article_context_table(history)  # (n_weeks + 1, n_articles, 3)
    last_week = history.article_counts(7)
    np.testing.assert_allclose(table[-1, :, 0].numpy(), np.log1p(last_week) / 5.0, rtol=1e-6)
    never = ~history.sold_articles()
    np.testing.assert_array_equal(table[-1, :, 1].numpy() == 1.0, never)


def test_article_onehot_has_a_slot_per_value_and_for_missing(store):
    onehot = article_onehot(store.articles)
    assert onehot.shape[0] == len(store.articles)
    np.testing.assert_array_equal(onehot.sum(axis=1), np.full(len(store.articles), 7.0))


def test_presets_build_every_model_and_put_the_lstm_after_the_dna():
    factories = model_factories(("lstm", "fashion_dna", "popularity"), profile="smoke")
    assert list(factories) == ["fashion_dna", "popularity", "lstm"]
    assert isinstance(make_model("static_cf", "smoke"), StaticCF)
    with pytest.raises(ValueError, match="not one of"):
        make_model("nope")
    with pytest.raises(ValueError, match="profile='huge'"):
        make_model("popularity", "huge")
