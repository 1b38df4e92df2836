"""The simulator's day loop: who orders, what they choose, which size, what comes back.

Each day is vectorised over the customers who order that day (``B`` of them) and the articles on
sale (``L``); utilities are a ``(B, L)`` tensor, baskets a Gumbel-top-k over it. Bookkeeping (stock
per article and size, returns waiting to be restocked, recent purchases) lives in numpy arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from gpa_lib.recsys.data.tables import SIZES
from gpa_lib.recsys.sim.config import SimConfig
from gpa_lib.recsys.sim.drift import DriftWalk
from gpa_lib.recsys.sim.misspecified import Misspecification
from gpa_lib.recsys.sim.world import CATEGORY_TABLE, Catalogue, Customers, Trends

MEMORY = 24  # recent purchases per customer that are not chosen again


def run_days(
    config: SimConfig,
    catalogue: Catalogue,
    customers: Customers,
    trends: Trends,
    walk: DriftWalk,
    rng: np.random.Generator,
    progress: bool = True,
    misspecification: Misspecification | None = None,
) -> dict[str, Any]:
    """Simulate ``config.n_days`` days; returns the transaction columns and the stock bookkeeping.
    ``misspecification`` adds its terms to every utility (None: the models' form, as before)."""
    n_sizes = len(SIZES)
    n_articles, n_customers = len(catalogue), config.n_customers
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    category_return = np.array([row[3] for row in CATEGORY_TABLE.values()])
    latent = torch.from_numpy(catalogue.latent)  # (n_articles, D)
    base_style = torch.from_numpy(customers.base_style)  # (n_customers, D)
    delist_day = catalogue.launch_day + 7 * catalogue.shelf_weeks
    p_order = customers.rate / 365.0
    logit_fit, logit_misfit = _logit(config.return_fit), _logit(config.return_misfit)

    stock = catalogue.initial_stock.copy()  # (n_articles, n_sizes)
    stock_flat = stock.reshape(-1)  # a view, indexed by article * n_sizes + size
    sold_out_day = np.full(stock.shape, -1, dtype=np.int32)
    sold_out_flat = sold_out_day.reshape(-1)
    units_sold = np.zeros(stock.size, dtype=np.int64)
    units_restocked = np.zeros(stock.size, dtype=np.int64)
    pending = np.zeros((config.restock_days, stock.size), dtype=np.int64)  # returns, by arrival day
    memory = np.full((n_customers, MEMORY), n_articles, dtype=np.int64)  # n_articles: empty slot
    memory_next = np.zeros(n_customers, dtype=np.int64)
    # on sale at the start of each day (launched, not delisted, some size in stock), for the
    # availability table: what a backtest may rank at a cutoff
    on_sale = np.zeros((config.n_days, n_articles), dtype=bool)

    names = ("day", "customer", "article", "price", "order", "returned", "size", "fits")
    columns: dict[str, list[np.ndarray]] = {name: [] for name in names}
    next_order = 0
    style = base_style
    bar = tqdm(total=config.n_days, unit="day", desc="simulating store", disable=not progress)
    for day in range(config.n_days):
        bar.update(1)
        if day % 7 == 0:
            style = walk.style(base_style, day // 7)  # (n_customers, D)
        arriving = pending[day % config.restock_days]
        stock_flat += arriving
        units_restocked += arriving
        arriving[:] = 0
        live = np.flatnonzero(
            (catalogue.launch_day <= day) & (day < delist_day) & (stock.sum(1) > 0)
        )
        on_sale[day, live] = True
        buyers = np.flatnonzero(rng.random(n_customers) < p_order * trends.volume[day])
        if len(live) == 0 or len(buyers) == 0:
            continue
        article_term, price_today = _article_terms(config, catalogue, trends, day, live)
        log_relative_price = np.log(price_today / catalogue.category_price[live])
        affinity = style[buyers] @ latent[live].T  # (B, L)
        utility = (
            config.affinity_scale * math.sqrt(config.latent_dim) * affinity
            + torch.from_numpy(article_term).float()
            - torch.from_numpy(
                np.outer(customers.price_sensitivity[buyers], log_relative_price)
            ).float()
        )  # (B, L)
        if misspecification is not None:
            utility += torch.from_numpy(
                misspecification.utility(
                    buyers, catalogue.category[live], catalogue.colour[live], live, day
                )
            ).float()  # (B, L)
        own_size = customers.size[buyers]
        in_stock = np.ascontiguousarray(
            stock[live][:, own_size].T > 0
        )  # (B, L) in the buyer's size
        utility.masked_fill_(~torch.from_numpy(in_stock), -math.inf)
        _exclude_recent(utility, memory[buyers], live, n_articles)
        n_items = np.minimum(
            1 + rng.poisson(customers.extra_items[buyers]), min(config.max_items, len(live))
        )
        buyer_row, column = _gumbel_top_k(utility, n_items, generator)
        article = live[column]
        buyer_row, article, size = _order_sizes(
            config, rng, own_size[buyer_row], buyer_row, article, stock
        )
        served = _serve(rng, article * n_sizes + size, stock_flat)
        served = served[
            np.argsort(buyer_row[served], kind="stable")
        ]  # the items of an order together
        buyer_row, article, size = buyer_row[served], article[served], size[served]
        key = article * n_sizes + size
        np.subtract.at(stock_flat, key, 1)
        np.add.at(units_sold, key, 1)
        newly_out = key[(stock_flat[key] == 0) & (sold_out_flat[key] < 0)]
        sold_out_flat[newly_out] = day
        # fit and returns; returns come back on sale restock_days later
        customer = buyers[buyer_row]
        fit_size = np.clip(customers.size[customer] + catalogue.fit_offset[article], 0, n_sizes - 1)
        fits = size == fit_size
        logit = np.where(
            fits, logit_fit + category_return[catalogue.category[article]], logit_misfit
        )
        logit = logit + customers.return_propensity[customer]
        returned = rng.random(len(key)) < 1 / (1 + np.exp(-logit))
        np.add.at(pending[day % config.restock_days], key[returned], 1)
        # orders (one per buyer today), prices paid, memory of recent purchases
        first_of_order = np.r_[True, buyer_row[1:] != buyer_row[:-1]]
        order = next_order + np.cumsum(first_of_order) - 1
        next_order += int(first_of_order.sum())
        position = np.arange(len(key))
        position_in_order = position - np.maximum.accumulate(np.where(first_of_order, position, 0))
        memory[customer, (memory_next[customer] + position_in_order) % MEMORY] = article
        np.add.at(memory_next, customer, 1)
        price = np.round(_price_on(config, catalogue, day, article), 2)
        day_column = np.full(len(key), day, dtype=np.int32)
        values = (day_column, customer, article, price, order, returned, size, fits)
        for name, value in zip(names, values, strict=True):
            columns[name].append(value)
    bar.close()
    out: dict[str, Any] = {
        name: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        for name, parts in columns.items()
    }
    out["returned"] = out["returned"].astype(bool)
    out["fits"] = out["fits"].astype(bool)
    out.update(
        final_stock=stock,
        sold_out_day=sold_out_day,
        units_sold=units_sold.reshape(stock.shape),
        units_restocked=units_restocked.reshape(stock.shape),
        on_sale=on_sale,
    )
    return out


def _price_on(config: SimConfig, catalogue: Catalogue, day: int, article: np.ndarray) -> np.ndarray:
    """Price of ``article`` on ``day``: the list price, less the markdown from markdown_weeks of age."""
    marked_down = day >= catalogue.launch_day[article] + 7 * config.markdown_weeks
    return catalogue.list_price[article] * np.where(marked_down, 1 - config.markdown, 1.0)


def _article_terms(
    config: SimConfig, catalogue: Catalogue, trends: Trends, day: int, live: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The article side of today's utility ``(L,)``, and today's prices ``(L,)``."""
    week = day // 7
    age_weeks = (day - catalogue.launch_day[live]) / 7.0
    article_term = (
        catalogue.popularity[live].astype(np.float64)
        + config.novelty_boost * np.exp(-age_weeks / config.novelty_weeks)
        + config.season_scale
        * trends.category_season[catalogue.category[live]]
        * trends.season[day]
        + trends.colour[week, catalogue.colour[live]]
        + trends.pattern[week, catalogue.pattern[live]]
    )
    return article_term, _price_on(config, catalogue, day, live)


def _exclude_recent(
    utility: torch.Tensor, recent: np.ndarray, live: np.ndarray, n_articles: int
) -> None:
    """Set ``utility[b, l] = -inf`` where live article ``l`` is among buyer ``b``'s ``recent`` (B, MEMORY)."""
    column_of = np.full(
        n_articles + 1, -1, dtype=np.int64
    )  # article -> column in (B, L); slot n: empty
    column_of[live] = np.arange(len(live))
    seen = column_of[recent]  # (B, MEMORY)
    rows, slots = np.nonzero(seen >= 0)
    utility[torch.from_numpy(rows), torch.from_numpy(seen[rows, slots])] = -math.inf


def _gumbel_top_k(
    utility: torch.Tensor, n_items: np.ndarray, generator: torch.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``n_items[b]`` distinct columns of row ``b`` with probabilities softmax(utility[b]),
    without replacement (Gumbel-top-k); ``-inf`` columns are never drawn. Returns (row, column)."""
    uniform = torch.rand(utility.shape, generator=generator).clamp_(1e-12, 1.0)
    values, columns = torch.topk(
        utility - torch.log(-torch.log(uniform)), int(n_items.max()), dim=1
    )
    chosen = (np.arange(values.shape[1])[None, :] < n_items[:, None]) & np.isfinite(values.numpy())
    row, rank = np.nonzero(chosen)  # row-major: the items of a buyer stay together
    return row, columns.numpy()[row, rank]


def _order_sizes(
    config: SimConfig,
    rng: np.random.Generator,
    own: np.ndarray,
    buyer_row: np.ndarray,
    article: np.ndarray,
    stock: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sizes ordered: the buyer's own, one off with probability size_noise (if in stock), and for
    bracket_rate of the items a second, adjacent size as an extra item."""
    n_sizes = stock.shape[1]
    u = rng.random(len(own))
    step = np.where(u < config.size_noise / 2, -1, np.where(u < config.size_noise, 1, 0))
    ordered = np.clip(own + step, 0, n_sizes - 1)
    ordered = np.where(stock[article, ordered] > 0, ordered, own)
    bracket = rng.random(len(own)) < config.bracket_rate
    direction = np.where(rng.random(len(own)) < 0.5, -1, 1)
    second = ordered + direction
    second = np.where((second < 0) | (second >= n_sizes), ordered - direction, second)
    return (
        np.concatenate([buyer_row, buyer_row[bracket]]),
        np.concatenate([article, article[bracket]]),
        np.concatenate([ordered, second[bracket]]),
    )


def _serve(rng: np.random.Generator, key: np.ndarray, stock_flat: np.ndarray) -> np.ndarray:
    """Indices of the wanted items (``key`` = article * n_sizes + size) that stock can serve; when
    more are wanted than are left, a random order among today's buyers decides who gets them."""
    by_key = np.lexsort((rng.random(len(key)), key))
    key_sorted = key[by_key]
    group_start = np.r_[0, np.flatnonzero(key_sorted[1:] != key_sorted[:-1]) + 1]
    group_size = np.diff(np.r_[group_start, len(key)])
    rank_in_key = np.arange(len(key)) - np.repeat(group_start, group_size)
    served = np.zeros(len(key), dtype=bool)
    served[by_key] = rank_in_key < stock_flat[key_sorted]
    return np.flatnonzero(served)


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))
