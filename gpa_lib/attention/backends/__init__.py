"""Named GPA backends and the registry that picks one.

A backend is an object with a ``name``, a ``can_run(problem) -> None | str`` that returns ``None`` when
it can run a :class:`~gpa_lib.attention.problem.GPAProblem` and otherwise the reason why not, an
optional ``declines(problem) -> None | str`` (a reason not to pick it *automatically*, although it
could run), and a call ``backend(q, k, v, problem) -> (out, selection)`` with out (B, h, Hq, Wq, Dv)
and selection (B, h, K, topk).

``backend=None`` tries :data:`PRIORITY` in order and takes the first that can run and does not
decline; :func:`explain` returns every backend's reason. A later backend (the fused ``"cuda"``
kernel) plugs in with :func:`register_backend`; until then the ``"cuda"`` slot holds a placeholder
that says it is missing.
"""

from __future__ import annotations

import logging

import torch

from ..problem import GPAProblem

logger = logging.getLogger("gpa_lib.attention")

#: Backends in the order ``backend=None`` tries them, fastest first.
PRIORITY = ("cuda", "flex", "reference", "recompute", "dense")


class BackendUnavailableError(RuntimeError):
    """A forced backend cannot run the inputs, or no backend can."""


class BackendCompileError(RuntimeError):
    """A backend failed while compiling its kernel; ``backend=None`` then falls back to the next."""


class Backend:
    """Base class of GPA backends; subclasses set ``name`` and implement ``can_run`` and ``__call__``."""

    name: str = ""

    def can_run(self, problem: GPAProblem) -> str | None:
        """``None`` when this backend can run ``problem``, otherwise why it cannot."""
        raise NotImplementedError

    def declines(self, problem: GPAProblem) -> str | None:
        """Why ``backend=None`` should not pick this backend although it can run (``None``: no reason)."""
        return None

    def __call__(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, problem: GPAProblem
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<GPA backend {self.name!r}>"


class MissingBackend(Backend):
    """The slot of a backend that is not part of this installation."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason

    def can_run(self, problem: GPAProblem) -> str | None:
        return self.reason

    def __call__(self, q, k, v, problem):
        raise BackendUnavailableError(f"backend={self.name!r} is not available: {self.reason}")


_REGISTRY: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    """Add or replace a backend; its ``name`` must be one of :data:`PRIORITY`."""
    if backend.name not in PRIORITY:
        raise ValueError(
            f"backend name {backend.name!r} is not one of the known backends {PRIORITY}"
        )
    _REGISTRY[backend.name] = backend


def get_backend(name: str) -> Backend:
    """The registered backend called ``name``; ``ValueError`` for an unknown name."""
    if name not in _REGISTRY:
        raise ValueError(
            f"backend={name!r} is unknown; choose one of {PRIORITY} or None (automatic)"
        )
    return _REGISTRY[name]


def explain(problem: GPAProblem) -> dict[str, str | None]:
    """Every backend in priority order with ``None`` (it would be chosen or could be) or its reason."""
    reasons: dict[str, str | None] = {}
    for name in PRIORITY:
        backend = _REGISTRY[name]
        reason = backend.can_run(problem)
        if reason is None:
            declined = backend.declines(problem)
            reason = None if declined is None else f"not chosen automatically: {declined}"
        reasons[name] = reason
    return reasons


def candidates(problem: GPAProblem, name: str | None) -> list[Backend]:
    """The backends to try, best first: the forced one, or all that accept ``problem`` automatically."""
    if name is not None:
        backend = get_backend(name)
        reason = backend.can_run(problem)
        if reason is not None:
            raise BackendUnavailableError(f"backend={name!r} cannot run these inputs: {reason}")
        return [backend]
    chosen = []
    for backend_name, reason in explain(problem).items():
        if reason is None:
            chosen.append(_REGISTRY[backend_name])
        else:
            logger.debug("GPA backend %r skipped: %s", backend_name, reason)
    if not chosen:
        raise BackendUnavailableError(
            "no GPA backend can run these inputs; gpa_lib.attention.explain_backends(q, k, v, pool=..., "
            "cell=..., topk=...) returns each backend's reason"
        )
    return chosen


def _register_builtin() -> None:
    from .dense import DenseBackend
    from .flex import FlexBackend
    from .reference import RecomputeBackend, ReferenceBackend

    register_backend(
        MissingBackend(
            "cuda",
            "no fused CUDA kernel is registered in this installation "
            "(it registers itself with gpa_lib.attention.backends.register_backend)",
        )
    )
    register_backend(FlexBackend())
    register_backend(ReferenceBackend())
    register_backend(RecomputeBackend())
    register_backend(DenseBackend())
    from ..cuda_backend import CudaBackend  # the fused kernel takes over the "cuda" slot

    register_backend(CudaBackend())


_register_builtin()
