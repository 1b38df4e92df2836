"""GPA against its definition: a slow loop oracle, dense attention, gradients, awkward sizes."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import make_qkv
from oracle import slow_gpa

from gpa_lib.attention import dense_attention, gpa_attention, select_key_blocks

AFFINITIES = ("dot", "euclid")


def rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("affinity", AFFINITIES)
@pytest.mark.parametrize("backend", ["reference", "recompute", "masked", "cpu"])
def test_matches_slow_loop_oracle(affinity, backend):
    q, k, v = make_qkv(1, 2, (8, 12), (8, 4), 3, 2, seed=3)
    expected_out, expected_sel = slow_gpa(q, k, v, pool=2, cell=4, topk=3, affinity=affinity)
    out, sel = gpa_attention(
        q, k, v, pool=2, cell=4, topk=3, affinity=affinity, backend=backend, return_selection=True
    )
    assert sel.dtype == torch.long and sel.shape == (1, 2, 2, 3, 3)
    assert torch.equal(sel, expected_sel)
    torch.testing.assert_close(out, expected_out, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("affinity", AFFINITIES)
def test_oracle_with_pool_equal_cell_and_pool_one(affinity):
    q, k, v = make_qkv(2, 1, (4, 4), (6, 2), 2, 3, seed=5)
    for pool, cell, topk in ((2, 2, 2), (1, 2, 4)):
        expected_out, expected_sel = slow_gpa(q, k, v, pool, cell, topk, affinity)
        out, sel = gpa_attention(
            q,
            k,
            v,
            pool=pool,
            cell=cell,
            topk=topk,
            affinity=affinity,
            backend="reference",
            return_selection=True,
        )
        assert torch.equal(sel, expected_sel)
        torch.testing.assert_close(out, expected_out, rtol=1e-12, atol=1e-12)


AWKWARD = [  # B, h, q grid, k grid, D, Dv, pool, cell
    (2, 1, (8, 16), (12, 8), 24, 24, 2, 4),  # non-square, Hq != Hk, D = 24, one head
    (1, 3, (16, 8), (8, 8), 40, 16, 4, 8),  # three heads, D = 40, Dv != D
    (1, 2, (4, 12), (6, 10), 5, 7, 2, 2),  # cell = pool
]


@pytest.mark.parametrize("affinity", AFFINITIES)
@pytest.mark.parametrize("B,h,q_grid,k_grid,D,Dv,pool,cell", AWKWARD)
def test_all_blocks_equals_dense_attention(affinity, B, h, q_grid, k_grid, D, Dv, pool, cell):
    q, k, v = make_qkv(B, h, q_grid, k_grid, D, Dv)
    n_blocks = (k_grid[0] // pool) * (k_grid[1] // pool)
    expected = dense_attention(q, k, v, affinity=affinity)
    assert expected.shape == (B, h, *q_grid, Dv)
    for backend in ("reference", "recompute", "masked", "cpu"):
        out = gpa_attention(
            q, k, v, pool=pool, cell=cell, topk=n_blocks, affinity=affinity, backend=backend
        )
        torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("affinity", AFFINITIES)
@pytest.mark.parametrize("B,h,q_grid,k_grid,D,Dv,pool,cell", AWKWARD)
def test_reference_equals_masked_dense_on_awkward_sizes(
    affinity, B, h, q_grid, k_grid, D, Dv, pool, cell
):
    q, k, v = make_qkv(B, h, q_grid, k_grid, D, Dv, seed=7)
    ref, sel_ref = gpa_attention(
        q,
        k,
        v,
        pool=pool,
        cell=cell,
        topk=2,
        affinity=affinity,
        backend="reference",
        return_selection=True,
    )
    dense, sel_dense = gpa_attention(
        q,
        k,
        v,
        pool=pool,
        cell=cell,
        topk=2,
        affinity=affinity,
        backend="masked",
        return_selection=True,
    )
    assert ref.shape == (B, h, *q_grid, Dv)
    assert sel_ref.shape == (B, h, q_grid[0] // cell, q_grid[1] // cell, 2)
    assert torch.equal(sel_ref, sel_dense)
    torch.testing.assert_close(ref, dense, rtol=1e-10, atol=1e-10)


def test_dense_attention_dot_matches_softmax_formula():
    q, k, v = make_qkv(1, 2, (4, 6), (2, 5), 3, 4)
    scores = q.flatten(2, 3) @ k.flatten(2, 3).transpose(-1, -2) / math.sqrt(3)
    expected = (scores.softmax(-1) @ v.flatten(2, 3)).unflatten(2, (4, 6))
    torch.testing.assert_close(dense_attention(q, k, v), expected)


def test_ties_go_to_the_lower_block_index():
    q = rand(1, 1, 4, 4, 3)
    k = torch.ones(1, 1, 8, 8, 3, dtype=torch.float64)  # every key block scores the same
    sel = select_key_blocks(q, k, pool=2, cell=4, topk=5)
    assert sel.tolist() == [[[[[0, 1, 2, 3, 4]]]]]
    k[..., 4:6, 2:4, :] = 2.0  # block (2, 1) -> index 9 wins, the rest still tie
    sel = select_key_blocks(q.abs(), k, pool=2, cell=4, topk=3)
    assert sel.tolist() == [[[[[9, 0, 1]]]]]


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("affinity", AFFINITIES)
def test_gradcheck_float64(affinity, backend):
    q, k, v = make_qkv(1, 1, (4, 8), (4, 4), 2, 2, seed=11)  # small: every entry is perturbed twice
    inputs = tuple(t.requires_grad_() for t in (q, k, v))

    def fn(q, k, v):
        return gpa_attention(q, k, v, pool=2, cell=4, topk=2, affinity=affinity, backend=backend)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8)


def test_no_gradient_through_the_selection():
    """Gradients equal those of attention restricted to a fixed, detached key set."""
    q, k, v = make_qkv(1, 1, (4, 4), (4, 4), 3, 3, seed=2)
    q.requires_grad_()
    out, sel = gpa_attention(
        q, k, v, pool=2, cell=4, topk=2, backend="reference", return_selection=True
    )
    out.square().sum().backward()
    blocks = sel[0, 0, 0, 0].tolist()
    keys = torch.cat(
        [
            k[0, 0, (b // 2) * 2 : (b // 2) * 2 + 2, (b % 2) * 2 : (b % 2) * 2 + 2].reshape(4, 3)
            for b in blocks
        ]
    )
    values = torch.cat(
        [
            v[0, 0, (b // 2) * 2 : (b // 2) * 2 + 2, (b % 2) * 2 : (b % 2) * 2 + 2].reshape(4, 3)
            for b in blocks
        ]
    )
    q2 = q.detach().clone().requires_grad_()
    fixed = torch.softmax(q2.reshape(16, 3) @ keys.T / math.sqrt(3), -1) @ values
    fixed.square().sum().backward()
    torch.testing.assert_close(q.grad, q2.grad)


def test_reference_runs_in_float32_and_half_precision():
    q, k, v = make_qkv(1, 2, (8, 8), (8, 8), 8, 8, dtype=torch.float32)
    exact = gpa_attention(
        q.double(), k.double(), v.double(), pool=2, cell=4, topk=3, backend="reference"
    )
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 5e-2)):
        out = gpa_attention(
            q.to(dtype), k.to(dtype), v.to(dtype), pool=2, cell=4, topk=3, backend="reference"
        )
        assert out.dtype == dtype
        assert (out.double() - exact).abs().max() < tol


def test_dense_attention_keeps_the_fused_kernel_for_non_contiguous_inputs():
    """Permuted (non-contiguous) inputs must not fall back to a kernel that forms all Nq x Nk scores."""
    from gpa_lib.attention import dense_attention
    from gpa_lib.measure import peak_memory

    torch.manual_seed(0)
    x = torch.randn(1, 32, 64, 64)  # (B, C, H, W) conv features
    q = x.view(1, 1, 32, 64, 64).permute(0, 1, 3, 4, 2)  # (B, h, H, W, D), not contiguous
    assert not q.is_contiguous()
    with torch.no_grad():
        out, peak = peak_memory(lambda: dense_attention(q, q, q))
        expected = dense_attention(q.contiguous(), q.contiguous(), q.contiguous())
    scores_bytes = 4096 * 4096 * 4  # the (Nq, Nk) float32 score matrix a fallback would form
    assert peak < scores_bytes / 4, f"peak {peak / 2**20:.1f} MiB: the score matrix was formed"
    torch.testing.assert_close(out, expected)
