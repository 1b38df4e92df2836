"""The FlexAttention backend against the reference, by the FlashAttention rule.

The flex error against a float64 reference must be at most twice the error of the float32 reference
backend, plus a rounding floor. Compiling FlexAttention takes seconds, so the sizes are few.
"""

from __future__ import annotations

import pytest
import torch

import gpa_lib.attention.backends.flex as flex
from gpa_lib.attention import BackendCompileError, gpa_attention
from gpa_lib.attention.backends import get_backend
from gpa_lib.attention.problem import check_inputs

SETTING = {"pool": 4, "cell": 8, "topk": 3}
FLOOR = 1e-5


def flex_reason():
    q = torch.zeros(1, 1, 8, 8, 4)
    with torch.no_grad():
        return get_backend("flex").can_run(
            check_inputs(q, q, q, pool=2, cell=4, topk=1, affinity="dot")
        )


pytestmark = [
    pytest.mark.skipif(flex_reason() is not None, reason=f"flex cannot run here: {flex_reason()}"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
]


def awkward_inputs():
    """Three heads, D = 24, Dv = 40, non-square grids of different sizes."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 16, 32, 24, generator=g, dtype=torch.float64)
    k = torch.randn(2, 3, 24, 16, 24, generator=g, dtype=torch.float64)
    v = torch.randn(2, 3, 24, 16, 40, generator=g, dtype=torch.float64)
    return q, k, v


@pytest.mark.parametrize("affinity", ["dot", "euclid"])
def test_flex_matches_reference_within_float32_error(affinity):
    q, k, v = awkward_inputs()
    exact, sel64 = gpa_attention(
        q, k, v, **SETTING, affinity=affinity, backend="reference", return_selection=True
    )
    q32, k32, v32 = q.float(), k.float(), v.float()
    with torch.no_grad():
        ref32, sel_ref = gpa_attention(
            q32, k32, v32, **SETTING, affinity=affinity, backend="reference", return_selection=True
        )
        out, sel_flex = gpa_attention(
            q32, k32, v32, **SETTING, affinity=affinity, backend="flex", return_selection=True
        )
    assert out.shape == (2, 3, 16, 32, 40) and out.dtype == torch.float32
    assert torch.equal(sel_flex, sel_ref) and torch.equal(sel_ref, sel64)
    ref_error = (ref32.double() - exact).abs().max().item()
    flex_error = (out.double() - exact).abs().max().item()
    assert flex_error <= 2 * ref_error + FLOOR, (flex_error, ref_error)


def test_flex_needs_no_grad_on_cpu():
    q, k, v = (t.float().requires_grad_() for t in awkward_inputs())
    reason = get_backend("flex").can_run(check_inputs(q, k, v, **SETTING, affinity="dot"))
    assert "no backward pass on CPU" in reason


def test_compile_failure_falls_back_and_is_remembered(monkeypatch, caplog):
    backend = get_backend("flex")
    monkeypatch.setattr(backend, "broken", {})

    def broken_compile():
        def fail(*args, **kwargs):
            raise torch._dynamo.exc.TorchDynamoException("no compiler today")

        return fail

    monkeypatch.setattr(flex, "_compiled_flex_attention", broken_compile)
    # As where flex is chosen automatically (CUDA): no CPU decline; float16, which the fused CPU
    # kernel (tried before flex) does not take, so backend=None tries flex first.
    monkeypatch.setattr(backend, "declines", lambda problem: None)
    q = torch.randn(1, 1, 64, 64, 4).half()
    with torch.no_grad():
        with pytest.raises(BackendCompileError, match="no compiler today"):
            gpa_attention(q, q, q, **SETTING, backend="flex")
        assert "failed earlier in this process" in backend.can_run(
            check_inputs(q, q, q, **SETTING, affinity="dot")
        )
        monkeypatch.setattr(backend, "broken", {})
        with caplog.at_level("WARNING", logger="gpa_lib.attention"):
            out = gpa_attention(q, q, q, **SETTING)
    assert "failed, using 'reference'" in caplog.text
    torch.testing.assert_close(out, gpa_attention(q, q, q, **SETTING, backend="reference"))
