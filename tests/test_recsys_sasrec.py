"""SASRec passes the recommender contract (sequential anchor, full cross-entropy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpa_lib.recsys.data.toy import toy_store
from gpa_lib.recsys.models.sasrec import SASRec
from tests.test_recsys_models import CUTOFF, RecommenderContract, candidates

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def store():
    return toy_store(n_customers=200, n_weeks=12, seed=0)


class TestSASRec(RecommenderContract):
    def make(self, **kwargs):
        params = {
            "hidden": 16,
            "layers": 1,
            "max_len": 10,
            "epochs": 30,
            "batch_customers": 16,
            "lr": 1e-2,
            "dropout": 0.0,
            "cold": "lowest",
            "random_state": 5,
            **kwargs,
        }
        return SASRec(**params)

    def test_customers_without_purchases_get_the_start_state(self, fitted, store):
        bought = set(store.transactions.loc[store.transactions["t_dat"] < CUTOFF, "customer"])
        never = [c for c in store.customers.index if c not in bought]
        ids, cold = candidates(store)
        if never:
            scores = fitted.score(never[:2], ids[~cold])
            np.testing.assert_allclose(scores[0], scores[-1], rtol=1e-5)

    def test_bad_sizes_are_clear_errors(self):
        with pytest.raises(ValueError, match="hidden=10 must be a multiple of heads=3"):
            SASRec(hidden=10, heads=3)
        with pytest.raises(ValueError, match="max_len=0"):
            SASRec(max_len=0)
