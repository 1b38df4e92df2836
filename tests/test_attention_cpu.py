"""The fused CPU kernel's door: its build is cached by source, and a failed build falls back."""

from __future__ import annotations

import logging

import pytest
import torch

from gpa_lib.attention import explain_backends, gpa_attention
from gpa_lib.attention.kernel import cpu

SETTING = {"pool": 2, "cell": 4, "topk": 3}


@pytest.fixture
def fresh_kernel_state(monkeypatch):
    """Forget the loaded library and any remembered failure, and restore them afterwards."""
    monkeypatch.setattr(cpu, "_build_error", None)
    cpu._library.cache_clear()
    yield
    getattr(cpu._library, "cache_clear", lambda: None)()  # a test may have replaced it


def test_the_library_key_follows_the_source_compiler_and_cpu(monkeypatch):
    key = cpu.library_key("g++")
    assert len(key) == 12 and cpu.library_key("g++") == key
    monkeypatch.setattr(cpu, "_cpu_flags", lambda: "another cpu")
    assert cpu.library_key("g++") != key


def test_a_failed_build_falls_back_and_is_remembered(fresh_kernel_state, monkeypatch, caplog):
    def broken():
        raise RuntimeError("g++: internal compiler error")

    monkeypatch.setattr(cpu, "_library", broken)
    q = torch.randn(1, 2, 8, 8, 4)
    with caplog.at_level(logging.WARNING, logger="gpa_lib.attention"):
        out = gpa_attention(q, q, q, **SETTING)
    assert "GPA backend 'cpu' failed, using 'reference'" in caplog.text
    torch.testing.assert_close(out, gpa_attention(q, q, q, **SETTING, backend="reference"))
    reason = explain_backends(q, q, q, **SETTING)["cpu"]
    assert reason.startswith("building the fused CPU kernel failed (RuntimeError: g++")


def test_no_compiler_is_named(fresh_kernel_state, monkeypatch):
    monkeypatch.setattr(cpu, "compiler", lambda: None)
    q = torch.randn(1, 2, 8, 8, 4)
    assert "no C++ compiler for the fused CPU kernel" in explain_backends(q, q, q, **SETTING)["cpu"]


def test_half_precision_goes_to_another_backend():
    q = torch.randn(1, 2, 8, 8, 4).half()
    assert "float32 and float64" in explain_backends(q, q, q, **SETTING)["cpu"]
