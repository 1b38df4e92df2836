"""Bad input: every case raises a ValueError or TypeError naming the argument and values, before work.

Also backend choice: unknown names, forced backends that cannot run, and the explanations.
"""

from __future__ import annotations

import pytest
import torch

import gpa_lib.attention.backends as backends
from gpa_lib.attention import BackendUnavailableError, auto_backend, explain_backends, gpa_attention

GOOD = {"pool": 2, "cell": 4, "topk": 3}


def tensors(
    q_grid=(8, 12), k_grid=(8, 4), B=(1, 1, 1), h=(2, 2, 2), D=(3, 3), Dv=2, dtype=torch.float32
):
    q = torch.randn(B[0], h[0], *q_grid, D[0], dtype=dtype)
    k = torch.randn(B[1], h[1], *k_grid, D[1], dtype=dtype)
    v = torch.randn(B[2], h[2], *k_grid, Dv, dtype=dtype)
    return q, k, v


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    """Any call that gets past validation to a backend fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a backend was chosen: validation let bad input through")

    monkeypatch.setattr(backends, "candidates", refuse)


def check(error, match, q, k, v, **kwargs):
    with pytest.raises(error, match=match):
        gpa_attention(q, k, v, **{**GOOD, **kwargs})


def test_sanity_good_inputs_reach_the_backends():
    with pytest.raises(AssertionError, match="validation let bad input through"):
        gpa_attention(*tensors(), **GOOD)


def test_q_of_wrong_rank():
    q, k, v = tensors()
    check(
        ValueError,
        r"q must have 5 dimensions .* got 4 dimensions with shape \(2, 8, 12, 3\)",
        q[0],
        k,
        v,
    )


def test_k_of_wrong_rank():
    q, k, v = tensors()
    check(ValueError, r"k must have 5 dimensions .* got 6", q, k[..., None], v)


def test_v_of_wrong_rank():
    q, k, v = tensors()
    check(ValueError, r"v must have 5 dimensions .* got 3", q, k, v[0, 0])


def test_not_a_tensor():
    q, k, v = tensors()
    check(TypeError, r"q must be a torch.Tensor .* got ndarray", q.numpy(), k, v)


def test_batch_mismatch():
    check(
        ValueError,
        r"batch sizes differ: q.shape\[0\]=1, k.shape\[0\]=2, v.shape\[0\]=2",
        *tensors(B=(1, 2, 2)),
    )


def test_heads_mismatch():
    check(ValueError, r"heads sizes differ: q.shape\[1\]=2, k.shape\[1\]=3", *tensors(h=(2, 3, 3)))


def test_head_dim_mismatch():
    check(ValueError, r"head dims differ: q.shape\[4\]=3 .* k.shape\[4\]=5", *tensors(D=(3, 5)))


def test_key_value_grid_mismatch():
    q, k, _ = tensors()
    v = torch.randn(1, 2, 8, 6, 2)
    check(ValueError, r"k and v grids differ: k grid \(Hk, Wk\)=\(8, 4\), v grid=\(8, 6\)", q, k, v)


def test_query_height_not_multiple_of_cell():
    check(
        ValueError,
        r"query grid \(Hq, Wq\)=\(6, 12\) must be multiples of cell=4",
        *tensors(q_grid=(6, 12)),
    )


def test_query_width_not_multiple_of_cell():
    check(
        ValueError,
        r"query grid \(Hq, Wq\)=\(8, 10\) must be multiples of cell=4",
        *tensors(q_grid=(8, 10)),
    )


def test_cell_not_multiple_of_pool():
    check(
        ValueError,
        r"cell=6 must be a multiple of pool=4",
        *tensors(q_grid=(12, 12)),
        pool=4,
        cell=6,
    )


def test_key_height_not_multiple_of_pool():
    check(
        ValueError,
        r"key grid \(Hk, Wk\)=\(7, 4\) must be multiples of pool=2",
        *tensors(k_grid=(7, 4)),
    )


def test_key_width_not_multiple_of_pool():
    check(
        ValueError,
        r"key grid \(Hk, Wk\)=\(8, 5\) must be multiples of pool=2",
        *tensors(k_grid=(8, 5)),
    )


def test_topk_below_one():
    check(
        ValueError,
        r"topk=0 must be between 1 and the number of key blocks .*=8",
        *tensors(),
        topk=0,
    )


def test_topk_above_the_number_of_key_blocks():
    check(
        ValueError,
        r"topk=9 must be between 1 and the number of key blocks \(Hk/pool\)\*\(Wk/pool\)=\(8/2\)\*\(4/2\)=8",
        *tensors(),
        topk=9,
    )


def test_non_integer_sizes():
    check(TypeError, r"pool must be an int, got pool=2.0", *tensors(), pool=2.0)


@pytest.mark.parametrize("name", ["q", "k", "v"])
def test_non_floating_dtype(name):
    q, k, v = tensors()
    bad = {"q": q, "k": k, "v": v}
    bad[name] = bad[name].to(torch.int64)
    check(
        TypeError,
        rf"{name} must have a floating dtype, got {name}.dtype=torch.int64",
        bad["q"],
        bad["k"],
        bad["v"],
    )


def test_dtype_mismatch():
    q, k, v = tensors()
    check(
        TypeError,
        r"q, k and v must share a dtype, got q.dtype=torch.float64, k.dtype=torch.float32",
        q.double(),
        k,
        v,
    )


def test_unknown_affinity():
    check(
        ValueError,
        r"affinity='cosine' is unknown; choose one of \('dot', 'euclid'\)",
        *tensors(),
        affinity="cosine",
    )


def test_unknown_backend():
    check(
        ValueError,
        r"backend='triton' is unknown; choose one of \('cuda', 'cpu', 'flex', 'reference', 'recompute', 'masked'\)",
        *tensors(),
        backend="triton",
    )


def test_backend_of_wrong_type():
    check(TypeError, r"backend must be a str or None, got backend=3", *tensors(), backend=3)


class TestBackendChoice:
    @pytest.fixture(autouse=True)
    def no_work(self):  # overrides the module fixture: these tests run the backends
        pass

    def test_forcing_a_backend_that_cannot_run_is_an_error(self):
        q, k, v = tensors(dtype=torch.float64)
        with pytest.raises(
            BackendUnavailableError,
            match=r"backend='flex' cannot run .* float32, float16 and bfloat16",
        ):
            gpa_attention(q, k, v, **GOOD, backend="flex")
        with pytest.raises(
            BackendUnavailableError, match=r"backend='cuda' cannot run .*no fused CUDA kernel"
        ):
            gpa_attention(q, k, v, **GOOD, backend="cuda")

    def test_explanations_name_every_backend_in_priority_order(self):
        q, k, v = (t.requires_grad_() for t in tensors())
        reasons = explain_backends(q, k, v, **GOOD)
        assert list(reasons) == ["cuda", "cpu", "flex", "reference", "recompute", "masked"]
        assert "no backward pass on CPU" in reasons["flex"] or "compiler" in reasons["flex"]
        assert reasons["reference"] is None
        assert reasons["masked"].startswith("not chosen automatically")
        assert reasons["recompute"].startswith("not chosen automatically")
        assert reasons["cpu"] is None or "compiler" in reasons["cpu"]
        expected = "cpu" if reasons["cpu"] is None else "reference"
        assert auto_backend(q, k, v, **GOOD) == expected

    def test_on_the_cpu_flex_is_never_chosen_automatically(self):
        q, k, v = tensors(q_grid=(64, 64), k_grid=(64, 64))  # 4096 queries: flex's CUDA threshold
        with torch.no_grad():
            reasons = explain_backends(q, k, v, **GOOD)
            assert "on the CPU, compiling FlexAttention takes seconds" in reasons["flex"] or (
                "compiler" in reasons["flex"]
            )
            assert auto_backend(q, k, v, **GOOD) in ("cpu", "reference")

    def test_backend_none_runs(self):
        q, k, v = tensors()
        out = gpa_attention(q, k, v, **GOOD)
        assert out.shape == (1, 2, 8, 12, 2)
