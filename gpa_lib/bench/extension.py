"""``python -m gpa_lib.bench extension``: build the fused CUDA kernel once, with the compiler's output.

Calls :func:`gpa_lib.attention.kernel.cuda.build.load_extension` with ``verbose=True`` (ninja's command
lines and any compiler message go to stdout) and prints how long the build (or the load from the
cache under ``$GPA_LIB_CACHE``) took, the nvcc release and ``TORCH_CUDA_ARCH_LIST``. Then one small
call of the kernel, compared with the reference, says that the built module runs; the full checks are
``pytest -m gpu tests/test_attention_cuda.py``. Without a CUDA GPU it says so within seconds.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from gpa_lib.results import gpu_unavailable_reason, nvcc_version


def smoke_call() -> float:
    """Largest |kernel - reference| of phase 2 on one small random bf16 problem (float32 reference)."""
    from gpa_lib.attention.backends.reference import attend_selected
    from gpa_lib.attention.kernel.cuda.ops import phase2_fused
    from gpa_lib.attention.problem import check_inputs
    from gpa_lib.attention.selection import select_key_blocks_flat

    generator = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (
        torch.randn(1, 2, 32, 32, 64, generator=generator, device="cuda", dtype=torch.bfloat16)
        for _ in range(3)
    )  # (B, h, H, W, D)
    problem = check_inputs(q, k, v, pool=4, cell=8, topk=4, affinity="dot")
    selection = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
    with torch.no_grad():
        out = phase2_fused(
            q, k, v, selection.unflatten(2, problem.cell_grid), pool=4, cell=8, affinity="dot"
        )
        ref = attend_selected(q.float(), k.float(), v.float(), selection, problem)
    torch.cuda.synchronize()
    return (out.float() - ref).abs().max().item()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no compiler output (verbose=False)")


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="python -m gpa_lib.bench extension")
        add_arguments(parser)
        args = parser.parse_args(args)
    reason = gpu_unavailable_reason()
    if reason is not None:
        print(f"extension: {reason}; nothing was built or written")
        return 1
    from gpa_lib.attention.kernel.cuda import build

    print(
        f"nvcc: {nvcc_version(build.find_nvcc())}; torch {torch.__version__} (CUDA {torch.version.cuda}); "
        f"TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', '(unset: the visible GPU)')}; "
        f"cache {build.cache_root()}",
        flush=True,
    )
    started = time.perf_counter()
    try:
        build.load_extension(verbose=not args.quiet)
    except build.CudaKernelUnavailable as err:
        print(f"extension: FAILED after {time.perf_counter() - started:.1f} s: {err}")
        return 1
    build_s = time.perf_counter() - started
    print(f"built or loaded in {build_s:.1f} s; one small bf16 call follows", flush=True)
    error = smoke_call()
    verdict = "runs" if error < 0.05 else "FAILED: disagrees with the reference"
    # bf16 outputs of unit-scale attention: errors near 1e-2 at most.
    print(
        f"extension: built or loaded in {build_s:.1f} s; a small bf16 call {verdict} "
        f"(max |kernel - fp32 reference| = {error:.2e})"
    )
    return 0 if error < 0.05 else 1


if __name__ == "__main__":
    raise SystemExit(main())
