"""Property tests: GPA on random valid problems against the slow loop oracle, and random invalid ones.

Every backend that can run a drawn problem on this machine is checked (in float64 on the CPU:
``reference``, ``recompute`` and ``masked``; FlexAttention has no float64 kernel and the fused kernel
needs a GPU, so their own tests cover them). Example counts are bounded so that ``make test`` stays
fast; the seed is fixed by Hypothesis' database-free profile below, so a run is reproducible.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import selected_attention_loop, slow_gpa

from gpa_lib.attention import backend_names, gpa_attention
from gpa_lib.attention.backends import get_backend
from gpa_lib.attention.problem import check_inputs

PROPERTY = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def problems(draw):
    """A valid GPA call: sizes in tokens, float64 tensors."""
    pool = draw(st.integers(1, 3))
    cell = pool * draw(st.integers(1, 2))
    q_grid = (cell * draw(st.integers(1, 3)), cell * draw(st.integers(1, 3)))
    k_grid = (pool * draw(st.integers(1, 3)), pool * draw(st.integers(1, 3)))
    n_blocks = (k_grid[0] // pool) * (k_grid[1] // pool)
    spec = {
        "B": draw(st.integers(1, 2)),
        "h": draw(st.integers(1, 3)),
        "D": draw(st.integers(1, 6)),
        "Dv": draw(st.integers(1, 6)),
        "q_grid": q_grid,
        "k_grid": k_grid,
        "pool": pool,
        "cell": cell,
        "topk": draw(st.integers(1, n_blocks)),
        "affinity": draw(st.sampled_from(["dot", "euclid"])),
        "seed": draw(st.integers(0, 2**16)),
    }
    return spec


def tensors(spec):
    g = torch.Generator().manual_seed(spec["seed"])
    B, h = spec["B"], spec["h"]
    q = torch.randn(B, h, *spec["q_grid"], spec["D"], generator=g, dtype=torch.float64)
    k = torch.randn(B, h, *spec["k_grid"], spec["D"], generator=g, dtype=torch.float64)
    v = torch.randn(B, h, *spec["k_grid"], spec["Dv"], generator=g, dtype=torch.float64)
    return q, k, v


def gpa_settings(spec):
    return {k: spec[k] for k in ("pool", "cell", "topk", "affinity")}


def runnable_backends(q, k, v, spec):
    problem = check_inputs(q, k, v, **gpa_settings(spec))
    return [name for name in backend_names() if get_backend(name).can_run(problem) is None]


@PROPERTY
@given(problems())
def test_every_backend_matches_the_slow_loop_oracle(spec):
    q, k, v = tensors(spec)
    expected_out, expected_sel = slow_gpa(
        q, k, v, spec["pool"], spec["cell"], spec["topk"], spec["affinity"]
    )
    names = runnable_backends(q, k, v, spec)
    assert {"reference", "recompute", "masked"} <= set(names)
    for name in names:
        out, selection = gpa_attention(
            q, k, v, **gpa_settings(spec), backend=name, return_selection=True
        )
        assert torch.equal(selection, expected_sel), name
        torch.testing.assert_close(out, expected_out, rtol=1e-9, atol=1e-10, msg=name)


@settings(PROPERTY, max_examples=10)
@given(problems())
def test_every_backend_has_the_gradients_of_the_loop_oracle(spec):
    q, k, v = (t.requires_grad_() for t in tensors(spec))
    weight = torch.randn(
        spec["B"], spec["h"], *spec["q_grid"], spec["Dv"],
        generator=torch.Generator().manual_seed(spec["seed"] + 1), dtype=torch.float64,
    )  # fmt: skip
    _, selection = gpa_attention(q, k, v, **gpa_settings(spec), return_selection=True)
    oracle = selected_attention_loop(
        q, k, v, selection, spec["pool"], spec["cell"], spec["affinity"]
    )
    expected = torch.autograd.grad((oracle * weight).sum(), (q, k, v))
    for name in runnable_backends(q, k, v, spec):
        out = gpa_attention(q, k, v, **gpa_settings(spec), backend=name)
        grads = torch.autograd.grad((out * weight).sum(), (q, k, v))
        for label, got, want in zip("qkv", grads, expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10, msg=f"{name} d{label}")


def _odd_rows(t):
    """The grid with an odd number of rows (one row dropped or added)."""
    if t.shape[2] % 2:
        return t
    return t[:, :, 1:] if t.shape[2] > 1 else torch.cat([t, t], dim=2)[:, :, :3]


def _square_queries(q):
    return q[:, :, :1, :1].repeat(1, 1, 2, 2, 1)  # (B, h, 2, 2, D): a multiple of cell = pool = 2


#: How to break a valid call ``(q, k, v, call) -> (q, k, v, call)``, and what its error must name.
BREAKERS = {
    "cell not a multiple of pool": (
        lambda q, k, v, c: (q, k, v, {**c, "pool": 2, "cell": 3}),
        "cell",
    ),
    "query grid not a multiple of cell": (
        lambda q, k, v, c: (_odd_rows(q), k, v, {**c, "cell": 2, "pool": 1, "topk": 1}),
        "cell",
    ),
    "key grid not a multiple of pool": (
        lambda q, k, v, c: (
            _square_queries(q),
            _odd_rows(k),
            _odd_rows(v),
            {**c, "pool": 2, "cell": 2, "topk": 1},
        ),
        "pool",
    ),
    "topk zero": (lambda q, k, v, c: (q, k, v, {**c, "topk": 0}), "topk"),
    "topk above the block count": (lambda q, k, v, c: (q, k, v, {**c, "topk": 10_000}), "topk"),
    "pool zero": (lambda q, k, v, c: (q, k, v, {**c, "pool": 0}), "pool"),
    "pool a float": (lambda q, k, v, c: (q, k, v, {**c, "pool": 2.0}), "pool"),
    "topk a bool": (lambda q, k, v, c: (q, k, v, {**c, "topk": True}), "topk"),
    "unknown affinity": (lambda q, k, v, c: (q, k, v, {**c, "affinity": "cosine"}), "affinity"),
    "q with four dimensions": (lambda q, k, v, c: (q[0], k, v, c), "q"),
    "integer keys": (lambda q, k, v, c: (q, k.long(), v, c), "k"),
    "batch sizes differ": (lambda q, k, v, c: (q, k, v[:1], c), "batch"),
    "head dims differ": (lambda q, k, v, c: (q, torch.cat([k, k[..., :1]], -1), v, c), "head dims"),
    "backend not a str": (lambda q, k, v, c: (q, k, v, {**c, "backend": 3}), "backend"),
    "unknown backend": (lambda q, k, v, c: (q, k, v, {**c, "backend": "triton"}), "backend"),
}


@settings(PROPERTY, max_examples=40)
@given(problems(), st.sampled_from(sorted(BREAKERS)))
def test_invalid_calls_raise_errors_that_name_the_argument(spec, breaker):
    q, k, v = tensors({**spec, "B": 2})
    change, argument = BREAKERS[breaker]
    q, k, v, call = change(q, k, v, gpa_settings(spec))
    with pytest.raises((ValueError, TypeError)) as caught:
        gpa_attention(q, k, v, **call)
    assert argument in str(caught.value), (breaker, str(caught.value))
