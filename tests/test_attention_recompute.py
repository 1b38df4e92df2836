"""The recompute backend: the reference math, the same gradients, less memory to train."""

from __future__ import annotations

import pytest
import torch
from helpers import make_qkv

from gpa_lib.attention import gpa_attention
from gpa_lib.attention.backends.recompute import attend_selected_recompute, recompute_chunk_cells
from gpa_lib.attention.backends.reference import attend_selected
from gpa_lib.attention.problem import check_inputs
from gpa_lib.attention.selection import select_key_blocks_flat
from gpa_lib.measure import peak_memory


@pytest.mark.parametrize("affinity", ["dot", "euclid"])
@pytest.mark.parametrize("chunk_cells", [None, 1, 3, 100])
def test_same_output_and_gradients_as_reference(affinity, chunk_cells):
    q, k, v = make_qkv(2, 2, (16, 24), (12, 8), 5, 3, seed=1)  # 6 cells, uneven last chunk
    problem = check_inputs(q, k, v, pool=2, cell=4, topk=3, affinity=affinity)
    selection = select_key_blocks_flat(q, k, problem)
    grads = []
    for fn in (attend_selected, attend_selected_recompute):
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        kwargs = {"chunk_cells": chunk_cells} if fn is attend_selected_recompute else {}
        out = fn(*leaves, selection, problem, **kwargs)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        grads.append((out.detach(), *(t.grad for t in leaves)))
    for expected, got in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_gradcheck_through_the_backend():
    q, k, v = (t.requires_grad_() for t in make_qkv(1, 1, (8, 8), (4, 4), 2, 2, seed=2))

    def fn(q, k, v):
        return gpa_attention(q, k, v, pool=2, cell=4, topk=2, backend="recompute")

    assert torch.autograd.gradcheck(fn, (q, k, v), eps=1e-6, atol=1e-8)


def test_chunk_scores_are_about_the_size_of_q():
    q, k, v = make_qkv(1, 1, (64, 64), (64, 64), 24, 3, dtype=torch.float32)
    problem = check_inputs(q, k, v, pool=4, cell=8, topk=16, affinity="dot")
    chunk = recompute_chunk_cells(problem)  # 64 cells * 24 channels / 256 keys per query
    assert chunk == 6
    assert chunk * 64 * 256 <= q.numel() < (chunk + 1) * 64 * 256


def test_bad_chunk_is_named():
    q, k, v = make_qkv(1, 1, (8, 8), (8, 8), 2, 2)
    problem = check_inputs(q, k, v, pool=2, cell=4, topk=2, affinity="dot")
    selection = select_key_blocks_flat(q, k, problem)
    with pytest.raises(ValueError, match=r"chunk_cells=0 must be at least 1"):
        attend_selected_recompute(q, k, v, selection, problem, chunk_cells=0)


def test_training_step_needs_less_memory_than_the_reference():
    """At the pixel-copy size of chapter 3 the kept attention weights dominate the reference's peak."""
    q, k, v = make_qkv(1, 1, (64, 64), (64, 64), 24, 3, dtype=torch.float32, seed=3)

    def step(backend):
        leaves = [t.clone().requires_grad_() for t in (q, k)]

        def run():
            out = gpa_attention(*leaves, v, pool=4, cell=8, topk=16, backend=backend)
            out.sum().backward()

        return peak_memory(run)[1]

    reference, recompute = step("reference"), step("recompute")
    weights = 64 * 64 * 256 * 4  # bytes of the (Nq, topk * pool^2) attention weights, 4 MiB
    assert reference > 2 * weights
    assert recompute < reference / 3
    assert recompute < weights
