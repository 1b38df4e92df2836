"""The open registry of GPA backends and the automatic choice among them.

Any backend registers under its own ``name`` with a ``priority``: ``backend=None`` tries the
registered backends from the highest priority down and takes the first that can run and does not
decline; :func:`explain` returns every backend's reason. Names are read from here by the bench, the
docs and :func:`~gpa_lib.attention.explain_backends`; nothing else lists them.

The automatic choice asks ``declines`` before ``can_run``: a decline is a cheap rule ("not on the
CPU"), while ``can_run`` may import a compiler stack (FlexAttention's ``torch._dynamo``, over a second
on a fresh process), which a declined backend must not cost. :func:`explain` asks both of every
backend, so that it says what could run as well as what is chosen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..problem import GPAProblem
from .base import Backend, BackendUnavailableError

logger = logging.getLogger("gpa_lib.attention")


@dataclass(frozen=True)
class _Entry:
    backend: Backend
    priority: float  # higher is tried first by backend=None
    order: int  # registration order, breaks equal priorities


_REGISTRY: dict[str, _Entry] = {}


def register_backend(backend: Backend, *, priority: float) -> None:
    """Add ``backend`` under ``backend.name`` (replacing one of that name) with ``priority``.

    ``backend=None`` tries higher priorities first; the built-in backends use 10 to 50.
    """
    if not isinstance(backend, Backend):
        raise TypeError(
            f"backend must be a gpa_lib.attention.backends.Backend, got {type(backend).__name__}"
        )
    if not isinstance(backend.name, str) or not backend.name:
        raise ValueError(f"backend.name must be a non-empty str, got {backend.name!r}")
    if isinstance(priority, bool) or not isinstance(priority, int | float):
        raise TypeError(f"priority must be a number, got priority={priority!r}")
    previous = _REGISTRY.get(backend.name)
    order = (
        previous.order if previous else max((e.order for e in _REGISTRY.values()), default=-1) + 1
    )
    _REGISTRY[backend.name] = _Entry(backend, float(priority), order)


def unregister_backend(name: str) -> Backend:
    """Remove the backend called ``name`` and return it; ``ValueError`` for an unknown name."""
    get_backend(name)
    return _REGISTRY.pop(name).backend


def backend_names() -> tuple[str, ...]:
    """Registered backend names in the order ``backend=None`` tries them (highest priority first)."""
    entries = sorted(_REGISTRY.values(), key=lambda e: (-e.priority, e.order))
    return tuple(e.backend.name for e in entries)


def get_backend(name: str) -> Backend:
    """The registered backend called ``name``; ``ValueError`` for an unknown name."""
    if name not in _REGISTRY:
        raise ValueError(
            f"backend={name!r} is unknown; choose one of {backend_names()} or None (automatic)"
        )
    return _REGISTRY[name].backend


def explain(problem: GPAProblem) -> dict[str, str | None]:
    """Every backend in priority order with ``None`` (it would be chosen or could be) or its reason.

    Thorough: ``can_run`` is asked of every backend, also of one that a rule declines, so the reason
    shown is why it cannot run where it cannot, and otherwise why it is not chosen automatically.
    """
    reasons: dict[str, str | None] = {}
    for name in backend_names():
        backend = _REGISTRY[name].backend
        reason = backend.can_run(problem)
        if reason is None:
            declined = backend.declines(problem)
            reason = None if declined is None else f"not chosen automatically: {declined}"
        reasons[name] = reason
    return reasons


def _automatic_reason(backend: Backend, problem: GPAProblem) -> str | None:
    """Why ``backend=None`` skips ``backend`` (``None``: it may pick it), asking the cheap rule first.

    Same verdict as :func:`explain`, in the other order: ``declines`` before ``can_run``, so that a
    backend declined by a rule never pays for what ``can_run`` imports.
    """
    declined = backend.declines(problem)
    if declined is not None:
        return f"not chosen automatically: {declined}"
    return backend.can_run(problem)


def candidates(problem: GPAProblem, name: str | None) -> list[Backend]:
    """The backends to try, best first: the forced one, or all that accept ``problem`` automatically."""
    if name is not None:
        backend = get_backend(name)
        reason = backend.can_run(problem)
        if reason is not None:
            raise BackendUnavailableError(f"backend={name!r} cannot run these inputs: {reason}")
        return [backend]
    chosen = []
    for backend_name in backend_names():
        backend = _REGISTRY[backend_name].backend
        reason = _automatic_reason(backend, problem)
        if reason is None:
            chosen.append(backend)
        else:
            logger.debug("GPA backend %r skipped: %s", backend_name, reason)
    if not chosen:
        raise BackendUnavailableError(
            "no GPA backend can run these inputs; gpa_lib.attention.explain_backends(q, k, v, pool=..., "
            "cell=..., topk=...) returns each backend's reason"
        )
    return chosen
