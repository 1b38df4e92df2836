"""The protocol: block bootstrap over cutoffs, customers and seeds; the oracle; the tuning budget."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch

from gpa_lib.recsys.eval.backtest import BacktestConfig, evaluate, test_window
from gpa_lib.recsys.eval.metrics import bootstrap_ci
from gpa_lib.recsys.eval.oracle import SimulatorOracle
from gpa_lib.recsys.eval.protocol import (
    SEARCH_SPACE,
    ProtocolConfig,
    block_bootstrap,
    validation_cutoff,
)
from gpa_lib.recsys.models import MODEL_CLASSES, Popularity
from gpa_lib.recsys.sim import simulate_preset

torch.set_num_threads(1)
test_window.__test__ = False


def test_one_cutoff_one_seed_is_the_customer_bootstrap():
    values = np.random.default_rng(0).normal(0.6, 0.1, size=2000)
    boot = block_bootstrap({"m": [values[None, :]]}, n_boot=400, seed=1)
    stats = boot.stats("m")
    interval = bootstrap_ci(values, n_boot=400, seed=1)
    assert stats["mean"] == pytest.approx(interval.estimate)
    assert stats["hi"] - stats["lo"] == pytest.approx(interval.hi - interval.lo, rel=0.25)


def test_cutoffs_and_seeds_widen_the_interval():
    rng = np.random.default_rng(0)
    steady = [rng.normal(0.5, 0.1, size=(1, 1500)) for _ in range(6)]
    moving = [v + shift for v, shift in zip(steady, np.linspace(-0.1, 0.1, 6), strict=True)]
    seeds = [np.concatenate([v - 0.05, v, v + 0.05]) for v in steady]
    boot = block_bootstrap({"steady": steady, "moving": moving, "seeds": seeds}, n_boot=300)
    width = {k: boot.stats(k)["hi"] - boot.stats(k)["lo"] for k in ("steady", "moving", "seeds")}
    assert width["moving"] > 3 * width["steady"] and width["seeds"] > 2 * width["steady"]
    # paired: a model against itself plus a constant has a zero-width gap
    shifted = [v + 0.01 for v in steady]
    boot = block_bootstrap({"a": shifted, "b": steady}, n_boot=100)
    gap = boot.gap("a", "b")
    assert gap["lo"] == pytest.approx(0.01) and gap["hi"] == pytest.approx(0.01)
    assert gap["excludes_zero"]


def test_nan_values_are_left_out():
    values = [np.array([[0.2, np.nan, 0.4] * 10]), np.array([[np.nan, 0.6] * 10])]
    boot = block_bootstrap({"m": values}, n_boot=50)
    assert boot.point["m"] == pytest.approx((0.2 * 10 + 0.4 * 10 + 0.6 * 10) / 30)
    assert np.isfinite(boot.replicates["m"]).all()
    assert 0.2 - 1e-9 <= boot.stats("m")["lo"] <= boot.stats("m")["hi"] <= 0.6 + 1e-9


def test_every_model_gets_the_same_search_budget():
    for profile, space in SEARCH_SPACE.items():
        assert set(space) == set(MODEL_CLASSES), profile
        assert len({len(settings) for settings in space.values()}) == 1, profile


@pytest.fixture(scope="module")
def store():
    return simulate_preset("test", progress=False, n_customers=1_500, n_weeks=40)


def test_validation_cutoff_comes_before_the_test_cutoffs(store):
    config = ProtocolConfig(n_cutoffs=3, test_weeks=4, step_weeks=4)
    cutoff = validation_cutoff(store, config)
    first = store.end.normalize() + pd.Timedelta(days=1) - pd.Timedelta(weeks=4 + 2 * 4)
    assert cutoff + pd.Timedelta(weeks=4) == first
    with pytest.raises(ValueError, match="validation cutoff"):
        validation_cutoff(store, ProtocolConfig(n_cutoffs=9))


def test_the_oracle_is_the_ceiling(store):
    cutoff = store.end.normalize() + pd.Timedelta(days=1) - pd.Timedelta(weeks=4)
    window = test_window(store, cutoff, 4)
    past = store.window(end=cutoff)
    oracle = SimulatorOracle(store.truth).fit(past, until=cutoff)
    popularity = Popularity().fit(past, until=cutoff)
    for model_slice in ("all", "cold", "warm"):
        ours = evaluate(oracle.score(window.customers, window.candidates), window)
        base = evaluate(popularity.score(window.customers, window.candidates), window)
        for metric in ("auc", "map@12"):
            assert np.nanmean(ours[model_slice, metric]) > np.nanmean(base[model_slice, metric])
    with pytest.raises(TypeError, match="truth must be the SimTruth"):
        SimulatorOracle(None)


def test_report_words_follow_the_numbers():
    from gpa_lib.recsys.eval.report import compare_word, gap_sentence, overlap_verdict, verdict

    row = {"a": "lstm", "b": "static_cf", "metric": "auc", "diff": -0.02, "lo": -0.03, "hi": -0.01}
    assert gap_sentence(row) == "LSTM is behind static CF by 0.020 AUC (interval -0.030 to -0.010)"
    assert "ahead of" in gap_sentence({**row, "diff": 0.02, "lo": 0.01, "hi": 0.03})
    assert "not separated" in gap_sentence({**row, "hi": 0.01})
    assert verdict(0.1, 0.2) == "above zero" and verdict(-0.1, 0.2) == "includes zero"
    assert compare_word(0.71, 0.70) == "higher" and compare_word(0.7001, 0.7) == "the same"
    assert (
        overlap_verdict({"lo": 0.5, "hi": 0.6}, {"lo": 0.55, "hi": 0.7}) == "the intervals overlap"
    )


def test_glue_all_hands_plain_python_numbers(monkeypatch):
    import sys
    import types

    from gpa_lib.glue import glue_all

    seen = {}
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda key, value, display=True: seen.__setitem__(key, value)
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    glue_all({"a": np.float64(0.5), "b": np.int64(3), "c": "text"})
    assert seen == {"a": 0.5, "b": 3, "c": "text"}
    assert type(seen["a"]) is float and type(seen["b"]) is int


def test_full_grids_give_every_model_the_same_trials_and_popularity_1_to_28_days():
    from gpa_lib.recsys.eval.protocol import SEARCH_SPACE

    sizes = {name: len(settings) for name, settings in SEARCH_SPACE["full"].items()}
    assert set(sizes.values()) == {9}, sizes
    windows = [s["window_days"] for s in SEARCH_SPACE["full"]["popularity"]]
    assert (min(windows), max(windows)) == (1, 28)


def test_grid_edges_names_the_axes_where_the_choice_is_extreme():
    from gpa_lib.recsys.eval.protocol import _grid, grid_edges

    grid = _grid(hidden=(32, 64, 128), lr=(1e-3, 3e-3, 1e-2), loss=("warp",))
    assert grid_edges(grid, {"hidden": 64, "lr": 3e-3, "loss": "warp"}) == {}
    assert grid_edges(grid, {"hidden": 128, "lr": 1e-3, "loss": "warp"}) == {
        "hidden": "high",
        "lr": "low",
    }
    assert grid_edges(_grid(a=(1, 2)), {"a": 2}) == {}  # two values: every choice is an edge
    assert grid_edges(grid, None) == {}


#: The fields and defaults of the two configs as they were before they shared
#: ``EvaluationConfig``: the stored ``spec.protocol`` and ``config`` records hold these.
PROTOCOL_DEFAULTS = {
    "n_cutoffs": 6,
    "test_weeks": 4,
    "step_weeks": 4,
    "seeds": (0, 1, 2),
    "max_customers": 10_000,
    "k": 12,
    "tune_metric": "map@12",
    "n_boot": 500,
    "level": 0.95,
    "seed": 0,
    "recent_weeks": 4,
    "candidate_rule": "auto",
    "exclude_seen": False,
    "min_history_weeks": 4,
    "min_steps": None,
}
BACKTEST_DEFAULTS = {
    "n_cutoffs": 3,
    "test_weeks": 4,
    "step_weeks": 4,
    "cutoffs": None,
    "max_customers": 10_000,
    "k": 12,
    "n_boot": 500,
    "level": 0.95,
    "seed": 0,
    "recent_weeks": 4,
    "candidate_rule": "auto",
    "exclude_seen": False,
}


def test_protocol_and_backtest_configs_keep_their_fields_and_defaults():
    assert asdict(ProtocolConfig()) == PROTOCOL_DEFAULTS
    assert asdict(BacktestConfig()) == BACKTEST_DEFAULTS
    shared = {k: v for k, v in BACKTEST_DEFAULTS.items() if k != "cutoffs"}
    custom = {
        "n_cutoffs": 2,
        "test_weeks": 1,
        "step_weeks": 2,
        "max_customers": None,
        "k": 5,
        "n_boot": 7,
        "level": 0.9,
        "seed": 3,
        "recent_weeks": 2,
        "candidate_rule": "ever_sold",
        "exclude_seen": True,
    }
    assert set(custom) == set(shared)  # every shared field is set to a non-default value
    config = ProtocolConfig(**custom, seeds=(4,), tune_metric="auc", min_steps=9)
    assert asdict(config) == {
        **PROTOCOL_DEFAULTS,
        **custom,
        "seeds": (4,),
        "tune_metric": "auc",
        "min_steps": 9,
    }
    assert asdict(config.backtest()) == {**custom, "cutoffs": None}


def test_protocol_config_names_bad_arguments():
    with pytest.raises(ValueError, match="n_boot=0 must be at least 1"):
        ProtocolConfig(n_boot=0)
    with pytest.raises(ValueError, match="candidate_rule='nope'"):
        ProtocolConfig(candidate_rule="nope")
    with pytest.raises(ValueError, match="seeds is empty"):
        ProtocolConfig(seeds=())
    with pytest.raises(TypeError):
        ProtocolConfig(6)  # keywords only: the field order is not part of the contract
