"""``python -m gpa_lib.bench sanitize``: the fused CUDA kernels under NVIDIA's compute-sanitizer.

Two modes.

- ``--run-cases [--short]`` runs the case functions of :func:`all_cases` once, in this process: each
  calls a kernel on a small problem and checks its answer against the reference backend in float64
  (on the same rounded inputs). One line per case, then ``sanitize cases: ...``; exit 1 when a case
  raises or its worst relative error passes its dtype's bound (a sanity check: the accuracy tests
  proper are ``tests/test_attention_cuda.py``).
- Without ``--run-cases`` (the driver, step ``sanitizer`` of ``scripts/gpu_run.sh``) it runs that
  mode under ``compute-sanitizer --tool T`` for each tool of ``--tools``: ``memcheck`` over every
  case, ``racecheck`` and ``initcheck`` over the short ones, with ``PYTORCH_NO_CUDA_MEMORY_CACHING=1``
  (every tensor its own allocation, so that an access out of bounds is not hidden inside a pooled
  block), each within what is left of ``--time-budget-s``. The last line,
  ``sanitize: memcheck 7 cases, 0 errors; ...``, is the step's summary; exit 0 when every tool ran
  and found nothing and every case was within its bound.

Without a CUDA GPU it says so and exits 1; without ``compute-sanitizer`` (``$CUDA_HOME/bin``, beside
nvcc, or on ``PATH``) it prints ``sanitize: skipped: ...`` and exits 2. It writes no file: its output
goes to the run's log.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from gpa_lib.results import gpu_unavailable_reason

#: The tools of the driver, in order, and whether each runs every case (False: the short set only).
TOOLS = {"memcheck": True, "racecheck": False, "initcheck": False}
#: Largest relative error (2-norm) accepted per dtype, against float64; a bf16 kernel of unit-scale
#: attention lands near 4e-3, float16 near 5e-4, float32 near 5e-7.
REL_BOUND = {torch.bfloat16: 2e-2, torch.float16: 3e-3, torch.float32: 1e-5}


@dataclass(frozen=True)
class CaseResult:
    """What one case function reports."""

    detail: str  # one line: the problem and its errors
    worst: float  # largest relative error of the case
    bound: float  # largest accepted

    @property
    def ok(self) -> bool:
        return self.worst <= self.bound


@dataclass(frozen=True)
class SanitizeCase:
    """A named call of a kernel on a small problem, checked against the reference."""

    name: str
    run: Callable[[str, str], CaseResult]  # (device, backend) -> result
    short: bool  # also in the short set (racecheck, initcheck)


@dataclass(frozen=True)
class GPASpec:
    """A small ``gpa_attention`` problem; grids in tokens."""

    dtype: torch.dtype
    head_dim: int  # D = Dv
    affinity: str  # "dot" or "euclid"
    q_grid: tuple[int, int]  # (Hq, Wq)
    k_grid: tuple[int, int]  # (Hk, Wk)
    batch: int  # B
    heads: int  # h
    pool: int
    cell: int
    topk: int

    def label(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        return (
            f"{dtype} D={self.head_dim} {self.affinity} q{self.q_grid} k{self.k_grid} "
            f"B{self.batch} h{self.heads} pool{self.pool} cell{self.cell} topk{self.topk}"
        )


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def check_gpa_case(spec: GPASpec, device: str, backend: str = "cuda") -> CaseResult:
    """``gpa_attention`` forward and backward through ``backend`` on ``device``, against the
    reference backend in float64 on the CPU on the same rounded inputs: relative errors of the
    output and of dq, dk, dv."""
    from gpa_lib.attention import gpa_attention

    generator = torch.Generator(device="cpu").manual_seed(zlib.crc32(spec.label().encode()))
    shape = (spec.batch, spec.heads)
    q = torch.randn(*shape, *spec.q_grid, spec.head_dim, generator=generator)  # (B, h, Hq, Wq, D)
    k = torch.randn(*shape, *spec.k_grid, spec.head_dim, generator=generator)  # (B, h, Hk, Wk, D)
    v = torch.randn(*shape, *spec.k_grid, spec.head_dim, generator=generator)  # (B, h, Hk, Wk, D)
    grad = torch.randn(*shape, *spec.q_grid, spec.head_dim, generator=generator)
    settings = dict(pool=spec.pool, cell=spec.cell, topk=spec.topk, affinity=spec.affinity)
    exact = [t.to(spec.dtype).double().requires_grad_() for t in (q, k, v)]
    reference = gpa_attention(*exact, backend="reference", **settings)
    reference.backward(grad.double())
    ours = [t.to(device, spec.dtype).requires_grad_() for t in (q, k, v)]
    out = gpa_attention(*ours, backend=backend, **settings)
    out.backward(grad.to(device, spec.dtype))
    if device == "cuda":
        torch.cuda.synchronize()
    errors = {"out": _relative(out, reference)}
    for name, mine, theirs in zip(("dq", "dk", "dv"), ours, exact, strict=True):
        errors[name] = _relative(mine.grad, theirs.grad)
    shown = " ".join(f"{name} {value:.1e}" for name, value in errors.items())
    return CaseResult(
        f"{spec.label()}: rel err {shown}", max(errors.values()), REL_BOUND[spec.dtype]
    )


#: Phase 2 (the fused kernel) through ``gpa_attention(backend="cuda")``: dtypes, head dims, both
#: affinities, unequal query and key grids, several batch and head counts, pool 2-8, cell 4-16, topk
#: 1-16. The first three are the short set.
PHASE2_SPECS = (
    GPASpec(torch.bfloat16, 64, "dot", (32, 32), (32, 32), 1, 2, 4, 8, 4),
    GPASpec(torch.float16, 32, "euclid", (32, 48), (16, 32), 2, 1, 4, 8, 3),
    GPASpec(torch.float32, 128, "dot", (16, 16), (24, 24), 1, 1, 2, 4, 5),
    GPASpec(torch.bfloat16, 32, "euclid", (64, 64), (64, 64), 2, 2, 4, 8, 8),
    GPASpec(torch.float16, 64, "dot", (48, 32), (32, 48), 1, 3, 4, 16, 2),
    GPASpec(torch.float32, 64, "euclid", (32, 32), (32, 32), 1, 2, 8, 8, 1),
    GPASpec(torch.bfloat16, 128, "dot", (32, 32), (64, 64), 1, 1, 4, 8, 16),
)
PHASE2_CASES = [
    SanitizeCase(f"phase2 {spec.label()}", partial(check_gpa_case, spec), short=i < 3)
    for i, spec in enumerate(PHASE2_SPECS)
]

# --- The fused phase-1 kernel ------------------------------------------------------------------
# (The phase-2 cases above run it too: gpa_attention(backend="cuda") selects with it.) Each case
# calls the selection kernel alone, split and single-term products, and compares its picks with the
# float32 torch selection on the same device; the error is the share of (cell, block) picks that
# differ, and the bound 1e-3 is the kernel issue's 99.9%.
PHASE1_PICK_BOUND = 1e-3


def check_phase1_case(spec: GPASpec, device: str, backend: str = "cuda") -> CaseResult:
    """The fused phase-1 kernel (``backend`` unused) against ``select_key_blocks_flat``."""
    from gpa_lib.attention.kernel.cuda.phase1 import pick_agreement, select_key_blocks_fused
    from gpa_lib.attention.problem import check_inputs
    from gpa_lib.attention.selection import select_key_blocks_flat

    generator = torch.Generator(device="cpu").manual_seed(zlib.crc32(spec.label().encode()))
    shape = (spec.batch, spec.heads)
    q = torch.randn(*shape, *spec.q_grid, spec.head_dim, generator=generator)  # (B, h, Hq, Wq, D)
    k = torch.randn(*shape, *spec.k_grid, spec.head_dim, generator=generator)  # (B, h, Hk, Wk, D)
    q, k = q.to(device, spec.dtype), k.to(device, spec.dtype)
    problem = check_inputs(
        q, k, k, pool=spec.pool, cell=spec.cell, topk=spec.topk, affinity=spec.affinity
    )
    oracle = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
    differs = {}
    for label, split in (("split", True), ("single", False)):
        ours = select_key_blocks_fused(q, k, problem, split=split)  # (B, h, K, k)
        differs[label] = 1.0 - pick_agreement(ours, oracle)["agreement"]
    if device == "cuda":
        torch.cuda.synchronize()
    shown = " ".join(f"{name} {value:.1e}" for name, value in differs.items())
    return CaseResult(
        f"phase1 {spec.label()}: picks differing {shown}", differs["split"], PHASE1_PICK_BOUND
    )


#: Head dims 16-128, both affinities, unequal grids, (cell/pool)^2 of 1, 4, 9, 16 and 64 rows per
#: cell, topk up to every key block. The first two are the short set. The last phase-2 case is the
#: pose generator's float32 heads of 16.
PHASE1_SPECS = (
    GPASpec(torch.bfloat16, 64, "dot", (32, 48), (40, 24), 2, 2, 4, 8, 6),
    GPASpec(torch.float32, 16, "euclid", (24, 24), (36, 36), 1, 3, 1, 3, 9),
    GPASpec(torch.float16, 128, "dot", (32, 32), (16, 16), 1, 1, 1, 8, 64),
    GPASpec(torch.bfloat16, 32, "euclid", (64, 64), (64, 64), 1, 2, 2, 8, 16),
    GPASpec(torch.float32, 32, "dot", (32, 32), (32, 32), 1, 1, 4, 4, 3),
)
PHASE1_CASES: list[SanitizeCase] = [
    SanitizeCase(f"phase1 {spec.label()}", partial(check_phase1_case, spec), short=i < 2)
    for i, spec in enumerate(PHASE1_SPECS)
] + [
    SanitizeCase(
        "phase2 pose heads",
        partial(
            check_gpa_case, GPASpec(torch.float32, 16, "dot", (32, 32), (32, 32), 2, 4, 4, 8, 16)
        ),
        short=False,
    )
]


def all_cases(short: bool = False) -> list[SanitizeCase]:
    """Every case, phase 2's then phase 1's; ``short``: only those of the short set."""
    return [case for case in (*PHASE2_CASES, *PHASE1_CASES) if case.short or not short]


def run_cases(
    cases: list[SanitizeCase], device: str = "cuda", backend: str = "cuda", log=None
) -> tuple[int, float]:
    """Run ``cases`` one after the other; (how many failed or raised, worst relative error)."""
    log = log or partial(print, flush=True)
    failed, worst = 0, 0.0
    for index, case in enumerate(cases):
        try:
            result = case.run(device, backend)
        except Exception as err:  # noqa: BLE001 - report the case, run the others
            failed += 1
            log(f"case {index}: {case.name}: FAILED: {type(err).__name__}: {err}")
            continue
        worst = max(worst, result.worst)
        failed += not result.ok
        verdict = "" if result.ok else f" OUTSIDE its bound {result.bound:.0e}"
        log(f"case {index}: {result.detail}{verdict}")
    return failed, worst


def find_sanitizer() -> str | None:
    """Path of compute-sanitizer: ``$CUDA_HOME/bin``, beside nvcc, or on ``PATH``."""
    from gpa_lib.attention.kernel.cuda.build import find_nvcc

    places = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = find_nvcc()
    if nvcc:
        places.append(str(Path(nvcc).resolve().parent.parent))
    for home in places:
        if home and (Path(home) / "bin" / "compute-sanitizer").is_file():
            return str(Path(home) / "bin" / "compute-sanitizer")
    return shutil.which("compute-sanitizer")


def sanitizer_findings(tool: str, output: str) -> int | None:
    """Errors (memcheck, initcheck) or hazards (racecheck) in a compute-sanitizer summary; None
    when the output holds no summary (the tool did not finish)."""
    pattern = (
        r"RACECHECK SUMMARY: (\d+) hazard" if tool == "racecheck" else r"ERROR SUMMARY: (\d+) error"
    )
    found = re.findall(pattern, output)
    return int(found[-1]) if found else None


def run_tool(sanitizer: str, tool: str, short: bool, limit_s: float, log=None) -> dict:
    """One compute-sanitizer run of ``--run-cases`` under ``tool``; what it found."""
    log = log or partial(print, flush=True)
    argv = [sanitizer, "--tool", tool, "--error-exitcode", "3"]
    argv += [sys.executable, "-m", "gpa_lib.bench", "sanitize", "--run-cases"]
    argv += ["--short"] if short else []
    environment = {**os.environ, "PYTORCH_NO_CUDA_MEMORY_CACHING": "1"}
    log(f"=== {tool} ({'short set' if short else 'every case'}, at most {limit_s:.0f} s)")
    started = time.perf_counter()
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=limit_s, env=environment, check=False
        )
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as err:
        output = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else err.stdout or ""
        code = None
    lines = output.strip().splitlines()
    for line in lines[-60:]:
        log(f"  {line}")
    cases = sum(line.startswith("case ") for line in lines)
    found = sanitizer_findings(tool, output)
    return {
        "tool": tool,
        "cases": cases,
        "found": found,
        "returncode": code,
        "seconds": time.perf_counter() - started,
        "cases_ok": any(
            line.startswith("sanitize cases:") and "all within" in line for line in lines
        ),
    }


def summary_line(results: list[dict]) -> str:
    """The driver's last line: per tool, its cases and what it found."""
    parts = []
    for r in results:
        noun = "hazards" if r["tool"] == "racecheck" else "errors"
        if r["returncode"] is None:
            found = f"TIMED OUT after {r['seconds']:.0f} s"
        elif r["found"] is None:
            found = f"no summary (exit {r['returncode']})"
        else:
            found = f"{r['found']} {noun}"
        if r["returncode"] is not None and not r["cases_ok"]:
            found += ", a case FAILED"
        parts.append(f"{r['tool']} {r['cases']} cases, {found}")
    return "sanitize: " + "; ".join(parts)


def clean(result: dict) -> bool:
    return result["returncode"] == 0 and result["found"] == 0 and result["cases_ok"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-cases", action="store_true", help="run the cases here (what the sanitizer runs)"
    )
    parser.add_argument("--short", action="store_true", help="only the short set of cases")
    parser.add_argument(
        "--tools",
        nargs="+",
        choices=tuple(TOOLS),
        default=list(TOOLS),
        help="compute-sanitizer tools, in order (memcheck runs every case, the others the short set)",
    )
    parser.add_argument("--time-budget-s", type=float, default=150.0, help="for all tools together")


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(
            prog="python -m gpa_lib.bench sanitize", description=__doc__
        )
        add_arguments(parser)
        args = parser.parse_args(args)
    reason = gpu_unavailable_reason()
    if reason is not None:
        print(f"sanitize: {reason}; nothing was run or written")
        return 1
    if args.run_cases:
        cases = all_cases(short=args.short)
        failed, worst = run_cases(cases)
        state = (
            "all within their bounds" if not failed else f"{failed} FAILED or outside their bound"
        )
        print(f"sanitize cases: {len(cases)} cases, worst relative error {worst:.1e}, {state}")
        return 1 if failed else 0
    sanitizer = find_sanitizer()
    if sanitizer is None:
        print(
            "sanitize: skipped: compute-sanitizer was not found ($CUDA_HOME/bin, beside nvcc, PATH); "
            "it ships with the CUDA toolkit"
        )
        return 2
    started, results = time.perf_counter(), []
    for index, tool in enumerate(args.tools):
        left = args.time_budget_s - (time.perf_counter() - started)
        later = len(args.tools) - index - 1
        limit = left - 20 * later if later else left  # leave each later tool 20 s at least
        if limit < 15:
            print(f"=== {tool}: skipped, {left:.0f} s of the budget left")
            continue
        results.append(run_tool(sanitizer, tool, short=not TOOLS[tool], limit_s=limit))
    print(summary_line(results) if results else "sanitize: no tool ran within the budget")
    return 0 if results and all(clean(r) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
