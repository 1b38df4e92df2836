"""The papers' static collaborative filtering: logistic matrix factorisation of the purchase matrix."""

from __future__ import annotations

import numpy as np
import torch

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.models.base import ColdPolicyMixin, History, Recommender
from gpa_lib.recsys.models.training import (
    OnSaleSampler,
    RowAdagradTable,
    train_sampled_logistic,
)


class StaticCF(ColdPolicyMixin, Recommender):
    """``P(customer c buys article a) = sigmoid(u_c . v_a + b_a + b_c)``, one vector per customer and
    per article, fitted on every distinct purchase before the cutoff against ``n_negatives`` articles
    on sale in the same week (row-wise Adagrad, L2 penalty ``l2`` on the vectors used in a batch).

    Cannot score an article nobody bought before the cutoff: ``cold="error"`` (default) raises a
    ``ValueError`` naming them, ``cold="lowest"`` gives them ``-inf`` (ranked last, tied). A customer
    without purchases before the cutoff has ``u_c = 0``: the article biases rank for them.
    """

    name = "static_cf"

    def __init__(
        self,
        factors: int = 32,
        epochs: int = 4,
        n_negatives: int = 4,
        batch_size: int = 16384,
        lr: float = 0.3,
        l2: float = 1e-4,
        cold: str = "error",
        *,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(random_state=random_state, progress=progress)
        if factors < 1:
            raise ValueError(f"factors={factors} must be at least 1")
        self.factors, self.epochs, self.n_negatives = int(factors), int(epochs), int(n_negatives)
        self.batch_size, self.lr, self.l2 = int(batch_size), float(lr), float(l2)
        self.cold = self._check_cold(cold)

    def _fit(self, history: History, data: SalesData) -> None:
        generator = torch.Generator().manual_seed(self.random_state)
        n_c, n_a, f = history.n_customers, history.n_articles, self.factors
        # one table per side: [vector | bias]
        customer_table = RowAdagradTable(
            torch.randn(n_c, f + 1, generator=generator) * 0.01, self.lr
        )
        article_table = RowAdagradTable(
            torch.randn(n_a, f + 1, generator=generator) * 0.01, self.lr
        )
        customer, article, week = history.pairs()
        sampler = OnSaleSampler(history.article, history.week, n_a)

        def logits_fn(c: torch.Tensor, a: torch.Tensor):
            u = customer_table(c)  # (B, f + 1)
            v = article_table(a)  # (B, 1 + k, f + 1)
            logits = torch.einsum("bf,bkf->bk", u[:, :f], v[..., :f]) + v[..., f] + u[:, f, None]
            penalty = self.l2 * ((u[:, :f] ** 2).sum() + (v[..., :f] ** 2).sum())
            return logits, penalty

        self.losses_ = train_sampled_logistic(
            logits_fn,
            [],
            [customer_table, article_table],
            customer,
            article,
            week,
            sampler,
            epochs=self.epochs,
            batch_size=self.batch_size,
            n_negatives=self.n_negatives,
            lr=self.lr,
            generator=generator,
            progress=self.progress,
            desc="StaticCF",
        )
        self.steps_ = len(self.losses_) * -(-len(customer) // self.batch_size)
        self.known_ = history.sold_articles()
        active = torch.from_numpy(np.bincount(history.customer, minlength=n_c) > 0)
        self.customer_vec_ = customer_table.weight[:, :f] * active[:, None]  # (n_customers, f)
        self.customer_bias_ = customer_table.weight[:, f] * active
        self.article_vec_ = article_table.weight[:, :f]  # (n_articles, f)
        self.article_bias_ = article_table.weight[:, f]

    def _score(self, customer_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        c, a = torch.from_numpy(customer_rows), torch.from_numpy(article_rows)
        scores = self.customer_vec_[c] @ self.article_vec_[a].T  # (n_customers, n_articles)
        scores += self.article_bias_[a] + self.customer_bias_[c, None]
        return self._apply_cold(scores.numpy(), article_rows, self._fitted().article_ids)
