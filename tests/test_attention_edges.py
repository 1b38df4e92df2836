"""GPA at the edges of its numerics: large logits in half precision, ties, one key block, NaN."""

from __future__ import annotations

import pytest
import torch

from gpa_lib.attention import dense_attention, gpa_attention

SETTING = {"pool": 2, "cell": 4}
TORCH_BACKENDS = ("reference", "recompute", "masked")  # the ones that take half precision
ALL_CPU_BACKENDS = (*TORCH_BACKENDS, "cpu")


def big_inputs(dtype, affinity, seed=0):
    """q, k with |q.k|/sqrt(D) above 5e3 (key norms about 400 for euclid), v of unit scale."""
    g = torch.Generator().manual_seed(seed)
    D = 16
    scale = 50.0 if affinity == "dot" else 100.0
    q = (scale * torch.randn(1, 2, 8, 8, D, generator=g)).to(dtype)
    k = (scale * torch.randn(1, 2, 8, 8, D, generator=g)).to(dtype)
    if affinity == "euclid":
        k[:, :, :4] = q[:, :, :4]  # exact matches: logit 0 next to logits of order -1e4
    v = torch.randn(1, 2, 8, 8, D, generator=g).to(dtype)
    return q, k, v


@pytest.mark.parametrize("affinity", ["dot", "euclid"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_large_logits_in_half_precision_stay_finite_and_right(dtype, affinity):
    q, k, v = big_inputs(dtype, affinity)
    logits = (q.double().flatten(2, 3) @ k.double().flatten(2, 3).transpose(-1, -2)) / 4
    assert logits.abs().max() > 5e3  # the case is what it says
    bound = v.double().abs().amax() * 1.01  # an output row is a convex combination of values
    for backend in TORCH_BACKENDS:
        out = gpa_attention(q, k, v, **SETTING, topk=4, affinity=affinity, backend=backend)
        assert torch.isfinite(out).all(), backend
        assert out.double().abs().max() <= bound, backend
    # Which key wins a near tie depends on rounding at |logit| ~ 1e4 in half precision, so the output
    # is not compared with float64: finiteness and the convex bound are the promise.
    dense = dense_attention(q, k, v, affinity=affinity)
    assert torch.isfinite(dense).all()


@pytest.mark.parametrize("backend", ALL_CPU_BACKENDS)
def test_all_equal_keys_tie_every_block_and_pick_the_lowest_indices(backend):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 1, 8, 8, 4, generator=g, dtype=torch.float64)
    k = torch.ones(1, 1, 8, 8, 4, dtype=torch.float64)
    v = torch.randn(1, 1, 8, 8, 3, generator=g, dtype=torch.float64)
    out, selection = gpa_attention(
        q, k, v, **SETTING, topk=3, backend=backend, return_selection=True
    )
    assert selection.flatten(0, 3).tolist() == [[0, 1, 2]] * 4  # ties go to the lower block index
    # Equal logits: a uniform average over the 3 * 2 * 2 keys of blocks 0, 1 and 2 (rows 0-1, cols 0-5).
    expected = v[0, 0, :2, :6].reshape(-1, 3).mean(0)
    torch.testing.assert_close(out[0, 0], expected.expand(8, 8, 3))


@pytest.mark.parametrize("affinity", ["dot", "euclid"])
def test_a_single_key_block_is_dense_attention(affinity):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 3, 8, 4, 5, generator=g, dtype=torch.float64)
    k = torch.randn(2, 3, 2, 2, 5, generator=g, dtype=torch.float64)
    v = torch.randn(2, 3, 2, 2, 7, generator=g, dtype=torch.float64)
    for backend in ALL_CPU_BACKENDS:
        out = gpa_attention(q, k, v, pool=2, cell=4, topk=1, affinity=affinity, backend=backend)
        torch.testing.assert_close(out, dense_attention(q, k, v, affinity=affinity))


@pytest.mark.parametrize("backend", ALL_CPU_BACKENDS)
def test_a_nan_query_gives_nan_for_that_query_only(backend):
    g = torch.Generator().manual_seed(2)
    q = torch.randn(1, 1, 8, 8, 4, generator=g)
    k, v = torch.randn(1, 1, 8, 8, 4, generator=g), torch.randn(1, 1, 8, 8, 4, generator=g)
    q[0, 0, 1, 2, 0] = float("nan")
    out = gpa_attention(q, k, v, **SETTING, topk=2, backend=backend)
    nan = torch.isnan(out).any(-1)[0, 0]  # (H, W)
    assert nan[1, 2] and nan.sum() == 1


def test_an_infinite_key_raises_nothing():
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 1, 8, 8, 4, generator=g) for _ in range(3))
    k[0, 0, 0, 0, 0] = float("inf")
    out = gpa_attention(q, k, v, **SETTING, topk=2)  # documented: not refused, no exception
    assert out.shape == q.shape
