"""Measuring what the complexity model predicts: peak extra memory and wall time of a call.

Peak extra memory is the largest amount of tensor memory allocated during the call on top of what was
allocated before it, output included. On CUDA it comes from the caching allocator's statistics; on
CPU from the PyTorch profiler's memory events (every allocation and free of the CPU allocator, in
order), whose running sum peaks at the answer.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch


@contextlib.contextmanager
def _quiet_stderr():
    """Kineto prints profiler start/stop lines straight to file descriptor 2; hide those lines."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _cpu_peak(fn: Callable[[], Any]) -> tuple[Any, int]:
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=False)
    with _quiet_stderr():
        prof.__enter__()
    try:
        result = fn()
    finally:
        with _quiet_stderr():
            prof.__exit__(None, None, None)
    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == DeviceType.CPU
    ]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for event in events:
        current += event.nbytes()
        peak = max(peak, current)
    return result, peak


def _cuda_peak(fn: Callable[[], Any], device: torch.device) -> tuple[Any, int]:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    result = fn()
    torch.cuda.synchronize(device)
    return result, torch.cuda.max_memory_allocated(device) - before


def peak_memory(fn: Callable[[], Any], device: str | torch.device = "cpu") -> tuple[Any, int]:
    """Run ``fn()`` once; return its result and the peak extra bytes allocated on ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        return _cuda_peak(fn, device)
    if device.type == "cpu":
        return _cpu_peak(fn)
    raise ValueError(
        f"device={device} is not supported; peak memory is measured on 'cpu' or 'cuda'"
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(
    fn: Callable[[], Any],
    *,
    warmup: int = 1,
    repeats: int = 5,
    budget_s: float | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Median wall time of ``fn()`` in seconds after ``warmup`` untimed calls.

    ``budget_s`` caps the timed part: the number of repeats drops (to at least one) when the warm-up
    shows that ``repeats`` calls would take longer. Returns ``{"median_s", "times_s", "repeats"}``.
    """
    device = torch.device(device)
    warm_s = 0.0
    for _ in range(warmup):
        start = time.perf_counter()
        fn()
        _sync(device)
        warm_s = time.perf_counter() - start
    if budget_s is not None and warm_s > 0:
        repeats = max(1, min(repeats, int(budget_s / warm_s)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "times_s": times, "repeats": repeats}


def calibrate_cpu(size: int = 512, repeats: int = 5) -> dict[str, float]:
    """Best achieved matmul rate (FLOP/s) and copy bandwidth (bytes/s) of this CPU, float32.

    The roofline time model of :mod:`~gpa_lib.attention.analysis.complexity` divides by these two numbers.
    The fastest of ``repeats`` runs is kept: on a shared machine that is closest to what it can do.
    """
    a, b = torch.randn(16, size, size), torch.randn(16, size, size)
    matmul = min(median_time(lambda: torch.bmm(a, b), warmup=1, repeats=repeats)["times_s"])
    src = torch.randn(16 * 2**20)  # 64 MiB of float32
    dst = torch.empty_like(src)
    copy = min(median_time(lambda: dst.copy_(src), warmup=1, repeats=repeats)["times_s"])
    return {"flops_per_s": 2.0 * 16 * size**3 / matmul, "bytes_per_s": 2.0 * src.numel() * 4 / copy}


# ----------------------------------------------------------------- words a range of times allows


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
