"""What a GPA backend is: the :class:`Backend` interface and the two errors a backend can raise.

A backend has a ``name``, a ``can_run(problem) -> None | str`` that returns ``None`` when it can run
a :class:`~gpa_lib.attention.problem.GPAProblem` and otherwise the reason why not, an optional
``declines(problem) -> None | str`` (a reason not to pick it *automatically*, although it could
run), and a call ``backend(q, k, v, problem) -> (out, selection)`` with out (B, h, Hq, Wq, Dv) and
selection (B, h, K, topk). ``can_run`` and ``declines`` are called on every automatic choice: keep
them cheap (cache what cannot change within a process). The automatic choice asks ``declines``
first, so a decline must not assume that ``can_run`` passed, and a rule that declines cheaply
spares the backend its ``can_run`` (and whatever that imports).
"""

from __future__ import annotations

import torch

from ..problem import GPAProblem


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
        """Why ``backend=None`` should not pick this backend although it can run (``None``: no reason).

        Asked before ``can_run`` by the automatic choice: it must be cheap, and may not assume that
        ``can_run`` passed (a rule that needs that, such as a compile probe, checks it first).
        """
        return None

    def __call__(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, problem: GPAProblem
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<GPA backend {self.name!r}>"
