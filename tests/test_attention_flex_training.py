"""Training through the flex backend never dies of a backward that inductor cannot build.

These tests run on the CPU without compiling anything: the compiled ``flex_attention`` is replaced
by an eager stand-in that honours the BlockMask (tiles from ``BlockMask.to_dense``) and whose
backward raises what torch 2.11 raised on an H200 (``InductorError`` wrapping
``NoValidChoicesError ... target: flex_attention_backward``), or works. Gradients are compared with
the reference backend in float64; the automatic choice, the probe's cache and the decline reason are
checked through the registry; and a fresh process shows that the CPU path imports no compiler stack.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gpa_lib
import gpa_lib.attention.backends.flex as flex
from gpa_lib.attention import gpa_attention
from gpa_lib.attention.backends import Backend, registry
from gpa_lib.attention.backends.flex import FlexBackend
from gpa_lib.attention.backends.flex_training import backward_key, reference_phase2_grads
from gpa_lib.attention.problem import check_inputs

SETTING = {"pool": 2, "cell": 4, "topk": 3}
ERROR_LINE = "No choices to select, please consider adding ATEN into max_autotune_gemm_backends"


def backward_compile_error() -> Exception:
    from torch._inductor.exc import InductorError
    from torch._inductor.select_algorithm import NoValidChoicesError

    inner = NoValidChoicesError(f"{ERROR_LINE}\n  target: flex_attention_backward")
    return InductorError(inner, None)


class _Backward(torch.autograd.Function):
    """Identity whose backward counts its calls and raises ``error`` when one is set."""

    @staticmethod
    def forward(ctx, x, record):
        ctx.record = record
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        ctx.record["backward"] += 1
        if ctx.record["error"] is not None:
            raise ctx.record["error"]
        return grad, None


def visited_tiles(block_mask, n_key_tiles: int) -> torch.Tensor:
    """The (query tile, key tile) pairs a BlockMask lets flex_attention visit, partial or full.

    Read from the counts and indices themselves: the backend's forward-only mask has index rows as
    wide as topk, which ``BlockMask.to_dense`` does not expect.
    """
    pairs = [(block_mask.kv_num_blocks, block_mask.kv_indices)]
    pairs.append((block_mask.full_kv_num_blocks, block_mask.full_kv_indices))
    tiles = None
    for count, index in pairs:
        width = index.shape[-1]
        kept = torch.arange(width) < count.unsqueeze(-1)  # (B, h, Q, width)
        target = torch.where(kept, index.long(), n_key_tiles)  # a spare column takes the rest
        dense = torch.zeros((*count.shape, n_key_tiles + 1), dtype=torch.bool)  # (B, h, Q, n+1)
        dense.scatter_(-1, target, True)
        tiles = dense[..., :n_key_tiles] if tiles is None else tiles | dense[..., :n_key_tiles]
    return tiles  # (B, h, Q, n)


def stand_in(error: Exception | None):
    """A replacement for ``flex._compiled_flex_attention`` and the record of its calls."""
    record = {"forward_with_grad": 0, "forward_no_grad": 0, "backward": 0, "error": error}

    def flex_attention_eager(q, k, v, *, block_mask, scale, kernel_options=None):
        q_block, k_block = block_mask.BLOCK_SIZE
        tiles = visited_tiles(block_mask, k.shape[-2] // k_block)  # (B, h, Nq/q_block, Nk/k_block)
        allowed = tiles.repeat_interleave(q_block, -2).repeat_interleave(k_block, -1)  # (B,h,Nq,Nk)
        scores = (scale * q @ k.transpose(-1, -2)).masked_fill(~allowed, -math.inf)
        out = torch.softmax(scores, dim=-1) @ v  # (B, h, Nq, Dv)
        grad_on = torch.is_grad_enabled() and out.requires_grad
        record["forward_with_grad" if grad_on else "forward_no_grad"] += 1
        return _Backward.apply(out, record) if grad_on else out

    return (lambda: flex_attention_eager), record


def awkward_inputs():
    """Three heads, D = 24, Dv = 40, non-square grids of different sizes, float64, needing grads."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 8, 12, 24, generator=g, dtype=torch.float64)
    k = torch.randn(2, 3, 6, 8, 24, generator=g, dtype=torch.float64)
    v = torch.randn(2, 3, 6, 8, 40, generator=g, dtype=torch.float64)
    return tuple(t.requires_grad_() for t in (q, k, v))


def gradients(out, inputs, dout):
    return torch.autograd.grad(out, inputs, dout)


@pytest.mark.parametrize("affinity", ["dot", "euclid"])
def test_backward_compile_error_gives_reference_gradients_and_warns_once(
    monkeypatch, caplog, affinity
):
    compiled, record = stand_in(backward_compile_error())
    monkeypatch.setattr(flex, "_compiled_flex_attention", compiled)
    backend = FlexBackend()
    q, k, v = awkward_inputs()
    problem = check_inputs(q, k, v, **SETTING, affinity=affinity)
    assert problem.needs_grad
    ref = gpa_attention(q, k, v, **SETTING, affinity=affinity, backend="reference")
    dout = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=ref.dtype)
    ref_grads = gradients(ref, (q, k, v), dout)

    with caplog.at_level("WARNING", logger="gpa_lib.attention"):
        out, _ = backend(q, k, v, problem)
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        grads = gradients(out, (q, k, v), dout)
        # The compiled backward was tried, failed, and the key is now marked broken.
        assert record["forward_with_grad"] == 1 and record["backward"] == 1
        reason = backend.backward_failure(problem)
        assert reason is not None and ERROR_LINE in reason and "InductorError" in reason
        assert backend.backward_reason(problem) == reason  # the automatic choice sees it too
        # A second step does not try the broken backward again and does not warn again.
        out2, _ = backend(q, k, v, problem)
        grads2 = gradients(out2, (q, k, v), dout)
    assert record["forward_with_grad"] == 1 and record["forward_no_grad"] == 1
    assert record["backward"] == 1
    warnings = [r for r in caplog.records if "compiled backward failed" in r.getMessage()]
    assert len(warnings) == 1 and ERROR_LINE in warnings[0].getMessage()
    for got in (grads, grads2):
        for name, g, r in zip("qkv", got, ref_grads, strict=True):
            torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12, msg=f"d{name}")


def test_working_compiled_backward_is_the_one_used(monkeypatch, caplog):
    compiled, record = stand_in(None)
    monkeypatch.setattr(flex, "_compiled_flex_attention", compiled)
    backend = FlexBackend()
    q, k, v = awkward_inputs()
    q, v = q.detach(), v.detach()  # only k needs a gradient: the inner graph is asked for dk alone
    problem = check_inputs(q, k, v, **SETTING, affinity="euclid")
    ref = gpa_attention(q, k, v, **SETTING, affinity="euclid", backend="reference")
    dout = torch.randn(ref.shape, generator=torch.Generator().manual_seed(2), dtype=ref.dtype)
    with caplog.at_level("WARNING", logger="gpa_lib.attention"):
        out, _ = backend(q, k, v, problem)
        (dk,) = torch.autograd.grad(out, (k,), dout)
    assert record["backward"] == 1 and backend.backward_failure(problem) is None
    assert not caplog.records
    (dk_ref,) = torch.autograd.grad(ref, (k,), dout)
    torch.testing.assert_close(dk, dk_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("affinity", ["dot", "euclid"])
def test_reference_phase2_grads_match_autograd_of_the_reference(affinity):
    q, k, v = awkward_inputs()
    problem = check_inputs(q, k, v, **SETTING, affinity=affinity)
    ref, selection = gpa_attention(
        q, k, v, **SETTING, affinity=affinity, backend="reference", return_selection=True
    )
    dout = torch.randn(ref.shape, generator=torch.Generator().manual_seed(3), dtype=ref.dtype)
    want = gradients(ref, (q, k, v), dout)
    got = reference_phase2_grads(dout, q, k, v, selection.flatten(2, 3), problem)
    for name, g, w in zip("qkv", got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12, msg=f"d{name}")


@pytest.fixture
def automatic_flex(monkeypatch):
    """A fresh flex backend in the registry, let past its CPU rules, as where it is chosen (CUDA)."""
    backend = FlexBackend()
    entry = registry._REGISTRY["flex"]
    monkeypatch.setitem(
        registry._REGISTRY, "flex", registry._Entry(backend, entry.priority, entry.order)
    )
    monkeypatch.setattr(backend, "can_run", lambda problem: None)
    monkeypatch.setattr(backend, "_cheap_decline", lambda problem: None)
    return backend


def test_probe_failure_declines_with_the_compile_error_once_per_key(monkeypatch, automatic_flex):
    compiled, record = stand_in(backward_compile_error())
    monkeypatch.setattr(flex, "_compiled_flex_attention", compiled)
    q, k, v = awkward_inputs()
    problem = check_inputs(q, k, v, **SETTING, affinity="dot")
    reason = registry.explain(problem)["flex"]
    assert reason.startswith("not chosen automatically: FlexAttention's backward did not compile")
    assert f"InductorError: NoValidChoicesError: {ERROR_LINE}" in reason
    assert "tiles of 4^2 queries by 2^2 keys" in reason
    assert automatic_flex not in registry.candidates(problem, None)
    assert record["backward"] == 1  # probed once for both questions
    # Same key (other batch, heads, grids, topk): the cached answer, no new probe.
    q2 = torch.randn(1, 1, 16, 16, 24, dtype=torch.float64, requires_grad=True)
    v2 = torch.randn(1, 1, 16, 16, 40, dtype=torch.float64)
    same_key = check_inputs(q2, q2, v2, pool=2, cell=4, topk=5, affinity="dot")
    assert backward_key(same_key) == backward_key(problem)
    assert automatic_flex.declines(same_key) == reason.removeprefix("not chosen automatically: ")
    assert record["backward"] == 1
    # Another key (euclid) is probed again.
    euclid = check_inputs(q, k, v, **SETTING, affinity="euclid")
    assert "affinity='euclid'" in automatic_flex.declines(euclid)
    assert record["backward"] == 2


def test_probe_success_lets_flex_train_and_inference_is_never_probed(monkeypatch, automatic_flex):
    compiled, record = stand_in(None)
    monkeypatch.setattr(flex, "_compiled_flex_attention", compiled)
    q, k, v = (t.detach().float() for t in awkward_inputs())
    with torch.no_grad():
        inference = check_inputs(q, k, v, **SETTING, affinity="dot")
    assert automatic_flex.declines(inference) is None and record["forward_with_grad"] == 0
    q.requires_grad_()
    training = check_inputs(q, k, v, **SETTING, affinity="dot")
    assert automatic_flex.declines(training) is None
    assert record == {"forward_with_grad": 1, "forward_no_grad": 0, "backward": 1, "error": None}
    assert automatic_flex.backward_reasons == {backward_key(training): None}


def test_automatic_choice_asks_the_cheap_decline_before_can_run(monkeypatch):
    """A backend that a rule declines is never asked can_run by backend=None; explain still asks."""
    asked = []

    class Expensive(Backend):
        name = "expensive"

        def can_run(self, problem):
            asked.append(problem)
            return None

        def declines(self, problem):
            return "never automatic"

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_backend(Expensive(), priority=100)
    q = torch.randn(1, 1, 8, 8, 4)
    problem = check_inputs(q, q, q, pool=2, cell=4, topk=1, affinity="dot")
    assert registry.candidates(problem, None)[0].name != "expensive" and not asked
    assert registry.explain(problem)["expensive"] == "not chosen automatically: never automatic"
    assert len(asked) == 1


def test_cpu_call_imports_no_compiler_stack():
    """On the CPU a cheap rule declines flex, so nothing imports torch._dynamo or inductor."""
    code = (
        "import sys, torch\n"
        "from gpa_lib.attention import auto_backend, gpa_attention\n"
        "g = torch.Generator().manual_seed(0)\n"
        "q, k, v = (torch.randn(1, 2, 64, 64, 16, generator=g) for _ in range(3))\n"
        "gpa_attention(q, k, v, pool=4, cell=8, topk=8)\n"
        "name = auto_backend(q, k, v, pool=4, cell=8, topk=8)\n"
        "with torch.no_grad():\n"
        "    gpa_attention(q.half(), k.half(), v.half(), pool=4, cell=8, topk=8)\n"
        "q.requires_grad_()\n"
        "gpa_attention(q, k, v, pool=4, cell=8, topk=8).sum().backward()\n"
        "print(name, sorted(m for m in sys.modules if m.startswith(('torch._dynamo', 'torch._inductor'))))\n"
    )
    root = Path(gpa_lib.__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    name, imported = result.stdout.strip().split(" ", 1)
    assert name in ("cpu", "reference")
    assert imported == "[]", imported


@pytest.mark.gpu
@pytest.mark.parametrize("affinity", ["dot", "euclid"])
def test_training_through_flex_on_cuda_never_dies(affinity):
    """The issue's setting (16-token key blocks): forced flex trains, by its compiled backward or by
    the reference formulas; gradients within twice the float32 reference's error plus a floor."""
    g = torch.Generator(device="cuda").manual_seed(0)
    shape = (1, 2, 64, 64, 32)
    q, k, v = (
        torch.randn(shape, device="cuda", dtype=torch.float64, generator=g) for _ in range(3)
    )
    dout = torch.randn(shape, device="cuda", dtype=torch.float64, generator=g)
    setting = {"pool": 4, "cell": 8, "topk": 8, "affinity": affinity}

    def grads(dtype, backend):
        leaves = [t.to(dtype).requires_grad_() for t in (q, k, v)]
        out = gpa_attention(*leaves, **setting, backend=backend)
        return torch.autograd.grad(out, leaves, dout.to(dtype))

    exact = grads(torch.float64, "reference")
    ref32 = grads(torch.float32, "reference")
    flex32 = grads(torch.float32, "flex")
    for name, e, r, f in zip("qkv", exact, ref32, flex32, strict=True):
        ref_error = (r.double() - e).abs().max().item()
        flex_error = (f.double() - e).abs().max().item()
        assert flex_error <= 2 * ref_error + 1e-4, (name, flex_error, ref_error)
    problem = check_inputs(*(t.float().requires_grad_() for t in (q, k, v)), **setting)
    reason = flex_backend().backward_reason(problem)  # probed: None, or why it does not compile
    assert reason is None or "did not compile" in reason


def flex_backend() -> FlexBackend:
    return registry.get_backend("flex")
