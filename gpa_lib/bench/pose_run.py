"""``python -m gpa_lib.bench pose-gpu``: a short ``gpu``-scale pose training run, its step time and peak memory.

Only the training CLI's entry point is used (``gpa_lib.pose.train.main(argv)``, the function behind
``python -m gpa_lib.pose.train``), called twice in this process on one run folder: a warm-up of
``--warmup-steps`` steps (compilation, the first allocations), then the same run resumed to
``--steps``. The CLI's ``metrics.json`` holds the optimisation time summed over resumptions, so the
difference over the difference in steps is the steady step time; the peak memory is the caching
allocator's over the resumed part. A time budget (``--time-budget-s``) stops a run that would not
finish, and the result says so. Synthetic pairs at 256² (preset ``gpa-gpu``), few of them, since they
are rendered on the CPU. JSON with provenance: ``<results dir>/pose_train_<gpu>.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from gpa_lib.bench.machine import gpu_slug, gpu_unavailable_reason
from gpa_lib.results import run_identity

ENTRY_POINT = "gpa_lib.pose.train"


class BudgetSpent(Exception):
    """The time budget of the run ran out."""


def entry_point_reason() -> str | None:
    """Why the training CLI cannot be called (None: ``gpa_lib.pose.train.main`` exists)."""
    try:
        module = importlib.import_module(ENTRY_POINT)
    except Exception as err:  # noqa: BLE001 - a module being moved, or one of its imports
        return f"cannot import {ENTRY_POINT} ({type(err).__name__}: {err})"
    if not callable(getattr(module, "main", None)):
        return f"{ENTRY_POINT} has no main(argv)"
    return None


def cli_argv(args: argparse.Namespace, out: Path, steps: int) -> list[str]:
    return [
        "--preset",
        args.preset,
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--batch-size",
        str(args.batch_size),
        "--n-train",
        str(args.n_train),
        "--n-test",
        str(args.n_test),
        "--device",
        args.device,
        "--cache-dir",
        str(out.parent / "pairs"),
        "--no-progress",
    ]


def _call(main, argv: list[str]) -> float:
    """Run the CLI; the optimisation seconds its metrics.json reports."""
    try:
        code = main(argv)
    except SystemExit as err:  # argparse rejected the arguments
        raise RuntimeError(f"the training CLI exited with {err.code} for {argv}") from err
    if code:
        raise RuntimeError(f"the training CLI returned {code} for {argv}")
    metrics = json.loads((Path(argv[argv.index("--out") + 1]) / "metrics.json").read_text())
    return float(metrics["train_time_s"])


def run_pose(args: argparse.Namespace, log=print) -> dict[str, Any]:
    """The two CLI calls; the payload (a stopped run is reported, not raised)."""
    main = importlib.import_module(ENTRY_POINT).main
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="gpa_pose_"))
    out = work / "run"
    cuda = args.device == "cuda"
    record: dict[str, Any] = {
        "preset": args.preset,
        "device": args.device,
        "batch_size": args.batch_size,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "warmup_steps": args.warmup_steps,
        "steps": args.steps,
        "time_budget_s": args.time_budget_s,
    }

    def on_alarm(signum, frame):
        raise BudgetSpent

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(args.time_budget_s)))
    started = time.perf_counter()
    try:
        t0 = time.perf_counter()
        warm_time = _call(main, cli_argv(args, out, args.warmup_steps) + ["--no-resume"])
        record["warmup_wall_s"] = time.perf_counter() - t0  # data rendering and compilation too
        record["warmup_train_time_s"] = warm_time
        log(f"pose: {args.warmup_steps} warm-up steps in {warm_time:.1f} s of optimisation")
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        total_time = _call(main, cli_argv(args, out, args.steps))
        record["resumed_wall_s"] = time.perf_counter() - t0
        timed = args.steps - args.warmup_steps
        record["step_time_ms"] = 1e3 * (total_time - warm_time) / timed
        if cuda:
            record["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated())
            record["peak_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
        record["test"] = json.loads((out / "metrics.json").read_text()).get("test")
        record["complete"] = True
    except BudgetSpent:
        record["complete"] = False
        record["stopped"] = f"the time budget of {args.time_budget_s:.0f} s ran out"
        if cuda:
            record["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    record["wall_s"] = time.perf_counter() - started
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="gpa-gpu", help="training preset (256 px: gpa-gpu)")
    parser.add_argument("--steps", type=int, default=300, help="steps in all, warm-up included")
    parser.add_argument("--warmup-steps", type=int, default=20, help="untimed first steps")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per step")
    parser.add_argument("--n-train", type=int, default=64, help="synthetic training pairs")
    parser.add_argument("--n-test", type=int, default=8, help="held-out pairs")
    parser.add_argument("--time-budget-s", type=float, default=150.0, help="stop after this long")
    parser.add_argument("--work-dir", help="run folder and pair caches (default: a temporary one)")
    parser.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default="cuda",
        help="cpu: a dry run of the driver (use a tiny preset); prints, writes nothing",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(
            prog="python -m gpa_lib.bench pose-gpu", description=__doc__
        )
        add_arguments(parser)
        args = parser.parse_args(args)
    reason = gpu_unavailable_reason() if args.device == "cuda" else None
    if reason is not None:
        print(f"pose: {reason}")
        return 1
    if not 0 < args.warmup_steps < args.steps:
        raise SystemExit(
            f"--warmup-steps={args.warmup_steps} must be positive and below --steps={args.steps}"
        )
    reason = entry_point_reason()
    if reason is not None:
        print(f"pose: skipped: {reason}")
        return 2
    record = run_pose(args)
    if not record["complete"]:
        shown = record["stopped"]
    else:
        shown = f"{record['step_time_ms']:.1f} ms per step"
        if "peak_memory_bytes" in record:
            shown += f", peak {record['peak_memory_bytes'] / 2**30:.2f} GiB"
    print(f"pose: {args.preset} at batch {args.batch_size} on {args.device}: {shown}")
    if not args.no_write and args.device == "cuda":
        from gpa_lib.results import write_result

        gpu = torch.cuda.get_device_name()
        path = write_result(
            f"pose_train_{gpu_slug(gpu)}",
            record,
            profile="gpu",
            wall_time_s=record["wall_s"],
            gpu=gpu,
            **run_identity(),
        )
        print(f"wrote {path}")
    return 0 if record["complete"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
