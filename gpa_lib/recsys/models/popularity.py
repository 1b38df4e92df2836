"""The papers' popularity ranking: items sold in a recent window before the cutoff, the same for all."""

from __future__ import annotations

import numpy as np

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.models.base import History, Recommender


class Popularity(Recommender):
    """Score of an article = ``log1p(items sold in the last window_days days before the cutoff)``.

    Not personalised; articles not sold in the window (including every launch after the cutoff)
    score 0, tied at the bottom. ``random_state`` is accepted for the contract and unused.
    """

    name = "popularity"
    cold_articles = True  # scores every article (0 when it did not sell), never raises

    def __init__(
        self, window_days: int = 7, *, random_state: int = 0, progress: bool = False
    ) -> None:
        super().__init__(random_state=random_state, progress=progress)
        if window_days < 1:
            raise ValueError(f"window_days={window_days} must be at least 1")
        self.window_days = int(window_days)

    def _fit(self, history: History, data: SalesData) -> None:
        self.counts_ = history.article_counts(self.window_days)  # (n_articles,)

    def _score(self, customer_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        row = np.log1p(self.counts_[article_rows]).astype(np.float32)  # (n_articles,)
        return np.broadcast_to(row, (len(customer_rows), len(article_rows)))
