"""The fused backend's math, custom ops and kernels, checked on the CPU.

- kernel.reference_math (the ops' portable implementation) against the reference backend and gradcheck;
- the inverse map (key block -> cells) that makes the kernel's dk/dv deterministic;
- torch.library.opcheck and torch.compile(fullgraph=True) of the custom ops;
- the CUDA kernels themselves, executed by the host emulation (csrc/gpa_emulation.h), against the
  float64 reference by the FlashAttention rule.
"""

from __future__ import annotations

import pytest
import torch
from helpers import make_qkv

from gpa_lib.attention.backends.reference import attend_selected
from gpa_lib.attention.kernel.cuda.evidence import (
    EMULATION_CASES,
    case_inputs,
    emulated_case_report,
)
from gpa_lib.attention.kernel.cuda.ops import (
    gpa_attention_fused,
    gpa_phase2_bwd,
    gpa_phase2_fwd,
    gpa_select,
    phase2_fused,
)
from gpa_lib.attention.kernel.cuda.reference_math import phase2_forward_math, selection_csr
from gpa_lib.attention.problem import check_inputs
from gpa_lib.attention.scores import key_bias, logit_scale


def make_inputs(
    dtype=torch.float64,
    *,
    batch=1,
    heads=2,
    q_grid=(8, 8),
    k_grid=(6, 10),
    dim=4,
    pool=2,
    cell=4,
    topk=3,
    seed=0,
):
    """q, k, v (B, h, H, W, D) and a random selection (B, h, Hq/cell, Wq/cell, topk) of distinct blocks."""
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (t.to(dtype) for t in make_qkv(batch, heads, q_grid, k_grid, dim, generator=gen))
    n_blocks = (k_grid[0] // pool) * (k_grid[1] // pool)
    cells = (q_grid[0] // cell, q_grid[1] // cell)
    ranks = torch.rand(batch, heads, *cells, n_blocks, generator=gen)
    selection = ranks.argsort(dim=-1)[..., :topk]  # (B, h, Hq/c, Wq/c, k)
    return q, k, v, selection


@pytest.mark.parametrize("affinity", ["dot", "euclid"])
def test_phase2_math_matches_the_reference_backend(affinity):
    q, k, v, selection = make_inputs()
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    problem = check_inputs(q, k, v, pool=2, cell=4, topk=3, affinity=affinity)
    ours = phase2_fused(q, k, v, selection, pool=2, cell=4, affinity=affinity)
    ref = attend_selected(q, k, v, selection.flatten(2, 3), problem)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(ours)
    for got, want in zip(
        torch.autograd.grad(ours, (q, k, v), grad),
        torch.autograd.grad(ref, (q, k, v), grad),
        strict=True,
    ):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_phase2_ops_pass_gradcheck_with_a_key_bias():
    q, k, v, selection = make_inputs(q_grid=(4, 8), k_grid=(4, 6))
    bias = torch.randn(1, 2, 4, 6, dtype=torch.float64, requires_grad=True)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    fn = lambda q, k, v, b: gpa_phase2_fwd(q, k, v, selection, b, 2, 4, 0.7)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v, bias), fast_mode=True)


def test_lse_is_not_differentiable():
    q, k, v, selection = make_inputs()
    q.requires_grad_()
    _, lse = gpa_phase2_fwd(q, k, v, selection, None, 2, 4, 0.5)
    assert not lse.requires_grad


def test_selection_csr_lists_every_cell_of_every_block_in_order():
    _, _, _, selection = make_inputs(
        batch=2, heads=3, q_grid=(12, 8), k_grid=(6, 6), topk=4, seed=3
    )
    n_blocks = 9
    offsets, cells = selection_csr(selection, n_blocks)
    flat = selection.flatten(0, 1).flatten(1, 2)  # (BH, K, k)
    assert offsets.dtype == cells.dtype == torch.int32
    assert offsets[0] == 0 and offsets[-1] == flat.numel()
    for bh in range(flat.shape[0]):
        for block in range(n_blocks):
            start, stop = offsets[bh * n_blocks + block], offsets[bh * n_blocks + block + 1]
            want = [
                c
                for c in range(flat.shape[1])
                for t in range(flat.shape[2])
                if flat[bh, c, t] == block
            ]
            assert cells[start:stop].tolist() == want
    again = selection_csr(selection, n_blocks)
    assert torch.equal(offsets, again[0]) and torch.equal(cells, again[1])


def test_custom_ops_pass_opcheck():
    q, k, v, selection = make_inputs()
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    bias = torch.randn(1, 2, 6, 10, dtype=torch.float64, requires_grad=True)
    for maybe_bias in (None, bias):
        torch.library.opcheck(gpa_phase2_fwd, (q, k, v, selection, maybe_bias, 2, 4, 0.3))
    out, lse = gpa_phase2_fwd(q, k, v, selection, bias, 2, 4, 0.3)
    args = (
        torch.randn_like(out),
        q.detach(),
        k.detach(),
        v.detach(),
        out.detach(),
        lse,
        selection,
        bias.detach(),
        2,
        4,
        0.3,
    )
    torch.library.opcheck(gpa_phase2_bwd, args)
    torch.library.opcheck(gpa_select, (q.detach(), k.detach(), 2, 4, 3, "euclid", 2**22))


def test_fused_path_traces_without_graph_breaks():
    q, k, v, _ = make_inputs(torch.float32)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    args = {"pool": 2, "cell": 4, "topk": 3, "affinity": "euclid"}
    compiled = torch.compile(
        lambda q, k, v: gpa_attention_fused(q, k, v, **args), fullgraph=True, backend="aot_eager"
    )
    out, selection = compiled(q, k, v)
    out.sum().backward()
    eager_out, eager_selection = gpa_attention_fused(q, k, v, **args)
    assert torch.equal(selection, eager_selection)
    torch.testing.assert_close(out, eager_out)


# --- the CUDA kernels, executed by the host emulation ---------------------------------------


@pytest.mark.parametrize("name", list(EMULATION_CASES))
def test_emulated_kernels_match_the_reference(emulation, name):
    case = EMULATION_CASES[name]
    q, k, v, selection = case_inputs(case, features="random")
    pool, cell, affinity = case.pool, case.cell, case.affinity
    rows = emulated_case_report(name, features="random")
    for row in rows:
        assert row["ok"], (
            f"{name} {row['tensor']}: error {row['kernel_error']:.3g} > 2 x same-precision reference "
            f"error {row['reference_error']:.3g} + floor {row['floor']:.3g}"
        )

    scale = logit_scale(affinity, case.head_dim)
    bias64 = key_bias(k, affinity, dtype=torch.float64)  # (B, h, Hk, Wk) or None
    bias = None if bias64 is None else bias64.float()
    out, lse = emulation.emulated_forward(q, k, v, selection, bias, pool, cell, scale)
    q64, k64, v64 = (t.double() for t in (q, k, v))
    _, lse_exact = phase2_forward_math(q64, k64, v64, selection, bias64, pool, cell, scale)
    torch.testing.assert_close(lse.double(), lse_exact, rtol=1e-4, atol=1e-4)


def test_emulated_kernels_do_not_depend_on_when_copies_land(emulation):
    q, k, v, selection = make_inputs(
        torch.bfloat16, dim=32, q_grid=(16, 16), k_grid=(8, 16), pool=4, cell=8, topk=4, heads=1
    )
    runs = [
        emulation.emulated_forward(q, k, v, selection, None, 4, 8, 0.2, late_copies=late)
        for late in (False, True)
    ]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
