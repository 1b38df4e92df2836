"""``python -m gpa_lib.bench pose-gpu``: short ``gpu``-scale pose training runs, their step time and peak memory.

By default two presets at the same batch: ``gpa-gpu`` as configured (its GPA backend ``None``: the
automatic choice, the path a user takes) and ``dense-gpu`` (SDPA), the baseline of the kernel issue's
pose targets. Only the training CLI's entry point is used (``gpa_lib.pose.train.main(argv)``, the
function behind ``python -m gpa_lib.pose.train``), called twice per preset in this process on one run
folder: a warm-up of ``--warmup-steps`` steps (compilation, the first allocations), then the same run
resumed to ``--steps``. The CLI's ``metrics.json`` holds the optimisation time summed over
resumptions, so the difference over the difference in steps is the steady step time; the peak memory
is the caching allocator's over the resumed part. A run that raises (a backend that cannot train) is
recorded with its error and the next preset runs. A time budget (``--time-budget-s``, shared: each
run may use what is left less ``--min-run-s`` per run still to come) stops a run that would not
finish, and the result says so. Synthetic pairs at 256², few of them, since they are rendered on the
CPU (once, shared by the presets). JSON with provenance: ``<results dir>/pose_train_<gpu>.json``,
one entry per preset in ``runs``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from gpa_lib.measure import cuda_peak
from gpa_lib.results import gpu_slug, gpu_unavailable_reason, run_identity

ENTRY_POINT = "gpa_lib.pose.train"
#: GPA through the automatic backend choice, and dense SDPA at the same batch: the kernel issue's
#: pose targets compare the two.
DEFAULT_PRESETS = ("gpa-gpu", "dense-gpu")


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


def preset_backend(preset: str) -> str:
    """The GPA backend a preset asks for (``auto``: None, the automatic choice)."""
    from gpa_lib.pose.config import preset as named

    return named(preset).model.backend or "auto"


def cli_argv(args: argparse.Namespace, preset: str, out: Path, steps: int) -> list[str]:
    return [
        "--preset",
        preset,
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
        str(out.parent.parent / "pairs"),  # shared by the presets
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


def run_pose(
    args: argparse.Namespace,
    preset: str | None = None,
    time_budget_s: float | None = None,
    log=print,
) -> dict[str, Any]:
    """The two CLI calls of one preset; its record (a stopped run is reported, not raised)."""
    preset = preset or args.presets[0]
    time_budget_s = args.time_budget_s if time_budget_s is None else time_budget_s
    main = importlib.import_module(ENTRY_POINT).main
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="gpa_pose_"))
    out = work / preset / "run"
    cuda = args.device == "cuda"
    record: dict[str, Any] = {
        "preset": preset,
        "backend": preset_backend(preset),
        "device": args.device,
        "batch_size": args.batch_size,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "warmup_steps": args.warmup_steps,
        "steps": args.steps,
        "time_budget_s": time_budget_s,
    }

    def on_alarm(signum, frame):
        raise BudgetSpent

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(time_budget_s)))
    started = time.perf_counter()
    memory: dict[str, int] = {}  # the peak of the timed steps (gpa_lib.measure.cuda_peak)
    try:
        t0 = time.perf_counter()
        warm_time = _call(main, cli_argv(args, preset, out, args.warmup_steps) + ["--no-resume"])
        record["warmup_wall_s"] = time.perf_counter() - t0  # data rendering and compilation too
        record["warmup_train_time_s"] = warm_time
        log(
            f"pose: {preset}: {args.warmup_steps} warm-up steps in {warm_time:.1f} s of optimisation"
        )
        t0 = time.perf_counter()
        with cuda_peak() if cuda else contextlib.nullcontext({}) as memory:
            total_time = _call(main, cli_argv(args, preset, out, args.steps))
        record["resumed_wall_s"] = time.perf_counter() - t0
        timed = args.steps - args.warmup_steps
        record["step_time_ms"] = 1e3 * (total_time - warm_time) / timed
        if cuda:
            record["peak_memory_bytes"] = memory["peak_bytes"]
            record["peak_reserved_bytes"] = memory["peak_reserved_bytes"]
        record["test"] = json.loads((out / "metrics.json").read_text()).get("test")
        record["complete"] = True
    except BudgetSpent:
        record["complete"] = False
        record["stopped"] = f"the time budget of {time_budget_s:.0f} s ran out"
        if "peak_bytes" in memory:  # the budget ran out in the timed steps, not in the warm-up
            record["peak_memory_bytes"] = memory["peak_bytes"]
    except Exception as err:  # noqa: BLE001 - a backend that cannot train: recorded, the next runs
        record["complete"] = False
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        record["error"] = f"{type(err).__name__}: {first}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        if cuda:
            torch.cuda.empty_cache()
    record["wall_s"] = time.perf_counter() - started
    return record


def describe(record: dict[str, Any]) -> str:
    """One run in a few words: step time and peak memory, or why there are none."""
    if record.get("error"):
        return f"{record['preset']} ({record['backend']}) FAILED: {record['error'][:120]}"
    if not record["complete"]:
        return f"{record['preset']} ({record['backend']}) stopped: {record['stopped']}"
    shown = f"{record['preset']} ({record['backend']}) {record['step_time_ms']:.1f} ms per step"
    if "peak_memory_bytes" in record:
        shown += f", peak {record['peak_memory_bytes'] / 1e9:.2f} GB"
    return shown


def run_presets(args: argparse.Namespace, log=print) -> list[dict[str, Any]]:
    """Every preset of ``args.presets`` in turn, within the shared time budget."""
    started, records = time.perf_counter(), []
    for index, preset in enumerate(args.presets):
        still_to_come = len(args.presets) - index - 1
        left = args.time_budget_s - (time.perf_counter() - started)
        budget = left - args.min_run_s * still_to_come
        if budget < 5:
            records.append({"preset": preset, "backend": preset_backend(preset),
                            "complete": False, "stopped": f"only {left:.0f} s of the budget left"})  # fmt: skip
        else:
            records.append(run_pose(args, preset, budget, log=log))
        log(f"pose: {describe(records[-1])}")
    return records


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--presets",
        nargs="+",
        default=list(DEFAULT_PRESETS),
        help="training presets, run in turn at the same batch (default: gpa-gpu dense-gpu)",
    )
    parser.add_argument("--preset", help="one preset only (the same as --presets NAME)")
    parser.add_argument("--steps", type=int, default=30, help="steps in all, warm-up included")
    parser.add_argument("--warmup-steps", type=int, default=10, help="untimed first steps")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per step")
    parser.add_argument("--n-train", type=int, default=64, help="synthetic training pairs")
    parser.add_argument("--n-test", type=int, default=8, help="held-out pairs")
    parser.add_argument(
        "--time-budget-s", type=float, default=150.0, help="for all presets together"
    )
    parser.add_argument(
        "--min-run-s", type=float, default=45.0, help="kept back for each preset still to run"
    )
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
        print(f"pose: {reason}; nothing was measured or written")
        return 1
    if not 0 < args.warmup_steps < args.steps:
        raise SystemExit(
            f"--warmup-steps={args.warmup_steps} must be positive and below --steps={args.steps}"
        )
    reason = entry_point_reason()
    if reason is not None:
        print(f"pose: skipped: {reason}")
        return 2
    if args.preset:
        args.presets = [args.preset]
    records = run_presets(args)
    complete = all(r["complete"] for r in records)
    print(f"pose: batch {args.batch_size} on {args.device}: " + "; ".join(map(describe, records)))
    if not args.no_write and args.device == "cuda":
        from gpa_lib.results import write_result

        gpu = torch.cuda.get_device_name()
        path = write_result(
            f"pose_train_{gpu_slug(gpu)}",
            {"presets": list(args.presets), "complete": complete, "runs": records},
            profile="gpu",
            wall_time_s=sum(r.get("wall_s", 0.0) for r in records),
            gpu=gpu,
            **run_identity(),
        )
        print(f"wrote {path}")
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
