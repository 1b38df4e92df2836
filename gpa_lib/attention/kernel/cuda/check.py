"""Compile check of the GPA CUDA kernels: ``python -m gpa_lib.attention.kernel.cuda.check``.

Compiles ``csrc/gpa_phase2.cu`` (phase 2 and phase 1) alone (raw pointers, CUDA headers only, no torch) with
``nvcc -c -Xptxas -v`` for sm_80 and sm_90, the two in parallel, into a temporary directory, and
prints registers, spills, stack and dynamic shared memory per kernel and architecture. The shared
memory comes from the launchers' own ``*_smem_bytes`` functions, evaluated by a small host program
(g++), since ptxas only sees static shared memory. Exits 1 on a compile error, any spill store or
load, or a block needing more shared memory than the architecture allows. Writes nothing into the
repository.

The compiler output is cached under ``$GPA_LIB_CACHE/kernel_check`` by the hash of ``csrc/`` and
the nvcc version, so an unchanged tree is checked instantly; ``--no-cache`` compiles anyway. Without
nvcc it exits 1, or 0 with a skip message when ``GPA_KERNEL_CHECK_OPTIONAL=1``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..host_build import cache_root
from .build import CSRC_DIR, KERNEL_SOURCE, find_nvcc, source_hash

ARCHS = ("80", "90")
OPTIONAL_ENV = "GPA_KERNEL_CHECK_OPTIONAL"
#: Largest dynamic shared memory one block may opt into (bytes): A100 163 KiB, H100/H200 227 KiB.
MAX_SMEM_PER_BLOCK = {"80": 166912, "90": 232448}
#: Shared memory per SM (bytes) for the occupancy estimate, and registers per SM.
SMEM_PER_SM = {"80": 167936, "90": 233472}
REGS_PER_SM = 65536
THREADS_PER_BLOCK = 128  # every kernel, phase 2 and phase 1

_SMEM_PROGRAM = r"""
#include <cstdio>
#include "gpa_f32.cuh"
#include "gpa_tc_dkdv.cuh"
#include "gpa_phase1.cuh"
using namespace gpa;
template <int D> void row() {
  std::printf("fwd_tc %d %zu\n", D, fwd_tc_smem_bytes<D>());
  std::printf("dq_tc %d %zu\n", D, dq_tc_smem_bytes<D>());
  std::printf("dkdv_tc %d %zu\n", D, dkdv_tc_smem_bytes<D>());
  std::printf("fwd_f32 %d %zu\n", D, fwd_f32_smem_bytes<D>());
  std::printf("dq_f32 %d %zu\n", D, fwd_f32_smem_bytes<D>());
  std::printf("dkdv_f32 %d %zu\n", D, dkdv_f32_smem_bytes<D>());
  std::printf("delta_tc %d 0\ndelta_f32 %d 0\n", D, D);
  // phase 1 at the benchmark's setting: cell 8, pool 4 (16 cells of 4 rows a block), topk 16
  std::printf("phase1 %d %zu\n", D, phase1_smem_bytes<D, true>(16, 16));
}
int main() { row<16>(); row<32>(); row<64>(); row<128>(); }
"""


@dataclass
class KernelReport:
    """ptxas figures of one kernel on one architecture."""

    kernel: str  # readable name, e.g. "fwd_tc<bf16,64>"
    family: str  # key of the shared-memory table, e.g. "fwd_tc"
    head_dim: int
    arch: str
    registers: int = 0
    spill_stores: int = 0
    spill_loads: int = 0
    stack: int = 0
    smem: int | None = None  # dynamic shared memory per block, bytes

    @property
    def blocks_per_sm(self) -> int | None:
        """Resident blocks per SM allowed by registers and shared memory (an estimate)."""
        if self.smem is None:
            return None
        regs_per_warp = -(-self.registers * 32 // 256) * 256
        by_regs = REGS_PER_SM // (regs_per_warp * THREADS_PER_BLOCK // 32)
        by_smem = SMEM_PER_SM[self.arch] // (self.smem + 1024) if self.smem else by_regs
        return min(by_regs, by_smem, 2048 // THREADS_PER_BLOCK)


def readable_name(mangled: str) -> tuple[str, str, int]:
    """``_ZN3gpa17gpa_fwd_tc_kernelINS_4BF16ELi64EEEvNS_6ParamsE`` -> ("fwd_tc<bf16,64>", "fwd_tc", 64)."""
    base = re.search(r"gpa_(\w+?)_kernel", mangled)
    family = base.group(1) if base else mangled
    dim = re.search(r"Li(\d+)E", mangled)
    head_dim = int(dim.group(1)) if dim else 0
    dtype = "bf16" if "BF16" in mangled else "f16" if "F16" in mangled else "f32"
    if family == "query_f32":  # the forward and dq instantiations of one template
        family = "dq_f32" if "Lb1E" in mangled else "fwd_f32"
    if family == "phase1":  # bf16 products, split into hi + lo (three mma) or not
        dtype = "bf16x3" if "Lb1E" in mangled else "bf16"
    return f"{family}<{dtype},{head_dim}>", family, head_dim


def parse_ptxas(text: str, arch: str) -> list[KernelReport]:
    """Kernel reports from ``nvcc -Xptxas -v`` output (device functions are skipped)."""
    reports: list[KernelReport] = []
    current: KernelReport | None = None
    for line in text.splitlines():
        entry = re.search(r"Compiling entry function '(\S+)' for 'sm_(\d+)'", line)
        if entry:
            name, family, head_dim = readable_name(entry.group(1))
            current = KernelReport(name, family, head_dim, entry.group(2))
            reports.append(current)
            continue
        if current is None:
            continue
        spills = re.search(
            r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line
        )
        if spills:
            current.stack, current.spill_stores, current.spill_loads = map(int, spills.groups())
        used = re.search(r"Used (\d+) registers", line)
        if used:
            current.registers = int(used.group(1))
    return [r for r in reports if r.arch == arch]


def compile_arch(nvcc: str, arch: str, workdir: Path) -> tuple[int, str]:
    """``nvcc -c`` of the kernel source for one architecture; (return code, compiler output)."""
    command = [
        nvcc,
        "-std=c++17",
        "-O3",
        "-c",
        str(CSRC_DIR / KERNEL_SOURCE),
        "-I",
        str(CSRC_DIR),
        f"-gencode=arch=compute_{arch},code=sm_{arch}",
        "-Xptxas",
        "-v",
        "-o",
        str(workdir / f"gpa_phase2_sm{arch}.o"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir, timeout=600)
    return result.returncode, result.stdout + result.stderr


def cache_key(nvcc: str) -> str:
    """Sources and compiler of a check: the ``csrc/`` hash and a hash of ``nvcc --version``."""
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=60).stdout
    return f"{source_hash()}_{hashlib.sha256(version.encode()).hexdigest()[:8]}"


def cached_compile(nvcc: str, arch: str, workdir: Path, key: str | None) -> tuple[int, str, bool]:
    """:func:`compile_arch` through the cache (key None: no cache); (code, output, from cache)."""
    path = cache_root() / "kernel_check" / f"{key}_sm{arch}.log" if key else None
    if path is not None and path.is_file():
        return 0, path.read_text(), True
    code, output = compile_arch(nvcc, arch, workdir)
    if path is not None and code == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(output)
        os.replace(tmp, path)
    return code, output, False


def smem_table(workdir: Path) -> dict[tuple[str, int], int]:
    """(kernel family, head dim) -> dynamic shared memory bytes, from the launchers' functions."""
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        return {}
    source = workdir / "smem.cpp"
    source.write_text(_SMEM_PROGRAM)
    binary = workdir / "smem"
    build = subprocess.run(
        [
            cxx,
            "-std=c++20",
            "-DGPA_HOST_EMULATION",
            "-pthread",
            f"-I{CSRC_DIR}",
            str(source),
            "-o",
            str(binary),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if build.returncode != 0:
        return {}
    out = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60).stdout
    table = {}
    for line in out.splitlines():
        family, head_dim, size = line.split()
        table[(family, int(head_dim))] = int(size)
    return table


def format_table(reports: list[KernelReport]) -> str:
    header = f"{'kernel':<20} {'arch':<6} {'regs':>4} {'spill st/ld':>11} {'stack':>5} {'dyn smem':>9} {'blocks/SM':>9}"
    lines = [header, "-" * len(header)]
    for r in sorted(reports, key=lambda r: (r.family, r.kernel, r.arch)):
        smem = "?" if r.smem is None else str(r.smem)
        blocks = "?" if r.blocks_per_sm is None else str(r.blocks_per_sm)
        lines.append(
            f"{r.kernel:<20} sm_{r.arch:<3} {r.registers:>4} "
            f"{f'{r.spill_stores}/{r.spill_loads}':>11} {r.stack:>5} {smem:>9} {blocks:>9}"
        )
    return "\n".join(lines)


def registers_table(reports: list[KernelReport]):
    """One row per kernel build: registers per thread, spill bytes, dynamic shared memory and the
    estimated resident blocks per SM."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "kernel": r.kernel,
                "arch": f"sm_{r.arch}",
                "registers": r.registers,
                "spill bytes": r.spill_stores + r.spill_loads,
                "shared memory (bytes)": r.smem,
                "blocks per SM (est.)": r.blocks_per_sm,
            }
            for r in reports
        ]
    )


def compile_status(table) -> str:
    """The sentence chapter 2 glues about a :func:`registers_table`: builds, spills, most registers."""
    spills = int((table["spill bytes"] > 0).sum())
    most = int(table["registers"].max())
    return f"{len(table)} kernel builds, {spills} with register spills, most registers {most} per thread"


def run_check(
    archs: tuple[str, ...] = ARCHS, use_cache: bool = True
) -> tuple[int, str, list[KernelReport]]:
    """Compile for ``archs``; (exit code, printable report, kernel reports)."""
    nvcc = find_nvcc()
    if nvcc is None:
        message = "kernel_check: nvcc not found; install the CUDA toolkit (nvcc) or set CUDA_HOME"
        if os.environ.get(OPTIONAL_ENV) == "1":
            return 0, f"{message}; skipped because {OPTIONAL_ENV}=1", []
        return 1, message, []
    started = time.perf_counter()
    key = cache_key(nvcc) if use_cache else None
    with tempfile.TemporaryDirectory(prefix="gpa_kernel_check_") as tmp:
        workdir = Path(tmp)
        with ThreadPoolExecutor(max_workers=len(archs) + 1) as pool:
            smem_future = pool.submit(smem_table, workdir)
            runs = list(pool.map(lambda a: cached_compile(nvcc, a, workdir, key), archs))
            smem = smem_future.result()
    compiled = {arch: (code, output) for arch, (code, output, _) in zip(archs, runs, strict=True)}
    cached = [f"sm_{arch}" for arch, (_, _, hit) in zip(archs, runs, strict=True) if hit]
    failures, reports = [], []
    for arch, (code, output) in compiled.items():
        if code != 0:
            failures.append(f"nvcc failed for sm_{arch}:\n{output[-4000:]}")
            continue
        arch_reports = parse_ptxas(output, arch)
        if not arch_reports:
            failures.append(f"no kernels found in the ptxas output for sm_{arch}")
        for report in arch_reports:
            report.smem = smem.get((report.family, report.head_dim))
            if report.spill_stores or report.spill_loads:
                failures.append(
                    f"{report.kernel} spills on sm_{arch}: {report.spill_stores} bytes stored, "
                    f"{report.spill_loads} bytes loaded"
                )
            if report.smem is not None and report.smem > MAX_SMEM_PER_BLOCK[arch]:
                failures.append(
                    f"{report.kernel} needs {report.smem} bytes of shared memory, above the "
                    f"{MAX_SMEM_PER_BLOCK[arch]} of sm_{arch}"
                )
        reports.extend(arch_reports)
    lines = [format_table(reports)] if reports else []
    lines.append(
        f"{len(reports)} kernel builds for {', '.join('sm_' + a for a in archs)} in "
        f"{time.perf_counter() - started:.1f} s with {nvcc}"
        + (f" ({', '.join(cached)} from the cache; --no-cache recompiles)" if cached else "")
    )
    if not smem:
        lines.append("dynamic shared memory unknown: no host C++ compiler (g++) to evaluate it")
    lines.extend(failures)
    lines.append("FAILED" if failures else "OK: no register spills")
    return (1 if failures else 0), "\n".join(lines), reports


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m gpa_lib.attention.kernel.cuda.check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="compile even if the sources are cached"
    )
    args = parser.parse_args(argv)
    code, report, _ = run_check(use_cache=not args.no_cache)
    print(report)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
