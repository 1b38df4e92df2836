"""Grid Partitioned Attention (GPA): the functional ops, the ``GPA`` layer, named backends.

>>> from gpa_lib.attention import gpa_attention, dense_attention, GPA
>>> out = gpa_attention(q, k, v, pool=4, cell=8, topk=8)  # q (B, h, Hq, Wq, D), k/v (B, h, Hk, Wk, D/Dv)

Layout:

- ``functional`` (``gpa_attention``, ``dense_attention``, ``explain_backends``), ``layer`` (the
  ``GPA`` nn.Module and ``dense_or_gpa``, the one dense-or-GPA switch), ``problem`` (checked inputs
  and the :class:`Hierarchy` settings), ``grid`` (cells, blocks, heads), ``selection`` (phase 1),
  ``hierarchical`` (the optional super-blocks-first phase 1), ``scores`` (the two affinities as
  scale and key bias), ``exact`` (fused and materialised exact attention), ``synthetic`` (textured
  test images and features);
- ``backends/``: ``base`` (the interface and errors), ``registry`` (``register_backend`` with a
  priority, the automatic choice), and ``cuda``, ``cpu``, ``flex``, ``reference``, ``recompute``,
  ``masked``;
- ``kernel/``: the compiled kernels, ``cuda/`` and ``cpu/`` side by side (each ``build``, ``ops``,
  ``csrc/``). CUDA: ``build`` (the one ``load_inline`` door), ``ops`` (custom ops), ``phase1``,
  ``reference_math`` (the kernel's math in torch), ``emulation`` (the CUDA source run on the CPU),
  ``check`` (nvcc compile check), ``evidence`` (FlashAttention's tolerance rule). CPU: ``build`` (g++,
  cached) and ``ops`` (ctypes call, autograd). ``host_build`` is the g++ door both host libraries share;
- ``analysis/``: ``complexity`` (FLOPs, bytes, peak memory, roofline floors), ``measure`` (the
  words a range of times allows; the timer and peak memory are ``gpa_lib.measure``),
  ``diagnostics`` (kept attention mass, output error), ``figures``.

:func:`explain_backends` says which backend ``backend=None`` picks and why the others were not.
"""

from .backends import (
    BackendCompileError,
    BackendUnavailableError,
    backend_names,
    register_backend,
    unregister_backend,
)
from .functional import auto_backend, dense_attention, explain_backends, gpa_attention
from .grid import from_heads, to_heads
from .hierarchical import select_key_blocks_hierarchical
from .layer import ATTENTION_KINDS, GPA, dense_or_gpa
from .problem import Hierarchy
from .selection import cell_block_scores, select_key_blocks

__all__ = [
    "ATTENTION_KINDS",
    "GPA",
    "Hierarchy",
    "BackendCompileError",
    "BackendUnavailableError",
    "auto_backend",
    "backend_names",
    "cell_block_scores",
    "dense_attention",
    "dense_or_gpa",
    "explain_backends",
    "from_heads",
    "gpa_attention",
    "register_backend",
    "select_key_blocks",
    "select_key_blocks_hierarchical",
    "to_heads",
    "unregister_backend",
]
