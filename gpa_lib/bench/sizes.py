"""The cost model's sizes for a benchmark config: one builder for every benchmark, whose home is
:mod:`gpa_lib.attention.analysis.benchmark` (re-exported for the benchmark scripts)."""

from __future__ import annotations

from gpa_lib.attention.analysis.benchmark import square_sizes as square_sizes
