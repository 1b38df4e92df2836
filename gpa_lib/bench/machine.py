"""``python -m gpa_lib.bench machine``: the facts and the two ceilings of the GPU this runs on.

A roofline floor is only as good as the rates it divides by, and datasheet rates are leads: this
measures the machine's own (the device tool's METHOD.md), in about ``--seconds`` (default 10):

- the bf16 matrix rate: ``n x n @ n x n`` (n = 8192) on random data, 2 n^3 FLOPs per product;
- the fp32 matrix rate of the same product in float32 as torch is set up (TF32 off by default:
  phase 1 of GPA runs in float32);
- the copy bandwidth: a device-to-device copy of ``--copy-gib`` GiB, counting bytes read plus written.

Each is the median over samples timed with CUDA events after a warm-up, a sample being as many calls
as take about 20 ms. With the GPU's name, compute capability, multiprocessor count, L2 size and
memory (torch), the driver, CUDA version and clocks (nvidia-smi, read-only queries) and the software
versions, the result goes through :func:`gpa_lib.results.write_result` to
``<results dir>/machine_<gpu>.json`` (``$GPA_LIB_RESULTS_DIR`` or ``data/results``). Without a CUDA
GPU it says so and writes nothing; ``--device cpu`` runs the same code at small sizes as a dry run.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import torch

# The stored machines are read by the chapters; their home is the analysis layer.
from gpa_lib.attention.analysis.stored import read_ceilings as read_ceilings  # noqa: E402
from gpa_lib.attention.analysis.stored import stored_machines as stored_machines  # noqa: E402

# The run's identity lives with the rest of the provenance; re-exported for the GPU scripts.
from gpa_lib.results import SOURCE_COMMIT_ENV as SOURCE_COMMIT_ENV
from gpa_lib.results import run_identity as run_identity
from gpa_lib.results import source_digest as source_digest

#: Every GPU step of ``scripts/gpu_run.sh`` prints this phrase when it cannot run for want of a GPU.
NO_GPU = "needs a CUDA GPU"

#: Read-only ``nvidia-smi --query-gpu`` fields; never a field or option that changes the card's state.
SMI_FIELDS = (
    "name",
    "driver_version",
    "memory.total",
    "pstate",
    "clocks.sm",
    "clocks.max.sm",
    "clocks.mem",
    "clocks.max.mem",
    "power.draw",
    "power.limit",
    "temperature.gpu",
)


def gpu_unavailable_reason() -> str | None:
    """Why nothing here can be measured (None: torch sees a CUDA device)."""
    if torch.cuda.is_available():
        return None
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    return (
        f"{NO_GPU}: torch.cuda.is_available() is False here (torch {torch.__version__}, {build}); "
        "nothing was measured or written"
    )


def gpu_slug(name: str) -> str:
    """A file-name stem of a GPU name: ``'NVIDIA H200'`` -> ``'nvidia_h200'``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "unknown_gpu"


def _run(argv: list[str], timeout: float = 20.0) -> str | None:
    """stdout of a short command, or None when it is missing, fails or hangs."""
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def nvidia_smi_facts(fields: tuple[str, ...] = SMI_FIELDS) -> dict[str, Any]:
    """GPU 0 as nvidia-smi reports it (``{}`` without nvidia-smi); field names as nvidia-smi's."""
    out = _run(["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader"])
    if out is None and fields != ("name", "driver_version"):
        return nvidia_smi_facts(("name", "driver_version"))  # an older nvidia-smi lacks a field
    if not out:
        return {}
    values = [v.strip() for v in out.strip().splitlines()[0].split(",")]
    facts: dict[str, Any] = dict(zip(fields, values, strict=False))
    header = _run(["nvidia-smi"]) or ""
    match = re.search(r"CUDA Version:\s*([0-9.]+)", header)
    if match:
        facts["cuda_version"] = match.group(1)  # the newest CUDA the driver supports
    return facts


def nvcc_version() -> str | None:
    """``release X.Y`` line of ``nvcc --version`` (the compiler the extension build uses)."""
    from gpa_lib.attention.kernel.build import find_nvcc

    nvcc = find_nvcc()
    out = _run([nvcc, "--version"]) if nvcc else None
    if not out:
        return None
    match = re.search(r"release [^\n]*", out)
    return match.group(0) if match else out.strip().splitlines()[-1]


def software_versions() -> dict[str, Any]:
    from importlib import metadata

    versions: dict[str, Any] = {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "nvcc": nvcc_version(),
    }
    for name in ("triton", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def torch_device_facts(index: int = 0) -> dict[str, Any]:
    """Name, compute capability, multiprocessors, L2 and memory of CUDA device ``index``."""
    props = torch.cuda.get_device_properties(index)
    return {
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "sm_count": props.multi_processor_count,
        "l2_cache_bytes": getattr(props, "L2_cache_size", None),
        "total_memory_bytes": props.total_memory,
        "device_count": torch.cuda.device_count(),
    }


# --- timing ------------------------------------------------------------------------------------


def time_op(
    fn: Callable[[], Any],
    *,
    device: torch.device,
    seconds: float,
    warmup_s: float = 0.3,
    sample_s: float = 0.02,
    min_samples: int = 5,
) -> dict[str, Any]:
    """Median seconds per call of ``fn``: samples of several calls, CUDA events on a GPU.

    Warm-up: at least two synchronised calls and ``warmup_s`` of wall time. Then samples of as many
    calls as take about ``sample_s`` each, until ``seconds`` have passed and ``min_samples`` were taken.
    """
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    started, calls = time.perf_counter(), 0
    while calls < 2 or time.perf_counter() - started < warmup_s:
        last = time.perf_counter()
        fn()
        sync()
        calls += 1
    per_call = max(time.perf_counter() - last, 1e-7)
    per_sample = max(1, round(sample_s / per_call))
    samples: list[float] = []
    began = time.perf_counter()
    while len(samples) < min_samples or time.perf_counter() - began < seconds:
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(per_sample):
                fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1e3 / per_sample)
        else:
            t0 = time.perf_counter()
            for _ in range(per_sample):
                fn()
            samples.append((time.perf_counter() - t0) / per_sample)
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "samples": len(samples),
        "calls_per_sample": per_sample,
        "timer": "cuda events" if cuda else "perf_counter",
    }


def measure_matmul(
    n: int, dtype: torch.dtype, device: torch.device, seconds: float, seed: int = 0
) -> dict[str, Any]:
    """Rate of an ``n x n @ n x n`` product on random normal data (never zeros: they run faster)."""
    generator = torch.Generator(device=device).manual_seed(seed)
    a = torch.randn(n, n, generator=generator, device=device, dtype=dtype)
    b = torch.randn(n, n, generator=generator, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    timing = time_op(lambda: torch.matmul(a, b, out=out), device=device, seconds=seconds)
    flops = 2.0 * n**3
    return {
        "n": n,
        "dtype": str(dtype).removeprefix("torch."),
        "flops_per_call": flops,
        **timing,
        "flops_per_s": flops / timing["median_s"],
        "best_flops_per_s": flops / timing["min_s"],
    }


def measure_copy(nbytes: int, device: torch.device, seconds: float) -> dict[str, Any]:
    """Bandwidth of ``dst.copy_(src)`` over ``nbytes``, counting bytes read plus bytes written."""
    # float32 elements: 2 GiB stays under 2**31 elements (no 64-bit indexing path needed).
    src = torch.randn(max(1, nbytes // 4), device=device)  # random, never zeros
    dst = torch.empty_like(src)
    nbytes = src.numel() * src.element_size()
    timing = time_op(lambda: dst.copy_(src), device=device, seconds=seconds)
    moved = 2.0 * nbytes
    return {
        "bytes": nbytes,
        "bytes_moved_per_call": moved,
        **timing,
        "bytes_per_s": moved / timing["median_s"],
        "best_bytes_per_s": moved / timing["min_s"],
    }


def measure_ceilings(
    device: str | torch.device = "cuda",
    *,
    seconds: float = 10.0,
    matmul_n: int = 8192,
    copy_bytes: int = 2 * 2**30,
) -> dict[str, Any]:
    """The bf16 and fp32 matrix rates and the copy bandwidth, in about ``seconds`` of timing."""
    device = torch.device(device)
    shares = {"bf16": 0.5, "fp32": 0.2, "copy": 0.3}
    bf16 = measure_matmul(matmul_n, torch.bfloat16, device, seconds * shares["bf16"])
    fp32 = measure_matmul(matmul_n, torch.float32, device, seconds * shares["fp32"])
    copy = measure_copy(copy_bytes, device, seconds * shares["copy"])
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        # The two numbers a roofline floor divides by (median rates).
        "bf16_flops_per_s": bf16["flops_per_s"],
        "bytes_per_s": copy["bytes_per_s"],
        "fp32_flops_per_s": fp32["flops_per_s"],
        "fp32_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "bf16_matmul": bf16,
        "fp32_matmul": fp32,
        "copy": copy,
    }


def machine_facts(seconds: float = 10.0, **sizes: Any) -> dict[str, Any]:
    """Everything ``python -m gpa_lib.bench machine`` stores (on CUDA device 0)."""
    facts: dict[str, Any] = {
        "gpu": torch_device_facts(0),
        "nvidia_smi": nvidia_smi_facts(),
        "software": software_versions(),
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
        print(f"machine: {reason}")
        return 1
    started = time.perf_counter()
    facts = machine_facts(
        args.seconds, matmul_n=args.matmul_n, copy_bytes=int(args.copy_gib * 2**30)
    )
    print(summary_line(facts))
    if args.no_write:
        return 0
    from gpa_lib.results import write_result

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
