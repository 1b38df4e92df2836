"""The one door from C++ source to a loaded shared library on the host: g++, a cache, ctypes.

Both host libraries go through it: the fused CPU kernel (:mod:`.cpu.build`) and the CUDA source
compiled for the CPU emulation (:mod:`.cuda.emulation`). A library is built once into its cache path
(named by the caller's key, under :func:`cache_root`) and replaced atomically, so a concurrent build
never loads half a file. The CUDA extension has its own door, :mod:`.cuda.build`
(``torch.utils.cpp_extension.load_inline``), and shares the cache root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE_ENV = "GPA_LIB_CACHE"


def cache_root() -> Path:
    """``$GPA_LIB_CACHE`` or ``~/.cache/gpa_lib``: build products that must not live in the repo."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "gpa_lib"))


def compiler() -> str | None:
    """The host C++ compiler (``$CXX`` or g++), None when there is none."""
    return shutil.which(os.environ.get("CXX", "g++"))


def build_shared_library(
    arguments: list[str], target: Path, *, timeout_s: float = 600, what: str = "the build"
) -> Path:
    """``$CXX *arguments -o target`` unless ``target`` exists; returns ``target``.

    ``arguments`` are the flags and sources (no ``-o``). Raises ``RuntimeError`` naming ``what`` and
    ending with the compiler's last output lines when there is no compiler or the build fails.
    """
    if target.exists():
        return target
    cxx = compiler()
    if cxx is None:
        raise RuntimeError(f"no C++ compiler for {what}: install g++ or set CXX")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        command = [cxx, *arguments, "-o", str(built)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed ({' '.join(command)}):\n{result.stderr[-4000:]}")
        os.replace(built, target)  # atomic
    return target
