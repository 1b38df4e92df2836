"""python -m gpa_lib.bench recsys: training and scoring time of every recommender on one store.

Simulates the store, fits every model (ours and the anchors, implicit's ALS and LightFM) on the same
data before one cutoff, and times each fit (wall clock and process CPU time) and the scoring of every
article on sale after the cutoff for every customer. Writes ``data/results/<name>.json`` with
provenance. A benchmark script, not a timed test: timings on a shared machine vary.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from gpa_lib.recsys.backtest import rolling_cutoffs, test_window
from gpa_lib.recsys.eval.experiments import scoring_time
from gpa_lib.recsys.models.presets import MODEL_CLASSES, PROFILES, model_factories
from gpa_lib.recsys.sim.simulate import simulate
from gpa_lib.results import write_result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=100_000, help="simulated customers")
    parser.add_argument("--weeks", type=int, default=104, help="simulated weeks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drift", type=float, default=0.7, help="simulator drift of tastes")
    parser.add_argument("--profile", default="full", choices=PROFILES, help="model settings preset")
    parser.add_argument(
        "--models",
        default=",".join(MODEL_CLASSES),
        help=f"comma-separated models (default all: {','.join(MODEL_CLASSES)})",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--test-weeks", type=int, default=4, help="weeks after the cutoff")
    parser.add_argument("--block", type=int, default=8192, help="customers per scoring block")
    parser.add_argument("--name", default="recsys_bench", help="result file stem in data/results")
    parser.add_argument(
        "--results-dir",
        default=None,
        help="folder for the JSON (default $GPA_LIB_RESULTS_DIR or data/results)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    tic = time.perf_counter()
    data = simulate(args.customers, args.weeks, args.seed, drift=args.drift, progress=False)
    simulate_s = time.perf_counter() - tic
    cutoff = rolling_cutoffs(data, 1, args.test_weeks)[0]
    window = test_window(data, cutoff, args.test_weeks)
    past = data.window(end=cutoff)
    customers = data.customers.index.to_numpy()
    names = tuple(n.strip() for n in args.models.split(",") if n.strip())
    rows, skipped, fitted = [], {}, {}
    for name, factory in model_factories(names, args.profile, random_state=args.seed).items():
        model = factory(fitted)
        ok, why = model.can_run()
        if not ok:
            skipped[name] = why
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(past, until=cutoff)
        fit_s, fit_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
        fitted[name] = model
        score = scoring_time(model, customers, window.candidates, block=args.block)
        rows.append(
            {
                "model": name,
                "fit_seconds": round(fit_s, 3),
                "fit_cpu_seconds": round(fit_cpu_s, 3),
                "score_seconds": score["seconds"],
                "customers": score["customers"],
                "articles": score["articles"],
            }
        )
        print(
            f"{name:>14}: fit {fit_s:7.2f} s (cpu {fit_cpu_s:7.2f} s), score "
            f"{score['customers']:,} x {score['articles']} in {score['seconds']:.2f} s",
            flush=True,
        )
    return {
        "store": {
            "customers": args.customers,
            "weeks": args.weeks,
            "seed": args.seed,
            "drift": args.drift,
            "items": len(data.transactions),
            "items_before_cutoff": len(past.transactions),
            "cutoff": str(cutoff.date()),
        },
        "simulate_seconds": round(simulate_s, 3),
        "profile": args.profile,
        "threads": args.threads,
        "models": rows,
        "skipped": skipped,
        "note": "lstm reuses the fashion_dna fitted just before it; its fit time excludes the DNA",
    }


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """Entry point for ``python -m gpa_lib.bench recsys`` (a parsed namespace) or a list of args."""
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="python -m gpa_lib.bench recsys", description=__doc__)
        add_arguments(parser)
        args = parser.parse_args(args)
    tic = time.perf_counter()
    payload = run(args)
    if not args.no_write:
        path = write_result(
            args.name,
            payload,
            profile=args.profile,
            wall_time_s=time.perf_counter() - tic,
            results_dir=args.results_dir,
        )
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
