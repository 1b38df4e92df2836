"""The one home of measurement: the timer, the peak-memory helper and the machine's ceilings.

- :func:`median_time`: seconds per call of a function after a warm-up, on the CPU clock or with CUDA
  events. Every timing of the library and of ``python -m gpa_lib.bench`` goes through it, and every
  timing it returns is in seconds (a stored record that predates it may keep its own unit: the
  kernel benchmark stores milliseconds, converted at the point of storing).
- :func:`time_by_kernel`: where the time of a call goes, kernel by kernel (CUDA) or operator by
  operator (CPU), from the PyTorch profiler: what a speed-up has to start from.
- :func:`peak_memory`: the peak extra bytes a call allocates, on the CPU (PyTorch profiler memory
  events) or on CUDA (the caching allocator's statistics, :func:`cuda_peak`).
- :func:`calibrate_cpu` and :func:`measure_ceilings`: the matrix rate and the copy bandwidth a roofline
  floor divides by, measured on this CPU or GPU with that timer.

Peak extra memory is the largest amount of tensor memory allocated during the call on top of what was
allocated before it, output included. On CPU the profiler's memory events (every allocation and free
of the CPU allocator, in order) sum to a running total whose peak is the answer.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

# ----------------------------------------------------------------------------------- the timer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(
    fn: Callable[[], Any],
    *,
    device: str | torch.device = "cpu",
    warmup: int = 1,
    repeats: int = 5,
    budget_s: float | None = None,
    min_repeats: int = 1,
    max_call_s: float | None = None,
    warmup_s: float = 0.0,
    sample_s: float | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """Median seconds per call of ``fn()`` on ``device``, timed after a warm-up: the library's timer.

    Warm-up: ``warmup`` calls, each synchronised and timed on the CPU clock, continued until they
    took ``warmup_s`` seconds (with ``warmup=0`` there is none); a call after the first that is slower than ``max_call_s`` ends it.
    Timed: ``repeats`` samples, fewer (at least ``min_repeats``) when the last warm-up call shows
    that they would take longer than ``budget_s``; with ``seconds``, sampling goes on until that much
    time has passed too. A sample is one call, or with ``sample_s`` as many calls as take about that
    long (calls too short to time one by one), its time divided by its calls.

    The clock is a pair of CUDA events around the sample on a CUDA ``device`` (the GPU's time between
    them), else ``time.perf_counter`` around the synchronised sample.

    Returns ``median_s``, ``min_s``, ``times_s`` (seconds per call of every sample), ``repeats`` (the
    samples taken), ``calls_per_sample``, ``first_call_s`` (the first warm-up call, compilation
    included; None without warm-up) and ``timer`` (``"cuda events"`` or ``"perf_counter"``).
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    first_call_s = per_call_s = None
    calls = 0
    started = time.perf_counter()
    while calls < warmup or (calls and time.perf_counter() - started < warmup_s):
        tic = time.perf_counter()
        fn()
        _sync(device)
        per_call_s = time.perf_counter() - tic
        first_call_s = per_call_s if calls == 0 else first_call_s
        calls += 1
        if calls > 1 and max_call_s is not None and per_call_s > max_call_s:
            break
    if budget_s is not None and per_call_s and per_call_s * repeats > budget_s:
        repeats = min(repeats, max(min_repeats, int(budget_s / per_call_s)))
    per_sample = 1
    if sample_s is not None and per_call_s is not None:
        per_sample = max(1, round(sample_s / max(per_call_s, 1e-7)))
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < repeats or (seconds is not None and time.perf_counter() - began < seconds):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(per_sample):
                fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3 / per_sample)  # elapsed_time is in ms
        else:
            tic = time.perf_counter()
            for _ in range(per_sample):
                fn()
            _sync(device)
            times.append((time.perf_counter() - tic) / per_sample)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "times_s": times,
        "repeats": len(times),
        "calls_per_sample": per_sample,
        "first_call_s": first_call_s,
        "timer": "cuda events" if cuda else "perf_counter",
    }


def time_by_kernel(
    fn: Callable[[], Any], device: str | torch.device = "cpu", *, calls: int = 3, top: int = 12
) -> list[dict[str, Any]]:
    """Seconds per call of ``fn()`` by GPU kernel (CUDA ``device``) or by operator (CPU, self time),
    over ``calls`` calls after one warm-up call, from the PyTorch profiler; the ``top`` largest,
    largest first, then one ``"(others)"`` row with the rest. Each row: ``name``, ``s_per_call``,
    ``share`` (of the total), ``launches_per_call``.

    Profiled time is not :func:`median_time`'s: the profiler adds its own overhead on the CPU side,
    and the kernel times sum the device's busy time, not the wall time between the first launch and
    the last. Read the shares, and time with :func:`median_time`.
    """
    from torch.profiler import ProfilerActivity, profile

    if calls < 1:
        raise ValueError(f"calls={calls} must be >= 1")
    device = torch.device(device)
    cuda = device.type == "cuda"
    fn()
    _sync(device)
    activities = [ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        for _ in range(calls):
            fn()
        _sync(device)
    rows = []
    for event in prof.key_averages():
        if cuda:
            if getattr(event, "device_type", None) != torch.autograd.DeviceType.CUDA:
                continue
            us = event.self_device_time_total
        else:
            us = event.self_cpu_time_total
        if us > 0:
            rows.append((event.key, us * 1e-6 / calls, event.count / calls))
    rows.sort(key=lambda row: -row[1])
    total = sum(row[1] for row in rows) or 1.0
    shown = [
        {"name": name, "s_per_call": s, "share": s / total, "launches_per_call": n}
        for name, s, n in rows[:top]
    ]
    rest = rows[top:]
    if rest:
        s = sum(row[1] for row in rest)
        n = sum(row[2] for row in rest)
        shown.append(
            {"name": "(others)", "s_per_call": s, "share": s / total, "launches_per_call": n}
        )
    return shown


# --------------------------------------------------------------------------------- peak memory


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


@contextlib.contextmanager
def cuda_peak(device: str | torch.device | None = None) -> Iterator[dict[str, int]]:
    """The CUDA caching allocator's peak within the ``with`` block, read on leaving it (also when the
    block raises) into the yielded dict: ``peak_bytes`` (allocated, absolute), ``peak_extra_bytes``
    (over what was allocated on entering) and ``peak_reserved_bytes``."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    memory: dict[str, int] = {}
    try:
        yield memory
    finally:
        torch.cuda.synchronize(device)
        peak = int(torch.cuda.max_memory_allocated(device))
        memory.update(
            peak_bytes=peak,
            peak_extra_bytes=peak - before,
            peak_reserved_bytes=int(torch.cuda.max_memory_reserved(device)),
        )


def peak_memory(fn: Callable[[], Any], device: str | torch.device = "cpu") -> tuple[Any, int]:
    """Run ``fn()`` once; return its result and the peak extra bytes allocated on ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        with cuda_peak(device) as memory:
            result = fn()
        return result, memory["peak_extra_bytes"]
    if device.type == "cpu":
        return _cpu_peak(fn)
    raise ValueError(
        f"device={device} is not supported; peak memory is measured on 'cpu' or 'cuda'"
    )


# ------------------------------------------------------------------------ the machine's ceilings


def calibrate_cpu(size: int = 512, repeats: int = 5) -> dict[str, float]:
    """Best achieved matmul rate (FLOP/s) and copy bandwidth (bytes/s) of this CPU, float32.

    The roofline time model of :mod:`~gpa_lib.attention.analysis.complexity` divides by these two numbers.
    The fastest of ``repeats`` runs is kept: on a shared machine that is closest to what it can do.
    """
    a, b = torch.randn(16, size, size), torch.randn(16, size, size)
    matmul = median_time(lambda: torch.bmm(a, b), warmup=1, repeats=repeats)["min_s"]
    src = torch.randn(16 * 2**20)  # 64 MiB of float32
    dst = torch.empty_like(src)
    copy = median_time(lambda: dst.copy_(src), warmup=1, repeats=repeats)["min_s"]
    return {"flops_per_s": 2.0 * 16 * size**3 / matmul, "bytes_per_s": 2.0 * src.numel() * 4 / copy}


def _ceiling_timing(fn: Callable[[], Any], device: torch.device, seconds: float) -> dict[str, Any]:
    """Samples of about 20 ms each for ``seconds``, after two calls and 0.3 s of warm-up; the fields a
    ``machine_*.json`` stores."""
    timing = median_time(
        fn, device=device, warmup=2, warmup_s=0.3, repeats=5, sample_s=0.02, seconds=seconds
    )
    return {
        "median_s": timing["median_s"],
        "min_s": timing["min_s"],
        "samples": timing["repeats"],
        "calls_per_sample": timing["calls_per_sample"],
        "timer": timing["timer"],
    }


def measure_matmul(
    n: int, dtype: torch.dtype, device: torch.device, seconds: float, seed: int = 0
) -> dict[str, Any]:
    """Rate of an ``n x n @ n x n`` product on random normal data (never zeros: they run faster)."""
    generator = torch.Generator(device=device).manual_seed(seed)
    a = torch.randn(n, n, generator=generator, device=device, dtype=dtype)
    b = torch.randn(n, n, generator=generator, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    timing = _ceiling_timing(lambda: torch.matmul(a, b, out=out), device, seconds)
    flops = 2.0 * n**3
    return {
        "n": n,
        "dtype": str(dtype).removeprefix("torch."),
        "flops_per_call": flops,
        **timing,
        "flops_per_s": flops / timing["median_s"],
        "best_flops_per_s": flops / timing["min_s"],
    }


def measure_copy(nbytes: int, device: torch.device, seconds: float) -> dict[str, Any]:
    """Bandwidth of ``dst.copy_(src)`` over ``nbytes``, counting bytes read plus bytes written."""
    # float32 elements: 2 GiB stays under 2**31 elements (no 64-bit indexing path needed).
    src = torch.randn(max(1, nbytes // 4), device=device)  # random, never zeros
    dst = torch.empty_like(src)
    nbytes = src.numel() * src.element_size()
    timing = _ceiling_timing(lambda: dst.copy_(src), device, seconds)
    moved = 2.0 * nbytes
    return {
        "bytes": nbytes,
        "bytes_moved_per_call": moved,
        **timing,
        "bytes_per_s": moved / timing["median_s"],
        "best_bytes_per_s": moved / timing["min_s"],
    }


def measure_ceilings(
    device: str | torch.device = "cuda",
    *,
    seconds: float = 10.0,
    matmul_n: int = 8192,
    copy_bytes: int = 2 * 2**30,
) -> dict[str, Any]:
    """The bf16 and fp32 matrix rates and the copy bandwidth, in about ``seconds`` of timing.

    fp32 runs as torch is set up (TF32 off by default: phase 1 of GPA runs in float32); the copy
    counts bytes read plus written. Each rate is the median over its samples.
    """
    device = torch.device(device)
    shares = {"bf16": 0.5, "fp32": 0.2, "copy": 0.3}
    bf16 = measure_matmul(matmul_n, torch.bfloat16, device, seconds * shares["bf16"])
    fp32 = measure_matmul(matmul_n, torch.float32, device, seconds * shares["fp32"])
    copy = measure_copy(copy_bytes, device, seconds * shares["copy"])
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        # The two numbers a roofline floor divides by (median rates).
        "bf16_flops_per_s": bf16["flops_per_s"],
        "bytes_per_s": copy["bytes_per_s"],
        "fp32_flops_per_s": fp32["flops_per_s"],
        "fp32_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "bf16_matmul": bf16,
        "fp32_matmul": fp32,
        "copy": copy,
    }
