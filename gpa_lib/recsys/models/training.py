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


def step_budget(n_batches: int, epochs: int, steps: int | None) -> tuple[int, int]:
    """``(passes, optimiser steps)`` of a training run with ``n_batches`` batches a pass: ``epochs``
    whole passes, or, when ``steps`` is given, as many passes as ``steps`` needs, the last cut short
    (a budget that does not depend on the size of the data)."""
    if steps is None:
        return epochs, epochs * n_batches
    passes = -(-steps // n_batches) if n_batches else 0
    return passes, min(steps, passes * n_batches)


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


class _LinearCrossEntropy(torch.autograd.Function):
    """Sum over rows of ``cross_entropy(states @ weight.T + bias, target)``, computed ``chunk`` rows
    at a time; the gradients are formed in the forward pass, chunk by chunk, so the (M, A) logits
    never exist whole (the full product is what makes full-softmax training slow on a CPU). With
    ``allowed``, the rows of each group are scored against that group's articles only: the same
    loss as logits of -inf elsewhere, at the cost of the allowed articles."""

    @staticmethod
    def forward(ctx, states, weight, bias, target, chunk, allowed, group):
        # (M, C), (A, C), (A,), (M,); allowed (G, A) bool or None, group (M,) rows of allowed
        need = ctx.needs_input_grad[:3]
        d_states = torch.empty_like(states) if need[0] else None
        d_weight = torch.zeros_like(weight) if need[1] else None
        d_bias = torch.zeros_like(bias) if need[2] else None
        total = states.new_zeros(())
        if allowed is None:
            blocks = [(torch.arange(len(target)), None)]
        else:  # rows grouped by group, each block scored against its group's articles
            order = torch.argsort(group, stable=True)
            groups, counts = torch.unique_consecutive(group[order], return_counts=True)
            blocks = zip(order.split(counts.tolist()), groups.tolist(), strict=True)
            blocks = [(rows, allowed[g].nonzero()[:, 0]) for rows, g in blocks]
        local = torch.empty(weight.shape[0], dtype=torch.int64)  # article row -> column of block
        for rows, cols in blocks:
            w = weight if cols is None else weight[cols]  # (a, C)
            b = bias if cols is None else bias[cols]  # (a,)
            if cols is None:
                t_block = target
            else:
                local[cols] = torch.arange(len(cols))
                t_block = local[target[rows]]
            for s in range(0, len(rows), chunk):
                r, t = rows[s : s + chunk], t_block[s : s + chunk]  # (m,), (m,)
                h = states[r]  # (m, C)
                logits = torch.addmm(b, h, w.T)  # (m, a)
                lse = torch.logsumexp(logits, 1)  # (m,)
                total += (lse - logits.gather(1, t[:, None])[:, 0]).sum()
                if not any(need):
                    continue
                p = logits.sub_(lse[:, None]).exp_()  # softmax, in place of the logits
                p[torch.arange(len(t)), t] -= 1  # d loss / d logits
                if d_states is not None:
                    d_states[r] = p @ w
                if d_weight is not None:
                    if cols is None:
                        d_weight.addmm_(p.T, h)
                    else:
                        d_weight.index_add_(0, cols, p.T @ h)
                if d_bias is not None:
                    if cols is None:
                        d_bias += p.sum(0)
                    else:
                        d_bias.index_add_(0, cols, p.sum(0))
        ctx.save_for_backward(*(g for g in (d_states, d_weight, d_bias) if g is not None))
        ctx.have = tuple(g is not None for g in (d_states, d_weight, d_bias))
        return total

    @staticmethod
    def backward(ctx, grad):
        saved = iter(ctx.saved_tensors)
        grads = [next(saved) * grad if have else None for have in ctx.have]
        return (*grads, None, None, None, None)


def linear_cross_entropy(
    states: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    target: torch.Tensor,
    *,
    chunk: int = 256,
    allowed: torch.Tensor | None = None,
    group: torch.Tensor | None = None,
) -> torch.Tensor:
    """Summed full-softmax cross-entropy of (M, C) ``states`` against the (A, C) ``weight`` rows and
    (A,) ``bias``, for (M,) int ``target`` rows: the value and gradients of
    ``F.cross_entropy(states @ weight.T + bias, target, reduction="sum")`` (the test oracle) in
    ``chunk``-row pieces. Meant for training: the gradients are computed with the value.

    With ``allowed`` ((G, A) bool) and ``group`` ((M,) int rows of it), row ``i``'s softmax runs over
    the articles ``allowed[group[i]]`` only (e.g. those on sale in the week of the purchase), each
    target among them; the oracle is then the same cross-entropy with the others' logits at -inf."""
    if states.ndim != 2 or weight.ndim != 2 or states.shape[1] != weight.shape[1]:
        raise ValueError(
            f"states {tuple(states.shape)} and weight {tuple(weight.shape)} must be (M, C) and (A, C)"
        )
    if bias.shape != weight.shape[:1] or target.shape != states.shape[:1]:
        raise ValueError(
            f"bias {tuple(bias.shape)} must be ({weight.shape[0]},) and target "
            f"{tuple(target.shape)} ({states.shape[0]},)"
        )
    if chunk < 1:
        raise ValueError(f"chunk={chunk} must be >= 1")
    if (allowed is None) != (group is None):
        raise ValueError("give both allowed and group, or neither")
    if allowed is not None:
        if allowed.ndim != 2 or allowed.shape[1] != weight.shape[0] or group.shape != target.shape:
            raise ValueError(
                f"allowed {tuple(allowed.shape)} must be (G, {weight.shape[0]}) and group "
                f"{tuple(group.shape)} ({states.shape[0]},)"
            )
        outside = ~allowed[group, target]
        if bool(outside.any()):
            row = int(outside.nonzero()[0, 0])
            raise ValueError(
                f"target {int(target[row])} of row {row} is not allowed in its group "
                f"{int(group[row])}: every target must be among its softmax's articles"
            )
    return _LinearCrossEntropy.apply(states, weight, bias, target, int(chunk), allowed, group)
