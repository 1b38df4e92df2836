"""``python -m gpa_lib.bench official --path DIR``: our GPA against the authors' attention core.

For a reader who has cloned the authors' repository (``git clone
https://github.com/zalandoresearch/gpa DIR``): the same random inputs go through their
``GPA_module._doAtt`` (phase 1 on the full low-resolution attention matrix, phase 2 by unfold and
gather) and through :func:`gpa_lib.attention.gpa_attention` with the matching settings, in inference.
Their layer's defaults fix the settings: ``SHIERARCHY=64`` pools the query map to a 64-row grid
(``pool = H // 64``), ``splitM=32`` cuts it into 32 cells per side (``cell = 2 * pool``), the
``"euclid"`` affinity, and ``kappa`` blocks per cell (``topk``; 8 here, their default is 2).

For each square grid it records the largest absolute difference of the outputs (a different selection
shows up as a difference of order one), the median time of each (after a warm-up call, whose time is kept as
``first_call_s``), the time ratio and the fused CPU backend's phase 1 alone; once per run, this CPU's matrix-multiply rate and copy
bandwidth (:func:`~gpa_lib.measure.calibrate_cpu`), against which the chapter
draws the floor. Their code is imported from ``DIR/GPA_module.py`` at run time;
none of it is part of this project. JSON with provenance goes to ``data/results/official_gpa.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from gpa_lib.attention import auto_backend, gpa_attention
from gpa_lib.measure import calibrate_cpu, median_time

#: Our methods: the automatic choice, the fused CPU kernel and the two pure-torch backends.
METHODS = ("auto", "cpu", "reference", "recompute")


@dataclass(frozen=True)
class OfficialBenchConfig:
    """One comparison run; sizes in tokens per grid side."""

    sizes: tuple[int, ...] = (128, 256, 512)  # side of the square query and key grids
    head_dim: int = 64  # D = Dv, one head, batch 1
    topk: int = 8  # key blocks per cell (the authors' kappa)
    low_side: int = 64  # the authors' SHIERARCHY: side of the low-resolution grid
    cells_per_side: int = 32  # the authors' splitM
    methods: tuple[str, ...] = METHODS  # which of ours to time
    warmup: int = 1  # untimed calls first (FlexAttention compiles here)
    repeats: int = 3  # timed calls; the median is reported
    seed: int = 0  # inputs are torch.randn under this seed


def load_authors_module(path: str | Path) -> ModuleType:
    """Import ``GPA_module.py`` from the folder ``path`` (or the file itself)."""
    path = Path(path)
    file = path / "GPA_module.py" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(
            f"--path {path}: no GPA_module.py there; clone https://github.com/zalandoresearch/gpa "
            "and pass its folder"
        )
    spec = importlib.util.spec_from_file_location("authors_gpa_module", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "GPA_module"):
        raise ValueError(f"{file} defines no GPA_module class; is it the authors' GPA_module.py?")
    return module


def settings(cfg: OfficialBenchConfig, side: int) -> dict[str, int]:
    """pool, cell and topk of the authors' layer for a ``side``-row query map."""
    pool = max(1, side // cfg.low_side)
    return {"pool": pool, "cell": pool * (cfg.low_side // cfg.cells_per_side), "topk": cfg.topk}


def compare_one(authors: ModuleType, cfg: OfficialBenchConfig, side: int) -> dict[str, Any]:
    """Outputs, selections and times of theirs and ours at one grid side."""
    gen = torch.Generator().manual_seed(cfg.seed + side)
    D = cfg.head_dim
    q, k, v = (torch.randn(1, D, side, side, generator=gen) for _ in range(3))  # (B, C, H, W)
    gpa = settings(cfg, side)
    layer = authors.GPA_module(
        D, D, D, euclid=True, kappa=cfg.topk, splitM=cfg.cells_per_side, SHIERARCHY=cfg.low_side
    )
    pool = gpa["pool"]

    def theirs():
        return layer._doAtt(q, k, v, pool, 1.0, side // pool)  # (B, C, H, W)

    heads = [t.permute(0, 2, 3, 1)[:, None].contiguous() for t in (q, k, v)]  # (B, 1, H, W, D)
    record: dict[str, Any] = {"size": side, **gpa}
    with torch.no_grad():
        start = time.perf_counter()
        out_theirs = theirs()
        record["authors_first_call_s"] = time.perf_counter() - start
        timing = median_time(theirs, warmup=0, repeats=cfg.repeats)
        record["authors_median_s"] = timing["median_s"]
        reference = out_theirs.permute(0, 2, 3, 1)[:, None]  # (B, 1, H, W, D)
        for method in cfg.methods:
            backend = None if method == "auto" else method

            def ours(backend=backend):
                return gpa_attention(*heads, affinity="euclid", backend=backend, **gpa)

            if method == "auto":
                record["auto_backend"] = auto_backend(*heads, affinity="euclid", **gpa)
            start = time.perf_counter()
            out = ours()
            record[f"{method}_first_call_s"] = time.perf_counter() - start
            timing = median_time(ours, warmup=max(0, cfg.warmup - 1), repeats=cfg.repeats)
            record[f"{method}_median_s"] = timing["median_s"]
            record[f"{method}_max_abs_diff"] = (out - reference).abs().max().item()
            record[f"speedup_{method}_vs_authors"] = record["authors_median_s"] / timing["median_s"]
        if "cpu" in cfg.methods:  # phase 1 of the fused CPU backend alone: its share of the time
            from gpa_lib.attention.kernel.cpu.ops import cpu_select_key_blocks
            from gpa_lib.attention.problem import check_inputs

            problem = check_inputs(*heads, affinity="euclid", **gpa)
            timing = median_time(
                lambda: cpu_select_key_blocks(heads[0], heads[1], problem), repeats=cfg.repeats
            )
            record["cpu_phase1_median_s"] = timing["median_s"]
    return record


def run_official_bench(authors: ModuleType, cfg: OfficialBenchConfig, log=print) -> dict[str, Any]:
    """Every size of ``cfg``, plus this CPU's measured matmul rate and copy bandwidth (the floor)."""
    machine = calibrate_cpu(size=1024)
    records = []
    for side in cfg.sizes:
        record = compare_one(authors, cfg, side)
        records.append(record)
        line = f"{side}^2: authors {1e3 * record['authors_median_s']:.0f} ms"
        for method in cfg.methods:
            line += (
                f", {method} {1e3 * record[f'{method}_median_s']:.0f} ms "
                f"(x{record[f'speedup_{method}_vs_authors']:.1f}, "
                f"max diff {record[f'{method}_max_abs_diff']:.1e})"
            )
        log(line)
    return {"config": asdict(cfg), "machine": machine, "records": records}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", required=True, help="folder of a clone of zalandoresearch/gpa")
    parser.add_argument("--sizes", type=int, nargs="+", help="grid sides (tokens per side)")
    parser.add_argument("--repeats", type=int, help="timed calls per measurement")
    parser.add_argument(
        "--threads", type=int, help="torch (and kernel) threads for both sides (default: torch's)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """Entry point of ``python -m gpa_lib.bench official``."""
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(
            prog="python -m gpa_lib.bench official", description=__doc__
        )
        add_arguments(parser)
        args = parser.parse_args(args)
    authors = load_authors_module(args.path)
    cfg = OfficialBenchConfig()
    if args.sizes:
        cfg = replace(cfg, sizes=tuple(args.sizes))
    if args.repeats:
        cfg = replace(cfg, repeats=args.repeats)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    payload = run_official_bench(authors, cfg)
    payload["threads"] = torch.get_num_threads()
    if args.no_write:
        return 0
    from gpa_lib.results import write_result

    path = write_result(
        "official_gpa", payload, profile="full", wall_time_s=time.perf_counter() - started
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
