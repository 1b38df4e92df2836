"""A fashion-store simulator with known ground truth: the built-in default sales data.

It reproduces what makes fashion recommendation hard (arXiv 1708.07347): a large assortment in
several sizes, small stocks that sell out, weekly launches and short article lives, customers who
buy rarely but several items at once, many returns (likelier when the size does not fit),
seasonality, colour and pattern trends, and customer tastes that drift.

Model, per day ``t`` (week ``w``):

- customer ``c`` orders with probability ``rate_c / 365`` (times a yearly volume cycle and a weekday
  profile), then picks ``1 + Poisson(extra_c)`` articles without replacement by Gumbel-top-k over
  ``u[c, a] = affinity_scale * sqrt(D) * style_c(w) . z_a + pop_a + novelty(age_a) + season_k(t)
  + trend_colour(w) + trend_pattern(w) - sens_c * log(price_a(t) / price_k)`` (plus, with
  ``misspecified`` > 0, terms outside that form: :mod:`~gpa_lib.recsys.sim.misspecified`), restricted to articles
  on sale with stock in the customer's size, and not among the customer's recent purchases;
- ``style_c(w) = sqrt(1 - drift^2) * base_c + drift * g_c(w)`` with ``g`` an AR(1) process per week
  (correlation time ``drift_weeks``): ``drift = 0`` is static taste;
- ``z_a`` = weighted sum of attribute embeddings (category, colour, pattern, brand, tier, material,
  season) plus noise, ``attribute_share`` of its variance from the attributes; with ``image_share``
  > 0, that share of the variance (taken from the noise) is a fixed random projection of hidden
  values the image draws and no attribute names (tone, length: ``SimTruth.article_image_hidden``);
- the ordered size is the customer's own, sometimes one off (``size_noise``), sometimes two adjacent
  sizes at once (``bracket_rate``); an item fits when the ordered size equals the customer's size
  shifted by the article's fit offset; misfits are returned with ``return_misfit``, fits with
  ``return_fit`` (shifted by customer and category); returns are restocked after ``restock_days``;
- stock per (article, size) is small and set by a noisy demand forecast; when several customers
  want the last units on the same day, a random order decides.

``simulate`` returns a :class:`SalesData` whose ``truth`` is a :class:`SimTruth`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, fields, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.data.stats import store_summary
from gpa_lib.recsys.data.tables import SIZES, availability_from_days
from gpa_lib.recsys.sim.config import STORE_PRESETS, SimConfig
from gpa_lib.recsys.sim.days import run_days
from gpa_lib.recsys.sim.drift import DriftWalk, single_thread
from gpa_lib.recsys.sim.images import render_articles
from gpa_lib.recsys.sim.misspecified import make_misspecification
from gpa_lib.recsys.sim.truth import SimTruth
from gpa_lib.recsys.sim.world import make_catalogue, make_customers, make_trends


def simulate(
    n_customers: int = 100_000,
    n_weeks: int = 104,
    seed: int = 0,
    *,
    progress: bool = True,
    **overrides: Any,
) -> SalesData:
    """Simulate a fashion store; returns :class:`SalesData` with ``.truth`` a :class:`SimTruth`.

    ``n_customers`` (customers), ``n_weeks`` (weeks of 7 days) and ``seed`` as named; any other
    :class:`SimConfig` field by keyword (``drift=0.0``, ``articles_per_week=20``, ...). Same
    arguments give the same data bit for bit (on one machine and torch version).
    """
    unknown = set(overrides) - {f.name for f in fields(SimConfig)}
    if unknown:
        raise TypeError(f"simulate() got unknown SimConfig field(s) {sorted(unknown)}")
    config = SimConfig(n_customers=n_customers, n_weeks=n_weeks, seed=seed, **overrides)
    return simulate_config(config, progress=progress)


def simulate_preset(name: str, *, progress: bool = True, **overrides: Any) -> SalesData:
    """Simulate the preset ``name`` of :data:`STORE_PRESETS`, with field overrides."""
    if name not in STORE_PRESETS:
        raise ValueError(f"preset={name!r} is not one of {sorted(STORE_PRESETS)}")
    return simulate_config(replace(STORE_PRESETS[name], **overrides), progress=progress)


def simulate_config(config: SimConfig, *, progress: bool = True) -> SalesData:
    """The simulator proper, driven by one :class:`SimConfig`."""
    # children of a SeedSequence depend only on their index, so the seventh (the part of the
    # latents only images show) and the eighth (the misspecified terms) leave the first six
    # streams as they were before they existed
    seeds = np.random.SeedSequence(config.seed).spawn(8)
    rng_world, rng_customers, rng_trends, rng_days, rng_images = (
        np.random.default_rng(s) for s in seeds[:5]
    )
    drift_seed = int(seeds[5].generate_state(1, dtype=np.uint64)[0] % (2**63))
    rng_image_part = np.random.default_rng(seeds[6])
    trends = make_trends(config, rng_trends)
    catalogue = make_catalogue(config, trends, rng_world, rng_image_part)
    customers = make_customers(config, rng_customers)
    misspecification = (
        make_misspecification(config, catalogue.launch_day, catalogue.shelf_weeks, seeds[7])
        if config.misspecified > 0
        else None
    )
    with single_thread():
        walk = DriftWalk(config, config.n_customers, drift_seed)
        sales = run_days(
            config,
            catalogue,
            customers,
            trends,
            walk,
            rng_days,
            progress=progress,
            misspecification=misspecification,
        )
    return _assemble(
        config, catalogue, customers, trends, sales, rng_images, drift_seed, misspecification
    )


def _assemble(
    config, catalogue, customers, trends, sales, rng_images, drift_seed, misspecification=None
) -> SalesData:
    start = np.datetime64(config.start, "D")
    tx = pd.DataFrame(
        {
            "t_dat": (start + sales["day"].astype("timedelta64[D]")).astype("datetime64[ns]"),
            "customer": sales["customer"].astype(np.int64),
            "article": sales["article"].astype(np.int64),
            "price": sales["price"].astype(np.float64),
            "order": sales["order"].astype(np.int64),
            "returned": pd.arrays.BooleanArray(
                sales["returned"], np.zeros(len(sales["day"]), bool)
            ),
            "size": pd.Categorical.from_codes(
                sales["size"].astype(np.int8), categories=list(SIZES), ordered=True
            ),
        }
    )
    articles = catalogue.to_frame(start)
    images = None
    if config.image_size:
        images = render_articles(
            catalogue.category,
            catalogue.colour,
            catalogue.pattern,
            catalogue.material,
            rng_images,
            size=config.image_size,
            hidden=catalogue.image_hidden if config.image_share > 0 else None,
        )
    customer_frame = pd.DataFrame(
        {"age": customers.age.astype(np.int64)},
        index=pd.Index(np.arange(config.n_customers, dtype=np.int64), name="customer"),
    )
    truth = SimTruth(
        config=config,
        article_latent=catalogue.latent,
        article_attribute_latent=catalogue.attribute_latent,
        article_image_latent=catalogue.image_latent,
        article_image_hidden=catalogue.image_hidden,
        article_popularity=catalogue.popularity,
        article_fit_offset=catalogue.fit_offset,
        article_shelf_weeks=catalogue.shelf_weeks,
        initial_stock=catalogue.initial_stock,
        final_stock=sales["final_stock"],
        sold_out_day=sales["sold_out_day"],
        units_sold=sales["units_sold"],
        units_restocked=sales["units_restocked"],
        customer_base_style=customers.base_style,
        customer_size=customers.size.astype(np.int8),
        customer_rate=customers.rate,
        customer_extra_items=customers.extra_items,
        customer_price_sensitivity=customers.price_sensitivity,
        customer_return_propensity=customers.return_propensity,
        colour_trend=trends.colour,
        pattern_trend=trends.pattern,
        season=trends.season,
        category_season=trends.category_season,
        transaction_fits=sales["fits"],
        drift_seed=drift_seed,
        misspecification=misspecification,
    )
    meta = {"source": "simulator", "config": asdict(config)}
    availability = availability_from_days(sales["on_sale"], config.start, articles.index.to_numpy())
    return SalesData(
        tx,
        articles,
        customer_frame,
        images=images,
        truth=truth,
        meta=meta,
        availability=availability,
    )


def benchmark(
    presets: tuple[str, ...] = ("full", "test"), progress: bool = False
) -> list[dict[str, Any]]:
    """Time :func:`simulate_preset` for each preset name and summarise each store.

    Returns one dict per preset: the preset's size, ``seconds`` (wall clock of the simulation),
    torch threads outside the day loop, and :func:`~gpa_lib.recsys.data.stats.store_summary`.
    A script (``gpa_lib.bench``) can write it with provenance through ``write_result``.
    """
    rows = []
    for name in presets:
        tic = time.perf_counter()
        data = simulate_preset(name, progress=progress)
        seconds = time.perf_counter() - tic
        config = STORE_PRESETS[name]
        rows.append(
            {
                "preset": name,
                "n_customers": config.n_customers,
                "n_weeks": config.n_weeks,
                "articles_per_week": config.articles_per_week,
                "seconds": round(seconds, 3),
                "torch_threads": torch.get_num_threads(),
                **store_summary(data),
            }
        )
    return rows
