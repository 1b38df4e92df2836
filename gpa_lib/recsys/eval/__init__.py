"""Evaluation: ranking metrics, temporal backtests, experiments, tables and figures for the chapters.

- :mod:`~gpa_lib.recsys.eval.metrics`: per-customer AUC, MAP, recall, NDCG; bootstrap intervals;
- :mod:`~gpa_lib.recsys.eval.backtest`: cutoffs, candidates on sale, :func:`run_backtest`;
- :mod:`~gpa_lib.recsys.eval.protocol`: the chapters' protocol (tuning, seeds, rolling cutoffs),
  :mod:`~gpa_lib.recsys.eval.bootstrap`: its block-bootstrap intervals and gaps;
- :mod:`~gpa_lib.recsys.eval.own_data`: the protocol on a user's folder, with settings sized to it;
- :mod:`~gpa_lib.recsys.eval.experiments`: the drift control and scoring times;
- :mod:`~gpa_lib.recsys.eval.analysis`: figures and tables; :mod:`~gpa_lib.recsys.eval.report`:
  the values the chapters glue.

Nothing is imported here, so that :mod:`gpa_lib.recsys.models` can use the metrics without
importing the backtest.
"""
