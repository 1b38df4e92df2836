"""The backtest's public names where they always were; the code lives in :mod:`gpa_lib.recsys.eval.backtest`."""

from gpa_lib.recsys.eval.backtest import (
    METRIC_NAMES,
    RECENT_WEEKS,
    SEGMENTS,
    SLICES,
    BacktestConfig,
    BacktestResult,
    ModelFactory,
    TestWindow,
    candidates_at,
    evaluate,
    metric_names,
    rolling_cutoffs,
    run_backtest,
    test_window,
)

__all__ = [
    "METRIC_NAMES",
    "RECENT_WEEKS",
    "SEGMENTS",
    "SLICES",
    "BacktestConfig",
    "BacktestResult",
    "ModelFactory",
    "TestWindow",
    "candidates_at",
    "evaluate",
    "metric_names",
    "rolling_cutoffs",
    "run_backtest",
    "test_window",
]
