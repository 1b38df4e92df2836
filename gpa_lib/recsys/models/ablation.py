"""The controls of the LSTM ablation (chapter 5): what is left of the LSTM's lead without its parts.

- :class:`PaperLSTM`: the dynamic customer model as the paper has it, without our article-context
  term (``article_context=False``);
- :class:`ContextPopularity`: no customer at all: one score per article from the same article
  features the LSTM reads (DNA, DNA bias, and the three article-context features), fitted with the
  same sampled logistic loss against articles on sale that week;
- :class:`StaticCFDNAFallback`: static CF whose articles nobody bought before the cutoff get factors
  predicted from their Fashion DNA (a ridge map fitted on the sold articles), the same cold-start
  information the LSTM has, instead of ``-inf``.

Each reads a :class:`~gpa_lib.recsys.models.fashion_dna.FashionDNA` fitted at the same cutoff
(``dna``), or fits one with ``dna_params``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.models.base import History, Recommender
from gpa_lib.recsys.models.fashion_dna import FashionDNA, dna_at_cutoff
from gpa_lib.recsys.models.lstm import LSTMCustomerModel
from gpa_lib.recsys.models.sequences import N_CONTEXT_FEATURES, article_context_table
from gpa_lib.recsys.models.static_cf import StaticCF
from gpa_lib.recsys.models.training import OnSaleSampler, sampled_logistic_loss


class PaperLSTM(LSTMCustomerModel):
    """:class:`LSTMCustomerModel` with ``article_context=False``: the model of arXiv 1708.07347."""

    name = "lstm_paper"

    def __init__(self, *args: Any, article_context: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, article_context=article_context, **kwargs)


class ContextPopularity(Recommender):
    """Non-personal: ``score(a) = g . DNA_a + w_b * b_a + w_c . context_a``, the same for everyone.

    ``g`` (D), ``w_b`` and ``w_c`` (3) are what the LSTM's score would be with one style for every
    customer. Fitted by full-batch L-BFGS (``max_iter`` iterations per epoch, fresh negatives each
    of ``epochs`` epochs) on at most ``max_items`` items sold before the cutoff (a seeded sample),
    each against ``n_negatives`` articles on sale in its week; ``context_a`` is what the sales before that week say (see
    :func:`~gpa_lib.recsys.models.sequences.article_context_table`).
    """

    name = "context_popularity"
    cold_articles = True

    def __init__(
        self,
        dna: FashionDNA | None = None,
        dna_params: dict[str, Any] | None = None,
        epochs: int = 2,
        n_negatives: int = 4,
        max_iter: int = 50,
        max_items: int | None = 200_000,
        *,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(random_state=random_state, progress=progress)
        if dna is not None and not isinstance(dna, FashionDNA):
            raise TypeError(f"dna must be a FashionDNA or None, got {type(dna).__name__}")
        if epochs < 0 or n_negatives < 1 or max_iter < 1:
            raise ValueError(
                f"epochs={epochs}, n_negatives={n_negatives}, max_iter={max_iter} must be "
                ">= 0, >= 1, >= 1"
            )
        self.dna, self.dna_params = dna, dict(dna_params or {})
        self.epochs, self.n_negatives, self.max_iter = int(epochs), int(n_negatives), int(max_iter)
        self.max_items = max_items

    def _fit(self, history: History, data: SalesData) -> None:
        generator = torch.Generator().manual_seed(self.random_state)
        self.dna_model_ = dna_at_cutoff(self.dna, self.dna_params, history, data, self)
        dna, bias = (
            self.dna_model_.dna_,
            self.dna_model_.article_bias_,
        )  # (n_articles, D), (n_articles,)
        self.context_ = article_context_table(history)  # (n_weeks + 1, n_articles, 3)
        self.global_style_ = torch.nn.Parameter(torch.zeros(dna.shape[1]))
        self.bias_weight_ = torch.nn.Parameter(torch.ones(()))
        self.context_weight_ = torch.nn.Parameter(torch.zeros(N_CONTEXT_FEATURES))
        items = np.arange(len(history.article))
        if self.max_items is not None and self.max_items < len(items):
            rng = np.random.default_rng(self.random_state)
            items = np.sort(rng.choice(items, self.max_items, replace=False))
        article = torch.from_numpy(history.article[items])
        week = torch.from_numpy(history.week[items])
        sampler = OnSaleSampler(history.article, history.week, history.n_articles)
        parameters = [self.global_style_, self.bias_weight_, self.context_weight_]
        # D + 4 parameters and a convex loss: full-batch L-BFGS, fresh negatives each epoch
        optimizer = torch.optim.LBFGS(
            parameters, lr=1.0, max_iter=self.max_iter, line_search_fn="strong_wolfe"
        )
        self.losses_ = []
        for _ in range(self.epochs):
            negatives = sampler.sample(week, self.n_negatives, generator)  # (N, k)
            articles = torch.cat([article[:, None], negatives], 1)  # (N, 1 + k)

            def closure(articles=articles):
                optimizer.zero_grad(set_to_none=True)
                logits = self._article_term(articles, week[:, None], dna, bias)  # (N, 1 + k)
                loss = sampled_logistic_loss(logits) / len(articles)
                loss.backward()
                return loss

            self.losses_.append(float(optimizer.step(closure).detach()))

    def _article_term(self, articles, week, dna, bias) -> torch.Tensor:
        context = self.context_[week, articles]  # (..., 3)
        return (
            dna[articles] @ self.global_style_
            + self.bias_weight_ * bias[articles]
            + (context @ self.context_weight_)
        )

    def _score(self, customer_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        a = torch.from_numpy(article_rows)
        with torch.no_grad():  # row -1 of the context table: what is known at the cutoff
            week = torch.full_like(a, self.context_.shape[0] - 1)
            row = self._article_term(
                a, week, self.dna_model_.dna_, self.dna_model_.article_bias_
            ).numpy()  # (n_articles,)
        return np.broadcast_to(row.astype(np.float32), (len(customer_rows), len(article_rows)))


class StaticCFDNAFallback(StaticCF):
    """:class:`StaticCF` with a cold start from Fashion DNA instead of ``-inf``.

    After the factorisation, a ridge regression (penalty ``ridge``) from ``[DNA_a, b_a, 1]`` to the
    article's ``[v_a, b_a]`` is fitted on the articles sold before the cutoff; articles nobody
    bought get its prediction. Customers without purchases keep ``u_c = 0`` (article biases rank).
    """

    name = "static_cf_dna"
    cold_articles = True

    def __init__(
        self,
        dna: FashionDNA | None = None,
        dna_params: dict[str, Any] | None = None,
        ridge: float = 1.0,
        **kwargs: Any,
    ) -> None:
        kwargs["cold"] = "lowest"  # never used: every article gets factors
        super().__init__(**kwargs)
        if dna is not None and not isinstance(dna, FashionDNA):
            raise TypeError(f"dna must be a FashionDNA or None, got {type(dna).__name__}")
        if ridge < 0:
            raise ValueError(f"ridge={ridge} must be >= 0")
        self.dna, self.dna_params, self.ridge = dna, dict(dna_params or {}), float(ridge)

    def _fit(self, history: History, data: SalesData) -> None:
        super()._fit(history, data)
        self.dna_model_ = dna_at_cutoff(self.dna, self.dna_params, history, data, self)
        dna = self.dna_model_.dna_.double()  # (n_articles, D)
        features = torch.cat(
            [dna, self.dna_model_.article_bias_.double()[:, None], torch.ones(len(dna), 1)], 1
        )  # (n_articles, D + 2)
        target = torch.cat([self.article_vec_, self.article_bias_[:, None]], 1).double()
        known = torch.from_numpy(self.known_)
        x, y = features[known], target[known]
        gram = x.T @ x + self.ridge * torch.eye(x.shape[1], dtype=x.dtype)
        weights = torch.linalg.solve(gram, x.T @ y)  # (D + 2, f + 1)
        mapped = (features[~known] @ weights).float()
        self.article_vec_ = self.article_vec_.clone()
        self.article_bias_ = self.article_bias_.clone()
        self.article_vec_[~known] = mapped[:, :-1]
        self.article_bias_[~known] = mapped[:, -1]

    def _score(self, customer_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        c, a = torch.from_numpy(customer_rows), torch.from_numpy(article_rows)
        scores = self.customer_vec_[c] @ self.article_vec_[a].T  # (n_customers, n_articles)
        return (scores + self.article_bias_[a] + self.customer_bias_[c, None]).numpy()
