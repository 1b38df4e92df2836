"""Utility terms outside the models' form (``SimConfig.misspecified``).

The default utility is the form the models assume: ``style . latent`` (with the latent linear in
one-hot attributes plus noise), an article's appeal, novelty ``exp(-age / novelty_weeks)`` and
seasonal and trend terms shared by everyone. With ``misspecified = m > 0`` two terms no such model can
represent are added to every utility ``u[c, a]`` on day ``t``:

- **pairwise attribute tastes**: each customer belongs to one of :data:`N_SEGMENTS` segments, and each
  segment has its own utility for every (category, colour) pair,
  ``m * affinity_scale * T[segment_c, category_a, colour_a]`` with ``T ~ N(0, 1)``: a taste for
  a combination that is not the sum of a taste for the category and one for the colour (a linear map
  of one-hot attributes dotted with a style cannot represent it);
- **demand bursts**: a share :data:`BURST_SHARE` of the articles has one burst week, drawn uniformly
  within its planned life after its launch week, in which its utility rises by ``m * BURST_HEIGHT``
  for everyone: a peak that is not the monotone novelty decay and that no attribute predicts.

Everything is drawn from its own seeded stream, and nothing is drawn or added when ``m = 0``, so the
stores of before are the stores of now, bit for bit (``tests/test_recsys_sim_misspecified.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpa_lib.recsys.sim.vocabulary import CATEGORIES, COLOURS

N_SEGMENTS = 8  # customer segments with their own (category, colour) tastes
BURST_SHARE = 0.3  # share of articles with one burst week
BURST_HEIGHT = 2.0  # utility added in the burst week, per unit of misspecified


@dataclass
class Misspecification:
    """The drawn terms of one store; :meth:`utility` is their sum for a day's buyers and articles."""

    scale: float  # SimConfig.misspecified
    affinity_scale: float  # SimConfig.affinity_scale: the pairwise tastes are on the taste scale
    customer_segment: np.ndarray  # (n_customers,) int64 in [0, N_SEGMENTS)
    pair_taste: np.ndarray  # (N_SEGMENTS, n_categories, n_colours) float64, standard normal
    burst_day: np.ndarray  # (n_articles,) int64 first day of the burst week, -1 for no burst

    def utility(
        self,
        buyers: np.ndarray,
        category: np.ndarray,
        colour: np.ndarray,
        live: np.ndarray,
        day: int,
    ) -> np.ndarray:
        """``(B, L)`` float64 utility of the ``buyers`` for the ``live`` articles (their
        ``category`` and ``colour`` codes, ``(L,)`` each) on ``day``."""
        pair = self.pair_taste[self.customer_segment[buyers]][:, category, colour]  # (B, L)
        start = self.burst_day[live]
        burst = (start >= 0) & (start <= day) & (day < start + 7)  # (L,)
        return self.scale * (self.affinity_scale * pair + BURST_HEIGHT * burst[None, :])


def make_misspecification(
    config, launch_day: np.ndarray, shelf_weeks: np.ndarray, seed: np.random.SeedSequence
) -> Misspecification:
    """Draw the terms of :class:`Misspecification` for ``config`` (a ``SimConfig`` with
    ``misspecified > 0``) and the catalogue's ``launch_day`` and ``shelf_weeks`` ``(n_articles,)``."""
    if config.misspecified <= 0:
        raise ValueError(f"misspecified={config.misspecified!r} must be > 0 to draw its terms")
    rng = np.random.default_rng(seed)
    segment = rng.integers(0, N_SEGMENTS, size=config.n_customers)
    pair_taste = rng.normal(size=(N_SEGMENTS, len(CATEGORIES), len(COLOURS)))
    n_articles = len(launch_day)
    has_burst = rng.random(n_articles) < BURST_SHARE
    # a week after the launch week and before the planned end (none for one-week lives)
    offset_weeks = 1 + np.floor(rng.random(n_articles) * np.maximum(shelf_weeks - 1, 0))
    has_burst &= shelf_weeks > 1
    burst_day = np.where(has_burst, launch_day + 7 * offset_weeks.astype(np.int64), -1)
    return Misspecification(
        scale=float(config.misspecified),
        affinity_scale=float(config.affinity_scale),
        customer_segment=segment.astype(np.int64),
        pair_taste=pair_taste,
        burst_day=burst_day.astype(np.int64),
    )
