"""Phase 1's building blocks: the tie rule of the top-k, its freedom from host syncs, and the chunk.

``topk_lower_index_ties`` is checked against its definition written slowly here (the first ``topk``
of a stable descending sort, one Python ``sorted`` per row) on integer-valued scores, where ties are
the rule; the meta device, on which any read of a value back to the host raises, shows that phase 1
never syncs; and the automatic chunk size is checked from given free-memory numbers.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpa_lib.attention import select_key_blocks
from gpa_lib.attention.problem import check_inputs
from gpa_lib.attention.selection import (
    PHASE1_CHUNK_ELEMENTS,
    PHASE1_CUDA_CHUNK_BOUNDS,
    device_phase1_chunk_elements,
    phase1_chunk_elements,
    select_key_blocks_flat,
    topk_lower_index_ties,
)

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
GiB = 2**30


def slow_topk(rows: list[list[float]], topk: int) -> list[list[int]]:
    """The definition: per row, indices sorted by value descending, equal values by index ascending."""
    return [sorted(range(len(row)), key=lambda j: (-row[j], j))[:topk] for row in rows]


@st.composite
def tied_scores(draw):
    """Scores (rows, n) full of ties, with all-equal rows, signed zeros and infinities, and a topk."""
    n_rows = draw(st.integers(1, 6))
    n = draw(st.integers(1, 40))
    levels = draw(st.integers(1, 6))  # few distinct values: heavy ties
    value = st.one_of(
        st.integers(-levels, levels).map(float),
        st.sampled_from([0.0, -0.0, float("inf"), float("-inf")]),
    )
    rows = []
    for _ in range(n_rows):
        if draw(st.booleans()) and draw(st.booleans()):
            rows.append([draw(value)] * n)  # an all-equal row
        else:
            rows.append(draw(st.lists(value, min_size=n, max_size=n)))
    topk = draw(st.one_of(st.just(n), st.integers(1, n)))  # topk = row length included
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    return rows, topk, dtype


@PROPERTY
@given(tied_scores())
def test_topk_matches_the_stable_sort_definition_under_heavy_ties(case):
    rows, topk, dtype = case
    scores = torch.tensor(rows, dtype=dtype)  # (rows, n)
    got = topk_lower_index_ties(scores, topk)
    assert got.dtype == torch.long and got.shape == (len(rows), topk)
    assert got.tolist() == slow_topk(rows, topk)


def test_topk_keeps_leading_axes_and_large_rows():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (2, 3, 5, 300), generator=g).float()  # (B, h, K, Nb), ties
    got = topk_lower_index_ties(scores, 7)  # (B, h, K, k)
    want = torch.sort(scores, dim=-1, descending=True, stable=True).indices[..., :7]
    assert torch.equal(got, want)


def test_phase1_reads_nothing_back_to_the_host():
    """On the meta device a data-dependent branch (``if tensor.any()``) raises: nothing here has one."""
    scores = torch.empty(2, 3, 5, 64, device="meta")
    assert topk_lower_index_ties(scores, 8).shape == (2, 3, 5, 8)
    q = torch.empty(1, 2, 32, 24, 16, device="meta")
    k = torch.empty(1, 2, 16, 16, 16, device="meta")
    for chunk_elements in (None, 300):  # one chunk and many
        selection = select_key_blocks(
            q, k, pool=4, cell=8, topk=5, affinity="euclid", chunk_elements=chunk_elements
        )
        assert selection.shape == (1, 2, 4, 3, 5) and selection.dtype == torch.long


@pytest.mark.gpu
def test_phase1_on_cuda_does_not_sync():
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(1, 4, 128, 128, 32, device="cuda", generator=g)
    k = torch.randn(1, 4, 128, 128, 32, device="cuda", generator=g)
    want = select_key_blocks(q.cpu(), k.cpu(), pool=4, cell=8, topk=8, chunk_elements=2**16)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        got = select_key_blocks(q, k, pool=4, cell=8, topk=8, chunk_elements=2**16)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.equal(got.cpu(), want)
    automatic = select_key_blocks(q, k, pool=4, cell=8, topk=8)  # chunk from the free memory
    assert torch.equal(automatic.cpu(), want)


@pytest.mark.parametrize(
    ("device_type", "free_bytes", "expected"),
    [
        ("cpu", None, PHASE1_CHUNK_ELEMENTS),
        ("cpu", 100 * GiB, PHASE1_CHUNK_ELEMENTS),  # the CPU ignores free memory
        ("mps", None, PHASE1_CHUNK_ELEMENTS),
        ("cuda", 1 * GiB, 2**24),  # a quarter of 1 GiB at 16 bytes an entry
        ("cuda", 4 * GiB, 2**26),
        ("cuda", 139 * GiB, PHASE1_CUDA_CHUNK_BOUNDS[1]),  # an idle H200: the cap
        ("cuda", 10 * 2**20, PHASE1_CUDA_CHUNK_BOUNDS[0]),  # nearly full: the floor
        ("cuda", 0, PHASE1_CUDA_CHUNK_BOUNDS[0]),
    ],
)
def test_automatic_chunk_from_device_kind_and_free_bytes(device_type, free_bytes, expected):
    assert phase1_chunk_elements(device_type, free_bytes) == expected


@pytest.mark.parametrize("free_bytes", [None, -1, True, 2.5])
def test_cuda_chunk_needs_free_bytes(free_bytes):
    with pytest.raises(ValueError, match=f"free_bytes={free_bytes!r}"):
        phase1_chunk_elements("cuda", free_bytes)


def test_cuda_free_memory_counts_what_the_caching_allocator_holds_unused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (2 * GiB, 141 * GiB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 3 * GiB)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 1 * GiB)
    assert device_phase1_chunk_elements(torch.device("cuda", 0)) == phase1_chunk_elements(
        "cuda", 4 * GiB
    )
    assert device_phase1_chunk_elements(torch.device("cpu")) == PHASE1_CHUNK_ELEMENTS


def test_chunk_size_does_not_change_the_selection():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 16, 24, 8, generator=g)
    k = torch.randn(2, 3, 12, 8, 8, generator=g).round()  # rounded keys: tied block scores
    problem = check_inputs(q, k, k, pool=2, cell=4, topk=5, affinity="dot")
    automatic = select_key_blocks_flat(q, k, problem)  # (B, h, K, k)
    for chunk_elements in (1, 50, 10**9):
        assert torch.equal(select_key_blocks_flat(q, k, problem, chunk_elements), automatic)


@pytest.mark.parametrize(
    ("chunk_elements", "error"),
    [(0, ValueError), (-5, ValueError), (2.0, TypeError), (True, TypeError)],
)
def test_bad_chunk_elements_is_named(chunk_elements, error):
    q = torch.zeros(1, 1, 8, 8, 4)
    with pytest.raises(error, match="chunk_elements"):
        select_key_blocks(q, q, pool=2, cell=4, topk=1, chunk_elements=chunk_elements)
