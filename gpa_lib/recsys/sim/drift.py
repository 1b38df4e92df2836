"""The moving part of customer styles (an AR(1) walk per week), replayable from its seed."""

from __future__ import annotations

import contextlib
import math

import torch

from gpa_lib.recsys.sim.config import SimConfig


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


class DriftWalk:
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
