"""The declared claims, their Holm-adjusted verdicts, and the verdicts on the committed results."""

from __future__ import annotations

import numpy as np
import pytest

from gpa_lib.recsys.eval.claims import (
    CLAIMS,
    VERDICTS,
    Claim,
    Evidence,
    evidence_from_bootstrap,
    evidence_from_store_gaps,
    judge,
    label_exploratory,
)
from gpa_lib.recsys.eval.verdicts import (
    committed_evidence,
    context_glue,
    load_committed,
    verdict_glue,
    verdict_table,
)
from gpa_lib.stats import Interval, hierarchical_bootstrap

CLAIM = Claim("x", "lstm", "x beats y", "x", "y", "warm", "auc", 1, "backtest")


def family(*estimates_and_p):
    claims = [
        Claim(f"c{i}", "lstm", "", "x", "y", "warm", "auc", 1, "backtest")
        for i in range(len(estimates_and_p))
    ]
    evidence = {
        c.name: Evidence(Interval(est, est - 0.01, est + 0.01), p, "given")
        for c, (est, p) in zip(claims, estimates_and_p, strict=True)
    }
    return claims, evidence


def test_the_verdict_rule_with_holm():
    # alone each p < 0.05; Holm over three: 0.01*3=0.03 ok, 0.02*2=0.04 ok, 0.04*1 -> 0.04 ok
    claims, evidence = family((0.1, 0.01), (-0.1, 0.02), (0.1, 0.04))
    words = [j.verdict for j in judge(claims, evidence)]
    assert words == ["supported", "contradicted", "supported"]
    # 0.03 and 0.04 with two claims: 0.06 and 0.06 -> neither
    claims, evidence = family((0.1, 0.03), (0.1, 0.04))
    assert [j.verdict for j in judge(claims, evidence)] == ["not supported"] * 2
    assert judge(claims, evidence)[0].p_holm == pytest.approx(0.06)


def test_a_replication_against_the_claim_withholds_support():
    against = (("other run", Interval(-0.03, -0.04, -0.02)),)
    level = (("other run", Interval(0.0, -0.01, 0.01)),)
    ev = Evidence(Interval(0.009, 0.001, 0.016), 0.02, "given", against)
    assert judge([CLAIM], {"x": ev})[0].verdict == "not supported"
    ev = Evidence(Interval(0.009, 0.001, 0.016), 0.02, "given", level)
    assert judge([CLAIM], {"x": ev})[0].verdict == "supported"


def test_judge_names_missing_evidence_and_bad_claims():
    with pytest.raises(ValueError, match=r"claim\(s\) \['x'\]"):
        judge([CLAIM], {})
    with pytest.raises(ValueError, match="direction=0"):
        Claim("x", "lstm", "", "a", "b", "all", "auc", 0, "backtest")


def test_every_declared_claim_has_a_unique_name_and_a_known_study():
    names = [c.name for claims in CLAIMS.values() for c in claims]
    assert len(names) == len(set(names))
    studies = {"backtest", "ablation", "dna_variants", "style_tracking"}
    assert all(c.study in studies for claims in CLAIMS.values() for c in claims)


def test_evidence_from_a_multi_store_bootstrap():
    rng = np.random.default_rng(0)
    values = {
        (m, "warm", "auc"): [[rng.normal(mu + s * 0.01, 0.1, (1, 50))] for s in range(6)]
        for m, mu in (("x", 0.7), ("y", 0.6))
    }
    boot = hierarchical_bootstrap(values, n_boot=400, seed=0)
    ev = evidence_from_bootstrap(boot, CLAIM)
    assert ev.interval.n == 6 and ev.interval.lo > 0 and ev.p_value < 0.01
    flips = evidence_from_bootstrap(boot, CLAIM, p_method="sign_flip")
    assert flips.p_value == pytest.approx(2 / 64)  # six stores all positive: the floor
    with pytest.raises(ValueError, match="p_method='t'"):
        evidence_from_bootstrap(boot, CLAIM, p_method="t")


def test_rows_that_are_no_claim_are_exploratory():
    rows = [
        {"a": "lstm", "b": "static_cf", "slice": "warm", "metric": "auc"},
        {"a": "lstm", "b": "static_cf", "slice": "all", "metric": "auc"},
    ]
    out = label_exploratory(rows, CLAIMS["lstm"])
    assert out[0]["primary"] == "lstm_vs_static_cf" and not out[0]["exploratory"]
    assert out[1]["primary"] is None and out[1]["exploratory"]


def test_the_committed_results_give_a_word_to_every_claim():
    results = load_committed()
    if "backtest" not in results or "ablation" not in results:
        pytest.skip("the committed results are not here")
    for claims in CLAIMS.values():
        if any(c.study not in results for c in claims):
            continue
        judgements = judge(claims, {c.name: committed_evidence(c, results) for c in claims})
        assert all(j.verdict in VERDICTS for j in judgements)
        table = verdict_table(judgements)
        assert len(table) == len(claims)
        glue = verdict_glue("chX", judgements)
        assert all(f"chX_{c.name}_verdict" in glue for c in claims)
    ctx = context_glue("chX", results["ablation"])
    assert ctx["chX_ctx_context"] > 0 and ctx["chX_ctx_personal"] < ctx["chX_ctx_personal_hi"]


def test_the_protocol_labels_its_comparisons():
    from types import SimpleNamespace

    from gpa_lib.recsys.eval.backtest import SLICES, metric_names
    from gpa_lib.recsys.eval.bootstrap import Bootstrap, comparisons

    keys = [(m, s, k) for m in ("lstm", "static_cf") for s in SLICES for k in metric_names(12)]
    boot = Bootstrap({k: 0.5 for k in keys}, {k: np.full(20, 0.5) for k in keys})
    rows = comparisons(boot, ["lstm", "static_cf"], SimpleNamespace(k=12))
    primary = [r for r in rows if not r["exploratory"]]
    assert [r["primary"] for r in primary] == ["lstm_vs_static_cf"]
    assert all("significant" not in r for r in rows)


def test_evidence_from_per_store_gaps_alone():
    ev = evidence_from_store_gaps(np.array([0.02, 0.01, 0.03, 0.02, 0.015, 0.025]))
    assert ev.interval.estimate == pytest.approx(0.02) and ev.interval.lo > 0
    assert ev.p_value == pytest.approx(2 / 64) and ev.interval.n == 6
    # five stores: sign flips never reach 0.05, whatever the gaps
    five = evidence_from_store_gaps(np.full(5, 0.02))
    assert five.p_value == pytest.approx(0.0625)
    assert judge([CLAIM], {"x": five})[0].verdict == "not supported"
    assert evidence_from_store_gaps(np.full(5, 0.02), p_method="bootstrap").p_value < 0.01
    with pytest.raises(ValueError, match="no finite"):
        evidence_from_store_gaps(np.array([np.nan]))
