"""``python -m gpa_lib.bench kernel``: the fused GPA CUDA kernel against the general-purpose options.

The command line over :mod:`gpa_lib.attention.analysis.kernel_bench`, whose docstring lists the
methods and how each is timed (median CUDA-event times, peak memory, phase 2's floor at the ceilings
of a ``machine_*.json`` given with ``--machine-json``, else at the stored H200 ones, and the kernel's
error against the reference). JSON with provenance (device, driver, torch, commit, date) goes to
``data/results/kernel_bench_<gpu>[_quick].json`` (``$GPA_LIB_RESULTS_DIR`` to put it elsewhere),
rewritten after every measurement with ``"complete": false`` until the run ends, so that a run killed
from outside leaves what it measured. Without a CUDA GPU it says so and writes nothing; ``--show
JSON`` prints the table of a stored result on any machine.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from gpa_lib.attention.analysis.kernel_bench import (
    KERNEL_BENCH_PRESETS,
    METHODS,
    PASSES,
    KernelBenchConfig,
    run_kernel_bench,
)
from gpa_lib.attention.analysis.kernel_results import format_table
from gpa_lib.attention.analysis.stored import read_ceilings
from gpa_lib.results import (
    driver_version,
    gpu_slug,
    gpu_unavailable_reason,
    run_identity,
    write_result,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="256^2 only, fewer warm-up calls")
    parser.add_argument("--sizes", type=int, nargs="+", help="grid sides to run (tokens per side)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, help="subset of methods to run")
    parser.add_argument("--passes", nargs="+", choices=PASSES, help="fwd and/or fwd+bwd")
    parser.add_argument(
        "--repeats", type=int, help="timed calls per measurement (at least 20 for the book)"
    )
    parser.add_argument("--affinity", choices=("dot", "euclid"), help="affinity (default dot)")
    parser.add_argument(
        "--max-call-s",
        type=float,
        help="calls slower than this get fewer repeats (at least 3; default 10)",
    )
    parser.add_argument(
        "--time-budget-s",
        type=float,
        help="start no measurement after this many seconds; the rest is recorded as skipped",
    )
    parser.add_argument(
        "--machine-json",
        help="a machine_*.json of python -m gpa_lib.bench machine: floors at its measured ceilings",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")
    parser.add_argument(
        "--show", metavar="JSON", help="print the table of a stored result and exit (no GPU needed)"
    )


def config_from_args(args: argparse.Namespace) -> KernelBenchConfig:
    cfg = KERNEL_BENCH_PRESETS["quick" if args.quick else "full"]
    changes = {
        name: getattr(args, name)
        for name in ("repeats", "affinity", "max_call_s", "time_budget_s")
        if getattr(args, name, None)
    }
    for name in ("sizes", "methods", "passes"):
        if getattr(args, name, None):
            changes[name] = tuple(getattr(args, name))
    return replace(cfg, **changes)


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """Entry point; ``args`` is the parsed namespace of ``python -m gpa_lib.bench kernel`` or an argv list."""
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="python -m gpa_lib.bench kernel", description=__doc__)
        add_arguments(parser)
        args = parser.parse_args(args)
    if args.show:
        print(format_table(json.loads(Path(args.show).read_text())))
        return 0
    reason = gpu_unavailable_reason()
    if reason is not None:
        print(f"kernel: {reason}; nothing was measured or written")
        return 1

    cfg = config_from_args(args)
    ceilings = read_ceilings(args.machine_json) if args.machine_json else None
    started = time.perf_counter()
    gpu = torch.cuda.get_device_name()
    extra = {
        "driver": driver_version(),
        "gpu": gpu,
        "gpu_capability": ".".join(map(str, torch.cuda.get_device_capability())),
        "cuda_runtime": torch.version.cuda,
        **run_identity(),
    }
    name = f"kernel_bench_{gpu_slug(gpu)}{'_quick' if args.quick else ''}"

    def write(payload: dict[str, Any]) -> Path:
        return write_result(
            name,
            payload,
            profile="quick" if args.quick else "full",
            wall_time_s=time.perf_counter() - started,
            **extra,
        )

    payload = run_kernel_bench(cfg, ceilings=ceilings, on_progress=None if args.no_write else write)
    if not args.no_write:
        print(f"wrote {write(payload)}")
    print(format_table(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
