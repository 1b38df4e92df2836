"""The cost model against measured peak memory (within ±20%), and its scaling laws."""

from __future__ import annotations

import pytest
import torch
from helpers import make_qkv

from gpa_lib.attention import dense_attention, gpa_attention
from gpa_lib.attention.analysis.complexity import (
    AttentionSizes,
    authors_defaults,
    cpu_kernel_cost,
    dense_cost,
    gpa_cost,
    phase1_cost,
    phase2_cost,
    selection_bytes,
)
from gpa_lib.attention.backends.reference import attend_selected
from gpa_lib.attention.exact import materialised_attention
from gpa_lib.attention.problem import check_inputs
from gpa_lib.attention.selection import PHASE1_CHUNK_ELEMENTS, select_key_blocks_flat
from gpa_lib.measure import median_time, peak_memory

CASES = [  # B, h, q grid, k grid, D, Dv, pool, cell, topk, dtype
    (
        1,
        4,
        (32, 64),
        (64, 32),
        32,
        32,
        4,
        8,
        8,
        torch.float32,
    ),  # the benchmark setting, smaller grids
    (2, 3, (32, 48), (40, 24), 24, 40, 2, 8, 5, torch.float64),  # awkward sizes, small chunks
]


def measured(B, h, q_grid, k_grid, D, Dv, pool, cell, topk, dtype, affinity):
    q, k, v = make_qkv(B, h, q_grid, k_grid, D, Dv, dtype=dtype)
    problem = check_inputs(q, k, v, pool=pool, cell=cell, topk=topk, affinity=affinity)
    with torch.no_grad():
        selection, phase1 = peak_memory(lambda: select_key_blocks_flat(q, k, problem, 2**16))
        _, phase2 = peak_memory(lambda: attend_selected(q, k, v, selection, problem))
        _, dense = peak_memory(lambda: materialised_attention(q, k, v, affinity))
        _, masked = peak_memory(
            lambda: gpa_attention(
                q, k, v, pool=pool, cell=cell, topk=topk, affinity=affinity, backend="masked"
            )
        )
        _, sdpa = peak_memory(lambda: dense_attention(q, k, v, affinity=affinity))
        _, cpu = peak_memory(
            lambda: gpa_attention(
                q, k, v, pool=pool, cell=cell, topk=topk, affinity=affinity, backend="cpu"
            )
        )
    sizes = AttentionSizes(
        q_grid=q_grid,
        k_grid=k_grid,
        head_dim=D,
        value_dim=Dv,
        heads=h,
        batch=B,
        pool=pool,
        cell=cell,
        topk=topk,
        dtype_bytes=q.element_size(),
        affinity=affinity,
        phase1_chunk_elements=2**16,
    )
    return sizes, {
        "phase1": phase1,
        "phase2": phase2,
        "materialised": dense,
        "masked": masked,
        "sdpa": sdpa,
        "cpu": cpu,
    }


@pytest.mark.parametrize("affinity", ["dot", "euclid"])
@pytest.mark.parametrize("case", CASES, ids=["bench", "awkward"])
def test_peak_memory_model_within_20_percent(case, affinity):
    sizes, peak = measured(*case, affinity)
    predicted = {
        "phase1": phase1_cost(sizes).peak_bytes,
        "phase2": phase2_cost(sizes).peak_bytes,
        "materialised": dense_cost(sizes).peak_bytes,
        "masked": dense_cost(sizes, masked=True).peak_bytes,
        "sdpa": dense_cost(sizes, materialised=False).peak_bytes,
        # gpa_attention runs phase 1 with its default chunk, not the small one measured above
        "cpu": cpu_kernel_cost(sizes.with_(phase1_chunk_elements=PHASE1_CHUNK_ELEMENTS)).peak_bytes,
    }
    for name, value in predicted.items():
        assert peak[name] == pytest.approx(value, rel=0.2), (name, peak[name], value)


@pytest.mark.parametrize(
    "pool,cell,topk", [(4, 8, 8), (2, 8, 2)]
)  # phase 2 larger / phase 1 larger
def test_whole_reference_call_is_the_larger_phase(pool, cell, topk):
    q = torch.randn(1, 4, 64, 64, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, peak = peak_memory(
            lambda: gpa_attention(q, q, q, pool=pool, cell=cell, topk=topk, backend="reference")
        )
    sizes = AttentionSizes(
        q_grid=(64, 64), k_grid=(64, 64), head_dim=32, heads=4, pool=pool, cell=cell, topk=topk
    )
    assert peak == pytest.approx(gpa_cost(sizes).peak_bytes, rel=0.2)


def test_phase2_memory_is_linear_in_queries_and_phase1_chunks_are_bounded():
    base = AttentionSizes(q_grid=(128, 128), k_grid=(128, 128), heads=4)
    double = base.with_(q_grid=(256, 128))
    assert phase2_cost(double).peak_bytes == pytest.approx(2 * phase2_cost(base).peak_bytes)
    assert phase2_cost(base.with_(k_grid=(512, 512))).peak_bytes == phase2_cost(base).peak_bytes
    big = AttentionSizes(q_grid=(512, 512), k_grid=(512, 512), heads=4)
    assert phase1_cost(big).peak_bytes < 0.02 * (
        4 * (128 * 128) ** 2 * 4
    )  # far below all low-res scores
    assert selection_bytes(base) == 4 * 256 * 8 * 8


def test_flop_counts_follow_the_formulas():
    s = AttentionSizes(
        q_grid=(128, 128), k_grid=(128, 128), heads=4, head_dim=32, pool=4, cell=8, topk=8
    )
    n = 128 * 128
    assert dense_cost(s).flops == 2 * 4 * n * n * 64 + 4 * 4 * n * n
    assert phase2_cost(s).flops == 2 * 4 * n * 128 * 64 + 4 * 4 * n * 128
    assert phase1_cost(s).flops == pytest.approx(2 * 4 * (n / 16) ** 2 * 32, rel=0.2)
    # at the authors' defaults for 256^2, phase 1 does most of the work
    official = AttentionSizes(
        q_grid=(256, 256), k_grid=(256, 256), heads=4, **authors_defaults(256)
    )
    assert phase1_cost(official).flops > 4 * phase2_cost(official).flops


def test_authors_defaults():
    assert authors_defaults(256) == {"pool": 4, "cell": 8, "topk": 2}
    assert authors_defaults(128) == {"pool": 2, "cell": 4, "topk": 2}
    assert authors_defaults(512) == {"pool": 8, "cell": 16, "topk": 2}


def test_median_time_respects_the_budget():
    calls = []
    timing = median_time(lambda: calls.append(1), warmup=2, repeats=3)
    assert timing["repeats"] == 3 and len(calls) == 5 and timing["median_s"] >= 0
