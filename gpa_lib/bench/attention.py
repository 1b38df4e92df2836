"""``python -m gpa_lib.bench attention``: dense attention against every GPA backend, side by side.

The command line over :mod:`gpa_lib.attention.analysis.benchmark`, which holds the methods, the
configuration and the measurement (chapter 1 calls it directly). JSON with provenance goes to
``data/results/attention_bench_<device>[_training][_quick][_threads<N>].json``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from gpa_lib.attention.analysis.benchmark import ATTENTION_BENCH_PRESETS, all_methods, run_benchmark
from gpa_lib.results import write_result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument(
        "--training", action="store_true", help="time training steps (forward and backward)"
    )
    parser.add_argument("--sizes", type=int, nargs="+", help="grid sides to run (tokens per side)")
    parser.add_argument(
        "--methods", nargs="+", choices=all_methods(), help="subset of methods to run"
    )
    parser.add_argument("--repeats", type=int, help="timed calls per method and size")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument(
        "--results-dir", default=None, help="folder for the JSON (default data/results)"
    )
    parser.add_argument(
        "--threads", type=int, help="torch (and CPU kernel) threads; the JSON name gets _threads<N>"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")


def main(args: argparse.Namespace) -> int:
    profile = "quick" if args.quick else "full"
    if args.training:
        profile = "training_quick" if args.quick else "training"
    cfg = ATTENTION_BENCH_PRESETS[profile]
    changes = {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in (
            ("sizes", args.sizes),
            ("methods", args.methods),
            ("repeats", args.repeats),
        )
        if value is not None
    }
    cfg = replace(cfg, **changes)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    payload = run_benchmark(cfg, args.device)
    payload["threads"] = torch.get_num_threads()
    wall = time.perf_counter() - start
    summary = payload["summary"]
    print(
        "summary:",
        {key: (round(val, 3) if isinstance(val, float) else val) for key, val in summary.items()},
    )
    if not args.no_write:
        name = (
            f"attention_bench_{torch.device(args.device).type}"
            + ("_training" if args.training else "")
            + ("_quick" if args.quick else "")
            + (f"_threads{args.threads}" if getattr(args, "threads", None) else "")
        )
        path = write_result(
            name, payload, profile=profile, wall_time_s=wall, results_dir=args.results_dir
        )
        print(f"wrote {path}")
    return 0
