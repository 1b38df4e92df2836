"""Chapter 4's DNA chosen on the validation cutoff: from the data before the end of the validation
window only, with the simpler setting first among equals."""

from __future__ import annotations

import numpy as np
import pytest

from gpa_lib.recsys.eval.backtest import rolling_cutoffs
from gpa_lib.recsys.eval.dna_choice import (
    chapter_validation_cutoff,
    choose_dna,
    dna_settings,
    setting_label,
    variant_gap,
)
from gpa_lib.recsys.sim import simulate_preset

KW = {"models": "smoke", "params": {"image_dim": 0, "n_train_customers": 200}}
KW |= {"test_weeks": 4, "eval_customers": 200, "seed": 0}


@pytest.fixture(scope="module")
def data():
    return simulate_preset("smoke", seed=1, progress=False, image_size=0)


def test_the_validation_window_ends_where_the_test_window_starts(data):
    cutoff = chapter_validation_cutoff(data, 4)
    test_cutoff = rolling_cutoffs(data, 1, 4)[0]
    assert cutoff + np.timedelta64(28, "D") == test_cutoff


def test_data_after_the_validation_window_cannot_change_the_choice(data):
    cutoff = chapter_validation_cutoff(data, 4)
    settings = dna_settings(8, dims=(8, 16))
    full = choose_dna(data, cutoff, settings, **KW)
    # everything after the validation window removed: the same scores, the same choice
    cut = choose_dna(data.window(end=full.window_end), cutoff, settings, **KW)
    assert full.chosen == cut.chosen
    for a, b in zip(full.rows, cut.rows, strict=True):
        assert {k: v for k, v in a.items() if k != "fit_seconds"} == {
            k: v for k, v in b.items() if k != "fit_seconds"
        }
    assert full.to_dict()["chosen_label"] == setting_label(full.chosen)
    assert full.chosen in (full.best_linear, full.best_deep)
    assert full.best_linear["hidden"] == 0 and full.best_deep["hidden"] == 8


def test_settings_put_the_linear_map_first_and_name_bad_depth():
    assert dna_settings(32, dims=(16,)) == [
        {"hidden": 0, "dna_dim": 16},
        {"hidden": 32, "dna_dim": 16},
    ]
    assert setting_label({"hidden": 0, "dna_dim": 16}) == "linear, 16 dimensions"
    with pytest.raises(ValueError, match="deep_hidden=0"):
        dna_settings(0)


def test_variant_gap_is_paired_over_customers():
    rng = np.random.default_rng(0)
    base = {key: rng.random(100) for key in (("all", "map@12"), ("cold", "auc"), ("warm", "auc"))}
    shifted = {key: value + 0.1 for key, value in base.items()}
    gaps = variant_gap(shifted, base, n_boot=100)
    for interval in gaps.values():
        assert interval.estimate == pytest.approx(0.1)
        assert interval.lo == pytest.approx(0.1) and interval.hi == pytest.approx(0.1)
        assert "customers" in interval.method
