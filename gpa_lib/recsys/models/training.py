"""Shared training machinery: negatives sampled among the articles on sale at the time of a purchase,
and one loop for every logistic purchase model (``sigmoid(score)`` per customer x article pair).

Negatives for a purchase in week ``w`` (weeks before the cutoff) are drawn uniformly from the distinct
articles that sold in that same week: the articles the customer could have bought instead. Sampling
from the whole catalogue would teach the model which articles were on sale, not which were chosen.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm


class OnSaleSampler:
    """Uniform negatives among the articles sold in a given week.

    ``article`` and ``week`` (int arrays, one entry per sale) define what was on sale when.
    """

    def __init__(self, article: np.ndarray, week: np.ndarray, n_articles: int) -> None:
        if len(article) == 0:
            raise ValueError("OnSaleSampler needs at least one sale")
        key = np.unique(np.asarray(week, np.int64) * n_articles + np.asarray(article, np.int64))
        weeks, self.articles = key // n_articles, torch.from_numpy(key % n_articles)
        n_weeks = int(weeks.max()) + 1
        counts = np.bincount(weeks, minlength=n_weeks)
        self.start = torch.from_numpy(np.r_[0, np.cumsum(counts)[:-1]])  # (n_weeks,)
        self.count = torch.from_numpy(counts)  # (n_weeks,)

    def sample(self, week: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        """(B, k) int64 article rows on sale in ``week`` (B,)."""
        u = torch.rand(len(week), k, generator=generator, dtype=torch.float64)
        offset = (u * self.count[week, None]).long()  # (B, k)
        return self.articles[self.start[week, None] + offset]


class RowAdagradTable:
    """An embedding table trained by row-wise Adagrad on just the rows a batch touches.

    ``table(idx)`` returns the rows as a leaf tensor that collects gradients; :meth:`step` applies
    ``w[i] -= lr * g_i / sqrt(sum of mean squared gradients of row i)``. On a CPU this is several
    times faster than dense Adam over the whole table or torch's sparse optimisers.
    """

    def __init__(self, weight: torch.Tensor, lr: float) -> None:
        self.weight = weight  # (n_rows, D)
        self.lr = float(lr)
        self.accumulator = torch.zeros(len(weight), dtype=weight.dtype)  # (n_rows,)
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        leaf = self.weight[idx].requires_grad_(True)  # (*idx.shape, D)
        self._pending.append((idx, leaf))
        return leaf

    def step(self) -> None:
        for idx, leaf in self._pending:
            if leaf.grad is None:
                continue
            grad = leaf.grad.reshape(-1, self.weight.shape[1])  # (N, D)
            idx = idx.reshape(-1)
            self.accumulator.index_add_(0, idx, (grad * grad).mean(1))
            scale = -self.lr / torch.sqrt(self.accumulator[idx] + 1e-10)  # (N,)
            self.weight.index_add_(0, idx, grad * scale[:, None])
        self._pending.clear()


def sampled_logistic_loss(logits: torch.Tensor) -> torch.Tensor:
    """Summed logistic loss of logits (B, 1 + k): column 0 a purchase, the rest sampled negatives;
    the purchase and its ``k`` negatives weigh the same in total."""
    k = logits.shape[1] - 1
    target = torch.zeros_like(logits)
    target[:, 0] = 1.0
    weight = torch.full_like(logits, 0.5 / k)
    weight[:, 0] = 0.5
    return torch.nn.functional.binary_cross_entropy_with_logits(
        logits, target, weight=weight, reduction="sum"
    )


def train_sampled_logistic(
    logits_fn: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    parameters: list[torch.nn.Parameter],
    tables: list[RowAdagradTable],
    customer: np.ndarray,
    article: np.ndarray,
    week: np.ndarray,
    sampler: OnSaleSampler,
    *,
    epochs: int,
    batch_size: int,
    n_negatives: int,
    lr: float,
    generator: torch.Generator,
    progress: bool = False,
    desc: str = "training",
    by_week: bool = False,
) -> list[float]:
    """Minimise the logistic loss of each purchase against ``n_negatives`` sampled non-purchases.

    ``parameters`` (networks) are updated by Adam with learning rate ``lr``; ``tables`` (embedding
    tables read through :class:`RowAdagradTable`) by their own row-wise Adagrad.
    ``logits_fn(c, a)`` gets customer rows ``c`` (B,) and article rows ``a`` (B, 1 + n_negatives),
    the purchase in column 0, and returns ``(logits (B, 1 + n_negatives), penalty)`` with ``penalty``
    a scalar regulariser added to the loss. ``by_week`` batches purchases of neighbouring weeks
    together (in a random order of batches), so that an article-side network evaluated once per
    batch only sees the few hundred articles on sale then. Returns the mean loss of each epoch.
    """
    if epochs < 0 or batch_size < 1 or n_negatives < 1:
        raise ValueError(
            f"epochs={epochs}, batch_size={batch_size}, n_negatives={n_negatives} must be "
            ">= 0, >= 1, >= 1"
        )
    customer_t = torch.from_numpy(np.asarray(customer, np.int64))
    article_t = torch.from_numpy(np.asarray(article, np.int64))
    week_t = torch.from_numpy(np.asarray(week, np.int64))
    n = len(customer_t)
    if n == 0 or epochs == 0:
        return []
    optimizer = torch.optim.Adam(parameters, lr=lr) if parameters else None
    if by_week:
        by_time = torch.from_numpy(np.argsort(np.asarray(week), kind="stable"))
    n_batches = (n + batch_size - 1) // batch_size
    losses = []
    bar = tqdm(total=epochs * n_batches, desc=desc, unit="batch", disable=not progress, leave=False)
    for _ in range(epochs):
        if by_week:
            shift = int(torch.randint(0, batch_size, (1,), generator=generator))
            batches = list(torch.roll(by_time, shift).split(batch_size))
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        else:
            batches = torch.randperm(n, generator=generator).split(batch_size)
        total = 0.0
        for rows in batches:
            c = customer_t[rows]  # (B,)
            negatives = sampler.sample(week_t[rows], n_negatives, generator)  # (B, k)
            a = torch.cat([article_t[rows, None], negatives], 1)  # (B, 1 + k)
            logits, penalty = logits_fn(c, a)  # (B, 1 + k)
            loss = sampled_logistic_loss(logits)
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
            # the sum over the batch (not the mean) keeps per-row gradients independent of batch size
            (loss + penalty).backward()
            if optimizer is not None:
                optimizer.step()
            for table in tables:
                table.step()
            total += float(loss.detach())
            bar.update(1)
        losses.append(total / n)
    bar.close()
    return losses
