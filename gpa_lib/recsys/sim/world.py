"""The simulated world before the first day: calendar and trends, the catalogue, the customers.

Used by :mod:`gpa_lib.recsys.sim.simulate`; every function takes the :class:`SimConfig` and its own
``numpy.random.Generator`` so that each part of the world has an independent random stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gpa_lib.recsys.sim.config import SimConfig
from gpa_lib.recsys.sim.images import IMAGE_HIDDEN
from gpa_lib.recsys.sim.vocabulary import (
    CATEGORIES,
    COLOURS,
    MATERIALS,
    PATTERNS,
    PRICE_TIERS,
    SEASONS,
)

# category -> (share of launches, list price in EUR, season affinity (+1 summer .. -1 winter),
#              return logit shift, {material: probability})
CATEGORY_TABLE: dict[str, tuple[float, float, float, float, dict[str, float]]] = {
    "tshirt": (0.13, 20, 0.8, 0.0, {"cotton": 0.6, "polyester": 0.2, "viscose": 0.2}),
    "shirt": (0.09, 45, 0.2, 0.1, {"cotton": 0.6, "linen": 0.2, "viscose": 0.2}),
    "dress": (0.10, 60, 0.9, 0.4, {"viscose": 0.4, "cotton": 0.3, "polyester": 0.2, "linen": 0.1}),
    "skirt": (0.06, 40, 0.6, 0.2, {"cotton": 0.3, "denim": 0.2, "polyester": 0.3, "viscose": 0.2}),
    "trousers": (0.09, 50, 0.0, 0.2, {"cotton": 0.4, "wool": 0.2, "polyester": 0.2, "linen": 0.2}),
    "jeans": (0.08, 60, -0.2, 0.3, {"denim": 1.0}),
    "shorts": (0.06, 30, 1.0, 0.0, {"cotton": 0.5, "denim": 0.3, "linen": 0.2}),
    "jacket": (
        0.07,
        90,
        -0.4,
        0.0,
        {"cotton": 0.3, "denim": 0.3, "leather": 0.2, "polyester": 0.2},
    ),
    "coat": (0.07, 140, -1.0, 0.0, {"wool": 0.6, "polyester": 0.4}),
    "knitwear": (0.09, 55, -0.8, 0.0, {"wool": 0.6, "cotton": 0.4}),
    "shoes": (0.09, 80, 0.0, 0.2, {"leather": 0.6, "canvas": 0.3, "polyester": 0.1}),
    "bag": (0.07, 60, 0.0, -0.8, {"leather": 0.5, "canvas": 0.3, "polyester": 0.2}),
}
assert tuple(CATEGORY_TABLE) == CATEGORIES
TIER_PRICE = (0.6, 1.0, 1.9)  # list price multiplier per tier
TIER_SHARE = (0.4, 0.4, 0.2)  # share of brands per tier
SIZE_SHARE = (0.08, 0.24, 0.34, 0.23, 0.11)  # customers per size XS..XL; stock follows it
WEEKDAY_VOLUME = (1.15, 0.95, 0.9, 0.9, 0.95, 0.9, 1.25)  # order volume Monday..Sunday, mean 1
# static popularity (utility) of colours and patterns, around which the trends move
COLOUR_BASE = dict(
    zip(COLOURS, (0.8, 0.5, 0.3, 0.5, 0.3, 0.0, 0.0, -0.2, -0.3, 0.2, 0.0, -0.4), strict=True)
)
PATTERN_BASE = dict(zip(PATTERNS, (1.0, 0.2, 0.0, -0.2, -0.1, 0.0), strict=True))
# weight of each attribute embedding in the article latent
ATTRIBUTE_WEIGHT = {
    "category": 1.0,
    "colour": 1.0,
    "pattern": 0.8,
    "brand": 0.8,
    "price_tier": 0.5,
    "material": 0.5,
    "season": 0.3,
}
LAUNCH_SEASON = (
    1.5  # how strongly the launch mix follows the coming season (log-odds per unit affinity)
)
LAUNCH_LEAD_DAYS = 28  # collections arrive about a month ahead of their season


# ---------------------------------------------------------------------- calendar and trends


@dataclass
class Trends:
    """Population-level time series; ``week`` and ``day`` count from the first simulated day."""

    season: np.ndarray  # (n_days,) +1 midsummer .. -1 midwinter
    volume: np.ndarray  # (n_days,) order-volume multiplier (year cycle x weekday)
    colour: np.ndarray  # (n_weeks, n_colours) utility: base + trend
    pattern: np.ndarray  # (n_weeks, n_patterns) utility: base + trend
    category_season: np.ndarray  # (n_categories,) affinity to summer
    colour_waves: tuple[
        np.ndarray, np.ndarray, np.ndarray
    ]  # amplitude, period, phase: (n_colours, 2) each
    pattern_waves: tuple[np.ndarray, np.ndarray, np.ndarray]


def season_of(config: SimConfig, days: np.ndarray) -> np.ndarray:
    """+1 in mid July, -1 in mid January, for day offsets from ``config.start`` (may be negative)."""
    dates = np.datetime64(config.start, "D") + np.asarray(days).astype("timedelta64[D]")
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    return np.cos(2 * np.pi * (day_of_year - 196) / 365.25)


def _waves(rng: np.random.Generator, n: int, config: SimConfig):
    amplitude = rng.normal(size=(n, 2))
    amplitude *= config.trend_scale / np.sqrt(
        (amplitude**2).sum(1, keepdims=True) / 2
    )  # std trend_scale
    period = rng.uniform(*config.trend_weeks, size=(n, 2))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 2))
    return amplitude, period, phase


def wave_values(waves, weeks: np.ndarray) -> np.ndarray:
    """``(len(weeks), n)`` trend utilities of the waves at (possibly negative, fractional) weeks."""
    amplitude, period, phase = waves
    weeks = np.asarray(weeks, dtype=np.float64)[:, None, None]
    return (amplitude * np.sin(2 * np.pi * weeks / period + phase)).sum(-1)


def make_trends(config: SimConfig, rng: np.random.Generator) -> Trends:
    days = np.arange(config.n_days)
    weeks = np.arange(config.n_weeks)
    dates = np.datetime64(config.start, "D") + days.astype("timedelta64[D]")
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    year_cycle = 1 + config.volume_seasonality * np.cos(2 * np.pi * (day_of_year - 330) / 365.25)
    colour_waves = _waves(rng, len(COLOURS), config)
    pattern_waves = _waves(rng, len(PATTERNS), config)
    return Trends(
        season=season_of(config, days),
        volume=year_cycle * np.asarray(WEEKDAY_VOLUME)[weekday],
        colour=np.asarray(list(COLOUR_BASE.values())) + wave_values(colour_waves, weeks),
        pattern=np.asarray(list(PATTERN_BASE.values())) + wave_values(pattern_waves, weeks),
        category_season=np.array([row[2] for row in CATEGORY_TABLE.values()]),
        colour_waves=colour_waves,
        pattern_waves=pattern_waves,
    )


# ---------------------------------------------------------------------- catalogue


@dataclass
class Catalogue:
    """All articles, in launch order; index arrays point into the attribute tuples."""

    launch_day: (
        np.ndarray
    )  # (n,) int64, days from the first simulated day (negative: launched before)
    shelf_weeks: np.ndarray  # (n,) int64
    category: np.ndarray  # (n,) into CATEGORIES
    colour: np.ndarray  # (n,) into COLOURS
    pattern: np.ndarray  # (n,) into PATTERNS
    brand: np.ndarray  # (n,) 0..n_brands-1
    tier: np.ndarray  # (n,) into PRICE_TIERS
    material: np.ndarray  # (n,) into MATERIALS
    season: np.ndarray  # (n,) into SEASONS
    list_price: np.ndarray  # (n,) float64, EUR
    latent: np.ndarray  # (n, D) float32
    attribute_latent: np.ndarray  # (n, D) float32
    image_latent: np.ndarray  # (n, D) float32, the part only the image shows (0: image_share 0)
    image_hidden: np.ndarray  # (n, K) float32 hidden values the image draws (see IMAGE_HIDDEN)
    popularity: np.ndarray  # (n,) float32
    fit_offset: np.ndarray  # (n,) int8
    initial_stock: np.ndarray  # (n, n_sizes) int64

    def __len__(self) -> int:
        return len(self.launch_day)

    @property
    def category_price(self) -> np.ndarray:
        """(n,) the list price of each article's category (EUR), the reference of price sensitivity."""
        return np.array([row[1] for row in CATEGORY_TABLE.values()], dtype=np.float64)[
            self.category
        ]

    def to_frame(self, start: np.datetime64) -> pd.DataFrame:
        """The ``articles`` table of the data model (ids 0..n-1 in launch order)."""

        def categorical(codes, names, ordered=False):
            return pd.Categorical.from_codes(codes, categories=list(names), ordered=ordered)

        brands = [f"brand_{i:02d}" for i in range(int(self.brand.max()) + 1 if len(self) else 0)]
        return pd.DataFrame(
            {
                "category": categorical(self.category, CATEGORIES),
                "colour": categorical(self.colour, COLOURS),
                "pattern": categorical(self.pattern, PATTERNS),
                "brand": categorical(self.brand, brands),
                "price_tier": categorical(self.tier, PRICE_TIERS, ordered=True),
                "season": categorical(self.season, SEASONS),
                "material": categorical(self.material, MATERIALS),
                "launch": (start + self.launch_day.astype("timedelta64[D]")).astype(
                    "datetime64[ns]"
                ),
                "list_price": self.list_price,
            },
            index=pd.Index(np.arange(len(self), dtype=np.int64), name="article"),
        )


def _sample_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``probabilities`` (n, k), rows summing to 1 (up to rounding)."""
    cumulative = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities))[:, None] * cumulative[:, -1:]
    return np.minimum((cumulative < u).sum(axis=1), probabilities.shape[1] - 1)


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def expected_items_per_week(config: SimConfig) -> float:
    """Expected items sold per week across the store (before stock-outs), for sizing the stock."""
    mean_rate = config.orders_per_year * math.exp(config.rate_spread**2 / 2)
    items_per_order = (1 + config.extra_items) * (1 + config.bracket_rate)
    return config.n_customers * mean_rate / 52.0 * items_per_order


def image_part(
    config: SimConfig, n: int, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """The part of ``n`` article latents that only the images show: hidden values ``(n, K)`` (one
    column per name of :data:`~gpa_lib.recsys.sim.images.IMAGE_HIDDEN`, standard normal) and their
    image latent ``(n, D)``, a fixed random projection ``(K, D)`` of them scaled so that its squared
    norm is 1 on average, like the attribute part. Zeros, drawing nothing, when ``image_share`` is 0.
    """
    k, d = len(IMAGE_HIDDEN), config.latent_dim
    if config.image_share == 0:
        return np.zeros((n, k)), np.zeros((n, d))
    if rng is None:
        raise ValueError(f"image_share={config.image_share} needs rng, the image part's generator")
    projection = rng.normal(size=(k, d))  # (K, D), fixed for the store
    projection /= np.linalg.norm(projection)  # E |hidden @ projection|^2 = 1
    hidden = rng.normal(size=(n, k))  # (n, K)
    return hidden, hidden @ projection


def make_catalogue(
    config: SimConfig,
    trends: Trends,
    rng: np.random.Generator,
    rng_image: np.random.Generator | None = None,
) -> Catalogue:
    """The articles launched before and during the simulation; ``rng_image`` (its own stream, so
    the rest of the catalogue does not depend on it) draws the part only images show."""
    lo, hi = config.shelf_weeks
    launch_weeks = np.repeat(np.arange(-hi + 1, config.n_weeks), config.articles_per_week)
    n = len(launch_weeks)
    launch_day = 7 * launch_weeks + rng.integers(0, 7, size=n)
    shelf = rng.integers(lo, hi + 1, size=n)
    # the coming season sets the category mix of a launch; the current trends its colours and patterns
    table = list(CATEGORY_TABLE.values())
    share = np.log([row[0] for row in table])
    coming = season_of(config, launch_day + LAUNCH_LEAD_DAYS)
    category = _sample_rows(
        _softmax_rows(share + LAUNCH_SEASON * coming[:, None] * trends.category_season), rng
    )
    n_brands = config.n_brands
    brand_tier = rng.choice(len(PRICE_TIERS), size=n_brands, p=TIER_SHARE)
    brand_focus = rng.dirichlet(
        np.full(len(CATEGORIES), 0.7), size=n_brands
    )  # (n_brands, n_categories)
    brand = _sample_rows(
        brand_focus[:, category].T / brand_focus[:, category].T.sum(1, keepdims=True), rng
    )
    tier = brand_tier[brand]
    week_fraction = launch_day / 7.0
    colour_logits = np.asarray(list(COLOUR_BASE.values())) + wave_values(
        trends.colour_waves, week_fraction
    )
    pattern_logits = np.asarray(list(PATTERN_BASE.values())) + wave_values(
        trends.pattern_waves, week_fraction
    )
    colour = _sample_rows(_softmax_rows(colour_logits), rng)
    pattern = _sample_rows(_softmax_rows(pattern_logits), rng)
    material_p = np.zeros((len(CATEGORIES), len(MATERIALS)))
    for k, row in enumerate(table):
        for name, p in row[4].items():
            material_p[k, MATERIALS.index(name)] = p
    material = _sample_rows(material_p[category], rng)
    month = (np.datetime64(config.start, "D") + launch_day.astype("timedelta64[D]")).astype(
        "datetime64[M]"
    )
    month = month.astype(np.int64) % 12 + 1
    seasonal = np.abs(trends.category_season[category]) >= 0.3
    season = np.where(~seasonal, 2, np.where((month >= 2) & (month <= 7), 0, 1))
    category_price = np.array([row[1] for row in table], dtype=np.float64)
    list_price = (
        category_price[category] * np.asarray(TIER_PRICE)[tier] * np.exp(rng.normal(0, 0.2, size=n))
    )
    list_price = np.maximum(np.round(list_price) - 0.05, 2.95)  # shop prices: 29.95

    # latent: weighted attribute embeddings plus noise, each dimension of variance ~1/D
    d = config.latent_dim
    codes = {
        "category": category,
        "colour": colour,
        "pattern": pattern,
        "brand": brand,
        "price_tier": tier,
        "material": material,
        "season": season,
    }
    sizes = {
        "category": len(CATEGORIES),
        "colour": len(COLOURS),
        "pattern": len(PATTERNS),
        "brand": n_brands,
        "price_tier": len(PRICE_TIERS),
        "material": len(MATERIALS),
        "season": len(SEASONS),
    }
    attribute_latent = np.zeros((n, d))
    for name, weight in ATTRIBUTE_WEIGHT.items():
        table_k = rng.normal(0, 1 / math.sqrt(d), size=(sizes[name], d))  # (values, D)
        attribute_latent += weight * table_k[codes[name]]
    attribute_latent /= math.sqrt(sum(w**2 for w in ATTRIBUTE_WEIGHT.values()))
    noise = rng.normal(0, 1 / math.sqrt(d), size=(n, d))
    share_a, share_i = config.attribute_share, config.image_share
    latent = (
        math.sqrt(share_a) * attribute_latent + math.sqrt(max(1 - share_a - share_i, 0.0)) * noise
    )
    image_hidden, image_latent = image_part(config, n, rng_image)
    # with image_share 0 nothing is drawn or added: the stores of before, bit for bit
    if share_i > 0:
        latent = latent + math.sqrt(share_i) * image_latent
    popularity = rng.normal(0, config.popularity_scale, size=n)
    r = config.fit_offset_rate
    fit_offset = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=n, p=[r / 2, 1 - r, r / 2])

    # stock: the buyer's noisy forecast of demand, scaled so an average article covers stock_cover
    forecast = np.exp(popularity + config.forecast_noise * rng.normal(size=n))
    forecast /= math.exp((config.popularity_scale**2 + config.forecast_noise**2) / 2)
    mean_units = config.stock_cover * expected_items_per_week(config) / config.articles_per_week
    remaining = np.clip(
        (launch_day + 7 * shelf) / (7.0 * shelf), 0, 1
    )  # launched before day 0: part of life left
    units = mean_units * forecast * np.where(launch_day < 0, remaining, 1.0)
    initial_stock = rng.poisson(units[:, None] * np.asarray(SIZE_SHARE)[None, :])  # (n, n_sizes)

    keep = launch_day + 7 * shelf > 0  # drop what was delisted before the first day
    return Catalogue(
        launch_day=launch_day[keep].astype(np.int64),
        shelf_weeks=shelf[keep].astype(np.int64),
        category=category[keep],
        colour=colour[keep],
        pattern=pattern[keep],
        brand=brand[keep],
        tier=tier[keep],
        material=material[keep],
        season=season[keep],
        list_price=list_price[keep],
        latent=latent[keep].astype(np.float32),
        attribute_latent=attribute_latent[keep].astype(np.float32),
        image_latent=image_latent[keep].astype(np.float32),
        image_hidden=image_hidden[keep].astype(np.float32),
        popularity=popularity[keep].astype(np.float32),
        fit_offset=fit_offset[keep],
        initial_stock=initial_stock[keep].astype(np.int64),
    )


# ---------------------------------------------------------------------- customers


@dataclass
class Customers:
    age: np.ndarray  # (n,) years
    size: np.ndarray  # (n,) into SIZES
    rate: np.ndarray  # (n,) orders per year
    extra_items: np.ndarray  # (n,) mean extra items per order
    price_sensitivity: np.ndarray  # (n,)
    return_propensity: np.ndarray  # (n,) logit shift
    base_style: np.ndarray  # (n, D) float32


def make_customers(config: SimConfig, rng: np.random.Generator) -> Customers:
    n, d = config.n_customers, config.latent_dim
    age = np.clip(np.round(18 + rng.gamma(3.0, 6.0, size=n)), 18, 80)
    age_z = (age - 36.0) / 10.0
    size = rng.choice(len(SIZE_SHARE), size=n, p=SIZE_SHARE)
    rate = config.orders_per_year * np.exp(config.rate_spread * rng.normal(size=n))
    extra_items = rng.gamma(2.0, config.extra_items / 2.0, size=n)
    price_sensitivity = config.price_sensitivity * np.exp(0.5 * rng.normal(size=n) - 0.1 * age_z)
    return_propensity = rng.normal(0, config.return_spread, size=n)
    age_direction = rng.normal(
        0, 1 / math.sqrt(d), size=d
    )  # older and younger customers lean apart
    base_style = (
        rng.normal(0, 1 / math.sqrt(d), size=(n, d)) + 0.6 * age_z[:, None] * age_direction
    ) / math.sqrt(1.36)
    return Customers(
        age=age,
        size=size,
        rate=rate,
        extra_items=extra_items,
        price_sensitivity=price_sensitivity,
        return_propensity=return_propensity,
        base_style=base_style.astype(np.float32),
    )
