"""The ceiling of a backtest: the simulator's own choice model, with the true state at the cutoff.

:class:`SimulatorOracle` follows the recommender contract but reads the simulator's
:class:`~gpa_lib.recsys.sim.truth.SimTruth`, handed to it at construction (a backtest's window has
no truth). It scores an article for a customer by the utility the simulator draws purchases from
(``gpa_lib.recsys.sim.days``): the true style in the last week before the cutoff against the true
article latent, plus the article's popularity, novelty, season, colour and pattern trend, and the
customer's price sensitivity. Article terms are taken ``horizon_days`` after the cutoff (the middle
of a 4-week window by default), so an article launched in the window gets its launch-week novelty.
What it leaves out: stock per size, the customer's recent purchases (never bought again), the
Gumbel noise of each choice, and the drift of styles after the cutoff.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.models.base import History, Recommender
from gpa_lib.recsys.sim.truth import SimTruth
from gpa_lib.recsys.sim.world import CATEGORY_TABLE


class SimulatorOracle(Recommender):
    """The simulator's utility with the true state at the cutoff (see the module docstring)."""

    name = "oracle"
    cold_articles = True

    def __init__(
        self,
        truth: SimTruth,
        horizon_days: int = 14,
        *,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(random_state=random_state, progress=progress)
        if not isinstance(truth, SimTruth):
            raise TypeError(
                f"truth must be the SimTruth of simulated data (data.truth), got {type(truth).__name__}"
            )
        self.truth, self.horizon_days = truth, int(horizon_days)

    def _fit(self, history: History, data: SalesData) -> None:
        truth, config = self.truth, self.truth.config
        if len(data.articles) != len(truth.article_latent):
            raise ValueError(
                f"data has {len(data.articles)} articles, the truth {len(truth.article_latent)}: "
                "pass the truth of the simulation the data came from"
            )
        start = pd.Timestamp(config.start)
        cutoff_day = int((history.until - start).days)
        week = int(np.clip((cutoff_day - 1) // 7, 0, config.n_weeks - 1))  # last week before
        day = int(np.clip(cutoff_day + self.horizon_days, 0, config.n_days - 1))
        articles = data.articles
        category = articles["category"].cat.codes.to_numpy()
        colour = articles["colour"].cat.codes.to_numpy()
        pattern = articles["pattern"].cat.codes.to_numpy()
        launch_day = (articles["launch"] - start).dt.days.to_numpy()
        age_weeks = np.maximum(day - launch_day, 0) / 7.0
        marked_down = day >= launch_day + 7 * config.markdown_weeks
        price = articles["list_price"].to_numpy() * np.where(marked_down, 1 - config.markdown, 1.0)
        category_price = np.array([row[1] for row in CATEGORY_TABLE.values()])[category]
        self.article_term_ = torch.from_numpy(
            truth.article_popularity.astype(np.float64)
            + config.novelty_boost * np.exp(-age_weeks / config.novelty_weeks)
            + config.season_scale * truth.category_season[category] * truth.season[day]
            + truth.colour_trend[week, colour]
            + truth.pattern_trend[week, pattern]
        ).float()  # (n_articles,)
        self.log_relative_price_ = torch.from_numpy(np.log(price / category_price)).float()
        scale = config.affinity_scale * math.sqrt(config.latent_dim)
        self.style_ = torch.from_numpy(scale * truth.customer_style(week))  # (n_customers, D)
        self.latent_ = torch.from_numpy(truth.article_latent)  # (n_articles, D)
        self.sensitivity_ = torch.from_numpy(truth.customer_price_sensitivity).float()

    def _score(self, customer_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        rows, cols = torch.from_numpy(customer_rows), torch.from_numpy(article_rows)
        affinity = self.style_[rows] @ self.latent_[cols].T  # (n_customers, n_articles)
        price = self.sensitivity_[rows, None] * self.log_relative_price_[None, cols]
        return (affinity + self.article_term_[None, cols] - price).numpy()
