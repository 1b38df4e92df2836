"""The fused CPU kernel's build (``csrc/gpa_cpu.cpp``): g++ once, a cache, ctypes.

The source has no torch headers, so a build takes about a second; it goes through the one host door
(:func:`gpa_lib.attention.kernel.host_build.build_shared_library`), is cached under
:func:`~gpa_lib.attention.kernel.host_build.cache_root` and named by a hash of the source, the
compiler and this CPU's instruction-set flags (it is built with ``-march=native``), so every later
process loads it at once. :func:`cpu_kernel_reason` says why it cannot be used (no compiler, a failed
build); a failed build is remembered for the life of the process. The calls are in :mod:`.ops`, as
the CUDA kernel's are in :mod:`gpa_lib.attention.kernel.cuda.ops`.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import threading
from pathlib import Path

import torch

from ..host_build import build_shared_library, cache_root, compiler

SOURCE = Path(__file__).resolve().parent / "csrc" / "gpa_cpu.cpp"
FLAGS = ("-std=c++17", "-O3", "-march=native", "-fopenmp", "-fPIC", "-shared")
#: dtypes the kernel is built for, and their entry points.
ENTRY_POINTS = {torch.float32: "gpa_cpu_forward_f32", torch.float64: "gpa_cpu_forward_f64"}
SELECT_ENTRY_POINTS = {torch.float32: "gpa_cpu_select_f32", torch.float64: "gpa_cpu_select_f64"}
BACKWARD_ENTRY_POINTS = {
    torch.float32: "gpa_cpu_backward_f32",
    torch.float64: "gpa_cpu_backward_f64",
}


def _cpu_flags() -> str:
    """This CPU's instruction-set flags (what ``-march=native`` compiles for)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_key(cxx: str) -> str:
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update(" ".join(FLAGS).encode())
    digest.update(os.path.realpath(cxx).encode())
    digest.update(_cpu_flags().encode())
    return digest.hexdigest()[:12]


_lock = threading.Lock()
_build_error: str | None = None


@functools.cache
def _library() -> ctypes.CDLL:
    target = cache_root() / "cpu_kernel" / library_key(compiler()) / "libgpa_cpu.so"
    build_shared_library([*FLAGS, str(SOURCE)], target, timeout_s=300, what="the CPU kernel build")
    lib = ctypes.CDLL(str(target))
    for name in (
        *ENTRY_POINTS.values(),
        *SELECT_ENTRY_POINTS.values(),
        *BACKWARD_ENTRY_POINTS.values(),
    ):
        getattr(lib, name).restype = ctypes.c_int
    lib.gpa_cpu_workspace_size.restype = ctypes.c_long
    lib.gpa_cpu_backward_workspace_size.restype = ctypes.c_long
    return lib


def cpu_kernel_reason() -> str | None:
    """Why the fused CPU kernel cannot be used here (None: it is built or can be)."""
    if _build_error is not None:
        return _build_error
    if compiler() is None:
        return "no C++ compiler for the fused CPU kernel: install g++ or set CXX"
    return None


def load_cpu_kernel() -> ctypes.CDLL:
    """The built library (building it on first use); RuntimeError with the reason if it cannot be."""
    global _build_error
    with _lock:
        reason = cpu_kernel_reason()
        if reason is not None:
            raise RuntimeError(reason)
        try:
            return _library()
        except Exception as err:  # noqa: BLE001 - compiler, linker and loader errors alike
            first = str(err).strip().splitlines()
            _build_error = (
                f"building the fused CPU kernel failed ({type(err).__name__}: "
                f"{first[0] if first else ''}); see gpa_lib.attention.kernel.cpu.build"
            )
            raise RuntimeError(_build_error) from err
