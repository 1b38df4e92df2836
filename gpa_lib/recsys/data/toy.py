"""A tiny store whose right answer is known, for the contract tests and quick checks.

Two tastes: "A" customers buy only red dresses, "B" customers only blue jeans (the other attributes
are noise). Every week ``articles_per_week`` articles launch, half of each kind, each on sale for
``shelf_weeks`` weeks; within a kind, articles differ in appeal (a fixed weight), so popularity has a
right answer too. ``switchers`` customers change from A to B at ``switch_week``: a dynamic model
should follow them, a static one lags. Images are 16 x 16: the kind's colour, with pixel noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gpa_lib.recsys.data.sales import SalesData

KINDS = {"A": ("dress", "red"), "B": ("jeans", "blue")}


def toy_store(
    n_customers: int = 200,
    n_weeks: int = 12,
    articles_per_week: int = 8,
    shelf_weeks: int = 4,
    orders_per_week: float = 0.5,
    items_per_order: int = 2,
    switchers: int = 0,
    switch_week: int | None = None,
    seed: int = 0,
) -> SalesData:
    """The toy store as :class:`SalesData`; ``customers['taste']`` says "A", "B" or "switch" and
    ``articles['kind']`` "A" or "B" (extra columns the models ignore)."""
    if n_customers < 2 or n_weeks < 2 or articles_per_week < 2:
        raise ValueError(
            f"n_customers={n_customers}, n_weeks={n_weeks}, articles_per_week="
            f"{articles_per_week} must all be at least 2"
        )
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    switch_week = n_weeks // 2 if switch_week is None else switch_week
    # articles: launched weekly (including a batch before the start), half of each kind
    launch_week = np.repeat(np.arange(-shelf_weeks + 1, n_weeks), articles_per_week)
    n_articles = len(launch_week)
    kind = np.tile(
        np.array(["A", "B"]).repeat(articles_per_week // 2), len(launch_week) // articles_per_week
    )
    kind = np.resize(kind, n_articles)
    appeal = rng.gamma(2.0, 1.0, size=n_articles)
    launch_day = 7 * launch_week + rng.integers(0, 7, size=n_articles)
    noise = {
        name: rng.choice(values, size=n_articles)
        for name, values in (
            ("pattern", ["solid", "stripes", "dots"]),
            ("brand", ["b1", "b2", "b3", "b4"]),
            ("price_tier", ["budget", "mid"]),
            ("season", ["all-season"]),
            ("material", ["cotton", "wool"]),
        )
    }
    articles = pd.DataFrame(
        {
            "category": pd.Categorical([KINDS[k][0] for k in kind], categories=["dress", "jeans"]),
            "colour": pd.Categorical([KINDS[k][1] for k in kind], categories=["red", "blue"]),
            **{name: pd.Categorical(values) for name, values in noise.items()},
            "launch": start + pd.to_timedelta(launch_day, unit="D"),
            "kind": kind,
        },
        index=pd.Index(np.arange(n_articles, dtype=np.int64), name="article"),
    )
    # customers
    taste = np.where(np.arange(n_customers) % 2 == 0, "A", "B").astype(object)
    taste[n_customers - switchers :] = "switch"
    customers = pd.DataFrame(
        {"taste": taste}, index=pd.Index(np.arange(n_customers, dtype=np.int64), name="customer")
    )
    # orders: each customer shops on a random day of a week with probability orders_per_week
    rows, order_id = [], 0
    for week in range(n_weeks):
        live = np.flatnonzero((launch_week <= week) & (week < launch_week + shelf_weeks))
        shoppers = np.flatnonzero(rng.random(n_customers) < orders_per_week)
        for customer in shoppers:
            want = taste[customer]
            if want == "switch":
                want = "A" if week < switch_week else "B"
            pool = live[kind[live] == want]
            day = 7 * week + int(rng.integers(0, 7))
            pool = pool[launch_day[pool] <= day]
            if not len(pool):
                continue
            weights = appeal[pool] / appeal[pool].sum()
            chosen = rng.choice(
                pool, size=min(items_per_order, len(pool)), replace=False, p=weights
            )
            for article in chosen:
                rows.append((day, customer, article, order_id, bool(rng.random() < 0.3)))
            order_id += 1
    day, customer, article, order, returned = (np.array(v) for v in zip(*rows, strict=True))
    transactions = pd.DataFrame(
        {
            "t_dat": start + pd.to_timedelta(day, unit="D"),
            "customer": customer,
            "article": article,
            "price": 20.0 + appeal[article],
            "order": order,
            "returned": returned,
        }
    )
    images = np.full((n_articles, 16, 16, 3), 240, dtype=np.uint8)
    colour = {"A": (200, 30, 30), "B": (30, 60, 200)}
    for k, rgb in colour.items():
        images[kind == k, 4:12, 4:12] = rgb
    images = np.clip(images + rng.integers(-10, 10, size=images.shape), 0, 255).astype(np.uint8)
    # on sale from launch for shelf_weeks (no stock-outs); day 0 for those launched before the start
    availability = pd.DataFrame(
        {
            "article": np.arange(n_articles, dtype=np.int64),
            "on_sale_from": start + pd.to_timedelta(np.maximum(launch_day, 0), unit="D"),
            "on_sale_until": start + pd.to_timedelta(7 * (launch_week + shelf_weeks), unit="D"),
        }
    )
    return SalesData.from_frames(
        transactions,
        articles,
        customers,
        images=images,
        meta={"source": "toy_store", "seed": seed},
        availability=availability,
    )
