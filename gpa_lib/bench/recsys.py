"""python -m gpa_lib.bench recsys: the recommendation backtest of chapters 4 and 5, or model timings.

``--study backtest`` (the default) runs the protocol of :mod:`gpa_lib.recsys.eval.protocol` on a
named store of :data:`gpa_lib.recsys.sim.PRESETS`: every model (ours, the anchors and popularity)
tuned with the same grid on a validation cutoff, refitted with several seeds at rolling test
cutoffs, next to the simulator's oracle, with block-bootstrap intervals; it writes
``data/results/backtest.json``, which the chapters render.

``--study timing`` simulates the store, fits every model (ours and the anchors, implicit's ALS and LightFM) on the same
data before one cutoff, and times each fit (wall clock and process CPU time) and the scoring of every
article on sale after the cutoff for every customer. Writes ``data/results/<name>.json`` with
provenance. A benchmark script, not a timed test: timings on a shared machine vary.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from gpa_lib.recsys.data.stats import store_summary
from gpa_lib.recsys.eval.backtest import rolling_cutoffs, test_window
from gpa_lib.recsys.eval.experiments import scoring_time
from gpa_lib.recsys.eval.protocol import ProtocolConfig, run_protocol
from gpa_lib.recsys.models.presets import MODEL_CLASSES, PROFILES, model_factories
from gpa_lib.recsys.sim import PRESETS, simulate_preset
from gpa_lib.results import write_result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--study", default="backtest", choices=("backtest", "timing"), help="what to run"
    )
    parser.add_argument("--store", default="full", choices=sorted(PRESETS), help="store preset")
    parser.add_argument(
        "--customers", type=int, default=None, help="override the preset's customers"
    )
    parser.add_argument("--weeks", type=int, default=None, help="override the preset's weeks")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed")
    parser.add_argument("--cutoffs", type=int, default=6, help="rolling test cutoffs (backtest)")
    parser.add_argument("--step-weeks", type=int, default=4, help="weeks between test cutoffs")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds per model (backtest)")
    parser.add_argument(
        "--eval-customers", type=int, default=10_000, help="customers evaluated per cutoff"
    )
    parser.add_argument("--n-boot", type=int, default=500, help="block-bootstrap resamples")
    parser.add_argument("--profile", default="full", choices=PROFILES, help="model settings preset")
    parser.add_argument(
        "--models",
        default=",".join(MODEL_CLASSES),
        help=f"comma-separated models (default all: {','.join(MODEL_CLASSES)})",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--test-weeks", type=int, default=4, help="weeks after the cutoff")
    parser.add_argument("--block", type=int, default=8192, help="customers per scoring block")
    parser.add_argument(
        "--name",
        default=None,
        help="result file stem in data/results (default: backtest, or recsys_bench for timing)",
    )
    parser.add_argument(
        "--results-dir",
        default=None,
        help="folder for the JSON (default $GPA_LIB_RESULTS_DIR or data/results)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")


def simulate_store(args: argparse.Namespace):
    overrides = {"seed": args.seed}
    if args.customers is not None:
        overrides["n_customers"] = args.customers
    if args.weeks is not None:
        overrides["n_weeks"] = args.weeks
    tic = time.perf_counter()
    data = simulate_preset(args.store, progress=False, **overrides)
    return data, time.perf_counter() - tic


def store_record(args: argparse.Namespace, data) -> dict[str, Any]:
    config = data.truth.config
    return {
        "preset": args.store,
        "customers": config.n_customers,
        "weeks": config.n_weeks,
        "seed": config.seed,
        "drift": config.drift,
        "items": len(data.transactions),
        "summary": store_summary(data),
    }


def run_backtest_study(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    data, simulate_s = simulate_store(args)
    config = ProtocolConfig(
        n_cutoffs=args.cutoffs,
        test_weeks=args.test_weeks,
        step_weeks=args.step_weeks,
        seeds=tuple(int(s) for s in args.seeds.split(",") if s.strip()),
        max_customers=args.eval_customers,
        n_boot=args.n_boot,
    )
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    payload = run_protocol(data, names, args.profile, config, progress=True)
    payload["store"] = store_record(args, data)
    payload["timing_seconds"]["simulate"] = round(simulate_s, 1)
    payload["threads"] = args.threads
    return payload


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.study == "backtest":
        return run_backtest_study(args)
    torch.set_num_threads(args.threads)
    data, simulate_s = simulate_store(args)
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
            **store_record(args, data),
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
        name = args.name or ("backtest" if args.study == "backtest" else "recsys_bench")
        path = write_result(
            name,
            payload,
            profile=args.profile,
            wall_time_s=time.perf_counter() - tic,
            results_dir=args.results_dir,
        )
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
