"""Measuring what the complexity model predicts: peak extra memory and wall time of a call.

Peak extra memory is the largest amount of tensor memory allocated during the call on top of what was
allocated before it, output included. On CUDA it comes from the caching allocator's statistics; on
CPU from the PyTorch profiler's memory events (every allocation and free of the CPU allocator, in
order), whose running sum peaks at the answer.
"""

from __future__ import annotations

import contextlib
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
