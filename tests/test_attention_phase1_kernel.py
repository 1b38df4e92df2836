"""The fused phase-1 kernel (``csrc/gpa_phase1.cuh``), executed by the CPU emulation, against the
float32 torch selection (the oracle), and the torch-side pieces around it."""

from __future__ import annotations

import pytest
import torch

from gpa_lib.attention.kernel.cuda.evidence import (
    PHASE1_CASES,
    emulated_phase1_report,
    phase1_case_inputs,
)
from gpa_lib.attention.kernel.cuda.phase1 import (
    PHASE1_MAX_ROWS_PER_CELL,
    fused_phase1_reason,
    phase1_operands,
    pick_agreement,
    selection_agreement,
)
from gpa_lib.attention.problem import check_inputs
from gpa_lib.attention.selection import select_key_blocks_flat


def _problem(q, k, pool, cell, topk, affinity="dot"):
    return check_inputs(q, k, k, pool=pool, cell=cell, topk=topk, affinity=affinity)


@pytest.mark.parametrize("name", list(PHASE1_CASES))
def test_split_products_give_the_oracle_selection(emulation, name):
    case = PHASE1_CASES[name]
    q, k = phase1_case_inputs(case, seed=len(name))
    problem = _problem(q, k, case.pool, case.cell, case.topk, case.affinity)
    ours = emulation.emulated_phase1(phase1_operands(q, k, problem), late_copies=case.late_copies)
    oracle = select_key_blocks_flat(q, k, problem)
    assert ours.shape == oracle.shape == (case.batch, case.heads, problem.n_cells, case.topk)
    report = selection_agreement(q, k, problem, ours, oracle)
    # Random inputs at these sizes have no near-ties within the split products' rounding.
    assert report["agreement"] == 1.0, report
    assert torch.equal(ours, oracle)  # the same blocks in the same order


def test_the_report_on_image_features_states_both_precisions(emulation):
    row = emulated_phase1_report("d16_pose_gpu_setting", features="image")
    # Textured images have flat regions: blocks whose pooled keys nearly coincide. A split-product
    # selection may order such a pair differently from the float32 oracle, never anything else.
    assert row["split agreement"] >= 0.999 and row["split worst mass gap"] < 1e-8
    assert 0.99 < row["single agreement"] <= row["split agreement"]
    assert row["single worst mass gap"] < 1e-3
    assert row["rows per cell"] == 4 and row["key blocks"] == 64
    with pytest.raises(ValueError, match="case name='nope' is unknown"):
        emulated_phase1_report("nope")


def test_pick_agreement_counts_shared_blocks_whatever_their_order():
    oracle = torch.tensor([[[[0, 1, 2], [3, 4, 5]]]])  # (1, 1, 2, 3)
    ours = torch.tensor([[[[2, 1, 0], [3, 4, 9]]]])
    report = pick_agreement(ours, oracle)
    assert report == {"agreement": 5 / 6, "cells_differing": 0.5}


def test_bfloat16_inputs_and_single_term_products_disagree_only_on_near_ties(emulation):
    gen = torch.Generator().manual_seed(3)
    q = (2 * torch.randn(1, 2, 32, 32, 32, generator=gen)).bfloat16()
    k = (2 * torch.randn(1, 2, 64, 64, 32, generator=gen)).bfloat16()
    problem = _problem(q, k, 2, 8, 8)
    oracle = select_key_blocks_flat(q, k, problem)
    split = emulation.emulated_phase1(phase1_operands(q, k, problem))
    assert torch.equal(split, oracle)
    single = emulation.emulated_phase1(phase1_operands(q, k, problem, split=False))
    report = selection_agreement(q, k, problem, single, oracle)
    assert report["agreement"] > 0.98
    # a swapped block's mean probability is within bf16 rounding of the one it replaced
    assert report["worst_swap"] < 0.02 and report["worst_mass_gap"] < 1e-2


def test_ties_go_to_the_lower_block_index(emulation):
    k = torch.randn(1, 1, 16, 16, 32, generator=torch.Generator().manual_seed(0))
    q = torch.zeros(1, 1, 16, 16, 32)  # every block equally likely
    problem = _problem(q, k, 4, 8, 5)
    ours = emulation.emulated_phase1(phase1_operands(q, k, problem))
    assert torch.equal(ours, select_key_blocks_flat(q, k, problem))
    assert ours[0, 0, 0].tolist() == [0, 1, 2, 3, 4]
    # repeated key blocks: equal scores, the earlier copy first
    gen = torch.Generator().manual_seed(1)
    k = torch.randint(-1, 2, (1, 1, 16, 16, 32), generator=gen).float()
    k[:, :, 8:] = k[:, :, :8]
    q = torch.randint(-1, 2, (1, 1, 16, 16, 32), generator=gen).float()
    problem = _problem(q, k, 4, 8, 5)
    assert torch.equal(
        emulation.emulated_phase1(phase1_operands(q, k, problem)),
        select_key_blocks_flat(q, k, problem),
    )


def test_split_operands_carry_the_float32_values():
    q = torch.randn(1, 2, 16, 16, 32, generator=torch.Generator().manual_seed(4))
    problem = _problem(q, q, 4, 8, 2)
    ops = phase1_operands(q, q, problem)
    assert ops.q_hi.dtype == ops.q_lo.dtype == torch.bfloat16
    assert ops.q_hi.shape == (1, 2, problem.n_cells, problem.low_queries_per_cell, 32)
    assert ops.k_hi.shape == (1, 2, problem.n_key_blocks, 32)
    recombined = ops.q_hi.float() + ops.q_lo.float()
    exact = q.unflatten(2, (4, 4)).unflatten(4, (4, 4)).mean((3, 5))  # (1, 2, 4, 4, 32) pooled
    exact_cells = exact.unflatten(2, (2, 2)).unflatten(4, (2, 2)).permute(0, 1, 2, 4, 3, 5, 6)
    exact_cells = exact_cells.reshape(1, 2, 4, 4, 32)  # (B, h, K, r, D)
    assert (recombined - exact_cells).abs().max() < 1e-5 * exact_cells.abs().max()
    single = phase1_operands(q, q, problem, split=False)
    assert single.q_lo is None and single.k_lo is None


def test_problems_outside_the_kernel_are_refused_with_the_reason():
    def problem(dim=32, pool=4, cell=8, topk=4):
        q = torch.zeros(1, 1, 72, 72, dim)
        return _problem(q, q, pool, cell, topk)

    assert fused_phase1_reason(problem()) is None
    assert "head dims" in fused_phase1_reason(problem(dim=24))
    assert 81 > PHASE1_MAX_ROWS_PER_CELL
    assert "(cell/pool)^2=81" in fused_phase1_reason(problem(pool=1, cell=9))
    assert "topk=300" in fused_phase1_reason(problem(pool=2, topk=300))


def test_the_emulated_kernel_rejects_mismatched_lo_parts(emulation):
    q = torch.randn(1, 1, 16, 16, 32)
    problem = _problem(q, q, 4, 8, 2)
    ops = phase1_operands(q, q, problem)
    from dataclasses import replace

    with pytest.raises(RuntimeError, match="lo parts both given or both null"):
        emulation.emulated_phase1(replace(ops, k_lo=None))


def test_the_chapter_table_glues_the_worst_case(emulation):
    from gpa_lib.attention.kernel.cuda.evidence import phase1_evidence

    table, glue = phase1_evidence(["d32_two_batches_three_heads"], features="random")
    assert list(table["case"]) == ["d32_two_batches_three_heads"]
    assert glue["ch2_p1_cases"] == 1
    assert glue["ch2_p1_split_agreement"] == table["split agreement"].min() == 1.0
    assert glue["ch2_p1_single_mass_gap"] == table["single worst mass gap"].max()


def test_every_tile_displaces_the_list_when_scores_grow_with_the_block_index(emulation):
    """Worst case for the merge: each key tile's blocks beat every block kept so far."""
    q = torch.ones(1, 1, 16, 16, 16)
    n_side = 24  # 24 x 24 key blocks of pool 1: 576 blocks, 9 tiles of 64
    ramp = torch.linspace(-1.0, 1.0, n_side * n_side).view(1, 1, n_side, n_side, 1)
    k = ramp.expand(1, 1, n_side, n_side, 16).contiguous()
    problem = _problem(q, k, 1, 4, 20)
    ours = emulation.emulated_phase1(phase1_operands(q, k, problem))
    expected = torch.arange(575, 555, -1)  # the last 20 blocks, best (largest) first
    assert torch.equal(ours, select_key_blocks_flat(q, k, problem))
    assert torch.equal(ours[0, 0, 0], expected)
