"""The fused CPU kernel: its build is cached by source, a failed build falls back, and its backward
pass (both ways of splitting the work among threads) has the reference gradients."""

from __future__ import annotations

import logging

import pytest
import torch

from gpa_lib.attention import explain_backends, gpa_attention
from gpa_lib.attention.kernel.cpu import build as cpu_build
from gpa_lib.attention.kernel.cpu import ops as cpu_ops

SETTING = {"pool": 2, "cell": 4, "topk": 3}


@pytest.fixture
def fresh_kernel_state(monkeypatch):
    """Forget the loaded library and any remembered failure, and restore them afterwards."""
    monkeypatch.setattr(cpu_build, "_build_error", None)
    cpu_build._library.cache_clear()
    yield
    getattr(cpu_build._library, "cache_clear", lambda: None)()  # a test may have replaced it


def test_the_library_key_follows_the_source_compiler_and_cpu(monkeypatch):
    key = cpu_build.library_key("g++")
    assert len(key) == 12 and cpu_build.library_key("g++") == key
    monkeypatch.setattr(cpu_build, "_cpu_flags", lambda: "another cpu")
    assert cpu_build.library_key("g++") != key


def test_a_failed_build_falls_back_and_is_remembered(fresh_kernel_state, monkeypatch, caplog):
    def broken():
        raise RuntimeError("g++: internal compiler error")

    monkeypatch.setattr(cpu_build, "_library", broken)
    q = torch.randn(1, 2, 8, 8, 4)
    with caplog.at_level(logging.WARNING, logger="gpa_lib.attention"):
        out = gpa_attention(q, q, q, **SETTING)
    assert "GPA backend 'cpu' failed, using 'reference'" in caplog.text
    torch.testing.assert_close(out, gpa_attention(q, q, q, **SETTING, backend="reference"))
    reason = explain_backends(q, q, q, **SETTING)["cpu"]
    assert reason.startswith("building the fused CPU kernel failed (RuntimeError: g++")


def test_no_compiler_is_named(fresh_kernel_state, monkeypatch):
    monkeypatch.setattr(cpu_build, "compiler", lambda: None)
    q = torch.randn(1, 2, 8, 8, 4)
    assert "no C++ compiler for the fused CPU kernel" in explain_backends(q, q, q, **SETTING)["cpu"]


def test_half_precision_goes_to_another_backend():
    q = torch.randn(1, 2, 8, 8, 4).half()
    assert "float32 and float64" in explain_backends(q, q, q, **SETTING)["cpu"]


@pytest.fixture
def threads():
    """Set torch's thread count for one test and restore it afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("affinity", ["euclid", "dot"])
@pytest.mark.parametrize(
    "batch_heads, n_threads",
    [((1, 1), 1), ((1, 1), 2), ((2, 2), 2), ((1, 3), 2), ((1, 3), 3)],
)
def test_the_fused_backward_has_the_reference_gradients(affinity, batch_heads, n_threads, threads):
    threads(n_threads)
    B, h = batch_heads
    # Either each thread owns whole heads, or the threads share one head's keys via private sums.
    assert cpu_ops.heads_per_thread(B * h, n_threads) == (B * h % n_threads == 0)
    generator = torch.Generator().manual_seed(B * 10 + h)
    q, k = (torch.randn(B, h, 8, 12, 5, dtype=torch.float64, generator=generator) for _ in "qk")
    v = torch.randn(B, h, 8, 12, 3, dtype=torch.float64, generator=generator)
    weight = torch.randn(B, h, 8, 12, 3, dtype=torch.float64, generator=generator)
    grads = {}
    for backend in ("cpu", "reference"):
        leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
        out = gpa_attention(*leaves, **SETTING, affinity=affinity, backend=backend)
        grads[backend] = torch.autograd.grad((out * weight).sum(), leaves)
    for label, got, want in zip("qkv", grads["cpu"], grads["reference"], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12, msg=f"d{label}")


def test_the_fused_backward_returns_only_the_gradients_asked_for():
    q, k, v = (torch.randn(1, 2, 8, 8, 4) for _ in "qkv")
    q.requires_grad_()
    out = gpa_attention(q, k, v, **SETTING, backend="cpu")
    out.sum().backward()
    assert q.grad is not None and k.grad is None and v.grad is None
    expected = q.detach().clone().requires_grad_()
    gpa_attention(expected, k, v, **SETTING, backend="reference").sum().backward()
    torch.testing.assert_close(q.grad, expected.grad)


def test_a_bad_block_index_in_the_backward_is_a_clear_error():
    q, k, v = (torch.randn(1, 1, 8, 8, 4) for _ in "qkv")
    selection = torch.full((1, 1, 4, 3), 99, dtype=torch.long)  # 16 key blocks: 99 is outside
    lse = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match="outside"):
        cpu_ops.cpu_phase2_backward(q, q, k, v, selection, None, lse, 2, 4, 0.5)
