"""The dynamic customer model (Heinz, Bracher & Vollgraf, arXiv 1708.07347): an LSTM reads a
customer's orders in DNA space and predicts their current style.

Each order is one step: the mean Fashion DNA of its articles, the gap since the previous order, the
number of items and the share returned (only where the return would be known by the cutoff). After
``t`` orders the network's state, the time until the moment predicted and the calendar date give
a style vector and bias in the DNA space of a fitted :class:`FashionDNA`; the purchase score of an
article is ``style . DNA_a + w * b_a + b_c``. Training is teacher-forced over whole sequences: the
output after order ``t`` scores the articles of order ``t + 1`` against negatives on sale that week.
A start step lets the same network give a style to customers without any order.

``article_context=True`` (our addition, not in the paper) adds a learned linear term in what the
sales before the moment predicted say about each article: its sales in the previous week, whether it
never sold, and how many weeks it has been selling. Launch dates of future articles are not used.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.models.base import History, Recommender
from gpa_lib.recsys.models.fashion_dna import FashionDNA, dna_at_cutoff
from gpa_lib.recsys.models.sequences import (
    N_CONTEXT_FEATURES,
    N_ORDER_FEATURES,
    Orders,
    article_context_table,
    calendar_features,
    log_days,
)
from gpa_lib.recsys.models.training import OnSaleSampler, sampled_logistic_loss, step_budget

#: Query features: log days until the predicted moment, "no previous order" flag, calendar (2).
N_QUERY_FEATURES = 4


class StyleLSTM(nn.Module):
    """(B, N + 1, D + C + 1) steps and (B, N + 1, Q) queries -> (B, N + 1, D + 1) style and bias.

    Step 0 is the start step (only its flag set); output ``t`` has seen orders ``0..t-1``.
    """

    def __init__(self, dna_dim: int, hidden: int = 48) -> None:
        super().__init__()
        self.embed = nn.Linear(dna_dim + N_ORDER_FEATURES + 1, hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.head = nn.Sequential(
            nn.Linear(hidden + N_QUERY_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, dna_dim + 1)
        )

    def forward(self, steps: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        state, _ = self.lstm(torch.relu(self.embed(steps)))  # (B, N + 1, hidden)
        return self.head(torch.cat([state, queries], dim=-1))  # (B, N + 1, D + 1)


class LSTMCustomerModel(Recommender):
    """The LSTM dynamic customer model on top of Fashion DNA.

    ``dna``: a :class:`FashionDNA` (fitted with the same cutoff, else it is refitted) or ``None`` to
    fit one with ``dna_params``. ``hidden`` units; the last ``max_orders`` orders of each customer;
    ``n_train_customers`` customers with at least two orders train the network for ``epochs`` passes
    in batches of ``batch_customers`` (Adam, ``lr``), each target item against ``n_negatives``
    articles on sale in its week; ``steps`` (when given) replaces ``epochs`` by a budget in Adam
    steps: the passes go on until exactly ``steps`` batches are done, whatever the number of
    customers (``steps_`` records the steps taken either way). At the cutoff, styles aim at
    ``horizon_days / 2`` days ahead (the middle of a test window of ``horizon_days`` days).
    """

    name = "lstm"
    cold_articles = True

    def __init__(
        self,
        dna: FashionDNA | None = None,
        dna_params: dict[str, Any] | None = None,
        hidden: int = 48,
        max_orders: int = 20,
        n_train_customers: int | None = 30_000,
        epochs: int = 3,
        batch_customers: int = 256,
        n_negatives: int = 4,
        lr: float = 3e-3,
        horizon_days: int = 28,
        article_context: bool = True,
        steps: int | None = None,
        *,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(random_state=random_state, progress=progress)
        if dna is not None and not isinstance(dna, FashionDNA):
            raise TypeError(f"dna must be a FashionDNA or None, got {type(dna).__name__}")
        if hidden < 1 or max_orders < 1 or batch_customers < 1 or horizon_days < 1:
            raise ValueError(
                f"hidden={hidden}, max_orders={max_orders}, batch_customers={batch_customers}, "
                f"horizon_days={horizon_days} must all be >= 1"
            )
        self.dna, self.dna_params = dna, dict(dna_params or {})
        self.hidden, self.max_orders, self.n_train_customers = (
            int(hidden),
            int(max_orders),
            n_train_customers,
        )
        self.epochs, self.batch_customers, self.n_negatives = (
            int(epochs),
            int(batch_customers),
            int(n_negatives),
        )
        self.lr, self.horizon_days = float(lr), int(horizon_days)
        self.article_context = bool(article_context)
        if steps is not None and steps < 1:
            raise ValueError(f"steps={steps} must be >= 1 or None (then epochs={epochs} counts)")
        self.steps = None if steps is None else int(steps)

    # ------------------------------------------------------------------ fitting
    def _fit(self, history: History, data: SalesData) -> None:
        generator = torch.Generator().manual_seed(self.random_state)
        torch.manual_seed(self.random_state)
        dna_model = dna_at_cutoff(self.dna, self.dna_params, history, data, self)
        self.dna_model_ = dna_model
        dna, bias = dna_model.dna_, dna_model.article_bias_  # (n_articles, D), (n_articles,)
        self.orders_ = orders = Orders.from_history(history)
        self.step_features_ = orders.step_features(dna)  # (n_orders, D + C)
        self.network_ = StyleLSTM(dna.shape[1], self.hidden)
        self.bias_weight_ = nn.Parameter(torch.ones(()))
        n_context = N_CONTEXT_FEATURES if self.article_context else 0
        self.context_weight_ = nn.Parameter(torch.zeros(n_context))
        self.context_ = (
            article_context_table(history)
            if self.article_context
            else torch.zeros(1, history.n_articles, 0)
        )  # (n_weeks + 1, n_articles, 3)
        sampler = OnSaleSampler(history.article, history.week, history.n_articles)
        n_orders = np.diff(orders.first_order)
        eligible = np.flatnonzero(n_orders >= 2)
        if self.n_train_customers is not None and self.n_train_customers < len(eligible):
            rng = np.random.default_rng(self.random_state)
            eligible = np.sort(rng.choice(eligible, self.n_train_customers, replace=False))
        self.losses_ = self._train(eligible, history, dna, bias, sampler, generator)
        tic = time.perf_counter()
        with torch.no_grad():
            self.style_ = self._styles_at_cutoff(np.arange(history.n_customers), history)
        self.style_seconds_ = (
            time.perf_counter() - tic
        )  # every customer's history read at the cutoff

    def _sequences(self, customers: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Steps (B, N + 1, D + C + 1) with the start step first, order indices (B, N), lengths (B,)."""
        index, lengths = self.orders_.windows(customers, self.max_orders)  # (B, N), (B,)
        features = self.step_features_[index.clamp(min=0)]  # (B, N, D + C)
        features = features * (index >= 0)[..., None]
        b, n, width = features.shape
        steps = torch.zeros(b, n + 1, width + 1)
        steps[:, 0, width] = 1.0  # the start flag
        steps[:, 1:, :width] = features
        return steps, index, lengths

    def _queries(
        self, day: torch.Tensor, previous_day: torch.Tensor, has_previous: torch.Tensor
    ) -> torch.Tensor:
        """(..., Q) from the predicted day, the day of the last order seen and whether there is one."""
        gap = torch.where(has_previous, day - previous_day, torch.zeros_like(day))
        return torch.cat(
            [log_days(gap)[..., None], (~has_previous).float()[..., None], calendar_features(day)],
            dim=-1,
        )

    def _train(self, customers, history, dna, bias, sampler, generator) -> list[float]:
        orders, network = self.orders_, self.network_
        parameters = [*network.parameters(), self.bias_weight_, self.context_weight_]
        optimizer = torch.optim.Adam(parameters, lr=self.lr)
        order_day = torch.from_numpy(orders.day)
        order_week = torch.from_numpy((history.until_day - 1 - orders.day) // 7)
        item_start = torch.from_numpy(orders.item_start)
        n_items = torch.from_numpy(orders.n_items)
        item_article = torch.from_numpy(orders.item_article)
        n_batches = (len(customers) + self.batch_customers - 1) // self.batch_customers
        epochs, budget = step_budget(n_batches, self.epochs, self.steps)
        self.steps_ = 0
        bar = tqdm(
            total=budget,
            desc="LSTM customer model",
            unit="batch",
            disable=not self.progress,
            leave=False,
        )
        losses = []
        network.train()
        for _ in range(epochs):
            perm = torch.randperm(len(customers), generator=generator).numpy()
            total, count = 0.0, 0
            for batch in np.array_split(customers[perm], n_batches):
                if self.steps_ >= budget:
                    break
                steps, index, lengths = self._sequences(batch)  # index (B, N)
                valid = index >= 0  # (B, N): output t targets order index[:, t]
                target = index.clamp(min=0)
                previous = torch.cat([target[:, :1], target[:, :-1]], dim=1)  # (B, N)
                has_previous = torch.zeros_like(valid)
                has_previous[:, 1:] = True
                queries = torch.zeros(*steps.shape[:2], N_QUERY_FEATURES)
                queries[:, :-1] = self._queries(
                    order_day[target], order_day[previous], has_previous
                )
                out = network(steps, queries)  # (B, N + 1, D + 1)
                b_idx, t_idx = torch.nonzero(valid, as_tuple=True)  # the target orders
                target_orders = index[b_idx, t_idx]  # (M,)
                counts = n_items[target_orders]
                owner = torch.repeat_interleave(torch.arange(len(target_orders)), counts)  # (I,)
                offset = torch.arange(len(owner)) - torch.repeat_interleave(
                    torch.cumsum(counts, 0) - counts, counts
                )
                positives = item_article[item_start[target_orders][owner] + offset]  # (I,)
                item_week = order_week[target_orders][owner]  # (I,)
                negatives = sampler.sample(item_week, self.n_negatives, generator)
                articles = torch.cat([positives[:, None], negatives], dim=1)  # (I, 1 + k)
                style = out[b_idx, t_idx][owner]  # (I, D + 1)
                logits = torch.einsum("id,ikd->ik", style[:, :-1], dna[articles])
                logits = logits + self.bias_weight_ * bias[articles] + style[:, -1:]
                if self.article_context:
                    context = self.context_[item_week[:, None], articles]  # (I, 1 + k, 3)
                    logits = logits + context @ self.context_weight_
                loss = sampled_logistic_loss(logits)
                optimizer.zero_grad(set_to_none=True)
                (loss / max(len(owner), 1)).backward()
                optimizer.step()
                total, count = total + float(loss.detach()), count + len(owner)
                self.steps_ += 1
                bar.update(1)
            losses.append(total / max(count, 1))
        bar.close()
        network.eval()
        return losses

    def _styles_at_cutoff(
        self, customers: np.ndarray, history: History, block: int = 8192
    ) -> torch.Tensor:
        """(len(customers), D + 1) style and bias aimed at the middle of the next ``horizon_days``."""
        day = history.until_day + self.horizon_days // 2
        out = []
        for start in range(0, len(customers), block):
            rows = customers[start : start + block]
            steps, index, lengths = self._sequences(rows)
            last = index[torch.arange(len(rows)), (lengths - 1).clamp(min=0)]
            has_previous = lengths > 0
            last_day = torch.from_numpy(self.orders_.day)[last.clamp(min=0)]
            query = self._queries(torch.full((len(rows),), day), last_day, has_previous)  # (B, Q)
            queries = torch.zeros(*steps.shape[:2], N_QUERY_FEATURES)
            queries[torch.arange(len(rows)), lengths] = query
            styles = self.network_(steps, queries)  # (B, N + 1, D + 1)
            out.append(styles[torch.arange(len(rows)), lengths])
        return torch.cat(out) if out else torch.zeros(0, self.dna_model_.dna_.shape[1] + 1)

    # ------------------------------------------------------------------ scoring
    def _score(self, customer_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        c, a = torch.from_numpy(customer_rows), torch.from_numpy(article_rows)
        style = self.style_[c]  # (n_customers, D + 1)
        with torch.no_grad():
            article_term = self.bias_weight_ * self.dna_model_.article_bias_[a]  # (n_articles,)
            if self.article_context:  # what the sales up to the cutoff say about each article
                article_term = article_term + self.context_[-1, a] @ self.context_weight_
            scores = style[:, :-1] @ self.dna_model_.dna_[a].T + article_term + style[:, -1:]
        return scores.numpy()

    def styles(self, customers: Any) -> np.ndarray:
        """Float32 (n_customers, D) styles at the cutoff, in the DNA space of ``dna_model_``."""
        from gpa_lib.recsys.models.base import rows_of

        rows = rows_of(self._fitted().customer_ids, customers, "customers")
        return self.style_[torch.from_numpy(rows), :-1].numpy()
