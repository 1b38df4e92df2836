"""A fashion-store simulator with known ground truth: the built-in default sales data.

It reproduces what makes fashion recommendation hard (arXiv 1708.07347): a large assortment in
several sizes, small stocks that sell out, weekly launches and short article lives, customers who
buy rarely but several items at once, many returns (likelier when the size does not fit),
seasonality, colour and pattern trends, and customer tastes that drift.

Model, per day ``t`` (week ``w``):

- customer ``c`` orders with probability ``rate_c / 365`` (times a yearly volume cycle and a weekday
  profile), then picks ``1 + Poisson(extra_c)`` articles without replacement by Gumbel-top-k over
  ``u[c, a] = affinity_scale * sqrt(D) * style_c(w) . z_a + pop_a + novelty(age_a) + season_k(t)
  + trend_colour(w) + trend_pattern(w) - sens_c * log(price_a(t) / price_k)``, restricted to articles
  on sale with stock in the customer's size, and not among the customer's recent purchases;
- ``style_c(w) = sqrt(1 - drift^2) * base_c + drift * g_c(w)`` with ``g`` an AR(1) process per week
  (correlation time ``drift_weeks``): ``drift = 0`` is static taste;
- ``z_a`` = weighted sum of attribute embeddings (category, colour, pattern, brand, tier, material,
  season) plus noise, ``attribute_share`` of its variance from the attributes;
- the ordered size is the customer's own, sometimes one off (``size_noise``), sometimes two adjacent
  sizes at once (``bracket_rate``); an item fits when the ordered size equals the customer's size
  shifted by the article's fit offset; misfits are returned with ``return_misfit``, fits with
  ``return_fit`` (shifted by customer and category); returns are restocked after ``restock_days``;
- stock per (article, size) is small and set by a noisy demand forecast; when several customers
  want the last units on the same day, a random order decides.

``simulate`` returns a :class:`SalesData` whose ``truth`` is a :class:`SimTruth`.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from gpa_lib.recsys.data import SIZES, SalesData, availability_from_days
from gpa_lib.recsys.images import render_articles
from gpa_lib.recsys.sim_loop import run_days
from gpa_lib.recsys.sim_world import make_catalogue, make_customers, make_trends


@dataclass(frozen=True)
class SimConfig:
    """Every knob of the simulator; ``PRESETS`` names the usual ones. Units are in the comments."""

    # --- size and randomness
    n_customers: int = 100_000  # customers, all registered from day 0
    n_weeks: int = 104  # weeks simulated (7 days each)
    seed: int = 0  # drives everything: same config, same data, bit for bit
    start: str = "2023-01-02"  # first simulated day (a Monday); seasons follow this calendar
    # --- assortment and stock
    articles_per_week: int = 60  # launches per week, launch days spread over the week
    # planned weeks on sale, uniform in [lo, hi]; an article leaves earlier if every size sells out
    shelf_weeks: tuple[int, int] = (4, 16)
    n_brands: int = 40  # brands, each with one price tier and a category focus
    # mean units per article (all sizes) / expected sales of an average article over its life
    stock_cover: float = 0.8
    forecast_noise: float = 0.6  # log-sd of the buyer's demand forecast that sets the stock
    markdown: float = 0.3  # price cut (fraction) once an article is markdown_weeks old
    markdown_weeks: int = 6  # age in weeks at which the markdown starts
    # --- latent space
    latent_dim: int = 16  # D: dimension of customer styles and article latents
    attribute_share: float = 0.7  # share of an article latent's variance from its attributes
    # --- customers
    orders_per_year: float = 6.0  # median shopping rate across customers (orders per year)
    rate_spread: float = 0.8  # log-sd of shopping rates across customers
    # mean items per order beyond the first (gamma across customers, Poisson per order)
    extra_items: float = 1.3
    max_items: int = 8  # largest number of distinct articles in one order
    # median weight on log(price / category list price) in the utility; lognormal, log-sd 0.5
    price_sensitivity: float = 1.0
    # --- choice (utility units: a difference of 1 multiplies the odds by e)
    affinity_scale: float = 2.0  # std of the style x article affinity term
    popularity_scale: float = 1.0  # std of an article's intrinsic appeal
    novelty_boost: float = 1.0  # extra utility on launch day
    novelty_weeks: float = 3.0  # decay time of the novelty boost (weeks)
    season_scale: float = 1.5  # utility of a fully seasonal category at midsummer minus its mean
    trend_scale: float = 0.7  # std over time of each colour's and pattern's trend utility
    trend_weeks: tuple[float, float] = (40.0, 150.0)  # range of the trend waves' periods (weeks)
    volume_seasonality: float = 0.2  # relative swing of order volume over the year (peak late Nov)
    # --- drift of tastes
    drift: float = 0.8  # amplitude of the moving part of a style, 0..1; 0 = static tastes
    # correlation time of the moving part (weeks): AR(1) per week with rho = exp(-1 / drift_weeks)
    drift_weeks: float = 30.0
    # --- sizes and returns
    size_noise: float = 0.15  # probability an item is ordered one size off the customer's own
    fit_offset_rate: float = 0.25  # share of articles that run one size small or large
    bracket_rate: float = 0.1  # probability an item is ordered in two adjacent sizes at once
    return_fit: float = 0.25  # return probability of an item that fits, for an average customer
    return_misfit: float = 0.85  # return probability of an item that does not fit
    return_spread: float = 0.7  # sd of customers' return propensity (logit scale)
    restock_days: int = 10  # days until a returned item is back in stock
    # --- output
    image_size: int = 32  # side in pixels of the procedural article images; 0 = no images

    def __post_init__(self) -> None:
        checks = [
            ("n_customers", self.n_customers >= 1),
            ("n_weeks", self.n_weeks >= 1),
            ("articles_per_week", self.articles_per_week >= 1),
            ("n_brands", self.n_brands >= 1),
            ("shelf_weeks", 1 <= self.shelf_weeks[0] <= self.shelf_weeks[1]),
            ("latent_dim", self.latent_dim >= 1),
            ("max_items", self.max_items >= 1),
            ("drift", 0.0 <= self.drift <= 1.0),
            ("drift_weeks", self.drift_weeks > 0),
            ("attribute_share", 0.0 <= self.attribute_share <= 1.0),
            ("markdown", 0.0 <= self.markdown < 1.0),
            ("restock_days", self.restock_days >= 1),
            ("image_size", self.image_size == 0 or self.image_size >= 8),
            ("orders_per_year", self.orders_per_year > 0),
            ("stock_cover", self.stock_cover > 0),
        ]
        checks += [
            (name, 0.0 <= getattr(self, name) <= 1.0)
            for name in (
                "size_noise",
                "fit_offset_rate",
                "bracket_rate",
                "return_fit",
                "return_misfit",
            )
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} is out of range for SimConfig")

    @property
    def n_days(self) -> int:
        return 7 * self.n_weeks


PRESETS: dict[str, SimConfig] = {
    "full": SimConfig(),
    "smoke": SimConfig(n_customers=2_000, n_weeks=30, articles_per_week=15),
    "test": SimConfig(n_customers=3_000, n_weeks=60, articles_per_week=20),
}


@dataclass(repr=False)
class SimTruth:
    """Ground truth of one simulation, for analysis only; never for models.

    Article arrays are aligned with ``data.articles`` rows, customer arrays with ``data.customers``
    rows, ``transaction_fits`` with the rows of the simulated ``data.transactions``. Weeks count from
    the first simulated day; latents are float32 ``(n, D)``.
    """

    config: SimConfig
    article_latent: np.ndarray  # (n_articles, D) z_a
    article_attribute_latent: np.ndarray  # (n_articles, D) the part of z_a explained by attributes
    article_popularity: np.ndarray  # (n_articles,) intrinsic appeal
    article_fit_offset: np.ndarray  # (n_articles,) int8: -1 runs large, +1 runs small (size steps)
    article_shelf_weeks: np.ndarray  # (n_articles,) planned weeks on sale
    initial_stock: np.ndarray  # (n_articles, n_sizes) int64
    final_stock: np.ndarray  # (n_articles, n_sizes) int64 after the last day
    sold_out_day: np.ndarray  # (n_articles, n_sizes) int32: first day the size hit zero, -1 never
    units_sold: np.ndarray  # (n_articles, n_sizes) int64
    units_restocked: np.ndarray  # (n_articles, n_sizes) int64 returns put back on sale
    customer_base_style: np.ndarray  # (n_customers, D) the static part of each style
    customer_size: np.ndarray  # (n_customers,) int8 index into SIZES
    customer_rate: np.ndarray  # (n_customers,) orders per year
    customer_extra_items: np.ndarray  # (n_customers,) mean extra items per order
    customer_price_sensitivity: np.ndarray  # (n_customers,)
    customer_return_propensity: np.ndarray  # (n_customers,) logit shift
    colour_trend: np.ndarray  # (n_weeks, n_colours) utility of each colour per week
    pattern_trend: np.ndarray  # (n_weeks, n_patterns)
    season: np.ndarray  # (n_days,) +1 midsummer .. -1 midwinter
    category_season: np.ndarray  # (n_categories,) affinity to summer
    transaction_fits: np.ndarray  # (n_transactions,) bool: the ordered size fits
    drift_seed: int = 0  # seeds the AR(1) noise that customer_style replays

    def customer_styles(self, weeks: Any) -> np.ndarray:
        """Styles at the given weeks: ``(len(weeks), n_customers, D)`` float32, replayed exactly."""
        weeks = np.atleast_1d(np.asarray(weeks, dtype=np.int64))
        if weeks.size and (weeks.min() < 0 or weeks.max() >= self.config.n_weeks):
            raise ValueError(
                f"weeks={weeks.tolist()} must lie in [0, n_weeks={self.config.n_weeks})"
            )
        out = np.empty((len(weeks), *self.customer_base_style.shape), dtype=np.float32)
        base = torch.from_numpy(self.customer_base_style)
        with single_thread():
            walk = _DriftWalk(self.config, len(base), self.drift_seed)
            for week in range(int(weeks.max()) + 1 if weeks.size else 0):
                style = walk.style(base, week)
                out[weeks == week] = style.numpy()
        return out

    def customer_style(self, week: int) -> np.ndarray:
        """``(n_customers, D)`` styles in week ``week``."""
        return self.customer_styles([week])[0]

    def __repr__(self) -> str:
        return (
            f"SimTruth({len(self.article_latent)} articles, {len(self.customer_base_style)} customers, "
            f"D={self.config.latent_dim}, drift={self.config.drift})"
        )


@contextlib.contextmanager
def single_thread():
    """Run torch on one thread inside the block: the day loop's small tensors gain nothing from more,
    a busy machine makes extra threads spin, and one thread gives the same bits on any core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _DriftWalk:
    """The moving part of the styles: AR(1) per week from its own generator, so it can be replayed."""

    def __init__(self, config: SimConfig, n_customers: int, seed: int) -> None:
        self.config = config
        self.generator = torch.Generator().manual_seed(seed)
        self.rho = math.exp(-1.0 / config.drift_weeks)
        d = config.latent_dim
        scale = 1 / math.sqrt(d)  # each coordinate ~ N(0, 1/D), like the base styles
        self.g = scale * torch.randn(n_customers, d, generator=self.generator)  # (n_customers, D)
        self.week = 0

    def style(self, base: torch.Tensor, week: int) -> torch.Tensor:
        """``(n_customers, D)``; weeks must be asked in increasing order."""
        if self.config.drift == 0.0:
            return base
        while self.week < week:
            noise = torch.randn(self.g.shape, generator=self.generator) / math.sqrt(self.g.shape[1])
            self.g = self.rho * self.g + math.sqrt(1 - self.rho**2) * noise
            self.week += 1
        drift = self.config.drift
        return math.sqrt(1 - drift**2) * base + drift * self.g


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
    """Simulate the preset ``name`` of :data:`PRESETS`, with field overrides."""
    if name not in PRESETS:
        raise ValueError(f"preset={name!r} is not one of {sorted(PRESETS)}")
    return simulate_config(replace(PRESETS[name], **overrides), progress=progress)


def simulate_config(config: SimConfig, *, progress: bool = True) -> SalesData:
    """The simulator proper, driven by one :class:`SimConfig`."""
    seeds = np.random.SeedSequence(config.seed).spawn(6)
    rng_world, rng_customers, rng_trends, rng_days, rng_images = (
        np.random.default_rng(s) for s in seeds[:5]
    )
    drift_seed = int(seeds[5].generate_state(1, dtype=np.uint64)[0] % (2**63))
    trends = make_trends(config, rng_trends)
    catalogue = make_catalogue(config, trends, rng_world)
    customers = make_customers(config, rng_customers)
    with single_thread():
        walk = _DriftWalk(config, config.n_customers, drift_seed)
        sales = run_days(config, catalogue, customers, trends, walk, rng_days, progress=progress)
    return _assemble(config, catalogue, customers, trends, sales, rng_images, drift_seed)


def _assemble(config, catalogue, customers, trends, sales, rng_images, drift_seed) -> SalesData:
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
        )
    customer_frame = pd.DataFrame(
        {"age": customers.age.astype(np.int64)},
        index=pd.Index(np.arange(config.n_customers, dtype=np.int64), name="customer"),
    )
    truth = SimTruth(
        config=config,
        article_latent=catalogue.latent,
        article_attribute_latent=catalogue.attribute_latent,
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
    torch threads outside the day loop, and :func:`~gpa_lib.recsys.store_stats.store_summary`.
    A script (``gpa_lib.bench``) can write it with provenance through ``write_result``.
    """
    from gpa_lib.recsys.store_stats import store_summary

    rows = []
    for name in presets:
        tic = time.perf_counter()
        data = simulate_preset(name, progress=progress)
        seconds = time.perf_counter() - tic
        config = PRESETS[name]
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
