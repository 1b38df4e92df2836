"""Named GPA backends, registered with priorities; :mod:`.registry` picks one.

Built in, in the order ``backend=None`` tries them: ``"cuda"`` (the fused kernel, CUDA tensors only),
``"cpu"`` (the fused CPU kernel, float32 CPU tensors), ``"flex"`` (FlexAttention with a BlockMask; not
chosen automatically on the CPU, where it compiles for seconds per shape, nor for training where a
probe finds that its backward does not compile), ``"reference"`` (pure torch, the oracle and CPU path),
``"recompute"`` (the reference math recomputed in the backward pass: least memory to train, never
automatic) and ``"masked"`` (the definition written out: a materialised score matrix masked to the
selection; exact and slow, never automatic). Add another with :func:`register_backend`.
"""

from .base import Backend, BackendCompileError, BackendUnavailableError
from .cpu import CpuBackend
from .cuda import CudaBackend
from .flex import FlexBackend
from .masked import MaskedBackend
from .recompute import RecomputeBackend
from .reference import ReferenceBackend
from .registry import (
    backend_names,
    candidates,
    explain,
    get_backend,
    logger,
    register_backend,
    unregister_backend,
)

register_backend(CudaBackend(), priority=50)
register_backend(CpuBackend(), priority=45)
register_backend(FlexBackend(), priority=40)
register_backend(ReferenceBackend(), priority=30)
register_backend(RecomputeBackend(), priority=20)
register_backend(MaskedBackend(), priority=10)

__all__ = [
    "Backend",
    "BackendCompileError",
    "BackendUnavailableError",
    "backend_names",
    "candidates",
    "explain",
    "get_backend",
    "logger",
    "register_backend",
    "unregister_backend",
]
