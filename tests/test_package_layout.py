"""The shape of the package: no import cycles, an open backend registry, a cheap backend choice."""

from __future__ import annotations

import pytest
import torch
from helpers import find_cycle, import_graph

from gpa_lib.attention import explain_backends, gpa_attention
from gpa_lib.attention.backends import (
    Backend,
    backend_names,
    get_backend,
    register_backend,
    unregister_backend,
)
from gpa_lib.attention.backends.reference import attend_selected
from gpa_lib.attention.kernel.cuda import build
from gpa_lib.attention.selection import select_key_blocks_flat


def test_the_package_has_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_nothing_outside_the_bench_imports_it():
    """``gpa_lib.bench`` holds command lines only: the library never imports them."""
    offenders = {
        name: sorted(t for t in targets if t == "gpa_lib.bench" or t.startswith("gpa_lib.bench."))
        for name, targets in import_graph().items()
        if name != "gpa_lib.bench" and not name.startswith("gpa_lib.bench.")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


class ToyBackend(Backend):
    """The reference math under another name, so that its answers can be checked."""

    name = "toy"

    def __init__(self):
        self.calls = 0

    def can_run(self, problem):
        return None if problem.dtype == torch.float64 else "the toy backend runs float64 only"

    def __call__(self, q, k, v, problem):
        self.calls += 1
        selection = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
        return attend_selected(q, k, v, selection, problem), selection


def test_a_new_backend_registers_under_its_own_name_and_is_chosen_and_explained():
    toy = ToyBackend()
    q = torch.randn(1, 2, 8, 8, 4, dtype=torch.float64)
    settings = {"pool": 2, "cell": 4, "topk": 3}
    register_backend(toy, priority=1000)
    try:
        assert backend_names()[0] == "toy"
        assert get_backend("toy") is toy
        out = gpa_attention(q, q, q, **settings)  # backend=None picks the highest priority
        assert toy.calls == 1
        torch.testing.assert_close(out, gpa_attention(q, q, q, backend="reference", **settings))
        reasons = explain_backends(q, q, q, **settings)
        assert list(reasons) == list(backend_names()) and reasons["toy"] is None
        assert explain_backends(q.float(), q.float(), q.float(), **settings)["toy"] == (
            "the toy backend runs float64 only"
        )
        gpa_attention(q.float(), q.float(), q.float(), **settings)  # falls through to the others
        assert toy.calls == 1
    finally:
        assert unregister_backend("toy") is toy
    assert "toy" not in backend_names()
    with pytest.raises(ValueError, match="backend='toy' is unknown"):
        gpa_attention(q, q, q, backend="toy", **settings)


def test_register_backend_names_bad_arguments():
    with pytest.raises(TypeError, match="backend must be a gpa_lib.attention.backends.Backend"):
        register_backend(object(), priority=1)
    with pytest.raises(TypeError, match="priority must be a number"):
        register_backend(ToyBackend(), priority="high")
    nameless = ToyBackend()
    nameless.name = ""
    with pytest.raises(ValueError, match="backend.name must be a non-empty str"):
        register_backend(nameless, priority=1)


def test_choosing_a_backend_asks_for_ninja_once(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(build, "find_nvcc", lambda: "/usr/local/cuda/bin/nvcc")
    import torch.utils.cpp_extension as cpp_extension

    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: calls.append(1) or True)
    build._ninja_available.cache_clear()
    try:
        for _ in range(5):
            assert build.toolchain_reason() is None
        assert len(calls) == 1
    finally:
        build._ninja_available.cache_clear()
