"""gpa_lib.recsys.eval.drift_stores: chapter 5's drift control over stores, on two tiny multi-store
studies built here (drift 0 and 0.7, sharded and merged by the library), on one of them, and on
none."""

from __future__ import annotations

import math
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gpa_lib.recsys.eval import drift_stores as ds  # noqa: E402
from gpa_lib.recsys.eval.protocol import ProtocolConfig  # noqa: E402
from gpa_lib.recsys.eval.shards import StudySpec, merge, run_study  # noqa: E402
from gpa_lib.recsys.sim import STORE_PRESETS  # noqa: E402
from gpa_lib.results import write_result  # noqa: E402
from gpa_lib.stats import direction_verdict  # noqa: E402

MODELS = ("static_cf", "fashion_dna", "lstm")
PROTOCOL = ProtocolConfig(
    n_cutoffs=2, test_weeks=2, step_weeks=2, seeds=(0,), max_customers=150, n_boot=40
)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """Both drift studies of two stores each, written as ``data/results`` would hold them."""
    folder = tmp_path_factory.mktemp("drift_stores")
    for name, drift in ds.DRIFT_STORE_STUDIES.items():
        configs = tuple(
            replace(STORE_PRESETS["smoke"], n_customers=500, n_weeks=20, seed=s, drift=drift)
            for s in range(2)
        )
        spec = StudySpec("backtest", configs, MODELS, "smoke", PROTOCOL)
        run_study(spec, folder / f"shards-{name}")
        write_result(name, merge(spec, folder / f"shards-{name}"), results_dir=folder)
    return folder


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _row(payload, a, b, metric):
    return next(
        r
        for r in payload["comparisons"]
        if (r["a"], r["b"], r["slice"], r["metric"]) == (a, b, "warm", metric)
    )


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_both_drifts_give_gaps_difference_and_verdict(studies):
    payloads = ds.load_drift_stores(studies)
    assert list(payloads) == list(ds.DRIFT_STORE_STUDIES)
    values, fig, table = ds.drift_stores_study(payloads, n_boot=2000)
    assert values["ch5_drs_drift_low"] == 0.0 and values["ch5_drs_drift_high"] == 0.7
    low, high = (payloads[n] for n in ds.DRIFT_STORE_STUDIES)
    for tag, (a, b) in ds.DRIFT_STORE_GAPS.items():
        for mtag, metric in ds.DRIFT_STORE_METRICS.items():
            key = f"ch5_drs_{tag}_{mtag}"
            rows = [_row(p, a, b, metric) for p in (low, high)]
            for side, row in zip(("low", "high"), rows, strict=True):
                assert values[f"{key}_{side}"] == row["gap"]["estimate"]
                assert values[f"{key}_{side}_lo"] == row["gap"]["lo"]
                assert values[f"{key}_{side}_n_stores"] == 2
                assert values[f"{key}_{side}_n_positive"] == sum(g > 0 for g in row["store_gaps"])
            # the difference is that of the mean per-store gaps, its verdict read off its interval
            expected = np.mean(rows[1]["store_gaps"]) - np.mean(rows[0]["store_gaps"])
            assert values[f"{key}_diff"] == pytest.approx(expected)
            lo, hi = values[f"{key}_diff_lo"], values[f"{key}_diff_hi"]
            assert lo <= values[f"{key}_diff"] <= hi
            assert values[f"{key}_grows"] == direction_verdict(lo, hi)
            assert 0 < values[f"{key}_diff_p"] <= 1
    assert values["ch5_drs_grows_verdict"] == values["ch5_drs_cf_auc_grows"]
    assert values["ch5_drs_story"].startswith(("passes", "fails"))
    assert (
        "2 stores of 500 customers each per drift, at drift 0 and 0.7," in values["ch5_drs_status"]
    )
    assert all("`" not in v for v in values.values() if isinstance(v, str))
    assert list(table.columns) == [
        "control (drift 0)",
        "drifting (drift 0.7)",
        "difference (drifting − control)",
        "the gap grows with drift",
    ]
    assert len(table) == len(ds.DRIFT_STORE_GAPS) * len(ds.DRIFT_STORE_METRICS)
    # the figure: one panel per gap and metric, x the drift, a dot per store at each drift
    assert len(fig.axes) == 4 and max(fig.get_size_inches()) <= 10
    for ax in fig.axes:
        assert ax.get_xlabel().startswith("drift of tastes")
        assert ax.get_ylabel().startswith("gap in mean per-customer")
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.7"]
        assert sum(len(c.get_offsets()) for c in ax.collections) == 2 * 2


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_one_drift_alone_measures_no_difference(studies):
    payloads = ds.load_drift_stores(studies)
    only_drifting = {"claims_stores": payloads["claims_stores"]}
    values, fig, table = ds.drift_stores_study(only_drifting)
    assert values["ch5_drs_cf_auc_low_text"] == "not committed"
    assert values["ch5_drs_cf_auc_high_text"] != "not committed"
    assert values["ch5_drs_grows_verdict"] == "not measured"
    assert math.isnan(values["ch5_drs_cf_auc_diff"]) and values["ch5_drs_drift_low"] == 0.0
    assert values["ch5_drs_story"].startswith("is not tested yet")
    assert "simulated 2 stores of 500 customers each, at drift 0.7," in values["ch5_drs_status"]
    assert "Not committed yet: drift0_stores.json" in values["ch5_drs_status"]
    assert len(fig.axes) == 4 and "drifting (drift 0.7)" in table.columns


def test_no_committed_study_says_so(tmp_path):
    assert ds.load_drift_stores(tmp_path) == {}
    values, fig, table = ds.drift_stores_study({})
    assert fig is None
    assert values["ch5_drs_status"].startswith("The multi-store drift control is not committed yet")
    assert "`" not in values["ch5_drs_status"]
    assert values["ch5_drs_grows_verdict"] == "not measured"
    assert values["ch5_drs_cf_auc_high_text"] == "not committed"
    assert (table == "not committed").iloc[:, :2].all().all() and len(table) == 4


def test_store_bootstrap_difference_matches_a_slow_loop():
    low, high = [0.01, -0.02, 0.0, 0.03], [0.05, 0.02, 0.08]
    interval, p = ds.store_bootstrap_difference(low, high, n_boot=500, seed=3)
    rng = np.random.default_rng(3)
    draws_low = rng.integers(0, len(low), size=(500, len(low)))
    draws_high = rng.integers(0, len(high), size=(500, len(high)))

    def spread(values, draw):  # the resampled mean, spread by sqrt(S / (S - 1)) about the mean
        mean = np.mean(values)
        return mean + np.sqrt(len(values) / (len(values) - 1)) * (np.mean(values[draw]) - mean)

    low, high = np.array(low), np.array(high)
    slow = [
        spread(high, dh) - spread(low, dl) for dl, dh in zip(draws_low, draws_high, strict=True)
    ]
    assert interval.estimate == pytest.approx(np.mean(high) - np.mean(low))
    assert (interval.lo, interval.hi) == pytest.approx(tuple(np.quantile(slow, [0.025, 0.975])))
    assert interval.n == 3 and "independently" in interval.method and 0 < p < 1
    # the rescaled replicates have the unbiased variance of a difference of two means
    wide, _ = ds.store_bootstrap_difference(low, high, n_boot=200_000, seed=1)
    se = np.sqrt(np.var(low, ddof=1) / len(low) + np.var(high, ddof=1) / len(high))
    assert wide.hi - wide.lo == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_store_bootstrap_difference_edges():
    constant, _ = ds.store_bootstrap_difference([0.1, 0.1, np.nan], [0.3, 0.3])
    assert constant.lo == pytest.approx(0.2) and constant.hi == pytest.approx(0.2)
    empty, p = ds.store_bootstrap_difference([np.nan], [0.3])
    assert math.isnan(empty.estimate) and math.isnan(p) and empty.n == 0
    one, p = ds.store_bootstrap_difference([0.1], [0.3, 0.4])  # one store: no spread to resample
    assert one.estimate == pytest.approx(0.25) and math.isnan(one.lo) and math.isnan(p)
    assert direction_verdict(one.lo, one.hi) == "not supported"
    with pytest.raises(ValueError, match="n_boot=0"):
        ds.store_bootstrap_difference([0.1], [0.2], n_boot=0)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_study_of_another_drift_is_refused(studies):
    payloads = ds.load_drift_stores(studies)
    swapped = {"drift0_stores": payloads["claims_stores"]}
    with pytest.raises(ValueError, match="'drift0_stores' has stores of drift 0.7"):
        ds.drift_stores_study(swapped)
    with pytest.raises(ValueError, match="'drift1_stores' is not one of"):
        ds.drift_stores_study({"drift1_stores": payloads["claims_stores"]})


def test_bad_studies_are_named():
    mixed = {"spec": {"stores": [{"drift": 0.0}, {"drift": 0.7}]}}
    with pytest.raises(ValueError, match=r"drifts \[0.0, 0.7\]"):
        ds.study_drift(mixed)
    payload = {"spec": {"stores": [{"drift": 0.0}]}, "comparisons": [], "models": ["lstm"]}
    with pytest.raises(ValueError, match="a='lstm', b='static_cf'"):
        ds.drift_gap(payload, "lstm", "static_cf", "auc")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_figure_names_both_studies_in_its_footer(studies):
    from gpa_lib.stamp import stamp_footer, stamp_text

    payloads = ds.load_drift_stores(studies)
    _, fig, _ = ds.drift_stores_study(payloads, n_boot=200)
    (text,) = stamp_footer(fig)
    provenance = [payloads[n]["provenance"] for n in ds.DRIFT_STORE_STUDIES]
    files = ["drift0_stores.json", "claims_stores.json"]
    assert text.startswith(stamp_text(files, provenance))
    assert text.startswith("data/results/drift0_stores.json + claims_stores.json · commit")
    gap = ds.drift_gap(payloads["drift0_stores"], "lstm", "static_cf", "auc")
    assert stamp_footer(ds.plot_drift_store_gaps({("cf", "auc"): [gap]})) == []


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_two_families_must_differ_only_in_drift(studies):
    import copy

    payloads = ds.load_drift_stores(studies)
    ds.check_same_family(payloads)  # built from the same stores: passes
    bigger = copy.deepcopy(payloads)
    bigger["drift0_stores"]["spec"]["stores"][1]["n_weeks"] = 78
    with pytest.raises(ValueError, match=r"store seed 1 of 'drift0_stores' .*\['n_weeks'\]"):
        ds.drift_stores_study(bigger)
    fewer = copy.deepcopy(payloads)
    fewer["claims_stores"]["spec"]["stores"].pop()
    with pytest.raises(ValueError, match="have 2 and 1 stores"):
        ds.check_same_family(fewer)
    other = copy.deepcopy(payloads)
    other["claims_stores"]["spec"]["protocol"]["max_customers"] = 5000
    with pytest.raises(ValueError, match=r"different protocols \(\['max_customers'\]\)"):
        ds.check_same_family(other)
