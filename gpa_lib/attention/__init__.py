"""Grid Partitioned Attention (GPA): functional ops, named backends, a conv-net module, diagnostics.

>>> from gpa_lib.attention import gpa_attention, dense_attention, GPA
>>> out = gpa_attention(q, k, v, pool=4, cell=8, topk=8)  # q (B, h, Hq, Wq, D), k/v (B, h, Hk, Wk, D/Dv)

Backends: ``"cuda"`` (fused kernel, registered when built), ``"flex"`` (FlexAttention with a
BlockMask), ``"reference"`` (pure torch, the oracle and CPU path), ``"recompute"`` (the reference math
recomputed in the backward pass: the least memory to train) and ``"dense"`` (masked materialised
scores). :func:`explain_backends` says which one ``backend=None`` picks and why the others were not.
"""

from .backends import BackendCompileError, BackendUnavailableError, register_backend
from .functional import auto_backend, dense_attention, explain_backends, gpa_attention
from .grid import from_heads, to_heads
from .module import GPA
from .selection import cell_block_scores, select_key_blocks

__all__ = [
    "GPA",
    "BackendCompileError",
    "BackendUnavailableError",
    "auto_backend",
    "cell_block_scores",
    "dense_attention",
    "explain_backends",
    "from_heads",
    "gpa_attention",
    "register_backend",
    "select_key_blocks",
    "to_heads",
]
