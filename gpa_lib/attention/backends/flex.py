"""The FlexAttention backend: phase 2 as ``flex_attention`` with a BlockMask, compiled by inductor.

Queries are laid out cell-major (the ``cell*cell`` tokens of cell 0, then of cell 1, ...) and keys
block-major (the ``pool*pool`` tokens of key block 0, then of block 1, ...). In that token order a
query cell is one query tile of ``cell^2`` rows and a key block one key tile of ``pool^2`` columns, so
the selection *is* the BlockMask: tile row K holds the ``topk`` selected blocks as full tiles, and
``flex_attention`` never visits the others.

It runs where ``torch.compile`` can build FlexAttention: on CPU with a C++ compiler (forward only, in
float32, float16 or bfloat16; torch 2.13 has no FlexAttention backward on CPU), on CUDA with Triton.
A compile failure is reported as :class:`BackendCompileError`, remembered, and ``backend=None`` falls
back to the next backend.

Training. Inductor may build the forward and still fail on the backward of a tile configuration
(torch 2.11 on an H200: ``NoValidChoicesError`` for ``flex_attention_backward`` with 16-token key
blocks, raised inside ``loss.backward()``). So ``backend=None`` picks flex for a problem that needs
gradients only after a probe compiled forward and backward on a tiny problem with the same tiles
(:meth:`FlexBackend.backward_reason`, once per process per :func:`~.flex_training.backward_key`),
and a compile error in a real backward does not end the run: the gradients of that call come from
the reference formulas (:func:`~.flex_training.reference_phase2_grads`), the key is marked broken
(``backend=None`` stops picking flex for it) and one warning is logged. A forced ``backend="flex"``
is not probed; where its backward fails it keeps the compiled forward and takes its gradients from
the reference formulas, with the same one warning.

The cheap rules (device type, dtype, tiles, the CPU decline) are checked before anything imports
``torch._dynamo``, which costs over a second in a fresh process.
"""

from __future__ import annotations

import functools
import logging
import time

import torch

from ..grid import from_cells, to_cells
from ..hierarchical import phase1_selection
from ..problem import GPAProblem
from ..scores import logit_dtype, logit_scale
from .base import Backend, BackendCompileError
from .flex_training import (
    FlexPhase2,
    backward_key,
    compile_errors,
    first_line,
    probe_problem,
)

logger = logging.getLogger("gpa_lib.attention")

#: Below this many query tokens per (batch, head) ``backend=None`` prefers the reference backend:
#: compiling FlexAttention takes seconds, which small problems never win back.
FLEX_MIN_QUERIES = 4096

_CPU_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_CUDA_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@functools.cache
def _flex_import_reason() -> str | None:
    try:
        from torch.nn.attention.flex_attention import BlockMask, flex_attention  # noqa: F401
    except ImportError as err:  # pragma: no cover - present in torch 2.13
        return f"torch.nn.attention.flex_attention cannot be imported ({err})"
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile is not supported on this Python/platform"
    return None


@functools.cache
def _compiler_reason(device_type: str) -> str | None:
    """Why inductor cannot generate FlexAttention code for ``device_type`` (None: it can)."""
    if device_type == "cpu":
        try:
            from torch._inductor import cpp_builder

            cpp_builder.get_cpp_compiler()
        except Exception as err:  # noqa: BLE001 - any failure means no usable compiler
            return f"inductor finds no C++ compiler for CPU code ({err}); install g++ or set CXX"
        return None
    if device_type == "cuda":
        from torch.utils._triton import has_triton

        return None if has_triton() else "Triton is not installed; pip install triton"
    return f"FlexAttention has no compiled kernels for device type {device_type!r}"


@functools.cache
def _compiled_flex_attention():
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention)


def _tile(size: int) -> int:
    """Largest Triton tile in (128, 64, 32, 16) dividing ``size`` (0 when none does)."""
    return next((t for t in (128, 64, 32, 16) if size % t == 0), 0)


def flex_kernel_options(problem: GPAProblem) -> dict[str, int] | None:
    """Triton tiles of one query cell by one key block for every pass on CUDA; None elsewhere."""
    if problem.device.type != "cuda":
        return None
    m, n = _tile(problem.cell**2), _tile(problem.pool**2)
    return {"BLOCK_M": m, "BLOCK_N": n, "BLOCK_M1": m, "BLOCK_N1": n, "BLOCK_M2": m, "BLOCK_N2": n}


def gpa_block_mask(selection: torch.Tensor, problem: GPAProblem, *, with_q_blocks: bool = False):
    """The BlockMask of a selection on the cell-major query and block-major key token orders.

    selection: (B, h, K, topk) block indices. Tiles are (cell^2 queries) x (pool^2 keys); the
    selected tiles are full (no ``mask_mod`` inside them). ``with_q_blocks`` also builds the
    transposed (key to query) index that the backward pass needs.
    """
    from torch.nn.attention.flex_attention import BlockMask

    B, h, K, topk = selection.shape
    Nb = problem.n_key_blocks
    device = selection.device
    full_count = torch.full((B, h, K), topk, dtype=torch.int32, device=device)  # (B, h, K)
    partial_count = torch.zeros((B, h, K), dtype=torch.int32, device=device)  # (B, h, K)
    if with_q_blocks:
        # The transpose reads index rows as wide as the key block count.
        full_index = torch.zeros((B, h, K, Nb), dtype=torch.int32, device=device)  # (B, h, K, Nb)
        full_index[..., :topk] = selection
        partial_index = torch.zeros_like(full_index)  # (B, h, K, Nb)
    else:
        full_index = selection.to(torch.int32)  # (B, h, K, k)
        # Only its width (the key block count) is read; an expanded zero costs no memory.
        partial_index = torch.zeros((1, 1, 1, 1), dtype=torch.int32, device=device).expand(
            B, h, K, Nb
        )
    return BlockMask.from_kv_blocks(
        partial_count,
        partial_index,
        full_count,
        full_index,
        BLOCK_SIZE=(problem.cell**2, problem.pool**2),
        seq_lengths=(problem.n_queries, problem.n_keys),
        compute_q_blocks=with_q_blocks,
    )


def compiled_phase2(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    selection: torch.Tensor,
    problem: GPAProblem,
    *,
    with_q_blocks: bool,
) -> torch.Tensor:
    """Phase 2 through compiled ``flex_attention``, differentiable wherever inductor builds the backward.

    q: (B, h, Hq, Wq, D), k: (B, h, Hk, Wk, D), v: (B, h, Hk, Wk, Dv), selection: (B, h, K, topk)
    block indices. Returns (B, h, Hq, Wq, Dv) in v's dtype. ``with_q_blocks`` builds the key-to-query
    index of the BlockMask, which the backward needs. Compile errors propagate.
    """
    scale = logit_scale(problem.affinity, problem.head_dim)
    q_tok = to_cells(q, problem.cell).flatten(2, 3)  # (B, h, Nq, D), cell-major
    k_tok = to_cells(k, problem.pool).flatten(2, 3)  # (B, h, Nk, D), block-major
    v_tok = to_cells(v, problem.pool).flatten(2, 3)  # (B, h, Nk, Dv), block-major
    work = logit_dtype(q.dtype, problem.affinity)  # float16 euclid runs in float32
    q_tok, k_tok, v_tok = q_tok.to(work), k_tok.to(work), v_tok.to(work)
    if problem.affinity == "euclid":
        # logit_scale * q.k + key_bias = (2/sqrt(D)) [q, -1].[k, |k|^2/2]: one extra channel
        # instead of a score_mod, so the compiled kernel stays the plain one.
        q_tok = torch.cat([q_tok, -torch.ones_like(q_tok[..., :1])], dim=-1)  # (B, h, Nq, D+1)
        half_sq = 0.5 * k_tok.square().sum(-1, keepdim=True)  # (B, h, Nk, 1)
        k_tok = torch.cat([k_tok, half_sq], dim=-1)  # (B, h, Nk, D+1)
    block_mask = gpa_block_mask(selection, problem, with_q_blocks=with_q_blocks)
    out = _compiled_flex_attention()(
        q_tok,
        k_tok,
        v_tok,
        block_mask=block_mask,
        scale=scale,
        kernel_options=flex_kernel_options(problem),
    )  # (B, h, Nq, Dv)
    out_cells = out.to(v.dtype).unflatten(2, (problem.n_cells, problem.cell**2))  # (B,h,K,c*c,Dv)
    return from_cells(out_cells, problem.q_grid, problem.cell)  # (B, h, Hq, Wq, Dv)


class FlexBackend(Backend):
    """Phase 2 with compiled ``flex_attention`` on a BlockMask built from the selection."""

    name = "flex"

    def __init__(self) -> None:
        self.broken: dict[str, str] = {}  # device type -> why compiling the forward failed once
        # backward_key -> None (the probe compiled fwd+bwd) or why the compiled backward cannot be used
        self.backward_reasons: dict[tuple, str | None] = {}
        self._broken_backward: set[tuple] = set()  # keys whose backward failed in a real call

    def can_run(self, problem: GPAProblem) -> str | None:
        # The rules that need no import come first: on the CPU they usually answer.
        reason = self._cheap_reason(problem)
        if reason is not None:
            return reason
        device_type = problem.device.type
        reason = _flex_import_reason() or _compiler_reason(device_type)
        if reason is not None:
            return reason
        if device_type in self.broken:
            return f"compiling FlexAttention failed earlier in this process: {self.broken[device_type]}"
        return None

    @staticmethod
    def _cheap_reason(problem: GPAProblem) -> str | None:
        device_type = problem.device.type
        if device_type == "cpu":
            if problem.dtype not in _CPU_DTYPES:
                return f"FlexAttention on CPU supports float32, float16 and bfloat16, got dtype={problem.dtype}"
            if problem.needs_grad:
                return (
                    "FlexAttention has no backward pass on CPU in torch "
                    f"{torch.__version__}; run under torch.no_grad() or use backend='reference'"
                )
            return None
        if device_type != "cuda":
            return f"FlexAttention has no compiled kernels for device type {device_type!r}"
        if problem.dtype not in _CUDA_DTYPES:
            return f"FlexAttention on CUDA supports float32, float16 and bfloat16, got dtype={problem.dtype}"
        if not (_tile(problem.cell**2) and _tile(problem.pool**2)):
            return (
                f"Triton tiles need cell^2={problem.cell**2} and pool^2={problem.pool**2} "
                "to be multiples of 16"
            )
        return None

    def declines(self, problem: GPAProblem) -> str | None:
        """Not on the CPU, not below :data:`FLEX_MIN_QUERIES`, and, for a problem that needs
        gradients, not where :meth:`backward_reason` says the compiled backward fails."""
        reason = self._cheap_decline(problem)
        if reason is None and problem.needs_grad and self.can_run(problem) is None:
            reason = self.backward_reason(problem)
        return reason

    @staticmethod
    def _cheap_decline(problem: GPAProblem) -> str | None:
        if problem.device.type == "cpu":
            return (
                "on the CPU, compiling FlexAttention takes seconds for every new shape and its warm "
                "calls are no faster than the 'cpu' or 'reference' backends; force it with "
                "backend='flex'"
            )
        if problem.n_queries < FLEX_MIN_QUERIES:
            return (
                f"{problem.n_queries} query tokens < FLEX_MIN_QUERIES={FLEX_MIN_QUERIES}: compiling "
                "costs seconds, the reference backend is faster end to end"
            )
        return None

    def backward_failure(self, problem: GPAProblem) -> str | None:
        """Why the compiled backward failed in a real call for ``problem``'s key (None: it has not)."""
        key = backward_key(problem)
        return self.backward_reasons[key] if key in self._broken_backward else None

    def backward_reason(self, problem: GPAProblem) -> str | None:
        """Why flex's compiled backward cannot serve ``problem`` (None: it compiled), probed once per
        process per :func:`backward_key` by compiling forward and backward on :func:`probe_problem`."""
        key = backward_key(problem)
        if key not in self.backward_reasons:
            self.backward_reasons[key] = self._probe_backward(problem)
        return self.backward_reasons[key]

    @staticmethod
    def _probe_backward(problem: GPAProblem) -> str | None:
        tiny = probe_problem(problem)
        B, h, K = tiny.batch, tiny.heads, tiny.n_cells
        # A generator of its own: whether a probe ran must not shift the caller's random stream.
        like = {
            "device": problem.device,
            "dtype": problem.dtype,
            "generator": torch.Generator(device=problem.device).manual_seed(0),
        }
        q = torch.randn(B, h, *tiny.q_grid, tiny.head_dim, **like)  # (1, 1, Hq, Wq, D)
        k = torch.randn(B, h, *tiny.k_grid, tiny.head_dim, **like)  # (1, 1, Hk, Wk, D)
        v = torch.randn(B, h, *tiny.k_grid, tiny.value_dim, **like)  # (1, 1, Hk, Wk, Dv)
        # Cell i attends to key blocks 2i and 2i+1 (mod Nb).
        cells = torch.arange(K, device=problem.device).view(B, h, K, 1)  # (1, 1, K, 1)
        selection = (2 * cells + torch.arange(tiny.topk, device=problem.device)) % tiny.n_key_blocks
        started = time.perf_counter()
        try:
            with torch.enable_grad():
                q, k, v = (t.requires_grad_() for t in (q, k, v))
                out = compiled_phase2(q, k, v, selection, tiny, with_q_blocks=True)
                torch.autograd.grad(out.sum(), (q, k, v))
        except Exception as err:  # noqa: BLE001 - any failure means: do not train through flex here
            reason = (
                f"FlexAttention's backward did not compile for tiles of {problem.cell}^2 queries by "
                f"{problem.pool}^2 keys (dtype={problem.dtype}, D={problem.head_dim}, "
                f"Dv={problem.value_dim}, affinity={problem.affinity!r}): {first_line(err)}"
            )
        else:
            reason = None
        logger.info(
            "GPA backend 'flex': backward probe for %s in %.1f s: %s",
            backward_key(problem),
            time.perf_counter() - started,
            reason or "it compiles",
        )
        return reason

    def mark_backward_broken(self, problem: GPAProblem, err: BaseException) -> None:
        """Remember that a real backward failed to compile for ``problem``'s key; warn once per key."""
        key = backward_key(problem)
        if key in self._broken_backward:
            return
        self._broken_backward.add(key)
        self.backward_reasons[key] = (
            f"FlexAttention's backward failed to compile in a training step: {first_line(err)}"
        )
        logger.warning(
            "GPA backend 'flex': the compiled backward failed (%s); gradients for cell=%d, pool=%d, "
            "D=%d, dtype=%s, affinity=%r come from the reference formulas from now on, and "
            "backend=None no longer picks flex for them",
            first_line(err),
            problem.cell,
            problem.pool,
            problem.head_dim,
            problem.dtype,
            problem.affinity,
        )

    def __call__(self, q, k, v, problem):
        selection = phase1_selection(q, k, problem)  # (B, h, K, k), exact or hierarchical
        return self.attend(q, k, v, selection, problem), selection

    def attend(self, q, k, v, selection, problem) -> torch.Tensor:
        """Phase 2 for a given selection (B, h, K, topk): (B, h, Hq, Wq, Dv).

        With gradients, the backward is the compiled one, or the reference formulas where inductor
        cannot compile it (see the module docstring).
        """
        try:
            if problem.needs_grad:
                return FlexPhase2.apply(q, k, v, selection, problem, compiled_phase2, self)
            return compiled_phase2(q, k, v, selection, problem, with_q_blocks=False)
        except compile_errors() as err:
            self.broken[problem.device.type] = first_line(err)
            raise BackendCompileError(f"compiling FlexAttention failed: {first_line(err)}") from err
