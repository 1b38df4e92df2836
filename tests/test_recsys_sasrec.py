"""SASRec passes the recommender contract (sequential anchor, full cross-entropy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from gpa_lib.recsys.data.toy import toy_store
from gpa_lib.recsys.models import presets
from gpa_lib.recsys.models.sasrec import CatalogueSASRec, SASRec
from gpa_lib.recsys.models.training import linear_cross_entropy
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


class TestSASRecCatalogueSoftmax(TestSASRec):
    """The original objective (softmax over the whole catalogue) passes the same contract."""

    def make(self, **kwargs):
        return super().make(softmax="catalogue", **kwargs)


def test_softmax_choice_changes_the_model(store):
    params = {"hidden": 8, "layers": 1, "max_len": 6, "epochs": 2, "dropout": 0.0, "cold": "lowest"}
    ids, cold = candidates(store)
    a, b = (SASRec(**params, softmax=s).fit(store, until=CUTOFF) for s in ("on_sale", "catalogue"))
    customers = store.customers.index[:20]
    assert not np.allclose(a.score(customers, ids[~cold]), b.score(customers, ids[~cold]))
    with pytest.raises(ValueError, match="softmax='all' is not one of"):
        SASRec(softmax="all")


class TestLinearCrossEntropy:
    """The chunked full softmax against its oracle, F.cross_entropy on the whole logit matrix."""

    def setup_method(self):
        g = torch.Generator().manual_seed(0)
        self.h = torch.randn(37, 8, dtype=torch.float64, generator=g)
        self.w = torch.randn(50, 8, dtype=torch.float64, generator=g)
        self.b = torch.randn(50, dtype=torch.float64, generator=g)
        self.t = torch.randint(0, 50, (37,), generator=g)

    def grads(self, loss_fn):
        leaves = [x.clone().requires_grad_(True) for x in (self.h, self.w, self.b)]
        loss = loss_fn(*leaves)
        (1.7 * loss).backward()
        return loss.detach(), [x.grad for x in leaves]

    @pytest.mark.parametrize("chunk", [1, 5, 37, 100])
    def test_value_and_gradients_match_the_oracle(self, chunk):
        got = self.grads(lambda h, w, b: linear_cross_entropy(h, w, b, self.t, chunk=chunk))
        want = self.grads(lambda h, w, b: F.cross_entropy(h @ w.T + b, self.t, reduction="sum"))
        torch.testing.assert_close(got[0], want[0], rtol=1e-12, atol=1e-12)
        for g, r in zip(got[1], want[1], strict=True):
            torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)

    def test_allowed_articles_match_the_masked_oracle(self):
        g = torch.Generator().manual_seed(1)
        allowed = torch.rand(3, 50, generator=g) < 0.4  # (G, A)
        group = torch.randint(0, 3, (37,), generator=g)
        allowed[group, self.t] = True  # every target among its group's articles
        mask = torch.where(allowed[group], 0.0, float("-inf")).double()

        def ours(h, w, b):
            return linear_cross_entropy(h, w, b, self.t, chunk=4, allowed=allowed, group=group)

        got = self.grads(ours)
        want = self.grads(
            lambda h, w, b: F.cross_entropy(h @ w.T + b + mask, self.t, reduction="sum")
        )
        torch.testing.assert_close(got[0], want[0], rtol=1e-12, atol=1e-12)
        for a, r in zip(got[1], want[1], strict=True):
            torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)

    def test_only_requested_gradients(self):
        w = self.w.clone().requires_grad_(True)
        linear_cross_entropy(self.h, w, self.b, self.t).backward()
        assert w.grad is not None and w.grad.shape == w.shape

    def test_bad_input_is_a_clear_error(self):
        with pytest.raises(ValueError, match=r"states \(37, 8\) and weight \(50, 7\)"):
            linear_cross_entropy(self.h, self.w[:, :7], self.b, self.t)
        with pytest.raises(ValueError, match="chunk=0"):
            linear_cross_entropy(self.h, self.w, self.b, self.t, chunk=0)
        with pytest.raises(ValueError, match="both allowed and group"):
            linear_cross_entropy(self.h, self.w, self.b, self.t, allowed=torch.ones(1, 50) > 0)
        allowed = torch.zeros(1, 50, dtype=torch.bool)
        group = torch.zeros(37, dtype=torch.int64)
        with pytest.raises(ValueError, match="is not allowed in its group 0"):
            linear_cross_entropy(self.h, self.w, self.b, self.t, allowed=allowed, group=group)


def test_catalogue_sasrec_is_the_original_objective_by_name():
    model = presets.make_model("sasrec_catalogue", "smoke")
    assert isinstance(model, CatalogueSASRec) and model.softmax == "catalogue"
    assert model.name == "sasrec_catalogue" and presets.make_model("sasrec").softmax == "on_sale"
