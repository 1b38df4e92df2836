"""The intervals of chapters 4 and 5's claims (dna_claims, tracking) are bit-identical to those the
committed results were made with: ``fixtures/claims_intervals_golden.json`` holds the output of the
code before the intervals moved to :mod:`gpa_lib.stats`, on small fixed inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from gpa_lib.recsys.eval.dna_claims import (
    angle_agreement,
    matched_outside_gap,
    purchase_calibration,
)
from gpa_lib.recsys.eval.tracking import style_tracking
from gpa_lib.recsys.sim import simulate

GOLDEN = Path(__file__).parent / "fixtures" / "claims_intervals_golden.json"


def _plain(x):
    """``x`` as JSON would read it back (tuples as lists, numpy scalars as Python numbers)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple | np.ndarray):
        return [_plain(v) for v in x]
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def claims_outputs() -> dict:
    rng = np.random.default_rng(0)
    logit = rng.normal(-2, 1.5, size=(60, 12))
    bought = rng.random(logit.shape) < 1 / (1 + np.exp(-logit))
    calibration = purchase_calibration(
        {"true": logit, "noise": rng.normal(size=logit.shape)},
        bought,
        raw=("true",),
        gaps=(("true (recalibrated)", "noise (recalibrated)"),),
        n_boot=30,
        seed=3,
    )
    latent = rng.normal(size=(40, 4))
    angle = angle_agreement(
        latent + rng.normal(0, 0.5, latent.shape), latent, n_neighbours=4, n_boot=30, seed=4
    )
    orders = rng.integers(1, 5, 300)
    inside = rng.random(300) < 0.6
    auc = 0.5 + 0.05 * orders + rng.normal(0, 0.05, 300)
    auc[::37] = np.nan
    matched = matched_outside_gap(auc, inside, orders, n_boot=50, seed=5)
    data = simulate(300, 30, 0, progress=False, articles_per_week=10, image_size=0)
    start = pd.Timestamp(data.truth.config.start)
    until = start + pd.Timedelta(weeks=26)
    true = data.truth.customer_style((until - start).days // 7)
    styles_rng = np.random.default_rng(1)
    styles = {
        "truth": true @ styles_rng.normal(size=(true.shape[1],) * 2),
        "noise": styles_rng.normal(size=true.shape),
    }
    tracking = style_tracking(data, styles, until, n_boot=25, seed=6)
    tracking = {k: v for k, v in tracking.items() if k not in ("fit_customers", "maps")}
    return _plain(
        {"calibration": calibration, "angle": angle, "matched": matched, "tracking": tracking}
    )


def test_claims_intervals_are_bit_identical_to_the_recorded_ones():
    assert claims_outputs() == json.loads(GOLDEN.read_text())
