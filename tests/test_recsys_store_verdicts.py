"""gpa_lib.recsys.eval.store_verdicts: the claims on a multi-store study built here (two tiny
stores, sharded and merged by the library) and, without one, on single-store evidence."""

from __future__ import annotations

import math
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from gpa_lib.recsys.eval import store_verdicts as sv  # noqa: E402
from gpa_lib.recsys.eval.claims import CLAIMS, Evidence, judge  # noqa: E402
from gpa_lib.recsys.eval.protocol import ProtocolConfig  # noqa: E402
from gpa_lib.recsys.eval.shards import StudySpec, merge, run_study  # noqa: E402
from gpa_lib.recsys.sim import STORE_PRESETS  # noqa: E402
from gpa_lib.results import write_result  # noqa: E402
from gpa_lib.stamp import stamp_footer, stamp_text  # noqa: E402
from gpa_lib.stats import Interval  # noqa: E402

#: every model an LSTM claim names
MODELS = ("popularity", "static_cf", "fashion_dna", "lstm", "context_popularity")
PROTOCOL = ProtocolConfig(
    n_cutoffs=2, test_weeks=2, step_weeks=2, seeds=(0,), max_customers=150, n_boot=40
)


def single_store_verdicts():
    """The LSTM family judged on made-up one-store intervals (one of them with a replication)."""
    estimates = {
        "lstm_vs_static_cf": 0.01,
        "lstm_vs_dna": 0.1,
        "lstm_vs_popularity": 0.02,
        "lstm_personal": -0.02,
        "lstm_tracks_style": -0.02,
    }
    replication = (("ablation (10,000 customers)", Interval(-0.03, -0.04, -0.02)),)
    evidence = {
        name: Evidence(
            Interval(g, g - 0.005, g + 0.005), 1e-4, "given",
            replication if name == "lstm_vs_static_cf" else (),
        )
        for name, g in estimates.items()
    }  # fmt: skip
    return judge(CLAIMS["lstm"], evidence)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A two-store study of the LSTM claims' models, written and read back as JSON."""
    folder = tmp_path_factory.mktemp("study")
    configs = tuple(
        replace(STORE_PRESETS["smoke"], n_customers=500, n_weeks=20, seed=s) for s in range(2)
    )
    spec = StudySpec("backtest", configs, MODELS, "smoke", PROTOCOL)
    run_study(spec, folder / "shards")
    write_result(sv.STORE_STUDY, merge(spec, folder / "shards"), results_dir=folder)
    return sv.load_store_study(folder)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_no_store_study_means_none(tmp_path):
    assert sv.load_store_study(tmp_path) is None


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_store_study_decides_what_it_measured(stores):
    verdicts = sv.claim_verdicts("lstm", stores, single_store_verdicts())
    by_name = {v.judgement.claim.name: v for v in verdicts}
    assert list(by_name) == [c.name for c in CLAIMS["lstm"]]
    measured = {row["claim"]: row for row in stores["claims"]}
    assert set(measured) == {
        "lstm_vs_static_cf",
        "lstm_vs_dna",
        "lstm_vs_popularity",
        "lstm_personal",
    }
    for name, row in measured.items():
        v = by_name[name]
        assert v.from_stores and v.n_stores == 2
        assert v.judgement.verdict == row["verdict"] and v.judgement.p_holm == row["p_holm"]
        assert v.judgement.evidence.interval.estimate == row["interval"]["estimate"]
        assert v.p_sign_flip == row["p_sign_flip"]
        primary = [r for r in stores["comparisons"] if r["primary"] == name][0]
        assert [g for _, g in v.store_gaps] == primary["store_gaps"]
        assert [s for s, _ in v.store_gaps] == ["store 0", "store 1"]
        assert v.single_store[0][0] == f"{v.judgement.claim.study} (store seed 0)"
    # the replication of the one-store run travels with the store verdict, unjudged
    assert by_name["lstm_vs_static_cf"].single_store[1][0] == "ablation (10,000 customers)"
    # the style tracking is not in the store study: its one-store verdict stays
    tracking = by_name["lstm_tracks_style"]
    assert not tracking.from_stores and tracking.n_stores == 1 and math.isnan(tracking.p_sign_flip)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_table_glue_and_figure_of_a_store_study(stores):
    verdicts = sv.claim_verdicts("lstm", stores, single_store_verdicts())
    table = sv.claims_table(verdicts)
    assert len(table) == len(CLAIMS["lstm"])
    assert table["evidence"].iloc[0].startswith("2 stores")
    assert table["evidence"].iloc[-1].startswith("one store (provisional)")
    assert table["sign-flip p over stores"].iloc[-1] == "n/a"
    values = sv.short_glue("chX", verdicts, stores)
    assert values["chX_lstm_vs_static_cf_n_stores"] == 2
    gaps = [g for _, g in verdicts[0].store_gaps]
    assert values["chX_lstm_vs_static_cf_n_positive"] == sum(g > 0 for g in gaps)
    assert "2 simulated stores of 500 customers" in values["chX_evidence"]
    assert all("`" not in v for v in values.values() if isinstance(v, str))
    fig = sv.plot_store_gaps(verdicts)
    assert len(fig.axes) == len(CLAIMS["lstm"])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["store 0", "store 1", "all stores"]  # top to bottom
    assert all(ax.get_xlabel().startswith("gap in mean per-customer") for ax in fig.axes)
    assert stamp_footer(fig) == []  # no study named: no footer
    (text,) = stamp_footer(sv.plot_store_gaps(verdicts, stores=stores))
    assert text.startswith(stamp_text("claims_stores.json", stores["provenance"]))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_tuning_edges_per_store(stores):
    table = sv.tuning_edges_table(stores)
    assert list(table.columns) == ["store 0", "store 1"] and len(table) == len(MODELS)
    counts = sv.edges_glue("chX", table)
    assert counts["chX_edges_total"] == 2 * len(MODELS)
    assert counts["chX_edges_on"] == sum(c != "inside" for c in table.to_numpy().ravel())


def test_without_a_store_study_every_claim_is_one_store():
    single = single_store_verdicts()
    verdicts = sv.claim_verdicts("lstm", None, single)
    assert [v.judgement for v in verdicts] == single
    assert all(v.n_stores == 1 and not v.store_gaps for v in verdicts)
    values = sv.short_glue("chX", verdicts, None)
    assert "not committed yet" in values["chX_evidence"]
    assert values["chX_lstm_personal_n_positive"] == 0
    assert values["chX_lstm_vs_dna_p_holm_text"] == "0.0005"
    fig = sv.plot_store_gaps(verdicts)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["ablation (10,000 customers)", "backtest (store seed 0)"]
    with pytest.raises(ValueError, match="'lstm_tracks_style' has neither"):
        sv.claim_verdicts("lstm", None, single[:-1])


def test_tuning_edges_of_one_store_are_recomputed_from_the_grid():
    trials = [{"setting": {"hidden": h}, "value": 0.1} for h in (8, 16, 32)]
    payload = {
        "tuning": {
            "lstm": {"chosen": {"hidden": 32}, "trials": trials},
            "static_cf": {"chosen": {"l2": 1e-3}, "trials": [], "edges": {}},
            "sasrec": {"skipped": "torch missing"},
        }
    }
    table = sv.tuning_edges_table(payload)
    assert table.loc["LSTM", "one store"] == "hidden high"
    assert table.loc["static CF", "one store"] == "inside" and "SASRec" not in table.index
    assert sv.edges_glue("chX", table) == {"chX_edges_on": 1, "chX_edges_total": 2}
