"""The words a range of times allows: "faster" only when the timed calls separate.

The timings themselves come from :func:`gpa_lib.measure.median_time` (and peak memory from
:func:`gpa_lib.measure.peak_memory`); here every comparison is worded from the range over all pairs
of timed calls, never from two medians alone.
"""

from __future__ import annotations

import math
import statistics
from typing import Any


def ratio_range(slow_times_s: list[float], fast_times_s: list[float]) -> tuple[float, float]:
    """The least and largest ratio ``slow / fast`` any pair of timed calls allows."""
    return min(slow_times_s) / max(fast_times_s), max(slow_times_s) / min(fast_times_s)


def speed_words(a_times_s: list[float], b_times_s: list[float], a: str, b: str) -> dict[str, Any]:
    """How ``a`` compares with ``b`` in time, worded only as far as the timed calls allow.

    The ratio ``b / a`` is given as the range over every pair of calls (``lo``, ``hi``) and as the
    ratio of the medians (``ratio``). ``word`` is ``"faster"`` (``a`` faster) only when the whole
    range lies above 1, ``"slower"`` only when it lies below 1, else ``"not separated"``; with fewer
    than two calls on either side there is no range and the word is ``"not separated"`` too.
    ``phrase`` is a sentence part such as ``"`cpu` is 2.1× to 2.6× faster than `sdpa`"``.
    """
    lo, hi = ratio_range(b_times_s, a_times_s)
    ratio = statistics.median(b_times_s) / statistics.median(a_times_s)
    enough = min(len(a_times_s), len(b_times_s)) >= 2
    word = "not separated"
    if enough and lo > 1:
        word, phrase = "faster", f"`{a}` is {lo:.2g}× to {hi:.2g}× faster than `{b}`"
    elif enough and hi < 1:
        word, phrase = "slower", f"`{a}` takes {1 / hi:.2g}× to {1 / lo:.2g}× the time of `{b}`"
    elif enough:
        phrase = (
            f"`{a}` and `{b}` are not separated in time "
            f"(`{b}` / `{a}` between {lo:.2g}× and {hi:.2g}× over the timed calls)"
        )
    else:
        calls = min(len(a_times_s), len(b_times_s))
        phrase = (
            f"`{a}` and `{b}` are not separated in time: {calls} timed call, no range "
            f"(`{b}` / `{a}` {ratio:.2g}× in that call)"
        )
    return {"word": word, "phrase": phrase, "ratio": ratio, "lo": lo, "hi": hi}


def growth_words(tokens: list[int], times_s: list[list[float]], name: str) -> dict[str, Any]:
    """Whether the time of ``name`` grows linearly or quadratically in the tokens, from the calls
    timed at the fewest and the most tokens.

    The log-log slope between those two sizes ranges over every pair of calls (``lo``, ``hi``);
    ``word`` is ``"linear"`` when the whole range lies below 1.5 (closer to slope 1 than 2),
    ``"quadratic"`` when it lies above 1.5, else ``"not separated"``.
    """
    order = sorted(range(len(tokens)), key=tokens.__getitem__)
    first, last = order[0], order[-1]
    span = math.log(tokens[last] / tokens[first])
    lo_ratio, hi_ratio = ratio_range(times_s[last], times_s[first])
    lo, hi = math.log(lo_ratio) / span, math.log(hi_ratio) / span
    enough = min(len(times_s[first]), len(times_s[last])) >= 2 and len(tokens) >= 2
    word = "not separated"
    if enough and hi < 1.5:
        word = "linear"
    elif enough and lo > 1.5:
        word = "quadratic"
    return {"word": word, "lo": lo, "hi": hi, "name": name}
