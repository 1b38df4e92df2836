"""Customers' purchase histories as sequences of orders, the input of the dynamic customer model.

Each order becomes one step: the mean DNA of its articles, the gap to the previous order, the
number of items and the share returned (where known). Layout: ``B`` customers, ``N`` orders per
customer (left-aligned, padded at the end), ``D`` DNA dimensions, ``C`` per-order features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gpa_lib.recsys.models.base import History

#: Per-order scalar features after the DNA: log gap, log items, returned share, returns-known flag.
N_ORDER_FEATURES = 4


def calendar_features(day: torch.Tensor) -> torch.Tensor:
    """(..., 2) sine and cosine of the day of the year of ``day`` (days since 1970-01-01)."""
    phase = 2 * math.pi * (day.double() % 365.25) / 365.25
    return torch.stack([torch.sin(phase), torch.cos(phase)], dim=-1).float()


def log_days(days: torch.Tensor) -> torch.Tensor:
    """A gap in days on a scale of about 0..1: ``log1p(days) / 6``."""
    return torch.log1p(days.clamp(min=0).float()) / 6.0


@dataclass
class Orders:
    """The orders before the cutoff, sorted by customer and day, and their articles (CSR)."""

    customer: np.ndarray  # (n_orders,) int64 customer row
    day: np.ndarray  # (n_orders,) int64 days since epoch
    n_items: np.ndarray  # (n_orders,) int64
    returned_share: np.ndarray  # (n_orders,) float32, 0 where unknown
    returns_known: np.ndarray  # (n_orders,) float32 1/0
    item_start: np.ndarray  # (n_orders + 1,) offsets into item_article
    item_article: np.ndarray  # (n_items_total,) int64 article rows, grouped by order
    first_order: (
        np.ndarray
    )  # (n_customers + 1,) offsets: customer c owns orders [first[c], first[c+1])

    @classmethod
    def from_history(cls, history: History) -> Orders:
        # one order per (customer, order id); sort by customer, then day, then order id
        sort = np.lexsort((history.order, history.day, history.customer))
        customer, order = history.customer[sort], history.order[sort]
        new_order = np.r_[True, (order[1:] != order[:-1]) | (customer[1:] != customer[:-1])]
        order_of_item = np.cumsum(new_order) - 1  # (n_tx,) order index of each item
        n_orders = int(order_of_item[-1]) + 1 if len(order_of_item) else 0
        starts = np.flatnonzero(new_order)
        n_items = np.bincount(order_of_item, minlength=n_orders)
        returned = history.returned[sort]
        known = np.isfinite(returned)
        n_known = np.bincount(order_of_item, weights=known, minlength=n_orders)
        n_returned = np.bincount(
            order_of_item, weights=np.where(known, returned, 0), minlength=n_orders
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n_known > 0, n_returned / np.maximum(n_known, 1), 0.0)
        order_customer = customer[starts]
        first = np.searchsorted(order_customer, np.arange(history.n_customers + 1))
        return cls(
            customer=order_customer,
            day=history.day[sort][starts],
            n_items=n_items,
            returned_share=share.astype(np.float32),
            returns_known=(n_known == n_items).astype(np.float32),
            item_start=np.r_[starts, len(sort)].astype(np.int64),
            item_article=history.article[sort],
            first_order=first.astype(np.int64),
        )

    def order_dna(self, dna: torch.Tensor) -> torch.Tensor:
        """(n_orders, D) mean DNA of each order's articles."""
        n_orders = len(self.day)
        owner = torch.from_numpy(np.repeat(np.arange(n_orders), self.n_items))
        total = torch.zeros(n_orders, dna.shape[1]).index_add_(0, owner, dna[self.item_article])
        return total / torch.from_numpy(self.n_items).clamp(min=1)[:, None].float()

    def step_features(self, dna: torch.Tensor) -> torch.Tensor:
        """(n_orders, D + C) inputs of the sequence model, one row per order."""
        day = torch.from_numpy(self.day)
        previous = torch.cat([day[:1], day[:-1]])
        same = torch.from_numpy(np.r_[False, self.customer[1:] == self.customer[:-1]])
        gap = torch.where(same, day - previous, torch.zeros_like(day))  # first order: gap 0
        scalars = torch.stack(
            [
                log_days(gap),
                torch.log1p(torch.from_numpy(self.n_items).float()) / 2.0,
                torch.from_numpy(self.returned_share),
                torch.from_numpy(self.returns_known),
            ],
            dim=1,
        )  # (n_orders, C)
        return torch.cat([self.order_dna(dna), scalars], dim=1)

    def windows(self, customers: np.ndarray, max_orders: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The last ``max_orders`` orders of each customer: order indices (B, N) padded with -1 at the
        end, and lengths (B,) (0 for customers without orders)."""
        start = self.first_order[customers]
        end = self.first_order[customers + 1]
        lengths = np.minimum(end - start, max_orders)
        n = int(lengths.max()) if len(lengths) else 0
        n = max(n, 1)
        position = np.arange(n)[None, :]
        index = (end - lengths)[:, None] + position  # (B, N)
        index = np.where(position < lengths[:, None], index, -1)
        return torch.from_numpy(index), torch.from_numpy(lengths)


#: Article context features: log sales in the week before, "no sale before" flag, log weeks on sale.
N_CONTEXT_FEATURES = 3


def article_context_table(history: History) -> torch.Tensor:
    """(n_weeks + 1, n_articles, 3) what was known about each article's sales at the start of each
    week: row ``w`` serves targets in week ``w`` before the cutoff (0 = the last 7 days), and row
    ``-1`` (the last) serves the weeks after the cutoff. Uses only sales before that week."""
    week = history.week  # (n_tx,) 0 = last week before the cutoff
    n_weeks = int(week.max()) + 1 if len(week) else 1
    sales = np.zeros((n_weeks + 1, history.n_articles))  # row w: sales in week w; row n_weeks: none
    np.add.at(sales, (week, history.article), 1.0)
    # target week w (w = -1 after the cutoff) sees the weeks w+1, w+2, ...: reverse cumulative sums
    before = np.cumsum(sales[::-1], axis=0)[::-1]  # before[w] = sales in weeks >= w
    sold_ever = before > 0
    first_week = sold_ever[:n_weeks].sum(0) - 1  # the oldest week with a sale (-1: never sold)
    rows = np.arange(-1, n_weeks)  # target weeks, -1 first; we roll it to the end below
    last_week = sales[np.clip(rows + 1, 0, n_weeks)]  # (n_weeks + 1, n_articles)
    seen_before = before[np.clip(rows + 1, 0, n_weeks)] > 0
    age = np.where(seen_before, first_week[None, :] - rows[:, None], 0)
    table = np.stack(
        [
            np.log1p(last_week) / 5.0,
            (~seen_before).astype(np.float64),
            np.log1p(np.maximum(age, 0)) / 3.0,
        ],
        axis=-1,
    )  # (n_weeks + 1, n_articles, 3), first row = after the cutoff
    return torch.from_numpy(np.roll(table, -1, axis=0).astype(np.float32))
