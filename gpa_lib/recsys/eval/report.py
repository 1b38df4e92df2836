"""What the chapters glue: intervals and verdicts in words, computed here so notebooks only call.

Every function returns plain values (``{glue key: value}`` dicts or strings); :func:`glue_all`
hands such a dict to ``myst_nb.glue`` (imported only then, so the library works without the book
extras).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def verdict(lo: float, hi: float) -> str:
    """Where an interval ``[lo, hi]`` of a gap lies relative to zero, in words."""
    if lo > 0:
        return "above zero"
    if hi < 0:
        return "below zero"
    return "includes zero"


def interval_glue(key: str, stats: Mapping[str, Any], value: str = "diff") -> dict[str, float]:
    """``{key: stats[value], key_lo: stats["lo"], key_hi: stats["hi"]}`` as floats."""
    return {
        key: float(stats[value]),
        f"{key}_lo": float(stats["lo"]),
        f"{key}_hi": float(stats["hi"]),
    }


def glue_all(values: Mapping[str, Any]) -> None:
    """``myst_nb.glue(key, value, display=False)`` for every item (in a notebook only)."""
    from myst_nb import glue

    for key, value in values.items():
        glue(key, value, display=False)
