"""The analyses behind the chapters' claims give the right answer where it is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpa_lib.recsys.eval.dna_claims import (
    angle_agreement,
    matched_outside_gap,
    purchase_calibration,
)
from gpa_lib.recsys.eval.tracking import style_tracking
from gpa_lib.recsys.sim import simulate


def test_calibration_recovers_true_probabilities():
    rng = np.random.default_rng(0)
    logit = rng.normal(-3, 1.5, size=(400, 60))
    bought = rng.random(logit.shape) < 1 / (1 + np.exp(-logit))
    result = purchase_calibration(
        {"true": logit, "noise": rng.normal(size=logit.shape)},
        bought,
        raw=("true",),
        gaps=(("true (recalibrated)", "noise (recalibrated)"),),
    )
    models = result["models"]
    (paired,) = result["gaps"]  # the true probabilities have the lower log-loss, paired
    assert paired["hi"] < 0 and paired["lo"] <= paired["diff"] <= paired["hi"]
    assert paired["diff"] == pytest.approx(
        models["true (recalibrated)"]["log_loss"]["mean"]
        - models["noise (recalibrated)"]["log_loss"]["mean"]
    )
    with pytest.raises(ValueError, match=r"gaps name \['nope'\]"):
        purchase_calibration({"true": logit}, bought, gaps=(("nope", "true (recalibrated)"),))
    assert (
        models["true (raw)"]["log_loss"]["mean"]
        < models["noise (recalibrated)"]["log_loss"]["mean"]
    )
    a, b = models["true (recalibrated)"]["platt"]
    assert abs(a - 1) < 0.15 and abs(b) < 0.4
    for entry in models["true (raw)"]["bins"]:
        assert abs(entry["predicted"] - entry["observed"]) < 0.05


def test_angle_agreement_is_one_for_a_rotation_and_chance_for_noise():
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(120, 6))
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    same = angle_agreement(latent @ rotation, latent, n_neighbours=5, n_boot=20)
    assert same["spearman"]["mean"] > 0.999 and same["neighbour_overlap"]["mean"] == 1.0
    noise = angle_agreement(rng.normal(size=(120, 6)), latent, n_neighbours=5, n_boot=20)
    assert abs(noise["spearman"]["mean"]) < 0.1 and noise["neighbour_overlap"]["mean"] < 0.2


def test_matched_gap_removes_a_difference_in_activity():
    """Outside customers have fewer orders, and AUC rises with orders; matched, the gap is zero."""
    rng = np.random.default_rng(2)
    orders = np.r_[rng.integers(1, 4, 3000), rng.integers(3, 8, 3000)]
    inside = np.r_[np.zeros(3000, bool), np.ones(3000, bool)]
    auc = 0.5 + 0.05 * orders + rng.normal(0, 0.05, 6000)
    result = matched_outside_gap(auc, inside, orders, n_boot=100)
    assert result["gap"]["lo"] < 0 < result["gap"]["hi"]
    assert auc[~inside].mean() - auc[inside].mean() < -0.1  # the raw gap is large


def test_style_tracking_scores_the_true_style_near_one():
    data = simulate(600, 30, 0, progress=False, articles_per_week=10, image_size=0)
    until = pd.Timestamp(data.truth.config.start) + pd.Timedelta(weeks=26)
    week = (until - pd.Timestamp(data.truth.config.start)).days // 7
    true = data.truth.customer_style(week)
    rng = np.random.default_rng(0)
    mixed = true @ rng.normal(size=(true.shape[1], true.shape[1]))  # an invertible linear map
    result = style_tracking(
        data, {"truth": mixed, "noise": rng.normal(size=true.shape)}, until, n_boot=20
    )
    assert result["models"]["truth"]["r2"]["mean"] > 0.9  # ridge shrinkage on 300 customers
    assert result["models"]["noise"]["r2"]["mean"] < 0.05
    assert result["gaps"]["truth-noise"]["r2"]["lo"] > 0.8
