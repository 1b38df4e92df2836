"""Ground truth of one simulation: what the models never see and the analyses compare them with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gpa_lib.recsys.sim.config import SimConfig
from gpa_lib.recsys.sim.drift import DriftWalk, single_thread


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
    # (n_articles, D) the part of z_a only the image shows, before its weight sqrt(image_share):
    # z_a = sqrt(attribute_share) * attribute part + sqrt(image_share) * this + noise (0s at share 0)
    article_image_latent: np.ndarray
    article_image_hidden: np.ndarray  # (n_articles, K) the hidden values images.IMAGE_HIDDEN draws
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
    # the terms outside the models' form (a misspecified.Misspecification), None when misspecified=0
    misspecification: Any = None

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
            walk = DriftWalk(self.config, len(base), self.drift_seed)
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
