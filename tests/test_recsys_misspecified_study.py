"""The misspecified-store study at smoke size: its payload, its intervals and its words."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from gpa_lib.recsys.eval.misspecified import (
    CLAIM_WORDS,
    SMOKE,
    MisspecifiedConfig,
    cell_key,
    misspecified_study,
    summarise_cell,
    tuned_params,
)

TINY = replace(SMOKE, attribute_shares=(0.7,), n_customers=500, n_weeks=16, n_boot=50)


@pytest.fixture(scope="module")
def payload():
    return misspecified_study(TINY)


def test_the_payload_has_every_cell_with_ordered_intervals(payload):
    assert set(payload["cells"]) == {cell_key(0.7, 0.0), cell_key(0.7, 3.0)}
    for cell in payload["cells"].values():
        for key in ("dna_cold", "lightfm_cold", "dna_warm", "gap_dna_lightfm_cold"):
            interval = cell[key]
            assert interval["n"] == len(TINY.store_seeds)
            assert interval["lo"] <= interval["estimate"] <= interval["hi"]
        assert 0 <= cell["dna_cold"]["estimate"] <= 1
        gap = cell["gap_dna_lightfm_cold"]["estimate"]
        assert gap == pytest.approx(cell["dna_cold"]["estimate"] - cell["lightfm_cold"]["estimate"])
        assert len(cell["store_gaps"]) == len(TINY.store_seeds)
        assert cell["claim"] in CLAIM_WORDS.values()
    assert payload["params"]["fashion_dna"]["image_dim"] == 0


def test_the_study_is_deterministic(payload):
    again = misspecified_study(replace(TINY, misspecified=(3.0,)))
    key = cell_key(0.7, 3.0)
    assert (
        again["cells"][key]["gap_dna_lightfm_cold"] == payload["cells"][key]["gap_dna_lightfm_cold"]
    )


def test_summarise_cell_reads_a_known_gap_as_supported():
    rng = np.random.default_rng(0)
    stores = [
        {
            "dna_cold": [0.8 + 0.01 * rng.normal(size=(1, 50))],
            "lightfm_cold": [0.6 + 0.01 * rng.normal(size=(1, 50))],
            "dna_warm": [0.7 + 0.01 * rng.normal(size=(1, 50))],
        }
        for _ in range(3)
    ]
    cell = summarise_cell(stores, n_boot=200, seed=0)
    assert cell["claim"] == "supported"
    assert cell["gap_dna_lightfm_cold"]["estimate"] == pytest.approx(0.2, abs=0.01)
    assert cell["dna_cold_warm_ratio"]["estimate"] == pytest.approx(0.8 / 0.7, abs=0.01)
    swapped = [{**s, "dna_cold": s["lightfm_cold"], "lightfm_cold": s["dna_cold"]} for s in stores]
    assert summarise_cell(swapped, n_boot=200, seed=0)["claim"] == "contradicted"
    assert not math.isnan(cell["dna_cold_warm_ratio"]["lo"])


def test_tuned_params_only_from_the_same_profile():
    backtest = {
        "protocol": {"model_profile": "full"},
        "tuning": {"fashion_dna": {"chosen": {"dna_dim": 16}}, "lightfm": {"chosen": {}}},
    }
    assert tuned_params(backtest, "full") == {"fashion_dna": {"dna_dim": 16}, "lightfm": {}}
    assert tuned_params(backtest, "smoke") == {}
    assert tuned_params(None, "full") == {}


def test_bad_config_names_the_argument():
    with pytest.raises(ValueError, match="preset='nope'"):
        MisspecifiedConfig(preset="nope")
    with pytest.raises(ValueError, match=r"attribute_shares=\(\)"):
        MisspecifiedConfig(attribute_shares=())


BENCH = ["--study", "misspecified", "--attribute-shares", "0.6", "--store-seeds", "0,1"]
BENCH += ["--customers", "400", "--weeks", "14", "--cutoffs", "1", "--profile", "smoke"]
BENCH += ["--eval-customers", "200", "--n-boot", "20"]


def test_bench_misspecified_writes_the_study(tmp_path, capsys):
    import json

    from gpa_lib.bench.recsys import main

    assert main([*BENCH, "--results-dir", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "misspecified.json").read_text())
    assert set(document["cells"]) == {cell_key(0.6, s) for s in (0.0, 1.0, 3.0)}
    assert document["config"]["store_seeds"] == [0, 1]
    assert document["config"]["n_customers"] == 400
    assert document["provenance"]["profile"] == "smoke"
    assert "misspecified.json" in capsys.readouterr().out


def test_bench_misspecified_refuses_dirty_code(monkeypatch):
    from gpa_lib.bench import recsys

    monkeypatch.delenv("GPA_LIB_RESULTS_DIR", raising=False)
    monkeypatch.setattr(recsys, "git_commit", lambda: "0123abc-dirty")
    with pytest.raises(SystemExit, match="commit='0123abc-dirty': commit the code first"):
        recsys.main(BENCH)


def test_glue_and_figure_of_the_chapter(payload):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gpa_lib.recsys.eval.misspecified import misspecified_glue, overall_claim, plot_misspecified

    values = misspecified_glue(payload)
    cell = payload["cells"][cell_key(0.7, 3.0)]
    assert values["ch4_mis_gap_on"] == cell["gap_dna_lightfm_cold"]["estimate"]
    assert values["ch4_mis_verdict_on"] == cell["claim"]  # one share: its word is the verdict
    assert values["ch4_mis_n_shares"] == 1 and values["ch4_mis_shares"] == "0.7"
    assert all(key.startswith("ch4_mis_") for key in values)
    assert not any("`" in str(v) for v in values.values())
    missing = misspecified_glue(None)
    assert set(missing) == set(values) and missing["ch4_mis_stores"] == 0  # the same keys
    assert overall_claim(["supported", "supported"]) == "supported"
    assert overall_claim(["supported", "not supported"]) == "not supported"
    assert overall_claim(["supported", "contradicted"]) == "contradicted"
    figure = plot_misspecified(payload)
    assert len(figure.axes) == 2
    plt.close(figure)
