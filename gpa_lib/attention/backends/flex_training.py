"""Training through FlexAttention without letting a backward that inductor cannot build end the run.

Inductor may build FlexAttention's forward and still fail on its backward for a tile configuration
(torch 2.11 on an H200: ``NoValidChoicesError`` for ``flex_attention_backward`` with 16-token key
blocks, raised inside ``loss.backward()``). Two guards, used by :mod:`.flex`:

- a probe: before ``backend=None`` picks flex for a problem that needs gradients, forward and backward
  are compiled on :func:`probe_problem`, a tiny problem with the same tiles, once per process per
  :func:`backward_key`;
- a fallback: :class:`FlexPhase2` keeps the compiled forward's graph and differentiates it in the
  backward; on a compile error it takes dq, dk, dv from the reference formulas instead
  (:func:`reference_phase2_grads`) and tells the backend, which marks the key broken and warns once.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ..kernel.cuda.reference_math import phase2_backward_math, phase2_forward_math
from ..problem import GPAProblem
from ..scores import key_bias, logit_scale


def first_line(err: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, at most ``limit`` characters: what a reason quotes."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {line}"[:limit]


def compile_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean torch.compile could not build a kernel: dynamo's (inductor's
    ``InductorError`` and ``BackendCompilerFailed`` among them) and autotuning's ``NoValidChoicesError``.

    Called only inside an ``except`` clause, after a compiled call, so it imports nothing new.
    """
    from torch._dynamo.exc import TorchDynamoException

    errors: list[type[BaseException]] = [TorchDynamoException]
    try:
        from torch._inductor.exc import InductorError
        from torch._inductor.select_algorithm import NoValidChoicesError
    except ImportError:  # pragma: no cover - both exist in torch 2.11 to 2.13
        return tuple(errors)
    return (*errors, InductorError, NoValidChoicesError)


def backward_key(problem: GPAProblem) -> tuple:
    """What decides whether inductor can build FlexAttention's backward: the device type, dtype, tile
    sizes (cell^2 queries by pool^2 keys), head dims and affinity (euclid adds a channel). The grid
    sizes, batch, heads and topk are not in it: they change the launch, not the kernel."""
    return (
        problem.device.type,
        problem.dtype,
        problem.cell,
        problem.pool,
        problem.head_dim,
        problem.value_dim,
        problem.affinity,
    )


#: Query and key tokens a probe has at least: as many as one default Triton tile, so that the probe
#: fails for the tiles and not for a sequence shorter than the kernel expects.
PROBE_MIN_TOKENS = 128


def probe_problem(problem: GPAProblem) -> GPAProblem:
    """A tiny problem with ``problem``'s tiles that needs gradients: batch and heads 1, one row of at
    least two query cells and one row of at least four key blocks, each at least
    :data:`PROBE_MIN_TOKENS` tokens, topk 2."""
    n_cells = max(2, -(-PROBE_MIN_TOKENS // problem.cell**2))
    n_blocks = max(4, -(-PROBE_MIN_TOKENS // problem.pool**2))
    return dataclasses.replace(
        problem,
        batch=1,
        heads=1,
        q_grid=(problem.cell, n_cells * problem.cell),
        k_grid=(problem.pool, n_blocks * problem.pool),
        topk=2,
        needs_grad=True,
    )


def reference_phase2_grads(
    dout: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    selection: torch.Tensor,
    problem: GPAProblem,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dq, dk, dv of phase 2 by the reference formulas (:mod:`~gpa_lib.attention.kernel.cuda.reference_math`).

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv), selection: (B, h, K, topk)
    block indices, dout: (B, h, Hq, Wq, Dv). The forward is recomputed for its log-sum-exp. Euclid
    runs as the doubled scale plus the key bias b_j = -|k_j|^2/sqrt(D), whose gradient reaches k by
    the chain rule: dk_j += db_j * (-2 k_j / sqrt(D)).
    """
    scale = logit_scale(problem.affinity, problem.head_dim)
    work = torch.promote_types(k.dtype, torch.float32)
    bias = key_bias(k, problem.affinity, dtype=work)  # (B, h, Hk, Wk) or None
    cells = selection.unflatten(2, problem.cell_grid)  # (B, h, Hq/c, Wq/c, k)
    pool, cell = problem.pool, problem.cell
    out, lse = phase2_forward_math(q, k, v, cells, bias, pool, cell, scale)
    dq, dk, dv, dbias = phase2_backward_math(
        dout, q, k, v, out, lse, cells, bias, pool, cell, scale
    )
    if dbias is not None:
        dk_bias = dbias.unsqueeze(-1) * k.to(work) * (-2.0 / math.sqrt(problem.head_dim))
        dk = (dk.to(work) + dk_bias).to(k.dtype)  # (B, h, Hk, Wk, D)
    return dq, dk, dv


class FlexPhase2(torch.autograd.Function):
    """Compiled phase 2 whose backward falls back to the reference formulas on a compile error.

    ``FlexPhase2.apply(q, k, v, selection, problem, phase2, backend)``: the forward runs
    ``phase2(q, k, v, selection, problem, with_q_blocks=True)`` (the backend's compiled phase 2)
    with autograd on, on detached copies of q, k, v, and keeps that inner graph; the backward
    differentiates it, and if inductor cannot compile it (:func:`compile_errors`) calls
    ``backend.mark_backward_broken(problem, err)`` and takes dq, dk, dv from
    :func:`reference_phase2_grads` instead. Where ``backend.backward_failure(problem)`` says the
    key's backward already failed, the forward builds no inner graph and the backward goes straight
    to the reference formulas.
    """

    @staticmethod
    def forward(ctx, q, k, v, selection, problem, phase2, backend):
        ctx.problem, ctx.backend, ctx.graph = problem, backend, None
        ctx.save_for_backward(q, k, v, selection)
        if backend.backward_failure(problem) is not None:
            return phase2(q, k, v, selection, problem, with_q_blocks=False)
        leaves = tuple(
            t.detach().requires_grad_(wanted)
            for t, wanted in zip((q, k, v), ctx.needs_input_grad[:3], strict=True)
        )
        with torch.enable_grad():
            out = phase2(*leaves, selection, problem, with_q_blocks=True)
        ctx.graph = (out, leaves)
        return out.detach()  # (B, h, Hq, Wq, Dv)

    @staticmethod
    def backward(ctx, dout):
        q, k, v, selection = ctx.saved_tensors
        graph, ctx.graph = ctx.graph, None
        grads = None
        if graph is not None:
            out, leaves = graph
            wanted = [leaf for leaf in leaves if leaf.requires_grad]
            try:
                found = iter(torch.autograd.grad(out, wanted, dout))
            except compile_errors() as err:
                ctx.backend.mark_backward_broken(ctx.problem, err)
            else:
                grads = tuple(next(found) if leaf.requires_grad else None for leaf in leaves)
        if grads is None:
            grads = reference_phase2_grads(dout, q, k, v, selection, ctx.problem)
        return (*grads, None, None, None, None)
