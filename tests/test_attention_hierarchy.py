"""The hierarchical phase 1: its exact limits, its tie rule, its checks, every backend, and the study.

Oracles: exact phase 1 (``select_key_blocks``) is reproduced when the hierarchy keeps every
super-block (the normaliser is then exact) and with ``group=1`` (the coarse level is the fine one);
in between, the selection is a valid one (distinct blocks inside the kept super-blocks, ranked by
the estimated mean probability) checked against a slow per-cell version written here.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpa_lib.attention import (
    GPA,
    Hierarchy,
    gpa_attention,
    select_key_blocks,
    select_key_blocks_hierarchical,
)
from gpa_lib.attention.analysis.complexity import (
    AttentionSizes,
    hierarchical_phase1_fraction,
    hierarchical_phase1_scores,
)
from gpa_lib.attention.analysis.hierarchy import (
    MASS_THRESHOLD,
    PRIMARY,
    HierarchyStudyConfig,
    agreement,
    primary_verdict,
    run_hierarchy_study,
    speedup,
    study_features,
    summary_table,
    timing_table,
)
from gpa_lib.attention.hierarchical import super_block_members
from gpa_lib.attention.scores import key_bias, logit_scale
from gpa_lib.attention.selection import low_resolution

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def hierarchical_problems(draw):
    """Small float64 problems with a hierarchy that fits them."""
    pool = draw(st.sampled_from([1, 2]))
    cell = pool * draw(st.sampled_from([1, 2]))
    group = draw(st.sampled_from([1, 2, 3]))
    hb, wb = (group * draw(st.integers(1, 3)) for _ in range(2))
    n_super = (hb // group) * (wb // group)
    candidates = draw(st.integers(1, n_super))
    topk = draw(st.integers(1, min(hb * wb, candidates * group**2)))
    hq, wq = (cell * draw(st.integers(1, 3)) for _ in range(2))
    D = draw(st.sampled_from([2, 4]))
    affinity = draw(st.sampled_from(["dot", "euclid"]))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, 2, hq, wq, D, generator=g, dtype=torch.float64)
    k = torch.randn(1, 2, hb * pool, wb * pool, D, generator=g, dtype=torch.float64)
    settings_ = dict(pool=pool, cell=cell, topk=topk, affinity=affinity)
    return q, k, settings_, Hierarchy(group, candidates)


def slow_hierarchical(q, k, *, pool, cell, topk, affinity, hierarchy):
    """The module docstring's definition, one cell and one row at a time: (B, h, K, topk)."""
    q_low, k_low = low_resolution(q, k, pool, cell)  # (B, h, K, r, D), (B, h, Nb, D)
    B, h, K, r, D = q_low.shape
    hb, wb = k.shape[2] // pool, k.shape[3] // pool
    S, m = hierarchy.group, hierarchy.candidates
    k_grid = k_low.view(B, h, hb, wb, D)
    coarse_keys = k_grid.unflatten(2, (hb // S, S)).unflatten(4, (wb // S, S))
    coarse_keys = coarse_keys.mean(dim=(3, 5)).flatten(2, 3)  # (B, h, Ns, D)
    scale = logit_scale(affinity, D)

    def scores(queries, keys):  # (r, D), (n, D) -> (r, n)
        bias = key_bias(keys, affinity)
        s = scale * queries @ keys.T
        return s if bias is None else s + bias

    out = torch.empty(B, h, K, topk, dtype=torch.long)
    for b in range(B):
        for head in range(h):
            for c in range(K):
                rows = q_low[b, head, c]
                coarse = scores(rows, coarse_keys[b, head])  # (r, Ns)
                cell_mean = torch.softmax(coarse, -1).mean(0).tolist()
                kept = sorted(range(len(cell_mean)), key=lambda j: (-cell_mean[j], j))[:m]
                members = sorted(
                    (J // (wb // S) * S + a) * wb + (J % (wb // S)) * S + bb
                    for J in kept
                    for a in range(S)
                    for bb in range(S)
                )
                fine = scores(rows, k_low[b, head, members])  # (r, M)
                outside = [J for J in range(coarse.shape[1]) if J not in kept]
                z = fine.exp().sum(-1) + (S * S) * coarse[:, outside].exp().sum(-1)
                mean_p = (fine.exp() / z[:, None]).mean(0).tolist()
                order = sorted(range(len(members)), key=lambda i: (-mean_p[i], members[i]))
                out[b, head, c] = torch.tensor([members[i] for i in order[:topk]])
    return out


@PROPERTY
@given(hierarchical_problems())
def test_matches_slow_definition(problem):
    q, k, settings_, hierarchy = problem
    got = select_key_blocks_hierarchical(q, k, hierarchy=hierarchy, **settings_).flatten(2, 3)
    want = slow_hierarchical(q, k, hierarchy=hierarchy, **settings_)
    assert torch.equal(got, want)


@PROPERTY
@given(hierarchical_problems())
def test_all_super_blocks_or_group_one_is_exact_phase1(problem):
    q, k, settings_, hierarchy = problem
    exact = select_key_blocks(q, k, **settings_)
    hb, wb = k.shape[2] // settings_["pool"], k.shape[3] // settings_["pool"]
    every = Hierarchy(hierarchy.group, (hb // hierarchy.group) * (wb // hierarchy.group))
    assert torch.equal(select_key_blocks_hierarchical(q, k, hierarchy=every, **settings_), exact)
    one = Hierarchy(1, max(settings_["topk"], 1))
    assert torch.equal(select_key_blocks_hierarchical(q, k, hierarchy=one, **settings_), exact)


def test_selection_lies_inside_kept_super_blocks_and_is_distinct():
    g = torch.Generator().manual_seed(3)
    q = torch.randn(2, 2, 32, 32, 8, generator=g)
    k = torch.randn(2, 2, 64, 32, 8, generator=g)
    sel = select_key_blocks_hierarchical(
        q, k, pool=4, cell=8, topk=6, hierarchy=Hierarchy(2, 3)
    ).flatten(2, 3)  # (B, h, K, 6)
    assert sel.shape == (2, 2, 16, 6)
    assert (sel.sort(-1).values.diff(dim=-1) > 0).all()  # distinct
    super_rows = torch.div(sel, 8, rounding_mode="floor") // 2
    super_cols = (sel % 8) // 2
    supers = super_rows * 4 + super_cols
    assert all(len(set(row.tolist())) <= 3 for row in supers.flatten(0, 2))


def test_ties_go_to_lower_super_block_then_lower_block():
    k = torch.ones(1, 1, 16, 16, 4)  # every score ties at both levels
    q = torch.randn(1, 1, 8, 8, 4)
    sel = select_key_blocks_hierarchical(q, k, pool=2, cell=4, topk=5, hierarchy=Hierarchy(2, 2))
    # super-blocks 0 and 1 hold blocks {0, 1, 8, 9} and {2, 3, 10, 11}: the five lowest of those
    assert sel.flatten(0, 3).unique(dim=0).tolist() == [[0, 1, 2, 3, 8]]


def test_super_block_members_sorted():
    members = super_block_members(torch.tensor([[3, 0]]), (4, 4), 2)
    assert members.tolist() == [[0, 1, 4, 5, 10, 11, 14, 15]]


def test_chunking_does_not_change_the_selection():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(1, 3, 32, 32, 8, generator=g)
    kw = dict(pool=2, cell=4, topk=4, affinity="euclid", hierarchy=Hierarchy(2, 4))
    whole = select_key_blocks_hierarchical(q, q, **kw)
    assert torch.equal(select_key_blocks_hierarchical(q, q, chunk_elements=1, **kw), whole)
    with pytest.raises(ValueError, match="chunk_elements=0 must be >= 1"):
        select_key_blocks_hierarchical(q, q, chunk_elements=0, **kw)


@pytest.mark.parametrize(
    ("hierarchy", "message"),
    [
        (Hierarchy(3, 1), "hierarchy.group=3 must divide the key-block grid"),
        (Hierarchy(2, 17), "hierarchy.candidates=17 exceeds the 16 super-blocks"),
        (Hierarchy(1, 2), "cannot hold topk=4"),
    ],
)
def test_settings_that_do_not_fit_name_the_argument(hierarchy, message):
    q = torch.randn(1, 1, 32, 32, 4)
    with pytest.raises(ValueError, match=message):
        gpa_attention(q, q, q, pool=4, cell=8, topk=4, hierarchy=hierarchy)


def test_hierarchy_fields_are_checked():
    with pytest.raises(TypeError, match="Hierarchy.group must be an int"):
        Hierarchy(group=2.0)
    with pytest.raises(ValueError, match="Hierarchy.candidates=0 must be >= 1"):
        Hierarchy(candidates=0)
    q = torch.randn(1, 1, 16, 16, 4)
    with pytest.raises(TypeError, match="hierarchy must be a gpa_lib.attention.Hierarchy"):
        gpa_attention(q, q, q, pool=2, cell=4, topk=2, hierarchy=(2, 2))
    with pytest.raises(TypeError, match="hierarchy must be"):
        GPA(8, hierarchy="4x8")


@pytest.mark.parametrize("backend", ["reference", "cpu", "recompute", "masked"])
def test_every_backend_uses_the_hierarchical_selection(backend):
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(1, 2, 32, 32, 8, generator=g, requires_grad=True) for _ in range(3))
    kw = dict(pool=2, cell=8, topk=6, affinity="euclid", hierarchy=Hierarchy(4, 2))
    want = select_key_blocks_hierarchical(q.detach(), k.detach(), **kw)
    ref, _ = gpa_attention(q, k, v, backend="reference", return_selection=True, **kw)
    out, sel = gpa_attention(q, k, v, backend=backend, return_selection=True, **kw)
    assert torch.equal(sel, want)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    out.square().sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))


def test_gpa_layer_passes_the_hierarchy():
    torch.manual_seed(0)
    layer = GPA(8, heads=2, head_dim=4, pool=2, cell=4, topk=3, hierarchy=Hierarchy(2, 2))
    x = torch.randn(1, 8, 16, 16)
    _, sel = layer(x, return_selection=True)
    q, k, _ = layer.project(x)
    want = select_key_blocks_hierarchical(
        q.detach(), k.detach(), pool=2, cell=4, topk=3, hierarchy=Hierarchy(2, 2)
    )
    assert torch.equal(sel, want)
    assert "hierarchy=Hierarchy(group=2, candidates=2)" in repr(layer)


def test_score_count_and_fraction():
    s = AttentionSizes(q_grid=(1024, 1024), k_grid=(1024, 1024), pool=4, cell=8)
    # 65,536 low-res queries against 4,096 super-blocks and 8 * 16 candidate blocks
    assert hierarchical_phase1_scores(s, 4, 8) == 65536 * (4096 + 128)
    assert hierarchical_phase1_fraction(s, 4, 8) == pytest.approx((4096 + 128) / 65536)
    assert hierarchical_phase1_fraction(s, 1, 65536) > 1  # no saving without grouping
    with pytest.raises(ValueError, match="group=0"):
        hierarchical_phase1_scores(s, 0, 1)


def test_agreement_is_one_when_the_hierarchy_is_exact():
    cfg = HierarchyStudyConfig(side=32, channels=8, pool=2, cell=4, topk=4, images=2)
    x = study_features(cfg, 0)
    full = agreement(x, cfg, Hierarchy(2, 64))  # 16 x 16 blocks: 64 super-blocks, all kept
    assert full == {"mass_ratio": 1.0, "worst_cell_ratio": 1.0, "recall": 1.0, "identical": 1.0}
    partial = agreement(x, cfg, Hierarchy(4, 1))
    assert 0 < partial["mass_ratio"] <= 1 and partial["worst_cell_ratio"] <= partial["mass_ratio"]


def test_study_payload_verdict_and_tables():
    cfg = HierarchyStudyConfig(
        side=32,
        channels=8,
        pool=2,
        cell=4,
        topk=4,
        images=3,
        settings=((2, 4), PRIMARY, (2, 64)),
        timing_sides=(32,),
        train_sides=(32,),
        output_side=32,
        output_settings=(PRIMARY,),
        timing_repeats=1,
        n_boot=200,
    )
    payload = run_hierarchy_study(cfg, progress=False)
    assert {r["setting"] for r in payload["records"]} == {"random", "2x4", "4x8", "2x64"}
    exact_row = next(r for r in payload["summary"] if r["setting"] == "2x64")
    assert exact_row["mass_ratio"]["estimate"] == 1.0 and exact_row["mass_ratio"]["lo"] == 1.0
    random_row = payload["summary"][0]
    assert random_row["mass_ratio"]["estimate"] < 1.0
    verdict = payload["verdict"]
    mass = verdict["mass_ratio"]
    assert verdict["threshold"] == MASS_THRESHOLD and mass["n"] == 3
    expected = (
        "supported"
        if mass["lo"] > MASS_THRESHOLD
        else "contradicted"
        if mass["hi"] < MASS_THRESHOLD
        else "not supported"
    )
    assert verdict["verdict"] == expected
    table = summary_table(payload)
    assert list(table["setting (group x candidates)"]) == ["random", "2x4", "4x8", "2x64"]
    assert table.iloc[0]["blocks found (recall)"] == "—"  # the control has no recall
    # 2x64 at 32²: 64 super-blocks + 64 * 4 candidate blocks against 256 blocks per query
    assert table.iloc[3]["scores at 32² (of exact)"] == "1.2500"
    times = timing_table(payload)
    assert list(times.index) == [32] and "hierarchical (torch)" in times.columns
    assert speedup(payload, 32) > 0 and speedup(payload, 99) is None
    outputs = {r["setting"]: r for r in payload["output"]["summary"]}
    assert set(outputs) == {"exact", "4x8"}
    assert 0 < outputs["4x8"]["kept_mass"]["estimate"] <= 1
    assert outputs["exact"]["error_total"]["estimate"] >= 0
    steps = {(r["side"], r["phase1"]): r for r in payload["training"]}
    assert set(steps) == {(32, "exact"), (32, "hierarchical")}
    assert all(r["median_s"] > 0 and r["peak_extra_bytes"] > 0 for r in steps.values())


def test_primary_verdict_words():
    def summary(lo, hi):
        interval = {"estimate": (lo + hi) / 2, "lo": lo, "hi": hi, "level": 0.95}
        return [{"setting": f"{PRIMARY[0]}x{PRIMARY[1]}", "mass_ratio": interval}]

    assert primary_verdict(summary(0.96, 0.99))["verdict"] == "supported"
    assert primary_verdict(summary(0.90, 0.97))["verdict"] == "not supported"
    assert primary_verdict(summary(0.80, 0.90))["verdict"] == "contradicted"
    assert not math.isnan(primary_verdict(summary(0.8, 0.9))["threshold"])


def test_chapter_study_reads_the_stored_results(tmp_path):
    from gpa_lib.attention.analysis.hierarchy import chapter_study
    from gpa_lib.stamp import stamp_footer

    study = chapter_study()
    values = study.values
    assert values["ch2_hier_verdict"] in ("supported", "not supported", "contradicted")
    assert values["ch2_hier_mass_lo"] <= values["ch2_hier_mass"] <= values["ch2_hier_mass_hi"]
    assert 0 < values["ch2_hier_fraction_1024_pct"] < 100
    assert values["ch2_hier_speedup"] > 0
    assert "hierarchy_phase1.json" in stamp_footer(study.figure)[0]
    missing = chapter_study(tmp_path)
    assert missing.values == {} and "python -m gpa_lib.bench hierarchy" in missing.table


def test_bench_with_device_cuda_and_no_gpu_fails_in_one_line(monkeypatch, capsys, tmp_path):
    """``python -m gpa_lib.bench hierarchy --device cuda`` without CUDA: exit 2, one line naming
    ``--device cuda`` (with the phrase ``scripts/gpu_run.sh`` reads as NO-GPU), nothing run or written."""
    from gpa_lib.bench import __main__ as bench_cli
    from gpa_lib.bench import hierarchy as bench

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the study ran without a GPU")

    monkeypatch.setattr(bench, "run_hierarchy_study", must_not_run)
    argv = ["hierarchy", "--device", "cuda", "--images", "2", "--results-dir", str(tmp_path)]
    assert bench_cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "--device cuda" in lines[0], captured.err
    assert "needs a CUDA GPU" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gpu
def test_hierarchical_selection_on_cuda_matches_the_cpu_and_trains_on_the_cuda_backend():
    g = torch.Generator().manual_seed(7)
    q, k, v = (torch.randn(1, 4, 128, 128, 32, generator=g) for _ in range(3))
    kw = dict(pool=4, cell=8, topk=8, hierarchy=Hierarchy(4, 8))
    want = select_key_blocks_hierarchical(q, k, **kw)
    qc, kc, vc = (t.cuda().requires_grad_() for t in (q, k, v))
    got = select_key_blocks_hierarchical(qc.detach(), kc.detach(), **kw)
    assert (got.cpu() == want).float().mean() >= 0.999  # float32 on two devices: near-ties only
    out, sel = gpa_attention(qc, kc, vc, backend="cuda", return_selection=True, **kw)
    ref = gpa_attention(qc, kc, vc, backend="reference", **kw)
    assert torch.equal(sel, got)
    torch.testing.assert_close(out, ref, rtol=2e-3, atol=2e-3)
    out.square().mean().backward()
    assert all(torch.isfinite(t.grad).all() for t in (qc, kc, vc))
