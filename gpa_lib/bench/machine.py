"""``python -m gpa_lib.bench machine``: the facts and the two ceilings of the GPU this runs on.

A roofline floor is only as good as the rates it divides by, and datasheet rates are leads: this
measures the machine's own (the device tool's METHOD.md), in about ``--seconds`` (default 10):

- the bf16 matrix rate: ``n x n @ n x n`` (n = 8192) on random data, 2 n^3 FLOPs per product;
- the fp32 matrix rate of the same product in float32 as torch is set up (TF32 off by default:
  phase 1 of GPA runs in float32);
- the copy bandwidth: a device-to-device copy of ``--copy-gib`` GiB, counting bytes read plus written.

Each is the median over samples timed with CUDA events after a warm-up, a sample being as many calls
as take about 20 ms (:func:`gpa_lib.measure.measure_ceilings`). With the GPU's name, compute
capability, multiprocessor count, L2 size and memory (torch), the driver, CUDA version and clocks
(nvidia-smi, read-only queries) and the software versions (:mod:`gpa_lib.results`), the result goes
through :func:`gpa_lib.results.write_result` to
``<results dir>/machine_<gpu>.json`` (``$GPA_LIB_RESULTS_DIR`` or ``data/results``). Without a CUDA
GPU it says so and writes nothing; ``--device cpu`` runs the same code at small sizes as a dry run.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from gpa_lib.measure import measure_ceilings
from gpa_lib.results import (
    gpu_slug,
    gpu_unavailable_reason,
    nvidia_smi_facts,
    run_identity,
    software_versions,
    torch_device_facts,
    write_result,
)


def machine_facts(seconds: float = 10.0, **sizes: Any) -> dict[str, Any]:
    """Everything ``python -m gpa_lib.bench machine`` stores (on CUDA device 0)."""
    from gpa_lib.attention.kernel.cuda.build import find_nvcc

    facts: dict[str, Any] = {
        "gpu": torch_device_facts(0),
        "nvidia_smi": nvidia_smi_facts(),
        "software": software_versions(find_nvcc()),
    }
    started = time.perf_counter()
    facts["ceilings"] = measure_ceilings("cuda", seconds=seconds, **sizes)
    facts["ceilings"]["measured_s"] = time.perf_counter() - started
    # Clocks right after the products: the card's state as found (never set here).
    facts["nvidia_smi_after"] = nvidia_smi_facts(("clocks.sm", "clocks.mem", "temperature.gpu"))
    return facts


def summary_line(facts: dict[str, Any]) -> str:
    c = facts["ceilings"]
    return (
        f"{facts['gpu']['name']} ({facts['gpu']['sm_count']} SMs, driver "
        f"{facts['nvidia_smi'].get('driver_version', '?')}, torch {facts['software']['torch']}): "
        f"bf16 {c['bf16_flops_per_s'] / 1e12:.0f} TFLOP/s, fp32 {c['fp32_flops_per_s'] / 1e12:.1f} "
        f"TFLOP/s, copy {c['bytes_per_s'] / 1e12:.2f} TB/s (read + written)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="timing budget of the three ceilings"
    )
    parser.add_argument("--matmul-n", type=int, default=8192, help="side of the square products")
    parser.add_argument("--copy-gib", type=float, default=2.0, help="GiB copied per call")
    parser.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default="cuda",
        help="cpu: a dry run of the timing code at small sizes; prints, writes nothing",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """Entry point; ``args`` is the parsed namespace of ``python -m gpa_lib.bench machine`` or an argv list."""
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(
            prog="python -m gpa_lib.bench machine", description=__doc__
        )
        add_arguments(parser)
        args = parser.parse_args(args)
    if args.device == "cpu":
        ceilings = measure_ceilings(
            "cpu", seconds=args.seconds, matmul_n=min(args.matmul_n, 256), copy_bytes=2**20
        )
        print(json.dumps({k: v for k, v in ceilings.items() if not isinstance(v, dict)}))
        return 0
    reason = gpu_unavailable_reason()
    if reason is not None:
        print(f"machine: {reason}; nothing was measured or written")
        return 1
    started = time.perf_counter()
    facts = machine_facts(
        args.seconds, matmul_n=args.matmul_n, copy_bytes=int(args.copy_gib * 2**30)
    )
    print(summary_line(facts))
    if args.no_write:
        return 0
    path = write_result(
        f"machine_{gpu_slug(facts['gpu']['name'])}",
        facts,
        profile="gpu",
        wall_time_s=time.perf_counter() - started,
        **run_identity(),
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
