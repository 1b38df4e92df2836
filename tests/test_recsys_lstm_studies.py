"""Chapter 5's sections as library calls: lstm_studies on the committed results it renders, and
lstm_style_studies' style-tracking experiment on a tiny smoke store."""

from __future__ import annotations

import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gpa_lib.recsys.eval import lstm_studies, lstm_style_studies  # noqa: E402
from gpa_lib.recsys.eval.report import gap, load_backtest, load_study  # noqa: E402
from gpa_lib.recsys.eval.verdicts import committed_verdicts  # noqa: E402
from gpa_lib.results import RESULTS_ENV, result_exists  # noqa: E402

NEEDED = ("backtest", "ablation", "drift", "ch5_claims")
pytestmark = pytest.mark.skipif(
    not all(result_exists(n) for n in NEEDED), reason="the committed results are not here"
)


@pytest.fixture(scope="module")
def bench():
    return load_backtest()


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_single_store_and_design_sections(bench):
    judgements = committed_verdicts("lstm")
    values, table = lstm_studies.single_store_study(judgements, bench)
    assert len(table) == len(judgements)
    assert values["ch5_n_comparisons_backtest"] == len(bench["comparisons"])
    assert all(f"ch5_{j.claim.name}_verdict" in values for j in judgements)
    design = lstm_studies.design_study(bench)
    assert design["ch5_n_cutoffs"] == len(bench["windows"])
    assert design["ch5_tune_metric"] == bench["protocol"]["tune_metric"].upper()


def test_windows_and_gaps_sections(bench):
    values, windows = lstm_studies.windows_study(bench)
    assert len(windows) == len(bench["windows"])
    assert values["ch5_eval_customers"] == sum(w["customers"] for w in bench["windows"])
    gaps = lstm_studies.gaps_study(bench)
    for key, (a, b, metric, slice_) in lstm_studies.BACKTEST_GAPS.items():
        assert gaps[f"ch5_gap_{key}"] == gap(bench, a, b, metric, slice_)["diff"]
        assert isinstance(gaps[f"ch5_{key}"], str)
    assert gaps["ch5_oracle_auc_all"] == bench["summary"]["oracle"]["all/auc"]["mean"]


def test_figure_and_table_sections(bench):
    values, table = lstm_studies.shares_study(bench)
    assert len(table) == len(bench["oracle_share"])
    assert values["ch5_lstm_share_all_map_lo"] <= values["ch5_lstm_share_all_map_hi"]
    values, fig = lstm_studies.per_cutoff_study(bench)
    assert len(fig.axes) == 6 and values["ch5_pop_map_lowest"] <= values["ch5_pop_map_highest"]
    values, fig = lstm_studies.segments_study(bench)
    assert values["ch5_lstm_regular_auc"] == bench["segments_auc"]["lstm"]["21+"]
    values, table = lstm_studies.sasrec_study(bench)
    assert list(table.index) == ["popularity", "static CF", "LSTM", "SASRec"]
    assert values["ch5_sas_budget"] == len(bench["tuning"]["sasrec"]["trials"])
    with pytest.raises(ValueError, match="has no sasrec"):
        lstm_studies.sasrec_study({**bench, "models": ["lstm"]})


def test_ablation_and_speed_sections(bench):
    ablation = load_study("ablation")
    values, table = lstm_studies.ablation_study(ablation)
    assert len(table) == len(ablation["models"])
    assert all(f"ch5_abl_{key}" in values for key in lstm_studies.ABLATION_GAPS)
    values, fit_times = lstm_studies.speed_study(bench, ablation)
    assert values["ch5_abl_test_s"] == ablation["timing_seconds"]["test"]
    assert len(fit_times) == len(bench["fit_seconds"])


def test_optional_studies_say_what_to_run_when_absent(tmp_path):
    values, table = lstm_studies.softmax_study(tmp_path)
    assert table is None and "not stored" in values["ch5_sas_softmax_sentence"]
    values, table = lstm_studies.timing_study(tmp_path)
    assert table is None and "not stored" in values["ch5_timing_sentence"]
    if result_exists("recsys_bench"):
        values, table = lstm_studies.timing_study()
        assert list(table.columns)[0] == "fit (s, wall)"
        assert "`" not in values["ch5_timing_sentence"]


def test_drift_control_section():
    drift = load_study("drift")
    values, fig, table = lstm_style_studies.drift_control_study(drift)
    assert len(table) == len(drift["drift_sweep"])
    for prefix in lstm_style_studies.DRIFT_GLUE:
        assert f"{prefix}_story" in values and f"{prefix}_first_verdict" in values
    assert fig.axes[0].get_xlabel().startswith("drift of customer tastes")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_style_tracking_paths_and_result_record(bench, tmp_path, monkeypatch):
    run = lstm_style_studies.tracking_study(
        bench, track_store="smoke", track_customers=400, models="smoke", n_boot=20, seed=0
    )
    values = run.values
    assert values["ch5_track_customers"] == 400
    assert values["ch5_track_fit"] == run.tracking["n_fit"] > 0
    assert set(run.styles) == {"lstm", "fashion_dna"}
    assert values["ch5_track_gap_r2_verdict"] in ("above zero", "below zero", "includes zero")
    path_values, fig, paths = lstm_style_studies.paths_study(run, n_paths=2, seed=0)
    assert path_values["ch5_track_path_orders"] == run.lstm_model.max_orders
    assert 0 < len(paths) <= 2
    studies = {"backtest": bench}
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path))
    glue = lstm_style_studies.write_chapter_result(
        profile="smoke", run=run, paths=paths, seed=0, track_store="smoke",
        track_customers=400, studies=studies, wall_s=1.5,
    )  # fmt: skip
    assert glue == {"ch5_wall_s": 1.5} and not list(tmp_path.iterdir())
    lstm_style_studies.write_chapter_result(
        profile="full", run=run, paths=paths, seed=0, track_store="smoke",
        track_customers=400, studies=studies, wall_s=1.5,
    )  # fmt: skip
    record = json.loads((tmp_path / "ch5_claims.json").read_text())
    assert record["backtest_commit"] == bench["provenance"]["commit"]
    assert "maps" not in record["style_tracking"] and record["cutoff"] == values["ch5_track_cutoff"]
    assert np.isclose(record["timing_seconds"]["style_tracking"], run.seconds)


def test_chapter_five_cells_are_calls():
    from pathlib import Path

    source = (Path(__file__).parents[1] / "notebooks" / "05_dynamic_customer_model.py").read_text()
    cells = [c for c in source.split("# %%")[1:] if not c.lstrip(" ").startswith("[markdown]")]
    cells = [c for c in cells if '"parameters"' not in c.splitlines()[0]]  # values, not code
    code = [[ln for ln in c.splitlines()[1:] if ln.strip()] for c in cells]
    assert max(len(lines) for lines in code) <= 15
    assert all(len(ln) <= 100 for lines in code for ln in lines)
    assert not any(
        ln.lstrip().startswith(("def ", "for ", "while ", "class ")) for c in code for ln in c
    )
    assert all(sum("glue_all(" in ln for ln in lines) <= 1 for lines in code)
    assert not re.search(r"(?<![\w.])glue\(", source)  # glued through glue_all only
    assert "write_result(" not in source
