"""python -m gpa_lib.bench pose: the chapter-3 studies that do not fit the book's time budget.

Three studies, each writing ``data/results/pose_<study>.json`` with provenance (chapter 3 reads them):

- ``seeds``: every model of chapter 3 trained with several seeds (weights and data order) on the
  same pairs; per-pair held-out metrics, intervals over seeds and pairs, paired differences, and the
  correspondence accuracy (:mod:`gpa_lib.pose.accuracy`) of every copying generator.
- ``tradeoff``: the trained GPA generator (first seed) with ``topk`` changed at test time, from one
  block to all of them (= dense), next to the dense generator trained as such; optionally GPA
  retrained at other ``topk``.
- ``scaling``: GPA against dense attention (fused SDPA) in the same generator at several image
  sizes: training-step time and peak memory, and quality after the same number of steps.

Checkpoints go to ``--run-dir`` (a re-run reuses finished models; ``tradeoff`` reuses the ``seeds``
runs of the first seed). The JSON is rewritten after every trained model, ``"complete": false``
until the study ends. A benchmark, not a test: timings on a shared machine vary, and the JSON
records the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gpa_lib.pose.accuracy import (
    accuracy_summary,
    correspondence_accuracy,
    held_out_truth,
    status_shares,
)
from gpa_lib.pose.config import MODEL_NAMES, TRAIN_PRESETS, TrainConfig
from gpa_lib.pose.metrics import bootstrap_mean, bootstrap_seeds_pairs
from gpa_lib.pose.models import attention_memory, build_model
from gpa_lib.pose.train import evaluate_model, load_data, train
from gpa_lib.results import write_result

STUDIES = ("seeds", "tradeoff", "scaling")
#: Per-pair metrics kept in the JSON (rounded), for the chapter's own summaries.
KEPT_METRICS = ("ssim", "ssim_fg", "l1_fg")
#: Paired differences the seeds study reports, (a, b) for a - b.
DIFFERENCES = (("gpa", "dense"), ("gpa", "unet"), ("gpa", "coarse"), ("dense", "unet"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", choices=STUDIES, help="which study to run")
    parser.add_argument("--scale", default="full", help="preset scale (gpa_lib.pose.config.SCALES)")
    parser.add_argument("--models", default=",".join(MODEL_NAMES), help="seeds: models to train")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--steps", type=int, default=None, help="steps (default: the preset's)")
    parser.add_argument("--n-train", type=int, default=None, help="training pairs")
    parser.add_argument("--n-test", type=int, default=None, help="held-out pairs")
    parser.add_argument(
        "--accuracy-pairs", type=int, default=64, help="held-out pairs of the accuracy metrics"
    )
    parser.add_argument(
        "--topk", default="1,2,4,8,16,32,64,128,256", help="tradeoff: test-time topk values"
    )
    parser.add_argument(
        "--curve-pairs", type=int, default=None, help="tradeoff: held-out pairs of each SSIM"
    )
    parser.add_argument(
        "--retrain-topk", default="", help="tradeoff: topk values to retrain GPA with"
    )
    parser.add_argument("--sizes", default="64,96", help="scaling: image sides in pixels")
    parser.add_argument("--scaling-steps", type=int, default=150, help="scaling: steps per model")
    parser.add_argument(
        "--cost-sizes",
        default="128",
        help="scaling: sides measured for step cost only (no training)",
    )
    parser.add_argument(
        "--max-step-s", type=float, default=60.0,
        help="scaling: measure no cost-only step predicted to take longer (seconds)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--run-dir", default="runs/pose_bench", help="checkpoints (reused)")
    parser.add_argument("--machine", default="", help="a label of where it ran, for the JSON")
    parser.add_argument("--name", default=None, help="result file stem (default pose_<study>)")
    parser.add_argument("--results-dir", default=None, help="folder for the JSON")
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _config(args: argparse.Namespace, name: str, **changes) -> TrainConfig:
    preset = TRAIN_PRESETS[f"{name}-{args.scale}"]
    overrides = {"num_threads": args.threads, "eval_every": 0, "checkpoint_every": 50}
    for field_name in ("steps", "n_train", "n_test"):
        value = getattr(args, field_name)
        if value is not None:
            overrides[field_name] = value
    overrides["n_val"] = min(32, overrides.get("n_test", preset.n_test))
    overrides.update(changes)
    return preset.replace(**overrides)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Writer:
    """Rewrites the study's JSON after every step; ``complete`` marks the end."""

    def __init__(self, args: argparse.Namespace, study: str):
        self.args, self.study, self.start = args, study, time.perf_counter()
        self.name = args.name or f"pose_{study}"

    def __call__(self, payload: dict[str, Any], complete: bool = False) -> None:
        payload["complete"] = complete
        payload["machine"] = self.args.machine or "unlabelled"
        if self.args.no_write:
            return
        path = write_result(
            self.name,
            payload,
            profile=f"bench-{self.args.scale}",
            wall_time_s=time.perf_counter() - self.start,
            results_dir=self.args.results_dir,
        )
        print(f"wrote {path} (complete={complete})", flush=True)


def _train(args, config: TrainConfig, tag: str, data):
    train_data, test_data = data
    load_before = _load()
    result = train(
        config,
        train_data,
        test_data,
        out_dir=Path(args.run_dir) / tag,
        progress=False,
        description=tag,
    )
    print(f"{tag}: {result.steps_done} steps, {result.train_time_s:.0f} s", flush=True)
    return result, {"load_before": load_before, "load_after": _load()}


#: Per run, next to its checkpoint: the measurements of a finished run, reused by a re-run.
MEASURED = "measured.pt"


def _same_run(saved: dict, now: dict) -> bool:
    """Whether saved measurements belong to the run ``now`` describes (thread counts may differ)."""

    def strip(key: dict) -> dict:
        return {**key, "config": {k: v for k, v in key["config"].items() if k != "num_threads"}}

    return strip(saved) == strip(now)


def _measure_run(args, config: TrainConfig, tag: str, data, truth, seed: int):
    """Train (or reuse) one run and measure it: (JSON entry, per-pair metrics, accuracy or None)."""
    test_data = data[1]
    result, load = _train(args, config, tag, data)
    test = evaluate_model(result.model, test_data, batch_size=config.batch_size)
    run = {
        "seed": seed,
        "steps": result.steps_done,
        "train_time_s": result.train_time_s,
        "parameters": result.parameters,
        "test": {m: bootstrap_mean(test[m], seed=seed) for m in KEPT_METRICS},
        "per_pair": {m: np.round(test[m], 6).tolist() for m in KEPT_METRICS},
        **load,
    }
    layers = None
    if config.model.kind == "copy" and config.model.attention[0] != "none":
        layers = correspondence_accuracy(result.model, test_data, truth, seed=seed)
        run["accuracy"] = accuracy_summary(layers, seed=seed)
    return run, test, layers


def run_seeds(args: argparse.Namespace) -> dict[str, Any]:
    write = Writer(args, "seeds")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    seeds = _ints(args.seeds)
    first = _config(args, models[0])
    data = load_data(first)
    test_data = data[1]
    truth = held_out_truth(first, args.accuracy_pairs)
    per_pair: dict[str, dict[str, list]] = {m: {k: [] for k in KEPT_METRICS} for m in models}
    accuracy: dict[str, list] = {m: [] for m in models}
    payload: dict[str, Any] = {
        "scale": args.scale,
        "seeds": seeds,
        "models": {m: {"runs": []} for m in models},
        "data": {
            "train_pairs": len(data[0]),
            "test_pairs": len(test_data),
            "size": list(test_data.size),
            "accuracy_pairs": len(truth),
        },  # fmt: skip
        "truth_status": status_shares(truth),
        "threads": args.threads,
    }
    for seed in seeds:
        for name in models:
            config = _config(args, name, seed=seed)
            tag = f"{name}-seed{seed}"
            measured = Path(args.run_dir) / tag / MEASURED
            key = {
                "config": config.to_dict(),
                "n_test": len(test_data),
                "accuracy_pairs": len(truth),
            }
            saved = torch.load(measured, weights_only=False) if measured.is_file() else None
            if saved is not None and _same_run(saved["key"], key):
                run, test, layers = saved["run"], saved["test"], saved["layers"]
            else:
                run, test, layers = _measure_run(args, config, tag, data, truth, seed)
                torch.save({"key": key, "run": run, "test": test, "layers": layers}, measured)
            for m in KEPT_METRICS:
                per_pair[name][m].append(test[m])
            if layers is not None:
                accuracy[name].append(layers)
            payload["models"][name]["runs"].append(run)
            payload["models"][name]["config"] = config.replace(seed=0).to_dict()
            _pool(payload, per_pair, accuracy)
            write(payload)
    write(payload, complete=True)
    return payload


def _pool(payload, per_pair, accuracy) -> None:
    """Intervals over seeds and pairs of everything trained so far (same seeds for every model)."""
    for name, metrics in per_pair.items():
        if metrics["ssim"]:
            payload["models"][name]["pooled"] = {
                m: bootstrap_seeds_pairs(np.stack(v)) for m, v in metrics.items()
            }
        runs = accuracy[name]
        if runs:
            pooled = {}
            for layer in runs[0]:
                metric_names = list(runs[0][layer]["per_pair"]) + ["selected_mass"]
                pooled[layer] = {
                    metric: bootstrap_seeds_pairs(
                        np.stack([
                            r[layer]["selected_mass"] if metric == "selected_mass"
                            else r[layer]["per_pair"][metric] for r in runs
                        ])
                    )
                    for metric in metric_names
                }  # fmt: skip
            payload["models"][name]["accuracy_pooled"] = pooled
    differences = {}
    for a, b in DIFFERENCES:
        if a in per_pair and b in per_pair:
            n = min(len(per_pair[a]["ssim"]), len(per_pair[b]["ssim"]))
            if n:
                differences[f"{a}_minus_{b}"] = {
                    m: bootstrap_seeds_pairs(
                        np.stack(per_pair[a][m][:n]) - np.stack(per_pair[b][m][:n])
                    )
                    for m in KEPT_METRICS
                }
    payload["differences"] = differences


def run_tradeoff(args: argparse.Namespace) -> dict[str, Any]:
    from gpa_lib.pose.studies import largest_call_time, tradeoff_point

    write = Writer(args, "tradeoff")
    seed = _ints(args.seeds)[0]
    gpa_config = _config(args, "gpa", seed=seed)
    data = load_data(gpa_config)
    test_data = data[1]
    truth = held_out_truth(gpa_config, args.accuracy_pairs)
    n_test = min(args.curve_pairs or len(test_data), len(test_data))
    payload: dict[str, Any] = {"scale": args.scale, "seed": seed, "n_test": n_test,
                               "accuracy_pairs": len(truth), "threads": args.threads}  # fmt: skip
    dense_config = _config(args, "dense", seed=seed)
    dense, load = _train(args, dense_config, f"dense-seed{seed}", data)
    one_pair = test_data.batch(torch.tensor([0]))
    test = evaluate_model(dense.model, test_data, batch_size=dense_config.batch_size, limit=n_test)
    memory = attention_memory(dense.model, one_pair)
    payload["dense"] = {
        "train_time_s": dense.train_time_s,
        **load,
        "ssim": bootstrap_mean(test["ssim"], seed=seed),
        "ssim_per_pair": np.round(test["ssim"], 6).tolist(),
        "l1_fg": bootstrap_mean(test["l1_fg"], seed=seed),
        "peak_training_bytes": memory["peak_training_bytes"],
        "peak_forward_bytes": memory["peak_forward_bytes"],
        "largest_call_time": largest_call_time(dense.model, one_pair),
    }
    write(payload)
    gpa, load = _train(args, gpa_config, f"gpa-seed{seed}", data)
    payload["gpa"] = {"trained_topk": gpa_config.model.topk, "train_time_s": gpa.train_time_s,
                      **load, "curve": []}  # fmt: skip
    for topk in _ints(args.topk):
        point = tradeoff_point(gpa.model, topk, test_data, truth, n_test=n_test, seed=seed)
        point["load"] = _load()
        payload["gpa"]["curve"].append(point)
        print(f"topk={topk}: ssim {point['ssim']['mean']:.4f}", flush=True)
        write(payload)
    payload["retrained"] = []
    for topk in _ints(args.retrain_topk):
        config = gpa_config.replace(model={"topk": topk})
        run, load = _train(args, config, f"gpa-topk{topk}-seed{seed}", data)
        point = tradeoff_point(run.model, topk, test_data, truth, n_test=n_test, seed=seed)
        payload["retrained"].append({**point, "train_time_s": run.train_time_s, **load})
        write(payload)
    write(payload, complete=True)
    return payload


#: The budgets a scaling point is drawn against (seconds per optimisation step): chapter 3's
#: 450 steps of one model in 6 minutes (the book's budget on a 2-core CPU), and in one hour.
STEP_BUDGETS_S = {"book: 450 steps in 6 min": 360 / 450, "450 steps in 1 h": 3600 / 450}


def _scaling_run(args, name: str, size: int, seed: int, data) -> dict[str, Any]:
    config = _config(args, name, size=size, steps=args.scaling_steps, seed=seed, checkpoint_every=0)
    result, load = _train(args, config, f"{name}-{size}px-seed{seed}", data)
    test = evaluate_model(result.model, data[1], batch_size=config.batch_size)
    return {
        "seed": seed,
        "steps": result.steps_done,
        "train_time_s": result.train_time_s,
        "step_s": result.train_time_s / max(result.steps_done, 1),
        "ssim": bootstrap_mean(test["ssim"], seed=seed),
        "per_pair": {m: np.round(test[m], 6).tolist() for m in ("ssim", "l1_fg")},
        **load,
    }


def _step_cost_point(args, name: str, size: int, data) -> dict[str, Any]:
    """Time and peak memory of one training step of a fresh model, and of its largest attention."""
    from gpa_lib.pose.studies import step_cost

    config = _config(args, name, size=size, steps=args.scaling_steps, checkpoint_every=0)
    torch.manual_seed(0)
    fresh = build_model(config.model)
    batch = data[0].batch(torch.arange(config.batch_size))
    memory = attention_memory(fresh, data[1].batch(torch.tensor([0])))
    return {
        "step_cost": step_cost(fresh, config, batch),
        "attention_peak_training_bytes": memory["peak_training_bytes"],
        "load": _load(),
    }


def run_scaling(args: argparse.Namespace) -> dict[str, Any]:
    """GPA against dense at ``--sizes`` (trained, every seed) and ``--cost-sizes`` (step cost only).

    Per trained size and model: the step cost of a fresh model, one training run per seed, SSIM
    pooled over seeds and pairs (two-level bootstrap) and the paired GPA - dense difference. At the
    cost-only sizes a model is measured only while its step, extrapolated from the last measured
    size (time ~ side^4 for dense attention, ~ side^2 for GPA), stays under ``--max-step-s``;
    beyond that the extrapolation is stored, marked as such.
    """
    write = Writer(args, "scaling")
    seeds = _ints(args.seeds)
    payload: dict[str, Any] = {
        "scale": args.scale, "seeds": seeds, "steps": args.scaling_steps, "threads": args.threads,
        "budgets_s": STEP_BUDGETS_S, "max_step_s": args.max_step_s,
        "points": [], "cost_only": [], "differences": {},
    }  # fmt: skip
    for size in _ints(args.sizes):
        data = load_data(_config(args, "gpa", size=size))
        per_pair = {}
        for name in ("gpa", "dense"):
            point = {"model": name, "size": size, "steps": args.scaling_steps,
                     **_step_cost_point(args, name, size, data), "runs": []}  # fmt: skip
            for seed in seeds:
                point["runs"].append(_scaling_run(args, name, size, seed, data))
                print(f"{name} {size}px seed {seed}: ssim "
                      f"{point['runs'][-1]['ssim']['mean']:.4f}", flush=True)  # fmt: skip
            runs = point["runs"]
            per_pair[name] = {
                m: np.array([r["per_pair"][m] for r in runs]) for m in ("ssim", "l1_fg")
            }
            point["step_s"] = float(np.mean([r["step_s"] for r in runs]))
            point["ssim"] = bootstrap_seeds_pairs(per_pair[name]["ssim"], seed=seeds[0])
            point["l1_fg"] = bootstrap_seeds_pairs(per_pair[name]["l1_fg"], seed=seeds[0])
            point["n_test"], point["n_train"] = len(data[1]), len(data[0])
            payload["points"].append(point)
            write(payload)
        payload["differences"][str(size)] = {
            m: bootstrap_seeds_pairs(per_pair["gpa"][m] - per_pair["dense"][m], seed=seeds[0])
            for m in ("ssim", "l1_fg")
        }
        write(payload)
    exponent = {"gpa": 2, "dense": 4}  # how a step's attention cost grows with the image side
    last = {p["model"]: p for p in payload["points"] if p["size"] == max(_ints(args.sizes))}
    for size in _ints(args.cost_sizes):
        data = None
        for name in ("gpa", "dense"):
            before = last.get(name)
            predicted = None
            if before is not None:
                ratio = (size / before["size"]) ** exponent[name]
                predicted = before["step_cost"]["median_s"] * ratio
            if predicted is not None and predicted > args.max_step_s:
                entry = {"model": name, "size": size, "measured": False,
                         "predicted_step_s": predicted, "from_size": before["size"]}  # fmt: skip
            else:
                if data is None:
                    data = load_data(_config(args, "gpa", size=size, n_train=8, n_test=1, n_val=1))
                entry = {"model": name, "size": size, "measured": True,
                         **_step_cost_point(args, name, size, data)}  # fmt: skip
                last[name] = entry
            payload["cost_only"].append(entry)
            print(f"{name} {size}px cost: {entry}", flush=True)
            write(payload)
    write(payload, complete=True)
    return payload


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """Entry point for ``python -m gpa_lib.bench pose STUDY`` (a parsed namespace) or a list of args."""
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="python -m gpa_lib.bench pose", description=__doc__)
        add_arguments(parser)
        args = parser.parse_args(args)
    torch.set_num_threads(args.threads)
    {"seeds": run_seeds, "tradeoff": run_tradeoff, "scaling": run_scaling}[args.study](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
