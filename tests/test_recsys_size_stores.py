"""gpa_lib.recsys.eval.size_stores: the claims read side by side from store studies of several sizes
(payloads in the shape :func:`gpa_lib.recsys.eval.shards.merge` writes, made up here)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from gpa_lib.recsys.eval import size_stores as ss  # noqa: E402
from gpa_lib.results import write_result  # noqa: E402

ALL_MODELS = ["popularity", "static_cf", "lightfm", "fashion_dna", "lstm", "context_popularity"]
#: claim -> its comparison's models, as in gpa_lib.recsys.eval.claims
PAIRS = {
    "dna_cold_start": ("fashion_dna", "lightfm"),
    "lstm_vs_static_cf": ("lstm", "static_cf"),
    "lstm_vs_dna": ("lstm", "fashion_dna"),
    "lstm_vs_popularity": ("lstm", "popularity"),
    "lstm_personal": ("lstm", "context_popularity"),
}


def payload(customers: int, gaps: dict[str, list[float | None]], models=ALL_MODELS) -> dict:
    """A merged study: per claim its per-store gaps; the interval is their range, the verdict
    "supported" when it lies above zero."""
    n = len(next(iter(gaps.values())))
    claims, comparisons = [], []
    for name, store_gaps in gaps.items():
        a, b = PAIRS[name]
        if a not in models or b not in models:
            continue
        finite = [g for g in store_gaps if g is not None]
        lo, hi, mean = min(finite), max(finite), sum(finite) / len(finite)
        verdict = "supported" if lo > 0 else "not supported"
        interval = {"estimate": mean, "lo": lo, "hi": hi, "level": 0.95, "method": "m", "n": n}
        claims.append({"claim": name, "interval": interval, "p_holm": 0.01, "verdict": verdict})
        comparisons.append({"a": a, "b": b, "primary": name, "store_gaps": store_gaps})
    stores = [{"n_customers": customers, "seed": s} for s in range(n)]
    protocol = {"n_cutoffs": 3, "seeds": [0, 1]}
    # the LSTM's choice sits on the low edge of its hidden sizes in store 0 only
    tuning = {
        str(s): {"lstm": {"chosen": {"hidden": 32}, "trials": [], "edges": {"hidden": "low"}}}
        if s == 0
        else {"lstm": {"chosen": {"hidden": 64}, "trials": [], "edges": {}}}
        for s in range(n)
    }
    return {
        "tuning": tuning,
        "spec": {"stores": stores, "protocol": protocol},
        "stores": list(range(n)),
        "models": list(models),
        "claims": claims,
        "comparisons": comparisons,
    }


SMALL = payload(
    10_000, {name: [0.01, 0.02, 0.03] for name in PAIRS} | {"lstm_vs_dna": [-0.01, 0.02, None]}
)
LARGE = payload(
    100_000,
    {name: [0.05] for name in PAIRS},
    models=[m for m in ALL_MODELS if m != "lightfm"],
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_sizes_side_by_side_with_their_own_verdicts():
    values, figure, table = ss.size_study({"claims_stores_100k": LARGE, "claims_stores": SMALL})
    assert list(table.columns) == [
        "gap",
        "10,000 customers",
        "20,000 customers",
        "100,000 customers",
        "across sizes",
    ]
    assert (
        values["ch5_size_lstm_vs_static_cf_10k_text"]
        == "+0.020 [+0.010, +0.030], supported (3 stores)"
    )
    assert values["ch5_size_lstm_vs_static_cf_20k_text"] == "not run"
    assert values["ch5_size_lstm_vs_static_cf_100k_verdict"] == "supported"
    assert values["ch5_size_lstm_vs_static_cf_agreement"] == "supported at every size"
    # the 100k family ran without LightFM: the cold-start claim has one size and no 100k cell
    assert values["ch5_size_dna_cold_start_100k_text"] == "not run"
    assert values["ch5_size_dna_cold_start_agreement"] == "one size only"
    # a verdict that changes with size is named
    assert (
        values["ch5_size_lstm_vs_dna_agreement"] == "not supported at 10,000; supported at 100,000"
    )
    assert (
        values["ch5_size_n_changed"] == 1
        and values["ch5_size_changed"] == "LSTM − Fashion DNA, AUC (known)"
    )
    assert (
        "1 store of 100,000 customers (3 cutoffs, 2 training seeds; without LightFM)"
        in values["ch5_size_status"]
    )
    assert "Not committed yet: claims_stores_20k.json" in values["ch5_size_status"]
    assert values["ch5_size_edges"] == "1 of 3 at 10,000; 1 of 1 at 100,000 (LSTM hidden low)"
    # one panel per claim, a store's missing gap (None) drawn as nothing
    assert sum(ax.get_visible() for ax in figure.axes) == len(PAIRS)
    assert figure.axes[0].get_xscale() == "log"


def test_point_reads_store_gaps_and_missing_claims():
    point = ss.size_point(SMALL, "lstm_vs_dna")
    assert point.customers == 10_000 and point.n_stores == 3
    assert point.store_gaps[:2] == (-0.01, 0.02) and math.isnan(point.store_gaps[2])
    assert ss.size_point(LARGE, "dna_cold_start") is None


def test_nothing_committed_says_so():
    values, figure, table = ss.size_study({})
    assert figure is None
    assert values["ch5_size_edges"] == "no size study committed"
    assert values["ch5_size_status"].startswith("No multi-store claim study is committed")
    assert set(table["across sizes"]) == {"one size only"}


def test_a_file_with_the_wrong_size_is_an_error(tmp_path):
    write_result("claims_stores_20k", SMALL, results_dir=tmp_path)
    with pytest.raises(ValueError, match="claims_stores_20k.*10,000 customers.*20,000"):
        ss.load_size_studies(tmp_path)


def test_loads_what_is_committed_smallest_first(tmp_path):
    write_result("claims_stores_100k", LARGE, results_dir=tmp_path)
    write_result("claims_stores", SMALL, results_dir=tmp_path)
    assert list(ss.load_size_studies(tmp_path)) == ["claims_stores", "claims_stores_100k"]


def test_the_figure_names_the_committed_studies_in_its_footer():
    from gpa_lib.stamp import stamp_footer

    small = SMALL | {"provenance": {"commit": "a" * 40, "date": "2026-12-01T10:00:00"}}
    large = LARGE | {"provenance": {"commit": "b" * 40, "date": "2026-12-02T10:00:00"}}
    _, figure, _ = ss.size_study({"claims_stores_100k": large, "claims_stores": small})
    (text,) = stamp_footer(figure)
    assert text.startswith(
        "data/results/claims_stores.json + claims_stores_100k.json · commits aaaaaaa + bbbbbbb"
    )
    panels = {claim: {} for claim in ss._claims()}
    assert stamp_footer(ss.plot_size_gaps(panels)) == []  # panels alone: no footer
