"""Fashion sales data and recommenders, in four layers that import only downwards:

- :mod:`gpa_lib.recsys.data`: the :class:`SalesData` model, Parquet save/load, the H&M loader,
  store statistics, a toy store for tests;
- :mod:`gpa_lib.recsys.sim`: the fashion-store simulator with ground truth (the default data);
- :mod:`gpa_lib.recsys.models`: the recommenders behind one contract, and their named settings;
- :mod:`gpa_lib.recsys.eval`: metrics, backtests (:mod:`gpa_lib.recsys.eval.backtest`), experiments
  and the chapters' tables and figures.
"""

from gpa_lib.recsys.data import ARTICLE_ATTRIBUTES, SIZES, SalesData, load, load_hm, save
from gpa_lib.recsys.sim import (
    STORE_PRESETS,
    SimConfig,
    SimTruth,
    simulate,
    simulate_config,
    simulate_preset,
)

__all__ = [
    "ARTICLE_ATTRIBUTES",
    "STORE_PRESETS",
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
