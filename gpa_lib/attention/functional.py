"""Grid Partitioned Attention as functions over tensors.

Definition (Grid Partitioned Attention, arXiv 2107.03742; the semantics of the authors' ``GPA_module.py``):

1. Low resolution: q̄ = average pool of q over ``pool x pool`` blocks; k̄ likewise.
2. P = softmax over all low-resolution keys j of s(q̄_i, k̄_j), where s(q, k) = q·k/√D for
   ``affinity="dot"`` and s(q, k) = −‖q−k‖²/√D for ``affinity="euclid"`` (the authors' default).
3. Cells: the full-resolution query grid is cut into ``cell x cell`` blocks (``cell`` a multiple of
   ``pool``). Each low-resolution key gets the mean of P over the cell's low-resolution queries; the
   cell keeps the ``topk`` best (ties to the lower index).
4. Every full-resolution query of the cell attends, softmax over s(q, k), to exactly the
   ``topk * pool^2`` full-resolution keys inside its selected ``pool x pool`` key blocks.

No gradient flows through the selection. With ``topk`` equal to the number of key blocks GPA is dense
attention; query and key grids may differ in size and need not be square.
"""

from __future__ import annotations

import torch

from . import backends as _backends
from .exact import materialised_attention, sdpa_attention
from .problem import Hierarchy, check_affinity, check_inputs, check_qkv


def _check_backend(backend: object) -> None:
    if backend is not None and not isinstance(backend, str):
        raise TypeError(
            f"backend must be a str or None, got backend={backend!r} ({type(backend).__name__})"
        )
    if backend is not None:
        _backends.get_backend(backend)


def gpa_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    pool: int,
    cell: int,
    topk: int,
    affinity: str = "dot",
    backend: str | None = None,
    return_selection: bool = False,
    hierarchy: Hierarchy | None = None,
):
    """Grid Partitioned Attention of queries on one grid to keys and values on another.

    Args:
        q: (B, heads, Hq, Wq, D) queries on the query grid.
        k: (B, heads, Hk, Wk, D) keys on the key grid (any size, need not match the query grid).
        v: (B, heads, Hk, Wk, Dv) values on the key grid.
        pool: side of the pooling blocks, in tokens; Hk and Wk must be multiples of it.
        cell: side of the query cells, in tokens; a multiple of ``pool``; Hq and Wq multiples of it.
        topk: key blocks kept per cell, 1 to (Hk/pool)*(Wk/pool); every query sees topk*pool^2 keys.
        affinity: ``"dot"`` (q·k/√D) or ``"euclid"`` (−‖q−k‖²/√D).
        backend: ``None`` (the best that can run, see :func:`explain_backends`) or a registered
            name (:func:`~gpa_lib.attention.backends.backend_names`: built in ``"cuda"``, ``"cpu"``,
            ``"flex"``, ``"reference"``, ``"recompute"`` (least training memory), ``"masked"`` (the slow
            exact oracle)); a forced backend that cannot run the inputs raises
            :class:`~gpa_lib.attention.backends.BackendUnavailableError`.
        return_selection: also return the selected blocks.
        hierarchy: ``None`` (exact phase 1, the paper's) or a :class:`~gpa_lib.attention.Hierarchy`:
            phase 1 ranks super-blocks of ``group x group`` key blocks first and then only the blocks
            inside the ``candidates`` best (:mod:`~gpa_lib.attention.hierarchical`), an approximation
            that every backend honours; ``group`` must divide (Hk/pool, Wk/pool).

    Numerics: every softmax subtracts its row maximum, so large logits give finite outputs; phase 1
    runs in at least float32, and float16 ``"euclid"`` logits are formed in float32 (see
    :func:`~gpa_lib.attention.scores.logit_dtype`). Tied block scores go to the lower block index.
    NaN and inf are not refused (a check would cost a pass over the inputs and a GPU sync): a NaN
    query gives NaN outputs for that query; a non-finite key makes phase 1's scores of the cells
    that see it NaN, and their selection is then meaningless (``tests/test_attention_edges.py``).

    Returns:
        out (B, heads, Hq, Wq, Dv); with ``return_selection`` also a LongTensor
        (B, heads, Hq/cell, Wq/cell, topk) of block indices, row-major over (Hk/pool, Wk/pool), best
        block first.
    """
    problem = check_inputs(
        q, k, v, pool=pool, cell=cell, topk=topk, affinity=affinity, hierarchy=hierarchy
    )
    _check_backend(backend)
    tried = _backends.candidates(problem, backend)
    for position, candidate in enumerate(tried):
        try:
            out, selection = candidate(q, k, v, problem)  # (B, h, Hq, Wq, Dv), (B, h, K, k)
            break
        except _backends.BackendCompileError as err:
            if backend is not None or position == len(tried) - 1:
                raise
            _backends.logger.warning(
                "GPA backend %r failed, using %r: %s", candidate.name, tried[position + 1].name, err
            )
    if return_selection:
        return out, selection.unflatten(2, problem.cell_grid)  # (B, h, Hq/c, Wq/c, k)
    return out


def dense_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    affinity: str = "dot",
    impl: str = "fused",
) -> torch.Tensor:
    """Exact attention of every query to every key.

    q: (B, heads, Hq, Wq, D), k: (B, heads, Hk, Wk, D), v: (B, heads, Hk, Wk, Dv) ->
    (B, heads, Hq, Wq, Dv); ``affinity`` as in :func:`gpa_attention`. ``impl="fused"`` runs
    ``scaled_dot_product_attention`` (memory linear in the tokens); ``impl="materialised"`` forms the
    (B, heads, Nq, Nk) score matrix explicitly, the textbook form whose memory the benchmarks quote.
    """
    check_qkv(q, k, v)
    check_affinity(affinity)
    if impl == "fused":
        return sdpa_attention(q, k, v, affinity)
    if impl == "materialised":
        return materialised_attention(q, k, v, affinity)
    raise ValueError(f"impl={impl!r} must be 'fused' or 'materialised'")


def explain_backends(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    pool: int,
    cell: int,
    topk: int,
    affinity: str = "dot",
) -> dict[str, str | None]:
    """For each backend in priority order, ``None`` if ``backend=None`` may pick it, else why not.

    ``backend=None`` uses the first backend whose entry is ``None``. Gradient requirements are read
    from the tensors and from ``torch.is_grad_enabled()`` at the time of the call.
    """
    problem = check_inputs(q, k, v, pool=pool, cell=cell, topk=topk, affinity=affinity)
    return _backends.explain(problem)


def auto_backend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    pool: int,
    cell: int,
    topk: int,
    affinity: str = "dot",
) -> str:
    """The name of the backend that ``backend=None`` would try first for these inputs."""
    problem = check_inputs(q, k, v, pool=pool, cell=cell, topk=topk, affinity=affinity)
    return _backends.candidates(problem, None)[0].name
