"""The controls of the LSTM ablation pass the recommender contract; the ablation switch matters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpa_lib.recsys.data.toy import toy_store
from gpa_lib.recsys.models import LSTMCustomerModel
from gpa_lib.recsys.models.ablation import ContextPopularity, PaperLSTM, StaticCFDNAFallback
from gpa_lib.recsys.models.fashion_dna import FashionDNA
from gpa_lib.recsys.models.presets import model_factories
from tests.test_recsys_models import CUTOFF, RecommenderContract, candidates

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def store():
    return toy_store(n_customers=200, n_weeks=12, seed=0)


DNA = {"dna_dim": 8, "hidden": 0, "image_dim": 0, "epochs": 6, "style_epochs": 2, "batch_size": 256}


class TestContextPopularity(RecommenderContract):
    personalised = False

    def make(self, **kwargs):
        return ContextPopularity(dna_params=DNA, epochs=2, max_iter=20, random_state=4, **kwargs)

    def test_same_score_for_every_customer(self, fitted, store):
        ids, _ = candidates(store)
        scores = fitted.score(store.customers.index.to_numpy()[:5], ids)
        assert np.isfinite(scores).all() and (scores == scores[:1]).all()

    def test_bad_arguments_are_clear_errors(self):
        with pytest.raises(ValueError, match="n_negatives=0"):
            ContextPopularity(n_negatives=0)
        with pytest.raises(TypeError, match="dna must be a FashionDNA"):
            ContextPopularity(dna="dna")


class TestStaticCFDNAFallback(RecommenderContract):
    def make(self, **kwargs):
        params = {"factors": 2, "epochs": 15, "batch_size": 256, "random_state": 3, **kwargs}
        params.pop("cold", None)
        return StaticCFDNAFallback(dna_params=DNA, **params)

    def test_new_articles_get_finite_scores_from_their_dna(self, fitted, store):
        ids, cold = candidates(store)
        scores = fitted.score(store.customers.index.to_numpy(), ids[cold])
        assert np.isfinite(scores).all() and scores.std() > 0
        with pytest.raises(ValueError, match="ridge=-1"):
            StaticCFDNAFallback(ridge=-1)


def test_the_ablation_switch_changes_predictions(store):
    """Same seed, same DNA: the article-context term alone moves the scores (and PaperLSTM is the
    model without it)."""
    dna = FashionDNA(**DNA).fit(store, until=CUTOFF)
    common = {"dna": dna, "hidden": 8, "max_orders": 8, "epochs": 3, "batch_customers": 32}
    ours = LSTMCustomerModel(**common, random_state=2).fit(store, until=CUTOFF)
    paper = PaperLSTM(**common, random_state=2).fit(store, until=CUTOFF)
    off = LSTMCustomerModel(**common, article_context=False, random_state=2).fit(
        store, until=CUTOFF
    )
    ids, _ = candidates(store)
    customers = store.customers.index.to_numpy()
    assert ours.article_context and not paper.article_context
    np.testing.assert_array_equal(paper.score(customers, ids), off.score(customers, ids))
    difference = np.abs(ours.score(customers, ids) - paper.score(customers, ids))
    assert difference.max() > 1e-3
    assert ours.context_weight_.detach().abs().sum() > 0 and paper.context_weight_.numel() == 0


def test_dna_readers_come_after_the_dna_and_reuse_it(store):
    names = ("context_popularity", "static_cf_dna", "fashion_dna", "popularity", "lstm_paper")
    factories = model_factories(names, profile="smoke")
    assert list(factories) == [
        "fashion_dna",
        "popularity",
        "context_popularity",
        "static_cf_dna",
        "lstm_paper",
    ]
    dna = factories["fashion_dna"]({}).fit(store, until=CUTOFF)
    reader = factories["context_popularity"]({"fashion_dna": dna}).fit(store, until=CUTOFF)
    assert reader.dna_model_ is dna
