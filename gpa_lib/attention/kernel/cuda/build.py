"""The one guarded door to the compiled GPA kernel.

:func:`load_extension` builds ``csrc/gpa_phase2.cu`` and its thin torch binding
``csrc/gpa_binding.cpp`` with ``torch.utils.cpp_extension.load_inline`` on first use, into a build
directory cached under ``$GPA_LIB_CACHE`` (default ``~/.cache/gpa_lib``) and named by a hash of every
file in ``csrc/``, so an edit to any header rebuilds and an unchanged tree never does. Everything
else asks :func:`cuda_kernel_available`. Nothing here touches nvcc or the GPU at import time; a
missing toolkit, GPU or build tool gives an error that says what to install.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import threading
from pathlib import Path
from types import ModuleType

import torch

from ..host_build import cache_root

CSRC_DIR = Path(__file__).resolve().parent / "csrc"
KERNEL_SOURCE = "gpa_phase2.cu"  # kernels and launchers, raw pointers, no torch headers
BINDING_SOURCE = "gpa_binding.cpp"  # thin torch binding
#: Tensor-core mma.sync on bf16 and cp.async need compute capability 8.0 (Ampere) or newer.
MIN_CAPABILITY = (8, 0)


class CudaKernelUnavailable(RuntimeError):
    """The fused kernel cannot be built or run here; the message says what is missing."""


def source_files() -> list[Path]:
    """Every file of ``csrc/`` (sources and headers), sorted."""
    return sorted(
        p for p in CSRC_DIR.iterdir() if p.is_file() and p.suffix in {".cu", ".cuh", ".h", ".cpp"}
    )


def source_hash() -> str:
    """A short hash of the names and contents of every ``csrc/`` file."""
    digest = hashlib.sha256()
    for path in source_files():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def find_nvcc() -> str | None:
    """Path of nvcc: ``$CUDA_HOME/bin/nvcc``, else the one on ``PATH``; None when there is none."""
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if home and (Path(home) / "bin" / "nvcc").is_file():
            return str(Path(home) / "bin" / "nvcc")
    return shutil.which("nvcc")


def toolchain_reason() -> str | None:
    """Why the extension cannot be compiled on this machine (None: it can be tried)."""
    if torch.version.cuda is None:
        return (
            f"this torch build ({torch.__version__}) has no CUDA support; install a CUDA build of "
            "torch (https://pytorch.org/get-started/locally/)"
        )
    if find_nvcc() is None:
        return (
            f"nvcc was not found; install the CUDA toolkit {torch.version.cuda} (the version torch "
            "was built with) and put its bin/ on PATH or set CUDA_HOME"
        )
    if not _ninja_available():
        return "ninja is not installed; torch.utils.cpp_extension needs it: pip install ninja"
    return None


@functools.cache
def _ninja_available() -> bool:
    """torch's check starts a ``ninja --version`` subprocess: asked once per process, as the backend
    choice runs on every call (``_ninja_available.cache_clear()`` after installing ninja)."""
    from torch.utils.cpp_extension import is_ninja_available

    return is_ninja_available()


@functools.cache
def _capability(index: int) -> tuple[tuple[int, int], str]:
    """Compute capability and name of CUDA device ``index``, read once per process."""
    return torch.cuda.get_device_capability(index), torch.cuda.get_device_name(index)


def device_reason(device: torch.device | None = None) -> str | None:
    """Why the kernel cannot run on ``device`` (default: the current CUDA device); None: it can."""
    if not torch.cuda.is_available():
        return "no CUDA device is visible (torch.cuda.is_available() is False)"
    index = torch.cuda.current_device() if device is None or device.index is None else device.index
    capability, name = _capability(index)
    if capability < MIN_CAPABILITY:
        return (
            f"{name} has compute capability {capability[0]}.{capability[1]}; the kernel needs "
            f"{MIN_CAPABILITY[0]}.{MIN_CAPABILITY[1]} or newer (mma.sync bf16, cp.async)"
        )
    return None


_lock = threading.Lock()
_module: ModuleType | None = None
_build_error: str | None = None


def build_failure() -> str | None:
    """The error of an earlier failed build in this process, or None."""
    return _build_error


def load_extension(verbose: bool = False) -> ModuleType:
    """Build (first call) or return the compiled extension; :class:`CudaKernelUnavailable` if not.

    A failed build is remembered for the life of the process, so the backend stops asking.
    """
    global _module, _build_error
    with _lock:
        if _module is not None:
            return _module
        if _build_error is not None:
            raise CudaKernelUnavailable(_build_error)
        reason = toolchain_reason() or device_reason()
        if reason is not None:
            raise CudaKernelUnavailable(reason)
        from torch.utils.cpp_extension import load_inline

        name = f"gpa_phase2_{source_hash()}"
        build_dir = cache_root() / "torch_extensions" / name
        build_dir.mkdir(parents=True, exist_ok=True)
        try:
            _module = load_inline(
                name=name,
                cpp_sources=[(CSRC_DIR / BINDING_SOURCE).read_text()],
                cuda_sources=[(CSRC_DIR / KERNEL_SOURCE).read_text()],
                extra_include_paths=[str(CSRC_DIR)],
                extra_cflags=["-O3"],
                extra_cuda_cflags=["-O3", "-lineinfo"],
                build_directory=str(build_dir),
                verbose=verbose,
            )
        except Exception as err:  # noqa: BLE001 - compiler, linker and version errors alike
            first = str(err).strip().splitlines()
            _build_error = (
                f"building the GPA CUDA extension failed ({type(err).__name__}: "
                f"{first[-1] if first else ''}); rebuild with "
                "gpa_lib.attention.kernel.cuda.build.load_extension(verbose=True) to see the compiler "
                f"output, build directory {build_dir}"
            )
            raise CudaKernelUnavailable(_build_error) from err
        return _module


def cuda_kernel_available(build: bool = True) -> tuple[bool, str]:
    """Whether the fused kernel can run here, and why (not).

    With ``build=False`` only the cheap prerequisites are checked (torch with CUDA, nvcc, ninja, a
    GPU of compute capability >= 8.0, no earlier failed build); otherwise the extension is built
    (minutes, the first time) or loaded from the cache.
    """
    reason = _build_error or toolchain_reason() or device_reason()
    if reason is not None:
        return False, reason
    if not build:
        return True, "torch with CUDA, nvcc, ninja and a CUDA device are present (not built yet)"
    try:
        load_extension()
    except CudaKernelUnavailable as err:
        return False, str(err)
    return True, f"the fused GPA kernel is built ({torch.cuda.get_device_name()})"
