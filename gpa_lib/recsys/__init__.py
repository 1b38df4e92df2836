"""Fashion sales data and recommenders.

- :mod:`gpa_lib.recsys.data`: the :class:`SalesData` model, Parquet save/load, validation, ``load_hm``.
- :mod:`gpa_lib.recsys.simulate`: the fashion-store simulator with ground truth (the default data).
- :mod:`gpa_lib.recsys.store_stats`: weekly sales, returns, baskets, article life, season and trend
  shares, and their plots, for the chapters and the tests.
"""

from gpa_lib.recsys.data import ARTICLE_ATTRIBUTES, SIZES, SalesData, load, load_hm, save
from gpa_lib.recsys.simulate import (
    PRESETS,
    SimConfig,
    SimTruth,
    simulate,
    simulate_config,
    simulate_preset,
)

__all__ = [
    "ARTICLE_ATTRIBUTES",
    "PRESETS",
    "SIZES",
    "SalesData",
    "SimConfig",
    "SimTruth",
    "load",
    "load_hm",
    "save",
    "simulate",
    "simulate_config",
    "simulate_preset",
]
