"""``python -m gpa_lib.bench hierarchy``: the hierarchical phase 1 against exact phase 1.

The command line over :mod:`gpa_lib.attention.analysis.hierarchy` (its docstring holds the metrics
and the primary comparison declared before the first run): per (group, candidates) setting and per
image, the share of exact phase 1's mass, blocks and cells the hierarchy finds, and exact against
hierarchical phase-1 time per grid side on ``--device``. JSON with provenance goes to
``data/results/hierarchy_phase1[_random][_<device>].json`` (``--results-dir`` to put it elsewhere);
a summary table is printed last.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import pandas as pd
import torch

from gpa_lib.attention.analysis.hierarchy import (
    HierarchyStudyConfig,
    run_hierarchy_study,
    summary_table,
    timing_table,
)
from gpa_lib.results import gpu_unavailable_reason, write_result


def _settings(text: str) -> tuple[int, int]:
    try:
        group, candidates = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--settings entry {text!r} must read GROUPxCANDIDATES, e.g. 4x8"
        ) from None
    return group, candidates


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, help="images (the interval's units; default 8)")
    parser.add_argument("--side", type=int, help="grid side of the agreement study (default 256)")
    parser.add_argument("--features", choices=("image", "random"), help="default image")
    parser.add_argument("--affinity", choices=("dot", "euclid"), help="default euclid")
    parser.add_argument(
        "--settings", type=_settings, nargs="+", help="e.g. 4x8 8x4 (group x candidates)"
    )
    parser.add_argument(
        "--timing-sides", type=int, nargs="+", help="grid sides to time (default 256 512 1024)"
    )
    parser.add_argument("--timing-heads", type=int, help="heads of the timed inputs (default 1)")
    parser.add_argument("--no-timing", action="store_true", help="skip the timings")
    parser.add_argument(
        "--train-sides", type=int, nargs="+", help="also time one training step at these sides"
    )
    parser.add_argument("--train-heads", type=int, help="heads of the training steps (default 1)")
    parser.add_argument(
        "--timing-budget-s",
        type=float,
        help="seconds per timed method and side: fewer repeats past it, at least one (default 20)",
    )
    parser.add_argument("--device", default="cpu", help="device of the timings (cpu or cuda)")
    parser.add_argument("--seed", type=int, help="seed of the images (default 0)")
    parser.add_argument("--results-dir", help="write the JSON here instead of data/results")
    parser.add_argument("--no-write", action="store_true", help="print only")


def config_from_args(args: argparse.Namespace) -> HierarchyStudyConfig:
    changes = {
        name: getattr(args, name)
        for name in (
            "images",
            "side",
            "features",
            "affinity",
            "seed",
            "timing_heads",
            "train_heads",
            "timing_budget_s",
        )
        if getattr(args, name, None) is not None
    }
    if args.settings:
        changes["settings"] = tuple(args.settings)
    if args.timing_sides:
        changes["timing_sides"] = tuple(args.timing_sides)
    if args.train_sides:
        changes["train_sides"] = tuple(args.train_sides)
    return replace(HierarchyStudyConfig(), **changes)


def result_name(cfg: HierarchyStudyConfig, device: str) -> str:
    """``hierarchy_phase1`` plus ``_random`` for random features, ``_<affinity>`` off the default,
    and the device type off the CPU."""
    name = "hierarchy_phase1"
    if cfg.features != "image":
        name += f"_{cfg.features}"
    if cfg.affinity != HierarchyStudyConfig.affinity:
        name += f"_{cfg.affinity}"
    if torch.device(device).type != "cpu":
        name += f"_{torch.device(device).type}"
    return name


def main(args: argparse.Namespace) -> int:
    if torch.device(args.device).type == "cuda":
        reason = gpu_unavailable_reason()
        if reason is not None:
            # One line, before any work: scripts/gpu_run.sh reads "needs a CUDA GPU" as NO-GPU.
            print(f"hierarchy: error: --device {args.device} {reason}", file=sys.stderr)
            return 2
    cfg = config_from_args(args)
    started = time.perf_counter()
    payload = run_hierarchy_study(cfg, device=args.device, timing=not args.no_timing)
    wall = time.perf_counter() - started
    print(summary_table(payload).to_string(index=False))
    if "timing" in payload:
        print(timing_table(payload).to_string())
    if "training" in payload:
        print(pd.DataFrame(payload["training"]).to_string(index=False))
    verdict = payload["verdict"]
    print(
        f"primary ({verdict['setting']}, mass kept >= {verdict['threshold']}): {verdict['verdict']} "
        f"(mean {verdict['mass_ratio']['estimate']:.3f}, 95% interval "
        f"[{verdict['mass_ratio']['lo']:.3f}, {verdict['mass_ratio']['hi']:.3f}])"
    )
    if not args.no_write:
        path = write_result(
            result_name(cfg, args.device), payload, wall_time_s=wall, results_dir=args.results_dir
        )
        print(f"wrote {path}")
    return 0
